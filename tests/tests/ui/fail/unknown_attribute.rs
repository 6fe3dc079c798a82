use pmem_core::Persistent;

#[derive(Persistent)]
#[repr(C)]
#[persistent(rename = "Other")]
struct Root {
    count: u64,
}

fn main() {}
