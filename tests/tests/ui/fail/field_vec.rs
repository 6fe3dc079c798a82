use pmem_core::Persistent;

#[derive(Persistent)]
#[repr(C)]
struct Bad {
    field: Vec<u64>,
}

fn main() {}
