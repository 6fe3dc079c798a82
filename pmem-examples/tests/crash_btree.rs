//! Crash test of the B-tree: at every fence of a random workload (inserts, replacements,
//! removals with borrowing and merging, root splits and shrinks, multi-operation and aborted transactions), every crash image recovers to a
//! tree that is ordered and balanced and whose contents are exactly the committed operations,
//! with nothing leaked.

mod common;

use common::{map_workload, run_map_crash_test, MapOp};
use pmem_core::crash::CrashTest;
use pmem_examples::btree::PBTreeMap;

/// About 250 operations over 120 keys: the tree grows to three levels, and removals borrow
/// from siblings, merge nodes and shrink the root.
#[test]
fn random_operations_survive_every_crash() {
    run_map_crash_test::<PBTreeMap>(CrashTest::new(2 << 20), map_workload(1, 250, 120));
}

/// Fill the tree in order, then empty it in order: every node splits, then every node merges,
/// down to an empty root.
#[test]
fn fill_then_drain_survives_every_crash() {
    let mut ops: Vec<MapOp> = (0..60).map(|k| MapOp::Insert(k, k)).collect();
    ops.extend((0..60).map(MapOp::Remove));
    let steps = ops
        .into_iter()
        .map(|op| common::Step {
            ops: vec![op],
            abort: false,
        })
        .collect();
    run_map_crash_test::<PBTreeMap>(CrashTest::new(1 << 20), steps);
}

/// A short run that also crashes every recovery at each of its own fences.
#[test]
fn crash_during_recovery() {
    run_map_crash_test::<PBTreeMap>(
        CrashTest::new(1 << 20)
            .random_subsets(1)
            .crash_during_recovery(true),
        map_workload(2, 30, 20),
    );
}
