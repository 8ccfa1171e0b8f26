//! The agent's view of this machine agrees with the standard tools:
//! `nproc`, `lscpu`, `/proc/meminfo`, `lsblk -b -d` and `ip -j link`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::Command;

use harmony_inventory_agent::collect::Collector;
use serde_json::Value;

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(out.status.success(), "{cmd} {args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

fn lscpu() -> BTreeMap<String, String> {
    let v: Value = serde_json::from_str(&run("lscpu", &["-J"])).unwrap();
    v["lscpu"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"]
                    .as_str()
                    .unwrap()
                    .trim_end_matches(':')
                    .to_string(),
                e["data"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn cpu_matches_nproc_and_lscpu() {
    let inv = Collector::new("/").collect();
    let nproc: u32 = run("nproc", &["--all"]).trim().parse().unwrap();
    let l = lscpu();
    let sockets: u32 = l["Socket(s)"].parse().unwrap();
    let cores_per_socket: u32 = l["Core(s) per socket"].parse().unwrap();
    assert_eq!(inv.cpu.threads, Some(nproc));
    assert_eq!(inv.cpu.sockets, Some(sockets));
    assert_eq!(inv.cpu.cores, Some(sockets * cores_per_socket));
    assert_eq!(inv.cpu.model.as_deref(), Some(l["Model name"].as_str()));
    assert_eq!(inv.cpu.vendor.as_deref(), Some(l["Vendor ID"].as_str()));
}

#[test]
fn memory_matches_meminfo() {
    let inv = Collector::new("/").collect();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert_eq!(inv.memory.total_bytes, Some(kb * 1024));
}

#[test]
fn disks_match_lsblk() {
    let inv = Collector::new("/").collect();
    let v: Value =
        serde_json::from_str(&run("lsblk", &["-b", "-d", "-J", "-o", "NAME,SIZE,TYPE"])).unwrap();
    let excluded = ["loop", "ram", "zram", "dm-", "md", "nbd", "fd"];
    let expected: BTreeMap<String, u64> = v["blockdevices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["type"] == "disk")
        .map(|d| {
            (
                d["name"].as_str().unwrap().to_string(),
                d["size"].as_u64().unwrap(),
            )
        })
        .filter(|(n, s)| *s > 0 && !excluded.iter().any(|p| n.starts_with(p)))
        .collect();
    let got: BTreeMap<String, u64> = inv
        .storage
        .iter()
        .map(|d| (d.name.clone(), d.size_bytes.unwrap()))
        .collect();
    assert!(!expected.is_empty(), "this machine has no disk for lsblk?");
    assert_eq!(got, expected);
}

#[test]
fn nics_match_ip_link() {
    let inv = Collector::new("/").collect();
    let v: Value = serde_json::from_str(&run("ip", &["-j", "link"])).unwrap();
    let expected: BTreeMap<String, Option<String>> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["link_type"] != "loopback")
        .map(|l| {
            let mac = (l["link_type"] == "ether")
                .then(|| l["address"].as_str().map(str::to_lowercase))
                .flatten()
                .filter(|m| m != "00:00:00:00:00:00");
            (l["ifname"].as_str().unwrap().to_string(), mac)
        })
        .collect();
    let got: BTreeMap<String, Option<String>> = inv
        .network
        .iter()
        .map(|n| (n.name.clone(), n.mac.clone()))
        .collect();
    assert_eq!(got, expected);
    // Physical NICs come first.
    let first_virtual = inv
        .network
        .iter()
        .position(|n| n.is_virtual)
        .unwrap_or(inv.network.len());
    assert!(inv.network[first_virtual..].iter().all(|n| n.is_virtual));
}

#[test]
fn architecture_flags_and_hypervisor_match_lscpu() {
    let inv = Collector::new("/").collect();
    let l = lscpu();
    assert_eq!(
        inv.cpu.architecture.as_deref(),
        Some(l["Architecture"].as_str())
    );
    let mut flags: Vec<&str> = l["Flags"].split_whitespace().collect();
    flags.sort_unstable();
    assert_eq!(inv.cpu.flags, flags);
    // lscpu names the hypervisor from the CPUID leaf ("KVM", "VMware", ...).
    match l.get("Hypervisor vendor") {
        Some(vendor) => assert_eq!(
            inv.system.hypervisor.as_deref(),
            Some(vendor.to_lowercase().as_str())
        ),
        None => assert!(!inv.cpu.flags.iter().any(|f| f == "hypervisor")),
    }
}

#[test]
fn physical_memory_matches_lsmem() {
    let inv = Collector::new("/").collect();
    let summary = run("lsmem", &["-b", "--summary=only"]);
    let online: u64 = summary
        .lines()
        .find_map(|l| l.strip_prefix("Total online memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert_eq!(inv.memory.physical_bytes, Some(online));
}
