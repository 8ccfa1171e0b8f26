//! The site (Topology) and its capability traits. A Score that needs a
//! capability bounds its topology type by the trait; implementations live in
//! `infra` and are tested against the real programs.
//!
//! Every operation is idempotent and reports whether it changed anything.

use std::net::IpAddr;

use async_trait::async_trait;

use super::values::{
    DevicePath, Hostname, HttpUrl, InterfaceName, MacAddress, RelativePath, Sha256Digest,
};

/// Whether an operation changed the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Applied,
    Unchanged,
}

/// A capability failed against the real system.
#[derive(Debug, thiserror::Error)]
#[error("{capability}: {message}")]
pub struct CapabilityError {
    pub capability: &'static str,
    pub message: String,
}

impl CapabilityError {
    pub fn new(capability: &'static str, message: impl Into<String>) -> Self {
        Self {
            capability,
            message: message.into(),
        }
    }
}

pub type CapResult<T> = Result<T, CapabilityError>;

/// A site Harmony acts on.
pub trait Topology: Send + Sync + 'static {
    fn name(&self) -> &str;
}

/// A fixed address for a MAC, with the host name DHCP hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpReservation {
    pub mac: MacAddress,
    pub ip: IpAddr,
    pub hostname: Hostname,
}

#[async_trait]
pub trait DhcpServer: Topology {
    async fn reserve(&self, reservation: &DhcpReservation) -> CapResult<Change>;
    async fn release(&self, mac: &MacAddress) -> CapResult<Change>;
    async fn reservations(&self) -> CapResult<Vec<DhcpReservation>>;
}

/// Files served over TFTP to firmware that cannot speak HTTP.
#[async_trait]
pub trait TftpServer: Topology {
    async fn put_tftp_file(&self, name: &str, contents: &[u8]) -> CapResult<Change>;
}

/// The HTTP root booting hosts download from (iPXE scripts, kernels, Ignition).
#[async_trait]
pub trait HttpServer: Topology {
    /// Writes atomically under the root (temp file, fsync, rename);
    /// `Unchanged` when the file already has these contents.
    async fn put_file(&self, path: &RelativePath, contents: &[u8]) -> CapResult<Change>;
    /// Moves a finished local file (e.g. a verified download) into place.
    async fn put_file_from(
        &self,
        path: &RelativePath,
        source: &std::path::Path,
    ) -> CapResult<Change>;
    async fn remove_file(&self, path: &RelativePath) -> CapResult<Change>;
    /// The regular files directly under `dir` (not recursive), sorted;
    /// empty when `dir` does not exist. Names that are not valid
    /// [`RelativePath`]s (temp files, odd names) are left out.
    async fn list_files(&self, dir: &RelativePath) -> CapResult<Vec<RelativePath>>;
    /// Moves a served file out of the root to the local path `dest` (the
    /// inverse of `put_file_from`: undoing a placed multi-GiB asset keeps
    /// it for the next run instead of deleting it). `Unchanged` when absent.
    async fn take_file(&self, path: &RelativePath, dest: &std::path::Path) -> CapResult<Change>;
    /// The SHA-256 of a served file, `None` when absent. Implementations
    /// may answer from a cache keyed by size and modification time.
    async fn file_sha256(&self, path: &RelativePath) -> CapResult<Option<Sha256Digest>>;
    /// A local directory on the same filesystem as the root, kept between
    /// runs, where large files are prepared (downloads, ISO extraction)
    /// before `put_file_from` renames them into place.
    async fn staging_dir(&self) -> CapResult<std::path::PathBuf>;
    /// The contents of a served file, `None` when absent.
    async fn read_file(&self, path: &RelativePath) -> CapResult<Option<Vec<u8>>>;
    /// The URL hosts use for `path`.
    fn url_for(&self, path: &RelativePath) -> HttpUrl;
    /// The URL of the root itself (ends with `/`).
    fn base_url(&self) -> HttpUrl;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    pub name: Hostname,
    pub ip: IpAddr,
}

#[async_trait]
pub trait DnsServer: Topology {
    async fn set_record(&self, record: &DnsRecord) -> CapResult<Change>;
    async fn remove_record(&self, name: &Hostname) -> CapResult<Change>;
    async fn records(&self) -> CapResult<Vec<DnsRecord>>;
}

/// A TCP service and its backends (e.g. API 6443, machine config 22623).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancerService {
    pub name: String,
    pub port: u16,
    pub backends: Vec<(Hostname, IpAddr)>,
}

#[async_trait]
pub trait LoadBalancer: Topology {
    async fn set_service(&self, service: &LoadBalancerService) -> CapResult<Change>;
    async fn services(&self) -> CapResult<Vec<LoadBalancerService>>;
}

/// A switch port, as the switch names it (e.g. `1/1/3`, `Ethernet12`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SwitchPort(pub String);

/// How a set of ports is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortMode {
    /// Plain access ports (PXE works).
    Access { vlan: u16 },
    /// One LACP link aggregation over the ports.
    Lacp { lag_id: u16, vlan: u16 },
}

/// What the switch reports for a LAG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LagStatus {
    pub lag_id: u16,
    /// Ports with an LACP partner in collecting/distributing state.
    pub active_ports: Vec<SwitchPort>,
    pub negotiated: bool,
}

#[async_trait]
pub trait Switch: Topology {
    async fn port_mode(&self, ports: &[SwitchPort]) -> CapResult<PortMode>;
    async fn set_port_mode(&self, ports: &[SwitchPort], mode: &PortMode) -> CapResult<Change>;
    async fn lag_status(&self, lag_id: u16) -> CapResult<LagStatus>;
}

/// Output of a remote command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    pub exit_status: Option<u32>,
    pub stdout: String,
    pub stderr: String,
}

/// SSH to hosts, with pinned host keys.
#[async_trait]
pub trait RemoteShell: Topology {
    async fn run(&self, host: IpAddr, command: &RemoteCommand) -> CapResult<CommandOutput>;
}

/// The commands Harmony runs on hosts: a closed set, never a string built
/// from agent data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteCommand {
    Reboot,
    WipeDisk { device: DevicePath },
    LinkState { interface: InterfaceName },
}
