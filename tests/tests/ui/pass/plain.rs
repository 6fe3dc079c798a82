//! The struct from the design: a root with a counter and a list head.
#![deny(missing_docs)]

use pmem_core::{PPtr, Persistent};

/// The root object.
#[derive(Persistent)]
#[repr(C)]
pub struct Root {
    /// How many nodes were pushed.
    pub count: u64,
    head: PPtr<Node>,
}

/// A list node.
#[derive(Persistent)]
#[repr(C)]
pub struct Node {
    /// The payload.
    pub value: u64,
    next: PPtr<Node>,
}

/// Writes through the generated handle; compiled, not run (the transaction is not built here).
pub fn push(mut root: RootMut<'_>, node: PPtr<Node>) -> pmem_core::Result<()> {
    let count = root.get().count;
    root.set_count(count + 1)?;
    root.set_head(node)?;
    root.head_mut().set(node)?;
    let _offset: u64 = root.offset();
    let _inner: pmem_core::PMut<'_, Root> = root.into_inner();
    Ok(())
}

fn main() {
    assert_eq!(Root::LAYOUT.name, "Root");
    let _ = push;
}
