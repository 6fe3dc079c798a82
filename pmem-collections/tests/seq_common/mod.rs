//! Shared by the sequence containers' tests: pools for the model tests (a file on /dev/shm,
//! reopened through the real open), and a crash test driver that keeps a model of the
//! committed state next to the workload.

#![allow(dead_code)]

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pmem_collections::{Error, Result};
use pmem_core::crash::{CrashReport, CrashTest};
use pmem_core::{Persistent, Pool, Tx};
use proptest::test_runner::{Config, TestRunner};

/// Random sequences each model test runs.
pub const CASES: u32 = 1000;

/// A runner for `CASES` sequences, seeded (so a failure replays) and without a persistence file.
pub fn runner() -> TestRunner {
    TestRunner::new_with_rng(
        Config {
            cases: CASES,
            failure_persistence: None,
            ..Config::default()
        },
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    )
}

/// A pool file in a fresh directory on /dev/shm (memory), or the system's temporary directory.
pub struct FilePool<R: Persistent> {
    _dir: tempfile::TempDir,
    path: PathBuf,
    pub pool: Option<Pool<R>>,
}

impl<R: Persistent> FilePool<R> {
    pub fn create(size: u64) -> Self {
        let dir = if Path::new("/dev/shm").is_dir() {
            tempfile::tempdir_in("/dev/shm").unwrap()
        } else {
            tempfile::tempdir().unwrap()
        };
        let path = dir.path().join("seq.pool");
        let pool = Pool::<R>::builder()
            .force_pmem(true)
            .create(&path, size)
            .unwrap();
        FilePool {
            _dir: dir,
            path,
            pool: Some(pool),
        }
    }

    pub fn pool(&self) -> &Pool<R> {
        self.pool.as_ref().unwrap()
    }

    /// Closes the pool and opens it again (recovery, layout check and all).
    pub fn reopen(&mut self) {
        self.pool = None;
        self.pool = Some(
            Pool::<R>::builder()
                .force_pmem(true)
                .open(&self.path)
                .unwrap(),
        );
    }
}

/// SplitMix64: small, seeded, good enough to pick operations.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// One transaction of a crash test: its operations, and whether it aborts after them.
#[derive(Debug, Clone)]
pub struct Step<Op> {
    pub ops: Vec<Op>,
    pub abort: bool,
}

/// Splits `ops` into transactions: mostly one operation each, sometimes three together, and
/// about one in 12 aborted after doing its operations.
pub fn steps<Op: Clone>(rng: &mut Rng, ops: Vec<Op>) -> Vec<Step<Op>> {
    let mut steps = Vec::new();
    let mut ops = ops.into_iter().peekable();
    while ops.peek().is_some() {
        let n = if rng.chance(15) { 3 } else { 1 };
        let batch: Vec<Op> = ops.by_ref().take(n).collect();
        steps.push(Step {
            ops: batch,
            abort: rng.chance(8),
        });
    }
    steps
}

/// The deep check finds no problem and nothing allocated is unreachable from the root.
pub fn pool_is_clean<R: Persistent>(pool: &Pool<R>) -> std::result::Result<(), String> {
    let report = pmem_core::check::check(pool);
    if !report.is_healthy() {
        return Err(format!("deep check: {report}"));
    }
    if !report.unreachable.is_empty() {
        return Err(format!(
            "{} objects leaked (allocated, unreachable): {:x?}",
            report.unreachable.len(),
            report.unreachable
        ));
    }
    Ok(())
}

/// What a crash image may hold: the state after the last transaction that returned, or that
/// plus the one in flight (if it was to commit).
#[derive(Debug)]
struct Expected<M> {
    committed: M,
    in_flight: Option<M>,
}

/// Runs `steps` as transactions under a crash test; every crash image, reopened through
/// recovery, must `observe` (which also checks the pool is clean) as exactly the committed
/// state or the in-flight transaction's result.
///
/// - `setup` runs in the first transaction (creating the container); before it commits the
///   image must observe as `initial`.
/// - `apply` performs one operation, given the model before it (to check what it returns).
pub fn crash_test<R, Op, M>(
    test: CrashTest,
    initial: M,
    steps: Vec<Step<Op>>,
    setup: impl Fn(&mut Tx<'_, R>) -> Result<()>,
    apply: impl Fn(&mut Tx<'_, R>, &Op, &M) -> Result<()>,
    model: impl Fn(&mut M, &Op),
    observe: impl Fn(&Pool<R>) -> std::result::Result<M, String> + Send + Sync + 'static,
) -> CrashReport
where
    R: Persistent,
    Op: Debug,
    M: Clone + PartialEq + Debug + Send + 'static,
{
    let expected = Arc::new(Mutex::new(Expected {
        committed: initial,
        in_flight: None,
    }));
    let seen = Arc::clone(&expected);
    test.run::<R>(
        move |pool| {
            pool.transaction(|tx| setup(tx)).map_err(pool_error)?;
            for step in &steps {
                let before = expected.lock().unwrap().committed.clone();
                let mut after = before.clone();
                for op in &step.ops {
                    model(&mut after, op);
                }
                expected.lock().unwrap().in_flight = (!step.abort).then(|| after.clone());
                let outcome = pool.transaction(|tx| {
                    let mut state = before.clone();
                    for op in &step.ops {
                        apply(tx, op, &state)?;
                        model(&mut state, op);
                    }
                    if step.abort {
                        return Err(tx.abort().into());
                    }
                    Ok(())
                });
                let mut e = expected.lock().unwrap();
                match outcome {
                    Ok(()) if !step.abort => e.committed = after,
                    Err(Error::Pool(pmem_core::Error::Aborted { .. })) if step.abort => {}
                    other => panic!("step {step:?}: unexpected outcome {other:?}"),
                }
                e.in_flight = None;
            }
            Ok(())
        },
        move |pool, _at| {
            let found = observe(pool)?;
            let e = seen.lock().unwrap_or_else(|p| p.into_inner());
            if found == e.committed || e.in_flight.as_ref() == Some(&found) {
                Ok(())
            } else {
                Err(format!(
                    "recovered {found:?}\n    committed {:?}\n    in flight {:?}",
                    e.committed, e.in_flight
                ))
            }
        },
    )
}

/// The pool's error in `e`; a crash workload reports only those (a container found
/// inconsistent while the workload runs is a bug in it).
pub fn pool_error(e: Error) -> pmem_core::Error {
    match e {
        Error::Pool(e) => e,
        other => panic!("{other}"),
    }
}
