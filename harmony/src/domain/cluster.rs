//! The cluster's Kubernetes API as the OKD installation uses it (the
//! `ClusterApi` capability of `topology.rs`): node certificate signing
//! requests (CSRs) as typed values, the errors of the API calls, and the
//! pure policy deciding which CSRs Harmony approves.
//!
//! Facts (`/work/shared/notes/vendor-apis.md` §5): a node asks for two
//! certificates [K5] — a kubelet *client* certificate (signer
//! `kubernetes.io/kube-apiserver-client-kubelet`, requested by the
//! `node-bootstrapper` service account of `openshift-machine-config-operator`
//! [K4][K9]) and a kubelet *serving* certificate (signer
//! `kubernetes.io/kubelet-serving`, requested by the node itself as
//! `system:node:<name>` [K5][K9]). Both subjects are
//! `CN=system:node:<name>, O=system:nodes`; only the serving request names
//! the node's DNS names and addresses (Kubernetes' kubelet certificate
//! manager, and `cluster-machine-approver` checks the same shape).
//!
//! The policy approves a CSR only when it is pending, its signer is one of
//! those two, it asks for a certificate of an inventoried worker by that
//! worker's planned host name, it was requested by the identity the signer
//! expects, and (serving) every address it names is one of that worker's
//! planned addresses. Everything else is refused; every decision carries a
//! note saying why, for the operator's log.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::text::safe_text;
use super::values::{Hostname, ValueError};

/// The signer of kubelet client certificates (node bootstrap).
pub const KUBELET_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// The signer of kubelet serving certificates.
pub const KUBELET_SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";
/// Who requests a new node's client certificate on OKD [K4][K9].
pub const NODE_BOOTSTRAPPER: &str =
    "system:serviceaccount:openshift-machine-config-operator:node-bootstrapper";
/// A node's user name (and certificate common name) is this and its name.
pub const NODE_USER_PREFIX: &str = "system:node:";
/// The organization of a node certificate's subject.
pub const NODES_ORGANIZATION: &str = "system:nodes";

/// How much of an untrusted value a note or an error shows.
const SHOWN: usize = 120;

fn shown(s: &str) -> String {
    safe_text(s, SHOWN)
}

/// The name of a CertificateSigningRequest object: a DNS subdomain as
/// Kubernetes requires for object names (1 to 253 of `[a-z0-9.-]`,
/// starting and ending with a letter or digit).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CsrName(String);

impl CsrName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for CsrName {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        let ok = (1..=253).contains(&s.len())
            && s.bytes().all(|c| alnum(c) || c == b'-' || c == b'.')
            && s.bytes().next().is_some_and(alnum)
            && s.bytes().last().is_some_and(alnum);
        if !ok {
            return Err(ValueError::new(
                "CSR name",
                s,
                "must be 1 to 253 of a-z 0-9 - ., starting and ending with a letter or digit",
            ));
        }
        Ok(Self(s.to_string()))
    }
}

impl fmt::Display for CsrName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who is asked to sign (`spec.signerName`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsrSigner {
    /// [`KUBELET_CLIENT_SIGNER`].
    KubeletClient,
    /// [`KUBELET_SERVING_SIGNER`].
    KubeletServing,
    /// Any other signer, as the API server gave it (untrusted text).
    Other(String),
}

impl CsrSigner {
    pub fn from_name(name: &str) -> Self {
        match name {
            KUBELET_CLIENT_SIGNER => Self::KubeletClient,
            KUBELET_SERVING_SIGNER => Self::KubeletServing,
            other => Self::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::KubeletClient => KUBELET_CLIENT_SIGNER,
            Self::KubeletServing => KUBELET_SERVING_SIGNER,
            Self::Other(s) => s,
        }
    }
}

/// Where a CSR stands, from its `status.conditions`: no condition is
/// pending [K5]; `Denied` and `Failed` win over `Approved`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrState {
    Pending,
    Approved,
    Denied,
    Failed,
}

impl CsrState {
    /// The state from the `(type, status)` pairs of the conditions.
    pub fn from_conditions<'a>(conditions: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let (mut approved, mut denied, mut failed) = (false, false, false);
        for (kind, status) in conditions {
            if status != "True" {
                continue;
            }
            match kind {
                "Approved" => approved = true,
                "Denied" => denied = true,
                "Failed" => failed = true,
                _ => {}
            }
        }
        if denied {
            Self::Denied
        } else if failed {
            Self::Failed
        } else if approved {
            Self::Approved
        } else {
            Self::Pending
        }
    }
}

impl fmt::Display for CsrState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Failed => "failed",
        })
    }
}

/// What the PKCS#10 request inside a CSR asks for (parsed in infra with
/// a PKCS#10 parser). Strings are untrusted: show them only through
/// [`safe_text`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CsrRequest {
    /// Every common name of the subject (a node's has exactly one).
    pub common_names: Vec<String>,
    /// Every organization of the subject.
    pub organizations: Vec<String>,
    /// The DNS names of the subject alternative names.
    pub dns_names: Vec<String>,
    /// The IP addresses of the subject alternative names.
    pub ip_addresses: Vec<IpAddr>,
    /// Alternative names of any other kind (e-mail, URI, ...), as text.
    pub other_names: Vec<String>,
}

/// A CertificateSigningRequest as the cluster holds it. Strings are
/// untrusted: show them only through [`safe_text`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCsr {
    pub name: CsrName,
    /// `metadata.uid`: approving checks that the object is still this one
    /// (a CSR's request cannot change, so the same uid is the same request).
    pub uid: String,
    pub signer: CsrSigner,
    /// `spec.username`: who created it.
    pub username: String,
    pub groups: Vec<String>,
    /// `spec.usages` (e.g. `digital signature`, `client auth`).
    pub usages: Vec<String>,
    pub state: CsrState,
    /// The parsed request, or why it could not be read.
    pub request: Result<CsrRequest, String>,
}

/// A call to the cluster's API failed. Every variant names the endpoint
/// (method and URL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterApiError {
    /// The API server answered with an error `Status`.
    #[error("{endpoint}: the API server answered {code} {reason}: {message}")]
    Api {
        endpoint: String,
        code: u16,
        /// `Status.reason` (e.g. `Forbidden`), sanitised.
        reason: String,
        /// `Status.message`, sanitised.
        message: String,
    },
    /// No complete answer within the call's time limit.
    #[error("{endpoint}: no answer within {after:?}")]
    Timeout { endpoint: String, after: Duration },
    /// The request did not get an HTTP answer (connection, TLS).
    #[error("{endpoint}: {message}")]
    Transport { endpoint: String, message: String },
    /// The answer does not have the documented shape.
    #[error("{endpoint}: unexpected answer: {message}")]
    Invalid { endpoint: String, message: String },
    /// A CSR that cannot be approved (denied, failed, replaced).
    #[error("{endpoint}: CSR {name} not approved: {message}")]
    NotApprovable {
        endpoint: String,
        name: CsrName,
        message: String,
    },
    /// The object kept changing under us (HTTP 409 on every attempt).
    #[error("{endpoint}: still conflicting after {attempts} attempts")]
    Conflict { endpoint: String, attempts: u32 },
    /// The kubeconfig does not exist yet: `openshift-install create
    /// ignition-configs` writes it (`<install dir>/auth/kubeconfig`). Steps
    /// read this as "the cluster is not there yet", e.g. in a dry run.
    #[error(
        "kubeconfig {}: not there yet (openshift-install create ignition-configs writes it)",
        kubeconfig.display()
    )]
    NotYetAvailable { kubeconfig: PathBuf },
    /// The kubeconfig exists but cannot be used (unreadable, refused).
    #[error("kubeconfig {}: {message}", kubeconfig.display())]
    Kubeconfig {
        kubeconfig: PathBuf,
        message: String,
    },
}

impl ClusterApiError {
    /// The endpoint the failed call went to.
    pub fn endpoint(&self) -> &str {
        match self {
            Self::Api { endpoint, .. }
            | Self::Timeout { endpoint, .. }
            | Self::Transport { endpoint, .. }
            | Self::Invalid { endpoint, .. }
            | Self::NotApprovable { endpoint, .. }
            | Self::Conflict { endpoint, .. } => endpoint,
            Self::NotYetAvailable { kubeconfig } | Self::Kubeconfig { kubeconfig, .. } => {
                kubeconfig
                    .to_str()
                    .unwrap_or("the kubeconfig (a non UTF-8 path)")
            }
        }
    }

    /// The cluster is not there yet: no kubeconfig yet.
    pub fn is_not_yet(&self) -> bool {
        matches!(self, Self::NotYetAvailable { .. })
    }

    /// Worth asking again later: no kubeconfig yet, no answer (timeout,
    /// connection), or the API server busy or starting (429, 5xx). A
    /// refusal (401, 403, other 4xx), an answer of the wrong shape, a bad
    /// kubeconfig or an unapprovable CSR is not.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::NotYetAvailable { .. } | Self::Timeout { .. } | Self::Transport { .. } => true,
            Self::Api { code, .. } => *code == 429 || *code >= 500,
            Self::Invalid { .. }
            | Self::NotApprovable { .. }
            | Self::Conflict { .. }
            | Self::Kubeconfig { .. } => false,
        }
    }
}

/// A node's `Ready` condition (`status.conditions[type=Ready].status`);
/// a node without that condition yet is `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReadyStatus {
    True,
    False,
    Unknown,
}

impl ReadyStatus {
    /// From the condition's status text (`True`, `False`, anything else).
    pub fn from_status(status: Option<&str>) -> Self {
        match status {
            Some("True") => Self::True,
            Some("False") => Self::False,
            _ => Self::Unknown,
        }
    }
}

impl fmt::Display for ReadyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::True => "Ready",
            Self::False => "NotReady",
            Self::Unknown => "Ready unknown",
        })
    }
}

/// A node of the cluster: its name (a host name, validated) and whether it
/// is Ready.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClusterNode {
    pub name: Hostname,
    pub ready: ReadyStatus,
}

impl ClusterNode {
    pub fn is_ready(&self) -> bool {
        self.ready == ReadyStatus::True
    }
}

/// A worker as the installation plans it: the host name its node must
/// register under and the addresses it is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerIdentity {
    pub hostname: Hostname,
    pub addresses: Vec<IpAddr>,
}

/// Which of a node's two certificates a CSR asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrKind {
    Client,
    Serving,
}

impl fmt::Display for CsrKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Client => "client",
            Self::Serving => "serving",
        })
    }
}

/// What the policy decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsrVerdict {
    Approve { kind: CsrKind, worker: Hostname },
    Refuse,
}

/// A decision about one CSR and why (the note goes to the operator's log;
/// untrusted parts of it are sanitised).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrDecision {
    pub csr: CsrName,
    pub verdict: CsrVerdict,
    pub note: String,
}

impl CsrDecision {
    pub fn approved(&self) -> bool {
        matches!(self.verdict, CsrVerdict::Approve { .. })
    }
}

/// The decision for each CSR, in order.
pub fn decide_csrs(csrs: &[NodeCsr], workers: &[WorkerIdentity]) -> Vec<CsrDecision> {
    csrs.iter().map(|c| decide_csr(c, workers)).collect()
}

/// Decides one CSR (see the module doc for the policy).
pub fn decide_csr(csr: &NodeCsr, workers: &[WorkerIdentity]) -> CsrDecision {
    match check(csr, workers) {
        Ok((kind, worker, note)) => CsrDecision {
            csr: csr.name.clone(),
            verdict: CsrVerdict::Approve { kind, worker },
            note: format!("approved: {note}"),
        },
        Err(why) => CsrDecision {
            csr: csr.name.clone(),
            verdict: CsrVerdict::Refuse,
            note: format!("refused: {why}"),
        },
    }
}

const CLIENT_USAGES: [&str; 3] = ["digital signature", "key encipherment", "client auth"];
const SERVING_USAGES: [&str; 3] = ["digital signature", "key encipherment", "server auth"];

fn check(csr: &NodeCsr, workers: &[WorkerIdentity]) -> Result<(CsrKind, Hostname, String), String> {
    if csr.state != CsrState::Pending {
        return Err(format!("it is {}, not pending", csr.state));
    }
    let kind = match &csr.signer {
        CsrSigner::KubeletClient => CsrKind::Client,
        CsrSigner::KubeletServing => CsrKind::Serving,
        CsrSigner::Other(s) => {
            return Err(format!(
                "signer {} is neither {KUBELET_CLIENT_SIGNER} nor {KUBELET_SERVING_SIGNER}",
                shown(s)
            ));
        }
    };
    let req = csr
        .request
        .as_ref()
        .map_err(|why| format!("its request cannot be read: {}", shown(why)))?;
    let node = node_name(req)?;
    let worker = find_worker(&node, workers)?;
    let (allowed_usages, wanted_usage) = match kind {
        CsrKind::Client => (&CLIENT_USAGES, "client auth"),
        CsrKind::Serving => (&SERVING_USAGES, "server auth"),
    };
    if let Some(u) = csr
        .usages
        .iter()
        .find(|u| !allowed_usages.contains(&u.as_str()))
    {
        return Err(format!(
            "{kind} CSR for {node} asks for usage {:?}",
            shown(u)
        ));
    }
    if !csr.usages.iter().any(|u| u == wanted_usage) {
        return Err(format!(
            "{kind} CSR for {node} lacks usage {wanted_usage:?}"
        ));
    }
    if let Some(o) = req.other_names.first() {
        return Err(format!(
            "{kind} CSR for {node} names {}, which no node certificate has",
            shown(o)
        ));
    }
    match kind {
        CsrKind::Client => {
            if csr.username != NODE_BOOTSTRAPPER {
                return Err(format!(
                    "client CSR for {node} was requested by {}, not the node-bootstrapper service account",
                    shown(&csr.username)
                ));
            }
            if !req.dns_names.is_empty() || !req.ip_addresses.is_empty() {
                return Err(format!(
                    "client CSR for {node} names DNS names or addresses (a client certificate has none)"
                ));
            }
            Ok((
                kind,
                worker.hostname.clone(),
                format!(
                    "client certificate of worker {node}, requested by the node-bootstrapper service account"
                ),
            ))
        }
        CsrKind::Serving => {
            let expected_user = format!("{NODE_USER_PREFIX}{node}");
            if csr.username != expected_user {
                return Err(format!(
                    "serving CSR for {node} was requested by {}, not {expected_user}",
                    shown(&csr.username)
                ));
            }
            if let Some(d) = req
                .dns_names
                .iter()
                .find(|d| d.as_str() != node.as_str() && d.as_str() != node.short())
            {
                return Err(format!(
                    "serving CSR for {node} names DNS name {}, not the worker's host name",
                    shown(d)
                ));
            }
            if req.ip_addresses.is_empty() {
                return Err(format!("serving CSR for {node} names no address"));
            }
            if let Some(ip) = req
                .ip_addresses
                .iter()
                .find(|ip| !worker.addresses.contains(ip))
            {
                let planned: Vec<String> =
                    worker.addresses.iter().map(ToString::to_string).collect();
                return Err(format!(
                    "serving CSR for {node} names address {ip}, which is not one of its planned addresses ({})",
                    planned.join(", ")
                ));
            }
            let ips: Vec<String> = req.ip_addresses.iter().map(ToString::to_string).collect();
            Ok((
                kind,
                worker.hostname.clone(),
                format!(
                    "serving certificate of worker {node} for {}, requested by the node itself",
                    ips.join(", ")
                ),
            ))
        }
    }
}

/// The node name of a request's subject: exactly one
/// `CN=system:node:<name>` with a valid host name, and `O=system:nodes`.
fn node_name(req: &CsrRequest) -> Result<Hostname, String> {
    let [cn] = req.common_names.as_slice() else {
        return Err(format!(
            "its subject has {} common names, not one",
            req.common_names.len()
        ));
    };
    let Some(raw) = cn.strip_prefix(NODE_USER_PREFIX) else {
        return Err(format!(
            "its subject CN {} is not {NODE_USER_PREFIX}<name>",
            shown(cn)
        ));
    };
    let name = raw
        .parse::<Hostname>()
        .ok()
        .filter(|h| h.as_str() == raw)
        .ok_or_else(|| format!("its node name {} is not a lower-case host name", shown(raw)))?;
    if req.organizations != [NODES_ORGANIZATION] {
        let orgs: Vec<String> = req.organizations.iter().map(|o| shown(o)).collect();
        return Err(format!(
            "its subject organizations are [{}], not [{NODES_ORGANIZATION}]",
            orgs.join(", ")
        ));
    }
    Ok(name)
}

fn find_worker<'a>(
    node: &Hostname,
    workers: &'a [WorkerIdentity],
) -> Result<&'a WorkerIdentity, String> {
    let mut found = workers.iter().filter(|w| w.hostname == *node);
    match (found.next(), found.next()) {
        (Some(w), None) => Ok(w),
        (None, _) => Err(format!("node name {node} is not an inventoried worker")),
        (Some(_), Some(_)) => Err(format!(
            "node name {node} is planned for more than one worker"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(name: &str, ips: &[&str]) -> WorkerIdentity {
        WorkerIdentity {
            hostname: name.parse().unwrap(),
            addresses: ips.iter().map(|i| i.parse().unwrap()).collect(),
        }
    }

    fn workers() -> Vec<WorkerIdentity> {
        vec![
            worker("worker-0", &["10.0.0.20", "fd00::20"]),
            worker("worker-1", &["10.0.0.21"]),
        ]
    }

    fn subject(node: &str) -> CsrRequest {
        CsrRequest {
            common_names: vec![format!("system:node:{node}")],
            organizations: vec![NODES_ORGANIZATION.into()],
            ..CsrRequest::default()
        }
    }

    fn client(node: &str) -> NodeCsr {
        NodeCsr {
            name: "csr-abcde".parse().unwrap(),
            uid: "u1".into(),
            signer: CsrSigner::KubeletClient,
            username: NODE_BOOTSTRAPPER.into(),
            groups: vec![
                "system:serviceaccounts:openshift-machine-config-operator".into(),
                "system:serviceaccounts".into(),
                "system:authenticated".into(),
            ],
            usages: vec!["digital signature".into(), "client auth".into()],
            state: CsrState::Pending,
            request: Ok(subject(node)),
        }
    }

    fn serving(node: &str, ips: &[&str]) -> NodeCsr {
        let mut req = subject(node);
        req.dns_names = vec![node.into()];
        req.ip_addresses = ips.iter().map(|i| i.parse().unwrap()).collect();
        NodeCsr {
            name: "csr-fghij".parse().unwrap(),
            uid: "u2".into(),
            signer: CsrSigner::KubeletServing,
            username: format!("system:node:{node}"),
            groups: vec!["system:nodes".into(), "system:authenticated".into()],
            usages: vec![
                "digital signature".into(),
                "key encipherment".into(),
                "server auth".into(),
            ],
            state: CsrState::Pending,
            request: Ok(req),
        }
    }

    fn refused(csr: &NodeCsr, because: &str) {
        let d = decide_csr(csr, &workers());
        assert_eq!(d.verdict, CsrVerdict::Refuse, "{}", d.note);
        assert!(d.note.starts_with("refused: "), "{}", d.note);
        assert!(d.note.contains(because), "{:?} lacks {because:?}", d.note);
    }

    #[test]
    fn a_workers_client_csr_from_the_bootstrapper_is_approved() {
        let d = decide_csr(&client("worker-0"), &workers());
        assert_eq!(
            d.verdict,
            CsrVerdict::Approve {
                kind: CsrKind::Client,
                worker: "worker-0".parse().unwrap()
            }
        );
        assert_eq!(
            d.note,
            "approved: client certificate of worker worker-0, requested by the node-bootstrapper service account"
        );
        assert_eq!(d.csr.as_str(), "csr-abcde");
    }

    #[test]
    fn a_workers_serving_csr_for_its_own_addresses_is_approved() {
        let d = decide_csr(&serving("worker-0", &["10.0.0.20", "fd00::20"]), &workers());
        assert!(d.approved(), "{}", d.note);
        assert_eq!(
            d.note,
            "approved: serving certificate of worker worker-0 for 10.0.0.20, fd00::20, requested by the node itself"
        );
        // One of its addresses is enough; the short name is its own too.
        let mut one = serving("worker-0.lab.example.com", &["10.0.0.20"]);
        one.request.as_mut().unwrap().dns_names = vec!["worker-0".into()];
        let fqdn = [worker("worker-0.lab.example.com", &["10.0.0.20"])];
        assert!(decide_csr(&one, &fqdn).approved());
    }

    #[test]
    fn only_pending_csrs_are_approved() {
        for state in [CsrState::Approved, CsrState::Denied, CsrState::Failed] {
            let mut c = client("worker-0");
            c.state = state;
            refused(&c, &format!("it is {state}, not pending"));
        }
    }

    #[test]
    fn other_signers_are_refused() {
        let mut c = client("worker-0");
        c.signer = CsrSigner::from_name("kubernetes.io/kube-apiserver-client");
        refused(&c, "signer kubernetes.io/kube-apiserver-client is neither");
        c.signer = CsrSigner::from_name("example.com/evil\u{1b}[2J");
        refused(&c, "signer example.com/evil__2J is neither");
    }

    #[test]
    fn names_that_are_not_inventoried_workers_are_refused() {
        refused(
            &client("worker-9"),
            "node name worker-9 is not an inventoried worker",
        );
        // A control-plane or bootstrap name is not a worker either.
        refused(
            &client("master-0"),
            "node name master-0 is not an inventoried worker",
        );
        refused(
            &serving("worker-9", &["10.0.0.20"]),
            "node name worker-9 is not an inventoried worker",
        );
        // Case and trailing dots do not make a match.
        refused(
            &client("Worker-0"),
            "node name Worker-0 is not a lower-case host name",
        );
        refused(
            &client("worker-0."),
            "node name worker-0. is not a lower-case host name",
        );
        let twice = [worker("worker-0", &[]), worker("worker-0", &[])];
        let d = decide_csr(&client("worker-0"), &twice);
        assert!(!d.approved() && d.note.contains("more than one worker"));
    }

    #[test]
    fn the_subject_must_be_a_node() {
        let mut c = client("worker-0");
        c.request.as_mut().unwrap().common_names = vec!["worker-0".into()];
        refused(&c, "its subject CN worker-0 is not system:node:<name>");
        c.request.as_mut().unwrap().common_names = vec![];
        refused(&c, "its subject has 0 common names");
        let mut c = client("worker-0");
        c.request.as_mut().unwrap().organizations = vec!["system:masters".into()];
        refused(&c, "its subject organizations are [system:masters]");
        let mut c = client("worker-0");
        c.request = Err("not a PEM certificate request".into());
        refused(
            &c,
            "its request cannot be read: not a PEM certificate request",
        );
    }

    #[test]
    fn the_client_csr_must_come_from_the_bootstrapper_and_name_nothing() {
        let mut c = client("worker-0");
        c.username = "system:node:worker-0".into();
        refused(
            &c,
            "requested by system:node:worker-0, not the node-bootstrapper service account",
        );
        let mut c = client("worker-0");
        c.request.as_mut().unwrap().ip_addresses = vec!["10.0.0.20".parse().unwrap()];
        refused(&c, "names DNS names or addresses");
        let mut c = client("worker-0");
        c.usages.push("server auth".into());
        refused(&c, "asks for usage \"server auth\"");
        let mut c = client("worker-0");
        c.usages = vec!["digital signature".into()];
        refused(&c, "lacks usage \"client auth\"");
    }

    #[test]
    fn the_serving_csr_must_come_from_the_node_and_name_only_its_addresses() {
        let mut c = serving("worker-0", &["10.0.0.20"]);
        c.username = "system:node:worker-1".into();
        refused(
            &c,
            "requested by system:node:worker-1, not system:node:worker-0",
        );
        c.username = NODE_BOOTSTRAPPER.into();
        refused(&c, "not system:node:worker-0");
        refused(
            &serving("worker-0", &["10.0.0.20", "10.0.0.21"]),
            "names address 10.0.0.21, which is not one of its planned addresses (10.0.0.20, fd00::20)",
        );
        refused(
            &serving("worker-1", &["10.0.0.20"]),
            "names address 10.0.0.20",
        );
        refused(&serving("worker-0", &[]), "names no address");
        let mut c = serving("worker-0", &["10.0.0.20"]);
        c.request.as_mut().unwrap().dns_names = vec!["api.lab.example.com".into()];
        refused(&c, "names DNS name api.lab.example.com");
        let mut c = serving("worker-0", &["10.0.0.20"]);
        c.request.as_mut().unwrap().other_names = vec!["URI:https://evil".into()];
        refused(&c, "names URI:https://evil");
        let mut c = serving("worker-0", &["10.0.0.20"]);
        c.usages = vec!["digital signature".into(), "client auth".into()];
        refused(&c, "asks for usage \"client auth\"");
    }

    #[test]
    fn decisions_keep_the_order_and_names() {
        let csrs = [
            client("worker-0"),
            client("worker-9"),
            serving("worker-1", &["10.0.0.21"]),
        ];
        let d = decide_csrs(&csrs, &workers());
        let got: Vec<(&str, bool)> = d.iter().map(|d| (d.csr.as_str(), d.approved())).collect();
        assert_eq!(
            got,
            [
                ("csr-abcde", true),
                ("csr-abcde", false),
                ("csr-fghij", true)
            ]
        );
    }

    #[test]
    fn transient_errors_and_ready_states() {
        let api = |code| ClusterApiError::Api {
            endpoint: "GET x".into(),
            code,
            reason: String::new(),
            message: String::new(),
        };
        assert!(api(503).is_transient() && api(429).is_transient());
        assert!(!api(401).is_transient() && !api(403).is_transient() && !api(404).is_transient());
        let missing = ClusterApiError::NotYetAvailable {
            kubeconfig: "/i/auth/kubeconfig".into(),
        };
        assert!(missing.is_not_yet() && missing.is_transient());
        assert_eq!(missing.endpoint(), "/i/auth/kubeconfig");
        let bad = ClusterApiError::Kubeconfig {
            kubeconfig: "/i/auth/kubeconfig".into(),
            message: "no".into(),
        };
        assert!(!bad.is_transient() && !bad.is_not_yet());
        assert_eq!(ReadyStatus::from_status(Some("True")), ReadyStatus::True);
        assert_eq!(ReadyStatus::from_status(Some("False")), ReadyStatus::False);
        assert_eq!(ReadyStatus::from_status(Some("true")), ReadyStatus::Unknown);
        assert_eq!(ReadyStatus::from_status(None), ReadyStatus::Unknown);
    }

    #[test]
    fn csr_states_and_names() {
        assert_eq!(CsrState::from_conditions([]), CsrState::Pending);
        assert_eq!(
            CsrState::from_conditions([("Approved", "True")]),
            CsrState::Approved
        );
        assert_eq!(
            CsrState::from_conditions([("Approved", "False")]),
            CsrState::Pending
        );
        assert_eq!(
            CsrState::from_conditions([("Approved", "True"), ("Denied", "True")]),
            CsrState::Denied
        );
        assert_eq!(
            CsrState::from_conditions([("Approved", "True"), ("Failed", "True")]),
            CsrState::Failed
        );
        assert!("csr-8b2x9".parse::<CsrName>().is_ok());
        assert!("system-node-worker-0.1".parse::<CsrName>().is_ok());
        for bad in ["", "CSR-1", "-a", "a-", "a/b", "a b", &"a".repeat(254)] {
            assert!(bad.parse::<CsrName>().is_err(), "{bad:?}");
        }
        assert_eq!(
            CsrSigner::from_name(KUBELET_SERVING_SIGNER),
            CsrSigner::KubeletServing
        );
        assert_eq!(CsrSigner::KubeletClient.as_str(), KUBELET_CLIENT_SIGNER);
    }
}
