//! [`PBytes`]: a growable byte string in a pool, in one contiguous buffer.
//!
//! # Layout
//!
//! ```text
//! PBytes ──> BytesMeta { len, data: PSlice<u8> }
//!                                    └──> capacity bytes, the first len of them live
//! ```
//!
//! Unlike [`PVec`](crate::PVec) the bytes are contiguous, so [`as_slice`](PBytes::as_slice)
//! (and [`PString::as_str`](crate::PString::as_str)) can lend them as one slice. Growth
//! allocates a buffer of twice the capacity (at least 16 bytes), copies the live bytes into it
//! and frees the old one when the transaction commits. The copy goes to this transaction's own
//! allocation, which is never logged (it is freed if the transaction does not commit), so
//! growth costs one table write and the new buffer's flush, amortised O(1) per byte appended.
//!
//! # Cost (fences per operation, in its own transaction, undo logging)
//!
//! | operation | fences (commit included) |
//! |---|---|
//! | `extend_from_slice`/`push` (no growth) | 3: the bytes written, `len`, commit |
//! | the same, growing | 2: the metadata, commit (the new buffer is fresh) |
//! | `truncate`, `clear`, `pop` | 2 |
//!
//! # Crash guarantees
//!
//! Every change is part of the caller's transaction: after a crash the string is as it was
//! before the transaction or after it, and a buffer replaced by growth is freed only if the
//! transaction commits.
//!
//! # Hostile pools
//!
//! `len` larger than the buffer is [`Inconsistency::LenExceedsCapacity`]; the pool checks the
//! buffer pointer (bounds, allocation, type `[u8]`) when it is dereferenced.

use pmem_core::{PPtr, PSlice, Persistent, PoolRead, Tx};

use crate::{Error, Inconsistency, Result};

/// A growable byte string in a pool: a handle that can be a field of any persistent struct.
/// The null handle is no string; [`new`](PBytes::new) makes one. See the
/// [module docs](self) for its layout, costs and guarantees.
///
/// ```
/// use pmem_core::{Persistent, Pool};
/// use pmem_collections::PBytes;
///
/// #[derive(Persistent)]
/// #[repr(C)]
/// struct Root { blob: PBytes }
///
/// let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
/// pool.transaction(|tx| {
///     let blob = PBytes::from_slice(tx, b"key=")?;
///     tx.root_mut().set_blob(blob)?;
///     blob.extend_from_slice(tx, b"value")?;
///     blob.push(tx, b'!')
/// })?;
/// let bytes = pool.read(|r| r.root().blob.to_vec(r))??;
/// assert_eq!(bytes, b"key=value!");
/// # Ok::<(), pmem_collections::Error>(())
/// ```
#[derive(Persistent, Clone, Copy, PartialEq, Eq, Default)]
#[repr(transparent)]
pub struct PBytes {
    meta: PPtr<BytesMeta>,
}

/// A [`PBytes`]'s metadata, as stored in the pool.
///
/// ```
/// # use pmem_core::{Persistent, Pool};
/// # use pmem_collections::PBytes;
/// # #[derive(Persistent)] #[repr(C)] struct Root { b: PBytes }
/// let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
/// let b = pool.transaction(|tx| {
///     let b = PBytes::new(tx)?;
///     b.extend_from_slice(tx, b"abc")?; // the first buffer holds 16
///     Ok::<_, pmem_collections::Error>(b)
/// })?;
/// let meta = pool.read(|r| *r.get(b.meta_ptr()).unwrap())?;
/// assert_eq!((meta.len, meta.data.len()), (3, 16));
/// # Ok::<(), pmem_collections::Error>(())
/// ```
#[derive(Persistent, Debug, Clone, Copy)]
#[repr(C)]
pub struct BytesMeta {
    /// Number of live bytes.
    pub len: u64,
    /// The buffer; its length is the capacity. Null while the capacity is 0.
    pub data: PSlice<u8>,
}

impl core::fmt::Debug for PBytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PBytes({:#x})", self.meta.offset())
    }
}

/// The smallest buffer growth allocates.
const MIN_CAPACITY: u64 = 16;

impl PBytes {
    /// The null handle: no string.
    pub const fn null() -> Self {
        PBytes { meta: PPtr::null() }
    }

    /// Whether this is the null handle.
    pub fn is_null(self) -> bool {
        self.meta.is_null()
    }

    /// The pointer to the metadata this handle is (for inspection and tests; writing the
    /// metadata by hand can break the container's invariants, which its reads then report).
    pub const fn meta_ptr(self) -> PPtr<BytesMeta> {
        self.meta
    }

    /// Allocates an empty byte string (its metadata only).
    pub fn new<R: Persistent>(tx: &mut Tx<'_, R>) -> Result<Self> {
        Ok(PBytes {
            meta: tx.alloc_zeroed()?,
        })
    }

    /// Allocates a byte string holding a copy of `bytes`, with no spare capacity.
    pub fn from_slice<R: Persistent>(tx: &mut Tx<'_, R>, bytes: &[u8]) -> Result<Self> {
        let data = tx.alloc_slice(bytes)?;
        Ok(PBytes {
            meta: tx.alloc(BytesMeta {
                len: bytes.len() as u64,
                data,
            })?,
        })
    }

    /// Reads and checks the metadata.
    fn meta(self, r: &impl PoolRead) -> Result<BytesMeta> {
        let meta = *r.get(self.meta)?;
        if meta.len > meta.data.len() {
            return Err(Inconsistency::LenExceedsCapacity {
                len: meta.len,
                capacity: meta.data.len(),
            }
            .into());
        }
        Ok(meta)
    }

    /// Number of bytes.
    pub fn len(self, r: &impl PoolRead) -> Result<u64> {
        Ok(self.meta(r)?.len)
    }

    /// Whether there are no bytes.
    pub fn is_empty(self, r: &impl PoolRead) -> Result<bool> {
        Ok(self.len(r)? == 0)
    }

    /// Bytes the buffer holds: appends up to this length allocate nothing.
    pub fn capacity(self, r: &impl PoolRead) -> Result<u64> {
        Ok(self.meta(r)?.data.len())
    }

    /// The bytes, in place.
    pub fn as_slice(self, r: &impl PoolRead) -> Result<&[u8]> {
        let meta = self.meta(r)?;
        let data = r.get_slice(meta.data)?;
        data.get(..meta.len as usize).ok_or_else(|| {
            Inconsistency::LenExceedsCapacity {
                len: meta.len,
                capacity: data.len() as u64,
            }
            .into()
        })
    }

    /// A copy of the bytes.
    pub fn to_vec(self, r: &impl PoolRead) -> Result<Vec<u8>> {
        Ok(self.as_slice(r)?.to_vec())
    }

    /// Appends `byte`.
    pub fn push<R: Persistent>(self, tx: &mut Tx<'_, R>, byte: u8) -> Result<()> {
        self.extend_from_slice(tx, &[byte])
    }

    /// Removes and returns the last byte, or `None` when empty.
    pub fn pop<R: Persistent>(self, tx: &mut Tx<'_, R>) -> Result<Option<u8>> {
        let last = self.as_slice(tx)?.last().copied();
        if last.is_some() {
            let len = self.meta(tx)?.len;
            self.set_len(tx, len - 1)?;
        }
        Ok(last)
    }

    /// Appends a copy of `bytes`, growing the buffer if they do not fit.
    pub fn extend_from_slice<R: Persistent>(self, tx: &mut Tx<'_, R>, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let len = self.meta(tx)?.len;
        self.reserve(tx, bytes.len() as u64)?;
        let data = self.meta(tx)?.data;
        let start = len as usize;
        tx.edit_slice(data)?
            .range_mut(start..start + bytes.len())?
            .copy_from_slice(bytes);
        self.set_len(tx, len + bytes.len() as u64)
    }

    /// Shortens to `len` bytes; nothing if not longer. The capacity stays.
    pub fn truncate<R: Persistent>(self, tx: &mut Tx<'_, R>, len: u64) -> Result<()> {
        if len < self.meta(tx)?.len {
            self.set_len(tx, len)?;
        }
        Ok(())
    }

    /// Removes every byte. The capacity stays.
    pub fn clear<R: Persistent>(self, tx: &mut Tx<'_, R>) -> Result<()> {
        self.truncate(tx, 0)
    }

    /// Grows the buffer so that at least `additional` more bytes fit: to twice its capacity
    /// or the size needed, whichever is larger.
    pub fn reserve<R: Persistent>(self, tx: &mut Tx<'_, R>, additional: u64) -> Result<()> {
        let meta = self.meta(tx)?;
        let needed = meta
            .len
            .checked_add(additional)
            .ok_or(Error::CapacityOverflow {
                requested: u64::MAX,
                max: isize::MAX as u64,
            })?;
        if needed <= meta.data.len() {
            return Ok(());
        }
        if needed > isize::MAX as u64 {
            return Err(Error::CapacityOverflow {
                requested: needed,
                max: isize::MAX as u64,
            });
        }
        let capacity = needed
            .max(meta.data.len().saturating_mul(2))
            .max(MIN_CAPACITY);
        let live = tx.get_slice(meta.data)?[..meta.len as usize].to_vec();
        let data = tx.alloc_slice_zeroed::<u8>(capacity)?;
        tx.edit_slice(data)?
            .range_mut(0..live.len())?
            .copy_from_slice(&live);
        tx.free_slice(meta.data)?;
        Ok(tx.edit(self.meta)?.set_data(data)?)
    }

    /// Frees the buffer and the metadata. Clear the field that held the handle in the same
    /// transaction.
    pub fn destroy<R: Persistent>(self, tx: &mut Tx<'_, R>) -> Result<()> {
        let meta = *tx.get(self.meta)?;
        tx.free_slice(meta.data)?;
        Ok(tx.free(self.meta)?)
    }

    fn set_len<R: Persistent>(self, tx: &mut Tx<'_, R>, len: u64) -> Result<()> {
        Ok(tx.edit(self.meta)?.set_len(len)?)
    }
}
