//! The SYN sweep of loopback ranges (`infra::syn_sweep`): agents found
//! with and without it, no connection left on an agent by it, and the
//! `harmony` process without `CAP_NET_RAW` falling back to connecting.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/discovery.rs"]
mod support;

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::process::Command;

use harmony::infra::syn_sweep::{SynSweep, SynSweepError};
use harmony::modules::discovery::{ScanConfig, Scanner};
use support::{Behaviour, inventory, json, serve};

fn v4(b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, b, c, d)
}

/// Whether this process may open a raw socket (root, or `CAP_NET_RAW`).
fn may_sweep() -> bool {
    !matches!(
        SynSweep::new(1, true).run(&[v4(0, 0, 1)]),
        Err(SynSweepError::NoPermission)
    )
}

/// Three agents of a loopback /20, at its first, a middle and its last
/// usable address; returns them and their port.
async fn three_agents(b: u8) -> (Vec<IpAddr>, u16) {
    let ips = [v4(b, 0, 1), v4(b, 7, 77), v4(b, 15, 254)].map(IpAddr::V4);
    let port = support::free_port(ips[0]);
    for (i, ip) in ips.iter().enumerate() {
        serve(
            SocketAddr::new(*ip, port),
            Behaviour::Json(json(&inventory(i as u16 + 1))),
        )
        .await
        .unwrap();
    }
    (ips.to_vec(), port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_syn_sweep_finds_every_agent_of_a_loopback_slash_20() {
    let (ips, port) = three_agents(31).await;
    let cfg = ScanConfig::new(port);
    assert!(cfg.syn_sweep, "the sweep is on by default");
    let report = Scanner::new(cfg)
        .scan("127.31.0.0/20".parse().unwrap())
        .await
        .unwrap();
    let found: Vec<IpAddr> = report.found.iter().map(|h| h.ip).collect();
    assert_eq!(found, ips, "{report:#?}");
    assert!(report.given_up.is_empty() && report.rejected.is_empty());
    assert_eq!(report.addresses, 4094);
    if may_sweep() {
        // Only the three were probed; every other address was settled by
        // the sweep.
        assert_eq!(report.syn_responders, Some(3), "{report:#?}");
        assert_eq!(report.syn_silent, 4094 - 3);
        assert_eq!(report.refused + report.connect_timeouts, 0, "{report:#?}");
    } else {
        eprintln!("no CAP_NET_RAW: the scan connected to every address");
        assert_eq!(report.syn_responders, None);
        assert_eq!(report.refused, 4094 - 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_sweep_every_address_is_connected_to_and_the_same_agents_found() {
    let (ips, port) = three_agents(32).await;
    let mut cfg = ScanConfig::new(port);
    cfg.syn_sweep = false;
    let report = Scanner::new(cfg)
        .scan("127.32.0.0/20".parse().unwrap())
        .await
        .unwrap();
    let found: Vec<IpAddr> = report.found.iter().map(|h| h.ip).collect();
    assert_eq!(found, ips, "{report:#?}");
    assert_eq!(report.syn_responders, None);
    assert_eq!(report.syn_silent, 0);
    assert_eq!(report.refused, 4094 - 3, "{report:#?}");
}

/// The sweep's SYN-ACKs are answered by our kernel with a RST: the
/// listener's accept queue stays empty (no half-open or established
/// connection is left on an agent), and the listener still serves.
#[test]
fn the_sweep_leaves_no_connection_on_an_agent() {
    if !may_sweep() {
        eprintln!("SKIPPED: no CAP_NET_RAW");
        return;
    }
    let ip = v4(33, 0, 9);
    let listener = TcpListener::bind((ip, 0)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let targets: Vec<Ipv4Addr> = (1..=254).map(|d| v4(33, 0, d)).collect();
    let report = SynSweep::new(port, true).run(&targets).unwrap();
    assert_eq!(report.open.into_iter().collect::<Vec<_>>(), vec![ip]);
    assert_eq!(report.sent, 254);
    std::thread::sleep(std::time::Duration::from_millis(200));
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the sweep left a connection: {other:?}"),
    }
    // Still a working listener.
    let _client = std::net::TcpStream::connect((ip, port)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(listener.accept().is_ok());
}

/// The `harmony` process without `CAP_NET_RAW` (dropped from its bounding
/// set by `setpriv`) cannot sweep, says so, and still finds every agent by
/// connecting to every address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cap_net_raw_the_cli_connects_to_every_address() {
    if !may_sweep() {
        eprintln!("SKIPPED: not privileged, nothing to drop");
        return;
    }
    let (ips, port) = three_agents(34).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("inventory.sqlite3");
    let harmony = env!("CARGO_BIN_EXE_harmony");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("setpriv")
            .args([
                "--bounding-set=-net_raw",
                "--inh-caps=-net_raw",
                "--",
                harmony,
                "inventory",
                "discover",
                "--network",
                "127.34.0.0/20",
                "--port",
                &port.to_string(),
                "--expected",
                "3",
                "--timeout",
                "60s",
                "--interval",
                "1s",
                "--db",
            ])
            .arg(&db)
            .env("RUST_LOG", "info")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("no SYN sweep"), "{stderr}");
    assert!(stderr.contains("CAP_NET_RAW"), "{stderr}");
    let scan_line = stderr
        .lines()
        .find(|l| l.starts_with("scanned 127.34.0.0/20: 3 agent(s)"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(!scan_line.contains("SYN sweep"), "{scan_line}");
    for ip in ips {
        assert!(
            stderr.contains(&format!("at {ip}")),
            "{ip} not found: {stderr}"
        );
    }
}
