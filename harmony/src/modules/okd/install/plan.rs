//! What the installation knows about the cluster and each of its hosts:
//! [`InstallSpec`] (from the site file: names, addresses, ports, timing)
//! and, per host with a role in the Inventory, [`InstallHost`] (its
//! reservation, its install disk and bond from its boot plan, its switch
//! ports). Pure: the Scores read the Inventory and call [`install_hosts`].

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::super::artefacts::SiteBoot;
use super::super::bond::PlannedLink;
use super::super::boot_plan::{SiteNetworks, network_of, plan_boot};
use super::role_configs::RoleConfigSource;
use crate::domain::{
    DevicePath, DnsName, HostId, HostRecord, Hostname, InterfaceName, LagId, MacAddress, Role,
    SwitchPort, VlanId,
};

/// The cluster's names and shared addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSettings {
    /// `metadata.name`.
    pub name: Hostname,
    pub base_domain: Hostname,
    /// Where the load balancer listens: `api`, `api-int` and `*.apps`
    /// resolve to it.
    pub lb_address: IpAddr,
    /// The provisioning VLAN: access ports, and the LAG's untagged VLAN.
    pub access_vlan: VlanId,
}

impl ClusterSettings {
    /// `<name>.<base_domain>`.
    pub fn zone(&self) -> String {
        format!("{}.{}", self.name, self.base_domain)
    }

    /// `<label>.<name>.<base_domain>` as a DNS name.
    pub fn name_in_zone(&self, label: &str) -> Result<DnsName, InstallPlanError> {
        let s = format!("{label}.{}", self.zone());
        s.parse().map_err(|e| InstallPlanError::Name {
            name: s,
            reason: format!("{e}"),
        })
    }
}

/// A host's reserved address: the MAC it PXE boots from and the address
/// DHCP gives it from its install on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub mac: MacAddress,
    pub ip: IpAddr,
}

/// A host's switch ports and the LAG they become.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostPorts {
    pub ports: Vec<SwitchPort>,
    pub lag: LagId,
}

/// How long each wait may take, and how often it looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallTiming {
    /// A rebooted host fetching its boot files.
    pub fetch_within: Duration,
    /// The API answering through the load balancer after the bootstrap
    /// booted.
    pub api_within: Duration,
    /// `bootstrap-complete` (`openshift-install` waits 40 minutes).
    pub bootstrap_within: Duration,
    /// Every worker a Ready node, its CSRs approved.
    pub workers_within: Duration,
    /// An installed host's bond up and the switch hearing it.
    pub lacp_within: Duration,
    /// The retired bootstrap back in discovery, its disk wiped.
    pub wipe_within: Duration,
    /// Fetches seen in the access log this long before a wait count.
    pub lookback: Duration,
    pub poll: Duration,
}

impl Default for InstallTiming {
    fn default() -> Self {
        let min = |m: u64| Duration::from_secs(60 * m);
        Self {
            fetch_within: min(30),
            api_within: min(30),
            bootstrap_within: min(60),
            workers_within: min(60),
            lacp_within: min(20),
            wipe_within: min(20),
            lookback: min(5),
            poll: Duration::from_secs(5),
        }
    }
}

/// Everything the installation needs beyond the Inventory.
#[derive(Debug, Clone)]
pub struct InstallSpec {
    pub cluster: ClusterSettings,
    pub boot: SiteBoot,
    /// The role configs `boot` points at: given, or made by the installer.
    pub role_configs: RoleConfigSource,
    pub networks: SiteNetworks,
    /// Each host's reserved address, by host (from the site file's pinned
    /// hosts, else allocated by the caller).
    pub reservations: BTreeMap<HostId, Reservation>,
    /// Each host's switch ports (from the port map); a host without any is
    /// not switched.
    pub ports: BTreeMap<HostId, HostPorts>,
    pub timing: InstallTiming,
}

/// One host of the cluster as the installation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallHost {
    pub id: HostId,
    pub role: Role,
    pub hostname: Hostname,
    /// The reserved address (installer, installed OS).
    pub ip: IpAddr,
    /// The MAC the reservation is for.
    pub pxe_mac: MacAddress,
    pub macs: Vec<MacAddress>,
    /// Where it answers in discovery now (its agent's address).
    pub discovery_ip: IpAddr,
    /// The disk SCOS installs to (and the only one a wipe touches).
    pub install_disk: DevicePath,
    /// The installed OS's bond and its slaves; `None`: a single NIC.
    pub bond: Option<(InterfaceName, Vec<InterfaceName>)>,
    pub switch: Option<HostPorts>,
}

/// Why the installation cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstallPlanError {
    #[error("host {host}: {reason}")]
    Host { host: HostId, reason: String },
    #[error("the cluster needs {want} {role} host(s), the inventory has {have}")]
    Count {
        role: Role,
        want: usize,
        have: usize,
    },
    #[error("{name}: {reason}")]
    Name { name: String, reason: String },
    #[error("{0} and {1} have the same reserved address {2}")]
    SameAddress(HostId, HostId, IpAddr),
}

/// The hosts with a role in `records`, in install order (bootstrap,
/// control plane, workers; by host name within a role), each checked: a
/// host name, a reservation, a boot plan. One bootstrap and three
/// control-plane hosts are required.
pub fn install_hosts(
    spec: &InstallSpec,
    records: &[HostRecord],
) -> Result<Vec<InstallHost>, InstallPlanError> {
    let mut hosts = Vec::new();
    for r in records {
        let Some(role) = r.role else { continue };
        let err = |reason: String| InstallPlanError::Host {
            host: r.id.clone(),
            reason,
        };
        let hostname = r
            .hostname
            .clone()
            .ok_or_else(|| err("has a role but no host name".into()))?;
        let res = spec
            .reservations
            .get(&r.id)
            .ok_or_else(|| err("has no reserved address".into()))?;
        if !r.macs.contains(&res.mac) {
            return Err(err(format!(
                "its reservation's MAC {} is not one of its MACs",
                res.mac
            )));
        }
        let plan = plan_boot(r, network_of(&spec.networks, &r.id))
            .map_err(|e| err(format!("no boot plan: {e}")))?;
        let bond = match &plan.bond.link {
            PlannedLink::Bond { name, members, .. } => Some((
                name.clone(),
                members.iter().map(|m| m.name.clone()).collect(),
            )),
            PlannedLink::Single { .. } => None,
        };
        hosts.push(InstallHost {
            id: r.id.clone(),
            role,
            hostname,
            ip: res.ip,
            pxe_mac: res.mac,
            macs: r.macs.clone(),
            discovery_ip: r.ip,
            install_disk: plan.install_device,
            bond,
            switch: spec.ports.get(&r.id).cloned(),
        });
    }
    let rank = |r: Role| match r {
        Role::Bootstrap => 0,
        Role::ControlPlane => 1,
        Role::Worker => 2,
    };
    hosts.sort_by(|a, b| (rank(a.role), &a.hostname).cmp(&(rank(b.role), &b.hostname)));
    for (role, want) in [(Role::Bootstrap, 1), (Role::ControlPlane, 3)] {
        let have = hosts.iter().filter(|h| h.role == role).count();
        if have != want {
            return Err(InstallPlanError::Count { role, want, have });
        }
    }
    let mut by_ip: BTreeMap<IpAddr, &HostId> = BTreeMap::new();
    for h in &hosts {
        if let Some(other) = by_ip.insert(h.ip, &h.id) {
            return Err(InstallPlanError::SameAddress(
                other.clone(),
                h.id.clone(),
                h.ip,
            ));
        }
    }
    Ok(hosts)
}
