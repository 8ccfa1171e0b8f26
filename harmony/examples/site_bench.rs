//! Site services benchmark (issue 9, "Numbers"): a `LinuxSiteTopology`
//! (a real dnsmasq and Caddy) gets reservations, DNS records and boot
//! files (a per-MAC iPXE script and a small Ignition per host) for 500
//! hosts, then the same again; then one reservation change is timed until
//! dnsmasq answers a real DHCP request (busybox `udhcpc`) with it.
//!
//! Run by `.ci/bench-site`, which creates the namespaces: this process runs
//! inside the server namespace (interface `srv0`, 198.18.0.1/16) and
//! `SITE_BENCH_CLIENT_NS` names the client namespace (interface `cli0`).
//! Nothing leaves those namespaces.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use harmony::domain::{
    Change, DhcpReservation, DhcpServer, DnsRecord, DnsServer, HttpServer, MacAddress, RelativePath,
};
use harmony::infra::dnsmasq::DhcpRange;
use harmony::infra::linux_site::{LinuxSiteConfig, LinuxSiteTopology};
use harmony::modules::boot::per_mac_ipxe_path;

const HOSTS: usize = 500;
const DOMAIN: &str = "bench.example.com";
const SERVER_IF: &str = "srv0";
const CLIENT_IF: &str = "cli0";
/// DHCP attempts while waiting for a change (each up to ~3 s).
const MAX_TRIES: usize = 10;

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mac(i: usize) -> MacAddress {
    format!("02:bb:00:00:{:02x}:{:02x}", i / 256, i % 256)
        .parse()
        .unwrap()
}

fn host_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 1 + (i / 250) as u8, 1 + (i % 250) as u8)
}

fn name(i: usize) -> String {
    format!("host-{i:03}")
}

struct Site {
    reservations: Vec<DhcpReservation>,
    records: Vec<DnsRecord>,
    files: Vec<(RelativePath, Vec<u8>)>,
}

fn site(n: usize) -> Site {
    let mut reservations = Vec::new();
    let mut records = Vec::new();
    let mut files = Vec::new();
    for i in 0..n {
        let (m, ip, name) = (mac(i), host_ip(i), name(i));
        reservations.push(DhcpReservation {
            mac: m,
            ip: IpAddr::V4(ip),
            hostname: name.parse().unwrap(),
        });
        records.push(DnsRecord {
            name: format!("{name}.{DOMAIN}").parse().unwrap(),
            ip: IpAddr::V4(ip),
        });
        let ign: RelativePath = format!("ignition/{name}.ign").parse().unwrap();
        files.push((
            per_mac_ipxe_path(&m),
            format!(
                "#!ipxe\n# Harmony: {name}\nkernel http://198.18.0.1:8080/scos/kernel initrd=main \
                 coreos.live.rootfs_url=http://198.18.0.1:8080/scos/rootfs.img \
                 ignition.config.url=http://198.18.0.1:8080/{ign} ignition.platform.id=metal\n\
                 initrd --name main http://198.18.0.1:8080/scos/initramfs.img\nboot\n"
            )
            .into_bytes(),
        ));
        files.push((
            ign,
            format!(
                "{{\"ignition\":{{\"version\":\"3.4.0\",\"config\":{{\"merge\":[{{\"source\":\
                 \"http://198.18.0.1:22623/config/worker\"}}]}}}},\"storage\":{{\"files\":[{{\
                 \"path\":\"/etc/hostname\",\"mode\":420,\"overwrite\":true,\"contents\":{{\
                 \"source\":\"data:,{name}\"}}}}]}}}}"
            )
            .into_bytes(),
        ));
    }
    for n in ["api", "api-int", "*.apps"] {
        records.push(DnsRecord {
            name: format!("{n}.{DOMAIN}").parse().unwrap(),
            ip: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
        });
    }
    Site {
        reservations,
        records,
        files,
    }
}

/// Everything, through the capability traits: one batch of reservations,
/// one of records, a put per file. Whether anything changed.
async fn apply(topo: &LinuxSiteTopology, s: &Site) -> Change {
    let mut changed = topo.reserve_many(&s.reservations).await.unwrap() == Change::Applied;
    changed |= topo.set_records(&s.records).await.unwrap() == Change::Applied;
    for (path, contents) in &s.files {
        changed |= topo.put_file(path, contents).await.unwrap() == Change::Applied;
    }
    if changed {
        Change::Applied
    } else {
        Change::Unchanged
    }
}

/// One DHCP exchange from the client namespace with `mac`: the address
/// offered and acknowledged, `None` when there was no answer.
fn dhcp(client_ns: &str, dir: &Path, mac: MacAddress) -> Option<Ipv4Addr> {
    let ok = Command::new("ip")
        .args(["-n", client_ns, "link", "set", "dev", CLIENT_IF, "address"])
        .arg(mac.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "setting the client's MAC");
    let out = dir.join("dhcp.env");
    let _ = std::fs::remove_file(&out);
    let status = Command::new("timeout")
        .args(["10", "ip", "netns", "exec", client_ns])
        .args([
            "udhcpc", "-f", "-q", "-n", "-t", "3", "-T", "1", "-i", CLIENT_IF, "-s",
        ])
        .arg(dir.join("udhcpc.sh"))
        .args(["-x", "0x4d:69505845"])
        .env("OUT", &out)
        .output()
        .unwrap();
    if !status.status.success() {
        return None;
    }
    std::fs::read_to_string(&out).ok()?.trim().parse().ok()
}

/// From the change until a DHCP exchange hands out `want`: the time the
/// change took and the time until the answer.
async fn change_until_answer(
    topo: &LinuxSiteTopology,
    client_ns: &str,
    dir: &Path,
    r: &DhcpReservation,
) -> (Duration, Duration) {
    let t0 = Instant::now();
    assert_eq!(topo.reserve(r).await.unwrap(), Change::Applied);
    let reserved = t0.elapsed();
    for _ in 0..MAX_TRIES {
        if dhcp(client_ns, dir, r.mac).map(IpAddr::V4) == Some(r.ip) {
            return (reserved, t0.elapsed());
        }
    }
    panic!("dnsmasq never answered {} with {}", r.mac, r.ip);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    tracing_subscriber_init();
    let client_ns = std::env::var("SITE_BENCH_CLIENT_NS")
        .expect("SITE_BENCH_CLIENT_NS: run through .ci/bench-site");
    let dir = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let script = dir.path().join("udhcpc.sh");
        std::fs::write(
            &script,
            "#!/bin/sh\n[ \"$1\" = bound ] || exit 0\necho \"$ip\" > \"$OUT\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut config = LinuxSiteConfig::new(
        "bench",
        dir.path().join("site"),
        SERVER_IF.parse().unwrap(),
        Ipv4Addr::new(198, 18, 0, 1),
        DhcpRange {
            start: Ipv4Addr::new(198, 18, 200, 1),
            end: Ipv4Addr::new(198, 18, 200, 250),
            netmask: Ipv4Addr::new(255, 255, 0, 0),
            lease_time: Duration::from_secs(3600),
        },
    );
    config.domain = Some(DOMAIN.parse().unwrap());
    let topo = LinuxSiteTopology::start(config).await.unwrap();
    let s = site(HOSTS);

    let t = Instant::now();
    assert_eq!(apply(&topo, &s).await, Change::Applied);
    let first = t.elapsed();
    let pid = topo.pids().await;
    let t = Instant::now();
    let again = apply(&topo, &s).await;
    let second = t.elapsed();
    assert_eq!(
        again,
        Change::Unchanged,
        "the second apply changed something"
    );
    assert_eq!(
        topo.pids().await,
        pid,
        "the second apply restarted a service"
    );

    println!(
        "first apply, {HOSTS} hosts ({} reservations, {} DNS records, {} files): {:.0} ms",
        s.reservations.len(),
        s.records.len(),
        s.files.len(),
        millis(first)
    );
    println!(
        "second apply, identical (Noop, same pids; goal < 100 ms): {:.1} ms",
        millis(second)
    );

    // Baseline: one DHCP exchange for a reserved host, nothing changed.
    let t = Instant::now();
    assert_eq!(
        dhcp(&client_ns, dir.path(), mac(0)),
        Some(host_ip(0)),
        "host 0 got its reserved address"
    );
    let baseline = t.elapsed();
    // A new host.
    let new_host = DhcpReservation {
        mac: mac(HOSTS),
        ip: IpAddr::V4(host_ip(HOSTS)),
        hostname: name(HOSTS).parse().unwrap(),
    };
    let (reserved, answered) = change_until_answer(&topo, &client_ns, dir.path(), &new_host).await;
    // A new address for a host that holds a lease on its old one.
    let moved = DhcpReservation {
        mac: mac(0),
        ip: IpAddr::V4(Ipv4Addr::new(198, 18, 9, 9)),
        hostname: name(0).parse().unwrap(),
    };
    let (moved_reserved, moved_answered) =
        change_until_answer(&topo, &client_ns, dir.path(), &moved).await;
    assert_eq!(
        topo.pids().await.dnsmasq,
        pid.dnsmasq,
        "dnsmasq kept running"
    );

    println!(
        "one DHCP exchange with udhcpc, nothing changed (baseline): {:.0} ms",
        millis(baseline)
    );
    println!(
        "new host: reservation applied (SIGHUP confirmed) in {:.1} ms; answered by DHCP after {:.0} ms",
        millis(reserved),
        millis(answered)
    );
    println!(
        "new IP for a leased MAC: applied in {:.1} ms; answered by DHCP after {:.0} ms",
        millis(moved_reserved),
        millis(moved_answered)
    );
    topo.stop().await.unwrap();
}

/// Warnings and errors on stderr (`RUST_LOG` overrides).
fn tracing_subscriber_init() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
}
