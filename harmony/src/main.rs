//! `harmony`: the command line over the inventory store: list the
//! discovered hosts, show one host's hardware and history, assign roles.
//! This file only dispatches: the commands and their output live in
//! `harmony::cli`.
//!
//! Exit codes: 0 ok, 2 usage or validation error (bad argument, invalid
//! value, `--check` refused), 1 anything else (unknown host, store error).

use std::process::ExitCode;

use clap::Parser;
use harmony::cli::{Cli, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr; warnings by default, `RUST_LOG` for more.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("harmony: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
