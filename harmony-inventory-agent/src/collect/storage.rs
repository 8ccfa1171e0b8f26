//! Storage: the whole disks of the host, with the identifiers an operator
//! needs as a root-device hint (by-id, by-path, WWN, serial, HCTL).
//!
//! Disks are `/sys/block` entries backed by a device. Loop, ram, zram, dm,
//! md, nbd, hidden NVMe path nodes and size-0 devices (empty card readers,
//! optical drives without media) are excluded. The kernel's attributes are
//! the primary source; the udev database (`/run/udev/data`) and the
//! `/dev/disk/by-*` links enrich them when present, never required.

use std::collections::BTreeMap;
use std::path::Path;

use super::{SysRoot, Warnings, smbios::is_bogus};
use crate::model::{Disk, DiskKind};

/// Name prefixes of block devices that are never whole physical disks.
const EXCLUDED_PREFIXES: &[&str] = &["loop", "ram", "zram", "dm-", "md", "nbd", "fd"];
/// Upper bound on block devices examined (bounds work on hostile trees).
const MAX_DEVICES: usize = 4096;

pub fn collect(root: &SysRoot, warnings: &mut Warnings) -> Vec<Disk> {
    let names = match root.dir_names("/sys/block") {
        Ok(n) => n,
        Err(e) => {
            warnings.push("/sys/block", e);
            return Vec::new();
        }
    };
    let links = DiskLinks::read(root);
    names
        .iter()
        .take(MAX_DEVICES)
        .filter(|n| !EXCLUDED_PREFIXES.iter().any(|p| n.starts_with(p)))
        .filter_map(|name| disk(root, name, &links))
        .collect()
}

fn disk(root: &SysRoot, name: &str, links: &DiskLinks) -> Option<Disk> {
    let base = format!("/sys/block/{name}");
    let is_nvme = name.starts_with("nvme");
    // A whole disk has a backing device; native NVMe multipath heads are
    // virtual but real disks all the same.
    if !is_nvme && !root.exists(format!("{base}/device")) {
        return None;
    }
    if root.attr_bool(format!("{base}/hidden")) == Some(true) {
        return None;
    }
    let sectors = root.attr_u64(format!("{base}/size"));
    if sectors.unwrap_or(0) == 0 {
        return None;
    }
    let size_bytes = sectors.and_then(|s| s.checked_mul(512));
    let sys_path = root
        .canonical(&base)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let transport = transport(name, &sys_path);
    let udev = root
        .attr(format!("{base}/dev"))
        .map(|dev| UdevDb::read(root, &dev))
        .unwrap_or_default();

    let clean = |v: Option<String>| v.filter(|s| !is_bogus(s));
    let model = clean(root.attr(format!("{base}/device/model"))).or_else(|| udev.get("ID_MODEL"));
    let vendor = clean(root.attr(format!("{base}/device/vendor")));
    let serial = clean(
        root.attr(format!("{base}/device/serial"))
            .or_else(|| root.attr(format!("{base}/serial"))),
    )
    .or_else(|| {
        (transport == Some("usb"))
            .then(|| usb_serial(root, &base))
            .flatten()
    })
    .or_else(|| clean(vpd_serial(root, &base)))
    .or_else(|| udev.get("ID_SERIAL_SHORT"));
    let wwn = root
        .attr(format!("{base}/device/wwid"))
        .or_else(|| root.attr(format!("{base}/wwid")))
        .and_then(|w| normalize_wwid(&w))
        .or_else(|| udev.get("ID_WWN_WITH_EXTENSION"))
        .or_else(|| udev.get("ID_WWN"));
    let rotational = root.attr_bool(format!("{base}/queue/rotational"));
    let removable = root.attr_bool(format!("{base}/removable"));
    let hctl = root
        .canonical(format!("{base}/device"))
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| is_hctl(n));
    let kind = kind(
        name,
        transport,
        vendor.as_deref(),
        model.as_deref(),
        rotational,
    );

    let mut by_id_links: Vec<String> = links.by_id.get(name).cloned().unwrap_or_default();
    by_id_links.extend(udev.links("disk/by-id/"));
    let by_id = best_by_id(&by_id_links).map(|l| format!("/dev/disk/by-id/{l}"));
    let by_path = links
        .by_path
        .get(name)
        .and_then(|v| v.first().cloned())
        .or_else(|| udev.links("disk/by-path/").into_iter().next())
        .map(|l| format!("/dev/disk/by-path/{l}"));

    Some(Disk {
        name: name.to_string(),
        path: format!("/dev/{name}"),
        by_path,
        by_id,
        model,
        vendor,
        serial,
        wwn,
        size_bytes,
        logical_sector_bytes: root
            .attr_u64(format!("{base}/queue/logical_block_size"))
            .and_then(|v| u32::try_from(v).ok()),
        physical_sector_bytes: root
            .attr_u64(format!("{base}/queue/physical_block_size"))
            .and_then(|v| u32::try_from(v).ok()),
        rotational,
        removable,
        kind,
        transport: transport.map(str::to_string),
        hctl,
    })
}

/// The bus a disk hangs off, from its name and resolved sysfs path.
fn transport(name: &str, sys_path: &str) -> Option<&'static str> {
    let has = |s: &str| sys_path.contains(s);
    if name.starts_with("nvme") {
        Some("nvme")
    } else if has("/usb") {
        Some("usb")
    } else if name.starts_with("mmcblk") || has("/mmc_host/") {
        Some("mmc")
    } else if has("/virtio") && name.starts_with("vd") {
        Some("virtio")
    } else if has("/ata") {
        Some("sata")
    } else if has("/end_device-") || has("/sas_") {
        Some("sas")
    } else if has("/session") {
        Some("iscsi")
    } else if has("/rport-") {
        Some("fc")
    } else if has("/virtio") {
        Some("virtio")
    } else if has("/host") {
        Some("scsi")
    } else {
        None
    }
}

fn kind(
    name: &str,
    transport: Option<&str>,
    vendor: Option<&str>,
    model: Option<&str>,
    rotational: Option<bool>,
) -> DiskKind {
    const VIRTUAL_VENDORS: &[&str] = &[
        "qemu", "vmware", "msft", "vbox", "virtual", "xen", "red hat",
    ];
    let ident = format!("{} {}", vendor.unwrap_or(""), model.unwrap_or("")).to_lowercase();
    match transport {
        Some("nvme") => return DiskKind::Nvme,
        Some("usb") => return DiskKind::Usb,
        Some("mmc") => return DiskKind::Mmc,
        Some("virtio") => return DiskKind::Virtual,
        _ => {}
    }
    if name.starts_with("sr") {
        DiskKind::Optical
    } else if VIRTUAL_VENDORS.iter().any(|v| ident.contains(v)) {
        DiskKind::Virtual
    } else {
        match rotational {
            Some(false) => DiskKind::Ssd,
            Some(true) => DiskKind::Hdd,
            None => DiskKind::Unknown,
        }
    }
}

/// How many directories above a USB disk's SCSI device to look for its USB
/// device (`sdX/device` -> target -> host -> interface -> device is 4).
const MAX_USB_DEPTH: usize = 8;

/// The `serial` attribute (USB iSerialNumber) of the USB device a USB disk
/// hangs off: the nearest ancestor of `sdX/device` that has `idVendor` and
/// `serial` (the kernel's `usb_device`, not its interfaces), inside the root.
fn usb_serial(root: &SysRoot, base: &str) -> Option<String> {
    let device = root.canonical(format!("{base}/device"))?;
    device
        .ancestors()
        .skip(1)
        .take(MAX_USB_DEPTH)
        .filter_map(|dir| root.relative(dir))
        .take_while(|rel| rel.starts_with("/sys/devices"))
        .find(|rel| root.exists(rel.join("idVendor")))
        .and_then(|rel| root.attr(rel.join("serial")))
        .filter(|s| !is_bogus(s))
}

/// Unit serial number from SCSI VPD page 0x80 (bytes 4.. of the page).
fn vpd_serial(root: &SysRoot, base: &str) -> Option<String> {
    let page = root
        .read_bytes(format!("{base}/device/vpd_pg80"), 4096)
        .ok()?;
    if page.len() < 4 || page[1] != 0x80 {
        return None;
    }
    let len = usize::from(page[3]);
    let body = page.get(4..4 + len.min(page.len().saturating_sub(4)))?;
    super::fs::clean_value(body)
}

/// `naa.5000c500a1b2c3d4` -> `0x5000c500a1b2c3d4` (the by-id `wwn-` form);
/// `eui.`/`nguid`/`uuid` NVMe identifiers kept; vendor `t10.` strings dropped.
fn normalize_wwid(wwid: &str) -> Option<String> {
    let w = wwid.trim();
    if let Some(naa) = w.strip_prefix("naa.") {
        let hex = naa.to_lowercase();
        return (hex.chars().all(|c| c.is_ascii_hexdigit()) && !hex.is_empty())
            .then(|| format!("0x{hex}"));
    }
    if w.starts_with("eui.") || w.starts_with("uuid.") || w.starts_with("nguid.") {
        return Some(w.to_lowercase());
    }
    None
}

fn is_hctl(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// The most stable by-id link: WWN first, then NVMe EUI, then vendor/model/serial forms.
fn best_by_id(links: &[String]) -> Option<String> {
    let rank = |l: &str| {
        if l.starts_with("wwn-") {
            0
        } else if l.starts_with("nvme-eui.") {
            1
        } else if l.starts_with("nvme-") || l.starts_with("ata-") || l.starts_with("scsi-3") {
            2
        } else if l.starts_with("scsi-") || l.starts_with("usb-") || l.starts_with("virtio-") {
            3
        } else {
            4
        }
    };
    links
        .iter()
        .filter(|l| !l.contains("-part"))
        .min_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)))
        .cloned()
}

/// `/dev/disk/by-id` and `/dev/disk/by-path` links, by the disk they point to.
#[derive(Debug, Default)]
struct DiskLinks {
    by_id: BTreeMap<String, Vec<String>>,
    by_path: BTreeMap<String, Vec<String>>,
}

impl DiskLinks {
    fn read(root: &SysRoot) -> Self {
        Self {
            by_id: links_in(root, "/dev/disk/by-id"),
            by_path: links_in(root, "/dev/disk/by-path"),
        }
    }
}

fn links_in(root: &SysRoot, dir: &str) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for link in root
        .dir_names(dir)
        .unwrap_or_default()
        .into_iter()
        .take(MAX_DEVICES)
    {
        let Ok(target) = std::fs::read_link(root.path(format!("{dir}/{link}"))) else {
            continue;
        };
        if let Some(dev) = Path::new(&target).file_name() {
            map.entry(dev.to_string_lossy().into_owned())
                .or_default()
                .push(link);
        }
    }
    map
}

/// One device's record in the udev database (`/run/udev/data/b<maj>:<min>`).
#[derive(Debug, Default)]
struct UdevDb {
    props: BTreeMap<String, String>,
    symlinks: Vec<String>,
}

impl UdevDb {
    fn read(root: &SysRoot, dev: &str) -> Self {
        let mut db = UdevDb::default();
        if !dev.chars().all(|c| c.is_ascii_digit() || c == ':') {
            return db;
        }
        let Ok(text) = root.read_text(format!("/run/udev/data/b{dev}")) else {
            return db;
        };
        for line in text.lines().take(1024) {
            if let Some(prop) = line.strip_prefix("E:") {
                if let Some((k, v)) = prop.split_once('=')
                    && let Some(v) = super::fs::clean_value(v.as_bytes())
                {
                    db.props.insert(k.to_string(), v);
                }
            } else if let Some(link) = line.strip_prefix("S:") {
                db.symlinks.push(link.trim().to_string());
            }
        }
        db
    }

    fn get(&self, key: &str) -> Option<String> {
        self.props.get(key).cloned().filter(|v| !is_bogus(v))
    }

    /// Link names below `prefix` (e.g. `disk/by-id/`), without the prefix.
    fn links(&self, prefix: &str) -> Vec<String> {
        self.symlinks
            .iter()
            .filter_map(|l| l.strip_prefix(prefix))
            .filter(|l| !l.is_empty() && !l.contains('/'))
            .map(str::to_string)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wwids() {
        assert_eq!(
            normalize_wwid("naa.5000C500A1B2C3D4").as_deref(),
            Some("0x5000c500a1b2c3d4")
        );
        assert_eq!(
            normalize_wwid("eui.0025388b71b2c3d4").as_deref(),
            Some("eui.0025388b71b2c3d4")
        );
        assert_eq!(normalize_wwid("t10.ATA     QEMU HARDDISK"), None);
        assert_eq!(normalize_wwid("naa.zz"), None);
    }

    #[test]
    fn by_id_preference() {
        let links = vec![
            "ata-Samsung_SSD_870_S5Y1".to_string(),
            "wwn-0x5002538f4231e1a2".to_string(),
            "wwn-0x5002538f4231e1a2-part1".to_string(),
        ];
        assert_eq!(
            best_by_id(&links).as_deref(),
            Some("wwn-0x5002538f4231e1a2")
        );
        assert_eq!(best_by_id(&[]), None);
    }

    #[test]
    fn hctl_shape() {
        assert!(is_hctl("0:0:0:0"));
        assert!(is_hctl("12:0:3:1"));
        assert!(!is_hctl("virtio1"));
        assert!(!is_hctl("0:0:0"));
    }
}
