//! Nor can a `PMut` be built as a struct literal: its fields are private.
#![allow(unreachable_code)]
use pmem_core::PMut;

fn forge<'t>() -> PMut<'t, u64> {
    PMut { tx: todo!(), offset: 4096, _target: std::marker::PhantomData }
}

fn main() {
    let _ = forge();
}
