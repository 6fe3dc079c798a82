//! [`PoolRead`]: read access shared by transactions and readers.

use crate::error::Result;
use crate::persistent::Persistent;
use crate::ptr::{PPtr, PSlice};

/// Read access to a pool, shared by [`Tx`](crate::Tx) (which sees its own uncommitted writes)
/// and [`Reader`](crate::Reader), so that a structure's read-only operations are written once.
///
/// Every read is checked as the implementor's own `get` checks it: bounds, alignment, object
/// start, type and allocation.
///
/// ```
/// use pmem_core::{PPtr, Persistent, Pool, PoolRead};
///
/// #[derive(Persistent, Clone, Copy)]
/// #[repr(C)]
/// struct Node { value: u64, next: PPtr<Node> }
///
/// #[derive(Persistent, Clone, Copy)]
/// #[repr(C)]
/// struct Root { head: PPtr<Node> }
///
/// /// Sums a list through a transaction or a reader alike.
/// fn sum(r: &impl PoolRead, mut p: PPtr<Node>) -> pmem_core::Result<u64> {
///     let mut total = 0;
///     while !p.is_null() {
///         let node = r.get(p)?;
///         total += node.value;
///         p = node.next;
///     }
///     Ok(total)
/// }
///
/// # let dir = tempfile::tempdir()?;
/// let pool = Pool::<Root>::create(dir.path().join("list.pool"), 8 << 20)?;
/// pool.transaction(|tx| {
///     let node = tx.alloc(Node { value: 7, next: PPtr::null() })?;
///     tx.root_mut().set_head(node)?;
///     let head = tx.root().head;
///     assert_eq!(sum(tx, head)?, 7);
///     Ok::<_, pmem_core::Error>(())
/// })?;
/// let total = pool.read(|r| sum(r, r.root().head))??;
/// assert_eq!(total, 7);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait PoolRead {
    /// The object `ptr` points at, checked for bounds, alignment, object start and type.
    fn get<T: Persistent>(&self, ptr: PPtr<T>) -> Result<&T>;
    /// The elements of `slice`, checked like [`get`](PoolRead::get). The null empty slice
    /// reads as `&[]`.
    fn get_slice<T: Persistent>(&self, slice: PSlice<T>) -> Result<&[T]>;
}
