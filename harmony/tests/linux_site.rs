//! `infra::linux_site` against the real programs: `LinuxSiteTopology`
//! (dnsmasq + Caddy + HAProxy) started inside a network namespace the test
//! creates (A, `srv0` 198.51.100.1/24 on a veth pair), a second namespace
//! (B) as the booting host: `udhcpc` with a reserved MAC, `curl` through
//! Caddy, `dig` against dnsmasq. The test's thread enters namespace A, so
//! every service Harmony starts runs there; nothing touches the host's own
//! network. 198.51.100.0/24 (TEST-NET-2) exists only in those namespaces.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../harmony-inventory-agent/tests/support/netns.rs"]
mod netns;
#[path = "support/site_lan.rs"]
mod site_lan;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use harmony::domain::{
    Change, DhcpReservation, DhcpServer, DnsRecord, DnsServer, HttpServer, LbBackend, LbMode,
    LoadBalancer, LoadBalancerService, MacAddress, RelativePath,
};
use harmony::infra::dnsmasq::DhcpRange;
use harmony::infra::linux_site::{LinuxSiteConfig, LinuxSiteTopology, SiteService};
use harmony::modules::boot::per_mac_ipxe_path;
use netns::NetNs;
use site_lan::{CLIENT_STATIC, DOMAIN, SERVER_IF, boot_file, ip4, open_tempdir};

fn mac(last: u8) -> MacAddress {
    format!("02:00:00:00:01:{last:02x}").parse().unwrap()
}

fn rp(s: &str) -> RelativePath {
    s.parse().unwrap()
}

fn site_config(dir: &Path) -> LinuxSiteConfig {
    let mut c = LinuxSiteConfig::new(
        "lab",
        dir,
        SERVER_IF.parse().unwrap(),
        ip4(1),
        DhcpRange {
            start: ip4(100),
            end: ip4(150),
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            lease_time: Duration::from_secs(3600),
        },
    );
    c.domain = Some(DOMAIN.parse().unwrap());
    c.router = Some(ip4(1));
    c.caddy_admin = "127.0.0.1:2999".parse().unwrap();
    c.stop_within = Duration::from_secs(15);
    c
}

/// One DHCP exchange from namespace B as an iPXE client with `mac`.
fn dhcp_ipxe(client: &NetNs, dir: &Path, mac: MacAddress) -> BTreeMap<String, String> {
    site_lan::dhcp(client, dir, mac, &site_lan::IPXE_CLIENT)
}

fn curl(client: &NetNs, url: &str) -> String {
    client
        .exec(&["curl", "-sS", "--fail", "--max-time", "5", url])
        .unwrap()
}

fn dig(client: &NetNs, name: &str) -> String {
    site_lan::dig(client, &[name])
}

fn log_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn log_since(path: &Path, from: u64) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    String::from_utf8_lossy(&bytes[(from as usize).min(bytes.len())..]).into_owned()
}

/// Every process whose command line names `dir` (the site's own).
fn processes_under(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(&needle) {
            found.push(format!("{name}: {cmd}"));
        }
    }
    found
}

const DEFAULT_IPXE: &str = "#!ipxe\nchain --autofree http://198.51.100.1:8080/ipxe/${netX/mac:hexhyp}.ipxe || goto inventory\n:inventory\necho inventory\n";

/// The boot files, reservations, DNS records and the API service of two hosts.
async fn apply_site<S, R>(site: &LinuxSiteTopology<S, R>) -> Vec<Change>
where
    S: Send + Sync + 'static,
    R: Send + Sync + 'static,
{
    let mut changes = vec![
        site.put_file(&rp("default.ipxe"), DEFAULT_IPXE.as_bytes())
            .await
            .unwrap(),
    ];
    let hosts = [(1u8, 11u8, "master-0"), (2, 12, "master-1")];
    for (m, _, name) in hosts {
        changes.push(
            site.put_file(
                &per_mac_ipxe_path(&mac(m)),
                format!(
                    "#!ipxe\n# Harmony: {name}\nkernel http://198.51.100.1:8080/scos/kernel\nboot\n"
                )
                .as_bytes(),
            )
            .await
            .unwrap(),
        );
        changes.push(
            site.put_file(
                &rp(&format!("ignition/{name}.ign")),
                format!("{{\"ignition\":{{\"version\":\"3.4.0\"}},\"storage\":{{\"files\":[{{\"path\":\"/etc/hostname\",\"contents\":{{\"source\":\"data:,{name}\"}}}}]}}}}").as_bytes(),
            )
            .await
            .unwrap(),
        );
    }
    let reservations: Vec<DhcpReservation> = hosts
        .iter()
        .map(|&(m, ip, name)| DhcpReservation {
            mac: mac(m),
            ip: IpAddr::V4(ip4(ip)),
            hostname: name.parse().unwrap(),
        })
        .collect();
    changes.push(site.reserve_many(&reservations).await.unwrap());
    let mut records: Vec<DnsRecord> = hosts
        .iter()
        .map(|&(_, ip, name)| DnsRecord {
            name: format!("{name}.{DOMAIN}").parse().unwrap(),
            ip: IpAddr::V4(ip4(ip)),
        })
        .collect();
    for name in ["api", "api-int", "*.apps"] {
        records.push(DnsRecord {
            name: format!("{name}.{DOMAIN}").parse().unwrap(),
            ip: IpAddr::V4(ip4(1)),
        });
    }
    changes.push(site.set_records(&records).await.unwrap());
    changes.push(
        site.set_service(&LoadBalancerService {
            name: "api".parse().unwrap(),
            bind: SocketAddr::new(IpAddr::V4(ip4(1)), 6443),
            mode: LbMode::Tcp,
            backends: hosts
                .iter()
                .map(|&(_, ip, name)| LbBackend {
                    hostname: name.parse().unwrap(),
                    ip: IpAddr::V4(ip4(ip)),
                    port: 6443,
                })
                .collect(),
            health_check: None,
        })
        .await
        .unwrap(),
    );
    changes
}

async fn wait_dead<S, R>(site: &LinuxSiteTopology<S, R>, which: SiteService)
where
    S: Send + Sync + 'static,
    R: Send + Sync + 'static,
{
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let p = site.pids().await;
        let pid = match which {
            SiteService::Dnsmasq => p.dnsmasq,
            SiteService::Caddy => p.caddy,
            SiteService::Haproxy => p.haproxy,
        };
        if pid.is_none() {
            return;
        }
        assert!(Instant::now() < until, "{which} still runs after SIGKILL");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn kill9(pid: u32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
}

async fn scenario(client: &NetNs, dir: &Path) {
    let state = dir.join("site");
    let site = LinuxSiteTopology::start(site_config(&state)).await.unwrap();
    let started = site.pids().await;
    assert!(started.dnsmasq.is_some() && started.caddy.is_some());
    assert_eq!(started.haproxy, None, "no service yet: no HAProxy");

    let first = apply_site(&site).await;
    assert!(first.iter().all(|c| *c == Change::Applied), "{first:?}");
    let before = site.pids().await;
    assert!(before.haproxy.is_some(), "started with its first service");
    assert_eq!(before.caddy, started.caddy, "files never reload Caddy");

    // A batch is all or nothing: two MACs on one address refuse it whole.
    let clash: Vec<DhcpReservation> = [(7u8, "worker-7"), (8, "worker-8")]
        .into_iter()
        .map(|(m, name)| DhcpReservation {
            mac: mac(m),
            ip: IpAddr::V4(ip4(20)),
            hostname: name.parse().unwrap(),
        })
        .collect();
    let e = site.reserve_many(&clash).await.unwrap_err().to_string();
    assert!(e.contains("198.51.100.20 is already reserved"), "{e}");
    assert_eq!(site.reservations().await.unwrap().len(), 2);

    // A frontend off the site's load balancer address is refused.
    let e = site
        .set_service(&LoadBalancerService {
            name: "stray".parse().unwrap(),
            bind: "192.0.2.7:6443".parse().unwrap(),
            mode: LbMode::Tcp,
            backends: Vec::new(),
            health_check: None,
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("stray") && e.contains("192.0.2.7:6443"), "{e}");

    // The booting host: its address and the iPXE script URL by DHCP.
    let got = dhcp_ipxe(client, dir, mac(1));
    assert_eq!(got["ip"], "198.51.100.11", "{got:?}");
    assert_eq!(got["hostname"], "master-0", "{got:?}");
    let url = boot_file(&got);
    assert_eq!(url, "http://198.51.100.1:8080/default.ipxe");
    site_lan::client_address(client);
    // That URL through Caddy, then the per-MAC script it chains to (the
    // MAC substituted as iPXE does).
    let default = curl(client, &url);
    assert_eq!(default, DEFAULT_IPXE);
    let chained = default
        .lines()
        .find_map(|l| l.strip_prefix("chain --autofree "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .replace("${netX/mac:hexhyp}", &mac(1).hyphenated());
    assert_eq!(chained, site.url_for(&per_mac_ipxe_path(&mac(1))).as_str());
    let script = curl(client, &chained);
    assert!(script.contains("# Harmony: master-0"), "{script}");
    let log = site.caddy().access_log().await.unwrap();
    assert!(
        log.iter()
            .any(|e| e.client == IpAddr::V4(CLIENT_STATIC.parse().unwrap())
                && e.path.contains(&mac(1).hyphenated())),
        "{log:?}"
    );
    // DNS: the host, the API, a name under the wildcard, the PTR.
    assert_eq!(dig(client, &format!("master-0.{DOMAIN}")), "198.51.100.11");
    assert_eq!(dig(client, &format!("api.{DOMAIN}")), "198.51.100.1");
    assert_eq!(
        dig(client, &format!("console.apps.{DOMAIN}")),
        "198.51.100.1"
    );

    // The same again: nothing changes, nothing is signalled or reloaded.
    let logs = [
        SiteService::Dnsmasq,
        SiteService::Caddy,
        SiteService::Haproxy,
    ]
    .map(|s| (s, site.log_path(s), log_len(&site.log_path(s))));
    let second = apply_site(&site).await;
    assert!(second.iter().all(|c| *c == Change::Unchanged), "{second:?}");
    assert_eq!(site.pids().await, before);
    for (service, path, mark) in &logs {
        let new = log_since(path, *mark);
        let lower = new.to_lowercase();
        assert!(
            !lower.contains("read ") && !lower.contains("reload") && !lower.contains("admin"),
            "{service} was told something on an identical apply: {new}"
        );
    }

    // Supervision: a killed Caddy and dnsmasq come back, and serve.
    kill9(before.caddy.unwrap());
    kill9(before.dnsmasq.unwrap());
    wait_dead(&site, SiteService::Caddy).await;
    wait_dead(&site, SiteService::Dnsmasq).await;
    let restarted = site.ensure_running().await.unwrap();
    assert_eq!(restarted, [SiteService::Dnsmasq, SiteService::Caddy]);
    let after = site.pids().await;
    assert!(after.caddy.is_some() && after.caddy != before.caddy);
    assert!(after.dnsmasq.is_some() && after.dnsmasq != before.dnsmasq);
    assert_eq!(after.haproxy, before.haproxy);
    assert!(site.ensure_running().await.unwrap().is_empty());
    assert!(curl(client, &chained).contains("# Harmony: master-0"));
    assert_eq!(dig(client, &format!("master-1.{DOMAIN}")), "198.51.100.12");

    // Stop: no process of the site is left.
    site.stop().await.unwrap();
    assert_eq!(
        site.pids().await,
        harmony::infra::linux_site::SitePids {
            dnsmasq: None,
            caddy: None,
            haproxy: None
        }
    );
    for pid in [after.dnsmasq, after.caddy, after.haproxy]
        .into_iter()
        .flatten()
    {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} still exists"
        );
    }
    let left = processes_under(&state);
    assert!(left.is_empty(), "left running: {left:?}");
    assert!(
        site.ensure_running().await.unwrap().is_empty(),
        "stopped stays stopped"
    );
}

#[test]
fn a_reserved_host_gets_its_address_script_and_name_then_noop_restart_and_stop() {
    const T: &str =
        "linux_site::a_reserved_host_gets_its_address_script_and_name_then_noop_restart_and_stop";
    let Some(server) = NetNs::new_or_skip("lssrv", T) else {
        return;
    };
    let client = NetNs::new("lscli").unwrap();
    site_lan::link(&server, &client);
    let dir = open_tempdir();
    // A dedicated thread in namespace A runs the site; it ends (and the
    // site with it) before the namespaces are deleted.
    std::thread::scope(|s| {
        s.spawn(|| {
            server.enter_current_thread().unwrap();
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(scenario(&client, dir.path()));
        });
    });
}
