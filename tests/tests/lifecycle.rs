//! A pool's lifecycle under unusual but legal use: reads nested while another thread waits to
//! write, reads from thread-local destructors, leaked guards, hooks that read the pool, odd pool
//! sizes. Each ends cleanly: no deadlock, no panic, no hang.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use pmem_core::crash::CrashTest;
use pmem_core::{check, FaultPlan, Persistent, Pool, ReadGuard};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    count: u64,
}

const SIZE: u64 = 4 << 20;

/// Runs `f` on its own thread and fails if it has not finished within `secs` seconds, instead
/// of hanging the test binary. A timed-out thread is left behind (the process exits anyway).
fn within<T: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: did not finish in {secs} s"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: the thread panicked"),
    }
}

/// Waits until another thread is (very probably) blocked on the pool's write lock.
fn let_writer_queue() {
    std::thread::sleep(Duration::from_millis(200));
}

/// A reader that reads again (nested) while another thread waits in `transaction`.
fn nested_read_with_waiting_writer(nested: fn(&Pool<Root>)) {
    within(10, "nested read with a waiting writer", move || {
        let pool = Arc::new(Pool::<Root>::builder().create_simulated(SIZE).unwrap());
        let writer_started = Arc::new(AtomicBool::new(false));
        pool.read(|_| {
            let writer = {
                let pool = Arc::clone(&pool);
                let started = Arc::clone(&writer_started);
                std::thread::spawn(move || {
                    started.store(true, Ordering::SeqCst);
                    pool.transaction(|tx| tx.root_mut().set_count(1)).unwrap();
                })
            };
            while !writer_started.load(Ordering::SeqCst) {
                std::thread::yield_now();
            }
            let_writer_queue();
            nested(&pool);
            writer
        })
        .unwrap()
        .join()
        .unwrap();
        assert_eq!(pool.read(|r| r.root().count).unwrap(), 1);
    });
}

#[test]
fn a_nested_read_does_not_wait_for_a_queued_writer() {
    nested_read_with_waiting_writer(|pool| assert_eq!(pool.read(|r| r.root().count).unwrap(), 0));
}

#[test]
fn check_inside_a_read_does_not_wait_for_a_queued_writer() {
    nested_read_with_waiting_writer(|pool| assert!(check::check(pool).is_healthy()));
}

#[test]
fn a_nested_guard_outliving_the_outer_one_keeps_writers_out() {
    within(10, "guards released out of order", || {
        let pool = Arc::new(Pool::<Root>::builder().create_simulated(SIZE).unwrap());
        let outer = pool.reader().unwrap();
        let inner = pool.reader().unwrap();
        drop(outer);
        let wrote = Arc::new(AtomicBool::new(false));
        let writer = {
            let pool = Arc::clone(&pool);
            let wrote = Arc::clone(&wrote);
            std::thread::spawn(move || {
                pool.transaction(|tx| tx.root_mut().set_count(5)).unwrap();
                wrote.store(true, Ordering::SeqCst);
            })
        };
        let_writer_queue();
        assert!(
            !wrote.load(Ordering::SeqCst),
            "a transaction ran under a live guard"
        );
        assert_eq!(inner.root().count, 0);
        drop(inner);
        writer.join().unwrap();
        assert_eq!(pool.read(|r| r.root().count).unwrap(), 5);
    });
}

#[test]
fn a_transaction_under_any_own_guard_is_refused() {
    let pool = Pool::<Root>::builder().create_simulated(SIZE).unwrap();
    let outer = pool.reader().unwrap();
    let inner = pool.reader().unwrap();
    drop(outer);
    assert!(matches!(
        pool.transaction(|tx| tx.root_mut().set_count(1)),
        Err(pmem_core::Error::ReadGuardHeld)
    ));
    drop(inner);
    pool.transaction(|tx| tx.root_mut().set_count(1)).unwrap();
}

#[test]
fn a_read_from_a_thread_local_destructor_works() {
    struct ReadOnDrop(Option<Arc<Pool<Root>>>, mpsc::Sender<Option<u64>>);
    impl Drop for ReadOnDrop {
        fn drop(&mut self) {
            let pool = self.0.take().unwrap();
            let count = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                pool.read(|r| r.root().count).unwrap()
            }));
            let _ = self.1.send(count.ok());
        }
    }
    thread_local! {
        static LAST: RefCell<Option<ReadOnDrop>> = const { RefCell::new(None) };
    }
    let pool = Arc::new(Pool::<Root>::builder().create_simulated(SIZE).unwrap());
    pool.transaction(|tx| tx.root_mut().set_count(3)).unwrap();
    let (tx, rx) = mpsc::channel();
    let p = Arc::clone(&pool);
    std::thread::spawn(move || {
        // Ours first, the library's after: thread-locals are destroyed in reverse order of
        // first use, so the library's are gone when ours reads.
        LAST.with(|l| *l.borrow_mut() = Some(ReadOnDrop(Some(Arc::clone(&p)), tx)));
        assert_eq!(p.read(|r| r.root().count).unwrap(), 3);
    })
    .join()
    .unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), Some(3));
    pool.transaction(|tx| tx.root_mut().set_count(4)).unwrap();
}

#[test]
fn dropping_a_pool_after_a_leaked_guard_does_not_hang() {
    within(10, "drop after mem::forget(reader)", || {
        let pool = Pool::<Root>::builder().create_simulated(SIZE).unwrap();
        std::mem::forget(pool.reader().unwrap());
        drop(pool);
    });
}

#[test]
fn a_leaked_guard_of_a_dropped_pool_does_not_affect_a_new_one() {
    within(10, "a new pool after a leaked guard", || {
        for _ in 0..4 {
            let pool = Pool::<Root>::builder().create_simulated(SIZE).unwrap();
            pool.transaction(|tx| tx.root_mut().set_count(1)).unwrap();
            std::mem::forget(pool.reader().unwrap());
            drop(pool);
        }
    });
}

#[test]
fn a_file_pool_dropped_after_a_leaked_guard_reopens() {
    within(10, "file pool after mem::forget(reader)", || {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leak.pool");
        let pool = Pool::<Root>::create(&path, SIZE).unwrap();
        pool.transaction(|tx| tx.root_mut().set_count(9)).unwrap();
        std::mem::forget(pool.reader().unwrap());
        drop(pool);
        let pool = Pool::<Root>::open(&path).unwrap();
        assert_eq!(pool.read(|r| r.root().count).unwrap(), 9);
    });
}

#[test]
fn commit_and_abort_hooks_can_read_the_pool() {
    within(10, "hooks reading the pool", || {
        let pool = Arc::new(Pool::<Root>::builder().create_simulated(SIZE).unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (p, s) = (Arc::clone(&pool), Arc::clone(&seen));
        pool.transaction(|tx| {
            tx.on_commit(move || s.lock().unwrap().push(p.read(|r| r.root().count).unwrap()));
            tx.root_mut().set_count(7)
        })
        .unwrap();
        let (p, s) = (Arc::clone(&pool), Arc::clone(&seen));
        let _ = pool.transaction(|tx| {
            tx.on_abort(move || s.lock().unwrap().push(p.read(|r| r.root().count).unwrap()));
            tx.root_mut().set_count(8)?;
            Err::<(), _>(tx.abort())
        });
        // A hook may even start a transaction of its own.
        let p = Arc::clone(&pool);
        pool.transaction(|tx| {
            tx.on_commit(move || {
                p.transaction(|tx| tx.root_mut().set_count(11)).unwrap();
            });
            tx.root_mut().set_count(10)
        })
        .unwrap();
        assert_eq!(*seen.lock().unwrap(), [7, 7]);
        assert_eq!(pool.read(|r| r.root().count).unwrap(), 11);
    });
}

#[test]
fn abort_hooks_of_a_panicking_transaction_can_read_the_pool() {
    within(10, "abort hook after a panic", || {
        let pool = Arc::new(Pool::<Root>::builder().create_simulated(SIZE).unwrap());
        let seen = Arc::new(Mutex::new(None));
        let (p, s) = (Arc::clone(&pool), Arc::clone(&seen));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.transaction(|tx| -> pmem_core::Result<_> {
                tx.on_abort(move || *s.lock().unwrap() = Some(p.read(|r| r.root().count).unwrap()));
                tx.root_mut().set_count(8)?;
                panic!("in the transaction");
                #[allow(unreachable_code)]
                Ok(())
            })
        }));
        assert!(r.is_err());
        assert_eq!(*seen.lock().unwrap(), Some(0));
    });
}

/// Pool sizes that are not a multiple of 8 (or of a page): created, used, crashed and reopened
/// without a panic.
const ODD: [u64; 3] = [278_529, 1_000_003, (4 << 20) + 4095];

#[test]
fn simulated_pools_of_odd_sizes_work() {
    for size in ODD {
        let pool = Pool::<Root>::builder().create_simulated(size).unwrap();
        pool.transaction(|tx| tx.root_mut().set_count(size))
            .unwrap();
        assert!(check::check(&pool).is_healthy());
        assert_eq!(pool.info().pool_size, size);
    }
}

#[test]
fn crash_tests_of_odd_sizes_work() {
    for size in ODD {
        CrashTest::new(size)
            .run::<Root>(
                |pool| pool.transaction(|tx| tx.root_mut().set_count(1)),
                |pool, _| match pool.read(|r| r.root().count).unwrap() {
                    0 | 1 => Ok(()),
                    n => Err(format!("count {n}")),
                },
            )
            .assert_ok();
    }
}

#[test]
fn file_pools_of_odd_sizes_open_as_images() {
    let dir = tempfile::tempdir().unwrap();
    for size in ODD {
        let path = dir.path().join(format!("odd{size}.pool"));
        let pool = Pool::<Root>::create(&path, size).unwrap();
        pool.transaction(|tx| tx.root_mut().set_count(2)).unwrap();
        drop(pool);
        let image = check::read_pool_file(&path).unwrap();
        assert_eq!(image.len() as u64, size);
        let pool = Pool::<Root>::builder().open_image(image).unwrap();
        assert_eq!(pool.read(|r| r.root().count).unwrap(), 2);
        assert!(check::check_image(check::read_pool_file(&path).unwrap())
            .unwrap()
            .is_healthy());
        drop(pool);
        let pool = Pool::<Root>::open(&path).unwrap();
        assert_eq!(pool.read(|r| r.root().count).unwrap(), 2);
    }
}

/// A commit whose write-back fails has an unknown outcome: neither its commit nor its abort
/// hooks run, the error says so, the pool refuses writes until reopened, and the reopened pool
/// holds one of the two states, healthy.
#[test]
fn a_failed_commit_write_back_poisons_the_pool_until_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eio.pool");
    let plan = FaultPlan::new();
    let pool = Arc::new(
        Pool::<Root>::builder()
            .flush_mode(pmem_core::FlushMode::Msync)
            .fault_plan(plan.clone())
            .create(&path, SIZE)
            .unwrap(),
    );
    pool.transaction(|tx| tx.root_mut().set_count(1)).unwrap();
    // The transaction's one fence, its commit's, fails.
    plan.fail_at(plan.points());
    let hooks = Arc::new(Mutex::new(Vec::new()));
    let (c, a) = (Arc::clone(&hooks), Arc::clone(&hooks));
    let result = pool.transaction(|tx| {
        tx.on_commit(move || c.lock().unwrap().push("commit"));
        tx.on_abort(move || a.lock().unwrap().push("abort"));
        tx.root_mut().set_count(2)
    });
    match result {
        Err(e @ pmem_core::Error::CommitOutcomeUnknown { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("eio.pool") && text.contains("unknown"),
                "{text}"
            );
        }
        other => panic!("expected CommitOutcomeUnknown, got {other:?}"),
    }
    assert_eq!(plan.injected(), 1);
    assert!(hooks.lock().unwrap().is_empty(), "hooks ran: {hooks:?}");
    assert!(matches!(
        pool.transaction(|tx| tx.root_mut().set_count(3)),
        Err(pmem_core::Error::Poisoned { .. })
    ));
    assert!(matches!(
        pool.alloc(Root { count: 0 }),
        Err(pmem_core::Error::Poisoned { .. })
    ));
    // Reads still work, and see the state before the transaction: its writes go into place
    // only once its commit is known to be durable.
    assert_eq!(pool.read(|r| r.root().count).unwrap(), 1);
    drop(Arc::into_inner(pool).unwrap());
    let pool = Pool::<Root>::open(&path).unwrap();
    let count = pool.read(|r| r.root().count).unwrap();
    assert!(count == 1 || count == 2, "count {count}");
    assert!(check::check(&pool).is_healthy());
    pool.transaction(|tx| tx.root_mut().set_count(4)).unwrap();
}

/// A failed write-back of a single-step free is reported as well, not swallowed.
#[test]
fn a_failed_write_back_of_a_direct_free_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eio-free.pool");
    let plan = FaultPlan::new();
    let pool = Pool::<Root>::builder()
        .flush_mode(pmem_core::FlushMode::Msync)
        .fault_plan(plan.clone())
        .create(&path, SIZE)
        .unwrap();
    let p = pool.alloc(Root { count: 5 }).unwrap();
    let _keep = pool.alloc(Root { count: 6 }).unwrap();
    plan.fail_at(plan.points());
    assert!(matches!(
        pool.free(p),
        Err(pmem_core::Error::CommitOutcomeUnknown { .. })
    ));
    assert!(matches!(
        pool.free(p),
        Err(pmem_core::Error::Poisoned { .. })
    ));
}

/// The same plan fails a fence of the simulated domain, with the same outcome.
#[test]
fn a_fault_plan_fails_simulated_fences_as_it_fails_msync() {
    let plan = FaultPlan::new();
    let pool = Pool::<Root>::builder()
        .fault_plan(plan.clone())
        .create_simulated(SIZE)
        .unwrap();
    pool.transaction(|tx| tx.root_mut().set_count(1)).unwrap();
    plan.fail_at(plan.points());
    assert!(matches!(
        pool.transaction(|tx| tx.root_mut().set_count(2)),
        Err(pmem_core::Error::CommitOutcomeUnknown { .. })
    ));
    assert_eq!(plan.injected(), 1);
}

#[test]
fn simulated_pools_too_large_for_memory_are_refused_cleanly() {
    for size in [u64::MAX, u64::MAX - 4095, 1 << 62] {
        match Pool::<Root>::builder().create_simulated(size) {
            Err(
                e @ pmem_core::Error::InvalidArgument {
                    argument: pmem_core::error::InvalidArgument::ImageTooLarge { size: s },
                    ..
                },
            ) => {
                assert_eq!(s, size);
                assert!(e.to_string().contains(&size.to_string()), "{e}")
            }
            other => panic!("size {size}: {other:?}"),
        }
        let report = CrashTest::new(size).run::<Root>(|_| Ok(()), |_, _| Ok(()));
        assert!(!report.is_ok());
    }
}

#[test]
fn file_pools_too_large_for_the_file_system_are_refused_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    for size in [u64::MAX, 1 << 62] {
        let path = dir.path().join("huge.pool");
        let e = Pool::<Root>::create(&path, size).unwrap_err();
        assert!(e.to_string().contains("huge.pool"), "{e}");
        assert!(!path.exists());
    }
}

/// A pool that lives for the rest of the process, for guards kept in thread-locals.
fn leaked_pool() -> &'static Pool<Root> {
    Box::leak(Box::new(
        Pool::<Root>::builder().create_simulated(SIZE).unwrap(),
    ))
}

#[test]
fn guards_dropped_out_of_order_in_a_thread_local_destructor_keep_writers_out() {
    // The guards live in a thread-local destroyed after the library's own thread-locals. The
    // guard that took the lock is dropped first; the other must keep a transaction out.
    struct Holder {
        first: Option<ReadGuard<'static, Root>>,
        second: Option<ReadGuard<'static, Root>>,
        ready: mpsc::Sender<()>,
        committed: mpsc::Receiver<()>,
        report: mpsc::Sender<(u64, u64, bool)>,
    }
    impl Drop for Holder {
        fn drop(&mut self) {
            let second = self.second.take().unwrap();
            let root: &Root = second.root();
            let before = root.count;
            drop(self.first.take());
            self.ready.send(()).unwrap();
            let committed = self
                .committed
                .recv_timeout(Duration::from_millis(500))
                .is_ok();
            // SAFETY: a plain read through a `&Root` of a live guard.
            let after = unsafe { std::ptr::read_volatile(&root.count) };
            self.report.send((before, after, committed)).unwrap();
            drop(second);
        }
    }
    thread_local! {
        static HOLD: RefCell<Option<Holder>> = const { RefCell::new(None) };
    }
    let pool = leaked_pool();
    pool.transaction(|tx| tx.root_mut().set_count(1)).unwrap();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (commit_tx, commit_rx) = mpsc::channel();
    let (report_tx, report_rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Ours first, so that it is destroyed after the library's thread-locals.
        HOLD.with(|h| h.borrow_mut().take());
        let first = pool.reader().unwrap();
        let second = pool.reader().unwrap();
        HOLD.with(|h| {
            *h.borrow_mut() = Some(Holder {
                first: Some(first),
                second: Some(second),
                ready: ready_tx,
                committed: commit_rx,
                report: report_tx,
            })
        });
    });
    ready_rx.recv().unwrap();
    std::thread::spawn(move || {
        pool.transaction(|tx| tx.root_mut().set_count(99)).unwrap();
        let _ = commit_tx.send(());
    });
    let (before, after, committed) = report_rx.recv().unwrap();
    assert!(
        !committed && before == after,
        "a transaction committed under a live guard: the root changed from {before} to {after}"
    );
}

#[test]
fn a_transaction_under_an_own_guard_in_a_thread_local_destructor_is_refused() {
    struct TxOnDrop(&'static Pool<Root>, mpsc::Sender<String>);
    impl Drop for TxOnDrop {
        fn drop(&mut self) {
            let guard = self.0.reader().unwrap();
            let result = self.0.transaction(|tx| tx.root_mut().set_count(5));
            let _ = self.1.send(format!("{result:?}"));
            drop(guard);
        }
    }
    thread_local! {
        static SLOT: RefCell<Option<TxOnDrop>> = const { RefCell::new(None) };
    }
    let pool = leaked_pool();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Ours first, the library's after (see above).
        SLOT.with(|s| *s.borrow_mut() = Some(TxOnDrop(pool, tx)));
        pool.read(|r| r.root().count).unwrap();
    });
    let result = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("a transaction under its own thread's read guard hung");
    assert_eq!(
        result,
        format!("{:?}", Err::<(), _>(pmem_core::Error::ReadGuardHeld))
    );
}

#[test]
fn a_nested_read_in_a_thread_local_destructor_does_not_wait_for_a_queued_writer() {
    struct NestOnDrop(&'static Pool<Root>, mpsc::Sender<()>, mpsc::Sender<u64>);
    impl Drop for NestOnDrop {
        fn drop(&mut self) {
            let outer = self.0.reader().unwrap();
            let _ = self.1.send(());
            let_writer_queue();
            let count = self.0.read(|r| r.root().count).unwrap();
            let _ = self.2.send(count);
            drop(outer);
        }
    }
    thread_local! {
        static SLOT: RefCell<Option<NestOnDrop>> = const { RefCell::new(None) };
    }
    let pool = leaked_pool();
    pool.transaction(|tx| tx.root_mut().set_count(2)).unwrap();
    let (reading_tx, reading_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        SLOT.with(|s| *s.borrow_mut() = Some(NestOnDrop(pool, reading_tx, done_tx)));
        pool.read(|r| r.root().count).unwrap();
    });
    reading_rx.recv().unwrap();
    let writer = std::thread::spawn(move || {
        pool.transaction(|tx| tx.root_mut().set_count(3)).unwrap();
    });
    let count = done_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("a nested read in a thread-local destructor waited for a queued writer");
    assert_eq!(count, 2);
    writer.join().unwrap();
    assert_eq!(pool.read(|r| r.root().count).unwrap(), 3);
}

#[test]
fn guards_on_several_pools_are_released_in_any_order() {
    let pools: Vec<Pool<Root>> = (0..3)
        .map(|_| Pool::<Root>::builder().create_simulated(SIZE).unwrap())
        .collect();
    let guards: Vec<_> = pools
        .iter()
        .map(|p| (p.reader().unwrap(), p.reader().unwrap()))
        .collect();
    let refused = |p: &Pool<Root>| {
        matches!(
            p.transaction(|tx| tx.root_mut().set_count(1)),
            Err(pmem_core::Error::ReadGuardHeld)
        )
    };
    let mut guards: Vec<_> = guards.into_iter().map(Some).collect();
    // The middle pool's, then the first's, then the last's: each pool is free once its own
    // guards are gone, and only then.
    for i in [1, 0, 2] {
        let (a, b) = guards[i].take().unwrap();
        drop(a);
        assert!(
            refused(&pools[i]),
            "pool {i}: a transaction under a live guard"
        );
        drop(b);
        pools[i]
            .transaction(|tx| tx.root_mut().set_count(7))
            .unwrap();
        for (j, g) in guards.iter().enumerate() {
            assert_eq!(g.is_some(), refused(&pools[j]), "pool {j} after pool {i}");
        }
    }
}
