//! One interactive CLI session to a Cisco switch over SSH (russh): a PTY
//! shell channel (configuration mode needs one), the prompt learned from
//! the first one the device prints (`leaf-1#`, then `leaf-1(config)#`,
//! `leaf-1(config-if)#`), `terminal length 0` so nothing pages, and each
//! command sent as one line and read up to the next prompt within a time
//! limit and an output cap. A line starting with `%` is the device
//! refusing the command (`% Invalid input detected at '^' marker.`,
//! `% Incomplete command.`; vendor-apis.md §3).
//!
//! The host key must match the fingerprint the operator pinned for the
//! switch; authentication is by password (the device login) or by the
//! operator's key file.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect, client};

use crate::domain::text::SafeText;
use crate::domain::{HostKey, HostKeyFingerprint};
use crate::infra::device_login::DeviceLogin;
use crate::infra::ssh::host_key;

/// Longest prompt host name (IOS allows 63 characters).
const MAX_HOSTNAME: usize = 63;
/// How long a polite disconnect may take.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How a session authenticates.
#[derive(Clone)]
pub enum CliAuth {
    Password(DeviceLogin),
    /// The user and the operator's key (see `infra::ssh::load_key`).
    Key {
        user: String,
        key: Arc<PrivateKey>,
    },
}

impl std::fmt::Debug for CliAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliAuth::Password(l) => write!(f, "Password({l:?})"),
            CliAuth::Key { user, .. } => write!(f, "Key {{ user: {user:?}, key: <redacted> }}"),
        }
    }
}

/// Limits of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CliLimits {
    /// TCP connect, key exchange and authentication, and the first prompt.
    pub connect: Duration,
    /// One command, from sending it to its prompt.
    pub command: Duration,
    /// Bytes of one command's output (a longer one is an error, never
    /// parsed half).
    pub max_output: usize,
}

/// What went wrong in a session; the caller adds the switch's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("host key {offered} is not the pinned {pinned}; refusing to connect")]
    HostKey { pinned: String, offered: String },
    #[error("user {0} refused")]
    AuthRefused(String),
    #[error("{stage} timed out after {after:?}")]
    Timeout { stage: String, after: Duration },
    #[error("`{command}`: output longer than {cap} bytes (cut off)")]
    Truncated { command: String, cap: usize },
    #[error("`{command}`: refused by the device: {message}")]
    Refused { command: String, message: String },
    #[error("`{command}`: the connection closed before the prompt came back")]
    Closed { command: String },
    #[error("unexpected prompt {0:?} (Harmony needs privileged EXEC: a `#` prompt)")]
    Prompt(String),
    #[error("session: {0}")]
    Session(String),
}

struct PinCheck {
    pinned: HostKeyFingerprint,
    offered: Arc<Mutex<Option<HostKey>>>,
}

impl client::Handler for PinCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        offered: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = offered else {
            return Ok(false);
        };
        let Some(key) = host_key(key) else {
            return Ok(false);
        };
        let ok = key.fingerprint == self.pinned;
        *self.offered.lock().unwrap_or_else(PoisonError::into_inner) = Some(key);
        Ok(ok)
    }
}

/// An open CLI session at the privileged EXEC prompt.
pub struct CliSession {
    handle: client::Handle<PinCheck>,
    channel: russh::Channel<client::Msg>,
    hostname: String,
    limits: CliLimits,
    /// Bytes received and not yet consumed.
    pending: Vec<u8>,
}

/// A device's message for an error: printable ASCII kept (quotes too:
/// `'^' marker`), anything else `?`, at most `max` characters.
fn printable(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

impl std::fmt::Debug for CliSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CliSession")
            .field("hostname", &self.hostname)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// The host name of `line` if it is a prompt: `NAME#`, `NAME(config…)#`
/// (spaces after it allowed); `Err` for a user EXEC `NAME>` prompt.
fn prompt_name(line: &str) -> Option<Result<&str, ()>> {
    let line = line.trim_end();
    let (body, exec) = match line.strip_suffix('#') {
        Some(b) => (b, true),
        None => (line.strip_suffix('>')?, false),
    };
    let name = match body.find("(config") {
        Some(i) if body.ends_with(')') && exec => &body[..i],
        Some(_) => return None,
        None => body,
    };
    let ok = !name.is_empty()
        && name.len() <= MAX_HOSTNAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        return None;
    }
    Some(if exec { Ok(name) } else { Err(()) })
}

impl CliSession {
    /// Connects to `addr`, checks the host key, authenticates, opens a PTY
    /// shell, waits for the first prompt and turns paging off.
    pub async fn open(
        addr: std::net::SocketAddr,
        pinned: &HostKeyFingerprint,
        auth: &CliAuth,
        limits: CliLimits,
    ) -> Result<Self, CliError> {
        let deadline = tokio::time::Instant::now() + limits.connect;
        let timeout = |stage: &str| CliError::Timeout {
            stage: stage.to_string(),
            after: limits.connect,
        };
        let offered = Arc::new(Mutex::new(None));
        let handler = PinCheck {
            pinned: pinned.clone(),
            offered: Arc::clone(&offered),
        };
        let config = Arc::new(client::Config {
            nodelay: true,
            inactivity_timeout: None,
            ..Default::default()
        });
        let connected = tokio::time::timeout_at(deadline, client::connect(config, addr, handler))
            .await
            .map_err(|_| timeout("connect and key exchange"))?;
        let mut handle = match connected {
            Ok(h) => h,
            Err(russh::Error::UnknownKey) => {
                let seen = offered
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                return Err(CliError::HostKey {
                    pinned: pinned.to_string(),
                    offered: seen
                        .map(|k| k.fingerprint.to_string())
                        .unwrap_or_else(|| "(no usable key)".into()),
                });
            }
            Err(e) => return Err(CliError::Connect(e.to_string())),
        };
        let session_err = |e: russh::Error| CliError::Session(e.to_string());
        let (user, result) = tokio::time::timeout_at(deadline, async {
            match auth {
                CliAuth::Password(login) => (
                    login.user().to_string(),
                    handle
                        .authenticate_password(login.user(), login.password())
                        .await,
                ),
                CliAuth::Key { user, key } => {
                    let hash = match handle.best_supported_rsa_hash().await {
                        Ok(h) => h.flatten(),
                        Err(e) => return (user.clone(), Err(e)),
                    };
                    (
                        user.clone(),
                        handle
                            .authenticate_publickey(
                                user.clone(),
                                PrivateKeyWithHashAlg::new(Arc::clone(key), hash),
                            )
                            .await,
                    )
                }
            }
        })
        .await
        .map_err(|_| timeout("authentication"))?;
        if !result.map_err(session_err)?.success() {
            return Err(CliError::AuthRefused(user));
        }
        let channel = tokio::time::timeout_at(deadline, async {
            let ch = handle.channel_open_session().await?;
            // A wide terminal so rows are not wrapped.
            ch.request_pty(true, "vt100", 511, 0, 0, 0, &[]).await?;
            ch.request_shell(true).await?;
            Ok::<_, russh::Error>(ch)
        })
        .await
        .map_err(|_| timeout("opening the shell"))?
        .map_err(session_err)?;
        let mut session = Self {
            handle,
            channel,
            hostname: String::new(),
            limits,
            pending: Vec::new(),
        };
        let first = session
            .read_to_prompt("(login)", deadline, limits.connect)
            .await?;
        let last = first.lines().last().unwrap_or("");
        match prompt_name(last) {
            Some(Ok(name)) => session.hostname = name.to_string(),
            _ => return Err(CliError::Prompt(SafeText::bounded(last, 80).to_string())),
        }
        session.run("terminal length 0").await?;
        Ok(session)
    }

    /// The host name the prompt shows.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// Reads until the received text ends in a prompt (the learned one
    /// once known), returns the text up to and including it.
    async fn read_to_prompt(
        &mut self,
        command: &str,
        deadline: tokio::time::Instant,
        after: Duration,
    ) -> Result<String, CliError> {
        // Bounded: each turn adds at least one byte or ends; the cap and
        // the deadline end it.
        loop {
            let text = String::from_utf8_lossy(&self.pending).replace(['\r', '\0'], "");
            let last = text.rsplit('\n').next().unwrap_or("");
            let is_prompt = match prompt_name(last) {
                Some(Ok(name)) => self.hostname.is_empty() || name == self.hostname,
                Some(Err(())) => self.hostname.is_empty(),
                None => false,
            };
            if is_prompt {
                self.pending.clear();
                return Ok(text);
            }
            if self.pending.len() > self.limits.max_output {
                return Err(CliError::Truncated {
                    command: command.to_string(),
                    cap: self.limits.max_output,
                });
            }
            let msg = tokio::time::timeout_at(deadline, self.channel.wait())
                .await
                .map_err(|_| CliError::Timeout {
                    stage: format!("`{command}`"),
                    after,
                })?;
            match msg {
                Some(ChannelMsg::Data { data }) | Some(ChannelMsg::ExtendedData { data, .. }) => {
                    self.pending.extend_from_slice(&data);
                }
                Some(ChannelMsg::Eof | ChannelMsg::Close) | None => {
                    return Err(CliError::Closed {
                        command: command.to_string(),
                    });
                }
                Some(_) => {}
            }
        }
    }

    /// Sends `line` (built by Harmony from typed values only) and returns
    /// its output: the lines between the echo and the next prompt. A `%`
    /// line is the device refusing it.
    pub async fn run(&mut self, line: &str) -> Result<String, CliError> {
        debug_assert!(!line.contains(['\n', '\r']));
        tracing::debug!(switch = %self.hostname, command = line, "cli");
        let deadline = tokio::time::Instant::now() + self.limits.command;
        self.channel
            .data_bytes(format!("{line}\n").into_bytes())
            .await
            .map_err(|e| CliError::Session(e.to_string()))?;
        let text = self
            .read_to_prompt(line, deadline, self.limits.command)
            .await?;
        let mut lines: Vec<&str> = text.lines().collect();
        lines.pop(); // the prompt
        // The echo: the first line ending with the command as sent.
        if let Some(first) = lines.first()
            && first.trim_end().ends_with(line)
        {
            lines.remove(0);
        }
        if let Some(err) = lines.iter().find(|l| l.trim_start().starts_with('%')) {
            return Err(CliError::Refused {
                command: line.to_string(),
                message: printable(err.trim(), 200),
            });
        }
        let mut out = lines.join("\n");
        out.push('\n');
        Ok(out)
    }

    /// Says goodbye, bounded; errors ignored.
    pub async fn close(self) {
        let bye = self.handle.disconnect(Disconnect::ByApplication, "", "en");
        let _ = tokio::time::timeout(DISCONNECT_TIMEOUT, bye).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_are_recognised() {
        assert_eq!(prompt_name("leaf-1#"), Some(Ok("leaf-1")));
        assert_eq!(prompt_name("leaf-1(config)#"), Some(Ok("leaf-1")));
        assert_eq!(prompt_name("leaf-1(config-if)# "), Some(Ok("leaf-1")));
        assert_eq!(prompt_name("leaf-1>"), Some(Err(())));
        assert_eq!(prompt_name("Gi1/0/2 x connected"), None);
        assert_eq!(prompt_name("a b#"), None);
        assert_eq!(prompt_name("#"), None);
        assert_eq!(prompt_name("x(configure>"), None);
    }
}
