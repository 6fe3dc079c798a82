//! Heap metadata: the chunk table and the size classes of runs.
//!
//! The heap is an array of [`CHUNK_SIZE`] chunks, each described by a 16-byte entry in the chunk
//! table:
//!
//! ```text
//! word 0: kind (bits 0..8) | class (bits 8..16) | count (bits 32..64)
//! word 1: type fingerprint of the objects in the run or span
//! ```
//!
//! - `FREE`: the chunk belongs to no object. Zeroed table = empty heap.
//! - `RUN`: the first chunk of a run: `count` chunks holding objects of size class `class`, all
//!   of one type, packed from the run's first byte. Its allocation bitmap (bit set = slot
//!   allocated) is the chunk's entry in the bitmap table, kept apart so that the metadata is
//!   dense and objects start on chunk boundaries.
//! - `SPAN`: the first chunk of one large object occupying `count` chunks.
//! - `CONT`: a later chunk of a run; `count` is the distance back to the run's first chunk.
//!
//! A run holds one type, so small objects carry no per-object header: a 64-byte object takes
//! 64 bytes (PMDK spends a 128-byte block on it). The type of any object is found from its
//! chunk's entry, and its size from the class or the span length.

/// Bytes per chunk.
pub(crate) const CHUNK_SIZE: u64 = 16 * 1024;
/// Bytes per chunk table entry.
pub(crate) const CHUNK_ENTRY_SIZE: u64 = 16;
/// Bytes of allocation bitmap per chunk, enough for a run of the smallest class in one chunk.
pub(crate) const BITMAP_BYTES: u64 = CHUNK_SIZE / 16 / 8;
/// Alignment guaranteed to every object in a run whose unit size is a multiple of it.
pub(crate) const MAX_RUN_ALIGN: u64 = 64;

/// Kinds of chunk table entries.
pub(crate) mod chunk_kind {
    pub(crate) const FREE: u8 = 0;
    pub(crate) const RUN: u8 = 1;
    pub(crate) const SPAN: u8 = 2;
    pub(crate) const CONT: u8 = 3;
}

/// A decoded chunk table entry word 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkWord {
    pub kind: u8,
    pub class: u8,
    pub count: u32,
}

impl ChunkWord {
    pub(crate) const fn encode(self) -> u64 {
        self.kind as u64 | (self.class as u64) << 8 | (self.count as u64) << 32
    }
    #[inline]
    pub(crate) fn decode(word: u64) -> ChunkWord {
        ChunkWord {
            kind: word as u8,
            class: (word >> 8) as u8,
            count: (word >> 32) as u32,
        }
    }
}

/// One size class: objects of `unit` bytes in runs of `run_chunks` chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SizeClass {
    pub unit: u32,
    pub run_chunks: u32,
    /// Slots per run.
    pub slots: u32,
    /// `ceil(2^64 / unit)`: turns the division by `unit` on every checked access into one
    /// widening multiplication (see [`slot_at`](Self::slot_at)).
    pub reciprocal: u64,
}

impl SizeClass {
    /// The slot starting exactly `rel` bytes into a run, if `rel` is a multiple of the unit
    /// (`rel` below 2^32, which every run is). With `c = ceil(2^64 / unit)`, the 128-bit
    /// product `rel * c` holds the quotient `rel / unit` in its high half, and its low half is
    /// below `c` exactly when `unit` divides `rel` (Lemire, Kaser and Kurz, "Faster remainder
    /// by direct computation", 2019: both hold for 32-bit `rel` and `unit`). One `mul` gives
    /// both, where a quotient by a 32-bit reciprocal needed a second multiplication to check.
    #[inline]
    pub(crate) fn slot_at(&self, rel: u32) -> Option<u64> {
        let product = rel as u128 * self.reciprocal as u128;
        ((product as u64) < self.reciprocal).then_some((product >> 64) as u64)
    }

    /// Bytes of bitmap.
    pub(crate) const fn bitmap_bytes(&self) -> u64 {
        (self.slots as u64).div_ceil(64) * 8
    }

    /// The largest power of two (at most [`MAX_RUN_ALIGN`]) dividing the unit: every slot is
    /// aligned to it, because runs start on chunk boundaries.
    pub(crate) const fn align(&self) -> u64 {
        let a = 1u64 << (self.unit as u64).trailing_zeros();
        if a > MAX_RUN_ALIGN {
            MAX_RUN_ALIGN
        } else {
            a
        }
    }
}

/// Slots of each run are at least this many (runs grow to whole chunks to reach it).
const MIN_SLOTS: u64 = 8;
/// Number of size classes.
pub(crate) const CLASS_COUNT: usize = class_units().1;
/// Largest object served from runs; larger ones take whole chunks.
pub(crate) const MAX_RUN_UNIT: u64 = 32 * 1024;

/// Unit sizes: every 16 bytes up to 128, then four classes per doubling up to
/// [`MAX_RUN_UNIT`], so rounding wastes at most a fifth of an object.
const fn class_units() -> ([u32; 64], usize) {
    let mut units = [0u32; 64];
    let mut n = 0;
    let mut size = 16u64;
    while size <= 128 {
        units[n] = size as u32;
        n += 1;
        size += 16;
    }
    let mut base = 128u64;
    while base < MAX_RUN_UNIT {
        let step = base / 4;
        let mut i = 1;
        while i <= 4 {
            units[n] = (base + i * step) as u32;
            n += 1;
            i += 1;
        }
        base *= 2;
    }
    (units, n)
}

const fn make_class(unit: u64) -> SizeClass {
    let mut chunks = 1u64;
    loop {
        let mut slots = chunks * CHUNK_SIZE / unit;
        if slots > BITMAP_BYTES * 8 {
            slots = BITMAP_BYTES * 8;
        }
        if slots >= MIN_SLOTS || chunks >= 64 {
            return SizeClass {
                unit: unit as u32,
                run_chunks: chunks as u32,
                slots: slots as u32,
                reciprocal: u64::MAX / unit + 1,
            };
        }
        chunks += 1;
    }
}

/// Every size class, smallest first.
pub(crate) static CLASSES: [SizeClass; CLASS_COUNT] = CLASSES_CONST;

/// [`CLASSES`], for tables built at compile time from it.
pub(crate) const CLASSES_CONST: [SizeClass; CLASS_COUNT] = {
    let (units, n) = class_units();
    let mut out = [SizeClass {
        unit: 0,
        run_chunks: 0,
        slots: 0,
        reciprocal: 0,
    }; CLASS_COUNT];
    let mut i = 0;
    while i < n {
        out[i] = make_class(units[i] as u64);
        i += 1;
    }
    out
};

/// The smallest class that holds `size` bytes aligned to `align`, or `None` if the object must
/// take whole chunks.
pub(crate) fn class_for(size: u64, align: u64) -> Option<u8> {
    if size > MAX_RUN_UNIT || align > MAX_RUN_ALIGN {
        return None;
    }
    let size = size.max(1);
    CLASSES
        .iter()
        .position(|c| c.unit as u64 >= size && c.align() >= align)
        .map(|i| i as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_at_agrees_with_division_over_every_run() {
        for c in CLASSES.iter() {
            let run_bytes = c.run_chunks * CHUNK_SIZE as u32;
            for rel in 0..run_bytes {
                let expected = (rel % c.unit == 0).then_some((rel / c.unit) as u64);
                assert_eq!(c.slot_at(rel), expected, "unit {} rel {rel}", c.unit);
            }
        }
    }

    #[test]
    fn classes_are_sane() {
        let mut prev = 0;
        for c in CLASSES.iter() {
            assert!(c.unit > prev);
            prev = c.unit;
            assert!(c.slots as u64 >= MIN_SLOTS, "{c:?}");
            assert!(c.bitmap_bytes() <= BITMAP_BYTES, "{c:?}");
            let used = c.slots as u64 * c.unit as u64;
            let run = c.run_chunks as u64 * CHUNK_SIZE;
            assert!(used <= run);
            // Little left over at the end of a run.
            assert!(run - used < c.unit as u64, "{c:?}");
        }
        assert_eq!(CLASSES[CLASS_COUNT - 1].unit as u64, MAX_RUN_UNIT);
        const { assert!(CLASS_COUNT < 256) };
    }

    #[test]
    fn sixty_four_byte_objects_pack_densely() {
        let c = CLASSES[class_for(64, 8).unwrap() as usize];
        assert_eq!(c.unit, 64);
        assert_eq!(c.run_chunks, 1);
        assert_eq!(c.slots, 256);
    }

    #[test]
    fn class_choice_respects_alignment() {
        let c = CLASSES[class_for(48, 32).unwrap() as usize];
        assert!(c.unit >= 48 && c.unit % 32 == 0);
        assert_eq!(class_for(1, 1).map(|i| CLASSES[i as usize].unit), Some(16));
        assert_eq!(class_for(MAX_RUN_UNIT + 1, 8), None);
        assert_eq!(class_for(64, 128), None);
    }

    #[test]
    fn chunk_word_round_trips() {
        let w = ChunkWord {
            kind: chunk_kind::RUN,
            class: 17,
            count: 123_456,
        };
        assert_eq!(ChunkWord::decode(w.encode()), w);
    }
}
