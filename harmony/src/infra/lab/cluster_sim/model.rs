//! The simulated cluster's state and rules, without sockets: the hosts'
//! phase reports (validated from the installer image's form body), what
//! the Kubernetes API answers from them (`/version`, nodes, the bootstrap
//! ConfigMap, CSRs and their approval, the `Scheduler`), and the read-only
//! view the lab prints. Every call is short and synchronous; the server
//! holds its lock only around one of them.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::SystemTime;

use base64::Engine;
use serde_json::{Value, json};

use crate::domain::text::safe_text;
use crate::domain::{Hostname, MacAddress, Role};

/// The node-bootstrapper service account: who asks for a kubelet's first
/// client certificate [K4][K9].
pub const BOOTSTRAPPER: &str =
    "system:serviceaccount:openshift-machine-config-operator:node-bootstrapper";
const BOOTSTRAPPER_GROUPS: [&str; 3] = [
    "system:serviceaccounts:openshift-machine-config-operator",
    "system:serviceaccounts",
    "system:authenticated",
];
const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
const SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";

const CSRS: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
const BOOTSTRAP: &str = "/api/v1/namespaces/kube-system/configmaps/bootstrap";
const SCHEDULER: &str = "/apis/config.openshift.io/v1/schedulers/cluster";
const VERSION: &str = "/version";
const NODES: &str = "/api/v1/nodes";

/// The longest `detail` kept from a report (characters).
const DETAIL_CHARS: usize = 300;

/// A phase the installer image reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    IgnitionFetched,
    DiskWritten,
    BondUp,
    Failed,
}

impl Phase {
    pub fn as_str(&self) -> &'static str {
        match self {
            Phase::IgnitionFetched => "ignition-fetched",
            Phase::DiskWritten => "disk-written",
            Phase::BondUp => "bond-up",
            Phase::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Phase::IgnitionFetched,
            Phase::DiskWritten,
            Phase::BondUp,
            Phase::Failed,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A host the simulation expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimHost {
    pub name: Hostname,
    pub role: Role,
    pub macs: Vec<MacAddress>,
    /// The node's address (its serving certificate names it).
    pub ip: IpAddr,
}

/// One report as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseRecord {
    pub phase: Phase,
    pub at: SystemTime,
    pub mac: MacAddress,
    pub detail: String,
}

/// A CSR's kind, as a kubelet makes them [K5].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrKind {
    /// The first client certificate, asked by the node-bootstrapper.
    Client,
    /// The kubelet's serving certificate, asked by `system:node:<name>`.
    Serving,
}

/// A rejected report or API request: the HTTP status and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
}

impl Refusal {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
        }
    }
}

/// A CSR made ahead of time (key generation stays outside the lock).
#[derive(Debug, Clone)]
pub struct CsrRequest {
    pub node: String,
    pub kind: CsrKind,
    /// Who asks (`spec.username`).
    pub username: String,
    pub groups: Vec<String>,
    /// The PKCS#10 request, PEM.
    pub pem: String,
}

impl CsrRequest {
    /// A kubelet's request for `node` (`CN=system:node:<node>,
    /// O=system:nodes`; serving: with `node` and `ips` as names), asked by
    /// the node-bootstrapper (client) or the node itself (serving).
    pub fn kubelet(node: &str, kind: CsrKind, ips: &[IpAddr]) -> Result<Self, rcgen::Error> {
        use rcgen::{CertificateParams, DnType, KeyPair, SanType};
        let dns = match kind {
            CsrKind::Client => Vec::new(),
            CsrKind::Serving => vec![node.to_string()],
        };
        let mut p = CertificateParams::new(dns)?;
        p.distinguished_name
            .push(DnType::CommonName, format!("system:node:{node}"));
        p.distinguished_name
            .push(DnType::OrganizationName, "system:nodes");
        if kind == CsrKind::Serving {
            p.subject_alt_names
                .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
        }
        let pem = p.serialize_request(&KeyPair::generate()?)?.pem()?;
        let (username, groups) = match kind {
            CsrKind::Client => (
                BOOTSTRAPPER.to_string(),
                BOOTSTRAPPER_GROUPS.iter().map(|g| g.to_string()).collect(),
            ),
            CsrKind::Serving => (
                format!("system:node:{node}"),
                vec!["system:nodes".into(), "system:authenticated".into()],
            ),
        };
        Ok(Self {
            node: node.to_string(),
            kind,
            username,
            groups,
            pem,
        })
    }
}

/// A CSR in the simulated cluster.
#[derive(Debug, Clone)]
struct Csr {
    name: String,
    request: CsrRequest,
    /// The host it belongs to, when it is one of the expected hosts'.
    host: Option<usize>,
    rv: u64,
    created: SystemTime,
    conditions: Vec<Value>,
}

/// The read-only view of one CSR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrView {
    pub name: String,
    pub node: String,
    pub kind: CsrKind,
    pub username: String,
    /// The `Approved` condition's message (who approved it and why).
    pub approved: Option<String>,
    pub denied: bool,
}

/// The read-only view of one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostView {
    pub name: Hostname,
    pub role: Role,
    pub macs: Vec<MacAddress>,
    pub ip: IpAddr,
    pub phases: Vec<PhaseRecord>,
    /// The node's `Ready` status (`None`: not a node).
    pub node_ready: Option<bool>,
}

/// What the lab's summary shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimView {
    pub api_answers: bool,
    pub bootstrap_complete: bool,
    pub masters_schedulable: bool,
    pub hosts: Vec<HostView>,
    pub csrs: Vec<CsrView>,
}

#[derive(Debug)]
struct HostState {
    host: SimHost,
    phases: Vec<PhaseRecord>,
    bond_up: bool,
    client_csr: Option<CsrRequest>,
    serving_csr: Option<CsrRequest>,
    client_approved: bool,
    serving_approved: bool,
}

/// The simulated cluster.
#[derive(Debug)]
pub struct Model {
    hosts: Vec<HostState>,
    csrs: Vec<Csr>,
    scheduler: Value,
    rv: u64,
    next_csr: u64,
    max_csrs: usize,
    max_records: usize,
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Decodes one `application/x-www-form-urlencoded` component.
fn form_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// A report's fields, validated.
#[derive(Debug)]
struct Report {
    mac: MacAddress,
    phase: Phase,
    hostname: Hostname,
    detail: String,
}

fn parse_report(body: &[u8]) -> Result<Report, Refusal> {
    let bad = |m: String| Refusal::new(400, "BadRequest", m);
    let text = std::str::from_utf8(body).map_err(|_| bad("the body is not UTF-8".into()))?;
    let mut fields: BTreeMap<&str, String> = BTreeMap::new();
    for pair in text.trim_end_matches(['\r', '\n']).split('&') {
        if pair.is_empty() {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if !matches!(k, "mac" | "phase" | "hostname" | "detail") {
            return Err(bad(format!(
                "unknown field {:?} (expected mac, phase, hostname, detail)",
                safe_text(k, 40)
            )));
        }
        let v = form_decode(v).ok_or_else(|| {
            bad(format!(
                "field {k}: bad percent-encoding {:?}",
                safe_text(v, 60)
            ))
        })?;
        if fields.insert(k, v).is_some() {
            return Err(bad(format!("field {k} given twice")));
        }
    }
    let need = |k: &str| {
        fields
            .get(k)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| bad(format!("field {k} is missing")))
    };
    let mac_text = need("mac")?;
    let mac: MacAddress = mac_text
        .parse()
        .map_err(|e| Refusal::new(422, "Invalid", format!("field mac: {e}")))?;
    let phase_text = need("phase")?;
    let phase = Phase::parse(phase_text).ok_or_else(|| {
        Refusal::new(
            422,
            "Invalid",
            format!(
                "field phase: {:?} is not one of ignition-fetched, disk-written, bond-up, failed",
                safe_text(phase_text, 40)
            ),
        )
    })?;
    let host_text = need("hostname")?;
    let hostname: Hostname = host_text
        .parse()
        .map_err(|e| Refusal::new(422, "Invalid", format!("field hostname: {e}")))?;
    let detail = fields
        .get("detail")
        .map(|d| safe_text(d, DETAIL_CHARS))
        .unwrap_or_default();
    Ok(Report {
        mac,
        phase,
        hostname,
        detail,
    })
}

fn status(code: u16, reason: &str, message: &str) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": reason, "code": code}),
    )
}

fn not_found(kind: &str, name: &str) -> (u16, Value) {
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

impl Model {
    /// `hosts` checked by the caller (names and MACs unique, one
    /// bootstrap); `workers_csrs[i]`: the client and serving requests of
    /// host `i` when it is a worker.
    pub fn new(
        hosts: Vec<(SimHost, Option<(CsrRequest, CsrRequest)>)>,
        max_csrs: usize,
        max_records: usize,
    ) -> Self {
        let hosts = hosts
            .into_iter()
            .map(|(host, csrs)| {
                let (client_csr, serving_csr) = match csrs {
                    Some((c, s)) => (Some(c), Some(s)),
                    None => (None, None),
                };
                HostState {
                    host,
                    phases: Vec::new(),
                    bond_up: false,
                    client_csr,
                    serving_csr,
                    client_approved: false,
                    serving_approved: false,
                }
            })
            .collect();
        // A UPI install-config has no compute replicas, so the installer
        // makes the control plane schedulable [K7]; the saga turns it off.
        let scheduler = json!({"apiVersion": "config.openshift.io/v1", "kind": "Scheduler",
            "metadata": {"name": "cluster", "uid": "sim-scheduler-cluster",
                "resourceVersion": "1", "generation": 1},
            "spec": {"mastersSchedulable": true, "policy": {"name": ""}},
            "status": {}});
        Self {
            hosts,
            csrs: Vec::new(),
            scheduler,
            rv: 100,
            next_csr: 0,
            max_csrs,
            max_records,
        }
    }

    /// The API answers once the bootstrap host's bond is up (before that,
    /// the load balancer has no backend; see the module doc of the server).
    pub fn api_answers(&self) -> bool {
        self.hosts
            .iter()
            .any(|h| h.host.role == Role::Bootstrap && h.bond_up)
    }

    /// Bootstrap complete: the bootstrap and every control-plane host up.
    pub fn bootstrap_complete(&self) -> bool {
        self.api_answers()
            && self
                .hosts
                .iter()
                .filter(|h| h.host.role == Role::ControlPlane)
                .all(|h| h.bond_up)
    }

    /// Takes one report (the form body); the host's name on success.
    pub fn report(&mut self, body: &[u8], at: SystemTime) -> Result<String, Refusal> {
        let r = parse_report(body)?;
        let Some(i) = self.hosts.iter().position(|h| h.host.macs.contains(&r.mac)) else {
            return Err(Refusal::new(
                404,
                "NotFound",
                format!("field mac: {} is not a MAC of any expected host", r.mac),
            ));
        };
        let h = &mut self.hosts[i];
        if h.host.name != r.hostname {
            return Err(Refusal::new(
                422,
                "Invalid",
                format!(
                    "field hostname: {} but MAC {} belongs to host {} (wrong Ignition?)",
                    r.hostname, r.mac, h.host.name
                ),
            ));
        }
        if h.phases.len() >= self.max_records {
            return Err(Refusal::new(
                429,
                "TooManyRequests",
                format!(
                    "host {}: already {} reports (the limit)",
                    h.host.name, self.max_records
                ),
            ));
        }
        h.phases.push(PhaseRecord {
            phase: r.phase,
            at,
            mac: r.mac,
            detail: r.detail,
        });
        let name = h.host.name.to_string();
        if r.phase == Phase::BondUp && !h.bond_up {
            h.bond_up = true;
            if let Some(req) = h.client_csr.take() {
                self.add_csr(req, Some(i), at);
            }
        }
        Ok(name)
    }

    /// Adds a CSR from outside the expected kubelets (a rogue or
    /// misconfigured one): approving it changes no node. `false` when the
    /// store is full.
    pub fn add_csr_request(&mut self, req: CsrRequest, at: SystemTime) -> bool {
        self.add_csr(req, None, at)
    }

    fn add_csr(&mut self, request: CsrRequest, host: Option<usize>, at: SystemTime) -> bool {
        if self.csrs.len() >= self.max_csrs {
            tracing::warn!(
                node = %request.node,
                limit = self.max_csrs,
                "simulated cluster: CSR store full, request dropped"
            );
            return false;
        }
        self.next_csr += 1;
        self.rv += 1;
        self.csrs.push(Csr {
            name: format!("csr-{:05}", self.next_csr),
            request,
            host,
            rv: self.rv,
            created: at,
            conditions: Vec::new(),
        });
        true
    }

    fn csr_object(c: &Csr, with_type: bool) -> Value {
        let mut status = json!({});
        if !c.conditions.is_empty() {
            status["conditions"] = Value::Array(c.conditions.clone());
            if c.conditions.iter().any(|x| x["type"] == "Approved") {
                // The simulation signs nothing: a placeholder, not a certificate.
                status["certificate"] = json!(b64(b"simulated: no certificate issued"));
            }
        }
        let created = rfc3339(c.created);
        let (signer, usages) = match c.request.kind {
            CsrKind::Client => (CLIENT_SIGNER, ["digital signature", "client auth"]),
            CsrKind::Serving => (SERVING_SIGNER, ["digital signature", "server auth"]),
        };
        let mut o = json!({
            "metadata": {"name": c.name, "uid": format!("sim-{}", c.name),
                "resourceVersion": c.rv.to_string(), "creationTimestamp": created},
            "spec": {"request": b64(c.request.pem.as_bytes()), "signerName": signer,
                "usages": usages, "username": c.request.username, "groups": c.request.groups,
                "uid": format!("sim-user-{}", c.name)},
            "status": status,
        });
        if with_type {
            o["kind"] = json!("CertificateSigningRequest");
            o["apiVersion"] = json!("certificates.k8s.io/v1");
        }
        o
    }

    fn nodes(&self) -> Vec<Value> {
        let complete = self.bootstrap_complete();
        self.hosts
            .iter()
            .filter_map(|h| {
                let ready = match h.host.role {
                    Role::Bootstrap => return None,
                    Role::ControlPlane if complete => true,
                    Role::ControlPlane => return None,
                    Role::Worker if h.client_approved => h.serving_approved,
                    Role::Worker => return None,
                };
                let role_label = match h.host.role {
                    Role::ControlPlane => "node-role.kubernetes.io/master",
                    _ => "node-role.kubernetes.io/worker",
                };
                let (st, reason) = if ready {
                    ("True", "KubeletReady")
                } else {
                    ("False", "KubeletNotReady")
                };
                Some(json!({
                    "metadata": {"name": h.host.name.as_str(),
                        "labels": {role_label: "", "kubernetes.io/hostname": h.host.name.as_str()}},
                    "status": {
                        "conditions": [{"type": "Ready", "status": st, "reason": reason,
                            "message": "simulated"}],
                        "addresses": [{"type": "InternalIP", "address": h.host.ip.to_string()},
                            {"type": "Hostname", "address": h.host.name.as_str()}]}
                }))
            })
            .collect()
    }

    /// The API's answer to a request (only when [`Model::api_answers`]).
    pub fn answer(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> (u16, Value) {
        let ok = |v: Value| (200u16, v);
        match (method, path) {
            ("GET", VERSION) => ok(json!({"major": "1", "minor": "32",
                "gitVersion": "v1.32.5-sim", "gitCommit": "simulated", "gitTreeState": "clean",
                "buildDate": "2026-05-10T08:00:00Z", "goVersion": "go1.23.8", "compiler": "gc",
                "platform": "linux/amd64"})),
            ("GET", NODES) => ok(json!({"kind": "NodeList", "apiVersion": "v1",
                "metadata": {"resourceVersion": self.rv.to_string()}, "items": self.nodes()})),
            ("GET", BOOTSTRAP) => {
                if self.bootstrap_complete() {
                    ok(json!({"kind": "ConfigMap", "apiVersion": "v1",
                        "metadata": {"name": "bootstrap", "namespace": "kube-system",
                            "resourceVersion": "5"},
                        "data": {"status": "complete"}}))
                } else {
                    not_found("configmaps", "bootstrap")
                }
            }
            ("GET", CSRS) => {
                let items: Vec<Value> = self
                    .csrs
                    .iter()
                    .map(|c| Self::csr_object(c, false))
                    .collect();
                ok(json!({"kind": "CertificateSigningRequestList",
                    "apiVersion": "certificates.k8s.io/v1",
                    "metadata": {"resourceVersion": self.rv.to_string()}, "items": items}))
            }
            ("GET", SCHEDULER) => ok(self.scheduler.clone()),
            ("PATCH", SCHEDULER) => self.patch_scheduler(content_type, body),
            ("GET", p) if p.starts_with(CSRS) && p.len() > CSRS.len() + 1 => {
                let name = &p[CSRS.len() + 1..];
                match self.csrs.iter().find(|c| c.name == name) {
                    Some(c) => ok(Self::csr_object(c, true)),
                    None => not_found("certificatesigningrequests.certificates.k8s.io", name),
                }
            }
            ("PUT", p) if p.starts_with(CSRS) && p.ends_with("/approval") => {
                let name = p[CSRS.len()..]
                    .trim_start_matches('/')
                    .trim_end_matches("/approval");
                self.approve(name, content_type, body)
            }
            _ => status(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ),
        }
    }

    fn patch_scheduler(&mut self, content_type: Option<&str>, body: &[u8]) -> (u16, Value) {
        if content_type != Some("application/merge-patch+json") {
            return status(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format",
            );
        }
        let Ok(patch) = serde_json::from_slice::<Value>(body) else {
            return status(400, "BadRequest", "the request body is not JSON");
        };
        if !patch.is_object() {
            return status(400, "BadRequest", "a merge patch must be a JSON object");
        }
        let mut obj = self.scheduler.clone();
        merge(&mut obj, &patch);
        if !obj["spec"]["mastersSchedulable"].is_boolean()
            && !obj["spec"]["mastersSchedulable"].is_null()
        {
            return status(
                422,
                "Invalid",
                "Scheduler.config.openshift.io \"cluster\" is invalid: spec.mastersSchedulable: must be a boolean",
            );
        }
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        obj["metadata"]["name"] = json!("cluster");
        self.scheduler = obj.clone();
        (200, obj)
    }

    fn approve(&mut self, name: &str, content_type: Option<&str>, body: &[u8]) -> (u16, Value) {
        if content_type != Some("application/json") {
            return status(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format",
            );
        }
        let Ok(body) = serde_json::from_slice::<Value>(body) else {
            return status(400, "BadRequest", "the request body is not JSON");
        };
        let Some(i) = self.csrs.iter().position(|c| c.name == name) else {
            return not_found("certificatesigningrequests.certificates.k8s.io", name);
        };
        let c = &self.csrs[i];
        if body["metadata"]["name"] != c.name.as_str()
            || body["metadata"]["uid"] != format!("sim-{}", c.name).as_str()
        {
            return status(400, "BadRequest", "name or uid does not match");
        }
        if body["metadata"]["resourceVersion"] != c.rv.to_string().as_str() {
            return status(
                409,
                "Conflict",
                &format!(
                    "Operation cannot be fulfilled on certificatesigningrequests.certificates.k8s.io \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
                ),
            );
        }
        let Some(conditions) = body["status"]["conditions"].as_array().cloned() else {
            return status(400, "BadRequest", "status.conditions is not a list");
        };
        if conditions.len() > 16 || conditions.iter().any(|c| !c.is_object()) {
            return status(400, "BadRequest", "status.conditions: at most 16 objects");
        }
        let was_approved = self.csrs[i]
            .conditions
            .iter()
            .any(|x| x["type"] == "Approved");
        let approved = conditions
            .iter()
            .any(|x| x["type"] == "Approved" && x["status"] == "True");
        let denied = conditions.iter().any(|x| x["type"] == "Denied");
        // The approval strategy keeps only the conditions.
        self.rv += 1;
        let rv = self.rv;
        let c = &mut self.csrs[i];
        c.conditions = conditions;
        c.rv = rv;
        let (kind, host) = (c.request.kind, c.host);
        let obj = Self::csr_object(c, true);
        if approved && !denied && !was_approved {
            self.approved(kind, host);
        }
        (200, obj)
    }

    /// The kubelet's reaction to an approval: after its client certificate
    /// it registers its node and asks for its serving certificate; after
    /// that one the node is Ready.
    fn approved(&mut self, kind: CsrKind, host: Option<usize>) {
        let Some(i) = host else { return };
        let now = SystemTime::now();
        match kind {
            CsrKind::Client => {
                let h = &mut self.hosts[i];
                if h.client_approved {
                    return;
                }
                h.client_approved = true;
                if let Some(req) = h.serving_csr.take() {
                    self.add_csr(req, Some(i), now);
                }
            }
            CsrKind::Serving => {
                // Only the expected serving request (the right node and
                // address) makes the node Ready; an injected one does not.
                let h = &mut self.hosts[i];
                if h.client_approved && h.serving_csr.is_none() {
                    h.serving_approved = true;
                }
            }
        }
    }

    pub fn view(&self) -> SimView {
        let hosts = self
            .hosts
            .iter()
            .map(|h| HostView {
                name: h.host.name.clone(),
                role: h.host.role,
                macs: h.host.macs.clone(),
                ip: h.host.ip,
                phases: h.phases.clone(),
                node_ready: match h.host.role {
                    Role::Bootstrap => None,
                    Role::ControlPlane => self.bootstrap_complete().then_some(true),
                    Role::Worker => h.client_approved.then_some(h.serving_approved),
                },
            })
            .collect();
        let csrs = self
            .csrs
            .iter()
            .map(|c| CsrView {
                name: c.name.clone(),
                node: c.request.node.clone(),
                kind: c.request.kind,
                username: c.request.username.clone(),
                approved: c
                    .conditions
                    .iter()
                    .find(|x| x["type"] == "Approved" && x["status"] == "True")
                    .map(|x| x["message"].as_str().unwrap_or_default().to_string()),
                denied: c.conditions.iter().any(|x| x["type"] == "Denied"),
            })
            .collect();
        SimView {
            api_answers: self.api_answers(),
            bootstrap_complete: self.bootstrap_complete(),
            masters_schedulable: self.scheduler["spec"]["mastersSchedulable"] == true,
            hosts,
            csrs,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn host(name: &str, role: Role, mac: &str, ip: &str) -> SimHost {
        SimHost {
            name: name.parse().unwrap(),
            role,
            macs: vec![mac.parse().unwrap()],
            ip: ip.parse().unwrap(),
        }
    }

    fn model() -> Model {
        let w = host("worker-0", Role::Worker, "52:54:00:00:00:05", "10.0.0.20");
        let csrs = (
            CsrRequest::kubelet("worker-0", CsrKind::Client, &[]).unwrap(),
            CsrRequest::kubelet("worker-0", CsrKind::Serving, &[w.ip]).unwrap(),
        );
        Model::new(
            vec![
                (
                    host(
                        "bootstrap",
                        Role::Bootstrap,
                        "52:54:00:00:00:01",
                        "10.0.0.5",
                    ),
                    None,
                ),
                (
                    host(
                        "master-0",
                        Role::ControlPlane,
                        "52:54:00:00:00:02",
                        "10.0.0.10",
                    ),
                    None,
                ),
                (w, Some(csrs)),
            ],
            8,
            4,
        )
    }

    #[test]
    fn reports_are_validated_and_nothing_bad_is_stored() {
        let mut m = model();
        let t = SystemTime::now();
        for (body, code) in [
            (&b"mac=52:54:00:00:00:09&phase=bond-up&hostname=x"[..], 404),
            (b"mac=52:54:00:00:00:01&phase=up&hostname=bootstrap", 422),
            (b"mac=zz&phase=bond-up&hostname=bootstrap", 422),
            (b"mac=52:54:00:00:00:01&phase=bond-up", 400),
            (
                b"mac=52:54:00:00:00:01&phase=bond-up&hostname=master-0",
                422,
            ),
            (b"mac=52:54:00:00:00:01&mac=52:54:00:00:00:01", 400),
            (b"mac=52%3Z&phase=bond-up&hostname=bootstrap", 400),
            (b"evil=1", 400),
            (b"\xff\xfe", 400),
        ] {
            let e = m.report(body, t).unwrap_err();
            assert_eq!(e.code, code, "{e:?}");
        }
        assert!(m.view().hosts.iter().all(|h| h.phases.is_empty()));
        m.report(
            b"mac=52%3A54%3A00%3A00%3A00%3A01&phase=ignition-fetched&hostname=bootstrap&detail=ok+then",
            t,
        )
        .unwrap();
        let v = m.view();
        assert_eq!(v.hosts[0].phases[0].detail, "ok then");
        assert!(!v.api_answers);
    }

    #[test]
    fn records_per_host_are_bounded() {
        let mut m = model();
        let t = SystemTime::now();
        let body = b"mac=52:54:00:00:00:02&phase=disk-written&hostname=master-0";
        for _ in 0..4 {
            m.report(body, t).unwrap();
        }
        assert_eq!(m.report(body, t).unwrap_err().code, 429);
    }

    #[test]
    fn the_cluster_follows_the_reports() {
        let mut m = model();
        let t = SystemTime::now();
        m.report(b"mac=52:54:00:00:00:01&phase=bond-up&hostname=bootstrap", t)
            .unwrap();
        assert!(m.api_answers() && !m.bootstrap_complete());
        assert_eq!(m.answer("GET", BOOTSTRAP, None, b"").0, 404);
        m.report(b"mac=52:54:00:00:00:02&phase=bond-up&hostname=master-0", t)
            .unwrap();
        assert!(m.bootstrap_complete());
        m.report(b"mac=52:54:00:00:00:05&phase=bond-up&hostname=worker-0", t)
            .unwrap();
        let (_, list) = m.answer("GET", CSRS, None, b"");
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["spec"]["username"], BOOTSTRAPPER);
        // A stale resourceVersion is a conflict.
        let mut body = items[0].clone();
        body["metadata"]["resourceVersion"] = json!("1");
        body["status"]["conditions"] = json!([{"type": "Approved", "status": "True",
            "message": "policy"}]);
        let put = format!("{CSRS}/csr-00001/approval");
        let bytes = serde_json::to_vec(&body).unwrap();
        assert_eq!(
            m.answer("PUT", &put, Some("application/json"), &bytes).0,
            409
        );
        body["metadata"]["resourceVersion"] = items[0]["metadata"]["resourceVersion"].clone();
        let bytes = serde_json::to_vec(&body).unwrap();
        assert_eq!(
            m.answer("PUT", &put, Some("application/json"), &bytes).0,
            200
        );
        let v = m.view();
        assert_eq!(v.csrs.len(), 2);
        assert_eq!(v.csrs[0].approved.as_deref(), Some("policy"));
        assert_eq!(v.csrs[1].username, "system:node:worker-0");
        assert_eq!(v.hosts[2].node_ready, Some(false));
    }
}
