use pmem_core::Persistent;

#[derive(Persistent)]
struct Root {
    count: u64,
}

fn main() {}
