//! `infra::haproxy` against the real HAProxy (Debian's 2.6) on loopback:
//! real TCP backends on 127.0.0.x answer each connection with their own
//! name, so a test sees which backends traffic reaches after each add and
//! remove, through graceful reloads, health checks and refused configs.
//! The OKD services config is a golden file (`tests/golden/haproxy-okd.cfg`,
//! rewritten only with `HARMONY_BLESS=1`) and passes `haproxy -c`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use harmony::domain::{
    Change, LbBackend, LbHealthCheck, LbMode, LoadBalancer, LoadBalancerService, Role,
};
use harmony::infra::haproxy::okd::{ClusterHost, okd_services};
use harmony::infra::haproxy::render::{Services, render};
use harmony::infra::haproxy::{Haproxy, HaproxyConfig};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A TCP backend: each connection gets `<name>\n`, then every line it
/// sends comes back as `<name>:<line>\n`.
struct Backend {
    name: String,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Backend {
    async fn start(name: &str, ip: &str) -> Backend {
        let listener = TcpListener::bind((ip.parse::<IpAddr>().unwrap(), 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let me = name.to_string();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let me = me.clone();
                conns.spawn(async move {
                    if s.write_all(format!("{me}\n").as_bytes()).await.is_err() {
                        return;
                    }
                    let (r, mut w) = s.split();
                    let mut lines = BufReader::new(r).lines();
                    while let Ok(Some(l)) = lines.next_line().await {
                        if w.write_all(format!("{me}:{l}\n").as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Backend {
            name: name.into(),
            addr,
            task,
        }
    }

    fn lb(&self) -> LbBackend {
        LbBackend {
            hostname: self.name.parse().unwrap(),
            ip: self.addr.ip(),
            port: self.addr.port(),
        }
    }

    /// Stops listening (and drops every connection).
    fn kill(&self) {
        self.task.abort();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn check() -> LbHealthCheck {
    LbHealthCheck {
        inter: Duration::from_millis(200),
        fall: 2,
        rise: 1,
    }
}

fn service(name: &str, port: u16, backends: &[&Backend]) -> LoadBalancerService {
    LoadBalancerService {
        name: name.parse().unwrap(),
        bind: SocketAddr::new("127.0.0.1".parse().unwrap(), port),
        mode: LbMode::Tcp,
        backends: backends.iter().map(|b| b.lb()).collect(),
        health_check: Some(check()),
    }
}

/// Connects once and reads the backend's name (bounded).
async fn hello(port: u16) -> Option<(String, BufReader<TcpStream>)> {
    let go = async {
        let s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).await.ok()?;
        let name = line.trim().to_string();
        (!name.is_empty()).then_some((name, r))
    };
    tokio::time::timeout(Duration::from_secs(3), go)
        .await
        .ok()
        .flatten()
}

/// The backends 12 connections reach ("-" for a connection that got no name).
async fn reached(port: u16) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for _ in 0..12 {
        names.insert(hello(port).await.map_or("-".into(), |(n, _)| n));
    }
    names
}

/// Until 12 connections reach exactly `expected` (old workers may still
/// answer for a moment after a reload); bounded, then asserts.
async fn assert_reaches(port: u16, expected: &[&str]) {
    let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
    let mut last = BTreeSet::new();
    for _ in 0..60 {
        last = reached(port).await;
        if last == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last, expected, "backends reached through port {port}");
}

/// `haproxy -c` on a file the module wrote.
fn assert_haproxy_accepts(path: &Path) {
    let out = std::process::Command::new("haproxy")
        .arg("-c")
        .arg("-f")
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn haproxy(dir: &Path) -> Haproxy {
    Haproxy::new(HaproxyConfig::new(dir))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_reaches_exactly_the_configured_backends() {
    let dir = tempfile::tempdir().unwrap();
    let lb = haproxy(dir.path());
    lb.start().await.unwrap();
    assert_eq!(lb.master_pid().await, None, "nothing to serve yet");
    let a = Backend::start("a", "127.0.0.2").await;
    let b = Backend::start("b", "127.0.0.3").await;
    let c = Backend::start("c", "127.0.0.4").await;
    let port = free_port();

    let two = service("api", port, &[&a, &b]);
    assert_eq!(lb.set_service(&two).await.unwrap(), Change::Applied);
    assert_haproxy_accepts(&lb.config_path());
    assert_reaches(port, &["a", "b"]).await;
    let master = lb.master_pid().await.unwrap();

    // The same again: no write, no reload.
    let cfg_before = std::fs::read(lb.config_path()).unwrap();
    assert_eq!(lb.set_service(&two).await.unwrap(), Change::Unchanged);
    assert_eq!(std::fs::read(lb.config_path()).unwrap(), cfg_before);

    let three = service("api", port, &[&a, &b, &c]);
    assert_eq!(lb.set_service(&three).await.unwrap(), Change::Applied);
    assert_haproxy_accepts(&lb.config_path());
    assert_reaches(port, &["a", "b", "c"]).await;
    assert_eq!(
        lb.master_pid().await,
        Some(master),
        "reloaded, not restarted"
    );

    let name_b = "b".parse().unwrap();
    assert_eq!(
        lb.remove_backend(&three.name, &name_b).await.unwrap(),
        Change::Applied
    );
    assert_eq!(
        lb.remove_backend(&three.name, &name_b).await.unwrap(),
        Change::Unchanged
    );
    assert_haproxy_accepts(&lb.config_path());
    assert_reaches(port, &["a", "c"]).await;
    assert_eq!(
        lb.services().await.unwrap(),
        vec![service("api", port, &[&a, &c])]
    );

    // A second service beside it.
    let port2 = free_port();
    let other = service("ingress-http", port2, &[&b]);
    assert_eq!(lb.set_service(&other).await.unwrap(), Change::Applied);
    assert_reaches(port2, &["b"]).await;
    assert_reaches(port, &["a", "c"]).await;

    // A new Haproxy on the same directory reads the installed config back.
    lb.stop().await.unwrap();
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
    let again = haproxy(dir.path());
    assert_eq!(again.services().await.unwrap().len(), 2);
    again.start().await.unwrap();
    assert_reaches(port, &["a", "c"]).await;
    assert_eq!(
        again.remove_service(&other.name).await.unwrap(),
        Change::Applied
    );
    assert_eq!(
        again.remove_service(&other.name).await.unwrap(),
        Change::Unchanged
    );
    assert_haproxy_accepts(&again.config_path());
    assert_reaches(port, &["a", "c"]).await;
    // No service left: HAProxy cannot run without a listener.
    assert_eq!(
        again.remove_service(&three.name).await.unwrap(),
        Change::Applied
    );
    assert_eq!(again.master_pid().await, None);
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
    again.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_bootstrap_keeps_an_open_connection_through_the_reload() {
    let dir = tempfile::tempdir().unwrap();
    let lb = haproxy(dir.path());
    lb.start().await.unwrap();
    let bootstrap = Backend::start("bootstrap", "127.0.0.5").await;
    let cp = Backend::start("cp-0", "127.0.0.6").await;
    let port = free_port();
    let api = service("api", port, &[&bootstrap, &cp]);
    lb.set_service(&api).await.unwrap();
    assert_reaches(port, &["bootstrap", "cp-0"]).await;

    // Hold a connection to the bootstrap (round robin: a few tries).
    let mut held = None;
    for _ in 0..10 {
        if let Some((name, r)) = hello(port).await
            && name == "bootstrap"
        {
            held = Some(r);
            break;
        }
    }
    let mut held = held.expect("a connection reached the bootstrap");

    let name = "bootstrap".parse().unwrap();
    assert_eq!(
        lb.remove_backend(&api.name, &name).await.unwrap(),
        Change::Applied
    );
    assert_reaches(port, &["cp-0"]).await;

    // The connection opened before the reload still works.
    held.get_mut().write_all(b"still there\n").await.unwrap();
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(3), held.read_line(&mut line))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(line, "bootstrap:still there\n");
    lb.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_backend_is_taken_out_by_the_health_check() {
    let dir = tempfile::tempdir().unwrap();
    let lb = haproxy(dir.path());
    lb.start().await.unwrap();
    let a = Backend::start("a", "127.0.0.7").await;
    let b = Backend::start("b", "127.0.0.8").await;
    let port = free_port();
    lb.set_service(&service("api", port, &[&a, &b]))
        .await
        .unwrap();
    assert_reaches(port, &["a", "b"]).await;

    b.kill();
    // The check marks it DOWN after fall (2) failures, inter (200 ms) apart.
    let mut down = false;
    for _ in 0..100 {
        let log = std::fs::read_to_string(lb.log_path()).unwrap_or_default();
        if log.contains("Server api/b is DOWN") {
            down = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(down, "the check never took b out");
    // From then on every connection reaches a.
    for _ in 0..3 {
        assert_eq!(reached(port).await, BTreeSet::from(["a".to_string()]));
    }
    lb.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_config_is_refused_and_the_running_one_stays() {
    let dir = tempfile::tempdir().unwrap();
    let lb = haproxy(dir.path());
    lb.start().await.unwrap();
    let a = Backend::start("a", "127.0.0.9").await;
    let port = free_port();
    lb.set_service(&service("api", port, &[&a])).await.unwrap();
    assert_reaches(port, &["a"]).await;
    let master = lb.master_pid().await;
    let installed = std::fs::read(lb.config_path()).unwrap();

    // Port 0 in a frontend: typed, but HAProxy refuses it.
    let bad = service("mcs", 0, &[&a]);
    let err = lb.set_service(&bad).await.unwrap_err().to_string();
    assert!(err.contains("invalid port '0'"), "{err}");
    assert!(err.contains("nothing installed"), "{err}");
    assert_eq!(std::fs::read(lb.config_path()).unwrap(), installed);
    assert_eq!(lb.master_pid().await, master);
    assert_reaches(port, &["a"]).await;

    // A check interval of 0: HAProxy's own words.
    let mut zero = service("api", port, &[&a]);
    zero.health_check = Some(LbHealthCheck {
        inter: Duration::ZERO,
        fall: 1,
        rise: 1,
    });
    let err = lb.set_service(&zero).await.unwrap_err().to_string();
    assert!(
        err.contains("invalid value 0 for argument 'inter'"),
        "{err}"
    );

    // The same host twice in a service: refused before HAProxy sees it.
    let twice = service("api", port, &[&a, &a]);
    let err = lb.set_service(&twice).await.unwrap_err().to_string();
    assert!(err.contains("backend a is listed twice"), "{err}");

    assert_eq!(std::fs::read(lb.config_path()).unwrap(), installed);
    assert_reaches(port, &["a"]).await;
    lb.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_the_master_refuses_is_reported_and_the_running_config_put_back() {
    let dir = tempfile::tempdir().unwrap();
    let lb = haproxy(dir.path());
    lb.start().await.unwrap();
    let a = Backend::start("a", "127.0.0.10").await;
    let port = free_port();
    lb.set_service(&service("api", port, &[&a])).await.unwrap();
    assert_reaches(port, &["a"]).await;
    let installed = std::fs::read(lb.config_path()).unwrap();

    // A port another program holds: `haproxy -c` does not bind, the
    // reload does, and fails.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let err = lb
        .set_service(&service("mcs", taken_port, &[&a]))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("refused the reload"), "{err}");
    assert!(err.contains("cannot bind"), "{err}");
    assert_eq!(std::fs::read(lb.config_path()).unwrap(), installed);
    assert_eq!(lb.services().await.unwrap().len(), 1);
    assert_reaches(port, &["a"]).await;

    // Once the port is free, the same change goes through.
    drop(taken);
    assert_eq!(
        lb.set_service(&service("mcs", taken_port, &[&a]))
            .await
            .unwrap(),
        Change::Applied
    );
    assert_reaches(taken_port, &["a"]).await;
    lb.stop().await.unwrap();
}

fn golden_hosts() -> Vec<ClusterHost> {
    let h = |role, name: &str, ip: &str| ClusterHost {
        role,
        hostname: name.parse().unwrap(),
        ip: ip.parse().unwrap(),
    };
    vec![
        h(Role::Bootstrap, "bootstrap", "192.168.77.5"),
        h(Role::ControlPlane, "cp-0", "192.168.77.10"),
        h(Role::ControlPlane, "cp-1", "192.168.77.11"),
        h(Role::ControlPlane, "cp-2", "192.168.77.12"),
        h(Role::Worker, "worker-0", "192.168.77.20"),
        h(Role::Worker, "worker-1", "fd00:77::21"),
    ]
}

#[test]
fn okd_services_config_matches_the_golden_file_and_passes_haproxy_check() {
    let services: Services = okd_services("192.168.77.1".parse().unwrap(), &golden_hosts())
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    let text = render(&services);
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/haproxy-okd.cfg");
    if std::env::var_os("HARMONY_BLESS").is_some() {
        std::fs::write(&golden, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; regenerate with HARMONY_BLESS=1 cargo test -p harmony --test haproxy",
            golden.display()
        )
    });
    assert_eq!(
        text, expected,
        "golden file differs; if intended, regenerate with HARMONY_BLESS=1 and review the diff"
    );
    assert_haproxy_accepts(&golden);
    assert_eq!(
        harmony::infra::haproxy::render::read_back(&text).unwrap(),
        services
    );
}

#[tokio::test]
async fn every_rendered_config_passes_haproxy_check() {
    let dir = tempfile::tempdir().unwrap();
    let lb = haproxy(dir.path());
    let all = okd_services("127.0.0.1".parse().unwrap(), &golden_hosts());
    // Each prefix of the OKD services, and each without its health check.
    for n in 1..=all.len() {
        let mut s: Services = all[..n]
            .iter()
            .map(|s| (s.name.clone(), s.clone()))
            .collect();
        lb.check(&render(&s)).await.unwrap();
        for svc in s.values_mut() {
            svc.health_check = None;
            svc.backends.truncate(1);
        }
        lb.check(&render(&s)).await.unwrap();
    }
    // Not started: set_service checks and installs only.
    for svc in &all {
        assert_eq!(lb.set_service(svc).await.unwrap(), Change::Applied);
        assert_haproxy_accepts(&lb.config_path());
    }
    assert_eq!(lb.master_pid().await, None);
    assert_eq!(lb.services().await.unwrap().len(), all.len());
}
