//! [`LinuxSiteTopology`]: a site whose services run on the Harmony host
//! itself: dnsmasq (DHCP, TFTP, DNS), Caddy (the HTTP root) and HAProxy
//! (the load balancer), each a real program Harmony starts, supervises and
//! stops through [`crate::infra::process`] (no systemd).
//!
//! - One state directory holds a directory per service (`dnsmasq/`,
//!   `caddy/`, `haproxy/`) and the HTTP root (`www/`); what a previous run
//!   configured is read back at [`LinuxSiteTopology::start`].
//! - The capabilities delegate to the three services, so each is reloaded
//!   only when its own configuration changes (an identical change is
//!   `Unchanged` and signals nothing). Files under the HTTP root never
//!   reload Caddy.
//! - A switch and an SSH shell are optional: the topology implements
//!   [`Switch`] and [`RemoteShell`] only when built with one
//!   ([`LinuxSiteTopology::with_switch`], [`LinuxSiteTopology::with_shell`]),
//!   so a Score needing them does not compile against a site without.
//! - [`LinuxSiteTopology::ensure_running`] starts again a service that
//!   died (warning with its name and the end of its log);
//!   [`LinuxSiteTopology::stop`] stops all three within a deadline.
//! - The services run in the caller's network namespace: the provisioning
//!   interface and the addresses must exist there.

use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::caddy::access_log::AccessLogEvidence;
use super::caddy::{Caddy, CaddyConfig, CaddyError};
use super::dnsmasq::{DhcpRange, Dnsmasq, DnsmasqConfig, DnsmasqError};
use super::haproxy::{Haproxy, HaproxyConfig, HaproxyError};
use super::http_root::HttpRoot;
use crate::domain::{
    CapResult, CapabilityError, Change, ClusterApi, ClusterApiError, ClusterNode, CommandOutput,
    DhcpLease, DhcpReservation, DhcpServer, DnsName, DnsRecord, DnsServer, HostId, Hostname,
    HttpServer, HttpUrl, InterfaceName, LacpOptions, LagId, LbServiceName, LoadBalancer,
    LoadBalancerService, MacAddress, NodeCsr, PortStatus, PxeEvidence, RebootConfirm, RebootReport,
    RelativePath, RemoteCommand, RemoteHost, RemoteShell, RunLimits, Sha256Digest, Switch,
    SwitchCapabilities, SwitchError, SwitchPort, TftpServer, Topology, VlanId,
};

const CAPABILITY: &str = "linux site";
/// Characters of a dead service's log put in the warning.
const LOG_TAIL: usize = 2000;

/// The three services of the site, for messages and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SiteService {
    Dnsmasq,
    Caddy,
    Haproxy,
}

impl fmt::Display for SiteService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SiteService::Dnsmasq => "dnsmasq",
            SiteService::Caddy => "caddy",
            SiteService::Haproxy => "haproxy",
        })
    }
}

/// What the site serves, where, and where Harmony keeps its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinuxSiteConfig {
    /// The site's name (messages): 1 to 64 of `[A-Za-z0-9._-]`.
    pub name: String,
    /// Absolute; made world-searchable (dnsmasq drops its privileges).
    pub state_dir: PathBuf,
    /// The directory Caddy serves (absolute); `<state_dir>/www` by default.
    pub http_root: PathBuf,
    /// The provisioning interface dnsmasq serves.
    pub interface: InterfaceName,
    /// The host's address on the provisioning network: the boot URLs
    /// name it, and it must be on the DHCP range's subnet.
    pub address: Ipv4Addr,
    pub dhcp_range: DhcpRange,
    /// DHCP option 3, when the network has a gateway.
    pub router: Option<Ipv4Addr>,
    /// The DHCP and DNS domain (e.g. `ocp.example.com`).
    pub domain: Option<Hostname>,
    /// Where other names are forwarded; none: answered locally only.
    pub upstream_dns: Vec<IpAddr>,
    /// 53 by default.
    pub dns_port: u16,
    /// Where Caddy listens: the provisioning address or the unspecified
    /// address, with the port the boot URLs name.
    pub http_listen: SocketAddr,
    /// Caddy's admin endpoint (loopback).
    pub caddy_admin: SocketAddr,
    /// The address HAProxy's frontends bind (every service's `bind` must
    /// use it, or the unspecified address).
    pub lb_address: IpAddr,
    /// [`LinuxSiteTopology::stop`] ends within this.
    pub stop_within: Duration,
}

impl LinuxSiteConfig {
    /// HTTP on `address:8080`, Caddy's admin on `127.0.0.1:2999`, HAProxy
    /// on `address`, DNS on 53, stop within 15 s.
    pub fn new(
        name: impl Into<String>,
        state_dir: impl Into<PathBuf>,
        interface: InterfaceName,
        address: Ipv4Addr,
        dhcp_range: DhcpRange,
    ) -> Self {
        let state_dir: PathBuf = state_dir.into();
        Self {
            name: name.into(),
            http_root: state_dir.join("www"),
            state_dir,
            interface,
            address,
            dhcp_range,
            router: None,
            domain: None,
            upstream_dns: Vec::new(),
            dns_port: 53,
            http_listen: SocketAddr::new(IpAddr::V4(address), 8080),
            caddy_admin: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 2999),
            lb_address: IpAddr::V4(address),
            stop_within: Duration::from_secs(15),
        }
    }

    /// What the types cannot say; each service checks the rest.
    pub fn check(&self) -> Result<(), LinuxSiteError> {
        let bad = |field: &'static str, value: String, reason: &'static str| {
            Err(LinuxSiteError::Config {
                field,
                value: value.chars().take(80).collect(),
                reason,
            })
        };
        let name_ok = (1..=64).contains(&self.name.len())
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !name_ok {
            return bad(
                "name",
                self.name.clone(),
                "must be 1 to 64 of [A-Za-z0-9._-]",
            );
        }
        if !self.state_dir.is_absolute() {
            return bad(
                "state dir",
                self.state_dir.display().to_string(),
                "must be absolute",
            );
        }
        if !self.http_root.is_absolute() {
            return bad(
                "HTTP root",
                self.http_root.display().to_string(),
                "must be absolute",
            );
        }
        if !self.dhcp_range.subnet_contains(self.address) {
            return bad(
                "address",
                self.address.to_string(),
                "is not on the DHCP range's subnet",
            );
        }
        let listen = self.http_listen.ip();
        if !(listen.is_unspecified() || listen == IpAddr::V4(self.address)) {
            return bad(
                "HTTP listen address",
                self.http_listen.to_string(),
                "must be the provisioning address or unspecified (booting hosts fetch from the provisioning address)",
            );
        }
        if self.http_listen.port() == 0 {
            return bad(
                "HTTP listen address",
                self.http_listen.to_string(),
                "needs a port",
            );
        }
        if self.stop_within.is_zero() {
            return bad("stop deadline", "0s".into(), "must be positive");
        }
        Ok(())
    }

    fn dir(&self, service: &str) -> PathBuf {
        self.state_dir.join(service)
    }

    /// `http://ADDRESS:PORT/`, the root booting hosts fetch from.
    pub fn base_url(&self) -> Result<HttpUrl, LinuxSiteError> {
        let text = format!("http://{}:{}/", self.address, self.http_listen.port());
        text.parse().map_err(|_| LinuxSiteError::Config {
            field: "HTTP base URL",
            value: text,
            reason: "is not a valid URL",
        })
    }
}

/// Why the site could not be started, changed or stopped.
#[derive(Debug, thiserror::Error)]
pub enum LinuxSiteError {
    #[error("linux site configuration: {field} {value:?}: {reason}")]
    Config {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("dnsmasq: {0}")]
    Dnsmasq(#[from] DnsmasqError),
    #[error("caddy: {0}")]
    Caddy(#[from] CaddyError),
    #[error("haproxy: {0}")]
    Haproxy(#[from] HaproxyError),
    #[error(
        "load balancer service {service}: bind {bind} is not on the site's address {lb_address}"
    )]
    Bind {
        service: String,
        bind: SocketAddr,
        lb_address: IpAddr,
    },
    #[error("stopping the site: {}", failures.join("; "))]
    Stop { failures: Vec<String> },
    #[error(transparent)]
    Capability(#[from] CapabilityError),
}

impl From<LinuxSiteError> for CapabilityError {
    fn from(e: LinuxSiteError) -> Self {
        CapabilityError::new(CAPABILITY, e.to_string())
    }
}

/// The pids of the three services (`None`: not running).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SitePids {
    pub dnsmasq: Option<u32>,
    pub caddy: Option<u32>,
    /// HAProxy's master; `None` also while no service is configured.
    pub haproxy: Option<u32>,
}

/// dnsmasq + Caddy + HAProxy on this host, and optionally a switch `S`, a
/// remote shell `R` and the cluster's API `C` (`()`: none). See the module
/// documentation.
pub struct LinuxSiteTopology<S = (), R = (), C = ()> {
    config: LinuxSiteConfig,
    dnsmasq: Dnsmasq,
    caddy: Caddy,
    haproxy: Haproxy,
    switch: S,
    shell: R,
    cluster: C,
    /// Caddy's access log read as boot evidence (what hosts fetched).
    evidence: Arc<AccessLogEvidence>,
    stopped: AtomicBool,
}

impl<S, R, C> fmt::Debug for LinuxSiteTopology<S, R, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinuxSiteTopology")
            .field("name", &self.config.name)
            .field("state_dir", &self.config.state_dir)
            .finish_non_exhaustive()
    }
}

impl LinuxSiteTopology {
    /// Starts dnsmasq, Caddy and HAProxy (HAProxy only once it has a
    /// service, perhaps from a previous run) and returns when each serves;
    /// when one fails, the ones already started are stopped again.
    pub async fn start(config: LinuxSiteConfig) -> Result<Self, LinuxSiteError> {
        config.check()?;
        make_dir(&config.state_dir)?;
        let base = config.base_url()?;
        let script = base
            .join("default.ipxe")
            .map_err(|_| LinuxSiteError::Config {
                field: "HTTP base URL",
                value: base.to_string(),
                reason: "cannot name default.ipxe",
            })?;
        let mut dns = DnsmasqConfig::new(
            config.dir("dnsmasq"),
            config.interface.clone(),
            config.dhcp_range.clone(),
            script,
        );
        dns.router = config.router;
        dns.domain = config.domain.clone();
        dns.upstream_dns = config.upstream_dns.clone();
        dns.dns_port = config.dns_port;
        let www = config.http_root.clone();
        make_dir(&www)?;
        let mut caddy_config =
            CaddyConfig::new(config.dir("caddy"), config.http_listen, config.caddy_admin);
        caddy_config.stop_grace = config.stop_within / 3;
        make_dir(&caddy_config.dir)?;
        let caddy = Caddy::new(HttpRoot::new(&www, base), caddy_config)?;
        let mut lb_config = HaproxyConfig::new(config.dir("haproxy"));
        lb_config.stop_grace = config.stop_within / 3;
        let haproxy = Haproxy::new(lb_config);

        let dnsmasq = Dnsmasq::start(dns).await?;
        if let Err(e) = caddy.start().await {
            let _ = dnsmasq.stop().await;
            return Err(e.into());
        }
        if let Err(e) = haproxy.start().await {
            let _ = caddy.stop().await;
            let _ = dnsmasq.stop().await;
            return Err(e.into());
        }
        tracing::info!(site = %config.name, dir = %config.state_dir.display(), "linux site started");
        let evidence = Arc::new(caddy.pxe_evidence());
        Ok(Self {
            config,
            dnsmasq,
            caddy,
            haproxy,
            switch: (),
            shell: (),
            cluster: (),
            evidence,
            stopped: AtomicBool::new(false),
        })
    }
}

impl<S, R, C> LinuxSiteTopology<S, R, C> {
    /// The same site, with a switch: it now implements [`Switch`].
    pub fn with_switch<S2: Switch>(self, switch: S2) -> LinuxSiteTopology<S2, R, C> {
        LinuxSiteTopology {
            config: self.config,
            dnsmasq: self.dnsmasq,
            caddy: self.caddy,
            haproxy: self.haproxy,
            switch,
            shell: self.shell,
            cluster: self.cluster,
            evidence: self.evidence,
            stopped: self.stopped,
        }
    }

    /// The same site, with a remote shell: it now implements [`RemoteShell`].
    pub fn with_shell<R2: RemoteShell>(self, shell: R2) -> LinuxSiteTopology<S, R2, C> {
        LinuxSiteTopology {
            config: self.config,
            dnsmasq: self.dnsmasq,
            caddy: self.caddy,
            haproxy: self.haproxy,
            switch: self.switch,
            shell,
            cluster: self.cluster,
            evidence: self.evidence,
            stopped: self.stopped,
        }
    }

    /// The same site, with the cluster's API: it now implements
    /// [`ClusterApi`].
    pub fn with_cluster<C2: ClusterApi>(self, cluster: C2) -> LinuxSiteTopology<S, R, C2> {
        LinuxSiteTopology {
            config: self.config,
            dnsmasq: self.dnsmasq,
            caddy: self.caddy,
            haproxy: self.haproxy,
            switch: self.switch,
            shell: self.shell,
            cluster,
            evidence: self.evidence,
            stopped: self.stopped,
        }
    }

    pub fn config(&self) -> &LinuxSiteConfig {
        &self.config
    }

    pub fn dnsmasq(&self) -> &Dnsmasq {
        &self.dnsmasq
    }

    pub fn caddy(&self) -> &Caddy {
        &self.caddy
    }

    pub fn haproxy(&self) -> &Haproxy {
        &self.haproxy
    }

    pub fn switch(&self) -> &S {
        &self.switch
    }

    pub fn shell(&self) -> &R {
        &self.shell
    }

    pub fn cluster(&self) -> &C {
        &self.cluster
    }

    /// The `PxeEvidence` of this site (Caddy's access log), shared: hosts
    /// registered on it ([`AccessLogEvidence::know_host`]) are recognised
    /// by their per-MAC script wherever they fetch it from (the SSH shell's
    /// reboot confirmation uses the same one).
    pub fn pxe_evidence(&self) -> Arc<AccessLogEvidence> {
        self.evidence.clone()
    }

    /// The log file of each service.
    pub fn log_path(&self, service: SiteService) -> PathBuf {
        match service {
            SiteService::Dnsmasq => self.dnsmasq.layout().log.clone(),
            SiteService::Caddy => self.caddy.log_path(),
            SiteService::Haproxy => self.haproxy.log_path(),
        }
    }

    pub async fn pids(&self) -> SitePids {
        SitePids {
            dnsmasq: self.dnsmasq.pid().await,
            caddy: self.caddy.pid().await,
            haproxy: self.haproxy.master_pid().await,
        }
    }

    /// Starts again each service that died (not one stopped by
    /// [`LinuxSiteTopology::stop`]), with a warning naming it and the end
    /// of its log; the services started again. HAProxy without a service
    /// is not running by design.
    pub async fn ensure_running(&self) -> Result<Vec<SiteService>, LinuxSiteError> {
        if self.stopped.load(Ordering::SeqCst) {
            return Ok(Vec::new());
        }
        let mut restarted = Vec::new();
        if self.dnsmasq.pid().await.is_none() {
            self.warn_dead(SiteService::Dnsmasq);
            if self.dnsmasq.ensure_running().await?.is_some() {
                restarted.push(SiteService::Dnsmasq);
            }
        }
        if self.caddy.pid().await.is_none() {
            self.warn_dead(SiteService::Caddy);
            self.caddy.start().await?;
            restarted.push(SiteService::Caddy);
        }
        if self.haproxy.master_pid().await.is_none() && !self.lb_services().await?.is_empty() {
            self.warn_dead(SiteService::Haproxy);
            self.haproxy.start().await?;
            restarted.push(SiteService::Haproxy);
        }
        Ok(restarted)
    }

    fn warn_dead(&self, service: SiteService) {
        let log = self.log_path(service);
        tracing::warn!(
            site = %self.config.name,
            service = %service,
            log = %log.display(),
            tail = %tail(&log, LOG_TAIL),
            "site service {service} is not running; starting it again"
        );
    }

    async fn lb_services(&self) -> Result<Vec<LoadBalancerService>, LinuxSiteError> {
        Ok(LoadBalancer::services(&self.haproxy).await?)
    }

    /// Stops the three services at once (SIGTERM, then SIGKILL), all
    /// within the configured deadline; the files stay (a later
    /// [`LinuxSiteTopology::start`] on the same directory serves them
    /// again). Final: capabilities then only write files.
    pub async fn stop(&self) -> Result<(), LinuxSiteError> {
        self.stopped.store(true, Ordering::SeqCst);
        let all =
            async { tokio::join!(self.dnsmasq.stop(), self.caddy.stop(), self.haproxy.stop()) };
        let mut failures = Vec::new();
        match tokio::time::timeout(self.config.stop_within, all).await {
            Ok((d, c, h)) => {
                if let Err(e) = d {
                    failures.push(format!("dnsmasq: {e}"));
                }
                if let Err(e) = c {
                    failures.push(format!("caddy: {e}"));
                }
                if let Err(e) = h {
                    failures.push(format!("haproxy: {e}"));
                }
            }
            Err(_) => failures.push(format!(
                "not stopped within {} (the rest are killed when the site is dropped)",
                humantime::format_duration(self.config.stop_within)
            )),
        }
        if failures.is_empty() {
            tracing::info!(site = %self.config.name, "linux site stopped");
            Ok(())
        } else {
            Err(LinuxSiteError::Stop { failures })
        }
    }
}

/// Checks the site once every `every` and starts again what died, until
/// the site is stopped (or the returned task is aborted).
pub fn spawn_supervisor<S, R, C>(
    site: Arc<LinuxSiteTopology<S, R, C>>,
    every: Duration,
) -> tokio::task::JoinHandle<()>
where
    S: Send + Sync + 'static,
    R: Send + Sync + 'static,
    C: Send + Sync + 'static,
{
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if site.stopped.load(Ordering::SeqCst) {
                return;
            }
            match site.ensure_running().await {
                Ok(r) if !r.is_empty() => tracing::info!(restarted = ?r, "site services restarted"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "a site service could not be started again"),
            }
        }
    })
}

fn make_dir(dir: &Path) -> Result<(), LinuxSiteError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |source| LinuxSiteError::Io {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    // dnsmasq reads under it after dropping its privileges.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).map_err(io)
}

/// The last `max` bytes of a log, control characters (but newlines)
/// replaced.
fn tail(path: &Path, max: usize) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let from = len.saturating_sub(max as u64);
    let mut buf = Vec::new();
    if f.seek(SeekFrom::Start(from)).is_err() || f.take(max as u64).read_to_end(&mut buf).is_err() {
        return String::new();
    }
    String::from_utf8_lossy(&buf)
        .trim()
        .chars()
        .map(|c| if c.is_control() && c != '\n' { '_' } else { c })
        .collect()
}

impl<S, R, C> Topology for LinuxSiteTopology<S, R, C>
where
    S: Send + Sync + 'static,
    R: Send + Sync + 'static,
    C: Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.config.name
    }

    /// Discovery probes dnsmasq's leased addresses first.
    fn dhcp(&self) -> Option<&dyn DhcpServer> {
        Some(self)
    }

    /// Caddy's access log: the installation follows each host's boot by
    /// the files it fetches.
    fn pxe_evidence(&self) -> Option<&dyn PxeEvidence> {
        Some(self.evidence.as_ref())
    }
}

#[async_trait]
impl<S, R, C> DhcpServer for LinuxSiteTopology<S, R, C>
where
    S: Send + Sync + 'static,
    R: Send + Sync + 'static,
    C: Send + Sync + 'static,
{
    async fn reserve(&self, reservation: &DhcpReservation) -> CapResult<Change> {
        self.dnsmasq.reserve(reservation).await
    }

    async fn reserve_many(&self, reservations: &[DhcpReservation]) -> CapResult<Change> {
        self.dnsmasq.reserve_many(reservations).await
    }

    async fn release(&self, mac: &MacAddress) -> CapResult<Change> {
        self.dnsmasq.release(mac).await
    }

    async fn reservations(&self) -> CapResult<Vec<DhcpReservation>> {
        self.dnsmasq.reservations().await
    }

    async fn leases(&self) -> CapResult<Vec<DhcpLease>> {
        self.dnsmasq.leases().await
    }
}

#[async_trait]
impl<S, R, C> TftpServer for LinuxSiteTopology<S, R, C>
where
    S: Send + Sync + 'static,
    R: Send + Sync + 'static,
    C: Send + Sync + 'static,
{
    async fn put_tftp_file(&self, path: &RelativePath, contents: &[u8]) -> CapResult<Change> {
        self.dnsmasq.put_tftp_file(path, contents).await
    }
}

#[async_trait]
impl<S, R, C> DnsServer for LinuxSiteTopology<S, R, C>
where
    S: Send + Sync + 'static,
    R: Send + Sync + 'static,
    C: Send + Sync + 'static,
{
    async fn set_record(&self, record: &DnsRecord) -> CapResult<Change> {
        self.dnsmasq.set_record(record).await
    }

    async fn set_records(&self, records: &[DnsRecord]) -> CapResult<Change> {
        self.dnsmasq.set_records(records).await
    }

    async fn remove_record(&self, name: &DnsName) -> CapResult<Change> {
        self.dnsmasq.remove_record(name).await
    }

    async fn records(&self) -> CapResult<Vec<DnsRecord>> {
        self.dnsmasq.records().await
    }
}

#[async_trait]
impl<S, R, C> HttpServer for LinuxSiteTopology<S, R, C>
where
    S: Send + Sync + 'static,
    R: Send + Sync + 'static,
    C: Send + Sync + 'static,
{
    async fn put_file(&self, path: &RelativePath, contents: &[u8]) -> CapResult<Change> {
        self.caddy.put_file(path, contents).await
    }

    async fn put_file_from(&self, path: &RelativePath, source: &Path) -> CapResult<Change> {
        self.caddy.put_file_from(path, source).await
    }

    async fn remove_file(&self, path: &RelativePath) -> CapResult<Change> {
        self.caddy.remove_file(path).await
    }

    async fn list_files(&self, dir: &RelativePath) -> CapResult<Vec<RelativePath>> {
        self.caddy.list_files(dir).await
    }

    async fn take_file(&self, path: &RelativePath, dest: &Path) -> CapResult<Change> {
        self.caddy.take_file(path, dest).await
    }

    async fn file_sha256(&self, path: &RelativePath) -> CapResult<Option<Sha256Digest>> {
        self.caddy.file_sha256(path).await
    }

    async fn staging_dir(&self) -> CapResult<PathBuf> {
        self.caddy.staging_dir().await
    }

    async fn read_file(&self, path: &RelativePath) -> CapResult<Option<Vec<u8>>> {
        self.caddy.read_file(path).await
    }

    fn url_for(&self, path: &RelativePath) -> HttpUrl {
        self.caddy.url_for(path)
    }

    fn base_url(&self) -> HttpUrl {
        self.caddy.base_url()
    }
}

#[async_trait]
impl<S, R, C> LoadBalancer for LinuxSiteTopology<S, R, C>
where
    S: Send + Sync + 'static,
    R: Send + Sync + 'static,
    C: Send + Sync + 'static,
{
    /// Refused (nothing changed) when `bind` is neither the site's load
    /// balancer address nor the unspecified address.
    async fn set_service(&self, service: &LoadBalancerService) -> CapResult<Change> {
        let ip = service.bind.ip();
        if !(ip == self.config.lb_address || ip.is_unspecified()) {
            return Err(LinuxSiteError::Bind {
                service: service.name.to_string(),
                bind: service.bind,
                lb_address: self.config.lb_address,
            }
            .into());
        }
        self.haproxy.set_service(service).await
    }

    async fn remove_backend(
        &self,
        service: &LbServiceName,
        backend: &Hostname,
    ) -> CapResult<Change> {
        self.haproxy.remove_backend(service, backend).await
    }

    async fn remove_service(&self, service: &LbServiceName) -> CapResult<Change> {
        self.haproxy.remove_service(service).await
    }

    async fn services(&self) -> CapResult<Vec<LoadBalancerService>> {
        self.haproxy.services().await
    }
}

#[async_trait]
impl<S, R, C> Switch for LinuxSiteTopology<S, R, C>
where
    S: Switch,
    R: Send + Sync + 'static,
    C: Send + Sync + 'static,
{
    fn switch_name(&self) -> &str {
        self.switch.switch_name()
    }

    fn capabilities(&self) -> SwitchCapabilities {
        self.switch.capabilities()
    }

    async fn get_port_status(&self, ports: &[SwitchPort]) -> Result<Vec<PortStatus>, SwitchError> {
        self.switch.get_port_status(ports).await
    }

    async fn set_ports_access_mode(
        &self,
        ports: &[SwitchPort],
        vlan: VlanId,
    ) -> Result<Change, SwitchError> {
        self.switch.set_ports_access_mode(ports, vlan).await
    }

    async fn set_ports_lacp_mode(
        &self,
        ports: &[SwitchPort],
        lag: LagId,
        vlan: VlanId,
        options: LacpOptions,
    ) -> Result<Change, SwitchError> {
        self.switch
            .set_ports_lacp_mode(ports, lag, vlan, options)
            .await
    }
}

#[async_trait]
impl<S, R, C> RemoteShell for LinuxSiteTopology<S, R, C>
where
    S: Send + Sync + 'static,
    R: RemoteShell,
    C: Send + Sync + 'static,
{
    async fn run(
        &self,
        host: &RemoteHost,
        command: &RemoteCommand,
        limits: RunLimits,
    ) -> CapResult<CommandOutput> {
        self.shell.run(host, command, limits).await
    }

    async fn reboot(&self, host: &RemoteHost, confirm: RebootConfirm) -> CapResult<RebootReport> {
        self.shell.reboot(host, confirm).await
    }

    async fn forget_host_key(&self, host: &HostId) -> CapResult<bool> {
        self.shell.forget_host_key(host).await
    }

    async fn answers(&self, host: &RemoteHost) -> CapResult<bool> {
        self.shell.answers(host).await
    }
}

#[async_trait]
impl<S, R, C> ClusterApi for LinuxSiteTopology<S, R, C>
where
    S: Send + Sync + 'static,
    R: Send + Sync + 'static,
    C: ClusterApi,
{
    fn api_server(&self) -> &str {
        self.cluster.api_server()
    }

    async fn api_answers(&self) -> Result<bool, ClusterApiError> {
        self.cluster.api_answers().await
    }

    async fn nodes(&self) -> Result<Vec<ClusterNode>, ClusterApiError> {
        self.cluster.nodes().await
    }

    async fn bootstrap_complete(&self) -> Result<bool, ClusterApiError> {
        self.cluster.bootstrap_complete().await
    }

    async fn pending_csrs(&self) -> Result<Vec<NodeCsr>, ClusterApiError> {
        self.cluster.pending_csrs().await
    }

    async fn approve_csr(&self, csr: &NodeCsr, message: &str) -> Result<Change, ClusterApiError> {
        self.cluster.approve_csr(csr, message).await
    }

    async fn masters_schedulable(&self) -> Result<bool, ClusterApiError> {
        self.cluster.masters_schedulable().await
    }

    async fn set_masters_schedulable(&self, schedulable: bool) -> Result<Change, ClusterApiError> {
        self.cluster.set_masters_schedulable(schedulable).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LinuxSiteConfig {
        LinuxSiteConfig::new(
            "lab",
            "/var/lib/harmony/site",
            "prov0".parse().unwrap(),
            Ipv4Addr::new(198, 51, 100, 1),
            DhcpRange {
                start: Ipv4Addr::new(198, 51, 100, 100),
                end: Ipv4Addr::new(198, 51, 100, 150),
                netmask: Ipv4Addr::new(255, 255, 255, 0),
                lease_time: Duration::from_secs(3600),
            },
        )
    }

    #[test]
    fn the_configuration_is_checked_naming_the_field() {
        assert!(config().check().is_ok());
        assert_eq!(
            config().base_url().unwrap().as_str(),
            "http://198.51.100.1:8080/"
        );
        let mut c = config();
        c.address = Ipv4Addr::new(10, 0, 0, 1);
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("address \"10.0.0.1\""), "{e}");
        let mut c = config();
        c.state_dir = "relative".into();
        assert!(c.check().unwrap_err().to_string().contains("state dir"));
        let mut c = config();
        c.http_listen = "10.0.0.1:80".parse().unwrap();
        assert!(
            c.check()
                .unwrap_err()
                .to_string()
                .contains("HTTP listen address \"10.0.0.1:80\"")
        );
        let mut c = config();
        c.name = "a b".into();
        assert!(c.check().unwrap_err().to_string().contains("name \"a b\""));
    }
}
