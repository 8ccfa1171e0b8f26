//! Every saga Score through the generic harness on a `FakeSite` (plan
//! without acting; second run Noop; a failure at every change undone; a
//! crash after every step-log write resumed with each side effect once),
//! and the SQLite step log: a run interrupted in one process resumes from
//! the file in the next.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/store_common.rs"]
mod common;
#[path = "support/discovery.rs"]
mod discovery;
#[path = "support/asset_fixtures.rs"]
mod fixtures;
#[path = "support/assets_server.rs"]
mod server;
#[path = "support/site_boot.rs"]
mod site;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use harmony::domain::{
    EventBus, Inventory, InventoryRepository, Maestro, Role, RunId, RunState, StepKey, StepLog,
    StepRecord, StepState, UndoData,
};
use harmony::infra::fakes::harness::check_saga;
use harmony::infra::fakes::{FakeSite, SiteState};
use harmony::modules::assets::download::DownloadConfig;
use harmony::modules::assets::{CentosInventoryAssets, ScosAssets, Source};
use harmony::modules::okd::OKDSetup01Inventory;
use harmony::modules::okd::artefacts::BootArtefacts;
use harmony::store::SqliteStore;

/// A store with a bootstrap, a master and a worker, and one unassigned host.
fn cluster_store(dir: &std::path::Path) -> Arc<SqliteStore> {
    let store = Arc::new(SqliteStore::open(&dir.join("inv.sqlite3")).unwrap());
    for n in 1..=4 {
        store
            .upsert_discovered(
                &common::host(n, &format!("192.168.77.{}", 20 + n)),
                common::t(n.into()),
            )
            .unwrap();
    }
    for (n, role, name) in [
        (1, Role::Bootstrap, "bootstrap"),
        (2, Role::ControlPlane, "master-0"),
        (3, Role::Worker, "worker-0"),
    ] {
        let id = common::host(n, "192.0.2.1").id;
        store
            .assign(&id, Some(role), Some(name.parse().unwrap()))
            .unwrap();
    }
    store
}

/// What the site held before: an older `default.ipxe` (restored on undo)
/// and the script of a host that no longer has a role (removed, and put
/// back on undo).
fn lived_in_site() -> SiteState {
    let mut state = SiteState::default();
    let p = |s: &str| s.parse().unwrap();
    state
        .http_files
        .insert(p("default.ipxe"), b"#!ipxe\necho old\n".to_vec());
    state
        .http_files
        .insert(p("ipxe/02-00-00-00-00-99.ipxe"), b"#!ipxe\nexit\n".to_vec());
    state
        .http_files
        .insert(p("ignition/gone.ign"), b"{}".to_vec());
    state
}

#[tokio::test]
async fn boot_artefacts_pass_the_saga_harness() {
    let dir = tempfile::tempdir().unwrap();
    let store = cluster_store(dir.path());
    let score = BootArtefacts {
        site: site::site_boot(),
        networks: Default::default(),
    };
    let report = check_saga(&score, || {
        let store = store.clone();
        async move {
            (
                Inventory::new(store, EventBus::default()),
                FakeSite::with_state(lived_in_site()),
            )
        }
    })
    .await
    .unwrap();
    // 2 discovery files + 3 Ignition + 2 MACs x 3 hosts, 2 stale removals.
    assert_eq!(report.changes, 13, "{report:?}");
    assert_eq!(report.failures_injected, 13);
    // begin + (started + applied) x 13 + end
    assert_eq!(report.crashes_injected, 28);
    // The process died at every write of a rollback, for each failure point.
    assert!(report.rollback_crashes_injected >= 13, "{report:?}");
}

#[tokio::test]
async fn a_failed_boot_artefacts_run_says_what_it_undid() {
    let dir = tempfile::tempdir().unwrap();
    let store = cluster_store(dir.path());
    let site = FakeSite::with_state(lived_in_site());
    let before = site.state();
    site.fail_at_change(3);
    let maestro = Maestro::new(site, Inventory::new(store, EventBus::default()));
    let score = BootArtefacts {
        site: site::site_boot(),
        networks: Default::default(),
    };
    let err = maestro.interpret(&score).await.unwrap_err();
    assert!(err.message.contains("injected failure"), "{err}");
    assert!(err.state_left.starts_with("rolled back: undid "), "{err}");
    assert!(err.state_left.contains("replace default.ipxe"), "{err}");
    maestro.topology().heal();
    assert_eq!(maestro.topology().state(), before);
}

#[tokio::test]
async fn boot_artefacts_plan_lists_changes_without_making_them() {
    let dir = tempfile::tempdir().unwrap();
    let site = FakeSite::with_state(lived_in_site());
    let maestro = Maestro::new(
        site,
        Inventory::new(cluster_store(dir.path()), EventBus::default()),
    );
    let score = BootArtefacts {
        site: site::site_boot(),
        networks: Default::default(),
    };
    let plan = maestro.plan(&score).await.unwrap();
    let text = plan.to_string();
    assert!(text.starts_with("BootArtefacts: 13 change(s)"), "{text}");
    assert!(text.contains("replace default.ipxe"), "{text}");
    assert!(text.contains("write inventory.ks"), "{text}");
    assert!(
        text.contains("remove ipxe/02-00-00-00-00-99.ipxe"),
        "{text}"
    );
    assert_eq!(maestro.topology().state(), lived_in_site());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okd_setup01_passes_the_saga_harness() {
    let ip = |last| IpAddr::V4(Ipv4Addr::new(127, 0, 5, last));
    let port = discovery::free_port(ip(10));
    for (i, last) in [(1u16, 10u8), (2, 11)] {
        discovery::serve(
            SocketAddr::new(ip(last), port),
            discovery::Behaviour::Json(discovery::json(&discovery::inventory(i))),
        )
        .await
        .unwrap();
    }
    let mut score = OKDSetup01Inventory::new("127.0.5.0/28".parse().unwrap(), 2);
    score.port = port;
    score.interval = Duration::from_millis(100);
    score.timeout = Duration::from_secs(10);
    let report = check_saga(&score, || async {
        // Each attempt starts from an empty inventory.
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.keep().join("inv.sqlite3")).unwrap());
        (Inventory::new(store, EventBus::default()), FakeSite::new())
    })
    .await
    .unwrap();
    // Discovery changes the Inventory, not the site.
    assert_eq!(report.changes, 0);
    assert_eq!(report.crashes_injected, 4);
}

fn empty_inventory() -> Inventory {
    let store = harmony::store::SqliteStore::open(std::path::Path::new(":memory:")).unwrap();
    Inventory::new(Arc::new(store), EventBus::default())
}

#[tokio::test]
async fn scos_assets_pass_the_saga_harness() {
    let srv = server::TestServer::start().await;
    let (files, _) = fixtures::scos_files(&srv);
    let mut score = ScosAssets::new(Source::Url(srv.url("stream.json").parse().unwrap()));
    score.download = DownloadConfig {
        connect_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(5),
        ..DownloadConfig::default()
    };
    // A site that already serves an older kernel: undo must put it back.
    let mut state = SiteState::default();
    state.http_files.insert(
        "os/scos-4.19/kernel".parse().unwrap(),
        b"an older kernel".to_vec(),
    );
    let report = check_saga(&score, || {
        let state = state.clone();
        async move { (empty_inventory(), FakeSite::with_state(state)) }
    })
    .await
    .unwrap();
    // put x3 (and the old kernel taken out to the staging cache).
    assert_eq!(report.changes, 4, "{report:?}");
    let site = FakeSite::with_state(state.clone());
    let maestro = Maestro::new(site, empty_inventory());
    maestro.interpret(&score).await.unwrap();
    assert_eq!(
        maestro.topology().state().http_files[&"os/scos-4.19/rootfs.img".parse().unwrap()],
        files.rootfs
    );
}

#[tokio::test]
async fn centos_assets_pass_the_saga_harness() {
    let dir = tempfile::tempdir().unwrap();
    let iso = fixtures::build_iso(dir.path());
    let score =
        CentosInventoryAssets::new(Source::Path(iso.path.clone()), iso.sha.parse().unwrap());
    let report = check_saga(&score, || async { (empty_inventory(), FakeSite::new()) })
        .await
        .unwrap();
    // 4 tree files and the marker.
    assert_eq!(report.changes, 5, "{report:?}");
    assert!(report.rollback_crashes_injected > 0, "{report:?}");
}

#[test]
fn the_sqlite_step_log_resumes_across_processes_and_is_append_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inv.sqlite3");
    let rec = |key: &str, state, undo: Option<UndoData>| StepRecord {
        key: StepKey(key.into()),
        state,
        description: format!("{key} {state:?}"),
        undo,
    };
    let run: RunId;
    {
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.open_run("S").unwrap(), None);
        run = store.begin_run("S").unwrap();
        store
            .record(
                run,
                &rec("a", StepState::Started, Some(UndoData::of(&1).unwrap())),
            )
            .unwrap();
        store
            .record(run, &rec("a", StepState::Applied, None))
            .unwrap();
        store
            .record(run, &rec("b", StepState::Started, Some(UndoData::none())))
            .unwrap();
        // The process dies here: the store is dropped without end_run.
    }
    let store = SqliteStore::open(&path).unwrap();
    let (open, records) = store.open_run("S").unwrap().expect("an open run");
    assert_eq!(open, run);
    assert_eq!(
        records,
        [
            rec("a", StepState::Started, Some(UndoData::of(&1).unwrap())),
            rec("a", StepState::Applied, None),
            rec("b", StepState::Started, Some(UndoData::none())),
        ]
    );
    assert_eq!(store.open_run("other").unwrap(), None);
    store.end_run(run, RunState::Succeeded).unwrap();
    assert_eq!(
        store.open_run("S").unwrap(),
        None,
        "an ended run is not resumed"
    );
    assert!(store.end_run(RunId(9999), RunState::Succeeded).is_err());

    // Entries cannot be rewritten.
    let conn = rusqlite_conn(&path);
    let err = conn
        .execute("UPDATE step_log SET state = 'applied'", [])
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}

fn rusqlite_conn(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[tokio::test]
async fn a_noop_run_writes_nothing_to_the_step_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(harmony::domain::MemoryStepLog::default());
    let inventory =
        Inventory::new(cluster_store(dir.path()), EventBus::default()).with_step_log(log.clone());
    let maestro = Maestro::new(FakeSite::new(), inventory);
    let score = BootArtefacts {
        site: site::site_boot(),
        networks: Default::default(),
    };
    assert!(!maestro.interpret(&score).await.unwrap().is_noop());
    let runs = log.runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].1, RunState::Succeeded);
    // Every entry is a change: started, then applied.
    assert!(
        runs[0]
            .2
            .iter()
            .all(|r| matches!(r.state, StepState::Started | StepState::Applied))
    );
    assert!(maestro.interpret(&score).await.unwrap().is_noop());
    assert_eq!(log.runs().len(), 1, "the Noop run left no trace");
}

#[tokio::test]
async fn a_resumed_run_redoes_a_logged_step_whose_file_changed_since() {
    use harmony::domain::HttpServer;
    use harmony::infra::fakes::harness::CrashingLog;
    let dir = tempfile::tempdir().unwrap();
    let store = cluster_store(dir.path());
    let score = BootArtefacts {
        site: site::site_boot(),
        networks: Default::default(),
    };
    // What an uninterrupted run leaves.
    let clean = Maestro::new(
        FakeSite::new(),
        Inventory::new(store.clone(), EventBus::default()),
    );
    clean.interpret(&score).await.unwrap();

    let site = FakeSite::new();
    let durable = Arc::new(harmony::domain::MemoryStepLog::default());
    // begin, then default.ipxe started + applied: the process dies.
    let crashing = Inventory::new(store.clone(), EventBus::default()).with_step_log(Arc::new(
        CrashingLog::new(durable.clone(), 3).killing(site.kill_switch()),
    ));
    let interpret = harmony::domain::Score::<FakeSite>::create_interpret(&score);
    assert!(interpret.execute(&crashing, &site).await.is_err());
    site.heal();
    // Someone edits the file the log says was applied.
    let default: harmony::domain::RelativePath = "default.ipxe".parse().unwrap();
    site.put_file(&default, b"#!ipxe\necho edited\n")
        .await
        .unwrap();
    let resumed = Inventory::new(store, EventBus::default()).with_step_log(durable);
    interpret.execute(&resumed, &site).await.unwrap();
    assert_eq!(
        site.state(),
        clean.topology().state(),
        "the edited file was written again"
    );
}

#[tokio::test]
async fn a_saga_runs_once_at_a_time_per_database() {
    let dir = tempfile::tempdir().unwrap();
    let store = cluster_store(dir.path());
    // Another process: its own connection to the same file.
    let other = SqliteStore::open(&dir.path().join("inv.sqlite3")).unwrap();
    let held = other.lock_saga("BootArtefacts").unwrap();
    let score = BootArtefacts {
        site: site::site_boot(),
        networks: Default::default(),
    };
    let maestro = Maestro::new(
        FakeSite::new(),
        Inventory::new(store.clone(), EventBus::default()).with_step_log(store.clone()),
    );
    let err = maestro.interpret(&score).await.unwrap_err();
    assert!(
        err.message
            .contains("another run of BootArtefacts is in progress"),
        "{err}"
    );
    assert_eq!(err.state_left, "nothing done by this run");
    assert_eq!(maestro.topology().state(), SiteState::default());
    // Another saga is not held up; and once the holder is gone, this one runs.
    assert!(other.lock_saga("ScosAssets").is_ok());
    drop(held);
    assert!(!maestro.interpret(&score).await.unwrap().is_noop());
}
