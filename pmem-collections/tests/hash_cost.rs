//! The costs PHashMap's documentation states, measured: fences and flushed lines per insert,
//! replacement and removal, and what growth adds per insert, amortised (growth in the insert
//! that needs it, against a table made big enough up front). Run with `--nocapture` for the
//! numbers.

use pmem_collections::{PHashMap, Result};
use pmem_core::{FlushStats, Persistent, Pool};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    map: PHashMap<u64, u64>,
}

const N: u64 = 3000;

fn pool(capacity: u64) -> (Pool<Root>, PHashMap<u64, u64>) {
    let pool = Pool::<Root>::builder().create_simulated(16 << 20).unwrap();
    let map = pool
        .transaction(|tx| -> Result<_> {
            let map = PHashMap::with_capacity_and_key(tx, capacity, [3, 5])?;
            tx.root_mut().set_map(map)?;
            Ok(map)
        })
        .unwrap();
    (pool, map)
}

/// Runs `op` for each key in its own transaction: the fences and lines it took in all.
fn each(
    pool: &Pool<Root>,
    mut op: impl FnMut(&mut pmem_core::Tx<'_, Root>, u64) -> Result<()>,
) -> FlushStats {
    let before = pool.stats().flush;
    for k in 0..N {
        pool.transaction(|tx| op(tx, k)).unwrap();
    }
    pool.stats().flush.since(&before)
}

fn per_op(stats: &FlushStats) -> (f64, f64) {
    (
        stats.fences as f64 / N as f64,
        stats.lines_flushed as f64 / N as f64,
    )
}

#[test]
fn fences_and_lines_per_operation() {
    let (sized, map) = pool(N);
    let insert = each(&sized, |tx, k| map.insert(tx, k, k).map(drop));
    let replace = each(&sized, |tx, k| map.insert(tx, k, k + 1).map(drop));
    let remove = each(&sized, |tx, k| map.remove(tx, &k).map(drop));
    let (grown, map) = pool(0);
    let growing = each(&grown, |tx, k| map.insert(tx, k, k).map(drop));
    let slots = grown
        .read(|r| r.get(r.root().map.as_ptr()).map(|m| m.slots.len()))
        .unwrap()
        .unwrap();
    for (name, stats) in [
        ("insert, table sized up front", &insert),
        ("insert, growing from 8 slots", &growing),
        ("replace", &replace),
        ("remove", &remove),
    ] {
        let (fences, lines) = per_op(stats);
        eprintln!("{name}: {fences:.2} fences, {lines:.2} lines per operation");
    }
    // One fence per operation: the commit's.
    assert_eq!(insert.fences, N);
    assert_eq!(replace.fences, N);
    assert_eq!(remove.fences, N);
    // The slot (a 24-byte slot spans two lines one time in four) and the metadata; a
    // replacement writes only the value, which never spans two lines (one line more, once, in
    // a run of N). The log's lines are counted apart, as streamed or flushed by the CPU's mode.
    assert!(per_op(&insert).1 <= 2.3, "{insert:?}");
    assert!(per_op(&remove).1 <= 2.3, "{remove:?}");
    assert!(replace.lines_flushed <= N + 1, "{replace:?}");
    // Growth adds no fence: the new table is fresh. It only writes the table back.
    assert_eq!(growing.fences, N, "growth added fences");
    assert_eq!(slots, 4096);
    let extra_lines = growing.lines_flushed as f64 / N as f64 - per_op(&insert).1;
    assert!(
        (0.0..1.5).contains(&extra_lines),
        "growth wrote back {extra_lines:.2} more lines per insert"
    );
}
