//! The examples' error: the pool's, a structure found inconsistent by its own walk, or a
//! container's of pmem-collections.
//!
//! A structure's invariants are the structure's business, not the pool's: a B-tree deeper than
//! its bound is not corrupt pool metadata (the pool is fine; the program's data is not). So the
//! structures return their own error, [`Error`], which wraps [`pmem_core::Error`] (`?` on a pool
//! call converts) beside a typed [`Inconsistency`].

use std::fmt;

use pmem_core::{Persistent, Pool, Tx};

/// What an operation of an example structure can fail with.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The pool refused the operation.
    Pool(pmem_core::Error),
    /// The structure's own walk found its invariants broken.
    Inconsistent(Inconsistency),
    /// A pmem-collections container the structure is built on failed (other than with the
    /// pool's error, which comes as [`Error::Pool`]).
    Collection(pmem_collections::Error),
}

/// `Result<T, pmem_examples::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An invariant of an example structure found broken while walking it. A cycle through
/// pointers shows as a walk longer than the structure's recorded size or depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Inconsistency {
    /// A B-tree node claims more keys than a node holds.
    BTreeNodeOverfull {
        /// The node's offset.
        node: u64,
        /// The keys it claims.
        keys: u64,
    },
    /// A B-tree is deeper than its entry count allows (a cycle?).
    BTreeTooDeep,
    /// A B-tree has more nodes than entries (a cycle?).
    BTreeTooManyNodes,
    /// An insert found the key it was adding already in the leaf it chose.
    BTreeKeyPresent,
    /// A removal reached a leaf without the key it was removing.
    BTreeKeyMissing,
    /// Two B-tree nodes to merge hold more keys than one node can.
    BTreeMergeOverflow,
    /// A B-tree leaf with no keys.
    BTreeEmptyLeaf,
    /// A hash chain is longer than the map's entry count (a cycle?).
    HashChainTooLong,
    /// The hash chains hold more entries than the map's count.
    HashMapOverCount,
    /// A B-tree's keys are not strictly increasing in order.
    BTreeKeysOutOfOrder {
        /// The key found first.
        first: u64,
        /// The key after it.
        then: u64,
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
    /// A B-tree leaf has a child.
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
    /// A hash map's bucket block count is not a power of two.
    HashBlocksNotPowerOfTwo {
        /// The count.
        blocks: u64,
    },
    /// A hash map entry is in a bucket its key does not hash to.
    HashKeyMisplaced {
        /// The key.
        key: u64,
    },
    /// A hash map key appears twice.
    HashKeyTwice {
        /// The key.
        key: u64,
    },
    /// A hash map's count differs from the entries its chains hold.
    HashCountMismatch {
        /// The recorded count.
        count: u64,
        /// Entries found.
        found: u64,
    },
}

impl fmt::Display for Inconsistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("structure is inconsistent: ")?;
        match *self {
            Inconsistency::BTreeNodeOverfull { node, keys } => {
                write!(f, "B-tree node {node:#x} claims {keys} keys")
            }
            Inconsistency::BTreeTooDeep => f.write_str("B-tree deeper than possible (cycle?)"),
            Inconsistency::BTreeTooManyNodes => {
                f.write_str("more B-tree nodes than entries (cycle?)")
            }
            Inconsistency::BTreeKeyPresent => f.write_str("inserting a key that is already there"),
            Inconsistency::BTreeKeyMissing => f.write_str("removing a key that is not there"),
            Inconsistency::BTreeMergeOverflow => {
                f.write_str("merging B-tree nodes that do not fit in one")
            }
            Inconsistency::BTreeEmptyLeaf => f.write_str("empty B-tree leaf"),
            Inconsistency::HashChainTooLong => {
                f.write_str("a hash chain is longer than the map (cycle?)")
            }
            Inconsistency::HashMapOverCount => {
                f.write_str("more entries in the chains than the count")
            }
            Inconsistency::BTreeKeysOutOfOrder { first, then } => {
                write!(f, "keys out of order: {first} then {then}")
            }
            Inconsistency::BTreeCountMismatch { count, found } => {
                write!(f, "count is {count} but the tree holds {found} entries")
            }
            Inconsistency::BTreeUnderfull { node, depth, keys } => {
                write!(f, "node {node:#x} at depth {depth} has only {keys} keys")
            }
            Inconsistency::BTreeStaleSlots { node, keys } => {
                write!(f, "node {node:#x} has non-zero slots past its {keys} keys")
            }
            Inconsistency::BTreeLeafWithChild { node } => {
                write!(f, "leaf {node:#x} has a child after a null one")
            }
            Inconsistency::BTreeUnbalanced { first, other } => {
                write!(f, "leaves at depths {first} and {other}: unbalanced")
            }
            Inconsistency::BTreeChildrenPastEnd { node, children } => {
                write!(f, "node {node:#x} has children past its {children}")
            }
            Inconsistency::BTreeNullChild { node, index } => {
                write!(f, "node {node:#x} has a null child {index}")
            }
            Inconsistency::HashBlocksNotPowerOfTwo { blocks } => {
                write!(f, "{blocks} bucket blocks: not a power of two")
            }
            Inconsistency::HashKeyMisplaced { key } => {
                write!(f, "key {key} is in the wrong bucket")
            }
            Inconsistency::HashKeyTwice { key } => write!(f, "key {key} appears twice"),
            Inconsistency::HashCountMismatch { count, found } => {
                write!(f, "count is {count} but the chains hold {found} entries")
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Pool(e) => e.fmt(f),
            Error::Inconsistent(what) => what.fmt(f),
            Error::Collection(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Pool(e) => e.source(),
            Error::Inconsistent(_) => None,
            Error::Collection(e) => e.source(),
        }
    }
}

impl From<pmem_core::Error> for Error {
    fn from(e: pmem_core::Error) -> Error {
        Error::Pool(e)
    }
}

impl From<pmem_collections::Error> for Error {
    fn from(e: pmem_collections::Error) -> Error {
        match e {
            pmem_collections::Error::Pool(e) => Error::Pool(e),
            other => Error::Collection(other),
        }
    }
}

impl From<Inconsistency> for Error {
    fn from(what: Inconsistency) -> Error {
        Error::Inconsistent(what)
    }
}

/// Runs `f` in a transaction of `pool`: [`Pool::transaction`] with this crate's error type, so
/// closures need not name it. An [`Error::Inconsistent`] aborts the transaction and comes back
/// as it is.
pub fn transaction<R: Persistent, T>(
    pool: &Pool<R>,
    f: impl FnOnce(&mut Tx<'_, R>) -> Result<T>,
) -> Result<T> {
    pool.transaction(f)
}
