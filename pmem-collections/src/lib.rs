//! Generic persistent containers for pmem pools.
//!
//! Each container is a handle: a `#[repr(transparent)]` persistent pointer to its metadata, so
//! it can be a field of any persistent struct. Its read-only operations take anything that
//! implements [`PoolRead`] (a transaction or a reader); its changes take a [`Tx`] and are as
//! failure-atomic as the transaction they run in.
//!
//! - [`PHashMap`], [`PHashSet`]: hash containers, keys hashed by their bytes under a per-map
//!   random key (module [`hash`]);
//! - [`PBTreeMap`]: an ordered map, a B-tree (module [`btree`]).
//!
//! [`PoolRead`]: pmem_core::PoolRead
//! [`Tx`]: pmem_core::Tx

#![warn(missing_docs)]

pub mod btree;
pub mod error;
pub mod hash;

pub use btree::PBTreeMap;
pub use error::{Error, Inconsistency, Result};
pub use hash::{PHashMap, PHashSet};

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
