//! W1 and W2: transactional in-place updates of the root object.

use std::time::Instant;

use pmem_core::{Persistent, Pool};

use crate::common::{
    addr_mod64, common_fields, destroy, ns_since, per_op, report, Env, FlushTally, Result,
};

/// The root of W1/W2: the counter on its own line, then a 256-byte buffer at offset 64.
#[derive(Persistent)]
#[repr(C)]
pub struct RootUpd {
    counter: u64,
    pad: [u8; 56],
    buf: [u64; 32],
}

/// W1: each op is one transaction that logs the 8-byte counter and increments it.
#[inline(never)]
pub fn w1_loop(pool: &Pool<RootUpd>, n: u64) -> Result<()> {
    for _ in 0..n {
        pool.transaction(|tx| {
            let c = tx.root().counter;
            tx.root_mut().set_counter(c + 1)
        })?;
    }
    Ok(())
}

/// W2: each op is one transaction that logs the 256-byte buffer once, then writes its 32 words.
#[inline(never)]
pub fn w2_loop(pool: &Pool<RootUpd>, n: u64) -> Result<()> {
    for i in 0..n {
        pool.transaction(|tx| -> pmem_core::Result<_> {
            let mut root = tx.root_mut();
            let buf = root.buf_mut().get_mut()?;
            for (j, w) in buf.iter_mut().enumerate() {
                *w = i + j as u64;
            }
            Ok(())
        })?;
    }
    Ok(())
}

pub fn run(env: &Env, which: u32) -> Result<()> {
    let path = env.pool_path(if which == 1 { "w1" } else { "w2" });
    let (pool, _) = env.create::<RootUpd>(&path)?;
    let mut ns = Vec::with_capacity(env.reps);
    let mut tally = FlushTally::default();
    for _ in 0..env.reps {
        let before = pool.stats().flush;
        let t0 = Instant::now();
        if which == 1 {
            w1_loop(&pool, env.n)?;
        } else {
            w2_loop(&pool, env.n)?;
        }
        let elapsed = ns_since(t0);
        tally.add(&before, &pool.stats().flush, env.n);
        ns.push(per_op(elapsed, env.n));
    }
    let (counter, counter_mod, buf_mod) = pool.read(|r| {
        let root = r.root();
        (
            root.counter,
            addr_mod64(&root.counter),
            addr_mod64(&root.buf),
        )
    })?;
    if which == 1 && counter != env.n * env.reps as u64 {
        return Err(format!("w1: counter mismatch {counter}").into());
    }
    let (name, shape) = if which == 1 {
        (
            "W1-tx-update-8",
            format!("range=8 counter_addr_mod64={counter_mod}"),
        )
    } else {
        (
            "W2-tx-update-256",
            format!("range=256 buf_addr_mod64={buf_mod}"),
        )
    };
    let extra = format!("{shape} {} {}", common_fields(&pool, env), tally.fields());
    report(name, &ns, env.n, &extra);
    destroy(pool, &path);
    Ok(())
}
