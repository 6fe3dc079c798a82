//! What a transaction promises, checked one promise at a time: rollback on panic, on `Err` and on
//! `abort`; flat nesting; refused re-entry; reads that see the transaction's own writes;
//! allocations and frees that happen only on commit; checked pointers; the fence cost of each
//! kind of transaction; and exclusive writers with shared readers across threads.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use pmem_core::check::check;
use pmem_core::error::PointerRejection;
use pmem_core::{AbortCause, Error, FlushStats, PPtr, PSlice, Persistent, Pool, Tx};

#[derive(Persistent, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Root {
    count: u64,
    head: PPtr<Node>,
    arr: [u64; 8],
    data: PSlice<u64>,
    big: PPtr<Big>,
    counters: [u64; 8],
}

#[derive(Persistent, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Node {
    value: u64,
    next: PPtr<Node>,
}

/// A type laid out like `Node` but distinct from it, for wrong-type pointers.
#[derive(Persistent, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Other {
    a: u64,
    b: u64,
}

/// Larger than the largest run size class: a whole-chunk object.
#[derive(Persistent)]
#[repr(C)]
struct Big {
    words: [u64; 8192],
}

const SIZE: u64 = 8 << 20;

fn simulated() -> Pool<Root> {
    Pool::<Root>::builder()
        .create_simulated(SIZE)
        .expect("create a simulated pool")
}

/// A pool with a 4-node list (values 4, 3, 2, 1 from the head), `arr = [1..=8]`, a 16-element
/// slice of 7s, a `Big` with every word 3, and count 10.
fn populated() -> Pool<Root> {
    let pool = simulated();
    pool.transaction(|tx| {
        for value in 1..=4 {
            let next = tx.root().head;
            let node = tx.alloc(Node { value, next })?;
            tx.root_mut().set_head(node)?;
        }
        tx.root_mut().set_arr([1, 2, 3, 4, 5, 6, 7, 8])?;
        let data = tx.alloc_slice(&[7u64; 16])?;
        tx.root_mut().set_data(data)?;
        let big = tx.alloc_zeroed::<Big>()?;
        tx.get_mut(big)?.words.fill(3);
        tx.root_mut().set_big(big)?;
        tx.root_mut().set_count(10)
    })
    .expect("populate the pool");
    pool
}

/// Everything observable about the pool's contents and heap.
#[derive(Debug, PartialEq)]
struct State {
    root: Root,
    list: Vec<(PPtr<Node>, Node)>,
    data: Vec<u64>,
    big_sum: u64,
    nodes: Vec<PPtr<Node>>,
    bigs: Vec<PPtr<Big>>,
    live_objects: u64,
    allocated_bytes: u64,
}

fn state(pool: &Pool<Root>) -> State {
    let heap = pool.stats().heap;
    pool.read(|r| {
        let root = *r.root();
        let mut list = Vec::new();
        let mut p = root.head;
        while !p.is_null() {
            let node = *r.get(p).expect("list node");
            list.push((p, node));
            p = node.next;
            assert!(list.len() < 100_000, "cycle in the list");
        }
        let data = if root.data.is_null() {
            Vec::new()
        } else {
            r.get_slice(root.data).expect("root slice").to_vec()
        };
        let big_sum = if root.big.is_null() {
            0
        } else {
            r.get(root.big).expect("big").words.iter().sum()
        };
        State {
            root,
            list,
            data,
            big_sum,
            nodes: r.objects::<Node>().collect(),
            bigs: r.objects::<Big>().collect(),
            live_objects: heap.live_objects,
            allocated_bytes: heap.allocated_bytes,
        }
    })
    .unwrap()
}

fn assert_healthy(pool: &Pool<Root>) {
    let report = check(pool);
    assert!(report.is_healthy(), "{report}");
    assert!(report.unreachable.is_empty(), "{report}");
}

/// Hooks that record that they ran, in order.
#[derive(Clone, Default)]
struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    fn hook(&self, name: &str) -> impl FnOnce() + 'static {
        let log = self.0.clone();
        let name = name.to_string();
        move || log.borrow_mut().push(name)
    }
    fn entries(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
}

/// Changes every kind of thing a transaction can change: root fields and array elements by
/// setter, an object by `get_mut`, an object by `write`, a slice by `get_slice_mut`, a chunk
/// object by `edit`, new objects linked in, an existing node unlinked and freed, the slice
/// replaced and freed. Registers a commit and an abort hook.
fn change_everything(tx: &mut Tx<'_, Root>, hooks: &Log) -> pmem_core::Result<()> {
    tx.on_commit(hooks.hook("commit"));
    tx.on_abort(hooks.hook("abort"));
    tx.root_mut().set_count(999)?;
    tx.root_mut().arr_mut().set_at(3, 777)?;
    let head = tx.root().head;
    tx.get_mut(head)?.value += 100;
    let second = tx.get(head)?.next;
    let third = tx.get(second)?.next;
    let fourth = tx.get(third)?.next;
    tx.write(
        second,
        Node {
            value: 5555,
            next: fourth,
        },
    )?;
    tx.free(third)?;
    let data = tx.root().data;
    tx.get_slice_mut(data)?.fill(42);
    let big = tx.root().big;
    tx.edit(big)?.words_mut().set_at(17, 1_000_000)?;
    tx.get_mut(big)?.words[100] = 77;
    for value in 100..105 {
        let next = tx.root().head;
        let node = tx.alloc(Node { value, next })?;
        tx.root_mut().set_head(node)?;
    }
    let replacement = tx.alloc_slice(&[9u64; 16])?;
    tx.root_mut().set_data(replacement)?;
    tx.free_slice(data)?;
    let extra_big = tx.alloc_zeroed::<Big>()?;
    tx.edit(extra_big)?.words_mut().set_at(0, 1)?;
    tx.free(extra_big)?;
    // Left unreachable if this commits.
    tx.alloc_zeroed::<Big>()?;
    // Every change is visible to the transaction itself.
    assert_eq!(tx.root().count, 999);
    assert_eq!(tx.root().arr[3], 777);
    assert_eq!(tx.get(second)?.value, 5555);
    assert_eq!(tx.get_slice(replacement)?, &[9u64; 16]);
    Ok(())
}

#[test]
fn panic_rolls_back_everything_and_the_pool_stays_usable() {
    let pool = populated();
    let before = state(&pool);
    let fences_before = pool.stats().flush;
    let hooks = Log::default();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        pool.transaction(|tx| -> pmem_core::Result<_> {
            change_everything(tx, &hooks)?;
            panic!("boom inside the transaction");
            #[allow(unreachable_code)]
            Ok(())
        })
    }));
    let payload = outcome.expect_err("the panic propagates out of the transaction");
    assert_eq!(
        payload.downcast_ref::<&str>().copied(),
        Some("boom inside the transaction")
    );
    assert_eq!(state(&pool), before, "a panic must roll back every change");
    assert_eq!(
        hooks.entries(),
        ["abort"],
        "abort hooks run, commit hooks do not"
    );
    // Nothing reached the pool or its log: the writes waited in the write set.
    assert_eq!(pool.stats().flush.since(&fences_before).fences, 0);
    assert_healthy(&pool);

    // The pool (and its lock, which the panic went through) still works, for writers and readers.
    pool.transaction(|tx| tx.root_mut().set_count(11)).unwrap();
    assert_eq!(pool.read(|r| r.root().count).unwrap(), 11);
    let node = pool
        .alloc(Node {
            value: 1,
            next: PPtr::null(),
        })
        .unwrap();
    pool.free(node).unwrap();
    assert_healthy(&pool);
}

#[test]
fn err_rolls_back_everything() {
    let pool = populated();
    let before = state(&pool);
    let hooks = Log::default();
    let result: pmem_core::Result<()> = pool.transaction(|tx| {
        change_everything(tx, &hooks)?;
        // Any error will do; this one carries values to compare.
        Err(Error::OutOfSpace {
            requested: 12345,
            available: 678,
        })
    });
    match result {
        Err(Error::OutOfSpace {
            requested,
            available,
        }) => assert_eq!((requested, available), (12345, 678)),
        other => panic!("expected the closure's own error back, got {other:?}"),
    }
    assert_eq!(state(&pool), before);
    assert_eq!(hooks.entries(), ["abort"]);
    assert_healthy(&pool);
}

#[test]
fn abort_returns_aborted_and_rolls_back() {
    let pool = populated();
    let before = state(&pool);
    let hooks = Log::default();
    let result: pmem_core::Result<u64> = pool.transaction(|tx| {
        change_everything(tx, &hooks)?;
        Err(tx.abort())
    });
    match result {
        Err(Error::Aborted {
            cause: AbortCause::Requested,
        }) => {}
        other => panic!("expected Aborted, got {other:?}"),
    }
    assert_eq!(state(&pool), before);
    assert_eq!(hooks.entries(), ["abort"]);

    // `abort` dooms the transaction even if the closure goes on and returns `Ok`.
    let result = pool.transaction(|tx| {
        change_everything(tx, &hooks)?;
        let _ = tx.abort();
        Ok(5)
    });
    match result {
        Err(Error::Aborted {
            cause: AbortCause::Requested,
        }) => {}
        other => panic!("expected Aborted, got {other:?}"),
    }
    assert_eq!(state(&pool), before);
    assert_healthy(&pool);
}

#[test]
fn committed_changes_are_all_there_and_hooks_run_in_order() {
    let pool = populated();
    let before = state(&pool);
    let hooks = Log::default();
    let ran_inside = Rc::new(Cell::new(false));
    pool.transaction(|tx| -> pmem_core::Result<_> {
        let flag = ran_inside.clone();
        tx.on_commit(hooks.hook("first"));
        tx.on_commit(hooks.hook("second"));
        tx.on_commit(move || flag.set(true));
        change_everything(tx, &hooks)?;
        tx.on_commit(hooks.hook("last"));
        // Not yet: hooks run after the commit.
        assert!(hooks.entries().is_empty());
        Ok(())
    })
    .unwrap();
    assert_eq!(hooks.entries(), ["first", "second", "commit", "last"]);
    assert!(ran_inside.get());

    let after = state(&pool);
    assert_eq!(after.root.count, 999);
    assert_eq!(after.root.arr, [1, 2, 3, 777, 5, 6, 7, 8]);
    let values: Vec<u64> = after.list.iter().map(|(_, n)| n.value).collect();
    assert_eq!(values, [104, 103, 102, 101, 100, 104, 5555, 1]);
    assert_eq!(after.data, [9; 16]);
    assert_eq!(after.big_sum, 3 * 8192 - 3 - 3 + 1_000_000 + 77);
    // +5 nodes -1 node, slice replaced, one Big allocated and freed, one Big left unreachable.
    assert_eq!(after.nodes.len(), before.nodes.len() + 4);
    assert_eq!(after.bigs.len(), 2);
    assert_eq!(after.live_objects, before.live_objects + 4 + 1);
    let report = check(&pool);
    assert!(report.is_healthy(), "{report}");
    assert_eq!(
        report.unreachable.len(),
        1,
        "the Big nobody links: {report}"
    );
}

#[test]
fn nested_ok_commits_with_the_outer() {
    let pool = populated();
    let hooks = Log::default();
    let value = pool
        .transaction(|tx| -> pmem_core::Result<_> {
            tx.root_mut().set_count(20)?;
            let inner = tx.transaction(|tx| -> pmem_core::Result<_> {
                tx.on_commit(hooks.hook("inner commit"));
                tx.root_mut().arr_mut().set_at(0, 100)?;
                let next = tx.root().head;
                let node = tx.alloc(Node { value: 50, next })?;
                tx.root_mut().set_head(node)?;
                // The inner transaction sees the outer's writes.
                Ok(tx.root().count + 1)
            })?;
            // And the outer sees the inner's.
            assert_eq!(tx.root().arr[0], 100);
            tx.on_commit(hooks.hook("outer commit"));
            Ok(inner)
        })
        .unwrap();
    assert_eq!(value, 21);
    assert_eq!(hooks.entries(), ["inner commit", "outer commit"]);
    let s = state(&pool);
    assert_eq!(s.root.count, 20);
    assert_eq!(s.root.arr[0], 100);
    assert_eq!(s.list[0].1.value, 50);
    assert_healthy(&pool);
}

#[test]
fn nested_err_aborts_the_outer_even_if_swallowed() {
    let pool = populated();
    let before = state(&pool);
    let hooks = Log::default();
    let result = pool.transaction(|tx| {
        change_everything(tx, &hooks)?;
        let inner: pmem_core::Result<()> = tx.transaction(|tx| {
            tx.root_mut().set_count(12345)?;
            let _ = tx.alloc(Node {
                value: 1,
                next: PPtr::null(),
            })?;
            Err(Error::OutOfSpace {
                requested: 4242,
                available: 0,
            })
        });
        assert!(matches!(
            inner,
            Err(Error::OutOfSpace {
                requested: 4242,
                ..
            })
        ));
        // The outer closure ignores the failure and goes on.
        tx.root_mut().set_count(54321)?;
        Ok("outer says ok")
    });
    match result {
        Err(Error::Aborted {
            cause: AbortCause::NestedFailed,
        }) => {}
        other => panic!("expected Aborted, got {other:?}"),
    }
    assert_eq!(state(&pool), before, "nothing of either level may remain");
    assert_eq!(hooks.entries(), ["abort"]);

    // With an explicit abort inside, the cause is the abort.
    let result = pool.transaction(|tx| {
        tx.root_mut().set_count(1)?;
        let _ = tx.transaction(|tx| -> pmem_core::Result<()> { Err(tx.abort()) });
        Ok(())
    });
    match result {
        Err(Error::Aborted {
            cause: AbortCause::Requested,
        }) => {}
        other => panic!("expected Aborted, got {other:?}"),
    }
    assert_eq!(state(&pool), before);

    // A failure doom lasts for that transaction only: the next one commits.
    pool.transaction(|tx| tx.root_mut().set_count(2)).unwrap();
    assert_eq!(pool.read(|r| r.root().count).unwrap(), 2);
    assert_healthy(&pool);
}

#[test]
fn nested_panic_rolls_back_all() {
    let pool = populated();
    let before = state(&pool);
    let hooks = Log::default();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        pool.transaction(|tx| {
            change_everything(tx, &hooks)?;
            tx.transaction(|tx| -> pmem_core::Result<()> {
                tx.root_mut().set_count(7)?;
                panic!("boom in the nested transaction")
            })
        })
    }));
    assert!(outcome.is_err());
    assert_eq!(state(&pool), before);
    assert_eq!(hooks.entries(), ["abort"]);
    assert_healthy(&pool);
    pool.transaction(|tx| tx.root_mut().set_count(3)).unwrap();
    assert_eq!(pool.read(|r| r.root().count).unwrap(), 3);
}

/// A panic in a nested transaction is a failure of that transaction, like an `Err`: it must doom
/// the outer one even if the outer closure catches the panic and returns `Ok`, or the half-done
/// writes of the nested closure would commit.
#[test]
fn nested_panic_caught_by_the_outer_closure_still_aborts() {
    let pool = populated();
    let before = state(&pool);
    let result = pool.transaction(|tx| {
        let caught = catch_unwind(AssertUnwindSafe(|| {
            tx.transaction(|tx| -> pmem_core::Result<()> {
                tx.root_mut().set_count(7)?;
                panic!("boom in the nested transaction")
            })
        }));
        assert!(caught.is_err());
        Ok(())
    });
    assert!(
        matches!(
            result,
            Err(Error::Aborted {
                cause: AbortCause::NestedPanicked
            })
        ),
        "the outer transaction committed after its nested transaction panicked: {result:?}, \
         count is now {}",
        pool.read(|r| r.root().count).unwrap()
    );
    assert_eq!(state(&pool), before);
}

#[test]
fn pool_transaction_inside_a_transaction_is_refused() {
    let pool = populated();
    let result = pool.transaction(|tx| -> pmem_core::Result<_> {
        tx.root_mut().set_count(77)?;
        let nested = pool.transaction(|tx| tx.root_mut().set_count(88));
        assert!(
            matches!(nested, Err(Error::NestedTransaction)),
            "got {nested:?}"
        );
        let msg = nested.unwrap_err().to_string();
        assert!(msg.contains("Tx::transaction"), "{msg}");
        // The one-step operations are transactions too.
        let alloc = pool.alloc(Node {
            value: 1,
            next: PPtr::null(),
        });
        assert!(matches!(alloc, Err(Error::NestedTransaction)), "{alloc:?}");
        let head = tx.root().head;
        assert!(matches!(pool.free(head), Err(Error::NestedTransaction)));
        // The refusal does not doom the transaction: it is an error like any other.
        Ok(tx.root().count)
    });
    assert_eq!(result.unwrap(), 77);
    assert_eq!(pool.read(|r| r.root().count).unwrap(), 77);
    assert_healthy(&pool);
}

/// The reverse of the case above: a thread that holds a read guard (or is inside `Pool::read`)
/// and starts a transaction on the same pool waits for itself. Like the nested transaction, it
/// must be refused (an error or a clear panic), not hang.
#[test]
fn transaction_while_reading_on_the_same_thread_does_not_deadlock() {
    let (send, outcome) = std::sync::mpsc::channel();
    // A thread of its own, so a hang fails this test instead of hanging the suite.
    std::thread::spawn(move || {
        let pool = populated();
        let result = catch_unwind(AssertUnwindSafe(|| {
            let guard = pool.reader().unwrap();
            let count = guard.root().count;
            let r = pool.transaction(|tx| tx.root_mut().set_count(count + 1));
            drop(guard);
            r
        }));
        let _ = send.send(match result {
            Ok(r) => format!("returned {r:?}"),
            Err(p) => format!("panicked: {}", panic_message(&*p)),
        });
    });
    match outcome.recv_timeout(std::time::Duration::from_secs(3)) {
        Ok(what) => {
            println!("transaction while holding a reader: {what}");
            assert!(!what.starts_with("returned Ok"), "{what}");
        }
        Err(_) => panic!(
            "Pool::transaction called while the same thread holds a ReadGuard of the pool did not \
             return within 3 s: it waits for its own read lock"
        ),
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// The reverse mistake of a transaction inside a read: a read inside a transaction on the same
/// pool and thread. Taking the read lock would wait for the thread's own write lock, and a
/// reference it handed out would see the transaction's next write; it is refused with
/// `Error::ReadInTransaction`, as `ReadGuardHeld` refuses the reverse, and the transaction goes
/// on and commits.
#[test]
fn pool_read_inside_a_transaction_returns_an_error() {
    let (send, outcome) = std::sync::mpsc::channel();
    // A thread of its own, so a hang fails this test instead of hanging the suite.
    std::thread::spawn(move || {
        let pool = populated();
        let other = populated();
        let result = catch_unwind(AssertUnwindSafe(|| {
            pool.transaction(|tx| -> pmem_core::Result<_> {
                tx.root_mut().set_count(5)?;
                let read = pool.read(|r| r.root().count);
                let reader = pool.reader().map(|g| g.root().count);
                // In a nested transaction too (its closure returns `Ok`, or the transaction
                // would abort).
                let nested = tx.transaction(|_| Ok::<_, Error>(pool.read(|r| r.root().count)))?;
                // Another pool's read is not affected.
                let elsewhere = other.read(|r| r.root().count);
                Ok((read, reader, nested, elsewhere))
            })
        }));
        let _ = send.send(result.map_err(|p| panic_message(&*p)));
    });
    let result = outcome
        .recv_timeout(std::time::Duration::from_secs(3))
        .expect("Pool::read inside a transaction on the same pool did not return within 3 s");
    let (read, reader, nested, elsewhere) = match result {
        Ok(Ok(reads)) => reads,
        Ok(Err(e)) => panic!("the transaction failed: {e}"),
        Err(p) => panic!("Pool::read inside a transaction panicked: {p}"),
    };
    assert!(matches!(read, Err(Error::ReadInTransaction)), "{read:?}");
    assert!(
        matches!(reader, Err(Error::ReadInTransaction)),
        "{reader:?}"
    );
    assert!(
        matches!(nested, Err(Error::ReadInTransaction)),
        "{nested:?}"
    );
    assert_eq!(elsewhere.unwrap(), 10);
    let msg = Error::ReadInTransaction.to_string();
    assert!(
        msg.contains("transaction open") && msg.contains("read through the transaction"),
        "{msg}"
    );
}

/// `check::check` returns a report, not a `Result`: inside a transaction on the same pool and
/// thread, where it would report the transaction's uncommitted changes as damage, it panics with
/// the read's error, and the transaction rolls back.
#[test]
fn check_inside_a_transaction_panics_with_the_reads_error() {
    let pool = populated();
    let before = state(&pool);
    let caught = catch_unwind(AssertUnwindSafe(|| {
        pool.transaction(|tx| -> pmem_core::Result<()> {
            tx.root_mut().set_count(5)?;
            check(&pool);
            Ok(())
        })
    }));
    let msg = panic_message(&*caught.expect_err("check inside a transaction must panic"));
    assert!(msg.contains(&Error::ReadInTransaction.to_string()), "{msg}");
    assert_eq!(state(&pool), before);
    assert_healthy(&pool);
}

/// After the refused read, the transaction commits as if it had not been tried.
#[test]
fn a_transaction_commits_after_a_refused_read() {
    let pool = populated();
    pool.transaction(|tx| {
        tx.root_mut().set_count(5)?;
        assert!(pool.read(|r| r.root().count).is_err());
        tx.root_mut().set_count(6)
    })
    .unwrap();
    assert_eq!(pool.read(|r| r.root().count).unwrap(), 6);
    assert_healthy(&pool);
}

#[test]
fn reads_inside_a_transaction_see_its_own_writes() {
    let pool = populated();
    pool.transaction(|tx| {
        tx.root_mut().set_count(31)?;
        assert_eq!(tx.root().count, 31);
        assert_eq!(tx.root_mut().get().count, 31);
        tx.root_mut().arr_mut().set_at(7, 70)?;
        assert_eq!(tx.root().arr[7], 70);
        assert_eq!(*tx.root_mut().arr_mut().at(7).get(), 70);

        let head = tx.root().head;
        tx.get_mut(head)?.value = 400;
        assert_eq!(tx.get(head)?.value, 400);
        tx.edit(head)?.set_value(401)?;
        assert_eq!(tx.get(head)?.value, 401);
        assert_eq!(tx.edit(head)?.get().value, 401);
        let next = tx.get(head)?.next;
        tx.write(
            next,
            Node {
                value: 300,
                next: PPtr::null(),
            },
        )?;
        assert_eq!(
            *tx.get(next)?,
            Node {
                value: 300,
                next: PPtr::null()
            }
        );

        let fresh = tx.alloc(Node {
            value: 9,
            next: head,
        })?;
        assert_eq!(
            *tx.get(fresh)?,
            Node {
                value: 9,
                next: head
            }
        );
        tx.edit(fresh)?.set_value(10)?;
        assert_eq!(tx.get(fresh)?.value, 10);
        let zeroed = tx.alloc_zeroed::<Node>()?;
        assert_eq!(
            *tx.get(zeroed)?,
            Node {
                value: 0,
                next: PPtr::null()
            }
        );
        let slice = tx.alloc_slice(&[1u64, 2, 3])?;
        assert_eq!(tx.get_slice(slice)?, &[1, 2, 3]);
        tx.get_slice_mut(slice)?[1] = 20;
        assert_eq!(tx.get_slice(slice)?, &[1, 20, 3]);
        let zs = tx.alloc_slice_zeroed::<u64>(5)?;
        assert_eq!(tx.get_slice(zs)?, &[0; 5]);

        // Nested transactions see the same.
        tx.transaction(|tx| -> pmem_core::Result<_> {
            assert_eq!(tx.get(fresh)?.value, 10);
            assert_eq!(tx.root().count, 31);
            Ok(())
        })?;
        Err::<(), _>(tx.abort())
    })
    .unwrap_err();
    assert_healthy(&pool);
}

#[test]
fn allocations_exist_only_if_committed() {
    let pool = populated();
    let before = state(&pool);
    let mut leaked = (
        PPtr::<Node>::null(),
        PPtr::<Big>::null(),
        PPtr::<Other>::null(),
    );
    let _ = pool.transaction(|tx| {
        leaked.0 = tx.alloc(Node {
            value: 1,
            next: PPtr::null(),
        })?;
        leaked.1 = tx.alloc_zeroed::<Big>()?;
        leaked.2 = tx.alloc(Other { a: 1, b: 2 })?;
        assert!(tx.get(leaked.2).is_ok());
        Err::<(), _>(tx.abort())
    });
    assert_eq!(state(&pool), before);
    pool.read(|r| {
        assert!(!r.objects::<Node>().any(|p| p == leaked.0));
        assert_eq!(r.objects::<Other>().count(), 0);
        // Objects whose run or chunks went away with the abort are no objects at all.
        assert!(
            matches!(r.get(leaked.1), Err(Error::InvalidPointer { .. })),
            "{:?}",
            r.get(leaked.1).map(|_| ())
        );
        assert!(matches!(r.get(leaked.2), Err(Error::InvalidPointer { .. })));
    })
    .unwrap();
    // After a commit they are there.
    let p = pool
        .transaction(|tx| tx.alloc(Other { a: 5, b: 6 }))
        .unwrap();
    pool.read(|r| {
        assert_eq!(r.objects::<Other>().collect::<Vec<_>>(), [p]);
        assert_eq!(*r.get(p).unwrap(), Other { a: 5, b: 6 });
    })
    .unwrap();
    assert_eq!(pool.stats().heap.live_objects, before.live_objects + 1);
}

#[test]
fn frees_happen_only_if_committed() {
    let pool = populated();
    let before = state(&pool);
    let head = before.root.head;
    let big = before.root.big;
    let _ = pool.transaction(|tx| -> pmem_core::Result<()> {
        let next = tx.get(head)?.next;
        tx.root_mut().set_head(next)?;
        tx.free(head)?;
        tx.root_mut().set_big(PPtr::null())?;
        tx.free(big)?;
        Err(tx.abort())
    });
    assert_eq!(state(&pool), before);
    pool.read(|r| {
        assert_eq!(
            r.get(head).unwrap().value,
            4,
            "still readable after the abort"
        );
        assert_eq!(r.get(big).unwrap().words[0], 3);
    })
    .unwrap();

    pool.transaction(|tx| {
        let next = tx.get(head)?.next;
        tx.root_mut().set_head(next)?;
        tx.free(head)?;
        tx.root_mut().set_big(PPtr::null())?;
        tx.free(big)
    })
    .unwrap();
    let after = state(&pool);
    assert!(!after.nodes.contains(&head), "freed node still listed");
    assert!(after.bigs.is_empty());
    assert_eq!(after.live_objects, before.live_objects - 2);
    pool.read(|r| {
        // A freed chunk object is no object at all.
        assert!(matches!(r.get(big), Err(Error::InvalidPointer { .. })));
    })
    .unwrap();
    // Freeing it again is an error, not a corruption.
    assert!(matches!(pool.free(head), Err(Error::InvalidPointer { .. })));
    assert!(matches!(pool.free(big), Err(Error::InvalidPointer { .. })));
    let again = pool.transaction(|tx| tx.free(head));
    assert!(
        matches!(again, Err(Error::InvalidPointer { .. })),
        "{again:?}"
    );
    assert_eq!(state(&pool), after);
    assert_healthy(&pool);
}

#[test]
fn double_free_in_one_transaction_is_an_error() {
    let pool = populated();
    let before = state(&pool);
    let head = before.root.head;
    let data = before.root.data;
    pool.transaction(|tx| -> pmem_core::Result<_> {
        let next = tx.get(head)?.next;
        tx.root_mut().set_head(next)?;
        tx.free(head)?;
        let second = tx.free(head);
        assert!(
            matches!(second, Err(Error::InvalidPointer { .. })),
            "{second:?}"
        );
        tx.root_mut().set_data(PSlice::null())?;
        tx.free_slice(data)?;
        assert!(matches!(
            tx.free_slice(data),
            Err(Error::InvalidPointer { .. })
        ));
        // Through another type: still the same object, still refused.
        assert!(matches!(
            tx.free(head.cast::<Other>()),
            Err(Error::InvalidPointer { .. })
        ));
        Ok(())
    })
    .unwrap();
    let after = state(&pool);
    assert_eq!(
        after.live_objects,
        before.live_objects - 2,
        "freed once each"
    );
    assert!(!after.nodes.contains(&head));
    assert_healthy(&pool);
}

#[test]
fn freeing_what_the_same_transaction_allocated() {
    let pool = populated();
    let before = state(&pool);
    // Committed: allocated and freed, so never there.
    pool.transaction(|tx| {
        let a = tx.alloc(Node {
            value: 1,
            next: PPtr::null(),
        })?;
        let b = tx.alloc_zeroed::<Big>()?;
        let s = tx.alloc_slice(&[1u64; 16])?;
        tx.edit(a)?.set_value(2)?;
        tx.free(a)?;
        tx.free(b)?;
        tx.free_slice(s)?;
        assert!(matches!(tx.free(a), Err(Error::InvalidPointer { .. })));
        // A fresh object can be freed only as what it is.
        let c = tx.alloc(Other { a: 0, b: 0 })?;
        assert!(matches!(
            tx.free(c.cast::<Node>()),
            Err(Error::InvalidPointer { .. })
        ));
        tx.free(c)
    })
    .unwrap();
    assert_eq!(state(&pool), before);
    // Aborted: the same.
    let _ = pool.transaction(|tx| -> pmem_core::Result<()> {
        let a = tx.alloc(Node {
            value: 1,
            next: PPtr::null(),
        })?;
        tx.free(a)?;
        Err(tx.abort())
    });
    assert_eq!(state(&pool), before);
    // Space freed that way is reusable.
    for _ in 0..3 {
        pool.transaction(|tx| {
            let b = tx.alloc_zeroed::<Big>()?;
            tx.free(b)
        })
        .unwrap();
    }
    assert_eq!(state(&pool), before);
    assert_healthy(&pool);
}

#[test]
fn get_mut_many_refuses_duplicates_and_logs_with_one_fence() {
    let pool = populated();
    let list: Vec<PPtr<Node>> = state(&pool).list.iter().map(|(p, _)| *p).collect();
    let dup = pool.transaction(|tx| {
        tx.get_mut_many([list[0], list[1], list[0]])?;
        Ok(())
    });
    match dup {
        Err(Error::InvalidPointer { reason, offset }) => {
            assert_eq!(offset, list[0].offset());
            assert_eq!(reason, PointerRejection::Duplicate);
        }
        other => panic!("expected InvalidPointer, got {other:?}"),
    }

    let start = pool.stats().flush;
    pool.transaction(|tx| -> pmem_core::Result<_> {
        let before = pool.stats().flush;
        let [a, b, c, d] = tx.get_mut_many([list[0], list[1], list[2], list[3]])?;
        let logged = pool.stats().flush.since(&before);
        assert_eq!(
            logged.fences, 0,
            "writes wait in the write set: no fence until commit"
        );
        a.value += 1;
        b.value += 1;
        c.value += 1;
        d.value += 1;
        // Logged already: more writes to them cost nothing.
        let before = pool.stats().flush;
        let [a, b] = tx.get_mut_many([list[0], list[1]])?;
        a.value += 1;
        b.value += 1;
        tx.edit(list[2])?.set_value(1000)?;
        assert_eq!(pool.stats().flush.since(&before).fences, 0);
        Ok(())
    })
    .unwrap();
    let cost = pool.stats().flush.since(&start);
    println!("get_mut_many of 4 objects: {cost:?}");
    assert_eq!(cost.fences, 1);
    let values: Vec<u64> = state(&pool).list.iter().map(|(_, n)| n.value).collect();
    assert_eq!(values, [6, 5, 1000, 2]);
}

/// Measures `f` in fences and prints it.
fn cost(pool: &Pool<Root>, what: &str, f: impl FnOnce(&Pool<Root>)) -> FlushStats {
    let before = pool.stats().flush;
    f(pool);
    let cost = pool.stats().flush.since(&before);
    println!(
        "{what:<55} {:>3} fences {:>4} lines flushed",
        cost.fences, cost.lines_flushed
    );
    cost
}

fn fence_costs(pool: &Pool<Root>) {
    // Warm up: the first transactions of a pool set up runs and log slots.
    for _ in 0..4 {
        pool.transaction(|tx| {
            let c = tx.root().count;
            tx.root_mut().set_count(c + 1)
        })
        .unwrap();
    }
    let nodes: Vec<PPtr<Node>> = (0..16)
        .map(|value| {
            pool.alloc(Node {
                value,
                next: PPtr::null(),
            })
            .unwrap()
        })
        .collect();

    let c = cost(pool, "one setter (single range)", |pool| {
        pool.transaction(|tx| {
            let c = tx.root().count;
            tx.root_mut().set_count(c + 1)
        })
        .unwrap()
    });
    assert_eq!(c.fences, 1);

    let c = cost(pool, "one setter written 10 times (same range)", |pool| {
        pool.transaction(|tx| -> pmem_core::Result<_> {
            for i in 0..10 {
                tx.root_mut().set_count(i)?;
            }
            Ok(())
        })
        .unwrap()
    });
    assert_eq!(c.fences, 1);

    for k in [1usize, 2, 5, 16] {
        let c = cost(pool, &format!("{k} setters on {k} objects"), |pool| {
            pool.transaction(|tx| -> pmem_core::Result<_> {
                for &n in &nodes[..k] {
                    let v = tx.get(n)?.value;
                    tx.edit(n)?.set_value(v + 1)?;
                }
                Ok(())
            })
            .unwrap()
        });
        assert_eq!(c.fences, 1, "{k} ranges cost {c:?}");
    }

    let c = cost(pool, "8 array elements by set_at", |pool| {
        pool.transaction(|tx| -> pmem_core::Result<_> {
            for i in 0..8 {
                tx.root_mut().arr_mut().set_at(i, i as u64)?;
            }
            Ok(())
        })
        .unwrap()
    });
    assert_eq!(c.fences, 1);

    let c = cost(pool, "whole root by get_mut, 20 fields written", |pool| {
        pool.transaction(|tx| -> pmem_core::Result<_> {
            let root = tx.root_mut().get_mut()?;
            root.count += 1;
            root.arr = [9; 8];
            root.counters = [1; 8];
            Ok(())
        })
        .unwrap()
    });
    assert_eq!(c.fences, 1);

    let c = cost(pool, "whole object by tx.get_mut", |pool| {
        pool.transaction(|tx| -> pmem_core::Result<_> {
            let n = tx.get_mut(nodes[0])?;
            n.value += 1;
            n.next = nodes[1];
            Ok(())
        })
        .unwrap()
    });
    assert_eq!(c.fences, 1);

    let c = cost(pool, "whole object by tx.write", |pool| {
        pool.transaction(|tx| {
            tx.write(
                nodes[0],
                Node {
                    value: 1,
                    next: PPtr::null(),
                },
            )
        })
        .unwrap()
    });
    assert_eq!(c.fences, 1);

    let c = cost(pool, "get_mut_many batch of 8 objects", |pool| {
        pool.transaction(|tx| -> pmem_core::Result<_> {
            let batch: [PPtr<Node>; 8] = nodes[..8].try_into().unwrap();
            for n in tx.get_mut_many(batch)? {
                n.value += 1;
            }
            Ok(())
        })
        .unwrap()
    });
    assert_eq!(c.fences, 1);

    let c = cost(pool, "read-only transaction", |pool| {
        let sum = pool
            .transaction(|tx| -> pmem_core::Result<_> {
                let mut sum = tx.root().count;
                for &n in &nodes {
                    sum += tx.get(n)?.value;
                }
                Ok(sum)
            })
            .unwrap();
        assert!(sum > 0);
    });
    assert_eq!(c.fences, 0);

    let c = cost(pool, "transaction that aborts before writing", |pool| {
        let _ = pool.transaction(|tx| -> pmem_core::Result<()> { Err(tx.abort()) });
    });
    assert_eq!(c.fences, 0);

    let c = cost(pool, "pool.read", |pool| {
        pool.read(|r| r.root().count).unwrap();
    });
    assert_eq!(c.fences, 0);

    let mut fresh = PPtr::null();
    let c = cost(pool, "atomic pool.alloc", |pool| {
        fresh = pool
            .alloc(Node {
                value: 1,
                next: PPtr::null(),
            })
            .unwrap();
    });
    assert_eq!(c.fences, 1);

    let c = cost(pool, "atomic pool.free", |pool| pool.free(fresh).unwrap());
    assert_eq!(c.fences, 1);

    let c = cost(
        pool,
        "alloc + setters on the fresh object (no undo)",
        |pool| {
            pool.transaction(|tx| {
                let p = tx.alloc_zeroed::<Node>()?;
                tx.edit(p)?.set_value(5)?;
                tx.edit(p)?.set_next(nodes[0])?;
                tx.free(p)
            })
            .unwrap()
        },
    );
    assert_eq!(c.fences, 1);

    let c = cost(pool, "pool.alloc_into (alloc + publish in root)", |pool| {
        pool.alloc_into(
            Node {
                value: 1,
                next: PPtr::null(),
            },
            |tx, p| tx.root_mut().set_head(p),
        )
        .unwrap();
    });
    assert_eq!(c.fences, 1);

    let c = cost(pool, "aborted single-setter transaction", |pool| {
        let _ = pool.transaction(|tx| -> pmem_core::Result<()> {
            tx.root_mut().set_count(0)?;
            Err(tx.abort())
        });
    });
    println!("  (abort: the write set is dropped, nothing reached the pool or the log)");
    assert_eq!(c.fences, 0);
}

#[test]
fn fence_counts_simulated() {
    let pool = populated();
    fence_costs(&pool);
    assert!(check(&pool).is_healthy());
}

#[test]
fn fence_counts_cache_flush_file() {
    let dir = pmem_tests::shm_tempdir("pmem-tx-");
    let pool = Pool::<Root>::builder()
        .force_pmem(true)
        .create(dir.path().join("fences.pool"), SIZE)
        .unwrap();
    println!("flush mode: {}", pool.info().flush_mode);
    fence_costs(&pool);
    assert!(check(&pool).is_healthy());
}

/// Every way a pointer can be wrong, checked by every call that takes one: an error, never a
/// panic, never a reference to the wrong bytes.
#[test]
fn invalid_pointers_are_errors() {
    let pool = populated();
    let s = state(&pool);
    let node = s.root.head;
    let big = s.root.big;
    // A chunk object freed again leaves a pointer into free heap space.
    let freed_big = pool.transaction(|tx| tx.alloc_zeroed::<Big>()).unwrap();
    pool.free(freed_big).unwrap();
    let pool_size = pool.info().pool_size;

    let bad: Vec<(&str, PPtr<Node>)> = vec![
        ("null", PPtr::null()),
        ("misaligned", PPtr::from_offset(node.offset() + 1)),
        ("inside an object", PPtr::from_offset(node.offset() + 8)),
        ("into free heap space", freed_big.cast()),
        (
            "inside a chunk object",
            PPtr::from_offset(big.offset() + 64),
        ),
        ("wrong type (a Big)", big.cast()),
        (
            "wrong type (a slice)",
            PPtr::from_offset(s.root.data.offset()),
        ),
        ("the pool header", PPtr::from_offset(64)),
        ("the root", PPtr::from_offset(pool_root_offset(&pool))),
        (
            "the last word of the pool",
            PPtr::from_offset(pool_size - 8),
        ),
        ("just past the end", PPtr::from_offset(pool_size)),
        ("far past the end", PPtr::from_offset(pool_size * 1000)),
        ("u64::MAX - 7", PPtr::from_offset(u64::MAX - 7)),
    ];
    let is_invalid = |what: &str, call: &str, r: pmem_core::Result<()>| match r {
        Err(Error::InvalidPointer { .. }) => {}
        other => panic!("{call} on a pointer {what}: expected InvalidPointer, got {other:?}"),
    };
    let before = state(&pool);
    for (what, p) in &bad {
        let p = *p;
        pool.read(|r| is_invalid(what, "Reader::get", r.get(p).map(|_| ())))
            .unwrap();
        pool.transaction(|tx| -> pmem_core::Result<_> {
            is_invalid(what, "Tx::get", tx.get(p).map(|_| ()));
            is_invalid(what, "Tx::get_mut", tx.get_mut(p).map(|_| ()));
            is_invalid(what, "Tx::edit", tx.edit(p).map(|_| ()));
            is_invalid(
                what,
                "Tx::write",
                tx.write(
                    p,
                    Node {
                        value: 0xdead,
                        next: PPtr::null(),
                    },
                ),
            );
            is_invalid(what, "Tx::free", tx.free(p));
            is_invalid(
                what,
                "Tx::get_mut_many",
                tx.get_mut_many([node, p]).map(|_| ()),
            );
            Ok(())
        })
        .unwrap();
        is_invalid(what, "Pool::free", pool.free(p));
        // As the type it is not: a `u64` is 8-aligned too, so only the type check is left.
        let as_other: PPtr<Other> = p.cast();
        pool.read(|r| is_invalid(what, "Reader::get as Other", r.get(as_other).map(|_| ())))
            .unwrap();
    }

    // Slices: wrong length, overflowing length, wrong element type, and the bad offsets above.
    let data = s.root.data;
    let bad_slices: Vec<(&str, PSlice<u64>)> = vec![
        (
            "one element too long",
            PSlice::from_raw_parts(data.offset(), 17),
        ),
        (
            "length overflows",
            PSlice::from_raw_parts(data.offset(), u64::MAX),
        ),
        (
            "length overflows by a little",
            PSlice::from_raw_parts(data.offset(), u64::MAX / 8 + 1),
        ),
        (
            "a node, not a slice",
            PSlice::from_raw_parts(node.offset(), 1),
        ),
        ("null with a length", PSlice::from_raw_parts(0, 1)),
        ("past the end", PSlice::from_raw_parts(pool_size, 1)),
        (
            "into free heap space",
            PSlice::from_raw_parts(freed_big.offset(), 1),
        ),
    ];
    for (what, sl) in &bad_slices {
        let sl = *sl;
        pool.read(|r| is_invalid(what, "Reader::get_slice", r.get_slice(sl).map(|_| ())))
            .unwrap();
        pool.transaction(|tx| -> pmem_core::Result<_> {
            is_invalid(what, "Tx::get_slice", tx.get_slice(sl).map(|_| ()));
            is_invalid(what, "Tx::get_slice_mut", tx.get_slice_mut(sl).map(|_| ()));
            is_invalid(what, "Tx::free_slice", tx.free_slice(sl));
            Ok(())
        })
        .unwrap();
    }
    // The null empty slice is the empty slice: it reads as `&[]` and frees as a no-op.
    pool.read(|r| assert_eq!(r.get_slice(PSlice::<u64>::null()).unwrap(), &[] as &[u64]))
        .unwrap();
    pool.transaction(|tx| {
        assert!(tx.get_slice(PSlice::<u64>::null())?.is_empty());
        assert!(tx.get_slice_mut(PSlice::<u64>::null())?.is_empty());
        assert!(tx.alloc_slice::<u64>(&[])?.is_null());
        tx.free_slice(PSlice::<u64>::null())
    })
    .unwrap();
    let as_u32: PSlice<u32> = PSlice::from_raw_parts(data.offset(), 16);
    pool.read(|r| {
        is_invalid(
            "of u32",
            "Reader::get_slice",
            r.get_slice(as_u32).map(|_| ()),
        )
    })
    .unwrap();
    // A shorter view of a slice is fine.
    pool.read(|r| {
        assert_eq!(
            r.get_slice(PSlice::<u64>::from_raw_parts(data.offset(), 3))
                .unwrap(),
            &[7, 7, 7]
        )
    })
    .unwrap();

    // Inside a transaction, pointers into its own fresh objects are checked the same way.
    pool.transaction(|tx| {
        let fresh = tx.alloc(Node {
            value: 1,
            next: PPtr::null(),
        })?;
        let fresh_big = tx.alloc_zeroed::<Big>()?;
        for (what, p) in [
            (
                "inside a fresh object",
                PPtr::<Node>::from_offset(fresh.offset() + 8),
            ),
            (
                "misaligned into a fresh object",
                PPtr::from_offset(fresh.offset() + 4),
            ),
            (
                "inside a fresh chunk object",
                PPtr::from_offset(fresh_big.offset() + 64),
            ),
            ("a fresh object of another type", fresh_big.cast()),
        ] {
            is_invalid(what, "Tx::get", tx.get(p).map(|_| ()));
            is_invalid(what, "Tx::get_mut", tx.get_mut(p).map(|_| ()));
            is_invalid(what, "Tx::edit", tx.edit(p).map(|_| ()));
            is_invalid(what, "Tx::free", tx.free(p));
        }
        is_invalid(
            "a fresh object of another type",
            "Tx::get",
            tx.get(fresh.cast::<Other>()).map(|_| ()),
        );
        Err::<(), _>(tx.abort())
    })
    .unwrap_err();

    // Nothing above changed anything.
    assert_eq!(state(&pool), before);
    assert_healthy(&pool);
}

/// A pointer whose offset is `u64::MAX` (or close to it) is as wrong as any other: every call
/// must return `InvalidPointer`, not overflow while looking the offset up.
#[test]
fn pointers_near_u64_max_are_errors_not_overflows() {
    let pool = populated();
    let before = state(&pool);
    let mut panicked = Vec::new();
    let mut wrong = Vec::new();
    let mut record = |what: String, r: std::thread::Result<pmem_core::Result<()>>| match r {
        Err(payload) => panicked.push(format!("{what}: panicked: {}", panic_message(&*payload))),
        Ok(Err(Error::InvalidPointer { .. })) => {}
        Ok(other) => wrong.push(format!("{what}: {other:?}")),
    };
    for offset in [u64::MAX, u64::MAX - 1, u64::MAX - 6, u64::MAX - 7] {
        let p = PPtr::<Node>::from_offset(offset);
        let bytes = PPtr::<u8>::from_offset(offset);
        let sl = PSlice::<u8>::from_raw_parts(offset, 1);
        let at = |call: &str| format!("{call}({offset:#x})");
        record(
            at("Reader::get"),
            catch_unwind(AssertUnwindSafe(|| {
                pool.read(|r| r.get(p).map(|_| ())).unwrap()
            })),
        );
        record(
            at("Reader::get::<u8>"),
            catch_unwind(AssertUnwindSafe(|| {
                pool.read(|r| r.get(bytes).map(|_| ())).unwrap()
            })),
        );
        record(
            at("Reader::get_slice"),
            catch_unwind(AssertUnwindSafe(|| {
                pool.read(|r| r.get_slice(sl).map(|_| ())).unwrap()
            })),
        );
        record(
            at("Pool::free"),
            catch_unwind(AssertUnwindSafe(|| pool.free(p))),
        );
        record(
            at("Pool::free::<u8>"),
            catch_unwind(AssertUnwindSafe(|| pool.free(bytes))),
        );
        type Call =
            fn(&mut Tx<'_, Root>, PPtr<Node>, PPtr<u8>, PSlice<u8>) -> pmem_core::Result<()>;
        let calls: [(&str, Call); 10] = [
            ("Tx::get", |tx, p, _, _| tx.get(p).map(|_| ())),
            ("Tx::get::<u8>", |tx, _, b, _| tx.get(b).map(|_| ())),
            ("Tx::get_mut", |tx, p, _, _| tx.get_mut(p).map(|_| ())),
            ("Tx::edit", |tx, p, _, _| tx.edit(p).map(|_| ())),
            ("Tx::write", |tx, p, _, _| {
                tx.write(
                    p,
                    Node {
                        value: 1,
                        next: PPtr::null(),
                    },
                )
            }),
            ("Tx::free", |tx, p, _, _| tx.free(p)),
            ("Tx::free::<u8>", |tx, _, b, _| tx.free(b)),
            ("Tx::get_slice", |tx, _, _, s| tx.get_slice(s).map(|_| ())),
            ("Tx::get_slice_mut", |tx, _, _, s| {
                tx.get_slice_mut(s).map(|_| ())
            }),
            ("Tx::free_slice", |tx, _, _, s| tx.free_slice(s)),
        ];
        for (name, call) in calls {
            let r = catch_unwind(AssertUnwindSafe(|| {
                pool.transaction(|tx| Ok::<_, Error>(call(tx, p, bytes, sl)))
                    .expect("the transaction itself commits")
            }));
            record(at(name), r);
        }
    }
    assert!(
        wrong.is_empty(),
        "calls that did not return InvalidPointer:\n{}",
        wrong.join("\n")
    );
    assert!(
        panicked.is_empty(),
        "{} calls panicked instead of returning InvalidPointer:\n{}",
        panicked.len(),
        panicked.join("\n")
    );
    assert_eq!(state(&pool), before);
}

/// The root's offset in the pool, from the addresses of the root and of an object whose offset
/// is known. The root is not a heap object, so a pointer to it is no valid object pointer.
fn pool_root_offset(pool: &Pool<Root>) -> u64 {
    let root = pool.read(|r| r.root() as *const Root as usize).unwrap();
    let head = pool
        .read(|r| {
            let p = r.root().head;
            r.get(p).unwrap() as *const Node as usize - p.offset() as usize
        })
        .unwrap();
    (root - head) as u64
}

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Pool<Root>>();
    send_sync::<pmem_core::PPtr<Node>>();
};

#[test]
fn concurrent_writers_and_readers() {
    const WRITERS: usize = 4;
    const INCREMENTS: u64 = 2_000;
    let dir = pmem_tests::shm_tempdir("pmem-tx-");
    let pool = Pool::<Root>::builder()
        .force_pmem(true)
        .create(dir.path().join("threads.pool"), SIZE)
        .unwrap();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let reads = std::sync::atomic::AtomicU64::new(0);
    let start = std::time::Instant::now();
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let (pool, done) = (&pool, &done);
            s.spawn(move || {
                for i in 0..INCREMENTS {
                    pool.transaction(|tx| {
                        let c = tx.root().counters[w];
                        assert_eq!(c, i, "writer {w} lost an increment");
                        tx.root_mut().counters_mut().set_at(w, c + 1)?;
                        // Every few, a node too, so the heap is shared as well.
                        if i % 100 == 0 {
                            let next = tx.root().head;
                            let n = tx.alloc(Node { value: i, next })?;
                            tx.root_mut().set_head(n)?;
                        }
                        let total = tx.root().count;
                        tx.root_mut().set_count(total + 1)
                    })
                    .unwrap();
                }
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
        for _ in 0..2 {
            let (pool, done, reads) = (&pool, &done, &reads);
            s.spawn(move || {
                let mut last = [0u64; 8];
                while done.load(std::sync::atomic::Ordering::SeqCst) < WRITERS {
                    pool.read(|r| {
                        let root = r.root();
                        let now = root.counters;
                        for w in 0..WRITERS {
                            assert!(now[w] >= last[w], "counter {w} went backwards");
                            assert!(now[w] <= INCREMENTS);
                        }
                        // The total is written in the same transactions: a reader never sees
                        // one without the other.
                        assert_eq!(root.count, now.iter().sum::<u64>(), "torn read");
                        last = now;
                    })
                    .unwrap();
                    let guard = pool.reader().unwrap();
                    let mut p = guard.root().head;
                    while !p.is_null() {
                        p = guard.get(p).expect("list node").next;
                    }
                    drop(guard);
                    reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    let elapsed = start.elapsed();
    let counters = pool.read(|r| r.root().counters).unwrap();
    println!(
        "{WRITERS} writers x {INCREMENTS} transactions and 2 readers ({} reads) in {elapsed:?}",
        reads.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert_eq!(&counters[..WRITERS], &[INCREMENTS; WRITERS]);
    assert_eq!(
        pool.read(|r| r.root().count).unwrap(),
        WRITERS as u64 * INCREMENTS
    );
    assert_eq!(
        pool.stats().heap.live_objects,
        WRITERS as u64 * INCREMENTS / 100
    );
    assert_healthy(&pool);
    // And durably so.
    let path = dir.path().join("threads.pool");
    drop(pool);
    let pool = Pool::<Root>::open(&path).unwrap();
    assert_eq!(
        &pool.read(|r| r.root().counters).unwrap()[..WRITERS],
        &[INCREMENTS; WRITERS]
    );
}
