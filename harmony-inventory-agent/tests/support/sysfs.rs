//! Builds fixture roots (`/proc`, `/sys`, `/dev/disk`, `/run/udev`) in the
//! layouts the kernel documents (Documentation/ABI/testing/sysfs-block,
//! sysfs-class-net, sysfs-devices-system-cpu), with the relative symlinks
//! real sysfs is made of, so the collectors can be tested on hardware this
//! machine does not have.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// A temporary root directory, removed on drop.
pub struct FixtureRoot {
    dir: tempfile::TempDir,
}

impl FixtureRoot {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn abs(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel.trim_start_matches('/'))
    }

    /// Writes a file (creating parents).
    pub fn file(&self, rel: &str, contents: impl AsRef<[u8]>) -> &Self {
        let p = self.abs(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(&p, contents).expect("write");
        self
    }

    pub fn dir(&self, rel: &str) -> &Self {
        fs::create_dir_all(self.abs(rel)).expect("mkdir");
        self
    }

    /// A symlink at `rel` pointing to `target` (written as given: relative like sysfs).
    pub fn link(&self, rel: &str, target: &str) -> &Self {
        let p = self.abs(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        symlink(target, &p).expect("symlink");
        self
    }

    /// `/sys/devices/system/cpu/cpuN/topology/*`.
    pub fn cpu(&self, n: u32, package: i64, die: i64, core: i64) -> &Self {
        let d = format!("/sys/devices/system/cpu/cpu{n}/topology");
        self.file(&format!("{d}/physical_package_id"), format!("{package}\n"))
            .file(&format!("{d}/die_id"), format!("{die}\n"))
            .file(&format!("{d}/core_id"), format!("{core}\n"))
    }

    /// A block device whose device directory is `device_dir` (under /sys/devices),
    /// e.g. `pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0`.
    /// Creates `/sys/block/NAME -> ../devices/<device_dir>/block/NAME` and the
    /// `device` link, and writes `attrs` (relative to the block dir).
    pub fn block(&self, name: &str, device_dir: Option<&str>, attrs: &[(&str, &str)]) -> &Self {
        let block_rel = match device_dir {
            Some(d) => format!("devices/{d}/block/{name}"),
            None => format!("devices/virtual/block/{name}"),
        };
        let block_abs = format!("/sys/{block_rel}");
        self.dir(&block_abs);
        if let Some(d) = device_dir {
            let _ = d;
            // block/NAME/device -> ../../<last component of device_dir> (i.e. the parent dir)
            self.link(&format!("{block_abs}/device"), "../..");
        }
        for (k, v) in attrs {
            self.file(&format!("{block_abs}/{k}"), format!("{v}\n"));
        }
        self.link(&format!("/sys/block/{name}"), &format!("../{block_rel}"))
    }

    /// A NIC at `/sys/devices/<device_dir>/net/NAME` (or `virtual/net/NAME`),
    /// with `/sys/class/net/NAME` linking to it.
    pub fn nic(&self, name: &str, device_dir: Option<&str>, attrs: &[(&str, &str)]) -> &Self {
        let net_rel = match device_dir {
            Some(d) => format!("devices/{d}/net/{name}"),
            None => format!("devices/virtual/net/{name}"),
        };
        let net_abs = format!("/sys/{net_rel}");
        self.dir(&net_abs);
        if device_dir.is_some() {
            self.link(&format!("{net_abs}/device"), "../..");
        }
        for (k, v) in attrs {
            self.file(&format!("{net_abs}/{k}"), format!("{v}\n"));
        }
        self.link(
            &format!("/sys/class/net/{name}"),
            &format!("../../{net_rel}"),
        )
    }

    /// Marks `/sys/devices/<pci_dir>` as a PCI function bound to `driver`.
    pub fn pci_function(&self, pci_dir: &str, driver: &str) -> &Self {
        let depth = pci_dir.split('/').count() + 1; // + "devices"
        let up = "../".repeat(depth);
        self.dir(&format!("/sys/bus/pci/drivers/{driver}"))
            .link(
                &format!("/sys/devices/{pci_dir}/subsystem"),
                &format!("{up}bus/pci"),
            )
            .link(
                &format!("/sys/devices/{pci_dir}/driver"),
                &format!("{up}bus/pci/drivers/{driver}"),
            )
    }
}
