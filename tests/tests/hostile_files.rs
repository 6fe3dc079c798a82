//! Hostile pool files: valid pools (empty; objects of several types and sizes, in runs and
//! spans; a long list; transactions interrupted mid-way, one with a log extended into the heap)
//! damaged at the level of the on-media structures, with the checksums recomputed so the damage
//! gets through (see `pmem_tests::hostile`). Every case is opened, checked, read through the safe
//! API, written and reopened in a child process, and must end in Ok or a clean error: never a
//! signal, panic, hang, or a heap that disagrees with what was written.
//!
//! `PMEM_HOSTILE_CASES` sets the number of cases, `PMEM_TEST_SEED` the seed, and
//! `PMEM_HOSTILE_SAVE` a directory to keep failing inputs in (sparse form), for
//! `tests/hostile-regressions/`, which [`kept_inputs_pass`] replays.

use std::path::{Path, PathBuf};
use std::time::Instant;

use pmem_tests::child;
use pmem_tests::hostile::{batch, seeds};
use pmem_tests::rng::Rng;

const CHILD: &str = "child_task";
const DEFAULT_CASES: u64 = 10_000;
const BATCH: usize = 500;
const WORKERS: usize = 2;

/// The child: runs the cases of its batch.
#[test]
fn child_task() {
    let Some((task, dir)) = child::task() else {
        return;
    };
    assert_eq!(task, "hostile", "unknown child task");
    batch::child_main(&dir);
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

/// Runs `lines`, prints what happened, saves failing inputs, and fails listing every distinct
/// failure.
fn run_and_judge(what: &str, dir: &Path, lines: Vec<String>) {
    let n = lines.len();
    let start = Instant::now();
    let summary = batch::run(CHILD, dir, lines, BATCH, WORKERS);
    let elapsed = start.elapsed();
    eprintln!(
        "{what}: {} cases in {elapsed:.1?} ({} child processes): {:?}",
        summary.cases, summary.children, summary.outcomes
    );
    assert!(summary.cases as usize >= n, "every case ran");
    if summary.failures.is_empty() {
        return;
    }
    let keep = std::env::var_os("PMEM_HOSTILE_SAVE")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("pmem-hostile-failures"));
    let saved = batch::save_failures(dir, &summary.failures, &keep, 2);
    panic!(
        "{} of {} cases failed ({} inputs kept in {}):\n{}",
        summary.failures.len(),
        summary.cases,
        saved.len(),
        keep.display(),
        batch::describe_failures(dir, &summary.failures)
    );
}

#[test]
fn damaged_pools_open_cleanly_or_are_refused() {
    let _lock = child::spawning();
    let seed = env_u64("PMEM_TEST_SEED").unwrap_or(0x4057_11e5);
    let cases = env_u64("PMEM_HOSTILE_CASES").unwrap_or(DEFAULT_CASES);
    eprintln!("seed {seed} (set PMEM_TEST_SEED to replay), {cases} cases");
    let dir = pmem_tests::shm_tempdir("pmem-hostile-");
    let pools = write_seed_pools(dir.path());
    let mut rng = Rng(seed);
    let lines = (0..cases)
        .map(|i| format!("gen {} {}", i as usize % pools, rng.next_u64()))
        .collect();
    run_and_judge("hostile files", dir.path(), lines);
}

/// Builds the valid pools the `gen` cases damage into `dir`; returns how many there are.
fn write_seed_pools(dir: &Path) -> usize {
    let start = Instant::now();
    let seeds = seeds::build(dir, false);
    for (i, s) in seeds.iter().enumerate() {
        std::fs::write(batch::seed_path(dir, i), &s.bytes).unwrap();
        let digest = batch::seed_path(dir, i).with_extension("digest");
        std::fs::write(digest, &s.digest).unwrap();
        eprintln!("seed pool {i}: {} ({} bytes)", s.name, s.bytes.len());
    }
    eprintln!("seed pools built in {:.1?}", start.elapsed());
    seeds.len()
}

/// The case a kept failure's description names (`seed pool N, case seed S: ...`), as a `gen`
/// line: the damage is made again on today's seed pools, so the case survives format changes.
fn gen_line(description: &str) -> Option<String> {
    let rest = description.strip_prefix("seed pool ")?;
    let (pool, rest) = rest.split_once(", case seed ")?;
    let seed = rest.split(':').next()?;
    Some(format!(
        "gen {} {}",
        pool.parse::<usize>().ok()?,
        seed.parse::<u64>().ok()?
    ))
}

/// Every input kept from an earlier failure (`tests/hostile-regressions/`, and the fuzz targets'
/// `fuzz/regressions/<target>/`) runs through the code that failed on it.
#[test]
fn kept_inputs_pass() {
    let _lock = child::spawning();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut lines = Vec::new();
    let mut add = |target: &str, dir: PathBuf| {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.extension()
                        .is_none_or(|e| e != "txt" && e != "md" && e != "digest")
            })
            .collect();
        files.sort();
        for f in files {
            lines.push(format!("file {target} {}", f.display()));
        }
    };
    add("case", root.join("hostile-regressions"));
    for target in ["open", "check", "inspect"] {
        add(target, root.join("../fuzz/regressions").join(target));
    }
    let mut descriptions: Vec<PathBuf> = std::fs::read_dir(root.join("hostile-regressions"))
        .expect("tests/hostile-regressions")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    descriptions.sort();
    let generated = descriptions.len();
    for path in descriptions {
        let text = std::fs::read_to_string(&path).unwrap();
        let line = gen_line(&text)
            .unwrap_or_else(|| panic!("{} does not name a seed pool and case", path.display()));
        lines.push(line);
    }
    eprintln!(
        "{} kept inputs ({generated} made again from their seeds)",
        lines.len()
    );
    assert!(generated > 0, "the kept cases are found");
    let dir = pmem_tests::shm_tempdir("pmem-kept-");
    write_seed_pools(dir.path());
    run_and_judge("kept inputs", dir.path(), lines);
}

/// The generator's idea of the log format is the library's: resealing every valid entry of the
/// interrupted transactions' logs changes no byte, so a resealed mutation is a real forgery.
#[test]
fn resealing_the_valid_entries_of_a_log_changes_nothing() {
    use pmem_tests::hostile::format;
    let dir = pmem_tests::shm_tempdir("pmem-reseal-");
    let mut sealed = 0;
    for seed in seeds::build(dir.path(), false) {
        for slot in 0..2 {
            for entry in format::entries(&seed.bytes, slot) {
                let mut bytes = seed.bytes.clone();
                format::seal_entry(&mut bytes, entry.at);
                if bytes == seed.bytes {
                    sealed += 1;
                }
            }
        }
    }
    // Every seed pool has a retired log at least; the interrupted ones have several entries.
    assert!(
        sealed >= 10,
        "only {sealed} entries kept their checksum when resealed"
    );
}
