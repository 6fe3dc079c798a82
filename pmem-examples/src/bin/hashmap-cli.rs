//! `hashmap-cli POOL [COMMAND ARGS...]`: a persistent hash map `u64 -> u64` on the command line.
//!
//! ```text
//! $ hashmap-cli map.pool insert 1 100
//! inserted 1 -> 100
//! $ hashmap-cli map.pool get 1
//! 100
//! ```
//!
//! Without a command, reads commands from standard input. See [`pmem_examples::cli`].

use std::process::ExitCode;

use clap::Parser;
use pmem_collections::PHashMap;
use pmem_examples::cli::{self, MAP_COMMANDS};

/// Runs COMMAND on the persistent hash map in the pool file POOL (created if missing), or
/// without COMMAND, reads commands from standard input, one per line.
#[derive(Debug, Parser)]
#[command(name = "hashmap-cli", version, after_help = format!("Commands:\n{MAP_COMMANDS}"))]
struct Args {
    /// The pool file.
    pool: String,
    /// The command and its arguments; none to read commands from standard input.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn main() -> ExitCode {
    let args = match pmem_examples::args::parse::<Args>() {
        Ok(args) => args,
        Err(status) => return status,
    };
    cli::main(
        "hashmap-cli",
        MAP_COMMANDS,
        std::iter::once(args.pool).chain(args.command),
        cli::open_map::<PHashMap<u64, u64>>,
        cli::map_command,
    )
}
