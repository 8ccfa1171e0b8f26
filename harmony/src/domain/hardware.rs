//! The hardware of a host as the domain knows it: typed after validation.
//!
//! An agent's document (the wire type, `harmony_inventory_agent::model`) is
//! untrusted. [`HostHardware::from_wire`] is the one conversion from it:
//! every identifier (interface names, MACs, device paths, PCI addresses,
//! WWNs, addresses) parses into its typed value or the whole document is
//! refused with a [`HardwareError`] naming the field and the value; the few
//! values that are dropped instead (a host name, a udev link, an all-zero or
//! multicast MAC) leave a warning naming the field and the reason; every
//! free text (vendor, model, serial, LLDP names, warnings) becomes a
//! [`SafeText`]. Discovery calls it at the trust boundary, the store calls
//! it again on every row it reads, and planning (install disk, bond, role
//! fitness) and the TUI read only these types, never a wire string.
//!
//! [`HostHardware::to_wire`] gives back the cleaned document (what the store
//! keeps and `harmony inventory show --json` prints); converting that again
//! yields the same hardware.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use harmony_inventory_agent::model as wire;
use ipnetwork::IpNetwork;

use super::text::SafeText;
use super::values::{DevicePath, HostId, Hostname, InterfaceName, MacAddress, ValueError};

/// A field of an agent's document that cannot be typed: the host is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} = {value:?}: {reason}")]
pub struct HardwareError {
    /// Where in the document, e.g. `network[2].pci_address`.
    pub field: String,
    /// The offending value as reported (at most 256 characters).
    pub value: String,
    pub reason: String,
}

impl HardwareError {
    fn new(field: impl Into<String>, value: &str, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            value: value.chars().take(256).collect(),
            reason: reason.into(),
        }
    }
}

/// A short identifier reported by the agent (driver, operstate, transport,
/// HCTL, CPU flag, kernel disk name): 1 to 256 of `[A-Za-z0-9._:-]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Word(String);

impl Word {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Word {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.chars().count() > 256 {
            return Err(ValueError::new("word", s, "must be 1 to 256 characters"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        {
            return Err(ValueError::new(
                "word",
                s,
                "only letters, digits and . _ : - are allowed",
            ));
        }
        Ok(Self(s.to_string()))
    }
}

impl fmt::Display for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A PCI function address `domain:bus:device.function`, e.g. `0000:3b:00.1`
/// (stored lower-case).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciAddress(String);

impl PciAddress {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `domain:bus:device`: the ports of one card share it.
    pub fn device(&self) -> &str {
        self.0.rsplit_once('.').map_or(&self.0, |(dev, _)| dev)
    }
}

impl FromStr for PciAddress {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        let ok = b.len() == 12
            && b[4] == b':'
            && b[7] == b':'
            && b[10] == b'.'
            && b.iter()
                .enumerate()
                .all(|(i, c)| matches!(i, 4 | 7 | 10) || c.is_ascii_hexdigit())
            && b[11] <= b'7';
        if !ok {
            return Err(ValueError::new(
                "PCI address",
                s,
                "expected domain:bus:device.function like 0000:3b:00.1",
            ));
        }
        Ok(Self(s.to_ascii_lowercase()))
    }
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A disk's world wide name as the kernel reports it (`0x5000c500a1b2c3d4`,
/// `eui.0025385b71b0a1b2`, `naa.…`): 1 to 64 of `[A-Za-z0-9.:_-]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Wwn(String);

impl Wwn {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The udev link of a SCSI/ATA `0x…` WWN, `/dev/disk/by-id/wwn-0x…`;
    /// other forms (NVMe `eui.…`) have no `wwn-` link, so none is made up.
    pub fn udev_link(&self) -> Option<DevicePath> {
        let hex = self.0.strip_prefix("0x")?;
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        format!("/dev/disk/by-id/wwn-{}", self.0).parse().ok()
    }
}

impl FromStr for Wwn {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'));
        if !ok {
            return Err(ValueError::new(
                "WWN",
                s,
                "must be 1 to 64 of letters, digits and . _ - :",
            ));
        }
        Ok(Self(s.to_string()))
    }
}

impl fmt::Display for Wwn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A system UUID (lower-case, hyphenated); placeholders are refused.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SystemUuid(String);

impl SystemUuid {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host identity this UUID gives.
    pub fn host_id(&self) -> Result<HostId, ValueError> {
        HostId::from_uuid(&self.0)
    }
}

impl FromStr for SystemUuid {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let id = HostId::from_uuid(s)?;
        let canonical = id.as_str().strip_prefix("uuid:").unwrap_or(id.as_str());
        Ok(Self(canonical.to_string()))
    }
}

impl fmt::Display for SystemUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How the firmware booted the running system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootMode {
    Uefi,
    Bios,
}

/// What kind of device a disk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

/// A source the agent could not read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentWarning {
    pub source: SafeText,
    pub message: SafeText,
}

/// System identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct System {
    pub vendor: Option<SafeText>,
    pub product: Option<SafeText>,
    /// For display; the identity uses the serial as reported (see discovery).
    pub serial: Option<SafeText>,
    pub uuid: Option<SystemUuid>,
    pub family: Option<SafeText>,
    pub boot_mode: Option<BootMode>,
    pub bmc_address: Option<IpAddr>,
    pub hypervisor: Option<SafeText>,
    /// SMBIOS type 2 serial (display only, never an identity).
    pub baseboard_serial: Option<SafeText>,
    /// SMBIOS type 3 serial (display only, never an identity).
    pub chassis_serial: Option<SafeText>,
}

/// Processors, totals over all sockets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cpu {
    pub model: Option<SafeText>,
    pub vendor: Option<SafeText>,
    pub sockets: Option<u32>,
    pub cores: Option<u32>,
    pub threads: Option<u32>,
    pub mhz: Option<f64>,
    /// Every flag the CPU lists (at most 1 024 of at most 64 characters).
    pub flags: Vec<Word>,
    /// `uname -m`: `x86_64`, `aarch64`...
    pub architecture: Option<Word>,
}

/// One installed memory module.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dimm {
    pub locator: Option<SafeText>,
    pub bank: Option<SafeText>,
    pub size_bytes: Option<u64>,
    pub memory_type: Option<SafeText>,
    pub speed_mts: Option<u32>,
    pub manufacturer: Option<SafeText>,
    pub serial: Option<SafeText>,
    pub part_number: Option<SafeText>,
}

/// Memory as the kernel sees it, and as installed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memory {
    pub total_bytes: Option<u64>,
    pub smbios_total_bytes: Option<u64>,
    /// Online memory blocks times the block size (known without SMBIOS).
    pub physical_bytes: Option<u64>,
    pub dimms: Vec<Dimm>,
}

/// One whole disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// Kernel name, e.g. `sda`, `nvme0n1` (`[A-Za-z0-9._-]`, no `/`).
    pub name: Word,
    /// `/dev/<name>`.
    pub path: DevicePath,
    /// A `/dev/disk/by-path/` link.
    pub by_path: Option<DevicePath>,
    /// A `/dev/disk/by-id/` link.
    pub by_id: Option<DevicePath>,
    pub model: Option<SafeText>,
    pub vendor: Option<SafeText>,
    pub serial: Option<SafeText>,
    pub wwn: Option<Wwn>,
    pub size_bytes: Option<u64>,
    pub logical_sector_bytes: Option<u32>,
    pub physical_sector_bytes: Option<u32>,
    pub rotational: Option<bool>,
    pub removable: Option<bool>,
    pub kind: DiskKind,
    pub transport: Option<Word>,
    pub hctl: Option<Word>,
}

/// LLDP neighbour seen on a NIC (display only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lldp {
    pub chassis_id: Option<SafeText>,
    pub port_id: Option<SafeText>,
    pub system_name: Option<SafeText>,
    pub port_description: Option<SafeText>,
}

/// One network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    pub name: InterfaceName,
    /// Current MAC (a reported all-zero or multicast MAC is dropped, with a
    /// warning).
    pub mac: Option<MacAddress>,
    /// Burned-in MAC.
    pub permanent_mac: Option<MacAddress>,
    pub speed_mbps: Option<u32>,
    pub carrier: Option<bool>,
    pub operstate: Option<Word>,
    pub mtu: Option<u32>,
    pub driver: Option<Word>,
    pub pci_address: Option<PciAddress>,
    /// PCI vendor ID of the NIC's PCI function (`0x8086`: Intel).
    pub pci_vendor_id: Option<u16>,
    /// PCI device ID of the NIC's PCI function.
    pub pci_device_id: Option<u16>,
    /// Software device (bridge, bond, veth...), not a NIC.
    pub is_virtual: bool,
    pub master: Option<InterfaceName>,
    pub ipv4: Vec<IpNetwork>,
    pub ipv6: Vec<IpNetwork>,
    pub lldp: Option<Lldp>,
}

impl Nic {
    /// An interface with only its name known.
    pub fn new(name: InterfaceName) -> Self {
        Self {
            name,
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

    /// The permanent MAC, else the current one.
    pub fn identity_mac(&self) -> Option<MacAddress> {
        self.permanent_mac.or(self.mac)
    }

    /// Link up: carrier, or an `up` operstate.
    pub fn link_up(&self) -> bool {
        self.carrier == Some(true)
            || self
                .operstate
                .as_ref()
                .is_some_and(|s| s.as_str().eq_ignore_ascii_case("up"))
    }

    /// The switch this NIC is cabled to (LLDP chassis id, else system name).
    pub fn switch(&self) -> Option<&SafeText> {
        let l = self.lldp.as_ref()?;
        l.chassis_id
            .as_ref()
            .filter(|s| !s.is_blank())
            .or(l.system_name.as_ref().filter(|s| !s.is_blank()))
    }
}

/// Everything an agent reported about one host, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct HostHardware {
    pub agent_version: SafeText,
    pub collected_at: SafeText,
    /// The host name the host reported (a hint; invalid ones are dropped
    /// with a warning).
    pub hostname: Option<Hostname>,
    pub warnings: Vec<AgentWarning>,
    pub system: System,
    pub cpu: Cpu,
    pub memory: Memory,
    pub disks: Vec<Disk>,
    pub nics: Vec<Nic>,
}

impl HostHardware {
    /// Physical NICs (not virtual), in reported order.
    pub fn physical_nics(&self) -> impl Iterator<Item = &Nic> {
        self.nics.iter().filter(|n| !n.is_virtual)
    }

    /// Installed memory: the SMBIOS DIMM total when known, else the online
    /// memory blocks, else the kernel's usable total.
    pub fn installed_memory(&self) -> Option<u64> {
        self.memory
            .smbios_total_bytes
            .or(self.memory.physical_bytes)
            .or(self.memory.total_bytes)
    }

    /// Total size of the disks of known size.
    pub fn disk_bytes(&self) -> u64 {
        self.disks
            .iter()
            .filter_map(|d| d.size_bytes)
            .fold(0u64, u64::saturating_add)
    }

    /// The one conversion from an agent's document. See the module docs.
    pub fn from_wire(inv: &wire::Inventory) -> Result<Self, HardwareError> {
        convert::inventory(inv)
    }

    /// The cleaned wire document: what the store keeps.
    pub fn to_wire(&self) -> wire::Inventory {
        convert::to_wire(self)
    }
}

mod convert {
    //! Field by field, in document order; the first failure names its field.

    use super::*;

    fn text(s: &Option<String>) -> Option<SafeText> {
        s.as_deref().map(SafeText::new)
    }

    /// `[A-Za-z0-9]` plus `extra`, 1.. characters, then a [`Word`].
    fn word(field: &str, s: &str, extra: &str) -> Result<Word, HardwareError> {
        if s.is_empty() {
            return Err(HardwareError::new(field, s, "empty"));
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
        {
            return Err(HardwareError::new(
                field,
                s,
                format!("only letters, digits and {extra:?} are allowed"),
            ));
        }
        Word::from_str(s).map_err(|e| HardwareError::new(field, s, e.reason))
    }

    fn opt_word(
        field: &str,
        s: &Option<String>,
        extra: &str,
    ) -> Result<Option<Word>, HardwareError> {
        s.as_deref().map(|s| word(field, s, extra)).transpose()
    }

    fn at_most<T: PartialOrd + Copy + fmt::Display>(
        field: &str,
        v: Option<T>,
        max: T,
    ) -> Result<Option<T>, HardwareError> {
        match v {
            Some(x) if x > max => Err(HardwareError::new(
                field,
                &x.to_string(),
                format!("larger than {max}"),
            )),
            other => Ok(other),
        }
    }

    /// A kernel name: 1 to 64 of `[A-Za-z0-9._-]` (no `/`), starting with
    /// a letter or a digit (so never `.`, `..`, `...` or `-rf`).
    fn component(field: &str, whole: &str, name: &str) -> Result<(), HardwareError> {
        if name.is_empty()
            || name.len() > 64
            || !name.starts_with(|c: char| c.is_ascii_alphanumeric())
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(HardwareError::new(
                field,
                whole,
                "name must be 1 to 64 of [A-Za-z0-9._-], starting with a letter or a digit",
            ));
        }
        Ok(())
    }

    /// `/dev/NAME` with NAME a safe single component.
    fn dev_path(field: &str, s: &str) -> Result<DevicePath, HardwareError> {
        let Some(name) = s.strip_prefix("/dev/") else {
            return Err(HardwareError::new(field, s, "must start with /dev/"));
        };
        component(field, s, name)?;
        DevicePath::from_str(s).map_err(|e| HardwareError::new(field, s, e.reason))
    }

    /// `/dev/disk/by-KIND/LINK` with LINK a safe single component; the
    /// reason when not.
    fn by_link(s: &str, kind: &str) -> Result<DevicePath, String> {
        let prefix = format!("/dev/disk/by-{kind}/");
        let Some(link) = s.strip_prefix(prefix.as_str()) else {
            return Err(format!("must start with {prefix}"));
        };
        if !link.starts_with(|c: char| c.is_ascii_alphanumeric())
            || !link.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '+' | '@')
            })
        {
            return Err(
                "link name must be of [A-Za-z0-9._:+@-], starting with a letter or a digit".into(),
            );
        }
        DevicePath::from_str(s).map_err(|e| e.reason.to_string())
    }

    /// A MAC as reported: syntax errors (mixed separators included) refuse
    /// the host; a well-formed but unusable address (all-zero, multicast)
    /// is dropped with a warning naming the field and the reason.
    fn mac(
        field: &str,
        s: &Option<String>,
        warnings: &mut Vec<AgentWarning>,
    ) -> Result<Option<MacAddress>, HardwareError> {
        let Some(raw) = s.as_deref() else {
            return Ok(None);
        };
        let sep = raw.as_bytes().get(2).copied();
        let well_formed = raw.len() == 17
            && matches!(sep, Some(b':' | b'-'))
            && raw.bytes().enumerate().all(|(i, b)| {
                if i % 3 == 2 {
                    Some(b) == sep
                } else {
                    b.is_ascii_hexdigit()
                }
            });
        if !well_formed {
            return Err(HardwareError::new(
                field,
                raw,
                "not a MAC address (six hex octets, one separator, ':' or '-')",
            ));
        }
        match MacAddress::from_str(raw) {
            Ok(m) => Ok(Some(m)),
            Err(e) => {
                warnings.push(warning(format!("MAC dropped: {field}: {}", e.reason)));
                Ok(None)
            }
        }
    }

    fn warning(message: String) -> AgentWarning {
        AgentWarning {
            source: SafeText::new("harmony"),
            message: SafeText::new(&message),
        }
    }

    pub(super) fn inventory(inv: &wire::Inventory) -> Result<HostHardware, HardwareError> {
        let mut warnings: Vec<AgentWarning> = inv
            .warnings
            .iter()
            .map(|w| AgentWarning {
                source: SafeText::new(&w.source),
                message: SafeText::new(&w.message),
            })
            .collect();
        let hostname = match inv.hostname.as_deref().map(Hostname::from_str) {
            None => None,
            Some(Ok(name)) => Some(name),
            Some(Err(e)) => {
                warnings.push(warning(format!("hostname dropped: {}", e.reason)));
                None
            }
        };
        let system = system(&inv.system)?;
        let cpu = cpu(&inv.cpu)?;
        let memory = memory(&inv.memory)?;
        let mut disks = Vec::with_capacity(inv.storage.len());
        for (i, d) in inv.storage.iter().enumerate() {
            disks.push(disk(i, d, &mut warnings)?);
        }
        let mut nics = Vec::with_capacity(inv.network.len());
        for (i, n) in inv.network.iter().enumerate() {
            nics.push(nic(i, n, &mut warnings)?);
        }
        Ok(HostHardware {
            agent_version: SafeText::new(&inv.agent_version),
            collected_at: SafeText::new(&inv.collected_at),
            hostname,
            warnings,
            system,
            cpu,
            memory,
            disks,
            nics,
        })
    }

    fn system(s: &wire::System) -> Result<System, HardwareError> {
        let uuid = s
            .uuid
            .as_deref()
            .map(|u| {
                SystemUuid::from_str(u).map_err(|e| HardwareError::new("system.uuid", u, e.reason))
            })
            .transpose()?;
        let bmc_address = s
            .bmc_address
            .as_deref()
            .map(|b| {
                IpAddr::from_str(b)
                    .map_err(|_| HardwareError::new("system.bmc_address", b, "not an IP address"))
            })
            .transpose()?;
        Ok(System {
            vendor: text(&s.vendor),
            product: text(&s.product),
            serial: text(&s.serial),
            uuid,
            family: text(&s.family),
            boot_mode: s.boot_mode.map(|m| match m {
                wire::BootMode::Uefi => BootMode::Uefi,
                wire::BootMode::Bios => BootMode::Bios,
            }),
            bmc_address,
            hypervisor: text(&s.hypervisor),
            baseboard_serial: text(&s.baseboard_serial),
            chassis_serial: text(&s.chassis_serial),
        })
    }

    fn cpu(c: &wire::Cpu) -> Result<Cpu, HardwareError> {
        let sockets = at_most("cpu.sockets", c.sockets, 1024)?;
        let cores = at_most("cpu.cores", c.cores, 1 << 20)?;
        let threads = at_most("cpu.threads", c.threads, 1 << 20)?;
        if let Some(mhz) = c.mhz
            && (!mhz.is_finite() || !(0.0..=1.0e6).contains(&mhz))
        {
            return Err(HardwareError::new(
                "cpu.mhz",
                &mhz.to_string(),
                "not a sane frequency",
            ));
        }
        let flags = details::cpu_flags(&c.flags)?;
        Ok(Cpu {
            model: text(&c.model),
            vendor: text(&c.vendor),
            sockets,
            cores,
            threads,
            mhz: c.mhz,
            flags,
            architecture: details::architecture(&c.architecture)?,
        })
    }

    fn memory(m: &wire::Memory) -> Result<Memory, HardwareError> {
        let total_bytes = at_most("memory.total_bytes", m.total_bytes, 1 << 56)?;
        let smbios_total_bytes =
            at_most("memory.smbios_total_bytes", m.smbios_total_bytes, 1 << 56)?;
        let mut dimms = Vec::with_capacity(m.dimms.len());
        for (i, d) in m.dimms.iter().enumerate() {
            dimms.push(Dimm {
                size_bytes: at_most(
                    &format!("memory.dimms[{i}].size_bytes"),
                    d.size_bytes,
                    1 << 46,
                )?,
                speed_mts: at_most(
                    &format!("memory.dimms[{i}].speed_mts"),
                    d.speed_mts,
                    1 << 20,
                )?,
                locator: text(&d.locator),
                bank: text(&d.bank),
                memory_type: text(&d.memory_type),
                manufacturer: text(&d.manufacturer),
                serial: text(&d.serial),
                part_number: text(&d.part_number),
            });
        }
        Ok(Memory {
            total_bytes,
            smbios_total_bytes,
            physical_bytes: at_most("memory.physical_bytes", m.physical_bytes, 1 << 56)?,
            dimms,
        })
    }

    fn disk(
        i: usize,
        d: &wire::Disk,
        warnings: &mut Vec<AgentWarning>,
    ) -> Result<Disk, HardwareError> {
        let p = format!("storage[{i}]");
        let name_field = format!("{p}.name");
        component(&name_field, &d.name, &d.name)?;
        let name = word(&name_field, &d.name, "._-")?;
        let path = dev_path(&format!("{p}.path"), &d.path)?;
        // udev allows link names Harmony does not (`#`, `=`...): such a
        // link is dropped with a warning, the host is kept (the disk still
        // has its name, WWN and serial). The value stays out of the warning.
        let mut link = |field: &str, value: &Option<String>, kind: &str| match value.as_deref() {
            None => None,
            Some(l) => match by_link(l, kind) {
                Ok(path) => Some(path),
                Err(reason) => {
                    warnings.push(warning(format!("disk link dropped: {p}.{field}: {reason}")));
                    None
                }
            },
        };
        let by_path = link("by_path", &d.by_path, "path");
        let by_id = link("by_id", &d.by_id, "id");
        let wwn_field = format!("{p}.wwn");
        let wwn = opt_word(&wwn_field, &d.wwn, ".:_-")?
            .map(|w| {
                Wwn::from_str(w.as_str())
                    .map_err(|e| HardwareError::new(&wwn_field, w.as_str(), e.reason))
            })
            .transpose()?;
        let transport = opt_word(&format!("{p}.transport"), &d.transport, "_-")?;
        let hctl = opt_word(&format!("{p}.hctl"), &d.hctl, ":")?;
        let size_bytes = at_most(&format!("{p}.size_bytes"), d.size_bytes, 1 << 60)?;
        for (f, v) in [
            ("logical_sector_bytes", d.logical_sector_bytes),
            ("physical_sector_bytes", d.physical_sector_bytes),
        ] {
            if let Some(b) = v
                && (!b.is_power_of_two() || !(256..=1 << 20).contains(&b))
            {
                return Err(HardwareError::new(
                    format!("{p}.{f}"),
                    &b.to_string(),
                    "not a sane sector size",
                ));
            }
        }
        Ok(Disk {
            name,
            path,
            by_path,
            by_id,
            model: text(&d.model),
            vendor: text(&d.vendor),
            serial: text(&d.serial),
            wwn,
            size_bytes,
            logical_sector_bytes: d.logical_sector_bytes,
            physical_sector_bytes: d.physical_sector_bytes,
            rotational: d.rotational,
            removable: d.removable,
            kind: match d.kind {
                wire::DiskKind::Nvme => DiskKind::Nvme,
                wire::DiskKind::Ssd => DiskKind::Ssd,
                wire::DiskKind::Hdd => DiskKind::Hdd,
                wire::DiskKind::Virtual => DiskKind::Virtual,
                wire::DiskKind::Usb => DiskKind::Usb,
                wire::DiskKind::Mmc => DiskKind::Mmc,
                wire::DiskKind::Optical => DiskKind::Optical,
                wire::DiskKind::Unknown => DiskKind::Unknown,
            },
            transport,
            hctl,
        })
    }

    fn nic(
        i: usize,
        n: &wire::Nic,
        warnings: &mut Vec<AgentWarning>,
    ) -> Result<Nic, HardwareError> {
        let p = format!("network[{i}]");
        let name = InterfaceName::from_str(&n.name)
            .map_err(|e| HardwareError::new(format!("{p}.name"), &n.name, e.reason))?;
        let mac_ = mac(&format!("{p}.mac"), &n.mac, warnings)?;
        let permanent_mac = mac(&format!("{p}.permanent_mac"), &n.permanent_mac, warnings)?;
        let master = n
            .master
            .as_deref()
            .map(|m| {
                InterfaceName::from_str(m)
                    .map_err(|e| HardwareError::new(format!("{p}.master"), m, e.reason))
            })
            .transpose()?;
        let operstate = opt_word(&format!("{p}.operstate"), &n.operstate, "_-")?;
        let driver = opt_word(&format!("{p}.driver"), &n.driver, "._-")?;
        let pci_field = format!("{p}.pci_address");
        let pci_address = opt_word(&pci_field, &n.pci_address, ":.")?
            .map(|w| {
                PciAddress::from_str(w.as_str())
                    .map_err(|e| HardwareError::new(&pci_field, w.as_str(), e.reason))
            })
            .transpose()?;
        let mtu = at_most(&format!("{p}.mtu"), n.mtu, 1 << 20)?;
        let speed_mbps = at_most(&format!("{p}.speed_mbps"), n.speed_mbps, 10_000_000)?;
        let mut ipv4 = Vec::with_capacity(n.ipv4.len());
        let mut ipv6 = Vec::with_capacity(n.ipv6.len());
        for (j, a) in n.ipv4.iter().chain(n.ipv6.iter()).enumerate() {
            let net = IpNetwork::from_str(a).map_err(|_| {
                HardwareError::new(format!("{p}.ipv4/ipv6[{j}]"), a, "not an address/prefix")
            })?;
            if j < n.ipv4.len() {
                ipv4.push(net);
            } else {
                ipv6.push(net);
            }
        }
        Ok(Nic {
            name,
            mac: mac_,
            permanent_mac,
            speed_mbps,
            carrier: n.carrier,
            operstate,
            mtu,
            driver,
            pci_address,
            pci_vendor_id: details::pci_id(&format!("{p}.pci_vendor_id"), &n.pci_vendor_id)?,
            pci_device_id: details::pci_id(&format!("{p}.pci_device_id"), &n.pci_device_id)?,
            is_virtual: n.is_virtual,
            master,
            ipv4,
            ipv6,
            lldp: n.lldp.as_ref().map(|l| Lldp {
                chassis_id: text(&l.chassis_id),
                port_id: text(&l.port_id),
                system_name: text(&l.system_name),
                port_description: text(&l.port_description),
            }),
        })
    }

    fn string<T: ToString>(v: &Option<T>) -> Option<String> {
        v.as_ref().map(ToString::to_string)
    }

    pub(super) fn to_wire(h: &HostHardware) -> wire::Inventory {
        let s = &h.system;
        let c = &h.cpu;
        wire::Inventory {
            schema_version: wire::SCHEMA_VERSION,
            agent_version: h.agent_version.to_string(),
            collected_at: h.collected_at.to_string(),
            hostname: string(&h.hostname),
            warnings: h
                .warnings
                .iter()
                .map(|w| wire::Warning {
                    source: w.source.to_string(),
                    message: w.message.to_string(),
                })
                .collect(),
            system: wire::System {
                vendor: string(&s.vendor),
                product: string(&s.product),
                serial: string(&s.serial),
                uuid: string(&s.uuid),
                family: string(&s.family),
                boot_mode: s.boot_mode.map(|m| match m {
                    BootMode::Uefi => wire::BootMode::Uefi,
                    BootMode::Bios => wire::BootMode::Bios,
                }),
                bmc_address: string(&s.bmc_address),
                hypervisor: string(&s.hypervisor),
                baseboard_serial: string(&s.baseboard_serial),
                chassis_serial: string(&s.chassis_serial),
            },
            cpu: wire::Cpu {
                model: string(&c.model),
                vendor: string(&c.vendor),
                sockets: c.sockets,
                cores: c.cores,
                threads: c.threads,
                mhz: c.mhz,
                flags: c.flags.iter().map(ToString::to_string).collect(),
                architecture: string(&c.architecture),
            },
            memory: wire::Memory {
                total_bytes: h.memory.total_bytes,
                smbios_total_bytes: h.memory.smbios_total_bytes,
                physical_bytes: h.memory.physical_bytes,
                dimms: h
                    .memory
                    .dimms
                    .iter()
                    .map(|d| wire::Dimm {
                        locator: string(&d.locator),
                        bank: string(&d.bank),
                        size_bytes: d.size_bytes,
                        memory_type: string(&d.memory_type),
                        speed_mts: d.speed_mts,
                        manufacturer: string(&d.manufacturer),
                        serial: string(&d.serial),
                        part_number: string(&d.part_number),
                    })
                    .collect(),
            },
            storage: h
                .disks
                .iter()
                .map(|d| wire::Disk {
                    name: d.name.to_string(),
                    path: d.path.to_string(),
                    by_path: string(&d.by_path),
                    by_id: string(&d.by_id),
                    model: string(&d.model),
                    vendor: string(&d.vendor),
                    serial: string(&d.serial),
                    wwn: string(&d.wwn),
                    size_bytes: d.size_bytes,
                    logical_sector_bytes: d.logical_sector_bytes,
                    physical_sector_bytes: d.physical_sector_bytes,
                    rotational: d.rotational,
                    removable: d.removable,
                    kind: match d.kind {
                        DiskKind::Nvme => wire::DiskKind::Nvme,
                        DiskKind::Ssd => wire::DiskKind::Ssd,
                        DiskKind::Hdd => wire::DiskKind::Hdd,
                        DiskKind::Virtual => wire::DiskKind::Virtual,
                        DiskKind::Usb => wire::DiskKind::Usb,
                        DiskKind::Mmc => wire::DiskKind::Mmc,
                        DiskKind::Optical => wire::DiskKind::Optical,
                        DiskKind::Unknown => wire::DiskKind::Unknown,
                    },
                    transport: string(&d.transport),
                    hctl: string(&d.hctl),
                })
                .collect(),
            network: h
                .nics
                .iter()
                .map(|n| wire::Nic {
                    name: n.name.to_string(),
                    mac: string(&n.mac),
                    permanent_mac: string(&n.permanent_mac),
                    speed_mbps: n.speed_mbps,
                    carrier: n.carrier,
                    operstate: string(&n.operstate),
                    mtu: n.mtu,
                    driver: string(&n.driver),
                    pci_address: string(&n.pci_address),
                    pci_vendor_id: n.pci_vendor_id.map(details::pci_id_text),
                    pci_device_id: n.pci_device_id.map(details::pci_id_text),
                    is_virtual: n.is_virtual,
                    master: string(&n.master),
                    ipv4: n.ipv4.iter().map(ToString::to_string).collect(),
                    ipv6: n.ipv6.iter().map(ToString::to_string).collect(),
                    lldp: n.lldp.as_ref().map(|l| wire::Lldp {
                        chassis_id: string(&l.chassis_id),
                        port_id: string(&l.port_id),
                        system_name: string(&l.system_name),
                        port_description: string(&l.port_description),
                    }),
                })
                .collect(),
        }
    }
}

mod details {
    //! The fields an operator expects beside the identity (issue 8, item 9):
    //! PCI IDs, CPU architecture and flags. Validated here, in one place.

    use super::*;

    /// Most CPU flags accepted (x86 lists about 150).
    const MAX_CPU_FLAGS: usize = 1024;
    /// Longest CPU flag accepted (real ones are under 32 characters).
    const MAX_FLAG_CHARS: usize = 64;
    /// Longest architecture name accepted (`x86_64`, `aarch64`, `riscv64`...).
    const MAX_ARCH_CHARS: usize = 32;

    /// `0x` and 4 hex digits (`0x8086`), as sysfs writes PCI IDs.
    pub(super) fn pci_id(field: &str, v: &Option<String>) -> Result<Option<u16>, HardwareError> {
        let Some(raw) = v.as_deref() else {
            return Ok(None);
        };
        raw.strip_prefix("0x")
            .filter(|h| h.len() == 4 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u16::from_str_radix(h, 16).ok())
            .map(Some)
            .ok_or_else(|| HardwareError::new(field, raw, "expected a PCI ID like 0x8086"))
    }

    /// The wire form of a PCI ID: `0x8086`.
    pub(super) fn pci_id_text(id: u16) -> String {
        format!("0x{id:04x}")
    }

    /// Each flag a short token of `[A-Za-z0-9_.:-]`; bounded in number.
    pub(super) fn cpu_flags(flags: &[String]) -> Result<Vec<Word>, HardwareError> {
        if flags.len() > MAX_CPU_FLAGS {
            return Err(HardwareError::new(
                "cpu.flags",
                &flags.len().to_string(),
                format!("more than {MAX_CPU_FLAGS} flags"),
            ));
        }
        flags
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let field = format!("cpu.flags[{i}]");
                if f.chars().count() > MAX_FLAG_CHARS {
                    return Err(HardwareError::new(
                        &field,
                        f,
                        format!("longer than {MAX_FLAG_CHARS} characters"),
                    ));
                }
                Word::from_str(f).map_err(|e| HardwareError::new(&field, f, e.reason))
            })
            .collect()
    }

    /// `[A-Za-z0-9_-]`, at most 32 characters.
    pub(super) fn architecture(v: &Option<String>) -> Result<Option<Word>, HardwareError> {
        let Some(a) = v.as_deref() else {
            return Ok(None);
        };
        let ok = !a.is_empty()
            && a.len() <= MAX_ARCH_CHARS
            && a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
        if !ok {
            return Err(HardwareError::new(
                "cpu.architecture",
                a,
                "expected a machine name like x86_64 (letters, digits, _ and -)",
            ));
        }
        Word::from_str(a)
            .map(Some)
            .map_err(|e| HardwareError::new("cpu.architecture", a, e.reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> wire::Inventory {
        let mut nic = wire::Nic::new("eno1");
        nic.mac = Some("52:54:00:AA:BB:01".into());
        nic.permanent_mac = Some("00:00:00:00:00:00".into());
        nic.pci_address = Some("0000:3B:00.1".into());
        nic.ipv4 = vec!["192.0.2.10/24".into()];
        nic.ipv6 = vec!["fe80::1/64".into()];
        nic.lldp = Some(wire::Lldp {
            chassis_id: Some("leaf`1`".into()),
            ..Default::default()
        });
        wire::Inventory {
            schema_version: wire::SCHEMA_VERSION,
            agent_version: "0.1.0".into(),
            collected_at: "2026-11-25T10:00:00Z".into(),
            hostname: Some("bad_name".into()),
            warnings: vec![],
            system: wire::System {
                vendor: Some("${x}".into()),
                uuid: Some("4C4C4544-0042-3010-8052-B4C04F4A4E32".into()),
                ..Default::default()
            },
            cpu: wire::Cpu::default(),
            memory: wire::Memory::default(),
            storage: vec![wire::Disk {
                name: "sda".into(),
                path: "/dev/sda".into(),
                by_path: None,
                by_id: Some("/dev/disk/by-id/ata-X#1".into()),
                model: None,
                vendor: None,
                serial: None,
                wwn: Some("0x5000c500a1b2c3d4".into()),
                size_bytes: Some(1 << 40),
                logical_sector_bytes: Some(512),
                physical_sector_bytes: Some(4096),
                rotational: Some(true),
                removable: Some(false),
                kind: wire::DiskKind::Hdd,
                transport: Some("sata".into()),
                hctl: Some("0:0:0:0".into()),
            }],
            network: vec![nic],
        }
    }

    #[test]
    fn identifiers_are_typed_and_text_is_safe() {
        let h = HostHardware::from_wire(&doc()).unwrap();
        let n = &h.nics[0];
        assert_eq!(n.identity_mac().unwrap().to_string(), "52:54:00:aa:bb:01");
        assert_eq!(n.permanent_mac, None, "all-zero MAC dropped");
        assert_eq!(n.pci_address.as_ref().unwrap().device(), "0000:3b:00");
        assert_eq!(n.switch().unwrap().as_str(), "leaf_1_");
        assert_eq!(h.system.vendor.as_ref().unwrap().as_str(), "__x_");
        assert_eq!(
            h.system.uuid.as_ref().unwrap().as_str(),
            "4c4c4544-0042-3010-8052-b4c04f4a4e32"
        );
        assert_eq!(h.hostname, None);
        let d = &h.disks[0];
        assert_eq!(d.by_id, None, "odd udev link dropped");
        assert_eq!(
            d.wwn.as_ref().unwrap().udev_link().unwrap().as_str(),
            "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4"
        );
        let messages: Vec<&str> = h.warnings.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(messages[0].starts_with("hostname dropped"));
        assert!(messages[1].starts_with("disk link dropped: storage_0_.by_id"));
        assert!(messages[2].starts_with("MAC dropped: network_0_.permanent_mac: all-zero"));
    }

    #[test]
    fn the_cleaned_document_converts_to_the_same_hardware() {
        let h = HostHardware::from_wire(&doc()).unwrap();
        let wire = h.to_wire();
        assert_eq!(HostHardware::from_wire(&wire).unwrap(), h);
        assert_eq!(wire.network[0].pci_address.as_deref(), Some("0000:3b:00.1"));
    }

    /// Values that passed the old checks and broke boot files or vanished
    /// without a word: a NIC named `-rf` (`ip=-rf:dhcp`), a disk or a udev
    /// link named `...`, a MAC with mixed separators (was dropped, the
    /// host stored with no MAC).
    #[test]
    fn names_that_break_boot_files_are_refused_naming_the_field() {
        type Damage = fn(&mut wire::Inventory);
        let cases: [(Damage, &str); 6] = [
            (|d| d.network[0].name = "-rf".into(), "network[0].name"),
            (|d| d.network[0].name = "...".into(), "network[0].name"),
            (
                |d| d.network[0].master = Some("-x".into()),
                "network[0].master",
            ),
            (
                |d| d.network[0].mac = Some("52:54-00:aa:bb:01".into()),
                "network[0].mac",
            ),
            (
                |d| d.network[0].permanent_mac = Some("52-54-00-aa-bb:01".into()),
                "network[0].permanent_mac",
            ),
            (
                |d| {
                    d.storage[0].name = "...".into();
                    d.storage[0].path = "/dev/...".into();
                },
                "storage[0].name",
            ),
        ];
        for (damage, field) in cases {
            let mut d = doc();
            damage(&mut d);
            let e = HostHardware::from_wire(&d).unwrap_err();
            assert_eq!(e.field, field, "{e}");
        }
        let mut d = doc();
        d.storage[0].name = "-sda".into();
        d.storage[0].path = "/dev/-sda".into();
        assert_eq!(
            HostHardware::from_wire(&d).unwrap_err().field,
            "storage[0].name"
        );
    }

    /// Every value the conversion drops (a MAC that is well-formed but no
    /// NIC address, an odd udev link) leaves a warning naming the field and
    /// the reason, never the raw value.
    #[test]
    fn dropped_values_are_reported_as_warnings() {
        let mut d = doc();
        d.network[0].mac = Some("01:00:5e:00:00:01".into());
        d.network[0].permanent_mac = Some("00:00:00:00:00:00".into());
        d.storage[0].by_id = Some("/dev/disk/by-id/...".into());
        d.storage[0].by_path = Some("/dev/disk/by-path/-$(reboot)".into());
        let h = HostHardware::from_wire(&d).unwrap();
        assert_eq!(h.nics[0].mac, None);
        assert_eq!(h.nics[0].permanent_mac, None);
        assert_eq!(h.disks[0].by_id, None);
        assert_eq!(h.disks[0].by_path, None);
        let messages: Vec<&str> = h
            .warnings
            .iter()
            .filter(|w| w.source.as_str() == "harmony")
            .map(|w| w.message.as_str())
            .collect();
        let has = |prefix: &str| messages.iter().any(|m| m.starts_with(prefix));
        assert!(
            has("MAC dropped: network_0_.mac: multicast"),
            "{messages:?}"
        );
        assert!(
            has("MAC dropped: network_0_.permanent_mac: all-zero"),
            "{messages:?}"
        );
        assert!(has("disk link dropped: storage_0_.by_id"), "{messages:?}");
        assert!(has("disk link dropped: storage_0_.by_path"), "{messages:?}");
        for m in &messages {
            assert!(!m.contains("reboot") && !m.contains("01:00:5e"), "{m}");
        }
    }

    #[test]
    fn operator_details_are_typed_and_round_trip() {
        let mut d = doc();
        d.network[0].pci_vendor_id = Some("0x8086".into());
        d.network[0].pci_device_id = Some("0x159B".into());
        d.cpu.architecture = Some("x86_64".into());
        d.cpu.flags = vec!["sse4_1".into(), "vmx".into(), "3dnowprefetch".into()];
        d.memory.physical_bytes = Some(24 << 30);
        d.system.baseboard_serial = Some("CN`7`".into());
        d.system.chassis_serial = Some("7XYZ123".into());
        let h = HostHardware::from_wire(&d).unwrap();
        assert_eq!(h.nics[0].pci_vendor_id, Some(0x8086));
        assert_eq!(h.nics[0].pci_device_id, Some(0x159b));
        assert_eq!(h.cpu.architecture.as_ref().unwrap().as_str(), "x86_64");
        assert_eq!(h.cpu.flags.len(), 3);
        assert_eq!(
            h.installed_memory(),
            Some(24 << 30),
            "no SMBIOS: the blocks"
        );
        assert_eq!(
            h.system.baseboard_serial.as_ref().unwrap().as_str(),
            "CN_7_"
        );
        let wire = h.to_wire();
        assert_eq!(wire.network[0].pci_device_id.as_deref(), Some("0x159b"));
        assert_eq!(wire.memory.physical_bytes, Some(24 << 30));
        assert_eq!(HostHardware::from_wire(&wire).unwrap(), h);
    }

    #[test]
    fn a_bad_operator_detail_names_its_field() {
        type Damage = fn(&mut wire::Inventory);
        let cases: [(Damage, &str); 6] = [
            (
                |d| d.network[0].pci_vendor_id = Some("8086".into()),
                "network[0].pci_vendor_id",
            ),
            (
                |d| d.network[0].pci_device_id = Some("0x1af41".into()),
                "network[0].pci_device_id",
            ),
            (
                |d| d.cpu.architecture = Some("x86 64; reboot".into()),
                "cpu.architecture",
            ),
            (
                |d| d.cpu.flags = vec!["vmx".into(), "a b".into()],
                "cpu.flags[1]",
            ),
            (|d| d.cpu.flags = vec!["f".repeat(65)], "cpu.flags[0]"),
            (|d| d.cpu.flags = vec!["vmx".into(); 1025], "cpu.flags"),
        ];
        for (damage, field) in cases {
            let mut d = doc();
            damage(&mut d);
            let e = HostHardware::from_wire(&d).unwrap_err();
            assert_eq!(e.field, field, "{e}");
        }
    }

    #[test]
    fn a_bad_identifier_names_its_field() {
        type Damage = fn(&mut wire::Inventory);
        let cases: [(Damage, &str); 5] = [
            (
                |d| d.network[0].name = "eth0;reboot".into(),
                "network[0].name",
            ),
            (
                |d| d.network[0].pci_address = Some("0000:3b:00".into()),
                "network[0].pci_address",
            ),
            (
                |d| d.network[0].mac = Some("52:54:00:aa:bb".into()),
                "network[0].mac",
            ),
            (
                |d| d.storage[0].wwn = Some("0x".repeat(40)),
                "storage[0].wwn",
            ),
            (
                |d| d.storage[0].path = "/dev/../etc".into(),
                "storage[0].path",
            ),
        ];
        for (damage, field) in cases {
            let mut d = doc();
            damage(&mut d);
            let e = HostHardware::from_wire(&d).unwrap_err();
            assert_eq!(e.field, field, "{e}");
        }
    }
}
