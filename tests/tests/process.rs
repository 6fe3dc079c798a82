//! Pools shared between processes: what one process commits, another reads back; a pool open in
//! one process is refused to another until it is closed, or its process dies; a process killed
//! in the middle of a transaction leaves the pool as it was before that transaction.
//!
//! The second process is this test binary run again on one *child test* (see
//! `pmem_tests::child`); child tests do nothing in an ordinary run.

use std::fs;
use std::path::Path;

use pmem_core::{Error, PPtr, Persistent, Pool};
use pmem_tests::child;

#[derive(Persistent)]
#[repr(C)]
struct Root {
    count: u64,
    head: PPtr<Node>,
    name: [u8; 16],
}

#[derive(Persistent)]
#[repr(C)]
struct Node {
    value: u64,
    next: PPtr<Node>,
}

const SIZE: u64 = 1 << 20;

/// The temporary directory of a test; every test here starts processes, so they run one at a
/// time (see [`child::spawning`]).
struct Dir {
    tmp: tempfile::TempDir,
    _lock: child::SpawnLock,
}

fn tempdir() -> Dir {
    let lock = child::spawning();
    Dir {
        tmp: tempfile::tempdir().expect("create a temporary directory"),
        _lock: lock,
    }
}

impl Dir {
    fn path(&self) -> &Path {
        self.tmp.path()
    }
}

/// Sets the count and name and pushes `values` onto the list, in one transaction.
fn write(pool: &Pool<Root>, count: u64, name: &str, values: &[u64]) -> Result<(), Error> {
    pool.transaction(|tx| {
        tx.root_mut().set_count(count)?;
        let mut bytes = [0u8; 16];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        tx.root_mut().set_name(bytes)?;
        for &value in values {
            let next = tx.root().head;
            let node = tx.alloc(Node { value, next })?;
            tx.root_mut().set_head(node)?;
        }
        Ok(())
    })
}

/// The pool's contents as text: `count;name;values in list order`.
fn describe(pool: &Pool<Root>) -> String {
    pool.read(|r| {
        let root = r.root();
        let mut values = Vec::new();
        let mut p = root.head;
        while !p.is_null() && values.len() < 1000 {
            let node = r.get(p).expect("a list pointer the pool wrote itself");
            values.push(node.value.to_string());
            p = node.next;
        }
        let end = root.name.iter().position(|&b| b == 0).unwrap_or(16);
        let name = String::from_utf8_lossy(&root.name[..end]);
        format!("{};{};{}", root.count, name, values.join(","))
    })
    .unwrap()
}

fn error_kind(e: &Error) -> &'static str {
    match e {
        Error::PoolInUse { .. } => "PoolInUse",
        Error::NotFound { .. } => "NotFound",
        _ => "other",
    }
}

/// The one child test: does what [`child::TASK_VAR`] says to the pool at [`child::POOL_VAR`],
/// and reports.
#[test]
fn child_task() {
    let Some((task, path)) = child::task() else {
        return;
    };
    match task.as_str() {
        // Open, report the contents and identity, close.
        "read" => {
            let pool = Pool::<Root>::open(&path).unwrap_or_else(|e| panic!("child open: {e}"));
            child::report("contents", describe(&pool));
            child::report("uuid", pool.info().uuid_string());
            child::report("run_id", pool.info().run_id);
            child::report("pid", std::process::id());
        }
        // Create the pool, fill it, report its identity, close.
        "create-and-write" => {
            let pool =
                Pool::<Root>::create(&path, SIZE).unwrap_or_else(|e| panic!("child create: {e}"));
            write(&pool, 42, "from child", &[1, 2, 3]).unwrap();
            child::report("uuid", pool.info().uuid_string());
            child::report("pid", std::process::id());
        }
        // Try to open; report the outcome either way.
        "try-open" => match Pool::<Root>::open(&path) {
            Ok(pool) => child::report("open", format!("ok|{}", describe(&pool))),
            Err(e) => child::report("open", format!("{}|{e}", error_kind(&e))),
        },
        // Open, add one to the count, and hold the pool until the parent says or kills.
        "hold" => {
            let pool = Pool::<Root>::open(&path).unwrap_or_else(|e| panic!("child open: {e}"));
            pool.transaction(|tx| {
                let n = tx.root().count;
                tx.root_mut().set_count(n + 1)
            })
            .unwrap();
            child::report("opened", describe(&pool));
            child::wait_for_parent();
        }
        // Commit five transactions, then stop in the middle of a sixth until killed.
        "die-in-transaction" => {
            let pool = Pool::<Root>::open(&path).unwrap_or_else(|e| panic!("child open: {e}"));
            for i in 1..=5 {
                write(&pool, i, "committed", &[i]).unwrap();
            }
            child::report("committed", describe(&pool));
            let _: Result<(), Error> = pool.transaction(|tx| {
                tx.root_mut().set_count(1000)?;
                tx.root_mut().set_name(*b"never committed!")?;
                let next = tx.root().head;
                let node = tx.alloc(Node { value: 1000, next })?;
                tx.root_mut().set_head(node)?;
                child::report("in_transaction", "yes");
                child::wait_for_parent();
                // The parent kills this process before it gets here.
                panic!("the parent did not kill the child in its transaction")
            });
        }
        other => panic!("unknown child task {other:?}"),
    }
}

const CHILD: &str = "child_task";

#[test]
fn child_process_reads_what_the_parent_committed() {
    let dir = tempdir();
    let path = dir.path().join("parent-wrote.pool");
    let pool = Pool::<Root>::create(&path, SIZE).unwrap();
    write(&pool, 7, "from parent", &[10, 20, 30]).unwrap();
    let expected = describe(&pool);
    assert_eq!(expected, "7;from parent;30,20,10");
    let uuid = pool.info().uuid_string();
    let run_id = pool.info().run_id;
    drop(pool);

    let out = child::run_task(CHILD, "read", &path);
    out.assert_success();
    assert_ne!(out.expect_report("pid"), std::process::id().to_string());
    assert_eq!(out.expect_report("contents"), expected);
    assert_eq!(out.expect_report("uuid"), uuid);
    assert_eq!(out.expect_report("run_id"), (run_id + 1).to_string());

    // And the child's open changed nothing the parent sees, except the run id.
    let pool = Pool::<Root>::open(&path).unwrap();
    assert_eq!(describe(&pool), expected);
    assert_eq!(pool.info().run_id, run_id + 2);
}

#[test]
fn parent_reads_what_a_child_process_committed() {
    let dir = tempdir();
    let path = dir.path().join("child-wrote.pool");
    let out = child::run_task(CHILD, "create-and-write", &path);
    out.assert_success();
    assert_ne!(out.expect_report("pid"), std::process::id().to_string());

    let pool = Pool::<Root>::open(&path).expect("open the pool the child created");
    assert_eq!(describe(&pool), "42;from child;3,2,1");
    assert_eq!(pool.info().uuid_string(), out.expect_report("uuid"));
    assert_eq!(pool.info().root_type, "Root");
    assert_eq!(pool.info().recovery, Default::default(), "a clean close");
}

#[test]
fn child_process_gets_pool_in_use_while_the_parent_holds_the_pool() {
    let dir = tempdir();
    let path = dir.path().join("held-by-parent.pool");
    let pool = Pool::<Root>::create(&path, SIZE).unwrap();
    write(&pool, 1, "parent", &[5]).unwrap();
    let before = fs::read(&path).unwrap();

    let out = child::run_task(CHILD, "try-open", &path);
    out.assert_success();
    let got = out.expect_report("open");
    let (kind, msg) = got.split_once('|').expect("kind|message");
    assert_eq!(kind, "PoolInUse", "the child's open: {msg}");
    let file = format!("pool file {}", path.display());
    assert!(msg.contains(&file), "message lacks `{file}`: {msg}");
    assert!(msg.contains("in use"), "{msg}");
    assert!(
        fs::read(&path).unwrap() == before,
        "the refused open wrote to the pool"
    );

    // The parent's handle is unaffected; once it is closed the child gets in and sees its work.
    write(&pool, 2, "parent again", &[6]).unwrap();
    let expected = describe(&pool);
    drop(pool);
    let out = child::run_task(CHILD, "try-open", &path);
    out.assert_success();
    assert_eq!(out.expect_report("open"), format!("ok|{expected}"));
}

#[test]
fn parent_gets_pool_in_use_until_the_child_process_closes_the_pool() {
    let dir = tempdir();
    let path = dir.path().join("held-by-child.pool");
    let pool = Pool::<Root>::create(&path, SIZE).unwrap();
    write(&pool, 10, "start", &[]).unwrap();
    drop(pool);

    let mut holder = child::Running::start(&mut child::command(CHILD, "hold", &path));
    assert_eq!(holder.wait_for("opened"), "11;start;");
    for _ in 0..3 {
        let err = Pool::<Root>::open(&path).expect_err("open while the child holds the pool");
        assert!(matches!(err, Error::PoolInUse { .. }), "{err:?}");
    }
    let out = holder.finish();
    out.assert_success();

    let pool = Pool::<Root>::open(&path).expect("open once the child has closed the pool");
    assert_eq!(describe(&pool), "11;start;");
    assert_eq!(pool.info().recovery, Default::default(), "a clean close");
}

#[test]
fn the_lock_of_a_killed_process_is_released() {
    let dir = tempdir();
    let path = dir.path().join("killed-holder.pool");
    let pool = Pool::<Root>::create(&path, SIZE).unwrap();
    write(&pool, 20, "start", &[4]).unwrap();
    drop(pool);

    let mut holder = child::Running::start(&mut child::command(CHILD, "hold", &path));
    assert_eq!(holder.wait_for("opened"), "21;start;4");
    let err = Pool::<Root>::open(&path).expect_err("open while the child holds the pool");
    assert!(matches!(err, Error::PoolInUse { .. }), "{err:?}");
    let out = holder.kill();
    assert!(!out.status.success(), "the child was killed: {out}");

    let pool = Pool::<Root>::open(&path).expect("open after the holder was killed");
    assert_eq!(
        describe(&pool),
        "21;start;4",
        "the killed child's commit is kept"
    );
    // The pool is fully usable.
    write(&pool, 22, "after", &[8]).unwrap();
    assert_eq!(describe(&pool), "22;after;8,4");
}

#[test]
fn a_process_killed_in_a_transaction_leaves_the_last_commit() {
    let dir = tempdir();
    let path = dir.path().join("killed-in-tx.pool");
    drop(Pool::<Root>::create(&path, SIZE).unwrap());

    let mut worker = child::Running::start(&mut child::command(CHILD, "die-in-transaction", &path));
    let committed = worker.wait_for("committed");
    assert_eq!(committed, "5;committed;5,4,3,2,1");
    worker.wait_for("in_transaction");
    let out = worker.kill();
    assert!(
        !out.status.success(),
        "the child died in its transaction: {out}"
    );

    let pool = Pool::<Root>::open(&path).expect("open after the writer was killed");
    assert_eq!(
        describe(&pool),
        committed,
        "the killed transaction is rolled back"
    );
    // The killed transaction's writes never reached the pool (they go in place only after the
    // commit record is durable): recovery found the last commit's log and wrote it again.
    let recovery = pool.info().recovery;
    assert!(
        !recovery.rolled_back && recovery.undo_applied == 0 && recovery.redo_applied > 0,
        "recovery replays the last commit and finds nothing to roll back: {recovery:?}"
    );
    // The node allocated by the killed transaction is not in the heap.
    let nodes = pool.read(|r| r.objects::<Node>().count()).unwrap();
    assert_eq!(nodes, 5, "objects of the killed transaction leaked");
    write(&pool, 6, "resumed", &[6]).unwrap();
    drop(pool);

    let pool = Pool::<Root>::open(&path).unwrap();
    assert_eq!(describe(&pool), "6;resumed;6,5,4,3,2,1");
    assert_eq!(
        pool.info().recovery,
        Default::default(),
        "nothing left to recover"
    );
}
