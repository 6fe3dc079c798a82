//! `align(N)` is accepted when it adds no padding.
use pmem_core::Persistent;

#[derive(Persistent)]
#[repr(C, align(8))]
struct Line {
    a: u32,
    b: u32,
}

#[derive(Persistent)]
#[repr(C)]
#[repr(align(64))]
struct CacheLine {
    words: [u64; 8],
}

fn main() {
    assert_eq!(Line::LAYOUT.align, 8);
    assert_eq!(CacheLine::LAYOUT.align, 64);
}
