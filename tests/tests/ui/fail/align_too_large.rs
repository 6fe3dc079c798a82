use pmem_core::Persistent;

#[derive(Persistent)]
#[repr(C, align(8192))]
struct Block {
    bytes: [u8; 8192],
}

fn main() {}
