//! Crash tests of PBTreeMap on the simulated persistence domain: at every fence of a random
//! workload (inserts, replacements, removals with borrowing and merging, root splits and
//! shrinks, a clear, multi-operation and aborted transactions), every crash image recovers to a
//! tree that passes `verify` (ordered, balanced, counted) and holds exactly the committed
//! entries (or those of the transaction in flight, once it committed), in a pool the deep check
//! finds clean.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use pmem_collections::{PBTreeMap, Result};
use pmem_core::crash::CrashTest;
use pmem_core::{Persistent, Pool};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    map: PBTreeMap<u64, u64>,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Insert(u64, u64),
    Remove(u64),
    Clear,
}

type Model = BTreeMap<u64, u64>;

fn model(m: &mut Model, op: Op) {
    match op {
        Op::Insert(k, v) => {
            m.insert(k, v);
        }
        Op::Remove(k) => {
            m.remove(&k);
        }
        Op::Clear => m.clear(),
    }
}

/// SplitMix64, to draw the workload.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

/// `n` operations over `keys` keys, 70% inserts, in transactions of one to three operations,
/// about one in twelve aborted; a clear two thirds of the way.
fn workload(seed: u64, n: usize, keys: u64) -> Vec<(Vec<Op>, bool)> {
    let mut rng = Rng(seed);
    let mut steps = Vec::new();
    let mut i = 0;
    while i < n {
        let count = if rng.below(100) < 15 { 3 } else { 1 };
        let ops = (0..count)
            .map(|j| {
                if i + j == n * 2 / 3 {
                    Op::Clear
                } else if rng.below(100) < 70 {
                    Op::Insert(rng.below(keys), (i + j) as u64)
                } else {
                    Op::Remove(rng.below(keys))
                }
            })
            .collect();
        i += count;
        steps.push((ops, rng.below(12) == 0));
    }
    steps
}

fn run(test: CrashTest, steps: Vec<(Vec<Op>, bool)>, grown_to: u32) {
    // (committed, in flight)
    let expected: Arc<Mutex<(Model, Option<Model>)>> = Arc::default();
    let seen = Arc::clone(&expected);
    let report = test.run::<Root>(
        move |pool| {
            pool.transaction(|tx| -> Result<()> {
                let map = PBTreeMap::new(tx)?;
                Ok(tx.root_mut().set_map(map)?)
            })
            .map_err(pool_error)?;
            for (ops, abort) in &steps {
                let before = expected.lock().unwrap().0.clone();
                let mut after = before.clone();
                ops.iter().for_each(|&op| model(&mut after, op));
                expected.lock().unwrap().1 = (!abort).then(|| after.clone());
                let outcome = pool.transaction(|tx| -> Result<()> {
                    let map = tx.root().map;
                    let mut state = before.clone();
                    for &op in ops {
                        match op {
                            Op::Insert(k, v) => {
                                assert_eq!(map.insert(tx, k, v)?, state.get(&k).copied())
                            }
                            Op::Remove(k) => {
                                assert_eq!(map.remove(tx, &k)?, state.get(&k).copied())
                            }
                            Op::Clear => map.clear(tx)?,
                        }
                        model(&mut state, op);
                    }
                    if *abort {
                        return Err(tx.abort().into());
                    }
                    Ok(())
                });
                let mut e = expected.lock().unwrap();
                match outcome {
                    Ok(()) if !abort => e.0 = after,
                    Err(pmem_collections::Error::Pool(pmem_core::Error::Aborted { .. }))
                        if *abort => {}
                    other => panic!("unexpected outcome {other:?}"),
                }
                e.1 = None;
            }
            let height = pool.read(|r| r.root().map.height(r))?.map_err(pool_error)?;
            assert!(height >= grown_to, "the tree grew to {height} levels only");
            Ok(())
        },
        move |pool, _at| {
            let found = observe(pool)?;
            let e = seen.lock().unwrap_or_else(|p| p.into_inner());
            if found == e.0 || e.1.as_ref() == Some(&found) {
                Ok(())
            } else {
                Err(format!(
                    "recovered {found:?}\n    committed {:?}\n    in flight {:?}",
                    e.0, e.1
                ))
            }
        },
    );
    report.assert_ok();
    eprintln!("{report}");
}

fn pool_error(e: pmem_collections::Error) -> pmem_core::Error {
    match e {
        pmem_collections::Error::Pool(e) => e,
        other => panic!("{other}"),
    }
}

/// The map of a recovered pool, verified, in a pool with no problem and nothing leaked.
fn observe(pool: &Pool<Root>) -> std::result::Result<Model, String> {
    let map = pool.read(|r| r.root().map).map_err(|e| e.to_string())?;
    let entries = if map.is_null() {
        Model::new()
    } else {
        pool.read(|r| -> Result<Model> {
            map.verify(r)?;
            map.iter(r).map(|e| e.map(|(k, v)| (*k, *v))).collect()
        })
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?
    };
    let report = pmem_core::check::check(pool);
    if !report.is_healthy() || !report.unreachable.is_empty() {
        return Err(format!("deep check: {report}"));
    }
    Ok(entries)
}

/// About 250 operations over 120 keys: the tree grows to three levels, and removals borrow
/// from siblings, merge nodes and shrink the root; a clear empties it two thirds of the way.
#[test]
fn random_operations_survive_every_crash() {
    run(CrashTest::new(2 << 20), workload(1, 250, 120), 3);
}

/// Fill the tree in order, then empty it in order: every node splits, then every node merges,
/// down to an empty root.
#[test]
fn fill_then_drain_survives_every_crash() {
    let mut steps: Vec<(Vec<Op>, bool)> =
        (0..60).map(|k| (vec![Op::Insert(k, k)], false)).collect();
    steps.extend((0..60).map(|k| (vec![Op::Remove(k)], false)));
    run(CrashTest::new(1 << 20), steps, 0);
}

/// A short run that also crashes every recovery at each of its own fences.
#[test]
fn crash_during_recovery() {
    run(
        CrashTest::new(1 << 20)
            .random_subsets(1)
            .crash_during_recovery(true),
        workload(2, 30, 20),
        1,
    );
}
