//! The virtual lab's simulated cluster API (`infra::lab::cluster_sim`),
//! on 127.0.0.1 only: phase reports sent over real HTTP as the lab's
//! installer image sends them (busybox `wget --post-data`), and the real
//! installation steps of `modules/okd/install/cluster_steps.rs` run through
//! the saga on a `LazyClusterApi` loaded from the kubeconfig the
//! simulation writes (the same code `harmony install` uses), until the
//! bootstrap is complete, the workers' CSRs are approved by the policy
//! (and the ones it must refuse are not) and the control plane is
//! unschedulable. Then bad reports and hostile clients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use harmony::domain::saga::run_saga;
use harmony::domain::{
    ClusterApi, EventBus, Inventory, Outcome, Role, Step, StepContext, WorkerIdentity,
};
use harmony::infra::kube::{KubeApiConfig, LazyClusterApi};
use harmony::infra::lab::cluster_sim::{
    ClusterSimulation, CsrKind, CsrRequest, Phase, SimConfig, SimHost, SimLimits,
};
use harmony::modules::okd::install::cluster_steps::{
    ApproveWorkerCsrs, MastersUnschedulable, WaitApiAnswers, WaitBootstrapComplete,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Every wait of these tests is bounded by this.
const BOUND: Duration = Duration::from_secs(20);

fn host(name: &str, role: Role, macs: &[&str], ip: &str) -> SimHost {
    SimHost {
        name: name.parse().unwrap(),
        role,
        macs: macs.iter().map(|m| m.parse().unwrap()).collect(),
        ip: ip.parse().unwrap(),
    }
}

/// 1 bootstrap, 3 control-plane, 2 workers (two NICs each). The node
/// addresses are data only (certificate names); nothing connects to them.
fn lab_hosts() -> Vec<SimHost> {
    vec![
        host(
            "bootstrap",
            Role::Bootstrap,
            &["52:54:00:a0:00:01", "52:54:00:a1:00:01"],
            "127.77.0.5",
        ),
        host(
            "master-0",
            Role::ControlPlane,
            &["52:54:00:a0:00:10", "52:54:00:a1:00:10"],
            "127.77.0.10",
        ),
        host(
            "master-1",
            Role::ControlPlane,
            &["52:54:00:a0:00:11", "52:54:00:a1:00:11"],
            "127.77.0.11",
        ),
        host(
            "master-2",
            Role::ControlPlane,
            &["52:54:00:a0:00:12", "52:54:00:a1:00:12"],
            "127.77.0.12",
        ),
        host(
            "worker-0",
            Role::Worker,
            &["52:54:00:a0:00:20", "52:54:00:a1:00:20"],
            "127.77.0.20",
        ),
        host(
            "worker-1",
            Role::Worker,
            &["52:54:00:a0:00:21", "52:54:00:a1:00:21"],
            "127.77.0.21",
        ),
    ]
}

fn config(limits: SimLimits) -> SimConfig {
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    SimConfig {
        cluster: "lab".into(),
        hosts: lab_hosts(),
        api_bind: loopback,
        report_bind: loopback,
        server_names: vec![
            "api.lab.example.test".into(),
            "api-int.lab.example.test".into(),
        ],
        server_ips: vec![],
        advertised_server: None,
        limits,
    }
}

async fn start(limits: SimLimits) -> ClusterSimulation {
    ClusterSimulation::start(config(limits)).await.unwrap()
}

/// Sends `raw` to `addr` and reads until the server closes (bounded).
async fn exchange(addr: SocketAddr, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(BOUND, s.read_to_end(&mut out))
        .await
        .expect("the server answers within the bound")
        .unwrap();
    String::from_utf8_lossy(&out).to_string()
}

/// A report as busybox wget posts it; (status, body).
async fn post_body(sim: &ClusterSimulation, body: &[u8]) -> (u16, String) {
    let mut raw = format!(
        "POST /v1/report HTTP/1.1\r\nHost: {}\r\nUser-Agent: Wget\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        sim.report_addr(),
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    parse_response(&exchange(sim.report_addr(), &raw).await)
}

fn parse_response(text: &str) -> (u16, String) {
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (code, body.to_string())
}

async fn report(sim: &ClusterSimulation, mac: &str, phase: &str, hostname: &str) {
    let body = format!("mac={mac}&phase={phase}&hostname={hostname}&detail=from+the+test");
    let (code, text) = post_body(sim, body.as_bytes()).await;
    assert_eq!(code, 200, "{text}");
}

/// Every host reports its three phases, in role order, as the lab's VMs do.
async fn install_everything(sim: &ClusterSimulation) {
    for h in lab_hosts() {
        let mac = h.macs[0].to_string();
        for phase in ["ignition-fetched", "disk-written", "bond-up"] {
            report(sim, &mac, phase, h.name.as_str()).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn workers() -> Vec<WorkerIdentity> {
    lab_hosts()
        .into_iter()
        .filter(|h| h.role == Role::Worker)
        .map(|h| WorkerIdentity {
            hostname: h.name,
            addresses: vec![h.ip],
        })
        .collect()
}

fn inventory() -> Inventory {
    let store = harmony::store::SqliteStore::open(std::path::Path::new(":memory:")).unwrap();
    Inventory::new(Arc::new(store), EventBus::default())
}

fn steps() -> Vec<Box<dyn Step<LazyClusterApi>>> {
    let poll = Duration::from_millis(50);
    vec![
        Box::new(WaitApiAnswers {
            within: BOUND,
            poll,
        }),
        Box::new(WaitBootstrapComplete {
            within: BOUND,
            poll,
        }),
        Box::new(ApproveWorkerCsrs {
            workers: workers(),
            within: BOUND,
            poll,
        }),
        Box::new(MastersUnschedulable),
    ]
}

#[tokio::test]
async fn lab_cluster_sim_reports_drive_the_real_cluster_steps_to_ready_workers() {
    let sim = start(SimLimits::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("auth/kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&kubeconfig).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(&kubeconfig).unwrap();
        assert!(text.contains("current-context: admin"), "{text}");
        assert!(
            text.contains(&format!("server: {}", sim.api_url())),
            "{text}"
        );
    }
    let mut cfg = KubeApiConfig::new(&kubeconfig);
    cfg.call_timeout = Duration::from_secs(5);
    let api = LazyClusterApi::new("lab", cfg);

    // Before the bootstrap host is up, the API does not answer (HAProxy
    // with no backend: the connection is closed).
    assert!(!api.api_answers().await.unwrap());

    // Kubelets the policy must refuse: a node nobody inventoried, and an
    // inventoried worker's name asking for an address not its own.
    let rogue: IpAddr = "127.77.0.99".parse().unwrap();
    sim.submit_csr(CsrRequest::kubelet("worker-9", CsrKind::Client, &[]).unwrap())
        .unwrap();
    let mut wrong_ip = CsrRequest::kubelet("worker-0", CsrKind::Serving, &[rogue]).unwrap();
    wrong_ip.username = "system:node:worker-0".into();
    sim.submit_csr(wrong_ip).unwrap();

    let inv = inventory();
    let steps = steps();
    let ctx = StepContext {
        inventory: &inv,
        topology: &api,
    };
    let (outcome, ()) = tokio::join!(
        run_saga("lab cluster", &steps, ctx),
        install_everything(&sim)
    );
    let outcome = outcome.unwrap();
    let Outcome::Success { changes } = &outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(changes.len(), 4, "{changes:?}");

    let view = sim.view();
    assert!(view.api_answers && view.bootstrap_complete);
    assert!(!view.masters_schedulable, "the Scheduler was patched");
    // Each host's three phases, in order, with their times.
    for h in &view.hosts {
        let phases: Vec<Phase> = h.phases.iter().map(|p| p.phase).collect();
        assert_eq!(
            phases,
            [Phase::IgnitionFetched, Phase::DiskWritten, Phase::BondUp],
            "{}",
            h.name
        );
        assert!(h.phases.windows(2).all(|w| w[0].at <= w[1].at));
        match h.role {
            Role::Bootstrap => assert_eq!(h.node_ready, None),
            _ => assert_eq!(h.node_ready, Some(true), "{} is a Ready node", h.name),
        }
    }
    // Both workers' client and serving CSRs approved with the policy's
    // note; the two rogue ones left pending.
    // The two submitted first (csr-00001, csr-00002) are the rogue ones.
    for c in &view.csrs {
        if c.name == "csr-00001" || c.name == "csr-00002" {
            assert_eq!(c.approved, None, "{c:?} must not be approved");
        } else {
            let note = c
                .approved
                .as_deref()
                .unwrap_or_else(|| panic!("{c:?} approved"));
            assert!(note.starts_with("approved"), "{note}");
            assert!(note.contains(&c.node), "{note}");
        }
    }
    assert_eq!(view.csrs.len(), 6, "{:?}", view.csrs);
    assert_eq!(view.csrs.iter().filter(|c| c.approved.is_some()).count(), 4);
    for (node, kind) in [
        ("worker-0", CsrKind::Client),
        ("worker-0", CsrKind::Serving),
        ("worker-1", CsrKind::Client),
        ("worker-1", CsrKind::Serving),
    ] {
        assert!(
            view.csrs
                .iter()
                .any(|c| c.node == node && c.kind == kind && c.approved.is_some()),
            "{node} {kind:?}"
        );
    }

    // A second run finds everything in place.
    let again = run_saga("lab cluster", &steps, ctx).await.unwrap();
    assert!(matches!(again, Outcome::Noop { .. }), "{again:?}");
    sim.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn lab_cluster_sim_refuses_bad_reports_and_stores_nothing() {
    let sim = start(SimLimits::default()).await;
    let cases: [(&[u8], u16, &str); 7] = [
        (
            b"mac=52:54:00:ff:ff:ff&phase=bond-up&hostname=worker-0",
            404,
            "not a MAC of any expected host",
        ),
        (
            b"mac=52:54:00:a0:00:20&phase=exploded&hostname=worker-0",
            422,
            "field phase",
        ),
        (
            b"mac=52:54:00:a0:00:20&phase=bond-up&hostname=master-0",
            422,
            "belongs to host worker-0",
        ),
        (
            b"mac=not-a-mac&phase=bond-up&hostname=worker-0",
            422,
            "field mac",
        ),
        (
            b"mac=52:54:00:a0:00:20&phase=bond-up",
            400,
            "field hostname is missing",
        ),
        (
            b"mac=52:54:00:a0:00:20&phase=bond-up&hostname=worker-0&evil=1",
            400,
            "unknown field",
        ),
        (
            b"mac=52%ZZ&phase=bond-up&hostname=worker-0",
            400,
            "percent-encoding",
        ),
    ];
    for (body, code, says) in cases {
        let (got, text) = post_body(&sim, body).await;
        assert_eq!(got, code, "{text}");
        assert!(text.contains(says), "{text:?} should say {says:?}");
    }
    // Oversize body: refused before it is read.
    let big = vec![b'a'; SimLimits::default().max_report_body + 1];
    let (got, text) = post_body(&sim, &big).await;
    assert_eq!(got, 413, "{text}");
    // Other methods and paths.
    let (got, _) =
        parse_response(&exchange(sim.report_addr(), b"GET /v1/report HTTP/1.1\r\n\r\n").await);
    assert_eq!(got, 405);
    let (got, _) = parse_response(
        &exchange(
            sim.report_addr(),
            b"POST /other HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        )
        .await,
    );
    assert_eq!(got, 404);
    let (got, _) =
        parse_response(&exchange(sim.report_addr(), b"\x16\x03\x01 garbage\r\n\r\n").await);
    assert_eq!(got, 400);

    let view = sim.view();
    assert!(view.hosts.iter().all(|h| h.phases.is_empty()), "{view:?}");
    assert!(view.csrs.is_empty() && !view.api_answers);
    sim.shutdown(Duration::from_secs(5)).await.unwrap();
}

fn hostile_limits() -> SimLimits {
    SimLimits {
        header_timeout: Duration::from_millis(300),
        body_timeout: Duration::from_millis(300),
        max_connections: 4,
        ..SimLimits::default()
    }
}

/// Reads until EOF or error: true when the server closed the connection.
async fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(BOUND, s.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn lab_cluster_sim_closes_a_slow_header_and_a_slow_body() {
    let sim = start(hostile_limits()).await;
    let mut slow = TcpStream::connect(sim.report_addr()).await.unwrap();
    slow.write_all(b"POST /v1/report HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(closed_by_server(&mut slow).await, "slow header closed");

    let mut slow_body = TcpStream::connect(sim.report_addr()).await.unwrap();
    slow_body
        .write_all(b"POST /v1/report HTTP/1.1\r\nContent-Length: 100\r\n\r\nmac=")
        .await
        .unwrap();
    assert!(closed_by_server(&mut slow_body).await, "slow body closed");

    // The API listener too, once it answers: a TLS client that never
    // finishes its handshake is closed.
    report(&sim, "52:54:00:a0:00:01", "bond-up", "bootstrap").await;
    let mut silent = TcpStream::connect(sim.api_addr()).await.unwrap();
    assert!(
        closed_by_server(&mut silent).await,
        "silent TLS client closed"
    );
    assert!(
        sim.view()
            .hosts
            .iter()
            .filter(|h| !h.phases.is_empty())
            .count()
            == 1
    );
    sim.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn lab_cluster_sim_caps_connections_and_serves_again_after() {
    let limits = SimLimits {
        header_timeout: Duration::from_secs(15),
        ..hostile_limits()
    };
    let sim = start(limits).await;
    let mut held = Vec::new();
    for _ in 0..limits.max_connections {
        let mut s = TcpStream::connect(sim.report_addr()).await.unwrap();
        s.write_all(b"POST /v1/report HTTP/1.1\r\n").await.unwrap();
        held.push(s);
    }
    // One over the cap: closed at once, long before the header timeout.
    let mut over = TcpStream::connect(sim.report_addr()).await.unwrap();
    assert!(closed_by_server(&mut over).await, "over the cap closed");
    // The held ones are still served.
    let body = b"mac=52:54:00:a0:00:10&phase=ignition-fetched&hostname=master-0";
    let mut first = held.remove(0);
    first
        .write_all(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes())
        .await
        .unwrap();
    first.write_all(body).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(BOUND, first.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(parse_response(&String::from_utf8_lossy(&out)).0, 200);
    drop(held);
    // Freed slots serve new clients again (bounded retries: a slot frees
    // when the server notices the close).
    let mut served = false;
    for _ in 0..100 {
        let text = exchange(sim.report_addr(), b"GET /v1/report HTTP/1.1\r\n\r\n").await;
        if text.starts_with("HTTP/1.1 405") {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served);
    sim.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn lab_cluster_sim_shuts_down_within_its_deadline_with_clients_open() {
    let limits = SimLimits {
        header_timeout: Duration::from_secs(60),
        body_timeout: Duration::from_secs(60),
        ..SimLimits::default()
    };
    let sim = start(limits).await;
    report(&sim, "52:54:00:a0:00:01", "bond-up", "bootstrap").await;
    let (api, rep) = (sim.api_addr(), sim.report_addr());
    let mut idle = Vec::new();
    for addr in [api, rep, api, rep] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        if addr == rep {
            // Half a request line; the API ones wait in the TLS handshake.
            s.write_all(b"PO").await.unwrap();
        }
        idle.push(s);
    }
    sim.shutdown(Duration::from_secs(5)).await.unwrap();
    for s in &mut idle {
        assert!(
            closed_by_server(s).await,
            "open connection closed at shutdown"
        );
    }
    assert!(TcpStream::connect(api).await.is_err(), "API listener gone");
    assert!(
        TcpStream::connect(rep).await.is_err(),
        "report listener gone"
    );
}

#[tokio::test]
async fn lab_cluster_sim_api_names_its_host_and_requires_a_client_certificate() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let sim = start(SimLimits::default()).await;
    report(&sim, "52:54:00:a0:00:01", "bond-up", "bootstrap").await;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(sim.server_ca_pem().as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = TcpStream::connect(sim.api_addr()).await.unwrap();
    // The server certificate is checked against `api-int.<cluster>.<domain>`
    // (one of its SANs); without a client certificate no answer comes.
    let name = ServerName::try_from("api-int.lab.example.test").unwrap();
    let exchange = async {
        let mut tls = connector.connect(name, tcp).await?;
        tls.write_all(b"GET /version HTTP/1.1\r\nHost: api\r\n\r\n")
            .await?;
        let mut out = Vec::new();
        tls.read_to_end(&mut out).await?;
        Ok::<_, std::io::Error>(out)
    };
    // TLS 1.3: the handshake passes the server certificate (right CA,
    // right name), then the server's alert refuses the missing client one.
    let err = tokio::time::timeout(BOUND, exchange)
        .await
        .unwrap()
        .expect_err("no answer without a client certificate");
    assert!(err.to_string().contains("CertificateRequired"), "{err}");
    sim.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// The installer image's own client: busybox `wget --post-data`.
fn busybox_post(sim: &ClusterSimulation, body: &str) -> harmony::infra::process::Program {
    harmony::infra::process::Program::new("busybox")
        // No `-T`: Debian 12's busybox-static 1.35 wget segfaults with it here.
        .args(["wget", "-q", "-O", "-", "--post-data", body])
        .arg(sim.report_url())
        .timeout(BOUND)
}

#[tokio::test]
async fn lab_cluster_sim_takes_reports_from_busybox_wget() {
    // On listeners bound by the caller, as the lab binds them in its
    // namespace.
    let bind = || std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (api, rep) = (bind(), bind());
    let rep_addr = rep.local_addr().unwrap();
    let sim =
        ClusterSimulation::start_with_listeners(config(SimLimits::default()), api, rep).unwrap();
    assert_eq!(sim.report_addr(), rep_addr);
    let out = busybox_post(
        &sim,
        "mac=52:54:00:a1:00:01&phase=ignition-fetched&hostname=bootstrap&detail=fetched+bootstrap.ign",
    )
    .run()
    .await
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok: report taken for bootstrap\n"
    );
    // A refused report makes wget fail (the installer image logs it).
    let out = busybox_post(&sim, "mac=52:54:00:a1:00:01&phase=nope&hostname=bootstrap")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    let view = sim.view();
    let bootstrap = &view.hosts[0];
    assert_eq!(bootstrap.phases.len(), 1);
    assert_eq!(bootstrap.phases[0].phase, Phase::IgnitionFetched);
    assert_eq!(bootstrap.phases[0].detail, "fetched bootstrap.ign");
    assert_eq!(bootstrap.phases[0].mac.to_string(), "52:54:00:a1:00:01");
    sim.shutdown(Duration::from_secs(5)).await.unwrap();
}
