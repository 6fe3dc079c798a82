//! Disk space of pool files: a new pool reserves little, the heap reserves chunks as it hands
//! them out, a full file system is a typed error from the allocation (never `SIGBUS`), and open
//! reserves the chunks in use again.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use pmem_core::check::check;
use pmem_core::crash::{CrashTest, ImageKind};
use pmem_core::{Error, FaultPlan, Location, PPtr, PSlice, Persistent, Pool};

#[derive(Persistent)]
#[repr(C)]
struct Counter {
    count: u64,
}

#[derive(Persistent)]
#[repr(C)]
struct Root {
    count: u64,
    head: PPtr<Node>,
    big: PSlice<u64>,
}

#[derive(Persistent)]
#[repr(C)]
struct Node {
    value: u64,
    next: PPtr<Node>,
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const POOL_SIZE: u64 = 64 * MIB;

/// Bytes of disk the file at `path` has reserved or written (`st_blocks`).
fn disk_bytes(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().blocks() * 512
}

fn file_pool(path: &Path, plan: Option<&FaultPlan>) -> Pool<Root> {
    let mut builder = Pool::<Root>::builder().force_pmem(true);
    if let Some(plan) = plan {
        builder = builder.fault_plan(plan.clone());
    }
    builder.open_or_create(path, POOL_SIZE).unwrap()
}

/// Pushes `n` nodes onto the root's list, `batch` per transaction.
fn push_nodes(pool: &Pool<Root>, n: u64, batch: u64) {
    let mut done = 0;
    while done < n {
        let here = batch.min(n - done);
        pool.transaction(|tx| -> pmem_core::Result<()> {
            for i in 0..here {
                let head = tx.root().head;
                let node = tx.alloc(Node {
                    value: done + i,
                    next: head,
                })?;
                tx.root_mut().set_head(node)?;
            }
            Ok(())
        })
        .unwrap();
        done += here;
    }
}

/// The deep check finds no problem, and every object is reachable from the root.
fn assert_deep_check(pool: &Pool<Root>) {
    let report = check(pool);
    assert!(report.is_healthy(), "{report}");
    assert!(report.unreachable.is_empty(), "{report}");
}

fn is_disk_full(e: &Error, path: &Path) -> bool {
    matches!(e, Error::Io { location: Location::File(p), source, .. }
        if p == path && source.raw_os_error() == Some(libc::ENOSPC))
}

/// The bound for a new pool of [`POOL_SIZE`]: the header copies (8 KiB), the two log slots
/// (128 KiB), the type table (64 KiB), the root's page (4 KiB) and the chunk table (16 bytes per
/// 16 KiB chunk: 64 KiB) are reserved, and nothing of the heap or its bitmaps (512 KiB); the
/// rest is slack for the file system's own blocks.
const FRESH_BOUND: u64 = 320 * KIB;

#[test]
fn a_new_pool_reserves_its_headers_logs_root_and_chunk_table_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("counter.pool");
    let pool = Pool::<Counter>::builder()
        .force_pmem(true)
        .create(&path, POOL_SIZE)
        .unwrap();
    pool.transaction(|tx| tx.root_mut().set_count(1)).unwrap();
    drop(pool);
    let pool = Pool::<Counter>::open(&path).unwrap();
    pool.transaction(|tx| tx.root_mut().set_count(2)).unwrap();
    drop(pool);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), POOL_SIZE);
    let used = disk_bytes(&path);
    assert!(
        used <= FRESH_BOUND,
        "a one-counter pool of {POOL_SIZE} bytes takes {used} bytes of disk"
    );
    assert_eq!(
        Pool::<Counter>::open(&path)
            .unwrap()
            .read(|r| r.root().count)
            .unwrap(),
        2
    );
}

#[test]
fn reserve_all_reserves_the_whole_file_at_create() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.pool");
    let plan = FaultPlan::new();
    let pool = Pool::<Counter>::builder()
        .reserve_all(true)
        .fault_plan(plan.clone())
        .create(&path, POOL_SIZE)
        .unwrap();
    assert!(disk_bytes(&path) >= POOL_SIZE);
    let before = plan.reservations();
    pool.transaction(|tx| {
        tx.alloc_slice_zeroed::<u64>(MIB)?;
        tx.root_mut().set_count(1)
    })
    .unwrap();
    assert_eq!(plan.reservations(), before, "nothing is reserved later");
}

#[test]
fn disk_usage_grows_with_the_heap_in_steps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grow.pool");
    let plan = FaultPlan::new();
    let pool = file_pool(&path, Some(&plan));
    let fresh = disk_bytes(&path);
    assert!(fresh <= FRESH_BOUND, "{fresh}");

    // 10,000 nodes of 16 bytes: 160 KB of runs, within the first 1 MiB step (its tables too).
    push_nodes(&pool, 10_000, 100);
    let small = disk_bytes(&path);
    assert!(small > fresh, "{small} after nodes, {fresh} fresh");
    assert!(small <= fresh + MIB + 64 * KIB, "{small}");

    // An 8 MiB object: the heap grows by at least that much, and by no more than a doubling.
    let big = pool
        .transaction(|tx| {
            let big = tx.alloc_slice_zeroed::<u64>(MIB)?;
            tx.root_mut().set_big(big)?;
            Ok::<_, Error>(big)
        })
        .unwrap();
    let grown = disk_bytes(&path);
    assert!(
        grown >= fresh + 8 * MIB,
        "{grown} after 8 MiB, {fresh} fresh"
    );
    println!("disk: fresh {fresh}, 10,000 nodes {small}, and 8 MiB {grown}");
    assert!(grown <= fresh + 2 * (9 * MIB + 64 * KIB), "{grown}");

    // Written through the mapping and reopened: everything is still there.
    pool.transaction(|tx| {
        tx.get_slice_mut(big)?.fill(7);
        Ok::<_, Error>(())
    })
    .unwrap();
    drop(pool);
    let pool = file_pool(&path, None);
    assert_deep_check(&pool);
    let sum = pool
        .read(|r| r.get_slice(r.root().big).unwrap().iter().sum::<u64>())
        .unwrap();
    assert_eq!(sum, 7 * MIB);
}

#[test]
fn many_small_objects_take_few_reservations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.pool");
    let plan = FaultPlan::new();
    let pool = file_pool(&path, Some(&plan));
    let before = plan.reservations();
    push_nodes(&pool, 100_000, 1000);
    let calls = plan.reservations() - before;
    // 1.6 MB of 16-byte nodes: the heap grows 1 MiB, then doubles to 2 MiB, two calls each.
    println!(
        "100000 objects: {calls} reservation calls, {} KiB of disk",
        disk_bytes(&path) / KIB
    );
    assert!(calls <= 8, "{calls} reservation calls");
}

#[test]
fn a_full_disk_fails_the_allocation_and_loses_nothing_committed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full-disk.pool");
    let plan = FaultPlan::new();
    let pool = file_pool(&path, Some(&plan));
    // Exactly 1 MiB, the first step: the heap's watermark is now at the end of what is in use.
    let big = pool
        .transaction(|tx| {
            let big = tx.alloc_slice::<u64>(&vec![3; (MIB / 8) as usize])?;
            tx.root_mut().set_big(big)?;
            tx.root_mut().set_count(1)?;
            Ok::<_, Error>(big)
        })
        .unwrap();

    plan.fail_reservations_from(plan.reservations());
    // A new run: the allocation fails, typed, naming the file and ENOSPC.
    let e = pool
        .transaction(|tx| {
            tx.root_mut().set_count(2)?;
            tx.alloc(Node {
                value: 1,
                next: PPtr::null(),
            })
            .map(drop)
        })
        .unwrap_err();
    assert!(is_disk_full(&e, &path), "{e:?}");
    assert!(e.to_string().contains("full-disk.pool"), "{e}");
    // A large object too.
    let e = pool
        .transaction(|tx| tx.alloc_slice_zeroed::<u64>(MIB).map(drop))
        .unwrap_err();
    assert!(is_disk_full(&e, &path), "{e:?}");
    // A log that outgrows its slot (1 MiB of undo) needs heap chunks: the write fails and the
    // transaction aborts, restoring every byte.
    let e = pool
        .transaction(|tx| {
            tx.root_mut().set_count(3)?;
            tx.get_slice_mut(big)?.fill(9);
            Ok::<_, Error>(())
        })
        .unwrap_err();
    assert!(is_disk_full(&e, &path), "{e:?}");
    // The pool is not poisoned: what needs no new space still commits.
    pool.transaction(|tx| tx.root_mut().set_count(4)).unwrap();
    assert_deep_check(&pool);
    drop(pool);

    let pool = file_pool(&path, None);
    assert_deep_check(&pool);
    pool.read(|r| {
        assert_eq!(r.root().count, 4);
        assert!(r.get_slice(r.root().big).unwrap().iter().all(|&v| v == 3));
        assert!(r.root().head.is_null());
    })
    .unwrap();
    // With room again, the pool grows.
    push_nodes(&pool, 1000, 1000);
    assert_deep_check(&pool);
}

#[test]
fn a_full_disk_at_open_fails_the_open_and_leaves_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("open.pool");
    let pool = file_pool(&path, None);
    push_nodes(&pool, 10, 10);
    drop(pool);
    let plan = FaultPlan::new();
    plan.fail_reservations_from(0);
    let e = Pool::<Root>::builder()
        .fault_plan(plan)
        .open(&path)
        .unwrap_err();
    assert!(is_disk_full(&e, &path), "{e:?}");
    let pool = file_pool(&path, None);
    assert_deep_check(&pool);
    assert_eq!(
        pool.read(|r| r.get(r.root().head).unwrap().value).unwrap(),
        9
    );
}

#[test]
fn open_reserves_again_the_chunks_of_a_sparse_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orig.pool");
    let pool = file_pool(&path, None);
    // 4 MiB of zeros in use, and a list after it.
    pool.transaction(|tx| {
        let big = tx.alloc_slice_zeroed::<u64>(MIB / 2)?;
        tx.root_mut().set_big(big)
    })
    .unwrap();
    push_nodes(&pool, 1000, 1000);
    drop(pool);
    let original = disk_bytes(&path);
    assert!(original >= 4 * MIB, "{original}");

    let copy = dir.path().join("copy.pool");
    let status = Command::new("cp")
        .arg("--sparse=always")
        .arg(&path)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    let sparse = disk_bytes(&copy);
    assert!(
        sparse < 2 * MIB,
        "cp --sparse=always left {sparse} bytes of disk"
    );

    let pool = file_pool(&copy, None);
    let reserved = disk_bytes(&copy);
    assert!(
        reserved >= 4 * MIB + 16 * KIB,
        "open reserved {reserved} bytes of a sparse copy"
    );
    assert_deep_check(&pool);
    pool.transaction(|tx| {
        let big = tx.root().big;
        tx.get_slice_mut(big)?.fill(1);
        Ok::<_, Error>(())
    })
    .unwrap();
    assert_eq!(
        pool.read(|r| r.get_slice(r.root().big).unwrap().iter().sum::<u64>())
            .unwrap(),
        MIB / 2
    );
}

#[test]
fn simulated_pools_fail_reservations_at_the_same_places() {
    let plan = FaultPlan::new();
    let pool = Pool::<Root>::builder()
        .fault_plan(plan.clone())
        .create_simulated(8 * MIB)
        .unwrap();
    plan.fail_reservations_from(plan.reservations());
    let e = pool
        .transaction(|tx| {
            tx.alloc(Node {
                value: 1,
                next: PPtr::null(),
            })
            .map(drop)
        })
        .unwrap_err();
    assert!(
        matches!(&e, Error::Io { location: Location::Memory, source, .. } if source.raw_os_error() == Some(libc::ENOSPC)),
        "{e:?}"
    );
    plan.fail_reservations_from(u64::MAX);
    push_nodes(&pool, 100, 100);
    assert_deep_check(&pool);
}

#[test]
fn recovery_reserves_what_it_writes_before_writing_it() {
    let workload = |pool: &Pool<Root>| -> pmem_core::Result<()> {
        pool.transaction(|tx| {
            let big = tx.alloc_slice_zeroed::<u64>(1024)?;
            tx.root_mut().set_big(big)
        })?;
        pool.transaction(|tx| {
            let big = tx.root().big;
            tx.get_slice_mut(big)?.fill(5);
            tx.root_mut().set_count(9)
        })
    };
    let test = CrashTest::new(8 * MIB);
    let fences = CrashTest::new(8 * MIB)
        .every_nth_fence(u64::MAX)
        .random_subsets(0)
        .run::<Root>(workload, |_, _| Ok(()))
        .fences;
    // The first crash image whose recovery writes the second transaction's redo entries into
    // place (fences made while creating the pool are not the workload's, and have no image).
    let image = (0..=fences)
        .filter_map(|fence| test.image_at(workload, fence, ImageKind::Everything).ok())
        .find(|image| {
            Pool::<Root>::builder()
                .open_image(image.clone())
                .is_ok_and(|pool| {
                    pool.info().recovery.redo_applied > 0
                        && pool.read(|r| r.root().count).unwrap() == 9
                })
        })
        .expect("a crash after the second transaction's commit record");

    // Reservation 0 is the fixed areas', 1 recovery's.
    let plan = FaultPlan::new();
    plan.fail_reservations_from(1);
    let e = Pool::<Root>::builder()
        .fault_plan(plan.clone())
        .open_image(image.clone())
        .unwrap_err();
    assert!(
        matches!(&e, Error::Io { operation, source, .. }
            if operation.contains("recovery") && source.raw_os_error() == Some(libc::ENOSPC)),
        "{e:?}"
    );
    assert_eq!(
        plan.reservations(),
        2,
        "nothing after recovery's reservation"
    );

    let pool = Pool::<Root>::builder().open_image(image).unwrap();
    assert!(pool.info().recovery.redo_applied > 0);
    assert_deep_check(&pool);
    pool.read(|r| {
        assert_eq!(r.root().count, 9);
        assert!(r.get_slice(r.root().big).unwrap().iter().all(|&v| v == 5));
    })
    .unwrap();
}
