//! **A simulation** of an OKD cluster's Kubernetes API for the virtual
//! lab, where no real cluster can run: an HTTPS server (tokio + rustls,
//! mutual TLS, its own CAs made by rcgen) serving the few documented
//! endpoints Harmony's installation steps use, exactly as the contract
//! test `harmony/tests/kube_api.rs` pins them (`GET /version`, `GET
//! /api/v1/nodes`, the `kube-system/bootstrap` ConfigMap, CSR list, get
//! and approval PUT with 409 on a stale `resourceVersion`, the `Scheduler`
//! GET and merge PATCH, `Status` errors otherwise; facts in the project's
//! vendor-API notes §5), and a kubeconfig shaped like `openshift-install`'s
//! `auth/kubeconfig`, so the real `KubeClusterApi` drives it.
//!
//! It is driven by what the lab's VMs report on a second, plain-HTTP
//! listener: `POST /v1/report` with the form body
//! `mac=<MAC>&phase=<ignition-fetched|disk-written|bond-up|failed>&hostname=<name>&detail=<text>`
//! (what the installer image sends with busybox `wget --post-data`). The
//! model (`model.rs`):
//! - before the bootstrap host reported `bond-up`, the API listener
//!   accepts each connection and closes it before the TLS handshake: what
//!   a client sees from HAProxy's 6443 frontend (TCP mode) while no
//!   backend is up; `KubeClusterApi::api_answers` reads that as "not yet";
//! - then the API answers; the bootstrap ConfigMap says `status: complete`
//!   once the bootstrap and every control-plane host reported `bond-up`,
//!   and the control-plane nodes are Ready from then;
//! - each worker's `bond-up` makes its kubelet client CSR (asked by the
//!   node-bootstrapper, `CN=system:node:<name>`); once that is approved
//!   the node registers (NotReady) and asks for its serving CSR (by
//!   `system:node:<name>`, with its name and address); once that is
//!   approved the node is Ready;
//! - the `Scheduler` starts with `mastersSchedulable: true`, as the
//!   installer writes it for a UPI install-config without compute
//!   replicas.
//!
//! Bad reports (unknown MAC, bad phase, host name not the MAC's, oversize
//! or malformed body) are refused with a 4xx and a clear message, and
//! nothing is stored. Hostile clients are bounded: a deadline for the
//! head (and TLS handshake) and the body, a connection cap per listener
//! (connections over it are closed at once), body sizes, the number of
//! CSRs and reports kept. [`ClusterSimulation::shutdown`] stops both
//! listeners and every connection within a deadline.

mod http;
pub mod model;
mod pki;

pub use model::{CsrKind, CsrRequest, CsrView, HostView, Phase, PhaseRecord, SimHost, SimView};

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::domain::{Change, Role};
use http::{ReadError, ReadLimits, read_request, respond};
use model::Model;
use pki::SimPki;

/// The report listener's one path.
pub const REPORT_PATH: &str = "/v1/report";

/// The bounds a hostile client meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimLimits {
    /// The TLS handshake and the request head must arrive within this.
    pub header_timeout: Duration,
    /// The body must arrive within this after the head.
    pub body_timeout: Duration,
    /// Open connections per listener; more are closed at once.
    pub max_connections: usize,
    pub max_head_bytes: usize,
    /// An API request's body (CSR approval, Scheduler patch).
    pub max_api_body: usize,
    /// A report's body.
    pub max_report_body: usize,
    /// CSRs kept (further ones are dropped and logged).
    pub max_csrs: usize,
    /// Reports kept per host (further ones are refused with 429).
    pub max_reports_per_host: usize,
}

impl Default for SimLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_connections: 64,
            max_head_bytes: 16 * 1024,
            max_api_body: 64 * 1024,
            max_report_body: 2 * 1024,
            max_csrs: 256,
            max_reports_per_host: 64,
        }
    }
}

/// What the simulation serves and where.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The cluster's name (the kubeconfig's cluster entry).
    pub cluster: String,
    /// The expected hosts: one bootstrap, control-plane hosts, workers.
    pub hosts: Vec<SimHost>,
    /// The HTTPS API listener (`127.0.0.1:0` in tests).
    pub api_bind: SocketAddr,
    /// The plain-HTTP report listener.
    pub report_bind: SocketAddr,
    /// DNS names in the server certificate (`api.<cluster>.<domain>`,
    /// `api-int.<cluster>.<domain>`).
    pub server_names: Vec<String>,
    /// Addresses in the server certificate (the bound address is added).
    pub server_ips: Vec<IpAddr>,
    /// The kubeconfig's `server:` (e.g. `https://api.lab.example:6443`);
    /// `None`: the bound address.
    pub advertised_server: Option<String>,
    pub limits: SimLimits,
}

/// Why the simulation could not start or stop.
#[derive(Debug, thiserror::Error)]
pub enum ClusterSimError {
    #[error("invalid {field} {value:?}: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("certificates: {0}")]
    Pki(String),
    #[error("write kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the simulated cluster did not stop within {0:?}; its tasks were aborted")]
    ShutdownTimeout(Duration),
    #[error("CSR store full ({0} CSRs)")]
    CsrStoreFull(usize),
}

fn invalid(field: &'static str, value: impl Into<String>, reason: &str) -> ClusterSimError {
    ClusterSimError::Invalid {
        field,
        value: value.into(),
        reason: reason.into(),
    }
}

/// The running simulation (see the module doc).
pub struct ClusterSimulation {
    model: Arc<Mutex<Model>>,
    pki: SimPki,
    cluster: String,
    api_addr: SocketAddr,
    report_addr: SocketAddr,
    advertised: String,
    max_csrs: usize,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for ClusterSimulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSimulation")
            .field("cluster", &self.cluster)
            .field("api_addr", &self.api_addr)
            .field("report_addr", &self.report_addr)
            .finish_non_exhaustive()
    }
}

fn lock(m: &Mutex<Model>) -> MutexGuard<'_, Model> {
    // A panic while holding it cannot leave the model half-changed in a way
    // that matters to a simulation; keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn check_hosts(hosts: &[SimHost]) -> Result<(), ClusterSimError> {
    let mut names = HashSet::new();
    let mut macs = HashSet::new();
    for h in hosts {
        if !names.insert(h.name.clone()) {
            return Err(invalid("host name", h.name.as_str(), "given twice"));
        }
        if h.macs.is_empty() {
            return Err(invalid("host MACs", h.name.as_str(), "a host needs a MAC"));
        }
        for m in &h.macs {
            if !macs.insert(*m) {
                return Err(invalid(
                    "MAC",
                    m.to_string(),
                    "given for two hosts or twice",
                ));
            }
        }
    }
    let count = |r: Role| hosts.iter().filter(|h| h.role == r).count();
    if count(Role::Bootstrap) != 1 {
        return Err(invalid(
            "hosts",
            format!("{} bootstrap hosts", count(Role::Bootstrap)),
            "exactly one bootstrap host is expected",
        ));
    }
    if count(Role::ControlPlane) == 0 {
        return Err(invalid(
            "hosts",
            "no control-plane host",
            "at least one control-plane host is expected",
        ));
    }
    Ok(())
}

impl ClusterSimulation {
    /// Binds both listeners (`api_bind`, `report_bind`) and starts serving.
    pub async fn start(config: SimConfig) -> Result<Self, ClusterSimError> {
        let api_listener =
            TcpListener::bind(config.api_bind)
                .await
                .map_err(|source| ClusterSimError::Bind {
                    addr: config.api_bind,
                    source,
                })?;
        let report_listener = TcpListener::bind(config.report_bind)
            .await
            .map_err(|source| ClusterSimError::Bind {
                addr: config.report_bind,
                source,
            })?;
        Self::serve(config, api_listener, report_listener)
    }

    /// Serves on listeners bound by the caller (the lab binds them inside
    /// its network namespace, from a thread that entered it); `api_bind`
    /// and `report_bind` are not used. Call it within a tokio runtime.
    pub fn start_with_listeners(
        config: SimConfig,
        api: std::net::TcpListener,
        report: std::net::TcpListener,
    ) -> Result<Self, ClusterSimError> {
        let adopt = |l: std::net::TcpListener, addr: SocketAddr| {
            l.set_nonblocking(true)
                .and_then(|()| TcpListener::from_std(l))
                .map_err(|source| ClusterSimError::Bind { addr, source })
        };
        let api = adopt(api, config.api_bind)?;
        let report = adopt(report, config.report_bind)?;
        Self::serve(config, api, report)
    }

    fn serve(
        config: SimConfig,
        api_listener: TcpListener,
        report_listener: TcpListener,
    ) -> Result<Self, ClusterSimError> {
        check_hosts(&config.hosts)?;
        let limits = config.limits;
        if limits.max_connections == 0 {
            return Err(invalid("max_connections", "0", "must be at least 1"));
        }
        // Key generation before anything is shared.
        let mut hosts = Vec::with_capacity(config.hosts.len());
        for h in config.hosts {
            let csrs = if h.role == Role::Worker {
                let node = h.name.as_str();
                let make = |kind| {
                    CsrRequest::kubelet(node, kind, &[h.ip])
                        .map_err(|e| ClusterSimError::Pki(e.to_string()))
                };
                Some((make(CsrKind::Client)?, make(CsrKind::Serving)?))
            } else {
                None
            };
            hosts.push((h, csrs));
        }
        let model = Arc::new(Mutex::new(Model::new(
            hosts,
            limits.max_csrs,
            limits.max_reports_per_host,
        )));
        let local = |l: &TcpListener, addr| {
            l.local_addr()
                .map_err(|source| ClusterSimError::Bind { addr, source })
        };
        let api_addr = local(&api_listener, config.api_bind)?;
        let report_addr = local(&report_listener, config.report_bind)?;

        let mut ips = config.server_ips.clone();
        if !api_addr.ip().is_unspecified() && !ips.contains(&api_addr.ip()) {
            ips.push(api_addr.ip());
        }
        let pki = SimPki::new(&config.server_names, &ips).map_err(ClusterSimError::Pki)?;
        let advertised = config
            .advertised_server
            .clone()
            .unwrap_or_else(|| format!("https://{api_addr}"));

        let (stop, stop_rx) = watch::channel(false);
        let acceptor = tokio_rustls::TlsAcceptor::from(pki.tls.clone());
        let api_task = {
            let model = model.clone();
            tokio::spawn(accept_loop(
                api_listener,
                stop_rx.clone(),
                limits,
                move |sock| serve_api(sock, acceptor.clone(), model.clone(), limits),
            ))
        };
        let report_task = {
            let model = model.clone();
            tokio::spawn(accept_loop(report_listener, stop_rx, limits, move |sock| {
                serve_report(sock, model.clone(), limits)
            }))
        };
        tracing::info!(
            cluster = %config.cluster,
            %api_addr,
            %report_addr,
            "simulated cluster API started (a simulation, not a cluster)"
        );
        Ok(Self {
            model,
            pki,
            cluster: config.cluster,
            api_addr,
            report_addr,
            advertised,
            max_csrs: limits.max_csrs,
            stop,
            tasks: vec![api_task, report_task],
        })
    }

    /// The HTTPS API's bound address.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// The report listener's bound address.
    pub fn report_addr(&self) -> SocketAddr {
        self.report_addr
    }

    /// The URL the VMs post their reports to.
    pub fn report_url(&self) -> String {
        format!("http://{}{REPORT_PATH}", self.report_addr)
    }

    /// The `https://` URL of the bound API listener.
    pub fn api_url(&self) -> String {
        format!("https://{}", self.api_addr)
    }

    /// The CA the kubeconfig trusts (PEM).
    pub fn server_ca_pem(&self) -> &str {
        &self.pki.server_ca_pem
    }

    /// Writes the admin kubeconfig (0600, atomically).
    pub fn write_kubeconfig(&self, path: &Path) -> Result<Change, ClusterSimError> {
        let text = self.pki.kubeconfig(&self.cluster, &self.advertised);
        crate::infra::fs::write_atomic(path, text.as_bytes(), 0o600).map_err(|source| {
            ClusterSimError::Kubeconfig {
                path: path.display().to_string(),
                source,
            }
        })
    }

    /// What happened so far, for the lab's summary.
    pub fn view(&self) -> SimView {
        lock(&self.model).view()
    }

    /// Adds a CSR as something else in the cluster would (e.g. a rogue or
    /// misconfigured kubelet), for tests and fault drills.
    pub fn submit_csr(&self, request: CsrRequest) -> Result<(), ClusterSimError> {
        let mut m = lock(&self.model);
        if m.add_csr_request(request, SystemTime::now()) {
            Ok(())
        } else {
            Err(ClusterSimError::CsrStoreFull(self.max_csrs))
        }
    }

    /// Stops both listeners and every open connection; waits at most
    /// `deadline`, then aborts what is left (and says so).
    pub async fn shutdown(mut self, deadline: Duration) -> Result<(), ClusterSimError> {
        let _ = self.stop.send(true);
        let until = Instant::now() + deadline;
        let mut late = false;
        for task in self.tasks.drain(..) {
            let abort = task.abort_handle();
            if tokio::time::timeout_at(until, task).await.is_err() {
                abort.abort();
                late = true;
            }
        }
        tracing::info!(cluster = %self.cluster, late, "simulated cluster API stopped");
        if late {
            Err(ClusterSimError::ShutdownTimeout(deadline))
        } else {
            Ok(())
        }
    }
}

impl Drop for ClusterSimulation {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Accepts connections until stopped; each in its own task under the
/// connection cap (over it, the connection is closed at once). On stop,
/// every connection task is aborted.
async fn accept_loop<F, Fut>(
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
    limits: SimLimits,
    serve: F,
) where
    F: Fn(TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let cap = Arc::new(Semaphore::new(limits.max_connections));
    let mut conns: JoinSet<()> = JoinSet::new();
    // A connection's whole life is bounded anyway; this is belt and braces.
    let life = limits.header_timeout + limits.body_timeout + Duration::from_secs(5);
    loop {
        while conns.try_join_next().is_some() {}
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            a = listener.accept() => a,
        };
        let (sock, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: pause, go on.
                tracing::warn!(error = %e, "simulated cluster: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = cap.clone().try_acquire_owned() else {
            tracing::warn!(%peer, limit = limits.max_connections, "simulated cluster: connection cap reached, closed");
            drop(sock);
            continue;
        };
        let fut = serve(sock);
        conns.spawn(async move {
            let _ = tokio::time::timeout(life, fut).await;
            drop(permit);
        });
    }
    conns.shutdown().await;
}

fn read_limits(limits: SimLimits, started: Instant, body_bytes: usize) -> ReadLimits {
    ReadLimits {
        head_bytes: limits.max_head_bytes,
        body_bytes,
        head_deadline: started + limits.header_timeout,
        body_time: limits.body_timeout,
    }
}

async fn serve_api(
    sock: TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    model: Arc<Mutex<Model>>,
    limits: SimLimits,
) {
    if !lock(&model).api_answers() {
        // HAProxy's TCP frontend with no backend up: accepted, then closed.
        drop(sock);
        return;
    }
    let started = Instant::now();
    let Ok(Ok(mut tls)) =
        tokio::time::timeout_at(started + limits.header_timeout, acceptor.accept(sock)).await
    else {
        return;
    };
    let (code, body) = match read_request(
        &mut tls,
        read_limits(limits, started, limits.max_api_body),
    )
    .await
    {
        Ok(req) => {
            let answer = lock(&model).answer(
                &req.method,
                &req.path,
                req.content_type.as_deref(),
                &req.body,
            );
            tracing::debug!(method = %req.method, path = %req.path, code = answer.0, "simulated API");
            answer
        }
        Err(ReadError::Gone) => return,
        Err(ReadError::Refused(code, message)) => (
            code,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": "BadRequest", "code": code}),
        ),
    };
    let text = body.to_string();
    respond(
        &mut tls,
        code,
        "application/json",
        text.as_bytes(),
        limits.body_timeout,
    )
    .await;
}

async fn serve_report(mut sock: TcpStream, model: Arc<Mutex<Model>>, limits: SimLimits) {
    let started = Instant::now();
    let (code, text) = match read_request(
        &mut sock,
        read_limits(limits, started, limits.max_report_body),
    )
    .await
    {
        Err(ReadError::Gone) => return,
        Err(ReadError::Refused(code, message)) => (code, format!("error: {message}\n")),
        Ok(req) if req.path != REPORT_PATH => {
            (404, format!("error: no such path; POST {REPORT_PATH}\n"))
        }
        Ok(req) if req.method != "POST" => (
            405,
            format!("error: {} {REPORT_PATH}: use POST\n", req.method),
        ),
        Ok(req)
            if req
                .content_type
                .as_deref()
                .is_some_and(|t| t != "application/x-www-form-urlencoded") =>
        {
            (
                415,
                "error: the body must be application/x-www-form-urlencoded\n".into(),
            )
        }
        Ok(req) => {
            let result = lock(&model).report(&req.body, SystemTime::now());
            match result {
                Ok(host) => {
                    tracing::info!(%host, "simulated cluster: report taken");
                    (200, format!("ok: report taken for {host}\n"))
                }
                Err(r) => {
                    tracing::warn!(
                        code = r.code,
                        "simulated cluster: report refused: {}",
                        r.message
                    );
                    (r.code, format!("error: {}\n", r.message))
                }
            }
        }
    };
    respond(
        &mut sock,
        code,
        "text/plain; charset=utf-8",
        text.as_bytes(),
        limits.body_timeout,
    )
    .await;
}
