//! Shared read access: [`Reader`] and [`ReadGuard`].

use std::marker::PhantomData;
use std::sync::RwLockReadGuard;

use super::resolve::{resolve, slice_fingerprint};
use super::{ReadingMark, Shared};
use crate::error::Result;
use crate::heap::Extent;
use crate::layout::heap::{CHUNK_SIZE, CLASSES};
use crate::persistent::Persistent;
use crate::ptr::{PPtr, PSlice};
use crate::tx::TxCore;

/// Read access to a pool: the root, and objects through checked pointers. References it hands
/// out live as long as the reader, during which no transaction can write.
pub struct Reader<'p, R> {
    shared: &'p Shared,
    _root: PhantomData<fn() -> R>,
}

impl<'p, R: Persistent> Reader<'p, R> {
    pub(crate) fn new(shared: &'p Shared) -> Self {
        Reader {
            shared,
            _root: PhantomData,
        }
    }

    /// The root object.
    pub fn root(&self) -> &R {
        let g = &self.shared.media.geometry;
        let p = self
            .shared
            .media
            .region
            .ptr(g.root_offset, core::mem::size_of::<R>() as u64);
        // SAFETY: the root area is in bounds (checked), 4096-aligned (geometry) which covers R's
        // alignment (checked at open), `R: Persistent` accepts any bytes, and the read lock keeps
        // writers out while `&self` lives.
        unsafe { &*(p as *const R) }
    }

    /// The object `ptr` points at, after checking it is in the heap, aligned, the start of an
    /// object, and of type `T`.
    pub fn get<T: Persistent>(&self, ptr: PPtr<T>) -> Result<&T> {
        let offset = resolve::<T>(self.shared.heap.meta(), ptr.offset(), 1, T::FINGERPRINT)?;
        let p = self
            .shared
            .media
            .region
            .ptr(offset, core::mem::size_of::<T>() as u64);
        // SAFETY: `resolve` checked bounds, alignment and type; `T: Persistent` accepts any bytes;
        // the read lock keeps writers out while `&self` lives.
        Ok(unsafe { &*(p as *const T) })
    }

    /// The elements `slice` points at, checked like [`get`](Reader::get).
    /// The null empty slice reads as `&[]`.
    pub fn get_slice<T: Persistent>(&self, slice: PSlice<T>) -> Result<&[T]> {
        if slice.is_null() && slice.is_empty() {
            return Ok(&[]);
        }
        let offset = resolve::<T>(
            self.shared.heap.meta(),
            slice.offset(),
            slice.len(),
            slice_fingerprint::<T>(),
        )?;
        let p = self
            .shared
            .media
            .region
            .ptr(offset, core::mem::size_of::<T>() as u64 * slice.len());
        // SAFETY: as in `get`, for `len` elements (`resolve` checked they fit in the object).
        Ok(unsafe { core::slice::from_raw_parts(p as *const T, slice.len() as usize) })
    }

    /// Where the pool lives, for error messages.
    pub fn location(&self) -> &crate::Location {
        &self.shared.location
    }

    /// Every live object of type `T`, in address order. Time is proportional to the heap's
    /// metadata plus the objects returned.
    ///
    /// Every pointer it yields is one [`get`](Self::get) accepts: an extent that claims type `T`
    /// but whose objects are too small to hold one (which only a damaged pool file has) is
    /// skipped.
    pub fn objects<T: Persistent>(&self) -> Objects<'_, T> {
        let meta = *self.shared.heap.meta();
        let mut extents = Vec::new();
        let needed = core::mem::size_of::<T>() as u64;
        // The heap was validated at open and only the writer changes it, so the walk succeeds;
        // should it not, iteration simply stops early.
        let _ = meta.walk(|e| match e {
            Extent::Run {
                fingerprint, class, ..
            } if fingerprint == T::FINGERPRINT && CLASSES[class as usize].unit as u64 >= needed => {
                extents.push(e)
            }
            Extent::Span {
                fingerprint, count, ..
            } if fingerprint == T::FINGERPRINT && count * CHUNK_SIZE >= needed => extents.push(e),
            _ => {}
        });
        Objects {
            shared: self.shared,
            extents,
            next_extent: 0,
            pending: Vec::new(),
            _t: PhantomData,
        }
    }
}

/// Iterator over the live objects of one type; see [`Reader::objects`].
pub struct Objects<'a, T> {
    shared: &'a Shared,
    extents: Vec<Extent>,
    next_extent: usize,
    /// Offsets found in the current run, in reverse order.
    pending: Vec<u64>,
    _t: PhantomData<fn() -> T>,
}

impl<T: Persistent> Iterator for Objects<'_, T> {
    type Item = PPtr<T>;

    fn next(&mut self) -> Option<PPtr<T>> {
        loop {
            if let Some(offset) = self.pending.pop() {
                return Some(PPtr::from_offset(offset));
            }
            let extent = *self.extents.get(self.next_extent)?;
            self.next_extent += 1;
            let meta = self.shared.heap.meta();
            meta.for_each_object_in(extent, |offset, _| self.pending.push(offset));
            self.pending.reverse();
        }
    }
}

impl<T> std::fmt::Debug for Objects<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Objects")
            .field("type", &core::any::type_name::<T>())
            .finish_non_exhaustive()
    }
}

impl<R> std::fmt::Debug for Reader<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("location", &self.shared.location)
            .finish_non_exhaustive()
    }
}

/// Shared read access to a pool until dropped; dereferences to a [`Reader`].
///
/// Guards of one thread on one pool share one hold on the pool's lock, taken by the first and
/// released by the last (see [`Pool::read`](crate::Pool::read)).
pub struct ReadGuard<'p, R> {
    reader: Reader<'p, R>,
    /// The lock, if this guard took it (the thread's first guard on the pool).
    lock: Option<RwLockReadGuard<'p, TxCore>>,
    mark: ReadingMark,
}

impl<'p, R> ReadGuard<'p, R> {
    pub(crate) fn new(
        reader: Reader<'p, R>,
        lock: Option<RwLockReadGuard<'p, TxCore>>,
        mark: ReadingMark,
    ) -> Self {
        ReadGuard { reader, lock, mark }
    }
}

impl<R> Drop for ReadGuard<'_, R> {
    #[inline]
    fn drop(&mut self) {
        drop(self.mark.release(self.lock.take()));
    }
}

impl<'p, R> std::ops::Deref for ReadGuard<'p, R> {
    type Target = Reader<'p, R>;
    fn deref(&self) -> &Reader<'p, R> {
        &self.reader
    }
}

impl<R> std::fmt::Debug for ReadGuard<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.reader.fmt(f)
    }
}
