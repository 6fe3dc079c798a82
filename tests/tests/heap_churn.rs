//! Allocator behaviour under churn: a long random mix of allocations and frees must not run out
//! of space nor waste the heap, freed runs must go back to the chunk pool, and the statistics
//! must count exactly what was allocated, before and after reopening.

use std::path::Path;

use pmem_core::check::check;
use pmem_core::{Error, HeapStats, PPtr, PSlice, Persistent, Pool, Reader, Tx};
use pmem_tests::rng::splitmix64 as rng;
use pmem_tests::shm_tempdir;

#[derive(Persistent)]
#[repr(C)]
struct Root {
    unused: u64,
}

/// Bytes per heap chunk: large objects take whole chunks.
const CHUNK: u64 = 16 * 1024;
/// The largest object served from a run.
const MAX_RUN_UNIT: u64 = 32 * 1024;

/// A size from `lo` to `hi` bytes, log-uniform: as many objects of 16-32 B as of 512-1024 KiB.
fn log_uniform(state: &mut u64, lo: u64, hi: u64) -> u64 {
    let u = (rng(state) >> 11) as f64 / (1u64 << 53) as f64;
    let (a, b) = ((lo as f64).ln(), ((hi + 1) as f64).ln());
    ((a + u * (b - a)).exp() as u64).clamp(lo, hi)
}

fn create(path: &Path, size: u64) -> Pool<Root> {
    Pool::<Root>::builder()
        .force_pmem(true)
        .create(path, size)
        .expect("create the pool")
}

fn reopen(pool: Pool<Root>, path: &Path) -> Pool<Root> {
    drop(pool);
    Pool::<Root>::builder()
        .force_pmem(true)
        .open(path)
        .expect("reopen the pool")
}

/// One-byte element types besides `u8`: a slice of each is a type of its own, and a run holds
/// objects of one type, so churning several types at once needs more runs.
macro_rules! byte_types {
    ($($t:ident),*) => {$(
        #[derive(Persistent, Clone, Copy)]
        #[repr(C)]
        struct $t {
            b: u8,
        }
        impl Byte for $t {
            fn get(self) -> u8 {
                self.b
            }
            fn set(&mut self, b: u8) {
                self.b = b;
            }
        }
    )*};
}

/// An element of the objects the churn allocates.
trait Byte: Persistent + Copy {
    fn get(self) -> u8;
    fn set(&mut self, b: u8);
}

impl Byte for u8 {
    fn get(self) -> u8 {
        self
    }
    fn set(&mut self, b: u8) {
        *self = b;
    }
}

byte_types!(B1, B2, B3);

/// Evaluates `$body` with `$t` the element type of object kind `$kind`: 0 is `u8`, 1 to 3 are
/// `B1` to `B3`.
macro_rules! by_kind {
    ($kind:expr, $t:ident => $body:expr) => {
        match $kind {
            0 => {
                type $t = u8;
                $body
            }
            1 => {
                type $t = B1;
                $body
            }
            2 => {
                type $t = B2;
                $body
            }
            _ => {
                type $t = B3;
                $body
            }
        }
    };
}

/// A live object: a slice of `len` one-byte elements of type `kind`, and the tag written into it.
#[derive(Clone, Copy, Debug)]
struct Obj {
    kind: u8,
    offset: u64,
    len: u64,
    tag: u64,
}

impl Obj {
    fn slice<T>(&self) -> PSlice<T> {
        PSlice::from_raw_parts(self.offset, self.len)
    }
}

/// The tag's bytes go at the start of the object (as many as fit) and, past the eighth byte, its
/// low byte at the end, so a block handed out twice, or of the wrong length, shows.
fn write_tag<T: Byte>(elems: &mut [T], tag: u64) {
    for (e, &b) in elems.iter_mut().zip(&tag.to_le_bytes()) {
        e.set(b);
    }
    if elems.len() > 8 {
        elems[elems.len() - 1].set(tag as u8);
    }
}

fn tag_ok<T: Byte>(elems: &[T], tag: u64) -> bool {
    elems
        .iter()
        .zip(&tag.to_le_bytes())
        .all(|(e, &b)| e.get() == b)
        && (elems.len() <= 8 || elems[elems.len() - 1].get() == tag as u8)
}

/// Allocates, inside `tx`, an object of `len` bytes and type `kind` holding `tag`.
fn alloc_in(tx: &mut Tx<'_, Root>, kind: u8, len: u64, tag: u64) -> pmem_core::Result<Obj> {
    let offset = by_kind!(kind, T => {
        let s = tx.alloc_slice_zeroed::<T>(len)?;
        write_tag(tx.get_slice_mut(s)?, tag);
        s.offset()
    });
    Ok(Obj {
        kind,
        offset,
        len,
        tag,
    })
}

/// As [`alloc_in`], in a transaction of its own.
fn alloc_kind(pool: &Pool<Root>, kind: u8, len: u64, tag: u64) -> pmem_core::Result<Obj> {
    pool.transaction(|tx| alloc_in(tx, kind, len, tag))
}

/// An object of `len` bytes of `u8`.
fn alloc_tagged(pool: &Pool<Root>, len: u64, tag: u64) -> pmem_core::Result<Obj> {
    alloc_kind(pool, 0, len, tag)
}

fn free_in(tx: &mut Tx<'_, Root>, o: &Obj) -> pmem_core::Result<()> {
    by_kind!(o.kind, T => tx.free_slice(o.slice::<T>()))
}

/// Frees `objs` in one transaction.
fn free_all(pool: &Pool<Root>, objs: &[Obj]) {
    pool.transaction(|tx| objs.iter().try_for_each(|o| free_in(tx, o)))
        .expect("free");
}

/// Whether `o` still holds its tag.
fn intact(r: &Reader<'_, Root>, o: &Obj) -> pmem_core::Result<bool> {
    by_kind!(o.kind, T => Ok(tag_ok(r.get_slice(o.slice::<T>())?, o.tag)))
}

fn class_table(stats: &HeapStats) -> String {
    let mut out = String::from("   unit   runs   live  live/run\n");
    for c in &stats.classes {
        out += &format!(
            "{:>7} {:>6} {:>6} {:>9.1}\n",
            c.unit,
            c.runs,
            c.live_objects,
            c.live_objects as f64 / c.runs.max(1) as f64
        );
    }
    out += &format!(
        "large objects: {}, bytes in use {} of {}, allocated {}\n",
        stats.large_objects, stats.bytes_in_use, stats.heap_bytes, stats.allocated_bytes
    );
    out
}

/// Checks the pool's metadata, that the statistics agree with it and with `live`, and every live
/// object's tag.
fn verify(pool: &Pool<Root>, live: &[Obj], when: &str) {
    let report = check(pool);
    assert!(report.is_healthy(), "{when}: {report}");
    let stats = pool.stats().heap;
    assert_eq!(report.live_objects, live.len() as u64, "{when}: {report}");
    assert_eq!(stats.live_objects, live.len() as u64, "{when}");
    assert_eq!(stats.allocated_bytes, report.allocated_bytes, "{when}");
    let requested: u64 = live.iter().map(|o| o.len).sum();
    assert!(
        stats.allocated_bytes >= requested,
        "{when}: {} bytes allocated for {requested} requested",
        stats.allocated_bytes
    );
    let large = live.iter().filter(|o| o.len > MAX_RUN_UNIT).count() as u64;
    assert_eq!(stats.large_objects, large, "{when}");
    assert!(stats.bytes_in_use <= stats.heap_bytes, "{when}");
    pool.read(|r| {
        for o in live {
            let ok = intact(r, o).unwrap_or_else(|e| {
                panic!("{when}: object {o:?}: {e}");
            });
            assert!(ok, "{when}: object {} is overwritten", o.tag);
        }
    })
    .unwrap();
}

/// What a churn measured: live bytes (requested sizes) over heap bytes in use, at the end and
/// at its lowest once the working set had reached its target.
struct Churn {
    end_ratio: f64,
    end_stats: HeapStats,
    min_ratio: f64,
    min_at: u64,
    min_stats: HeapStats,
}

/// Allocates and frees 20 times the heap's capacity in sizes from `lo` to `hi` bytes,
/// log-uniform, of `kinds` types, keeping about half the heap live by freeing random objects
/// (now and then three in one transaction). Verifies the heap eight times on the way, reopens
/// the pool halfway, frees everything at the end. No allocation may fail.
fn churn(name: &str, lo: u64, hi: u64, kinds: u8, seed: u64) -> Churn {
    const POOL_SIZE: u64 = 64 << 20;
    const CHECKPOINTS: u64 = 8;
    let dir = shm_tempdir("pmem-heap-churn");
    let path = dir.path().join("churn.pool");
    let mut pool = create(&path, POOL_SIZE);
    let heap_bytes = pool.stats().heap.heap_bytes;
    let target = heap_bytes / 2;
    let total = 20 * heap_bytes;

    let mut state = seed;
    let mut live: Vec<Obj> = Vec::new();
    let mut live_bytes = 0u64;
    let (mut allocated, mut allocs, mut frees) = (0u64, 0u64, 0u64);
    let mut warm = false;
    let mut lowest: Option<(f64, u64, HeapStats)> = None;
    let mut next_checkpoint = total / CHECKPOINTS;
    let mut reopened = false;
    let started = std::time::Instant::now();
    while allocated < total {
        let len = log_uniform(&mut state, lo, hi);
        let kind = (rng(&mut state) % kinds as u64) as u8;
        while live_bytes + len > target {
            warm = true;
            let batch = if rng(&mut state) % 4 == 0 { 3 } else { 1 };
            let mut victims = Vec::new();
            while victims.len() < batch && !live.is_empty() && live_bytes + len > target {
                let i = (rng(&mut state) % live.len() as u64) as usize;
                let o = live.swap_remove(i);
                live_bytes -= o.len;
                victims.push(o);
            }
            free_all(&pool, &victims);
            frees += victims.len() as u64;
        }
        match alloc_kind(&pool, kind, len, allocs) {
            Ok(o) => live.push(o),
            Err(e) => {
                let stats = pool.stats().heap;
                panic!(
                    "{name}: allocation {allocs} of {len} bytes failed after {allocated} bytes \
                     allocated ({:.1} heaps), with {live_bytes} bytes live in {} objects: {e}\n{}",
                    allocated as f64 / heap_bytes as f64,
                    live.len(),
                    class_table(&stats)
                );
            }
        }
        live_bytes += len;
        allocated += len;
        allocs += 1;
        if warm {
            let stats = pool.stats().heap;
            let ratio = live_bytes as f64 / stats.bytes_in_use as f64;
            if lowest.as_ref().is_none_or(|(r, _, _)| ratio < *r) {
                lowest = Some((ratio, allocs, stats));
            }
        }
        if allocated >= next_checkpoint {
            next_checkpoint += total / CHECKPOINTS;
            verify(&pool, &live, &format!("{name}: after {allocs} allocations"));
            // Halfway, reopen: the allocator must carry on from what it rebuilds from the pool.
            if !reopened && allocated >= total / 2 {
                let before = pool.stats().heap;
                pool = reopen(pool, &path);
                assert_eq!(
                    pool.stats().heap,
                    before,
                    "{name}: statistics change across reopen"
                );
                verify(&pool, &live, &format!("{name}: after reopening halfway"));
                reopened = true;
            }
        }
    }
    let elapsed = started.elapsed();
    verify(&pool, &live, &format!("{name}: at the end"));
    let end_stats = pool.stats().heap;
    let end_ratio = live_bytes as f64 / end_stats.bytes_in_use as f64;
    let (min_ratio, min_at, min_stats) = lowest.expect("the churn reached its target");
    println!(
        "{name}: {allocs} allocations and {frees} frees of {lo} to {hi} bytes, {kinds} type(s): \
         {allocated} bytes ({:.1} heaps of {heap_bytes}) in {elapsed:.2?}",
        allocated as f64 / heap_bytes as f64
    );
    println!(
        "{name}: at the end {live_bytes} live bytes in {} objects / {} heap bytes in use = \
         {end_ratio:.3}; lowest {min_ratio:.3} after allocation {min_at}",
        live.len(),
        end_stats.bytes_in_use
    );
    println!("{}", class_table(&end_stats));

    // Everything freed: nothing live is left.
    for chunk in live.chunks(64) {
        free_all(&pool, chunk);
    }
    verify(&pool, &[], &format!("{name}: after freeing everything"));
    let empty = pool.stats().heap;
    assert_eq!(empty.allocated_bytes, 0);
    println!(
        "{name}: after freeing everything {} bytes of heap still hold (empty) runs",
        empty.bytes_in_use
    );
    Churn {
        end_ratio,
        end_stats,
        min_ratio,
        min_at,
        min_stats,
    }
}

/// Live bytes over heap bytes in use must stay above this.
const MIN_RATIO: f64 = 0.7;

fn assert_efficient(name: &str, c: &Churn) {
    assert!(
        c.end_ratio > MIN_RATIO,
        "{name}: live/in-use ratio at the end is {:.3}\n{}",
        c.end_ratio,
        class_table(&c.end_stats)
    );
    assert!(
        c.min_ratio > MIN_RATIO,
        "{name}: live/in-use ratio fell to {:.3} after allocation {}\n{}",
        c.min_ratio,
        c.min_at,
        class_table(&c.min_stats)
    );
}

/// The churn from the issue: 20 times the heap's capacity in sizes from 16 B to 1 MiB,
/// log-uniform, about half the heap live. No allocation fails, and the heap in use (chunks
/// holding runs or large objects) stays within 1/0.7 of the live bytes.
#[test]
fn churn_twenty_times_the_heap_keeps_space_efficient() {
    let c = churn("churn", 16, 1 << 20, 1, 0xC4_0A11);
    assert_efficient("churn", &c);
}

/// The same churn with objects of four types: a run holds one type, so each class has up to four
/// times the partly filled runs.
#[test]
fn churn_of_four_types_keeps_space_efficient() {
    let c = churn("four types", 16, 1 << 20, 4, 0xC4_0A11);
    assert_efficient("four types", &c);
}

/// Runs left partly filled by frees are where new objects of their class go, before and after
/// reopening the pool: no new run is made while the existing ones have room.
#[test]
fn partly_filled_runs_are_reused_after_reopen() {
    const RUNS: u64 = 64;
    const PER_RUN: u64 = 256; // 64-byte objects in a 16 KiB run
    let dir = shm_tempdir("pmem-heap-reuse");
    let path = dir.path().join("reuse.pool");
    let mut pool = create(&path, 16 << 20);
    let alloc_lines = |pool: &Pool<Root>, n: u64, from: u64| -> Vec<PPtr<Line>> {
        let mut out = Vec::new();
        for t in 0..n.div_ceil(PER_RUN) {
            let k = PER_RUN.min(n - t * PER_RUN);
            out.extend(
                pool.transaction(|tx| {
                    (0..k)
                        .map(|i| {
                            tx.alloc(Line {
                                words: [from + t * PER_RUN + i; 8],
                            })
                        })
                        .collect::<pmem_core::Result<Vec<_>>>()
                })
                .expect("alloc"),
            );
        }
        out
    };
    let runs_of_64 = |pool: &Pool<Root>| {
        let stats = pool.stats().heap;
        let runs = stats
            .classes
            .iter()
            .find(|c| c.unit == 64)
            .map_or(0, |c| c.runs);
        (runs, stats)
    };
    let mut lines = alloc_lines(&pool, RUNS * PER_RUN, 0);
    let (full_runs, full) = runs_of_64(&pool);
    assert_eq!(full_runs, RUNS, "{}", class_table(&full));

    // Free every other object: each run is half full. The same number of new objects fits in
    // the holes, with or without a reopen between.
    for reopen_first in [false, true] {
        let when = if reopen_first {
            "after reopening"
        } else {
            "without reopening"
        };
        let (kept, freed): (Vec<_>, Vec<_>) =
            lines.iter().enumerate().partition(|(i, _)| i % 2 == 0);
        for chunk in freed.chunks(PER_RUN as usize) {
            pool.transaction(|tx| chunk.iter().try_for_each(|(_, &p)| tx.free(p)))
                .expect("free");
        }
        let mut next: Vec<PPtr<Line>> = kept.into_iter().map(|(_, &p)| p).collect();
        let (half_runs, half) = runs_of_64(&pool);
        assert_eq!(
            half_runs, RUNS,
            "{when}: runs were released while half full"
        );
        if reopen_first {
            pool = reopen(pool, &path);
            assert_eq!(
                pool.stats().heap,
                half,
                "{when}: statistics change across reopen"
            );
        }
        next.extend(alloc_lines(&pool, RUNS * PER_RUN / 2, 1 << 32));
        let (runs, stats) = runs_of_64(&pool);
        assert_eq!(
            runs,
            RUNS,
            "{when}: {} objects of 64 bytes went into new runs although {RUNS} runs had room \
             for them (heap bytes in use {} -> {})\n{}",
            RUNS * PER_RUN / 2,
            half.bytes_in_use,
            stats.bytes_in_use,
            class_table(&stats)
        );
        lines = next;
    }
    let report = check(&pool);
    assert!(report.is_healthy(), "{report}");
    assert_eq!(report.live_objects, RUNS * PER_RUN);
}

/// Small objects of every size class fill the pool to the last byte, then all are freed: their
/// runs go back to the chunk pool, so one object of nearly the whole heap fits.
#[test]
fn freed_small_objects_leave_room_for_one_large() {
    const POOL_SIZE: u64 = 64 << 20;
    let dir = shm_tempdir("pmem-heap-frag");
    let path = dir.path().join("frag.pool");
    let pool = create(&path, POOL_SIZE);
    let heap_bytes = pool.stats().heap.heap_bytes;

    let mut state = 0xF2A6;
    let mut live: Vec<Obj> = Vec::new();
    let mut tag = 0;
    // Batches of 100 per transaction while they fit; then one at a time to the last byte.
    let mut batch = 100;
    loop {
        let lens: Vec<u64> = (0..batch)
            .map(|_| log_uniform(&mut state, 1, MAX_RUN_UNIT))
            .collect();
        let done = pool.transaction(|tx| {
            let mut out = Vec::with_capacity(lens.len());
            for (i, &len) in lens.iter().enumerate() {
                out.push(alloc_in(tx, 0, len, tag + i as u64)?);
            }
            Ok(out)
        });
        match done {
            Ok(objs) => {
                tag += objs.len() as u64;
                live.extend(objs);
            }
            Err(Error::OutOfSpace { .. }) if batch > 1 => batch = 1,
            Err(Error::OutOfSpace { .. }) => break,
            Err(e) => panic!("allocation failed: {e}"),
        }
    }
    // A full pool still takes objects of classes that have a run with room: fill those too.
    for len in [1, 16, 64, 256] {
        while let Ok(o) = alloc_tagged(&pool, len, tag) {
            live.push(o);
            tag += 1;
        }
    }
    let full = pool.stats().heap;
    println!(
        "fragmentation: {} objects, {} bytes allocated, {} of {} heap bytes in use",
        live.len(),
        full.allocated_bytes,
        full.bytes_in_use,
        heap_bytes
    );
    assert!(
        full.bytes_in_use > heap_bytes / 100 * 95,
        "the pool ran out of space with only {} of {heap_bytes} heap bytes in use\n{}",
        full.bytes_in_use,
        class_table(&full)
    );
    verify(&pool, &live, "full");

    // Free in random order, in transactions of 37.
    for i in (1..live.len()).rev() {
        let j = (rng(&mut state) % (i as u64 + 1)) as usize;
        live.swap(i, j);
    }
    for chunk in live.chunks(37) {
        free_all(&pool, chunk);
    }
    live.clear();
    verify(&pool, &live, "after freeing everything");
    let empty = pool.stats().heap;
    println!(
        "fragmentation: after freeing everything {} bytes of heap still hold runs\n{}",
        empty.bytes_in_use,
        class_table(&empty)
    );

    // Nine tenths of the heap in one object.
    let big = heap_bytes / 10 * 9;
    let o = alloc_tagged(&pool, big, 1).unwrap_or_else(|e| {
        // Where the runs still held lie: an object of each class lands in its run.
        let pool_size = pool.info().pool_size;
        let at: Vec<String> = empty
            .classes
            .iter()
            .map(|c| match alloc_tagged(&pool, c.unit, 0) {
                Ok(o) => format!(
                    "{}: {:.1}%",
                    c.unit,
                    o.offset as f64 * 100.0 / pool_size as f64
                ),
                Err(e) => format!("{}: {e}", c.unit),
            })
            .collect();
        panic!(
            "after freeing every small object, {big} of {heap_bytes} heap bytes do not fit in one \
             object: {e}\n{}where the runs lie (unit: offset in the pool): {}",
            class_table(&empty),
            at.join(", ")
        )
    });
    verify(&pool, &[o], "with one large object");
    free_all(&pool, &[o]);
    verify(&pool, &[], "at the end");
}

/// The unit an object of `size` bytes (alignment at most 16) gets: every 16 bytes up to 128,
/// then four classes per doubling up to 32 KiB; larger objects take whole chunks.
fn usable_size(size: u64) -> u64 {
    if size <= 128 {
        return size.max(1).div_ceil(16) * 16;
    }
    if size > MAX_RUN_UNIT {
        return size.div_ceil(CHUNK) * CHUNK;
    }
    let base = 1u64 << (63 - (size - 1).leading_zeros()); // largest power of two below size
    let step = base / 4;
    size.div_ceil(step) * step
}

#[derive(Persistent)]
#[repr(C)]
struct Small {
    a: u64,
    b: u64,
    c: u64,
}

#[derive(Persistent)]
#[repr(C)]
struct Line {
    words: [u64; 8],
}

/// What [`stats_count_exactly_what_was_allocated`] allocates: `count` objects of `size` bytes.
#[derive(Clone, Copy)]
struct Kind {
    name: &'static str,
    size: u64,
    count: u64,
}

/// Live objects, allocated bytes, large objects and (unit, live objects) per class of `kinds`
/// with the number of each that is live.
fn expected_stats(kinds: &[(Kind, u64)]) -> (u64, u64, u64, Vec<(u64, u64)>) {
    let live: u64 = kinds.iter().map(|(_, n)| n).sum();
    let bytes: u64 = kinds.iter().map(|(k, n)| usable_size(k.size) * n).sum();
    let large: u64 = kinds
        .iter()
        .filter(|(k, _)| k.size > MAX_RUN_UNIT)
        .map(|(_, n)| n)
        .sum();
    let mut classes: Vec<(u64, u64)> = Vec::new();
    for (k, n) in kinds
        .iter()
        .filter(|(k, n)| k.size <= MAX_RUN_UNIT && *n > 0)
    {
        let unit = usable_size(k.size);
        match classes.iter_mut().find(|(u, _)| *u == unit) {
            Some((_, c)) => *c += n,
            None => classes.push((unit, *n)),
        }
    }
    classes.sort_unstable();
    (live, bytes, large, classes)
}

fn assert_stats(pool: &Pool<Root>, kinds: &[(Kind, u64)], when: &str) {
    let stats = pool.stats().heap;
    let (live, bytes, large, classes) = expected_stats(kinds);
    let what: Vec<String> = kinds
        .iter()
        .map(|(k, n)| format!("{n} x {} ({} B)", k.name, k.size))
        .collect();
    let ctx = format!(
        "{when}, holding {}:\n{}",
        what.join(", "),
        class_table(&stats)
    );
    assert_eq!(stats.live_objects, live, "live objects {ctx}");
    assert_eq!(stats.allocated_bytes, bytes, "allocated bytes {ctx}");
    assert_eq!(stats.large_objects, large, "large objects {ctx}");
    let got: Vec<(u64, u64)> = stats
        .classes
        .iter()
        .filter(|c| c.live_objects > 0)
        .map(|c| (c.unit, c.live_objects))
        .collect();
    assert_eq!(got, classes, "per-class live objects {ctx}");
    for c in &stats.classes {
        assert!(c.runs >= 1, "class {} counted without a run {ctx}", c.unit);
    }
    let span_bytes: u64 = kinds
        .iter()
        .filter(|(k, _)| k.size > MAX_RUN_UNIT)
        .map(|(k, n)| usable_size(k.size) * n)
        .sum();
    assert!(stats.bytes_in_use >= bytes, "in use below allocated {ctx}");
    assert!(stats.bytes_in_use >= span_bytes, "{ctx}");
    let report = check(pool);
    assert!(report.is_healthy(), "{when}: {report}");
    assert_eq!(report.live_objects, live, "{when}: {report}");
    assert_eq!(report.allocated_bytes, bytes, "{when}: {report}");
}

/// Objects of known types and sizes: the statistics count exactly them, per class too, and say
/// the same after reopening, after frees, and after reopening again.
#[test]
fn stats_count_exactly_what_was_allocated() {
    let dir = shm_tempdir("pmem-heap-stats");
    let path = dir.path().join("stats.pool");
    let mut pool = create(&path, 32 << 20);
    let empty = pool.stats().heap;
    assert_eq!(empty.live_objects, 0);
    assert_eq!(empty.allocated_bytes, 0);
    assert_eq!(empty.bytes_in_use, 0);
    assert!(empty.classes.is_empty(), "{empty:?}");

    let kinds = [
        Kind {
            name: "Small",
            size: 24,
            count: 1000,
        },
        Kind {
            name: "Line",
            size: 64,
            count: 300,
        },
        Kind {
            name: "[u8; 5000]",
            size: 5000,
            count: 50,
        },
        Kind {
            name: "[u8; 100000]",
            size: 100_000,
            count: 7,
        },
        Kind {
            name: "u64",
            size: 8,
            count: 10,
        },
    ];
    let mut small = Vec::new();
    let mut lines = Vec::new();
    let mut mid = Vec::new();
    let mut big = Vec::new();
    let mut words = Vec::new();
    for i in 0..kinds[0].count {
        small.push(pool.alloc(Small { a: i, b: i, c: i }).unwrap());
    }
    // Lines in transactions of ten.
    for t in 0..kinds[1].count / 10 {
        lines.extend(
            pool.transaction(|tx| {
                (0..10)
                    .map(|i| {
                        tx.alloc(Line {
                            words: [t * 10 + i; 8],
                        })
                    })
                    .collect::<pmem_core::Result<Vec<_>>>()
            })
            .unwrap(),
        );
    }
    for i in 0..kinds[2].count {
        mid.push(alloc_tagged(&pool, kinds[2].size, i).unwrap());
    }
    for i in 0..kinds[3].count {
        big.push(alloc_tagged(&pool, kinds[3].size, i).unwrap());
    }
    for i in 0..kinds[4].count {
        words.push(pool.alloc(i).unwrap());
    }
    let all: Vec<(Kind, u64)> = kinds.iter().map(|&k| (k, k.count)).collect();
    assert_stats(&pool, &all, "after allocating");
    let before = pool.stats().heap;
    pool = reopen(pool, &path);
    assert_eq!(pool.stats().heap, before, "statistics change across reopen");
    assert_stats(&pool, &all, "after reopening");
    pool.read(|r| {
        assert_eq!(r.objects::<Small>().count(), 1000);
        assert_eq!(r.objects::<Line>().count(), 300);
        assert_eq!(r.objects::<u64>().count(), 10);
    })
    .unwrap();

    // Free every other Small and Line (one by one and in a transaction), 20 of the 5000-byte
    // objects, 3 large ones and all the u64s.
    for p in small.iter().step_by(2) {
        pool.free(*p).unwrap();
    }
    pool.transaction(|tx| lines.iter().step_by(2).try_for_each(|p| tx.free(*p)))
        .unwrap();
    for o in &mid[..20] {
        free_all(&pool, &[*o]);
    }
    free_all(&pool, &big[..3]);
    for p in &words {
        pool.free(*p).unwrap();
    }
    let counts = [500, 150, 30, 4, 0];
    let after: Vec<(Kind, u64)> = kinds.iter().zip(counts).map(|(&k, n)| (k, n)).collect();
    assert_stats(&pool, &after, "after freeing");
    let before = pool.stats().heap;
    pool = reopen(pool, &path);
    assert_eq!(
        pool.stats().heap,
        before,
        "statistics change across reopen after frees"
    );
    assert_stats(&pool, &after, "after freeing and reopening");
    pool.read(|r| {
        let kept: Vec<u64> = r.objects::<Small>().map(|p| r.get(p).unwrap().a).collect();
        assert_eq!(kept, (1..1000).step_by(2).collect::<Vec<u64>>());
        assert_eq!(r.objects::<Line>().count(), 150);
        assert_eq!(r.objects::<u64>().count(), 0);
        for o in mid[20..].iter().chain(&big[3..]) {
            assert!(intact(r, o).unwrap());
        }
    })
    .unwrap();
}
