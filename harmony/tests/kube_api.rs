//! Contract tests of the cluster API (`infra::kube`, the `ClusterApi`
//! capability) against a local https server on 127.0.0.1 that implements
//! exactly the endpoints Harmony uses, as Kubernetes and OKD document them
//! (`/work/shared/notes/vendor-apis.md` §5):
//! - `GET /api/v1/namespaces/kube-system/configmaps/bootstrap`, absent (404
//!   `Status` NotFound) until bootkube is done, then `data.status:
//!   complete` (openshift/installer `cmd/openshift-install/create.go`,
//!   `report-progress.sh` [K1][K2]);
//! - `GET /apis/certificates.k8s.io/v1/certificatesigningrequests[/<name>]`
//!   and `PUT .../<name>/approval` with the full object and an `Approved`
//!   condition appended; a stale `resourceVersion` is 409 Conflict
//!   (kubectl `pkg/cmd/certificates/certificates.go`, docs.okd.io REST API
//!   [K3][K9]); the CSRs are real PKCS#10 requests made here, shaped as a
//!   kubelet makes them (client: `CN=system:node:<name>, O=system:nodes`,
//!   requested by the node-bootstrapper [K4][K5]; serving: the same subject
//!   with the node's names and addresses, requested by `system:node:<name>`);
//! - `GET` and merge `PATCH` (`application/merge-patch+json`, RFC 7386) of
//!   `/apis/config.openshift.io/v1/schedulers/cluster` [K6];
//! - `GET /version` (Kubernetes' version `Info`: `major`, `minor`,
//!   `gitVersion`, ..., apimachinery `pkg/version/types.go`) and `GET
//!   /api/v1/nodes` (a `NodeList`; each node's `status.conditions` with
//!   `type: Ready`, `status: "True" | "False" | "Unknown"`, core/v1
//!   `NodeCondition`);
//! - errors as the API server sends them: a `Status` object with `code`,
//!   `reason`, `message`.
//!
//! The server asks for a client certificate (mutual TLS, as the API server
//! does for the installer's `admin` kubeconfig) and records every request.
//! Each test writes a kubeconfig shaped like `openshift-install`'s
//! `auth/kubeconfig` pointing at it, with its own CAs made by rcgen.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#[path = "support/http_request.rs"]
mod http_request;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use harmony::domain::ReadyStatus;
use harmony::domain::{
    Change, ClusterApi, ClusterApiError, CsrSigner, CsrState, WorkerIdentity, decide_csrs,
};
use harmony::infra::kube::{KubeApiConfig, KubeClusterApi, KubeError, LazyClusterApi};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

const CSRS: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
const BOOTSTRAP: &str = "/api/v1/namespaces/kube-system/configmaps/bootstrap";
const SCHEDULER: &str = "/apis/config.openshift.io/v1/schedulers/cluster";
const VERSION: &str = "/version";
const NODES: &str = "/api/v1/nodes";
const BOOTSTRAPPER: &str =
    "system:serviceaccount:openshift-machine-config-operator:node-bootstrapper";

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

// ---------------------------------------------------------------- PKI

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let pem = p.self_signed(&key).unwrap().pem();
    Ca {
        pem,
        issuer: Issuer::new(p, key),
    }
}

struct Pki {
    /// The cluster's CA (the kubeconfig's `certificate-authority-data`).
    server_ca: Ca,
    /// The installer's `admin` client certificate and key (PEM), and its DER.
    admin_cert: String,
    admin_key: String,
    admin_der: Vec<u8>,
    server: Arc<rustls::ServerConfig>,
}

/// A server certificate for 127.0.0.1 and `api.lab.example.test` signed by
/// `server_ca`; client certificates must chain to the client CA.
fn pki() -> Pki {
    let server_ca = ca("kube-apiserver-lb-signer");
    let client_ca = ca("admin-kubeconfig-signer");
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["api.lab.example.test".to_string()]).unwrap();
    leaf.subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    let cert = leaf.signed_by(&key, &server_ca.issuer).unwrap();

    let admin_key = KeyPair::generate().unwrap();
    let mut admin = CertificateParams::new(Vec::<String>::new()).unwrap();
    admin
        .distinguished_name
        .push(DnType::CommonName, "system:admin");
    admin
        .distinguished_name
        .push(DnType::OrganizationName, "system:masters");
    let admin = admin.signed_by(&admin_key, &client_ca.issuer).unwrap();

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(client_ca_der(
            &client_ca.pem,
        )))
        .unwrap();
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider.clone())
            .build()
            .unwrap();
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    Pki {
        server_ca,
        admin_cert: admin.pem(),
        admin_key: admin_key.serialize_pem(),
        admin_der: admin.der().to_vec(),
        server: Arc::new(server),
    }
}

fn client_ca_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

// ------------------------------------------------------ the API server

#[derive(Debug, Clone)]
struct Req {
    method: String,
    path: String,
    content_type: Option<String>,
    body: Option<Value>,
    client_cert: Option<Vec<u8>>,
}

#[derive(Default)]
struct State {
    bootstrap: Option<Value>,
    csrs: Vec<Value>,
    scheduler: Option<Value>,
    nodes: Vec<Value>,
    log: Vec<Req>,
    /// (method, path) -> (status, body) answered instead.
    fixed: HashMap<(String, String), (u16, String)>,
    /// Paths whose requests are read and never answered.
    hang: HashSet<String>,
    /// Approval PUTs answered 409 (someone else changed the CSR) first.
    conflicts: u32,
    rv: u64,
}

#[derive(Clone)]
struct FakeApi {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl FakeApi {
    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }
    fn take_log(&self) -> Vec<Req> {
        self.with(|s| std::mem::take(&mut s.log))
    }
    fn csr(&self, name: &str) -> Value {
        self.with(|s| {
            s.csrs
                .iter()
                .find(|c| c["metadata"]["name"] == name)
                .cloned()
                .unwrap()
        })
    }
}

fn status(code: u16, reason: &str, message: &str) -> (u16, String) {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code});
    (code, body.to_string())
}

fn not_found(kind: &str, name: &str) -> (u16, String) {
    status(404, "NotFound", &format!("{kind} \"{name}\" not found"))
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

fn bump(s: &mut State, obj: &mut Value) {
    s.rv += 1;
    obj["metadata"]["resourceVersion"] = json!(s.rv.to_string());
}

/// The API server's answer (only the endpoints Harmony uses).
fn answer(s: &mut State, method: &str, path: &str, req: &Req) -> (u16, String) {
    if let Some(f) = s.fixed.get(&(method.to_string(), path.to_string())) {
        return f.clone();
    }
    let ok = |v: &Value| (200u16, v.to_string());
    match (method, path) {
        ("GET", BOOTSTRAP) => match &s.bootstrap {
            Some(cm) => ok(cm),
            None => not_found("configmaps", "bootstrap"),
        },
        ("GET", CSRS) => {
            // List items carry no kind/apiVersion; the list does.
            let items: Vec<Value> = s
                .csrs
                .iter()
                .map(|c| {
                    let mut c = c.clone();
                    let o = c.as_object_mut().unwrap();
                    o.remove("kind");
                    o.remove("apiVersion");
                    c
                })
                .collect();
            ok(&json!({"kind": "CertificateSigningRequestList",
                "apiVersion": "certificates.k8s.io/v1",
                "metadata": {"resourceVersion": s.rv.to_string()}, "items": items}))
        }
        ("GET", VERSION) => ok(&json!({"major": "1", "minor": "32",
            "gitVersion": "v1.32.5", "gitCommit": "0a2b3c4d5e6f", "gitTreeState": "clean",
            "buildDate": "2026-05-10T08:00:00Z", "goVersion": "go1.23.8", "compiler": "gc",
            "platform": "linux/amd64"})),
        ("GET", NODES) => {
            let items: Vec<Value> = s.nodes.clone();
            ok(&json!({"kind": "NodeList", "apiVersion": "v1",
                "metadata": {"resourceVersion": s.rv.to_string()}, "items": items}))
        }
        ("GET", SCHEDULER) => match &s.scheduler {
            Some(o) => ok(o),
            None => not_found("schedulers.config.openshift.io", "cluster"),
        },
        ("PATCH", SCHEDULER) => {
            if req.content_type.as_deref() != Some("application/merge-patch+json") {
                return status(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format",
                );
            }
            let Some(mut obj) = s.scheduler.clone() else {
                return not_found("schedulers.config.openshift.io", "cluster");
            };
            merge(&mut obj, req.body.as_ref().unwrap());
            bump(s, &mut obj);
            s.scheduler = Some(obj.clone());
            ok(&obj)
        }
        ("GET", p) if p.starts_with(CSRS) => {
            let name = &p[CSRS.len() + 1..];
            match s.csrs.iter().find(|c| c["metadata"]["name"] == name) {
                Some(c) => ok(c),
                None => not_found("certificatesigningrequests.certificates.k8s.io", name),
            }
        }
        ("PUT", p) if p.starts_with(CSRS) && p.ends_with("/approval") => {
            let name = p[CSRS.len() + 1..]
                .trim_end_matches("/approval")
                .to_string();
            if req.content_type.as_deref() != Some("application/json") {
                return status(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format",
                );
            }
            let Some(body) = req.body.clone() else {
                return status(400, "BadRequest", "the request body is not JSON");
            };
            let Some(i) = s
                .csrs
                .iter()
                .position(|c| c["metadata"]["name"] == name.as_str())
            else {
                return not_found("certificatesigningrequests.certificates.k8s.io", &name);
            };
            let conflict = status(
                409,
                "Conflict",
                &format!(
                    "Operation cannot be fulfilled on certificatesigningrequests.certificates.k8s.io \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
                ),
            );
            if s.conflicts > 0 {
                // Someone else changed it meanwhile.
                s.conflicts -= 1;
                let mut c = s.csrs[i].clone();
                bump(s, &mut c);
                s.csrs[i] = c;
                return conflict;
            }
            if body["metadata"]["name"] != name.as_str()
                || body["metadata"]["uid"] != s.csrs[i]["metadata"]["uid"]
            {
                return status(400, "BadRequest", "name or uid does not match");
            }
            if body["metadata"]["resourceVersion"] != s.csrs[i]["metadata"]["resourceVersion"] {
                return conflict;
            }
            // The approval strategy takes only the conditions.
            let mut c = s.csrs[i].clone();
            c["status"]["conditions"] = body["status"]["conditions"].clone();
            bump(s, &mut c);
            s.csrs[i] = c.clone();
            ok(&c)
        }
        _ => status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ),
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut sock: S,
    client_cert: Option<Vec<u8>>,
    st: Arc<Mutex<State>>,
) {
    let Some(got) = http_request::read_request(&mut sock).await else {
        return;
    };
    let (method, path) = (got.method.clone(), got.path());
    let h = |k: &str| got.header(k);
    let body = (!got.body.is_empty())
        .then(|| serde_json::from_slice::<Value>(&got.body).ok())
        .flatten();
    let req = Req {
        method: method.clone(),
        path: path.clone(),
        content_type: h("content-type"),
        body,
        client_cert,
    };
    let (hang, (code, text)) = {
        let mut s = st.lock().unwrap();
        s.log.push(req.clone());
        if s.hang.contains(&path) {
            (true, (0, String::new()))
        } else {
            (false, answer(&mut s, &method, &path, &req))
        }
    };
    if hang {
        // Never answers; the connection task's own limit ends it.
        tokio::time::sleep(Duration::from_secs(60)).await;
        return;
    }
    let resp = format!(
        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = sock.write_all(resp.as_bytes()).await;
    let _ = sock.shutdown().await;
}

async fn start(p: &Pki) -> FakeApi {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let state = Arc::new(Mutex::new(State {
        rv: 100,
        ..State::default()
    }));
    let st = state.clone();
    let acceptor = tokio_rustls::TlsAcceptor::from(p.server.clone());
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let (st, acceptor) = (st.clone(), acceptor.clone());
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(20), async move {
                    if let Ok(tls) = acceptor.accept(sock).await {
                        let cert = tls
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .map(|c| c.to_vec());
                        serve(tls, cert, st).await;
                    }
                })
                .await;
            });
        }
    });
    FakeApi { port, state }
}

// ------------------------------------------------------- kubeconfigs

/// A kubeconfig shaped like `openshift-install`'s `auth/kubeconfig`
/// (cluster with CA data, user `admin` with client certificate and key,
/// context `admin`), `extra_cluster` and `extra_user` added verbatim.
fn kubeconfig(
    p: &Pki,
    server: &str,
    ca: Option<&str>,
    extra_cluster: &str,
    extra_user: &str,
) -> String {
    let ca_line = ca
        .map(|c| format!("    certificate-authority-data: {}\n", b64(c.as_bytes())))
        .unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n{ca_line}    server: {server}\n{extra_cluster}  name: lab\n\
         contexts:\n- context:\n    cluster: lab\n    user: admin\n  name: admin\ncurrent-context: admin\npreferences: {{}}\n\
         users:\n- name: admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n{extra_user}",
        b64(p.admin_cert.as_bytes()),
        b64(p.admin_key.as_bytes()),
    )
}

struct Env {
    _dir: tempfile::TempDir,
    api: FakeApi,
    pki: Pki,
    cluster: KubeClusterApi,
}

fn write_kubeconfig(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let auth = dir.path().join("auth");
    std::fs::create_dir_all(&auth).unwrap();
    let path = auth.join("kubeconfig");
    std::fs::write(&path, text).unwrap();
    path
}

async fn env_with_timeout(call_timeout: Duration) -> Env {
    let pki = pki();
    let api = start(&pki).await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_kubeconfig(
        &dir,
        &kubeconfig(&pki, &api.url(), Some(&pki.server_ca.pem), "", ""),
    );
    let mut cfg = KubeApiConfig::new(path);
    cfg.call_timeout = call_timeout;
    let cluster = KubeClusterApi::from_config("lab", &cfg).await.unwrap();
    Env {
        _dir: dir,
        api,
        pki,
        cluster,
    }
}

async fn env() -> Env {
    env_with_timeout(Duration::from_secs(10)).await
}

// --------------------------------------------------------------- CSRs

/// A PKCS#10 request as a kubelet makes it: `CN=system:node:<node>,
/// O=system:nodes`, with these DNS names and addresses.
fn pkcs10(node: &str, dns: &[&str], ips: &[&str]) -> String {
    let mut p =
        CertificateParams::new(dns.iter().map(|d| d.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name
        .push(DnType::CommonName, format!("system:node:{node}"));
    p.distinguished_name
        .push(DnType::OrganizationName, "system:nodes");
    for ip in ips {
        p.subject_alt_names
            .push(SanType::IpAddress(ip.parse().unwrap()));
    }
    p.serialize_request(&KeyPair::generate().unwrap())
        .unwrap()
        .pem()
        .unwrap()
}

struct CsrSpec<'a> {
    name: &'a str,
    signer: &'a str,
    username: &'a str,
    groups: &'a [&'a str],
    usages: &'a [&'a str],
    pem: String,
    conditions: Option<Value>,
}

fn client_csr(name: &str, node: &str) -> CsrSpec<'static> {
    CsrSpec {
        name: Box::leak(name.to_string().into_boxed_str()),
        signer: "kubernetes.io/kube-apiserver-client-kubelet",
        username: BOOTSTRAPPER,
        groups: &[
            "system:serviceaccounts:openshift-machine-config-operator",
            "system:serviceaccounts",
            "system:authenticated",
        ],
        usages: &["digital signature", "client auth"],
        pem: pkcs10(node, &[], &[]),
        conditions: None,
    }
}

fn serving_csr(name: &str, node: &str, ips: &[&str]) -> CsrSpec<'static> {
    CsrSpec {
        name: Box::leak(name.to_string().into_boxed_str()),
        signer: "kubernetes.io/kubelet-serving",
        username: Box::leak(format!("system:node:{node}").into_boxed_str()),
        groups: &["system:nodes", "system:authenticated"],
        usages: &["digital signature", "server auth"],
        pem: pkcs10(node, &[node], ips),
        conditions: None,
    }
}

fn csr_object(c: &CsrSpec<'_>, rv: u64) -> Value {
    let mut status = json!({});
    if let Some(conds) = &c.conditions {
        status = json!({"conditions": conds, "certificate": b64(b"issued")});
    }
    json!({
        "kind": "CertificateSigningRequest",
        "apiVersion": "certificates.k8s.io/v1",
        "metadata": {"name": c.name, "uid": format!("uid-{}", c.name),
            "resourceVersion": rv.to_string(),
            "creationTimestamp": "2026-08-01T10:00:00Z",
            "managedFields": [{"manager": "kubelet", "operation": "Update",
                "apiVersion": "certificates.k8s.io/v1", "time": "2026-08-01T10:00:00Z"}]},
        "spec": {"request": b64(c.pem.as_bytes()), "signerName": c.signer,
            "usages": c.usages, "username": c.username, "groups": c.groups,
            "uid": format!("user-{}", c.name)},
        "status": status,
    })
}

fn add_csrs(api: &FakeApi, specs: &[CsrSpec<'_>]) {
    api.with(|s| {
        for c in specs {
            s.rv += 1;
            let rv = s.rv;
            s.csrs.push(csr_object(c, rv));
        }
    });
}

fn workers() -> Vec<WorkerIdentity> {
    vec![
        WorkerIdentity {
            hostname: "worker-0".parse().unwrap(),
            addresses: vec!["10.0.0.20".parse().unwrap()],
        },
        WorkerIdentity {
            hostname: "worker-1".parse().unwrap(),
            addresses: vec!["10.0.0.21".parse().unwrap()],
        },
    ]
}

fn paths(log: &[Req]) -> Vec<String> {
    log.iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

// -------------------------------------------------------------- tests

#[tokio::test]
async fn contract_bootstrap_configmap_absent_incomplete_then_complete() {
    let e = env().await;
    assert!(!e.cluster.bootstrap_complete().await.unwrap());
    let cm = |data: Value| {
        json!({"kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": "bootstrap", "namespace": "kube-system", "resourceVersion": "5"},
            "data": data})
    };
    e.api.with(|s| s.bootstrap = Some(cm(json!({}))));
    assert!(!e.cluster.bootstrap_complete().await.unwrap());
    e.api
        .with(|s| s.bootstrap = Some(cm(json!({"status": "progressing"}))));
    assert!(!e.cluster.bootstrap_complete().await.unwrap());
    e.api
        .with(|s| s.bootstrap = Some(cm(json!({"status": "complete"}))));
    assert!(e.cluster.bootstrap_complete().await.unwrap());

    let log = e.api.take_log();
    assert_eq!(paths(&log), vec![format!("GET {BOOTSTRAP}"); 4]);
    // Every request came with the kubeconfig's client certificate.
    assert!(
        log.iter()
            .all(|r| r.client_cert.as_deref() == Some(&e.pki.admin_der[..]))
    );
    assert_eq!(e.cluster.api_server(), e.api.url());
}

#[tokio::test]
async fn contract_only_matching_csrs_are_approved_with_the_documented_body() {
    let e = env().await;
    let mut approved_before = client_csr("csr-e", "worker-1");
    approved_before.conditions = Some(json!([{"type": "Approved", "status": "True",
        "reason": "NodeCSRApprove", "message": "approved earlier",
        "lastUpdateTime": "2026-08-01T10:01:00Z", "lastTransitionTime": "2026-08-01T10:01:00Z"}]));
    let mut wrong_requestor = client_csr("csr-g", "worker-1");
    wrong_requestor.username = "system:node:worker-1";
    let mut other_signer = client_csr("csr-h", "worker-0");
    other_signer.signer = "kubernetes.io/kube-apiserver-client";
    let mut serving_by_bootstrapper = serving_csr("csr-i", "worker-1", &["10.0.0.21"]);
    serving_by_bootstrapper.username = BOOTSTRAPPER;
    add_csrs(
        &e.api,
        &[
            client_csr("csr-a", "worker-0"),
            serving_csr("csr-b", "worker-0", &["10.0.0.20"]),
            serving_csr("csr-c", "worker-1", &["10.0.0.21", "10.0.0.99"]),
            client_csr("csr-d", "worker-7"),
            approved_before,
            serving_csr("csr-f", "master-0", &["10.0.0.10"]),
            wrong_requestor,
            other_signer,
            serving_by_bootstrapper,
        ],
    );

    let pending = e.cluster.pending_csrs().await.unwrap();
    let names: Vec<&str> = pending.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "csr-a", "csr-b", "csr-c", "csr-d", "csr-f", "csr-g", "csr-h", "csr-i"
        ]
    );
    // The typed view: parsed from the PKCS#10 request.
    let b = &pending[1];
    assert_eq!(b.signer, CsrSigner::KubeletServing);
    assert_eq!(b.username, "system:node:worker-0");
    assert_eq!(b.uid, "uid-csr-b");
    assert_eq!(b.state, CsrState::Pending);
    let req = b.request.as_ref().unwrap();
    assert_eq!(req.common_names, ["system:node:worker-0"]);
    assert_eq!(req.organizations, ["system:nodes"]);
    assert_eq!(req.dns_names, ["worker-0"]);
    assert_eq!(
        req.ip_addresses,
        ["10.0.0.20".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(pending[0].groups.len(), 3);

    let decisions = decide_csrs(&pending, &workers());
    let verdicts: Vec<(&str, bool)> = decisions
        .iter()
        .map(|d| (d.csr.as_str(), d.approved()))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("csr-a", true),
            ("csr-b", true),
            ("csr-c", false),
            ("csr-d", false),
            ("csr-f", false),
            ("csr-g", false),
            ("csr-h", false),
            ("csr-i", false),
        ]
    );
    for (d, want) in decisions.iter().zip([
        "approved: client certificate of worker worker-0",
        "approved: serving certificate of worker worker-0 for 10.0.0.20",
        "names address 10.0.0.99, which is not one of its planned addresses (10.0.0.21)",
        "node name worker-7 is not an inventoried worker",
        "node name master-0 is not an inventoried worker",
        "requested by system:node:worker-1, not the node-bootstrapper service account",
        "signer kubernetes.io/kube-apiserver-client is neither",
        "requested by system:serviceaccount:openshift-machine-config-operator:node-bootstrapper, not system:node:worker-1",
    ]) {
        assert!(d.note.contains(want), "{:?} lacks {want:?}", d.note);
    }
    e.api.take_log();

    // Approve what the policy approved, with its note.
    let before: HashMap<String, Value> = ["csr-a", "csr-b"]
        .iter()
        .map(|n| (n.to_string(), e.api.csr(n)))
        .collect();
    for (csr, d) in pending.iter().zip(&decisions) {
        if d.approved() {
            assert_eq!(
                e.cluster.approve_csr(csr, &d.note).await.unwrap(),
                Change::Applied
            );
        }
    }
    let log = e.api.take_log();
    assert_eq!(
        paths(&log),
        [
            format!("GET {CSRS}/csr-a"),
            format!("PUT {CSRS}/csr-a/approval"),
            format!("GET {CSRS}/csr-b"),
            format!("PUT {CSRS}/csr-b/approval"),
        ]
    );
    for (put, (name, note)) in log
        .iter()
        .filter(|r| r.method == "PUT")
        .zip([("csr-a", &decisions[0].note), ("csr-b", &decisions[1].note)])
    {
        assert_eq!(put.content_type.as_deref(), Some("application/json"));
        let body = put.body.clone().unwrap();
        // The full object as served, with one condition appended.
        let cond = &body["status"]["conditions"][0];
        let stamp = cond["lastUpdateTime"].as_str().unwrap();
        stamp
            .parse::<k8s_openapi::jiff::Timestamp>()
            .unwrap_or_else(|_| panic!("lastUpdateTime {stamp:?}"));
        assert!(stamp.ends_with('Z') && stamp.len() == 20, "{stamp}");
        let mut want = before[name].clone();
        want["status"]["conditions"] = json!([{"type": "Approved", "status": "True",
            "reason": "HarmonyApprove", "message": note, "lastUpdateTime": stamp}]);
        assert_eq!(body, want, "approval body of {name}");
    }
    // The API server holds them as approved; nothing else changed.
    for n in ["csr-a", "csr-b"] {
        assert_eq!(e.api.csr(n)["status"]["conditions"][0]["type"], "Approved");
    }
    for n in ["csr-c", "csr-d", "csr-f", "csr-g", "csr-h", "csr-i"] {
        assert_eq!(e.api.csr(n)["status"], json!({}), "{n}");
    }

    // A second round: the approved ones are no longer pending, and
    // approving again changes nothing and sends no PUT.
    let again = e.cluster.pending_csrs().await.unwrap();
    assert!(
        !again
            .iter()
            .any(|c| c.name.as_str() == "csr-a" || c.name.as_str() == "csr-b")
    );
    assert_eq!(
        e.cluster.approve_csr(&pending[0], "again").await.unwrap(),
        Change::Unchanged
    );
    assert!(e.api.take_log().iter().all(|r| r.method == "GET"));
}

#[tokio::test]
async fn contract_approval_reads_again_on_conflict_and_refuses_denied_or_replaced() {
    let e = env().await;
    let mut denied = client_csr("csr-denied", "worker-0");
    denied.conditions = Some(json!([{"type": "Denied", "status": "True",
        "reason": "AdminDenied", "message": "no", "lastUpdateTime": "2026-08-01T10:01:00Z"}]));
    add_csrs(&e.api, &[client_csr("csr-a", "worker-0"), denied]);
    let pending = e.cluster.pending_csrs().await.unwrap();
    assert_eq!(pending.len(), 1);
    let a = &pending[0];

    // Twice someone else changes it between our GET and PUT.
    e.api.with(|s| s.conflicts = 2);
    e.api.take_log();
    assert_eq!(
        e.cluster.approve_csr(a, "note").await.unwrap(),
        Change::Applied
    );
    let log = e.api.take_log();
    assert_eq!(log.iter().filter(|r| r.method == "PUT").count(), 3);
    assert_eq!(log.iter().filter(|r| r.method == "GET").count(), 3);
    let last = log.last().unwrap().body.clone().unwrap();
    assert_eq!(
        last["status"]["conditions"].as_array().unwrap().len(),
        1,
        "one condition, not one per attempt"
    );

    // A conflict that never ends is an error after kubectl's 10 attempts.
    let b = {
        add_csrs(&e.api, &[client_csr("csr-b", "worker-0")]);
        e.cluster
            .pending_csrs()
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.name.as_str() == "csr-b")
            .unwrap()
    };
    e.api.with(|s| s.conflicts = 100);
    let err = e.cluster.approve_csr(&b, "note").await.unwrap_err();
    assert!(
        matches!(err, ClusterApiError::Conflict { attempts: 10, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(&format!("PUT {}{CSRS}/csr-b/approval", e.api.url()))
    );
    e.api.with(|s| s.conflicts = 0);

    // Denied since it was listed: refused, nothing sent.
    let mut as_listed = b.clone();
    e.api.with(|s| {
        let c = s
            .csrs
            .iter_mut()
            .find(|c| c["metadata"]["name"] == "csr-b")
            .unwrap();
        c["status"] = json!({"conditions": [{"type": "Denied", "status": "True"}]});
    });
    e.api.take_log();
    let err = e.cluster.approve_csr(&as_listed, "note").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("CSR csr-b not approved: it is denied"),
        "{err}"
    );
    // Replaced by another object of the same name: refused.
    as_listed.name = "csr-a".parse().unwrap();
    let err = e.cluster.approve_csr(&as_listed, "note").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("it was replaced (uid uid-csr-a is not the decided uid-csr-b)"),
        "{err}"
    );
    assert!(e.api.take_log().iter().all(|r| r.method == "GET"));
}

#[tokio::test]
async fn contract_scheduler_merge_patch_then_noop() {
    let e = env().await;
    e.api.with(|s| {
        s.scheduler = Some(
            json!({"apiVersion": "config.openshift.io/v1", "kind": "Scheduler",
            "metadata": {"name": "cluster", "resourceVersion": "433", "generation": 1,
                "uid": "a636d30a-d377-11e9-88d4-0a60097bee62"},
            "spec": {"mastersSchedulable": true, "policy": {"name": ""}}, "status": {}}),
        );
    });
    assert!(e.cluster.masters_schedulable().await.unwrap());
    assert_eq!(
        e.cluster.set_masters_schedulable(false).await.unwrap(),
        Change::Applied
    );
    let log = e.api.take_log();
    assert_eq!(
        paths(&log),
        [
            format!("GET {SCHEDULER}"),
            format!("GET {SCHEDULER}"),
            format!("PATCH {SCHEDULER}")
        ]
    );
    let patch = &log[2];
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    assert_eq!(
        patch.body,
        Some(json!({"spec": {"mastersSchedulable": false}}))
    );
    // The rest of the object is as it was.
    let now = e.api.with(|s| s.scheduler.clone().unwrap());
    assert_eq!(
        now["spec"],
        json!({"mastersSchedulable": false, "policy": {"name": ""}})
    );

    // Already false: Noop, no patch.
    assert_eq!(
        e.cluster.set_masters_schedulable(false).await.unwrap(),
        Change::Unchanged
    );
    assert_eq!(paths(&e.api.take_log()), [format!("GET {SCHEDULER}")]);
    // Absent field = false (its default): Noop as well.
    e.api
        .with(|s| s.scheduler.as_mut().unwrap()["spec"] = json!({}));
    assert!(!e.cluster.masters_schedulable().await.unwrap());
    assert_eq!(
        e.cluster.set_masters_schedulable(false).await.unwrap(),
        Change::Unchanged
    );
    // A field that is not a boolean is named.
    e.api
        .with(|s| s.scheduler.as_mut().unwrap()["spec"] = json!({"mastersSchedulable": "no"}));
    let err = e.cluster.masters_schedulable().await.unwrap_err();
    assert!(
        err.to_string()
            .contains("spec.mastersSchedulable is a string, not a boolean"),
        "{err}"
    );
}

#[tokio::test]
async fn contract_error_statuses_name_the_endpoint_and_message() {
    let e = env().await;
    let url = e.api.url();
    e.api.with(|s| {
        s.fixed.insert(
            ("GET".into(), BOOTSTRAP.into()),
            status(401, "Unauthorized", "Unauthorized"),
        );
        s.fixed.insert(
            ("GET".into(), CSRS.into()),
            status(403, "Forbidden", "certificatesigningrequests.certificates.k8s.io is forbidden: User \"system:anonymous\" cannot list resource \"certificatesigningrequests\" in API group \"certificates.k8s.io\" at the cluster scope"),
        );
        s.fixed.insert(
            ("GET".into(), SCHEDULER.into()),
            status(500, "InternalError", "Internal error occurred: etcdserver: request timed out"),
        );
    });
    let err = e.cluster.bootstrap_complete().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("GET {url}{BOOTSTRAP}: the API server answered 401 Unauthorized: Unauthorized")
    );
    let err = e.cluster.pending_csrs().await.unwrap_err();
    assert!(matches!(err, ClusterApiError::Api { code: 403, .. }));
    assert!(err.to_string().starts_with(&format!("GET {url}{CSRS}: the API server answered 403 Forbidden: certificatesigningrequests.certificates.k8s.io is forbidden: User _system:anonymous_ cannot list")), "{err}");
    let err = e.cluster.set_masters_schedulable(false).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "GET {url}{SCHEDULER}: the API server answered 500 InternalError: Internal error occurred: etcdserver: request timed out"
        )
    );
    // A 404 of the Scheduler is an error too (it always exists).
    e.api.with(|s| s.fixed.clear());
    let err = e.cluster.masters_schedulable().await.unwrap_err();
    assert!(
        err.to_string()
            .contains("404 NotFound: schedulers.config.openshift.io _cluster_ not found"),
        "{err}"
    );
    // A 500 on the PATCH names the PATCH.
    e.api.with(|s| {
        s.scheduler = Some(
            json!({"apiVersion": "config.openshift.io/v1", "kind": "Scheduler",
            "metadata": {"name": "cluster"}, "spec": {"mastersSchedulable": true}}),
        );
        s.fixed.insert(
            ("PATCH".into(), SCHEDULER.into()),
            status(
                500,
                "InternalError",
                "Internal error occurred: admission webhook failed",
            ),
        );
    });
    let err = e.cluster.set_masters_schedulable(false).await.unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "PATCH {url}{SCHEDULER}: the API server answered 500"
        )),
        "{err}"
    );
    assert!(
        err.to_string().ends_with("admission webhook failed"),
        "{err}"
    );
}

#[tokio::test]
async fn contract_a_hung_server_hits_the_timeout() {
    let e = env_with_timeout(Duration::from_millis(700)).await;
    e.api.with(|s| {
        s.hang.insert(BOOTSTRAP.into());
        s.hang.insert(format!("{CSRS}/csr-a/approval"));
    });
    let err = tokio::time::timeout(Duration::from_secs(30), e.cluster.bootstrap_complete())
        .await
        .expect("the call's own limit ends it")
        .unwrap_err();
    assert!(matches!(err, ClusterApiError::Timeout { .. }), "{err}");
    assert_eq!(err.endpoint(), format!("GET {}{BOOTSTRAP}", e.api.url()));
    // The request had arrived: the server, not the connection, hung.
    assert_eq!(paths(&e.api.take_log()), [format!("GET {BOOTSTRAP}")]);

    // A hung approval names the PUT.
    add_csrs(&e.api, &[client_csr("csr-a", "worker-0")]);
    let a = e.cluster.pending_csrs().await.unwrap().remove(0);
    let err = tokio::time::timeout(Duration::from_secs(30), e.cluster.approve_csr(&a, "n"))
        .await
        .expect("the call's own limit ends it")
        .unwrap_err();
    assert!(matches!(err, ClusterApiError::Timeout { .. }), "{err}");
    assert_eq!(
        err.endpoint(),
        format!("PUT {}{CSRS}/csr-a/approval", e.api.url())
    );
}

#[tokio::test]
async fn contract_the_kubeconfig_ca_is_required_and_checked() {
    let pki = pki();
    let api = start(&pki).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = pki.server_ca.pem.clone();
    let refused = |text: String| {
        let path = write_kubeconfig(&dir, &text);
        async move {
            KubeClusterApi::from_config("lab", &KubeApiConfig::new(path))
                .await
                .unwrap_err()
        }
    };
    let err = refused(kubeconfig(&pki, &api.url(), None, "", "")).await;
    assert!(
        matches!(
            err,
            KubeError::Refused {
                field: "certificate-authority-data",
                ..
            }
        ),
        "{err}"
    );
    let err = refused(kubeconfig(
        &pki,
        &api.url(),
        Some(&ca),
        "    insecure-skip-tls-verify: true\n",
        "",
    ))
    .await;
    assert!(
        matches!(
            err,
            KubeError::Refused {
                field: "insecure-skip-tls-verify",
                ..
            }
        ),
        "{err}"
    );
    let err = refused(kubeconfig(
        &pki,
        &format!("http://127.0.0.1:{}", api.port),
        Some(&ca),
        "",
        "",
    ))
    .await;
    assert!(
        matches!(
            err,
            KubeError::Refused {
                field: "server",
                ..
            }
        ),
        "{err}"
    );
    let exec = "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/true\n      interactiveMode: Never\n";
    let err = refused(kubeconfig(&pki, &api.url(), Some(&ca), "", exec)).await;
    assert!(
        matches!(err, KubeError::Refused { field: "user", .. }),
        "{err}"
    );
    let path = write_kubeconfig(&dir, "not: [a kubeconfig");
    let err = KubeClusterApi::from_config("lab", &KubeApiConfig::new(&path))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("kubeconfig {}", path.display())),
        "{err}"
    );

    // Another CA than the server's: the call fails naming the endpoint
    // and the certificate, and no request reaches the server.
    let other = ca_pem_of_another_ca();
    let path = write_kubeconfig(&dir, &kubeconfig(&pki, &api.url(), Some(&other), "", ""));
    let cluster = KubeClusterApi::from_config("lab", &KubeApiConfig::new(path))
        .await
        .unwrap();
    let err = cluster.bootstrap_complete().await.unwrap_err();
    assert!(matches!(err, ClusterApiError::Transport { .. }), "{err}");
    let text = err.to_string().to_lowercase();
    assert!(
        text.starts_with(&format!("get {}{BOOTSTRAP}: ", api.url())),
        "{err}"
    );
    assert!(text.contains("certificate"), "{err}");
    assert!(api.take_log().is_empty());
}

fn ca_pem_of_another_ca() -> String {
    ca("another cluster").pem
}

#[tokio::test]
async fn contract_server_override_still_checks_the_kubeconfig_host() {
    let pki = pki();
    let api = start(&pki).await;
    let dir = tempfile::tempdir().unwrap();
    // As the installer writes it: the API's DNS name, which this host may
    // not resolve; Harmony reaches it at the load balancer's address.
    let path = write_kubeconfig(
        &dir,
        &kubeconfig(
            &pki,
            "https://api.lab.example.test:6443",
            Some(&pki.server_ca.pem),
            "",
            "",
        ),
    );
    let mut cfg = KubeApiConfig::new(&path);
    cfg.server = Some(api.url());
    let cluster = KubeClusterApi::from_config("lab", &cfg).await.unwrap();
    assert!(!cluster.bootstrap_complete().await.unwrap());
    assert_eq!(paths(&api.take_log()), [format!("GET {BOOTSTRAP}")]);

    // A kubeconfig host the certificate does not name is refused.
    let path = write_kubeconfig(
        &dir,
        &kubeconfig(
            &pki,
            "https://api.other.example.test:6443",
            Some(&pki.server_ca.pem),
            "",
            "",
        ),
    );
    let mut cfg = KubeApiConfig::new(&path);
    cfg.server = Some(api.url());
    let cluster = KubeClusterApi::from_config("lab", &cfg).await.unwrap();
    let err = cluster.bootstrap_complete().await.unwrap_err();
    assert!(matches!(err, ClusterApiError::Transport { .. }), "{err}");
    assert!(api.take_log().is_empty());
    cfg.server = Some(format!("http://127.0.0.1:{}", api.port));
    let err = KubeClusterApi::from_config("lab", &cfg).await.unwrap_err();
    assert!(
        matches!(
            err,
            KubeError::Refused {
                field: "server",
                ..
            }
        ),
        "{err}"
    );
}

// -------------------------------------------- version, nodes, lazily

/// A node as the API server lists it (list items carry no kind), with a
/// `Ready` condition of `ready` (`None`: none yet).
fn node(name: &str, ready: Option<&str>) -> Value {
    let mut conditions = vec![json!({"type": "MemoryPressure", "status": "False",
        "lastHeartbeatTime": "2026-08-01T10:00:00Z", "lastTransitionTime": "2026-08-01T10:00:00Z",
        "reason": "KubeletHasSufficientMemory", "message": "kubelet has sufficient memory available"})];
    if let Some(r) = ready {
        conditions.push(json!({"type": "Ready", "status": r,
            "lastHeartbeatTime": "2026-08-01T10:00:00Z", "lastTransitionTime": "2026-08-01T10:00:00Z",
            "reason": "KubeletReady", "message": "kubelet is posting ready status"}));
    }
    json!({"metadata": {"name": name, "uid": format!("uid-{name}"), "resourceVersion": "7",
            "labels": {"node-role.kubernetes.io/worker": ""}},
        "spec": {}, "status": {"conditions": conditions}})
}

#[tokio::test]
async fn contract_version_answers_and_refusals_are_errors() {
    let e = env_with_timeout(Duration::from_millis(700)).await;
    assert!(e.cluster.api_answers().await.unwrap());
    let log = e.api.take_log();
    assert_eq!(paths(&log), [format!("GET {VERSION}")]);
    assert_eq!(log[0].client_cert.as_deref(), Some(&e.pki.admin_der[..]));

    // The API server starting (or a load balancer without a live backend
    // answering 503): not yet.
    let fixed = |code, reason: &str, message: &str| {
        let answer = status(code, reason, message);
        e.api.with(|s| {
            s.fixed
                .insert(("GET".to_string(), VERSION.to_string()), answer)
        });
    };
    fixed(
        503,
        "ServiceUnavailable",
        "the server is currently unable to handle the request",
    );
    assert!(!e.cluster.api_answers().await.unwrap());
    fixed(429, "TooManyRequests", "too many requests");
    assert!(!e.cluster.api_answers().await.unwrap());
    // A refusal is an error naming the endpoint and the message.
    fixed(401, "Unauthorized", "Unauthorized");
    let err = e.cluster.api_answers().await.unwrap_err();
    assert!(
        matches!(err, ClusterApiError::Api { code: 401, .. }),
        "{err}"
    );
    assert_eq!(err.endpoint(), format!("GET {}{VERSION}", e.api.url()));
    assert!(!err.is_transient());
    fixed(
        403,
        "Forbidden",
        "forbidden: User \"system:anonymous\" cannot get path \"/version\"",
    );
    let err = e.cluster.api_answers().await.unwrap_err();
    assert!(
        matches!(err, ClusterApiError::Api { code: 403, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("cannot get path"), "{err}");
    // Something that is not a version: an error too.
    e.api.with(|s| {
        s.fixed.insert(
            ("GET".to_string(), VERSION.to_string()),
            (200, json!({"hello": "world"}).to_string()),
        )
    });
    let err = e.cluster.api_answers().await.unwrap_err();
    assert!(matches!(err, ClusterApiError::Invalid { .. }), "{err}");
    // A hung answer: not yet (within the call's limit).
    e.api.with(|s| {
        s.fixed.clear();
        s.hang.insert(VERSION.into());
    });
    let answered = tokio::time::timeout(Duration::from_secs(30), e.cluster.api_answers())
        .await
        .expect("the call's own limit ends it");
    assert!(!answered.unwrap());
}

/// A kubeconfig for `server` with the pki's CA; the client built from it.
async fn cluster_at(pki: &Pki, dir: &tempfile::TempDir, server: &str, ca: &str) -> KubeClusterApi {
    let path = write_kubeconfig(dir, &kubeconfig(pki, server, Some(ca), "", ""));
    let mut cfg = KubeApiConfig::new(path);
    cfg.call_timeout = Duration::from_secs(5);
    KubeClusterApi::from_config("lab", &cfg).await.unwrap()
}

#[tokio::test]
async fn contract_nothing_listening_or_a_closed_connection_is_not_yet_a_wrong_ca_is_an_error() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let ca = pki.server_ca.pem.clone();
    // Nothing listens on the port: connection refused.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = cluster_at(&pki, &dir, &format!("https://127.0.0.1:{port}"), &ca).await;
    assert!(!c.api_answers().await.unwrap());
    // A load balancer without a live backend: accepts, then closes.
    let lb = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lb_port = lb.local_addr().unwrap().port();
    tokio::spawn(async move {
        for _ in 0..16 {
            let Ok((sock, _)) = lb.accept().await else {
                break;
            };
            drop(sock);
        }
    });
    let c = cluster_at(&pki, &dir, &format!("https://127.0.0.1:{lb_port}"), &ca).await;
    assert!(!c.api_answers().await.unwrap());
    // A server whose certificate the kubeconfig's CA did not sign: it
    // answered, and is refused (not "not yet").
    let api = start(&pki).await;
    let c = cluster_at(&pki, &dir, &api.url(), &ca_pem_of_another_ca()).await;
    let err = c.api_answers().await.unwrap_err();
    assert!(matches!(err, ClusterApiError::Transport { .. }), "{err}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    assert!(api.take_log().is_empty());
}

#[tokio::test]
async fn contract_nodes_with_their_ready_condition_and_bad_names_refused() {
    let e = env().await;
    assert!(e.cluster.nodes().await.unwrap().is_empty());
    e.api.with(|s| {
        s.nodes = vec![
            node("master-0", Some("True")),
            node("worker-0", Some("False")),
            node("worker-1", Some("Unknown")),
            node("worker-2.lab.example.test", None),
        ]
    });
    let nodes = e.cluster.nodes().await.unwrap();
    let got: Vec<(&str, ReadyStatus)> = nodes.iter().map(|n| (n.name.as_str(), n.ready)).collect();
    assert_eq!(
        got,
        [
            ("master-0", ReadyStatus::True),
            ("worker-0", ReadyStatus::False),
            ("worker-1", ReadyStatus::Unknown),
            ("worker-2.lab.example.test", ReadyStatus::Unknown),
        ]
    );
    assert!(nodes[0].is_ready() && !nodes[1].is_ready());
    assert_eq!(
        paths(&e.api.take_log()),
        [format!("GET {NODES}"), format!("GET {NODES}")]
    );
    for bad in ["Worker-3", "worker_3", "worker-3.", "evil\u{1b}[2J"] {
        e.api
            .with(|s| s.nodes = vec![node("worker-0", Some("True")), node(bad, None)]);
        let err = e.cluster.nodes().await.unwrap_err();
        assert!(matches!(err, ClusterApiError::Invalid { .. }), "{err}");
        assert_eq!(err.endpoint(), format!("GET {}{NODES}", e.api.url()));
        // Shown sanitised (no terminal escape reaches a log).
        let shown = bad.replace("\u{1b}[", "__");
        assert!(
            err.to_string().contains(&format!("node name {shown:?}")),
            "{err}"
        );
    }
}

#[tokio::test]
async fn lazy_api_says_not_yet_until_the_kubeconfig_exists() {
    let pki = pki();
    let api = start(&pki).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth").join("kubeconfig");
    let lazy = LazyClusterApi::new("lab", KubeApiConfig::new(&path));
    assert!(
        lazy.api_server().contains("not written yet"),
        "{}",
        lazy.api_server()
    );
    // Every call: not yet, naming the kubeconfig; nothing sent.
    let err = lazy.api_answers().await.unwrap_err();
    assert!(err.is_not_yet() && err.is_transient(), "{err}");
    assert_eq!(err.endpoint(), path.to_str().unwrap());
    assert!(err.to_string().contains("create ignition-configs"), "{err}");
    assert!(lazy.bootstrap_complete().await.unwrap_err().is_not_yet());
    assert!(lazy.nodes().await.unwrap_err().is_not_yet());
    assert!(lazy.pending_csrs().await.unwrap_err().is_not_yet());
    assert!(lazy.masters_schedulable().await.unwrap_err().is_not_yet());
    assert!(!lazy.is_loaded());
    assert!(api.take_log().is_empty());

    // Half-written or wrong: an error (not "not yet"), and tried again.
    write_kubeconfig(&dir, "not: [a kubeconfig");
    let err = lazy.bootstrap_complete().await.unwrap_err();
    assert!(matches!(err, ClusterApiError::Kubeconfig { .. }), "{err}");
    assert!(!err.is_transient() && !lazy.is_loaded());

    // Written by the installer: built once, then used.
    write_kubeconfig(
        &dir,
        &kubeconfig(&pki, &api.url(), Some(&pki.server_ca.pem), "", ""),
    );
    assert!(lazy.api_answers().await.unwrap());
    assert!(lazy.is_loaded());
    assert_eq!(lazy.api_server(), api.url());
    assert!(!lazy.bootstrap_complete().await.unwrap());
    assert_eq!(
        paths(&api.take_log()),
        [format!("GET {VERSION}"), format!("GET {BOOTSTRAP}")]
    );
    // The client is kept: the file going away changes nothing now.
    std::fs::remove_file(&path).unwrap();
    assert!(lazy.api_answers().await.unwrap());
}
