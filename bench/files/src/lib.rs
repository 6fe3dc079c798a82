//! The file workloads of `shared/bench/files/README.md` (F1-F4, F1-shm): durable transactions
//! on an ordinary file system, pmem against redb, LMDB (heed) and SQLite (rusqlite), every
//! commit fully durable. The binary `pmem-files-bench` runs one workload on one system and
//! prints one line; `bench/files.sh` runs them all, counts their syncs under strace and prints
//! the medians.
//!
//! ```no_run
//! use pmem_files_bench::{run_one, spec::{System, Workload}};
//! let plan = Workload::F1.default_plan();
//! let outcome = run_one(Workload::F1, System::Redb, plan, "/var/tmp".as_ref(), 128 << 20)?;
//! println!("{:.0} tx/s", outcome.outcome.tx_per_s());
//! # Ok::<(), pmem_files_bench::error::BenchError>(())
//! ```

pub mod error;
pub mod keys;
pub mod run;
pub mod spec;
pub mod stores;

use std::path::{Path, PathBuf};

use error::{Result, UsageError};
use run::{Counters, Index, Outcome};
use spec::{Plan, Shape, System, Workload};
use stores::pmem::{MapKind, PmemCounters, PmemIndex, PoolConfig};
use stores::sqlite::Journal;

/// One run's result: the timed loop and the store's settings.
#[derive(Debug, Clone)]
pub struct Report {
    /// What the timed loop did.
    pub outcome: Outcome,
    /// The store's durability settings, as `key=value` fields.
    pub settings: String,
}

/// Runs `workload` on `system` in a new directory under `parent`, removed afterwards, and
/// returns what the timed loop did. `pool_size` is the pmem pool's size.
pub fn run_one(
    workload: Workload,
    system: System,
    plan: Plan,
    parent: &Path,
    pool_size: u64,
) -> Result<Report> {
    let dir = RunDir::create(parent, system)?;
    let config = PoolConfig {
        size: pool_size,
        force_pmem: workload == Workload::F1Shm,
    };
    match workload.shape() {
        Shape::Counters { threads } => {
            let counters = |store: &dyn CountersDyn| store.run(threads, plan);
            match system {
                System::Pmem => counters(&PmemCounters::create(&dir.0, config)?),
                System::Redb => counters(&stores::redb::Redb::create(&dir.0)?),
                System::Lmdb => counters(&stores::lmdb::Lmdb::create(&dir.0)?),
                System::SqliteWal => {
                    counters(&stores::sqlite::Sqlite::create(&dir.0, Journal::Wal)?)
                }
                System::SqliteRollback => {
                    counters(&stores::sqlite::Sqlite::create(&dir.0, Journal::Rollback)?)
                }
                System::PmemBtree => Err(UsageError::Unsupported {
                    workload: workload.name(),
                    system: system.name(),
                }
                .into()),
            }
        }
        Shape::Inserts => {
            let keys = keys::scattered(plan.tx * plan.batch.max(1));
            match system {
                System::Pmem => inserts(
                    PmemIndex::create(&dir.0, config, MapKind::Hash)?,
                    &keys,
                    plan,
                ),
                System::PmemBtree => inserts(
                    PmemIndex::create(&dir.0, config, MapKind::BTree)?,
                    &keys,
                    plan,
                ),
                System::Redb => inserts(stores::redb::Redb::create(&dir.0)?, &keys, plan),
                System::Lmdb => inserts(stores::lmdb::Lmdb::create(&dir.0)?, &keys, plan),
                System::SqliteWal => inserts(
                    stores::sqlite::Sqlite::create(&dir.0, Journal::Wal)?,
                    &keys,
                    plan,
                ),
                System::SqliteRollback => inserts(
                    stores::sqlite::Sqlite::create(&dir.0, Journal::Rollback)?,
                    &keys,
                    plan,
                ),
            }
        }
    }
}

/// The counter loop over any store, so `run_one` can pick the store at run time; the loop
/// itself is generic (monomorphised per store), only this entry is a virtual call.
trait CountersDyn {
    fn run(&self, threads: usize, plan: Plan) -> Result<Report>;
}

impl<C: Counters> CountersDyn for C {
    fn run(&self, threads: usize, plan: Plan) -> Result<Report> {
        Ok(Report {
            outcome: run::counters(self, threads, plan)?,
            settings: self.settings(),
        })
    }
}

fn inserts<I: Index>(mut store: I, keys: &[u64], plan: Plan) -> Result<Report> {
    Ok(Report {
        outcome: run::inserts(&mut store, keys, plan)?,
        settings: store.settings(),
    })
}

/// A directory of one run's files, removed with everything in it when dropped (after the
/// store, which is dropped first: stores are created after it).
struct RunDir(PathBuf);

impl RunDir {
    fn create(parent: &Path, system: System) -> Result<RunDir> {
        let dir = parent.join(format!(
            "pmem-files-bench-{}-{}",
            system.name(),
            std::process::id()
        ));
        std::fs::create_dir(&dir)?;
        Ok(RunDir(dir))
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        // Best effort: a leftover directory is named after the process that made it.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
