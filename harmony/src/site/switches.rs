//! The site's switches as one [`Switch`]: [`SiteSwitches::build`] turns a
//! validated site file's `switches:` into their backends (Open vSwitch,
//! Cisco IOS / NX-OS, Aruba AOS-CX, an OPNsense LAGG) and dispatches each
//! call to the switch its ports are on.
//!
//! # Which switch a port is on
//! A [`SwitchPort`] carries no switch name, so the site file says where
//! each port is: every `hosts.pinned[].switch_ports` entry routes its port
//! to its switch, and [`SiteSwitches::route`] / [`SiteSwitches::route_port_map`]
//! add ports found another way (the LLDP port map). With a single switch,
//! every port is on it. With several, a port no route names is refused,
//! and so is a port name routed to two switches (`1/1/3` on two leaves):
//! ask that switch alone through [`SiteSwitches::switch`].
//!
//! # One switch per change
//! A read may span switches (each switch is asked for its ports, the
//! answers come back in the order asked). A change may not: each backend
//! reads back, verifies and puts back its own ports, which cannot hold
//! across two switches, and a LAG over two switches (MC-LAG) is not
//! supported. Such a change is refused before anything is sent.
//!
//! # Capabilities
//! [`Switch::capabilities`] has no ports to say which switch it is about,
//! so [`SiteSwitches`] answers with what every switch of the site can do
//! (the intersection: LACP fallback only if all have it, the LACP partner
//! only if all report it). [`SiteSwitches::capabilities_for`] answers for
//! the switch some ports are on.
//!
//! # What each backend is built from
//! - `ovs`: `bridge` (required) on the OVSDB `unix:` socket (omitted:
//!   [`DEFAULT_OVSDB_SOCKET`]); `ovs-vswitchd`'s control socket is found
//!   next to it (`ovs-vswitchd.ctl`, or `ovs-vswitchd.<pid>.ctl` from
//!   `ovs-vswitchd.pid`), as the backend reads LACP state through
//!   `ovs-appctl`. A `tcp:` remote is refused: the control socket is local.
//! - `cisco-ios`, `cisco-nxos`: SSH to `address` (a name is resolved on
//!   the first call, within [`RESOLVE_TIMEOUT`], then kept), the pinned `host_key` (required), the
//!   login from `credentials` (file or environment).
//! - `aruba-aoscx`: the REST API at the `https://` `address`, the login from
//!   `credentials`, `ca_file` as the CA when given.
//! - `opnsense`: the LAGG API of the site's OPNsense services (only with
//!   `services.backend: opnsense`, and `address` must be its
//!   `services.opnsense.url`); the API key is `services.opnsense.api_key`,
//!   the switch's own `credentials` are not used (a warning says so).
//!
//! Secrets are read once, when building; nothing is contacted then (not
//! even the DNS: a Cisco address given by name is resolved on its first
//! call). Every problem is reported with its site file field and value,
//! never a secret.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;

use super::model::{Switch as SiteSwitch, SwitchKind};
use super::validate::Problem;
use super::values::{SshHost, SwitchAddress, SwitchCredentials, SwitchName};
use super::{ApiKeySource, Backend, SiteFile};
use crate::domain::port_map::PortMap;
use crate::domain::switch::check_ports;
use crate::domain::{
    Change, HttpUrl, LacpOptions, LagId, PortList, PortStatus, Switch, SwitchCapabilities,
    SwitchError, SwitchPort, Topology, VlanId,
};
use crate::infra::aoscx::{AosCxConfig, AosCxSwitch};
use crate::infra::cisco::{CiscoConfig, CiscoSwitch, CliAuth, Platform};
use crate::infra::device_login::DeviceLogin;
use crate::infra::opnsense::{Credentials, OpnSenseConfig, OpnSenseSite};
use crate::infra::ovs::{OpenVSwitch, OvsConfig, OvsName};
use crate::infra::resolve::first_address;

/// The OVSDB socket of a host's Open vSwitch (Debian's
/// `openvswitch-switch`), used when an `ovs` switch has no `address`.
pub const DEFAULT_OVSDB_SOCKET: &str = "/var/run/openvswitch/db.sock";
/// How long resolving a Cisco switch's host name may take.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// What [`SiteSwitches`] calls itself in messages.
const NAME: &str = "site switches";
/// Largest `ovs-vswitchd.pid` read.
const MAX_PID_FILE: u64 = 64;

/// Why the site's switches could not be built or a route added: every
/// problem, each with its site file field and value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {}", Problems(problems))]
pub struct SiteSwitchesError {
    pub origin: String,
    pub problems: Vec<Problem>,
}

struct Problems<'a>(&'a [Problem]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            p.fmt(f)?;
        }
        Ok(())
    }
}

fn problem(
    field: impl Into<String>,
    value: impl fmt::Display,
    reason: impl Into<String>,
) -> Problem {
    Problem {
        field: field.into(),
        value: value.to_string().chars().take(120).collect(),
        reason: reason.into(),
    }
}

/// How one switch's backend was configured from the site file (what the
/// contract tests check; no secret in it but the login's, redacted by its
/// `Debug`).
#[derive(Debug, Clone)]
pub enum BackendConfig {
    Ovs(OvsConfig),
    Cisco(CiscoConfig),
    /// A Cisco switch given by name: `host` is resolved on the first call
    /// and `config.addr` (`0.0.0.0:port` until then) replaced by the
    /// address found.
    CiscoByName {
        host: String,
        port: u16,
        config: CiscoConfig,
    },
    AosCx(AosCxConfig),
    /// The LAGG API of the OPNsense services at `url`, LAGGs untagged in
    /// `untagged_vlan` (the switch's `access_vlan`).
    OpnSense {
        url: HttpUrl,
        untagged_vlan: VlanId,
    },
}

/// One switch of the site.
struct Member {
    name: SwitchName,
    switch: Box<dyn Switch>,
    backend: Option<BackendConfig>,
}

/// Which switch a port name is on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    One(usize),
    /// The same port name on several switches (indexes, sorted).
    Several(Vec<usize>),
}

/// The site's switches as one [`Switch`] (see the module documentation).
pub struct SiteSwitches {
    origin: String,
    members: Vec<Member>,
    routes: BTreeMap<SwitchPort, Route>,
}

impl fmt::Debug for SiteSwitches {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SiteSwitches")
            .field("origin", &self.origin)
            .field(
                "switches",
                &self
                    .members
                    .iter()
                    .map(|m| (m.name.as_str(), m.switch.switch_name()))
                    .collect::<Vec<_>>(),
            )
            .field("routes", &self.routes.len())
            .finish()
    }
}

impl SiteSwitches {
    /// Builds every switch of `site` and routes the pinned hosts' ports.
    /// Reads credentials, the CA files and the OVS control socket's place;
    /// contacts no switch.
    pub async fn build(site: &SiteFile) -> Result<SiteSwitches, SiteSwitchesError> {
        let mut problems = Vec::new();
        let mut members = Vec::new();
        for (i, (sw, addr)) in site.switches().enumerate() {
            match build_one(site, i, sw, addr).await {
                Ok((switch, backend)) => members.push(Member {
                    name: sw.name.clone(),
                    switch,
                    backend: Some(backend),
                }),
                Err(mut p) => problems.append(&mut p),
            }
        }
        if !problems.is_empty() {
            return Err(SiteSwitchesError {
                origin: site.origin().to_string(),
                problems,
            });
        }
        let mut this = SiteSwitches {
            origin: site.origin().to_string(),
            members,
            routes: BTreeMap::new(),
        };
        let mut problems = Vec::new();
        for (i, host) in site.site().hosts.pinned.iter().enumerate() {
            for (j, r) in host.switch_ports.iter().enumerate() {
                let field = format!("hosts.pinned[{i}].switch_ports[{j}]");
                match r.port.as_str().parse::<SwitchPort>() {
                    Ok(port) => {
                        if let Err(p) = this.add_route(&r.switch, port, &field) {
                            problems.push(p);
                        }
                    }
                    Err(e) => problems.push(problem(
                        format!("{field}.port"),
                        format!("{:?}", r.port.as_str()),
                        format!("invalid {}: {}", e.field, e.reason),
                    )),
                }
            }
        }
        if !problems.is_empty() {
            return Err(SiteSwitchesError {
                origin: this.origin,
                problems,
            });
        }
        tracing::debug!(site = %this.origin, switches = this.members.len(), "site switches built");
        Ok(this)
    }

    /// [`SiteSwitches::build`] when a pinned host has switch ports, else no
    /// switch (every call refused): what a plan reads, so a site whose
    /// hosts have no ports plans without its switches' sockets or logins.
    pub async fn build_if_used(site: &SiteFile) -> Result<SiteSwitches, SiteSwitchesError> {
        if site
            .site()
            .hosts
            .pinned
            .iter()
            .any(|h| !h.switch_ports.is_empty())
        {
            Self::build(site).await
        } else {
            Self::from_switches(site.origin(), Vec::new())
        }
    }

    /// Switches built elsewhere (tests, a site program), named as in a
    /// site file, without routes. `origin` names the source in errors.
    pub fn from_switches(
        origin: &str,
        switches: Vec<(SwitchName, Box<dyn Switch>)>,
    ) -> Result<SiteSwitches, SiteSwitchesError> {
        let mut problems = Vec::new();
        for (i, (name, _)) in switches.iter().enumerate() {
            if switches[..i].iter().any(|(n, _)| n == name) {
                problems.push(problem(
                    format!("switches[{i}].name"),
                    format!("{:?}", name.as_str()),
                    "duplicate switch name",
                ));
            }
        }
        if !problems.is_empty() {
            return Err(SiteSwitchesError {
                origin: origin.to_string(),
                problems,
            });
        }
        Ok(SiteSwitches {
            origin: origin.to_string(),
            members: switches
                .into_iter()
                .map(|(name, switch)| Member {
                    name,
                    switch,
                    backend: None,
                })
                .collect(),
            routes: BTreeMap::new(),
        })
    }

    /// Says that `port` is on `switch` (e.g. from LLDP). The same port name
    /// on two switches is kept as ambiguous: calls naming it are refused.
    pub fn route(
        &mut self,
        switch: &SwitchName,
        port: SwitchPort,
    ) -> Result<(), SiteSwitchesError> {
        self.add_route(switch, port, "route")
            .map_err(|p| SiteSwitchesError {
                origin: self.origin.clone(),
                problems: vec![p],
            })
    }

    /// Routes every port of the port map (the site file's and those LLDP
    /// found) to its switch.
    pub fn route_port_map(&mut self, map: &PortMap) -> Result<(), SiteSwitchesError> {
        let mut problems = Vec::new();
        for (host, ports) in &map.hosts {
            for p in ports {
                let field = format!("port map of host {host}");
                match p.at.switch.parse::<SwitchName>() {
                    Ok(name) => {
                        if let Err(e) = self.add_route(&name, p.at.port.clone(), &field) {
                            problems.push(e);
                        }
                    }
                    Err(e) => problems.push(problem(
                        format!("{field}.switch"),
                        format!("{:?}", p.at.switch),
                        e.reason,
                    )),
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SiteSwitchesError {
                origin: self.origin.clone(),
                problems,
            })
        }
    }

    fn add_route(
        &mut self,
        switch: &SwitchName,
        port: SwitchPort,
        field: &str,
    ) -> Result<(), Problem> {
        let Some(idx) = self.members.iter().position(|m| &m.name == switch) else {
            return Err(problem(
                format!("{field}.switch"),
                format!("{:?}", switch.as_str()),
                "no switch of that name in `switches:`",
            ));
        };
        let route = match self.routes.remove(&port) {
            None => Route::One(idx),
            Some(Route::One(i)) if i == idx => Route::One(i),
            Some(Route::One(i)) => {
                let mut v = vec![i, idx];
                v.sort_unstable();
                Route::Several(v)
            }
            Some(Route::Several(mut v)) => {
                if !v.contains(&idx) {
                    v.push(idx);
                    v.sort_unstable();
                }
                Route::Several(v)
            }
        };
        self.routes.insert(port, route);
        Ok(())
    }

    /// Where the switches came from (the site file's path).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// No switch in the site file.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The switches' names, in the site file's order.
    pub fn names(&self) -> impl Iterator<Item = &SwitchName> {
        self.members.iter().map(|m| &m.name)
    }

    /// One switch alone (every port goes to it).
    pub fn switch(&self, name: &SwitchName) -> Option<&dyn Switch> {
        self.member(name).map(|m| m.switch.as_ref())
    }

    /// How the switch's backend was configured (`None` for switches given
    /// to [`SiteSwitches::from_switches`]).
    pub fn backend(&self, name: &SwitchName) -> Option<&BackendConfig> {
        self.member(name).and_then(|m| m.backend.as_ref())
    }

    fn member(&self, name: &SwitchName) -> Option<&Member> {
        self.members.iter().find(|m| &m.name == name)
    }

    /// The switch `port` is on.
    pub fn switch_of(&self, port: &SwitchPort) -> Result<&SwitchName, SwitchError> {
        self.index_of(port).map(|i| &self.members[i].name)
    }

    fn refused(&self, ports: &[SwitchPort], reason: impl Into<String>) -> SwitchError {
        SwitchError::Refused {
            switch: format!("{NAME} of {}", self.origin),
            ports: PortList(ports.to_vec()),
            reason: reason.into(),
        }
    }

    fn index_of(&self, port: &SwitchPort) -> Result<usize, SwitchError> {
        let one = std::slice::from_ref(port);
        match (self.members.len(), self.routes.get(port)) {
            (0, _) => Err(self.refused(
                one,
                "the site file has no switch (`switches:` is empty): add the switch the hosts' ports are on",
            )),
            (_, Some(Route::One(i))) => Ok(*i),
            (_, Some(Route::Several(v))) => Err(self.refused(
                one,
                format!(
                    "port {port} is named on switches {} (hosts.pinned[].switch_ports): a port name alone cannot say which; ask that switch alone",
                    self.list(v)
                ),
            )),
            (1, None) => Ok(0),
            (n, None) => Err(self.refused(
                one,
                format!(
                    "port {port} is on none of the {n} switches in `switches:` as far as the site knows: name it in a host's `hosts.pinned[].switch_ports` (or route it from the LLDP port map)"
                ),
            )),
        }
    }

    fn list(&self, idx: &[usize]) -> String {
        idx.iter()
            .map(|i| self.members[*i].name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The ports grouped by switch, each group in the order asked, groups
    /// in the order of their first port.
    fn groups(&self, ports: &[SwitchPort]) -> Result<Vec<(usize, Vec<SwitchPort>)>, SwitchError> {
        check_ports(NAME, ports)?;
        let mut groups: Vec<(usize, Vec<SwitchPort>)> = Vec::new();
        for p in ports {
            let i = self.index_of(p)?;
            match groups.iter_mut().find(|(g, _)| *g == i) {
                Some((_, v)) => v.push(p.clone()),
                None => groups.push((i, vec![p.clone()])),
            }
        }
        Ok(groups)
    }

    /// The one switch a change's ports are on, or why not.
    fn one_switch(&self, ports: &[SwitchPort], what: &str) -> Result<&dyn Switch, SwitchError> {
        let groups = self.groups(ports)?;
        match groups.as_slice() {
            [(i, _)] => Ok(self.members[*i].switch.as_ref()),
            many => {
                let split: Vec<String> = many
                    .iter()
                    .map(|(i, ps)| format!("{}: {}", self.members[*i].name, PortList(ps.clone())))
                    .collect();
                Err(self.refused(
                    ports,
                    format!(
                        "{what} names ports on {} switches ({}); a change is made on one switch (each verifies and puts back its own ports), and a LAG across two switches (MC-LAG) is not supported",
                        many.len(),
                        split.join("; ")
                    ),
                ))
            }
        }
    }

    /// What the switch `ports` are on can do (they must be on one).
    pub fn capabilities_for(
        &self,
        ports: &[SwitchPort],
    ) -> Result<SwitchCapabilities, SwitchError> {
        self.one_switch(ports, "the question")
            .map(|s| s.capabilities())
    }
}

impl Topology for SiteSwitches {
    fn name(&self) -> &str {
        NAME
    }
}

#[async_trait]
impl Switch for SiteSwitches {
    fn switch_name(&self) -> &str {
        match self.members.as_slice() {
            [one] => one.switch.switch_name(),
            _ => NAME,
        }
    }

    /// What every switch can do (the intersection; nothing without
    /// switches).
    fn capabilities(&self) -> SwitchCapabilities {
        let mut all = self.members.iter().map(|m| m.switch.capabilities());
        let Some(first) = all.next() else {
            return SwitchCapabilities::default();
        };
        all.fold(first, |a, c| SwitchCapabilities {
            lacp_fallback: a.lacp_fallback && c.lacp_fallback,
            reports_lacp_partner: a.reports_lacp_partner && c.reports_lacp_partner,
        })
    }

    async fn get_port_status(&self, ports: &[SwitchPort]) -> Result<Vec<PortStatus>, SwitchError> {
        let groups = self.groups(ports)?;
        let mut found: BTreeMap<SwitchPort, PortStatus> = BTreeMap::new();
        for (i, group) in groups {
            for st in self.members[i].switch.get_port_status(&group).await? {
                found.insert(st.port.clone(), st);
            }
        }
        ports
            .iter()
            .map(|p| {
                found.remove(p).ok_or_else(|| SwitchError::Backend {
                    switch: NAME.into(),
                    message: format!("port {p} was not reported by its switch"),
                })
            })
            .collect()
    }

    async fn set_ports_access_mode(
        &self,
        ports: &[SwitchPort],
        vlan: VlanId,
    ) -> Result<Change, SwitchError> {
        self.one_switch(ports, "access mode")?
            .set_ports_access_mode(ports, vlan)
            .await
    }

    async fn set_ports_lacp_mode(
        &self,
        ports: &[SwitchPort],
        lag: LagId,
        vlan: VlanId,
        options: LacpOptions,
    ) -> Result<Change, SwitchError> {
        self.one_switch(ports, &format!("LAG {lag}"))?
            .set_ports_lacp_mode(ports, lag, vlan, options)
            .await
    }
}

type Built = (Box<dyn Switch>, BackendConfig);

/// Builds switch `i` of the site file, or says every problem with it.
async fn build_one(
    site: &SiteFile,
    i: usize,
    sw: &SiteSwitch,
    addr: &SwitchAddress,
) -> Result<Built, Vec<Problem>> {
    let at = |f: &str| format!("switches[{i}].{f}");
    let mut problems = Vec::new();
    let ssh_kind = matches!(sw.kind, SwitchKind::CiscoIos | SwitchKind::CiscoNxos);
    if let (Some(k), false) = (&sw.host_key, ssh_kind) {
        problems.push(problem(
            at("host_key"),
            k,
            format!(
                "only cisco-ios and cisco-nxos switches are reached over SSH; this one is {}",
                sw.kind.as_str()
            ),
        ));
    }
    if let (Some(c), false) = (&sw.ca_file, sw.kind == SwitchKind::ArubaAoscx) {
        let why = if sw.kind == SwitchKind::Opnsense {
            "an opnsense switch is reached through the services' API: give its CA as services.opnsense.ca_file".to_string()
        } else {
            format!(
                "only an aruba-aoscx switch takes a CA; this one is {}",
                sw.kind.as_str()
            )
        };
        problems.push(problem(at("ca_file"), c, why));
    }
    let vlan = VlanId::try_from(sw.access_vlan.get()).map_err(|e| {
        vec![problem(
            at("access_vlan"),
            sw.access_vlan,
            e.reason.to_string(),
        )]
    })?;
    let built = match sw.kind {
        SwitchKind::Ovs => build_ovs(&at, sw, addr),
        SwitchKind::CiscoIos | SwitchKind::CiscoNxos => build_cisco(&at, sw, addr).await,
        SwitchKind::ArubaAoscx => build_aoscx(&at, sw, addr),
        SwitchKind::Opnsense => build_opnsense(site, &at, sw, addr, vlan),
    };
    match built {
        Ok(b) if problems.is_empty() => Ok(b),
        Ok(_) => Err(problems),
        Err(mut p) => {
            problems.append(&mut p);
            Err(problems)
        }
    }
}

fn build_ovs(
    at: &dyn Fn(&str) -> String,
    sw: &SiteSwitch,
    addr: &SwitchAddress,
) -> Result<Built, Vec<Problem>> {
    let mut problems = Vec::new();
    let bridge = match &sw.bridge {
        None => {
            problems.push(problem(
                at("bridge"),
                "(missing)",
                "an ovs switch needs the bridge its ports are on",
            ));
            None
        }
        Some(b) => match b.as_str().parse::<OvsName>() {
            Ok(n) => Some(n),
            Err(e) => {
                problems.push(problem(
                    at("bridge"),
                    format!("{:?}", b.as_str()),
                    format!("invalid {}: {}", e.field, e.reason),
                ));
                None
            }
        },
    };
    let socket = match addr {
        SwitchAddress::OvsLocal => Ok(PathBuf::from(DEFAULT_OVSDB_SOCKET)),
        SwitchAddress::OvsUnix(p) => Ok(p.as_path().to_path_buf()),
        SwitchAddress::OvsTcp(s) => Err(problem(
            at("address"),
            format!("tcp:{s}"),
            "Harmony reads LACP state through ovs-vswitchd's local control socket (ovs-appctl), which a tcp: OVSDB remote does not reach: run Harmony on the switch's host and give unix:/path/to/db.sock",
        )),
        other => Err(problem(
            at("address"),
            other,
            "an ovs switch is reached through OVSDB: unix:/path/to/db.sock",
        )),
    };
    let shown = sw
        .address
        .clone()
        .unwrap_or_else(|| format!("(omitted: {DEFAULT_OVSDB_SOCKET})"));
    let ctl = match &socket {
        Ok(s) => match vswitchd_ctl(s) {
            Ok(c) => Some(c),
            Err(why) => {
                problems.push(problem(at("address"), &shown, why));
                None
            }
        },
        Err(p) => {
            problems.push(p.clone());
            None
        }
    };
    match (bridge, socket, ctl) {
        (Some(bridge), Ok(socket), Some(ctl)) if problems.is_empty() => {
            let config = OvsConfig::new(bridge, socket, ctl);
            Ok((
                Box::new(OpenVSwitch::new(config.clone())),
                BackendConfig::Ovs(config),
            ))
        }
        _ => Err(problems),
    }
}

/// `ovs-vswitchd`'s control socket in the directory of `db_socket`:
/// `ovs-vswitchd.ctl` (a private daemon started with `--unixctl`), else
/// `ovs-vswitchd.<pid>.ctl` with the pid from `ovs-vswitchd.pid` (a host's
/// daemon).
fn vswitchd_ctl(db_socket: &Path) -> Result<PathBuf, String> {
    use std::io::Read as _;
    use std::os::unix::fs::FileTypeExt as _;
    let is_socket = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.file_type().is_socket())
            .unwrap_or(false)
    };
    if !is_socket(db_socket) {
        return Err(format!(
            "no OVSDB socket at {} (is ovsdb-server running?)",
            db_socket.display()
        ));
    }
    let dir = db_socket.parent().unwrap_or(Path::new("/"));
    let fixed = dir.join("ovs-vswitchd.ctl");
    if is_socket(&fixed) {
        return Ok(fixed);
    }
    let pid_file = dir.join("ovs-vswitchd.pid");
    let mut text = String::new();
    let pid = std::fs::File::open(&pid_file)
        .and_then(|f| f.take(MAX_PID_FILE).read_to_string(&mut text))
        .ok()
        .and_then(|_| text.trim().parse::<u32>().ok());
    if let Some(pid) = pid {
        let ctl = dir.join(format!("ovs-vswitchd.{pid}.ctl"));
        if is_socket(&ctl) {
            return Ok(ctl);
        }
    }
    Err(format!(
        "no ovs-vswitchd control socket in {} (ovs-vswitchd.ctl, or ovs-vswitchd.<pid>.ctl from ovs-vswitchd.pid): is ovs-vswitchd running?",
        dir.display()
    ))
}

fn login(at: &dyn Fn(&str) -> String, sw: &SiteSwitch) -> Result<DeviceLogin, Problem> {
    match &sw.credentials {
        None => Err(problem(
            at("credentials"),
            "(missing)",
            format!("{} needs credentials: `file:` or `env:`", sw.kind.as_str()),
        )),
        Some(c) => match c {
            SwitchCredentials::File(f) => DeviceLogin::from_file(f.as_path()),
            SwitchCredentials::Env { username, password } => {
                DeviceLogin::from_env(username.as_str(), password.as_str())
            }
        }
        .map_err(|e| problem(at("credentials"), c, e.to_string())),
    }
}

/// A Cisco switch given by name: the name is resolved (first address,
/// within [`RESOLVE_TIMEOUT`]) on the first call, then the switch is built
/// with that address and kept; building the site contacts nothing.
#[derive(Debug)]
struct CiscoByName {
    host: String,
    port: u16,
    config: CiscoConfig,
    /// Answers the name and capabilities (they need no address); never
    /// called.
    unresolved: CiscoSwitch,
    resolved: tokio::sync::OnceCell<CiscoSwitch>,
}

impl CiscoByName {
    fn new(host: String, port: u16, config: CiscoConfig) -> Self {
        Self {
            host,
            port,
            unresolved: CiscoSwitch::new(config.clone()),
            config,
            resolved: tokio::sync::OnceCell::new(),
        }
    }

    async fn switch(&self) -> Result<&CiscoSwitch, SwitchError> {
        self.resolved
            .get_or_try_init(|| async {
                let addr = first_address(&self.host, self.port, RESOLVE_TIMEOUT)
                    .await
                    .map_err(|e| SwitchError::Backend {
                        switch: self.unresolved.switch_name().to_string(),
                        message: e.to_string(),
                    })?;
                tracing::debug!(switch = %self.config.name, %addr, "switch name resolved");
                let mut config = self.config.clone();
                config.addr = addr;
                Ok(CiscoSwitch::new(config))
            })
            .await
    }
}

impl Topology for CiscoByName {
    fn name(&self) -> &str {
        self.unresolved.name()
    }
}

#[async_trait]
impl Switch for CiscoByName {
    fn switch_name(&self) -> &str {
        self.unresolved.switch_name()
    }

    fn capabilities(&self) -> SwitchCapabilities {
        self.unresolved.capabilities()
    }

    async fn get_port_status(&self, ports: &[SwitchPort]) -> Result<Vec<PortStatus>, SwitchError> {
        self.switch().await?.get_port_status(ports).await
    }

    async fn set_ports_access_mode(
        &self,
        ports: &[SwitchPort],
        vlan: VlanId,
    ) -> Result<Change, SwitchError> {
        self.switch()
            .await?
            .set_ports_access_mode(ports, vlan)
            .await
    }

    async fn set_ports_lacp_mode(
        &self,
        ports: &[SwitchPort],
        lag: LagId,
        vlan: VlanId,
        options: LacpOptions,
    ) -> Result<Change, SwitchError> {
        self.switch()
            .await?
            .set_ports_lacp_mode(ports, lag, vlan, options)
            .await
    }
}

async fn build_cisco(
    at: &dyn Fn(&str) -> String,
    sw: &SiteSwitch,
    addr: &SwitchAddress,
) -> Result<Built, Vec<Problem>> {
    let mut problems = Vec::new();
    let socket = match addr {
        SwitchAddress::Ssh { host, port } => Some((host, *port)),
        other => {
            problems.push(problem(
                at("address"),
                other,
                "a cisco switch is reached over SSH: host[:port]",
            ));
            None
        }
    };
    let host_key = match &sw.host_key {
        Some(k) => Some(k.key().fingerprint.clone()),
        None => {
            problems.push(problem(
                at("host_key"),
                "(missing)",
                "a cisco switch's SSH host key is pinned, never learnt: give `<type> SHA256:<fingerprint>` as `ssh-keygen -l -E sha256` prints it",
            ));
            None
        }
    };
    let login = login(at, sw).map_err(|p| problems.push(p)).ok();
    match (socket, host_key, login) {
        (Some(socket), Some(key), Some(login)) if problems.is_empty() => {
            let platform = if sw.kind == SwitchKind::CiscoNxos {
                Platform::Nxos
            } else {
                Platform::Ios
            };
            let (host, port) = socket;
            let ip = match host {
                SshHost::Ip(ip) => *ip,
                // Resolved on the first call (see `CiscoByName`).
                SshHost::Name(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            };
            let config = CiscoConfig::new(
                sw.name.as_str(),
                SocketAddr::new(ip, port),
                platform,
                key,
                CliAuth::Password(login),
            );
            match host {
                SshHost::Ip(_) => Ok((
                    Box::new(CiscoSwitch::new(config.clone())),
                    BackendConfig::Cisco(config),
                )),
                SshHost::Name(name) => Ok((
                    Box::new(CiscoByName::new(name.to_string(), port, config.clone())),
                    BackendConfig::CiscoByName {
                        host: name.to_string(),
                        port,
                        config,
                    },
                )),
            }
        }
        _ => Err(problems),
    }
}

/// The same URL but for a trailing `/`.
fn same_url(a: &HttpUrl, b: &HttpUrl) -> bool {
    a.as_str().trim_end_matches('/') == b.as_str().trim_end_matches('/')
}

fn build_aoscx(
    at: &dyn Fn(&str) -> String,
    sw: &SiteSwitch,
    addr: &SwitchAddress,
) -> Result<Built, Vec<Problem>> {
    let mut problems = Vec::new();
    let url = match addr {
        SwitchAddress::Https(u) => Some(u.as_url().clone()),
        other => {
            problems.push(problem(
                at("address"),
                other,
                "an aruba-aoscx switch is reached through its REST API: an https:// URL",
            ));
            None
        }
    };
    if let Some(ca) = &sw.ca_file
        && !ca.as_path().is_file()
    {
        problems.push(problem(at("ca_file"), ca, "is not a readable file"));
    }
    let login = login(at, sw).map_err(|p| problems.push(p)).ok();
    let (Some(url), Some(login), true) = (url, login, problems.is_empty()) else {
        return Err(problems);
    };
    let mut config = AosCxConfig::new(sw.name.as_str(), url, login);
    config.site_ca = sw.ca_file.as_ref().map(|c| c.as_path().to_path_buf());
    match AosCxSwitch::new(config.clone()) {
        Ok(s) => Ok((Box::new(s), BackendConfig::AosCx(config))),
        Err(e) => {
            let (field, value) = match &sw.ca_file {
                Some(c) => (at("ca_file"), c.to_string()),
                None => (at("address"), addr.to_string()),
            };
            Err(vec![problem(field, value, e.to_string())])
        }
    }
}

fn build_opnsense(
    site: &SiteFile,
    at: &dyn Fn(&str) -> String,
    sw: &SiteSwitch,
    addr: &SwitchAddress,
    vlan: VlanId,
) -> Result<Built, Vec<Problem>> {
    let Backend::OpnSense(o) = site.backend() else {
        return Err(vec![problem(
            at("kind"),
            "opnsense",
            format!(
                "an OPNsense LAGG is driven through the site's OPNsense services (`services.backend: opnsense`); this site's backend is {}",
                site.site().services.backend.as_str()
            ),
        )]);
    };
    let url = match addr {
        SwitchAddress::Https(u) if same_url(u.as_url(), o.url.as_url()) => o.url.as_url().clone(),
        other => {
            return Err(vec![problem(
                at("address"),
                other,
                format!(
                    "an opnsense switch is the services' firewall: its address must be services.opnsense.url ({})",
                    o.url
                ),
            )]);
        }
    };
    if let Some(c) = &sw.credentials {
        tracing::warn!(
            switch = %sw.name,
            credentials = %c,
            "the opnsense switch's credentials are not used: its LAGG API is called with services.opnsense.api_key"
        );
    }
    let credentials = match &o.api_key {
        ApiKeySource::KeyFile(f) => Credentials::from_file(f.as_path()),
        ApiKeySource::Env { key, secret } => Credentials::from_env(key.as_str(), secret.as_str()),
    }
    .map_err(|e| {
        vec![problem(
            "services.opnsense.api_key",
            &o.api_key,
            e.to_string(),
        )]
    })?;
    if let Some(ca) = &o.ca_file
        && !ca.as_path().is_file()
    {
        return Err(vec![problem(
            "services.opnsense.ca_file",
            ca,
            "is not a readable file",
        )]);
    }
    let mut config = OpnSenseConfig::new(url.clone(), credentials);
    config.site_ca = o.ca_file.as_ref().map(|c| c.as_path().to_path_buf());
    let fw = OpnSenseSite::new(sw.name.as_str(), config)
        .map_err(|e| vec![problem(at("address"), addr, e.to_string())])?
        .with_untagged_vlan(vlan);
    Ok((
        Box::new(fw),
        BackendConfig::OpnSense {
            url,
            untagged_vlan: vlan,
        },
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::domain::PortMode;

    /// A switch that records the calls it gets and reports every port as an
    /// access port in VLAN 1.
    struct Recorder {
        name: String,
        caps: SwitchCapabilities,
        calls: Arc<Mutex<Vec<String>>>,
    }

    fn names(ports: &[SwitchPort]) -> String {
        PortList(ports.to_vec()).to_string()
    }

    impl Topology for Recorder {
        fn name(&self) -> &str {
            &self.name
        }
    }

    #[async_trait]
    impl Switch for Recorder {
        fn switch_name(&self) -> &str {
            &self.name
        }
        fn capabilities(&self) -> SwitchCapabilities {
            self.caps
        }
        async fn get_port_status(
            &self,
            ports: &[SwitchPort],
        ) -> Result<Vec<PortStatus>, SwitchError> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("{} status {}", self.name, names(ports)));
            Ok(ports
                .iter()
                .map(|p| PortStatus {
                    admin_up: true,
                    mode: PortMode::Access { vlan: vlan(1) },
                    vlan: Some(vlan(1)),
                    ..PortStatus::detached(p.clone())
                })
                .collect())
        }
        async fn set_ports_access_mode(
            &self,
            ports: &[SwitchPort],
            v: VlanId,
        ) -> Result<Change, SwitchError> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("{} access {} {v}", self.name, names(ports)));
            Ok(Change::Applied)
        }
        async fn set_ports_lacp_mode(
            &self,
            ports: &[SwitchPort],
            lag: LagId,
            v: VlanId,
            _: LacpOptions,
        ) -> Result<Change, SwitchError> {
            self.calls.lock().unwrap().push(format!(
                "{} lag {lag} {} {v}",
                self.name,
                names(ports)
            ));
            Ok(Change::Applied)
        }
    }

    fn port(s: &str) -> SwitchPort {
        s.parse().unwrap()
    }

    fn ports(list: &[&str]) -> Vec<SwitchPort> {
        list.iter().map(|p| port(p)).collect()
    }

    fn vlan(v: u16) -> VlanId {
        VlanId::try_from(v).unwrap()
    }

    fn lag(l: u16) -> LagId {
        LagId::try_from(l).unwrap()
    }

    fn name(s: &str) -> SwitchName {
        s.parse().unwrap()
    }

    type Log = Arc<Mutex<Vec<String>>>;

    /// Switches `leaf-1` (fallback, partner) and `leaf-2` (partner only),
    /// with p1, p2 on leaf-1, q1, q2 on leaf-2 and `1/1/3` on both.
    fn two() -> (SiteSwitches, Log) {
        let calls: Log = Arc::default();
        let rec = |n: &str, fallback| -> Box<dyn Switch> {
            Box::new(Recorder {
                name: n.into(),
                caps: SwitchCapabilities {
                    lacp_fallback: fallback,
                    reports_lacp_partner: true,
                },
                calls: calls.clone(),
            })
        };
        let mut s = SiteSwitches::from_switches(
            "site.yaml",
            vec![
                (name("leaf-1"), rec("leaf-1", true)),
                (name("leaf-2"), rec("leaf-2", false)),
            ],
        )
        .unwrap();
        for (sw, p) in [
            ("leaf-1", "p1"),
            ("leaf-1", "p2"),
            ("leaf-2", "q1"),
            ("leaf-2", "q2"),
            ("leaf-1", "1/1/3"),
            ("leaf-2", "1/1/3"),
            ("leaf-1", "p1"),
        ] {
            s.route(&name(sw), port(p)).unwrap();
        }
        (s, calls)
    }

    fn taken(calls: &Log) -> Vec<String> {
        std::mem::take(&mut *calls.lock().unwrap())
    }

    #[tokio::test]
    async fn each_call_goes_to_the_switch_its_ports_are_on() {
        let (s, calls) = two();
        let options = LacpOptions::default();
        assert_eq!(
            s.set_ports_lacp_mode(&ports(&["q2", "q1"]), lag(7), vlan(10), options)
                .await
                .unwrap(),
            Change::Applied
        );
        s.set_ports_access_mode(&ports(&["p1", "p2"]), vlan(10))
            .await
            .unwrap();
        assert_eq!(
            taken(&calls),
            ["leaf-2 lag 7 q2, q1 10", "leaf-1 access p1, p2 10"]
        );
        // A read spans switches: each asked once, answers in the order asked.
        let st = s
            .get_port_status(&ports(&["q1", "p2", "q2", "p1"]))
            .await
            .unwrap();
        let order: Vec<&str> = st.iter().map(|s| s.port.as_str()).collect();
        assert_eq!(order, ["q1", "p2", "q2", "p1"]);
        assert_eq!(
            taken(&calls),
            ["leaf-2 status q1, q2", "leaf-1 status p2, p1"]
        );
        assert_eq!(s.switch_of(&port("q1")).unwrap(), &name("leaf-2"));
        assert_eq!(s.switch_name(), "site switches");
    }

    #[tokio::test]
    async fn a_change_across_two_switches_is_refused_before_anything_is_sent() {
        let (s, calls) = two();
        let e = s
            .set_ports_lacp_mode(
                &ports(&["p1", "q1"]),
                lag(3),
                vlan(10),
                LacpOptions::default(),
            )
            .await
            .unwrap_err()
            .to_string();
        for part in [
            "LAG 3",
            "leaf-1: p1",
            "leaf-2: q1",
            "MC-LAG",
            "not supported",
        ] {
            assert!(e.contains(part), "{part:?} missing in {e}");
        }
        let e = s
            .set_ports_access_mode(&ports(&["p1", "q1"]), vlan(10))
            .await
            .unwrap_err();
        assert!(matches!(e, SwitchError::Refused { .. }), "{e}");
        assert!(taken(&calls).is_empty());
    }

    #[tokio::test]
    async fn unknown_and_ambiguous_ports_are_refused_naming_the_site_field() {
        let (s, calls) = two();
        let e = s
            .get_port_status(&ports(&["p1", "zz9"]))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("port zz9") && e.contains("hosts.pinned[].switch_ports"),
            "{e}"
        );
        let e = s
            .set_ports_access_mode(&ports(&["1/1/3"]), vlan(10))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("leaf-1, leaf-2"), "{e}");
        // Empty and repeated port lists are refused as every switch does.
        assert!(s.get_port_status(&[]).await.is_err());
        assert!(s.get_port_status(&ports(&["p1", "p1"])).await.is_err());
        assert!(taken(&calls).is_empty());
        // That switch alone can still be asked.
        let leaf2 = s.switch(&name("leaf-2")).unwrap();
        leaf2
            .set_ports_access_mode(&ports(&["1/1/3"]), vlan(10))
            .await
            .unwrap();
        assert_eq!(taken(&calls), ["leaf-2 access 1/1/3 10"]);
        // A route to a switch the site does not have.
        let mut s = s;
        let e = s.route(&name("leaf-9"), port("x")).unwrap_err().to_string();
        assert!(e.contains("\"leaf-9\"") && e.contains("switches:"), "{e}");
    }

    #[tokio::test]
    async fn capabilities_are_what_every_switch_can_do_or_the_one_asked_about() {
        let (s, _) = two();
        assert_eq!(
            s.capabilities(),
            SwitchCapabilities {
                lacp_fallback: false,
                reports_lacp_partner: true
            }
        );
        assert!(s.capabilities_for(&ports(&["p1"])).unwrap().lacp_fallback);
        assert!(!s.capabilities_for(&ports(&["q1"])).unwrap().lacp_fallback);
        assert!(s.capabilities_for(&ports(&["p1", "q1"])).is_err());
    }

    #[tokio::test]
    async fn one_switch_takes_every_port_and_none_refuses_naming_switches() {
        let calls: Log = Arc::default();
        let one: Box<dyn Switch> = Box::new(Recorder {
            name: "leaf-1".into(),
            caps: SwitchCapabilities::default(),
            calls: calls.clone(),
        });
        let s = SiteSwitches::from_switches("site.yaml", vec![(name("leaf-1"), one)]).unwrap();
        s.set_ports_access_mode(&ports(&["any"]), vlan(5))
            .await
            .unwrap();
        assert_eq!(taken(&calls), ["leaf-1 access any 5"]);
        assert_eq!(s.switch_name(), "leaf-1");

        let none = SiteSwitches::from_switches("site.yaml", vec![]).unwrap();
        assert!(none.is_empty());
        assert_eq!(none.capabilities(), SwitchCapabilities::default());
        for e in [
            none.get_port_status(&ports(&["p1"])).await.unwrap_err(),
            none.set_ports_access_mode(&ports(&["p1"]), vlan(5))
                .await
                .unwrap_err(),
            none.set_ports_lacp_mode(&ports(&["p1"]), lag(1), vlan(5), LacpOptions::default())
                .await
                .unwrap_err(),
        ] {
            let e = e.to_string();
            assert!(e.contains("`switches:` is empty"), "{e}");
        }
    }

    const HEAD: &str = r#"
cluster:
  name: lab
  base_domain: example.org
  okd_version: "4.19"
  cluster_network: { cidr: 10.128.0.0/14, host_prefix: 23 }
  service_network: 172.30.0.0/16
  pull_secret_file: /etc/harmony/pull-secret.json
provisioning:
  interface: prov0
  subnet: 192.0.2.0/24
  gateway: 192.0.2.1
  harmony_address: 192.0.2.2
  dhcp_range: { start: 192.0.2.100, end: 192.0.2.199 }
  dns_forwarders: [192.0.2.1]
services:
  backend: linux
  linux:
    state_dir: /var/lib/harmony
    http_root: /srv/harmony/http
    http_listen: 192.0.2.2:8080
    dns_listen: 192.0.2.2:53
    load_balancer_address: 192.0.2.5
"#;

    const TAIL: &str = r#"
hosts:
  bootstrap: 1
  control_plane: 3
  workers: 0
ssh:
  operator_key_file: /root/.ssh/id_ed25519
  cluster_public_key_file: /root/.ssh/id_ed25519.pub
"#;

    #[tokio::test]
    async fn every_bad_switch_entry_is_named_with_its_field_and_value() {
        let dir = tempfile::tempdir().unwrap();
        let nosock = dir.path().join("db.sock");
        let switches = format!(
            r#"switches:
  - {{ name: o-tcp, kind: ovs, access_vlan: 7, bridge: br0, address: "tcp:127.0.0.1:6640" }}
  - {{ name: o-nobridge, kind: ovs, access_vlan: 7, address: "unix:{}" }}
  - name: c-nokey
    kind: cisco-ios
    access_vlan: 7
    address: 127.0.0.1:2222
    credentials: {{ env: {{ username: HARMONY_TEST_NO_USER, password: HARMONY_TEST_NO_PW }} }}
  - name: a-nofile
    kind: aruba-aoscx
    access_vlan: 7
    address: https://127.0.0.1:8443
    host_key: ssh-ed25519 SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
    credentials: {{ file: {}/missing }}
  - {{ name: fw, kind: opnsense, access_vlan: 7, address: "https://127.0.0.1", credentials: {{ file: /x }} }}
"#,
            nosock.display(),
            dir.path().display()
        );
        let text = format!("{HEAD}{switches}{TAIL}");
        let site = SiteFile::parse(&text, "site.yaml").unwrap();
        let e = SiteSwitches::build(&site).await.unwrap_err();
        let fields: Vec<&str> = e.problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "switches[0].address",
                "switches[1].bridge",
                "switches[1].address",
                "switches[2].host_key",
                "switches[2].credentials",
                "switches[3].host_key",
                "switches[3].credentials",
                "switches[4].kind",
            ],
            "{e}"
        );
        let text = e.to_string();
        for part in [
            "tcp:127.0.0.1:6640",
            "no OVSDB socket",
            "HARMONY_TEST_NO_USER",
            "only cisco-ios and cisco-nxos",
            "missing",
            "backend is linux",
        ] {
            assert!(text.contains(part), "{part:?} missing in {text}");
        }
    }
}
