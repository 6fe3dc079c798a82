use pmem_core::Persistent;

// `get` would generate `get_mut`, which the handle already has; `a_mut` and `set_a` would both
// generate `set_a_mut`.
#[derive(Persistent)]
#[repr(C)]
struct Root {
    get: u64,
    a_mut: u64,
    set_a: u64,
}

fn main() {}
