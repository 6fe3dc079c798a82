//! `PMut`, the handle that writes the pool, cannot be made outside the library: its constructor
//! is private (and takes the transaction's private state), so the only way to one is through a
//! transaction.
#![allow(unreachable_code)]
use pmem_core::PMut;

fn forge<'t>() -> PMut<'t, u64> {
    unsafe { PMut::new(todo!(), 4096) }
}

fn main() {
    let _ = forge();
}
