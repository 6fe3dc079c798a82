//! What a run can fail with: each store's own error, the command line, or a result that does
//! not verify.

use std::fmt;

/// An error of one benchmark run.
#[derive(Debug)]
pub enum BenchError {
    /// The command line or an environment knob is not understood.
    Usage(UsageError),
    /// A file or directory operation.
    Io(std::io::Error),
    /// The pmem pool.
    Pmem(pmem_core::Error),
    /// A pmem collection.
    Collections(pmem_collections::Error),
    /// redb (every redb error converts into `redb::Error`).
    Redb(redb::Error),
    /// LMDB, through heed.
    Lmdb(heed::Error),
    /// SQLite, through rusqlite.
    Sqlite(rusqlite::Error),
    /// A store read back something other than what the workload wrote.
    Verify {
        /// What was checked.
        what: &'static str,
        /// The value the workload implies.
        expected: u64,
        /// The value read back.
        found: u64,
    },
}

/// `Result<T, BenchError>`.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Usage(e) => write!(f, "{e}"),
            BenchError::Io(e) => write!(f, "i/o: {e}"),
            BenchError::Pmem(e) => write!(f, "pmem: {e}"),
            BenchError::Collections(e) => write!(f, "pmem-collections: {e}"),
            BenchError::Redb(e) => write!(f, "redb: {e}"),
            BenchError::Lmdb(e) => write!(f, "lmdb: {e}"),
            BenchError::Sqlite(e) => write!(f, "sqlite: {e}"),
            BenchError::Verify {
                what,
                expected,
                found,
            } => write!(
                f,
                "verification failed: {what} is {found}, expected {expected}"
            ),
        }
    }
}

impl std::error::Error for BenchError {}

/// A command line or environment knob that is not understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageError {
    /// Fewer than the two positional arguments.
    MissingArgument(&'static str),
    /// A workload name not among F1, F2, F3, F4, F1-shm.
    UnknownWorkload(String),
    /// A system name not among those `--help` lists.
    UnknownSystem(String),
    /// An option the program does not have.
    UnknownOption(String),
    /// A count that is not a non-negative integer.
    BadNumber {
        /// The option or environment variable.
        name: String,
        /// What it was given.
        value: String,
    },
    /// A combination with nothing to run (pmem-btree has no counter workloads).
    Unsupported {
        /// The workload asked for.
        workload: &'static str,
        /// The system asked for.
        system: &'static str,
    },
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::MissingArgument(what) => write!(f, "missing argument: {what}"),
            UsageError::UnknownWorkload(w) => write!(f, "unknown workload {w:?}"),
            UsageError::UnknownSystem(s) => write!(f, "unknown system {s:?}"),
            UsageError::UnknownOption(o) => write!(f, "unknown option {o:?}"),
            UsageError::BadNumber { name, value } => {
                write!(f, "{name}={value:?}: expected a non-negative integer")
            }
            UsageError::Unsupported { workload, system } => {
                write!(f, "{system} runs only the index workloads, not {workload}")
            }
        }
    }
}

impl From<UsageError> for BenchError {
    fn from(e: UsageError) -> Self {
        BenchError::Usage(e)
    }
}

impl From<std::io::Error> for BenchError {
    fn from(e: std::io::Error) -> Self {
        BenchError::Io(e)
    }
}

impl From<pmem_core::Error> for BenchError {
    fn from(e: pmem_core::Error) -> Self {
        BenchError::Pmem(e)
    }
}

impl From<pmem_collections::Error> for BenchError {
    fn from(e: pmem_collections::Error) -> Self {
        BenchError::Collections(e)
    }
}

impl From<heed::Error> for BenchError {
    fn from(e: heed::Error) -> Self {
        BenchError::Lmdb(e)
    }
}

impl From<rusqlite::Error> for BenchError {
    fn from(e: rusqlite::Error) -> Self {
        BenchError::Sqlite(e)
    }
}

/// redb has one error type per operation, each convertible into `redb::Error`.
macro_rules! from_redb {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for BenchError {
            fn from(e: $t) -> Self {
                BenchError::Redb(e.into())
            }
        }
    )*};
}

from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError,
);

/// Checks that `found` is `expected`, naming `what` otherwise.
pub fn verify(what: &'static str, expected: u64, found: u64) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(BenchError::Verify {
            what,
            expected,
            found,
        })
    }
}
