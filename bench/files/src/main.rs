//! `pmem-files-bench <WORKLOAD> <SYSTEM> [--tx N] [--batch N]`: one run of one file workload
//! on one store, printing one line:
//!
//! ```text
//! F1 system=pmem tx=10000 secs=6.650 tx_per_s=1503.8 flush_mode=msync msyncs_per_tx=3.00 fences_per_tx=2.00 dir=/var/tmp
//! ```
//!
//! `bench/files.sh` runs every pair, adds `syncs_per_tx` from strace and `ratio_vs_pmem`, and
//! prints the medians.

use std::path::PathBuf;
use std::process::ExitCode;

use pmem_files_bench::error::{Result, UsageError};
use pmem_files_bench::spec::{Plan, System, Workload};
use pmem_files_bench::{run_one, Report};

const USAGE: &str = "\
usage: pmem-files-bench <WORKLOAD> <SYSTEM> [--tx N] [--batch N]

  WORKLOAD  F1 | F2 | F3 | F4 | F1-shm (shared/bench/files/README.md)
  SYSTEM    pmem | pmem-btree (F2, F3) | redb | lmdb | sqlite-wal | sqlite-rollback
  --tx N    transactions (per thread for F4); default 10000, F3 100, F4 5000
  --batch N keys per transaction of F2 and F3; default 1, F3 1000

Environment:
  DIR        where the run's directory is made (default /var/tmp, F1-shm /dev/shm)
  POOL_SIZE  bytes of the pmem pool (default 134217728)";

/// The pmem pool's default size: room for F3's 100,000 entries, its hash table and B-tree
/// nodes many times over.
const DEFAULT_POOL_SIZE: u64 = 128 << 20;

#[derive(Debug)]
struct Args {
    workload: Workload,
    system: System,
    plan: Plan,
}

fn parse_count(name: &str, value: Option<String>) -> Result<u64, UsageError> {
    let value = value.ok_or(UsageError::MissingArgument("a count after an option"))?;
    value.parse().map_err(|_| UsageError::BadNumber {
        name: name.to_string(),
        value,
    })
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, UsageError> {
    let workload = Workload::parse(&args.next().ok_or(UsageError::MissingArgument("WORKLOAD"))?)?;
    let system = System::parse(&args.next().ok_or(UsageError::MissingArgument("SYSTEM"))?)?;
    let mut plan = workload.default_plan();
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--tx" => plan.tx = parse_count("--tx", args.next())?,
            "--batch" => plan.batch = parse_count("--batch", args.next())?,
            _ => return Err(UsageError::UnknownOption(flag)),
        }
    }
    Ok(Args {
        workload,
        system,
        plan,
    })
}

fn env_count(name: &str, default: u64) -> Result<u64, UsageError> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => parse_count(name, Some(v)),
        _ => Ok(default),
    }
}

fn line(args: &Args, dir: &std::path::Path, report: &Report) -> String {
    let o = &report.outcome;
    let mut line = format!(
        "{} system={} tx={} secs={:.6} tx_per_s={:.1} {}",
        args.workload.name(),
        args.system.name(),
        o.tx,
        o.secs,
        o.tx_per_s(),
        report.settings,
    );
    if args.workload == Workload::F3 || args.workload == Workload::F2 {
        line += &format!(" keys_per_tx={}", args.plan.batch.max(1));
    }
    if let Some(f) = &o.flush {
        let per = |n: u64| {
            if o.tx == 0 {
                0.0
            } else {
                n as f64 / o.tx as f64
            }
        };
        line += &format!(
            " msyncs_per_tx={:.2} fences_per_tx={:.2} lines_flushed_per_tx={:.1}",
            per(f.msyncs),
            per(f.fences),
            per(f.lines_flushed)
        );
    }
    line + &format!(" dir={}", dir.display())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let result = parse_args(args.into_iter())
        .map_err(Into::into)
        .and_then(|args| {
            let dir = std::env::var_os("DIR")
                .filter(|d| !d.is_empty())
                .map_or_else(|| PathBuf::from(args.workload.default_dir()), PathBuf::from);
            let pool_size = env_count("POOL_SIZE", DEFAULT_POOL_SIZE)?;
            let report = run_one(args.workload, args.system, args.plan, &dir, pool_size)?;
            Ok(line(&args, &dir, &report))
        });
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pmem-files-bench: {e}");
            if matches!(e, pmem_files_bench::error::BenchError::Usage(_)) {
                eprintln!("{USAGE}");
            }
            ExitCode::FAILURE
        }
    }
}
