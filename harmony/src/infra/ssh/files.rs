//! Files on a host over SSH, for hosts whose services have no upload API
//! (OPNsense's TFTP root and a Caddy web root): put bytes or a local file
//! at `root/path` atomically (written to a temp name in the same
//! directory, its size checked, then renamed over the old one, so a
//! reader sees the old file or the new one, never a part), read, list,
//! fetch and remove them.
//!
//! Paths come only from typed values: a [`RemoteRoot`] (absolute, plain
//! components) and a [`RelativePath`] (no `..`, no absolute path), each
//! quoted as one shell word in fixed command text. A size cap is checked
//! before any connection; every command has a time limit (on the host too,
//! through `timeout`). A put first asks the host for the file's SHA-256
//! (`sha256sum` on Linux, `sha256 -q` on FreeBSD): the same content is
//! `Unchanged` and nothing is sent.

use std::fmt;
use std::io::Read as _;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest as _, Sha256};

use super::command::{bounded, quote};
use super::session::{Input, RawOutput, Session, Sink};
use super::{SshError, SshShell};
use crate::domain::{Change, RelativePath, RemoteHost, Sha256Digest, ValueError};

/// An absolute directory on a remote host under which Harmony places
/// files: `/` then 1 to 32 components of `[A-Za-z0-9._-]`, none `.` or
/// `..`, at most 512 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemoteRoot(String);

impl RemoteRoot {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `root/path` as text (both already validated).
    pub fn join(&self, path: &RelativePath) -> String {
        format!("{}/{}", self.0, path.as_str())
    }
}

impl FromStr for RemoteRoot {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ValueError::new("remote root", s, reason);
        let Some(rest) = s.strip_prefix('/') else {
            return Err(err("must be an absolute path"));
        };
        if s.len() > 512 {
            return Err(err("must be at most 512 characters"));
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.len() > 32 {
            return Err(err("more than 32 components"));
        }
        for p in &parts {
            if p.is_empty() || *p == "." || *p == ".." {
                return Err(err(
                    "empty, '.' and '..' components are not allowed (and not '/' itself)",
                ));
            }
            if !p
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            {
                return Err(err(
                    "components may hold only letters, digits, '.', '_' and '-'",
                ));
            }
        }
        Ok(Self(format!("/{rest}")))
    }
}

impl fmt::Display for RemoteRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Limits of one file operation: the largest file, and how long the
/// whole operation (both commands of a put) may take after login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferLimits {
    pub max_bytes: u64,
    pub timeout: Duration,
}

impl Default for TransferLimits {
    /// 64 MiB within 5 minutes.
    fn default() -> Self {
        Self {
            max_bytes: 64 << 20,
            timeout: Duration::from_secs(300),
        }
    }
}

/// Exit status the fixed commands use for "no such file".
const ABSENT: u32 = 44;
/// Exit status of a refused target (a link or a directory).
const REFUSED: u32 = 45;
/// Exit status of a short upload.
const SHORT: u32 = 46;
/// Output of the digest and list commands kept (a listing of thousands of
/// names fits).
const SMALL_OUTPUT: usize = 4 << 20;

/// The digest command: `absent`, or the file's SHA-256 as hex first.
fn digest_line(file: &str) -> String {
    format!(
        "f={f}; if [ -L \"$f\" ] || [ -d \"$f\" ]; then echo 'is a link or a directory' >&2; exit {REFUSED}; fi; \
         [ -e \"$f\" ] || {{ echo absent; exit 0; }}; \
         if command -v sha256sum >/dev/null 2>&1; then sha256sum < \"$f\"; else sha256 -q < \"$f\"; fi",
        f = quote(file)
    )
}

/// The put command: stdin to a temp file beside `file`, its size checked,
/// renamed over `file`; the temp file removed on any failure.
fn put_line(dir: &str, file: &str, temp: &str, size: u64) -> String {
    format!(
        "umask 022; d={d}; f={f}; t={t}; mkdir -p \"$d\" || exit 1; \
         if [ -L \"$f\" ] || [ -d \"$f\" ]; then echo \"$f is a link or a directory\" >&2; exit {REFUSED}; fi; \
         trap 'rm -f \"$t\"' EXIT; cat > \"$t\" || exit 1; n=$(($(wc -c < \"$t\"))); \
         if [ \"$n\" -ne {size} ]; then echo \"received $n of {size} bytes\" >&2; exit {SHORT}; fi; \
         mv -f \"$t\" \"$f\" || exit 1; trap - EXIT",
        d = quote(dir),
        f = quote(file),
        t = quote(temp),
    )
}

fn remove_line(file: &str) -> String {
    format!(
        "f={f}; if [ -d \"$f\" ] && [ ! -L \"$f\" ]; then echo 'is a directory' >&2; exit {REFUSED}; fi; \
         if [ -e \"$f\" ] || [ -L \"$f\" ]; then rm -f \"$f\" && echo removed; else echo absent; fi",
        f = quote(file)
    )
}

fn read_line(file: &str) -> String {
    format!(
        "f={f}; if [ -L \"$f\" ] || [ -d \"$f\" ]; then echo 'is a link or a directory' >&2; exit {REFUSED}; fi; \
         [ -e \"$f\" ] || exit {ABSENT}; exec cat \"$f\"",
        f = quote(file)
    )
}

/// Regular files (not links, not dot files) directly in `dir`, one a line.
fn list_line(dir: &str) -> String {
    format!(
        "d={d}; [ -d \"$d\" ] || exit 0; cd \"$d\" || exit 1; \
         for f in *; do if [ -f \"$f\" ] && [ ! -L \"$f\" ]; then printf '%s\\n' \"$f\"; fi; done",
        d = quote(dir)
    )
}

/// A temp name beside the target: `.harmony-tmp-<nanos><pid>` (hidden
/// from the web root: dot files are not served).
fn temp_name(dir: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{dir}/.harmony-tmp-{nanos:x}{:x}", std::process::id())
}

/// The directory part of `root/path`.
fn parent(root: &RemoteRoot, path: &RelativePath) -> String {
    match path.as_str().rsplit_once('/') {
        Some((dir, _)) => format!("{}/{dir}", root.as_str()),
        None => root.as_str().to_string(),
    }
}

fn sha256_of(bytes: &[u8]) -> Sha256Digest {
    Sha256Digest::from_bytes(Sha256::digest(bytes).into())
}

fn sha256_of_file(file: &mut std::fs::File) -> std::io::Result<Sha256Digest> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(Sha256Digest::from_bytes(h.finalize().into()));
        }
        h.update(&buf[..n]);
    }
}

/// What to upload.
enum Upload<'a> {
    Bytes(&'a [u8]),
    File(&'a Path),
}

impl SshShell {
    /// Runs one fixed file command on an open session; a status other
    /// than 0 (or `ok_status`) is an error naming the action, the path,
    /// the status and the command's stderr.
    #[allow(clippy::too_many_arguments)]
    async fn file_command(
        &self,
        session: &Session,
        host: &RemoteHost,
        action: &'static str,
        path: &str,
        line: &str,
        input: Input<'_>,
        sink: Sink<'_>,
        timeout: Duration,
    ) -> Result<RawOutput, SshError> {
        let wire = bounded(line, timeout);
        let out = session
            .exec_raw(&wire, input, sink, timeout)
            .await?
            .ok_or_else(|| SshError::FileTimeout {
                host: host.to_string(),
                action,
                path: path.to_string(),
                after: timeout,
            })?;
        match out.exit_status {
            Some(0 | ABSENT) => Ok(out),
            status => Err(SshError::FileRefused {
                host: host.to_string(),
                action,
                path: path.to_string(),
                status: status.map_or_else(
                    || format!("signal {}", out.exit_signal.as_deref().unwrap_or("?")),
                    |s| s.to_string(),
                ),
                stderr: out.stderr.trim().to_string(),
            }),
        }
    }

    async fn digest_on(
        &self,
        session: &Session,
        host: &RemoteHost,
        file: &str,
        timeout: Duration,
    ) -> Result<Option<Sha256Digest>, SshError> {
        let out = self
            .file_command(
                session,
                host,
                "digest",
                file,
                &digest_line(file),
                Input::Nothing,
                Sink::Memory(SMALL_OUTPUT),
                timeout,
            )
            .await?;
        let text = String::from_utf8_lossy(&out.stdout);
        let text = text.trim();
        if text == "absent" {
            return Ok(None);
        }
        let hex = text.get(..64).unwrap_or(text);
        hex.parse::<Sha256Digest>()
            .map(Some)
            .map_err(|_| SshError::FileRefused {
                host: host.to_string(),
                action: "digest",
                path: file.to_string(),
                status: "0".into(),
                stderr: format!(
                    "no SHA-256 in the answer {:?} (neither sha256sum nor sha256 on the host?)",
                    crate::domain::text::safe_text(text, 100)
                ),
            })
    }

    /// The SHA-256 of `root/path` on the host, `None` when absent.
    pub async fn remote_sha256(
        &self,
        host: &RemoteHost,
        root: &RemoteRoot,
        path: &RelativePath,
        limits: TransferLimits,
    ) -> Result<Option<Sha256Digest>, SshError> {
        let file = root.join(path);
        let session = self.open(host).await?;
        let r = self.digest_on(&session, host, &file, limits.timeout).await;
        session.close().await;
        r
    }

    /// Puts `contents` at `root/path` (see the module documentation);
    /// `Unchanged` when the host already has exactly these bytes there.
    pub async fn put_file(
        &self,
        host: &RemoteHost,
        root: &RemoteRoot,
        path: &RelativePath,
        contents: &[u8],
        limits: TransferLimits,
    ) -> Result<Change, SshError> {
        self.put(host, root, path, Upload::Bytes(contents), limits)
            .await
    }

    /// Puts the local file `source` at `root/path`, streamed (never whole
    /// in memory); `Unchanged` when the host already has its bytes.
    pub async fn put_local_file(
        &self,
        host: &RemoteHost,
        root: &RemoteRoot,
        path: &RelativePath,
        source: &Path,
        limits: TransferLimits,
    ) -> Result<Change, SshError> {
        self.put(host, root, path, Upload::File(source), limits)
            .await
    }

    async fn put(
        &self,
        host: &RemoteHost,
        root: &RemoteRoot,
        path: &RelativePath,
        upload: Upload<'_>,
        limits: TransferLimits,
    ) -> Result<Change, SshError> {
        let file = root.join(path);
        let local = |e: std::io::Error, source: &Path| SshError::LocalFile {
            path: source.to_path_buf(),
            reason: e.to_string(),
        };
        // Everything local first: the cap and the digest, before any
        // connection.
        let (size, digest, mut opened) = match upload {
            Upload::Bytes(b) => (b.len() as u64, None, None),
            Upload::File(source) => {
                let mut f = std::fs::File::open(source).map_err(|e| local(e, source))?;
                let meta = f.metadata().map_err(|e| local(e, source))?;
                if !meta.is_file() {
                    return Err(SshError::LocalFile {
                        path: source.to_path_buf(),
                        reason: "not a regular file".into(),
                    });
                }
                if meta.len() > limits.max_bytes {
                    (meta.len(), None, None)
                } else {
                    let d = sha256_of_file(&mut f).map_err(|e| local(e, source))?;
                    (meta.len(), Some(d), Some((f, source)))
                }
            }
        };
        if size > limits.max_bytes {
            return Err(SshError::FileTooLarge {
                host: host.to_string(),
                path: file,
                size,
                max: limits.max_bytes,
            });
        }
        let digest = match (&upload, digest) {
            (Upload::Bytes(b), _) => sha256_of(b),
            (_, Some(d)) => d,
            (Upload::File(source), None) => {
                return Err(SshError::LocalFile {
                    path: source.to_path_buf(),
                    reason: "not read".into(),
                });
            }
        };
        let session = self.open(host).await?;
        let deadline = tokio::time::Instant::now() + limits.timeout;
        let result = async {
            if self
                .digest_on(&session, host, &file, limits.timeout)
                .await?
                .as_ref()
                == Some(&digest)
            {
                tracing::debug!(host = %host, path = %file, "remote file unchanged");
                return Ok(Change::Unchanged);
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let dir = parent(root, path);
            let line = put_line(&dir, &file, &temp_name(&dir), size);
            let input = match (&upload, opened.as_mut()) {
                (Upload::Bytes(b), _) => Input::Bytes(b),
                (Upload::File(_), Some((f, source))) => {
                    use std::io::Seek as _;
                    f.rewind().map_err(|e| local(e, source))?;
                    Input::File(f)
                }
                (Upload::File(source), None) => {
                    return Err(SshError::LocalFile {
                        path: source.to_path_buf(),
                        reason: "not open".into(),
                    });
                }
            };
            self.file_command(
                &session,
                host,
                "put",
                &file,
                &line,
                input,
                Sink::Memory(SMALL_OUTPUT),
                left,
            )
            .await?;
            tracing::info!(host = %host, path = %file, bytes = size, "file placed over SSH");
            Ok(Change::Applied)
        }
        .await;
        session.close().await;
        result
    }

    /// Removes `root/path` (a file or a link, never a directory);
    /// `Unchanged` when absent.
    pub async fn remove_file(
        &self,
        host: &RemoteHost,
        root: &RemoteRoot,
        path: &RelativePath,
        limits: TransferLimits,
    ) -> Result<Change, SshError> {
        let file = root.join(path);
        let session = self.open(host).await?;
        let out = self
            .file_command(
                &session,
                host,
                "remove",
                &file,
                &remove_line(&file),
                Input::Nothing,
                Sink::Memory(SMALL_OUTPUT),
                limits.timeout,
            )
            .await;
        session.close().await;
        let removed = String::from_utf8_lossy(&out?.stdout).trim() == "removed";
        Ok(Change::applied_if(removed))
    }

    /// The bytes of `root/path`, `None` when absent; a file over
    /// `limits.max_bytes` is an error.
    pub async fn read_file(
        &self,
        host: &RemoteHost,
        root: &RemoteRoot,
        path: &RelativePath,
        limits: TransferLimits,
    ) -> Result<Option<Vec<u8>>, SshError> {
        let file = root.join(path);
        let cap = usize::try_from(limits.max_bytes).unwrap_or(usize::MAX);
        let session = self.open(host).await?;
        let out = self
            .file_command(
                &session,
                host,
                "read",
                &file,
                &read_line(&file),
                Input::Nothing,
                Sink::Memory(cap),
                limits.timeout,
            )
            .await;
        session.close().await;
        let out = out?;
        if out.exit_status == Some(ABSENT) {
            return Ok(None);
        }
        if out.stdout_over {
            return Err(SshError::FileTooLarge {
                host: host.to_string(),
                path: file,
                size: out.stdout_len,
                max: limits.max_bytes,
            });
        }
        Ok(Some(out.stdout))
    }

    /// Copies `root/path` to the local file `dest` (written to a temp file
    /// beside it, renamed when whole); `false` when absent on the host.
    pub async fn fetch_file(
        &self,
        host: &RemoteHost,
        root: &RemoteRoot,
        path: &RelativePath,
        dest: &Path,
        limits: TransferLimits,
    ) -> Result<bool, SshError> {
        let file = root.join(path);
        let local = |e: std::io::Error| SshError::LocalFile {
            path: dest.to_path_buf(),
            reason: e.to_string(),
        };
        let dir = dest.parent().unwrap_or(Path::new("."));
        let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(local)?;
        let session = self.open(host).await?;
        let out = self
            .file_command(
                &session,
                host,
                "fetch",
                &file,
                &read_line(&file),
                Input::Nothing,
                Sink::File(temp.as_file_mut(), limits.max_bytes),
                limits.timeout,
            )
            .await;
        session.close().await;
        let out = out?;
        if out.exit_status == Some(ABSENT) {
            return Ok(false);
        }
        if out.stdout_over {
            return Err(SshError::FileTooLarge {
                host: host.to_string(),
                path: file,
                size: out.stdout_len,
                max: limits.max_bytes,
            });
        }
        temp.as_file().sync_all().map_err(local)?;
        temp.persist(dest).map_err(|e| local(e.error))?;
        Ok(true)
    }

    /// The regular files directly under `root/dir` (not links, not dot
    /// files), sorted; names that are not valid paths are left out.
    pub async fn list_files(
        &self,
        host: &RemoteHost,
        root: &RemoteRoot,
        dir: Option<&RelativePath>,
        limits: TransferLimits,
    ) -> Result<Vec<RelativePath>, SshError> {
        let path = match dir {
            Some(d) => root.join(d),
            None => root.as_str().to_string(),
        };
        let session = self.open(host).await?;
        let out = self
            .file_command(
                &session,
                host,
                "list",
                &path,
                &list_line(&path),
                Input::Nothing,
                Sink::Memory(SMALL_OUTPUT),
                limits.timeout,
            )
            .await;
        session.close().await;
        let text = String::from_utf8_lossy(&out?.stdout).into_owned();
        let mut names: Vec<RelativePath> = text
            .lines()
            .filter(|n| !n.is_empty() && !n.starts_with('.'))
            .filter_map(|n| match dir {
                Some(d) => d.join(n).ok(),
                None => n.parse().ok(),
            })
            .collect();
        names.sort();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_roots_are_absolute_plain_paths() {
        assert_eq!(
            "/usr/local/tftp".parse::<RemoteRoot>().unwrap().as_str(),
            "/usr/local/tftp"
        );
        assert_eq!(
            "/srv/www/".parse::<RemoteRoot>().unwrap().as_str(),
            "/srv/www"
        );
        for bad in [
            "",
            "/",
            "relative/dir",
            "/a/../b",
            "/a/./b",
            "/a//b",
            "/a b",
            "/a;reboot",
            "/$(reboot)",
            "/a'b",
        ] {
            let e = bad.parse::<RemoteRoot>().unwrap_err();
            assert_eq!(e.field, "remote root", "{bad:?}");
        }
    }

    #[test]
    fn commands_quote_every_path_as_one_word() {
        let line = put_line("/r/a", "/r/a/b.efi", "/r/a/.harmony-tmp-1", 42);
        assert!(
            line.starts_with("umask 022; d='/r/a'; f='/r/a/b.efi'; t='/r/a/.harmony-tmp-1';"),
            "{line}"
        );
        assert!(line.contains("-ne 42 ]"), "{line}");
        assert!(digest_line("/r/x").starts_with("f='/r/x';"));
        assert!(remove_line("/r/x").starts_with("f='/r/x';"));
        assert!(list_line("/r").starts_with("d='/r';"));
    }

    #[test]
    fn the_parent_of_a_path_is_under_the_root() {
        let root: RemoteRoot = "/usr/local/www/harmony".parse().unwrap();
        let p: RelativePath = "ipxe/aa.ipxe".parse().unwrap();
        assert_eq!(parent(&root, &p), "/usr/local/www/harmony/ipxe");
        let p: RelativePath = "default.ipxe".parse().unwrap();
        assert_eq!(parent(&root, &p), "/usr/local/www/harmony");
        assert_eq!(root.join(&p), "/usr/local/www/harmony/default.ipxe");
    }
}
