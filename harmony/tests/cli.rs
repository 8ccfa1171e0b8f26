//! The `harmony` binary against a real SQLite store in a temp dir.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/store_common.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{host, t};
use harmony::domain::{InventoryRepository, Role};
use harmony::store::SqliteStore;
use serde_json::Value;

struct Db {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

/// Four hosts at 10.0.0.1..4; host 4 has only 8 GiB of memory.
fn db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inv.sqlite3");
    let store = SqliteStore::open(&path).unwrap();
    for n in 1..=4 {
        let mut h = host(n, &format!("10.0.0.{n}"));
        if n == 4 {
            h.hardware.memory.total_bytes = Some(8 << 30);
            h.hardware.memory.smbios_total_bytes = Some(8 << 30);
        }
        store.upsert_discovered(&h, t(u64::from(n))).unwrap();
    }
    Db { _dir: dir, path }
}

fn harmony(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_harmony"))
        .args(args)
        .arg("--db")
        .arg(db)
        .env_remove("HARMONY_DB")
        .output()
        .unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn id_of(n: u32) -> String {
    host(n, "10.0.0.1").id.to_string()
}

#[test]
fn list_json_has_stable_fields() {
    let db = db();
    let o = harmony(&db.path, &["inventory", "list", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let a = v.as_array().unwrap();
    assert_eq!(a.len(), 4);
    let first = &a[0];
    for key in [
        "id",
        "ip",
        "macs",
        "hostname",
        "role",
        "phase",
        "vendor",
        "product",
        "cpu_threads",
        "memory_bytes",
        "disk_count",
        "disk_bytes",
        "nic_count",
        "first_seen",
        "last_seen",
        "fitness",
    ] {
        assert!(first.get(key).is_some(), "missing {key} in {first}");
    }
    assert_eq!(first["ip"], "10.0.0.1");
    assert_eq!(first["phase"], "discovered");
    assert!(first["role"].is_null());
    assert_eq!(first["cpu_threads"], 128);
    assert_eq!(first["vendor"], "Dell Inc.");
    assert_eq!(first["macs"].as_array().unwrap().len(), 2);
    assert_eq!(first["id"], id_of(1));
}

#[test]
fn list_table_and_help_documents_fields() {
    let db = db();
    let o = harmony(&db.path, &["inventory", "list"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("ID"), "{out}");
    for col in [
        "IP",
        "HOSTNAME",
        "VENDOR/PRODUCT",
        "THREADS",
        "MEMORY",
        "ROLE",
        "PHASE",
    ] {
        assert!(out.lines().next().unwrap().contains(col), "{out}");
    }
    assert!(out.contains("10.0.0.3"));
    assert!(out.contains("Dell Inc. PowerEdge R650"));
    assert!(out.contains("missing 1 bootstrap"), "{out}");
    let help = Command::new(env!("CARGO_BIN_EXE_harmony"))
        .args(["inventory", "list", "--help"])
        .output()
        .unwrap();
    assert_eq!(code(&help), 0);
    let h = stdout(&help);
    assert!(h.contains("memory_bytes") && h.contains("fitness"), "{h}");
}

#[test]
fn empty_db_via_env() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/empty.sqlite3");
    let o = Command::new(env!("CARGO_BIN_EXE_harmony"))
        .args(["inventory", "list", "--json"])
        .env("HARMONY_DB", &path)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        serde_json::from_slice::<Value>(&o.stdout).unwrap(),
        Value::Array(vec![])
    );
    assert!(path.exists(), "HARMONY_DB is the database used");
}

#[test]
fn show_by_id_ip_and_hostname() {
    let db = db();
    let o = harmony(&db.path, &["inventory", "show", "10.0.0.2", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["id"], id_of(2));
    assert_eq!(v["inventory"]["cpu"]["threads"], 128);
    assert_eq!(v["inventory"]["network"][0]["name"], "eno1");
    assert!(
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "discovered")
    );

    let o = harmony(&db.path, &["inventory", "show", &id_of(3)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("ip:         10.0.0.3"), "{out}");
    assert!(out.contains("\"by_id\""), "full hardware shown: {out}");
    assert!(out.contains("events:"));

    let o = harmony(
        &db.path,
        &[
            "inventory",
            "assign",
            "10.0.0.2",
            "worker",
            "--hostname",
            "worker-7",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = harmony(&db.path, &["inventory", "show", "worker-7", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["id"], id_of(2));
    assert_eq!(v["role"], "worker");
    assert_eq!(v["hostname"], "worker-7");
    assert_eq!(v["phase"], "role-assigned");
    assert_eq!(
        v["events"].as_array().unwrap().last().unwrap()["kind"],
        "role-assigned"
    );
}

#[test]
fn assign_writes_the_store_and_unassigns() {
    let db = db();
    let o = harmony(
        &db.path,
        &["inventory", "assign", &id_of(1), "control-plane"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("hostname master-0"), "{}", stdout(&o));
    let o = harmony(&db.path, &["inventory", "assign", "10.0.0.3", "master"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("missing 1 control-plane"),
        "{}",
        stdout(&o)
    );
    let store = SqliteStore::open(&db.path).unwrap();
    let h1 = store.host(&id_of(1).parse().unwrap()).unwrap().unwrap();
    assert_eq!(h1.role, Some(Role::ControlPlane));
    assert_eq!(h1.hostname.unwrap().as_str(), "master-0");
    let h3 = store.host(&id_of(3).parse().unwrap()).unwrap().unwrap();
    assert_eq!(h3.hostname.unwrap().as_str(), "master-1");

    let o = harmony(&db.path, &["inventory", "assign", "master-0", "none"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let h1 = store.host(&id_of(1).parse().unwrap()).unwrap().unwrap();
    assert_eq!((h1.role, h1.hostname), (None, None));
}

#[test]
fn check_refuses_unfit_and_excess_but_plain_assign_warns() {
    let db = db();
    // Host 4 has 8 GiB: unfit for control-plane.
    let o = harmony(
        &db.path,
        &[
            "inventory",
            "assign",
            "10.0.0.4",
            "control-plane",
            "--check",
        ],
    );
    assert_eq!(code(&o), 2, "{}", stdout(&o));
    assert!(
        stderr(&o).contains("memory 8.0 GiB < 16 GiB required for control-plane"),
        "{}",
        stderr(&o)
    );
    let store = SqliteStore::open(&db.path).unwrap();
    assert_eq!(
        store
            .hosts()
            .unwrap()
            .iter()
            .filter(|h| h.role.is_some())
            .count(),
        0
    );
    // Fine as a worker.
    let o = harmony(
        &db.path,
        &["inventory", "assign", "10.0.0.4", "worker", "--check"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // Without --check the problem is shown but the assignment is made.
    let o = harmony(
        &db.path,
        &["inventory", "assign", "10.0.0.4", "control-plane"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("memory 8.0 GiB"));

    // A second bootstrap exceeds the plan.
    let o = harmony(&db.path, &["inventory", "assign", "10.0.0.1", "bootstrap"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = harmony(
        &db.path,
        &["inventory", "assign", "10.0.0.2", "bootstrap", "--check"],
    );
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("too many bootstrap: 2 assigned, 1 wanted"),
        "{}",
        stderr(&o)
    );
    // The role counts are the domain's rule (`Inventory::assign`): an
    // excess is refused with or without --check, and nothing is written.
    let o = harmony(&db.path, &["inventory", "assign", "10.0.0.2", "bootstrap"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("too many bootstrap"), "{}", stderr(&o));
    let store = SqliteStore::open(&db.path).unwrap();
    let bootstraps = store
        .hosts()
        .unwrap()
        .iter()
        .filter(|h| h.role == Some(harmony::domain::Role::Bootstrap))
        .count();
    assert_eq!(bootstraps, 1);
}

#[test]
fn bad_input_names_field_and_value() {
    let db = db();
    let before = SqliteStore::open(&db.path).unwrap().hosts().unwrap();

    let o = harmony(
        &db.path,
        &[
            "inventory",
            "assign",
            "10.0.0.1",
            "worker",
            "--hostname",
            "\"; reboot",
        ],
    );
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("invalid host name \"\\\"; reboot\""),
        "{}",
        stderr(&o)
    );

    let o = harmony(&db.path, &["inventory", "assign", "10.0.0.1", "admin"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("invalid role \"admin\""),
        "{}",
        stderr(&o)
    );

    let o = harmony(&db.path, &["inventory", "assign", "\"; reboot", "worker"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("invalid host"), "{}", stderr(&o));

    for unknown in [
        "10.9.9.9",
        "nosuchhost",
        "uuid:4c4c4544-0000-4000-8000-0000000000ff",
    ] {
        let o = harmony(&db.path, &["inventory", "show", unknown]);
        assert_eq!(code(&o), 1, "{unknown}");
        assert!(stderr(&o).contains("no host"), "{}", stderr(&o));
        let o = harmony(&db.path, &["inventory", "assign", unknown, "worker"]);
        assert_eq!(code(&o), 1, "{unknown}");
    }

    // A host name already taken by another host.
    let o = harmony(
        &db.path,
        &[
            "inventory",
            "assign",
            "10.0.0.1",
            "worker",
            "--hostname",
            "w1",
        ],
    );
    assert_eq!(code(&o), 0);
    let o = harmony(
        &db.path,
        &[
            "inventory",
            "assign",
            "10.0.0.2",
            "worker",
            "--hostname",
            "w1",
        ],
    );
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("already used"), "{}", stderr(&o));

    // clap usage errors exit 2 too.
    let o = harmony(&db.path, &["inventory", "frobnicate"]);
    assert_eq!(code(&o), 2);

    let after = SqliteStore::open(&db.path).unwrap().hosts().unwrap();
    assert_eq!(after.iter().filter(|h| h.role.is_some()).count(), 1);
    assert_eq!(before.len(), after.len());
}

/// `harmony inventory discover` against a real agent server (the agent
/// crate's axum endpoint over this machine's inventory) on a loopback
/// address: found and stored, then Noop, then a timeout exits 1.
#[test]
fn discover_finds_a_loopback_agent_then_noop_then_times_out() {
    use harmony_inventory_agent::collect::Collector;
    use harmony_inventory_agent::server::{ServeConfig, serve};

    let probe = std::net::TcpListener::bind("127.0.8.10:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(serve(
            Collector::new("/"),
            ServeConfig {
                listen: addr,
                refresh: std::time::Duration::from_secs(60),
                lldp_window: std::time::Duration::ZERO,
            },
            async {
                let _ = stop_rx.await;
            },
        ))
        .unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("inv.sqlite3");
    let port = addr.port().to_string();
    let run = |expected: &str, timeout: &str| {
        harmony(
            &db,
            &[
                "inventory",
                "discover",
                "--network",
                "127.0.8.8/29",
                "--port",
                &port,
                "--expected",
                expected,
                "--timeout",
                timeout,
                "--interval",
                "200ms",
            ],
        )
    };
    let mut first = run("1", "20s");
    for _ in 0..50 {
        // The server may still be collecting its first inventory.
        if code(&first) == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        first = run("1", "20s");
    }
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    assert!(
        stdout(&first).contains("changed: 1 new host(s) on 127.0.8.8/29"),
        "{}",
        stdout(&first)
    );
    assert!(stderr(&first).contains("new host "), "{}", stderr(&first));

    let again = run("1", "20s");
    assert_eq!(code(&again), 0);
    assert!(stdout(&again).contains("no change: 1 hosts already known"));

    let short = run("2", "1s");
    assert_eq!(code(&short), 1);
    assert!(
        stderr(&short).contains("only 1 of 2 hosts found"),
        "{}",
        stderr(&short)
    );

    let listed: Value =
        serde_json::from_slice(&harmony(&db, &["inventory", "list", "--json"]).stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["ip"], "127.0.8.10");

    let bad = harmony(&db, &["inventory", "discover", "--network", "10.0.0.0/33"]);
    assert_eq!(code(&bad), 2);
    assert!(
        stderr(&bad).contains("invalid --network \"10.0.0.0/33\""),
        "{}",
        stderr(&bad)
    );

    let _ = stop_tx.send(());
    server.join().unwrap();
}

#[test]
fn discover_dry_run_prints_the_plan_and_scans_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inv.sqlite3");
    let args = [
        "inventory",
        "discover",
        "--network",
        "127.0.9.0/30",
        "--port",
        "1",
        "--expected",
        "2",
        "--dry-run",
    ];
    let o = harmony(&path, &args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "OKDSetup01Inventory: 1 change(s)\n    1. scan 127.0.9.0/30 port 1 until 2 hosts are known (0 now)\n"
    );
    let store = SqliteStore::open(&path).unwrap();
    assert!(store.hosts().unwrap().is_empty());
    // Nothing ran, so nothing was logged as a saga run.
    use harmony::domain::StepLog;
    assert_eq!(store.open_run("OKDSetup01Inventory").unwrap(), None);
}
