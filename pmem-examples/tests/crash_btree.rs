//! Crash test of the B-tree: at every fence of a random workload (inserts, replacements,
//! removals with borrowing and merging, root splits and shrinks, multi-operation and aborted transactions), every crash image recovers to a
//! tree that is ordered and balanced and whose contents are exactly the committed operations,
//! with nothing leaked.

mod common;

use std::collections::BTreeMap;

use common::{crash_test, pool_is_clean, steps, Rng};
use pmem_core::crash::CrashTest;
use pmem_core::{Persistent, Pool};
use pmem_examples::btree::PBTreeMap;

#[derive(Persistent)]
#[repr(C)]
struct Root {
    map: PBTreeMap,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Insert(u64, u64),
    Remove(u64),
}

fn model(m: &mut BTreeMap<u64, u64>, op: &Op) {
    match *op {
        Op::Insert(k, v) => {
            m.insert(k, v);
        }
        Op::Remove(k) => {
            m.remove(&k);
        }
    }
}

fn observe(pool: &Pool<Root>) -> Result<BTreeMap<u64, u64>, String> {
    let map = pool.read(|r| r.root().map);
    let entries = if map.is_null() {
        Vec::new()
    } else {
        // `verify` checks the order of the keys, node fill and leaf depth.
        pool.read(|r| map.verify(r))?
    };
    pool_is_clean(pool)?;
    Ok(entries.into_iter().collect())
}

fn workload(seed: u64, n: usize, keys: u64) -> Vec<common::Step<Op>> {
    let mut rng = Rng(seed);
    let ops = (0..n)
        .map(|i| {
            if rng.chance(70) {
                Op::Insert(rng.below(keys), i as u64)
            } else {
                Op::Remove(rng.below(keys))
            }
        })
        .collect();
    steps(&mut rng, ops)
}

fn run(test: CrashTest, steps: Vec<common::Step<Op>>) {
    let report = crash_test(
        test,
        BTreeMap::new(),
        steps,
        |tx| {
            let map = PBTreeMap::create(tx)?;
            tx.root_mut().set_map(map)
        },
        |tx, op, before| {
            let map = tx.root().map;
            match *op {
                Op::Insert(k, v) => {
                    assert_eq!(map.insert(tx, k, v)?, before.get(&k).copied());
                }
                Op::Remove(k) => {
                    assert_eq!(map.remove(tx, k)?, before.get(&k).copied());
                }
            }
            Ok(())
        },
        model,
        observe,
    );
    report.assert_ok();
    eprintln!("{report}");
}

/// About 250 operations over 120 keys: the tree grows to three levels, and removals borrow
/// from siblings, merge nodes and shrink the root.
#[test]
fn random_operations_survive_every_crash() {
    run(CrashTest::new(2 << 20), workload(1, 250, 120));
}

/// Fill the tree in order, then empty it in order: every node splits, then every node merges,
/// down to an empty root.
#[test]
fn fill_then_drain_survives_every_crash() {
    let mut ops: Vec<Op> = (0..60).map(|k| Op::Insert(k, k)).collect();
    ops.extend((0..60).map(Op::Remove));
    let steps = ops
        .into_iter()
        .map(|op| common::Step {
            ops: vec![op],
            abort: false,
        })
        .collect();
    run(CrashTest::new(1 << 20), steps);
}

/// A short run that also crashes every recovery at each of its own fences.
#[test]
fn crash_during_recovery() {
    run(
        CrashTest::new(1 << 20)
            .random_subsets(1)
            .crash_during_recovery(true),
        workload(2, 30, 20),
    );
}
