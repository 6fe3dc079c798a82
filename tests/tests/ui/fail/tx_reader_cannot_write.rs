//! Readers hand out shared references only: assigning through them does not compile.
use pmem_core::{Persistent, Pool};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    count: u64,
}

fn main() {
    let pool = Pool::<Root>::builder().create_simulated(1 << 20).unwrap();
    pool.read(|r| {
        r.root().count = 5;
    }).unwrap();
    let guard = pool.reader().unwrap();
    guard.root().count += 1;
    let head = pool.read(|r| r.objects::<Root>().next()).unwrap().unwrap_or_default();
    pool.read(|r| {
        let root = r.get(head).unwrap();
        root.count = 7;
    }).unwrap();
}
