//! Crash test of the hash map: at every fence of a random workload (inserts, replacements,
//! removals, resizes, multi-operation and aborted transactions), every crash image recovers to a
//! map whose chains are well formed and whose contents are exactly the committed operations,
//! with nothing leaked.

mod common;

use common::{map_workload, run_map_crash_test};
use pmem_core::crash::CrashTest;
use pmem_examples::hashmap::PHashMap;

/// About 200 operations over 150 keys: the map grows from 16 to 128 buckets along the way.
#[test]
fn random_operations_survive_every_crash() {
    run_map_crash_test::<PHashMap>(CrashTest::new(2 << 20), map_workload(1, 200, 150));
}

/// A short run that also crashes every recovery at each of its own fences.
#[test]
fn crash_during_recovery() {
    run_map_crash_test::<PHashMap>(
        CrashTest::new(1 << 20)
            .random_subsets(1)
            .crash_during_recovery(true),
        map_workload(2, 30, 20),
    );
}
