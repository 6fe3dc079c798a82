//! [`Region`]: bounds-checked access to the mapped pool for the library's own metadata.

/// The mapped bytes of a pool. Every accessor checks bounds (and alignment where it reads a
/// word), so a bug or a hostile offset that slipped past validation panics instead of touching
/// memory outside the mapping.
#[derive(Clone, Copy)]
pub(crate) struct Region {
    base: *mut u8,
    len: u64,
}

// SAFETY: a `Region` is a view of the pool mapping, which the pool keeps alive for as long as any
// `Region` of it is used. Access is synchronised by the pool: the writer holds the write lock (or
// is opening the pool, alone), readers hold the read lock and only read.
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

impl Region {
    /// # Safety
    /// `base .. base + len` must stay mapped, readable and writable while the region is used,
    /// and `base` must be 4096-aligned.
    pub(crate) unsafe fn new(base: *mut u8, len: u64) -> Region {
        debug_assert_eq!(base as usize % 4096, 0);
        Region { base, len }
    }

    pub(crate) fn base(&self) -> *mut u8 {
        self.base
    }

    /// Bytes mapped.
    #[inline]
    pub(crate) fn size(&self) -> u64 {
        self.len
    }

    #[inline]
    fn check(&self, offset: u64, len: u64) {
        if offset > self.len || len > self.len - offset {
            outside(offset, len, self.len);
        }
    }

    /// The address of `offset`, after checking `len` bytes from it are in the pool.
    #[inline]
    pub(crate) fn ptr(&self, offset: u64, len: u64) -> *mut u8 {
        self.check(offset, len);
        self.base.wrapping_add(offset as usize)
    }

    #[inline]
    pub(crate) fn read_u64(&self, offset: u64) -> u64 {
        if offset % 8 != 0 {
            unaligned(offset);
        }
        let p = self.ptr(offset, 8) as *const u64;
        // SAFETY: in bounds and aligned (checked above); the mapping is live (`new`).
        unsafe { p.read() }
    }

    #[inline]
    pub(crate) fn write_u64(&self, offset: u64, value: u64) {
        if offset % 8 != 0 {
            unaligned(offset);
        }
        let p = self.ptr(offset, 8) as *mut u64;
        // SAFETY: as in `read_u64`; the caller is the pool's only writer.
        unsafe { p.write(value) };
    }

    /// Copies bytes into the pool.
    #[inline]
    pub(crate) fn write(&self, offset: u64, bytes: &[u8]) {
        let p = self.ptr(offset, bytes.len() as u64);
        // SAFETY: in bounds (checked); `bytes` never aliases the target range: callers copy from
        // ordinary memory or from a log area disjoint from the target.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) };
    }

    /// Zeroes pool bytes.
    #[inline]
    pub(crate) fn zero(&self, offset: u64, len: u64) {
        let p = self.ptr(offset, len);
        // SAFETY: in bounds (checked).
        unsafe { core::ptr::write_bytes(p, 0, len as usize) };
    }

    /// A shared view of pool bytes.
    ///
    /// # Safety
    /// Nothing may write the range while the slice lives.
    #[inline]
    pub(crate) unsafe fn slice(&self, offset: u64, len: u64) -> &[u8] {
        let p = self.ptr(offset, len);
        // SAFETY: in bounds (checked); the caller rules out concurrent writes.
        unsafe { core::slice::from_raw_parts(p, len as usize) }
    }
}

// The panics are out of line: inlined, their formatting arguments were stored to the stack
// before every check, on every metadata read of a checked pointer access.
#[cold]
#[inline(never)]
fn outside(offset: u64, len: u64, pool_len: u64) -> ! {
    panic!("pool access {offset:#x}+{len:#x} outside {pool_len:#x} bytes")
}

#[cold]
#[inline(never)]
fn unaligned(offset: u64) -> ! {
    panic!("unaligned metadata word {offset:#x}")
}

impl core::fmt::Debug for Region {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Region({} bytes)", self.len)
    }
}
