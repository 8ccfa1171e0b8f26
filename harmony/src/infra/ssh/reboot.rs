//! Reboot over SSH and its confirmation: issue the reboot command (the
//! expected disconnect is success), then poll, bounded, until the host's
//! SSH port stops answering, and per [`RebootConfirm`] until it answers
//! again or a [`PxeEvidence`] source saw it start a network boot.
//!
//! "Answers" means a TCP connection to the SSH port gets an `SSH-` banner
//! within the probe timeout: a host shutting down may still accept TCP for
//! a moment, and a refused, reset, silent or unreachable port is down.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::session::Ended;
use super::{SshError, SshShell};
use crate::domain::{RebootConfirm, RebootReport, RemoteCommand, RemoteHost};

/// Whether an SSH server answers at `addr`: a banner within `limit`.
pub async fn ssh_answers(addr: SocketAddr, limit: Duration) -> bool {
    let probe = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let mut buf = [0u8; 4];
        stream.read_exact(&mut buf).await.ok()?;
        Some(&buf == b"SSH-")
    };
    matches!(tokio::time::timeout(limit, probe).await, Ok(Some(true)))
}

impl SshShell {
    pub(super) async fn reboot_host(
        &self,
        host: &RemoteHost,
        confirm: RebootConfirm,
    ) -> Result<RebootReport, SshError> {
        let name = host.to_string();
        if confirm == RebootConfirm::StartedPxe && self.pxe.is_none() {
            return Err(SshError::NoPxeEvidence { host: name });
        }
        let session = self.open(host).await?;
        let since = SystemTime::now();
        let issued = Instant::now();
        let line = &self.line_for(host, &RemoteCommand::Reboot);
        tracing::info!(host = %name, command = %line, "rebooting");
        // Issued: the channel ends with status 0 (systemctl returns at once),
        // or the connection drops, or nothing comes back in time (a host
        // going down); the polling below decides.
        match session
            .exec(line, self.config.reboot_issue_timeout, 64 * 1024)
            .await
        {
            Ok(Ended::Closed(out)) if out.exit_status.is_some_and(|s| s != 0) => {
                session.close().await;
                return Err(SshError::RebootRefused {
                    host: name,
                    status: out.exit_status.unwrap_or_default(),
                    stderr: out.stderr.chars().take(500).collect(),
                });
            }
            Ok(_) => {}
            Err(e) if session.is_closed() => {
                tracing::debug!(host = %name, error = %e, "connection dropped by the reboot, as expected");
            }
            Err(e) => {
                tracing::debug!(host = %name, error = %e, "reboot channel failed; confirming by polling");
            }
        }
        session.close().await;

        let addr = SocketAddr::new(host.ip, self.config.port);
        let down_after = self
            .poll(self.config.down_within, || async {
                Ok(!ssh_answers(addr, self.config.probe_timeout).await)
            })
            .await?
            .map(|_| issued.elapsed())
            .ok_or_else(|| SshError::NotDown {
                host: name.clone(),
                within: self.config.down_within,
            })?;
        tracing::info!(host = %name, after = ?down_after, "host went down");
        let mut report = RebootReport {
            down_after,
            up_after: None,
            pxe_after: None,
        };
        match confirm {
            RebootConfirm::Down => {}
            RebootConfirm::BackUp => {
                let up = self
                    .poll(self.config.up_within, || async {
                        Ok(ssh_answers(addr, self.config.probe_timeout).await)
                    })
                    .await?;
                if up.is_none() {
                    return Err(SshError::NotBackUp {
                        host: name,
                        within: self.config.up_within,
                    });
                }
                report.up_after = Some(issued.elapsed());
                tracing::info!(host = %name, after = ?report.up_after, "host answers again");
            }
            RebootConfirm::StartedPxe => {
                let Some(evidence) = &self.pxe else {
                    return Err(SshError::NoPxeEvidence { host: name });
                };
                let seen = self
                    .poll(self.config.up_within, || async {
                        evidence.pxe_started_since(host, since).await.map_err(|e| {
                            SshError::PxeEvidence {
                                host: name.clone(),
                                reason: e.to_string(),
                            }
                        })
                    })
                    .await?;
                if seen.is_none() {
                    return Err(SshError::NoPxe {
                        host: name,
                        within: self.config.up_within,
                    });
                }
                report.pxe_after = Some(issued.elapsed());
                tracing::info!(host = %name, after = ?report.pxe_after, "host started to PXE");
            }
        }
        Ok(report)
    }

    /// Calls `check` every poll interval until it says yes (`Some`) or
    /// `limit` has passed (`None`); at most `limit / interval + 1` calls.
    async fn poll<F, Fut>(&self, limit: Duration, mut check: F) -> Result<Option<()>, SshError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<bool, SshError>>,
    {
        let start = Instant::now();
        let interval = self.config.poll_interval.max(Duration::from_millis(10));
        let rounds = limit.as_millis() / interval.as_millis() + 1;
        for _ in 0..=rounds {
            if check().await? {
                return Ok(Some(()));
            }
            if start.elapsed() >= limit {
                break;
            }
            tokio::time::sleep(interval).await;
        }
        Ok(None)
    }
}
