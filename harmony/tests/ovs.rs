//! The Open vSwitch `Switch` against a real, private Open vSwitch
//! (`ovsdb-server` + `ovs-vswitchd`, userspace datapath) started inside a
//! network namespace the test creates. Hosts are namespaces behind veth
//! pairs; a second bridge with its own `lacp=active` bond plays a host's
//! bonded NICs (this kernel has no `bonding` module). Real dnsmasq hands
//! out addresses, real busybox udhcpc asks for them. Addresses
//! (198.51.100.0/24, TEST-NET-2) exist only inside the namespaces.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../harmony-inventory-agent/tests/support/netns.rs"]
mod netns;

use std::path::Path;
use std::time::{Duration, Instant};

use harmony::domain::{
    Change, LacpOptions, LagId, MacAddress, PortMode, Restore, Switch, SwitchError, SwitchPort,
    VlanId,
};
use harmony::infra::ovs::daemons::OvsDaemonsConfig;
use harmony::infra::ovs::{OpenVSwitch, OvsDaemons, OvsName};
use harmony::infra::process::{Program, Service};
use netns::NetNs;

/// The system id the host's bond announces (set on its bond).
const HOST_SYSTEM_ID: &str = "02:00:00:00:00:aa";
const SERVER_IP: &str = "198.51.100.1";

fn port(s: &str) -> SwitchPort {
    s.parse().unwrap()
}

fn vlan(v: u16) -> VlanId {
    VlanId::try_from(v).unwrap()
}

fn lag(l: u16) -> LagId {
    LagId::try_from(l).unwrap()
}

/// A private Open vSwitch whose `ovs-vswitchd` runs in namespace `sw`,
/// with bridge `sw` as the switch under test.
struct Lab {
    daemons: OvsDaemons,
    switch: OpenVSwitch,
    // Dropped after the daemons (fields drop in order).
    sw: NetNs,
}

impl Lab {
    async fn start(test: &str) -> Option<Lab> {
        let sw = NetNs::new_or_skip("ovs", test)?;
        sw.ip_ok(&["link", "set", "dev", "lo", "up"]);
        let daemons = OvsDaemons::start(OvsDaemonsConfig {
            netns: Some(sw.name().to_string()),
            ..OvsDaemonsConfig::default()
        })
        .await
        .unwrap();
        let bridge: OvsName = "sw".parse().unwrap();
        daemons.add_bridge(&bridge).await.unwrap();
        let switch = daemons.switch(bridge);
        Some(Lab {
            daemons,
            switch,
            sw,
        })
    }

    /// A veth pair `outer` (in the switch's namespace, to be bridged) /
    /// `inner` moved into `ns` with `addr`; checksum offload off on the
    /// inner end (the userspace datapath forwards what it reads from a
    /// packet socket: a checksum left to the NIC would stay unfilled).
    fn plug(&self, ns: &NetNs, outer: &str, inner: &str, addr: Option<&str>) {
        self.sw.add_veth(outer, inner).unwrap();
        self.sw.move_link(inner, ns).unwrap();
        ns.ip_ok(&["link", "set", "dev", inner, "up"]);
        ns.ip_ok(&["link", "set", "dev", "lo", "up"]);
        no_tx_offload(ns, inner);
        if let Some(a) = addr {
            ns.ip_ok(&["addr", "add", a, "dev", inner]);
        }
    }

    async fn vsctl(&self, args: &[&str]) {
        self.daemons.vsctl(args).run().await.unwrap();
    }
}

fn no_tx_offload(ns: &NetNs, iface: &str) {
    ns.exec(&["ethtool", "-K", iface, "tx", "off"]).unwrap();
}

/// dnsmasq as a DHCP server only, on `iface` in `ns`.
fn start_dnsmasq(ns: &NetNs, iface: &str, dir: &Path) -> Service {
    let leases = dir.join("leases");
    let pid = dir.join("dnsmasq.pid");
    Program::new("ip")
        .args([
            "netns",
            "exec",
            ns.name(),
            "dnsmasq",
            "--keep-in-foreground",
        ])
        .args([
            "--conf-file=/dev/null",
            "--port=0",
            "--bind-interfaces",
            "--user=root",
            "--log-dhcp",
            "--log-facility=-",
        ])
        .arg(format!("--interface={iface}"))
        .arg("--dhcp-range=198.51.100.100,198.51.100.150,255.255.255.0,1h")
        .arg(format!("--dhcp-leasefile={}", leases.display()))
        .arg(format!("--pid-file={}", pid.display()))
        .start(&dir.join("dnsmasq.log"))
        .unwrap()
}

/// One DHCP exchange with busybox udhcpc on `iface` in `ns`: the address
/// leased, or `None` when no server answered within `tries` seconds.
async fn dhcp(ns: &NetNs, iface: &str, dir: &Path, tries: u32) -> Option<String> {
    let script = dir.join("udhcpc.script");
    std::fs::write(
        &script,
        "#!/bin/sh\n[ \"$1\" = bound ] && echo \"BOUND $ip\"\nexit 0\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = Program::new("ip")
        .args(["netns", "exec", ns.name(), "udhcpc", "-f", "-q", "-n"])
        .args(["-i", iface, "-T", "1", "-A", "1"])
        .arg("-t")
        .arg(tries.to_string())
        .arg("-s")
        .arg(&script)
        .timeout(Duration::from_secs(u64::from(tries) * 2 + 10))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("BOUND "))
        .map(str::to_string)
}

fn in_pool(ip: &str) -> bool {
    ip.strip_prefix("198.51.100.")
        .and_then(|n| n.parse::<u8>().ok())
        .is_some_and(|n| (100..=150).contains(&n))
}

/// Pings `to` from `ns` (busybox's ping, which comes with udhcpc) until
/// one answer, at most `tries` pings of 1 s.
async fn ping(ns: &NetNs, to: &str, tries: u32) -> bool {
    for _ in 0..tries {
        let ok = Program::new("ip")
            .args([
                "netns",
                "exec",
                ns.name(),
                "busybox",
                "ping",
                "-c",
                "1",
                "-W",
                "1",
                to,
            ])
            .timeout(Duration::from_secs(5))
            .run()
            .await
            .is_ok();
        if ok {
            return true;
        }
    }
    false
}

const TEST_ROUND_TRIP: &str = "ovs::access_lacp_access_round_trip_with_real_dhcp_and_partner";

/// (a) access ports pass DHCP (and a port in another VLAN does not);
/// (b) LACP with a real partner bond: both members see it collecting and
/// distributing, its system id, and traffic passes; (c) back to access
/// mode a PXE-booting host (plain NIC) gets DHCP again; (d) every second
/// set of the same mode is Unchanged. And a LAG with fallback verifies on
/// its configuration while no partner speaks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_lacp_access_round_trip_with_real_dhcp_and_partner() {
    let Some(lab) = Lab::start(TEST_ROUND_TRIP).await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let sw = &lab.switch;

    // The DHCP server behind access port p-srv; a client behind p-cli.
    let srv = NetNs::new("ovs-srv").unwrap();
    let cli = NetNs::new("ovs-cli").unwrap();
    lab.plug(&srv, "p-srv", "d0", Some(&format!("{SERVER_IP}/24")));
    lab.plug(&cli, "p-cli", "c0", None);
    let _dnsmasq = start_dnsmasq(&srv, "d0", tmp.path());

    // (a) Access mode, same VLAN: a lease.
    let both = [port("p-srv"), port("p-cli")];
    assert_eq!(
        sw.set_ports_access_mode(&both, vlan(10)).await.unwrap(),
        Change::Applied
    );
    // (d) Again: nothing to do.
    assert_eq!(
        sw.set_ports_access_mode(&both, vlan(10)).await.unwrap(),
        Change::Unchanged
    );
    let st = sw.get_port_status(&both).await.unwrap();
    for s in &st {
        assert_eq!(s.mode, PortMode::Access { vlan: vlan(10) }, "{s}");
        assert!(s.admin_up && s.oper_up, "{s}");
        assert_eq!(s.lag, None);
        assert_eq!(s.partner, None);
        assert_eq!(s.fault, None);
    }
    let leased = dhcp(&cli, "c0", tmp.path(), 8).await;
    assert!(
        leased.as_deref().is_some_and(in_pool),
        "no lease through access ports: {leased:?}"
    );
    // The client in VLAN 20: the switch really separates VLANs.
    sw.set_ports_access_mode(&[port("p-cli")], vlan(20))
        .await
        .unwrap();
    assert_eq!(
        dhcp(&cli, "c0", tmp.path(), 2).await,
        None,
        "a lease across VLANs"
    );

    // (b) The host: bridge `host` with an LACP bond over ha/hb (the host's
    // two NICs), and its OS behind port hp.
    let hostns = NetNs::new("ovs-host").unwrap();
    lab.vsctl(&[
        "add-br",
        "host",
        "--",
        "set",
        "bridge",
        "host",
        "datapath_type=netdev",
    ])
    .await;
    for (s, h) in [("swa", "ha"), ("swb", "hb")] {
        lab.sw.add_veth(s, h).unwrap();
    }
    lab.plug(&hostns, "hp", "h0", Some("198.51.100.20/24"));
    lab.vsctl(&["add-port", "host", "hp"]).await;
    lab.vsctl(&[
        "add-bond",
        "host",
        "bond0",
        "ha",
        "hb",
        "lacp=active",
        "bond_mode=balance-tcp",
        "other_config:lacp-time=fast",
        &format!("other_config:lacp-system-id=\"{HOST_SYSTEM_ID}\""),
    ])
    .await;

    let members = [port("swa"), port("swb")];
    let with_partner = LacpOptions {
        fallback: false,
        partner_within: Some(Duration::from_secs(30)),
    };
    assert_eq!(
        sw.set_ports_lacp_mode(&members, lag(1), vlan(10), with_partner)
            .await
            .unwrap(),
        Change::Applied
    );
    let host_id: MacAddress = HOST_SYSTEM_ID.parse().unwrap();
    let st = sw.get_port_status(&members).await.unwrap();
    for s in &st {
        assert_eq!(s.mode, PortMode::LacpMember { lag: lag(1) }, "{s}");
        assert_eq!(s.lag, Some(lag(1)));
        assert_eq!(s.vlan, Some(vlan(10)));
        let p = s
            .partner
            .as_ref()
            .unwrap_or_else(|| panic!("no partner: {s}"));
        assert_eq!(p.system_id, host_id, "{s}");
        assert!(p.collecting && p.distributing, "{s}");
    }
    assert!(
        ping(&hostns, SERVER_IP, 10).await,
        "no traffic through the negotiated LAG"
    );
    // (d) Again: nothing to do.
    assert_eq!(
        sw.set_ports_lacp_mode(&members, lag(1), vlan(10), with_partner)
            .await
            .unwrap(),
        Change::Unchanged
    );

    // (c) The host reboots to PXE: its firmware speaks no LACP and DHCPs on
    // one NIC. The switch goes back to access first.
    assert_eq!(
        sw.set_ports_access_mode(&members, vlan(10)).await.unwrap(),
        Change::Applied
    );
    lab.vsctl(&["del-port", "host", "bond0", "--", "add-port", "host", "ha"])
        .await;
    let leased = dhcp(&hostns, "h0", tmp.path(), 8).await;
    assert!(
        leased.as_deref().is_some_and(in_pool),
        "no PXE-time lease back in access mode: {leased:?}"
    );
    assert_eq!(
        sw.set_ports_access_mode(&members, vlan(10)).await.unwrap(),
        Change::Unchanged
    );

    // A LAG with fallback, no partner: verified on its configuration.
    let fallback = LacpOptions {
        fallback: true,
        partner_within: None,
    };
    assert_eq!(
        sw.set_ports_lacp_mode(&members, lag(4), vlan(10), fallback)
            .await
            .unwrap(),
        Change::Applied
    );
    let st = sw.get_port_status(&members).await.unwrap();
    assert!(
        st.iter()
            .all(|s| s.mode == PortMode::LacpMember { lag: lag(4) } && s.partner.is_none()),
        "{st:?}"
    );
    // Asking for a partner that is not there fails, and puts the LAG back.
    let e = sw
        .set_ports_lacp_mode(
            &members,
            lag(4),
            vlan(10),
            LacpOptions {
                fallback: false,
                partner_within: Some(Duration::from_secs(3)),
            },
        )
        .await
        .unwrap_err();
    let SwitchError::ChangeFailed(failure) = &e else {
        panic!("{e}");
    };
    assert_eq!(failure.restore, Restore::Restored, "{e}");
    assert!(
        failure
            .mismatches
            .iter()
            .any(|m| m.contains("no current LACP partner")),
        "{e}"
    );
    let bond = lab
        .daemons
        .appctl(&["bond/show", "bond4"])
        .run()
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&bond.stdout).contains("lacp_fallback_ab: true"),
        "the fallback LAG was put back as it was"
    );
    assert_eq!(
        sw.set_ports_access_mode(&members, vlan(10)).await.unwrap(),
        Change::Applied
    );

    lab.daemons.stop().await.unwrap();
}

const TEST_RESTORE: &str = "ovs::a_change_that_does_not_hold_is_undone_and_named";

/// (e) The read back disagrees (a port the switch cannot open): the ports
/// are put back as they were, and the error names the switch, the ports,
/// the wanted and the found state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_does_not_hold_is_undone_and_named() {
    let Some(lab) = Lab::start(TEST_RESTORE).await else {
        return;
    };
    let sw = &lab.switch;
    let peer = NetNs::new("ovs-peer").unwrap();
    lab.plug(&peer, "swc", "c0", None);
    assert_eq!(
        sw.set_ports_access_mode(&[port("swc")], vlan(10))
            .await
            .unwrap(),
        Change::Applied
    );

    // ghost0 is no device: OVS takes the row but cannot open the port.
    let asked = [port("swc"), port("ghost0")];
    let started = Instant::now();
    let e = sw
        .set_ports_lacp_mode(&asked, lag(2), vlan(30), LacpOptions::default())
        .await
        .unwrap_err();
    let text = e.to_string();
    for part in [
        "switch ovs bridge sw",
        "ports swc, ghost0",
        "wanted admin up, lacp member of lag 2 vlan 30",
        "found swc: ",
        "lacp member of lag 2",
        "ghost0: admin down",
        "could not open network device ghost0",
        "put back as they were",
    ] {
        assert!(text.contains(part), "{part:?} missing in: {text}");
    }
    let SwitchError::ChangeFailed(failure) = &e else {
        panic!("{e}");
    };
    assert_eq!(failure.restore, Restore::Restored);
    assert!(
        failure
            .found
            .0
            .iter()
            .any(|s| s.mode == PortMode::LacpMember { lag: lag(2) }),
        "the found state is the changed one: {e}"
    );
    // A fault is final: no waiting for the settle time.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    let st = sw.get_port_status(&asked).await.unwrap();
    assert_eq!(st[0].mode, PortMode::Access { vlan: vlan(10) }, "{}", st[0]);
    assert!(st[0].admin_up);
    assert_eq!(st[1].mode, PortMode::Detached, "{}", st[1]);
    let ports = lab
        .daemons
        .vsctl(&["list-ports", "sw"])
        .run()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ports.stdout).trim(), "swc");

    // Access mode on a port the switch cannot open: undone too.
    let e = sw
        .set_ports_access_mode(&[port("ghost1")], vlan(10))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("ghost1: fault"), "{e}");
    let ports = lab
        .daemons
        .vsctl(&["list-ports", "sw"])
        .run()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ports.stdout).trim(), "swc");

    // Refused before anything is done: a LAG that would drop a member it
    // has, a port on another bridge.
    lab.vsctl(&[
        "add-br",
        "other",
        "--",
        "set",
        "bridge",
        "other",
        "datapath_type=netdev",
    ])
    .await;
    lab.sw.add_veth("oa", "ob").unwrap();
    lab.vsctl(&["add-port", "other", "oa"]).await;
    let e = sw
        .set_ports_access_mode(&[port("oa")], vlan(10))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, SwitchError::Refused { reason, .. } if reason.contains("on bridge other")),
        "{e}"
    );
    lab.daemons.stop().await.unwrap();
}

/// (f) Hostile or out-of-range values never become values, and names a
/// switch could hold but Open vSwitch cannot are refused before any
/// command runs.
#[tokio::test]
async fn hostile_values_are_refused() {
    for bad in ["", "a b", "x;reboot", "$(id)", "a'b", "tag=5", "-x", "p\n1"] {
        assert!(bad.parse::<SwitchPort>().is_err(), "{bad:?}");
    }
    for bad in [0u16, 4095, 4096] {
        assert!(VlanId::try_from(bad).is_err(), "{bad}");
    }
    assert!(LagId::try_from(0).is_err());
    // A valid switch port name Open vSwitch does not take: refused with
    // no daemon at all behind the switch (nothing is run).
    let sw = OpenVSwitch::new(harmony::infra::ovs::OvsConfig::new(
        "sw".parse().unwrap(),
        "/nonexistent/db.sock".into(),
        "/nonexistent/ovs-vswitchd.ctl".into(),
    ));
    let e = sw
        .set_ports_access_mode(&[port("1/1/3")], vlan(10))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, SwitchError::Refused { .. }) && e.to_string().contains("1/1/3"),
        "{e}"
    );
    let e = sw
        .set_ports_access_mode(&[port("a"), port("a")], vlan(10))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("twice"), "{e}");
}
