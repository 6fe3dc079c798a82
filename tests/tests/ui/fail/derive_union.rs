use pmem_core::Persistent;

#[derive(Persistent)]
#[repr(C)]
union Bits {
    int: u64,
    float: f64,
}

fn main() {}
