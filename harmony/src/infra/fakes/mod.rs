//! `FakeSite`: every capability of the domain in memory, for tests of
//! Score logic (plans, Noop, undo, resume). It records every call, counts
//! the calls that changed something, and fails on demand at the Nth call
//! of a chosen capability (or the Nth change of any), so a test can inject
//! a failure at every step in turn. Tests against the real programs
//! (dnsmasq, Caddy, HAProxy, OVS, sshd) stay; this is for pure logic.
//! [`harness`] runs any saga Score through the checks every saga must pass.

mod cluster;
pub mod harness;

pub use cluster::{
    FAKE_API_SERVER, FAKE_KUBECONFIG, FakeCluster, fake_client_csr, fake_csr_name, fake_serving_csr,
};

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::domain::switch::check_ports;
use crate::domain::{
    CapResult, CapabilityError, Change, CommandOutput, DhcpLease, DhcpReservation, DhcpServer,
    DnsName, DnsRecord, DnsServer, Hostname, HttpServer, HttpUrl, InterfaceName, LacpOptions,
    LacpPartner, LagId, LbServiceName, LoadBalancer, LoadBalancerService, MacAddress, PortList,
    PortMode, PortStatus, PxeEvidence, RebootConfirm, RebootReport, RelativePath, RemoteCommand,
    RemoteHost, RemoteShell, RunLimits, Sha256Digest, Switch, SwitchCapabilities, SwitchError,
    SwitchPort, TftpServer, Topology, VlanId,
};

/// Where the fake HTTP root says it is served (never contacted).
const FAKE_BASE_URL: &str = "http://192.0.2.10:8080/";

/// The capabilities a site can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    Dhcp,
    Tftp,
    Http,
    Dns,
    LoadBalancer,
    Switch,
    RemoteShell,
    ClusterApi,
}

impl Capability {
    fn name(self) -> &'static str {
        match self {
            Capability::Dhcp => "dhcp",
            Capability::Tftp => "tftp",
            Capability::Http => "http",
            Capability::Dns => "dns",
            Capability::LoadBalancer => "load balancer",
            Capability::Switch => "switch",
            Capability::RemoteShell => "remote shell",
            Capability::ClusterApi => "cluster api",
        }
    }
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub capability: Capability,
    pub op: &'static str,
    /// What it was called on (a path, a MAC, a host name, ports...).
    pub target: String,
    /// The call would change the site (a write, not a read).
    pub mutating: bool,
    /// It did change the site (`Change::Applied`).
    pub changed: bool,
    /// It failed because a failure was injected.
    pub failed: bool,
}

/// Everything the fake site holds: compare two snapshots to check that a
/// rolled-back run left the site as it found it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteState {
    pub http_files: BTreeMap<RelativePath, Vec<u8>>,
    pub tftp_files: BTreeMap<RelativePath, Vec<u8>>,
    pub reservations: BTreeMap<MacAddress, DhcpReservation>,
    /// Leases the fake DHCP server reports (set by the test; nothing leases).
    pub leases: Vec<DhcpLease>,
    pub dns: BTreeMap<DnsName, IpAddr>,
    pub services: BTreeMap<LbServiceName, LoadBalancerService>,
    /// Switch ports not in [`fake_default_port`]'s state.
    pub ports: BTreeMap<SwitchPort, PortStatus>,
    /// Remote commands run, in order (they cannot be taken back). Reads
    /// ([`RemoteCommand::BondStatus`]) are not recorded.
    pub commands: Vec<(IpAddr, RemoteCommand)>,
    /// The hosts' Linux bonds, by the host's address (set by the test):
    /// [`RemoteCommand::BondStatus`] renders them in the kernel's format
    /// from the switch ports' state, and a LAG member whose port is a
    /// bond's slave hears that bond as its partner.
    pub bonds: BTreeMap<IpAddr, FakeBond>,
    /// The cluster's API objects ([`FakeCluster`], `cluster.rs`).
    pub cluster: FakeCluster,
    /// Addresses where no SSH server answers (set by the test; every other
    /// address answers [`RemoteShell::answers`]).
    pub silent: BTreeSet<IpAddr>,
}

impl SiteState {
    /// What a rollback must put back: the state without what nothing can
    /// take back: the remote commands run (a reboot, a wipe; the harness
    /// checks they ran once), and the cluster's CSRs, approvals and nodes
    /// (an approved CSR cannot be unapproved; the CSRs and nodes of joining
    /// hosts come and go with them). The saga harness compares this after
    /// a failed run.
    pub fn undoable(&self) -> SiteState {
        let mut s = self.clone();
        s.commands.clear();
        s.cluster.csrs.clear();
        s.cluster.approvals.clear();
        s.cluster.nodes.clear();
        s
    }
}

/// A host's 802.3ad bond on the fake site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeBond {
    pub name: InterfaceName,
    /// The LACP system id it announces.
    pub system_mac: MacAddress,
    /// Its slaves and the switch port each is cabled to.
    pub slaves: Vec<(InterfaceName, SwitchPort)>,
    /// The installed OS brought it up (false: the file reports it down).
    pub up: bool,
}

#[derive(Debug, Default)]
struct Inner {
    state: SiteState,
    calls: Vec<Call>,
    /// Fail the Nth call (1-based) of a capability.
    fail_call: Option<(Capability, usize)>,
    /// Fail the Nth mutating call (1-based) of any capability.
    fail_mutation: Option<usize>,
    /// The switch names no LACP partner (see [`FakeSite::hiding_lacp_partner`]).
    hides_lacp_partner: bool,
}

/// Every capability in memory. See the module documentation.
#[derive(Debug)]
pub struct FakeSite {
    name: String,
    /// Set: every call fails (see [`FakeSite::kill_switch`]).
    down: Arc<AtomicBool>,
    /// The local staging directory (a temp dir removed with the site).
    staging: tempfile::TempDir,
    base_url: HttpUrl,
    inner: Mutex<Inner>,
    /// The cluster's scripted behaviour (`cluster.rs`).
    cluster: Mutex<cluster::Script>,
}

impl Default for FakeSite {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeSite {
    /// An empty site. Its HTTP base URL is a documentation address
    /// (192.0.2.0/24) that nothing ever contacts.
    pub fn new() -> Self {
        Self::with_state(SiteState::default())
    }

    ///
    /// # Panics
    /// When no temporary directory can be created (a broken test machine).
    #[allow(clippy::expect_used)]
    pub fn with_state(state: SiteState) -> Self {
        Self {
            name: "fake site".into(),
            down: Arc::new(AtomicBool::new(false)),
            staging: tempfile::tempdir().expect("a temp dir for the fake site's staging"),
            base_url: FAKE_BASE_URL
                .parse()
                .unwrap_or_else(|_| unreachable!("a constant URL that a unit test parses")),
            inner: Mutex::new(Inner {
                state,
                ..Inner::default()
            }),
            cluster: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The fake switch as one whose status names no LACP partner (like
    /// OPNsense LAGG): [`SwitchCapabilities::reports_lacp_partner`] is
    /// false, no member reports a partner, and a LACP change asked to wait
    /// for the partner is refused as unsupported.
    #[must_use]
    pub fn hiding_lacp_partner(self) -> Self {
        self.lock().hides_lacp_partner = true;
        self
    }

    /// The Nth call (1-based, reads included) of `capability` fails.
    pub fn fail_at(&self, capability: Capability, n: usize) {
        self.lock().fail_call = Some((capability, n));
    }

    /// The Nth mutating call (1-based) of any capability fails.
    pub fn fail_at_change(&self, n: usize) {
        self.lock().fail_mutation = Some(n);
    }

    /// No more injected failures.
    pub fn heal(&self) {
        let mut g = self.lock();
        g.fail_call = None;
        g.fail_mutation = None;
        self.down.store(false, Ordering::SeqCst);
    }

    /// A switch that, once set, fails every call (the process driving the
    /// site has died: nothing it would still do reaches the site). The
    /// harness hands it to a step log that "crashes". [`FakeSite::heal`]
    /// clears it.
    pub fn kill_switch(&self) -> Arc<AtomicBool> {
        self.down.clone()
    }

    pub fn state(&self) -> SiteState {
        self.lock().state.clone()
    }

    /// Changes the site's state as the world would (a host goes silent, a
    /// lease appears); not recorded as a call.
    pub fn edit(&self, f: impl FnOnce(&mut SiteState)) {
        f(&mut self.lock().state);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The calls that changed the site, as `(capability, op, target)`.
    pub fn changes(&self) -> Vec<(Capability, &'static str, String)> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.changed)
            .map(|c| (c.capability, c.op, c.target.clone()))
            .collect()
    }

    /// Mutating calls so far (failed ones included).
    pub fn mutating_calls(&self) -> usize {
        self.lock().calls.iter().filter(|c| c.mutating).count()
    }

    /// Records a call; `Err` when a failure is injected for it, else runs
    /// `f` on the state and records whether it changed anything.
    fn call<R>(
        &self,
        capability: Capability,
        op: &'static str,
        target: String,
        mutating: bool,
        f: impl FnOnce(&mut SiteState) -> (R, bool),
    ) -> CapResult<R> {
        if self.down.load(Ordering::SeqCst) {
            return Err(CapabilityError::new(
                capability.name(),
                format!("the process died before {op} {target}"),
            ));
        }
        let mut g = self.lock();
        let nth = g
            .calls
            .iter()
            .filter(|c| c.capability == capability)
            .count()
            + 1;
        let nth_mutation = g.calls.iter().filter(|c| c.mutating).count() + 1;
        let fails = g.fail_call == Some((capability, nth))
            || (mutating && g.fail_mutation == Some(nth_mutation));
        if fails {
            g.calls.push(Call {
                capability,
                op,
                target: target.clone(),
                mutating,
                changed: false,
                failed: true,
            });
            return Err(CapabilityError::new(
                capability.name(),
                format!("injected failure: {op} {target}"),
            ));
        }
        let (r, changed) = f(&mut g.state);
        g.calls.push(Call {
            capability,
            op,
            target,
            mutating,
            changed,
            failed: false,
        });
        Ok(r)
    }
}

fn change(changed: bool) -> (Change, bool) {
    (
        if changed {
            Change::Applied
        } else {
            Change::Unchanged
        },
        changed,
    )
}

/// Inserts `value` at `key`; whether the map changed.
fn put<K: Ord, V: PartialEq>(map: &mut BTreeMap<K, V>, key: K, value: V) -> bool {
    if map.get(&key) == Some(&value) {
        return false;
    }
    map.insert(key, value);
    true
}

impl Topology for FakeSite {
    fn name(&self) -> &str {
        &self.name
    }

    fn pxe_evidence(&self) -> Option<&dyn PxeEvidence> {
        Some(self)
    }

    fn dhcp(&self) -> Option<&dyn DhcpServer> {
        Some(self)
    }
}

#[async_trait]
impl HttpServer for FakeSite {
    async fn put_file(&self, path: &RelativePath, contents: &[u8]) -> CapResult<Change> {
        self.call(Capability::Http, "put", path.to_string(), true, |s| {
            change(put(&mut s.http_files, path.clone(), contents.to_vec()))
        })
    }

    async fn put_file_from(&self, path: &RelativePath, source: &Path) -> CapResult<Change> {
        let contents = std::fs::read(source)
            .map_err(|e| CapabilityError::new("http", format!("read {}: {e}", source.display())))?;
        let r = self.call(Capability::Http, "put", path.to_string(), true, |s| {
            change(put(&mut s.http_files, path.clone(), contents))
        })?;
        // Like a real root, the source is moved, not copied.
        std::fs::remove_file(source).map_err(|e| {
            CapabilityError::new("http", format!("remove {}: {e}", source.display()))
        })?;
        Ok(r)
    }

    async fn remove_file(&self, path: &RelativePath) -> CapResult<Change> {
        self.call(Capability::Http, "remove", path.to_string(), true, |s| {
            change(s.http_files.remove(path).is_some())
        })
    }

    async fn take_file(&self, path: &RelativePath, dest: &Path) -> CapResult<Change> {
        let taken = self.call(Capability::Http, "take", path.to_string(), true, |s| {
            let old = s.http_files.remove(path);
            let changed = old.is_some();
            (old, changed)
        })?;
        match taken {
            None => Ok(Change::Unchanged),
            Some(bytes) => {
                std::fs::write(dest, bytes).map_err(|e| {
                    CapabilityError::new("http", format!("write {}: {e}", dest.display()))
                })?;
                Ok(Change::Applied)
            }
        }
    }

    async fn file_sha256(&self, path: &RelativePath) -> CapResult<Option<Sha256Digest>> {
        self.call(Capability::Http, "hash", path.to_string(), false, |s| {
            let sha = s
                .http_files
                .get(path)
                .map(|b| Sha256Digest::from_bytes(Sha256::digest(b).into()));
            (sha, false)
        })
    }

    async fn staging_dir(&self) -> CapResult<PathBuf> {
        Ok(self.staging.path().to_path_buf())
    }

    async fn list_files(&self, dir: &RelativePath) -> CapResult<Vec<RelativePath>> {
        let prefix = format!("{dir}/");
        self.call(Capability::Http, "list", dir.to_string(), false, |s| {
            let files = s
                .http_files
                .keys()
                .filter(|p| {
                    p.as_str()
                        .strip_prefix(&prefix)
                        .is_some_and(|rest| !rest.contains('/'))
                })
                .cloned()
                .collect();
            (files, false)
        })
    }

    async fn read_file(&self, path: &RelativePath) -> CapResult<Option<Vec<u8>>> {
        self.call(Capability::Http, "read", path.to_string(), false, |s| {
            (s.http_files.get(path).cloned(), false)
        })
    }

    fn url_for(&self, path: &RelativePath) -> HttpUrl {
        self.base_url
            .join(path.as_str())
            .unwrap_or_else(|_| self.base_url.clone())
    }

    fn base_url(&self) -> HttpUrl {
        self.base_url.clone()
    }
}

#[async_trait]
impl TftpServer for FakeSite {
    async fn put_tftp_file(&self, path: &RelativePath, contents: &[u8]) -> CapResult<Change> {
        self.call(Capability::Tftp, "put", path.to_string(), true, |s| {
            change(put(&mut s.tftp_files, path.clone(), contents.to_vec()))
        })
    }
}

#[async_trait]
impl DhcpServer for FakeSite {
    async fn reserve(&self, r: &DhcpReservation) -> CapResult<Change> {
        self.call(Capability::Dhcp, "reserve", r.mac.to_string(), true, |s| {
            change(put(&mut s.reservations, r.mac, r.clone()))
        })
    }

    async fn release(&self, mac: &MacAddress) -> CapResult<Change> {
        self.call(Capability::Dhcp, "release", mac.to_string(), true, |s| {
            change(s.reservations.remove(mac).is_some())
        })
    }

    async fn reservations(&self) -> CapResult<Vec<DhcpReservation>> {
        self.call(Capability::Dhcp, "list", String::new(), false, |s| {
            (s.reservations.values().cloned().collect(), false)
        })
    }

    async fn leases(&self) -> CapResult<Vec<DhcpLease>> {
        self.call(Capability::Dhcp, "leases", String::new(), false, |s| {
            (s.leases.clone(), false)
        })
    }
}

#[async_trait]
impl DnsServer for FakeSite {
    async fn set_record(&self, r: &DnsRecord) -> CapResult<Change> {
        self.call(Capability::Dns, "set", r.name.to_string(), true, |s| {
            change(put(&mut s.dns, r.name.clone(), r.ip))
        })
    }

    async fn remove_record(&self, name: &DnsName) -> CapResult<Change> {
        self.call(Capability::Dns, "remove", name.to_string(), true, |s| {
            change(s.dns.remove(name).is_some())
        })
    }

    async fn records(&self) -> CapResult<Vec<DnsRecord>> {
        self.call(Capability::Dns, "list", String::new(), false, |s| {
            let records = s
                .dns
                .iter()
                .map(|(name, ip)| DnsRecord {
                    name: name.clone(),
                    ip: *ip,
                })
                .collect();
            (records, false)
        })
    }
}

#[async_trait]
impl LoadBalancer for FakeSite {
    async fn set_service(&self, svc: &LoadBalancerService) -> CapResult<Change> {
        self.call(
            Capability::LoadBalancer,
            "set",
            svc.name.to_string(),
            true,
            |s| change(put(&mut s.services, svc.name.clone(), svc.clone())),
        )
    }

    async fn remove_backend(
        &self,
        service: &LbServiceName,
        backend: &Hostname,
    ) -> CapResult<Change> {
        self.call(
            Capability::LoadBalancer,
            "remove backend",
            format!("{service}/{backend}"),
            true,
            |s| {
                let Some(svc) = s.services.get_mut(service) else {
                    return change(false);
                };
                let before = svc.backends.len();
                svc.backends.retain(|b| &b.hostname != backend);
                change(svc.backends.len() != before)
            },
        )
    }

    async fn remove_service(&self, service: &LbServiceName) -> CapResult<Change> {
        self.call(
            Capability::LoadBalancer,
            "remove service",
            service.to_string(),
            true,
            |s| change(s.services.remove(service).is_some()),
        )
    }

    async fn services(&self) -> CapResult<Vec<LoadBalancerService>> {
        self.call(
            Capability::LoadBalancer,
            "list",
            String::new(),
            false,
            |s| (s.services.values().cloned().collect(), false),
        )
    }
}

fn port_list(ports: &[SwitchPort]) -> String {
    PortList(ports.to_vec()).to_string()
}

/// The name the fake switch gives in errors.
const FAKE_SWITCH: &str = "fake switch";

/// The LACP partner every fake LAG member hears.
pub const FAKE_PARTNER: MacAddress = MacAddress::new([0x02, 0, 0, 0, 0xfa, 0x4e]);

/// A port nobody configured on the fake switch: up, access in VLAN 1.
pub fn fake_default_port(port: &SwitchPort) -> PortStatus {
    let vlan = VlanId::try_from(1).unwrap_or_else(|_| unreachable!("1 is a VLAN id"));
    PortStatus {
        port: port.clone(),
        admin_up: true,
        oper_up: true,
        speed_mbps: Some(10_000),
        mode: PortMode::Access { vlan },
        vlan: Some(vlan),
        lag: None,
        partner: None,
        fault: None,
    }
}

fn port_status(s: &SiteState, port: &SwitchPort) -> PortStatus {
    s.ports
        .get(port)
        .cloned()
        .unwrap_or_else(|| fake_default_port(port))
}

/// Sets the ports' status; whether any changed. The default state is kept
/// as no entry, so an undone change leaves the state as it was.
fn set_ports(s: &mut SiteState, statuses: Vec<PortStatus>) -> bool {
    let mut changed = false;
    for st in statuses {
        if port_status(s, &st.port) == st {
            continue;
        }
        changed = true;
        if st == fake_default_port(&st.port) {
            s.ports.remove(&st.port);
        } else {
            s.ports.insert(st.port.clone(), st);
        }
    }
    changed
}

/// The LACP partner a LAG member hears: the bond whose slave is cabled to
/// the port (when that bond is up), else [`FAKE_PARTNER`].
fn partner_of(s: &SiteState, port: &SwitchPort) -> MacAddress {
    s.bonds
        .values()
        .find(|b| b.slaves.iter().any(|(_, p)| p == port))
        .map_or(FAKE_PARTNER, |b| b.system_mac)
}

/// The fake switch's own LACP system id, which bonds hear as partner.
pub const FAKE_SWITCH_SYSTEM: MacAddress = MacAddress::new([0x02, 0, 0, 0, 0x5e, 0x01]);

/// `/proc/net/bonding/<bond>` of `bond` as the kernel would print it
/// (`drivers/net/bonding/bond_procfs.c`, 802.3ad, read as root), from the
/// state of the ports its slaves are cabled to: slaves on members of one
/// LAG share aggregator 1 and hear the switch (port state 63); others are
/// each alone in an aggregator with no partner.
pub fn render_bond_status(s: &SiteState, bond: &FakeBond) -> String {
    let zero = MacAddress::new([0; 6]);
    let up = |b| if b { "up" } else { "down" };
    let mut slaves = Vec::new();
    for (i, (name, port)) in bond.slaves.iter().enumerate() {
        let st = port_status(s, port);
        let lag = matches!(st.mode, PortMode::LacpMember { .. }) && bond.up;
        let (agg, partner, state) = if lag {
            (1, FAKE_SWITCH_SYSTEM, 63)
        } else {
            (i + 2, zero, 1)
        };
        slaves.push((name, agg, partner, state, i + 1));
    }
    let active = slaves.first().map_or((1, zero, 0), |s| (s.1, s.2, 0));
    let in_active = slaves.iter().filter(|s| s.1 == active.0).count();
    let mut out = format!(
        "Ethernet Channel Bonding Driver: v6.1.0\n\n\
         Bonding Mode: IEEE 802.3ad Dynamic link aggregation\n\
         Transmit Hash Policy: layer3+4 (1)\nMII Status: {}\n\
         MII Polling Interval (ms): 100\nUp Delay (ms): 0\nDown Delay (ms): 0\n\
         Peer Notification Delay (ms): 0\n\n802.3ad info\nLACP active: on\n\
         LACP rate: fast\nMin links: 0\nAggregator selection policy (ad_select): stable\n\
         System priority: 65535\nSystem MAC address: {}\nActive Aggregator Info:\n\
         \tAggregator ID: {}\n\tNumber of ports: {in_active}\n\tActor Key: 15\n\
         \tPartner Key: 1\n\tPartner Mac Address: {}\n",
        up(bond.up),
        bond.system_mac,
        active.0,
        active.1
    );
    for (name, agg, partner, state, number) in slaves {
        out.push_str(&format!(
            "\nSlave Interface: {name}\nMII Status: {}\nSpeed: 10000 Mbps\n\
             Duplex: full\nLink Failure Count: 0\nPermanent HW addr: {}\n\
             Slave queue ID: 0\nAggregator ID: {agg}\nActor Churn State: none\n\
             Partner Churn State: none\nActor Churned Count: 0\n\
             Partner Churned Count: 0\ndetails actor lacp pdu:\n\
             \x20   system priority: 65535\n    system mac address: {}\n\
             \x20   port key: 15\n    port priority: 255\n    port number: {number}\n\
             \x20   port state: {}\ndetails partner lacp pdu:\n\
             \x20   system priority: 65535\n    system mac address: {partner}\n\
             \x20   oper key: 1\n    port priority: 255\n    port number: {number}\n\
             \x20   port state: {state}\n",
            up(bond.up),
            bond.system_mac,
            bond.system_mac,
            if state == 63 { 63 } else { 71 },
        ));
    }
    out
}

fn switch_error(e: CapabilityError) -> SwitchError {
    SwitchError::Backend {
        switch: FAKE_SWITCH.into(),
        message: e.message,
    }
}

#[async_trait]
impl Switch for FakeSite {
    fn switch_name(&self) -> &str {
        FAKE_SWITCH
    }

    fn capabilities(&self) -> SwitchCapabilities {
        SwitchCapabilities {
            lacp_fallback: true,
            reports_lacp_partner: !self.lock().hides_lacp_partner,
        }
    }

    async fn get_port_status(&self, ports: &[SwitchPort]) -> Result<Vec<PortStatus>, SwitchError> {
        let hide = self.lock().hides_lacp_partner;
        self.call(Capability::Switch, "status", port_list(ports), false, |s| {
            let statuses = ports.iter().map(|p| port_status(s, p));
            let statuses = statuses.map(|st| PortStatus {
                partner: st.partner.filter(|_| !hide),
                ..st
            });
            (statuses.collect(), false)
        })
        .map_err(switch_error)
    }

    async fn set_ports_access_mode(
        &self,
        ports: &[SwitchPort],
        vlan: VlanId,
    ) -> Result<Change, SwitchError> {
        check_ports(FAKE_SWITCH, ports)?;
        let target = format!("{} access {vlan}", port_list(ports));
        self.call(Capability::Switch, "set", target, true, |s| {
            let statuses = ports
                .iter()
                .map(|p| PortStatus {
                    mode: PortMode::Access { vlan },
                    vlan: Some(vlan),
                    ..fake_default_port(p)
                })
                .collect();
            change(set_ports(s, statuses))
        })
        .map_err(switch_error)
    }

    async fn set_ports_lacp_mode(
        &self,
        ports: &[SwitchPort],
        lag: LagId,
        vlan: VlanId,
        options: LacpOptions,
    ) -> Result<Change, SwitchError> {
        check_ports(FAKE_SWITCH, ports)?;
        if options.partner_within.is_some() && self.lock().hides_lacp_partner {
            return Err(SwitchError::Unsupported {
                switch: FAKE_SWITCH.into(),
                feature: "waiting for the LACP partner (this switch reports none)",
            });
        }
        let others: Vec<SwitchPort> = self
            .lock()
            .state
            .ports
            .values()
            .filter(|st| st.lag == Some(lag) && !ports.contains(&st.port))
            .map(|st| st.port.clone())
            .collect();
        if !others.is_empty() {
            return Err(SwitchError::Refused {
                switch: FAKE_SWITCH.into(),
                ports: PortList(ports.to_vec()),
                reason: format!("lag {lag} also has {}", PortList(others)),
            });
        }
        let target = format!("{} lag {lag} vlan {vlan}", port_list(ports));
        self.call(Capability::Switch, "set", target, true, |s| {
            let statuses = ports
                .iter()
                .map(|p| PortStatus {
                    mode: PortMode::LacpMember { lag },
                    vlan: Some(vlan),
                    lag: Some(lag),
                    partner: Some(LacpPartner {
                        system_id: partner_of(s, p),
                        collecting: true,
                        distributing: true,
                    }),
                    ..fake_default_port(p)
                })
                .collect();
            change(set_ports(s, statuses))
        })
        .map_err(switch_error)
    }
}

#[async_trait]
impl RemoteShell for FakeSite {
    async fn run(
        &self,
        host: &RemoteHost,
        command: &RemoteCommand,
        _limits: RunLimits,
    ) -> CapResult<CommandOutput> {
        if let RemoteCommand::BondStatus { bond } = command {
            // A read: not a change, not recorded among the commands.
            return self.call(
                Capability::RemoteShell,
                "read bond",
                format!("{host}: {bond}"),
                false,
                |s| {
                    let found = s.bonds.get(&host.ip).filter(|b| &b.name == bond);
                    let out = match found {
                        Some(b) => CommandOutput {
                            exit_status: Some(0),
                            exit_signal: None,
                            stdout: render_bond_status(s, b),
                            stderr: String::new(),
                            truncated: false,
                        },
                        None => CommandOutput {
                            exit_status: Some(1),
                            exit_signal: None,
                            stdout: String::new(),
                            stderr: format!(
                                "cat: /proc/net/bonding/{bond}: No such file or directory\n"
                            ),
                            truncated: false,
                        },
                    };
                    (out, false)
                },
            );
        }
        self.call(
            Capability::RemoteShell,
            "run",
            format!("{host}: {command:?}"),
            true,
            |s| {
                s.commands.push((host.ip, command.clone()));
                (
                    CommandOutput {
                        exit_status: Some(0),
                        exit_signal: None,
                        stdout: String::new(),
                        stderr: String::new(),
                        truncated: false,
                    },
                    true,
                )
            },
        )
    }

    /// A host answers at its address, unless the test made that address
    /// silent or the host was rebooted from it (it then boots another
    /// system, at another address: discovery, installer, installed OS).
    async fn answers(&self, host: &RemoteHost) -> CapResult<bool> {
        self.call(
            Capability::RemoteShell,
            "probe",
            host.to_string(),
            false,
            |s| {
                let rebooted = s
                    .commands
                    .iter()
                    .any(|(ip, c)| *ip == host.ip && *c == RemoteCommand::Reboot);
                (!rebooted && !s.silent.contains(&host.ip), false)
            },
        )
    }

    async fn reboot(&self, host: &RemoteHost, confirm: RebootConfirm) -> CapResult<RebootReport> {
        self.call(
            Capability::RemoteShell,
            "reboot",
            format!("{host}: {confirm:?}"),
            true,
            |s| {
                s.commands.push((host.ip, RemoteCommand::Reboot));
                let now = Some(std::time::Duration::ZERO);
                (
                    RebootReport {
                        down_after: std::time::Duration::ZERO,
                        up_after: now.filter(|_| confirm == RebootConfirm::BackUp),
                        pxe_after: now.filter(|_| confirm == RebootConfirm::StartedPxe),
                    },
                    true,
                )
            },
        )
    }
}

/// The fake site's boot evidence: a host has booted once it was rebooted
/// (a reboot recorded for its address), and a booted host fetches every
/// file the HTTP root serves. Nothing is timed: `since` is not looked at.
#[async_trait]
impl PxeEvidence for FakeSite {
    async fn pxe_started_since(&self, host: &RemoteHost, _since: SystemTime) -> CapResult<bool> {
        self.call(
            Capability::Http,
            "read boot evidence",
            host.to_string(),
            false,
            |s| {
                let booted = s
                    .commands
                    .iter()
                    .any(|(ip, c)| *ip == host.ip && *c == RemoteCommand::Reboot);
                (booted, false)
            },
        )
    }

    async fn fetched_since(
        &self,
        client: IpAddr,
        path: &RelativePath,
        _any_client: bool,
        _since: SystemTime,
    ) -> CapResult<bool> {
        self.call(
            Capability::Http,
            "read access log",
            format!("{client}: {path}"),
            false,
            |s| {
                let rebooted = s.commands.iter().any(|(_, c)| *c == RemoteCommand::Reboot);
                (rebooted && s.http_files.contains_key(path), false)
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RelativePath {
        s.parse().unwrap()
    }

    #[test]
    fn base_url_parses() {
        assert_eq!(FakeSite::new().base_url().as_str(), FAKE_BASE_URL);
    }

    #[tokio::test]
    async fn records_calls_and_changes() {
        let site = FakeSite::new();
        assert_eq!(
            site.put_file(&p("a/x.ipxe"), b"1").await.unwrap(),
            Change::Applied
        );
        assert_eq!(
            site.put_file(&p("a/x.ipxe"), b"1").await.unwrap(),
            Change::Unchanged
        );
        site.put_file(&p("a/b/y.ipxe"), b"2").await.unwrap();
        assert_eq!(site.list_files(&p("a")).await.unwrap(), vec![p("a/x.ipxe")]);
        assert_eq!(site.read_file(&p("nope")).await.unwrap(), None);
        assert_eq!(site.changes().len(), 2);
        assert_eq!(site.mutating_calls(), 3);
        assert_eq!(site.calls().len(), 5);
    }

    #[tokio::test]
    async fn fails_at_the_nth_call_of_a_capability_only() {
        let site = FakeSite::new();
        site.fail_at(Capability::Http, 2);
        site.put_file(&p("a"), b"1").await.unwrap();
        let err = site.read_file(&p("a")).await.unwrap_err();
        assert!(
            err.to_string().contains("injected failure: read a"),
            "{err}"
        );
        site.read_file(&p("a")).await.unwrap();
        // Other capabilities are not affected by an HTTP failure.
        site.fail_at(Capability::Dns, 1);
        site.put_file(&p("b"), b"2").await.unwrap();
        assert_eq!(site.state().http_files.len(), 2);
    }

    #[tokio::test]
    async fn switch_ports_change_idempotently_and_undo_to_nothing() {
        let site = FakeSite::new();
        let ports: Vec<SwitchPort> = vec!["1/1/3".parse().unwrap(), "1/1/4".parse().unwrap()];
        let vlan = VlanId::try_from(10).unwrap();
        let lag = LagId::try_from(7).unwrap();
        let opts = LacpOptions::default();
        assert_eq!(
            site.set_ports_lacp_mode(&ports, lag, vlan, opts)
                .await
                .unwrap(),
            Change::Applied
        );
        assert_eq!(
            site.set_ports_lacp_mode(&ports, lag, vlan, opts)
                .await
                .unwrap(),
            Change::Unchanged
        );
        let st = site.get_port_status(&ports).await.unwrap();
        assert!(st.iter().all(|s| {
            s.mode == PortMode::LacpMember { lag }
                && s.partner
                    .as_ref()
                    .is_some_and(|p| p.system_id == FAKE_PARTNER)
        }));
        // A LAG is taken whole: naming one member is refused.
        let e = site
            .set_ports_lacp_mode(&ports[..1], lag, vlan, opts)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("lag 7 also has 1/1/4"), "{e}");
        // Back to the default (access, VLAN 1): the state is as it began.
        let one = VlanId::try_from(1).unwrap();
        site.set_ports_access_mode(&ports, one).await.unwrap();
        assert_eq!(site.state(), SiteState::default());
        // Injected failures become switch errors naming the fake switch.
        site.fail_at(Capability::Switch, site.calls().len() + 1);
        let e = site.get_port_status(&ports).await.unwrap_err();
        assert!(e.to_string().contains("switch fake switch"), "{e}");
    }

    #[tokio::test]
    async fn fails_at_the_nth_change_and_leaves_state_alone() {
        let site = FakeSite::new();
        site.fail_at_change(2);
        site.put_file(&p("a"), b"1").await.unwrap();
        site.read_file(&p("a")).await.unwrap();
        assert!(site.put_file(&p("b"), b"2").await.is_err());
        assert_eq!(
            site.state().http_files.keys().collect::<Vec<_>>(),
            [&p("a")]
        );
        site.heal();
        site.put_file(&p("b"), b"2").await.unwrap();
        assert_eq!(site.state().http_files.len(), 2);
    }
}
