//! A host's boot plan: which disk CoreOS installs to, its bond and the
//! dracut network arguments, computed from its typed hardware, the address
//! it answered discovery on and the site's per-host network policy. [`plan_boot`] is the one place this is
//! decided: `BootArtefacts` writes the files from it and the TUI shows it,
//! so what an operator sees is what the host boots with.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::bond::{Addressing, BondError, BondPlan, SiteBondPolicy, plan_bond};
use crate::domain::{DevicePath, HostId, HostRecord, KernelArg};
use crate::modules::boot::{BootError, install_device};

/// How one host is networked (from the site file; DHCP and automatic bond
/// choice by default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostNetwork {
    pub bond: SiteBondPolicy,
    pub addressing: Option<Addressing>,
}

/// The site's network policy of every host: what the site file says per
/// host, the default ([`HostNetwork::default`]) for the others. This is
/// what `BootArtefacts` carries in its `networks` field.
pub type SiteNetworks = BTreeMap<HostId, HostNetwork>;

/// The policy of `id` under `networks` (the default when the site file
/// says nothing about it).
pub fn network_of<'a>(networks: &'a SiteNetworks, id: &HostId) -> &'a HostNetwork {
    static DEFAULT: std::sync::OnceLock<HostNetwork> = std::sync::OnceLock::new();
    networks
        .get(id)
        .unwrap_or_else(|| DEFAULT.get_or_init(HostNetwork::default))
}

/// What a host's boot files carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootPlan {
    /// `coreos.inst.install_dev=`.
    pub install_device: DevicePath,
    /// The bond (or single NIC) and its addressing; also gives the
    /// persistent keyfiles ([`BondPlan::keyfiles`]).
    pub bond: BondPlan,
    /// The dracut `bond=`, `ip=`, `nameserver=`, `rd.neednet=` arguments.
    pub network_args: Vec<KernelArg>,
}

/// Why a host has no boot plan.
#[derive(Debug, thiserror::Error)]
pub enum BootPlanError {
    #[error(transparent)]
    Disk(#[from] BootError),
    #[error("bond: {0}")]
    Bond(#[from] BondError),
}

/// The boot plan of `host` under `network`: from its typed hardware, and
/// the address its agent answered discovery on (which tells the NIC that
/// reaches the provisioning network).
pub fn plan_boot(host: &HostRecord, network: &HostNetwork) -> Result<BootPlan, BootPlanError> {
    let hardware = &host.hardware;
    let bond = plan_bond(
        hardware,
        &network.bond,
        network.addressing.clone().unwrap_or(Addressing::Dhcp),
        Some(host.ip),
    )?;
    let network_args = bond.kernel_args()?;
    let install_device = install_device(hardware)?;
    Ok(BootPlan {
        install_device,
        bond,
        network_args,
    })
}

impl BootPlan {
    /// The plan as text lines for people (CLI, TUI); every line is made
    /// of typed values and safe text.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!("install on {}", self.install_device)];
        out.extend(self.bond.to_string().lines().map(str::to_string));
        let args: Vec<&str> = self.network_args.iter().map(KernelArg::as_str).collect();
        out.push(format!("args: {}", args.join(" ")));
        out
    }
}
