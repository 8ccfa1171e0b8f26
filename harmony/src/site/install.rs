//! From a validated site file and the Inventory's hosts to the
//! installation's [`InstallSpec`]: the cluster's names and load balancer,
//! the access VLAN, the boot settings ([`SiteBoot`]: the fixed OS asset
//! paths, the agent, the role configs on the site's HTTP root, the SSH
//! keys), each host's reservation and switch ports. Pure: the caller reads
//! the files (the agent's digest, the cluster's public key) and the store.
//!
//! - A pinned host (`hosts.pinned[i]`) is the inventoried host owning its
//!   MAC: it keeps the site file's address and ports; its role and name in
//!   the Inventory must be the site file's. A pinned MAC no inventoried
//!   host has is an error naming the MAC (also in a dry run: the install
//!   needs every host discovered, so "waiting for discovery" would be a
//!   plan that cannot run).
//! - A host with a role that is not pinned gets the lowest free address of
//!   the provisioning subnet: not the network or broadcast address, not in
//!   the DHCP range, not the gateway, Harmony's, the load balancer's or the
//!   OPNsense box's address, no pinned address; hosts are served in host id
//!   order, so the same inventory always gets the same addresses. Its
//!   reservation is for the MAC of the NIC it answered discovery on (else
//!   its first MAC).
//! - LAG ids: the host's position in install order (bootstrap, control
//!   plane, workers; by host name within a role) plus one, over every host
//!   with a role, so ids do not change when a host's ports are added.
//! - The installation drives one access VLAN: hosts cabled to switches
//!   with different `access_vlan`s are refused, naming both switches; a
//!   host's ports must all be on one switch (one LAG).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use super::topology::{SitePlan, plan};
use super::{Backend, SiteFile};
use crate::domain::{
    HostId, HostRecord, Hostname, HttpUrl, LagId, MacAddress, RelativePath, Role, Sha256Digest,
    SwitchPort, VlanId,
};
use crate::modules::assets::Source;
use crate::modules::assets::centos::CentosInventoryAssets;
use crate::modules::assets::scos::ScosAssets;
use crate::modules::boot::{InstallConfig, PullSecret, SshPublicKey};
use crate::modules::okd::artefacts::SiteBoot;
use crate::modules::okd::install::{
    ClusterSettings, HostPorts, InstallSpec, InstallTiming, InstallerJob, Reservation,
    RoleConfigSource,
};

/// Where the agent is published under the HTTP root by default.
pub const AGENT_PATH: &str = "harmony/harmony-inventory-agent";
/// The role configs under the HTTP root (from `openshift-install create
/// ignition-configs`).
pub const BOOTSTRAP_CONFIG: &str = "okd/bootstrap.ign";
pub const MASTER_CONFIG: &str = "okd/master.ign";
pub const WORKER_CONFIG: &str = "okd/worker.ign";

/// What the caller read for the spec: the agent (its path under the HTTP
/// root and its digest), the cluster's public keys, and the pull secret
/// (read only when Harmony runs the installer: `install.openshift_install`).
#[derive(Debug, Clone)]
pub struct InstallInputs {
    pub agent: RelativePath,
    pub agent_sha256: Sha256Digest,
    pub ssh_keys: Vec<SshPublicKey>,
    /// `Debug` redacts it.
    pub pull_secret: Option<PullSecret>,
}

/// Why the site file and the Inventory make no installation; each names
/// the site file's field or the host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstallSpecError {
    #[error("{origin}: {field} = {value}: {reason}")]
    Field {
        origin: String,
        field: String,
        value: String,
        reason: String,
    },
    #[error("host {host}: {reason}")]
    Host { host: HostId, reason: String },
}

impl InstallSpecError {
    /// `site`'s `field` = `value` cannot be used, and why.
    pub(crate) fn field(
        site: &SiteFile,
        field: impl Into<String>,
        value: impl Into<String>,
        reason: impl ToString,
    ) -> Self {
        InstallSpecError::Field {
            origin: site.origin().to_string(),
            field: field.into(),
            value: value.into(),
            reason: reason.to_string(),
        }
    }
}

/// The site's HTTP root URL as booting hosts reach it.
pub fn http_base_url(site: &SiteFile) -> Result<HttpUrl, InstallSpecError> {
    let origin = site.origin().to_string();
    let field = |f: &str, v: String, reason: String| InstallSpecError::Field {
        origin: origin.clone(),
        field: f.into(),
        value: v,
        reason,
    };
    match plan(site) {
        Ok(SitePlan::Linux(c)) => c.base_url().map_err(|e| {
            field(
                "services.linux.http_listen",
                c.http_listen.to_string(),
                e.to_string(),
            )
        }),
        Ok(SitePlan::OpnSense(o)) => {
            let text = format!("http://{}:{}/", o.address, o.http_port);
            text.parse()
                .map_err(|e| field("services.opnsense.http_port", text, format!("{e}")))
        }
        Err(e) => Err(field("services", String::new(), e.to_string())),
    }
}

/// Each non-empty, non-comment line of the cluster's public key file.
pub fn parse_public_keys(
    site: &SiteFile,
    text: &str,
) -> Result<Vec<SshPublicKey>, InstallSpecError> {
    let field = |value: String, reason: String| InstallSpecError::Field {
        origin: site.origin().to_string(),
        field: "ssh.cluster_public_key_file".into(),
        value,
        reason,
    };
    let path = site.site().ssh.cluster_public_key_file.to_string();
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        keys.push(
            line.parse::<SshPublicKey>()
                .map_err(|e| field(format!("{path} line {}", i + 1), e.to_string()))?,
        );
    }
    if keys.is_empty() {
        return Err(field(path, "holds no public key".into()));
    }
    Ok(keys)
}

/// The installation `site` describes for the hosts of `records`.
pub fn install_spec(
    site: &SiteFile,
    records: &[HostRecord],
    mut inputs: InstallInputs,
) -> Result<InstallSpec, InstallSpecError> {
    let s = site.site();
    let origin = site.origin().to_string();
    let field = |f: String, v: String, reason: String| InstallSpecError::Field {
        origin: origin.clone(),
        field: f,
        value: v,
        reason,
    };
    let name: Hostname = s.cluster.name.as_str().parse().map_err(|e| {
        field(
            "cluster.name".into(),
            s.cluster.name.to_string(),
            format!("{e}"),
        )
    })?;
    let (lb_address, box_address) = match site.backend() {
        Backend::Linux(l) => (l.load_balancer_address, None),
        Backend::OpnSense(o) => {
            let a = o.address.unwrap_or(s.provisioning.gateway);
            (a, Some(a))
        }
        Backend::Missing => {
            return Err(field(
                "services.backend".into(),
                s.services.backend.as_str().into(),
                "has no settings section".into(),
            ));
        }
    };
    let role_configs = role_configs(site, &inputs.ssh_keys, inputs.pull_secret.take())?;
    let boot = site_boot(site, inputs)?;

    let hosts = Hosts::of(site, records)?;
    let reservations = reservations(site, &hosts, lb_address, box_address)?;
    let (ports, access_vlan) = ports(site, &hosts)?;
    Ok(InstallSpec {
        cluster: ClusterSettings {
            name,
            base_domain: s.cluster.base_domain.clone(),
            lb_address: IpAddr::V4(lb_address),
            access_vlan,
        },
        boot,
        role_configs,
        networks: Default::default(),
        reservations,
        ports,
        timing: InstallTiming::default(),
    })
}

/// The boot settings `site` gives every host (discovery and install): the
/// OS asset paths, the agent, the SSH keys, the role configs' URLs on the
/// site's HTTP root. `OKDSetup01Site` publishes the discovery boot files
/// from it before any host is known.
pub fn site_boot(site: &SiteFile, inputs: InstallInputs) -> Result<SiteBoot, InstallSpecError> {
    let base = http_base_url(site)?;
    let url = |p: &str| {
        base.join(p)
            .map_err(|e| InstallSpecError::field(site, "services", base.to_string(), e))
    };
    let (scos_kernel, scos_initramfs, scos_rootfs, centos_kernel, centos_initrd, centos_tree) =
        asset_paths().map_err(|e| InstallSpecError::field(site, "assets", "", e))?;
    Ok(SiteBoot {
        scos_kernel,
        scos_initramfs,
        scos_rootfs,
        centos_kernel,
        centos_initrd,
        centos_tree,
        agent: inputs.agent,
        agent_sha256: inputs.agent_sha256,
        agent_port: crate::inventory_model::DEFAULT_PORT,
        ssh_keys: inputs.ssh_keys,
        repo: None,
        bootstrap_config: url(BOOTSTRAP_CONFIG)?,
        master_config: url(MASTER_CONFIG)?,
        worker_config: url(WORKER_CONFIG)?,
        ca: None,
        extra_args: Vec::new(),
    })
}

/// Where the role configs come from: made by `openshift-install` when the
/// site file names it (`install.openshift_install`), with an install-config
/// from the cluster section; else given (served under `okd/` already).
fn role_configs(
    site: &SiteFile,
    ssh_keys: &[SshPublicKey],
    pull_secret: Option<PullSecret>,
) -> Result<RoleConfigSource, InstallSpecError> {
    let s = site.site();
    let Some(install) = &s.install else {
        return Ok(RoleConfigSource::Given);
    };
    let Some(openshift_install) = &install.openshift_install else {
        return Ok(RoleConfigSource::Given);
    };
    let field = |f: &str, v: String, reason: &str| InstallSpecError::Field {
        origin: site.origin().to_string(),
        field: f.into(),
        value: v,
        reason: reason.into(),
    };
    let pull_secret = pull_secret.ok_or_else(|| {
        field(
            "cluster.pull_secret_file",
            s.cluster.pull_secret_file.as_path().display().to_string(),
            "not read: running openshift-install needs the pull secret",
        )
    })?;
    let ssh_key = ssh_keys.first().cloned().ok_or_else(|| {
        field(
            "ssh.cluster_public_key_file",
            s.ssh
                .cluster_public_key_file
                .as_path()
                .display()
                .to_string(),
            "holds no public key for install-config's sshKey",
        )
    })?;
    Ok(RoleConfigSource::Installer(Box::new(InstallerJob {
        openshift_install: openshift_install.as_path().to_path_buf(),
        install_dir: install.dir.as_path().to_path_buf(),
        install_config: InstallConfig {
            base_domain: s.cluster.base_domain.clone(),
            cluster_name: s.cluster.name.clone(),
            machine_network: ipnetwork::IpNetwork::V4(s.provisioning.subnet),
            cluster_network: s.cluster.cluster_network.cidr,
            host_prefix: s.cluster.cluster_network.host_prefix,
            service_network: s.cluster.service_network,
            node_addresses: Vec::new(),
            pull_secret,
            ssh_key,
        },
    })))
}

type AssetPaths = (
    RelativePath,
    RelativePath,
    RelativePath,
    RelativePath,
    RelativePath,
    RelativePath,
);

/// The OS assets where `ScosAssets` and `CentosInventoryAssets` put them by
/// default (`os/scos-4.19/{kernel,initramfs.img,rootfs.img}`,
/// `os/centos-stream-9/images/pxeboot/{vmlinuz,initrd.img}`).
fn asset_paths() -> Result<AssetPaths, String> {
    let none = || Source::Path(std::path::PathBuf::new());
    let [kernel, initramfs, rootfs] = ScosAssets::new(none())
        .served_paths()
        .map_err(|e| e.to_string())?;
    let digest: Sha256Digest = "0".repeat(64).parse().map_err(|e| format!("{e}"))?;
    let (ck, ci, tree) = CentosInventoryAssets::new(none(), digest)
        .served_paths()
        .map_err(|e| e.to_string())?;
    Ok((kernel, initramfs, rootfs, ck, ci, tree))
}

/// The hosts with a role, and which pinned entry each is.
struct Hosts<'a> {
    /// In host id order.
    with_role: Vec<&'a HostRecord>,
    /// Index in `hosts.pinned` per host.
    pinned: BTreeMap<HostId, usize>,
}

impl<'a> Hosts<'a> {
    fn of(site: &SiteFile, records: &'a [HostRecord]) -> Result<Self, InstallSpecError> {
        let origin = site.origin().to_string();
        let mut pinned = BTreeMap::new();
        for (i, p) in site.site().hosts.pinned.iter().enumerate() {
            let at = format!("hosts.pinned[{i}]");
            let owner = records
                .iter()
                .find(|r| r.macs.contains(&p.mac))
                .ok_or_else(|| InstallSpecError::Field {
                    origin: origin.clone(),
                    field: format!("{at}.mac"),
                    value: p.mac.to_string(),
                    reason: "no discovered host has this MAC (run `harmony inventory discover` until it is found)".into(),
                })?;
            let host_err = |reason: String| InstallSpecError::Host {
                host: owner.id.clone(),
                reason,
            };
            if let Some(j) = pinned.insert(owner.id.clone(), i) {
                return Err(host_err(format!(
                    "owns the MACs of hosts.pinned[{j}] and {at}: one entry per host"
                )));
            }
            match owner.role {
                Some(r) if r == p.role => {}
                Some(r) => {
                    return Err(host_err(format!(
                        "is {r} in the inventory but {at}.role is {}",
                        p.role
                    )));
                }
                None => {
                    return Err(host_err(format!(
                        "has no role in the inventory; {at} pins it as {} {}: \
                         harmony inventory assign {} {} --hostname {}",
                        p.role, p.hostname, owner.id, p.role, p.hostname
                    )));
                }
            }
            if owner.hostname.as_ref() != Some(&p.hostname) {
                return Err(host_err(format!(
                    "is named {} in the inventory but {at}.hostname is {}",
                    owner
                        .hostname
                        .as_ref()
                        .map_or("(none)".to_string(), |h| h.to_string()),
                    p.hostname
                )));
            }
        }
        let mut with_role: Vec<&HostRecord> = records.iter().filter(|r| r.role.is_some()).collect();
        with_role.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(Self { with_role, pinned })
    }

    /// Install order: role, then host name (as the Scores install).
    fn install_order(&self) -> Vec<&'a HostRecord> {
        let rank = |r: Option<Role>| match r {
            Some(Role::Bootstrap) => 0,
            Some(Role::ControlPlane) => 1,
            _ => 2,
        };
        let mut v = self.with_role.clone();
        v.sort_by(|a, b| {
            (rank(a.role), &a.hostname, &a.id).cmp(&(rank(b.role), &b.hostname, &b.id))
        });
        v
    }
}

/// The MAC a host PXE boots from: the NIC it answered discovery on.
fn pxe_mac(r: &HostRecord) -> Option<MacAddress> {
    let answered = r.hardware.nics.iter().find(|n| {
        n.mac.is_some_and(|m| r.macs.contains(&m)) && n.ipv4.iter().any(|net| net.ip() == r.ip)
    });
    answered
        .and_then(|n| n.mac)
        .or_else(|| r.macs.first().copied())
}

fn reservations(
    site: &SiteFile,
    hosts: &Hosts<'_>,
    lb_address: Ipv4Addr,
    box_address: Option<Ipv4Addr>,
) -> Result<BTreeMap<HostId, Reservation>, InstallSpecError> {
    let s = site.site();
    let pr = &s.provisioning;
    let mut taken: BTreeSet<Ipv4Addr> = [pr.gateway, pr.harmony_address, lb_address]
        .into_iter()
        .chain(box_address)
        .collect();
    taken.extend(s.hosts.pinned.iter().map(|p| p.ip));
    let mut out = BTreeMap::new();
    for (id, i) in &hosts.pinned {
        let p = &s.hosts.pinned[*i];
        out.insert(
            id.clone(),
            Reservation {
                mac: p.mac,
                ip: IpAddr::V4(p.ip),
            },
        );
    }
    let network = u32::from(pr.subnet.network());
    let broadcast = u32::from(pr.subnet.broadcast());
    let mut next = network.saturating_add(1);
    for r in &hosts.with_role {
        if out.contains_key(&r.id) {
            continue;
        }
        let mac = pxe_mac(r).ok_or_else(|| InstallSpecError::Host {
            host: r.id.clone(),
            reason: "has no MAC to reserve an address for".into(),
        })?;
        let ip = loop {
            if next >= broadcast {
                return Err(InstallSpecError::Field {
                    origin: site.origin().to_string(),
                    field: "provisioning.subnet".into(),
                    value: pr.subnet.to_string(),
                    reason: format!(
                        "no free address left for host {} outside the DHCP range, the gateway, \
                         Harmony's and the pinned addresses",
                        r.id
                    ),
                });
            }
            let candidate = Ipv4Addr::from(next);
            next += 1;
            if !pr.dhcp_range.contains(candidate) && !taken.contains(&candidate) {
                break candidate;
            }
        };
        out.insert(
            r.id.clone(),
            Reservation {
                mac,
                ip: IpAddr::V4(ip),
            },
        );
    }
    Ok(out)
}

fn ports(
    site: &SiteFile,
    hosts: &Hosts<'_>,
) -> Result<(BTreeMap<HostId, HostPorts>, VlanId), InstallSpecError> {
    let order = hosts.install_order();
    let mut out = BTreeMap::new();
    // The VLAN and the switch that set it first.
    let mut vlan: Option<(VlanId, String)> = None;
    for (id, i) in &hosts.pinned {
        let list = pinned_ports(site, *i, &mut vlan)?;
        if list.is_empty() {
            continue;
        }
        let pos = order
            .iter()
            .position(|r| &r.id == id)
            .unwrap_or(order.len());
        let lag = u16::try_from(pos + 1)
            .ok()
            .and_then(|n| LagId::try_from(n).ok())
            .ok_or_else(|| InstallSpecError::Host {
                host: id.clone(),
                reason: format!("install position {} is no LAG id", pos + 1),
            })?;
        out.insert(id.clone(), HostPorts { ports: list, lag });
    }
    Ok((out, access_vlan(site, vlan)?))
}

/// The switch ports of `hosts.pinned[i]` (empty when it has none): all on
/// one switch of `switches`, whose access VLAN must be `vlan`'s when set
/// (else it sets it, with the switch's name).
pub(super) fn pinned_ports(
    site: &SiteFile,
    i: usize,
    vlan: &mut Option<(VlanId, String)>,
) -> Result<Vec<SwitchPort>, InstallSpecError> {
    let s = site.site();
    let field = |f: String, v: String, reason: String| InstallSpecError::field(site, f, v, reason);
    let Some(p) = s.hosts.pinned.get(i) else {
        return Ok(Vec::new());
    };
    let Some(first) = p.switch_ports.first().map(|f| &f.switch) else {
        return Ok(Vec::new());
    };
    let at = format!("hosts.pinned[{i}].switch_ports");
    let mut list = Vec::new();
    for (k, pr) in p.switch_ports.iter().enumerate() {
        if pr.switch != *first {
            return Err(field(
                format!("{at}[{k}].switch"),
                pr.switch.to_string(),
                format!(
                    "host {} has ports on {first} and {}: its ports form one LAG, on one switch",
                    p.hostname, pr.switch
                ),
            ));
        }
        let sw = s
            .switches
            .iter()
            .find(|sw| sw.name == pr.switch)
            .ok_or_else(|| {
                field(
                    format!("{at}[{k}].switch"),
                    pr.switch.to_string(),
                    "is not one of `switches`".into(),
                )
            })?;
        let v = VlanId::try_from(sw.access_vlan.get()).map_err(|e| {
            field(
                format!("switches[{}].access_vlan", sw.name),
                sw.access_vlan.to_string(),
                format!("{e}"),
            )
        })?;
        match &*vlan {
            None => *vlan = Some((v, sw.name.to_string())),
            Some((have, by)) if *have != v => {
                return Err(field(
                    "switches.access_vlan".into(),
                    format!("{by}: {have}, {}: {v}", sw.name),
                    "the hosts' switches have different access VLANs; the installation \
                     drives one provisioning VLAN"
                        .into(),
                ));
            }
            Some(_) => {}
        }
        list.push(pr.port.as_str().parse::<SwitchPort>().map_err(|e| {
            field(
                format!("{at}[{k}].port"),
                pr.port.to_string(),
                format!("{e}"),
            )
        })?);
    }
    Ok(list)
}

/// The provisioning VLAN: the hosts' switches' (`found`); no host switched:
/// the first switch's, else VLAN 1 (unused).
pub(super) fn access_vlan(
    site: &SiteFile,
    found: Option<(VlanId, String)>,
) -> Result<VlanId, InstallSpecError> {
    if let Some((v, _)) = found {
        return Ok(v);
    }
    let field = |f: &str, v: String, reason: String| InstallSpecError::field(site, f, v, reason);
    match site.site().switches.first() {
        Some(sw) => VlanId::try_from(sw.access_vlan.get()).map_err(|e| {
            field(
                "switches[0].access_vlan",
                sw.access_vlan.to_string(),
                format!("{e}"),
            )
        }),
        None => {
            VlanId::try_from(1u16).map_err(|e| field("switches", String::new(), format!("{e}")))
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::modules::okd::boot_plan::tests::{qemu, record};

    pub(crate) const SITE: &str = r#"
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
switches:
  - { name: sw-a, kind: ovs, access_vlan: 77, bridge: br-prov }
  - { name: sw-b, kind: ovs, access_vlan: 78, bridge: br-two }
hosts:
  bootstrap: 1
  control_plane: 3
  workers: 2
  pinned:
    - mac: 52:54:00:00:00:21
      role: control-plane
      hostname: master-1
      ip: 192.0.2.4
      switch_ports:
        - { switch: sw-a, port: p1 }
        - { switch: sw-a, port: p2 }
ssh:
  operator_key_file: /root/.ssh/id_ed25519
  cluster_public_key_file: /root/.ssh/id_ed25519.pub
"#;

    fn site(text: &str) -> SiteFile {
        SiteFile::parse(text, "site.yaml").unwrap()
    }

    /// Host `n` with MACs 52:54:00:00:00:n1 and n2, `role` and `name`.
    fn host(n: u8, role: Option<Role>, name: &str) -> HostRecord {
        let mut r = record(&qemu(None), &format!("192.0.2.{}", 100 + n));
        r.id = HostId::from_serial(&format!("SN{n:03}")).unwrap();
        r.macs = vec![
            MacAddress::new([0x52, 0x54, 0, 0, 0, n * 16 + 1]),
            MacAddress::new([0x52, 0x54, 0, 0, 0, n * 16 + 2]),
        ];
        r.role = role;
        r.hostname = Some(name.parse().unwrap());
        r
    }

    fn cluster() -> Vec<HostRecord> {
        vec![
            host(1, Some(Role::Bootstrap), "bootstrap"),
            host(2, Some(Role::ControlPlane), "master-1"),
            host(3, Some(Role::ControlPlane), "master-0"),
            host(4, Some(Role::ControlPlane), "master-2"),
            host(5, Some(Role::Worker), "worker-0"),
            host(6, Some(Role::Worker), "worker-1"),
            host(7, None, "spare"),
        ]
    }

    fn inputs() -> InstallInputs {
        InstallInputs {
            agent: AGENT_PATH.parse().unwrap(),
            agent_sha256: "b".repeat(64).parse().unwrap(),
            ssh_keys: Vec::new(),
            pull_secret: None,
        }
    }

    #[test]
    fn the_installer_runs_when_the_site_names_it_with_the_pull_secret_it_needs() {
        // No `install` section, or no installer: the role configs are given.
        let given = install_spec(&site(SITE), &cluster(), inputs()).unwrap();
        assert!(matches!(given.role_configs, RoleConfigSource::Given));
        let with_installer = format!(
            "{SITE}install:\n  dir: /var/lib/harmony/install\n  \
             openshift_install: /usr/local/bin/openshift-install\n"
        );
        let key: SshPublicKey = "ssh-ed25519 \
             AAAAC3NzaC1lZDI1NTE5AAAAIAcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUm ops"
            .parse()
            .unwrap();
        let secret = PullSecret::new(r#"{"auths":{"quay.io":{"auth":"c2VjcmV0"}}}"#).unwrap();
        // Without the pull secret or a key: named, not guessed.
        let e = install_spec(&site(&with_installer), &cluster(), inputs())
            .unwrap_err()
            .to_string();
        assert!(e.contains("cluster.pull_secret_file"), "{e}");
        let mut i = inputs();
        i.pull_secret = Some(secret.clone());
        let e = install_spec(&site(&with_installer), &cluster(), i.clone())
            .unwrap_err()
            .to_string();
        assert!(e.contains("ssh.cluster_public_key_file"), "{e}");
        i.ssh_keys = vec![key.clone()];
        let spec = install_spec(&site(&with_installer), &cluster(), i).unwrap();
        let RoleConfigSource::Installer(job) = spec.role_configs else {
            panic!("the installer is not run");
        };
        assert_eq!(
            job.openshift_install,
            std::path::Path::new("/usr/local/bin/openshift-install")
        );
        assert_eq!(
            job.install_dir,
            std::path::Path::new("/var/lib/harmony/install")
        );
        let c = &job.install_config;
        assert_eq!(c.cluster_name.to_string(), "lab");
        assert_eq!(c.base_domain.to_string(), "example.org");
        assert_eq!(c.cluster_network.to_string(), "10.128.0.0/14");
        assert_eq!(c.ssh_key, key);
        // The secret never shows in a debug print of the job.
        assert!(!format!("{job:?}").contains("c2VjcmV0"));
    }

    #[test]
    fn the_spec_has_the_sites_settings_and_the_fixed_asset_paths() {
        let spec = install_spec(&site(SITE), &cluster(), inputs()).unwrap();
        assert_eq!(spec.cluster.zone(), "lab.example.org");
        assert_eq!(spec.cluster.lb_address.to_string(), "192.0.2.5");
        assert_eq!(spec.cluster.access_vlan.to_string(), "77");
        let b = &spec.boot;
        assert_eq!(b.scos_kernel.as_str(), "os/scos-4.19/kernel");
        assert_eq!(b.scos_initramfs.as_str(), "os/scos-4.19/initramfs.img");
        assert_eq!(b.scos_rootfs.as_str(), "os/scos-4.19/rootfs.img");
        assert_eq!(
            b.centos_kernel.as_str(),
            "os/centos-stream-9/images/pxeboot/vmlinuz"
        );
        assert_eq!(b.centos_tree.as_str(), "os/centos-stream-9");
        assert_eq!(b.agent.as_str(), AGENT_PATH);
        assert_eq!(
            b.bootstrap_config.as_str(),
            "http://192.0.2.2:8080/okd/bootstrap.ign"
        );
        assert_eq!(
            b.worker_config.as_str(),
            "http://192.0.2.2:8080/okd/worker.ign"
        );
    }

    #[test]
    fn pinned_hosts_keep_their_address_and_the_others_get_the_lowest_free_ones() {
        let hosts = cluster();
        let spec = install_spec(&site(SITE), &hosts, inputs()).unwrap();
        let ip = |n: usize| spec.reservations[&hosts[n].id].ip.to_string();
        // Pinned: master-1 (host 2) at .4 for its pinned MAC.
        assert_eq!(ip(1), "192.0.2.4");
        assert_eq!(spec.reservations[&hosts[1].id].mac, hosts[1].macs[0]);
        // The others in host id order (SN001, SN003, ...): .3, then .6
        // (.1 gateway, .2 Harmony, .4 pinned, .5 load balancer).
        assert_eq!(ip(0), "192.0.2.3");
        assert_eq!(ip(2), "192.0.2.6");
        assert_eq!(ip(3), "192.0.2.7");
        assert_eq!(ip(5), "192.0.2.9");
        // No role, no reservation.
        assert!(!spec.reservations.contains_key(&hosts[6].id));
        // The same inventory in another order: the same addresses.
        let mut shuffled = hosts.clone();
        shuffled.reverse();
        let again = install_spec(&site(SITE), &shuffled, inputs()).unwrap();
        assert_eq!(again.reservations, spec.reservations);
    }

    #[test]
    fn ports_and_lag_follow_install_order() {
        let hosts = cluster();
        let spec = install_spec(&site(SITE), &hosts, inputs()).unwrap();
        let p = &spec.ports[&hosts[1].id];
        let names: Vec<String> = p.ports.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["p1", "p2"]);
        // bootstrap, master-0, master-1: third.
        assert_eq!(p.lag.to_string(), "3");
        assert_eq!(spec.ports.len(), 1);
    }

    #[test]
    fn addresses_run_out_naming_the_subnet() {
        let text = SITE
            .replace("192.0.2.0/24", "192.0.2.0/29")
            .replace("192.0.2.100", "192.0.2.5")
            .replace("192.0.2.199", "192.0.2.6")
            .replace(
                "load_balancer_address: 192.0.2.5",
                "load_balancer_address: 192.0.2.2",
            );
        let e = install_spec(&site(&text), &cluster(), inputs())
            .unwrap_err()
            .to_string();
        assert!(e.contains("provisioning.subnet = 192.0.2.0/29"), "{e}");
    }

    #[test]
    fn a_pinned_mac_nobody_has_is_named() {
        let text = SITE.replace("52:54:00:00:00:21", "52:54:00:00:00:ff");
        let e = install_spec(&site(&text), &cluster(), inputs())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("hosts.pinned[0].mac = 52:54:00:00:00:ff: no discovered host"),
            "{e}"
        );
    }

    #[test]
    fn a_pinned_host_with_another_role_or_name_is_named() {
        let mut hosts = cluster();
        hosts[1].role = Some(Role::Worker);
        let e = install_spec(&site(SITE), &hosts, inputs()).unwrap_err();
        assert!(
            matches!(&e, InstallSpecError::Host { host, reason }
                if *host == hosts[1].id && reason.contains("hosts.pinned[0].role is control-plane")),
            "{e}"
        );
        let mut hosts = cluster();
        hosts[1].hostname = Some("other".parse().unwrap());
        let e = install_spec(&site(SITE), &hosts, inputs())
            .unwrap_err()
            .to_string();
        assert!(e.contains("hosts.pinned[0].hostname is master-1"), "{e}");
        let mut hosts = cluster();
        hosts[1].role = None;
        let e = install_spec(&site(SITE), &hosts, inputs())
            .unwrap_err()
            .to_string();
        assert!(e.contains("has no role in the inventory"), "{e}");
    }

    #[test]
    fn switches_with_different_vlans_are_refused_naming_both() {
        let text = SITE.replace(
            "      hostname: master-1\n      ip: 192.0.2.4\n      switch_ports:\n        - { switch: sw-a, port: p1 }\n        - { switch: sw-a, port: p2 }\n",
            "      hostname: master-1\n      ip: 192.0.2.4\n      switch_ports:\n        - { switch: sw-a, port: p1 }\n    - mac: 52:54:00:00:00:31\n      role: control-plane\n      hostname: master-0\n      ip: 192.0.2.8\n      switch_ports:\n        - { switch: sw-b, port: p9 }\n",
        );
        let e = install_spec(&site(&text), &cluster(), inputs())
            .unwrap_err()
            .to_string();
        assert!(e.contains("switches.access_vlan"), "{e}");
        assert!(e.contains("sw-a: 77") && e.contains("sw-b: 78"), "{e}");
    }

    #[test]
    fn a_host_on_two_switches_is_refused() {
        let text = SITE.replace(
            "        - { switch: sw-a, port: p2 }",
            "        - { switch: sw-b, port: p2 }",
        );
        let e = install_spec(&site(&text), &cluster(), inputs())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("hosts.pinned[0].switch_ports[1].switch = sw-b"),
            "{e}"
        );
    }

    #[test]
    fn public_keys_are_parsed_naming_the_field() {
        let s = site(SITE);
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUm ops@bastion";
        let keys = parse_public_keys(&s, &format!("# ops\n\n{key}\n")).unwrap();
        assert_eq!(keys.len(), 1);
        let e = parse_public_keys(&s, "not a key\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ssh.cluster_public_key_file"), "{e}");
        assert!(e.contains("line 1"), "{e}");
        let e = parse_public_keys(&s, "\n").unwrap_err().to_string();
        assert!(e.contains("holds no public key"), "{e}");
    }
}
