//! Which primitive makes each kind of line durable, chosen per CPU.
//!
//! The library writes two kinds of line. A *log line* is written once, whole, and not read again
//! unless the transaction aborts: an undo entry, a commit record. A *data line* (an object
//! changed in place, a heap metadata word) is read and written again soon. A data line is written
//! back with the mode's cache-flush instruction, which may keep it cached. For a log line there
//! are two ways, and which is cheaper depends on the CPU:
//!
//! - [`LogWrites::Flushed`]: ordinary stores, then the cache-flush instruction on each line.
//! - [`LogWrites::NonTemporal`]: non-temporal stores of whole lines, which go to memory through
//!   the write-combining buffers without a read for ownership and leave nothing in the cache to
//!   write back; the next fence makes them durable, with no flush.
//!
//! The choice comes from a table of CPUs whose costs were measured (see `bench/README.md`), and
//! for any other CPU from a short calibration at the first open that needs it, cached for the
//! process. [`PoolBuilder::log_writes`](crate::PoolBuilder::log_writes) overrides both.

use std::sync::OnceLock;
use std::time::Instant;

use super::cpu::{self, LineFlush, CACHE_LINE};

/// How the lines of a log entry (written once, whole) are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LogWrites {
    /// Non-temporal stores of whole lines, durable at the next fence with no cache flush.
    NonTemporal,
    /// Ordinary stores, then the flush mode's cache-flush instruction on each line (in `msync`
    /// mode: the pages are synced at the next fence).
    Flushed,
}

impl LogWrites {
    /// Lower-case name, as printed by `pmem info` and the benchmarks.
    pub fn name(self) -> &'static str {
        match self {
            LogWrites::NonTemporal => "non-temporal",
            LogWrites::Flushed => "flushed",
        }
    }
}

impl std::fmt::Display for LogWrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a pool writes its log lines the way it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LogWritesChoice {
    /// The CPU is in the table of measured CPUs.
    CpuTable {
        /// The CPU's identity.
        cpu: CpuId,
    },
    /// The CPU is not in the table: a calibration at the first open timed both ways.
    Calibrated {
        /// The CPU's identity.
        cpu: CpuId,
        /// Nanoseconds per line written with ordinary stores, flushed, then fenced.
        flushed_ns: u32,
        /// Nanoseconds per line written with non-temporal stores, then fenced.
        non_temporal_ns: u32,
    },
    /// Asked for with [`PoolBuilder::log_writes`](crate::PoolBuilder::log_writes).
    Requested,
    /// The flush mode has no choice: `msync` and eADR store and sync (or fence) pages, the
    /// simulated domain models what it is told.
    Mode,
}

/// A CPU's vendor, family and model, from CPUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CpuId {
    /// The vendor.
    pub vendor: Vendor,
    /// The family, extended family included (AMD Zen 4 is 0x19).
    pub family: u32,
    /// The model, extended model included.
    pub model: u32,
}

/// A CPU vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Vendor {
    /// `GenuineIntel`.
    Intel,
    /// `AuthenticAMD`.
    Amd,
    /// Any other vendor string.
    Other,
}

impl std::fmt::Display for CpuId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let vendor = match self.vendor {
            Vendor::Intel => "Intel",
            Vendor::Amd => "AMD",
            Vendor::Other => "other",
        };
        write!(
            f,
            "{vendor} family {:#x} model {:#x}",
            self.family, self.model
        )
    }
}

impl CpuId {
    /// The CPU this process runs on.
    pub fn current() -> CpuId {
        let (vendor, signature) = cpu::cpuid_vendor_and_signature();
        let vendor = match &vendor {
            b"GenuineIntel" => Vendor::Intel,
            b"AuthenticAMD" => Vendor::Amd,
            _ => Vendor::Other,
        };
        CpuId::from_signature(vendor, signature)
    }

    /// Decodes CPUID leaf 1's EAX: the extended family is added when the base family is 0xF,
    /// the extended model is prepended when the family is 6 or at least 0xF.
    fn from_signature(vendor: Vendor, eax: u32) -> CpuId {
        let base_family = (eax >> 8) & 0xF;
        let base_model = (eax >> 4) & 0xF;
        let family = if base_family == 0xF {
            base_family + ((eax >> 20) & 0xFF)
        } else {
            base_family
        };
        let model = if base_family == 0x6 || base_family == 0xF {
            ((eax >> 16) & 0xF) << 4 | base_model
        } else {
            base_model
        };
        CpuId {
            vendor,
            family,
            model,
        }
    }
}

/// One row of the table: CPUs whose log-line costs were measured.
struct Measured {
    vendor: Vendor,
    family: u32,
    models: std::ops::RangeInclusive<u32>,
    log_writes: LogWrites,
}

/// The CPUs measured so far, with `bench/prim` (see `bench/README.md`, "Flush primitives"):
///
/// - AMD Zen 4 (family 0x19, models 0x10–0x1f, EPYC Genoa; measured on model 0x11): a log
///   line costs 93 ns with non-temporal stores and a fence against 154 ns with stores, `clwb`
///   and a fence (196 ns with `clflushopt`), partial lines alike.
/// - Intel Xeon family 6 model 0xcf (Emerald Rapids): the other way round. A whole log line
///   costs 333 ns stored with `clwb` and a fence against 369 ns streamed, and a partial one
///   (24 bytes) 295 against 621: a partial line streamed goes out as a partial write.
const TABLE: &[Measured] = &[
    Measured {
        vendor: Vendor::Amd,
        family: 0x19,
        models: 0x10..=0x1f,
        log_writes: LogWrites::NonTemporal,
    },
    Measured {
        vendor: Vendor::Intel,
        family: 6,
        models: 0xcf..=0xcf,
        log_writes: LogWrites::Flushed,
    },
];

/// The table's answer for `cpu`, if it has one.
pub(crate) fn from_table(cpu: CpuId) -> Option<LogWrites> {
    TABLE
        .iter()
        .find(|row| {
            row.vendor == cpu.vendor && row.family == cpu.family && row.models.contains(&cpu.model)
        })
        .map(|row| row.log_writes)
}

/// How a pool with cache-flush mode `line` writes its log lines on this CPU, and why: from the
/// table, else from a calibration run once per process and flush instruction.
pub(crate) fn choose(line: LineFlush) -> (LogWrites, LogWritesChoice) {
    // Once per process and instruction: CPUID is a VM exit under a hypervisor, and every open
    // asks.
    static CHOSEN: [OnceLock<(LogWrites, LogWritesChoice)>; 3] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let index = match line {
        LineFlush::Clwb => 0,
        LineFlush::ClflushOpt => 1,
        LineFlush::Clflush => 2,
    };
    *CHOSEN[index].get_or_init(|| {
        let cpu = CpuId::current();
        if let Some(log_writes) = from_table(cpu) {
            return (log_writes, LogWritesChoice::CpuTable { cpu });
        }
        let (flushed_ns, non_temporal_ns) = calibrate(line);
        (
            decide(flushed_ns, non_temporal_ns),
            LogWritesChoice::Calibrated {
                cpu,
                flushed_ns,
                non_temporal_ns,
            },
        )
    })
}

/// Entries per timed round of the calibration, and timed rounds per way (the fastest counts),
/// after one round that warms both up.
const CALIBRATION_ENTRIES: usize = 48;
const CALIBRATION_ROUNDS: usize = 4;

/// Whether streaming is clearly cheaper than storing and flushing: by 10% at least, since the
/// flushed way is the conservative one.
fn decide(flushed_ns: u32, non_temporal_ns: u32) -> LogWrites {
    if (non_temporal_ns as u64) * 10 < flushed_ns as u64 * 9 {
        LogWrites::NonTemporal
    } else {
        LogWrites::Flushed
    }
}

/// Times log entries written both ways, each then fenced, and returns nanoseconds per entry,
/// flushed and non-temporal. The entries take the shapes transactions write most: a 40-byte
/// undo entry of a word and a whole line, in turn (partial lines cost more than whole ones
/// through the write-combining buffers of some CPUs). Each way writes its own lines, so neither
/// pays for the state the other left them in. Into private memory: the cache behaviour is what
/// differs between CPUs. About 2 x 5 x 48 entries at 100–300 ns: some 60 microseconds, once
/// per process.
fn calibrate(line: LineFlush) -> (u32, u32) {
    #[repr(C, align(4096))]
    struct Lines([[u8; CACHE_LINE]; 64]);
    // Two pages: way 0 writes the first 16 lines, way 1 the 16 lines one page on.
    let mut buf = Box::new(Lines([[0; CACHE_LINE]; 64]));
    let src = [0x5Au8; CACHE_LINE];
    let mut best = [u128::MAX; 2];
    for round in 0..=CALIBRATION_ROUNDS {
        for (way, best) in best.iter_mut().enumerate() {
            let start = Instant::now();
            for i in 0..CALIBRATION_ENTRIES {
                let dst = buf.0[way * 64 / 2 + i % 16].as_mut_ptr();
                let len = if i % 2 == 0 { 40 } else { CACHE_LINE };
                if way == 0 {
                    // SAFETY: `dst .. dst + len` is a line of our own buffer, disjoint from
                    // `src`; `line` is supported (the caller's mode was checked).
                    unsafe {
                        dst.copy_from_nonoverlapping(src.as_ptr(), len);
                        line.flush_range(dst, len);
                    }
                } else {
                    // SAFETY: `dst` is a 64-aligned line of our own buffer, disjoint from
                    // `src`; `len` is a multiple of 8.
                    unsafe { cpu::stream_lines(dst, &src[..len]) };
                }
                cpu::sfence();
            }
            if round > 0 {
                *best = (*best).min(start.elapsed().as_nanos());
            }
        }
    }
    let per_entry =
        |total: u128| (total / CALIBRATION_ENTRIES as u128).min(u32::MAX as u128) as u32;
    (per_entry(best[0]), per_entry(best[1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_decode_as_the_vendors_document() {
        // AMD EPYC 9004 (Zen 4, Genoa): family 0x19 model 0x11 stepping 1.
        let genoa = CpuId::from_signature(Vendor::Amd, 0x00A1_0F11);
        assert_eq!((genoa.family, genoa.model), (0x19, 0x11));
        // Intel Xeon Scalable 2nd gen (Cascade Lake): family 6 model 0x55.
        let cascade = CpuId::from_signature(Vendor::Intel, 0x0005_0657);
        assert_eq!((cascade.family, cascade.model), (6, 0x55));
        assert_eq!(genoa.to_string(), "AMD family 0x19 model 0x11");
    }

    #[test]
    fn the_table_says_what_was_measured() {
        let genoa = CpuId {
            vendor: Vendor::Amd,
            family: 0x19,
            model: 0x11,
        };
        assert_eq!(from_table(genoa), Some(LogWrites::NonTemporal));
        // Zen 3 and Intel Cascade Lake are not in the table: they calibrate.
        assert_eq!(
            from_table(CpuId {
                model: 0x01,
                ..genoa
            }),
            None
        );
        let cascade = CpuId {
            vendor: Vendor::Intel,
            family: 6,
            model: 0x55,
        };
        assert_eq!(from_table(cascade), None);
        let emerald_rapids = CpuId {
            model: 0xcf,
            ..cascade
        };
        assert_eq!(from_table(emerald_rapids), Some(LogWrites::Flushed));
    }

    /// Timing, so not run by default: on a CPU of the table, the calibration agrees with it.
    #[test]
    #[ignore = "timing: run on a quiet machine with --ignored"]
    fn calibration_agrees_with_the_table_where_it_has_the_cpu() {
        let Some(expected) = from_table(CpuId::current()) else {
            return;
        };
        let (flushed, non_temporal) = calibrate(LineFlush::detect());
        assert_eq!(
            decide(flushed, non_temporal),
            expected,
            "{flushed} {non_temporal}"
        );
    }

    #[test]
    fn streaming_needs_to_be_clearly_cheaper() {
        assert_eq!(decide(100, 89), LogWrites::NonTemporal);
        assert_eq!(decide(100, 90), LogWrites::Flushed);
        assert_eq!(decide(100, 150), LogWrites::Flushed);
        assert_eq!(decide(u32::MAX, u32::MAX), LogWrites::Flushed);
    }

    #[test]
    fn calibration_times_both_ways_plausibly() {
        let (flushed, non_temporal) = calibrate(LineFlush::detect());
        // A line and a fence take at least a few nanoseconds either way, and less than a
        // millisecond on any machine that is not stopped.
        for ns in [flushed, non_temporal] {
            assert!((1..1_000_000).contains(&ns), "{flushed} {non_temporal}");
        }
    }
}
