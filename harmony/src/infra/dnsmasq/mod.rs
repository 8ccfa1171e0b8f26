//! [`Dnsmasq`]: the site's DHCP, TFTP and DNS server, a real dnsmasq that
//! Harmony configures, starts, supervises and stops (through
//! [`Program::start`]). Implements [`DhcpServer`], [`TftpServer`] and
//! [`DnsServer`].
//!
//! - Harmony owns a directory (see [`config::Layout`]): one file per
//!   concern, each written atomically. Every change is first checked by
//!   dnsmasq itself (`dnsmasq --test` on a candidate holding the main file,
//!   the wildcards and every host entry inline); one it refuses is never
//!   installed and the error carries dnsmasq's message.
//! - Reservations and exact DNS names live in files dnsmasq re-reads on
//!   SIGHUP: a change to them is a signal, and leases are kept. dnsmasq
//!   does not re-read its main file on SIGHUP, so a change to it (the
//!   configuration, a wildcard) restarts the process; nothing else does.
//!   Writing what is already there is `Unchanged` and sends nothing.
//! - Boot: BIOS firmware (client arch 0) gets `undionly.kpxe`, UEFI x86-64
//!   (arch 7 and 9) `ipxe.efi`, both from the TFTP root; iPXE (user class
//!   `iPXE`, or option 175) gets the configured script URL.
//! - dnsmasq drops its privileges (to `nobody`): the directory and its
//!   parents must be searchable by it; Harmony makes its own directory and
//!   files world-readable (they hold no secrets).

pub mod config;
pub mod leases;

use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::sync::Mutex;

use crate::domain::{
    CapResult, CapabilityError, Change, DhcpLease, DhcpReservation, DhcpServer, DnsName, DnsRecord,
    DnsServer, Hostname, HttpUrl, InterfaceName, MacAddress, RelativePath, TftpServer, Topology,
    ValueError,
};
use crate::infra::fs::write_atomic;
use crate::infra::process::{ExitState, ProcessError, Program, Service};

use config::{Layout, Rendered, SiteRecords};

/// How long dnsmasq may take to start (sockets bound, files read).
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long it may take to confirm a SIGHUP (the hosts file read again).
const RELOAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Grace between SIGTERM and SIGKILL when stopping.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long `dnsmasq --test` may take.
const TEST_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);
/// dnsmasq re-reads its host files within milliseconds of a SIGHUP.
const RELOAD_POLL: Duration = Duration::from_millis(5);
/// Bytes of the log read after a mark (start, reload) at most.
const MAX_LOG_READ: u64 = 1 << 20;
/// Characters of dnsmasq's output put in an error.
const SHOWN_LOG: usize = 2000;
/// Largest lease file read.
const MAX_LEASE_FILE: u64 = 64 << 20;
/// The BOOTP file field holds 127 bytes and a NUL.
const MAX_BOOT_URL: usize = 127;
/// dnsmasq raises any shorter lease to two minutes.
const MIN_LEASE: Duration = Duration::from_secs(120);

/// Why dnsmasq could not be configured, started or changed.
#[derive(Debug, thiserror::Error)]
pub enum DnsmasqError {
    #[error("dnsmasq configuration: invalid {field} {value:?}: {reason}")]
    Config {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("dnsmasq configuration: {field} {}: {reason}", path.display())]
    Path {
        field: &'static str,
        path: PathBuf,
        reason: &'static str,
    },
    /// `dnsmasq --test` refused the candidate; `message` is dnsmasq's.
    #[error("dnsmasq refused the configuration (nothing was installed): {message}")]
    Refused { message: String },
    /// dnsmasq exited (or did not serve in time) at start; `message` ends
    /// with what it printed.
    #[error("dnsmasq did not start (`{command}`): {message}")]
    Startup { command: String, message: String },
    #[error("dnsmasq is not running{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    NotRunning { message: String },
    #[error("dnsmasq did not confirm reading {} within {}", path.display(), humantime::format_duration(*after))]
    ReloadUnconfirmed { path: PathBuf, after: Duration },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} line {line}: {reason} (Harmony's own file; fix or remove it)", path.display())]
    StateFile {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    /// Harmony refused the request before dnsmasq saw it (a reservation
    /// off the subnet or taken, a directory change).
    #[error("{0}")]
    Rejected(String),
    #[error(transparent)]
    Process(#[from] ProcessError),
}

impl From<DnsmasqError> for CapabilityError {
    fn from(e: DnsmasqError) -> Self {
        CapabilityError::new("dnsmasq", e.to_string())
    }
}

/// The name of a network namespace (`ip netns`) dnsmasq runs in: 1 to 64
/// of `[A-Za-z0-9._-]`, starting with a letter or a digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NetnsName(String);

impl NetnsName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for NetnsName {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !ok {
            return Err(ValueError::new(
                "network namespace",
                s,
                "must be 1 to 64 of [A-Za-z0-9._-], starting with a letter or digit",
            ));
        }
        Ok(Self(s.to_string()))
    }
}

impl fmt::Display for NetnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The dynamic DHCP range: addresses for hosts without a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpRange {
    pub start: Ipv4Addr,
    pub end: Ipv4Addr,
    pub netmask: Ipv4Addr,
    /// At least two minutes.
    pub lease_time: Duration,
}

impl DhcpRange {
    /// Whether `ip` is on the range's subnet.
    pub fn subnet_contains(&self, ip: Ipv4Addr) -> bool {
        let m = u32::from(self.netmask);
        u32::from(ip) & m == u32::from(self.start) & m
    }
}

/// What dnsmasq serves and where Harmony keeps its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsmasqConfig {
    /// Harmony's directory for dnsmasq (see [`config::Layout`]); absolute.
    pub dir: PathBuf,
    /// The provisioning interface: dnsmasq serves it only.
    pub interface: InterfaceName,
    pub dhcp_range: DhcpRange,
    /// DHCP option 3, when the network has a gateway.
    pub router: Option<Ipv4Addr>,
    /// The DHCP domain (option 15); names in it are answered locally only,
    /// and a reservation's host name, when qualified, must be in it.
    pub domain: Option<Hostname>,
    /// Servers other names are forwarded to; none: answered locally only.
    pub upstream_dns: Vec<IpAddr>,
    /// 53 by default; 0 turns DNS off.
    pub dns_port: u16,
    /// What iPXE is told to load (`http://.../default.ipxe`).
    pub ipxe_script_url: HttpUrl,
    /// Run dnsmasq inside this network namespace (`ip netns exec`).
    pub netns: Option<NetnsName>,
    /// The dnsmasq program (a name on `PATH` or a path).
    pub program: PathBuf,
}

impl DnsmasqConfig {
    /// DNS on port 53, no router, domain or upstream, no namespace.
    pub fn new(
        dir: impl Into<PathBuf>,
        interface: InterfaceName,
        dhcp_range: DhcpRange,
        ipxe_script_url: HttpUrl,
    ) -> Self {
        Self {
            dir: dir.into(),
            interface,
            dhcp_range,
            router: None,
            domain: None,
            upstream_dns: Vec::new(),
            dns_port: 53,
            ipxe_script_url,
            netns: None,
            program: PathBuf::from("dnsmasq"),
        }
    }

    /// What the types cannot say: paths dnsmasq can read in its files, a
    /// boot URL that fits a DHCP field without a comma, a lease time
    /// dnsmasq keeps. The range's consistency is left to `dnsmasq --test`.
    pub fn check(&self) -> Result<(), DnsmasqError> {
        config::checked_path("directory", &self.dir)?;
        let url = self.ipxe_script_url.as_str();
        let bad_url = |reason| DnsmasqError::Config {
            field: "iPXE script URL",
            value: url.chars().take(80).collect(),
            reason,
        };
        if url.contains(',') {
            return Err(bad_url("a ',' would end dnsmasq's dhcp-boot file name"));
        }
        if url.len() > MAX_BOOT_URL {
            return Err(bad_url(
                "longer than the 127 bytes of the DHCP boot file field",
            ));
        }
        if self.dhcp_range.lease_time < MIN_LEASE {
            return Err(DnsmasqError::Config {
                field: "lease time",
                value: humantime::format_duration(self.dhcp_range.lease_time).to_string(),
                reason: "dnsmasq's shortest lease is 2 minutes",
            });
        }
        Ok(())
    }
}

struct Inner {
    config: DnsmasqConfig,
    records: SiteRecords,
    service: Option<Service>,
}

/// A running dnsmasq and the files it serves. See the module documentation.
pub struct Dnsmasq {
    name: String,
    layout: Layout,
    inner: Mutex<Inner>,
}

impl fmt::Debug for Dnsmasq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dnsmasq")
            .field("dir", &self.layout.dir)
            .finish_non_exhaustive()
    }
}

impl Dnsmasq {
    /// Creates the directory, reads back the reservations and records a
    /// previous run left, writes every file (after `dnsmasq --test`), and
    /// starts dnsmasq; returns once it serves (its sockets bound, its
    /// hosts file read) or with dnsmasq's message when it exits instead.
    pub async fn start(config: DnsmasqConfig) -> Result<Self, DnsmasqError> {
        config.check()?;
        let layout = Layout::new(&config.dir);
        make_dir(&layout.dir)?;
        make_dir(&layout.tftp_root)?;
        let records = config::load_records(&layout)?;
        let rendered = Rendered::new(&config, &records)?;
        dnsmasq_test(&config, &records).await?;
        for (path, text) in rendered.files(&layout) {
            write_file(path, text)?;
        }
        let service = spawn(&config, &layout).await?;
        Ok(Self {
            name: format!("dnsmasq on {}", config.interface),
            layout,
            inner: Mutex::new(Inner {
                config,
                records,
                service: Some(service),
            }),
        })
    }

    /// Replaces the configuration (same directory): `Unchanged` when it
    /// renders the same; otherwise checked by `dnsmasq --test`, installed
    /// and dnsmasq restarted. When the new one does not start, the old one
    /// is put back and started again, and the error says why.
    pub async fn reconfigure(&self, config: DnsmasqConfig) -> Result<Change, DnsmasqError> {
        config.check()?;
        if config.dir != self.layout.dir {
            return Err(DnsmasqError::Rejected(format!(
                "the directory cannot change on a running dnsmasq ({} to {})",
                self.layout.dir.display(),
                config.dir.display()
            )));
        }
        let mut inner = self.inner.lock().await;
        let old_main = config::render_main(&inner.config)?;
        let new_main = config::render_main(&config)?;
        if old_main == new_main && config == inner.config {
            return Ok(Change::Unchanged);
        }
        dnsmasq_test(&config, &inner.records).await?;
        let old_config = std::mem::replace(&mut inner.config, config);
        write_file(&self.layout.main, &new_main)?;
        if inner.service.is_none() {
            // Stopped on purpose: the next start reads it.
            return Ok(Change::Applied);
        }
        if let Err(e) = self.restart(&mut inner).await {
            tracing::warn!(error = %e, "the new dnsmasq configuration did not start; putting the old one back");
            inner.config = old_config;
            write_file(&self.layout.main, &old_main)?;
            if let Err(again) = self.restart(&mut inner).await {
                tracing::error!(error = %again, "the old dnsmasq configuration did not start again");
            }
            return Err(e);
        }
        Ok(Change::Applied)
    }

    /// Stops dnsmasq (SIGTERM, SIGKILL after [`STOP_GRACE`]); how it ended,
    /// `None` when it was not running. Final for this value: later changes
    /// only write the files, and [`Dnsmasq::start`] on the same directory
    /// serves again (records and leases are on disk).
    pub async fn stop(&self) -> Result<Option<ExitState>, DnsmasqError> {
        let mut inner = self.inner.lock().await;
        match inner.service.take() {
            Some(mut s) => Ok(Some(s.stop(STOP_GRACE).await?)),
            None => Ok(None),
        }
    }

    /// dnsmasq's pid while it runs.
    pub async fn pid(&self) -> Option<u32> {
        let mut inner = self.inner.lock().await;
        let s = inner.service.as_mut()?;
        if s.is_running() { s.pid() } else { None }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Copies the iPXE loaders ([`config::BIOS_BOOT_FILE`],
    /// [`config::UEFI_BOOT_FILE`]) from `dir` (Debian: `/usr/lib/ipxe`)
    /// into the TFTP root; `Applied` when either changed.
    pub async fn put_ipxe_loaders(&self, dir: &Path) -> CapResult<Change> {
        let mut change = Change::Unchanged;
        for name in [config::BIOS_BOOT_FILE, config::UEFI_BOOT_FILE] {
            let src = dir.join(name);
            let bytes = std::fs::read(&src).map_err(|source| DnsmasqError::Io {
                path: src.clone(),
                source,
            })?;
            let path = RelativePath::from_trusted(name.to_string());
            if self.put_tftp_file(&path, &bytes).await? == Change::Applied {
                change = Change::Applied;
            }
        }
        Ok(change)
    }

    /// Applies new records: `Unchanged` when they equal the current ones;
    /// else checked, written, and dnsmasq told (SIGHUP for the host files, a
    /// restart for the wildcards, which live in a file SIGHUP does not read).
    async fn apply(&self, inner: &mut Inner, records: SiteRecords) -> Result<Change, DnsmasqError> {
        if records == inner.records {
            return Ok(Change::Unchanged);
        }
        dnsmasq_test(&inner.config, &records).await?;
        let l = &self.layout;
        let mut hosts_changed = false;
        for (path, text) in [
            (&l.dhcp_hosts, config::render_dhcp_hosts(&records)),
            (&l.dns_hosts, config::render_dns_hosts(&records)),
        ] {
            hosts_changed |= write_file(path, &text)? == Change::Applied;
        }
        let old = std::mem::replace(&mut inner.records, records);
        let wildcards_changed = old.wildcards != inner.records.wildcards;
        if wildcards_changed {
            write_file(&l.wildcards, &config::render_wildcards(&inner.records))?;
        }
        if inner.service.is_none() {
            // Stopped on purpose: the files are what the next start reads.
            return Ok(Change::Applied);
        }
        if wildcards_changed {
            if let Err(e) = self.restart(inner).await {
                // Checked, yet dnsmasq did not start with it: the old
                // wildcards go back (the host files are fine either way).
                tracing::warn!(error = %e, "dnsmasq did not start with the new wildcards; putting the old ones back");
                inner.records.wildcards = old.wildcards;
                write_file(&l.wildcards, &config::render_wildcards(&inner.records))?;
                if let Err(again) = self.restart(inner).await {
                    tracing::error!(error = %again, "dnsmasq did not start again with the old wildcards");
                }
                return Err(e);
            }
        } else if hosts_changed {
            self.reload(inner).await?;
        }
        Ok(Change::Applied)
    }

    /// SIGHUP, then waits until dnsmasq logs reading the DHCP hosts file
    /// again (it reads the DNS hosts file just before).
    async fn reload(&self, inner: &mut Inner) -> Result<(), DnsmasqError> {
        if self.revive(inner).await?.is_some() {
            // Started afresh: it read every file.
            return Ok(());
        }
        let service = running(inner)?;
        let pid = service
            .pid()
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| DnsmasqError::NotRunning {
                message: "no pid".into(),
            })?;
        let mark = log_len(&self.layout.log);
        // The child is not reaped while it runs, so the pid is still ours.
        kill(Pid::from_raw(pid), Signal::SIGHUP).map_err(|e| DnsmasqError::NotRunning {
            message: format!("SIGHUP to {pid}: {e}"),
        })?;
        let want = format!("read {}", self.layout.dhcp_hosts.display());
        let until = Instant::now() + RELOAD_TIMEOUT;
        loop {
            if log_since(&self.layout.log, mark).contains(&want) {
                tracing::debug!(pid, "dnsmasq re-read its host files");
                return Ok(());
            }
            if Instant::now() >= until {
                return Err(DnsmasqError::ReloadUnconfirmed {
                    path: self.layout.dhcp_hosts.clone(),
                    after: RELOAD_TIMEOUT,
                });
            }
            tokio::time::sleep(RELOAD_POLL).await;
        }
    }

    /// Starts dnsmasq again if it ended on its own (not by [`Dnsmasq::stop`]);
    /// how it had ended, `None` when it runs (or was stopped).
    pub async fn ensure_running(&self) -> Result<Option<ExitState>, DnsmasqError> {
        let mut inner = self.inner.lock().await;
        self.revive(&mut inner).await
    }

    async fn revive(&self, inner: &mut Inner) -> Result<Option<ExitState>, DnsmasqError> {
        let Some(service) = inner.service.as_mut() else {
            return Ok(None);
        };
        let Some(ended) = service.try_wait()? else {
            return Ok(None);
        };
        tracing::warn!(status = %ended, log = %service.log_tail(SHOWN_LOG), "dnsmasq had ended; starting it again");
        inner.service = None;
        inner.service = Some(spawn(&inner.config, &self.layout).await?);
        Ok(Some(ended))
    }

    async fn restart(&self, inner: &mut Inner) -> Result<(), DnsmasqError> {
        if let Some(mut old) = inner.service.take() {
            old.stop(STOP_GRACE).await?;
        }
        tracing::info!(dir = %self.layout.dir.display(), "restarting dnsmasq (its main file changed)");
        inner.service = Some(spawn(&inner.config, &self.layout).await?);
        Ok(())
    }

    fn read_leases(&self) -> Result<Vec<DhcpLease>, DnsmasqError> {
        let path = &self.layout.leases;
        let io = |source| DnsmasqError::Io {
            path: path.clone(),
            source,
        };
        let mut bytes = Vec::new();
        match std::fs::File::open(path) {
            Ok(f) => {
                f.take(MAX_LEASE_FILE).read_to_end(&mut bytes).map_err(io)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(e)),
        }
        let parsed = leases::parse_leases(&String::from_utf8_lossy(&bytes));
        for s in &parsed.skipped {
            tracing::warn!(file = %path.display(), line = s.line, text = %s.text, reason = %s.reason, "lease line skipped");
        }
        Ok(parsed.leases)
    }
}

fn running(inner: &mut Inner) -> Result<&mut Service, DnsmasqError> {
    let Some(s) = inner.service.as_mut() else {
        return Err(DnsmasqError::NotRunning {
            message: "stopped".into(),
        });
    };
    if s.is_running() {
        Ok(s)
    } else {
        Err(DnsmasqError::NotRunning {
            message: s.log_tail(SHOWN_LOG),
        })
    }
}

fn make_dir(dir: &Path) -> Result<(), DnsmasqError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |source| DnsmasqError::Io {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    // dnsmasq reads it after dropping its privileges.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).map_err(io)
}

fn write_file(path: &Path, text: &str) -> Result<Change, DnsmasqError> {
    write_atomic(path, text.as_bytes(), 0o644).map_err(|source| DnsmasqError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// `dnsmasq --test` on the candidate (main file with everything inline).
async fn dnsmasq_test(config: &DnsmasqConfig, records: &SiteRecords) -> Result<(), DnsmasqError> {
    let text = config::render_candidate(config, records)?;
    let io = |source| DnsmasqError::Io {
        path: config.dir.clone(),
        source,
    };
    let mut file = tempfile::Builder::new()
        .prefix(".candidate-")
        .suffix(".conf")
        .tempfile_in(&config.dir)
        .map_err(io)?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(io)?;
    let out = Program::new(&config.program)
        .arg("--test")
        .arg("-C")
        .arg(file.path())
        .timeout(TEST_TIMEOUT)
        .output()
        .await?;
    if out.status.success() {
        return Ok(());
    }
    let mut message = clean(&String::from_utf8_lossy(&out.stderr));
    // dnsmasq names the temporary file; say which one it was.
    if let Some(name) = file.path().to_str() {
        message = message.replace(name, "the candidate configuration");
    }
    Err(DnsmasqError::Refused { message })
}

/// Starts dnsmasq and waits until it serves.
async fn spawn(config: &DnsmasqConfig, layout: &Layout) -> Result<Service, DnsmasqError> {
    let dns_args = [
        "--keep-in-foreground".to_string(),
        format!(
            "--conf-file={}",
            config::checked_path("main file", &layout.main)?
        ),
        format!(
            "--pid-file={}",
            config::checked_path("pid file", &layout.pid)?
        ),
        "--log-facility=-".to_string(),
    ];
    let program = match &config.netns {
        Some(ns) => Program::new("ip")
            .args(["netns", "exec", ns.as_str()])
            .arg(&config.program),
        None => Program::new(&config.program),
    }
    .args(dns_args);
    let _ = std::fs::remove_file(&layout.pid);
    let mark = log_len(&layout.log);
    let mut service = program.start(&layout.log)?;
    let want = format!("read {}", layout.dhcp_hosts.display());
    let until = Instant::now() + START_TIMEOUT;
    loop {
        match service.try_wait()? {
            Some(status) => {
                return Err(DnsmasqError::Startup {
                    command: program.command_line(),
                    message: format!("{status}: {}", clean(&log_since(&layout.log, mark))),
                });
            }
            None => {
                let pid_written = std::fs::read_to_string(&layout.pid)
                    .ok()
                    .and_then(|p| p.trim().parse::<u32>().ok());
                if pid_written.is_some()
                    && pid_written == service.pid()
                    && log_since(&layout.log, mark).contains(&want)
                {
                    tracing::info!(pid = ?service.pid(), "dnsmasq serves");
                    return Ok(service);
                }
            }
        }
        if Instant::now() >= until {
            let log = clean(&log_since(&layout.log, mark));
            let _ = service.stop(STOP_GRACE).await;
            return Err(DnsmasqError::Startup {
                command: program.command_line(),
                message: format!(
                    "not serving after {}: {log}",
                    humantime::format_duration(START_TIMEOUT)
                ),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

fn log_len(log: &Path) -> u64 {
    std::fs::metadata(log).map(|m| m.len()).unwrap_or(0)
}

/// What the log gained since `mark` (at most [`MAX_LOG_READ`] bytes).
fn log_since(log: &Path, mark: u64) -> String {
    let Ok(mut f) = std::fs::File::open(log) else {
        return String::new();
    };
    let mut bytes = Vec::new();
    if f.seek(SeekFrom::Start(mark)).is_err()
        || f.take(MAX_LOG_READ).read_to_end(&mut bytes).is_err()
    {
        return String::new();
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// dnsmasq's output for an error: trimmed, its end, control characters
/// (but newlines) replaced.
fn clean(text: &str) -> String {
    let text = text.trim();
    let n = text.chars().count();
    text.chars()
        .skip(n.saturating_sub(SHOWN_LOG))
        .map(|c| if c.is_control() && c != '\n' { '_' } else { c })
        .collect()
}

/// Why dnsmasq cannot take `r` next to `records`, if it cannot.
fn check_reservation(
    config: &DnsmasqConfig,
    records: &SiteRecords,
    r: &DhcpReservation,
) -> Result<(), DnsmasqError> {
    let refuse = |m: String| DnsmasqError::Rejected(m);
    let IpAddr::V4(v4) = r.ip else {
        return Err(refuse(format!(
            "reservation for {}: {} is not IPv4 (dnsmasq serves DHCPv4 here)",
            r.mac, r.ip
        )));
    };
    let range = &config.dhcp_range;
    if !range.subnet_contains(v4) {
        return Err(refuse(format!(
            "reservation for {}: {v4} is not on the subnet of {}/{}",
            r.mac, range.start, range.netmask
        )));
    }
    if let Some(other) = records
        .reservations
        .values()
        .find(|o| o.ip == r.ip && o.mac != r.mac)
    {
        return Err(refuse(format!(
            "reservation for {}: {} is already reserved for {}",
            r.mac, r.ip, other.mac
        )));
    }
    let name = r.hostname.as_str();
    if let Some((_, domain)) = name.split_once('.')
        && config.domain.as_ref().map(Hostname::as_str) != Some(domain)
    {
        return Err(refuse(format!(
            "reservation for {}: host name {name} is not in the DHCP domain ({}); \
             dnsmasq would drop it: give the short name",
            r.mac,
            config
                .domain
                .as_ref()
                .map_or("none".to_string(), ToString::to_string)
        )));
    }
    Ok(())
}

impl Topology for Dnsmasq {
    fn name(&self) -> &str {
        &self.name
    }

    fn dhcp(&self) -> Option<&dyn DhcpServer> {
        Some(self)
    }
}

#[async_trait]
impl DhcpServer for Dnsmasq {
    /// Refused: an IPv6 address, one off the range's subnet, one another
    /// MAC holds, a qualified host name outside the DHCP domain.
    async fn reserve(&self, r: &DhcpReservation) -> CapResult<Change> {
        self.reserve_many(std::slice::from_ref(r)).await
    }

    /// All or nothing: each is checked as [`DhcpServer::reserve`] checks
    /// one (against the others of the batch too), then the hosts file is
    /// written and dnsmasq signalled once.
    async fn reserve_many(&self, reservations: &[DhcpReservation]) -> CapResult<Change> {
        let mut inner = self.inner.lock().await;
        let mut records = inner.records.clone();
        for r in reservations {
            check_reservation(&inner.config, &records, r)?;
            records.reservations.insert(r.mac, r.clone());
        }
        Ok(self.apply(&mut inner, records).await?)
    }

    async fn release(&self, mac: &MacAddress) -> CapResult<Change> {
        let mut inner = self.inner.lock().await;
        let mut records = inner.records.clone();
        records.reservations.remove(mac);
        Ok(self.apply(&mut inner, records).await?)
    }

    async fn reservations(&self) -> CapResult<Vec<DhcpReservation>> {
        let inner = self.inner.lock().await;
        Ok(inner.records.reservations.values().cloned().collect())
    }

    async fn leases(&self) -> CapResult<Vec<DhcpLease>> {
        Ok(self.read_leases()?)
    }
}

#[async_trait]
impl DnsServer for Dnsmasq {
    async fn set_record(&self, record: &DnsRecord) -> CapResult<Change> {
        self.set_records(std::slice::from_ref(record)).await
    }

    /// Written and signalled once (a restart when a wildcard changed).
    async fn set_records(&self, new: &[DnsRecord]) -> CapResult<Change> {
        let mut inner = self.inner.lock().await;
        let mut records = inner.records.clone();
        for record in new {
            match &record.name {
                DnsName::Exact(h) => records.hosts.insert(h.clone(), record.ip),
                DnsName::Wildcard(h) => records.wildcards.insert(h.clone(), record.ip),
            };
        }
        Ok(self.apply(&mut inner, records).await?)
    }

    async fn remove_record(&self, name: &DnsName) -> CapResult<Change> {
        let mut inner = self.inner.lock().await;
        let mut records = inner.records.clone();
        match name {
            DnsName::Exact(h) => records.hosts.remove(h),
            DnsName::Wildcard(h) => records.wildcards.remove(h),
        };
        Ok(self.apply(&mut inner, records).await?)
    }

    async fn records(&self) -> CapResult<Vec<DnsRecord>> {
        let inner = self.inner.lock().await;
        Ok(inner.records.dns_records())
    }
}

#[async_trait]
impl TftpServer for Dnsmasq {
    /// Written atomically under the TFTP root, world-readable (dnsmasq
    /// serves it after dropping its privileges); no signal needed.
    async fn put_tftp_file(&self, path: &RelativePath, contents: &[u8]) -> CapResult<Change> {
        let dest = self.layout.tftp_root.join(path.as_str());
        Ok(write_file_bytes(&dest, contents)?)
    }
}

fn write_file_bytes(path: &Path, bytes: &[u8]) -> Result<Change, DnsmasqError> {
    write_atomic(path, bytes, 0o644).map_err(|source| DnsmasqError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names_are_checked() {
        assert!("harmony-a-1".parse::<NetnsName>().is_ok());
        for bad in ["", "-x", "a b", "a/b", "a;b", &"x".repeat(65)] {
            assert!(bad.parse::<NetnsName>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn subnet_membership() {
        let r = DhcpRange {
            start: Ipv4Addr::new(10, 0, 0, 100),
            end: Ipv4Addr::new(10, 0, 0, 150),
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            lease_time: Duration::from_secs(3600),
        };
        assert!(r.subnet_contains(Ipv4Addr::new(10, 0, 0, 5)));
        assert!(!r.subnet_contains(Ipv4Addr::new(10, 0, 1, 5)));
    }
}
