//! The examples' error: the pool's, or a container's of `pmem-collections`.
//!
//! A container's invariants are the container's business, not the pool's: a queue whose list is
//! longer than its length is not corrupt pool metadata (the pool is fine; the program's data is
//! not). So a container's error keeps its own type beside [`pmem_core::Error`] (`?` on a pool
//! call converts).

use std::fmt;

use pmem_core::{Persistent, Pool, Tx};

/// What an operation of an example program can fail with.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The pool refused the operation.
    Pool(pmem_core::Error),
    /// A container of `pmem-collections` failed (other than by a pool error, which is
    /// [`Error::Pool`]).
    Collection(pmem_collections::Error),
}

/// `Result<T, pmem_examples::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Pool(e) => e.fmt(f),
            Error::Collection(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Pool(e) => e.source(),
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

/// Runs `f` in a transaction of `pool`: [`Pool::transaction`] with this crate's error type, so
/// closures need not name it. A container's error aborts the transaction and comes back as it
/// is.
pub fn transaction<R: Persistent, T>(
    pool: &Pool<R>,
    f: impl FnOnce(&mut Tx<'_, R>) -> Result<T>,
) -> Result<T> {
    pool.transaction(f)
}
