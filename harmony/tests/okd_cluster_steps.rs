//! The OKD installation's cluster steps (`modules::okd::install::cluster_steps`)
//! on the fake site's cluster API: each step's plan, wait, timeout message
//! and second run; the CSR policy applied by the approval step (a CSR that
//! matches no worker is never approved); the undo of `MastersUnschedulable`;
//! and the four steps as one saga through the saga harness (`check_saga`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use harmony::domain::{
    ClusterApi, CsrState, EventBus, Interpret, InterpretError, Inventory, Maestro, Prepared,
    SagaInterpret, SagaScore, Score, Step, StepContext, UndoData, WorkerIdentity,
};
use harmony::infra::fakes::harness::check_saga;
use harmony::infra::fakes::{
    FAKE_API_SERVER, FAKE_KUBECONFIG, FakeSite, fake_client_csr, fake_serving_csr,
};
use harmony::modules::okd::install::cluster_steps::{
    ApproveWorkerCsrs, MastersUnschedulable, WaitApiAnswers, WaitBootstrapComplete,
};
use harmony::store::SqliteStore;

fn inventory() -> Inventory {
    let store = SqliteStore::open(std::path::Path::new(":memory:")).unwrap();
    Inventory::new(Arc::new(store), EventBus::default())
}

fn worker(name: &str, ip: &str) -> WorkerIdentity {
    WorkerIdentity {
        hostname: name.parse().unwrap(),
        addresses: vec![ip.parse().unwrap()],
    }
}

fn workers() -> Vec<WorkerIdentity> {
    vec![
        worker("worker-0", "10.0.0.20"),
        worker("worker-1", "10.0.0.21"),
    ]
}

const FAST: Duration = Duration::from_millis(5);

fn wait_api(within: Duration) -> WaitApiAnswers {
    WaitApiAnswers { within, poll: FAST }
}

fn wait_bootstrap(within: Duration) -> WaitBootstrapComplete {
    WaitBootstrapComplete { within, poll: FAST }
}

fn approve(workers: Vec<WorkerIdentity>, within: Duration) -> ApproveWorkerCsrs {
    ApproveWorkerCsrs {
        workers,
        within,
        poll: FAST,
    }
}

async fn prepare<S: Step<FakeSite>>(step: &S, site: &FakeSite) -> Prepared {
    let inv = inventory();
    step.prepare(StepContext {
        inventory: &inv,
        topology: site,
    })
    .await
    .unwrap()
}

async fn apply<S: Step<FakeSite>>(
    step: &S,
    site: &FakeSite,
) -> Result<Option<String>, harmony::domain::StepError> {
    let inv = inventory();
    step.apply(StepContext {
        inventory: &inv,
        topology: site,
    })
    .await
}

fn change_text(p: &Prepared) -> &str {
    match p {
        Prepared::Change { description, undo } => {
            assert_eq!(*undo, UndoData::none(), "a wait undoes nothing");
            description
        }
        other => panic!("expected a change, got {other:?}"),
    }
}

fn in_place(p: &Prepared) -> &str {
    match p {
        Prepared::InPlace(note) => note,
        other => panic!("expected in place, got {other:?}"),
    }
}

#[tokio::test]
async fn wait_api_answers_polls_until_it_answers_then_is_in_place() {
    let site = FakeSite::new();
    site.api_answers_after(4);
    let step = wait_api(Duration::from_secs(20));
    let text = change_text(&prepare(&step, &site).await).to_string();
    assert!(
        text.starts_with(&format!(
            "wait up to 20s for the API at {FAKE_API_SERVER} to answer"
        )),
        "{text}"
    );
    let done = apply(&step, &site).await.unwrap().unwrap();
    assert!(done.starts_with("the API at "), "{done}");
    // The plan read once, the wait three times more (false) and once true.
    let reads = site
        .calls()
        .iter()
        .filter(|c| c.op == "GET /version")
        .count();
    assert_eq!(reads, 5);
    assert!(in_place(&prepare(&step, &site).await).contains("answers"));
    assert_eq!(site.mutating_calls(), 0);
}

#[tokio::test]
async fn wait_api_answers_times_out_naming_the_server() {
    let site = FakeSite::new();
    site.set_api_answers(false);
    let err = apply(&wait_api(Duration::from_millis(60)), &site)
        .await
        .unwrap_err();
    assert!(
        err.message.starts_with(&format!(
            "the API at {FAKE_API_SERVER} did not answer within 1s (last: no answer)"
        )),
        "{err}"
    );
    assert!(err.message.contains("load balancer's 6443"), "{err}");
}

#[tokio::test]
async fn without_a_kubeconfig_every_step_plans_a_change() {
    let site = FakeSite::new();
    site.set_kubeconfig_missing(true);
    let within = Duration::from_secs(60);
    let texts = [
        change_text(&prepare(&wait_api(within), &site).await).to_string(),
        change_text(&prepare(&wait_bootstrap(within), &site).await).to_string(),
        change_text(&prepare(&approve(workers(), within), &site).await).to_string(),
    ];
    for t in &texts {
        assert!(t.contains(FAKE_KUBECONFIG), "{t}");
        assert!(t.contains("not there yet"), "{t}");
    }
    assert!(
        texts[2].contains("workers worker-0, worker-1"),
        "{}",
        texts[2]
    );
    match prepare(&MastersUnschedulable, &site).await {
        Prepared::Change { description, .. } => {
            assert!(description.contains("not readable yet"), "{description}");
        }
        other => panic!("{other:?}"),
    }
    // Waiting without a kubeconfig: times out saying so.
    let err = apply(&wait_bootstrap(Duration::from_millis(30)), &site)
        .await
        .unwrap_err();
    assert!(err.message.contains("not there yet"), "{err}");
}

#[tokio::test]
async fn wait_bootstrap_complete_polls_then_is_in_place_or_times_out() {
    let site = FakeSite::new();
    site.bootstrap_complete_after(3);
    let step = wait_bootstrap(Duration::from_secs(20));
    let text = change_text(&prepare(&step, &site).await).to_string();
    assert!(
        text.contains("for bootstrap-complete (ConfigMap kube-system/bootstrap status: complete)"),
        "{text}"
    );
    let done = apply(&step, &site).await.unwrap().unwrap();
    assert!(done.starts_with("bootstrap complete after"), "{done}");
    assert!(in_place(&prepare(&step, &site).await).starts_with("bootstrap complete"));

    let site = FakeSite::new();
    let err = apply(&wait_bootstrap(Duration::from_millis(50)), &site)
        .await
        .unwrap_err();
    assert!(
        err.message.starts_with(
            "the bootstrap was not complete within 1s (last: ConfigMap kube-system/bootstrap \
             absent or not complete yet)"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn workers_csrs_are_approved_and_nothing_else_is() {
    let site = FakeSite::new();
    for w in workers() {
        site.join_worker(w);
    }
    // A host that is no inventoried worker, and a serving CSR of worker-0
    // naming another address.
    site.add_csr(fake_client_csr(&"intruder".parse().unwrap()));
    let mut wrong_ip = fake_serving_csr(&worker("worker-0", "10.0.0.99"));
    wrong_ip.name = "csr-wrong-ip".parse().unwrap();
    wrong_ip.uid = "uid-wrong-ip".into();
    site.add_csr(wrong_ip);

    let step = approve(workers(), Duration::from_secs(20));
    let text = change_text(&prepare(&step, &site).await).to_string();
    assert!(
        text.contains("not Ready nodes: worker-0 (not a node yet)"),
        "{text}"
    );
    let done = apply(&step, &site).await.unwrap().unwrap();
    assert!(
        done.starts_with("workers worker-0, worker-1 are Ready nodes; CSRs approved: "),
        "{done}"
    );
    let state = site.state().cluster;
    let approved: Vec<&str> = state.approvals.keys().map(|n| n.as_str()).collect();
    assert_eq!(
        approved,
        [
            "csr-worker-0-client",
            "csr-worker-0-serving",
            "csr-worker-1-client",
            "csr-worker-1-serving"
        ]
    );
    // The approval's message is the policy's note.
    assert_eq!(
        state.approvals[&"csr-worker-1-client".parse().unwrap()],
        "approved: client certificate of worker worker-1, requested by the node-bootstrapper \
         service account"
    );
    for bad in ["csr-intruder-client", "csr-wrong-ip"] {
        assert_eq!(
            state.csrs[&bad.parse().unwrap()].state,
            CsrState::Pending,
            "{bad}"
        );
    }
    assert!(
        state
            .nodes
            .values()
            .all(|r| *r == harmony::domain::ReadyStatus::True)
    );
    // A second run: in place, nothing approved.
    let before = site.mutating_calls();
    assert_eq!(
        in_place(&prepare(&step, &site).await),
        "workers worker-0, worker-1 are Ready nodes"
    );
    assert_eq!(site.mutating_calls(), before);
}

#[tokio::test]
async fn a_worker_that_never_joins_times_out_naming_it_and_the_refusals() {
    let site = FakeSite::new();
    site.join_worker(worker("worker-0", "10.0.0.20"));
    site.add_csr(fake_client_csr(&"intruder".parse().unwrap()));
    let err = apply(&approve(workers(), Duration::from_millis(80)), &site)
        .await
        .unwrap_err();
    assert!(
        err.message.starts_with(
            "workers not Ready nodes within 1s: worker-1 (not a node yet); last refused CSRs: \
             csr-intruder-client: refused: node name intruder is not an inventoried worker"
        ),
        "{err}"
    );
    let left = err.state_left.unwrap();
    assert!(
        left.starts_with("CSRs approved stay approved (an approval cannot be taken back): "),
        "{left}"
    );
    assert!(left.contains("csr-worker-0-serving"), "{left}");
    assert!(
        !site
            .state()
            .cluster
            .approvals
            .contains_key(&"csr-intruder-client".parse().unwrap())
    );
}

#[tokio::test]
async fn a_failed_approval_stops_the_step_saying_what_stays_approved() {
    let site = FakeSite::new();
    site.join_worker(worker("worker-0", "10.0.0.20"));
    // The serving CSR's approval (the second change) fails.
    site.fail_at_change(2);
    let err = apply(
        &approve(
            vec![worker("worker-0", "10.0.0.20")],
            Duration::from_secs(20),
        ),
        &site,
    )
    .await
    .unwrap_err();
    assert!(
        err.message
            .starts_with("approve CSR csr-worker-0-serving (approved: serving"),
        "{err}"
    );
    assert!(err.message.contains("injected failure"), "{err}");
    assert_eq!(
        err.state_left.as_deref(),
        Some("CSRs approved stay approved (an approval cannot be taken back): csr-worker-0-client")
    );
}

#[tokio::test]
async fn masters_unschedulable_is_undone_to_what_was_read() {
    let site = FakeSite::new();
    assert!(site.masters_schedulable().await.unwrap());
    let (description, undo) = match prepare(&MastersUnschedulable, &site).await {
        Prepared::Change { description, undo } => (description, undo),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        description,
        format!(
            "set mastersSchedulable: false on the Scheduler cluster at {FAKE_API_SERVER}, so \
             control-plane nodes run no workloads (was true)"
        )
    );
    apply(&MastersUnschedulable, &site).await.unwrap();
    assert!(!site.state().cluster.masters_schedulable);
    assert!(in_place(&prepare(&MastersUnschedulable, &site).await).contains("already"));
    let inv = inventory();
    let ctx = StepContext {
        inventory: &inv,
        topology: &site,
    };
    MastersUnschedulable.undo(ctx, &undo).await.unwrap();
    assert!(site.state().cluster.masters_schedulable);
    // Undo data from a plan that could not read it: refused, left false.
    apply(&MastersUnschedulable, &site).await.unwrap();
    let unknown = UndoData(serde_json::json!({"was": null}));
    let err = MastersUnschedulable.undo(ctx, &unknown).await.unwrap_err();
    assert!(err.message.contains("was not readable"), "{err}");
    assert!(!site.state().cluster.masters_schedulable);
}

/// The four steps as one saga, as `OKDSetup02..04` use them.
#[derive(Debug, Clone)]
struct ClusterSteps;

impl Score<FakeSite> for ClusterSteps {
    fn name(&self) -> String {
        "ClusterSteps".into()
    }

    fn create_interpret(&self) -> Box<dyn Interpret<FakeSite>> {
        Box::new(SagaInterpret(self.clone()))
    }
}

#[async_trait]
impl SagaScore<FakeSite> for ClusterSteps {
    fn saga_name(&self) -> String {
        "ClusterSteps".into()
    }

    async fn steps(
        &self,
        _: &Inventory,
        _: &FakeSite,
    ) -> Result<Vec<Box<dyn Step<FakeSite>>>, InterpretError> {
        let within = Duration::from_millis(300);
        Ok(vec![
            Box::new(wait_api(within)),
            Box::new(wait_bootstrap(within)),
            Box::new(approve(workers(), within)),
            Box::new(MastersUnschedulable),
        ])
    }
}

fn joining_site() -> FakeSite {
    let site = FakeSite::new();
    site.api_answers_after(3);
    site.bootstrap_complete_after(3);
    for w in workers() {
        site.join_worker(w);
    }
    site.add_csr(fake_client_csr(&"intruder".parse().unwrap()));
    site
}

#[tokio::test]
async fn the_cluster_steps_pass_the_saga_harness() {
    let report = check_saga(&ClusterSteps, || async { (inventory(), joining_site()) })
        .await
        .unwrap();
    // 4 approvals and the Scheduler.
    assert_eq!(report.changes, 5, "{report:?}");
    assert_eq!(report.failures_injected, 5);
    // begin + (started + applied) x 4 + end
    assert_eq!(report.crashes_injected, 10);
    assert!(report.rollback_crashes_injected > 0, "{report:?}");
}

#[tokio::test]
async fn the_cluster_steps_plan_then_run_then_noop() {
    let maestro = Maestro::new(joining_site(), inventory());
    let plan = maestro.plan(&ClusterSteps).await.unwrap();
    let text = plan.to_string();
    assert!(text.starts_with("ClusterSteps: 4 change(s)"), "{text}");
    assert!(text.contains("wait up to 1s for the API"), "{text}");
    assert!(text.contains("set mastersSchedulable: false"), "{text}");
    let outcome = maestro.interpret(&ClusterSteps).await.unwrap();
    assert!(!outcome.is_noop(), "{outcome}");
    let state = maestro.topology().state().cluster;
    assert!(!state.masters_schedulable);
    assert_eq!(state.approvals.len(), 4);
    let again = maestro.interpret(&ClusterSteps).await.unwrap();
    assert!(again.is_noop(), "{again}");
}
