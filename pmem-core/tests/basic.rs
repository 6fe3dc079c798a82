use pmem_core::error::PointerRejection;
use pmem_core::{Error, PPtr, Persistent, Pool};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    count: u64,
    head: PPtr<Node>,
}

#[derive(Persistent)]
#[repr(C)]
struct Node {
    value: u64,
    next: PPtr<Node>,
}

fn list(pool: &Pool<Root>) -> Vec<u64> {
    pool.read(|r| {
        let mut out = Vec::new();
        let mut p = r.root().head;
        while !p.is_null() {
            let n = r.get(p).unwrap();
            out.push(n.value);
            p = n.next;
        }
        out
    })
    .unwrap()
}

#[test]
fn create_write_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.pool");
    {
        let pool = Pool::<Root>::create(&path, 4 << 20).unwrap();
        for i in 0..10 {
            pool.transaction(|tx| {
                let n = tx.root().count;
                tx.root_mut().set_count(n + 1)?;
                let head = tx.root().head;
                let node = tx.alloc(Node {
                    value: i,
                    next: head,
                })?;
                tx.root_mut().set_head(node)
            })
            .unwrap();
        }
        assert_eq!(list(&pool), (0..10).rev().collect::<Vec<_>>());
    }
    let pool = Pool::<Root>::open(&path).unwrap();
    assert_eq!(pool.read(|r| r.root().count).unwrap(), 10);
    assert_eq!(list(&pool), (0..10).rev().collect::<Vec<_>>());
    assert_eq!(pool.stats().heap.live_objects, 10);
}

#[test]
fn abort_restores() {
    let pool = Pool::<Root>::builder().create_simulated(2 << 20).unwrap();
    pool.transaction(|tx| tx.root_mut().set_count(5)).unwrap();
    let r: Result<(), Error> = pool.transaction(|tx| {
        tx.root_mut().set_count(6)?;
        let n = tx.alloc(Node {
            value: 1,
            next: PPtr::null(),
        })?;
        tx.root_mut().set_head(n)?;
        Err(tx.abort())
    });
    assert!(matches!(r, Err(Error::Aborted { .. })));
    assert_eq!(pool.read(|r| r.root().count).unwrap(), 5);
    assert!(pool.read(|r| r.root().head.is_null()).unwrap());
    assert_eq!(pool.stats().heap.live_objects, 0);
}

#[test]
fn fences_per_single_range_tx() {
    let pool = Pool::<Root>::builder().create_simulated(2 << 20).unwrap();
    pool.transaction(|tx| tx.root_mut().set_count(1)).unwrap();
    let before = pool.stats().flush;
    pool.transaction(|tx| tx.root_mut().set_count(2)).unwrap();
    let d = pool.stats().flush.since(&before);
    assert_eq!(d.fences, 1, "{d:?}");
    let before = pool.stats().flush;
    let p = pool
        .alloc(Node {
            value: 1,
            next: PPtr::null(),
        })
        .unwrap();
    assert_eq!(pool.stats().flush.since(&before).fences, 1);
    let before = pool.stats().flush;
    pool.free(p).unwrap();
    assert_eq!(pool.stats().flush.since(&before).fences, 1);
}

#[test]
fn untyped_pool_is_claimed_by_first_typed_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("untyped.pool");
    let info = pmem_core::inspect::create_file(&path, 4 << 20, Some("demo"), 4096, false).unwrap();
    assert_eq!(info.root_fingerprint, 0);
    let inspection = pmem_core::inspect::Inspection::open(&path).unwrap();
    let report = inspection.check();
    assert!(report.is_healthy(), "{report}");
    drop(inspection);
    {
        let pool = Pool::<Root>::builder().layout("demo").open(&path).unwrap();
        pool.transaction(|tx| tx.root_mut().set_count(3)).unwrap();
    }
    let pool = Pool::<Root>::open(&path).unwrap();
    assert_eq!(pool.read(|r| r.root().count).unwrap(), 3);
    drop(pool);
    assert!(matches!(
        Pool::<Node>::open(&path),
        Err(Error::RootTypeMismatch { .. })
    ));
    let inspection = pmem_core::inspect::Inspection::open(&path).unwrap();
    assert_eq!(inspection.info().root_type, "Root");
    assert!(inspection.check().is_healthy());
}

#[test]
fn a_pointer_to_a_freed_object_is_an_error() {
    let pool = Pool::<Root>::builder().create_simulated(2 << 20).unwrap();
    let keep = pool
        .alloc(Node {
            value: 1,
            next: PPtr::null(),
        })
        .unwrap();
    let gone = pool
        .alloc(Node {
            value: 2,
            next: PPtr::null(),
        })
        .unwrap();
    pool.free(gone).unwrap();
    pool.read(|r| {
        assert_eq!(r.get(keep).unwrap().value, 1);
        assert!(matches!(r.get(gone), Err(Error::InvalidPointer { .. })));
    })
    .unwrap();
    let err = pool.transaction(|tx| tx.get(gone).map(|_| ())).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidPointer {
                reason: PointerRejection::NotAllocated,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("freed"), "{err}");
    assert!(
        matches!(
            pool.free(gone),
            Err(Error::InvalidPointer {
                reason: PointerRejection::NotAllocated,
                ..
            })
        ),
        "double free"
    );
}

/// Frees outside a transaction are applied to the allocator's runs in batches: in between, the
/// statistics already count them, the check agrees, and the space is reused.
#[test]
fn batched_single_store_frees_are_counted_and_reused() {
    let pool = Pool::<Root>::builder().create_simulated(4 << 20).unwrap();
    let nodes: Vec<PPtr<Node>> = (0..2000)
        .map(|i| {
            pool.alloc(Node {
                value: i,
                next: PPtr::null(),
            })
            .unwrap()
        })
        .collect();
    let in_use = pool.stats().heap.bytes_in_use;
    for (i, &p) in nodes.iter().enumerate() {
        if i % 2 == 0 {
            pool.free(p).unwrap();
        }
        if i == 1001 {
            // Mid-way, with frees not yet applied to the runs.
            assert_eq!(pool.stats().heap.live_objects, 2000 - 501);
            let report = pmem_core::check::check(&pool);
            assert!(report.is_healthy(), "{report}");
        }
    }
    assert_eq!(pool.stats().heap.live_objects, 1000);
    for i in 0..1000 {
        pool.alloc(Node {
            value: i,
            next: PPtr::null(),
        })
        .unwrap();
    }
    let stats = pool.stats().heap;
    assert_eq!(stats.live_objects, 2000);
    assert_eq!(stats.bytes_in_use, in_use, "the freed slots were reused");
    assert!(pmem_core::check::check(&pool).is_healthy());
}
