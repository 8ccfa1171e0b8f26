//! Caddy's JSON access log read back into typed entries: who fetched what,
//! when, with which answer. Every field is validated (an address, a method
//! token, a path of printable characters, a status, a size, a time); a line
//! that fails is skipped with a warning naming the line and the field.
//! Also the [`PxeEvidence`] Harmony's reboot confirmation uses: a host
//! fetched its per-MAC iPXE script, or (from its own address) a kernel or
//! the default script, after a moment.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::Deserialize;

use crate::domain::{
    CapResult, CapabilityError, HostId, MacAddress, PxeEvidence, RelativePath, RemoteHost,
};

/// The end of the log read at most (older lines are rolled anyway).
const MAX_READ: u64 = 32 << 20;

/// One request Caddy served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    pub time: SystemTime,
    pub client: IpAddr,
    /// An HTTP method token (`GET`, `HEAD`...).
    pub method: String,
    /// The request URI as sent (path and query), printable ASCII.
    pub uri: String,
    /// The URI without its query.
    pub path: String,
    pub status: u16,
    /// Bytes of the body sent.
    pub bytes: u64,
}

#[derive(Debug, Deserialize)]
struct Line {
    ts: f64,
    request: Request,
    status: i64,
    size: i64,
}

#[derive(Debug, Deserialize)]
struct Request {
    remote_ip: String,
    method: String,
    uri: String,
}

/// One line, validated; the error names the field.
pub fn parse_line(line: &str) -> Result<AccessEntry, String> {
    let l: Line = serde_json::from_str(line).map_err(|e| format!("not an access record: {e}"))?;
    if !(l.ts.is_finite() && l.ts >= 0.0 && l.ts < 1e11) {
        return Err(format!("ts: {} is not a time", l.ts));
    }
    let time = UNIX_EPOCH + Duration::from_secs_f64(l.ts);
    let client: IpAddr = l.request.remote_ip.parse().map_err(|_| {
        format!(
            "remote_ip: {:?} is not an address",
            cut(&l.request.remote_ip)
        )
    })?;
    let m = &l.request.method;
    if m.is_empty() || m.len() > 16 || !m.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!("method: {:?} is not a method", cut(m)));
    }
    let uri = &l.request.uri;
    if !uri.starts_with('/') || uri.len() > 8192 || !uri.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("uri: {:?} is not a request path", cut(uri)));
    }
    let status = u16::try_from(l.status)
        .ok()
        .filter(|s| (100..=599).contains(s))
        .ok_or_else(|| format!("status: {} is not an HTTP status", l.status))?;
    let bytes = u64::try_from(l.size).map_err(|_| format!("size: {} is negative", l.size))?;
    let path = uri.split('?').next().unwrap_or_default().to_string();
    Ok(AccessEntry {
        time,
        client,
        method: m.clone(),
        uri: uri.clone(),
        path,
        status,
        bytes,
    })
}

fn cut(s: &str) -> String {
    s.chars().take(80).collect()
}

/// The entries of the log at `path` (its last [`MAX_READ`] bytes), oldest
/// first; bad lines skipped with a warning. A missing log is empty.
pub fn read(path: &Path) -> std::io::Result<Vec<AccessEntry>> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    let start = len.saturating_sub(MAX_READ);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    f.take(MAX_READ).read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let mut lines = text.lines();
    if start > 0 {
        lines.next(); // a partial line
    }
    let mut out = Vec::new();
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line) {
            Ok(e) => out.push(e),
            Err(reason) => {
                tracing::warn!(log = %path.display(), line = i + 1, %reason, "access log line skipped");
            }
        }
    }
    Ok(out)
}

/// [`PxeEvidence`] from Caddy's access log: since the moment, a successful
/// GET of `/ipxe/<mac>.ipxe` for one of the host's MACs (registered with
/// [`AccessLogEvidence::know_host`]), or from the host's own address a GET
/// of `default.ipxe` or a kernel.
#[derive(Debug)]
pub struct AccessLogEvidence {
    log: PathBuf,
    macs: Mutex<BTreeMap<HostId, Vec<MacAddress>>>,
}

impl AccessLogEvidence {
    pub fn new(log: impl Into<PathBuf>) -> Self {
        Self {
            log: log.into(),
            macs: Mutex::new(BTreeMap::new()),
        }
    }

    /// The MACs whose per-MAC script counts as this host's.
    pub fn know_host(&self, id: HostId, macs: Vec<MacAddress>) {
        self.macs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, macs);
    }

    /// Whether `entry` shows `host` starting a network boot.
    ///
    /// A request for its per-MAC script counts whatever the answer: a host
    /// rebooted back into discovery asks for the script Harmony removed
    /// (404) from an address it was just leased, not the one Harmony knew.
    fn shows(&self, entry: &AccessEntry, host: &RemoteHost, macs: &[MacAddress]) -> bool {
        if entry.method != "GET" {
            return false;
        }
        let per_mac = macs
            .iter()
            .any(|m| entry.path == format!("/ipxe/{}.ipxe", m.hyphenated()));
        if per_mac && matches!(entry.status, 200 | 206 | 304 | 404) {
            return true;
        }
        let file = entry.path.rsplit('/').next().unwrap_or_default();
        let boot_file = file == "default.ipxe" || file == "kernel" || file.contains("vmlinuz");
        matches!(entry.status, 200 | 206 | 304) && entry.client == host.ip && boot_file
    }
}

#[async_trait]
impl PxeEvidence for AccessLogEvidence {
    async fn pxe_started_since(&self, host: &RemoteHost, since: SystemTime) -> CapResult<bool> {
        let macs = self
            .macs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&host.id)
            .cloned()
            .unwrap_or_default();
        let log = self.log.clone();
        let entries = tokio::task::spawn_blocking(move || read(&log))
            .await
            .map_err(|e| CapabilityError::new("caddy", format!("access log task: {e}")))?
            .map_err(|e| CapabilityError::new("caddy", format!("{}: {e}", self.log.display())))?;
        Ok(entries
            .iter()
            .any(|e| e.time >= since && self.shows(e, host, &macs)))
    }

    async fn fetched_since(
        &self,
        client: IpAddr,
        path: &RelativePath,
        any_client: bool,
        since: SystemTime,
    ) -> CapResult<bool> {
        let log = self.log.clone();
        let entries = tokio::task::spawn_blocking(move || read(&log))
            .await
            .map_err(|e| CapabilityError::new("caddy", format!("access log task: {e}")))?
            .map_err(|e| CapabilityError::new("caddy", format!("{}: {e}", self.log.display())))?;
        let wanted = format!("/{path}");
        Ok(entries.iter().any(|e| {
            e.time >= since
                && e.method == "GET"
                && matches!(e.status, 200 | 206 | 304)
                && e.path == wanted
                && (any_client || e.client == client)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"level":"info","ts":1795707534.971099,"logger":"http.log.access.log0","msg":"handled request","request":{"remote_ip":"127.0.0.1","remote_port":"38426","proto":"HTTP/1.1","method":"GET","host":"127.0.0.1:18080","uri":"/vmlinuz?x=1","headers":{}},"duration":0.0002,"size":10,"status":206,"resp_headers":{}}"#;

    #[test]
    fn lines_are_validated() {
        let e = parse_line(GOOD).unwrap();
        assert_eq!(e.client, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(
            (e.method.as_str(), e.path.as_str(), e.uri.as_str()),
            ("GET", "/vmlinuz", "/vmlinuz?x=1")
        );
        assert_eq!((e.status, e.bytes), (206, 10));
        for (from, to, field) in [
            ("\"127.0.0.1\"", "\"not-an-ip\"", "remote_ip"),
            ("\"GET\"", "\"G\\nET\"", "method"),
            ("\"/vmlinuz?x=1\"", "\"/a\\u001b[31m\"", "uri"),
            ("\"status\":206", "\"status\":999", "status"),
            ("\"size\":10", "\"size\":-1", "size"),
        ] {
            let bad = GOOD.replace(from, to);
            let err = parse_line(&bad).unwrap_err();
            assert!(err.starts_with(field), "{err}");
        }
        assert!(parse_line("garbage").is_err());
    }

    /// What counts as a host starting a network boot: its per-MAC script
    /// asked for (found, or removed for a reboot into discovery and asked
    /// from a new address), or a boot file from its own address; not
    /// another host's, not a failed or non-GET request.
    #[test]
    fn a_host_starting_to_pxe_is_seen_by_its_script_or_boot_files() {
        let ev = AccessLogEvidence::new("/nonexistent");
        let mac: MacAddress = "52:54:00:1d:00:01".parse().unwrap();
        let host = RemoteHost::installed(
            "macs:52:54:00:1d:00:01".parse().unwrap(),
            "198.51.100.10".parse().unwrap(),
        );
        let entry = |client: &str, path: &str, status: u16, method: &str| AccessEntry {
            time: SystemTime::UNIX_EPOCH,
            client: client.parse().unwrap(),
            method: method.into(),
            uri: path.into(),
            path: path.into(),
            status,
            bytes: 0,
        };
        let script = "/ipxe/52-54-00-1d-00-01.ipxe";
        for (e, seen) in [
            (entry("198.51.100.180", script, 404, "GET"), true),
            (entry("198.51.100.10", script, 200, "GET"), true),
            (entry("198.51.100.180", script, 500, "GET"), false),
            (entry("198.51.100.180", script, 404, "HEAD"), false),
            (
                entry("198.51.100.180", "/ipxe/52-54-00-1d-00-09.ipxe", 404, "GET"),
                false,
            ),
            (entry("198.51.100.10", "/default.ipxe", 200, "GET"), true),
            (entry("198.51.100.10", "/default.ipxe", 404, "GET"), false),
            (entry("198.51.100.180", "/default.ipxe", 200, "GET"), false),
            (
                entry("198.51.100.10", "/os/scos-4.19/kernel", 200, "GET"),
                true,
            ),
        ] {
            assert_eq!(
                ev.shows(&e, &host, &[mac]),
                seen,
                "{} {} {}",
                e.client,
                e.path,
                e.status
            );
        }
    }
}
