//! SSH to hosts ([`RemoteShell`]) with russh: key authentication from the
//! operator's key file (ed25519 or RSA, never a password), host keys pinned
//! per host in the store ([`HostKeyPins`]): first contact pins the key only
//! for a host Harmony discovered, a changed key or an unknown host is
//! refused. Connection, authentication and each command have their own time
//! limit; output is capped per stream. Commands are the closed set of
//! [`RemoteCommand`], rendered in [`command`].
//!
//! Each call opens its own session (hosts reboot; nothing is pooled).

pub mod command;
pub mod files;
mod pins;
mod reboot;
mod session;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use russh::keys::PrivateKey;

pub use command::DEFAULT_REBOOT_COMMAND;
pub use files::{RemoteRoot, TransferLimits};
pub use pins::FixedHostKey;
pub use reboot::ssh_answers;
use session::Ended;
pub(crate) use session::host_key;

use crate::domain::{
    CapResult, CapabilityError, CommandOutput, HostId, HostKey, HostKeyPins, HostKeyStoreError,
    Login, PxeEvidence, RebootConfirm, RebootReport, RemoteCommand, RemoteHost, RemoteShell,
    RunLimits, Topology,
};

/// How Harmony reaches hosts over SSH.
#[derive(Debug, Clone)]
pub struct SshConfig {
    /// The remote user of the discovery environment (`root`).
    pub user: String,
    /// The remote user of an installed OS (SCOS: `core`); its privileged
    /// commands (reboot, wipe) run through `sudo -n`.
    pub installed_user: String,
    /// The operator's private key (OpenSSH or PEM; ed25519 or RSA;
    /// unencrypted).
    pub key_path: PathBuf,
    pub port: u16,
    /// TCP connect and key exchange.
    pub connect_timeout: Duration,
    pub auth_timeout: Duration,
    /// What [`RemoteCommand::Reboot`] runs: [`DEFAULT_REBOOT_COMMAND`].
    /// Operator configuration (never agent data); tests set a command that
    /// only drops the connection.
    pub reboot_command: String,
    /// How long to wait for the reboot command to end or drop the
    /// connection before confirming by polling.
    pub reboot_issue_timeout: Duration,
    /// A rebooted host must stop answering within this.
    pub down_within: Duration,
    /// ... and answer again (or start to PXE) within this, when asked.
    pub up_within: Duration,
    /// Between two probes of a rebooting host.
    pub poll_interval: Duration,
    /// One probe: TCP connect and the SSH banner.
    pub probe_timeout: Duration,
}

impl SshConfig {
    /// Defaults for `key_path`: user `root`, port 22, 5 s to connect and to
    /// authenticate, down within 5 min, back within 30 min, a probe a second.
    pub fn new(key_path: impl Into<PathBuf>) -> Self {
        Self {
            user: "root".into(),
            installed_user: "core".into(),
            key_path: key_path.into(),
            port: 22,
            connect_timeout: Duration::from_secs(5),
            auth_timeout: Duration::from_secs(5),
            reboot_command: DEFAULT_REBOOT_COMMAND.into(),
            reboot_issue_timeout: Duration::from_secs(15),
            down_within: Duration::from_secs(300),
            up_within: Duration::from_secs(1800),
            poll_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_secs(1),
        }
    }
}

/// The stage of a session that failed or ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Connect,
    Authenticate,
    Exec,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Connect => "connect and key exchange",
            Stage::Authenticate => "authentication",
            Stage::Exec => "command",
        })
    }
}

/// Everything that can go wrong over SSH, naming the host (its id and
/// address) and what was refused.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("SSH key {}: cannot read it: {reason}", path.display())]
    KeyUnreadable { path: PathBuf, reason: String },
    #[error(
        "SSH key {}: it is encrypted; Harmony needs an unencrypted key file (no passphrase)",
        path.display()
    )]
    KeyEncrypted { path: PathBuf },
    #[error("{host}: {stage} timed out after {after:?}")]
    Timeout {
        host: String,
        stage: Stage,
        after: Duration,
    },
    #[error("{host}: command `{command}` did not end within {after:?}")]
    CommandTimeout {
        host: String,
        command: String,
        after: Duration,
    },
    #[error("{host}: cannot connect to {addr}: {reason}")]
    Connect {
        host: String,
        addr: SocketAddr,
        reason: String,
    },
    #[error(
        "{host}: host key changed: pinned {pinned}, offered {offered}; refusing to connect \
         (if the host was reinstalled, forget its pinned key first)"
    )]
    HostKeyChanged {
        host: String,
        pinned: HostKey,
        offered: HostKey,
    },
    #[error(
        "{host}: not a host Harmony discovered (none of its MACs in the inventory); \
         refusing to trust its host key {offered}"
    )]
    UnknownHost { host: String, offered: HostKey },
    #[error(
        "{host}: the server offered no host key Harmony can pin (a certificate or an unknown type)"
    )]
    UnusableHostKey { host: String },
    #[error(
        "{host}: user {user} refused with the key {} (public-key authentication only)",
        key_path.display()
    )]
    AuthRefused {
        host: String,
        user: String,
        key_path: PathBuf,
    },
    #[error("{host}: {stage}: {reason}")]
    Session {
        host: String,
        stage: Stage,
        reason: String,
    },
    #[error("{host}: the connection dropped while `{command}` ran")]
    Dropped { host: String, command: String },
    #[error("{host}: {source}")]
    PinStore {
        host: String,
        #[source]
        source: HostKeyStoreError,
    },
    #[error("{host}: the reboot command failed with status {status}: {stderr}")]
    RebootRefused {
        host: String,
        status: u32,
        stderr: String,
    },
    #[error("{host}: still answering on SSH {within:?} after the reboot was issued")]
    NotDown { host: String, within: Duration },
    #[error("{host}: went down but did not answer on SSH again within {within:?}")]
    NotBackUp { host: String, within: Duration },
    #[error("{host}: no source of PXE evidence (DHCP leases, HTTP access log) is configured")]
    NoPxeEvidence { host: String },
    #[error("{host}: went down but was not seen starting to PXE within {within:?}")]
    NoPxe { host: String, within: Duration },
    #[error("{host}: reading PXE evidence: {reason}")]
    PxeEvidence { host: String, reason: String },
    #[error("{host}: {path}: {size} bytes is over the cap of {max} bytes; nothing sent")]
    FileTooLarge {
        host: String,
        path: String,
        size: u64,
        max: u64,
    },
    #[error("{host}: {action} {path}: did not end within {after:?}")]
    FileTimeout {
        host: String,
        action: &'static str,
        path: String,
        after: Duration,
    },
    #[error("{host}: {action} {path}: failed with status {status}: {stderr}")]
    FileRefused {
        host: String,
        action: &'static str,
        path: String,
        status: String,
        stderr: String,
    },
    #[error("local file {}: {reason}", path.display())]
    LocalFile { path: PathBuf, reason: String },
}

impl From<SshError> for CapabilityError {
    fn from(e: SshError) -> Self {
        CapabilityError::new("ssh", e.to_string())
    }
}

/// Hosts over SSH. See the module documentation.
pub struct SshShell {
    name: String,
    config: SshConfig,
    key: Arc<PrivateKey>,
    pins: Arc<dyn HostKeyPins>,
    pxe: Option<Arc<dyn PxeEvidence>>,
    russh: Arc<russh::client::Config>,
}

impl fmt::Debug for SshShell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key itself.
        f.debug_struct("SshShell")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("pins", &self.pins)
            .field("pxe", &self.pxe)
            .finish_non_exhaustive()
    }
}

/// Reads the operator's private key; the error names the path.
pub fn load_key(path: &Path) -> Result<PrivateKey, SshError> {
    let text = std::fs::read_to_string(path).map_err(|e| SshError::KeyUnreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    match russh::keys::decode_secret_key(&text, None) {
        Ok(k) if k.is_encrypted() => Err(SshError::KeyEncrypted {
            path: path.to_path_buf(),
        }),
        Ok(k) => Ok(k),
        Err(russh::keys::Error::KeyIsEncrypted) => Err(SshError::KeyEncrypted {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(SshError::KeyUnreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

impl SshShell {
    /// Loads the key now (so a bad key fails before any host is touched).
    pub fn new(config: SshConfig, pins: Arc<dyn HostKeyPins>) -> Result<Self, SshError> {
        let key = load_key(&config.key_path)?;
        let russh = russh::client::Config {
            nodelay: true,
            inactivity_timeout: None,
            ..Default::default()
        };
        Ok(Self {
            name: "ssh".into(),
            config,
            key: Arc::new(key),
            pins,
            pxe: None,
            russh: Arc::new(russh),
        })
    }

    /// Where [`RebootConfirm::StartedPxe`] looks for a network boot.
    pub fn with_pxe_evidence(mut self, evidence: Arc<dyn PxeEvidence>) -> Self {
        self.pxe = Some(evidence);
        self
    }

    pub fn config(&self) -> &SshConfig {
        &self.config
    }

    /// The command line `command` runs on a host.
    pub fn command_line(&self, command: &RemoteCommand) -> String {
        command::command_line(command, &self.config.reboot_command)
    }

    /// The user Harmony logs in as on `host`.
    pub fn user_for(&self, host: &RemoteHost) -> &str {
        match host.login {
            Login::Discovery => &self.config.user,
            Login::Installed => &self.config.installed_user,
        }
    }

    /// The line `command` runs as on `host`: as is for root, through
    /// `sudo -n` (never a password prompt) for another user.
    pub fn line_for(&self, host: &RemoteHost, command: &RemoteCommand) -> String {
        let line = self.command_line(command);
        if self.user_for(host) == "root" {
            line
        } else {
            command::as_root(&line)
        }
    }

    /// [`RemoteShell::run`] with the typed error. The command runs under
    /// `timeout` on the host too (see [`command::bounded`]).
    pub async fn exec(
        &self,
        host: &RemoteHost,
        command: &RemoteCommand,
        limits: RunLimits,
    ) -> Result<CommandOutput, SshError> {
        let line = self.line_for(host, command);
        let session = self.open(host).await?;
        tracing::debug!(host = %host, command = %line, "running");
        let wire = command::bounded(&line, limits.timeout);
        let ended = session.exec(&wire, limits.timeout, limits.max_output).await;
        session.close().await;
        match ended? {
            Ended::TimedOut => Err(SshError::CommandTimeout {
                host: host.to_string(),
                command: line,
                after: limits.timeout,
            }),
            Ended::Closed(out) if out.exit_status.is_none() && out.exit_signal.is_none() => {
                Err(SshError::Dropped {
                    host: host.to_string(),
                    command: line,
                })
            }
            Ended::Closed(out) => {
                if out.truncated {
                    tracing::warn!(host = %host, command = %line, cap = limits.max_output, "output truncated");
                }
                Ok(out)
            }
        }
    }

    /// [`RemoteShell::reboot`] with the typed error.
    pub async fn reboot_confirmed(
        &self,
        host: &RemoteHost,
        confirm: RebootConfirm,
    ) -> Result<RebootReport, SshError> {
        self.reboot_host(host, confirm).await
    }
}

impl Topology for SshShell {
    fn name(&self) -> &str {
        &self.name
    }
}

#[async_trait]
impl RemoteShell for SshShell {
    async fn run(
        &self,
        host: &RemoteHost,
        command: &RemoteCommand,
        limits: RunLimits,
    ) -> CapResult<CommandOutput> {
        Ok(self.exec(host, command, limits).await?)
    }

    async fn reboot(&self, host: &RemoteHost, confirm: RebootConfirm) -> CapResult<RebootReport> {
        Ok(self.reboot_host(host, confirm).await?)
    }

    async fn answers(&self, host: &RemoteHost) -> CapResult<bool> {
        let addr = std::net::SocketAddr::new(host.ip, self.config.port);
        Ok(reboot::ssh_answers(addr, self.config.probe_timeout).await)
    }

    async fn forget_host_key(&self, host: &HostId) -> CapResult<bool> {
        let pins = Arc::clone(&self.pins);
        let id = host.clone();
        tokio::task::spawn_blocking(move || pins.forget_key(&id))
            .await
            .map_err(|e| CapabilityError::new("ssh", format!("host key task: {e}")))?
            .map_err(|e| CapabilityError::new("ssh", format!("forget the host key of {host}: {e}")))
    }
}
