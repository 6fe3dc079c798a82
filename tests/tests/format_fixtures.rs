//! The on-media format, pinned by pools this library wrote.
//!
//! `tests/fixtures/format-3.0/` holds three pools made by the version that introduced format
//! 3.0: an empty pool, one with objects of several types linked from the root, and a crash
//! image taken in the middle of a transaction. Every later version must open each of them,
//! pass the deep check, roll the interrupted transaction back, and read exactly the values
//! written here. The tests open copies of the committed bytes (opening writes: the run id,
//! recovery); they never make the pools again.
//!
//! Beside that, the tests read the fixtures' bytes themselves, at literal offsets (header
//! fields, chunk table, bitmaps, log entries and their keyed checksums), and pin literal type
//! fingerprints: a change to the format that the library would still read back consistently
//! from its own new pools fails here, before it locks users out of their old ones.
//!
//! A fixture is stored sparse, as its non-zero 4 KiB pages (see `tests/fixtures/README.md`): the
//! pools are 272 and 400 KiB, mostly zeros, and take 145 KiB together.
//!
//! To make the fixtures again (only for a new format version, in a new directory):
//! `PMEM_WRITE_FIXTURES=1 cargo test -p pmem-tests --test format_fixtures -- --ignored`.
//! Without the variable, the ignored generator builds them in a temporary directory and runs
//! every check on those instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pmem_core::check;
use pmem_core::crash::{CrashTest, ImageKind};
use pmem_core::{ClassStats, Error, HeapStats, PPtr, PSlice, Persistent, Pool, PoolImage};

// ---------------------------------------------------------------------------------------------
// The fixture types. Their layout is part of the fixtures: never change them.

#[derive(Persistent)]
#[repr(C)]
struct FixRoot {
    magic: u64,
    count: u32,
    flags: u32,
    head: PPtr<FixNode>,
    name: PSlice<u8>,
    samples: PSlice<u64>,
    pair: PPtr<FixPair>,
    blob: PPtr<FixBlob>,
    grid: [i16; 4],
}

#[derive(Persistent)]
#[repr(C)]
struct FixNode {
    value: u64,
    weight: i32,
    tag: [u8; 4],
    next: PPtr<FixNode>,
}

#[derive(Persistent)]
#[repr(C)]
struct Point {
    x: i32,
    y: i32,
}

#[derive(Persistent)]
#[repr(C)]
struct FixPair {
    a: Point,
    b: Point,
    label: [u8; 8],
}

/// Larger than the largest size class: a span of whole chunks.
#[derive(Persistent)]
#[repr(C)]
struct FixBlob {
    header: u64,
    words: [u64; BLOB_WORDS],
}

const BLOB_WORDS: usize = 5119;

/// Allocated only by the interrupted transaction, which recovery rolls back.
#[derive(Persistent)]
#[repr(C)]
struct FixExtra {
    value: u64,
}

// ---------------------------------------------------------------------------------------------
// The values the fixtures hold.

const LAYOUT: &str = "pmem-format-fixture";
const MAGIC: u64 = 0x0123_4567_89ab_cdef;
const FLAGS: u32 = 0xdead_beef;
const GRID: [i16; 4] = [1, -2, 300, i16::MIN];
const NAME: &[u8] = b"format 3.0 fixture";
const SAMPLES: [u64; 4] = [1, u64::MAX, 1 << 63, 42];
/// `(value, weight, tag)` of each node, head first.
const NODES: [(u64, i32, [u8; 4]); 3] = [
    (10, -1, *b"n0\0\0"),
    (20, 2, *b"n1\0\0"),
    (30, -3, *b"n2\0\0"),
];
const BLOB_HEADER: u64 = 0xb10b;
/// `(index, value)` of the blob's non-zero words.
const BLOB_SET: [(usize, u64); 3] = [(0, 1), (2559, 2), (BLOB_WORDS - 1, 3)];

fn pair_value() -> FixPair {
    FixPair {
        a: Point { x: -5, y: 6 },
        b: Point {
            x: i32::MIN,
            y: i32::MAX,
        },
        label: *b"pair\0\0\0\0",
    }
}

/// The smallest pool this library makes for a root of up to 4 KiB: 4 heap chunks.
const EMPTY_SIZE: u64 = 278_528;
/// 12 heap chunks: room for a run of each type, the blob's span and the transaction's own run.
const OBJECTS_SIZE: u64 = EMPTY_SIZE + 8 * CHUNK_SIZE;

// ---------------------------------------------------------------------------------------------
// Format 3.0 constants, written out rather than taken from the library.

const PAGE: usize = 4096;
const HEADER_SIZE: usize = 4096;
const LOG_OFFSET: u64 = 8192;
const LOG_SLOT_SIZE: u64 = 64 * 1024;
const LOG_SLOTS: u64 = 2;
const ROOT_OFFSET: u64 = 204_800;
const CHUNK_TABLE_OFFSET: u64 = 208_896;
const HEAP_OFFSET: u64 = 212_992;
const CHUNK_SIZE: u64 = 16 * 1024;
const CHUNK_ENTRY_SIZE: u64 = 16;
const BITMAP_BYTES: u64 = 128;

/// Header fields: (offset, size).
mod field {
    pub const MAGIC: (usize, usize) = (0, 8);
    pub const MAJOR: (usize, usize) = (8, 2);
    pub const MINOR: (usize, usize) = (10, 2);
    pub const HEADER_SIZE: (usize, usize) = (12, 4);
    pub const INCOMPAT: (usize, usize) = (16, 8);
    pub const RO_COMPAT: (usize, usize) = (24, 8);
    pub const COMPAT: (usize, usize) = (32, 8);
    pub const UUID: (usize, usize) = (40, 16);
    pub const CREATED: (usize, usize) = (56, 8);
    pub const RUN_ID: (usize, usize) = (64, 8);
    pub const POOL_SIZE: (usize, usize) = (72, 8);
    pub const LOG_OFFSET: (usize, usize) = (80, 8);
    pub const LOG_SLOT_SIZE: (usize, usize) = (88, 8);
    pub const LOG_SLOTS: (usize, usize) = (96, 8);
    pub const ROOT_OFFSET: (usize, usize) = (104, 8);
    pub const ROOT_SIZE: (usize, usize) = (112, 8);
    pub const ROOT_FINGERPRINT: (usize, usize) = (120, 8);
    pub const CHUNK_TABLE_OFFSET: (usize, usize) = (128, 8);
    pub const HEAP_OFFSET: (usize, usize) = (136, 8);
    pub const CHUNK_SIZE: (usize, usize) = (144, 8);
    pub const CHUNK_COUNT: (usize, usize) = (152, 8);
    pub const LAYOUT_NAME: (usize, usize) = (160, 64);
    pub const ROOT_TYPE: (usize, usize) = (224, 3584);
    pub const LOG_KEY: (usize, usize) = (3808, 16);
    pub const RESERVED: (usize, usize) = (3824, 264);
    pub const CHECKSUM: (usize, usize) = (4088, 8);
}

/// Log entry header: `kind: u8 | flags: u8 | aux: u16 | len: u32 | gen: u64 | checksum: u64`.
const ENTRY_HEADER: u64 = 24;
const ENTRY_ALIGN: u64 = 64;
const UNDO: u8 = 1;
const REDO: u8 = 2;
const COMMIT: u8 = 5;
const RETIRED: u8 = 6;
/// A heap operation: code and target in one word, the operand in the next.
const OP_SIZE: u64 = 16;

/// Chunk table kinds.
const RUN: u8 = 1;
const SPAN: u8 = 2;

// ---------------------------------------------------------------------------------------------
// Reading the fixtures.

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/format-3.0")
}

/// The three fixtures of a format version, by file name.
const EMPTY: &str = "empty.fixture";
const OBJECTS: &str = "objects.fixture";
const INTERRUPTED: &str = "interrupted.fixture";

const SPARSE_MAGIC: &[u8; 8] = b"PMEMFIXT";
const SPARSE_VERSION: u32 = 1;

/// The pool image a sparse fixture file holds; panics if the file is not one.
fn expand(sparse: &[u8]) -> Vec<u8> {
    let u32_at = |at: usize| u32::from_le_bytes(sparse[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(sparse[at..at + 8].try_into().unwrap());
    assert_eq!(&sparse[..8], SPARSE_MAGIC, "not a sparse fixture");
    assert_eq!(u32_at(8), SPARSE_VERSION);
    assert_eq!(u32_at(12) as usize, PAGE);
    let (len, hash, pages) = (u64_at(16) as usize, u64_at(24), u64_at(32) as usize);
    assert_eq!(
        sparse.len(),
        40 + pages * (8 + PAGE),
        "sparse fixture length"
    );
    let mut image = vec![0u8; len];
    for i in 0..pages {
        let at = 40 + i * (8 + PAGE);
        let page = u64_at(at) as usize;
        image[page * PAGE..(page + 1) * PAGE].copy_from_slice(&sparse[at + 8..at + 8 + PAGE]);
    }
    assert_eq!(
        xxhash_rust::xxh3::xxh3_64(&image),
        hash,
        "expanded image hash"
    );
    image
}

/// The sparse form of `image`: its non-zero pages.
fn sparsify(image: &[u8]) -> Vec<u8> {
    assert_eq!(image.len() % PAGE, 0);
    let pages: Vec<(usize, &[u8])> = image
        .chunks(PAGE)
        .enumerate()
        .filter(|(_, p)| p.iter().any(|&b| b != 0))
        .collect();
    let mut out = Vec::new();
    out.extend_from_slice(SPARSE_MAGIC);
    out.extend_from_slice(&SPARSE_VERSION.to_le_bytes());
    out.extend_from_slice(&(PAGE as u32).to_le_bytes());
    out.extend_from_slice(&(image.len() as u64).to_le_bytes());
    out.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(image).to_le_bytes());
    out.extend_from_slice(&(pages.len() as u64).to_le_bytes());
    for (i, page) in pages {
        out.extend_from_slice(&(i as u64).to_le_bytes());
        out.extend_from_slice(page);
    }
    out
}

/// The pool image of fixture `name` in `dir`.
fn image_of(dir: &Path, name: &str) -> Vec<u8> {
    let path = dir.join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    expand(&bytes)
}

/// A pool file holding fixture `name`, in a fresh temporary directory.
fn install(dir: &Path, name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = pmem_tests::shm_tempdir("pmem-fixture");
    let path = tmp.path().join(name.replace(".fixture", ".pool"));
    std::fs::write(&path, image_of(dir, name)).unwrap();
    (tmp, path)
}

fn le(bytes: &[u8], (at, size): (usize, usize)) -> u64 {
    let mut word = [0u8; 8];
    word[..size].copy_from_slice(&bytes[at..at + size]);
    u64::from_le_bytes(word)
}

fn u64_at(bytes: &[u8], at: u64) -> u64 {
    le(bytes, (at as usize, 8))
}

// ---------------------------------------------------------------------------------------------
// What each fixture must read as.

/// The objects fixture's values, field by field, and the pointers' types by typed reads.
fn assert_objects(pool: &Pool<FixRoot>) {
    pool.read(|r| {
        let root = r.root();
        assert_eq!(root.magic, MAGIC);
        assert_eq!(root.count, NODES.len() as u32);
        assert_eq!(root.flags, FLAGS);
        assert_eq!(root.grid, GRID);
        assert_eq!(r.get_slice(root.name).unwrap(), NAME);
        assert_eq!(r.get_slice(root.samples).unwrap(), &SAMPLES);
        let mut at = root.head;
        for (i, &(value, weight, tag)) in NODES.iter().enumerate() {
            let node = r.get(at).unwrap_or_else(|e| panic!("node {i}: {e}"));
            assert_eq!(
                (node.value, node.weight, node.tag),
                (value, weight, tag),
                "node {i}"
            );
            at = node.next;
        }
        assert!(at.is_null(), "the list ends after {} nodes", NODES.len());
        let pair = r.get(root.pair).unwrap();
        let want = pair_value();
        assert_eq!((pair.a.x, pair.a.y), (want.a.x, want.a.y));
        assert_eq!((pair.b.x, pair.b.y), (want.b.x, want.b.y));
        assert_eq!(pair.label, want.label);
        let blob = r.get(root.blob).unwrap();
        assert_eq!(blob.header, BLOB_HEADER);
        let mut words = [0u64; BLOB_WORDS];
        for (i, v) in BLOB_SET {
            words[i] = v;
        }
        assert!(blob.words == words, "blob words");
        assert_eq!(
            r.objects::<FixExtra>().count(),
            0,
            "no object of the rolled-back type"
        );
    })
    .unwrap();
    assert_heap(pool, objects_heap());
    let report = check::check(pool);
    assert!(report.is_healthy(), "{report}");
    assert_eq!(report.live_objects, 7, "{report}");
    assert_eq!(report.reachable_objects, 7, "{report}");
    assert!(report.unreachable.is_empty(), "{report}");
}

/// The allocator's counts for the objects fixture: three 24-byte nodes, the 24-byte pair, the
/// 18-byte name and the 32-byte samples, each type in its own run of 32-byte slots, and the
/// 40,960-byte blob in a span of 3 chunks.
fn objects_heap() -> HeapStats {
    HeapStats {
        heap_bytes: 12 * CHUNK_SIZE,
        bytes_in_use: 7 * CHUNK_SIZE,
        allocated_bytes: 6 * 32 + 3 * CHUNK_SIZE,
        live_objects: 7,
        large_objects: 1,
        free_bytes: 5 * CHUNK_SIZE,
        log_bytes: 0,
        log_reserve_bytes: 0,
        classes: vec![ClassStats {
            unit: 32,
            runs: 4,
            slots_per_run: 512,
            live_objects: 6,
        }],
    }
}

/// The pool's heap counts are `expected`'s, but for the log reserve: that is the allocator's
/// policy (how much free space it keeps for logs), not something the pool stores.
fn assert_heap(pool: &Pool<FixRoot>, expected: HeapStats) {
    let actual = pool.stats().heap;
    let expected = HeapStats {
        log_reserve_bytes: actual.log_reserve_bytes,
        ..expected
    };
    assert_eq!(actual, expected);
}

fn empty_heap() -> HeapStats {
    HeapStats {
        heap_bytes: 4 * CHUNK_SIZE,
        bytes_in_use: 0,
        allocated_bytes: 0,
        live_objects: 0,
        large_objects: 0,
        free_bytes: 4 * CHUNK_SIZE,
        log_bytes: 0,
        log_reserve_bytes: 0,
        classes: Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// The checks, on the fixtures of a directory (the committed ones, or freshly made ones).

fn check_empty(dir: &Path) {
    let (_tmp, path) = install(dir, EMPTY);
    let report = check::check_file(&path).unwrap();
    assert!(report.is_healthy(), "{report}");
    assert!(report.notes.is_empty(), "nothing to recover: {report}");
    let pool = Pool::<FixRoot>::builder()
        .layout(LAYOUT)
        .open(&path)
        .unwrap();
    let info = pool.info().clone();
    assert_eq!(info.version, (3, 0));
    assert_eq!(info.layout_name, LAYOUT);
    assert_eq!(info.root_type, "FixRoot");
    assert_eq!(info.root_size, 80);
    assert_eq!(info.root_offset, ROOT_OFFSET);
    assert_eq!(info.root_fingerprint, FixRoot::FINGERPRINT);
    assert_eq!(info.pool_size, EMPTY_SIZE);
    assert_eq!(info.heap_size, 4 * CHUNK_SIZE);
    assert_eq!(info.recovery, Default::default());
    pool.read(|r| {
        let root = r.root();
        assert_eq!(
            (root.magic, root.count, root.flags, root.grid),
            (0, 0, 0, [0; 4])
        );
        assert!(root.head.is_null() && root.pair.is_null() && root.blob.is_null());
        assert!(root.name.is_null() && root.samples.is_null());
    })
    .unwrap();
    assert_heap(&pool, empty_heap());
    let report = check::check(&pool);
    assert!(report.is_healthy() && report.live_objects == 0, "{report}");
}

fn check_objects(dir: &Path) {
    let (_tmp, path) = install(dir, OBJECTS);
    let report = check::check_file(&path).unwrap();
    assert!(report.is_healthy(), "{report}");
    assert!(report.notes.is_empty(), "nothing to recover: {report}");
    assert_eq!(report.live_objects, 7, "{report}");
    let pool = Pool::<FixRoot>::builder()
        .layout(LAYOUT)
        .open(&path)
        .unwrap();
    assert_eq!(pool.info().recovery, Default::default());
    assert_eq!(pool.info().pool_size, OBJECTS_SIZE);
    assert_objects(&pool);
    // Still a working pool: a transaction commits, and the result survives a reopen.
    pool.transaction(|tx| -> pmem_core::Result<()> { tx.root_mut().set_count(99) })
        .unwrap();
    drop(pool);
    let pool = Pool::<FixRoot>::open(&path).unwrap();
    assert_eq!(pool.read(|r| r.root().count).unwrap(), 99);
}

fn check_interrupted(dir: &Path) {
    let (_tmp, path) = install(dir, INTERRUPTED);
    let image = image_of(dir, INTERRUPTED);
    // The crash came after the transaction's stores: recovery has something to undo.
    let raw_root = |at: u64| u64_at(&image, ROOT_OFFSET + at);
    assert_eq!(
        raw_root(8) as u32,
        1000,
        "the transaction's count, in place"
    );
    assert_eq!(
        u64_at(&image, raw_root(16)),
        5,
        "the transaction's new head, in place"
    );
    let logs = read_logs(&image);
    let undo = logs[0].undo_entries;
    // The transaction before it committed, but its log was not retired yet: recovery replays
    // its heap operations again, to the same effect.
    assert!(
        logs.len() == 2 && logs[1].committed && logs[1].gen + 1 == logs[0].gen,
        "{logs:?}"
    );
    let replayed = logs[1].ops;
    // The checker reads the file as it is: a transaction to roll back is not damage.
    let report = check::check_file(&path).unwrap();
    assert!(report.is_healthy(), "{report}");
    assert!(
        !report.notes.is_empty(),
        "the check says opening will recover: {report}"
    );
    let pool = Pool::<FixRoot>::open(&path).unwrap();
    let recovery = pool.info().recovery;
    assert!(recovery.rolled_back, "{recovery:?}");
    assert_eq!(recovery.undo_applied, undo, "{recovery:?}");
    assert_eq!(recovery.ops_replayed, replayed, "{recovery:?}");
    assert_eq!(pool.info().layout_name, "");
    assert_eq!(pool.info().pool_size, OBJECTS_SIZE);
    assert_objects(&pool);
    drop(pool);
    // Recovery is durable: the next open has nothing to do.
    let pool = Pool::<FixRoot>::open(&path).unwrap();
    assert_eq!(pool.info().recovery, Default::default());
    assert_objects(&pool);
}

/// Every header field at its offset, in both copies, agreeing with what the library reports.
fn check_header(dir: &Path, name: &str) {
    let image = image_of(dir, name);
    let (tmp, path) = install(dir, name);
    let pool = Pool::<FixRoot>::open(&path).unwrap();
    let info = pool.info().clone();
    drop(pool);
    drop(tmp);
    for copy in 0..2 {
        let h = &image[copy * HEADER_SIZE..(copy + 1) * HEADER_SIZE];
        let ctx = format!("{name}, header copy {copy}");
        assert_eq!(&h[..8], b"PMEMPOOL", "{ctx}");
        assert_eq!(
            le(h, field::MAGIC),
            u64::from_le_bytes(*b"PMEMPOOL"),
            "{ctx}"
        );
        assert_eq!(le(h, field::MAJOR), 3, "{ctx}");
        assert_eq!(le(h, field::MINOR), 0, "{ctx}");
        assert_eq!(le(h, field::HEADER_SIZE), HEADER_SIZE as u64, "{ctx}");
        assert_eq!(le(h, field::INCOMPAT), 0, "{ctx}");
        assert_eq!(le(h, field::RO_COMPAT), 0, "{ctx}");
        assert_eq!(le(h, field::COMPAT), 0, "{ctx}");
        let (at, size) = field::UUID;
        assert_eq!(h[at..at + size], info.uuid, "{ctx}");
        assert_ne!(info.uuid, [0; 16], "{ctx}");
        assert_eq!(le(h, field::CREATED), info.created_unix_secs, "{ctx}");
        assert_eq!(
            le(h, field::RUN_ID) + 1,
            info.run_id,
            "{ctx}: the open bumps the run id"
        );
        assert_eq!(le(h, field::POOL_SIZE), image.len() as u64, "{ctx}");
        assert_eq!(le(h, field::POOL_SIZE), info.pool_size, "{ctx}");
        assert_eq!(le(h, field::LOG_OFFSET), LOG_OFFSET, "{ctx}");
        assert_eq!(le(h, field::LOG_SLOT_SIZE), LOG_SLOT_SIZE, "{ctx}");
        assert_eq!(le(h, field::LOG_SLOTS), LOG_SLOTS, "{ctx}");
        assert_eq!(le(h, field::ROOT_OFFSET), ROOT_OFFSET, "{ctx}");
        assert_eq!(le(h, field::ROOT_OFFSET), info.root_offset, "{ctx}");
        assert_eq!(le(h, field::ROOT_SIZE), 80, "{ctx}");
        assert_eq!(le(h, field::ROOT_FINGERPRINT), ROOT_FINGERPRINT, "{ctx}");
        assert_eq!(
            le(h, field::CHUNK_TABLE_OFFSET),
            CHUNK_TABLE_OFFSET,
            "{ctx}"
        );
        assert_eq!(le(h, field::HEAP_OFFSET), HEAP_OFFSET, "{ctx}");
        assert_eq!(le(h, field::CHUNK_SIZE), CHUNK_SIZE, "{ctx}");
        let chunks = (image.len() as u64 - HEAP_OFFSET) / CHUNK_SIZE;
        assert_eq!(le(h, field::CHUNK_COUNT), chunks, "{ctx}");
        assert_eq!(
            le(h, field::CHUNK_COUNT) * CHUNK_SIZE,
            info.heap_size,
            "{ctx}"
        );
        let (at, size) = field::LAYOUT_NAME;
        let layout = &h[at..at + size];
        let end = layout.iter().position(|&b| b == 0).unwrap();
        assert_eq!(&layout[..end], info.layout_name.as_bytes(), "{ctx}");
        assert!(layout[end..].iter().all(|&b| b == 0), "{ctx}: NUL-padded");
        // The root type: a length-prefixed name, size, alignment and fingerprint, then fields.
        let (at, _) = field::ROOT_TYPE;
        assert_eq!(h[at] as usize, "FixRoot".len(), "{ctx}");
        assert_eq!(&h[at + 1..at + 8], b"FixRoot", "{ctx}");
        assert_eq!(le(h, (at + 8, 8)), 80, "{ctx}: root size");
        assert_eq!(le(h, (at + 16, 8)), 8, "{ctx}: root alignment");
        assert_eq!(le(h, (at + 24, 8)), ROOT_FINGERPRINT, "{ctx}");
        assert_eq!(le(h, (at + 32, 8)), 9, "{ctx}: field count");
        assert_eq!(le(h, (at + 40, 8)), 0, "{ctx}: not truncated");
        assert_eq!(
            &h[at + 48..at + 54],
            b"\x05magic",
            "{ctx}: the first field's name"
        );
        let (at, size) = field::LOG_KEY;
        assert!(h[at..at + size].iter().any(|&b| b != 0), "{ctx}: a log key");
        let (at, size) = field::RESERVED;
        assert!(
            h[at..at + size].iter().all(|&b| b == 0),
            "{ctx}: reserved bytes"
        );
        let (at, _) = field::CHECKSUM;
        assert_eq!(
            le(h, field::CHECKSUM),
            xxhash_rust::xxh3::xxh3_64(&h[..at]),
            "{ctx}: checksum"
        );
    }
}

/// What an independent reading of a log slot finds.
#[derive(Debug)]
struct LogSummary {
    gen: u64,
    first_kind: u8,
    undo_entries: u64,
    committed: bool,
    /// Heap operations in its redo and commit entries.
    ops: u64,
}

/// Reads both log slots by the format's rules, with checksums keyed as the format says
/// (SipHash-1-3 of the epoch, `gen / 256`, under the header's log key, xor the SplitMix64
/// finaliser of the generation; xxh3-64 of the payload seeded with that and the entry's position
/// and header): the valid slots, newest first.
fn read_logs(image: &[u8]) -> Vec<LogSummary> {
    let key = &image[field::LOG_KEY.0..field::LOG_KEY.0 + 16];
    let (k0, k1) = (u64_at(key, 0), u64_at(key, 8));
    let mut slots = Vec::new();
    for slot in 0..LOG_SLOTS {
        let start = LOG_OFFSET + slot * LOG_SLOT_SIZE;
        let gen = u64_at(image, start + 8);
        let seed = {
            use std::hash::Hasher;
            let mut h = siphasher::sip::SipHasher13::new_with_keys(k0, k1);
            h.write(&(gen / 256).to_le_bytes());
            let mut mixed = gen;
            mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            h.finish() ^ mixed ^ (mixed >> 31)
        };
        let (mut kinds, mut ops) = (Vec::new(), 0);
        let mut pos = start;
        while pos + ENTRY_HEADER <= start + LOG_SLOT_SIZE {
            let word0 = u64_at(image, pos);
            let (kind_word, len) = (word0 as u32, word0 >> 32);
            if u64_at(image, pos + 8) != gen || pos + ENTRY_HEADER + len > start + LOG_SLOT_SIZE {
                break;
            }
            let payload =
                &image[(pos + ENTRY_HEADER) as usize..(pos + ENTRY_HEADER + len) as usize];
            let header = (kind_word as u64) << 32 | len;
            let bind = pos.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ header.rotate_left(23);
            let sum = xxhash_rust::xxh3::xxh3_64_with_seed(payload, seed ^ bind);
            if sum != u64_at(image, pos + 16) {
                break;
            }
            let (kind, aux) = (kind_word as u8, (kind_word >> 16) as u64);
            ops += match kind {
                REDO => len / OP_SIZE,
                // The data hash, then the ops, then `aux` (offset, length) ranges.
                COMMIT => (len - 8 - aux * 16) / OP_SIZE,
                _ => 0,
            };
            kinds.push(kind);
            pos += (ENTRY_HEADER + len).div_ceil(ENTRY_ALIGN) * ENTRY_ALIGN;
        }
        if let Some(&first_kind) = kinds.first() {
            slots.push(LogSummary {
                gen,
                first_kind,
                undo_entries: kinds.iter().filter(|&&k| k == UNDO).count() as u64,
                committed: kinds.contains(&COMMIT),
                ops,
            });
        }
    }
    slots.sort_by_key(|s| std::cmp::Reverse(s.gen));
    slots
}

/// The newest valid log slot.
fn newest_log(image: &[u8]) -> LogSummary {
    read_logs(image)
        .into_iter()
        .next()
        .expect("a valid log slot")
}

/// One chunk table entry: kind, class, count, type fingerprint.
fn chunk_entry(image: &[u8], index: u64) -> (u8, u8, u32, u64) {
    let at = CHUNK_TABLE_OFFSET + index * CHUNK_ENTRY_SIZE;
    let word = u64_at(image, at);
    (
        word as u8,
        (word >> 8) as u8,
        (word >> 32) as u32,
        u64_at(image, at + 8),
    )
}

/// Follows the objects fixture's pointers by hand: each lands in a chunk whose table entry
/// names its type, at a slot its run's bitmap marks allocated.
fn check_chunks(image: &[u8]) {
    let chunks = (image.len() as u64 - HEAP_OFFSET) / CHUNK_SIZE;
    let bitmaps = (CHUNK_TABLE_OFFSET + chunks * CHUNK_ENTRY_SIZE).next_multiple_of(64);
    let root = |at: u64| u64_at(image, ROOT_OFFSET + at);
    // Pointer fields of the root: head 16, name 24 (+ len 32), samples 40 (+ len 48), pair 56,
    // blob 64.
    assert_eq!(root(0), MAGIC);
    let small = |offset: u64, fingerprint: u64, what: &str| {
        let chunk = (offset - HEAP_OFFSET) / CHUNK_SIZE;
        let (kind, class, count, fp) = chunk_entry(image, chunk);
        assert_eq!(
            (kind, class, count),
            (RUN, 1, 1),
            "{what}: a one-chunk run of class 1"
        );
        assert_eq!(fp, fingerprint, "{what}: the run's type");
        let rel = offset - HEAP_OFFSET - chunk * CHUNK_SIZE;
        assert_eq!(rel % 32, 0, "{what}: a slot of 32 bytes");
        let slot = rel / 32;
        let word = u64_at(image, bitmaps + chunk * BITMAP_BYTES + slot / 64 * 8);
        assert_ne!(
            word & 1 << (slot % 64),
            0,
            "{what}: allocated in the bitmap"
        );
    };
    let mut node = root(16);
    for (i, &(value, ..)) in NODES.iter().enumerate() {
        small(node, FIX_NODE_FINGERPRINT, &format!("node {i}"));
        assert_eq!(u64_at(image, node), value, "node {i} value");
        node = u64_at(image, node + 16);
    }
    assert_eq!(node, 0);
    small(root(24), U8_SLICE_FINGERPRINT, "name");
    assert_eq!(root(32), NAME.len() as u64);
    small(root(40), U64_SLICE_FINGERPRINT, "samples");
    assert_eq!(root(48), SAMPLES.len() as u64);
    small(root(56), FIX_PAIR_FINGERPRINT, "pair");
    let blob = root(64);
    assert_eq!(
        (blob - HEAP_OFFSET) % CHUNK_SIZE,
        0,
        "a span starts a chunk"
    );
    let chunk = (blob - HEAP_OFFSET) / CHUNK_SIZE;
    assert_eq!(
        chunk_entry(image, chunk),
        (SPAN, 0, 3, FIX_BLOB_FINGERPRINT)
    );
    // A span's later chunks keep zeroed entries: the span's count covers them.
    for c in 1..3 {
        assert_eq!(
            chunk_entry(image, chunk + c),
            (0, 0, 0, 0),
            "the span's chunk {c}"
        );
    }
    assert_eq!(u64_at(image, blob), BLOB_HEADER);
    // Exactly the chunks above are in use: four runs and one span (their runs of one chunk
    // need no continuation entries).
    let used: BTreeMap<u8, u64> = (0..chunks).fold(BTreeMap::new(), |mut m, i| {
        *m.entry(chunk_entry(image, i).0).or_default() += 1;
        m
    });
    assert_eq!(used, BTreeMap::from([(0, 7), (RUN, 4), (SPAN, 1)]));
}

// ---------------------------------------------------------------------------------------------
// The tests, on the committed fixtures.

/// Fingerprints of the fixture types, as this format records them in headers, type tables and
/// chunk tables. A run of slices records `"slice"` combined with the element's fingerprint.
const ROOT_FINGERPRINT: u64 = 0xc86e_8245_1b42_609d;
const FIX_NODE_FINGERPRINT: u64 = 0xf328_e662_5941_a4cb;
const FIX_PAIR_FINGERPRINT: u64 = 0xbce0_88d3_4fa9_3710;
const FIX_BLOB_FINGERPRINT: u64 = 0x3696_4f0b_dc8d_8abe;
const U8_SLICE_FINGERPRINT: u64 = 0x0098_bed0_de8f_88c6;
const U64_SLICE_FINGERPRINT: u64 = 0xf7ad_3111_33cc_31f8;

#[test]
fn fingerprints_and_type_ids_are_pinned() {
    assert_eq!(FixRoot::FINGERPRINT, ROOT_FINGERPRINT);
    assert_eq!(FixNode::FINGERPRINT, FIX_NODE_FINGERPRINT);
    assert_eq!(FixPair::FINGERPRINT, FIX_PAIR_FINGERPRINT);
    assert_eq!(FixBlob::FINGERPRINT, FIX_BLOB_FINGERPRINT);
    assert_eq!(<FixRoot as Persistent>::TYPE_ID, 0x99cd_5c73_3b0d_3589);
    assert_eq!(<FixNode as Persistent>::TYPE_ID, 0xaa04_8b50_80ca_60c9);
    assert_eq!(<Point as Persistent>::FINGERPRINT, 0xafe9_b901_84fa_3213);
    assert_eq!(<u64 as Persistent>::FINGERPRINT, 0x0246_055e_cdb6_a7bb);
    assert_eq!(<u8 as Persistent>::FINGERPRINT, 0xcdca_c3c2_f0fc_891d);
    assert_eq!(
        <PPtr<FixNode> as Persistent>::FINGERPRINT,
        0x3022_647f_cb06_ae63
    );
    assert_eq!(
        <PSlice<u8> as Persistent>::FINGERPRINT,
        0xbd9c_289f_fa9c_3461
    );
    assert_eq!(<[i16; 4] as Persistent>::FINGERPRINT, 0xd58f_b2c3_9a43_e581);
}

#[test]
fn format_3_0_empty_pool_opens_checks_and_holds_nothing() {
    check_empty(&fixture_dir());
}

#[test]
fn format_3_0_objects_pool_reads_back_every_field() {
    check_objects(&fixture_dir());
}

#[test]
fn format_3_0_interrupted_transaction_rolls_back_exactly() {
    check_interrupted(&fixture_dir());
}

#[test]
fn format_3_0_header_fields_are_at_their_pinned_offsets() {
    for name in [EMPTY, OBJECTS, INTERRUPTED] {
        check_header(&fixture_dir(), name);
    }
}

#[test]
fn format_3_0_logs_parse_by_the_pinned_entry_layout() {
    check_logs(&fixture_dir());
}

fn check_logs(dir: &Path) {
    for name in [EMPTY, OBJECTS] {
        let log = newest_log(&image_of(dir, name));
        assert_eq!(log.first_kind, RETIRED, "{name}: closed cleanly, {log:?}");
    }
    let log = newest_log(&image_of(dir, INTERRUPTED));
    assert_eq!(log.first_kind, UNDO, "{log:?}");
    assert!(!log.committed, "{log:?}");
    assert_eq!(log.undo_entries, 10, "{log:?}");
    let previous = &read_logs(&image_of(dir, INTERRUPTED))[1];
    assert!(previous.committed && previous.ops == 20, "{previous:?}");
}

#[test]
fn format_3_0_chunk_table_and_bitmaps_are_where_the_format_says() {
    check_chunks(&image_of(&fixture_dir(), OBJECTS));
}

#[test]
fn format_1_and_3_pools_are_refused_with_unsupported_version() {
    for major in [1u16, 2, 4] {
        let mut image = image_of(&fixture_dir(), EMPTY);
        for copy in 0..2 {
            let h = &mut image[copy * HEADER_SIZE..(copy + 1) * HEADER_SIZE];
            h[8..10].copy_from_slice(&major.to_le_bytes());
            let sum = xxhash_rust::xxh3::xxh3_64(&h[..field::CHECKSUM.0]);
            h[field::CHECKSUM.0..].copy_from_slice(&sum.to_le_bytes());
        }
        let tmp = pmem_tests::shm_tempdir("pmem-fixture");
        let path = tmp.path().join("old.pool");
        std::fs::write(&path, &image).unwrap();
        match Pool::<FixRoot>::open(&path) {
            Err(Error::UnsupportedVersion {
                major: m,
                minor: 0,
                supported_major: 3,
                ..
            }) => {
                assert_eq!(m, major)
            }
            other => panic!("format {major}.0 opened as {other:?}"),
        }
        assert!(
            check::check_file(&path).is_err(),
            "the checker refuses it too"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The generator.

/// The objects fixture's contents, in one transaction.
fn build_objects(pool: &Pool<FixRoot>) -> pmem_core::Result<()> {
    pool.transaction(|tx| -> pmem_core::Result<()> {
        let mut next = PPtr::null();
        for &(value, weight, tag) in NODES.iter().rev() {
            next = tx.alloc(FixNode {
                value,
                weight,
                tag,
                next,
            })?;
        }
        let name = tx.alloc_slice(NAME)?;
        let samples = tx.alloc_slice(&SAMPLES)?;
        let pair = tx.alloc(pair_value())?;
        let blob = tx.alloc_zeroed::<FixBlob>()?;
        {
            let b = tx.get_mut(blob)?;
            b.header = BLOB_HEADER;
            for (i, v) in BLOB_SET {
                b.words[i] = v;
            }
        }
        let mut root = tx.root_mut();
        root.set_magic(MAGIC)?;
        root.set_count(NODES.len() as u32)?;
        root.set_flags(FLAGS)?;
        root.set_head(next)?;
        root.set_name(name)?;
        root.set_samples(samples)?;
        root.set_pair(pair)?;
        root.set_blob(blob)?;
        root.set_grid(GRID)
    })
}

/// A transaction that changes a little of everything: the one the interrupted fixture holds.
fn change_everything(pool: &Pool<FixRoot>) -> pmem_core::Result<()> {
    pool.transaction(|tx| -> pmem_core::Result<()> {
        let root = tx.root();
        let (head, name, samples, pair, blob) =
            (root.head, root.name, root.samples, root.pair, root.blob);
        tx.root_mut().set_count(1000)?;
        tx.root_mut().grid_mut().set_at(2, -7)?;
        tx.edit(head)?.set_value(11)?;
        tx.edit_slice(name)?.set_at(0, b'X')?;
        tx.edit_slice(samples)?.set_at(3, 43)?;
        tx.edit(pair)?.a_mut().set_x(55)?;
        tx.edit(blob)?.words_mut().set_at(2559, 22)?;
        let second = tx.get(head)?.next;
        let third = tx.get(second)?.next;
        let extra = tx.alloc(FixExtra { value: 77 })?;
        let node = tx.alloc(FixNode {
            value: 5,
            weight: 5,
            tag: *b"new\0",
            next: head,
        })?;
        tx.root_mut().set_head(node)?;
        tx.edit(second)?.set_next(PPtr::null())?;
        tx.free(third)?;
        tx.free(extra)?;
        tx.root_mut().set_magic(!MAGIC)
    })
}

/// Builds the three fixtures in `dir`.
fn generate(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let tmp = pmem_tests::shm_tempdir("pmem-fixture-gen");
    let write = |name: &str, image: &[u8]| {
        std::fs::write(dir.join(name), sparsify(image)).unwrap();
    };

    let path = tmp.path().join("empty.pool");
    let pool = Pool::<FixRoot>::builder()
        .layout(LAYOUT)
        .create(&path, EMPTY_SIZE)
        .unwrap();
    drop(pool);
    write(EMPTY, &std::fs::read(&path).unwrap());

    let path = tmp.path().join("objects.pool");
    let pool = Pool::<FixRoot>::builder()
        .layout(LAYOUT)
        .create(&path, OBJECTS_SIZE)
        .unwrap();
    build_objects(&pool).unwrap();
    drop(pool);
    write(OBJECTS, &std::fs::read(&path).unwrap());

    // The crash image, at the fence inside the transaction after which the most undo entries
    // are durable and their in-place stores made, with every store made by then persisted.
    let test = CrashTest::new(OBJECTS_SIZE);
    let workload = |pool: &Pool<FixRoot>| {
        build_objects(pool)?;
        change_everything(pool)
    };
    let mut best: Option<(u64, PoolImage)> = None;
    // Fence indices count from the pool's creation: the first few belong to it.
    let mut seen = false;
    for fence in 0..10_000 {
        let image = match test.image_at::<FixRoot>(workload, fence, ImageKind::Everything) {
            Ok(image) => image,
            Err(_) if !seen => continue,
            Err(_) => break,
        };
        seen = true;
        let recovery = Pool::<FixRoot>::builder()
            .open_image(image.clone())
            .unwrap()
            .info()
            .recovery;
        if recovery.rolled_back
            && best
                .as_ref()
                .is_none_or(|(n, _)| recovery.undo_applied > *n)
        {
            best = Some((recovery.undo_applied, image));
        }
    }
    let (undo, image) = best.expect("a fence inside the transaction");
    eprintln!("interrupted fixture: {undo} undo entries to roll back");
    write(INTERRUPTED, image.as_bytes());
}

/// Makes the fixtures and runs every check on them; writes them into `tests/fixtures` only with
/// `PMEM_WRITE_FIXTURES=1` (for a new format version: the committed ones must never change).
#[test]
#[ignore = "makes the format fixtures; see the module docs"]
fn generate_fixtures() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = if std::env::var_os("PMEM_WRITE_FIXTURES").is_some() {
        fixture_dir()
    } else {
        scratch.path().to_path_buf()
    };
    generate(&dir);
    for name in [EMPTY, OBJECTS, INTERRUPTED] {
        let size = std::fs::metadata(dir.join(name)).unwrap().len();
        eprintln!("{}: {size} bytes", dir.join(name).display());
    }
    check_empty(&dir);
    check_objects(&dir);
    check_interrupted(&dir);
    check_logs(&dir);
    check_chunks(&image_of(&dir, OBJECTS));
    for name in [EMPTY, OBJECTS, INTERRUPTED] {
        check_header(&dir, name);
    }
}
