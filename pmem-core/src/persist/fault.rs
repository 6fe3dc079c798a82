//! Fault injection: a [`FaultPlan`] names durability points of a pool that fail, and
//! [`Faulty`] makes any backing fail them.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::{FlushMode, Persist};

/// Which durability points of a pool fail, for testing what every operation does when the
/// media reports an error.
///
/// A *durability point* is a fence of the pool's persistence domain (in any flush mode,
/// including the simulated one) or an `fsync` that [`Pool::create`](crate::Pool::create)
/// makes of the file and its directory. Points are numbered from 0 in the order the pool
/// reaches them, from the start of the create or open the plan is given to
/// ([`PoolBuilder::fault_plan`](crate::PoolBuilder::fault_plan),
/// [`CrashTest::fault_plan`](crate::crash::CrashTest::fault_plan)). A failing point makes nothing
/// durable: what it should have written back is lost, as Linux drops the pages whose
/// write-back failed, and the operation that relied on it reports the error (see
/// [`Error::CommitOutcomeUnknown`](crate::Error::CommitOutcomeUnknown) and
/// [`Error::Io`](crate::Error::Io)).
///
/// A plan is a shared handle: clones count and fail the same points, so a test keeps one to
/// read [`points`](Self::points) or to arm a failure after the pool is open.
///
/// Apart from the durability points, a plan counts and can fail the pool's *space
/// reservations*: the calls that reserve disk blocks for the parts of the file the pool is
/// about to write (`posix_fallocate`; see [`PoolBuilder::reserve_all`](crate::PoolBuilder::reserve_all)).
/// A failed reservation reports `ENOSPC`, as a full file system would. Pools in memory count
/// and fail them at the same places, though they have no disk. A pool with nothing left to
/// reserve makes none after its open: one opened with `reserve_all`, and one whose file is on
/// tmpfs with a page for every byte (its length a multiple of 2 MiB), which open takes as
/// reserved whole.
///
/// ```
/// use pmem_core::{Error, FaultPlan, Persistent, Pool};
/// #[derive(Persistent)]
/// #[repr(C)]
/// struct Root { count: u64 }
///
/// let plan = FaultPlan::new();
/// let pool = Pool::<Root>::builder().fault_plan(plan.clone()).create_simulated(2 << 20)?;
/// // The disk is full from now on: the first allocation needs heap space reserved.
/// plan.fail_reservations_from(plan.reservations());
/// let result = pool.transaction(|tx| tx.alloc(7u64).map(drop));
/// assert!(matches!(&result, Err(Error::Io { source, .. }) if source.raw_os_error() == Some(libc::ENOSPC)));
/// // Nothing was written: the pool is not poisoned, and works again once there is room.
/// pool.transaction(|tx| tx.root_mut().set_count(1))?;
/// plan.fail_reservations_from(u64::MAX);
/// pool.transaction(|tx| tx.alloc(7u64).map(drop))?;
/// # Ok::<(), pmem_core::Error>(())
/// ```
///
/// ```
/// use pmem_core::{Error, FaultPlan, Persistent, Pool};
/// #[derive(Persistent)]
/// #[repr(C)]
/// struct Root { count: u64 }
///
/// let plan = FaultPlan::new();
/// let pool = Pool::<Root>::builder().fault_plan(plan.clone()).create_simulated(2 << 20)?;
/// // The next durability point (the transaction's one fence, its commit's) fails.
/// plan.fail_at(plan.points());
/// let result = pool.transaction(|tx| tx.root_mut().set_count(1));
/// assert!(matches!(result, Err(Error::CommitOutcomeUnknown { .. })));
/// assert!(matches!(pool.transaction(|tx| tx.root_mut().set_count(2)), Err(Error::Poisoned { .. })));
/// # Ok::<(), pmem_core::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct FaultPlan(Arc<PlanState>);

struct PlanState {
    /// Durability points reached so far.
    points: AtomicU64,
    /// Failures injected so far.
    injected: AtomicU64,
    /// Space reservations reached so far.
    reservations: AtomicU64,
    /// Every space reservation from this one on fails (`u64::MAX`: none).
    reservations_fail_from: AtomicU64,
    rules: Mutex<Rules>,
}

impl Default for PlanState {
    fn default() -> PlanState {
        PlanState {
            points: AtomicU64::new(0),
            injected: AtomicU64::new(0),
            reservations: AtomicU64::new(0),
            reservations_fail_from: AtomicU64::new(u64::MAX),
            rules: Mutex::default(),
        }
    }
}

#[derive(Default)]
struct Rules {
    /// Points that fail.
    at: Vec<u64>,
    /// Every point from this one on fails.
    from: Option<u64>,
    /// The error reported (`EIO` unless set).
    errno: Option<i32>,
}

impl FaultPlan {
    /// A plan that fails nothing (yet) and counts the points.
    pub fn new() -> FaultPlan {
        FaultPlan::default()
    }

    fn rules(&self) -> std::sync::MutexGuard<'_, Rules> {
        self.0.rules.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes durability point `n` fail.
    pub fn fail_at(&self, n: u64) -> &FaultPlan {
        self.rules().at.push(n);
        self
    }

    /// Makes every durability point from `n` on fail, as a device that died would.
    pub fn fail_from(&self, n: u64) -> &FaultPlan {
        self.rules().from = Some(n);
        self
    }

    /// Reports failures as this OS error code (`libc::EIO` by default; `ENOSPC`, say).
    pub fn errno(&self, code: i32) -> &FaultPlan {
        self.rules().errno = Some(code);
        self
    }

    /// Durability points reached so far: the index the next one will have.
    pub fn points(&self) -> u64 {
        self.0.points.load(Ordering::SeqCst)
    }

    /// Failures injected so far, of durability points and of space reservations.
    pub fn injected(&self) -> u64 {
        self.0.injected.load(Ordering::SeqCst)
    }

    /// Makes every space reservation from the `n`th on (counted from 0, from the start of the
    /// create or open, as [`reservations`](Self::reservations) counts them) fail with `ENOSPC`,
    /// as on a full file system. `u64::MAX` makes none fail, so a test can free the disk again.
    pub fn fail_reservations_from(&self, n: u64) -> &FaultPlan {
        self.0.reservations_fail_from.store(n, Ordering::SeqCst);
        self
    }

    /// Space reservations reached so far: the index the next one will have. Each is one call
    /// to reserve disk blocks (on a file, one `posix_fallocate`).
    pub fn reservations(&self) -> u64 {
        self.0.reservations.load(Ordering::SeqCst)
    }

    /// Reaches the next space reservation: the error it fails with, if the plan says so.
    pub(crate) fn next_reservation(&self) -> Option<io::Error> {
        let n = self.0.reservations.fetch_add(1, Ordering::SeqCst);
        if n < self.0.reservations_fail_from.load(Ordering::SeqCst) {
            return None;
        }
        self.0.injected.fetch_add(1, Ordering::SeqCst);
        Some(io::Error::from_raw_os_error(libc::ENOSPC))
    }

    /// Reaches the next durability point: the error it fails with, if the plan says so.
    pub(crate) fn next_point(&self) -> Option<io::Error> {
        let n = self.0.points.fetch_add(1, Ordering::SeqCst);
        let rules = self.rules();
        if !(rules.at.contains(&n) || rules.from.is_some_and(|from| n >= from)) {
            return None;
        }
        self.0.injected.fetch_add(1, Ordering::SeqCst);
        Some(io::Error::from_raw_os_error(
            rules.errno.unwrap_or(libc::EIO),
        ))
    }
}

impl fmt::Debug for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rules = self.rules();
        f.debug_struct("FaultPlan")
            .field("points", &self.points())
            .field("injected", &self.injected())
            .field("fail_at", &rules.at)
            .field("fail_from", &rules.from)
            .field("reservations", &self.reservations())
            .field(
                "fail_reservations_from",
                &self.0.reservations_fail_from.load(Ordering::SeqCst),
            )
            .finish()
    }
}

/// A backing whose fences fail where a [`FaultPlan`] says.
pub(crate) struct Faulty<B> {
    inner: B,
    plan: FaultPlan,
    /// The first injected failure, kept until a caller that can report it asks.
    failure: Mutex<Option<io::Error>>,
}

impl<B: Persist> Faulty<B> {
    pub(crate) fn new(inner: B, plan: FaultPlan) -> Faulty<B> {
        Faulty {
            inner,
            plan,
            failure: Mutex::new(None),
        }
    }

    pub(crate) fn inner(&self) -> &B {
        &self.inner
    }

    pub(crate) fn plan(&self) -> &FaultPlan {
        &self.plan
    }
}

impl<B: Persist> Persist for Faulty<B> {
    fn flush(&self, offset: u64, len: u64) -> u64 {
        self.inner.flush(offset, len)
    }

    fn fence(&self) -> u64 {
        match self.plan.next_point() {
            None => self.inner.fence(),
            Some(e) => {
                self.inner.lose_pending();
                self.failure
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert(e);
                0
            }
        }
    }

    fn lose_pending(&self) {
        self.inner.lose_pending();
    }

    fn take_failure(&self) -> Option<io::Error> {
        let injected = self
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        // Take the backing's own failure too, so it is not reported again later.
        let own = self.inner.take_failure();
        injected.or(own)
    }

    fn mode(&self) -> FlushMode {
        self.inner.mode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::{PoolImage, SimDomain};

    fn word(image: &PoolImage, offset: usize) -> u64 {
        u64::from_le_bytes(image.as_bytes()[offset..offset + 8].try_into().unwrap())
    }

    #[test]
    fn a_failed_fence_persists_nothing_and_its_lines_stay_lost_until_flushed_again() {
        let mut image = PoolImage::zeroed(4096);
        let base = image.as_mut_ptr();
        // SAFETY: the image outlives the domain and is page-aligned.
        let sim = unsafe { SimDomain::new(base, 4096) };
        let plan = FaultPlan::new();
        plan.fail_at(1).errno(libc::ENOSPC);
        let faulty = Faulty::new(sim, plan.clone());
        let store = |offset: usize, v: u64| {
            // SAFETY: inside the image, aligned; nothing else touches it.
            unsafe { (base.add(offset) as *mut u64).write(v) }
        };
        store(0, 1);
        faulty.flush(0, 8);
        faulty.fence();
        assert!(faulty.take_failure().is_none());
        store(64, 2);
        faulty.flush(64, 8);
        faulty.fence();
        let failure = faulty.take_failure().expect("point 1 fails");
        assert_eq!(failure.raw_os_error(), Some(libc::ENOSPC));
        assert!(faulty.take_failure().is_none(), "reported once");
        faulty.fence();
        faulty.inner().crash_now(|cp| {
            assert_eq!(word(&cp.nothing_pending(), 0), 1);
            assert_eq!(word(&cp.nothing_pending(), 64), 0, "lost, not retried");
            assert_eq!(word(&cp.everything(), 64), 2, "still in memory");
        });
        assert_eq!((plan.points(), plan.injected()), (3, 1));
    }

    #[test]
    fn fail_from_fails_every_later_point() {
        let plan = FaultPlan::new();
        plan.fail_from(2);
        let failed: Vec<bool> = (0..5).map(|_| plan.next_point().is_some()).collect();
        assert_eq!(failed, [false, false, true, true, true]);
        assert_eq!(plan.injected(), 3);
    }
}
