//! The log format: checksummed entries appended to a log slot.
//!
//! ```text
//! entry  = kind: u16 | aux: u16 | len: u32 | gen: u64 | checksum: u64 | payload (len bytes)
//! ```
//!
//! Every entry starts on a cache line: an entry is flushed with the lines it alone occupies, and
//! a later entry never dirties a line an earlier fence already made durable (on CPUs whose
//! write-back evicts, that would also cost a miss).
//!
//! `checksum` is xxh3-64 of the payload, seeded with the header fields, so a torn entry, an
//! entry from an older transaction (different `gen`) and zeroed space all fail it. A reader
//! stops at the first entry that fails: entries are written in order and the protocol never
//! relies on an entry that was not fenced, so nothing after a bad entry can matter.
//!
//! Payloads by kind:
//! - `UNDO`: target offset (u64), then the bytes the target held before the transaction wrote it.
//! - `REDO`: heap metadata operations ([`Op`]), 16 bytes each, applied only once committed.
//! - `RANGES`: `(offset, len)` pairs of bytes the transaction wrote without undo (new objects).
//! - `EXTEND`: offset and length of the block where the log continues.
//! - `COMMIT`: `data` (hash of the final contents of every range written in place, in log
//!   order), then ops, then `aux` ranges. A one-object allocation's whole commit record fits one
//!   cache line. The reader reaches a commit record only through a valid, same-generation
//!   entry at every earlier position, so the record vouches for the whole log before it.
//! - `RETIRED`: nothing in this slot, or before it, needs recovery.

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Bytes in each log slot (the part inside the pool's fixed log area).
pub(crate) const LOG_SLOT_SIZE: u64 = 64 * 1024;
/// Size of an entry header.
pub(crate) const ENTRY_HEADER: u64 = 24;

/// Entries start on this boundary.
pub(crate) const ENTRY_ALIGN: u64 = 64;

/// Entry kinds (the low 16 bits of the header's first word). 0 is never valid, so zeroed space
/// never parses.
pub(crate) mod kind {
    pub(crate) const UNDO: u32 = 1;
    pub(crate) const REDO: u32 = 2;
    pub(crate) const RANGES: u32 = 3;
    pub(crate) const EXTEND: u32 = 4;
    pub(crate) const COMMIT: u32 = 5;
    pub(crate) const RETIRED: u32 = 6;
}

/// The checksum of an entry.
#[inline]
pub(crate) fn entry_checksum(kind: u32, len: u32, gen: u64, payload: &[u8]) -> u64 {
    let seed = gen ^ ((kind as u64) << 32 | len as u64).rotate_left(17) ^ 0x5052_4d45_4d4c_4f47;
    xxh3_64_with_seed(payload, seed)
}

/// The seed of a transaction's data hash.
pub(crate) const DATA_HASH_SEED: u64 = 0x6461_7461_6861_7368;

/// Bytes an entry with `len` payload bytes takes, to the start of the next entry.
pub(crate) const fn entry_size(len: u64) -> u64 {
    (ENTRY_HEADER + len).div_ceil(ENTRY_ALIGN) * ENTRY_ALIGN
}

/// The header's kind field: the kind and its 16-bit auxiliary value.
pub(crate) const fn kind_word(kind: u32, aux: u16) -> u32 {
    kind | (aux as u32) << 16
}

/// A heap metadata operation, applied in log order when its transaction commits, and again (to
/// the same effect) by recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// `*target |= mask`
    SetBits { target: u64, mask: u64 },
    /// `*target &= !mask`
    ClearBits { target: u64, mask: u64 },
    /// `*target = value`
    Write { target: u64, value: u64 },
    /// Zero `len` bytes at `target`.
    Zero { target: u64, len: u64 },
}

const OP_SET: u64 = 1;
const OP_CLEAR: u64 = 2;
const OP_WRITE: u64 = 3;
const OP_ZERO: u64 = 4;
const OFFSET_MASK: u64 = (1 << 56) - 1;

/// Size of an encoded op.
pub(crate) const OP_SIZE: u64 = 16;

impl Op {
    pub(crate) fn encode(self) -> [u64; 2] {
        let (code, target, value) = match self {
            Op::SetBits { target, mask } => (OP_SET, target, mask),
            Op::ClearBits { target, mask } => (OP_CLEAR, target, mask),
            Op::Write { target, value } => (OP_WRITE, target, value),
            Op::Zero { target, len } => (OP_ZERO, target, len),
        };
        debug_assert!(target <= OFFSET_MASK);
        [code << 56 | target, value]
    }

    /// Decodes an op; `None` for a code this version does not know.
    pub(crate) fn decode(words: [u64; 2]) -> Option<Op> {
        let target = words[0] & OFFSET_MASK;
        let value = words[1];
        Some(match words[0] >> 56 {
            OP_SET => Op::SetBits {
                target,
                mask: value,
            },
            OP_CLEAR => Op::ClearBits {
                target,
                mask: value,
            },
            OP_WRITE => Op::Write { target, value },
            OP_ZERO => Op::Zero { target, len: value },
            _ => return None,
        })
    }

    /// The byte range the op writes.
    pub(crate) fn range(self) -> (u64, u64) {
        match self {
            Op::SetBits { target, .. }
            | Op::ClearBits { target, .. }
            | Op::Write { target, .. } => (target, 8),
            Op::Zero { target, len } => (target, len),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_round_trip() {
        for op in [
            Op::SetBits {
                target: 0x1234_5678,
                mask: 1 << 63,
            },
            Op::ClearBits {
                target: 8,
                mask: u64::MAX,
            },
            Op::Write {
                target: (1 << 56) - 8,
                value: 42,
            },
            Op::Zero {
                target: 64,
                len: 4096,
            },
        ] {
            assert_eq!(Op::decode(op.encode()), Some(op));
        }
        assert_eq!(Op::decode([0, 0]), None);
    }

    #[test]
    fn checksum_binds_header_fields() {
        let p = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let c = entry_checksum(kind::UNDO, 8, 7, &p);
        assert_ne!(c, entry_checksum(kind::REDO, 8, 7, &p));
        assert_ne!(c, entry_checksum(kind::UNDO, 8, 8, &p));
        assert_ne!(entry_checksum(0, 0, 0, &[]), 0);
    }
}
