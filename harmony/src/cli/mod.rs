//! The `harmony` command line as a library: clap argument types
//! ([`args`]), the inventory commands ([`inventory`]), their tables and
//! JSON ([`output`]), how a user names a host ([`select`]) and the progress
//! lines drawn from events ([`progress`]), the site file commands
//! ([`site`]), `harmony install` ([`install`]). `src/main.rs` only parses,
//! calls [`run`] and maps a [`CliError`] to its exit code.
//!
//! [`db_path`] is the one place the inventory database path is resolved;
//! both binaries (`harmony`, `harmony-tui`) use it.

pub mod args;
pub mod error;
pub mod install;
pub mod inventory;
pub mod lab;
pub mod output;
pub mod progress;
pub mod select;
pub mod signals;
pub mod site;

use std::path::PathBuf;

pub use args::{Cli, Command, DbArg, InstallArgs, InventoryCmd, LabArgs, SiteCmd};
pub use error::CliError;
pub use select::HostSelector;

use crate::store::SqliteStore;

/// The environment variable naming the inventory database.
pub const DB_ENV: &str = "HARMONY_DB";

/// The inventory database: `flag` (`--db`) if given, else `$HARMONY_DB`
/// when set and not empty, else the user data dir's
/// `harmony/inventory.sqlite3` ([`SqliteStore::default_path`]).
pub fn db_path(flag: Option<PathBuf>) -> Result<PathBuf, CliError> {
    db_path_from(flag, std::env::var_os(DB_ENV))
}

/// [`db_path`] with the environment's value given, for callers (and tests)
/// that must not read the process environment.
pub fn db_path_from(
    flag: Option<PathBuf>,
    env: Option<std::ffi::OsString>,
) -> Result<PathBuf, CliError> {
    if let Some(p) = flag {
        return Ok(p);
    }
    match env.filter(|v| !v.is_empty()) {
        Some(p) => Ok(PathBuf::from(p)),
        None => Ok(SqliteStore::default_path()?),
    }
}

/// Runs one parsed command line.
/// The log filter of every binary: `RUST_LOG` when it is set and valid,
/// else warnings and errors only.
pub fn log_filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
}

/// Sends `tracing` output to stderr through [`log_filter`] (`harmony` and
/// the example binaries; the TUI logs to a file instead), coloured only on
/// a terminal (a log file or a pipe gets plain text).
pub fn log_to_stderr() {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(log_filter())
        .init();
}

pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Inventory(cmd) => inventory::run(cmd),
        Command::Site(cmd) => site::run(cmd),
        Command::Install(args) => install::run(args),
        Command::Lab(args) => lab::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_wins_over_env_and_empty_env_is_unset() {
        let flag = Some(PathBuf::from("/tmp/a.sqlite3"));
        let env = Some("/tmp/b.sqlite3".into());
        assert_eq!(
            db_path_from(flag, env.clone()).unwrap(),
            PathBuf::from("/tmp/a.sqlite3")
        );
        assert_eq!(
            db_path_from(None, env).unwrap(),
            PathBuf::from("/tmp/b.sqlite3")
        );
        assert_eq!(
            db_path_from(None, Some("".into())).unwrap(),
            SqliteStore::default_path().unwrap()
        );
        assert!(
            db_path_from(None, None)
                .unwrap()
                .ends_with("harmony/inventory.sqlite3")
        );
    }
}
