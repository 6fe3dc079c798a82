use pmem_core::Persistent;
use std::sync::Arc;

#[derive(Persistent)]
#[repr(C)]
struct Bad {
    field: Arc<u64>,
}

fn main() {}
