//! The timed loops, over what every store offers: counters that a transaction bumps, and an
//! index that a transaction inserts a batch of keys into. A loop times only its transactions;
//! opening, setup and the verification after it are outside the clock.

use std::sync::Barrier;
use std::time::Instant;

use pmem_core::FlushStats;

use crate::error::{verify, Result};
use crate::keys::{value_of, Value};
use crate::spec::Plan;

/// What a store says about itself besides its timing.
pub trait Described {
    /// The settings that decide its durability, as `key=value` fields (`durability=immediate`).
    fn settings(&self) -> String;

    /// Its own count of durability work, read before and after the timed loop; only a pmem
    /// pool keeps one.
    fn flush_stats(&self) -> Option<FlushStats> {
        None
    }
}

/// A store with counters: each [`increment`](Counters::increment) is one durable transaction
/// that reads a counter and writes it plus one. Shared by the threads of F4.
pub trait Counters: Described + Sync {
    /// One transaction: counter `which` (0 or 1) plus one, durable on return.
    fn increment(&self, which: usize) -> Result<()>;

    /// The value of counter `which`.
    fn get(&self, which: usize) -> Result<u64>;
}

/// A store with an index from u64 keys to 24-byte values.
pub trait Index: Described {
    /// One transaction: every key of `keys`, new, with [`value_of`] its value, durable on
    /// return.
    fn insert_batch(&mut self, keys: &[u64]) -> Result<()>;

    /// The number of keys in the index.
    fn key_count(&self) -> Result<u64>;

    /// The value stored under `key`.
    fn get(&self, key: u64) -> Result<Option<Value>>;
}

/// What one timed loop did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Transactions committed, all threads together.
    pub tx: u64,
    /// Seconds the loop took.
    pub secs: f64,
    /// The store's own durability work during the loop (pmem only).
    pub flush: Option<FlushStats>,
}

impl Outcome {
    /// Transactions per second (0 for an empty run).
    pub fn tx_per_s(&self) -> f64 {
        if self.tx == 0 || self.secs <= 0.0 {
            0.0
        } else {
            self.tx as f64 / self.secs
        }
    }
}

/// Runs `plan.tx` increments on each of `threads` counters (1 or 2), each counter from its own
/// thread, timed from the moment every thread is ready until the last one is done; then checks
/// every counter.
pub fn counters<C: Counters>(store: &C, threads: usize, plan: Plan) -> Result<Outcome> {
    let before = store.flush_stats();
    let secs = if threads <= 1 {
        let t0 = Instant::now();
        counter_loop(store, 0, plan.tx)?;
        t0.elapsed().as_secs_f64()
    } else {
        let ready = Barrier::new(threads + 1);
        std::thread::scope(|s| -> Result<f64> {
            let workers: Vec<_> = (0..threads)
                .map(|which| {
                    let ready = &ready;
                    s.spawn(move || {
                        ready.wait();
                        counter_loop(store, which, plan.tx)
                    })
                })
                .collect();
            ready.wait();
            let t0 = Instant::now();
            for w in workers {
                match w.join() {
                    Ok(result) => result?,
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            Ok(t0.elapsed().as_secs_f64())
        })?
    };
    let flush = since(before, store.flush_stats());
    for which in 0..threads.max(1) {
        verify("a counter", plan.tx, store.get(which)?)?;
    }
    Ok(Outcome {
        tx: plan.tx * threads.max(1) as u64,
        secs,
        flush,
    })
}

/// One thread's transactions.
#[inline(never)]
fn counter_loop<C: Counters>(store: &C, which: usize, tx: u64) -> Result<()> {
    for _ in 0..tx {
        store.increment(which)?;
    }
    Ok(())
}

/// Inserts `plan.tx` batches of `plan.batch` keys from `keys` (which holds at least
/// `plan.tx * plan.batch`), one transaction per batch; then checks the length and the first and
/// last key's values.
pub fn inserts<I: Index>(store: &mut I, keys: &[u64], plan: Plan) -> Result<Outcome> {
    let batch = plan.batch.max(1) as usize;
    let total = plan.tx as usize * batch;
    let keys = &keys[..total];
    let before = store.flush_stats();
    let t0 = Instant::now();
    for chunk in keys.chunks(batch) {
        store.insert_batch(chunk)?;
    }
    let secs = t0.elapsed().as_secs_f64();
    let flush = since(before, store.flush_stats());
    verify("the index's length", total as u64, store.key_count()?)?;
    for &key in keys.first().into_iter().chain(keys.last()) {
        let found = store.get(key)?;
        let matches = found == Some(value_of(key));
        verify(
            "a value read back equal to the one written",
            1,
            u64::from(matches),
        )?;
    }
    Ok(Outcome {
        tx: plan.tx,
        secs,
        flush,
    })
}

fn since(before: Option<FlushStats>, after: Option<FlushStats>) -> Option<FlushStats> {
    Some(after?.since(&before?))
}
