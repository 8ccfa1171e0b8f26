//! Memory: what the kernel can use (`/proc/meminfo`) and what is installed
//! (SMBIOS type 17 DIMMs).

use super::{SysRoot, Warnings, smbios::SmbiosData};
use crate::model::Memory;

pub fn collect(root: &SysRoot, smbios: Option<&SmbiosData>, warnings: &mut Warnings) -> Memory {
    let total_bytes = match root.read_text("/proc/meminfo") {
        Ok(text) => {
            let total = mem_total_bytes(&text);
            if total.is_none() {
                warnings.push("/proc/meminfo", "no parseable MemTotal line");
            }
            total
        }
        Err(e) => {
            warnings.push("/proc/meminfo", e);
            None
        }
    };
    let dimms = smbios.map(|s| s.dimms.clone()).unwrap_or_default();
    let smbios_total_bytes = smbios.and_then(SmbiosData::dimm_total_bytes);
    Memory {
        total_bytes,
        smbios_total_bytes,
        dimms,
    }
}

/// `MemTotal:  16329924 kB` in bytes.
fn mem_total_bytes(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut parts = line["MemTotal:".len()..].split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    let factor = match parts.next() {
        Some("kB") | Some("KB") => 1024,
        None => 1,
        Some(_) => return None,
    };
    value.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memtotal() {
        assert_eq!(
            mem_total_bytes("MemTotal:       16329924 kB\nMemFree: 1 kB\n"),
            Some(16_329_924 * 1024)
        );
        assert_eq!(mem_total_bytes("MemTotal: 99999999999999999999 kB"), None);
        assert_eq!(mem_total_bytes("MemTotal: 18446744073709551615 kB"), None);
        assert_eq!(mem_total_bytes("MemFree: 1 kB"), None);
    }
}
