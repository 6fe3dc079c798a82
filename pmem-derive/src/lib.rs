//! `#[derive(Persistent)]` for pmem-core.
//!
//! Use it through its re-export, `pmem_core::Persistent`; see [`macro@Persistent`].

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;

use proc_macro::TokenStream;

/// Derives `pmem_core::Persistent` for a struct, after checking at compile time that it can
/// safely live in a persistent pool, and generates a write handle with a setter per field.
///
/// ```ignore
/// use pmem_core::{Persistent, PPtr};
///
/// #[derive(Persistent)]
/// #[repr(C)]
/// pub struct Root {
///     pub count: u64,
///     head: PPtr<Node>,
/// }
///
/// #[derive(Persistent)]
/// #[repr(C)]
/// struct Node {
///     value: u64,
///     next: PPtr<Node>,
/// }
///
/// // Inside a transaction:
/// tx.root_mut().set_count(n + 1)?;
/// ```
///
/// # What is checked
///
/// Every requirement of the (unsafe) `Persistent` trait, each reported as an error at the
/// offending tokens, with all errors of a struct reported at once:
///
/// - It is a struct. Enums are rejected (not every bit pattern is a valid enum value; store a
///   `u8`/`u32` tag instead) and so are unions.
/// - It is `#[repr(C)]` (optionally with `align(N)`) or `#[repr(transparent)]`, so that its layout
///   does not depend on the compiler; `packed` is rejected, since fields must be aligned.
///   `align(N)` may be at most `pmem_core::MAX_ALIGN` (4096, the alignment of a pool's mapping),
///   and so may the alignment the fields give the struct.
/// - It has no lifetime parameters: pool data cannot hold references.
/// - No field has a type that is known not to be persistent: `bool`, `char`, `usize`, `isize`,
///   references, raw pointers, function pointers, `Box`, `Vec`, `String`, `Rc`, `Arc`, cells,
///   locks, atomics, `Option`, `NonZero*`, tuples, `str` and slices. Each message says why and
///   what to use instead. These are recognised by name: a path of one segment or one starting
///   with `std`, `core` or `alloc`. A persistent type of your own that shares one of these names
///   can be written with a longer path, such as `self::Cell<T>`.
/// - Every field type implements `Persistent` (checked by the compiler; the error points at the
///   field's type).
/// - It has no padding, so that every byte of a value is initialised and can be copied to the
///   pool. For a non-generic struct the error names the struct, the field the padding precedes
///   (or the end of the struct) and its size in bytes, and suggests the field to add instead
///   (`_pad1: [u8; 7]`). A generic struct can only be checked once its parameters are known:
///   an instance with padding fails to compile where its `LAYOUT` (and so its fingerprint) is
///   evaluated, as a pool does for every type it stores. That is a post-monomorphization error: `cargo
///   build` reports it, `cargo check` may not.
///
/// # What is generated
///
/// For `struct Root { count: u64, .. }`:
///
/// - `unsafe impl Persistent for Root`, with a `LAYOUT` that lists every field's name, type,
///   offset, size and fingerprint, and a `TYPE_ID` from the struct's name and generic arguments.
///   Each type parameter gets a `T: Persistent` bound.
/// - `RootMut<'t>`, with the struct's visibility: the write handle a transaction gives out for a
///   `Root` in the pool (`Edit::Mut`, from the `impl Edit for Root` the derive also writes). For each field `f: F` it has, with the field's
///   visibility, `set_f(&mut self, value: F)`, which writes the new value in the transaction
///   (applied when it commits), and `f_mut(&mut self)`, which returns `F`'s own handle, so that writes chain into
///   nested structs (`root.inner_mut().set_x(5)?`) and arrays (`root.buf_mut().set_at(3, 7)?`).
///   Tuple structs get `set_0` and `_0_mut`. The handle also has `get`, `set`, `get_mut`,
///   `offset` and `into_inner`. A field whose methods would collide with these or with another
///   field's (a field named `get` would generate `get_mut`) is an error.
///
/// # Attributes
///
/// `#[persistent(crate = "path")]` on the struct names pmem-core in the generated code when it
/// is reached through a re-export (the default is `::pmem_core`).
#[proc_macro_derive(Persistent, attributes(persistent))]
pub fn derive_persistent(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    derive(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

fn derive(input: &syn::DeriveInput) -> syn::Result<proc_macro2::TokenStream> {
    let cx = ctxt::Ctxt::new();
    let input = ast::Input::from_ast(&cx, input);
    check::check(&cx, &input);
    cx.check()?;
    let ast::Data::Struct(fields) = &input.data else {
        unreachable!("enums and unions are rejected by the checks");
    };
    Ok(expand::expand(&input, fields))
}
