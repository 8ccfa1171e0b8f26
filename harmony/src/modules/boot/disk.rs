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
//! Kernel names (`sda`) can change between boots (a QEMU machine showed
//! its SSD as `sda` one boot and its HDD the next), so the chosen disk is
//! named by the most stable link the agent reported: `/dev/disk/by-id/wwn-…`
//! (the agent's `by_id` when it is a `wwn-` link, else built from a
//! `0x…` WWN), else its other by-id link (serial based), else its by-path
//! link. A disk with none of these is refused
//! ([`BootError::NoStablePath`], naming the disk): a kernel name is never
//! planned, since an installer writing to the wrong disk destroys data.
//! Every path and the WWN are already typed
//! ([`crate::domain::hardware::Disk`]): discovery refused hostile ones, so
//! nothing here parses an agent's string.

use super::BootError;
use crate::domain::DevicePath;
use crate::domain::ValueError;
use crate::domain::hardware::{Disk, DiskKind, HostHardware};
use crate::domain::roles::{GIB, format_gib, is_install_candidate};

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

/// The install disk of `hw`, as its most stable device path.
pub fn install_device(hw: &HostHardware) -> Result<DevicePath, BootError> {
    let disk = hw
        .disks
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
            disks: hw.disks.len(),
            min_gib: MIN_INSTALL_DISK_BYTES / GIB,
        })?;
    stable_path(disk)
}

/// The most stable path of `disk`: a `wwn-` by-id link, else the udev link
/// of its `0x…` WWN, else its by-id link, else its by-path link; never its
/// kernel name (`/dev/NAME`): [`BootError::NoStablePath`] when it has none
/// of these. A disk whose path is not `/dev/` and its own name is not
/// trusted with the others.
pub fn stable_path(disk: &Disk) -> Result<DevicePath, BootError> {
    if disk.path.as_str().strip_prefix("/dev/") != Some(disk.name.as_str()) {
        return Err(BootError::InvalidDisk {
            field: "path",
            source: ValueError::new(
                "disk path",
                disk.path.as_str(),
                "must be /dev/ followed by the disk name",
            ),
        });
    }
    let by_id_wwn = disk
        .by_id
        .as_ref()
        .filter(|p| p.as_str().starts_with("/dev/disk/by-id/wwn-"))
        .cloned();
    let by_id = disk
        .by_id
        .as_ref()
        .filter(|p| p.as_str().starts_with("/dev/disk/by-id/"))
        .cloned();
    let by_path = disk
        .by_path
        .as_ref()
        .filter(|p| p.as_str().starts_with("/dev/disk/by-path/"))
        .cloned();
    by_id_wwn
        .or_else(|| disk.wwn.as_ref().and_then(|w| w.udev_link()))
        .or(by_id)
        .or(by_path)
        .ok_or_else(|| BootError::NoStablePath {
            disk: describe(disk),
        })
}

/// `sda (QEMU HARDDISK, 480 GiB)`: the disk as an operator finds it (its
/// kernel name now, model and size; typed and safe values only).
fn describe(disk: &Disk) -> String {
    let mut about: Vec<String> = Vec::new();
    if let Some(m) = disk.model.as_ref().filter(|m| !m.is_blank()) {
        about.push(m.cut(64).to_string());
    }
    if let Some(s) = disk.serial.as_ref().filter(|s| !s.is_blank()) {
        about.push(format!("serial {}", s.cut(64)));
    }
    if let Some(b) = disk.size_bytes {
        about.push(format_gib(b));
    }
    if about.is_empty() {
        disk.name.to_string()
    } else {
        format!("{} ({})", disk.name, about.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use harmony_inventory_agent::model::{Disk, DiskKind, Inventory};

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

    /// The fixtures are agent documents, typed by the one conversion.
    fn inv(storage: Vec<Disk>) -> HostHardware {
        HostHardware::from_wire(&wire_inv(storage)).unwrap()
    }

    fn typed(d: &Disk) -> crate::domain::hardware::Disk {
        inv(vec![d.clone()]).disks.remove(0)
    }

    fn wire_inv(storage: Vec<Disk>) -> Inventory {
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
            stable_path(&typed(&d)).unwrap().as_str(),
            "/dev/disk/by-id/wwn-0x5002538f4231e1a2"
        );
        d.by_id = Some("/dev/disk/by-id/ata-X_Y".into());
        d.wwn = Some("0x5002538f4231e1a2".into());
        assert_eq!(
            stable_path(&typed(&d)).unwrap().as_str(),
            "/dev/disk/by-id/wwn-0x5002538f4231e1a2"
        );
        d.wwn = Some("eui.0025388b71b2c3d4".into());
        assert_eq!(
            stable_path(&typed(&d)).unwrap().as_str(),
            "/dev/disk/by-id/ata-X_Y"
        );
        d.by_id = None;
        assert_eq!(
            stable_path(&typed(&d)).unwrap().as_str(),
            "/dev/disk/by-path/pci-0000:00:17.0-ata-sda"
        );
        d.by_path = None;
        d.wwn = Some("0x5002538f4231e1a2".into());
        assert_eq!(
            stable_path(&typed(&d)).unwrap().as_str(),
            "/dev/disk/by-id/wwn-0x5002538f4231e1a2",
            "a WWN alone gives the udev link"
        );
    }

    /// Kernel names swap between boots (the SSD was `sda` one boot, the
    /// 500 GB HDD the next): a disk with no by-id link, no `0x…` WWN and no
    /// by-path link is refused, naming the disk, never planned as `/dev/sda`.
    #[test]
    fn a_kernel_name_is_never_planned() {
        let mut d = disk("sda", DiskKind::Ssd, 480);
        d.by_id = None;
        d.by_path = None;
        d.wwn = Some("eui.0025388b71b2c3d4".into());
        d.model = Some("QEMU HARDDISK".into());
        let e = install_device(&inv(vec![d.clone()])).unwrap_err();
        match &e {
            BootError::NoStablePath { disk } => assert!(disk.contains("sda"), "{e}"),
            other => panic!("gave {other:?}"),
        }
        let shown = e.to_string();
        assert!(
            shown.contains("sda") && shown.contains("QEMU HARDDISK"),
            "{shown}"
        );
        assert!(
            shown.contains("by-id") && shown.contains("by-path"),
            "{shown}"
        );
        assert!(stable_path(&typed(&d)).is_err());
        // A by-path link (reported by the agent from udev) is stable enough.
        d.by_path = Some("/dev/disk/by-path/pci-0000:00:1f.2-ata-1".into());
        assert_eq!(
            install_device(&inv(vec![d])).unwrap().as_str(),
            "/dev/disk/by-path/pci-0000:00:1f.2-ata-1"
        );
    }

    /// Hostile names and WWNs never reach planning: the conversion refuses
    /// the host naming the field; a hostile udev link is dropped, so the
    /// next stable path is used; a path that is not the disk's own name is
    /// refused when the disk is chosen.
    #[test]
    fn hostile_fields_are_rejected() {
        let base = disk("sda", DiskKind::Ssd, 480);
        let refused: Vec<(&str, Disk)> = vec![
            (
                "storage[0].name",
                Disk {
                    name: "sda; reboot".into(),
                    ..base.clone()
                },
            ),
            (
                "storage[0].name",
                Disk {
                    name: "../../x".into(),
                    ..base.clone()
                },
            ),
            (
                "storage[0].wwn",
                Disk {
                    wwn: Some("0x5\"; reboot".into()),
                    ..base.clone()
                },
            ),
        ];
        for (field, d) in refused {
            let e = HostHardware::from_wire(&wire_inv(vec![d.clone()])).unwrap_err();
            assert_eq!(e.field, field, "{d:?}");
        }
        for (d, want) in [
            (
                Disk {
                    by_id: Some("/dev/disk/by-id/x\n#!ipxe".into()),
                    ..base.clone()
                },
                "/dev/disk/by-path/pci-0000:00:17.0-ata-sda",
            ),
            (
                Disk {
                    by_id: Some("/dev/sda".into()),
                    ..base.clone()
                },
                "/dev/disk/by-path/pci-0000:00:17.0-ata-sda",
            ),
            (
                Disk {
                    by_path: Some("/dev/disk/by-path/${x}".into()),
                    ..base.clone()
                },
                "/dev/disk/by-id/ata-MODEL_sda",
            ),
        ] {
            assert_eq!(install_device(&inv(vec![d])).unwrap().as_str(), want);
        }
        let moved = Disk {
            path: "/dev/sdb".into(),
            ..base.clone()
        };
        match install_device(&inv(vec![moved])) {
            Err(BootError::InvalidDisk { field, .. }) => assert_eq!(field, "path"),
            other => panic!("gave {other:?}"),
        }
    }
}
