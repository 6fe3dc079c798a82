//! PBTreeMap against std's BTreeMap: random sequences of transactions (some aborted) over a
//! small key range, so that nodes split, borrow, merge and the root grows and shrinks; contents,
//! ranges, first and last compared after every transaction, and again after the pool is closed
//! and reopened, when the deep check must also pass with nothing leaked.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::PathBuf;

use pmem_collections::{PBTreeMap, Result};
use pmem_core::{Persistent, Pool, PoolRead};
use proptest::prelude::*;

#[derive(Persistent)]
#[repr(C)]
struct Root {
    map: PBTreeMap<u64, u64>,
    signed: PBTreeMap<i32, [u8; 4]>,
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u64, u64),
    Remove(u64),
    Get(u64),
    GetMut(u64, u64),
    Range(Bound<u64>, Bound<u64>),
    Clear,
}

fn bound() -> impl Strategy<Value = Bound<u64>> {
    prop_oneof![
        Just(Bound::Unbounded),
        (0..90u64).prop_map(Bound::Included),
        (0..90u64).prop_map(Bound::Excluded),
    ]
}

fn op(keys: u64) -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (0..keys, any::<u64>()).prop_map(|(k, v)| Op::Insert(k, v)),
        6 => (0..keys).prop_map(Op::Remove),
        2 => (0..keys).prop_map(Op::Get),
        1 => (0..keys, any::<u64>()).prop_map(|(k, v)| Op::GetMut(k, v)),
        2 => (bound(), bound()).prop_map(|(a, b)| Op::Range(a, b)),
        1 => Just(Op::Clear),
    ]
}

/// Transactions: a few operations each, and whether the transaction aborts after them.
fn steps() -> impl Strategy<Value = Vec<(Vec<Op>, bool)>> {
    prop::collection::vec(
        (
            prop::collection::vec(op(80), 1..12),
            prop::bool::weighted(0.1),
        ),
        1..10,
    )
}

/// Whether std's `range` accepts the bounds (it panics on start > end, or equal and both
/// excluded); the persistent map yields nothing for them.
fn valid(a: Bound<u64>, b: Bound<u64>) -> bool {
    use Bound::*;
    match (a, b) {
        (Included(x) | Excluded(x), Included(y) | Excluded(y)) => {
            x < y || (x == y && !matches!((a, b), (Excluded(_), Excluded(_))))
        }
        _ => true,
    }
}

fn apply(
    map: PBTreeMap<u64, u64>,
    tx: &mut pmem_core::Tx<'_, Root>,
    op: &Op,
    model: &mut BTreeMap<u64, u64>,
) -> Result<()> {
    match *op {
        Op::Insert(k, v) => assert_eq!(map.insert(tx, k, v)?, model.insert(k, v)),
        Op::Remove(k) => assert_eq!(map.remove(tx, &k)?, model.remove(&k)),
        Op::Get(k) => {
            assert_eq!(map.get(tx, &k)?, model.get(&k));
            assert_eq!(map.contains_key(tx, &k)?, model.contains_key(&k));
        }
        Op::GetMut(k, v) => match (map.get_mut(tx, &k)?, model.get_mut(&k)) {
            (Some(got), Some(want)) => {
                assert_eq!(got, want);
                (*got, *want) = (v, v);
            }
            (None, None) => {}
            (got, want) => panic!("get_mut {k}: {got:?} against {want:?}"),
        },
        Op::Range(a, b) => {
            let got: Vec<(u64, u64)> = map
                .range(tx, (a, b))
                .map(|e| e.map(|(k, v)| (*k, *v)))
                .collect::<Result<_>>()?;
            let want: Vec<(u64, u64)> = if valid(a, b) {
                model.range((a, b)).map(|(&k, &v)| (k, v)).collect()
            } else {
                Vec::new()
            };
            assert_eq!(got, want, "range {a:?}..{b:?}");
        }
        Op::Clear => {
            map.clear(tx)?;
            model.clear();
        }
    }
    Ok(())
}

fn check_against(map: PBTreeMap<u64, u64>, r: &impl PoolRead, model: &BTreeMap<u64, u64>) {
    map.verify(r).unwrap();
    let entries: Vec<(u64, u64)> = map
        .iter(r)
        .map(|e| e.map(|(k, v)| (*k, *v)))
        .collect::<Result<_>>()
        .unwrap();
    let want: Vec<(u64, u64)> = model.iter().map(|(&k, &v)| (k, v)).collect();
    assert_eq!(entries, want);
    assert_eq!(map.len(r).unwrap(), model.len() as u64);
    assert_eq!(map.first_key_value(r).unwrap(), model.first_key_value());
    assert_eq!(map.last_key_value(r).unwrap(), model.last_key_value());
    let keys: Vec<u64> = map
        .keys(r)
        .map(|k| k.copied())
        .collect::<Result<_>>()
        .unwrap();
    assert!(keys.iter().eq(model.keys()));
    let values: Vec<u64> = map
        .values(r)
        .map(|k| k.copied())
        .collect::<Result<_>>()
        .unwrap();
    assert!(values.iter().eq(model.values()));
}

const SIZE: u64 = 4 << 20;

thread_local! {
    /// One pool file per test thread, shared by its cases: each starts by clearing the map.
    static POOL: RefCell<Option<(tempfile::TempDir, PathBuf)>> = const { RefCell::new(None) };
}

/// Runs `case` on the shared pool, then reopens it and runs `after` and the deep check.
fn with_pool<M>(case: impl FnOnce(&Pool<Root>) -> M, after: impl FnOnce(&Pool<Root>, M)) {
    POOL.with(|slot| {
        let mut slot = slot.borrow_mut();
        let (_, path) = slot.get_or_insert_with(|| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("btree.pool");
            let pool = Pool::<Root>::builder()
                .force_pmem(true)
                .create(&path, SIZE)
                .unwrap();
            pool.transaction(|tx| -> Result<()> {
                let map = PBTreeMap::new(tx)?;
                let signed = PBTreeMap::new(tx)?;
                tx.root_mut().set_map(map)?;
                Ok(tx.root_mut().set_signed(signed)?)
            })
            .unwrap();
            (dir, path)
        });
        let model = {
            let pool = Pool::<Root>::builder()
                .force_pmem(true)
                .open(&*path)
                .unwrap();
            case(&pool)
        };
        let pool = Pool::<Root>::builder()
            .force_pmem(true)
            .open(&*path)
            .unwrap();
        after(&pool, model);
        let report = pmem_core::check::check(&pool);
        assert!(
            report.is_healthy() && report.unreachable.is_empty(),
            "{report}"
        );
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn map_matches_std(steps in steps()) {
        with_pool(|pool| {
            let mut model = BTreeMap::new();
            let map = pool.read(|r| r.root().map).unwrap();
            pool.transaction(|tx| map.clear(tx)).unwrap();
            for (ops, abort) in &steps {
                let mut next = model.clone();
                let outcome = pool.transaction(|tx| -> Result<()> {
                    for op in ops {
                        apply(map, tx, op, &mut next)?;
                    }
                    if *abort {
                        return Err(tx.abort().into());
                    }
                    Ok(())
                });
                assert_eq!(outcome.is_ok(), !abort, "{outcome:?}");
                if !abort {
                    model = next;
                }
                pool.read(|r| check_against(map, r, &model)).unwrap();
            }
            model
        }, |pool, model| {
            let map = pool.read(|r| r.root().map).unwrap();
            pool.read(|r| check_against(map, r, &model)).unwrap();
        });
    }

    /// Signed keys order below zero first: the tree uses `Ord`, not the bytes.
    #[test]
    fn signed_keys_match_std(ops in prop::collection::vec((-40..40i32, any::<[u8; 4]>(), any::<bool>()), 1..80)) {
        with_pool(|pool| {
            let mut model = BTreeMap::new();
            let tree = pool.read(|r| r.root().signed).unwrap();
            pool.transaction(|tx| -> Result<()> {
                tree.clear(tx)?;
                for &(k, v, insert) in &ops {
                    if insert {
                        assert_eq!(tree.insert(tx, k, v)?, model.insert(k, v));
                    } else {
                        assert_eq!(tree.remove_entry(tx, &k)?, model.remove_entry(&k));
                    }
                }
                Ok(())
            }).unwrap();
            model
        }, |pool, model| {
            let tree = pool.read(|r| r.root().signed).unwrap();
            pool.read(|r| -> Result<()> {
                tree.verify(r)?;
                let found: Vec<(i32, [u8; 4])> =
                    tree.iter(r).map(|e| e.map(|(k, v)| (*k, *v))).collect::<Result<_>>()?;
                assert_eq!(found, model.into_iter().collect::<Vec<_>>());
                Ok(())
            }).unwrap().unwrap();
        });
    }
}
