//! Disk space for the heap: which chunks have their file blocks reserved, and reserving more
//! before the allocator hands them out.
//!
//! # What is reserved, and when
//!
//! A pool file has its full length from its create on, but a new file is sparse: a store through
//! the mapping into a hole makes the file system find a block there and then, and if it has none
//! the store raises `SIGBUS`. So every byte the pool writes has its block reserved first
//! ([`Space::reserve`], `posix_fallocate`):
//!
//! - the header copies, the log slots, the type table and the root: at create and at every
//!   open, by the pool (they are written from the start);
//! - the chunk table, whole: when the heap is rebuilt at create and at every open, once the
//!   chunk count is known to be sane ([`HeapSpace::reserve_table`]). Open reads all of it, and
//!   on tmpfs a read of a hole allocates a page (or raises `SIGBUS` when tmpfs is full); it is
//!   16 bytes per 16 KiB chunk, a thousandth of the heap;
//! - for the heap, a *prefix* of the chunks, `0 .. reserved`: the chunks themselves and their
//!   entries in the bitmap table (128 bytes per chunk, read at open only for the runs). A
//!   chunk's bitmap entry is written only when a run starts at the chunk, and only a taken
//!   chunk's bytes are written, so the prefix covers every write to the heap as long as every
//!   chunk taken lies in it. [`HeapSpace::cover`] makes sure it does, before a chunk is handed
//!   out (to a run, a large object or a log): a comparison with the watermark `reserved`, and
//!   only when the heap grows past it, a reservation of the next step.
//!
//! Why a prefix: the free-chunk index hands out the lowest of the best-fitting free blocks, so
//! a heap fills from its start, and a prefix needs one number, compared under the chunk lock the
//! taker holds anyway. A block taken beyond the watermark reserves the free chunks below it
//! too, which later allocations use.
//!
//! Why steps: a reservation is two system calls (the chunks and their bitmaps); growing by at
//! least [`MIN_STEP`] chunks (1 MiB) and otherwise by doubling what is reserved, up to
//! [`MAX_STEP`] (256 MiB) at a time, keeps them few: 100,000 small objects need four. A step the
//! file system has no room for is retried as exactly what is needed.
//!
//! At open the chunks in use (runs and large objects, up to the last one the chunk table names,
//! found before the table is validated) are reserved again, in one step, so that a pool whose
//! file lost its reservations (copied sparse, or on a file system that dropped unwritten blocks
//! at a power cut) gets them back before anything reads their bitmaps (on a full tmpfs, even a
//! read of a hole raises `SIGBUS`) or writes them. Blocks that are there already are
//! skipped with a seek for the first hole ([`Space::reserve`]), which disk file systems answer
//! from their extent maps; tmpfs walks its pages, about 1 ms per 64 MiB in use. A file on tmpfs
//! whose length is a multiple of 2 MiB and that has a page for every byte of it (its block
//! count says so; see `map::Space`) has no hole to fill, and open skips all of this, as if it
//! had been created with `reserve_all`. Recovery, which runs before, reserves what it writes
//! itself.
//!
//! A pool created with [`reserve_all`](crate::PoolBuilder::reserve_all) has its whole file
//! reserved, and its watermark starts at the end of the heap: nothing is reserved later.

use crate::error::Result;
use crate::layout::heap::{BITMAP_BYTES, CHUNK_ENTRY_SIZE, CHUNK_SIZE};
use crate::layout::Geometry;
use crate::map::Space;

/// The smallest step the watermark moves by: 64 chunks, 1 MiB of heap.
pub(crate) const MIN_STEP: u64 = 64;
/// The largest step: 16,384 chunks, 256 MiB of heap, so that a large heap does not reserve
/// gigabytes ahead of its use.
pub(crate) const MAX_STEP: u64 = 16 * 1024;

/// The reservations of one heap's chunks (the watermark itself lives under the chunk lock).
pub(crate) struct HeapSpace {
    space: Space,
    geometry: Geometry,
}

impl HeapSpace {
    pub(crate) fn new(space: Space, geometry: Geometry) -> HeapSpace {
        HeapSpace { space, geometry }
    }

    /// Reserves the whole chunk table.
    pub(crate) fn reserve_table(&self) -> Result<()> {
        let g = &self.geometry;
        self.space.reserve(
            g.chunk_table_offset,
            g.chunk_count * CHUNK_ENTRY_SIZE,
            "reserve disk space for the chunk table (posix_fallocate)",
        )
    }

    /// Makes chunks `0 .. end` reserved, moving the watermark `reserved` (chunks `0 ..
    /// reserved` are) a step past `end` if it is below it.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) naming the file, with the system's error (`ENOSPC`):
    /// the watermark has not moved, and nothing was written.
    #[inline]
    pub(crate) fn cover(&self, reserved: &mut u64, end: u64) -> Result<()> {
        if end <= *reserved {
            return Ok(());
        }
        self.grow(reserved, end)
    }

    /// Reserves chunks `*reserved .. end` exactly, without a step: for the chunks found in use
    /// at open.
    pub(crate) fn cover_exactly(&self, reserved: &mut u64, end: u64) -> Result<()> {
        if end <= *reserved {
            return Ok(());
        }
        self.reserve_chunks(*reserved, end)?;
        *reserved = end;
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn grow(&self, reserved: &mut u64, end: u64) -> Result<()> {
        let target = step_target(*reserved, end, self.geometry.chunk_count);
        let result = self.reserve_chunks(*reserved, target);
        let reached = match result {
            Ok(()) => target,
            // Room for what is needed now may remain where a whole step did not fit.
            Err(_) if target > end => {
                self.reserve_chunks(*reserved, end)?;
                end
            }
            Err(e) => return Err(e),
        };
        *reserved = reached;
        Ok(())
    }

    /// Reserves the blocks of chunks `from .. to`: their bitmaps and their bytes.
    fn reserve_chunks(&self, from: u64, to: u64) -> Result<()> {
        const WHAT: &str = "reserve disk space for heap chunks (posix_fallocate)";
        let g = &self.geometry;
        let count = to - from;
        self.space
            .reserve(g.bitmap_offset(from), count * BITMAP_BYTES, WHAT)?;
        self.space
            .reserve(g.chunk_offset(from), count * CHUNK_SIZE, WHAT)
    }
}

/// Where the watermark goes when chunk `end` is needed beyond `reserved`: a doubling of what is
/// reserved, at least [`MIN_STEP`] and at most [`MAX_STEP`] chunks, and at least to `end`, but
/// never past the heap's `chunk_count` chunks.
fn step_target(reserved: u64, end: u64, chunk_count: u64) -> u64 {
    let step = reserved.clamp(MIN_STEP, MAX_STEP);
    reserved
        .saturating_add(step)
        .max(end)
        .min(chunk_count.max(end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FaultPlan, Pool};

    fn watermark<R: crate::Persistent>(pool: &Pool<R>) -> u64 {
        pool.shared().heap.reserved_chunks()
    }

    #[test]
    fn the_watermark_moves_in_steps_of_two_reservations() {
        let plan = FaultPlan::new();
        let pool = Pool::<u64>::builder()
            .fault_plan(plan.clone())
            .create_simulated(64 << 20)
            .unwrap();
        assert_eq!(watermark(&pool), 0, "a new heap reserves nothing");
        let at_create = plan.reservations();
        pool.alloc(1u64).unwrap();
        assert_eq!(watermark(&pool), MIN_STEP);
        assert_eq!(plan.reservations(), at_create + 2);
        // Objects in the chunks reserved already reserve nothing more.
        for _ in 0..1000 {
            pool.alloc(1u64).unwrap();
        }
        assert_eq!(plan.reservations(), at_create + 2);
        // A large object past the watermark moves it to its end, or a doubling if that is more.
        pool.transaction(|tx| tx.alloc_slice_zeroed::<u64>(1 << 17).map(drop))
            .unwrap();
        assert_eq!(watermark(&pool), 2 * MIN_STEP);
        pool.transaction(|tx| tx.alloc_slice_zeroed::<u64>(1 << 20).map(drop))
            .unwrap();
        // 512 chunks after the first object's 64 (and the runs before it), beyond a doubling.
        assert!(watermark(&pool) > MIN_STEP + 512, "{}", watermark(&pool));
        assert_eq!(plan.reservations(), at_create + 6);
    }

    #[test]
    fn open_reserves_exactly_the_chunks_in_use() {
        let pool = Pool::<u64>::builder().create_simulated(64 << 20).unwrap();
        pool.transaction(|tx| tx.alloc_slice_zeroed::<u64>(10 * CHUNK_SIZE / 8).map(drop))
            .unwrap();
        let image = pool
            .shared()
            .media
            .domain
            .sim()
            .unwrap()
            .crash_now(|p| p.everything());
        drop(pool);
        let plan = FaultPlan::new();
        let pool = Pool::<u64>::builder()
            .fault_plan(plan.clone())
            .open_image(image)
            .unwrap();
        assert_eq!(watermark(&pool), 10);
        // The fixed areas; recovery (the image's last log is not retired: it replays the
        // commit's ops); the chunk table; the bitmaps and the chunks in use.
        assert_eq!(plan.reservations(), 5);
    }

    #[test]
    fn a_pool_reserved_whole_never_reserves_again() {
        let plan = FaultPlan::new();
        let pool = Pool::<u64>::builder()
            .reserve_all(true)
            .fault_plan(plan.clone())
            .create_simulated(8 << 20)
            .unwrap();
        assert_eq!(watermark(&pool), pool.shared().media.geometry.chunk_count);
        assert_eq!(plan.reservations(), 1, "the whole pool, once");
        plan.fail_reservations_from(1);
        pool.transaction(|tx| tx.alloc_slice_zeroed::<u64>(1 << 18).map(drop))
            .unwrap();
        assert_eq!(plan.reservations(), 1);
    }

    #[test]
    fn steps_double_between_the_bounds_and_stop_at_the_heap_end() {
        assert_eq!(step_target(0, 1, 10_000), MIN_STEP);
        assert_eq!(step_target(64, 65, 10_000), 128);
        assert_eq!(step_target(1000, 1001, 10_000), 2000);
        assert_eq!(step_target(1000, 5000, 10_000), 5000);
        assert_eq!(step_target(9000, 9001, 10_000), 10_000);
        assert_eq!(step_target(100_000, 100_001, 1 << 30), 100_000 + MAX_STEP);
        assert_eq!(step_target(0, 3, 4), 4);
    }
}
