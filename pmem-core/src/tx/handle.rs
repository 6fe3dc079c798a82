//! [`PMut`]: the in-place write handle a transaction hands out for one value in the pool.

use core::fmt;
use core::marker::PhantomData;

use crate::error::Result;
use crate::persistent::{bytes_of, Persistent};
use crate::tx::{align_u64, size_u64, Edit, TxCore};

/// A handle to a `T` inside the pool, borrowed from a transaction, through which the `T` is
/// written. Writes go to the transaction's write set (in place, for an object the transaction
/// allocated) and reach the pool only once it commits, so an abort or a crash leaves the old
/// bytes.
///
/// A handle is `Send` but not `Sync`: reading through `&PMut` may reorganise the transaction's
/// write set, which only one thread may do.
///
/// ```compile_fail
/// fn shared<T: Sync>() {}
/// shared::<pmem_core::PMut<'static, u64>>();
/// ```
///
/// Derived structs get a handle of their own (`<Name>Mut`) with a setter per field; it wraps a
/// `PMut` and converts from one. Arrays get [`at`](PMut::at) and [`set_at`](PMut::set_at).
///
/// The handle borrows the transaction mutably, so no reference into the pool obtained from the
/// transaction can be alive while it writes.
pub struct PMut<'t, T> {
    tx: &'t mut TxCore,
    offset: u64,
    _target: PhantomData<T>,
    /// Not `Sync`: reading through `&PMut` may merge the transaction's shadows.
    _not_sync: NotSync,
}

/// A marker that keeps a handle from being `Sync` (it stays `Send`).
pub(crate) type NotSync = PhantomData<core::cell::Cell<()>>;

impl<'t, T: Persistent> PMut<'t, T> {
    /// # Safety
    /// `offset .. offset + size_u64::<T>()` lies inside the pool's data area and is aligned for `T`.
    pub(crate) unsafe fn new(tx: &'t mut TxCore, offset: u64) -> Self {
        PMut {
            tx,
            offset,
            _target: PhantomData,
            _not_sync: PhantomData,
        }
    }

    /// The pool offset of the value.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The current value (including this transaction's writes).
    pub fn get(&self) -> &T {
        // SAFETY: `new`'s contract makes the range valid and aligned; `T: Persistent` accepts any
        // bytes; `&self` borrows the transaction, so nothing writes the pool while the reference
        // lives.
        unsafe {
            &*(self
                .tx
                .read_ptr(self.offset, size_u64::<T>(), align_u64::<T>())
                as *const T)
        }
    }

    /// Replaces the whole value (in the transaction's write set, applied when it commits).
    pub fn set(&mut self, value: T) -> Result<()> {
        self.tx.write(self.offset, bytes_of(&value))
    }

    /// A mutable reference to the whole value as the transaction sees it, for many writes at
    /// the price of one.
    pub fn get_mut(self) -> Result<&'t mut T> {
        let at = self
            .tx
            .write_ptr(self.offset, size_u64::<T>(), align_u64::<T>())?;
        // SAFETY: as in `get`; the reference holds the transaction's unique borrow for `'t`, so it
        // is the only access to the pool and the write set until it ends.
        Ok(unsafe { &mut *(at as *mut T) })
    }

    /// A handle to the same value borrowing this one, so this one can be used again afterwards.
    pub fn reborrow(&mut self) -> PMut<'_, T> {
        PMut {
            tx: &mut *self.tx,
            offset: self.offset,
            _target: PhantomData,
            _not_sync: PhantomData,
        }
    }

    /// Converts into the type's own handle (the generated `<Name>Mut` for derived structs).
    pub fn into_handle(self) -> T::Mut<'t>
    where
        T: Edit,
    {
        T::Mut::from(self)
    }

    /// A handle to a field of this value. Used by the code `#[derive(Persistent)]` generates.
    ///
    /// # Safety
    ///
    /// `field_offset .. field_offset + size_u64::<F>()` lies inside `T`, `field_offset` is a
    /// multiple of `align_u64::<F>()`, and `align_u64::<F>()` divides `align_u64::<T>()`: the bytes
    /// are a field of type `F` (or a sub-range an `F` may view, since every `T: Persistent` is
    /// valid for any bytes). The generated code passes `offset_of!` of a field of type `F`, which
    /// always satisfies this.
    #[doc(hidden)]
    #[inline]
    pub unsafe fn __field<F: Persistent>(&mut self, field_offset: usize) -> PMut<'_, F> {
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { self.reborrow().__into_field(field_offset) }
    }

    /// As [`__field`](Self::__field), consuming this handle so the field's handle keeps its
    /// lifetime.
    ///
    /// # Safety
    ///
    /// As for [`__field`](Self::__field).
    #[doc(hidden)]
    #[inline]
    pub unsafe fn __into_field<F: Persistent>(self, field_offset: usize) -> PMut<'t, F> {
        // Free for the constant offsets the generated code passes; a last line of defence for a
        // caller that breaks the contract (the sum cannot wrap, whatever the offset).
        assert!(
            field_offset
                .checked_add(core::mem::size_of::<F>())
                .is_some_and(|end| end <= core::mem::size_of::<T>())
                && field_offset % core::mem::align_of::<F>() == 0
                && core::mem::align_of::<F>() <= core::mem::align_of::<T>(),
            "field projection outside the value or misaligned"
        );
        // SAFETY: the field range lies inside `T`'s range (checked), which `new`'s contract makes
        // valid and aligned for `T`; `field_offset` is a multiple of `F`'s alignment, which is
        // at most `T`'s (both powers of two, so it divides it).
        unsafe { PMut::new(self.tx, self.offset + field_offset as u64) }
    }
}

impl<'t, T: Persistent, const N: usize> PMut<'t, [T; N]> {
    /// The number of elements, `N`.
    pub fn len(&self) -> usize {
        N
    }

    /// Whether `N == 0`.
    pub fn is_empty(&self) -> bool {
        N == 0
    }

    /// A handle to element `index` (a `usize`, as for [`SliceMut::at`]).
    ///
    /// # Panics
    /// If `index >= N`, like slice indexing.
    pub fn at(&mut self, index: usize) -> T::Mut<'_>
    where
        T: Edit,
    {
        assert!(
            index < N,
            "index {index} out of bounds for an array of length {N}"
        );
        // SAFETY: element `index < N` of `[T; N]` lies inside the array, at a multiple of
        // `size_u64::<T>()` and so of `align_u64::<T>()`, which is the array's alignment.
        unsafe { self.__field::<T>(index * core::mem::size_of::<T>()) }.into_handle()
    }

    /// Sets element `index` to `value`, writing only that element.
    ///
    /// # Panics
    /// If `index >= N`, like slice indexing.
    pub fn set_at(&mut self, index: usize, value: T) -> Result<()> {
        assert!(
            index < N,
            "index {index} out of bounds for an array of length {N}"
        );
        // SAFETY: as in `at`.
        unsafe { self.__field::<T>(index * core::mem::size_of::<T>()) }.set(value)
    }
}

/// A handle to the elements of a [`PSlice`](crate::PSlice) inside the pool, borrowed from a
/// transaction, through which single elements are written (each joining the write set alone). From
/// [`Tx::edit_slice`](crate::Tx::edit_slice).
///
/// Elements are indexed by `usize`, as an array's handle ([`PMut::at`]) and the `&[T]` that
/// [`get`](SliceMut::get) returns are: an index counts elements in memory, and the slice is
/// mapped, so its length fits. [`PSlice::len`](crate::PSlice::len) stays `u64` because it is
/// the length as stored in the pool, like every offset; it converts without loss, since the
/// crate builds for 64-bit targets only.
///
/// ```
/// # use pmem_core::{Persistent, Pool, PSlice};
/// # #[derive(Persistent)] #[repr(C)] struct Root { words: PSlice<u64> }
/// # let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
/// pool.transaction(|tx| {
///     let words = tx.alloc_slice(&[1u64, 2, 3])?;
///     tx.root_mut().set_words(words)?;
///     let mut s = tx.edit_slice(words)?;
///     for i in 0..s.len() {
///         let doubled = s.get()[i] * 2;
///         s.set_at(i, doubled)?;
///     }
///     Ok(())
/// })?;
/// pool.read(|r| assert_eq!(r.get_slice(r.root().words).unwrap(), &[2, 4, 6]));
/// # Ok::<(), pmem_core::Error>(())
/// ```
pub struct SliceMut<'t, T> {
    tx: &'t mut TxCore,
    offset: u64,
    len: usize,
    _target: PhantomData<T>,
    /// Not `Sync`: reading through `&SliceMut` may merge the transaction's shadows.
    _not_sync: NotSync,
}

impl<'t, T: Persistent> SliceMut<'t, T> {
    /// # Safety
    /// `len` elements of `T` from `offset` lie inside the pool and are aligned for `T`.
    pub(crate) unsafe fn new(tx: &'t mut TxCore, offset: u64, len: u64) -> Self {
        SliceMut {
            tx,
            offset,
            // Lossless: the crate builds for 64-bit targets only.
            len: len as usize,
            _target: PhantomData,
            _not_sync: PhantomData,
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The current elements (including this transaction's writes).
    pub fn get(&self) -> &[T] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `new`'s contract; `&self` borrows the transaction, so nothing writes meanwhile.
        let bytes = (self.len * core::mem::size_of::<T>()) as u64;
        let at = self.tx.read_ptr(self.offset, bytes, align_u64::<T>());
        // SAFETY: as above; `read_ptr` keeps the range and its alignment.
        unsafe { core::slice::from_raw_parts(at as *const T, self.len) }
    }

    /// A handle to element `index`.
    ///
    /// # Panics
    /// If `index >= len`, like slice indexing.
    pub fn at(&mut self, index: usize) -> T::Mut<'_>
    where
        T: Edit,
    {
        let offset = self.element_offset(index);
        // SAFETY: element `index` lies inside the slice (checked), which `new`'s contract covers.
        unsafe { PMut::<T>::new(&mut *self.tx, offset) }.into_handle()
    }

    /// Sets elements `range` to all-zero bytes (zero numbers, null pointers), writing only
    /// them: how a container clears slots that leave its live range, so that no stale pointer
    /// stays behind in them.
    ///
    /// ```
    /// # use pmem_core::{Persistent, Pool, PPtr, PSlice};
    /// # #[derive(Persistent)] #[repr(C)] struct Root { slots: PSlice<PPtr<u64>> }
    /// let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
    /// let slots = pool.transaction(|tx| {
    ///     let a = tx.alloc(1u64)?;
    ///     let slots = tx.alloc_slice(&[a, a, a])?;
    ///     tx.root_mut().set_slots(slots)?;
    ///     Ok::<_, pmem_core::Error>(slots)
    /// })?;
    /// pool.transaction(|tx| tx.edit_slice(slots)?.zero_range(1..3))?;
    /// pool.read(|r| {
    ///     let s = r.get_slice(slots).unwrap();
    ///     assert!(!s[0].is_null() && s[1].is_null() && s[2].is_null());
    /// })?;
    /// # Ok::<(), pmem_core::Error>(())
    /// ```
    ///
    /// # Panics
    /// If `range` is not inside `0..len`, like slice indexing.
    pub fn zero_range(&mut self, range: core::ops::Range<usize>) -> Result<()> {
        self.range_mut(range.clone())?;
        let size = core::mem::size_of::<T>();
        // No overflow: the range lies inside the slice (checked), which lies inside the pool.
        let (offset, bytes) = (
            self.offset + (range.start * size) as u64,
            range.len() * size,
        );
        self.tx.zero(offset, bytes as u64)
    }

    /// A handle to element `index` that keeps the transaction's borrow: what a container
    /// returns for one of its elements.
    ///
    /// ```
    /// # use pmem_core::{Persistent, Pool, PSlice, Tx};
    /// #[derive(Persistent, Clone, Copy)]
    /// #[repr(C)]
    /// struct Point { x: u64, y: u64 }
    /// # #[derive(Persistent)] #[repr(C)] struct Root { points: PSlice<Point> }
    ///
    /// /// Point `i`'s write handle, borrowed from the transaction rather than from a local.
    /// fn point<'t>(tx: &'t mut Tx<'_, Root>, i: usize) -> pmem_core::Result<PointMut<'t>> {
    ///     let points = tx.root().points;
    ///     Ok(tx.edit_slice(points)?.into_at(i))
    /// }
    ///
    /// let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
    /// pool.transaction(|tx| {
    ///     let points = tx.alloc_slice(&[Point { x: 0, y: 0 }; 4])?;
    ///     tx.root_mut().set_points(points)?;
    ///     point(tx, 2)?.set_y(9) // logs 8 bytes
    /// })?;
    /// pool.read(|r| assert_eq!(r.get_slice(r.root().points).unwrap()[2].y, 9))?;
    /// # Ok::<(), pmem_core::Error>(())
    /// ```
    ///
    /// # Panics
    /// If `index >= len`, like slice indexing.
    pub fn into_at(self, index: usize) -> T::Mut<'t>
    where
        T: Edit,
    {
        let offset = self.element_offset(index);
        // SAFETY: element `index` lies inside the slice (checked), which `new`'s contract covers.
        unsafe { PMut::<T>::new(self.tx, offset) }.into_handle()
    }

    /// Sets element `index` to `value`, writing only that element.
    ///
    /// # Panics
    /// If `index >= len`, like slice indexing.
    pub fn set_at(&mut self, index: usize, value: T) -> Result<()> {
        let offset = self.element_offset(index);
        self.tx.write(offset, bytes_of(&value))
    }

    /// Elements `range` mutably, only them joining the write set (in place if this transaction
    /// allocated them): for writing a run of elements of a large slice without copying the
    /// rest.
    ///
    /// ```
    /// # use pmem_core::{Persistent, Pool, PSlice};
    /// # #[derive(Persistent)] #[repr(C)] struct Root { words: PSlice<u64> }
    /// let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
    /// pool.transaction(|tx| {
    ///     let words = tx.alloc_slice(&[0u64; 8])?;
    ///     tx.root_mut().set_words(words)
    /// })?;
    /// let words = pool.read(|r| r.root().words)?;
    /// pool.transaction(|tx| {
    ///     tx.edit_slice(words)?.range_mut(2..5)?.copy_from_slice(&[7, 8, 9]); // logs 3 of 8
    ///     Ok::<_, pmem_core::Error>(())
    /// })?;
    /// let aborted = pool.transaction(|tx| {
    ///     tx.edit_slice(words)?.range_mut(0..8)?.fill(1);
    ///     Err::<(), _>(tx.abort())
    /// });
    /// assert!(aborted.is_err());
    /// pool.read(|r| assert_eq!(r.get_slice(words).unwrap(), &[0, 0, 7, 8, 9, 0, 0, 0]))?;
    /// # Ok::<(), pmem_core::Error>(())
    /// ```
    ///
    /// # Panics
    /// If `range` is not inside `0..len`, like slice indexing.
    pub fn range_mut(&mut self, range: core::ops::Range<usize>) -> Result<&mut [T]> {
        assert!(
            range.start <= range.end && range.end <= self.len,
            "range {range:?} out of bounds for a slice of length {}",
            self.len
        );
        let count = range.end - range.start;
        if count == 0 {
            return Ok(&mut []);
        }
        let size = core::mem::size_of::<T>();
        // No overflow: the range lies inside the slice, which lies inside the pool.
        let offset = self.offset + (range.start * size) as u64;
        let at = self
            .tx
            .write_ptr(offset, (count * size) as u64, align_u64::<T>())?;
        // SAFETY: the range lies inside the slice, which `new`'s contract covers; `write_ptr`
        // keeps it and its alignment (a shadow, or a new object); `&mut self` borrows the
        // transaction uniquely, so nothing else reaches the pool while the slice lives.
        Ok(unsafe { core::slice::from_raw_parts_mut(at as *mut T, count) })
    }

    /// The pool offset of element `index`, panicking if it is out of bounds.
    fn element_offset(&self, index: usize) -> u64 {
        assert!(
            index < self.len,
            "index {index} out of bounds for a slice of length {}",
            self.len
        );
        // No overflow: the element lies inside the slice, which lies inside the pool.
        self.offset + (index * core::mem::size_of::<T>()) as u64
    }
}

impl<T> fmt::Debug for SliceMut<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SliceMut<{}>({:#x}, len {})",
            core::any::type_name::<T>(),
            self.offset,
            self.len
        )
    }
}

impl<T> fmt::Debug for PMut<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PMut<{}>({:#x})",
            core::any::type_name::<T>(),
            self.offset
        )
    }
}
