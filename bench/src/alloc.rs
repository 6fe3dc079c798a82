//! W3 (atomic alloc and free of 64-byte objects) and W4 (transactional list push).

use std::time::Instant;

use pmem_core::{PPtr, Persistent, Pool};

use crate::common::{common_fields, destroy, ns_since, per_op, report, Env, FlushTally, Result};

/// A 64-byte object (W3, W6). PMDK's `pmemobj_alloc(64)` takes a 128-byte block for it.
#[derive(Persistent, Clone, Copy)]
#[repr(C)]
pub struct Obj64 {
    pub words: [u64; 8],
}

impl Obj64 {
    pub const ZERO: Obj64 = Obj64 { words: [0; 8] };
}

/// W3: `pool.alloc` is one fail-safe step whose pointer lands in volatile memory, like
/// `pmemobj_alloc` into a DRAM `PMEMoid` array.
#[inline(never)]
pub fn w3_alloc_loop(pool: &Pool<()>, ptrs: &mut [PPtr<Obj64>]) -> Result<()> {
    for p in ptrs.iter_mut() {
        *p = pool.alloc(Obj64::ZERO)?;
    }
    Ok(())
}

/// W3: frees in allocation (FIFO) order.
#[inline(never)]
pub fn w3_free_loop(pool: &Pool<()>, ptrs: &[PPtr<Obj64>]) -> Result<()> {
    for &p in ptrs {
        pool.free(p)?;
    }
    Ok(())
}

pub fn run_w3(env: &Env) -> Result<()> {
    let path = env.pool_path("w3");
    let n = env.n;
    // Pre-touched volatile pointer array, as the C harness memsets its oids.
    let mut ptrs = vec![PPtr::<Obj64>::null(); n as usize];
    let (mut alloc_ns, mut free_ns) = (Vec::new(), Vec::new());
    let (mut alloc_tally, mut free_tally) = (FlushTally::default(), FlushTally::default());
    let mut fields = String::new();
    for _ in 0..env.reps {
        let (pool, _) = env.create::<()>(&path)?;
        let s0 = pool.stats().flush;
        let t0 = Instant::now();
        w3_alloc_loop(&pool, &mut ptrs)?;
        let t_alloc = Instant::now();
        let s1 = pool.stats().flush;
        // The free loop's clock starts after the statistics are read (they take locks).
        let t1 = Instant::now();
        w3_free_loop(&pool, &ptrs)?;
        let t2 = Instant::now();
        let s2 = pool.stats().flush;
        alloc_tally.add(&s0, &s1, n);
        free_tally.add(&s1, &s2, n);
        alloc_ns.push(per_op((t_alloc - t0).as_nanos() as u64, n));
        free_ns.push(per_op((t2 - t1).as_nanos() as u64, n));
        let live = pool.stats().heap.live_objects;
        if live != 0 {
            return Err(format!("w3: {live} objects live after freeing all").into());
        }
        fields = common_fields(&pool, env);
        destroy(pool, &path);
    }
    let extra = format!("size=64 fresh_pool_per_rep=1 {fields}");
    report(
        "W3-atomic-alloc-64",
        &alloc_ns,
        n,
        &format!("{extra} {}", alloc_tally.fields()),
    );
    report(
        "W3-atomic-free-64",
        &free_ns,
        n,
        &format!("{extra} {}", free_tally.fields()),
    );
    Ok(())
}

/// A 64-byte list node. PMDK's has a 16-byte `PMEMoid next` and 40 bytes of padding; this one
/// an 8-byte `PPtr` and 48.
#[derive(Persistent)]
#[repr(C)]
pub struct Node {
    next: PPtr<Node>,
    value: u64,
    pad: [u8; 48],
}

/// The root of W4: the list head, padded to 64 bytes.
#[derive(Persistent)]
#[repr(C)]
pub struct RootList {
    head: PPtr<Node>,
    pad: [u64; 7],
}

/// W4: each op is one transaction that allocates a node pointing at the old head and makes it
/// the new head (logging the 8-byte head).
#[inline(never)]
pub fn w4_loop(pool: &Pool<RootList>, n: u64) -> Result<()> {
    for i in 0..n {
        pool.transaction(|tx| {
            let head = tx.root().head;
            let node = tx.alloc(Node {
                next: head,
                value: i,
                pad: [0; 48],
            })?;
            tx.root_mut().set_head(node)
        })?;
    }
    Ok(())
}

/// Untimed check: the list has `n` nodes.
fn list_len(pool: &Pool<RootList>) -> Result<u64> {
    pool.read(|r| {
        let mut count = 0;
        let mut p = r.root().head;
        while !p.is_null() {
            count += 1;
            p = r.get(p)?.next;
        }
        Ok(count)
    })?
}

pub fn run_w4(env: &Env) -> Result<()> {
    let path = env.pool_path("w4");
    let mut ns = Vec::new();
    let mut tally = FlushTally::default();
    let mut fields = String::new();
    for _ in 0..env.reps {
        let (pool, _) = env.create::<RootList>(&path)?;
        let before = pool.stats().flush;
        let t0 = Instant::now();
        w4_loop(&pool, env.n)?;
        let elapsed = ns_since(t0);
        tally.add(&before, &pool.stats().flush, env.n);
        ns.push(per_op(elapsed, env.n));
        let len = list_len(&pool)?;
        if len != env.n {
            return Err(format!("w4: list length {len} != N").into());
        }
        fields = common_fields(&pool, env);
        destroy(pool, &path);
    }
    let extra = format!(
        "node_size=64 fresh_pool_per_rep=1 {fields} {}",
        tally.fields()
    );
    report("W4-tx-alloc-push-64", &ns, env.n, &extra);
    Ok(())
}
