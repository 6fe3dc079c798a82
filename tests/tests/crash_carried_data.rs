//! Crash tests of data carried from commit to commit (`pmem_core::tx`'s deferred data): a range
//! one commit copied into place is not flushed at the next commit's fence when that commit logs
//! every byte of it again, so until some fence flushes it, only a log holds its value.
//!
//! The workload rewrites a counter and a buffer in consecutive transactions (carried), and
//! between them: a transaction that writes elsewhere only (whose fence must flush them), a
//! commit that logs the counter and the buffer anew and then fails on a full disk while its log
//! grows (its abort fences and retires its log: the carried range must be flushed by then), an
//! abort by the closure, and atomic allocations and frees (their fences flush everything).
//! Every image, at every fence, with nothing pending, everything, or seeded subsets, and
//! crashes during recovery, must recover to the state of the last step that returned or of the
//! one in flight.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use pmem_core::crash::CrashTest;
use pmem_core::{check, Error, FaultPlan, PSlice, Persistent, Pool, Result};

const BUF_WORDS: usize = 32;
/// More than a log slot holds: its commit extends the log into the heap.
const HUGE_WORDS: u64 = 110_000;

#[derive(Persistent)]
#[repr(C)]
struct Root {
    step: u64,
    counter: u64,
    buf: [u64; BUF_WORDS],
    other: u64,
    big: PSlice<u64>,
}

/// What a step leaves: the counter, the tags of the buffer's first `HEAD` words and of the
/// rest, and `other`.
type State = (u64, u64, u64, u64);

/// The words a partial rewrite changes.
const HEAD: usize = 4;

/// Word `i` of the buffer written with `tag` (tag 0: the zeroed buffer of a new pool).
fn buf_word(tag: u64, i: usize) -> u64 {
    if tag == 0 {
        0
    } else {
        (tag << 32) | i as u64
    }
}

/// Steps that returned.
#[derive(Default)]
struct Progress {
    done: AtomicU64,
}

fn step(
    pool: &Pool<Root>,
    progress: &Progress,
    n: u64,
    f: impl FnOnce(&mut pmem_core::Tx<'_, Root>) -> Result<()>,
) -> Result<()> {
    pool.transaction(|tx| {
        f(tx)?;
        tx.root_mut().set_step(n)
    })?;
    progress.done.store(n, Ordering::SeqCst);
    Ok(())
}

/// Rewrites the counter and the whole buffer with `tag`.
fn rewrite(tx: &mut pmem_core::Tx<'_, Root>, tag: u64) -> Result<()> {
    let mut root = tx.root_mut();
    root.set_counter(tag)?;
    root.set_buf(std::array::from_fn(|i| buf_word(tag, i)))
}

/// Rewrites the counter and the buffer's first `HEAD` words with `tag`: a range that overlaps
/// the last full rewrite's without containing it, which must not carry it.
fn rewrite_head(tx: &mut pmem_core::Tx<'_, Root>, tag: u64) -> Result<()> {
    tx.root_mut().set_counter(tag)?;
    let mut buf = tx.root().buf;
    for (i, w) in buf.iter_mut().enumerate().take(HEAD) {
        *w = buf_word(tag, i);
    }
    tx.root_mut().set_buf(buf)
}

/// The state after each step (index = step; step 0 is the empty pool).
fn model() -> Vec<State> {
    let mut m = vec![(0, 0, 0, 0), (1, 1, 1, 0)];
    for k in 2..=5 {
        m.push((k, k, k, 0));
    }
    m.push((5, 5, 5, 6)); // 6: `other` only
    m.push((7, 7, 7, 6));
    m.push((8, 8, 8, 6));
    m.push((9, 9, 8, 6)); // 9: the counter and the buffer's head only
                          // 10: after the failed commit and the closure's abort; an atomic alloc and free follow.
    m.push((10, 10, 10, 6));
    m.push((11, 11, 11, 6));
    m
}

fn workload(pool: &Pool<Root>, progress: &Progress, plan: &FaultPlan) -> Result<()> {
    step(pool, progress, 1, |tx| {
        let big = tx.alloc_slice_zeroed::<u64>(HUGE_WORDS)?;
        tx.root_mut().set_big(big)?;
        rewrite(tx, 1)
    })?;
    for k in 2..=5 {
        step(pool, progress, k, |tx| rewrite(tx, k))?;
    }
    step(pool, progress, 6, |tx| tx.root_mut().set_other(6))?;
    step(pool, progress, 7, |tx| rewrite(tx, 7))?;
    step(pool, progress, 8, |tx| rewrite(tx, 8))?;
    step(pool, progress, 9, |tx| rewrite_head(tx, 9))?;

    // Logs the counter and the buffer anew (below the heap, so logged first), then the big
    // slice, whose log extension finds the disk full: the commit fails and aborts.
    let big = pool.read(|r| r.root().big)?;
    plan.fail_reservations_from(plan.reservations());
    let failed = pool.transaction(|tx| {
        rewrite(tx, 99)?;
        for (i, w) in tx.get_slice_mut(big)?.iter_mut().enumerate() {
            *w = i as u64 + 1;
        }
        tx.root_mut().set_step(99)
    });
    plan.fail_reservations_from(u64::MAX);
    assert!(
        matches!(&failed, Err(Error::Io { source, .. }) if source.raw_os_error() == Some(libc::ENOSPC)),
        "{failed:?}"
    );
    assert_eq!(pool.read(|r| r.root().counter)?, 9);

    // The closure aborts after rewriting both.
    let aborted: std::result::Result<(), Error> = pool.transaction(|tx| {
        rewrite(tx, 98)?;
        Err(tx.abort())
    });
    assert!(matches!(aborted, Err(Error::Aborted { .. })), "{aborted:?}");

    step(pool, progress, 10, |tx| rewrite(tx, 10))?;
    let p = pool.alloc(7u64)?;
    pool.free(p)?;
    step(pool, progress, 11, |tx| rewrite(tx, 11))?;
    Ok(())
}

fn check_state(pool: &Pool<Root>, model: &[State], done: u64) -> std::result::Result<(), String> {
    let (s, got) = pool
        .read(|r| {
            let root = r.root();
            // The tag of words `range`, or u64::MAX if they do not all carry one.
            let tag_of = |range: std::ops::Range<usize>| {
                let tag = root.buf[range.start] >> 32;
                let same = range.clone().all(|i| root.buf[i] == buf_word(tag, i));
                if same {
                    tag
                } else {
                    u64::MAX
                }
            };
            let state = (
                root.counter,
                tag_of(0..HEAD),
                tag_of(HEAD..BUF_WORDS),
                root.other,
            );
            (root.step, state)
        })
        .map_err(|e| e.to_string())?;
    if s != done && s != done + 1 {
        return Err(format!("step {s} after {done} steps returned"));
    }
    let want = model
        .get(s as usize)
        .ok_or_else(|| format!("step {s} is no step of the workload"))?;
    if got != *want {
        return Err(format!(
            "step {s}: (counter, buffer head, buffer rest, other) {got:?}, want {want:?}"
        ));
    }
    let report = check::check(pool);
    if !report.is_healthy() {
        return Err(format!("step {s}: deep check: {report}"));
    }
    Ok(())
}

fn run(test: CrashTest) {
    let plan = FaultPlan::new();
    let progress = Arc::new(Progress::default());
    let seen = Arc::clone(&progress);
    let p = plan.clone();
    let model = model();
    let report = test.fault_plan(plan).run::<Root>(
        move |pool| workload(pool, &progress, &p),
        move |pool, _| check_state(pool, &model, seen.done.load(Ordering::SeqCst)),
    );
    eprintln!("{report}");
    report.assert_ok();
}

#[test]
fn carried_data_survives_a_crash_at_every_fence() {
    run(CrashTest::new(8 << 20)
        .random_subsets(6)
        .crash_during_recovery(true)
        .max_failures(4));
}

/// A rewrite of the counter alone costs its log line and no data line: the counter the last
/// commit wrote in place is carried by this commit's record, which holds the new bytes, not
/// flushed.
#[test]
fn a_rewritten_counter_is_carried_not_flushed() {
    let pool = Pool::<Root>::builder()
        .log_writes(pmem_core::LogWrites::Flushed)
        .create_simulated(8 << 20)
        .unwrap();
    pool.transaction(|tx| tx.root_mut().set_counter(1)).unwrap();
    let count = |f: &dyn Fn()| {
        let before = pool.stats().flush;
        f();
        pool.stats().flush.since(&before)
    };
    let rewrite = count(&|| pool.transaction(|tx| tx.root_mut().set_counter(2)).unwrap());
    // The commit record, which holds the counter's new bytes: one line.
    assert_eq!(
        (rewrite.lines_flushed, rewrite.fences),
        (1, 1),
        "{rewrite:?}"
    );
    // A commit that writes elsewhere flushes the counter's line too.
    let elsewhere = count(&|| pool.transaction(|tx| tx.root_mut().set_other(3)).unwrap());
    assert_eq!(
        (elsewhere.lines_flushed, elsewhere.fences),
        (2, 1),
        "{elsewhere:?}"
    );
}
