//! Bond planning, dracut kernel arguments, nmstate keyfiles and per-host
//! Ignition configs, validated with the real `ignition-validate`.
//!
//! Golden file: `tests/golden/ignition-master-0.json`. After an intended
//! change, regenerate it with
//! `HARMONY_BLESS=1 cargo test -p harmony --test bond_ignition` and review
//! the diff.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use harmony::domain::HostHardware;
use harmony::domain::values::{Hostname, HttpUrl, KernelArg, MacAddress, Role};
use harmony::inventory_model::{Cpu, Inventory, Lldp, Memory, Nic, System};
use harmony::modules::okd::bond::{
    self, Addressing, BondError, BondPlan, MemberOverride, PlannedLink, Refusal, SiteBondPolicy,
    StaticIpv4, parse_network_args, slave_set,
};
use harmony::modules::okd::ignition::{
    CaBundle, HostIgnition, IGNITION_VALIDATE, IgnitionError, KEYFILE_DIR, check_parses,
    create_ignition_configs, decode_data_url, host_ignition, pointer_config, run_ignition_validate,
};

const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUT2tkVGVzdENBZm9ySGFybW9ueTAKBggqhkjOPQQDAjAA\n-----END CERTIFICATE-----\n";

fn nic(name: &str, mac: &str, speed: Option<u32>, carrier: bool, pci: &str) -> Nic {
    let mut n = Nic::new(name);
    n.mac = Some(mac.into());
    n.permanent_mac = Some(mac.into());
    n.speed_mbps = speed;
    n.carrier = Some(carrier);
    n.operstate = Some(if carrier { "up" } else { "down" }.into());
    n.pci_address = Some(pci.into());
    n
}

fn on_switch(mut n: Nic, chassis: &str, port: &str) -> Nic {
    n.lldp = Some(Lldp {
        chassis_id: Some(chassis.into()),
        port_id: Some(port.into()),
        system_name: Some(format!("sw-{chassis}")),
        port_description: None,
    });
    n
}

fn inv(network: Vec<Nic>) -> Inventory {
    Inventory {
        schema_version: 1,
        agent_version: "0.1.0".into(),
        collected_at: "2026-01-01T00:00:00Z".into(),
        hostname: None,
        warnings: vec![],
        system: System::default(),
        cpu: Cpu::default(),
        memory: Memory::default(),
        storage: vec![],
        network,
    }
}

/// 2×25G with carrier on one switch (two cards), 1×1G, 1×25G down, a bridge.
fn four_nic_host() -> Inventory {
    let mut br = Nic::new("br0");
    br.is_virtual = true;
    br.mac = Some("52:54:00:00:00:01".into());
    inv(vec![
        nic(
            "eno1",
            "52:54:00:00:00:01",
            Some(1000),
            true,
            "0000:01:00.0",
        ),
        on_switch(
            nic(
                "ens1f0",
                "52:54:00:00:01:00",
                Some(25_000),
                true,
                "0000:3b:00.0",
            ),
            "aa:bb:cc:00:00:01",
            "1/1/3",
        ),
        nic("ens1f1", "52:54:00:00:01:01", None, false, "0000:3b:00.1"),
        on_switch(
            nic(
                "ens2f0",
                "52:54:00:00:02:00",
                Some(25_000),
                true,
                "0000:5e:00.0",
            ),
            "aa:bb:cc:00:00:01",
            "1/1/4",
        ),
        br,
    ])
}

/// The fixtures are agent documents; planning reads them typed, through
/// the one conversion discovery uses.
fn plan_bond(
    inv: &Inventory,
    site: &SiteBondPolicy,
    addressing: Addressing,
) -> Result<BondPlan, BondError> {
    bond::plan_bond(
        &HostHardware::from_wire(inv).unwrap(),
        site,
        addressing,
        None,
    )
}

fn refusal_of<'a>(plan: &'a BondPlan, name: &str) -> Option<&'a Refusal> {
    plan.candidates
        .iter()
        .find(|c| c.reported_name == name)
        .unwrap_or_else(|| panic!("no candidate {name}"))
        .refusal
        .as_ref()
}

fn member_names(plan: &BondPlan) -> Vec<String> {
    plan.members().iter().map(|m| m.name.to_string()).collect()
}

fn args_str(args: &[KernelArg]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

fn ignition_validate() -> PathBuf {
    let p = PathBuf::from(IGNITION_VALIDATE);
    assert!(
        p.is_file(),
        "{IGNITION_VALIDATE} is missing: run .ci/setup (installs Debian's ignition package)"
    );
    p
}

#[test]
fn four_nic_host_bonds_the_two_25g_on_one_switch() {
    let plan = plan_bond(
        &four_nic_host(),
        &SiteBondPolicy::default(),
        Addressing::Dhcp,
    )
    .unwrap();
    assert!(plan.is_bond());
    assert_eq!(member_names(&plan), ["ens1f0", "ens2f0"]);
    assert!(matches!(
        refusal_of(&plan, "eno1"),
        Some(Refusal::Slower {
            speed_mbps: 1000,
            chosen_mbps: 25_000
        })
    ));
    assert_eq!(refusal_of(&plan, "ens1f1"), Some(&Refusal::NoCarrier));
    assert_eq!(refusal_of(&plan, "br0"), Some(&Refusal::Virtual));
    let text = plan.to_string();
    assert!(text.contains("bond bond0 (mode=802.3ad"), "{text}");
    assert!(text.contains("refused ens1f1: no carrier"), "{text}");
    assert_eq!(
        args_str(&plan.kernel_args().unwrap()),
        [
            "bond=bond0:ens1f0,ens2f0:mode=802.3ad,miimon=100,lacp_rate=fast,xmit_hash_policy=layer3+4",
            "ip=bond0:dhcp",
            "rd.neednet=1",
        ]
    );
    // Serializable for the store and --dry-run --json.
    let json = serde_json::to_string(&plan).unwrap();
    let back: BondPlan = serde_json::from_str(&json).unwrap();
    assert_eq!(back, plan);
}

#[test]
fn nics_on_two_switches_are_noted_and_not_bonded_without_mlag() {
    let host = inv(vec![
        on_switch(
            nic(
                "eno1",
                "52:54:00:00:00:01",
                Some(10_000),
                true,
                "0000:01:00.0",
            ),
            "sw-a-chassis",
            "1",
        ),
        on_switch(
            nic(
                "eno2",
                "52:54:00:00:00:02",
                Some(10_000),
                true,
                "0000:02:00.0",
            ),
            "sw-b-chassis",
            "1",
        ),
    ]);
    let plan = plan_bond(&host, &SiteBondPolicy::default(), Addressing::Dhcp).unwrap();
    assert!(!plan.is_bond());
    assert_eq!(member_names(&plan), ["eno1"]);
    assert!(matches!(
        refusal_of(&plan, "eno2"),
        Some(Refusal::DifferentSwitch { switch }) if switch == "sw-b-chassis"
    ));
    let notes = plan.notes.join("\n");
    assert!(notes.contains("different switches"), "{notes}");
    assert!(notes.contains("sw-a-chassis") && notes.contains("sw-b-chassis"));
    assert_eq!(
        args_str(&plan.kernel_args().unwrap()),
        ["ip=eno1:dhcp", "rd.neednet=1"]
    );

    let mlag = SiteBondPolicy {
        allow_multi_chassis: true,
        ..Default::default()
    };
    let plan = plan_bond(&host, &mlag, Addressing::Dhcp).unwrap();
    assert_eq!(member_names(&plan), ["eno1", "eno2"]);
    assert!(plan.notes.join("\n").contains("MLAG"));

    // Three NICs: a pair on one switch wins over the odd one out.
    let mut three = host.clone();
    three.network.push(on_switch(
        nic(
            "eno3",
            "52:54:00:00:00:03",
            Some(10_000),
            true,
            "0000:03:00.0",
        ),
        "sw-b-chassis",
        "2",
    ));
    let plan = plan_bond(&three, &SiteBondPolicy::default(), Addressing::Dhcp).unwrap();
    assert_eq!(member_names(&plan), ["eno2", "eno3"]);
    assert!(matches!(
        refusal_of(&plan, "eno1"),
        Some(Refusal::DifferentSwitch { .. })
    ));
    assert!(plan.notes.join("\n").contains("more than one switch"));
}

#[test]
fn prefers_different_pci_devices() {
    let host = inv(vec![
        nic(
            "ens1f0",
            "52:54:00:00:01:00",
            Some(25_000),
            true,
            "0000:3b:00.0",
        ),
        nic(
            "ens1f1",
            "52:54:00:00:01:01",
            Some(25_000),
            true,
            "0000:3b:00.1",
        ),
        nic(
            "ens2f0",
            "52:54:00:00:02:00",
            Some(25_000),
            true,
            "0000:5e:00.0",
        ),
    ]);
    let plan = plan_bond(&host, &SiteBondPolicy::default(), Addressing::Dhcp).unwrap();
    assert_eq!(member_names(&plan), ["ens1f0", "ens2f0"]);
    assert_eq!(refusal_of(&plan, "ens1f1"), Some(&Refusal::NotNeeded));
    assert!(plan.notes.join("\n").contains("not verified"));
}

#[test]
fn site_override_wins_and_is_validated() {
    let names = |v: &[&str]| SiteBondPolicy {
        members: Some(MemberOverride::Names(
            v.iter().map(|s| s.parse().unwrap()).collect(),
        )),
        allow_multi_chassis: false,
    };
    let plan = plan_bond(
        &four_nic_host(),
        &names(&["eno1", "ens2f0"]),
        Addressing::Dhcp,
    )
    .unwrap();
    assert_eq!(member_names(&plan), ["eno1", "ens2f0"]);
    assert_eq!(refusal_of(&plan, "ens1f0"), Some(&Refusal::NotInOverride));
    assert!(plan.notes.join("\n").contains("site override"));

    let by_mac = SiteBondPolicy {
        members: Some(MemberOverride::Macs(vec![
            "52:54:00:00:02:00".parse().unwrap(),
            "52:54:00:00:01:00".parse().unwrap(),
        ])),
        allow_multi_chassis: false,
    };
    let plan = plan_bond(&four_nic_host(), &by_mac, Addressing::Dhcp).unwrap();
    assert_eq!(member_names(&plan), ["ens2f0", "ens1f0"]);

    let err = plan_bond(
        &four_nic_host(),
        &names(&["eno1", "eno9"]),
        Addressing::Dhcp,
    )
    .unwrap_err();
    assert!(matches!(&err, BondError::OverrideNicMissing(n) if n == "eno9"));
    assert!(err.to_string().contains("eno9"));

    let err = plan_bond(&four_nic_host(), &names(&["br0", "eno1"]), Addressing::Dhcp).unwrap_err();
    assert!(err.to_string().contains("br0"), "{err}");
}

#[test]
fn single_nic_host_gets_no_bond() {
    let host = inv(vec![nic(
        "eno1",
        "52:54:00:00:00:01",
        Some(1000),
        true,
        "0000:01:00.0",
    )]);
    let plan = plan_bond(&host, &SiteBondPolicy::default(), Addressing::Dhcp).unwrap();
    assert!(matches!(plan.link, PlannedLink::Single { .. }));
    let args = args_str(&plan.kernel_args().unwrap());
    assert_eq!(args, ["ip=eno1:dhcp", "rd.neednet=1"]);
    assert!(args.iter().all(|a| !a.starts_with("bond")));
    assert!(plan.notes.join("\n").contains("no bond"));
    assert!(plan.to_string().contains("no bond: single interface eno1"));
}

/// Virtio NICs report no speed: such a host is still networked on the NIC
/// with link, never bonded on a guess; a NIC without link is never chosen.
#[test]
fn nic_without_speed_is_used_alone_never_bonded() {
    let host = inv(vec![
        nic("eth0", "52:54:00:00:00:01", None, true, "0000:00:03.0"),
        nic("eth1", "52:54:00:00:00:02", None, true, "0000:00:04.0"),
        nic("eth2", "52:54:00:00:00:03", None, false, "0000:00:05.0"),
    ]);
    let plan = plan_bond(&host, &SiteBondPolicy::default(), Addressing::Dhcp).unwrap();
    assert!(matches!(&plan.link, PlannedLink::Single { nic } if nic.name.as_str() == "eth0"));
    assert_eq!(
        args_str(&plan.kernel_args().unwrap()),
        ["ip=eth0:dhcp", "rd.neednet=1"]
    );
    assert!(
        plan.notes.join("\n").contains("no NIC reports its speed"),
        "{plan}"
    );
    assert_eq!(refusal_of(&plan, "eth2"), Some(&Refusal::NoCarrier));
    let down = inv(vec![nic(
        "eth0",
        "52:54:00:00:00:01",
        None,
        false,
        "0000:00:03.0",
    )]);
    assert!(plan_bond(&down, &SiteBondPolicy::default(), Addressing::Dhcp).is_err());
}

/// The QEMU machine of issue 8: a virtio NIC without `speed=` answered
/// discovery, an e1000e NIC reports 1000 Mb/s on another network. The plan
/// used to put DHCP on the e1000e; the boot line, the keyfile and the
/// Ignition config now carry the NIC that answered.
#[test]
fn the_nic_that_answered_discovery_is_in_the_boot_files() {
    let mut virtio = nic("enp1s0", "52:54:00:00:00:01", None, true, "0000:01:00.0");
    virtio.driver = Some("virtio_net".into());
    virtio.ipv4 = vec!["192.168.77.21/24".into()];
    let mut e1000e = nic(
        "enp2s0",
        "52:54:00:00:00:02",
        Some(1000),
        true,
        "0000:02:00.0",
    );
    e1000e.ipv4 = vec!["10.9.0.5/16".into()];
    let hw = HostHardware::from_wire(&inv(vec![virtio, e1000e])).unwrap();
    let plan = bond::plan_bond(
        &hw,
        &SiteBondPolicy::default(),
        Addressing::Dhcp,
        Some("192.168.77.21".parse().unwrap()),
    )
    .unwrap();
    assert_eq!(
        args_str(&plan.kernel_args().unwrap()),
        ["ip=enp1s0:dhcp", "rd.neednet=1"]
    );
    assert_eq!(refusal_of(&plan, "enp2s0"), Some(&Refusal::NotDiscoveryNic));
    let files = plan.keyfiles().unwrap();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["enp1s0.nmconnection"]);
    assert!(files[0].1.contains("52:54:00:00:00:01"), "{}", files[0].1);
    let bytes = host_ignition(&HostIgnition {
        hostname: "master-0.ocp.example.com".parse().unwrap(),
        role: Role::ControlPlane,
        role_config: "http://192.168.77.1:8080/okd/master.ign".parse().unwrap(),
        ca: None,
        keyfiles: files,
    })
    .unwrap();
    run_ignition_validate(&ignition_validate(), &bytes).unwrap();
    let paths: Vec<String> = files_of(&bytes)
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    assert!(
        paths.contains(&format!("{KEYFILE_DIR}/enp1s0.nmconnection")),
        "{paths:?}"
    );
}

/// A physical NIC named `bond0` was made a member of `bond0`; it is left
/// out of the arguments and the keyfiles, with its reason.
#[test]
fn a_nic_named_bond0_is_not_in_the_boot_files() {
    let host = inv(vec![
        nic(
            "bond0",
            "52:54:00:00:00:01",
            Some(10_000),
            true,
            "0000:01:00.0",
        ),
        nic(
            "eno1",
            "52:54:00:00:00:02",
            Some(10_000),
            true,
            "0000:02:00.0",
        ),
        nic(
            "eno2",
            "52:54:00:00:00:03",
            Some(10_000),
            true,
            "0000:03:00.0",
        ),
    ]);
    let plan = plan_bond(&host, &SiteBondPolicy::default(), Addressing::Dhcp).unwrap();
    assert_eq!(member_names(&plan), ["eno1", "eno2"]);
    assert_eq!(refusal_of(&plan, "bond0"), Some(&Refusal::BondName));
    let parsed = parse_network_args(&plan.kernel_args().unwrap()).unwrap();
    assert_eq!(
        slave_set(parsed.bond("bond0").unwrap()),
        ["eno1", "eno2"].into_iter().collect()
    );
    let files = plan.keyfiles().unwrap();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "bond0.nmconnection",
            "eno1.nmconnection",
            "eno2.nmconnection"
        ]
    );
    assert!(files[0].1.contains("[bond]"), "{}", files[0].1);
    assert!(!files[0].1.contains("52:54:00:00:00:01"), "{}", files[0].1);
}

/// Hostile names and MACs never reach planning: the conversion to typed
/// hardware refuses the host naming the field. What can reach it (shared
/// MACs, NICs without a MAC) is skipped with a reason, and only the typed
/// names of the chosen NICs reach the arguments and keyfiles.
#[test]
fn hostile_agent_values_are_skipped_with_reasons() {
    let long = "e".repeat(300);
    for (i, (name, mac)) in [
        ("eth0;reboot", "52:54:00:00:00:01"),
        ("${x}", "52:54:00:00:00:02"),
        (long.as_str(), "52:54:00:00:00:03"),
        ("eth9\nreboot", "52:54:00:00:00:99"),
        ("eno6", "not-a-mac;reboot"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut host = four_nic_host();
        host.network
            .push(nic(name, mac, Some(25_000), true, "0000:09:00.0"));
        let e = HostHardware::from_wire(&host).unwrap_err();
        let field = if i == 4 { "mac" } else { "name" };
        assert_eq!(e.field, format!("network[5].{field}"), "{e}");
        assert!(!e.to_string().contains('\n'), "{e}");
    }
    let mut no_mac = nic(
        "eno3",
        "52:54:00:00:00:03",
        Some(25_000),
        true,
        "0000:03:00.0",
    );
    no_mac.mac = None;
    no_mac.permanent_mac = None;
    let host = inv(vec![
        nic(
            "eno4",
            "52:54:00:00:00:aa",
            Some(25_000),
            true,
            "0000:04:00.0",
        ),
        nic(
            "eno5",
            "52:54:00:00:00:aa",
            Some(25_000),
            true,
            "0000:05:00.0",
        ),
        no_mac,
        nic(
            "eno7",
            "52:54:00:00:00:07",
            Some(25_000),
            true,
            "0000:07:00.0",
        ),
        nic(
            "eno8",
            "52:54:00:00:00:08",
            Some(25_000),
            true,
            "0000:08:00.0",
        ),
    ]);
    let plan = plan_bond(&host, &SiteBondPolicy::default(), Addressing::Dhcp).unwrap();
    assert_eq!(member_names(&plan), ["eno7", "eno8"]);
    let dup: MacAddress = "52:54:00:00:00:aa".parse().unwrap();
    assert_eq!(refusal_of(&plan, "eno4"), Some(&Refusal::DuplicateMac(dup)));
    assert_eq!(refusal_of(&plan, "eno5"), Some(&Refusal::DuplicateMac(dup)));
    assert_eq!(refusal_of(&plan, "eno3"), Some(&Refusal::MissingMac));
    let joined = args_str(&plan.kernel_args().unwrap()).join(" ");
    for bad in ["eno3", "eno4", "eno5"] {
        assert!(!joined.contains(bad), "{bad} leaked into {joined}");
    }
    for (_, k) in plan.keyfiles().unwrap() {
        assert!(!k.contains("eno4") && !k.contains("eno5"));
    }
    // LLDP names are free text: shown through the one sanitiser.
    let mut lldp = four_nic_host();
    for n in &mut lldp.network {
        if let Some(l) = &mut n.lldp {
            l.chassis_id = Some("sw\u{1b}[2J;reboot".into());
        }
    }
    let text = plan_bond(&lldp, &SiteBondPolicy::default(), Addressing::Dhcp)
        .unwrap()
        .to_string();
    assert!(!text.contains('\u{1b}') && !text.contains(';'), "{text}");
    assert!(text.contains("switch sw__2J_reboot"), "{text}");
    // No NIC with a MAC at all: no plan.
    let mut none = nic("eno1", "52:54:00:00:00:01", Some(1), true, "0000:01:00.0");
    none.mac = None;
    none.permanent_mac = None;
    let err = plan_bond(
        &inv(vec![none]),
        &SiteBondPolicy::default(),
        Addressing::Dhcp,
    )
    .unwrap_err();
    assert!(matches!(err, BondError::NoUsableNic(_)));
}

fn static_addressing() -> Addressing {
    Addressing::Static(StaticIpv4 {
        address: Ipv4Addr::new(192, 0, 2, 10),
        prefix_len: 24,
        gateway: Some(Ipv4Addr::new(192, 0, 2, 1)),
        hostname: Some("master-0.ocp.example.com".parse().unwrap()),
        dns: vec![Ipv4Addr::new(192, 0, 2, 53), Ipv4Addr::new(192, 0, 2, 54)],
    })
}

#[test]
fn kernel_args_round_trip_through_the_dracut_parser() {
    for addressing in [Addressing::Dhcp, static_addressing()] {
        let plan = plan_bond(
            &four_nic_host(),
            &SiteBondPolicy::default(),
            addressing.clone(),
        )
        .unwrap();
        let args = plan.kernel_args().unwrap();
        // Every argument re-validates as a KernelArg.
        for a in &args {
            assert_eq!(&a.as_str().parse::<KernelArg>().unwrap(), a);
        }
        let parsed = parse_network_args(&args).unwrap();
        let PlannedLink::Bond {
            name,
            members,
            options,
        } = &plan.link
        else {
            panic!("expected a bond");
        };
        let b = parsed.bond(name.as_str()).unwrap();
        assert_eq!(
            slave_set(b),
            members.iter().map(|m| m.name.as_str()).collect()
        );
        assert_eq!(&b.options, options);
        assert!(b.options.contains(&("mode".into(), "802.3ad".into())));
        assert_eq!(parsed.addressing_of("bond0"), Some(addressing));
        assert!(parsed.need_net);
        assert!(parsed.other.is_empty());
    }
    let single = inv(vec![nic(
        "eno1",
        "52:54:00:00:00:01",
        Some(1000),
        true,
        "0000:01:00.0",
    )]);
    let plan = plan_bond(&single, &SiteBondPolicy::default(), static_addressing()).unwrap();
    let parsed = parse_network_args(&plan.kernel_args().unwrap()).unwrap();
    assert!(parsed.bonds.is_empty());
    assert_eq!(parsed.addressing_of("eno1"), Some(static_addressing()));
}

#[test]
fn keyfiles_come_from_nmstate() {
    let plan = plan_bond(
        &four_nic_host(),
        &SiteBondPolicy::default(),
        Addressing::Dhcp,
    )
    .unwrap();
    let files = plan.keyfiles().unwrap();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "bond0.nmconnection",
            "ens1f0.nmconnection",
            "ens2f0.nmconnection"
        ]
    );
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    let bond = &files[0].1;
    assert!(bond.contains("[bond]"), "{bond}");
    assert!(bond.contains("mode=802.3ad"));
    assert!(bond.contains("miimon=100"));
    assert!(bond.contains("lacp_rate=fast"));
    assert!(bond.contains("xmit_hash_policy=layer3+4"));
    assert!(bond.contains("method=auto"));
    for ((_, k), mac) in files[1..]
        .iter()
        .zip(["52:54:00:00:01:00", "52:54:00:00:02:00"])
    {
        assert!(
            k.contains("master=bond0") || k.contains("controller=bond0"),
            "{k}"
        );
        assert!(
            k.to_ascii_lowercase()
                .contains(&format!("mac-address={mac}")),
            "{k}"
        );
        assert!(
            !k.contains("interface-name="),
            "port matched by MAC only: {k}"
        );
    }

    let plan = plan_bond(
        &four_nic_host(),
        &SiteBondPolicy::default(),
        static_addressing(),
    )
    .unwrap();
    let files = plan.keyfiles().unwrap();
    let bond = &files[0].1;
    assert!(bond.contains("method=manual"), "{bond}");
    assert!(bond.contains("192.0.2.10/24"), "{bond}");
    assert!(bond.contains("192.0.2.1"), "{bond}");
    assert!(bond.contains("192.0.2.53"), "{bond}");
}

fn master_spec(role: Role, name: &str, url: &str) -> HostIgnition {
    let plan = plan_bond(
        &four_nic_host(),
        &SiteBondPolicy::default(),
        Addressing::Dhcp,
    )
    .unwrap();
    HostIgnition {
        hostname: name.parse::<Hostname>().unwrap(),
        role,
        role_config: url.parse::<HttpUrl>().unwrap(),
        ca: Some(CaBundle::new(CA).unwrap()),
        keyfiles: plan.keyfiles().unwrap(),
    }
}

fn files_of(bytes: &[u8]) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    v["storage"]["files"].as_array().unwrap().clone()
}

#[test]
fn host_ignition_configs_validate_and_carry_hostname_and_bond() {
    let validate = ignition_validate();
    for (role, host, url) in [
        (
            Role::Bootstrap,
            "bootstrap.ocp.example.com",
            "http://192.0.2.1:8080/okd/bootstrap.ign",
        ),
        (
            Role::ControlPlane,
            "master-0.ocp.example.com",
            "http://192.0.2.1:8080/okd/master.ign",
        ),
        (
            Role::Worker,
            "worker-0.ocp.example.com",
            "http://192.0.2.1:8080/okd/worker.ign",
        ),
    ] {
        let spec = master_spec(role, host, url);
        let bytes = host_ignition(&spec).unwrap();
        check_parses(&bytes).unwrap();
        run_ignition_validate(&validate, &bytes).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["ignition"]["version"], "3.2.0");
        assert_eq!(v["ignition"]["config"]["merge"][0]["source"], url);
        let ca = v["ignition"]["security"]["tls"]["certificateAuthorities"][0]["source"]
            .as_str()
            .unwrap();
        assert_eq!(decode_data_url(ca).unwrap(), CA.as_bytes());
        assert!(!String::from_utf8_lossy(&bytes).contains("null"));
        let files = files_of(&bytes);
        let hostname = files.iter().find(|f| f["path"] == "/etc/hostname").unwrap();
        assert_eq!(hostname["mode"], 0o644);
        let decoded = decode_data_url(hostname["contents"]["source"].as_str().unwrap()).unwrap();
        assert_eq!(decoded, format!("{host}\n").as_bytes());
        for (name, contents) in &spec.keyfiles {
            let path = format!("{KEYFILE_DIR}/{name}");
            let f = files.iter().find(|f| f["path"] == path.as_str()).unwrap();
            assert_eq!(f["mode"], 0o600);
            assert_eq!(f["overwrite"], true);
            let src = f["contents"]["source"].as_str().unwrap();
            assert_eq!(decode_data_url(src).unwrap(), contents.as_bytes());
        }
    }
}

#[test]
fn ignition_validate_really_rejects_bad_configs() {
    let validate = ignition_validate();
    // Relative path: schema-valid for the Rust types, invalid for Ignition.
    let bad = br#"{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"etc/x"}]}}"#;
    assert!(check_parses(bad).is_ok());
    let err = run_ignition_validate(&validate, bad).unwrap_err();
    assert!(matches!(err, IgnitionError::Rejected { .. }), "{err}");
    let missing = run_ignition_validate(Path::new("/nonexistent/ignition-validate"), bad);
    assert!(
        missing
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/ignition-validate")
    );
}

#[test]
fn stand_in_role_pointer_configs_validate() {
    let validate = ignition_validate();
    let ca = CaBundle::new(CA).unwrap();
    for pool in ["master", "worker"] {
        let url: HttpUrl = format!("https://api-int.ocp.example.com:22623/config/{pool}")
            .parse()
            .unwrap();
        let bytes = pointer_config(&url, Some(&ca)).unwrap();
        check_parses(&bytes).unwrap();
        run_ignition_validate(&validate, &bytes).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["ignition"]["config"]["merge"][0]["source"], url.as_str());
    }
}

#[test]
fn golden_master_0() {
    let spec = master_spec(
        Role::ControlPlane,
        "master-0.ocp.example.com",
        "http://192.0.2.1:8080/okd/master.ign",
    );
    let bytes = host_ignition(&spec).unwrap();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/ignition-master-0.json");
    if std::env::var_os("HARMONY_BLESS").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &bytes).unwrap();
    }
    let want = std::fs::read(&golden).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; regenerate with HARMONY_BLESS=1 cargo test -p harmony --test bond_ignition",
            golden.display()
        )
    });
    assert!(
        want == bytes,
        "golden file differs; if intended, regenerate with HARMONY_BLESS=1 and review the diff"
    );
    run_ignition_validate(&ignition_validate(), &want).unwrap();
}

fn write_script(dir: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("openshift-install");
    std::fs::write(&p, body).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn create_ignition_configs_runs_the_installer() {
    let tmp = tempfile::tempdir().unwrap();
    let install_dir = tmp.path().join("install");
    std::fs::create_dir(&install_dir).unwrap();

    let missing = tmp.path().join("bin/openshift-install");
    let err = create_ignition_configs(&missing, &install_dir).unwrap_err();
    assert!(matches!(err, IgnitionError::BinaryMissing(_)));
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );

    // The fake installer writes three role configs that carry a "secret".
    let secret = "PULL-SECRET-s3cr3t";
    let cfg = format!(
        r#"{{"ignition":{{"version":"3.2.0"}},"storage":{{"files":[{{"path":"/root/secret","contents":{{"source":"data:,{secret}"}}}}]}}}}"#
    );
    let script = format!(
        "#!/bin/sh\nset -e\n[ \"$1 $2 $3\" = 'create ignition-configs --dir' ] || exit 3\n\
         for r in bootstrap master worker; do printf '%s' '{cfg}' > \"$4/$r.ign\"; done\n\
         echo 'INFO Consuming Install Config {secret}'\n"
    );
    let bin = write_script(tmp.path(), &script);
    let configs = create_ignition_configs(&bin, &install_dir).unwrap();
    assert_eq!(configs.master.bytes(), cfg.as_bytes());
    assert_eq!(configs.bootstrap.bytes(), cfg.as_bytes());
    assert_eq!(configs.worker.role, Role::Worker);
    assert!(!format!("{configs:?}").contains(secret));

    // Failure: exit status and log hint, never the output or contents.
    let failing = write_script(
        tmp.path(),
        &format!("#!/bin/sh\necho 'FATAL {secret}' >&2\nexit 1\n"),
    );
    let err = create_ignition_configs(&failing, &install_dir).unwrap_err();
    assert!(matches!(err, IgnitionError::InstallerFailed { .. }));
    assert!(!err.to_string().contains(secret), "{err}");

    // Invalid output: named, contents withheld.
    let junk = write_script(
        tmp.path(),
        &format!(
            "#!/bin/sh\nfor r in bootstrap master worker; do printf '{{\"ignition\":{{\"version\":\"{secret}\"}}}}' > \"$4/$r.ign\"; done\n"
        ),
    );
    let err = create_ignition_configs(&junk, &install_dir).unwrap_err();
    assert!(err.to_string().contains("bootstrap.ign"), "{err}");
    assert!(!err.to_string().contains(secret), "{err}");
}
