//! The entry API of [`PHashMap`]: one probe, then read, change, insert or remove in place.

use pmem_core::{PSlice, Persistent, Tx};

use super::map::{HashMeta, PHashMap, Slot};
use crate::Result;

/// A key's place in a [`PHashMap`], from [`PHashMap::entry`]: occupied or vacant.
///
/// ```
/// use pmem_core::{Persistent, Pool};
/// use pmem_collections::PHashMap;
///
/// #[derive(Persistent)]
/// #[repr(C)]
/// struct Root { counts: PHashMap<u64, u64> }
///
/// let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
/// pool.transaction(|tx| -> pmem_collections::Result<()> {
///     let counts = PHashMap::new(tx)?;
///     tx.root_mut().set_counts(counts)?;
///     for word in [3, 1, 3, 3] {
///         *counts.entry(tx, word)?.or_insert(0)? += 1;
///     }
///     assert_eq!(counts.get(tx, &3)?, Some(&3));
///     assert_eq!(counts.get(tx, &1)?, Some(&1));
///     Ok(())
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub enum Entry<'t, 'p, R, K, V> {
    /// The map holds the key.
    Occupied(OccupiedEntry<'t, 'p, R, K, V>),
    /// The map does not hold the key.
    Vacant(VacantEntry<'t, 'p, R, K, V>),
}

/// A key the map holds; see [`Entry`].
///
/// ```
/// # use pmem_core::{Persistent, Pool};
/// # use pmem_collections::PHashMap;
/// # #[derive(Persistent)] #[repr(C)] struct Root { map: PHashMap<u64, u64> }
/// # let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
/// # let map = pool.transaction(|tx| -> pmem_collections::Result<_> {
/// #     let map = PHashMap::new(tx)?;
/// #     tx.root_mut().set_map(map)?;
/// #     map.insert(tx, 1, 10)?;
/// #     map.insert(tx, 2, 20)?;
/// #     Ok(map)
/// # })?;
/// use pmem_collections::hash::Entry;
/// pool.transaction(|tx| -> pmem_collections::Result<()> {
///     if let Entry::Occupied(mut e) = map.entry(tx, 1)? {
///         assert_eq!(e.insert(11)?, 10);
///         assert_eq!(e.remove()?, 11);
///     }
///     Ok(())
/// })?;
/// assert_eq!(pool.read(|r| map.len(r))??, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct OccupiedEntry<'t, 'p, R, K, V> {
    pub(super) tx: &'t mut Tx<'p, R>,
    pub(super) map: PHashMap<K, V>,
    pub(super) slots: PSlice<Slot<K, V>>,
    pub(super) index: usize,
    pub(super) key: K,
}

/// A key the map does not hold; see [`Entry`].
///
/// ```
/// # use pmem_core::{Persistent, Pool};
/// # use pmem_collections::PHashMap;
/// # #[derive(Persistent)] #[repr(C)] struct Root { map: PHashMap<u64, u64> }
/// # let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
/// # let map = pool.transaction(|tx| -> pmem_collections::Result<_> {
/// #     let map = PHashMap::new(tx)?;
/// #     tx.root_mut().set_map(map)?;
/// #     map.insert(tx, 1, 10)?;
/// #     map.insert(tx, 2, 20)?;
/// #     Ok(map)
/// # })?;
/// use pmem_collections::hash::Entry;
/// pool.transaction(|tx| -> pmem_collections::Result<()> {
///     if let Entry::Vacant(e) = map.entry(tx, 3)? {
///         assert_eq!(*e.key(), 3);
///         *e.insert(30)? += 1;
///     }
///     Ok(())
/// })?;
/// assert_eq!(pool.read(|r| map.get(r, &3).map(|v| v.copied()))??, Some(31));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct VacantEntry<'t, 'p, R, K, V> {
    pub(super) tx: &'t mut Tx<'p, R>,
    pub(super) map: PHashMap<K, V>,
    pub(super) meta: HashMeta<K, V>,
    pub(super) hash: u64,
    pub(super) free: Option<(usize, bool)>,
    pub(super) key: K,
}

impl<'t, R: Persistent, K: Persistent + Copy, V: Persistent + Copy> Entry<'t, '_, R, K, V> {
    /// The key.
    pub fn key(&self) -> &K {
        match self {
            Entry::Occupied(e) => &e.key,
            Entry::Vacant(e) => &e.key,
        }
    }

    /// The value, inserting `default` first if the key is vacant. The value is logged before it
    /// is handed out (nothing to log for a value just inserted).
    pub fn or_insert(self, default: V) -> Result<&'t mut V> {
        self.or_insert_with(|| default)
    }

    /// The value, inserting `default()` first if the key is vacant.
    pub fn or_insert_with(self, default: impl FnOnce() -> V) -> Result<&'t mut V> {
        match self {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(default()),
        }
    }

    /// Calls `f` on the value if the key is occupied (logging the value first).
    pub fn and_modify(self, f: impl FnOnce(&mut V)) -> Result<Self> {
        match self {
            Entry::Occupied(mut e) => {
                f(e.get_mut()?);
                Ok(Entry::Occupied(e))
            }
            vacant => Ok(vacant),
        }
    }
}

impl<'t, R: Persistent, K: Persistent + Copy, V: Persistent + Copy> OccupiedEntry<'t, '_, R, K, V> {
    /// The key.
    pub fn key(&self) -> &K {
        &self.key
    }

    /// The value, in place.
    pub fn get(&self) -> Result<&V> {
        Ok(&self.tx.get_slice(self.slots)?[self.index].value)
    }

    /// The value, mutably, after logging its slot.
    pub fn get_mut(&mut self) -> Result<&mut V> {
        PHashMap::value_mut(self.tx, self.slots, self.index)
    }

    /// The value, mutably, for as long as the transaction's borrow lasts.
    pub fn into_mut(self) -> Result<&'t mut V> {
        PHashMap::value_mut(self.tx, self.slots, self.index)
    }

    /// Sets the value; returns the old one.
    pub fn insert(&mut self, value: V) -> Result<V> {
        Ok(core::mem::replace(self.get_mut()?, value))
    }

    /// Removes the entry; returns its value.
    pub fn remove(self) -> Result<V> {
        let meta = self.map.meta(self.tx)?;
        Ok(self.map.remove_at(self.tx, meta, self.index)?.1)
    }
}

impl<'t, R: Persistent, K: Persistent + Copy, V: Persistent + Copy> VacantEntry<'t, '_, R, K, V> {
    /// The key.
    pub fn key(&self) -> &K {
        &self.key
    }

    /// Inserts `value` under the key; returns it, in place.
    pub fn insert(self, value: V) -> Result<&'t mut V> {
        let (slots, index) = self
            .map
            .insert_new(self.tx, self.meta, self.hash, self.free, self.key, value)?;
        // Logged (or fresh) in this transaction already: nothing more to log.
        PHashMap::value_mut(self.tx, slots, index)
    }
}
