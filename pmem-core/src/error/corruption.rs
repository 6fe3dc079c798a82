//! What open found inconsistent in a pool's metadata: which structure, where, and how.

use std::fmt;

/// The structure of a pool's metadata that is inconsistent, and what was found where. Carried by
/// [`Error::Corrupt`](crate::Error::Corrupt); its `Display` is the message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corruption {
    /// The header's geometry (its sizes and the offsets of the areas) is not one this library
    /// creates.
    Geometry,
    /// The type table has a valid checksum but is not well formed.
    TypeTable(TypeTableProblem),
    /// An entry of the chunk table, the heap's metadata.
    ChunkTable {
        /// The chunk whose entry is inconsistent.
        chunk: u64,
        /// Pool offset of that chunk's table entry.
        entry: u64,
        /// What is wrong with it.
        problem: ChunkProblem,
    },
    /// The geometry gives the heap more chunks than a heap may have.
    TooManyChunks {
        /// The chunk count.
        chunks: u64,
    },
    /// A log slot that recovery must read cannot be trusted.
    Log {
        /// The log slot (0 or 1).
        slot: u64,
        /// What is wrong in it.
        problem: LogCorruption,
    },
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::Geometry => {
                f.write_str("the header's geometry is not one this library creates")
            }
            Corruption::TypeTable(p) => write!(f, "type table: {p}"),
            Corruption::ChunkTable {
                chunk,
                entry,
                problem,
            } => write!(
                f,
                "heap metadata: chunk {chunk} (table entry at {entry:#x}): {problem}"
            ),
            Corruption::TooManyChunks { chunks } => write!(
                f,
                "heap metadata: {chunks} chunks are more than a heap may have"
            ),
            Corruption::Log { slot, problem } => write!(f, "log slot {slot}: {problem}"),
        }
    }
}

/// What is wrong with a type table whose checksum is valid (a crafted file, since a torn
/// table fails its checksum and is only rewritten).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TypeTableProblem {
    /// A pointer or inline slot of the type lies outside it, names a type the table does not
    /// hold, or repeats with a stride narrower than itself.
    SlotOutside {
        /// The type's recorded name.
        type_name: String,
        /// The slot's offset in the type.
        offset: u64,
    },
    /// The type contains itself inline, however indirectly: a walk would never end.
    InlineCycle {
        /// The type's recorded name.
        type_name: String,
    },
    /// The type's slots overlap, so that walking one value would visit more pointers and
    /// inline values than its bytes could hold.
    OverlappingSlots {
        /// The type's recorded name.
        type_name: String,
        /// Its size in bytes.
        size: u64,
        /// The values a walk of one value would visit (saturating at `u64::MAX`).
        steps: u64,
    },
    /// The table's first type is not the pool's root type.
    RootNotFirst,
}

impl fmt::Display for TypeTableProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypeTableProblem::SlotOutside { type_name, offset } => write!(
                f,
                "type `{type_name}` has a pointer slot at +{offset:#x} that does not fit it"
            ),
            TypeTableProblem::InlineCycle { type_name } => {
                write!(f, "type `{type_name}` contains itself inline")
            }
            TypeTableProblem::OverlappingSlots {
                type_name,
                size,
                steps,
            } => {
                write!(
                    f,
                    "type `{type_name}` ({size} bytes) claims pointer slots that overlap: walking one value would visit "
                )?;
                if *steps == u64::MAX {
                    f.write_str("over 2^64")?;
                } else {
                    write!(f, "{steps}")?;
                }
                f.write_str(" pointers and inline values, more than its bytes could hold")
            }
            TypeTableProblem::RootNotFirst => {
                f.write_str("its first type is not the pool's root type")
            }
        }
    }
}

/// What is wrong with one chunk table entry (in [`Corruption::ChunkTable`]). Every entry must
/// be exactly what the allocator writes for its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChunkProblem {
    /// The entry's first word has bits set outside its fields.
    StrayBits {
        /// The word.
        word: u64,
    },
    /// A free entry has fields set.
    FreeWithFields {
        /// The word.
        word: u64,
    },
    /// A run names a size class this library does not have.
    UnknownClass {
        /// The class index.
        class: u8,
    },
    /// A run's length is not its class's, or the run does not fit in the heap.
    RunLength {
        /// The run's class.
        class: u8,
        /// The length the entry gives, in chunks.
        chunks: u32,
        /// The length the class needs.
        needed: u32,
        /// Chunks left in the heap from this one.
        left: u64,
    },
    /// A chunk inside a run is not the continuation the run needs there.
    BrokenRun {
        /// The run's first chunk.
        run: u64,
        /// The chunk's position in the run.
        index: u64,
        /// The entry word found.
        found: u64,
    },
    /// The run's allocation bitmap marks slots past the last of its class.
    BitmapPastEnd {
        /// Pool offset of the bitmap word.
        bitmap_word: u64,
        /// Slots the class has.
        slots: u32,
        /// The word's bits.
        bits: u64,
    },
    /// A large object's length is zero or leaves the heap (or its class field is set).
    SpanLength {
        /// The length it gives, in chunks.
        chunks: u64,
        /// The class field.
        class: u8,
        /// Chunks in the heap.
        heap_chunks: u64,
    },
    /// Inside a large object, an entry describes another block: the extents overlap.
    InsideSpan {
        /// The large object's first chunk.
        span: u64,
        /// The entry word found.
        found: u64,
    },
    /// A continuation entry with no run before it.
    OrphanContinuation,
    /// An entry of a kind this library does not write.
    UnknownKind {
        /// The kind field.
        kind: u8,
    },
}

impl fmt::Display for ChunkProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ChunkProblem::StrayBits { word } => write!(f, "entry {word:#018x} has stray bits"),
            ChunkProblem::FreeWithFields { word } => {
                write!(f, "free entry {word:#018x} has fields set")
            }
            ChunkProblem::UnknownClass { class } => write!(f, "run of unknown size class {class}"),
            ChunkProblem::RunLength {
                class,
                chunks,
                needed,
                left,
            } => write!(
                f,
                "run of class {class} says {chunks} chunks, the class needs {needed}, {left} are left in the heap"
            ),
            ChunkProblem::BrokenRun { run, index, found } => write!(
                f,
                "expected continuation {index} of the run at chunk {run}, found entry {found:#018x}"
            ),
            ChunkProblem::BitmapPastEnd {
                bitmap_word,
                slots,
                bits,
            } => write!(
                f,
                "the run's bitmap word at {bitmap_word:#x} marks slots past the last of its {slots} ({bits:#018x})"
            ),
            ChunkProblem::SpanLength {
                chunks,
                class,
                heap_chunks,
            } => write!(
                f,
                "large object of {chunks} chunks (class field {class}) does not fit in the heap of {heap_chunks}"
            ),
            ChunkProblem::InsideSpan { span, found } => write!(
                f,
                "inside the large object at chunk {span}, entry {found:#018x} describes another block: overlapping extents"
            ),
            ChunkProblem::OrphanContinuation => f.write_str("continuation without a run before it"),
            ChunkProblem::UnknownKind { kind } => write!(f, "unknown chunk kind {kind}"),
        }
    }
}

/// What is wrong in a log slot (in [`Corruption::Log`]): something its writer never leaves,
/// whatever the crash. Offsets are pool offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogCorruption {
    /// The entry at `pos` is not valid, yet a valid entry of the same log at `evidence`,
    /// flagged as written after a fence that covered every earlier entry, proves it was durable.
    Damaged {
        /// The invalid entry.
        pos: u64,
        /// The entry that proves it was durable.
        evidence: u64,
    },
    /// The `EXTEND` entry at `pos` continues the log in a block the writer could not have
    /// reserved: outside the heap, not whole chunks, or overlapping an earlier block of the log.
    BadExtension {
        /// The entry.
        pos: u64,
        /// The block's offset.
        offset: u64,
        /// The block's length.
        len: u64,
    },
    /// The `EXTEND` entry at `pos` is not 16 bytes long.
    BadExtendLength {
        /// The entry.
        pos: u64,
        /// Its payload length.
        len: u64,
    },
    /// The chain of blocks is longer than the heap has chunks.
    ChainTooLong {
        /// The `EXTEND` entry that continues it.
        pos: u64,
    },
    /// The log ends without a commit record, yet a newer, uncommitted transaction follows it:
    /// recovery needs its heap operations.
    NoCommit {
        /// Where its valid entries stop, if an invalid entry is there (else at its end).
        stop: Option<u64>,
    },
    /// The log's first entry is damaged, and recovery needs the log: the newer transaction in
    /// the other slot has not committed.
    FirstEntryNeeded {
        /// The first entry.
        pos: u64,
        /// The slot of the newer transaction.
        newer_slot: u64,
    },
    /// The slot's first entry fails its checksum though the slot is not empty, and no
    /// transaction explains it.
    FirstEntryInvalid,
    /// A block the log continues in overlaps a block of the other slot's log.
    ExtensionOverlap {
        /// The block's offset.
        offset: u64,
        /// The block's length.
        len: u64,
        /// The other slot.
        other_slot: u64,
        /// The other block's offset.
        other_offset: u64,
        /// The other block's length.
        other_len: u64,
    },
    /// A redo entry or commit record holds a heap operation of an unknown kind.
    UnknownHeapOp {
        /// The entry.
        entry: u64,
    },
    /// A heap operation writes outside the heap metadata.
    HeapOpOutside {
        /// The entry.
        entry: u64,
        /// The operation's target.
        target: u64,
        /// Its length.
        len: u64,
    },
    /// A new-object range lies outside the heap.
    RangeOutside {
        /// The entry.
        entry: u64,
        /// The range's offset.
        offset: u64,
        /// Its length.
        len: u64,
    },
    /// An undo entry too short to name its target.
    UndoWithoutTarget {
        /// The entry.
        entry: u64,
    },
    /// An undo entry restores bytes outside the root and the heap.
    UndoOutside {
        /// The entry.
        entry: u64,
        /// The target.
        target: u64,
        /// Bytes it restores.
        len: u64,
    },
    /// A redo entry too short to name its target.
    RedoWithoutTarget {
        /// The entry.
        entry: u64,
    },
    /// A redo entry writes bytes outside the root and the heap.
    RedoOutside {
        /// The entry.
        entry: u64,
        /// The target.
        target: u64,
        /// Bytes it writes.
        len: u64,
    },
    /// A commit record shorter than the ranges it counts.
    ShortCommit {
        /// The entry.
        entry: u64,
    },
    /// A commit record whose length is not whole operation records.
    CommitNotWhole {
        /// The entry.
        entry: u64,
    },
}

impl fmt::Display for LogCorruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LogCorruption::Damaged { pos, evidence } => write!(
                f,
                "the entry at offset {pos:#x} is damaged: it fails its checksum, but the entry at {evidence:#x} was written after it had been made durable"
            ),
            LogCorruption::BadExtension { pos, offset, len } => write!(
                f,
                "the extension entry at offset {pos:#x} continues the log at {offset:#x}+{len:#x}, which is not whole chunks of the heap, or overlaps an earlier block of the log"
            ),
            LogCorruption::BadExtendLength { pos, len } => write!(
                f,
                "the extension entry at offset {pos:#x} has {len} payload bytes, not 16"
            ),
            LogCorruption::ChainTooLong { pos } => write!(
                f,
                "the extension entry at offset {pos:#x} continues a chain longer than the heap has chunks"
            ),
            LogCorruption::NoCommit { stop } => {
                f.write_str("the log stops at ")?;
                match stop {
                    Some(pos) => write!(f, "offset {pos:#x}")?,
                    None => f.write_str("its end")?,
                }
                f.write_str(" without a commit record, yet a newer transaction follows it and has not committed: the log is damaged and recovery needs its heap operations")
            }
            LogCorruption::FirstEntryNeeded { pos, newer_slot } => write!(
                f,
                "its first entry, at offset {pos:#x}, is damaged, and recovery needs the log: the newer transaction in log slot {newer_slot} has not committed"
            ),
            LogCorruption::FirstEntryInvalid => f.write_str("its first entry fails its checksum"),
            LogCorruption::ExtensionOverlap {
                offset,
                len,
                other_slot,
                other_offset,
                other_len,
            } => write!(
                f,
                "its extension block {offset:#x}+{len:#x} overlaps block {other_offset:#x}+{other_len:#x} of log slot {other_slot}"
            ),
            LogCorruption::UnknownHeapOp { entry } => {
                write!(f, "the entry at {entry:#x} holds an unknown heap operation")
            }
            LogCorruption::HeapOpOutside { entry, target, len } => write!(
                f,
                "the entry at {entry:#x} holds a heap operation on {target:#x}+{len:#x} outside the heap metadata"
            ),
            LogCorruption::RangeOutside { entry, offset, len } => write!(
                f,
                "the entry at {entry:#x} holds a new-object range {offset:#x}+{len:#x} outside the heap"
            ),
            LogCorruption::UndoWithoutTarget { entry } => {
                write!(f, "the undo entry at {entry:#x} has no target")
            }
            LogCorruption::UndoOutside { entry, target, len } => write!(
                f,
                "the undo entry at {entry:#x} is for {target:#x}+{len:#x}, outside the root and heap"
            ),
            LogCorruption::RedoWithoutTarget { entry } => {
                write!(f, "the redo entry at {entry:#x} has no target")
            }
            LogCorruption::RedoOutside { entry, target, len } => write!(
                f,
                "the redo entry at {entry:#x} writes {target:#x}+{len:#x}, outside the root and heap"
            ),
            LogCorruption::ShortCommit { entry } => {
                write!(f, "the commit record at {entry:#x} is short")
            }
            LogCorruption::CommitNotWhole { entry } => write!(
                f,
                "the commit record at {entry:#x} has a length that is not whole records"
            ),
        }
    }
}
