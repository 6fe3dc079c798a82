//! A created pool survives a power cut under its name: the system calls `create` makes, seen
//! with `strace`, sync the file before its name is linked and the directory after. Skipped
//! (saying so) where `strace` is missing or may not trace.

use std::path::Path;
use std::process::Command;

use pmem_core::{Persistent, Pool};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    count: u64,
}

const TASK: &str = "PMEM_TEST_CREATE_UNDER_STRACE";

/// The child: creates the pool named by the environment, then opens-or-creates a second one.
#[test]
fn child_creates_pools() {
    let Some(dir) = std::env::var_os(TASK) else {
        return;
    };
    let dir = Path::new(&dir);
    Pool::<Root>::create(dir.join("a.pool"), 4 << 20).unwrap();
    Pool::<Root>::open_or_create(dir.join("b.pool"), 4 << 20).unwrap();
}

/// The descriptor a traced call returned, from a line such as `123 openat(..., "x", ...) = 5`.
fn returned_fd(line: &str) -> Option<String> {
    line.rsplit_once(" = ")
        .map(|(_, fd)| fd.trim().to_string())
        .filter(|fd| fd.parse::<u32>().is_ok())
}

#[test]
fn create_syncs_the_file_before_naming_it_and_the_directory_after() {
    if std::env::var_os(TASK).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("strace.log");
    let pools = dir.path().join("pools");
    std::fs::create_dir(&pools).unwrap();
    let status = Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-e",
            "trace=openat,fsync,fdatasync,linkat,link",
            "-o",
        ])
        .arg(&log)
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "child_creates_pools", "--test-threads=1"])
        .env(TASK, &pools)
        .output();
    let output = match status {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            eprintln!(
                "SKIPPED: strace could not trace here: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            return;
        }
        Err(e) => {
            eprintln!("SKIPPED: no strace ({e})");
            return;
        }
    };
    assert!(output.status.success());
    let trace = std::fs::read_to_string(&log).unwrap();
    let pools_dir = pools.to_str().unwrap();
    for name in ["a.pool", "b.pool"] {
        let lines: Vec<&str> = trace.lines().collect();
        let temp_prefix = format!("/.{name}.creating.");
        let opened = lines
            .iter()
            .position(|l| {
                l.contains("openat(") && l.contains(&temp_prefix) && l.contains("O_CREAT")
            })
            .unwrap_or_else(|| panic!("{name}: no create of the temporary file in\n{trace}"));
        let fd = returned_fd(lines[opened]).unwrap();
        let linked = lines
            .iter()
            .position(|l| l.contains("link") && l.contains(&format!("{pools_dir}/{name}\"")))
            .unwrap_or_else(|| panic!("{name}: no link into place in\n{trace}"));
        let file_synced = lines[opened..linked].iter().any(|l| {
            l.contains(&format!("fsync({fd})")) || l.contains(&format!("fdatasync({fd})"))
        });
        assert!(
            file_synced,
            "{name}: the file was not synced before its name was linked:\n{trace}"
        );
        let dir_opened = lines[linked..]
            .iter()
            .position(|l| l.contains("openat(") && l.contains(&format!("\"{pools_dir}\"")))
            .map(|i| linked + i)
            .unwrap_or_else(|| {
                panic!("{name}: the directory was not opened after the link:\n{trace}")
            });
        let dir_fd = returned_fd(lines[dir_opened]).unwrap();
        assert!(
            lines[dir_opened..]
                .iter()
                .any(|l| l.contains(&format!("fsync({dir_fd})"))),
            "{name}: the directory was not synced after the link:\n{trace}"
        );
    }
}
