use pmem_core::Persistent;

#[derive(Persistent)]
#[repr(C)]
struct Bad {
    field: std::sync::atomic::AtomicU64,
}

fn main() {}
