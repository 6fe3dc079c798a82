//! `prim`: what each way of making a line durable costs on this CPU, for each kind of line the
//! library writes. Not a PMDK workload: it measures the instructions themselves, each followed
//! by `sfence`, in a loop, on ordinary memory (which is what `/dev/shm` pools are).
//!
//! - `log-line-64`: a log line written once, whole, at rotating positions (an undo entry).
//! - `log-line-24`: the same with a partial line (a commit record of a small transaction).
//! - `data-rmw-8`: an 8-byte counter read, incremented and written back in place (W1's data).
//! - `meta-word-8`: an 8-byte metadata word stored without reading it first.
//! - `w1-shape`: a log line, fence, data read-modify-write, a second log line, fence.
//!
//! The primitives: `clwb`, `clflushopt` and `clflush` after ordinary stores, and `nt`
//! (non-temporal stores: 16-byte `movntdq` for whole lines, 8-byte `movnti` otherwise).

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::arch::asm;
use std::arch::x86_64::{_mm_clflush, _mm_sfence, _mm_stream_si64};
use std::time::Instant;

use crate::common::{report, Env, Result};

#[derive(Clone, Copy, PartialEq)]
enum Way {
    Clwb,
    ClflushOpt,
    Clflush,
    NonTemporal,
}

impl Way {
    fn name(self) -> &'static str {
        match self {
            Way::Clwb => "clwb",
            Way::ClflushOpt => "clflushopt",
            Way::Clflush => "clflush",
            Way::NonTemporal => "nt",
        }
    }
}

/// A 64-aligned, zeroed buffer of our own.
struct Buffer {
    ptr: *mut u64,
    layout: Layout,
}

impl Buffer {
    fn new(bytes: usize) -> Buffer {
        let layout = Layout::from_size_align(bytes, 4096).expect("layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) } as *mut u64;
        assert!(!ptr.is_null(), "out of memory");
        Buffer { ptr, layout }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr as *mut u8, self.layout) };
    }
}

/// Writes `words` 8-byte words at `p` (64-aligned, in the buffer) the given way: stores then
/// the flush instruction on the line, or non-temporal stores.
///
/// # Safety
/// `p .. p + words` lies in a live buffer and `way`'s instruction exists on this CPU.
#[inline(always)]
unsafe fn write_line(way: Way, p: *mut u64, value: u64, words: usize) {
    for i in 0..words {
        // SAFETY: in the buffer (caller).
        unsafe {
            if way == Way::NonTemporal {
                _mm_stream_si64(p.add(i) as *mut i64, (value + i as u64) as i64);
            } else {
                p.add(i).write_volatile(value + i as u64);
            }
        }
    }
    // SAFETY: as above.
    unsafe { flush(way, p) };
}

/// The flush instruction of `way` on the line at `p` (nothing for non-temporal stores).
///
/// # Safety
/// `p` is in a live buffer and the instruction exists on this CPU.
#[inline(always)]
unsafe fn flush(way: Way, p: *const u64) {
    // SAFETY: the caller's promise; the instructions only write the line back.
    unsafe {
        match way {
            Way::Clwb => asm!("clwb [{}]", in(reg) p, options(nostack, preserves_flags)),
            Way::ClflushOpt => {
                asm!("clflushopt [{}]", in(reg) p, options(nostack, preserves_flags))
            }
            Way::Clflush => _mm_clflush(p as *const u8),
            Way::NonTemporal => {}
        }
    }
}

/// Reads the counter at `p`, adds one and writes it back the given way.
///
/// # Safety
/// As for [`write_line`].
#[inline(always)]
unsafe fn bump(way: Way, p: *mut u64) {
    // SAFETY: the caller's promise.
    unsafe {
        let v = p.read_volatile();
        if way == Way::NonTemporal {
            _mm_stream_si64(p as *mut i64, (v + 1) as i64);
        } else {
            p.write_volatile(v + 1);
            flush(way, p);
        }
    }
}

fn has(flag: &str) -> bool {
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| {
        c.lines()
            .any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == flag))
    })
}

/// The lines the loops write, in one buffer: a 4 KiB log area, a data word and a metadata
/// word, each on its own page.
struct Lines {
    buf: Buffer,
    /// The flush instructions this CPU has, best first.
    ways: Vec<Way>,
}

impl Lines {
    fn new() -> Lines {
        let mut ways = vec![Way::Clflush, Way::NonTemporal];
        if has("clflushopt") {
            ways.insert(0, Way::ClflushOpt);
        }
        if has("clwb") {
            ways.insert(0, Way::Clwb);
        }
        Lines {
            buf: Buffer::new(1 << 20),
            ways,
        }
    }

    /// Writes `words` words of log line `i % lines` (of 8 or 16 words each) the given way.
    fn log(&self, way: Way, i: u64, stride_words: usize, lines: usize, words: usize) {
        assert!(self.ways.contains(&way) && lines * stride_words <= 512 && words <= 8);
        let at = (i as usize % lines) * stride_words;
        // SAFETY: `at + words` words lie in the first 4 KiB of the 1 MiB buffer, 64-aligned
        // (stride of 8 or 16 words); the instruction was found in /proc/cpuinfo (checked).
        unsafe { write_line(way, self.buf.ptr.add(at), i, words) };
    }

    /// The data counter, incremented the given way.
    fn data(&self, way: Way) {
        assert!(self.ways.contains(&way));
        // SAFETY: word 8192 (byte 64 KiB) lies in the 1 MiB buffer; the instruction exists.
        unsafe { bump(way, self.buf.ptr.add(8192)) };
    }

    /// The metadata word, stored the given way.
    fn meta(&self, way: Way, i: u64) {
        assert!(self.ways.contains(&way));
        // SAFETY: word 16384 (byte 128 KiB) lies in the 1 MiB buffer; the instruction exists.
        unsafe { write_line(way, self.buf.ptr.add(16384), i, 1) };
    }
}

fn sfence() {
    // SAFETY: sfence has no operands; every x86-64 CPU has it.
    unsafe { _mm_sfence() }
}

pub fn run(env: &Env) -> Result<()> {
    let lines = Lines::new();
    let n = env.n;
    let time = |name: &str, f: &mut dyn FnMut(u64)| {
        let mut reps = Vec::new();
        for _ in 0..env.reps {
            let start = Instant::now();
            for i in 0..n {
                f(i);
            }
            reps.push(start.elapsed().as_nanos() as f64 / n as f64);
        }
        report(name, &reps, n, "");
    };
    for &way in &lines.ways {
        let tag = way.name();
        time(&format!("PRIM-log-line-64[{tag}]"), &mut |i| {
            lines.log(way, i, 8, 8, 8);
            sfence();
        });
        time(&format!("PRIM-log-line-24[{tag}]"), &mut |i| {
            lines.log(way, i, 8, 8, 3);
            sfence();
        });
        time(&format!("PRIM-data-rmw-8[{tag}]"), &mut |_| {
            lines.data(way);
            sfence();
        });
        time(&format!("PRIM-meta-word-8[{tag}]"), &mut |i| {
            lines.meta(way, i);
            sfence();
        });
        // The shape of W1: log line, fence, data in place, commit line, fence. With
        // non-temporal log lines the data line takes the best flush the CPU has.
        let data_way = if way == Way::NonTemporal {
            lines.ways[0]
        } else {
            way
        };
        let name = format!("PRIM-w1-shape[log={tag},data={}]", data_way.name());
        time(&name, &mut |i| {
            lines.log(way, 2 * i, 8, 8, 8);
            sfence();
            lines.data(data_way);
            lines.log(way, 2 * i + 1, 8, 8, 6);
            sfence();
        });
    }
    Ok(())
}
