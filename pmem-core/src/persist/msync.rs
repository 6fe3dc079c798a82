//! The msync backend, for pool files that are not on persistent memory.
//!
//! `flush` records which pages need writing; `fence` msyncs them. The protocol above is the same
//! as on persistent memory, only the cost differs.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use super::CACHE_LINE;

pub(crate) struct MsyncBackend {
    base: *mut u8,
    len: u64,
    page: u64,
    /// Page-aligned `[start, end)` ranges waiting for the next fence, merged when they touch.
    pending: Mutex<Vec<(u64, u64)>>,
    /// The first msync failure, kept until a caller that can report it asks.
    failure: Mutex<Option<std::io::Error>>,
    /// Fences still to fail on purpose (tests of the failure path): each skips its msyncs and
    /// reports `EIO`, as a device that failed the write-back would.
    injected_failures: AtomicU32,
}

impl MsyncBackend {
    pub(crate) fn new(base: *mut u8, len: u64) -> Self {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let page = if page > 0 { page as u64 } else { 4096 };
        MsyncBackend {
            base,
            len,
            page,
            pending: Mutex::new(Vec::new()),
            failure: Mutex::new(None),
            injected_failures: AtomicU32::new(0),
        }
    }

    /// Records `[offset, offset + len)`; returns the number of cache lines it covers.
    pub(crate) fn add(&self, offset: u64, len: u64) -> u64 {
        if len == 0 {
            return 0;
        }
        let start = offset / self.page * self.page;
        let end = (offset + len).div_ceil(self.page) * self.page;
        let end = end.min(self.len.div_ceil(self.page) * self.page);
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        match pending.iter_mut().find(|(s, e)| start <= *e && *s <= end) {
            Some(range) => *range = (range.0.min(start), range.1.max(end)),
            None => pending.push((start, end)),
        }
        let first = offset / CACHE_LINE as u64;
        (offset + len).div_ceil(CACHE_LINE as u64) - first
    }

    /// msyncs every pending range; returns the number of msync calls made.
    pub(crate) fn sync(&self) -> u64 {
        let ranges = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if self.injected_failures.load(Ordering::Relaxed) != 0 && !ranges.is_empty() {
            self.injected_failures.fetch_sub(1, Ordering::Relaxed);
            self.fail(std::io::Error::from_raw_os_error(libc::EIO));
            return 0;
        }
        for &(start, end) in &ranges {
            // SAFETY: `[start, end)` is page-aligned and inside the mapping (rounded to whole pages,
            // which the mapping covers); msync only writes dirty pages back.
            let rc = unsafe {
                libc::msync(
                    self.base.add(start as usize) as *mut libc::c_void,
                    (end - start) as usize,
                    libc::MS_SYNC,
                )
            };
            if rc != 0 {
                // The bounds above rule out EINVAL/ENOMEM, so this is the kernel failing to write
                // the pages (EIO, ENOSPC). Keep it for `take_failure`: durability is lost, and the
                // transaction that fenced must not report success.
                self.fail(std::io::Error::last_os_error());
            }
        }
        ranges.len() as u64
    }
}

impl MsyncBackend {
    fn fail(&self, err: std::io::Error) {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(err);
    }

    /// Makes the next `fences` fences that have something to write back fail.
    pub(crate) fn inject_failures(&self, fences: u32) {
        self.injected_failures.store(fences, Ordering::Relaxed);
    }

    /// The first msync failure since the last call, if any.
    pub(crate) fn take_failure(&self) -> Option<std::io::Error> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}
