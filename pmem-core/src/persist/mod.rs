//! The persistence domain: how stores to the pool become durable.
//!
//! Every durable write in the crate is `flush` (write the cache lines of a range back, or mark
//! them for msync) followed by `fence` (wait until every flush issued so far has reached the
//! persistence domain). Every backend counts lines flushed, fences and msyncs: these are what a
//! persistent data structure costs the hardware.
//!
//! # The seam
//!
//! `Persist` is what a backing provides: flush, fence, what a failed fence loses, and the
//! failure itself. Its implementations are the cache-flush instructions (`cpu::CpuFlush`),
//! fence-only eADR (`Eadr`), msync of a file mapping (`MsyncBackend`), the simulated domain
//! (`SimDomain`), and a wrapper that fails chosen fences of any of them (`fault::Faulty`,
//! driven by a public [`FaultPlan`]). The backend is chosen once, when the pool is opened, and
//! dispatched with a `match` over the closed `Backend` enum rather than a virtual call: the
//! cache-flush and eADR arms inline to the instructions themselves.
//!
//! # Failure
//!
//! Only msync can fail on real systems (a cache write-back has no error path); a [`FaultPlan`]
//! makes any fence fail. A failed fence keeps its error until a caller that promised durability
//! takes it (`Domain::take_failure`), and what it should have made durable is lost (msync: not
//! written back by this fence; simulated: the pending lines are dropped, as Linux drops the
//! pages whose write-back failed). What each step of the commit protocol does then is stated
//! in the log module's notes on a fence that fails.

mod cpu;
mod fault;
mod msync;
pub(crate) mod sim;
mod strategy;

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) use cpu::LineFlush;
pub use cpu::CACHE_LINE;
pub use fault::FaultPlan;
pub(crate) use msync::MsyncBackend;
pub(crate) use sim::SimDomain;
pub use sim::{CrashPoint, PoolImage};
pub use strategy::{CpuId, LogWrites, LogWritesChoice, Vendor};

/// How a pool makes its stores durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FlushMode {
    /// Persistent memory, flushing with `clwb` then `sfence`.
    Clwb,
    /// Persistent memory, flushing with `clflushopt` then `sfence`.
    ClflushOpt,
    /// Persistent memory, flushing with `clflush` (then `sfence`, which costs nothing extra).
    Clflush,
    /// Persistent memory on a platform whose caches are in the persistence domain (eADR):
    /// only the `sfence` is needed.
    Eadr,
    /// An ordinary file: `msync` of the written pages at every fence.
    Msync,
    /// The simulated persistence domain used for crash testing.
    Simulated,
}

impl FlushMode {
    /// The cache-flush mode this CPU supports best: `clwb`, else `clflushopt`, else `clflush`.
    pub fn best_cpu() -> FlushMode {
        match LineFlush::detect() {
            LineFlush::Clwb => FlushMode::Clwb,
            LineFlush::ClflushOpt => FlushMode::ClflushOpt,
            LineFlush::Clflush => FlushMode::Clflush,
        }
    }

    /// How a pool in this mode writes its log lines on this CPU, and why (the CPU table, or a
    /// calibration run once per process): what [`PoolInfo::log_writes`](crate::PoolInfo) of a
    /// pool opened in this mode would say.
    pub fn log_writes(self) -> (LogWrites, LogWritesChoice) {
        match self.line_flush() {
            Some(line) if line.supported() => strategy::choose(line),
            _ => (LogWrites::Flushed, LogWritesChoice::Mode),
        }
    }

    /// Whether this mode flushes CPU caches (or needs only a fence), i.e. whether it assumes the
    /// mapping is persistent memory rather than a page-cache file.
    pub fn is_pmem(self) -> bool {
        matches!(
            self,
            FlushMode::Clwb | FlushMode::ClflushOpt | FlushMode::Clflush | FlushMode::Eadr
        )
    }

    pub(crate) fn line_flush(self) -> Option<LineFlush> {
        match self {
            FlushMode::Clwb => Some(LineFlush::Clwb),
            FlushMode::ClflushOpt => Some(LineFlush::ClflushOpt),
            FlushMode::Clflush => Some(LineFlush::Clflush),
            _ => None,
        }
    }

    /// Lower-case name, as printed by `pmem info`.
    pub fn name(self) -> &'static str {
        match self {
            FlushMode::Clwb => "clwb",
            FlushMode::ClflushOpt => "clflushopt",
            FlushMode::Clflush => "clflush",
            FlushMode::Eadr => "eadr",
            FlushMode::Msync => "msync",
            FlushMode::Simulated => "simulated",
        }
    }
}

impl fmt::Display for FlushMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Counts of what the persistence domain has been asked to do since the pool was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlushStats {
    /// Cache lines written back (or, in msync mode, covered by a pending msync).
    pub lines_flushed: u64,
    /// Fences: points at which the program waits for earlier flushes to become durable.
    pub fences: u64,
    /// `msync` system calls.
    pub msyncs: u64,
    /// Cache lines written with non-temporal stores (log lines, where the CPU's strategy says
    /// so): durable at the next fence without a flush.
    pub lines_streamed: u64,
}

impl FlushStats {
    /// The counts accumulated between `earlier` and `self`.
    pub fn since(&self, earlier: &FlushStats) -> FlushStats {
        FlushStats {
            lines_flushed: self.lines_flushed - earlier.lines_flushed,
            fences: self.fences - earlier.fences,
            msyncs: self.msyncs - earlier.msyncs,
            lines_streamed: self.lines_streamed - earlier.lines_streamed,
        }
    }
}

/// A counter written only by the pool's single writer and read by anyone: a plain load and
/// store, with no locked read-modify-write on the hot path.
#[derive(Debug, Default)]
struct Counter(AtomicU64);

impl Counter {
    #[inline(always)]
    fn add(&self, n: u64) {
        self.0
            .store(self.0.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }
    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The seam between a pool and its backing: how stores become durable, and how that fails.
///
/// Implementations are dispatched statically (through [`Backend`]), never as trait objects.
pub(crate) trait Persist {
    /// Starts writing back the pool bytes `[offset, offset + len)`, which the caller has checked
    /// lie inside the mapping; returns how many cache lines that covers.
    fn flush(&self, offset: u64, len: u64) -> u64;

    /// Waits until everything flushed so far is durable; returns the `msync` calls it made. A
    /// failure is kept for [`take_failure`](Self::take_failure).
    fn fence(&self) -> u64;

    /// What a fence that fails does instead: the write-back of everything flushed since the last
    /// fence is lost (a later fence does not make it durable unless it is flushed again).
    fn lose_pending(&self);

    /// The first failure since the last call, if any.
    fn take_failure(&self) -> Option<io::Error>;

    /// The mode this backing runs in.
    fn mode(&self) -> FlushMode;
}

/// A fence-only backing: on an eADR platform the caches are in the persistence domain.
pub(crate) struct Eadr;

impl Persist for Eadr {
    #[inline(always)]
    fn flush(&self, _offset: u64, _len: u64) -> u64 {
        0
    }
    #[inline(always)]
    fn fence(&self) -> u64 {
        cpu::sfence();
        0
    }
    fn lose_pending(&self) {}
    fn take_failure(&self) -> Option<io::Error> {
        None
    }
    fn mode(&self) -> FlushMode {
        FlushMode::Eadr
    }
}

/// Every backing a pool can have. A closed enum, so every call is a `match` the compiler can
/// inline, not a virtual call.
pub(crate) enum Backend {
    Cpu(cpu::CpuFlush),
    Eadr(Eadr),
    Msync(MsyncBackend),
    Simulated(SimDomain),
    /// Any of the others, failing the fences a [`FaultPlan`] names.
    Faulty(Box<fault::Faulty<Backend>>),
}

impl Backend {
    /// The simulated backing, if that is what this is (under a fault plan or not).
    fn sim(&self) -> Option<&SimDomain> {
        match self {
            Backend::Simulated(sim) => Some(sim),
            Backend::Faulty(f) => f.inner().sim(),
            _ => None,
        }
    }
}

impl Backend {
    /// Whether log lines can be written with non-temporal stores (or, simulated, modelled so).
    fn can_stream(&self) -> bool {
        match self {
            Backend::Cpu(_) | Backend::Simulated(_) => true,
            Backend::Faulty(f) => f.inner().can_stream(),
            Backend::Eadr(_) | Backend::Msync(_) => false,
        }
    }
}

impl Persist for Backend {
    #[inline(always)]
    fn flush(&self, offset: u64, len: u64) -> u64 {
        match self {
            Backend::Cpu(c) => c.flush(offset, len),
            Backend::Eadr(e) => e.flush(offset, len),
            Backend::Msync(m) => m.flush(offset, len),
            Backend::Simulated(sim) => sim.flush(offset, len),
            Backend::Faulty(f) => f.flush(offset, len),
        }
    }

    fn fence(&self) -> u64 {
        match self {
            Backend::Cpu(c) => c.fence(),
            Backend::Eadr(e) => e.fence(),
            Backend::Msync(m) => m.fence(),
            Backend::Simulated(sim) => Persist::fence(sim),
            Backend::Faulty(f) => f.fence(),
        }
    }

    fn lose_pending(&self) {
        match self {
            Backend::Cpu(c) => c.lose_pending(),
            Backend::Eadr(e) => e.lose_pending(),
            Backend::Msync(m) => m.lose_pending(),
            Backend::Simulated(sim) => sim.lose_pending(),
            Backend::Faulty(f) => f.lose_pending(),
        }
    }

    fn take_failure(&self) -> Option<io::Error> {
        match self {
            // Cache write-backs cannot fail.
            Backend::Cpu(_) | Backend::Eadr(_) => None,
            Backend::Msync(m) => m.take_failure(),
            Backend::Simulated(sim) => sim.take_failure(),
            Backend::Faulty(f) => f.take_failure(),
        }
    }

    fn mode(&self) -> FlushMode {
        match self {
            Backend::Cpu(c) => c.mode(),
            Backend::Eadr(e) => e.mode(),
            Backend::Msync(m) => m.mode(),
            Backend::Simulated(sim) => sim.mode(),
            Backend::Faulty(f) => f.mode(),
        }
    }
}

/// The persistence domain of one mapped pool.
pub(crate) struct Domain {
    base: *mut u8,
    len: u64,
    backend: Backend,
    /// Whether log lines are written with non-temporal stores (see [`LogWrites`]).
    streams_log: bool,
    choice: LogWritesChoice,
    lines: Counter,
    fences: Counter,
    msyncs: Counter,
    streamed: Counter,
}

// SAFETY: `base` points at the pool mapping, which outlives the domain and is shared by design;
// the domain only issues cache-flush instructions or msync on it, and the simulated backend
// guards its own state with a mutex. Counters are atomics.
unsafe impl Send for Domain {}
// SAFETY: as above.
unsafe impl Sync for Domain {}

impl Domain {
    /// A domain over `[base, base + len)` with the given mode.
    ///
    /// # Safety
    /// `base .. base + len` must stay mapped for the life of the domain, and `base` must be
    /// page-aligned (log lines are streamed to 64-aligned offsets from it). For
    /// [`FlushMode::Simulated`], use [`Domain::simulated`] instead.
    pub(crate) unsafe fn new(base: *mut u8, len: u64, mode: FlushMode) -> Domain {
        assert_eq!(base as usize % 4096, 0, "a pool mapping is page-aligned");
        let mut log_writes = (LogWrites::Flushed, LogWritesChoice::Mode);
        let backend = match mode {
            FlushMode::Clwb | FlushMode::ClflushOpt | FlushMode::Clflush => {
                let flush = mode.line_flush().expect("cpu mode");
                assert!(flush.supported(), "{mode} is not supported by this CPU");
                log_writes = strategy::choose(flush);
                // SAFETY: the caller keeps the range mapped; the instruction is supported.
                Backend::Cpu(unsafe { cpu::CpuFlush::new(base, flush) })
            }
            FlushMode::Eadr => Backend::Eadr(Eadr),
            FlushMode::Msync => Backend::Msync(MsyncBackend::new(base, len)),
            FlushMode::Simulated => panic!("use Domain::simulated"),
        };
        let mut domain = Domain::with_backend(base, len, backend);
        domain.streams_log = log_writes.0 == LogWrites::NonTemporal;
        domain.choice = log_writes.1;
        domain
    }

    /// A simulated domain over a volatile image. It models non-temporal log writes (durable at
    /// the next fence, no flush) unless [`set_log_writes`](Self::set_log_writes) says otherwise.
    pub(crate) fn simulated(sim: SimDomain) -> Domain {
        let (base, len) = sim.region();
        let mut domain = Domain::with_backend(base, len, Backend::Simulated(sim));
        domain.streams_log = true;
        domain
    }

    fn with_backend(base: *mut u8, len: u64, backend: Backend) -> Domain {
        Domain {
            base,
            len,
            backend,
            streams_log: false,
            choice: LogWritesChoice::Mode,
            lines: Counter::default(),
            fences: Counter::default(),
            msyncs: Counter::default(),
            streamed: Counter::default(),
        }
    }

    /// Writes log lines as `log_writes` says, whatever the CPU's strategy would choose. Only
    /// the cache-flush modes and the simulated domain can stream; the others store and flush.
    pub(crate) fn set_log_writes(&mut self, log_writes: LogWrites) {
        let can_stream = self.backend.can_stream();
        self.streams_log = log_writes == LogWrites::NonTemporal && can_stream;
        // A request the mode cannot honour is the mode's choice, not the request's.
        self.choice = if can_stream {
            LogWritesChoice::Requested
        } else {
            LogWritesChoice::Mode
        };
    }

    /// How log lines are written, and why.
    pub(crate) fn log_writes(&self) -> (LogWrites, LogWritesChoice) {
        let writes = if self.streams_log {
            LogWrites::NonTemporal
        } else {
            LogWrites::Flushed
        };
        (writes, self.choice)
    }

    /// Whether log lines go through [`stream_log`](Self::stream_log) rather than stores and
    /// [`flush`](Self::flush).
    #[inline(always)]
    pub(crate) fn streams_log(&self) -> bool {
        self.streams_log
    }

    /// Writes log bytes at `offset` (64-aligned, `lines.len()` a multiple of 8) with
    /// non-temporal stores: durable at the next fence, with no flush. The simulated domain
    /// models them as lines flushed at once; under a fault plan they are stored and flushed.
    #[inline]
    pub(crate) fn stream_log(&self, offset: u64, lines: &[u8]) {
        let len = lines.len() as u64;
        assert!(
            offset <= self.len && len <= self.len - offset && offset % CACHE_LINE as u64 == 0,
            "log lines outside the pool or unaligned: {offset:#x}+{len:#x} > {:#x}",
            self.len
        );
        assert_eq!(len % 8, 0, "log writes are whole words");
        let dst = self.base.wrapping_add(offset as usize);
        debug_assert!(
            lines.as_ptr() as usize + lines.len() <= dst as usize
                || dst as usize + lines.len() <= lines.as_ptr() as usize,
            "log lines overlap their source"
        );
        match &self.backend {
            // SAFETY: in the mapping and 64-aligned (checked above; the mapping is page-aligned,
            // `new`'s contract), which stays mapped; the caller is the pool's only writer, and
            // `lines` (its own buffer, or the live object an undo entry copies) is disjoint from
            // the log space it writes (checked in debug builds above).
            Backend::Cpu(_) => unsafe { cpu::stream_lines(dst, lines) },
            _ => {
                // SAFETY: as above, with ordinary stores.
                unsafe { dst.copy_from_nonoverlapping(lines.as_ptr(), lines.len()) };
                self.backend.flush(offset, len);
            }
        }
        self.streamed.add(len.div_ceil(CACHE_LINE as u64));
    }

    /// Makes the fences `plan` names fail, from now on.
    pub(crate) fn add_faults(&mut self, plan: FaultPlan) {
        let inner = std::mem::replace(&mut self.backend, Backend::Eadr(Eadr));
        self.backend = Backend::Faulty(Box::new(fault::Faulty::new(inner, plan)));
    }

    /// The fault plan of this domain, if it has one.
    pub(crate) fn faults(&self) -> Option<&FaultPlan> {
        match &self.backend {
            Backend::Faulty(f) => Some(f.plan()),
            _ => None,
        }
    }

    /// The mode this domain runs in.
    pub(crate) fn mode(&self) -> FlushMode {
        self.backend.mode()
    }

    /// The simulated backend, if that is what this domain is.
    pub(crate) fn sim(&self) -> Option<&SimDomain> {
        self.backend.sim()
    }

    /// Starts writing back the pool bytes `[offset, offset + len)`. Durable after the next
    /// [`fence`](Self::fence).
    #[inline]
    pub(crate) fn flush(&self, offset: u64, len: u64) {
        assert!(
            offset <= self.len && len <= self.len - offset,
            "flush outside the pool: {offset:#x}+{len:#x} > {:#x}",
            self.len
        );
        self.lines.add(self.backend.flush(offset, len));
    }

    /// Hints that the lines of `[offset, offset + len)` are about to be written. On CPUs whose
    /// write-back evicts the line, a store to a line flushed by the last fence would otherwise
    /// wait for it to come back from memory; transactions rewrite the same log and metadata
    /// lines constantly. Only the cache-flush modes prefetch.
    #[inline]
    pub(crate) fn prefetch_write(&self, offset: u64, len: u64) {
        if !matches!(self.backend, Backend::Cpu(_) | Backend::Eadr(_)) || offset >= self.len {
            return;
        }
        let end = offset.saturating_add(len).min(self.len);
        let mut line = offset & !(CACHE_LINE as u64 - 1);
        while line < end {
            cpu::prefetch_write(self.base.wrapping_add(line as usize));
            line += CACHE_LINE as u64;
        }
    }

    /// Waits until everything flushed so far is durable. A failure is kept for
    /// [`take_failure`](Self::take_failure).
    #[inline]
    pub(crate) fn fence(&self) {
        match &self.backend {
            // No msync to count: just the fence instruction.
            Backend::Cpu(_) | Backend::Eadr(_) => cpu::sfence(),
            _ => self.fence_other(),
        }
        self.fences.add(1);
    }

    /// The fence of the backings that are not cache flushes: a system call or a simulation,
    /// kept out of line so the cache-flush fence stays one instruction where it is inlined.
    #[inline(never)]
    fn fence_other(&self) {
        self.msyncs.add(self.backend.fence());
    }

    /// The first write-back failure since the last call: msync's, or one a fault plan
    /// injected. Callers that promise durability check this after their fence.
    #[inline]
    pub(crate) fn take_failure(&self) -> Option<io::Error> {
        match &self.backend {
            // Cache write-backs cannot fail.
            Backend::Cpu(_) | Backend::Eadr(_) => None,
            _ => self.take_other_failure(),
        }
    }

    #[inline(never)]
    fn take_other_failure(&self) -> Option<io::Error> {
        self.backend.take_failure()
    }

    /// [`fence`](Self::fence), then [`take_failure`](Self::take_failure).
    #[inline]
    pub(crate) fn fence_checked(&self) -> io::Result<()> {
        self.fence();
        match self.take_failure() {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// The counts so far.
    pub(crate) fn stats(&self) -> FlushStats {
        FlushStats {
            lines_flushed: self.lines.get(),
            fences: self.fences.get(),
            msyncs: self.msyncs.get(),
            lines_streamed: self.streamed.get(),
        }
    }
}

impl fmt::Debug for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Domain")
            .field("mode", &self.mode())
            .field("stats", &self.stats())
            .finish()
    }
}
