//! SMBIOS (DMI) table parsing: system identity, processor sockets and DIMMs.
//! STUB: to be implemented.

use super::SysRoot;
use crate::model::Dimm;

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
    /// Type 4 structures whose socket is populated.
    pub populated_sockets: Option<u32>,
    /// Type 17 structures with a module installed.
    pub dimms: Vec<Dimm>,
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
    let _ = root;
    Err(SmbiosError::Missing {
        path: "/sys/firmware/dmi/tables/DMI".into(),
    })
}

/// Parses an entry point and the structure table it describes.
pub fn parse(entry_point: &[u8], table: &[u8]) -> Result<SmbiosData, SmbiosError> {
    let _ = (entry_point, table);
    Err(SmbiosError::EntryPoint("not implemented".into()))
}

/// TEMPORARY until the SMBIOS module lands.
pub fn is_bogus(value: &str) -> bool {
    let v = value.trim().to_ascii_lowercase();
    [
        "to be filled by o.e.m.",
        "default string",
        "not specified",
        "0123456789",
        "none",
        "",
    ]
    .contains(&v.as_str())
}
