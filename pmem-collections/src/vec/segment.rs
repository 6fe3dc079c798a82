//! Index arithmetic of the segment table: segment `k` holds `FIRST << k` elements, so the
//! segments before `k` hold `FIRST * (2^k - 1)` and an index finds its segment with one shift,
//! one add and one leading-zero count.

use core::marker::PhantomData;

/// Entries in a vector's segment table. With at least 4 elements in the first segment, 32
/// segments hold more than 17 billion elements (at least 1 TiB of elements of 256 bytes or
/// less), more than a pool is expected to hold; the table costs 512 bytes of metadata.
pub const SEGMENTS: usize = 32;

/// The segment geometry for elements of `T`.
pub(crate) struct Geometry<T>(PhantomData<T>);

impl<T> Geometry<T> {
    /// log2 of the first segment's length: the first segment holds at least 4 elements and at
    /// least 256 bytes (four cache lines), so small elements do not start with tiny segments.
    /// Capped at 20 (a million elements) for zero-sized types.
    pub(crate) const SHIFT: u32 = {
        let size = core::mem::size_of::<T>();
        let mut shift = 2;
        while shift < 20 && (size << shift) < 256 {
            shift += 1;
        }
        shift
    };

    /// Elements in segment `k`.
    pub(crate) const fn segment_len(k: usize) -> u64 {
        1 << (Self::SHIFT as usize + k)
    }

    /// Elements in segments `0..n` together.
    pub(crate) const fn capacity(n: usize) -> u64 {
        ((1u64 << n) - 1) << Self::SHIFT
    }

    /// The most elements a vector of `T` can hold.
    pub(crate) const MAX: u64 = Self::capacity(SEGMENTS);

    /// The segment holding `index` and the index's position in it. `index < MAX`.
    pub(crate) const fn locate(index: u64) -> (usize, usize) {
        let j = (index >> Self::SHIFT) + 1;
        let k = 63 - j.leading_zeros();
        let offset = index - (((1u64 << k) - 1) << Self::SHIFT);
        (k as usize, offset as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_index_lands_inside_its_segment_in_order() {
        type G = Geometry<u64>;
        assert_eq!(G::SHIFT, 5);
        let mut expected = (0usize, 0usize);
        for index in 0..G::capacity(8) {
            assert_eq!(G::locate(index), expected, "index {index}");
            expected.1 += 1;
            if expected.1 as u64 == G::segment_len(expected.0) {
                expected = (expected.0 + 1, 0);
            }
        }
        let (k, offset) = G::locate(G::MAX - 1);
        assert_eq!(
            (k, offset as u64),
            (SEGMENTS - 1, G::segment_len(SEGMENTS - 1) - 1)
        );
    }

    #[test]
    fn first_segment_sizes() {
        assert_eq!(Geometry::<u8>::SHIFT, 8);
        assert_eq!(Geometry::<[u8; 1000]>::SHIFT, 2);
        assert_eq!(Geometry::<()>::SHIFT, 20);
    }
}
