//! The checks that decide whether `Persistent` may be implemented, each reported as an error at
//! the tokens that break it.
//!
//! What can be decided from syntax is decided here, so that the user reads why a type is
//! rejected and what to write instead. What needs the compiler (does every field type implement
//! `Persistent`? is there padding?) is left to assertions in the generated code, whose messages
//! come from `#[diagnostic::on_unimplemented]`.

use std::collections::HashMap;

use quote::quote;
use syn::Type;

use crate::ast::{self, Data, Field, Input};
use crate::ctxt::Ctxt;

/// The largest alignment a pool gives its objects: `pmem_core::MAX_ALIGN`, which the generated
/// code asserts again for types whose alignment comes from their fields.
const MAX_ALIGN: u64 = 4096;

pub(crate) fn check(cx: &Ctxt, input: &Input) {
    check_data(cx, input);
    check_repr(cx, input);
    check_generics(cx, input);
    if let Data::Struct(fields) = &input.data {
        for field in fields {
            check_field_type(cx, field.ty);
        }
        check_method_names(cx, input, fields);
    }
}

fn check_data(cx: &Ctxt, input: &Input) {
    let ident = input.ident();
    match &input.data {
        Data::Struct(_) => {}
        Data::Enum(data) => {
            let enum_token = data.enum_token;
            cx.error_spanned_by(
                quote!(#enum_token #ident),
                "`Persistent` cannot be derived for enums: not every bit pattern is a valid enum value, and a pool file may contain any bytes; store a `u8`/`u32` tag field with named constants instead",
            );
        }
        Data::Union(data) => {
            let union_token = data.union_token;
            cx.error_spanned_by(
                quote!(#union_token #ident),
                "`Persistent` cannot be derived for unions: which field is valid is not recorded, so no field can be read safely; use a `#[repr(C)]` struct with a tag field and a byte array (`[u8; N]`) for the payload",
            );
        }
    }
}

fn check_repr(cx: &Ctxt, input: &Input) {
    // An enum or union is rejected by `check_data`; its repr is not worth a second error.
    let syn::Data::Struct(data) = &input.original.data else {
        return;
    };
    let struct_token = data.struct_token;
    let ident = input.ident();
    if let Some(packed) = &input.repr.packed {
        cx.error_spanned_by(
            packed,
            "`#[repr(packed)]` is not supported by `#[derive(Persistent)]`: fields of a packed struct can be unaligned, and reading a pool hands out references to fields, which must be aligned; remove `packed` and make any padding explicit with `[u8; N]` fields",
        );
    } else if let (Some(align), false, false) =
        (&input.repr.align, input.repr.c, input.repr.transparent)
    {
        cx.error_spanned_by(
            align,
            format!(
                "`#[repr({})]` alone does not fix the order of `{}`'s fields, and a pool file's layout must not depend on the compiler; write `#[repr(C, {})]`",
                ast::type_name_of_tokens(align),
                input.name,
                ast::type_name_of_tokens(align),
            ),
        );
    } else if !input.repr.c && !input.repr.transparent {
        cx.error_spanned_by(
            quote!(#struct_token #ident),
            format!(
                "`#[derive(Persistent)]` requires `#[repr(C)]` or `#[repr(transparent)]`: with the default representation Rust may reorder `{}`'s fields, and a pool file's layout must not depend on the compiler; add `#[repr(C)]` to the struct",
                input.name
            ),
        );
    }
    if let (Some(align), Some(value)) = (&input.repr.align, input.repr.align_value) {
        if value > MAX_ALIGN {
            cx.error_spanned_by(
                align,
                format!(
                    "`#[repr({})]` asks for more alignment than a pool gives its objects: they are placed at most {MAX_ALIGN}-byte aligned (the alignment of the pool's mapping, a page), so a reference to a `{}` in a pool could be misaligned; use at most `align({MAX_ALIGN})`",
                    ast::type_name_of_tokens(align),
                    input.name,
                ),
            );
        }
    }
}

fn check_generics(cx: &Ctxt, input: &Input) {
    for param in &input.generics().params {
        if let syn::GenericParam::Lifetime(lifetime) = param {
            cx.error_spanned_by(
                lifetime,
                "persistent types cannot have lifetime parameters: data in a pool outlives every borrow of the program that wrote it, so it cannot hold references; use `PPtr<T>` to point at objects in the pool",
            );
        }
    }
}

/// Rejects field types that are known not to be persistent, explaining why and what to use.
///
/// Standard-library types are recognised by their last path segment when the path is a single
/// segment or starts with `std`, `core` or `alloc`, so `std::rc::Rc<T>` is caught while a user's
/// own persistent type named `Cell` can still be used as `self::Cell` or `crate::grid::Cell`.
fn check_field_type(cx: &Ctxt, ty: &Type) {
    if let Some((offender, message)) = why_not_persistent(ty) {
        cx.error_spanned_by(offender, message);
    }
}

/// The first part of `ty` known not to be persistent, and why.
fn why_not_persistent(ty: &Type) -> Option<(&Type, String)> {
    let written = ast::type_name(ty);
    let message = match ty {
        Type::Reference(_) => Some(format!(
            "references cannot be stored in a persistent pool: `{written}` points into this process's memory and means nothing once the pool is reopened; use `PPtr<T>` to point at an object in the pool"
        )),
        Type::Ptr(_) => Some(format!(
            "raw pointers cannot be stored in a persistent pool: `{written}` points into volatile memory and means nothing once the pool is reopened, possibly at another address; use `PPtr<T>` to point at an object in the pool"
        )),
        Type::BareFn(_) => Some(format!(
            "function pointers cannot be stored in a persistent pool: `{written}` is a code address, which changes with every build and every run; store a `u32` tag and dispatch on it"
        )),
        Type::TraitObject(_) => Some(format!(
            "trait objects cannot be stored in a persistent pool: `{written}` has no fixed size and its vtable is an address in this process; store a `u32` tag and the concrete types' data"
        )),
        Type::Slice(_) => Some(format!(
            "`{written}` cannot be stored in a persistent struct: it has no fixed size; use `PSlice<T>` to point at elements in the pool, or a fixed-size array `[T; N]`"
        )),
        Type::Tuple(tuple) if !tuple.elems.is_empty() => Some(format!(
            "tuples cannot be stored in a persistent pool: Rust does not fix the layout of `{written}`; use a `#[repr(C)]` struct that derives `Persistent`, or an array if the elements have one type"
        )),
        Type::Array(array) => return why_not_persistent(&array.elem),
        Type::Paren(paren) => return why_not_persistent(&paren.elem),
        Type::Group(group) => return why_not_persistent(&group.elem),
        Type::Path(path) if path.qself.is_none() => {
            return why_not_persistent_path(ty, &path.path, &written)
        }
        _ => None,
    };
    message.map(|message| (ty, message))
}

fn why_not_persistent_path<'a>(
    ty: &'a Type,
    path: &'a syn::Path,
    written: &str,
) -> Option<(&'a Type, String)> {
    let last = path.segments.last()?;
    let name = last.ident.to_string();
    let type_args: Vec<&Type> = match &last.arguments {
        syn::PathArguments::AngleBracketed(args) => args
            .args
            .iter()
            .filter_map(|arg| match arg {
                syn::GenericArgument::Type(ty) => Some(ty),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if name == "PPtr" || name == "PSlice" {
        // The target must itself be persistent: point at the real problem.
        return type_args.first().and_then(|ty| why_not_persistent(ty));
    }
    let standard = path.segments.len() == 1
        || matches!(
            path.segments[0].ident.to_string().as_str(),
            "std" | "core" | "alloc"
        );
    if !standard {
        return None;
    }
    // The standard types below that take a type argument are only recognised with one, so a
    // user's own non-generic `Cell` is not mistaken for `std::cell::Cell`.
    let generic = !type_args.is_empty();
    let message = match name.as_str() {
        "bool" => "`bool` cannot be stored in a persistent pool: only 0 and 1 are valid `bool` values, and a pool file may contain any byte; use `u8` (0 for false, 1 for true)".to_string(),
        "char" => "`char` cannot be stored in a persistent pool: not every `u32` is a valid `char` (surrogates and values above 0x10FFFF are not), and a pool file may contain any bytes; use `u32` and convert with `char::from_u32`".to_string(),
        "usize" | "isize" => {
            let fixed = if name == "usize" { "u64" } else { "i64" };
            format!("`{name}` cannot be stored in a persistent pool: its width depends on the target, and a pool must mean the same to every program that opens it; use `{fixed}`")
        }
        "str" => "`str` cannot be stored in a persistent struct: it has no fixed size; use `PSlice<u8>` to point at bytes in the pool, or a fixed-size `[u8; N]`".to_string(),
        "String" => "`String` cannot be stored in a persistent pool: its bytes are on the volatile heap, which is gone when the program exits; use `PSlice<u8>` to point at bytes allocated in the pool, or a fixed-size `[u8; N]`".to_string(),
        "Vec" if generic => format!("`{written}` cannot be stored in a persistent pool: its buffer is on the volatile heap, which is gone when the program exits; use `PSlice<T>` to point at elements allocated in the pool, or a fixed-size array `[T; N]`"),
        "VecDeque" | "HashMap" | "HashSet" | "BTreeMap" | "BTreeSet" | "BinaryHeap" | "LinkedList" if generic => format!("`{written}` cannot be stored in a persistent pool: its contents are on the volatile heap, which is gone when the program exits; build the collection in the pool from `PPtr<T>` and `PSlice<T>`"),
        "Box" if generic => format!("`{written}` cannot be stored in a persistent pool: it owns memory on the volatile heap, which is gone when the program exits; allocate the value in the pool with the transaction's `alloc` and store the `PPtr<T>` it returns"),
        "Rc" | "Arc" | "Weak" if generic => format!("`{written}` cannot be stored in a persistent pool: it points at a reference-counted allocation on the volatile heap; use `PPtr<T>` to point at an object in the pool (pool objects are freed explicitly, in a transaction)"),
        "NonNull" | "AtomicPtr" if generic => format!("`{written}` cannot be stored in a persistent pool: it points into volatile memory and means nothing once the pool is reopened, possibly at another address; use `PPtr<T>` to point at an object in the pool"),
        "Cell" | "RefCell" | "UnsafeCell" | "OnceCell" | "SyncUnsafeCell" | "OnceLock"
        | "LazyCell" | "LazyLock" if generic => format!("`{written}` cannot be stored in a persistent pool: interior mutability would let pool data change outside a transaction, where a crash could leave it half-written; store the plain value and write it through a transaction"),
        "Mutex" | "RwLock" if generic => format!("`{written}` cannot be stored in a persistent pool: a lock is interior mutability, which would let pool data change outside a transaction, and its state means nothing after a restart; store the plain value and write it through a transaction"),
        "AtomicBool" | "AtomicU8" | "AtomicU16" | "AtomicU32" | "AtomicU64" | "AtomicUsize"
        | "AtomicI8" | "AtomicI16" | "AtomicI32" | "AtomicI64" | "AtomicIsize" => format!("`{written}` cannot be stored in a persistent pool: an atomic is interior mutability, which would let pool data change outside a transaction, where a crash could lose the write; store the plain integer and write it through a transaction"),
        "Option" if generic => format!("`{written}` cannot be stored in a persistent pool: not every bit pattern is a valid `Option`, and a pool file may contain any bytes; use a null `PPtr<T>` for an absent object, or a `u8` flag field next to the value"),
        "NonZero" if generic => format!("`{written}` cannot be stored in a persistent pool: zero is not a valid value, and a pool file may contain any bytes; use the plain integer type"),
        "NonZeroU8" | "NonZeroU16" | "NonZeroU32" | "NonZeroU64" | "NonZeroU128" | "NonZeroUsize"
        | "NonZeroI8" | "NonZeroI16" | "NonZeroI32" | "NonZeroI64" | "NonZeroI128" | "NonZeroIsize" => format!("`{written}` cannot be stored in a persistent pool: zero is not a valid value, and a pool file may contain any bytes; use the plain integer type"),
        _ => return None,
    };
    Some((ty, message))
}

/// Every method of the generated handle must have a distinct name. A field named `get` would
/// generate `get_mut`, which the handle already has; fields `a_mut` and `set_a` would both
/// generate `set_a_mut`.
fn check_method_names(cx: &Ctxt, input: &Input, fields: &[Field]) {
    let handle = input.handle_ident();
    // Method name -> (what already has it, whether that is another field).
    let mut taken: HashMap<String, (String, bool)> = HashMap::new();
    for (method, what) in [
        ("get", "the handle's method returning the whole value"),
        ("set", "the handle's method replacing the whole value"),
        (
            "get_mut",
            "the handle's method returning a mutable reference to the whole value",
        ),
        (
            "into_inner",
            "the handle's method returning the underlying `PMut`",
        ),
        (
            "offset",
            "the handle's method returning the value's pool offset",
        ),
        (
            "reborrow",
            "the handle's method borrowing it for a shorter time",
        ),
    ] {
        taken.insert(method.to_string(), (what.to_string(), false));
    }
    for field in fields {
        let generated = [
            (field.setter(), "setter"),
            (field.projection(), "field handle"),
        ];
        for (method, kind) in generated {
            let method = method.to_string();
            if let Some((existing, other_field)) = taken.get(&method) {
                cx.syn_error(syn::Error::new(
                    field.span(),
                    format!(
                        "field `{}` would generate the {kind} `{handle}::{method}`, which collides with {existing}; rename {}",
                        field.name,
                        if *other_field { "one of the two fields" } else { "the field" },
                    ),
                ));
            } else {
                taken.insert(
                    method,
                    (
                        format!("the {kind} generated for field `{}`", field.name),
                        true,
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The offending part of `ty` as written, if the check rejects it.
    fn rejected(ty: &str) -> Option<String> {
        let ty: Type = syn::parse_str(ty).unwrap();
        why_not_persistent(&ty).map(|(offender, _)| ast::type_name(offender))
    }

    #[test]
    fn persistent_types_are_accepted() {
        for ty in [
            "u64",
            "()",
            "[u8; 16]",
            "PPtr<Node>",
            "pmem_core::PSlice<u8>",
            "[PPtr<Self>; 2]",
            "Node<T>",
            "T",
        ] {
            assert_eq!(rejected(ty), None, "{ty}");
        }
    }

    #[test]
    fn known_types_are_rejected_where_they_occur() {
        for (ty, offender) in [
            ("bool", "bool"),
            ("std::primitive::char", "std::primitive::char"),
            ("[[bool; 2]; 4]", "bool"),
            ("PPtr<Vec<u8>>", "Vec<u8>"),
            ("[PSlice<&'static str>; 2]", "&'static str"),
            ("std::rc::Rc<Node>", "std::rc::Rc<Node>"),
            ("::core::cell::Cell<u8>", "::core::cell::Cell<u8>"),
            ("alloc::boxed::Box<u8>", "alloc::boxed::Box<u8>"),
            ("AtomicU64", "AtomicU64"),
            ("std::num::NonZero<u32>", "std::num::NonZero<u32>"),
            ("NonZeroU64", "NonZeroU64"),
            ("(u8, u8)", "(u8, u8)"),
            ("[u8]", "[u8]"),
            ("dyn Fn()", "dyn Fn()"),
            ("fn()", "fn()"),
        ] {
            assert_eq!(rejected(ty).as_deref(), Some(offender), "{ty}");
        }
    }

    #[test]
    fn user_types_named_like_standard_ones_are_not_rejected() {
        for ty in [
            // Written with a path of their own.
            "self::Cell<u8>",
            "crate::grid::Box<u32>",
            "grid::Mutex<u64>",
            // Standard generic types are only recognised with their type argument.
            "Cell",
            "Box",
            // Only the standard atomics and non-zero integers.
            "AtomicCounter",
            "NonZeroCount",
        ] {
            assert_eq!(rejected(ty), None, "{ty}");
        }
    }
}
