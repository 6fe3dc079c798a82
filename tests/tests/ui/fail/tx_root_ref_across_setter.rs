//! A reference from `tx.root()` cannot be held across a setter of the same transaction: the
//! setter would write the bytes it points at.
use pmem_core::{Persistent, Pool};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    count: u64,
}

fn main() {
    let pool = Pool::<Root>::builder().create_simulated(1 << 20).unwrap();
    let _ = pool.transaction(|tx| -> pmem_core::Result<()> {
        let root = tx.root();
        tx.root_mut().set_count(5)?;
        assert_eq!(root.count, 5);
        Ok(())
    });
}
