//! Pool images whose chunk table or run bitmaps were edited to describe blocks that overlap,
//! leave their extent, or carry bits the allocator never writes: opening refuses each with a
//! corruption error naming the chunk, and nothing that reads the image panics.

use std::panic::{catch_unwind, AssertUnwindSafe};

use pmem_core::error::{ChunkProblem, Corruption};
use pmem_core::inspect::Inspection;
use pmem_core::{Error, PPtr, PSlice, Persistent, Pool, PoolImage};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    big: PSlice<u64>,
    head: PPtr<Node>,
}

/// 24 bytes: in the 32-byte size class, whose runs are one chunk.
#[derive(Persistent)]
#[repr(C)]
struct Node {
    value: u64,
    next: PPtr<Node>,
    other: u64,
}

const CHUNK: u64 = 16 * 1024;
/// Bytes of run bitmap per chunk (`layout/heap.rs`).
const BITMAP_BYTES: u64 = CHUNK / 16 / 8;
// Header fields (`layout/header.rs`; checked by pool_errors' `header_layout_is_as_documented`).
const ROOT_OFFSET: usize = 104;
const CHUNK_TABLE_OFFSET: usize = 128;
const HEAP_OFFSET: usize = 136;
const CHUNK_COUNT: usize = 152;
// Chunk entry word 0: kind | class << 8 | count << 32.
const RUN: u64 = 1;
const SPAN: u64 = 2;
const CONT: u64 = 3;
/// Size class 2 holds 48-byte objects, 341 to a one-chunk run: its last bitmap word has 21 slots.
const CLASS_48: u64 = 2;

fn word(kind: u64, class: u64, count: u64) -> u64 {
    kind | class << 8 | count << 32
}

/// A pool image with its metadata's places.
#[derive(Clone)]
struct Image {
    bytes: Vec<u8>,
}

impl Image {
    fn u64(&self, at: u64) -> u64 {
        let at = at as usize;
        u64::from_le_bytes(self.bytes[at..at + 8].try_into().unwrap())
    }
    fn set(&mut self, at: u64, v: u64) {
        let at = at as usize;
        self.bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }
    fn table(&self) -> u64 {
        self.u64(CHUNK_TABLE_OFFSET as u64)
    }
    fn chunks(&self) -> u64 {
        self.u64(CHUNK_COUNT as u64)
    }
    fn entry(&self, chunk: u64) -> u64 {
        self.table() + 16 * chunk
    }
    fn chunk_word(&self, chunk: u64) -> u64 {
        self.u64(self.entry(chunk))
    }
    fn set_chunk(&mut self, chunk: u64, word: u64, fingerprint: u64) {
        let e = self.entry(chunk);
        self.set(e, word);
        self.set(e + 8, fingerprint);
    }
    fn bitmap(&self, chunk: u64, word: u64) -> u64 {
        let table_end = self.table() + 16 * self.chunks();
        table_end.div_ceil(64) * 64 + chunk * BITMAP_BYTES + word * 8
    }
    /// The chunk holding pool offset `offset`.
    fn chunk_of(&self, offset: u64) -> u64 {
        (offset - self.u64(HEAP_OFFSET as u64)) / CHUNK
    }
    fn root(&self) -> u64 {
        self.u64(ROOT_OFFSET as u64)
    }
    /// The first chunk of the large object the root points at, and its length in chunks.
    fn span(&self) -> (u64, u64) {
        let first = self.chunk_of(self.u64(self.root()));
        (first, self.chunk_word(first) >> 32)
    }
    /// The first chunk of the run holding the list's head.
    fn node_run(&self) -> u64 {
        self.chunk_of(self.u64(self.root() + 16))
    }
    /// A free chunk after every block.
    fn free_chunk(&self) -> u64 {
        (0..self.chunks())
            .rev()
            .find(|&c| self.chunk_word(c) == 0)
            .unwrap()
    }
    fn pool_image(&self) -> PoolImage {
        PoolImage::from_bytes(&self.bytes)
    }
}

/// A pool holding a large object of 6 chunks and a list of 40 nodes in a run.
fn sample() -> Image {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sample.pool");
    {
        let pool = Pool::<Root>::create(&path, 2 << 20).unwrap();
        pool.transaction(|tx| -> pmem_core::Result<_> {
            let big = tx.alloc_slice_zeroed::<u64>(6 * CHUNK / 8)?;
            tx.root_mut().set_big(big)?;
            for value in 0..40 {
                let next = tx.root().head;
                let node = tx.alloc(Node {
                    value,
                    next,
                    other: 0,
                })?;
                tx.root_mut().set_head(node)?;
            }
            Ok(())
        })
        .unwrap();
    }
    let image = pmem_core::check::read_pool_file(&path).unwrap();
    Image {
        bytes: image.as_bytes().to_vec(),
    }
}

/// Everything a program could do with an opened pool: read every node, write one through
/// `get_mut_many`, free them all, allocate again.
fn exercise(pool: &Pool<Root>) {
    let nodes: Vec<PPtr<Node>> = pool.read(|r| r.objects::<Node>().collect()).unwrap();
    let _ = pool.transaction(|tx| {
        if let [a, b, ..] = nodes[..] {
            if let Ok([x, y]) = tx.get_mut_many([a, b]) {
                x.value = 1;
                y.value = 2;
            }
        }
        for &n in &nodes {
            tx.free(n)?;
        }
        tx.root_mut().set_head(PPtr::null())
    });
    let _ = pool.transaction(|tx| tx.alloc_slice_zeroed::<u64>(4096).map(|_| ()));
    let _ = pmem_core::check::check(pool);
}

/// Opening `image` fails with a corruption error naming `chunk` and `expected(problem)`; the deep
/// check and the inspector read the image without panicking.
fn assert_refused(image: &Image, chunk: u64, what: &str, expected: fn(&ChunkProblem) -> bool) {
    match Pool::<Root>::builder().open_image(image.pool_image()) {
        Err(Error::Corrupt {
            problem: Corruption::ChunkTable {
                chunk: c, problem, ..
            },
            ..
        }) if c == chunk => assert!(expected(&problem), "{what}: {problem:?}"),
        Err(e @ Error::Corrupt { .. }) => {
            panic!("{what}: the error should name chunk {chunk}: {e}")
        }
        Err(e) => panic!("{what}: expected Corrupt, got {e}"),
        Ok(pool) => {
            exercise(&pool);
            panic!("{what}: the pool opened");
        }
    }
    let read = catch_unwind(AssertUnwindSafe(|| {
        let _ = pmem_core::check::check_image(image.pool_image());
        if let Ok(inspection) = Inspection::from_image(image.pool_image()) {
            let _ = inspection.check();
            let _ = inspection.objects();
            let _ = inspection.stats();
        }
    }));
    assert!(read.is_ok(), "{what}: reading the image panicked");
}

#[test]
fn the_sample_opens_and_works() {
    let image = sample();
    let pool = Pool::<Root>::builder()
        .open_image(image.pool_image())
        .unwrap();
    assert_eq!(pool.read(|r| r.objects::<Node>().count()).unwrap(), 40);
    exercise(&pool);
    let report = pmem_core::check::check(&pool);
    assert!(report.is_healthy(), "{report}");
}

#[test]
fn a_large_object_inside_a_large_object_is_refused() {
    let mut image = sample();
    let (first, count) = image.span();
    assert!(count >= 6, "{count}");
    let fp = image.u64(image.entry(first) + 8);
    image.set_chunk(first + 2, word(SPAN, 0, 1), fp);
    assert_refused(&image, first + 2, "span in a span", |p| {
        matches!(p, ChunkProblem::InsideSpan { .. })
    });
}

#[test]
fn a_run_inside_a_large_object_is_refused() {
    let mut image = sample();
    let (first, _) = image.span();
    let run = image.node_run();
    let run_word = image.chunk_word(run);
    let fp = image.u64(image.entry(run) + 8);
    image.set_chunk(first + 1, run_word, fp);
    let bit = image.bitmap(first + 1, 0);
    image.set(bit, 0b111);
    assert_refused(&image, first + 1, "run in a span", |p| {
        matches!(p, ChunkProblem::InsideSpan { .. })
    });
}

#[test]
fn a_continuation_inside_a_large_object_is_refused() {
    let mut image = sample();
    let (first, _) = image.span();
    image.set_chunk(first + 3, word(CONT, 0, 3), 0);
    assert_refused(&image, first + 3, "continuation in a span", |p| {
        matches!(p, ChunkProblem::InsideSpan { .. })
    });
}

#[test]
fn a_large_object_past_the_heap_is_refused() {
    let mut image = sample();
    let (first, _) = image.span();
    let too_long = image.chunks() - first + 1;
    let fp = image.u64(image.entry(first) + 8);
    image.set_chunk(first, word(SPAN, 0, too_long), fp);
    assert_refused(&image, first, "span past the end", |p| {
        matches!(p, ChunkProblem::SpanLength { .. })
    });
}

#[test]
fn stray_bits_in_an_entry_are_refused() {
    let image = sample();
    let run = image.node_run();
    let (first, _) = image.span();
    let free = image.free_chunk();
    for (chunk, bits, what) in [
        (run, 1 << 20, "run head, unused bits"),
        (first, 1 << 8, "span with a class"),
        (free, 5 << 32, "free chunk with a count"),
        (free, 7 << 8, "free chunk with a class"),
    ] {
        let mut bad = image.clone();
        let e = bad.entry(chunk);
        let w = bad.u64(e);
        bad.set(e, w | bits);
        assert_refused(&bad, chunk, what, |p| {
            matches!(
                p,
                ChunkProblem::StrayBits { .. }
                    | ChunkProblem::FreeWithFields { .. }
                    | ChunkProblem::SpanLength { class: 1, .. }
            )
        });
    }
}

#[test]
fn bitmap_bits_past_the_last_slot_are_refused() {
    let image = sample();
    let free = image.free_chunk();
    let mut good = image.clone();
    good.set_chunk(free, word(RUN, CLASS_48, 1), 0x1234);
    // Slot 340, the run's last, in word 5.
    let last = good.bitmap(free, 5);
    good.set(last, 1 << 20);
    let pool = Pool::<Root>::builder()
        .open_image(good.pool_image())
        .unwrap();
    assert_eq!(pool.stats().heap.live_objects, 42);
    drop(pool);
    let mut bad = good.clone();
    bad.set(last, 1 << 21);
    assert_refused(&bad, free, "a slot past the last", |p| {
        matches!(p, ChunkProblem::BitmapPastEnd { slots: 341, .. })
    });
}

#[test]
fn a_run_that_leaves_the_heap_or_is_cut_short_is_refused() {
    let image = sample();
    let run = image.node_run();
    let mut bad = image.clone();
    // A run of 48-byte objects says two chunks: its class needs one.
    bad.set_chunk(run, word(RUN, CLASS_48, 2), 1);
    assert_refused(&bad, run, "run of the wrong length", |p| {
        matches!(
            p,
            ChunkProblem::RunLength {
                chunks: 2,
                needed: 1,
                ..
            }
        )
    });
    let mut bad = image.clone();
    let last = image.chunks() - 1;
    // The largest class (39, of 32 KiB objects) needs 16 chunks: from the last chunk it leaves
    // the heap.
    bad.set_chunk(last, word(RUN, 39, 16), 1);
    assert_refused(&bad, last, "run past the end", |p| {
        matches!(
            p,
            ChunkProblem::RunLength {
                class: 39,
                needed: 16,
                left: 1,
                ..
            }
        )
    });
    let mut bad = image.clone();
    bad.set_chunk(last, word(RUN, 63, 16), 1);
    assert_refused(&bad, last, "a class that does not exist", |p| {
        matches!(p, ChunkProblem::UnknownClass { class: 63 })
    });
}
