//! The structures against the standard library's collections under a few thousand random
//! operations, checking every return value and, regularly, the structures' invariants and the
//! pool's consistency.

mod common;

use std::collections::{BTreeMap, HashMap, VecDeque};

use common::{create_all, pool_is_clean, AllRoot, Rng};
use pmem_core::Pool;
use pmem_examples::cli::Map;

fn pool() -> Pool<AllRoot> {
    let pool = Pool::<AllRoot>::builder()
        .create_simulated(16 << 20)
        .unwrap();
    create_all(&pool).unwrap();
    pool
}

/// Inserts and removals on both maps at once, over a key range that makes both common; every
/// 250 operations the maps are verified and compared with the model in full.
#[test]
fn maps_match_the_standard_collections() {
    let pool = pool();
    let (hash, tree) = pool.read(|r| (r.root().hash, r.root().tree)).unwrap();
    let mut model: HashMap<u64, u64> = HashMap::new();
    let mut rng = Rng(42);
    let mut max_height = 0;
    for i in 0..4000u64 {
        // Grow for the first half, then shrink.
        let insert_percent = if i < 2000 { 70 } else { 35 };
        let key = rng.below(1500);
        if rng.chance(insert_percent) {
            let old = model.insert(key, i);
            pmem_examples::transaction(&pool, |tx| {
                assert_eq!(hash.insert(tx, key, i)?, old, "hash insert {key}");
                assert_eq!(tree.insert(tx, key, i)?, old, "tree insert {key}");
                Ok(())
            })
            .unwrap();
        } else {
            let old = model.remove(&key);
            pmem_examples::transaction(&pool, |tx| {
                assert_eq!(hash.remove(tx, &key)?, old, "hash remove {key}");
                assert_eq!(tree.remove(tx, &key)?, old, "tree remove {key}");
                Ok(())
            })
            .unwrap();
        }
        let probe = rng.below(1500);
        pool.read(|r| {
            assert_eq!(
                hash.get(r, &probe).unwrap().copied(),
                model.get(&probe).copied()
            );
            assert_eq!(
                tree.get(r, &probe).unwrap().copied(),
                model.get(&probe).copied()
            );
        })
        .unwrap();
        if i % 250 == 249 {
            let mut expected: Vec<(u64, u64)> = model.iter().map(|(&k, &v)| (k, v)).collect();
            expected.sort_unstable();
            pool.read(|r| {
                let mut h = Map::verify(hash, r).unwrap();
                h.sort_unstable();
                assert_eq!(h, expected, "hash map after {i} operations");
                assert_eq!(Map::verify(tree, r).unwrap(), expected, "B-tree after {i}");
                assert_eq!(Map::entries(tree, r).unwrap(), expected, "B-tree iteration");
                assert_eq!(hash.len(r).unwrap(), model.len() as u64);
                assert_eq!(tree.len(r).unwrap(), model.len() as u64);
                max_height = max_height.max(tree.height(r).unwrap());
            })
            .unwrap();
            pool_is_clean(&pool).unwrap();
        }
    }
    assert!(max_height >= 4, "the tree reached only {max_height} levels");
}

/// Enqueues and dequeues, sometimes several per transaction, against a `VecDeque`.
#[test]
fn queue_matches_vecdeque() {
    let pool = pool();
    let queue = pool.read(|r| r.root().queue).unwrap();
    let mut model: VecDeque<Vec<u8>> = VecDeque::new();
    let mut rng = Rng(7);
    for i in 0..3000usize {
        let n = 1 + rng.below(3) as usize;
        let ops: Vec<Option<Vec<u8>>> = (0..n)
            .map(|_| {
                rng.chance(if i < 1500 { 60 } else { 40 }).then(|| {
                    let len = rng.below(40) as usize;
                    (0..len).map(|j| (i * 7 + j) as u8).collect()
                })
            })
            .collect();
        pmem_examples::transaction(&pool, |tx| {
            for op in &ops {
                match op {
                    Some(m) => queue.enqueue(tx, m)?,
                    None => assert_eq!(queue.dequeue(tx)?.as_ref(), model.front()),
                }
                match op {
                    Some(m) => model.push_back(m.clone()),
                    None => {
                        model.pop_front();
                    }
                }
            }
            Ok(())
        })
        .unwrap();
        pool.read(|r| {
            assert_eq!(queue.len(r).unwrap(), model.len() as u64);
            assert_eq!(queue.peek(r).unwrap().as_ref(), model.front());
        })
        .unwrap();
        if i % 300 == 299 {
            let all = pool.read(|r| queue.verify(r)).unwrap().unwrap();
            assert_eq!(all, Vec::from(model.clone()));
            let iterated: Vec<Vec<u8>> = pool
                .read(|r| queue.iter(r).collect::<Result<_, _>>())
                .unwrap()
                .unwrap();
            assert_eq!(iterated, all);
            pool_is_clean(&pool).unwrap();
        }
    }
}

/// The B-tree's iteration order and the model's agree after random inserts of sparse keys.
#[test]
fn btree_iterates_in_key_order() {
    let pool = pool();
    let tree = pool.read(|r| r.root().tree).unwrap();
    let mut model = BTreeMap::new();
    let mut rng = Rng(3);
    pmem_examples::transaction(&pool, |tx| {
        for i in 0..2000 {
            let key = rng.next_u64();
            model.insert(key, i);
            tree.insert(tx, key, i)?;
        }
        Ok(())
    })
    .unwrap();
    let entries = pool.read(|r| Map::entries(tree, r)).unwrap().unwrap();
    assert_eq!(entries, model.into_iter().collect::<Vec<_>>());
}
