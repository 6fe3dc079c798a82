//! W7: two threads, each running W1 on its own counter (128 bytes apart).

use std::sync::Barrier;
use std::time::Instant;

use pmem_core::{Persistent, Pool};

use crate::common::{
    addr_mod64, common_fields, destroy, ns_since, per_op, report, Env, FlushTally, Result, Stats,
};

/// The root of W7: `c0` at offset 0 and `c1` at offset 128, on separate cache lines.
#[derive(Persistent)]
#[repr(C)]
pub struct RootW7 {
    c0: u64,
    pad0: [u8; 120],
    c1: u64,
    pad1: [u8; 120],
}

/// One thread's loop: W1 on counter `which` (0 or 1).
#[inline(never)]
fn w7_loop(pool: &Pool<RootW7>, which: usize, n: u64) -> Result<()> {
    for _ in 0..n {
        pool.transaction(|tx| {
            if which == 0 {
                let c = tx.root().c0;
                tx.root_mut().set_c0(c + 1)
            } else {
                let c = tx.root().c1;
                tx.root_mut().set_c1(c + 1)
            }
        })?;
    }
    Ok(())
}

pub fn run(env: &Env) -> Result<()> {
    let path = env.pool_path("w7");
    let n = env.n;
    let (pool, _) = env.create::<RootW7>(&path)?;
    let (mut ns, mut per_thread) = (Vec::new(), Vec::new());
    let mut tally = FlushTally::default();
    for _ in 0..env.reps {
        let barrier = Barrier::new(3);
        let before = pool.stats().flush;
        let elapsed = std::thread::scope(|s| -> Result<u64> {
            let workers: Vec<_> = (0..2)
                .map(|which| {
                    let (pool, barrier) = (&pool, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        w7_loop(pool, which, n).map_err(|e| e.to_string())
                    })
                })
                .collect();
            barrier.wait();
            let t0 = Instant::now();
            for w in workers {
                w.join().expect("w7 thread panicked")?;
            }
            Ok(ns_since(t0))
        })?;
        tally.add(&before, &pool.stats().flush, 2 * n);
        ns.push(per_op(elapsed, 2 * n));
        per_thread.push(per_op(elapsed, n));
    }
    let (c0, c1, c0_mod, c1_mod) = pool.read(|r| {
        let root = r.root();
        (root.c0, root.c1, addr_mod64(&root.c0), addr_mod64(&root.c1))
    })?;
    let want = n * env.reps as u64;
    if c0 != want || c1 != want {
        return Err(format!("w7: counter mismatch c0={c0} c1={c1}").into());
    }
    let extra = format!(
        "threads=2 total_ops_per_rep={} per_thread_ns_per_op_med={:.1} c0_mod64={c0_mod} c1_mod64={c1_mod} \
         tx_concurrency=serialized {} {}",
        2 * n,
        Stats::of(&per_thread).med,
        common_fields(&pool, env),
        tally.fields()
    );
    report("W7-two-threads-tx-update-8", &ns, n, &extra);
    destroy(pool, &path);
    Ok(())
}
