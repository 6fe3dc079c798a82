//! There is no `&mut` into the pool to be had from a reader.
use pmem_core::{Persistent, Pool};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    count: u64,
}

fn main() {
    let pool = Pool::<Root>::builder().create_simulated(1 << 20).unwrap();
    let guard = pool.reader().unwrap();
    let root: &mut Root = guard.root();
    root.count = 1;
}
