//! `#[derive(Persistent)]` for pmem-core.

use proc_macro::TokenStream;

/// Derives `pmem_core::Persistent`.
#[proc_macro_derive(Persistent, attributes(persistent))]
pub fn derive_persistent(_input: TokenStream) -> TokenStream {
    TokenStream::new()
}
