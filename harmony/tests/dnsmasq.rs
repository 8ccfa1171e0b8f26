//! `infra::dnsmasq` against the real programs: dnsmasq in a network
//! namespace the test creates (A), a real DHCP client (busybox `udhcpc`),
//! `curl` over TFTP and `dig` in a second namespace (B) on a veth pair. The
//! addresses (198.51.100.0/24, TEST-NET-2) exist only in those namespaces.
//! Also, without root: the rendered files against golden files
//! (`HARMONY_BLESS=1 cargo test -p harmony --test dnsmasq` writes them) and
//! host names carrying injections, which never reach a file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../harmony-inventory-agent/tests/support/netns.rs"]
mod netns;
#[path = "support/site_lan.rs"]
mod site_lan;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use harmony::domain::{
    Change, DhcpReservation, DhcpServer, DnsName, DnsRecord, DnsServer, Hostname, MacAddress,
    RelativePath, TftpServer,
};
use harmony::infra::dnsmasq::config::{self, SiteRecords};
use harmony::infra::dnsmasq::{DhcpRange, Dnsmasq, DnsmasqConfig, DnsmasqError};
use netns::NetNs;
use site_lan::{DOMAIN, SERVER_IF, boot_file, ip4, open_tempdir};

const IPXE_DIR: &str = "/usr/lib/ipxe";
fn ip(last: u8) -> IpAddr {
    IpAddr::V4(ip4(last))
}

fn mac(last: u8) -> MacAddress {
    format!("02:00:00:00:00:{last:02x}").parse().unwrap()
}

fn host(s: &str) -> Hostname {
    s.parse().unwrap()
}

fn reservation(last_mac: u8, last_ip: u8, name: &str) -> DhcpReservation {
    DhcpReservation {
        mac: mac(last_mac),
        ip: ip(last_ip),
        hostname: host(name),
    }
}

fn site_config(dir: &Path, netns: Option<&str>) -> DnsmasqConfig {
    let mut c = DnsmasqConfig::new(
        dir,
        SERVER_IF.parse().unwrap(),
        DhcpRange {
            start: ip4(100),
            end: ip4(150),
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            lease_time: Duration::from_secs(3600),
        },
        "http://198.51.100.1:8080/default.ipxe".parse().unwrap(),
    );
    c.domain = Some(host(DOMAIN));
    c.router = Some(ip4(1));
    c.netns = netns.map(|n| n.parse().unwrap());
    c
}

/// Two namespaces on a veth pair: A (`srv0`, 198.51.100.1/24) for dnsmasq,
/// B (`cli0`) for the clients. dnsmasq is declared first: it stops before
/// the namespaces go.
struct Lab {
    dnsmasq: Dnsmasq,
    client: NetNs,
    server: NetNs,
    dir: tempfile::TempDir,
}

impl Lab {
    /// `None` (test skipped, loudly) without the right to make namespaces.
    async fn new(test: &str) -> Option<Lab> {
        let server = NetNs::new_or_skip("dmsrv", test)?;
        let client = NetNs::new("dmcli").unwrap();
        site_lan::link(&server, &client);
        let dir = open_tempdir();
        let dnsmasq = Dnsmasq::start(site_config(
            &dir.path().join("dnsmasq"),
            Some(server.name()),
        ))
        .await
        .unwrap();
        Some(Lab {
            dnsmasq,
            client,
            server,
            dir,
        })
    }

    fn config(&self) -> DnsmasqConfig {
        site_config(&self.dir.path().join("dnsmasq"), Some(self.server.name()))
    }

    /// One DHCP exchange from namespace B with `mac` and extra `udhcpc`
    /// options; what the client's script saw on `bound`.
    fn dhcp(&self, mac: MacAddress, extra: &[&str]) -> BTreeMap<String, String> {
        site_lan::dhcp(&self.client, self.dir.path(), mac, extra)
    }

    /// Gives namespace B an address of its own (for TFTP and DNS).
    fn client_address(&self) {
        site_lan::client_address(&self.client);
    }

    /// `dig +short` from namespace B against dnsmasq.
    fn dig(&self, args: &[&str]) -> String {
        site_lan::dig(&self.client, args)
    }

    fn log_len(&self) -> u64 {
        std::fs::metadata(&self.dnsmasq.layout().log).unwrap().len()
    }

    fn lease_file(&self) -> String {
        std::fs::read_to_string(&self.dnsmasq.layout().leases).unwrap_or_default()
    }
}

fn ipxe_installed() {
    assert!(
        Path::new(IPXE_DIR).join(config::BIOS_BOOT_FILE).is_file(),
        "{IPXE_DIR}/{} missing: install Debian's ipxe package (.ci/setup)",
        config::BIOS_BOOT_FILE
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boot_files_by_client_reservations_and_the_dynamic_range() {
    const T: &str = "dnsmasq::boot_files_by_client_reservations_and_the_dynamic_range";
    ipxe_installed();
    let Some(lab) = Lab::new(T).await else { return };
    let d = &lab.dnsmasq;
    assert_eq!(
        d.put_ipxe_loaders(Path::new(IPXE_DIR)).await.unwrap(),
        Change::Applied
    );
    assert_eq!(
        d.put_ipxe_loaders(Path::new(IPXE_DIR)).await.unwrap(),
        Change::Unchanged
    );
    let master0 = reservation(1, 10, "master-0");
    assert_eq!(d.reserve(&master0).await.unwrap(), Change::Applied);
    assert_eq!(d.reservations().await.unwrap(), [master0]);

    // Legacy BIOS PXE: client arch 0.
    let bios = lab.dhcp(mac(1), &["-V", "PXEClient:Arch:00000", "-x", "0x5d:0000"]);
    assert_eq!(bios["ip"], "198.51.100.10", "{bios:?}");
    assert_eq!(bios["hostname"], "master-0");
    assert_eq!(bios["domain"], DOMAIN);
    assert_eq!(boot_file(&bios), config::BIOS_BOOT_FILE, "{bios:?}");
    assert_eq!(bios["siaddr"], "198.51.100.1", "TFTP from dnsmasq itself");
    // UEFI x86-64: client arch 7 and 9.
    for arch in ["0x5d:0007", "0x5d:0009"] {
        let uefi = lab.dhcp(mac(1), &["-x", arch]);
        assert_eq!(uefi["ip"], "198.51.100.10");
        assert_eq!(boot_file(&uefi), config::UEFI_BOOT_FILE, "{arch}: {uefi:?}");
    }
    // iPXE: user class "iPXE" (it also sends its arch).
    let ipxe = lab.dhcp(mac(1), &["-x", "0x5d:0007", "-x", "0x4d:69505845"]);
    assert_eq!(
        boot_file(&ipxe),
        "http://198.51.100.1:8080/default.ipxe",
        "{ipxe:?}"
    );
    // An unknown MAC gets an address from the dynamic range.
    let unknown = lab.dhcp(mac(0x42), &["-x", "0x5d:0000"]);
    let got: Ipv4Addr = unknown["ip"].parse().unwrap();
    assert!((ip4(100)..=ip4(150)).contains(&got), "{unknown:?}");

    // Both leases, read back through the capability.
    let leases = d.leases().await.unwrap();
    let by_mac: BTreeMap<_, _> = leases.iter().map(|l| (l.mac, l)).collect();
    assert_eq!(by_mac[&mac(1)].ip, ip(10), "{leases:?}");
    assert_eq!(
        by_mac[&mac(1)].hostname.as_ref().map(Hostname::as_str),
        Some("master-0")
    );
    assert!(by_mac[&mac(1)].expires.is_some());
    assert_eq!(by_mac[&mac(0x42)].ip, IpAddr::V4(got));

    // TFTP: the BIOS loader, byte for byte.
    lab.client_address();
    let fetched = lab.dir.path().join("fetched.kpxe");
    let out = lab
        .client
        .exec(&[
            "curl",
            "-sS",
            "--max-time",
            "20",
            "-o",
            fetched.to_str().unwrap(),
            "tftp://198.51.100.1/undionly.kpxe",
        ])
        .unwrap();
    assert_eq!(
        std::fs::read(&fetched).unwrap(),
        std::fs::read(Path::new(IPXE_DIR).join(config::BIOS_BOOT_FILE)).unwrap(),
        "{out}"
    );
    // A file put through the capability is served too.
    let path: RelativePath = "extra/hello.txt".parse().unwrap();
    assert_eq!(
        d.put_tftp_file(&path, b"hello\n").await.unwrap(),
        Change::Applied
    );
    let hello = lab.dir.path().join("hello.txt");
    lab.client
        .exec(&[
            "curl",
            "-sS",
            "--max-time",
            "20",
            "-o",
            hello.to_str().unwrap(),
            "tftp://198.51.100.1/extra/hello.txt",
        ])
        .unwrap();
    assert_eq!(std::fs::read(&hello).unwrap(), b"hello\n");

    // Release takes the reservation out; the MAC then gets a dynamic address.
    assert_eq!(d.release(&mac(1)).await.unwrap(), Change::Applied);
    assert_eq!(d.release(&mac(1)).await.unwrap(), Change::Unchanged);
    assert!(d.reservations().await.unwrap().is_empty());
    let released = lab.dhcp(mac(1), &["-x", "0x5d:0000"]);
    let got: Ipv4Addr = released["ip"].parse().unwrap();
    assert!((ip4(100)..=ip4(150)).contains(&got), "{released:?}");

    assert!(d.stop().await.unwrap().is_some());
    assert_eq!(d.pid().await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservations_refused_before_any_file() {
    const T: &str = "dnsmasq::reservations_refused_before_any_file";
    let Some(lab) = Lab::new(T).await else { return };
    let d = &lab.dnsmasq;
    d.reserve(&reservation(1, 10, "master-0")).await.unwrap();
    let before = std::fs::read_to_string(&d.layout().dhcp_hosts).unwrap();
    for (bad, why) in [
        (
            reservation(2, 10, "master-1"),
            "already reserved for 02:00:00:00:00:01",
        ),
        (
            DhcpReservation {
                ip: "fd00::10".parse().unwrap(),
                ..reservation(2, 11, "master-1")
            },
            "not IPv4",
        ),
        (
            DhcpReservation {
                ip: "203.0.113.5".parse().unwrap(),
                ..reservation(2, 11, "master-1")
            },
            "not on the subnet",
        ),
        (
            reservation(2, 11, "master-1.other.example.com"),
            "not in the DHCP domain",
        ),
    ] {
        let e = d.reserve(&bad).await.unwrap_err().to_string();
        assert!(e.contains(why), "{e}");
    }
    // A name qualified with the DHCP domain is fine.
    d.reserve(&reservation(3, 12, "master-2.ocp.example.com"))
        .await
        .unwrap();
    let after = std::fs::read_to_string(&d.layout().dhcp_hosts).unwrap();
    assert_eq!(
        after,
        format!("{before}02:00:00:00:00:03,198.51.100.12,master-2.ocp.example.com\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_answers_the_cluster_names_wildcard_and_ptr() {
    const T: &str = "dnsmasq::dns_answers_the_cluster_names_wildcard_and_ptr";
    let Some(lab) = Lab::new(T).await else { return };
    lab.client_address();
    let d = &lab.dnsmasq;
    let exact = |name: &str, last: u8| DnsRecord {
        name: format!("{name}.{DOMAIN}").parse().unwrap(),
        ip: ip(last),
    };
    let pid = d.pid().await.unwrap();
    let mut records = vec![exact("api", 5), exact("api-int", 5)];
    for (i, last) in [(0, 10), (1, 11), (2, 12)] {
        records.push(exact(&format!("master-{i}"), last));
    }
    for r in &records {
        assert_eq!(d.set_record(r).await.unwrap(), Change::Applied, "{r:?}");
        assert_eq!(d.set_record(r).await.unwrap(), Change::Unchanged, "{r:?}");
    }
    assert_eq!(d.pid().await, Some(pid), "exact names are a SIGHUP");

    // The wildcard needs dnsmasq's main file: a restart.
    let apps = DnsRecord {
        name: format!("*.apps.{DOMAIN}").parse().unwrap(),
        ip: ip(6),
    };
    assert_eq!(d.set_record(&apps).await.unwrap(), Change::Applied);
    let pid2 = d.pid().await.unwrap();
    assert_ne!(pid2, pid, "a wildcard restarts dnsmasq");
    assert_eq!(d.set_record(&apps).await.unwrap(), Change::Unchanged);
    assert_eq!(d.pid().await, Some(pid2));

    assert_eq!(lab.dig(&[&format!("api.{DOMAIN}"), "A"]), "198.51.100.5");
    assert_eq!(
        lab.dig(&[&format!("api-int.{DOMAIN}"), "A"]),
        "198.51.100.5"
    );
    for host in ["anything", "console-openshift-console", "a.b"] {
        assert_eq!(
            lab.dig(&[&format!("{host}.apps.{DOMAIN}"), "A"]),
            "198.51.100.6",
            "{host}"
        );
    }
    for (i, last) in [(0, 10), (1, 11), (2, 12)] {
        let name = format!("master-{i}.{DOMAIN}");
        assert_eq!(lab.dig(&[&name, "A"]), format!("198.51.100.{last}"));
        assert_eq!(
            lab.dig(&["-x", &format!("198.51.100.{last}")]),
            format!("{name}.")
        );
    }
    // Names of the cluster domain nobody set are not forwarded: empty.
    assert_eq!(lab.dig(&[&format!("nothing.{DOMAIN}"), "A"]), "");

    let mut want: Vec<DnsRecord> = records.clone();
    want.push(apps.clone());
    want.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(d.records().await.unwrap(), want);

    // Removal: answered no more.
    let m2: DnsName = format!("master-2.{DOMAIN}").parse().unwrap();
    assert_eq!(d.remove_record(&m2).await.unwrap(), Change::Applied);
    assert_eq!(d.remove_record(&m2).await.unwrap(), Change::Unchanged);
    assert_eq!(lab.dig(&[m2.to_string().as_str(), "A"]), "");
    assert_eq!(d.remove_record(&apps.name).await.unwrap(), Change::Applied);
    assert_eq!(lab.dig(&[&format!("anything.apps.{DOMAIN}"), "A"]), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_change_keeps_leases_and_the_process() {
    const T: &str = "dnsmasq::a_reservation_change_keeps_leases_and_the_process";
    let Some(lab) = Lab::new(T).await else { return };
    let d = &lab.dnsmasq;
    d.reserve(&reservation(1, 10, "master-0")).await.unwrap();
    let first = lab.dhcp(mac(1), &["-x", "0x5d:0000"]);
    assert_eq!(first["ip"], "198.51.100.10");
    let dynamic = lab.dhcp(mac(0x42), &["-x", "0x5d:0000"]);
    let pid = d.pid().await.unwrap();
    let leases_before = lab.lease_file();
    assert!(leases_before.contains("02:00:00:00:00:01 198.51.100.10 master-0"));

    // Identical content: Unchanged, and no signal (dnsmasq logs each re-read).
    let log = lab.log_len();
    assert_eq!(
        d.reserve(&reservation(1, 10, "master-0")).await.unwrap(),
        Change::Unchanged
    );
    assert_eq!(lab.log_len(), log, "nothing was sent to dnsmasq");

    // A second reservation: a SIGHUP, the same process, every lease kept.
    assert_eq!(
        d.reserve(&reservation(2, 11, "master-1")).await.unwrap(),
        Change::Applied
    );
    assert_eq!(d.pid().await, Some(pid), "no restart");
    let leases_after = lab.lease_file();
    for line in leases_before.lines() {
        assert!(leases_after.contains(line), "{line} lost: {leases_after}");
    }
    let leases = d.leases().await.unwrap();
    assert!(leases.iter().any(|l| l.mac == mac(1) && l.ip == ip(10)));
    // Renewals get the same addresses; the new reservation serves at once.
    assert_eq!(
        lab.dhcp(mac(1), &["-r", "198.51.100.10"])["ip"],
        "198.51.100.10"
    );
    assert_eq!(
        lab.dhcp(mac(0x42), &["-r", &dynamic["ip"]])["ip"],
        dynamic["ip"]
    );
    let second = lab.dhcp(mac(2), &[]);
    assert_eq!(second["ip"], "198.51.100.11");
    assert_eq!(second["hostname"], "master-1");
    assert_eq!(d.pid().await, Some(pid));

    // Harmony starts again on the same directory: it reads its records
    // back, and dnsmasq its leases.
    let reservations = d.reservations().await.unwrap();
    d.stop().await.unwrap();
    let again = Dnsmasq::start(lab.config()).await.unwrap();
    assert_eq!(again.reservations().await.unwrap(), reservations);
    let leases = again.leases().await.unwrap();
    assert!(leases.iter().any(|l| l.mac == mac(1) && l.ip == ip(10)));

    // dnsmasq killed behind Harmony's back: the next change starts it again.
    let dead = again.pid().await.unwrap();
    let killed = Command::new("kill")
        .args(["-KILL", &dead.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    for _ in 0..500 {
        if again.pid().await.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(again.pid().await, None, "the killed dnsmasq is reaped");
    assert_eq!(
        again
            .reserve(&reservation(4, 13, "worker-0"))
            .await
            .unwrap(),
        Change::Applied
    );
    let revived = again.pid().await.expect("started again");
    assert_ne!(revived, dead);
    assert_eq!(lab.dhcp(mac(4), &[])["ip"], "198.51.100.13");
    assert_eq!(again.ensure_running().await.unwrap(), None);
    again.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_dnsmasq_refuses_is_never_installed() {
    const T: &str = "dnsmasq::a_configuration_dnsmasq_refuses_is_never_installed";
    let Some(lab) = Lab::new(T).await else { return };
    let d = &lab.dnsmasq;
    let pid = d.pid().await.unwrap();
    let main = std::fs::read_to_string(&d.layout().main).unwrap();
    assert_eq!(
        d.reconfigure(lab.config()).await.unwrap(),
        Change::Unchanged
    );

    // The range's ends on different subnets: dnsmasq's own check says so.
    let mut bad = lab.config();
    bad.dhcp_range.end = Ipv4Addr::new(198, 51, 101, 150);
    let e = d.reconfigure(bad).await.unwrap_err();
    assert!(matches!(e, DnsmasqError::Refused { .. }), "{e:?}");
    assert!(e.to_string().contains("inconsistent DHCP range"), "{e}");
    assert_eq!(std::fs::read_to_string(&d.layout().main).unwrap(), main);
    assert_eq!(d.pid().await, Some(pid), "still the old one, running");

    // A good change restarts dnsmasq with it.
    let mut good = lab.config();
    good.dhcp_range.end = ip4(140);
    assert_eq!(d.reconfigure(good).await.unwrap(), Change::Applied);
    assert!(
        std::fs::read_to_string(&d.layout().main)
            .unwrap()
            .contains("dhcp-range=198.51.100.100,198.51.100.140,")
    );
    let pid2 = d.pid().await.unwrap();
    assert_ne!(pid2, pid);

    // One that passes the check but cannot start (no such interface):
    // dnsmasq's message, and the previous configuration serves again.
    let mut no_if = lab.config();
    no_if.dhcp_range.end = ip4(140);
    no_if.interface = "nosuch0".parse().unwrap();
    let e = d.reconfigure(no_if).await.unwrap_err();
    assert!(e.to_string().contains("unknown interface nosuch0"), "{e}");
    assert!(
        std::fs::read_to_string(&d.layout().main)
            .unwrap()
            .contains(&format!("interface={SERVER_IF}"))
    );
    assert!(d.pid().await.is_some(), "the previous configuration runs");
    let dynamic = lab.dhcp(mac(0x42), &[]);
    assert!(dynamic["ip"].starts_with("198.51.100.1"), "{dynamic:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_errors_carry_dnsmasqs_message() {
    const T: &str = "dnsmasq::startup_errors_carry_dnsmasqs_message";
    let Some(lab) = Lab::new(T).await else { return };
    // The same interface and ports, already served by the lab's dnsmasq.
    let other = open_tempdir();
    let e = Dnsmasq::start(site_config(
        &other.path().join("dnsmasq"),
        Some(lab.server.name()),
    ))
    .await
    .unwrap_err();
    assert!(matches!(e, DnsmasqError::Startup { .. }), "{e:?}");
    assert!(e.to_string().contains("Address already in use"), "{e}");

    let mut no_if = site_config(&other.path().join("d2"), Some(lab.server.name()));
    no_if.interface = "nosuch0".parse().unwrap();
    let e = Dnsmasq::start(no_if).await.unwrap_err();
    assert!(e.to_string().contains("unknown interface nosuch0"), "{e}");

    // Refused before dnsmasq runs at all.
    let mut comma = site_config(&other.path().join("d3"), None);
    comma.ipxe_script_url = "http://198.51.100.1/a,b.ipxe".parse().unwrap();
    let e = Dnsmasq::start(comma).await.unwrap_err();
    assert!(e.to_string().contains("dhcp-boot"), "{e}");
    let mut short = site_config(&other.path().join("d4"), None);
    short.dhcp_range.lease_time = Duration::from_secs(30);
    assert!(Dnsmasq::start(short).await.is_err());
    let bad_dir = site_config(Path::new("/tmp/a dir"), None);
    assert!(Dnsmasq::start(bad_dir).await.is_err());

    // stop() ends it, within the grace.
    assert!(lab.dnsmasq.stop().await.unwrap().is_some());
    assert_eq!(lab.dnsmasq.pid().await, None);
    assert!(lab.dnsmasq.stop().await.unwrap().is_none());
}

/// Strings a hostile client or a careless site file would try.
const INJECTIONS: &[&str] = &[
    "m0\naddress=/evil.example.com/203.0.113.1",
    "m0,198.51.100.66",
    "m0 # comment",
    "m0\r\ndhcp-boot=evil",
    "m0;reboot",
    "$(reboot)",
    "../../etc/passwd",
    "m0\0",
    "m0 198.51.100.66",
    "*.m0",
    "m0/evil",
];

#[test]
fn host_names_with_injections_never_reach_a_file() {
    for bad in INJECTIONS {
        assert!(bad.parse::<Hostname>().is_err(), "{bad:?}");
        if !bad.starts_with("*.") {
            assert!(bad.parse::<DnsName>().is_err(), "{bad:?}");
        }
    }
    assert!("*.m0".parse::<DnsName>().is_ok());
    // A host file changed behind Harmony's back is refused when read back,
    // not passed on.
    let dir = tempfile::tempdir().unwrap();
    let layout = config::Layout::new(dir.path());
    for bad in INJECTIONS {
        std::fs::write(
            &layout.dhcp_hosts,
            format!("02:00:00:00:00:01,198.51.100.10,{bad}\n"),
        )
        .unwrap();
        let e = config::load_records(&layout);
        assert!(e.is_err(), "{bad:?}");
    }
    // Every line of every rendered file is one option or entry made of
    // characters no value can break out of.
    let records = sample_records();
    let c = site_config(Path::new("/var/lib/harmony/dnsmasq"), None);
    for text in [
        config::render_candidate(&c, &records).unwrap(),
        config::render_dhcp_hosts(&records),
        config::render_dns_hosts(&records),
        config::render_wildcards(&records),
    ] {
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            assert!(
                line.bytes().all(|b| b.is_ascii_graphic() || b == b' '),
                "{line:?}"
            );
        }
    }
}

fn sample_records() -> SiteRecords {
    let mut r = SiteRecords::default();
    for (m, last, name) in [
        (1, 10, "master-0"),
        (2, 11, "master-1"),
        (3, 12, "master-2"),
    ] {
        let res = reservation(m, last, name);
        r.reservations.insert(res.mac, res);
        r.hosts.insert(host(&format!("{name}.{DOMAIN}")), ip(last));
    }
    r.hosts.insert(host(&format!("api.{DOMAIN}")), ip(5));
    r.hosts.insert(host(&format!("api-int.{DOMAIN}")), ip(5));
    r.wildcards.insert(host(&format!("apps.{DOMAIN}")), ip(6));
    r
}

fn golden(name: &str, actual: &str) {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("HARMONY_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; generate it with HARMONY_BLESS=1 cargo test -p harmony --test dnsmasq",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{name} differs from its golden file; if intended, rerun with HARMONY_BLESS=1 and review\n--- golden\n{expected}\n--- rendered\n{actual}"
    );
}

#[test]
fn golden_files() {
    let mut c = site_config(Path::new("/var/lib/harmony/dnsmasq"), None);
    c.upstream_dns = vec!["192.0.2.53".parse().unwrap()];
    let records = sample_records();
    golden("dnsmasq.conf", &config::render_main(&c).unwrap());
    golden("dnsmasq-dhcp-hosts", &config::render_dhcp_hosts(&records));
    golden("dnsmasq-dns-hosts", &config::render_dns_hosts(&records));
    golden(
        "dnsmasq-wildcards.conf",
        &config::render_wildcards(&records),
    );
}

#[tokio::test]
async fn the_rendered_candidate_passes_dnsmasq_test() {
    // dnsmasq --test on the full candidate (no network needed).
    let dir = open_tempdir();
    let c = site_config(dir.path(), None);
    let file = dir.path().join("candidate.conf");
    std::fs::write(
        &file,
        config::render_candidate(&c, &sample_records()).unwrap(),
    )
    .unwrap();
    let out = Command::new("dnsmasq")
        .arg("--test")
        .arg("-C")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
