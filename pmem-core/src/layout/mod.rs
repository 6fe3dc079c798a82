//! The on-media format, version 3: fixed-size little-endian structures and where they live.
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
///
/// Version 2 keyed the log's entry checksums with a per-pool secret kept in the header and bound
/// each entry to its position; its type table records each type's alignment and fields. Version
/// 3 derives the keys per epoch of 256 generations rather than per generation: a version 2 log
/// fails every checksum under version 3's keys and would read as empty, so the version changes
/// and each refuses the other's pools.
pub const FORMAT_MAJOR: u16 = 3;
/// See [`FORMAT_MAJOR`].
///
/// Minor version 1 adds the `DATA` log entry (feature `REDO_WRITES`): a transaction's writes go
/// to the log with its commit record and into place after it, one fence for the whole
/// transaction. Version 3.1 opens and recovers 3.0 pools (whose logs hold undo entries) and
/// upgrades them when it opens them for writing; 3.0 refuses 3.1 pools by the feature flag.
///
/// Minor version 2 lets a commit record hold a small write inline (feature `INLINE_WRITES`):
/// a one-range transaction logs one cache line. 3.2 opens 3.0 and 3.1 pools and upgrades them
/// when it opens them for writing; 3.1 refuses 3.2 pools by the feature flag.
pub const FORMAT_MINOR: u16 = 2;

/// Rounds `v` up to a multiple of `to` (a power of two), or `None` if that overflows: sizes
/// read from a pool file can be anything.
pub(crate) const fn align_up(v: u64, to: u64) -> Option<u64> {
    match v.checked_add(to - 1) {
        Some(x) => Some(x & !(to - 1)),
        None => None,
    }
}

/// Reads little-endian fields from a byte buffer, `None` once it runs out: for tables stored in
/// the pool, which may be damaged.
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at `pos` in `buf`.
    pub(crate) fn at(buf: &'a [u8], pos: usize) -> Cursor<'a> {
        Cursor { buf, pos }
    }
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let bytes = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(bytes)
    }
    pub(crate) fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    pub(crate) fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    pub(crate) fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    /// A string stored as a length byte and that many bytes (invalid UTF-8 replaced).
    pub(crate) fn str(&mut self) -> Option<String> {
        let len = self.u8()? as usize;
        Some(String::from_utf8_lossy(self.take(len)?).into_owned())
    }
}
