//! Crash test of `PString` and `PBytes`: at every fence of a random workload (appends that
//! grow the buffer, pops, truncations, multi-operation and aborted transactions), every crash
//! image recovers to exactly the strings before or after the interrupted transaction, valid
//! UTF-8, and the pool passes the deep check with nothing leaked.

mod seq_common;

use pmem_collections::{PBytes, PString};
use pmem_core::crash::CrashTest;
use pmem_core::{Persistent, Pool};
use seq_common::{crash_test, pool_is_clean, steps, Rng};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    s: PString,
    b: PBytes,
}

#[derive(Debug, Clone)]
enum Op {
    PushStr(String),
    Pop,
    Truncate(u64),
    Extend(Vec<u8>),
    TruncateBytes(u64),
}

type Model = (String, Vec<u8>);

fn model(m: &mut Model, op: &Op) {
    match op {
        Op::PushStr(x) => m.0.push_str(x),
        Op::Pop => {
            m.0.pop();
        }
        Op::Truncate(n) => {
            if m.0.is_char_boundary((*n as usize).min(m.0.len())) {
                m.0.truncate(*n as usize)
            }
        }
        Op::Extend(x) => m.1.extend_from_slice(x),
        Op::TruncateBytes(n) => m.1.truncate(*n as usize),
    }
}

fn observe(pool: &Pool<Root>) -> Result<Model, String> {
    let (s, b) = pool.read(|r| (r.root().s, r.root().b)).unwrap();
    let found = if s.is_null() {
        Model::default()
    } else {
        pool.read(|r| Ok::<_, pmem_collections::Error>((s.as_str(r)?.to_owned(), b.to_vec(r)?)))
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?
    };
    pool_is_clean(pool)?;
    Ok(found)
}

fn run(test: CrashTest, seed: u64, n: usize) {
    let mut rng = Rng(seed);
    let words = ["a", "ß", "€uro", "𝄞", "pmem ", ""];
    let ops = (0..n)
        .map(|_| match rng.below(10) {
            0..=3 => Op::PushStr(
                (0..rng.below(12))
                    .map(|_| words[rng.below(words.len() as u64) as usize])
                    .collect(),
            ),
            4 => Op::Pop,
            5 => Op::Truncate(rng.below(60)),
            6..=8 => Op::Extend((0..rng.below(50)).map(|i| i as u8).collect()),
            _ => Op::TruncateBytes(rng.below(100)),
        })
        .collect();
    let report = crash_test(
        test,
        Model::default(),
        steps(&mut rng, ops),
        |tx| {
            let s = PString::new(tx)?;
            let b = PBytes::new(tx)?;
            tx.root_mut().set_s(s)?;
            Ok(tx.root_mut().set_b(b)?)
        },
        |tx, op, before| {
            let (s, b) = (tx.root().s, tx.root().b);
            match op {
                Op::PushStr(x) => s.push_str(tx, x),
                Op::Pop => {
                    assert_eq!(s.pop(tx)?, before.0.chars().next_back());
                    Ok(())
                }
                Op::Truncate(n) => match s.truncate(tx, *n) {
                    Err(pmem_collections::Error::NotCharBoundary { .. }) => Ok(()),
                    other => other,
                },
                Op::Extend(x) => b.extend_from_slice(tx, x),
                Op::TruncateBytes(n) => b.truncate(tx, *n),
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
    run(CrashTest::new(2 << 20), 3, 120);
}
