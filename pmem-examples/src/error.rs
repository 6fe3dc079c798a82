//! The examples' error: the pool's, a container's of `pmem-collections`, or a structure found
//! inconsistent by its own walk.
//!
//! A structure's invariants are the structure's business, not the pool's: a queue whose list is
//! longer than its length is not corrupt pool metadata (the pool is fine; the program's data is
//! not). So the structures return their own error, [`Error`], which wraps [`pmem_core::Error`]
//! (`?` on a pool call converts) beside a typed [`Inconsistency`].

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
    /// A container of `pmem-collections` failed (other than by a pool error, which is
    /// [`Error::Pool`]).
    Collection(pmem_collections::Error),
}

/// `Result<T, pmem_examples::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An invariant of an example structure found broken while walking it. A cycle through
/// pointers shows as a walk longer than the structure's recorded size or depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Inconsistency {
    /// A queue has more nodes than its length (a cycle?).
    QueueTooLong,
    /// One of a queue's head and tail is null, the other not.
    QueueEndsDisagree {
        /// The head node's offset.
        head: u64,
        /// The tail node's offset.
        tail: u64,
    },
    /// A queue's list ends somewhere other than its tail.
    QueueTailMismatch {
        /// Where the list ends.
        last: u64,
        /// The recorded tail.
        tail: u64,
    },
    /// A queue's length differs from the nodes in its list.
    QueueLengthMismatch {
        /// The recorded length.
        len: u64,
        /// Nodes found.
        found: u64,
    },
}

impl fmt::Display for Inconsistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("structure is inconsistent: ")?;
        match *self {
            Inconsistency::QueueTooLong => f.write_str("more queue nodes than the length"),
            Inconsistency::QueueEndsDisagree { head, tail } => write!(
                f,
                "head {head:#x} and tail {tail:#x}: one is null, the other not"
            ),
            Inconsistency::QueueTailMismatch { last, tail } => {
                write!(f, "the list ends at {last:#x}, the tail is {tail:#x}")
            }
            Inconsistency::QueueLengthMismatch { len, found } => {
                write!(f, "length is {len} but the list has {found} nodes")
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
