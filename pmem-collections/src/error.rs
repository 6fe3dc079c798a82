//! The collections' error: the pool's, a caller's argument out of range, or a structure found
//! inconsistent by its own walk.
//!
//! A container's invariants are the container's business, not the pool's: a vector whose
//! length exceeds its capacity is not corrupt pool metadata (the pool is fine; the data the
//! program stored is not). So the containers return their own [`Error`], which wraps
//! [`pmem_core::Error`] (`?` on a pool call converts) beside a typed [`Inconsistency`].

use std::fmt;

/// What an operation of a container can fail with.
///
/// ```
/// use pmem_core::{Persistent, Pool};
/// use pmem_collections::{Error, Inconsistency, PString, PVec};
///
/// #[derive(Persistent)]
/// #[repr(C)]
/// struct Root { v: PVec<u64>, s: PString }
///
/// let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
/// let (v, s) = pool.transaction(|tx| {
///     let v = PVec::from_slice(tx, &[1, 2])?;
///     let s = PString::from_str(tx, "é")?;
///     Ok::<_, Error>((v, s))
/// })?;
/// // A caller's mistake, where `std` would panic: the transaction rolls back.
/// let e = pool.transaction(|tx| v.insert(tx, 5, 0)).unwrap_err();
/// assert!(matches!(e, Error::IndexOutOfBounds { index: 5, len: 2 }));
/// // Bytes in the pool that no operation of the container writes: a typed inconsistency.
/// pool.transaction(|tx| s.as_bytes().truncate(tx, 1))?;
/// let e = pool.read(|r| s.as_str(r).map(str::len))?.unwrap_err();
/// assert!(matches!(e, Error::Inconsistent(Inconsistency::InvalidUtf8 { valid_up_to: 0 })));
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The pool refused the operation (a bad pointer, no space, an I/O failure...).
    Pool(pmem_core::Error),
    /// The container's own walk found its invariants broken: the pool holds bytes no
    /// operation of the container writes (a corrupted or hostile file).
    Inconsistent(Inconsistency),
    /// An index past the end, where `std` would panic (`insert` past `len`).
    IndexOutOfBounds {
        /// The index asked for.
        index: u64,
        /// The container's length.
        len: u64,
    },
    /// A string cut inside a character, where `String::truncate` would panic.
    NotCharBoundary {
        /// The byte index asked for.
        index: u64,
    },
    /// A container would grow past the most elements its layout can hold.
    CapacityOverflow {
        /// The capacity asked for, in elements (`u64::MAX` when even that overflowed).
        requested: u64,
        /// The most elements the container can hold.
        max: u64,
    },
}

/// `Result<T, pmem_collections::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An invariant of a container found broken. A cycle through pointers shows as a walk longer
/// than the container's recorded length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Inconsistency {
    /// A length larger than the capacity the container has allocated.
    LenExceedsCapacity {
        /// The recorded length.
        len: u64,
        /// The capacity found.
        capacity: u64,
    },
    /// A vector segment whose length is not the one its place in the segment table implies.
    SegmentLength {
        /// The segment's index in the table.
        segment: u64,
        /// The length its index implies.
        expected: u64,
        /// The length recorded.
        found: u64,
    },
    /// A vector segment that is allocated after one that is not.
    SegmentAfterGap {
        /// The segment's index in the table.
        segment: u64,
    },
    /// Bytes read as a string are not UTF-8.
    InvalidUtf8 {
        /// How many bytes from the start are valid UTF-8.
        valid_up_to: u64,
    },
    /// A queue has more blocks than its length allows (a cycle?).
    QueueTooLong,
    /// One of a queue's head and tail is null, the other not.
    QueueEndsDisagree {
        /// The head block's offset.
        head: u64,
        /// The tail block's offset.
        tail: u64,
    },
    /// A queue's list of blocks ends somewhere other than its tail.
    QueueTailMismatch {
        /// Where the list ends.
        last: u64,
        /// The recorded tail.
        tail: u64,
    },
    /// A queue block's range of live slots does not fit in the block.
    QueueBlockRange {
        /// The block's offset.
        block: u64,
        /// First live slot.
        start: u64,
        /// One past the last live slot.
        end: u64,
        /// Slots in the block.
        slots: u64,
    },
    /// A queue's length differs from the elements its blocks hold.
    QueueLengthMismatch {
        /// The recorded length.
        len: u64,
        /// Elements found.
        found: u64,
    },
    /// A hash map's slot count is not a power of two of at least 8.
    HashSlotsNotPowerOfTwo {
        /// The slot count.
        slots: u64,
    },
    /// A hash map entry that a lookup of its key would not find: its slot's recorded hash is
    /// not its key's, or an empty slot lies between its key's home slot and it.
    HashEntryMisplaced {
        /// The entry's slot.
        slot: u64,
    },
    /// A hash map key that appears in two slots.
    HashKeyTwice {
        /// The second slot holding it.
        slot: u64,
    },
    /// A hash map's recorded length differs from the entries its slots hold.
    HashLenMismatch {
        /// The recorded length.
        len: u64,
        /// Entries found (counted up to one past the length).
        found: u64,
    },
    /// A hash map's recorded count of removed-entry markers differs from the slots holding one.
    HashTombstoneMismatch {
        /// The recorded count.
        recorded: u64,
        /// Markers found.
        found: u64,
    },
    /// An insert probed every slot of a hash map without finding a free one: its recorded
    /// counts understate what its slots hold.
    HashTableFull {
        /// The slot count.
        slots: u64,
    },
    /// A B-tree node claims more keys than a node holds.
    BTreeNodeOverfull {
        /// The node's offset.
        node: u64,
        /// The keys it claims.
        keys: u64,
    },
    /// A B-tree is deeper than any tree that fits in a pool (a cycle?).
    BTreeTooDeep,
    /// A B-tree has more nodes than its entry count allows (a cycle?).
    BTreeTooManyNodes,
    /// An insert found the key it was adding in the leaf it chose, though a lookup had not.
    BTreeKeyPresent,
    /// A removal reached a leaf without the key a lookup had found.
    BTreeKeyMissing,
    /// Two B-tree nodes to merge hold more keys than one node can.
    BTreeMergeOverflow,
    /// A B-tree leaf with no keys.
    BTreeEmptyLeaf,
    /// A B-tree's keys are not strictly increasing in order.
    BTreeKeysOutOfOrder {
        /// The node where the order breaks.
        node: u64,
    },
    /// A B-tree's count differs from the entries it holds.
    BTreeCountMismatch {
        /// The recorded count.
        count: u64,
        /// Entries found.
        found: u64,
    },
    /// A B-tree node holds fewer keys than a node at its place must.
    BTreeUnderfull {
        /// The node's offset.
        node: u64,
        /// Its depth.
        depth: u64,
        /// Keys it holds.
        keys: u64,
    },
    /// A B-tree node has non-zero key or value slots past its length.
    BTreeStaleSlots {
        /// The node's offset.
        node: u64,
        /// Keys it holds.
        keys: u64,
    },
    /// A B-tree leaf (first child null) has a child.
    BTreeLeafWithChild {
        /// The leaf's offset.
        node: u64,
    },
    /// A B-tree's leaves are at different depths.
    BTreeUnbalanced {
        /// The depth of the first leaf.
        first: u64,
        /// The depth of another.
        other: u64,
    },
    /// A B-tree node has children past its key count plus one.
    BTreeChildrenPastEnd {
        /// The node's offset.
        node: u64,
        /// The children it should have.
        children: u64,
    },
    /// An inner B-tree node lacks a child.
    BTreeNullChild {
        /// The node's offset.
        node: u64,
        /// The child's index.
        index: u64,
    },
}

impl fmt::Display for Inconsistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("container is inconsistent: ")?;
        match *self {
            Inconsistency::LenExceedsCapacity { len, capacity } => {
                write!(f, "length {len} exceeds capacity {capacity}")
            }
            Inconsistency::SegmentLength {
                segment,
                expected,
                found,
            } => write!(
                f,
                "segment {segment} holds {found} elements, its place implies {expected}"
            ),
            Inconsistency::SegmentAfterGap { segment } => {
                write!(f, "segment {segment} is allocated after an unallocated one")
            }
            Inconsistency::InvalidUtf8 { valid_up_to } => {
                write!(f, "string is not UTF-8 after its first {valid_up_to} bytes")
            }
            Inconsistency::QueueTooLong => f.write_str("more queue blocks than the length allows"),
            Inconsistency::QueueEndsDisagree { head, tail } => write!(
                f,
                "queue head {head:#x} and tail {tail:#x}: one is null, the other not"
            ),
            Inconsistency::QueueTailMismatch { last, tail } => {
                write!(
                    f,
                    "the queue's blocks end at {last:#x}, the tail is {tail:#x}"
                )
            }
            Inconsistency::QueueBlockRange {
                block,
                start,
                end,
                slots,
            } => write!(
                f,
                "queue block {block:#x} has live slots {start}..{end} of {slots}"
            ),
            Inconsistency::QueueLengthMismatch { len, found } => {
                write!(f, "queue length is {len} but its blocks hold {found}")
            }
            Inconsistency::HashSlotsNotPowerOfTwo { slots } => {
                write!(
                    f,
                    "hash map has {slots} slots, not a power of two of at least 8"
                )
            }
            Inconsistency::HashEntryMisplaced { slot } => {
                write!(
                    f,
                    "hash map slot {slot} holds an entry a lookup of its key would miss"
                )
            }
            Inconsistency::HashKeyTwice { slot } => {
                write!(f, "hash map slot {slot} holds a key an earlier slot holds")
            }
            Inconsistency::HashLenMismatch { len, found } => {
                write!(
                    f,
                    "hash map length is {len} but its slots hold {found} entries"
                )
            }
            Inconsistency::HashTombstoneMismatch { recorded, found } => write!(
                f,
                "hash map records {recorded} removed-entry markers but its slots hold {found}"
            ),
            Inconsistency::HashTableFull { slots } => write!(
                f,
                "all {slots} slots of the hash map are taken, though its counts say otherwise"
            ),
            Inconsistency::BTreeNodeOverfull { node, keys } => {
                write!(f, "B-tree node {node:#x} claims {keys} keys")
            }
            Inconsistency::BTreeTooDeep => f.write_str("B-tree deeper than possible (cycle?)"),
            Inconsistency::BTreeTooManyNodes => {
                f.write_str("more B-tree nodes than its entries allow (cycle?)")
            }
            Inconsistency::BTreeKeyPresent => {
                f.write_str("B-tree insert met the key a lookup had not found")
            }
            Inconsistency::BTreeKeyMissing => {
                f.write_str("B-tree removal missed the key a lookup had found")
            }
            Inconsistency::BTreeMergeOverflow => {
                f.write_str("merging B-tree nodes that do not fit in one")
            }
            Inconsistency::BTreeEmptyLeaf => f.write_str("empty B-tree leaf"),
            Inconsistency::BTreeKeysOutOfOrder { node } => {
                write!(f, "B-tree keys out of order at node {node:#x}")
            }
            Inconsistency::BTreeCountMismatch { count, found } => {
                write!(
                    f,
                    "B-tree count is {count} but the tree holds {found} entries"
                )
            }
            Inconsistency::BTreeUnderfull { node, depth, keys } => {
                write!(
                    f,
                    "B-tree node {node:#x} at depth {depth} has only {keys} keys"
                )
            }
            Inconsistency::BTreeStaleSlots { node, keys } => {
                write!(
                    f,
                    "B-tree node {node:#x} has non-zero slots past its {keys} keys"
                )
            }
            Inconsistency::BTreeLeafWithChild { node } => {
                write!(f, "B-tree leaf {node:#x} has a child after a null one")
            }
            Inconsistency::BTreeUnbalanced { first, other } => {
                write!(f, "B-tree leaves at depths {first} and {other}: unbalanced")
            }
            Inconsistency::BTreeChildrenPastEnd { node, children } => {
                write!(f, "B-tree node {node:#x} has children past its {children}")
            }
            Inconsistency::BTreeNullChild { node, index } => {
                write!(f, "B-tree node {node:#x} has a null child {index}")
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Pool(e) => e.fmt(f),
            Error::Inconsistent(what) => what.fmt(f),
            Error::IndexOutOfBounds { index, len } => {
                write!(f, "index {index} is out of bounds for length {len}")
            }
            Error::NotCharBoundary { index } => {
                write!(f, "byte index {index} is inside a character")
            }
            Error::CapacityOverflow { requested, max } => write!(
                f,
                "capacity of {requested} elements exceeds the container's limit of {max}"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // `Display` already is the pool error's message: its source is the next cause.
            Error::Pool(e) => e.source(),
            _ => None,
        }
    }
}

impl From<pmem_core::Error> for Error {
    fn from(e: pmem_core::Error) -> Error {
        Error::Pool(e)
    }
}

impl From<Inconsistency> for Error {
    fn from(what: Inconsistency) -> Error {
        Error::Inconsistent(what)
    }
}
