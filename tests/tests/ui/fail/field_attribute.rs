use pmem_core::Persistent;

#[derive(Persistent)]
#[repr(C)]
struct Root {
    #[persistent(crate = "pmem_core")]
    count: u64,
}

fn main() {}
