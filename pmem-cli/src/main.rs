//! `pmem`: create, describe, check and dump pool files without the program's Rust types.
//!
//! Every command that reads a pool goes through [`pmem_core::inspect::Inspection`], which maps
//! the file copy-on-write under a shared lock and recovers that private copy: the file itself is
//! never modified, and a pool that a program has open is refused rather than read
//! mid-transaction.

mod check;
mod create;
mod dump;
mod fmt;
mod info;
mod json;
mod sigbus;

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use pmem_core::inspect::Inspection;
use pmem_core::Error;

/// Inline values nest at most this deep when `info` and `dump` list pointers (a damaged type
/// table could describe a cycle).
const MAX_INLINE_DEPTH: u32 = 16;

const EXIT_STATUS: &str = "\
Exit status:
  0  success (for `check`: no problem found)
  1  the pool is damaged: `check` found problems, or the pool is too damaged to open
  2  usage error, or the command could not run: no such file, permission denied, not a pmem
     pool, pool in use by a program, unsupported format version";

/// Create, describe, check and dump pmem pool files.
///
/// The pool file is never modified by `info`, `check` or `dump`: they map it copy-on-write
/// (under a shared lock, so a pool that a program has open is refused) and recover that private
/// copy.
#[derive(Debug, Parser)]
#[command(name = "pmem", version, after_help = EXIT_STATUS)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a pool file whose root the first program to open it claims for its root type.
    #[command(after_help = EXIT_STATUS)]
    Create(CreateArgs),
    /// Describe a pool: header, root type, sizes, heap statistics, objects per type, recovery.
    #[command(after_help = EXIT_STATUS)]
    Info(InfoArgs),
    /// Check a pool deeply: headers and logs as on the media, heap metadata, and every pointer
    /// reachable from the root.
    #[command(after_help = EXIT_STATUS)]
    Check(CheckArgs),
    /// List a pool's objects, or show one object (or the root) as a hex dump.
    #[command(after_help = EXIT_STATUS)]
    Dump(DumpArgs),
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// The pool file to create; it must not exist.
    file: PathBuf,
    /// Pool size in bytes, with an optional binary suffix: K, M, G, T (e.g. `64M`).
    #[arg(long, short, value_parser = fmt::parse_size)]
    size: u64,
    /// Layout name recorded in the pool (at most 63 bytes); programs may require it on open.
    #[arg(long, short)]
    layout: Option<String>,
    /// Room for the root object; a root type claims the pool if it needs the same number of
    /// 4 KiB pages.
    #[arg(long, value_parser = fmt::parse_size, default_value = "4096")]
    root_size: u64,
    /// Reserve disk space for the whole file now (posix_fallocate), so that a full disk fails
    /// the create rather than a later allocation. By default the file has its full length but
    /// only what the pool uses is reserved, as it is used.
    #[arg(long)]
    reserve_all: bool,
}

#[derive(Debug, Args)]
struct InfoArgs {
    /// The pool file.
    file: PathBuf,
    /// Print a JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// The pool file.
    file: PathBuf,
}

#[derive(Debug, Args)]
struct DumpArgs {
    /// The pool file.
    file: PathBuf,
    /// List only objects of this type (as `info` names it, e.g. `Node` or `[Node]`).
    #[arg(long = "type", short, value_name = "NAME", conflicts_with_all = ["object", "root"])]
    type_name: Option<String>,
    /// Hex dump the object starting at this pool offset (decimal, or hex with `0x`).
    #[arg(long, short, value_name = "OFFSET", value_parser = fmt::parse_offset, conflicts_with = "root")]
    object: Option<u64>,
    /// Hex dump the root object.
    #[arg(long, short)]
    root: bool,
    /// List at most N objects, or dump at most N bytes.
    #[arg(long, short = 'n', value_name = "N")]
    limit: Option<u64>,
}

/// Why a command failed, and the exit status that says so.
#[derive(Debug)]
pub(crate) struct Failure {
    status: u8,
    message: String,
    /// Standard output is a pipe whose reader went away (`pmem dump big.pool | head`).
    broken_pipe: bool,
}

impl Failure {
    /// The pool is damaged.
    pub(crate) const DAMAGED: u8 = 1;
    /// Usage error, or the command could not run.
    pub(crate) const UNUSABLE: u8 = 2;

    pub(crate) fn new(status: u8, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
            broken_pipe: false,
        }
    }

    /// A failure to create or read a pool, classified by what went wrong.
    pub(crate) fn from_error(error: Error, path: &Path) -> Failure {
        let status = match error {
            Error::HeaderCorrupt { .. } | Error::Corrupt { .. } | Error::Truncated { .. } => {
                Self::DAMAGED
            }
            _ => Self::UNUSABLE,
        };
        let message = match error {
            Error::PoolInUse { .. } => format!(
                "pool file {}: pool is in use by a program (it holds the pool's lock); close it first",
                path.display()
            ),
            other => other.to_string(),
        };
        Failure::new(status, message)
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        Failure {
            broken_pipe: e.kind() == io::ErrorKind::BrokenPipe,
            ..Failure::new(Failure::UNUSABLE, format!("writing the output: {e}"))
        }
    }
}

/// Opens a pool file for examination.
pub(crate) fn inspect(path: &Path) -> Result<Inspection, Failure> {
    Inspection::open(path).map_err(|e| match e {
        // Too short to hold the two header copies: nothing suggests it was ever a pool.
        Error::FileTooShort { size, .. } => Failure::new(
            Failure::UNUSABLE,
            format!(
                "pool file {}: not a pmem pool (the file is {size} bytes, too short for a pool header)",
                path.display()
            ),
        ),
        e => Failure::from_error(e, path),
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let file = match &cli.command {
        Command::Create(a) => &a.file,
        Command::Info(a) => &a.file,
        Command::Check(a) => &a.file,
        Command::Dump(a) => &a.file,
    };
    sigbus::report_as_shrunk(file, Failure::DAMAGED);
    let mut out = BufWriter::new(io::stdout().lock());
    let result = match &cli.command {
        Command::Create(a) => create::run(a, &mut out),
        Command::Info(a) => info::run(a, &mut out),
        Command::Check(a) => check::run(a, &mut out),
        Command::Dump(a) => dump::run(a, &mut out),
    };
    let result = result.and_then(|status| {
        out.flush()?;
        Ok(status)
    });
    match result {
        Ok(status) => ExitCode::from(status),
        // Nobody reads the rest: nothing more to say.
        Err(failure) if failure.broken_pipe => ExitCode::SUCCESS,
        Err(failure) => {
            // Whatever was printed before the failure goes out first.
            let _ = out.flush();
            eprintln!("pmem: {}", failure.message);
            ExitCode::from(failure.status)
        }
    }
}
