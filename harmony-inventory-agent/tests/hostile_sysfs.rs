//! Hostile or odd `/proc` and `/sys` content never panics the collectors:
//! non-UTF-8 strings, huge and negative numbers, missing files, symlink
//! loops, oversized attributes. Values that cannot be read become `null`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/sysfs.rs"]
mod sysfs;

use harmony_inventory_agent::collect::Collector;
use harmony_inventory_agent::model::DiskKind;
use sysfs::FixtureRoot;

#[test]
fn odd_content_is_tolerated() {
    let f = FixtureRoot::new();
    f.file("/proc/sys/kernel/hostname", b"host\xff\xfe\x00name\n")
        .file("/proc/cpuinfo", b"processor: 0\nmodel name: \xc3\x28 Evil \x1b[31mCPU\nflags: vmx\ncpu MHz: NaN\n\nprocessor: x\n")
        .file("/sys/devices/system/cpu/online", "0-4294967295\n")
        .file("/proc/meminfo", "MemTotal: 99999999999999999999999 kB\n")
        .file("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "-5\n");
    // A disk with every attribute wrong.
    f.block(
        "sda",
        Some("pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0"),
        &[
            ("size", "18446744073709551615"),
            ("removable", "2"),
            ("queue/rotational", "yes"),
            ("queue/logical_block_size", "99999999999"),
            ("device/wwid", "naa.; reboot"),
        ],
    );
    f.file("/sys/block/sda/device/model", vec![0xffu8; 100_000]);
    f.file(
        "/sys/block/sda/device/vpd_pg80",
        [0x00, 0x80, 0x00, 0xff, b'A'],
    );
    // A disk with a negative size and one that is a symlink loop.
    f.block(
        "sdb",
        Some("pci0000:00/0000:00:17.0/ata2/host1/target1:0:0/1:0:0:0"),
        &[("size", "-1")],
    );
    f.link("/sys/block/sdz", "sdz");
    f.link("/dev/disk/by-id/loop-link", "loop-link");
    // NICs with garbage.
    f.nic(
        "eth0",
        Some("pci0000:00/0000:00:03.0"),
        &[
            ("address", "zz:zz:zz:zz:zz:zz"),
            ("speed", "99999999999999"),
            ("mtu", "-1"),
            ("carrier", "maybe"),
            ("operstate", "\u{7}up"),
        ],
    );
    f.nic("eth1", None, &[("speed", "-1")]);
    f.file(
        "/sys/firmware/dmi/tables/smbios_entry_point",
        b"_SM3_garbage",
    );
    f.file("/sys/firmware/dmi/tables/DMI", vec![0xAAu8; 4096]);

    let inv = Collector::new(f.path()).collect();
    assert_eq!(inv.hostname.as_deref(), Some("host\u{fffd}\u{fffd}name"));
    assert_eq!(inv.cpu.model.as_deref(), Some("\u{fffd}( Evil [31mCPU"));
    assert_eq!(
        inv.cpu.mhz, None,
        "NaN and negative frequencies are unknown"
    );
    assert_eq!(inv.memory.total_bytes, None);
    let sda = inv.storage.iter().find(|d| d.name == "sda").unwrap();
    assert_eq!(
        sda.size_bytes, None,
        "overflowing size is unknown, not wrapped"
    );
    assert_eq!(sda.removable, None);
    assert_eq!(sda.rotational, None);
    assert_eq!(sda.logical_sector_bytes, None);
    assert_eq!(sda.wwn, None);
    assert_eq!(sda.kind, DiskKind::Unknown);
    assert_eq!(sda.model.as_ref().map(|m| m.chars().count()), Some(256));
    assert_eq!(sda.serial.as_deref(), Some("A"));
    assert!(
        inv.storage
            .iter()
            .all(|d| d.name != "sdb" && d.name != "sdz")
    );
    let eth0 = inv.network.iter().find(|n| n.name == "eth0").unwrap();
    assert_eq!(eth0.mac, None);
    assert_eq!(eth0.speed_mbps, None);
    assert_eq!(eth0.mtu, None);
    assert_eq!(eth0.carrier, None);
    assert_eq!(eth0.operstate.as_deref(), Some("up"));
    let eth1 = inv.network.iter().find(|n| n.name == "eth1").unwrap();
    assert_eq!(eth1.speed_mbps, None, "-1 is unknown, never -1");
    assert!(inv.warnings.iter().any(|w| w.source == "smbios"));
    // Whatever happened, the document serializes.
    serde_json::to_string(&inv).unwrap();
}

#[test]
fn unreadable_files_become_warnings_not_panics() {
    let f = FixtureRoot::new();
    f.dir("/proc/cpuinfo"); // a directory where a file is expected
    f.dir("/proc/meminfo");
    f.file("/sys/block", "not a directory");
    f.file("/sys/class/net", "not a directory");
    let inv = Collector::new(f.path()).collect();
    let sources: Vec<&str> = inv.warnings.iter().map(|w| w.source.as_str()).collect();
    for s in [
        "/proc/cpuinfo",
        "/proc/meminfo",
        "/sys/block",
        "/sys/class/net",
    ] {
        assert!(sources.contains(&s), "{s} missing from {sources:?}");
    }
}
