#![allow(clippy::unwrap_used, clippy::expect_used)]
//! SMBIOS parsing against tables built byte by byte from DSP0134.

#[path = "support/smbios.rs"]
mod smbios_builder;

use harmony_inventory_agent::collect::SysRoot;
use harmony_inventory_agent::collect::smbios::{self, SmbiosData, SmbiosError};
use harmony_inventory_agent::model::Dimm;
use smbios_builder::{Area, DimmSpec, SmbiosBuilder};

const GIB: u64 = 1024 * 1024 * 1024;
const MIB: u64 = 1024 * 1024;

/// UUID 00112233-4455-6677-8899-aabbccddeeff as SMBIOS 2.6+ stores it: the
/// first three fields little-endian, the rest as is.
const UUID_STORED: [u8; 16] = [
    0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF,
];

fn parse(b: SmbiosBuilder) -> SmbiosData {
    let (ep, table) = b.build();
    smbios::parse(&ep, &table).unwrap()
}

const LOCATORS_32: [&str; 8] = ["A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8"];
const LOCATORS_64: [&str; 8] = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8"];
const LOCATORS_EMPTY: [&str; 8] = ["C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8"];

/// Two populated sockets and one empty; 8x32 GiB DDR4-3200, 8x64 GiB
/// DDR4-2933 (Extended Size), 8 empty slots interleaved.
fn server() -> SmbiosBuilder {
    let mut b = SmbiosBuilder::new()
        .system(
            "Dell Inc.",
            "PowerEdge R740",
            "7XK3QZ2",
            UUID_STORED,
            "PowerEdge",
        )
        .processor("CPU1", true, "Intel", "Intel(R) Xeon(R) Gold 6248", 20, 40)
        .processor("CPU2", true, "Intel", "Intel(R) Xeon(R) Gold 6248", 20, 40)
        .processor("CPU3", false, "", "", 0, 0);
    for i in 0..8 {
        b = b
            .memory_device(DimmSpec {
                locator: LOCATORS_32[i],
                bank: "P0",
                size_mb: 32 * 1024,
                speed_mts: 3200,
                manufacturer: "Samsung",
                serial: "S32A0001",
                part_number: "M393A4K40DB3-CWE    ",
                ..DimmSpec::default()
            })
            .memory_device(DimmSpec::empty(LOCATORS_EMPTY[i]))
            .memory_device(DimmSpec {
                locator: LOCATORS_64[i],
                bank: "P1",
                size_mb: 64 * 1024,
                speed_mts: 2933,
                manufacturer: "Micron",
                serial: "M64B0002",
                part_number: "36ASF8G72PZ-2G9E2",
                ..DimmSpec::default()
            });
    }
    b
}

#[test]
fn two_socket_server() {
    let d = parse(server());
    assert_eq!(d.vendor.as_deref(), Some("Dell Inc."));
    assert_eq!(d.product.as_deref(), Some("PowerEdge R740"));
    assert_eq!(d.serial.as_deref(), Some("7XK3QZ2"));
    assert_eq!(d.family.as_deref(), Some("PowerEdge"));
    assert_eq!(
        d.uuid.as_deref(),
        Some("00112233-4455-6677-8899-aabbccddeeff")
    );
    assert_eq!(d.version.as_deref(), Some("3.3"));
    assert_eq!(d.skipped_structures, 0);
    assert_eq!(d.populated_sockets, Some(2));

    assert_eq!(d.dimms.len(), 16, "8 empty slots excluded: {:#?}", d.dimms);
    assert_eq!(
        d.dimms[0],
        Dimm {
            locator: Some("A1".into()),
            bank: Some("P0".into()),
            size_bytes: Some(32 * GIB),
            memory_type: Some("DDR4".into()),
            speed_mts: Some(3200),
            manufacturer: Some("Samsung".into()),
            serial: Some("S32A0001".into()),
            part_number: Some("M393A4K40DB3-CWE".into()),
        }
    );
    assert_eq!(
        d.dimms[1],
        Dimm {
            locator: Some("B1".into()),
            bank: Some("P1".into()),
            size_bytes: Some(64 * GIB),
            memory_type: Some("DDR4".into()),
            speed_mts: Some(2933),
            manufacturer: Some("Micron".into()),
            serial: Some("M64B0002".into()),
            part_number: Some("36ASF8G72PZ-2G9E2".into()),
        }
    );
    let locators: Vec<&str> = d
        .dimms
        .iter()
        .filter_map(|m| m.locator.as_deref())
        .collect();
    let expected: Vec<&str> = (0..8)
        .flat_map(|i| [LOCATORS_32[i], LOCATORS_64[i]])
        .collect();
    assert_eq!(locators, expected);
    assert_eq!(
        d.dimms
            .iter()
            .filter(|m| m.size_bytes == Some(32 * GIB))
            .count(),
        8
    );
    assert_eq!(
        d.dimms
            .iter()
            .filter(|m| m.size_bytes == Some(64 * GIB))
            .count(),
        8
    );
    assert_eq!(d.dimm_total_bytes(), Some(768 * GIB));
}

#[test]
fn size_field_boundaries() {
    let d = parse(
        SmbiosBuilder::new()
            // 0x7FFE MiB is the largest value the Size field holds itself.
            .memory_device(DimmSpec {
                locator: "MAX16",
                size_mb: 0x7FFE,
                ..DimmSpec::default()
            })
            // 32767 MiB needs Size = 0x7FFF plus Extended Size.
            .memory_device(DimmSpec {
                locator: "EXT",
                size_mb: 0x7FFF,
                ..DimmSpec::default()
            })
            .memory_device(DimmSpec {
                locator: "EXT256G",
                size_mb: 256 * 1024,
                ..DimmSpec::default()
            })
            // 16 MiB stored with KiB granularity: 0x8000 | 16384.
            .memory_device(DimmSpec {
                locator: "KB",
                size_mb: 16,
                size_in_kb: true,
                ..DimmSpec::default()
            }),
    );
    let sizes: Vec<(Option<&str>, Option<u64>)> = d
        .dimms
        .iter()
        .map(|m| (m.locator.as_deref(), m.size_bytes))
        .collect();
    assert_eq!(
        sizes,
        vec![
            (Some("MAX16"), Some(0x7FFE * MIB)),
            (Some("EXT"), Some(0x7FFF * MIB)),
            (Some("EXT256G"), Some(256 * GIB)),
            (Some("KB"), Some(16 * MIB)),
        ]
    );
    assert_eq!(d.populated_sockets, None, "no type 4 at all");
    assert_eq!(d.vendor, None, "no type 1 at all");
    assert_eq!(d.uuid, None);
}

/// A Type 17 in the SMBIOS 2.3 layout (length 0x1B: no Extended Size), as
/// older firmware ships it.
fn legacy_dimm(size: u16, speed: u16, memory_type: u8) -> Vec<u8> {
    let mut f = Area::new(0x1B);
    f.word(0x04, 0x1000) // Physical Memory Array Handle
        .word(0x06, 0xFFFE) // Memory Error Information Handle: none
        .word(0x08, 64) // Total Width
        .word(0x0A, 64) // Data Width
        .word(0x0C, size)
        .byte(0x0E, 0x09) // Form Factor: DIMM
        .byte(0x10, 1) // Device Locator: string 1
        .byte(0x11, 2) // Bank Locator: string 2
        .byte(0x12, memory_type)
        .word(0x15, speed)
        .byte(0x17, 3) // Manufacturer
        .byte(0x18, 4) // Serial Number
        .byte(0x19, 0) // Asset Tag: none
        .byte(0x1A, 5); // Part Number
    f.into_vec()
}

#[test]
fn legacy_short_memory_devices() {
    let strings: [&[u8]; 5] = [
        b"DIMM0",
        b"BANK 0",
        b"Kingston",
        b"0A1B2C3D",
        b"KVR800D2N6/1G",
    ];
    let d = parse(
        SmbiosBuilder::v2(2, 5)
            // 512 KiB, KiB granularity, DDR2-800.
            .raw_structure(17, &legacy_dimm(0x8000 | 512, 800, 0x13), &strings)
            // Size unknown (0xFFFF): installed, size null; type Unknown -> null.
            .raw_structure(17, &legacy_dimm(0xFFFF, 0, 0x02), &strings)
            // Empty slot.
            .raw_structure(17, &legacy_dimm(0, 0, 0x02), &strings),
    );
    assert_eq!(d.skipped_structures, 0);
    assert_eq!(
        d.dimms,
        vec![
            Dimm {
                locator: Some("DIMM0".into()),
                bank: Some("BANK 0".into()),
                size_bytes: Some(512 * 1024),
                memory_type: Some("DDR2".into()),
                speed_mts: Some(800),
                manufacturer: Some("Kingston".into()),
                serial: Some("0A1B2C3D".into()),
                part_number: Some("KVR800D2N6/1G".into()),
            },
            Dimm {
                locator: Some("DIMM0".into()),
                bank: Some("BANK 0".into()),
                size_bytes: None,
                memory_type: None,
                speed_mts: None,
                manufacturer: Some("Kingston".into()),
                serial: Some("0A1B2C3D".into()),
                part_number: Some("KVR800D2N6/1G".into()),
            },
        ]
    );
}

#[test]
fn speed_and_type_variants() {
    let d = parse(
        SmbiosBuilder::new()
            .memory_device(DimmSpec {
                locator: "DDR5",
                memory_type: 0x22,
                speed_mts: 5600,
                ..DimmSpec::default()
            })
            .memory_device(DimmSpec {
                locator: "EXTSPEED",
                memory_type: 0x23,
                speed_mts: 70_000,
                ..DimmSpec::default()
            })
            .memory_device(DimmSpec {
                locator: "NOSPEED",
                memory_type: 0x18,
                speed_mts: 0,
                ..DimmSpec::default()
            })
            .memory_device(DimmSpec {
                locator: "LP4",
                memory_type: 0x1E,
                ..DimmSpec::default()
            }),
    );
    let got: Vec<(Option<&str>, Option<u32>)> = d
        .dimms
        .iter()
        .map(|m| (m.memory_type.as_deref(), m.speed_mts))
        .collect();
    assert_eq!(
        got,
        vec![
            (Some("DDR5"), Some(5600)),
            (Some("LPDDR5"), Some(70_000)),
            (Some("DDR3"), None),
            (Some("LPDDR4"), Some(3200)),
        ]
    );
}

#[test]
fn bogus_strings_become_none() {
    let d = parse(
        SmbiosBuilder::new()
            .system(
                "To Be Filled By O.E.M.",
                "System Product Name",
                "  default STRING ",
                UUID_STORED,
                "Not Specified",
            )
            .memory_device(DimmSpec {
                locator: "DIMM_A1",
                bank: "None",
                manufacturer: "Unknown",
                serial: "00000000",
                part_number: "Not Specified       ",
                ..DimmSpec::default()
            }),
    );
    assert_eq!(d.vendor, None);
    assert_eq!(d.product, None);
    assert_eq!(d.serial, None);
    assert_eq!(d.family, None);
    assert!(d.uuid.is_some());
    assert_eq!(
        d.dimms,
        vec![Dimm {
            locator: Some("DIMM_A1".into()),
            bank: None,
            size_bytes: Some(32 * GIB),
            memory_type: Some("DDR4".into()),
            speed_mts: Some(3200),
            manufacturer: None,
            serial: None,
            part_number: None,
        }]
    );
}

#[test]
fn uuid_byte_order_depends_on_version() {
    let sys = |b: SmbiosBuilder| b.system("V", "P", "S", UUID_STORED, "F");
    // 2.6 and later: first three fields little-endian.
    for b in [
        SmbiosBuilder::new(),
        SmbiosBuilder::v2(2, 6),
        SmbiosBuilder::v2(2, 8),
    ] {
        assert_eq!(
            parse(sys(b)).uuid.as_deref(),
            Some("00112233-4455-6677-8899-aabbccddeeff")
        );
    }
    // Before 2.6 the bytes are taken in stored order.
    assert_eq!(
        parse(sys(SmbiosBuilder::v2(2, 5))).uuid.as_deref(),
        Some("33221100-5544-7766-8899-aabbccddeeff")
    );
}

#[test]
fn zero_and_ff_uuids_are_none() {
    for uuid in [[0u8; 16], [0xFF; 16]] {
        let d = parse(SmbiosBuilder::new().system("V", "P", "S", uuid, "F"));
        assert_eq!(d.uuid, None);
        assert_eq!(d.vendor.as_deref(), Some("V"));
    }
}

#[test]
fn smbios_2_entry_point() {
    let (ep, table) = SmbiosBuilder::v2(2, 8)
        .system(
            "HPE",
            "ProLiant DL360 Gen10",
            "CZJ1234567",
            UUID_STORED,
            "ProLiant",
        )
        .processor("Proc 1", true, "Intel", "Xeon", 16, 32)
        .processor("Proc 2", false, "", "", 0, 0)
        .memory_device(DimmSpec {
            locator: "PROC 1 DIMM 1",
            size_mb: 16 * 1024,
            ..DimmSpec::default()
        })
        .build();
    assert_eq!(&ep[..4], b"_SM_");
    assert_eq!(ep.len(), 31);
    let d = smbios::parse(&ep, &table).unwrap();
    assert_eq!(d.version.as_deref(), Some("2.8"));
    assert_eq!(d.vendor.as_deref(), Some("HPE"));
    assert_eq!(d.product.as_deref(), Some("ProLiant DL360 Gen10"));
    assert_eq!(
        d.uuid.as_deref(),
        Some("00112233-4455-6677-8899-aabbccddeeff")
    );
    assert_eq!(d.populated_sockets, Some(1));
    assert_eq!(d.dimms.len(), 1);
    assert_eq!(d.dimms[0].size_bytes, Some(16 * GIB));
    assert_eq!(d.dimms[0].locator.as_deref(), Some("PROC 1 DIMM 1"));
}

#[test]
fn no_populated_socket_is_zero_not_none() {
    let d = parse(SmbiosBuilder::new().processor("CPU1", false, "", "", 0, 0));
    assert_eq!(d.populated_sockets, Some(0));
}

#[test]
fn wrong_checksum_or_garbage_entry_point_is_an_error() {
    let (mut ep, table) = server().build();
    ep[0x0A] ^= 0x01;
    let err = smbios::parse(&ep, &table).unwrap_err();
    assert!(
        matches!(&err, SmbiosError::EntryPoint(m) if m.contains("checksum")),
        "{err}"
    );

    let (mut ep2, table2) = SmbiosBuilder::v2(2, 8).build();
    ep2[0x06] = ep2[0x06].wrapping_add(1);
    assert!(matches!(
        smbios::parse(&ep2, &table2),
        Err(SmbiosError::EntryPoint(_))
    ));

    for ep in [&b""[..], b"garbage", &[0xFF; 64], b"_SM3_", b"_SM_\0\0\0"] {
        assert!(
            matches!(smbios::parse(ep, &table), Err(SmbiosError::EntryPoint(_))),
            "{ep:?}"
        );
    }
}

#[test]
fn truncated_table_gives_partial_result_without_panic() {
    let (ep, table) = server().build();
    let full = smbios::parse(&ep, &table).unwrap();
    for n in 0..table.len() {
        let d = smbios::parse(&ep, &table[..n]).unwrap();
        assert!(d.dimms.len() <= full.dimms.len());
        assert!(d.dimms.iter().all(|m| full.dimms.contains(m)));
    }
    let half = smbios::parse(&ep, &table[..table.len() / 2]).unwrap();
    assert!(
        !half.dimms.is_empty() && half.dimms.len() < 16,
        "{}",
        half.dimms.len()
    );
    assert_eq!(half.vendor.as_deref(), Some("Dell Inc."));
    assert_eq!(half.populated_sockets, Some(2));
    assert_eq!(half.skipped_structures, 1, "the cut structure");
}

#[test]
fn garbage_tables_do_not_panic() {
    let (ep, _) = SmbiosBuilder::new().build();
    let (ep_v3, _) = server().build();
    let (ep_v2, _) = SmbiosBuilder::v2(2, 3).raw_bytes(&[0; 4000]).build();
    let (ep_v20, _) = SmbiosBuilder::v2(2, 0).raw_bytes(&[0; 4000]).build();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..2000 {
        let len = (next() % 600) as usize;
        let mut table: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Bias towards plausible headers of the types that get decoded.
        if round % 2 == 0 && len > 2 {
            table[0] = [1, 2, 3, 4, 17, 127][(next() % 6) as usize];
            table[1] = (next() % 0x60) as u8;
        }
        for ep in [&ep, &ep_v3, &ep_v2, &ep_v20] {
            let _ = smbios::parse(ep, &table);
        }
    }
}

#[test]
fn damaged_structures_are_skipped_not_fatal() {
    // A DIMM whose part number points past its string set.
    let mut bad = legacy_dimm(8192, 2400, 0x1A);
    bad[0x1A - 4] = 9; // Part Number: string 9 of 4
    let d = parse(
        SmbiosBuilder::new()
            .system(
                "Lenovo",
                "ThinkSystem SR650",
                "J30ABCDE",
                UUID_STORED,
                "ThinkSystem",
            )
            .raw_structure(17, &bad, &[b"DIMM1", b"B", b"Hynix", b"1"])
            .memory_device(DimmSpec {
                locator: "DIMM2",
                ..DimmSpec::default()
            })
            .memory_device(DimmSpec {
                locator: "DIMM3",
                manufacturer: "SK Hynix",
                ..DimmSpec::default()
            })
            // A header claiming length 2, then bytes no walker can trust.
            .raw_bytes(&[17, 2, 0x99, 0x00, 1, 2, 3])
            .without_end_marker(),
    );
    assert_eq!(d.vendor.as_deref(), Some("Lenovo"));
    assert_eq!(d.skipped_structures, 2, "bad string index + bad header");
    let locators: Vec<&str> = d
        .dimms
        .iter()
        .filter_map(|m| m.locator.as_deref())
        .collect();
    assert_eq!(locators, ["DIMM2", "DIMM3"]);
    assert_eq!(d.dimms[1].manufacturer.as_deref(), Some("SK Hynix"));

    // A non-UTF-8 string: the structure is kept, the bad byte replaced.
    let mut raw = legacy_dimm(8192, 2400, 0x1A);
    raw[0x17 - 4] = 1;
    let d =
        parse(SmbiosBuilder::new().raw_structure(17, &raw, &[b"Hyn\xffx", b"B", b"C", b"D", b"E"]));
    assert_eq!(d.skipped_structures, 0);
    assert_eq!(d.dimms.len(), 1);
    assert_eq!(d.dimms[0].manufacturer.as_deref(), Some("Hyn\u{fffd}x"));
    assert_eq!(d.dimms[0].locator.as_deref(), Some("Hyn\u{fffd}x"));
    assert_eq!(d.dimms[0].size_bytes, Some(8 * GIB));
}

#[test]
fn read_from_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = SysRoot::new(dir.path());
    match smbios::read(&root) {
        Err(SmbiosError::Missing { path }) => {
            assert!(
                path.ends_with("sys/firmware/dmi/tables/smbios_entry_point"),
                "{path}"
            )
        }
        other => panic!("expected Missing, got {other:?}"),
    }

    server().write_to(dir.path());
    let (ep, table) = server().build();
    assert_eq!(
        smbios::read(&root).unwrap(),
        smbios::parse(&ep, &table).unwrap()
    );

    let dmi = dir.path().join("sys/firmware/dmi/tables/DMI");
    std::fs::remove_file(&dmi).unwrap();
    match smbios::read(&root) {
        Err(SmbiosError::Missing { path }) => assert!(path.ends_with("tables/DMI"), "{path}"),
        other => panic!("expected Missing, got {other:?}"),
    }

    // Unreadable (a directory where the table should be): an I/O error.
    std::fs::create_dir(&dmi).unwrap();
    match smbios::read(&root) {
        Err(e @ SmbiosError::Io { .. }) => assert!(e.to_string().contains("tables/DMI"), "{e}"),
        other => panic!("expected Io, got {other:?}"),
    }
}

#[test]
fn read_on_missing_root_is_missing() {
    let root = SysRoot::new("/nonexistent/harmony-smbios-test-root");
    assert!(matches!(
        smbios::read(&root),
        Err(SmbiosError::Missing { .. })
    ));
}

#[test]
fn baseboard_and_chassis_serials() {
    let d = parse(
        server()
            .baseboard("Dell Inc.", "0JMK61", "CNFCP0012300AB")
            .chassis("Dell Inc.", "7XK3QZ2")
            // Only the first of each counts.
            .baseboard("Other", "X", "SECOND-BOARD")
            .chassis("Other", "SECOND-CHASSIS"),
    );
    assert_eq!(d.baseboard_serial.as_deref(), Some("CNFCP0012300AB"));
    assert_eq!(d.chassis_serial.as_deref(), Some("7XK3QZ2"));
    assert_eq!(d.skipped_structures, 0);
    // Everything else is still read.
    assert_eq!(d.serial.as_deref(), Some("7XK3QZ2"));
    assert_eq!(d.dimms.len(), 16);

    let none = parse(server());
    assert_eq!((none.baseboard_serial, none.chassis_serial), (None, None));

    let placeholders = parse(
        SmbiosBuilder::new()
            .baseboard(
                "Default string",
                "Default string",
                "Base Board Serial Number",
            )
            .chassis("Default string", "Chassis Serial Number"),
    );
    assert_eq!(placeholders.baseboard_serial, None);
    assert_eq!(placeholders.chassis_serial, None);
}

#[test]
fn short_and_hostile_baseboard_and_chassis_structures_do_not_panic() {
    // A type 2 of the SMBIOS 2.0 length (8: up to the serial), a type 3
    // claiming 255 contained elements of 255 bytes it does not have, and a
    // type 3 shorter than its minimum.
    let mut board = Area::new(0x08);
    board.byte(0x04, 1).byte(0x07, 2);
    let mut chassis = Area::new(0x16);
    chassis.byte(0x07, 1).byte(0x13, 255).byte(0x14, 255);
    let d = parse(
        SmbiosBuilder::new()
            .raw_structure(2, &board.into_vec(), &[b"Acme", b"BOARD-8"])
            .raw_structure(3, &chassis.into_vec(), &[b"CH-HOSTILE"])
            .raw_structure(3, &[0x01], &[b"x"]),
    );
    assert_eq!(d.baseboard_serial.as_deref(), Some("BOARD-8"));
    assert_eq!(d.chassis_serial.as_deref(), Some("CH-HOSTILE"));
}
