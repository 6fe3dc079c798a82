//! Crash images of transactions whose logs continue in heap blocks (a large undo split across
//! extension blocks, an abort of such a log, a commit whose heap operations spill into `REDO`
//! entries), with random subsets of unfenced writes and crashes during recovery: every image
//! opens (no legitimate crash state reads as damage) and passes the deep check.
use pmem_core::crash::CrashTest;
use pmem_core::{check, PPtr, PSlice, Persistent, Pool, Result};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    count: u64,
    big: PSlice<u64>,
    head: PPtr<Node>,
}

#[derive(Persistent)]
#[repr(C)]
struct Node {
    value: u64,
    next: PPtr<Node>,
}

const N: u64 = 40_000;

fn workload(pool: &Pool<Root>) -> Result<()> {
    pool.transaction(|tx| {
        let s = tx.alloc_slice_zeroed::<u64>(N)?;
        tx.root_mut().set_big(s)
    })?;
    pool.transaction(|tx| {
        let s = tx.root().big;
        for (i, v) in tx.get_slice_mut(s)?.iter_mut().enumerate() {
            *v = i as u64;
        }
        tx.root_mut().set_count(1)
    })?;
    let _ = pool.transaction(|tx| -> Result<()> {
        let s = tx.root().big;
        for v in tx.get_slice_mut(s)?.iter_mut() {
            *v = 7;
        }
        tx.root_mut().set_count(99)?;
        Err(tx.abort())
    });
    pool.transaction(|tx| {
        for i in 0..1500 {
            let head = tx.root().head;
            let n = tx.alloc(Node {
                value: i,
                next: head,
            })?;
            tx.root_mut().set_head(n)?;
        }
        tx.root_mut().set_count(2)
    })?;
    for k in 3..6 {
        pool.transaction(|tx| tx.root_mut().set_count(k))?;
    }
    Ok(())
}

#[test]
fn every_crash_image_of_extended_logs_opens_and_checks_clean() {
    for seed in 0..3u64 {
        let report = CrashTest::new(8 << 20)
            .random_subsets(12)
            .seed(seed)
            .crash_during_recovery(true)
            .max_failures(5)
            .run::<Root>(workload, |pool, _| {
                let c = pool.read(|r| r.root().count).unwrap();
                if ![0, 1, 2, 3, 4, 5].contains(&c) {
                    return Err(format!("count {c}"));
                }
                let rep = check::check(pool);
                if !rep.problems.is_empty() {
                    return Err(format!("check: {:?}", rep.problems));
                }
                Ok(())
            });
        println!(
            "seed {seed}: fences {} images {}",
            report.fences, report.images
        );
        report.assert_ok();
    }
}
