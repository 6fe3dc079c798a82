//! Transactions: [`Tx`], the handle a [`Pool::transaction`](crate::Pool::transaction) closure
//! works through, and [`PMut`], its in-place write handle.

mod deferred;
mod edit;
mod guard;
mod handle;
mod ranges;
mod state;
mod write_set;

use std::marker::PhantomData;
use std::mem::ManuallyDrop;

pub(crate) use self::state::TxCore;
pub use edit::Edit;
pub(crate) use guard::WriteGuard;
pub use handle::{PMut, SliceMut};

use crate::error::{AbortCause, Error, InvalidArgument, PointerRejection, Result};
use crate::heap::resolve::{locate, resolve, slice_fingerprint};
use crate::heap::{ObjectRef, Reservation};
use crate::persistent::{bytes_of, Persistent};
use crate::ptr::{PPtr, PSlice};

/// `size_of::<T>()` as a pool length.
#[inline(always)]
pub(crate) const fn size_u64<T>() -> u64 {
    core::mem::size_of::<T>() as u64
}

/// `align_of::<T>()` as a pool length.
#[inline(always)]
pub(crate) const fn align_u64<T>() -> u64 {
    core::mem::align_of::<T>() as u64
}

type Hook<'p> = Box<dyn FnOnce() + 'p>;

/// An open transaction on a `Pool<R>`, with exclusive access to the pool.
///
/// Reads return references into the pool, or into the transaction's write set for what it has
/// written; writes go to the write set (or in place, for objects it allocated) and reach the
/// pool only when it commits, so an abort leaves nothing to undo. The borrow checker keeps every reference from living across
/// a write: reads borrow the `Tx` shared, writes borrow it mutably.
///
/// ```
/// # use pmem_core::{Persistent, Pool, PPtr};
/// #[derive(Persistent)]
/// #[repr(C)]
/// struct Account { balance: u64 }
/// #[derive(Persistent)]
/// #[repr(C)]
/// struct Root { a: PPtr<Account>, b: PPtr<Account> }
///
/// let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
/// pool.transaction(|tx| {
///     let a = tx.alloc(Account { balance: 100 })?;
///     let b = tx.alloc(Account { balance: 0 })?;
///     tx.root_mut().set_a(a)?;
///     tx.root_mut().set_b(b)
/// })?;
/// // Move 30 from a to b: one fence, at commit.
/// pool.transaction(|tx| -> pmem_core::Result<()> {
///     let (a, b) = (tx.root().a, tx.root().b);
///     let [a, b] = tx.get_mut_many([a, b])?;
///     a.balance -= 30;
///     b.balance += 30;
///     Ok(())
/// })?;
/// pool.read(|r| {
///     assert_eq!(r.get(r.root().a).unwrap().balance, 70);
///     assert_eq!(r.get(r.root().b).unwrap().balance, 30);
/// })?;
/// # Ok::<(), pmem_core::Error>(())
/// ```
///
/// A `Tx` is neither `Send` nor `Sync`: it holds the pool's write lock for the thread that
/// opened it, and its write set is that thread's alone.
///
/// ```compile_fail
/// fn shared<T: Sync>() {}
/// shared::<pmem_core::Tx<'static, u64>>();
/// ```
pub struct Tx<'p, R> {
    /// Released in `drop`, before the hooks run.
    core: ManuallyDrop<WriteGuard<'p>>,
    /// Boxed, and only once a hook is added: most transactions have none, and then ending one
    /// checks and drops a single pointer.
    hooks: Option<Box<Hooks<'p>>>,
    stage: Stage,
    _root: PhantomData<fn() -> R>,
}

/// The hooks of each outcome, in the order they were added.
#[derive(Default)]
struct Hooks<'p> {
    on_commit: Vec<Hook<'p>>,
    on_abort: Vec<Hook<'p>>,
}

/// How far a transaction got, which tells `drop` what is left to do.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The closure runs (or unwound).
    Open,
    /// Committing or aborting.
    Ending,
    /// Committed or aborted.
    Ended,
}

impl<'p, R: Persistent> Tx<'p, R> {
    pub(crate) fn new(core: WriteGuard<'p>) -> Self {
        Tx {
            core: ManuallyDrop::new(core),
            hooks: None,
            stage: Stage::Open,
            _root: PhantomData,
        }
    }

    /// Commits or aborts according to the closure's result, releases the pool, then runs the
    /// hooks of the outcome. The library's own errors reach the caller as `E::from`.
    pub(crate) fn finish<T, E: From<Error>>(mut self, result: Result<T, E>) -> Result<T, E> {
        self.stage = Stage::Ending;
        if self.core.depth > 0 {
            // A nested transaction unwound and the outer closure caught the panic.
            self.core.doomed.get_or_insert(AbortCause::NestedPanicked);
        }
        let doomed = self.core.doomed.take();
        // Which hooks the outcome runs: the commit's, the abort's, or (outcome unknown) none.
        // The caller's code (`E::from`, the value's drop) runs only once the commit or abort is
        // done: should it panic, the pool is left as that outcome left it.
        let (result, commit_hooks, abort_hooks) = match result {
            Ok(value) => match doomed {
                None => {
                    let committed = self.core.commit();
                    self.stage = Stage::Ended;
                    match committed {
                        Ok(()) => (Ok(value), true, false),
                        // The write-back failed after the commit record was written: whether
                        // the transaction survives is unknown, so neither set of hooks may
                        // claim an outcome.
                        Err(e @ Error::CommitOutcomeUnknown { .. }) => {
                            (Err(E::from(e)), false, false)
                        }
                        // The commit record could not be written: the transaction was rolled
                        // back.
                        Err(e) => (Err(E::from(e)), false, true),
                    }
                }
                Some(cause) => {
                    self.core.abort();
                    self.stage = Stage::Ended;
                    drop(value);
                    (Err(E::from(Error::Aborted { cause })), false, true)
                }
            },
            Err(e) => {
                self.core.abort();
                self.stage = Stage::Ended;
                (Err(e), false, true)
            }
        };
        let Some(hooks) = self.hooks.take() else {
            // Dropped on return, releasing the pool.
            return result;
        };
        drop(self);
        if commit_hooks {
            run(hooks.on_commit);
        } else if abort_hooks {
            run(hooks.on_abort);
        }
        result
    }

    fn root_offset(&self) -> u64 {
        self.core.shared.media.geometry.root_offset
    }

    /// The root object.
    pub fn root(&self) -> &R {
        // SAFETY: the root area is in bounds and aligned for R (checked at open); `R: Persistent`
        // accepts any bytes; `&self` borrows the transaction, so nothing writes while it lives.
        unsafe {
            &*(self
                .core
                .read_ptr(self.root_offset(), size_u64::<R>(), align_u64::<R>())
                as *const R)
        }
    }

    /// A write handle to the root: `tx.root_mut().set_count(5)?` for derived types.
    pub fn root_mut(&mut self) -> R::Mut<'_>
    where
        R: Edit,
    {
        let offset = self.root_offset();
        // SAFETY: the root area is in bounds and aligned for R.
        unsafe { PMut::<R>::new(&mut self.core, offset) }.into_handle()
    }

    /// Checks `ptr` for a `count`-element object of `T` with `fingerprint`, counting objects
    /// allocated by this transaction (not yet in the pool's metadata).
    fn resolve<T: Persistent>(&self, offset: u64, count: u64, fingerprint: u64) -> Result<u64> {
        if let Some((len, fp)) = self.core.fresh_object(offset) {
            let need = (core::mem::size_of::<T>() as u64).checked_mul(count);
            if fp == fingerprint
                && need.is_some_and(|n| n <= len)
                && offset % core::mem::align_of::<T>() as u64 == 0
            {
                return Ok(offset);
            }
        }
        resolve::<T>(self.core.shared.heap.meta(), offset, count, fingerprint)
    }

    /// The object `ptr` points at, checked for bounds, alignment and type.
    pub fn get<T: Persistent>(&self, ptr: PPtr<T>) -> Result<&T> {
        let offset = self.resolve::<T>(ptr.offset(), 1, T::FINGERPRINT)?;
        let at = self
            .core
            .read_ptr(offset, size_u64::<T>(), align_u64::<T>());
        // SAFETY: `resolve` checked bounds, alignment and type, and `read_ptr` keeps them (the
        // pool's bytes or this transaction's aligned shadow of them); `&self` keeps writes out.
        Ok(unsafe { &*(at as *const T) })
    }

    /// The object `ptr` points at, mutably, as the transaction sees it (the whole object joins its
    /// write set: one redo entry at commit).
    pub fn get_mut<T: Persistent>(&mut self, ptr: PPtr<T>) -> Result<&mut T> {
        let offset = self.resolve::<T>(ptr.offset(), 1, T::FINGERPRINT)?;
        // SAFETY: checked by `resolve`.
        unsafe { PMut::<T>::new(&mut self.core, offset) }.get_mut()
    }

    /// Several distinct objects mutably at once.
    ///
    /// Fails with [`Error::InvalidPointer`] if two of the pointers are equal (two `&mut` to one
    /// object would alias).
    pub fn get_mut_many<T: Persistent, const N: usize>(
        &mut self,
        ptrs: [PPtr<T>; N],
    ) -> Result<[&mut T; N]> {
        let size = core::mem::size_of::<T>() as u64;
        let mut offsets = [0u64; N];
        for (i, p) in ptrs.iter().enumerate() {
            offsets[i] = self.resolve::<T>(p.offset(), 1, T::FINGERPRINT)?;
            if offsets[..i].contains(&offsets[i]) {
                return Err(Error::InvalidPointer {
                    offset: offsets[i],
                    reason: PointerRejection::Duplicate,
                });
            }
        }
        let align = core::mem::align_of::<T>() as u64;
        let ranges: Vec<(u64, u64, u64)> = offsets.iter().map(|&o| (o, size, align)).collect();
        self.core.prepare_writes(&ranges)?;
        let mut at = [core::ptr::null_mut(); N];
        for (a, &o) in at.iter_mut().zip(&offsets) {
            *a = self.core.write_ptr(o, size, align)?;
        }
        // SAFETY: each offset was checked for bounds, alignment and type; they are distinct object
        // starts, and objects do not overlap, so neither do their shadows (prepared together,
        // so none moved while the others were asked); the references borrow `self` mutably, so
        // nothing else touches the pool or the write set while they live.
        Ok(at.map(|p| unsafe { &mut *(p as *mut T) }))
    }

    /// A write handle to the object `ptr` points at, with a setter per field for derived types.
    pub fn edit<T: Edit>(&mut self, ptr: PPtr<T>) -> Result<T::Mut<'_>> {
        let offset = self.resolve::<T>(ptr.offset(), 1, T::FINGERPRINT)?;
        // SAFETY: checked by `resolve`.
        Ok(unsafe { PMut::<T>::new(&mut self.core, offset) }.into_handle())
    }

    /// Replaces the whole object `ptr` points at.
    pub fn write<T: Persistent>(&mut self, ptr: PPtr<T>, value: T) -> Result<()> {
        let offset = self.resolve::<T>(ptr.offset(), 1, T::FINGERPRINT)?;
        self.core.write(offset, bytes_of(&value))
    }

    /// Replaces the object `ptr` points at with `value` and element `index` of `slice` with
    /// `element`: two writes in one call.
    /// For a container whose operation changes its metadata and one slot of its table together.
    ///
    /// ```
    /// # use pmem_core::{Persistent, Pool, PPtr, PSlice};
    /// #[derive(Persistent)]
    /// #[repr(C)]
    /// struct Root { count: PPtr<u64>, slots: PSlice<u64> }
    ///
    /// let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
    /// pool.transaction(|tx| {
    ///     let count = tx.alloc(0u64)?;
    ///     let slots = tx.alloc_slice(&[0u64; 4])?;
    ///     tx.root_mut().set_count(count)?;
    ///     tx.root_mut().set_slots(slots)
    /// })?;
    /// let (count, slots) = pool.read(|r| (r.root().count, r.root().slots))?;
    /// pool.transaction(|tx| tx.write_with_element(count, 1, slots, 2, 42))?;
    /// pool.read(|r| {
    ///     assert_eq!(*r.get(count).unwrap(), 1);
    ///     assert_eq!(r.get_slice(slots).unwrap(), &[0, 0, 42, 0]);
    /// })?;
    /// # Ok::<(), pmem_core::Error>(())
    /// ```
    ///
    /// # Panics
    /// If `index >= slice.len()`, like slice indexing.
    pub fn write_with_element<T: Persistent, E: Persistent>(
        &mut self,
        ptr: PPtr<T>,
        value: T,
        slice: PSlice<E>,
        index: u64,
        element: E,
    ) -> Result<()> {
        assert!(
            index < slice.len(),
            "index {index} out of bounds for a slice of length {}",
            slice.len()
        );
        let object = self.resolve::<T>(ptr.offset(), 1, T::FINGERPRINT)?;
        let base = self.resolve::<E>(slice.offset(), slice.len(), slice_fingerprint::<E>())?;
        let size = core::mem::size_of::<E>() as u64;
        // No overflow: the element lies inside the slice, which `resolve` found inside the pool.
        let at = base + index * size;
        self.core.write(object, bytes_of(&value))?;
        self.core.write(at, bytes_of(&element))
    }

    /// The elements of `slice`.
    pub fn get_slice<T: Persistent>(&self, slice: PSlice<T>) -> Result<&[T]> {
        if slice.is_null() && slice.is_empty() {
            return Ok(&[]);
        }
        let offset = self.resolve::<T>(slice.offset(), slice.len(), slice_fingerprint::<T>())?;
        let bytes = core::mem::size_of::<T>() as u64 * slice.len();
        let at = self.core.read_ptr(offset, bytes, align_u64::<T>());
        // SAFETY: `resolve` checked `len` elements fit, and `read_ptr` keeps that and the
        // alignment; `&self` keeps writes out.
        Ok(unsafe { core::slice::from_raw_parts(at as *const T, slice.len() as usize) })
    }

    /// The elements of `slice`, mutably (all of them join the write set).
    pub fn get_slice_mut<T: Persistent>(&mut self, slice: PSlice<T>) -> Result<&mut [T]> {
        if slice.is_null() && slice.is_empty() {
            return Ok(&mut []);
        }
        let offset = self.resolve::<T>(slice.offset(), slice.len(), slice_fingerprint::<T>())?;
        let bytes = core::mem::size_of::<T>() as u64 * slice.len();
        let at = self.core.write_ptr(offset, bytes, align_u64::<T>())?;
        // SAFETY: as in `get_slice`, with `&mut self` making the access exclusive.
        Ok(unsafe { core::slice::from_raw_parts_mut(at as *mut T, slice.len() as usize) })
    }

    /// A write handle to the elements of `slice`, to write single elements (each joining the
    /// write set alone); [`get_slice_mut`](Self::get_slice_mut) takes them all at once instead.
    pub fn edit_slice<T: Persistent>(&mut self, slice: PSlice<T>) -> Result<SliceMut<'_, T>> {
        if slice.is_null() && slice.is_empty() {
            // SAFETY: no element is ever reached through an empty handle.
            return Ok(unsafe { SliceMut::new(&mut self.core, 0, 0) });
        }
        let offset = self.resolve::<T>(slice.offset(), slice.len(), slice_fingerprint::<T>())?;
        // SAFETY: `resolve` checked that `len` aligned elements fit in the object.
        Ok(unsafe { SliceMut::new(&mut self.core, offset, slice.len()) })
    }

    /// Where the pool lives, for error messages.
    pub fn location(&self) -> &crate::Location {
        &self.core.shared.location
    }

    /// Allocates a `T` holding `value`. It exists only if the transaction commits.
    pub fn alloc<T: Persistent>(&mut self, value: T) -> Result<PPtr<T>> {
        let offset = self.core.alloc_raw(
            size_of_val(&value) as u64,
            align_of::<T>() as u64,
            T::FINGERPRINT,
        )?;
        self.core.init(offset, &value);
        Ok(PPtr::from_offset(offset))
    }

    /// Allocates a zero-filled `T` in place (never on the stack, so `T` may be large).
    pub fn alloc_zeroed<T: Persistent>(&mut self) -> Result<PPtr<T>> {
        let size = core::mem::size_of::<T>() as u64;
        let offset = self
            .core
            .alloc_raw(size, align_of::<T>() as u64, T::FINGERPRINT)?;
        self.core.shared.media.region.zero(offset, size);
        Ok(PPtr::from_offset(offset))
    }

    /// Allocates a slice holding a copy of `values`.
    /// An empty `values` allocates nothing and returns the null slice.
    pub fn alloc_slice<T: Persistent + Copy>(&mut self, values: &[T]) -> Result<PSlice<T>> {
        if values.is_empty() {
            return Ok(PSlice::null());
        }
        let bytes = core::mem::size_of_val(values) as u64;
        let offset =
            self.core
                .alloc_raw(bytes, align_of::<T>() as u64, slice_fingerprint::<T>())?;
        // SAFETY: `T: Persistent` has no padding, so the slice's bytes are all initialised.
        let raw =
            unsafe { core::slice::from_raw_parts(values.as_ptr() as *const u8, bytes as usize) };
        self.core.shared.media.region.write(offset, raw);
        Ok(PSlice::from_raw_parts(offset, values.len() as u64))
    }

    /// Allocates a zero-filled slice of `len` elements.
    /// A zero `len` allocates nothing and returns the null slice.
    pub fn alloc_slice_zeroed<T: Persistent>(&mut self, len: u64) -> Result<PSlice<T>> {
        if len == 0 {
            return Ok(PSlice::null());
        }
        let element_size = core::mem::size_of::<T>() as u64;
        let bytes = element_size.checked_mul(len).ok_or_else(|| {
            Error::invalid_argument(
                &self.core.shared.location,
                InvalidArgument::SliceTooLarge { len, element_size },
            )
        })?;
        let offset =
            self.core
                .alloc_raw(bytes, align_of::<T>() as u64, slice_fingerprint::<T>())?;
        self.core.shared.media.region.zero(offset, bytes);
        Ok(PSlice::from_raw_parts(offset, len))
    }

    /// Frees the object `ptr` points at when the transaction commits.
    pub fn free<T: Persistent>(&mut self, ptr: PPtr<T>) -> Result<()> {
        self.free_object::<T>(ptr.offset(), 1, T::FINGERPRINT)
    }

    /// Frees the slice when the transaction commits.
    /// Freeing the null empty slice does nothing.
    pub fn free_slice<T: Persistent>(&mut self, slice: PSlice<T>) -> Result<()> {
        if slice.is_null() && slice.is_empty() {
            return Ok(());
        }
        self.free_object::<T>(slice.offset(), slice.len(), slice_fingerprint::<T>())
    }

    fn free_object<T: Persistent>(
        &mut self,
        offset: u64,
        count: u64,
        fingerprint: u64,
    ) -> Result<()> {
        // An object of this transaction is checked against its reservation; any other against the
        // pool's metadata.
        let (object, fresh) = match self.core.fresh_reservation(offset) {
            Some(object) => {
                self.resolve::<T>(offset, count, fingerprint)?;
                (object, true)
            }
            None => (
                locate::<T>(self.core.shared.heap.meta(), offset, count, fingerprint)?,
                false,
            ),
        };
        self.core.free(offset, object, fresh)
    }

    /// Runs `f` as part of this transaction (nesting flattens) and returns what `f` returns: its
    /// error is handed back as it is, of `f`'s own type, for the caller to pass on (`?`) or
    /// handle. If `f` fails, the whole transaction will abort, even if the caller goes on and
    /// returns `Ok` (the transaction then fails with [`Error::Aborted`] and
    /// [`AbortCause::NestedFailed`]).
    ///
    /// As for [`Pool::transaction`](crate::Pool::transaction), a closure whose only errors come
    /// from `?` needs its error type named.
    pub fn transaction<T, E>(
        &mut self,
        f: impl FnOnce(&mut Tx<'p, R>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.core.depth += 1;
        let result = f(self);
        self.core.depth -= 1;
        if result.is_err() {
            self.core.doomed.get_or_insert(AbortCause::NestedFailed);
        }
        result
    }

    /// Marks the transaction for abort, and returns the error to return from the closure:
    /// `return Err(tx.abort())`. The transaction then rolls back whatever the closure returns,
    /// with [`Error::Aborted`] and [`AbortCause::Requested`] if it returns `Ok`.
    ///
    /// To say why, return an error of your own instead: any `Err` aborts the transaction and
    /// comes back from [`Pool::transaction`](crate::Pool::transaction) as it is.
    pub fn abort(&mut self) -> Error {
        self.core.doomed.get_or_insert(AbortCause::Requested);
        Error::Aborted {
            cause: AbortCause::Requested,
        }
    }

    /// Runs `f` after the transaction commits durably, once the pool is released: the hook may
    /// read the pool or start a transaction of its own. Not run if the commit's write-back fails
    /// ([`Error::CommitOutcomeUnknown`]).
    pub fn on_commit(&mut self, f: impl FnOnce() + 'p) {
        self.hooks
            .get_or_insert_default()
            .on_commit
            .push(Box::new(f));
    }

    /// Runs `f` after the transaction aborts and its changes are rolled back, once the pool is
    /// released (as for [`on_commit`](Self::on_commit)), also when the closure panicked.
    pub fn on_abort(&mut self, f: impl FnOnce() + 'p) {
        self.hooks
            .get_or_insert_default()
            .on_abort
            .push(Box::new(f));
    }
}

/// Runs hooks in the order they were added.
#[cold]
fn run(hooks: Vec<Hook<'_>>) {
    for hook in hooks {
        hook();
    }
}

impl<R> Drop for Tx<'_, R> {
    #[inline]
    fn drop(&mut self) {
        /// Releases the pool however `drop` ends.
        struct Release<'a, 'p>(&'a mut ManuallyDrop<WriteGuard<'p>>);
        impl Drop for Release<'_, '_> {
            #[inline]
            fn drop(&mut self) {
                // SAFETY: `Tx::drop` makes one `Release`, its only release of `core`, and does
                // not use `core` after it.
                unsafe { ManuallyDrop::drop(self.0) };
            }
        }
        let core = Release(&mut self.core);
        match self.stage {
            // The closure panicked (`finish` runs whenever it returns, so `Open` is seen here
            // only while it unwinds): roll back before the panic goes on. Should the rollback
            // itself panic, that is a panic during unwinding and the process aborts; the lock
            // is released in any case.
            Stage::Open => core.0.abort(),
            // A panic inside commit or abort: what memory and media hold is unknown, so no
            // further transaction may build on it; the next open's recovery decides.
            Stage::Ending => core.0.poisoned = true,
            Stage::Ended => {}
        }
        drop(core);
        if self.stage == Stage::Open {
            if let Some(hooks) = self.hooks.take() {
                run(hooks.on_abort);
            }
        }
    }
}

impl<R> std::fmt::Debug for Tx<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx")
            .field("location", &self.core.shared.location)
            .finish_non_exhaustive()
    }
}

impl TxCore {
    /// For an object allocated by this transaction, where its reservation is.
    pub(crate) fn fresh_reservation(&self, offset: u64) -> Option<ObjectRef> {
        let (len, fingerprint) = self.fresh_object(offset)?;
        let reservation = self.reservation_at(offset)?;
        Some(match reservation {
            Reservation::Span { first, count } => ObjectRef::Span {
                first,
                count,
                fingerprint,
                size: len,
            },
            Reservation::Slot {
                head, slot, class, ..
            } => ObjectRef::Slot {
                first: head as u64,
                class,
                slot: slot as u64,
                fingerprint,
                size: crate::layout::heap::CLASSES[class as usize].unit as u64,
            },
            Reservation::ReleasedRun { .. } => return None,
        })
    }
}

impl<R: Persistent> crate::read_trait::PoolRead for Tx<'_, R> {
    #[inline]
    fn get<T: Persistent>(&self, ptr: PPtr<T>) -> Result<&T> {
        Tx::get(self, ptr)
    }
    #[inline]
    fn get_slice<T: Persistent>(&self, slice: PSlice<T>) -> Result<&[T]> {
        Tx::get_slice(self, slice)
    }
}
