//! The site file's shapes, as serde reads them. Every struct refuses
//! unknown fields, and every leaf is a typed value that validates itself
//! while it is read (a MAC, a host name, a VLAN id, a file path...), so a
//! bad value fails with its field path, line and column. What needs more
//! than one field (ranges, overlaps, duplicates, references) is checked
//! afterwards by `validate.rs`.
//!
//! `examples/site.yaml` documents every field for operators.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ipnetwork::{IpNetwork, Ipv4Network};
use serde::Deserialize;

use super::values::{
    ApiKeySource, ApiUrl, FilePath, OkdVersion, PortName, SshHostKey, SwitchCredentials,
    SwitchName, VlanId, parsed, parsed_opt,
};
use crate::domain::{Hostname, InterfaceName, MacAddress, Role};
use crate::modules::assets::{Sha256Digest, Source};
use crate::modules::boot::ClusterName;

/// The whole site file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    pub cluster: Cluster,
    pub provisioning: Provisioning,
    pub services: Services,
    #[serde(default)]
    pub switches: Vec<Switch>,
    pub hosts: Hosts,
    pub ssh: Ssh,
    /// Where the cluster's role configs and credentials come from; needed
    /// to run an installation (`harmony install` without `--dry-run`).
    #[serde(default)]
    pub install: Option<Install>,
    /// Where the OS images Harmony stages on the HTTP root come from.
    #[serde(default)]
    pub assets: Option<Assets>,
}

/// The OS images staged on the HTTP root before discovery (each optional:
/// omitted, it is expected there already, at the paths the boot files
/// name).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assets {
    /// The SCOS stream metadata JSON (an `https://` URL or an absolute
    /// path): its x86_64 metal PXE kernel, initramfs and rootfs are
    /// downloaded and checked against the digests it lists.
    #[serde(default, deserialize_with = "parsed_opt")]
    pub scos_stream: Option<AssetSource>,
    /// The CentOS Stream 9 `boot.iso` unknown hosts boot into discovery
    /// from; its kernel, initrd and tree are extracted.
    #[serde(default)]
    pub centos_boot_iso: Option<CentosIso>,
}

/// A CentOS Stream `boot.iso` and the SHA-256 it must have (checked
/// before anything is extracted).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CentosIso {
    #[serde(deserialize_with = "parsed")]
    pub source: AssetSource,
    pub sha256: Sha256Digest,
}

/// Where an OS image comes from: an `http://` or `https://` URL, or an
/// absolute path on the Harmony host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetSource(pub Source);

impl std::str::FromStr for AssetSource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.starts_with("http://") || s.starts_with("https://") {
            return s
                .parse::<crate::domain::HttpUrl>()
                .map(|u| AssetSource(Source::Url(u)))
                .map_err(|e| e.to_string());
        }
        let path = std::path::Path::new(s);
        if path.is_absolute() && !s.contains('\n') {
            return Ok(AssetSource(Source::Path(path.to_path_buf())));
        }
        Err(format!(
            "{s:?} is neither an http(s) URL nor an absolute path"
        ))
    }
}

/// The installer's side: `openshift-install` and the directory it works
/// in. The directory holds the cluster's credentials afterwards
/// (`auth/kubeconfig`, `auth/kubeadmin-password`): keep it, and keep it
/// private.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Install {
    /// The install directory: `install-config.yaml` is written there
    /// (0600), the role configs and `auth/` are made there.
    pub dir: FilePath,
    /// The `openshift-install` binary of `cluster.okd_version`; Harmony
    /// runs `create ignition-configs` once. Omitted: the role configs are
    /// made beforehand and already served under `okd/` on the HTTP root,
    /// and `dir` holds their `auth/kubeconfig`.
    #[serde(default)]
    pub openshift_install: Option<FilePath>,
}

/// The OKD cluster: its names and its networks.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// `metadata.name`: a DNS label.
    #[serde(deserialize_with = "parsed")]
    pub name: ClusterName,
    /// The cluster's DNS zone is `<name>.<base_domain>`.
    #[serde(deserialize_with = "parsed")]
    pub base_domain: Hostname,
    pub okd_version: OkdVersion,
    /// Pod addresses (`networking.clusterNetwork[0]`).
    pub cluster_network: ClusterNetwork,
    /// Service addresses (`networking.serviceNetwork[0]`).
    #[serde(deserialize_with = "parsed")]
    pub service_network: IpNetwork,
    /// The OpenShift pull secret (JSON), read when installing.
    pub pull_secret_file: FilePath,
}

/// `networking.clusterNetwork[0]`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterNetwork {
    #[serde(deserialize_with = "parsed")]
    pub cidr: IpNetwork,
    /// Each node's pod subnet prefix.
    pub host_prefix: u8,
}

/// The provisioning network: where hosts PXE boot and Harmony serves. It
/// is also the cluster's machine network.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provisioning {
    /// The Harmony host's interface on this network.
    #[serde(deserialize_with = "parsed")]
    pub interface: InterfaceName,
    #[serde(deserialize_with = "parsed")]
    pub subnet: Ipv4Network,
    pub gateway: Ipv4Addr,
    /// Harmony's own address on the subnet.
    pub harmony_address: Ipv4Addr,
    /// Addresses handed to unknown hosts (discovery).
    pub dhcp_range: DhcpRange,
    /// Upstream DNS servers the cluster's DNS forwards to.
    pub dns_forwarders: Vec<IpAddr>,
}

/// A DHCP dynamic range, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DhcpRange {
    pub start: Ipv4Addr,
    pub end: Ipv4Addr,
}

impl DhcpRange {
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.start <= ip && ip <= self.end
    }

    /// Addresses in the range (0 when start > end).
    pub fn len(&self) -> u64 {
        let (s, e) = (u32::from(self.start), u32::from(self.end));
        if s > e { 0 } else { u64::from(e - s) + 1 }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Which backend provides DHCP, TFTP, DNS, HTTP and the load balancer;
/// the section of that name holds its settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Services {
    pub backend: BackendKind,
    pub linux: Option<LinuxServices>,
    pub opnsense: Option<OpnSenseServices>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// dnsmasq + Caddy + HAProxy on the Harmony host.
    Linux,
    /// An OPNsense firewall, through its REST API.
    Opnsense,
}

impl BackendKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            BackendKind::Linux => "linux",
            BackendKind::Opnsense => "opnsense",
        }
    }
}

/// dnsmasq (DHCP, TFTP, DNS), Caddy (HTTP root) and HAProxy (API,
/// machine config, ingress) run by Harmony on its own host.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinuxServices {
    /// Harmony's configuration and state: dnsmasq, HAProxy and Caddy
    /// configs, leases, the install config (0600). Never served.
    pub state_dir: FilePath,
    /// The directory Caddy serves to booting hosts.
    pub http_root: FilePath,
    /// Where Caddy listens.
    pub http_listen: SocketAddr,
    /// Where dnsmasq answers DNS.
    pub dns_listen: SocketAddr,
    /// The address HAProxy listens on for 6443, 22623, 80 and 443 (what
    /// `api`, `api-int` and `*.apps` resolve to).
    pub load_balancer_address: Ipv4Addr,
}

/// An OPNsense box providing the same services.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpnSenseServices {
    /// The API's base URL, `https://`.
    pub url: ApiUrl,
    /// A CA (PEM) to trust for `url`; else the built-in roots.
    pub ca_file: Option<FilePath>,
    pub api_key: ApiKeySource,
    /// The box's address on the provisioning subnet: os-tftp listens and
    /// the web root is served there. Omitted: `provisioning.gateway`.
    pub address: Option<Ipv4Addr>,
    /// The web root's port on that address (a Caddy snippet serves it).
    #[serde(default = "default_http_port")]
    pub http_port: u16,
    /// SSH to the box, to copy TFTP and HTTP files (neither plugin has an
    /// upload API). Omitted: TFTP and HTTP files are not available.
    pub ssh: Option<OpnSenseSsh>,
    /// A local directory where large files (OS images) are prepared
    /// before they are copied. Omitted: `/var/lib/harmony/opnsense-staging`.
    pub staging_dir: Option<FilePath>,
}

fn default_http_port() -> u16 {
    8080
}

/// How Harmony logs in to the OPNsense box to copy files.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpnSenseSsh {
    /// Omitted: the box's provisioning address.
    pub host: Option<IpAddr>,
    #[serde(default = "default_ssh_port")]
    pub port: u16,
    /// The private key; omitted: `ssh.operator_key_file`.
    pub key_file: Option<FilePath>,
    /// The box's host key, `<type> SHA256:<fingerprint>` as `ssh-keygen
    /// -l -E sha256` prints it: pinned, never learnt.
    #[serde(deserialize_with = "parsed")]
    pub host_key: SshHostKey,
}

fn default_ssh_port() -> u16 {
    22
}

/// A switch the hosts' ports are on.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Switch {
    pub name: SwitchName,
    pub kind: SwitchKind,
    /// `host[:port]` (SSH: Cisco), `https://` URL (AOS-CX, OPNsense),
    /// `unix:/path` or `tcp:ip:port` (OVSDB; omitted: the local socket).
    pub address: Option<String>,
    pub credentials: Option<SwitchCredentials>,
    /// The VLAN of the provisioning network on access ports.
    pub access_vlan: VlanId,
    /// Use LACP fallback where the switch has it (see the example).
    #[serde(default)]
    pub lacp_fallback: bool,
    /// The OVS bridge (ovs only).
    #[serde(default, deserialize_with = "parsed_opt")]
    pub bridge: Option<InterfaceName>,
    /// The LLDP chassis id the switch announces (a MAC, chassis id subtype
    /// 4). Given: an LLDP neighbour is this switch when its chassis id is
    /// this one; omitted: when the system name it announces is `name`.
    #[serde(default, deserialize_with = "parsed_opt")]
    pub chassis_id: Option<MacAddress>,
    /// The switch's SSH host key, `<type> SHA256:<fingerprint>` as
    /// `ssh-keygen -l -E sha256` prints it (cisco-ios, cisco-nxos):
    /// pinned, never learnt.
    #[serde(default, deserialize_with = "parsed_opt")]
    pub host_key: Option<SshHostKey>,
    /// A CA (PEM) to trust for an `https://` address (aruba-aoscx); else
    /// the built-in roots.
    #[serde(default)]
    pub ca_file: Option<FilePath>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SwitchKind {
    #[serde(rename = "ovs")]
    Ovs,
    #[serde(rename = "cisco-ios")]
    CiscoIos,
    #[serde(rename = "cisco-nxos")]
    CiscoNxos,
    #[serde(rename = "aruba-aoscx")]
    ArubaAoscx,
    #[serde(rename = "opnsense")]
    Opnsense,
}

impl SwitchKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            SwitchKind::Ovs => "ovs",
            SwitchKind::CiscoIos => "cisco-ios",
            SwitchKind::CiscoNxos => "cisco-nxos",
            SwitchKind::ArubaAoscx => "aruba-aoscx",
            SwitchKind::Opnsense => "opnsense",
        }
    }

    /// Whether the switch can keep a LAG forwarding on one member while no
    /// partner speaks LACP (OVS `lacp-fallback-ab`, AOS-CX `lacp fallback`,
    /// NX-OS `no lacp suspend-individual`).
    pub fn has_lacp_fallback(&self) -> bool {
        matches!(
            self,
            SwitchKind::Ovs | SwitchKind::ArubaAoscx | SwitchKind::CiscoNxos
        )
    }
}

/// The hosts the site expects, and those pinned by MAC.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hosts {
    pub bootstrap: usize,
    pub control_plane: usize,
    pub workers: usize,
    #[serde(default)]
    pub pinned: Vec<PinnedHost>,
}

impl Hosts {
    pub fn count(&self, role: Role) -> usize {
        match role {
            Role::Bootstrap => self.bootstrap,
            Role::ControlPlane => self.control_plane,
            Role::Worker => self.workers,
        }
    }

    pub fn total(&self) -> usize {
        self.bootstrap + self.control_plane + self.workers
    }
}

/// A host known in advance by the MAC it PXE boots from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinnedHost {
    #[serde(deserialize_with = "parsed")]
    pub mac: MacAddress,
    #[serde(deserialize_with = "parsed")]
    pub role: Role,
    /// The short host name (a DNS label); DNS has
    /// `<hostname>.<cluster.name>.<cluster.base_domain>`.
    #[serde(deserialize_with = "parsed")]
    pub hostname: Hostname,
    /// Its DHCP reservation on the provisioning subnet.
    pub ip: Ipv4Addr,
    /// The switch ports its NICs are cabled to.
    #[serde(default)]
    pub switch_ports: Vec<PortRef>,
}

/// One port of one switch of `switches`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortRef {
    pub switch: SwitchName,
    pub port: PortName,
    /// The MAC of the host's NIC cabled to this port, when known: LLDP must
    /// then see this NIC on this port (a MAC, not an interface name: names
    /// differ between the discovery image and the installed OS).
    #[serde(default, deserialize_with = "parsed_opt")]
    pub nic: Option<MacAddress>,
}

/// Keys Harmony uses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ssh {
    /// The private key Harmony logs in to hosts with.
    pub operator_key_file: FilePath,
    /// The public key installed on the cluster's nodes (install-config `sshKey`).
    pub cluster_public_key_file: FilePath,
}
