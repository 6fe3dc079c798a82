//! Reading heap metadata from the pool: chunk entries, runs, spans, and pointer validation.
//!
//! Everything here treats the pool as untrusted input: every count and class read from the
//! chunk table is checked against the geometry before it is used.

use crate::error::{ChunkProblem, Corruption, PointerRejection};
use crate::layout::heap::{
    chunk_kind, ChunkWord, SizeClass, BITMAP_BYTES, CHUNK_ENTRY_SIZE, CHUNK_SIZE, CLASSES,
    CLASSES_CONST, CLASS_COUNT,
};
use crate::layout::Geometry;
use crate::region::Region;

/// What a chunk table walk finds at one position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Extent {
    /// `count` consecutive free chunks starting at `first`.
    Free { first: u64, count: u64 },
    /// A run of objects of `class` and type `fingerprint`.
    Run {
        first: u64,
        class: u8,
        fingerprint: u64,
    },
    /// One large object of type `fingerprint`.
    Span {
        first: u64,
        count: u64,
        fingerprint: u64,
    },
}

/// Read access to the heap metadata of a mapped pool.
#[derive(Clone, Copy)]
pub(crate) struct HeapMeta {
    pub region: Region,
    pub geometry: Geometry,
    /// Where [`holds`](Self::holds) reads, checked once against the region.
    tables: Tables,
}

/// What a run's first chunk entry holds for one value of its class byte: the exact word 0 a
/// valid run of that class has (an impossible one for a byte naming no class), and the class
/// (all zero for none). 32 bytes: found with a shift.
struct RunHead {
    word: u64,
    class: SizeClass,
}

const _: () = assert!(core::mem::size_of::<RunHead>() == 32);

/// [`RunHead`] for every class byte, so that one load and one comparison validate a run's
/// first entry: kind, class, and length.
static RUN_HEADS: [RunHead; 256] = {
    const NONE: RunHead = RunHead {
        // Word 0 of a run has kind RUN in its low byte; all ones never does.
        word: u64::MAX,
        class: SizeClass {
            unit: 0,
            run_chunks: 0,
            slots: 0,
            reciprocal: 0,
        },
    };
    let mut heads = [NONE; 256];
    let mut i = 0;
    while i < CLASS_COUNT {
        let class = CLASSES_CONST[i];
        // `holds` reads a slot's bitmap word without a bounds check: every class's bitmap
        // must fit in the bytes each chunk has.
        assert!(class.slots as u64 <= BITMAP_BYTES * 8);
        assert!(class.unit as u64 % OBJECT_START_ALIGN == 0);
        // And a run's slots lie inside its chunks.
        assert!(class.slots as u64 * class.unit as u64 <= class.run_chunks as u64 * CHUNK_SIZE);
        heads[i] = RunHead {
            word: ChunkWord {
                kind: chunk_kind::RUN,
                class: i as u8,
                count: class.run_chunks,
            }
            .encode(),
            class,
        };
        i += 1;
    }
    heads
};

/// A chunk entry as [`HeapMeta::holds`] read it for an offset: `rel` bytes into the heap, in
/// chunk `chunk` (below the table's `chunk_count`), whose entry words are `raw` and `found`.
#[derive(Clone, Copy)]
struct Entry {
    rel: u64,
    chunk: u64,
    raw: u64,
    found: u64,
}

/// Where [`HeapMeta::find_entry`] found an offset: in a valid run's first chunk (with the
/// run's head), or anywhere else in the heap.
enum Found {
    RunHead(Entry, &'static RunHead),
    Elsewhere(Entry),
}

/// Every offset [`HeapMeta::holds`] accepts is a multiple of this: runs and large objects
/// start on chunk boundaries (the heap starts on one, checked by [`Tables::new`]) and every
/// unit is a multiple of it (asserted below). A type aligned to no more needs no check of its own.
pub(crate) const OBJECT_START_ALIGN: u64 = 16;

/// The heap's tables, as [`HeapMeta::new`] found them to lie in the region: chunks
/// `0..chunk_count` have their 16-byte entry at `chunk_table + 16 * chunk`, their bitmap at
/// `bitmap_table + BITMAP_BYTES * chunk` (both 8-aligned), and their bytes inside the region
/// from `heap_offset`, a multiple of the chunk size. Kept apart from the public fields so that no change to those can break
/// what the unchecked reads rely on.
#[derive(Clone, Copy)]
struct Tables {
    chunk_table: u64,
    bitmap_table: u64,
    heap_offset: u64,
    chunk_count: u64,
    /// Chunks below this one have room after them for a run of any class
    /// (`chunk + MAX_RUN_CHUNKS <= chunk_count`): there, a run's first entry needs no check of
    /// its length against the heap's end.
    fast_chunks: u64,
}

/// The longest run of any class, in chunks.
const MAX_RUN_CHUNKS: u64 = {
    let mut max = 0;
    let mut i = 0;
    while i < CLASS_COUNT {
        if CLASSES_CONST[i].run_chunks as u64 > max {
            max = CLASSES_CONST[i].run_chunks as u64;
        }
        i += 1;
    }
    max
};

// `fast_chunks` is then at most `chunk_count`: a fast-path chunk has a table entry.
const _: () = assert!(MAX_RUN_CHUNKS >= 1);

impl Tables {
    /// The tables of `geometry` if they lie in `region`, else none (`chunk_count` 0: then every
    /// pointer goes the checked way, which reports what is wrong).
    fn new(region: &Region, g: &Geometry) -> Tables {
        let n = g.chunk_count;
        let end = |start: u64, per_chunk: u64| n.checked_mul(per_chunk)?.checked_add(start);
        let fits =
            |start: u64, per_chunk: u64| end(start, per_chunk).is_some_and(|e| e <= region.size());
        let ok = g.chunk_table_offset % 8 == 0
            && g.heap_offset % CHUNK_SIZE == 0
            && g.bitmap_table_offset % 8 == 0
            && fits(g.chunk_table_offset, CHUNK_ENTRY_SIZE)
            && fits(g.bitmap_table_offset, BITMAP_BYTES)
            && fits(g.heap_offset, CHUNK_SIZE);
        let chunk_count = if ok { n } else { 0 };
        Tables {
            chunk_table: g.chunk_table_offset,
            bitmap_table: g.bitmap_table_offset,
            heap_offset: g.heap_offset,
            chunk_count,
            fast_chunks: (chunk_count + 1).saturating_sub(MAX_RUN_CHUNKS),
        }
    }
}

impl HeapMeta {
    /// The heap metadata of `geometry` in `region`.
    pub(crate) fn new(region: Region, geometry: Geometry) -> HeapMeta {
        HeapMeta {
            region,
            geometry,
            tables: Tables::new(&region, &geometry),
        }
    }

    /// One past the last chunk that the chunk table, not yet validated, says is in use (0 for
    /// an empty heap), at most the heap's end: what open reserves again before it reads the
    /// runs' bitmaps. A damaged table makes it reserve more, never read out of bounds.
    pub(crate) fn claimed_end(&self) -> u64 {
        let n = self.geometry.chunk_count;
        let last = (0..n).rev().find_map(|chunk| {
            let word = self
                .region
                .read_u64(self.geometry.chunk_entry_offset(chunk));
            (word != 0).then_some((chunk, ChunkWord::decode(word)))
        });
        let Some((chunk, word)) = last else {
            return 0;
        };
        let len = match word.kind {
            chunk_kind::RUN | chunk_kind::SPAN => (word.count as u64).max(1),
            _ => 1,
        };
        chunk.saturating_add(len).min(n)
    }

    #[inline]
    pub(crate) fn entry(&self, chunk: u64) -> (ChunkWord, u64) {
        let off = self.geometry.chunk_entry_offset(chunk);
        (
            ChunkWord::decode(self.region.read_u64(off)),
            self.region.read_u64(off + 8),
        )
    }

    /// Word `word` of the table area at `offset`, read without a bounds check.
    ///
    /// # Safety
    /// `offset` is inside one of [`Tables`]' tables for a chunk below its `chunk_count`, and
    /// 8-aligned: then it is in the region (checked by [`Tables::new`]).
    #[inline(always)]
    unsafe fn table_word(&self, offset: u64) -> u64 {
        // SAFETY: in the region and aligned (caller); the mapping is live while the region is
        // used (`Region::new`), and only the pool's writer, excluded while a reader runs, writes.
        unsafe { (self.region.base().add(offset as usize) as *const u64).read() }
    }

    /// Chunk `chunk`'s entry, undecoded, for `chunk` below `self.tables.chunk_count`.
    #[inline(always)]
    fn table_entry(&self, chunk: u64) -> (u64, u64) {
        debug_assert!(chunk < self.tables.chunk_count);
        let off = self.tables.chunk_table + chunk * CHUNK_ENTRY_SIZE;
        // SAFETY: the chunk's entry, 16 bytes at an 8-aligned offset (`Tables`), chunk in range
        // (caller).
        unsafe { (self.table_word(off), self.table_word(off + 8)) }
    }

    /// Walks the chunk table from the start, yielding extents in order, and stops with an error
    /// at the first inconsistency. Every chunk's entry word is read and must be exactly what the
    /// allocator writes for its place:
    ///
    /// - a free chunk, and every chunk inside a large object, has word 0 zero (word 1 may keep
    ///   the type of an object freed there);
    /// - a run's first entry names a known class and that class's length, and the run fits in
    ///   the heap; each later chunk of the run is a continuation giving its distance back, and
    ///   the run's bitmap marks no slot past the class's last;
    /// - a large object's first entry gives a length that fits in the heap;
    /// - no entry has bits set outside its fields.
    ///
    /// So extents tile the heap exactly (none overlaps another or leaves the heap), and a walk
    /// that succeeds has accounted for every chunk. Time is proportional to the chunk count.
    pub(crate) fn walk(&self, mut f: impl FnMut(Extent)) -> Result<(), Corruption> {
        let n = self.geometry.chunk_count;
        let mut chunk = 0;
        while chunk < n {
            let raw = self.raw_word(chunk);
            let word = ChunkWord::decode(raw);
            if word.encode() != raw {
                return Err(self.error(chunk, ChunkProblem::StrayBits { word: raw }));
            }
            match word.kind {
                chunk_kind::FREE => {
                    if raw != 0 {
                        return Err(self.error(chunk, ChunkProblem::FreeWithFields { word: raw }));
                    }
                    let first = chunk;
                    chunk = self.free_end(chunk + 1, n);
                    f(Extent::Free {
                        first,
                        count: chunk - first,
                    });
                }
                chunk_kind::RUN => {
                    let class = self.run_class(chunk, word)?;
                    let c = &CLASSES[class as usize];
                    let len = c.run_chunks as u64;
                    for i in 1..len {
                        let cont = ChunkWord {
                            kind: chunk_kind::CONT,
                            class: 0,
                            count: i as u32,
                        };
                        let found = self.raw_word(chunk + i);
                        if found != cont.encode() {
                            return Err(self.error(
                                chunk + i,
                                ChunkProblem::BrokenRun {
                                    run: chunk,
                                    index: i,
                                    found,
                                },
                            ));
                        }
                    }
                    if c.slots % 64 != 0 {
                        let last = (c.slots as u64).div_ceil(64) - 1;
                        let bits = self.bitmap_word(chunk, last);
                        if bits >> (c.slots % 64) != 0 {
                            return Err(self.error(
                                chunk,
                                ChunkProblem::BitmapPastEnd {
                                    bitmap_word: self.bitmap_word_offset(chunk, last),
                                    slots: c.slots,
                                    bits,
                                },
                            ));
                        }
                    }
                    f(Extent::Run {
                        first: chunk,
                        class,
                        fingerprint: self
                            .region
                            .read_u64(self.geometry.chunk_entry_offset(chunk) + 8),
                    });
                    chunk += len;
                }
                chunk_kind::SPAN => {
                    let count = word.count as u64;
                    if count == 0 || count > n - chunk || word.class != 0 {
                        return Err(self.error(
                            chunk,
                            ChunkProblem::SpanLength {
                                chunks: count,
                                class: word.class,
                                heap_chunks: n,
                            },
                        ));
                    }
                    let inner = self.free_end(chunk + 1, chunk + count);
                    if inner < chunk + count {
                        return Err(self.error(
                            inner,
                            ChunkProblem::InsideSpan {
                                span: chunk,
                                found: self.raw_word(inner),
                            },
                        ));
                    }
                    f(Extent::Span {
                        first: chunk,
                        count,
                        fingerprint: self
                            .region
                            .read_u64(self.geometry.chunk_entry_offset(chunk) + 8),
                    });
                    chunk += count;
                }
                chunk_kind::CONT => {
                    return Err(self.error(chunk, ChunkProblem::OrphanContinuation));
                }
                k => return Err(self.error(chunk, ChunkProblem::UnknownKind { kind: k })),
            }
        }
        Ok(())
    }

    /// Word 0 of chunk `chunk`'s entry, undecoded.
    #[inline]
    fn raw_word(&self, chunk: u64) -> u64 {
        self.region
            .read_u64(self.geometry.chunk_entry_offset(chunk))
    }

    /// The first chunk in `from..end` whose word 0 is not zero, or `end`.
    #[inline]
    fn free_end(&self, from: u64, end: u64) -> u64 {
        (from..end).find(|&c| self.raw_word(c) != 0).unwrap_or(end)
    }

    /// An inconsistency at chunk `chunk`, naming its table entry's offset.
    #[cold]
    fn error(&self, chunk: u64, problem: ChunkProblem) -> Corruption {
        Corruption::ChunkTable {
            chunk,
            entry: self.geometry.chunk_entry_offset(chunk),
            problem,
        }
    }

    #[inline]
    fn run_class(&self, chunk: u64, word: ChunkWord) -> Result<u8, Corruption> {
        let class_ok = (word.class as usize) < CLASS_COUNT && {
            let class = CLASSES[word.class as usize];
            word.count == class.run_chunks
                && class.run_chunks as u64 <= self.geometry.chunk_count - chunk
        };
        if class_ok {
            return Ok(word.class);
        }
        self.bad_run_class(chunk, word)
    }

    #[cold]
    fn bad_run_class(&self, chunk: u64, word: ChunkWord) -> Result<u8, Corruption> {
        if word.class as usize >= CLASS_COUNT {
            return Err(self.error(chunk, ChunkProblem::UnknownClass { class: word.class }));
        }
        let class = CLASSES[word.class as usize];
        if word.count != class.run_chunks
            || class.run_chunks as u64 > self.geometry.chunk_count - chunk
        {
            return Err(self.error(
                chunk,
                ChunkProblem::RunLength {
                    class: word.class,
                    chunks: word.count,
                    needed: class.run_chunks,
                    left: self.geometry.chunk_count - chunk,
                },
            ));
        }
        Ok(word.class)
    }

    /// Offset of the run's allocation bitmap in the bitmap table.
    #[inline]
    pub(crate) fn bitmap_offset(&self, first: u64) -> u64 {
        self.geometry.bitmap_offset(first)
    }

    /// Offset of the run's first slot.
    pub(crate) fn run_offset(&self, first: u64) -> u64 {
        self.geometry.chunk_offset(first)
    }

    /// Offset of slot `slot` of the run at chunk `first`.
    pub(crate) fn slot_offset(&self, first: u64, class: &SizeClass, slot: u64) -> u64 {
        self.run_offset(first) + slot * class.unit as u64
    }

    /// Offset of word `index` of the allocation bitmap of the run at chunk `first`.
    #[inline]
    pub(crate) fn bitmap_word_offset(&self, first: u64, index: u64) -> u64 {
        self.bitmap_offset(first) + index * 8
    }

    /// The allocation bitmap words of the run at chunk `first`.
    #[inline]
    pub(crate) fn bitmap_word(&self, first: u64, index: u64) -> u64 {
        self.region.read_u64(self.bitmap_word_offset(first, index))
    }

    /// Calls `f(offset, size)` for every live object of `extent`, in address order (none for
    /// free chunks).
    pub(crate) fn for_each_object_in(&self, extent: Extent, mut f: impl FnMut(u64, u64)) {
        match extent {
            Extent::Free { .. } => {}
            Extent::Span { first, count, .. } => {
                f(self.geometry.chunk_offset(first), count * CHUNK_SIZE)
            }
            Extent::Run { first, class, .. } => {
                let c = &CLASSES[class as usize];
                self.for_each_allocated(first, c, |slot| {
                    f(self.slot_offset(first, c, slot), c.unit as u64)
                });
            }
        }
    }

    /// Calls `f(slot)` for every allocated slot of the run.
    pub(crate) fn for_each_allocated(&self, first: u64, class: &SizeClass, mut f: impl FnMut(u64)) {
        let words = (class.slots as u64).div_ceil(64);
        for w in 0..words {
            let mut bits = self.bitmap_word(first, w);
            if w == words - 1 && class.slots % 64 != 0 {
                bits &= (1u64 << (class.slots % 64)) - 1;
            }
            while bits != 0 {
                let b = bits.trailing_zeros() as u64;
                f(w * 64 + b);
                bits &= bits - 1;
            }
        }
    }

    /// The usable size of the allocated object of type `fingerprint` that starts exactly at
    /// `offset`, or `None` if there is none, in the same pass as [`holds`](Self::holds): what
    /// the tests hold it to.
    #[cfg(test)]
    pub(crate) fn live_size(&self, offset: u64, fingerprint: u64) -> Option<u64> {
        match self.find_entry(offset)? {
            Found::RunHead(at, head) => {
                if at.found != fingerprint {
                    return None;
                }
                // In the run's first chunk, the offset in the chunk is the offset in the run.
                let slot = head.class.slot_at((at.rel % CHUNK_SIZE) as u32)?;
                self.slot_is_set(at.chunk, &head.class, slot)
            }
            Found::Elsewhere(at) => self.live_size_elsewhere(at, fingerprint),
        }
    }

    /// The chunk entry of `offset`, if it lies in the heap, and whether it is a valid run's
    /// first: the part of the check that [`holds`](Self::holds) and the tests' `live_size`
    /// share.
    #[inline(always)]
    fn find_entry(&self, offset: u64) -> Option<Found> {
        let t = &self.tables;
        // Below the heap, the subtraction wraps far past its end: one comparison covers both.
        let rel = offset.wrapping_sub(t.heap_offset);
        let chunk = rel / CHUNK_SIZE;
        if chunk >= t.chunk_count {
            return None;
        }
        let (raw, found) = self.table_entry(chunk);
        let at = Entry {
            rel,
            chunk,
            raw,
            found,
        };
        // One comparison checks the kind, the class and the run length of a run's first chunk.
        let head = &RUN_HEADS[(raw >> 8) as u8 as usize];
        if raw != head.word || head.class.run_chunks as u64 > t.chunk_count - chunk {
            return Some(Found::Elsewhere(at));
        }
        Some(Found::RunHead(at, head))
    }

    /// Whether an allocated object of type `fingerprint` with at least `need` usable bytes
    /// starts exactly at `offset`: the whole metadata check of a typed access, in one pass over
    /// the chunk's 16-byte entry and the slot's bitmap word. A later chunk of a run or a large
    /// object takes [`holds_elsewhere`](Self::holds_elsewhere), and the heap's last chunks
    /// [`holds_near_end`](Self::holds_near_end). The size is compared where it is found, not
    /// passed back through an `Option` (W5's lookup: 69 instructions a key down to 63), and
    /// a run's length is checked against the heap's end only near it (63 down to 59, with
    /// [`SizeClass::slot_at`]'s single multiplication).
    ///
    /// It accepts exactly what [`object_at`](Self::object_at), [`is_allocated`](Self::is_allocated),
    /// the fingerprint comparison and a comparison of the size accept together (tested below,
    /// over whole heaps, damaged ones included), so a caller asks those for the reason only once
    /// this says no. The entry is validated on every access, not trusted to be as open found
    /// it. An object it accepts lies inside the region, and starts at a multiple of
    /// [`OBJECT_START_ALIGN`].
    #[inline(always)]
    pub(crate) fn holds(&self, offset: u64, fingerprint: u64, need: u64) -> bool {
        let t = &self.tables;
        // Below the heap, the subtraction wraps far past its end: one comparison covers both.
        let rel = offset.wrapping_sub(t.heap_offset);
        let chunk = rel / CHUNK_SIZE;
        if chunk >= t.fast_chunks {
            return self.holds_near_end(offset, fingerprint, need);
        }
        let (raw, found) = self.table_entry(chunk);
        // One comparison checks the kind, the class and the run length of a run's first chunk;
        // the run fits in the heap because it starts below `fast_chunks`.
        let head = &RUN_HEADS[(raw >> 8) as u8 as usize];
        if raw != head.word {
            let at = Entry {
                rel,
                chunk,
                raw,
                found,
            };
            return self.holds_elsewhere(at, fingerprint, need);
        }
        self.holds_in_run_head(rel, chunk, found, head, fingerprint, need)
    }

    /// [`holds`](Self::holds) for an offset in the heap's last [`MAX_RUN_CHUNKS`] chunks (or
    /// outside it), where a run's first entry is also checked to fit: out of line, for a
    /// small part of any heap but the smallest.
    #[inline(never)]
    fn holds_near_end(&self, offset: u64, fingerprint: u64, need: u64) -> bool {
        match self.find_entry(offset) {
            None => false,
            Some(Found::RunHead(at, head)) => {
                self.holds_in_run_head(at.rel, at.chunk, at.found, head, fingerprint, need)
            }
            Some(Found::Elsewhere(at)) => self.holds_elsewhere(at, fingerprint, need),
        }
    }

    /// The rest of [`holds`](Self::holds) in a valid run's first chunk, `chunk`, whose entry
    /// gave the type `found`.
    #[inline(always)]
    fn holds_in_run_head(
        &self,
        rel: u64,
        chunk: u64,
        found: u64,
        head: &RunHead,
        fingerprint: u64,
        need: u64,
    ) -> bool {
        if found != fingerprint || (head.class.unit as u64) < need {
            return false;
        }
        // In the run's first chunk, the offset in the chunk is the offset in the run.
        match head.class.slot_at((rel % CHUNK_SIZE) as u32) {
            Some(slot) => self.slot_is_set(chunk, &head.class, slot).is_some(),
            None => false,
        }
    }

    /// [`holds`](Self::holds) out of line, for what is not a run's first chunk: a large
    /// object's first chunk is the common case here (an array, a bucket table), and is
    /// decided first, from the entry `holds` already read.
    #[inline(never)]
    fn holds_elsewhere(&self, at: Entry, fingerprint: u64, need: u64) -> bool {
        self.live_size_elsewhere(at, fingerprint)
            .is_some_and(|size| size >= need)
    }

    /// The usable size as [`holds`](Self::holds) finds it, for an entry that is not a valid
    /// run's first (a large object, a later chunk of a run, free space or damage).
    #[inline(always)]
    fn live_size_elsewhere(&self, at: Entry, fingerprint: u64) -> Option<u64> {
        let t = &self.tables;
        let Entry {
            rel,
            chunk,
            raw,
            found,
        } = at;
        // The exact word of a large object's first chunk: kind SPAN, class 0, nothing in bits
        // 16..32, the count above. It starts at its first chunk's first byte (a later chunk
        // of it reads as free).
        if raw & 0xFFFF_FFFF == chunk_kind::SPAN as u64 {
            let count = raw >> 32;
            let span = rel % CHUNK_SIZE == 0
                && count != 0
                && count <= t.chunk_count - chunk
                && found == fingerprint;
            // `count` fits 32 bits: no overflow.
            return span.then_some(count * CHUNK_SIZE);
        }
        let word = ChunkWord::decode(raw);
        if word.encode() != raw || word.kind != chunk_kind::CONT {
            return None;
        }
        let head = chunk.checked_sub(word.count as u64)?;
        let (raw, found) = self.table_entry(head);
        let run = &RUN_HEADS[(raw >> 8) as u8 as usize];
        let valid = raw == run.word
            && run.class.run_chunks as u64 <= t.chunk_count - head
            && chunk - head < run.class.run_chunks as u64
            && found == fingerprint;
        if !valid {
            return None;
        }
        // Less than a run (at most 64 chunks) from its start: fits 32 bits.
        let slot = run.class.slot_at((rel - head * CHUNK_SIZE) as u32)?;
        self.slot_is_set(head, &run.class, slot)
    }

    /// `Some(class.unit)` if `slot` is one of the run's and its bit is set in the bitmap of the
    /// run at chunk `head` (below the table's `chunk_count`).
    #[inline(always)]
    fn slot_is_set(&self, head: u64, class: &SizeClass, slot: u64) -> Option<u64> {
        if slot >= class.slots as u64 {
            return None;
        }
        let word = self.tables.bitmap_table + head * BITMAP_BYTES + slot / 64 * 8;
        // SAFETY: word `slot / 64` of chunk `head`'s bitmap, `head` in range (caller), and a
        // class's bitmap fits in `BITMAP_BYTES` (asserted at compile time above).
        let bits = unsafe { self.table_word(word) };
        (bits & (1 << (slot % 64)) != 0).then_some(class.unit as u64)
    }

    /// Chunk `chunk`'s entry; one of an object (a run's or a large object's) must have no bits
    /// set outside its fields, as the walk at open checked. Inlined: a free locates its object
    /// through it, and the call cost W3 free 39 instructions.
    #[inline]
    fn exact_entry(&self, chunk: u64) -> Result<(ChunkWord, u64), PointerRejection> {
        let (word, fingerprint) = self.entry(chunk);
        let raw = self.raw_word(chunk);
        if word.kind != chunk_kind::FREE && word.encode() != raw {
            return Err(PointerRejection::BadChunkEntry);
        }
        Ok((word, fingerprint))
    }

    /// Finds the object that starts exactly at `offset`. Returns its kind, fingerprint and
    /// usable size; never reads outside the pool, whatever the table holds.
    #[inline]
    pub(crate) fn object_at(&self, offset: u64) -> Result<ObjectRef, PointerRejection> {
        let chunk = self
            .geometry
            .chunk_of(offset)
            .ok_or(PointerRejection::OutsideHeap)?;
        let (word, fingerprint) = self.exact_entry(chunk)?;
        let (head, word, fingerprint) = match word.kind {
            chunk_kind::RUN | chunk_kind::SPAN => (chunk, word, fingerprint),
            chunk_kind::CONT => {
                let head = chunk
                    .checked_sub(word.count as u64)
                    .ok_or(PointerRejection::BadChunkEntry)?;
                let (hw, hf) = self.exact_entry(head)?;
                // The head must be a run that reaches back to this chunk: a continuation whose
                // distance overshoots its run would otherwise find a slot a multiple of 2^32
                // bytes away from `offset`.
                let reaches = (hw.class as usize) < CLASS_COUNT
                    && (word.count as u64) < CLASSES[hw.class as usize].run_chunks as u64;
                if hw.kind != chunk_kind::RUN || !reaches {
                    return Err(PointerRejection::BadChunkEntry);
                }
                (head, hw, hf)
            }
            _ => return Err(PointerRejection::InFreeSpace),
        };
        if word.kind == chunk_kind::SPAN {
            let count = word.count as u64;
            if count == 0 || count > self.geometry.chunk_count - head || word.class != 0 {
                return Err(PointerRejection::BadChunkEntry);
            }
            if offset != self.geometry.chunk_offset(head) {
                return Err(PointerRejection::InsideLargeObject);
            }
            return Ok(ObjectRef::Span {
                first: head,
                count,
                fingerprint,
                size: count * CHUNK_SIZE,
            });
        }
        let class_index = self
            .run_class(head, word)
            .map_err(|_| PointerRejection::BadChunkEntry)?;
        let class = &CLASSES[class_index as usize];
        // A run is at most 64 chunks, so the offset within it fits 32 bits.
        let rel = (offset - self.run_offset(head)) as u32;
        let Some(slot) = class.slot_at(rel) else {
            return Err(PointerRejection::InsideObject);
        };
        if slot >= class.slots as u64 {
            return Err(PointerRejection::PastLastSlot);
        }
        Ok(ObjectRef::Slot {
            first: head,
            class: class_index,
            slot,
            fingerprint,
            size: class.unit as u64,
        })
    }

    /// Whether the object is allocated in the persistent bitmap (spans always are).
    #[inline]
    pub(crate) fn is_allocated(&self, object: &ObjectRef) -> bool {
        match *object {
            ObjectRef::Span { .. } => true,
            ObjectRef::Slot { first, slot, .. } => {
                self.bitmap_word(first, slot / 64) & (1 << (slot % 64)) != 0
            }
        }
    }
}

/// An object located by [`HeapMeta::object_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ObjectRef {
    Slot {
        first: u64,
        class: u8,
        slot: u64,
        fingerprint: u64,
        size: u64,
    },
    Span {
        first: u64,
        count: u64,
        fingerprint: u64,
        size: u64,
    },
}

impl ObjectRef {
    pub(crate) fn fingerprint(&self) -> u64 {
        match *self {
            ObjectRef::Slot { fingerprint, .. } | ObjectRef::Span { fingerprint, .. } => {
                fingerprint
            }
        }
    }
    pub(crate) fn size(&self) -> u64 {
        match *self {
            ObjectRef::Slot { size, .. } | ObjectRef::Span { size, .. } => size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::heap::chunk_kind::{CONT, RUN, SPAN};
    use crate::{PPtr, PSlice, Persistent, Pool, PoolImage};

    #[derive(Persistent)]
    #[repr(C)]
    struct Root {
        small: PPtr<Small>,
        medium: PSlice<u64>,
        large: PSlice<u64>,
    }

    /// 24 bytes: the 32-byte class, one-chunk runs.
    #[derive(Persistent)]
    #[repr(C)]
    struct Small {
        a: u64,
        b: u64,
        c: u64,
    }

    /// An image of a pool holding small objects (some freed), objects in runs of several chunks
    /// and large objects, with its geometry.
    fn populated() -> (PoolImage, Geometry) {
        let pool = Pool::<Root>::builder().create_simulated(4 << 20).unwrap();
        let mut freed = Vec::new();
        pool.transaction(|tx| -> crate::Result<()> {
            for i in 0..600u64 {
                let p = tx.alloc(Small { a: i, b: 0, c: 0 })?;
                if i % 3 == 0 {
                    freed.push(p);
                }
                tx.root_mut().set_small(p)?;
            }
            // 3,200 bytes: a class whose runs take several chunks.
            for _ in 0..12 {
                let s = tx.alloc_slice_zeroed::<u64>(400)?;
                tx.root_mut().set_medium(s)?;
            }
            // 40,000 bytes: three chunks each.
            for _ in 0..3 {
                let s = tx.alloc_slice_zeroed::<u64>(5000)?;
                tx.root_mut().set_large(s)?;
            }
            Ok(())
        })
        .unwrap();
        pool.transaction(|tx| -> crate::Result<()> { freed.iter().try_for_each(|&p| tx.free(p)) })
            .unwrap();
        let geometry = pool.shared().media.geometry;
        let sim = pool.shared().media.domain.sim().unwrap();
        let image = sim.crash_now(|point| point.everything());
        drop(pool);
        (image, geometry)
    }

    fn meta_of(image: &mut PoolImage, geometry: Geometry) -> HeapMeta {
        let bytes = image.as_bytes_mut();
        // SAFETY: the image outlives the meta in each test, and is page-aligned.
        let region = unsafe { Region::new(bytes.as_mut_ptr(), bytes.len() as u64) };
        HeapMeta::new(region, geometry)
    }

    /// What `object_at`, `is_allocated` and the type comparison accept together.
    fn reference(meta: &HeapMeta, offset: u64, fingerprint: u64) -> Option<u64> {
        let object = meta.object_at(offset).ok()?;
        (meta.is_allocated(&object) && object.fingerprint() == fingerprint).then_some(object.size())
    }

    /// Every 8-byte offset across the heap (and around it), for every fingerprint the table
    /// holds and one it does not: `live_size` agrees with the reference. Returns how many
    /// offsets were accepted.
    fn assert_agreement(meta: &HeapMeta) -> u64 {
        let g = meta.geometry;
        let mut fingerprints: Vec<u64> = (0..g.chunk_count).map(|c| meta.entry(c).1).collect();
        fingerprints.push(0x1234_5678);
        fingerprints.sort_unstable();
        fingerprints.dedup();
        let mut accepted = 0;
        let offsets = (g.heap_offset - 64..g.heap_end() + 64).step_by(8).chain([
            0,
            1,
            g.heap_offset + 1,
            u64::MAX - 7,
            g.heap_end(),
        ]);
        for offset in offsets {
            for &fp in &fingerprints {
                let fast = meta.live_size(offset, fp);
                let expected = reference(meta, offset, fp);
                assert_eq!(fast, expected, "offset {offset:#x} fp {fp:#x}");
                // `holds` is `live_size` compared with the size needed, at every boundary.
                let size = expected.unwrap_or(0);
                for need in [0, 1, size.saturating_sub(1), size, size + 1, u64::MAX] {
                    assert_eq!(
                        meta.holds(offset, fp, need),
                        expected.is_some_and(|s| s >= need),
                        "offset {offset:#x} fp {fp:#x} need {need}"
                    );
                }
                if fast.is_some() {
                    assert_eq!(offset % OBJECT_START_ALIGN, 0, "offset {offset:#x}");
                }
                accepted += fast.is_some() as u64;
            }
        }
        accepted
    }

    #[test]
    fn live_size_agrees_with_the_checked_walk_on_a_sound_heap() {
        let (mut image, geometry) = populated();
        let meta = meta_of(&mut image, geometry);
        // 400 small objects, 12 medium, 3 large, the root's pointers not counted.
        assert_eq!(assert_agreement(&meta), 400 + 12 + 3);
    }

    /// A run of every class planted at each of the heap's last chunks, with every bit of its
    /// bitmap set: `holds` takes a run that fits and refuses one that runs past the heap's
    /// end, on both sides of where it stops checking the length (`fast_chunks`).
    #[test]
    fn a_run_near_the_heap_end_is_held_only_if_it_fits() {
        let (mut image, geometry) = populated();
        let meta = meta_of(&mut image, geometry);
        let n = geometry.chunk_count;
        let fp = 0xF00D_F00D;
        let (mut fitting, mut overhanging) = (0, 0);
        for (class, c) in CLASSES.iter().enumerate() {
            for chunk in n - MAX_RUN_CHUNKS - 2..n {
                let end = (chunk + c.run_chunks as u64).min(n);
                let saved: Vec<[u64; 2]> = (chunk..end)
                    .map(|k| {
                        let e = geometry.chunk_entry_offset(k);
                        [meta.region.read_u64(e), meta.region.read_u64(e + 8)]
                    })
                    .collect();
                let bitmap: Vec<u64> = (0..16).map(|i| meta.bitmap_word(chunk, i)).collect();
                for k in chunk..end {
                    let (kind, count) = match k - chunk {
                        0 => (RUN, c.run_chunks),
                        d => (CONT, d as u32),
                    };
                    let raw = ChunkWord {
                        kind,
                        class: class as u8,
                        count,
                    }
                    .encode();
                    let e = geometry.chunk_entry_offset(k);
                    meta.region.write_u64(e, raw);
                    meta.region.write_u64(e + 8, fp);
                }
                for i in 0..16 {
                    meta.region
                        .write_u64(meta.bitmap_word_offset(chunk, i), u64::MAX);
                }
                let first = geometry.heap_offset + chunk * CHUNK_SIZE;
                for offset in (first..first + CHUNK_SIZE).step_by(16) {
                    let expected = reference(&meta, offset, fp);
                    assert_eq!(
                        meta.holds(offset, fp, 0),
                        expected.is_some(),
                        "class {class} at chunk {chunk} of {n}, offset {offset:#x}"
                    );
                }
                if chunk + c.run_chunks as u64 <= n {
                    assert!(
                        meta.holds(first, fp, c.unit as u64),
                        "class {class} at {chunk}"
                    );
                    fitting += 1;
                } else {
                    assert!(!meta.holds(first, fp, 0), "class {class} at {chunk}");
                    overhanging += 1;
                }
                for (k, [a, b]) in (chunk..end).zip(saved) {
                    let e = geometry.chunk_entry_offset(k);
                    meta.region.write_u64(e, a);
                    meta.region.write_u64(e + 8, b);
                }
                for (i, w) in bitmap.into_iter().enumerate() {
                    meta.region
                        .write_u64(meta.bitmap_word_offset(chunk, i as u64), w);
                }
            }
        }
        assert!(fitting > 0 && overhanging > 0);
    }

    /// splitmix64, for reproducible damage.
    fn next(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Chunk entries and bitmap words overwritten with what a hostile file may hold: words of
    /// every kind with plausible and implausible fields, stray bits, swapped fingerprints. The
    /// fast check still accepts exactly what the reference accepts (and reads nothing outside
    /// the pool: it would fault or trip the region's checks in the reference).
    #[test]
    fn live_size_agrees_with_the_checked_walk_on_a_damaged_heap() {
        let (image, geometry) = populated();
        let used: Vec<u64> = {
            let mut image = image.clone();
            let meta = meta_of(&mut image, geometry);
            (0..geometry.chunk_count)
                .filter(|&c| meta.raw_word(c) != 0)
                .collect()
        };
        let mut state = 7;
        for _round in 0..48 {
            let mut image = image.clone();
            let meta = meta_of(&mut image, geometry);
            let fingerprints: Vec<u64> = used.iter().map(|&c| meta.entry(c).1).collect();
            for _ in 0..6 {
                let r = next(&mut state);
                let chunk = if r % 4 == 0 {
                    r % geometry.chunk_count
                } else {
                    used[(r >> 8) as usize % used.len()]
                };
                let class = (next(&mut state) % (CLASS_COUNT as u64 + 3)) as u8;
                let chunks = CLASSES.get(class as usize).map_or(1, |c| c.run_chunks);
                let pick = next(&mut state);
                // A used chunk before this one: a continuation's distance back to it.
                let before = used[(pick >> 24) as usize % used.len()];
                let count = match pick % 6 {
                    0 => chunks,
                    1 => (pick >> 8) as u32 % 70,
                    2 => u32::MAX,
                    3 => geometry.chunk_count as u32 - chunk as u32,
                    4 if before < chunk => (chunk - before) as u32,
                    _ => 1,
                };
                let kind = [RUN, CONT, SPAN, 0, 7][(pick >> 40) as usize % 5];
                let mut raw = ChunkWord { kind, class, count }.encode();
                if pick >> 62 == 0 {
                    raw |= 1 << 20; // stray bits
                }
                let entry = geometry.chunk_entry_offset(chunk);
                meta.region.write_u64(entry, raw);
                let fp = fingerprints[(pick >> 16) as usize % fingerprints.len()];
                meta.region.write_u64(entry + 8, fp);
                let bitmap = meta.bitmap_word_offset(chunk, next(&mut state) % 16);
                meta.region.write_u64(bitmap, next(&mut state));
            }
            assert_agreement(&meta);
        }
    }
}
