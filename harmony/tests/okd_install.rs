//! `OKDInstallationScore` (and its three stages) on a `FakeSite` with every
//! capability: the generic saga harness (plan without acting, second run
//! all Noop, a failure at every change undone, a crash after every step-log
//! write resumed with each side effect once), the plan's order, the
//! retired bootstrap, the local-boot scripts, and bad plans refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/store_common.rs"]
mod common;
#[path = "support/site_boot.rs"]
mod site;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use harmony::domain::cluster::WorkerIdentity;
use harmony::domain::{
    EventBus, HostRecord, InstallPhase, Interpret, Inventory, InventoryRepository, LagId,
    MemoryStepLog, RemoteCommand, Role, Score, SwitchPort, VlanId,
};
use harmony::infra::fakes::harness::{HarnessOptions, check_saga_with};
use harmony::infra::fakes::{FakeBond, FakeSite, SiteState};
use harmony::modules::boot::{InstallConfig, PullSecret};
use harmony::modules::okd::install::{
    ClusterSettings, HostPorts, InstallSpec, InstallTiming, InstallerJob, OKDInstallationScore,
    OKDSetup02Bootstrap, Reservation, RoleConfigSource, install_hosts,
};
use harmony::store::SqliteStore;

const HOSTS: [(u32, Role, &str); 6] = common::CLUSTER_HOSTS;

fn reserved(n: u32) -> IpAddr {
    format!("192.168.77.{}", 10 + n).parse().unwrap()
}

/// A store with 1 + 3 + 2 hosts with roles, and one free host.
fn cluster_store(dir: &std::path::Path) -> Arc<SqliteStore> {
    Arc::new(common::store_with_roles(
        &dir.join("inv.sqlite3"),
        "192.168.77",
        7,
        &HOSTS,
    ))
}

fn ports_of(n: u32) -> Vec<SwitchPort> {
    vec![
        format!("p{n}a").parse().unwrap(),
        format!("p{n}b").parse().unwrap(),
    ]
}

fn spec() -> InstallSpec {
    let mut reservations = BTreeMap::new();
    let mut ports = BTreeMap::new();
    for (n, _, _) in HOSTS {
        let id = common::host(n, "192.0.2.1").id;
        reservations.insert(
            id.clone(),
            Reservation {
                mac: common::mac(n, 1),
                ip: reserved(n),
            },
        );
        ports.insert(
            id,
            HostPorts {
                ports: ports_of(n),
                lag: LagId::try_from(n as u16).unwrap(),
            },
        );
    }
    InstallSpec {
        cluster: ClusterSettings {
            name: "ocp".parse().unwrap(),
            base_domain: "example.com".parse().unwrap(),
            lb_address: "192.168.77.2".parse().unwrap(),
            access_vlan: VlanId::try_from(77).unwrap(),
        },
        boot: site::site_boot(),
        role_configs: RoleConfigSource::Given,
        networks: Default::default(),
        reservations,
        ports,
        timing: InstallTiming {
            fetch_within: Duration::from_secs(2),
            api_within: Duration::from_secs(2),
            bootstrap_within: Duration::from_secs(2),
            workers_within: Duration::from_secs(2),
            lacp_within: Duration::from_secs(2),
            wipe_within: Duration::from_secs(2),
            lookback: Duration::from_secs(60),
            poll: Duration::from_millis(1),
        },
    }
}

fn records(store: &SqliteStore) -> Vec<HostRecord> {
    store.hosts().unwrap()
}

/// The site as a real one would be: each host's installed OS has its bond
/// up over its two NICs, cabled to its two ports; the retired bootstrap
/// leases a discovery address.
fn site_for(store: &SqliteStore) -> FakeSite {
    let mut state = SiteState::default();
    // The OS images the installer fetches (staged by the asset Scores).
    let boot = site::site_boot();
    for p in [boot.scos_kernel, boot.scos_initramfs, boot.scos_rootfs] {
        state.http_files.insert(p, b"image".to_vec());
    }
    let hosts = install_hosts(&spec(), &records(store)).unwrap();
    for (h, (n, _, _)) in hosts.iter().zip(HOSTS) {
        let (bond, slaves) = h.bond.clone().expect("two NICs make a bond");
        state.bonds.insert(
            h.ip,
            FakeBond {
                name: bond,
                system_mac: h.pxe_mac,
                slaves: slaves.into_iter().zip(ports_of(n)).collect(),
                up: true,
            },
        );
    }
    state.leases.push(harmony::domain::DhcpLease {
        mac: common::mac(1, 1),
        ip: "192.168.77.150".parse().unwrap(),
        hostname: None,
        expires: None,
    });
    let site = FakeSite::with_state(state);
    // The cluster the hosts form: its API answers once the bootstrap is
    // up, bootstrap completes a while later, each worker asks to join.
    site.api_answers_after(2);
    site.bootstrap_complete_after(2);
    for h in hosts.iter().filter(|h| h.role == Role::Worker) {
        site.join_worker(WorkerIdentity {
            hostname: h.hostname.clone(),
            addresses: vec![h.ip],
        });
    }
    site
}

#[tokio::test]
async fn okd_installation_passes_the_saga_harness() {
    // Thousands of attempts, each with its own store: in memory-backed
    // /dev/shm where there is one (fsyncs there cost nothing).
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let score = OKDInstallationScore::new(spec());
    // A fresh store per attempt (phases are part of what is resumed); the
    // harness holds one attempt at a time, so older stores are deleted.
    let stores: std::sync::Mutex<std::collections::VecDeque<tempfile::TempDir>> =
        Default::default();
    // Every failure point and every crash point of checks 1 to 4; the
    // crash during a rollback (n²/2 attempts) at 8 x 8 spread points.
    let options = HarnessOptions {
        rollback_crash_points: Some(8),
    };
    let report = check_saga_with(
        &score,
        || {
            let attempt = tempfile::tempdir_in(dir.path()).unwrap();
            let store = cluster_store(attempt.path());
            // 1 + 3 + 1: every stage, a shorter saga (the harness tries
            // every change and every log write).
            store
                .assign(&common::host(6, "192.0.2.1").id, None, None)
                .unwrap();
            {
                let mut kept = stores.lock().unwrap();
                kept.push_back(attempt);
                while kept.len() > 2 {
                    kept.pop_front();
                }
            }
            let site = site_for(&store);
            async move { (Inventory::new(store, EventBus::default()), site) }
        },
        options,
    )
    .await
    .unwrap();
    eprintln!("okd installation through the saga harness: {report:?}");
    assert!(report.changes > 60, "{report:?}");
    assert_eq!(report.failures_injected, report.changes);
    assert!(report.rollback_crashes_injected >= 40, "{report:?}");
}

#[tokio::test]
async fn the_plan_lists_every_change_in_order_and_a_finished_install_plans_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = cluster_store(dir.path());
    let site = site_for(&store);
    let inventory = Inventory::new(store.clone(), EventBus::default())
        .with_step_log(Arc::new(MemoryStepLog::default()));
    let score = OKDInstallationScore::new(spec());
    let interpret: Box<dyn Interpret<FakeSite>> = Score::<FakeSite>::create_interpret(&score);
    let plan = interpret.plan(&inventory, &site).await.unwrap();
    let text = plan.to_string();
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("the plan has no {needle:?}:\n{text}"))
    };
    // The order the issue asks for.
    assert!(at("DHCP: reserve 192.168.77.11") < at("reboot bootstrap"));
    assert!(at("reboot bootstrap") < at("wait up to 2 s for bootstrap to fetch"));
    assert!(at("api.ocp.example.com -> 192.168.77.2") < at("reboot bootstrap"));
    assert!(at("reboot master-0") < at("bootstrap-complete"));
    assert!(at("bootstrap-complete") < at("take bootstrap"));
    assert!(at("wipe /dev/") > at("take bootstrap"));
    assert!(at("reboot worker-1") > at("wipe /dev/"));
    assert!(
        site.mutating_calls() == 0,
        "the plan acted: {:?}",
        site.calls()
    );

    interpret.execute(&inventory, &site).await.unwrap();
    let state = site.state();
    // The bootstrap is gone from DHCP, DNS and the load balancer, its files
    // removed, its ports in access, its install disk (only that) wiped.
    let bootstrap_mac = common::mac(1, 1);
    assert!(!state.reservations.contains_key(&bootstrap_mac));
    assert!(
        state
            .dns
            .keys()
            .all(|n| !n.to_string().starts_with("bootstrap.")),
        "{:?}",
        state.dns
    );
    for svc in state.services.values() {
        assert!(
            svc.backends
                .iter()
                .all(|b| b.hostname.as_str() != "bootstrap"),
            "{svc:?}"
        );
    }
    let wipes: Vec<&(IpAddr, RemoteCommand)> = state
        .commands
        .iter()
        .filter(|(_, c)| matches!(c, RemoteCommand::WipeDisk { .. }))
        .collect();
    assert_eq!(wipes.len(), 1, "{:?}", state.commands);
    assert_eq!(wipes[0].0, "192.168.77.150".parse::<IpAddr>().unwrap());
    // Installed hosts boot their local disk from now on.
    let master_script = state
        .http_files
        .get(
            &format!("ipxe/{}.ipxe", common::mac(2, 1).hyphenated())
                .parse()
                .unwrap(),
        )
        .unwrap();
    assert!(String::from_utf8_lossy(master_script).contains("\nexit\n"));
    // Phases: every master and worker installed, the bootstrap free.
    for (n, role, _) in HOSTS {
        let rec = store
            .host(&common::host(n, "192.0.2.1").id)
            .unwrap()
            .unwrap();
        let want = if role == Role::Bootstrap {
            InstallPhase::Decommissioned
        } else {
            InstallPhase::Installed
        };
        assert_eq!(rec.phase, want, "{}", rec.id);
    }
    let again = interpret.plan(&inventory, &site).await.unwrap();
    assert!(again.is_empty(), "{again}");
}

#[tokio::test]
async fn a_stage_alone_is_a_saga_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let store = cluster_store(dir.path());
    let site = site_for(&store);
    let inventory = Inventory::new(store, EventBus::default())
        .with_step_log(Arc::new(MemoryStepLog::default()));
    let score = OKDSetup02Bootstrap::new(spec());
    let interpret: Box<dyn Interpret<FakeSite>> = Score::<FakeSite>::create_interpret(&score);
    let plan = interpret.plan(&inventory, &site).await.unwrap();
    let text = plan.to_string();
    assert!(text.starts_with("OKDSetup02Bootstrap:"), "{text}");
    assert!(text.contains("reboot bootstrap"), "{text}");
    assert!(
        !text.contains("master-0"),
        "02 touches only the bootstrap:\n{text}"
    );
}

#[tokio::test]
async fn a_cluster_without_its_control_plane_or_a_reservation_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = cluster_store(dir.path());
    let mut s = spec();
    let master = common::host(3, "192.0.2.1").id;
    s.reservations.remove(&master);
    let err = install_hosts(&s, &records(&store)).unwrap_err().to_string();
    assert!(
        err.contains(master.as_str()) && err.contains("no reserved address"),
        "{err}"
    );

    store.assign(&master, None, None).unwrap();
    let err = install_hosts(&spec(), &records(&store))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("3 control-plane host(s), the inventory has 2"),
        "{err}"
    );
}

/// A stand-in `openshift-install` that writes the three role configs and
/// counts its runs.
fn fake_installer(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("openshift-install");
    let cfg = r#"{"ignition":{"version":"3.2.0"}}"#;
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\nset -e\n[ \"$1 $2 $3\" = 'create ignition-configs --dir' ] || exit 3\n\
             [ -f \"$4/install-config.yaml\" ] || exit 4\n\
             echo run >> \"$4/../runs\"\n\
             for r in bootstrap master worker; do printf '%s' '{cfg}' > \"$4/$r.ign\"; done\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[tokio::test]
async fn the_installer_runs_once_and_its_role_configs_are_published() {
    let dir = tempfile::tempdir().unwrap();
    let store = cluster_store(dir.path());
    let site = site_for(&store);
    let inventory = Inventory::new(store, EventBus::default())
        .with_step_log(Arc::new(MemoryStepLog::default()));
    let install_dir = dir.path().join("install");
    let mut s = spec();
    s.role_configs = RoleConfigSource::Installer(Box::new(InstallerJob {
        openshift_install: fake_installer(dir.path()),
        install_dir: install_dir.clone(),
        install_config: InstallConfig {
            base_domain: "example.com".parse().unwrap(),
            cluster_name: "ocp".parse().unwrap(),
            machine_network: "192.168.77.0/24".parse().unwrap(),
            cluster_network: "10.128.0.0/14".parse().unwrap(),
            host_prefix: 23,
            service_network: "172.30.0.0/16".parse().unwrap(),
            node_addresses: Vec::new(),
            pull_secret: PullSecret::new(r#"{"auths":{"fake":{"auth":"aWQ6cGFzcwo="}}}"#).unwrap(),
            ssh_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUm ops@bastion"
                .parse()
                .unwrap(),
        },
    }));
    let score = OKDSetup02Bootstrap::new(s);
    let interpret: Box<dyn Interpret<FakeSite>> = Score::<FakeSite>::create_interpret(&score);
    let plan = interpret.plan(&inventory, &site).await.unwrap().to_string();
    assert!(plan.contains("create ignition-configs --dir"), "{plan}");
    assert!(!install_dir.exists(), "the plan wrote nothing");

    interpret.execute(&inventory, &site).await.unwrap();
    let runs = || std::fs::read_to_string(dir.path().join("runs")).unwrap();
    assert_eq!(runs(), "run\n");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(install_dir.join("install-config.yaml"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "install-config.yaml holds the pull secret"
    );
    let published: Vec<String> = site
        .state()
        .http_files
        .keys()
        .map(|p| p.to_string())
        .filter(|p| p.starts_with("okd/"))
        .collect();
    assert_eq!(
        published,
        ["okd/bootstrap.ign", "okd/master.ign", "okd/worker.ign"]
    );

    // Published configs taken away (a lost HTTP root): they come back from
    // the install directory; the installer (new certificates) never reruns.
    let mut state = site.state();
    state
        .http_files
        .retain(|p, _| !p.as_str().starts_with("okd/"));
    let site2 = FakeSite::with_state(state);
    interpret.execute(&inventory, &site2).await.unwrap();
    assert_eq!(runs(), "run\n");
    assert!(
        site2
            .state()
            .http_files
            .keys()
            .any(|p| p.as_str() == "okd/master.ign")
    );
}

/// Sets `n`'s recorded phase, through every phase between.
fn set_phase(store: &SqliteStore, n: u32, path: &[InstallPhase]) {
    let id = common::host(n, "192.0.2.1").id;
    for p in path {
        store.set_phase(&id, *p).unwrap();
    }
}

async fn plan_of(score: &dyn Score<FakeSite>, inventory: &Inventory, site: &FakeSite) -> String {
    let interpret = score.create_interpret();
    interpret.plan(inventory, site).await.unwrap().to_string()
}

/// A run that stopped between sending a reboot and recording it leaves the
/// phase written just before the command. The next run reboots the host
/// only if the system it was rebooted from still answers there.
#[tokio::test]
async fn a_reboot_an_interrupted_run_sent_is_not_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = cluster_store(dir.path());
    let site = site_for(&store);
    let inventory = Inventory::new(store.clone(), EventBus::default())
        .with_step_log(Arc::new(MemoryStepLog::default()));
    let hosts = install_hosts(&spec(), &records(&store)).unwrap();
    let bootstrap = hosts.iter().find(|h| h.role == Role::Bootstrap).unwrap();
    // Into the installer: the phase says the command was about to go out.
    set_phase(&store, 1, &[InstallPhase::BootConfigured]);
    let text = plan_of(&OKDSetup02Bootstrap::new(spec()), &inventory, &site).await;
    assert!(
        text.contains("reboot bootstrap"),
        "discovery still answers: the reboot never went out\n{text}"
    );
    site.edit(|s| {
        s.silent.insert(bootstrap.discovery_ip);
    });
    let text = plan_of(&OKDSetup02Bootstrap::new(spec()), &inventory, &site).await;
    assert!(
        !text.contains("reboot bootstrap"),
        "discovery is gone: the host rebooted\n{text}"
    );
    assert!(
        text.contains("wait up to 2 s for bootstrap to fetch"),
        "{text}"
    );

    // Into discovery, at its retirement.
    set_phase(
        &store,
        1,
        &[
            InstallPhase::Installing,
            InstallPhase::Installed,
            InstallPhase::Retiring,
        ],
    );
    let retire = |text: &str| text.contains("into discovery (PXE)");
    let text = plan_of(&OKDInstallationScore::new(spec()), &inventory, &site).await;
    assert!(retire(&text), "its installed OS answers\n{text}");
    site.edit(|s| {
        s.silent.insert(bootstrap.ip);
    });
    let text = plan_of(&OKDInstallationScore::new(spec()), &inventory, &site).await;
    assert!(!retire(&text), "its installed OS is gone\n{text}");
    assert!(text.contains("wipe /dev/"), "{text}");
    assert_eq!(site.mutating_calls(), 0, "{:?}", site.calls());
}
