//! pmem: a pool file, in the flush mode it detects (`msync` on an ordinary file) or, for
//! F1-shm, with cache-line flushes forced. Counters live in the root, one per cache line; the
//! index is a `PHashMap<u64, [u8; 24]>` or a `PBTreeMap<u64, [u8; 24]>` rooted there, made
//! empty at setup, growing as it is filled.

use std::path::Path;

use pmem_collections::{PBTreeMap, PHashMap};
use pmem_core::{FlushStats, Persistent, Pool};

use crate::error::Result;
use crate::keys::{value_of, Value};
use crate::run::{Counters, Described, Index};

/// The pool's layout name.
const LAYOUT: &str = "files-bench";
/// The pool file's name inside the run's directory.
const FILE: &str = "bench.pool";

/// How to make the pool.
#[derive(Debug, Clone, Copy)]
pub struct PoolConfig {
    /// Bytes of the pool file.
    pub size: u64,
    /// Flush with cache-line instructions even on a non-DAX file (tmpfs, F1-shm).
    pub force_pmem: bool,
}

/// The root of the counter workloads: two counters on separate cache lines, so F4's two
/// threads never write the same line.
#[derive(Persistent, Debug)]
#[repr(C)]
pub struct CounterRoot {
    c0: u64,
    pad0: [u8; 56],
    c1: u64,
    pad1: [u8; 56],
}

/// The root of the index workloads: the one index a run uses (the other stays null).
#[derive(Persistent, Debug)]
#[repr(C)]
pub struct IndexRoot {
    hash: PHashMap<u64, Value>,
    tree: PBTreeMap<u64, Value>,
}

fn create<R: Persistent>(dir: &Path, config: PoolConfig) -> Result<Pool<R>> {
    Ok(Pool::<R>::builder()
        .layout(LAYOUT)
        .force_pmem(config.force_pmem)
        .create(dir.join(FILE), config.size)?)
}

fn settings<R: Persistent>(pool: &Pool<R>) -> String {
    format!("flush_mode={}", pool.info().flush_mode.name())
}

/// A pool whose root holds the counters.
#[derive(Debug)]
pub struct PmemCounters {
    pool: Pool<CounterRoot>,
}

impl PmemCounters {
    /// Creates the pool in `dir` (the counters start at 0, as a new pool's root is zeroed).
    pub fn create(dir: &Path, config: PoolConfig) -> Result<Self> {
        Ok(PmemCounters {
            pool: create(dir, config)?,
        })
    }
}

impl Described for PmemCounters {
    fn settings(&self) -> String {
        settings(&self.pool)
    }

    fn flush_stats(&self) -> Option<FlushStats> {
        Some(self.pool.stats().flush)
    }
}

impl Counters for PmemCounters {
    fn increment(&self, which: usize) -> Result<()> {
        self.pool.transaction(|tx| {
            if which == 0 {
                let c = tx.root().c0;
                tx.root_mut().set_c0(c + 1)
            } else {
                let c = tx.root().c1;
                tx.root_mut().set_c1(c + 1)
            }
        })?;
        Ok(())
    }

    fn get(&self, which: usize) -> Result<u64> {
        Ok(self.pool.read(|r| {
            let root = r.root();
            if which == 0 {
                root.c0
            } else {
                root.c1
            }
        })?)
    }
}

/// Which pmem-collections map the index is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapKind {
    /// `PHashMap`.
    Hash,
    /// `PBTreeMap`.
    BTree,
}

#[derive(Debug, Clone, Copy)]
enum Map {
    Hash(PHashMap<u64, Value>),
    BTree(PBTreeMap<u64, Value>),
}

/// A pool whose root holds an index.
#[derive(Debug)]
pub struct PmemIndex {
    pool: Pool<IndexRoot>,
    map: Map,
}

impl PmemIndex {
    /// Creates the pool in `dir` and, in one transaction, an empty map of `kind` in its root.
    pub fn create(dir: &Path, config: PoolConfig, kind: MapKind) -> Result<Self> {
        let pool = create::<IndexRoot>(dir, config)?;
        let map = pool.transaction(|tx| -> pmem_collections::Result<Map> {
            Ok(match kind {
                MapKind::Hash => {
                    let map = PHashMap::new(tx)?;
                    tx.root_mut().set_hash(map)?;
                    Map::Hash(map)
                }
                MapKind::BTree => {
                    let map = PBTreeMap::new(tx)?;
                    tx.root_mut().set_tree(map)?;
                    Map::BTree(map)
                }
            })
        })?;
        Ok(PmemIndex { pool, map })
    }
}

impl Described for PmemIndex {
    fn settings(&self) -> String {
        let map = match self.map {
            Map::Hash(_) => "phashmap",
            Map::BTree(_) => "pbtreemap",
        };
        format!("{} index={map}", settings(&self.pool))
    }

    fn flush_stats(&self) -> Option<FlushStats> {
        Some(self.pool.stats().flush)
    }
}

impl Index for PmemIndex {
    fn insert_batch(&mut self, keys: &[u64]) -> Result<()> {
        let map = self.map;
        self.pool
            .transaction(|tx| -> pmem_collections::Result<()> {
                for &key in keys {
                    match map {
                        Map::Hash(m) => m.insert(tx, key, value_of(key))?,
                        Map::BTree(m) => m.insert(tx, key, value_of(key))?,
                    };
                }
                Ok(())
            })?;
        Ok(())
    }

    fn key_count(&self) -> Result<u64> {
        let map = self.map;
        Ok(self.pool.read(|r| match map {
            Map::Hash(m) => m.len(r),
            Map::BTree(m) => m.len(r),
        })??)
    }

    fn get(&self, key: u64) -> Result<Option<Value>> {
        let map = self.map;
        Ok(self.pool.read(|r| match map {
            Map::Hash(m) => m.get(r, &key).map(Option::<&Value>::copied),
            Map::BTree(m) => m.get(r, &key).map(Option::<&Value>::copied),
        })??)
    }
}
