//! The real agent binary serving on loopback: routes, content type, the
//! background refresh, and running without root.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/http.rs"]
mod http;
#[path = "support/sysfs.rs"]
mod sysfs;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harmony_inventory_agent::model::{Inventory, SCHEMA_VERSION};
use http::{ChildGuard, free_port, get, request, wait_ready};

const AGENT: &str = env!("CARGO_BIN_EXE_harmony-inventory-agent");

fn spawn(cmd: &mut Command) -> (ChildGuard, SocketAddr) {
    spawn_with_lldp(cmd, 0)
}

fn spawn_with_lldp(cmd: &mut Command, lldp_secs: u32) -> (ChildGuard, SocketAddr) {
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let child = cmd
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--lldp-window")
        .arg(lldp_secs.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn agent");
    let guard = ChildGuard(child);
    assert!(
        wait_ready(addr, Duration::from_secs(20)),
        "agent never became ready on {addr}"
    );
    (guard, addr)
}

#[test]
fn routes_and_refresh() {
    let f = sysfs::FixtureRoot::new();
    f.file("/proc/sys/kernel/hostname", "before\n");
    f.file("/proc/meminfo", "MemTotal: 1024 kB\n");
    let (_agent, addr) = spawn(
        Command::new(AGENT)
            .arg("--root")
            .arg(f.path())
            .args(["--refresh", "1"]),
    );

    let r = get(addr, "/").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let inv: Inventory = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(inv.schema_version, SCHEMA_VERSION);
    assert_eq!(inv.hostname.as_deref(), Some("before"));
    assert_eq!(inv.memory.total_bytes, Some(1024 * 1024));

    let h = get(addr, "/healthz").unwrap();
    assert_eq!((h.status, h.body.as_slice()), (200, &b"ok\n"[..]));

    // Read-only: nothing else exists, and no method but GET/HEAD is accepted.
    for path in ["/inventory", "/exec", "/reboot", "/../etc/passwd"] {
        assert_eq!(get(addr, path).unwrap().status, 404, "{path}");
    }
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        assert_eq!(request(addr, method, "/").unwrap().status, 405, "{method}");
    }

    // The background refresh picks up changes without a restart.
    f.file("/proc/sys/kernel/hostname", "after\n");
    let start = Instant::now();
    let mut seen = None;
    while start.elapsed() < Duration::from_secs(15) {
        let inv: Inventory = serde_json::from_slice(&get(addr, "/").unwrap().body).unwrap();
        seen = inv.hostname.clone();
        if seen.as_deref() == Some("after") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(seen.as_deref(), Some("after"));
}

#[test]
fn serves_as_non_root_with_warnings_not_errors() {
    // Copy the binary where the unprivileged user can execute it.
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("agent");
    std::fs::copy(AGENT, &bin).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (_agent, addr) = spawn_with_lldp(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&bin),
        5,
    );
    let r = get(addr, "/").unwrap();
    assert_eq!(r.status, 200);
    let inv: Inventory = serde_json::from_slice(&r.body).unwrap();
    assert!(inv.cpu.threads.unwrap_or(0) >= 1);
    assert!(inv.memory.total_bytes.is_some());
    // LLDP needs a raw socket: without root each listener becomes a warning.
    let up: Vec<&str> = inv
        .network
        .iter()
        .filter(|n| n.operstate.as_deref() == Some("up") && n.master.is_none())
        .map(|n| n.name.as_str())
        .collect();
    let start = Instant::now();
    let mut warned = vec![];
    while start.elapsed() < Duration::from_secs(10) {
        let inv: Inventory = serde_json::from_slice(&get(addr, "/").unwrap().body).unwrap();
        warned = inv
            .warnings
            .iter()
            .filter(|w| w.source.starts_with("lldp:") && w.message.contains("not permitted"))
            .map(|w| w.source.trim_start_matches("lldp:").to_string())
            .collect();
        if warned.len() >= up.len() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    warned.sort();
    let mut up: Vec<String> = up.into_iter().map(String::from).collect();
    up.sort();
    assert_eq!(warned, up, "one LLDP permission warning per NIC that is up");
}

#[test]
fn bad_arguments_fail_clearly() {
    let out = Command::new(AGENT)
        .args(["--listen", "not-an-address"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen"));
    let out = Command::new(AGENT)
        .args(["--refresh", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--refresh"));
}
