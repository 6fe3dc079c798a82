//! Persistent data structures and programs built on the public pmem-core API.
//!
//! Each module is a small, self-contained example of a crash-consistent structure, written the
//! way a user of `pmem-core` would write it: `#[derive(Persistent)]` types, typed pointers, and
//! every change inside a transaction.
//!
//! | module | structure | program |
//! |---|---|---|
//! | [`string_store`] | one variable-length string (the libpmemobj tutorial) | `string-writer`, `string-reader` |
//! | [`PHashMap`](pmem_collections::PHashMap) of `pmem-collections` | hash map `u64 -> u64` | `hashmap-cli` |
//! | [`PBTreeMap`](pmem_collections::PBTreeMap) of `pmem-collections` | B-tree map `u64 -> u64` | `btree-cli` |
//! | [`messages`] | FIFO queue of byte strings, a `PQueue<PBytes>` of `pmem-collections` | `queue-cli` |
//!
//! [`cli`] holds the command-line front ends the programs share, [`args`] their argument parsing.
//!
//! The `demo` program kills a process in the middle of a transaction and shows recovery.
//!
//! The structures are handles (`#[repr(transparent)]` persistent pointers to their metadata), so
//! they can be fields of any root type, and their operations work in any `Tx<'_, R>`. Read-only
//! operations take anything that implements [`PoolRead`]: a transaction or a reader.
//!
//! The programs fail with [`Error`]: the pool's error, or a container's (an inconsistency its
//! walk found, an argument out of range). [`transaction`] runs a closure that returns it and
//! gives it back typed.

pub mod args;
pub mod cli;
mod error;
pub mod messages;
pub mod string_store;

pub use error::{transaction, Error, Result};
use pmem_core::PSlice;
pub use pmem_core::PoolRead;

/// Reads a byte string stored as a `PSlice<u8>`; the null slice is the empty string.
pub fn read_bytes(r: &impl PoolRead, s: PSlice<u8>) -> pmem_core::Result<Vec<u8>> {
    if s.is_null() {
        return Ok(Vec::new());
    }
    Ok(r.get_slice(s)?.to_vec())
}
