//! W5: a fixed-size chained hash map of 2^20 buckets; transactional inserts, then lookups.

use std::time::Instant;

use pmem_core::{PPtr, Persistent, Pool, Reader};

use crate::common::{common_fields, destroy, per_op, report, splitmix64, Env, FlushTally, Result};

const HM_BITS: u32 = 20;
const HM_NBUCKETS: usize = 1 << HM_BITS;

/// A map entry: 24 bytes (PMDK's is 32, with a 16-byte `PMEMoid next`, in a 128-byte block).
#[derive(Persistent)]
#[repr(C)]
pub struct Entry {
    key: u64,
    value: u64,
    next: PPtr<Entry>,
}

/// The bucket array: one 8 MiB object of 8-byte pointers (PMDK's is 16 MiB of `PMEMoid`s).
type Buckets = [PPtr<Entry>; HM_NBUCKETS];

#[derive(Persistent)]
#[repr(C)]
pub struct RootHm {
    buckets: PPtr<Buckets>,
}

fn hash(key: u64) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - HM_BITS)) as usize
}

/// Insert: one transaction allocates the entry at the head of its chain and sets the bucket
/// (logging the 8-byte slot).
#[inline(never)]
pub fn w5_insert_loop(pool: &Pool<RootHm>, buckets: PPtr<Buckets>, keys: &[u64]) -> Result<()> {
    for (i, &key) in keys.iter().enumerate() {
        let h = hash(key);
        pool.transaction(|tx| {
            let next = tx.get(buckets)?[h];
            let e = tx.alloc(Entry {
                key,
                value: i as u64,
                next,
            })?;
            tx.edit(buckets)?.set_at(h, e)
        })?;
    }
    Ok(())
}

/// Lookup: walks each key's chain through checked pointers and sums the values found. The
/// caller holds one read guard around the whole loop (PMDK's lookup is a lock-free
/// `pmemobj_direct` walk).
#[inline(never)]
pub fn w5_lookup_loop(
    r: &Reader<'_, RootHm>,
    buckets: PPtr<Buckets>,
    keys: &[u64],
) -> Result<(u64, u64)> {
    let bk = r.get(buckets)?;
    let (mut sum, mut miss) = (0u64, 0u64);
    for &key in keys {
        let mut p = bk[hash(key)];
        let mut found = None;
        while !p.is_null() {
            let e = r.get(p)?;
            if e.key == key {
                found = Some(e.value);
                break;
            }
            p = e.next;
        }
        match found {
            Some(v) => sum = sum.wrapping_add(v),
            None => miss += 1,
        }
    }
    Ok((sum, miss))
}

/// Untimed shape of the map: non-empty buckets and the longest chain.
fn shape(r: &Reader<'_, RootHm>, buckets: PPtr<Buckets>) -> Result<(u64, u64)> {
    let (mut used, mut longest) = (0, 0);
    for &head in r.get(buckets)?.iter() {
        let mut len = 0;
        let mut p = head;
        while !p.is_null() {
            len += 1;
            p = r.get(p)?.next;
        }
        used += (len > 0) as u64;
        longest = longest.max(len);
    }
    Ok((used, longest))
}

pub fn run(env: &Env) -> Result<()> {
    let path = env.pool_path("w5");
    let n = env.n;
    let mut state = 42;
    let keys: Vec<u64> = (0..n).map(|_| splitmix64(&mut state)).collect();
    let (mut ins_ns, mut look_ns) = (Vec::new(), Vec::new());
    let (mut tally, mut look_tally) = (FlushTally::default(), FlushTally::default());
    let (mut used, mut longest) = (0, 0);
    let mut fields = String::new();
    for rep in 0..env.reps {
        let (pool, _) = env.create::<RootHm>(&path)?;
        // Setup (untimed): one transaction makes the zeroed bucket array and roots it.
        let buckets = pool.transaction(|tx| -> pmem_core::Result<_> {
            let b = tx.alloc_zeroed::<Buckets>()?;
            tx.root_mut().set_buckets(b)?;
            Ok(b)
        })?;
        let before = pool.stats().flush;
        let t0 = Instant::now();
        w5_insert_loop(&pool, buckets, &keys)?;
        let t1 = Instant::now();
        let mid = pool.stats().flush;
        tally.add(&before, &mid, n);
        // The lookup clock starts after the statistics are read (they take locks).
        let t_look = Instant::now();
        let (sum, miss) = {
            let r = pool.reader()?;
            w5_lookup_loop(&r, buckets, &keys)?
        };
        let t2 = Instant::now();
        look_tally.add(&mid, &pool.stats().flush, n);
        let want = if n == 0 { 0 } else { n * (n - 1) / 2 };
        if miss != 0 || sum != want {
            return Err(format!("w5: lookup verification failed miss={miss} sum={sum}").into());
        }
        ins_ns.push(per_op((t1 - t0).as_nanos() as u64, n));
        look_ns.push(per_op((t2 - t_look).as_nanos() as u64, n));
        if rep == 0 {
            (used, longest) = shape(&*pool.reader()?, buckets)?;
        }
        fields = common_fields(&pool, env);
        destroy(pool, &path);
    }
    let extra = format!(
        "buckets={HM_NBUCKETS} entry_size={} bucket_slot_size={} nonempty_buckets={used} max_chain={longest} fresh_pool_per_rep=1 {fields}",
        core::mem::size_of::<Entry>(),
        core::mem::size_of::<PPtr<Entry>>(),
    );
    report(
        "W5-hashmap-insert",
        &ins_ns,
        n,
        &format!("{extra} {}", tally.fields()),
    );
    report(
        "W5-hashmap-lookup",
        &look_ns,
        n,
        &format!(
            "{extra} lookup=one_read_guard_checked_get {}",
            look_tally.fields()
        ),
    );
    Ok(())
}
