use pmem_core::Persistent;

#[derive(Persistent)]
#[repr(C)]
struct Bad {
    field: fn(u64) -> u64,
}

fn main() {}
