//! Abort restores the allocator exactly, whatever mix of reservations, run releases and log
//! extensions into the heap came before it.

use pmem_core::check::check;
use pmem_core::{Error, PPtr, PSlice, Persistent, Pool};

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
    assert_eq!(pool.stats().heap.bytes_in_use, pool.stats().heap.heap_bytes);
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
        Err::<(), _>(tx.abort("give up"))
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
