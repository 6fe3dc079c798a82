//! The derive input, read into the shape the checks and the code generator work on.

use proc_macro2::{Ident, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, ToTokens};
use syn::ext::IdentExt;

use crate::attr::{self, Repr};
use crate::ctxt::Ctxt;

/// The whole `#[derive(Persistent)]` input.
pub(crate) struct Input<'a> {
    pub(crate) original: &'a syn::DeriveInput,
    /// The type's name without `r#`, as stored in its layout.
    pub(crate) name: String,
    pub(crate) repr: Repr,
    pub(crate) attrs: attr::Container,
    pub(crate) data: Data<'a>,
}

pub(crate) enum Data<'a> {
    Struct(Vec<Field<'a>>),
    Enum(&'a syn::DataEnum),
    Union(&'a syn::DataUnion),
}

/// One field of the struct.
pub(crate) struct Field<'a> {
    pub(crate) original: &'a syn::Field,
    /// `count` or `0`, for `offset_of!` and field access.
    pub(crate) member: syn::Member,
    /// The name stored in the layout and used to build method names: `count`, `0`.
    pub(crate) name: String,
    /// The field type as written; only valid inside impls whose `Self` is the struct.
    pub(crate) ty: &'a syn::Type,
    /// The field type with `Self` replaced by the struct's type, for use in the handle's impl
    /// (where `Self` is the handle) and in free functions.
    pub(crate) ty_outside: syn::Type,
}

impl<'a> Input<'a> {
    pub(crate) fn from_ast(cx: &Ctxt, input: &'a syn::DeriveInput) -> Input<'a> {
        let self_ty = {
            let ident = &input.ident;
            let (_, ty_generics, _) = input.generics.split_for_impl();
            quote!(#ident #ty_generics)
        };
        let data = match &input.data {
            syn::Data::Struct(data) => Data::Struct(
                data.fields
                    .iter()
                    .enumerate()
                    .map(|(i, field)| {
                        attr::reject_field_attrs(cx, &field.attrs);
                        Field::new(i, field, &self_ty)
                    })
                    .collect(),
            ),
            syn::Data::Enum(data) => Data::Enum(data),
            syn::Data::Union(data) => Data::Union(data),
        };
        Input {
            original: input,
            name: input.ident.unraw().to_string(),
            repr: Repr::from_attrs(&input.attrs),
            attrs: attr::Container::from_attrs(cx, &input.attrs),
            data,
        }
    }

    pub(crate) fn ident(&self) -> &'a Ident {
        &self.original.ident
    }

    pub(crate) fn generics(&self) -> &'a syn::Generics {
        &self.original.generics
    }

    /// Whether the struct has type or const parameters, so that its size is not known when the
    /// derive's output is type-checked.
    pub(crate) fn is_generic(&self) -> bool {
        !self.original.generics.params.is_empty()
    }

    /// The name of the generated write handle: `RootMut` for `Root`.
    pub(crate) fn handle_ident(&self) -> Ident {
        format_ident!("{}Mut", self.name, span = self.original.ident.span())
    }
}

impl<'a> Field<'a> {
    fn new(index: usize, field: &'a syn::Field, self_ty: &TokenStream) -> Field<'a> {
        let (member, name) = match &field.ident {
            Some(ident) => (syn::Member::Named(ident.clone()), ident.unraw().to_string()),
            None => (
                syn::Member::Unnamed(syn::Index {
                    index: index as u32,
                    span: field_span(field),
                }),
                index.to_string(),
            ),
        };
        let ty_outside = syn::parse2(replace_self(field.ty.to_token_stream(), self_ty))
            .unwrap_or_else(|_| field.ty.clone());
        Field {
            original: field,
            member,
            name,
            ty: &field.ty,
            ty_outside,
        }
    }

    /// The span that names this field: its identifier, or its type for tuple fields.
    pub(crate) fn span(&self) -> Span {
        field_span(self.original)
    }

    /// `set_count` for `count`, `set_0` for tuple field 0.
    pub(crate) fn setter(&self) -> Ident {
        format_ident!("set_{}", self.name, span = self.span())
    }

    /// `count_mut` for `count`, `_0_mut` for tuple field 0.
    pub(crate) fn projection(&self) -> Ident {
        match self.member {
            syn::Member::Named(_) => format_ident!("{}_mut", self.name, span = self.span()),
            syn::Member::Unnamed(_) => format_ident!("_{}_mut", self.name, span = self.span()),
        }
    }

    /// The field type as written, with normalised spacing: `PPtr<Node>`, `[u8; 16]`.
    pub(crate) fn type_name(&self) -> String {
        type_name(self.ty)
    }
}

fn field_span(field: &syn::Field) -> Span {
    match &field.ident {
        Some(ident) => ident.span(),
        None => syn::spanned::Spanned::span(&field.ty),
    }
}

/// Replaces every `Self` in `tokens` by `self_ty`, so that a field type such as `PPtr<Self>` can
/// be written where `Self` means something else.
fn replace_self(tokens: TokenStream, self_ty: &TokenStream) -> TokenStream {
    let mut out = Vec::new();
    let mut iter = tokens.into_iter().peekable();
    while let Some(tt) = iter.next() {
        match tt {
            TokenTree::Ident(ident) if ident == "Self" => {
                let qualified =
                    matches!(iter.peek(), Some(TokenTree::Punct(p)) if p.as_char() == ':');
                // `Self::Assoc` must become `<Node<T>>::Assoc`.
                if qualified {
                    out.extend(quote!(<#self_ty>));
                } else {
                    out.extend(self_ty.clone());
                }
            }
            TokenTree::Group(group) => {
                let mut new = proc_macro2::Group::new(
                    group.delimiter(),
                    replace_self(group.stream(), self_ty),
                );
                new.set_span(group.span());
                out.push(TokenTree::Group(new));
            }
            other => out.push(other),
        }
    }
    out.into_iter().collect()
}

/// Prints a type the way a person writes it: `PPtr<Node>`, `[u8; 4]`, `&'a mut T`, `fn(u8) -> u8`.
/// Used only for layout descriptions and messages, never for identity.
pub(crate) fn type_name(ty: &syn::Type) -> String {
    type_name_of_tokens(ty.to_token_stream())
}

/// [`type_name`] for any tokens, such as `align(8)`.
pub(crate) fn type_name_of_tokens(tokens: impl ToTokens) -> String {
    let mut printer = Printer {
        out: String::new(),
        prev: Prev::Start,
        last_word: String::new(),
    };
    printer.print(tokens.into_token_stream());
    printer.out
}

#[derive(Clone, Copy, PartialEq)]
enum Prev {
    Start,
    /// An identifier, keyword or literal.
    Word,
    /// A punctuation that binds to what follows (`&`, `*`, `'`, `<`, `::`, an opening delimiter).
    Tight,
    /// `,` or `;`, followed by a space.
    Separator,
    /// `+`, `=`, `->`, spaced on both sides.
    Spaced,
    /// `>` or a closing delimiter.
    Close,
}

struct Printer {
    out: String,
    prev: Prev,
    last_word: String,
}

impl Printer {
    fn print(&mut self, tokens: TokenStream) {
        let mut iter = tokens.into_iter().peekable();
        while let Some(tt) = iter.next() {
            match tt {
                TokenTree::Ident(ident) => {
                    self.word(&ident.to_string());
                }
                TokenTree::Literal(lit) => self.word(&lit.to_string()),
                TokenTree::Group(group) => {
                    let (open, close) = match group.delimiter() {
                        proc_macro2::Delimiter::Parenthesis => ("(", ")"),
                        proc_macro2::Delimiter::Bracket => ("[", "]"),
                        proc_macro2::Delimiter::Brace => ("{", "}"),
                        proc_macro2::Delimiter::None => {
                            self.print(group.stream());
                            continue;
                        }
                    };
                    // `&mut [u8]`, `*const (u8, u8)`, but `fn(u8)` and `Fn(u8)`.
                    let keyword_before = self.prev == Prev::Word
                        && matches!(self.last_word.as_str(), "mut" | "const" | "dyn" | "impl");
                    if matches!(self.prev, Prev::Separator | Prev::Spaced)
                        || (self.prev == Prev::Word && (open == "[" || keyword_before))
                    {
                        self.out.push(' ');
                    }
                    self.out.push_str(open);
                    self.prev = Prev::Tight;
                    self.print(group.stream());
                    self.out.push_str(close);
                    self.prev = Prev::Close;
                }
                TokenTree::Punct(punct) => {
                    let c = punct.as_char();
                    let arrow = c == '-'
                        && matches!(iter.peek(), Some(TokenTree::Punct(p)) if p.as_char() == '>');
                    if arrow {
                        iter.next();
                        self.spaced("->");
                        continue;
                    }
                    match c {
                        ',' | ';' => {
                            self.out.push(c);
                            self.prev = Prev::Separator;
                        }
                        '+' | '=' => self.spaced(&c.to_string()),
                        '>' => {
                            self.out.push(c);
                            self.prev = Prev::Close;
                        }
                        _ => {
                            if matches!(self.prev, Prev::Separator | Prev::Spaced)
                                || (self.prev == Prev::Word && matches!(c, '&' | '*' | '\''))
                            {
                                self.out.push(' ');
                            }
                            self.out.push(c);
                            self.prev = Prev::Tight;
                        }
                    }
                }
            }
        }
    }

    fn word(&mut self, word: &str) {
        if matches!(self.prev, Prev::Word | Prev::Separator | Prev::Spaced) {
            self.out.push(' ');
        }
        self.out.push_str(word);
        self.prev = Prev::Word;
        word.clone_into(&mut self.last_word);
    }

    fn spaced(&mut self, punct: &str) {
        if self.prev != Prev::Start {
            self.out.push(' ');
        }
        self.out.push_str(punct);
        self.prev = Prev::Spaced;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(ty: &str, expected: &str) {
        let ty: syn::Type = syn::parse_str(ty).unwrap();
        assert_eq!(type_name(&ty), expected);
    }

    #[test]
    fn type_names_are_printed_as_written() {
        check("u64", "u64");
        check("PPtr < Node >", "PPtr<Node>");
        check("pmem_core :: PPtr<Node<T>>", "pmem_core::PPtr<Node<T>>");
        check("[u8 ; 16]", "[u8; 16]");
        check("[[u8; 4]; N]", "[[u8; 4]; N]");
        check("&'a mut T", "&'a mut T");
        check("& T", "&T");
        check("*const [u8]", "*const [u8]");
        check("fn(u8, u16) -> u32", "fn(u8, u16) -> u32");
        check("Box<dyn Fn(u8) + Send>", "Box<dyn Fn(u8) + Send>");
        check("<T as Tr>::Assoc", "<T as Tr>::Assoc");
        check("Foo<Item = u8>", "Foo<Item = u8>");
        check("(u8, u16)", "(u8, u16)");
        check("()", "()");
        check("&mut (u8, u8)", "&mut (u8, u8)");
        check("Buf<{ N + 1 }>", "Buf<{N + 1}>");
    }

    #[test]
    fn self_is_replaced() {
        let replaced = |ty: &str, self_ty: TokenStream| {
            let ty: syn::Type = syn::parse_str(ty).unwrap();
            type_name_of_tokens(replace_self(ty.to_token_stream(), &self_ty))
        };
        assert_eq!(replaced("PPtr<Self>", quote!(Node<T>)), "PPtr<Node<T>>");
        assert_eq!(replaced("[Self::X; 2]", quote!(Node)), "[<Node>::X; 2]");
        assert_eq!(replaced("[PPtr<Self>; 2]", quote!(Node)), "[PPtr<Node>; 2]");
    }
}
