//! The generic maps of `pmem-collections` on the W5 workload: `w5g` runs W5 (the same keys,
//! insert then lookup, one transaction per insert, one read guard around the lookups) through
//! `PHashMap<u64, u64>` instead of the hand-written map of `hashmap.rs`; `btree` runs the same
//! keys through `PBTreeMap<u64, u64>`.
//!
//! The hash map is made with room for 2^20 entries, W5's bucket count, so neither loop
//! includes a growth (a table of 2^21 slots of 24 bytes, 48 MiB, with the pairs inline, against
//! W5's 8 MiB of bucket heads plus an object per entry: open addressing keeps a quarter of the
//! slots free, and each slot keeps its hash).

use std::time::Instant;

use pmem_collections::{PBTreeMap, PHashMap};
use pmem_core::{Persistent, Pool, Reader};

use crate::common::{common_fields, destroy, per_op, report, splitmix64, Env, FlushTally, Result};

/// W5's bucket count: the map is made with room for this many entries.
const ROOM: u64 = 1 << 20;

#[derive(Persistent)]
#[repr(C)]
pub struct RootMaps {
    hash: PHashMap<u64, u64>,
    tree: PBTreeMap<u64, u64>,
}

/// Insert: one transaction per key, `PHashMap::insert`.
#[inline(never)]
pub fn w5g_insert_loop(pool: &Pool<RootMaps>, map: PHashMap<u64, u64>, keys: &[u64]) -> Result<()> {
    for (i, &key) in keys.iter().enumerate() {
        pool.transaction(|tx| map.insert(tx, key, i as u64))?;
    }
    Ok(())
}

/// Lookup: every key through one `PHashMap::view` under one read guard, summing the values.
/// The view reads the metadata and the table once, as W5 reads its bucket array once.
#[inline(never)]
pub fn w5g_lookup_loop(
    r: &Reader<'_, RootMaps>,
    map: PHashMap<u64, u64>,
    keys: &[u64],
) -> Result<(u64, u64)> {
    let view = map.view(r)?;
    let (mut sum, mut miss) = (0u64, 0u64);
    for key in keys {
        match view.get(key)? {
            Some(&v) => sum = sum.wrapping_add(v),
            None => miss += 1,
        }
    }
    Ok((sum, miss))
}

/// Insert: one transaction per key, `PBTreeMap::insert`.
#[inline(never)]
pub fn btree_insert_loop(
    pool: &Pool<RootMaps>,
    map: PBTreeMap<u64, u64>,
    keys: &[u64],
) -> Result<()> {
    for (i, &key) in keys.iter().enumerate() {
        pool.transaction(|tx| map.insert(tx, key, i as u64))?;
    }
    Ok(())
}

/// Lookup: `PBTreeMap::get` of every key under one read guard, summing the values.
#[inline(never)]
pub fn btree_get_loop(
    r: &Reader<'_, RootMaps>,
    map: PBTreeMap<u64, u64>,
    keys: &[u64],
) -> Result<(u64, u64)> {
    let (mut sum, mut miss) = (0u64, 0u64);
    for key in keys {
        match map.get(r, key)? {
            Some(&v) => sum = sum.wrapping_add(v),
            None => miss += 1,
        }
    }
    Ok((sum, miss))
}

/// Which map a run measures.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Hash,
    Tree,
}

pub fn run(env: &Env, which: Which) -> Result<()> {
    // The hash map's view checks the table once, and its slots hold the pairs: no pointer to
    // check per lookup. The B-tree checks every node it reads.
    let (tag, name, lookup) = match which {
        Which::Hash => ("w5g", "W5G-phashmap", "one_read_guard_one_checked_view"),
        Which::Tree => ("btree", "BTREE-pbtreemap", "one_read_guard_checked_get"),
    };
    let path = env.pool_path(tag);
    let n = env.n;
    let mut state = 42;
    let keys: Vec<u64> = (0..n).map(|_| splitmix64(&mut state)).collect();
    let (mut ins_ns, mut look_ns) = (Vec::new(), Vec::new());
    let (mut tally, mut look_tally) = (FlushTally::default(), FlushTally::default());
    let mut fields = String::new();
    let mut shape = String::new();
    for rep in 0..env.reps {
        let (pool, _) = env.create::<RootMaps>(&path)?;
        // Setup (untimed): the empty map, rooted.
        let (hash, tree) = pool.transaction(|tx| -> pmem_collections::Result<_> {
            let hash = match which {
                Which::Hash => PHashMap::with_capacity(tx, ROOM)?,
                Which::Tree => PHashMap::null(),
            };
            let tree = match which {
                Which::Tree => PBTreeMap::new(tx)?,
                Which::Hash => PBTreeMap::null(),
            };
            tx.root_mut().set_hash(hash)?;
            tx.root_mut().set_tree(tree)?;
            Ok((hash, tree))
        })?;
        let before = pool.stats().flush;
        let t0 = Instant::now();
        match which {
            Which::Hash => w5g_insert_loop(&pool, hash, &keys)?,
            Which::Tree => btree_insert_loop(&pool, tree, &keys)?,
        }
        let t1 = Instant::now();
        let mid = pool.stats().flush;
        tally.add(&before, &mid, n);
        let t_look = Instant::now();
        let (sum, miss) = {
            let r = pool.reader()?;
            match which {
                Which::Hash => w5g_lookup_loop(&r, hash, &keys)?,
                Which::Tree => btree_get_loop(&r, tree, &keys)?,
            }
        };
        let t2 = Instant::now();
        look_tally.add(&mid, &pool.stats().flush, n);
        let want = if n == 0 { 0 } else { n * (n - 1) / 2 };
        if miss != 0 || sum != want {
            return Err(format!("{tag}: lookup verification failed miss={miss} sum={sum}").into());
        }
        ins_ns.push(per_op((t1 - t0).as_nanos() as u64, n));
        look_ns.push(per_op((t2 - t_look).as_nanos() as u64, n));
        if rep == 0 {
            shape = pool.read(|r| -> pmem_collections::Result<String> {
                Ok(match which {
                    Which::Hash => format!(
                        "slots={} len={}",
                        r.get(hash.as_ptr())?.slots.len(),
                        hash.len(r)?
                    ),
                    Which::Tree => format!("height={} len={}", tree.height(r)?, tree.len(r)?),
                })
            })??;
        }
        fields = common_fields(&pool, env);
        destroy(pool, &path);
    }
    let extra = format!("{shape} fresh_pool_per_rep=1 {fields}");
    report(
        &format!("{name}-insert"),
        &ins_ns,
        n,
        &format!("{extra} {}", tally.fields()),
    );
    report(
        &format!("{name}-lookup"),
        &look_ns,
        n,
        &format!("{extra} lookup={lookup} {}", look_tally.fields()),
    );
    Ok(())
}
