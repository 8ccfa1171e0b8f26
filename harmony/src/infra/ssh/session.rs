//! One SSH session to a host with russh: TCP connect and key exchange with
//! the host key checked against its pin (first contact pins it for a host
//! Harmony discovered), public-key authentication (never a password), and
//! one command on a channel with a time limit and capped output.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect, Sig, client};

use super::{SshError, SshShell, Stage};
use crate::domain::{
    CommandOutput, HostKey, HostKeyFingerprint, HostKeyType, PinOutcome, RemoteHost,
};

/// How long a polite disconnect may take before the connection is dropped.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// What the handler accepts during the key exchange.
#[derive(Debug, Clone)]
enum Expected {
    /// Only this key (its pin).
    Pinned(HostKey),
    /// Any key: the caller pins it once the exchange has proved the server
    /// holds it, if the host is one Harmony discovered.
    FirstContact,
}

/// The russh handler: checks the server's host key, records what it saw.
struct PinCheck {
    expected: Expected,
    offered: Arc<Mutex<Option<HostKey>>>,
}

/// The host key as Harmony pins it; `None` for a key type or fingerprint
/// outside the typed values (refused).
pub(crate) fn host_key(key: &russh::keys::PublicKey) -> Option<HostKey> {
    Some(HostKey {
        key_type: key.algorithm().as_str().parse::<HostKeyType>().ok()?,
        fingerprint: key
            .fingerprint(HashAlg::Sha256)
            .to_string()
            .parse::<HostKeyFingerprint>()
            .ok()?,
    })
}

impl client::Handler for PinCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        offered: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // Host certificates are not trusted: Harmony pins plain keys.
        let PublicKeyOrCertificate::PublicKey { key, .. } = offered else {
            return Ok(false);
        };
        let Some(key) = host_key(key) else {
            return Ok(false);
        };
        let accept = match &self.expected {
            Expected::Pinned(pin) => pin.fingerprint == key.fingerprint,
            Expected::FirstContact => true,
        };
        *self.offered.lock().unwrap_or_else(PoisonError::into_inner) = Some(key);
        Ok(accept)
    }
}

/// An authenticated session.
pub(super) struct Session {
    handle: client::Handle<PinCheck>,
    host: String,
}

/// `fut` within `limit`, else a timeout error for `stage`.
async fn within<T>(
    host: &RemoteHost,
    stage: Stage,
    limit: Duration,
    fut: impl Future<Output = T>,
) -> Result<T, SshError> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| SshError::Timeout {
            host: host.to_string(),
            stage,
            after: limit,
        })
}

impl SshShell {
    /// Connects, checks the host key (pinning it at first contact) and
    /// authenticates with the operator's key.
    pub(super) async fn open(&self, host: &RemoteHost) -> Result<Session, SshError> {
        let name = host.to_string();
        let store = |source| SshError::PinStore {
            host: name.clone(),
            source,
        };
        let pinned = self.pins.pinned_key(&host.id).map_err(store)?;
        let expected = match &pinned {
            Some(p) => Expected::Pinned(p.key.clone()),
            None => Expected::FirstContact,
        };
        let offered = Arc::new(Mutex::new(None));
        let handler = PinCheck {
            expected,
            offered: Arc::clone(&offered),
        };
        let addr = SocketAddr::new(host.ip, self.config.port);
        let connected = within(
            host,
            Stage::Connect,
            self.config.connect_timeout,
            client::connect(Arc::clone(&self.russh), addr, handler),
        )
        .await?;
        let seen = offered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut handle = match connected {
            Ok(h) => h,
            Err(russh::Error::UnknownKey) => {
                return Err(match (pinned, seen) {
                    (Some(p), Some(offered)) => SshError::HostKeyChanged {
                        host: name,
                        pinned: p.key,
                        offered,
                    },
                    _ => SshError::UnusableHostKey { host: name },
                });
            }
            Err(e) => {
                return Err(SshError::Connect {
                    host: name,
                    addr,
                    reason: e.to_string(),
                });
            }
        };
        if pinned.is_none() {
            let Some(key) = seen else {
                return Err(SshError::UnusableHostKey { host: name });
            };
            match self
                .pins
                .pin_first_key(&host.id, &key, SystemTime::now())
                .map_err(store)?
            {
                PinOutcome::Pinned => {}
                PinOutcome::AlreadyPinned(p) if p.key.fingerprint == key.fingerprint => {}
                PinOutcome::AlreadyPinned(p) => {
                    close(handle).await;
                    return Err(SshError::HostKeyChanged {
                        host: name,
                        pinned: p.key,
                        offered: key,
                    });
                }
                PinOutcome::NotDiscovered => {
                    close(handle).await;
                    return Err(SshError::UnknownHost {
                        host: name,
                        offered: key,
                    });
                }
            }
        }
        self.authenticate(host, &mut handle).await?;
        Ok(Session { handle, host: name })
    }

    async fn authenticate(
        &self,
        host: &RemoteHost,
        handle: &mut client::Handle<PinCheck>,
    ) -> Result<(), SshError> {
        let name = host.to_string();
        let session_err = |e: russh::Error| SshError::Session {
            host: name.clone(),
            stage: Stage::Authenticate,
            reason: e.to_string(),
        };
        let key: Arc<PrivateKey> = Arc::clone(&self.key);
        let auth = within(host, Stage::Authenticate, self.config.auth_timeout, async {
            let rsa_hash = handle.best_supported_rsa_hash().await?.flatten();
            handle
                .authenticate_publickey(
                    self.user_for(host).to_string(),
                    PrivateKeyWithHashAlg::new(key, rsa_hash),
                )
                .await
        })
        .await?
        .map_err(session_err)?;
        if !auth.success() {
            return Err(SshError::AuthRefused {
                host: name,
                user: self.user_for(host).to_string(),
                key_path: self.config.key_path.clone(),
            });
        }
        Ok(())
    }
}

/// Keeps the first `cap` bytes of a stream and counts the rest.
#[derive(Debug, Default)]
struct Capped {
    kept: Vec<u8>,
    dropped: u64,
}

impl Capped {
    fn push(&mut self, data: &[u8], cap: usize) {
        let room = cap.saturating_sub(self.kept.len());
        let take = room.min(data.len());
        self.kept.extend_from_slice(&data[..take]);
        self.dropped += (data.len() - take) as u64;
    }

    fn finish(self, cap: usize) -> (String, bool) {
        let mut s = String::from_utf8_lossy(&self.kept).into_owned();
        if self.dropped > 0 {
            s.push_str(&format!(
                "\n[harmony: output truncated: {} more bytes over the cap of {cap} bytes]\n",
                self.dropped
            ));
        }
        (s, self.dropped > 0)
    }
}

/// How a command's channel ended.
pub(super) enum Ended {
    /// The channel closed (the command's status, if any, is in the output).
    Closed(CommandOutput),
    /// The time limit passed first; what had arrived.
    TimedOut,
}

impl Session {
    /// Runs `line` on a new channel; output beyond `max_output` per stream
    /// is dropped (and counted) while the command runs on.
    pub(super) async fn exec(
        &self,
        line: &str,
        timeout: Duration,
        max_output: usize,
    ) -> Result<Ended, SshError> {
        let session_err = |e: russh::Error| SshError::Session {
            host: self.host.clone(),
            stage: Stage::Exec,
            reason: e.to_string(),
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let opened = tokio::time::timeout_at(deadline, async {
            let channel = self.handle.channel_open_session().await?;
            channel.exec(true, line).await?;
            Ok::<_, russh::Error>(channel)
        })
        .await;
        let mut channel = match opened {
            Err(_) => return Ok(Ended::TimedOut),
            Ok(r) => r.map_err(session_err)?,
        };
        let (mut out, mut err) = (Capped::default(), Capped::default());
        let (mut status, mut signal) = (None, None);
        loop {
            let msg = match tokio::time::timeout_at(deadline, channel.wait()).await {
                Ok(Some(msg)) => msg,
                Ok(None) => break,
                Err(_) => {
                    // Ask sshd to end the command before leaving (bounded;
                    // OpenSSH honours it for non-root users only, hence
                    // also `command::bounded`).
                    let stop = async {
                        let _ = channel.signal(Sig::KILL).await;
                        let _ = channel.close().await;
                    };
                    let _ = tokio::time::timeout(DISCONNECT_TIMEOUT, stop).await;
                    return Ok(Ended::TimedOut);
                }
            };
            match msg {
                ChannelMsg::Data { data } => out.push(&data, max_output),
                ChannelMsg::ExtendedData { data, ext: 1 } => err.push(&data, max_output),
                ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    signal = Some(format!("{signal_name:?}"));
                }
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        let (stdout, t1) = out.finish(max_output);
        let (stderr, t2) = err.finish(max_output);
        Ok(Ended::Closed(CommandOutput {
            exit_status: status,
            exit_signal: signal,
            stdout,
            stderr,
            truncated: t1 || t2,
        }))
    }

    /// Whether the connection is gone (the server dropped it).
    pub(super) fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Says goodbye, bounded; errors ignored (the server may be gone).
    pub(super) async fn close(self) {
        close(self.handle).await;
    }
}

async fn close(handle: client::Handle<PinCheck>) {
    let bye = handle.disconnect(Disconnect::ByApplication, "", "en");
    if tokio::time::timeout(DISCONNECT_TIMEOUT, bye).await.is_err() {
        tracing::debug!("SSH disconnect timed out; dropping the connection");
    }
}

/// What a raw command reads on its standard input.
pub(super) enum Input<'a> {
    Nothing,
    Bytes(&'a [u8]),
    /// A local file, sent in chunks (never whole in memory).
    File(&'a mut std::fs::File),
}

/// Where a raw command's standard output goes.
pub(super) enum Sink<'a> {
    /// Kept in memory, at most this many bytes (the rest counted).
    Memory(usize),
    /// Written to a local file, at most this many bytes.
    File(&'a mut std::fs::File, u64),
}

/// How a raw command ended: its status and stderr (text, capped), and
/// its stdout bytes when kept in memory.
#[derive(Debug, Default)]
pub(super) struct RawOutput {
    pub exit_status: Option<u32>,
    pub exit_signal: Option<String>,
    pub stdout: Vec<u8>,
    /// Bytes of stdout received (kept or not).
    pub stdout_len: u64,
    /// Stdout went over the sink's cap.
    pub stdout_over: bool,
    pub stderr: String,
}

/// Chunk size for a file sent on a channel.
const SEND_CHUNK: usize = 256 << 10;
/// Stderr kept from a file-transfer command.
const RAW_STDERR_CAP: usize = 16 << 10;

impl Session {
    /// Runs `line` with `input` on its stdin (then EOF) and its stdout
    /// into `sink`, all within `timeout`; `None` when the time ran out
    /// (the channel is then closed and the command signalled).
    pub(super) async fn exec_raw(
        &self,
        line: &str,
        input: Input<'_>,
        mut sink: Sink<'_>,
        timeout: Duration,
    ) -> Result<Option<RawOutput>, SshError> {
        let session_err = |e: russh::Error| SshError::Session {
            host: self.host.clone(),
            stage: Stage::Exec,
            reason: e.to_string(),
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let opened = tokio::time::timeout_at(deadline, async {
            let channel = self.handle.channel_open_session().await?;
            channel.exec(true, line).await?;
            Ok::<_, russh::Error>(channel)
        })
        .await;
        let mut channel = match opened {
            Err(_) => return Ok(None),
            Ok(r) => r.map_err(session_err)?,
        };
        // Send the input; a command that stops reading early (it failed)
        // makes the send fail: its status and stderr below say why.
        let sent = tokio::time::timeout_at(deadline, async {
            match input {
                Input::Nothing => {}
                Input::Bytes(b) => channel.data(b).await?,
                Input::File(f) => {
                    use std::io::Read as _;
                    let mut buf = vec![0u8; SEND_CHUNK];
                    loop {
                        let n = f.read(&mut buf).map_err(russh::Error::IO)?;
                        if n == 0 {
                            break;
                        }
                        channel.data(&buf[..n]).await?;
                    }
                }
            }
            channel.eof().await
        })
        .await;
        match sent {
            Err(_) => {
                stop_channel(&channel).await;
                return Ok(None);
            }
            Ok(Err(e)) => tracing::debug!(host = %self.host, error = %e, "input not sent whole"),
            Ok(Ok(())) => {}
        }
        let mut out = RawOutput::default();
        let mut err = Capped::default();
        loop {
            let msg = match tokio::time::timeout_at(deadline, channel.wait()).await {
                Ok(Some(msg)) => msg,
                Ok(None) => break,
                Err(_) => {
                    stop_channel(&channel).await;
                    return Ok(None);
                }
            };
            match msg {
                ChannelMsg::Data { data } => {
                    out.stdout_len += data.len() as u64;
                    match &mut sink {
                        Sink::Memory(cap) => {
                            let room = cap.saturating_sub(out.stdout.len());
                            if data.len() > room {
                                out.stdout_over = true;
                            }
                            out.stdout.extend_from_slice(&data[..room.min(data.len())]);
                        }
                        Sink::File(file, cap) => {
                            if out.stdout_len > *cap {
                                out.stdout_over = true;
                            } else if !out.stdout_over {
                                use std::io::Write as _;
                                file.write_all(&data).map_err(|e| SshError::Session {
                                    host: self.host.clone(),
                                    stage: Stage::Exec,
                                    reason: format!("writing the local copy: {e}"),
                                })?;
                            }
                        }
                    }
                }
                ChannelMsg::ExtendedData { data, ext: 1 } => err.push(&data, RAW_STDERR_CAP),
                ChannelMsg::ExitStatus { exit_status } => out.exit_status = Some(exit_status),
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    out.exit_signal = Some(format!("{signal_name:?}"));
                }
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        out.stderr = err.finish(RAW_STDERR_CAP).0;
        Ok(Some(out))
    }
}

/// Asks sshd to end a channel's command and closes it (bounded).
async fn stop_channel(channel: &russh::Channel<client::Msg>) {
    let stop = async {
        let _ = channel.signal(Sig::KILL).await;
        let _ = channel.close().await;
    };
    let _ = tokio::time::timeout(DISCONNECT_TIMEOUT, stop).await;
}
