//! A 2-socket server with hyper-threading and 16 DIMMs, NVMe + SATA SSD +
//! SAS HDD + USB stick among loop/zram/dm/md noise, and 4 NICs, built as a
//! fixture root; the real agent binary reads it with `--once --root` and
//! every field of its JSON is checked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/smbios.rs"]
mod smbios_builder;
#[path = "support/sysfs.rs"]
mod sysfs;

use std::process::Command;

use harmony_inventory_agent::model::*;
use smbios_builder::{DimmSpec, SmbiosBuilder};
use sysfs::FixtureRoot;

const GIB: u64 = 1024 * 1024 * 1024;
const CPU_MODEL: &str = "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz";

fn server_fixture() -> FixtureRoot {
    let f = FixtureRoot::new();
    f.file("/proc/sys/kernel/hostname", "node-7\n");
    f.dir("/sys/firmware/efi");

    // CPU: 2 sockets x 16 cores x 2 threads; core ids repeat per socket.
    let mut cpuinfo = String::new();
    for n in 0..64u32 {
        let package = (n / 16) % 2;
        let core = n % 16;
        f.cpu(n, package.into(), 0, core.into());
        cpuinfo.push_str(&format!(
            "processor\t: {n}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel name\t: {CPU_MODEL}\n\
             cpu MHz\t\t: 2000.000\nphysical id\t: {package}\nsiblings\t: 32\ncore id\t\t: {core}\ncpu cores\t: 16\n\
             flags\t\t: fpu vme de pse tsc msr pae vmx smx aes avx avx2 avx512f avx512dq sha_ni\n\n"
        ));
    }
    f.file("/proc/cpuinfo", cpuinfo);
    f.file("/sys/devices/system/cpu/online", "0-63\n");
    f.file(
        "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq",
        "3200000\n",
    );
    f.file(
        "/proc/meminfo",
        "MemTotal:       791234567 kB\nMemFree:        700000000 kB\n",
    );
    f.file("/proc/sys/kernel/arch", "x86_64\n");
    memory_blocks(&f);

    // SMBIOS: type 1, two populated sockets + one empty, 16 DIMMs + 8 empty slots.
    let mut b = SmbiosBuilder::new()
        .system(
            "Dell Inc.",
            "PowerEdge R750",
            "7XYZ123",
            [
                0x44, 0x45, 0x4c, 0x4c, 0x42, 0x00, 0x10, 0x30, 0x80, 0x52, 0xb4, 0xc0, 0x4f, 0x4a,
                0x4e, 0x32,
            ],
            "PowerEdge",
        )
        .baseboard("Dell Inc.", "0JMK61", "CNFCP0012300AB")
        .chassis("Dell Inc.", "7XYZ123-CH")
        .processor("CPU1", true, "Intel", CPU_MODEL, 16, 32)
        .processor("CPU2", true, "Intel", CPU_MODEL, 16, 32)
        .processor("CPU3", false, "", "", 0, 0);
    for i in 0..24u32 {
        let populated = i < 16;
        let size_mb = if !populated {
            0
        } else if i < 8 {
            32 * 1024
        } else {
            64 * 1024
        };
        b = b.memory_device(DimmSpec {
            locator: format!("A{}", i + 1).leak(),
            bank: format!("Bank {}", i / 2).leak(),
            size_mb,
            size_in_kb: false,
            memory_type: 0x1a, // DDR4
            speed_mts: 3200,
            manufacturer: "Samsung",
            serial: format!("S{:07}", 1000 + i).leak(),
            part_number: "M393A4K40DB3-CWE    ",
        });
    }
    b.write_to(f.path());

    // Storage.
    let nvme_ctrl = "pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0";
    f.dir(&format!("/sys/devices/{nvme_ctrl}/nvme0n1/queue"))
        .link(
            &format!("/sys/devices/{nvme_ctrl}/nvme0n1/device"),
            "../../nvme0",
        )
        .file(
            &format!("/sys/devices/{nvme_ctrl}/nvme0n1/size"),
            "3750748848\n",
        )
        .file(&format!("/sys/devices/{nvme_ctrl}/nvme0n1/dev"), "259:0\n")
        .file(
            &format!("/sys/devices/{nvme_ctrl}/nvme0n1/removable"),
            "0\n",
        )
        .file(
            &format!("/sys/devices/{nvme_ctrl}/nvme0n1/wwid"),
            "eui.0025388b71b2c3d4\n",
        )
        .file(
            &format!("/sys/devices/{nvme_ctrl}/nvme0n1/queue/rotational"),
            "0\n",
        )
        .file(
            &format!("/sys/devices/{nvme_ctrl}/nvme0n1/queue/logical_block_size"),
            "512\n",
        )
        .file(
            &format!("/sys/devices/{nvme_ctrl}/nvme0n1/queue/physical_block_size"),
            "512\n",
        )
        .file(
            &format!("/sys/devices/{nvme_ctrl}/model"),
            "SAMSUNG MZQL21T9HCJR-00A07               \n",
        )
        .file(
            &format!("/sys/devices/{nvme_ctrl}/serial"),
            "S64GNE0R123456      \n",
        )
        .link(
            "/sys/block/nvme0n1",
            &format!("../devices/{nvme_ctrl}/nvme0n1"),
        )
        // hidden multipath path node: excluded
        .file(
            &format!("/sys/devices/{nvme_ctrl}/nvme0c0n1/size"),
            "3750748848\n",
        )
        .file(&format!("/sys/devices/{nvme_ctrl}/nvme0c0n1/hidden"), "1\n")
        .link(
            &format!("/sys/devices/{nvme_ctrl}/nvme0c0n1/device"),
            "../../nvme0",
        )
        .link(
            "/sys/block/nvme0c0n1",
            &format!("../devices/{nvme_ctrl}/nvme0c0n1"),
        )
        .link("/dev/disk/by-id/nvme-eui.0025388b71b2c3d4", "../../nvme0n1")
        .link(
            "/dev/disk/by-id/nvme-eui.0025388b71b2c3d4-part1",
            "../../nvme0n1p1",
        )
        .link(
            "/dev/disk/by-id/nvme-SAMSUNG_MZQL21T9HCJR-00A07_S64GNE0R123456",
            "../../nvme0n1",
        )
        .link("/dev/disk/by-path/pci-0000:3d:00.0-nvme-1", "../../nvme0n1");

    let mut pg80 = vec![0x00, 0x80, 0x00, 20];
    pg80.extend_from_slice(b"S6ESNA0T123456      ");
    f.block(
        "sda",
        Some("pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0"),
        &[
            ("size", "3750748848"),
            ("dev", "8:0"),
            ("removable", "0"),
            ("queue/rotational", "0"),
            ("queue/logical_block_size", "512"),
            ("queue/physical_block_size", "4096"),
            ("device/vendor", "ATA     "),
            ("device/model", "SAMSUNG MZ7L31T9"),
            ("device/wwid", "naa.5002538f4231e1a2"),
        ],
    );
    f.file("/sys/block/sda/device/vpd_pg80", pg80);
    f.file(
        "/run/udev/data/b8:0",
        "S:disk/by-id/ata-SAMSUNG_MZ7L31T9HBLT-00A07_S6ESNA0T123456\n\
         S:disk/by-id/wwn-0x5002538f4231e1a2\n\
         S:disk/by-path/pci-0000:00:17.0-ata-1\n\
         E:ID_MODEL=SAMSUNG_MZ7L31T9HBLT-00A07\n\
         E:ID_SERIAL_SHORT=S6ESNA0T123456\n",
    );

    let mut pg80 = vec![0x00, 0x80, 0x00, 8];
    pg80.extend_from_slice(b"ZL2ABCDE");
    f.block(
        "sdb",
        Some("pci0000:3a/0000:3a:00.0/0000:3b:00.0/host1/port-1:0/expander-1:0/port-1:0:0/end_device-1:0:0/target1:0:0/1:0:0:0"),
        &[
            ("size", "31251759104"),
            ("removable", "0"),
            ("queue/rotational", "1"),
            ("queue/logical_block_size", "512"),
            ("queue/physical_block_size", "4096"),
            ("device/vendor", "SEAGATE "),
            ("device/model", "ST16000NM004J   "),
            ("device/wwid", "naa.5000c500d1b2c3d4"),
        ],
    );
    f.file("/sys/block/sdb/device/vpd_pg80", pg80);

    f.block(
        "sdc",
        Some("pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host2/target2:0:0/2:0:0:0"),
        &[
            ("size", "30031872"),
            ("removable", "1"),
            ("queue/rotational", "1"),
            ("queue/logical_block_size", "512"),
            ("queue/physical_block_size", "512"),
            ("device/vendor", "SanDisk "),
            ("device/model", "Ultra Fit       "),
        ],
    );
    // The stick's USB device (2-1) has the serial; its interface (2-1:1.0)
    // has none, and the root hub above (usb2) has one that must not be taken.
    let usb = "/sys/devices/pci0000:00/0000:00:14.0/usb2";
    f.file(&format!("{usb}/idVendor"), "1d6b\n")
        .file(&format!("{usb}/serial"), "0000:00:14.0\n")
        .file(&format!("{usb}/2-1/idVendor"), "0781\n")
        .file(&format!("{usb}/2-1/serial"), "4C530001230915116033\n")
        .file(&format!("{usb}/2-1/2-1:1.0/bInterfaceClass"), "08\n");
    // Noise that is never a disk.
    for (name, size) in [
        ("loop0", "1024"),
        ("zram0", "8388608"),
        ("dm-0", "1000"),
        ("md0", "2000"),
    ] {
        f.block(name, None, &[("size", size)]);
    }
    f.block(
        "sr0",
        Some("pci0000:00/0000:00:17.0/ata2/host3/target3:0:0/3:0:0:0"),
        &[("size", "0"), ("removable", "1")],
    );

    // Network: two 25G bond candidates, one down 1G port, one bridge, lo.
    for (name, func, mac) in [
        ("eno1", "0000:18:00.0", "3c:ec:ef:12:34:56"),
        ("eno2", "0000:18:00.1", "3C:EC:EF:12:34:57"),
    ] {
        let dir = format!("pci0000:17/0000:17:02.0/{func}");
        f.pci_function(&dir, "ice")
            .file(&format!("/sys/devices/{dir}/vendor"), "0x8086\n")
            .file(&format!("/sys/devices/{dir}/device"), "0x159B\n");
        f.nic(
            name,
            Some(&dir),
            &[
                ("address", mac),
                ("addr_assign_type", "0"),
                ("speed", "25000"),
                ("carrier", "1"),
                ("operstate", "up"),
                ("mtu", "9000"),
                ("type", "1"),
            ],
        );
    }
    f.pci_function("pci0000:00/0000:00:1f.6", "e1000e")
        .file("/sys/devices/pci0000:00/0000:00:1f.6/vendor", "0x8086\n")
        .file("/sys/devices/pci0000:00/0000:00:1f.6/device", "0x15bb\n");
    f.nic(
        "eno3",
        Some("pci0000:00/0000:00:1f.6"),
        &[
            ("address", "3c:ec:ef:00:00:01"),
            ("addr_assign_type", "0"),
            ("speed", "-1"),
            ("carrier", "0"),
            ("operstate", "down"),
            ("mtu", "1500"),
            ("type", "1"),
        ],
    );
    f.nic(
        "virbr0",
        None,
        &[
            ("address", "52:54:00:00:00:01"),
            ("addr_assign_type", "3"),
            ("operstate", "down"),
            ("mtu", "1500"),
            ("type", "1"),
        ],
    );
    f.nic(
        "lo",
        None,
        &[("address", "00:00:00:00:00:00"), ("type", "772")],
    );
    f
}

/// 128 MiB memory blocks: 0-3 online, 4 offline, 5 online by `state` only
/// (no `online` attribute), plus the directory's other entries.
fn memory_blocks(f: &FixtureRoot) {
    let m = "/sys/devices/system/memory";
    f.file(&format!("{m}/block_size_bytes"), "8000000\n")
        .file(&format!("{m}/auto_online_blocks"), "online\n")
        .dir(&format!("{m}/power"));
    for i in 0..4 {
        f.file(&format!("{m}/memory{i}/online"), "1\n")
            .file(&format!("{m}/memory{i}/state"), "online\n");
    }
    f.file(&format!("{m}/memory4/online"), "0\n")
        .file(&format!("{m}/memory4/state"), "offline\n")
        .file(&format!("{m}/memory5/state"), "online\n");
}

fn run_once(root: &std::path::Path) -> Inventory {
    let out = Command::new(env!("CARGO_BIN_EXE_harmony-inventory-agent"))
        .arg("--once")
        .arg("--root")
        .arg(root)
        .output()
        .expect("run agent");
    assert!(
        out.status.success(),
        "agent failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("agent JSON parses as the model")
}

fn disk(name: &str) -> Disk {
    Disk {
        name: name.into(),
        path: format!("/dev/{name}"),
        by_path: None,
        by_id: None,
        model: None,
        vendor: None,
        serial: None,
        wwn: None,
        size_bytes: None,
        logical_sector_bytes: Some(512),
        physical_sector_bytes: None,
        rotational: None,
        removable: Some(false),
        kind: DiskKind::Unknown,
        transport: None,
        hctl: None,
    }
}

fn nic(name: &str) -> Nic {
    Nic {
        mtu: Some(1500),
        ..Nic::new(name)
    }
}

#[test]
fn two_socket_server_every_field() {
    let f = server_fixture();
    let inv = run_once(f.path());

    let dimms: Vec<Dimm> = (0..16u32)
        .map(|i| Dimm {
            locator: Some(format!("A{}", i + 1)),
            bank: Some(format!("Bank {}", i / 2)),
            size_bytes: Some(if i < 8 { 32 * GIB } else { 64 * GIB }),
            memory_type: Some("DDR4".into()),
            speed_mts: Some(3200),
            manufacturer: Some("Samsung".into()),
            serial: Some(format!("S{:07}", 1000 + i)),
            part_number: Some("M393A4K40DB3-CWE".into()),
        })
        .collect();

    let expected = Inventory {
        schema_version: SCHEMA_VERSION,
        agent_version: env!("CARGO_PKG_VERSION").into(),
        collected_at: inv.collected_at.clone(),
        hostname: Some("node-7".into()),
        warnings: vec![],
        system: System {
            vendor: Some("Dell Inc.".into()),
            product: Some("PowerEdge R750".into()),
            serial: Some("7XYZ123".into()),
            uuid: Some("4c4c4544-0042-3010-8052-b4c04f4a4e32".into()),
            family: Some("PowerEdge".into()),
            boot_mode: Some(BootMode::Uefi),
            bmc_address: None,
            hypervisor: None,
            baseboard_serial: Some("CNFCP0012300AB".into()),
            chassis_serial: Some("7XYZ123-CH".into()),
        },
        cpu: Cpu {
            model: Some(CPU_MODEL.into()),
            vendor: Some("GenuineIntel".into()),
            sockets: Some(2),
            cores: Some(32),
            threads: Some(64),
            mhz: Some(3200.0),
            // Every flag, sorted.
            flags: [
                "aes", "avx", "avx2", "avx512dq", "avx512f", "de", "fpu", "msr", "pae", "pse",
                "sha_ni", "smx", "tsc", "vme", "vmx",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            architecture: Some("x86_64".into()),
        },
        memory: Memory {
            total_bytes: Some(791_234_567 * 1024),
            smbios_total_bytes: Some(8 * 32 * GIB + 8 * 64 * GIB),
            physical_bytes: Some(5 * 128 * 1024 * 1024),
            dimms,
        },
        storage: vec![
            Disk {
                by_path: Some("/dev/disk/by-path/pci-0000:3d:00.0-nvme-1".into()),
                by_id: Some("/dev/disk/by-id/nvme-eui.0025388b71b2c3d4".into()),
                model: Some("SAMSUNG MZQL21T9HCJR-00A07".into()),
                serial: Some("S64GNE0R123456".into()),
                wwn: Some("eui.0025388b71b2c3d4".into()),
                size_bytes: Some(3_750_748_848 * 512),
                physical_sector_bytes: Some(512),
                rotational: Some(false),
                kind: DiskKind::Nvme,
                transport: Some("nvme".into()),
                ..disk("nvme0n1")
            },
            Disk {
                by_path: Some("/dev/disk/by-path/pci-0000:00:17.0-ata-1".into()),
                by_id: Some("/dev/disk/by-id/wwn-0x5002538f4231e1a2".into()),
                model: Some("SAMSUNG MZ7L31T9".into()),
                vendor: Some("ATA".into()),
                serial: Some("S6ESNA0T123456".into()),
                wwn: Some("0x5002538f4231e1a2".into()),
                size_bytes: Some(3_750_748_848 * 512),
                physical_sector_bytes: Some(4096),
                rotational: Some(false),
                kind: DiskKind::Ssd,
                transport: Some("sata".into()),
                hctl: Some("0:0:0:0".into()),
                ..disk("sda")
            },
            Disk {
                model: Some("ST16000NM004J".into()),
                vendor: Some("SEAGATE".into()),
                serial: Some("ZL2ABCDE".into()),
                wwn: Some("0x5000c500d1b2c3d4".into()),
                size_bytes: Some(31_251_759_104 * 512),
                physical_sector_bytes: Some(4096),
                rotational: Some(true),
                kind: DiskKind::Hdd,
                transport: Some("sas".into()),
                hctl: Some("1:0:0:0".into()),
                ..disk("sdb")
            },
            Disk {
                model: Some("Ultra Fit".into()),
                vendor: Some("SanDisk".into()),
                serial: Some("4C530001230915116033".into()),
                size_bytes: Some(30_031_872 * 512),
                physical_sector_bytes: Some(512),
                rotational: Some(true),
                removable: Some(true),
                kind: DiskKind::Usb,
                transport: Some("usb".into()),
                hctl: Some("2:0:0:0".into()),
                ..disk("sdc")
            },
        ],
        network: vec![
            Nic {
                mac: Some("3c:ec:ef:12:34:56".into()),
                permanent_mac: Some("3c:ec:ef:12:34:56".into()),
                speed_mbps: Some(25_000),
                carrier: Some(true),
                operstate: Some("up".into()),
                mtu: Some(9000),
                driver: Some("ice".into()),
                pci_address: Some("0000:18:00.0".into()),
                pci_vendor_id: Some("0x8086".into()),
                pci_device_id: Some("0x159b".into()),
                ..nic("eno1")
            },
            Nic {
                mac: Some("3c:ec:ef:12:34:57".into()),
                permanent_mac: Some("3c:ec:ef:12:34:57".into()),
                speed_mbps: Some(25_000),
                carrier: Some(true),
                operstate: Some("up".into()),
                mtu: Some(9000),
                driver: Some("ice".into()),
                pci_address: Some("0000:18:00.1".into()),
                pci_vendor_id: Some("0x8086".into()),
                pci_device_id: Some("0x159b".into()),
                ..nic("eno2")
            },
            Nic {
                mac: Some("3c:ec:ef:00:00:01".into()),
                permanent_mac: Some("3c:ec:ef:00:00:01".into()),
                speed_mbps: None,
                carrier: Some(false),
                operstate: Some("down".into()),
                driver: Some("e1000e".into()),
                pci_address: Some("0000:00:1f.6".into()),
                pci_vendor_id: Some("0x8086".into()),
                pci_device_id: Some("0x15bb".into()),
                ..nic("eno3")
            },
            Nic {
                mac: Some("52:54:00:00:00:01".into()),
                operstate: Some("down".into()),
                is_virtual: true,
                ..nic("virbr0")
            },
        ],
    };
    // Compare piecewise first for readable failures, then the whole document.
    assert_eq!(inv.system, expected.system);
    assert_eq!(inv.cpu, expected.cpu);
    assert_eq!(inv.memory, expected.memory);
    for (got, want) in inv.storage.iter().zip(&expected.storage) {
        assert_eq!(got, want);
    }
    for (got, want) in inv.network.iter().zip(&expected.network) {
        assert_eq!(got, want);
    }
    assert_eq!(inv, expected);
}

#[test]
fn a_virtio_nic_reports_its_pci_function_ids_not_the_virtio_bus_ones() {
    let f = FixtureRoot::new();
    let func = "pci0000:00/0000:00:03.0";
    f.pci_function(func, "virtio-pci")
        .file(&format!("/sys/devices/{func}/vendor"), "0x1af4\n")
        .file(&format!("/sys/devices/{func}/device"), "0x1041\n")
        // The virtio device between them has virtio-bus IDs.
        .file(&format!("/sys/devices/{func}/virtio2/vendor"), "0x1af4\n")
        .file(&format!("/sys/devices/{func}/virtio2/device"), "0x0001\n");
    f.nic(
        "eth0",
        Some(&format!("{func}/virtio2")),
        &[("address", "52:54:00:12:34:56"), ("type", "1")],
    );
    let inv = run_once(f.path());
    let eth0 = &inv.network[0];
    assert_eq!(eth0.pci_address.as_deref(), Some("0000:00:03.0"));
    assert_eq!(eth0.pci_vendor_id.as_deref(), Some("0x1af4"));
    assert_eq!(eth0.pci_device_id.as_deref(), Some("0x1041"));
}

#[test]
fn without_smbios_the_dmi_files_give_the_baseboard_and_chassis_serials() {
    let f = FixtureRoot::new();
    f.file("/sys/class/dmi/id/board_serial", "BOARD-42\n").file(
        "/sys/class/dmi/id/chassis_serial",
        "Chassis Serial Number\n",
    );
    memory_blocks(&f);
    let inv = run_once(f.path());
    assert_eq!(inv.system.baseboard_serial.as_deref(), Some("BOARD-42"));
    assert_eq!(inv.system.chassis_serial, None, "placeholder is null");
    // No SMBIOS (so no DIMM total), yet the physical memory is known.
    assert_eq!(inv.memory.smbios_total_bytes, None);
    assert_eq!(inv.memory.physical_bytes, Some(5 * 128 * 1024 * 1024));
}

#[test]
fn bond_member_reports_its_permanent_mac() {
    let f = FixtureRoot::new();
    f.pci_function("pci0000:17/0000:17:02.0/0000:18:00.1", "ice");
    f.nic(
        "eno2",
        Some("pci0000:17/0000:17:02.0/0000:18:00.1"),
        &[
            ("address", "3c:ec:ef:12:34:56"),
            ("addr_assign_type", "3"),
            ("operstate", "up"),
            ("mtu", "1500"),
        ],
    );
    f.nic(
        "bond0",
        None,
        &[("address", "3c:ec:ef:12:34:56"), ("mtu", "1500")],
    );
    f.link(
        "/sys/devices/pci0000:17/0000:17:02.0/0000:18:00.1/net/eno2/master",
        "../../../../../virtual/net/bond0",
    );
    f.file(
        "/proc/net/bonding/bond0",
        "Bonding Mode: IEEE 802.3ad Dynamic link aggregation\n\n\
         Slave Interface: eno1\nPermanent HW addr: 3c:ec:ef:12:34:56\n\n\
         Slave Interface: eno2\nMII Status: up\nPermanent HW addr: 3c:ec:ef:12:34:57\nSlave queue ID: 0\n",
    );
    // The bonding driver's control file sits among the interfaces: a file,
    // not an interface.
    f.file("/sys/class/net/bonding_masters", "bond0\n");
    let inv = run_once(f.path());
    let names: Vec<&str> = inv.network.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["eno2", "bond0"]);
    let eno2 = inv.network.iter().find(|n| n.name == "eno2").unwrap();
    assert_eq!(eno2.mac.as_deref(), Some("3c:ec:ef:12:34:56"));
    assert_eq!(eno2.permanent_mac.as_deref(), Some("3c:ec:ef:12:34:57"));
    assert_eq!(eno2.master.as_deref(), Some("bond0"));
    assert!(!eno2.is_virtual);
    assert!(
        inv.network
            .iter()
            .find(|n| n.name == "bond0")
            .unwrap()
            .is_virtual
    );
    assert_eq!(inv.network[0].name, "eno2", "physical NICs first");
}

#[test]
fn missing_sources_are_null_with_warnings_never_empty_strings() {
    let f = FixtureRoot::new();
    let inv = run_once(f.path());
    let sources: Vec<&str> = inv.warnings.iter().map(|w| w.source.as_str()).collect();
    for s in [
        "smbios",
        "/proc/cpuinfo",
        "/proc/meminfo",
        "/sys/block",
        "/sys/class/net",
        "/proc/sys/kernel/arch",
        "/sys/devices/system/memory",
    ] {
        assert!(sources.contains(&s), "no warning for {s}: {sources:?}");
    }
    assert_eq!(inv.hostname, None);
    assert_eq!(inv.memory.total_bytes, None);
    assert_eq!(inv.cpu.threads, None);
    assert_eq!(inv.system.vendor, None);
    assert_eq!(inv.cpu.architecture, None);
    assert_eq!(inv.memory.physical_bytes, None);
    assert!(inv.storage.is_empty() && inv.network.is_empty());
    let json = serde_json::to_string(&inv).unwrap();
    assert!(!json.contains("\"\""), "empty string in {json}");
}
