//! Crash test of `PQueue`: at every fence of a random workload of pushes and pops (blocks
//! started and freed, the queue emptied and refilled, multi-operation and aborted
//! transactions), every crash image recovers to exactly the queue before or after the
//! interrupted transaction, and the pool passes the deep check with nothing leaked.

mod seq_common;

use std::collections::VecDeque;

use pmem_collections::PQueue;
use pmem_core::crash::CrashTest;
use pmem_core::{Persistent, Pool};
use seq_common::{crash_test, pool_is_clean, steps, Rng};

/// 256 bytes: blocks of 8.
type Item = [u64; 32];

#[derive(Persistent)]
#[repr(C)]
struct Root {
    q: PQueue<Item>,
}

#[derive(Debug, Clone)]
enum Op {
    Push(u64),
    Pop,
    Clear,
}

fn item(x: u64) -> Item {
    core::array::from_fn(|i| x ^ i as u64)
}

fn model(q: &mut VecDeque<Item>, op: &Op) {
    match op {
        Op::Push(x) => q.push_back(item(*x)),
        Op::Pop => {
            q.pop_front();
        }
        Op::Clear => q.clear(),
    }
}

fn observe(pool: &Pool<Root>) -> Result<VecDeque<Item>, String> {
    let q = pool.read(|r| r.root().q).unwrap();
    let found = if q.is_null() {
        Vec::new()
    } else {
        pool.read(|r| q.to_vec(r))
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?
    };
    pool_is_clean(pool)?;
    Ok(found.into())
}

fn run(test: CrashTest, seed: u64, n: usize) {
    let mut rng = Rng(seed);
    let ops = (0..n as u64)
        .map(|i| match rng.below(20) {
            0..=11 => Op::Push(i),
            12..=18 => Op::Pop,
            _ => Op::Clear,
        })
        .collect();
    let report = crash_test(
        test,
        VecDeque::new(),
        steps(&mut rng, ops),
        |tx| {
            let q = PQueue::new(tx)?;
            Ok(tx.root_mut().set_q(q)?)
        },
        |tx, op, before| {
            let q = tx.root().q;
            match op {
                Op::Push(x) => q.push_back(tx, item(*x)),
                Op::Pop => {
                    assert_eq!(q.pop_front(tx)?.as_ref(), before.front());
                    Ok(())
                }
                Op::Clear => q.clear(tx),
            }
        },
        model,
        observe,
    );
    report.assert_ok();
    eprintln!("{report}");
}

#[test]
fn random_operations_survive_every_crash() {
    run(CrashTest::new(2 << 20), 4, 200);
}

/// A short run that also crashes every recovery at each of its own fences.
#[test]
fn crash_during_recovery() {
    run(
        CrashTest::new(1 << 20)
            .random_subsets(1)
            .crash_during_recovery(true),
        5,
        30,
    );
}
