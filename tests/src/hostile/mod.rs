//! Hostile pool files: valid pools of a small schema, damaged at the level of the on-media
//! structures, and the one body every such file goes through (open, check, read, write, reopen).
//!
//! The same bodies serve three callers: the structure-aware generator (`tests/hostile_files.rs`),
//! the coverage-guided fuzz targets (`fuzz/`), and the replay of every input that ever failed, so a
//! regression replayed on stable runs exactly the code the fuzzer ran.
//!
//! A body returns `Err` for a disagreement between the library and the model of what was written
//! (an allocator that counts differently, data that did not survive a reopen); a panic, signal or
//! hang is caught by whoever runs it (the generator runs cases in child processes).

pub mod batch;
pub mod case;
pub mod format;
pub mod mutate;
pub mod seeds;
pub mod sparse;
pub mod targets;

use pmem_core::{PPtr, PSlice, Persistent};

/// The root of every hostile pool.
#[derive(Persistent, Debug)]
#[repr(C)]
pub struct Root {
    /// Nodes pushed and not popped.
    pub count: u64,
    /// A list of nodes.
    pub head: PPtr<Node>,
    /// One large object (a span of chunks).
    pub big: PPtr<Big>,
    /// A slice of words, of a size chosen by the seed.
    pub spare: PSlice<u64>,
}

/// A list node, holding a slice of words.
#[derive(Persistent, Debug)]
#[repr(C)]
pub struct Node {
    /// A value chosen by whoever wrote the node.
    pub value: u64,
    /// The next node.
    pub next: PPtr<Node>,
    /// Words of payload.
    pub items: PSlice<u64>,
}

/// A large object: 40,000 bytes, three chunks.
#[derive(Persistent, Debug)]
#[repr(C)]
pub struct Big {
    /// Its words.
    pub words: [u64; 5000],
}
