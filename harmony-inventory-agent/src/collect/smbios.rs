//! SMBIOS (DMI) table parsing: system identity, processor sockets and DIMMs.
//!
//! The table is decoded with the `dmidecode` crate, but never handed to it
//! raw: that crate slices and reads past its buffers when a table is shorter
//! than the entry point says, when a structure's length byte is below 4, or
//! when a structure is shorter than the layout of the declared SMBIOS version.
//! [`parse`] therefore first walks the table itself (DMTF DSP0134 §6.1.2-6.1.3)
//! and rebuilds a well-formed copy holding only the structures used here
//! (types 1, 2, 3, 4, 17 and the end marker), zero-padded to the longest
//! layout the crate reads (zero means "absent" for every field used; type 3
//! is cut to its SMBIOS 2.0 part, the serial's, so the crate never walks its
//! contained-element records), with non-UTF-8
//! strings replaced lossily (the crate would otherwise reject the whole
//! structure). Structures that cannot be walked or decoded are counted in
//! [`SmbiosData::skipped_structures`], never fatal.

use std::io;

use dmidecode::processor::ProcessorStatus;
use dmidecode::{EntryPoint, Structure, memory_device};

use super::SysRoot;
use super::fs::clean_value;
use crate::model::Dimm;

/// Where the kernel exposes the SMBIOS entry point.
pub const ENTRY_POINT_PATH: &str = "/sys/firmware/dmi/tables/smbios_entry_point";
/// Where the kernel exposes the SMBIOS structure table.
pub const TABLE_PATH: &str = "/sys/firmware/dmi/tables/DMI";

/// Largest entry point read (a real one is 31 or 24 bytes).
const MAX_ENTRY_POINT_BYTES: u64 = 4 * 1024;
/// Largest structure table read (real ones are a few KiB to a few hundred KiB).
const MAX_TABLE_BYTES: u64 = 16 * 1024 * 1024;
/// Most DIMMs reported; bounds the document on a hostile table.
const MAX_DIMMS: usize = 1024;

const TYPE_SYSTEM: u8 = 1;
const TYPE_BASEBOARD: u8 = 2;
const TYPE_CHASSIS: u8 = 3;
const TYPE_PROCESSOR: u8 = 4;
const TYPE_MEMORY_DEVICE: u8 = 17;
const TYPE_END: u8 = 127;

/// Minimum formatted length (header included) the rebuilt copy gives each
/// kept type: the longest layout `dmidecode` 1.0 reads without bounds checks
/// (type 1: SMBIOS 2.4, 0x1B; type 2: up to Board Type, 0x0E; type 4: SMBIOS
/// 3.0, 0x30) or requires (type 3: SMBIOS 2.0, 0x09, see [`kept_len`]; type
/// 17: extended size, 0x20).
fn padded_len(kind: u8) -> usize {
    match kind {
        TYPE_SYSTEM => 0x1B,
        TYPE_BASEBOARD => 0x0E,
        TYPE_CHASSIS => CHASSIS_LEN,
        TYPE_PROCESSOR => 0x30,
        TYPE_MEMORY_DEVICE => 0x20,
        _ => 4,
    }
}

/// The part of a type 3 structure kept: up to the Asset Tag (SMBIOS 2.0).
const CHASSIS_LEN: usize = 0x09;

/// Formatted length kept of a structure of `len`: type 3 is cut to
/// [`CHASSIS_LEN`] (the crate walks its variable-length contained elements);
/// every other type is kept whole.
fn kept_len(kind: u8, len: usize) -> usize {
    match kind {
        TYPE_CHASSIS => len.min(CHASSIS_LEN),
        _ => len,
    }
}

pub use crate::model::{BOGUS_VALUES, is_bogus};

/// An SMBIOS string as reported: cleaned with [`clean_value`], placeholders `None`.
pub fn smbios_string(raw: &str) -> Option<String> {
    clean_value(raw.as_bytes()).filter(|v| !is_bogus(v))
}

/// What the collectors use from the SMBIOS table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SmbiosData {
    /// Type 1 (System Information); bogus placeholder values already `None`.
    pub vendor: Option<String>,
    pub product: Option<String>,
    pub serial: Option<String>,
    /// Lower-case hyphenated, per SMBIOS 2.6+ byte order; all-0/all-F is `None`.
    pub uuid: Option<String>,
    pub family: Option<String>,
    /// Type 2 (Baseboard) serial of the first baseboard.
    pub baseboard_serial: Option<String>,
    /// Type 3 (System Enclosure) serial of the first enclosure.
    pub chassis_serial: Option<String>,
    /// Type 4 structures whose socket is populated.
    pub populated_sockets: Option<u32>,
    /// Type 17 structures with a module installed.
    pub dimms: Vec<Dimm>,
    /// SMBIOS version from the entry point, e.g. `3.3`.
    pub version: Option<String>,
    /// Structures that were malformed (unwalkable, undecodable) and ignored.
    pub skipped_structures: u32,
}

impl SmbiosData {
    /// Sum of the known DIMM sizes; `None` without any DIMM of known size.
    pub fn dimm_total_bytes(&self) -> Option<u64> {
        self.dimms
            .iter()
            .filter_map(|d| d.size_bytes)
            .fold(None, |acc, s| Some(acc.unwrap_or(0u64).saturating_add(s)))
    }
}

/// Why the SMBIOS table could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SmbiosError {
    #[error("no SMBIOS table at {path} (firmware without SMBIOS, or not exposed)")]
    Missing { path: String },
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid SMBIOS entry point: {0}")]
    EntryPoint(String),
}

/// Reads `/sys/firmware/dmi/tables/{smbios_entry_point,DMI}` under `root`.
pub fn read(root: &SysRoot) -> Result<SmbiosData, SmbiosError> {
    let entry_point = read_file(root, ENTRY_POINT_PATH, MAX_ENTRY_POINT_BYTES)?;
    let table = read_file(root, TABLE_PATH, MAX_TABLE_BYTES)?;
    parse(&entry_point, &table)
}

fn read_file(root: &SysRoot, rel: &str, limit: u64) -> Result<Vec<u8>, SmbiosError> {
    root.read_bytes(rel, limit).map_err(|source| {
        let path = root.path(rel).display().to_string();
        match source.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => SmbiosError::Missing { path },
            _ => SmbiosError::Io { path, source },
        }
    })
}

/// Parses an entry point and the structure table it describes.
///
/// Fails only when the entry point is unusable (no `_SM_`/`_SM3_` anchor, bad
/// length, bad checksum, version below 2); a damaged table yields whatever
/// structures could be read.
pub fn parse(entry_point: &[u8], table: &[u8]) -> Result<SmbiosData, SmbiosError> {
    let ep = EntryPoint::search(entry_point).map_err(|e| SmbiosError::EntryPoint(e.to_string()))?;

    let declared = usize::try_from(ep.smbios_len()).unwrap_or(usize::MAX);
    let table = table.get(..declared).unwrap_or(table);
    let max_len = match ep {
        EntryPoint::V2(_) => usize::from(u16::MAX),
        EntryPoint::V3(_) => usize::try_from(u32::MAX).unwrap_or(usize::MAX),
    };
    let clean = sanitize(table, max_len);
    // The rebuilt copy fits `max_len`, so these conversions cannot fail.
    let ep = match ep {
        EntryPoint::V2(mut p) => {
            p.smbios_len = u16::try_from(clean.bytes.len()).unwrap_or(u16::MAX);
            EntryPoint::V2(p)
        }
        EntryPoint::V3(mut p) => {
            p.smbios_len_max = u32::try_from(clean.bytes.len()).unwrap_or(u32::MAX);
            EntryPoint::V3(p)
        }
    };

    let mut data = SmbiosData {
        version: Some(format!("{}.{}", ep.major(), ep.minor())),
        skipped_structures: clean.skipped,
        ..SmbiosData::default()
    };
    let mut system_seen = false;
    let mut baseboard_seen = false;
    let mut chassis_seen = false;
    let mut sockets: Option<u32> = None;

    for structure in ep.structures(&clean.bytes) {
        match structure {
            Ok(Structure::System(s)) if !system_seen => {
                system_seen = true;
                data.vendor = smbios_string(s.manufacturer);
                data.product = smbios_string(s.product);
                data.serial = smbios_string(s.serial);
                data.family = s.family.and_then(smbios_string);
                data.uuid = s.uuid.and_then(|u| format_uuid(u.as_bytes()));
            }
            Ok(Structure::BaseBoard(b)) if !baseboard_seen => {
                baseboard_seen = true;
                data.baseboard_serial = smbios_string(b.serial);
            }
            Ok(Structure::Enclosure(e)) if !chassis_seen => {
                chassis_seen = true;
                data.chassis_serial = smbios_string(e.serial_number);
            }
            Ok(Structure::Processor(p)) => {
                let populated = p.status.contains(ProcessorStatus::CPU_SOCKET_POPULATED);
                let count = sockets.get_or_insert(0);
                if populated {
                    *count = count.saturating_add(1);
                }
            }
            Ok(Structure::MemoryDevice(m)) => {
                if let Some(dimm) = dimm_from(&m) {
                    if data.dimms.len() < MAX_DIMMS {
                        data.dimms.push(dimm);
                    } else {
                        data.skipped_structures = data.skipped_structures.saturating_add(1);
                    }
                }
            }
            Ok(_) => {}
            Err(_) => data.skipped_structures = data.skipped_structures.saturating_add(1),
        }
    }
    data.populated_sockets = sockets;
    Ok(data)
}

/// A Type 17 structure as a [`Dimm`]; `None` for an empty slot.
fn dimm_from(m: &memory_device::MemoryDevice<'_>) -> Option<Dimm> {
    let size = match m.size {
        // dmidecode maps the 0xFFFF "unknown" size to None.
        None => DimmSize::Unknown,
        Some(raw) => decode_size(raw, m.extended_size),
    };
    let size_bytes = match size {
        DimmSize::Empty => return None,
        DimmSize::Unknown => None,
        DimmSize::Bytes(b) => Some(b),
    };
    let speed_mts = decode_speed(m.speed.unwrap_or(0), m.extended_speed);
    Some(Dimm {
        locator: smbios_string(m.device_locator),
        bank: smbios_string(m.bank_locator),
        size_bytes,
        memory_type: memory_type_name(m.memory_type)
            .filter(|t| !is_bogus(t))
            .map(str::to_string),
        speed_mts,
        manufacturer: smbios_string(m.manufacturer),
        serial: smbios_string(m.serial),
        part_number: smbios_string(m.part_number),
    })
}

/// A decoded Type 17 Size field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DimmSize {
    /// 0: no module installed in the socket.
    Empty,
    /// 0xFFFF, or an extended size of 0: installed, size unknown.
    Unknown,
    Bytes(u64),
}

/// Decodes the Type 17 Size (offset 0x0C) and Extended Size (0x1C) fields
/// per DSP0134 §7.18: 0 empty, 0xFFFF unknown, 0x7FFF "see Extended Size"
/// (bits 30:0, MiB), otherwise bits 14:0 in KiB when bit 15 is set, else MiB.
pub fn decode_size(size: u16, extended_size: u32) -> DimmSize {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;
    match size {
        0 => DimmSize::Empty,
        0xFFFF => DimmSize::Unknown,
        0x7FFF => match u64::from(extended_size & 0x7FFF_FFFF) {
            0 => DimmSize::Unknown,
            mb => DimmSize::Bytes(mb * MIB),
        },
        s if s & 0x8000 != 0 => match u64::from(s & 0x7FFF) {
            0 => DimmSize::Unknown,
            kb => DimmSize::Bytes(kb * KIB),
        },
        s => DimmSize::Bytes(u64::from(s) * MIB),
    }
}

/// Decodes the Type 17 Speed (0x15) and Extended Speed (0x54) fields, in MT/s:
/// 0 unknown, 0xFFFF "see Extended Speed" (bits 30:0).
pub fn decode_speed(speed: u16, extended_speed: Option<u32>) -> Option<u32> {
    match speed {
        0 => None,
        0xFFFF => extended_speed.map(|e| e & 0x7FFF_FFFF).filter(|&e| e != 0),
        s => Some(u32::from(s)),
    }
}

/// The DSP0134 §7.18.2 name of a memory type. Note `Unknown` is a name here;
/// [`parse`] reports it (like every placeholder) as `None`.
pub fn memory_type_name(t: memory_device::Type) -> Option<&'static str> {
    use memory_device::Type;
    Some(match t {
        Type::Other => "Other",
        Type::Unknown => "Unknown",
        Type::Dram => "DRAM",
        Type::Edram => "EDRAM",
        Type::Vram => "VRAM",
        Type::Sram => "SRAM",
        Type::Ram => "RAM",
        Type::Rom => "ROM",
        Type::Flash => "Flash",
        Type::Eeprom => "EEPROM",
        Type::Feprom => "FEPROM",
        Type::Eprom => "EPROM",
        Type::Cdram => "CDRAM",
        Type::ThreeDram => "3DRAM",
        Type::Sdram => "SDRAM",
        Type::Sgram => "SGRAM",
        Type::Rdram => "RDRAM",
        Type::Ddr => "DDR",
        Type::Ddr2 => "DDR2",
        Type::Ddr2FbDimm => "DDR2 FB-DIMM",
        Type::Ddr3 => "DDR3",
        Type::Fbd2 => "FBD2",
        Type::Ddr4 => "DDR4",
        Type::Ddr5 => "DDR5",
        Type::LpDdr => "LPDDR",
        Type::LpDdr2 => "LPDDR2",
        Type::LpDdr3 => "LPDDR3",
        Type::LpDdr4 => "LPDDR4",
        Type::LpDdr5 => "LPDDR5",
        Type::LogicalNonVolatileDevice => "Logical non-volatile device",
        Type::Hbm => "HBM",
        Type::Hbm2 => "HBM2",
        // Not yet known to dmidecode 1.0.
        Type::Undefined(0x24) => "HBM3",
        Type::Reserved | Type::Undefined(_) => return None,
    })
}

/// Formats UUID bytes (already in RFC 4122 network order) as lower-case
/// `8-4-4-4-12`; all-0x00 and all-0xFF (DSP0134: "not present" / "not set")
/// are `None`.
pub fn format_uuid(bytes: &[u8; 16]) -> Option<String> {
    if bytes.iter().all(|&b| b == 0) || bytes.iter().all(|&b| b == 0xFF) {
        return None;
    }
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push_str(&format!("{b:02x}"));
    }
    Some(out)
}

/// A well-formed copy of a structure table.
#[derive(Debug)]
struct Sanitized {
    bytes: Vec<u8>,
    /// Structures (or trailing garbage) that could not be walked.
    skipped: u32,
}

/// Walks `table` per DSP0134 §6.1.2-6.1.3 and rebuilds the structures this
/// module uses (types 1, 2, 3, 4, 17), each cut to [`kept_len`] and
/// zero-padded to [`padded_len`], with
/// lossy UTF-8 strings, then an end-of-table structure. Stops at the end
/// marker, at the first structure that cannot be walked (bad length, runs
/// off the table, unterminated strings), or before the copy exceeds `max_len`.
fn sanitize(table: &[u8], max_len: usize) -> Sanitized {
    let mut out = Vec::with_capacity(table.len().min(1 << 20));
    let mut skipped = 0u32;
    let mut end_handle = 0xFFFFu16;
    let mut pos = 0usize;
    // Room kept for the end-of-table structure appended at the end.
    let budget = max_len.saturating_sub(6);

    while pos < table.len() {
        let rest = table.get(pos..).unwrap_or_default();
        let Some(&[kind, len, h0, h1]) = rest.get(..4) else {
            if rest.iter().any(|&b| b != 0) {
                skipped = skipped.saturating_add(1);
            }
            break;
        };
        let len = usize::from(len);
        let handle = u16::from_le_bytes([h0, h1]);
        let formatted = if len >= 4 { rest.get(4..len) } else { None };
        let Some(formatted) = formatted else {
            // Zero padding after the last structure is not an error.
            if rest.iter().any(|&b| b != 0) {
                skipped = skipped.saturating_add(1);
            }
            break;
        };
        let strings_area = rest.get(len..).unwrap_or_default();
        let Some(term) = strings_area.windows(2).position(|w| w == [0, 0]) else {
            skipped = skipped.saturating_add(1);
            break;
        };
        pos = pos
            .saturating_add(len)
            .saturating_add(term)
            .saturating_add(2);

        if kind == TYPE_END {
            end_handle = handle;
            break;
        }
        if !matches!(
            kind,
            TYPE_SYSTEM | TYPE_BASEBOARD | TYPE_CHASSIS | TYPE_PROCESSOR | TYPE_MEMORY_DEVICE
        ) {
            continue;
        }

        let kept = kept_len(kind, len);
        let formatted = formatted.get(..kept.saturating_sub(4)).unwrap_or(formatted);
        let mut rebuilt = Vec::with_capacity(padded_len(kind) + term + 2);
        let new_len = kept.max(padded_len(kind));
        rebuilt.push(kind);
        // `new_len` is at most 255 (`len` is a byte, padded lengths are small).
        rebuilt.push(u8::try_from(new_len).unwrap_or(u8::MAX));
        rebuilt.extend_from_slice(&handle.to_le_bytes());
        rebuilt.extend_from_slice(formatted);
        rebuilt.resize(new_len, 0);
        let strings = strings_area.get(..term).unwrap_or_default();
        if strings.is_empty() {
            // No strings: the formatted area is followed by two NULs.
            rebuilt.push(0);
        } else {
            for s in strings.split(|&b| b == 0) {
                rebuilt.extend_from_slice(String::from_utf8_lossy(s).as_bytes());
                rebuilt.push(0);
            }
        }
        rebuilt.push(0);

        if out.len().saturating_add(rebuilt.len()) > budget {
            skipped = skipped.saturating_add(1);
            break;
        }
        out.extend_from_slice(&rebuilt);
    }

    out.extend_from_slice(&[TYPE_END, 4]);
    out.extend_from_slice(&end_handle.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    Sanitized {
        bytes: out,
        skipped,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn bogus_values_are_case_insensitive_and_trimmed() {
        assert!(is_bogus("To Be Filled By O.E.M."));
        assert!(is_bogus("  to be filled by o.e.m.  "));
        assert!(is_bogus("DEFAULT STRING"));
        assert!(is_bogus("n/a"));
        assert!(is_bogus("0"));
        assert!(is_bogus(""));
        assert!(is_bogus("   "));
        assert!(!is_bogus("Dell Inc."));
        assert!(!is_bogus("00000001"));
        assert!(!is_bogus("0123456789A"));
        assert_eq!(smbios_string("  Samsung  "), Some("Samsung".into()));
        assert_eq!(smbios_string("Not Specified"), None);
        assert_eq!(
            smbios_string("M393A4K40DB3-CWE    "),
            Some("M393A4K40DB3-CWE".into())
        );
    }

    #[test]
    fn size_decoding_follows_dsp0134() {
        const MIB: u64 = 1024 * 1024;
        assert_eq!(decode_size(0, 0), DimmSize::Empty);
        assert_eq!(decode_size(0xFFFF, 0), DimmSize::Unknown);
        assert_eq!(decode_size(16384, 0), DimmSize::Bytes(16384 * MIB));
        assert_eq!(decode_size(0x7FFE, 0), DimmSize::Bytes(0x7FFE * MIB));
        assert_eq!(decode_size(0x7FFF, 65536), DimmSize::Bytes(65536 * MIB));
        assert_eq!(
            decode_size(0x7FFF, 0x8000_0000 | 65536),
            DimmSize::Bytes(65536 * MIB)
        );
        assert_eq!(decode_size(0x7FFF, 0), DimmSize::Unknown);
        assert_eq!(decode_size(0x8000 | 512, 0), DimmSize::Bytes(512 * 1024));
        assert_eq!(decode_size(0x8000, 0), DimmSize::Unknown);
    }

    #[test]
    fn speed_decoding_follows_dsp0134() {
        assert_eq!(decode_speed(0, Some(8000)), None);
        assert_eq!(decode_speed(3200, Some(9999)), Some(3200));
        assert_eq!(decode_speed(0xFFFF, Some(70_000)), Some(70_000));
        assert_eq!(decode_speed(0xFFFF, Some(0)), None);
        assert_eq!(decode_speed(0xFFFF, None), None);
    }

    #[test]
    fn memory_type_names() {
        use memory_device::Type;
        assert_eq!(memory_type_name(Type::from(0x1A)), Some("DDR4"));
        assert_eq!(memory_type_name(Type::from(0x22)), Some("DDR5"));
        assert_eq!(memory_type_name(Type::from(0x18)), Some("DDR3"));
        assert_eq!(memory_type_name(Type::from(0x1E)), Some("LPDDR4"));
        assert_eq!(memory_type_name(Type::from(0x23)), Some("LPDDR5"));
        assert_eq!(memory_type_name(Type::from(0x03)), Some("DRAM"));
        assert_eq!(memory_type_name(Type::from(0x01)), Some("Other"));
        assert_eq!(memory_type_name(Type::from(0x02)), Some("Unknown"));
        assert_eq!(memory_type_name(Type::from(0x24)), Some("HBM3"));
        assert_eq!(memory_type_name(Type::from(0x16)), None);
        assert_eq!(memory_type_name(Type::from(0x00)), None);
        assert_eq!(memory_type_name(Type::from(0xF0)), None);
    }

    #[test]
    fn uuid_formatting() {
        let b: [u8; 16] = core::array::from_fn(|i| (i as u8) * 0x11);
        assert_eq!(
            format_uuid(&b).as_deref(),
            Some("00112233-4455-6677-8899-aabbccddeeff")
        );
        assert_eq!(format_uuid(&[0; 16]), None);
        assert_eq!(format_uuid(&[0xFF; 16]), None);
    }

    #[test]
    fn sanitize_survives_hostile_headers() {
        // Length byte below 4, then a structure running off the end.
        for table in [
            &[1u8, 0, 0, 0, 0, 0][..],
            &[1, 3, 0, 0, 0, 0],
            &[17, 0xFF, 0, 0, 1, 2, 3],
            &[4, 0x30, 0, 0],
            &[1, 4, 0, 0, b'a', 0],
            &[0, 0, 0],
            &[],
        ] {
            let s = sanitize(table, usize::MAX);
            assert_eq!(&s.bytes[s.bytes.len() - 6..], &[127, 4, 0xFF, 0xFF, 0, 0]);
        }
        assert_eq!(sanitize(&[0, 0, 0, 0, 0, 0], usize::MAX).skipped, 0);
        assert_eq!(sanitize(&[1, 3, 0, 0, 0, 0], usize::MAX).skipped, 1);
    }

    #[test]
    fn sanitize_pads_and_keeps_strings() {
        // A short (SMBIOS 2.0-style, 8-byte) type 1 with two strings.
        let table = [1u8, 8, 0x34, 0x12, 1, 2, 0, 0, b'A', 0, b'B', b'\xff', 0, 0];
        let s = sanitize(&table, usize::MAX);
        let mut expected = vec![1u8, 0x1B, 0x34, 0x12, 1, 2, 0, 0];
        expected.resize(0x1B, 0);
        expected.extend_from_slice(b"A\0B\xef\xbf\xbd\0\0");
        expected.extend_from_slice(&[127, 4, 0xFF, 0xFF, 0, 0]);
        assert_eq!(s.bytes, expected);
        assert_eq!(s.skipped, 0);

        // No strings, then an unused type (dropped), then the end marker
        // (kept with its handle), then bytes after it (ignored).
        let table = [
            4u8, 0x30, 1, 0, 0, 0, 0xDE, 4, 2, 0, 0, 0, 127, 4, 3, 0, 0, 0, 0xAA,
        ];
        let mut table = table.to_vec();
        table.splice(4..4, vec![0u8; 0x30 - 4]);
        let s = sanitize(&table, usize::MAX);
        let mut expected = vec![4u8, 0x30, 1, 0];
        expected.resize(0x30, 0);
        expected.extend_from_slice(&[0, 0, 127, 4, 3, 0, 0, 0]);
        assert_eq!(s.bytes, expected);
        assert_eq!(s.skipped, 0);
    }

    #[test]
    fn sanitize_respects_max_len() {
        let one = [17u8, 4, 0, 0, 0, 0];
        let table: Vec<u8> = one.iter().copied().cycle().take(6 * 100).collect();
        let s = sanitize(&table, 0x20 + 2 + 6 + 10);
        // Each type 17 grows to 0x20 + 2 bytes; only one fits with the end marker.
        assert_eq!(s.bytes.len(), 0x20 + 2 + 6);
        assert_eq!(s.skipped, 1);
    }
}
