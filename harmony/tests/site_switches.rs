//! The site file's `switches:` built into [`SiteSwitches`]:
//! - against a real, private Open vSwitch (`ovsdb-server` + `ovs-vswitchd`,
//!   userspace datapath, in a network namespace the test creates) with two
//!   bridges, each one `ovs` switch of the site file: a LAG is made on the
//!   bridge its ports are on, a LAG over both is refused and nothing moves;
//! - `contract_*`: Cisco, AOS-CX and OPNsense entries give their backend
//!   the address, port, user, host key and CA the site file says, without
//!   contacting anything (the addresses are loopback listeners that must
//!   see no connection).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../harmony-inventory-agent/tests/support/netns.rs"]
mod netns;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harmony::domain::{
    Change, LacpOptions, LagId, PortMode, Switch, SwitchError, SwitchPort, VlanId,
};
use harmony::infra::cisco::{CliAuth, Platform};
use harmony::infra::ovs::daemons::OvsDaemonsConfig;
use harmony::infra::ovs::{OvsDaemons, OvsName};
use harmony::site::SiteFile;
use harmony::site::plan_view::PlanView;
use harmony::site::switches::{BackendConfig, SiteSwitches};
use harmony::site::topology::{SitePlan, plan};
use netns::NetNs;

const HEAD: &str = r#"
cluster:
  name: lab
  base_domain: example.org
  okd_version: "4.19"
  cluster_network: { cidr: 10.128.0.0/14, host_prefix: 23 }
  service_network: 172.30.0.0/16
  pull_secret_file: /etc/harmony/pull-secret.json
provisioning:
  interface: prov0
  subnet: 192.0.2.0/24
  gateway: 192.0.2.1
  harmony_address: 192.0.2.2
  dhcp_range: { start: 192.0.2.100, end: 192.0.2.199 }
  dns_forwarders: [192.0.2.1]
"#;

const LINUX: &str = r#"services:
  backend: linux
  linux:
    state_dir: /var/lib/harmony
    http_root: /srv/harmony/http
    http_listen: 192.0.2.2:8080
    dns_listen: 192.0.2.2:53
    load_balancer_address: 192.0.2.5
"#;

const SSH: &str = r#"ssh:
  operator_key_file: /root/.ssh/id_ed25519
  cluster_public_key_file: /root/.ssh/id_ed25519.pub
"#;

/// The system id the bootstrap host's bond announces.
const HOST_SYSTEM_ID: &str = "02:00:00:00:00:bb";

/// A host-key fingerprint (any 32 bytes, base64 without padding).
const HOST_KEY: &str = "ssh-ed25519 SHA256:tK/H8tzEV/c29/EWam196aqu/42IWxDTm4pl2wKLHa4";

fn port(s: &str) -> SwitchPort {
    s.parse().unwrap()
}

fn ports(list: &[&str]) -> Vec<SwitchPort> {
    list.iter().map(|p| port(p)).collect()
}

fn vlan(v: u16) -> VlanId {
    VlanId::try_from(v).unwrap()
}

fn lag(l: u16) -> LagId {
    LagId::try_from(l).unwrap()
}

fn site(text: &str) -> SiteFile {
    SiteFile::parse(text, "site.yaml").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

async fn vsctl(d: &OvsDaemons, args: &[&str]) -> String {
    let out = d.vsctl(args).output().await.unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ovs_bridges_from_a_site_file_lag_on_the_right_bridge_and_refuse_across_both() {
    let Some(sw) = NetNs::new_or_skip("sitesw", "two_ovs_bridges") else {
        return;
    };
    sw.ip_ok(&["link", "set", "dev", "lo", "up"]);
    let daemons = OvsDaemons::start(OvsDaemonsConfig {
        netns: Some(sw.name().to_string()),
        ..OvsDaemonsConfig::default()
    })
    .await
    .unwrap();
    for b in ["br-a", "br-b"] {
        daemons
            .add_bridge(&b.parse::<OvsName>().unwrap())
            .await
            .unwrap();
    }
    // Each port a veth whose peer stays in the namespace, up. The
    // bootstrap host's NICs xa1/xa2 are an `lacp=active` bond on a third
    // bridge, `host`: the LACP partner of sw-a's LAG.
    for (p, peer) in [("a1", "xa1"), ("a2", "xa2"), ("b1", "xb1"), ("b2", "xb2")] {
        sw.add_veth(p, peer).unwrap();
    }
    vsctl(
        &daemons,
        &[
            "add-br",
            "host",
            "--",
            "set",
            "bridge",
            "host",
            "datapath_type=netdev",
        ],
    )
    .await;
    vsctl(
        &daemons,
        &[
            "add-bond",
            "host",
            "bond0",
            "xa1",
            "xa2",
            "lacp=active",
            "bond_mode=balance-tcp",
            "other_config:lacp-time=fast",
            &format!("other_config:lacp-system-id=\"{HOST_SYSTEM_ID}\""),
        ],
    )
    .await;
    let db = daemons.db_socket().display().to_string();
    let text = format!(
        r#"{HEAD}{LINUX}switches:
  - {{ name: sw-a, kind: ovs, address: "unix:{db}", bridge: br-a, access_vlan: 10 }}
  - {{ name: sw-b, kind: ovs, address: "unix:{db}", bridge: br-b, access_vlan: 10 }}
hosts:
  bootstrap: 1
  control_plane: 3
  workers: 0
  pinned:
    - mac: 52:54:00:00:00:01
      role: bootstrap
      hostname: boot
      ip: 192.0.2.9
      switch_ports: [ {{ switch: sw-a, port: a1 }}, {{ switch: sw-a, port: a2 }} ]
    - mac: 52:54:00:00:00:02
      role: control-plane
      hostname: master-0
      ip: 192.0.2.10
      switch_ports: [ {{ switch: sw-b, port: b1 }}, {{ switch: sw-b, port: b2 }} ]
    - mac: 52:54:00:00:00:03
      role: control-plane
      hostname: master-1
      ip: 192.0.2.11
      switch_ports: [ {{ switch: sw-a, port: x1 }}, {{ switch: sw-b, port: x1 }} ]
{SSH}"#
    );
    let switches = SiteSwitches::build(&site(&text)).await.unwrap();
    for (name, bridge) in [("sw-a", "br-a"), ("sw-b", "br-b")] {
        let Some(BackendConfig::Ovs(c)) = switches.backend(&name.parse().unwrap()) else {
            panic!("{name} is not ovs: {switches:?}");
        };
        assert_eq!(c.bridge.as_str(), bridge);
        assert_eq!(c.db_socket, daemons.db_socket());
        assert_eq!(c.vswitchd_ctl, daemons.vswitchd_ctl());
    }
    let caps = switches.capabilities();
    assert!(caps.lacp_fallback && caps.reports_lacp_partner);

    // Access on sw-b's ports lands on br-b.
    assert_eq!(
        switches
            .set_ports_access_mode(&ports(&["b1", "b2"]), vlan(10))
            .await
            .unwrap(),
        Change::Applied
    );
    // The LAG of sw-a's ports lands on br-a, verified with its partner
    // (the host's bond) collecting and distributing on both members.
    let with_partner = LacpOptions {
        fallback: false,
        partner_within: Some(Duration::from_secs(30)),
    };
    assert_eq!(
        switches
            .set_ports_lacp_mode(&ports(&["a1", "a2"]), lag(1), vlan(10), with_partner)
            .await
            .unwrap(),
        Change::Applied
    );
    for st in switches
        .get_port_status(&ports(&["a1", "a2"]))
        .await
        .unwrap()
    {
        let p = st
            .partner
            .as_ref()
            .unwrap_or_else(|| panic!("no partner: {st}"));
        assert_eq!(p.system_id, HOST_SYSTEM_ID.parse().unwrap());
        assert!(p.is_forwarding(), "{st}");
    }
    assert_eq!(
        switches
            .set_ports_lacp_mode(&ports(&["a1", "a2"]), lag(1), vlan(10), with_partner)
            .await
            .unwrap(),
        Change::Unchanged
    );
    assert_eq!(vsctl(&daemons, &["port-to-br", "bond1"]).await, "br-a");
    assert_eq!(vsctl(&daemons, &["iface-to-br", "a1"]).await, "br-a");
    assert_eq!(vsctl(&daemons, &["port-to-br", "b1"]).await, "br-b");
    assert_eq!(vsctl(&daemons, &["list-ports", "br-b"]).await, "b1\nb2");

    // A read spans both bridges, in the order asked.
    let before = switches
        .get_port_status(&ports(&["b2", "a1", "b1", "a2"]))
        .await
        .unwrap();
    let modes: Vec<(String, PortMode)> = before
        .iter()
        .map(|s| (s.port.to_string(), s.mode.clone()))
        .collect();
    let access = PortMode::Access { vlan: vlan(10) };
    let member = PortMode::LacpMember { lag: lag(1) };
    assert_eq!(
        modes,
        [
            ("b2".into(), access.clone()),
            ("a1".into(), member.clone()),
            ("b1".into(), access.clone()),
            ("a2".into(), member.clone()),
        ]
    );

    // A LAG over both bridges (an MC-LAG) is refused; nothing moves.
    let config_only = LacpOptions {
        fallback: true,
        partner_within: None,
    };
    let e = switches
        .set_ports_lacp_mode(&ports(&["a2", "b2"]), lag(2), vlan(10), config_only)
        .await
        .unwrap_err();
    assert!(matches!(e, SwitchError::Refused { .. }), "{e}");
    let msg = e.to_string();
    for part in ["sw-a: a2", "sw-b: b2", "MC-LAG"] {
        assert!(msg.contains(part), "{part:?} missing in {msg}");
    }
    let after = switches
        .get_port_status(&ports(&["b2", "a1", "b1", "a2"]))
        .await
        .unwrap();
    assert_eq!(after, before, "a refused change moved ports");
    assert_eq!(vsctl(&daemons, &["list-ports", "br-a"]).await, "bond1");
    // x1 is named on both switches: refused, naming both, nothing sent.
    let e = switches
        .set_ports_access_mode(&ports(&["x1"]), vlan(10))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("sw-a, sw-b") && e.contains("ask that switch alone"),
        "{e}"
    );
    assert_eq!(vsctl(&daemons, &["list-ports", "br-b"]).await, "b1\nb2");

    // A dry run's view of the site (PlanView): the switches' reads answer,
    // every change is refused there, whatever the switch would do.
    let SitePlan::Linux(config) = plan(&site(&text)).unwrap() else {
        panic!("a linux site")
    };
    let view = PlanView::new(&config).unwrap().with_switch(switches);
    assert_eq!(
        view.get_port_status(&ports(&["a1"])).await.unwrap()[0].mode,
        member
    );
    for e in [
        view.set_ports_access_mode(&ports(&["a1", "a2"]), vlan(10))
            .await
            .unwrap_err(),
        view.set_ports_lacp_mode(&ports(&["b1"]), lag(2), vlan(10), LacpOptions::default())
            .await
            .unwrap_err(),
    ] {
        assert!(e.to_string().contains("a dry run changes nothing"), "{e}");
    }
    assert_eq!(vsctl(&daemons, &["port-to-br", "bond1"]).await, "br-a");
    drop(view);
    let switches = SiteSwitches::build(&site(&text)).await.unwrap();

    // Back to access: the bond is gone from br-a, again idempotent.
    for expected in [Change::Applied, Change::Unchanged] {
        assert_eq!(
            switches
                .set_ports_access_mode(&ports(&["a1", "a2"]), vlan(10))
                .await
                .unwrap(),
            expected
        );
    }
    assert_eq!(vsctl(&daemons, &["list-ports", "br-a"]).await, "a1\na2");
    drop(switches);
    daemons.stop().await.unwrap();
}

/// A file of `text` with `mode`.
fn secret_file(dir: &Path, name: &str, text: &str, mode: u32) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p.display().to_string()
}

/// Log lines written while a test runs.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Nothing connected to `l` (non-blocking accept finds no one).
fn untouched(l: &std::net::TcpListener) {
    l.set_nonblocking(true).unwrap();
    let e = l
        .accept()
        .expect_err("a connection was made while building");
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
}

#[tokio::test]
async fn contract_cisco_and_aoscx_entries_configure_their_backends_as_the_site_says() {
    let dir = tempfile::tempdir().unwrap();
    let cisco_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let aos_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cisco_at = cisco_l.local_addr().unwrap();
    let aos_port = aos_l.local_addr().unwrap().port();
    let cisco_login = secret_file(
        dir.path(),
        "leaf1",
        "username=netops\npassword=S3cret-leaf1\n",
        0o600,
    );
    // Readable by others: built, with a warning.
    let aos_login = secret_file(
        dir.path(),
        "leaf2",
        "username=api-user\npassword=S3cret-leaf2\n",
        0o644,
    );
    // A self-signed CA (PEM), only loaded, never used for a connection.
    let pem = rcgen::generate_simple_self_signed(vec!["leaf-2.example".to_string()])
        .unwrap()
        .cert
        .pem();
    let ca = secret_file(dir.path(), "ca.pem", &pem, 0o644);
    let text = format!(
        r#"{HEAD}{LINUX}switches:
  - name: leaf-1
    kind: cisco-nxos
    address: {cisco_at}
    host_key: {HOST_KEY}
    access_vlan: 20
    credentials: {{ file: {cisco_login} }}
  - name: leaf-2
    kind: aruba-aoscx
    address: https://127.0.0.1:{aos_port}
    ca_file: {ca}
    access_vlan: 20
    credentials: {{ file: {aos_login} }}
  - name: leaf-3
    kind: cisco-ios
    address: 127.0.0.1
    host_key: {HOST_KEY}
    access_vlan: 20
    credentials: {{ file: {cisco_login} }}
hosts:
  bootstrap: 1
  control_plane: 3
  workers: 0
{SSH}"#
    );
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    let switches = SiteSwitches::build(&site(&text)).await.unwrap();
    drop(guard);

    let Some(BackendConfig::Cisco(c)) = switches.backend(&"leaf-1".parse().unwrap()) else {
        panic!("leaf-1: {switches:?}");
    };
    assert_eq!(c.name, "leaf-1");
    assert_eq!(c.addr, cisco_at);
    assert_eq!(c.platform, Platform::Nxos);
    assert_eq!(
        format!("ssh-ed25519 {}", c.host_key),
        HOST_KEY,
        "the pinned host key"
    );
    let CliAuth::Password(login) = &c.auth else {
        panic!("leaf-1 auth: {:?}", c.auth);
    };
    assert_eq!((login.user(), login.password()), ("netops", "S3cret-leaf1"));
    assert!(c.lacp_rate_fast);

    let Some(BackendConfig::Cisco(c)) = switches.backend(&"leaf-3".parse().unwrap()) else {
        panic!("leaf-3: {switches:?}");
    };
    assert_eq!(
        c.addr,
        "127.0.0.1:22".parse().unwrap(),
        "port 22 by default"
    );
    assert_eq!(c.platform, Platform::Ios);

    let Some(BackendConfig::AosCx(a)) = switches.backend(&"leaf-2".parse().unwrap()) else {
        panic!("leaf-2: {switches:?}");
    };
    assert_eq!(a.name, "leaf-2");
    assert_eq!(
        a.base_url.as_str().trim_end_matches('/'),
        format!("https://127.0.0.1:{aos_port}")
    );
    assert_eq!(a.login.user(), "api-user");
    assert_eq!(a.site_ca.as_deref(), Some(Path::new(&ca)));

    // Nothing was contacted while building.
    untouched(&cisco_l);
    untouched(&aos_l);
    // The loose file was warned about; no password reached the log, nor
    // the switches' Debug.
    let log = logs.text();
    assert!(
        log.contains("make it 0600") && log.contains("leaf2"),
        "{log}"
    );
    let debug = format!(
        "{switches:?} {:?}",
        switches.backend(&"leaf-1".parse().unwrap())
    );
    for secret in ["S3cret-leaf1", "S3cret-leaf2"] {
        assert!(
            !log.contains(secret) && !debug.contains(secret),
            "{secret} shown"
        );
    }
    // Three switches, one change per switch: a port's switch must be known.
    let e = switches
        .get_port_status(&ports(&["Ethernet1/1"]))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("hosts.pinned[].switch_ports"), "{e}");
}

#[tokio::test]
async fn contract_a_ca_that_is_not_a_certificate_and_missing_credentials_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let bad_ca = secret_file(dir.path(), "ca.pem", "not a certificate\n", 0o644);
    let login = secret_file(dir.path(), "l", "username=u\npassword=p\n", 0o600);
    let text = format!(
        r#"{HEAD}{LINUX}switches:
  - name: leaf-2
    kind: aruba-aoscx
    address: https://127.0.0.1:9
    ca_file: {bad_ca}
    access_vlan: 20
    credentials: {{ file: {login} }}
  - name: leaf-1
    kind: cisco-ios
    address: 127.0.0.1:9
    host_key: {HOST_KEY}
    access_vlan: 20
    credentials: {{ env: {{ username: HARMONY_SITESW_NO_USER, password: HARMONY_SITESW_NO_PW }} }}
hosts:
  bootstrap: 1
  control_plane: 3
  workers: 0
{SSH}"#
    );
    let e = SiteSwitches::build(&site(&text)).await.unwrap_err();
    let msg = e.to_string();
    for part in [
        "site.yaml: ",
        &format!("switches[0].ca_file = {bad_ca}"),
        "switches[1].credentials = env $HARMONY_SITESW_NO_USER / $HARMONY_SITESW_NO_PW",
        "HARMONY_SITESW_NO_USER is not set",
    ] {
        assert!(msg.contains(part), "{part:?} missing in {msg}");
    }
}

#[tokio::test]
async fn contract_an_opnsense_switch_is_the_services_firewall_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = secret_file(
        dir.path(),
        "apikey.txt",
        "key=w86XNZob/8Oq8aC5r0kbNarNtdpoQU781fyoeaOBQsBwkXUt\nsecret=XeD26XVrJ5ilAc/EmglCRC+0j2e57tRsjHwFepOseySWLM53pJASeTA3\n",
        0o600,
    );
    let login = secret_file(dir.path(), "l", "username=u\npassword=p\n", 0o600);
    let fw = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let fw_port = fw.local_addr().unwrap().port();
    let services = format!(
        "services:\n  backend: opnsense\n  opnsense:\n    url: https://127.0.0.1:{fw_port}/\n    api_key: {{ key_file: {key} }}\n"
    );
    let with = |address: &str, services: &str| {
        format!(
            "{HEAD}{services}switches:\n  - {{ name: fw, kind: opnsense, address: \"{address}\", access_vlan: 30, credentials: {{ file: {login} }} }}\nhosts:\n  bootstrap: 1\n  control_plane: 3\n  workers: 0\n{SSH}"
        )
    };
    let ok = SiteSwitches::build(&site(&with(
        &format!("https://127.0.0.1:{fw_port}"),
        &services,
    )))
    .await
    .unwrap();
    let Some(BackendConfig::OpnSense { url, untagged_vlan }) = ok.backend(&"fw".parse().unwrap())
    else {
        panic!("{ok:?}");
    };
    assert!(
        url.as_str()
            .starts_with(&format!("https://127.0.0.1:{fw_port}"))
    );
    assert_eq!(*untagged_vlan, vlan(30));
    // OPNsense LAGG reports no partner: the site says so.
    assert!(!ok.capabilities().reports_lacp_partner);
    untouched(&fw);

    let e = SiteSwitches::build(&site(&with("https://127.0.0.1:1", &services)))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("switches[0].address") && e.contains("services.opnsense.url"),
        "{e}"
    );
    let e = SiteSwitches::build(&site(&with("https://127.0.0.1:1", LINUX)))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("switches[0].kind = opnsense") && e.contains("backend is linux"),
        "{e}"
    );
}

#[tokio::test]
async fn a_site_without_switches_refuses_every_call_naming_switches() {
    let text =
        format!("{HEAD}{LINUX}hosts: {{ bootstrap: 1, control_plane: 3, workers: 0 }}\n{SSH}");
    let switches = SiteSwitches::build(&site(&text)).await.unwrap();
    assert!(switches.is_empty());
    for e in [
        switches.get_port_status(&ports(&["p1"])).await.unwrap_err(),
        switches
            .set_ports_access_mode(&ports(&["p1"]), vlan(10))
            .await
            .unwrap_err(),
        switches
            .set_ports_lacp_mode(
                &ports(&["p1", "p2"]),
                lag(1),
                vlan(10),
                LacpOptions::default(),
            )
            .await
            .unwrap_err(),
    ] {
        let e = e.to_string();
        assert!(
            e.contains("`switches:` is empty") && e.contains("site.yaml"),
            "{e}"
        );
    }
}

#[tokio::test]
async fn contract_addresses_a_kind_cannot_use_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    let nosock = dir.path().join("db.sock");
    // An OVSDB tcp: remote (the LACP state is read through ovs-vswitchd's
    // local control socket), a unix: socket nobody serves.
    let text = format!(
        r#"{HEAD}{LINUX}switches:
  - {{ name: o-tcp, kind: ovs, access_vlan: 10, bridge: br0, address: "tcp:127.0.0.1:{p}" }}
  - {{ name: o-none, kind: ovs, access_vlan: 10, bridge: br0, address: "unix:{}" }}
hosts:
  bootstrap: 1
  control_plane: 3
  workers: 0
{SSH}"#,
        nosock.display()
    );
    let e = SiteSwitches::build(&site(&text)).await.unwrap_err();
    let fields: Vec<&str> = e.problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        ["switches[0].address", "switches[1].address"],
        "{e}"
    );
    let msg = e.to_string();
    for part in [
        format!("switches[0].address = tcp:127.0.0.1:{p}"),
        "ovs-appctl".to_string(),
        format!("no OVSDB socket at {}", nosock.display()),
    ] {
        assert!(msg.contains(&part), "{part:?} missing in {msg}");
    }
    untouched(&l);
}

#[tokio::test]
async fn contract_a_cisco_switch_given_by_name_is_resolved_and_contacted_on_its_first_call() {
    let dir = tempfile::tempdir().unwrap();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    let login = secret_file(dir.path(), "l", "username=netops\npassword=p\n", 0o600);
    // `localhost` comes from /etc/hosts: no DNS server is asked.
    let text = format!(
        r#"{HEAD}{LINUX}switches:
  - name: tor
    kind: cisco-ios
    address: localhost:{p}
    host_key: {HOST_KEY}
    access_vlan: 20
    credentials: {{ file: {login} }}
hosts:
  bootstrap: 1
  control_plane: 3
  workers: 0
{SSH}"#
    );
    let switches = SiteSwitches::build(&site(&text)).await.unwrap();
    let Some(BackendConfig::CiscoByName { host, port, config }) =
        switches.backend(&"tor".parse().unwrap())
    else {
        panic!("{switches:?}");
    };
    assert_eq!((host.as_str(), *port), ("localhost", p));
    assert_eq!(config.platform, Platform::Ios);
    assert!(switches.capabilities().reports_lacp_partner);
    untouched(&l);
    // The first call resolves the name and connects (the listener closes
    // at once, so the call fails, naming the switch).
    // (Non-blocking since `untouched`: polled, at most 10 s.)
    let accepted = tokio::spawn(async move {
        for _ in 0..200 {
            if let Ok((s, _)) = l.accept() {
                drop(s);
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the switch was never contacted");
    });
    let asked = ports(&["Gi1/0/1"]);
    let call = switches.get_port_status(&asked).await;
    accepted.await.unwrap();
    let e = call.unwrap_err().to_string();
    assert!(e.contains("tor"), "{e}");
}
