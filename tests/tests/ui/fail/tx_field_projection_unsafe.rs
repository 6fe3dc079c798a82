//! A field handle is made from an offset into the value, which nothing can check for a handle
//! of any type: projecting is `unsafe`, so safe code cannot reach bytes outside the value (an
//! offset of `usize::MAX - 3` would otherwise wrap around to just before it).
use pmem_core::{Persistent, Pool};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    count: u64,
}

fn main() {
    let pool = Pool::<Root>::builder().create_simulated(1 << 20).unwrap();
    let _ = pool.transaction(|tx| {
        tx.root_mut()
            .into_inner()
            .__into_field::<u32>(usize::MAX - 3)
            .set(7)
    });
    let _ = pool.transaction(|tx| tx.root_mut().into_inner().__field::<u32>(0).set(7));
}
