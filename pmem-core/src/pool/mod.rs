//! [`Pool<R>`]: a persistent pool whose root object is an `R`.

mod open;
mod read;

use std::marker::PhantomData;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockWriteGuard, TryLockError};

pub use crate::read_trait::PoolRead;
pub use crate::shared::PoolInfo;
pub use read::{Objects, ReadGuard, Reader};

use crate::error::{Error, Location, Result};
use crate::heap::HeapStats;
use crate::persist::{FaultPlan, FlushMode, FlushStats, LogWrites, PoolImage};
use crate::persistent::Persistent;
use crate::ptr::PPtr;
use crate::shared::Shared;
use crate::tx::{Tx, TxCore, WriteGuard};

/// Heap and persistence-domain statistics of an open pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolStats {
    /// Heap usage.
    pub heap: HeapStats,
    /// Flushes, fences and msyncs since the pool was opened.
    pub flush: FlushStats,
}

/// How to create or open a pool. Obtained from [`Pool::builder`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    pub layout: Option<String>,
    pub mode: Option<FlushMode>,
    pub force_pmem: bool,
    /// Open without knowing the root type (tools): no type check, no type table update. On
    /// create: leave the root unclaimed, for the first typed open to claim.
    pub untyped: bool,
    /// On an untyped create: bytes of room for the root.
    pub root_area: Option<u64>,
    /// Durability points to fail, for tests of the failure paths.
    pub faults: Option<FaultPlan>,
    /// How to write log lines, instead of what the CPU's strategy chooses.
    pub log_writes: Option<LogWrites>,
    /// Reserve the whole file's disk space at create and open, not as the heap grows.
    pub reserve_all: bool,
}

/// Options for creating or opening a [`Pool`].
///
/// ```no_run
/// use pmem_core::{Persistent, Pool};
/// #[derive(Persistent)]
/// #[repr(C)]
/// struct Root { count: u64 }
/// // Treat a tmpfs file as persistent memory: flush with clwb instead of msync.
/// let pool = Pool::<Root>::builder().layout("counter").force_pmem(true).open_or_create("/dev/shm/counter.pool", 8 << 20)?;
/// # Ok::<(), pmem_core::Error>(())
/// ```
#[derive(Debug)]
pub struct PoolBuilder<R> {
    options: Options,
    _root: PhantomData<fn() -> R>,
}

impl<R: Persistent> PoolBuilder<R> {
    /// Requires (on open) or records (on create) this layout name, at most 63 bytes.
    pub fn layout(mut self, name: &str) -> Self {
        self.options.layout = Some(name.to_string());
        self
    }

    /// Flushes with CPU cache-line instructions even if the file is not on a DAX file system
    /// (tmpfs, benchmarks). The environment variable `PMEM_FORCE_PMEM=1` does the same.
    /// Without DAX this is not durable across a power failure, only across a process crash.
    pub fn force_pmem(mut self, on: bool) -> Self {
        self.options.force_pmem = on;
        self
    }

    /// Uses exactly this flush mode (`Msync`, `Clwb`, …) instead of detecting one.
    pub fn flush_mode(mut self, mode: FlushMode) -> Self {
        self.options.mode = Some(mode);
        self
    }

    /// Writes log lines this way instead of the way chosen for this CPU (see [`LogWrites`]).
    /// Only the cache-flush modes and the simulated domain can write non-temporally; in the
    /// other modes this asks for nothing.
    ///
    /// ```
    /// # use pmem_core::{LogWrites, Persistent, Pool};
    /// # #[derive(Persistent)]
    /// # #[repr(C)]
    /// # struct Root { count: u64 }
    /// let pool = Pool::<Root>::builder()
    ///     .log_writes(LogWrites::Flushed)
    ///     .create_simulated(8 << 20)?;
    /// assert_eq!(pool.info().log_writes, LogWrites::Flushed);
    /// # Ok::<(), pmem_core::Error>(())
    /// ```
    pub fn log_writes(mut self, log_writes: LogWrites) -> Self {
        self.options.log_writes = Some(log_writes);
        self
    }

    /// Reserves disk space for the whole pool file when it is created or opened, as
    /// `posix_fallocate` over its full size, instead of as the pool uses it.
    ///
    /// By default a pool file has its full length but is sparse: create reserves the blocks of
    /// the header copies, the log slots, the type table, the root and the chunk table, and the
    /// heap reserves its chunks as the allocator first hands them out (1 MiB at a time at least, doubling up to
    /// 256 MiB), so a pool of 64 MiB holding a counter takes a few hundred KiB of disk. Either
    /// way a full file system is an error from the call that needed the space
    /// ([`Error::Io`] with `ENOSPC`, from the allocation: the transaction aborts and the pool
    /// stays usable), never a `SIGBUS`. Reserving everything up front moves that error to the
    /// create (or the open) instead, and keeps the file's blocks from being scattered by
    /// growth; it is what pools did before they grew. On file systems without fallocate the
    /// file is sparse whatever this says.
    ///
    /// ```
    /// # use pmem_core::{Persistent, Pool};
    /// # #[derive(Persistent)] #[repr(C)] struct Root { count: u64 }
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("full.pool");
    /// use std::os::unix::fs::MetadataExt;
    /// let pool = Pool::<Root>::builder().reserve_all(true).create(&path, 8 << 20)?;
    /// assert!(std::fs::metadata(&path).unwrap().blocks() * 512 >= 8 << 20);
    /// # Ok::<(), pmem_core::Error>(())
    /// ```
    pub fn reserve_all(mut self, on: bool) -> Self {
        self.options.reserve_all = on;
        self
    }

    /// Fails the durability points `plan` names (fences and create's fsyncs), in any flush
    /// mode, from the start of this create or open: for testing what a program does when the
    /// media reports an error. See [`FaultPlan`].
    pub fn fault_plan(mut self, plan: FaultPlan) -> Self {
        self.options.faults = Some(plan);
        self
    }

    /// Creates a new pool file of `size` bytes; fails if the file exists.
    pub fn create(self, path: impl AsRef<Path>, size: u64) -> Result<Pool<R>> {
        open::create_file(path.as_ref(), size, &self.options)
    }

    /// Opens an existing pool file, recovering any interrupted transaction.
    pub fn open(self, path: impl AsRef<Path>) -> Result<Pool<R>> {
        open::open_file(path.as_ref(), &self.options)
    }

    /// Opens the pool file if it exists, else creates it with `size` bytes.
    pub fn open_or_create(self, path: impl AsRef<Path>, size: u64) -> Result<Pool<R>> {
        let path = path.as_ref();
        match open::open_file(path, &self.options) {
            Err(Error::NotFound { .. }) => match open::create_file(path, size, &self.options) {
                // Another process created it between our open and create.
                Err(Error::AlreadyExists { .. }) => open::open_file(path, &self.options),
                other => other,
            },
            other => other,
        }
    }

    /// Creates a pool in memory over the simulated persistence domain, for crash testing.
    pub fn create_simulated(self, size: u64) -> Result<Pool<R>> {
        open::create_image(size, &self.options)
    }

    /// Opens a pool image (such as a crash image) in memory over the simulated persistence
    /// domain, through the same recovery as a file.
    pub fn open_image(self, image: PoolImage) -> Result<Pool<R>> {
        open::open_image(
            image,
            &self.options,
            open::Tracking::Simulated(None),
            Location::Memory,
        )
    }

    /// As [`open_image`](Self::open_image), with `hook` called at every fence, recovery's included.
    pub(crate) fn open_image_with_hook(
        self,
        image: PoolImage,
        hook: crate::persist::sim::FenceHook,
    ) -> Result<Pool<R>> {
        open::open_image(
            image,
            &self.options,
            open::Tracking::Simulated(Some(hook)),
            Location::Memory,
        )
    }

    /// As [`open_image`](Self::open_image), without keeping a persisted image: for images that
    /// are checked and thrown away.
    pub(crate) fn open_image_unchecked(self, image: PoolImage) -> Result<Pool<R>> {
        self.open_image_unchecked_at(image, Location::Memory)
    }

    /// As [`open_image_unchecked`](Self::open_image_unchecked), naming `location` in errors.
    pub(crate) fn open_image_unchecked_at(
        self,
        image: PoolImage,
        location: Location,
    ) -> Result<Pool<R>> {
        open::open_image(image, &self.options, open::Tracking::Untracked, location)
    }

    /// Opens without checking the root type, for tools that do not know it; creates with an
    /// unclaimed root of `root_area` bytes.
    pub(crate) fn untyped(mut self) -> Self {
        self.options.untyped = true;
        self
    }

    /// Room for the root of an untyped create.
    pub(crate) fn root_area(mut self, bytes: u64) -> Self {
        self.options.root_area = Some(bytes);
        self
    }
}

struct PoolInner {
    shared: Arc<Shared>,
    lock: RwLock<TxCore>,
    /// Marker of the thread holding the write lock (0 if none), to refuse re-entry.
    writer: AtomicUsize,
    /// Identifies the pool among the pools a thread reads; see [`next_pool_id`].
    id: u64,
}

/// A persistent memory pool whose root object is an `R`.
///
/// Created zeroed, typed by `R`: reopening checks the stored layout fingerprint of `R`. Readers
/// share the pool ([`read`](Pool::read), [`reader`](Pool::reader)); a
/// [`transaction`](Pool::transaction) has it exclusively and is failure-atomic: after a crash at
/// any instant the pool is as it was before the transaction or after it.
///
/// ```
/// use pmem_core::{Persistent, Pool, PPtr};
///
/// #[derive(Persistent)]
/// #[repr(C)]
/// struct Root { count: u64, head: PPtr<Node> }
///
/// #[derive(Persistent)]
/// #[repr(C)]
/// struct Node { value: u64, next: PPtr<Node> }
///
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("example.pool");
/// let pool = Pool::<Root>::open_or_create(&path, 8 << 20)?;
/// pool.transaction(|tx| {
///     let n = tx.root().count;
///     tx.root_mut().set_count(n + 1)?;
///     let head = tx.root().head;
///     let node = tx.alloc(Node { value: n, next: head })?;
///     tx.root_mut().set_head(node)
/// })?;
/// assert_eq!(pool.read(|r| r.root().count)?, 1);
/// # Ok::<(), pmem_core::Error>(())
/// ```
///
/// # Other programs and the file
///
/// A pool file is mapped shared. Handles that honour the pool's lock (an advisory `flock`)
/// are kept out while it is open: a second open fails with [`Error::PoolInUse`]. A program
/// that ignores the lock is not, and then:
/// - if it writes the file, the pool's memory changes under the references this API handed
///   out, outside any transaction: as for any shared mapping, that is undefined behaviour, and
///   the crash-consistency guarantees no longer hold;
/// - if it truncates the file, the next access to a page past the new end raises `SIGBUS`,
///   which kills the process (a load cannot return an error).
///
/// Linux offers no way to forbid either on a regular file: seals are for `memfd` files only,
/// and a lease only delays another process's open or truncate (while signalling the holder).
/// Keep pool files where only the programs that use them can write them. At open, a file
/// shorter than its header says is refused with [`Error::Truncated`].
pub struct Pool<R> {
    inner: Box<PoolInner>,
    _root: PhantomData<fn() -> R>,
}

thread_local! {
    static THREAD_MARKER: u8 = const { 0 };
}

/// Gives every pool opened in this process an identity that is never reused (addresses are,
/// and an entry left by a leaked guard must not match a later pool).
fn next_pool_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A non-zero value unique to the calling thread while it lives.
#[inline]
fn thread_marker() -> usize {
    THREAD_MARKER.with(|m| m as *const u8 as usize)
}

impl<R: Persistent> Pool<R> {
    fn from_parts(shared: Arc<Shared>, core: TxCore) -> Pool<R> {
        Pool {
            inner: Box::new(PoolInner {
                shared,
                lock: RwLock::new(core),
                writer: AtomicUsize::new(0),
                id: next_pool_id(),
            }),
            _root: PhantomData,
        }
    }

    /// Options for creating or opening a pool.
    pub fn builder() -> PoolBuilder<R> {
        PoolBuilder {
            options: Options::default(),
            _root: PhantomData,
        }
    }

    /// Creates a pool file of `size` bytes with a zeroed root; fails if the file exists.
    ///
    /// The file is built under a hidden temporary name beside `path` (`.NAME.creating.PID.N`),
    /// with its full length but disk space reserved only for what the pool uses (see
    /// [`PoolBuilder::reserve_all`]), and appears under `path` only once it holds a whole pool: the
    /// file is synced before it is linked into place and the directory after, so the pool this
    /// returns survives a power cut under its name. A temporary file that a crashed create left
    /// is removed by the next create of that name.
    pub fn create(path: impl AsRef<Path>, size: u64) -> Result<Pool<R>> {
        Self::builder().create(path, size)
    }

    /// Opens an existing pool file; its root type must be `R`.
    pub fn open(path: impl AsRef<Path>) -> Result<Pool<R>> {
        Self::builder().open(path)
    }

    /// Opens the pool file, or creates it with `size` bytes if there is none.
    pub fn open_or_create(path: impl AsRef<Path>, size: u64) -> Result<Pool<R>> {
        Self::builder().open_or_create(path, size)
    }

    /// Identifies this pool among the pools a thread reads.
    fn pool_id(&self) -> u64 {
        self.inner.id
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// Runs `f` as a transaction: it commits if `f` returns `Ok` (durable when this returns), and
    /// rolls back every change if `f` returns `Err` or panics.
    ///
    /// Transactions are exclusive: this waits for readers and other transactions to finish.
    /// Calling it again from inside `f` on the same pool returns [`Error::NestedTransaction`];
    /// nest with [`Tx::transaction`] instead.
    ///
    /// Log space: a transaction's log fills a fixed 64 KiB slot, then continues in free heap
    /// chunks. Allocations leave a reserve of free chunks for logs (a sixteenth of the heap, at
    /// most 1 MiB; [`HeapStats::log_reserve_bytes`](crate::HeapStats::log_reserve_bytes)), so a
    /// transaction on a full pool can still unlink and free objects: with the full 1 MiB, about
    /// 13,000 objects each unlinked by one logged 8-byte write (64 bytes of log; a logged range
    /// of `n` bytes takes `n + 32` rounded up to 64) and freed (at most 16 bytes of log). Beyond
    /// that, on a full pool, the transaction fails with [`Error::OutOfSpace`] and rolls back.
    ///
    /// # Errors
    ///
    /// The closure's error type `E` is the caller's: any `E` that a [`pmem_core::Error`]
    /// converts into (`E: From<Error>`), `Error` itself included. An `Err` the closure returns
    /// comes back as it is, after the rollback; an error of the library's (from `?` on a `Tx`
    /// call inside the closure, or while committing: [`Error::OutOfSpace`],
    /// [`Error::CommitOutcomeUnknown`], …) comes back converted by `E::from`, so it stays
    /// matchable as the `Error` inside `E`. Nothing is boxed: `E` is a type parameter.
    ///
    /// ```
    /// use pmem_core::{Persistent, Pool};
    ///
    /// #[derive(Persistent)]
    /// #[repr(C)]
    /// struct Root { balance: u64, withdrawals: u64 }
    ///
    /// #[derive(Debug)]
    /// enum BankError {
    ///     Insufficient { balance: u64, wanted: u64 },
    ///     Pool(pmem_core::Error),
    /// }
    /// impl From<pmem_core::Error> for BankError {
    ///     fn from(e: pmem_core::Error) -> Self { BankError::Pool(e) }
    /// }
    ///
    /// let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
    /// pool.transaction(|tx| tx.root_mut().set_balance(50))?; // here `E` is `pmem_core::Error`
    /// let withdraw = |amount: u64| {
    ///     pool.transaction(|tx| -> Result<u64, BankError> {
    ///         let n = tx.root().withdrawals;
    ///         tx.root_mut().set_withdrawals(n + 1)?; // `?` on the library's error
    ///         // A nested transaction's error is its closure's value itself.
    ///         tx.transaction(|tx| {
    ///             let balance = tx.root().balance;
    ///             if amount > balance {
    ///                 return Err(BankError::Insufficient { balance, wanted: amount });
    ///             }
    ///             tx.root_mut().set_balance(balance - amount)?;
    ///             Ok(())
    ///         })?;
    ///         Ok(tx.root().balance)
    ///     })
    /// };
    /// assert_eq!(withdraw(20).unwrap(), 30);
    /// // The error comes back typed, and the count of withdrawals was rolled back too.
    /// assert!(matches!(withdraw(40), Err(BankError::Insufficient { balance: 30, wanted: 40 })));
    /// assert_eq!(pool.read(|r| (r.root().balance, r.root().withdrawals))?, (30, 1));
    /// # Ok::<(), pmem_core::Error>(())
    /// ```
    ///
    /// A closure whose only errors come from `?` and that ends in `Ok(..)` leaves `E` open (Rust
    /// has no defaults for a function's type parameters): name it, as in
    /// `pool.transaction(|tx| -> pmem_core::Result<()> { .. })` or `Ok::<_, pmem_core::Error>(())`.
    ///
    /// Write-back failures (an `msync` error, or a [`FaultPlan`]'s): a transaction's one fence is
    /// its commit's, and a commit whose write-back fails returns
    /// [`Error::CommitOutcomeUnknown`]. The pool is then poisoned: later writes return
    /// [`Error::Poisoned`] until it is reopened, and recovery finds the transaction wholly there
    /// or wholly absent.
    ///
    /// Why the caller's own type rather than a wrapper of both (`Abort(E)` / `Storage(Error)`):
    /// the value comes back with no layer to unwrap, a nested transaction's error is its
    /// closure's value itself, and a closure returning `pmem_core::Result<T>` is simply the case
    /// `E = Error`. A caller that wants the two kinds apart has them in its own enum
    /// (`BankError::Pool` above).
    pub fn transaction<T, E>(&self, f: impl FnOnce(&mut Tx<'_, R>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<Error>,
    {
        let mut tx = Tx::new(self.writer()?);
        let result = f(&mut tx);
        tx.finish(result)
    }

    /// Exclusive write access, refusing re-entry from the thread that already has it, or waiting
    /// on a read guard of its own.
    #[inline(always)]
    fn writer(&self) -> Result<WriteGuard<'_>> {
        if self.inner.writer.load(Ordering::Relaxed) == thread_marker() {
            return Err(Error::NestedTransaction);
        }
        if read::holds(self.pool_id()) {
            return Err(Error::ReadGuardHeld);
        }
        let guard = self.inner.lock.write().unwrap_or_else(|e| e.into_inner());
        if guard.poisoned {
            return Err(self.poisoned());
        }
        Ok(self.write_guard(guard))
    }

    /// The error for a write to a poisoned pool (kept out of line: never on the hot path).
    #[cold]
    #[inline(never)]
    fn poisoned(&self) -> Error {
        Error::Poisoned {
            location: self.inner.shared.location.clone(),
        }
    }

    #[inline]
    fn write_guard<'a>(&'a self, guard: RwLockWriteGuard<'a, TxCore>) -> WriteGuard<'a> {
        self.inner.writer.store(thread_marker(), Ordering::Relaxed);
        WriteGuard::new(guard, &self.inner.writer)
    }

    /// Runs `f` with shared read access to the pool.
    ///
    /// Reads nest: a `read` (or [`reader`](Pool::reader), or [`check`](crate::check::check))
    /// on a thread that already holds a read guard on this pool shares that guard's hold on the
    /// lock and never waits, even while another thread waits to write. The writer waits until
    /// the thread's last guard is dropped. This holds in thread-local destructors too. The
    /// thread's first guard on a pool allocates the small record of that shared hold (40 bytes),
    /// freed by the last.
    ///
    /// # Errors
    /// [`Error::ReadInTransaction`] if called from inside a transaction on the same pool and
    /// thread (read through the transaction instead): the transaction could otherwise write
    /// under a live reference. `f` is not called then.
    pub fn read<T>(&self, f: impl FnOnce(&Reader<'_, R>) -> T) -> Result<T> {
        let guard = self.reader()?;
        Ok(f(&guard))
    }

    /// A guard with shared read access to the pool, until it is dropped.
    ///
    /// Transactions wait until every guard is dropped. A guard that is leaked (`mem::forget`)
    /// keeps the lock taken for good: transactions on other threads then wait forever, and on
    /// this thread fail with [`Error::ReadGuardHeld`]. Dropping the pool does not wait for it
    /// (no guard can be in use once the pool is dropped, since guards borrow it); the pool is
    /// then closed without retiring its logs, and the next open replays them, as after a crash
    /// between transactions.
    ///
    /// # Errors
    /// As [`read`](Pool::read).
    pub fn reader(&self) -> Result<ReadGuard<'_, R>> {
        if self.inner.writer.load(Ordering::Relaxed) == thread_marker() {
            return Err(Error::ReadInTransaction);
        }
        let reader = Reader::new(&self.inner.shared);
        Ok(ReadGuard::new(reader, self.pool_id(), || {
            self.inner.lock.read().unwrap_or_else(|e| e.into_inner())
        }))
    }

    /// Allocates a `T` holding `value`, durably, in one fail-safe step (one fence), and returns
    /// its pointer. The object is not reachable from the root: keep the pointer, or find it again
    /// with [`Reader::objects`]. To publish it into a field of the pool in the same step, use
    /// [`alloc_into`](Pool::alloc_into).
    pub fn alloc<T: Persistent>(&self, value: T) -> Result<PPtr<T>> {
        let mut core = self.writer()?;
        let size = core::mem::size_of::<T>() as u64;
        let offset = core.alloc_now(
            size,
            core::mem::align_of::<T>() as u64,
            T::FINGERPRINT,
            |region, at| region.write(at, crate::persistent::bytes_of(&value)),
        )?;
        Ok(PPtr::from_offset(offset))
    }

    /// Allocates a `T` holding `value` and lets `publish` store its pointer in the pool, all in
    /// one fail-safe step: after a crash, either both happened or neither did.
    ///
    /// ```
    /// # use pmem_core::{Persistent, Pool, PPtr};
    /// # #[derive(Persistent)] #[repr(C)] struct Root { head: PPtr<Node> }
    /// # #[derive(Persistent)] #[repr(C)] struct Node { value: u64 }
    /// # let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
    /// let node = pool.alloc_into(Node { value: 7 }, |tx, p| tx.root_mut().set_head(p))?;
    /// assert_eq!(pool.read(|r| r.root().head)?, node);
    /// # Ok::<(), pmem_core::Error>(())
    /// ```
    pub fn alloc_into<T: Persistent>(
        &self,
        value: T,
        publish: impl FnOnce(&mut Tx<'_, R>, PPtr<T>) -> Result<()>,
    ) -> Result<PPtr<T>> {
        self.transaction(|tx| {
            let p = tx.alloc(value)?;
            publish(tx, p)?;
            Ok(p)
        })
    }

    /// Frees the object `ptr` points at, durably, in one fail-safe step. Works on a full pool.
    pub fn free<T: Persistent>(&self, ptr: PPtr<T>) -> Result<()> {
        let mut core = self.writer()?;
        let object = crate::heap::resolve::locate::<T>(
            self.shared().heap.meta(),
            ptr.offset(),
            1,
            T::FINGERPRINT,
        )?;
        core.free_now(ptr.offset(), object)
    }

    /// Frees `ptr` and lets `unpublish` clear the pool's references to it, in one fail-safe step.
    pub fn free_from<T: Persistent>(
        &self,
        ptr: PPtr<T>,
        unpublish: impl FnOnce(&mut Tx<'_, R>) -> Result<()>,
    ) -> Result<()> {
        self.transaction(|tx| {
            unpublish(tx)?;
            tx.free(ptr)
        })
    }

    /// Counters that change while the pool is used: heap usage, and the flushes, fences and
    /// msyncs since the pool was opened. What stays fixed while it is open is in
    /// [`info`](Pool::info).
    ///
    /// ```
    /// # use pmem_core::{Persistent, Pool};
    /// # #[derive(Persistent)] #[repr(C)] struct Root { count: u64 }
    /// # let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
    /// let before = pool.stats();
    /// pool.alloc(7u64)?;
    /// let after = pool.stats();
    /// assert_eq!(after.heap.live_objects, before.heap.live_objects + 1);
    /// assert_eq!(after.flush.since(&before.flush).fences, 1); // one fail-safe step, one fence
    /// # Ok::<(), pmem_core::Error>(())
    /// ```
    pub fn stats(&self) -> PoolStats {
        let shared = self.shared();
        PoolStats {
            heap: shared.heap.stats(),
            flush: shared.media.domain.stats(),
        }
    }

    /// Facts that stay fixed while the pool is open: the header's (version, UUID, layout name,
    /// root type, sizes), how this handle makes stores durable, and what recovery did at open.
    /// Counters are in [`stats`](Pool::stats).
    ///
    /// ```
    /// # use pmem_core::{FlushMode, Persistent, Pool};
    /// # #[derive(Persistent)] #[repr(C)] struct Root { count: u64 }
    /// let pool = Pool::<Root>::builder().layout("counter").create_simulated(2 << 20)?;
    /// let info = pool.info();
    /// assert_eq!(info.layout_name, "counter");
    /// assert_eq!(info.flush_mode, FlushMode::Simulated);
    /// assert_eq!(info.recovery, Default::default()); // a new pool has nothing to recover
    /// # Ok::<(), pmem_core::Error>(())
    /// ```
    pub fn info(&self) -> &PoolInfo {
        &self.shared().info
    }

    /// Where the pool lives.
    pub fn location(&self) -> &Location {
        &self.shared().location
    }
}

impl<R> Drop for Pool<R> {
    fn drop(&mut self) {
        // Nothing else can hold the lock now (guards and transactions borrow the pool) unless a
        // read guard was leaked: then skip the clean close rather than wait forever. The logs
        // stay, and the next open replays them as after a crash between transactions.
        let mut core = match self.inner.lock.try_write() {
            Ok(core) => core,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        // A failed write-back leaves the logs for the next open's recovery; nobody to tell.
        let _ = core.close();
    }
}

impl<R> std::fmt::Debug for Pool<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("location", &self.inner.shared.location)
            .field("root", &core::any::type_name::<R>())
            .finish_non_exhaustive()
    }
}
