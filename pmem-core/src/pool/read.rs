//! Shared read access: [`Reader`] and [`ReadGuard`].

use std::cell::Cell;
use std::marker::PhantomData;
use std::ptr::{self, NonNull};
use std::sync::RwLockReadGuard;

use crate::error::Result;
use crate::fingerprint::slice_fingerprint;
use crate::heap::resolve::resolve;
use crate::heap::{Extent, HeapMeta};
use crate::layout::heap::{CHUNK_SIZE, CLASSES};
use crate::persistent::Persistent;
use crate::ptr::{PPtr, PSlice};
use crate::shared::Shared;
use crate::tx::TxCore;

/// Read access to a pool: the root, and objects through checked pointers. References it hands
/// out live as long as the reader, during which no transaction can write.
pub struct Reader<'p, R> {
    shared: &'p Shared,
    /// A copy of the heap's metadata view, held in the reader itself so that a walk through
    /// `&Reader` keeps its table offsets in registers from hop to hop: behind the `Arc` they
    /// were loaded again after every call the compiler could not see into.
    meta: HeapMeta,
    _root: PhantomData<fn() -> R>,
}

impl<'p, R: Persistent> Reader<'p, R> {
    pub(crate) fn new(shared: &'p Shared) -> Self {
        Reader {
            shared,
            meta: *shared.heap.meta(),
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
    /// object, allocated, and of type `T`.
    ///
    /// Cost: two reads of dense heap metadata (the chunk's 16-byte table entry and the slot's
    /// bitmap word) and about forty instructions, with no lock and no call; a pointer into a
    /// later chunk of a multi-chunk run or to a large object reads one more entry.
    // Always inlined: it is the hop of every walk through the pool, and out of line it cost a
    // call, six saved registers and its result through memory, as much as the checks.
    #[inline(always)]
    pub fn get<T: Persistent>(&self, ptr: PPtr<T>) -> Result<&T> {
        let offset = resolve::<T>(&self.meta, ptr.offset(), 1, T::FINGERPRINT)?;
        let p = self.meta.region.base().wrapping_add(offset as usize);
        // SAFETY: `resolve` checked that a `T` at `offset` lies in the heap's region (this one),
        // aligned, and is an object of type `T`; `T: Persistent` accepts any bytes; the read
        // lock keeps writers out while `&self` lives.
        Ok(unsafe { &*(p as *const T) })
    }

    /// The elements `slice` points at, checked like [`get`](Reader::get).
    /// The null empty slice reads as `&[]`.
    pub fn get_slice<T: Persistent>(&self, slice: PSlice<T>) -> Result<&[T]> {
        if slice.is_null() && slice.is_empty() {
            return Ok(&[]);
        }
        let offset = resolve::<T>(
            &self.meta,
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

impl<R: Persistent> super::PoolRead for Reader<'_, R> {
    #[inline]
    fn get<T: Persistent>(&self, ptr: PPtr<T>) -> Result<&T> {
        Reader::get(self, ptr)
    }
    #[inline]
    fn get_slice<T: Persistent>(&self, slice: PSlice<T>) -> Result<&[T]> {
        Reader::get_slice(self, slice)
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
    hold: HoldRef,
}

impl<'p, R> ReadGuard<'p, R> {
    /// A guard on the pool whose id is `pool` and whose shared state is `reader`: it joins this
    /// thread's hold on that pool, or, if the thread has none, makes one with the lock `lock`
    /// takes. `'p` must borrow that very pool, and `lock` take that pool's lock (the hold's
    /// invariants rest on it).
    #[inline]
    pub(crate) fn new(
        reader: Reader<'p, R>,
        pool: u64,
        lock: impl FnOnce() -> RwLockReadGuard<'p, TxCore>,
    ) -> Self {
        let hold = match Hold::join(pool) {
            Some(hold) => hold,
            None => Hold::first(pool, lock()),
        };
        ReadGuard {
            reader,
            hold: HoldRef(hold),
        }
    }
}

impl<R> Drop for ReadGuard<'_, R> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: `self.hold` is this guard's share of a live hold of this thread (`HoldRef`),
        // given up exactly once, here.
        unsafe { Hold::leave(self.hold.0) };
    }
}

thread_local! {
    /// The head of this thread's list of holds, one per pool it holds read guards on. A `const`
    /// cell of a pointer has no destructor, so it is never destroyed: the list works the same in
    /// other thread-locals' destructors, and reading it costs one load.
    static HOLDS: Cell<*mut Hold> = const { Cell::new(ptr::null_mut()) };
}

/// Whether this thread holds a read guard on pool `pool`.
#[inline(always)]
pub(crate) fn holds(pool: u64) -> bool {
    !HOLDS.with(Cell::get).is_null() && Hold::find(pool).is_some()
}

/// One thread's hold on one pool's read lock, shared by all that thread's guards on that pool.
///
/// The lock is taken once per thread, by the first guard: a second `read` on a thread that
/// holds one already must not call the lock again, because a `RwLock` queues new readers behind
/// a waiting writer, which waits for the first guard: a deadlock. The last guard to go, in
/// whatever order they go, releases the lock and frees the hold.
///
/// Invariants, relied on by the `unsafe` code below:
/// - a hold is a leaked `Box`, linked in the list of the thread that made it (from `HOLDS`)
///   until freed, and only that thread touches it: through that list, or through the guards
///   that point at it, which are not `Send` and use it only when dropped;
/// - `guards` counts the live guards pointing at it, all on the pool whose id is `pool`; ids are
///   never reused, so they borrow that very pool, and while one lives so does the lock;
/// - it is freed, releasing `lock`, exactly when `guards` drops to 0. If guards are leaked it is
///   never freed: the lock stays taken and the hold stays listed, matching no later pool.
struct Hold {
    pool: u64,
    guards: usize,
    /// `'static` stands for the borrow of the pool that the guards keep (see above).
    #[allow(dead_code, reason = "held to be released when the hold is freed")]
    lock: RwLockReadGuard<'static, TxCore>,
    next: *mut Hold,
}

impl Hold {
    /// This thread's hold on `pool`, if it has one.
    #[inline(never)]
    fn find(pool: u64) -> Option<NonNull<Hold>> {
        let mut at = HOLDS.with(Cell::get);
        while let Some(hold) = NonNull::new(at) {
            // SAFETY: a listed hold is alive and only this thread touches it (invariants); no
            // reference to it is live here.
            let h = unsafe { hold.as_ref() };
            if h.pool == pool {
                return Some(hold);
            }
            at = h.next;
        }
        None
    }

    /// Adds a guard to this thread's hold on `pool`, if it has one.
    #[inline]
    fn join(pool: u64) -> Option<NonNull<Hold>> {
        if HOLDS.with(Cell::get).is_null() {
            return None;
        }
        let mut hold = Self::find(pool)?;
        // SAFETY: as in `find`; the count now includes the guard about to point at it.
        unsafe { hold.as_mut().guards += 1 };
        Some(hold)
    }

    /// Makes this thread's hold on `pool`, for its first guard, which took `lock`.
    #[inline]
    fn first<'p>(pool: u64, lock: RwLockReadGuard<'p, TxCore>) -> NonNull<Hold> {
        // SAFETY: only the lifetime changes. The guard is released when the hold is freed, by
        // the last guard on the pool, which still borrows the pool for `'p` (invariants).
        let lock = unsafe {
            std::mem::transmute::<RwLockReadGuard<'p, TxCore>, RwLockReadGuard<'static, TxCore>>(
                lock,
            )
        };
        let mut hold = Box::new(Hold {
            pool,
            guards: 1,
            lock,
            next: ptr::null_mut(),
        });
        // Read the head after allocating: nothing can run between this and linking.
        hold.next = HOLDS.with(Cell::get);
        let hold = NonNull::from(Box::leak(hold));
        HOLDS.with(|head| head.set(hold.as_ptr()));
        hold
    }

    /// Removes one guard from `hold`; the last one unlinks and frees it, releasing the lock.
    ///
    /// # Safety
    /// `hold` is a live hold of this thread that the caller's guard counts in, and the caller
    /// gives its share up (does not use `hold` again).
    #[inline]
    unsafe fn leave(hold: NonNull<Hold>) {
        let at = hold.as_ptr();
        // SAFETY: live and touched only by this thread (caller; invariants), no reference live.
        let (guards, next) = unsafe {
            (*at).guards -= 1;
            ((*at).guards, (*at).next)
        };
        if guards > 0 {
            return;
        }
        HOLDS.with(|head| {
            if head.get() == at {
                head.set(next);
                return;
            }
            let mut prev = head.get();
            // SAFETY: listed holds are alive and touched only by this thread (invariants), and
            // no reference to one is live; the walk stops at the end of the list.
            unsafe {
                while !prev.is_null() {
                    if (*prev).next == at {
                        (*prev).next = next;
                        return;
                    }
                    prev = (*prev).next;
                }
            }
            debug_assert!(false, "a read guard's hold is not in its thread's list");
        });
        // SAFETY: the last guard is gone and the hold is unlinked: nothing points at it any
        // more. It was leaked from a `Box` in `first`. Dropping it releases the lock, which is
        // alive: the caller's guard still borrows the pool.
        drop(unsafe { Box::from_raw(at) });
    }
}

/// A guard's share of its thread's hold on a pool. Not `Send` (a raw pointer): the hold belongs
/// to the thread that made it.
struct HoldRef(NonNull<Hold>);

// SAFETY: a shared `&ReadGuard` (another thread reading through it) never touches the hold; only
// dropping the guard does, which takes it by value, on its own thread since it is not `Send`.
unsafe impl Sync for HoldRef {}

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
