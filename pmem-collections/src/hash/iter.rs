//! Iterators over a [`PHashMap`]: entries, keys and values, in slot order, in place.

use std::marker::PhantomData;

use pmem_core::PoolRead;

use super::map::{PHashMap, Slot};
use crate::{Error, Inconsistency, Result};

/// The entries of a [`PHashMap`], from [`PHashMap::iter`]: `(&K, &V)` in place in the pool, in
/// slot order. Yields an error (once, then ends) if the map is damaged, or holds more entries
/// than its recorded length.
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
/// let mut entries = pool.read(|r| {
///     map.iter(r).map(|e| e.map(|(&k, &v)| (k, v))).collect::<pmem_collections::Result<Vec<_>>>()
/// })??;
/// entries.sort();
/// assert_eq!(entries, [(1, 10), (2, 20)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Iter<'r, A, K, V> {
    _reader: PhantomData<&'r A>,
    slots: &'r [Slot<K, V>],
    next: usize,
    seen: u64,
    len: u64,
    error: Option<Error>,
}

impl<'r, A: PoolRead, K: pmem_core::Persistent + Copy, V: pmem_core::Persistent + Copy>
    Iter<'r, A, K, V>
{
    pub(super) fn new(r: &'r A, map: PHashMap<K, V>) -> Self {
        let mut iter = Iter {
            _reader: PhantomData,
            slots: &[],
            next: 0,
            seen: 0,
            len: 0,
            error: None,
        };
        let table = map
            .meta(r)
            .and_then(|meta| Ok((meta.len, PHashMap::slots(r, &meta)?)));
        match table {
            Ok((len, slots)) => (iter.len, iter.slots) = (len, slots),
            Err(e) => iter.error = Some(e),
        }
        iter
    }

    fn fail(&mut self, e: Error) -> Option<Result<(&'r K, &'r V)>> {
        self.slots = &[];
        Some(Err(e))
    }
}

impl<'r, A: PoolRead, K: pmem_core::Persistent + Copy, V: pmem_core::Persistent + Copy> Iterator
    for Iter<'r, A, K, V>
{
    type Item = Result<(&'r K, &'r V)>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            return Some(Err(e));
        }
        while let Some(slot) = self.slots.get(self.next) {
            self.next += 1;
            if !slot.is_taken() {
                continue;
            }
            self.seen += 1;
            if self.seen > self.len {
                let found = self.seen;
                return self.fail(
                    Inconsistency::HashLenMismatch {
                        len: self.len,
                        found,
                    }
                    .into(),
                );
            }
            return Some(Ok((&slot.key, &slot.value)));
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.len.saturating_sub(self.seen) as usize;
        (
            0,
            Some(left.saturating_add(usize::from(self.error.is_some()))),
        )
    }
}

/// The keys of a [`PHashMap`], from [`PHashMap::keys`].
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
/// let mut keys = pool.read(|r| map.keys(r).map(|k| k.copied()).collect::<pmem_collections::Result<Vec<_>>>())??;
/// keys.sort();
/// assert_eq!(keys, [1, 2]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Keys<'r, A, K, V>(pub(super) Iter<'r, A, K, V>);

impl<'r, A: PoolRead, K: pmem_core::Persistent + Copy, V: pmem_core::Persistent + Copy> Iterator
    for Keys<'r, A, K, V>
{
    type Item = Result<&'r K>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.0.next()?.map(|(k, _)| k))
    }
}

/// The values of a [`PHashMap`], from [`PHashMap::values`].
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
/// let sum: u64 = pool.read(|r| map.values(r).map(|v| v.copied()).sum::<pmem_collections::Result<u64>>())??;
/// assert_eq!(sum, 30);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Values<'r, A, K, V>(pub(super) Iter<'r, A, K, V>);

impl<'r, A: PoolRead, K: pmem_core::Persistent + Copy, V: pmem_core::Persistent + Copy> Iterator
    for Values<'r, A, K, V>
{
    type Item = Result<&'r V>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.0.next()?.map(|(_, v)| v))
    }
}
