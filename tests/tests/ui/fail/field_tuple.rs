use pmem_core::Persistent;

#[derive(Persistent)]
#[repr(C)]
struct Bad {
    field: (u32, u32),
}

fn main() {}
