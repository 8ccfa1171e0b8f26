//! [`PlanView`]: a Linux site as `harmony install --dry-run` sees it: its
//! current state read from the files Harmony keeps in the state directory,
//! without starting dnsmasq, Caddy or HAProxy, opening a socket or writing
//! a file. It implements every capability of an installation
//! ([`crate::modules::okd::install::InstallSite`]) so the Scores can plan
//! (`Interpret::plan` calls each step's `prepare`, which only reads):
//!
//! - DHCP reservations and DNS records: dnsmasq's own files
//!   (`<state>/dnsmasq/dhcp-hosts`, `dns-hosts`, `dns-wildcards.conf`),
//!   read back as dnsmasq's start does ([`load_records`]); leases from its
//!   lease file;
//! - the HTTP root's files: [`HttpRoot`] on the served directory;
//! - the load balancer's services: the JSON records of
//!   `<state>/haproxy/haproxy.cfg` ([`read_back`]);
//! - the site's switches ([`PlanView::with_switch`], the site file's
//!   `SiteSwitches`): their ports' status is read (the only thing a dry
//!   run contacts; the steps plan from what each port is now), every
//!   change refused here, whatever the switch given; without switches
//!   ([`NoSwitch`]) a read is an error naming the missing section;
//! - the remote shell, the cluster's API and the PXE evidence are never
//!   contacted: a cluster read answers a transport error saying it is a
//!   dry run (the cluster steps read that as "not yet"), a shell call is
//!   an error (an LACP step plans "once its bond is up").
//!
//! Every mutating call returns an error saying it is a dry run.

use std::io::Read;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::domain::{
    CapResult, CapabilityError, Change, ClusterApi, ClusterApiError, CommandOutput, DhcpLease,
    DhcpReservation, DhcpServer, DnsName, DnsRecord, DnsServer, HostId, Hostname, HttpServer,
    HttpUrl, LacpOptions, LagId, LbServiceName, LoadBalancer, LoadBalancerService, MacAddress,
    NodeCsr, PortList, PortStatus, PxeEvidence, RebootConfirm, RebootReport, RelativePath,
    RemoteCommand, RemoteHost, RemoteShell, RunLimits, Sha256Digest, Switch, SwitchCapabilities,
    SwitchError, SwitchPort, Topology, VlanId,
};
use crate::infra::dnsmasq::config::{Layout, load_records};
use crate::infra::dnsmasq::leases::parse_leases;
use crate::infra::haproxy::render::read_back;
use crate::infra::http_root::HttpRoot;
use crate::infra::linux_site::LinuxSiteConfig;

const CAPABILITY: &str = "dry run";
/// The lease file read at most (as dnsmasq's reader caps it).
const MAX_LEASE_FILE: u64 = 16 << 20;

fn refused(what: &str) -> CapabilityError {
    CapabilityError::new(
        CAPABILITY,
        format!("a dry run changes nothing: {what} not done"),
    )
}

/// A Linux site's current state, read only. See the module documentation.
#[derive(Debug)]
pub struct PlanView<S = NoSwitch> {
    name: String,
    switch: S,
    dnsmasq: Layout,
    haproxy_cfg: PathBuf,
    root: HttpRoot,
    api_server: String,
}

impl PlanView {
    /// Reads nothing yet: every capability reads its file when asked.
    pub fn new(config: &LinuxSiteConfig) -> Result<Self, CapabilityError> {
        let base = config
            .base_url()
            .map_err(|e| CapabilityError::new(CAPABILITY, e.to_string()))?;
        Ok(Self {
            name: config.name.clone(),
            dnsmasq: Layout::new(&config.state_dir.join("dnsmasq")),
            haproxy_cfg: config.state_dir.join("haproxy").join("haproxy.cfg"),
            root: HttpRoot::new(&config.http_root, base),
            switch: NoSwitch,
            api_server: format!("https://api.{}:6443 (not contacted: dry run)", {
                config
                    .domain
                    .as_ref()
                    .map_or(config.name.clone(), |d| d.to_string())
            }),
        })
    }
}

impl<S> PlanView<S> {
    /// The site's switches, read to plan their steps (never changed).
    pub fn with_switch<W: Switch>(self, switch: W) -> PlanView<W> {
        PlanView {
            name: self.name,
            switch,
            dnsmasq: self.dnsmasq,
            haproxy_cfg: self.haproxy_cfg,
            root: self.root,
            api_server: self.api_server,
        }
    }

    fn records(&self) -> CapResult<crate::infra::dnsmasq::config::SiteRecords> {
        load_records(&self.dnsmasq).map_err(|e| CapabilityError::new(CAPABILITY, e.to_string()))
    }

    fn read_text(path: &Path) -> CapResult<Option<String>> {
        match std::fs::read_to_string(path) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CapabilityError::new(
                CAPABILITY,
                format!("read {}: {e}", path.display()),
            )),
        }
    }
}

impl<S: Switch> Topology for PlanView<S> {
    fn name(&self) -> &str {
        &self.name
    }

    fn dhcp(&self) -> Option<&dyn DhcpServer> {
        Some(self)
    }

    /// Some: the waits on fetched files are planned (a Linux site follows
    /// them through Caddy's access log), never run.
    fn pxe_evidence(&self) -> Option<&dyn PxeEvidence> {
        Some(&NoEvidence)
    }
}

/// The PXE evidence of a plan: never read.
#[derive(Debug)]
struct NoEvidence;

#[async_trait]
impl PxeEvidence for NoEvidence {
    async fn pxe_started_since(&self, _: &RemoteHost, _: std::time::SystemTime) -> CapResult<bool> {
        Err(refused("reading the access log"))
    }

    async fn fetched_since(
        &self,
        _: std::net::IpAddr,
        _: &RelativePath,
        _: bool,
        _: std::time::SystemTime,
    ) -> CapResult<bool> {
        Err(refused("reading the access log"))
    }
}

#[async_trait]
impl<S: Switch> DhcpServer for PlanView<S> {
    async fn reserve(&self, r: &DhcpReservation) -> CapResult<Change> {
        Err(refused(&format!("DHCP reservation of {}", r.mac)))
    }

    async fn reserve_many(&self, _: &[DhcpReservation]) -> CapResult<Change> {
        Err(refused("DHCP reservations"))
    }

    async fn release(&self, mac: &MacAddress) -> CapResult<Change> {
        Err(refused(&format!("release of {mac}")))
    }

    async fn reservations(&self) -> CapResult<Vec<DhcpReservation>> {
        Ok(self.records()?.reservations.into_values().collect())
    }

    async fn leases(&self) -> CapResult<Vec<DhcpLease>> {
        let path = &self.dnsmasq.leases;
        let mut bytes = Vec::new();
        match std::fs::File::open(path) {
            Ok(f) => {
                f.take(MAX_LEASE_FILE)
                    .read_to_end(&mut bytes)
                    .map_err(|e| {
                        CapabilityError::new(CAPABILITY, format!("{}: {e}", path.display()))
                    })?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(CapabilityError::new(
                    CAPABILITY,
                    format!("{}: {e}", path.display()),
                ));
            }
        }
        Ok(parse_leases(&String::from_utf8_lossy(&bytes)).leases)
    }
}

#[async_trait]
impl<S: Switch> DnsServer for PlanView<S> {
    async fn set_record(&self, r: &DnsRecord) -> CapResult<Change> {
        Err(refused(&format!("DNS record {}", r.name)))
    }

    async fn set_records(&self, _: &[DnsRecord]) -> CapResult<Change> {
        Err(refused("DNS records"))
    }

    async fn remove_record(&self, name: &DnsName) -> CapResult<Change> {
        Err(refused(&format!("removal of DNS record {name}")))
    }

    async fn records(&self) -> CapResult<Vec<DnsRecord>> {
        Ok(self.records()?.dns_records())
    }
}

#[async_trait]
impl<S: Switch> HttpServer for PlanView<S> {
    async fn put_file(&self, path: &RelativePath, _: &[u8]) -> CapResult<Change> {
        Err(refused(&format!("writing {path}")))
    }

    async fn put_file_from(&self, path: &RelativePath, _: &Path) -> CapResult<Change> {
        Err(refused(&format!("writing {path}")))
    }

    async fn remove_file(&self, path: &RelativePath) -> CapResult<Change> {
        Err(refused(&format!("removing {path}")))
    }

    async fn list_files(&self, dir: &RelativePath) -> CapResult<Vec<RelativePath>> {
        self.root.list_files(dir)
    }

    async fn take_file(&self, path: &RelativePath, _: &Path) -> CapResult<Change> {
        Err(refused(&format!("moving {path}")))
    }

    /// Hashed here: the root's digest cache would write its manifest.
    async fn file_sha256(&self, path: &RelativePath) -> CapResult<Option<Sha256Digest>> {
        let Some(bytes) = self.root.read_file(path)? else {
            return Ok(None);
        };
        let hex = hex::encode(Sha256::digest(&bytes));
        hex.parse()
            .map(Some)
            .map_err(|e| CapabilityError::new(CAPABILITY, format!("{path}: {e}")))
    }

    async fn staging_dir(&self) -> CapResult<PathBuf> {
        Err(refused("creating the staging directory"))
    }

    async fn read_file(&self, path: &RelativePath) -> CapResult<Option<Vec<u8>>> {
        self.root.read_file(path)
    }

    fn url_for(&self, path: &RelativePath) -> HttpUrl {
        self.root.url_for(path)
    }

    fn base_url(&self) -> HttpUrl {
        self.root.base_url().clone()
    }
}

#[async_trait]
impl<S: Switch> LoadBalancer for PlanView<S> {
    async fn set_service(&self, s: &LoadBalancerService) -> CapResult<Change> {
        Err(refused(&format!("load balancer service {}", s.name)))
    }

    async fn remove_backend(&self, s: &LbServiceName, b: &Hostname) -> CapResult<Change> {
        Err(refused(&format!("removal of backend {b} from {s}")))
    }

    async fn remove_service(&self, s: &LbServiceName) -> CapResult<Change> {
        Err(refused(&format!("removal of service {s}")))
    }

    async fn services(&self) -> CapResult<Vec<LoadBalancerService>> {
        let Some(text) = Self::read_text(&self.haproxy_cfg)? else {
            return Ok(Vec::new());
        };
        let services = read_back(&text).map_err(|e| {
            CapabilityError::new(CAPABILITY, format!("{}: {e}", self.haproxy_cfg.display()))
        })?;
        Ok(services.into_values().collect())
    }
}

/// The switch of a site without `switches`: nothing to read.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSwitch;

impl Topology for NoSwitch {
    fn name(&self) -> &str {
        "(no switch)"
    }
}

#[async_trait]
impl Switch for NoSwitch {
    fn switch_name(&self) -> &str {
        "(no switch)"
    }

    fn capabilities(&self) -> SwitchCapabilities {
        SwitchCapabilities::default()
    }

    async fn get_port_status(&self, ports: &[SwitchPort]) -> Result<Vec<PortStatus>, SwitchError> {
        Err(no_switches(ports))
    }

    async fn set_ports_access_mode(
        &self,
        ports: &[SwitchPort],
        _: VlanId,
    ) -> Result<Change, SwitchError> {
        Err(no_switches(ports))
    }

    async fn set_ports_lacp_mode(
        &self,
        ports: &[SwitchPort],
        _: LagId,
        _: VlanId,
        _: LacpOptions,
    ) -> Result<Change, SwitchError> {
        Err(no_switches(ports))
    }
}

fn no_switches(ports: &[SwitchPort]) -> SwitchError {
    SwitchError::Refused {
        switch: "(no switch)".into(),
        ports: PortList(ports.to_vec()),
        reason: "the site file has no `switches`".into(),
    }
}

fn dry_run_switch(switch: &impl Switch, ports: &[SwitchPort], what: &str) -> SwitchError {
    SwitchError::Refused {
        switch: switch.switch_name().to_string(),
        ports: PortList(ports.to_vec()),
        reason: format!("a dry run changes nothing: {what} not sent"),
    }
}

/// The site's switches read (their ports' status, what the steps plan
/// from), never changed.
#[async_trait]
impl<S: Switch> Switch for PlanView<S> {
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
        Err(dry_run_switch(
            &self.switch,
            ports,
            &format!("access vlan {vlan}"),
        ))
    }

    async fn set_ports_lacp_mode(
        &self,
        ports: &[SwitchPort],
        lag: LagId,
        _: VlanId,
        _: LacpOptions,
    ) -> Result<Change, SwitchError> {
        Err(dry_run_switch(
            &self.switch,
            ports,
            &format!("lacp lag {lag}"),
        ))
    }
}

#[async_trait]
impl<S: Switch> RemoteShell for PlanView<S> {
    async fn run(
        &self,
        host: &RemoteHost,
        command: &RemoteCommand,
        _: RunLimits,
    ) -> CapResult<CommandOutput> {
        Err(refused(&format!("{command:?} on {host}")))
    }

    async fn reboot(&self, host: &RemoteHost, _: RebootConfirm) -> CapResult<RebootReport> {
        Err(refused(&format!("reboot of {host}")))
    }

    /// Not contacted in a dry run: no host answers.
    async fn answers(&self, _: &RemoteHost) -> CapResult<bool> {
        Ok(false)
    }

    async fn forget_host_key(&self, host: &HostId) -> CapResult<bool> {
        Err(refused(&format!("forgetting the host key of {host}")))
    }
}

/// Every call fails as a dry run: a transport error, which the cluster
/// steps read as "not yet" when planning.
fn no_cluster(endpoint: &str) -> ClusterApiError {
    ClusterApiError::Transport {
        endpoint: endpoint.into(),
        message: "not contacted in a dry run".into(),
    }
}

#[async_trait]
impl<S: Switch> ClusterApi for PlanView<S> {
    fn api_server(&self) -> &str {
        &self.api_server
    }

    async fn bootstrap_complete(&self) -> Result<bool, ClusterApiError> {
        Err(no_cluster("configmaps/bootstrap"))
    }

    async fn pending_csrs(&self) -> Result<Vec<NodeCsr>, ClusterApiError> {
        Err(no_cluster("certificatesigningrequests"))
    }

    async fn api_answers(&self) -> Result<bool, ClusterApiError> {
        Ok(false)
    }

    async fn nodes(&self) -> Result<Vec<crate::domain::ClusterNode>, ClusterApiError> {
        Err(no_cluster("nodes"))
    }

    async fn approve_csr(&self, csr: &NodeCsr, _: &str) -> Result<Change, ClusterApiError> {
        Err(no_cluster(&format!(
            "certificatesigningrequests/{}/approval",
            csr.name
        )))
    }

    async fn masters_schedulable(&self) -> Result<bool, ClusterApiError> {
        Err(no_cluster("schedulers/cluster"))
    }

    async fn set_masters_schedulable(&self, _: bool) -> Result<Change, ClusterApiError> {
        Err(no_cluster("schedulers/cluster"))
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::*;
    use crate::domain::{LbBackend, LbHealthCheck, LbMode};
    use crate::infra::dnsmasq::DhcpRange;
    use crate::infra::dnsmasq::config::{
        SiteRecords, render_dhcp_hosts, render_dns_hosts, render_wildcards,
    };
    use crate::infra::haproxy::render::{Services, render};

    fn config(dir: &Path) -> LinuxSiteConfig {
        let mut c = LinuxSiteConfig::new(
            "lab",
            dir.join("state"),
            "prov0".parse().unwrap(),
            Ipv4Addr::new(192, 0, 2, 2),
            DhcpRange {
                start: Ipv4Addr::new(192, 0, 2, 100),
                end: Ipv4Addr::new(192, 0, 2, 199),
                netmask: Ipv4Addr::new(255, 255, 255, 0),
                lease_time: Duration::from_secs(3600),
            },
        );
        c.http_root = dir.join("www");
        c
    }

    /// Every file and its bytes under `dir`.
    fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    todo.push(p.clone());
                    out.push((p, Vec::new()));
                } else {
                    out.push((p.clone(), std::fs::read(&p).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    #[tokio::test]
    async fn reads_what_harmony_wrote_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path());
        let dns = c.state_dir.join("dnsmasq");
        std::fs::create_dir_all(&dns).unwrap();
        std::fs::create_dir_all(c.state_dir.join("haproxy")).unwrap();
        std::fs::create_dir_all(c.http_root.join("ipxe")).unwrap();
        let mut records = SiteRecords::default();
        let r = DhcpReservation {
            mac: "52:54:00:00:00:01".parse().unwrap(),
            ip: "192.0.2.10".parse().unwrap(),
            hostname: "bootstrap".parse().unwrap(),
        };
        records.reservations.insert(r.mac, r.clone());
        records.hosts.insert(
            "api.lab.example.org".parse().unwrap(),
            "192.0.2.2".parse().unwrap(),
        );
        records.wildcards.insert(
            "apps.lab.example.org".parse().unwrap(),
            "192.0.2.2".parse().unwrap(),
        );
        std::fs::write(dns.join("dhcp-hosts"), render_dhcp_hosts(&records)).unwrap();
        std::fs::write(dns.join("dns-hosts"), render_dns_hosts(&records)).unwrap();
        std::fs::write(dns.join("dns-wildcards.conf"), render_wildcards(&records)).unwrap();
        let svc = LoadBalancerService {
            name: LbServiceName::from_trusted("api"),
            bind: "192.0.2.2:6443".parse().unwrap(),
            mode: LbMode::Tcp,
            backends: vec![LbBackend {
                hostname: "bootstrap".parse().unwrap(),
                ip: "192.0.2.10".parse().unwrap(),
                port: 6443,
            }],
            health_check: Some(LbHealthCheck::default()),
        };
        let mut services = Services::new();
        services.insert(svc.name.clone(), svc.clone());
        std::fs::write(c.state_dir.join("haproxy/haproxy.cfg"), render(&services)).unwrap();
        std::fs::write(c.http_root.join("default.ipxe"), b"#!ipxe\n").unwrap();
        let before = files(dir.path());

        let view = PlanView::new(&c).unwrap();
        assert_eq!(view.reservations().await.unwrap(), vec![r.clone()]);
        assert_eq!(view.records().unwrap().dns_records().len(), 2);
        assert_eq!(DnsServer::records(&view).await.unwrap().len(), 2);
        assert_eq!(view.services().await.unwrap(), vec![svc.clone()]);
        let p: RelativePath = "default.ipxe".parse().unwrap();
        assert_eq!(
            view.read_file(&p).await.unwrap().as_deref(),
            Some(&b"#!ipxe\n"[..])
        );
        assert!(view.file_sha256(&p).await.unwrap().is_some());
        assert_eq!(
            view.url_for(&p).as_str(),
            "http://192.0.2.2:8080/default.ipxe"
        );
        assert!(view.leases().await.unwrap().is_empty());

        // Every change is refused as a dry run; nothing reaches a host.
        let dry = |e: CapabilityError| assert!(e.to_string().contains("dry run"), "{e}");
        dry(view.reserve(&r).await.unwrap_err());
        dry(view.release(&r.mac).await.unwrap_err());
        dry(view.put_file(&p, b"x").await.unwrap_err());
        dry(view.remove_file(&p).await.unwrap_err());
        dry(view.staging_dir().await.unwrap_err());
        dry(view.set_service(&svc).await.unwrap_err());
        dry(view.remove_service(&svc.name).await.unwrap_err());
        let host = RemoteHost::discovery(
            HostId::from_serial("SN1").unwrap(),
            "192.0.2.10".parse().unwrap(),
        );
        dry(view.reboot(&host, RebootConfirm::Down).await.unwrap_err());
        let port: SwitchPort = "p1".parse().unwrap();
        assert!(view.get_port_status(&[port]).await.is_err());
        assert!(view.bootstrap_complete().await.is_err());
        assert!(view.set_masters_schedulable(false).await.is_err());
        assert_eq!(before, files(dir.path()), "the view changed a file");
    }

    #[tokio::test]
    async fn an_empty_state_dir_is_an_empty_site_and_a_hand_edited_config_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path());
        let view = PlanView::new(&c).unwrap();
        assert!(view.reservations().await.unwrap().is_empty());
        assert!(view.services().await.unwrap().is_empty());
        assert!(
            !dir.path().join("state").exists(),
            "the view made the state dir"
        );
        std::fs::create_dir_all(c.state_dir.join("haproxy")).unwrap();
        std::fs::write(
            c.state_dir.join("haproxy/haproxy.cfg"),
            "# harmony-service {\"name\": 1}\n",
        )
        .unwrap();
        let e = view.services().await.unwrap_err().to_string();
        assert!(e.contains("haproxy.cfg"), "{e}");
    }
}
