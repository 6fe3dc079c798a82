//! The workloads (F1-F4, F1-shm of `shared/bench/files/README.md`), the systems, and how many
//! transactions one run does.

use crate::error::UsageError;

/// One workload of the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Transactions each incrementing one u64 counter.
    F1,
    /// Transactions each inserting one new key into an index.
    F2,
    /// Transactions each inserting a batch of new keys (1,000 by default) into the index.
    F3,
    /// Two threads, each doing F1-style transactions on its own counter.
    F4,
    /// F1 with every store on tmpfs (pmem with forced cache-line flushes): the CPU cost of a
    /// commit.
    F1Shm,
}

impl Workload {
    /// Every workload, in the README's order.
    pub const ALL: [Workload; 5] = [
        Workload::F1,
        Workload::F2,
        Workload::F3,
        Workload::F4,
        Workload::F1Shm,
    ];

    /// The README's name.
    ///
    /// ```
    /// # use pmem_files_bench::spec::Workload;
    /// assert_eq!(Workload::F1Shm.name(), "F1-shm");
    /// assert_eq!(Workload::parse("f1-shm"), Ok(Workload::F1Shm));
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Workload::F1 => "F1",
            Workload::F2 => "F2",
            Workload::F3 => "F3",
            Workload::F4 => "F4",
            Workload::F1Shm => "F1-shm",
        }
    }

    /// The workload named `s` (case-insensitive).
    pub fn parse(s: &str) -> Result<Workload, UsageError> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UsageError::UnknownWorkload(s.to_string()))
    }

    /// What the workload does to the store: bump counters or insert keys.
    pub fn shape(self) -> Shape {
        match self {
            Workload::F1 | Workload::F1Shm => Shape::Counters { threads: 1 },
            Workload::F4 => Shape::Counters { threads: 2 },
            Workload::F2 | Workload::F3 => Shape::Inserts,
        }
    }

    /// The README's transaction count (per thread for F4) and keys per transaction.
    pub fn default_plan(self) -> Plan {
        match self {
            Workload::F1 | Workload::F1Shm | Workload::F2 => Plan {
                tx: 10_000,
                batch: 1,
            },
            Workload::F3 => Plan {
                tx: 100,
                batch: 1_000,
            },
            Workload::F4 => Plan {
                tx: 5_000,
                batch: 1,
            },
        }
    }

    /// Where the stores' files go unless `DIR` says otherwise: a disk file system, or tmpfs for
    /// F1-shm.
    pub fn default_dir(self) -> &'static str {
        match self {
            Workload::F1Shm => "/dev/shm",
            _ => "/var/tmp",
        }
    }
}

/// What the transactions of a workload do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Each transaction reads a counter and writes it plus one; `threads` threads, each on its
    /// own counter.
    Counters {
        /// Threads, each with its own counter.
        threads: usize,
    },
    /// Each transaction inserts `batch` new keys with 24-byte values.
    Inserts,
}

/// How much one run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Transactions (per thread, for the counter workloads with more than one thread).
    pub tx: u64,
    /// Keys inserted per transaction (index workloads only).
    pub batch: u64,
}

/// One of the stores compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// A pmem pool: counters in the root, the index a `PHashMap`.
    Pmem,
    /// A pmem pool with a `PBTreeMap` as the index (index workloads only).
    PmemBtree,
    /// redb, `Durability::Immediate`.
    Redb,
    /// LMDB through heed, default environment flags.
    Lmdb,
    /// SQLite, `journal_mode=WAL`, `synchronous=FULL`.
    SqliteWal,
    /// SQLite, the default rollback journal, `synchronous=FULL`.
    SqliteRollback,
}

impl System {
    /// Every system.
    pub const ALL: [System; 6] = [
        System::Pmem,
        System::PmemBtree,
        System::Redb,
        System::Lmdb,
        System::SqliteWal,
        System::SqliteRollback,
    ];

    /// The name in the result lines.
    ///
    /// ```
    /// # use pmem_files_bench::spec::System;
    /// assert_eq!(System::parse("sqlite-wal"), Ok(System::SqliteWal));
    /// assert_eq!(System::SqliteWal.name(), "sqlite-wal");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            System::Pmem => "pmem",
            System::PmemBtree => "pmem-btree",
            System::Redb => "redb",
            System::Lmdb => "lmdb",
            System::SqliteWal => "sqlite-wal",
            System::SqliteRollback => "sqlite-rollback",
        }
    }

    /// The system named `s`.
    pub fn parse(s: &str) -> Result<System, UsageError> {
        System::ALL
            .into_iter()
            .find(|sys| sys.name() == s)
            .ok_or_else(|| UsageError::UnknownSystem(s.to_string()))
    }

    /// Whether this system runs `workload` (pmem-btree is a second index, so it runs only the
    /// index workloads).
    pub fn runs(self, workload: Workload) -> bool {
        self != System::PmemBtree || workload.shape() == Shape::Inserts
    }
}
