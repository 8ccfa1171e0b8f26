//! What a command can fail with, and the exit code each failure maps to:
//! 2 when the user's input is invalid (a bad argument, an invalid value, a
//! host name taken, `--check` refusing), 1 for anything else (unknown host,
//! store or discovery failure). clap's own usage errors exit 2 before any
//! of this runs.

use crate::domain::{HostId, InterpretError, RepositoryError, Role, ValueError};
use crate::site::SiteError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// `--network` is not a CIDR network.
    #[error("invalid --network {value:?}: {reason}")]
    InvalidNetwork { value: String, reason: String },
    /// The role is not bootstrap, control-plane (master), worker or none.
    #[error("{0} (or none to unassign)")]
    InvalidRole(ValueError),
    /// `--hostname` is not an RFC 1123 host name.
    #[error("{0}")]
    InvalidHostname(ValueError),
    /// The host argument is neither a host id, an IP address nor a host name.
    #[error(
        "invalid host {value:?}: not a host id (uuid:, serial:, macs:), an IP address or a host name ({reason})"
    )]
    InvalidHost { value: String, reason: &'static str },
    /// The host name is another host's.
    #[error("invalid host name {name:?}: already used by {owner}")]
    HostnameTaken { name: String, owner: HostId },
    /// `--check` found the host unfit or the role full.
    #[error("--check: refusing to assign {role} to {host}")]
    CheckRefused { role: String, host: HostId },
    /// No host has this id.
    #[error("no host {0}")]
    NoSuchHost(HostId),
    /// No host has this address or name (`what` says which).
    #[error("no host with {what}")]
    NoMatch { what: String },
    /// Several hosts have this address or name.
    #[error("{count} hosts match {what}; use the host id")]
    Ambiguous { count: usize, what: String },
    /// No default host name is left for the role.
    #[error("no default host name for {role}: {source}")]
    NoDefaultHostname { role: Role, source: ValueError },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Repository(#[from] RepositoryError),
    /// A Score failed (e.g. discovery timed out).
    #[error(transparent)]
    Interpret(#[from] InterpretError),
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The site file is unreadable or invalid.
    #[error(transparent)]
    Site(#[from] SiteError),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    /// The site file and the Inventory make no installation (names the
    /// site file's field or the host).
    #[error(transparent)]
    InstallSpec(#[from] crate::site::install::InstallSpecError),
    /// `harmony install` cannot go on (nothing to resume, not wired, a
    /// file it needs unreadable): the message says what to do.
    #[error("{0}")]
    Install(String),
}

impl CliError {
    /// The process exit code: 2 for invalid input, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::InvalidNetwork { .. }
            | CliError::InvalidRole(_)
            | CliError::InvalidHostname(_)
            | CliError::InvalidHost { .. }
            | CliError::HostnameTaken { .. }
            | CliError::CheckRefused { .. }
            | CliError::Repository(RepositoryError::RoleCount { .. })
            | CliError::InstallSpec(_) => 2,
            // A site file that is missing, too large or invalid is bad input.
            CliError::Site(SiteError::Read { source, .. })
                if source.kind() != std::io::ErrorKind::NotFound =>
            {
                1
            }
            CliError::Site(_) => 2,
            CliError::NoSuchHost(_)
            | CliError::NoMatch { .. }
            | CliError::Ambiguous { .. }
            | CliError::NoDefaultHostname { .. }
            | CliError::Store(_)
            | CliError::Repository(_)
            | CliError::Interpret(_)
            | CliError::Json(_)
            | CliError::Runtime(_)
            | CliError::Install(_) => 1,
        }
    }
}
