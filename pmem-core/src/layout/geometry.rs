//! Where each region of a pool lives, computed from the pool size and the root size.

use super::align_up;
use super::heap::{BITMAP_BYTES, CHUNK_ENTRY_SIZE, CHUNK_SIZE};
use super::log::LOG_SLOT_SIZE;

/// Size of one header copy.
pub(crate) const HEADER_SIZE: u64 = 4096;
/// Offset of the first log slot.
pub(crate) const LOG_OFFSET: u64 = 2 * HEADER_SIZE;
/// Number of log slots (the current and the previous transaction).
pub(crate) const LOG_SLOTS: u64 = 2;
/// Offset of the type table: the pool's self-description, for tools.
pub(crate) const TYPE_TABLE_OFFSET: u64 = LOG_OFFSET + LOG_SLOTS * LOG_SLOT_SIZE;
/// Bytes of the type table.
pub(crate) const TYPE_TABLE_SIZE: u64 = 64 * 1024;
/// The fewest heap chunks a pool may have.
pub(crate) const MIN_CHUNKS: u64 = 4;
const PAGE: u64 = 4096;

/// The regions of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub pool_size: u64,
    pub root_offset: u64,
    pub root_size: u64,
    pub chunk_table_offset: u64,
    pub heap_offset: u64,
    pub chunk_count: u64,
    /// Offset of the run bitmap table (derived from the fields above; kept because every
    /// allocation check reads it).
    pub bitmap_table_offset: u64,
}

impl Geometry {
    /// The geometry of a pool of `pool_size` bytes whose root is `root_size` bytes, or `None`
    /// if that leaves fewer than [`MIN_CHUNKS`] heap chunks.
    pub(crate) fn compute(pool_size: u64, root_size: u64) -> Option<Geometry> {
        let root_offset = TYPE_TABLE_OFFSET + TYPE_TABLE_SIZE;
        let root_area = align_up(root_size.max(1), PAGE)?;
        let chunk_table_offset = root_offset.checked_add(root_area)?;
        let usable = pool_size.checked_sub(chunk_table_offset)?;
        // Each chunk costs its bytes plus its table entry and bitmap; the alignment of the heap
        // start may cost up to one more chunk, so shrink until the layout fits.
        let mut chunk_count = usable / (CHUNK_SIZE + CHUNK_ENTRY_SIZE + BITMAP_BYTES);
        loop {
            let heap_offset = align_up(metadata_end(chunk_table_offset, chunk_count)?, CHUNK_SIZE)?;
            if heap_offset.checked_add(chunk_count * CHUNK_SIZE)? <= pool_size {
                if chunk_count < MIN_CHUNKS {
                    return None;
                }
                return Some(Geometry {
                    pool_size,
                    root_offset,
                    root_size,
                    chunk_table_offset,
                    heap_offset,
                    chunk_count,
                    bitmap_table_offset: bitmap_table_offset(chunk_table_offset, chunk_count),
                });
            }
            chunk_count = chunk_count.checked_sub(1)?;
        }
    }

    /// The smallest pool size that [`compute`](Self::compute) accepts for this root size
    /// (`u64::MAX` if none does).
    pub(crate) fn minimum_pool_size(root_size: u64) -> u64 {
        let root_offset = TYPE_TABLE_OFFSET + TYPE_TABLE_SIZE;
        align_up(root_size.max(1), PAGE)
            .and_then(|area| area.checked_add(root_offset))
            .and_then(|table| metadata_end(table, MIN_CHUNKS))
            .and_then(|end| align_up(end, CHUNK_SIZE))
            .and_then(|heap| heap.checked_add(MIN_CHUNKS * CHUNK_SIZE))
            .unwrap_or(u64::MAX)
    }

    /// Offset of the run bitmap table: [`BITMAP_BYTES`] per chunk, used by chunks that start a
    /// run. Kept apart from the runs so that opening a pool reads dense metadata, not one page
    /// of every run.
    #[inline]
    pub(crate) fn bitmap_table_offset(&self) -> u64 {
        self.bitmap_table_offset
    }

    /// Offset of the bitmap of the run starting at chunk `index`.
    #[inline]
    pub(crate) fn bitmap_offset(&self, index: u64) -> u64 {
        self.bitmap_table_offset() + index * BITMAP_BYTES
    }

    /// End of the heap.
    #[inline]
    pub(crate) fn heap_end(&self) -> u64 {
        self.heap_offset + self.chunk_count * CHUNK_SIZE
    }

    /// Offset of the first byte of chunk `index`.
    #[inline]
    pub(crate) fn chunk_offset(&self, index: u64) -> u64 {
        self.heap_offset + index * CHUNK_SIZE
    }

    /// Offset of chunk `index`'s table entry.
    #[inline]
    pub(crate) fn chunk_entry_offset(&self, index: u64) -> u64 {
        self.chunk_table_offset + index * CHUNK_ENTRY_SIZE
    }

    /// The chunk holding heap offset `offset`, if it is in the heap.
    #[inline]
    pub(crate) fn chunk_of(&self, offset: u64) -> Option<u64> {
        if offset >= self.heap_offset && offset < self.heap_end() {
            Some((offset - self.heap_offset) / CHUNK_SIZE)
        } else {
            None
        }
    }

    /// Offset of log slot `slot`.
    pub(crate) fn log_slot_offset(slot: u64) -> u64 {
        LOG_OFFSET + slot * LOG_SLOT_SIZE
    }
}

/// Offset of the bitmap table. Wrapping arithmetic: a header's fields are untrusted until they
/// are compared with [`Geometry::compute`]'s, which never wraps here.
pub(super) fn bitmap_table_offset(chunk_table_offset: u64, chunk_count: u64) -> u64 {
    chunk_table_offset
        .wrapping_add(chunk_count.wrapping_mul(CHUNK_ENTRY_SIZE))
        .wrapping_add(63)
        & !63
}

/// End of the chunk and bitmap tables, or `None` if it overflows.
fn metadata_end(chunk_table_offset: u64, chunk_count: u64) -> Option<u64> {
    let table_end = chunk_table_offset.checked_add(chunk_count.checked_mul(CHUNK_ENTRY_SIZE)?)?;
    align_up(table_end, 64)?.checked_add(chunk_count.checked_mul(BITMAP_BYTES)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_is_exact() {
        for root in [0, 8, 4096, 10_000] {
            let min = Geometry::minimum_pool_size(root);
            assert!(Geometry::compute(min, root).is_some(), "root {root}");
            assert!(Geometry::compute(min - 1, root).is_none(), "root {root}");
        }
    }

    #[test]
    fn sizes_at_the_edge_of_u64_compute_no_geometry() {
        assert_eq!(Geometry::compute(u64::MAX, u64::MAX), None);
        assert_eq!(Geometry::compute(1 << 30, u64::MAX - 100), None);
        assert_eq!(Geometry::minimum_pool_size(u64::MAX), u64::MAX);
        // Nothing wraps or panics on the way for the largest sizes.
        for size in [u64::MAX, u64::MAX - (1 << 14), 1 << 62] {
            if let Some(g) = Geometry::compute(size, 64) {
                assert!(g
                    .heap_offset
                    .checked_add(g.chunk_count * CHUNK_SIZE)
                    .is_some());
            }
        }
    }

    #[test]
    fn regions_do_not_overlap() {
        for size in [1 << 20, 8 << 20, (1 << 30) + 12345] {
            let g = Geometry::compute(size, 128).unwrap();
            assert!(g.root_offset + g.root_size <= g.chunk_table_offset);
            assert!(
                g.chunk_table_offset + g.chunk_count * CHUNK_ENTRY_SIZE <= g.bitmap_table_offset()
            );
            assert!(g.bitmap_offset(g.chunk_count) <= g.heap_offset);
            assert!(g.heap_end() <= size);
            assert_eq!(g.heap_offset % CHUNK_SIZE, 0);
            // Little waste: at most one chunk plus the table's alignment.
            assert!(size - g.heap_end() < 2 * CHUNK_SIZE + g.heap_offset);
        }
    }
}
