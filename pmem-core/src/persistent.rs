//! The [`Persistent`] trait: which types may live in a pool, and how their layout is described.

use crate::fingerprint;

/// How a persistent type is laid out in memory: enough to fingerprint it and, when a pool was
/// written with a different definition, to name the first field that differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeLayout {
    /// The type's name as written in its definition, without module path or generic arguments.
    pub name: &'static str,
    /// `size_of::<T>()`.
    pub size: usize,
    /// `align_of::<T>()`.
    pub align: usize,
    /// The fields in declaration order; empty for primitives, arrays and pointers.
    pub fields: &'static [FieldLayout],
}

/// One field of a [`TypeLayout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldLayout {
    /// The field's name (`"0"`, `"1"`, … for tuple structs).
    pub name: &'static str,
    /// The field's type as written in the source, for error messages only.
    pub type_name: &'static str,
    /// Offset of the field from the start of the struct.
    pub offset: usize,
    /// Size of the field.
    pub size: usize,
    /// The field type's [`Persistent::FINGERPRINT`].
    pub fingerprint: u64,
}

/// Where a persistent type holds pointers, so that tools can walk the object graph (the deep
/// check, `pmem dump`) without knowing the type.
#[derive(Debug, Clone, Copy)]
pub struct PointerSlot {
    /// Offset of the first occurrence within the type.
    pub offset: usize,
    /// How many occurrences, `stride` bytes apart (0: the slot holds no pointers after all).
    pub count: usize,
    /// Bytes between occurrences.
    pub stride: usize,
    /// What occurs there.
    pub kind: SlotKind,
}

/// What a [`PointerSlot`] holds.
#[derive(Debug, Clone, Copy)]
pub enum SlotKind {
    /// A [`PPtr`](crate::PPtr) to the given type.
    Ptr(fn() -> &'static TypeInfo),
    /// A [`PSlice`](crate::PSlice) of the given element type.
    Slice(fn() -> &'static TypeInfo),
    /// A value of the given type (a field or array element), whose own slots apply.
    Inline(fn() -> &'static TypeInfo),
}

/// A persistent type as the object-graph walk sees it.
#[derive(Debug, Clone, Copy)]
pub struct TypeInfo {
    /// The type's name.
    pub name: &'static str,
    /// [`Persistent::FINGERPRINT`].
    pub fingerprint: u64,
    /// `size_of::<T>()`.
    pub size: usize,
    /// Where the type holds pointers.
    pub pointers: &'static [PointerSlot],
    /// The type's layout ([`Persistent::LAYOUT`]), so that a pool's record of the type can be
    /// compared with the program's field by field.
    pub layout: TypeLayout,
}

/// The [`TypeInfo`] of `T`, as a function pointer target for [`SlotKind`].
pub fn type_info<T: Persistent>() -> &'static TypeInfo {
    T::INFO
}

/// The largest alignment a persistent type may have: the alignment of the pool's mapping (a
/// page), which is what the offset of an object can be relied on to turn into an aligned
/// address.
///
/// Every allocation honours it: objects whose alignment is at most 64 share runs of one size
/// class whose unit is a multiple of that alignment (runs start on chunk boundaries), and
/// more-aligned objects take whole chunks, which are 16 KiB aligned within the pool.
/// `#[derive(Persistent)]` refuses a larger `#[repr(align(N))]` at compile time.
pub const MAX_ALIGN: usize = 4096;

/// A type that can live in a persistent pool.
///
/// Implement it with `#[derive(Persistent)]`, which checks every requirement at compile time.
/// The trait is implemented for the fixed-width integers, `f32`, `f64`, `()`, arrays of
/// persistent types, [`PPtr<T>`](crate::PPtr) and [`PSlice<T>`](crate::PSlice).
///
/// `usize` and `isize` are deliberately not persistent: their width depends on the target, and a
/// pool must mean the same thing to every program that opens it. Use `u64` and `i64`.
///
/// # Safety
///
/// An implementor guarantees that:
/// - every bit pattern of `size_of::<Self>()` bytes is a valid value (the pool file may contain
///   anything, including bytes written by a hostile program);
/// - it has no padding bytes, so that every byte of a value is initialised and can be copied to
///   the pool and checksummed;
/// - it contains no interior mutability and no pointer into volatile memory;
/// - its layout is fixed (`#[repr(C)]` or `#[repr(transparent)]` with persistent fields);
/// - its alignment is at most [`MAX_ALIGN`], since no pool places objects more strictly;
/// - [`LAYOUT`](Self::LAYOUT) describes it truthfully.
///
/// These are the guarantees of zerocopy's `FromBytes + IntoBytes + KnownLayout + Immutable`,
/// which is what makes the safe API sound on a corrupted pool file.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be stored in a persistent pool",
    label = "`{Self}` does not implement `Persistent`",
    note = "pool types must be plain data that is valid for every bit pattern: fixed-width integers, floats, arrays, `PPtr<T>`, `PSlice<T>` and `#[derive(Persistent)]` structs",
    note = "use `u8` instead of `bool`, `u32` instead of `char`, `PPtr<T>` instead of references, `Box` or raw pointers, and `PSlice<T>` instead of `Vec<T>` or `String`"
)]
pub unsafe trait Persistent: Sized + 'static {
    /// The layout descriptor of this type.
    const LAYOUT: TypeLayout;
    /// The shallow identity of this type (its name and generic arguments); see
    /// [`crate::fingerprint::type_id`].
    const TYPE_ID: u64;
    /// A stable 64-bit hash of the type's name, size, alignment and every field's name, offset
    /// and fingerprint. Pools store it for the root type and for every object, and check it on
    /// open and on typed access.
    const FINGERPRINT: u64 = fingerprint::of_layout(Self::TYPE_ID, &Self::LAYOUT);

    /// Whether values of this type contain persistent pointers.
    const HAS_POINTERS: bool = false;
    /// Where values of this type contain persistent pointers.
    const POINTERS: &'static [PointerSlot] = &[];
    /// The type as the object-graph walk sees it.
    const INFO: &'static TypeInfo = &TypeInfo {
        name: Self::LAYOUT.name,
        fingerprint: Self::FINGERPRINT,
        size: core::mem::size_of::<Self>(),
        pointers: Self::POINTERS,
        layout: Self::LAYOUT,
    };
}

macro_rules! primitive {
    ($($t:ty),*) => {$(
        // SAFETY: fixed-width integers and IEEE floats are valid for every bit pattern, have no
        // padding and no interior mutability.
        unsafe impl Persistent for $t {
            const LAYOUT: TypeLayout = TypeLayout {
                name: stringify!($t),
                size: core::mem::size_of::<$t>(),
                align: core::mem::align_of::<$t>(),
                fields: &[],
            };
            const TYPE_ID: u64 = fingerprint::type_id(stringify!($t), &[]);
        }
    )*};
}

/// Calls `$m!` with the primitive persistent types: the one list, for this module's impls and
/// the transaction layer's.
macro_rules! with_primitives {
    ($m:ident) => {
        $m!(
            u8,
            u16,
            u32,
            u64,
            u128,
            i8,
            i16,
            i32,
            i64,
            i128,
            f32,
            f64,
            ()
        );
    };
}
pub(crate) use with_primitives;

with_primitives!(primitive);

// SAFETY: an array of persistent elements has no padding between elements (size is a multiple
// of alignment), and is valid for every bit pattern because each element is.
unsafe impl<T: Persistent, const N: usize> Persistent for [T; N] {
    const LAYOUT: TypeLayout = TypeLayout {
        name: "array",
        size: core::mem::size_of::<[T; N]>(),
        align: core::mem::align_of::<[T; N]>(),
        fields: &[],
    };
    const TYPE_ID: u64 = fingerprint::combine("array-id", T::TYPE_ID, N as u64);
    const FINGERPRINT: u64 = fingerprint::combine("array", T::FINGERPRINT, N as u64);
    const HAS_POINTERS: bool = T::HAS_POINTERS;
    const POINTERS: &'static [PointerSlot] = &[PointerSlot {
        offset: 0,
        count: if T::HAS_POINTERS { N } else { 0 },
        stride: core::mem::size_of::<T>(),
        kind: SlotKind::Inline(type_info::<T>),
    }];
}

/// Views a persistent value as its bytes: what the pool stores for it, in the same order.
///
/// Persistent types have no padding, so every byte is initialised; containers hash and compare
/// keys by these bytes, which no `Hash` or `Eq` implementation can make disagree.
///
/// ```
/// assert_eq!(pmem_core::bytes_of(&0x0102_0304u32), &[4, 3, 2, 1]);
/// ```
pub fn bytes_of<T: Persistent>(value: &T) -> &[u8] {
    // Evaluating the layout runs the derive's padding assertion for generic instances.
    const { _ = T::LAYOUT };
    // SAFETY: `T: Persistent` has no padding, so all `size_of::<T>()` bytes are initialised, and
    // no interior mutability, so reading them through a shared reference is fine.
    unsafe {
        core::slice::from_raw_parts(value as *const T as *const u8, core::mem::size_of::<T>())
    }
}

/// The value whose bytes are all zero: valid for every persistent type, since every bit pattern
/// is. What a freshly zeroed pool object holds, built in DRAM.
///
/// ```
/// let zero: [u64; 4] = pmem_core::zeroed();
/// assert_eq!(zero, [0; 4]);
/// ```
pub fn zeroed<T: Persistent>() -> T {
    const { _ = T::LAYOUT };
    // SAFETY: `T: Persistent` is valid for every bit pattern, so for all zeros.
    unsafe { core::mem::zeroed() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitive_fingerprints_differ_by_type() {
        assert_ne!(u64::FINGERPRINT, i64::FINGERPRINT);
        assert_ne!(u32::FINGERPRINT, f32::FINGERPRINT);
        assert_ne!(<[u8; 4]>::FINGERPRINT, <[u8; 5]>::FINGERPRINT);
        assert_ne!(<[u8; 4]>::FINGERPRINT, u32::FINGERPRINT);
    }

    #[test]
    fn bytes_of_is_little_endian() {
        assert_eq!(bytes_of(&0x0102_0304u32), &[4, 3, 2, 1]);
    }
}
