//! Discovery of REAL agents (the static binary) on a bridged network built
//! from network namespaces. All traffic stays inside the namespaces; the
//! addresses (198.51.100.0/24, TEST-NET-2) exist only there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../harmony-inventory-agent/tests/support/netns.rs"]
mod netns;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use harmony::modules::discovery::{ProbeResult, Rejection, ScanConfig, ScanReport, Scanner};
use harmony_inventory_agent::model::DEFAULT_PORT;
use netns::NetNs;

const TEST: &str = "discovery_netns::real_agents_on_a_bridge";

/// The kernel's neighbour table is one for the whole machine, and each test
/// here fills part of it (a /24 of absent addresses is 254 entries): run
/// concurrently, one test's entries overflow the room another's scan
/// measured when it started. The tests of this binary take turns.
static NEIGHBOUR_TABLE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn neighbour_table_turn() -> std::sync::MutexGuard<'static, ()> {
    NEIGHBOUR_TABLE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 51, 100, last))
}

/// Kills and reaps a child we spawned.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Stops and joins the hostile server thread.
struct ThreadGuard(Arc<AtomicBool>, Option<std::thread::JoinHandle<()>>);

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        if let Some(t) = self.1.take() {
            let _ = t.join();
        }
    }
}

fn agent_binary() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/x86_64-unknown-linux-musl/agent/harmony-inventory-agent");
    assert!(
        p.exists(),
        "{} missing: run `cargo agent` first",
        p.display()
    );
    p
}

/// Connects `ns` to the switch's bridge through veth `v{k}`/`p{k}`, with
/// address 198.51.100.k/24.
fn plug(sw: &NetNs, ns: &NetNs, k: u8) {
    let (inner, outer) = (format!("v{k}"), format!("p{k}"));
    sw.add_veth(&inner, &outer).unwrap();
    sw.ip_ok(&["link", "set", "dev", &outer, "master", "br0"]);
    sw.move_link(&inner, ns).unwrap();
    ns.ip_ok(&["addr", "add", &format!("198.51.100.{k}/24"), "dev", &inner]);
    ns.ip_ok(&["link", "set", "dev", &inner, "up"]);
    ns.ip_ok(&["link", "set", "dev", "lo", "up"]);
}

fn link_mac(ns: &NetNs, dev: &str) -> String {
    let out = ns.ip_ok(&["-o", "link", "show", "dev", dev]);
    let at = out.find("link/ether ").unwrap() + "link/ether ".len();
    out[at..at + 17].to_string()
}

#[test]
fn real_agents_on_a_bridge() {
    let _turn = neighbour_table_turn();
    let Some(sw) = NetNs::new_or_skip("hdsw", TEST) else {
        return;
    };
    let agent = agent_binary();
    sw.add_bridge("br0").unwrap();
    let scan_ns = NetNs::new("hdsc").unwrap();
    plug(&sw, &scan_ns, 1);
    let agents: Vec<(NetNs, u8)> = [11u8, 12, 13]
        .into_iter()
        .map(|k| {
            let ns = NetNs::new("hdag").unwrap();
            plug(&sw, &ns, k);
            (ns, k)
        })
        .collect();
    let hostile = NetNs::new("hdbad").unwrap();
    plug(&sw, &hostile, 14);

    // Declared after the namespaces: dropped (killed) before them.
    let _children: Vec<ChildGuard> = agents
        .iter()
        .map(|(ns, _)| {
            ChildGuard(
                Command::new("ip")
                    .args(["netns", "exec", ns.name()])
                    .arg(&agent)
                    .args([
                        "--listen",
                        &format!("0.0.0.0:{DEFAULT_PORT}"),
                        "--lldp-window",
                        "0",
                    ])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();

    // The hostile peer: invalid JSON, from a thread inside its namespace.
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let hostile_path = hostile.path();
    let thread = {
        let stop = stop.clone();
        let hostile_name = hostile.name().to_string();
        std::thread::spawn(move || {
            let ns = NsRef(hostile_path, hostile_name);
            ns.enter();
            let l = std::net::TcpListener::bind(("0.0.0.0", DEFAULT_PORT)).unwrap();
            l.set_nonblocking(true).unwrap();
            ready_tx.send(()).unwrap();
            let deadline = Instant::now() + Duration::from_secs(120);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                match l.accept() {
                    Ok((mut c, _)) => {
                        c.set_nonblocking(false).unwrap();
                        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                        let mut buf = [0u8; 4096];
                        let _ = c.read(&mut buf);
                        let _ = c.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\nConnection: close\r\n\r\n{\"schema_version\":1,",
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        })
    };
    let _hostile_guard = ThreadGuard(stop, Some(thread));
    ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();

    // The scan, from a thread inside the scanner's namespace.
    let scan_path = scan_ns.path();
    let scan_name = scan_ns.name().to_string();
    let report = std::thread::spawn(move || {
        NsRef(scan_path, scan_name).enter();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let scanner = Scanner::new(ScanConfig::new(DEFAULT_PORT));
            // Wait (bounded) until every agent serves.
            for k in [11u8, 12, 13] {
                let deadline = Instant::now() + Duration::from_secs(20);
                loop {
                    let r = scanner.probe(ip(k)).await;
                    if matches!(r, ProbeResult::Found(_)) {
                        break;
                    }
                    assert!(Instant::now() < deadline, "agent {k} never answered: {r:?}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            scanner
                .scan("198.51.100.0/24".parse().unwrap())
                .await
                .unwrap()
        })
    })
    .join()
    .unwrap();

    let found: Vec<IpAddr> = report.found.iter().map(|h| h.ip).collect();
    assert_eq!(found, vec![ip(11), ip(12), ip(13)], "{report:#?}");
    for (h, (ns, k)) in report.found.iter().zip(&agents) {
        let dev = format!("v{k}");
        let mac = link_mac(ns, &dev);
        let nic = h
            .hardware
            .nics
            .iter()
            .find(|n| n.name.as_str() == dev)
            .unwrap_or_else(|| panic!("{dev} not in {:?}", h.hardware.nics));
        assert_eq!(nic.mac.map(|m| m.to_string()), Some(mac.clone()));
        assert!(
            nic.ipv4
                .iter()
                .any(|a| a.to_string() == format!("198.51.100.{k}/24")),
            "{:?}",
            nic.ipv4
        );
        assert!(h.macs.iter().any(|m| m.to_string() == mac), "{:?}", h.macs);
        assert_eq!(h.hardware.to_wire().schema_version, 1);
    }
    assert_eq!(report.rejected.len(), 1, "{:?}", report.rejected);
    assert_eq!(report.rejected[0].0, ip(14));
    assert!(
        matches!(report.rejected[0].1, Rejection::Json(_)),
        "{}",
        report.rejected[0].1
    );
    // Only the expected addresses produced anything; the rest of the /24
    // is silent (connect timeout or unreachable), the scanner's own
    // address refuses.
    let answered: BTreeSet<IpAddr> = found.iter().copied().chain([ip(14)]).collect();
    assert_eq!(answered.len(), 4);
    assert_eq!(report.addresses, 254);
    assert_eq!(report.refused, 1, "{report:#?}");
    assert_eq!(report.connect_timeouts + report.unreachable, 254 - 5);
    assert_eq!(report.local_errors, 0);
}

/// A namespace by path, for threads (the `NetNs` guard stays with the test).
struct NsRef(PathBuf, String);

impl NsRef {
    fn enter(&self) {
        let f = std::fs::File::open(&self.0).unwrap();
        nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("setns {}: {e}", self.1));
    }
}

/// A fixture root giving an agent its own system UUID.
fn identity_root(dir: &std::path::Path, i: u32) -> PathBuf {
    let root = dir.join(format!("root{i}"));
    std::fs::create_dir_all(root.join("sys/class/dmi/id")).unwrap();
    std::fs::write(
        root.join("sys/class/dmi/id/product_uuid"),
        format!("5a0c1f4e-0000-4000-8000-{i:012x}\n"),
    )
    .unwrap();
    root
}

/// A sparse layer-2 network much larger than the kernel's neighbour table
/// (`gc_thresh3`, 1 024 by default; one table for the whole machine: it
/// cannot be lowered for one namespace, and is not changed here): a /20
/// on one veth pair, 3 real agents, every other address absent (ARP
/// fails). Every agent is found, no address is given up, and every absent
/// address is answered by the kernel (EHOSTUNREACH) rather than timed out:
/// the table never overflowed (an overflow drops SYNs silently).
#[test]
fn a_sparse_network_larger_than_the_neighbour_table_loses_no_agent() {
    let _turn = neighbour_table_turn();
    const T: &str =
        "discovery_netns::a_sparse_network_larger_than_the_neighbour_table_loses_no_agent";
    let Some(lan) = SparseLan::start(
        T,
        "hdsp",
        "10.79.0.1/20",
        &["10.79.3.7", "10.79.9.9", "10.79.15.250"],
    ) else {
        return;
    };
    let agents = lan.agents.clone();

    let fulls_before = table_fulls();
    // The kernel resolves every address: the ARP sweep is off.
    let mut cfg = ScanConfig::new(DEFAULT_PORT);
    cfg.arp_sweep = false;
    let report = lan.scan(cfg, "10.79.0.0/20");
    let overflows = table_fulls() - fulls_before;

    let found: Vec<IpAddr> = report.found.iter().map(|h| h.ip).collect();
    let want: Vec<IpAddr> = agents.iter().map(|a| IpAddr::V4(*a)).collect();
    let summary = format!(
        "found {found:?}, given up {:?}, local {:?}, refused {}, unreachable {}, timeouts {}, bound {:?}, {:?}",
        report.given_up,
        report.local,
        report.refused,
        report.unreachable,
        report.connect_timeouts,
        report.neighbour_bound,
        report.elapsed
    );
    eprintln!("{summary}");
    assert_eq!(found, want, "{summary}");
    assert!(report.given_up.is_empty(), "{summary}");
    let bound = report
        .neighbour_bound
        .expect("the range is on a veth: bounded");
    assert!(bound < 1024, "{summary}");
    assert_eq!(report.addresses, 4094);
    // The scanner's own address refuses; all the others are absent.
    assert_eq!(report.refused, 1, "{summary}");
    assert_eq!(
        report.unreachable + report.connect_timeouts,
        4094 - 3 - 1,
        "{summary}"
    );
    // The kernel never found the (machine-wide) table full meanwhile.
    assert_eq!(overflows, 0, "neighbour table overflows: {summary}");
}

/// A layer-2 network for one test: the scanner's namespace and the agents'
/// namespace on one veth pair, the scanner at `scanner` (an address with
/// its prefix), one real static agent per address of `agents` (same
/// prefix), each with its own identity; every other address is absent.
/// Namespaces, agents and files go when it is dropped.
struct SparseLan {
    scan_ns: NetNs,
    agents: Vec<Ipv4Addr>,
    _children: Vec<ChildGuard>,
    _agent_ns: NetNs,
    _dir: tempfile::TempDir,
}

impl SparseLan {
    /// `None` (the test says SKIPPED) without the rights to make namespaces.
    fn start(test: &str, tag: &str, scanner: &str, agents: &[&str]) -> Option<Self> {
        let scan_ns = NetNs::new_or_skip(tag, test)?;
        let agent = agent_binary();
        let agent_ns = NetNs::new(&format!("{tag}a")).unwrap();
        let (near, far) = (format!("{tag}0"), format!("{tag}1"));
        scan_ns.add_veth(&near, &far).unwrap();
        scan_ns.move_link(&far, &agent_ns).unwrap();
        scan_ns.ip_ok(&["addr", "add", scanner, "dev", &near]);
        let prefix = scanner.split('/').nth(1).unwrap();
        let agents: Vec<Ipv4Addr> = agents.iter().map(|a| a.parse().unwrap()).collect();
        for a in &agents {
            agent_ns.ip_ok(&["addr", "add", &format!("{a}/{prefix}"), "dev", &far]);
        }
        for (ns, dev) in [(&scan_ns, &near), (&agent_ns, &far)] {
            ns.ip_ok(&["link", "set", "dev", dev, "up"]);
            ns.ip_ok(&["link", "set", "dev", "lo", "up"]);
        }
        let dir = tempfile::tempdir().unwrap();
        let children: Vec<ChildGuard> = agents
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let root = identity_root(dir.path(), i as u32 + 1);
                ChildGuard(
                    Command::new("ip")
                        .args(["netns", "exec", agent_ns.name()])
                        .arg(&agent)
                        .arg("--root")
                        .arg(&root)
                        .args(["--listen", &format!("{a}:{DEFAULT_PORT}")])
                        .args(["--lldp-window", "0"])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .unwrap(),
                )
            })
            .collect();
        // Ready, checked from inside the agents' namespace (the scanner's
        // neighbour entries stay untouched).
        let (agent_path, agent_name) = (agent_ns.path(), agent_ns.name().to_string());
        let list = agents.clone();
        std::thread::spawn(move || {
            NsRef(agent_path, agent_name).enter();
            for a in list {
                let deadline = Instant::now() + Duration::from_secs(20);
                while std::net::TcpStream::connect((a, DEFAULT_PORT)).is_err() {
                    assert!(Instant::now() < deadline, "agent {a} never listened");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        })
        .join()
        .unwrap();
        Some(Self {
            scan_ns,
            agents,
            _children: children,
            _agent_ns: agent_ns,
            _dir: dir,
        })
    }

    /// Scans `range` from the scanner's namespace with `cfg`.
    fn scan(&self, cfg: ScanConfig, range: &str) -> ScanReport {
        let (scan_path, scan_name) = (self.scan_ns.path(), self.scan_ns.name().to_string());
        let range = range.to_string();
        std::thread::spawn(move || {
            NsRef(scan_path, scan_name).enter();
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(Scanner::new(cfg).scan(range.parse().unwrap()))
                .unwrap()
        })
        .join()
        .unwrap()
    }
}

/// The kernel's count of neighbour-table overflows (ARP), machine-wide:
/// the last column of /proc/net/stat/arp_cache, in hex.
fn table_fulls() -> u64 {
    let t = std::fs::read_to_string("/proc/net/stat/arp_cache").unwrap();
    let line = t.lines().nth(1).unwrap();
    u64::from_str_radix(line.split_whitespace().last().unwrap(), 16).unwrap()
}

/// A sparse /16 on one veth pair, 3 real agents at its first, middle and
/// last usable addresses, every other address absent: the ARP sweep (raw
/// packet socket, no neighbour entry per absent address) finds which
/// addresses have a host and only those are probed. Every agent is found,
/// none is given up, and the report says the sweep ran and who answered.
#[test]
fn an_arp_sweep_finds_every_agent_of_a_sparse_slash_16() {
    let _turn = neighbour_table_turn();
    const T: &str = "discovery_netns::an_arp_sweep_finds_every_agent_of_a_sparse_slash_16";
    let Some(lan) = SparseLan::start(
        T,
        "hdar",
        "10.78.128.1/16",
        &["10.78.0.1", "10.78.128.0", "10.78.255.254"],
    ) else {
        return;
    };
    let agents = lan.agents.clone();

    let cfg = ScanConfig::new(DEFAULT_PORT);
    assert!(cfg.arp_sweep, "the sweep is on by default");
    let report = lan.scan(cfg, "10.78.0.0/16");

    let found: Vec<IpAddr> = report.found.iter().map(|h| h.ip).collect();
    let want: Vec<IpAddr> = agents.iter().map(|a| IpAddr::V4(*a)).collect();
    let summary = format!(
        "found {found:?}, arp {:?}, given up {:?}, local {:?}, refused {}, unreachable {}, timeouts {}, {:?}",
        report.arp_responders,
        report.given_up,
        report.local,
        report.refused,
        report.unreachable,
        report.connect_timeouts,
        report.elapsed
    );
    eprintln!("{summary}");
    assert_eq!(found, want, "{summary}");
    assert!(report.given_up.is_empty(), "{summary}");
    // The three agents' addresses answered ARP, nothing else did.
    assert_eq!(report.arp_responders, Some(3), "{summary}");
    assert_eq!(report.addresses, 65_534);
    // Our own address refuses; all the others count as unreachable
    // (silent to ARP, never probed).
    assert_eq!(report.refused, 1, "{summary}");
    assert_eq!(report.unreachable, 65_534 - 3 - 1, "{summary}");
    assert_eq!(report.connect_timeouts, 0, "{summary}");
}
