//! The Inventory: the hosts Harmony knows, with the hardware their agents
//! reported, their role and install phase. The domain defines the records
//! and the repository trait; `store` implements it on SQLite.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use super::events::{Event, EventBus};
use super::hardware::HostHardware;
use super::roles::{RolePlan, RoleProblem};
use super::step_log::{MemoryStepLog, StepLog};
use super::values::{HostId, Hostname, InstallPhase, MacAddress, PhaseError, Role};

/// A host as discovery validated it: ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoveredHost {
    pub id: HostId,
    /// Where the agent answered.
    pub ip: IpAddr,
    /// Permanent (else current) MACs of the physical NICs, validated.
    pub macs: Vec<MacAddress>,
    /// The firmware identities the agent reported, valid ones only, in
    /// order of preference: `uuid:` (placeholders never), then `serial:`.
    /// `id` is the first of these, else the MACs; the store falls back to
    /// the next when another host with none of these MACs has one of them
    /// (boards that ship one UUID or serial for every unit).
    pub firmware_ids: Vec<HostId>,
    /// What the agent reported, typed (identifiers parsed, free text safe).
    pub hardware: HostHardware,
    /// The exact bytes the agent served (kept for audit).
    pub raw_json: Vec<u8>,
}

/// The columns the TUI and CLI show without parsing the whole document
/// (computed from the typed hardware; vendor and product are safe text).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostSummary {
    pub vendor: Option<String>,
    pub product: Option<String>,
    pub cpu_threads: Option<u32>,
    pub memory_bytes: Option<u64>,
    pub disk_count: u32,
    pub disk_bytes: u64,
    pub nic_count: u32,
}

impl HostSummary {
    pub fn from_hardware(hw: &HostHardware) -> Self {
        Self {
            vendor: hw.system.vendor.as_ref().map(ToString::to_string),
            product: hw.system.product.as_ref().map(ToString::to_string),
            cpu_threads: hw.cpu.threads,
            memory_bytes: hw.memory.total_bytes,
            disk_count: u32::try_from(hw.disks.len()).unwrap_or(u32::MAX),
            disk_bytes: hw.disk_bytes(),
            nic_count: u32::try_from(hw.physical_nics().count()).unwrap_or(u32::MAX),
        }
    }
}

/// A stored host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostRecord {
    pub id: HostId,
    pub ip: IpAddr,
    pub macs: Vec<MacAddress>,
    pub first_seen: SystemTime,
    pub last_seen: SystemTime,
    pub role: Option<Role>,
    pub hostname: Option<Hostname>,
    pub phase: InstallPhase,
    pub summary: HostSummary,
    pub hardware: HostHardware,
    /// Warnings about the record itself (not about a role): see [`HostFlag`].
    pub flags: Vec<HostFlag>,
}

/// Something an operator should know about a stored host, whatever its
/// role; the CLI and the TUI show it beside the fitness problems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostFlag {
    /// This host reported a firmware id (UUID or serial) that other hosts,
    /// with none of its MACs, reported too: it is not an identity for them,
    /// each is stored under its own id (the first firmware id no other host
    /// has, else its MACs).
    DuplicateFirmwareId {
        firmware_id: HostId,
        /// How many other stored hosts reported it.
        others: u32,
    },
}

impl std::fmt::Display for HostFlag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostFlag::DuplicateFirmwareId {
                firmware_id,
                others,
            } => write!(
                f,
                "duplicate firmware id {firmware_id} (also reported by {others} other host(s)); \
                 identified by its own id"
            ),
        }
    }
}

/// [`HostRecord::flags`] as lines for people.
pub fn flag_messages(rec: &HostRecord) -> Vec<String> {
    rec.flags.iter().map(ToString::to_string).collect()
}

/// The Inventory's display order: unassigned hosts first, then bootstrap,
/// control plane and workers, each by IP, then id.
pub fn sort_hosts(hosts: &mut [HostRecord]) {
    let rank = |r: Option<Role>| match r {
        None => 0u8,
        Some(Role::Bootstrap) => 1,
        Some(Role::ControlPlane) => 2,
        Some(Role::Worker) => 3,
    };
    hosts.sort_by(|a, b| (rank(a.role), a.ip, &a.id).cmp(&(rank(b.role), b.ip, &b.id)));
}

/// What an upsert did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpsertResult {
    /// A host never seen before.
    New,
    /// A known host; `ip_changed` when it came back on another address.
    Updated { ip_changed: bool },
    /// Another host already claims one of this host's MACs: nothing written.
    Conflict { mac: MacAddress, existing: HostId },
    /// A peer claims this host's identity (UUID, serial) with none of its
    /// MACs, or with another address or MACs once the host has a role:
    /// nothing written, the attempt is in the host's event log.
    IdentityConflict { existing: HostId, reason: String },
}

/// What storing one host of a scan did, and the id it is stored under
/// (its own id, or a fallback when its firmware id is shared: see
/// [`DiscoveredHost::firmware_ids`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upserted {
    pub id: HostId,
    pub result: UpsertResult,
}

/// One entry of a host's append-only event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEvent {
    pub host: HostId,
    pub at: SystemTime,
    pub kind: String,
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    #[error("no host {0}")]
    NotFound(HostId),
    #[error(transparent)]
    Phase(#[from] PhaseError),
    #[error("host {host}: {reason}")]
    Rejected { host: HostId, reason: String },
    /// The assignment would break the cluster's role counts.
    #[error("host {host}: cannot assign {role}: {problem}")]
    RoleCount {
        host: HostId,
        role: Role,
        problem: RoleProblem,
    },
    #[error("inventory store: {0}")]
    Backend(String),
}

/// Storage of the Inventory. Synchronous (SQLite); async callers use
/// `spawn_blocking`. Every write is one transaction.
pub trait InventoryRepository: Send + Sync + std::fmt::Debug {
    fn upsert_discovered(
        &self,
        host: &DiscoveredHost,
        seen_at: SystemTime,
    ) -> Result<UpsertResult, RepositoryError>;
    /// Several upserts in one transaction (what a scan finds); results in
    /// input order, as `upsert_discovered` would return them one by one.
    fn upsert_many(
        &self,
        hosts: &[DiscoveredHost],
        seen_at: SystemTime,
    ) -> Result<Vec<UpsertResult>, RepositoryError> {
        hosts
            .iter()
            .map(|h| self.upsert_discovered(h, seen_at))
            .collect()
    }
    /// [`InventoryRepository::upsert_many`] telling the id each host is
    /// stored under (a repository that resolves shared firmware ids may
    /// store a host under another id than [`DiscoveredHost::id`]).
    fn upsert_scan(
        &self,
        hosts: &[DiscoveredHost],
        seen_at: SystemTime,
    ) -> Result<Vec<Upserted>, RepositoryError> {
        Ok(hosts
            .iter()
            .zip(self.upsert_many(hosts, seen_at)?)
            .map(|(h, result)| Upserted {
                id: h.id.clone(),
                result,
            })
            .collect())
    }
    fn host(&self, id: &HostId) -> Result<Option<HostRecord>, RepositoryError>;
    /// All hosts, unassigned first, then by role and IP.
    fn hosts(&self) -> Result<Vec<HostRecord>, RepositoryError>;
    /// The last address of every host, in no particular order: what
    /// counting the hosts of a network needs, without reading their
    /// documents.
    fn addresses(&self) -> Result<Vec<std::net::IpAddr>, RepositoryError> {
        Ok(self.hosts()?.into_iter().map(|h| h.ip).collect())
    }
    /// Sets (or clears) the role and host name; moves the phase between
    /// `discovered` and `role-assigned` accordingly.
    fn assign(
        &self,
        id: &HostId,
        role: Option<Role>,
        hostname: Option<Hostname>,
    ) -> Result<HostRecord, RepositoryError>;
    /// A legal phase step; returns the previous phase.
    fn set_phase(&self, id: &HostId, phase: InstallPhase) -> Result<InstallPhase, RepositoryError>;
    fn events(&self, id: &HostId, limit: usize) -> Result<Vec<HostEvent>, RepositoryError>;
}

/// The Inventory handed to Interprets: the repository plus the event bus,
/// so that changes are both stored and announced.
#[derive(Debug, Clone)]
pub struct Inventory {
    repo: Arc<dyn InventoryRepository>,
    events: EventBus,
    steps: Arc<dyn StepLog>,
}

impl Inventory {
    /// With a step log in memory; see [`Inventory::with_step_log`].
    pub fn new(repo: Arc<dyn InventoryRepository>, events: EventBus) -> Self {
        Self {
            repo,
            events,
            steps: Arc::new(MemoryStepLog::default()),
        }
    }

    /// Where sagas record their steps (the store, so a crashed run resumes).
    pub fn with_step_log(mut self, log: Arc<dyn StepLog>) -> Self {
        self.steps = log;
        self
    }

    pub fn step_log(&self) -> &Arc<dyn StepLog> {
        &self.steps
    }

    pub fn repository(&self) -> &Arc<dyn InventoryRepository> {
        &self.repo
    }

    pub fn events(&self) -> &EventBus {
        &self.events
    }

    pub fn publish(&self, event: Event) {
        self.events.publish(event);
    }

    /// The role change rule, then [`InventoryRepository::assign`],
    /// announcing the phase change. A role is refused when it would exceed
    /// its count ([`RolePlan::check_assign`]: 1 bootstrap, 3 control-plane,
    /// any number of workers); clearing a role is always allowed.
    pub fn assign(
        &self,
        id: &HostId,
        role: Option<Role>,
        hostname: Option<Hostname>,
    ) -> Result<HostRecord, RepositoryError> {
        let hosts = self.repo.hosts()?;
        let before = hosts.iter().find(|h| &h.id == id).map(|h| h.phase);
        if before.is_none() {
            return Err(RepositoryError::NotFound(id.clone()));
        }
        if let Some(r) = role {
            RolePlan::new(hosts.iter().map(|h| (h.id.clone(), h.role)))
                .check_assign(id, r)
                .map_err(|problem| RepositoryError::RoleCount {
                    host: id.clone(),
                    role: r,
                    problem,
                })?;
        }
        let record = self.repo.assign(id, role, hostname)?;
        if let Some(from) = before
            && from != record.phase
        {
            self.publish(Event::HostPhaseChanged {
                host: id.clone(),
                from,
                to: record.phase,
            });
        }
        Ok(record)
    }

    /// [`InventoryRepository::set_phase`], announcing the change.
    pub fn set_phase(
        &self,
        id: &HostId,
        phase: InstallPhase,
    ) -> Result<InstallPhase, RepositoryError> {
        let from = self.repo.set_phase(id, phase)?;
        if from != phase {
            self.publish(Event::HostPhaseChanged {
                host: id.clone(),
                from,
                to: phase,
            });
        }
        Ok(from)
    }
}
