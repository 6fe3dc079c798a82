//! [`PVec<T>`]: a growable array in a pool, in segments of doubling size.
//!
//! # Layout
//!
//! ```text
//! PVec<T> ──> VecMeta<T> { len, segments: [PSlice<T>; 32] }
//!                                  │ [0]          │ [1]            │ [2]   [3..] null
//!                                  v              v                v
//!                          FIRST elements   2·FIRST elements   4·FIRST elements
//! ```
//!
//! Segment `k` holds `FIRST << k` elements, where `FIRST` is a power of two giving the first
//! segment at least 4 elements and 256 bytes. Index `i` is in segment `k = log2(i / FIRST + 1)`
//! at position `i - FIRST·(2^k - 1)`: a shift, an add and a leading-zero count. The allocated
//! segments are a prefix of the table, and the capacity is the sum of their lengths.
//!
//! Why segments rather than one buffer that is reallocated: growing a single buffer copies the
//! whole vector, and in a pool that copy is flushed (the new buffer) inside the growing
//! transaction, so a push that grows costs time proportional to the vector. Growing a
//! segmented vector allocates one new segment (zeroed, not logged: it is this transaction's
//! own allocation) and logs one 16-byte table entry; nothing already stored moves, so a
//! reference-free index is stable for the vector's life and the worst push costs the same
//! number of fences as any other. The price is that the elements are contiguous only within
//! a segment: [`iter`](PVec::iter) walks segment by segment, and there is no `as_slice`.
//!
//! # Cost (fences per operation, in its own transaction, undo logging)
//!
//! Every logged write is one undo entry and one fence; the commit adds one fence. A write to
//! memory this transaction allocated, or already logged, is not logged again.
//!
//! | operation | fences (commit included) |
//! |---|---|
//! | `push` (no growth) | 3: the element, `len`, commit |
//! | `push` growing | 3 + 1: the table entry (the segment is fresh, not logged) |
//! | `pop`, `truncate`, `clear` | 2: `len`, commit (+ 1 per segment zeroed, see below) |
//! | `set`, `get_mut` + a setter | 2 |
//! | `swap_remove` | 3 |
//! | `insert`/`remove` at `i` | 2 + one per segment the shifted run `i..len` spans |
//! | `extend_from_slice` of n | 2 + one per segment spanned + one per segment added |
//!
//! Measured (`pmem-bench vec`, `PVec<u64>`, 100,000 operations, AMD EPYC): `push` 3.00 fences,
//! 2.16 lines flushed and 3.00 log lines streamed per operation; `pop` 2.00, 1.00 and 2.00.
//!
//! Reads take no fence. Every operation first checks the table (a constant 32 entries).
//!
//! # Crash guarantees
//!
//! Every change is made in the caller's transaction: after a crash the vector is as it was
//! before the transaction or after it. Segments allocated by a transaction that does not
//! commit are freed by recovery; freed ones ([`shrink_to_fit`](PVec::shrink_to_fit),
//! [`destroy`](PVec::destroy)) are freed only if it commits.
//!
//! # Hostile pools
//!
//! Every read checks the table before trusting it: each allocated segment must have the length
//! its place implies ([`Inconsistency::SegmentLength`]), none may follow a null one
//! ([`Inconsistency::SegmentAfterGap`]), and `len` may not exceed the capacity
//! ([`Inconsistency::LenExceedsCapacity`]). The pool checks each segment pointer (bounds,
//! allocation, type `[T]`) when it is dereferenced.

mod iter;
mod segment;

use pmem_core::{Edit, PPtr, PSlice, Persistent, PoolRead, Tx};

pub use iter::Iter;
pub use segment::SEGMENTS;

use crate::{Error, Inconsistency, Result};
use segment::Geometry;

/// A growable array of `T` in a pool: a handle (a persistent pointer to its metadata) that can
/// be a field of any persistent struct. The null handle is no vector; [`new`](PVec::new) makes
/// one. See the [module docs](self) for its layout, costs and guarantees.
///
/// ```
/// use pmem_core::{Persistent, Pool};
/// use pmem_collections::PVec;
///
/// #[derive(Persistent, Clone, Copy, Debug, PartialEq)]
/// #[repr(C)]
/// struct Order { id: u64, cents: u64 }
///
/// #[derive(Persistent)]
/// #[repr(C)]
/// struct Root { orders: PVec<Order> }
///
/// let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
/// pool.transaction(|tx| {
///     let orders = PVec::new(tx)?;
///     tx.root_mut().set_orders(orders)?;
///     orders.push(tx, Order { id: 1, cents: 250 })?;
///     orders.push(tx, Order { id: 2, cents: 990 })?;
///     orders.get_mut(tx, 0)?.expect("two orders").set_cents(300)?;
///     Ok::<_, pmem_collections::Error>(())
/// })?;
/// pool.read(|r| {
///     let orders = r.root().orders;
///     assert_eq!(orders.len(r)?, 2);
///     assert_eq!(orders.get(r, 0)?, Some(&Order { id: 1, cents: 300 }));
///     let total: u64 = orders.iter(r)?.map(|o| o.cents).sum();
///     assert_eq!(total, 1290);
///     Ok::<_, pmem_collections::Error>(())
/// })??;
/// # Ok::<(), pmem_collections::Error>(())
/// ```
#[derive(Persistent)]
#[repr(transparent)]
pub struct PVec<T: Persistent> {
    meta: PPtr<VecMeta<T>>,
}

/// A [`PVec`]'s metadata, as stored in the pool.
///
/// ```
/// # use pmem_core::{Persistent, Pool};
/// # use pmem_collections::PVec;
/// # #[derive(Persistent)] #[repr(C)] struct Root { v: PVec<u64> }
/// let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
/// let v = pool.transaction(|tx| PVec::from_slice(tx, &[7u64; 40]))?;
/// pool.read(|r| {
///     let meta = r.get(v.meta_ptr())?;
///     assert_eq!(meta.len, 40);
///     // 32 elements of u64 in the first segment, 64 in the second.
///     assert_eq!((meta.segments[0].len(), meta.segments[1].len()), (32, 64));
///     assert!(meta.segments[2].is_null());
///     Ok::<_, pmem_core::Error>(())
/// })??;
/// # Ok::<(), pmem_collections::Error>(())
/// ```
#[derive(Persistent, Debug)]
#[repr(C)]
pub struct VecMeta<T: Persistent> {
    /// Number of elements.
    pub len: u64,
    /// The segments: `segments[k]` holds `FIRST << k` elements; the allocated ones are a prefix.
    pub segments: [PSlice<T>; SEGMENTS],
}

/// The checked table, copied out of the pool so a transaction can write while it is used.
struct Table<T> {
    len: u64,
    /// How many segments are allocated (a prefix of `segments`).
    allocated: usize,
    segments: [PSlice<T>; SEGMENTS],
}

impl<T> Table<T> {
    fn capacity(&self) -> u64 {
        Geometry::<T>::capacity(self.allocated)
    }

    /// The segment and position of `index`; `index < capacity`.
    fn slot(&self, index: u64) -> (PSlice<T>, usize) {
        let (k, offset) = Geometry::<T>::locate(index);
        (self.segments[k], offset)
    }
}

impl<T: Persistent> Clone for PVec<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: Persistent> Copy for PVec<T> {}
impl<T: Persistent> PartialEq for PVec<T> {
    fn eq(&self, other: &Self) -> bool {
        self.meta == other.meta
    }
}
impl<T: Persistent> Eq for PVec<T> {}
impl<T: Persistent> Default for PVec<T> {
    fn default() -> Self {
        Self::null()
    }
}
impl<T: Persistent> core::fmt::Debug for PVec<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PVec({:#x})", self.meta.offset())
    }
}

impl<T: Persistent> PVec<T> {
    /// The null handle: no vector.
    pub const fn null() -> Self {
        PVec { meta: PPtr::null() }
    }

    /// Whether this is the null handle.
    pub fn is_null(self) -> bool {
        self.meta.is_null()
    }

    /// The pointer to the metadata this handle is (for inspection and tests; writing the
    /// metadata by hand can break the container's invariants, which its reads then report).
    pub const fn meta_ptr(self) -> PPtr<VecMeta<T>> {
        self.meta
    }
}

impl<T: Persistent + Copy> PVec<T> {
    /// The most elements a vector of `T` can hold (the 32 segments together).
    pub const MAX_CAPACITY: u64 = Geometry::<T>::MAX;

    /// Allocates an empty vector (its metadata only; no segment until the first push).
    pub fn new<R: Persistent>(tx: &mut Tx<'_, R>) -> Result<Self> {
        Ok(PVec {
            meta: tx.alloc_zeroed()?,
        })
    }

    /// Allocates an empty vector with room for at least `capacity` elements.
    pub fn with_capacity<R: Persistent>(tx: &mut Tx<'_, R>, capacity: u64) -> Result<Self> {
        let v = Self::new(tx)?;
        v.reserve(tx, capacity)?;
        Ok(v)
    }

    /// Allocates a vector holding a copy of `values`.
    pub fn from_slice<R: Persistent>(tx: &mut Tx<'_, R>, values: &[T]) -> Result<Self> {
        let v = Self::new(tx)?;
        v.extend_from_slice(tx, values)?;
        Ok(v)
    }

    /// Reads and checks the segment table.
    fn table(self, r: &impl PoolRead) -> Result<Table<T>> {
        let meta = r.get(self.meta)?;
        let allocated = meta
            .segments
            .iter()
            .position(|s| s.is_null())
            .unwrap_or(SEGMENTS);
        if let Some(k) = meta.segments[allocated..].iter().position(|s| !s.is_null()) {
            return Err(Inconsistency::SegmentAfterGap {
                segment: (allocated + k) as u64,
            }
            .into());
        }
        for (k, s) in meta.segments[..allocated].iter().enumerate() {
            let expected = Geometry::<T>::segment_len(k);
            if s.len() != expected {
                return Err(Inconsistency::SegmentLength {
                    segment: k as u64,
                    expected,
                    found: s.len(),
                }
                .into());
            }
        }
        let table = Table {
            len: meta.len,
            allocated,
            segments: meta.segments,
        };
        if table.len > table.capacity() {
            return Err(Inconsistency::LenExceedsCapacity {
                len: table.len,
                capacity: table.capacity(),
            }
            .into());
        }
        Ok(table)
    }

    /// Number of elements.
    pub fn len(self, r: &impl PoolRead) -> Result<u64> {
        Ok(self.table(r)?.len)
    }

    /// Whether the vector has no elements.
    pub fn is_empty(self, r: &impl PoolRead) -> Result<bool> {
        Ok(self.len(r)? == 0)
    }

    /// Elements the allocated segments hold: pushes up to this many allocate nothing.
    pub fn capacity(self, r: &impl PoolRead) -> Result<u64> {
        Ok(self.table(r)?.capacity())
    }

    /// The element at `index`, or `None` past the end.
    pub fn get(self, r: &impl PoolRead, index: u64) -> Result<Option<&T>> {
        let table = self.table(r)?;
        if index >= table.len {
            return Ok(None);
        }
        let (segment, offset) = table.slot(index);
        Ok(Some(element(r.get_slice(segment)?, offset)?))
    }

    /// The first element, or `None` when empty.
    pub fn first(self, r: &impl PoolRead) -> Result<Option<&T>> {
        self.get(r, 0)
    }

    /// The last element, or `None` when empty.
    pub fn last(self, r: &impl PoolRead) -> Result<Option<&T>> {
        let len = self.len(r)?;
        match len.checked_sub(1) {
            Some(i) => self.get(r, i),
            None => Ok(None),
        }
    }

    /// A write handle to the element at `index` (a setter per field for derived types, each
    /// logging only its field), or `None` past the end.
    pub fn get_mut<'t, R: Persistent>(
        self,
        tx: &'t mut Tx<'_, R>,
        index: u64,
    ) -> Result<Option<T::Mut<'t>>>
    where
        T: Edit,
    {
        let table = self.table(tx)?;
        if index >= table.len {
            return Ok(None);
        }
        let (segment, offset) = table.slot(index);
        Ok(Some(tx.edit_slice(segment)?.into_at(offset)))
    }

    /// Replaces the element at `index`, logging only it, and returns the old one.
    /// Fails with [`Error::IndexOutOfBounds`] if `index >= len`.
    pub fn set<R: Persistent>(self, tx: &mut Tx<'_, R>, index: u64, value: T) -> Result<T> {
        let table = self.table(tx)?;
        if index >= table.len {
            return Err(Error::IndexOutOfBounds {
                index,
                len: table.len,
            });
        }
        let (segment, offset) = table.slot(index);
        let old = *element(tx.get_slice(segment)?, offset)?;
        tx.edit_slice(segment)?.set_at(offset, value)?;
        Ok(old)
    }

    /// Appends `value`, allocating a segment if the vector is full.
    pub fn push<R: Persistent>(self, tx: &mut Tx<'_, R>, value: T) -> Result<()> {
        let mut table = self.table(tx)?;
        if table.len == table.capacity() {
            self.grow(tx, &mut table)?;
        }
        let (segment, offset) = table.slot(table.len);
        tx.edit_slice(segment)?.set_at(offset, value)?;
        self.set_len(tx, table.len + 1)
    }

    /// Removes and returns the last element, or `None` when empty. The capacity stays.
    pub fn pop<R: Persistent>(self, tx: &mut Tx<'_, R>) -> Result<Option<T>> {
        let table = self.table(tx)?;
        let Some(last) = table.len.checked_sub(1) else {
            return Ok(None);
        };
        let (segment, offset) = table.slot(last);
        let value = *element(tx.get_slice(segment)?, offset)?;
        clear_run(tx, &table, last, table.len)?;
        self.set_len(tx, last)?;
        Ok(Some(value))
    }

    /// Inserts `value` at `index`, shifting the elements after it up by one.
    /// Fails with [`Error::IndexOutOfBounds`] if `index > len` (where `Vec::insert` panics).
    pub fn insert<R: Persistent>(self, tx: &mut Tx<'_, R>, index: u64, value: T) -> Result<()> {
        let mut table = self.table(tx)?;
        if index > table.len {
            return Err(Error::IndexOutOfBounds {
                index,
                len: table.len,
            });
        }
        if table.len == table.capacity() {
            self.grow(tx, &mut table)?;
        }
        let mut run = Vec::with_capacity((table.len - index + 1) as usize);
        run.push(value);
        read_run(tx, &table, index, table.len, &mut run)?;
        write_run(tx, &table, index, &run)?;
        self.set_len(tx, table.len + 1)
    }

    /// Removes and returns the element at `index`, shifting the elements after it down by
    /// one; `None` if `index >= len` (where `Vec::remove` panics, and as `VecDeque::remove`).
    pub fn remove<R: Persistent>(self, tx: &mut Tx<'_, R>, index: u64) -> Result<Option<T>> {
        let table = self.table(tx)?;
        if index >= table.len {
            return Ok(None);
        }
        let mut run = Vec::with_capacity((table.len - index) as usize);
        read_run(tx, &table, index, table.len, &mut run)?;
        let removed = run.remove(0);
        write_run(tx, &table, index, &run)?;
        clear_run(tx, &table, table.len - 1, table.len)?;
        self.set_len(tx, table.len - 1)?;
        Ok(Some(removed))
    }

    /// Removes and returns the element at `index`, moving the last element into its place;
    /// `None` if `index >= len`.
    pub fn swap_remove<R: Persistent>(self, tx: &mut Tx<'_, R>, index: u64) -> Result<Option<T>> {
        let table = self.table(tx)?;
        if index >= table.len {
            return Ok(None);
        }
        let last = table.len - 1;
        let (segment, offset) = table.slot(index);
        let removed = *element(tx.get_slice(segment)?, offset)?;
        if index != last {
            let (last_segment, last_offset) = table.slot(last);
            let moved = *element(tx.get_slice(last_segment)?, last_offset)?;
            tx.edit_slice(segment)?.set_at(offset, moved)?;
        }
        clear_run(tx, &table, last, table.len)?;
        self.set_len(tx, last)?;
        Ok(Some(removed))
    }

    /// Shortens the vector to `len` elements; nothing if it is not longer. The capacity stays.
    pub fn truncate<R: Persistent>(self, tx: &mut Tx<'_, R>, len: u64) -> Result<()> {
        let table = self.table(tx)?;
        if len < table.len {
            clear_run(tx, &table, len, table.len)?;
            self.set_len(tx, len)?;
        }
        Ok(())
    }

    /// Removes every element. The capacity stays.
    pub fn clear<R: Persistent>(self, tx: &mut Tx<'_, R>) -> Result<()> {
        self.truncate(tx, 0)
    }

    /// Appends a copy of `values`: one log entry per segment they land in.
    pub fn extend_from_slice<R: Persistent>(self, tx: &mut Tx<'_, R>, values: &[T]) -> Result<()> {
        let additional = values.len() as u64;
        self.reserve(tx, additional)?;
        let table = self.table(tx)?;
        write_run(tx, &table, table.len, values)?;
        self.set_len(tx, table.len + additional)
    }

    /// Appends every element of `values`.
    pub fn extend<R: Persistent>(
        self,
        tx: &mut Tx<'_, R>,
        values: impl IntoIterator<Item = T>,
    ) -> Result<()> {
        let values: Vec<T> = values.into_iter().collect();
        self.extend_from_slice(tx, &values)
    }

    /// Allocates segments until at least `additional` more elements fit.
    /// Fails with [`Error::CapacityOverflow`] past [`MAX_CAPACITY`](Self::MAX_CAPACITY).
    pub fn reserve<R: Persistent>(self, tx: &mut Tx<'_, R>, additional: u64) -> Result<()> {
        let mut table = self.table(tx)?;
        let needed = table
            .len
            .checked_add(additional)
            .ok_or(Error::CapacityOverflow {
                requested: u64::MAX,
                max: Self::MAX_CAPACITY,
            })?;
        if needed > Self::MAX_CAPACITY {
            return Err(Error::CapacityOverflow {
                requested: needed,
                max: Self::MAX_CAPACITY,
            });
        }
        while table.capacity() < needed {
            self.grow(tx, &mut table)?;
        }
        Ok(())
    }

    /// Frees the segments no element is in.
    pub fn shrink_to_fit<R: Persistent>(self, tx: &mut Tx<'_, R>) -> Result<()> {
        let mut table = self.table(tx)?;
        while table.allocated > 0 && Geometry::<T>::capacity(table.allocated - 1) >= table.len {
            table.allocated -= 1;
            let k = table.allocated;
            tx.free_slice(table.segments[k])?;
            tx.edit(self.meta)?
                .segments_mut()
                .set_at(k, PSlice::null())?;
        }
        Ok(())
    }

    /// The elements in order. The table is checked once here; the iteration cannot fail.
    pub fn iter<'r>(self, r: &'r impl PoolRead) -> Result<Iter<'r, T>> {
        let table = self.table(r)?;
        let mut slices: [&'r [T]; SEGMENTS] = [&[]; SEGMENTS];
        let mut left = table.len;
        for (k, slot) in slices.iter_mut().enumerate() {
            if left == 0 {
                break;
            }
            let segment = r.get_slice(table.segments[k])?;
            let take = left.min(segment.len() as u64);
            *slot = &segment[..take as usize];
            left -= take;
        }
        Ok(Iter::new(slices, table.len))
    }

    /// A copy of the elements in a `Vec`.
    pub fn to_vec(self, r: &impl PoolRead) -> Result<Vec<T>> {
        Ok(self.iter(r)?.copied().collect())
    }

    /// Frees every segment and the metadata. The handle (and every copy of it) is then dangling:
    /// clear the field that held it in the same transaction.
    pub fn destroy<R: Persistent>(self, tx: &mut Tx<'_, R>) -> Result<()> {
        let table = self.table(tx)?;
        for segment in &table.segments[..table.allocated] {
            tx.free_slice(*segment)?;
        }
        Ok(tx.free(self.meta)?)
    }

    /// Allocates the next segment and records it in the table.
    fn grow<R: Persistent>(self, tx: &mut Tx<'_, R>, table: &mut Table<T>) -> Result<()> {
        let k = table.allocated;
        if k == SEGMENTS {
            return Err(Error::CapacityOverflow {
                requested: Self::MAX_CAPACITY.saturating_add(1),
                max: Self::MAX_CAPACITY,
            });
        }
        let segment = tx.alloc_slice_zeroed::<T>(Geometry::<T>::segment_len(k))?;
        tx.edit(self.meta)?.segments_mut().set_at(k, segment)?;
        table.segments[k] = segment;
        table.allocated += 1;
        Ok(())
    }

    fn set_len<R: Persistent>(self, tx: &mut Tx<'_, R>, len: u64) -> Result<()> {
        Ok(tx.edit(self.meta)?.set_len(len)?)
    }
}

/// Element `offset` of a segment whose length the table checked.
fn element<T>(segment: &[T], offset: usize) -> Result<&T> {
    segment.get(offset).ok_or_else(|| {
        Inconsistency::SegmentLength {
            segment: u64::MAX,
            expected: offset as u64 + 1,
            found: segment.len() as u64,
        }
        .into()
    })
}

/// The error for a run that reaches past the capacity (only a damaged table can ask for it).
fn past_capacity<T>(table: &Table<T>, index: u64) -> Error {
    Inconsistency::LenExceedsCapacity {
        len: index + 1,
        capacity: table.capacity(),
    }
    .into()
}

/// Appends elements `start..end` to `out`.
fn read_run<T: Persistent + Copy>(
    r: &impl PoolRead,
    table: &Table<T>,
    start: u64,
    end: u64,
    out: &mut Vec<T>,
) -> Result<()> {
    let mut index = start;
    while index < end {
        if index >= table.capacity() {
            return Err(past_capacity(table, index));
        }
        let (segment, offset) = table.slot(index);
        let run = r.get_slice(segment)?.get(offset..).unwrap_or_default();
        let take = run.len().min((end - index) as usize);
        if take == 0 {
            return Err(past_capacity(table, index));
        }
        out.extend_from_slice(&run[..take]);
        index += take as u64;
    }
    Ok(())
}

/// Zeroes elements `start..end` that leave the live range, if `T` holds pointers: a stale
/// pointer left past `len` would still name an object the program may free, and the pool's
/// deep check (which walks every pointer of every object) would report it dangling. One log
/// entry per segment; nothing for pointer-free elements, whose dead slots nothing reads.
fn clear_run<T: Persistent + Copy, R: Persistent>(
    tx: &mut Tx<'_, R>,
    table: &Table<T>,
    start: u64,
    end: u64,
) -> Result<()> {
    let mut index = start;
    while T::HAS_POINTERS && index < end {
        if index >= table.capacity() {
            return Err(past_capacity(table, index));
        }
        let (segment, offset) = table.slot(index);
        let mut elements = tx.edit_slice(segment)?;
        let take = ((end - index) as usize).min(elements.len().saturating_sub(offset));
        if take == 0 {
            return Err(past_capacity(table, index));
        }
        elements.zero_range(offset..offset + take)?;
        index += take as u64;
    }
    Ok(())
}

/// Writes `values` at `start..`, one log entry per segment.
fn write_run<T: Persistent + Copy, R: Persistent>(
    tx: &mut Tx<'_, R>,
    table: &Table<T>,
    start: u64,
    mut values: &[T],
) -> Result<()> {
    let mut index = start;
    while !values.is_empty() {
        if index >= table.capacity() {
            return Err(past_capacity(table, index));
        }
        let (segment, offset) = table.slot(index);
        let mut elements = tx.edit_slice(segment)?;
        let take = values.len().min(elements.len().saturating_sub(offset));
        if take == 0 {
            return Err(past_capacity(table, index));
        }
        elements
            .range_mut(offset..offset + take)?
            .copy_from_slice(&values[..take]);
        values = &values[take..];
        index += take as u64;
    }
    Ok(())
}
