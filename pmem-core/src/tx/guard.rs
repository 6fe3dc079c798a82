//! [`WriteGuard`]: a transaction's hold on the pool's one writer state.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::RwLockWriteGuard;

use crate::tx::TxCore;

/// The write lock of a pool, with the re-entry marker cleared on release.
pub(crate) struct WriteGuard<'p> {
    guard: RwLockWriteGuard<'p, TxCore>,
    writer: &'p AtomicUsize,
}

impl<'p> WriteGuard<'p> {
    /// Holds `guard`; `writer` (the pool's record of which thread writes, against re-entry) is
    /// cleared when it drops.
    pub(crate) fn new(guard: RwLockWriteGuard<'p, TxCore>, writer: &'p AtomicUsize) -> Self {
        WriteGuard { guard, writer }
    }
}

impl std::ops::Deref for WriteGuard<'_> {
    type Target = TxCore;
    fn deref(&self) -> &TxCore {
        &self.guard
    }
}

impl std::ops::DerefMut for WriteGuard<'_> {
    fn deref_mut(&mut self) -> &mut TxCore {
        &mut self.guard
    }
}

impl Drop for WriteGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.writer.store(0, Ordering::Relaxed);
    }
}
