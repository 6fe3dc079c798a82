//! The problems a deep check reports, typed so a program can tell them apart.

use std::fmt;

use crate::error::{Corruption, PointerRejection};

/// One inconsistency found by a deep check ([`CheckReport::problems`](super::CheckReport)).
/// `Display` names what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// A header copy fails its checksum; opening the pool repairs it from the other copy.
    HeaderCopy {
        /// The copy: 0 for A, 1 for B.
        copy: u8,
        /// Its pool offset.
        offset: u64,
    },
    /// What opening refuses a pool for: a malformed type table, an inconsistent chunk table
    /// entry, a damaged log slot.
    Corrupt(Corruption),
    /// The type table is missing or fails its checksum: pointers cannot be followed.
    TypeTableUnreadable,
    /// A chunk inside a large object has an entry describing another block.
    SpanOverlap {
        /// The chunk.
        chunk: u64,
        /// The large object's first chunk.
        span: u64,
    },
    /// A run's bitmap marks slots past its last one.
    BitmapPastEnd {
        /// The run's first chunk.
        run: u64,
    },
    /// Two objects overlap.
    ObjectsOverlap {
        /// The first object's offset.
        first: u64,
        /// The second object's offset.
        second: u64,
    },
    /// The heap's statistics disagree with a recount of its metadata.
    StatsMismatch {
        /// Live objects the statistics give.
        stats_objects: u64,
        /// Allocated bytes the statistics give.
        stats_bytes: u64,
        /// Live objects the metadata holds.
        objects: u64,
        /// Allocated bytes the metadata holds.
        bytes: u64,
    },
    /// A pointer reachable from the root does not lead to a valid object of its type.
    Pointer {
        /// Pool offset of the pointer.
        at: u64,
        /// Offset of the object holding it (the root's offset for the root).
        owner: u64,
        /// The holding object's type, `None` for the root.
        owner_type: Option<String>,
        /// Where the pointer points.
        target: u64,
        /// What is wrong there.
        problem: PointerProblem,
    },
}

/// What is wrong with a pointer found by the deep check ([`Problem::Pointer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PointerProblem {
    /// The target is not the start of any object.
    Dangling(PointerRejection),
    /// The target is an object slot that is not allocated.
    NotAllocated,
    /// The object there has another type.
    WrongType {
        /// The type the pointer should point at.
        expected: String,
    },
    /// The object is smaller than the pointer's type (or slice) needs.
    TooSmall {
        /// Bytes needed.
        needed: u64,
        /// The object's size.
        size: u64,
    },
    /// The heap walk found no object at the target.
    NotInHeapWalk,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::HeaderCopy { copy, offset } => write!(
                f,
                "header copy {} (offset {offset}) fails its checksum; opening the pool repairs it from the other copy",
                if *copy == 0 { "A" } else { "B" }
            ),
            Problem::Corrupt(Corruption::TypeTable(p)) => {
                write!(f, "the type table is inconsistent: {p}")
            }
            Problem::Corrupt(Corruption::ChunkTable {
                chunk,
                entry,
                problem,
            }) => write!(
                f,
                "chunk table: chunk {chunk} (table entry at {entry:#x}): {problem}"
            ),
            Problem::Corrupt(c) => c.fmt(f),
            Problem::TypeTableUnreadable => f.write_str(
                "the type table is missing or fails its checksum: pointers cannot be followed",
            ),
            Problem::SpanOverlap { chunk, span } => write!(
                f,
                "chunk {chunk} lies inside the large object at chunk {span} but its table entry describes another block: overlapping objects"
            ),
            Problem::BitmapPastEnd { run } => {
                write!(f, "run at chunk {run}: bitmap marks slots past its last one")
            }
            Problem::ObjectsOverlap { first, second } => {
                write!(f, "objects at {first:#x} and {second:#x} overlap")
            }
            Problem::StatsMismatch {
                stats_objects,
                stats_bytes,
                objects,
                bytes,
            } => write!(
                f,
                "heap statistics say {stats_objects} objects / {stats_bytes} bytes, the metadata holds {objects} / {bytes}"
            ),
            Problem::Pointer {
                at,
                owner,
                owner_type,
                target,
                problem,
            } => {
                write!(f, "the pointer at {at:#x} (+{:#x} in ", at.wrapping_sub(*owner))?;
                match owner_type {
                    None => f.write_str("the root")?,
                    Some(name) => write!(f, "the {name} at {owner:#x}")?,
                }
                f.write_str(") ")?;
                match problem {
                    PointerProblem::Dangling(reason) => {
                        write!(f, "is dangling: {target:#x} {reason}")
                    }
                    PointerProblem::NotAllocated => {
                        write!(f, "points at {target:#x}, which is not allocated")
                    }
                    PointerProblem::WrongType { expected } => write!(
                        f,
                        "should point at a {expected} but {target:#x} holds another type"
                    ),
                    PointerProblem::TooSmall { needed, size } => write!(
                        f,
                        "needs {needed} bytes at {target:#x}, the object has {size}"
                    ),
                    PointerProblem::NotInHeapWalk => write!(
                        f,
                        "points at {target:#x}, which the heap walk did not find"
                    ),
                }
            }
        }
    }
}
