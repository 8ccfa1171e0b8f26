//! A small client of QEMU's machine protocol (QMP) over its Unix socket:
//! the server greets with `{"QMP": {...}}`, the client sends
//! `{"execute": "qmp_capabilities"}` to leave negotiation mode, then one
//! command at a time; each answer is `{"return": ...}` or `{"error":
//! {"class", "desc"}}`, and asynchronous `{"event": ...}` lines may come in
//! between (QEMU's `docs/interop/qmp-spec.rst`). Every read and write is
//! bounded by a timeout.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use super::LabError;

/// An answer longer than this is refused (a runaway peer).
const MAX_LINE: usize = 1 << 20;
/// Events read while waiting for one answer, at most.
const MAX_EVENTS_PER_ANSWER: usize = 1000;

/// The run state `query-status` reports (`running`, `paused`, `shutdown`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QmpStatus {
    pub running: bool,
    pub status: String,
}

/// A negotiated QMP session.
#[derive(Debug)]
pub struct QmpClient {
    socket: PathBuf,
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    timeout: Duration,
    /// Events seen so far (e.g. `SHUTDOWN`, `POWERDOWN`, `RESET`), by name.
    pub events: Vec<String>,
}

impl QmpClient {
    /// Connects, reads the greeting and negotiates capabilities; every
    /// step within `timeout`.
    pub async fn connect(socket: &Path, timeout: Duration) -> Result<QmpClient, LabError> {
        let stream = tokio::time::timeout(timeout, UnixStream::connect(socket))
            .await
            .map_err(|_| qmp_err(socket, format!("connect: no answer within {timeout:?}")))?
            .map_err(|e| qmp_err(socket, format!("connect: {e}")))?;
        let (r, w) = stream.into_split();
        let mut c = QmpClient {
            socket: socket.to_path_buf(),
            reader: BufReader::new(r),
            writer: w,
            timeout,
            events: Vec::new(),
        };
        let greeting = c.read_message().await?;
        if greeting.get("QMP").is_none() {
            return Err(c.err(format!("expected the QMP greeting, got {greeting}")));
        }
        c.execute("qmp_capabilities", None).await?;
        Ok(c)
    }

    /// Runs one command; returns its `return` value or the error QEMU gave.
    pub async fn execute(&mut self, command: &str, args: Option<Value>) -> Result<Value, LabError> {
        let mut msg = json!({ "execute": command });
        if let Some(a) = args {
            msg["arguments"] = a;
        }
        let mut line = msg.to_string();
        line.push('\n');
        tokio::time::timeout(self.timeout, self.writer.write_all(line.as_bytes()))
            .await
            .map_err(|_| self.err(format!("{command}: write timed out")))?
            .map_err(|e| self.err(format!("{command}: write: {e}")))?;
        for _ in 0..MAX_EVENTS_PER_ANSWER {
            let v = self.read_message().await?;
            if let Some(ev) = v.get("event").and_then(Value::as_str) {
                self.events.push(ev.to_string());
                continue;
            }
            if let Some(r) = v.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = v.get("error") {
                let class = e.get("class").and_then(Value::as_str).unwrap_or("?");
                let desc = e.get("desc").and_then(Value::as_str).unwrap_or("?");
                return Err(self.err(format!("{command}: {class}: {desc}")));
            }
            return Err(self.err(format!("{command}: unexpected message {v}")));
        }
        Err(self.err(format!(
            "{command}: no answer among {MAX_EVENTS_PER_ANSWER} events"
        )))
    }

    /// `query-status`.
    pub async fn status(&mut self) -> Result<QmpStatus, LabError> {
        let v = self.execute("query-status", None).await?;
        let running = v.get("running").and_then(Value::as_bool);
        let status = v.get("status").and_then(Value::as_str);
        match (running, status) {
            (Some(running), Some(status)) => Ok(QmpStatus {
                running,
                status: status.to_string(),
            }),
            _ => Err(self.err(format!("query-status: unexpected answer {v}"))),
        }
    }

    /// Pulls the power cord: `quit` ends QEMU at once.
    pub async fn power_off(&mut self) -> Result<(), LabError> {
        match self.execute("quit", None).await {
            Ok(_) => Ok(()),
            // QEMU may close the socket before its answer arrives.
            Err(LabError::Qmp { message, .. }) if message.contains("closed") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The ACPI power button (`system_powerdown`): the guest decides.
    pub async fn power_button(&mut self) -> Result<(), LabError> {
        self.execute("system_powerdown", None).await.map(|_| ())
    }

    /// The reset button (`system_reset`).
    pub async fn reset(&mut self) -> Result<(), LabError> {
        self.execute("system_reset", None).await.map(|_| ())
    }

    /// Resumes a machine started paused (`-S`) or stopped (`cont`).
    pub async fn power_on(&mut self) -> Result<(), LabError> {
        self.execute("cont", None).await.map(|_| ())
    }

    async fn read_message(&mut self) -> Result<Value, LabError> {
        let mut line = String::new();
        let n = tokio::time::timeout(self.timeout, read_bounded_line(&mut self.reader, &mut line))
            .await
            .map_err(|_| self.err(format!("no message within {:?}", self.timeout)))?
            .map_err(|e| self.err(format!("read: {e}")))?;
        if n == 0 {
            return Err(self.err("connection closed by QEMU".to_string()));
        }
        serde_json::from_str(line.trim_end())
            .map_err(|e| self.err(format!("not JSON ({e}): {:.200}", line.trim_end())))
    }

    fn err(&self, message: String) -> LabError {
        qmp_err(&self.socket, message)
    }
}

async fn read_bounded_line(
    reader: &mut BufReader<OwnedReadHalf>,
    line: &mut String,
) -> std::io::Result<usize> {
    let mut buf = Vec::new();
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            break;
        }
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        buf.extend_from_slice(&chunk[..take]);
        reader.consume(take);
        if buf.len() > MAX_LINE {
            return Err(std::io::Error::other(format!(
                "a message longer than {MAX_LINE} bytes"
            )));
        }
        if done {
            break;
        }
    }
    *line = String::from_utf8_lossy(&buf).into_owned();
    Ok(buf.len())
}

fn qmp_err(socket: &Path, message: String) -> LabError {
    LabError::Qmp {
        socket: socket.display().to_string(),
        message,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::UnixListener;

    /// A scripted peer: greeting, then answers by command name.
    async fn peer(listener: UnixListener, answers: Vec<&'static str>) {
        let (mut s, _) = listener.accept().await.unwrap();
        s.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 4096];
        for a in answers {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0);
            s.write_all(a.as_bytes()).await.unwrap();
        }
    }

    #[tokio::test]
    async fn negotiates_skips_events_and_reports_errors() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let server = tokio::spawn(peer(
            listener,
            vec![
                "{\"return\": {}}\r\n",
                "{\"event\": \"RESUME\", \"timestamp\": {}}\r\n{\"return\": {\"running\": true, \"status\": \"running\"}}\r\n",
                "{\"error\": {\"class\": \"GenericError\", \"desc\": \"nope\"}}\r\n",
            ],
        ));
        let mut c = QmpClient::connect(&sock, Duration::from_secs(5))
            .await
            .unwrap();
        let st = c.status().await.unwrap();
        assert!(st.running);
        assert_eq!(st.status, "running");
        assert_eq!(c.events, vec!["RESUME"]);
        let e = c.reset().await.unwrap_err().to_string();
        assert!(e.contains("system_reset: GenericError: nope"), "{e}");
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_silent_peer_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let hold = tokio::spawn(async move { listener.accept().await.map(|(s, _)| s) });
        let e = QmpClient::connect(&sock, Duration::from_millis(300))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("no message within"), "{e}");
        drop(hold);
    }
}
