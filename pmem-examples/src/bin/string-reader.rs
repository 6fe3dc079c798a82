//! `string-reader POOL`: prints the string `string-writer` stored in the pool.
//!
//! The reader of the libpmemobj tutorial. Prints the string and a newline, or says on standard
//! error that none is stored (exit status 0 either way; 1 if the pool cannot be opened).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use pmem_examples::string_store;

/// Prints the string stored in the pool file POOL by string-writer.
#[derive(Debug, Parser)]
#[command(name = "string-reader", version)]
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
    let text = string_store::open(path).and_then(|pool| string_store::read(&pool));
    match text {
        Ok(Some(text)) => {
            let mut out = std::io::stdout().lock();
            match out.write_all(&text).and_then(|()| out.write_all(b"\n")) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("string-reader: writing the output: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Ok(None) => {
            eprintln!("string-reader: no string stored in {} yet", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("string-reader: {e}");
            ExitCode::FAILURE
        }
    }
}
