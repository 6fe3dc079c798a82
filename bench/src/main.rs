//! `pmem-bench <workload>`: the PMDK baseline workloads (see `shared/bench/pmdk/README.md`)
//! on pmem, with the same knobs, pool size and placement, timing and output line as the C
//! harness `pmdk_bench`, plus the flush and fence counts of each timed loop.
//!
//! Workloads: `create | w1 | w2 | w3 | w4 | w5 | w6 | w7`; `prim` (the cost of each way to
//! make a line durable on this CPU: see `primitives.rs`); the pmem-collections containers
//! `vec | queue | string`; `w5g` (W5 through the generic `PHashMap`) and `btree` (the same keys
//! through `PBTreeMap`). Environment: `N`, `REPS`,
//! `POOL_DIR`, `POOL_SIZE`, `W6_OBJS`, as for `pmdk_bench`; `FLUSH_MODE` (`clwb`,
//! `clflushopt`, `clflush`, `eadr`, `msync`) overrides the forced-pmem default, which is the
//! CPU's best cache flush.

mod alloc;
mod coll_map;
mod coll_seq;
mod common;
mod hashmap;
mod lifecycle;
mod primitives;
mod threads;
mod update;

use std::process::ExitCode;

use clap::Parser;
use common::Env;

const KNOBS: &str = "\
Environment:
  N          operations per timed loop (default 1000000)
  REPS       timed repetitions (default 5)
  POOL_DIR   where the pool files go (default /dev/shm)
  POOL_SIZE  pool size in bytes (default 1 GiB)
  W6_OBJS    live objects of the w6 workload (default 1000000)
  FLUSH_MODE clwb, clflushopt, clflush, eadr or msync (default: the CPU's best cache flush, forced)
  LOG_WRITES nt or flushed: how log lines are written (default: what the CPU's strategy chooses)";

/// Runs one of the PMDK baseline workloads on pmem and prints its timing line.
#[derive(Debug, Parser)]
#[command(name = "pmem-bench", after_help = KNOBS)]
struct Args {
    /// The workload.
    #[arg(value_parser = [
        "create", "w1", "w2", "w3", "w4", "w5", "w6", "w7", "prim", "vec", "queue", "string", "w5g",
        "btree",
    ])]
    workload: String,
}

fn main() -> ExitCode {
    let workload = Args::parse().workload;
    let env = Env::from_env();
    let result = match workload.as_str() {
        "create" => lifecycle::run_create(&env),
        "w1" => update::run(&env, 1),
        "w2" => update::run(&env, 2),
        "w3" => alloc::run_w3(&env),
        "w4" => alloc::run_w4(&env),
        "w5" => hashmap::run(&env),
        "w6" => lifecycle::run_w6(&env),
        "w7" => threads::run(&env),
        "prim" => primitives::run(&env),
        "vec" => coll_seq::run_vec(&env),
        "queue" => coll_seq::run_queue(&env),
        "string" => coll_seq::run_string(&env),
        "w5g" => coll_map::run(&env, coll_map::Which::Hash),
        "btree" => coll_map::run(&env, coll_map::Which::Tree),
        other => unreachable!("clap accepts only the workloads above, not {other}"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("FATAL: {workload}: {e}");
            ExitCode::FAILURE
        }
    }
}
