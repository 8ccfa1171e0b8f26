//! The installation's steps on one host's site services: its DHCP
//! reservation, its DNS names, its load-balancer backends, its reboots and
//! the waits on what it fetches, its install disk's wipe, and its install
//! phase in the Inventory.
//!
//! Every step reads the site first ([`Step::prepare`]): what is already in
//! place is `Unchanged`, and its undo data is what it found, so a failed run
//! puts the site back. A reboot or a wipe cannot be taken back: their undo
//! only marks the host failed, so a later run starts it over.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::plan::InstallHost;
use crate::domain::{
    DevicePath, DhcpReservation, DhcpServer, DnsName, DnsRecord, DnsServer, HostId, Hostname,
    InstallPhase, Inventory, LbBackend, LbServiceName, LoadBalancer, LoadBalancerService, Login,
    MacAddress, Prepared, RebootConfirm, RelativePath, RemoteCommand, RemoteHost, RemoteShell,
    RunLimits, Step, StepContext, StepError, StepKey, Topology, UndoData,
};

fn cap(e: impl ToString) -> StepError {
    StepError::new(e.to_string())
}

// ---------------------------------------------------------------------------
// DHCP

/// The host's fixed address for its PXE MAC.
#[derive(Debug, Clone)]
pub struct Reserve {
    pub host: InstallHost,
}

#[derive(Debug, Serialize, Deserialize)]
struct PreviousReservation {
    /// What the MAC had: `None` when it had no reservation.
    before: Option<(IpAddr, String)>,
}

fn reservation_of(host: &InstallHost) -> DhcpReservation {
    DhcpReservation {
        mac: host.pxe_mac,
        ip: host.ip,
        hostname: host.hostname.clone(),
    }
}

async fn current_reservation<T: DhcpServer>(
    site: &T,
    mac: &MacAddress,
) -> Result<Option<DhcpReservation>, StepError> {
    Ok(site
        .reservations()
        .await
        .map_err(cap)?
        .into_iter()
        .find(|r| &r.mac == mac))
}

async fn put_back_reservation<T: DhcpServer>(
    site: &T,
    mac: MacAddress,
    undo: &UndoData,
) -> Result<(), StepError> {
    let prev: PreviousReservation = undo.decode()?;
    match prev.before {
        None => {
            site.release(&mac).await.map_err(cap)?;
        }
        Some((ip, hostname)) => {
            let hostname: Hostname = hostname
                .parse()
                .map_err(|e| StepError::new(format!("undo data of {mac}: {e}")))?;
            site.reserve(&DhcpReservation { mac, ip, hostname })
                .await
                .map_err(cap)?;
        }
    }
    Ok(())
}

fn previous_reservation(r: Option<&DhcpReservation>) -> Result<UndoData, StepError> {
    Ok(UndoData::of(&PreviousReservation {
        before: r.map(|r| (r.ip, r.hostname.to_string())),
    })?)
}

#[async_trait]
impl<T: Topology + DhcpServer> Step<T> for Reserve {
    fn key(&self) -> StepKey {
        StepKey(format!("dhcp reservation of {}", self.host.id))
    }

    async fn prepare(&self, ctx: StepContext<'_, T>) -> Result<Prepared, StepError> {
        let want = reservation_of(&self.host);
        let now = current_reservation(ctx.topology, &want.mac).await?;
        if now.as_ref() == Some(&want) {
            return Ok(Prepared::Unchanged);
        }
        Ok(Prepared::Change {
            description: format!(
                "DHCP: reserve {} for {} ({}){}",
                want.ip,
                want.mac,
                want.hostname,
                now.as_ref()
                    .map(|r| format!(", replacing {} ({})", r.ip, r.hostname))
                    .unwrap_or_default()
            ),
            undo: previous_reservation(now.as_ref())?,
        })
    }

    async fn apply(&self, ctx: StepContext<'_, T>) -> Result<Option<String>, StepError> {
        ctx.topology
            .reserve(&reservation_of(&self.host))
            .await
            .map_err(cap)?;
        Ok(None)
    }

    async fn undo(&self, ctx: StepContext<'_, T>, undo: &UndoData) -> Result<(), StepError> {
        put_back_reservation(ctx.topology, self.host.pxe_mac, undo).await
    }
}

/// The host's reservation taken out (the bootstrap, once retired): its
/// next PXE boot gets an address from the dynamic range and boots into
/// discovery.
#[derive(Debug, Clone)]
pub struct Release {
    pub host: InstallHost,
}

#[async_trait]
impl<T: Topology + DhcpServer> Step<T> for Release {
    fn key(&self) -> StepKey {
        StepKey(format!("dhcp reservation of {} released", self.host.id))
    }

    async fn prepare(&self, ctx: StepContext<'_, T>) -> Result<Prepared, StepError> {
        let Some(now) = current_reservation(ctx.topology, &self.host.pxe_mac).await? else {
            return Ok(Prepared::Unchanged);
        };
        Ok(Prepared::Change {
            description: format!("DHCP: release {} ({}) of {}", now.ip, now.hostname, now.mac),
            undo: previous_reservation(Some(&now))?,
        })
    }

    async fn apply(&self, ctx: StepContext<'_, T>) -> Result<Option<String>, StepError> {
        ctx.topology
            .release(&self.host.pxe_mac)
            .await
            .map_err(cap)?;
        Ok(None)
    }

    async fn undo(&self, ctx: StepContext<'_, T>, undo: &UndoData) -> Result<(), StepError> {
        put_back_reservation(ctx.topology, self.host.pxe_mac, undo).await
    }
}

// ---------------------------------------------------------------------------
// DNS

/// Names that must resolve to given addresses (a node's name; the
/// cluster's `api`, `api-int` and `*.apps`).
#[derive(Debug, Clone)]
pub struct SetRecords {
    /// What the records are for, in the step's key (`node master-0`,
    /// `cluster`).
    pub what: String,
    pub records: Vec<DnsRecord>,
}

/// Names taken out (the bootstrap's, once retired).
#[derive(Debug, Clone)]
pub struct RemoveRecords {
    pub what: String,
    pub names: Vec<DnsName>,
}

#[derive(Debug, Serialize, Deserialize)]
struct PreviousRecords {
    /// Each name and the address it had (`None`: absent).
    before: Vec<(String, Option<IpAddr>)>,
}

async fn current_records<T: DnsServer>(site: &T) -> Result<BTreeMap<DnsName, IpAddr>, StepError> {
    Ok(site
        .records()
        .await
        .map_err(cap)?
        .into_iter()
        .map(|r| (r.name, r.ip))
        .collect())
}

async fn put_back_records<T: DnsServer>(site: &T, undo: &UndoData) -> Result<(), StepError> {
    let prev: PreviousRecords = undo.decode()?;
    for (name, ip) in prev.before {
        let name: DnsName = name
            .parse()
            .map_err(|e| StepError::new(format!("undo data: {e}")))?;
        match ip {
            None => {
                site.remove_record(&name).await.map_err(cap)?;
            }
            Some(ip) => {
                site.set_record(&DnsRecord { name, ip })
                    .await
                    .map_err(cap)?;
            }
        }
    }
    Ok(())
}

#[async_trait]
impl<T: Topology + DnsServer> Step<T> for SetRecords {
    fn key(&self) -> StepKey {
        StepKey(format!("dns records of {}", self.what))
    }

    async fn prepare(&self, ctx: StepContext<'_, T>) -> Result<Prepared, StepError> {
        let now = current_records(ctx.topology).await?;
        let differ: Vec<&DnsRecord> = self
            .records
            .iter()
            .filter(|r| now.get(&r.name) != Some(&r.ip))
            .collect();
        if differ.is_empty() {
            return Ok(Prepared::Unchanged);
        }
        let list: Vec<String> = differ
            .iter()
            .map(|r| format!("{} -> {}", r.name, r.ip))
            .collect();
        Ok(Prepared::Change {
            description: format!("DNS ({}): {}", self.what, list.join(", ")),
            undo: UndoData::of(&PreviousRecords {
                before: differ
                    .iter()
                    .map(|r| (r.name.to_string(), now.get(&r.name).copied()))
                    .collect(),
            })?,
        })
    }

    async fn apply(&self, ctx: StepContext<'_, T>) -> Result<Option<String>, StepError> {
        ctx.topology.set_records(&self.records).await.map_err(cap)?;
        Ok(None)
    }

    async fn undo(&self, ctx: StepContext<'_, T>, undo: &UndoData) -> Result<(), StepError> {
        put_back_records(ctx.topology, undo).await
    }
}

#[async_trait]
impl<T: Topology + DnsServer> Step<T> for RemoveRecords {
    fn key(&self) -> StepKey {
        StepKey(format!("dns records of {} removed", self.what))
    }

    async fn prepare(&self, ctx: StepContext<'_, T>) -> Result<Prepared, StepError> {
        let now = current_records(ctx.topology).await?;
        let present: Vec<(&DnsName, IpAddr)> = self
            .names
            .iter()
            .filter_map(|n| now.get(n).map(|ip| (n, *ip)))
            .collect();
        if present.is_empty() {
            return Ok(Prepared::Unchanged);
        }
        let list: Vec<String> = present
            .iter()
            .map(|(n, ip)| format!("{n} ({ip})"))
            .collect();
        Ok(Prepared::Change {
            description: format!("DNS ({}): remove {}", self.what, list.join(", ")),
            undo: UndoData::of(&PreviousRecords {
                before: present
                    .iter()
                    .map(|(n, ip)| (n.to_string(), Some(*ip)))
                    .collect(),
            })?,
        })
    }

    async fn apply(&self, ctx: StepContext<'_, T>) -> Result<Option<String>, StepError> {
        for name in &self.names {
            ctx.topology.remove_record(name).await.map_err(cap)?;
        }
        Ok(None)
    }

    async fn undo(&self, ctx: StepContext<'_, T>, undo: &UndoData) -> Result<(), StepError> {
        put_back_records(ctx.topology, undo).await
    }
}

// ---------------------------------------------------------------------------
// Load balancer

/// One backend in one load-balanced service (the service is created with
/// its frontend when absent).
#[derive(Debug, Clone)]
pub struct AddBackend {
    /// The service as it is created when absent (its backends ignored).
    pub service: LoadBalancerService,
    pub backend: LbBackend,
}

/// One backend taken out of a service (the bootstrap, once retired).
#[derive(Debug, Clone)]
pub struct RemoveBackend {
    pub service: LbServiceName,
    pub backend: Hostname,
}

#[derive(Debug, Serialize, Deserialize)]
struct PreviousBackend {
    /// The service existed before the step.
    service_existed: bool,
    /// The backend this step replaced or removed: (ip, port).
    before: Option<(IpAddr, u16)>,
}

async fn service_named<T: LoadBalancer>(
    site: &T,
    name: &LbServiceName,
) -> Result<Option<LoadBalancerService>, StepError> {
    Ok(site
        .services()
        .await
        .map_err(cap)?
        .into_iter()
        .find(|s| &s.name == name))
}

/// `service` with `backend` in place of any backend of the same host name.
fn with_backend(mut service: LoadBalancerService, backend: &LbBackend) -> LoadBalancerService {
    service.backends.retain(|b| b.hostname != backend.hostname);
    service.backends.push(backend.clone());
    service.backends.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    service
}

#[async_trait]
impl<T: Topology + LoadBalancer> Step<T> for AddBackend {
    fn key(&self) -> StepKey {
        StepKey(format!(
            "load balancer {} backend {}",
            self.service.name, self.backend.hostname
        ))
    }

    async fn prepare(&self, ctx: StepContext<'_, T>) -> Result<Prepared, StepError> {
        let now = service_named(ctx.topology, &self.service.name).await?;
        let found = now.as_ref().and_then(|s| {
            s.backends
                .iter()
                .find(|b| b.hostname == self.backend.hostname)
        });
        if found == Some(&self.backend) {
            return Ok(Prepared::Unchanged);
        }
        Ok(Prepared::Change {
            description: format!(
                "load balancer: {} ({}) gets backend {} at {}:{}{}",
                self.service.name,
                self.service.bind,
                self.backend.hostname,
                self.backend.ip,
                self.backend.port,
                if now.is_none() { " (new service)" } else { "" }
            ),
            undo: UndoData::of(&PreviousBackend {
                service_existed: now.is_some(),
                before: found.map(|b| (b.ip, b.port)),
            })?,
        })
    }

    async fn apply(&self, ctx: StepContext<'_, T>) -> Result<Option<String>, StepError> {
        let base = match service_named(ctx.topology, &self.service.name).await? {
            Some(s) => s,
            None => LoadBalancerService {
                backends: Vec::new(),
                ..self.service.clone()
            },
        };
        ctx.topology
            .set_service(&with_backend(base, &self.backend))
            .await
            .map_err(cap)?;
        Ok(None)
    }

    async fn undo(&self, ctx: StepContext<'_, T>, undo: &UndoData) -> Result<(), StepError> {
        let prev: PreviousBackend = undo.decode()?;
        let Some(now) = service_named(ctx.topology, &self.service.name).await? else {
            return Ok(());
        };
        if !prev.service_existed
            && now
                .backends
                .iter()
                .all(|b| b.hostname == self.backend.hostname)
        {
            ctx.topology
                .remove_service(&self.service.name)
                .await
                .map_err(cap)?;
            return Ok(());
        }
        match prev.before {
            None => {
                ctx.topology
                    .remove_backend(&self.service.name, &self.backend.hostname)
                    .await
                    .map_err(cap)?;
            }
            Some((ip, port)) => {
                let old = LbBackend {
                    hostname: self.backend.hostname.clone(),
                    ip,
                    port,
                };
                ctx.topology
                    .set_service(&with_backend(now, &old))
                    .await
                    .map_err(cap)?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl<T: Topology + LoadBalancer> Step<T> for RemoveBackend {
    fn key(&self) -> StepKey {
        StepKey(format!(
            "load balancer {} backend {} removed",
            self.service, self.backend
        ))
    }

    async fn prepare(&self, ctx: StepContext<'_, T>) -> Result<Prepared, StepError> {
        let now = service_named(ctx.topology, &self.service).await?;
        let Some(found) = now
            .as_ref()
            .and_then(|s| s.backends.iter().find(|b| b.hostname == self.backend))
        else {
            return Ok(Prepared::Unchanged);
        };
        Ok(Prepared::Change {
            description: format!(
                "load balancer: take {} ({}:{}) out of {}",
                self.backend, found.ip, found.port, self.service
            ),
            undo: UndoData::of(&PreviousBackend {
                service_existed: true,
                before: Some((found.ip, found.port)),
            })?,
        })
    }

    async fn apply(&self, ctx: StepContext<'_, T>) -> Result<Option<String>, StepError> {
        ctx.topology
            .remove_backend(&self.service, &self.backend)
            .await
            .map_err(cap)?;
        Ok(None)
    }

    async fn undo(&self, ctx: StepContext<'_, T>, undo: &UndoData) -> Result<(), StepError> {
        let prev: PreviousBackend = undo.decode()?;
        let (Some((ip, port)), Some(now)) = (
            prev.before,
            service_named(ctx.topology, &self.service).await?,
        ) else {
            return Ok(());
        };
        let back = LbBackend {
            hostname: self.backend.clone(),
            ip,
            port,
        };
        ctx.topology
            .set_service(&with_backend(now, &back))
            .await
            .map_err(cap)?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Install phases (the Inventory's record of where each host is)

async fn phase_of(inventory: &Inventory, id: &HostId) -> Result<InstallPhase, StepError> {
    let repo = inventory.repository().clone();
    let id2 = id.clone();
    let host = tokio::task::spawn_blocking(move || repo.host(&id2))
        .await
        .map_err(|e| StepError::new(format!("inventory task: {e}")))?
        .map_err(cap)?;
    host.map(|h| h.phase)
        .ok_or_else(|| StepError::new(format!("host {id} is no longer in the inventory")))
}

/// The legal path from `from` to `to` through the install phases (empty
/// when equal; `None` when there is none).
fn phase_path(from: InstallPhase, to: InstallPhase) -> Option<Vec<InstallPhase>> {
    use InstallPhase::*;
    const FORWARD: [InstallPhase; 6] = [
        RoleAssigned,
        BootConfigured,
        Installing,
        Installed,
        Retiring,
        Decommissioned,
    ];
    if from == to {
        return Some(Vec::new());
    }
    let start = match from {
        Failed => {
            let mut p = vec![RoleAssigned];
            p.extend(phase_path(RoleAssigned, to)?);
            return Some(p);
        }
        other => FORWARD.iter().position(|p| *p == other)?,
    };
    if to == Failed {
        return from.can_become(Failed).then(|| vec![Failed]);
    }
    let end = FORWARD.iter().position(|p| *p == to)?;
    (end > start).then(|| FORWARD[start + 1..=end].to_vec())
}

/// Whether a host in phase `now` is at `target` or past it on the way to
/// a cluster (installed before retiring before decommissioned).
fn reached(now: InstallPhase, target: InstallPhase) -> bool {
    now == target || (now != InstallPhase::Failed && now > target && target != InstallPhase::Failed)
}

/// Moves `id` to `to` through the legal phases, announcing each.
pub async fn advance_phase(
    inventory: &Inventory,
    id: &HostId,
    to: InstallPhase,
) -> Result<(), StepError> {
    let from = phase_of(inventory, id).await?;
    let path = phase_path(from, to)
        .ok_or_else(|| StepError::new(format!("host {id}: cannot go from phase {from} to {to}")))?;
    for phase in path {
        let inv = inventory.clone();
        let id2 = id.clone();
        tokio::task::spawn_blocking(move || inv.set_phase(&id2, phase))
            .await
            .map_err(|e| StepError::new(format!("inventory task: {e}")))?
            .map_err(cap)?;
    }
    Ok(())
}

/// Whether the host's recorded phase is one of `phases`.
pub async fn phase_is(
    inventory: &Inventory,
    id: &HostId,
    phases: &[InstallPhase],
) -> Result<Option<InstallPhase>, StepError> {
    let now = phase_of(inventory, id).await?;
    Ok(phases.contains(&now).then_some(now))
}

/// The host's install phase recorded (installed once it joined, or when
/// the bootstrap's retirement starts); a host already past it is left.
#[derive(Debug, Clone)]
pub struct MarkPhase {
    pub host: HostId,
    pub phase: InstallPhase,
}

#[async_trait]
impl<T: Topology> Step<T> for MarkPhase {
    fn key(&self) -> StepKey {
        StepKey(format!("phase of {} {}", self.host, self.phase))
    }

    async fn prepare(&self, ctx: StepContext<'_, T>) -> Result<Prepared, StepError> {
        let now = phase_of(ctx.inventory, &self.host).await?;
        if reached(now, self.phase) {
            return Ok(Prepared::Unchanged);
        }
        Ok(Prepared::Change {
            description: format!("inventory: {} is {} (was {now})", self.host, self.phase),
            undo: UndoData::of(&true)?,
        })
    }

    async fn apply(&self, ctx: StepContext<'_, T>) -> Result<Option<String>, StepError> {
        advance_phase(ctx.inventory, &self.host, self.phase).await?;
        Ok(None)
    }

    /// The host starts over: its phase can only go forward, or to failed.
    async fn undo(&self, ctx: StepContext<'_, T>, _: &UndoData) -> Result<(), StepError> {
        mark_failed(ctx.inventory, &self.host).await
    }
}

/// A rolled-back step's host marked failed, so that a later run starts it
/// over (its phase no longer says a step is done).
async fn mark_failed(inventory: &Inventory, id: &HostId) -> Result<(), StepError> {
    let now = phase_of(inventory, id).await?;
    if now.can_become(InstallPhase::Failed) {
        advance_phase(inventory, id, InstallPhase::Failed).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Reboots and what the host fetches

/// A reboot over SSH: the expected disconnect is success, the host must go
/// down and, where the site can tell, start a network boot. Its pinned host
/// key is then forgotten: the system it boots (the installer, then the
/// installed OS; or a fresh discovery environment) has its own keys, pinned
/// again at first contact.
#[derive(Debug, Clone)]
pub struct Reboot {
    pub host: InstallHost,
    pub into: RebootInto,
}

/// What a reboot leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebootInto {
    /// From discovery into the SCOS installer (its per-MAC script).
    Installer,
    /// From the installed OS back into discovery (the bootstrap's retirement).
    Discovery,
}

impl Reboot {
    fn remote(&self) -> RemoteHost {
        match self.into {
            RebootInto::Installer => {
                RemoteHost::discovery(self.host.id.clone(), self.host.discovery_ip)
            }
            RebootInto::Discovery => RemoteHost::installed(self.host.id.clone(), self.host.ip),
        }
    }

    /// The phases in which this reboot has already happened.
    fn done_in(&self) -> &'static [InstallPhase] {
        match self.into {
            RebootInto::Installer => &[
                InstallPhase::Installing,
                InstallPhase::Installed,
                InstallPhase::Retiring,
                InstallPhase::Decommissioned,
            ],
            RebootInto::Discovery => &[InstallPhase::Decommissioned],
        }
    }

    /// The phase written just before the reboot is sent: a run that stops
    /// between the two leaves it, and the next run cannot tell from the
    /// phase alone whether the host got the command.
    fn sending(&self) -> InstallPhase {
        match self.into {
            RebootInto::Installer => InstallPhase::BootConfigured,
            RebootInto::Discovery => InstallPhase::Retiring,
        }
    }
}

#[async_trait]
impl<T: Topology + RemoteShell> Step<T> for Reboot {
    fn key(&self) -> StepKey {
        let to = match self.into {
            RebootInto::Installer => "installer",
            RebootInto::Discovery => "discovery",
        };
        StepKey(format!("reboot of {} into {to}", self.host.id))
    }

    async fn prepare(&self, ctx: StepContext<'_, T>) -> Result<Prepared, StepError> {
        if let Some(p) = phase_is(ctx.inventory, &self.host.id, self.done_in()).await? {
            return Ok(Prepared::InPlace(format!(
                "{} already rebooted (phase {p})",
                self.host.hostname
            )));
        }
        let remote = self.remote();
        if phase_is(ctx.inventory, &self.host.id, &[self.sending()])
            .await?
            .is_some()
        {
            // An earlier run was about to send this reboot, or sent it and
            // stopped before the next step. A host that rebooted boots
            // another system at another address, so the one it rebooted
            // from no longer answers: then it is not rebooted twice.
            let answers = ctx.topology.answers(&remote).await.map_err(cap)?;
            if !answers {
                return Ok(Prepared::InPlace(format!(
                    "{} no longer answers at {remote}: the interrupted run's reboot was sent",
                    self.host.hostname
                )));
            }
        }
        let (what, login) = match self.into {
            RebootInto::Installer => ("its SCOS installer", "discovery environment"),
            RebootInto::Discovery => ("discovery (PXE)", "installed OS"),
        };
        Ok(Prepared::Change {
            description: format!(
                "reboot {} ({remote}, {login}) over SSH into {what}",
                self.host.hostname
            ),
            undo: UndoData::of(&true)?,
        })
    }

    async fn apply(&self, ctx: StepContext<'_, T>) -> Result<Option<String>, StepError> {
        let remote = self.remote();
        let confirm = if ctx.topology.pxe_evidence().is_some() {
            RebootConfirm::StartedPxe
        } else {
            RebootConfirm::Down
        };
        // Recorded first: a run that stops after the command went out
        // finds the host's phase and checks whether it still answers.
        advance_phase(ctx.inventory, &self.host.id, self.sending()).await?;
        let report = ctx
            .topology
            .reboot(&remote, confirm)
            .await
            .map_err(|e| StepError::new(format!("reboot of {}: {e}", self.host.hostname)))?;
        ctx.topology
            .forget_host_key(&self.host.id)
            .await
            .map_err(cap)?;
        if self.into == RebootInto::Installer {
            advance_phase(ctx.inventory, &self.host.id, InstallPhase::Installing).await?;
        }
        Ok(Some(reboot_note(&self.host, report.down_after)))
    }

    /// A reboot cannot be taken back: the host is marked failed so that a
    /// later run starts its install over (its boot files are undone by
    /// their own steps, so its next boot is discovery).
    async fn undo(&self, ctx: StepContext<'_, T>, _: &UndoData) -> Result<(), StepError> {
        mark_failed(ctx.inventory, &self.host.id).await
    }
}

fn reboot_note(host: &InstallHost, down_after: Duration) -> String {
    format!(
        "rebooted {} (down after {} ms)",
        host.hostname,
        down_after.as_millis()
    )
}

/// Waits until the host has fetched each of `paths` from the HTTP root
/// (its per-MAC script, the kernel, the rootfs, its Ignition), reporting
/// each as it comes: how an install is followed before the host has an OS
/// that answers. Skipped where the site cannot tell.
#[derive(Debug, Clone)]
pub struct WaitFetched {
    pub host: InstallHost,
    /// Each file and whether only this host fetches it (then anyone's
    /// fetch counts; else only from the host's address).
    pub paths: Vec<(RelativePath, bool)>,
    /// Fetches older than this before the wait starts do not count.
    pub lookback: Duration,
    pub within: Duration,
    pub poll: Duration,
}

impl WaitFetched {
    /// The files not fetched within the look-back window.
    async fn missing<T: Topology>(&self, site: &T) -> Result<Vec<RelativePath>, StepError> {
        let Some(evidence) = site.pxe_evidence() else {
            return Ok(Vec::new());
        };
        let since = SystemTime::now()
            .checked_sub(self.lookback)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut missing = Vec::new();
        for (path, only_this_host) in &self.paths {
            if !evidence
                .fetched_since(self.host.ip, path, *only_this_host, since)
                .await
                .map_err(cap)?
            {
                missing.push(path.clone());
            }
        }
        Ok(missing)
    }
}

#[async_trait]
impl<T: Topology> Step<T> for WaitFetched {
    fn key(&self) -> StepKey {
        StepKey(format!("boot files fetched by {}", self.host.id))
    }

    async fn prepare(&self, ctx: StepContext<'_, T>) -> Result<Prepared, StepError> {
        if ctx.topology.pxe_evidence().is_none() {
            return Ok(Prepared::InPlace(format!(
                "the site cannot see what {} fetches: not followed",
                self.host.hostname
            )));
        }
        if let Some(p) = phase_is(
            ctx.inventory,
            &self.host.id,
            &[
                InstallPhase::Installed,
                InstallPhase::Retiring,
                InstallPhase::Decommissioned,
            ],
        )
        .await?
        {
            return Ok(Prepared::InPlace(format!("{} is {p}", self.host.hostname)));
        }
        // Already fetched (a resumed run, long after the host booted).
        if phase_is(ctx.inventory, &self.host.id, &[InstallPhase::Installing])
            .await?
            .is_some()
            && self.missing(ctx.topology).await?.is_empty()
        {
            return Ok(Prepared::InPlace(format!(
                "{} already fetched its boot files",
                self.host.hostname
            )));
        }
        let names: Vec<&str> = self.paths.iter().map(|(p, _)| p.as_str()).collect();
        Ok(Prepared::Change {
            description: format!(
                "wait up to {} s for {} to fetch {}",
                self.within.as_secs(),
                self.host.hostname,
                names.join(", ")
            ),
            undo: UndoData::none(),
        })
    }

    async fn apply(&self, ctx: StepContext<'_, T>) -> Result<Option<String>, StepError> {
        let Some(evidence) = ctx.topology.pxe_evidence() else {
            return Ok(None);
        };
        let since = SystemTime::now()
            .checked_sub(self.lookback)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let start = Instant::now();
        let mut seen = vec![false; self.paths.len()];
        loop {
            for (i, (path, only_this_host)) in self.paths.iter().enumerate() {
                if !seen[i]
                    && evidence
                        .fetched_since(self.host.ip, path, *only_this_host, since)
                        .await
                        .map_err(cap)?
                {
                    seen[i] = true;
                    tracing::info!(host = %self.host.hostname, file = %path, after_s = start.elapsed().as_secs(), "fetched");
                }
            }
            if seen.iter().all(|s| *s) {
                return Ok(Some(format!(
                    "{} fetched its {} boot files in {} s",
                    self.host.hostname,
                    seen.len(),
                    start.elapsed().as_secs()
                )));
            }
            if start.elapsed() >= self.within {
                let missing: Vec<&str> = self
                    .paths
                    .iter()
                    .zip(&seen)
                    .filter(|(_, s)| !**s)
                    .map(|((p, _), _)| p.as_str())
                    .collect();
                return Err(StepError::new(format!(
                    "{} ({}) did not fetch {} within {} s",
                    self.host.hostname,
                    self.host.ip,
                    missing.join(", "),
                    self.within.as_secs()
                )));
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    async fn undo(&self, _: StepContext<'_, T>, _: &UndoData) -> Result<(), StepError> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Wiping the install disk (the bootstrap, back in discovery)

/// Wipes the one disk the host was installed on (its inventory named it),
/// from the discovery environment it rebooted into: the address it has now
/// is read from the DHCP server's leases for its MACs, and the host is
/// waited for until its SSH answers; then it is recorded decommissioned (a
/// free host).
#[derive(Debug, Clone)]
pub struct WipeInstallDisk {
    pub host: InstallHost,
    pub device: DevicePath,
    pub within: Duration,
    pub poll: Duration,
    pub limits: RunLimits,
}

impl WipeInstallDisk {
    async fn discovery_address<T: Topology>(&self, site: &T) -> Result<Option<IpAddr>, StepError> {
        let Some(dhcp) = site.dhcp() else {
            return Ok(Some(self.host.discovery_ip));
        };
        let leases = dhcp.leases().await.map_err(cap)?;
        Ok(leases
            .into_iter()
            .filter(|l| self.host.macs.contains(&l.mac) && l.ip != self.host.ip)
            .max_by_key(|l| l.expires)
            .map(|l| l.ip))
    }
}

#[async_trait]
impl<T: Topology + RemoteShell> Step<T> for WipeInstallDisk {
    fn key(&self) -> StepKey {
        StepKey(format!("install disk of {} wiped", self.host.id))
    }

    async fn prepare(&self, ctx: StepContext<'_, T>) -> Result<Prepared, StepError> {
        if let Some(p) = phase_is(
            ctx.inventory,
            &self.host.id,
            &[InstallPhase::Decommissioned],
        )
        .await?
        {
            return Ok(Prepared::InPlace(format!(
                "{} is {p}: its disk was wiped",
                self.host.hostname
            )));
        }
        Ok(Prepared::Change {
            description: format!(
                "wipe {} of {} over SSH from discovery (only that disk; every signature and \
                 partition table on it)",
                self.device, self.host.hostname
            ),
            undo: UndoData::of(&true)?,
        })
    }

    async fn apply(&self, ctx: StepContext<'_, T>) -> Result<Option<String>, StepError> {
        let start = Instant::now();
        let ip = loop {
            if let Some(ip) = self.discovery_address(ctx.topology).await? {
                break ip;
            }
            if start.elapsed() >= self.within {
                return Err(StepError::new(format!(
                    "{} took no address in discovery within {} s (no DHCP lease for {})",
                    self.host.hostname,
                    self.within.as_secs(),
                    self.host
                        .macs
                        .iter()
                        .map(|m| m.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            tokio::time::sleep(self.poll).await;
        };
        let remote = RemoteHost {
            id: self.host.id.clone(),
            ip,
            login: Login::Discovery,
        };
        let command = RemoteCommand::WipeDisk {
            device: self.device.clone(),
        };
        // The discovery environment's SSH comes up minutes after its lease.
        loop {
            if ctx.topology.answers(&remote).await.map_err(cap)? {
                break;
            }
            if start.elapsed() >= self.within {
                return Err(StepError::new(format!(
                    "{} leased {ip} but its discovery environment did not answer SSH within {} s",
                    self.host.hostname,
                    self.within.as_secs()
                )));
            }
            tokio::time::sleep(self.poll).await;
        }
        let out = ctx
            .topology
            .run(&remote, &command, self.limits)
            .await
            .map_err(|e| {
                StepError::new(format!(
                    "wipe of {} on {}: {e}",
                    self.device, self.host.hostname
                ))
            })?;
        if !out.success() {
            return Err(StepError::new(format!(
                "wipe of {} on {} ({ip}) failed with status {:?}: {}",
                self.device,
                self.host.hostname,
                out.exit_status,
                out.stderr.chars().take(500).collect::<String>()
            )));
        }
        // Recorded at once: a resumed run never wipes it again.
        advance_phase(ctx.inventory, &self.host.id, InstallPhase::Decommissioned).await?;
        Ok(Some(format!(
            "wiped {} of {} (at {ip} in discovery); it is a free host",
            self.device, self.host.hostname
        )))
    }

    /// A wiped disk stays wiped: the host is marked failed, so a later run
    /// installs it again.
    async fn undo(&self, ctx: StepContext<'_, T>, _: &UndoData) -> Result<(), StepError> {
        mark_failed(ctx.inventory, &self.host.id).await
    }
}
