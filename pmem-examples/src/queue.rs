//! A persistent FIFO queue of byte strings: a singly linked list with a head and a tail.
//!
//! ```text
//! PQueue ──> QueueMeta { head, tail, len }
//!                         │      └─────────────────────────┐
//!                         v                                v
//!                   QNode { data, next } ──> QNode ──> QNode { next: null }
//!                           │
//!                           v
//!                   PSlice<u8> (the message; null when empty)
//! ```
//!
//! [`enqueue`](PQueue::enqueue) allocates the message and its node and links them at the tail;
//! [`dequeue`](PQueue::dequeue) unlinks the head and frees it. Each is one transaction (or part
//! of the caller's), so after a crash every message is in the queue exactly once or not at all.
//!
//! ```
//! use pmem_core::{Persistent, Pool};
//! use pmem_examples::transaction;
//! use pmem_examples::queue::PQueue;
//!
//! #[derive(Persistent)]
//! #[repr(C)]
//! struct Root { queue: PQueue }
//!
//! let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
//! let queue = transaction(&pool, |tx| {
//!     let queue = PQueue::create(tx)?;
//!     tx.root_mut().set_queue(queue)?;
//!     queue.enqueue(tx, b"first")?;
//!     queue.enqueue(tx, b"second")?;
//!     Ok(queue)
//! })?;
//! assert_eq!(transaction(&pool, |tx| queue.dequeue(tx))?.as_deref(), Some(&b"first"[..]));
//! assert_eq!(pool.read(|r| queue.len(r))??, 1);
//! # Ok::<(), pmem_examples::Error>(())
//! ```

use pmem_core::{PPtr, PSlice, Persistent, Tx};

use crate::{read_bytes, Inconsistency, PoolRead, Result};

/// A queue in a pool: a handle (a persistent pointer to its metadata) that can be stored in any
/// persistent struct. The null handle is no queue; [`create`](PQueue::create) makes one.
#[derive(Persistent, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(transparent)]
pub struct PQueue {
    meta: PPtr<QueueMeta>,
}

/// The queue's metadata.
#[derive(Persistent, Debug, Clone, Copy)]
#[repr(C)]
pub struct QueueMeta {
    /// The oldest message's node; null when the queue is empty.
    pub head: PPtr<QNode>,
    /// The newest message's node; null when the queue is empty.
    pub tail: PPtr<QNode>,
    /// Number of messages.
    pub len: u64,
}

/// One message.
#[derive(Persistent, Debug, Clone, Copy)]
#[repr(C)]
pub struct QNode {
    /// The next newer message.
    pub next: PPtr<QNode>,
    /// The message's bytes (the null slice when it is empty).
    pub data: PSlice<u8>,
}

impl PQueue {
    /// The null handle: no queue.
    pub const fn null() -> Self {
        PQueue { meta: PPtr::null() }
    }

    /// Whether this is the null handle.
    pub fn is_null(self) -> bool {
        self.meta.is_null()
    }

    /// Allocates an empty queue.
    pub fn create<R: Persistent>(tx: &mut Tx<'_, R>) -> Result<Self> {
        let meta = tx.alloc(QueueMeta {
            head: PPtr::null(),
            tail: PPtr::null(),
            len: 0,
        })?;
        Ok(PQueue { meta })
    }

    fn meta(self, r: &impl PoolRead) -> Result<QueueMeta> {
        Ok(*r.get(self.meta)?)
    }

    /// Number of messages.
    pub fn len(self, r: &impl PoolRead) -> Result<u64> {
        Ok(self.meta(r)?.len)
    }

    /// Whether the queue is empty.
    pub fn is_empty(self, r: &impl PoolRead) -> Result<bool> {
        Ok(self.len(r)? == 0)
    }

    /// Appends `message` at the tail.
    pub fn enqueue<R: Persistent>(self, tx: &mut Tx<'_, R>, message: &[u8]) -> Result<()> {
        let meta = self.meta(tx)?;
        let data = if message.is_empty() {
            PSlice::null()
        } else {
            tx.alloc_slice(message)?
        };
        let node = tx.alloc(QNode {
            next: PPtr::null(),
            data,
        })?;
        if meta.tail.is_null() {
            tx.write(
                self.meta,
                QueueMeta {
                    head: node,
                    tail: node,
                    len: 1,
                },
            )?;
            Ok(())
        } else {
            tx.edit(meta.tail)?.set_next(node)?;
            let mut handle = tx.edit(self.meta)?;
            handle.set_tail(node)?;
            Ok(handle.set_len(meta.len + 1)?)
        }
    }

    /// Removes and returns the message at the head.
    pub fn dequeue<R: Persistent>(self, tx: &mut Tx<'_, R>) -> Result<Option<Vec<u8>>> {
        let meta = self.meta(tx)?;
        if meta.head.is_null() {
            return Ok(None);
        }
        let node = *tx.get(meta.head)?;
        let message = read_bytes(tx, node.data)?;
        let tail = if node.next.is_null() {
            PPtr::null()
        } else {
            meta.tail
        };
        tx.write(
            self.meta,
            QueueMeta {
                head: node.next,
                tail,
                len: meta.len.saturating_sub(1),
            },
        )?;
        if !node.data.is_null() {
            tx.free_slice(node.data)?;
        }
        tx.free(meta.head)?;
        Ok(Some(message))
    }

    /// The message at the head, left in the queue.
    pub fn peek(self, r: &impl PoolRead) -> Result<Option<Vec<u8>>> {
        let head = self.meta(r)?.head;
        if head.is_null() {
            return Ok(None);
        }
        Ok(Some(read_bytes(r, r.get(head)?.data)?))
    }

    /// The messages from head to tail.
    pub fn iter<'r, A: PoolRead>(self, r: &'r A) -> Iter<'r, A> {
        let (next, left, error) = match self.meta(r) {
            Ok(meta) => (meta.head, meta.len, None),
            Err(e) => (PPtr::null(), 0, Some(e)),
        };
        Iter {
            r,
            next,
            left,
            error,
        }
    }

    /// Frees every message and the queue.
    pub fn destroy<R: Persistent>(self, tx: &mut Tx<'_, R>) -> Result<()> {
        let meta = self.meta(tx)?;
        let mut p = meta.head;
        let mut freed = 0;
        while !p.is_null() {
            freed += 1;
            if freed > meta.len {
                return Err(Inconsistency::QueueTooLong.into());
            }
            let node = *tx.get(p)?;
            if !node.data.is_null() {
                tx.free_slice(node.data)?;
            }
            tx.free(p)?;
            p = node.next;
        }
        Ok(tx.free(self.meta)?)
    }

    /// Checks the queue's invariants: the list from the head ends at the tail after exactly
    /// `len` nodes, and head and tail are both null or both not. Returns the messages in order.
    pub fn verify(self, r: &impl PoolRead) -> Result<Vec<Vec<u8>>> {
        let meta = self.meta(r)?;
        if meta.head.is_null() != meta.tail.is_null() {
            return Err(Inconsistency::QueueEndsDisagree {
                head: meta.head.offset(),
                tail: meta.tail.offset(),
            }
            .into());
        }
        let mut out = Vec::new();
        let mut p = meta.head;
        let mut last = PPtr::null();
        while !p.is_null() {
            if out.len() as u64 >= meta.len {
                return Err(Inconsistency::QueueTooLong.into());
            }
            let node = *r.get(p)?;
            out.push(read_bytes(r, node.data)?);
            last = p;
            p = node.next;
        }
        if last != meta.tail {
            return Err(Inconsistency::QueueTailMismatch {
                last: last.offset(),
                tail: meta.tail.offset(),
            }
            .into());
        }
        if out.len() as u64 != meta.len {
            return Err(Inconsistency::QueueLengthMismatch {
                len: meta.len,
                found: out.len() as u64,
            }
            .into());
        }
        Ok(out)
    }
}

/// Iterator over a [`PQueue`]'s messages, head first; see [`PQueue::iter`]. Yields an error
/// (once, then ends) if the queue is damaged.
#[derive(Debug)]
pub struct Iter<'r, A> {
    r: &'r A,
    next: PPtr<QNode>,
    /// Nodes the length says are left: a longer list has a cycle.
    left: u64,
    error: Option<crate::Error>,
}

impl<A: PoolRead> Iterator for Iter<'_, A> {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Result<Vec<u8>>> {
        if let Some(e) = self.error.take() {
            return Some(Err(e));
        }
        if self.next.is_null() {
            return None;
        }
        let step = || -> Result<(PPtr<QNode>, Vec<u8>)> {
            if self.left == 0 {
                return Err(Inconsistency::QueueTooLong.into());
            }
            let node = self.r.get(self.next)?;
            Ok((node.next, read_bytes(self.r, node.data)?))
        };
        match step() {
            Ok((next, message)) => {
                self.next = next;
                self.left -= 1;
                Some(Ok(message))
            }
            Err(e) => {
                self.next = PPtr::null();
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmem_core::Pool;

    #[derive(Persistent)]
    #[repr(C)]
    struct Root {
        queue: PQueue,
    }

    fn pool_with_queue() -> (Pool<Root>, PQueue) {
        let pool = Pool::<Root>::builder().create_simulated(4 << 20).unwrap();
        let queue = crate::transaction(&pool, |tx| {
            let q = PQueue::create(tx)?;
            tx.root_mut().set_queue(q)?;
            Ok(q)
        })
        .unwrap();
        (pool, queue)
    }

    /// A node linked back to itself is a cycle the walks stop at, with a typed inconsistency
    /// that `transaction` gives back after rolling the transaction back.
    #[test]
    fn a_cycle_is_a_typed_inconsistency() {
        let (pool, q) = pool_with_queue();
        crate::transaction(&pool, |tx| q.enqueue(tx, b"a")).unwrap();
        crate::transaction(&pool, |tx| {
            let head = tx.get(q.meta)?.head;
            Ok(tx.edit(head)?.set_next(head)?)
        })
        .unwrap();
        let walked = pool
            .read(|r| q.iter(r).collect::<Result<Vec<_>>>())
            .unwrap();
        assert!(
            matches!(
                walked,
                Err(crate::Error::Inconsistent(Inconsistency::QueueTooLong))
            ),
            "{walked:?}"
        );
        let destroyed = crate::transaction(&pool, |tx| {
            tx.root_mut().set_queue(PQueue::null())?;
            q.destroy(tx)
        });
        match destroyed {
            Err(e @ crate::Error::Inconsistent(Inconsistency::QueueTooLong)) => assert_eq!(
                e.to_string(),
                "structure is inconsistent: more queue nodes than the length"
            ),
            other => panic!("expected QueueTooLong, got {other:?}"),
        }
        assert_eq!(
            pool.read(|r| r.root().queue).unwrap(),
            q,
            "the failed transaction was rolled back"
        );
    }

    #[test]
    fn fifo_order_including_empty_messages() {
        let (pool, q) = pool_with_queue();
        for m in [&b"a"[..], b"", b"ccc"] {
            crate::transaction(&pool, |tx| q.enqueue(tx, m)).unwrap();
        }
        let all: Vec<Vec<u8>> = pool
            .read(|r| q.iter(r).collect::<Result<_>>())
            .unwrap()
            .unwrap();
        assert_eq!(all, [b"a".to_vec(), vec![], b"ccc".to_vec()]);
        assert_eq!(
            pool.read(|r| q.peek(r)).unwrap().unwrap(),
            Some(b"a".to_vec())
        );
        for expected in [&b"a"[..], b"", b"ccc"] {
            let got = crate::transaction(&pool, |tx| q.dequeue(tx)).unwrap();
            assert_eq!(got.as_deref(), Some(expected));
            pool.read(|r| q.verify(r)).unwrap().unwrap();
        }
        assert_eq!(crate::transaction(&pool, |tx| q.dequeue(tx)).unwrap(), None);
        assert_eq!(pmem_core::check::check(&pool).live_objects, 1);
    }

    #[test]
    fn interleaved_enqueue_and_dequeue_in_one_transaction() {
        let (pool, q) = pool_with_queue();
        crate::transaction(&pool, |tx| {
            q.enqueue(tx, b"1")?;
            q.enqueue(tx, b"2")?;
            assert_eq!(q.dequeue(tx)?.as_deref(), Some(&b"1"[..]));
            q.enqueue(tx, b"3")?;
            Ok(())
        })
        .unwrap();
        assert_eq!(
            pool.read(|r| q.verify(r)).unwrap().unwrap(),
            [b"2".to_vec(), b"3".to_vec()]
        );
        let report = pmem_core::check::check(&pool);
        assert!(
            report.is_healthy() && report.unreachable.is_empty(),
            "{report}"
        );
    }

    #[test]
    fn destroy_frees_everything() {
        let (pool, q) = pool_with_queue();
        crate::transaction(&pool, |tx| {
            for i in 0..50u32 {
                q.enqueue(tx, &i.to_le_bytes())?;
            }
            Ok(())
        })
        .unwrap();
        crate::transaction(&pool, |tx| {
            q.destroy(tx)?;
            Ok(tx.root_mut().set_queue(PQueue::null())?)
        })
        .unwrap();
        assert_eq!(pmem_core::check::check(&pool).live_objects, 0);
    }
}
