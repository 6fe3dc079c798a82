//! `string-reader POOL`: prints the string `string-writer` stored in the pool.
//!
//! The reader of the libpmemobj tutorial. Prints the string and a newline, or says on standard
//! error that none is stored (exit status 0 either way; 1 if the pool cannot be opened).

use std::io::Write;
use std::process::ExitCode;

use pmem_examples::string_store;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path] = args.as_slice() else {
        eprintln!(
            "usage: string-reader POOL\n\n\
             Prints the string stored in the pool file POOL by string-writer."
        );
        return ExitCode::FAILURE;
    };
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
            eprintln!("string-reader: no string stored in {path} yet");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("string-reader: {e}");
            ExitCode::FAILURE
        }
    }
}
