//! Generic persistent containers for pmem pools.
//!
//! Each container is a handle: a `#[repr(transparent)]` persistent pointer to its metadata, so
//! it can be a field of any persistent struct. Its read-only operations take anything that
//! implements [`PoolRead`] (a transaction or a reader); its changes take a [`Tx`] and are as
//! failure-atomic as the transaction they run in.
//!
//! [`PoolRead`]: pmem_core::PoolRead
//! [`Tx`]: pmem_core::Tx

#![warn(missing_docs)]

pub mod error;

pub use error::{Error, Inconsistency, Result};
pub mod bytes;
pub mod queue;
pub mod string;
pub mod vec;

pub use bytes::PBytes;
pub use queue::PQueue;
pub use string::PString;
pub use vec::PVec;
