//! Cache-line write-back instructions and the store fence, for x86-64.

/// Size of a cache line: the unit of flushing.
pub const CACHE_LINE: usize = 64;

/// Which instruction writes a cache line back to the persistence domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineFlush {
    /// Writes back and may keep the line cached: the cheapest.
    Clwb,
    /// Writes back and evicts, weakly ordered.
    ClflushOpt,
    /// Writes back and evicts, strongly ordered: the baseline every x86-64 has.
    Clflush,
}

impl LineFlush {
    /// The best instruction this CPU supports, from CPUID.
    pub(crate) fn detect() -> LineFlush {
        if LineFlush::Clwb.supported() {
            LineFlush::Clwb
        } else if LineFlush::ClflushOpt.supported() {
            LineFlush::ClflushOpt
        } else {
            LineFlush::Clflush
        }
    }

    /// Whether this CPU supports the instruction.
    pub(crate) fn supported(self) -> bool {
        match self {
            LineFlush::Clwb => cpuid_leaf7_ebx() & (1 << 24) != 0,
            LineFlush::ClflushOpt => cpuid_leaf7_ebx() & (1 << 23) != 0,
            LineFlush::Clflush => cfg!(target_arch = "x86_64"),
        }
    }

    /// Issues the instruction for every cache line that `[addr, addr + len)` touches and returns
    /// how many lines that was.
    ///
    /// # Safety
    /// The range must lie in mapped memory, and the instruction must be [`supported`](Self::supported).
    #[inline(always)]
    pub(crate) unsafe fn flush_range(self, addr: *const u8, len: usize) -> u64 {
        if len == 0 {
            return 0;
        }
        let first = addr as usize & !(CACHE_LINE - 1);
        let end = addr as usize + len;
        let mut line = first;
        // One loop per instruction: the choice is made once, not per line.
        match self {
            LineFlush::Clwb => {
                while line < end {
                    // SAFETY: the line is mapped (caller) and clwb is supported (caller).
                    unsafe { clwb(line as *const u8) };
                    line += CACHE_LINE;
                }
            }
            LineFlush::ClflushOpt => {
                while line < end {
                    // SAFETY: as above, for clflushopt.
                    unsafe { clflushopt(line as *const u8) };
                    line += CACHE_LINE;
                }
            }
            LineFlush::Clflush => {
                while line < end {
                    // SAFETY: as above; clflush exists on every x86-64.
                    unsafe { clflush(line as *const u8) };
                    line += CACHE_LINE;
                }
            }
        }
        ((end - first).div_ceil(CACHE_LINE)) as u64
    }
}

/// EBX of CPUID leaf 7, sub-leaf 0: bit 23 is CLFLUSHOPT, bit 24 is CLWB. (The standard
/// library's feature detection does not know these two.)
fn cpuid_leaf7_ebx() -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{__cpuid, __cpuid_count};
        #[allow(unused_unsafe)]
        // SAFETY: CPUID exists on every x86-64 CPU; leaf 0 reports the highest leaf, so leaf 7 is
        // only queried where it exists.
        unsafe {
            if __cpuid(0).eax < 7 {
                return 0;
            }
            __cpuid_count(7, 0).ebx
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    0
}

/// CPUID leaf 0's vendor string and leaf 1's EAX (family, model and stepping).
pub(crate) fn cpuid_vendor_and_signature() -> ([u8; 12], u32) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::__cpuid;
        #[allow(unused_unsafe)]
        // SAFETY: CPUID exists on every x86-64 CPU, and leaves 0 and 1 on every one of them.
        let (l0, l1) = unsafe { (__cpuid(0), __cpuid(1)) };
        let mut vendor = [0u8; 12];
        vendor[..4].copy_from_slice(&l0.ebx.to_le_bytes());
        vendor[4..8].copy_from_slice(&l0.edx.to_le_bytes());
        vendor[8..].copy_from_slice(&l0.ecx.to_le_bytes());
        (vendor, l1.eax)
    }
    #[cfg(not(target_arch = "x86_64"))]
    ([0; 12], 0)
}

/// Copies `src` to `dst` with non-temporal stores: the lines go to memory through the
/// write-combining buffers, durable at the next [`sfence`], and are not left in the cache.
/// 16 bytes at a time, and a last word alone, so no byte past `src` is written.
///
/// # Safety
/// `dst` must be 16-aligned and `dst .. dst + src.len()` mapped, writable and disjoint from
/// `src`; `src.len()` must be a multiple of 8.
#[inline(always)]
pub(crate) unsafe fn stream_lines(dst: *mut u8, src: &[u8]) {
    debug_assert!(dst as usize % 16 == 0 && src.len() % 8 == 0);
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_stream_si128, _mm_stream_si64};
        let mut chunks = src.chunks_exact(16);
        let mut at = dst;
        for chunk in &mut chunks {
            // SAFETY: a 16-byte chunk of `src`; `at` is 16-aligned (dst is, and it advances by
            // 16) and inside the caller's range. SSE2 is part of x86-64.
            unsafe {
                let v = _mm_loadu_si128(chunk.as_ptr() as *const __m128i);
                _mm_stream_si128(at as *mut __m128i, v);
                at = at.add(16);
            }
        }
        if let Ok(word) = <[u8; 8]>::try_from(chunks.remainder()) {
            // SAFETY: the last 8 bytes of the caller's range; `at` is 8-aligned.
            unsafe { _mm_stream_si64(at as *mut i64, i64::from_le_bytes(word)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: as the caller promises.
    unsafe {
        dst.copy_from_nonoverlapping(src.as_ptr(), src.len())
    };
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn clwb(p: *const u8) {
    // SAFETY: the caller guarantees `p` is mapped and the CPU has clwb; the instruction only
    // writes the line back, it changes no memory contents.
    unsafe { core::arch::asm!("clwb [{}]", in(reg) p, options(nostack, preserves_flags)) };
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn clflushopt(p: *const u8) {
    // SAFETY: as for `clwb`, with clflushopt.
    unsafe { core::arch::asm!("clflushopt [{}]", in(reg) p, options(nostack, preserves_flags)) };
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn clflush(p: *const u8) {
    // SAFETY: the caller guarantees `p` is mapped; clflush is part of SSE2, which x86-64 has.
    unsafe { core::arch::x86_64::_mm_clflush(p) };
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn clwb(_: *const u8) {}
#[cfg(not(target_arch = "x86_64"))]
unsafe fn clflushopt(_: *const u8) {}
#[cfg(not(target_arch = "x86_64"))]
unsafe fn clflush(_: *const u8) {}

/// Asks for the cache line at `p` in a writable state, without waiting. A hint: it never faults
/// and changes no memory contents.
#[inline(always)]
pub(crate) fn prefetch_write(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetchw is a hint that never faults, even on an unmapped address, and writes
    // nothing; every x86-64 CPU this library flushes on (clflushopt or later) has it.
    unsafe {
        core::arch::asm!("prefetchw [{}]", in(reg) p, options(nostack, preserves_flags, readonly))
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Orders all earlier stores and cache-line write-backs before any later store.
#[inline(always)]
pub(crate) fn sfence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: sfence has no memory operands and every x86-64 CPU has it (SSE).
    unsafe {
        core::arch::x86_64::_mm_sfence()
    };
    #[cfg(not(target_arch = "x86_64"))]
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
}

/// The cache-flush backing: one of the write-back instructions over a mapping.
pub(crate) struct CpuFlush {
    base: *mut u8,
    line: LineFlush,
}

impl CpuFlush {
    /// # Safety
    /// The pool bytes the domain flushes, from `base`, stay mapped for the backing's life, and
    /// the CPU supports `line`.
    pub(crate) unsafe fn new(base: *mut u8, line: LineFlush) -> CpuFlush {
        CpuFlush { base, line }
    }
}

impl super::Persist for CpuFlush {
    #[inline(always)]
    fn flush(&self, offset: u64, len: u64) -> u64 {
        let addr = self.base.wrapping_add(offset as usize);
        // SAFETY: the caller checked the range lies inside the mapping, which stays mapped
        // (`new`'s contract), and `new`'s caller checked the CPU supports the instruction.
        unsafe { self.line.flush_range(addr, len as usize) }
    }

    #[inline(always)]
    fn fence(&self) -> u64 {
        sfence();
        0
    }

    /// Lines already written back cannot be taken back; none is lost.
    fn lose_pending(&self) {}

    fn take_failure(&self) -> Option<std::io::Error> {
        None
    }

    fn mode(&self) -> super::FlushMode {
        match self.line {
            LineFlush::Clwb => super::FlushMode::Clwb,
            LineFlush::ClflushOpt => super::FlushMode::ClflushOpt,
            LineFlush::Clflush => super::FlushMode::Clflush,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every length of whole words writes exactly those bytes, and nothing past them.
    #[test]
    fn streamed_bytes_are_the_source_and_nothing_more() {
        #[repr(C, align(64))]
        struct Buf([u8; 1088]);
        let src: Vec<u8> = (0..1024u32).map(|i| (i * 37 % 251) as u8 + 1).collect();
        for len in (0..=1024).step_by(8) {
            let mut buf = Box::new(Buf([0; 1088]));
            // SAFETY: `buf` is 64-aligned, has room for `len` bytes and is disjoint from `src`;
            // `len` is a multiple of 8.
            unsafe { stream_lines(buf.0.as_mut_ptr(), &src[..len]) };
            sfence();
            assert_eq!(&buf.0[..len], &src[..len], "{len}");
            assert!(
                buf.0[len..].iter().all(|&b| b == 0),
                "{len}: wrote past the end"
            );
        }
    }
}
