//! The log format: checksummed entries appended to a log slot.
//!
//! ```text
//! entry  = kind: u8 | flags: u8 | aux: u16 | len: u32 | gen: u64 | checksum: u64 | payload
//! ```
//!
//! Every entry starts on a cache line: an entry is flushed with the lines it alone occupies, and
//! a later entry never dirties a line an earlier fence already made durable (on CPUs whose
//! write-back evicts, that would also cost a miss).
//!
//! # Which entries are live
//!
//! An entry is valid where it lies only if `checksum` is xxh3-64 of its payload seeded with
//! `K(gen) ^ bind(offset, header)`. `K(gen)` is `E(gen / 256) ^ mix(gen)`: `E` is SipHash-1-3
//! of the epoch number (256 generations make an epoch) under the pool's 128-bit secret (random,
//! made at create, kept only in the header), and `mix` is a bijective 64-bit mixer. `bind`
//! mixes the entry's pool offset with its kind, flags, aux and length. A torn entry, zeroed space, an
//! entry of another generation or another pool, and an entry moved to another offset all fail
//! it.
//!
//! What an attacker controls: the bytes an application stores (a value a remote user sent, say).
//! Undo entries copy such bytes verbatim into the log, log slots are reused without being
//! cleared, and extension blocks go back to the heap, so stored bytes can lie anywhere a reader
//! looks, at any 64-byte position, spelling any header, for any generation the attacker predicts
//! (generations are public: one per transaction). What the attacker does not have: the file
//! (they never read the log, the header or anything but what the safe API returns, and fresh
//! allocations are initialised, so stale log bytes are never returned), and so not the secret.
//!
//! Why a forged entry is not accepted: to pass, stored bytes at offset `p` must carry the
//! checksum the writer would have computed for that exact header and payload at `p` in that
//! generation. That value is xxh3 under a seed the attacker does not know: `E` is the output of
//! a PRF keyed by 128 secret bits, so it is unpredictable even to someone who had learnt the keys
//! of other epochs (which nothing exposes); within an epoch, as within a generation, seeds differ
//! by values the attacker can compute but which do not reveal `E`. The attacker sees no
//! checksum, so what is left is a zero-knowledge guess: it succeeds with probability about 2^-64
//! provided xxh3 of a fixed input is close to uniform over an unknown random seed (an assumption
//! about xxh3, which is not designed as a MAC; the PRF per epoch keeps any weakness there from
//! carrying over between epochs), and each guess costs the attacker a crash at the moment a
//! reader reaches their bytes. A valid entry can only have been written by this pool's writer,
//! at that offset, in that generation.
//!
//! SipHash over a fixed record (generation, offset, header, xxh3-128 of the payload) per entry
//! was measured against this construction: it costs a SipHash per entry. A SipHash per
//! generation cost a transaction of one small write about 100 instructions (6% of it); one per
//! epoch costs it a compare and a multiply.
//!
//! # Torn tails and damage
//!
//! A reader stops at the first entry that is not valid. A crash can leave the entries written
//! since the last fence in any mix of persisted words (several entries are flushed under one
//! fence), so an invalid entry, even with valid ones after it, is normal there; nothing the
//! protocol relies on was written after those entries' fence. The `FENCED` flag marks an entry
//! written after a fence that covered every earlier entry of its log. Entries of a block are
//! contiguous, so a valid `FENCED` entry of the same generation later in the same block as an
//! invalid one proves the invalid one was durable: that is damage, never a torn tail, and the
//! reader reports it with the offset. The reader looks for that entry along the chain of entry
//! lengths from the invalid one, which keeps the search linear in the block
//! ([`crate::log::reader`] gives the argument). Damage in the last fenced group of entries, with
//! nothing valid after it, and damage to the invalid entry's own header, cannot be told from a
//! torn tail.
//!
//! Payloads by kind:
//! - `UNDO`: target offset (u64), then the bytes the target held before the transaction wrote it.
//!   Written by format 3.0, read by every later version (a pool of 3.0 may hold one after a
//!   crash).
//! - `DATA`: target offset (u64), then the bytes the transaction wrote there: its write set,
//!   logged with the commit record and copied into place only once that is durable (feature
//!   [`REDO_WRITES`](crate::layout::header::features::REDO_WRITES)).
//! - `REDO`: heap metadata operations ([`Op`]), 16 bytes each, applied only once committed.
//! - `RANGES`: `(offset, len)` pairs of bytes the transaction wrote without undo (new objects).
//! - `EXTEND`: offset and length of the block where the log continues.
//! - `COMMIT`: `data` (hash of the final contents of every range written in place, in log
//!   order), then ops, then `aux` ranges. A one-object allocation's whole commit record fits one
//!   cache line. With flag `INLINE_WRITE`, the hash is followed by the transaction's only write
//!   (target offset u64, length u64, then that many bytes, zero-padded to a multiple of 8),
//!   and then the ops and ranges: it is written only where the whole record still fits one
//!   cache line, so a transaction that changes one counter logs one line, not two. The reader reaches a commit record only through a valid, same-generation
//!   entry at every earlier position, so the record vouches for the whole log before it.
//! - `RETIRED`: nothing in this slot, or before it, needs recovery.

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Bytes in each log slot (the part inside the pool's fixed log area).
pub(crate) const LOG_SLOT_SIZE: u64 = 64 * 1024;
/// Size of an entry header.
pub(crate) const ENTRY_HEADER: u64 = 24;

/// Entries start on this boundary.
pub(crate) const ENTRY_ALIGN: u64 = 64;

/// Entry kinds (the header's first byte). 0 is never valid, so zeroed space never parses.
pub(crate) mod kind {
    pub(crate) const UNDO: u32 = 1;
    pub(crate) const REDO: u32 = 2;
    pub(crate) const RANGES: u32 = 3;
    pub(crate) const EXTEND: u32 = 4;
    pub(crate) const COMMIT: u32 = 5;
    pub(crate) const RETIRED: u32 = 6;
    pub(crate) const DATA: u32 = 7;
    /// The largest kind this version knows.
    pub(crate) const LAST: u32 = DATA;
}

/// Entry flags (the header's second byte).
pub(crate) mod flags {
    /// Every earlier entry of this log was fenced before this one was written.
    pub(crate) const FENCED: u32 = 1;
    /// A `COMMIT` that holds the transaction's one write itself, in place of a `DATA` entry
    /// (feature [`INLINE_WRITES`](crate::layout::header::features::INLINE_WRITES)). No other
    /// kind carries it.
    pub(crate) const INLINE_WRITE: u32 = 2;
    /// Every flag this version knows.
    pub(crate) const ALL: u32 = FENCED | INLINE_WRITE;
}

/// The longest write a commit record holds inline: a commit with no heap ops and no ranges
/// then still fits one cache line (24-byte header, hash, target, length, bytes).
pub(crate) const INLINE_WRITE_MAX: usize = 16;

/// Bytes of the per-pool log secret.
pub(crate) const LOG_KEY_BYTES: usize = 16;

/// The per-pool secret that keys every entry's checksum: random, made when the pool is created,
/// kept in the header and nowhere else.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogKey {
    k0: u64,
    k1: u64,
}

impl std::fmt::Debug for LogKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogKey(..)")
    }
}

impl LogKey {
    pub(crate) fn from_bytes(bytes: [u8; LOG_KEY_BYTES]) -> LogKey {
        let (a, b) = bytes.split_at(8);
        LogKey {
            k0: u64::from_le_bytes(a.try_into().expect("8 bytes")),
            k1: u64::from_le_bytes(b.try_into().expect("8 bytes")),
        }
    }

    /// The key of generation `gen`'s entries.
    #[inline]
    pub(crate) fn generation(&self, gen: u64) -> GenKey {
        self.epoch(gen).generation(gen)
    }

    /// The key of the epoch holding generation `gen`: SipHash-1-3 of the epoch number under the
    /// pool secret. Computed once per [`EPOCH_GENERATIONS`] transactions.
    #[inline]
    pub(crate) fn epoch(&self, gen: u64) -> EpochKey {
        let epoch = gen / EPOCH_GENERATIONS;
        EpochKey {
            key: siphash13_u64(self.k0, self.k1, epoch),
            epoch,
        }
    }
}

/// Generations that share one epoch key.
pub(crate) const EPOCH_GENERATIONS: u64 = 256;

/// The secret part of the keys of [`EPOCH_GENERATIONS`] consecutive generations.
#[derive(Clone, Copy)]
pub(crate) struct EpochKey {
    key: u64,
    epoch: u64,
}

impl EpochKey {
    /// The key of generation `gen`, if it falls in this epoch.
    #[inline]
    pub(crate) fn generation(&self, gen: u64) -> GenKey {
        debug_assert_eq!(gen / EPOCH_GENERATIONS, self.epoch);
        GenKey {
            seed: self.key ^ mix64(gen),
            gen,
        }
    }

    /// Whether generation `gen` falls in this epoch.
    #[inline]
    pub(crate) fn holds(&self, gen: u64) -> bool {
        gen / EPOCH_GENERATIONS == self.epoch
    }
}

impl std::fmt::Debug for EpochKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EpochKey(epoch {})", self.epoch)
    }
}

/// A bijective 64-bit mixer (the SplitMix64 finaliser): distinct generations get unrelated
/// seeds under one epoch key.
#[inline]
fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// SipHash-1-3 of the 8-byte little-endian message `m` under key `(k0, k1)`.
#[inline]
fn siphash13_u64(k0: u64, k1: u64, m: u64) -> u64 {
    #[inline(always)]
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    // The message block, then the final block: the length (8) in the top byte.
    for block in [m, 8 << 56] {
        v[3] ^= block;
        round(&mut v);
        v[0] ^= block;
    }
    v[2] ^= 0xff;
    for _ in 0..3 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// The key of one generation's entries (see [`LogKey::generation`]).
#[derive(Clone, Copy)]
pub(crate) struct GenKey {
    seed: u64,
    gen: u64,
}

impl std::fmt::Debug for GenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GenKey(gen {})", self.gen)
    }
}

/// The checksum of the entry at pool offset `at` with header fields `kind_word` and `len` and
/// `payload`, in the generation `key` was made for: xxh3-64 of the payload, seeded by the
/// generation's key and the entry's offset and header.
#[inline]
pub(crate) fn entry_checksum(
    key: &GenKey,
    at: u64,
    kind_word: u32,
    len: u32,
    payload: &[u8],
) -> u64 {
    xxh3_64_with_seed(payload, entry_seed(key, at, kind_word, len))
}

/// The seed of [`entry_checksum`]: the generation's key bound to the entry's position, kind and
/// length, for a writer that hashes the payload as it produces it.
#[inline]
pub(crate) fn entry_seed(key: &GenKey, at: u64, kind_word: u32, len: u32) -> u64 {
    let header = (kind_word as u64) << 32 | len as u64;
    let bind = at.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ header.rotate_left(23);
    key.seed ^ bind
}

/// The seed of a transaction's data hash.
pub(crate) const DATA_HASH_SEED: u64 = 0x6461_7461_6861_7368;

/// Bytes an entry with `len` payload bytes takes, to the start of the next entry.
pub(crate) const fn entry_size(len: u64) -> u64 {
    (ENTRY_HEADER + len).div_ceil(ENTRY_ALIGN) * ENTRY_ALIGN
}

/// The header's first four bytes: the kind, its flags and its 16-bit auxiliary value.
pub(crate) const fn kind_word(kind: u32, flags: u32, aux: u16) -> u32 {
    kind | flags << 8 | (aux as u32) << 16
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
    fn siphash13_matches_the_reference() {
        use std::hash::Hasher;
        for (k0, k1, m) in [
            (0, 0, 0u64),
            (1, 2, 3),
            (u64::MAX, 0x0706_0504_0302_0100, 42),
        ] {
            let mut h = siphasher::sip::SipHasher13::new_with_keys(k0, k1);
            h.write(&m.to_le_bytes());
            assert_eq!(siphash13_u64(k0, k1, m), h.finish());
        }
    }

    #[test]
    fn a_generation_key_is_the_epoch_key_mixed_with_the_generation() {
        let key = LogKey::from_bytes(*b"0123456789abcdef");
        let e = key.epoch(3 * EPOCH_GENERATIONS + 5);
        assert!(e.holds(3 * EPOCH_GENERATIONS) && !e.holds(4 * EPOCH_GENERATIONS));
        let direct = key.generation(3 * EPOCH_GENERATIONS + 9);
        let via_epoch = e.generation(3 * EPOCH_GENERATIONS + 9);
        assert_eq!(direct.seed, via_epoch.seed);
        let mut h = siphasher::sip::SipHasher13::new_with_keys(key.k0, key.k1);
        std::hash::Hasher::write(&mut h, &3u64.to_le_bytes());
        let sip = std::hash::Hasher::finish(&h);
        assert_eq!(direct.seed, sip ^ mix64(3 * EPOCH_GENERATIONS + 9));
        assert_ne!(key.generation(0).seed, key.generation(1).seed);
    }

    #[test]
    fn checksum_binds_key_generation_position_and_header() {
        let p = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let key = LogKey::from_bytes(*b"0123456789abcdef");
        let other = LogKey::from_bytes(*b"0123456789abcdeg");
        let undo = kind_word(kind::UNDO, 0, 0);
        let c = entry_checksum(&key.generation(7), 64, undo, 8, &p);
        let redo = kind_word(kind::REDO, 0, 0);
        assert_ne!(c, entry_checksum(&key.generation(7), 64, redo, 8, &p));
        let fenced = kind_word(kind::UNDO, flags::FENCED, 0);
        assert_ne!(c, entry_checksum(&key.generation(7), 64, fenced, 8, &p));
        assert_ne!(c, entry_checksum(&key.generation(8), 64, undo, 8, &p));
        assert_ne!(c, entry_checksum(&key.generation(7 + 256), 64, undo, 8, &p));
        assert_ne!(c, entry_checksum(&key.generation(7), 128, undo, 8, &p));
        assert_ne!(c, entry_checksum(&other.generation(7), 64, undo, 8, &p));
        assert_ne!(c, entry_checksum(&key.generation(7), 64, undo, 8, &[0; 8]));
    }
}
