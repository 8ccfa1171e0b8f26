//! The wire format: the JSON document the agent serves on `GET /`.
//!
//! Field names are part of the contract between the agent and Harmony: fields
//! may be added, never renamed. Every value the agent cannot read is `null`
//! (never an empty string, `0` or `-1`), and the reason is recorded in the
//! top-level `warnings` array.
//!
//! These types are plain data. Harmony deserializes them from untrusted peers,
//! so nothing here may be trusted before Harmony's own validation.

use serde::{Deserialize, Serialize};

/// Version of this document's layout. Bumped only on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// TCP port the agent listens on by default, and that Harmony's scanner probes.
pub const DEFAULT_PORT: u16 = 25000;

/// Placeholder strings firmware ships instead of real values; compared
/// case-insensitively after trimming. See [`is_bogus`].
pub const BOGUS_VALUES: &[&str] = &[
    "To Be Filled By O.E.M.",
    "Default string",
    "Not Specified",
    "Not Available",
    "None",
    "System Serial Number",
    "System Product Name",
    "System manufacturer",
    "0123456789",
    "Unknown",
    "N/A",
    "-",
    "0",
    "00000000",
    "Chassis Serial Number",
    "Base Board Serial Number",
    "Unspecified",
];

/// Whether `value` is a firmware placeholder rather than real data
/// (trimmed, case-insensitive match against [`BOGUS_VALUES`]). Empty strings
/// are bogus too.
pub fn is_bogus(value: &str) -> bool {
    let v = value.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    v.is_empty() || BOGUS_VALUES.iter().any(|b| b.eq_ignore_ascii_case(v))
}

/// The whole inventory of one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub schema_version: u32,
    pub agent_version: String,
    /// RFC 3339 UTC timestamp of the collection this document comes from.
    pub collected_at: String,
    pub hostname: Option<String>,
    /// One entry per source that failed or could not be read.
    pub warnings: Vec<Warning>,
    pub system: System,
    pub cpu: Cpu,
    pub memory: Memory,
    /// Whole disks only (no partitions, loop, ram, zram, dm or md devices).
    pub storage: Vec<Disk>,
    /// Network interfaces except loopback; physical NICs first.
    pub network: Vec<Nic>,
}

/// A source that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// The collector or file that failed, e.g. `smbios`, `lldp`, `/proc/cpuinfo`.
    pub source: String,
    pub message: String,
}

/// How the firmware booted the running system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BootMode {
    Uefi,
    Bios,
}

/// System identity (SMBIOS type 1, or `/sys/class/dmi/id`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct System {
    pub vendor: Option<String>,
    pub product: Option<String>,
    pub serial: Option<String>,
    /// Lower-case hyphenated UUID; all-zero and all-F values are `null`.
    pub uuid: Option<String>,
    pub family: Option<String>,
    pub boot_mode: Option<BootMode>,
    /// Address of the baseboard management controller, when the host says.
    pub bmc_address: Option<String>,
    /// Hypervisor name when the host runs virtualised (`kvm`, `vmware`, ...).
    pub hypervisor: Option<String>,
    /// Serial of the baseboard (SMBIOS type 2, or `/sys/class/dmi/id/board_serial`).
    #[serde(default)]
    pub baseboard_serial: Option<String>,
    /// Serial of the chassis (SMBIOS type 3, or `/sys/class/dmi/id/chassis_serial`).
    #[serde(default)]
    pub chassis_serial: Option<String>,
}

/// Processors, totals over all sockets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    pub model: Option<String>,
    pub vendor: Option<String>,
    pub sockets: Option<u32>,
    /// Physical cores, all sockets.
    pub cores: Option<u32>,
    /// Logical CPUs (hardware threads) online, all sockets.
    pub threads: Option<u32>,
    /// Maximum frequency when cpufreq reports it, else the current one.
    pub mhz: Option<f64>,
    /// Every flag `/proc/cpuinfo` lists (`flags`, or `Features` on ARM), sorted.
    pub flags: Vec<String>,
    /// Machine architecture as `uname -m` says it (`x86_64`, `aarch64`, ...).
    #[serde(default)]
    pub architecture: Option<String>,
}

/// Memory as the kernel sees it, and as installed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    /// `MemTotal` from `/proc/meminfo` (usable by the OS).
    pub total_bytes: Option<u64>,
    /// Sum of the installed DIMMs from SMBIOS; `null` without an SMBIOS table.
    pub smbios_total_bytes: Option<u64>,
    /// Online memory blocks times the block size, from
    /// `/sys/devices/system/memory` (as `lsmem` computes); known without SMBIOS.
    #[serde(default)]
    pub physical_bytes: Option<u64>,
    /// Populated DIMM slots (SMBIOS type 17); empty slots are excluded.
    pub dimms: Vec<Dimm>,
}

/// One installed memory module.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dimm {
    pub locator: Option<String>,
    pub bank: Option<String>,
    pub size_bytes: Option<u64>,
    /// `DDR4`, `DDR5`, ...
    #[serde(rename = "type")]
    pub memory_type: Option<String>,
    pub speed_mts: Option<u32>,
    pub manufacturer: Option<String>,
    pub serial: Option<String>,
    pub part_number: Option<String>,
}

/// What kind of device a disk is, for root-device choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskKind {
    Nvme,
    Ssd,
    Hdd,
    Virtual,
    Usb,
    Mmc,
    Optical,
    Unknown,
}

/// One whole disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disk {
    /// Kernel name, e.g. `sda`, `nvme0n1`.
    pub name: String,
    /// `/dev/<name>`.
    pub path: String,
    /// `/dev/disk/by-path/...` when known.
    pub by_path: Option<String>,
    /// The most stable `/dev/disk/by-id/...` link (wwn- first).
    pub by_id: Option<String>,
    pub model: Option<String>,
    pub vendor: Option<String>,
    pub serial: Option<String>,
    pub wwn: Option<String>,
    pub size_bytes: Option<u64>,
    pub logical_sector_bytes: Option<u32>,
    pub physical_sector_bytes: Option<u32>,
    pub rotational: Option<bool>,
    pub removable: Option<bool>,
    pub kind: DiskKind,
    /// `nvme`, `sata`, `sas`, `usb`, `virtio`, `scsi`, `mmc`, ...
    pub transport: Option<String>,
    /// SCSI host:channel:target:lun.
    pub hctl: Option<String>,
}

/// LLDP neighbour seen on a NIC: the switch and port it is cabled to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lldp {
    pub chassis_id: Option<String>,
    pub port_id: Option<String>,
    pub system_name: Option<String>,
    pub port_description: Option<String>,
}

/// One network interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Nic {
    pub name: String,
    /// Current MAC, lower-case, colon-separated.
    pub mac: Option<String>,
    /// Burned-in MAC (differs from `mac` on bond members).
    pub permanent_mac: Option<String>,
    /// Negotiated speed; `null` when unknown or without link (never `-1`).
    pub speed_mbps: Option<u32>,
    pub carrier: Option<bool>,
    pub operstate: Option<String>,
    pub mtu: Option<u32>,
    pub driver: Option<String>,
    pub pci_address: Option<String>,
    /// PCI vendor ID of the NIC's PCI function, `0x` and 4 lower-case hex digits (`0x8086`).
    #[serde(default)]
    pub pci_vendor_id: Option<String>,
    /// PCI device ID of the NIC's PCI function, like `pci_vendor_id` (`0x1572`).
    #[serde(default)]
    pub pci_device_id: Option<String>,
    /// Software device (bridge, bond, veth, tun, ...), not a NIC.
    pub is_virtual: bool,
    /// Name of the bond or bridge this interface is a member of.
    pub master: Option<String>,
    /// Addresses with prefix length, e.g. `192.0.2.10/24`.
    pub ipv4: Vec<String>,
    pub ipv6: Vec<String>,
    pub lldp: Option<Lldp>,
}

impl Nic {
    /// An interface with only its name known.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            mac: None,
            permanent_mac: None,
            speed_mbps: None,
            carrier: None,
            operstate: None,
            mtu: None,
            driver: None,
            pci_address: None,
            pci_vendor_id: None,
            pci_device_id: None,
            is_virtual: false,
            master: None,
            ipv4: Vec::new(),
            ipv6: Vec::new(),
            lldp: None,
        }
    }
}

impl Inventory {
    /// Physical NICs (not virtual), in reported order.
    pub fn physical_nics(&self) -> impl Iterator<Item = &Nic> {
        self.network.iter().filter(|n| !n.is_virtual)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_the_documented_contract() {
        let inv = Inventory {
            schema_version: SCHEMA_VERSION,
            agent_version: "0.1.0".into(),
            collected_at: "2026-11-25T10:00:00Z".into(),
            hostname: None,
            warnings: vec![],
            system: System {
                boot_mode: Some(BootMode::Uefi),
                ..System::default()
            },
            cpu: Cpu::default(),
            memory: Memory {
                dimms: vec![Dimm {
                    memory_type: Some("DDR4".into()),
                    ..Dimm::default()
                }],
                ..Memory::default()
            },
            storage: vec![],
            network: vec![],
        };
        let v = serde_json::to_value(&inv).unwrap();
        assert_eq!(v["system"]["boot_mode"], "uefi");
        assert_eq!(v["memory"]["dimms"][0]["type"], "DDR4");
        assert!(v["hostname"].is_null());
        for key in [
            "schema_version",
            "agent_version",
            "collected_at",
            "hostname",
            "warnings",
            "system",
            "cpu",
            "memory",
            "storage",
            "network",
        ] {
            assert!(v.get(key).is_some(), "missing top-level key {key}");
        }
        let back: Inventory = serde_json::from_value(v).unwrap();
        assert_eq!(back, inv);
    }

    #[test]
    fn documents_without_the_newer_fields_still_parse() {
        let old = r#"{"schema_version":1,"agent_version":"0.1.0","collected_at":"x",
            "hostname":null,"warnings":[],
            "system":{"vendor":null,"product":null,"serial":null,"uuid":null,"family":null,
                      "boot_mode":null,"bmc_address":null,"hypervisor":null},
            "cpu":{"model":null,"vendor":null,"sockets":null,"cores":null,"threads":null,
                   "mhz":null,"flags":["vmx"]},
            "memory":{"total_bytes":1,"smbios_total_bytes":null,"dimms":[]},
            "storage":[],
            "network":[{"name":"eno1","mac":null,"permanent_mac":null,"speed_mbps":null,
                        "carrier":null,"operstate":null,"mtu":null,"driver":null,
                        "pci_address":null,"is_virtual":false,"master":null,
                        "ipv4":[],"ipv6":[],"lldp":null}]}"#;
        let inv: Inventory = serde_json::from_str(old).unwrap();
        assert_eq!(inv.system.baseboard_serial, None);
        assert_eq!(inv.system.chassis_serial, None);
        assert_eq!(inv.cpu.architecture, None);
        assert_eq!(inv.memory.physical_bytes, None);
        assert_eq!(inv.network[0].pci_vendor_id, None);
        assert_eq!(inv.network[0].pci_device_id, None);
    }
}
