//! The allocator shared by threads: four threads allocate and free their own objects at the
//! same time, through `Pool::alloc` / `Pool::free` and through transactions (some of which
//! abort); afterwards the pool holds exactly what the threads kept.

use std::collections::BTreeSet;
use std::time::Instant;

use pmem_core::check::check;
use pmem_core::{Error, PPtr, PSlice, Persistent, Pool};
use pmem_tests::rng::splitmix64 as rng;
use pmem_tests::shm_tempdir;

#[derive(Persistent)]
#[repr(C)]
struct Root {
    unused: u64,
}

/// 16 bytes.
#[derive(Persistent, Clone, Copy)]
#[repr(C)]
struct Item {
    thread: u64,
    seq: u64,
}

/// 512 bytes.
#[derive(Persistent, Clone, Copy)]
#[repr(C)]
struct Big {
    thread: u64,
    seq: u64,
    pad: [u64; 62],
}

impl Big {
    fn new(thread: u64, seq: u64) -> Big {
        Big {
            thread,
            seq,
            pad: [seq ^ thread << 32; 62],
        }
    }
}

/// An object a thread holds, with the sequence number written into it.
#[derive(Debug, Clone, Copy)]
enum Held {
    Item(PPtr<Item>, u64),
    Big(PPtr<Big>, u64),
    /// Words `[thread, seq, seq, ...]`: from 16 bytes to 48 KiB, so large objects occur too.
    Words(PSlice<u64>, u64),
}

const THREADS: u64 = 4;
const OPS: u64 = 10_000;
/// Objects a thread holds before it frees as often as it allocates.
const GROW_TO: usize = 1000;

fn _pool_is_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Pool<Root>>();
}

fn words(thread: u64, seq: u64, len: u64) -> Vec<u64> {
    let mut w = vec![seq; len as usize];
    w[0] = thread;
    w
}

/// Allocates one object of a random kind inside `tx`.
fn alloc_in(
    tx: &mut pmem_core::Tx<'_, Root>,
    state: &mut u64,
    thread: u64,
    seq: u64,
) -> pmem_core::Result<Held> {
    Ok(match rng(state) % 4 {
        0 | 1 => Held::Item(tx.alloc(Item { thread, seq })?, seq),
        2 => Held::Big(tx.alloc(Big::new(thread, seq))?, seq),
        _ => {
            let len = 2 + rng(state) % 6000;
            Held::Words(tx.alloc_slice(&words(thread, seq, len))?, seq)
        }
    })
}

fn free_in(tx: &mut pmem_core::Tx<'_, Root>, held: Held) -> pmem_core::Result<()> {
    match held {
        Held::Item(p, _) => tx.free(p),
        Held::Big(p, _) => tx.free(p),
        Held::Words(s, _) => tx.free_slice(s),
    }
}

/// Whether `held` still holds what `thread` wrote into it.
fn intact(r: &pmem_core::Reader<'_, Root>, thread: u64, held: Held) -> Result<(), String> {
    let ok = match held {
        Held::Item(p, seq) => {
            let o = r.get(p).map_err(|e| e.to_string())?;
            o.thread == thread && o.seq == seq
        }
        Held::Big(p, seq) => {
            let o = r.get(p).map_err(|e| e.to_string())?;
            o.thread == thread && o.seq == seq && o.pad == Big::new(thread, seq).pad
        }
        Held::Words(s, seq) => {
            let w = r.get_slice(s).map_err(|e| e.to_string())?;
            w[0] == thread && w[1..].iter().all(|&x| x == seq)
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!("thread {thread}: {held:?} was overwritten"))
    }
}

/// One thread's work: `OPS` operations on its own objects. Returns the objects it keeps.
fn worker(pool: &Pool<Root>, thread: u64) -> Vec<Held> {
    let mut state = 0x7EAD_0000 + thread;
    let mut held: Vec<Held> = Vec::new();
    let mut seq = 0u64;
    let take = |state: &mut u64, held: &mut Vec<Held>| {
        let i = (rng(state) % held.len() as u64) as usize;
        held.swap_remove(i)
    };
    for op in 0..OPS {
        seq += 1;
        let mut choice = if held.is_empty() {
            0
        } else {
            rng(&mut state) % 100
        };
        // Grow to a working set first: below it, half the frees become allocations.
        if choice >= 55 && held.len() < GROW_TO && rng(&mut state) % 2 == 0 {
            choice %= 50;
        }
        match choice {
            0..=29 => held.push(Held::Item(
                pool.alloc(Item { thread, seq }).expect("alloc"),
                seq,
            )),
            30..=39 => held.push(Held::Big(
                pool.alloc(Big::new(thread, seq)).expect("alloc"),
                seq,
            )),
            40..=49 => {
                // One to three objects in one transaction, numbered seq * 4 + k.
                let n = 1 + rng(&mut state) % 3;
                let new = pool
                    .transaction(|tx| {
                        (0..n)
                            .map(|k| alloc_in(tx, &mut state, thread, seq * 4 + k))
                            .collect::<pmem_core::Result<Vec<_>>>()
                    })
                    .expect("alloc in a transaction");
                held.extend(new);
            }
            50..=52 => {
                // Allocations of an aborted transaction never exist.
                let result: pmem_core::Result<()> = pool.transaction(|tx| {
                    alloc_in(tx, &mut state, thread, seq)?;
                    alloc_in(tx, &mut state, thread, seq)?;
                    Err(tx.abort())
                });
                assert!(matches!(result, Err(Error::Aborted { .. })), "{result:?}");
            }
            53..=54 => {
                // Allocated and freed in the same transaction: nothing remains.
                pool.transaction(|tx| {
                    let h = alloc_in(tx, &mut state, thread, seq)?;
                    free_in(tx, h)
                })
                .expect("alloc and free in one transaction");
            }
            55..=79 => match take(&mut state, &mut held) {
                Held::Item(p, _) => pool.free(p).expect("free"),
                Held::Big(p, _) => pool.free(p).expect("free"),
                h @ Held::Words(..) => pool.transaction(|tx| free_in(tx, h)).expect("free"),
            },
            _ => {
                // One to three frees in one transaction.
                let n = (1 + rng(&mut state) % 3).min(held.len() as u64);
                let victims: Vec<Held> = (0..n).map(|_| take(&mut state, &mut held)).collect();
                pool.transaction(|tx| victims.iter().try_for_each(|&h| free_in(tx, h)))
                    .expect("free in a transaction");
            }
        }
        if op % 1000 == 999 {
            pool.read(|r| {
                for &h in &held {
                    intact(r, thread, h).unwrap();
                }
            })
            .unwrap();
        }
    }
    held
}

/// Checks that the pool holds exactly `kept` (per thread) and nothing else.
fn verify(pool: &Pool<Root>, kept: &[Vec<Held>], when: &str) {
    let total: usize = kept.iter().map(Vec::len).sum();
    let mut items = BTreeSet::new();
    let mut bigs = BTreeSet::new();
    let mut slices = 0;
    pool.read(|r| {
        for (t, held) in kept.iter().enumerate() {
            for &h in held {
                intact(r, t as u64, h).unwrap_or_else(|e| panic!("{when}: {e}"));
                match h {
                    Held::Item(p, _) => assert!(items.insert(p.offset())),
                    Held::Big(p, _) => assert!(bigs.insert(p.offset())),
                    Held::Words(..) => slices += 1,
                }
            }
        }
        let found: BTreeSet<u64> = r.objects::<Item>().map(|p| p.offset()).collect();
        assert_eq!(
            found, items,
            "{when}: the live Items differ from those kept"
        );
        let found: BTreeSet<u64> = r.objects::<Big>().map(|p| p.offset()).collect();
        assert_eq!(found, bigs, "{when}: the live Bigs differ from those kept");
    })
    .unwrap();
    let report = check(pool);
    assert!(report.is_healthy(), "{when}: {report}");
    assert_eq!(report.live_objects, total as u64, "{when}: {report}");
    let stats = pool.stats().heap;
    assert_eq!(stats.live_objects, total as u64, "{when}");
    assert_eq!(stats.allocated_bytes, report.allocated_bytes, "{when}");
    let per_class: u64 = stats.classes.iter().map(|c| c.live_objects).sum();
    assert_eq!(per_class + stats.large_objects, total as u64, "{when}");
    println!(
        "{when}: {total} objects ({} Item, {} Big, {slices} slices), {} bytes allocated, {} in use",
        items.len(),
        bigs.len(),
        stats.allocated_bytes,
        stats.bytes_in_use
    );
}

#[test]
fn four_threads_allocate_and_free_concurrently() {
    let dir = shm_tempdir("pmem-heap-threads");
    let path = dir.path().join("threads.pool");
    let pool = Pool::<Root>::builder()
        .force_pmem(true)
        .create(&path, 64 << 20)
        .expect("create");
    let started = Instant::now();
    let kept: Vec<Vec<Held>> = std::thread::scope(|s| {
        let pool = &pool;
        let handles: Vec<_> = (0..THREADS)
            .map(|t| s.spawn(move || worker(pool, t)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker thread"))
            .collect()
    });
    println!(
        "{THREADS} threads x {OPS} operations in {:.2?}",
        started.elapsed()
    );
    verify(&pool, &kept, "after the threads");
    let stats = pool.stats().heap;
    drop(pool);
    let pool = Pool::<Root>::builder()
        .force_pmem(true)
        .open(&path)
        .expect("reopen");
    assert_eq!(pool.stats().heap, stats, "statistics change across reopen");
    verify(&pool, &kept, "after reopening");

    // The threads' objects can be freed from another thread, after reopening.
    for held in &kept {
        for chunk in held.chunks(50) {
            pool.transaction(|tx| chunk.iter().try_for_each(|&h| free_in(tx, h)))
                .expect("free");
        }
    }
    let empty: Vec<Vec<Held>> = vec![Vec::new(); THREADS as usize];
    verify(&pool, &empty, "after freeing everything");
    assert_eq!(pool.stats().heap.allocated_bytes, 0);
}
