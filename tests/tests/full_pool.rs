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

const NODES: u64 = 10_000;

fn open_file(path: &std::path::Path) -> Pool<Root> {
    Pool::<Root>::builder().force_pmem(true).open(path).unwrap()
}

/// A doubly linked list of `NODES` nodes, then the pool filled until no allocation succeeds;
/// one transaction then unlinks every node (a logged write to its successor each) and frees it.
#[test]
fn unlinking_and_freeing_ten_thousand_objects_in_one_transaction_on_a_full_pool() {
    let dir = pmem_tests::shm_tempdir("full-pool");
    let path = dir.path().join("full.pool");
    let pool = Pool::<Root>::builder()
        .force_pmem(true)
        .create(&path, 16 << 20)
        .unwrap();
    for batch in 0..NODES / 1000 {
        pool.transaction(|tx| {
            for i in 0..1000 {
                let head = tx.root().head;
                let node = tx.alloc(Node {
                    value: batch * 1000 + i,
                    next: head,
                    prev: PPtr::null(),
                })?;
                if !head.is_null() {
                    tx.edit(head)?.set_prev(node)?;
                }
                tx.root_mut().set_head(node)?;
            }
            let len = tx.root().len;
            tx.root_mut().set_len(len + 1000)
        })
        .unwrap();
    }
    fill(&pool);
    // The nodes' runs (one type per run) may still have room: use it up, unreachable.
    while pool
        .transaction(|tx| {
            tx.alloc(Node {
                value: 0,
                next: PPtr::null(),
                prev: PPtr::null(),
            })
            .map(|_| ())
        })
        .is_ok()
    {}
    let full = pool.stats().heap;
    let refused = pool.transaction(|tx| {
        tx.alloc(Node {
            value: 0,
            next: PPtr::null(),
            prev: PPtr::null(),
        })
        .map(|_| ())
    });
    assert!(
        matches!(refused, Err(Error::OutOfSpace { .. })),
        "{refused:?}"
    );

    pool.transaction(|tx| {
        let mut freed = 0;
        loop {
            let node = tx.root().head;
            if node.is_null() {
                break;
            }
            let next = tx.get(node)?.next;
            if !next.is_null() {
                tx.edit(next)?.set_prev(PPtr::null())?;
            }
            tx.root_mut().set_head(next)?;
            tx.free(node)?;
            freed += 1;
        }
        assert_eq!(freed, NODES);
        tx.root_mut().set_len(0)
    })
    .unwrap_or_else(|e| panic!("unlink and free {NODES} nodes on a full pool: {e}"));

    let after = pool.stats().heap;
    assert_eq!(after.live_objects, full.live_objects - NODES);
    let report = check(&pool);
    assert!(report.is_healthy(), "{report}");
    drop(pool);
    let pool = open_file(&path);
    let report = check(&pool);
    assert!(report.is_healthy(), "{report}");
    assert_eq!(pool.stats().heap.live_objects, full.live_objects - NODES);
    // The space is usable again.
    pool.transaction(|tx| -> pmem_core::Result<_> {
        for value in 0..1000 {
            tx.alloc(Node {
                value,
                next: PPtr::null(),
                prev: PPtr::null(),
            })?;
        }
        Ok(())
    })
    .unwrap();
}

/// A commit whose record finds no log space fails and rolls back, and leaves nothing behind for
/// the next transaction: one that writes nothing then commits nothing (no fence), the objects
/// the failed one allocated are free again, and the pool stays consistent.
#[test]
fn a_commit_that_finds_no_log_space_leaves_nothing_to_the_next_transaction() {
    let pool = Pool::<Root>::builder().create_simulated(2 << 20).unwrap();
    let words = 32_768u64;
    let big = pool
        .transaction(|tx| tx.alloc_slice_zeroed::<u64>(words))
        .unwrap();
    let spare = pool.transaction(|tx| tx.alloc_zeroed::<Small>()).unwrap();
    fill(&pool);
    pool.transaction(|tx| tx.free(spare)).unwrap();
    let before = pool.stats().heap;

    let result = pool.transaction(|tx| {
        let fresh = tx.alloc_zeroed::<Small>()?;
        tx.get_mut(fresh)?.bytes[0] = 7;
        let mut slice = tx.edit_slice(big)?;
        // Every other word on its own: each is a redo entry of a cache line at commit, 1 MiB of
        // log in all, which the full pool cannot lend.
        for i in (0..words).step_by(2) {
            slice.set_at(i as usize, i + 1)?;
        }
        Ok(())
    });
    match result {
        Err(Error::OutOfSpace { .. }) => {}
        other => panic!("expected the commit to fail with OutOfSpace, got {other:?}"),
    }
    assert!(pool
        .read(|r| r.get_slice(big).unwrap().iter().all(|&w| w == 0))
        .unwrap());
    assert_eq!(
        pool.stats().heap,
        before,
        "the failed commit's allocation is undone"
    );

    let fences = pool.stats().flush.fences;
    pool.transaction(|_| Ok::<_, Error>(())).unwrap();
    assert_eq!(
        pool.stats().flush.fences,
        fences,
        "a transaction that writes nothing committed something"
    );
    let report = check(&pool);
    assert!(report.is_healthy(), "{report}");
}
