//! The parts of `OKDSetup01Site` that make a site ready for discovery, each
//! built from the steps of the code that already does it (no second copy):
//! the candidates' ports in access (`SwitchAutomationScore`), the OS assets
//! (`ScosAssets`, `CentosInventoryAssets`), and the discovery boot files and
//! the agent (`artefacts::render_cluster` for no host, `http_files::PutFile`).

use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::NAME;
use crate::domain::{
    HostId, HttpServer, InstallPhase, InterpretError, Inventory, MacAddress, RemoteHost,
    RemoteShell, SagaScore, Sha256Digest, Step, Switch, SwitchPort, Topology, ValueError, VlanId,
};
use crate::modules::assets::{CentosInventoryAssets, ScosAssets};
use crate::modules::http_files::PutFile;
use crate::modules::okd::artefacts::{SiteBoot, render_cluster};
use crate::modules::switch_automation::{HostSwitchPlan, PortGoal, SwitchAutomationScore};

/// The largest agent binary published (the static agent is ~2 MiB).
const MAX_AGENT: u64 = 64 << 20;

type Steps<T> = Vec<Box<dyn Step<T>>>;

/// A candidate host's switch ports, to put in access mode before it boots
/// into discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidatePorts {
    pub host: RemoteHost,
    pub ports: Vec<SwitchPort>,
}

impl CandidatePorts {
    /// A host known only by the site file (not discovered yet): named by
    /// its MAC (`macs:` id), reached at its reserved address.
    pub fn pinned(mac: MacAddress, ip: IpAddr, ports: Vec<SwitchPort>) -> Result<Self, ValueError> {
        Ok(Self {
            host: RemoteHost::discovery(HostId::from_macs(&[mac])?, ip),
            ports,
        })
    }
}

/// The OS assets to stage on the HTTP root; each optional.
#[derive(Debug, Clone, Default)]
pub struct OsAssets {
    /// The SCOS live PXE kernel, initramfs and rootfs (what installs).
    pub scos: Option<ScosAssets>,
    /// The CentOS Stream live image's kernel, initrd and tree (what
    /// unknown hosts boot into for discovery).
    pub centos: Option<CentosInventoryAssets>,
}

/// What unknown hosts boot: `default.ipxe` and `inventory.ks` rendered from
/// `site`, and the agent binary published at `site.agent`.
#[derive(Debug, Clone)]
pub struct DiscoveryBoot {
    pub site: SiteBoot,
    /// The static agent on this machine (`cargo agent` builds it); its
    /// SHA-256 must be `site.agent_sha256`, the one `inventory.ks` checks.
    /// `None`: the agent is already on the HTTP root (not checked here).
    pub agent: Option<PathBuf>,
}

fn fail(what: &str, e: impl ToString) -> InterpretError {
    InterpretError::new(NAME, what, e.to_string())
}

/// The staged assets must be where the boot files point: a mismatch would
/// publish a `default.ipxe` naming files nothing serves.
pub(super) fn check_paths(
    assets: &OsAssets,
    boot: Option<&DiscoveryBoot>,
) -> Result<(), InterpretError> {
    let Some(boot) = boot else { return Ok(()) };
    let site = &boot.site;
    let mut pairs = Vec::new();
    if let Some(scos) = &assets.scos {
        let [kernel, initramfs, rootfs] = scos
            .served_paths()
            .map_err(|e| fail("plan the SCOS assets", e))?;
        pairs.push(("scos_kernel", &site.scos_kernel, kernel));
        pairs.push(("scos_initramfs", &site.scos_initramfs, initramfs));
        pairs.push(("scos_rootfs", &site.scos_rootfs, rootfs));
    }
    if let Some(centos) = &assets.centos {
        let (kernel, initrd, tree) = centos
            .served_paths()
            .map_err(|e| fail("plan the CentOS assets", e))?;
        pairs.push(("centos_kernel", &site.centos_kernel, kernel));
        pairs.push(("centos_initrd", &site.centos_initrd, initrd));
        pairs.push(("centos_tree", &site.centos_tree, tree));
    }
    for (field, booted, staged) in pairs {
        if *booted != staged {
            return Err(fail(
                "check the boot paths",
                format!("boot.{field} = {booted}, but the assets are staged at {staged}"),
            ));
        }
    }
    Ok(())
}

/// Part 1: `SwitchAutomationScore`'s steps, every candidate's goal PXE.
pub(super) async fn port_steps<T: Topology + Switch + RemoteShell>(
    vlan: VlanId,
    hosts: &[CandidatePorts],
    inventory: &Inventory,
    topology: &T,
) -> Result<Steps<T>, InterpretError> {
    // A host the installation has taken over (boot configured, installing,
    // installed, retiring) keeps its ports: rerunning discovery (a resumed
    // or repeated `harmony install`) must never break an installed host's
    // LAG. A free host (discovered, decommissioned, failed) is put back.
    let repo = inventory.repository().clone();
    let records = tokio::task::spawn_blocking(move || repo.hosts())
        .await
        .map_err(|e| {
            InterpretError::new("OKDSetup01Inventory", "read the inventory", e.to_string())
        })?
        .map_err(|e| {
            InterpretError::new("OKDSetup01Inventory", "read the inventory", e.to_string())
        })?;
    let taken = |c: &CandidatePorts| {
        records.iter().find(|r| {
            r.macs
                .iter()
                .any(|m| HostId::from_macs(&[*m]).is_ok_and(|id| id == c.host.id))
                && matches!(
                    r.phase,
                    InstallPhase::BootConfigured
                        | InstallPhase::Installing
                        | InstallPhase::Installed
                        | InstallPhase::Retiring
                )
        })
    };
    let mut free = Vec::new();
    for h in hosts {
        match taken(h) {
            Some(r) => tracing::info!(
                host = %r.id,
                phase = %r.phase,
                "its switch ports are left as they are: the installation has it"
            ),
            None => free.push(h),
        }
    }
    let score = SwitchAutomationScore::new(
        vlan,
        free.into_iter()
            .map(|h| HostSwitchPlan {
                host: h.host.clone(),
                ports: h.ports.clone(),
                goal: PortGoal::Pxe,
            })
            .collect(),
    );
    SagaScore::<T>::steps(&score, inventory, topology).await
}

/// Part 2: the asset Scores' own steps.
pub(super) async fn asset_steps<T: Topology + HttpServer>(
    assets: &OsAssets,
    inventory: &Inventory,
    topology: &T,
) -> Result<Steps<T>, InterpretError> {
    let mut steps = Vec::new();
    if let Some(scos) = &assets.scos {
        steps.extend(SagaScore::<T>::steps(scos, inventory, topology).await?);
    }
    if let Some(centos) = &assets.centos {
        steps.extend(SagaScore::<T>::steps(centos, inventory, topology).await?);
    }
    Ok(steps)
}

/// Part 3: the two discovery files (`render_cluster` with no host renders
/// exactly them) and the agent, each a `PutFile`.
pub(super) async fn boot_steps<T: Topology + HttpServer>(
    boot: &DiscoveryBoot,
    topology: &T,
) -> Result<Steps<T>, InterpretError> {
    let files = render_cluster(topology, &boot.site, &[], &Default::default())
        .map_err(|e| fail("render the discovery boot files", e))?;
    let mut steps: Steps<T> = files
        .into_iter()
        .map(|a| -> Box<dyn Step<T>> {
            Box::new(PutFile {
                path: a.path,
                contents: a.contents,
            })
        })
        .collect();
    if let Some(path) = &boot.agent {
        let contents = read_agent(path, &boot.site.agent_sha256).await?;
        steps.push(Box::new(PutFile {
            path: boot.site.agent.clone(),
            contents,
        }));
    }
    Ok(steps)
}

/// The agent's bytes, capped, checked against the digest `inventory.ks`
/// verifies (a host would refuse any other binary).
async fn read_agent(path: &Path, wanted: &Sha256Digest) -> Result<Vec<u8>, InterpretError> {
    let what = format!("read the inventory agent {}", path.display());
    let owned = path.to_path_buf();
    let bytes = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        std::fs::File::open(owned)?
            .take(MAX_AGENT + 1)
            .read_to_end(&mut bytes)?;
        Ok(bytes)
    })
    .await
    .map_err(|e| fail(&what, e))?
    .map_err(|e| fail(&what, e))?;
    if bytes.len() as u64 > MAX_AGENT {
        return Err(fail(&what, format!("larger than {MAX_AGENT} bytes")));
    }
    let found = hex::encode(Sha256::digest(&bytes));
    if found != wanted.as_str() {
        return Err(fail(
            &what,
            format!(
                "its SHA-256 is {found}, but boot.agent_sha256 (what inventory.ks checks) is {wanted}"
            ),
        ));
    }
    Ok(bytes)
}
