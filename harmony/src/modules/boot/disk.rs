//! Which disk CoreOS installs to, and how the kernel line names it.
//!
//! # Policy
//!
//! A disk is a candidate when it is a place an OS belongs:
//! - not removable, not USB (by kind or transport; this also catches BMC
//!   virtual media, which BMCs attach as USB CD/floppy devices), not
//!   optical, not MMC/SD (boot SD modules are too slow for etcd);
//! - of known size, at least [`MIN_INSTALL_DISK_BYTES`] (100 GiB).
//!
//! Virtio/hypervisor disks (`DiskKind::Virtual`) are candidates: in a VM
//! they are the only disks there are.
//!
//! Among candidates: flash first (NVMe, SSD), then virtual, then unknown,
//! then spinning disks; within a class the **smallest** adequate disk, so
//! the big disks stay free for data (ODF, local storage). Ties go to the
//! kernel name, so the choice is deterministic.
//!
//! # The path
//!
//! Kernel names (`sda`) can change between boots, so the chosen disk is
//! named by the most stable link the agent reported: `/dev/disk/by-id/wwn-…`
//! (the agent's `by_id` when it is a `wwn-` link, else built from a
//! `0x…` WWN), else its other by-id link, else its by-path link, else
//! `/dev/NAME`. Every path field of the chosen disk is parsed through
//! [`DevicePath`] (and the WWN through its own rule); one hostile or
//! malformed value rejects the disk with an error, it is never rendered.

use harmony_inventory_agent::model::{Disk, DiskKind, Inventory};

use super::BootError;
use crate::domain::roles::{GIB, is_install_candidate};
use crate::domain::{DevicePath, ValueError};

/// Smallest disk CoreOS is installed on.
pub const MIN_INSTALL_DISK_BYTES: u64 = 100 * GIB;

/// Whether `disk` may receive the OS (size included). See the module docs.
pub fn is_eligible(disk: &Disk) -> bool {
    is_install_candidate(disk) && disk.size_bytes.is_some_and(|s| s >= MIN_INSTALL_DISK_BYTES)
}

/// Lower is preferred.
fn kind_rank(kind: DiskKind) -> u8 {
    match kind {
        DiskKind::Nvme | DiskKind::Ssd => 0,
        DiskKind::Virtual => 1,
        DiskKind::Unknown => 2,
        DiskKind::Hdd => 3,
        // Not eligible anyway.
        DiskKind::Usb | DiskKind::Mmc | DiskKind::Optical => 4,
    }
}

/// The install disk of `inv`, as its most stable device path.
pub fn install_device(inv: &Inventory) -> Result<DevicePath, BootError> {
    let disk = inv
        .storage
        .iter()
        .filter(|d| is_eligible(d))
        .min_by(|a, b| {
            (kind_rank(a.kind), a.size_bytes, &a.name).cmp(&(
                kind_rank(b.kind),
                b.size_bytes,
                &b.name,
            ))
        })
        .ok_or(BootError::NoInstallDisk {
            disks: inv.storage.len(),
            min_gib: MIN_INSTALL_DISK_BYTES / GIB,
        })?;
    stable_path(disk)
}

/// The most stable path of `disk`, every field validated first.
pub fn stable_path(disk: &Disk) -> Result<DevicePath, BootError> {
    let bad = |field: &'static str, source: ValueError| BootError::InvalidDisk { field, source };
    // Every field is checked, used or not: a disk reporting one hostile
    // value is not trusted with the others.
    let dev: DevicePath = format!("/dev/{}", disk.name)
        .parse()
        .map_err(|e| bad("name", e))?;
    if disk.name.contains('/') {
        return Err(bad(
            "name",
            ValueError::new("disk name", &disk.name, "a kernel name has no '/'"),
        ));
    }
    if disk.path != dev.as_str() {
        return Err(bad(
            "path",
            ValueError::new(
                "disk path",
                &disk.path,
                "must be /dev/ followed by the disk name",
            ),
        ));
    }
    let by_id = link(disk.by_id.as_deref(), "/dev/disk/by-id/", "by_id")?;
    let by_path = link(disk.by_path.as_deref(), "/dev/disk/by-path/", "by_path")?;
    let wwn_link = match disk.wwn.as_deref() {
        None => None,
        Some(w) => {
            let ok = !w.is_empty()
                && w.len() <= 64
                && w.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'));
            if !ok {
                return Err(bad(
                    "wwn",
                    ValueError::new("WWN", w, "must be 1 to 64 of letters, digits and . _ - :"),
                ));
            }
            // udev names SCSI/ATA disks `wwn-0x…`; other WWN forms (NVMe
            // `eui.…`) have no `wwn-` link, so none is made up for them.
            match w.strip_prefix("0x") {
                Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => Some(
                    format!("/dev/disk/by-id/wwn-{w}")
                        .parse::<DevicePath>()
                        .map_err(|e| bad("wwn", e))?,
                ),
                _ => None,
            }
        }
    };
    let by_id_wwn = by_id
        .as_ref()
        .filter(|p| p.as_str().starts_with("/dev/disk/by-id/wwn-"))
        .cloned();
    Ok(by_id_wwn.or(wwn_link).or(by_id).or(by_path).unwrap_or(dev))
}

/// `value` parsed as a device path that must live under `prefix`.
fn link(
    value: Option<&str>,
    prefix: &str,
    field: &'static str,
) -> Result<Option<DevicePath>, BootError> {
    let Some(v) = value else { return Ok(None) };
    let bad = |source| BootError::InvalidDisk { field, source };
    let path: DevicePath = v.parse().map_err(bad)?;
    if !path.as_str().starts_with(prefix) {
        return Err(bad(ValueError::new(
            "device link",
            v,
            "not under the expected /dev/disk directory",
        )));
    }
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(name: &str, kind: DiskKind, gib: u64) -> Disk {
        Disk {
            name: name.into(),
            path: format!("/dev/{name}"),
            by_path: Some(format!("/dev/disk/by-path/pci-0000:00:17.0-ata-{name}")),
            by_id: Some(format!("/dev/disk/by-id/ata-MODEL_{name}")),
            model: None,
            vendor: None,
            serial: None,
            wwn: None,
            size_bytes: Some(gib * GIB),
            logical_sector_bytes: Some(512),
            physical_sector_bytes: Some(512),
            rotational: Some(kind == DiskKind::Hdd),
            removable: Some(false),
            kind,
            transport: Some("sata".into()),
            hctl: None,
        }
    }

    fn inv(storage: Vec<Disk>) -> Inventory {
        Inventory {
            schema_version: 1,
            agent_version: "0.1.0".into(),
            collected_at: "2026-11-25T10:00:00Z".into(),
            hostname: None,
            warnings: vec![],
            system: Default::default(),
            cpu: Default::default(),
            memory: Default::default(),
            storage,
            network: vec![],
        }
    }

    #[test]
    fn flash_before_spinning_then_smallest() {
        let i = inv(vec![
            disk("sda", DiskKind::Hdd, 200),
            disk("sdb", DiskKind::Ssd, 4000),
            disk("sdc", DiskKind::Ssd, 480),
            disk("sdd", DiskKind::Ssd, 99),
        ]);
        assert_eq!(
            install_device(&i).unwrap().as_str(),
            "/dev/disk/by-id/ata-MODEL_sdc"
        );
        let i = inv(vec![
            disk("sdb", DiskKind::Hdd, 500),
            disk("sda", DiskKind::Hdd, 500),
        ]);
        assert_eq!(
            install_device(&i).unwrap().as_str(),
            "/dev/disk/by-id/ata-MODEL_sda",
            "ties go to the name"
        );
        let i = inv(vec![disk("vda", DiskKind::Virtual, 120)]);
        assert!(install_device(&i).is_ok(), "a VM's virtio disk is fine");
    }

    #[test]
    fn never_usb_removable_optical_mmc_or_small() {
        let mut usb = disk("sda", DiskKind::Usb, 1000);
        usb.transport = Some("usb".into());
        let mut vmedia = disk("sdb", DiskKind::Ssd, 1000);
        vmedia.transport = Some("usb".into()); // BMC virtual media
        let mut removable = disk("sdc", DiskKind::Ssd, 1000);
        removable.removable = Some(true);
        let optical = disk("sr0", DiskKind::Optical, 1000);
        let mmc = disk("mmcblk0", DiskKind::Mmc, 1000);
        let small = disk("sdd", DiskKind::Nvme, 64);
        let mut unknown_size = disk("sde", DiskKind::Ssd, 1);
        unknown_size.size_bytes = None;
        let i = inv(vec![
            usb,
            vmedia,
            removable,
            optical,
            mmc,
            small,
            unknown_size,
        ]);
        let e = install_device(&i).unwrap_err();
        assert!(
            matches!(e, BootError::NoInstallDisk { disks: 7, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("100 GiB"), "{e}");
    }

    #[test]
    fn path_preference() {
        let mut d = disk("sda", DiskKind::Ssd, 480);
        d.by_id = Some("/dev/disk/by-id/wwn-0x5002538f4231e1a2".into());
        assert_eq!(
            stable_path(&d).unwrap().as_str(),
            "/dev/disk/by-id/wwn-0x5002538f4231e1a2"
        );
        d.by_id = Some("/dev/disk/by-id/ata-X_Y".into());
        d.wwn = Some("0x5002538f4231e1a2".into());
        assert_eq!(
            stable_path(&d).unwrap().as_str(),
            "/dev/disk/by-id/wwn-0x5002538f4231e1a2"
        );
        d.wwn = Some("eui.0025388b71b2c3d4".into());
        assert_eq!(stable_path(&d).unwrap().as_str(), "/dev/disk/by-id/ata-X_Y");
        d.by_id = None;
        assert_eq!(
            stable_path(&d).unwrap().as_str(),
            "/dev/disk/by-path/pci-0000:00:17.0-ata-sda"
        );
        d.by_path = None;
        assert_eq!(stable_path(&d).unwrap().as_str(), "/dev/sda");
    }

    #[test]
    fn hostile_fields_are_rejected() {
        let base = disk("sda", DiskKind::Ssd, 480);
        let cases: Vec<(&str, Disk)> = vec![
            (
                "name",
                Disk {
                    name: "sda; reboot".into(),
                    ..base.clone()
                },
            ),
            (
                "name",
                Disk {
                    name: "../../x".into(),
                    ..base.clone()
                },
            ),
            (
                "path",
                Disk {
                    path: "/dev/sdb".into(),
                    ..base.clone()
                },
            ),
            (
                "by_id",
                Disk {
                    by_id: Some("/dev/disk/by-id/x\n#!ipxe".into()),
                    ..base.clone()
                },
            ),
            (
                "by_id",
                Disk {
                    by_id: Some("/dev/sda".into()),
                    ..base.clone()
                },
            ),
            (
                "by_path",
                Disk {
                    by_path: Some("/dev/disk/by-path/${x}".into()),
                    ..base.clone()
                },
            ),
            (
                "wwn",
                Disk {
                    wwn: Some("0x5\"; reboot".into()),
                    ..base.clone()
                },
            ),
        ];
        for (field, d) in cases {
            match install_device(&inv(vec![d.clone()])) {
                Err(BootError::InvalidDisk { field: f, .. }) => assert_eq!(f, field, "{d:?}"),
                other => panic!("{d:?} gave {other:?}"),
            }
        }
    }
}
