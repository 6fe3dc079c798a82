//! Crash test of the queue: at every fence of a random workload of enqueues and dequeues
//! (messages of varied lengths, empty ones included, multi-operation and aborted transactions),
//! every crash image recovers to a well-formed list holding exactly the committed messages in
//! order, with nothing leaked.

mod common;

use std::collections::VecDeque;

use common::{crash_test, pool_is_clean, steps, Rng};
use pmem_core::crash::CrashTest;
use pmem_core::{Persistent, Pool};
use pmem_examples::messages::MessageQueue;

#[derive(Persistent)]
#[repr(C)]
struct Root {
    queue: MessageQueue,
}

#[derive(Debug, Clone)]
enum Op {
    Enqueue(Vec<u8>),
    Dequeue,
}

fn model(q: &mut VecDeque<Vec<u8>>, op: &Op) {
    match op {
        Op::Enqueue(m) => q.push_back(m.clone()),
        Op::Dequeue => {
            q.pop_front();
        }
    }
}

fn observe(pool: &Pool<Root>) -> Result<VecDeque<Vec<u8>>, String> {
    let queue = pool.read(|r| r.root().queue).unwrap();
    let messages = if queue.is_null() {
        Vec::new()
    } else {
        // `verify` checks the list ends at the tail after exactly `len` nodes.
        pool.read(|r| queue.verify(r))
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?
    };
    pool_is_clean(pool)?;
    Ok(messages.into())
}

fn message(rng: &mut Rng, i: usize) -> Vec<u8> {
    let len = match rng.below(10) {
        0 => 0,
        1 => 200 + rng.below(300) as usize,
        _ => rng.below(24) as usize,
    };
    (0..len).map(|j| (i + j) as u8).collect()
}

fn run(test: CrashTest, seed: u64, n: usize) {
    let mut rng = Rng(seed);
    let ops = (0..n)
        .map(|i| {
            if rng.chance(55) {
                Op::Enqueue(message(&mut rng, i))
            } else {
                Op::Dequeue
            }
        })
        .collect();
    let report = crash_test(
        test,
        VecDeque::new(),
        steps(&mut rng, ops),
        |tx| {
            let queue = MessageQueue::create(tx)?;
            Ok(tx.root_mut().set_queue(queue)?)
        },
        |tx, op, before| {
            let queue = tx.root().queue;
            match op {
                Op::Enqueue(m) => queue.enqueue(tx, m),
                Op::Dequeue => {
                    assert_eq!(queue.dequeue(tx)?.as_ref(), before.front());
                    Ok(())
                }
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
    run(CrashTest::new(2 << 20), 1, 250);
}

/// A short run that also crashes every recovery at each of its own fences.
#[test]
fn crash_during_recovery() {
    run(
        CrashTest::new(1 << 20)
            .random_subsets(1)
            .crash_during_recovery(true),
        2,
        30,
    );
}
