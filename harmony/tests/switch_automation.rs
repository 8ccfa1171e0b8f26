//! `SwitchAutomationScore` on the fake site (pure logic: the plan, Noop,
//! undo, crash and resume through the generic saga harness; a bond that is
//! not up; a miscabled host; a host whose cabling is in question), and the
//! bond status command over a real sshd lives in `tests/ssh.rs`. The real
//! Open vSwitch round trip is in `tests/switch_automation_ovs.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use harmony::domain::port_map::{ConfiguredPort, HostCabling, SwitchIdentity, map_ports};
use harmony::domain::{
    EventBus, HostId, Interpret, Inventory, LacpOptions, LagId, MacAddress, PortMode, RemoteHost,
    Score, Switch, SwitchPort, VlanId,
};
use harmony::infra::fakes::harness::check_saga;
use harmony::infra::fakes::{Capability, FAKE_SWITCH_SYSTEM, FakeBond, FakeSite, SiteState};
use harmony::modules::switch_automation::{HostSwitchPlan, PortGoal, SwitchAutomationScore};
use harmony::store::SqliteStore;

fn port(s: &str) -> SwitchPort {
    s.parse().unwrap()
}

fn ports(list: &[&str]) -> Vec<SwitchPort> {
    list.iter().map(|s| port(s)).collect()
}

fn vlan(v: u16) -> VlanId {
    VlanId::try_from(v).unwrap()
}

fn lag(l: u16) -> LagId {
    LagId::try_from(l).unwrap()
}

fn mac(n: u8) -> MacAddress {
    MacAddress::new([0x02, 0, 0, 0, 0xb0, n])
}

/// Host `n` at a documentation address nothing contacts.
fn host(n: u8) -> RemoteHost {
    RemoteHost::discovery(
        HostId::from_macs(&[mac(n)]).unwrap(),
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100 + n)),
    )
}

fn bond(n: u8, slaves: &[(&str, &str)], up: bool) -> FakeBond {
    FakeBond {
        name: "bond0".parse().unwrap(),
        system_mac: mac(n),
        slaves: slaves
            .iter()
            .map(|(s, p)| (s.parse().unwrap(), port(p)))
            .collect(),
        up,
    }
}

fn lacp_goal(l: u16) -> PortGoal {
    PortGoal::Lacp {
        lag: lag(l),
        bond: "bond0".parse().unwrap(),
        slaves: vec!["eno1".parse().unwrap(), "eno2".parse().unwrap()],
    }
}

/// A site where host 1's ports p1/p2 are already a LAG (its OS is up, a
/// reinstall is coming), host 2's p3/p4 are access ports and its installed
/// OS has bond0 up, host 3's p5 is in the default VLAN 1.
async fn lived_in_site() -> SiteState {
    let mut state = SiteState::default();
    let b1 = bond(1, &[("eno1", "p1"), ("eno2", "p2")], true);
    let b2 = bond(2, &[("eno1", "p3"), ("eno2", "p4")], true);
    state.bonds.insert(host(1).ip, b1);
    state.bonds.insert(host(2).ip, b2);
    // Put host 1's ports in lag 1 the way the fake switch itself does.
    let site = FakeSite::with_state(state);
    site.set_ports_lacp_mode(
        &ports(&["p1", "p2"]),
        lag(1),
        vlan(10),
        LacpOptions::default(),
    )
    .await
    .unwrap();
    site.state()
}

/// Host 2's bond up on p3/p4 (eno1/eno2), and a score putting `on` into
/// LAG 2 for host 2, polling every `poll` for at most `bond_within`.
fn host2_bonded_and_lacp_on(
    on: &[&str],
    poll: Duration,
    bond_within: Duration,
) -> (SiteState, SwitchAutomationScore) {
    let mut state = SiteState::default();
    state
        .bonds
        .insert(host(2).ip, bond(2, &[("eno1", "p3"), ("eno2", "p4")], true));
    let mut score = SwitchAutomationScore::new(
        vlan(10),
        vec![HostSwitchPlan {
            host: host(2),
            ports: ports(on),
            goal: lacp_goal(2),
        }],
    );
    score.poll = poll;
    score.bond_within = bond_within;
    (state, score)
}

fn inventory() -> Inventory {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.keep().join("inv.sqlite3")).unwrap());
    Inventory::new(store, EventBus::default())
}

fn score() -> SwitchAutomationScore {
    let mut s = SwitchAutomationScore::new(
        vlan(10),
        vec![
            HostSwitchPlan {
                host: host(1),
                ports: ports(&["p1", "p2"]),
                goal: PortGoal::AccessBeforePxeReboot,
            },
            HostSwitchPlan {
                host: host(2),
                ports: ports(&["p3", "p4"]),
                goal: lacp_goal(2),
            },
            HostSwitchPlan {
                host: host(3),
                ports: ports(&["p5"]),
                goal: PortGoal::Pxe,
            },
        ],
    );
    s.poll = Duration::from_millis(1);
    s.bond_within = Duration::from_millis(50);
    s
}

#[tokio::test]
async fn switch_automation_passes_the_saga_harness() {
    let state = lived_in_site().await;
    let report = check_saga(&score(), || {
        let state = state.clone();
        async move { (inventory(), FakeSite::with_state(state)) }
    })
    .await
    .unwrap();
    // Host 1 to access, host 2 to LACP, host 3 to VLAN 10.
    assert_eq!(report.changes, 3, "{report:?}");
    assert_eq!(report.failures_injected, 3);
    assert!(report.crashes_injected >= 8, "{report:?}");
}

#[tokio::test]
async fn the_plan_names_each_change_and_a_second_run_is_a_noop() {
    let site = FakeSite::with_state(lived_in_site().await);
    let inv = inventory();
    let interpret: Box<dyn Interpret<FakeSite>> = score().create_interpret();
    let plan = interpret.plan(&inv, &site).await.unwrap();
    let text = plan.to_string();
    assert_eq!(plan.changes.len(), 3, "{text}");
    assert!(
        text.contains("ports p1, p2 to access vlan 10 before its PXE reboot"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "ports p3, p4 to lacp lag 2 vlan 10, verified: partner {} (bond bond0)",
            mac(2)
        )),
        "{text}"
    );
    assert!(
        text.contains("ports p5 to access vlan 10 for discovery and PXE"),
        "{text}"
    );
    assert_eq!(site.mutating_calls(), 0, "the plan changed nothing");

    let outcome = interpret.execute(&inv, &site).await.unwrap();
    assert!(!outcome.is_noop(), "{outcome}");
    let out = outcome.to_string();
    assert!(
        out.contains(&format!(
            "partner {} collecting and distributing on every member; bond bond0 aggregator 1 \
             partner {FAKE_SWITCH_SYSTEM}",
            mac(2)
        )),
        "{out}"
    );
    let st = site
        .get_port_status(&ports(&["p1", "p3", "p5"]))
        .await
        .unwrap();
    assert_eq!(st[0].mode, PortMode::Access { vlan: vlan(10) });
    assert_eq!(st[1].mode, PortMode::LacpMember { lag: lag(2) });
    assert_eq!(st[1].partner.as_ref().unwrap().system_id, mac(2));
    assert_eq!(st[2].mode, PortMode::Access { vlan: vlan(10) });

    let again = interpret.execute(&inv, &site).await.unwrap();
    assert!(again.is_noop(), "{again}");
    assert!(interpret.plan(&inv, &site).await.unwrap().is_empty());
}

#[tokio::test]
async fn lacp_waits_for_the_installed_os_bond_and_changes_nothing_before() {
    let mut state = SiteState::default();
    state.bonds.insert(
        host(2).ip,
        bond(2, &[("eno1", "p3"), ("eno2", "p4")], false),
    );
    let site = FakeSite::with_state(state.clone());
    let inv = inventory();
    let mut one = SwitchAutomationScore::new(
        vlan(10),
        vec![HostSwitchPlan {
            host: host(2),
            ports: ports(&["p3", "p4"]),
            goal: lacp_goal(2),
        }],
    );
    // The bond is waited for (the host may still be installing): briefly.
    one.bond_within = Duration::from_millis(30);
    one.poll = Duration::from_millis(5);
    let plan = Score::<FakeSite>::create_interpret(&one)
        .plan(&inv, &site)
        .await
        .unwrap()
        .to_string();
    assert!(
        plan.contains("once its installed OS has bond bond0 up"),
        "{plan}"
    );
    let interpret: Box<dyn Interpret<FakeSite>> = one.create_interpret();
    let e = interpret.execute(&inv, &site).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("bond bond0 is not up (MII status down"),
        "{e}"
    );
    assert_eq!(site.mutating_calls(), 0);
    assert_eq!(site.state(), state);

    // A host without the bond at all: the command's error is shown.
    let site = FakeSite::new();
    let e = interpret.execute(&inv, &site).await.unwrap_err();
    assert!(
        e.to_string().contains(
            "cannot read bond bond0 (exit 1): cat: /proc/net/bonding/bond0: No such file"
        ),
        "{e}"
    );
}

/// A LAG being formed drops frames for a moment: one SSH read of the
/// host's bond that fails, whichever it is (before or after the ports
/// change), is retried within the wait and the step still ends with the
/// LAG verified from both ends.
#[tokio::test]
async fn one_failed_bond_read_while_the_lag_forms_is_retried() {
    for n in 1..=3 {
        let (state, one) = host2_bonded_and_lacp_on(
            &["p3", "p4"],
            Duration::from_millis(5),
            Duration::from_secs(5),
        );
        let site = FakeSite::with_state(state);
        site.fail_at(Capability::RemoteShell, n);
        let interpret: Box<dyn Interpret<FakeSite>> = one.create_interpret();
        let outcome = interpret
            .execute(&inventory(), &site)
            .await
            .unwrap_or_else(|e| panic!("shell call {n} failing: {e}"));
        assert!(
            outcome.to_string().contains("lacp lag 2"),
            "shell call {n} failing: {outcome}"
        );
        let st = site.get_port_status(&ports(&["p3", "p4"])).await.unwrap();
        assert!(
            st.iter()
                .all(|p| p.to_string().contains("lacp member of lag 2")),
            "shell call {n} failing: {st:?}"
        );
    }
}

#[tokio::test]
async fn a_miscabled_host_is_refused_by_the_partner_check_and_its_ports_put_back() {
    // The plan says host 2 is on p5/p6, but host 4's bond is cabled there.
    let mut state = SiteState::default();
    state
        .bonds
        .insert(host(2).ip, bond(2, &[("eno1", "p3"), ("eno2", "p4")], true));
    state
        .bonds
        .insert(host(4).ip, bond(4, &[("eno1", "p5"), ("eno2", "p6")], true));
    let site = FakeSite::with_state(state.clone());
    let inv = inventory();
    let wrong = SwitchAutomationScore::new(
        vlan(10),
        vec![HostSwitchPlan {
            host: host(2),
            ports: ports(&["p5", "p6"]),
            goal: lacp_goal(2),
        }],
    );
    let interpret: Box<dyn Interpret<FakeSite>> = wrong.create_interpret();
    let e = interpret.execute(&inv, &site).await.unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains(&format!(
            "p5: partner {} is not host {}'s bond bond0 (system id {})",
            mac(4),
            host(2),
            mac(2)
        )),
        "{text}"
    );
    assert_eq!(site.state(), state, "the ports were put back: {text}");
}

#[tokio::test]
async fn a_host_whose_cabling_is_in_question_gets_no_plan() {
    let switches = [SwitchIdentity {
        name: "leaf-1".into(),
        chassis_id: None,
        system_name: Some("leaf-1".into()),
    }];
    let h = host(2);
    let mut nic = harmony::domain::hardware::Nic::new("eno1".parse().unwrap());
    nic.mac = Some(mac(2));
    nic.lldp = Some(harmony::domain::hardware::Lldp {
        chassis_id: Some(harmony::domain::SafeText::new("02:aa:00:00:00:01")),
        port_id: Some(harmony::domain::SafeText::new("p9")),
        system_name: Some(harmony::domain::SafeText::new("leaf-1")),
        port_description: None,
    });
    let configured = [ConfiguredPort {
        at: harmony::domain::port_map::CabledPort {
            switch: "leaf-1".into(),
            port: port("p3"),
        },
        nic: None,
    }];
    let map = map_ports(
        &switches,
        &[HostCabling {
            host: &h.id,
            nics: std::slice::from_ref(&nic),
            configured: &configured,
        }],
    );
    let e = HostSwitchPlan::from_map(&map, "leaf-1", h.clone(), lacp_goal(2)).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains(&format!(
            "NIC {} sees leaf-1:p9 over LLDP, but the site file says leaf-1:p3",
            mac(2)
        )),
        "{text}"
    );
    // Agreeing sources give the plan.
    let map = map_ports(
        &switches,
        &[HostCabling {
            host: &h.id,
            nics: &[],
            configured: &configured,
        }],
    );
    let plan = HostSwitchPlan::from_map(&map, "leaf-1", h, PortGoal::Pxe).unwrap();
    assert_eq!(plan.ports, ports(&["p3"]));
}

#[tokio::test]
async fn a_port_given_to_two_hosts_is_refused_before_anything_runs() {
    let mut s = score();
    s.hosts[2].ports = ports(&["p3"]);
    let site = FakeSite::with_state(lived_in_site().await);
    let interpret: Box<dyn Interpret<FakeSite>> = s.create_interpret();
    let e = interpret.execute(&inventory(), &site).await.unwrap_err();
    assert!(e.to_string().contains("port p3 is given to host"), "{e}");
    assert_eq!(site.calls().len(), 0);
}

#[tokio::test]
async fn a_switch_that_reports_no_partner_is_verified_from_the_host_bond() {
    let site = || async { FakeSite::with_state(lived_in_site().await).hiding_lacp_partner() };
    let s = site().await;
    assert!(!s.capabilities().reports_lacp_partner);
    assert!(
        FakeSite::new().capabilities().reports_lacp_partner,
        "the plain fake reports partners"
    );
    let inv = inventory();
    let interpret: Box<dyn Interpret<FakeSite>> = score().create_interpret();
    let text = interpret.plan(&inv, &s).await.unwrap().to_string();
    assert!(
        text.contains(&format!(
            "ports p3, p4 to lacp lag 2 vlan 10, verified: from the host's side only (the \
             switch reports no LACP partner): bond bond0 ({}) aggregating every slave with one \
             partner collecting and distributing",
            mac(2)
        )),
        "{text}"
    );
    // The switch is never asked to wait for a partner it cannot report
    // (the fake refuses that as unsupported, as OPNsense does).
    let out = interpret.execute(&inv, &s).await.unwrap().to_string();
    assert!(
        out.contains(&format!(
            "ports p3, p4 are lacp lag 2 vlan 10; the switch reports no LACP partner, verified \
             from the host's side; bond bond0 aggregator 1 partner {FAKE_SWITCH_SYSTEM}"
        )),
        "{out}"
    );
    let st = s.get_port_status(&ports(&["p3", "p4"])).await.unwrap();
    assert!(
        st.iter()
            .all(|p| p.mode == PortMode::LacpMember { lag: lag(2) } && p.partner.is_none())
    );
    assert!(interpret.execute(&inv, &s).await.unwrap().is_noop());

    // The same saga through the harness (undo, crash and resume).
    let state = lived_in_site().await;
    let report = check_saga(&score(), || {
        let state = state.clone();
        async move {
            (
                inventory(),
                FakeSite::with_state(state).hiding_lacp_partner(),
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(report.changes, 3, "{report:?}");
}

#[tokio::test]
async fn without_switch_partners_a_miscabled_host_is_caught_by_its_bond_and_put_back() {
    // The plan says host 2 is on p5/p6; its bond is cabled to p3/p4, which
    // stay access: the bond never aggregates with the switch.
    let (state, wrong) = host2_bonded_and_lacp_on(
        &["p5", "p6"],
        Duration::from_millis(1),
        Duration::from_millis(20),
    );
    let site = FakeSite::with_state(state.clone()).hiding_lacp_partner();
    let interpret: Box<dyn Interpret<FakeSite>> = wrong.create_interpret();
    let text = interpret
        .execute(&inventory(), &site)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("bond bond0 not aggregated with the switch after"),
        "{text}"
    );
    assert_eq!(site.state(), state, "the ports were put back: {text}");
}

#[tokio::test]
async fn a_switch_that_reports_no_partner_refuses_a_partner_wait() {
    let site = FakeSite::new().hiding_lacp_partner();
    let e = site
        .set_ports_lacp_mode(
            &ports(&["p1"]),
            lag(1),
            vlan(10),
            LacpOptions {
                fallback: false,
                partner_within: Some(Duration::from_secs(1)),
            },
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("waiting for the LACP partner"),
        "{e}"
    );
    assert_eq!(site.mutating_calls(), 0);
}

/// A NIC with an LLDP neighbour.
fn nic_seeing(
    mac: &str,
    chassis: &str,
    port_id: &str,
    system: &str,
) -> harmony::domain::hardware::Nic {
    let mut nic = harmony::domain::hardware::Nic::new("eno1".parse().unwrap());
    nic.mac = Some(mac.parse().unwrap());
    nic.lldp = Some(harmony::domain::hardware::Lldp {
        chassis_id: Some(harmony::domain::SafeText::new(chassis)),
        port_id: Some(harmony::domain::SafeText::new(port_id)),
        system_name: Some(harmony::domain::SafeText::new(system)),
        port_description: None,
    });
    nic
}

#[tokio::test]
async fn the_site_files_chassis_id_and_nics_reach_the_port_map() {
    use harmony::modules::switch_automation::{configured_ports, switch_identity};
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/site.yaml");
    let f = harmony::site::SiteFile::load(&example).unwrap();
    let site = f.site();
    let tor = &site.switches[1];
    let ident = switch_identity(tor);
    assert_eq!(ident.chassis_id.as_deref(), Some("00:1c:73:ab:cd:ef"));
    let master0 = &site.hosts.pinned[1];
    let configured = configured_ports(&master0.switch_ports).unwrap();
    assert_eq!(configured[0].nic.unwrap().to_string(), "52:54:00:77:00:11");
    let h = host(2);
    let switches = [ident];

    // LLDP agrees (the chassis id matches, whatever system name is announced).
    let nics = [
        nic_seeing(
            "52:54:00:77:00:11",
            "00:1C:73:AB:CD:EF",
            "GigabitEthernet1/0/11",
            "tor-a",
        ),
        nic_seeing(
            "52:54:00:77:01:11",
            "00:1c:73:ab:cd:ef",
            "GigabitEthernet1/0/12",
            "tor-a",
        ),
    ];
    let map = map_ports(
        &switches,
        &[HostCabling {
            host: &h.id,
            nics: &nics,
            configured: &configured,
        }],
    );
    let plan = HostSwitchPlan::from_map(&map, "rack1-tor", h.clone(), PortGoal::Pxe).unwrap();
    assert_eq!(
        plan.ports,
        ports(&["GigabitEthernet1/0/11", "GigabitEthernet1/0/12"])
    );

    // The two NICs swapped: each configured NIC sees the other's port.
    let swapped = [
        nic_seeing(
            "52:54:00:77:00:11",
            "00:1c:73:ab:cd:ef",
            "GigabitEthernet1/0/12",
            "rack1-tor",
        ),
        nic_seeing(
            "52:54:00:77:01:11",
            "00:1c:73:ab:cd:ef",
            "GigabitEthernet1/0/11",
            "rack1-tor",
        ),
    ];
    let map = map_ports(
        &switches,
        &[HostCabling {
            host: &h.id,
            nics: &swapped,
            configured: &configured,
        }],
    );
    let text = HostSwitchPlan::from_map(&map, "rack1-tor", h.clone(), PortGoal::Pxe)
        .unwrap_err()
        .to_string();
    assert!(
        text.contains(
            "NIC 52:54:00:77:00:11 sees rack1-tor:GigabitEthernet1/0/12 over LLDP, but the site \
             file says rack1-tor:GigabitEthernet1/0/11"
        ),
        "{text}"
    );

    // A neighbour announcing the switch's name from another chassis is not it.
    let other = [nic_seeing(
        "52:54:00:77:00:11",
        "02:00:00:00:00:99",
        "GigabitEthernet1/0/11",
        "rack1-tor",
    )];
    let map = map_ports(
        &switches,
        &[HostCabling {
            host: &h.id,
            nics: &other,
            configured: &configured,
        }],
    );
    let text = HostSwitchPlan::from_map(&map, "rack1-tor", h, PortGoal::Pxe)
        .unwrap_err()
        .to_string();
    assert!(text.contains("02:00:00:00:00:99"), "{text}");
}
