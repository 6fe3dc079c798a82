use pmem_core::Persistent;

#[derive(Persistent)]
#[repr(C, packed)]
struct Root {
    tag: u8,
    count: u64,
}

fn main() {}
