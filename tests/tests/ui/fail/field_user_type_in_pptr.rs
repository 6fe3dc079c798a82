use pmem_core::{PPtr, Persistent};

// Not `Persistent`: a plain struct without the derive.
struct Plain {
    value: u64,
}

#[derive(Persistent)]
#[repr(C)]
struct Root {
    plain: PPtr<Plain>,
}

fn main() {
    let _ = Plain { value: 0 }.value;
}
