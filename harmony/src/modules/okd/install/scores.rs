//! The installation Scores: `OKDSetup02Bootstrap`, `OKDSetup03ControlPlane`,
//! `OKDSetup04Workers`, and `OKDInstallationScore`, which runs the three as
//! one saga (one step log run, so `--resume` finishes whatever a crash
//! left, and a failure rolls back everything the run did).
//!
//! Per host, in order: its DHCP reservation and DNS name, its Ignition and
//! per-MAC iPXE installer script, its load-balancer backends, its switch
//! ports in access mode (the PXE/LACP rule), an SSH reboot into the
//! installer, a wait on the files it fetches; once installed: its ports
//! to an LACP LAG verified from both ends, its per-MAC script to local
//! boot, and its phase recorded. Then, per stage:
//!
//! - 02: the API answering through the load balancer;
//! - 03: `bootstrap-complete`; the bootstrap out of the load balancer,
//!   DHCP and DNS, its files removed, its ports back to access, rebooted
//!   into discovery, only its install disk wiped, recorded decommissioned;
//! - 04: the workers' CSRs approved (only those matching an inventoried
//!   worker), control-plane nodes unschedulable.
//!
//! Steps that only make sense before a host is installed (its installer
//! files, its ports in access for PXE, its reboot) are skipped for a host
//! whose recorded phase says it is past them, so a finished installation
//! plans nothing, and a retired bootstrap is never provisioned again.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::cluster_steps::{
    ApproveWorkerCsrs, MastersUnschedulable, WaitApiAnswers, WaitBootstrapComplete,
};
use super::host_steps::{
    AddBackend, MarkPhase, Reboot, RebootInto, Release, RemoveBackend, RemoveRecords, Reserve,
    SetRecords, WaitFetched, WipeInstallDisk, phase_is,
};
use super::plan::{InstallHost, InstallSpec, install_hosts};
use super::role_configs::{PublishRoleConfigs, RoleConfigSource};
use crate::domain::cluster::WorkerIdentity;
use crate::domain::{
    ClusterApi, DhcpServer, DnsName, DnsRecord, DnsServer, HttpServer, InstallPhase, Interpret,
    InterpretError, Inventory, LbBackend, LbHealthCheck, LbMode, LbServiceName, LoadBalancer,
    LoadBalancerService, Prepared, RelativePath, RemoteHost, RemoteShell, Role, RunLimits,
    SagaInterpret, SagaScore, Score, Step, StepContext, StepError, StepKey, Switch, Topology,
    UndoData,
};
use crate::infra::haproxy::okd::{API, INGRESS_HTTP, INGRESS_HTTPS, MACHINE_CONFIG};
use crate::modules::boot::{LocalBoot, per_mac_ipxe_path, render_local_boot};
use crate::modules::http_files::{PutFile, RemoveFile};
use crate::modules::okd::artefacts::{Artefact, render_cluster};
use crate::modules::switch_automation::{HostSwitchPlan, PortGoal, SwitchAutomationScore};

/// Everything an installation needs of a site.
pub trait InstallSite:
    Topology + DhcpServer + DnsServer + HttpServer + LoadBalancer + Switch + RemoteShell + ClusterApi
{
}

impl<T> InstallSite for T where
    T: Topology
        + DhcpServer
        + DnsServer
        + HttpServer
        + LoadBalancer
        + Switch
        + RemoteShell
        + ClusterApi
{
}

/// Which part of the installation a Score runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Stage {
    Bootstrap,
    ControlPlane,
    Workers,
}

type Steps<T> = Vec<Box<dyn Step<T>>>;

/// A step with the installation's rules around it, each optional:
///
/// - `skip`: in place for a host whose recorded phase is one of these;
/// - `key`: under another key (the same file written twice in one saga: a
///   host's installer script, later its local-boot script);
/// - `planned`: a removal the plan lists even when what it removes is not
///   there yet (an earlier step of the same run makes it); a removal of
///   what is absent changes nothing.
struct Around<T> {
    inner: Box<dyn Step<T>>,
    skip: Option<(InstallHost, &'static [InstallPhase])>,
    key: Option<StepKey>,
    planned: Option<String>,
}

impl<T> Around<T> {
    fn new(inner: Box<dyn Step<T>>) -> Self {
        Self {
            inner,
            skip: None,
            key: None,
            planned: None,
        }
    }
}

impl<T> std::fmt::Debug for Around<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Around")
            .field("inner", &self.inner)
            .field("skip", &self.skip.as_ref().map(|(h, p)| (&h.id, p)))
            .field("key", &self.key)
            .field("planned", &self.planned)
            .finish()
    }
}

#[async_trait]
impl<T: Topology> Step<T> for Around<T> {
    fn key(&self) -> StepKey {
        self.key.clone().unwrap_or_else(|| self.inner.key())
    }

    async fn prepare(&self, ctx: StepContext<'_, T>) -> Result<Prepared, StepError> {
        if let Some((host, phases)) = &self.skip
            && let Some(p) = phase_is(ctx.inventory, &host.id, phases).await?
        {
            return Ok(Prepared::InPlace(format!(
                "{}: not needed, {} is {p}",
                self.inner.key(),
                host.hostname
            )));
        }
        match (self.inner.prepare(ctx).await?, &self.planned) {
            (Prepared::Unchanged | Prepared::InPlace(_), Some(what)) => Ok(Prepared::Change {
                description: what.clone(),
                undo: UndoData::none(),
            }),
            (prepared, _) => Ok(prepared),
        }
    }

    async fn apply(&self, ctx: StepContext<'_, T>) -> Result<Option<String>, StepError> {
        self.inner.apply(ctx).await
    }

    async fn undo(&self, ctx: StepContext<'_, T>, undo: &UndoData) -> Result<(), StepError> {
        self.inner.undo(ctx, undo).await
    }
}

/// `inner`, in place for `host` in one of `phases`.
fn unless<T: Topology>(
    host: &InstallHost,
    phases: &'static [InstallPhase],
    inner: Box<dyn Step<T>>,
) -> Box<dyn Step<T>> {
    Box::new(Around {
        skip: Some((host.clone(), phases)),
        ..Around::new(inner)
    })
}

/// Past the installer: installed, or (the bootstrap) retiring or retired.
const PAST_INSTALLER: &[InstallPhase] = &[
    InstallPhase::Installed,
    InstallPhase::Retiring,
    InstallPhase::Decommissioned,
];
/// Rebooted into the installer or later.
const PAST_PXE: &[InstallPhase] = &[
    InstallPhase::Installing,
    InstallPhase::Installed,
    InstallPhase::Retiring,
    InstallPhase::Decommissioned,
];
/// The bootstrap, rebooted into discovery or retired.
const RETIRED: &[InstallPhase] = &[InstallPhase::Retiring, InstallPhase::Decommissioned];

/// What every stage reads before planning its steps.
struct Context {
    hosts: Vec<InstallHost>,
    /// Each host's rendered boot files, and the two discovery files.
    files: BTreeMap<String, Vec<Artefact>>,
    common: Vec<Artefact>,
}

/// The steps of `stages`, in order.
async fn plan_steps<T: InstallSite>(
    score: &str,
    spec: &InstallSpec,
    stages: &[Stage],
    inventory: &Inventory,
    topology: &T,
) -> Result<Steps<T>, InterpretError> {
    let ctx = read(score, spec, inventory, topology).await?;
    let plan_err = |e: String| InterpretError::new(score, "plan the installation", e);
    let mut steps: Steps<T> = Vec::new();
    for stage in stages {
        match stage {
            Stage::Bootstrap => bootstrap(spec, &ctx, &mut steps, inventory, topology)
                .await
                .map_err(plan_err)?,
            Stage::ControlPlane => control_plane(spec, &ctx, &mut steps, inventory, topology)
                .await
                .map_err(plan_err)?,
            Stage::Workers => workers(spec, &ctx, &mut steps, inventory, topology)
                .await
                .map_err(plan_err)?,
        }
    }
    Ok(steps)
}

async fn read<T: InstallSite>(
    score: &str,
    spec: &InstallSpec,
    inventory: &Inventory,
    topology: &T,
) -> Result<Context, InterpretError> {
    let repo = inventory.repository().clone();
    let records = tokio::task::spawn_blocking(move || repo.hosts())
        .await
        .map_err(|e| InterpretError::new(score, "read the inventory", e.to_string()))?
        .map_err(|e| InterpretError::new(score, "read the inventory", e.to_string()))?;
    let hosts = install_hosts(spec, &records)
        .map_err(|e| InterpretError::new(score, "plan the installation", e.to_string()))?;
    let artefacts = render_cluster(topology, &spec.boot, &records, &spec.networks)
        .map_err(|e| InterpretError::new(score, "render the boot files", e.to_string()))?;
    let mut files: BTreeMap<String, Vec<Artefact>> = BTreeMap::new();
    let mut common = Vec::new();
    for a in artefacts {
        let owner = hosts.iter().find(|h| {
            a.path.as_str() == format!("ignition/{}.ign", h.hostname)
                || h.macs.iter().any(|m| per_mac_ipxe_path(m) == a.path)
        });
        match owner {
            Some(h) => files.entry(h.hostname.to_string()).or_default().push(a),
            None => common.push(a),
        }
    }
    Ok(Context {
        hosts,
        files,
        common,
    })
}

fn of_role(ctx: &Context, role: Role) -> Vec<&InstallHost> {
    ctx.hosts.iter().filter(|h| h.role == role).collect()
}

fn dns(name: String) -> Result<DnsName, String> {
    name.parse().map_err(|e| format!("{name}: {e}"))
}

/// The load-balanced services `host` is a backend of.
fn services_of(spec: &InstallSpec, ctx: &Context, host: &InstallHost) -> Vec<AddBackend> {
    let workers = ctx.hosts.iter().any(|h| h.role == Role::Worker);
    let kinds: &[(&str, u16)] = match host.role {
        Role::Bootstrap => &[API, MACHINE_CONFIG],
        Role::ControlPlane if workers => &[API, MACHINE_CONFIG],
        Role::ControlPlane => &[API, MACHINE_CONFIG, INGRESS_HTTP, INGRESS_HTTPS],
        Role::Worker => &[INGRESS_HTTP, INGRESS_HTTPS],
    };
    kinds
        .iter()
        .map(|(name, port)| AddBackend {
            service: LoadBalancerService {
                name: LbServiceName::from_trusted(name),
                bind: SocketAddr::new(spec.cluster.lb_address, *port),
                mode: LbMode::Tcp,
                backends: Vec::new(),
                health_check: Some(LbHealthCheck::default()),
            },
            backend: LbBackend {
                hostname: host.hostname.clone(),
                ip: host.ip,
                port: *port,
            },
        })
        .collect()
}

fn guarded<T: Topology>(
    host: &InstallHost,
    phases: &'static [InstallPhase],
    step: impl Step<T> + 'static,
) -> Box<dyn Step<T>> {
    unless(host, phases, Box::new(step))
}

async fn switch_steps<T: InstallSite>(
    spec: &InstallSpec,
    host: &InstallHost,
    goal: PortGoal,
    remote: RemoteHost,
    inventory: &Inventory,
    topology: &T,
) -> Result<Steps<T>, String> {
    let Some(ports) = &host.switch else {
        return Ok(Vec::new());
    };
    let mut score = SwitchAutomationScore::new(
        spec.cluster.access_vlan,
        vec![HostSwitchPlan {
            host: remote,
            ports: ports.ports.clone(),
            goal,
        }],
    );
    score.partner_within = spec.timing.lacp_within;
    score.bond_within = spec.timing.lacp_within;
    score.poll = spec.timing.poll;
    SagaScore::<T>::steps(&score, inventory, topology)
        .await
        .map_err(|e| e.to_string())
}

/// A host from its reservation to its installer fetching its files.
async fn provision<T: InstallSite>(
    spec: &InstallSpec,
    ctx: &Context,
    host: &InstallHost,
    steps: &mut Steps<T>,
    inventory: &Inventory,
    topology: &T,
) -> Result<(), String> {
    // The bootstrap's reservation, name and backends go when it retires
    // (it is recorded installed when its retirement starts).
    let keep: &'static [InstallPhase] = if host.role == Role::Bootstrap {
        PAST_INSTALLER
    } else {
        &[]
    };
    steps.push(guarded(host, keep, Reserve { host: host.clone() }));
    steps.push(guarded(
        host,
        keep,
        SetRecords {
            what: format!("node {}", host.hostname),
            records: vec![DnsRecord {
                name: dns(format!("{}.{}", host.hostname, spec.cluster.zone()))?,
                ip: host.ip,
            }],
        },
    ));
    for a in ctx.files.get(host.hostname.as_str()).into_iter().flatten() {
        steps.push(guarded(
            host,
            PAST_INSTALLER,
            PutFile {
                path: a.path.clone(),
                contents: a.contents.clone(),
            },
        ));
    }
    for add in services_of(spec, ctx, host) {
        steps.push(guarded(host, keep, add));
    }
    for s in switch_steps(
        spec,
        host,
        PortGoal::Pxe,
        RemoteHost::discovery(host.id.clone(), host.discovery_ip),
        inventory,
        topology,
    )
    .await?
    {
        steps.push(unless(host, PAST_PXE, s));
    }
    steps.push(Box::new(Reboot {
        host: host.clone(),
        into: RebootInto::Installer,
    }));
    let mut paths: Vec<(RelativePath, bool)> = vec![(per_mac_ipxe_path(&host.pxe_mac), true)];
    paths.push((spec.boot.scos_kernel.clone(), false));
    paths.push((spec.boot.scos_rootfs.clone(), false));
    paths.push((
        format!("ignition/{}.ign", host.hostname)
            .parse()
            .map_err(|e| format!("{e}"))?,
        true,
    ));
    steps.push(Box::new(WaitFetched {
        host: host.clone(),
        paths,
        lookback: spec.timing.lookback,
        within: spec.timing.fetch_within,
        poll: spec.timing.poll,
    }));
    Ok(())
}

/// An installed host: its ports to LACP (verified), local boot, phase.
async fn finish<T: InstallSite>(
    spec: &InstallSpec,
    host: &InstallHost,
    steps: &mut Steps<T>,
    inventory: &Inventory,
    topology: &T,
) -> Result<(), String> {
    if let Some((bond, slaves)) = &host.bond
        && let Some(ports) = &host.switch
    {
        let lacp = PortGoal::Lacp {
            lag: ports.lag,
            bond: bond.clone(),
            slaves: slaves.clone(),
        };
        let remote = RemoteHost::installed(host.id.clone(), host.ip);
        // The bootstrap's LAG is dissolved when it retires.
        let phases: &'static [InstallPhase] = if host.role == Role::Bootstrap {
            PAST_INSTALLER
        } else {
            &[]
        };
        for s in switch_steps(spec, host, lacp, remote, inventory, topology).await? {
            steps.push(unless(host, phases, s));
        }
    }
    if host.role != Role::Bootstrap {
        // Recorded before its script changes: a resumed run never writes
        // the installer script back.
        steps.push(Box::new(MarkPhase {
            host: host.id.clone(),
            phase: InstallPhase::Installed,
        }));
        let script = render_local_boot(&LocalBoot {
            hostname: host.hostname.clone(),
        })
        .map_err(|e| e.to_string())?;
        for mac in &host.macs {
            let path = per_mac_ipxe_path(mac);
            steps.push(Box::new(Around {
                key: Some(StepKey(format!("local boot {path}"))),
                ..Around::new(Box::new(PutFile {
                    path,
                    contents: script.clone().into_bytes(),
                }))
            }));
        }
    }
    Ok(())
}

async fn bootstrap<T: InstallSite>(
    spec: &InstallSpec,
    ctx: &Context,
    steps: &mut Steps<T>,
    inventory: &Inventory,
    topology: &T,
) -> Result<(), String> {
    if let RoleConfigSource::Installer(job) = &spec.role_configs {
        steps.push(Box::new(PublishRoleConfigs {
            job: job.as_ref().clone(),
        }));
    }
    for a in &ctx.common {
        steps.push(Box::new(PutFile {
            path: a.path.clone(),
            contents: a.contents.clone(),
        }));
    }
    let lb = spec.cluster.lb_address;
    let zone = spec.cluster.zone();
    steps.push(Box::new(SetRecords {
        what: "cluster".into(),
        records: vec![
            DnsRecord {
                name: dns(format!("api.{zone}"))?,
                ip: lb,
            },
            DnsRecord {
                name: dns(format!("api-int.{zone}"))?,
                ip: lb,
            },
            DnsRecord {
                name: dns(format!("*.apps.{zone}"))?,
                ip: lb,
            },
        ],
    }));
    for host in of_role(ctx, Role::Bootstrap) {
        provision(spec, ctx, host, steps, inventory, topology).await?;
        finish(spec, host, steps, inventory, topology).await?;
    }
    steps.push(Box::new(WaitApiAnswers {
        within: spec.timing.api_within,
        poll: spec.timing.poll,
    }));
    Ok(())
}

async fn control_plane<T: InstallSite>(
    spec: &InstallSpec,
    ctx: &Context,
    steps: &mut Steps<T>,
    inventory: &Inventory,
    topology: &T,
) -> Result<(), String> {
    let masters = of_role(ctx, Role::ControlPlane);
    for host in &masters {
        provision(spec, ctx, host, steps, inventory, topology).await?;
    }
    steps.push(Box::new(WaitBootstrapComplete {
        within: spec.timing.bootstrap_within,
        poll: spec.timing.poll,
    }));
    for host in &masters {
        finish(spec, host, steps, inventory, topology).await?;
    }
    for host in of_role(ctx, Role::Bootstrap) {
        retire(spec, ctx, host, steps, inventory, topology).await?;
    }
    Ok(())
}

/// The bootstrap out of the cluster's services, back to discovery, its
/// install disk wiped: a free host again.
async fn retire<T: InstallSite>(
    spec: &InstallSpec,
    ctx: &Context,
    host: &InstallHost,
    steps: &mut Steps<T>,
    inventory: &Inventory,
    topology: &T,
) -> Result<(), String> {
    // Recorded first: a resumed run never provisions it again.
    steps.push(Box::new(MarkPhase {
        host: host.id.clone(),
        phase: InstallPhase::Installed,
    }));
    let mut removals: Steps<T> = Vec::new();
    for add in services_of(spec, ctx, host) {
        let what = format!(
            "load balancer: take {} out of {}",
            host.hostname, add.service.name
        );
        removals.push(planned(
            what,
            RemoveBackend {
                service: add.service.name,
                backend: host.hostname.clone(),
            },
        ));
    }
    removals.push(planned(
        format!(
            "DHCP: release the reservation of {} ({})",
            host.pxe_mac, host.hostname
        ),
        Release { host: host.clone() },
    ));
    let name = dns(format!("{}.{}", host.hostname, spec.cluster.zone()))?;
    removals.push(planned(
        format!("DNS (node {}): remove {name}", host.hostname),
        RemoveRecords {
            what: format!("node {}", host.hostname),
            names: vec![name],
        },
    ));
    for a in ctx.files.get(host.hostname.as_str()).into_iter().flatten() {
        removals.push(planned(
            format!("remove {}", a.path),
            RemoveFile {
                path: a.path.clone(),
            },
        ));
    }
    // Its ports back to access before the reboot that must PXE.
    let remote = RemoteHost::installed(host.id.clone(), host.ip);
    removals.extend(
        switch_steps(
            spec,
            host,
            PortGoal::AccessBeforePxeReboot,
            remote,
            inventory,
            topology,
        )
        .await?,
    );
    for s in removals {
        steps.push(unless(host, RETIRED, s));
    }
    steps.push(Box::new(Reboot {
        host: host.clone(),
        into: RebootInto::Discovery,
    }));
    steps.push(Box::new(WipeInstallDisk {
        host: host.clone(),
        device: host.install_disk.clone(),
        within: spec.timing.wipe_within,
        poll: spec.timing.poll,
        limits: RunLimits::default(),
    }));
    Ok(())
}

fn planned<T: Topology>(what: String, step: impl Step<T> + 'static) -> Box<dyn Step<T>> {
    Box::new(Around {
        planned: Some(what),
        ..Around::new(Box::new(step))
    })
}

async fn workers<T: InstallSite>(
    spec: &InstallSpec,
    ctx: &Context,
    steps: &mut Steps<T>,
    inventory: &Inventory,
    topology: &T,
) -> Result<(), String> {
    let workers = of_role(ctx, Role::Worker);
    for host in &workers {
        provision(spec, ctx, host, steps, inventory, topology).await?;
    }
    if !workers.is_empty() {
        steps.push(Box::new(ApproveWorkerCsrs {
            workers: workers
                .iter()
                .map(|h| WorkerIdentity {
                    hostname: h.hostname.clone(),
                    addresses: vec![h.ip],
                })
                .collect(),
            within: spec.timing.workers_within,
            poll: spec.timing.poll,
        }));
    }
    for host in &workers {
        finish(spec, host, steps, inventory, topology).await?;
    }
    steps.push(Box::new(MastersUnschedulable));
    Ok(())
}

macro_rules! install_score {
    ($(#[$doc:meta])* $name:ident, $label:literal, [$($stage:expr),+]) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name {
            pub spec: InstallSpec,
        }

        impl $name {
            pub fn new(spec: InstallSpec) -> Self {
                Self { spec }
            }
        }

        impl<T: InstallSite> Score<T> for $name {
            fn name(&self) -> String {
                $label.into()
            }

            fn create_interpret(&self) -> Box<dyn Interpret<T>> {
                Box::new(SagaInterpret(self.clone()))
            }
        }

        #[async_trait]
        impl<T: InstallSite> SagaScore<T> for $name {
            fn saga_name(&self) -> String {
                $label.into()
            }

            async fn steps(
                &self,
                inventory: &Inventory,
                topology: &T,
            ) -> Result<Steps<T>, InterpretError> {
                plan_steps($label, &self.spec, &[$($stage),+], inventory, topology).await
            }
        }
    };
}

install_score!(
    /// The bootstrap host installed, and the API answering through the
    /// load balancer.
    OKDSetup02Bootstrap,
    "OKDSetup02Bootstrap",
    [Stage::Bootstrap]
);
install_score!(
    /// The three control-plane hosts installed, `bootstrap-complete`, and
    /// the bootstrap retired, wiped, back in discovery.
    OKDSetup03ControlPlane,
    "OKDSetup03ControlPlane",
    [Stage::ControlPlane]
);
install_score!(
    /// The workers installed and joined (their CSRs approved), the control
    /// plane unschedulable.
    OKDSetup04Workers,
    "OKDSetup04Workers",
    [Stage::Workers]
);
install_score!(
    /// The whole installation from discovered hosts with roles to a
    /// cluster with workers, as one resumable saga.
    OKDInstallationScore,
    "OKDInstallationScore",
    [Stage::Bootstrap, Stage::ControlPlane, Stage::Workers]
);
