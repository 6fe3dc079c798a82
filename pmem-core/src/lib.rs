//! Typed, crash-consistent persistent memory pools.

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(not(all(target_pointer_width = "64", target_endian = "little")))]
compile_error!("pmem-core supports 64-bit little-endian targets only: pool files are little-endian with 64-bit offsets");

// Lets the derive's `::pmem_core::` paths resolve inside this crate's own tests.
extern crate self as pmem_core;

mod error;
pub mod fingerprint;
pub mod persist;
mod persistent;
mod ptr;
mod tx;

pub use error::{Error, Location, Result};
pub use persistent::{FieldLayout, Persistent, TypeLayout};
pub use pmem_derive::Persistent;
pub use ptr::{PPtr, PSlice};
pub use tx::PMut;
