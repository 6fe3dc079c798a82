//! `btree-cli POOL [COMMAND ARGS...]`: a persistent B-tree map `u64 -> u64` on the command line.
//!
//! ```text
//! $ btree-cli map.pool insert 2 20
//! inserted 2 -> 20
//! $ btree-cli map.pool list
//! 2 20
//! ```
//!
//! Without a command, reads commands from standard input. See [`pmem_examples::cli`].

use std::process::ExitCode;

use pmem_examples::btree::PBTreeMap;
use pmem_examples::cli::{self, MAP_COMMANDS};

fn main() -> ExitCode {
    cli::main(
        "btree-cli",
        MAP_COMMANDS,
        std::env::args().skip(1),
        cli::open_map::<PBTreeMap>,
        cli::map_command,
    )
}
