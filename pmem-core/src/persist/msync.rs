//! The msync backend, for pool files that are not on persistent memory.
//!
//! `flush` records which pages need writing; `fence` msyncs them, with one call over the span
//! from the first pending page to the last: on Linux an `MS_SYNC` msync writes the dirty pages of
//! the range and then flushes the device once, so one call over the span costs one device flush
//! where one call per range cost one each (the kernel finds dirty pages by a tagged search, so
//! the clean pages between cost next to nothing). The protocol above is the same as on
//! persistent memory, only the cost differs.

use std::sync::Mutex;

use super::{FlushMode, Persist, CACHE_LINE};

pub(crate) struct MsyncBackend {
    base: *mut u8,
    len: u64,
    page: u64,
    /// Page-aligned `[start, end)` ranges waiting for the next fence, merged when they touch.
    pending: Mutex<Vec<(u64, u64)>>,
    /// The first msync failure, kept until a caller that can report it asks.
    failure: Mutex<Option<std::io::Error>>,
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

    /// msyncs the span of every pending range with one call; returns the number of msync calls
    /// made (0 or 1).
    pub(crate) fn sync(&self) -> u64 {
        let ranges = self.take_pending();
        let Some(start) = ranges.iter().map(|r| r.0).min() else {
            return 0;
        };
        let end = ranges.iter().map(|r| r.1).max().unwrap_or(start);
        // SAFETY: `[start, end)` is page-aligned and inside the mapping (each range was rounded
        // to whole pages, which the mapping covers); msync only writes dirty pages back.
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
        1
    }
}

impl MsyncBackend {
    fn take_pending(&self) -> Vec<(u64, u64)> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn fail(&self, err: std::io::Error) {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(err);
    }

    /// The first msync failure since the last call, if any.
    pub(crate) fn take_failure(&self) -> Option<std::io::Error> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

impl Persist for MsyncBackend {
    fn flush(&self, offset: u64, len: u64) -> u64 {
        self.add(offset, len)
    }

    fn fence(&self) -> u64 {
        self.sync()
    }

    /// Forgets the pending ranges: this fence does not write them back (the kernel still may,
    /// as it may write any dirty page at any moment).
    fn lose_pending(&self) {
        self.take_pending();
    }

    fn take_failure(&self) -> Option<std::io::Error> {
        MsyncBackend::take_failure(self)
    }

    fn mode(&self) -> FlushMode {
        FlushMode::Msync
    }
}
