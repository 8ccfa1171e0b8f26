//! Memory: what the kernel can use (`/proc/meminfo`), what is installed
//! (SMBIOS type 17 DIMMs) and the physical memory online (memory blocks in
//! `/sys/devices/system/memory`, as `lsmem` counts them), which needs no SMBIOS.

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
    let physical_bytes = online_block_bytes(root);
    if physical_bytes.is_none() {
        warnings.push(
            MEMORY_BLOCKS,
            "no memory block sizes: physical memory unknown",
        );
    }
    Memory {
        total_bytes,
        smbios_total_bytes,
        physical_bytes,
        dimms,
    }
}

/// Where the kernel lists memory blocks (Documentation/admin-guide/mm/memory-hotplug.rst).
const MEMORY_BLOCKS: &str = "/sys/devices/system/memory";
/// Most memory blocks examined (64 TiB in 128 MiB blocks is 524 288).
const MAX_MEMORY_BLOCKS: usize = 1 << 22;

/// Online memory blocks times `block_size_bytes` (hexadecimal, no `0x`).
/// A block is online when its `online` attribute is 1 (or, without it, its
/// `state` is `online`). `None` without a block size or any online block.
fn online_block_bytes(root: &SysRoot) -> Option<u64> {
    let block_size = root
        .attr(format!("{MEMORY_BLOCKS}/block_size_bytes"))
        .and_then(|h| u64::from_str_radix(h.trim_start_matches("0x"), 16).ok())
        .filter(|&b| b > 0)?;
    let online = root
        .dir_names(MEMORY_BLOCKS)
        .ok()?
        .into_iter()
        .take(MAX_MEMORY_BLOCKS)
        .filter(|n| {
            n.strip_prefix("memory")
                .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter(|n| match root.attr(format!("{MEMORY_BLOCKS}/{n}/online")) {
            Some(v) => v == "1",
            None => root.attr(format!("{MEMORY_BLOCKS}/{n}/state")).as_deref() == Some("online"),
        })
        .count();
    let online = u64::try_from(online).ok().filter(|&n| n > 0)?;
    online.checked_mul(block_size)
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
