//! Running hostile cases in child processes, in batches, so that a signal (SIGSEGV, SIGBUS,
//! abort) or a hang ends one child, not the test, and is reported naming the case.
//!
//! A case is one line: `gen <seed> <case-seed>` (seed pool number `seed` in the work directory,
//! damaged by [`mutate`](super::mutate::mutate) with `case-seed`) or `file <target> <path>` (an
//! input kept from an earlier failure, run through target `target`: `case` for
//! [`run_file`](super::case::run_file), or a fuzz target's name). The child reports every case's
//! outcome as it finishes; when a child dies or stops reporting, the parent runs the case it was
//! on again alone, to tell a case that fails by itself from damage left by an earlier one, and
//! goes on with the rest of the batch in a new child.

use std::fmt::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{case, mutate, sparse, targets};
use crate::child::{self, Ended};
use crate::rng::Rng;

/// Environment variable naming the batch file a child runs.
pub const BATCH_VAR: &str = "PMEM_HOSTILE_BATCH";
/// Prefix of the line a child prints to stderr for every panic.
const PANIC_PREFIX: &str = "pmem-child-panic: ";
/// How long one case may take before it counts as a hang.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(20);

/// A case's input: the image and how it was made.
#[derive(Debug)]
pub struct Input {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// The seed and the damage, or the file.
    pub description: String,
    /// The target to run it through.
    pub target: String,
    /// The digest the pool must open to, if it opens (see [`case::run_file`]).
    pub expect: Option<String>,
}

/// The seed pool file `i` in `dir`.
pub fn seed_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("seed-{i}.pool"))
}

/// Builds the input a case line describes.
pub fn materialize(dir: &Path, line: &str) -> Input {
    let parts: Vec<&str> = line.splitn(3, ' ').collect();
    match parts.as_slice() {
        ["gen", seed, case_seed] => {
            let seed: usize = seed.parse().expect("a seed number");
            let case_seed: u64 = case_seed.parse().expect("a case seed");
            let mut bytes = std::fs::read(seed_path(dir, seed)).expect("read a seed pool");
            let damage = mutate::mutate(&mut bytes, &mut Rng(case_seed));
            let expect = damage
                .log_middle_only
                .then(|| {
                    std::fs::read_to_string(seed_path(dir, seed).with_extension("digest")).ok()
                })
                .flatten();
            Input {
                bytes,
                description: format!(
                    "seed pool {seed}, case seed {case_seed}: {}",
                    damage.description
                ),
                target: "case".to_string(),
                expect,
            }
        }
        ["file", target, path] => Input {
            bytes: sparse::decode(&std::fs::read(path).expect("read a kept input")),
            description: format!("kept input {path}"),
            target: target.to_string(),
            expect: std::fs::read_to_string(Path::new(path).with_extension("digest")).ok(),
        },
        _ => panic!("not a case line: {line}"),
    }
}

fn one_line(s: &str) -> String {
    s.replace('\n', " | ")
}

/// The child: runs every case of its batch file, reporting `case=<index>:<outcome>`, then
/// `batch=done`. A panic is caught and reported as the case's failure.
pub fn child_main(dir: &Path) {
    let batch = std::env::var(BATCH_VAR).expect("a batch file");
    let text = std::fs::read_to_string(&batch).expect("read the batch file");
    let last_panic: Arc<Mutex<Option<String>>> = Arc::default();
    {
        let last_panic = Arc::clone(&last_panic);
        std::panic::set_hook(Box::new(move |info| {
            let msg = info.to_string();
            // Also on stderr: a panic that aborts the process is read back from there.
            eprintln!("{PANIC_PREFIX}{}", one_line(&msg));
            *last_panic.lock().unwrap_or_else(|e| e.into_inner()) = Some(msg);
        }));
    }
    let case_path = dir.join(format!("case-{}.pool", std::process::id()));
    for (i, line) in text.lines().enumerate() {
        let input = materialize(dir, line);
        let result = catch_unwind(AssertUnwindSafe(|| {
            if input.target == "case" {
                case::run_file(&input.bytes, &case_path, input.expect.as_deref())
                    .map(|o| format!("{o:?}"))
            } else {
                let target = targets::by_name(&input.target).expect("a known target");
                target(&input.bytes);
                Ok("ran".to_string())
            }
        }));
        let outcome = match result {
            Ok(Ok(o)) => format!("ok {o}"),
            Ok(Err(e)) => format!("fail disagreement: {}", one_line(&e)),
            Err(_) => {
                let msg = last_panic
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take()
                    .unwrap_or_default();
                format!("fail panic: {}", one_line(&msg))
            }
        };
        child::report("case", format!("{i}:{outcome}"));
    }
    let _ = std::fs::remove_file(&case_path);
    child::report("batch", "done");
}

/// A case that did not end in Ok or a clean error.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Its line.
    pub line: String,
    /// How it failed.
    pub what: String,
}

/// What a run of cases found.
#[derive(Debug, Default)]
pub struct Summary {
    /// Cases run.
    pub cases: u64,
    /// Outcomes and how often.
    pub outcomes: std::collections::BTreeMap<String, u64>,
    /// The failures.
    pub failures: Vec<Failure>,
    /// Child processes started.
    pub children: u64,
}

/// Runs `lines` from index `from` in one child of test `test`; returns the index it stopped
/// at (all done, or the case it died or hung on) and how it ended there.
fn run_child(
    test: &str,
    dir: &Path,
    batch_file: &Path,
    lines: &[String],
    summary: &Mutex<Summary>,
) -> Result<(), (usize, String)> {
    std::fs::write(batch_file, lines.join("\n")).expect("write a batch file");
    let mut cmd = child::command(test, "hostile", dir);
    cmd.env(BATCH_VAR, batch_file);
    let mut running = child::Running::start(&mut cmd);
    summary.lock().unwrap().children += 1;
    let mut next = 0;
    while next < lines.len() {
        match running.try_wait_for("case", CASE_TIMEOUT) {
            Ok(v) => {
                let (i, outcome) = v.split_once(':').expect("index:outcome");
                let i: usize = i.parse().expect("a case index");
                assert_eq!(i, next, "the child runs its cases in order");
                let mut s = summary.lock().unwrap();
                s.cases += 1;
                if let Some(what) = outcome.strip_prefix("fail ") {
                    s.failures.push(Failure {
                        line: lines[i].clone(),
                        what: what.to_string(),
                    });
                    *s.outcomes.entry("failed".to_string()).or_default() += 1;
                } else {
                    let key = outcome.trim_start_matches("ok ").to_string();
                    *s.outcomes.entry(key).or_default() += 1;
                }
                next += 1;
            }
            Err(ended) => {
                let out = running.kill();
                let how = match (ended, out.status.signal()) {
                    (Ended::TimedOut, _) => format!("hang: no outcome in {CASE_TIMEOUT:?}"),
                    (_, Some(sig)) => format!("signal {sig}"),
                    (_, None) => format!("exit {}", out.status),
                };
                // The panics the child printed say more than the signal.
                let panics: Vec<&str> = out
                    .stderr
                    .lines()
                    .filter_map(|l| {
                        l.strip_prefix(PANIC_PREFIX)
                            .or_else(|| l.contains("SUMMARY: AddressSanitizer").then_some(l))
                    })
                    .collect();
                let last = out.stderr.lines().last().unwrap_or_default();
                return Err((
                    next,
                    format!(
                        "{how}; panics: [{}]; stderr ends: {last}",
                        panics.join("; ")
                    ),
                ));
            }
        }
    }
    let _ = running.try_wait_for("batch", CASE_TIMEOUT);
    drop(running.finish());
    Ok(())
}

/// Runs `lines` in children of test `test` (which calls [`child_main`] for task `hostile`),
/// `batch` cases per child, on `workers` threads.
pub fn run(test: &str, dir: &Path, lines: Vec<String>, batch: usize, workers: usize) -> Summary {
    let summary = Mutex::new(Summary::default());
    let batches: Vec<Vec<String>> = lines.chunks(batch).map(|c| c.to_vec()).collect();
    let queue = Mutex::new(batches.into_iter().enumerate());
    std::thread::scope(|s| {
        for w in 0..workers {
            let (queue, summary) = (&queue, &summary);
            s.spawn(move || {
                let batch_file = dir.join(format!("batch-{w}.txt"));
                loop {
                    let Some((_, mut lines)) = queue.lock().unwrap().next() else {
                        break;
                    };
                    while let Err((at, how)) = run_child(test, dir, &batch_file, &lines, summary) {
                        // Alone, to tell whether the case fails by itself.
                        let alone = run_child(test, dir, &batch_file, &lines[at..=at], summary);
                        let mut s = summary.lock().unwrap();
                        let failed_alone = alone.is_err();
                        let what = match alone {
                            Err((_, how)) => how,
                            Ok(()) => format!(
                                "{how} (after the {at} cases before it in one process; alone it passes)"
                            ),
                        };
                        if failed_alone {
                            s.cases += 1;
                            *s.outcomes.entry("failed".to_string()).or_default() += 1;
                        }
                        s.failures.push(Failure {
                            line: lines[at].clone(),
                            what,
                        });
                        drop(s);
                        lines.drain(..=at);
                    }
                }
            });
        }
    });
    let mut summary = summary.into_inner().unwrap();
    summary.failures.sort_by(|a, b| a.what.cmp(&b.what));
    summary
}

/// A failure's signature: its message with paths, hex and numbers blanked, so that one bug
/// reached by many cases is listed once.
pub fn signature(what: &str) -> String {
    let head = what.split(" | ").take(2).collect::<Vec<_>>().join(" | ");
    head.split(' ')
        .map(|word| {
            if word.contains('/') && !word.contains(".rs:") {
                return "<path>".to_string();
            }
            let mut out = String::new();
            let mut chars = word.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '0' && chars.peek() == Some(&'x') {
                    chars.next();
                    while chars.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                        chars.next();
                    }
                    out.push_str("0x_");
                } else if c.is_ascii_digit() {
                    while chars.peek().is_some_and(|c| c.is_ascii_digit()) {
                        chars.next();
                    }
                    out.push('#');
                } else {
                    out.push(c);
                }
            }
            out
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The failures grouped by signature, each with its count and first case, as text.
pub fn describe_failures(dir: &Path, failures: &[Failure]) -> String {
    let mut groups: std::collections::BTreeMap<String, Vec<&Failure>> = Default::default();
    for f in failures {
        groups.entry(signature(&f.what)).or_default().push(f);
    }
    let mut out = String::new();
    for (sig, fs) in &groups {
        let first = fs[0];
        let input = materialize(dir, &first.line);
        let _ = writeln!(
            out,
            "- {} case(s): {sig}\n    first: `{}` ({})\n    {}",
            fs.len(),
            first.line,
            input.description,
            first.what
        );
    }
    out
}

/// Saves the inputs of up to `per_signature` failures of each signature into `out` in sparse
/// form, named by target, signature number and case; returns the files written.
pub fn save_failures(
    dir: &Path,
    failures: &[Failure],
    out: &Path,
    per_signature: usize,
) -> Vec<PathBuf> {
    let _ = std::fs::create_dir_all(out);
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    let mut written = Vec::new();
    for f in failures {
        let n = counts.entry(signature(&f.what)).or_default();
        *n += 1;
        if *n > per_signature {
            continue;
        }
        let input = materialize(dir, &f.line);
        let name = f.line.replace(' ', "-").replace('/', "_");
        let name: String = name
            .chars()
            .rev()
            .take(60)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let path = out.join(format!("{}-{name}.pool", input.target));
        let _ = std::fs::write(&path, sparse::encode(&input.bytes));
        if let Some(expect) = &input.expect {
            let _ = std::fs::write(path.with_extension("digest"), expect);
        }
        let _ = std::fs::write(
            path.with_extension("txt"),
            format!("{}\n{}\n", input.description, f.what),
        );
        written.push(path);
    }
    written
}
