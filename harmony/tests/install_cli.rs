//! `harmony install` as a user runs it: the real binary on a temp site
//! file and a real SQLite store holding 1 + 3 + 2 discovered hosts with
//! roles and a spare: `--dry-run` prints the whole plan in order, reads the
//! Linux site's state from Harmony's files and changes none of them (on
//! documentation addresses: nothing is contacted); bad input exits 2
//! naming the field; what is not possible says so (exit 1). The real run
//! starts dnsmasq, Caddy and HAProxy in a network namespace the test makes
//! (198.51.100.0/24 exists only there), where no host answers SSH: it fails
//! at the bootstrap's reboot, rolls every change back and says so. A
//! SIGTERM during a real run stops it and its services, resumable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/store_common.rs"]
mod common;
#[path = "../../harmony-inventory-agent/tests/support/netns.rs"]
mod netns;
#[path = "support/site_lan.rs"]
mod site_lan;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use harmony::domain::{DhcpReservation, InventoryRepository, Role, StepLog};
use harmony::infra::dnsmasq::config::{SiteRecords, render_dhcp_hosts};
use harmony::store::SqliteStore;

const HOSTS: [(u32, Role, &str); 6] = common::CLUSTER_HOSTS;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUm ops@bastion";

struct Site {
    dir: tempfile::TempDir,
    site: PathBuf,
    db: PathBuf,
    agent: PathBuf,
}

impl Site {
    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }
}

fn site_yaml(dir: &Path, pinned: &str) -> String {
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
switches:
  - {{ name: sw-a, kind: ovs, access_vlan: 77, bridge: br-prov }}
hosts:
  bootstrap: 1
  control_plane: 3
  workers: 2
  pinned:
{pinned}ssh:
  operator_key_file: {d}/id_ed25519
  cluster_public_key_file: {d}/id_ed25519.pub
"#,
        d = dir.display()
    )
}

const PINNED: &str =
    "    - { mac: 52:01:00:00:00:01, role: bootstrap, hostname: bootstrap, ip: 192.0.2.10 }
    - { mac: 52:01:00:00:00:02, role: control-plane, hostname: master-0, ip: 192.0.2.11 }
";

/// The site file, its key and agent files, the state dir holding the
/// bootstrap's reservation already, and the store.
fn site_with(pinned: &str) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("id_ed25519.pub"), format!("{KEY}\n")).unwrap();
    let agent = d.join("agent.bin");
    std::fs::write(&agent, b"\x7fELF a static agent").unwrap();
    let site = d.join("site.yaml");
    std::fs::write(&site, site_yaml(d, pinned)).unwrap();
    std::fs::create_dir_all(d.join("www")).unwrap();
    let dnsmasq = d.join("state/dnsmasq");
    std::fs::create_dir_all(&dnsmasq).unwrap();
    let mut records = SiteRecords::default();
    let bootstrap = DhcpReservation {
        mac: common::mac(1, 1),
        ip: "192.0.2.10".parse().unwrap(),
        hostname: "bootstrap".parse().unwrap(),
    };
    records.reservations.insert(bootstrap.mac, bootstrap);
    std::fs::write(dnsmasq.join("dhcp-hosts"), render_dhcp_hosts(&records)).unwrap();

    let db = d.join("inv.sqlite3");
    common::store_with_roles(&db, "192.0.2", 7, &HOSTS);
    Site {
        dir,
        site,
        db,
        agent,
    }
}

fn harmony(s: &Site, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_harmony"))
        .arg("install")
        .arg("--site")
        .arg(&s.site)
        .arg("--db")
        .arg(&s.db)
        .arg("--agent")
        .arg(&s.agent)
        .args(extra)
        .env_remove("HARMONY_DB")
        .output()
        .unwrap()
}

fn text(o: &Output) -> (i32, String, String) {
    (
        o.status.code().unwrap(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Every file under `dir`: its bytes and modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                todo.push(e.path());
            }
            let bytes = if meta.is_file() {
                std::fs::read(e.path()).unwrap()
            } else {
                Vec::new()
            };
            out.insert(e.path(), (bytes, meta.modified().unwrap()));
        }
    }
    out
}

#[test]
fn dry_run_prints_the_whole_plan_in_order_and_changes_nothing() {
    let s = site_with(PINNED);
    let before = snapshot(s.dir.path());
    let (code, out, err) = text(&harmony(&s, &["--dry-run"]));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.starts_with("dry run of "), "{out}");
    assert!(out.contains("OKDInstallationScore: "), "{out}");
    let at = |needle: &str| {
        out.find(needle)
            .unwrap_or_else(|| panic!("the plan has no {needle:?}:\n{out}"))
    };
    // The bootstrap's reservation is already in dnsmasq's file: read back,
    // not planned again; master-0's pinned address is.
    assert!(!out.contains("DHCP: reserve 192.0.2.10 "), "{out}");
    let master0 = at("DHCP: reserve 192.0.2.11 for 52:01:00:00:00:02 (master-0)");
    // Unpinned hosts: the lowest free addresses (.3 up), in host id order.
    at("DHCP: reserve 192.0.2.3 ");
    at("DHCP: reserve 192.0.2.6 ");
    // The order the issue asks for: cluster DNS, files, backends, reboot,
    // waits; control plane after the bootstrap; workers last.
    let api = at("api.lab.example.org -> 192.0.2.2");
    let reboot_bootstrap = at("reboot bootstrap");
    let wait_bootstrap = at("for bootstrap to fetch");
    assert!(api < reboot_bootstrap, "{out}");
    assert!(
        at("write ignition/bootstrap.ign") < reboot_bootstrap,
        "{out}"
    );
    assert!(at("6443") < reboot_bootstrap, "{out}");
    assert!(reboot_bootstrap < wait_bootstrap, "{out}");
    assert!(wait_bootstrap < master0, "{out}");
    assert!(master0 < at("reboot master-0"), "{out}");
    assert!(at("reboot master-2") < at("wipe /dev/"), "{out}");
    assert!(at("wipe /dev/") < at("reboot worker-0"), "{out}");
    assert!(at("reboot worker-1") < at("for worker-1 to fetch"), "{out}");
    // Installed hosts boot locally afterwards, and phases are recorded.
    at("inventory: ");
    // Nothing secret: the key file's body is not repeated.
    assert!(!out.contains("AAAAC3NzaC1lZDI1NTE5AAAAIAcICQ"), "{out}");
    // Nothing changed: every file, byte and time, under the temp dir
    // (state dir, HTTP root) except the store's own files.
    let after = snapshot(s.dir.path());
    let not_store = |m: &BTreeMap<PathBuf, _>| -> Vec<PathBuf> {
        m.keys()
            .filter(|p| !p.to_string_lossy().contains("inv.sqlite3"))
            .cloned()
            .collect()
    };
    assert_eq!(not_store(&before), not_store(&after));
    for p in not_store(&before) {
        assert_eq!(before[&p], after[&p], "{} changed", p.display());
    }
    // Run twice: the same plan.
    let (_, again, _) = text(&harmony(&s, &["--dry-run"]));
    assert_eq!(again, out);
    // Discovery alone: its plan, then nothing of the installation.
    let (code, only, err) = text(&harmony(&s, &["--dry-run", "--discovery-only"]));
    assert_eq!(code, 0, "{err}");
    assert!(only.contains("OKDSetup01Inventory: "), "{only}");
    assert!(only.contains("write default.ipxe"), "{only}");
    assert!(!only.contains("OKDInstallationScore"), "{only}");
    assert!(out.contains(only.lines().nth(1).unwrap()), "{only}");
}

#[test]
fn a_bad_site_file_exits_2_naming_the_field() {
    let s = site_with(PINNED);
    let bad = std::fs::read_to_string(&s.site)
        .unwrap()
        .replace("start: 192.0.2.100", "start: 192.0.2.250");
    std::fs::write(&s.site, bad).unwrap();
    let (code, _, err) = text(&harmony(&s, &["--dry-run"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("provisioning.dhcp_range"), "{err}");

    let s = site_with(PINNED);
    let bad = std::fs::read_to_string(&s.site)
        .unwrap()
        .replace("okd_version:", "okd_versoin:");
    std::fs::write(&s.site, bad).unwrap();
    let (code, _, err) = text(&harmony(&s, &["--dry-run"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("okd_versoin"), "{err}");
}

#[test]
fn a_site_the_inventory_does_not_match_exits_2_naming_the_field_or_host() {
    // A pinned MAC no discovered host has.
    let s = site_with(&PINNED.replace("52:01:00:00:00:02", "52:01:00:00:00:aa"));
    let (code, _, err) = text(&harmony(&s, &["--dry-run"]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("hosts.pinned[1].mac = 52:01:00:00:00:aa: no discovered host"),
        "{err}"
    );
    // A pinned name the inventory gives another host's role.
    let s = site_with(&PINNED.replace("hostname: master-0", "hostname: master-9"));
    let (code, _, err) = text(&harmony(&s, &["--dry-run"]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("hosts.pinned[1].hostname is master-9"),
        "{err}"
    );
    // The cluster's public key file missing.
    let s = site_with(PINNED);
    std::fs::remove_file(s.dir.path().join("id_ed25519.pub")).unwrap();
    let (code, _, err) = text(&harmony(&s, &["--dry-run"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("ssh.cluster_public_key_file"), "{err}");
}

#[test]
fn what_is_not_possible_says_so() {
    let s = site_with(PINNED);
    // Nothing to resume.
    let (code, _, err) = text(&harmony(&s, &["--dry-run", "--resume"]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("no interrupted OKDSetup01Inventory or OKDInstallationScore run"),
        "{err}"
    );
    // With an open run, --resume plans what is left.
    let store = SqliteStore::open(&s.db).unwrap();
    store.begin_run("OKDInstallationScore").unwrap();
    drop(store);
    let (code, out, err) = text(&harmony(&s, &["--dry-run", "--resume"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("resuming the open run"), "{out}");
    // For real without an `install` section (where the cluster's
    // credentials go): refused before anything starts, nothing changed.
    let before = snapshot(&s.state());
    let (code, _, err) = text(&harmony(&s, &[]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("install = (missing)"), "{err}");
    assert_eq!(before, snapshot(&s.state()));
    // ... and with switch ports on a switch that cannot be built.
    let s = site_with(&PINNED.replace(
        "ip: 192.0.2.11 }",
        "ip: 192.0.2.11, switch_ports: [{ switch: sw-a, port: p1 }] }",
    ));
    let with_install = std::fs::read_to_string(&s.site).unwrap()
        + &format!("install:\n  dir: {}/install\n", s.dir.path().display());
    std::fs::write(&s.site, with_install).unwrap();
    let (code, _, err) = text(&harmony(&s, &[]));
    assert_eq!(code, 1, "{err}");
    // The site's switch is built first: the OVS entry names a local
    // Open vSwitch this machine does not run, so nothing starts.
    assert!(err.contains("switches[0]"), "{err}");
    assert!(!s.state().join("caddy").exists(), "{err}");
    assert_eq!(before.len(), snapshot(&s.state()).len());
    // Switch ports: the dry run reads their switch; one it cannot reach
    // (no local Open vSwitch here) is named, nothing planned.
    let s = site_with(&PINNED.replace(
        "ip: 192.0.2.11 }",
        "ip: 192.0.2.11, switch_ports: [{ switch: sw-a, port: p1 }] }",
    ));
    let (code, out, err) = text(&harmony(&s, &["--dry-run"]));
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("switches[0].address") && err.contains("no OVSDB socket"),
        "{err}"
    );
    // No agent: named.
    let s = site_with(PINNED);
    std::fs::remove_file(&s.agent).unwrap();
    let (code, _, err) = text(&harmony(&s, &["--dry-run"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("inventory agent"), "{err}");
}

/// The site file of the namespace test: the Linux site on `srv0`
/// (198.51.100.1), no pinned host, no switch, role configs given.
fn netns_site_yaml(d: &Path) -> String {
    format!(
        r#"cluster:
  name: lab
  base_domain: example.org
  okd_version: "4.19"
  cluster_network: {{ cidr: 10.128.0.0/14, host_prefix: 23 }}
  service_network: 172.30.0.0/16
  pull_secret_file: {d}/pull-secret.json
provisioning:
  interface: {srv}
  subnet: 198.51.100.0/24
  gateway: 198.51.100.254
  harmony_address: 198.51.100.1
  dhcp_range: {{ start: 198.51.100.100, end: 198.51.100.150 }}
  dns_forwarders: [198.51.100.254]
services:
  backend: linux
  linux:
    state_dir: {d}/state
    http_root: {d}/www
    http_listen: 198.51.100.1:8080
    dns_listen: 198.51.100.1:53
    load_balancer_address: 198.51.100.1
hosts:
  bootstrap: 1
  control_plane: 3
  workers: 2
ssh:
  operator_key_file: {d}/id_ed25519
  cluster_public_key_file: {d}/id_ed25519.pub
install:
  dir: {d}/install
"#,
        d = d.display(),
        srv = site_lan::SERVER_IF,
    )
}

/// A real run's site: two linked namespaces (Harmony's server side with
/// 198.51.100.1, a client side), the operator's key, a stand-in agent file,
/// the site file ([`netns_site_yaml`]) and the store's path.
struct RealSite {
    server: netns::NetNs,
    client: netns::NetNs,
    dir: tempfile::TempDir,
    site: PathBuf,
    db: PathBuf,
    agent: PathBuf,
}

impl RealSite {
    /// `ip netns exec SERVER harmony install --site --db --agent
    /// --stop-when-done EXTRA...` (`ip netns exec` execs: the child is
    /// Harmony itself), under `timeout SECS` if given.
    fn install(&self, timeout_s: Option<u32>, extra: &[&str]) -> Command {
        let mut c = match timeout_s {
            Some(t) => {
                let mut c = Command::new("timeout");
                c.arg(t.to_string()).arg("ip");
                c
            }
            None => Command::new("ip"),
        };
        c.args(["netns", "exec", self.server.name()])
            .arg(env!("CARGO_BIN_EXE_harmony"))
            .arg("install")
            .arg("--site")
            .arg(&self.site)
            .arg("--db")
            .arg(&self.db)
            .arg("--agent")
            .arg(&self.agent)
            .arg("--stop-when-done")
            .args(extra)
            .env_remove("HARMONY_DB");
        c
    }

    fn new_or_skip(server: &str, client: &str, test: &str) -> Option<RealSite> {
        let server = netns::NetNs::new_or_skip(server, test)?;
        let client = netns::NetNs::new(client).unwrap();
        site_lan::link(&server, &client);
        let dir = site_lan::open_tempdir();
        let d = dir.path();
        let keygen = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "ops", "-f"])
            .arg(d.join("id_ed25519"))
            .status()
            .unwrap();
        assert!(keygen.success());
        let agent = d.join("agent.bin");
        std::fs::write(&agent, b"\x7fELF a static agent").unwrap();
        let site = d.join("site.yaml");
        std::fs::write(&site, netns_site_yaml(d)).unwrap();
        let db = d.join("inv.sqlite3");
        Some(RealSite {
            server,
            client,
            dir,
            site,
            db,
            agent,
        })
    }
}

/// Every file under `dir` whose text names `needle`.
fn files_naming(dir: &Path, needle: &str) -> Vec<PathBuf> {
    snapshot(dir)
        .into_iter()
        .filter(|(_, (bytes, _))| String::from_utf8_lossy(bytes).contains(needle))
        .map(|(p, _)| p)
        .collect()
}

#[test]
fn a_real_run_that_fails_at_the_bootstraps_reboot_rolls_back_and_says_so() {
    const T: &str = "a_real_run_that_fails_at_the_bootstraps_reboot_rolls_back_and_says_so";
    let Some(real) = RealSite::new_or_skip("instsrv", "instcli", T) else {
        return;
    };
    let d = real.dir.path();
    let (db, agent) = (real.db.clone(), real.agent.clone());
    // The bootstrap's discovery address (host 1: .101) exists, and refuses
    // SSH at once (nothing listens on 22 there).
    real.client.ip_ok(&[
        "addr",
        "add",
        "198.51.100.101/24",
        "dev",
        site_lan::CLIENT_IF,
    ]);
    common::store_with_roles(&db, "198.51.100", 7, &HOSTS);

    let run = |extra: &[&str]| text(&real.install(Some(120), extra).output().unwrap());
    let (code, out, err) = run(&[]);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    // Progress, one line per step (stderr is not a terminal), then the
    // error: what failed, on which host, what was rolled back.
    assert!(
        err.contains("OKDInstallationScore [1/"),
        "no progress lines:\n{err}"
    );
    // Discovery ran first, as its own saga: the boot files and the agent
    // published, the 7 stored hosts already enough (no scan).
    let discovery = err
        .find("OKDSetup01Inventory [1/")
        .unwrap_or_else(|| panic!("no discovery progress:\n{err}"));
    assert!(
        discovery < err.find("OKDInstallationScore [1/").unwrap(),
        "{err}"
    );
    assert!(err.contains("7 hosts already known"), "{err}");
    assert!(err.contains("reboot of bootstrap"), "{err}");
    assert!(err.contains("rolled back: undid"), "{err}");
    assert!(err.contains("run `harmony install` again"), "{err}");
    assert!(
        err.contains("DNS (cluster): api.lab.example.org -> 198.51.100.1"),
        "{err}"
    );
    // Before failing it had reserved, named and served the bootstrap...
    assert!(err.contains("reserve 198.51.100."), "{err}");
    // ... and every change is undone: no reservation, DNS record, boot
    // file or load-balancer backend names it any more.
    let state = d.join("state");
    assert!(state.join("dnsmasq").is_dir(), "the site never started");
    assert_eq!(
        files_naming(&state.join("dnsmasq"), "bootstrap"),
        Vec::<PathBuf>::new()
    );
    assert_eq!(
        files_naming(&state.join("haproxy"), "bootstrap"),
        Vec::<PathBuf>::new()
    );
    assert_eq!(
        files_naming(&d.join("www"), "bootstrap"),
        Vec::<PathBuf>::new()
    );
    // Discovery's own results stay (its saga succeeded): what unknown hosts
    // boot, and the agent they fetch.
    assert_eq!(
        std::fs::read(d.join("www/harmony/harmony-inventory-agent")).unwrap(),
        std::fs::read(&agent).unwrap()
    );
    assert!(d.join("www/default.ipxe").is_file());
    let per_mac = d
        .join("www/ipxe")
        .join(format!("{}.ipxe", common::mac(1, 1).hyphenated()));
    assert!(!per_mac.exists(), "{}", per_mac.display());
    // The bootstrap is marked failed so that the next run starts it over.
    let store = SqliteStore::open(&db).unwrap();
    let bootstrap = store
        .host(&common::host(1, "192.0.2.1").id)
        .unwrap()
        .unwrap();
    assert_eq!(bootstrap.phase, harmony::domain::InstallPhase::Failed);
    drop(store);
    // The services the run started are gone with it.
    let left = Command::new("pgrep")
        .args(["-f", &state.display().to_string()])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "left running: {}",
        String::from_utf8_lossy(&left.stdout)
    );
    // Rolled back entirely: nothing is left to resume.
    let (code, _, err) = run(&["--resume"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("no interrupted OKDSetup01Inventory or OKDInstallationScore run"),
        "{err}"
    );
}

/// SIGTERM (or Ctrl-C, or the terminal closing) during a real run: the run
/// stops where it was (here discovery, waiting for hosts that never come),
/// the services it started stop with it, the error names the signal and
/// `--resume`, and the step log holds the run as interrupted.
#[test]
fn a_signal_during_a_real_run_stops_its_services_and_leaves_it_resumable() {
    const T: &str = "a_signal_during_a_real_run_stops_its_services_and_leaves_it_resumable";
    let Some(real) = RealSite::new_or_skip("instsig", "instsgc", T) else {
        return;
    };
    // An empty store: discovery waits for the site's 6 hosts.
    let d = real.dir.path();
    let err_file = d.join("stderr.log");
    let install = |extra: &[&str]| real.install(None, extra);
    // `ip netns exec` execs: the child is Harmony itself.
    let mut run = install(&[])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err_file).unwrap())
        .spawn()
        .unwrap();
    let state = d.join("state");
    let services = || {
        let out = Command::new("pgrep")
            .args(["-f", &state.display().to_string()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let waited = std::time::Instant::now();
    loop {
        let err = std::fs::read_to_string(&err_file).unwrap_or_default();
        if err.contains("of 6 expected hosts known") && !services().is_empty() {
            break;
        }
        if let Some(st) = run.try_wait().unwrap() {
            panic!("{T}: harmony ended ({st}) before discovery waited:\n{err}");
        }
        if waited.elapsed() > std::time::Duration::from_secs(90) {
            let _ = run.kill();
            panic!("{T}: discovery never waited for hosts:\n{err}");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(run.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let stopping = std::time::Instant::now();
    let status = loop {
        if let Some(st) = run.try_wait().unwrap() {
            break st;
        }
        if stopping.elapsed() > std::time::Duration::from_secs(30) {
            let _ = run.kill();
            panic!("{T}: harmony still running 30 s after SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let err = std::fs::read_to_string(&err_file).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("interrupted by SIGTERM"), "{err}");
    assert!(err.contains("harmony install --resume"), "{err}");
    assert_eq!(services(), "", "services left running after SIGTERM");
    // What it had done stays (it was not rolled back): discovery's files.
    assert!(d.join("www/default.ipxe").is_file());
    // And the step log offers the run to resume (a run rolled back or
    // finished would be refused: "nothing to resume").
    let resumed = install(&["--resume", "--dry-run", "--discovery-only"])
        .output()
        .unwrap();
    let (code, out, rerr) = text(&resumed);
    assert_eq!(code, 0, "{rerr}");
    assert!(out.contains("OKDSetup01Inventory"), "{out}");
}

/// The dry run of a site whose hosts have switch ports reads a real Open
/// vSwitch (its own ovsdb-server and ovs-vswitchd in a namespace the test
/// makes, reached through the OVSDB socket the site file names): the plan
/// puts the pinned host's ports to access for discovery first, then plans
/// its LAG once its bond is up; the switch is left exactly as it was.
#[test]
fn a_dry_run_reads_the_sites_switch_and_plans_its_ports() {
    use harmony::infra::ovs::daemons::OvsDaemonsConfig;
    use harmony::infra::ovs::{OvsDaemons, OvsName};

    let Some(ns) = netns::NetNs::new_or_skip("instovs", "a_dry_run_reads_the_sites_switch") else {
        return;
    };
    ns.ip_ok(&["link", "set", "dev", "lo", "up"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let daemons = rt
        .block_on(OvsDaemons::start(OvsDaemonsConfig {
            netns: Some(ns.name().to_string()),
            ..OvsDaemonsConfig::default()
        }))
        .unwrap();
    rt.block_on(daemons.add_bridge(&"br-prov".parse::<OvsName>().unwrap()))
        .unwrap();
    let vsctl = |args: &[&str]| -> String {
        let out = rt.block_on(daemons.vsctl(args).output()).unwrap();
        assert!(out.status.success(), "ovs-vsctl {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    for (p, peer) in [("p1", "xp1"), ("p2", "xp2")] {
        ns.add_veth(p, peer).unwrap();
        vsctl(&["add-port", "br-prov", p]);
    }
    // p1 carries another VLAN now; p2 is already right.
    vsctl(&["set", "port", "p1", "tag=5"]);
    vsctl(&["set", "port", "p2", "tag=77", "vlan_mode=access"]);
    let before = vsctl(&["--format=csv", "list", "port"]);

    let db = daemons.db_socket().display().to_string();
    let s = site_with(&PINNED.replace(
        "ip: 192.0.2.11 }",
        "ip: 192.0.2.11, switch_ports: [{ switch: sw-a, port: p1 }, { switch: sw-a, port: p2 }] }",
    ));
    let text_with_socket = std::fs::read_to_string(&s.site).unwrap().replace(
        "{ name: sw-a, kind: ovs,",
        &format!("{{ name: sw-a, kind: ovs, address: \"unix:{db}\","),
    );
    std::fs::write(&s.site, text_with_socket).unwrap();
    let (code, out, err) = text(&harmony(&s, &["--dry-run"]));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let at = |needle: &str| {
        out.find(needle)
            .unwrap_or_else(|| panic!("the plan has no {needle:?}:\n{out}"))
    };
    // Discovery first: master-0's ports to access, read from the switch
    // (p1 in VLAN 5 now), before the boot files and the installation.
    let access = at("192.0.2.11: switch ovs bridge br-prov ports p1, p2 to access vlan 77");
    assert!(
        out[access..].contains("p1: admin up oper up, access vlan 5"),
        "{out}"
    );
    let installation = at("OKDInstallationScore: ");
    assert!(access < installation, "{out}");
    assert!(at("default.ipxe") < installation, "{out}");
    // The installation: its LAG once its bond is up, after its reboot.
    let lag = at("switch ovs bridge br-prov ports p1, p2 to lacp lag");
    assert!(at("reboot master-0") < lag, "{out}");
    // Nothing sent: every port record as it was.
    assert_eq!(vsctl(&["--format=csv", "list", "port"]), before);
    rt.block_on(daemons.stop()).unwrap();
}
