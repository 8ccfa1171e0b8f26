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

/// Serves the real agent (the agent crate's collector and axum endpoint)
/// over the fixture root `root` at `addr`, until the returned sender fires.
fn agent_at(
    root: std::path::PathBuf,
    addr: std::net::SocketAddr,
) -> (
    tokio::sync::oneshot::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    use harmony_inventory_agent::collect::Collector;
    use harmony_inventory_agent::server::{ServeConfig, serve};
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(serve(
            Collector::new(root),
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
    (stop_tx, server)
}

/// A fixture root in the kernel's sysfs layout: DMI identity (`uuid` and
/// `serial` as the firmware reports them) and one NIC with MAC `mac`.
fn fixture_root(dir: &Path, uuid: &str, serial: Option<&str>, mac: &str) {
    let file = |rel: &str, text: &str| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, format!("{text}\n")).unwrap();
    };
    file("sys/class/dmi/id/sys_vendor", "Acme");
    file("sys/class/dmi/id/product_name", "Board 9000");
    file("sys/class/dmi/id/product_uuid", uuid);
    if let Some(s) = serial {
        file("sys/class/dmi/id/product_serial", s);
    }
    file("sys/class/net/eno1/address", mac);
    file("sys/class/net/eno1/addr_assign_type", "0");
    file("sys/class/net/eno1/type", "1");
    file("sys/class/net/eno1/operstate", "up");
    file("sys/class/net/eno1/mtu", "1500");
    std::fs::create_dir_all(dir.join("sys/firmware")).unwrap();
}

/// `discover --network N --port P --expected E` with a short interval.
fn discover(db: &Path, network: &str, port: u16, expected: &str, timeout: &str) -> Output {
    harmony(
        db,
        &[
            "inventory",
            "discover",
            "--network",
            network,
            "--port",
            &port.to_string(),
            "--expected",
            expected,
            "--timeout",
            timeout,
            "--interval",
            "200ms",
        ],
    )
}

/// A free port on `ip`.
fn free_port(ip: &str) -> u16 {
    let probe = std::net::TcpListener::bind((ip, 0)).unwrap();
    probe.local_addr().unwrap().port()
}

/// Four real agents with disjoint MACs: two share a (valid) UUID, two
/// report a placeholder UUID and share a serial. `discover --expected 4`
/// completes, all four are stored, each under an id of its own, and every
/// one is flagged "duplicate firmware id" in `list` and `show`.
#[test]
fn hosts_sharing_a_uuid_or_serial_are_all_discovered_and_flagged() {
    let roots = tempfile::tempdir().unwrap();
    let ip = |i: u8| format!("127.0.9.{i}");
    let port = free_port(&ip(1));
    let shared = "4c4c4544-0000-4000-8000-00000000beef";
    let specs = [
        (1u8, shared, None),
        (2, shared, None),
        (3, "03000200-0400-0500-0006-000700080009", Some("SN-SHARED")),
        (4, "00000000-0000-0000-0000-000000000000", Some("SN-SHARED")),
    ];
    let mut agents = Vec::new();
    for (i, uuid, serial) in specs {
        let root = roots.path().join(format!("host{i}"));
        fixture_root(&root, uuid, serial, &format!("52:54:00:09:00:0{i}"));
        let addr: std::net::SocketAddr = format!("{}:{port}", ip(i)).parse().unwrap();
        agents.push(agent_at(root, addr));
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("inv.sqlite3");
    let mut run = discover(&db, "127.0.9.0/29", port, "4", "20s");
    for _ in 0..50 {
        // The servers may still be collecting their first inventory.
        if code(&run) == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        run = discover(&db, "127.0.9.0/29", port, "4", "20s");
    }
    assert_eq!(code(&run), 0, "{}", stderr(&run));
    let err = stderr(&run);
    assert!(err.contains("4 agent(s), 0 rejected"), "{err}");
    assert!(stdout(&run).contains("4 new host(s)"), "{}", stdout(&run));

    let listed: Value =
        serde_json::from_slice(&harmony(&db, &["inventory", "list", "--json"]).stdout).unwrap();
    let hosts = listed.as_array().unwrap();
    assert_eq!(hosts.len(), 4, "{listed:#}");
    let mut ids: Vec<&str> = hosts.iter().map(|h| h["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4, "{ids:?}");
    for h in hosts {
        let flags = h["flags"].as_array().unwrap();
        assert_eq!(flags.len(), 1, "{h:#}");
        assert!(
            flags[0]
                .as_str()
                .unwrap()
                .starts_with("duplicate firmware id "),
            "{h:#}"
        );
    }
    let table = stdout(&harmony(&db, &["inventory", "list"]));
    assert_eq!(
        table.matches(": duplicate firmware id ").count(),
        4,
        "{table}"
    );
    let page = stdout(&harmony(&db, &["inventory", "show", "127.0.9.4"]));
    assert!(
        page.contains("warning:    duplicate firmware id serial:SN-SHARED"),
        "{page}"
    );
    // A second run: all four known.
    let again = discover(&db, "127.0.9.0/29", port, "4", "20s");
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    assert!(stdout(&again).contains("no change"), "{}", stdout(&again));
    for (stop, server) in agents {
        let _ = stop.send(());
        server.join().unwrap();
    }
}

/// Runs `harmony` as `nobody` (the tests run as root, whom file modes do
/// not stop).
fn harmony_as_nobody(db: &Path, args: &[&str]) -> Output {
    use std::os::unix::process::CommandExt;
    Command::new(env!("CARGO_BIN_EXE_harmony"))
        .args(args)
        .arg("--db")
        .arg(db)
        .env_remove("HARMONY_DB")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap()
}

/// A database `harmony` may read but not write: `discover` fails and
/// stderr says why (SQLite's words) and names the database file.
#[test]
fn a_read_only_database_is_reported_with_its_cause_and_path() {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::fs::PermissionsExt;
    if std::fs::metadata("/proc/self").unwrap().uid() != 0 {
        eprintln!("skipped: needs root to run harmony as nobody");
        return;
    }
    let roots = tempfile::tempdir().unwrap();
    let root = roots.path().join("host");
    fixture_root(
        &root,
        "4c4c4544-0000-4000-8000-0000000000b1",
        None,
        "52:54:00:09:01:01",
    );
    let port = free_port("127.0.9.17");
    let (stop, server) = agent_at(root, format!("127.0.9.17:{port}").parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = dir.path().join("inv.sqlite3");
    // Kept open, so that the WAL files exist for a reader.
    let store = SqliteStore::open(&db).unwrap();
    for f in std::fs::read_dir(dir.path()).unwrap() {
        let p = f.unwrap().path();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    // The saga lock is not the database: nobody may take it.
    let lock = dir.path().join("inv.sqlite3.saga-OKDSetup01Inventory.lock");
    std::fs::write(&lock, "").unwrap();
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let port_s = port.to_string();
    let discover = [
        "inventory",
        "discover",
        "--network",
        "127.0.9.16/29",
        "--port",
        &port_s,
        "--expected",
        "1",
        "--timeout",
        "5s",
        "--interval",
        "200ms",
    ];
    let mut out = harmony_as_nobody(&db, &discover);
    for _ in 0..30 {
        if stderr(&out).contains("readonly") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        out = harmony_as_nobody(&db, &discover);
    }
    let err = stderr(&out);
    assert_eq!(code(&out), 1, "{err}");
    assert!(
        err.contains("attempt to write a readonly database"),
        "{err}"
    );
    assert!(err.contains(&db.display().to_string()), "{err}");
    drop(store);
    let _ = stop.send(());
    server.join().unwrap();
}

/// A database with a damaged page: the command fails and stderr says
/// "malformed" and names the file.
#[test]
fn a_corrupted_database_is_reported_with_its_cause_and_path() {
    use std::io::{Seek, SeekFrom, Write};
    let db = db();
    {
        // Checkpoint the WAL into the file, then damage a b-tree page.
        let conn = rusqlite::Connection::open(&db.path).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
    }
    let len = std::fs::metadata(&db.path).unwrap().len();
    assert!(len >= 4 * 4096, "{len}");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&db.path)
        .unwrap();
    for page in 1..(len / 4096) {
        f.seek(SeekFrom::Start(page * 4096)).unwrap();
        f.write_all(&[0xa5; 64]).unwrap();
    }
    drop(f);
    for args in [
        &["inventory", "list"][..],
        &["inventory", "show", "10.0.0.1"][..],
    ] {
        let o = harmony(&db.path, args);
        let err = stderr(&o);
        assert_ne!(code(&o), 0, "{args:?}: {}", stdout(&o));
        assert!(err.contains("malformed"), "{args:?}: {err}");
        assert!(
            err.contains(&db.path.display().to_string()),
            "{args:?}: {err}"
        );
    }
}

/// `harmony lab` refuses bad arguments before it makes or deletes anything,
/// naming the flag and value; a directory that is not a lab's is never
/// emptied; `--down` with nothing kept up says so.
#[test]
fn lab_refuses_bad_arguments_before_touching_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let agent = std::env::current_exe().unwrap();
    let agent = agent.to_str().unwrap();
    let new_dir = tmp.path().join("new");
    let new = new_dir.to_str().unwrap();
    let not_lab = tmp.path().join("precious");
    std::fs::create_dir_all(&not_lab).unwrap();
    std::fs::write(not_lab.join("data"), b"keep me").unwrap();
    let lab = |args: &[&str]| {
        let tui: &[&str] = if args.contains(&"--tui") {
            &[]
        } else {
            &["--tui", "never"]
        };
        Command::new(env!("CARGO_BIN_EXE_harmony"))
            .arg("lab")
            .args(tui)
            .args(args)
            .output()
            .unwrap()
    };
    for (args, said) in [
        (
            vec!["--dir", "relative/lab", "--agent", agent],
            "invalid --dir \"relative/lab\"",
        ),
        (
            vec!["--dir", new, "--agent", agent, "--accel", "xen"],
            "invalid --accel \"xen\"",
        ),
        (
            vec!["--dir", new, "--agent", agent, "--hosts", "4"],
            "invalid hosts \"4\"",
        ),
        (
            vec!["--dir", new, "--agent", agent, "--memory", "64"],
            "invalid memory_mib \"64\"",
        ),
        (
            vec!["--dir", new, "--agent", agent, "--tui", "maybe"],
            "invalid --tui \"maybe\"",
        ),
        (
            vec!["--dir", new, "--agent", "/nonexistent/agent"],
            "cargo agent",
        ),
        (
            vec!["--dir", not_lab.to_str().unwrap(), "--agent", agent],
            "is not a lab's directory",
        ),
    ] {
        let o = lab(&args);
        assert_eq!(code(&o), 1, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(said), "{args:?}: {}", stderr(&o));
        assert!(!new_dir.exists(), "{args:?} made {new}");
    }
    assert_eq!(std::fs::read(not_lab.join("data")).unwrap(), b"keep me");
    let o = lab(&["--down", "--dir", new]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("nothing kept up"), "{}", stdout(&o));
}
