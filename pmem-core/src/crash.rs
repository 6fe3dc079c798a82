//! Crash testing with the simulated persistence domain.
//!
//! [`CrashTest`] runs a workload on an in-memory pool over the simulated domain. At every fence
//! it takes the crash images a power cut could leave at that instant — nothing pending, every
//! store, and seeded random subsets of the pending and dirty words — opens each through the real
//! recovery path, and runs your invariant check on the result. Optionally it also crashes each
//! recovery at each of *its* fences and checks the result of recovering again.
//!
//! A failure names the fence index and the image (and seed), and [`CrashTest::image_at`] makes
//! that exact image again, so it can be debugged deterministically.
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::Arc;
//! use pmem_core::crash::CrashTest;
//! use pmem_core::{Persistent, Pool};
//!
//! #[derive(Persistent)]
//! #[repr(C)]
//! struct Counter { value: u64 }
//!
//! let committed = Arc::new(AtomicU64::new(0));
//! let seen = committed.clone();
//! let report = CrashTest::new(1 << 20).run::<Counter>(
//!     move |pool| {
//!         for _ in 0..20 {
//!             pool.transaction(|tx| {
//!                 let v = tx.root().value;
//!                 tx.root_mut().set_value(v + 1)
//!             })?;
//!             committed.fetch_add(1, Ordering::SeqCst);
//!         }
//!         Ok(())
//!     },
//!     move |pool, _at| {
//!         let done = seen.load(Ordering::SeqCst);
//!         let value = pool.read(|r| r.root().value).map_err(|e| e.to_string())?;
//!         // Either the transactions that returned, or one more that was in flight.
//!         if value == done || value == done + 1 { Ok(()) } else { Err(format!("value {value}, committed {done}")) }
//!     },
//! );
//! report.assert_ok();
//! assert!(report.fences > 20);
//! ```

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use crate::error::{Error, InvalidArgument, Result};
use crate::persist::sim::FenceHook;
use crate::persist::{CrashPoint, FaultPlan, PoolImage};
use crate::persistent::Persistent;
use crate::pool::Pool;

/// Which crash image of a crash point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageKind {
    /// Only what earlier fences made durable.
    NothingPending,
    /// Every store made so far.
    Everything,
    /// A random subset of the pending and dirty words, drawn from this seed.
    Random(u64),
}

impl fmt::Display for ImageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageKind::NothingPending => f.write_str("nothing-pending"),
            ImageKind::Everything => f.write_str("everything"),
            ImageKind::Random(seed) => write!(f, "random(seed {seed:#x})"),
        }
    }
}

/// Where a checked image came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashInfo {
    /// Fences the workload completed before the crash.
    pub fence: u64,
    /// The image taken at that fence.
    pub image: ImageKind,
    /// For a crash during recovery: the fence of the recovery and the image taken there.
    pub recovery: Option<(u64, ImageKind)>,
}

impl fmt::Display for CrashInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "crash at fence {} ({} image)", self.fence, self.image)?;
        if let Some((fence, image)) = self.recovery {
            write!(
                f,
                ", then a crash at recovery fence {fence} ({image} image)"
            )?;
        }
        Ok(())
    }
}

/// One image that failed to open or failed the check.
#[derive(Debug, Clone)]
pub struct CrashFailure {
    /// Where the image came from.
    pub at: CrashInfo,
    /// The open error, the check's message, or the panic message.
    pub message: String,
}

impl fmt::Display for CrashFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// What a [`CrashTest`] run found.
#[derive(Debug, Clone, Default)]
pub struct CrashReport {
    /// Fences the workload made.
    pub fences: u64,
    /// Images opened and checked.
    pub images: u64,
    /// Images that failed, up to the test's limit.
    pub failures: Vec<CrashFailure>,
    /// Failures beyond the limit, counted but not kept.
    pub more_failures: u64,
    /// The workload's own error, if it returned one.
    pub workload_error: Option<String>,
}

impl CrashReport {
    /// Whether every image passed and the workload succeeded.
    pub fn is_ok(&self) -> bool {
        self.failures.is_empty() && self.workload_error.is_none()
    }

    /// Panics with every failure if there is any.
    #[track_caller]
    pub fn assert_ok(&self) {
        if !self.is_ok() {
            panic!("crash test failed:\n{self}");
        }
    }
}

impl fmt::Display for CrashReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} fences, {} images checked, {} failed",
            self.fences,
            self.images,
            self.failures.len() as u64 + self.more_failures
        )?;
        if let Some(e) = &self.workload_error {
            writeln!(f, "workload error: {e}")?;
        }
        for failure in &self.failures {
            writeln!(f, "  {failure}")?;
        }
        if self.more_failures > 0 {
            writeln!(f, "  ... and {} more", self.more_failures)?;
        }
        Ok(())
    }
}

/// A crash test: pool size, how many images per fence, and whether to crash recovery too.
#[derive(Debug, Clone)]
pub struct CrashTest {
    pool_size: u64,
    random_subsets: u32,
    seed: u64,
    recovery_crashes: bool,
    max_failures: usize,
    every: u64,
    faults: Option<FaultPlan>,
    log_writes: Option<crate::LogWrites>,
}

/// The check run on every recovered image.
pub type Check<R> = dyn Fn(&Pool<R>, &CrashInfo) -> Result<(), String> + Send + Sync;

impl CrashTest {
    /// A test on a simulated pool of `pool_size` bytes, taking at every fence the nothing-pending
    /// image, the everything image and 3 random subsets.
    pub fn new(pool_size: u64) -> CrashTest {
        CrashTest {
            pool_size,
            random_subsets: 3,
            seed: 0x5eed,
            recovery_crashes: false,
            max_failures: 10,
            every: 1,
            faults: None,
            log_writes: None,
        }
    }

    /// Random-subset images per fence (default 3).
    pub fn random_subsets(mut self, n: u32) -> Self {
        self.random_subsets = n;
        self
    }

    /// Base seed of the random subsets (default fixed, so runs repeat).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Also crash every recovery at each of its fences and check the pool recovered from that.
    pub fn crash_during_recovery(mut self, on: bool) -> Self {
        self.recovery_crashes = on;
        self
    }

    /// How many failures to keep in the report (default 10).
    pub fn max_failures(mut self, n: usize) -> Self {
        self.max_failures = n;
        self
    }

    /// Checks only every `n`-th fence (default 1: all of them). For quick local runs.
    pub fn every_nth_fence(mut self, n: u64) -> Self {
        self.every = n.max(1);
        self
    }

    /// Fails the workload's durability points that `plan` names (counted from the pool's
    /// creation, whose own fences come first): a failed fence makes nothing durable, so the
    /// crash images then show what a program that got the error is left with. See
    /// [`FaultPlan`].
    pub fn fault_plan(mut self, plan: FaultPlan) -> Self {
        self.faults = Some(plan);
        self
    }

    /// Writes log lines as `log_writes` says, in the workload and in the recoveries that are
    /// crashed (default: non-temporal, modelled as durable at the next fence with no flush;
    /// [`LogWrites::Flushed`](crate::LogWrites::Flushed) is what CPUs that do not stream use).
    pub fn log_writes(mut self, log_writes: crate::LogWrites) -> Self {
        self.log_writes = Some(log_writes);
        self
    }

    /// A builder for a simulated pool written as this test asks.
    fn sim_builder<R: Persistent>(&self) -> crate::PoolBuilder<R> {
        let builder = Pool::<R>::builder();
        match self.log_writes {
            Some(log_writes) => builder.log_writes(log_writes),
            None => builder,
        }
    }

    /// A builder for the workload's pool, with the fault plan if there is one.
    fn builder<R: Persistent>(&self) -> crate::PoolBuilder<R> {
        let builder = self.sim_builder::<R>();
        match &self.faults {
            Some(plan) => builder.fault_plan(plan.clone()),
            None => builder,
        }
    }

    fn seed_for(&self, fence: u64, i: u32) -> u64 {
        crate::persist::sim::SplitMix64(
            self.seed ^ fence.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i as u64,
        )
        .next()
    }

    fn kinds(&self, fence: u64) -> Vec<ImageKind> {
        let mut kinds = vec![ImageKind::NothingPending, ImageKind::Everything];
        kinds.extend((0..self.random_subsets).map(|i| ImageKind::Random(self.seed_for(fence, i))));
        kinds
    }

    /// Runs `workload` on a fresh simulated pool, checking every crash image with `check`.
    /// The check also runs on the final state, as if the machine crashed after the workload.
    pub fn run<R: Persistent>(
        &self,
        workload: impl FnOnce(&Pool<R>) -> Result<()>,
        check: impl Fn(&Pool<R>, &CrashInfo) -> Result<(), String> + Send + Sync + 'static,
    ) -> CrashReport {
        let check: Arc<Check<R>> = Arc::new(check);
        let report = Arc::new(Mutex::new(CrashReport::default()));
        let pool = match self.builder::<R>().create_simulated(self.pool_size) {
            Ok(pool) => pool,
            Err(e) => {
                return CrashReport {
                    workload_error: Some(format!("creating the pool: {e}")),
                    ..Default::default()
                }
            }
        };
        let sim = pool.shared().media.domain.sim().expect("a simulated pool");
        let hook = {
            let test = self.clone();
            let check = Arc::clone(&check);
            let report = Arc::clone(&report);
            Box::new(move |point: &CrashPoint<'_>| {
                let fence = point.fence_index();
                if fence % test.every == 0 {
                    test.check_point(point, fence, &check, &report);
                }
            }) as FenceHook
        };
        sim.set_hook(Some(hook));
        let outcome = workload(&pool);
        sim.set_hook(None);
        let fences = sim.fences();
        sim.crash_now(|point| self.check_point(point, fences, &check, &report));
        drop(pool);
        let mut report = Arc::try_unwrap(report)
            .map_or_else(|r| r.lock().unwrap().clone(), |m| m.into_inner().unwrap());
        report.fences = fences;
        if let Err(e) = outcome {
            report.workload_error = Some(e.to_string());
        }
        report
    }

    fn check_point<R: Persistent>(
        &self,
        point: &CrashPoint<'_>,
        fence: u64,
        check: &Arc<Check<R>>,
        report: &Arc<Mutex<CrashReport>>,
    ) {
        for kind in self.kinds(fence) {
            let image = image_of(point, kind);
            let at = CrashInfo {
                fence,
                image: kind,
                recovery: None,
            };
            if self.recovery_crashes {
                self.check_recovery_crashes(image.clone(), at, check, report);
            }
            let result = check_image(image, &at, check);
            record(report, at, result, self.max_failures);
        }
    }

    /// Opens `image` with a hook that, at each fence of the open, checks the images a crash there
    /// would leave.
    fn check_recovery_crashes<R: Persistent>(
        &self,
        image: PoolImage,
        outer: CrashInfo,
        check: &Arc<Check<R>>,
        report: &Arc<Mutex<CrashReport>>,
    ) {
        let hook = {
            let test = self.clone();
            let check = Arc::clone(check);
            let report = Arc::clone(report);
            Box::new(move |point: &CrashPoint<'_>| {
                let fence = point.fence_index();
                for kind in [
                    ImageKind::NothingPending,
                    ImageKind::Everything,
                    ImageKind::Random(test.seed_for(fence, 99)),
                ] {
                    let at = CrashInfo {
                        recovery: Some((fence, kind)),
                        ..outer
                    };
                    let result = check_image(image_of(point, kind), &at, &check);
                    record(&report, at, result, test.max_failures);
                }
            }) as FenceHook
        };
        // The recovery itself is checked by the caller; here only its crash images matter.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            self.sim_builder::<R>().open_image_with_hook(image, hook)
        }));
    }

    /// Makes again the image that a failure names: runs `workload` on a fresh pool and returns
    /// the `kind` image at fence `fence` (the fence count at the end for the final state).
    pub fn image_at<R: Persistent>(
        &self,
        workload: impl FnOnce(&Pool<R>) -> Result<()>,
        fence: u64,
        kind: ImageKind,
    ) -> Result<PoolImage> {
        let pool = self.builder::<R>().create_simulated(self.pool_size)?;
        let sim = pool.shared().media.domain.sim().expect("a simulated pool");
        let found: Arc<Mutex<Option<PoolImage>>> = Arc::default();
        let slot = Arc::clone(&found);
        sim.set_hook(Some(Box::new(move |point: &CrashPoint<'_>| {
            if point.fence_index() == fence {
                *slot.lock().unwrap() = Some(image_of(point, kind));
            }
        })));
        let outcome = workload(&pool);
        sim.set_hook(None);
        if sim.fences() == fence {
            *found.lock().unwrap() = Some(sim.crash_now(|point| image_of(point, kind)));
        }
        outcome?;
        let image = found.lock().unwrap().take();
        image.ok_or_else(|| {
            Error::invalid_argument(pool.location(), InvalidArgument::NoSuchFence { fence })
        })
    }
}

fn image_of(point: &CrashPoint<'_>, kind: ImageKind) -> PoolImage {
    match kind {
        ImageKind::NothingPending => point.nothing_pending(),
        ImageKind::Everything => point.everything(),
        ImageKind::Random(seed) => point.random_subset(seed),
    }
}

/// Opens `image` through the real recovery path and runs the check, turning panics into failures.
fn check_image<R: Persistent>(
    image: PoolImage,
    at: &CrashInfo,
    check: &Arc<Check<R>>,
) -> Result<(), String> {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let pool = Pool::<R>::builder()
            .open_image_unchecked(image)
            .map_err(|e| format!("open failed: {e}"))?;
        check(&pool, at)
    }));
    match outcome {
        Ok(result) => result,
        Err(panic) => Err(format!(
            "panicked: {}",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or(panic.downcast_ref::<&str>().copied())
                .unwrap_or("?")
        )),
    }
}

fn record(report: &Mutex<CrashReport>, at: CrashInfo, result: Result<(), String>, max: usize) {
    let mut report = report.lock().unwrap_or_else(|e| e.into_inner());
    report.images += 1;
    if let Err(message) = result {
        if report.failures.len() < max {
            report.failures.push(CrashFailure { at, message });
        } else {
            report.more_failures += 1;
        }
    }
}
