//! Test support: builds SMBIOS entry points and structure tables byte by byte,
//! from DMTF DSP0134 (3.x): §5.2.1 (2.1 entry point), §5.2.2 (3.0 entry
//! point), §6.1 (structure header and string sets), §7.2 (Type 1), §7.5
//! (Type 4), §7.18 (Type 17), §7.46 (Type 127).
//!
//! Included by integration tests with `#[path = "support/smbios.rs"] mod ...;`.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;

/// Which entry point [`SmbiosBuilder::build`] produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryPointKind {
    /// 64-bit `_SM3_` entry point, 24 bytes (§5.2.2).
    V3,
    /// 32-bit `_SM_`/`_DMI_` entry point, 31 bytes (§5.2.1).
    V2,
}

/// One Type 17 Memory Device.
#[derive(Debug, Clone)]
pub struct DimmSpec {
    pub locator: &'static str,
    pub bank: &'static str,
    /// Size in MiB; 0 is an empty slot. Above 0x7FFE the Size field is 0x7FFF
    /// and the value goes to Extended Size.
    pub size_mb: u32,
    /// Encode the Size field with KiB granularity (bit 15 set); the size in
    /// KiB (`size_mb * 1024`) must then fit in 15 bits.
    pub size_in_kb: bool,
    /// Memory Type byte (§7.18.2), e.g. 0x1A DDR4, 0x22 DDR5.
    pub memory_type: u8,
    /// MT/s; 0 unknown. Above 0xFFFE the Speed field is 0xFFFF and the value
    /// goes to Extended Speed.
    pub speed_mts: u32,
    pub manufacturer: &'static str,
    pub serial: &'static str,
    pub part_number: &'static str,
}

impl Default for DimmSpec {
    fn default() -> Self {
        Self {
            locator: "DIMM_A1",
            bank: "P0_Node0_Channel0_Dimm0",
            size_mb: 32 * 1024,
            size_in_kb: false,
            memory_type: 0x1A,
            speed_mts: 3200,
            manufacturer: "Samsung",
            serial: "12345678",
            part_number: "M393A4K40DB3-CWE",
        }
    }
}

impl DimmSpec {
    /// An empty slot at `locator`, as firmware reports it.
    pub fn empty(locator: &'static str) -> Self {
        Self {
            locator,
            size_mb: 0,
            memory_type: 0x02,
            speed_mts: 0,
            manufacturer: "NO DIMM",
            serial: "NO DIMM",
            part_number: "NO DIMM",
            ..Self::default()
        }
    }
}

/// Collects strings for one structure's string set; index 0 means "none".
#[derive(Debug, Default)]
struct Strings(Vec<Vec<u8>>);

impl Strings {
    fn add(&mut self, s: impl AsRef<[u8]>) -> u8 {
        let s = s.as_ref();
        if s.is_empty() {
            return 0;
        }
        assert!(!s.contains(&0), "SMBIOS strings cannot contain NUL");
        self.0.push(s.to_vec());
        u8::try_from(self.0.len()).unwrap()
    }

    /// The string set: each string NUL-terminated, then one more NUL; two
    /// NULs when there are no strings (§6.1.3).
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.0.is_empty() {
            out.push(0);
        }
        for s in &self.0 {
            out.extend_from_slice(s);
            out.push(0);
        }
        out.push(0);
        out
    }
}

/// A structure's formatted area, addressed by the offsets DSP0134 uses
/// (which count the 4-byte header; the header itself is added by the builder).
#[derive(Debug, Clone)]
pub struct Area(Vec<u8>);

impl Area {
    /// A zeroed formatted area for a structure of `length` (the header's
    /// Length byte, at least 4).
    pub fn new(length: usize) -> Self {
        Self(vec![0; length - 4])
    }

    pub fn byte(&mut self, offset: usize, v: u8) -> &mut Self {
        self.0[offset - 4] = v;
        self
    }

    pub fn word(&mut self, offset: usize, v: u16) -> &mut Self {
        self.bytes(offset, &v.to_le_bytes())
    }

    pub fn dword(&mut self, offset: usize, v: u32) -> &mut Self {
        self.bytes(offset, &v.to_le_bytes())
    }

    pub fn bytes(&mut self, offset: usize, v: &[u8]) -> &mut Self {
        self.0[offset - 4..offset - 4 + v.len()].copy_from_slice(v);
        self
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

/// Builds an SMBIOS entry point and structure table.
#[derive(Debug, Clone)]
pub struct SmbiosBuilder {
    major: u8,
    minor: u8,
    kind: EntryPointKind,
    table: Vec<u8>,
    next_handle: u16,
    structure_count: u16,
    max_structure: u16,
    end_marker: bool,
}

impl Default for SmbiosBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl SmbiosBuilder {
    /// SMBIOS 3.3 with a `_SM3_` entry point.
    pub fn new() -> Self {
        Self {
            major: 3,
            minor: 3,
            kind: EntryPointKind::V3,
            table: Vec::new(),
            next_handle: 0,
            structure_count: 0,
            max_structure: 0,
            end_marker: true,
        }
    }

    /// SMBIOS `major.minor` with a 31-byte `_SM_` entry point.
    pub fn v2(major: u8, minor: u8) -> Self {
        Self {
            major,
            minor,
            kind: EntryPointKind::V2,
            ..Self::new()
        }
    }

    /// Overrides the version in the entry point.
    pub fn version(mut self, major: u8, minor: u8) -> Self {
        self.major = major;
        self.minor = minor;
        self
    }

    /// Leave out the Type 127 end-of-table structure.
    pub fn without_end_marker(mut self) -> Self {
        self.end_marker = false;
        self
    }

    /// Appends any structure: `formatted` is the formatted area after the
    /// 4-byte header (the length byte becomes `formatted.len() + 4`),
    /// `strings` its string set (empty: no strings).
    pub fn raw_structure(mut self, kind: u8, formatted: &[u8], strings: &[&[u8]]) -> Self {
        let mut set = Strings::default();
        for s in strings {
            set.add(s);
        }
        self.push(kind, formatted, &set);
        self
    }

    /// Appends raw bytes to the table, unchecked (for malformed tables).
    pub fn raw_bytes(mut self, bytes: &[u8]) -> Self {
        self.table.extend_from_slice(bytes);
        self
    }

    fn push(&mut self, kind: u8, formatted: &[u8], strings: &Strings) {
        let len = u8::try_from(formatted.len() + 4).unwrap();
        let handle = self.next_handle;
        self.next_handle += 1;
        let start = self.table.len();
        self.table.push(kind);
        self.table.push(len);
        self.table.extend_from_slice(&handle.to_le_bytes());
        self.table.extend_from_slice(formatted);
        self.table.extend_from_slice(&strings.encode());
        let size = u16::try_from(self.table.len() - start).unwrap();
        self.max_structure = self.max_structure.max(size);
        self.structure_count += 1;
    }

    /// Type 1 System Information, SMBIOS 2.4+ layout (length 0x1B). `uuid`
    /// is the 16 bytes exactly as stored at offset 08h.
    pub fn system(
        mut self,
        vendor: &str,
        product: &str,
        serial: &str,
        uuid: [u8; 16],
        family: &str,
    ) -> Self {
        let mut s = Strings::default();
        let mut f = Area::new(0x1B);
        f.byte(0x04, s.add(vendor));
        f.byte(0x05, s.add(product));
        f.byte(0x06, s.add("1.0")); // Version
        f.byte(0x07, s.add(serial));
        f.bytes(0x08, &uuid);
        f.byte(0x18, 0x06); // Wake-up Type: Power Switch
        f.byte(0x19, s.add("SKU-1")); // SKU Number
        f.byte(0x1A, s.add(family));
        self.push(1, &f.into_vec(), &s);
        self
    }

    /// Type 2 Baseboard Information (length 0x0F, no contained handles).
    pub fn baseboard(mut self, manufacturer: &str, product: &str, serial: &str) -> Self {
        let mut s = Strings::default();
        let mut f = Area::new(0x0F);
        f.byte(0x04, s.add(manufacturer));
        f.byte(0x05, s.add(product));
        f.byte(0x06, s.add("A01")); // Version
        f.byte(0x07, s.add(serial));
        f.byte(0x08, s.add("ASSET-1")); // Asset Tag
        f.byte(0x09, 0x01); // Feature Flags: hosting board
        f.byte(0x0A, s.add("Slot 1")); // Location in Chassis
        f.word(0x0B, 0x0300); // Chassis Handle
        f.byte(0x0D, 0x0A); // Board Type: motherboard
        self.push(2, &f.into_vec(), &s);
        self
    }

    /// Type 3 System Enclosure, SMBIOS 2.7 layout with no contained
    /// elements (length 0x16).
    pub fn chassis(mut self, manufacturer: &str, serial: &str) -> Self {
        let mut s = Strings::default();
        let mut f = Area::new(0x16);
        f.byte(0x04, s.add(manufacturer));
        f.byte(0x05, 0x17); // Type: rack mount chassis
        f.byte(0x06, s.add("1.0")); // Version
        f.byte(0x07, s.add(serial));
        f.byte(0x08, s.add("ASSET-2")); // Asset Tag
        f.byte(0x09, 0x03); // Boot-up State: safe
        f.byte(0x0A, 0x03); // Power Supply State
        f.byte(0x0B, 0x03); // Thermal State
        f.byte(0x0C, 0x03); // Security Status
        f.byte(0x11, 2); // Height (U)
        f.byte(0x12, 2); // Power cords
        f.byte(0x13, 0); // Contained Element Count
        f.byte(0x14, 3); // Contained Element Record Length
        f.byte(0x15, s.add("SKU-C")); // SKU Number
        self.push(3, &f.into_vec(), &s);
        self
    }

    /// Type 4 Processor Information, SMBIOS 3.0 layout (length 0x30).
    pub fn processor(
        mut self,
        socket_designation: &str,
        populated: bool,
        manufacturer: &str,
        version: &str,
        core_count: u8,
        thread_count: u8,
    ) -> Self {
        let mut s = Strings::default();
        let mut f = Area::new(0x30);
        f.byte(0x04, s.add(socket_designation));
        f.byte(0x05, 0x03); // Processor Type: Central Processor
        f.byte(0x06, if populated { 0xB3 } else { 0x02 }); // Family: Xeon / Unknown
        f.byte(0x07, s.add(manufacturer));
        if populated {
            // Processor ID: CPUID leaf 1 EAX, EDX.
            f.bytes(0x08, &[0x54, 0x06, 0x05, 0x00, 0xFF, 0xFB, 0xEB, 0xBF]);
        }
        f.byte(0x10, s.add(version));
        f.byte(0x11, 0x8B); // Voltage: 1.1 V
        f.word(0x12, 100); // External Clock
        f.word(0x14, 4000); // Max Speed
        f.word(0x16, if populated { 2600 } else { 0 }); // Current Speed
        // Status: bit 6 socket populated, bits 2:0 = 1 CPU enabled.
        f.byte(0x18, if populated { 0x41 } else { 0x00 });
        f.byte(0x19, 0x02); // Processor Upgrade: Unknown
        f.word(0x1A, 0xFFFF); // L1 Cache Handle: none
        f.word(0x1C, 0xFFFF);
        f.word(0x1E, 0xFFFF);
        f.byte(0x23, core_count);
        f.byte(0x24, core_count); // Core Enabled
        f.byte(0x25, thread_count);
        f.word(0x26, 0x00FC); // Characteristics: 64-bit, multi-core, HT, ...
        f.word(0x28, 0x00B3); // Processor Family 2
        f.word(0x2A, u16::from(core_count));
        f.word(0x2C, u16::from(core_count));
        f.word(0x2E, u16::from(thread_count));
        self.push(4, &f.into_vec(), &s);
        self
    }

    /// Type 17 Memory Device, SMBIOS 3.3 layout (length 0x5C).
    pub fn memory_device(mut self, d: DimmSpec) -> Self {
        let mut s = Strings::default();
        let mut f = Area::new(0x5C);
        let installed = d.size_mb != 0;
        f.word(0x04, 0x1000); // Physical Memory Array Handle
        f.word(0x06, 0xFFFE); // Memory Error Information Handle: none
        f.word(0x08, if installed { 72 } else { 0xFFFF }); // Total Width
        f.word(0x0A, if installed { 64 } else { 0xFFFF }); // Data Width
        let (size, extended) = if d.size_in_kb {
            let kb = d.size_mb * 1024;
            assert!(kb <= 0x7FFF, "KiB-granular size must fit 15 bits");
            (0x8000 | u16::try_from(kb).unwrap(), 0)
        } else if d.size_mb > 0x7FFE {
            (0x7FFF, d.size_mb)
        } else {
            (u16::try_from(d.size_mb).unwrap(), 0)
        };
        f.word(0x0C, size);
        f.byte(0x0E, 0x09); // Form Factor: DIMM
        f.byte(0x10, s.add(d.locator));
        f.byte(0x11, s.add(d.bank));
        f.byte(0x12, d.memory_type);
        f.word(0x13, if installed { 0x2080 } else { 0x0004 }); // Type Detail
        let (speed, ext_speed) = if d.speed_mts > 0xFFFE {
            (0xFFFF, d.speed_mts)
        } else {
            (u16::try_from(d.speed_mts).unwrap(), 0)
        };
        f.word(0x15, speed);
        f.byte(0x17, s.add(d.manufacturer));
        f.byte(0x18, s.add(d.serial));
        f.byte(0x19, s.add("Not Specified")); // Asset Tag
        f.byte(0x1A, s.add(d.part_number));
        f.byte(0x1B, if installed { 2 } else { 0 }); // Attributes: rank 2
        f.dword(0x1C, extended);
        f.word(0x20, speed); // Configured Memory Speed
        f.word(0x22, 1200); // Minimum Voltage (mV)
        f.word(0x24, 1200);
        f.word(0x26, 1200);
        f.byte(0x28, 0x03); // Memory Technology: DRAM
        f.word(0x29, 0x0008); // Operating Mode Capability: volatile
        f.dword(0x54, ext_speed);
        f.dword(0x58, ext_speed);
        self.push(17, &f.into_vec(), &s);
        self
    }

    /// The entry point and the table (with the end-of-table structure).
    pub fn build(mut self) -> (Vec<u8>, Vec<u8>) {
        if self.end_marker {
            self.push(127, &[], &Strings::default());
        }
        let table = self.table;
        let ep = match self.kind {
            EntryPointKind::V3 => {
                let mut ep = Vec::with_capacity(0x18);
                ep.extend_from_slice(b"_SM3_");
                ep.push(0); // Checksum, set below
                ep.push(0x18); // Entry Point Length
                ep.push(self.major);
                ep.push(self.minor);
                ep.push(0); // Docrev
                ep.push(0x01); // Entry Point Revision
                ep.push(0); // Reserved
                ep.extend_from_slice(&u32::try_from(table.len()).unwrap().to_le_bytes());
                ep.extend_from_slice(&0x000E_B000u64.to_le_bytes()); // Table Address
                ep[0x05] = checksum(&ep);
                ep
            }
            EntryPointKind::V2 => {
                let mut ep = Vec::with_capacity(0x1F);
                ep.extend_from_slice(b"_SM_");
                ep.push(0); // Checksum, set below
                ep.push(0x1F); // Entry Point Length
                ep.push(self.major);
                ep.push(self.minor);
                ep.extend_from_slice(&self.max_structure.to_le_bytes());
                ep.push(0); // Entry Point Revision
                ep.extend_from_slice(&[0; 5]); // Formatted Area
                ep.extend_from_slice(b"_DMI_");
                ep.push(0); // Intermediate Checksum, set below
                ep.extend_from_slice(&u16::try_from(table.len()).unwrap().to_le_bytes());
                ep.extend_from_slice(&0x000E_B000u32.to_le_bytes()); // Table Address
                ep.extend_from_slice(&self.structure_count.to_le_bytes());
                ep.push(((self.major & 0x0F) << 4) | (self.minor & 0x0F)); // BCD Revision
                ep[0x15] = checksum(&ep[0x10..0x1F]);
                ep[0x04] = checksum(&ep);
                ep
            }
        };
        (ep, table)
    }

    /// Writes `sys/firmware/dmi/tables/{smbios_entry_point,DMI}` under `root`.
    pub fn write_to(self, root: &Path) {
        let dir = root.join("sys/firmware/dmi/tables");
        fs::create_dir_all(&dir).unwrap();
        let (ep, table) = self.build();
        fs::write(dir.join("smbios_entry_point"), ep).unwrap();
        fs::write(dir.join("DMI"), table).unwrap();
    }
}

/// The byte that makes `bytes` sum to zero (mod 256), given the checksum
/// byte itself is currently zero.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |acc, b| acc.wrapping_add(*b))
        .wrapping_neg()
}
