//! Hash containers: [`PHashMap`] and [`PHashSet`], with open addressing (linear probing) over
//! a table of slots that hold the entries inline.
//!
//! # The hash
//!
//! Keys are hashed by their bytes with a keyed folded multiply under a per-map random key; see
//! [`PHashMap`]'s documentation on keys and the notes below.
//!
//! The hash is part of the on-media format: it must give the same value in every run and with
//! every compiler, which `std`'s `Hash` implementations do not promise. So the maps hash the
//! key's bytes ([`pmem_core::bytes_of`]) with a function this crate fixes, and compare keys by
//! the same bytes. The function is keyed with 128 bits each map draws at random when it is
//! created and keeps in its metadata, so an attacker who chooses keys but cannot read the pool
//! file cannot aim them at one slot (hash flooding). It is the folded multiply of foldhash and
//! aHash's portable path, not a cryptographic MAC; SipHash-1-3 (`std`'s) would resist more, at
//! several times the cost of a whole checked lookup of a `u64` key.

mod entry;
mod iter;
mod keyed;
mod map;
mod set;

pub use entry::{Entry, OccupiedEntry, VacantEntry};
pub use iter::{Iter, Keys, Values};
pub use map::{HashMapView, HashMeta, PHashMap, Slot, MIN_SLOTS, TOMBSTONE};
pub use set::{PHashSet, SetIter};
