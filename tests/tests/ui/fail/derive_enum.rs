use pmem_core::Persistent;

#[derive(Persistent)]
#[repr(u8)]
enum State {
    Idle,
    Busy,
}

fn main() {}
