//! Processes killed at random moments while they run transactions: after every kill the pool
//! reopens, is consistent, leaks nothing, and has lost no committed transaction.
//!
//! The child (this test binary run again on [`child_task`], see `pmem_tests::child`) runs
//! transactions on a pool file forever; each one counts itself, pushes a node (with a slice of
//! payload) onto a list, and some pop nodes and free them, rewrite a large object in full (more
//! than the fixed log holds), or abort after changing everything. The parent kills it with
//! SIGKILL after a seeded random 0.5–15.5 ms, reopens the pool, and checks the structure's
//! invariants. `PMEM_TEST_SEED` replays a run; the seed is printed.
//!
//! Two campaigns of [`KILLS`] kills each: a pool on an ordinary file (in the target directory),
//! flushed with msync, and one on /dev/shm with cache-line flushes forced. A process kill keeps
//! the page cache either way, but the two order and batch their writes differently.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant};

use pmem_core::check::check;
use pmem_core::{Error, PPtr, PSlice, Persistent, Pool, Tx};
use pmem_tests::child;
use pmem_tests::rng::Rng;

#[derive(Persistent)]
#[repr(C)]
struct Root {
    /// Transactions committed: never goes backwards.
    txs: u64,
    /// Nodes on the list.
    len: u64,
    head: PPtr<Node>,
    pushed: u64,
    popped: u64,
    /// Every word of it holds `wide_gen`.
    wide: PPtr<Wide>,
    wide_gen: u64,
}

#[derive(Persistent)]
#[repr(C)]
struct Node {
    /// The `txs` of the transaction that pushed it: strictly decreasing along the list.
    value: u64,
    next: PPtr<Node>,
    /// `payload_len(value)` words, each `value`.
    payload: PSlice<u64>,
}

/// 128 KiB: logging it all takes more than the fixed log slot.
#[derive(Persistent)]
#[repr(C)]
struct Wide {
    words: [u64; 16 * 1024],
}

const POOL_SIZE: u64 = 16 << 20;
/// Kills per storage kind: 1,000 in all.
const KILLS: u32 = 500;
/// The child runs for 0.5 ms plus up to this long before it is killed.
const MAX_RUN_MICROS: u64 = 15_000;
/// Above this the child pops more than it pushes, so the list stays bounded.
const MAX_LEN: u64 = 2_000;
const CHILD: &str = "child_task";
const SEED_VAR: &str = "PMEM_TEST_SEED";
const MODE_VAR: &str = "PMEM_TEST_FORCE_PMEM";

fn payload_len(value: u64) -> u64 {
    // Mostly small (several size classes), now and then larger than a run unit (whole chunks).
    if value % 97 == 0 {
        5_000
    } else {
        1 + value % 40
    }
}

/// Pops the head node and frees it and its payload.
fn pop(tx: &mut Tx<'_, Root>) -> pmem_core::Result<()> {
    let head = tx.root().head;
    if head.is_null() {
        return Ok(());
    }
    let node = tx.get(head)?;
    let (next, payload) = (node.next, node.payload);
    tx.free_slice(payload)?;
    tx.free(head)?;
    tx.root_mut().set_head(next)?;
    let (len, popped) = (tx.root().len, tx.root().popped);
    tx.root_mut().set_len(len - 1)?;
    tx.root_mut().set_popped(popped + 1)
}

/// One transaction of the child's workload, chosen by `r`.
fn step(tx: &mut Tx<'_, Root>, r: u64) -> pmem_core::Result<()> {
    let n = tx.root().txs + 1;
    tx.root_mut().set_txs(n)?;
    // Push.
    let words = vec![n; payload_len(n) as usize];
    let payload = tx.alloc_slice(&words)?;
    let next = tx.root().head;
    let node = tx.alloc(Node {
        value: n,
        next,
        payload,
    })?;
    tx.root_mut().set_head(node)?;
    let (len, pushed) = (tx.root().len, tx.root().pushed);
    tx.root_mut().set_len(len + 1)?;
    tx.root_mut().set_pushed(pushed + 1)?;
    // Pop some.
    let pops = if len + 1 > MAX_LEN {
        2
    } else if r % 8 == 0 {
        3
    } else {
        0
    };
    for _ in 0..pops {
        pop(tx)?;
    }
    // Now and then rewrite the large object in full.
    if r % 32 == 5 {
        let wide = tx.root().wide;
        tx.get_mut(wide)?.words.fill(n);
        tx.root_mut().set_wide_gen(n)?;
    }
    // Now and then change our mind.
    if r % 16 == 9 {
        return Err(tx.abort());
    }
    Ok(())
}

/// The child: opens the pool, says so, and runs transactions until it is killed.
#[test]
fn child_task() {
    let Some((task, path)) = child::task() else {
        return;
    };
    assert_eq!(task, "run", "unknown child task");
    let seed: u64 = std::env::var(SEED_VAR).unwrap().parse().unwrap();
    let force_pmem = std::env::var(MODE_VAR).is_ok_and(|v| v == "1");
    let pool = Pool::<Root>::builder()
        .force_pmem(force_pmem)
        .open(&path)
        .unwrap_or_else(|e| panic!("child open: {e}"));
    let mut rng = Rng(seed);
    child::report("mode", pool.info().flush_mode.is_pmem());
    child::report("ready", pool.read(|r| r.root().txs).unwrap());
    let mut reported = false;
    loop {
        let r = rng.next_u64();
        match pool.transaction(|tx| step(tx, r)) {
            Ok(()) if !reported => {
                child::report("committed", 1);
                reported = true;
            }
            Ok(()) | Err(Error::Aborted { .. }) => {}
            Err(e) => panic!("child transaction failed: {e}"),
        }
    }
}

/// What the parent checks after each kill.
#[derive(Debug)]
struct Seen {
    txs: u64,
    len: u64,
}

/// Opens the pool after a kill and checks every invariant.
fn reopen_and_check(path: &Path, kill: u32, seed: u64) -> (Seen, pmem_core::RecoveryReport) {
    let ctx = format!("after kill {kill} (seed {seed})");
    let pool = Pool::<Root>::open(path).unwrap_or_else(|e| panic!("reopen {ctx}: {e}"));
    let recovery = pool.info().recovery;
    let report = check(&pool);
    assert!(report.is_healthy(), "check {ctx}:\n{report}");
    assert!(
        report.unreachable.is_empty(),
        "leaked objects {ctx}:\n{report}"
    );
    let seen = pool
        .read(|r| {
            let root = r.root();
            assert_eq!(root.len, root.pushed - root.popped, "{ctx}");
            let mut p = root.head;
            let mut count = 0u64;
            let mut last = u64::MAX;
            while !p.is_null() {
                let node = r
                    .get(p)
                    .unwrap_or_else(|e| panic!("list node {count} {ctx}: {e}"));
                assert!(
                    node.value < last && node.value <= root.txs,
                    "node {count} has value {} after {last}, txs {} {ctx}",
                    node.value,
                    root.txs
                );
                let payload = r
                    .get_slice(node.payload)
                    .unwrap_or_else(|e| panic!("payload of node {count} {ctx}: {e}"));
                assert_eq!(payload.len() as u64, payload_len(node.value), "{ctx}");
                assert!(payload.iter().all(|&w| w == node.value), "{ctx}");
                last = node.value;
                p = node.next;
                count += 1;
                assert!(
                    count <= root.len,
                    "the list is longer than its length {ctx}"
                );
            }
            assert_eq!(count, root.len, "list length {ctx}");
            let wide = r
                .get(root.wide)
                .unwrap_or_else(|e| panic!("wide {ctx}: {e}"));
            assert!(root.wide_gen <= root.txs, "{ctx}");
            assert!(
                wide.words.iter().all(|&w| w == root.wide_gen),
                "the large object is torn {ctx}"
            );
            Seen {
                txs: root.txs,
                len: root.len,
            }
        })
        .unwrap();
    // Every object is a node, its payload, or the large object.
    assert_eq!(pool.stats().heap.live_objects, 2 * seen.len + 1, "{ctx}");
    (seen, recovery)
}

/// Where a campaign's pool lives, and how the child flushes it.
#[derive(Debug, Clone, Copy)]
enum Storage {
    /// An ordinary file in the target directory, flushed with msync.
    FileMsync,
    /// A file on /dev/shm (tmpfs when there is one), flushed with cache-line instructions.
    ShmForced,
}

#[test]
fn killed_mid_transaction_on_a_file_in_msync_mode_loses_nothing_committed() {
    campaign(Storage::FileMsync);
}

#[test]
fn killed_mid_transaction_on_dev_shm_with_forced_flushes_loses_nothing_committed() {
    campaign(Storage::ShmForced);
}

/// Runs [`KILLS`] kills of a child working on a pool in `storage`, checking after each.
fn campaign(storage: Storage) {
    let _lock = child::spawning();
    let seed = std::env::var(SEED_VAR)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0fc0_ffee_u64);
    println!("seed {seed} (set {SEED_VAR} to replay)");
    let (dir, force_pmem) = match storage {
        Storage::FileMsync => (
            tempfile::Builder::new()
                .prefix("pmem-tx-kill-")
                .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
                .expect("create a temporary directory"),
            false,
        ),
        Storage::ShmForced => (pmem_tests::shm_tempdir("pmem-tx-kill-"), true),
    };
    let path = dir.path().join("kill.pool");
    {
        let pool = Pool::<Root>::create(&path, POOL_SIZE).unwrap();
        pool.transaction(|tx| {
            let wide = tx.alloc_zeroed::<Wide>()?;
            tx.root_mut().set_wide(wide)
        })
        .unwrap();
    }

    let start = Instant::now();
    let mut rng = Rng(seed);
    let mut last = Seen { txs: 0, len: 0 };
    let (mut in_tx, mut replayed, mut progressed, mut during_startup) = (0, 0, 0, 0);
    for kill in 0..KILLS {
        let child_seed = rng.next_u64();
        let mut cmd = child::command(CHILD, "run", &path);
        cmd.env(SEED_VAR, child_seed.to_string())
            .env(MODE_VAR, if force_pmem { "1" } else { "0" });
        let mut running = child::Running::start(&mut cmd);
        // Most kills come once the child runs transactions, three in five after its first
        // commit (so that the run makes progress however slow the machine); every fifth may come
        // while it is still starting up, opening or recovering the pool.
        let waited = kill % 5 != 4;
        if waited {
            let at_start: u64 = running.wait_for("ready").parse().unwrap();
            assert_eq!(
                at_start, last.txs,
                "the child opened a different pool state"
            );
            let flushes_pmem: bool = running.wait_for("mode").parse().unwrap();
            assert_eq!(flushes_pmem, force_pmem, "the child's flush mode");
            if kill % 5 < 3 {
                running.wait_for("committed");
            }
        }
        std::thread::sleep(Duration::from_micros(500 + rng.below(MAX_RUN_MICROS)));
        let out = running.kill();
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGKILL),
            "the child ended before it was killed\n{out}"
        );
        if !out.stdout.contains("ready=") {
            during_startup += 1;
        }

        let (seen, recovery) = reopen_and_check(&path, kill, seed);
        assert!(
            seen.txs >= last.txs,
            "the transaction counter went back from {} to {} at kill {kill} (seed {seed})",
            last.txs,
            seen.txs
        );
        // A transaction's writes reach the pool only after its commit record is durable, so a
        // kill inside one leaves the last committed log (its redo entries replayed), or a
        // half-written commit (rolled back).
        if recovery.rolled_back || recovery.redo_applied > 0 {
            in_tx += 1;
        }
        if recovery.ops_replayed > 0 {
            replayed += 1;
        }
        if seen.txs > last.txs {
            progressed += 1;
        }
        if kill % 50 == 0 {
            println!(
                "kill {kill:3} ({storage:?}): txs {:6} (+{:5}), \
                 list {:4}, recovery {:?}",
                seen.txs,
                seen.txs - last.txs,
                seen.len,
                recovery
            );
        }
        last = seen;
    }
    let elapsed = start.elapsed();
    eprintln!(
        "{KILLS} SIGKILLs on {storage:?} in {elapsed:.1?} ({:.1?} per kill): {in_tx} inside a \
         transaction (a log to replay or roll back), {replayed} with committed heap operations replayed, \
         {during_startup} before the child was ready; {} transactions committed in all",
        elapsed / KILLS,
        last.txs
    );
    assert!(
        progressed >= KILLS / 2,
        "the child made progress before only {progressed} of {KILLS} kills"
    );
    assert!(
        in_tx > KILLS / 4,
        "only {in_tx} of {KILLS} kills fell inside a transaction: the test did not test"
    );
    // A clean open and close afterwards leaves nothing to recover.
    drop(Pool::<Root>::open(&path).unwrap());
    let pool = Pool::<Root>::open(&path).unwrap();
    assert_eq!(pool.info().recovery, Default::default());
}
