//! Transactions far beyond the fixed log: 64 MiB logged at once, 100,000 separate ranges,
//! 50,000 allocations, and a pool with no free space left. Each commits durably and aborts
//! exactly.
//!
//! The pools live on tmpfs (`/dev/shm`, if there is one) with cache-line flushes forced, so the
//! cost measured is the library's, not the page cache's.

use std::path::Path;
use std::time::Instant;

use pmem_core::check::check;
use pmem_core::{Error, PPtr, PSlice, Persistent, Pool};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    count: u64,
    big: PSlice<u64>,
    wide: PPtr<Wide>,
    head: PPtr<Node>,
    len: u64,
}

#[derive(Persistent)]
#[repr(C)]
struct Node {
    value: u64,
    next: PPtr<Node>,
}

const WIDE: usize = 200_000;

/// 1.6 MB of words, written element by element.
#[derive(Persistent)]
#[repr(C)]
struct Wide {
    words: [u64; WIDE],
}

const MIB: u64 = 1 << 20;

fn create(path: &Path, size: u64) -> Pool<Root> {
    Pool::<Root>::builder()
        .force_pmem(true)
        .create(path, size)
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()))
}

fn open(path: &Path) -> Pool<Root> {
    Pool::<Root>::builder()
        .force_pmem(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

fn assert_healthy(pool: &Pool<Root>) {
    let report = check(pool);
    assert!(report.is_healthy(), "{report}");
    assert!(report.unreachable.is_empty(), "{report}");
}

fn pattern(i: usize, round: u64) -> u64 {
    (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ round
}

/// The index of the first word of the big slice that is not `pattern(_, round)`, if any.
fn first_mismatch(pool: &Pool<Root>, round: u64) -> Option<(usize, u64)> {
    pool.read(|r| {
        let words = r.get_slice(r.root().big).expect("the big slice");
        words
            .iter()
            .enumerate()
            .find(|&(i, &w)| w != pattern(i, round))
            .map(|(i, &w)| (i, w))
    })
    .unwrap()
}

#[test]
fn sixty_four_mib_in_one_transaction() {
    const WORDS: u64 = 64 * MIB / 8;
    let dir = pmem_tests::shm_tempdir("pmem-tx-large-");
    let path = dir.path().join("large.pool");
    let pool = create(&path, 256 * MIB);

    // One transaction allocates the 64 MiB (no undo needed for a fresh object).
    let t = Instant::now();
    let before = pool.stats().flush;
    pool.transaction(|tx| {
        let big = tx.alloc_slice_zeroed::<u64>(WORDS)?;
        tx.root_mut().set_big(big)
    })
    .unwrap();
    let cost = pool.stats().flush.since(&before);
    println!("allocate 64 MiB zeroed: {:?}, {cost:?}", t.elapsed());
    assert!(pool
        .read(|r| r.get_slice(r.root().big).unwrap().iter().all(|&w| w == 0))
        .unwrap());

    // A second one logs all of it and overwrites it.
    let t = Instant::now();
    let before = pool.stats().flush;
    pool.transaction(|tx| -> pmem_core::Result<_> {
        let big = tx.root().big;
        let words = tx.get_slice_mut(big)?;
        assert_eq!(words.len() as u64, WORDS);
        for (i, w) in words.iter_mut().enumerate() {
            *w = pattern(i, 1);
        }
        Ok(())
    })
    .unwrap();
    let cost = pool.stats().flush.since(&before);
    println!("log and overwrite 64 MiB: {:?}, {cost:?}", t.elapsed());
    assert!(
        cost.fences == 1,
        "one range costs one fence, however long: {cost:?}"
    );
    assert_eq!(first_mismatch(&pool, 1), None);
    assert_eq!(pool.stats().heap.live_objects, 1);
    assert_healthy(&pool);

    // Durable: a new handle sees it.
    drop(pool);
    let pool = open(&path);
    assert_eq!(pool.info().recovery, Default::default(), "a clean close");
    assert_eq!(first_mismatch(&pool, 1), None);

    // An aborted 64 MiB transaction restores every byte, by Err and by panic.
    let t = Instant::now();
    let result: pmem_core::Result<()> = pool.transaction(|tx| {
        let big = tx.root().big;
        for (i, w) in tx.get_slice_mut(big)?.iter_mut().enumerate() {
            *w = pattern(i, 2);
        }
        tx.root_mut().set_count(5)?;
        Err(tx.abort())
    });
    assert!(matches!(result, Err(Error::Aborted { .. })));
    println!("log, overwrite and roll back 64 MiB: {:?}", t.elapsed());
    assert_eq!(first_mismatch(&pool, 1), None);
    assert_eq!(pool.read(|r| r.root().count).unwrap(), 0);

    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.transaction(|tx| -> pmem_core::Result<()> {
            let big = tx.root().big;
            let words = tx.get_slice_mut(big)?;
            // Half of it, then a panic.
            for (i, w) in words.iter_mut().enumerate().take(WORDS as usize / 2) {
                *w = pattern(i, 3);
            }
            panic!("panic halfway through a 64 MiB transaction")
        })
    }));
    assert!(panicked.is_err());
    assert_eq!(first_mismatch(&pool, 1), None);
    assert_healthy(&pool);

    // And the rollback is durable too.
    drop(pool);
    let pool = open(&path);
    assert_eq!(first_mismatch(&pool, 1), None);
    // The log space lent to the large transactions went back to the heap: another 64 MiB fits
    // twice over (the pool is 256 MiB).
    let more = pool
        .transaction(|tx| {
            let a = tx.alloc_slice_zeroed::<u64>(WORDS)?;
            let b = tx.alloc_slice_zeroed::<u64>(WORDS)?;
            tx.free_slice(a)?;
            tx.free_slice(b)
        })
        .map(|_| ());
    assert!(more.is_ok(), "{more:?}");
    assert_healthy(&pool);
}

fn wide_words(pool: &Pool<Root>) -> Vec<u64> {
    pool.read(|r| {
        r.get(r.root().wide)
            .expect("the wide object")
            .words
            .to_vec()
    })
    .unwrap()
}

#[test]
fn a_hundred_thousand_ranges() {
    const RANGES: usize = WIDE / 2;
    let dir = pmem_tests::shm_tempdir("pmem-tx-large-");
    let path = dir.path().join("ranges.pool");
    let pool = create(&path, 64 * MIB);
    pool.transaction(|tx| {
        let wide = tx.alloc_zeroed::<Wide>()?;
        tx.root_mut().set_wide(wide)
    })
    .unwrap();
    let wide = pool.read(|r| r.root().wide).unwrap();

    // Every other word, so no two ranges touch: 100,000 separate log entries.
    let t = Instant::now();
    let before = pool.stats().flush;
    pool.transaction(|tx| -> pmem_core::Result<_> {
        for i in (0..WIDE).step_by(2) {
            tx.edit(wide)?.words_mut().set_at(i, i as u64 + 1)?;
        }
        Ok(())
    })
    .unwrap();
    let cost = pool.stats().flush.since(&before);
    println!(
        "{RANGES} setters on separate words: {:?}, {cost:?}",
        t.elapsed()
    );
    assert_eq!(cost.fences, 1, "one fence for {RANGES} ranges: {cost:?}");
    let expected: Vec<u64> = (0..WIDE)
        .map(|i| if i % 2 == 0 { i as u64 + 1 } else { 0 })
        .collect();
    assert!(wide_words(&pool) == expected, "commit of 100,000 ranges");

    // Aborted: every word back, including the ones written twice.
    let t = Instant::now();
    let result = pool.transaction(|tx| {
        for i in (0..WIDE).step_by(2) {
            tx.edit(wide)?.words_mut().set_at(i, 7)?;
        }
        for i in (0..WIDE).step_by(2) {
            tx.edit(wide)?.words_mut().set_at(i, 8)?;
        }
        tx.root_mut().set_count(1)?;
        Err::<(), _>(tx.abort())
    });
    println!("{RANGES} setters, aborted: {:?}", t.elapsed());
    assert!(matches!(result, Err(Error::Aborted { .. })));
    assert!(wide_words(&pool) == expected, "abort of 100,000 ranges");
    assert_eq!(pool.read(|r| r.root().count).unwrap(), 0);
    assert_healthy(&pool);

    drop(pool);
    let pool = open(&path);
    assert!(wide_words(&pool) == expected, "durable after reopening");
    assert_healthy(&pool);
}

fn list_values(pool: &Pool<Root>) -> Vec<u64> {
    pool.read(|r| {
        let mut values = Vec::new();
        let mut p = r.root().head;
        while !p.is_null() {
            let n = r.get(p).expect("list node");
            values.push(n.value);
            p = n.next;
        }
        values
    })
    .unwrap()
}

fn node_count(pool: &Pool<Root>) -> usize {
    pool.read(|r| r.objects::<Node>().count()).unwrap()
}

#[test]
fn fifty_thousand_allocations() {
    const N: u64 = 50_000;
    let dir = pmem_tests::shm_tempdir("pmem-tx-large-");
    let path = dir.path().join("allocs.pool");
    let pool = create(&path, 64 * MIB);

    let push_n = |pool: &Pool<Root>, first: u64, abort: bool| {
        pool.transaction(|tx| {
            for value in first..first + N {
                let next = tx.root().head;
                let node = tx.alloc(Node { value, next })?;
                tx.root_mut().set_head(node)?;
            }
            let len = tx.root().len;
            tx.root_mut().set_len(len + N)?;
            if abort {
                return Err(tx.abort());
            }
            Ok(())
        })
    };

    // Committed.
    let t = Instant::now();
    let before = pool.stats().flush;
    push_n(&pool, 0, false).unwrap();
    let cost = pool.stats().flush.since(&before);
    println!("{N} allocations committed: {:?}, {cost:?}", t.elapsed());
    let values = list_values(&pool);
    assert_eq!(values.len() as u64, N);
    assert!(values.iter().rev().copied().eq(0..N));
    assert_eq!(node_count(&pool) as u64, N);
    assert_eq!(pool.stats().heap.live_objects, N);
    assert_healthy(&pool);

    // Aborted: none of them.
    let t = Instant::now();
    assert!(push_n(&pool, N, true).is_err());
    println!("{N} allocations aborted: {:?}", t.elapsed());
    assert_eq!(list_values(&pool).len() as u64, N);
    assert_eq!(node_count(&pool) as u64, N);
    assert_eq!(pool.stats().heap.live_objects, N);
    assert_eq!(pool.read(|r| r.root().len).unwrap(), N);
    assert_healthy(&pool);

    // 50,000 setters on distinct objects, aborted then committed.
    let nodes: Vec<PPtr<Node>> = pool.read(|r| r.objects::<Node>().collect()).unwrap();
    let set_all = |pool: &Pool<Root>, add: u64, abort: bool| {
        pool.transaction(|tx| {
            for &p in &nodes {
                let v = tx.get(p)?.value;
                tx.edit(p)?.set_value(v + add)?;
            }
            if abort {
                return Err(tx.abort());
            }
            Ok(())
        })
    };
    assert!(set_all(&pool, 1_000_000, true).is_err());
    assert!(list_values(&pool).iter().rev().copied().eq(0..N));
    let t = Instant::now();
    set_all(&pool, 1_000_000, false).unwrap();
    println!("{N} setters on separate objects: {:?}", t.elapsed());
    assert!(list_values(&pool)
        .iter()
        .rev()
        .copied()
        .eq(1_000_000..1_000_000 + N));

    // Freeing all of them in one transaction: aborted, then committed.
    let free_all = |pool: &Pool<Root>, abort: bool| {
        pool.transaction(|tx| {
            let mut p = tx.root().head;
            while !p.is_null() {
                let next = tx.get(p)?.next;
                tx.free(p)?;
                p = next;
            }
            tx.root_mut().set_head(PPtr::null())?;
            tx.root_mut().set_len(0)?;
            if abort {
                return Err(tx.abort());
            }
            Ok(())
        })
    };
    assert!(free_all(&pool, true).is_err());
    assert_eq!(node_count(&pool) as u64, N);
    assert_eq!(list_values(&pool).len() as u64, N);
    assert_healthy(&pool);
    let t = Instant::now();
    free_all(&pool, false).unwrap();
    println!("{N} frees committed: {:?}", t.elapsed());
    assert_eq!(node_count(&pool), 0);
    assert_eq!(pool.stats().heap.live_objects, 0);
    assert_healthy(&pool);

    // Allocate them again, reopen, and the commit of the large transaction is durable.
    push_n(&pool, 0, false).unwrap();
    drop(pool);
    let pool = open(&path);
    assert!(list_values(&pool).iter().rev().copied().eq(0..N));
    assert_eq!(pool.stats().heap.live_objects, N);
    assert_healthy(&pool);
}

/// Whole-chunk objects, for filling the pool quickly.
#[derive(Persistent)]
#[repr(C)]
struct Block {
    words: [u64; 16 * 1024],
}

/// A run-sized object.
#[derive(Persistent)]
#[repr(C)]
struct Page {
    words: [u64; 512],
}

#[derive(Persistent)]
#[repr(C)]
struct Tiny {
    value: u64,
}

/// Allocates `T`s one at a time until the pool refuses; returns them and the refusal.
fn fill<T: Persistent>(pool: &Pool<Root>) -> (Vec<PPtr<T>>, Error) {
    let mut got = Vec::new();
    loop {
        match pool.transaction(|tx| tx.alloc_zeroed::<T>()) {
            Ok(p) => got.push(p),
            Err(e) => return (got, e),
        }
        assert!(got.len() < 10_000_000, "the pool never fills");
    }
}

#[test]
fn a_full_pool() {
    let dir = pmem_tests::shm_tempdir("pmem-tx-large-");
    let path = dir.path().join("full.pool");
    let pool = create(&path, 16 * MIB);
    pool.transaction(|tx| {
        let wide = tx.alloc_zeroed::<Wide>()?;
        tx.root_mut().set_wide(wide)?;
        for value in 0..100 {
            let next = tx.root().head;
            let node = tx.alloc(Node { value, next })?;
            tx.root_mut().set_head(node)?;
        }
        tx.root_mut().set_len(100)
    })
    .unwrap();

    // Some of each size first, so each has a run however the chunks divide; then until the pool
    // refuses each size, largest first.
    let (mut pages, mut tinies) = (Vec::new(), Vec::new());
    pool.transaction(|tx| -> pmem_core::Result<_> {
        for _ in 0..10 {
            pages.push(tx.alloc_zeroed::<Page>()?);
        }
        for value in 0..2000 {
            tinies.push(tx.alloc(Tiny { value })?);
        }
        Ok(())
    })
    .unwrap();
    let t = Instant::now();
    let (blocks, e1) = fill::<Block>(&pool);
    let (more_pages, e2) = fill::<Page>(&pool);
    let (more_tinies, e3) = fill::<Tiny>(&pool);
    pages.extend(more_pages);
    tinies.extend(more_tinies);
    println!(
        "filled with {} blocks, {} pages, {} tiny objects in {:?}",
        blocks.len(),
        pages.len(),
        tinies.len(),
        t.elapsed()
    );
    for (what, e, size) in [
        ("Block", &e1, 128 * 1024u64),
        ("Page", &e2, 4096),
        ("Tiny", &e3, 8),
    ] {
        println!("{what}: {e}");
        let (requested, available) = match e {
            Error::OutOfSpace {
                requested,
                available,
            } => (*requested, *available),
            other => panic!("{what}: expected OutOfSpace, got {other:?}"),
        };
        assert!(requested >= size, "{what}: {e}");
        // The message says what it is and gives both numbers.
        let msg = e.to_string();
        assert!(
            msg.contains("out of space")
                && msg.contains(&format!("{requested} bytes"))
                && msg.contains(&format!("{available} bytes")),
            "unclear message: {msg}"
        );
    }
    assert!(!blocks.is_empty() && !tinies.is_empty());
    let stats = pool.stats().heap;
    println!("{stats:?}");
    assert_eq!(
        stats.free_bytes, stats.log_reserve_bytes,
        "every chunk in use but those kept for logs"
    );
    // Nothing fits now, not even in a transaction.
    let refused = pool.transaction(|tx| tx.alloc(Tiny { value: 1 }));
    assert!(
        matches!(refused, Err(Error::OutOfSpace { .. })),
        "{refused:?}"
    );
    let report = check(&pool);
    assert!(report.is_healthy(), "{report}");
    let live = stats.live_objects;

    // An abort still rolls back on a full pool: root fields, a hundred small ranges, a whole
    // object, frees and (re)allocations.
    let values = list_values(&pool);
    let wide = pool.read(|r| r.root().wide).unwrap();
    let wide_before = wide_words(&pool);
    let result = pool.transaction(|tx| {
        tx.root_mut().set_count(99)?;
        let mut p = tx.root().head;
        while !p.is_null() {
            tx.edit(p)?.set_value(12345)?;
            p = tx.get(p)?.next;
        }
        for i in 0..32 {
            tx.edit(wide)?.words_mut().set_at(i * 7, 5)?;
        }
        tx.free(tinies[0])?;
        tx.free(blocks[0])?;
        Err::<(), _>(tx.abort())
    });
    assert!(matches!(result, Err(Error::Aborted { .. })), "{result:?}");
    assert_eq!(list_values(&pool), values);
    assert_eq!(wide_words(&pool), wide_before);
    assert_eq!(pool.read(|r| r.root().count).unwrap(), 0);
    assert_eq!(pool.stats().heap.live_objects, live);

    // A panic too.
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.transaction(|tx| -> pmem_core::Result<()> {
            let head = tx.root().head;
            tx.edit(head)?.set_value(0)?;
            tx.root_mut().set_count(1)?;
            panic!("panic on a full pool")
        })
    }));
    assert!(panicked.is_err());
    assert_eq!(list_values(&pool), values);
    assert_eq!(pool.read(|r| r.root().count).unwrap(), 0);

    // A transaction that logs more than the fixed log holds needs log space from the heap; on a
    // full pool it is refused cleanly and rolls back whatever it did before.
    let result = pool.transaction(|tx| {
        tx.root_mut().set_count(7)?;
        tx.get_mut(wide)?.words.fill(9);
        Ok(())
    });
    match &result {
        Ok(()) => println!("logging 1.6 MB on a full pool: committed"),
        Err(e) => println!("logging 1.6 MB on a full pool: {e}"),
    }
    match result {
        Ok(()) => {
            assert!(wide_words(&pool).iter().all(|&w| w == 9));
            assert_eq!(pool.read(|r| r.root().count).unwrap(), 7);
            pool.transaction(|tx| -> pmem_core::Result<_> {
                tx.root_mut().set_count(0)?;
                tx.get_mut(wide)?.words.fill(0);
                Ok(())
            })
            .unwrap();
        }
        Err(Error::OutOfSpace { .. }) => {
            assert_eq!(wide_words(&pool), wide_before);
            assert_eq!(pool.read(|r| r.root().count).unwrap(), 0);
        }
        Err(e) => panic!("expected success or OutOfSpace, got {e:?}"),
    }
    let report = check(&pool);
    assert!(report.is_healthy(), "{report}");

    // Freeing works on the full pool: atomically, transactionally, and many in one transaction.
    pool.free(tinies[1]).unwrap();
    pool.transaction(|tx| tx.free(tinies[2])).unwrap();
    pool.free(blocks[1]).unwrap();
    pool.transaction(|tx| tx.free(pages[0])).unwrap();
    assert_eq!(pool.stats().heap.live_objects, live - 4);
    // The space is usable again.
    let again = pool.transaction(|tx| tx.alloc(Tiny { value: 3 })).unwrap();
    pool.free(again).unwrap();
    let block = pool.transaction(|tx| tx.alloc_zeroed::<Block>()).unwrap();
    pool.free(block).unwrap();
    let report = check(&pool);
    assert!(report.is_healthy(), "{report}");

    // Fill again, then free a batch in one transaction.
    let (refill, e) = fill::<Tiny>(&pool);
    assert!(matches!(e, Error::OutOfSpace { .. }));
    println!("refilled with {} tiny objects", refill.len());
    let batch = &tinies[3..1003];
    pool.transaction(|tx| -> pmem_core::Result<_> {
        for &p in batch {
            tx.free(p)?;
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(
        pool.stats().heap.live_objects,
        live - 4 + refill.len() as u64 - 1000
    );

    // Everything freed, in the largest transactions the full pool allows, and durably.
    let mut rest: Vec<PPtr<Tiny>> = tinies[1003..].to_vec();
    rest.push(tinies[0]);
    rest.extend(&refill);
    let t = Instant::now();
    let all = pool.transaction(|tx| -> pmem_core::Result<_> {
        for &p in &rest {
            tx.free(p)?;
        }
        Ok(())
    });
    println!(
        "freeing {} objects in one transaction on a full pool: {:?} in {:?}",
        rest.len(),
        all,
        t.elapsed()
    );
    if all.is_err() {
        // The commit record of that many frees is larger than the fixed log: free in batches
        // that fit instead.
        for chunk in rest.chunks(1000) {
            pool.transaction(|tx| -> pmem_core::Result<_> {
                for &p in chunk {
                    tx.free(p)?;
                }
                Ok(())
            })
            .unwrap();
        }
    }
    let blocks: Vec<PPtr<Block>> = blocks[2..].iter().chain(&blocks[..1]).copied().collect();
    for chunk in blocks.chunks(100) {
        pool.transaction(|tx| -> pmem_core::Result<_> {
            for &p in chunk {
                tx.free(p)?;
            }
            Ok(())
        })
        .unwrap();
    }
    for &p in &pages[1..] {
        pool.free(p).unwrap();
    }
    assert_eq!(
        pool.stats().heap.live_objects,
        101,
        "the wide object and the list"
    );
    assert_healthy(&pool);
    drop(pool);
    let pool = open(&path);
    assert_eq!(pool.stats().heap.live_objects, 101);
    assert_eq!(list_values(&pool), values);
    assert_healthy(&pool);
}

/// `OutOfSpace { requested, available }` tells the user how much they asked for and how much
/// there is: the allocation failed, so what it reports as available must be less than what it
/// reports as requested, for every size of object. Each size is tried on a pool with exactly one
/// free chunk left.
#[test]
fn out_of_space_never_reports_a_free_block_that_would_fit() {
    let mut contradictions = Vec::new();
    for size in [
        16u64, 1024, 2048, 2560, 4096, 8192, 16384, 32768, 40_000, 100_000,
    ] {
        let pool = one_free_chunk();
        let mut n = 0;
        let e = loop {
            match pool.transaction(|tx| tx.alloc_slice_zeroed::<u8>(size)) {
                Ok(_) => n += 1,
                Err(e) => break e,
            }
        };
        println!("{size} bytes, after {n} allocated: {e}");
        match e {
            Error::OutOfSpace {
                requested,
                available,
            } if available >= requested => {
                contradictions.push(format!("{size}-byte object: \"{e}\""))
            }
            Error::OutOfSpace { .. } => {}
            e => panic!("{size} bytes: expected OutOfSpace, got {e:?}"),
        }
    }
    assert!(
        contradictions.is_empty(),
        "OutOfSpace said a free block at least as large as the request exists:\n{}",
        contradictions.join("\n")
    );
}

/// Bytes of free chunks that objects may take (those kept for logs aside).
fn free_bytes(pool: &Pool<Root>) -> u64 {
    let h = pool.stats().heap;
    h.free_bytes.saturating_sub(h.log_reserve_bytes)
}

/// A simulated pool whose heap is full but for one chunk.
fn one_free_chunk() -> Pool<Root> {
    /// A three-chunk object.
    #[derive(Persistent)]
    #[repr(C)]
    struct Span3 {
        words: [u64; 5000],
    }
    const CHUNK: u64 = 16 * 1024;
    let pool = Pool::<Root>::builder().create_simulated(4 * MIB).unwrap();
    let (_, e) = fill::<Block>(&pool);
    assert!(matches!(e, Error::OutOfSpace { .. }));
    let (spans, e) = fill::<Span3>(&pool);
    assert!(matches!(e, Error::OutOfSpace { .. }));
    if free_bytes(&pool) == 0 {
        pool.free(*spans.last().expect("a pool of 4 MiB fits a span"))
            .unwrap();
    }
    // One-chunk runs, each of a type of its own so each takes a new chunk.
    let take_one_chunk = [
        |tx: &mut pmem_core::Tx<'_, Root>| tx.alloc_slice_zeroed::<u16>(1).map(|_| ()),
        |tx: &mut pmem_core::Tx<'_, Root>| tx.alloc_slice_zeroed::<u32>(1).map(|_| ()),
        |tx: &mut pmem_core::Tx<'_, Root>| tx.alloc_slice_zeroed::<u64>(1).map(|_| ()),
    ];
    for take in take_one_chunk {
        if free_bytes(&pool) > CHUNK {
            pool.transaction(take).unwrap();
        }
    }
    assert_eq!(free_bytes(&pool), CHUNK);
    pool
}
