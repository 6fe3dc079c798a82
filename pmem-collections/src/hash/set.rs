//! [`PHashSet`]: a [`PHashMap`] with no values.

use std::fmt;

use pmem_core::{Persistent, PoolRead, Tx};

use super::iter::Iter;
use super::map::PHashMap;
use crate::Result;

/// A persistent hash set of `K`, shaped like [`std::collections::HashSet`]: a
/// [`PHashMap<K, ()>`](PHashMap), with its layout, costs, crash guarantees and rules for keys
/// (compared and hashed by their bytes).
///
/// ```
/// use pmem_core::{Persistent, Pool};
/// use pmem_collections::PHashSet;
///
/// #[derive(Persistent)]
/// #[repr(C)]
/// struct Root { seen: PHashSet<u64> }
///
/// let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
/// pool.transaction(|tx| -> pmem_collections::Result<()> {
///     let seen = PHashSet::new(tx)?;
///     tx.root_mut().set_seen(seen)?;
///     assert!(seen.insert(tx, 4)?);
///     assert!(!seen.insert(tx, 4)?);
///     Ok(())
/// })?;
/// let seen = pool.read(|r| r.root().seen)?;
/// assert!(pool.read(|r| seen.contains(r, &4))??);
/// assert_eq!(pool.read(|r| seen.len(r))??, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Persistent)]
#[repr(transparent)]
pub struct PHashSet<K> {
    map: PHashMap<K, ()>,
}

impl<K> Clone for PHashSet<K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K> Copy for PHashSet<K> {}
impl<K> PartialEq for PHashSet<K> {
    fn eq(&self, other: &Self) -> bool {
        self.map == other.map
    }
}
impl<K> Eq for PHashSet<K> {}
impl<K> Default for PHashSet<K> {
    fn default() -> Self {
        Self::null()
    }
}
impl<K> fmt::Debug for PHashSet<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PHashSet({:#x})", self.map.as_ptr().offset())
    }
}

impl<K> PHashSet<K> {
    /// The null handle: no set.
    pub const fn null() -> Self {
        PHashSet {
            map: PHashMap::null(),
        }
    }

    /// Whether this is the null handle.
    pub fn is_null(self) -> bool {
        self.map.is_null()
    }

    /// The map underneath: each key maps to `()`.
    pub fn as_map(self) -> PHashMap<K, ()> {
        self.map
    }
}

impl<K: Persistent + Copy> PHashSet<K> {
    /// Allocates an empty set under a fresh random hash key.
    pub fn new<R: Persistent>(tx: &mut Tx<'_, R>) -> Result<Self> {
        Ok(PHashSet {
            map: PHashMap::new(tx)?,
        })
    }

    /// Allocates an empty set with room for `capacity` keys before it grows.
    pub fn with_capacity<R: Persistent>(tx: &mut Tx<'_, R>, capacity: u64) -> Result<Self> {
        Ok(PHashSet {
            map: PHashMap::with_capacity(tx, capacity)?,
        })
    }

    /// Like [`with_capacity`](Self::with_capacity) with the hash key given; see
    /// [`PHashMap::with_capacity_and_key`].
    pub fn with_capacity_and_key<R: Persistent>(
        tx: &mut Tx<'_, R>,
        capacity: u64,
        key: [u64; 2],
    ) -> Result<Self> {
        Ok(PHashSet {
            map: PHashMap::with_capacity_and_key(tx, capacity, key)?,
        })
    }

    /// The number of keys.
    pub fn len(self, r: &impl PoolRead) -> Result<u64> {
        self.map.len(r)
    }

    /// Whether the set is empty.
    pub fn is_empty(self, r: &impl PoolRead) -> Result<bool> {
        self.map.is_empty(r)
    }

    /// Whether the set holds `key`.
    pub fn contains(self, r: &impl PoolRead, key: &K) -> Result<bool> {
        self.map.contains_key(r, key)
    }

    /// The set's copy of `key`, in place.
    pub fn get<'r>(self, r: &'r impl PoolRead, key: &K) -> Result<Option<&'r K>> {
        Ok(self.map.get_key_value(r, key)?.map(|(k, _)| k))
    }

    /// Adds `key`; returns whether it was new.
    pub fn insert<R: Persistent>(self, tx: &mut Tx<'_, R>, key: K) -> Result<bool> {
        Ok(self.map.insert(tx, key, ())?.is_none())
    }

    /// Removes `key`; returns whether it was there.
    pub fn remove<R: Persistent>(self, tx: &mut Tx<'_, R>, key: &K) -> Result<bool> {
        Ok(self.map.remove(tx, key)?.is_some())
    }

    /// The keys, in slot order, in place.
    pub fn iter<'r, A: PoolRead>(self, r: &'r A) -> SetIter<'r, A, K> {
        SetIter(self.map.iter(r))
    }

    /// Removes every key, keeping the capacity.
    pub fn clear<R: Persistent>(self, tx: &mut Tx<'_, R>) -> Result<()> {
        self.map.clear(tx)
    }

    /// Frees the set. The handle is dangling afterwards.
    pub fn destroy<R: Persistent>(self, tx: &mut Tx<'_, R>) -> Result<()> {
        self.map.destroy(tx)
    }

    /// Checks every invariant; see [`PHashMap::verify`].
    pub fn verify(self, r: &impl PoolRead) -> Result<()> {
        self.map.verify(r)
    }
}

/// The keys of a [`PHashSet`], from [`PHashSet::iter`].
///
/// ```
/// # use pmem_core::{Persistent, Pool};
/// # use pmem_collections::PHashSet;
/// # #[derive(Persistent)] #[repr(C)] struct Root { set: PHashSet<u64> }
/// # let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
/// # let set = pool.transaction(|tx| -> pmem_collections::Result<_> {
/// #     let set = PHashSet::new(tx)?;
/// #     tx.root_mut().set_set(set)?;
/// #     set.insert(tx, 5)?;
/// #     Ok(set)
/// # })?;
/// let keys = pool.read(|r| set.iter(r).map(|k| k.copied()).collect::<pmem_collections::Result<Vec<_>>>())??;
/// assert_eq!(keys, [5]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SetIter<'r, A, K>(Iter<'r, A, K, ()>);

impl<'r, A: PoolRead, K: Persistent + Copy> Iterator for SetIter<'r, A, K> {
    type Item = Result<&'r K>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.0.next()?.map(|(k, _)| k))
    }
}

#[cfg(test)]
mod tests {
    use pmem_core::{Persistent, Pool};

    use super::PHashSet;
    use crate::hash::Slot;
    use crate::Result;

    #[derive(Persistent)]
    #[repr(C)]
    struct Root {
        small: PHashSet<u32>,
    }

    /// The slot is aligned as the key, not as its hash: a set of `u32` has 12-byte slots, and
    /// grows, removes and verifies through them like any other.
    #[test]
    fn a_set_of_u32_has_twelve_byte_slots() {
        assert_eq!(core::mem::size_of::<Slot<u32, ()>>(), 12);
        let pool = Pool::<Root>::builder().create_simulated(2 << 20).unwrap();
        pool.transaction(|tx| -> Result<()> {
            let small = PHashSet::new(tx)?;
            tx.root_mut().set_small(small)?;
            for k in 0..200u32 {
                assert!(small.insert(tx, k)?);
            }
            for k in (0..200u32).step_by(3) {
                assert!(small.remove(tx, &k)?);
            }
            Ok(())
        })
        .unwrap();
        let small = pool.read(|r| r.root().small).unwrap();
        pool.read(|r| -> Result<()> {
            small.verify(r)?;
            assert_eq!(small.len(r)?, 200 - 67);
            for k in 0..200u32 {
                assert_eq!(small.contains(r, &k)?, k % 3 != 0, "{k}");
            }
            Ok(())
        })
        .unwrap()
        .unwrap();
    }
}
