//! A `&mut T` from `tx.get_mut` borrows the transaction: it cannot be used after another call
//! on the transaction, read or write.
use pmem_core::{PPtr, Persistent, Pool};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    head: PPtr<Node>,
    count: u64,
}

#[derive(Persistent)]
#[repr(C)]
struct Node {
    value: u64,
}

fn main() {
    let pool = Pool::<Root>::builder().create_simulated(1 << 20).unwrap();
    let _ = pool.transaction(|tx| -> pmem_core::Result<()> {
        let head = tx.root().head;
        let node = tx.get_mut(head)?;
        tx.root_mut().set_count(1)?;
        node.value = 2;
        Ok(())
    });
    let _ = pool.transaction(|tx| -> pmem_core::Result<()> {
        let head = tx.root().head;
        let node = tx.get_mut(head)?;
        let count = tx.root().count;
        node.value = count;
        Ok(())
    });
}
