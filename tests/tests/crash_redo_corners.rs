//! Crash tests of the corners of the redo commit protocol (`pmem_core::log`, steps 3 to 8):
//!
//! - space that a committed log's `DATA` entries cover, freed (through a transaction, through
//!   [`Pool::free`] where the newest log covers it, and through [`Pool::free`]'s single store
//!   where only the previous log does) and reused, by an object of the same size class or by a
//!   log that grows into heap chunks: recovery must never write the old bytes over the new;
//! - a commit that fails while extending its log into the heap (the disk reservation or a fence
//!   fails): the transaction is absent after reopening, the pool goes on or is poisoned as
//!   `pmem_core::log` documents;
//! - aborts interleaved with commits that write the same objects: an abort costs no fence and
//!   leaves nothing a later commit logs or a recovery writes back.
//!
//! Every transaction of a workload writes its step number into the root; the check reopens each
//! crash image, reads the step, and requires the whole state to be that step's (the last one
//! that returned, or the one in flight), the deep check to find no problem and no object to be
//! unreachable (a leak) except one unpublished and not yet freed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use pmem_core::crash::{CrashInfo, CrashReport, CrashTest, ImageKind};
use pmem_core::inspect::Inspection;
use pmem_core::{check, Error, FaultPlan, PPtr, PSlice, Persistent, Pool, Result, Tx};

const BLOB_WORDS: usize = 32;
/// 64 KiB: four chunks, the smallest block a log extension asks for.
const PAGE_WORDS: usize = 8192;
/// 96 KiB: rewritten whole, more than a log slot holds, so its commit extends the log.
const BIG_WORDS: u64 = 12_288;
/// The words of a `Page` written by the steps that change only its edges.
const EDGE: usize = 256;

#[derive(Persistent)]
#[repr(C)]
struct Root {
    step: u64,
    obj: PPtr<Blob>,
    keep: PPtr<Blob>,
    page: PPtr<Page>,
    big: PSlice<u64>,
    guard: PSlice<u64>,
}

/// An object of a size class (256 bytes).
#[derive(Persistent)]
#[repr(C)]
struct Blob {
    words: [u64; BLOB_WORDS],
}

/// A large object: whole chunks.
#[derive(Persistent)]
#[repr(C)]
struct Page {
    words: [u64; PAGE_WORDS],
}

/// Word `i` of everything written with `tag`: no two tags share a word.
fn word(tag: u64, i: usize) -> u64 {
    (tag << 40) | (i as u64) | 0x5a00_0000
}

fn blob(tag: u64) -> Blob {
    Blob {
        words: std::array::from_fn(|i| word(tag, i)),
    }
}

/// What the pool holds after a step.
#[derive(Debug, Clone, Copy, Default)]
struct Expect {
    /// Tag of the blob `root.obj` points at.
    obj: Option<u64>,
    /// Tag of the blob `root.keep` points at.
    keep: Option<u64>,
    /// Tag of the page's words, and of its edges if they were written apart.
    page: Option<(u64, Option<u64>)>,
    /// Tag of the big slice's words.
    big: Option<u64>,
    /// An object was unpublished and may not be freed yet ([`Pool::free`] is a step of its own).
    may_leak: bool,
}

/// The expected state of each step (index = step number; step 0 is the empty pool).
type Model = Vec<Expect>;

/// Steps that returned, shared by the workload and the check (the check runs inside the
/// workload's fences, on its thread).
#[derive(Default)]
struct Progress {
    done: AtomicU64,
}

impl Progress {
    fn done(&self) -> u64 {
        self.done.load(Ordering::SeqCst)
    }
}

/// Runs `f` as transaction `step` (which also writes the step number) and records its return.
fn step(
    pool: &Pool<Root>,
    progress: &Progress,
    n: u64,
    f: impl FnOnce(&mut Tx<'_, Root>) -> Result<()>,
) -> Result<()> {
    pool.transaction(|tx| {
        f(tx)?;
        tx.root_mut().set_step(n)
    })?;
    progress.done.store(n, Ordering::SeqCst);
    Ok(())
}

fn compare_blob(
    what: &str,
    got: Option<&Blob>,
    want: Option<u64>,
) -> std::result::Result<(), String> {
    match (got, want) {
        (None, None) => Ok(()),
        (Some(b), Some(tag)) => match (0..BLOB_WORDS).find(|&i| b.words[i] != word(tag, i)) {
            None => Ok(()),
            Some(i) => Err(format!(
                "{what}: word {i} is {:#x}, not tag {tag}'s {:#x}",
                b.words[i],
                word(tag, i)
            )),
        },
        (got, want) => Err(format!(
            "{what}: {} where tag {want:?} was expected",
            if got.is_some() { "an object" } else { "null" }
        )),
    }
}

fn compare_words(
    what: &str,
    got: &[u64],
    tag_of: impl Fn(usize) -> u64,
) -> std::result::Result<(), String> {
    match (0..got.len()).find(|&i| got[i] != word(tag_of(i), i)) {
        None => Ok(()),
        Some(i) => Err(format!(
            "{what}: word {i} of {} is {:#x}, not {:#x} (tag {})",
            got.len(),
            got[i],
            word(tag_of(i), i),
            tag_of(i)
        )),
    }
}

/// The check of every recovered image: the step is the last that returned or the one in flight,
/// the state is that step's, the deep check is clean and nothing leaked.
fn check_state(pool: &Pool<Root>, model: &Model, done: u64) -> std::result::Result<(), String> {
    let s = pool.read(|r| r.root().step).map_err(|e| e.to_string())?;
    if s != done && s != done + 1 {
        return Err(format!("step {s} after {done} steps returned"));
    }
    let want = model
        .get(s as usize)
        .ok_or_else(|| format!("step {s} is no step of the workload"))?;
    pool.read(|r| -> std::result::Result<(), String> {
        let root = r.root();
        let get_blob = |p: PPtr<Blob>| {
            p.non_null()
                .map(|p| r.get(p).map_err(|e| format!("root blob: {e}")))
                .transpose()
        };
        compare_blob("root.obj", get_blob(root.obj)?, want.obj)
            .map_err(|e| format!("step {s}: {e}"))?;
        compare_blob("root.keep", get_blob(root.keep)?, want.keep)
            .map_err(|e| format!("step {s}: {e}"))?;
        match (root.page.is_null(), want.page) {
            (true, None) => {}
            (false, Some((base, edges))) => {
                let page = r.get(root.page).map_err(|e| format!("root.page: {e}"))?;
                compare_words("root.page", &page.words, |i| {
                    let edge = !(EDGE..PAGE_WORDS - EDGE).contains(&i);
                    edges.filter(|_| edge).unwrap_or(base)
                })
                .map_err(|e| format!("step {s}: {e}"))?;
            }
            (null, want) => return Err(format!("step {s}: root.page null {null}, want {want:?}")),
        }
        match (root.big.is_null(), want.big) {
            (true, None) => {}
            (false, Some(tag)) => {
                let big = r
                    .get_slice(root.big)
                    .map_err(|e| format!("root.big: {e}"))?;
                compare_words("root.big", big, |_| tag).map_err(|e| format!("step {s}: {e}"))?;
            }
            (null, want) => return Err(format!("step {s}: root.big null {null}, want {want:?}")),
        }
        Ok(())
    })
    .map_err(|e| e.to_string())??;
    let report = check::check(pool);
    if !report.is_healthy() {
        return Err(format!("step {s}: deep check: {report}"));
    }
    let leaked = report.unreachable.len();
    if leaked > usize::from(want.may_leak) {
        return Err(format!(
            "step {s}: {leaked} unreachable objects at {:x?}",
            report.unreachable
        ));
    }
    Ok(())
}

/// Runs `workload` under `test` with the model's check.
fn run(
    test: CrashTest,
    model: Model,
    workload: impl FnOnce(&Pool<Root>, &Progress) -> Result<()>,
    extra: impl Fn(&Pool<Root>, &CrashInfo, u64) -> std::result::Result<(), String>
        + Send
        + Sync
        + 'static,
) -> CrashReport {
    let progress = Arc::new(Progress::default());
    let seen = Arc::clone(&progress);
    test.run::<Root>(
        move |pool| workload(pool, &progress),
        move |pool, at| {
            let done = seen.done();
            check_state(pool, &model, done)?;
            extra(pool, at, done)
        },
    )
}

fn no_extra(_: &Pool<Root>, _: &CrashInfo, _: u64) -> std::result::Result<(), String> {
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 1. Replay of an older log over reused memory.

/// How the object whose bytes a committed log rewrites is freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FreeBy {
    /// `tx.free` in a transaction that also writes the object (its writes must not be logged).
    TxFree,
    /// [`Pool::free`] right after a transaction that wrote the object: the newest log covers
    /// it, so the single store is refused and a logged transaction frees it.
    PoolFreeCovered,
    /// [`Pool::free`] when only the previous log covers it: the single store.
    PoolFreeDirect,
}

/// The step 3 of the reuse workloads: unpublish `target` (written by step 2) and free it.
fn free_step(
    pool: &Pool<Root>,
    progress: &Progress,
    by: FreeBy,
    unpublish: impl Fn(&mut Tx<'_, Root>) -> Result<()>,
    write: impl Fn(&mut Tx<'_, Root>) -> Result<()>,
    free_tx: impl Fn(&mut Tx<'_, Root>) -> Result<()>,
    free_now: impl FnOnce() -> Result<()>,
) -> Result<()> {
    match by {
        FreeBy::TxFree => step(pool, progress, 3, |tx| {
            write(tx)?;
            unpublish(tx)?;
            free_tx(tx)
        }),
        FreeBy::PoolFreeCovered => {
            step(pool, progress, 3, |tx| {
                write(tx)?;
                unpublish(tx)
            })?;
            free_now()
        }
        FreeBy::PoolFreeDirect => {
            step(pool, progress, 3, unpublish)?;
            free_now()
        }
    }
}

fn reuse_model(by: FreeBy) -> Model {
    let mut m = vec![Expect::default()];
    m.push(Expect {
        obj: Some(1),
        keep: Some(1),
        ..Expect::default()
    });
    m.push(Expect {
        obj: Some(2),
        keep: Some(1),
        ..Expect::default()
    });
    m.push(Expect {
        keep: Some(1),
        may_leak: by != FreeBy::TxFree,
        ..Expect::default()
    });
    m.push(Expect {
        obj: Some(4),
        keep: Some(1),
        ..Expect::default()
    });
    for k in 5..=8 {
        m.push(Expect {
            obj: Some(4),
            keep: Some(k),
            ..Expect::default()
        });
    }
    m
}

/// Writes blob X (steps 1, 2), frees it (step 3), allocates a blob of the same class that must
/// land on X (step 4), then rewrites another blob (steps 5 to 8) so that step 4's log becomes the
/// previous one.
fn reuse_by_alloc(pool: &Pool<Root>, progress: &Progress, by: FreeBy) -> Result<()> {
    step(pool, progress, 1, |tx| {
        let keep = tx.alloc(blob(1))?;
        let obj = tx.alloc(blob(1))?;
        tx.root_mut().set_keep(keep)?;
        tx.root_mut().set_obj(obj)
    })?;
    let x = pool.read(|r| r.root().obj)?;
    step(pool, progress, 2, |tx| tx.write(x, blob(2)))?;
    free_step(
        pool,
        progress,
        by,
        |tx| tx.root_mut().set_obj(PPtr::null()),
        |tx| tx.write(x, blob(3)),
        |tx| tx.free(x),
        || {
            let before = pool.stats().flush;
            pool.free(x)?;
            // Log lines are streamed here (the crash test's default): the free wrote a log
            // exactly when the newest log covered the blob.
            let logged = pool.stats().flush.since(&before).lines_streamed > 0;
            assert_eq!(
                logged,
                by == FreeBy::PoolFreeCovered,
                "{by:?}: the free's path"
            );
            Ok(())
        },
    )?;
    let mut reused = PPtr::null();
    step(pool, progress, 4, |tx| {
        reused = tx.alloc(blob(4))?;
        tx.root_mut().set_obj(reused)
    })?;
    assert_eq!(reused, x, "the new blob reuses the freed one's slot");
    let keep = pool.read(|r| r.root().keep)?;
    for k in 5..=8 {
        step(pool, progress, k, |tx| tx.write(keep, blob(k)))?;
    }
    Ok(())
}

fn extension_model() -> Model {
    let mut m = vec![Expect::default()];
    m.push(Expect {
        page: Some((1, None)),
        big: Some(1),
        ..Expect::default()
    });
    m.push(Expect {
        page: Some((1, Some(2))),
        big: Some(1),
        ..Expect::default()
    });
    m.push(Expect {
        big: Some(1),
        may_leak: true,
        ..Expect::default()
    });
    for _ in 4..=7 {
        m.push(Expect {
            big: Some(4),
            ..Expect::default()
        });
    }
    m
}

fn write_edges(tx: &mut Tx<'_, Root>, page: PPtr<Page>, tag: u64) -> Result<()> {
    let p = tx.get_mut(page)?;
    for i in (0..EDGE).chain(PAGE_WORDS - EDGE..PAGE_WORDS) {
        p.words[i] = word(tag, i);
    }
    Ok(())
}

fn fill(tx: &mut Tx<'_, Root>, big: PSlice<u64>, tag: u64) -> Result<()> {
    for (i, w) in tx.get_slice_mut(big)?.iter_mut().enumerate() {
        *w = word(tag, i);
    }
    Ok(())
}

/// Where step 4's log extension went, for the test to look at: the page's offset, and the
/// durability points reached when step 4 returned.
#[derive(Default)]
struct ExtensionProbe {
    page: AtomicU64,
    after_step_4: AtomicU64,
}

/// Writes page X (a large object of four chunks, between the big slice and a guard, so its chunks
/// stay a free block of their own), frees it, then rewrites the 96 KiB slice: the commit's log
/// outgrows its slot and continues in the smallest free block that fits, X's chunks.
fn reuse_by_log(
    pool: &Pool<Root>,
    progress: &Progress,
    by: FreeBy,
    plan: &FaultPlan,
    probe: &ExtensionProbe,
) -> Result<()> {
    step(pool, progress, 1, |tx| {
        let big = tx.alloc_slice_zeroed::<u64>(BIG_WORDS)?;
        fill(tx, big, 1)?;
        let page = tx.alloc_zeroed::<Page>()?;
        for (i, w) in tx.get_mut(page)?.words.iter_mut().enumerate() {
            *w = word(1, i);
        }
        let guard = tx.alloc_slice_zeroed::<u64>(3000)?;
        tx.root_mut().set_big(big)?;
        tx.root_mut().set_page(page)?;
        tx.root_mut().set_guard(guard)
    })?;
    let (x, big) = pool.read(|r| (r.root().page, r.root().big))?;
    probe.page.store(x.offset(), Ordering::SeqCst);
    step(pool, progress, 2, |tx| write_edges(tx, x, 2))?;
    free_step(
        pool,
        progress,
        by,
        |tx| tx.root_mut().set_page(PPtr::null()),
        |tx| write_edges(tx, x, 3),
        |tx| tx.free(x),
        || pool.free(x),
    )?;
    step(pool, progress, 4, |tx| fill(tx, big, 4))?;
    assert!(pool.stats().heap.log_bytes > 0, "step 4's log was extended");
    probe.after_step_4.store(plan.points(), Ordering::SeqCst);
    for k in 5..=7 {
        step(pool, progress, k, |_| Ok(()))?;
    }
    Ok(())
}

fn reuse_test() -> CrashTest {
    CrashTest::new(4 << 20).random_subsets(4).max_failures(4)
}

fn blob_reuse(by: FreeBy) {
    let report = run(
        reuse_test().crash_during_recovery(true),
        reuse_model(by),
        move |pool, progress| reuse_by_alloc(pool, progress, by),
        no_extra,
    );
    eprintln!("{by:?}: {report}");
    report.assert_ok();
}

#[test]
fn a_blob_freed_by_a_transaction_that_wrote_it_is_reused_and_never_overwritten_by_a_replay() {
    blob_reuse(FreeBy::TxFree);
}

#[test]
fn a_blob_the_newest_log_covers_freed_outside_a_transaction_is_reused_safely() {
    blob_reuse(FreeBy::PoolFreeCovered);
}

#[test]
fn a_blob_only_the_previous_log_covers_freed_by_a_single_store_is_reused_safely() {
    blob_reuse(FreeBy::PoolFreeDirect);
}

fn log_reuse(by: FreeBy) {
    let plan = FaultPlan::new();
    let probe = Arc::new(ExtensionProbe::default());
    let (p, w) = (plan.clone(), Arc::clone(&probe));
    let test = reuse_test()
        .crash_during_recovery(true)
        .fault_plan(plan.clone());
    let report = run(
        test.clone(),
        extension_model(),
        move |pool, progress| reuse_by_log(pool, progress, by, &p, &w),
        no_extra,
    );
    eprintln!("{by:?}: {report}");
    report.assert_ok();
    // The workload reached the reuse: right after step 4, the freed page's chunks hold step 4's
    // log, whose redo entries carry the slice's new words.
    let fence = probe.after_step_4.load(Ordering::SeqCst);
    let page = probe.page.load(Ordering::SeqCst);
    let (p, w) = (FaultPlan::new(), Arc::new(ExtensionProbe::default()));
    let image = test
        .fault_plan(p.clone())
        .image_at::<Root>(
            |pool| reuse_by_log(pool, &Progress::default(), by, &p, &w),
            fence,
            ImageKind::Everything,
        )
        .expect("the image after step 4");
    let inspection = Inspection::from_image(image).expect("inspect");
    let bytes = inspection.bytes(page, (PAGE_WORDS * 8) as u64).unwrap();
    // Redo entries are byte-granular (only the changed runs are logged), so the words of the
    // slice sit at any alignment in them.
    let words: std::collections::HashSet<u64> = bytes
        .windows(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let new_words = (0..BIG_WORDS as usize)
        .filter(|&i| words.contains(&word(4, i)))
        .count();
    assert!(
        new_words > 1000,
        "{by:?}: the freed page at {page:#x} holds {new_words} of step 4's words: its log did not \
         extend into it"
    );
}

#[test]
fn a_page_freed_by_a_transaction_that_wrote_it_becomes_a_log_extension_safely() {
    log_reuse(FreeBy::TxFree);
}

#[test]
fn a_page_the_newest_log_covers_freed_outside_a_transaction_becomes_a_log_extension_safely() {
    log_reuse(FreeBy::PoolFreeCovered);
}

#[test]
fn a_page_only_the_previous_log_covers_freed_by_a_single_store_becomes_a_log_extension_safely() {
    log_reuse(FreeBy::PoolFreeDirect);
}

// ---------------------------------------------------------------------------------------------
// 2. A commit that fails while extending its log.

/// 880 KiB, rewritten whole: its commit's log continues in about 52 chunks of heap beyond the
/// first 64 (the disk reserved when the slice was allocated), so the extension reserves disk.
const HUGE_WORDS: u64 = 110_000;

/// Where the commit of the failing transaction fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// The disk reservation of its log extension (`ENOSPC`): the commit aborts, retires the log
    /// it began, and the pool goes on.
    Reservation,
    /// Its commit fence: the outcome is unknown and the pool is poisoned.
    CommitFence,
    /// The reservation, then the abort's fence (which makes the last commit's metadata durable
    /// before the retire): poisoned, the begun log left for recovery.
    ReservationThenAbortFence,
    /// The reservation, then the retire's fence: poisoned.
    ReservationThenRetireFence,
    /// Not the commit: inside the same transaction, an allocation that needs disk finds it
    /// full, and the closure aborts with the large write set it holds. No log was begun.
    AllocThenUserAborts,
}

fn failure_model() -> Model {
    let mut m = vec![Expect::default()];
    // Step 2 is the failing transaction's for `CommitFence` (whose outcome is unknown); the
    // others give it number 99, which no image may show.
    m.push(Expect {
        big: Some(1),
        ..Expect::default()
    });
    m.push(Expect {
        big: Some(2),
        ..Expect::default()
    });
    m.push(Expect {
        big: Some(3),
        ..Expect::default()
    });
    m.push(Expect {
        big: Some(3),
        ..Expect::default()
    });
    m
}

fn failing_commit(
    pool: &Pool<Root>,
    progress: &Progress,
    plan: &FaultPlan,
    how: Failure,
) -> Result<()> {
    step(pool, progress, 1, |tx| {
        let big = tx.alloc_slice_zeroed::<u64>(HUGE_WORDS)?;
        fill(tx, big, 1)?;
        tx.root_mut().set_big(big)
    })?;
    let big = pool.read(|r| r.root().big)?;
    let before = pool.stats().heap;
    if how != Failure::CommitFence {
        plan.fail_reservations_from(plan.reservations());
    }
    match how {
        Failure::Reservation | Failure::AllocThenUserAborts => {}
        Failure::CommitFence | Failure::ReservationThenAbortFence => {
            plan.fail_at(plan.points());
        }
        Failure::ReservationThenRetireFence => {
            plan.fail_at(plan.points() + 1);
        }
    }
    let n = if how == Failure::CommitFence { 2 } else { 99 };
    let fences = pool.stats().flush.fences;
    let result = pool.transaction(|tx| {
        fill(tx, big, 2)?;
        tx.root_mut().set_step(n)?;
        if how == Failure::AllocThenUserAborts {
            let more = tx.alloc_slice_zeroed::<u64>(HUGE_WORDS);
            assert!(
                matches!(&more, Err(Error::Io { source, .. }) if source.raw_os_error() == Some(libc::ENOSPC)),
                "{more:?}"
            );
            return Err(tx.abort());
        }
        Ok(())
    });
    plan.fail_reservations_from(u64::MAX);
    match (how, &result) {
        (Failure::CommitFence, Err(Error::CommitOutcomeUnknown { .. })) => {}
        (Failure::AllocThenUserAborts, Err(Error::Aborted { .. })) => {}
        (_, Err(Error::Io { source, .. })) if source.raw_os_error() == Some(libc::ENOSPC) => {}
        _ => panic!("{how:?}: the failing commit returned {result:?}"),
    }
    assert!(plan.injected() > 0);
    // Memory shows the state before it, and the heap lent nothing it did not get back.
    assert_eq!(pool.read(|r| r.root().step)?, 1);
    let after = pool.stats().heap;
    if matches!(how, Failure::Reservation | Failure::AllocThenUserAborts) {
        // With `Reservation`, the log was begun (in its slot) before the extension failed: the
        // abort fenced and retired it. An abort with no log costs no fence.
        let spent = pool.stats().flush.fences - fences;
        assert_eq!(
            spent > 0,
            how == Failure::Reservation,
            "{how:?}: {spent} fences"
        );
        assert_eq!(
            (after.free_bytes, after.log_bytes, after.live_objects),
            (before.free_bytes, before.log_bytes, before.live_objects),
            "{how:?}: heap after the failed commit"
        );
        // Not poisoned: small and large transactions commit again.
        step(pool, progress, 2, |tx| fill(tx, big, 2))?;
        step(pool, progress, 3, |tx| fill(tx, big, 3))?;
        step(pool, progress, 4, |_| Ok(()))?;
    } else {
        let refused = pool.transaction(|tx| tx.root_mut().set_step(5));
        assert!(
            matches!(refused, Err(Error::Poisoned { .. })),
            "{how:?}: {refused:?}"
        );
    }
    Ok(())
}

fn commit_failure(how: Failure) {
    let plan = FaultPlan::new();
    let (p, seen) = (plan.clone(), plan.clone());
    let report = run(
        CrashTest::new(8 << 20)
            .random_subsets(4)
            .crash_during_recovery(true)
            .max_failures(4)
            .fault_plan(plan.clone()),
        failure_model(),
        move |pool, progress| failing_commit(pool, progress, &p, how),
        move |pool, at, _| {
            // A failed fence makes nothing durable: an image of only what fences made durable,
            // taken after it, shows the state before the failing transaction.
            let injected = seen.injected() > 0;
            let step = pool.read(|r| r.root().step).map_err(|e| e.to_string())?;
            if !matches!(how, Failure::Reservation | Failure::AllocThenUserAborts)
                && injected
                && at.image == ImageKind::NothingPending
                && at.recovery.is_none()
                && step != 1
            {
                return Err(format!(
                    "step {step} in the nothing-pending image after the failure"
                ));
            }
            Ok(())
        },
    );
    eprintln!("{how:?}: {report}");
    report.assert_ok();
}

#[test]
fn a_commit_whose_log_extension_finds_the_disk_full_aborts_and_the_pool_goes_on() {
    commit_failure(Failure::Reservation);
}

#[test]
fn a_commit_of_an_extended_log_whose_fence_fails_is_all_or_nothing_and_poisons() {
    commit_failure(Failure::CommitFence);
}

#[test]
fn a_failed_log_extension_whose_abort_fence_fails_poisons_and_recovers_to_before() {
    commit_failure(Failure::ReservationThenAbortFence);
}

#[test]
fn a_failed_log_extension_whose_retire_fence_fails_poisons_and_recovers_to_before() {
    commit_failure(Failure::ReservationThenRetireFence);
}

// ---------------------------------------------------------------------------------------------
// 3. Aborts between commits that write the same objects.

/// The ways a transaction ends without committing.
#[derive(Debug, Clone, Copy)]
enum AbortBy {
    /// `Err(tx.abort())`.
    Requested,
    /// The closure's own error type.
    UserError,
    /// A panic in the closure.
    Panic,
    /// A nested transaction fails and the closure returns `Ok`.
    NestedFailed,
}

#[derive(Debug)]
struct Refused;

impl From<Error> for Refused {
    fn from(_: Error) -> Refused {
        Refused
    }
}

const ROUNDS: u64 = 8;

fn abort_model() -> Model {
    let mut m = vec![Expect::default()];
    m.push(Expect {
        obj: Some(1),
        keep: Some(1),
        big: Some(1),
        ..Expect::default()
    });
    for k in 2..2 + ROUNDS {
        m.push(Expect {
            obj: Some(k),
            keep: Some(1),
            big: Some(1),
            ..Expect::default()
        });
    }
    m
}

/// What every aborted transaction does: rewrites what the commits around it write (the blob
/// and the step), what they do not (the kept blob, the slice), allocates, and frees.
fn doomed_writes(tx: &mut Tx<'_, Root>, round: u64) -> Result<()> {
    let (obj, keep, big) = (tx.root().obj, tx.root().keep, tx.root().big);
    tx.write(obj, blob(900 + round))?;
    tx.write(keep, blob(900 + round))?;
    fill(tx, big, 900 + round)?;
    let fresh = tx.alloc(blob(900))?;
    tx.root_mut().set_obj(fresh)?;
    tx.free(keep)?;
    tx.root_mut().set_step(900 + round)
}

fn aborts_between_commits(pool: &Pool<Root>, progress: &Progress) -> Result<()> {
    step(pool, progress, 1, |tx| {
        let obj = tx.alloc(blob(1))?;
        let keep = tx.alloc(blob(1))?;
        let big = tx.alloc_slice_zeroed::<u64>(BIG_WORDS)?;
        fill(tx, big, 1)?;
        tx.root_mut().set_obj(obj)?;
        tx.root_mut().set_keep(keep)?;
        tx.root_mut().set_big(big)
    })?;
    let obj = pool.read(|r| r.root().obj)?;
    let kinds = [
        AbortBy::Requested,
        AbortBy::UserError,
        AbortBy::Panic,
        AbortBy::NestedFailed,
    ];
    for (round, k) in (2..2 + ROUNDS).enumerate() {
        let how = kinds[round % kinds.len()];
        let round = round as u64;
        let fences = pool.stats().flush.fences;
        match how {
            AbortBy::Requested => {
                let r = pool.transaction(|tx| {
                    doomed_writes(tx, round)?;
                    Err::<(), _>(tx.abort())
                });
                assert!(matches!(r, Err(Error::Aborted { .. })), "{r:?}");
            }
            AbortBy::UserError => {
                let r = pool.transaction(|tx| -> std::result::Result<(), Refused> {
                    doomed_writes(tx, round)?;
                    Err(Refused)
                });
                assert!(matches!(r, Err(Refused)));
            }
            AbortBy::Panic => {
                let r = catch_unwind(AssertUnwindSafe(|| {
                    pool.transaction(|tx| -> Result<()> {
                        doomed_writes(tx, round)?;
                        panic!("the closure panics after its writes")
                    })
                }));
                assert!(r.is_err());
            }
            AbortBy::NestedFailed => {
                let r = pool.transaction(|tx| {
                    let inner = tx.transaction(|tx| {
                        doomed_writes(tx, round)?;
                        Err::<(), _>(Refused)
                    });
                    assert!(inner.is_err());
                    Ok::<(), Error>(())
                });
                assert!(matches!(r, Err(Error::Aborted { .. })), "{r:?}");
            }
        }
        assert_eq!(
            pool.stats().flush.fences,
            fences,
            "{how:?}: an abort before the commit began costs no fence"
        );
        assert_eq!(pool.read(|r| r.root().step)?, k - 1, "{how:?}: the step");
        assert_eq!(pool.read(|r| r.root().obj)?, obj, "{how:?}: the blob");
        // The next commit writes the same blob and the step again, and nothing else.
        step(pool, progress, k, |tx| tx.write(obj, blob(k)))?;
    }
    Ok(())
}

#[test]
fn aborts_between_commits_cost_no_fence_and_leave_nothing_to_replay() {
    let report = run(
        CrashTest::new(4 << 20)
            .random_subsets(4)
            .crash_during_recovery(true)
            .max_failures(4),
        abort_model(),
        aborts_between_commits,
        no_extra,
    );
    eprintln!("aborts: {report}");
    report.assert_ok();
}

#[test]
fn a_transaction_with_a_large_write_set_that_finds_the_disk_full_aborts_without_a_fence() {
    commit_failure(Failure::AllocThenUserAborts);
}
