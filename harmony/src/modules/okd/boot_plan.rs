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

#[cfg(test)]
pub(crate) mod tests {
    use std::time::SystemTime;

    use harmony_inventory_agent::model as wire;

    use super::*;
    use crate::domain::hardware::HostHardware;
    use crate::domain::{HostSummary, InstallPhase};

    /// The QEMU machine of issue 8: a virtio disk (no serial, no WWN:
    /// udev gives it only a by-path link) and a SATA HDD of which the agent
    /// saw no link at all (not chosen: flash and virtual disks first); a
    /// virtio NIC without `speed=` that answered
    /// discovery and an e1000e NIC at 1000 Mb/s.
    pub(crate) fn qemu(by_path: Option<&str>) -> wire::Inventory {
        let disk = |name: &str, kind, by_path: Option<&str>| wire::Disk {
            name: name.into(),
            path: format!("/dev/{name}"),
            by_path: by_path.map(|l| format!("/dev/disk/by-path/{l}")),
            by_id: None,
            model: None,
            vendor: None,
            serial: None,
            wwn: None,
            size_bytes: Some(200 << 30),
            logical_sector_bytes: Some(512),
            physical_sector_bytes: Some(512),
            rotational: Some(false),
            removable: Some(false),
            kind,
            transport: None,
            hctl: None,
        };
        let nic = |name: &str, last: u8, speed: Option<u32>, addr: &str| {
            let mut n = wire::Nic::new(name);
            n.mac = Some(format!("52:54:00:12:34:{last:02x}"));
            n.permanent_mac = n.mac.clone();
            n.speed_mbps = speed;
            n.carrier = Some(true);
            n.ipv4 = vec![addr.into()];
            n
        };
        wire::Inventory {
            schema_version: wire::SCHEMA_VERSION,
            agent_version: "0.1.0".into(),
            collected_at: "2026-01-01T00:00:00Z".into(),
            hostname: None,
            warnings: vec![],
            system: wire::System::default(),
            cpu: wire::Cpu::default(),
            memory: wire::Memory::default(),
            storage: vec![
                disk("sda", wire::DiskKind::Hdd, None),
                disk("vda", wire::DiskKind::Virtual, by_path),
            ],
            network: vec![
                nic("enp1s0", 1, None, "192.168.77.21/24"),
                nic("enp2s0", 2, Some(1000), "10.9.0.5/16"),
            ],
        }
    }

    pub(crate) fn record(inv: &wire::Inventory, ip: &str) -> HostRecord {
        let hardware = HostHardware::from_wire(inv).unwrap();
        HostRecord {
            id: HostId::from_serial("QEMU0001").unwrap(),
            ip: ip.parse().unwrap(),
            macs: hardware
                .nics
                .iter()
                .filter_map(|n| n.identity_mac())
                .collect(),
            first_seen: SystemTime::UNIX_EPOCH,
            last_seen: SystemTime::UNIX_EPOCH,
            role: None,
            hostname: None,
            phase: InstallPhase::Discovered,
            summary: HostSummary::from_hardware(&hardware),
            hardware,
            flags: Vec::new(),
        }
    }

    #[test]
    fn the_plan_uses_the_nic_that_answered_and_a_stable_disk_path() {
        let host = record(&qemu(Some("pci-0000:04:00.0")), "192.168.77.21");
        let plan = plan_boot(&host, &HostNetwork::default()).unwrap();
        assert_eq!(
            plan.install_device.as_str(),
            "/dev/disk/by-path/pci-0000:04:00.0"
        );
        let args: Vec<&str> = plan.network_args.iter().map(KernelArg::as_str).collect();
        assert_eq!(args, ["ip=enp1s0:dhcp", "rd.neednet=1"]);
        let lines = plan.lines().join("\n");
        assert!(
            lines.contains("no bond: single interface enp1s0"),
            "{lines}"
        );
        assert!(lines.contains("enp1s0 answered discovery"), "{lines}");
        // Discovered on the other NIC: that one.
        let other = record(&qemu(Some("pci-0000:04:00.0")), "10.9.0.5");
        let plan = plan_boot(&other, &HostNetwork::default()).unwrap();
        let args: Vec<&str> = plan.network_args.iter().map(KernelArg::as_str).collect();
        assert_eq!(args, ["ip=enp2s0:dhcp", "rd.neednet=1"]);
    }

    /// The chosen disk has no by-id link, no WWN, no by-path link: no plan
    /// (another disk is not silently chosen instead), and the error names
    /// the disk (the callers name the host).
    #[test]
    fn no_stable_disk_path_no_plan() {
        let host = record(&qemu(None), "192.168.77.21");
        let e = plan_boot(&host, &HostNetwork::default()).unwrap_err();
        assert!(
            matches!(&e, BootPlanError::Disk(BootError::NoStablePath { disk }) if disk.starts_with("vda")),
            "{e}"
        );
        assert!(!e.to_string().contains("/dev/vda"), "{e}");
    }
}
