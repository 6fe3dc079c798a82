//! A `PVec` of pointers to objects it owns, and a `PQueue` of `PString`s: every removal frees
//! the object, and the slot it leaves is zeroed, so the deep check (which follows every pointer
//! of every object, dead slots included) finds no dangling pointer and no leak, and every crash
//! image recovers to the state before or after the interrupted transaction.

mod seq_common;

use std::collections::VecDeque;

use pmem_collections::{PQueue, PString, PVec};
use pmem_core::crash::CrashTest;
use pmem_core::{PPtr, Persistent, Pool};
use seq_common::{crash_test, pool_is_clean, steps, Rng};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    v: PVec<PPtr<u64>>,
    q: PQueue<PString>,
}

#[derive(Debug, Clone)]
enum Op {
    Push(u64),
    Pop,
    Remove(u64),
    SwapRemove(u64),
    Truncate(u64),
    Enqueue(u64),
    Dequeue,
}

type Model = (Vec<u64>, VecDeque<String>);

fn model(m: &mut Model, op: &Op) {
    let len = m.0.len() as u64;
    match *op {
        Op::Push(x) => m.0.push(x),
        Op::Pop => {
            m.0.pop();
        }
        Op::Remove(i) if i < len => {
            m.0.remove(i as usize);
        }
        Op::SwapRemove(i) if i < len => {
            m.0.swap_remove(i as usize);
        }
        Op::Truncate(n) => m.0.truncate(n as usize),
        Op::Enqueue(x) => m.1.push_back(format!("message {x}")),
        Op::Dequeue => {
            m.1.pop_front();
        }
        _ => {}
    }
}

fn observe(pool: &Pool<Root>) -> Result<Model, String> {
    let (v, q) = pool.read(|r| (r.root().v, r.root().q)).unwrap();
    let found = if v.is_null() {
        Model::default()
    } else {
        pool.read(|r| -> pmem_collections::Result<Model> {
            let mut values = Vec::new();
            for p in v.iter(r)? {
                values.push(*r.get(*p)?);
            }
            let mut strings = VecDeque::new();
            for s in q.iter(r) {
                strings.push_back(s?.as_str(r)?.to_owned());
            }
            Ok((values, strings))
        })
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?
    };
    pool_is_clean(pool)?;
    Ok(found)
}

#[test]
fn owned_objects_survive_every_crash_and_leave_no_stale_pointer() {
    let mut rng = Rng(9);
    let ops = (0..150u64)
        .map(|i| match rng.below(14) {
            0..=3 => Op::Push(i),
            4 => Op::Pop,
            5 => Op::Remove(rng.below(20)),
            6 => Op::SwapRemove(rng.below(20)),
            7 => Op::Truncate(rng.below(20)),
            8..=10 => Op::Enqueue(i),
            _ => Op::Dequeue,
        })
        .collect();
    let report = crash_test(
        CrashTest::new(2 << 20),
        Model::default(),
        steps(&mut rng, ops),
        |tx| {
            let v = PVec::new(tx)?;
            let q = PQueue::new(tx)?;
            tx.root_mut().set_v(v)?;
            Ok(tx.root_mut().set_q(q)?)
        },
        |tx, op, before| {
            let (v, q) = (tx.root().v, tx.root().q);
            let removed = match *op {
                Op::Push(x) => {
                    let p = tx.alloc(x)?;
                    v.push(tx, p)?;
                    vec![]
                }
                Op::Pop => v.pop(tx)?.into_iter().collect(),
                Op::Remove(i) => v.remove(tx, i)?.into_iter().collect(),
                Op::SwapRemove(i) => v.swap_remove(tx, i)?.into_iter().collect(),
                Op::Truncate(n) => {
                    let all = v.to_vec(tx)?;
                    v.truncate(tx, n)?;
                    all.into_iter().skip(n as usize).collect()
                }
                Op::Enqueue(x) => {
                    let s = PString::from_str(tx, &format!("message {x}"))?;
                    q.push_back(tx, s)?;
                    vec![]
                }
                Op::Dequeue => {
                    if let Some(s) = q.pop_front(tx)? {
                        assert_eq!(Some(s.as_str(tx)?), before.1.front().map(|m| m.as_str()));
                        s.destroy(tx)?;
                    }
                    vec![]
                }
            };
            for p in removed {
                tx.free(p)?;
            }
            Ok(())
        },
        model,
        observe,
    );
    report.assert_ok();
    eprintln!("{report}");
}
