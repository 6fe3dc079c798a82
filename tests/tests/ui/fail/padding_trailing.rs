use pmem_core::Persistent;

#[derive(Persistent)]
#[repr(C)]
struct Root {
    count: u64,
    tag: u32,
}

fn main() {}
