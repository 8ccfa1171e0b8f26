//! The example site program as a user runs it: `install-site --plan` on a
//! temp site file (documentation addresses: nothing is contacted) and a real
//! SQLite store with 1 + 3 + 2 discovered hosts with roles prints the plan
//! of each stage, in order, from the library's Scores; bad input is named.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../harmony/tests/support/store_common.rs"]
mod common;

use std::path::Path;
use std::process::Command;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUm ops@bastion";

fn site_yaml(d: &Path) -> String {
    format!(
        r#"cluster:
  name: lab
  base_domain: example.org
  okd_version: "4.19"
  cluster_network: {{ cidr: 10.128.0.0/14, host_prefix: 23 }}
  service_network: 172.30.0.0/16
  pull_secret_file: {d}/pull-secret.json
provisioning:
  interface: prov0
  subnet: 192.0.2.0/24
  gateway: 192.0.2.1
  harmony_address: 192.0.2.2
  dhcp_range: {{ start: 192.0.2.100, end: 192.0.2.199 }}
  dns_forwarders: [192.0.2.1]
services:
  backend: linux
  linux:
    state_dir: {d}/state
    http_root: {d}/www
    http_listen: 192.0.2.2:8080
    dns_listen: 192.0.2.2:53
    load_balancer_address: 192.0.2.2
hosts:
  bootstrap: 1
  control_plane: 3
  workers: 2
ssh:
  operator_key_file: {d}/id_ed25519
  cluster_public_key_file: {d}/id_ed25519.pub
"#,
        d = d.display()
    )
}

fn install_site(d: &Path, extra: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_install-site"))
        .arg("--site")
        .arg(d.join("site.yaml"))
        .arg("--agent")
        .arg(d.join("agent.bin"))
        .arg("--db")
        .arg(d.join("inv.sqlite3"))
        .args(extra)
        .output()
        .unwrap();
    (
        o.status.code().unwrap(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn the_example_plans_the_three_stages_in_order_from_the_site_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("site.yaml"), site_yaml(d)).unwrap();
    std::fs::write(d.join("id_ed25519.pub"), format!("{KEY}\n")).unwrap();
    std::fs::write(d.join("agent.bin"), b"\x7fELF a static agent").unwrap();
    common::store_with_roles(&d.join("inv.sqlite3"), "192.0.2", 7, &common::CLUSTER_HOSTS);

    let (code, out, err) = install_site(d, &["--plan"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let at = |needle: &str| {
        out.find(needle)
            .unwrap_or_else(|| panic!("the plan has no {needle:?}:\n{out}"))
    };
    // Discovery first (the boot files and the agent it publishes), then the
    // three stages.
    let discovery = at("OKDSetup01Inventory:");
    assert!(
        discovery < at("write harmony/harmony-inventory-agent"),
        "{out}"
    );
    let bootstrap = at("OKDSetup02Bootstrap:");
    assert!(discovery < bootstrap, "{out}");
    let control_plane = at("OKDSetup03ControlPlane:");
    let workers = at("OKDSetup04Workers:");
    assert!(
        bootstrap < control_plane && control_plane < workers,
        "{out}"
    );
    // Each stage plans its own hosts.
    assert!(at("reboot bootstrap") < control_plane, "{out}");
    assert!(at("reboot master-0") > control_plane, "{out}");
    assert!(at("wipe /dev/") < workers, "{out}");
    assert!(at("reboot worker-1") > workers, "{out}");
    // Nothing was started or written: no state dir appeared.
    assert!(!d.join("state").exists());

    // Bad input is named: a missing agent, an unknown argument.
    std::fs::remove_file(d.join("agent.bin")).unwrap();
    let (code, _, err) = install_site(d, &["--plan"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the inventory agent"), "{err}");
    let (code, _, err) = install_site(d, &["--plna"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown argument \"--plna\""), "{err}");
}
