//! The virtual lab's building blocks: throw-away network namespaces
//! ([`netns`]), QEMU machines with chosen hardware and PXE boot ([`vm`]),
//! their power control over QMP ([`qmp`]), and the stand-in discovery image
//! built from Debian packages ([`images`], with the [`cpio`] writer), and
//! the whole lab site of N machines with its site file ([`site`]).
//!
//! It lives under `infra/` because it starts programs and opens sockets
//! (the architecture rule `only_infra_starts_processes_or_opens_sockets`).
//! The facts it is built from (TCG, `-nographic -serial file:`, offloads
//! off, `speed=1000,duplex=full`) are in the project's virtual-lab notes.

pub mod cluster_sim;
pub mod cpio;
pub mod images;
pub mod installer;
pub mod netns;
pub mod network;
pub mod qmp;
pub mod run;
pub mod site;
pub mod vm;

use std::path::PathBuf;

use crate::infra::process::ProcessError;

/// Why a lab operation failed; each variant names what it was about.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("{what}: {source}")]
    Process {
        what: String,
        #[source]
        source: ProcessError,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid {field} {value:?}: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("QMP {socket}: {message}")]
    Qmp { socket: String, message: String },
    #[error("{what}: not found: {detail}")]
    Missing { what: String, detail: String },
    /// The lab's flow stopped: what stopped and why (with the log's end).
    #[error("{what}: {detail}")]
    Flow { what: String, detail: String },
}

impl LabError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LabError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn process(what: impl Into<String>, source: ProcessError) -> Self {
        LabError::Process {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn invalid(
        field: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        LabError::Invalid {
            field,
            value: value.into(),
            reason: reason.into(),
        }
    }
}
