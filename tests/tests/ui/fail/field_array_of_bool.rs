use pmem_core::Persistent;

#[derive(Persistent)]
#[repr(C)]
struct Bad {
    field: [bool; 8],
}

fn main() {}
