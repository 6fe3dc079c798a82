//! Reading heap metadata from the pool: chunk entries, runs, spans, and pointer validation.
//!
//! Everything here treats the pool as untrusted input: every count and class read from the
//! chunk table is checked against the geometry before it is used.

use crate::error::{ChunkProblem, Corruption, PointerRejection};
use crate::layout::heap::{chunk_kind, ChunkWord, SizeClass, CHUNK_SIZE, CLASSES, CLASS_COUNT};
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
}

impl HeapMeta {
    #[inline]
    pub(crate) fn entry(&self, chunk: u64) -> (ChunkWord, u64) {
        let off = self.geometry.chunk_entry_offset(chunk);
        (
            ChunkWord::decode(self.region.read_u64(off)),
            self.region.read_u64(off + 8),
        )
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

    /// Finds the object that starts exactly at `offset`. Returns its kind, fingerprint and
    /// usable size; never reads outside the pool, whatever the table holds.
    #[inline]
    pub(crate) fn object_at(&self, offset: u64) -> Result<ObjectRef, PointerRejection> {
        let chunk = self
            .geometry
            .chunk_of(offset)
            .ok_or(PointerRejection::OutsideHeap)?;
        let (word, fingerprint) = self.entry(chunk);
        let (head, word, fingerprint) = match word.kind {
            chunk_kind::RUN | chunk_kind::SPAN => (chunk, word, fingerprint),
            chunk_kind::CONT => {
                let head = chunk
                    .checked_sub(word.count as u64)
                    .ok_or(PointerRejection::BadChunkEntry)?;
                let (hw, hf) = self.entry(head);
                if hw.kind != chunk_kind::RUN {
                    return Err(PointerRejection::BadChunkEntry);
                }
                (head, hw, hf)
            }
            _ => return Err(PointerRejection::InFreeSpace),
        };
        if word.kind == chunk_kind::SPAN {
            let count = word.count as u64;
            if count == 0 || count > self.geometry.chunk_count - head {
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
