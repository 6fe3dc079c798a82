//! The crate's error: one type, [`Error`], whose variants carry typed detail a program can
//! match on.
//!
//! # Shape
//!
//! Every fallible call returns [`Error`]. Each failure is its own variant with structured
//! fields (which pool, which sizes), and where one kind of failure has many causes the variant
//! carries a `#[non_exhaustive]` detail enum that names the cause and where it was found:
//!
//! | variant | detail | cause named |
//! |---|---|---|
//! | [`Error::Corrupt`] | [`Corruption`] (with [`ChunkProblem`], [`LogCorruption`], [`TypeTableProblem`]) | the structure (geometry, type table, chunk table entry, log slot and entry) and its offset |
//! | [`Error::InvalidPointer`] | [`PointerRejection`] | which check the pointer failed |
//! | [`Error::InvalidArgument`] | [`InvalidArgument`] | which argument, and the limit it broke |
//!
//! `Display` gives the message (naming the pool and the cause); the detail enums' `Display`
//! gives the cause alone. The cause is never only a string: where a variant holds text (a type
//! name, a layout name), it is what the program or the pool supplied.
//!
//! redb splits its errors by operation (`DatabaseError` from open, `TransactionError` from
//! begin, `CommitError` from commit, `StorageError` from any read or write), each convertible
//! into a catch-all. pmem keeps one type instead, because its operations' failures overlap
//! almost entirely and the closure-based transaction API mixes them: a transaction closure
//! calls `get` (a pointer can be invalid, the file corrupt), `alloc` (out of space) and nested
//! transactions, and commit can fail on I/O, so a per-operation type would make every closure
//! convert between types or return the catch-all anyway. One type keeps `?` working everywhere
//! without conversions; matching stays precise because each variant, not the type, names the
//! kind. Roughly: opening fails with the file, header and type variants and
//! [`Error::Corrupt`]; reading through a pointer with [`Error::InvalidPointer`]; a transaction
//! with those, [`Error::OutOfSpace`] and the commit variants; any call with
//! [`Error::InvalidArgument`]. The deep check reports what it finds as
//! [`check::Problem`](crate::check::Problem)s, which reuse [`Corruption`] for what opening would
//! refuse.
//!
//! `Error` is `Send + Sync + 'static`, and [`source`](std::error::Error::source) gives the
//! operating system's error for the variants that wrap one. It stays at 96 bytes (a `Result`
//! is returned on every hot path): the detail enums hold integers and `&'static str` type
//! names, and only cold variants (type mismatches, layout names) own strings.

mod argument;
mod corruption;
mod difference;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub use argument::{InvalidArgument, PointerRejection};
pub use corruption::{ChunkProblem, Corruption, LogCorruption, TypeTableProblem};
pub use difference::{FieldDescription, TypeDifference};

/// Where a pool lives, for error messages: a file, or memory (the simulated domain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A pool file.
    File(PathBuf),
    /// A pool in memory, such as a crash image of the simulated persistence domain.
    Memory,
}

impl Location {
    pub(crate) fn file(path: &Path) -> Self {
        Location::File(path.to_path_buf())
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(p) => write!(f, "pool file {}", p.display()),
            Location::Memory => f.write_str("in-memory pool"),
        }
    }
}

/// Everything that can go wrong with a pool. Messages name the pool and the cause.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The pool file does not exist.
    NotFound {
        /// The pool.
        location: Location,
    },
    /// `create` found a file already at that path.
    AlreadyExists {
        /// The pool.
        location: Location,
    },
    /// The process may not open or create the file.
    PermissionDenied {
        /// The pool.
        location: Location,
    },
    /// `create` was asked for a pool smaller than the minimum its root type needs.
    TooSmall {
        /// The pool.
        location: Location,
        /// The size asked for.
        size: u64,
        /// The smallest pool this root type allows.
        minimum: u64,
    },
    /// The file is too short to hold the two copies of a pool header: it is not a pool (or
    /// all but its start was cut off).
    FileTooShort {
        /// The file.
        location: Location,
        /// The file's size.
        size: u64,
        /// Bytes the header copies take.
        needed: u64,
    },
    /// The file is shorter than its header says the pool is.
    Truncated {
        /// The pool.
        location: Location,
        /// The pool size the header records.
        expected: u64,
        /// The file's size.
        actual: u64,
    },
    /// The file does not start with the pool magic: it is not a pool file.
    BadMagic {
        /// The file.
        location: Location,
    },
    /// Both copies of the pool header fail their checksum.
    HeaderCorrupt {
        /// The pool.
        location: Location,
    },
    /// The pool was written by an incompatible version of the format.
    UnsupportedVersion {
        /// The pool.
        location: Location,
        /// The format's major version in the pool.
        major: u16,
        /// The format's minor version in the pool.
        minor: u16,
        /// The major version this library reads.
        supported_major: u16,
    },
    /// The pool was created with a different layout name.
    LayoutNameMismatch {
        /// The pool.
        location: Location,
        /// The name the program asked for.
        expected: String,
        /// The name in the pool.
        found: String,
    },
    /// The pool uses format features this library does not know: `incompat` ones prevent
    /// reading it, `ro_compat` ones prevent writing it (and this library always writes: opening
    /// bumps the run id and may recover).
    UnsupportedFeatures {
        /// The pool.
        location: Location,
        /// Unknown incompatible feature bits.
        incompat: u64,
        /// Unknown read-only-compatible feature bits.
        ro_compat: u64,
    },
    /// The pool's root type differs from the one it is opened with.
    RootTypeMismatch {
        /// The pool.
        location: Location,
        /// The type the program opened the pool with.
        expected: String,
        /// The type recorded in the pool.
        found: String,
        /// The first difference (boxed: it is large, and rare).
        difference: Box<TypeDifference>,
    },
    /// A type reachable from the root (through pointers or fields) differs from the type the
    /// pool recorded at that place: the program would read the pool's objects of that type as
    /// something else, and write ones an older program cannot read.
    TypeMismatch {
        /// The pool.
        location: Location,
        /// The type's name in the program.
        type_name: String,
        /// The first difference (boxed: it is large, and rare).
        difference: Box<TypeDifference>,
    },
    /// Another handle, in this process or another, has the pool open.
    PoolInUse {
        /// The pool.
        location: Location,
    },
    /// The pool's metadata is inconsistent: open refuses it rather than trust it.
    Corrupt {
        /// The pool.
        location: Location,
        /// Which structure is inconsistent, where, and how.
        problem: Corruption,
    },
    /// A persistent pointer does not point at a valid object of the expected type.
    InvalidPointer {
        /// The pointer's offset.
        offset: u64,
        /// Which check it failed.
        reason: PointerRejection,
    },
    /// The heap has no free block large enough.
    OutOfSpace {
        /// Bytes asked for.
        requested: u64,
        /// Bytes of the largest free block of chunks objects may take (chunks kept for logs
        /// aside); for an object small enough to share a run, the largest such object a new
        /// run in that block could hold.
        available: u64,
    },
    /// A transaction was started on a pool that already has one open on this thread; nest with
    /// [`Tx::transaction`](crate::Tx::transaction) instead.
    NestedTransaction,
    /// This thread holds a read guard on the pool (from [`Pool::reader`](crate::Pool::reader) or
    /// inside [`Pool::read`](crate::Pool::read)), so a transaction would wait for it forever.
    ReadGuardHeld,
    /// A read ([`Pool::read`](crate::Pool::read), [`Pool::reader`](crate::Pool::reader)) was
    /// started on a pool that has a transaction open on this thread: the transaction's next
    /// write would change memory under the read's references. Read through the
    /// [`Tx`](crate::Tx) instead.
    ReadInTransaction,
    /// The transaction was rolled back by [`Tx::abort`](crate::Tx::abort), or because a nested
    /// transaction failed while the closure returned `Ok`; the cause says which. (Any other error
    /// the closure returns comes back as it is.)
    Aborted {
        /// What aborted it.
        cause: AbortCause,
    },
    /// An argument was out of range.
    InvalidArgument {
        /// The pool.
        location: Location,
        /// Which argument, and why.
        argument: InvalidArgument,
    },
    /// Writing a commit back to the media failed (`msync` reported an error, or a
    /// [`FaultPlan`](crate::FaultPlan) failed the fence) after its commit record was written:
    /// the transaction's changes are in memory, but whether they survive is unknown until the
    /// pool is reopened and recovery decides from what the media holds (wholly there or wholly
    /// absent). Memory holds the transaction's writes but not its allocations and frees (heap
    /// metadata changed in memory could reach the media without the commit record; recovery
    /// applies them if the record is durable). Neither its commit nor its abort hooks run, and
    /// the pool refuses further writes ([`Error::Poisoned`]). A single-step [`Pool::alloc`](crate::Pool::alloc) or
    /// [`Pool::free`](crate::Pool::free) whose fence fails returns it too.
    CommitOutcomeUnknown {
        /// The pool.
        location: Location,
        /// The operating system's error.
        source: io::Error,
    },
    /// An earlier write-back to this pool failed, so what its media holds is unknown: the pool
    /// refuses writes until it is dropped and reopened (reads still see memory).
    Poisoned {
        /// The pool.
        location: Location,
    },
    /// An operating-system call failed. From a create or open:
    /// a write-back it needed failed, and the pool is not returned; the file is left for the
    /// next open, whose recovery is idempotent (a failed create leaves no file).
    ///
    /// From an allocation (an `alloc`, or a transaction whose log outgrows its slot), with
    /// `source` `ENOSPC` when the file system is full: the disk blocks of the heap chunks it
    /// needed could not be reserved (`posix_fallocate`; see
    /// [`PoolBuilder::reserve_all`](crate::PoolBuilder::reserve_all)). Nothing was written
    /// and the pool is not poisoned: the transaction aborts if the closure passes the error on,
    /// nothing committed is lost, and allocations succeed again once there is room. Create and
    /// open fail the same way when they cannot reserve what they write.
    ///
    /// ```
    /// # use pmem_core::Error;
    /// fn disk_full(e: &Error) -> bool {
    ///     matches!(e, Error::Io { source, .. } if source.raw_os_error() == Some(libc::ENOSPC))
    /// }
    /// # let _ = disk_full;
    /// ```
    Io {
        /// The pool.
        location: Location,
        /// What was being done.
        operation: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn io(location: &Location, operation: &'static str, source: io::Error) -> Self {
        match source.kind() {
            io::ErrorKind::NotFound => Error::NotFound {
                location: location.clone(),
            },
            io::ErrorKind::AlreadyExists => Error::AlreadyExists {
                location: location.clone(),
            },
            io::ErrorKind::PermissionDenied => Error::PermissionDenied {
                location: location.clone(),
            },
            _ => Error::Io {
                location: location.clone(),
                operation,
                source,
            },
        }
    }

    #[cold]
    pub(crate) fn corrupt(location: &Location, problem: Corruption) -> Self {
        Error::Corrupt {
            location: location.clone(),
            problem,
        }
    }

    #[cold]
    pub(crate) fn invalid_argument(location: &Location, argument: InvalidArgument) -> Self {
        Error::InvalidArgument {
            location: location.clone(),
            argument,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound { location } => write!(f, "{location}: no such file"),
            Error::AlreadyExists { location } => write!(f, "{location}: already exists"),
            Error::PermissionDenied { location } => write!(f, "{location}: permission denied"),
            Error::TooSmall { location, size, minimum } => {
                write!(f, "{location}: size {size} bytes is below the minimum pool size of {minimum} bytes")
            }
            Error::FileTooShort { location, size, needed } => write!(
                f,
                "{location}: not a pmem pool: the file has {size} bytes, too short for the pool header ({needed} bytes)"
            ),
            Error::Truncated { location, expected, actual } => write!(
                f,
                "{location}: truncated: the header says the pool is {expected} bytes but the file has {actual}"
            ),
            Error::BadMagic { location } => {
                write!(f, "{location}: not a pmem pool (bad magic number)")
            }
            Error::HeaderCorrupt { location } => {
                write!(f, "{location}: both copies of the pool header are corrupt")
            }
            Error::UnsupportedVersion { location, major, minor, supported_major } => write!(
                f,
                "{location}: pool format version {major}.{minor} is not supported (this library reads version {supported_major}.x)"
            ),
            Error::UnsupportedFeatures { location, incompat, ro_compat } => write!(
                f,
                "{location}: the pool uses format features not supported by this library (incompatible {incompat:#x}, needed for writing {ro_compat:#x})"
            ),
            Error::LayoutNameMismatch { location, expected, found } => write!(
                f,
                "{location}: layout name mismatch: opened as {expected:?} but the pool was created as {found:?}"
            ),
            Error::RootTypeMismatch { location, expected, found, difference } => write!(
                f,
                "{location}: root type mismatch: opened with `{expected}` but the pool holds `{found}`: {difference}"
            ),
            Error::TypeMismatch { location, type_name, difference } => write!(
                f,
                "{location}: type mismatch: `{type_name}`, reachable from the root, is not the type the pool holds there: {difference}"
            ),
            Error::PoolInUse { location } => {
                write!(f, "{location}: pool is in use by another handle or process")
            }
            Error::Corrupt { location, problem } => write!(f, "{location}: corrupt: {problem}"),
            Error::InvalidPointer { offset, reason } => {
                write!(f, "invalid persistent pointer {offset:#x}: {reason}")
            }
            Error::OutOfSpace { requested, available } => write!(
                f,
                "out of space: requested {requested} bytes, the largest free block is {available} bytes"
            ),
            Error::NestedTransaction => f.write_str(
                "a transaction is already open on this pool in this thread; nest with Tx::transaction",
            ),
            Error::ReadGuardHeld => f.write_str(
                "this thread holds a read guard on the pool; drop it before starting a transaction",
            ),
            Error::ReadInTransaction => f.write_str(
                "this thread has a transaction open on the pool; read through the transaction",
            ),
            Error::Aborted { cause } => write!(f, "transaction aborted: {cause}"),
            Error::InvalidArgument { location, argument } => {
                write!(f, "{location}: invalid argument: {argument}")
            }
            Error::CommitOutcomeUnknown { location, source } => write!(
                f,
                "{location}: writing the commit back failed ({source}): whether the transaction is durable is unknown until the pool is reopened"
            ),
            Error::Poisoned { location } => write!(
                f,
                "{location}: an earlier write-back failed, so the pool refuses writes; reopen it to recover"
            ),
            Error::Io { location, operation, source } => {
                write!(f, "{location}: {operation} failed: {source}")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } | Error::CommitOutcomeUnknown { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Why a step of open that reads the pool's metadata (recovery, rebuilding the heap) failed:
/// the metadata is inconsistent, or the disk blocks the step reads or writes could not be
/// reserved first. Crate-private: [`into_error`](Self::into_error) names the pool.
#[derive(Debug)]
pub(crate) enum MetaFailure {
    /// Open refuses the metadata.
    Corrupt(Corruption),
    /// A reservation failed ([`Error::Io`]).
    Space(Error),
}

impl MetaFailure {
    pub(crate) fn into_error(self, location: &Location) -> Error {
        match self {
            MetaFailure::Corrupt(problem) => Error::corrupt(location, problem),
            MetaFailure::Space(e) => e,
        }
    }
}

/// What rolled a transaction back, when its error is [`Error::Aborted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AbortCause {
    /// The closure called [`Tx::abort`](crate::Tx::abort).
    Requested,
    /// A nested transaction ([`Tx::transaction`](crate::Tx::transaction)) returned an error,
    /// which the closure did not pass on.
    NestedFailed,
    /// A nested transaction panicked, and the closure caught the panic.
    NestedPanicked,
}

impl fmt::Display for AbortCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AbortCause::Requested => "Tx::abort was called",
            AbortCause::NestedFailed => "a nested transaction failed",
            AbortCause::NestedPanicked => "a nested transaction panicked",
        })
    }
}

/// `Result<T, pmem_core::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
