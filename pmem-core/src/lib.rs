//! Typed, crash-consistent persistent memory pools.
//!
//! A pool is a memory-mapped file holding plain `#[repr(C)]` structs linked by typed persistent
//! pointers ([`PPtr`]). Every change is made in a failure-atomic [transaction](Pool::transaction):
//! a crash or power cut at any instant leaves the pool as it was before the transaction or after
//! it, never in between. The [`crash`] module replays a workload against a simulated
//! persistence domain and checks every state a power cut could leave behind.

#![warn(missing_docs)]

#[cfg(not(all(target_pointer_width = "64", target_endian = "little")))]
compile_error!("pmem-core supports 64-bit little-endian targets only: pool files are little-endian with 64-bit offsets");

// Lets the derive's `::pmem_core::` paths resolve inside this crate's own tests.
extern crate self as pmem_core;

pub mod check;
pub mod crash;
mod error;
pub mod fingerprint;
mod heap;
pub mod inspect;
mod layout;
mod log;
mod map;
mod media;
pub mod persist;
mod persistent;
mod pool;
mod ptr;
mod region;
mod tx;

pub use error::{Error, Location, Result};
pub use heap::{ClassStats, HeapStats};
pub use log::recovery::RecoveryReport;
pub use persist::{FlushMode, FlushStats, PoolImage};
pub use persistent::{
    type_info, FieldLayout, Persistent, PointerSlot, SlotKind, TypeInfo, TypeLayout,
};
pub use pmem_derive::Persistent;
pub use pool::{Objects, Pool, PoolBuilder, PoolInfo, PoolStats, ReadGuard, Reader};
pub use ptr::{PPtr, PSlice};
pub use tx::{PMut, SliceMut, Tx};

/// The README's examples, compiled and run as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
