//! Running part of a test in a separate process.
//!
//! The test binary re-executes itself ([`std::env::current_exe`]) to run exactly one test, the
//! *child test*, with environment variables saying what to do: [`TASK_VAR`] names the task and
//! [`POOL_VAR`] the pool file. A child test starts with [`task`] and returns at once when it is
//! `None`, so in an ordinary run of the suite it does nothing.
//!
//! The child tells the parent what it saw by printing report lines ([`report`]); the parent reads
//! them back with [`Output::reported`] or, for a child that keeps running, [`Running::wait_for`].
//! A child that must hold something (a pool) until the parent is done waits for its standard
//! input to close ([`wait_for_parent`]).

use std::collections::VecDeque;
use std::fmt::Display;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{mpsc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// Environment variable naming the child's task.
pub const TASK_VAR: &str = "PMEM_TEST_CHILD";
/// Environment variable holding the pool file the child works on.
pub const POOL_VAR: &str = "PMEM_TEST_POOL";
/// Prefix of the lines a child prints to report to its parent.
pub const REPORT_PREFIX: &str = "pmem-child-report: ";

/// How long a parent waits for a child's report before giving up (a hung child must fail the
/// test, not hang it).
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Serialises tests that start processes against the other tests of the same binary.
///
/// A new process inherits every open file of its parent from `fork` until `exec` closes them,
/// and a pool's lock (`flock`) belongs to the open file, so for that moment the child holds the
/// lock of every pool the parent has open. A test in another thread that closes a pool and
/// reopens it just then gets `PoolInUse`. So a test that starts processes takes
/// [`spawning`] for its whole run and every other test [`not_spawning`]: no pool of another test
/// is open while a process is being started.
static SPAWN_LOCK: RwLock<()> = RwLock::new(());

/// Held for the whole of a test; see [`spawning`] and [`not_spawning`].
#[derive(Debug)]
pub enum SpawnLock {
    /// This test starts processes: no other test runs meanwhile.
    Spawning(RwLockWriteGuard<'static, ()>),
    /// This test starts no process: it runs alongside the others that start none.
    NotSpawning(RwLockReadGuard<'static, ()>),
}

/// For a test that starts processes: waits until no other test of this binary runs.
pub fn spawning() -> SpawnLock {
    SpawnLock::Spawning(SPAWN_LOCK.write().unwrap_or_else(|e| e.into_inner()))
}

/// For a test that starts no process: waits while a test that does runs.
pub fn not_spawning() -> SpawnLock {
    SpawnLock::NotSpawning(SPAWN_LOCK.read().unwrap_or_else(|e| e.into_inner()))
}

/// The task and pool path this process was started with, or `None` if it is not a child.
pub fn task() -> Option<(String, PathBuf)> {
    let task = std::env::var(TASK_VAR).ok()?;
    let pool = std::env::var_os(POOL_VAR).expect("a child task comes with a pool path");
    Some((task, PathBuf::from(pool)))
}

/// Prints a report line `key=value` for the parent.
pub fn report(key: &str, value: impl Display) {
    // On a line of its own: the test harness may have left "test name ... " unterminated.
    let line = format!("\n{REPORT_PREFIX}{key}={value}\n");
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes())
        .and_then(|()| out.flush())
        .expect("write a report line to stdout");
}

/// Blocks until the parent closes this process's standard input.
pub fn wait_for_parent() {
    let mut sink = Vec::new();
    let _ = std::io::stdin().lock().read_to_end(&mut sink);
}

/// A command that runs child test `test` (its exact name in this test binary) with `task` on
/// `pool`. Its standard input is closed unless the caller sets it.
pub fn command(test: &str, task: &str, pool: &Path) -> Command {
    let exe = std::env::current_exe().expect("path of the running test binary");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(TASK_VAR, task)
        .env(POOL_VAR, pool)
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd` (from [`command`]) to completion.
pub fn run(cmd: &mut Command) -> Output {
    try_run(cmd).expect("spawn the child test process")
}

/// As [`run`], returning the error if the process cannot be started.
pub fn try_run(cmd: &mut Command) -> std::io::Result<Output> {
    let out = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).output()?;
    Ok(Output {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Runs child test `test` with `task` on `pool` to completion.
pub fn run_task(test: &str, task: &str, pool: &Path) -> Output {
    run(&mut command(test, task, pool))
}

/// A finished child process.
#[derive(Debug)]
pub struct Output {
    /// How it ended.
    pub status: ExitStatus,
    /// Everything it printed.
    pub stdout: String,
    /// Everything it printed to standard error.
    pub stderr: String,
}

impl Output {
    /// The value of the last report named `key`, if any.
    pub fn reported(&self, key: &str) -> Option<String> {
        reports(&self.stdout)
            .into_iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The value of the last report named `key`; panics, showing the child's output, if none.
    pub fn expect_report(&self, key: &str) -> String {
        self.reported(key)
            .unwrap_or_else(|| panic!("the child did not report `{key}`\n{self}"))
    }

    /// Panics, showing the child's output, unless the child ran exactly one test and passed.
    pub fn assert_success(&self) {
        assert!(
            self.status.success() && self.ran_one_test(),
            "the child test failed or did not run\n{self}"
        );
    }

    /// Whether the test harness in the child found exactly one test to run (a misspelt child
    /// test name runs none, and would pass silently).
    pub fn ran_one_test(&self) -> bool {
        self.stdout.lines().any(|l| l.trim() == "running 1 test")
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "child status: {}\n--- child stdout ---\n{}\n--- child stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Every `(key, value)` report in `stdout`, in order.
pub fn reports(stdout: &str) -> Vec<(String, String)> {
    stdout.lines().filter_map(parse_report).collect()
}

/// The `(key, value)` of a report line.
fn parse_report(line: &str) -> Option<(String, String)> {
    let start = line.find(REPORT_PREFIX)? + REPORT_PREFIX.len();
    let (k, v) = line[start..].split_once('=')?;
    Some((k.to_string(), v.to_string()))
}

/// A child process still running, whose reports the parent reads as they come. Dropping it
/// kills the child if it is still alive.
#[derive(Debug)]
pub struct Running {
    child: Option<std::process::Child>,
    lines: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
    /// Every stdout line seen so far.
    seen: Vec<String>,
    /// Report lines received but not yet consumed by [`wait_for`](Self::wait_for).
    pending: VecDeque<(String, String)>,
}

impl Running {
    /// Starts `cmd` (from [`command`]) with piped standard input, output and error.
    pub fn start(cmd: &mut Command) -> Running {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the child test process");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Running {
            child: Some(child),
            lines,
            stderr: Some(stderr),
            seen: Vec::new(),
            pending: VecDeque::new(),
        }
    }

    /// Waits for the next report named `key` (skipping other reports) and returns its value.
    /// Panics, showing what the child printed, if the child exits or [`TIMEOUT`] passes first.
    pub fn wait_for(&mut self, key: &str) -> String {
        match self.try_wait_for(key, TIMEOUT) {
            Ok(v) => v,
            Err(e) => {
                let out = self.kill_and_collect();
                panic!("no `{key}` report from the child ({e:?})\n{out}");
            }
        }
    }

    /// As [`wait_for`](Self::wait_for), but returns why no report came (the child exited, or
    /// `timeout` passed) instead of panicking, leaving the child to the caller.
    pub fn try_wait_for(&mut self, key: &str, timeout: Duration) -> Result<String, Ended> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.pending.iter().position(|(k, _)| k == key) {
                let (_, v) = self.pending.remove(i).expect("index just found");
                return Ok(v);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(kv) = parse_report(&line) {
                        self.pending.push_back(kv);
                    }
                    self.seen.push(line);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => return Err(Ended::TimedOut),
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(Ended::Exited),
            }
        }
    }

    /// Closes the child's standard input (ending its [`wait_for_parent`]) and waits for it.
    pub fn finish(mut self) -> Output {
        let mut child = self.child.take().expect("child not yet reaped");
        drop(child.stdin.take());
        let status = child.wait().expect("wait for the child");
        self.collect(status)
    }

    /// Kills the child (SIGKILL) and waits for it.
    pub fn kill(mut self) -> Output {
        self.kill_and_collect()
    }

    fn kill_and_collect(&mut self) -> Output {
        let mut child = self.child.take().expect("child not yet reaped");
        let _ = child.kill();
        let status = child.wait().expect("wait for the child");
        self.collect(status)
    }

    fn collect(&mut self, status: ExitStatus) -> Output {
        // The reader thread ends when the child's stdout closes, which it has once it exited
        // (unless a grandchild inherited it; the timeout bounds that case).
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line);
        }
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        let mut stdout = self.seen.join("\n");
        stdout.push('\n');
        Output {
            status,
            stdout,
            stderr,
        }
    }
}

/// Why [`Running::try_wait_for`] got no report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The child closed its output: it exited or was killed.
    Exited,
    /// The child is still running but sent nothing in time.
    TimedOut,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
