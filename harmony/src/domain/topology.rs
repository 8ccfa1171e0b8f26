//! The site (Topology) and its capability traits. A Score that needs a
//! capability bounds its topology type by the trait; implementations live in
//! `infra` and are tested against the real programs.
//!
//! Every operation is idempotent and reports whether it changed anything.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::values::{
    DevicePath, DnsName, HostId, Hostname, HttpUrl, InterfaceName, MacAddress, RelativePath,
    Sha256Digest, ValueError,
};

/// Whether an operation changed the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Applied,
    Unchanged,
}

impl Change {
    /// `Applied` when `changed`, else `Unchanged`.
    pub fn applied_if(changed: bool) -> Self {
        if changed {
            Self::Applied
        } else {
            Self::Unchanged
        }
    }
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

    /// The site's DHCP server, when it has one: discovery probes its
    /// leased addresses first on every round and sweeps the whole range
    /// less often. A topology that implements [`DhcpServer`] returns
    /// `Some(self)`.
    fn dhcp(&self) -> Option<&dyn DhcpServer> {
        None
    }

    /// What the site's services saw of hosts booting (the HTTP access log):
    /// the installation follows each host's install by the files it fetches.
    /// `None`: the site cannot tell, and waits on those are skipped.
    fn pxe_evidence(&self) -> Option<&dyn PxeEvidence> {
        None
    }
}

/// A fixed address for a MAC, with the host name DHCP hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpReservation {
    pub mac: MacAddress,
    pub ip: IpAddr,
    pub hostname: Hostname,
}

/// An address the DHCP server has handed out (read from its lease file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpLease {
    pub mac: MacAddress,
    pub ip: IpAddr,
    /// The name the client sent or was given; `None` when it had none.
    pub hostname: Option<Hostname>,
    /// When the lease ends; `None` for a lease that never does.
    pub expires: Option<SystemTime>,
}

#[async_trait]
pub trait DhcpServer: Topology {
    async fn reserve(&self, reservation: &DhcpReservation) -> CapResult<Change>;
    /// Reserves several at once: `Applied` when any changed. The default
    /// calls [`DhcpServer::reserve`] for each; servers that reload per
    /// change override it to write and reload once (all or nothing).
    async fn reserve_many(&self, reservations: &[DhcpReservation]) -> CapResult<Change> {
        let mut change = Change::Unchanged;
        for r in reservations {
            if self.reserve(r).await? == Change::Applied {
                change = Change::Applied;
            }
        }
        Ok(change)
    }
    async fn release(&self, mac: &MacAddress) -> CapResult<Change>;
    async fn reservations(&self) -> CapResult<Vec<DhcpReservation>>;
    /// The current leases (reserved and dynamic); lines of the lease store
    /// that do not validate are left out (and logged), never an error.
    async fn leases(&self) -> CapResult<Vec<DhcpLease>>;
}

/// Files served over TFTP to firmware that cannot speak HTTP.
#[async_trait]
pub trait TftpServer: Topology {
    async fn put_tftp_file(&self, path: &RelativePath, contents: &[u8]) -> CapResult<Change>;
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

/// An address record (A or AAAA; exact names also answer the PTR). A
/// wildcard name (`*.apps...`) answers for every name below its base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    pub name: DnsName,
    pub ip: IpAddr,
}

#[async_trait]
pub trait DnsServer: Topology {
    /// Sets the one address of `record.name` (replacing another).
    async fn set_record(&self, record: &DnsRecord) -> CapResult<Change>;
    /// Sets several records at once: `Applied` when any changed. The
    /// default calls [`DnsServer::set_record`] for each; servers that
    /// reload per change override it to write and reload once.
    async fn set_records(&self, records: &[DnsRecord]) -> CapResult<Change> {
        let mut change = Change::Unchanged;
        for r in records {
            if self.set_record(r).await? == Change::Applied {
                change = Change::Applied;
            }
        }
        Ok(change)
    }
    async fn remove_record(&self, name: &DnsName) -> CapResult<Change>;
    async fn records(&self) -> CapResult<Vec<DnsRecord>>;
}

/// The name of a load-balanced service (e.g. `api`, `ingress-https`): 1 to
/// 32 of `[a-z0-9-]`, starting with a letter. Load balancers use it as
/// their frontend and backend names, so it is validated here.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LbServiceName(String);

impl LbServiceName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A name Harmony itself chose (a constant). Checked in debug builds.
    pub(crate) fn from_trusted(s: &str) -> Self {
        debug_assert!(s.parse::<LbServiceName>().is_ok(), "invalid name {s:?}");
        Self(s.to_string())
    }
}

impl FromStr for LbServiceName {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = (1..=32).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
        if !ok {
            return Err(ValueError::new(
                "load balancer service name",
                s,
                "must be 1 to 32 of a-z 0-9 -, starting with a letter",
            ));
        }
        Ok(Self(s.to_string()))
    }
}

impl fmt::Display for LbServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a load balancer forwards: only plain TCP (OKD's API, machine
/// config server and ingress pass TLS through).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbMode {
    Tcp,
}

/// An active health check: a TCP connect every `inter`; `fall` failures in
/// a row take a backend out, `rise` successes put it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LbHealthCheck {
    pub inter: Duration,
    pub fall: u8,
    pub rise: u8,
}

impl Default for LbHealthCheck {
    /// Every 2 s, out after 3 failures, back after 2 successes.
    fn default() -> Self {
        Self {
            inter: Duration::from_secs(2),
            fall: 3,
            rise: 2,
        }
    }
}

/// One backend of a service: a host and where it listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbBackend {
    pub hostname: Hostname,
    pub ip: IpAddr,
    pub port: u16,
}

/// A service: its frontend address, mode, backends and health check (e.g.
/// API 6443, machine config 22623, ingress 80/443). Backend host names are
/// unique within a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancerService {
    pub name: LbServiceName,
    pub bind: SocketAddr,
    pub mode: LbMode,
    pub backends: Vec<LbBackend>,
    /// `None`: backends are never taken out.
    pub health_check: Option<LbHealthCheck>,
}

#[async_trait]
pub trait LoadBalancer: Topology {
    /// Creates or replaces the service of this name.
    async fn set_service(&self, service: &LoadBalancerService) -> CapResult<Change>;
    /// Takes one backend out of a service (e.g. the bootstrap once the
    /// control plane is up); `Unchanged` when it is not there.
    async fn remove_backend(
        &self,
        service: &LbServiceName,
        backend: &Hostname,
    ) -> CapResult<Change>;
    /// `Unchanged` when there is no such service.
    async fn remove_service(&self, service: &LbServiceName) -> CapResult<Change>;
    /// What is configured now, sorted by name.
    async fn services(&self) -> CapResult<Vec<LoadBalancerService>>;
}

pub use super::switch::{
    ChangeFailure, FoundState, LacpOptions, LacpPartner, LagId, PortList, PortMode, PortStatus,
    Restore, SwitchCapabilities, SwitchError, SwitchPort, VlanId, WantedState,
};

/// The switch ports hosts are cabled to: access mode for PXE, an LACP LAG
/// once the installed OS has its bond up (the PXE/LACP rule; the module
/// [`super::switch`] says what LACP fallback means for PXE).
///
/// Every change is read back and verified against the state asked for; when
/// it does not hold, the ports are put back as they were and the error
/// ([`SwitchError::ChangeFailed`]) names the switch, the ports, the wanted
/// and the found state, and whether the restore worked. A change to a state
/// already in place is `Unchanged`.
#[async_trait]
pub trait Switch: Topology {
    /// The switch, for messages (e.g. `ovs bridge sw`, `leaf-1`).
    fn switch_name(&self) -> &str;

    fn capabilities(&self) -> SwitchCapabilities;

    /// The status of each port, in the order asked.
    async fn get_port_status(&self, ports: &[SwitchPort]) -> Result<Vec<PortStatus>, SwitchError>;

    /// Makes `ports` plain access ports in `vlan`; a LAG they form is
    /// dissolved (all its members must be named).
    async fn set_ports_access_mode(
        &self,
        ports: &[SwitchPort],
        vlan: VlanId,
    ) -> Result<Change, SwitchError>;

    /// Makes `ports` exactly the members of LACP LAG `lag` (active LACP,
    /// fast timer), untagged in `vlan`; `options` asks for fallback and for
    /// the partner to be verified too.
    async fn set_ports_lacp_mode(
        &self,
        ports: &[SwitchPort],
        lag: LagId,
        vlan: VlanId,
        options: LacpOptions,
    ) -> Result<Change, SwitchError>;
}

impl From<SwitchError> for CapabilityError {
    fn from(e: SwitchError) -> Self {
        CapabilityError::new("switch", e.to_string())
    }
}

/// Limits of one remote command: how long it may run (connection and
/// authentication have their own limits) and how many bytes of each of
/// stdout and stderr are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimits {
    pub timeout: Duration,
    pub max_output: usize,
}

impl Default for RunLimits {
    /// One minute, 1 MiB per stream.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            max_output: 1 << 20,
        }
    }
}

/// Output of a remote command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// The exit status; `None` when the command was ended by a signal.
    pub exit_status: Option<u32>,
    /// The signal that ended it (e.g. `KILL`), when it did not exit.
    pub exit_signal: Option<String>,
    pub stdout: String,
    pub stderr: String,
    /// A stream was longer than [`RunLimits::max_output`]: its end was
    /// dropped and a marker saying how much ends the stream.
    pub truncated: bool,
}

impl CommandOutput {
    /// It exited with status 0.
    pub fn success(&self) -> bool {
        self.exit_status == Some(0)
    }
}

/// A host Harmony runs commands on: its identity (the key of its pinned
/// host key) and the address it answers on now.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemoteHost {
    pub id: HostId,
    pub ip: IpAddr,
    /// Which of the host's systems answers: the discovery environment or
    /// the installed OS (another user, privileged commands through sudo).
    pub login: Login,
}

impl RemoteHost {
    /// A host in the discovery environment (root, as `inventory.ks` sets up).
    pub fn discovery(id: HostId, ip: IpAddr) -> Self {
        Self {
            id,
            ip,
            login: Login::Discovery,
        }
    }

    /// A host running its installed OS (SCOS: `core`, with sudo).
    pub fn installed(id: HostId, ip: IpAddr) -> Self {
        Self {
            id,
            ip,
            login: Login::Installed,
        }
    }
}

/// Which system of a host Harmony logs in to. The two have different host
/// keys and users: the discovery environment's root, the installed OS's
/// administrator (SCOS `core`), whose privileged commands go through
/// `sudo -n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Login {
    #[default]
    Discovery,
    Installed,
}

impl fmt::Display for RemoteHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.id, self.ip)
    }
}

/// What [`RemoteShell::reboot`] confirms after issuing the reboot. The
/// host going down (its SSH port no longer answering) is always confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebootConfirm {
    /// Only that it went down.
    Down,
    /// That it went down and its SSH port answers again.
    BackUp,
    /// That it went down and then started a network boot, seen by a
    /// [`PxeEvidence`] source (DHCP leases, the HTTP access log).
    StartedPxe,
}

/// What a confirmed reboot took, counted from when it was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebootReport {
    pub down_after: Duration,
    /// With [`RebootConfirm::BackUp`].
    pub up_after: Option<Duration>,
    /// With [`RebootConfirm::StartedPxe`].
    pub pxe_after: Option<Duration>,
}

/// SSH to hosts, with pinned host keys (see [`HostKeyPins`]).
#[async_trait]
pub trait RemoteShell: Topology {
    /// Runs one command of the closed set within `limits`; a non-zero exit
    /// status is an answer, not an error. [`RemoteCommand::Reboot`] drops
    /// the connection: use [`RemoteShell::reboot`].
    async fn run(
        &self,
        host: &RemoteHost,
        command: &RemoteCommand,
        limits: RunLimits,
    ) -> CapResult<CommandOutput>;

    /// Issues the reboot (the expected disconnect is success), then
    /// confirms, with bounded polling, that the host went down and, per
    /// `confirm`, came back or started to PXE.
    async fn reboot(&self, host: &RemoteHost, confirm: RebootConfirm) -> CapResult<RebootReport>;

    /// Forgets the host key pinned for `host` after Harmony rebooted it into
    /// another system (the installer and installed OS, or a new discovery
    /// environment, each with its own keys); the next contact pins the new
    /// key, still only for a discovered host. Whether a key was pinned. A
    /// shell that pins no keys has nothing to forget.
    async fn forget_host_key(&self, host: &HostId) -> CapResult<bool> {
        let _ = host;
        Ok(false)
    }

    /// Whether an SSH server answers at `host` now (its banner, within the
    /// shell's probe time): a host that just booted is waited for with this
    /// before a command is run, so a failed command is never retried.
    async fn answers(&self, host: &RemoteHost) -> CapResult<bool>;
}

/// The commands Harmony runs on hosts: a closed set, never a string built
/// from agent data. Each renders to one fixed command line from its typed,
/// validated values (quoted all the same) in `infra::ssh`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteCommand {
    Reboot,
    WipeDisk {
        device: DevicePath,
    },
    LinkState {
        interface: InterfaceName,
    },
    /// Reads `/proc/net/bonding/<bond>` (parsed by
    /// [`super::bond_status::parse_bond_status`]): the bond's mode, its
    /// slaves' MII status and aggregators, the LACP partner.
    BondStatus {
        bond: InterfaceName,
    },
}

/// Evidence that a host started a network boot since a moment: a DHCP
/// lease handed to one of its MACs, a request for its boot script in the
/// HTTP access log. The hook [`RebootConfirm::StartedPxe`] uses; the site
/// services provide it.
#[async_trait]
pub trait PxeEvidence: Send + Sync + fmt::Debug {
    async fn pxe_started_since(&self, host: &RemoteHost, since: SystemTime) -> CapResult<bool>;

    /// Whether `path` was fetched whole since `since`: by `client`, or by
    /// anyone when `any_client` (a path only one host asks for: its per-MAC
    /// script, its Ignition).
    async fn fetched_since(
        &self,
        client: IpAddr,
        path: &RelativePath,
        any_client: bool,
        since: SystemTime,
    ) -> CapResult<bool>;
}

/// The SHA-256 fingerprint of an SSH host key as OpenSSH prints it:
/// `SHA256:` and 43 characters of unpadded base64.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostKeyFingerprint(String);

impl HostKeyFingerprint {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for HostKeyFingerprint {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = s.strip_prefix("SHA256:").is_some_and(|b| {
            b.len() == 43
                && b.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
        });
        if !ok {
            return Err(ValueError::new(
                "host key fingerprint",
                s,
                "must be SHA256: and 43 characters of base64",
            ));
        }
        Ok(Self(s.to_string()))
    }
}

impl fmt::Display for HostKeyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An SSH key algorithm name (`ssh-ed25519`, `ssh-rsa`,
/// `ecdsa-sha2-nistp256`): 1 to 64 of `[a-z0-9@.-]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostKeyType(String);

impl HostKeyType {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for HostKeyType {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'@' | b'.' | b'-')
            });
        if !ok {
            return Err(ValueError::new(
                "host key type",
                s,
                "must be 1 to 64 of a-z 0-9 @ . -",
            ));
        }
        Ok(Self(s.to_string()))
    }
}

impl fmt::Display for HostKeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A host key as Harmony pins it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    pub key_type: HostKeyType,
    pub fingerprint: HostKeyFingerprint,
}

impl fmt::Display for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.key_type, self.fingerprint)
    }
}

/// The host key pinned for a host, and when it was first seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedHostKey {
    pub key: HostKey,
    pub first_seen: SystemTime,
}

/// What [`HostKeyPins::pin_first_key`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinOutcome {
    /// The key is now pinned (first contact).
    Pinned,
    /// A key was already pinned (perhaps another, which the caller refuses).
    AlreadyPinned(PinnedHostKey),
    /// Harmony did not discover this host (no MACs of it in the
    /// inventory): nothing pinned, its key is not to be trusted.
    NotDiscovered,
}

/// The host-key pin store failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("host key store: {0}")]
pub struct HostKeyStoreError(pub String);

/// Host keys pinned per host (the store implements it).
pub trait HostKeyPins: Send + Sync + fmt::Debug {
    fn pinned_key(&self, host: &HostId) -> Result<Option<PinnedHostKey>, HostKeyStoreError>;
    /// Pins `key` for `host` if it has none and Harmony discovered it, in
    /// one transaction (two first contacts cannot both win).
    fn pin_first_key(
        &self,
        host: &HostId,
        key: &HostKey,
        at: SystemTime,
    ) -> Result<PinOutcome, HostKeyStoreError>;
    /// Forgets the pinned key (a reinstalled host has a new one); whether
    /// there was one.
    fn forget_key(&self, host: &HostId) -> Result<bool, HostKeyStoreError>;
}

pub use super::cluster::{
    ClusterApiError, ClusterNode, CsrDecision, CsrKind, CsrName, CsrRequest, CsrSigner, CsrState,
    CsrVerdict, NodeCsr, ReadyStatus, WorkerIdentity, decide_csr, decide_csrs,
};

/// The cluster's Kubernetes API, as the OKD installation steps use it
/// (`/work/shared/notes/vendor-apis.md` §5): whether the bootstrap is
/// complete, the nodes' certificate signing requests and their approval
/// (which ones: [`decide_csrs`]), and whether control-plane nodes take
/// workloads. Every call has a time limit; an error names the endpoint and
/// the API server's `Status.message`.
#[async_trait]
pub trait ClusterApi: Topology {
    /// The API server's URL, for messages.
    fn api_server(&self) -> &str;

    /// Whether the API server answers `GET /version` (documented
    /// Kubernetes endpoint) with a version: `false` while nothing answers
    /// (connection refused or closed, no answer in time, the API server
    /// starting: 429 or 5xx); an error when it refuses us (401, 403, TLS)
    /// or answers something else.
    async fn api_answers(&self) -> Result<bool, ClusterApiError>;

    /// The cluster's nodes (`GET /api/v1/nodes`): each name validated as a
    /// [`Hostname`] (a bad one is an error naming it) and its `Ready`
    /// condition.
    async fn nodes(&self) -> Result<Vec<ClusterNode>, ClusterApiError>;

    /// Whether the `kube-system/bootstrap` ConfigMap says `status:
    /// complete`, as `openshift-install wait-for bootstrap-complete` checks
    /// it [K1][K2]; `false` while the ConfigMap is absent.
    async fn bootstrap_complete(&self) -> Result<bool, ClusterApiError>;

    /// The CertificateSigningRequests that are pending (no condition yet),
    /// with their requests parsed. Objects that cannot be represented (an
    /// invalid name) are left out and logged.
    async fn pending_csrs(&self) -> Result<Vec<NodeCsr>, ClusterApiError>;

    /// Approves `csr` as `kubectl certificate approve` does [K3]: the
    /// current object with an `Approved` condition appended (`message` is
    /// the condition's message, e.g. the policy's note), PUT to its
    /// `approval` subresource, retried on conflicts. `Unchanged` when it is
    /// already approved; an error when it was denied, failed or replaced
    /// by another object of the same name.
    async fn approve_csr(&self, csr: &NodeCsr, message: &str) -> Result<Change, ClusterApiError>;

    /// `spec.mastersSchedulable` of the `config.openshift.io/v1`
    /// `Scheduler` named `cluster` (absent means `false`) [K6].
    async fn masters_schedulable(&self) -> Result<bool, ClusterApiError>;

    /// Sets `spec.mastersSchedulable` with a merge patch, read first:
    /// `Unchanged` (no patch) when it already has that value.
    async fn set_masters_schedulable(&self, schedulable: bool) -> Result<Change, ClusterApiError>;
}

impl From<ClusterApiError> for CapabilityError {
    fn from(e: ClusterApiError) -> Self {
        CapabilityError::new("cluster api", e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_and_key_types_are_validated() {
        let fp = "SHA256:tK/H8tzEV/c29/EWam196aqu/42IWxDTm4pl2wKLHa4";
        assert_eq!(fp.parse::<HostKeyFingerprint>().unwrap().as_str(), fp);
        for bad in [
            "",
            "SHA256:",
            "MD5:aa",
            "SHA256:tK/H8tzEV/c29/EWam196aqu/42IWxDTm4pl2wKLHa4=",
            "SHA256:tK/H8tzEV/c29/EWam196aqu/42IWxDTm4pl2wKLH;4",
        ] {
            assert!(bad.parse::<HostKeyFingerprint>().is_err(), "{bad:?}");
        }
        assert!("ssh-ed25519".parse::<HostKeyType>().is_ok());
        assert!("sk-ssh-ed25519@openssh.com".parse::<HostKeyType>().is_ok());
        for bad in ["", "ssh ed25519", "SSH-RSA", "a;b"] {
            assert!(bad.parse::<HostKeyType>().is_err(), "{bad:?}");
        }
    }
}
