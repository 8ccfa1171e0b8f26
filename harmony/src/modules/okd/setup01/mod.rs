//! `OKDSetup01Inventory`: from a site's bare servers to an Inventory whose
//! hosts are known and hold their roles. One saga on the step log, each part
//! a step (in place when already right, a change with its undo otherwise):
//!
//! 1. the candidate hosts' switch ports in access mode in the provisioning
//!    VLAN (`SwitchAutomationScore`'s steps, goal PXE; no ports, no step);
//! 2. the OS assets staged on the HTTP root (`ScosAssets`: the SCOS live
//!    kernel, initramfs and rootfs; `CentosInventoryAssets`: the discovery
//!    live image's kernel, initrd and tree);
//! 3. `default.ipxe`, `inventory.ks` and the inventory agent published on
//!    the HTTP root (rendered by `artefacts::render_cluster`, written by
//!    `http_files::PutFile`), so unknown hosts boot into discovery (the iPXE
//!    loaders on TFTP are the DHCP/TFTP server's own: dnsmasq and OPNsense
//!    place them when they start);
//! 4. discovery until the expected hosts are known, progress announced
//!    every round (`discover.rs`, task [`DISCOVERY_PROGRESS`]);
//! 5. the site file's pinned roles assigned in the Inventory (`roles.rs`):
//!    a host already holding another role is an error naming both, never
//!    overwritten; hosts not pinned keep what the operator gave them.
//!
//! Two Scores share the saga: [`OKDSetup01Inventory`] (parts 4 and 5) runs
//! on any topology, as discovery always did; its builders
//! [`OKDSetup01Inventory::with_ports`], [`OKDSetup01Inventory::with_assets`]
//! and [`OKDSetup01Inventory::with_boot`] make an [`OKDSetup01Site`], which
//! adds parts 1 to 3 and asks of its topology what they use
//! ([`Setup01Site`]: HTTP root, switch, remote shell).

mod discover;
mod roles;
mod site_parts;

use std::time::Duration;

use async_trait::async_trait;
use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

pub use self::roles::PinnedRole;
pub use self::site_parts::{CandidatePorts, DiscoveryBoot, OsAssets};
use crate::domain::{
    HttpServer, Interpret, InterpretError, Inventory, RemoteShell, SagaInterpret, SagaScore, Score,
    Step, Switch, Topology, VlanId,
};

pub(crate) const NAME: &str = "OKDSetup01Inventory";

/// The task of the discovery's `Event::Progress` (hosts found of expected,
/// every round): apart from the saga's own progress (steps done), which
/// carries the Score's name.
pub const DISCOVERY_PROGRESS: &str = "OKDSetup01Inventory: hosts found";

/// Find at least `expected_hosts` agents on `network` within `timeout`,
/// then give the pinned hosts their roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub struct OKDSetup01Inventory {
    /// The provisioning network to scan.
    pub network: IpNetwork,
    /// The agent's port (`harmony_inventory_agent::model::DEFAULT_PORT`).
    pub port: u16,
    /// Hosts the cluster needs (bootstrap + control plane + workers).
    pub expected_hosts: usize,
    /// Give up after this long.
    #[serde(with = "humantime_duration")]
    pub timeout: Duration,
    /// Pause between scans.
    #[serde(with = "humantime_duration")]
    pub interval: Duration,
    /// On a site with a DHCP server, every round first probes the leased
    /// addresses of the network (what its hosts cost, not what its address
    /// space costs), and only every `full_sweep_every`-th round (the first
    /// included) sweeps the whole network. Without one, every round sweeps.
    #[serde(default = "default_full_sweep_every")]
    pub full_sweep_every: u32,
    /// The site file's `hosts.pinned[]` roles, assigned after discovery.
    #[serde(default)]
    pub pinned: Vec<PinnedRole>,
}

fn default_full_sweep_every() -> u32 {
    6
}

impl OKDSetup01Inventory {
    pub fn new(network: IpNetwork, expected_hosts: usize) -> Self {
        Self {
            network,
            port: harmony_inventory_agent::model::DEFAULT_PORT,
            expected_hosts,
            timeout: Duration::from_secs(30 * 60),
            interval: Duration::from_secs(10),
            full_sweep_every: default_full_sweep_every(),
            pinned: Vec::new(),
        }
    }

    /// Pinned roles (`hosts.pinned[]`: MAC, role, host name) to assign once
    /// the hosts are discovered.
    pub fn with_roles(mut self, pinned: impl IntoIterator<Item = impl Into<PinnedRole>>) -> Self {
        self.pinned = pinned.into_iter().map(Into::into).collect();
        self
    }

    /// The candidates' switch ports put in access mode first.
    pub fn with_ports(self, vlan: VlanId, hosts: Vec<CandidatePorts>) -> OKDSetup01Site {
        OKDSetup01Site::from(self).with_ports(vlan, hosts)
    }

    /// The OS assets staged first.
    pub fn with_assets(self, assets: OsAssets) -> OKDSetup01Site {
        OKDSetup01Site::from(self).with_assets(assets)
    }

    /// `default.ipxe`, `inventory.ks` and the agent published first.
    pub fn with_boot(self, boot: DiscoveryBoot) -> OKDSetup01Site {
        OKDSetup01Site::from(self).with_boot(boot)
    }

    /// Discovery, then the pinned roles.
    async fn inventory_steps<T: Topology>(
        &self,
        inventory: &Inventory,
    ) -> Result<Vec<Box<dyn Step<T>>>, InterpretError> {
        let mut steps: Vec<Box<dyn Step<T>>> =
            vec![Box::new(discover::DiscoverHosts(self.clone()))];
        steps.extend(roles::role_steps::<T>(&self.pinned, inventory).await?);
        Ok(steps)
    }
}

impl<T: Topology> Score<T> for OKDSetup01Inventory {
    fn name(&self) -> String {
        NAME.into()
    }

    fn create_interpret(&self) -> Box<dyn Interpret<T>> {
        Box::new(SagaInterpret(self.clone()))
    }
}

#[async_trait]
impl<T: Topology> SagaScore<T> for OKDSetup01Inventory {
    fn saga_name(&self) -> String {
        NAME.into()
    }

    async fn steps(
        &self,
        inventory: &Inventory,
        _: &T,
    ) -> Result<Vec<Box<dyn Step<T>>>, InterpretError> {
        self.inventory_steps(inventory).await
    }
}

/// What [`OKDSetup01Site`] uses of a site: the HTTP root (assets, boot
/// files, agent) and the switch (ports to access; its steps read the host
/// over the remote shell only for an LACP goal, never here, but
/// `SwitchAutomationScore`'s steps are written for both).
pub trait Setup01Site: Topology + HttpServer + Switch + RemoteShell {}

impl<T> Setup01Site for T where T: Topology + HttpServer + Switch + RemoteShell {}

/// [`OKDSetup01Inventory`] after the site is made ready for discovery:
/// ports, assets and boot files, each optional (none set: the same steps
/// as [`OKDSetup01Inventory`]). One saga, under the same name.
#[derive(Debug, Clone)]
pub struct OKDSetup01Site {
    pub inventory: OKDSetup01Inventory,
    /// The provisioning VLAN and the candidates' ports.
    pub ports: Option<(VlanId, Vec<CandidatePorts>)>,
    pub assets: OsAssets,
    pub boot: Option<DiscoveryBoot>,
}

impl From<OKDSetup01Inventory> for OKDSetup01Site {
    fn from(inventory: OKDSetup01Inventory) -> Self {
        Self {
            inventory,
            ports: None,
            assets: OsAssets::default(),
            boot: None,
        }
    }
}

impl OKDSetup01Site {
    pub fn with_ports(mut self, vlan: VlanId, hosts: Vec<CandidatePorts>) -> Self {
        self.ports = (!hosts.is_empty()).then_some((vlan, hosts));
        self
    }

    pub fn with_assets(mut self, assets: OsAssets) -> Self {
        self.assets = assets;
        self
    }

    pub fn with_boot(mut self, boot: DiscoveryBoot) -> Self {
        self.boot = Some(boot);
        self
    }

    pub fn with_roles(mut self, pinned: impl IntoIterator<Item = impl Into<PinnedRole>>) -> Self {
        self.inventory = self.inventory.with_roles(pinned);
        self
    }
}

impl<T: Setup01Site> Score<T> for OKDSetup01Site {
    fn name(&self) -> String {
        NAME.into()
    }

    fn create_interpret(&self) -> Box<dyn Interpret<T>> {
        Box::new(SagaInterpret(self.clone()))
    }
}

#[async_trait]
impl<T: Setup01Site> SagaScore<T> for OKDSetup01Site {
    fn saga_name(&self) -> String {
        NAME.into()
    }

    async fn steps(
        &self,
        inventory: &Inventory,
        topology: &T,
    ) -> Result<Vec<Box<dyn Step<T>>>, InterpretError> {
        site_parts::check_paths(&self.assets, self.boot.as_ref())?;
        let mut steps: Vec<Box<dyn Step<T>>> = Vec::new();
        if let Some((vlan, hosts)) = &self.ports {
            steps.extend(site_parts::port_steps(*vlan, hosts, inventory, topology).await?);
        }
        steps.extend(site_parts::asset_steps(&self.assets, inventory, topology).await?);
        if let Some(boot) = &self.boot {
            steps.extend(site_parts::boot_steps(boot, topology).await?);
        }
        steps.extend(self.inventory.inventory_steps(inventory).await?);
        Ok(steps)
    }
}

/// Durations as human-readable strings in site files (`30m`, `200ms`).
mod humantime_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}
