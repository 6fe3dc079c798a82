//! Fault injection: every durability point (fence or sync) of a workload of transactions,
//! allocations and frees fails in turn, on the simulated domain and on an msync file. Each
//! failure must be reported as an error (never a panic, never a silent `Ok`), nothing that
//! returned `Ok` may be lost, an operation that failed must be wholly there or wholly absent as
//! its error says, and the reopened pool must pass the deep check.
//!
//! What a failure means, by the error the operation returns:
//! - [`Error::Io`]: the write-back of the transaction's undo log failed before anything was
//!   written under it: the transaction aborted, it is absent after reopening;
//! - [`Error::CommitOutcomeUnknown`]: the commit's write-back failed: it is there or absent;
//! - either way the pool is poisoned: every later write returns [`Error::Poisoned`].

use std::sync::{Arc, Mutex, MutexGuard};

use pmem_core::crash::CrashTest;
use pmem_core::{check, Error, FaultPlan, FlushMode, PPtr, Persistent, Pool, PoolBuilder};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    count: u64,
    head: PPtr<Node>,
    data: [u64; 40],
}

#[derive(Persistent)]
#[repr(C)]
struct Node {
    value: u64,
    next: PPtr<Node>,
}

const SIZE: u64 = 2 << 20;

/// What the pool holds: the counter, the list's values from the head, and the values of the
/// nodes not on the list (allocated with `Pool::alloc`), sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct State {
    count: u64,
    data: u64,
    list: Vec<u64>,
    loose: Vec<u64>,
}

/// The states a reopened pool may show.
#[derive(Debug, Default)]
struct Model {
    /// What every operation that returned `Ok` left.
    committed: State,
    /// The operation under way, or one whose outcome is unknown: its state is allowed too.
    in_flight: Option<State>,
    /// The first error an operation returned.
    error: Option<String>,
}

impl Model {
    fn allows(&self, state: &State) -> bool {
        *state == self.committed || self.in_flight.as_ref() == Some(state)
    }
}

fn lock(model: &Mutex<Model>) -> MutexGuard<'_, Model> {
    model.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads the state of a pool, or says why it is not a state at all.
fn state_of(pool: &Pool<Root>) -> Result<State, String> {
    pool.read(|r| {
        let mut list = Vec::new();
        let mut at = r.root().head;
        while !at.is_null() {
            let node = r.get(at).map_err(|e| format!("list node: {e}"))?;
            list.push(node.value);
            at = node.next;
            if list.len() > 1000 {
                return Err("the list loops".to_string());
            }
        }
        let mut loose: Vec<u64> = r
            .objects::<Node>()
            .map(|p| r.get(p).map(|n| n.value))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("object: {e}"))?;
        for v in &list {
            let i = loose
                .iter()
                .position(|x| x == v)
                .ok_or_else(|| format!("list value {v} is not a live object"))?;
            loose.swap_remove(i);
        }
        loose.sort_unstable();
        let root = r.root();
        let data = root.data[0];
        if root.data.iter().any(|&d| d != data) {
            return Err(format!("torn data: {:?}", root.data));
        }
        Ok(State {
            count: root.count,
            data,
            list,
            loose,
        })
    })
    .map_err(|e| format!("read: {e}"))?
}

/// The check of a reopened pool: healthy, and in a state the model allows.
fn verify(pool: &Pool<Root>, model: &Mutex<Model>) -> Result<(), String> {
    let report = check::check(pool);
    if !report.is_healthy() {
        return Err(format!("deep check: {report}"));
    }
    let state = state_of(pool)?;
    let model = lock(model);
    if model.allows(&state) {
        Ok(())
    } else {
        Err(format!("state {state:?}, model {model:?}"))
    }
}

/// Runs `op`, which takes the pool from the committed state to `next`, and records its
/// outcome. Errors other than those a failed write-back explains fail the test.
fn step<T>(
    model: &Mutex<Model>,
    next: impl FnOnce(&State) -> State,
    op: impl FnOnce() -> pmem_core::Result<T>,
) -> Option<T> {
    {
        let mut m = lock(model);
        let after = next(&m.committed);
        m.in_flight = Some(after);
    }
    let result = op();
    let mut m = lock(model);
    match result {
        Ok(value) => {
            m.committed = m.in_flight.take().expect("set above");
            Some(value)
        }
        // The commit record may or may not be durable: both states stay allowed.
        Err(e @ Error::CommitOutcomeUnknown { .. }) => {
            m.error = Some(e.to_string());
            None
        }
        // The undo log's write-back failed: the transaction aborted.
        Err(e @ Error::Io { .. }) => {
            m.in_flight = None;
            m.error = Some(e.to_string());
            None
        }
        Err(e) => panic!("an operation failed for a reason no write-back explains: {e:?}"),
    }
}

/// The workload: transactions, nested ones, allocations and frees inside and outside them.
/// Stops at the first error, after checking that the pool then refuses writes.
fn workload(pool: &Pool<Root>, model: &Mutex<Model>) {
    let mut value = 0u64;
    let mut loose: Vec<(u64, PPtr<Node>)> = Vec::new();
    let mut next_value = || {
        value += 1;
        value
    };
    for _round in 0..2 {
        // A transaction writing one field.
        let ok = step(
            model,
            |s| State {
                count: s.count + 1,
                ..s.clone()
            },
            || {
                pool.transaction(|tx| {
                    let n = tx.root().count;
                    tx.root_mut().set_count(n + 1)
                })
            },
        );
        if ok.is_none() {
            break;
        }
        // An allocation inside a transaction, published.
        let v = next_value();
        let push = |s: &State| {
            let mut s = s.clone();
            s.list.insert(0, v);
            s
        };
        let ok = step(model, push, || {
            pool.transaction(|tx| {
                let head = tx.root().head;
                let node = tx.alloc(Node {
                    value: v,
                    next: head,
                })?;
                tx.root_mut().set_head(node)
            })
        });
        if ok.is_none() {
            break;
        }
        // A single-step allocation outside any transaction.
        let v = next_value();
        let add_loose = |s: &State| {
            let mut s = s.clone();
            s.loose.push(v);
            s.loose.sort_unstable();
            s
        };
        match step(model, add_loose, || {
            pool.alloc(Node {
                value: v,
                next: PPtr::null(),
            })
        }) {
            Some(p) => loose.push((v, p)),
            None => break,
        }
        // A nested transaction: the outer writes the counter and a whole array (one undo entry,
        // one fence), the inner allocates.
        let v = next_value();
        let nested = |s: &State| {
            let mut s = s.clone();
            s.count += 1;
            s.data += 1;
            s.list.insert(0, v);
            s
        };
        let ok = step(model, nested, || {
            pool.transaction(|tx| {
                let n = tx.root().count;
                tx.root_mut().set_count(n + 1)?;
                let d = tx.root().data[0] + 1;
                tx.root_mut().set_data([d; 40])?;
                tx.transaction(|tx| {
                    let head = tx.root().head;
                    let node = tx.alloc(Node {
                        value: v,
                        next: head,
                    })?;
                    tx.root_mut().set_head(node)
                })
            })
        });
        if ok.is_none() {
            break;
        }
        // A single-step free.
        if let Some((v, p)) = loose.pop() {
            let free_loose = |s: &State| {
                let mut s = s.clone();
                let i = s.loose.iter().position(|&x| x == v).expect("loose");
                s.loose.remove(i);
                s
            };
            if step(model, free_loose, || pool.free(p)).is_none() {
                break;
            }
        }
        // A free inside a transaction: unlink the head and free it.
        let pop = |s: &State| {
            let mut s = s.clone();
            s.list.remove(0);
            s
        };
        let ok = step(model, pop, || {
            pool.transaction(|tx| {
                let head = tx.root().head;
                let next = tx.get(head)?.next;
                tx.root_mut().set_head(next)?;
                tx.free(head)
            })
        });
        if ok.is_none() {
            break;
        }
        // An object allocated and freed by one transaction, which also writes the counter.
        let v = next_value();
        let ok = step(
            model,
            |s| State {
                count: s.count + 1,
                ..s.clone()
            },
            || {
                pool.transaction(|tx| {
                    let p = tx.alloc(Node {
                        value: v,
                        next: PPtr::null(),
                    })?;
                    let n = tx.root().count;
                    tx.root_mut().set_count(n + 1)?;
                    tx.free(p)
                })
            },
        );
        if ok.is_none() {
            break;
        }
    }
    if lock(model).error.is_some() {
        // A failed write-back poisons the pool: every write is refused. Reads still work (an
        // object an unknown commit allocated reads as an error: its allocation is left to
        // recovery), and never panic.
        assert!(matches!(
            pool.transaction(|tx| tx.root_mut().set_count(0)),
            Err(Error::Poisoned { .. })
        ));
        assert!(matches!(
            pool.alloc(Node {
                value: 0,
                next: PPtr::null()
            }),
            Err(Error::Poisoned { .. })
        ));
        let _ = state_of(pool);
    }
}

/// Durability points of the workload on a pool from `create`, with a plan that fails none:
/// `(after create, after the workload, after the pool is dropped)`.
fn count_points(create: impl FnOnce(FaultPlan) -> Pool<Root>) -> (u64, u64, u64) {
    let plan = FaultPlan::new();
    let pool = create(plan.clone());
    let created = plan.points();
    let model = Mutex::new(Model::default());
    workload(&pool, &model);
    assert!(lock(&model).error.is_none());
    let worked = plan.points();
    drop(pool);
    (created, worked, plan.points())
}

fn sim_builder(plan: FaultPlan) -> PoolBuilder<Root> {
    Pool::<Root>::builder().fault_plan(plan)
}

/// Every fence of the workload on the simulated domain fails in turn; the crash images left
/// at the end (and, for some, at every fence) are reopened through recovery and checked.
#[test]
fn every_failed_fence_of_a_workload_on_the_simulated_domain_is_reported_and_loses_nothing() {
    let (created, worked, _) =
        count_points(|plan| sim_builder(plan).create_simulated(SIZE).unwrap());
    assert!(worked - created > 10, "{created}..{worked}");
    eprintln!("simulated: {created} points in create, {worked} after the workload");
    for n in 0..created {
        let plan = FaultPlan::new();
        plan.fail_at(n);
        match sim_builder(plan).create_simulated(SIZE) {
            Err(Error::Io { .. }) => {}
            other => panic!("create with point {n} failing: {other:?}"),
        }
    }
    // Each point failing alone, then each point and every one after it (a device that died).
    let points = (created..worked).map(|n| (n, false));
    for (n, dead) in points.clone().chain(points.map(|(n, _)| (n, true))) {
        let plan = FaultPlan::new();
        if dead {
            plan.fail_from(n);
        } else {
            plan.fail_at(n);
        }
        let model = Arc::new(Mutex::new(Model::default()));
        let (run, seen) = (Arc::clone(&model), Arc::clone(&model));
        // Crash images at every fence for a sample of the points, else only at the end.
        let test = CrashTest::new(SIZE).fault_plan(plan.clone());
        let test = if n % 5 == 0 {
            test.random_subsets(1)
        } else {
            test.every_nth_fence(u64::MAX)
        };
        let report = test.run::<Root>(
            move |pool| {
                workload(pool, &run);
                Ok(())
            },
            move |pool, _| verify(pool, &seen),
        );
        assert!(
            report.is_ok(),
            "point {n} failing (and later: {dead}):\n{report}"
        );
        assert!(dead || plan.injected() == 1, "point {n}");
        assert!(
            lock(&model).error.is_some(),
            "point {n} failed and no operation reported it"
        );
    }
}

fn file_builder(plan: FaultPlan) -> PoolBuilder<Root> {
    Pool::<Root>::builder()
        .flush_mode(FlushMode::Msync)
        .fault_plan(plan)
}

/// Every fence and sync of the same workload on an msync file fails in turn: create fails
/// cleanly, an operation reports the failure, and the file reopened through recovery holds a
/// state the errors allow, healthy.
#[test]
fn every_failed_msync_of_a_workload_on_a_file_is_reported_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("count.pool");
    let (created, worked, closed) =
        count_points(|plan| file_builder(plan).create(&path, SIZE).unwrap());
    assert!(closed > worked, "closing retires the logs with a fence");
    eprintln!("file: {created} points in create, {worked} after the workload, {closed} closed");
    let points = (0..closed).map(|n| (n, false));
    for (n, dead) in points.clone().chain(points.map(|(n, _)| (n, true))) {
        let path = dir.path().join(format!("p{n}-{dead}.pool"));
        let plan = FaultPlan::new();
        if dead {
            plan.fail_from(n);
        } else {
            plan.fail_at(n);
        }
        let pool = match file_builder(plan.clone()).create(&path, SIZE) {
            Ok(pool) => pool,
            Err(Error::Io { .. }) if n < created => {
                assert!(!path.exists(), "a failed create left {path:?}");
                let leftovers = std::fs::read_dir(dir.path())
                    .unwrap()
                    .filter(|e| {
                        let name = e.as_ref().unwrap().file_name();
                        name.to_string_lossy()
                            .contains(&format!("p{n}-{dead}.pool"))
                    })
                    .count();
                assert_eq!(leftovers, 0, "a failed create left a temporary file");
                continue;
            }
            other => panic!("create with point {n} failing: {other:?}"),
        };
        assert!(n >= created, "point {n} of create failed silently");
        let model = Mutex::new(Model::default());
        workload(&pool, &model);
        assert!(
            n >= worked || lock(&model).error.is_some(),
            "point {n} failed and no operation reported it"
        );
        drop(pool);
        assert!(
            plan.injected() == 1 || dead && plan.injected() > 1,
            "point {n}"
        );
        let pool = Pool::<Root>::open(&path).unwrap_or_else(|e| panic!("point {n}: {e}"));
        verify(&pool, &model).unwrap_or_else(|e| panic!("point {n} failing: {e}"));
        // And the pool works again.
        pool.transaction(|tx| tx.root_mut().set_count(7)).unwrap();
    }
}

/// A pool file whose last transaction was interrupted, so that opening it recovers.
fn interrupted_pool(path: &std::path::Path) {
    let workload = |pool: &Pool<Root>| {
        pool.transaction(|tx| tx.root_mut().set_count(1))?;
        pool.transaction(|tx| {
            tx.root_mut().set_count(2)?;
            tx.root_mut().set_data([2; 40])
        })
    };
    // Crash at the second transaction's commit fence, with everything written by then durable:
    // the commit record made it, its writes are not all in place, and recovery completes it.
    let probe = FaultPlan::new();
    let pool = sim_builder(probe.clone()).create_simulated(SIZE).unwrap();
    let created = probe.points();
    drop(pool);
    let test = CrashTest::new(SIZE);
    let image = test
        .image_at::<Root>(
            workload,
            created + 1,
            pmem_core::crash::ImageKind::Everything,
        )
        .unwrap();
    std::fs::write(path, image.as_bytes()).unwrap();
}

/// Every fence of an open that recovers fails in turn: the open returns the error, and the next
/// open recovers the same pool.
#[test]
fn a_failed_fence_during_open_with_recovery_fails_the_open_and_the_next_open_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("recover.pool");
    interrupted_pool(&path);
    let bytes = std::fs::read(&path).unwrap();
    let plan = FaultPlan::new();
    let pool = file_builder(plan.clone()).open(&path).unwrap();
    let recovery = pool.info().recovery;
    assert!(
        recovery.redo_applied > 0 && !recovery.rolled_back,
        "{recovery:?}"
    );
    let points = plan.points();
    assert!(points >= 3, "{points}");
    assert_eq!(pool.read(|r| r.root().count).unwrap(), 2);
    drop(pool);
    for n in 0..points {
        std::fs::write(&path, &bytes).unwrap();
        let plan = FaultPlan::new();
        plan.fail_at(n);
        match file_builder(plan).open(&path) {
            Err(Error::Io { .. }) => {}
            other => panic!("open with point {n} failing: {other:?}"),
        }
        let pool = Pool::<Root>::open(&path).unwrap();
        assert_eq!(
            pool.read(|r| (r.root().count, r.root().data)).unwrap(),
            (2, [2; 40])
        );
        assert!(check::check(&pool).is_healthy());
        // The same on the simulated domain, opening the image.
        let plan = FaultPlan::new();
        plan.fail_at(n);
        let image = pmem_core::PoolImage::from_bytes(&bytes);
        match sim_builder(plan).open_image(image) {
            Err(Error::Io { .. }) => {}
            other => panic!("open_image with point {n} failing: {other:?}"),
        }
    }
}

/// What each operation returns when the fence it relies on fails, and what a crash then
/// leaves, reopened through recovery.
mod per_operation {
    use super::*;

    /// On a simulated pool holding count 1, fails the `k`-th durability point from then on (0:
    /// the next) and runs `op`, which asserts what its operations return. The crash images of
    /// the end state must be healthy and hold one of the `allowed` (count, nodes) pairs.
    fn failing(
        k: u64,
        allowed: &'static [(u64, usize)],
        op: impl FnOnce(&Pool<Root>) + Send + 'static,
    ) {
        let plan = FaultPlan::new();
        let arm = plan.clone();
        let report = CrashTest::new(SIZE)
            .fault_plan(plan.clone())
            .every_nth_fence(u64::MAX)
            .run::<Root>(
                move |pool| {
                    pool.transaction(|tx| tx.root_mut().set_count(1))?;
                    arm.fail_at(arm.points() + k);
                    op(pool);
                    Ok(())
                },
                move |pool, _| {
                    let report = check::check(pool);
                    if !report.is_healthy() {
                        return Err(format!("deep check: {report}"));
                    }
                    let state = state_of(pool)?;
                    let nodes = state.list.len() + state.loose.len();
                    if allowed.contains(&(state.count, nodes)) {
                        Ok(())
                    } else {
                        Err(format!("{state:?}, allowed (count, nodes) {allowed:?}"))
                    }
                },
            );
        report.assert_ok();
        assert_eq!(plan.injected(), 1);
    }

    fn refuses_writes(pool: &Pool<Root>) {
        assert!(matches!(
            pool.transaction(|tx| tx.root_mut().set_count(3)),
            Err(Error::Poisoned { .. })
        ));
        assert!(matches!(
            pool.alloc(Node {
                value: 0,
                next: PPtr::null()
            }),
            Err(Error::Poisoned { .. })
        ));
    }

    /// A transaction's writes wait in its write set, so nothing it does before its commit can
    /// fail on a fence: its one fence is the commit's. One that fails leaves the outcome
    /// unknown (the commit record may or may not have reached the media), runs no hooks, and
    /// refuses every later write until the pool is reopened.
    #[test]
    fn a_transaction_whose_commit_fence_fails_runs_no_hooks_and_keeps_its_state_in_memory() {
        failing(0, &[(1, 0), (2, 0)], |pool| {
            let hooks = Arc::new(Mutex::new(Vec::new()));
            let (c, a) = (Arc::clone(&hooks), Arc::clone(&hooks));
            let result = pool.transaction(|tx| {
                tx.on_commit(move || c.lock().unwrap().push("commit"));
                tx.on_abort(move || a.lock().unwrap().push("abort"));
                tx.root_mut().set_count(2)?;
                tx.root_mut().set_data([5; 40])
            });
            match result {
                Err(Error::CommitOutcomeUnknown { source, .. }) => {
                    assert_eq!(source.raw_os_error(), Some(EIO))
                }
                other => panic!("{other:?}"),
            }
            assert!(hooks.lock().unwrap().is_empty(), "hooks ran: {hooks:?}");
            // Memory shows the state before it: the writes go into place only once the commit
            // is known to be durable.
            assert_eq!(
                pool.read(|r| (r.root().count, r.root().data[0])).unwrap(),
                (1, 0)
            );
            refuses_writes(pool);
        });
    }

    #[test]
    fn a_transaction_whose_commit_fence_fails_has_an_unknown_outcome() {
        // Its one fence: the commit's.
        failing(0, &[(1, 0), (2, 1)], |pool| {
            let result = pool.transaction(|tx| {
                tx.root_mut().set_count(2)?;
                tx.alloc(Node {
                    value: 9,
                    next: PPtr::null(),
                })
            });
            assert!(
                matches!(result, Err(Error::CommitOutcomeUnknown { .. })),
                "{result:?}"
            );
            refuses_writes(pool);
        });
    }

    #[test]
    fn a_free_inside_a_transaction_whose_commit_fence_fails_has_an_unknown_outcome() {
        // The allocation's fence, then the transaction's commit fence.
        failing(1, &[(1, 1), (2, 0)], |pool| {
            let p = pool
                .alloc(Node {
                    value: 1,
                    next: PPtr::null(),
                })
                .unwrap();
            let result = pool.transaction(|tx| {
                tx.root_mut().set_count(2)?;
                tx.free(p)
            });
            assert!(
                matches!(result, Err(Error::CommitOutcomeUnknown { .. })),
                "{result:?}"
            );
            refuses_writes(pool);
        });
    }

    #[test]
    fn a_single_step_alloc_whose_fence_fails_has_an_unknown_outcome() {
        failing(0, &[(1, 0), (1, 1)], |pool| {
            let result = pool.alloc(Node {
                value: 1,
                next: PPtr::null(),
            });
            assert!(
                matches!(result, Err(Error::CommitOutcomeUnknown { .. })),
                "{result:?}"
            );
            refuses_writes(pool);
        });
    }

    #[test]
    fn a_single_step_free_whose_fence_fails_has_an_unknown_outcome() {
        failing(2, &[(1, 2), (1, 1)], |pool| {
            let keep = pool.alloc(Node {
                value: 1,
                next: PPtr::null(),
            });
            let p = pool
                .alloc(Node {
                    value: 2,
                    next: PPtr::null(),
                })
                .unwrap();
            let result = pool.free(p);
            assert!(
                matches!(result, Err(Error::CommitOutcomeUnknown { .. })),
                "{result:?}"
            );
            assert!(keep.is_ok());
            refuses_writes(pool);
        });
    }

    #[test]
    fn create_reports_each_failed_fence_and_sync_with_the_errno_given() {
        let dir = tempfile::tempdir().unwrap();
        for n in 0..20 {
            let path = dir.path().join(format!("c{n}.pool"));
            let plan = FaultPlan::new();
            plan.fail_at(n).errno(ENOSPC);
            match file_builder(plan.clone()).create(&path, SIZE) {
                Ok(_) => {
                    assert_eq!(plan.injected(), 0, "point {n} failed silently");
                    assert!(n >= 4, "create has at least four fences and two syncs");
                    return;
                }
                Err(Error::Io { source, .. }) => {
                    assert_eq!(source.raw_os_error(), Some(ENOSPC));
                    assert!(!path.exists());
                }
                Err(e) => panic!("point {n}: {e:?}"),
            }
        }
        panic!("create never succeeded");
    }

    #[test]
    fn create_simulated_reports_a_failed_fence() {
        let plan = FaultPlan::new();
        plan.fail_at(0);
        assert!(matches!(
            sim_builder(plan).create_simulated(SIZE),
            Err(Error::Io { .. })
        ));
    }

    const EIO: i32 = 5;
    const ENOSPC: i32 = 28;
}
