//! PBTreeMap on damaged pools: nodes and metadata rewritten as a hostile file could hold them
//! (a cycle, a node claiming too many keys, keys out of order, a count that does not match, a
//! child of the wrong type). Every operation returns a typed error, never a panic or a hang.

use pmem_collections::btree::{BTreeMeta, Node};
use pmem_collections::{Error, Inconsistency, PBTreeMap, Result};
use pmem_core::{PPtr, Persistent, Pool};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    map: PBTreeMap<u64, u64>,
}

/// A pool, its tree, the tree's metadata and its root node.
type Fixture = (
    Pool<Root>,
    PBTreeMap<u64, u64>,
    BTreeMeta<u64, u64>,
    Node<u64, u64>,
);

/// A tree of 100 entries (three levels), its metadata and its root node.
fn tree() -> Fixture {
    let pool = Pool::<Root>::builder().create_simulated(2 << 20).unwrap();
    let map = pool
        .transaction(|tx| -> Result<_> {
            let map = PBTreeMap::new(tx)?;
            tx.root_mut().set_map(map)?;
            for k in 0..100 {
                map.insert(tx, k, k)?;
            }
            Ok(map)
        })
        .unwrap();
    let (meta, root) = pool
        .read(|r| {
            let meta = *r.get(map.as_ptr()).unwrap();
            (meta, *r.get(meta.root).unwrap())
        })
        .unwrap();
    assert!(!root.children[0].is_null());
    (pool, map, meta, root)
}

fn inconsistency<T: std::fmt::Debug>(result: Result<T>) -> Inconsistency {
    match result {
        Err(Error::Inconsistent(what)) => what,
        other => panic!("expected an inconsistency, got {other:?}"),
    }
}

/// Every walk that can go down, on a tree whose root is its own first child.
#[test]
fn a_cycle_is_found_by_every_walk() {
    let (pool, map, meta, mut root) = tree();
    root.children[0] = meta.root;
    pool.transaction(|tx| tx.write(meta.root, root)).unwrap();
    pool.read(|r| {
        assert_eq!(inconsistency(map.get(r, &0)), Inconsistency::BTreeTooDeep);
        assert_eq!(inconsistency(map.height(r)), Inconsistency::BTreeTooDeep);
        assert_eq!(
            inconsistency(map.first_key_value(r)),
            Inconsistency::BTreeTooDeep
        );
        assert!(matches!(
            map.iter(r).next(),
            Some(Err(Error::Inconsistent(Inconsistency::BTreeTooDeep)))
        ));
        assert!(map.verify(r).is_err());
    })
    .unwrap();
    let insert = pool.transaction(|tx| map.insert(tx, 0, 1));
    assert!(
        matches!(
            insert,
            Err(Error::Inconsistent(Inconsistency::BTreeTooDeep))
        ),
        "{insert:?}"
    );
    let cleared = pool.transaction(|tx| map.clear(tx));
    assert!(cleared.is_err(), "{cleared:?}");
}

#[test]
fn a_node_claiming_too_many_keys_is_refused() {
    let (pool, map, meta, mut root) = tree();
    root.len = 1000;
    pool.transaction(|tx| tx.write(meta.root, root)).unwrap();
    pool.read(|r| {
        assert_eq!(
            inconsistency(map.get(r, &5)),
            Inconsistency::BTreeNodeOverfull {
                node: meta.root.offset(),
                keys: 1000
            }
        );
    })
    .unwrap();
    assert!(pool.transaction(|tx| map.remove(tx, &5)).is_err());
}

#[test]
fn keys_out_of_order_and_a_wrong_count_are_reported() {
    let (pool, map, meta, mut root) = tree();
    root.keys[0] = 1_000_000;
    pool.transaction(|tx| tx.write(meta.root, root)).unwrap();
    pool.read(|r| {
        assert!(matches!(
            inconsistency(map.verify(r)),
            Inconsistency::BTreeKeysOutOfOrder { .. }
        ));
    })
    .unwrap();
    let (pool, map, meta, _) = tree();
    pool.transaction(|tx| tx.write(map.as_ptr(), BTreeMeta { len: 7, ..meta }))
        .unwrap();
    pool.read(|r| {
        assert_eq!(
            inconsistency(map.verify(r)),
            Inconsistency::BTreeCountMismatch { count: 7, found: 8 }
        );
    })
    .unwrap();
}

#[test]
fn a_child_of_the_wrong_type_is_a_pool_error() {
    let (pool, map, meta, mut root) = tree();
    root.children[1] = PPtr::from_offset(map.as_ptr().offset());
    pool.transaction(|tx| tx.write(meta.root, root)).unwrap();
    pool.read(|r| {
        assert!(matches!(map.verify(r), Err(Error::Pool(_))));
        assert!(map.iter(r).any(|e| matches!(e, Err(Error::Pool(_)))));
    })
    .unwrap();
}

/// Every child of the root is the same node: no cycle, but an iteration would meet the same
/// entries again and again (at every level, in a deeper tree: exponentially many). It yields
/// at most the tree's length, then an error.
#[test]
fn shared_children_are_cut_off_at_the_length() {
    let (pool, map, meta, mut root) = tree();
    let n = root.len as usize;
    for i in 1..=n {
        root.children[i] = root.children[0];
    }
    pool.transaction(|tx| tx.write(meta.root, root)).unwrap();
    pool.read(|r| {
        let items: Vec<_> = map.iter(r).collect();
        assert!(items.len() as u64 <= meta.len + 1, "{} items", items.len());
        assert!(map.verify(r).is_err());
    })
    .unwrap();
}
