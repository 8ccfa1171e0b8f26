//! The fake site's Kubernetes API ([`ClusterApi`]), in memory, for tests
//! of the installation steps: whether the API answers and the bootstrap is
//! complete (set, or true after N reads), the nodes, the CSRs and their
//! approval (uid checked), and the Scheduler's `mastersSchedulable`
//! (true by default, as a fresh UPI cluster whose install-config has no
//! compute replicas [K7]).
//!
//! A worker's join is scripted ([`FakeSite::join_worker`]): its kubelet
//! client CSR appears at the next CSR list; once that is approved the node
//! appears, NotReady, and asks for its serving certificate; once that is
//! approved the node is Ready. Approvals cannot be taken back, so
//! [`SiteState::undoable`] leaves the CSRs and nodes out.

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;

use super::{Capability, FakeSite};
use crate::domain::cluster::{KUBELET_CLIENT_SIGNER, NODE_BOOTSTRAPPER, NODES_ORGANIZATION};
use crate::domain::{
    Change, ClusterApi, ClusterApiError, ClusterNode, CsrName, CsrRequest, CsrSigner, CsrState,
    Hostname, NodeCsr, ReadyStatus, WorkerIdentity,
};

/// Where the fake API server says it is (never contacted).
pub const FAKE_API_SERVER: &str = "https://api.fake.example.test:6443";
/// The kubeconfig the fake names while it is "not written yet".
pub const FAKE_KUBECONFIG: &str = "/fake-install/auth/kubeconfig";

/// The cluster as the fake holds it: compared by the saga harness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeCluster {
    /// `spec.mastersSchedulable` of the `Scheduler` `cluster`.
    pub masters_schedulable: bool,
    pub nodes: BTreeMap<Hostname, ReadyStatus>,
    /// Every CSR the cluster holds, whatever its state.
    pub csrs: BTreeMap<CsrName, NodeCsr>,
    /// The approvals made: CSR and the approval's message.
    pub approvals: BTreeMap<CsrName, String>,
}

impl Default for FakeCluster {
    fn default() -> Self {
        Self {
            masters_schedulable: true,
            nodes: BTreeMap::new(),
            csrs: BTreeMap::new(),
            approvals: BTreeMap::new(),
        }
    }
}

/// A yes/no the test sets, or that turns true after a number of reads.
#[derive(Debug, Default)]
struct Flag {
    value: bool,
    /// Reads still answering `false` before the value turns true.
    false_reads: Option<usize>,
}

impl Flag {
    fn read(&mut self) -> bool {
        match self.false_reads {
            Some(0) => {
                self.false_reads = None;
                self.value = true;
            }
            Some(n) => self.false_reads = Some(n - 1),
            None => {}
        }
        self.value
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JoinStage {
    /// Booting: its client CSR comes with the next CSR list.
    Booting,
    ClientAsked,
    ServingAsked,
    Joined,
}

#[derive(Debug)]
struct Join {
    worker: WorkerIdentity,
    stage: JoinStage,
}

/// What the test scripted (not compared: reads advance it).
#[derive(Debug)]
pub(super) struct Script {
    kubeconfig_missing: bool,
    api: Flag,
    bootstrap: Flag,
    joins: Vec<Join>,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            kubeconfig_missing: false,
            api: Flag {
                value: true,
                false_reads: None,
            },
            bootstrap: Flag::default(),
            joins: Vec::new(),
        }
    }
}

/// The CSR names the fake gives a joining worker's requests.
pub fn fake_csr_name(worker: &Hostname, serving: bool) -> CsrName {
    let kind = if serving { "serving" } else { "client" };
    format!("csr-{}-{kind}", worker.as_str())
        .parse()
        .unwrap_or_else(|_| unreachable!("a host name and a suffix make a CSR name"))
}

/// A pending kubelet client CSR for `node`, shaped as a kubelet and the
/// node-bootstrapper make it [K4][K5].
pub fn fake_client_csr(node: &Hostname) -> NodeCsr {
    let name = fake_csr_name(node, false);
    NodeCsr {
        uid: format!("uid-{name}"),
        name,
        signer: CsrSigner::from_name(KUBELET_CLIENT_SIGNER),
        username: NODE_BOOTSTRAPPER.into(),
        groups: vec![
            "system:serviceaccounts:openshift-machine-config-operator".into(),
            "system:serviceaccounts".into(),
            "system:authenticated".into(),
        ],
        usages: vec!["digital signature".into(), "client auth".into()],
        state: CsrState::Pending,
        request: Ok(CsrRequest {
            common_names: vec![format!("system:node:{node}")],
            organizations: vec![NODES_ORGANIZATION.into()],
            ..CsrRequest::default()
        }),
    }
}

/// A pending kubelet serving CSR of `worker` for its name and addresses,
/// requested by the node itself [K5].
pub fn fake_serving_csr(worker: &WorkerIdentity) -> NodeCsr {
    let node = &worker.hostname;
    let name = fake_csr_name(node, true);
    NodeCsr {
        uid: format!("uid-{name}"),
        name,
        signer: CsrSigner::KubeletServing,
        username: format!("system:node:{node}"),
        groups: vec!["system:nodes".into(), "system:authenticated".into()],
        usages: vec![
            "digital signature".into(),
            "key encipherment".into(),
            "server auth".into(),
        ],
        state: CsrState::Pending,
        request: Ok(CsrRequest {
            common_names: vec![format!("system:node:{node}")],
            organizations: vec![NODES_ORGANIZATION.into()],
            dns_names: vec![node.to_string()],
            ip_addresses: worker.addresses.clone(),
            other_names: Vec::new(),
        }),
    }
}

fn endpoint(op: &str) -> String {
    format!("{op} {FAKE_API_SERVER}")
}

impl FakeSite {
    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.cluster
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Until set back, every cluster call answers `NotYetAvailable` (no
    /// kubeconfig yet: a dry run before `create ignition-configs`).
    pub fn set_kubeconfig_missing(&self, missing: bool) {
        self.script().kubeconfig_missing = missing;
    }

    /// Whether the API answers (true by default).
    pub fn set_api_answers(&self, answers: bool) {
        self.script().api = Flag {
            value: answers,
            false_reads: None,
        };
    }

    /// The API answers from the read after the first `reads`.
    pub fn api_answers_after(&self, reads: usize) {
        self.script().api = Flag {
            value: false,
            false_reads: Some(reads),
        };
    }

    /// Whether the bootstrap is complete (false by default).
    pub fn set_bootstrap_complete(&self, complete: bool) {
        self.script().bootstrap = Flag {
            value: complete,
            false_reads: None,
        };
    }

    /// The bootstrap is complete from the read after the first `reads`.
    pub fn bootstrap_complete_after(&self, reads: usize) {
        self.script().bootstrap = Flag {
            value: false,
            false_reads: Some(reads),
        };
    }

    /// `worker` boots and joins (see the module doc): its client CSR
    /// appears at the next CSR list.
    pub fn join_worker(&self, worker: WorkerIdentity) {
        self.script().joins.push(Join {
            worker,
            stage: JoinStage::Booting,
        });
    }

    /// A CSR the cluster holds from now on (e.g. one nobody should approve).
    pub fn add_csr(&self, csr: NodeCsr) {
        self.lock().state.cluster.csrs.insert(csr.name.clone(), csr);
    }

    /// One recorded cluster call: the injected failures and the missing
    /// kubeconfig as [`ClusterApiError`]s.
    fn cluster_call<R>(
        &self,
        op: &'static str,
        target: String,
        mutating: bool,
        f: impl FnOnce(&mut FakeCluster, &mut Script) -> Result<(R, bool), ClusterApiError>,
    ) -> Result<R, ClusterApiError> {
        // The script first, then the state (`call`): always in this order.
        let mut script = self.script();
        let missing = script.kubeconfig_missing;
        self.call(Capability::ClusterApi, op, target, mutating, |s| {
            if missing {
                let e = ClusterApiError::NotYetAvailable {
                    kubeconfig: PathBuf::from(FAKE_KUBECONFIG),
                };
                return (Err(e), false);
            }
            match f(&mut s.cluster, &mut script) {
                Ok((r, changed)) => (Ok(r), changed),
                Err(e) => (Err(e), false),
            }
        })
        .map_err(|e| ClusterApiError::Transport {
            endpoint: endpoint(op),
            message: e.message,
        })?
    }
}

/// Approves `csr` in `c` and moves a joining worker on.
fn approve(
    c: &mut FakeCluster,
    script: &mut Script,
    csr: &NodeCsr,
    message: &str,
) -> Result<(Change, bool), ClusterApiError> {
    let ep = endpoint("PUT approval");
    let Some(held) = c.csrs.get_mut(&csr.name) else {
        return Err(ClusterApiError::Api {
            endpoint: ep,
            code: 404,
            reason: "NotFound".into(),
            message: format!("certificatesigningrequests \"{}\" not found", csr.name),
        });
    };
    let refuse = |message: String| ClusterApiError::NotApprovable {
        endpoint: endpoint("GET csr"),
        name: csr.name.clone(),
        message,
    };
    if held.uid != csr.uid {
        return Err(refuse(format!(
            "it was replaced (uid {} is not the decided {})",
            held.uid, csr.uid
        )));
    }
    match held.state {
        CsrState::Pending => {}
        CsrState::Approved => return Ok((Change::Unchanged, false)),
        state => return Err(refuse(format!("it is {state}"))),
    }
    held.state = CsrState::Approved;
    c.approvals.insert(csr.name.clone(), message.to_string());
    for join in &mut script.joins {
        let node = join.worker.hostname.clone();
        if join.stage == JoinStage::ClientAsked && csr.name == fake_csr_name(&node, false) {
            join.stage = JoinStage::ServingAsked;
            c.nodes.insert(node, ReadyStatus::False);
            let serving = fake_serving_csr(&join.worker);
            c.csrs.insert(serving.name.clone(), serving);
        } else if join.stage == JoinStage::ServingAsked && csr.name == fake_csr_name(&node, true) {
            join.stage = JoinStage::Joined;
            c.nodes.insert(node, ReadyStatus::True);
        }
    }
    Ok((Change::Applied, true))
}

#[async_trait]
impl ClusterApi for FakeSite {
    fn api_server(&self) -> &str {
        FAKE_API_SERVER
    }

    async fn api_answers(&self) -> Result<bool, ClusterApiError> {
        self.cluster_call("GET /version", String::new(), false, |_, script| {
            Ok((script.api.read(), false))
        })
    }

    async fn nodes(&self) -> Result<Vec<ClusterNode>, ClusterApiError> {
        self.cluster_call("GET nodes", String::new(), false, |c, _| {
            let nodes = c
                .nodes
                .iter()
                .map(|(name, ready)| ClusterNode {
                    name: name.clone(),
                    ready: *ready,
                })
                .collect();
            Ok((nodes, false))
        })
    }

    async fn bootstrap_complete(&self) -> Result<bool, ClusterApiError> {
        self.cluster_call(
            "GET configmap kube-system/bootstrap",
            String::new(),
            false,
            |_, script| Ok((script.bootstrap.read(), false)),
        )
    }

    async fn pending_csrs(&self) -> Result<Vec<NodeCsr>, ClusterApiError> {
        self.cluster_call("GET csrs", String::new(), false, |c, script| {
            for join in &mut script.joins {
                if join.stage == JoinStage::Booting {
                    join.stage = JoinStage::ClientAsked;
                    let csr = fake_client_csr(&join.worker.hostname);
                    c.csrs.insert(csr.name.clone(), csr);
                }
            }
            let pending = c
                .csrs
                .values()
                .filter(|x| x.state == CsrState::Pending)
                .cloned()
                .collect();
            Ok((pending, false))
        })
    }

    async fn approve_csr(&self, csr: &NodeCsr, message: &str) -> Result<Change, ClusterApiError> {
        self.cluster_call("approve csr", csr.name.to_string(), true, |c, script| {
            approve(c, script, csr, message)
        })
    }

    async fn masters_schedulable(&self) -> Result<bool, ClusterApiError> {
        self.cluster_call("GET scheduler", String::new(), false, |c, _| {
            Ok((c.masters_schedulable, false))
        })
    }

    async fn set_masters_schedulable(&self, schedulable: bool) -> Result<Change, ClusterApiError> {
        self.cluster_call(
            "set masters schedulable",
            schedulable.to_string(),
            true,
            |c, _| {
                let changed = c.masters_schedulable != schedulable;
                c.masters_schedulable = schedulable;
                Ok((
                    if changed {
                        Change::Applied
                    } else {
                        Change::Unchanged
                    },
                    changed,
                ))
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infra::fakes::SiteState;

    fn worker(name: &str, ip: &str) -> WorkerIdentity {
        WorkerIdentity {
            hostname: name.parse().unwrap(),
            addresses: vec![ip.parse().unwrap()],
        }
    }

    #[tokio::test]
    async fn a_scripted_join_asks_for_both_certificates_in_turn() {
        let site = FakeSite::new();
        site.join_worker(worker("worker-0", "10.0.0.20"));
        assert!(site.nodes().await.unwrap().is_empty());
        let pending = site.pending_csrs().await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].name.as_str(), "csr-worker-0-client");
        assert_eq!(
            site.approve_csr(&pending[0], "ok").await.unwrap(),
            Change::Applied
        );
        assert_eq!(
            site.approve_csr(&pending[0], "ok").await.unwrap(),
            Change::Unchanged
        );
        let nodes = site.nodes().await.unwrap();
        assert_eq!(nodes.len(), 1);
        assert!(!nodes[0].is_ready());
        let pending = site.pending_csrs().await.unwrap();
        assert_eq!(pending[0].name.as_str(), "csr-worker-0-serving");
        site.approve_csr(&pending[0], "ok too").await.unwrap();
        assert!(site.nodes().await.unwrap()[0].is_ready());
        assert!(site.pending_csrs().await.unwrap().is_empty());
        let state = site.state();
        assert_eq!(state.cluster.approvals.len(), 2);
        assert_eq!(state.undoable(), SiteState::default());
    }

    #[tokio::test]
    async fn approval_checks_the_uid_and_failures_are_injected() {
        let site = FakeSite::new();
        let node: Hostname = "worker-0".parse().unwrap();
        site.add_csr(fake_client_csr(&node));
        let mut other = fake_client_csr(&node);
        other.uid = "someone-else".into();
        let e = site.approve_csr(&other, "x").await.unwrap_err();
        assert!(matches!(e, ClusterApiError::NotApprovable { .. }), "{e}");
        assert!(e.to_string().contains("replaced"), "{e}");
        site.fail_at_change(site.mutating_calls() + 1);
        let e = site
            .approve_csr(&fake_client_csr(&node), "x")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("injected failure"), "{e}");
        assert!(site.state().cluster.approvals.is_empty());
        site.heal();
        site.set_kubeconfig_missing(true);
        assert!(site.masters_schedulable().await.unwrap_err().is_not_yet());
        site.set_kubeconfig_missing(false);
        assert!(site.masters_schedulable().await.unwrap());
    }

    #[tokio::test]
    async fn flags_turn_true_after_the_reads_asked() {
        let site = FakeSite::new();
        assert!(site.api_answers().await.unwrap());
        site.bootstrap_complete_after(2);
        assert!(!site.bootstrap_complete().await.unwrap());
        assert!(!site.bootstrap_complete().await.unwrap());
        assert!(site.bootstrap_complete().await.unwrap());
        assert!(site.bootstrap_complete().await.unwrap());
        site.set_bootstrap_complete(false);
        assert!(!site.bootstrap_complete().await.unwrap());
    }
}
