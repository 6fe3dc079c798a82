//! Command-line parsing shared by the example programs: clap, with the programs' exit statuses
//! (0 after `--help` or `--version`, 1 for a usage error, where clap's own is 2).

use std::process::ExitCode;

/// Parses the process's arguments into `T`, or prints help, version or the usage error and
/// returns the status to exit with.
pub fn parse<T: clap::Parser>() -> Result<T, ExitCode> {
    T::try_parse().map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    })
}
