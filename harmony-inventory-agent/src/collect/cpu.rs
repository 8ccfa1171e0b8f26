//! CPU: model, vendor, topology (sockets, physical cores, threads), frequency,
//! every flag and the machine architecture.
//!
//! Topology comes from `/sys/devices/system/cpu/cpuN/topology` over the CPUs
//! listed in `/sys/devices/system/cpu/online`; `/proc/cpuinfo` gives model,
//! vendor, flags and is the fallback for topology; `/proc/sys/kernel/arch`
//! gives the architecture (`uname -m`).

use std::collections::BTreeSet;

use super::{SysRoot, Warnings, smbios::SmbiosData};
use crate::model::Cpu;

/// Most flags reported (x86 lists about 150; bounds a hostile cpuinfo).
const MAX_FLAGS: usize = 1024;
/// Longest flag kept (real ones are under 32 characters).
const MAX_FLAG_CHARS: usize = 64;

/// Upper bound on CPU numbers accepted from a range list (Linux's NR_CPUS max is 8192).
const MAX_CPUS: u32 = 16_384;

pub fn collect(root: &SysRoot, smbios: Option<&SmbiosData>, warnings: &mut Warnings) -> Cpu {
    let info = match root.read_text("/proc/cpuinfo") {
        Ok(text) => CpuInfo::parse(&text),
        Err(e) => {
            warnings.push("/proc/cpuinfo", e);
            CpuInfo::default()
        }
    };
    let topo = sysfs_topology(root, warnings).or_else(|| info.topology());
    let (sockets, cores, threads) = match topo {
        Some(t) => (Some(t.sockets), Some(t.cores), Some(t.threads)),
        None => {
            warnings.push(
                "cpu topology",
                "neither sysfs topology nor /proc/cpuinfo ids found",
            );
            (
                smbios.and_then(|s| s.populated_sockets),
                None,
                info.processors,
            )
        }
    };
    let max_khz = root.attr_u64("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq");
    let mhz = max_khz
        .filter(|&k| k > 0)
        .map(|k| k as f64 / 1000.0)
        .or(info.mhz);
    let flags = info
        .flags
        .into_iter()
        .filter(|f| f.len() <= MAX_FLAG_CHARS)
        .take(MAX_FLAGS)
        .collect();
    Cpu {
        model: info.model,
        vendor: info.vendor,
        sockets,
        cores,
        threads,
        mhz: mhz.map(|m| (m * 1000.0).round() / 1000.0),
        flags,
        architecture: architecture(root, warnings),
    }
}

/// `uname -m`: `/proc/sys/kernel/arch` (Linux 6.1+), else, on the live
/// system, the architecture this agent was built for.
fn architecture(root: &SysRoot, warnings: &mut Warnings) -> Option<String> {
    let arch = root
        .attr("/proc/sys/kernel/arch")
        .filter(|a| {
            a.len() <= 32
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
        })
        .or_else(|| root.is_live().then(|| std::env::consts::ARCH.to_string()));
    if arch.is_none() {
        warnings.push("/proc/sys/kernel/arch", "missing: architecture unknown");
    }
    arch
}

/// Counts derived from the topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Topology {
    sockets: u32,
    cores: u32,
    threads: u32,
}

fn sysfs_topology(root: &SysRoot, warnings: &mut Warnings) -> Option<Topology> {
    let online = root.attr("/sys/devices/system/cpu/online")?;
    let cpus = match parse_cpu_list(&online) {
        Some(c) if !c.is_empty() => c,
        _ => {
            warnings.push(
                "/sys/devices/system/cpu/online",
                format!("unparseable CPU list {online:?}"),
            );
            return None;
        }
    };
    let mut packages = BTreeSet::new();
    let mut cores = BTreeSet::new();
    for cpu in &cpus {
        let dir = format!("/sys/devices/system/cpu/cpu{cpu}/topology");
        // Offline or hot-removed CPUs have no topology directory.
        let package = root.attr_i64(format!("{dir}/physical_package_id"))?;
        let die = root.attr_i64(format!("{dir}/die_id")).unwrap_or(0);
        let core = root.attr_i64(format!("{dir}/core_id"))?;
        // Some ARM machines report -1 for the package: treat as one socket.
        let package = package.max(0);
        packages.insert(package);
        cores.insert((package, die, core));
    }
    Some(Topology {
        sockets: u32::try_from(packages.len()).ok()?,
        cores: u32::try_from(cores.len()).ok()?,
        threads: u32::try_from(cpus.len()).ok()?,
    })
}

/// Parses a kernel CPU list such as `0-3,8,10-11`. `None` if malformed or absurd.
fn parse_cpu_list(list: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?),
            None => {
                let n = part.trim().parse::<u32>().ok()?;
                (n, n)
            }
        };
        if lo > hi || hi >= MAX_CPUS {
            return None;
        }
        cpus.extend(lo..=hi);
        if cpus.len() > MAX_CPUS as usize {
            return None;
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Some(cpus)
}

/// What `/proc/cpuinfo` says.
#[derive(Debug, Default)]
struct CpuInfo {
    model: Option<String>,
    vendor: Option<String>,
    flags: BTreeSet<String>,
    mhz: Option<f64>,
    processors: Option<u32>,
    /// (physical id, core id) per processor, where given.
    ids: Vec<(Option<i64>, Option<i64>)>,
}

impl CpuInfo {
    fn parse(text: &str) -> Self {
        let mut info = CpuInfo::default();
        let mut processors = 0u32;
        for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
            let mut physical = None;
            let mut core = None;
            let mut is_processor = false;
            for line in block.lines() {
                let Some((key, value)) = line.split_once(':') else {
                    continue;
                };
                let (key, value) = (key.trim(), value.trim());
                match key {
                    "processor" => is_processor = true,
                    "model name" if info.model.is_none() => {
                        info.model = super::fs::clean_value(value.as_bytes())
                    }
                    "vendor_id" if info.vendor.is_none() => {
                        info.vendor = super::fs::clean_value(value.as_bytes())
                    }
                    "flags" | "Features" if info.flags.is_empty() => {
                        info.flags = value.split_whitespace().map(str::to_string).collect()
                    }
                    "cpu MHz" => {
                        if let Ok(m) = value.parse::<f64>()
                            && m.is_finite()
                            && m > 0.0
                        {
                            info.mhz = Some(info.mhz.map_or(m, |prev: f64| prev.max(m)));
                        }
                    }
                    "physical id" => physical = value.parse().ok(),
                    "core id" => core = value.parse().ok(),
                    _ => {}
                }
            }
            if is_processor {
                processors = processors.saturating_add(1);
                info.ids.push((physical, core));
            }
        }
        info.processors = (processors > 0).then_some(processors);
        info
    }

    /// Topology from `physical id`/`core id` (x86 only).
    fn topology(&self) -> Option<Topology> {
        let threads = self.processors?;
        let mut packages = BTreeSet::new();
        let mut cores = BTreeSet::new();
        for (p, c) in &self.ids {
            let (p, c) = ((*p)?, (*c)?);
            packages.insert(p);
            cores.insert((p, c));
        }
        Some(Topology {
            sockets: u32::try_from(packages.len()).ok()?,
            cores: u32::try_from(cores.len()).ok()?,
            threads,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(
            parse_cpu_list("0-3,8,10-11"),
            Some(vec![0, 1, 2, 3, 8, 10, 11])
        );
        assert_eq!(parse_cpu_list("0"), Some(vec![0]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("0-4294967295"), None);
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn cpuinfo_without_sysfs_gives_topology() {
        let text = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Xeon\nphysical id\t: 0\ncore id\t: 0\ncpu MHz\t: 1200.5\nflags\t: fpu vmx aes\n\n\
                    processor\t: 1\nphysical id\t: 0\ncore id\t: 0\ncpu MHz\t: 2400.25\n\n\
                    processor\t: 2\nphysical id\t: 1\ncore id\t: 0\n\n";
        let info = CpuInfo::parse(text);
        assert_eq!(info.model.as_deref(), Some("Xeon"));
        assert_eq!(info.mhz, Some(2400.25));
        assert_eq!(
            info.topology(),
            Some(Topology {
                sockets: 2,
                cores: 2,
                threads: 3
            })
        );
    }
}
