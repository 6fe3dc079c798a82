//! Turning a persistent pointer into a checked offset: bounds, alignment, object start, type.

use crate::error::{Error, PointerRejection, Result};
use crate::heap::meta::OBJECT_START_ALIGN;
use crate::heap::{HeapMeta, ObjectRef};
use crate::persistent::Persistent;

/// For the transaction module, which resolves and allocates slices with it.
pub(crate) use crate::fingerprint::slice_fingerprint;

/// Checks that `offset` is the start of an allocated object of type `T` with room for
/// `count` elements of `T`, and returns it: then `count` elements of `T` from it lie inside
/// `meta`'s region, aligned. Never reads outside the pool.
///
/// Every check of [`locate`] is made, in [`HeapMeta::holds`]'s single pass; only a refusal
/// goes through `locate` again, out of line, to name its reason.
#[inline(always)]
pub(crate) fn resolve<T: Persistent>(
    meta: &HeapMeta,
    offset: u64,
    count: u64,
    fingerprint: u64,
) -> Result<u64> {
    let align = core::mem::align_of::<T>() as u64;
    // Every object start is aligned to OBJECT_START_ALIGN: most types need no check of their own.
    let aligned = align <= OBJECT_START_ALIGN || offset % align == 0;
    match (core::mem::size_of::<T>() as u64).checked_mul(count) {
        Some(need) if aligned && meta.holds(offset, fingerprint, need) => Ok(offset),
        _ => Err(refusal::<T>(meta, offset, count, fingerprint)),
    }
}

/// Why [`resolve`] refused `offset`.
#[cold]
#[inline(never)]
fn refusal<T: Persistent>(meta: &HeapMeta, offset: u64, count: u64, fingerprint: u64) -> Error {
    match locate::<T>(meta, offset, count, fingerprint) {
        Err(e) => e,
        // The two passes agree on a pool that holds still (tested); they can differ only if
        // another process rewrote the metadata in between, which is damage.
        Ok(_) => Error::InvalidPointer {
            offset,
            reason: PointerRejection::BadChunkEntry,
        },
    }
}

/// As [`resolve`], returning where the object is in the heap.
#[inline]
pub(crate) fn locate<T: Persistent>(
    meta: &HeapMeta,
    offset: u64,
    count: u64,
    fingerprint: u64,
) -> Result<ObjectRef> {
    if offset == 0 {
        return Err(reject::<T>(offset, Rejection::Null));
    }
    if offset % core::mem::align_of::<T>() as u64 != 0 {
        return Err(reject::<T>(offset, Rejection::Misaligned));
    }
    let object = match meta.object_at(offset) {
        Ok(object) => object,
        Err(reason) => return Err(reject::<T>(offset, Rejection::NoObject(reason))),
    };
    if !meta.is_allocated(&object) {
        return Err(reject::<T>(offset, Rejection::Freed));
    }
    if object.fingerprint() != fingerprint {
        return Err(reject::<T>(
            offset,
            Rejection::WrongType(object, fingerprint),
        ));
    }
    let fits = (core::mem::size_of::<T>() as u64)
        .checked_mul(count)
        .is_some_and(|need| need <= object.size());
    if !fits {
        return Err(reject::<T>(offset, Rejection::TooSmall(object, count)));
    }
    Ok(object)
}

/// Why [`locate`] refused a pointer, with what the public reason needs from the heap; turned
/// into an [`Error`] off the hot path.
enum Rejection {
    Null,
    Misaligned,
    NoObject(PointerRejection),
    Freed,
    WrongType(ObjectRef, u64),
    TooSmall(ObjectRef, u64),
}

#[cold]
#[inline(never)]
fn reject<T>(offset: u64, why: Rejection) -> Error {
    let type_name = core::any::type_name::<T>();
    let reason = match why {
        Rejection::Null => PointerRejection::Null,
        Rejection::Misaligned => PointerRejection::Misaligned {
            type_name,
            align: core::mem::align_of::<T>() as u64,
        },
        Rejection::NoObject(reason) => reason,
        Rejection::Freed => PointerRejection::NotAllocated,
        Rejection::WrongType(object, expected) => PointerRejection::WrongType {
            type_name,
            expected,
            found: object.fingerprint(),
        },
        Rejection::TooSmall(object, len) => {
            match (core::mem::size_of::<T>() as u64).checked_mul(len) {
                Some(needed) => PointerRejection::TooSmall {
                    size: object.size(),
                    needed,
                },
                None => PointerRejection::LengthOverflow { len },
            }
        }
    };
    Error::InvalidPointer { offset, reason }
}
