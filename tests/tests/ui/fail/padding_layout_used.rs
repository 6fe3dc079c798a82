//! When the layout of a padded struct is also evaluated, `LAYOUT`'s own assertion fails too:
//! it is what guarantees the absence of padding wherever the layout is used, independently of
//! the (clearer) trait-based report.
use pmem_core::Persistent;

#[derive(Persistent)]
#[repr(C)]
struct Root {
    tag: u8,
    count: u64,
}

const FINGERPRINT: u64 = <Root as Persistent>::FINGERPRINT;

fn main() {
    let _ = FINGERPRINT;
}
