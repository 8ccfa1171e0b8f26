//! HAProxy's master CLI (the `-S` socket of master-worker mode): `show
//! proc`, which says how many reloads the master did, how many failed since
//! the last success, and which workers serve now. A reload is confirmed by
//! the reload counter moving and the failure counter staying at zero.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Bytes read of an answer at most.
const MAX_ANSWER: u64 = 64 * 1024;

/// What `show proc` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStatus {
    pub master_pid: u32,
    /// Reloads done (successful or not).
    pub reloads: u32,
    /// Failed reloads since the last successful one.
    pub failed: u32,
    /// The current workers' pids (old workers finishing connections left
    /// out).
    pub workers: Vec<u32>,
}

/// Sends `show proc` on the master socket, within `limit`.
pub async fn show_proc(socket: &Path, limit: Duration) -> std::io::Result<ProcStatus> {
    let exchange = async {
        let mut s = UnixStream::connect(socket).await?;
        s.write_all(b"show proc\n").await?;
        // The master answers, then closes once the client has finished.
        s.shutdown().await?;
        let mut answer = String::new();
        (&mut s)
            .take(MAX_ANSWER)
            .read_to_string(&mut answer)
            .await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(limit, exchange)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in time"))??;
    parse_show_proc(&answer).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "unexpected answer to show proc: {:?}",
                answer.chars().take(300).collect::<String>()
            ),
        )
    })
}

/// Parses HAProxy 2.6's table:
/// ```text
/// #<PID>          <type>          <reloads>       <uptime>        <version>
/// 21212           master          1 [failed: 1]   0d00h00m08s     2.6.12
/// # workers
/// 21215           worker          1               0d00h00m08s     2.6.12
/// # old workers
/// # programs
/// ```
pub fn parse_show_proc(text: &str) -> Option<ProcStatus> {
    let mut master = None;
    let mut workers = Vec::new();
    let mut section = "";
    for line in text.lines() {
        let line = line.trim();
        if let Some(title) = line.strip_prefix('#') {
            section = if title.trim() == "workers" {
                "workers"
            } else {
                "other"
            };
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [pid, "master", reloads, "[failed:", failed, ..] => {
                master = Some((
                    pid.parse().ok()?,
                    reloads.parse().ok()?,
                    failed.trim_end_matches(']').parse().ok()?,
                ));
            }
            [pid, "worker", ..] if section == "workers" => workers.push(pid.parse().ok()?),
            _ => {}
        }
    }
    let (master_pid, reloads, failed) = master?;
    Some(ProcStatus {
        master_pid,
        reloads,
        failed,
        workers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_table() {
        let t = "#<PID>          <type>          <reloads>       <uptime>        <version>      \n\
21212           master          2 [failed: 1]   0d00h00m09s     2.6.12-1+deb12u4\n\
# workers\n\
21346           worker          0               0d00h00m01s     2.6.12-1+deb12u4\n\
# old workers\n\
21215           worker          1               0d00h00m08s     2.6.12-1+deb12u4\n\
# programs\n\n";
        assert_eq!(
            parse_show_proc(t),
            Some(ProcStatus {
                master_pid: 21212,
                reloads: 2,
                failed: 1,
                workers: vec![21346],
            })
        );
        assert_eq!(parse_show_proc("Unknown command\n"), None);
    }
}
