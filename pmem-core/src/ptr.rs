//! Typed persistent pointers: [`PPtr<T>`] to one object and [`PSlice<T>`] to a run of elements.
//!
//! Both are plain offsets from the start of the pool, so they mean the same thing wherever the
//! pool is mapped. They are never dereferenced directly: a pool or transaction handle turns them
//! into references after checking bounds, alignment and the object's type fingerprint, so a
//! pointer read from a corrupted file is an error, never undefined behaviour.

use core::fmt;
use core::hash::{Hash, Hasher};
use core::marker::PhantomData;

use crate::fingerprint;
use crate::persistent::{type_info, Persistent, PointerSlot, SlotKind, TypeLayout};

/// A typed pointer to a `T` in a pool: 8 bytes, `Copy`, null is 0.
///
/// Read through it with [`Reader::get`](crate::Reader::get) or
/// [`Tx::get`](crate::Tx::get); write through it inside a transaction.
///
/// ```
/// use pmem_core::PPtr;
/// let p: PPtr<u64> = PPtr::null();
/// assert!(p.is_null());
/// assert_eq!(core::mem::size_of::<PPtr<u64>>(), 8);
/// ```
#[repr(transparent)]
pub struct PPtr<T> {
    offset: u64,
    _target: PhantomData<fn() -> T>,
}

impl<T> PPtr<T> {
    /// The null pointer.
    pub const fn null() -> Self {
        Self::from_offset(0)
    }

    /// A pointer with the given pool offset. Nothing is checked here; every dereference checks.
    pub const fn from_offset(offset: u64) -> Self {
        PPtr {
            offset,
            _target: PhantomData,
        }
    }

    /// The offset of the pointee from the start of the pool (0 for null).
    pub const fn offset(self) -> u64 {
        self.offset
    }

    /// Whether this is the null pointer.
    pub const fn is_null(self) -> bool {
        self.offset == 0
    }

    /// `None` for null, else `Some(self)`.
    pub const fn non_null(self) -> Option<Self> {
        if self.is_null() {
            None
        } else {
            Some(self)
        }
    }

    /// The same offset viewed as a pointer to another type. Typed access still checks the
    /// object's type fingerprint, so this cannot be used to read an object as the wrong type.
    pub const fn cast<U>(self) -> PPtr<U> {
        PPtr::from_offset(self.offset)
    }
}

impl<T> Clone for PPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for PPtr<T> {}
impl<T> PartialEq for PPtr<T> {
    fn eq(&self, other: &Self) -> bool {
        self.offset == other.offset
    }
}
impl<T> Eq for PPtr<T> {}
impl<T> PartialOrd for PPtr<T> {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for PPtr<T> {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.offset.cmp(&other.offset)
    }
}
impl<T> Hash for PPtr<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.offset.hash(state)
    }
}
impl<T> Default for PPtr<T> {
    fn default() -> Self {
        Self::null()
    }
}
impl<T> fmt::Debug for PPtr<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PPtr<{}>({:#x})",
            core::any::type_name::<T>(),
            self.offset
        )
    }
}

// SAFETY: `PPtr<T>` is `repr(transparent)` over a `u64`: every bit pattern is valid (an invalid
// offset is caught when dereferenced), no padding, no interior mutability.
unsafe impl<T: Persistent> Persistent for PPtr<T> {
    const LAYOUT: TypeLayout = TypeLayout {
        name: "PPtr",
        size: 8,
        align: 8,
        fields: &[],
    };
    const TYPE_ID: u64 = fingerprint::combine("PPtr-id", T::TYPE_ID, 0);
    // Uses `T`'s shallow identity, not its fingerprint, so recursive types terminate.
    const FINGERPRINT: u64 = fingerprint::combine("PPtr", T::TYPE_ID, 0);
    const HAS_POINTERS: bool = true;
    const POINTERS: &'static [PointerSlot] = &[PointerSlot {
        offset: 0,
        count: 1,
        stride: 8,
        kind: SlotKind::Ptr(type_info::<T>),
    }];
}

/// A typed pointer to `len` consecutive `T`s in a pool: 16 bytes, `Copy`, null is offset 0.
///
/// Allocated with [`Tx::alloc_slice`](crate::Tx::alloc_slice); the string store example keeps
/// its text in a `PSlice<u8>`.
///
/// ```
/// use pmem_core::PSlice;
/// let s: PSlice<u8> = PSlice::null();
/// assert!(s.is_null() && s.is_empty());
/// assert_eq!(core::mem::size_of::<PSlice<u8>>(), 16);
/// ```
#[repr(C)]
pub struct PSlice<T> {
    offset: u64,
    len: u64,
    _target: PhantomData<fn() -> T>,
}

impl<T> PSlice<T> {
    /// The null slice (offset 0, length 0).
    pub const fn null() -> Self {
        Self::from_raw_parts(0, 0)
    }

    /// A slice with the given offset and length in elements. Checked on every dereference.
    pub const fn from_raw_parts(offset: u64, len: u64) -> Self {
        PSlice {
            offset,
            len,
            _target: PhantomData,
        }
    }

    /// The offset of the first element from the start of the pool.
    pub const fn offset(self) -> u64 {
        self.offset
    }

    /// The number of elements.
    pub const fn len(self) -> u64 {
        self.len
    }

    /// Whether the slice has no elements.
    pub const fn is_empty(self) -> bool {
        self.len == 0
    }

    /// Whether the offset is null.
    pub const fn is_null(self) -> bool {
        self.offset == 0
    }
}

impl<T> Clone for PSlice<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for PSlice<T> {}
impl<T> PartialEq for PSlice<T> {
    fn eq(&self, other: &Self) -> bool {
        self.offset == other.offset && self.len == other.len
    }
}
impl<T> Eq for PSlice<T> {}
impl<T> Hash for PSlice<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.offset, self.len).hash(state)
    }
}
impl<T> Default for PSlice<T> {
    fn default() -> Self {
        Self::null()
    }
}
impl<T> fmt::Debug for PSlice<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PSlice<{}>({:#x}, len {})",
            core::any::type_name::<T>(),
            self.offset,
            self.len
        )
    }
}

// SAFETY: `repr(C)` over two `u64`s: every bit pattern valid, no padding, no interior mutability.
unsafe impl<T: Persistent> Persistent for PSlice<T> {
    const LAYOUT: TypeLayout = TypeLayout {
        name: "PSlice",
        size: 16,
        align: 8,
        fields: &[],
    };
    const TYPE_ID: u64 = fingerprint::combine("PSlice-id", T::TYPE_ID, 0);
    const FINGERPRINT: u64 = fingerprint::combine("PSlice", T::TYPE_ID, 0);
    const HAS_POINTERS: bool = true;
    const POINTERS: &'static [PointerSlot] = &[PointerSlot {
        offset: 0,
        count: 1,
        stride: 16,
        kind: SlotKind::Slice(type_info::<T>),
    }];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(core::mem::size_of::<PPtr<[u8; 100]>>(), 8);
        assert_eq!(core::mem::align_of::<PPtr<u8>>(), 8);
        assert_eq!(core::mem::size_of::<PSlice<u64>>(), 16);
    }

    #[test]
    fn pointer_fingerprint_depends_on_target() {
        assert_ne!(PPtr::<u64>::FINGERPRINT, PPtr::<u32>::FINGERPRINT);
        assert_ne!(PPtr::<u64>::FINGERPRINT, PSlice::<u64>::FINGERPRINT);
    }
}
