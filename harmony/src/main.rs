//! `harmony`: the command line over the inventory store: list the
//! discovered hosts, show one host's hardware and history, assign roles.
//! This file only dispatches: the commands and their output live in
//! `harmony::cli`.
//!
//! Exit codes: 0 ok, 2 usage or validation error (bad argument, invalid
//! value, `--check` refused), 1 anything else (unknown host, store error).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use harmony::cli::{Cli, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr; warnings by default, `RUST_LOG` for more.
    harmony::cli::log_to_stderr();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Not `eprintln!`: after SIGHUP stderr may be a terminal that
            // is gone, and the exit code must still say what happened.
            let _ = writeln!(std::io::stderr(), "harmony: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
