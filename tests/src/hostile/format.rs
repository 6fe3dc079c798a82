//! The on-media format as a hostile writer sees it: where the structures are in a pool's bytes,
//! and how to recompute the checksums that guard them, so that damage gets past the first check
//! and reaches the code behind it. Mirrors `pmem-core/src/layout/*.rs` (format version 1).

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// Bytes of one header copy.
pub const HEADER_SIZE: usize = 4096;
/// Offset of the checksum in a header copy.
pub const HEADER_CHECKSUM: usize = HEADER_SIZE - 8;
/// Offset of the first log slot.
pub const LOG_OFFSET: u64 = 8192;
/// Bytes per log slot.
pub const LOG_SLOT_SIZE: u64 = 64 * 1024;
/// Offset of the type table.
pub const TYPE_TABLE_OFFSET: u64 = LOG_OFFSET + 2 * LOG_SLOT_SIZE;
/// Bytes of the type table.
pub const TYPE_TABLE_SIZE: u64 = 64 * 1024;
/// Bytes per heap chunk.
pub const CHUNK_SIZE: u64 = 16 * 1024;
/// Bytes of run bitmap per chunk.
pub const BITMAP_BYTES: u64 = 128;
/// Bytes of a log entry header.
pub const ENTRY_HEADER: u64 = 24;

/// Header fields: name, offset in a copy, width in bytes.
pub const HEADER_FIELDS: &[(&str, usize, usize)] = &[
    ("major", 8, 2),
    ("minor", 10, 2),
    ("header_size", 12, 4),
    ("incompat_features", 16, 8),
    ("ro_compat_features", 24, 8),
    ("compat_features", 32, 8),
    ("created", 56, 8),
    ("run_id", 64, 8),
    ("pool_size", 72, 8),
    ("log_offset", 80, 8),
    ("log_slot_size", 88, 8),
    ("log_slots", 96, 8),
    ("root_offset", 104, 8),
    ("root_size", 112, 8),
    ("root_fingerprint", 120, 8),
    ("chunk_table_offset", 128, 8),
    ("heap_offset", 136, 8),
    ("chunk_size", 144, 8),
    ("chunk_count", 152, 8),
];
/// Offset of the layout name in a copy (64 bytes), then the root type descriptor.
pub const LAYOUT_NAME: usize = 160;
/// End of the root type descriptor.
pub const ROOT_TYPE_END: usize = 224 + 3584;

/// Log entry kinds.
pub mod kind {
    /// Bytes before a write.
    pub const UNDO: u32 = 1;
    /// Heap operations applied at commit.
    pub const REDO: u32 = 2;
    /// Ranges written without undo.
    pub const RANGES: u32 = 3;
    /// Where the log continues.
    pub const EXTEND: u32 = 4;
    /// The commit record.
    pub const COMMIT: u32 = 5;
    /// Nothing to recover.
    pub const RETIRED: u32 = 6;
    /// Bytes a committed transaction wrote (format 3.1).
    pub const DATA: u32 = 7;
    /// The largest kind.
    pub const LAST: u32 = DATA;
}

/// Little-endian u64 at `at`, 0 past the end.
pub fn u64_at(bytes: &[u8], at: u64) -> u64 {
    let at = at as usize;
    bytes
        .get(at..at.saturating_add(8))
        .map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
}

/// Writes a little-endian value of `width` bytes at `at`, if it fits.
pub fn put(bytes: &mut [u8], at: u64, width: usize, value: u64) {
    let at = at as usize;
    if let Some(dst) = bytes.get_mut(at..at.saturating_add(width)) {
        dst.copy_from_slice(&value.to_le_bytes()[..width]);
    }
}

/// The regions of a pool, read from header copy A (trusted only as far as the bytes go).
#[derive(Debug, Clone, Copy)]
pub struct Geometry {
    /// Bytes of the pool.
    pub pool_size: u64,
    /// The root object.
    pub root_offset: u64,
    /// Its size.
    pub root_size: u64,
    /// The chunk table.
    pub chunk_table_offset: u64,
    /// The first chunk.
    pub heap_offset: u64,
    /// Chunks in the heap.
    pub chunk_count: u64,
}

impl Geometry {
    /// The geometry header copy A records.
    pub fn read(bytes: &[u8]) -> Geometry {
        Geometry {
            pool_size: u64_at(bytes, 72),
            root_offset: u64_at(bytes, 104),
            root_size: u64_at(bytes, 112),
            chunk_table_offset: u64_at(bytes, 128),
            heap_offset: u64_at(bytes, 136),
            chunk_count: u64_at(bytes, 152).min(1 << 20),
        }
    }

    /// Offset of chunk `i`'s table entry.
    pub fn chunk_entry(&self, i: u64) -> u64 {
        self.chunk_table_offset.wrapping_add(16u64.wrapping_mul(i))
    }

    /// Offset of chunk `i`'s run bitmap.
    pub fn bitmap(&self, i: u64) -> u64 {
        (self
            .chunk_table_offset
            .wrapping_add(16u64.wrapping_mul(self.chunk_count))
            .wrapping_add(63)
            & !63)
            .wrapping_add(BITMAP_BYTES.wrapping_mul(i))
    }

    /// Offset of chunk `i`.
    pub fn chunk(&self, i: u64) -> u64 {
        self.heap_offset.wrapping_add(CHUNK_SIZE.wrapping_mul(i))
    }
}

/// A decoded chunk table word 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkWord {
    /// 0 free, 1 run, 2 span, 3 continuation.
    pub kind: u8,
    /// Size class of a run.
    pub class: u8,
    /// Chunks of a run or span; distance back for a continuation.
    pub count: u32,
}

impl ChunkWord {
    /// Decodes word 0.
    pub fn decode(w: u64) -> ChunkWord {
        ChunkWord {
            kind: w as u8,
            class: (w >> 8) as u8,
            count: (w >> 32) as u32,
        }
    }
    /// Encodes word 0.
    pub fn encode(self) -> u64 {
        self.kind as u64 | (self.class as u64) << 8 | (self.count as u64) << 32
    }
}

/// Recomputes the checksum of header copy `copy` (0 or 1).
pub fn seal_header(bytes: &mut [u8], copy: usize) {
    let start = copy * HEADER_SIZE;
    if bytes.len() < start + HEADER_SIZE {
        return;
    }
    let sum = xxh3_64(&bytes[start..start + HEADER_CHECKSUM]);
    put(bytes, (start + HEADER_CHECKSUM) as u64, 8, sum);
}

/// Whether header copy `copy` passes its checksum.
pub fn header_sealed(bytes: &[u8], copy: usize) -> bool {
    let start = copy * HEADER_SIZE;
    bytes.len() >= start + HEADER_SIZE
        && xxh3_64(&bytes[start..start + HEADER_CHECKSUM])
            == u64_at(bytes, (start + HEADER_CHECKSUM) as u64)
}

/// Recomputes the type table's checksum.
pub fn seal_type_table(bytes: &mut [u8]) {
    let start = TYPE_TABLE_OFFSET as usize;
    let end = start + TYPE_TABLE_SIZE as usize;
    if bytes.len() < end {
        return;
    }
    let sum = xxh3_64(&bytes[start..end - 8]);
    put(bytes, end as u64 - 8, 8, sum);
}

/// The entry flag that says every earlier entry of its log was fenced before it was written.
pub const FENCED: u32 = 1;
/// Entry flag: a commit record holding the transaction's one write (format 3.2).
pub const INLINE_WRITE: u32 = 2;
/// The seed of a commit record's data hash: the hash of a transaction that wrote nothing in
/// place.
pub const DATA_HASH_SEED: u64 = 0x6461_7461_6861_7368;

/// Offset of the log secret in a header copy (since format 2: right after the root type).
pub const LOG_KEY: usize = ROOT_TYPE_END;

/// The log secret of a pool, from header copy 0.
pub fn log_key(bytes: &[u8]) -> (u64, u64) {
    (
        u64_at(bytes, LOG_KEY as u64),
        u64_at(bytes, LOG_KEY as u64 + 8),
    )
}

/// The checksum of the log entry at `at` (format 3): xxh3 of the payload, seeded by the
/// generation's key (SipHash-1-3 of its epoch, `gen / 256`, under the pool's secret, xor the
/// SplitMix64 finaliser of `gen`) mixed with the entry's offset and header. A hostile file holds
/// its own secret, so it can seal anything.
pub fn entry_checksum(
    key: (u64, u64),
    at: u64,
    kind_word: u32,
    len: u32,
    gen: u64,
    payload: &[u8],
) -> u64 {
    use std::hash::Hasher;
    let mut sip = siphasher::sip::SipHasher13::new_with_keys(key.0, key.1);
    sip.write(&(gen / 256).to_le_bytes());
    let mut mixed = gen;
    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    mixed ^= mixed >> 31;
    let header = (kind_word as u64) << 32 | len as u64;
    let bind = at.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ header.rotate_left(23);
    xxh3_64_with_seed(payload, sip.finish() ^ mixed ^ bind)
}

/// Bytes an entry of `len` payload bytes takes.
pub fn entry_size(len: u64) -> u64 {
    (ENTRY_HEADER + len).div_ceil(64) * 64
}

/// A log entry found in a pool's bytes.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// Offset of its header.
    pub at: u64,
    /// Kind, flags and auxiliary value.
    pub kind_word: u32,
    /// Payload bytes.
    pub len: u64,
    /// Generation.
    pub gen: u64,
}

/// The entries of log slot `slot` with a plausible header, following `EXTEND` entries.
pub fn entries(bytes: &[u8], slot: u64) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut pos = LOG_OFFSET + slot * LOG_SLOT_SIZE;
    let mut end = pos + LOG_SLOT_SIZE;
    let len_total = bytes.len() as u64;
    while out.len() < 4096 && pos + ENTRY_HEADER <= end.min(len_total) {
        let w0 = u64_at(bytes, pos);
        let (kind_word, len) = (w0 as u32, w0 >> 32);
        let k = kind_word & 0xff;
        if !(kind::UNDO..=kind::LAST).contains(&k) || pos + entry_size(len) > end {
            break;
        }
        let e = Entry {
            at: pos,
            kind_word,
            len,
            gen: u64_at(bytes, pos + 8),
        };
        out.push(e);
        match k {
            kind::EXTEND => {
                let next = u64_at(bytes, pos + ENTRY_HEADER);
                let next_len = u64_at(bytes, pos + ENTRY_HEADER + 8);
                if next == 0 || next.saturating_add(next_len) > len_total {
                    break;
                }
                pos = next;
                end = next + next_len;
            }
            kind::COMMIT | kind::RETIRED => break,
            _ => pos += entry_size(len),
        }
    }
    out
}

/// Recomputes the checksum of the entry whose header is at `at`.
pub fn seal_entry(bytes: &mut [u8], at: u64) {
    let w0 = u64_at(bytes, at);
    let (kind_word, len) = (w0 as u32, (w0 >> 32) as u32);
    let gen = u64_at(bytes, at + 8);
    let start = (at + ENTRY_HEADER) as usize;
    let Some(payload) = bytes.get(start..start.saturating_add(len as usize)) else {
        return;
    };
    let sum = entry_checksum(log_key(bytes), at, kind_word, len, gen, payload);
    put(bytes, at + 16, 8, sum);
}
