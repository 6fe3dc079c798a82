use pmem_core::Persistent;
use std::cell::Cell;

#[derive(Persistent)]
#[repr(C)]
struct Bad {
    field: Cell<u64>,
}

fn main() {}
