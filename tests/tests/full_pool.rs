//! A full pool: what failing allocations report, and that unlinking and freeing many objects in
//! one transaction works when no allocation does.

use pmem_core::check::check;
use pmem_core::{Error, PPtr, Persistent, Pool};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    head: PPtr<Node>,
    len: u64,
}

#[derive(Persistent)]
#[repr(C)]
struct Node {
    value: u64,
    next: PPtr<Node>,
    prev: PPtr<Node>,
}

#[derive(Persistent)]
#[repr(C)]
struct Small {
    bytes: [u64; 32],
}

/// Allocates unreachable slices of decreasing sizes until not even one word fits.
fn fill(pool: &Pool<Root>) {
    let mut words = 1u64 << 20;
    while words > 0 {
        match pool.transaction(|tx| tx.alloc_slice_zeroed::<u64>(words).map(|_| ())) {
            Ok(()) => {}
            Err(Error::OutOfSpace { .. }) => words /= 2,
            Err(e) => panic!("fill: {e}"),
        }
    }
}

#[test]
fn out_of_space_reports_the_bytes_asked_for() {
    let pool = Pool::<Root>::builder().create_simulated(2 << 20).unwrap();
    fill(&pool);
    match pool.transaction(|tx| tx.alloc_zeroed::<Small>().map(|_| ())) {
        Err(Error::OutOfSpace { requested, .. }) => assert_eq!(requested, 256),
        other => panic!("expected OutOfSpace, got {other:?}"),
    }
    match pool.transaction(|tx| tx.alloc_slice_zeroed::<u64>(100_000).map(|_| ())) {
        Err(Error::OutOfSpace { requested, .. }) => assert_eq!(requested, 800_000),
        other => panic!("expected OutOfSpace, got {other:?}"),
    }
}
