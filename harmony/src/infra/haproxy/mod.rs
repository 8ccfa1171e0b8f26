//! HAProxy as the site's [`LoadBalancer`]: TCP frontends and backends with
//! health checks (OKD's API, machine config server and ingress; see
//! [`okd`]), run by Harmony in master-worker mode.
//!
//! - The config is rendered from typed services ([`render`]); the file
//!   Harmony installed is the record of what is configured (read back and
//!   checked, see [`render::read_back`]).
//! - Every new config passes `haproxy -c -f` before it replaces the
//!   installed one; one that fails is never installed and the error carries
//!   HAProxy's message. An identical config is `Unchanged`: no write, no
//!   reload.
//! - `haproxy -W -db -f haproxy.cfg -p haproxy.pid -S master.sock` runs
//!   through [`crate::infra::process::Service`]. A change is applied by a
//!   graceful reload: SIGUSR2 to the master, which starts new workers and
//!   lets the old ones finish their connections; the master CLI's `show
//!   proc` ([`master`]) confirms it (reload counter moved, no failure, new
//!   workers), else the error carries the master's log lines.
//! - HAProxy will not run without a listener: with no services it is
//!   stopped, and started again with the first one.

pub mod master;
pub mod okd;
pub mod render;

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::process::{ExitState, ProcessError, Program, Service};
use crate::domain::{
    CapResult, CapabilityError, Change, Hostname, LbServiceName, LoadBalancer, LoadBalancerService,
    Topology,
};
use render::{ReadBackError, Services};

const CAPABILITY: &str = "haproxy";
/// How often start and reload look at the master.
const POLL: Duration = Duration::from_millis(50);
/// Time limit of one master CLI exchange.
const CLI_LIMIT: Duration = Duration::from_secs(2);

/// Where HAProxy keeps its files and how long each step may take.
#[derive(Debug, Clone)]
pub struct HaproxyConfig {
    /// Holds `haproxy.cfg`, `haproxy.pid`, `master.sock`, `haproxy.log`.
    pub dir: PathBuf,
    /// The program (a path, or a name on `PATH`).
    pub program: PathBuf,
    /// Time limit of `haproxy -c`.
    pub check_within: Duration,
    /// From start until the master reports a worker.
    pub start_within: Duration,
    /// From SIGUSR2 until the master confirms the reload.
    pub reload_within: Duration,
    /// SIGTERM to SIGKILL when stopping.
    pub stop_grace: Duration,
}

impl HaproxyConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            program: PathBuf::from("haproxy"),
            check_within: Duration::from_secs(30),
            start_within: Duration::from_secs(10),
            reload_within: Duration::from_secs(10),
            stop_grace: Duration::from_secs(5),
        }
    }
}

/// What went wrong with HAProxy.
#[derive(Debug, thiserror::Error)]
pub enum HaproxyError {
    #[error("haproxy -c refused the config (nothing installed): {message}")]
    Invalid { message: String },
    #[error("service {service}: {reason}")]
    InvalidService { service: String, reason: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    ReadBack {
        path: PathBuf,
        #[source]
        source: ReadBackError,
    },
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("haproxy did not start within {within:?}: {reason}; log: {log}")]
    NotStarted {
        within: Duration,
        reason: String,
        log: String,
    },
    #[error("haproxy's master refused the reload (the previous workers keep serving): {log}")]
    ReloadFailed { log: String },
    #[error("haproxy's master did not confirm the reload within {within:?}: {reason}")]
    ReloadUnconfirmed { within: Duration, reason: String },
    #[error("haproxy exited ({status}); log: {log}")]
    Exited { status: ExitState, log: String },
    #[error("signal to haproxy's master {pid}: {source}")]
    Signal { pid: u32, source: nix::Error },
}

impl From<HaproxyError> for CapabilityError {
    fn from(e: HaproxyError) -> Self {
        CapabilityError::new(CAPABILITY, e.to_string())
    }
}

#[derive(Debug, Default)]
struct Inner {
    service: Option<Service>,
    /// [`Haproxy::start`] was called (and not [`Haproxy::stop`]): run
    /// whenever there is a service to serve.
    wanted: bool,
}

/// HAProxy run by Harmony. See the module documentation.
#[derive(Debug)]
pub struct Haproxy {
    config: HaproxyConfig,
    inner: tokio::sync::Mutex<Inner>,
}

impl Topology for Haproxy {
    fn name(&self) -> &str {
        "haproxy"
    }
}

impl Haproxy {
    /// Nothing starts yet; the directory is created on first write.
    pub fn new(config: HaproxyConfig) -> Self {
        Self {
            config,
            inner: tokio::sync::Mutex::new(Inner::default()),
        }
    }

    pub fn config_path(&self) -> PathBuf {
        self.config.dir.join("haproxy.cfg")
    }

    pub fn log_path(&self) -> PathBuf {
        self.config.dir.join("haproxy.log")
    }

    fn socket_path(&self) -> PathBuf {
        self.config.dir.join("master.sock")
    }

    fn pid_path(&self) -> PathBuf {
        self.config.dir.join("haproxy.pid")
    }

    /// The master's pid while it runs.
    pub async fn master_pid(&self) -> Option<u32> {
        let mut inner = self.inner.lock().await;
        let s = inner.service.as_mut()?;
        if s.is_running() { s.pid() } else { None }
    }

    /// Starts HAProxy on the installed config (when it has a service) and
    /// waits until the master reports a worker.
    pub async fn start(&self) -> Result<(), HaproxyError> {
        let mut inner = self.inner.lock().await;
        inner.wanted = true;
        let services = self.installed()?;
        if services.is_empty() {
            tracing::info!("haproxy: no service configured yet; starts with the first one");
            return Ok(());
        }
        self.ensure_running(&mut inner).await
    }

    /// Stops HAProxy (SIGTERM, SIGKILL after the grace period).
    pub async fn stop(&self) -> Result<(), HaproxyError> {
        let mut inner = self.inner.lock().await;
        inner.wanted = false;
        self.stop_service(&mut inner).await
    }

    async fn stop_service(&self, inner: &mut Inner) -> Result<(), HaproxyError> {
        if let Some(mut s) = inner.service.take() {
            let st = s.stop(self.config.stop_grace).await?;
            tracing::info!(status = %st, "haproxy stopped");
        }
        Ok(())
    }

    /// Runs `haproxy -c -f` on `text` (written to a candidate file next to
    /// the config); the error carries HAProxy's alerts.
    pub async fn check(&self, text: &str) -> Result<(), HaproxyError> {
        let candidate = self.config.dir.join("haproxy.cfg.candidate");
        super::fs::write_atomic(&candidate, text.as_bytes(), 0o644).map_err(|source| {
            HaproxyError::Io {
                path: candidate.clone(),
                source,
            }
        })?;
        let out = Program::new(&self.config.program)
            .arg("-c")
            .arg("-f")
            .arg(&candidate)
            .timeout(self.config.check_within)
            .output()
            .await;
        let _ = std::fs::remove_file(&candidate);
        let out = out?;
        let no_listener = render::read_back(text).is_ok_and(|s| s.is_empty());
        match out.status {
            ExitState::Code(0) => Ok(()),
            // "no listener => exit(2)": expected with no services.
            ExitState::Code(2) if no_listener => Ok(()),
            _ => Err(HaproxyError::Invalid {
                message: alerts(&String::from_utf8_lossy(&out.stderr)),
            }),
        }
    }

    /// The services of the installed config (empty when there is none).
    fn installed(&self) -> Result<Services, HaproxyError> {
        match self.installed_text()? {
            None => Ok(Services::new()),
            Some(text) => render::read_back(&text).map_err(|source| HaproxyError::ReadBack {
                path: self.config_path(),
                source,
            }),
        }
    }

    fn installed_text(&self) -> Result<Option<String>, HaproxyError> {
        let path = self.config_path();
        match std::fs::read_to_string(&path) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(HaproxyError::Io { path, source }),
        }
    }

    /// Replaces the whole set of services: checked, installed, applied.
    pub async fn apply(&self, services: Services) -> Result<Change, HaproxyError> {
        let mut inner = self.inner.lock().await;
        self.apply_locked(&mut inner, services).await
    }

    async fn apply_locked(
        &self,
        inner: &mut Inner,
        services: Services,
    ) -> Result<Change, HaproxyError> {
        for svc in services.values() {
            validate(svc)?;
        }
        let text = render::render(&services);
        let previous = self.installed_text()?;
        if previous.as_deref() == Some(text.as_str()) {
            return Ok(Change::Unchanged);
        }
        self.check(&text).await?;
        let path = self.config_path();
        super::fs::write_atomic(&path, text.as_bytes(), 0o644)
            .map_err(|source| HaproxyError::Io { path, source })?;
        tracing::info!(services = services.len(), "haproxy config installed");
        if inner.wanted {
            if services.is_empty() {
                self.stop_service(inner).await?;
            } else if running(inner) {
                if let Err(e) = self.reload(inner).await {
                    // What runs is still the previous config: put it back.
                    self.restore(previous.as_deref());
                    return Err(e);
                }
            } else {
                self.ensure_running(inner).await?;
            }
        }
        Ok(Change::Applied)
    }

    /// Reinstalls the config that runs after a refused reload.
    fn restore(&self, previous: Option<&str>) {
        let path = self.config_path();
        let restored = match previous {
            Some(text) => super::fs::write_atomic(&path, text.as_bytes(), 0o644).map(|_| ()),
            None => std::fs::remove_file(&path),
        };
        if let Err(e) = restored {
            tracing::error!(path = %path.display(), error = %e, "could not put back the running haproxy config");
        }
    }

    async fn ensure_running(&self, inner: &mut Inner) -> Result<(), HaproxyError> {
        if running(inner) {
            return Ok(());
        }
        let dir = &self.config.dir;
        std::fs::create_dir_all(dir).map_err(|source| HaproxyError::Io {
            path: dir.clone(),
            source,
        })?;
        let _ = std::fs::remove_file(self.socket_path());
        let program = Program::new(&self.config.program)
            .arg("-W")
            .arg("-db")
            .arg("-f")
            .arg(self.config_path())
            .arg("-p")
            .arg(self.pid_path())
            .arg("-S")
            .arg(self.socket_path());
        let mut service = program.start(&self.log_path())?;
        let deadline = Instant::now() + self.config.start_within;
        let mut last;
        loop {
            if let Some(status) = service.try_wait()? {
                return Err(HaproxyError::Exited {
                    status,
                    log: service.log_tail(2000),
                });
            }
            match master::show_proc(&self.socket_path(), CLI_LIMIT).await {
                Ok(st) if !st.workers.is_empty() => break,
                Ok(st) => last = format!("no worker yet: {st:?}"),
                Err(e) => last = e.to_string(),
            }
            if Instant::now() >= deadline {
                let log = service.log_tail(2000);
                let _ = service.stop(self.config.stop_grace).await;
                return Err(HaproxyError::NotStarted {
                    within: self.config.start_within,
                    reason: last,
                    log,
                });
            }
            tokio::time::sleep(POLL).await;
        }
        tracing::info!(pid = ?service.pid(), "haproxy started");
        inner.service = Some(service);
        Ok(())
    }

    /// SIGUSR2 to the master, then `show proc` until the reload counter
    /// moves: a failure counter above zero is a refused reload (its log
    /// lines in the error), else new workers must serve.
    async fn reload(&self, inner: &mut Inner) -> Result<(), HaproxyError> {
        let Some(service) = inner.service.as_mut() else {
            return Ok(());
        };
        let sock = self.socket_path();
        let unconfirmed = |reason: String| HaproxyError::ReloadUnconfirmed {
            within: self.config.reload_within,
            reason,
        };
        let before = master::show_proc(&sock, CLI_LIMIT)
            .await
            .map_err(|e| unconfirmed(format!("master CLI before the reload: {e}")))?;
        let log_from = std::fs::metadata(self.log_path())
            .map(|m| m.len())
            .unwrap_or(0);
        let pid = service.pid().unwrap_or(before.master_pid);
        let raw = i32::try_from(pid).map_err(|_| unconfirmed(format!("pid {pid}")))?;
        kill(Pid::from_raw(raw), Signal::SIGUSR2)
            .map_err(|source| HaproxyError::Signal { pid, source })?;
        let deadline = Instant::now() + self.config.reload_within;
        let mut last;
        loop {
            tokio::time::sleep(POLL).await;
            if let Some(status) = service.try_wait()? {
                return Err(HaproxyError::Exited {
                    status,
                    log: service.log_tail(2000),
                });
            }
            match master::show_proc(&sock, CLI_LIMIT).await {
                Ok(st) if st.reloads > before.reloads && st.failed > 0 => {
                    return Err(HaproxyError::ReloadFailed {
                        log: alerts(&read_from(&self.log_path(), log_from)),
                    });
                }
                Ok(st)
                    if st.reloads > before.reloads
                        && !st.workers.is_empty()
                        && st.workers.iter().all(|w| !before.workers.contains(w)) =>
                {
                    tracing::info!(reloads = st.reloads, workers = ?st.workers, "haproxy reloaded");
                    return Ok(());
                }
                Ok(st) => last = format!("{st:?}"),
                Err(e) => last = e.to_string(),
            }
            if Instant::now() >= deadline {
                return Err(unconfirmed(last));
            }
        }
    }

    async fn change(
        &self,
        edit: impl FnOnce(&mut Services) -> bool,
    ) -> Result<Change, HaproxyError> {
        let mut inner = self.inner.lock().await;
        let mut services = self.installed()?;
        if !edit(&mut services) {
            return Ok(Change::Unchanged);
        }
        self.apply_locked(&mut inner, services).await
    }
}

fn running(inner: &mut Inner) -> bool {
    inner.service.as_mut().is_some_and(Service::is_running)
}

/// Backend host names are unique within a service (they are HAProxy's
/// server names).
fn validate(svc: &LoadBalancerService) -> Result<(), HaproxyError> {
    let mut seen = std::collections::BTreeSet::new();
    for b in &svc.backends {
        if !seen.insert(&b.hostname) {
            return Err(HaproxyError::InvalidService {
                service: svc.name.to_string(),
                reason: format!("backend {} is listed twice", b.hostname),
            });
        }
    }
    Ok(())
}

/// HAProxy's `[ALERT]` (and `[WARNING]` about loading) lines, without the
/// pid prefix; the whole text (trimmed, bounded) when there are none.
fn alerts(text: &str) -> String {
    let lines: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("[ALERT]") || l.contains("Loading failure"))
        .map(|l| match l.split_once(" : ") {
            Some((_, rest)) => rest.trim().to_string(),
            None => l.trim().to_string(),
        })
        .collect();
    let joined = if lines.is_empty() {
        text.trim().to_string()
    } else {
        lines.join("; ")
    };
    joined
        .chars()
        .take(4000)
        .map(|c| if c.is_control() { '_' } else { c })
        .collect()
}

/// The log from byte `from` on (at most 64 KiB).
fn read_from(path: &Path, from: u64) -> String {
    let mut buf = Vec::new();
    if let Ok(mut f) = std::fs::File::open(path)
        && f.seek(SeekFrom::Start(from)).is_ok()
    {
        let _ = f.take(64 * 1024).read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[async_trait]
impl LoadBalancer for Haproxy {
    async fn set_service(&self, service: &LoadBalancerService) -> CapResult<Change> {
        let svc = service.clone();
        Ok(self
            .change(move |all| {
                if all.get(&svc.name) == Some(&svc) {
                    return false;
                }
                all.insert(svc.name.clone(), svc);
                true
            })
            .await?)
    }

    async fn remove_backend(
        &self,
        service: &LbServiceName,
        backend: &Hostname,
    ) -> CapResult<Change> {
        Ok(self
            .change(|all| {
                let Some(svc) = all.get_mut(service) else {
                    return false;
                };
                let before = svc.backends.len();
                svc.backends.retain(|b| &b.hostname != backend);
                svc.backends.len() != before
            })
            .await?)
    }

    async fn remove_service(&self, service: &LbServiceName) -> CapResult<Change> {
        Ok(self.change(|all| all.remove(service).is_some()).await?)
    }

    async fn services(&self) -> CapResult<Vec<LoadBalancerService>> {
        let _inner = self.inner.lock().await;
        Ok(self.installed()?.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_keep_haproxys_words() {
        let err = "[NOTICE]   (1) : haproxy version is 2.6\n[ALERT]    (1) : config : parsing [x.cfg:10] : 'bind' : invalid port '0'\n[ALERT]    (1) : config : Fatal errors found in configuration.\n";
        assert_eq!(
            alerts(err),
            "config : parsing [x.cfg:10] : 'bind' : invalid port '0'; config : Fatal errors found in configuration."
        );
        assert_eq!(alerts("  plain\n"), "plain");
    }
}
