//! Turning a persistent pointer into a checked offset: bounds, alignment, object start, type.

use crate::error::{Error, Result};
use crate::heap::{HeapMeta, ObjectRef};
use crate::persistent::Persistent;

/// Checks that `offset` is the start of an allocated object of type `T` with room for
/// `count` elements of `T`, and returns it. Never reads outside the pool.
#[inline]
pub(crate) fn resolve<T: Persistent>(
    meta: &HeapMeta,
    offset: u64,
    count: u64,
    fingerprint: u64,
) -> Result<u64> {
    locate::<T>(meta, offset, count, fingerprint).map(|_| offset)
}

/// As [`resolve`], returning where the object is in the heap.
pub(crate) fn locate<T: Persistent>(
    meta: &HeapMeta,
    offset: u64,
    count: u64,
    fingerprint: u64,
) -> Result<ObjectRef> {
    let bad = |reason: String| Error::InvalidPointer { offset, reason };
    if offset == 0 {
        return Err(bad("null pointer".into()));
    }
    if offset % core::mem::align_of::<T>() as u64 != 0 {
        return Err(bad(format!(
            "misaligned for `{}`",
            core::any::type_name::<T>()
        )));
    }
    let object = meta
        .object_at(offset)
        .map_err(|reason| bad(reason.into()))?;
    if !meta.is_allocated(&object) {
        return Err(bad("no object is allocated there (freed?)".into()));
    }
    if object.fingerprint() != fingerprint {
        return Err(bad(format!(
            "the object there has type fingerprint {:#018x}, not that of `{}` ({fingerprint:#018x})",
            object.fingerprint(),
            core::any::type_name::<T>()
        )));
    }
    let need = (core::mem::size_of::<T>() as u64)
        .checked_mul(count)
        .ok_or_else(|| bad("length overflows".into()))?;
    if need > object.size() {
        return Err(bad(format!(
            "the object there has {} bytes, {need} needed",
            object.size()
        )));
    }
    Ok(object)
}

/// The fingerprint recorded for an allocation of `[T]` (a [`PSlice`](crate::PSlice)).
pub(crate) fn slice_fingerprint<T: Persistent>() -> u64 {
    slice_fingerprint_of(T::FINGERPRINT)
}

/// [`slice_fingerprint`] from the element type's fingerprint.
pub(crate) fn slice_fingerprint_of(element: u64) -> u64 {
    crate::fingerprint::combine("slice", element, 0)
}
