//! The virtual lab as a whole site: N QEMU machines PXE booting on the
//! lab's Open vSwitch provisioning network, inside a lab namespace, and the
//! site file that describes them to the real `harmony` binary.
//!
//! [`LabSite::up`] makes, in order: the lab directory (HTTP root, state,
//! install dir, VM files), an operator key (`ssh-keygen`), the stand-in
//! discovery image (Debian's kernel + the lab initramfs with the static
//! agent and that key, [`super::images`]) staged at the CentOS inventory
//! paths `default.ipxe` boots (`os/centos-stream-9/images/pxeboot/`), so
//! Harmony's own boot files boot it unchanged; the namespace and its
//! [`LabNetwork`] (198.51.100.1/24 on the bridge, a documentation range
//! that exists only in the namespace); each VM's two NIC taps as access
//! ports; the site file (`services.backend: linux` on the bridge address,
//! one `ovs` switch reached at `unix:<the lab's OVSDB socket>`, every VM
//! pinned by its first MAC with role, host name, address and both switch
//! ports); then the VMs, network boot.
//!
//! Every machine's hardware is a function of its index ([`vm_spec`]): MACs,
//! disk size and serial, SMBIOS serial and UUID, sockets and cores, so a
//! check compares what discovery stored against [`LabSite::vms`].
//! [`LabSite::down`] (or drop) kills the VMs, stops the switch and deletes
//! the namespace.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::LabError;
use super::cluster_sim::{ClusterSimulation, REPORT_PATH, SimConfig, SimHost, SimLimits};
use super::images::{DebianKernel, DiscoveryImage};
use super::installer::InstallerImage;
use super::netns::LabNetns;
use super::network::LabNetwork;
use super::vm::{Accel, DiskFormat, DiskSpec, NicSpec, Vm, VmSpec};
use crate::domain::values::InterfaceName;
use crate::domain::{Role, VlanId};
use crate::infra::process::Program;

/// The lab's address on its provisioning bridge (Harmony's services).
pub const SERVER: &str = "198.51.100.1";
/// The provisioning subnet (RFC 5737 TEST-NET-2: only in the namespace).
pub const SUBNET: &str = "198.51.100.0/24";
/// The bridge (its internal port carries [`SERVER`]).
pub const BRIDGE: &str = "labbr";
/// The provisioning VLAN of the access ports.
pub const ACCESS_VLAN: u16 = 100;
/// The HTTP port of the site's boot files.
pub const HTTP_PORT: u16 = 8080;
/// Where `default.ipxe` boots unknown hosts from (the CentOS inventory
/// image's paths, `CentosInventoryAssets::served_paths`).
pub const DISCOVERY_KERNEL: &str = "os/centos-stream-9/images/pxeboot/vmlinuz";
pub const DISCOVERY_INITRD: &str = "os/centos-stream-9/images/pxeboot/initrd.img";
/// Where the per-MAC installer script boots SCOS from (the site's
/// `os/scos-<version>/` paths, `site_boot`): the lab's stand-in installer
/// ([`super::installer`]) is staged there.
pub const SCOS_KERNEL: &str = "os/scos-4.19/kernel";
pub const SCOS_INITRAMFS: &str = "os/scos-4.19/initramfs.img";
pub const SCOS_ROOTFS: &str = "os/scos-4.19/rootfs.img";
/// The stand-in rootfs the installer fetches (`coreos.live.rootfs_url`).
const ROOTFS_BYTES: usize = 4 << 20;
/// The simulated cluster API ([`ClusterSimulation`]) on [`SERVER`]: the
/// installer images relay the API and MCS ports of the load balancer's
/// backends to it.
pub const SIM_API_PORT: u16 = 16443;
/// Where the installer images report their phases (plain HTTP).
pub const SIM_REPORT_PORT: u16 = 18080;
/// The cluster's DNS zone in the lab's site file.
pub const CLUSTER_ZONE: &str = "lab.example.org";
/// The smallest site: 1 bootstrap + 3 control-plane + 1 worker.
pub const MIN_HOSTS: usize = 5;
/// Taps, MACs and addresses are numbered per index up to this.
pub const MAX_HOSTS: usize = 32;
const KEYGEN_TIMEOUT: Duration = Duration::from_secs(30);
const KILL_GRACE: Duration = Duration::from_secs(3);

/// What lab to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabSpec {
    /// Machines: [`MIN_HOSTS`]..=[`MAX_HOSTS`] (1 bootstrap, 3
    /// control-plane, the rest workers).
    pub hosts: usize,
    pub accel: Accel,
    /// Each machine's memory: 384-16384 MiB (the discovery image runs from
    /// RAM), all of them within the host's available memory.
    pub memory_mib: u32,
    /// The lab's files (HTTP root, state, VM disks, site file).
    pub dir: PathBuf,
    /// The static (musl) inventory agent put in the discovery image.
    pub agent: PathBuf,
    /// Debian's kernel package cache ([`DebianKernel::fetch`]).
    pub cache: PathBuf,
    /// `timeout -s KILL` on every QEMU, should this process die unwinding
    /// nothing.
    pub hard_kill_after: Duration,
}

impl LabSpec {
    /// 5 machines, TCG, 768 MiB each, in `dir`.
    pub fn new(dir: impl Into<PathBuf>, agent: impl Into<PathBuf>) -> Self {
        LabSpec {
            hosts: MIN_HOSTS,
            accel: Accel::Tcg,
            memory_mib: 768,
            dir: dir.into(),
            agent: agent.into(),
            cache: PathBuf::from("/var/tmp/harmony-lab"),
            hard_kill_after: Duration::from_secs(30 * 60),
        }
    }

    /// Checks the counts and sizes; the error names the field and value.
    pub fn validate(&self, available_mib: Option<u64>) -> Result<(), LabError> {
        if !(MIN_HOSTS..=MAX_HOSTS).contains(&self.hosts) {
            return Err(LabError::invalid(
                "hosts",
                self.hosts.to_string(),
                format!("{MIN_HOSTS}-{MAX_HOSTS}: 1 bootstrap, 3 control-plane and workers"),
            ));
        }
        if !(384..=16_384).contains(&self.memory_mib) {
            return Err(LabError::invalid(
                "memory_mib",
                self.memory_mib.to_string(),
                "384-16384 MiB per machine",
            ));
        }
        let total = u64::from(self.memory_mib) * self.hosts as u64;
        if let Some(avail) = available_mib
            && total > avail
        {
            return Err(LabError::invalid(
                "memory_mib",
                self.memory_mib.to_string(),
                format!(
                    "{} machines need {total} MiB, the host has {avail} MiB available",
                    self.hosts
                ),
            ));
        }
        if !self.dir.is_absolute() {
            return Err(LabError::invalid(
                "dir",
                self.dir.display().to_string(),
                "an absolute path",
            ));
        }
        if !self.agent.is_file() {
            return Err(LabError::Missing {
                what: "the static inventory agent".into(),
                detail: format!("{} (run `cargo agent`)", self.agent.display()),
            });
        }
        Ok(())
    }
}

/// Index `i`'s role in the lab's site: 0 bootstrap, 1-3 control plane,
/// the rest workers; and its host name.
pub fn role_of(i: usize) -> (&'static str, String) {
    match i {
        0 => ("bootstrap", "bootstrap".to_string()),
        1..=3 => ("control-plane", format!("master-{}", i - 1)),
        _ => ("worker", format!("worker-{}", i - 4)),
    }
}

/// Index `i`'s pinned address on the subnet (outside the DHCP range).
pub fn pinned_ip(i: usize) -> String {
    format!("198.51.100.{}", 10 + i)
}

/// Index `i`'s machine: deterministic hardware, network boot.
pub fn vm_spec(i: usize, accel: Accel, memory_mib: u32) -> Result<VmSpec, LabError> {
    let nic = |n: u8| -> Result<NicSpec, LabError> {
        let mac = format!("52:54:00:1d:{i:02x}:{n:02x}");
        let tap = format!("lab{i}n{n}");
        Ok(NicSpec {
            mac: mac.parse().map_err(|e: crate::domain::ValueError| {
                LabError::invalid("mac", mac, e.to_string())
            })?,
            tap: tap.parse().map_err(|e: crate::domain::ValueError| {
                LabError::invalid("tap", tap, e.to_string())
            })?,
        })
    };
    let mut spec = VmSpec::new(
        &format!("lab{i}"),
        memory_mib,
        vec![nic(1)?, nic(2)?],
        vec![DiskSpec {
            size_bytes: (120 + i as u64) << 30,
            format: DiskFormat::Raw,
            serial: format!("LABDISK{i:04}"),
        }],
    );
    // At most 2 vCPUs each: TCG on a small host.
    let (sockets, cores) = [(1, 1), (2, 1), (1, 2)][i % 3];
    spec.accel = accel;
    spec.sockets = sockets;
    spec.cores = cores;
    spec.threads = 1;
    spec.smbios_serial = format!("HARMONY-LAB-{i:04}");
    spec.smbios_uuid = format!("5f1b2c3d-4e5f-4a6b-8c7d-{:012x}", 0x1ab0_0000 + i);
    spec.validate()?;
    Ok(spec)
}

/// A running lab site.
#[derive(Debug)]
pub struct LabSite {
    // Dropped in this order: the simulated cluster, VMs, switch, namespace.
    sim: Option<ClusterSimulation>,
    vms: Vec<Vm>,
    network: Option<LabNetwork>,
    ns: Option<LabNetns>,
    site_file: PathBuf,
    operator_key: PathBuf,
    dir: PathBuf,
}

impl LabSite {
    /// Makes the lab and starts its machines (see the module doc).
    pub async fn up(spec: LabSpec) -> Result<LabSite, LabError> {
        spec.validate(available_mib())?;
        let specs = (0..spec.hosts)
            .map(|i| vm_spec(i, spec.accel, spec.memory_mib))
            .collect::<Result<Vec<_>, _>>()?;
        let dir = spec.dir.clone();
        let http = dir.join("www");
        for d in [
            &http,
            &dir.join("state"),
            &dir.join("install"),
            &dir.join("vms"),
        ] {
            std::fs::create_dir_all(d).map_err(|e| LabError::io(d, e))?;
        }

        let operator_key = dir.join("id_operator");
        let public = operator_keypair(&operator_key)?;
        let pull_secret = dir.join("pull-secret.json");
        crate::infra::fs::write_atomic(&pull_secret, b"{\"auths\":{}}\n", 0o600)
            .map_err(|e| LabError::io(&pull_secret, e))?;

        let kernel = DebianKernel::fetch(&spec.cache, None)?;
        let image = DiscoveryImage::new(
            spec.agent.clone(),
            &public,
            crate::inventory_model::DEFAULT_PORT,
        );
        let initrd = http.join(DISCOVERY_INITRD);
        if let Some(parent) = initrd.parent() {
            std::fs::create_dir_all(parent).map_err(|e| LabError::io(parent, e))?;
        }
        let size = image.build(&kernel, &initrd)?;
        let vmlinuz = http.join(DISCOVERY_KERNEL);
        std::fs::copy(kernel.vmlinuz(), &vmlinuz).map_err(|e| LabError::io(&vmlinuz, e))?;
        tracing::info!(kernel = %kernel.version, initrd_bytes = size, "discovery image staged");

        // The stand-in SCOS installer at the paths the per-MAC scripts
        // boot, reporting to the simulated cluster and relaying its API.
        let server: std::net::IpAddr = SERVER.parse().map_err(|e: std::net::AddrParseError| {
            LabError::invalid("server", SERVER, e.to_string())
        })?;
        let installer = InstallerImage::new(
            &public,
            Some(format!("http://{SERVER}:{SIM_REPORT_PORT}{REPORT_PATH}")),
            Some(SocketAddr::new(server, SIM_API_PORT)),
        );
        let scos_initramfs = http.join(SCOS_INITRAMFS);
        let installer_size = installer.build(&kernel, &scos_initramfs)?;
        let scos_kernel = http.join(SCOS_KERNEL);
        std::fs::copy(kernel.vmlinuz(), &scos_kernel).map_err(|e| LabError::io(&scos_kernel, e))?;
        let rootfs = http.join(SCOS_ROOTFS);
        crate::infra::fs::write_atomic(&rootfs, &stand_in_rootfs(), 0o644)
            .map_err(|e| LabError::io(&rootfs, e))?;
        for name in ["bootstrap.ign", "master.ign", "worker.ign"] {
            let path = http.join("okd").join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| LabError::io(parent, e))?;
            }
            crate::infra::fs::write_atomic(&path, ROLE_CONFIG.as_bytes(), 0o644)
                .map_err(|e| LabError::io(&path, e))?;
        }
        tracing::info!(
            initramfs_bytes = installer_size,
            "stand-in SCOS installer staged"
        );

        let ns = LabNetns::create("labsite")?;
        // Harmony in the namespace resolves the cluster's names with the
        // site's own DNS (dnsmasq on the bridge address).
        ns.set_resolver(server)?;
        let vlan = VlanId::try_from(ACCESS_VLAN)
            .map_err(|e| LabError::invalid("vlan", ACCESS_VLAN.to_string(), e.to_string()))?;
        let mut network = LabNetwork::up(&ns, BRIDGE, &format!("{SERVER}/24"), vlan).await?;
        for s in &specs {
            for n in &s.nics {
                network.add_vm_port(&ns, &n.tap).await?;
            }
        }
        let db = network.db_socket().ok_or_else(|| LabError::Missing {
            what: "Open vSwitch".into(),
            detail: "no OVSDB socket".into(),
        })?;
        let site_file = dir.join("site.yaml");
        let text = site_yaml(&dir, db, &specs);
        crate::infra::fs::write_atomic(&site_file, text.as_bytes(), 0o644)
            .map_err(|e| LabError::io(&site_file, e))?;

        let sim = start_cluster(&ns, &specs, server)?;
        let kubeconfig = dir.join("install").join("auth").join("kubeconfig");
        if let Some(parent) = kubeconfig.parent() {
            std::fs::create_dir_all(parent).map_err(|e| LabError::io(parent, e))?;
        }
        sim.write_kubeconfig(&kubeconfig).map_err(|e| {
            LabError::invalid(
                "kubeconfig",
                kubeconfig.display().to_string(),
                e.to_string(),
            )
        })?;

        let mut site = LabSite {
            sim: Some(sim),
            vms: Vec::new(),
            network: Some(network),
            ns: Some(ns),
            site_file,
            operator_key,
            dir: dir.clone(),
        };
        let vm_dir = dir.join("vms");
        for s in specs {
            let ns = site.netns()?;
            let vm = Vm::start(ns, s, &vm_dir, Some(spec.hard_kill_after))?;
            site.vms.push(vm);
        }
        tracing::info!(hosts = site.vms.len(), netns = %site.namespace(), "lab site up");
        Ok(site)
    }

    fn netns(&self) -> Result<&LabNetns, LabError> {
        self.ns.as_ref().ok_or_else(|| LabError::Missing {
            what: "the lab namespace".into(),
            detail: "the lab is down".into(),
        })
    }

    /// `program` run inside the lab namespace (`ip netns exec`).
    pub fn program(&self, program: &str) -> Result<Program, LabError> {
        Ok(self.netns()?.program(program))
    }

    /// The namespace Harmony runs in (`ip netns exec NAME harmony ...`).
    pub fn namespace(&self) -> &str {
        self.ns.as_ref().map_or("", |n| n.name())
    }

    pub fn site_file(&self) -> &Path {
        &self.site_file
    }

    /// The operator's private key (its `.pub` is in the discovery image).
    pub fn operator_key(&self) -> &Path {
        &self.operator_key
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The machines, in index order.
    pub fn vms(&self) -> &[Vm] {
        &self.vms
    }

    pub fn vms_mut(&mut self) -> &mut [Vm] {
        &mut self.vms
    }

    /// The provisioning network (its switch, `ovs-vsctl`).
    pub fn network(&self) -> Option<&LabNetwork> {
        self.network.as_ref()
    }

    /// The simulated cluster API (what the installers reported).
    pub fn cluster(&self) -> Option<&ClusterSimulation> {
        self.sim.as_ref()
    }

    /// Stops the simulated cluster, kills the VMs, stops the switch,
    /// deletes the namespace; the first error is returned after everything
    /// was tried.
    pub async fn down(mut self) -> Result<(), LabError> {
        let mut first = None;
        if let Some(sim) = self.sim.take()
            && let Err(e) = sim.shutdown(KILL_GRACE).await
        {
            first.get_or_insert(LabError::invalid(
                "simulated cluster",
                "shutdown",
                e.to_string(),
            ));
        }
        for vm in &mut self.vms {
            if let Err(e) = vm.kill(KILL_GRACE).await {
                first.get_or_insert(e);
            }
        }
        self.vms.clear();
        if let Some(net) = self.network.take()
            && let Err(e) = net.down().await
        {
            first.get_or_insert(e);
        }
        drop(self.ns.take());
        first.map_or(Ok(()), Err)
    }
}

/// The role configs the lab serves under `okd/` (what `openshift-install
/// create ignition-configs` would make): empty Ignition 3.2 configs, since
/// the stand-in installer applies only what Harmony adds per host.
const ROLE_CONFIG: &str = "{\"ignition\":{\"version\":\"3.2.0\"}}\n";

/// [`ROOTFS_BYTES`] of a fixed pattern: the stand-in live rootfs.
fn stand_in_rootfs() -> Vec<u8> {
    let line = b"harmony lab stand-in SCOS live rootfs\n";
    line.iter().copied().cycle().take(ROOTFS_BYTES).collect()
}

/// The simulated cluster on [`SERVER`] in `ns`: the API on
/// [`SIM_API_PORT`] (its certificate names `api` and `api-int` of
/// [`CLUSTER_ZONE`] and the load balancer's address), reports on
/// [`SIM_REPORT_PORT`], every machine expected with its role.
fn start_cluster(
    ns: &LabNetns,
    specs: &[VmSpec],
    server: std::net::IpAddr,
) -> Result<ClusterSimulation, LabError> {
    let mut hosts = Vec::with_capacity(specs.len());
    for (i, vm) in specs.iter().enumerate() {
        let (role, name) = role_of(i);
        let role: Role = role.parse().map_err(|e: crate::domain::ValueError| {
            LabError::invalid("role", role, e.to_string())
        })?;
        let ip = pinned_ip(i);
        hosts.push(SimHost {
            name: name.parse().map_err(|e: crate::domain::ValueError| {
                LabError::invalid("host name", name.clone(), e.to_string())
            })?,
            role,
            macs: vm.nics.iter().map(|n| n.mac).collect(),
            ip: ip.parse().map_err(|e: std::net::AddrParseError| {
                LabError::invalid("address", ip.clone(), e.to_string())
            })?,
        });
    }
    let api_bind = SocketAddr::new(server, SIM_API_PORT);
    let report_bind = SocketAddr::new(server, SIM_REPORT_PORT);
    let config = SimConfig {
        cluster: "lab".into(),
        hosts,
        api_bind,
        report_bind,
        server_names: vec![
            format!("api.{CLUSTER_ZONE}"),
            format!("api-int.{CLUSTER_ZONE}"),
        ],
        server_ips: vec![server],
        advertised_server: Some(format!("https://api.{CLUSTER_ZONE}:6443")),
        limits: SimLimits::default(),
    };
    let api = ns.bind_tcp(api_bind)?;
    let report = ns.bind_tcp(report_bind)?;
    ClusterSimulation::start_with_listeners(config, api, report)
        .map_err(|e| LabError::invalid("simulated cluster", api_bind.to_string(), e.to_string()))
}

/// `ssh-keygen` an ed25519 pair at `path`; the public key's line.
pub fn operator_keypair(path: &Path) -> Result<String, LabError> {
    let _ = std::fs::remove_file(path);
    let public = path.with_extension("pub");
    let _ = std::fs::remove_file(&public);
    Program::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "operator@lab", "-f"])
        .arg(path)
        .timeout(KEYGEN_TIMEOUT)
        .run_blocking()
        .map_err(|e| LabError::process("ssh-keygen (the operator key)", e))?;
    let text = std::fs::read_to_string(&public).map_err(|e| LabError::io(&public, e))?;
    Ok(text.trim().to_string())
}

/// `MemAvailable` in MiB, when `/proc/meminfo` says.
fn available_mib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb / 1024)
}

/// The lab's site file: a linux site on [`SERVER`] in the namespace, one
/// OVS switch, every machine pinned.
pub fn site_yaml(dir: &Path, ovsdb: &Path, vms: &[VmSpec]) -> String {
    let d = dir.display();
    let workers = vms.len().saturating_sub(4);
    let mut pinned = String::new();
    for (i, vm) in vms.iter().enumerate() {
        let (role, hostname) = role_of(i);
        let ports: Vec<String> = vm
            .nics
            .iter()
            .map(|n| format!("{{ switch: lab-ovs, port: {}, nic: {} }}", n.tap, n.mac))
            .collect();
        let mac = vm
            .nics
            .first()
            .map(|n| n.mac.to_string())
            .unwrap_or_default();
        let _ = writeln!(
            pinned,
            "    - {{ mac: \"{mac}\", role: {role}, hostname: {hostname}, ip: {}, switch_ports: [{}] }}",
            pinned_ip(i),
            ports.join(", ")
        );
    }
    format!(
        r#"# The virtual lab's site (written by harmony::infra::lab::site).
cluster:
  name: lab
  base_domain: example.org
  okd_version: "4.19"
  cluster_network: {{ cidr: 10.128.0.0/14, host_prefix: 23 }}
  service_network: 172.30.0.0/16
  pull_secret_file: {d}/pull-secret.json
provisioning:
  interface: {BRIDGE}
  subnet: {SUBNET}
  gateway: 198.51.100.254
  harmony_address: {SERVER}
  dhcp_range: {{ start: 198.51.100.100, end: 198.51.100.199 }}
  dns_forwarders: [198.51.100.254]
services:
  backend: linux
  linux:
    state_dir: {d}/state
    http_root: {d}/www
    http_listen: {SERVER}:{HTTP_PORT}
    dns_listen: {SERVER}:53
    load_balancer_address: {SERVER}
switches:
  - {{ name: lab-ovs, kind: ovs, address: "unix:{db}", access_vlan: {ACCESS_VLAN}, bridge: {BRIDGE} }}
hosts:
  bootstrap: 1
  control_plane: 3
  workers: {workers}
  pinned:
{pinned}ssh:
  operator_key_file: {d}/id_operator
  cluster_public_key_file: {d}/id_operator.pub
install:
  dir: {d}/install
"#,
        db = ovsdb.display(),
    )
}

/// The taps of a machine (its switch ports).
pub fn ports_of(vm: &VmSpec) -> Vec<InterfaceName> {
    vm.nics.iter().map(|n| n.tap.clone()).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::site::SiteFile;

    #[test]
    fn machines_are_deterministic_and_distinct() {
        let a: Vec<VmSpec> = (0..6)
            .map(|i| vm_spec(i, Accel::Tcg, 512).unwrap())
            .collect();
        let b: Vec<VmSpec> = (0..6)
            .map(|i| vm_spec(i, Accel::Tcg, 512).unwrap())
            .collect();
        assert_eq!(a, b);
        let macs: std::collections::BTreeSet<_> = a
            .iter()
            .flat_map(|v| v.nics.iter().map(|n| n.mac))
            .collect();
        assert_eq!(macs.len(), 12);
        let uuids: std::collections::BTreeSet<_> = a.iter().map(|v| &v.smbios_uuid).collect();
        assert_eq!(uuids.len(), 6);
        assert_eq!(role_of(0).0, "bootstrap");
        assert_eq!(role_of(3).1, "master-2");
        assert_eq!(role_of(5).1, "worker-1");
        // The largest index still gives valid taps (15 bytes at most).
        vm_spec(MAX_HOSTS - 1, Accel::Tcg, 512).unwrap();
    }

    #[test]
    fn bad_counts_and_sizes_are_named() {
        let agent = std::env::current_exe().unwrap();
        let ok = LabSpec::new("/tmp/lab", &agent);
        ok.validate(Some(1 << 20)).unwrap();
        for (spec, field) in [
            (
                LabSpec {
                    hosts: 4,
                    ..ok.clone()
                },
                "hosts",
            ),
            (
                LabSpec {
                    hosts: 33,
                    ..ok.clone()
                },
                "hosts",
            ),
            (
                LabSpec {
                    memory_mib: 100,
                    ..ok.clone()
                },
                "memory_mib",
            ),
            (
                LabSpec {
                    dir: "lab".into(),
                    ..ok.clone()
                },
                "dir",
            ),
        ] {
            let e = spec.validate(Some(1 << 20)).unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
        let e = ok.validate(Some(1024)).unwrap_err().to_string();
        assert!(
            e.contains("3840 MiB") && e.contains("1024 MiB available"),
            "{e}"
        );
        let e = LabSpec::new("/tmp/lab", "/nonexistent/agent")
            .validate(None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cargo agent"), "{e}");
    }

    #[test]
    fn the_site_file_is_valid_and_pins_every_machine() {
        let vms: Vec<VmSpec> = (0..6)
            .map(|i| vm_spec(i, Accel::Tcg, 512).unwrap())
            .collect();
        let text = site_yaml(
            Path::new("/srv/lab"),
            Path::new("/srv/lab/ovs/db.sock"),
            &vms,
        );
        let site = SiteFile::parse(&text, "lab.yaml").unwrap_or_else(|e| panic!("{e}\n{text}"));
        let s = site.site();
        assert_eq!(s.hosts.total(), 6);
        assert_eq!(s.hosts.pinned.len(), 6);
        assert_eq!(s.hosts.pinned[0].mac, vms[0].nics[0].mac);
        assert_eq!(s.hosts.pinned[4].hostname.to_string(), "worker-0");
        assert_eq!(s.hosts.pinned[2].switch_ports.len(), 2);
        assert_eq!(
            s.hosts.pinned[2].switch_ports[1].port.to_string(),
            ports_of(&vms[2])[1].to_string()
        );
    }
}
