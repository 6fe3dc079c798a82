//! Recursive types: the fingerprint of `PPtr<T>` uses `T`'s shallow identity, so these have a
//! finite fingerprint, and the derive's field checks must not make the trait solver loop.
use pmem_core::{PPtr, Persistent};

#[derive(Persistent)]
#[repr(C)]
struct Node {
    value: u64,
    next: PPtr<Node>,
}

#[derive(Persistent)]
#[repr(C)]
struct Tree {
    left: PPtr<Self>,
    right: PPtr<Self>,
    key: u64,
}

// Mutual recursion.
#[derive(Persistent)]
#[repr(C)]
struct Even {
    next: PPtr<Odd>,
}

#[derive(Persistent)]
#[repr(C)]
struct Odd {
    next: PPtr<Even>,
}

#[derive(Persistent)]
#[repr(C)]
struct GenericNode<T> {
    value: T,
    next: PPtr<GenericNode<T>>,
}

fn relink(mut tree: TreeMut<'_>) -> pmem_core::Result<()> {
    let left = tree.get().left;
    tree.set_right(left)?;
    tree.set_left(PPtr::null())
}

fn main() {
    const FINGERPRINTS: [u64; 5] = [
        Node::FINGERPRINT,
        Tree::FINGERPRINT,
        Even::FINGERPRINT,
        Odd::FINGERPRINT,
        GenericNode::<u64>::FINGERPRINT,
    ];
    assert_ne!(FINGERPRINTS[0], FINGERPRINTS[1]);
    let _ = (
        relink,
        |n: NodeMut<'_>| n.get().value,
        |n: GenericNodeMut<'_, u32>| n.get().next,
    );
}
