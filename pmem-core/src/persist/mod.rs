//! The persistence domain: how stores to the pool become durable.
//!
//! Every durable write in the crate is `flush` (write the cache lines of a range back, or mark
//! them for msync) followed by `fence` (wait until every flush issued so far has reached the
//! persistence domain). The backend is chosen once, when the pool is opened, and dispatched with
//! a `match` rather than a virtual call. Every backend counts lines flushed, fences and msyncs:
//! these are what a persistent data structure costs the hardware.

mod cpu;
mod msync;
pub(crate) mod sim;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) use cpu::LineFlush;
pub use cpu::CACHE_LINE;
pub(crate) use msync::MsyncBackend;
pub(crate) use sim::SimDomain;
pub use sim::{CrashPoint, PoolImage};

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
pub struct FlushStats {
    /// Cache lines written back (or, in msync mode, covered by a pending msync).
    pub lines_flushed: u64,
    /// Fences: points at which the program waits for earlier flushes to become durable.
    pub fences: u64,
    /// `msync` system calls.
    pub msyncs: u64,
}

impl FlushStats {
    /// The counts accumulated between `earlier` and `self`.
    pub fn since(&self, earlier: &FlushStats) -> FlushStats {
        FlushStats {
            lines_flushed: self.lines_flushed - earlier.lines_flushed,
            fences: self.fences - earlier.fences,
            msyncs: self.msyncs - earlier.msyncs,
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

enum Backend {
    Cpu(LineFlush),
    Eadr,
    Msync(MsyncBackend),
    Simulated(SimDomain),
}

/// The persistence domain of one mapped pool.
pub(crate) struct Domain {
    base: *mut u8,
    len: u64,
    backend: Backend,
    lines: Counter,
    fences: Counter,
    msyncs: Counter,
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
    /// `base .. base + len` must stay mapped for the life of the domain. For
    /// [`FlushMode::Simulated`], use [`Domain::simulated`] instead.
    pub(crate) unsafe fn new(base: *mut u8, len: u64, mode: FlushMode) -> Domain {
        let backend = match mode {
            FlushMode::Clwb | FlushMode::ClflushOpt | FlushMode::Clflush => {
                let flush = mode.line_flush().expect("cpu mode");
                assert!(flush.supported(), "{mode} is not supported by this CPU");
                Backend::Cpu(flush)
            }
            FlushMode::Eadr => Backend::Eadr,
            FlushMode::Msync => Backend::Msync(MsyncBackend::new(base, len)),
            FlushMode::Simulated => panic!("use Domain::simulated"),
        };
        Domain::with_backend(base, len, backend)
    }

    /// A simulated domain over a volatile image.
    pub(crate) fn simulated(sim: SimDomain) -> Domain {
        let (base, len) = sim.region();
        Domain::with_backend(base, len, Backend::Simulated(sim))
    }

    fn with_backend(base: *mut u8, len: u64, backend: Backend) -> Domain {
        Domain {
            base,
            len,
            backend,
            lines: Counter::default(),
            fences: Counter::default(),
            msyncs: Counter::default(),
        }
    }

    /// The mode this domain runs in.
    pub(crate) fn mode(&self) -> FlushMode {
        match &self.backend {
            Backend::Cpu(LineFlush::Clwb) => FlushMode::Clwb,
            Backend::Cpu(LineFlush::ClflushOpt) => FlushMode::ClflushOpt,
            Backend::Cpu(LineFlush::Clflush) => FlushMode::Clflush,
            Backend::Eadr => FlushMode::Eadr,
            Backend::Msync(_) => FlushMode::Msync,
            Backend::Simulated(_) => FlushMode::Simulated,
        }
    }

    /// The simulated backend, if that is what this domain is.
    pub(crate) fn sim(&self) -> Option<&SimDomain> {
        match &self.backend {
            Backend::Simulated(sim) => Some(sim),
            _ => None,
        }
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
        let addr = self.base.wrapping_add(offset as usize);
        let lines = match &self.backend {
            // SAFETY: the range is inside the mapping (asserted above), which stays mapped for
            // the domain's life (`new`'s contract), and `new` checked the CPU supports `flush`.
            Backend::Cpu(flush) => unsafe { flush.flush_range(addr, len as usize) },
            Backend::Eadr => 0,
            Backend::Msync(m) => m.add(offset, len),
            Backend::Simulated(sim) => sim.flush(offset, len),
        };
        self.lines.add(lines);
    }

    /// Hints that the lines of `[offset, offset + len)` are about to be written. On CPUs whose
    /// write-back evicts the line, a store to a line flushed by the last fence would otherwise
    /// wait for it to come back from memory; transactions rewrite the same log and metadata
    /// lines constantly. Only the cache-flush modes prefetch.
    #[inline]
    pub(crate) fn prefetch_write(&self, offset: u64, len: u64) {
        if !matches!(self.backend, Backend::Cpu(_) | Backend::Eadr) || offset >= self.len {
            return;
        }
        let end = offset.saturating_add(len).min(self.len);
        let mut line = offset & !(CACHE_LINE as u64 - 1);
        while line < end {
            cpu::prefetch_write(self.base.wrapping_add(line as usize));
            line += CACHE_LINE as u64;
        }
    }

    /// Waits until everything flushed so far is durable.
    #[inline]
    pub(crate) fn fence(&self) {
        match &self.backend {
            Backend::Cpu(_) | Backend::Eadr => cpu::sfence(),
            Backend::Msync(m) => self.msyncs.add(m.sync()),
            Backend::Simulated(sim) => sim.fence(),
        }
        self.fences.add(1);
    }

    /// The first write-back failure since the last call (msync mode only: cache flushes cannot
    /// fail). Callers that promise durability check this after their fence.
    #[inline]
    pub(crate) fn take_failure(&self) -> Option<std::io::Error> {
        match &self.backend {
            Backend::Msync(m) => m.take_failure(),
            _ => None,
        }
    }

    /// Makes the next `fences` msync fences fail as a device error would; `false` (and no
    /// effect) in any other mode.
    pub(crate) fn inject_write_back_failures(&self, fences: u32) -> bool {
        match &self.backend {
            Backend::Msync(m) => {
                m.inject_failures(fences);
                true
            }
            _ => false,
        }
    }

    /// The counts so far.
    pub(crate) fn stats(&self) -> FlushStats {
        FlushStats {
            lines_flushed: self.lines.get(),
            fences: self.fences.get(),
            msyncs: self.msyncs.get(),
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
