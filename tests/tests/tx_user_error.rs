//! A transaction's closure returns its caller's own error type: the error comes back as the very
//! value the closure returned (from a nested transaction too), after a rollback of every byte and
//! every allocation, and the library's errors (inside the closure, at begin, at commit) come back
//! converted into the caller's type, still matchable.

use std::sync::{Arc, Mutex};

use pmem_core::check::check;
use pmem_core::{AbortCause, Error, FaultPlan, FlushMode, PPtr, Persistent, Pool};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    balance: u64,
    withdrawals: u64,
    head: PPtr<Node>,
}

#[derive(Persistent)]
#[repr(C)]
struct Node {
    value: u64,
    next: PPtr<Node>,
}

/// An application's error: its own cases, with data, and the library's errors.
#[derive(Debug)]
enum BankError {
    Insufficient {
        balance: u64,
        wanted: u64,
    },
    /// Owns a heap allocation, so a test can tell the value itself from a copy of it.
    Refused(Box<u64>),
    Pool(Error),
}

impl From<Error> for BankError {
    fn from(e: Error) -> Self {
        BankError::Pool(e)
    }
}

/// A nested transaction's own error type, unrelated to the outer one's.
#[derive(Debug, PartialEq)]
enum LimitError {
    OverLimit(u64),
    Pool(String),
}

impl From<Error> for LimitError {
    fn from(e: Error) -> Self {
        LimitError::Pool(e.to_string())
    }
}

const SIZE: u64 = 4 << 20;

fn pool() -> Pool<Root> {
    let pool = Pool::<Root>::builder().create_simulated(SIZE).unwrap();
    pool.transaction(|tx| tx.root_mut().set_balance(100))
        .unwrap();
    pool
}

/// The root's fields and the live object count.
fn state(pool: &Pool<Root>) -> (u64, u64, PPtr<Node>, u64) {
    let (balance, withdrawals, head) = pool
        .read(|r| (r.root().balance, r.root().withdrawals, r.root().head))
        .unwrap();
    (balance, withdrawals, head, pool.stats().heap.live_objects)
}

/// Writes a field, allocates a node and links it, then withdraws `amount` or fails with the
/// caller's error.
fn withdraw(pool: &Pool<Root>, amount: u64) -> Result<u64, BankError> {
    pool.transaction(|tx| {
        let n = tx.root().withdrawals;
        tx.root_mut().set_withdrawals(n + 1)?;
        let head = tx.root().head;
        let node = tx.alloc(Node {
            value: amount,
            next: head,
        })?;
        tx.root_mut().set_head(node)?;
        let balance = tx.root().balance;
        if amount > balance {
            return Err(BankError::Insufficient {
                balance,
                wanted: amount,
            });
        }
        tx.root_mut().set_balance(balance - amount)?;
        Ok(balance - amount)
    })
}

#[test]
fn a_users_error_comes_back_typed_after_a_rollback_of_bytes_and_allocations() {
    let pool = pool();
    assert_eq!(withdraw(&pool, 30).unwrap(), 70);
    let before = state(&pool);
    match withdraw(&pool, 500) {
        Err(BankError::Insufficient {
            balance: 70,
            wanted: 500,
        }) => {}
        other => panic!("expected Insufficient, got {other:?}"),
    }
    assert_eq!(
        state(&pool),
        before,
        "the write, the allocation and the link stay"
    );
    assert!(check(&pool).is_healthy());
    assert_eq!(withdraw(&pool, 70).unwrap(), 0);
}

#[test]
fn the_users_error_is_the_value_the_closure_returned_not_a_copy() {
    let pool = pool();
    let mut made_at = 0usize;
    let result: Result<(), BankError> = pool.transaction(|tx| {
        tx.root_mut().set_balance(1)?;
        let payload = Box::new(42u64);
        made_at = &*payload as *const u64 as usize;
        Err(BankError::Refused(payload))
    });
    match result {
        Err(BankError::Refused(payload)) => {
            assert_eq!(*payload, 42);
            assert_eq!(
                &*payload as *const u64 as usize, made_at,
                "moved, not rebuilt"
            );
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    assert_eq!(state(&pool).0, 100);
}

#[test]
fn a_nested_transactions_error_is_the_users_value_itself() {
    let pool = pool();
    let before = state(&pool);
    let mut made_at = 0usize;
    let hooks = Arc::new(Mutex::new(Vec::new()));
    let h = Arc::clone(&hooks);
    let result: Result<(), BankError> = pool.transaction(|tx| {
        tx.on_abort(move || h.lock().unwrap().push("abort"));
        tx.root_mut().set_withdrawals(9)?;
        let inner: Result<(), BankError> = tx.transaction(|tx| {
            tx.alloc(Node {
                value: 1,
                next: PPtr::null(),
            })?;
            let payload = Box::new(7u64);
            made_at = &*payload as *const u64 as usize;
            Err(BankError::Refused(payload))
        });
        // What the nested call returns is the inner closure's value, not its text.
        match &inner {
            Err(BankError::Refused(payload)) => {
                assert_eq!(&**payload as *const u64 as usize, made_at)
            }
            other => panic!("expected Refused from the nested call, got {other:?}"),
        }
        inner?; // passed on as it is
        Ok(())
    });
    match result {
        Err(BankError::Refused(payload)) => {
            assert_eq!(
                &*payload as *const u64 as usize, made_at,
                "the same value, twice passed on"
            )
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    assert_eq!(state(&pool), before, "nothing of either level stays");
    assert_eq!(*hooks.lock().unwrap(), ["abort"]);
    assert!(check(&pool).is_healthy());
}

#[test]
fn a_nested_transaction_may_use_an_error_type_of_its_own() {
    let pool = pool();
    let before = state(&pool);
    let result: Result<u64, BankError> = pool.transaction(|tx| {
        let inner = tx.transaction(|tx| {
            let balance = tx.root().balance;
            tx.root_mut().set_balance(balance + 1000)?;
            if balance + 1000 > 500 {
                return Err(LimitError::OverLimit(balance + 1000));
            }
            Ok(balance)
        });
        assert_eq!(inner, Err(LimitError::OverLimit(1100)));
        // The outer closure turns it into its own error.
        inner.map_err(|e| match e {
            LimitError::OverLimit(wanted) => BankError::Insufficient {
                balance: 500,
                wanted,
            },
            LimitError::Pool(text) => panic!("library error {text}"),
        })
    });
    assert!(matches!(
        result,
        Err(BankError::Insufficient {
            balance: 500,
            wanted: 1100
        })
    ));
    assert_eq!(state(&pool), before);
}

/// A nested failure that the outer closure swallows still aborts the whole transaction, and the
/// outer caller learns why from the library's error inside its own type.
#[test]
fn a_swallowed_nested_error_aborts_with_a_typed_cause() {
    let pool = pool();
    let before = state(&pool);
    let result: Result<&str, BankError> = pool.transaction(|tx| {
        tx.root_mut().set_balance(5)?;
        let _ = tx.transaction(|_| Err::<(), _>(LimitError::OverLimit(1)));
        Ok("outer says ok")
    });
    assert!(
        matches!(
            result,
            Err(BankError::Pool(Error::Aborted {
                cause: AbortCause::NestedFailed
            }))
        ),
        "{result:?}"
    );
    assert_eq!(state(&pool), before);

    // `Tx::abort` with the user's type: returning `Ok` afterwards still aborts.
    let result: Result<(), BankError> = pool.transaction(|tx| {
        tx.root_mut().set_balance(6)?;
        let _ = tx.abort();
        Ok(())
    });
    assert!(
        matches!(
            result,
            Err(BankError::Pool(Error::Aborted {
                cause: AbortCause::Requested
            }))
        ),
        "{result:?}"
    );
    assert_eq!(state(&pool), before);
}

#[test]
fn library_errors_inside_the_closure_come_back_inside_the_users_type() {
    let pool = pool();
    let before = state(&pool);
    let result: Result<u64, BankError> = pool.transaction(|tx| {
        tx.root_mut().set_balance(1)?;
        let wild = PPtr::<Node>::from_offset(8);
        Ok(tx.get(wild)?.value)
    });
    assert!(
        matches!(result, Err(BankError::Pool(Error::InvalidPointer { .. }))),
        "{result:?}"
    );
    assert_eq!(state(&pool), before);

    // Refused at begin: a transaction while this thread holds a read guard.
    let guard = pool.reader().unwrap();
    let result: Result<(), BankError> = pool.transaction(|_| Ok(()));
    assert!(
        matches!(result, Err(BankError::Pool(Error::ReadGuardHeld))),
        "{result:?}"
    );
    drop(guard);

    // Refused at begin: a transaction inside a transaction on the same pool.
    let result: Result<(), BankError> = pool.transaction(|_| {
        let nested: Result<(), BankError> = pool.transaction(|_| Ok(()));
        assert!(matches!(
            nested,
            Err(BankError::Pool(Error::NestedTransaction))
        ));
        nested
    });
    assert!(matches!(
        result,
        Err(BankError::Pool(Error::NestedTransaction))
    ));
}

/// A commit whose write-back fails comes back as the library's `CommitOutcomeUnknown` inside the
/// user's type, and so does the poisoned pool's refusal of the next transaction.
#[test]
fn library_errors_during_commit_come_back_inside_the_users_type() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("commit-error.pool");
    let plan = FaultPlan::new();
    let pool = Pool::<Root>::builder()
        .flush_mode(FlushMode::Msync)
        .fault_plan(plan.clone())
        .create(&path, SIZE)
        .unwrap();
    pool.transaction(|tx| tx.root_mut().set_balance(110))
        .unwrap();
    // One withdrawal counts its fences; the next one's last fence, its commit's, fails.
    let before = plan.points();
    withdraw(&pool, 10).unwrap();
    let fences = plan.points() - before;
    plan.fail_at(plan.points() + fences - 1);
    let result = withdraw(&pool, 10);
    assert!(
        matches!(
            result,
            Err(BankError::Pool(Error::CommitOutcomeUnknown { .. }))
        ),
        "{result:?}"
    );
    let result = withdraw(&pool, 10);
    assert!(
        matches!(result, Err(BankError::Pool(Error::Poisoned { .. }))),
        "{result:?}"
    );
    drop(pool);
    let pool = Pool::<Root>::open(&path).unwrap();
    let balance = pool.read(|r| r.root().balance).unwrap();
    assert!(balance == 100 || balance == 90, "balance {balance}");
    assert!(check(&pool).is_healthy());
}

/// A boxed catch-all error works too (`From<Error>` comes from std), and the user's error can
/// be downcast back out of it.
#[test]
fn a_boxed_error_type_works_and_downcasts_back() {
    #[derive(Debug)]
    struct Overdrawn(u64);
    impl std::fmt::Display for Overdrawn {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "overdrawn by {}", self.0)
        }
    }
    impl std::error::Error for Overdrawn {}

    let pool = pool();
    let result: Result<(), Box<dyn std::error::Error + Send + Sync>> = pool.transaction(|tx| {
        tx.root_mut().set_balance(0)?;
        Err(Overdrawn(3).into())
    });
    let e = result.unwrap_err();
    assert_eq!(e.downcast_ref::<Overdrawn>().map(|o| o.0), Some(3));
    let result: Result<(), Box<dyn std::error::Error + Send + Sync>> =
        pool.transaction(|tx| Ok(tx.get(PPtr::<Node>::from_offset(8)).map(|_| ())?));
    let e = result.unwrap_err();
    assert!(matches!(
        e.downcast_ref::<Error>(),
        Some(Error::InvalidPointer { .. })
    ));
    assert_eq!(state(&pool).0, 100);
}

/// An error type whose conversion from the library's error panics. The rollback must not
/// depend on it: a transaction that is to abort is rolled back before the caller's code runs.
#[derive(Debug)]
struct Unconvertible;

impl From<Error> for Unconvertible {
    fn from(e: Error) -> Self {
        panic!("Unconvertible::from({e})")
    }
}

#[test]
fn a_panic_converting_the_abort_error_leaves_the_transaction_rolled_back() {
    let pool = pool();
    let before = state(&pool);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.transaction(|tx| -> Result<(), Unconvertible> {
            tx.root_mut().set_balance(7)?;
            let node = tx.alloc(Node {
                value: 1,
                next: PPtr::null(),
            })?;
            tx.root_mut().set_head(node)?;
            // Doomed, and the closure returns Ok: the error to return is `Aborted`, converted.
            let _ = tx.abort();
            Ok(())
        })
    }));
    assert!(outcome.is_err(), "the conversion panicked");
    // Never committed, and never will be: readers must not see it.
    assert_eq!(state(&pool), before);
}

/// A value whose drop panics, returned by a closure that asked for an abort: dropped only once
/// the rollback is done.
#[test]
fn a_panic_dropping_the_value_of_an_aborted_transaction_leaves_it_rolled_back() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("Bomb dropped");
        }
    }
    let pool = pool();
    let before = state(&pool);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = pool.transaction(|tx| -> Result<Bomb, Error> {
            tx.root_mut().set_balance(7)?;
            let _ = tx.abort();
            Ok(Bomb)
        });
    }));
    assert!(outcome.is_err(), "the drop panicked");
    assert_eq!(state(&pool), before);
}
