//! One module per store, each implementing [`Counters`](crate::run::Counters) and
//! [`Index`](crate::run::Index) with the durability settings of the README.

pub mod lmdb;
pub mod pmem;
pub mod redb;
pub mod sqlite;
