//! `PQueue` on damaged metadata: a cycle of blocks, ends that disagree, positions past a
//! block, a length the blocks do not hold. Walks end with a typed error, never a panic or a
//! hang.

use pmem_collections::{Error, Inconsistency, PQueue};
use pmem_core::{Persistent, Pool};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    q: PQueue<u64>,
}

/// A queue of `n` elements (128 per block).
fn pool_with(n: u64) -> (Pool<Root>, PQueue<u64>) {
    let pool = Pool::<Root>::builder().create_simulated(4 << 20).unwrap();
    let q = pool
        .transaction(|tx| {
            let q = PQueue::new(tx)?;
            tx.root_mut().set_q(q)?;
            for i in 0..n {
                q.push_back(tx, i)?;
            }
            Ok::<_, Error>(q)
        })
        .unwrap();
    (pool, q)
}

fn walk(pool: &Pool<Root>, q: PQueue<u64>) -> Result<Vec<u64>, Error> {
    pool.read(|r| q.to_vec(r)).unwrap()
}

#[test]
fn a_cycle_of_blocks_ends_the_walk() {
    assert_eq!(PQueue::<u64>::block_len(), 128);
    let (pool, q) = pool_with(300);
    // The second block links back to the head, so the walk never reaches the tail, and the
    // length claims far more than there is: only the revisit stops the walk.
    pool.transaction(|tx| {
        let meta = *tx.get(q.meta_ptr())?;
        let second = tx.get(meta.head)?.next;
        tx.edit(second)?.set_next(meta.head)?;
        tx.edit(q.meta_ptr())?.set_len(u64::MAX - 200)
    })
    .unwrap();
    let e = walk(&pool, q).unwrap_err();
    assert!(
        matches!(e, Error::Inconsistent(Inconsistency::QueueTooLong)),
        "{e:?}"
    );
    let e = pool.transaction(|tx| q.clear(tx)).unwrap_err();
    assert!(matches!(
        e,
        Error::Inconsistent(Inconsistency::QueueTooLong)
    ));
    // Linked back through the tail instead: the walk stops at the tail's last slot.
    pool.transaction(|tx| {
        let meta = *tx.get(q.meta_ptr())?;
        let second = tx.get(meta.head)?.next;
        tx.edit(second)?.set_next(meta.tail)?;
        tx.edit(meta.tail)?.set_next(meta.head)
    })
    .unwrap();
    let e = walk(&pool, q).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Inconsistent(Inconsistency::QueueLengthMismatch { found: 300, .. })
        ),
        "{e:?}"
    );
    // The failed clear was rolled back: the queue is as damaged as before, no less.
    assert!(walk(&pool, q).is_err());
}

#[test]
fn a_length_the_blocks_do_not_hold() {
    let (pool, q) = pool_with(300);
    for len in [301, 1000] {
        pool.transaction(|tx| tx.edit(q.meta_ptr())?.set_len(len))
            .unwrap();
        let e = walk(&pool, q).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Inconsistent(Inconsistency::QueueLengthMismatch { found: 300, .. })
            ),
            "{e:?}"
        );
    }
    pool.transaction(|tx| tx.edit(q.meta_ptr())?.set_len(299))
        .unwrap();
    let e = walk(&pool, q).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Inconsistent(Inconsistency::QueueTailMismatch { .. })
        ),
        "{e:?}"
    );
}

#[test]
fn ends_that_disagree_and_positions_past_a_block() {
    let (pool, q) = pool_with(3);
    pool.transaction(|tx| tx.edit(q.meta_ptr())?.set_head_pos(128))
        .unwrap();
    let e = pool.transaction(|tx| q.pop_front(tx)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Inconsistent(Inconsistency::QueueBlockRange { start: 128, .. })
        ),
        "{e:?}"
    );
    pool.transaction(|tx| {
        tx.edit(q.meta_ptr())?.set_head_pos(0)?;
        tx.edit(q.meta_ptr())?.set_tail_pos(500)
    })
    .unwrap();
    let e = pool.transaction(|tx| q.push_back(tx, 9)).unwrap_err();
    assert!(matches!(
        e,
        Error::Inconsistent(Inconsistency::QueueBlockRange { end: 500, .. })
    ));
    pool.transaction(|tx| {
        let mut meta = tx.edit(q.meta_ptr())?;
        meta.set_tail_pos(3)?;
        meta.set_tail(pmem_core::PPtr::null())
    })
    .unwrap();
    for e in [
        walk(&pool, q).unwrap_err(),
        pool.read(|r| q.front(r).map(drop)).unwrap().unwrap_err(),
    ] {
        assert!(matches!(
            e,
            Error::Inconsistent(Inconsistency::QueueEndsDisagree { tail: 0, .. })
        ));
    }
}
