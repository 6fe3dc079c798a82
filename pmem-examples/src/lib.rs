//! Persistent data structures and programs built on the public pmem-core API.
//!
//! Each module is a small, self-contained example of a crash-consistent structure, written the
//! way a user of `pmem-core` would write it: `#[derive(Persistent)]` types, typed pointers, and
//! every change inside a transaction.
//!
//! | module | structure | program |
//! |---|---|---|
//! | [`string_store`] | one variable-length string (the libpmemobj tutorial) | `string-writer`, `string-reader` |
//! | [`hashmap`] | chained hash map `u64 -> u64`, resized inside a transaction | `hashmap-cli` |
//! | [`btree`] | B-tree map `u64 -> u64` of order 8, with rebalancing removal | `btree-cli` |
//! | [`queue`] | FIFO queue of byte strings (a linked list with head and tail) | `queue-cli` |
//!
//! [`cli`] holds the command-line front ends the programs share, [`args`] their argument parsing.
//!
//! The `demo` program kills a process in the middle of a transaction and shows recovery.
//!
//! The structures are handles (`#[repr(transparent)]` persistent pointers to their metadata), so
//! they can be fields of any root type, and their operations work in any `Tx<'_, R>`. Read-only
//! operations take anything that implements [`PoolRead`]: a transaction or a reader.
//!
//! The structures fail with [`Error`]: the pool's error, or an [`Inconsistency`] their own walk
//! found (a cycle, a count that does not match). [`transaction`] runs a closure that returns it
//! and gives it back typed.

pub mod args;
pub mod btree;
pub mod cli;
mod error;
pub mod hashmap;
pub mod queue;
pub mod string_store;

pub use error::{transaction, Error, Inconsistency, Result};
use pmem_core::{PPtr, PSlice, Persistent, Reader, Tx};

/// Read access to a pool, shared by [`Tx`] (which sees its own uncommitted writes) and
/// [`Reader`], so that a structure's read-only operations are written once.
pub trait PoolRead {
    /// The object `ptr` points at, checked for bounds, alignment and type.
    fn get<T: Persistent>(&self, ptr: PPtr<T>) -> pmem_core::Result<&T>;
    /// The elements of `slice`, checked like [`get`](PoolRead::get).
    fn get_slice<T: Persistent>(&self, slice: PSlice<T>) -> pmem_core::Result<&[T]>;
}

impl<R: Persistent> PoolRead for Tx<'_, R> {
    fn get<T: Persistent>(&self, ptr: PPtr<T>) -> pmem_core::Result<&T> {
        Tx::get(self, ptr)
    }
    fn get_slice<T: Persistent>(&self, slice: PSlice<T>) -> pmem_core::Result<&[T]> {
        Tx::get_slice(self, slice)
    }
}

impl<R: Persistent> PoolRead for Reader<'_, R> {
    fn get<T: Persistent>(&self, ptr: PPtr<T>) -> pmem_core::Result<&T> {
        Reader::get(self, ptr)
    }
    fn get_slice<T: Persistent>(&self, slice: PSlice<T>) -> pmem_core::Result<&[T]> {
        Reader::get_slice(self, slice)
    }
}

/// Reads a byte string stored as a `PSlice<u8>`; the null slice is the empty string.
pub fn read_bytes(r: &impl PoolRead, s: PSlice<u8>) -> pmem_core::Result<Vec<u8>> {
    if s.is_null() {
        return Ok(Vec::new());
    }
    Ok(r.get_slice(s)?.to_vec())
}
