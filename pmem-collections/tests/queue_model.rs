//! Model test of `PQueue`: random operation sequences run against `std`'s `VecDeque`,
//! compared after every operation (one transaction each, some aborted) and after the pool is
//! reopened.

mod seq_common;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

use pmem_collections::{Error, PQueue};
use pmem_core::{Persistent, Pool};
use proptest::collection::vec;
use proptest::prelude::*;
use seq_common::{runner, FilePool, CASES};

/// 128 bytes: blocks of 8, so short sequences cross many blocks.
type Item = [u64; 16];

#[derive(Persistent)]
#[repr(C)]
struct Root {
    q: PQueue<Item>,
}

#[derive(Debug, Clone)]
enum Op {
    Push(u64, usize),
    Pop,
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (any::<u64>(), 1..6usize).prop_map(|(x, n)| Op::Push(x, n)),
        6 => Just(Op::Pop),
        1 => Just(Op::Clear),
    ]
}

fn item(x: u64) -> Item {
    core::array::from_fn(|i| x.wrapping_add(i as u64))
}

fn apply(pool: &Pool<Root>, model: &mut VecDeque<Item>, op: &Op, abort: bool) {
    let mut next = model.clone();
    let outcome = pool.transaction(|tx| {
        let q = tx.root().q;
        match *op {
            Op::Push(x, n) => {
                for i in 0..n as u64 {
                    q.push_back(tx, item(x + i))?;
                    next.push_back(item(x + i));
                }
            }
            Op::Pop => assert_eq!(q.pop_front(tx)?, next.pop_front()),
            Op::Clear => {
                q.clear(tx)?;
                next.clear();
            }
        }
        assert_eq!(q.to_vec(tx)?, Vec::from(next.clone()), "after {op:?}");
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

fn observe(pool: &Pool<Root>) -> VecDeque<Item> {
    pool.read(|r| {
        let q = r.root().q;
        let all: VecDeque<Item> = q.to_vec(r).unwrap().into();
        assert_eq!(q.len(r).unwrap(), all.len() as u64);
        assert_eq!(q.front(r).unwrap(), all.front());
        assert_eq!(q.back(r).unwrap(), all.back());
        all
    })
    .unwrap()
}

#[test]
fn random_sequences_match_std_vecdeque() {
    let file = RefCell::new(FilePool::<Root>::create(8 << 20));
    let case = Cell::new(0u64);
    runner()
        .run(&vec((op(), proptest::bool::weighted(0.08)), 1..40), |ops| {
            case.set(case.get() + 1);
            let mut file = file.borrow_mut();
            let pool = file.pool();
            pool.transaction(|tx| {
                let old = tx.root().q;
                if !old.is_null() {
                    old.destroy(tx)?;
                }
                let q = PQueue::new(tx)?;
                tx.root_mut().set_q(q)?;
                Ok::<_, Error>(())
            })
            .unwrap();
            let mut model = VecDeque::new();
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
    assert_eq!(case.get(), u64::from(CASES));
}
