//! Contract tests of the OPNsense backend against a local https server on
//! 127.0.0.1 that implements the endpoints Harmony uses as OPNsense
//! documents them (`/work/shared/notes/vendor-apis.md` §1), records every
//! request and answers like OPNsense:
//! - mechanics, CRUD answers, errors, `service/reconfigure`: od
//!   `development/api.rst`, mvc `Base/ApiMutableModelControllerBase.php`,
//!   `ApiMutableServiceControllerBase.php`, oc `www/api.php` [O1–O5];
//! - Dnsmasq `settings/{search,add,set,del}_{host,tag,option,boot}`: mvc
//!   `Dnsmasq/Api/SettingsController.php`, `Dnsmasq.xml`, od
//!   `manual/dnsmasq.rst` (PXE recipe) [O8, O9, O12];
//! - Unbound `settings/*_host_override` (body key `host`): mvc
//!   `Unbound/Api/*`, `Unbound.xml` [O19];
//! - os-haproxy `settings/{add,set,del}_{server,backend,frontend}` and the
//!   plural `search_servers|backends|frontends`: op `net/haproxy` [O16];
//! - LAGG `interfaces/lagg_settings/{search,add,set,del}_item`,
//!   `reconfigure`: mvc `Interfaces/Api/LaggSettingsController.php`,
//!   `Lagg.xml` [O20].
#![allow(clippy::unwrap_used, clippy::expect_used)]
#[path = "support/http_request.rs"]
mod http_request;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use harmony::domain::{
    Change, DhcpReservation, DhcpServer, DnsRecord, DnsServer, LacpOptions, LbBackend,
    LbHealthCheck, LbMode, LoadBalancer, LoadBalancerService, PortMode, Switch, SwitchError,
    SwitchPort, TftpServer, VlanId,
};
use harmony::domain::{DhcpLease, HostKey, HttpServer, RelativePath, RemoteHost, Topology};
use harmony::infra::opnsense::{Credentials, OpnSenseConfig, OpnSenseSite, PxeBoot};
use harmony::infra::opnsense::{OpnSenseFilesConfig, caddy_snippet, firewall_host_id};
use harmony::infra::process::{Program, Service};
use harmony::infra::ssh::{SshConfig, ssh_answers};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

const KEY: &str = "w86XNZob/8Oq8aC5r0kbNarNtdpoQU781fyoeaOBQsBwkXUt";
const SECRET: &str = "XeD26XVrJ5ilAc/EmglCRC+0j2e57tRsjHwFepOseySWLM53pJASeTA3";

#[derive(Debug, Clone, PartialEq)]
struct Req {
    method: String,
    path: String,
    auth: Option<String>,
    body: Option<Value>,
}

#[derive(Default)]
struct State {
    items: HashMap<String, Vec<(String, Value)>>,
    log: Vec<Req>,
    next: u32,
    /// path -> (status, content type, body) answered instead.
    fixed: HashMap<String, (u16, &'static str, String)>,
}

#[derive(Clone)]
struct FakeOpnSense {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl FakeOpnSense {
    fn log(&self) -> Vec<Req> {
        self.state.lock().unwrap().log.clone()
    }
    fn take_log(&self) -> Vec<(String, String, Option<Value>)> {
        let mut s = self.state.lock().unwrap();
        std::mem::take(&mut s.log)
            .into_iter()
            .map(|r| (r.method, r.path, r.body))
            .collect()
    }
    fn fix(&self, path: &str, status: u16, ctype: &'static str, body: &str) {
        self.state
            .lock()
            .unwrap()
            .fixed
            .insert(path.into(), (status, ctype, body.into()));
    }
    fn items(&self, coll: &str) -> Vec<(String, Value)> {
        self.state
            .lock()
            .unwrap()
            .items
            .get(coll)
            .cloned()
            .unwrap_or_default()
    }
}

/// The answer of OPNsense's generic CRUD controllers for `path`.
fn answer(
    s: &mut State,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, &'static str, String) {
    if let Some(f) = s.fixed.get(path) {
        return f.clone();
    }
    let Some(rest) = path.strip_prefix("/api/") else {
        return (
            404,
            "application/json",
            r#"{"errorMessage":"Endpoint not found"}"#.into(),
        );
    };
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.len() < 3 {
        return (
            404,
            "application/json",
            r#"{"errorMessage":"Endpoint not found"}"#.into(),
        );
    }
    let (module, controller, command) = (parts[0], parts[1], parts[2]);
    let uuid = parts.get(3).copied();
    let ok = |v: Value| (200u16, "application/json", v.to_string());
    // Write actions need POST (else {"result":"failed"}); JSON bodies need
    // one (else 400 "Invalid JSON syntax").
    if method != "POST" {
        return ok(json!({"result": "failed"}));
    }
    if body.is_none() {
        return (
            400,
            "application/json",
            r#"{"status":400,"message":"Invalid JSON syntax"}"#.into(),
        );
    }
    if command == "reconfigure" {
        return ok(json!({"status": "ok"}));
    }
    let Some((verb, kind)) = command.split_once('_') else {
        return (
            404,
            "application/json",
            r#"{"errorMessage":"Endpoint not found"}"#.into(),
        );
    };
    let kind = match (verb, kind) {
        ("search", k) if module == "haproxy" => k.trim_end_matches('s').to_string(),
        (_, k) => k.to_string(),
    };
    let coll = format!("{module}/{controller}/{kind}");
    match verb {
        "search" => {
            let rows: Vec<Value> = s
                .items
                .get(&coll)
                .into_iter()
                .flatten()
                .map(|(u, v)| {
                    let mut r = v.clone();
                    r["uuid"] = json!(u);
                    r
                })
                .collect();
            let n = rows.len();
            ok(json!({"rows": rows, "rowCount": n, "total": n, "current": 1}))
        }
        "add" | "set" => {
            let obj = body.unwrap().as_object().unwrap();
            let item = obj.values().next().unwrap().clone();
            let u = match uuid {
                Some(u) => u.to_string(),
                None => {
                    s.next += 1;
                    format!("00000000-0000-4000-8000-{:012}", s.next)
                }
            };
            let list = s.items.entry(coll).or_default();
            match list.iter_mut().find(|(x, _)| *x == u) {
                Some(slot) => slot.1 = item,
                None => list.push((u.clone(), item)),
            }
            if verb == "add" {
                ok(json!({"result": "saved", "uuid": u}))
            } else {
                ok(json!({"result": "saved"}))
            }
        }
        "del" => {
            let list = s.items.entry(coll).or_default();
            let before = list.len();
            list.retain(|(x, _)| Some(x.as_str()) != uuid);
            if list.len() < before {
                ok(json!({"result": "deleted"}))
            } else {
                ok(json!({"result": "not found"}))
            }
        }
        _ => (
            404,
            "application/json",
            r#"{"errorMessage":"Endpoint not found"}"#.into(),
        ),
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut sock: S, st: Arc<Mutex<State>>) {
    let Some(req) = http_request::read_request(&mut sock).await else {
        return;
    };
    let (method, path) = (req.method.clone(), req.target.clone());
    let h = |k: &str| req.header(k);
    let body = (!req.body.is_empty() && h("content-type").as_deref() == Some("application/json"))
        .then(|| serde_json::from_slice::<Value>(&req.body).unwrap());
    let (status, ctype, text) = {
        let mut s = st.lock().unwrap();
        s.log.push(Req {
            method: method.clone(),
            path: path.clone(),
            auth: h("authorization"),
            body: body.clone(),
        });
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{KEY}:{SECRET}"))
        );
        if h("authorization") != Some(expected) {
            (
                401,
                "application/json",
                r#"{"status":401,"message":"Authentication Failed"}"#.to_string(),
            )
        } else {
            answer(&mut s, &method, &path, body.as_ref())
        }
    };
    let announced = text.len();
    let resp = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {announced}\r\nConnection: close\r\n\r\n{text}"
    );
    let _ = sock.write_all(resp.as_bytes()).await;
    let _ = sock.shutdown().await;
}

struct Pki {
    ca_pem: String,
    server: Arc<rustls::ServerConfig>,
}

/// A CA made for the test and a certificate for 127.0.0.1 signed by it
/// (as `tests/assets.rs` does).
fn pki(name: &str) -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        SanType,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, name);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.subject_alt_names = vec![SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into())];
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    Pki {
        ca_pem,
        server: Arc::new(server),
    }
}

async fn start(p: &Pki) -> FakeOpnSense {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let state = Arc::new(Mutex::new(State::default()));
    let st = state.clone();
    let acceptor = tokio_rustls::TlsAcceptor::from(p.server.clone());
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let (st, acceptor) = (st.clone(), acceptor.clone());
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(20), async move {
                    if let Ok(s) = acceptor.accept(sock).await {
                        serve(s, st).await;
                    }
                })
                .await;
            });
        }
    });
    FakeOpnSense { port, state }
}

struct Env {
    _dir: tempfile::TempDir,
    fw: FakeOpnSense,
    site: OpnSenseSite,
}

async fn env_with(secret: &str) -> Env {
    let p = pki("Harmony test firewall CA");
    let fw = start(&p).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &p.ca_pem).unwrap();
    let keyfile = dir.path().join("apikey.txt");
    std::fs::write(&keyfile, format!("key={KEY}\nsecret={secret}\n")).unwrap();
    let mut cfg = OpnSenseConfig::new(
        format!("https://127.0.0.1:{}", fw.port).parse().unwrap(),
        Credentials::from_file(&keyfile).unwrap(),
    );
    cfg.site_ca = Some(ca);
    cfg.call_timeout = Duration::from_secs(10);
    let site = OpnSenseSite::new("fw", cfg)
        .unwrap()
        .with_untagged_vlan(VlanId::try_from(1).unwrap());
    Env {
        _dir: dir,
        fw,
        site,
    }
}

async fn env() -> Env {
    env_with(SECRET).await
}

fn search() -> Option<Value> {
    Some(json!({"current": 1, "rowCount": -1, "searchPhrase": ""}))
}

fn post(path: &str, body: Option<Value>) -> (String, String, Option<Value>) {
    ("POST".into(), path.into(), body)
}

#[tokio::test]
async fn contract_dhcp_reservation_requests_auth_and_noop() {
    let e = env().await;
    let r = DhcpReservation {
        mac: "52:54:00:00:00:01".parse().unwrap(),
        ip: "10.0.0.11".parse().unwrap(),
        hostname: "m0.ocp.lab".parse().unwrap(),
    };
    assert_eq!(e.site.reserve(&r).await.unwrap(), Change::Applied);
    let expected_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{KEY}:{SECRET}"))
    );
    assert!(
        e.fw.log()
            .iter()
            .all(|q| q.auth.as_deref() == Some(expected_auth.as_str()))
    );
    assert_eq!(
        e.fw.take_log(),
        [
            post("/api/dnsmasq/settings/search_host", search()),
            post(
                "/api/dnsmasq/settings/add_host",
                Some(
                    json!({"host": {"host": "m0", "domain": "ocp.lab", "ip": "10.0.0.11",
                    "hwaddr": "52:54:00:00:00:01", "descr": "harmony"}})
                )
            ),
            post("/api/dnsmasq/service/reconfigure", Some(json!({}))),
        ]
    );
    // Same again: read only, no write, no reconfigure.
    assert_eq!(e.site.reserve(&r).await.unwrap(), Change::Unchanged);
    assert_eq!(
        e.fw.take_log(),
        [post("/api/dnsmasq/settings/search_host", search())]
    );
    assert_eq!(
        e.site.reservations().await.unwrap(),
        std::slice::from_ref(&r)
    );
    e.fw.take_log();

    // A new address: set_host on the same item.
    let moved = DhcpReservation {
        ip: "10.0.0.12".parse().unwrap(),
        ..r.clone()
    };
    assert_eq!(e.site.reserve(&moved).await.unwrap(), Change::Applied);
    let uuid = e.fw.items("dnsmasq/settings/host")[0].0.clone();
    let log = e.fw.take_log();
    assert_eq!(log[1].1, format!("/api/dnsmasq/settings/set_host/{uuid}"));
    assert_eq!(log[1].2.as_ref().unwrap()["host"]["ip"], "10.0.0.12");
    assert_eq!(log[2].1, "/api/dnsmasq/service/reconfigure");

    assert_eq!(e.site.release(&r.mac).await.unwrap(), Change::Applied);
    assert_eq!(
        e.fw.take_log(),
        [
            post("/api/dnsmasq/settings/search_host", search()),
            post(
                &format!("/api/dnsmasq/settings/del_host/{uuid}"),
                Some(json!({}))
            ),
            post("/api/dnsmasq/service/reconfigure", Some(json!({}))),
        ]
    );
    assert_eq!(e.site.release(&r.mac).await.unwrap(), Change::Unchanged);
    assert_eq!(e.fw.take_log().len(), 1);
}

#[tokio::test]
async fn contract_pxe_boot_options_as_the_docs_recipe() {
    let e = env().await;
    let boot = PxeBoot {
        bios_file: "undionly.kpxe".into(),
        uefi_file: "ipxe.efi".into(),
        ipxe_script: "http://10.0.0.2:8080/default.ipxe".parse().unwrap(),
    };
    assert_eq!(e.site.set_pxe_boot(&boot).await.unwrap(), Change::Applied);
    let log = e.fw.take_log();
    let paths: Vec<&str> = log.iter().map(|l| l.1.as_str()).collect();
    assert_eq!(
        paths[..3],
        [
            "/api/dnsmasq/settings/search_tag",
            "/api/dnsmasq/settings/search_option",
            "/api/dnsmasq/settings/search_boot"
        ]
    );
    assert_eq!(*paths.last().unwrap(), "/api/dnsmasq/service/reconfigure");
    let tags = e.fw.items("dnsmasq/settings/tag");
    let tag = |n: &str| tags.iter().find(|(_, v)| v["tag"] == n).unwrap().0.clone();
    assert!(log.contains(&post(
        "/api/dnsmasq/settings/add_option",
        Some(json!({"option": {"type": "match", "option": "175", "value": "", "set_tag": tag("harmony-ipxe")}}))
    )));
    assert!(log.contains(&post(
        "/api/dnsmasq/settings/add_option",
        Some(json!({"option": {"type": "match", "option": "93", "value": "7", "set_tag": tag("harmony-uefi")}}))
    )));
    assert!(log.contains(&post(
        "/api/dnsmasq/settings/add_boot",
        Some(json!({"boot": {"tag": tag("harmony-bios"), "filename": "undionly.kpxe"}}))
    )));
    assert!(log.contains(&post(
        "/api/dnsmasq/settings/add_boot",
        Some(json!({"boot": {"tag": tag("harmony-ipxe"), "filename": "http://10.0.0.2:8080/default.ipxe"}}))
    )));
    assert_eq!(e.site.set_pxe_boot(&boot).await.unwrap(), Change::Unchanged);
    assert_eq!(e.fw.take_log().len(), 3, "three searches, nothing else");
}

#[tokio::test]
async fn contract_dns_host_overrides() {
    let e = env().await;
    let rec = DnsRecord {
        name: "api.ocp.lab".parse().unwrap(),
        ip: "10.0.0.5".parse().unwrap(),
    };
    assert_eq!(e.site.set_record(&rec).await.unwrap(), Change::Applied);
    assert_eq!(
        e.fw.take_log(),
        [
            post("/api/unbound/settings/search_host_override", search()),
            post(
                "/api/unbound/settings/add_host_override",
                Some(
                    json!({"host": {"enabled": "1", "hostname": "api", "domain": "ocp.lab",
                    "rr": "A", "server": "10.0.0.5", "description": "harmony"}})
                )
            ),
            post("/api/unbound/service/reconfigure", Some(json!({}))),
        ]
    );
    assert_eq!(e.site.set_record(&rec).await.unwrap(), Change::Unchanged);
    assert_eq!(e.fw.take_log().len(), 1);
    assert_eq!(e.site.records().await.unwrap(), std::slice::from_ref(&rec));
    // A wildcard is the `*` override of its base (Unbound.xml
    // HostWildcardAllowed, host_entries.conf's `redirect` zone).
    let wild = DnsRecord {
        name: "*.apps.ocp.lab".parse().unwrap(),
        ip: rec.ip,
    };
    e.fw.take_log();
    assert_eq!(e.site.set_record(&wild).await.unwrap(), Change::Applied);
    assert_eq!(
        e.fw.take_log()[1],
        post(
            "/api/unbound/settings/add_host_override",
            Some(
                json!({"host": {"enabled": "1", "hostname": "*", "domain": "apps.ocp.lab",
                "rr": "A", "server": "10.0.0.5", "description": "harmony"}})
            )
        )
    );
    assert_eq!(e.site.set_record(&wild).await.unwrap(), Change::Unchanged);
    assert_eq!(e.fw.take_log().len(), 1, "only the search");
    let mut all = e.site.records().await.unwrap();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(all.contains(&wild) && all.contains(&rec), "{all:?}");
    assert_eq!(
        e.site.remove_record(&wild.name).await.unwrap(),
        Change::Applied
    );
    assert_eq!(e.site.records().await.unwrap(), std::slice::from_ref(&rec));
    e.fw.take_log();
    assert_eq!(
        e.site.remove_record(&rec.name).await.unwrap(),
        Change::Applied
    );
    let log = e.fw.take_log();
    assert!(
        log[1]
            .1
            .starts_with("/api/unbound/settings/del_host_override/"),
        "{log:?}"
    );
    assert_eq!(log[2].1, "/api/unbound/service/reconfigure");
}

#[tokio::test]
async fn contract_haproxy_service_backend_removal() {
    let e = env().await;
    let be = |h: &str, ip: &str| LbBackend {
        hostname: h.parse().unwrap(),
        ip: ip.parse().unwrap(),
        port: 6443,
    };
    let svc = LoadBalancerService {
        name: "api".parse().unwrap(),
        bind: "0.0.0.0:6443".parse().unwrap(),
        mode: LbMode::Tcp,
        backends: vec![be("bootstrap", "10.0.0.10"), be("m0", "10.0.0.11")],
        health_check: Some(LbHealthCheck::default()),
    };
    assert_eq!(e.site.set_service(&svc).await.unwrap(), Change::Applied);
    let log = e.fw.take_log();
    let paths: Vec<&str> = log.iter().map(|l| l.1.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/api/haproxy/settings/search_servers",
            "/api/haproxy/settings/search_backends",
            "/api/haproxy/settings/search_frontends",
            "/api/haproxy/settings/add_server",
            "/api/haproxy/settings/add_server",
            "/api/haproxy/settings/add_backend",
            "/api/haproxy/settings/add_frontend",
            "/api/haproxy/service/reconfigure",
        ]
    );
    let servers = e.fw.items("haproxy/settings/server");
    assert_eq!(
        log[3].2,
        Some(
            json!({"server": {"enabled": "1", "name": "api_bootstrap", "address": "10.0.0.10",
            "port": "6443", "type": "static", "mode": "active"}})
        )
    );
    let mut uuids: Vec<String> = servers.iter().map(|s| s.0.clone()).collect();
    uuids.sort();
    assert_eq!(
        log[5].2,
        Some(
            json!({"backend": {"name": "api", "mode": "tcp", "algorithm": "roundrobin",
            "linkedServers": uuids.join(","), "healthCheckEnabled": "1"}})
        )
    );
    let backend = e.fw.items("haproxy/settings/backend")[0].0.clone();
    assert_eq!(
        log[6].2,
        Some(
            json!({"frontend": {"enabled": "1", "name": "api", "bind": "0.0.0.0:6443",
            "mode": "tcp", "defaultBackend": backend}})
        )
    );
    assert_eq!(e.site.set_service(&svc).await.unwrap(), Change::Unchanged);
    assert_eq!(e.fw.take_log().len(), 3, "reads only");
    assert_eq!(e.site.services().await.unwrap(), std::slice::from_ref(&svc));
    e.fw.take_log();

    let boot_uuid = servers
        .iter()
        .find(|s| s.1["name"] == "api_bootstrap")
        .unwrap()
        .0
        .clone();
    let m0_uuid = servers
        .iter()
        .find(|s| s.1["name"] == "api_m0")
        .unwrap()
        .0
        .clone();
    assert_eq!(
        e.site
            .remove_backend(&svc.name, &"bootstrap".parse().unwrap())
            .await
            .unwrap(),
        Change::Applied
    );
    let log = e.fw.take_log();
    assert_eq!(
        log[3],
        post(
            &format!("/api/haproxy/settings/set_backend/{backend}"),
            Some(json!({"backend": {
        "name": "api", "mode": "tcp", "algorithm": "roundrobin", "linkedServers": m0_uuid, "healthCheckEnabled": "1"}}))
        )
    );
    assert_eq!(
        log[4],
        post(
            &format!("/api/haproxy/settings/del_server/{boot_uuid}"),
            Some(json!({}))
        )
    );
    assert_eq!(log[5].1, "/api/haproxy/service/reconfigure");
    assert_eq!(
        e.site
            .remove_backend(&svc.name, &"bootstrap".parse().unwrap())
            .await
            .unwrap(),
        Change::Unchanged
    );
    assert_eq!(
        e.site.remove_service(&svc.name).await.unwrap(),
        Change::Applied
    );
    assert!(e.site.services().await.unwrap().is_empty());
    assert!(e.fw.items("haproxy/settings/server").is_empty());
    assert_eq!(
        e.site.remove_service(&svc.name).await.unwrap(),
        Change::Unchanged
    );
}

#[tokio::test]
async fn contract_lagg_lacp_and_access() {
    let e = env().await;
    let ports: Vec<SwitchPort> = vec!["igb0".parse().unwrap(), "igb1".parse().unwrap()];
    let vlan = VlanId::try_from(1).unwrap();
    let lag = "3".parse().unwrap();
    let st = e
        .site
        .set_ports_lacp_mode(&ports, lag, vlan, LacpOptions::default())
        .await
        .unwrap();
    assert_eq!(st, Change::Applied);
    assert_eq!(
        e.fw.take_log(),
        [
            post("/api/interfaces/lagg_settings/search_item", search()),
            post(
                "/api/interfaces/lagg_settings/add_item",
                Some(json!({"lagg": {"members": "igb0,igb1", "proto": "lacp",
                    "lacp_fast_timeout": "1", "descr": "harmony-lag-3"}}))
            ),
            post("/api/interfaces/lagg_settings/reconfigure", Some(json!({}))),
            post("/api/interfaces/lagg_settings/search_item", search()),
        ]
    );
    let status = e.site.get_port_status(&ports).await.unwrap();
    assert!(
        status
            .iter()
            .all(|s| s.mode == PortMode::LacpMember { lag }),
        "{status:?}"
    );
    e.fw.take_log();
    assert_eq!(
        e.site
            .set_ports_lacp_mode(&ports, lag, vlan, LacpOptions::default())
            .await
            .unwrap(),
        Change::Unchanged
    );
    assert_eq!(e.fw.take_log().len(), 1);

    let fallback = LacpOptions {
        fallback: true,
        partner_within: None,
    };
    let err = e
        .site
        .set_ports_lacp_mode(&ports, lag, vlan, fallback)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SwitchError::Unsupported {
                feature: "LACP fallback",
                ..
            }
        ),
        "{err}"
    );
    let other = VlanId::try_from(20).unwrap();
    let err = e
        .site
        .set_ports_access_mode(&ports, other)
        .await
        .unwrap_err();
    assert!(matches!(err, SwitchError::Unsupported { .. }), "{err}");
    let err = e
        .site
        .set_ports_access_mode(&ports[..1], vlan)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("igb1"),
        "names the member not named: {err}"
    );
    e.fw.take_log();

    let uuid = e.fw.items("interfaces/lagg_settings/item")[0].0.clone();
    assert_eq!(
        e.site.set_ports_access_mode(&ports, vlan).await.unwrap(),
        Change::Applied
    );
    let log = e.fw.take_log();
    assert_eq!(
        log[1],
        post(
            &format!("/api/interfaces/lagg_settings/del_item/{uuid}"),
            Some(json!({}))
        )
    );
    assert_eq!(log[2].1, "/api/interfaces/lagg_settings/reconfigure");
    assert_eq!(
        e.site.set_ports_access_mode(&ports, vlan).await.unwrap(),
        Change::Unchanged
    );
}

#[tokio::test]
async fn contract_errors_name_endpoint_and_field() {
    let e = env().await;
    let r = DhcpReservation {
        mac: "52:54:00:00:00:01".parse().unwrap(),
        ip: "10.0.0.11".parse().unwrap(),
        hostname: "m0".parse().unwrap(),
    };
    // A validation failure: HTTP 200, result failed [O4].
    e.fw.fix(
        "/api/dnsmasq/settings/add_host",
        200,
        "application/json",
        r#"{"result":"failed","validations":{"host.ip":"IP address already in use by another reservation."}}"#,
    );
    let err = e.site.reserve(&r).await.unwrap_err().to_string();
    assert!(
        err.contains("dnsmasq/settings/add_host")
            && err.contains("host.ip")
            && err.contains("already in use"),
        "{err}"
    );
    assert!(
        !e.fw.log().iter().any(|q| q.path.ends_with("reconfigure")),
        "no reconfigure after a refused write"
    );

    // 500 with an HTML page.
    e.fw.fix(
        "/api/dnsmasq/settings/search_host",
        500,
        "text/html",
        "<html><body>Internal error</body></html>",
    );
    let err = e.site.reservations().await.unwrap_err().to_string();
    assert!(
        err.contains("dnsmasq/settings/search_host")
            && err.contains("HTTP 500")
            && err.contains("not OPNsense's JSON"),
        "{err}"
    );

    // OPNsense's own 500 JSON [O3].
    e.fw.fix(
        "/api/unbound/settings/search_host_override",
        500,
        "application/json",
        r#"{"errorMessage":"Unexpected error, check log for details"}"#,
    );
    let err = e.site.records().await.unwrap_err().to_string();
    assert!(
        err.contains("search_host_override") && err.contains("Unexpected error"),
        "{err}"
    );

    // Truncated JSON with status 200.
    e.fw.fix(
        "/api/haproxy/settings/search_servers",
        200,
        "application/json",
        r#"{"rows":[{"uuid":"a","na"#,
    );
    let err = e.site.services().await.unwrap_err().to_string();
    assert!(
        err.contains("haproxy/settings/search_servers") && err.contains("not valid JSON"),
        "{err}"
    );

    // Files without the SSH side configured.
    let err = e
        .site
        .put_tftp_file(&"undionly.kpxe".parse().unwrap(), b"x")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no SSH file copy configured"), "{err}");
}

#[tokio::test]
async fn contract_wrong_secret_is_401_named() {
    let e = env_with("not-the-secret").await;
    let err = e.site.reservations().await.unwrap_err().to_string();
    assert!(
        err.contains("dnsmasq/settings/search_host")
            && err.contains("401")
            && err.contains("Authentication Failed"),
        "{err}"
    );
    assert!(
        !err.contains("not-the-secret") && !err.contains(KEY),
        "never shows credentials: {err}"
    );
}

#[tokio::test]
async fn contract_wrong_ca_is_refused() {
    let p = pki("Harmony test firewall CA");
    let other = pki("Another CA");
    let fw = start(&p).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("other.pem");
    std::fs::write(&ca, &other.ca_pem).unwrap();
    let mut cfg = OpnSenseConfig::new(
        format!("https://127.0.0.1:{}", fw.port).parse().unwrap(),
        Credentials::new(KEY, SECRET).unwrap(),
    );
    cfg.site_ca = Some(ca);
    let site = OpnSenseSite::new("fw", cfg).unwrap();
    let err = site.reservations().await.unwrap_err().to_string();
    assert!(
        err.contains("not trusted") && err.contains("search_host"),
        "{err}"
    );
    assert!(fw.log().is_empty(), "no request got past the handshake");
}

#[tokio::test]
async fn contract_dhcp_leases_from_the_leases_search() {
    let e = env().await;
    // Rows as LeasesController::searchAction returns them (fields of
    // scripts/dhcp/get_dnsmasq_leases.py plus the controller's own).
    let rows = json!({"rows": [
        {"expire": 1767225600, "hwaddr": "52:54:00:00:00:01", "iaid": "", "address": "10.0.0.150",
         "hostname": "m0", "client_id": "01:52:54:00:00:00:01", "if": "vtnet1",
         "if_descr": "LAN", "if_name": "lan", "mac_info": "", "is_reserved": []},
        {"expire": 0, "hwaddr": "52:54:00:00:00:02", "iaid": "", "address": "10.0.0.151",
         "hostname": "*", "client_id": "*", "if": "vtnet1", "is_reserved": ["hwaddr"]},
        {"expire": 1767225600, "hwaddr": "", "iaid": "12345", "address": "fd00::5",
         "hostname": "v6", "client_id": "00:02:00:00", "if": "vtnet1"},
        {"expire": 1767225600, "hwaddr": "not-a-mac", "address": "10.0.0.9", "hostname": "x"}
    ], "rowCount": 4, "total": 4, "current": 1, "interfaces": {"lan": "LAN"}});
    e.fw.fix(
        "/api/dnsmasq/leases/search",
        200,
        "application/json",
        &rows.to_string(),
    );
    let leases = e.site.leases().await.unwrap();
    assert_eq!(
        leases,
        vec![
            DhcpLease {
                mac: "52:54:00:00:00:01".parse().unwrap(),
                ip: "10.0.0.150".parse().unwrap(),
                hostname: Some("m0".parse().unwrap()),
                expires: Some(std::time::UNIX_EPOCH + Duration::from_secs(1767225600)),
            },
            DhcpLease {
                mac: "52:54:00:00:00:02".parse().unwrap(),
                ip: "10.0.0.151".parse().unwrap(),
                hostname: None,
                expires: None,
            },
        ]
    );
    assert_eq!(
        e.fw.take_log(),
        [post("/api/dnsmasq/leases/search", search())]
    );
    // The site offers its leases to discovery.
    assert!(e.site.dhcp().is_some());
    // An error body becomes a clear error naming the endpoint.
    e.fw.fix(
        "/api/dnsmasq/leases/search",
        500,
        "application/json",
        r#"{"errorMessage":"Unexpected error, check log for details"}"#,
    );
    let err = e.site.leases().await.unwrap_err().to_string();
    assert!(
        err.contains("dnsmasq/leases/search")
            && err.contains("HTTP 500")
            && err.contains("Unexpected error"),
        "{err}"
    );
}

/// A real OpenSSH sshd on a loopback port standing in for the firewall's
/// SSH (as `tests/ssh.rs` starts it), and the roots it writes.
struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    host_key: HostKey,
    _service: Service,
}

fn keygen(path: &std::path::Path) -> String {
    Program::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(path)
        .run_blocking()
        .unwrap();
    let out = Program::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(path.with_extension("pub"))
        .run_blocking()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

async fn sshd() -> Sshd {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fp = keygen(&d.join("host_key"));
    keygen(&d.join("client"));
    std::fs::copy(d.join("client.pub"), d.join("authorized_keys")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = format!(
        "ListenAddress 127.0.0.1:{port}\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
         AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
         PermitRootLogin prohibit-password\nPasswordAuthentication no\nLogLevel DEBUG\n",
        d = d.display()
    );
    std::fs::write(d.join("sshd_config"), cfg).unwrap();
    std::fs::create_dir_all("/run/sshd").unwrap();
    let service = Program::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(d.join("sshd_config"))
        .start(&d.join("sshd.log"))
        .unwrap();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    for _ in 0..500 {
        if ssh_answers(addr, Duration::from_millis(500)).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        ssh_answers(addr, Duration::from_millis(500)).await,
        "sshd never answered"
    );
    Sshd {
        port,
        host_key: HostKey {
            key_type: "ssh-ed25519".parse().unwrap(),
            fingerprint: fp.parse().unwrap(),
        },
        dir,
        _service: service,
    }
}

impl Sshd {
    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn files_config(&self) -> OpnSenseFilesConfig {
        let mut ssh = SshConfig::new(self.path("client"));
        ssh.port = self.port;
        let host = RemoteHost::discovery(
            firewall_host_id("fw").unwrap(),
            "127.0.0.1".parse().unwrap(),
        );
        let mut c = OpnSenseFilesConfig::new(
            host,
            ssh,
            self.host_key.clone(),
            "127.0.0.1".parse().unwrap(),
            self.path("staging"),
        )
        .unwrap();
        let root = |n: &str| self.path(n).to_str().unwrap().parse().unwrap();
        c.tftp_root = root("tftp");
        c.web_root = root("www");
        c.caddy_dir = root("caddy.d");
        c.http_port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        c
    }
}

fn rel(s: &str) -> RelativePath {
    s.parse().unwrap()
}

#[tokio::test]
async fn contract_tftp_enabled_once_and_files_copied_over_ssh() {
    let e = env().await;
    let ssh = sshd().await;
    let site = e.site.clone().with_files(ssh.files_config()).unwrap();
    // As os-tftp's GeneralController::getAction answers a fresh install
    // (General.xml: enabled 0, listen 127.0.0.1 by default).
    e.fw.fix(
        "/api/tftp/general/get",
        200,
        "application/json",
        r#"{"general":{"enabled":"0","listen":"127.0.0.1"}}"#,
    );
    e.fw.fix(
        "/api/tftp/general/set",
        200,
        "application/json",
        r#"{"result":"saved"}"#,
    );
    let efi: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    assert_eq!(
        site.put_tftp_file(&rel("ipxe.efi"), &efi).await.unwrap(),
        Change::Applied
    );
    let log = e.fw.log();
    assert_eq!(
        log.iter()
            .map(|r| (r.method.as_str(), r.path.as_str(), r.body.clone()))
            .collect::<Vec<_>>(),
        [
            ("GET", "/api/tftp/general/get", None),
            (
                "POST",
                "/api/tftp/general/set",
                Some(json!({"general": {"enabled": "1", "listen": "127.0.0.1"}}))
            ),
            ("POST", "/api/tftp/service/reconfigure", Some(json!({}))),
        ]
    );
    assert_eq!(std::fs::read(ssh.path("tftp/ipxe.efi")).unwrap(), efi);
    e.fw.take_log();
    // Again: the file is Unchanged and the API is not asked again.
    assert_eq!(
        site.put_tftp_file(&rel("ipxe.efi"), &efi).await.unwrap(),
        Change::Unchanged
    );
    assert!(e.fw.take_log().is_empty());
    // A new run against a box already set up: one GET, no write, no
    // reconfigure.
    e.fw.fix(
        "/api/tftp/general/get",
        200,
        "application/json",
        r#"{"general":{"enabled":"1","listen":"127.0.0.1"}}"#,
    );
    let again = e.site.clone().with_files(ssh.files_config()).unwrap();
    assert_eq!(
        again
            .put_tftp_file(&rel("undionly.kpxe"), b"kpxe")
            .await
            .unwrap(),
        Change::Applied
    );
    assert_eq!(
        e.fw.take_log(),
        [("GET".into(), "/api/tftp/general/get".into(), None)]
    );
    assert_eq!(
        again
            .put_tftp_file(&rel("undionly.kpxe"), b"kpxe")
            .await
            .unwrap(),
        Change::Unchanged
    );
    // OPNsense refusing the settings: the error names endpoint and field,
    // and no file is copied.
    e.fw.fix(
        "/api/tftp/general/get",
        200,
        "application/json",
        r#"{"general":{"enabled":"0","listen":"127.0.0.1"}}"#,
    );
    e.fw.fix(
        "/api/tftp/general/set",
        200,
        "application/json",
        r#"{"result":"failed","validations":{"general.listen":"Please specify a valid address."}}"#,
    );
    let third = e.site.clone().with_files(ssh.files_config()).unwrap();
    let err = third
        .put_tftp_file(&rel("other.efi"), b"x")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tftp/general/set")
            && err.contains("general.listen: Please specify a valid address."),
        "{err}"
    );
    assert!(!ssh.path("tftp/other.efi").exists());
    // A site without SSH says what is missing.
    let err = e
        .site
        .put_tftp_file(&rel("x.efi"), b"x")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no SSH file copy configured"), "{err}");
}

#[tokio::test]
async fn contract_http_root_served_by_a_caddy_snippet_applied_only_when_changed() {
    let e = env().await;
    let ssh = sshd().await;
    let cfg = ssh.files_config();
    let port = cfg.http_port;
    let site = e.site.clone().with_files(cfg.clone()).unwrap();
    assert_eq!(
        site.base_url().as_str(),
        format!("http://127.0.0.1:{port}/")
    );
    assert_eq!(
        site.put_file(&rel("default.ipxe"), b"#!ipxe\nchain x\n")
            .await
            .unwrap(),
        Change::Applied
    );
    assert_eq!(
        e.fw.take_log(),
        [post("/api/caddy/service/reconfigure", Some(json!({})))]
    );
    let snippet = std::fs::read_to_string(ssh.path("caddy.d/harmony.conf")).unwrap();
    assert_eq!(
        snippet,
        caddy_snippet(cfg.serve_address, port, &cfg.web_root)
    );
    // A second put, and a new run: the snippet is unchanged, Caddy is not
    // reconfigured.
    assert_eq!(
        site.put_file(&rel("default.ipxe"), b"#!ipxe\nchain x\n")
            .await
            .unwrap(),
        Change::Unchanged
    );
    let again = e.site.clone().with_files(cfg.clone()).unwrap();
    let kernel: Vec<u8> = (0..1_000_000u32).map(|i| (i % 256) as u8).collect();
    let src = ssh.path("kernel.src");
    std::fs::write(&src, &kernel).unwrap();
    assert_eq!(
        again
            .put_file_from(&rel("os/scos/kernel"), &src)
            .await
            .unwrap(),
        Change::Applied
    );
    assert!(e.fw.take_log().is_empty());
    assert_eq!(
        again.list_files(&rel("os/scos")).await.unwrap(),
        vec![rel("os/scos/kernel")]
    );
    assert!(
        again
            .file_sha256(&rel("os/scos/kernel"))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        again
            .read_file(&rel("default.ipxe"))
            .await
            .unwrap()
            .unwrap(),
        b"#!ipxe\nchain x\n"
    );

    // The snippet as os-caddy's Caddyfile imports it (`import
    // /usr/local/etc/caddy/caddy.d/*.conf`), run by the real Caddy.
    let main = ssh.path("Caddyfile");
    std::fs::write(
        &main,
        format!(
            "{{\n\tadmin off\n\tauto_https off\n}}\nimport {}/*.conf\n",
            ssh.path("caddy.d").display()
        ),
    )
    .unwrap();
    Program::new("caddy")
        .args(["validate", "--adapter", "caddyfile", "--config"])
        .arg(&main)
        .run_blocking()
        .unwrap();
    let mut caddy = Program::new("caddy")
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&main)
        .start(&ssh.path("caddy.log"))
        .unwrap();
    let get = |path: &'static str| async move {
        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{port}/{path}");
        for _ in 0..200 {
            if let Ok(r) = client.get(&url).send().await {
                let ctype = r
                    .headers()
                    .get("content-type")
                    .map(|v| v.to_str().unwrap().to_string());
                return (
                    r.status().as_u16(),
                    ctype,
                    r.bytes().await.unwrap().to_vec(),
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("caddy never answered on {url}");
    };
    let (status, ctype, body) = get("default.ipxe").await;
    assert_eq!((status, body.as_slice()), (200, &b"#!ipxe\nchain x\n"[..]));
    assert_eq!(ctype.as_deref(), Some("text/plain; charset=utf-8"));
    let (status, ctype, body) = get("os/scos/kernel").await;
    assert_eq!(
        (status, ctype.as_deref()),
        (200, Some("application/octet-stream"))
    );
    assert_eq!(body, kernel);
    // Temp files of a copy are dot files: never served.
    std::fs::write(ssh.path("www/.harmony-tmp-1"), b"partial").unwrap();
    assert_eq!(get(".harmony-tmp-1").await.0, 404);
    caddy.stop(Duration::from_secs(5)).await.unwrap();

    // Taking a file back copies it out and removes it.
    let dest = ssh.path("taken");
    assert_eq!(
        again
            .take_file(&rel("os/scos/kernel"), &dest)
            .await
            .unwrap(),
        Change::Applied
    );
    assert_eq!(std::fs::read(&dest).unwrap(), kernel);
    assert!(!ssh.path("www/os/scos/kernel").exists());
    assert_eq!(
        again.remove_file(&rel("default.ipxe")).await.unwrap(),
        Change::Applied
    );

    // Caddy's reconfigure failing is an error naming the endpoint (and
    // the next run tries again: the snippet is in place, so it is not
    // re-applied, but the failure was reported).
    std::fs::remove_file(ssh.path("caddy.d/harmony.conf")).unwrap();
    e.fw.fix(
        "/api/caddy/service/reconfigure",
        200,
        "application/json",
        r#"{"status":"failed"}"#,
    );
    let fresh = e.site.clone().with_files(cfg).unwrap();
    let err = fresh
        .put_file(&rel("x.ipxe"), b"x")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("caddy/service/reconfigure") && err.contains("failed"),
        "{err}"
    );
}
