//! Two write handles into one transaction cannot be alive at once (each borrows it mutably),
//! nor a handle and a `&mut` from `get_mut_many`.
use pmem_core::{PPtr, Persistent, Pool};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    a: PPtr<Node>,
    b: PPtr<Node>,
}

#[derive(Persistent)]
#[repr(C)]
struct Node {
    value: u64,
}

fn main() {
    let pool = Pool::<Root>::builder().create_simulated(1 << 20).unwrap();
    let _ = pool.transaction(|tx| -> pmem_core::Result<()> {
        let (a, b) = (tx.root().a, tx.root().b);
        let mut first = tx.edit(a)?;
        let mut second = tx.edit(b)?;
        first.set_value(1)?;
        second.set_value(2)?;
        Ok(())
    });
}
