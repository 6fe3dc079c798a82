//! `pmem check`: the deep consistency check; the exit status says whether the pool is healthy.

use std::io::Write;

use crate::{CheckArgs, Failure};

/// Unreachable objects listed by offset; the rest are counted.
const UNREACHABLE_SHOWN: usize = 10;

pub(crate) fn run(args: &CheckArgs, out: &mut impl Write) -> Result<u8, Failure> {
    let file = args.file.display();
    let inspection = match crate::inspect(&args.file) {
        Ok(inspection) => inspection,
        Err(failure) if failure.status == Failure::DAMAGED => {
            // Too damaged to open at all: that is the check's finding, not a failure to run it.
            writeln!(out, "checking pool file {file}")?;
            writeln!(out, "problem: {}", failure.message)?;
            return Err(Failure::new(
                Failure::DAMAGED,
                format!("pool file {file}: damaged: it cannot be opened"),
            ));
        }
        Err(failure) => return Err(failure),
    };
    let report = inspection.check();
    writeln!(out, "checking pool file {file}")?;
    write!(out, "{report}")?;
    if !report.unreachable.is_empty() {
        let shown: Vec<String> = report
            .unreachable
            .iter()
            .take(UNREACHABLE_SHOWN)
            .map(|o| format!("{o:#x}"))
            .collect();
        let more = report.unreachable.len().saturating_sub(UNREACHABLE_SHOWN);
        writeln!(
            out,
            "unreachable from the root: {}{} (not damage in itself: a program may find them by type; a leak if its structures should reach them)",
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        )?;
    }
    if report.is_healthy() {
        return Ok(0);
    }
    let n = report.problems.len();
    Err(Failure::new(
        Failure::DAMAGED,
        format!(
            "pool file {file}: damaged: {n} problem{} found",
            if n == 1 { "" } else { "s" }
        ),
    ))
}
