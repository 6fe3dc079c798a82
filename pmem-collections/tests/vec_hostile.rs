//! `PVec` on damaged metadata: a length past the capacity, a segment of the wrong length, a
//! segment after a gap, a segment pointer of the wrong type. Every read and write gives a
//! typed error, never a panic.

use pmem_collections::{Error, Inconsistency, PVec};
use pmem_core::{PSlice, Persistent, Pool};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    v: PVec<u64>,
}

fn pool_with(values: &[u64]) -> (Pool<Root>, PVec<u64>) {
    let pool = Pool::<Root>::builder().create_simulated(2 << 20).unwrap();
    let v = pool
        .transaction(|tx| {
            let v = PVec::from_slice(tx, values)?;
            tx.root_mut().set_v(v)?;
            Ok::<_, Error>(v)
        })
        .unwrap();
    (pool, v)
}

/// Every operation of `v` fails with an error `expected` accepts.
fn every_operation_fails(pool: &Pool<Root>, v: PVec<u64>, expected: impl Fn(&Error) -> bool) {
    let reads: Vec<Result<(), Error>> = pool
        .read(|r| {
            vec![
                v.len(r).map(drop),
                v.get(r, 0).map(drop),
                v.iter(r).map(drop),
                v.to_vec(r).map(drop),
            ]
        })
        .unwrap();
    for read in reads {
        let e = read.expect_err("a read of a damaged vector");
        assert!(expected(&e), "{e:?}");
        assert!(!e.to_string().is_empty());
    }
    type Write = fn(&mut pmem_core::Tx<'_, Root>, PVec<u64>) -> Result<(), Error>;
    let writes: [Write; 7] = [
        |tx, v| v.push(tx, 1),
        |tx, v| v.pop(tx).map(drop),
        |tx, v| v.insert(tx, 0, 1),
        |tx, v| v.remove(tx, 0).map(drop),
        |tx, v| v.extend_from_slice(tx, &[1; 100]),
        |tx, v| v.reserve(tx, 1000),
        |tx, v| v.destroy(tx),
    ];
    for write in writes {
        let e = pool.transaction(|tx| write(tx, v)).expect_err("a write");
        assert!(expected(&e), "{e:?}");
    }
}

#[test]
fn a_length_past_the_capacity() {
    let (pool, v) = pool_with(&[1, 2, 3]);
    for len in [33, u64::MAX] {
        pool.transaction(|tx| tx.edit(v.meta_ptr())?.set_len(len))
            .unwrap();
        every_operation_fails(&pool, v, |e| {
            matches!(
                e,
                Error::Inconsistent(Inconsistency::LenExceedsCapacity { capacity: 32, .. })
            )
        });
    }
}

#[test]
fn a_segment_of_the_wrong_length() {
    let (pool, v) = pool_with(&[1, 2, 3]);
    pool.transaction(|tx| {
        let first = tx.get(v.meta_ptr())?.segments[0];
        let short = PSlice::from_raw_parts(first.offset(), 5);
        tx.edit(v.meta_ptr())?.segments_mut().set_at(0, short)
    })
    .unwrap();
    every_operation_fails(&pool, v, |e| {
        matches!(
            e,
            Error::Inconsistent(Inconsistency::SegmentLength {
                segment: 0,
                expected: 32,
                found: 5
            })
        )
    });
}

#[test]
fn a_segment_after_a_gap() {
    let (pool, v) = pool_with(&[1, 2, 3]);
    pool.transaction(|tx| {
        let first = tx.get(v.meta_ptr())?.segments[0];
        let mut meta = tx.edit(v.meta_ptr())?;
        let mut segments = meta.segments_mut();
        segments.set_at(0, PSlice::null())?;
        segments.set_at(3, first)
    })
    .unwrap();
    every_operation_fails(&pool, v, |e| {
        matches!(
            e,
            Error::Inconsistent(Inconsistency::SegmentAfterGap { segment: 3 })
        )
    });
}

/// A segment entry pointing at a 256-byte allocation of `[u32]`: the right size in bytes, the
/// wrong type. The pool's type check refuses it.
#[test]
fn a_segment_pointer_of_the_wrong_type() {
    let (pool, v) = pool_with(&[1, 2, 3]);
    pool.transaction(|tx| {
        let other = tx.alloc_slice_zeroed::<u32>(64)?;
        let forged = PSlice::<u64>::from_raw_parts(other.offset(), 32);
        tx.edit(v.meta_ptr())?.segments_mut().set_at(0, forged)
    })
    .unwrap();
    let e = pool.read(|r| v.get(r, 0).map(drop)).unwrap().unwrap_err();
    assert!(
        matches!(e, Error::Pool(pmem_core::Error::InvalidPointer { .. })),
        "{e:?}"
    );
    let e = pool.read(|r| v.iter(r).map(drop)).unwrap().unwrap_err();
    assert!(matches!(
        e,
        Error::Pool(pmem_core::Error::InvalidPointer { .. })
    ));
    let e = pool.transaction(|tx| v.push(tx, 4)).unwrap_err();
    assert!(matches!(
        e,
        Error::Pool(pmem_core::Error::InvalidPointer { .. })
    ));
}

#[test]
fn out_of_bounds_arguments_are_typed_errors() {
    let (pool, v) = pool_with(&[1, 2, 3]);
    let e = pool.transaction(|tx| v.insert(tx, 4, 0)).unwrap_err();
    assert!(matches!(e, Error::IndexOutOfBounds { index: 4, len: 3 }));
    assert_eq!(e.to_string(), "index 4 is out of bounds for length 3");
    let e = pool.transaction(|tx| v.set(tx, 3, 0)).unwrap_err();
    assert!(matches!(e, Error::IndexOutOfBounds { index: 3, len: 3 }));
    let e = pool.transaction(|tx| v.reserve(tx, u64::MAX)).unwrap_err();
    assert!(matches!(e, Error::CapacityOverflow { .. }), "{e:?}");
    let e = pool
        .transaction(|tx| v.reserve(tx, PVec::<u64>::MAX_CAPACITY))
        .unwrap_err();
    assert!(matches!(e, Error::CapacityOverflow { .. }), "{e:?}");
    assert_eq!(pool.read(|r| v.to_vec(r)).unwrap().unwrap(), [1, 2, 3]);
}
