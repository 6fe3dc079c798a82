//! Alignment that a struct gets from a field, not from its own `repr`, is checked where its
//! layout is evaluated (as every pool operation on the type does). The field's type here has a
//! hand-written impl that breaks the trait's contract (alignment at most `MAX_ALIGN`).
use pmem_core::{Persistent, TypeLayout};

#[repr(C, align(8192))]
struct Block([u8; 8192]);

// SAFETY: not sound: the alignment is above `MAX_ALIGN` (the case under test).
unsafe impl Persistent for Block {
    const LAYOUT: TypeLayout = TypeLayout {
        name: "Block",
        size: 8192,
        align: 8192,
        fields: &[],
    };
    const TYPE_ID: u64 = 1;
}

#[derive(Persistent)]
#[repr(C)]
struct Holder {
    block: Block,
}

const FINGERPRINT: u64 = <Holder as Persistent>::FINGERPRINT;

fn main() {
    let _ = FINGERPRINT;
}
