//! The OKD installation's steps on the cluster's Kubernetes API
//! ([`ClusterApi`]), for `OKDSetup02Bootstrap` .. `OKDSetup04Workers`:
//!
//! - [`WaitApiAnswers`]: the API answers `GET /version` through the load
//!   balancer (the bootstrap host is up);
//! - [`WaitBootstrapComplete`]: as `openshift-install wait-for
//!   bootstrap-complete` checks it, the `kube-system/bootstrap` ConfigMap
//!   says `status: complete` [K1][K2];
//! - [`ApproveWorkerCsrs`]: the workers' kubelet client and serving CSRs,
//!   only those [`decide_csrs`] approves (node name, requestor and
//!   addresses of an inventoried worker), until every worker is a Ready node
//!   [K4][K5];
//! - [`MastersUnschedulable`]: `mastersSchedulable: false` on the
//!   `Scheduler` `cluster` [K6], so control-plane nodes run no workloads.
//!
//! The waits change nothing (their undo is nothing) and poll within a time
//! limit, logging progress; a step that finds its goal reached is in place
//! (a second run is a Noop). While the cluster cannot be read yet (no
//! kubeconfig before `openshift-install create ignition-configs`, no
//! answer), `prepare` plans the step instead of failing, so `--dry-run`
//! lists it. An approved CSR cannot be unapproved: that step has no undo and
//! its errors say what stays approved.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::domain::{
    Change, ClusterApi, ClusterApiError, ClusterNode, CsrName, Prepared, Step, StepContext,
    StepError, StepKey, Topology, UndoData, WorkerIdentity, decide_csrs,
};

/// The shortest pause between two reads (a zero `poll` would spin).
const MIN_POLL: Duration = Duration::from_millis(10);
/// A wait logs at `info` when what it sees changes, or this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(60);

fn human(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs().max(1))).to_string()
}

/// The bounded poll of a wait: at most `within`, a read every `poll`.
struct Poller {
    what: &'static str,
    start: Instant,
    within: Duration,
    poll: Duration,
    rounds: u128,
    max_rounds: u128,
    last_note: String,
    last_info: Instant,
}

impl Poller {
    fn new(what: &'static str, within: Duration, poll: Duration) -> Self {
        let poll = poll.max(MIN_POLL);
        let now = Instant::now();
        Self {
            what,
            start: now,
            within,
            poll,
            rounds: 0,
            // A bound on the rounds too, whatever the clock does.
            max_rounds: within.as_nanos() / poll.as_nanos() + 1,
            last_note: String::new(),
            last_info: now,
        }
    }

    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Logs `note` (what the last read saw) and sleeps until the next
    /// read; `false` when the time is up (no read would fit any more).
    async fn wait(&mut self, note: String) -> bool {
        self.rounds += 1;
        let elapsed = self.elapsed();
        if note != self.last_note || self.last_info.elapsed() >= PROGRESS_EVERY {
            tracing::info!(
                wait = self.what,
                elapsed = %human(elapsed),
                within = %human(self.within),
                "waiting: {note}"
            );
            self.last_info = Instant::now();
        } else {
            tracing::debug!(wait = self.what, ?elapsed, "waiting: {note}");
        }
        self.last_note = note;
        if self.rounds >= self.max_rounds || elapsed + self.poll > self.within {
            return false;
        }
        tokio::time::sleep(self.poll).await;
        true
    }

    fn last_note(&self) -> &str {
        &self.last_note
    }
}

/// A read that failed: fatal, or worth reading again (`Ok(note)`).
fn transient(e: ClusterApiError, what: &str) -> Result<String, StepError> {
    if e.is_transient() {
        Ok(e.to_string())
    } else {
        Err(StepError::new(format!("{what}: {e}")))
    }
}

/// Waits until the cluster's API answers `GET /version` (through the load
/// balancer, at [`ClusterApi::api_server`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitApiAnswers {
    /// How long the API may take to answer.
    pub within: Duration,
    /// Between two reads.
    pub poll: Duration,
}

impl WaitApiAnswers {
    /// 20 minutes (as `openshift-install wait-for bootstrap-complete`
    /// waits for the API), a read every 10 s.
    pub fn new() -> Self {
        Self {
            within: Duration::from_secs(20 * 60),
            poll: Duration::from_secs(10),
        }
    }
}

impl Default for WaitApiAnswers {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl<T: Topology + ClusterApi> Step<T> for WaitApiAnswers {
    fn key(&self) -> StepKey {
        StepKey("cluster api answers".into())
    }

    async fn prepare(&self, ctx: StepContext<'_, T>) -> Result<Prepared, StepError> {
        let api = ctx.topology;
        let server = api.api_server().to_string();
        let why = match api.api_answers().await {
            Ok(true) => {
                return Ok(Prepared::InPlace(format!("the API at {server} answers")));
            }
            Ok(false) => String::new(),
            Err(e) => format!(" (now: {})", transient(e, "read whether the API answers")?),
        };
        Ok(Prepared::Change {
            description: format!(
                "wait up to {} for the API at {server} to answer{why}",
                human(self.within)
            ),
            undo: UndoData::none(),
        })
    }

    async fn apply(&self, ctx: StepContext<'_, T>) -> Result<Option<String>, StepError> {
        let api = ctx.topology;
        let mut poller = Poller::new("the API answers", self.within, self.poll);
        loop {
            let note = match api.api_answers().await {
                Ok(true) => {
                    let server = api.api_server();
                    tracing::info!(server, elapsed = %human(poller.elapsed()), "the API answers");
                    return Ok(Some(format!(
                        "the API at {server} answered after {}",
                        human(poller.elapsed())
                    )));
                }
                Ok(false) => "no answer".to_string(),
                Err(e) => transient(e, "read whether the API answers")?,
            };
            if !poller.wait(note).await {
                return Err(StepError::new(format!(
                    "the API at {} did not answer within {} (last: {}); is the bootstrap host \
                     up and the load balancer's 6443 frontend pointing at it?",
                    api.api_server(),
                    human(self.within),
                    poller.last_note()
                )));
            }
        }
    }

    async fn undo(&self, _: StepContext<'_, T>, _: &UndoData) -> Result<(), StepError> {
        Ok(())
    }
}

/// Waits until the bootstrap is complete, as `openshift-install wait-for
/// bootstrap-complete` checks it: the `kube-system/bootstrap` ConfigMap's
/// `status: complete` [K1][K2].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitBootstrapComplete {
    pub within: Duration,
    pub poll: Duration,
}

impl WaitBootstrapComplete {
    /// 45 minutes (the installer waits 40 to 60 depending on version and
    /// platform), a read every 15 s.
    pub fn new() -> Self {
        Self {
            within: Duration::from_secs(45 * 60),
            poll: Duration::from_secs(15),
        }
    }
}

impl Default for WaitBootstrapComplete {
    fn default() -> Self {
        Self::new()
    }
}

const BOOTSTRAP_CONFIGMAP: &str = "ConfigMap kube-system/bootstrap";

#[async_trait]
impl<T: Topology + ClusterApi> Step<T> for WaitBootstrapComplete {
    fn key(&self) -> StepKey {
        StepKey("cluster bootstrap complete".into())
    }

    async fn prepare(&self, ctx: StepContext<'_, T>) -> Result<Prepared, StepError> {
        let api = ctx.topology;
        let why = match api.bootstrap_complete().await {
            Ok(true) => {
                return Ok(Prepared::InPlace(format!(
                    "bootstrap complete ({BOOTSTRAP_CONFIGMAP} says status: complete)"
                )));
            }
            Ok(false) => String::new(),
            Err(e) => format!(" (now: {})", transient(e, "read the bootstrap status")?),
        };
        Ok(Prepared::Change {
            description: format!(
                "wait up to {} for bootstrap-complete ({BOOTSTRAP_CONFIGMAP} status: complete) \
                 at {}{why}",
                human(self.within),
                api.api_server()
            ),
            undo: UndoData::none(),
        })
    }

    async fn apply(&self, ctx: StepContext<'_, T>) -> Result<Option<String>, StepError> {
        let api = ctx.topology;
        let mut poller = Poller::new("bootstrap complete", self.within, self.poll);
        loop {
            let note = match api.bootstrap_complete().await {
                Ok(true) => {
                    tracing::info!(elapsed = %human(poller.elapsed()), "bootstrap complete");
                    return Ok(Some(format!(
                        "bootstrap complete after {} ({BOOTSTRAP_CONFIGMAP} status: complete)",
                        human(poller.elapsed())
                    )));
                }
                Ok(false) => format!("{BOOTSTRAP_CONFIGMAP} absent or not complete yet"),
                Err(e) => transient(e, "read the bootstrap status")?,
            };
            if !poller.wait(note).await {
                return Err(StepError::new(format!(
                    "the bootstrap was not complete within {} (last: {}); see the bootstrap \
                     host's `journalctl -b -f -u release-image.service -u bootkube.service`",
                    human(self.within),
                    poller.last_note()
                )));
            }
        }
    }

    async fn undo(&self, _: StepContext<'_, T>, _: &UndoData) -> Result<(), StepError> {
        Ok(())
    }
}

/// Approves the workers' pending CSRs that [`decide_csrs`] approves (each
/// with its note as the approval's message; every decision logged with its
/// note) until every worker is a Ready node and none of theirs is left to
/// approve. Nothing else is ever approved. No undo: an approved CSR cannot
/// be unapproved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApproveWorkerCsrs {
    /// The inventoried workers: planned host names and addresses.
    pub workers: Vec<WorkerIdentity>,
    /// How long the workers may take to become Ready nodes.
    pub within: Duration,
    pub poll: Duration,
}

impl ApproveWorkerCsrs {
    /// 60 minutes (CSRs must be approved within the hour [K5]), a read
    /// every 10 s.
    pub fn new(workers: Vec<WorkerIdentity>) -> Self {
        Self {
            workers,
            within: Duration::from_secs(60 * 60),
            poll: Duration::from_secs(10),
        }
    }

    /// The workers that are not Ready nodes, and why.
    fn missing(&self, nodes: &[ClusterNode]) -> Vec<String> {
        self.workers
            .iter()
            .filter_map(|w| match nodes.iter().find(|n| n.name == w.hostname) {
                Some(n) if n.is_ready() => None,
                Some(n) => Some(format!("{} ({})", w.hostname, n.ready)),
                None => Some(format!("{} (not a node yet)", w.hostname)),
            })
            .collect()
    }

    fn names(&self) -> String {
        let names: Vec<&str> = self.workers.iter().map(|w| w.hostname.as_str()).collect();
        names.join(", ")
    }
}

/// Names in a list, or "none".
fn listed(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// What stays after the step stopped: the approvals it made.
fn approvals_left(approved: &[String]) -> String {
    if approved.is_empty() {
        "no CSR approved".into()
    } else {
        format!(
            "CSRs approved stay approved (an approval cannot be taken back): {}",
            approved.join(", ")
        )
    }
}

#[async_trait]
impl<T: Topology + ClusterApi> Step<T> for ApproveWorkerCsrs {
    fn key(&self) -> StepKey {
        StepKey("worker csrs approved".into())
    }

    async fn prepare(&self, ctx: StepContext<'_, T>) -> Result<Prepared, StepError> {
        if self.workers.is_empty() {
            return Ok(Prepared::InPlace("no workers: no CSR to approve".into()));
        }
        let api = ctx.topology;
        let change = |now: String| Prepared::Change {
            description: format!(
                "approve the kubelet client and serving CSRs of workers {} that the policy \
                 approves (node name, requestor and addresses of an inventoried worker; \
                 nothing else), until each is a Ready node, within {} (now: {now}); an \
                 approved CSR cannot be unapproved",
                self.names(),
                human(self.within)
            ),
            undo: UndoData::none(),
        };
        let nodes = match api.nodes().await {
            Ok(n) => n,
            Err(e) => return Ok(change(transient(e, "list the nodes")?)),
        };
        let missing = self.missing(&nodes);
        let pending = match api.pending_csrs().await {
            Ok(p) => p,
            Err(e) => return Ok(change(transient(e, "list the CSRs")?)),
        };
        let to_approve: Vec<String> = decide_csrs(&pending, &self.workers)
            .into_iter()
            .filter(|d| d.approved())
            .map(|d| d.csr.to_string())
            .collect();
        if missing.is_empty() && to_approve.is_empty() {
            return Ok(Prepared::InPlace(format!(
                "workers {} are Ready nodes",
                self.names()
            )));
        }
        Ok(change(format!(
            "not Ready nodes: {}; CSRs to approve: {}",
            listed(&missing),
            listed(&to_approve)
        )))
    }

    async fn apply(&self, ctx: StepContext<'_, T>) -> Result<Option<String>, StepError> {
        let api = ctx.topology;
        let mut poller = Poller::new("worker CSRs", self.within, self.poll);
        let mut approved: Vec<String> = Vec::new();
        // Each refused CSR logged once (by name and uid), at warn.
        let mut logged: BTreeSet<(CsrName, String)> = BTreeSet::new();
        // The refusals of the last list that answered.
        let mut refused: BTreeMap<CsrName, String> = BTreeMap::new();
        let mut missing: Vec<String> = self.missing(&[]);
        loop {
            let mut approved_now = 0;
            let mut notes: Vec<String> = Vec::new();
            match api.pending_csrs().await {
                Ok(pending) => {
                    refused.clear();
                    for (csr, d) in pending.iter().zip(decide_csrs(&pending, &self.workers)) {
                        let first = logged.insert((csr.name.clone(), csr.uid.clone()));
                        if !d.approved() {
                            if first {
                                tracing::warn!(csr = %csr.name, "CSR not approved: {}", d.note);
                            }
                            refused.insert(csr.name.clone(), d.note);
                            continue;
                        }
                        tracing::info!(csr = %csr.name, "CSR {}", d.note);
                        match api.approve_csr(csr, &d.note).await {
                            Ok(Change::Applied) => {
                                approved_now += 1;
                                approved.push(csr.name.to_string());
                            }
                            Ok(Change::Unchanged) => {}
                            Err(e @ ClusterApiError::NotApprovable { .. }) => {
                                // Changed since it was listed: listed again.
                                tracing::warn!(csr = %csr.name, "{e}");
                                refused.insert(csr.name.clone(), format!("{}, but {e}", d.note));
                            }
                            Err(e) => {
                                return Err(StepError::new(format!(
                                    "approve CSR {} ({}): {e}",
                                    csr.name, d.note
                                ))
                                .with_state_left(approvals_left(&approved)));
                            }
                        }
                    }
                }
                Err(e) => notes.push(
                    transient(e, "list the CSRs")
                        .map_err(|e| e.with_state_left(approvals_left(&approved)))?,
                ),
            }
            match api.nodes().await {
                Ok(nodes) => {
                    missing = self.missing(&nodes);
                    if missing.is_empty() && approved_now == 0 && notes.is_empty() {
                        let done = format!(
                            "workers {} are Ready nodes; CSRs approved: {}",
                            self.names(),
                            listed(&approved)
                        );
                        tracing::info!(elapsed = %human(poller.elapsed()), "{done}");
                        return Ok(Some(done));
                    }
                }
                Err(e) => notes.push(
                    transient(e, "list the nodes")
                        .map_err(|e| e.with_state_left(approvals_left(&approved)))?,
                ),
            }
            notes.insert(
                0,
                format!(
                    "not Ready nodes: {}; approved so far: {}",
                    listed(&missing),
                    approved.len()
                ),
            );
            if !poller.wait(notes.join("; ")).await {
                let refusals: Vec<String> = refused
                    .iter()
                    .map(|(n, note)| format!("{n}: {note}"))
                    .collect();
                return Err(StepError::new(format!(
                    "workers not Ready nodes within {}: {}; last refused CSRs: {}",
                    human(self.within),
                    listed(&missing),
                    if refusals.is_empty() {
                        "none".into()
                    } else {
                        refusals.join("; ")
                    }
                ))
                .with_state_left(approvals_left(&approved)));
            }
        }
    }

    async fn undo(&self, _: StepContext<'_, T>, _: &UndoData) -> Result<(), StepError> {
        // Never called (no undo data): an approved CSR cannot be unapproved.
        Ok(())
    }
}

/// Control-plane nodes take no workloads: `spec.mastersSchedulable: false`
/// on the `Scheduler` `cluster` [K6] (the installer sets it true when the
/// install-config has no compute replicas, as a UPI one has [K7]). Undo
/// puts back the value read before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MastersUnschedulable;

/// The value before the step acted; `None`: it could not be read then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SchedulerUndo {
    was: Option<bool>,
}

#[async_trait]
impl<T: Topology + ClusterApi> Step<T> for MastersUnschedulable {
    fn key(&self) -> StepKey {
        StepKey("control-plane nodes unschedulable".into())
    }

    async fn prepare(&self, ctx: StepContext<'_, T>) -> Result<Prepared, StepError> {
        let api = ctx.topology;
        let (was, now) = match api.masters_schedulable().await {
            Ok(false) => {
                return Ok(Prepared::InPlace(
                    "control-plane nodes already unschedulable (mastersSchedulable: false)".into(),
                ));
            }
            Ok(true) => (Some(true), "was true".to_string()),
            Err(e) => (
                None,
                format!(
                    "not readable yet: {}",
                    transient(e, "read the Scheduler cluster")?
                ),
            ),
        };
        Ok(Prepared::Change {
            description: format!(
                "set mastersSchedulable: false on the Scheduler cluster at {}, so control-plane \
                 nodes run no workloads ({now})",
                api.api_server()
            ),
            undo: UndoData::of(&SchedulerUndo { was })?,
        })
    }

    async fn apply(&self, ctx: StepContext<'_, T>) -> Result<Option<String>, StepError> {
        let changed = ctx
            .topology
            .set_masters_schedulable(false)
            .await
            .map_err(|e| StepError::new(format!("set mastersSchedulable false: {e}")))?;
        tracing::info!(?changed, "control-plane nodes unschedulable");
        Ok(None)
    }

    async fn undo(&self, ctx: StepContext<'_, T>, undo: &UndoData) -> Result<(), StepError> {
        let SchedulerUndo { was } = undo.decode()?;
        let Some(was) = was else {
            return Err(StepError::new(
                "mastersSchedulable was not readable before the step acted: left false",
            )
            .with_state_left("control-plane nodes stay unschedulable"));
        };
        ctx.topology
            .set_masters_schedulable(was)
            .await
            .map_err(|e| StepError::new(format!("set mastersSchedulable back to {was}: {e}")))?;
        tracing::info!(schedulable = was, "mastersSchedulable put back");
        Ok(())
    }
}
