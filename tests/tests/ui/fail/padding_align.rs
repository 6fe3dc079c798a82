use pmem_core::Persistent;

#[derive(Persistent)]
#[repr(C, align(16))]
struct Root {
    count: u64,
}

fn main() {}
