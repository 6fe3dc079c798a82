use pmem_core::Persistent;

#[derive(Persistent)]
#[repr(align(8))]
struct Root {
    count: u64,
}

fn main() {}
