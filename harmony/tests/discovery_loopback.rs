//! Discovery against servers on loopback addresses only (127.0.0.0/8, ::1).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/discovery.rs"]
mod support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harmony::domain::events::{Event, EventBus};
use harmony::modules::discovery::{Discovery, Rejection, ScanConfig, ScanError, Scanner};
use ipnetwork::IpNetwork;
use support::{Behaviour, MemRepo, inventory, json, mac, serve, uuid};

fn v4(a: u8, b: u8, c: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, a, b, c))
}

fn net(s: &str) -> IpNetwork {
    s.parse().unwrap()
}

fn drain(rx: &mut tokio::sync::broadcast::Receiver<Event>) -> Vec<Event> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        out.push(e);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_every_loopback_agent_and_stores_them() {
    let port = support::free_port(v4(0, 1, 10));
    let hosts: Vec<(IpAddr, u16)> = [10u8, 11, 77, 128, 254]
        .iter()
        .enumerate()
        .map(|(i, last)| (v4(0, 1, *last), i as u16 + 1))
        .collect();
    for (ip, i) in &hosts {
        serve(
            SocketAddr::new(*ip, port),
            Behaviour::Json(json(&inventory(*i))),
        )
        .await
        .unwrap();
    }
    let repo = Arc::new(MemRepo::default());
    let bus = EventBus::new(1024);
    let mut rx = bus.subscribe();
    let disc = Discovery::new(ScanConfig::new(port), repo.clone(), bus.clone());

    let (report, counts) = disc.scan_once(net("127.0.1.0/24")).await.unwrap();
    assert_eq!(report.addresses, 254);
    assert_eq!(report.found.len(), 5, "{report:#?}");
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.refused, 249);
    assert_eq!(report.connect_timeouts + report.local_errors, 0);
    assert!(report.given_up.is_empty());
    for (h, (ip, i)) in report.found.iter().zip(&hosts) {
        assert_eq!(h.ip, *ip);
        assert_eq!(h.id.as_str(), format!("uuid:{}", uuid(*i)));
        assert_eq!(h.macs, vec![mac(&format!("52:54:00:00:00:{i:02x}"))]);
        assert_eq!(
            h.hardware.hostname.as_ref().map(|n| n.as_str()),
            Some(format!("node-{i}").as_str())
        );
        assert_eq!(h.hardware.cpu.threads, Some(u32::from(*i) + 1));
        assert_eq!(h.hardware.disks[0].size_bytes, Some(u64::from(*i) << 30));
    }
    assert_eq!(counts.new, 5);
    assert_eq!(repo.count(), 5);
    let events = drain(&mut rx);
    let discovered: Vec<IpAddr> = events
        .iter()
        .filter_map(|e| match e {
            Event::HostDiscovered { ip, .. } => Some(*ip),
            _ => None,
        })
        .collect();
    assert_eq!(discovered, hosts.iter().map(|h| h.0).collect::<Vec<_>>());
    let last_progress = events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::Progress { done, total, .. } => Some((*done, *total)),
            _ => None,
        })
        .unwrap();
    assert_eq!(last_progress, (254, 254));

    // Second scan: the same hosts are updates. A newcomer claiming host 1's
    // MAC is a conflict and is not stored.
    let mut thief = inventory(99);
    thief.network[0].mac = Some("52:54:00:00:00:01".into());
    thief.network[0].permanent_mac = thief.network[0].mac.clone();
    serve(
        SocketAddr::new(v4(0, 1, 200), port),
        Behaviour::Json(json(&thief)),
    )
    .await
    .unwrap();
    let (report, counts) = disc.scan_once(net("127.0.1.0/24")).await.unwrap();
    assert_eq!(report.found.len(), 6);
    assert_eq!(
        (counts.new, counts.updated, counts.mac_conflicts),
        (0, 5, 1)
    );
    assert_eq!(repo.count(), 5);
    let events = drain(&mut rx);
    assert!(events.iter().any(|e| matches!(e,
        Event::HostConflict { ip, mac: m, existing }
            if *ip == v4(0, 1, 200) && *m == mac("52:54:00:00:00:01")
               && existing.as_str() == format!("uuid:{}", uuid(1)))));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(
                e,
                Event::HostUpdated {
                    ip_changed: false,
                    ..
                }
            ))
            .count(),
        5
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peers_are_rejected_each_with_its_reason_without_stalling() {
    let port = support::free_port(v4(0, 2, 1));
    let mut inj = inventory(7);
    let bad = "\"; reboot\n#!ipxe ${root}";
    inj.hostname = Some(bad.into());
    inj.network[0].name = "eth0; reboot".into();
    inj.storage[0].path = "/dev/../etc/passwd".into();
    inj.system.vendor = Some(bad.into());
    let mut wrong_schema = serde_json::to_value(inventory(8)).unwrap();
    wrong_schema["schema_version"] = 99.into();
    let mut long_name = inventory(9);
    long_name.network[0].name = "n".repeat(300);
    let mut nul = inventory(10);
    nul.storage[0].name = "vd\0a".into();

    let peers: Vec<(u8, Behaviour)> = vec![
        (1, Behaviour::Json(json(&inventory(1)))),
        (2, Behaviour::Huge),
        (3, Behaviour::Slow),
        (4, Behaviour::Json(b"{\"schema_version\": 1, oops".to_vec())),
        (5, Behaviour::Json(json(&inj))),
        (
            6,
            Behaviour::Json(serde_json::to_vec(&wrong_schema).unwrap()),
        ),
        (7, Behaviour::Status(500)),
        (8, Behaviour::Silent),
        (9, Behaviour::Json(json(&long_name))),
        (10, Behaviour::Json(json(&nul))),
    ];
    for (last, b) in &peers {
        serve(SocketAddr::new(v4(0, 2, *last), port), b.clone())
            .await
            .unwrap();
    }
    let mut cfg = ScanConfig::new(port);
    cfg.host_timeout = Duration::from_secs(2);
    let started = Instant::now();
    let report = Scanner::new(cfg).scan(net("127.0.2.0/24")).await.unwrap();
    let took = started.elapsed();
    // A stall detector, not a speed goal: a stalled scan would never end.
    assert!(took < Duration::from_secs(120), "scan took {took:?}");
    assert!(
        took >= Duration::from_secs(2),
        "the time cap was not awaited? {took:?}"
    );

    assert_eq!(report.found.len(), 1);
    assert_eq!(report.found[0].ip, v4(0, 2, 1));
    let reason = |last: u8| {
        report
            .rejected
            .iter()
            .find(|(ip, _)| *ip == v4(0, 2, last))
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| panic!("127.0.2.{last} not rejected: {report:#?}"))
    };
    assert_eq!(reason(2), Rejection::TooLarge(1 << 20));
    assert_eq!(reason(3), Rejection::Timeout(Duration::from_secs(2)));
    assert!(matches!(reason(4), Rejection::Json(_)), "{}", reason(4));
    let r5 = reason(5);
    assert!(
        r5.field().is_some_and(|f| [
            "$.hostname",
            "$.system.vendor",
            "network[0].name",
            "storage[0].path"
        ]
        .contains(&f)),
        "{r5}"
    );
    assert!(!r5.to_string().contains('\n'), "{r5}");
    assert!(
        matches!(reason(6), Rejection::SchemaVersion { ref found, expected: 1 } if found == "99"),
        "{}",
        reason(6)
    );
    assert_eq!(reason(7), Rejection::Status(500));
    assert_eq!(reason(8), Rejection::Timeout(Duration::from_secs(2)));
    let r9 = reason(9);
    assert!(r9.to_string().contains("longer than 256"), "{r9}");
    assert!(r9.to_string().len() < 300, "value shown truncated: {r9}");
    let r10 = reason(10);
    assert!(
        r10.to_string().contains("control characters") && r10.to_string().contains("\\0"),
        "{r10}"
    );
    assert_eq!(report.rejected.len(), 9);
    assert_eq!(report.refused, 254 - 10);
}

#[tokio::test]
async fn ipv6_loopback_and_range_cap() {
    let lo6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let port = support::free_port(lo6);
    serve(
        SocketAddr::new(lo6, port),
        Behaviour::Json(json(&inventory(3))),
    )
    .await
    .unwrap();
    let scanner = Scanner::new(ScanConfig::new(port));
    let report = scanner.scan(net("::1/128")).await.unwrap();
    assert_eq!(report.found.len(), 1);
    assert_eq!(report.found[0].ip, lo6);
    assert_eq!(report.found[0].id.as_str(), format!("uuid:{}", uuid(3)));

    // Too large a range is refused before any packet is sent.
    let err = scanner.scan(net("fd00::/64")).await.unwrap_err();
    assert!(matches!(err, ScanError::TooManyAddresses { count, max, .. }
        if count == 1u128 << 64 && max == 1 << 20));
    assert!(err.to_string().contains("at most 1048576"), "{err}");
    // 127.0.0.0/8 is 16M addresses: refused by the cap, still only loopback.
    assert!(matches!(
        scanner.scan(net("127.0.0.0/8")).await,
        Err(ScanError::TooManyAddresses { .. })
    ));
}

#[tokio::test]
async fn continuous_scans_until_stopped() {
    let port = support::free_port(v4(0, 3, 5));
    serve(
        SocketAddr::new(v4(0, 3, 5), port),
        Behaviour::Json(json(&inventory(5))),
    )
    .await
    .unwrap();
    let repo = Arc::new(MemRepo::default());
    let bus = EventBus::new(4096);
    let mut rx = bus.subscribe();
    let disc = Discovery::new(ScanConfig::new(port), repo.clone(), bus);
    let scans = disc
        .run_continuous(
            net("127.0.3.0/28"),
            Duration::from_millis(100),
            tokio::time::sleep(Duration::from_millis(550)),
        )
        .await
        .unwrap();
    assert!((3..=7).contains(&scans), "{scans} scans");
    let events = drain(&mut rx);
    let new = events
        .iter()
        .filter(|e| matches!(e, Event::HostDiscovered { .. }))
        .count();
    let upd = events
        .iter()
        .filter(|e| matches!(e, Event::HostUpdated { .. }))
        .count();
    assert_eq!(new, 1);
    assert!(upd as u64 >= scans - 1, "{upd} updates for {scans} scans");
    assert_eq!(repo.count(), 1);
}

/// Runs the scanner in a child process with RLIMIT_NOFILE = 64 (soft and hard).
#[test]
fn tiny_open_file_limit_loses_no_host() {
    const CHILD: &str = "HARMONY_DISCOVERY_TINY_NOFILE_CHILD";
    if let Ok(port) = std::env::var(CHILD) {
        return tiny_nofile_child(port.parse().unwrap());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let port = support::free_port(v4(0, 4, 1));
    let agents: Vec<IpAddr> = (0..20u16)
        .map(|i| {
            let n = 7 + i * 51; // scattered over 127.0.4.0/22
            v4(0, 4 + (n / 256) as u8, (n % 256) as u8)
        })
        .collect();
    rt.block_on(async {
        for (i, ip) in agents.iter().enumerate() {
            serve(
                SocketAddr::new(*ip, port),
                Behaviour::Json(json(&inventory(i as u16))),
            )
            .await
            .unwrap();
        }
    });
    let _rt = rt; // keep serving while the child scans
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "tiny_open_file_limit_loses_no_host",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, port.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find_map(|l| l.find("RESULT ").map(|at| &l[at..]))
        .unwrap_or_else(|| panic!("no RESULT line:\n{stdout}\n{stderr}"));
    let field = |k: &str| -> String {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .unwrap()
            .to_string()
    };
    let found: Vec<String> = field("found").split(',').map(String::from).collect();
    let want: Vec<String> = agents.iter().map(ToString::to_string).collect();
    assert_eq!(found, want, "{line}");
    assert_eq!(field("lost"), "0", "{line}");
    assert!(
        field("local").parse::<u64>().unwrap() > 0,
        "local errors were provoked: {line}"
    );
    assert!(field("nofile").parse::<u64>().unwrap() <= 64, "{line}");
}

fn tiny_nofile_child(port: u16) {
    rlimit::Resource::NOFILE.set(64, 64).unwrap();
    // Eat most of the descriptors so the scanner surely hits EMFILE (its
    // refused connects free theirs at once: only a few are left).
    let _hog: Vec<std::fs::File> = (0..50)
        .map(|_| std::fs::File::open("/dev/null").unwrap())
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut cfg = ScanConfig::new(port);
    cfg.fd_headroom = 4;
    let report = rt
        .block_on(Scanner::new(cfg).scan(net("127.0.4.0/22")))
        .unwrap();
    let found: Vec<String> = report.found.iter().map(|h| h.ip.to_string()).collect();
    println!(
        "RESULT found={} lost={} local={} refused={} rejected={} nofile={} concurrency={}",
        found.join(","),
        report.given_up.len(),
        report.local_errors,
        report.refused,
        report.rejected.len(),
        rlimit::Resource::NOFILE.get().unwrap().0,
        report.concurrency,
    );
}

/// Discovery into the real SQLite store: hosts stored with their data, a
/// host that comes back on another address is the same host, and a reopened
/// database still has them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_into_the_sqlite_store() {
    use harmony::domain::InventoryRepository;
    use harmony::store::SqliteStore;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("inventory.sqlite3");
    let port = support::free_port(v4(0, 3, 10));
    serve(
        SocketAddr::new(v4(0, 3, 10), port),
        Behaviour::Json(json(&inventory(1))),
    )
    .await
    .unwrap();
    serve(
        SocketAddr::new(v4(0, 3, 20), port),
        Behaviour::Json(json(&inventory(2))),
    )
    .await
    .unwrap();
    let store = Arc::new(SqliteStore::open(&db).unwrap());
    let disc = Discovery::new(ScanConfig::new(port), store.clone(), EventBus::new(64));
    let (_, counts) = disc.scan_once(net("127.0.3.0/24")).await.unwrap();
    assert_eq!((counts.new, counts.updated, counts.errors), (2, 0, 0));

    // Host 1 moves to another address: same host id, ip updated.
    serve(
        SocketAddr::new(v4(0, 3, 30), port),
        Behaviour::Json(json(&inventory(1))),
    )
    .await
    .unwrap();
    let (_, counts) = disc.scan_once(net("127.0.3.24/29")).await.unwrap();
    assert_eq!((counts.new, counts.updated), (0, 1));
    drop(disc);
    drop(store);

    let reopened = SqliteStore::open(&db).unwrap();
    let hosts = reopened.hosts().unwrap();
    assert_eq!(hosts.len(), 2);
    let moved = hosts
        .iter()
        .find(|h| h.id.as_str() == format!("uuid:{}", uuid(1)))
        .unwrap();
    assert_eq!(moved.ip, v4(0, 3, 30));
    assert_eq!(
        moved.hardware.hostname.as_ref().map(ToString::to_string),
        inventory(1).hostname
    );
    let events = reopened.events(&moved.id, 10).unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["discovered", "ip-changed"]);
}

/// A host that stops answering is announced once as lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_stops_answering_is_lost_once() {
    let port = support::free_port(v4(0, 9, 10));
    let doc = json(&inventory(3));
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(v4(0, 9, 10), port))
        .await
        .unwrap();
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf).await;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                doc.len()
            );
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(&doc).await;
        }
    });
    let bus = EventBus::new(1024);
    let mut rx = bus.subscribe();
    let disc = Discovery::new(ScanConfig::new(port), Arc::new(MemRepo::default()), bus);
    let range = net("127.0.9.8/29");
    assert_eq!(disc.scan_once(range).await.unwrap().1.lost, 0);
    server.abort();
    let _ = server.await;
    assert_eq!(disc.scan_once(range).await.unwrap().1.lost, 1);
    assert_eq!(
        disc.scan_once(range).await.unwrap().1.lost,
        0,
        "announced once"
    );
    let lost: Vec<Event> = drain(&mut rx)
        .into_iter()
        .filter(|e| matches!(e, Event::HostLost { .. }))
        .collect();
    assert_eq!(lost.len(), 1);
    assert!(
        matches!(&lost[0], Event::HostLost { host } if host.as_str() == format!("uuid:{}", uuid(3)))
    );
}

/// Found hosts are stored while the scan goes on, not after it: with a
/// silent peer holding the scan open for its whole time limit, the agent
/// that answered is already in the store before the scan ends (a scan
/// interrupted then keeps what it found).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn found_hosts_are_stored_while_the_scan_goes_on() {
    let port = support::free_port(v4(0, 6, 1));
    serve(
        SocketAddr::new(v4(0, 6, 1), port),
        Behaviour::Json(json(&inventory(61))),
    )
    .await
    .unwrap();
    serve(SocketAddr::new(v4(0, 6, 2), port), Behaviour::Silent)
        .await
        .unwrap();
    let repo = Arc::new(MemRepo::default());
    let mut cfg = ScanConfig::new(port);
    cfg.host_timeout = Duration::from_secs(3);
    let disc = Discovery::new(cfg, repo.clone(), EventBus::new(64));
    let scan = tokio::spawn(async move { disc.scan_once(net("127.0.6.0/24")).await });
    let started = Instant::now();
    let mut stored_during_scan = false;
    while !scan.is_finished() && started.elapsed() < Duration::from_secs(10) {
        if repo.count() == 1 {
            stored_during_scan = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !scan.is_finished() || stored_during_scan,
        "the scan ended first"
    );
    assert!(
        stored_during_scan,
        "the agent was not stored during the scan"
    );
    let (report, counts) = scan.await.unwrap().unwrap();
    assert_eq!(counts.new, 1);
    assert_eq!(report.found.len(), 1);
    assert_eq!(report.found[0].ip, v4(0, 6, 1));
    assert_eq!(report.rejected.len(), 1, "{:?}", report.rejected);
}

/// A host in the discovery environment answers on every NIC with a lease:
/// found at two addresses per scan, it is stored once, and keeps the
/// address it was first stored with scan after scan (no flapping).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_answering_on_two_addresses_keeps_one() {
    use harmony::domain::InventoryRepository;
    let port = support::free_port(v4(0, 11, 10));
    let host = json(&inventory(7));
    for last in [10u8, 20] {
        serve(
            SocketAddr::new(v4(0, 11, last), port),
            Behaviour::Json(host.clone()),
        )
        .await
        .unwrap();
    }
    let repo = Arc::new(MemRepo::default());
    let bus = EventBus::new(1024);
    let mut rx = bus.subscribe();
    let disc = Discovery::new(ScanConfig::new(port), repo.clone(), bus.clone());
    let mut first_ip = None;
    for scan in 0..4 {
        let (report, counts) = disc.scan_once(net("127.0.11.0/27")).await.unwrap();
        assert_eq!(report.found.len(), 1, "scan {scan}: {report:#?}");
        let stored = repo.hosts().unwrap();
        assert_eq!(stored.len(), 1, "scan {scan}");
        let ip = stored[0].ip;
        assert!(ip == v4(0, 11, 10) || ip == v4(0, 11, 20), "{ip}");
        assert_eq!(
            *first_ip.get_or_insert(ip),
            ip,
            "scan {scan} moved the host"
        );
        if scan == 0 {
            assert_eq!((counts.new, counts.updated), (1, 0));
        } else {
            assert_eq!((counts.new, counts.updated), (0, 1));
        }
        let moved: Vec<Event> = drain(&mut rx)
            .into_iter()
            .filter(|e| {
                matches!(
                    e,
                    Event::HostUpdated {
                        ip_changed: true,
                        ..
                    }
                )
            })
            .collect();
        assert!(moved.is_empty(), "scan {scan}: {moved:?}");
    }
}
