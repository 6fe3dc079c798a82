use pmem_core::Persistent;

#[derive(Persistent)]
#[repr(C)]
struct Pair<T> {
    small: T,
    big: u64,
}

// `Pair<u64>` has no padding, `Pair<u8>` has 7 bytes: the check runs where the layout is used.
const OK: u64 = <Pair<u64> as Persistent>::FINGERPRINT;
const BAD: u64 = <Pair<u8> as Persistent>::FINGERPRINT;

fn main() {
    let _ = (OK, BAD);
}
