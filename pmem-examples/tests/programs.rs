//! The example programs, run as a user would: the string writer and reader, the map and queue
//! command lines (one command per run, and interactive), and the demo.
//!
//! A process started while this one has a pool open inherits the pool's file (and its lock)
//! from `fork` until `exec` closes it, so the one test that opens a pool here runs alone: it
//! takes [`exclusive`], every other test [`shared`].

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

static POOLS_OPEN: RwLock<()> = RwLock::new(());

/// For a test that starts processes and opens no pool.
fn shared() -> RwLockReadGuard<'static, ()> {
    POOLS_OPEN.read().unwrap_or_else(|e| e.into_inner())
}

/// For a test that opens a pool in this process.
fn exclusive() -> RwLockWriteGuard<'static, ()> {
    POOLS_OPEN.write().unwrap_or_else(|e| e.into_inner())
}

fn run(program: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {program}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs and expects success; returns standard output.
fn ok(program: &str, args: &[&str], stdin: &str) -> String {
    let out = run(program, args, stdin);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\nstdout: {}\nstderr: {}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// Runs and expects exit status 1; returns standard error.
fn fails(program: &str, args: &[&str], stdin: &str) -> String {
    let out = run(program, args, stdin);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{program} {args:?} should fail; stdout: {}",
        stdout(&out)
    );
    stderr(&out)
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

const WRITER: &str = env!("CARGO_BIN_EXE_string-writer");
const READER: &str = env!("CARGO_BIN_EXE_string-reader");

#[test]
fn string_writer_and_reader() {
    let _guard = shared();
    let dir = tempfile::tempdir().unwrap();
    let pool = dir.path().join("string.pool");
    let pool = path_str(&pool);

    let err = fails(READER, &[pool], "");
    assert!(err.contains("no such file"), "{err}");
    assert!(fails(WRITER, &[], "").contains("Usage: string-writer <POOL>"));

    ok(
        WRITER,
        &[pool],
        "hello, persistent world\nsecond line ignored\n",
    );
    assert_eq!(ok(READER, &[pool], ""), "hello, persistent world\n");
    ok(WRITER, &[pool], "replaced");
    assert_eq!(ok(READER, &[pool], ""), "replaced\n");
    ok(WRITER, &[pool], "\n");
    assert_eq!(ok(READER, &[pool], ""), "\n");
}

#[test]
fn string_reader_on_a_pool_without_a_string() {
    let _guard = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("string.pool");
    // Creating the pool is the writer's job; make one with no string through the library.
    drop(pmem_examples::string_store::open_or_create(&path).unwrap());
    let out = run(READER, &[path_str(&path)], "");
    assert!(out.status.success());
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("no string stored"),
        "{}",
        stderr(&out)
    );
}

fn map_cli(program: &str) {
    let dir = tempfile::tempdir().unwrap();
    let pool = dir.path().join("map.pool");
    let pool = path_str(&pool);

    assert_eq!(
        ok_args(program, &[pool, "insert", "5", "50"]),
        "inserted 5 -> 50\n"
    );
    assert_eq!(
        ok_args(program, &[pool, "insert", "3", "30"]),
        "inserted 3 -> 30\n"
    );
    assert_eq!(
        ok_args(program, &[pool, "insert", "5", "51"]),
        "updated 5 -> 51 (was 50)\n"
    );
    assert_eq!(ok_args(program, &[pool, "get", "5"]), "51\n");
    assert_eq!(ok_args(program, &[pool, "list"]), "3 30\n5 51\n");
    assert_eq!(ok_args(program, &[pool, "len"]), "2\n");
    assert!(fails(program, &[pool, "get", "4"], "").contains("key 4 not found"));
    assert!(fails(program, &[pool, "remove", "4"], "").contains("key 4 not found"));
    assert!(fails(program, &[pool, "insert", "1"], "").contains("usage: insert KEY VALUE"));
    assert!(fails(program, &[pool, "jump"], "").contains("unknown command `jump`"));
    assert!(fails(program, &[], "").contains("required arguments were not provided"));
    assert!(ok_args(program, &["--help"]).contains("Commands:"));

    // Interactive: one command per line; a failed command does not stop the session but makes
    // the exit status 1.
    let session = "# a comment\n\nremove 3\ninsert 7 70\nget 3\nlist\nlen\ncheck\n";
    let out = run(program, &[pool], session);
    assert_eq!(out.status.code(), Some(1));
    let printed = stdout(&out);
    assert!(
        printed.starts_with("removed 3 (value 30)\ninserted 7 -> 70\n5 51\n7 70\n2\nok: 2 entries"),
        "{printed}"
    );
    assert_eq!(stderr(&out), "error: key 3 not found\n");
    assert_eq!(ok_args(program, &[pool, "len"]), "2\n");
    let quit = run(program, &[pool], "len\nquit\nlen\n");
    assert!(quit.status.success());
    assert_eq!(stdout(&quit), "2\n");
}

fn ok_args(program: &str, args: &[&str]) -> String {
    ok(program, args, "")
}

#[test]
fn hashmap_cli() {
    let _guard = shared();
    map_cli(env!("CARGO_BIN_EXE_hashmap-cli"));
}

#[test]
fn btree_cli() {
    let _guard = shared();
    map_cli(env!("CARGO_BIN_EXE_btree-cli"));
}

#[test]
fn many_inserts_through_the_btree_cli() {
    let _guard = shared();
    let program = env!("CARGO_BIN_EXE_btree-cli");
    let dir = tempfile::tempdir().unwrap();
    let pool = dir.path().join("map.pool");
    let pool = path_str(&pool);
    let session: String = (0..500)
        .map(|k| format!("insert {} {k}\n", (k * 37) % 500))
        .collect();
    ok(program, &[pool], &session);
    let listed = ok_args(program, &[pool, "list"]);
    let keys: Vec<u64> = listed
        .lines()
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(keys, (0..500).collect::<Vec<_>>());
    assert!(ok_args(program, &[pool, "check"]).starts_with("ok: 500 entries"));
}

#[test]
fn queue_cli() {
    let _guard = shared();
    let program = env!("CARGO_BIN_EXE_queue-cli");
    let dir = tempfile::tempdir().unwrap();
    let pool = dir.path().join("queue.pool");
    let pool = path_str(&pool);
    assert!(fails(program, &[pool, "dequeue"], "").contains("the queue is empty"));
    ok_args(program, &[pool, "enqueue", "hello", "world"]);
    ok_args(program, &[pool, "enqueue", "second"]);
    assert_eq!(ok_args(program, &[pool, "peek"]), "hello world\n");
    assert_eq!(ok_args(program, &[pool, "list"]), "hello world\nsecond\n");
    assert_eq!(ok_args(program, &[pool, "dequeue"]), "hello world\n");
    assert_eq!(
        ok(program, &[pool], "enqueue third one\nlen\ndequeue\ndequeue\ncheck\n"),
        "2\nsecond\nthird one\nok: 0 messages, structure valid, pool healthy (1 objects, all reachable)\n"
    );
}

#[test]
fn demo_tells_the_story_twice() {
    let _guard = shared();
    let program = env!("CARGO_BIN_EXE_demo");
    let dir = tempfile::tempdir().unwrap();
    let pool = dir.path().join("demo.pool");
    let pool = path_str(&pool);
    for (run, opened) in [(1, "(new,"), (2, "(reopened from an earlier run,")] {
        let out = ok_args(program, &[pool]);
        for expected in [
            opened,
            "killed by signal 9 (SIGKILL)",
            "of the interrupted transaction",
            "= the last committed state",
            "deep check: healthy",
            "nothing leaked",
        ] {
            assert!(
                out.contains(expected),
                "run {run}: no {expected:?} in\n{out}"
            );
        }
    }
}

/// Every program of the package.
const PROGRAMS: [&str; 6] = [
    env!("CARGO_BIN_EXE_string-writer"),
    env!("CARGO_BIN_EXE_string-reader"),
    env!("CARGO_BIN_EXE_hashmap-cli"),
    env!("CARGO_BIN_EXE_btree-cli"),
    env!("CARGO_BIN_EXE_queue-cli"),
    env!("CARGO_BIN_EXE_demo"),
];

/// `--help` and `-h` print usage and exit 0, and are never taken for a pool file's name.
#[test]
fn every_program_has_a_help_that_creates_nothing() {
    let _guard = shared();
    for program in PROGRAMS {
        for flag in ["--help", "-h"] {
            let dir = tempfile::tempdir().unwrap();
            let out = Command::new(program)
                .arg(flag)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{program} {flag}: {}\nstderr: {}",
                out.status,
                stderr(&out)
            );
            assert!(
                stdout(&out).contains("Usage:"),
                "{program} {flag}: {}",
                stdout(&out)
            );
            let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
            assert!(left.is_empty(), "{program} {flag} created {left:?}");
        }
    }
}

/// A usage error says so and exits 1, creating nothing.
#[test]
fn every_program_refuses_an_unknown_option() {
    let _guard = shared();
    for program in PROGRAMS {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(program)
            .args(["--no-such-option", "x.pool"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{program}: {}", stdout(&out));
        assert!(
            stderr(&out).contains("--no-such-option"),
            "{program}: {}",
            stderr(&out)
        );
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{program} created {left:?}");
    }
}
