//! A resumable, verifying downloader on Harmony's HTTP client
//! ([`crate::infra::http_client`], download profile).
//!
//! The body streams into `<dest>.part` in the destination directory while
//! SHA-256 is computed; an existing `.part` is hashed first and resumed with
//! `Range: bytes=N-` (a `200` answer restarts from zero). The finished file
//! is checked against the expected digest and only then renamed onto `dest`
//! ([`move_atomic`]); a mismatch deletes the `.part`.
//!
//! `http://` and `https://` both work: https is verified against the
//! built-in Mozilla roots plus the site CA of [`DownloadConfig::site_ca`].
//! Redirects are followed to the same scheme only. The SHA-256 pins the
//! content either way.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use crate::domain::Sha256Digest;
use crate::domain::{Change, HttpUrl};
use crate::infra::fs::move_atomic;
use crate::infra::http_client::{HttpClient, HttpError, HttpProfile, HttpResponse};

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
    /// Redirects followed (to the same scheme only).
    pub max_redirects: u8,
    /// Attempts per call; each one resumes from the `.part` left by the last.
    pub attempts: u32,
    /// A PEM file of the site's own CA certificates, trusted for https in
    /// addition to the built-in Mozilla roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site_ca: Option<PathBuf>,
}

impl DownloadConfig {
    /// The HTTP client profile these limits give.
    pub fn http_profile(&self) -> HttpProfile {
        HttpProfile::download(
            self.connect_timeout,
            self.idle_timeout,
            self.max_redirects,
            self.site_ca.clone(),
        )
    }
}

impl Default for DownloadConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_size: 8 << 30,
            max_redirects: 5,
            attempts: 3,
            site_ca: None,
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
    /// Connecting, TLS, redirects, timeouts: see [`HttpError`].
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("{url}: server answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: the 206 answer does not start at byte {offset}")]
    WrongRange { url: String, offset: u64 },
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
        match self {
            DownloadError::Http(e) => e.is_transient(),
            DownloadError::WrongRange { .. } => true,
            _ => false,
        }
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

pub use crate::infra::digest_cache::hash_file;

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
    let client = HttpClient::new(cfg.http_profile())?;
    let mut requests = 0u32;
    let mut first_resume: Option<u64> = None;
    let attempts = cfg.attempts.max(1);
    let mut last_err = None;
    for attempt in 1..=attempts {
        match attempt_once(&client, url, &part, cfg, progress, &mut requests).await {
            Ok((hasher, bytes, resumed)) => {
                first_resume.get_or_insert(resumed);
                let actual = Sha256Digest::from_bytes(hasher.finalize().into());
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
    Err(last_err.unwrap_or_else(|| DownloadError::Io {
        path: dest.to_path_buf(),
        source: io::Error::other("no download attempt made"),
    }))
}

type AttemptResult = Result<(Sha256, u64, u64), (DownloadError, u64)>;

/// One attempt: resumes `part` if present. Returns the hasher over the
/// whole file, its size and the offset resumed from.
async fn attempt_once(
    client: &HttpClient,
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
    let mut get = client.get(url);
    if offset > 0 {
        get = get.range_from(offset);
    }
    let sent = get.send().await;
    *requests += match &sent {
        Ok(r) => r.requests(),
        Err(_) => 1,
    };
    let mut resp: HttpResponse = sent.map_err(|e| (e.into(), offset))?;
    let u = resp.url().to_string();
    let (mut file, start) = match resp.status() {
        206 if offset > 0 => {
            let starts_at_offset = resp
                .header("content-range")
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.parse::<u64>().ok())
                == Some(offset);
            if !starts_at_offset {
                // Not the range we asked for: start over next attempt.
                let _ = fs::remove_file(part);
                return Err((DownloadError::WrongRange { url: u, offset }, offset));
            }
            let f = OpenOptions::new()
                .append(true)
                .open(part)
                .map_err(|e| (io_err(part)(e), offset))?;
            (f, offset)
        }
        200 => {
            if offset > 0 {
                tracing::info!(url = %u, offset, "server ignored the range; restarting from zero");
            }
            hasher = Sha256::new();
            let f = File::create(part).map_err(|e| (io_err(part)(e), offset))?;
            (f, 0)
        }
        416 if offset > 0 => {
            // The .part may already be complete; the checksum decides, and
            // a wrong one deletes it so that the next run starts over.
            return Ok((hasher, offset, offset));
        }
        s => {
            return Err((DownloadError::Status { url: u, status: s }, offset));
        }
    };
    let total = resp.content_length().map_or(0, |n| n + start);
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
    // Bounded: each chunk moves `done` forward and `done` is capped by
    // max_size; each wait is capped by idle_timeout.
    loop {
        let data = match resp.chunk().await {
            Ok(None) => break,
            Ok(Some(d)) => d,
            Err(e) => {
                let _ = file.sync_all();
                return Err((e.into(), offset));
            }
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

/// Fetches a small document (e.g. stream metadata) into memory, at most
/// `max` bytes.
pub async fn fetch_bytes(
    url: &HttpUrl,
    cfg: &DownloadConfig,
    max: u64,
) -> Result<Vec<u8>, DownloadError> {
    let client = HttpClient::new(cfg.http_profile())?;
    let resp = client.get(url).send().await?;
    if resp.status() != 200 {
        return Err(DownloadError::Status {
            url: resp.url().to_string(),
            status: resp.status(),
        });
    }
    Ok(resp.bytes_capped(max).await?)
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
}
