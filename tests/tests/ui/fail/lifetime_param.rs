use pmem_core::Persistent;

#[derive(Persistent)]
#[repr(C)]
struct Borrowed<'a> {
    value: &'a u64,
}

fn main() {}
