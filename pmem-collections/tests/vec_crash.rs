//! Crash test of `PVec`: at every fence of a random workload (growth across segments, shifts
//! across segment boundaries, multi-operation and aborted transactions), every crash image
//! recovers to exactly the vector before or after the interrupted transaction, and the pool
//! passes the deep check with nothing leaked.

mod seq_common;

use pmem_collections::PVec;
use pmem_core::crash::CrashTest;
use pmem_core::{Persistent, Pool};
use seq_common::{crash_test, pool_is_clean, steps, Rng};

/// 24 bytes: a derived element type, first segment of 16.
#[derive(Persistent, Debug, Clone, Copy, PartialEq)]
#[repr(C)]
struct Entry {
    key: u64,
    value: u64,
    stamp: u64,
}

#[derive(Persistent)]
#[repr(C)]
struct Root {
    v: PVec<Entry>,
}

#[derive(Debug, Clone)]
enum Op {
    Push(u64),
    Pop,
    Insert(u64, u64),
    Remove(u64),
    SwapRemove(u64),
    SetValue(u64, u64),
    Extend(u64, u64),
    Truncate(u64),
    ShrinkToFit,
}

fn entry(x: u64) -> Entry {
    Entry {
        key: x,
        value: x * 3,
        stamp: !x,
    }
}

fn model(v: &mut Vec<Entry>, op: &Op) {
    let len = v.len() as u64;
    match *op {
        Op::Push(x) => v.push(entry(x)),
        Op::Pop => {
            v.pop();
        }
        Op::Insert(i, x) if i <= len => v.insert(i as usize, entry(x)),
        Op::Remove(i) if i < len => {
            v.remove(i as usize);
        }
        Op::SwapRemove(i) if i < len => {
            v.swap_remove(i as usize);
        }
        Op::SetValue(i, x) if i < len => v[i as usize].value = x,
        Op::Extend(x, n) => v.extend((0..n).map(|i| entry(x + i))),
        Op::Truncate(n) => v.truncate(n as usize),
        _ => {}
    }
}

fn observe(pool: &Pool<Root>) -> Result<Vec<Entry>, String> {
    let v = pool.read(|r| r.root().v).unwrap();
    let found = if v.is_null() {
        Vec::new()
    } else {
        pool.read(|r| v.to_vec(r))
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?
    };
    pool_is_clean(pool)?;
    Ok(found)
}

fn run(test: CrashTest, seed: u64, n: usize) {
    let mut rng = Rng(seed);
    let mut len = 0u64;
    let ops = (0..n)
        .map(|i| {
            let i = i as u64;
            let at = rng.below(len + 2);
            let op = match rng.below(20) {
                0..=5 => Op::Push(i),
                6..=7 => Op::Pop,
                8..=9 => Op::Insert(at, i),
                10..=11 => Op::Remove(at),
                12 => Op::SwapRemove(at),
                13..=14 => Op::SetValue(at, i),
                15..=17 => Op::Extend(i * 100, rng.below(40)),
                18 => Op::Truncate(rng.below(len + 1)),
                _ => Op::ShrinkToFit,
            };
            let mut shadow = vec![entry(0); len as usize];
            model(&mut shadow, &op);
            len = shadow.len() as u64;
            op
        })
        .collect();
    let report = crash_test(
        test,
        Vec::new(),
        steps(&mut rng, ops),
        |tx| {
            let v = PVec::new(tx)?;
            Ok(tx.root_mut().set_v(v)?)
        },
        |tx, op, before| {
            let v = tx.root().v;
            let len = before.len() as u64;
            match *op {
                Op::Push(x) => v.push(tx, entry(x)),
                Op::Pop => {
                    assert_eq!(v.pop(tx)?.as_ref(), before.last());
                    Ok(())
                }
                Op::Insert(i, x) if i <= len => v.insert(tx, i, entry(x)),
                Op::Insert(i, x) => {
                    assert!(v.insert(tx, i, entry(x)).is_err());
                    Ok(())
                }
                Op::Remove(i) => {
                    assert_eq!(v.remove(tx, i)?.as_ref(), before.get(i as usize));
                    Ok(())
                }
                Op::SwapRemove(i) => {
                    assert_eq!(v.swap_remove(tx, i)?.as_ref(), before.get(i as usize));
                    Ok(())
                }
                Op::SetValue(i, x) => match v.get_mut(tx, i)? {
                    Some(mut e) => Ok(e.set_value(x)?),
                    None => {
                        assert!(i >= len);
                        Ok(())
                    }
                },
                Op::Extend(x, n) => v.extend(tx, (0..n).map(|i| entry(x + i))),
                Op::Truncate(n) => v.truncate(tx, n),
                Op::ShrinkToFit => v.shrink_to_fit(tx),
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
    run(CrashTest::new(2 << 20), 1, 120);
}

/// A short run that also crashes every recovery at each of its own fences.
#[test]
fn crash_during_recovery() {
    run(
        CrashTest::new(1 << 20)
            .random_subsets(1)
            .crash_during_recovery(true),
        2,
        25,
    );
}
