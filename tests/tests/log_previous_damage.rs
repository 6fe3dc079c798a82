//! Damage inside the previous log, whose commit recovery must replay while the newest transaction
//! is interrupted, refuses the open: skipping that commit's heap operations would leave an object
//! reachable from the root free in the heap.
use pmem_core::crash::{CrashTest, ImageKind};
use pmem_core::error::{Corruption, LogCorruption};
use pmem_core::{check, PPtr, Persistent, Pool, PoolImage, Result};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    a: u64,
    b: u64,
    c: u64,
    head: PPtr<Node>,
}

#[derive(Persistent)]
#[repr(C)]
struct Node {
    v: u64,
}

const POOL: u64 = 4 << 20;
const LOG_OFFSET_FIELD: usize = 80;
const LOG_SLOT_SIZE: u64 = 64 * 1024;

/// Where one bit of the previous log is flipped (offsets in its slot; entries are 64 bytes).
const DAMAGE: [(&str, u64); 5] = [
    ("a value in the second entry", 64 + 32),
    ("the second entry's length", 64 + 5),
    ("a value in the first entry", 32),
    ("the first entry's checksum", 16),
    ("the first entry's generation", 8),
];

fn workload(pool: &Pool<Root>) -> Result<()> {
    // P: three redo entries, then an allocation published in the root.
    pool.transaction(|tx| {
        tx.root_mut().set_a(1)?;
        tx.root_mut().set_b(2)?;
        tx.root_mut().set_c(3)?;
        let n = tx.alloc(Node { v: 42 })?;
        tx.root_mut().set_head(n)
    })?;
    // N: interrupted while it writes its log (its commit record torn, below).
    pool.transaction(|tx| {
        tx.root_mut().set_a(10)?;
        tx.root_mut().set_b(20)?;
        tx.root_mut().set_c(30)
    })
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

#[test]
fn damage_in_a_previous_log_recovery_needs_refuses_the_open() {
    let test = CrashTest::new(POOL);
    let fences = CrashTest::new(POOL)
        .every_nth_fence(u64::MAX)
        .random_subsets(0)
        .run::<Root>(workload, |_, _| Ok(()))
        .fences;
    let (mut bad, mut refused) = (0, std::collections::HashMap::new());
    for (what, _) in DAMAGE {
        refused.insert(what, 0);
    }
    for fence in 0..=fences {
        let Ok(image) = test.image_at::<Root>(workload, fence, ImageKind::Everything) else {
            continue;
        };
        let mut torn = image.as_bytes().to_vec();
        let log = u64_at(&torn, LOG_OFFSET_FIELD);
        let gens = [0u64, 1].map(|i| u64_at(&torn, (log + i * LOG_SLOT_SIZE) as usize + 8));
        // Only images where the newest log is N (gen of P + 1) and P is the other slot.
        if gens[0] == 0 || gens[1] == 0 || gens[0].abs_diff(gens[1]) != 1 {
            continue;
        }
        let p_slot = u64::from(gens[1] < gens[0]);
        // N's entries persist in any order under its one fence: its commit record torn, its
        // redo entries whole, is one crash image of that fence.
        let n_entries = pmem_tests::hostile::format::entries(&torn, 1 - p_slot);
        match n_entries.last() {
            Some(e) if e.kind_word & 0xff == 5 => {
                torn[e.at as usize..e.at as usize + 24].fill(0);
            }
            _ => continue,
        }
        let image = PoolImage::from_bytes(&torn);
        let bytes = image.as_bytes();
        // Undamaged control: the pool opens and the node is allocated.
        let control = Pool::<Root>::builder()
            .open_image(image.clone())
            .expect("a crash image opens");
        assert!(check::check(&control).problems.is_empty(), "fence {fence}");
        let committed_p = control.read(|r| r.root().head).unwrap() != PPtr::null();
        drop(control);
        if !committed_p {
            continue;
        }
        for (what, at) in DAMAGE {
            let at = log + p_slot * LOG_SLOT_SIZE + at;
            let mut damaged = bytes.to_vec();
            damaged[at as usize] ^= 1;
            match Pool::<Root>::builder().open_image(PoolImage::from_bytes(&damaged)) {
                Err(e) => {
                    assert!(
                        matches!(
                            e,
                            pmem_core::Error::Corrupt {
                                problem: Corruption::Log {
                                    slot,
                                    problem: LogCorruption::Damaged { .. }
                                        | LogCorruption::FirstEntryNeeded { .. }
                                        // Damage before its commit record, in the one group
                                        // its fence made durable: the record is not reached.
                                        | LogCorruption::NoCommit { .. },
                                },
                                ..
                            } if slot == p_slot
                        ),
                        "fence {fence}, {what}: {e:?}"
                    );
                    let msg = e.to_string();
                    assert!(
                        msg.contains(&format!("log slot {p_slot}"))
                            && (msg.contains("damaged") || msg.contains("commit")),
                        "fence {fence}, {what}: the refusal names the slot and the damage: {msg}"
                    );
                    let checked = check::check_image(PoolImage::from_bytes(&damaged));
                    assert!(
                        checked.map_or(true, |report| !report.problems.is_empty()),
                        "fence {fence}, {what}: the check agrees with the open"
                    );
                    *refused.get_mut(what).unwrap() += 1;
                }
                Ok(pool) => {
                    let report = check::check(&pool);
                    let head = pool.read(|r| r.root().head).unwrap();
                    let fresh = pool.alloc(Node { v: 7 }).unwrap();
                    if !report.problems.is_empty() || fresh == head {
                        println!(
                            "fence {fence}, {what}: opened; problems {:?}; root.head {head:?}, new allocation {fresh:?}",
                            report.problems
                        );
                        bad += 1;
                    }
                }
            }
        }
    }
    assert_eq!(
        bad, 0,
        "a damaged previous log was accepted and left the heap inconsistent"
    );
    for (what, n) in refused {
        assert!(
            n > 0,
            "{what}: no image refused (no interrupted log after a committed one?)"
        );
    }
}

/// Commits and aborts in turn: an aborted log is retired, and a `RETIRED` entry torn over the
/// older log's first entry while the newest log is uncommitted reads as what it is, never as
/// damage in a log recovery needs.
fn commits_and_aborts(pool: &Pool<Root>) -> Result<()> {
    for i in 0..4u64 {
        pool.transaction(|tx| -> pmem_core::Result<_> {
            tx.root_mut().set_a(i)?;
            let n = tx.alloc(Node { v: i })?;
            let old = tx.root().head;
            tx.root_mut().set_head(n)?;
            if !old.is_null() {
                tx.free(old)?;
            }
            Ok(())
        })?;
        let _ = pool.transaction(|tx| -> Result<()> {
            tx.root_mut().set_b(100 + i)?;
            tx.root_mut().set_c(200 + i)?;
            Err(tx.abort())
        });
    }
    Ok(())
}

#[test]
fn every_crash_image_of_commits_and_aborts_opens_and_checks_clean() {
    for seed in 0..2 {
        CrashTest::new(POOL)
            .random_subsets(16)
            .seed(seed)
            .crash_during_recovery(true)
            .max_failures(5)
            .run::<Root>(commits_and_aborts, |pool, _| {
                let (a, b, c, head) = pool
                    .read(|r| {
                        let root = r.root();
                        (root.a, root.b, root.c, root.head)
                    })
                    .unwrap();
                if b != 0 || c != 0 {
                    return Err(format!("an aborted write survived: b {b}, c {c}"));
                }
                let v = pool.read(|r| r.get(head).map(|n| n.v).ok()).unwrap();
                if !head.is_null() && v != Some(a) {
                    return Err(format!("root.a {a} but the head node holds {v:?}"));
                }
                let report = check::check(pool);
                if !report.problems.is_empty() {
                    return Err(format!("check: {:?}", report.problems));
                }
                Ok(())
            })
            .assert_ok();
    }
}
