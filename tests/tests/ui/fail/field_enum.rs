use pmem_core::Persistent;

#[repr(u8)]
enum Color {
    Red,
    Green,
}

#[derive(Persistent)]
#[repr(C)]
struct Pixel {
    color: Color,
}

fn main() {}
