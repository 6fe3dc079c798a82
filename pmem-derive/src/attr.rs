//! The attributes the derive reads: `#[repr(..)]` and `#[persistent(..)]`.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};

use crate::ctxt::Ctxt;

/// What the struct's `#[repr(..)]` attributes say, with the tokens of each modifier so errors can
/// point at them.
#[derive(Default)]
pub(crate) struct Repr {
    pub(crate) c: bool,
    pub(crate) transparent: bool,
    /// `packed` or `packed(N)`.
    pub(crate) packed: Option<TokenStream>,
    /// `align(N)`: accepted up to the alignment a pool gives its objects, since it only adds
    /// trailing padding, which the padding check sees.
    pub(crate) align: Option<TokenStream>,
    /// The `N` of `align(N)`, when it is an integer literal (the largest, if several are given).
    pub(crate) align_value: Option<u64>,
}

impl Repr {
    /// Reads every `#[repr(..)]` attribute. Malformed ones are left for rustc to report, which
    /// it does better than we could.
    pub(crate) fn from_attrs(attrs: &[syn::Attribute]) -> Repr {
        let mut repr = Repr::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("repr")) {
            let _ = attr.parse_nested_meta(|meta| {
                let path = &meta.path;
                // Keep the argument group itself, with its span, so errors can point at it.
                let args = if meta.input.peek(syn::token::Paren) {
                    Some(meta.input.parse::<proc_macro2::TokenTree>()?)
                } else {
                    None
                };
                let tokens = quote!(#path #args);
                if path.is_ident("C") {
                    repr.c = true;
                } else if path.is_ident("transparent") {
                    repr.transparent = true;
                } else if path.is_ident("packed") {
                    repr.packed = Some(tokens);
                } else if path.is_ident("align") {
                    let value = match &args {
                        Some(proc_macro2::TokenTree::Group(g)) => {
                            syn::parse2::<syn::LitInt>(g.stream())
                                .ok()
                                .and_then(|n| n.base10_parse::<u64>().ok())
                        }
                        _ => None,
                    };
                    if value >= repr.align_value {
                        repr.align = Some(tokens);
                        repr.align_value = value;
                    }
                }
                Ok(())
            });
        }
        repr
    }
}

/// The options given in `#[persistent(..)]` on the struct.
pub(crate) struct Container {
    /// The path through which generated code names pmem-core; `::pmem_core` unless overridden
    /// with `#[persistent(crate = "path")]` (for crates that re-export pmem-core).
    pub(crate) krate: syn::Path,
}

impl Container {
    pub(crate) fn from_attrs(cx: &Ctxt, attrs: &[syn::Attribute]) -> Container {
        let mut krate: Option<syn::Path> = None;
        for attr in attrs.iter().filter(|a| a.path().is_ident("persistent")) {
            if let syn::Meta::Path(_) = attr.meta {
                cx.error_spanned_by(
                    attr,
                    "expected `#[persistent(crate = \"path\")]`; a bare `#[persistent]` does nothing",
                );
                continue;
            }
            let result = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("crate") {
                    let lit: syn::LitStr = meta.value()?.parse()?;
                    let path = lit.parse::<syn::Path>().map_err(|_| {
                        syn::Error::new(
                            lit.span(),
                            format!(
                                "`{}` is not a path; expected the path of the pmem_core crate, such as `my_crate::pmem`",
                                lit.value()
                            ),
                        )
                    })?;
                    if krate.is_some() {
                        cx.error_spanned_by(&meta.path, "duplicate `crate` option in `#[persistent(..)]`");
                    }
                    krate = Some(path);
                    Ok(())
                } else {
                    let name = meta.path.to_token_stream().to_string().replace(' ', "");
                    Err(meta.error(format!(
                        "unknown `#[persistent]` option `{name}`; the only option is `crate = \"path\"`, which names the pmem_core crate when it is re-exported"
                    )))
                }
            });
            if let Err(error) = result {
                cx.syn_error(error);
            }
        }
        Container {
            krate: krate.unwrap_or_else(|| syn::parse_quote!(::pmem_core)),
        }
    }
}

/// Rejects `#[persistent]` where it has no meaning (on fields): a typo there should not be ignored.
pub(crate) fn reject_field_attrs(cx: &Ctxt, attrs: &[syn::Attribute]) {
    for attr in attrs.iter().filter(|a| a.path().is_ident("persistent")) {
        cx.error_spanned_by(
            attr,
            "`#[persistent(..)]` is not supported on fields; it goes on the struct",
        );
    }
}
