//! Opening a pool checks every type reachable from the root against the pool's type table, not
//! only the root: a program whose `Node` gained a field is refused at open, naming `Node` and the
//! field, while a program that only adds types the pool never recorded opens and records them.

#![allow(missing_debug_implementations)]

use pmem_core::error::TypeDifference;
use pmem_core::{Error, PPtr, Persistent, Pool};

/// The types as the program that created the pool defined them.
mod before {
    use super::*;

    #[derive(Persistent)]
    #[repr(C)]
    pub struct Root {
        pub head: PPtr<Node>,
    }

    #[derive(Persistent)]
    #[repr(C)]
    pub struct Node {
        pub a: u64,
        pub next: PPtr<Node>,
    }
}

/// The same names, with a field added to `Node`: the root's own layout is unchanged (a pointer
/// is 8 bytes whatever it points at).
mod after {
    use super::*;

    #[derive(Persistent)]
    #[repr(C)]
    pub struct Root {
        pub head: PPtr<Node>,
    }

    #[derive(Persistent)]
    #[repr(C)]
    pub struct Node {
        pub a: u64,
        pub next: PPtr<Node>,
        pub b: u64,
    }
}

const POOL_SIZE: u64 = 4 << 20;

fn create_with_a_node(path: &std::path::Path) {
    let pool = Pool::<before::Root>::create(path, POOL_SIZE).unwrap();
    pool.alloc_into(
        before::Node {
            a: 7,
            next: PPtr::null(),
        },
        |tx, p| tx.root_mut().set_head(p),
    )
    .unwrap();
}

#[test]
fn a_changed_type_behind_the_root_is_refused_at_open() {
    assert_eq!(
        before::Root::FINGERPRINT,
        after::Root::FINGERPRINT,
        "the root alone cannot tell the two programs apart"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nodes.pool");
    create_with_a_node(&path);
    let bytes_before = std::fs::read(&path).unwrap();

    match Pool::<after::Root>::open(&path) {
        Err(Error::TypeMismatch {
            type_name,
            difference,
            ..
        }) => {
            assert_eq!(type_name, "Node");
            assert!(
                matches!(&*difference, TypeDifference::FieldOnlyInProgram { field, .. } if field.name == "b"),
                "{difference:?}"
            );
            let text = difference.to_string();
            assert!(
                text.contains("`b`") && text.contains("not in the pool"),
                "{text}"
            );
        }
        other => panic!("expected a type mismatch naming Node, got {other:?}"),
    }
    let message = Pool::<after::Root>::open(&path).unwrap_err().to_string();
    assert!(
        message.contains("Node") && message.contains("`b`"),
        "{message}"
    );
    // The refused open changed nothing, and the original program still opens the pool.
    assert_eq!(std::fs::read(&path).unwrap(), bytes_before);
    let pool = Pool::<before::Root>::open(&path).unwrap();
    let head = pool.read(|r| r.root().head).unwrap();
    assert_eq!(pool.read(|r| r.get(head).unwrap().a).unwrap(), 7);
}

/// A pool whose type table does not know the types (here: none recorded, as a pool claimed by
/// an older program would be) is a compatible extension: it opens, and the table then records
/// them, so that a later program with a different `Node` is refused.
#[test]
fn types_the_pool_never_recorded_are_recorded_at_open() {
    use pmem_core::inspect::Inspection;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nodes.pool");
    drop(Pool::<after::Root>::create(&path, POOL_SIZE).unwrap());
    // Erase the table, as if the pool had been written before types were recorded.
    {
        let inspection = Inspection::open(&path).unwrap();
        let graph = inspection
            .type_graph()
            .expect("a typed pool records its types");
        assert!(graph.types.iter().any(|t| t.name == "Node"));
    }
    let mut bytes = std::fs::read(&path).unwrap();
    let table = type_table_range(&bytes);
    bytes[table].fill(0);
    std::fs::write(&path, &bytes).unwrap();
    assert!(Inspection::open(&path).unwrap().type_graph().is_none());

    drop(Pool::<after::Root>::open(&path).unwrap());
    let inspection = Inspection::open(&path).unwrap();
    let graph = inspection
        .type_graph()
        .expect("the open recorded the types");
    let node = graph.types.iter().find(|t| t.name == "Node").unwrap();
    assert_eq!(node.size, 24);
    drop(inspection);
    assert!(matches!(
        Pool::<before::Root>::open(&path),
        Err(Error::TypeMismatch { .. })
    ));
}

/// Where the type table lives in a pool file: 64 KiB from its magic, which follows the header
/// copies and the log slots.
fn type_table_range(pool: &[u8]) -> std::ops::Range<usize> {
    let start = pool
        .windows(7)
        .position(|w| w == b"PMEMTYP")
        .expect("the pool has a type table");
    start..start + 64 * 1024
}
