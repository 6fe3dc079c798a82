//! The sequence containers of pmem-collections: `vec` (`PVec<u64>` push, get, pop), `queue`
//! (`PQueue<u64>` push_back, pop_front) and `string` (`PString` push_str, a checked `as_str`,
//! and `PBytes` pop), each operation but the reads its own transaction.

use std::time::Instant;

use pmem_collections::{PBytes, PQueue, PString, PVec};
use pmem_core::{Persistent, Pool};

use crate::common::{common_fields, destroy, per_op, report, Env, FlushTally, Result};

#[derive(Persistent)]
#[repr(C)]
pub struct RootVec {
    v: PVec<u64>,
}

#[derive(Persistent)]
#[repr(C)]
pub struct RootQueue {
    q: PQueue<u64>,
}

/// One timed phase: its per-rep ns/op and its flush counts.
#[derive(Default)]
struct Phase {
    ns: Vec<f64>,
    tally: FlushTally,
}

impl Phase {
    /// Times `f` over `n` operations on `pool`.
    fn time<R: Persistent>(
        &mut self,
        pool: &Pool<R>,
        n: u64,
        f: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let before = pool.stats().flush;
        let t0 = Instant::now();
        f()?;
        let elapsed = t0.elapsed().as_nanos() as u64;
        self.tally.add(&before, &pool.stats().flush, n);
        self.ns.push(per_op(elapsed, n));
        Ok(())
    }

    fn report(&self, name: &str, n: u64, fields: &str) {
        report(
            name,
            &self.ns,
            n,
            &format!("{fields} {}", self.tally.fields()),
        );
    }
}

#[inline(never)]
pub fn vec_push_loop(pool: &Pool<RootVec>, v: PVec<u64>, n: u64) -> Result<()> {
    for i in 0..n {
        pool.transaction(|tx| v.push(tx, i))?;
    }
    Ok(())
}

#[inline(never)]
pub fn vec_get_loop(pool: &Pool<RootVec>, v: PVec<u64>, n: u64) -> Result<u64> {
    let r = pool.reader()?;
    let mut sum = 0u64;
    for i in 0..n {
        sum = sum.wrapping_add(*v.get(&*r, i)?.ok_or("vec: missing element")?);
    }
    Ok(sum)
}

#[inline(never)]
pub fn vec_pop_loop(pool: &Pool<RootVec>, v: PVec<u64>, n: u64) -> Result<u64> {
    let mut sum = 0u64;
    for _ in 0..n {
        let x = pool
            .transaction(|tx| v.pop(tx))?
            .ok_or("vec: empty too soon")?;
        sum = sum.wrapping_add(x);
    }
    Ok(sum)
}

pub fn run_vec(env: &Env) -> Result<()> {
    let path = env.pool_path("vec");
    let n = env.n;
    let want = if n == 0 { 0 } else { n * (n - 1) / 2 };
    let (mut push, mut get, mut pop) = (Phase::default(), Phase::default(), Phase::default());
    let mut fields = String::new();
    for _ in 0..env.reps {
        let (pool, _) = env.create::<RootVec>(&path)?;
        let v = pool.transaction(|tx| -> pmem_collections::Result<_> {
            let v = PVec::new(tx)?;
            tx.root_mut().set_v(v)?;
            Ok(v)
        })?;
        push.time(&pool, n, || vec_push_loop(&pool, v, n))?;
        let mut sum = 0;
        get.time(&pool, n, || {
            sum = vec_get_loop(&pool, v, n)?;
            Ok(())
        })?;
        let mut popped = 0;
        pop.time(&pool, n, || {
            popped = vec_pop_loop(&pool, v, n)?;
            Ok(())
        })?;
        if sum != want || popped != want {
            return Err(format!("vec: verification failed get={sum} pop={popped}").into());
        }
        fields = common_fields(&pool, env);
        destroy(pool, &path);
    }
    let fields = format!("element=u64 fresh_pool_per_rep=1 {fields}");
    push.report("vec-push", n, &fields);
    get.report("vec-get", n, &format!("{fields} get=one_read_guard"));
    pop.report("vec-pop", n, &fields);
    Ok(())
}

#[inline(never)]
pub fn queue_push_loop(pool: &Pool<RootQueue>, q: PQueue<u64>, n: u64) -> Result<()> {
    for i in 0..n {
        pool.transaction(|tx| q.push_back(tx, i))?;
    }
    Ok(())
}

#[inline(never)]
pub fn queue_pop_loop(pool: &Pool<RootQueue>, q: PQueue<u64>, n: u64) -> Result<u64> {
    let mut sum = 0u64;
    for _ in 0..n {
        let x = pool
            .transaction(|tx| q.pop_front(tx))?
            .ok_or("queue: empty too soon")?;
        sum = sum.wrapping_add(x);
    }
    Ok(sum)
}

pub fn run_queue(env: &Env) -> Result<()> {
    let path = env.pool_path("queue");
    let n = env.n;
    let want = if n == 0 { 0 } else { n * (n - 1) / 2 };
    let (mut push, mut pop) = (Phase::default(), Phase::default());
    let mut fields = String::new();
    for _ in 0..env.reps {
        let (pool, _) = env.create::<RootQueue>(&path)?;
        let q = pool.transaction(|tx| -> pmem_collections::Result<_> {
            let q = PQueue::new(tx)?;
            tx.root_mut().set_q(q)?;
            Ok(q)
        })?;
        push.time(&pool, n, || queue_push_loop(&pool, q, n))?;
        let mut popped = 0;
        pop.time(&pool, n, || {
            popped = queue_pop_loop(&pool, q, n)?;
            Ok(())
        })?;
        if popped != want {
            return Err(format!("queue: verification failed pop={popped}").into());
        }
        fields = common_fields(&pool, env);
        destroy(pool, &path);
    }
    let fields = format!(
        "element=u64 block_len={} fresh_pool_per_rep=1 {fields}",
        PQueue::<u64>::block_len()
    );
    push.report("queue-push", n, &fields);
    pop.report("queue-pop", n, &fields);
    Ok(())
}

#[derive(Persistent)]
#[repr(C)]
pub struct RootString {
    s: PString,
}

/// The piece each `string` transaction appends: 16 bytes, ASCII, so a read checks UTF-8 over
/// the whole string.
const PIECE: &str = "0123456789abcdef";

/// The string the read and pop phases work on: 4096 pieces, 64 KiB.
const READ_BYTES: u64 = 4096 * PIECE.len() as u64;

#[inline(never)]
pub fn string_push_loop(pool: &Pool<RootString>, s: PString, n: u64) -> Result<()> {
    for _ in 0..n {
        pool.transaction(|tx| s.push_str(tx, PIECE))?;
    }
    Ok(())
}

/// Reads the string `n` times through one read guard, each time a checked `&str` (length,
/// bounds and UTF-8 over every byte), and sums one byte of each read.
#[inline(never)]
pub fn string_read_loop(pool: &Pool<RootString>, s: PString, n: u64) -> Result<u64> {
    let r = pool.reader()?;
    let mut sum = 0u64;
    for i in 0..n {
        let text = s.as_str(&*r)?;
        sum += u64::from(text.as_bytes()[(i as usize * 7) % text.len()]);
    }
    Ok(sum)
}

#[inline(never)]
pub fn bytes_pop_loop(pool: &Pool<RootString>, b: PBytes, n: u64) -> Result<u64> {
    let mut sum = 0u64;
    for _ in 0..n {
        let x = pool
            .transaction(|tx| b.pop(tx))?
            .ok_or("string: empty too soon")?;
        sum += u64::from(x);
    }
    Ok(sum)
}

pub fn run_string(env: &Env) -> Result<()> {
    let path = env.pool_path("string");
    let n = env.n;
    // Reads of the whole string cost its length each: read a 64 KiB string, not the n-piece one.
    let read_n = n.min(100_000);
    let pop_n = n.min(READ_BYTES);
    let (mut push, mut read, mut pop) = (Phase::default(), Phase::default(), Phase::default());
    let mut fields = String::new();
    for _ in 0..env.reps {
        let (pool, _) = env.create::<RootString>(&path)?;
        let s = pool.transaction(|tx| -> pmem_collections::Result<_> {
            let s = PString::new(tx)?;
            tx.root_mut().set_s(s)?;
            Ok(s)
        })?;
        push.time(&pool, n, || string_push_loop(&pool, s, n))?;
        let len = pool.read(|r| s.len(r))??;
        if len != n * PIECE.len() as u64 {
            return Err(format!("string: {len} bytes after {n} pushes").into());
        }
        pool.transaction(|tx| s.truncate(tx, READ_BYTES))?;
        read.time(&pool, read_n, || {
            string_read_loop(&pool, s, read_n).map(drop)
        })?;
        // Popping bytes of the string's own storage: `PBytes` as `PString` keeps it.
        let mut popped = 0;
        pop.time(&pool, pop_n, || {
            popped = bytes_pop_loop(&pool, s.as_bytes(), pop_n)?;
            Ok(())
        })?;
        let want: u64 = PIECE.bytes().map(u64::from).sum::<u64>() * (pop_n / PIECE.len() as u64);
        if pop_n % PIECE.len() as u64 == 0 && popped != want {
            return Err(format!("string: popped bytes sum to {popped}, not {want}").into());
        }
        fields = common_fields(&pool, env);
        destroy(pool, &path);
    }
    let fields = format!("piece_bytes={} fresh_pool_per_rep=1 {fields}", PIECE.len());
    push.report("string-push_str", n, &fields);
    read.report(
        "string-as_str",
        read_n,
        &format!("{fields} string_bytes={READ_BYTES} get=one_read_guard"),
    );
    pop.report("bytes-pop", pop_n, &fields);
    Ok(())
}
