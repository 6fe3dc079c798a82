//! [`Iter`]: a [`PQueue`]'s elements from front to back, block by block, each walk step
//! checked and the walk bounded by the length.

use std::collections::HashSet;

use pmem_core::{PPtr, Persistent, PoolRead};

use super::{PQueue, QBlock, QueueMeta};
use crate::{Error, Inconsistency, Result};

/// Iterator over a [`PQueue`]'s elements, from [`PQueue::iter`]. Yields an error (once, then
/// ends) if the queue is damaged: a block list shorter or longer than the length, or ending
/// somewhere other than the tail.
///
/// ```
/// # use pmem_core::{Persistent, Pool};
/// # use pmem_collections::PQueue;
/// # #[derive(Persistent)] #[repr(C)] struct Root { q: PQueue<u64> }
/// let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
/// let q = pool.transaction(|tx| {
///     let q = PQueue::new(tx)?;
///     for i in 0..300 {
///         q.push_back(tx, i)?; // three blocks of 128
///     }
///     Ok::<_, pmem_collections::Error>(q)
/// })?;
/// let sum: u64 = pool.read(|r| q.iter(r).map(|x| x.copied()).sum::<Result<u64, _>>())??;
/// assert_eq!(sum, 299 * 300 / 2);
/// # Ok::<(), pmem_collections::Error>(())
/// ```
#[derive(Debug)]
pub struct Iter<'r, A, T: Persistent> {
    r: &'r A,
    walk: Option<Walk<'r, T>>,
    error: Option<Error>,
}

#[derive(Debug)]
struct Walk<'r, T: Persistent> {
    meta: QueueMeta<T>,
    /// The block being read (null before the first), its successor and its slots.
    block: PPtr<QBlock<T>>,
    next: PPtr<QBlock<T>>,
    slots: &'r [T],
    pos: u64,
    /// Elements still to yield.
    left: u64,
    /// Blocks the length allows still to visit: more is a cycle.
    blocks_left: u64,
    /// Blocks visited: a length damaged to be huge still cannot make a cycle walk forever.
    visited: HashSet<u64>,
}

impl<'r, A: PoolRead, T: Persistent + Copy> Iter<'r, A, T> {
    pub(super) fn new(r: &'r A, meta: Result<QueueMeta<T>>) -> Self {
        match meta {
            Ok(meta) => Iter {
                r,
                walk: Some(Walk {
                    block: PPtr::null(),
                    next: meta.head,
                    slots: &[],
                    pos: 0,
                    left: meta.len,
                    blocks_left: PQueue::<T>::max_blocks(&meta),
                    visited: HashSet::new(),
                    meta,
                }),
                error: None,
            },
            Err(e) => Iter {
                r,
                walk: None,
                error: Some(e),
            },
        }
    }

    fn step(r: &'r A, w: &mut Walk<'r, T>) -> Result<Option<&'r T>> {
        let at_tail = !w.block.is_null() && w.block == w.meta.tail;
        if w.left == 0 {
            let ends_at_tail = w.meta.head.is_null() || (at_tail && w.pos == w.meta.tail_pos);
            if !ends_at_tail {
                return Err(Inconsistency::QueueTailMismatch {
                    last: w.block.offset(),
                    tail: w.meta.tail.offset(),
                }
                .into());
            }
            return Ok(None);
        }
        let limit = if at_tail {
            w.meta.tail_pos
        } else {
            PQueue::<T>::block_len()
        };
        if w.block.is_null() || w.pos == limit {
            let found = w.meta.len - w.left;
            if at_tail || w.next.is_null() {
                return Err(Inconsistency::QueueLengthMismatch {
                    len: w.meta.len,
                    found,
                }
                .into());
            }
            if w.blocks_left == 0 || !w.visited.insert(w.next.offset()) {
                return Err(Inconsistency::QueueTooLong.into());
            }
            w.blocks_left -= 1;
            w.pos = if w.block.is_null() {
                w.meta.head_pos
            } else {
                0
            };
            let (block, slots) = PQueue::<T>::block(r, w.next)?;
            w.block = w.next;
            w.next = block.next;
            w.slots = slots;
            return Self::step(r, w);
        }
        let value = w
            .slots
            .get(w.pos as usize)
            .ok_or(Inconsistency::QueueBlockRange {
                block: w.block.offset(),
                start: w.pos,
                end: limit,
                slots: w.slots.len() as u64,
            })?;
        w.pos += 1;
        w.left -= 1;
        Ok(Some(value))
    }
}

impl<'r, A: PoolRead, T: Persistent + Copy> Iterator for Iter<'r, A, T> {
    type Item = Result<&'r T>;

    fn next(&mut self) -> Option<Result<&'r T>> {
        if let Some(e) = self.error.take() {
            return Some(Err(e));
        }
        let walk = self.walk.as_mut()?;
        match Self::step(self.r, walk) {
            Ok(Some(value)) => Some(Ok(value)),
            Ok(None) => {
                self.walk = None;
                None
            }
            Err(e) => {
                self.walk = None;
                Some(Err(e))
            }
        }
    }
}
