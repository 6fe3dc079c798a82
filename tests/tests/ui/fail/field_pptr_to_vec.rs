use pmem_core::Persistent;

#[derive(Persistent)]
#[repr(C)]
struct Bad {
    field: pmem_core::PPtr<Vec<u8>>,
}

fn main() {}
