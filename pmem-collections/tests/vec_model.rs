//! Model test of `PVec`: random operation sequences run against `std`'s `Vec`, compared after
//! every operation (one transaction each, some aborted) and after the pool is reopened.

mod seq_common;

use pmem_collections::{Error, PVec};
use pmem_core::{Persistent, Pool};
use proptest::collection::vec;
use proptest::prelude::*;
use seq_common::{runner, FilePool};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    v: PVec<u64>,
}

#[derive(Debug, Clone)]
enum Op {
    Push(u64),
    Pop,
    Insert(u64, u64),
    Remove(u64),
    SwapRemove(u64),
    Set(u64, u64),
    Truncate(u64),
    Clear,
    Extend(Vec<u64>),
    Reserve(u64),
    ShrinkToFit,
}

fn op() -> impl Strategy<Value = Op> {
    // Indices up to a little past the lengths reached, so that some are out of bounds.
    prop_oneof![
        6 => any::<u64>().prop_map(Op::Push),
        2 => Just(Op::Pop),
        2 => (0..80u64, any::<u64>()).prop_map(|(i, v)| Op::Insert(i, v)),
        2 => (0..80u64).prop_map(Op::Remove),
        1 => (0..80u64).prop_map(Op::SwapRemove),
        1 => (0..80u64, any::<u64>()).prop_map(|(i, v)| Op::Set(i, v)),
        1 => (0..80u64).prop_map(Op::Truncate),
        1 => Just(Op::Clear),
        2 => vec(any::<u64>(), 0..70).prop_map(Op::Extend),
        1 => (0..200u64).prop_map(Op::Reserve),
        1 => Just(Op::ShrinkToFit),
    ]
}

/// Applies `op` to the pool's vector and to the model, checking what the operation returns
/// against what `Vec` returns.
fn apply(pool: &Pool<Root>, model: &mut Vec<u64>, op: &Op, abort: bool) {
    let mut next = model.clone();
    let outcome = pool.transaction(|tx| {
        let v = tx.root().v;
        let len = next.len() as u64;
        match *op {
            Op::Push(x) => {
                v.push(tx, x)?;
                next.push(x);
            }
            Op::Pop => assert_eq!(v.pop(tx)?, next.pop()),
            Op::Insert(i, x) => match v.insert(tx, i, x) {
                Ok(()) => next.insert(i as usize, x),
                Err(Error::IndexOutOfBounds { index, len: l }) => {
                    assert!(i > len && index == i && l == len)
                }
                Err(e) => return Err(e),
            },
            Op::Remove(i) => {
                let expected = (i < len).then(|| next.remove(i as usize));
                assert_eq!(v.remove(tx, i)?, expected);
            }
            Op::SwapRemove(i) => {
                let expected = (i < len).then(|| next.swap_remove(i as usize));
                assert_eq!(v.swap_remove(tx, i)?, expected);
            }
            Op::Set(i, x) => match v.set(tx, i, x) {
                Ok(old) => assert_eq!(old, std::mem::replace(&mut next[i as usize], x)),
                Err(Error::IndexOutOfBounds { .. }) => assert!(i >= len),
                Err(e) => return Err(e),
            },
            Op::Truncate(n) => {
                v.truncate(tx, n)?;
                next.truncate(n as usize);
            }
            Op::Clear => {
                v.clear(tx)?;
                next.clear();
            }
            Op::Extend(ref xs) => {
                v.extend(tx, xs.iter().copied())?;
                next.extend_from_slice(xs);
            }
            Op::Reserve(n) => {
                v.reserve(tx, n)?;
                assert!(v.capacity(tx)? >= len + n);
            }
            Op::ShrinkToFit => {
                v.shrink_to_fit(tx)?;
                assert!(v.capacity(tx)? >= len);
            }
        }
        assert_eq!(v.to_vec(tx)?, next, "inside the transaction, after {op:?}");
        if abort {
            return Err(tx.abort().into());
        }
        Ok(())
    });
    match outcome {
        Ok(()) => *model = next,
        Err(Error::Pool(pmem_core::Error::Aborted { .. })) if abort => {}
        Err(e) => panic!("{op:?}: {e}"),
    }
}

fn observe(pool: &Pool<Root>) -> Vec<u64> {
    pool.read(|r| {
        let v = r.root().v;
        let all = v.to_vec(r).unwrap();
        assert_eq!(v.len(r).unwrap(), all.len() as u64);
        assert!(v.capacity(r).unwrap() >= all.len() as u64);
        for (i, x) in all.iter().enumerate() {
            assert_eq!(v.get(r, i as u64).unwrap(), Some(x));
        }
        assert_eq!(v.get(r, all.len() as u64).unwrap(), None);
        assert_eq!(v.last(r).unwrap(), all.last());
        all
    })
    .unwrap()
}

#[test]
fn random_sequences_match_std_vec() {
    let file = std::cell::RefCell::new(FilePool::<Root>::create(8 << 20));
    let case = std::cell::Cell::new(0u64);
    runner()
        .run(&vec((op(), proptest::bool::weighted(0.08)), 1..30), |ops| {
            case.set(case.get() + 1);
            let mut file = file.borrow_mut();
            // Each case starts from a fresh vector; the last case's is freed with it.
            let pool = file.pool();
            pool.transaction(|tx| {
                let old = tx.root().v;
                if !old.is_null() {
                    old.destroy(tx)?;
                }
                let v = PVec::new(tx)?;
                tx.root_mut().set_v(v)?;
                Ok::<_, Error>(())
            })
            .unwrap();
            let mut model = Vec::new();
            for (op, abort) in &ops {
                apply(pool, &mut model, op, *abort);
                assert_eq!(observe(pool), model, "after {op:?}");
            }
            if case.get() % 10 == 0 {
                file.reopen();
                assert_eq!(observe(file.pool()), model, "after reopening");
                let report = pmem_core::check::check(file.pool());
                assert!(
                    report.is_healthy() && report.unreachable.is_empty(),
                    "{report}"
                );
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(case.get(), u64::from(seq_common::CASES));
}
