//! The site file: the shipped examples parse and validate (so they cannot
//! rot), every rule refuses a bad file with an error naming the field path
//! and the value, secrets written inline are refused without being shown,
//! hostile YAML (deep nesting, alias bombs, huge files) fails fast, and
//! `harmony site check` prints a summary or exits 2 with the error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use harmony::domain::Role;
use harmony::site::{
    ApiKeySource, Backend, MAX_BYTES, SiteError, SiteFile, SwitchAddress, SwitchCredentials,
    SwitchKind,
};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn example_path() -> PathBuf {
    workspace().join("examples/site.yaml")
}

fn example() -> String {
    std::fs::read_to_string(example_path()).unwrap()
}

/// `text` with the first `from` replaced by `to`; `from` must be there, so
/// a change of the example cannot make a test pass by editing nothing.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the example no longer holds {from:?}");
    text.replacen(from, to, 1)
}

/// The example with one edit.
fn example_with(from: &str, to: &str) -> String {
    edit(&example(), from, to)
}

/// The error text of a file that must be refused.
fn refused(text: &str) -> String {
    match SiteFile::parse(text, "test-site.yaml") {
        Ok(_) => panic!("accepted a bad site file"),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("test-site.yaml: "), "{msg}");
            msg
        }
    }
}

/// Asserts `msg` names every one of `needles`.
fn names(msg: &str, needles: &[&str]) {
    for n in needles {
        assert!(msg.contains(n), "error does not name {n:?}:\n{msg}");
    }
}

// ---------------------------------------------------------------- examples

#[test]
fn shipped_example_parses_and_validates() {
    let f = SiteFile::load(&example_path()).unwrap();
    let s = f.site();
    assert_eq!(s.cluster.name.as_str(), "ocp");
    assert_eq!(f.cluster_domain(), "ocp.example.com");
    assert_eq!(s.cluster.okd_version.to_string(), "4.19");
    assert_eq!(
        (s.hosts.bootstrap, s.hosts.control_plane, s.hosts.workers),
        (1, 3, 2)
    );
    assert_eq!(f.pinned(Role::ControlPlane).count(), 3);
    assert_eq!(f.pinned(Role::Bootstrap).count(), 1);
    assert!(matches!(f.backend(), Backend::Linux(_)));
    let switches: Vec<_> = f.switches().collect();
    assert_eq!(switches.len(), 2);
    assert_eq!(switches[0].0.kind, SwitchKind::Ovs);
    assert!(matches!(switches[0].1, SwitchAddress::OvsUnix(_)));
    assert_eq!(switches[1].0.kind, SwitchKind::CiscoIos);
    assert!(matches!(switches[1].1, SwitchAddress::Ssh { port: 22, .. }));
    assert!(matches!(
        switches[1].0.credentials,
        Some(SwitchCredentials::Env { .. })
    ));
    assert_eq!(s.provisioning.dhcp_range.len(), 100);
    let summary = f.summary();
    names(
        &summary,
        &[
            "valid",
            "ocp.example.com",
            "rack1-tor (cisco-ios)",
            "master-2",
        ],
    );
}

#[test]
fn shipped_opnsense_example_parses_and_validates() {
    let f = SiteFile::load(&workspace().join("examples/site-opnsense.yaml")).unwrap();
    let Backend::OpnSense(o) = f.backend() else {
        panic!("not the OPNsense backend");
    };
    assert_eq!(o.url.to_string(), "https://10.20.0.1/");
    assert!(matches!(o.api_key, ApiKeySource::KeyFile(_)));
    assert!(o.ca_file.is_some());
    let (sw, addr) = f.switches().next().unwrap();
    assert_eq!(sw.kind, SwitchKind::ArubaAoscx);
    assert!(matches!(addr, SwitchAddress::Https(_)));
    assert_eq!(f.site().hosts.workers, 0);
}

// ----------------------------------------------------- shape and types

#[test]
fn unknown_field_is_named_with_its_line_and_column() {
    let text = example_with("  name: ocp\n", "  name: ocp\n  nmae: ocp\n");
    let err = SiteFile::parse(&text, "test-site.yaml").unwrap_err();
    let SiteError::Syntax {
        location: Some((line, column)),
        ..
    } = &err
    else {
        panic!("not a located syntax error: {err}");
    };
    let want_line = text.lines().position(|l| l == "  nmae: ocp").unwrap() + 1;
    assert_eq!((*line, *column), (want_line, 3));
    names(
        &err.to_string(),
        &[
            "cluster: unknown field `nmae`",
            &format!("line {want_line} column 3"),
        ],
    );
}

#[test]
fn unknown_field_in_a_pinned_host_names_its_index() {
    let msg = refused(&example_with(
        "      hostname: master-1\n",
        "      hostname: master-1\n      disk: sda\n",
    ));
    names(&msg, &["hosts.pinned[2]: unknown field `disk`", "line "]);
}

#[test]
fn wrong_type_is_named() {
    let msg = refused(&example_with("workers: 2", "workers: two"));
    names(&msg, &["hosts.workers", "\"two\"", "invalid type"]);
}

#[test]
fn duplicate_key_is_refused() {
    let msg = refused(&example_with("  name: ocp\n", "  name: ocp\n  name: okd\n"));
    names(&msg, &["cluster", "duplicate field `name`", "line "]);
}

#[test]
fn invalid_value_is_named_at_the_leaf() {
    let msg = refused(&example_with(
        "mac: 52:54:00:77:00:12",
        "mac: 52:54:00:77:00:1",
    ));
    names(&msg, &["hosts.pinned[2].mac", "\"52:54:00:77:00:1\""]);
}

#[test]
fn unquoted_okd_version_is_refused_with_advice() {
    let msg = refused(&example_with("okd_version: \"4.19\"", "okd_version: 4.19"));
    names(&msg, &["cluster.okd_version", "4.19", "quoted"]);
}

#[test]
fn vlan_out_of_range_is_refused() {
    for bad in ["0", "4095", "70000", "-1"] {
        let msg = refused(&example_with(
            "access_vlan: 77\n    # LACP fallback",
            &format!("access_vlan: {bad}\n    # LACP fallback"),
        ));
        names(&msg, &["switches[0].access_vlan", bad]);
    }
}

// ---------------------------------------------------- provisioning network

#[test]
fn dhcp_range_outside_the_subnet_is_refused() {
    let msg = refused(&example_with("end: 192.168.77.199", "end: 192.168.78.20"));
    names(
        &msg,
        &[
            "provisioning.dhcp_range.end = 192.168.78.20",
            "outside the provisioning subnet 192.168.77.0/24",
        ],
    );
}

#[test]
fn dhcp_range_start_after_end_is_refused() {
    let msg = refused(&example_with(
        "start: 192.168.77.100",
        "start: 192.168.77.250",
    ));
    names(
        &msg,
        &[
            "provisioning.dhcp_range = 192.168.77.250-192.168.77.199",
            "start is after end",
        ],
    );
}

#[test]
fn dhcp_range_over_a_pinned_reservation_is_refused() {
    let msg = refused(&example_with("ip: 192.168.77.12", "ip: 192.168.77.150"));
    names(
        &msg,
        &[
            "hosts.pinned[2].ip = 192.168.77.150",
            "inside the DHCP dynamic range 192.168.77.100-192.168.77.199",
        ],
    );
}

#[test]
fn dhcp_range_over_harmony_or_the_gateway_is_refused() {
    let msg = refused(&example_with(
        "start: 192.168.77.100",
        "start: 192.168.77.2",
    ));
    names(
        &msg,
        &[
            "provisioning.dhcp_range = 192.168.77.2-192.168.77.199",
            "overlaps Harmony's own address 192.168.77.2",
        ],
    );
    let msg = refused(&example_with(
        "start: 192.168.77.100",
        "start: 192.168.77.1",
    ));
    names(
        &msg,
        &[
            "provisioning.dhcp_range = 192.168.77.1-192.168.77.199",
            "overlaps the gateway 192.168.77.1",
        ],
    );
}

#[test]
fn provisioning_subnet_overlapping_cluster_networks_is_refused() {
    let msg = refused(&example_with(
        "service_network: 172.30.0.0/16",
        "service_network: 192.168.0.0/16",
    ));
    names(
        &msg,
        &[
            "cluster.service_network = 192.168.0.0/16",
            "must not overlap with the machine network 192.168.77.0/24",
        ],
    );
    let msg = refused(&example_with("cidr: 10.128.0.0/14", "cidr: 192.168.0.0/16"));
    names(
        &msg,
        &[
            "cluster.cluster_network.cidr = 192.168.0.0/16",
            "must not overlap with the machine network",
        ],
    );
}

#[test]
fn cluster_network_rules_come_from_the_install_config_checks() {
    let msg = refused(&example_with("host_prefix: 23", "host_prefix: 26"));
    names(
        &msg,
        &["cluster.cluster_network.host_prefix = 26", "250 pods"],
    );
}

#[test]
fn reservation_outside_the_subnet_is_refused() {
    let msg = refused(&example_with("ip: 192.168.77.21", "ip: 10.0.0.21"));
    names(
        &msg,
        &[
            "hosts.pinned[4].ip = 10.0.0.21",
            "outside the provisioning subnet 192.168.77.0/24",
        ],
    );
}

#[test]
fn reservation_on_harmony_or_the_gateway_is_refused() {
    let msg = refused(&example_with("ip: 192.168.77.21", "ip: 192.168.77.2"));
    names(
        &msg,
        &["hosts.pinned[4].ip = 192.168.77.2", "Harmony's own"],
    );
    let msg = refused(&example_with("ip: 192.168.77.21", "ip: 192.168.77.1"));
    names(&msg, &["hosts.pinned[4].ip = 192.168.77.1", "gateway"]);
}

// ------------------------------------------------------------ duplicates

#[test]
fn duplicate_mac_is_refused() {
    let msg = refused(&example_with(
        "mac: 52:54:00:77:00:13",
        "mac: 52:54:00:77:00:11",
    ));
    names(
        &msg,
        &[
            "hosts.pinned[3].mac = 52:54:00:77:00:11",
            "duplicate MAC (also hosts.pinned[1])",
        ],
    );
}

#[test]
fn duplicate_ip_is_refused() {
    let msg = refused(&example_with("ip: 192.168.77.13", "ip: 192.168.77.11"));
    names(
        &msg,
        &[
            "hosts.pinned[3].ip = 192.168.77.11",
            "duplicate IP (also hosts.pinned[1])",
        ],
    );
}

#[test]
fn duplicate_hostname_is_refused() {
    let msg = refused(&example_with("hostname: master-2", "hostname: master-0"));
    names(
        &msg,
        &[
            "hosts.pinned[3].hostname = \"master-0\"",
            "duplicate host name (also hosts.pinned[1])",
        ],
    );
}

#[test]
fn more_pinned_hosts_than_the_role_count_is_refused() {
    let msg = refused(&example_with("workers: 2", "workers: 0"));
    names(
        &msg,
        &[
            "hosts.workers = 0",
            "1 pinned host(s) have role worker, more than expected",
        ],
    );
    let msg = refused(&example_with("role: worker", "role: bootstrap"));
    names(
        &msg,
        &[
            "hosts.bootstrap = 1",
            "2 pinned host(s) have role bootstrap",
        ],
    );
}

#[test]
fn role_counts_follow_okd() {
    let msg = refused(&example_with("control_plane: 3", "control_plane: 2"));
    names(
        &msg,
        &["hosts.control_plane = 2", "exactly 3 control-plane"],
    );
}

// -------------------------------------------------------------- switches

#[test]
fn switch_port_on_an_unknown_switch_is_refused() {
    let msg = refused(&example_with(
        "{ switch: lab-ovs, port: p21 }",
        "{ switch: lab-ovs2, port: p21 }",
    ));
    names(
        &msg,
        &[
            "hosts.pinned[4].switch_ports[0].switch = \"lab-ovs2\"",
            "no switch of that name",
        ],
    );
}

#[test]
fn two_hosts_on_one_switch_port_is_refused() {
    let msg = refused(&example_with(
        "{ switch: lab-ovs, port: p21 }",
        "{ switch: lab-ovs, port: p10 }",
    ));
    names(
        &msg,
        &[
            "hosts.pinned[4].switch_ports[0].port = lab-ovs:p10",
            "already taken by hosts.pinned[0].switch_ports[0]",
        ],
    );
}

#[test]
fn duplicate_switch_names_are_refused() {
    let msg = refused(&example_with("- name: rack1-tor", "- name: lab-ovs"));
    names(
        &msg,
        &[
            "switches[1].name = \"lab-ovs\"",
            "duplicate switch name (also switches[0])",
        ],
    );
}

#[test]
fn chassis_id_and_port_nic_are_read_and_validated() {
    let f = SiteFile::load(&example_path()).unwrap();
    let s = f.site();
    assert_eq!(s.switches[0].chassis_id, None);
    assert_eq!(
        s.switches[1].chassis_id.unwrap().to_string(),
        "00:1c:73:ab:cd:ef"
    );
    let master0 = &s.hosts.pinned[1].switch_ports;
    assert_eq!(master0[0].nic.unwrap().to_string(), "52:54:00:77:00:11");
    assert_eq!(master0[1].nic.unwrap().to_string(), "52:54:00:77:01:11");
    assert_eq!(s.hosts.pinned[0].switch_ports[0].nic, None);

    // Bad values: refused at the leaf, with its path and value.
    let msg = refused(&example_with(
        "chassis_id: 00:1c:73:ab:cd:ef",
        "chassis_id: 00:1c:73:ab:cd",
    ));
    names(&msg, &["switches[1].chassis_id", "00:1c:73:ab:cd"]);
    let msg = refused(&example_with(
        "chassis_id: 00:1c:73:ab:cd:ef",
        "chassis_id: \"rack1; reboot\"",
    ));
    names(&msg, &["switches[1].chassis_id", "rack1; reboot"]);
    let msg = refused(&example_with(
        "nic: \"52:54:00:77:01:11\"",
        "nic: \"52:54:00:77:01:1z\"",
    ));
    names(
        &msg,
        &["hosts.pinned[1].switch_ports[1].nic", "52:54:00:77:01:1z"],
    );
    let msg = refused(&example_with(
        "nic: \"52:54:00:77:01:11\"",
        "nic: \"ff:ff:ff:ff:ff:ff\"",
    ));
    names(&msg, &["hosts.pinned[1].switch_ports[1].nic", "multicast"]);
    // One NIC on two ports.
    let msg = refused(&example_with(
        "nic: \"52:54:00:77:01:11\"",
        "nic: \"52:54:00:77:00:11\"",
    ));
    names(
        &msg,
        &[
            "hosts.pinned[1].switch_ports[1].nic = 52:54:00:77:00:11",
            "already cabled to rack1-tor:GigabitEthernet1/0/11",
        ],
    );
    // Two switches with one chassis id.
    let msg = refused(&example_with(
        "bridge: br-prov",
        "bridge: br-prov\n    chassis_id: 00:1c:73:AB:CD:EF",
    ));
    names(
        &msg,
        &[
            "switches[1].chassis_id = 00:1c:73:ab:cd:ef",
            "two switches with one LLDP chassis id (also switches[0])",
        ],
    );
}

#[test]
fn lacp_fallback_only_where_the_switch_has_it() {
    let msg = refused(&example_with("lacp_fallback: false", "lacp_fallback: true"));
    names(
        &msg,
        &[
            "switches[1].lacp_fallback = true",
            "cisco-ios has no LACP fallback",
        ],
    );
}

#[test]
fn switch_fields_must_fit_its_kind() {
    let msg = refused(&example_with(
        "address: 192.168.77.250:22\n",
        "address: 192.168.77.250:22\n    bridge: br0\n",
    ));
    names(
        &msg,
        &["switches[1].bridge = \"br0\"", "only an ovs switch"],
    );
    let msg = refused(&example_with("    address: 192.168.77.250:22\n", ""));
    names(&msg, &["switches[1].address", "required"]);
    let msg = refused(&example_with(
        "address: unix:/run/openvswitch/db.sock",
        "address: 10.0.0.1",
    ));
    names(
        &msg,
        &["switches[0].address = \"10.0.0.1\"", "OVSDB remote"],
    );
}

// --------------------------------------------------------------- secrets

const SECRET: &str = "Sup3rS3cretPassw0rd";

/// The error names the field, and never the secret.
fn refused_secret(text: &str, field: &str) {
    let msg = refused(text);
    names(&msg, &[field]);
    assert!(
        msg.contains("secret") || msg.contains("credentials"),
        "the error does not say why: {msg}"
    );
    assert!(!msg.contains(SECRET), "the error shows the secret: {msg}");
}

#[test]
fn inline_secrets_are_refused_and_never_shown() {
    let env = "      env:\n        username: RACK1_TOR_USER\n        password: RACK1_TOR_PASSWORD";
    // A password field beside the credentials.
    refused_secret(
        &example_with(env, &format!("      password: {SECRET}")),
        "switches[1].credentials.password",
    );
    // The credentials themselves written as a string.
    refused_secret(
        &example_with(
            &format!("    credentials:\n{env}"),
            &format!("    credentials: {SECRET}"),
        ),
        "switches[1].credentials",
    );
    // A secret where an environment variable name belongs.
    refused_secret(
        &example_with(
            "password: RACK1_TOR_PASSWORD",
            &format!("password: {SECRET}!"),
        ),
        "switches[1].credentials.env.password",
    );
    // A secret where a file path belongs.
    refused_secret(
        &example_with(env, &format!("      file: {SECRET}")),
        "switches[1].credentials.file",
    );
    // A password inside the address.
    refused_secret(
        &example_with(
            "address: 192.168.77.250:22",
            &format!("address: admin:{SECRET}@192.168.77.250:22"),
        ),
        "switches[1].address",
    );
    // A pull secret pasted instead of its file.
    refused_secret(
        &example_with(
            "pull_secret_file: /etc/harmony/pull-secret.json",
            &format!("pull_secret_file: '{{\"auths\":{{\"x\":{{\"auth\":\"{SECRET}\"}}}}}}'"),
        ),
        "cluster.pull_secret_file",
    );
}

#[test]
fn inline_opnsense_key_is_refused_and_never_shown() {
    let text = std::fs::read_to_string(workspace().join("examples/site-opnsense.yaml")).unwrap();
    let key_file = "      key_file: /etc/harmony/opnsense-apikey.txt";
    refused_secret(
        &edit(&text, key_file, &format!("      key: {SECRET}")),
        "services.opnsense.api_key.key",
    );
    refused_secret(
        &edit(&text, key_file, &format!("      secret: {SECRET}")),
        "services.opnsense.api_key.secret",
    );
    refused_secret(
        &edit(
            &text,
            &format!("    api_key:\n{key_file}"),
            &format!("    api_key: {SECRET}"),
        ),
        "services.opnsense.api_key",
    );
    refused_secret(
        &edit(
            &text,
            "url: https://10.20.0.1/",
            &format!("url: https://root:{SECRET}@10.20.0.1/"),
        ),
        "services.opnsense.url",
    );
    let msg = refused(&edit(
        &text,
        "url: https://10.20.0.1/",
        "url: http://10.20.0.1/",
    ));
    names(&msg, &["services.opnsense.url", "https://"]);
}

// -------------------------------------------------------------- services

#[test]
fn backend_section_must_match_the_backend() {
    let msg = refused(&example_with("  backend: linux\n", "  backend: opnsense\n"));
    names(
        &msg,
        &[
            "services.backend = opnsense",
            "needs a `services.opnsense:` section",
            "services.linux",
        ],
    );
}

#[test]
fn http_root_never_inside_the_state_dir() {
    let msg = refused(&example_with(
        "http_root: /srv/harmony/http",
        "http_root: /var/lib/harmony/http",
    ));
    names(
        &msg,
        &[
            "services.linux.http_root = /var/lib/harmony/http",
            "state_dir",
        ],
    );
}

#[test]
fn listeners_do_not_collide_with_the_load_balancer() {
    let msg = refused(&example_with(
        "http_listen: 192.168.77.2:8080",
        "http_listen: 0.0.0.0:443",
    ));
    names(
        &msg,
        &[
            "services.linux.http_listen = 0.0.0.0:443",
            "HAProxy listens",
        ],
    );
    let msg = refused(&example_with(
        "load_balancer_address: 192.168.77.2",
        "load_balancer_address: 192.168.77.120",
    ));
    names(
        &msg,
        &[
            "services.linux.load_balancer_address = 192.168.77.120",
            "inside the DHCP dynamic range",
        ],
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = edit(
        &example_with("ip: 192.168.77.12", "ip: 192.168.77.150"),
        "mac: 52:54:00:77:00:13",
        "mac: 52:54:00:77:00:11",
    );
    let err = SiteFile::parse(&text, "test-site.yaml").unwrap_err();
    let SiteError::Invalid { problems, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(problems.len(), 2, "{err}");
    names(
        &err.to_string(),
        &["2 problems", "hosts.pinned[2].ip", "hosts.pinned[3].mac"],
    );
}

// ---------------------------------------------------------- hostile YAML

#[test]
fn deep_nesting_is_refused_before_parsing() {
    let text = format!("cluster: {}", "[".repeat(200_000));
    let msg = refused(&text);
    names(&msg, &["nested deeper than 64 levels", "line 1 column"]);
}

#[test]
fn alias_bomb_is_refused() {
    // Billion laughs: 10^9 addresses if expanded.
    let mut bomb = String::from("a0: &a0 [\"1.1.1.1\", \"1.1.1.1\", \"1.1.1.1\"]\n");
    for i in 1..=9 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        bomb.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let text = example_with(
        "  dns_forwarders:\n    - 192.168.77.1\n    - 9.9.9.9\n",
        "  dns_forwarders: *a9\n",
    );
    let msg = refused(&format!("{bomb}{text}"));
    assert!(msg.len() < 2_000, "{}", msg.len());
    // Expanding in place of a list of addresses fails as soon as the
    // first element is a list, not after a billion.
    let text = example_with(
        "  dns_forwarders:\n    - 192.168.77.1\n    - 9.9.9.9\n",
        &format!("  dns_forwarders: {}\n", bomb_inline()),
    );
    let msg = refused(&text);
    names(&msg, &["provisioning.dns_forwarders[0]", "invalid type"]);
}

/// A nested alias bomb inside one value.
fn bomb_inline() -> String {
    let mut s = String::from("&b0 [\"9.9.9.9\"]");
    for i in 1..=8 {
        s = format!("&b{i} [{s}, *b{}, *b{}]", i - 1, i - 1);
    }
    s
}

#[test]
fn huge_file_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.yaml");
    let mut text = example();
    while (text.len() as u64) <= MAX_BYTES {
        text.push_str("# padding padding padding padding padding padding padding\n");
    }
    std::fs::write(&path, &text).unwrap();
    let err = SiteFile::load(&path).unwrap_err();
    assert!(matches!(err, SiteError::TooLarge { .. }), "{err}");
    names(&err.to_string(), &["larger than 1048576 bytes"]);
}

#[test]
fn several_documents_and_non_utf8_are_refused() {
    let msg = refused(&format!("{}\n---\n{}", example(), example()));
    names(&msg, &["more than one document"]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bin.yaml");
    std::fs::write(&path, b"cluster:\n  name: \xff\xfe\n").unwrap();
    let err = SiteFile::load(&path).unwrap_err();
    names(&err.to_string(), &["not UTF-8"]);
}

// ------------------------------------------------------------------ CLI

fn harmony(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_harmony"))
        .args(args)
        .env_remove("HARMONY_DB")
        .output()
        .unwrap()
}

#[test]
fn cli_site_check_prints_the_summary_of_a_good_file() {
    for file in ["examples/site.yaml", "examples/site-opnsense.yaml"] {
        let path = workspace().join(file);
        let o = harmony(&["site", "check", "--site", path.to_str().unwrap()]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{file}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        names(
            &out,
            &[
                "valid",
                "cluster",
                "provisioning",
                "services",
                "hosts",
                "topology",
            ],
        );
    }
    // Which topology and services each names.
    let o = harmony(&[
        "site",
        "check",
        "--site",
        workspace().join("examples/site.yaml").to_str().unwrap(),
    ]);
    names(
        &String::from_utf8_lossy(&o.stdout),
        &[
            "topology     LinuxSiteTopology \"ocp\"",
            "dnsmasq    DHCP on eno2 (192.168.77.100-192.168.77.199, router 192.168.77.1)",
            "caddy      HTTP on 192.168.77.2:8080 serving /srv/harmony/http",
            "haproxy    load balancer on 192.168.77.2",
        ],
    );
    let o = harmony(&[
        "site",
        "check",
        "--site",
        workspace()
            .join("examples/site-opnsense.yaml")
            .to_str()
            .unwrap(),
    ]);
    names(
        &String::from_utf8_lossy(&o.stdout),
        &[
            "topology     OpnSenseSite \"prod\" at https://10.20.0.1/",
            "files      over SSH root@10.20.0.1:22",
            "TFTP (os-tftp on 10.20.0.1), HTTP http://10.20.0.1:8080/",
        ],
    );
}

#[test]
fn cli_site_check_exits_2_naming_the_field_of_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.yaml");
    std::fs::write(&path, example_with("ip: 192.168.77.21", "ip: 10.0.0.21")).unwrap();
    let o = harmony(&["site", "check", "--site", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        o.stdout.is_empty(),
        "nothing printed on stdout for a bad file"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    names(
        &err,
        &[
            "harmony: ",
            "site.yaml: hosts.pinned[4].ip = 10.0.0.21",
            "outside the provisioning subnet",
        ],
    );

    std::fs::write(
        &path,
        example_with("  name: ocp\n", "  name: ocp\n  nmae: x\n"),
    )
    .unwrap();
    let o = harmony(&["site", "check", "--site", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    names(
        &String::from_utf8_lossy(&o.stderr),
        &["cluster: unknown field `nmae`", "column 3"],
    );

    let missing = dir.path().join("nope.yaml");
    let o = harmony(&["site", "check", "--site", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    names(
        &String::from_utf8_lossy(&o.stderr),
        &["cannot read site file", "nope.yaml"],
    );
}

// ------------------------------------------------------------- topology

use harmony::domain::{HttpServer, TftpServer};
use harmony::site::topology::{SitePlan, SiteTopologyError, build_opnsense, plan};

fn plan_of(text: &str) -> Result<SitePlan, SiteTopologyError> {
    plan(&SiteFile::parse(text, "test-site.yaml").unwrap())
}

#[test]
fn the_linux_example_plans_a_linux_site_with_the_files_values() {
    let SitePlan::Linux(c) = plan_of(&example()).unwrap() else {
        panic!("not linux");
    };
    assert_eq!(c.name, "ocp");
    assert_eq!(c.state_dir, Path::new("/var/lib/harmony"));
    assert_eq!(c.http_root, Path::new("/srv/harmony/http"));
    assert_eq!(c.interface.as_str(), "eno2");
    assert_eq!(c.address.to_string(), "192.168.77.2");
    assert_eq!(c.dhcp_range.start.to_string(), "192.168.77.100");
    assert_eq!(c.dhcp_range.end.to_string(), "192.168.77.199");
    assert_eq!(c.dhcp_range.netmask.to_string(), "255.255.255.0");
    assert_eq!(c.router.unwrap().to_string(), "192.168.77.1");
    assert_eq!(c.domain.as_ref().unwrap().as_str(), "ocp.example.com");
    assert_eq!(
        c.upstream_dns
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["192.168.77.1", "9.9.9.9"]
    );
    assert_eq!(c.dns_port, 53);
    assert_eq!(c.http_listen.to_string(), "192.168.77.2:8080");
    assert_eq!(c.lb_address.to_string(), "192.168.77.2");
    c.check().unwrap();
}

#[test]
fn the_opnsense_example_plans_an_opnsense_site_with_the_files_values() {
    let text = std::fs::read_to_string(workspace().join("examples/site-opnsense.yaml")).unwrap();
    let SitePlan::OpnSense(p) = plan_of(&text).unwrap() else {
        panic!("not opnsense");
    };
    assert_eq!(p.name, "prod");
    assert_eq!(p.url.as_str(), "https://10.20.0.1/");
    assert_eq!(
        p.ca_file.as_deref(),
        Some(Path::new("/etc/harmony/opnsense-ca.pem"))
    );
    assert!(
        matches!(&p.api_key, ApiKeySource::KeyFile(f) if f.to_string() == "/etc/harmony/opnsense-apikey.txt")
    );
    assert_eq!(p.address.to_string(), "10.20.0.1");
    assert_eq!(p.http_port, 8080);
    let f = p.files.unwrap();
    assert_eq!(f.ssh.to_string(), "10.20.0.1:22");
    assert_eq!(f.key_file, Path::new("/etc/harmony/opnsense-ssh-key"));
    assert_eq!(
        f.host_key.to_string(),
        "ssh-ed25519 SHA256:tK/H8tzEV/c29/EWam196aqu/42IWxDTm4pl2wKLHa4"
    );
    assert_eq!(
        f.staging_dir,
        Path::new("/var/lib/harmony/opnsense-staging")
    );

    // Defaults: the gateway, the operator key, no files without ssh.
    let minimal = edit(
        &edit(&text, "    address: 10.20.0.1\n", ""),
        "      key_file: /etc/harmony/opnsense-ssh-key\n",
        "",
    );
    let SitePlan::OpnSense(p) = plan_of(&minimal).unwrap() else {
        panic!()
    };
    assert_eq!(p.address.to_string(), "10.20.0.1");
    assert_eq!(
        p.files.unwrap().key_file,
        Path::new("/root/.ssh/id_ed25519")
    );
}

#[tokio::test]
async fn the_opnsense_topology_is_built_with_secrets_only_from_the_named_files_and_env() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let key = dir.path().join("apikey.txt");
    std::fs::write(&key, "key=K123\nsecret=S456\n").unwrap();
    std::fs::write(dir.path().join("ca.pem"), "no certificate\n").unwrap();
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(dir.path().join("id"))
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(workspace().join("examples/site-opnsense.yaml"))
        .unwrap()
        .replace(
            "/etc/harmony/opnsense-apikey.txt",
            &format!("{d}/apikey.txt"),
        )
        .replace("/etc/harmony/opnsense-ca.pem", &format!("{d}/ca.pem"))
        .replace("/etc/harmony/opnsense-ssh-key", &format!("{d}/id"));
    let SitePlan::OpnSense(p) = plan_of(&text).unwrap() else {
        panic!()
    };
    // The CA file is read now: one without a certificate is named.
    let err = build_opnsense("test-site.yaml", &p)
        .unwrap_err()
        .to_string();
    names(&err, &["services.opnsense.ca_file", "ca.pem"]);
    let ca = rcgen::generate_simple_self_signed(vec!["fw.example".to_string()]).unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.cert.pem()).unwrap();
    let site = build_opnsense("test-site.yaml", &p).unwrap();
    assert_eq!(site.base_url().as_str(), "http://10.20.0.1:8080/");
    assert_eq!(
        site.url_for(&"ipxe/a.ipxe".parse().unwrap()).as_str(),
        "http://10.20.0.1:8080/ipxe/a.ipxe"
    );
    let shown = format!("{site:?}");
    assert!(
        !shown.contains("S456") && !shown.contains("K123"),
        "{shown}"
    );

    // A missing key file names the field and the path, never a secret.
    std::fs::remove_file(&key).unwrap();
    let err = build_opnsense("test-site.yaml", &p)
        .unwrap_err()
        .to_string();
    names(&err, &["services.opnsense.api_key", "apikey.txt"]);
    // The environment variables the file names (only their names shown).
    let env_text = edit(
        &text,
        &format!("      key_file: {d}/apikey.txt\n"),
        "      env:\n        key: HARMONY_TEST_OPN_KEY_UNSET\n        secret: HARMONY_TEST_OPN_SECRET_UNSET\n",
    );
    let SitePlan::OpnSense(p) = plan_of(&env_text).unwrap() else {
        panic!()
    };
    let err = build_opnsense("test-site.yaml", &p)
        .unwrap_err()
        .to_string();
    names(
        &err,
        &["services.opnsense.api_key", "HARMONY_TEST_OPN_KEY_UNSET"],
    );
    // A missing SSH key names its field.
    std::fs::write(&key, "key=K123\nsecret=S456\n").unwrap();
    let no_key = text.replace(&format!("{d}/id"), &format!("{d}/absent-key"));
    let SitePlan::OpnSense(p) = plan_of(&no_key).unwrap() else {
        panic!()
    };
    let err = build_opnsense("test-site.yaml", &p)
        .unwrap_err()
        .to_string();
    names(&err, &["services.opnsense.ssh.key_file", "absent-key"]);
    // Without an ssh section the site builds, and files say what is missing.
    let start = text.find("    ssh:\n").unwrap();
    let end = text.find("    # Where large files").unwrap();
    let no_ssh = format!("{}{}", &text[..start], &text[end..]);
    let SitePlan::OpnSense(p) = plan_of(&no_ssh).unwrap() else {
        panic!()
    };
    assert!(p.files.is_none());
    let site = build_opnsense("test-site.yaml", &p).unwrap();
    let err = site
        .put_tftp_file(&"undionly.kpxe".parse().unwrap(), b"x")
        .await
        .unwrap_err()
        .to_string();
    names(
        &err,
        &["no SSH file copy configured", "services.opnsense.ssh"],
    );
}

#[test]
fn values_the_backend_cannot_use_name_the_field() {
    // Caddy serves booting hosts: loopback passes the file's rules but not
    // the Linux site's.
    let err = plan_of(&example_with(
        "http_listen: 192.168.77.2:8080",
        "http_listen: 127.0.0.1:8080",
    ))
    .unwrap_err()
    .to_string();
    names(
        &err,
        &[
            "test-site.yaml: services.linux.http_listen = 127.0.0.1:8080",
            "provisioning address",
        ],
    );
    let err = plan_of(&example_with(
        "dns_listen: 192.168.77.2:53",
        "dns_listen: 127.0.0.1:53",
    ))
    .unwrap_err()
    .to_string();
    names(
        &err,
        &[
            "services.linux.dns_listen = 127.0.0.1:53",
            "provisioning interface",
        ],
    );

    let opn = std::fs::read_to_string(workspace().join("examples/site-opnsense.yaml")).unwrap();
    let msg = refused(&edit(
        &opn,
        "    address: 10.20.0.1\n",
        "    address: 10.99.0.1\n",
    ));
    names(
        &msg,
        &[
            "services.opnsense.address = 10.99.0.1",
            "not in the provisioning subnet",
        ],
    );
    let msg = refused(&edit(
        &opn,
        "host_key: ssh-ed25519 SHA256:",
        "host_key: SHA256:",
    ));
    names(
        &msg,
        &["services.opnsense.ssh.host_key", "invalid SSH host key"],
    );
    let msg = refused(&edit(&opn, "      port: 22\n", "      port: 0\n"));
    names(&msg, &["services.opnsense.ssh.port = 0"]);

    // `site check` exits 2 naming the field.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.yaml");
    std::fs::write(
        &path,
        example_with(
            "http_listen: 192.168.77.2:8080",
            "http_listen: 127.0.0.1:8080",
        ),
    )
    .unwrap();
    let o = harmony(&["site", "check", "--site", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    names(
        &String::from_utf8_lossy(&o.stderr),
        &["services.linux.http_listen = 127.0.0.1:8080"],
    );
}
