//! Shared by the crash, model and reopen tests: a seeded random generator, a crash test driver
//! that keeps a model of the committed state next to the workload, and a root of all three
//! structures.

#![allow(dead_code)]

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use pmem_collections::{PBTreeMap, PHashMap};
use pmem_core::crash::{CrashReport, CrashTest};
use pmem_core::{Error, Persistent, Pool, Tx};
use pmem_examples::messages::MessageQueue;
use pmem_examples::{transaction, Result};

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
/// about one in 15 aborted after doing its operations.
pub fn steps<Op: Clone>(rng: &mut Rng, ops: Vec<Op>) -> Vec<Step<Op>> {
    let mut steps = Vec::new();
    let mut ops = ops.into_iter().peekable();
    while ops.peek().is_some() {
        let n = if rng.chance(15) { 3 } else { 1 };
        let batch: Vec<Op> = ops.by_ref().take(n).collect();
        steps.push(Step {
            ops: batch,
            abort: rng.chance(7),
        });
    }
    steps
}

/// What a crash image may hold: the state after the last transaction that returned, or that
/// plus the one in flight (if it was to commit).
#[derive(Debug)]
struct Expected<M> {
    committed: M,
    in_flight: Option<M>,
}

/// The pool-level part of every check: the deep check finds no problem and nothing allocated is
/// unreachable from the root (a leak).
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

/// Runs `steps` as transactions under a crash test and checks every crash image.
///
/// - `setup` runs in the first transaction (creating the structure); before it commits the
///   image must observe as `initial`.
/// - `apply` performs one operation in a transaction, given the model before it (to check what
///   the operation returns), and `model` applies it to the model.
/// - `observe` reads a recovered pool into a model value, checking the structure's invariants
///   and that the pool is clean; its result must equal the committed model or the in-flight one.
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
            transaction(pool, |tx| setup(tx)).map_err(pool_error)?;
            for step in &steps {
                let before = expected.lock().unwrap().committed.clone();
                let mut after = before.clone();
                for op in &step.ops {
                    model(&mut after, op);
                }
                expected.lock().unwrap().in_flight = (!step.abort).then(|| after.clone());
                let outcome = transaction(pool, |tx| {
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
                    Err(pmem_examples::Error::Pool(Error::Aborted { .. })) if step.abort => {}
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

/// The pool's error in `e`; a crash workload reports only those (a structure found
/// inconsistent while the workload runs is a bug in it).
pub fn pool_error(e: pmem_examples::Error) -> Error {
    match e {
        pmem_examples::Error::Pool(e) => e,
        other => panic!("{other}"),
    }
}

/// A root holding one of each structure.
#[derive(Persistent)]
#[repr(C)]
pub struct AllRoot {
    pub hash: PHashMap<u64, u64>,
    pub tree: PBTreeMap<u64, u64>,
    pub queue: MessageQueue,
}

/// Creates the three structures of an [`AllRoot`] pool in one transaction.
pub fn create_all(pool: &Pool<AllRoot>) -> Result<()> {
    transaction(pool, |tx| {
        let (hash, tree, queue) = (
            PHashMap::new(tx)?,
            PBTreeMap::new(tx)?,
            MessageQueue::create(tx)?,
        );
        let mut root = tx.root_mut();
        root.set_hash(hash)?;
        root.set_tree(tree)?;
        Ok(root.set_queue(queue)?)
    })
}
