//! Generic persistent containers for pmem pools.
//!
//! Each container is a handle: a `#[repr(transparent)]` persistent pointer to its metadata, so
//! it can be a field of any persistent struct. Its read-only operations take anything that
//! implements [`PoolRead`] (a transaction or a reader); its changes take a [`Tx`] and are as
//! failure-atomic as the transaction they run in.
//!
//! | container | like | layout | growth |
//! |---|---|---|---|
//! | [`PVec<T>`] | `Vec<T>` | 32 segments of doubling size | allocates a segment, copies nothing |
//! | [`PBytes`] | `Vec<u8>` | one contiguous buffer | doubles into a fresh buffer (not logged) |
//! | [`PString`] | `String` | a [`PBytes`], UTF-8 checked on every read | as [`PBytes`] |
//! | [`PQueue<T>`] | `VecDeque<T>` as a FIFO | a list of fixed-size blocks | allocates a block |
//!
//! Each module documents its on-media layout, its fences per operation and its crash
//! guarantees. Operations fail with [`Error`]: the pool's error, an argument out of range
//! (where `std` would panic), or an [`Inconsistency`] found in the pool's bytes (a damaged or
//! hostile file): never a panic, and every walk is bounded.
//!
//! | map | like | layout |
//! |---|---|---|
//! | [`PHashMap<K, V>`], [`PHashSet<K>`] | `HashMap`, `HashSet` | open addressing, the entries inline in the table; keys hashed by their bytes under a per-map random key (module [`hash`]) |
//! | [`PBTreeMap<K, V>`] | `BTreeMap` | a B-tree of order 8 (module [`btree`]) |
//!
//! [`PoolRead`]: pmem_core::PoolRead
//! [`Tx`]: pmem_core::Tx

#![warn(missing_docs)]

pub mod btree;
pub mod bytes;
pub mod error;
pub mod hash;
pub mod queue;
pub mod string;
pub mod vec;

pub use btree::PBTreeMap;
pub use bytes::PBytes;
pub use error::{Error, Inconsistency, Result};
pub use hash::{PHashMap, PHashSet};
pub use queue::PQueue;
pub use string::PString;
pub use vec::PVec;

#[cfg(test)]
mod tests {
    fn send_sync<T: Send + Sync>() {}

    /// Handles are plain offsets, views and iterators borrow a reader: all may cross threads.
    #[test]
    fn handles_and_errors_are_send_and_sync() {
        send_sync::<crate::PHashMap<u64, u64>>();
        send_sync::<crate::PHashSet<u64>>();
        send_sync::<crate::PBTreeMap<u64, u64>>();
        send_sync::<crate::Error>();
        send_sync::<crate::hash::Iter<'static, pmem_core::Reader<'static, u64>, u64, u64>>();
        send_sync::<crate::btree::Range<'static, pmem_core::Reader<'static, u64>, u64, u64>>();
    }
}
