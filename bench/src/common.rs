//! What every workload shares: the environment knobs, pool paths, timing statistics, the result
//! line, and the key generator. Mirrors `common.h` of the C harness.

use std::path::PathBuf;
use std::time::Instant;

use pmem_core::{FlushMode, FlushStats, LogWrites, Persistent, Pool, PoolBuilder};

/// Layout name of every pool, as in the C harness.
pub const LAYOUT: &str = "pmdkbench";
/// The most repetitions the C harness keeps.
const MAX_REPS: u64 = 64;

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The environment knobs of the C harness (`N`, `REPS`, `POOL_DIR`, `POOL_SIZE`), plus
/// `FLUSH_MODE` to pick a flush mode instead of the CPU's best cache flush (forced pmem).
#[derive(Debug, Clone)]
pub struct Env {
    pub n: u64,
    pub reps: usize,
    pub pool_dir: PathBuf,
    pub pool_size: u64,
    pub flush_mode: Option<FlushMode>,
    /// `LOG_WRITES=nt|flushed`: how log lines are written instead of the CPU's choice.
    pub log_writes: Option<LogWrites>,
    /// `RESERVE=all|lazy`: whether a new pool reserves its whole file at create (`all`, the
    /// default: `pmemobj_create` does, with `posix_fallocate`) or as it is used (`lazy`, the
    /// library's default).
    pub reserve_all: bool,
}

impl Env {
    pub fn from_env() -> Env {
        Env {
            n: env_u64("N", 1_000_000),
            reps: env_u64("REPS", 5).clamp(1, MAX_REPS) as usize,
            pool_dir: PathBuf::from(env_str("POOL_DIR", "/dev/shm")),
            pool_size: env_u64("POOL_SIZE", 1 << 30),
            flush_mode: flush_mode_from_env(),
            log_writes: match env_str("LOG_WRITES", "").as_str() {
                "" => None,
                "nt" => Some(LogWrites::NonTemporal),
                "flushed" => Some(LogWrites::Flushed),
                other => panic!("LOG_WRITES={other}: expected nt or flushed"),
            },
            reserve_all: match env_str("RESERVE", "all").as_str() {
                "all" => true,
                "lazy" => false,
                other => panic!("RESERVE={other}: expected all or lazy"),
            },
        }
    }

    /// `all` or `lazy`, as `RESERVE` is spelled.
    pub fn reserve_name(&self) -> &'static str {
        if self.reserve_all {
            "all"
        } else {
            "lazy"
        }
    }

    /// Forced pmem mode (cache-line flushes even on tmpfs, like `PMEM_IS_PMEM_FORCE=1`), or
    /// exactly the `FLUSH_MODE` asked for.
    fn builder<R: Persistent>(&self) -> PoolBuilder<R> {
        let mut b = Pool::<R>::builder()
            .force_pmem(true)
            .layout(LAYOUT)
            .reserve_all(self.reserve_all);
        if let Some(log_writes) = self.log_writes {
            b = b.log_writes(log_writes);
        }
        match self.flush_mode {
            Some(mode) => b.flush_mode(mode),
            None => b,
        }
    }

    /// `$POOL_DIR/pmembench_<tag>.pool` (the C harness uses `pmdkbench_<tag>.pool`).
    pub fn pool_path(&self, tag: &str) -> PathBuf {
        self.pool_dir.join(format!("pmembench_{tag}.pool"))
    }

    /// Removes `path` and creates a pool there, returning the pool and the time `create` took.
    pub fn create<R: Persistent>(&self, path: &PathBuf) -> Result<(Pool<R>, u64)> {
        let _ = std::fs::remove_file(path);
        let t0 = Instant::now();
        let pool = self.builder::<R>().create(path, self.pool_size)?;
        let ns = ns_since(t0);
        Ok((pool, ns))
    }

    /// Opens the pool at `path` in the same mode.
    pub fn open<R: Persistent>(&self, path: &PathBuf) -> Result<Pool<R>> {
        Ok(self.builder::<R>().open(path)?)
    }
}

/// `FLUSH_MODE=clwb|clflushopt|clflush|eadr|msync`, or `None` if unset. `eadr` keeps the
/// fences and skips the cache flushes, like PMDK's `PMEM_NO_FLUSH=1`.
fn flush_mode_from_env() -> Option<FlushMode> {
    let name = env_str("FLUSH_MODE", "");
    if name.is_empty() {
        return None;
    }
    let modes = [
        FlushMode::Clwb,
        FlushMode::ClflushOpt,
        FlushMode::Clflush,
        FlushMode::Eadr,
        FlushMode::Msync,
    ];
    let mode = modes.into_iter().find(|m| m.name() == name);
    Some(mode.unwrap_or_else(|| {
        panic!("FLUSH_MODE={name}: expected clwb, clflushopt, clflush, eadr or msync")
    }))
}

/// Closes the pool and removes its file.
pub fn destroy<R>(pool: Pool<R>, path: &PathBuf) {
    drop(pool);
    let _ = std::fs::remove_file(path);
}

/// A numeric environment variable (decimal, `0x` hex or `0` octal, like `strtoull(s, 0, 0)`).
pub fn env_u64(name: &str, default: u64) -> u64 {
    let Ok(s) = std::env::var(name) else {
        return default;
    };
    let s = s.trim();
    if s.is_empty() {
        return default;
    }
    let parsed = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8)
    } else {
        s.parse()
    };
    parsed.unwrap_or_else(|_| panic!("{name}={s} is not a number"))
}

pub fn env_str(name: &str, default: &str) -> String {
    match std::env::var(name) {
        Ok(s) if !s.is_empty() => s,
        _ => default.to_string(),
    }
}

/// Nanoseconds elapsed since `t0`.
pub fn ns_since(t0: Instant) -> u64 {
    t0.elapsed().as_nanos() as u64
}

/// `total_ns / n`, or 0 for `n == 0`, as the C harness does.
pub fn per_op(total_ns: u64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        total_ns as f64 / n as f64
    }
}

/// Median, minimum and maximum of per-rep values.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub med: f64,
    pub min: f64,
    pub max: f64,
}

impl Stats {
    pub fn of(values: &[f64]) -> Stats {
        if values.is_empty() {
            return Stats::default();
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let med = if n % 2 == 1 {
            v[n / 2]
        } else {
            0.5 * (v[n / 2 - 1] + v[n / 2])
        };
        Stats {
            med,
            min: v[0],
            max: v[n - 1],
        }
    }
}

/// Prints one result line in the C harness's format:
/// `NAME ns_per_op=<median> ops_per_s=<1e9/median> reps=R min_ns=.. max_ns=.. N=.. all_ns=a,b,c [extra]`.
pub fn report(name: &str, ns_per_op: &[f64], n: u64, extra: &str) {
    let s = Stats::of(ns_per_op);
    let ops = if s.med > 0.0 { 1e9 / s.med } else { 0.0 };
    let all: Vec<String> = ns_per_op.iter().map(|v| format!("{v:.1}")).collect();
    let mut line = format!(
        "{name} ns_per_op={:.1} ops_per_s={ops:.0} reps={} min_ns={:.1} max_ns={:.1} N={n} all_ns={}",
        s.med,
        ns_per_op.len(),
        s.min,
        s.max,
        all.join(",")
    );
    if !extra.is_empty() {
        line.push(' ');
        line.push_str(extra);
    }
    line.push_str(&format!(" cpu={}", cpu_tag()));
    println!("{line}");
}

/// Flush and fence counts accumulated over the timed loops of a workload.
#[derive(Debug, Default, Clone, Copy)]
pub struct FlushTally {
    lines: u64,
    streamed: u64,
    fences: u64,
    msyncs: u64,
    ops: u64,
}

impl FlushTally {
    /// Adds what happened between `before` and `after` over `ops` operations.
    pub fn add(&mut self, before: &FlushStats, after: &FlushStats, ops: u64) {
        let d = after.since(before);
        self.lines += d.lines_flushed;
        self.streamed += d.lines_streamed;
        self.fences += d.fences;
        self.msyncs += d.msyncs;
        self.ops += ops;
    }

    /// `fences_per_op=.. flushes_per_op=..` (plus `msyncs_per_op` if any).
    pub fn fields(&self) -> String {
        let per = |x: u64| {
            if self.ops == 0 {
                0.0
            } else {
                x as f64 / self.ops as f64
            }
        };
        let mut s = format!(
            "fences_per_op={:.2} flushes_per_op={:.2} streamed_per_op={:.2}",
            per(self.fences),
            per(self.lines),
            per(self.streamed)
        );
        if self.msyncs != 0 {
            s.push_str(&format!(" msyncs_per_op={:.2}", per(self.msyncs)));
        }
        s
    }
}

/// The extra fields every line carries: flush mode, pointer size and pool size.
pub fn common_fields<R: Persistent>(pool: &Pool<R>, env: &Env) -> String {
    format!(
        "flush_mode={} log_writes={} ptr_size={} pool_size={} reserve={}",
        pool.info().flush_mode,
        pool.info().log_writes,
        core::mem::size_of::<pmem_core::PPtr<u64>>(),
        env.pool_size,
        env.reserve_name()
    )
}

/// The address of `r` modulo 64 (where a value sits within its cache line).
pub fn addr_mod64<T>(r: &T) -> usize {
    r as *const T as usize % 64
}

/// splitmix64: deterministic, bijective on the counter, so the keys are distinct.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The CPU as one field value: `amd-f19-m11` (vendor, family and model in hex), so that every
/// result line says which CPU it was measured on.
pub fn cpu_tag() -> String {
    let cpu = pmem_core::CpuId::current();
    let vendor = match cpu.vendor {
        pmem_core::Vendor::Intel => "intel",
        pmem_core::Vendor::Amd => "amd",
        _ => "other",
    };
    format!("{vendor}-f{:x}-m{:x}", cpu.family, cpu.model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_matches_the_c_harness() {
        let s = Stats::of(&[3.0, 1.0, 2.0]);
        assert_eq!((s.med, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Stats::of(&[4.0, 1.0, 2.0, 3.0]).med, 2.5);
    }

    #[test]
    fn splitmix64_reference_values() {
        // First outputs for seed 0 (the published reference sequence).
        let mut s = 0;
        assert_eq!(splitmix64(&mut s), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(&mut s), 0x6E78_9E6A_A1B9_65F4);
    }
}
