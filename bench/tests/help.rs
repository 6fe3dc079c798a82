//! `pmem-bench --help` prints its usage and runs nothing.

use std::process::{Command, Stdio};

#[test]
fn help_prints_usage_and_creates_nothing() {
    for flag in ["--help", "-h"] {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_pmem-bench"))
            .arg(flag)
            .current_dir(dir.path())
            .env("POOL_DIR", dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{flag}: {}", out.status);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage:") && text.contains("w7"), "{text}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

#[test]
fn an_unknown_workload_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_pmem-bench"))
        .arg("w9")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("w9"));
}
