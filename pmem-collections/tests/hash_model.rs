//! PHashMap and PHashSet against std's HashMap and HashSet: random sequences of transactions
//! (some aborted) over a small key range, so that slots collide and tables grow, rebuild and
//! fill with tombstones; compared after every transaction and again after the pool is closed
//! and reopened, when the deep check must also pass with nothing leaked.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use pmem_collections::{PHashMap, PHashSet, Result};
use pmem_core::{Persistent, Pool, PoolRead};
use proptest::prelude::*;

/// A key of three words and a tail, to hash more than one word and a partial one.
#[derive(Persistent, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(C)]
struct Wide {
    words: [u32; 3],
}

#[derive(Persistent)]
#[repr(C)]
struct Root {
    map: PHashMap<u64, u64>,
    set: PHashSet<u64>,
    wide: PHashMap<Wide, u32>,
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u64, u64),
    Remove(u64),
    Get(u64),
    EntryAdd(u64, u64),
    GetMut(u64, u64),
    EntryRemove(u64),
    Reserve(u64),
    Clear,
}

fn op(keys: u64) -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..keys, any::<u64>()).prop_map(|(k, v)| Op::Insert(k, v)),
        4 => (0..keys).prop_map(Op::Remove),
        2 => (0..keys).prop_map(Op::Get),
        2 => (0..keys, 0..100u64).prop_map(|(k, d)| Op::EntryAdd(k, d)),
        1 => (0..keys, any::<u64>()).prop_map(|(k, v)| Op::GetMut(k, v)),
        1 => (0..keys).prop_map(Op::EntryRemove),
        1 => (0..40u64).prop_map(Op::Reserve),
        1 => Just(Op::Clear),
    ]
}

/// Transactions: a few operations each, and whether the transaction aborts after them.
fn steps() -> impl Strategy<Value = Vec<(Vec<Op>, bool)>> {
    prop::collection::vec(
        (
            prop::collection::vec(op(40), 1..6),
            prop::bool::weighted(0.1),
        ),
        1..12,
    )
}

fn apply(
    map: PHashMap<u64, u64>,
    tx: &mut pmem_core::Tx<'_, Root>,
    op: &Op,
    model: &mut HashMap<u64, u64>,
) -> Result<()> {
    match *op {
        Op::Insert(k, v) => assert_eq!(map.insert(tx, k, v)?, model.insert(k, v)),
        Op::Remove(k) => assert_eq!(map.remove(tx, &k)?, model.remove(&k)),
        Op::Get(k) => {
            assert_eq!(map.get(tx, &k)?, model.get(&k));
            assert_eq!(map.contains_key(tx, &k)?, model.contains_key(&k));
        }
        Op::EntryAdd(k, d) => {
            let got = map.entry(tx, k)?.or_insert(0)?;
            *got = got.wrapping_add(d);
            let want = model.entry(k).or_insert(0);
            *want = want.wrapping_add(d);
            assert_eq!(*got, *want);
        }
        Op::GetMut(k, v) => match (map.get_mut(tx, &k)?, model.get_mut(&k)) {
            (Some(got), Some(want)) => {
                assert_eq!(got, want);
                (*got, *want) = (v, v);
            }
            (None, None) => {}
            (got, want) => panic!("get_mut {k}: {got:?} against {want:?}"),
        },
        Op::EntryRemove(k) => match map.entry(tx, k)? {
            pmem_collections::hash::Entry::Occupied(e) => {
                assert_eq!(Some(e.remove()?), model.remove(&k));
            }
            pmem_collections::hash::Entry::Vacant(e) => {
                assert_eq!(*e.key(), k);
                assert!(!model.contains_key(&k));
            }
        },
        Op::Reserve(n) => {
            map.reserve(tx, n)?;
            assert!(map.capacity(tx)? >= model.len() as u64 + n);
        }
        Op::Clear => {
            map.clear(tx)?;
            model.clear();
        }
    }
    Ok(())
}

fn contents(map: PHashMap<u64, u64>, r: &impl PoolRead) -> Result<HashMap<u64, u64>> {
    map.verify(r)?;
    let entries: HashMap<u64, u64> = map
        .iter(r)
        .map(|e| e.map(|(k, v)| (*k, *v)))
        .collect::<Result<_>>()?;
    assert_eq!(map.len(r)?, entries.len() as u64);
    let keys: HashSet<u64> = map.keys(r).map(|k| k.copied()).collect::<Result<_>>()?;
    assert_eq!(keys, entries.keys().copied().collect());
    assert_eq!(map.values(r).count(), entries.len());
    Ok(entries)
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
            let path = dir.path().join("hash.pool");
            let pool = Pool::<Root>::builder()
                .force_pmem(true)
                .create(&path, SIZE)
                .unwrap();
            pool.transaction(|tx| -> Result<()> {
                let map = PHashMap::new(tx)?;
                let set = PHashSet::new(tx)?;
                let wide = PHashMap::new(tx)?;
                let mut root = tx.root_mut();
                root.set_map(map)?;
                root.set_set(set)?;
                Ok(root.set_wide(wide)?)
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
            let mut model = HashMap::new();
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
                assert_eq!(pool.read(|r| contents(map, r)).unwrap().unwrap(), model);
            }
            model
        }, |pool, model| {
            let map = pool.read(|r| r.root().map).unwrap();
            assert_eq!(pool.read(|r| contents(map, r)).unwrap().unwrap(), model);
        });
    }

    #[test]
    fn set_matches_std(ops in prop::collection::vec((0..30u64, 0..3u8), 1..60)) {
        with_pool(|pool| {
            let mut model = HashSet::new();
            let set = pool.read(|r| r.root().set).unwrap();
            pool.transaction(|tx| -> Result<()> {
                set.clear(tx)?;
                for &(k, what) in &ops {
                    match what {
                        0 => assert_eq!(set.insert(tx, k)?, model.insert(k)),
                        1 => assert_eq!(set.remove(tx, &k)?, model.remove(&k)),
                        _ => {
                            assert_eq!(set.contains(tx, &k)?, model.contains(&k));
                            assert_eq!(set.get(tx, &k)?.copied(), model.get(&k).copied());
                        }
                    }
                }
                Ok(())
            }).unwrap();
            model
        }, |pool, model| {
            let set = pool.read(|r| r.root().set).unwrap();
            pool.read(|r| -> Result<()> {
                set.verify(r)?;
                let found: HashSet<u64> = set.iter(r).map(|k| k.copied()).collect::<Result<_>>()?;
                assert_eq!(found, model);
                assert_eq!(set.len(r)?, model.len() as u64);
                Ok(())
            }).unwrap().unwrap();
        });
    }

    #[test]
    fn wide_keys_match_std(ops in prop::collection::vec((0..4u32, 0..8u32, any::<u32>(), any::<bool>()), 1..60)) {
        with_pool(|pool| {
            let mut model = HashMap::new();
            let wide = pool.read(|r| r.root().wide).unwrap();
            pool.transaction(|tx| -> Result<()> {
                wide.clear(tx)?;
                for &(a, b, v, insert) in &ops {
                    let key = Wide { words: [a, b, a ^ b] };
                    if insert {
                        assert_eq!(wide.insert(tx, key, v)?, model.insert(key, v));
                    } else {
                        assert_eq!(wide.remove(tx, &key)?, model.remove(&key));
                    }
                }
                Ok(())
            }).unwrap();
            model
        }, |pool, model| {
            let wide = pool.read(|r| r.root().wide).unwrap();
            pool.read(|r| -> Result<()> {
                wide.verify(r)?;
                let found: HashMap<Wide, u32> =
                    wide.iter(r).map(|e| e.map(|(k, v)| (*k, *v))).collect::<Result<_>>()?;
                assert_eq!(found, model);
                Ok(())
            }).unwrap().unwrap();
        });
    }
}
