//! The maps' hash: keyed, over a key's bytes, fixed forever.
//!
//! A persistent map places entries by hash, so the hash is part of the on-media format: it must
//! give the same value in every run, with every compiler and on every build of this crate that
//! can open the pool. `std`'s `Hash` implementations promise none of that (how a slice writes its
//! length has changed before), and a user's `Hash` could disagree with its `Eq`. So the maps
//! hash the key's bytes ([`pmem_core::bytes_of`]: persistent types have no padding) and compare
//! keys by the same bytes, with the function below, which this crate never changes for an
//! existing format.
//!
//! The function is a folded multiply (the 128-bit product of two words, its halves xor-ed), the
//! core of foldhash and of aHash's portable path, keyed with 128 bits that each map draws at
//! random when it is created and keeps in its metadata. Without the key an attacker choosing
//! the keys (a server storing remote users' keys) cannot aim them at one slot, and two maps,
//! or a map and its copy made later, place the same keys differently. It is not a
//! cryptographic MAC: it resists flooding by an attacker who sees only the map's behaviour, not
//! one who can read the pool file (and with it the key). SipHash-1-3, `std`'s choice, would
//! resist more, at several times the cost per lookup of a `u64` key, more than the whole
//! checked lookup otherwise costs.

use std::hash::{BuildHasher, Hasher};

/// Folds the 128-bit product of `a` and `b` into 64 bits.
#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

/// Mixed into the second key word, so a zero key still multiplies by a dense constant.
const ODD: u64 = 0x243f_6a88_85a3_08d3;
/// The last multiplier (the next digits of pi).
const LAST: u64 = 0x1319_8a2e_0370_7345;

/// The hash of `bytes` under `key`. Stable: part of the maps' on-media format.
#[inline(always)]
pub(crate) fn hash_bytes(key: [u64; 2], bytes: &[u8]) -> u64 {
    let mult = key[1] ^ ODD;
    let mut h = key[0] ^ (bytes.len() as u64).wrapping_mul(ODD);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        h = fold(h ^ u64::from_le_bytes(word), mult);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut word = [0u8; 8];
        word[..tail.len()].copy_from_slice(tail);
        h = fold(h ^ u64::from_le_bytes(word), mult);
    }
    fold(h ^ key[1], LAST)
}

/// 128 fresh random bits: `std`'s SipHash keyed with the keys it draws from the operating
/// system for its own maps (a fresh pair per `RandomState`).
pub(crate) fn random_key() -> [u64; 2] {
    let state = std::collections::hash_map::RandomState::new();
    let mut words = [0u64; 2];
    for (i, word) in words.iter_mut().enumerate() {
        let mut hasher = state.build_hasher();
        hasher.write_u64(i as u64);
        *word = hasher.finish();
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The format pins these values: a change here would misplace every entry of every pool.
    #[test]
    fn the_hash_is_pinned() {
        let pinned = [
            hash_bytes([0, 0], &[]),
            hash_bytes([1, 2], &7u64.to_le_bytes()),
            hash_bytes([3, 4], b"hello, world"),
        ];
        assert_eq!(pinned, PINNED);
    }

    const PINNED: [u64; 3] = [0, 7_056_810_843_306_370_297, 7_257_427_497_097_073_344];

    #[test]
    fn the_key_changes_the_hash() {
        let bytes = 42u64.to_le_bytes();
        assert_ne!(hash_bytes([1, 2], &bytes), hash_bytes([1, 3], &bytes));
        assert_ne!(hash_bytes([1, 2], &bytes), hash_bytes([2, 2], &bytes));
        assert_ne!(random_key(), random_key());
    }

    #[test]
    fn trailing_zero_bytes_and_length_matter() {
        let key = random_key();
        assert_ne!(hash_bytes(key, &[1]), hash_bytes(key, &[1, 0]));
        assert_ne!(hash_bytes(key, &[]), hash_bytes(key, &[0]));
    }
}
