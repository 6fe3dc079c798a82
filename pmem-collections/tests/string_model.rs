//! Model tests of `PString` and `PBytes`: random operation sequences run against `String` and
//! `Vec<u8>`, compared after every operation (one transaction each, some aborted) and after
//! the pool is reopened.

mod seq_common;

use std::cell::{Cell, RefCell};

use pmem_collections::{Error, PBytes, PString};
use pmem_core::{Persistent, Pool};
use proptest::collection::vec;
use proptest::prelude::*;
use seq_common::{runner, FilePool, CASES};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    s: PString,
    b: PBytes,
}

#[derive(Debug, Clone)]
enum Op {
    Push(char),
    PushStr(String),
    Pop,
    Truncate(u64),
    Clear,
    Reserve(u64),
    PushByte(u8),
    ExtendBytes(Vec<u8>),
    PopByte,
    TruncateBytes(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<char>().prop_map(Op::Push),
        3 => ".{0,40}".prop_map(Op::PushStr),
        2 => Just(Op::Pop),
        2 => (0..120u64).prop_map(Op::Truncate),
        1 => Just(Op::Clear),
        1 => (0..300u64).prop_map(Op::Reserve),
        2 => any::<u8>().prop_map(Op::PushByte),
        3 => vec(any::<u8>(), 0..60).prop_map(Op::ExtendBytes),
        2 => Just(Op::PopByte),
        1 => (0..120u64).prop_map(Op::TruncateBytes),
    ]
}

#[derive(Debug, Clone, PartialEq, Default)]
struct Model {
    s: String,
    b: Vec<u8>,
}

fn apply(pool: &Pool<Root>, model: &mut Model, op: &Op, abort: bool) {
    let mut next = model.clone();
    let outcome = pool.transaction(|tx| {
        let (s, b) = (tx.root().s, tx.root().b);
        match op {
            Op::Push(c) => {
                s.push(tx, *c)?;
                next.s.push(*c);
            }
            Op::PushStr(x) => {
                s.push_str(tx, x)?;
                next.s.push_str(x);
            }
            Op::Pop => assert_eq!(s.pop(tx)?, next.s.pop()),
            Op::Truncate(n) => match s.truncate(tx, *n) {
                Ok(()) => next.s.truncate(*n as usize),
                Err(Error::NotCharBoundary { index }) => {
                    assert_eq!(index, *n);
                    assert!(!next.s.is_char_boundary(*n as usize));
                }
                Err(e) => return Err(e),
            },
            Op::Clear => {
                s.clear(tx)?;
                b.clear(tx)?;
                next.s.clear();
                next.b.clear();
            }
            Op::Reserve(n) => {
                s.reserve(tx, *n)?;
                b.reserve(tx, *n)?;
                assert!(s.capacity(tx)? >= next.s.len() as u64 + n);
                assert!(b.capacity(tx)? >= next.b.len() as u64 + n);
            }
            Op::PushByte(x) => {
                b.push(tx, *x)?;
                next.b.push(*x);
            }
            Op::ExtendBytes(x) => {
                b.extend_from_slice(tx, x)?;
                next.b.extend_from_slice(x);
            }
            Op::PopByte => assert_eq!(b.pop(tx)?, next.b.pop()),
            Op::TruncateBytes(n) => {
                b.truncate(tx, *n)?;
                next.b.truncate(*n as usize);
            }
        }
        assert_eq!(
            s.as_str(tx)?,
            next.s,
            "inside the transaction, after {op:?}"
        );
        assert_eq!(
            b.as_slice(tx)?,
            next.b,
            "inside the transaction, after {op:?}"
        );
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

fn observe(pool: &Pool<Root>) -> Model {
    pool.read(|r| {
        let (s, b) = (r.root().s, r.root().b);
        let model = Model {
            s: s.as_str(r).unwrap().to_owned(),
            b: b.to_vec(r).unwrap(),
        };
        assert_eq!(s.len(r).unwrap(), model.s.len() as u64);
        assert_eq!(b.len(r).unwrap(), model.b.len() as u64);
        assert_eq!(s.is_empty(r).unwrap(), model.s.is_empty());
        model
    })
    .unwrap()
}

#[test]
fn random_sequences_match_std_string_and_vec_u8() {
    let file = RefCell::new(FilePool::<Root>::create(8 << 20));
    let case = Cell::new(0u64);
    runner()
        .run(&vec((op(), proptest::bool::weighted(0.08)), 1..30), |ops| {
            case.set(case.get() + 1);
            let mut file = file.borrow_mut();
            let pool = file.pool();
            // Each case starts from fresh strings (one from a slice, one empty).
            pool.transaction(|tx| {
                let (s, b) = (tx.root().s, tx.root().b);
                if !s.is_null() {
                    s.destroy(tx)?;
                    b.destroy(tx)?;
                }
                let s = PString::from_str(tx, "")?;
                let b = PBytes::new(tx)?;
                tx.root_mut().set_s(s)?;
                tx.root_mut().set_b(b)?;
                Ok::<_, Error>(())
            })
            .unwrap();
            let mut model = Model::default();
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
