//! [`PString`]: a growable UTF-8 string in a pool, a [`PBytes`] whose reads check UTF-8.
//!
//! The layout, costs and crash guarantees are [`PBytes`]'s (see [`crate::bytes`]). The pool's
//! bytes may be anything (a damaged or hostile file, or bytes written through another handle
//! to the same metadata), so every read that lends them as `&str` validates them first, and
//! invalid UTF-8 is [`Inconsistency::InvalidUtf8`], never a panic or undefined behaviour.
//! Validation costs a pass over the string per read.

use pmem_core::{Persistent, PoolRead, Tx};

use crate::{Error, Inconsistency, PBytes, Result};

/// A growable UTF-8 string in a pool: a handle that can be a field of any persistent struct.
/// The null handle is no string; [`new`](PString::new) makes one.
///
/// ```
/// use pmem_core::{Persistent, Pool};
/// use pmem_collections::PString;
///
/// #[derive(Persistent)]
/// #[repr(C)]
/// struct Root { name: PString }
///
/// let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
/// pool.transaction(|tx| {
///     let name = PString::from_str(tx, "Grüße")?;
///     tx.root_mut().set_name(name)?;
///     name.push(tx, '!')?;
///     assert_eq!(name.pop(tx)?, Some('!'));
///     name.push_str(tx, ", Welt")
/// })?;
/// pool.read(|r| {
///     assert_eq!(r.root().name.as_str(r)?, "Grüße, Welt");
///     Ok::<_, pmem_collections::Error>(())
/// })??;
/// # Ok::<(), pmem_collections::Error>(())
/// ```
#[derive(Persistent, Clone, Copy, PartialEq, Eq, Default)]
#[repr(transparent)]
pub struct PString {
    bytes: PBytes,
}

impl core::fmt::Debug for PString {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PString({:?})", self.bytes)
    }
}

impl PString {
    /// The null handle: no string.
    pub const fn null() -> Self {
        PString {
            bytes: PBytes::null(),
        }
    }

    /// Whether this is the null handle.
    pub fn is_null(self) -> bool {
        self.bytes.is_null()
    }

    /// Allocates an empty string.
    pub fn new<R: Persistent>(tx: &mut Tx<'_, R>) -> Result<Self> {
        Ok(PString {
            bytes: PBytes::new(tx)?,
        })
    }

    /// Allocates a string holding a copy of `s`.
    #[allow(clippy::should_implement_trait)] // `FromStr` has no transaction to allocate in
    pub fn from_str<R: Persistent>(tx: &mut Tx<'_, R>, s: &str) -> Result<Self> {
        Ok(PString {
            bytes: PBytes::from_slice(tx, s.as_bytes())?,
        })
    }

    /// The bytes underneath, unchecked.
    pub fn as_bytes(self) -> PBytes {
        self.bytes
    }

    /// The string, in place, after checking that it is UTF-8.
    pub fn as_str(self, r: &impl PoolRead) -> Result<&str> {
        let bytes = self.bytes.as_slice(r)?;
        core::str::from_utf8(bytes).map_err(|e| {
            Inconsistency::InvalidUtf8 {
                valid_up_to: e.valid_up_to() as u64,
            }
            .into()
        })
    }

    /// Length in bytes.
    pub fn len(self, r: &impl PoolRead) -> Result<u64> {
        self.bytes.len(r)
    }

    /// Whether the string is empty.
    pub fn is_empty(self, r: &impl PoolRead) -> Result<bool> {
        self.bytes.is_empty(r)
    }

    /// Bytes the buffer holds.
    pub fn capacity(self, r: &impl PoolRead) -> Result<u64> {
        self.bytes.capacity(r)
    }

    /// Appends `c`.
    pub fn push<R: Persistent>(self, tx: &mut Tx<'_, R>, c: char) -> Result<()> {
        self.push_str(tx, c.encode_utf8(&mut [0; 4]))
    }

    /// Appends `s`.
    pub fn push_str<R: Persistent>(self, tx: &mut Tx<'_, R>, s: &str) -> Result<()> {
        self.bytes.extend_from_slice(tx, s.as_bytes())
    }

    /// Removes and returns the last character, or `None` when empty.
    pub fn pop<R: Persistent>(self, tx: &mut Tx<'_, R>) -> Result<Option<char>> {
        let s = self.as_str(tx)?;
        let Some(c) = s.chars().next_back() else {
            return Ok(None);
        };
        let len = (s.len() - c.len_utf8()) as u64;
        self.bytes.truncate(tx, len)?;
        Ok(Some(c))
    }

    /// Shortens to `len` bytes; nothing if not longer. Fails with [`Error::NotCharBoundary`]
    /// if `len` is inside a character (where `String::truncate` panics).
    pub fn truncate<R: Persistent>(self, tx: &mut Tx<'_, R>, len: u64) -> Result<()> {
        let s = self.as_str(tx)?;
        if len >= s.len() as u64 {
            return Ok(());
        }
        if !s.is_char_boundary(len as usize) {
            return Err(Error::NotCharBoundary { index: len });
        }
        self.bytes.truncate(tx, len)
    }

    /// Removes every character. The capacity stays.
    pub fn clear<R: Persistent>(self, tx: &mut Tx<'_, R>) -> Result<()> {
        self.bytes.clear(tx)
    }

    /// Grows the buffer so that at least `additional` more bytes fit.
    pub fn reserve<R: Persistent>(self, tx: &mut Tx<'_, R>, additional: u64) -> Result<()> {
        self.bytes.reserve(tx, additional)
    }

    /// Frees the string. Clear the field that held the handle in the same transaction.
    pub fn destroy<R: Persistent>(self, tx: &mut Tx<'_, R>) -> Result<()> {
        self.bytes.destroy(tx)
    }
}
