//! Every detail kind of [`Corruption`], [`ChunkProblem`] and [`LogCorruption`] that no other test
//! produces, each from the smallest crafted pool that shows it: open (or the deep check, for
//! what open ignores) refuses the file with exactly that kind, its structured fields name the
//! place, and the message names the cause.
//!
//! Log entries are sealed with the pool's own log secret (a hostile file holds its secret), so
//! they pass their checksums and reach the structural checks behind them. A crafted log is
//! written as generation `g` in slot `g % 2`, where the writer would put it, with `g` newer than
//! the pool's retired logs.
//!
//! [`Corruption::TooManyChunks`] needs a heap of 2^32 chunks, a pool of about 64.6 TiB: it is
//! produced from a sparse file where a file system holds one (tmpfs does; ext4 stops at 16 TiB)
//! and is reported as not run elsewhere.

use std::path::Path;

use pmem_core::check::Problem;
use pmem_core::error::{ChunkProblem, Corruption, LogCorruption};
use pmem_core::{Error, PPtr, Persistent, Pool, PoolImage};
use pmem_tests::hostile::format::{
    entry_size, kind, put, seal_entry, seal_header, u64_at, ChunkWord, Geometry, CHUNK_SIZE,
    DATA_HASH_SEED, ENTRY_HEADER, FENCED, HEADER_FIELDS, HEADER_SIZE, INLINE_WRITE, LOG_OFFSET,
    LOG_SLOT_SIZE,
};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    value: u64,
    big: PPtr<Block>,
}

/// 8 KiB: its size class keeps eight objects in a run of four chunks.
#[derive(Persistent, Clone, Copy)]
#[repr(C)]
struct Block {
    words: [u64; 1024],
}

const SIZE: u64 = 4 << 20;

/// A closed pool file holding one 8 KiB object in a multi-chunk run, as bytes.
fn pool_bytes(path: &Path) -> Vec<u8> {
    let pool = Pool::<Root>::create(path, SIZE).unwrap();
    let block = Block { words: [7; 1024] };
    pool.alloc_into(block, |tx, p| tx.root_mut().set_big(p))
        .unwrap();
    drop(pool);
    std::fs::read(path).unwrap()
}

fn fresh() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    pool_bytes(&dir.path().join("crafted.pool"))
}

fn open(bytes: &[u8]) -> Error {
    match Pool::<Root>::builder().open_image(PoolImage::from_bytes(bytes)) {
        Err(e) => e,
        Ok(_) => panic!("the crafted pool opened"),
    }
}

fn corruption(bytes: &[u8]) -> (Corruption, String) {
    let e = open(bytes);
    let message = e.to_string();
    match e {
        Error::Corrupt { problem, .. } => (problem, message),
        e => panic!("expected Corrupt, got {e:?}"),
    }
}

/// The log problem open reports, with its slot and the message.
fn log_problem(bytes: &[u8]) -> (u64, LogCorruption, String) {
    match corruption(bytes) {
        (Corruption::Log { slot, problem }, message) => (slot, problem, message),
        (other, _) => panic!("expected a log problem, got {other:?}"),
    }
}

fn slot_offset(slot: u64) -> u64 {
    LOG_OFFSET + slot * LOG_SLOT_SIZE
}

/// The newest generation either slot holds.
fn newest_gen(bytes: &[u8]) -> u64 {
    (0..2)
        .map(|s| u64_at(bytes, slot_offset(s) + 8))
        .max()
        .unwrap()
}

/// Writes a sealed entry of generation `gen` at `at`; returns where the next entry goes.
fn entry(bytes: &mut [u8], at: u64, k: u32, aux: u16, gen: u64, payload: &[u64]) -> u64 {
    entry_flagged(bytes, at, k, 0, aux, gen, payload)
}

/// [`entry`] with `flags` beside `FENCED`.
fn entry_flagged(
    bytes: &mut [u8],
    at: u64,
    k: u32,
    flags: u32,
    aux: u16,
    gen: u64,
    payload: &[u64],
) -> u64 {
    let len = 8 * payload.len() as u64;
    let kind_word = k | (FENCED | flags) << 8 | (aux as u32) << 16;
    put(bytes, at, 8, kind_word as u64 | len << 32);
    put(bytes, at + 8, 8, gen);
    for (i, &w) in payload.iter().enumerate() {
        put(bytes, at + ENTRY_HEADER + 8 * i as u64, 8, w);
    }
    seal_entry(bytes, at);
    at + entry_size(len)
}

/// A pool whose newest log, in a slot of its own, is the one entry given; and that slot and
/// entry's offset.
fn one_entry_log(k: u32, aux: u16, payload: &[u64]) -> (Vec<u8>, u64, u64) {
    let mut bytes = fresh();
    let gen = newest_gen(&bytes) + 1;
    let slot = gen % 2;
    entry(&mut bytes, slot_offset(slot), k, aux, gen, payload);
    (bytes, slot, slot_offset(slot))
}

const OP_WRITE: u64 = 3;

/// A pool whose newest log is one commit record holding the write of `len` bytes at `target`
/// (its bytes `words`), with no heap op and no range; and that slot and entry's offset.
fn inline_commit_log(target: u64, len: u64, words: &[u64]) -> (Vec<u8>, u64, u64) {
    let mut bytes = fresh();
    let gen = newest_gen(&bytes) + 1;
    let slot = gen % 2;
    let mut payload = vec![DATA_HASH_SEED, target, len];
    payload.extend_from_slice(words);
    let at = slot_offset(slot);
    entry_flagged(&mut bytes, at, kind::COMMIT, INLINE_WRITE, 0, gen, &payload);
    (bytes, slot, at)
}

#[test]
fn a_commit_record_holding_its_write_is_replayed() {
    let g = Geometry::read(&fresh());
    // The root's first field: `value`.
    let (bytes, _, _) = inline_commit_log(g.root_offset, 8, &[0x77]);
    let pool = Pool::<Root>::builder()
        .open_image(PoolImage::from_bytes(&bytes))
        .unwrap();
    assert_eq!(pool.read(|r| r.root().value).unwrap(), 0x77);
}

#[test]
fn a_write_held_in_a_commit_record_of_a_bad_length_is_refused() {
    let g = Geometry::read(&fresh());
    // Empty, longer than a record may hold, and longer than the record.
    for (len, words) in [(0, &[0u64][..]), (17, &[0, 0, 0]), (16, &[0])] {
        let (bytes, slot, at) = inline_commit_log(g.root_offset, len, words);
        let (s, problem, message) = log_problem(&bytes);
        assert_eq!(s, slot);
        assert!(
            matches!(problem, LogCorruption::ShortCommit { entry } if entry == at),
            "len {len}: {problem:?}"
        );
        assert!(message.contains("is short"), "{message}");
    }
}

#[test]
fn a_write_held_in_a_commit_record_outside_the_root_and_heap_is_refused() {
    let (bytes, slot, at) = inline_commit_log(0, 8, &[0]);
    let (s, problem, message) = log_problem(&bytes);
    assert_eq!(s, slot);
    assert!(
        matches!(problem, LogCorruption::RedoOutside { entry, target: 0, len: 8 } if entry == at),
        "{problem:?}"
    );
    assert!(message.contains("outside the root and heap"), "{message}");
}

#[test]
fn the_inline_flag_on_an_entry_other_than_a_commit_record_is_not_an_entry() {
    // A redo entry flagged as holding an inline write is no entry, even with its checksum
    // right: with a fenced commit record after it, the log reads as damaged at it.
    let g = Geometry::read(&fresh());
    let mut bytes = fresh();
    let gen = newest_gen(&bytes) + 1;
    let (slot, at) = (gen % 2, slot_offset(gen % 2));
    let payload = [g.root_offset, 9];
    let next = entry_flagged(&mut bytes, at, kind::DATA, INLINE_WRITE, 0, gen, &payload);
    entry(&mut bytes, next, kind::COMMIT, 0, gen, &[DATA_HASH_SEED]);
    let (s, problem, _) = log_problem(&bytes);
    assert_eq!(s, slot);
    assert!(
        matches!(problem, LogCorruption::Damaged { pos, .. } if pos == at),
        "{problem:?}"
    );
}

#[test]
fn a_heap_operation_of_an_unknown_code_is_refused() {
    let g = Geometry::read(&fresh());
    let (bytes, slot, at) = one_entry_log(kind::REDO, 0, &[0xff << 56 | g.chunk_table_offset, 0]);
    let (s, problem, message) = log_problem(&bytes);
    assert_eq!(s, slot);
    assert!(
        matches!(problem, LogCorruption::UnknownHeapOp { entry } if entry == at),
        "{problem:?}"
    );
    assert!(
        message.contains(&format!(
            "log slot {slot}: the entry at {at:#x} holds an unknown heap operation"
        )),
        "{message}"
    );
}

#[test]
fn a_heap_operation_outside_the_heap_metadata_is_refused() {
    let (bytes, slot, at) = one_entry_log(kind::REDO, 0, &[OP_WRITE << 56, 1]);
    let (s, problem, message) = log_problem(&bytes);
    assert_eq!(s, slot);
    assert!(
        matches!(problem, LogCorruption::HeapOpOutside { entry, target: 0, len: 8 } if entry == at),
        "{problem:?}"
    );
    assert!(
        message.contains(&format!(
            "the entry at {at:#x} holds a heap operation on 0x0+0x8 outside the heap metadata"
        )),
        "{message}"
    );
}

#[test]
fn a_new_object_range_outside_the_heap_is_refused() {
    let (bytes, slot, at) = one_entry_log(kind::RANGES, 0, &[0, 8]);
    let (s, problem, message) = log_problem(&bytes);
    assert_eq!(s, slot);
    assert!(
        matches!(problem, LogCorruption::RangeOutside { entry, offset: 0, len: 8 } if entry == at),
        "{problem:?}"
    );
    assert!(
        message.contains(&format!(
            "the entry at {at:#x} holds a new-object range 0x0+0x8 outside the heap"
        )),
        "{message}"
    );
}

#[test]
fn an_undo_entry_without_a_target_is_refused() {
    let (bytes, slot, at) = one_entry_log(kind::UNDO, 0, &[]);
    let (s, problem, message) = log_problem(&bytes);
    assert_eq!(s, slot);
    assert!(
        matches!(problem, LogCorruption::UndoWithoutTarget { entry } if entry == at),
        "{problem:?}"
    );
    assert!(
        message.contains(&format!("the undo entry at {at:#x} has no target")),
        "{message}"
    );
}

#[test]
fn an_undo_entry_outside_the_root_and_heap_is_refused() {
    // Restores 8 bytes over the header.
    let (bytes, slot, at) = one_entry_log(kind::UNDO, 0, &[0, 0]);
    let (s, problem, message) = log_problem(&bytes);
    assert_eq!(s, slot);
    assert!(
        matches!(problem, LogCorruption::UndoOutside { entry, target: 0, len: 8 } if entry == at),
        "{problem:?}"
    );
    assert!(
        message.contains(&format!(
            "the undo entry at {at:#x} is for 0x0+0x8, outside the root and heap"
        )),
        "{message}"
    );
}

#[test]
fn an_empty_undo_or_redo_entry_beyond_the_heap_is_refused() {
    // No bytes to write, but a target past the pool's end: recovery would reserve the file up
    // to it (growing the file) and address memory outside the mapping.
    let g = Geometry::read(&fresh());
    for target in [g.pool_size + 4096, u64::MAX - 7] {
        for k in [kind::UNDO, kind::DATA] {
            let (bytes, slot, at) = one_entry_log(k, 0, &[target]);
            let (s, problem, message) = log_problem(&bytes);
            assert_eq!(s, slot);
            let outside = match problem {
                LogCorruption::UndoOutside {
                    entry,
                    target: t,
                    len: 0,
                } => entry == at && t == target,
                LogCorruption::RedoOutside {
                    entry,
                    target: t,
                    len: 0,
                } => entry == at && t == target,
                _ => false,
            };
            assert!(outside, "kind {k}, target {target:#x}: {problem:?}");
            assert!(message.contains("outside the root and heap"), "{message}");
        }
    }
}

#[test]
fn an_empty_heap_operation_beyond_the_heap_metadata_is_refused() {
    const OP_ZERO: u64 = 4;
    let g = Geometry::read(&fresh());
    let target = g.pool_size + 4096;
    let (bytes, slot, at) = one_entry_log(kind::REDO, 0, &[OP_ZERO << 56 | target, 0]);
    let (s, problem, _) = log_problem(&bytes);
    assert_eq!(s, slot);
    assert!(
        matches!(problem, LogCorruption::HeapOpOutside { entry, target: t, len: 0 } if entry == at && t == target),
        "{problem:?}"
    );
}

#[test]
fn a_commit_record_shorter_than_its_ranges_is_refused() {
    // Counts one range (16 bytes) but holds only the data hash.
    let (bytes, slot, at) = one_entry_log(kind::COMMIT, 1, &[0]);
    let (s, problem, message) = log_problem(&bytes);
    assert_eq!(s, slot);
    assert!(
        matches!(problem, LogCorruption::ShortCommit { entry } if entry == at),
        "{problem:?}"
    );
    assert!(
        message.contains(&format!("the commit record at {at:#x} is short")),
        "{message}"
    );
}

#[test]
fn a_commit_record_of_part_of_an_operation_is_refused() {
    // The data hash, then half an operation record.
    let (bytes, slot, at) = one_entry_log(kind::COMMIT, 0, &[0, 0]);
    let (s, problem, message) = log_problem(&bytes);
    assert_eq!(s, slot);
    assert!(
        matches!(problem, LogCorruption::CommitNotWhole { entry } if entry == at),
        "{problem:?}"
    );
    assert!(
        message.contains(&format!(
            "the commit record at {at:#x} has a length that is not whole records"
        )),
        "{message}"
    );
}

#[test]
fn an_extension_entry_of_the_wrong_length_is_refused() {
    let g = Geometry::read(&fresh());
    let (bytes, slot, at) = one_entry_log(kind::EXTEND, 0, &[g.chunk(g.chunk_count - 1)]);
    let (s, problem, message) = log_problem(&bytes);
    assert_eq!(s, slot);
    assert!(
        matches!(problem, LogCorruption::BadExtendLength { pos, len: 8 } if pos == at),
        "{problem:?}"
    );
    assert!(
        message.contains(&format!(
            "the extension entry at offset {at:#x} has 8 payload bytes, not 16"
        )),
        "{message}"
    );
}

#[test]
fn a_chain_of_more_blocks_than_the_heap_has_chunks_is_refused() {
    // The slot continues in chunk 0, each chunk in the next, and the last chunk once more: one
    // block per chunk, then an extension no heap could hold.
    let mut bytes = fresh();
    let g = Geometry::read(&bytes);
    let gen = newest_gen(&bytes) + 1;
    let slot = gen % 2;
    let n = g.chunk_count;
    let mut at = slot_offset(slot);
    for i in 0..=n {
        let next = g.chunk(i.min(n - 1));
        entry(&mut bytes, at, kind::EXTEND, 0, gen, &[next, CHUNK_SIZE]);
        at = next;
    }
    let last = g.chunk(n - 1);
    let (s, problem, message) = log_problem(&bytes);
    assert_eq!(s, slot);
    assert!(
        matches!(problem, LogCorruption::ChainTooLong { pos } if pos == last),
        "{problem:?}"
    );
    assert!(
        message.contains(&format!(
            "the extension entry at offset {last:#x} continues a chain longer than the heap has chunks"
        )),
        "{message}"
    );
}

#[test]
fn an_interrupted_transaction_after_a_log_without_commit_is_refused() {
    // Generation g - 1 logged one undo entry and never committed, yet generation g began: the
    // writer starts a log only after the previous one committed or was retired.
    let mut bytes = fresh();
    let g = Geometry::read(&bytes);
    let gen = newest_gen(&bytes) + 2;
    let (previous, newest) = ((gen - 1) % 2, gen % 2);
    let stop = entry(
        &mut bytes,
        slot_offset(previous),
        kind::UNDO,
        0,
        gen - 1,
        &[g.root_offset, 0],
    );
    entry(
        &mut bytes,
        slot_offset(newest),
        kind::UNDO,
        0,
        gen,
        &[g.root_offset, 0],
    );
    let (s, problem, message) = log_problem(&bytes);
    assert_eq!(s, previous);
    assert!(
        matches!(problem, LogCorruption::NoCommit { stop: Some(pos) } if pos == stop),
        "{problem:?}"
    );
    assert!(
        message.contains(&format!(
            "log slot {previous}: the log stops at offset {stop:#x} without a commit record"
        )),
        "{message}"
    );
}

#[test]
fn logs_of_both_slots_continuing_in_one_block_are_refused() {
    // The committed previous log and the interrupted newest one both continue in the last chunk.
    let mut bytes = fresh();
    let g = Geometry::read(&bytes);
    let gen = newest_gen(&bytes) + 2;
    let (previous, newest) = ((gen - 1) % 2, gen % 2);
    let block = g.chunk(g.chunk_count - 1);
    for (slot, gen) in [(previous, gen - 1), (newest, gen)] {
        entry(
            &mut bytes,
            slot_offset(slot),
            kind::EXTEND,
            0,
            gen,
            &[block, CHUNK_SIZE],
        );
    }
    entry(&mut bytes, block, kind::COMMIT, 0, gen - 1, &[0]);
    let (s, problem, message) = log_problem(&bytes);
    assert_eq!(s, newest);
    assert!(
        matches!(
            problem,
            LogCorruption::ExtensionOverlap {
                offset,
                len: CHUNK_SIZE,
                other_slot,
                other_offset,
                other_len: CHUNK_SIZE,
            } if offset == block && other_slot == previous && other_offset == block
        ),
        "{problem:?}"
    );
    assert!(
        message.contains(&format!(
            "its extension block {block:#x}+{CHUNK_SIZE:#x} overlaps block {block:#x}+{CHUNK_SIZE:#x} of log slot {previous}"
        )),
        "{message}"
    );
}

/// The chunk table problem open reports, with the chunk, its entry's offset and the message.
fn chunk_problem(bytes: &[u8]) -> (u64, u64, ChunkProblem, String) {
    match corruption(bytes) {
        (
            Corruption::ChunkTable {
                chunk,
                entry,
                problem,
            },
            message,
        ) => (chunk, entry, problem, message),
        (other, _) => panic!("expected a chunk table problem, got {other:?}"),
    }
}

#[test]
fn a_run_missing_a_continuation_is_refused() {
    let mut bytes = fresh();
    let g = Geometry::read(&bytes);
    let run = (0..g.chunk_count)
        .find(|&c| {
            let w = ChunkWord::decode(u64_at(&bytes, g.chunk_entry(c)));
            w.kind == 1 && w.count > 1
        })
        .expect("a run of several chunks");
    put(&mut bytes, g.chunk_entry(run + 1), 8, 0);
    let (chunk, entry, problem, message) = chunk_problem(&bytes);
    assert_eq!((chunk, entry), (run + 1, g.chunk_entry(run + 1)));
    assert!(
        matches!(problem, ChunkProblem::BrokenRun { run: r, index: 1, found: 0 } if r == run),
        "{problem:?}"
    );
    assert!(
        message.contains(&format!(
            "expected continuation 1 of the run at chunk {run}, found entry 0x0000000000000000"
        )),
        "{message}"
    );
}

#[test]
fn a_continuation_without_a_run_is_refused() {
    let mut bytes = fresh();
    let g = Geometry::read(&bytes);
    let last = g.chunk_count - 1;
    let cont = ChunkWord {
        kind: 3,
        class: 0,
        count: 1,
    };
    put(&mut bytes, g.chunk_entry(last), 8, cont.encode());
    let (chunk, entry, problem, message) = chunk_problem(&bytes);
    assert_eq!((chunk, entry), (last, g.chunk_entry(last)));
    assert!(
        matches!(problem, ChunkProblem::OrphanContinuation),
        "{problem:?}"
    );
    assert!(
        message.contains(&format!(
            "chunk {last} (table entry at {:#x}): continuation without a run before it",
            g.chunk_entry(last)
        )),
        "{message}"
    );
}

#[test]
fn a_chunk_of_an_unknown_kind_is_refused() {
    let mut bytes = fresh();
    let g = Geometry::read(&bytes);
    let last = g.chunk_count - 1;
    put(&mut bytes, g.chunk_entry(last), 8, 4);
    let (chunk, entry, problem, message) = chunk_problem(&bytes);
    assert_eq!((chunk, entry), (last, g.chunk_entry(last)));
    assert!(
        matches!(problem, ChunkProblem::UnknownKind { kind: 4 }),
        "{problem:?}"
    );
    assert!(message.contains("unknown chunk kind 4"), "{message}");
}

/// The heap offset and chunk count the library gives a pool of `pool_size` bytes whose chunk
/// table starts at `table` (the layout of `Geometry::compute`).
fn canonical_heap(pool_size: u64, table: u64) -> (u64, u64) {
    let per_chunk = CHUNK_SIZE + 16 + 128;
    let mut chunks = (pool_size - table) / per_chunk;
    loop {
        let heap = ((table + 16 * chunks).next_multiple_of(64) + 128 * chunks)
            .next_multiple_of(CHUNK_SIZE);
        if heap + chunks * CHUNK_SIZE <= pool_size {
            return (heap, chunks);
        }
        chunks -= 1;
    }
}

/// A sparse file of `len` bytes in the first directory whose file system holds one.
fn sparse_file(len: u64) -> Option<(tempfile::TempDir, std::path::PathBuf)> {
    for parent in [std::env::temp_dir(), "/dev/shm".into()] {
        let Ok(dir) = tempfile::tempdir_in(&parent) else {
            continue;
        };
        let path = dir.path().join("huge.pool");
        let file = std::fs::File::create(&path).unwrap();
        if file.set_len(len).is_ok() {
            return Some((dir, path));
        }
    }
    None
}

#[test]
fn a_heap_of_more_chunks_than_run_heads_can_name_is_refused() {
    // Run heads are kept as 32-bit chunk indices, so a heap of 2^32 chunks is refused. Its
    // geometry is canonical for a pool of about 64.6 TiB: a sparse file whose header, logs,
    // type table and root are those of a small pool.
    let small = fresh();
    let table = Geometry::read(&small).chunk_table_offset;
    let chunks = 1u64 << 32;
    let heap =
        ((table + 16 * chunks).next_multiple_of(64) + 128 * chunks).next_multiple_of(CHUNK_SIZE);
    let pool_size = heap + chunks * CHUNK_SIZE;
    assert_eq!(canonical_heap(pool_size, table), (heap, chunks));
    let Some((_dir, path)) = sparse_file(pool_size) else {
        eprintln!("no file system here holds a sparse file of {pool_size} bytes: not run");
        return;
    };
    let mut head = small[..table as usize].to_vec();
    for copy in 0..2 {
        for &(name, at, width) in HEADER_FIELDS {
            let value = match name {
                "pool_size" => pool_size,
                "heap_offset" => heap,
                "chunk_count" => chunks,
                _ => continue,
            };
            put(&mut head, (copy * HEADER_SIZE + at) as u64, width, value);
        }
        seal_header(&mut head, copy);
    }
    {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all(&head).unwrap();
    }
    let e = match Pool::<Root>::open(&path) {
        Err(e) => e,
        Ok(_) => panic!("a pool of {chunks} chunks opened"),
    };
    let message = e.to_string();
    assert!(
        matches!(
            &e,
            Error::Corrupt {
                problem: Corruption::TooManyChunks { chunks: c },
                ..
            } if *c == chunks
        ),
        "{e:?}"
    );
    assert!(
        message.contains(&format!(
            "heap metadata: {chunks} chunks are more than a heap may have"
        )),
        "{message}"
    );
}

#[test]
fn the_deep_check_reports_a_first_entry_failing_its_checksum() {
    // Both logs of a closed pool are retired. An invalid first entry in the older slot, the one
    // the next transaction writes, is what a crash while that transaction wrote its log leaves
    // (its entries persist in any order under its one fence): the check notes it. With both
    // slots' first entries invalid, nothing explains it: the check reports the slot.
    let fresh_bytes = fresh();
    let older = (0..2)
        .min_by_key(|&s| u64_at(&fresh_bytes, slot_offset(s) + 8))
        .unwrap();
    let flip = |bytes: &mut Vec<u8>, slot: u64| {
        let at = slot_offset(slot) + 16;
        let sum = u64_at(bytes, at);
        put(bytes, at, 8, !sum);
    };
    let mut one = fresh_bytes.clone();
    flip(&mut one, older);
    let report = pmem_core::check::check_image(PoolImage::from_bytes(&one)).unwrap();
    assert!(report.is_healthy(), "{report}");
    assert!(
        report
            .to_string()
            .contains(&format!("log slot {older}: a transaction was interrupted")),
        "{report}"
    );
    let mut both = fresh_bytes;
    flip(&mut both, 0);
    flip(&mut both, 1);
    let report = pmem_core::check::check_image(PoolImage::from_bytes(&both)).unwrap();
    assert!(
        report.problems.iter().any(|p| matches!(
            p,
            Problem::Corrupt(Corruption::Log {
                slot: 0,
                problem: LogCorruption::FirstEntryInvalid
            })
        )),
        "{:?}",
        report.problems
    );
    assert!(
        report
            .to_string()
            .contains("log slot 0: its first entry fails its checksum"),
        "{report}"
    );
}
