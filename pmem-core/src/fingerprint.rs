//! Stable 64-bit layout fingerprints, computed in `const` context.
//!
//! The hash is FNV-1a over an explicit, length-prefixed little-endian encoding. It depends only on
//! what is written here, never on the compiler (`TypeId`) or the process (`DefaultHasher`), so a
//! pool written by one build opens under any other build with the same types.

use crate::persistent::{Persistent, TypeLayout};

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The starting state of a fingerprint hash.
pub const SEED: u64 = FNV_OFFSET;

/// Mixes `bytes` into `h`.
pub const fn bytes(mut h: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(FNV_PRIME);
        i += 1;
    }
    h
}

/// Mixes a `u64` into `h` as 8 little-endian bytes.
pub const fn u64(h: u64, v: u64) -> u64 {
    bytes(h, &v.to_le_bytes())
}

/// Mixes a string into `h`, prefixed by its length so that `("ab", "c")` and `("a", "bc")` differ.
pub const fn str(h: u64, s: &str) -> u64 {
    bytes(u64(h, s.len() as u64), s.as_bytes())
}

/// The shallow identity of a named type: its name and the identities of its generic arguments.
///
/// `PPtr<T>` uses this rather than `T`'s full fingerprint, so that recursive types such as
/// `struct Node { next: PPtr<Node> }` have a finite fingerprint.
pub const fn type_id(name: &str, generic_args: &[u64]) -> u64 {
    let mut h = str(str(SEED, "type"), name);
    let mut i = 0;
    while i < generic_args.len() {
        h = u64(h, generic_args[i]);
        i += 1;
    }
    h
}

/// The fingerprint of a type described by `layout` whose shallow identity is `type_id`: its
/// identity, size, alignment, and every field's name, offset and fingerprint, in order.
pub const fn of_layout(type_id: u64, layout: &TypeLayout) -> u64 {
    let mut h = u64(str(SEED, "layout"), type_id);
    h = u64(h, layout.size as u64);
    h = u64(h, layout.align as u64);
    h = u64(h, layout.fields.len() as u64);
    let mut i = 0;
    while i < layout.fields.len() {
        let f = &layout.fields[i];
        h = str(h, f.name);
        h = u64(h, f.offset as u64);
        h = u64(h, f.fingerprint);
        i += 1;
    }
    h
}

/// Combines a tag and two values; used for arrays (`element`, `len`) and pointers.
pub const fn combine(tag: &str, a: u64, b: u64) -> u64 {
    u64(u64(str(SEED, tag), a), b)
}

/// The fingerprint recorded for an allocation of `[T]` (a [`PSlice`](crate::PSlice)), computed
/// at compile time. Part of the on-media format (the heap records it for every slice) and of
/// the type table's description of slice pointers, so it lives with the other fingerprints,
/// below both the layout and the pool.
#[inline]
pub(crate) fn slice_fingerprint<T: Persistent>() -> u64 {
    const { slice_fingerprint_of(T::FINGERPRINT) }
}

/// [`slice_fingerprint`] from the element type's fingerprint.
pub(crate) const fn slice_fingerprint_of(element: u64) -> u64 {
    combine("slice", element, 0)
}
