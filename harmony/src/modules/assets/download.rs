//! A resumable, verifying HTTP downloader on hyper's http1 client.
//!
//! The body streams into `<dest>.part` in the destination directory while
//! SHA-256 is computed; an existing `.part` is hashed first and resumed with
//! `Range: bytes=N-` (a `200` answer restarts from zero). The finished file
//! is checked against the expected digest and only then renamed onto `dest`
//! ([`move_atomic`]); a mismatch deletes the `.part`.
//!
//! Plain `http://` only: boot assets are verified by SHA-256, so transport
//! security adds nothing to their integrity, and the provisioning network
//! mirrors are plain HTTP. An `https://` URL (or a redirect to one) is
//! refused with [`DownloadError::UnsupportedScheme`].

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;

use crate::domain::{Change, HttpUrl, ValueError};
use crate::infra::fs::move_atomic;

/// A SHA-256 digest as 64 lower-case hex characters (upper case accepted
/// on input).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sha256Digest(String);

impl Sha256Digest {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Validates `s` as the value of `field` (named in the error).
    pub fn parse_field(field: &'static str, s: &str) -> Result<Self, ValueError> {
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ValueError::new(
                field,
                s,
                "expected 64 hex characters (SHA-256)",
            ));
        }
        Ok(Self(s.to_ascii_lowercase()))
    }

    fn from_hasher(h: Sha256) -> Self {
        Self(hex::encode(h.finalize()))
    }
}

impl FromStr for Sha256Digest {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_field("sha256", s)
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

/// Limits of one download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DownloadConfig {
    /// TCP connect, per attempt.
    #[serde(with = "humantime_duration")]
    pub connect_timeout: Duration,
    /// Longest wait for response headers or for the next body chunk.
    #[serde(with = "humantime_duration")]
    pub idle_timeout: Duration,
    /// Largest file accepted, in bytes.
    pub max_size: u64,
    /// Redirects followed (http only).
    pub max_redirects: u8,
    /// Attempts per call; each one resumes from the `.part` left by the last.
    pub attempts: u32,
}

impl Default for DownloadConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_size: 8 << 30,
            max_redirects: 5,
            attempts: 3,
        }
    }
}

/// Called with (bytes done, bytes total; 0 when unknown).
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

/// What a successful download did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadReport {
    pub bytes: u64,
    /// Bytes taken over from a `.part` left by an earlier attempt.
    pub resumed_from: u64,
    /// HTTP requests made (redirects and retries included).
    pub requests: u32,
    /// `Unchanged` when `dest` already held these bytes.
    pub change: Change,
}

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("{url}: only http:// is supported (assets are verified by SHA-256)")]
    UnsupportedScheme { url: String },
    #[error("{url}: invalid URL: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("{url}: connect failed: {source}")]
    Connect {
        url: String,
        #[source]
        source: io::Error,
    },
    #[error("{url}: no connection within {}", humantime::format_duration(*after))]
    ConnectTimeout { url: String, after: Duration },
    #[error("{url}: server idle for {}", humantime::format_duration(*after))]
    IdleTimeout { url: String, after: Duration },
    #[error("{url}: HTTP error: {message}")]
    Http { url: String, message: String },
    #[error("{url}: server answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: more than {max} redirects")]
    TooManyRedirects { url: String, max: u8 },
    #[error("{url}: larger than the {limit}-byte limit")]
    TooLarge { url: String, limit: u64 },
    #[error(
        "checksum mismatch for {}: expected sha256 {expected}, got {actual} (download deleted)",
        file.display()
    )]
    Checksum {
        file: PathBuf,
        expected: Sha256Digest,
        actual: Sha256Digest,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl DownloadError {
    /// Worth another attempt (from the `.part`): transport trouble, not a
    /// wrong answer.
    fn retryable(&self) -> bool {
        matches!(
            self,
            DownloadError::Connect { .. }
                | DownloadError::ConnectTimeout { .. }
                | DownloadError::IdleTimeout { .. }
                | DownloadError::Http { .. }
        )
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> DownloadError + '_ {
    move |source| DownloadError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `<dest>.part`, next to `dest`.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

/// SHA-256 and size of a file (blocking; large files take a while).
pub fn hash_file(path: &Path) -> io::Result<(Sha256Digest, u64)> {
    let mut h = Sha256::new();
    let n = hash_into(path, &mut h)?;
    Ok((Sha256Digest::from_hasher(h), n))
}

/// [`hash_file`] on the blocking pool.
pub async fn hash_file_async(path: &Path) -> io::Result<(Sha256Digest, u64)> {
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || hash_file(&p))
        .await
        .map_err(io::Error::other)?
}

fn hash_into(path: &Path, h: &mut Sha256) -> io::Result<u64> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        h.update(&buf[..n]);
        total += n as u64;
    }
}

/// Downloads `url` to `dest`, verified against `expected`; see the module
/// documentation. Makes up to `cfg.attempts` attempts, each resuming the
/// `.part` the previous one left.
pub async fn download(
    url: &HttpUrl,
    dest: &Path,
    expected: &Sha256Digest,
    cfg: &DownloadConfig,
    progress: Progress<'_>,
) -> Result<DownloadReport, DownloadError> {
    let dir = dest.parent().ok_or_else(|| DownloadError::Io {
        path: dest.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "destination has no parent"),
    })?;
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let part = part_path(dest);
    let mut requests = 0u32;
    let mut first_resume: Option<u64> = None;
    let attempts = cfg.attempts.max(1);
    let mut last_err = None;
    for attempt in 1..=attempts {
        match attempt_once(url, &part, cfg, progress, &mut requests).await {
            Ok((hasher, bytes, resumed)) => {
                first_resume.get_or_insert(resumed);
                let actual = Sha256Digest::from_hasher(hasher);
                if &actual != expected {
                    let _ = fs::remove_file(&part);
                    return Err(DownloadError::Checksum {
                        file: dest.to_path_buf(),
                        expected: expected.clone(),
                        actual,
                    });
                }
                // fsync and rename (and the comparison with an existing
                // file) off the async executor: assets are large.
                let (from, to) = (part.clone(), dest.to_path_buf());
                let change = tokio::task::spawn_blocking(move || move_atomic(&from, &to))
                    .await
                    .map_err(|e| io_err(dest)(std::io::Error::other(e)))?
                    .map_err(io_err(dest))?;
                return Ok(DownloadReport {
                    bytes,
                    resumed_from: first_resume.unwrap_or(0),
                    requests,
                    change,
                });
            }
            Err((e, resumed)) => {
                first_resume.get_or_insert(resumed);
                tracing::warn!(%url, attempt, error = %e, "download attempt failed");
                if !e.retryable() || attempt == attempts {
                    return Err(e);
                }
                last_err = Some(e);
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
        }
    }
    Err(last_err.unwrap_or(DownloadError::Http {
        url: url.to_string(),
        message: "no attempt made".into(),
    }))
}

type AttemptResult = Result<(Sha256, u64, u64), (DownloadError, u64)>;

/// One attempt: resumes `part` if present. Returns the hasher over the
/// whole file, its size and the offset resumed from.
async fn attempt_once(
    url: &HttpUrl,
    part: &Path,
    cfg: &DownloadConfig,
    progress: Progress<'_>,
    requests: &mut u32,
) -> AttemptResult {
    let mut hasher = Sha256::new();
    let offset = match fs::metadata(part) {
        Ok(m) if m.len() > 0 => {
            let p = part.to_path_buf();
            let hashed = tokio::task::spawn_blocking(move || {
                let mut h = Sha256::new();
                hash_into(&p, &mut h).map(|n| (h, n))
            })
            .await
            .map_err(io::Error::other)
            .and_then(|r| r)
            .map_err(|e| (io_err(part)(e), 0))?;
            hasher = hashed.0;
            hashed.1
        }
        _ => 0,
    };
    let (resp, final_url) = get_following(url, cfg, (offset > 0).then_some(offset), requests)
        .await
        .map_err(|e| (e, offset))?;
    let u = final_url.to_string();
    let (mut file, start) = match resp.status() {
        StatusCode::PARTIAL_CONTENT if offset > 0 => {
            let starts_at_offset = resp
                .headers()
                .get(header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.parse::<u64>().ok())
                == Some(offset);
            if !starts_at_offset {
                // Not the range we asked for: start over next attempt.
                let _ = fs::remove_file(part);
                return Err((
                    DownloadError::Http {
                        url: u,
                        message: format!("206 answer does not start at byte {offset}"),
                    },
                    offset,
                ));
            }
            let f = OpenOptions::new()
                .append(true)
                .open(part)
                .map_err(|e| (io_err(part)(e), offset))?;
            (f, offset)
        }
        StatusCode::OK => {
            if offset > 0 {
                tracing::info!(url = %u, offset, "server ignored the range; restarting from zero");
            }
            hasher = Sha256::new();
            let f = File::create(part).map_err(|e| (io_err(part)(e), offset))?;
            (f, 0)
        }
        StatusCode::RANGE_NOT_SATISFIABLE if offset > 0 => {
            // The .part may already be complete; the checksum decides, and
            // a wrong one deletes it so that the next run starts over.
            return Ok((hasher, offset, offset));
        }
        s => {
            return Err((
                DownloadError::Status {
                    url: u,
                    status: s.as_u16(),
                },
                offset,
            ));
        }
    };
    let announced = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let total = announced.map_or(0, |n| n + start);
    if total > cfg.max_size {
        let _ = fs::remove_file(part);
        return Err((
            DownloadError::TooLarge {
                url: u,
                limit: cfg.max_size,
            },
            offset,
        ));
    }
    let mut done = start;
    let mut reported = done;
    progress(done, total);
    let mut body = resp.into_body();
    // Bounded: each frame moves `done` forward and `done` is capped by
    // max_size; each wait is capped by idle_timeout.
    loop {
        let frame = match tokio::time::timeout(cfg.idle_timeout, body.frame()).await {
            Err(_) => {
                let _ = file.sync_all();
                return Err((
                    DownloadError::IdleTimeout {
                        url: u,
                        after: cfg.idle_timeout,
                    },
                    offset,
                ));
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                let _ = file.sync_all();
                return Err((
                    DownloadError::Http {
                        url: u,
                        message: e.to_string(),
                    },
                    offset,
                ));
            }
            Ok(Some(Ok(f))) => f,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if done + data.len() as u64 > cfg.max_size {
            drop(file);
            let _ = fs::remove_file(part);
            return Err((
                DownloadError::TooLarge {
                    url: u,
                    limit: cfg.max_size,
                },
                offset,
            ));
        }
        file.write_all(&data)
            .map_err(|e| (io_err(part)(e), offset))?;
        hasher.update(&data);
        done += data.len() as u64;
        if done - reported >= 4 << 20 {
            progress(done, total);
            reported = done;
        }
    }
    // The final fsync happens with the rename, on the blocking pool.
    progress(done, total.max(done));
    Ok((hasher, done, offset))
}

type Response = hyper::Response<hyper::body::Incoming>;

/// GET with an optional `Range: bytes=N-`, following up to
/// `cfg.max_redirects` redirects. Returns the response and the URL that
/// answered it.
async fn get_following(
    url: &HttpUrl,
    cfg: &DownloadConfig,
    range_from: Option<u64>,
    requests: &mut u32,
) -> Result<(Response, HttpUrl), DownloadError> {
    let mut current = url.clone();
    for _ in 0..=cfg.max_redirects {
        *requests += 1;
        let resp = get_once(&current, cfg, range_from).await?;
        if !resp.status().is_redirection() || resp.status() == StatusCode::NOT_MODIFIED {
            return Ok((resp, current));
        }
        let location = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| DownloadError::Http {
                url: current.to_string(),
                message: format!("redirect {} without a Location", resp.status()),
            })?;
        current = resolve_redirect(&current, location)?;
    }
    Err(DownloadError::TooManyRedirects {
        url: url.to_string(),
        max: cfg.max_redirects,
    })
}

fn resolve_redirect(base: &HttpUrl, location: &str) -> Result<HttpUrl, DownloadError> {
    let bad = |reason: String| DownloadError::BadUrl {
        url: location.to_string(),
        reason,
    };
    let absolute = if location.starts_with("http://") || location.starts_with("https://") {
        location.to_string()
    } else if location.starts_with('/') && !location.starts_with("//") {
        let target = Target::parse(base)?;
        format!("http://{}{location}", target.authority)
    } else {
        return Err(bad("only absolute redirects are followed".into()));
    };
    let next: HttpUrl = absolute
        .parse()
        .map_err(|e: ValueError| bad(e.to_string()))?;
    if next.as_str().starts_with("https://") {
        return Err(DownloadError::UnsupportedScheme {
            url: next.to_string(),
        });
    }
    Ok(next)
}

/// Where to connect and what to ask for.
struct Target {
    authority: String,
    host: String,
    port: u16,
    path: String,
}

impl Target {
    fn parse(url: &HttpUrl) -> Result<Self, DownloadError> {
        let s = url.as_str();
        let rest = s
            .strip_prefix("http://")
            .ok_or_else(|| DownloadError::UnsupportedScheme { url: s.to_string() })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let bad = |reason: &str| DownloadError::BadUrl {
            url: s.to_string(),
            reason: reason.to_string(),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (addr, after) = v6.split_once(']').ok_or_else(|| bad("unclosed bracket"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad("invalid port"))?,
                None => 80,
            };
            (addr.to_string(), port)
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad("invalid port"))?),
                None => (authority.to_string(), 80),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(Self {
            authority: authority.to_string(),
            host,
            port,
            path: path.to_string(),
        })
    }
}

async fn get_once(
    url: &HttpUrl,
    cfg: &DownloadConfig,
    range_from: Option<u64>,
) -> Result<Response, DownloadError> {
    let t = Target::parse(url)?;
    let u = url.to_string();
    let stream = tokio::time::timeout(
        cfg.connect_timeout,
        TcpStream::connect((t.host.as_str(), t.port)),
    )
    .await
    .map_err(|_| DownloadError::ConnectTimeout {
        url: u.clone(),
        after: cfg.connect_timeout,
    })?
    .map_err(|source| DownloadError::Connect {
        url: u.clone(),
        source,
    })?;
    let http = |e: &dyn fmt::Display| DownloadError::Http {
        url: u.clone(),
        message: e.to_string(),
    };
    let (mut sender, conn) = tokio::time::timeout(
        cfg.idle_timeout,
        hyper::client::conn::http1::handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| DownloadError::IdleTimeout {
        url: u.clone(),
        after: cfg.idle_timeout,
    })?
    .map_err(|e| http(&e))?;
    // The connection task ends with the response body (Connection: close).
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = Request::get(t.path.as_str())
        .header(header::HOST, t.authority.as_str())
        .header(header::USER_AGENT, "harmony-assets")
        .header(header::CONNECTION, "close");
    if let Some(n) = range_from {
        req = req.header(header::RANGE, format!("bytes={n}-"));
    }
    let req = req.body(Empty::<Bytes>::new()).map_err(|e| http(&e))?;
    tokio::time::timeout(cfg.idle_timeout, sender.send_request(req))
        .await
        .map_err(|_| DownloadError::IdleTimeout {
            url: u.clone(),
            after: cfg.idle_timeout,
        })?
        .map_err(|e| http(&e))
}

/// Fetches a small document (e.g. stream metadata) into memory, at most
/// `max` bytes.
pub async fn fetch_bytes(
    url: &HttpUrl,
    cfg: &DownloadConfig,
    max: u64,
) -> Result<Vec<u8>, DownloadError> {
    let mut requests = 0;
    let (resp, final_url) = get_following(url, cfg, None, &mut requests).await?;
    let u = final_url.to_string();
    if resp.status() != StatusCode::OK {
        return Err(DownloadError::Status {
            url: u,
            status: resp.status().as_u16(),
        });
    }
    let mut body = resp.into_body();
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(cfg.idle_timeout, body.frame()).await {
            Err(_) => {
                return Err(DownloadError::IdleTimeout {
                    url: u,
                    after: cfg.idle_timeout,
                });
            }
            Ok(None) => return Ok(out),
            Ok(Some(Err(e))) => {
                return Err(DownloadError::Http {
                    url: u,
                    message: e.to_string(),
                });
            }
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if out.len() as u64 + data.len() as u64 > max {
                        return Err(DownloadError::TooLarge { url: u, limit: max });
                    }
                    out.extend_from_slice(&data);
                }
            }
        }
    }
}

pub(crate) mod humantime_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_and_paths() {
        assert!("ab".parse::<Sha256Digest>().is_err());
        let d: Sha256Digest = "A".repeat(64).parse().unwrap();
        assert_eq!(d.as_str(), "a".repeat(64));
        assert!("g".repeat(64).parse::<Sha256Digest>().is_err());
        assert_eq!(
            part_path(Path::new("/srv/os/kernel")),
            Path::new("/srv/os/kernel.part")
        );
    }

    #[test]
    fn redirects_resolve_http_only() {
        let base: HttpUrl = "http://10.0.0.1:8080/a/b".parse().unwrap();
        assert_eq!(
            resolve_redirect(&base, "/c/d").unwrap().as_str(),
            "http://10.0.0.1:8080/c/d"
        );
        assert_eq!(
            resolve_redirect(&base, "http://m.example/x")
                .unwrap()
                .as_str(),
            "http://m.example/x"
        );
        assert!(matches!(
            resolve_redirect(&base, "https://m.example/x"),
            Err(DownloadError::UnsupportedScheme { .. })
        ));
        assert!(resolve_redirect(&base, "rel/x").is_err());
        assert!(resolve_redirect(&base, "//evil/x").is_err());
    }
}
