//! Contract tests of the AOS-CX backend against a local https server on
//! 127.0.0.1 (its own CA, given to Harmony as the site CA) that answers
//! like the AOS-CX REST API as vendor-apis.md §2 documents it: `POST
//! /rest/v10.09/login` with form fields (a session cookie and an
//! `X-Csrf-Token` header back, both required afterwards), `GET
//! /system/interfaces?depth=1`, `GET …?selector=writable`, PUT as a full
//! replace of the writable attributes (what is not sent is gone), `POST
//! /system/interfaces` for a LAG (201), DELETE (204), `POST …/logout`;
//! expected codes from pyaoscx `utils/util.py` [A4]. It records every
//! request; faults are injected per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#[path = "support/http_request.rs"]
mod http_request;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harmony::domain::{
    Change, LacpOptions, LagId, PortMode, Switch, SwitchError, SwitchPort, VlanId,
};
use harmony::infra::aoscx::{AosCxConfig, AosCxSwitch};
use harmony::infra::device_login::DeviceLogin;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

const USER: &str = "admin";
const PASSWORD: &str = "Aruba&Secret=1";
const V: &str = "/rest/v10.09";
const COOKIE: &str = "id=Q2xvdWRTZXNzaW9uMQ==";
const CSRF: &str = "c5a7f1e0b2";

#[derive(Debug, Clone, PartialEq)]
struct Req {
    method: String,
    path: String,
    body: Option<String>,
    cookie: Option<String>,
    csrf: Option<String>,
    csrf_wanted: Option<String>,
}

#[derive(Default)]
struct State {
    /// name -> full object (writable + status attributes)
    ifaces: BTreeMap<String, Value>,
    log: Vec<Req>,
    /// (method, path) -> (status, body)
    fixed: BTreeMap<(String, String), (u16, String)>,
    /// A PUT to this path answered 200 once without applying it.
    ignore_put: Option<String>,
    hang: Option<String>,
}

const WRITABLE: &[&str] = &[
    "admin",
    "description",
    "vlan_mode",
    "vlan_tag",
    "vlan_trunks",
    "routing",
    "other_config",
    "lacp",
    "interfaces",
];

fn writable(obj: &Value) -> Value {
    let m = obj.as_object().unwrap();
    Value::Object(
        m.iter()
            .filter(|(k, _)| WRITABLE.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

fn decode(s: &str) -> String {
    s.replace("%2F", "/")
}

fn answer(s: &mut State, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    if let Some(f) = s.fixed.get(&(method.to_string(), path.to_string())) {
        return f.clone();
    }
    let rest = path.strip_prefix(V).unwrap_or("");
    let (route, query) = rest.split_once('?').unwrap_or((rest, ""));
    match (method, route) {
        ("POST", "/logout") => (200, String::new()),
        ("GET", "/system/interfaces") if query == "depth=1" => {
            (200, serde_json::to_string(&s.ifaces).unwrap())
        }
        ("POST", "/system/interfaces") => {
            let v: Value = serde_json::from_str(body.unwrap()).unwrap();
            let name = v["name"].as_str().unwrap().to_string();
            let mut obj = v.clone();
            obj["admin"] = json!("up");
            s.ifaces.insert(name, obj);
            (201, String::new())
        }
        (_, r) if r.starts_with("/system/interfaces/") => {
            let name = decode(r.trim_start_matches("/system/interfaces/"));
            let Some(obj) = s.ifaces.get_mut(&name) else {
                return (404, "Object not found".into());
            };
            match method {
                "GET" if query == "selector=writable" => (200, writable(obj).to_string()),
                "PUT" => {
                    if s.ignore_put.as_deref() == Some(path) {
                        s.ignore_put = None;
                        return (200, String::new());
                    }
                    let new: Value = serde_json::from_str(body.unwrap()).unwrap();
                    let m = obj.as_object_mut().unwrap();
                    // Full replace of the writable attributes.
                    m.retain(|k, _| !WRITABLE.contains(&k.as_str()));
                    for (k, v) in new.as_object().unwrap() {
                        m.insert(k.clone(), v.clone());
                    }
                    (200, String::new())
                }
                "DELETE" => {
                    s.ifaces.remove(&name);
                    (204, String::new())
                }
                _ => (400, "unsupported".into()),
            }
        }
        _ => (404, "Not found".into()),
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut sock: S, st: Arc<Mutex<State>>) {
    let Some(req) = http_request::read_request(&mut sock).await else {
        return;
    };
    let (method, path) = (req.method.clone(), req.target.clone());
    let h = |k: &str| req.header(k);
    let body = (!req.body.is_empty()).then(|| String::from_utf8_lossy(&req.body).to_string());
    let hang = {
        let mut s = st.lock().unwrap();
        s.log.push(Req {
            method: method.clone(),
            path: path.clone(),
            body: body.clone(),
            cookie: h("cookie"),
            csrf: h("x-csrf-token"),
            csrf_wanted: h("x-use-csrf-token"),
        });
        s.hang.as_deref() == Some(path.as_str())
    };
    if hang {
        tokio::time::sleep(Duration::from_secs(30)).await;
        return;
    }
    let mut extra = String::new();
    let (status, text) = {
        let mut s = st.lock().unwrap();
        if path == format!("{V}/login") && method == "POST" {
            let want = format!(
                "username={USER}&password={}",
                PASSWORD.replace('&', "%26").replace('=', "%3D")
            );
            if let Some(f) = s.fixed.get(&(method.clone(), path.clone())) {
                f.clone()
            } else if body.as_deref() == Some(want.as_str())
                && h("content-type").as_deref() == Some("application/x-www-form-urlencoded")
            {
                extra = format!(
                    "Set-Cookie: {COOKIE}; Path=/; Secure; HttpOnly\r\nX-Csrf-Token: {CSRF}\r\n"
                );
                (200, String::new())
            } else {
                (401, "Login failed: incorrect username or password".into())
            }
        } else if h("cookie").as_deref() != Some(COOKIE)
            || h("x-csrf-token").as_deref() != Some(CSRF)
        {
            (401, "Unauthorized".into())
        } else {
            answer(&mut s, &method, &path, body.as_deref())
        }
    };
    let resp = format!(
        "HTTP/1.1 {status} X\r\n{extra}Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = sock.write_all(resp.as_bytes()).await;
    let _ = sock.shutdown().await;
}

struct Pki {
    ca_pem: String,
    server: Arc<rustls::ServerConfig>,
}

/// A CA made for the test and a certificate for 127.0.0.1 signed by it
/// (as `tests/opnsense_contract.rs` does).
fn pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        SanType,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Harmony test switch CA");
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

struct Env {
    state: Arc<Mutex<State>>,
    sw: AosCxSwitch,
    _dir: tempfile::TempDir,
}

impl Env {
    fn log(&self) -> Vec<Req> {
        std::mem::take(&mut self.state.lock().unwrap().log)
    }
    /// Method and path of each request.
    fn calls(&self) -> Vec<String> {
        self.log()
            .into_iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }
    fn with(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.lock().unwrap())
    }
    fn iface(&self, name: &str) -> Value {
        self.state.lock().unwrap().ifaces[name].clone()
    }
}

fn access(vlan: u16, description: &str) -> Value {
    json!({
        "name": "x", "type": "system", "admin": "up", "admin_state": "up", "link_speed": 10_000_000_000u64,
        "description": description, "vlan_mode": "access",
        "vlan_tag": {vlan.to_string(): format!("/rest/v10.09/system/vlans/{vlan}")},
        "routing": false, "other_config": {"lldp_enable": "true"},
    })
}

async fn env() -> Env {
    let p = pki();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut st = State::default();
    st.ifaces.insert("1/1/1".into(), access(10, "m0 nic0"));
    st.ifaces.insert("1/1/2".into(), access(10, "m0 nic1"));
    let mut m3 = access(20, "m1 nic0");
    m3["other_config"]["lacp-aggregation-key"] = json!(7);
    let mut m4 = access(20, "m1 nic1");
    m4["other_config"]["lacp-aggregation-key"] = json!(7);
    st.ifaces.insert("1/1/3".into(), m3);
    st.ifaces.insert("1/1/4".into(), m4);
    st.ifaces.insert(
        "lag7".into(),
        json!({
            "name": "lag7", "type": "lag", "admin": "up", "lacp": "active", "description": "m1 bond",
            "interfaces": {"1/1/3": "/rest/v10.09/system/interfaces/1%2F1%2F3", "1/1/4": "/rest/v10.09/system/interfaces/1%2F1%2F4"},
            "vlan_mode": "access", "vlan_tag": {"20": "/rest/v10.09/system/vlans/20"}, "routing": false,
            "other_config": {"lacp-time": "fast"}, "bond_status": {"bond_speed": 20_000_000_000u64},
        }),
    );
    st.ifaces.insert("1/1/5".into(), json!({"admin": "up", "vlan_mode": "native-untagged", "vlan_tag": {"1": "/rest/v10.09/system/vlans/1"}, "vlan_trunks": {"10": "x", "20": "y"}, "routing": false}));
    let state = Arc::new(Mutex::new(st));
    let st = state.clone();
    let acceptor = tokio_rustls::TlsAcceptor::from(p.server.clone());
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let (st, acceptor) = (st.clone(), acceptor.clone());
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(40), async move {
                    if let Ok(s) = acceptor.accept(sock).await {
                        serve(s, st).await;
                    }
                })
                .await;
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &p.ca_pem).unwrap();
    let login_file = dir.path().join("login");
    std::fs::write(
        &login_file,
        format!("username={USER}\npassword={PASSWORD}\n"),
    )
    .unwrap();
    let mut cfg = AosCxConfig::new(
        "leaf-2",
        format!("https://127.0.0.1:{port}").parse().unwrap(),
        DeviceLogin::from_file(&login_file).unwrap(),
    );
    cfg.site_ca = Some(ca);
    cfg.call_timeout = Duration::from_secs(2);
    cfg.settle = Duration::from_millis(300);
    cfg.poll = Duration::from_millis(50);
    let sw = AosCxSwitch::new(cfg).unwrap();
    Env {
        state,
        sw,
        _dir: dir,
    }
}

fn ports(names: &[&str]) -> Vec<SwitchPort> {
    names.iter().map(|n| n.parse().unwrap()).collect()
}
fn vlan(v: u16) -> VlanId {
    VlanId::try_from(v).unwrap()
}
fn lag(v: u16) -> LagId {
    LagId::try_from(v).unwrap()
}

fn login() -> String {
    format!("POST {V}/login")
}
fn logout() -> String {
    format!("POST {V}/logout")
}
fn all() -> String {
    format!("GET {V}/system/interfaces?depth=1")
}

#[tokio::test]
async fn contract_login_status_and_logout() {
    let e = env().await;
    let st =
        e.sw.get_port_status(&ports(&["1/1/1", "1/1/3", "1/1/5", "1/1/9"]))
            .await
            .unwrap();
    let log = e.log();
    assert_eq!(log.len(), 3);
    assert_eq!(
        log[0].body.as_deref(),
        Some("username=admin&password=Aruba%26Secret%3D1")
    );
    assert_eq!(log[0].csrf_wanted.as_deref(), Some("true"));
    for r in &log[1..] {
        assert_eq!(r.cookie.as_deref(), Some(COOKIE), "{r:?}");
        assert_eq!(r.csrf.as_deref(), Some(CSRF), "{r:?}");
    }
    let calls: Vec<String> = log
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(calls, [login(), all(), logout()]);
    assert_eq!(st[0].mode, PortMode::Access { vlan: vlan(10) });
    assert!(st[0].admin_up && st[0].oper_up);
    assert_eq!(st[0].speed_mbps, Some(10_000));
    assert_eq!(st[1].mode, PortMode::LacpMember { lag: lag(7) });
    assert_eq!(st[1].vlan, Some(vlan(20)));
    assert_eq!(st[2].mode, PortMode::Other, "a trunk");
    assert_eq!(st[3].mode, PortMode::Detached);
}

#[tokio::test]
async fn contract_access_mode_puts_whole_writable_bodies() {
    let e = env().await;
    let change =
        e.sw.set_ports_access_mode(&ports(&["1/1/3", "1/1/4"]), vlan(10))
            .await
            .unwrap();
    assert_eq!(change, Change::Applied);
    let log = e.log();
    let calls: Vec<String> = log
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        calls,
        [
            login(),
            all(),
            format!("GET {V}/system/interfaces/lag7?selector=writable"),
            format!("GET {V}/system/interfaces/1%2F1%2F3?selector=writable"),
            format!("GET {V}/system/interfaces/1%2F1%2F4?selector=writable"),
            format!("PUT {V}/system/interfaces/lag7"),
            format!("PUT {V}/system/interfaces/1%2F1%2F3"),
            format!("PUT {V}/system/interfaces/1%2F1%2F4"),
            all(),
            logout(),
        ]
    );
    let lag_body: Value = serde_json::from_str(log[5].body.as_deref().unwrap()).unwrap();
    assert_eq!(lag_body["interfaces"], json!({}));
    assert_eq!(lag_body["description"], "m1 bond", "the whole body is sent");
    let port_body: Value = serde_json::from_str(log[6].body.as_deref().unwrap()).unwrap();
    assert_eq!(
        port_body,
        json!({
            "admin": "up", "description": "m1 nic0", "vlan_mode": "access",
            "vlan_tag": {"10": "/rest/v10.09/system/vlans/10"}, "routing": false,
            "other_config": {"lldp_enable": "true"},
        })
    );
    assert_eq!(e.iface("1/1/3")["description"], "m1 nic0");
    let again =
        e.sw.set_ports_access_mode(&ports(&["1/1/3", "1/1/4"]), vlan(10))
            .await
            .unwrap();
    assert_eq!(again, Change::Unchanged);
    assert_eq!(e.calls(), [login(), all(), logout()]);
}

#[tokio::test]
async fn contract_lacp_with_and_without_fallback() {
    let e = env().await;
    let two = ports(&["1/1/1", "1/1/2"]);
    let fb = LacpOptions {
        fallback: true,
        partner_within: None,
    };
    let change =
        e.sw.set_ports_lacp_mode(&two, lag(5), vlan(10), fb)
            .await
            .unwrap();
    assert_eq!(change, Change::Applied);
    let log = e.log();
    let calls: Vec<String> = log
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        calls,
        [
            login(),
            all(),
            format!("GET {V}/system/interfaces/1%2F1%2F1?selector=writable"),
            format!("GET {V}/system/interfaces/1%2F1%2F2?selector=writable"),
            format!("POST {V}/system/interfaces"),
            format!("PUT {V}/system/interfaces/1%2F1%2F1"),
            format!("PUT {V}/system/interfaces/1%2F1%2F2"),
            all(),
            logout(),
        ]
    );
    let created: Value = serde_json::from_str(log[4].body.as_deref().unwrap()).unwrap();
    assert_eq!(
        created,
        json!({
            "name": "lag5", "type": "lag", "lacp": "active",
            "interfaces": {"1/1/1": "/rest/v10.09/system/interfaces/1%2F1%2F1", "1/1/2": "/rest/v10.09/system/interfaces/1%2F1%2F2"},
            "vlan_mode": "access", "vlan_tag": {"10": "/rest/v10.09/system/vlans/10"}, "routing": false,
            "other_config": {"lacp-fallback": true, "lacp-time": "fast"},
        })
    );
    let member: Value = serde_json::from_str(log[5].body.as_deref().unwrap()).unwrap();
    assert_eq!(member["other_config"]["lacp-aggregation-key"], 5);
    let st = e.sw.get_port_status(&two).await.unwrap();
    assert!(
        st.iter()
            .all(|s| s.mode == PortMode::LacpMember { lag: lag(5) })
    );
    e.log();
    // Without fallback: the existing LAG is read and PUT whole.
    let change =
        e.sw.set_ports_lacp_mode(&two, lag(5), vlan(10), LacpOptions::default())
            .await
            .unwrap();
    assert_eq!(change, Change::Applied);
    let log = e.log();
    let put = log
        .iter()
        .find(|r| r.method == "PUT" && r.path.ends_with("/lag5"))
        .unwrap();
    let body: Value = serde_json::from_str(put.body.as_deref().unwrap()).unwrap();
    assert_eq!(body["other_config"]["lacp-fallback"], false);
    assert_eq!(body["lacp"], "active");
    // A partner wait with no partner heard (no `lacp_status`): the
    // configuration is in place, so nothing is PUT; the wait ends in an
    // error naming each member.
    let e2 =
        e.sw.set_ports_lacp_mode(
            &two,
            lag(5),
            vlan(10),
            LacpOptions {
                fallback: false,
                partner_within: Some(Duration::from_millis(200)),
            },
        )
        .await
        .unwrap_err();
    let text = e2.to_string();
    assert!(text.contains("1/1/1: no current LACP partner"), "{text}");
    assert!(text.contains("1/1/2: no current LACP partner"), "{text}");
    assert!(
        e.log()
            .iter()
            .all(|r| r.method != "PUT" && r.path != "DELETE"),
        "nothing changed"
    );
}

/// A LAG member's status columns as the OpenSwitch schema AOS-CX keeps
/// documents them (`lacp_current`, `lacp_status.partner_system_id` as
/// `priority,mac`, `partner_state` as flags; see `model::partner_of`).
fn hears(obj: &mut Value, partner_system_id: &str, partner_state: &str) {
    obj["lacp_current"] = json!(true);
    obj["lacp_status"] = json!({
        "actor_key": "7", "actor_system_id": "65534,08:00:09:5c:b2:08",
        "actor_port_id": "1,3",
        "actor_state": "Activ:1,TmOut:1,Aggr:1,Sync:1,Col:1,Dist:1,Def:0,Exp:0",
        "partner_system_id": partner_system_id, "partner_port_id": "255,1",
        "partner_key": "15", "partner_state": partner_state,
    });
}

const FORWARDING: &str = "Activ:1,TmOut:1,Aggr:1,Sync:1,Col:1,Dist:1,Def:0,Exp:0";

#[tokio::test]
async fn contract_the_lacp_partner_is_read_from_lacp_status() {
    let e = env().await;
    let members = ports(&["1/1/3", "1/1/4"]);
    e.with(|s| {
        hears(
            s.ifaces.get_mut("1/1/3").unwrap(),
            "65535,52:54:00:aa:bb:01",
            FORWARDING,
        );
        // Sync but not yet collecting/distributing.
        hears(
            s.ifaces.get_mut("1/1/4").unwrap(),
            "65535,52:54:00:aa:bb:01",
            "Activ:1,TmOut:1,Aggr:1,Sync:1,Col:0,Dist:0,Def:0,Exp:0",
        );
        // A trunk's stale lacp_status is ignored (not a LAG member).
        hears(
            s.ifaces.get_mut("1/1/5").unwrap(),
            "65535,52:54:00:aa:bb:09",
            FORWARDING,
        );
    });
    let st =
        e.sw.get_port_status(&ports(&["1/1/3", "1/1/4", "1/1/5"]))
            .await
            .unwrap();
    let p3 = st[0].partner.as_ref().unwrap();
    assert_eq!(p3.system_id.to_string(), "52:54:00:aa:bb:01");
    assert!(p3.collecting && p3.distributing);
    let p4 = st[1].partner.as_ref().unwrap();
    assert!(!p4.collecting && !p4.distributing);
    assert_eq!(st[2].partner, None);
    assert!(e.sw.capabilities().reports_lacp_partner);

    // The wait: configuration already in place, nothing is PUT; 1/1/4
    // starts distributing while Harmony reads back.
    let state = e.state.clone();
    let later = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        hears(
            state.lock().unwrap().ifaces.get_mut("1/1/4").unwrap(),
            "65535,52:54:00:aa:bb:01",
            FORWARDING,
        );
    });
    e.log();
    let wait = LacpOptions {
        fallback: false,
        partner_within: Some(Duration::from_secs(5)),
    };
    let change =
        e.sw.set_ports_lacp_mode(&members, lag(7), vlan(20), wait)
            .await
            .unwrap();
    later.await.unwrap();
    assert_eq!(change, Change::Unchanged);
    let calls = e.calls();
    assert_eq!(calls.first(), Some(&login()));
    assert_eq!(calls.last(), Some(&logout()));
    // Only reads between (as many as the partner took).
    assert!(
        calls[1..calls.len() - 1].iter().all(|c| *c == all()),
        "{calls:?}"
    );

    // Two partners on one LAG are a mismatch.
    e.with(|s| {
        hears(
            s.ifaces.get_mut("1/1/4").unwrap(),
            "65535,52:54:00:aa:bb:02",
            FORWARDING,
        );
    });
    let short = LacpOptions {
        fallback: false,
        partner_within: Some(Duration::from_millis(100)),
    };
    let text =
        e.sw.set_ports_lacp_mode(&members, lag(7), vlan(20), short)
            .await
            .unwrap_err()
            .to_string();
    assert!(
        text.contains("members hear different partners: 52:54:00:aa:bb:01, 52:54:00:aa:bb:02"),
        "{text}"
    );
}

#[tokio::test]
async fn contract_a_partner_not_current_is_no_partner_and_a_bad_one_is_refused() {
    let e = env().await;
    let members = ports(&["1/1/3", "1/1/4"]);
    let read = |id: &'static str, state: &'static str, current: bool| {
        e.with(move |s| {
            let m = s.ifaces.get_mut("1/1/3").unwrap();
            hears(m, id, state);
            m["lacp_current"] = json!(current);
        });
        let sw = &e.sw;
        let members = members.clone();
        async move { sw.get_port_status(&members).await }
    };
    // Defaulted, expired, no partner id, or partner information not current.
    for (id, state, current) in [
        (
            "65535,52:54:00:aa:bb:01",
            "Activ:1,TmOut:1,Aggr:1,Sync:0,Col:0,Dist:0,Def:1,Exp:0",
            true,
        ),
        (
            "65535,52:54:00:aa:bb:01",
            "Activ:1,TmOut:1,Aggr:1,Sync:0,Col:0,Dist:0,Def:0,Exp:1",
            true,
        ),
        (
            "0,00:00:00:00:00:00",
            "Activ:0,TmOut:0,Aggr:0,Sync:0,Col:0,Dist:0,Def:1,Exp:0",
            true,
        ),
        ("65535,52:54:00:aa:bb:01", FORWARDING, false),
    ] {
        let st = read(id, state, current).await.unwrap();
        assert_eq!(st[0].partner, None, "{id} {state} {current}");
    }
    // The schema's own example spelling (`Actv`, parentheses) is read too.
    let st = read(
        "65535,52:54:00:aa:bb:01",
        "(Actv:1,TmOut:1,Aggr:1,Sync:1,Col:1,Dist:1,Def:0,Exp:0)",
        true,
    )
    .await
    .unwrap();
    assert!(st[0].partner.as_ref().unwrap().is_forwarding());
    // Untrusted values: refused with the interface and the field named.
    for (id, state, field) in [
        (
            "65535,52:54:00:aa:bb",
            FORWARDING,
            "lacp_status.partner_system_id",
        ),
        (
            "x,52:54:00:aa:bb:01",
            FORWARDING,
            "lacp_status.partner_system_id",
        ),
        (
            "65535,52:54:00:aa:bb:01",
            "Col:yes,Dist:1",
            "lacp_status.partner_state",
        ),
        (
            "65535,52:54:00:aa:bb:01",
            "Activ:1,Sync:1",
            "lacp_status.partner_state",
        ),
    ] {
        let text = read(id, state, true).await.unwrap_err().to_string();
        assert!(
            text.contains("1/1/3") && text.contains(field),
            "{id} {state}: {text}"
        );
    }
}

#[tokio::test]
async fn contract_a_change_not_confirmed_is_rolled_back() {
    let e = env().await;
    e.with(|s| {
        s.ifaces.get_mut("1/1/2").unwrap()["admin"] = json!("down");
        s.ignore_put = Some(format!("{V}/system/interfaces/1%2F1%2F2"));
    });
    let two = ports(&["1/1/1", "1/1/2"]);
    let err =
        e.sw.set_ports_lacp_mode(&two, lag(5), vlan(10), LacpOptions::default())
            .await
            .unwrap_err();
    let s = err.to_string();
    for part in [
        "switch aos-cx leaf-2",
        "ports 1/1/1, 1/1/2",
        "wanted admin up, lacp member of lag 5 vlan 10",
        "1/1/2: admin down",
        "put back as they were",
    ] {
        assert!(s.contains(part), "{part:?} missing in {s}");
    }
    let calls = e.calls();
    let n = calls.len();
    assert_eq!(
        &calls[n - 5..],
        [
            format!("DELETE {V}/system/interfaces/lag5"),
            format!("PUT {V}/system/interfaces/1%2F1%2F1"),
            format!("PUT {V}/system/interfaces/1%2F1%2F2"),
            all(),
            logout(),
        ]
    );
    assert_eq!(e.iface("1/1/1"), {
        let mut a = access(10, "m0 nic0");
        a["other_config"] = json!({"lldp_enable": "true"});
        a
    });
    assert!(!e.state.lock().unwrap().ifaces.contains_key("lag5"));
}

#[tokio::test]
async fn contract_device_errors_name_switch_and_endpoint() {
    let e = env().await;
    // 401 at login.
    e.with(|s| {
        s.fixed.insert(
            ("POST".into(), format!("{V}/login")),
            (401, "Login failed: session limit reached".into()),
        );
    });
    let err =
        e.sw.get_port_status(&ports(&["1/1/1"]))
            .await
            .unwrap_err()
            .to_string();
    assert!(
        err.contains("switch aos-cx leaf-2")
            && err.contains("/rest/v10.09/login")
            && err.contains("401")
            && err.contains("session limit reached"),
        "{err}"
    );
    assert!(!err.contains(PASSWORD));
    e.with(|s| s.fixed.clear());
    e.log();
    // 400 with a message on a PUT: the change is undone, logout still sent.
    e.with(|s| {
        s.fixed.insert(
            ("PUT".into(), format!("{V}/system/interfaces/1%2F1%2F1")),
            (
                400,
                "{\"message\": \"Invalid vlan_tag: VLAN 30 does not exist\"}".into(),
            ),
        );
    });
    let err =
        e.sw.set_ports_access_mode(&ports(&["1/1/1"]), vlan(30))
            .await
            .unwrap_err()
            .to_string();
    for part in [
        "switch aos-cx leaf-2",
        "PUT https://127.0.0.1",
        "/rest/v10.09/system/interfaces/1%2F1%2F1",
        "HTTP 400",
        "VLAN 30 does not exist",
    ] {
        assert!(err.contains(part), "{part:?} missing in {err}");
    }
    assert_eq!(e.calls().last().unwrap(), &logout());
    e.with(|s| s.fixed.clear());
    // A request that never answers: timed out, naming it.
    e.with(|s| s.hang = Some(format!("{V}/system/interfaces?depth=1")));
    let err =
        e.sw.get_port_status(&ports(&["1/1/1"]))
            .await
            .unwrap_err()
            .to_string();
    assert!(
        err.contains("switch aos-cx leaf-2")
            && err.contains("GET")
            && err.contains("system/interfaces?depth=1"),
        "{err}"
    );
}

#[tokio::test]
async fn contract_hostile_names_and_answers_are_refused() {
    let e = env().await;
    for bad in ["1/1/1?x=1", "1/1/1%2F", "1/1/1 ", "../x", "1/1/1#"] {
        assert!(bad.parse::<SwitchPort>().is_err(), "{bad:?}");
    }
    // A trunk is not changed (it could not be put back as Harmony reads it).
    let err =
        e.sw.set_ports_access_mode(&ports(&["1/1/5"]), vlan(10))
            .await
            .unwrap_err();
    assert!(matches!(err, SwitchError::Refused { .. }), "{err}");
    assert!(!e.calls().iter().any(|c| c.starts_with("PUT")));
    // A hostile interface name in the answer: refused, nothing written.
    e.with(|s| {
        s.ifaces.insert("1/1/9;reload".into(), json!({}));
    });
    let err =
        e.sw.set_ports_access_mode(&ports(&["1/1/1"]), vlan(30))
            .await
            .unwrap_err();
    assert!(matches!(err, SwitchError::Output { .. }), "{err}");
    assert!(err.to_string().contains("interface name"), "{err}");
    assert_eq!(e.calls(), [login(), all(), logout()]);
}
