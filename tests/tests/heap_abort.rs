//! Abort restores the allocator exactly, whatever mix of reservations, run releases and log
//! extensions into the heap came before it.

use pmem_core::check::check;
use pmem_core::{Error, PPtr, PSlice, Persistent, Pool};
use pmem_tests::rng::Rng;

#[derive(Persistent)]
#[repr(C)]
struct Root {
    big: PSlice<u64>,
    other: PPtr<Mid>,
}

/// In the 20 KiB size class: its runs are 10 chunks long.
#[derive(Persistent)]
#[repr(C)]
struct Mid {
    words: [u64; 2500],
}

/// Allocates slices of decreasing sizes until not even one word fits; returns how many.
fn fill(pool: &Pool<Root>) -> u64 {
    let mut n = 0;
    let mut words = 1u64 << 20;
    while words > 0 {
        match pool.transaction(|tx| tx.alloc_slice_zeroed::<u64>(words).map(|_| ())) {
            Ok(()) => n += 1,
            Err(Error::OutOfSpace { .. }) => words /= 2,
            Err(e) => panic!("fill: {e}"),
        }
    }
    n
}

/// A failed allocation gives back an empty run; a large log then extends into that run's chunks;
/// the abort must put the run back and leave a pool every later transaction can use.
#[test]
fn abort_after_a_failed_allocation_and_a_log_in_the_released_run() {
    let pool = Pool::<Root>::builder().create_simulated(4 << 20).unwrap();
    // 128 KiB to log later, and an empty run of 10 chunks (kept: its bin allocates from it).
    pool.transaction(|tx| {
        let big = tx.alloc_slice_zeroed::<u64>(16 * 1024)?;
        tx.root_mut().set_big(big)
    })
    .unwrap();
    // Ten chunks held by a placeholder while the pool fills, then given to a run of `Mid`.
    let placeholder = pool
        .transaction(|tx| tx.alloc_slice_zeroed::<u64>(10 * 2048))
        .unwrap();
    fill(&pool);
    pool.transaction(|tx| tx.free_slice(placeholder)).unwrap();
    pool.transaction(|tx| {
        let mid = tx.alloc_zeroed::<Mid>()?;
        tx.free(mid)
    })
    .unwrap();
    // Nothing is free but the chunks kept for logs.
    let full = pool.stats().heap;
    assert_eq!(full.free_bytes, full.log_reserve_bytes, "{full:?}");
    let before = pool.stats().heap;
    let result = pool.transaction(|tx| {
        // Releases the empty run, then fails: 10 chunks are not 1 MiB.
        let failed = tx.alloc_slice_zeroed::<u64>(128 * 1024);
        assert!(
            matches!(failed, Err(Error::OutOfSpace { .. })),
            "{failed:?}"
        );
        let big = tx.root().big;
        for (i, w) in tx.get_slice_mut(big)?.iter_mut().enumerate() {
            *w = i as u64;
        }
        Err::<(), _>(tx.abort())
    });
    assert!(matches!(result, Err(Error::Aborted { .. })), "{result:?}");
    let after = pool.stats().heap;
    assert_eq!(after.live_objects, before.live_objects);
    assert_eq!(after.bytes_in_use, before.bytes_in_use);
    assert_eq!(after.classes, before.classes);
    let report = check(&pool);
    assert!(report.is_healthy(), "{report}");
    // Later transactions work, and the run is there to allocate from.
    pool.transaction(|tx| tx.alloc_zeroed::<Mid>().map(|_| ()))
        .unwrap();
    let report = check(&pool);
    assert!(report.is_healthy(), "{report}");
}

/// The transactions of [`abort_after_a_failed_allocation_and_a_log_in_the_released_run`] on a
/// 1 MiB pool, its abort included; returns the abort's error if it is not `Aborted`.
fn released_run_then_large_log_then_abort(pool: &Pool<Root>) -> pmem_core::Result<()> {
    pool.transaction(|tx| {
        let big = tx.alloc_slice_zeroed::<u64>(16 * 1024)?;
        tx.root_mut().set_big(big)
    })?;
    let placeholder = pool.transaction(|tx| tx.alloc_slice_zeroed::<u64>(10 * 2048))?;
    fill(pool);
    pool.transaction(|tx| tx.free_slice(placeholder))?;
    pool.transaction(|tx| {
        let mid = tx.alloc_zeroed::<Mid>()?;
        tx.free(mid)
    })?;
    let result = pool.transaction(|tx| {
        let _ = tx.alloc_slice_zeroed::<u64>(128 * 1024);
        let big = tx.root().big;
        for (i, w) in tx.get_slice_mut(big)?.iter_mut().enumerate() {
            *w = i as u64 + 1;
        }
        Err::<(), _>(tx.abort())
    });
    match result {
        Err(Error::Aborted { .. }) => {}
        other => return other,
    }
    pool.transaction(|tx| tx.alloc_zeroed::<Mid>().map(|_| ()))
}

/// A crash at any fence of that workload, the abort's rollback and retirement included, leaves
/// a pool that passes the deep check with the large object's words as they were (all zero).
#[test]
fn a_crash_anywhere_in_an_abort_after_a_log_in_a_released_run_recovers() {
    let report = pmem_core::crash::CrashTest::new(1 << 20).run::<Root>(
        released_run_then_large_log_then_abort,
        |pool, _| {
            let report = check(pool);
            if !report.is_healthy() {
                return Err(report.to_string());
            }
            let big = pool.read(|r| r.root().big).unwrap();
            if big.is_null() {
                return Ok(());
            }
            let words = pool.read(|r| r.get_slice(big).map(|w| w.to_vec())).unwrap();
            let words = words.map_err(|e| e.to_string())?;
            match words.iter().position(|&w| w != 0) {
                None => Ok(()),
                Some(i) => Err(format!("word {i} of the large object is {}", words[i])),
            }
        },
    );
    report.assert_ok();
}

/// The randomized mix's pool: slots for objects, and a large object to log big writes into.
#[derive(Persistent)]
#[repr(C)]
struct MixRoot {
    items: [PSlice<u64>; ITEMS],
    scratch: PSlice<u64>,
}

const ITEMS: usize = 48;

/// Allocated and freed outside transactions, left unreachable.
#[derive(Persistent)]
#[repr(C)]
struct Blob {
    words: [u64; 4],
}
/// Words of the scratch object: 256 KiB, four times the fixed log slot.
const SCRATCH: u64 = 32 * 1024;

/// What the pool holds: per slot, the object's length and the tag in its first word.
type Model = [Option<(u64, u64)>; ITEMS];

/// A length in words: mostly small objects, some from the larger classes, some spanning up to
/// a third of the pool, so that it is often nearly full.
fn random_len(rng: &mut Rng) -> u64 {
    match rng.below(10) {
        0..=4 => 1 + rng.below(64),
        5..=7 => 64 + rng.below(4096),
        _ => 4096 + rng.below(128 * 1024),
    }
}

/// What the mix did, to show it reached the cases it is for.
#[derive(Debug, Default)]
struct Tally {
    failed_allocations: u32,
    large_logs: u32,
    aborts: u32,
    aborts_after_failure_and_large_log: u32,
}

/// Allocator state a transaction that aborts must leave exactly as it found.
fn allocator_state(pool: &Pool<MixRoot>) -> (u64, u64, u64, Vec<pmem_core::ClassStats>) {
    let s = pool.stats().heap;
    (
        s.bytes_in_use,
        s.live_objects,
        s.free_bytes + s.log_bytes,
        s.classes,
    )
}

/// The heap against a recount, and the pool against the model.
fn verify(pool: &Pool<MixRoot>, model: &Model, loose: u64, context: &str) {
    let report = check(pool);
    assert!(report.is_healthy(), "{context}: {report}");
    let s = pool.stats().heap;
    assert_eq!(
        s.heap_bytes,
        s.bytes_in_use + s.free_bytes + s.log_bytes,
        "{context}: every chunk is in use, free or lent to a log: {s:?}"
    );
    let live = model.iter().flatten().count() as u64 + 1 + loose;
    assert_eq!(s.live_objects, live, "{context}: {s:?}");
    assert_eq!(report.live_objects, live, "{context}");
    pool.read(|r| {
        for (i, expected) in model.iter().enumerate() {
            let item = r.root().items[i];
            match *expected {
                None => assert!(item.is_null(), "{context}: slot {i} should be empty"),
                Some((len, tag)) => {
                    let words = r.get_slice(item).unwrap();
                    assert_eq!(words.len() as u64, len, "{context}: slot {i}");
                    assert_eq!(words[0], tag, "{context}: slot {i}");
                }
            }
        }
    })
    .unwrap();
}

/// One transaction of random allocations (some failing on the nearly full pool), frees, small
/// and large writes (the large ones extend the log into the heap), committed or aborted.
/// Returns whether it committed; `model` is updated to match.
fn random_transaction(
    pool: &Pool<MixRoot>,
    rng: &mut Rng,
    model: &mut Model,
    tag: u64,
    tally: &mut Tally,
) -> bool {
    let commit = rng.below(3) != 0;
    let mut next = *model;
    let steps = 1 + rng.below(8);
    let mut plan = rng.clone();
    let (mut failed, mut large) = (false, false);
    let result = pool.transaction(|tx| {
        for _ in 0..steps {
            let i = plan.below(ITEMS as u64) as usize;
            match plan.below(5) {
                0 | 1 if next[i].is_none() => {
                    let len = random_len(&mut plan);
                    match tx.alloc_slice_zeroed::<u64>(len) {
                        Ok(item) => {
                            tx.get_slice_mut(item)?[0] = tag;
                            tx.root_mut().items_mut().set_at(i, item)?;
                            next[i] = Some((len, tag));
                        }
                        // A failed allocation: the transaction goes on.
                        Err(Error::OutOfSpace { .. }) => failed = true,
                        Err(e) => return Err(e),
                    }
                }
                0..=2 if next[i].is_some() => {
                    let item = tx.root().items[i];
                    tx.free_slice(item)?;
                    tx.root_mut().items_mut().set_at(i, PSlice::null())?;
                    next[i] = None;
                }
                3 => {
                    // A large log: up to the whole scratch object, well past the fixed slot.
                    let scratch = tx.root().scratch;
                    let words = 1 + plan.below(SCRATCH);
                    // Past the fixed 64 KiB slot.
                    large |= words > 8 * 1024;
                    let start = plan.below(SCRATCH - words + 1) as usize;
                    let s = tx.get_slice_mut(scratch)?;
                    for w in &mut s[start..start + words as usize] {
                        *w = w.wrapping_add(tag);
                    }
                }
                _ => {
                    if let Some((len, _)) = next[i] {
                        let item = tx.root().items[i];
                        let at = plan.below(len);
                        if at > 0 {
                            tx.edit_slice(item)?.set_at(at as usize, tag)?;
                        }
                    }
                }
            }
        }
        if commit {
            Ok(())
        } else {
            Err(tx.abort())
        }
    });
    *rng = plan;
    let committed = result.is_ok();
    tally.failed_allocations += failed as u32;
    tally.large_logs += large as u32;
    tally.aborts += !committed as u32;
    tally.aborts_after_failure_and_large_log += (!committed && failed && large) as u32;
    match result {
        Ok(()) => {
            *model = next;
            true
        }
        Err(Error::Aborted { .. }) => false,
        // The commit record itself found no log space: rolled back like an abort.
        Err(Error::OutOfSpace { .. }) => false,
        Err(e) => panic!("transaction {tag}: {e}"),
    }
}

/// Randomized: mixes of allocations, frees, failed allocations, large logs extending into the
/// heap, commits and aborts, plus single-object allocations and frees outside transactions,
/// on a small pool kept nearly full. After every step the heap passes the deep check and
/// matches a recount; an aborted transaction leaves the allocator exactly as it found it; the
/// pool is reopened from its file now and then. Seeded: `PMEM_MIX_SEED` replays one seed.
#[test]
fn random_mixes_of_allocations_frees_large_logs_and_aborts_keep_the_heap_exact() {
    let seeds: Vec<u64> = match std::env::var("PMEM_MIX_SEED") {
        Ok(s) => vec![s.parse().expect("PMEM_MIX_SEED is a number")],
        Err(_) => vec![1, 2, 3, 0x5eed],
    };
    let steps = 200;
    for seed in seeds {
        let dir = pmem_tests::shm_tempdir("heap-mix");
        let path = dir.path().join("mix.pool");
        let open = |create: bool| {
            let b = Pool::<MixRoot>::builder().force_pmem(true);
            if create {
                b.create(&path, 3 << 20)
            } else {
                b.open(&path)
            }
            .unwrap_or_else(|e| panic!("seed {seed}: open: {e}"))
        };
        let mut pool = open(true);
        pool.transaction(|tx| {
            let scratch = tx.alloc_slice_zeroed::<u64>(SCRATCH)?;
            tx.root_mut().set_scratch(scratch)
        })
        .unwrap();
        let mut rng = Rng(seed);
        let mut model: Model = [None; ITEMS];
        let mut loose: Vec<PPtr<Blob>> = Vec::new();
        let mut tally = Tally::default();
        for step in 0..steps {
            let context = format!("seed {seed}, step {step}");
            let tag = seed << 32 | step;
            let before = allocator_state(&pool);
            match rng.below(10) {
                0 => {
                    // Outside a transaction: one allocation or one free, each a single step.
                    if loose.is_empty() || rng.below(2) == 0 {
                        match pool.alloc(Blob { words: [tag; 4] }) {
                            Ok(p) => loose.push(p),
                            Err(Error::OutOfSpace { .. }) => {
                                assert_eq!(allocator_state(&pool), before, "{context}")
                            }
                            Err(e) => panic!("{context}: {e}"),
                        }
                    } else {
                        let p = loose.swap_remove(rng.below(loose.len() as u64) as usize);
                        pool.free(p)
                            .unwrap_or_else(|e| panic!("{context}: free: {e}"));
                    }
                }
                1 if step % 40 == 39 => {
                    drop(pool);
                    pool = open(false);
                }
                _ => {
                    if !random_transaction(&pool, &mut rng, &mut model, tag, &mut tally) {
                        assert_eq!(
                            allocator_state(&pool),
                            before,
                            "{context}: the abort left the allocator changed"
                        );
                    }
                }
            }
            verify(&pool, &model, loose.len() as u64, &context);
        }
        println!("seed {seed}: {tally:?}");
        assert!(
            tally.aborts_after_failure_and_large_log > 0,
            "seed {seed} never aborted after a failed allocation and a large log: {tally:?}"
        );
    }
}

/// Two ways a committed transaction's data hash can cover an object that is then freed: the
/// transaction wrote it and freed it, or it wrote it and a single-store free followed.
#[derive(Clone, Copy, Debug)]
enum FreedAfterWrite {
    InTheSameTransaction,
    AtOnceAfterIt,
}

/// The next allocations reuse the freed object's slot at once. A crash at any fence after the
/// writing transaction returned must keep it committed (recovery checks a commit's hash
/// against the pool: the slot's new contents must not make it look torn).
fn reuse_after_write_and_free(how: FreedAfterWrite) {
    #[derive(Persistent)]
    #[repr(C)]
    struct One {
        node: PPtr<[u64; 4]>,
        count: u64,
    }
    let returned = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
    let mark = std::sync::Arc::clone(&returned);
    let report = pmem_core::crash::CrashTest::new(1 << 20)
        .random_subsets(16)
        .run::<One>(
            move |pool| {
                let node = pool.alloc_into([1u64; 4], |tx, p| tx.root_mut().set_node(p))?;
                // Keeps the run from being released when the node is freed.
                pool.alloc([0u64; 4])?;
                // A transaction with no heap ops, so no log recovery could replay holds one
                // on the node's bitmap word when it is freed.
                pool.transaction(|tx| tx.root_mut().set_count(0))?;
                pool.transaction(|tx| {
                    tx.get_mut(node)?[0] = 2;
                    if let FreedAfterWrite::InTheSameTransaction = how {
                        tx.free(node)?;
                    }
                    tx.root_mut().set_node(PPtr::null())?;
                    tx.root_mut().set_count(1)
                })?;
                if let FreedAfterWrite::AtOnceAfterIt = how {
                    pool.free(node)?;
                }
                mark.store(
                    pool.stats().flush.fences,
                    std::sync::atomic::Ordering::SeqCst,
                );
                let mut reused = false;
                for i in 0..4u64 {
                    reused |= pool.alloc([100 + i; 4])? == node;
                }
                assert!(reused, "the slot is reused");
                Ok(())
            },
            move |pool, info| {
                let report = check(pool);
                if !report.is_healthy() {
                    return Err(report.to_string());
                }
                let count = pool.read(|r| r.root().count).unwrap();
                let done = returned.load(std::sync::atomic::Ordering::SeqCst);
                if info.fence >= done && count != 1 {
                    return Err(format!(
                        "the committed transaction was undone: count {count}"
                    ));
                }
                Ok(())
            },
        );
    report.assert_ok();
}

#[test]
fn reusing_an_object_written_and_freed_by_the_last_commit_keeps_that_commit() {
    reuse_after_write_and_free(FreedAfterWrite::InTheSameTransaction);
}

#[test]
fn reusing_an_object_the_last_commit_wrote_keeps_that_commit() {
    reuse_after_write_and_free(FreedAfterWrite::AtOnceAfterIt);
}
