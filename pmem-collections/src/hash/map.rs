//! [`PHashMap`]: the map, its metadata and its probing.

use std::fmt;
use std::marker::PhantomData;

use pmem_core::{bytes_of, zeroed, PPtr, PSlice, Persistent, PoolRead, Tx};

use super::entry::{Entry, OccupiedEntry, VacantEntry};
use super::iter::{Iter, Keys, Values};
use super::keyed::{hash_bytes, random_key};
use crate::{Error, Inconsistency, Result};

/// The fewest slots of a map (a power of two).
pub const MIN_SLOTS: u64 = 8;

/// The most slots of a map: 2^40 slots are terabytes, beyond any pool.
const MAX_SLOTS: u64 = 1 << 40;

/// A persistent hash map from `K` to `V`, shaped like [`std::collections::HashMap`].
///
/// A handle: a `#[repr(transparent)]` persistent pointer to the map's metadata, `Copy`, and
/// [`Persistent`], so it can be a field of any persistent struct. The null handle is no map;
/// [`new`](Self::new) makes one. Reads take any [`PoolRead`] (a [`Tx`] or a `Reader`); changes
/// take the [`Tx`] they are part of, and are exactly as failure-atomic as it.
///
/// # Keys
///
/// `K` and `V` are [`Persistent`] plain data, copied into and out of the pool (hence `Copy`).
/// Keys are hashed and compared **by their bytes** ([`pmem_core::bytes_of`]), not through
/// `Hash` and `Eq`: the hash is part of the on-media format and must never change (see the
/// [module](crate::hash) documentation), and byte equality is what the stored hash can be checked
/// against, whatever a key's `Eq` says. Two keys are the same key exactly when their bytes are
/// equal (so `-0.0` and `0.0` are distinct `f64` keys, and a `NaN` key can be found again).
///
/// A [`Slot<K, V>`], 8 bytes of hash followed by the key and its value, must have no padding:
/// true when `K` and `V` are aligned to at most 8 bytes and `K`'s size is a multiple of `V`'s
/// alignment (any pair of sizes that are multiples of 8, `(u32, u32)`, a `u32` key of a set,
/// ...). A pair with padding fails to compile, naming it.
///
/// # Layout
///
/// ```text
/// PHashMap ──> HashMeta { len, tombstones, key: [u64; 2], slots: PSlice<Slot> }
///                                                               │
///     Slot { hash: [u8; 8], key: K, value: V } × 2^k   (linear probing, at most 3/4 taken)
/// ```
///
/// Entries live in the table itself (open addressing with the pairs inline, as `std`'s map
/// keeps them): a lookup reads one slot and follows no pointer, and an insert writes one slot
/// and the metadata and allocates nothing. A slot's `hash` (little-endian) says what it holds:
/// 0 is an empty slot, [`TOMBSTONE`] (1) a removal's marker, anything else the key's full hash
/// (a key whose hash is 0 or 1 is stored as 2 or 3), so probing and growing compare and move
/// hashes without hashing keys again. The key and value bytes of a slot that is not taken are
/// zero. Growing rebuilds the table, pairs and all, into a fresh object.
///
/// Large values make a large table, with room for 4/3 to 8/3 as many values as the map holds
/// (3/4 of the slots at most, and 3/8 just after a doubling): for values of more than a few
/// dozen bytes, keep them in objects of their own and map to a [`PPtr`].
///
/// # Cost (fences and flushed lines per operation, in a transaction of its own)
///
/// Measured by `tests/hash_cost.rs` (simulated domain, `u64` keys and values: 24-byte slots,
/// so one slot in four spans two cache lines):
///
/// | operation | fences | lines written back |
/// |---|---|---|
/// | `get`, `contains_key`, `len`, iteration, [`view`](Self::view) lookups | 0 | 0 |
/// | `insert` of a new key | 2: slot and metadata logged together ([`Tx::write_with_element`]), commit | 2.25 |
/// | `insert` of a present key | 2: the value logged, commit | 1 |
/// | `get_mut`, an entry's `get_mut` | 2: the slot logged, commit | 1.25 |
/// | `remove` | 2: slot and metadata logged together, commit | 2.25 |
/// | growth (doubling, in the insert that needs it) | 0 more | about 1 more per insert, amortised |
///
/// Growth is one step inside the transaction of the insert that needs it, not spread over later
/// inserts: the new table is fresh, so it needs no undo log and a doubling adds no fence, and
/// amortised it writes back about one line per insert (a table of `s` slots doubles after about
/// `3s/8` inserts since the last doubling and writes back `2s * 24 / 64 = 3s/4` lines for
/// `u64` pairs). An incremental scheme would log the old slots each insert migrates (at least
/// one more logged range and fence per migrating insert) and make every lookup probe two
/// tables; its only gain is a bounded worst case for the one insert that doubles, which here
/// copies each slot once without hashing a key.
///
/// # Crash guarantees
///
/// Every change is logged by the transaction it runs in: after a crash, recovery leaves the map
/// exactly as the last committed transaction left it, growth included. Nothing leaks: slot
/// arrays are allocated and freed by the same transactions.
///
/// # Damaged pools
///
/// Every walk is bounded by the slot count, the table is checked by the pool, and a walk
/// that meets more entries than the recorded length stops with
/// [`Inconsistency::HashLenMismatch`]; [`verify`](Self::verify) checks every invariant.
///
/// ```
/// use pmem_core::{Persistent, Pool};
/// use pmem_collections::PHashMap;
///
/// #[derive(Persistent)]
/// #[repr(C)]
/// struct Root { scores: PHashMap<u64, u64> }
///
/// let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
/// pool.transaction(|tx| -> pmem_collections::Result<()> {
///     let scores = PHashMap::new(tx)?;
///     tx.root_mut().set_scores(scores)?;
///     scores.insert(tx, 7, 70)?;
///     *scores.entry(tx, 8)?.or_insert(0)? += 5;
///     Ok(())
/// })?;
/// let scores = pool.read(|r| r.root().scores)?;
/// pool.read(|r| -> pmem_collections::Result<()> {
///     assert_eq!(scores.get(r, &7)?, Some(&70));
///     assert_eq!(scores.get(r, &8)?, Some(&5));
///     assert_eq!(scores.len(r)?, 2);
///     Ok(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Persistent)]
#[repr(transparent)]
pub struct PHashMap<K, V> {
    meta: PPtr<HashMeta<K, V>>,
}

/// A map's metadata: what [`PHashMap::as_ptr`] points at.
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
/// let meta = pool.read(|r| *r.get(map.as_ptr()).unwrap())?;
/// assert_eq!(meta.len, 2);
/// assert_eq!(meta.slots.len(), pmem_collections::hash::MIN_SLOTS);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Persistent, Clone, Copy, Debug)]
#[repr(C)]
pub struct HashMeta<K, V> {
    /// Entries.
    pub len: u64,
    /// Slots holding a removal's tombstone.
    pub tombstones: u64,
    /// The key of the hash: drawn at random when the map is made.
    pub key: [u64; 2],
    /// The slots: a power of two of at least [`MIN_SLOTS`].
    pub slots: PSlice<Slot<K, V>>,
}

/// One slot of a map's table: an entry, inline, or none.
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
/// let sum = pool.read(|r| {
///     let meta = r.get(map.as_ptr()).unwrap();
///     let slots = r.get_slice(meta.slots).unwrap();
///     slots.iter().filter(|s| s.is_taken()).map(|s| s.key + s.value).sum::<u64>()
/// })?;
/// assert_eq!(sum, 33);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Persistent, Clone, Copy, Debug)]
#[repr(C)]
pub struct Slot<K, V> {
    /// The key's hash, little-endian, if the slot is taken (never 0 or 1); [`TOMBSTONE`] or 0
    /// if not. Bytes rather than a `u64`, so that the slot is aligned as its key and value
    /// are: a set of `u32` keys has 12-byte slots.
    pub hash: [u8; 8],
    /// The key (zero if the slot is not taken).
    pub key: K,
    /// Its value (zero if the slot is not taken).
    pub value: V,
}

/// The `hash` of a tombstone slot.
pub const TOMBSTONE: u64 = 1;

impl<K: Persistent, V: Persistent> Slot<K, V> {
    /// The stored hash: 0 (empty), [`TOMBSTONE`], or a taken slot's key hash.
    #[inline(always)]
    pub fn hash(&self) -> u64 {
        u64::from_le_bytes(self.hash)
    }

    /// Whether the slot holds an entry.
    #[inline(always)]
    pub fn is_taken(&self) -> bool {
        self.hash() > TOMBSTONE
    }

    /// Whether the slot is empty (neither taken nor a tombstone): where every probe stops.
    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.hash() == 0
    }

    /// A slot holding nothing, with `hash` 0 (empty) or [`TOMBSTONE`].
    fn vacant(hash: u64) -> Self {
        Slot {
            hash: hash.to_le_bytes(),
            key: zeroed(),
            value: zeroed(),
        }
    }
}

impl<K, V> Clone for PHashMap<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for PHashMap<K, V> {}
impl<K, V> PartialEq for PHashMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.meta == other.meta
    }
}
impl<K, V> Eq for PHashMap<K, V> {}
impl<K, V> Default for PHashMap<K, V> {
    fn default() -> Self {
        Self::null()
    }
}
impl<K, V> fmt::Debug for PHashMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PHashMap({:#x})", self.meta.offset())
    }
}

/// What a probe for a key found.
pub(super) enum Probe {
    /// The key, in slot `index`.
    Found { index: usize },
    /// Not there; `free` is where it would go (the first tombstone or empty slot on its path,
    /// and whether it is a tombstone), `None` if the walk met neither.
    Missing { free: Option<(usize, bool)> },
}

/// The most entries plus tombstones a table of `slots` slots holds: 3/4 of them, so linear
/// probing stays short (2.5 slots for a hit, 8.5 for a miss, on average).
fn max_load(slots: u64) -> u64 {
    slots - slots / 4
}

/// The slots a map of `entries` entries needs.
fn slots_for(entries: u64) -> Result<u64> {
    let mut slots = MIN_SLOTS;
    while max_load(slots) < entries {
        slots *= 2;
        if slots > MAX_SLOTS {
            return Err(Error::CapacityOverflow {
                requested: entries,
                max: max_load(MAX_SLOTS),
            });
        }
    }
    Ok(slots)
}

impl<K, V> PHashMap<K, V> {
    /// The null handle: no map.
    pub const fn null() -> Self {
        PHashMap { meta: PPtr::null() }
    }

    /// Whether this is the null handle.
    pub fn is_null(self) -> bool {
        self.meta.is_null()
    }

    /// The pointer to the map's metadata.
    pub fn as_ptr(self) -> PPtr<HashMeta<K, V>> {
        self.meta
    }
}

impl<K: Persistent + Copy, V: Persistent + Copy> PHashMap<K, V> {
    /// Allocates an empty map with room for 6 entries, under a fresh random hash key.
    pub fn new<R: Persistent>(tx: &mut Tx<'_, R>) -> Result<Self> {
        Self::with_capacity(tx, 0)
    }

    /// Allocates an empty map with room for `capacity` entries before it grows.
    pub fn with_capacity<R: Persistent>(tx: &mut Tx<'_, R>, capacity: u64) -> Result<Self> {
        Self::with_capacity_and_key(tx, capacity, random_key())
    }

    /// Like [`with_capacity`](Self::with_capacity) with the hash key given rather than drawn:
    /// for tests that must replay exactly (a crash test's workload). A key known to whoever
    /// chooses the map's keys lets them aim every key at one slot: use
    /// [`with_capacity`](Self::with_capacity) for keys from outside.
    pub fn with_capacity_and_key<R: Persistent>(
        tx: &mut Tx<'_, R>,
        capacity: u64,
        key: [u64; 2],
    ) -> Result<Self> {
        let slots = tx.alloc_slice_zeroed::<Slot<K, V>>(slots_for(capacity)?)?;
        let meta = tx.alloc(HashMeta {
            len: 0,
            tombstones: 0,
            key,
            slots,
        })?;
        Ok(PHashMap { meta })
    }

    #[inline]
    pub(super) fn meta(self, r: &impl PoolRead) -> Result<HashMeta<K, V>> {
        Ok(*r.get(self.meta)?)
    }

    /// The slots of `meta`, checked to be a power of two of at least [`MIN_SLOTS`].
    #[inline]
    pub(super) fn slots<'r>(
        r: &'r impl PoolRead,
        meta: &HashMeta<K, V>,
    ) -> Result<&'r [Slot<K, V>]> {
        let slots = r.get_slice(meta.slots)?;
        let n = slots.len() as u64;
        if n < MIN_SLOTS || !n.is_power_of_two() {
            return Err(Inconsistency::HashSlotsNotPowerOfTwo { slots: n }.into());
        }
        Ok(slots)
    }

    /// The number of entries.
    pub fn len(self, r: &impl PoolRead) -> Result<u64> {
        Ok(self.meta(r)?.len)
    }

    /// Whether the map has no entries.
    pub fn is_empty(self, r: &impl PoolRead) -> Result<bool> {
        Ok(self.len(r)? == 0)
    }

    /// The entries the map holds before it grows (its slot count times 3/4, less tombstones
    /// since the last growth).
    pub fn capacity(self, r: &impl PoolRead) -> Result<u64> {
        let meta = self.meta(r)?;
        Ok(max_load(meta.slots.len()).saturating_sub(meta.tombstones))
    }

    /// The hash of `key` in this map, as a taken slot stores it (never 0 or [`TOMBSTONE`]).
    #[inline(always)]
    pub(super) fn hash_of(meta: &HashMeta<K, V>, key: &K) -> u64 {
        let hash = hash_bytes(meta.key, bytes_of(key));
        if hash > TOMBSTONE {
            hash
        } else {
            hash + 2
        }
    }

    /// Walks `key`'s probe sequence, at most once round the table.
    #[inline(always)]
    pub(super) fn probe(slots: &[Slot<K, V>], hash: u64, key: &K) -> Probe {
        let mask = slots.len() - 1;
        let mut index = hash as usize & mask;
        let mut free = None;
        for _ in 0..slots.len() {
            let slot = &slots[index];
            let stored = slot.hash();
            if stored == hash {
                if bytes_of(&slot.key) == bytes_of(key) {
                    return Probe::Found { index };
                }
            } else if stored == 0 {
                return Probe::Missing {
                    free: Some(free.unwrap_or((index, false))),
                };
            } else if stored == TOMBSTONE {
                free.get_or_insert((index, true));
            }
            index = (index + 1) & mask;
        }
        Probe::Missing { free }
    }

    /// The map's metadata and table, read once, for many lookups.
    #[inline]
    pub fn view<'r, A: PoolRead>(self, r: &'r A) -> Result<HashMapView<'r, A, K, V>> {
        let meta = self.meta(r)?;
        let slots = Self::slots(r, &meta)?;
        Ok(HashMapView {
            meta,
            slots,
            _reader: PhantomData,
        })
    }

    /// The value of `key`, in place in the pool.
    pub fn get<'r>(self, r: &'r impl PoolRead, key: &K) -> Result<Option<&'r V>> {
        self.view(r)?.get(key)
    }

    /// The key and value of `key`, in place in the pool.
    pub fn get_key_value<'r>(
        self,
        r: &'r impl PoolRead,
        key: &K,
    ) -> Result<Option<(&'r K, &'r V)>> {
        self.view(r)?.get_key_value(key)
    }

    /// Whether the map holds `key`.
    pub fn contains_key(self, r: &impl PoolRead, key: &K) -> Result<bool> {
        self.view(r)?.contains_key(key)
    }

    /// The value of `key`, mutably: its slot is logged first (one fence; none if this
    /// transaction wrote the slot already).
    pub fn get_mut<'t, R: Persistent>(
        self,
        tx: &'t mut Tx<'_, R>,
        key: &K,
    ) -> Result<Option<&'t mut V>> {
        let meta = self.meta(tx)?;
        let slots = Self::slots(tx, &meta)?;
        match Self::probe(slots, Self::hash_of(&meta, key), key) {
            Probe::Found { index } => Ok(Some(Self::value_mut(tx, meta.slots, index)?)),
            Probe::Missing { .. } => Ok(None),
        }
    }

    /// The value in slot `index` of `slots`, mutably, after logging the slot.
    pub(super) fn value_mut<'t, R: Persistent>(
        tx: &'t mut Tx<'_, R>,
        slots: PSlice<Slot<K, V>>,
        index: usize,
    ) -> Result<&'t mut V> {
        let slot = tx
            .edit_slice(slots)?
            .into_at(index)
            .into_inner()
            .get_mut()?;
        Ok(&mut slot.value)
    }

    /// Sets `key` to `value`; returns the value it replaced, like `std`'s `insert`.
    #[inline]
    pub fn insert<R: Persistent>(self, tx: &mut Tx<'_, R>, key: K, value: V) -> Result<Option<V>> {
        let meta = self.meta(tx)?;
        let hash = Self::hash_of(&meta, &key);
        let slots = Self::slots(tx, &meta)?;
        match Self::probe(slots, hash, &key) {
            Probe::Found { index } => {
                let old = slots[index].value;
                tx.edit_slice(meta.slots)?.at(index).set_value(value)?;
                Ok(Some(old))
            }
            Probe::Missing { free } => {
                self.insert_new(tx, meta, hash, free, key, value)?;
                Ok(None)
            }
        }
    }

    /// Adds `key`, which the map does not hold, at `free` (its probe's free slot, and whether
    /// that holds a tombstone), growing the table first if it is too full. Returns the table
    /// and the slot the entry went into.
    #[inline]
    pub(super) fn insert_new<R: Persistent>(
        self,
        tx: &mut Tx<'_, R>,
        mut meta: HashMeta<K, V>,
        hash: u64,
        mut free: Option<(usize, bool)>,
        key: K,
        value: V,
    ) -> Result<(PSlice<Slot<K, V>>, usize)> {
        let size = meta.slots.len();
        let full = meta.len.saturating_add(meta.tombstones) >= max_load(size);
        if matches!(free, None | Some((_, false))) && (full || free.is_none()) {
            meta = self.grow(tx, meta)?;
            free = Some((Self::free_slot(Self::slots(tx, &meta)?, hash)?, false));
        }
        let Some((index, tombstone)) = free else {
            return Err(Inconsistency::HashTableFull { slots: size }.into());
        };
        let len = meta
            .len
            .checked_add(1)
            .ok_or(Inconsistency::HashLenMismatch {
                len: meta.len,
                found: meta.len,
            })?;
        let tombstones = meta.tombstones.saturating_sub(u64::from(tombstone));
        let updated = HashMeta {
            len,
            tombstones,
            ..meta
        };
        let slot = Slot {
            hash: hash.to_le_bytes(),
            key,
            value,
        };
        tx.write_with_element(self.meta, updated, meta.slots, index as u64, slot)?;
        Ok((meta.slots, index))
    }

    /// Rebuilds a table too full for one more entry: doubled if the entries alone fill more
    /// than half its load, else at its size (only tombstones to drop). Out of line: an insert
    /// takes this path once per doubling.
    #[cold]
    #[inline(never)]
    fn grow<R: Persistent>(
        self,
        tx: &mut Tx<'_, R>,
        meta: HashMeta<K, V>,
    ) -> Result<HashMeta<K, V>> {
        let size = meta.slots.len();
        let mut grown = slots_for(meta.len.saturating_add(1))?.max(size);
        if meta.len.saturating_add(1) > max_load(size) / 2 {
            grown = grown.max(size * 2);
        }
        self.rebuild(tx, meta, grown)
    }

    /// The first empty slot of `hash`'s probe sequence in a table without tombstones.
    fn free_slot(slots: &[Slot<K, V>], hash: u64) -> Result<usize> {
        let mask = slots.len() - 1;
        let mut index = hash as usize & mask;
        for _ in 0..slots.len() {
            if slots[index].is_empty() {
                return Ok(index);
            }
            index = (index + 1) & mask;
        }
        Err(Inconsistency::HashTableFull {
            slots: slots.len() as u64,
        }
        .into())
    }

    /// Moves every entry into a fresh table of `size` slots (a power of two, more than 4/3 of
    /// the entries), dropping the tombstones. One step of the transaction: the new table is
    /// fresh, so only the metadata is logged; slots move with their hashes, so no key is
    /// hashed again. Returns the new metadata.
    fn rebuild<R: Persistent>(
        self,
        tx: &mut Tx<'_, R>,
        meta: HashMeta<K, V>,
        size: u64,
    ) -> Result<HashMeta<K, V>> {
        let old = Self::slots(tx, &meta)?;
        let taken = old.iter().filter(|s| s.is_taken()).count() as u64;
        if taken != meta.len {
            return Err(Inconsistency::HashLenMismatch {
                len: meta.len,
                found: taken,
            }
            .into());
        }
        if size > MAX_SLOTS {
            return Err(Error::CapacityOverflow {
                requested: taken.saturating_add(1),
                max: max_load(MAX_SLOTS),
            });
        }
        let old: Vec<Slot<K, V>> = old.iter().filter(|s| s.is_taken()).copied().collect();
        let fresh = tx.alloc_slice_zeroed::<Slot<K, V>>(size)?;
        {
            // Fresh in this transaction: writing it logs nothing.
            let table = tx.get_slice_mut(fresh)?;
            let mask = table.len() - 1;
            for slot in &old {
                let mut index = slot.hash() as usize & mask;
                // Fewer slots are taken than the table has (`size` holds over `taken`): ends.
                while !table[index].is_empty() {
                    index = (index + 1) & mask;
                }
                table[index] = *slot;
            }
        }
        tx.free_slice(meta.slots)?;
        let meta = HashMeta {
            tombstones: 0,
            slots: fresh,
            ..meta
        };
        tx.write(self.meta, meta)?;
        Ok(meta)
    }

    /// Makes room for `additional` more entries, so that inserting them does not grow the
    /// table on the way.
    pub fn reserve<R: Persistent>(self, tx: &mut Tx<'_, R>, additional: u64) -> Result<()> {
        let meta = self.meta(tx)?;
        let wanted = meta
            .len
            .checked_add(additional)
            .ok_or(Error::CapacityOverflow {
                requested: u64::MAX,
                max: max_load(MAX_SLOTS),
            })?;
        let size = meta.slots.len();
        if wanted.saturating_add(meta.tombstones) <= max_load(size) {
            return Ok(());
        }
        self.rebuild(tx, meta, slots_for(wanted)?.max(size))?;
        Ok(())
    }

    /// Removes `key`; returns its value.
    pub fn remove<R: Persistent>(self, tx: &mut Tx<'_, R>, key: &K) -> Result<Option<V>> {
        Ok(self.remove_entry(tx, key)?.map(|(_, v)| v))
    }

    /// Removes `key`; returns the key and value it held.
    pub fn remove_entry<R: Persistent>(
        self,
        tx: &mut Tx<'_, R>,
        key: &K,
    ) -> Result<Option<(K, V)>> {
        let meta = self.meta(tx)?;
        let slots = Self::slots(tx, &meta)?;
        match Self::probe(slots, Self::hash_of(&meta, key), key) {
            Probe::Found { index } => Ok(Some(self.remove_at(tx, meta, index)?)),
            Probe::Missing { .. } => Ok(None),
        }
    }

    /// Removes the entry at slot `index`: the slot becomes empty if the next one is (no probe
    /// passes through it), else a tombstone; its key and value bytes are zeroed either way.
    pub(super) fn remove_at<R: Persistent>(
        self,
        tx: &mut Tx<'_, R>,
        meta: HashMeta<K, V>,
        index: usize,
    ) -> Result<(K, V)> {
        let slots = Self::slots(tx, &meta)?;
        let next_empty = slots[(index + 1) & (slots.len() - 1)].is_empty();
        let Slot { key, value, .. } = slots[index];
        let mark = Slot::vacant(if next_empty { 0 } else { TOMBSTONE });
        let updated = HashMeta {
            len: meta.len.saturating_sub(1),
            tombstones: meta.tombstones.saturating_add(u64::from(!next_empty)),
            ..meta
        };
        tx.write_with_element(self.meta, updated, meta.slots, index as u64, mark)?;
        Ok((key, value))
    }

    /// The entry of `key`, to read, change, insert or remove in place.
    pub fn entry<'t, 'p, R: Persistent>(
        self,
        tx: &'t mut Tx<'p, R>,
        key: K,
    ) -> Result<Entry<'t, 'p, R, K, V>> {
        let meta = self.meta(tx)?;
        let hash = Self::hash_of(&meta, &key);
        let slots = Self::slots(tx, &meta)?;
        Ok(match Self::probe(slots, hash, &key) {
            Probe::Found { index } => Entry::Occupied(OccupiedEntry {
                tx,
                map: self,
                slots: meta.slots,
                index,
                key,
            }),
            Probe::Missing { free } => Entry::Vacant(VacantEntry {
                tx,
                map: self,
                meta,
                hash,
                free,
                key,
            }),
        })
    }

    /// The entries, in slot order (which the random hash key makes arbitrary), in place.
    pub fn iter<'r, A: PoolRead>(self, r: &'r A) -> Iter<'r, A, K, V> {
        Iter::new(r, self)
    }

    /// The keys, in slot order.
    pub fn keys<'r, A: PoolRead>(self, r: &'r A) -> Keys<'r, A, K, V> {
        Keys(self.iter(r))
    }

    /// The values, in slot order.
    pub fn values<'r, A: PoolRead>(self, r: &'r A) -> Values<'r, A, K, V> {
        Values(self.iter(r))
    }

    /// Removes every entry, keeping the capacity: the slot array is replaced by a fresh zeroed
    /// one, so only the metadata is logged. A table holding other than its recorded length
    /// of entries is refused ([`Inconsistency::HashLenMismatch`]), as growing refuses it.
    pub fn clear<R: Persistent>(self, tx: &mut Tx<'_, R>) -> Result<()> {
        let meta = self.meta(tx)?;
        Self::count_entries(tx, &meta)?;
        tx.free_slice(meta.slots)?;
        let slots = tx.alloc_slice_zeroed::<Slot<K, V>>(meta.slots.len())?;
        tx.write(
            self.meta,
            HashMeta {
                len: 0,
                tombstones: 0,
                slots,
                ..meta
            },
        )?;
        Ok(())
    }

    /// Checks that the table holds `meta.len` entries.
    fn count_entries(r: &impl PoolRead, meta: &HashMeta<K, V>) -> Result<()> {
        let found = Self::slots(r, meta)?
            .iter()
            .filter(|s| s.is_taken())
            .count() as u64;
        if found != meta.len {
            return Err(Inconsistency::HashLenMismatch {
                len: meta.len,
                found,
            }
            .into());
        }
        Ok(())
    }

    /// Frees the map: its table and its metadata. The handle (and every copy of it) is
    /// dangling afterwards; clear the field that held it.
    pub fn destroy<R: Persistent>(self, tx: &mut Tx<'_, R>) -> Result<()> {
        let meta = self.meta(tx)?;
        Self::slots(tx, &meta)?;
        tx.free_slice(meta.slots)?;
        Ok(tx.free(self.meta)?)
    }

    /// Checks every invariant of the map: a power-of-two table; every taken slot's hash is its
    /// key's and no empty slot lies between the key's home slot and it (so a lookup finds it);
    /// no key twice; the length and the tombstone count match the slots.
    pub fn verify(self, r: &impl PoolRead) -> Result<()> {
        let meta = self.meta(r)?;
        let slots = Self::slots(r, &meta)?;
        let mask = slots.len() - 1;
        let (mut found, mut dead) = (0u64, 0u64);
        let mut keys = std::collections::HashSet::new();
        for (i, slot) in slots.iter().enumerate() {
            if !slot.is_taken() {
                dead += u64::from(slot.hash() == TOMBSTONE);
                continue;
            }
            found += 1;
            let misplaced = Inconsistency::HashEntryMisplaced { slot: i as u64 };
            if Self::hash_of(&meta, &slot.key) != slot.hash() {
                return Err(misplaced.into());
            }
            let mut at = slot.hash() as usize & mask;
            while at != i {
                if slots[at].is_empty() {
                    return Err(misplaced.into());
                }
                at = (at + 1) & mask;
            }
            if !keys.insert(bytes_of(&slot.key).to_vec()) {
                return Err(Inconsistency::HashKeyTwice { slot: i as u64 }.into());
            }
        }
        if found != meta.len {
            return Err(Inconsistency::HashLenMismatch {
                len: meta.len,
                found,
            }
            .into());
        }
        if dead != meta.tombstones {
            return Err(Inconsistency::HashTombstoneMismatch {
                recorded: meta.tombstones,
                found: dead,
            }
            .into());
        }
        Ok(())
    }
}

/// A map's metadata and table, read once: lookups through it skip reading them again. From
/// [`PHashMap::view`]; it borrows the reader, so the map cannot change while it lives.
///
/// ```
/// use pmem_core::{Persistent, Pool};
/// use pmem_collections::PHashMap;
///
/// #[derive(Persistent)]
/// #[repr(C)]
/// struct Root { squares: PHashMap<u64, u64> }
///
/// let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
/// pool.transaction(|tx| -> pmem_collections::Result<()> {
///     let squares = PHashMap::new(tx)?;
///     tx.root_mut().set_squares(squares)?;
///     for k in 0..10 {
///         squares.insert(tx, k, k * k)?;
///     }
///     Ok(())
/// })?;
/// let squares = pool.read(|r| r.root().squares)?;
/// let sum = pool.read(|r| -> pmem_collections::Result<u64> {
///     let view = squares.view(r)?;
///     let mut sum = 0;
///     for k in 0..20 {
///         sum += view.get(&k)?.copied().unwrap_or(0);
///     }
///     Ok(sum)
/// })??;
/// assert_eq!(sum, 285);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct HashMapView<'r, A, K, V> {
    meta: HashMeta<K, V>,
    slots: &'r [Slot<K, V>],
    _reader: PhantomData<&'r A>,
}

impl<'r, A: PoolRead, K: Persistent + Copy, V: Persistent + Copy> HashMapView<'r, A, K, V> {
    /// The value of `key`, in place in the pool.
    #[inline]
    pub fn get(&self, key: &K) -> Result<Option<&'r V>> {
        Ok(self.get_key_value(key)?.map(|(_, v)| v))
    }

    /// The key and value of `key`, in place in the pool. (A lookup follows no pointer: the
    /// table was checked when the view was made, so it cannot fail; the `Result` keeps the
    /// signature of [`PHashMap::get_key_value`].)
    #[inline]
    pub fn get_key_value(&self, key: &K) -> Result<Option<(&'r K, &'r V)>> {
        let hash = PHashMap::hash_of(&self.meta, key);
        match PHashMap::probe(self.slots, hash, key) {
            Probe::Found { index } => {
                let slot = &self.slots[index];
                Ok(Some((&slot.key, &slot.value)))
            }
            Probe::Missing { .. } => Ok(None),
        }
    }

    /// Whether the map holds `key`.
    pub fn contains_key(&self, key: &K) -> Result<bool> {
        Ok(self.get_key_value(key)?.is_some())
    }

    /// The number of entries.
    pub fn len(&self) -> u64 {
        self.meta.len
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.meta.len == 0
    }
}
