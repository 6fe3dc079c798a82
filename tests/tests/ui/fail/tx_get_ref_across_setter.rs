//! A reference from `tx.get(p)` cannot be held across a write through the same transaction.
use pmem_core::{PPtr, Persistent, Pool};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    head: PPtr<Node>,
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
        let node = tx.get(head)?;
        tx.edit(head)?.set_value(1)?;
        println!("{}", node.value);
        Ok(())
    });
}
