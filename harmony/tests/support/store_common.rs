//! Shared fixtures for the store tests (included with `#[path]`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use harmony::domain::{
    DiscoveredHost, HostHardware, HostId, InventoryRepository, MacAddress, Role,
};
use harmony::inventory_model::{Cpu, Disk, DiskKind, Inventory, Memory, Nic, System};

/// A cluster's hosts: 1 bootstrap, 3 control-plane, 2 workers (host
/// number, role, name), for `store_with_roles`.
pub const CLUSTER_HOSTS: [(u32, Role, &str); 6] = [
    (1, Role::Bootstrap, "bootstrap"),
    (2, Role::ControlPlane, "master-0"),
    (3, Role::ControlPlane, "master-1"),
    (4, Role::ControlPlane, "master-2"),
    (5, Role::Worker, "worker-0"),
    (6, Role::Worker, "worker-1"),
];

/// A store at `path` with hosts `1..=total` discovered at
/// `<prefix>.<100 + n>`, and `roles` given (host number, role, name).
pub fn store_with_roles(
    path: &std::path::Path,
    prefix: &str,
    total: u32,
    roles: &[(u32, Role, &str)],
) -> harmony::store::SqliteStore {
    let store = harmony::store::SqliteStore::open(path).unwrap();
    for n in 1..=total {
        store
            .upsert_discovered(&host(n, &format!("{prefix}.{}", 100 + n)), t(n.into()))
            .unwrap();
    }
    for (n, role, name) in roles {
        store
            .assign(
                &host(*n, "192.0.2.1").id,
                Some(*role),
                Some(name.parse().unwrap()),
            )
            .unwrap();
    }
    store
}

pub fn t(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + ms)
}

pub fn mac(n: u32, k: u8) -> MacAddress {
    let b = n.to_be_bytes();
    MacAddress::new([0x52, k, b[0], b[1], b[2], b[3]])
}

pub fn inventory(n: u32, macs: &[MacAddress], uuid: &str) -> Inventory {
    let mut network: Vec<Nic> = macs
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut nic = Nic::new(format!("eno{}", i + 1));
            nic.mac = Some(m.to_string());
            nic.permanent_mac = Some(m.to_string());
            nic.speed_mbps = Some(25_000);
            nic.carrier = Some(true);
            nic.operstate = Some("up".into());
            nic.mtu = Some(9000);
            nic.driver = Some("mlx5_core".into());
            nic.pci_address = Some(format!("0000:3b:00.{i}"));
            nic.ipv4 = vec![format!("10.{}.{}.{}/16", i, (n >> 8) & 0xff, n & 0xff)];
            nic
        })
        .collect();
    let mut bridge = Nic::new("br0");
    bridge.is_virtual = true;
    network.push(bridge);
    let storage = (0..(2 + n % 3))
        .map(|d| Disk {
            name: format!("nvme{d}n1"),
            path: format!("/dev/nvme{d}n1"),
            by_path: Some(format!("/dev/disk/by-path/pci-0000:5e:00.{d}-nvme-1")),
            by_id: Some(format!("/dev/disk/by-id/nvme-eui.{n:08x}{d:08x}")),
            model: Some("SAMSUNG MZQL2960HCJR-00A07".into()),
            vendor: None,
            serial: Some(format!("S64FNE0R{n:06}{d}")),
            wwn: Some(format!("eui.{n:016x}{d:04x}")),
            size_bytes: Some(960_197_124_096),
            logical_sector_bytes: Some(512),
            physical_sector_bytes: Some(4096),
            rotational: Some(false),
            removable: Some(false),
            kind: DiskKind::Nvme,
            transport: Some("nvme".into()),
            hctl: None,
        })
        .collect();
    Inventory {
        schema_version: 1,
        agent_version: "0.1.0".into(),
        collected_at: "2026-11-25T10:00:00Z".into(),
        hostname: Some(format!("localhost-{n}")),
        warnings: vec![],
        system: System {
            vendor: Some("Dell Inc.".into()),
            product: Some("PowerEdge R650".into()),
            serial: Some(format!("SN{n:07}")),
            uuid: Some(uuid.to_string()),
            family: Some("PowerEdge".into()),
            boot_mode: None,
            bmc_address: Some(format!("10.255.{}.{}", (n >> 8) & 0xff, n & 0xff)),
            hypervisor: None,
            ..System::default()
        },
        cpu: Cpu {
            model: Some("Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz".into()),
            vendor: Some("GenuineIntel".into()),
            sockets: Some(2),
            cores: Some(64),
            threads: Some(128),
            mhz: Some(3200.0),
            flags: vec!["vmx".into(), "aes".into(), "avx2".into(), "avx512f".into()],
            ..Cpu::default()
        },
        memory: Memory {
            total_bytes: Some(540_000_000_000),
            smbios_total_bytes: Some(549_755_813_888),
            dimms: vec![],
            ..Memory::default()
        },
        storage,
        network,
    }
}

/// Host `n` at `ip` with `nmacs` MACs (derived from `n`, so unique per n).
pub fn host_with(n: u32, ip: &str, macs: Vec<MacAddress>) -> DiscoveredHost {
    let uuid = format!("4c4c4544-0000-4000-8000-{:012x}", u64::from(n) + 1);
    let inventory = inventory(n, &macs, &uuid);
    let raw_json = serde_json::to_vec(&inventory).unwrap();
    let id = HostId::from_uuid(&uuid).unwrap();
    let serial = HostId::from_serial(inventory.system.serial.as_deref().unwrap()).unwrap();
    DiscoveredHost {
        firmware_ids: vec![id.clone(), serial],
        id,
        ip: ip.parse::<IpAddr>().unwrap(),
        macs,
        hardware: HostHardware::from_wire(&inventory).unwrap(),
        raw_json,
    }
}

pub fn host(n: u32, ip: &str) -> DiscoveredHost {
    host_with(n, ip, vec![mac(n, 1), mac(n, 2)])
}
