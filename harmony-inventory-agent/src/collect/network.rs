//! Network interfaces: MACs (current and permanent), link state and speed,
//! driver, PCI address and vendor/device IDs, bond/bridge membership and
//! addresses.
//!
//! Everything comes from `/sys/class/net` and `/proc/net/bonding` under the
//! root, except addresses, which only the running kernel knows (read with
//! `getifaddrs` when the root is `/`). LLDP neighbours are filled in later
//! by the LLDP listener.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::{SysRoot, Warnings};
use crate::model::Nic;

/// Upper bound on interfaces examined.
const MAX_INTERFACES: usize = 4096;
/// How far up the device tree to look for the PCI function of a NIC.
const MAX_PCI_DEPTH: usize = 4;

pub fn collect(root: &SysRoot, warnings: &mut Warnings) -> Vec<Nic> {
    let names = match root.dir_names("/sys/class/net") {
        Ok(n) => n,
        Err(e) => {
            warnings.push("/sys/class/net", e);
            return Vec::new();
        }
    };
    let mut addresses = if root.is_live() {
        match live_addresses() {
            Ok(a) => a,
            Err(e) => {
                warnings.push("getifaddrs", e);
                BTreeMap::new()
            }
        }
    } else {
        BTreeMap::new()
    };
    let mut nics: Vec<Nic> = names
        .iter()
        .take(MAX_INTERFACES)
        .filter(|n| n.as_str() != "lo")
        // Interfaces are directories (symlinks to them); the bonding
        // driver's `bonding_masters` control file is not one.
        .filter(|n| root.is_dir(format!("/sys/class/net/{n}")))
        .filter(|n| root.attr(format!("/sys/class/net/{n}/type")).as_deref() != Some("772"))
        .map(|name| {
            let (ipv4, ipv6) = addresses.remove(name.as_str()).unwrap_or_default();
            nic(root, name, ipv4, ipv6)
        })
        .collect();
    nics.sort_by(|a, b| {
        a.is_virtual
            .cmp(&b.is_virtual)
            .then_with(|| a.name.cmp(&b.name))
    });
    nics
}

fn nic(root: &SysRoot, name: &str, ipv4: Vec<String>, ipv6: Vec<String>) -> Nic {
    let base = format!("/sys/class/net/{name}");
    let sys_path = root
        .canonical(&base)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let is_virtual =
        sys_path.contains("/devices/virtual/") || !root.exists(format!("{base}/device"));
    let mac = root
        .attr(format!("{base}/address"))
        .and_then(|m| normalize_mac(&m));
    let master = root.link_name(format!("{base}/master"));
    let permanent_mac = master
        .as_deref()
        .and_then(|bond| bond_permanent_mac(root, bond, name))
        .or_else(|| {
            // NET_ADDR_PERM: the current address is the burned-in one.
            (root.attr(format!("{base}/addr_assign_type")).as_deref() == Some("0"))
                .then(|| mac.clone())
                .flatten()
        });
    let speed_mbps = root
        .attr_i64(format!("{base}/speed"))
        .filter(|&s| s > 0)
        .and_then(|s| u32::try_from(s).ok());
    let carrier = match root.attr_result(format!("{base}/carrier")) {
        Ok(Some(v)) if v == "1" => Some(true),
        Ok(Some(v)) if v == "0" => Some(false),
        // EINVAL while administratively down: link state unknown.
        _ => None,
    };
    let pci = pci_function(root, &base);
    let pci_id = |attr: &str| {
        pci.as_ref()
            .and_then(|(rel, _)| root.attr(format!("{rel}/{attr}")))
            .and_then(|v| normalize_pci_id(&v))
    };
    Nic {
        name: name.to_string(),
        mac,
        permanent_mac,
        speed_mbps,
        carrier,
        operstate: root.attr(format!("{base}/operstate")),
        mtu: root
            .attr_u64(format!("{base}/mtu"))
            .and_then(|m| u32::try_from(m).ok()),
        driver: root.link_name(format!("{base}/device/driver")),
        pci_vendor_id: pci_id("vendor"),
        pci_device_id: pci_id("device"),
        pci_address: pci.map(|(_, address)| address),
        is_virtual,
        master,
        ipv4,
        ipv6,
        lldp: None,
    }
}

/// PCI function of the NIC: the device itself or its nearest PCI ancestor
/// (virtio NICs hang off `virtioN` below the PCI function), as its sysfs
/// directory (under the root) and its address.
fn pci_function(root: &SysRoot, base: &str) -> Option<(String, String)> {
    let mut rel = format!("{base}/device");
    for _ in 0..MAX_PCI_DEPTH {
        if !root.exists(&rel) {
            return None;
        }
        if root.link_name(format!("{rel}/subsystem")).as_deref() == Some("pci") {
            let address = root
                .canonical(&rel)
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .filter(|n| is_pci_address(n))?;
            return Some((rel, address));
        }
        rel.push_str("/..");
    }
    None
}

/// A sysfs PCI ID (`0x8086`) as `0x` and 4 lower-case hex digits; `None`
/// unless it is one.
fn normalize_pci_id(raw: &str) -> Option<String> {
    let hex = raw.trim().strip_prefix("0x")?;
    (hex.len() == 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| format!("0x{}", hex.to_ascii_lowercase()))
}

fn is_pci_address(s: &str) -> bool {
    // dddd:bb:dd.f
    let b = s.as_bytes();
    b.len() == 12
        && b[4] == b':'
        && b[7] == b':'
        && b[10] == b'.'
        && s.chars()
            .enumerate()
            .all(|(i, c)| matches!(i, 4 | 7 | 10) || c.is_ascii_hexdigit())
}

/// The burned-in MAC of `slave` from `/proc/net/bonding/<bond>`.
fn bond_permanent_mac(root: &SysRoot, bond: &str, slave: &str) -> Option<String> {
    let text = root.read_text(format!("/proc/net/bonding/{bond}")).ok()?;
    let mut current = None;
    for line in text.lines() {
        if let Some(iface) = line.strip_prefix("Slave Interface:") {
            current = Some(iface.trim().to_string());
        } else if let Some(addr) = line.strip_prefix("Permanent HW addr:")
            && current.as_deref() == Some(slave)
        {
            return normalize_mac(addr.trim());
        }
    }
    None
}

/// Lower-case `aa:bb:cc:dd:ee:ff`; `None` unless six hex octets, or all zero.
pub fn normalize_mac(raw: &str) -> Option<String> {
    let parts: Vec<&str> = raw.trim().split(':').collect();
    if parts.len() != 6
        || !parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return None;
    }
    let mac = parts.join(":").to_lowercase();
    (mac != "00:00:00:00:00:00").then_some(mac)
}

type Addresses = BTreeMap<String, (Vec<String>, Vec<String>)>;

/// IPv4 and global IPv6 addresses per interface, from the running kernel.
fn live_addresses() -> Result<Addresses, nix::Error> {
    let mut map: Addresses = BTreeMap::new();
    for ifa in nix::ifaddrs::getifaddrs()? {
        let Some(addr) = ifa.address.as_ref() else {
            continue;
        };
        let prefix = |mask: Option<IpAddr>| match mask {
            Some(IpAddr::V4(m)) => u32::from(m).count_ones(),
            Some(IpAddr::V6(m)) => u128::from(m).count_ones(),
            None => 0,
        };
        let entry = map.entry(ifa.interface_name.clone()).or_default();
        if let Some(v4) = addr.as_sockaddr_in() {
            let mask = ifa
                .netmask
                .as_ref()
                .and_then(|m| m.as_sockaddr_in())
                .map(|m| IpAddr::V4(m.ip()));
            entry.0.push(format!("{}/{}", v4.ip(), prefix(mask)));
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            let ip = v6.ip();
            // Link-local addresses identify nothing beyond the link.
            if (ip.segments()[0] & 0xffc0) == 0xfe80 {
                continue;
            }
            let mask = ifa
                .netmask
                .as_ref()
                .and_then(|m| m.as_sockaddr_in6())
                .map(|m| IpAddr::V6(m.ip()));
            entry.1.push(format!("{}/{}", ip, prefix(mask)));
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs() {
        assert_eq!(
            normalize_mac("52:54:00:AA:bb:01\n").as_deref(),
            Some("52:54:00:aa:bb:01")
        );
        assert_eq!(normalize_mac("00:00:00:00:00:00"), None);
        assert_eq!(normalize_mac("52:54:00:aa:bb"), None);
        assert_eq!(normalize_mac("52:54:00:aa:bb:0g"), None);
        assert_eq!(normalize_mac("; reboot"), None);
    }

    #[test]
    fn pci_ids() {
        assert_eq!(normalize_pci_id("0x8086\n").as_deref(), Some("0x8086"));
        assert_eq!(normalize_pci_id("0x1AF4").as_deref(), Some("0x1af4"));
        assert_eq!(normalize_pci_id("8086"), None);
        assert_eq!(normalize_pci_id("0x00001af4"), None);
        assert_eq!(normalize_pci_id("0xzzzz"), None);
    }

    #[test]
    fn pci_addresses() {
        assert!(is_pci_address("0000:3b:00.1"));
        assert!(!is_pci_address("virtio2"));
        assert!(!is_pci_address("0000:3b:00:1"));
    }
}
