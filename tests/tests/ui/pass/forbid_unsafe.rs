//! A crate that forbids `unsafe` can still derive `Persistent`: the unsafe impl is the derive's
//! obligation, not the user's.
#![forbid(unsafe_code)]

use pmem_core::Persistent;

#[derive(Persistent)]
#[repr(C)]
struct Root {
    count: u64,
}

fn main() {
    assert_eq!(Root::LAYOUT.size, 8);
}
