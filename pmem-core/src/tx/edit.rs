//! [`Edit`]: which handle a transaction gives out to write a persistent type in place.
//!
//! It lives here, with the handles, rather than in [`Persistent`]: what a type *is* in the pool
//! (layout, fingerprint, pointers) sits below the transactions, and how a transaction writes it
//! sits in them.

use crate::persistent::Persistent;
use crate::ptr::{PPtr, PSlice};
use crate::tx::PMut;

/// A persistent type together with the handle through which a transaction writes it in place:
/// for a struct with `#[derive(Persistent)]`, the generated `<Name>Mut` with a setter per field;
/// for primitives, arrays and pointers, [`PMut<'t, Self>`](PMut) itself. The derive implements
/// it along with [`Persistent`], so every persistent type has one.
///
/// Generic code that hands out or takes handles names it as the bound:
///
/// ```
/// use pmem_core::{Edit, PPtr, Persistent, Result, Tx};
///
/// fn handle<'t, R: Persistent, T: Edit>(tx: &'t mut Tx<'_, R>, ptr: PPtr<T>) -> Result<T::Mut<'t>> {
///     tx.edit(ptr)
/// }
/// ```
pub trait Edit: Persistent {
    /// The write handle: converts from the plain [`PMut`] that transactions make.
    type Mut<'t>: From<PMut<'t, Self>>;
}

macro_rules! edited_through_pmut {
    ($($t:ty),*) => {$(
        impl Edit for $t {
            type Mut<'t> = PMut<'t, $t>;
        }
    )*};
}

crate::persistent::with_primitives!(edited_through_pmut);

impl<T: Persistent, const N: usize> Edit for [T; N] {
    type Mut<'t> = PMut<'t, [T; N]>;
}

impl<T: Persistent> Edit for PPtr<T> {
    type Mut<'t> = PMut<'t, PPtr<T>>;
}

impl<T: Persistent> Edit for PSlice<T> {
    type Mut<'t> = PMut<'t, PSlice<T>>;
}
