use pmem_core::Persistent;

#[derive(Persistent)]
#[repr(C)]
struct Bad {
    field: core::cell::UnsafeCell<u64>,
}

fn main() {}
