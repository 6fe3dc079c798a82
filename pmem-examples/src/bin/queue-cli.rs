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

use pmem_examples::cli::{self, QUEUE_COMMANDS};

fn main() -> ExitCode {
    cli::main(
        "queue-cli",
        QUEUE_COMMANDS,
        std::env::args().skip(1),
        cli::open_queue,
        cli::queue_command,
    )
}
