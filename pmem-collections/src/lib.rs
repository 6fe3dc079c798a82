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
