//! [`Iter`]: a [`PVec`](super::PVec)'s elements in order, segment by segment.

use super::SEGMENTS;

/// Iterator over a [`PVec`](super::PVec)'s elements, from [`PVec::iter`](super::PVec::iter).
/// The segments were checked when it was made, so it yields plain references.
///
/// ```
/// # use pmem_core::{Persistent, Pool};
/// # use pmem_collections::PVec;
/// # #[derive(Persistent)] #[repr(C)] struct Root { v: PVec<u32> }
/// let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
/// let v = pool.transaction(|tx| PVec::from_slice(tx, &(0..1000).collect::<Vec<u32>>()))?;
/// pool.read(|r| {
///     let it = v.iter(r)?; // 1000 elements over several segments
///     assert_eq!(it.len(), 1000);
///     assert!(it.copied().eq(0..1000));
///     Ok::<_, pmem_collections::Error>(())
/// })??;
/// # Ok::<(), pmem_collections::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Iter<'r, T> {
    /// The elements of each segment, cut to the vector's length; empty past the last.
    segments: [&'r [T]; SEGMENTS],
    /// The segment being walked, and the rest of it.
    segment: usize,
    rest: &'r [T],
    left: u64,
}

impl<'r, T> Iter<'r, T> {
    pub(super) fn new(segments: [&'r [T]; SEGMENTS], len: u64) -> Self {
        Iter {
            rest: segments[0],
            segments,
            segment: 0,
            left: len,
        }
    }
}

impl<'r, T> Iterator for Iter<'r, T> {
    type Item = &'r T;

    fn next(&mut self) -> Option<&'r T> {
        if self.left == 0 {
            return None;
        }
        while self.rest.is_empty() {
            self.segment += 1;
            self.rest = self.segments.get(self.segment)?;
        }
        let (first, rest) = self.rest.split_first()?;
        self.rest = rest;
        self.left -= 1;
        Some(first)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

impl<T> ExactSizeIterator for Iter<'_, T> {}
