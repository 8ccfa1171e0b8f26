//! Caddy serving an [`HttpRoot`]: the files stay the root's business
//! (atomic writes, digests, staging); Caddy adds the serving.
//!
//! - The Caddyfile ([`caddyfile`]) is checked with `caddy validate` before
//!   it replaces the installed one; a failing one is never installed and the
//!   error carries Caddy's message. An identical one is `Unchanged`.
//! - `caddy run` runs through [`crate::infra::process::Service`] with its
//!   admin endpoint on a configurable loopback address; changes go through
//!   `caddy reload --address <admin>` (Caddy keeps the old config when the
//!   new one fails to load; Harmony then puts the old file back).
//! - Nothing escapes the root: Caddy cleans `..` and its encodings; it does
//!   follow symbolic links, so Harmony never publishes one (a symlink
//!   source, or a path through a linked directory, is refused) and every
//!   link found in the root at [`Caddy::apply`] is hidden by the config,
//!   with a warning.
//! - The JSON access log is read back with [`Caddy::access_log`];
//!   [`access_log::AccessLogEvidence`] is the `PxeEvidence` hook.

pub mod access_log;
pub mod caddyfile;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::http_root::HttpRoot;
use super::process::{ExitState, ProcessError, Program, Service};
use crate::domain::{
    CapResult, CapabilityError, Change, HttpServer, HttpUrl, RelativePath, Sha256Digest, Topology,
};
use access_log::{AccessEntry, AccessLogEvidence};
use caddyfile::{SiteSpec, caddy_path};

const CAPABILITY: &str = "caddy";
const POLL: Duration = Duration::from_millis(50);
/// Links looked for at most (a root holds a few thousand files).
const MAX_SCANNED: usize = 200_000;

/// Where Caddy listens, its admin endpoint, its files and its limits.
#[derive(Debug, Clone)]
pub struct CaddyConfig {
    /// Holds `Caddyfile`, `access.log`, `caddy.log` and Caddy's own
    /// config/data dirs.
    pub dir: PathBuf,
    pub listen: SocketAddr,
    /// Loopback only; pick one that nothing else uses (Caddy's default
    /// 2019 collides with any other Caddy).
    pub admin: SocketAddr,
    pub program: PathBuf,
    /// Time limit of `caddy validate` and `caddy reload`.
    pub command_within: Duration,
    /// From start until the listen address accepts connections.
    pub start_within: Duration,
    pub stop_grace: Duration,
}

impl CaddyConfig {
    pub fn new(dir: impl Into<PathBuf>, listen: SocketAddr, admin: SocketAddr) -> Self {
        Self {
            dir: dir.into(),
            listen,
            admin,
            program: PathBuf::from("caddy"),
            command_within: Duration::from_secs(30),
            start_within: Duration::from_secs(10),
            stop_grace: Duration::from_secs(5),
        }
    }
}

/// What went wrong with Caddy.
#[derive(Debug, thiserror::Error)]
pub enum CaddyError {
    #[error("admin address {0} is not a loopback address")]
    AdminNotLoopback(SocketAddr),
    #[error("{field}: {} cannot be written into a Caddyfile (absolute, of A-Z a-z 0-9 / . _ + - only)", path.display())]
    UnsafePath { field: &'static str, path: PathBuf },
    #[error("caddy validate refused the config (nothing installed): {message}")]
    Invalid { message: String },
    #[error("caddy reload failed (Caddy keeps the previous config): {message}")]
    ReloadFailed { message: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("caddy did not accept connections on {listen} within {within:?}; log: {log}")]
    NotStarted {
        listen: SocketAddr,
        within: Duration,
        log: String,
    },
    #[error("caddy exited ({status}); log: {log}")]
    Exited { status: ExitState, log: String },
    #[error("refused to publish {path}: {reason}")]
    Unpublishable { path: String, reason: String },
}

impl From<CaddyError> for CapabilityError {
    fn from(e: CaddyError) -> Self {
        CapabilityError::new(CAPABILITY, e.to_string())
    }
}

/// Caddy serving an [`HttpRoot`]. See the module documentation.
#[derive(Debug)]
pub struct Caddy {
    root: HttpRoot,
    config: CaddyConfig,
    service: tokio::sync::Mutex<Option<Service>>,
}

impl Topology for Caddy {
    fn name(&self) -> &str {
        "caddy"
    }
}

impl Caddy {
    /// Checks the addresses and paths; nothing starts yet.
    pub fn new(root: HttpRoot, config: CaddyConfig) -> Result<Self, CaddyError> {
        if !config.admin.ip().is_loopback() {
            return Err(CaddyError::AdminNotLoopback(config.admin));
        }
        for (field, path) in [("root", root.dir()), ("state dir", config.dir.as_path())] {
            if caddy_path(path).is_none() {
                return Err(CaddyError::UnsafePath {
                    field,
                    path: path.to_path_buf(),
                });
            }
        }
        Ok(Self {
            root,
            config,
            service: tokio::sync::Mutex::new(None),
        })
    }

    pub fn root(&self) -> &HttpRoot {
        &self.root
    }

    pub fn caddyfile_path(&self) -> PathBuf {
        self.config.dir.join("Caddyfile")
    }

    pub fn access_log_path(&self) -> PathBuf {
        self.config.dir.join("access.log")
    }

    /// Caddy's own log (its stdout and stderr).
    pub fn log_path(&self) -> PathBuf {
        self.config.dir.join("caddy.log")
    }

    /// Caddy's pid while it runs.
    pub async fn pid(&self) -> Option<u32> {
        let mut guard = self.service.lock().await;
        let s = guard.as_mut()?;
        if s.is_running() { s.pid() } else { None }
    }

    /// The evidence source for `RebootConfirm::StartedPxe`.
    pub fn pxe_evidence(&self) -> AccessLogEvidence {
        AccessLogEvidence::new(self.access_log_path())
    }

    /// The access log's entries, oldest first (bad lines skipped, warned).
    pub async fn access_log(&self) -> Result<Vec<AccessEntry>, CaddyError> {
        let path = self.access_log_path();
        let p = path.clone();
        tokio::task::spawn_blocking(move || access_log::read(&p))
            .await
            .map_err(|e| CaddyError::Io {
                path: path.clone(),
                source: std::io::Error::other(e.to_string()),
            })?
            .map_err(|source| CaddyError::Io { path, source })
    }

    fn program(&self) -> Program {
        let d = &self.config.dir;
        Program::new(&self.config.program)
            .env("HOME", d)
            .env("XDG_CONFIG_HOME", d.join("xdg-config"))
            .env("XDG_DATA_HOME", d.join("xdg-data"))
            .timeout(self.config.command_within)
    }

    /// The Caddyfile for the root as it is now (its links hidden).
    pub fn render(&self) -> Result<String, CaddyError> {
        let root = self.root.dir().to_path_buf();
        let mut links = symlinks_under(&root).map_err(|source| CaddyError::Io {
            path: root.clone(),
            source,
        })?;
        links.sort();
        for l in &links {
            tracing::warn!(link = %l.display(), "symbolic link in the HTTP root: hidden, never served");
            if caddy_path(l).is_none() {
                return Err(CaddyError::UnsafePath {
                    field: "symbolic link in the root",
                    path: l.clone(),
                });
            }
        }
        Ok(caddyfile::render(&SiteSpec {
            listen: self.config.listen,
            admin: self.config.admin,
            root,
            access_log: self.access_log_path(),
            hidden_links: links,
        }))
    }

    /// `caddy validate` on `text` (in a candidate file); the error carries
    /// Caddy's message.
    pub async fn validate(&self, text: &str) -> Result<(), CaddyError> {
        let candidate = self.config.dir.join("Caddyfile.candidate");
        write(&candidate, text)?;
        let out = self
            .program()
            .args(["validate", "--adapter", "caddyfile", "--config"])
            .arg(&candidate)
            .output()
            .await;
        let _ = std::fs::remove_file(&candidate);
        let out = out?;
        if out.status.success() {
            return Ok(());
        }
        Err(CaddyError::Invalid {
            message: caddy_message(&out.stderr),
        })
    }

    /// Renders, validates, installs and (when running) reloads;
    /// `Unchanged` without a reload when the config is the same.
    pub async fn apply(&self) -> Result<Change, CaddyError> {
        let mut service = self.service.lock().await;
        let text = self.render()?;
        let path = self.caddyfile_path();
        let previous = std::fs::read_to_string(&path).ok();
        if previous.as_deref() == Some(text.as_str()) {
            return Ok(Change::Unchanged);
        }
        self.validate(&text).await?;
        write(&path, &text)?;
        if service.as_mut().is_some_and(Service::is_running) {
            let out = self
                .program()
                .args(["reload", "--adapter", "caddyfile", "--config"])
                .arg(&path)
                .arg("--address")
                .arg(self.config.admin.to_string())
                .output()
                .await?;
            if !out.status.success() {
                match &previous {
                    Some(p) => write(&path, p)?,
                    None => {
                        let _ = std::fs::remove_file(&path);
                    }
                }
                return Err(CaddyError::ReloadFailed {
                    message: caddy_message(&out.stderr),
                });
            }
            tracing::info!("caddy reloaded");
        }
        Ok(Change::Applied)
    }

    /// Installs the config ([`Caddy::apply`]) and starts Caddy; returns once
    /// the listen address accepts connections.
    pub async fn start(&self) -> Result<(), CaddyError> {
        self.apply().await?;
        let mut guard = self.service.lock().await;
        if guard.as_mut().is_some_and(Service::is_running) {
            return Ok(());
        }
        let program = self
            .program()
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(self.caddyfile_path());
        let log_from = std::fs::metadata(self.log_path())
            .map(|m| m.len())
            .unwrap_or(0);
        let mut service = program.start(&self.log_path())?;
        let deadline = Instant::now() + self.config.start_within;
        loop {
            if let Some(status) = service.try_wait()? {
                return Err(CaddyError::Exited {
                    status,
                    log: service.log_tail(2000),
                });
            }
            let probe = tokio::time::timeout(
                Duration::from_millis(500),
                tokio::net::TcpStream::connect(self.config.listen),
            )
            .await;
            // Accepting is not enough (another program may hold the
            // port): Caddy says when its config runs.
            if matches!(probe, Ok(Ok(_)))
                && read_from(&self.log_path(), log_from).contains("serving initial configuration")
            {
                break;
            }
            if Instant::now() >= deadline {
                let log = service.log_tail(2000);
                let _ = service.stop(self.config.stop_grace).await;
                return Err(CaddyError::NotStarted {
                    listen: self.config.listen,
                    within: self.config.start_within,
                    log,
                });
            }
            tokio::time::sleep(POLL).await;
        }
        tracing::info!(pid = ?service.pid(), listen = %self.config.listen, "caddy started");
        *guard = Some(service);
        Ok(())
    }

    /// SIGTERM, SIGKILL after the grace period.
    pub async fn stop(&self) -> Result<(), CaddyError> {
        if let Some(mut s) = self.service.lock().await.take() {
            let st = s.stop(self.config.stop_grace).await?;
            tracing::info!(status = %st, "caddy stopped");
        }
        Ok(())
    }

    /// Refuses a destination reached through a linked directory.
    fn check_destination(&self, path: &RelativePath) -> Result<(), CaddyError> {
        let mut dir = self.root.dir().to_path_buf();
        let parts: Vec<&str> = path.as_str().split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            dir.push(part);
            if dir
                .symlink_metadata()
                .is_ok_and(|m| m.file_type().is_symlink())
            {
                return Err(CaddyError::Unpublishable {
                    path: path.to_string(),
                    reason: format!("{} is a symbolic link", dir.display()),
                });
            }
        }
        Ok(())
    }
}

fn write(path: &Path, text: &str) -> Result<(), CaddyError> {
    super::fs::write_atomic(path, text.as_bytes(), 0o644)
        .map(|_| ())
        .map_err(|source| CaddyError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// The log from byte `from` on (at most 1 MiB).
fn read_from(path: &Path, from: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut buf = Vec::new();
    if let Ok(mut f) = std::fs::File::open(path)
        && f.seek(SeekFrom::Start(from)).is_ok()
    {
        let _ = f.take(1 << 20).read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Caddy's error (`Error: ...` lines of its stderr), bounded.
fn caddy_message(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("Error:") || l.contains("\"level\":\"error\""))
        .collect();
    let msg = if errors.is_empty() {
        text.trim().to_string()
    } else {
        errors.join("; ")
    };
    msg.chars()
        .take(4000)
        .map(|c| if c.is_control() { '_' } else { c })
        .collect()
}

/// Symbolic links under `root` (not followed), bounded.
fn symlinks_under(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut links = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    let mut seen = 0usize;
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            seen += 1;
            if seen > MAX_SCANNED {
                return Err(std::io::Error::other(format!(
                    "more than {MAX_SCANNED} entries under the root"
                )));
            }
            let ft = entry.file_type()?;
            if ft.is_symlink() {
                links.push(entry.path());
            } else if ft.is_dir() {
                dirs.push(entry.path());
            }
        }
    }
    Ok(links)
}

#[async_trait]
impl HttpServer for Caddy {
    async fn put_file(&self, path: &RelativePath, contents: &[u8]) -> CapResult<Change> {
        self.check_destination(path)?;
        HttpServer::put_file(&self.root, path, contents).await
    }

    async fn put_file_from(&self, path: &RelativePath, source: &Path) -> CapResult<Change> {
        self.check_destination(path)?;
        let regular = source
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_file());
        if !regular {
            return Err(CaddyError::Unpublishable {
                path: path.to_string(),
                reason: format!("{} is not a regular file (a link?)", source.display()),
            }
            .into());
        }
        HttpServer::put_file_from(&self.root, path, source).await
    }

    async fn remove_file(&self, path: &RelativePath) -> CapResult<Change> {
        HttpServer::remove_file(&self.root, path).await
    }

    async fn list_files(&self, dir: &RelativePath) -> CapResult<Vec<RelativePath>> {
        HttpServer::list_files(&self.root, dir).await
    }

    async fn take_file(&self, path: &RelativePath, dest: &Path) -> CapResult<Change> {
        HttpServer::take_file(&self.root, path, dest).await
    }

    async fn file_sha256(&self, path: &RelativePath) -> CapResult<Option<Sha256Digest>> {
        HttpServer::file_sha256(&self.root, path).await
    }

    async fn staging_dir(&self) -> CapResult<PathBuf> {
        HttpServer::staging_dir(&self.root).await
    }

    async fn read_file(&self, path: &RelativePath) -> CapResult<Option<Vec<u8>>> {
        HttpServer::read_file(&self.root, path).await
    }

    fn url_for(&self, path: &RelativePath) -> HttpUrl {
        self.root.url_for(path)
    }

    fn base_url(&self) -> HttpUrl {
        self.root.base_url().clone()
    }
}
