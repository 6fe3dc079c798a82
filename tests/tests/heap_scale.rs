//! The heap at scale: a pool holding a million live objects reopens quickly and iterates exactly
//! them by type, and objects from one byte to 100 MiB allocate, hold their bytes, and free.

use std::time::Instant;

use pmem_core::check::check;
use pmem_core::{PSlice, Persistent, Pool};
use pmem_tests::shm_tempdir;

#[derive(Persistent)]
#[repr(C)]
struct Root {
    count: u64,
}

/// 64 bytes: its index and a checksum-like pattern derived from it.
#[derive(Persistent, Clone, Copy)]
#[repr(C)]
struct Obj {
    index: u64,
    pattern: [u64; 7],
}

impl Obj {
    fn new(index: u64) -> Obj {
        Obj {
            index,
            pattern: std::array::from_fn(|k| index.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ k as u64),
        }
    }
}

/// Another type of the same size, mixed in: iteration must tell them apart by type, not size.
#[derive(Persistent, Clone, Copy)]
#[repr(C)]
struct Other {
    index: u64,
    pattern: [u64; 7],
}

fn builder() -> pmem_core::PoolBuilder<Root> {
    Pool::<Root>::builder().force_pmem(true)
}

/// A million 64-byte objects (and, every hundredth, an object of another type) in a pool that
/// is closed and reopened: the open takes milliseconds, and iteration by type yields each
/// object exactly once with its contents.
#[test]
fn a_million_objects_reopen_and_iterate_by_type() {
    const N: u64 = 1_000_000;
    const PER_TX: u64 = 1000;
    const OTHER_EVERY: u64 = 100;
    let dir = shm_tempdir("pmem-heap-scale");
    let path = dir.path().join("million.pool");
    let pool = builder().create(&path, 128 << 20).expect("create");

    let started = Instant::now();
    let mut others = 0;
    for t in 0..N / PER_TX {
        others += pool
            .transaction(|tx| -> pmem_core::Result<_> {
                let mut others = 0;
                for i in t * PER_TX..(t + 1) * PER_TX {
                    tx.alloc(Obj::new(i))?;
                    if i % OTHER_EVERY == 0 {
                        tx.alloc(Other {
                            index: i,
                            pattern: [!i; 7],
                        })?;
                        others += 1;
                    }
                }
                tx.root_mut().set_count((t + 1) * PER_TX)?;
                Ok(others)
            })
            .expect("allocate");
    }
    let fill = started.elapsed();
    let stats = pool.stats().heap;
    assert_eq!(stats.live_objects, N + others);
    assert_eq!(stats.allocated_bytes, (N + others) * 64);
    println!(
        "filled {} objects in {fill:.2?}: {} of {} heap bytes in use",
        N + others,
        stats.bytes_in_use,
        stats.heap_bytes
    );
    drop(pool);

    let started = Instant::now();
    let pool = builder().open(&path).expect("reopen");
    let open = started.elapsed();
    println!("open with {} live objects: {open:.2?}", N + others);
    assert_eq!(pool.stats().heap, stats, "statistics change across reopen");

    let started = Instant::now();
    pool.read(|r| {
        assert_eq!(r.root().count, N);
        let mut seen = vec![false; N as usize];
        let mut count = 0u64;
        for p in r.objects::<Obj>() {
            let o = r.get(p).expect("an iterated object reads as its type");
            assert!(
                o.index < N,
                "object at {:#x} has index {}",
                p.offset(),
                o.index
            );
            assert!(
                !std::mem::replace(&mut seen[o.index as usize], true),
                "object {} iterated twice",
                o.index
            );
            assert_eq!(o.pattern, Obj::new(o.index).pattern, "object {}", o.index);
            count += 1;
        }
        assert_eq!(count, N);
        let other: Vec<u64> = r
            .objects::<Other>()
            .map(|p| {
                let o = r.get(p).expect("an iterated object reads as its type");
                assert_eq!(o.pattern, [!o.index; 7]);
                o.index
            })
            .collect();
        let mut sorted = other.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), other.len(), "an Other iterated twice");
        assert_eq!(
            sorted,
            (0..N).step_by(OTHER_EVERY as usize).collect::<Vec<_>>()
        );
        // A type never allocated has no objects.
        assert_eq!(r.objects::<u64>().count(), 0);
    })
    .unwrap();
    println!(
        "iterated and verified both types in {:.2?}",
        started.elapsed()
    );

    let started = Instant::now();
    let report = check(&pool);
    assert!(report.is_healthy(), "{report}");
    assert_eq!(report.live_objects, N + others);
    println!("deep check in {:.2?}", started.elapsed());

    // Free the objects with an odd index and every Other; reopen; the rest iterate exactly.
    let started = Instant::now();
    let (odd, other): (Vec<_>, Vec<_>) = pool
        .read(|r| {
            let odd: Vec<_> = r
                .objects::<Obj>()
                .filter(|&p| r.get(p).unwrap().index % 2 == 1)
                .collect();
            (odd, r.objects::<Other>().collect())
        })
        .unwrap();
    for batch in odd.chunks(PER_TX as usize) {
        pool.transaction(|tx| batch.iter().try_for_each(|&p| tx.free(p)))
            .expect("free");
    }
    for p in other {
        pool.free(p).expect("free");
    }
    println!(
        "freed {} objects in {:.2?}",
        odd.len() + others as usize,
        started.elapsed()
    );
    drop(pool);
    let started = Instant::now();
    let pool = builder().open(&path).expect("reopen");
    println!(
        "open with {} live objects: {:.2?}",
        N / 2,
        started.elapsed()
    );
    pool.read(|r| {
        let mut count = 0;
        for p in r.objects::<Obj>() {
            let o = r.get(p).unwrap();
            assert_eq!(o.index % 2, 0);
            assert_eq!(o.pattern, Obj::new(o.index).pattern);
            count += 1;
        }
        assert_eq!(count, N / 2);
        assert_eq!(r.objects::<Other>().count(), 0);
    })
    .unwrap();
    let stats = pool.stats().heap;
    assert_eq!(stats.live_objects, N / 2);
    let report = check(&pool);
    assert!(report.is_healthy(), "{report}");
    assert_eq!(report.live_objects, N / 2);
}

/// The bytes an object of `size` bytes is expected to take: a size class rounds up by at most a
/// quarter (and to at least 16 bytes); a large object takes whole 16 KiB chunks.
fn usable_bounds(size: u64) -> (u64, u64) {
    const CHUNK: u64 = 16 * 1024;
    if size > 32 * 1024 {
        let n = size.div_ceil(CHUNK) * CHUNK;
        (n, n)
    } else {
        (size.max(16), (size + size / 4).max(size.div_ceil(16) * 16))
    }
}

/// Objects of every size from 1 to 130 bytes, then both sides of the size-class and chunk
/// boundaries up to 4 MiB, then 10 MiB and 100 MiB: each allocates, takes the space it should,
/// holds all of its bytes (the whole slice is written and read back, also after reopening), and
/// frees; afterwards nothing is allocated and the freed space is whole again.
#[test]
fn objects_from_one_byte_to_a_hundred_mebibytes() {
    const MIB: u64 = 1 << 20;
    let dir = shm_tempdir("pmem-heap-sizes");
    let path = dir.path().join("sizes.pool");
    let pool = builder().create(&path, 256 * MIB).expect("create");

    let mut sizes: Vec<u64> = (1..=130).collect();
    for p in 8..=22 {
        let b = 1u64 << p;
        sizes.extend([b - 1, b, b + 1, b + b / 4, b + b / 2 + 1]);
    }
    sizes.extend([
        48 * 1024 - 1,
        48 * 1024,
        48 * 1024 + 1,
        10 * MIB + 3,
        100 * MIB,
    ]);
    sizes.sort_unstable();
    sizes.dedup();

    let fill = |len: u64, salt: u64| -> Vec<u8> {
        (0..len)
            .map(|i| (i.wrapping_mul(31) ^ salt ^ (i >> 8)) as u8)
            .collect()
    };
    let mut live: Vec<(PSlice<u8>, u64)> = Vec::new();
    let mut allocated = 0;
    for (salt, &len) in sizes.iter().enumerate() {
        let before = pool.stats().heap.allocated_bytes;
        let s = if len <= MIB {
            let bytes = fill(len, salt as u64);
            pool.transaction(|tx| tx.alloc_slice(&bytes))
        } else {
            // Large ones zeroed in place, then written through the transaction (no copy on the
            // stack or in an intermediate buffer of the whole size).
            pool.transaction(|tx| {
                let s = tx.alloc_slice_zeroed::<u8>(len)?;
                let out = tx.get_slice_mut(s)?;
                for (i, b) in out.iter_mut().enumerate() {
                    let i = i as u64;
                    *b = (i.wrapping_mul(31) ^ salt as u64 ^ (i >> 8)) as u8;
                }
                Ok(s)
            })
        }
        .unwrap_or_else(|e| panic!("allocating {len} bytes: {e}"));
        assert_eq!(s.len(), len);
        let took = pool.stats().heap.allocated_bytes - before;
        let (lo, hi) = usable_bounds(len);
        assert!(
            (lo..=hi).contains(&took),
            "an object of {len} bytes takes {took} bytes, expected {lo} to {hi}"
        );
        allocated += took;
        live.push((s, salt as u64));
    }
    let stats = pool.stats().heap;
    assert_eq!(stats.live_objects, sizes.len() as u64);
    assert_eq!(stats.allocated_bytes, allocated);
    println!(
        "{} objects from 1 byte to {} bytes: {allocated} bytes allocated, {} of {} in use",
        sizes.len(),
        sizes.last().unwrap(),
        stats.bytes_in_use,
        stats.heap_bytes
    );

    // No two objects overlap, and every byte of every object is still its own.
    let mut ranges: Vec<(u64, u64)> = live.iter().map(|(s, _)| (s.offset(), s.len())).collect();
    ranges.sort_unstable();
    for w in ranges.windows(2) {
        assert!(w[0].0 + w[0].1 <= w[1].0, "objects overlap: {w:?}");
    }
    let check_all = |pool: &Pool<Root>, live: &[(PSlice<u8>, u64)]| {
        pool.read(|r| {
            for &(s, salt) in live {
                let bytes = r.get_slice(s).expect("read back");
                assert_eq!(bytes.len() as u64, s.len());
                let bad = bytes.iter().enumerate().position(|(i, &b)| {
                    let i = i as u64;
                    b != (i.wrapping_mul(31) ^ salt ^ (i >> 8)) as u8
                });
                assert_eq!(
                    bad,
                    None,
                    "object of {} bytes differs at byte {bad:?}",
                    s.len()
                );
                // The slice cannot be stretched past the object's usable size.
                let (_, hi) = usable_bounds(s.len());
                let stretched = PSlice::<u8>::from_raw_parts(s.offset(), hi + 1);
                assert!(
                    r.get_slice(stretched).is_err(),
                    "a slice of {} bytes over an object of {} reads",
                    hi + 1,
                    s.len()
                );
            }
        })
        .unwrap();
    };
    check_all(&pool, &live);
    let report = check(&pool);
    assert!(report.is_healthy(), "{report}");
    assert_eq!(report.live_objects, sizes.len() as u64);

    // Reopen: the same objects, the same bytes.
    drop(pool);
    let pool = builder().open(&path).expect("reopen");
    assert_eq!(pool.stats().heap, stats, "statistics change across reopen");
    check_all(&pool, &live);

    // Free them all, largest first, some alone and some several to a transaction.
    let mut rest = &live[..];
    while !rest.is_empty() {
        let take = if rest.len() % 3 == 0 {
            rest.len().min(4)
        } else {
            1
        };
        let (keep, free) = rest.split_at(rest.len() - take);
        pool.transaction(|tx| free.iter().try_for_each(|&(s, _)| tx.free_slice(s)))
            .expect("free");
        rest = keep;
    }
    let after = pool.stats().heap;
    assert_eq!(after.live_objects, 0);
    assert_eq!(after.allocated_bytes, 0);
    assert_eq!(after.large_objects, 0);
    let report = check(&pool);
    assert!(report.is_healthy(), "{report}");
    assert_eq!(report.live_objects, 0);

    // The space is whole again: the 100 MiB object fits twice over.
    let big = 200 * MIB;
    let s = pool
        .transaction(|tx| tx.alloc_slice_zeroed::<u8>(big))
        .unwrap_or_else(|e| panic!("allocating {big} bytes after freeing everything: {e}"));
    pool.read(|r| assert!(r.get_slice(s).unwrap().iter().all(|&b| b == 0)))
        .unwrap();
    pool.transaction(|tx| tx.free_slice(s)).expect("free");
    let report = check(&pool);
    assert!(report.is_healthy(), "{report}");
}
