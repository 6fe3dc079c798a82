//! A persistent FIFO queue of byte strings: [`PQueue`]`<`[`PBytes`]`>` from pmem-collections,
//! each message a byte string of its own that a dequeue frees.
//!
//! ```text
//! MessageQueue = PQueue<PBytes> ──> blocks of PBytes handles ──> each message's bytes
//! ```
//!
//! [`enqueue`](MessageQueue::enqueue) allocates the message and pushes its handle;
//! [`dequeue`](MessageQueue::dequeue) pops the handle and frees the message. Each is one
//! transaction (or part of the caller's), so after a crash every message is in the queue
//! exactly once or not at all, and none is leaked.
//!
//! ```
//! use pmem_core::{Persistent, Pool};
//! use pmem_examples::transaction;
//! use pmem_examples::messages::MessageQueue;
//!
//! #[derive(Persistent)]
//! #[repr(C)]
//! struct Root { queue: MessageQueue }
//!
//! let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
//! let queue = transaction(&pool, |tx| {
//!     let queue = MessageQueue::create(tx)?;
//!     tx.root_mut().set_queue(queue)?;
//!     queue.enqueue(tx, b"first")?;
//!     queue.enqueue(tx, b"second")?;
//!     Ok(queue)
//! })?;
//! assert_eq!(transaction(&pool, |tx| queue.dequeue(tx))?.as_deref(), Some(&b"first"[..]));
//! assert_eq!(pool.read(|r| queue.len(r))??, 1);
//! # Ok::<(), pmem_examples::Error>(())
//! ```

use pmem_collections::{PBytes, PQueue};
use pmem_core::{Persistent, Tx};

use crate::{PoolRead, Result};

/// A queue of messages in a pool: a handle that can be stored in any persistent struct. The
/// null handle is no queue; [`create`](MessageQueue::create) makes one.
#[derive(Persistent, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(transparent)]
pub struct MessageQueue {
    queue: PQueue<PBytes>,
}

impl MessageQueue {
    /// The null handle: no queue.
    pub const fn null() -> Self {
        MessageQueue {
            queue: PQueue::null(),
        }
    }

    /// Whether this is the null handle.
    pub fn is_null(self) -> bool {
        self.queue.is_null()
    }

    /// Allocates an empty queue.
    pub fn create<R: Persistent>(tx: &mut Tx<'_, R>) -> Result<Self> {
        Ok(MessageQueue {
            queue: PQueue::new(tx)?,
        })
    }

    /// Number of messages.
    pub fn len(self, r: &impl PoolRead) -> Result<u64> {
        Ok(self.queue.len(r)?)
    }

    /// Whether the queue is empty.
    pub fn is_empty(self, r: &impl PoolRead) -> Result<bool> {
        Ok(self.len(r)? == 0)
    }

    /// Appends `message` at the tail.
    pub fn enqueue<R: Persistent>(self, tx: &mut Tx<'_, R>, message: &[u8]) -> Result<()> {
        let bytes = PBytes::from_slice(tx, message)?;
        Ok(self.queue.push_back(tx, bytes)?)
    }

    /// Removes and returns the message at the head, freeing it.
    pub fn dequeue<R: Persistent>(self, tx: &mut Tx<'_, R>) -> Result<Option<Vec<u8>>> {
        let Some(bytes) = self.queue.pop_front(tx)? else {
            return Ok(None);
        };
        let message = bytes.to_vec(tx)?;
        bytes.destroy(tx)?;
        Ok(Some(message))
    }

    /// The message at the head, left in the queue.
    pub fn peek(self, r: &impl PoolRead) -> Result<Option<Vec<u8>>> {
        match self.queue.front(r)? {
            Some(bytes) => Ok(Some(bytes.to_vec(r)?)),
            None => Ok(None),
        }
    }

    /// The messages from head to tail. Yields an error (once, then ends) if the queue is
    /// damaged.
    pub fn iter<'r, A: PoolRead>(self, r: &'r A) -> impl Iterator<Item = Result<Vec<u8>>> + 'r {
        self.queue.iter(r).map(move |bytes| Ok(bytes?.to_vec(r)?))
    }

    /// Frees every message and the queue.
    pub fn destroy<R: Persistent>(self, tx: &mut Tx<'_, R>) -> Result<()> {
        for bytes in self.queue.to_vec(tx)? {
            bytes.destroy(tx)?;
        }
        Ok(self.queue.destroy(tx)?)
    }

    /// Checks the queue's invariants (its blocks end at the tail after exactly `len`
    /// messages, each a well-formed byte string) and returns the messages in order.
    pub fn verify(self, r: &impl PoolRead) -> Result<Vec<Vec<u8>>> {
        self.iter(r).collect()
    }
}
