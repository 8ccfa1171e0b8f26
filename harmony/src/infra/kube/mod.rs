//! The cluster's Kubernetes API through the `kube` crate, with the
//! kubeconfig `openshift-install` writes (`<dir>/auth/kubeconfig`: the
//! cluster's CA and the `admin` client certificate; openshift/installer
//! `pkg/asset/kubeconfig/{admin,kubeconfig}.go`). Implements
//! [`ClusterApi`]:
//! - bootstrap: `GET /api/v1/namespaces/kube-system/configmaps/bootstrap`,
//!   `data.status == "complete"` [K1][K2];
//! - CSRs: `GET /apis/certificates.k8s.io/v1/certificatesigningrequests`,
//!   `GET .../<name>`, `PUT .../<name>/approval` [K3][K9] (`csr.rs`);
//! - `GET /version` (does the API answer at all) and `GET /api/v1/nodes`
//!   (names and `Ready` conditions), documented Kubernetes endpoints;
//! - `GET` and merge `PATCH` of
//!   `/apis/config.openshift.io/v1/schedulers/cluster` [K6] (path: the
//!   OpenShift docs "Configuring control plane nodes as schedulable",
//!   whose example object has that `selfLink`; `oc patch
//!   schedulers.config.openshift.io cluster --type merge`).
//!
//! TLS trusts only the kubeconfig's CA (a kubeconfig without one, or with
//! `insecure-skip-tls-verify`, is refused), and exec or auth-provider
//! plugins are refused (Harmony starts processes only through
//! `infra::process`). Every call has a time limit; errors name the endpoint
//! and the API server's `Status.message` (`call.rs`).

mod call;
pub mod csr;
pub mod lazy;

pub use lazy::LazyClusterApi;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ::kube::api::PostParams;
use ::kube::api::{Api, ApiResource, DynamicObject, GetParams, ListParams, Patch, PatchParams};
use ::kube::config::{KubeConfigOptions, Kubeconfig};
use ::kube::{Client, Config};
use async_trait::async_trait;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use serde_json::{Value, json};

use crate::domain::text::safe_text;
use crate::domain::{
    Change, ClusterApi, ClusterApiError, ClusterNode, CsrState, Hostname, NodeCsr, ReadyStatus,
    Topology,
};
use call::{Endpoint, is_conflict, within, within_reach};

const CSR_PATH: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
const BOOTSTRAP_PATH: &str = "/api/v1/namespaces/kube-system/configmaps/bootstrap";
const SCHEDULER_PATH: &str = "/apis/config.openshift.io/v1/schedulers/cluster";
const VERSION_PATH: &str = "/version";
const NODES_PATH: &str = "/api/v1/nodes";
/// Attempts of an approval that meets 409 Conflict (kubectl makes 10).
const APPROVE_ATTEMPTS: u32 = 10;

/// Where the API is and how long a call may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeApiConfig {
    /// The kubeconfig (`openshift-install`'s `auth/kubeconfig`).
    pub kubeconfig: PathBuf,
    /// Reach the API server at this `https://` URL instead of the
    /// kubeconfig's (e.g. the load balancer's address when the Harmony host
    /// does not resolve `api.<cluster>.<domain>`); the server certificate
    /// is still checked against the kubeconfig's host name.
    pub server: Option<String>,
    /// The time limit of each call (connect, TLS, request and answer).
    pub call_timeout: Duration,
}

impl KubeApiConfig {
    /// The kubeconfig at `path`, 30 s per call.
    pub fn new(kubeconfig: impl Into<PathBuf>) -> Self {
        Self {
            kubeconfig: kubeconfig.into(),
            server: None,
            call_timeout: Duration::from_secs(30),
        }
    }
}

/// The kubeconfig could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig { path: PathBuf, message: String },
    #[error("kubeconfig {path}: {field}: {reason}")]
    Refused {
        path: PathBuf,
        field: &'static str,
        reason: String,
    },
    #[error("API client for {server}: {message}")]
    Client { server: String, message: String },
}

/// The cluster's API (see the module doc).
#[derive(Clone)]
pub struct KubeClusterApi {
    name: String,
    client: Client,
    server: String,
    timeout: Duration,
}

impl std::fmt::Debug for KubeClusterApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeClusterApi")
            .field("name", &self.name)
            .field("server", &self.server)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl KubeClusterApi {
    /// Reads the kubeconfig (its current context) and builds the client;
    /// nothing is sent yet.
    pub async fn from_config(name: &str, cfg: &KubeApiConfig) -> Result<Self, KubeError> {
        let path = cfg.kubeconfig.as_path();
        let kerr = |e: &dyn std::fmt::Display| KubeError::Kubeconfig {
            path: path.to_path_buf(),
            message: safe_text(&e.to_string(), 300),
        };
        let kubeconfig = Kubeconfig::read_from(path).map_err(|e| kerr(&e))?;
        let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| kerr(&e))?;
        check_config(path, &config)?;
        if let Some(server) = &cfg.server {
            let kubeconfig_host = config.cluster_url.host().map(str::to_string);
            let refuse = |reason: &str| KubeError::Refused {
                path: path.to_path_buf(),
                field: "server",
                reason: format!("{} {reason}", safe_text(server, 120)),
            };
            config.cluster_url = server.parse().map_err(|_| refuse("is not a URL"))?;
            if config.cluster_url.scheme_str() != Some("https") {
                return Err(refuse("is not https"));
            }
            if config.tls_server_name.is_none() {
                config.tls_server_name = kubeconfig_host;
            }
        }
        let server = config.cluster_url.to_string();
        // Backstops only: each call's own limit (`call::within`, the same
        // `call_timeout`) ends it first and names it a timeout.
        let backstop = cfg.call_timeout + Duration::from_secs(1);
        config.connect_timeout = Some(backstop);
        config.read_timeout = Some(backstop);
        config.write_timeout = Some(backstop);
        // One request per call: the Scores poll, and an error is reported.
        config.default_retry = false;
        let client = Client::try_from(config).map_err(|e| KubeError::Client {
            server: server.clone(),
            message: safe_text(&e.to_string(), 300),
        })?;
        Ok(Self {
            name: name.to_string(),
            client,
            server: server.trim_end_matches('/').to_string(),
            timeout: cfg.call_timeout,
        })
    }

    fn endpoint(&self, method: &str, path: &str) -> Endpoint {
        Endpoint::new(method, &self.server, path)
    }

    fn csrs(&self) -> Api<CertificateSigningRequest> {
        Api::all(self.client.clone())
    }

    fn schedulers(&self) -> Api<DynamicObject> {
        let resource = ApiResource {
            group: "config.openshift.io".into(),
            version: "v1".into(),
            api_version: "config.openshift.io/v1".into(),
            kind: "Scheduler".into(),
            plural: "schedulers".into(),
        };
        Api::all_with(self.client.clone(), &resource)
    }

    /// The CSR `name` exactly as the API server returns it.
    async fn csr_json(&self, name: &str, endpoint: &Endpoint) -> Result<Value, ClusterApiError> {
        let req = ::kube::core::Request::new(CSR_PATH)
            .get(name, &GetParams::default())
            .map_err(|e| endpoint.invalid(e.to_string()))?;
        within(endpoint, self.timeout, self.client.request::<Value>(req)).await
    }
}

/// The kubeconfig must pin the cluster's CA, use https and no plugins.
fn check_config(path: &Path, config: &Config) -> Result<(), KubeError> {
    let refuse = |field, reason: &str| KubeError::Refused {
        path: path.to_path_buf(),
        field,
        reason: reason.to_string(),
    };
    if config.cluster_url.scheme_str() != Some("https") {
        return Err(refuse("server", "the API server URL must be https"));
    }
    if config.accept_invalid_certs {
        return Err(refuse(
            "insecure-skip-tls-verify",
            "the API server's certificate must be checked",
        ));
    }
    if config.root_cert.as_ref().is_none_or(|c| c.is_empty()) {
        return Err(refuse(
            "certificate-authority-data",
            "the cluster's CA is required (openshift-install writes it)",
        ));
    }
    if config.auth_info.exec.is_some() || config.auth_info.auth_provider.is_some() {
        return Err(refuse(
            "user",
            "exec and auth-provider plugins are not run; use the installer's client certificate",
        ));
    }
    Ok(())
}

impl Topology for KubeClusterApi {
    fn name(&self) -> &str {
        &self.name
    }
}

#[async_trait]
impl ClusterApi for KubeClusterApi {
    fn api_server(&self) -> &str {
        &self.server
    }

    async fn api_answers(&self) -> Result<bool, ClusterApiError> {
        let endpoint = self.endpoint("GET", VERSION_PATH);
        let info = within_reach(&endpoint, self.timeout, self.client.apiserver_version()).await?;
        let Some(info) = info else {
            return Ok(false);
        };
        if info.git_version.is_empty() {
            return Err(endpoint.invalid("the version answer has an empty gitVersion"));
        }
        tracing::debug!(
            server = self.server.as_str(),
            version = safe_text(&info.git_version, 60),
            "the API answers"
        );
        Ok(true)
    }

    async fn nodes(&self) -> Result<Vec<ClusterNode>, ClusterApiError> {
        let endpoint = self.endpoint("GET", NODES_PATH);
        let api: Api<Node> = Api::all(self.client.clone());
        let list = within(&endpoint, self.timeout, api.list(&ListParams::default())).await?;
        list.items
            .iter()
            .map(|n| node_of(&endpoint, n))
            .collect::<Result<Vec<_>, _>>()
    }

    async fn bootstrap_complete(&self) -> Result<bool, ClusterApiError> {
        let endpoint = self.endpoint("GET", BOOTSTRAP_PATH);
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), "kube-system");
        let cm = within(&endpoint, self.timeout, api.get_opt("bootstrap")).await?;
        let status = cm
            .as_ref()
            .and_then(|c| c.data.as_ref())
            .and_then(|d| d.get("status"));
        tracing::debug!(
            present = cm.is_some(),
            status = status.map(|s| safe_text(s, 40)),
            "bootstrap ConfigMap"
        );
        Ok(status.is_some_and(|s| s == "complete"))
    }

    async fn pending_csrs(&self) -> Result<Vec<NodeCsr>, ClusterApiError> {
        let endpoint = self.endpoint("GET", CSR_PATH);
        let list = within(
            &endpoint,
            self.timeout,
            self.csrs().list(&ListParams::default()),
        )
        .await?;
        let mut out = Vec::new();
        for obj in &list.items {
            if csr::state_of(obj) != CsrState::Pending {
                continue;
            }
            match csr::node_csr(obj) {
                Ok(c) => out.push(c),
                Err(why) => tracing::warn!(
                    endpoint = endpoint.as_str(),
                    "CSR left out: {}",
                    safe_text(&why, 200)
                ),
            }
        }
        Ok(out)
    }

    async fn approve_csr(&self, csr: &NodeCsr, message: &str) -> Result<Change, ClusterApiError> {
        let name = csr.name.as_str();
        let get = self.endpoint("GET", &format!("{CSR_PATH}/{name}"));
        let put = self.endpoint("PUT", &format!("{CSR_PATH}/{name}/approval"));
        let not_approvable =
            |endpoint: &Endpoint, message: String| ClusterApiError::NotApprovable {
                endpoint: endpoint.as_str().to_string(),
                name: csr.name.clone(),
                message,
            };
        for attempt in 1..=APPROVE_ATTEMPTS {
            let current = self.csr_json(name, &get).await?;
            let typed: CertificateSigningRequest = serde_json::from_value(current.clone())
                .map_err(|e| get.invalid(safe_text(&e.to_string(), 200)))?;
            let uid = typed.metadata.uid.as_deref().unwrap_or_default();
            if uid != csr.uid {
                return Err(not_approvable(
                    &get,
                    format!(
                        "it was replaced (uid {} is not the decided {})",
                        safe_text(uid, 60),
                        safe_text(&csr.uid, 60)
                    ),
                ));
            }
            match csr::state_of(&typed) {
                CsrState::Pending => {}
                CsrState::Approved => return Ok(Change::Unchanged),
                state => return Err(not_approvable(&get, format!("it is {state}"))),
            }
            let now = k8s_openapi::jiff::Timestamp::now();
            let body = csr::approval_body(current, message, now).map_err(|e| get.invalid(e))?;
            let answer = within(
                &put,
                self.timeout,
                self.csrs()
                    .replace_subresource("approval", name, &PostParams::default(), &body),
            )
            .await;
            match answer {
                Ok(obj) => {
                    let state = csr::state_of(&obj);
                    if state != CsrState::Approved {
                        return Err(put
                            .invalid(format!("the approval was accepted but the CSR is {state}")));
                    }
                    tracing::info!(csr = name, "CSR approved: {}", safe_text(message, 300));
                    return Ok(Change::Applied);
                }
                Err(e) if is_conflict(&e) && attempt < APPROVE_ATTEMPTS => {
                    tracing::debug!(csr = name, attempt, "approval conflict, reading again");
                }
                Err(e) if is_conflict(&e) => {
                    return Err(ClusterApiError::Conflict {
                        endpoint: put.as_str().to_string(),
                        attempts: APPROVE_ATTEMPTS,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        Err(ClusterApiError::Conflict {
            endpoint: put.as_str().to_string(),
            attempts: APPROVE_ATTEMPTS,
        })
    }

    async fn masters_schedulable(&self) -> Result<bool, ClusterApiError> {
        let endpoint = self.endpoint("GET", SCHEDULER_PATH);
        let obj = within(&endpoint, self.timeout, self.schedulers().get("cluster")).await?;
        masters_schedulable_of(&endpoint, &obj)
    }

    async fn set_masters_schedulable(&self, schedulable: bool) -> Result<Change, ClusterApiError> {
        if self.masters_schedulable().await? == schedulable {
            return Ok(Change::Unchanged);
        }
        let endpoint = self.endpoint("PATCH", SCHEDULER_PATH);
        let patch = Patch::Merge(json!({"spec": {"mastersSchedulable": schedulable}}));
        let obj = within(
            &endpoint,
            self.timeout,
            self.schedulers()
                .patch("cluster", &PatchParams::default(), &patch),
        )
        .await?;
        let now = masters_schedulable_of(&endpoint, &obj)?;
        if now != schedulable {
            return Err(
                endpoint.invalid(format!("mastersSchedulable is still {now} after the patch"))
            );
        }
        tracing::info!(schedulable, "Scheduler cluster: mastersSchedulable set");
        Ok(Change::Applied)
    }
}

/// `spec.mastersSchedulable`, `false` when absent (its default [K6]).
fn masters_schedulable_of(
    endpoint: &Endpoint,
    obj: &DynamicObject,
) -> Result<bool, ClusterApiError> {
    match obj
        .data
        .get("spec")
        .and_then(|s| s.get("mastersSchedulable"))
    {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(endpoint.invalid(format!(
            "spec.mastersSchedulable is {}, not a boolean",
            match other {
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Array(_) => "a list",
                _ => "an object",
            }
        ))),
    }
}

/// A node's name (a lower-case host name, exactly) and `Ready` condition.
fn node_of(endpoint: &Endpoint, node: &Node) -> Result<ClusterNode, ClusterApiError> {
    let raw = node.metadata.name.as_deref().unwrap_or_default();
    let name = raw
        .parse::<Hostname>()
        .map_err(|e| e.reason)
        .and_then(|h| {
            if h.as_str() == raw {
                Ok(h)
            } else {
                Err("it must be lower-case, without a trailing dot")
            }
        })
        .map_err(|why| {
            endpoint.invalid(format!(
                "node name {:?} is not a host name: {why}",
                safe_text(raw, 120)
            ))
        })?;
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.as_str());
    Ok(ClusterNode {
        name,
        ready: ReadyStatus::from_status(ready),
    })
}
