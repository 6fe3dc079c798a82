//! A persistent chained hash map from `u64` to `u64`.
//!
//! ```text
//! PHashMap ──> HashMeta { count, seed, buckets: PSlice<PPtr<BucketBlock>> }
//!                                              │
//!                          ┌───────────────────┴──────┐
//!                          v                          v
//!                 BucketBlock [PPtr<Entry>; 16]   BucketBlock ...
//!                          │
//!                          v
//!                 Entry { key, value, next } ──> Entry ──> null
//! ```
//!
//! Buckets live in fixed-size blocks of [`BLOCK`] heads rather than in one slice, so that
//! linking an entry logs only the 8-byte head it changes: a transaction can write one element of
//! an array object (`set_at`) but only a whole `PSlice`.
//!
//! The map doubles its bucket count when it holds more entries than buckets. The resize is one
//! transaction: it allocates the new blocks, relinks every entry into them (logging each entry's
//! `next` pointer), points the metadata at the new directory and frees the old blocks. A crash
//! during it leaves the map as it was before the insert that triggered it.
//!
//! ```
//! use pmem_core::{Persistent, Pool};
//! use pmem_examples::transaction;
//! use pmem_examples::hashmap::PHashMap;
//!
//! #[derive(Persistent)]
//! #[repr(C)]
//! struct Root { map: PHashMap }
//!
//! let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
//! transaction(&pool, |tx| {
//!     let map = PHashMap::create(tx)?;
//!     tx.root_mut().set_map(map)?;
//!     map.insert(tx, 1, 100)?;
//!     map.insert(tx, 2, 200)?;
//!     Ok(())
//! })?;
//! let map = pool.read(|r| r.root().map)?;
//! assert_eq!(pool.read(|r| map.get(r, 2))??, Some(200));
//! assert_eq!(pool.read(|r| map.len(r))??, 2);
//! # Ok::<(), pmem_examples::Error>(())
//! ```

use pmem_core::{PPtr, PSlice, Persistent, Tx};

use crate::{Inconsistency, PoolRead, Result};

/// Bucket heads per block.
pub const BLOCK: usize = 16;

/// Seed of the hash function of new maps (kept in the map, so it can change without breaking
/// existing pools).
const DEFAULT_SEED: u64 = 0x243f_6a88_85a3_08d3;

/// A hash map in a pool: a handle (a persistent pointer to its metadata) that can be stored in
/// any persistent struct. The null handle is no map; [`create`](PHashMap::create) makes one.
#[derive(Persistent, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(transparent)]
pub struct PHashMap {
    meta: PPtr<HashMeta>,
}

/// The map's metadata.
#[derive(Persistent, Debug, Clone, Copy)]
#[repr(C)]
pub struct HashMeta {
    /// Number of entries.
    pub count: u64,
    /// Seed of the hash function.
    pub seed: u64,
    /// The bucket blocks; the bucket count is `BLOCK * buckets.len()`, a power of two.
    pub buckets: PSlice<PPtr<BucketBlock>>,
}

/// [`BLOCK`] bucket heads.
#[derive(Persistent, Debug, Clone, Copy)]
#[repr(C)]
pub struct BucketBlock {
    /// The first entry of each bucket's chain.
    pub heads: [PPtr<Entry>; BLOCK],
}

/// One key and its value, in a bucket's chain.
#[derive(Persistent, Debug, Clone, Copy)]
#[repr(C)]
pub struct Entry {
    /// The key.
    pub key: u64,
    /// The value.
    pub value: u64,
    /// The next entry of the same bucket.
    pub next: PPtr<Entry>,
}

/// The hash of `key` (a keyed 64-bit mix, the finaliser of SplitMix64).
pub fn hash(seed: u64, key: u64) -> u64 {
    let mut z = key ^ seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Where a key's chain starts: which block and which head in it.
fn slot(seed: u64, key: u64, blocks: u64) -> (usize, usize) {
    let bucket = hash(seed, key) & (blocks * BLOCK as u64 - 1);
    (
        (bucket / BLOCK as u64) as usize,
        (bucket % BLOCK as u64) as usize,
    )
}

/// Where the pointer to an entry lives: a bucket head or the `next` of the entry before it.
#[derive(Clone, Copy)]
enum Link {
    Head(PPtr<BucketBlock>, usize),
    Next(PPtr<Entry>),
}

impl Link {
    fn set<R: Persistent>(self, tx: &mut Tx<'_, R>, to: PPtr<Entry>) -> Result<()> {
        match self {
            Link::Head(block, i) => Ok(tx.edit(block)?.heads_mut().set_at(i, to)?),
            Link::Next(entry) => Ok(tx.edit(entry)?.set_next(to)?),
        }
    }
}

impl PHashMap {
    /// The null handle: no map.
    pub const fn null() -> Self {
        PHashMap { meta: PPtr::null() }
    }

    /// Whether this is the null handle.
    pub fn is_null(self) -> bool {
        self.meta.is_null()
    }

    /// Allocates an empty map with [`BLOCK`] buckets.
    pub fn create<R: Persistent>(tx: &mut Tx<'_, R>) -> Result<Self> {
        let block = tx.alloc_zeroed::<BucketBlock>()?;
        let buckets = tx.alloc_slice(&[block])?;
        let meta = tx.alloc(HashMeta {
            count: 0,
            seed: DEFAULT_SEED,
            buckets,
        })?;
        Ok(PHashMap { meta })
    }

    fn meta(self, r: &impl PoolRead) -> Result<HashMeta> {
        Ok(*r.get(self.meta)?)
    }

    /// Number of entries.
    pub fn len(self, r: &impl PoolRead) -> Result<u64> {
        Ok(self.meta(r)?.count)
    }

    /// Whether the map is empty.
    pub fn is_empty(self, r: &impl PoolRead) -> Result<bool> {
        Ok(self.len(r)? == 0)
    }

    /// Number of buckets.
    pub fn bucket_count(self, r: &impl PoolRead) -> Result<u64> {
        Ok(self.meta(r)?.buckets.len() * BLOCK as u64)
    }

    /// Finds `key`: the link pointing at its entry, the entry's pointer and a copy of it.
    fn find(self, r: &impl PoolRead, key: u64) -> Result<Option<(Link, PPtr<Entry>, Entry)>> {
        let meta = self.meta(r)?;
        let blocks = r.get_slice(meta.buckets)?;
        let (b, i) = slot(meta.seed, key, blocks.len() as u64);
        let block = blocks[b];
        let mut link = Link::Head(block, i);
        let mut p = r.get(block)?.heads[i];
        let mut steps = 0;
        while !p.is_null() {
            let entry = r.get(p)?;
            if entry.key == key {
                return Ok(Some((link, p, *entry)));
            }
            steps += 1;
            if steps > meta.count {
                return Err(Inconsistency::HashChainTooLong.into());
            }
            link = Link::Next(p);
            p = entry.next;
        }
        Ok(None)
    }

    /// The value of `key`.
    pub fn get(self, r: &impl PoolRead, key: u64) -> Result<Option<u64>> {
        Ok(self.find(r, key)?.map(|(_, _, entry)| entry.value))
    }

    /// Whether the map holds `key`.
    pub fn contains_key(self, r: &impl PoolRead, key: u64) -> Result<bool> {
        Ok(self.find(r, key)?.is_some())
    }

    /// Sets `key` to `value`; returns the value it replaced.
    pub fn insert<R: Persistent>(
        self,
        tx: &mut Tx<'_, R>,
        key: u64,
        value: u64,
    ) -> Result<Option<u64>> {
        if let Some((_, p, Entry { value: old, .. })) = self.find(tx, key)? {
            if old != value {
                tx.edit(p)?.set_value(value)?;
            }
            return Ok(Some(old));
        }
        let mut meta = self.meta(tx)?;
        if meta.count >= meta.buckets.len() * BLOCK as u64 {
            self.grow(tx)?;
            meta = self.meta(tx)?;
        }
        let (b, i) = slot(meta.seed, key, meta.buckets.len());
        let block = tx.get_slice(meta.buckets)?[b];
        let next = tx.get(block)?.heads[i];
        let entry = tx.alloc(Entry { key, value, next })?;
        tx.edit(block)?.heads_mut().set_at(i, entry)?;
        tx.edit(self.meta)?.set_count(meta.count + 1)?;
        Ok(None)
    }

    /// Removes `key`; returns its value.
    pub fn remove<R: Persistent>(self, tx: &mut Tx<'_, R>, key: u64) -> Result<Option<u64>> {
        let Some((link, p, Entry { value, next, .. })) = self.find(tx, key)? else {
            return Ok(None);
        };
        link.set(tx, next)?;
        tx.free(p)?;
        let count = self.meta(tx)?.count;
        tx.edit(self.meta)?.set_count(count - 1)?;
        Ok(Some(value))
    }

    /// Doubles the number of buckets and relinks every entry into the new ones.
    fn grow<R: Persistent>(self, tx: &mut Tx<'_, R>) -> Result<()> {
        let meta = self.meta(tx)?;
        let old: Vec<PPtr<BucketBlock>> = tx.get_slice(meta.buckets)?.to_vec();
        let blocks = old.len() as u64 * 2;
        let mut new = Vec::with_capacity(blocks as usize);
        for _ in 0..blocks {
            new.push(tx.alloc_zeroed::<BucketBlock>()?);
        }
        // New blocks are this transaction's own: writing them needs no undo log. Build each
        // chain in DRAM first, then store the heads once.
        let mut heads = vec![PPtr::<Entry>::null(); blocks as usize * BLOCK];
        let mut moved = 0u64;
        for &block in &old {
            for i in 0..BLOCK {
                let mut p = tx.get(block)?.heads[i];
                while !p.is_null() {
                    moved += 1;
                    if moved > meta.count {
                        return Err(Inconsistency::HashMapOverCount.into());
                    }
                    let entry = *tx.get(p)?;
                    let (b, i) = slot(meta.seed, entry.key, blocks);
                    let bucket = b * BLOCK + i;
                    if entry.next != heads[bucket] {
                        tx.edit(p)?.set_next(heads[bucket])?;
                    }
                    heads[bucket] = p;
                    p = entry.next;
                }
            }
        }
        for (b, &block) in new.iter().enumerate() {
            let mut handle = tx.edit(block)?;
            let mut array = handle.heads_mut();
            for i in 0..BLOCK {
                let head = heads[b * BLOCK + i];
                if !head.is_null() {
                    array.set_at(i, head)?;
                }
            }
        }
        let directory = tx.alloc_slice(&new)?;
        tx.edit(self.meta)?.set_buckets(directory)?;
        for block in old {
            tx.free(block)?;
        }
        Ok(tx.free_slice(meta.buckets)?)
    }

    /// Calls `f` on every entry, in bucket order.
    pub fn for_each(self, r: &impl PoolRead, mut f: impl FnMut(u64, u64)) -> Result<()> {
        let meta = self.meta(r)?;
        let mut seen = 0u64;
        for &block in r.get_slice(meta.buckets)? {
            for &head in &r.get(block)?.heads {
                let mut p = head;
                while !p.is_null() {
                    seen += 1;
                    if seen > meta.count {
                        return Err(Inconsistency::HashMapOverCount.into());
                    }
                    let e = r.get(p)?;
                    f(e.key, e.value);
                    p = e.next;
                }
            }
        }
        Ok(())
    }

    /// Every entry, in bucket order.
    pub fn entries(self, r: &impl PoolRead) -> Result<Vec<(u64, u64)>> {
        let mut out = Vec::new();
        self.for_each(r, |k, v| out.push((k, v)))?;
        Ok(out)
    }

    /// Removes every entry and frees the map.
    pub fn destroy<R: Persistent>(self, tx: &mut Tx<'_, R>) -> Result<()> {
        let meta = self.meta(tx)?;
        let blocks: Vec<_> = tx.get_slice(meta.buckets)?.to_vec();
        let mut freed = 0;
        for block in blocks {
            for i in 0..BLOCK {
                let mut p = tx.get(block)?.heads[i];
                while !p.is_null() {
                    freed += 1;
                    if freed > meta.count {
                        return Err(Inconsistency::HashMapOverCount.into());
                    }
                    let next = tx.get(p)?.next;
                    tx.free(p)?;
                    p = next;
                }
            }
            tx.free(block)?;
        }
        tx.free_slice(meta.buckets)?;
        Ok(tx.free(self.meta)?)
    }

    /// Checks the map's invariants: the bucket count is a power of two, every entry is in the
    /// bucket its key hashes to, no key appears twice, and the count is the number of entries.
    /// Returns the entries.
    pub fn verify(self, r: &impl PoolRead) -> Result<Vec<(u64, u64)>> {
        let meta = self.meta(r)?;
        let blocks = r.get_slice(meta.buckets)?;
        let n = blocks.len() as u64;
        if n == 0 || !n.is_power_of_two() {
            return Err(Inconsistency::HashBlocksNotPowerOfTwo { blocks: n }.into());
        }
        let mut keys = std::collections::HashSet::new();
        let mut out = Vec::new();
        for (b, &block) in blocks.iter().enumerate() {
            let heads = r.get(block)?.heads;
            for (i, &head) in heads.iter().enumerate() {
                let mut p = head;
                while !p.is_null() {
                    let e = r.get(p)?;
                    if slot(meta.seed, e.key, n) != (b, i) {
                        return Err(Inconsistency::HashKeyMisplaced { key: e.key }.into());
                    }
                    if !keys.insert(e.key) {
                        return Err(Inconsistency::HashKeyTwice { key: e.key }.into());
                    }
                    if keys.len() as u64 > meta.count {
                        return Err(Inconsistency::HashMapOverCount.into());
                    }
                    out.push((e.key, e.value));
                    p = e.next;
                }
            }
        }
        if out.len() as u64 != meta.count {
            return Err(Inconsistency::HashCountMismatch {
                count: meta.count,
                found: out.len() as u64,
            }
            .into());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmem_core::Pool;

    #[derive(Persistent)]
    #[repr(C)]
    struct Root {
        map: PHashMap,
    }

    fn pool_with_map() -> (Pool<Root>, PHashMap) {
        let pool = Pool::<Root>::builder().create_simulated(4 << 20).unwrap();
        let map = crate::transaction(&pool, |tx| {
            let map = PHashMap::create(tx)?;
            tx.root_mut().set_map(map)?;
            Ok(map)
        })
        .unwrap();
        (pool, map)
    }

    /// A count that disagrees with the chains is reported by kind, with both numbers.
    #[test]
    fn verify_names_a_wrong_count() {
        let (pool, map) = pool_with_map();
        crate::transaction(&pool, |tx| {
            for k in 0..3 {
                map.insert(tx, k, k)?;
            }
            Ok(tx.edit(map.meta)?.set_count(5)?)
        })
        .unwrap();
        let verified = pool.read(|r| map.verify(r)).unwrap();
        assert!(
            matches!(
                verified,
                Err(crate::Error::Inconsistent(
                    Inconsistency::HashCountMismatch { count: 5, found: 3 }
                ))
            ),
            "{verified:?}"
        );
    }

    #[test]
    fn insert_get_replace_remove() {
        let (pool, map) = pool_with_map();
        crate::transaction(&pool, |tx| {
            assert_eq!(map.insert(tx, 7, 70)?, None);
            assert_eq!(map.insert(tx, 7, 71)?, Some(70));
            assert_eq!(map.get(tx, 7)?, Some(71));
            assert_eq!(map.remove(tx, 7)?, Some(71));
            assert_eq!(map.remove(tx, 7)?, None);
            assert_eq!(map.get(tx, 7)?, None);
            Ok(())
        })
        .unwrap();
        assert_eq!(pool.read(|r| map.len(r)).unwrap().unwrap(), 0);
    }

    #[test]
    fn grows_and_keeps_every_entry() {
        let (pool, map) = pool_with_map();
        for k in 0..500u64 {
            crate::transaction(&pool, |tx| map.insert(tx, k * 3, k)).unwrap();
        }
        let buckets = pool.read(|r| map.bucket_count(r)).unwrap().unwrap();
        assert!(buckets >= 500 && buckets.is_power_of_two(), "{buckets}");
        let mut entries = pool.read(|r| map.verify(r)).unwrap().unwrap();
        entries.sort();
        assert_eq!(entries, (0..500).map(|k| (k * 3, k)).collect::<Vec<_>>());
        let report = pmem_core::check::check(&pool);
        assert!(
            report.is_healthy() && report.unreachable.is_empty(),
            "{report}"
        );
    }

    #[test]
    fn an_aborted_insert_leaves_the_map_alone() {
        let (pool, map) = pool_with_map();
        for k in 0..16 {
            crate::transaction(&pool, |tx| map.insert(tx, k, k)).unwrap();
        }
        // The 17th insert grows the map; abort it.
        let r = crate::transaction(&pool, |tx| {
            map.insert(tx, 100, 1)?;
            Err::<(), _>(tx.abort().into())
        });
        assert!(r.is_err());
        assert_eq!(
            pool.read(|r| map.bucket_count(r)).unwrap().unwrap(),
            BLOCK as u64
        );
        assert_eq!(pool.read(|r| map.verify(r)).unwrap().unwrap().len(), 16);
        let report = pmem_core::check::check(&pool);
        assert!(
            report.is_healthy() && report.unreachable.is_empty(),
            "{report}"
        );
    }

    #[test]
    fn destroy_frees_everything() {
        let (pool, map) = pool_with_map();
        crate::transaction(&pool, |tx| {
            for k in 0..100 {
                map.insert(tx, k, k)?;
            }
            Ok(())
        })
        .unwrap();
        crate::transaction(&pool, |tx| {
            map.destroy(tx)?;
            Ok(tx.root_mut().set_map(PHashMap::null())?)
        })
        .unwrap();
        assert_eq!(pmem_core::check::check(&pool).live_objects, 0);
    }
}
