//! Transactions.

mod handle;

pub use handle::PMut;

use crate::error::Result;

/// The state of an open transaction.
pub(crate) struct TxCore {
    base: *mut u8,
}

impl TxCore {
    pub(crate) fn address(&self, offset: u64) -> *mut u8 {
        self.base.wrapping_add(offset as usize)
    }

    pub(crate) fn snapshot(&mut self, _offset: u64, _len: u64) -> Result<()> {
        todo!()
    }

    pub(crate) fn write(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        self.snapshot(offset, bytes.len() as u64)?;
        // SAFETY: placeholder
        unsafe {
            core::ptr::copy_nonoverlapping(bytes.as_ptr(), self.address(offset), bytes.len())
        };
        Ok(())
    }
}
