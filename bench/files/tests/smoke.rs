//! Runs the binary once for every workload and system with a few transactions, so the harness
//! cannot rot unnoticed: each run must exit 0 and print its one line with the right counts.
//! (The crate is outside the workspace and not run by CI: `cargo test` in `bench/files`.)

use std::path::Path;
use std::process::Command;

use pmem_files_bench::spec::{System, Workload};

const BIN: &str = env!("CARGO_BIN_EXE_pmem-files-bench");

/// Runs `workload` on `system` with `tx` transactions of `batch` keys in `dir`; returns stdout,
/// or stderr as the error.
fn run(
    workload: Workload,
    system: System,
    tx: u64,
    batch: u64,
    dir: &Path,
) -> Result<String, String> {
    let out = Command::new(BIN)
        .args([workload.name(), system.name()])
        .args(["--tx", &tx.to_string(), "--batch", &batch.to_string()])
        .env("DIR", dir)
        .env("POOL_SIZE", (16u64 << 20).to_string())
        .output()
        .map_err(|e| format!("cannot run {BIN}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(stderr)
    }
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
}

/// A directory on the file system the workload wants (tmpfs for F1-shm, when there is one).
fn dir_for(workload: Workload) -> tempfile::TempDir {
    if workload == Workload::F1Shm && Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").expect("a temporary directory in /dev/shm")
    } else {
        tempfile::tempdir().expect("a temporary directory")
    }
}

#[test]
fn every_workload_on_every_system() {
    for workload in Workload::ALL {
        for system in System::ALL.into_iter().filter(|s| s.runs(workload)) {
            let dir = dir_for(workload);
            let (tx, batch) = (3, 7);
            let line = run(workload, system, tx, batch, dir.path())
                .unwrap_or_else(|e| panic!("{} on {}: {e}", workload.name(), system.name()));
            let line = line.trim();
            assert_eq!(line.lines().count(), 1, "one line: {line}");
            assert!(line.starts_with(&format!("{} ", workload.name())), "{line}");
            assert_eq!(field(line, "system"), Some(system.name()), "{line}");
            let threads = if workload == Workload::F4 { 2 } else { 1 };
            assert_eq!(
                field(line, "tx"),
                Some((tx * threads).to_string().as_str()),
                "{line}"
            );
            let rate: f64 = field(line, "tx_per_s")
                .and_then(|v| v.parse().ok())
                .expect(line);
            assert!(rate > 0.0, "{line}");
            if matches!(system, System::Pmem | System::PmemBtree) {
                assert!(field(line, "fences_per_tx").is_some(), "{line}");
                // F1-shm forces cache-line flushes; elsewhere an ordinary file gets msync.
                let msync = field(line, "flush_mode") == Some("msync");
                if workload == Workload::F1Shm {
                    assert!(!msync, "{line}");
                } else if std::env::var_os("PMEM_FORCE_PMEM").is_none() {
                    assert!(msync, "{line}");
                }
            }
            // The run cleans up after itself.
            let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
            assert!(
                left.is_empty(),
                "{} on {} left files",
                workload.name(),
                system.name()
            );
        }
    }
}

#[test]
fn zero_transactions_is_a_run() {
    // files.sh subtracts a run of 0 transactions from each strace count.
    let dir = tempfile::tempdir().unwrap();
    for system in [System::Pmem, System::Lmdb] {
        let line = run(Workload::F1, system, 0, 1, dir.path()).unwrap();
        assert_eq!(field(line.trim(), "tx"), Some("0"), "{line}");
    }
}

#[test]
fn refusals_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let err = run(Workload::F1, System::PmemBtree, 1, 1, dir.path()).unwrap_err();
    assert!(err.contains("runs only the index workloads"), "{err}");
    let out = Command::new(BIN).args(["F9", "pmem"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown workload"));
}
