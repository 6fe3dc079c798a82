//! References from a reader live only as long as its read lock: they cannot leave `pool.read`,
//! nor outlive the `ReadGuard` they came from (a transaction could then write under them).
use pmem_core::{Persistent, Pool};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    count: u64,
}

fn main() {
    let pool = Pool::<Root>::builder().create_simulated(1 << 20).unwrap();
    let root = pool.read(|r| r.root()).unwrap();
    println!("{}", root.count);

    let guard = pool.reader().unwrap();
    let root = guard.root();
    drop(guard);
    pool.transaction(|tx| tx.root_mut().set_count(1)).unwrap();
    println!("{}", root.count);
}
