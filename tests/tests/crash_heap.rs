//! Crash tests of the persistent allocator: at every fence, the nothing-pending and everything
//! images and 3 seeded random subsets are reopened and must pass the deep heap check: every
//! object reachable from the root is allocated, no allocated object is unreachable, no two
//! objects overlap, the statistics match a recount, and the root matches the committed
//! operations (plus at most the one in flight).

use std::sync::{Arc, Mutex};

use pmem_core::check::check;
use pmem_core::crash::CrashTest;
use pmem_core::{PSlice, Persistent, Pool};
use pmem_tests::rng::splitmix64 as rng;

const SLOTS: usize = 48;

#[derive(Persistent)]
#[repr(C)]
struct Root {
    slots: [PSlice<u8>; SLOTS],
}

/// What the slots hold after the operations that returned, and the one in flight.
#[derive(Default, Clone)]
struct Model {
    committed: Vec<Option<(u64, u8)>>,
    in_flight: Option<(usize, Option<(u64, u8)>)>,
}

fn slot_state(pool: &Pool<Root>, i: usize) -> Result<Option<(u64, u8)>, String> {
    pool.read(|r| {
        let s = r.root().slots[i];
        if s.is_null() {
            return Ok(None);
        }
        let bytes = r.get_slice(s).map_err(|e| format!("slot {i}: {e}"))?;
        let fill = bytes[0];
        if bytes.iter().any(|&b| b != fill) {
            return Err(format!("slot {i}: contents are torn"));
        }
        Ok(Some((s.len(), fill)))
    })
    .unwrap()
}

fn heap_check(pool: &Pool<Root>, model: &Model) -> Result<(), String> {
    let report = check(pool);
    if !report.is_healthy() {
        return Err(report.to_string());
    }
    if !report.unreachable.is_empty() {
        return Err(format!("leaked objects at {:x?}", report.unreachable));
    }
    for i in 0..SLOTS {
        let now = slot_state(pool, i)?;
        let expected = model.committed.get(i).copied().flatten();
        let in_flight = match model.in_flight {
            Some((j, after)) if j == i => Some(after),
            _ => None,
        };
        if now != expected && Some(now) != in_flight {
            return Err(format!(
                "slot {i} holds {now:?}, expected {expected:?} (or {in_flight:?} in flight)"
            ));
        }
    }
    Ok(())
}

/// The live `[u64; 8]` objects are `live`, give or take the operation in flight (one extra
/// allocation, or `freeing` still there), and the heap passes the deep check.
fn live_objects_match<R: Persistent>(
    pool: &Pool<R>,
    live: &[u64],
    freeing: Option<u64>,
) -> Result<(), String> {
    let found: Vec<u64> = pool
        .read(|r| r.objects::<[u64; 8]>().map(|p| p.offset()).collect())
        .unwrap();
    let extra: Vec<u64> = found
        .iter()
        .filter(|o| !live.contains(o))
        .copied()
        .collect();
    let missing: Vec<u64> = live
        .iter()
        .filter(|o| !found.contains(o))
        .copied()
        .collect();
    let ok = extra.len() <= 1
        && (missing.is_empty() || (missing.len() == 1 && Some(missing[0]) == freeing));
    if !ok {
        return Err(format!(
            "live objects differ: extra {extra:x?}, missing {missing:x?}"
        ));
    }
    let report = check(pool);
    if report.is_healthy() {
        Ok(())
    } else {
        Err(report.to_string())
    }
}

/// Sizes from 1 byte to 40 KiB, log-uniform, so small runs, large runs and chunk spans all occur.
fn random_size(state: &mut u64) -> u64 {
    let bits = 1 + rng(state) % 15;
    1 + rng(state) % (1 << bits)
}

/// Runs `ops` random allocations (published into a root slot) and frees (cleared from it).
fn mixed_workload(
    pool: &Pool<Root>,
    model: &Mutex<Model>,
    ops: u64,
    seed: u64,
) -> pmem_core::Result<()> {
    let mut state = seed;
    model.lock().unwrap().committed = vec![None; SLOTS];
    for op in 0..ops {
        let i = (rng(&mut state) % SLOTS as u64) as usize;
        let current = model.lock().unwrap().committed[i];
        let after = match current {
            Some(_) => None,
            None => Some((random_size(&mut state), (op % 251) as u8 + 1)),
        };
        model.lock().unwrap().in_flight = Some((i, after));
        match after {
            None => {
                let s = pool.read(|r| r.root().slots[i]).unwrap();
                pool.transaction(|tx| {
                    tx.root_mut().slots_mut().set_at(i, PSlice::null())?;
                    tx.free_slice(s)
                })?;
            }
            Some((len, fill)) => {
                let done = pool.transaction(|tx| {
                    let s = tx.alloc_slice_zeroed::<u8>(len)?;
                    tx.get_slice_mut(s)?.fill(fill);
                    tx.root_mut().slots_mut().set_at(i, s)
                });
                match done {
                    // A full pool refuses the allocation and changes nothing.
                    Err(pmem_core::Error::OutOfSpace { .. }) => {
                        model.lock().unwrap().in_flight = None;
                        continue;
                    }
                    other => other?,
                }
            }
        }
        let mut m = model.lock().unwrap();
        m.committed[i] = after;
        m.in_flight = None;
    }
    Ok(())
}

fn run(ops: u64, seed: u64, pool_size: u64) {
    let model = Arc::new(Mutex::new(Model::default()));
    let seen = model.clone();
    let report = CrashTest::new(pool_size).seed(seed).run::<Root>(
        move |pool| mixed_workload(pool, &model, ops, seed),
        move |pool, _| heap_check(pool, &seen.lock().unwrap().clone()),
    );
    report.assert_ok();
    eprintln!("{ops} operations: {report}");
}

#[test]
fn alloc_and_publish_then_free() {
    #[derive(Persistent)]
    #[repr(C)]
    struct One {
        node: pmem_core::PPtr<[u64; 4]>,
    }
    let report = CrashTest::new(1 << 20).run::<One>(
        |pool| {
            for i in 0..20 {
                let p = pool.alloc_into([i; 4], |tx, p| tx.root_mut().set_node(p))?;
                pool.free_from(p, |tx| tx.root_mut().set_node(pmem_core::PPtr::null()))?;
            }
            Ok(())
        },
        |pool, _| {
            let report = check(pool);
            if !report.is_healthy() || !report.unreachable.is_empty() || report.live_objects > 1 {
                return Err(report.to_string());
            }
            let node = pool.read(|r| r.root().node).unwrap();
            if !node.is_null() {
                let v = pool
                    .read(|r| r.get(node).copied())
                    .unwrap()
                    .map_err(|e| e.to_string())?;
                if v.iter().any(|&x| x != v[0]) {
                    return Err(format!("published object is torn: {v:?}"));
                }
            }
            Ok(())
        },
    );
    report.assert_ok();
    eprintln!("{report}");
}

#[test]
fn random_mix_of_ten_thousand_allocations_and_frees() {
    run(10_000, 0xA110C, 2 << 20);
}

#[derive(Persistent)]
#[repr(C)]
struct Empty {
    unused: u64,
}

/// Objects allocated with `Pool::alloc` (kept only in memory) and freed with `Pool::free`, which
/// frees with a single 8-byte store when it can: after a crash, the live objects are exactly the
/// committed ones, plus or minus the operation in flight.
#[test]
fn atomic_alloc_and_free_without_a_destination() {
    let committed: Arc<Mutex<(Vec<u64>, Option<u64>)>> = Arc::default();
    let seen = committed.clone();
    let report = CrashTest::new(1 << 20).run::<Empty>(
        move |pool| {
            let mut state = 7u64;
            for _ in 0..400 {
                let live = committed.lock().unwrap().0.clone();
                if !live.is_empty() && rng(&mut state) % 3 == 0 {
                    let i = (rng(&mut state) % live.len() as u64) as usize;
                    committed.lock().unwrap().1 = Some(live[i]);
                    pool.free(pmem_core::PPtr::<[u64; 8]>::from_offset(live[i]))?;
                    let mut c = committed.lock().unwrap();
                    c.0.retain(|&o| o != live[i]);
                    c.1 = None;
                } else {
                    let v = rng(&mut state);
                    let p = pool.alloc([v; 8])?;
                    let mut c = committed.lock().unwrap();
                    c.0.push(p.offset());
                }
            }
            Ok(())
        },
        move |pool, _| {
            let (live, in_flight) = seen.lock().unwrap().clone();
            live_objects_match(pool, &live, in_flight)?;
            for p in pool
                .read(|r| r.objects::<[u64; 8]>().collect::<Vec<_>>())
                .unwrap()
            {
                let v = pool.read(|r| *r.get(p).unwrap()).unwrap();
                if v.iter().any(|&x| x != v[0]) {
                    return Err(format!("object at {:#x} is torn: {v:x?}", p.offset()));
                }
            }
            Ok(())
        },
    );
    report.assert_ok();
    eprintln!("{report}");
}

#[derive(Persistent)]
#[repr(C)]
struct Counted {
    count: u64,
}

/// Allocation streams leave the last bitmap word unflushed, carried by the next commit's record;
/// here they are interleaved with transactions whose undo fence comes before that commit, with
/// aborts after the log started, and with single-store frees. After any crash, the live objects
/// are the committed ones (plus or minus the operation in flight) and the counter is exact.
#[test]
fn allocation_streams_with_undo_fences_and_aborts() {
    #[derive(Clone, Default)]
    struct Seen {
        live: Vec<u64>,
        freeing: Option<u64>,
        count: u64,
    }
    let model: Arc<Mutex<Seen>> = Arc::default();
    let seen = model.clone();
    let report = CrashTest::new(1 << 20).run::<Counted>(
        move |pool| {
            let mut state = 11u64;
            for round in 0..300u64 {
                match rng(&mut state) % 6 {
                    0 => {
                        let aborted = pool.transaction(|tx| {
                            tx.alloc([round; 8])?;
                            let c = tx.root().count;
                            tx.root_mut().set_count(c + 1)?;
                            Err::<(), _>(tx.abort())
                        });
                        assert!(matches!(aborted, Err(pmem_core::Error::Aborted { .. })));
                    }
                    1 => {
                        pool.transaction(|tx| {
                            let c = tx.root().count;
                            tx.root_mut().set_count(c + 1)
                        })?;
                        model.lock().unwrap().count += 1;
                    }
                    2 if !model.lock().unwrap().live.is_empty() => {
                        let live = model.lock().unwrap().live.clone();
                        let victim = live[(rng(&mut state) % live.len() as u64) as usize];
                        model.lock().unwrap().freeing = Some(victim);
                        pool.free(pmem_core::PPtr::<[u64; 8]>::from_offset(victim))?;
                        let mut m = model.lock().unwrap();
                        m.live.retain(|&o| o != victim);
                        m.freeing = None;
                    }
                    _ => {
                        let p = pool.alloc([round; 8])?;
                        model.lock().unwrap().live.push(p.offset());
                    }
                }
            }
            Ok(())
        },
        move |pool, _| {
            let m = seen.lock().unwrap().clone();
            let count = pool.read(|r| r.root().count).unwrap();
            if count != m.count && count != m.count + 1 {
                return Err(format!("counter {count} after {} commits", m.count));
            }
            live_objects_match(pool, &m.live, m.freeing)
        },
    );
    report.assert_ok();
    eprintln!("{report}");
}
