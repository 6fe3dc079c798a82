//! `string-writer POOL`: stores one line from standard input in the pool, all or nothing.
//!
//! The writer of the libpmemobj tutorial: the old string stays in the pool until the new one is
//! committed, so a crash or a kill at any instant leaves one or the other. Creates the pool file
//! if there is none. Read it back with `string-reader`.
//!
//! ```text
//! $ echo "hello, persistent memory" | string-writer hello.pool
//! $ string-reader hello.pool
//! hello, persistent memory
//! ```

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use pmem_examples::string_store;

/// Stores one line read from standard input in the pool file POOL (created if missing), all or
/// nothing: a crash at any instant leaves the old string or the new one.
#[derive(Debug, Parser)]
#[command(name = "string-writer", version)]
struct Args {
    /// The pool file.
    pool: PathBuf,
}

fn main() -> ExitCode {
    let args = match pmem_examples::args::parse::<Args>() {
        Ok(args) => args,
        Err(status) => return status,
    };
    let path = &args.pool;
    let mut line = Vec::new();
    if let Err(e) = std::io::stdin().lock().read_until(b'\n', &mut line) {
        eprintln!("string-writer: reading standard input: {e}");
        return ExitCode::FAILURE;
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    let stored =
        string_store::open_or_create(path).and_then(|pool| string_store::write(&pool, &line));
    match stored {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("string-writer: {e}");
            ExitCode::FAILURE
        }
    }
}
