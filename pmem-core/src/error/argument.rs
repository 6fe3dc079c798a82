//! Why a call's argument was refused: a pointer that names no valid object, or another
//! argument out of range.

use std::fmt;

use crate::persist::FlushMode;

/// Why a persistent pointer does not point at a valid object of the expected type. Carried by
/// [`Error::InvalidPointer`](crate::Error::InvalidPointer); its `Display` is the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PointerRejection {
    /// The pointer is null.
    Null,
    /// The offset is not a multiple of the type's alignment.
    Misaligned {
        /// The type the pointer was used as.
        type_name: &'static str,
        /// Its alignment.
        align: u64,
    },
    /// The offset is not inside the heap.
    OutsideHeap,
    /// The offset is in free heap space.
    InFreeSpace,
    /// The offset is inside a large object, not at its start.
    InsideLargeObject,
    /// The offset is inside an object of a run, not at its start.
    InsideObject,
    /// The offset is past the last slot of a run.
    PastLastSlot,
    /// The chunk table entry that would describe the object is inconsistent.
    BadChunkEntry,
    /// No object is allocated there (it was freed, or never allocated).
    NotAllocated,
    /// The object there was allocated as another type.
    WrongType {
        /// The type the pointer was used as.
        type_name: &'static str,
        /// That type's fingerprint.
        expected: u64,
        /// The fingerprint recorded for the object.
        found: u64,
    },
    /// The object there is smaller than the type (or the slice's elements) needs.
    TooSmall {
        /// The object's usable size.
        size: u64,
        /// Bytes needed.
        needed: u64,
    },
    /// The slice's length times its element size overflows.
    LengthOverflow {
        /// The slice's length.
        len: u64,
    },
    /// The object is freed twice (in one transaction, or it is no longer allocated).
    DoubleFree,
    /// The pointer was passed twice to a call that needs distinct objects
    /// ([`Tx::get_mut_many`](crate::Tx::get_mut_many)).
    Duplicate,
}

impl fmt::Display for PointerRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PointerRejection::Null => f.write_str("null pointer"),
            PointerRejection::Misaligned { type_name, align } => {
                write!(f, "misaligned for `{type_name}` (alignment {align})")
            }
            PointerRejection::OutsideHeap => f.write_str("not inside the heap"),
            PointerRejection::InFreeSpace => f.write_str("points into free heap space"),
            PointerRejection::InsideLargeObject => {
                f.write_str("points inside a large object, not at its start")
            }
            PointerRejection::InsideObject => f.write_str("points inside an object, not at its start"),
            PointerRejection::PastLastSlot => f.write_str("points past the last slot of a run"),
            PointerRejection::BadChunkEntry => f.write_str("corrupt chunk table"),
            PointerRejection::NotAllocated => f.write_str("no object is allocated there (freed?)"),
            PointerRejection::WrongType {
                type_name,
                expected,
                found,
            } => write!(
                f,
                "the object there has type fingerprint {found:#018x}, not that of `{type_name}` ({expected:#018x})"
            ),
            PointerRejection::TooSmall { size, needed } => {
                write!(f, "the object there has {size} bytes, {needed} needed")
            }
            PointerRejection::LengthOverflow { len } => {
                write!(f, "a length of {len} elements overflows")
            }
            PointerRejection::DoubleFree => f.write_str("the object is not allocated (double free?)"),
            PointerRejection::Duplicate => f.write_str("passed twice to get_mut_many"),
        }
    }
}

/// Which argument was refused, and why. Carried by
/// [`Error::InvalidArgument`](crate::Error::InvalidArgument); its `Display` is the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidArgument {
    /// The flush mode asked for needs an instruction this CPU lacks.
    UnsupportedFlushMode {
        /// The mode.
        mode: FlushMode,
    },
    /// The simulated flush mode was asked for a pool file; it is for in-memory pools
    /// ([`PoolBuilder::create_simulated`](crate::PoolBuilder::create_simulated)).
    SimulatedModeForFile,
    /// The root type needs a larger alignment than a pool gives its root.
    RootAlignment {
        /// The root type.
        type_name: &'static str,
        /// Its alignment.
        align: usize,
        /// The largest alignment a root may have ([`MAX_ALIGN`](crate::MAX_ALIGN)).
        max: usize,
    },
    /// The layout name is longer than the header holds, or contains NUL.
    LayoutName {
        /// The name asked for.
        name: String,
        /// The longest name the header holds, in bytes.
        max: usize,
    },
    /// A simulated pool of this size does not fit in the process's memory.
    ImageTooLarge {
        /// The size asked for.
        size: u64,
    },
    /// A byte range asked for is outside the pool.
    OutsidePool {
        /// Its offset.
        offset: u64,
        /// Its length.
        len: u64,
        /// The pool's size.
        pool_size: u64,
    },
    /// A slice of this many elements would be larger than any pool (its size overflows).
    SliceTooLarge {
        /// Elements asked for.
        len: u64,
        /// Bytes per element.
        element_size: u64,
    },
    /// A crash image was asked for at a fence the workload did not make.
    NoSuchFence {
        /// The fence index asked for.
        fence: u64,
    },
}

impl fmt::Display for InvalidArgument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidArgument::UnsupportedFlushMode { mode } => {
                write!(f, "flush mode {mode} is not supported by this CPU")
            }
            InvalidArgument::SimulatedModeForFile => f.write_str(
                "the simulated flush mode is for in-memory pools (PoolBuilder::create_simulated)",
            ),
            InvalidArgument::RootAlignment {
                type_name,
                align,
                max,
            } => write!(
                f,
                "root type `{type_name}` needs alignment {align}, more than the {max} a pool gives its root"
            ),
            InvalidArgument::LayoutName { name, max } => write!(
                f,
                "layout name {name:?} is longer than {max} bytes or contains NUL"
            ),
            InvalidArgument::ImageTooLarge { size } => write!(
                f,
                "a simulated pool of {size} bytes does not fit in this process's memory"
            ),
            InvalidArgument::OutsidePool {
                offset,
                len,
                pool_size,
            } => write!(
                f,
                "bytes {offset:#x}+{len:#x} are outside the pool of {pool_size:#x} bytes"
            ),
            InvalidArgument::SliceTooLarge { len, element_size } => write!(
                f,
                "a slice of {len} elements of {element_size} bytes is larger than any pool"
            ),
            InvalidArgument::NoSuchFence { fence } => {
                write!(f, "the workload made no fence {fence}")
            }
        }
    }
}
