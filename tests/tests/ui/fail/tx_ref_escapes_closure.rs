//! References into the pool from a transaction cannot outlive it: not as the closure's result,
//! not stored in a variable outside the closure.
use pmem_core::{Persistent, Pool};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    count: u64,
}

fn main() {
    let pool = Pool::<Root>::builder().create_simulated(1 << 20).unwrap();
    let root = pool.transaction(|tx| Ok::<_, pmem_core::Error>(tx.root())).unwrap();
    println!("{}", root.count);

    let mut kept: Option<&Root> = None;
    let _ = pool.transaction(|tx| -> pmem_core::Result<()> {
        kept = Some(tx.root());
        Ok(())
    });
    println!("{}", kept.unwrap().count);
}
