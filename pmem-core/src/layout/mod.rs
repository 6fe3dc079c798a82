//! The on-media format, version 1: fixed-size little-endian structures and where they live.
//!
//! ```text
//! offset 0        header copy A           4 KiB
//!        4 KiB    header copy B           4 KiB
//!        8 KiB    log slot 0              LOG_SLOT_SIZE
//!                 log slot 1              LOG_SLOT_SIZE
//!                 type table              64 KiB: the types reachable from the root
//!                 root object             size of the root type, rounded up to 4 KiB
//!                 chunk table             16 bytes per chunk
//!                 heap                    CHUNK_SIZE-aligned chunks
//! ```
//!
//! Every offset is relative to the start of the pool; 0 is null. The geometry is a pure function
//! of the pool size and the root size, and opening a pool recomputes it and compares, so a
//! header that passes its checksum still cannot point the library outside the file.

pub(crate) mod geometry;
pub(crate) mod header;
pub(crate) mod heap;
pub(crate) mod log;
pub(crate) mod types;

pub(crate) use geometry::Geometry;

/// Format version this library writes. A different major version is refused; a newer minor
/// version is compatible by definition.
pub const FORMAT_MAJOR: u16 = 1;
/// See [`FORMAT_MAJOR`].
pub const FORMAT_MINOR: u16 = 0;

/// Rounds `v` up to a multiple of `to` (a power of two), or `None` if that overflows: sizes
/// read from a pool file can be anything.
pub(crate) const fn align_up(v: u64, to: u64) -> Option<u64> {
    match v.checked_add(to - 1) {
        Some(x) => Some(x & !(to - 1)),
        None => None,
    }
}
