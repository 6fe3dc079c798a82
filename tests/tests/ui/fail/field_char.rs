use pmem_core::Persistent;

#[derive(Persistent)]
#[repr(C)]
struct Bad {
    field: char,
}

fn main() {}
