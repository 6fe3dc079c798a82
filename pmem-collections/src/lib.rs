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
