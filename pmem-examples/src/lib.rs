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

pub mod args;
pub mod btree;
pub mod cli;
pub mod hashmap;
pub mod queue;
pub mod string_store;

use pmem_core::{PPtr, PSlice, Persistent, Reader, Result, Tx};

/// Read access to a pool, shared by [`Tx`] (which sees its own uncommitted writes) and
/// [`Reader`], so that a structure's read-only operations are written once.
pub trait PoolRead {
    /// The object `ptr` points at, checked for bounds, alignment and type.
    fn get<T: Persistent>(&self, ptr: PPtr<T>) -> Result<&T>;
    /// The elements of `slice`, checked like [`get`](PoolRead::get).
    fn get_slice<T: Persistent>(&self, slice: PSlice<T>) -> Result<&[T]>;
}

impl<R: Persistent> PoolRead for Tx<'_, R> {
    fn get<T: Persistent>(&self, ptr: PPtr<T>) -> Result<&T> {
        Tx::get(self, ptr)
    }
    fn get_slice<T: Persistent>(&self, slice: PSlice<T>) -> Result<&[T]> {
        Tx::get_slice(self, slice)
    }
}

impl<R: Persistent> PoolRead for Reader<'_, R> {
    fn get<T: Persistent>(&self, ptr: PPtr<T>) -> Result<&T> {
        Reader::get(self, ptr)
    }
    fn get_slice<T: Persistent>(&self, slice: PSlice<T>) -> Result<&[T]> {
        Reader::get_slice(self, slice)
    }
}

/// Reads a byte string stored as a `PSlice<u8>`; the null slice is the empty string.
pub fn read_bytes(r: &impl PoolRead, s: PSlice<u8>) -> Result<Vec<u8>> {
    if s.is_null() {
        return Ok(Vec::new());
    }
    Ok(r.get_slice(s)?.to_vec())
}

/// A corruption found by a structure's own consistency walk (a pointer cycle, a wrong count).
pub(crate) fn corrupt(what: impl Into<String>) -> pmem_core::Error {
    pmem_core::Error::InvalidArgument(format!("structure is inconsistent: {}", what.into()))
}
