//! The whole cluster's boot files, rendered from a real SQLite inventory
//! and written into an HTTP root: per-MAC iPXE scripts carry the planned
//! install disk and bond; per-host Ignition passes `ignition-validate`;
//! a second run is a Noop; a host that loses its role loses its files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/store_common.rs"]
mod common;
#[path = "support/site_boot.rs"]
mod site;

use std::path::Path;
use std::sync::Arc;

use harmony::domain::{
    EventBus, Inventory, InventoryRepository, KernelArg, Maestro, Outcome, Role,
};
use harmony::infra::http_root::HttpRoot;
use harmony::modules::okd::artefacts::BootArtefacts;
use harmony::modules::okd::bond::parse_network_args;
use harmony::modules::okd::ignition::{IGNITION_VALIDATE, check_parses, run_ignition_validate};
use harmony::store::SqliteStore;

/// Hosts 1..=5: bootstrap, three masters, one worker; host 6 unassigned.
fn inventory(dir: &Path) -> Arc<SqliteStore> {
    let store = Arc::new(SqliteStore::open(&dir.join("inv.sqlite3")).unwrap());
    for n in 1..=6 {
        store
            .upsert_discovered(
                &common::host(n, &format!("192.168.77.{}", 20 + n)),
                common::t(n.into()),
            )
            .unwrap();
    }
    let roles = [
        (1, Role::Bootstrap, "bootstrap"),
        (2, Role::ControlPlane, "master-0"),
        (3, Role::ControlPlane, "master-1"),
        (4, Role::ControlPlane, "master-2"),
        (5, Role::Worker, "worker-0"),
    ];
    for (n, role, name) in roles {
        let id = common::host(n, "192.0.2.1").id;
        store
            .assign(&id, Some(role), Some(name.parse().unwrap()))
            .unwrap();
    }
    store
}

fn kernel_args(script: &str) -> Vec<KernelArg> {
    let line = script
        .lines()
        .find(|l| l.trim_start().starts_with("kernel "))
        .unwrap();
    line.split_whitespace()
        .take_while(|a| *a != "||")
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .skip(1) // the kernel URL
        .map(|a| a.parse().unwrap())
        .collect()
}

#[tokio::test]
async fn renders_writes_validates_then_noop_then_removes() {
    let dir = tempfile::tempdir().unwrap();
    let store = inventory(dir.path());
    let www = dir.path().join("www");
    let site = HttpRoot::new(&www, "http://192.168.77.1:8080/".parse().unwrap());
    let maestro = Maestro::new(
        site,
        Inventory::new(store.clone(), EventBus::default()).with_step_log(store.clone()),
    );
    let score = BootArtefacts {
        site: site::site_boot(),
        networks: Default::default(),
    };

    let first = maestro.interpret(&score).await.unwrap();
    let Outcome::Success { changes } = &first else {
        panic!("{first:?}")
    };
    // 2 discovery files + 5 Ignition configs + 2 MACs x 5 hosts.
    assert_eq!(changes.len(), 17, "{changes:#?}");
    assert!(www.join("inventory.ks").exists());
    // default.ipxe chains exactly where the per-MAC scripts are written.
    let default = std::fs::read_to_string(www.join("default.ipxe")).unwrap();
    assert!(
        default.contains("chain --autofree http://192.168.77.1:8080/ipxe/${netX/mac:hexhyp}.ipxe "),
        "{default}"
    );

    for (n, name) in [
        (1, "bootstrap"),
        (2, "master-0"),
        (3, "master-1"),
        (4, "master-2"),
        (5, "worker-0"),
    ] {
        let ign = std::fs::read(www.join(format!("ignition/{name}.ign"))).unwrap();
        check_parses(&ign).unwrap();
        run_ignition_validate(Path::new(IGNITION_VALIDATE), &ign).unwrap();
        let host = common::host(n, "192.0.2.1");
        for mac in &host.macs {
            let script =
                std::fs::read_to_string(www.join(format!("ipxe/{}.ipxe", mac.hyphenated())))
                    .unwrap();
            assert!(script.starts_with("#!ipxe"));
            let args = kernel_args(&script);
            let arg = |key: &str| {
                args.iter()
                    .find(|a| a.key() == key)
                    .map(|a| a.as_str().to_string())
            };
            assert_eq!(
                arg("coreos.inst.ignition_url").as_deref(),
                Some(
                    format!(
                        "coreos.inst.ignition_url=http://192.168.77.1:8080/ignition/{name}.ign"
                    )
                    .as_str()
                )
            );
            assert!(
                arg("coreos.inst.install_dev")
                    .unwrap()
                    .contains("/dev/disk/by-id/"),
                "{script}"
            );
            let net = parse_network_args(&args).unwrap();
            let bond = net.bond("bond0").expect("bond0 planned");
            assert_eq!(bond.slaves, ["eno1", "eno2"]);
            assert!(
                bond.options
                    .iter()
                    .any(|(k, v)| k == "mode" && v == "802.3ad")
            );
        }
    }
    // The unassigned host has no files.
    for mac in &common::host(6, "192.0.2.1").macs {
        assert!(!www.join(format!("ipxe/{}.ipxe", mac.hyphenated())).exists());
    }

    let second = maestro.interpret(&score).await.unwrap();
    assert!(second.is_noop(), "{second:?}");

    // The worker loses its role: its files go, so it boots discovery again.
    let worker = common::host(5, "192.0.2.1");
    store.assign(&worker.id, None, None).unwrap();
    let third = maestro.interpret(&score).await.unwrap();
    let Outcome::Success { changes } = &third else {
        panic!("{third:?}")
    };
    assert_eq!(changes.len(), 3, "{changes:#?}");
    assert!(changes.iter().all(|c| c.starts_with("remove ")));
    assert!(!www.join("ignition/worker-0.ign").exists());
}

#[tokio::test]
async fn a_host_that_cannot_be_planned_fails_naming_it_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("inv.sqlite3")).unwrap());
    let mut host = common::host(9, "192.168.77.29");
    // Hostile disk paths never get this far (discovery's conversion to
    // typed hardware refuses them, see `domain::hardware`): here every disk
    // is a USB stick, so the host has no install disk.
    for d in &mut host.hardware.disks {
        d.kind = harmony::domain::hardware::DiskKind::Usb;
        d.removable = Some(true);
    }
    store.upsert_discovered(&host, common::t(1)).unwrap();
    store
        .assign(
            &host.id,
            Some(Role::Worker),
            Some("worker-9".parse().unwrap()),
        )
        .unwrap();
    let www = dir.path().join("www");
    let site = HttpRoot::new(&www, "http://192.168.77.1:8080/".parse().unwrap());
    let maestro = Maestro::new(site, Inventory::new(store, EventBus::default()));
    let err = maestro
        .interpret(&BootArtefacts {
            site: site::site_boot(),
            networks: Default::default(),
        })
        .await
        .unwrap_err();
    assert!(err.message.contains(host.id.as_str()), "{err}");
    assert!(!www.exists(), "nothing written");
}
