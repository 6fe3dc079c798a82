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

use pmem_examples::cli::{self, MAP_COMMANDS};
use pmem_examples::hashmap::PHashMap;

fn main() -> ExitCode {
    cli::main(
        "hashmap-cli",
        MAP_COMMANDS,
        std::env::args().skip(1),
        cli::open_map::<PHashMap>,
        cli::map_command,
    )
}
