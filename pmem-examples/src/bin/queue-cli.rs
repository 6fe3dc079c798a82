//! `queue-cli POOL [COMMAND ARGS...]`: a persistent FIFO queue of messages on the command line.
//!
//! ```text
//! $ queue-cli q.pool enqueue hello world
//! $ queue-cli q.pool dequeue
//! hello world
//! ```
//!
//! Without a command, reads commands from standard input. See [`pmem_examples::cli`].

use std::process::ExitCode;

use clap::Parser;
use pmem_examples::cli::{self, QUEUE_COMMANDS};

/// Runs COMMAND on the persistent queue in the pool file POOL (created if missing), or
/// without COMMAND, reads commands from standard input, one per line.
#[derive(Debug, Parser)]
#[command(name = "queue-cli", version, after_help = format!("Commands:\n{QUEUE_COMMANDS}"))]
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
        "queue-cli",
        QUEUE_COMMANDS,
        std::iter::once(args.pool).chain(args.command),
        cli::open_queue,
        cli::queue_command,
    )
}
