//! Memory: what the kernel can use (`/proc/meminfo`), what is installed
//! (SMBIOS type 17 DIMMs) and the physical memory online (memory blocks in
//! `/sys/devices/system/memory`, as `lsmem` counts them), which needs no SMBIOS.

use std::sync::{Mutex, PoisonError};

use super::{SysRoot, Warnings, smbios::SmbiosData};
use crate::model::Memory;

/// The last count of online memory blocks, kept between collections: a
/// count reads one attribute per block (hundreds of files), and it can only
/// change when a block goes on- or offline, which changes `MemTotal` too.
#[derive(Debug, Default)]
pub struct BlockCache(Mutex<Option<(BlockKey, Option<u64>)>>);

/// What must be unchanged for a cached count to hold: `MemTotal` and the
/// number of memory block directories.
type BlockKey = (Option<u64>, usize);

pub fn collect(
    root: &SysRoot,
    smbios: Option<&SmbiosData>,
    cache: &BlockCache,
    warnings: &mut Warnings,
) -> Memory {
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
    let physical_bytes = cached_online_block_bytes(root, total_bytes, cache);
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

/// [`online_block_bytes`], reused while `MemTotal` and the blocks listed
/// are unchanged.
fn cached_online_block_bytes(
    root: &SysRoot,
    total: Option<u64>,
    cache: &BlockCache,
) -> Option<u64> {
    let blocks = memory_block_names(root)?;
    let key = (total, blocks.len());
    let mut cached = cache.0.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((k, v)) = *cached
        && k == key
        && total.is_some()
    {
        return v;
    }
    let value = online_block_bytes(root, &blocks);
    *cached = Some((key, value));
    value
}

/// The `memoryN` entries of [`MEMORY_BLOCKS`].
fn memory_block_names(root: &SysRoot) -> Option<Vec<String>> {
    let names = root.dir_names(MEMORY_BLOCKS).ok()?;
    Some(
        names
            .into_iter()
            .take(MAX_MEMORY_BLOCKS)
            .filter(|n| {
                n.strip_prefix("memory")
                    .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
            })
            .collect(),
    )
}

/// Online memory blocks times `block_size_bytes` (hexadecimal, no `0x`).
/// A block is online when its `online` attribute is 1 (or, without it, its
/// `state` is `online`). `None` without a block size or any online block.
fn online_block_bytes(root: &SysRoot, blocks: &[String]) -> Option<u64> {
    let block_size = root
        .attr(format!("{MEMORY_BLOCKS}/block_size_bytes"))
        .and_then(|h| u64::from_str_radix(h.trim_start_matches("0x"), 16).ok())
        .filter(|&b| b > 0)?;
    let online = blocks
        .iter()
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
    fn block_count_is_cached_until_memtotal_or_the_blocks_change() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("sys/devices/system/memory");
        let write = |rel: &str, v: &str| {
            let p = m.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, v).unwrap();
        };
        write("block_size_bytes", "8000000\n");
        for i in 0..3 {
            write(&format!("memory{i}/online"), "1\n");
        }
        let root = SysRoot::new(dir.path());
        let cache = BlockCache::default();
        const BLOCK: u64 = 128 << 20;
        let total = Some(300 << 20);
        assert_eq!(
            cached_online_block_bytes(&root, total, &cache),
            Some(3 * BLOCK)
        );
        // Offlined: MemTotal drops, the count is redone.
        write("memory2/online", "0\n");
        let total = Some(200 << 20);
        assert_eq!(
            cached_online_block_bytes(&root, total, &cache),
            Some(2 * BLOCK)
        );
        // Hot-added: a new block directory, the count is redone.
        write("memory3/online", "1\n");
        assert_eq!(
            cached_online_block_bytes(&root, total, &cache),
            Some(3 * BLOCK)
        );
        // Unchanged key: the cached count (no re-read).
        write("memory0/online", "0\n");
        assert_eq!(
            cached_online_block_bytes(&root, total, &cache),
            Some(3 * BLOCK)
        );
        // Without MemTotal nothing is cached.
        assert_eq!(
            cached_online_block_bytes(&root, None, &cache),
            Some(2 * BLOCK)
        );
    }

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
