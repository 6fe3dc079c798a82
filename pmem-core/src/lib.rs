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
pub mod error;
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
mod read_trait;
mod region;
mod shared;
mod tx;

pub use error::{AbortCause, Error, Location, Result};
pub use heap::{ClassStats, HeapStats};
pub use log::recovery::RecoveryReport;
pub use persist::{
    CpuId, FaultPlan, FlushMode, FlushStats, LogWrites, LogWritesChoice, PoolImage, Vendor,
};
pub use persistent::{
    bytes_of, type_info, zeroed, FieldLayout, Persistent, PointerSlot, SlotKind, TypeInfo,
    TypeLayout, MAX_ALIGN,
};
/// Derives [`Persistent`](trait@Persistent), after checking at compile time that the struct can
/// live in a pool, and generates its write handle (`<Name>Mut`) with a setter per field.
///
/// ```
/// use pmem_core::{Persistent, Pool, PPtr};
///
/// #[derive(Persistent)]
/// #[repr(C)]
/// struct Point {
///     x: i64,
///     y: i64,
/// }
///
/// #[derive(Persistent)]
/// #[repr(C)]
/// struct Shape {
///     corners: [Point; 4],
///     count: u32,
///     visible: u8,  // not `bool`: a pool byte may hold any value
///     _pad: [u8; 3], // padding is refused, so it is spelled out
///     next: PPtr<Shape>,
/// }
///
/// let pool = Pool::<Shape>::builder().create_simulated(2 << 20)?;
/// pool.transaction(|tx| {
///     let mut shape = tx.root_mut();
///     shape.set_count(1)?;                           // one field, logged alone
///     shape.corners_mut().at(2).set_x(7)?;           // a field of an array element
///     shape.corners_mut().set_at(3, Point { x: 1, y: 2 }) // a whole element
/// })?;
/// pool.read(|r| {
///     assert_eq!(r.root().corners[2].x, 7);
///     assert_eq!(r.root().corners[3].y, 2);
/// })?;
/// // A different definition of `Shape` would be refused when opening a pool made with this one.
/// assert_ne!(<Shape as Persistent>::FINGERPRINT, <Point as Persistent>::FINGERPRINT);
/// # Ok::<(), pmem_core::Error>(())
/// ```
pub use pmem_derive::Persistent;
pub use pool::{Objects, Pool, PoolBuilder, PoolInfo, PoolRead, PoolStats, ReadGuard, Reader};
pub use ptr::{PPtr, PSlice};
pub use tx::{Edit, PMut, SliceMut, Tx};
