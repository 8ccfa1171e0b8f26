//! The checks every saga Score must pass, on a [`FakeSite`]:
//!
//! 1. the plan lists changes without making any, and a run makes them;
//! 2. a second run is a Noop and changes nothing;
//! 3. a failure injected at every change in turn leaves the site as it was
//!    before the run (the saga undid what it had done; what nothing can
//!    take back, an approved CSR, aside: [`super::SiteState::undoable`]);
//! 4. a crash after every step-log write in turn, then a new run on the same
//!    log, finishes with the same site as an uninterrupted run and each side
//!    effect applied exactly once. Each point is tried twice: the log dies
//!    alone (the step acts, then its "applied" entry is lost), and the whole
//!    process dies (nothing after the write reaches the site either);
//! 5. a crash at every step-log write of a rollback (a failure injected at
//!    every change in turn, the process dying while it undoes): the next run
//!    finishes the rollback and stops with the old failure, leaving the site
//!    as it was before; the run after it ends as an uninterrupted run.
//!
//! A check that fails returns a message naming the check, the injection
//! point and what differed.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::{Capability, FakeSite};
use crate::domain::{
    Interpret, Inventory, MemoryStepLog, RunId, RunState, Score, StepLog, StepLogError, StepRecord,
};
use crate::domain::{SagaLock, StepState};

/// What the harness saw, for the test to print or check further.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HarnessReport {
    /// Changes of an uninterrupted first run.
    pub changes: usize,
    /// Failure points tried (one per change of the first run).
    pub failures_injected: usize,
    /// Crash points tried (one per step-log write of the first run; each
    /// twice: the log alone, and the whole process).
    pub crashes_injected: usize,
    /// Crash points tried during rollbacks.
    pub rollback_crashes_injected: usize,
}

/// A step log that works for `allowed` writes, then fails every call, as
/// if the process had died right after the last allowed write; with a kill
/// switch, the site dies at the same moment.
#[derive(Debug)]
pub struct CrashingLog {
    inner: Arc<dyn StepLog>,
    allowed: usize,
    writes: AtomicUsize,
    kill: Option<Arc<AtomicBool>>,
}

impl CrashingLog {
    pub fn new(inner: Arc<dyn StepLog>, allowed: usize) -> Self {
        Self {
            inner,
            allowed,
            writes: AtomicUsize::new(0),
            kill: None,
        }
    }

    /// The site dies with the log (see [`FakeSite::kill_switch`]).
    pub fn killing(mut self, switch: Arc<AtomicBool>) -> Self {
        self.kill = Some(switch);
        self
    }

    fn write(&self) -> Result<(), StepLogError> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst);
        if n + 1 == self.allowed
            && let Some(k) = &self.kill
        {
            // This write is the last: it lands, then the process is gone.
            k.store(true, Ordering::SeqCst);
        }
        if n >= self.allowed {
            if let Some(k) = &self.kill {
                k.store(true, Ordering::SeqCst);
            }
            return Err(StepLogError("simulated crash".into()));
        }
        Ok(())
    }

    fn dead(&self) -> Result<(), StepLogError> {
        if self.writes.load(Ordering::SeqCst) > self.allowed {
            return Err(StepLogError("simulated crash".into()));
        }
        Ok(())
    }
}

impl StepLog for CrashingLog {
    fn lock_saga(&self, saga: &str) -> Result<SagaLock, StepLogError> {
        self.inner.lock_saga(saga)
    }
    fn open_run(&self, saga: &str) -> Result<Option<(RunId, Vec<StepRecord>)>, StepLogError> {
        self.dead()?;
        self.inner.open_run(saga)
    }
    fn begin_run(&self, saga: &str) -> Result<RunId, StepLogError> {
        self.write()?;
        self.inner.begin_run(saga)
    }
    fn record(&self, run: RunId, record: &StepRecord) -> Result<(), StepLogError> {
        self.write()?;
        self.inner.record(run, record)
    }
    fn end_run(&self, run: RunId, state: RunState) -> Result<(), StepLogError> {
        self.write()?;
        self.inner.end_run(run, state)
    }
}

/// A harness failure: which check, and what it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HarnessFailure(pub String);

impl fmt::Display for HarnessFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HarnessFailure {}

fn fail(msg: String) -> HarnessFailure {
    HarnessFailure(msg)
}

/// Counts the entries of a state's changes, for "exactly once".
fn multiset(changes: &[(Capability, &'static str, String)]) -> Vec<String> {
    let mut v: Vec<String> = changes
        .iter()
        .map(|(c, op, t)| format!("{c:?} {op} {t}"))
        .collect();
    v.sort();
    v
}

/// How much of the fifth check (a crash during a rollback) to try. Checks
/// 1 to 4 always try every change and every log write; the fifth tries,
/// for each failure point, each write of its rollback: about n²/2 attempts
/// of a run of n changes, too many for a long saga (the whole OKD
/// installation) in a test suite. A limit tries that many failure points
/// and that many crash points each, evenly spread, first and last always.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HarnessOptions {
    /// `None`: every point.
    pub rollback_crash_points: Option<usize>,
}

/// `count` points of `range`, evenly spread, first and last included
/// (all of them when `limit` is `None` or not smaller).
fn spread(range: std::ops::Range<usize>, limit: Option<usize>) -> Vec<usize> {
    let all: Vec<usize> = range.collect();
    match limit {
        Some(m) if m >= 2 && all.len() > m => {
            (0..m).map(|i| all[i * (all.len() - 1) / (m - 1)]).collect()
        }
        Some(1) if !all.is_empty() => vec![all[all.len() - 1]],
        _ => all,
    }
}

/// Runs the checks on `score`. `setup` makes a fresh Inventory and
/// site for each attempt (the same starting state every time); it may be
/// async (e.g. a store in a temp dir, agents on loopback).
pub async fn check_saga<S, F, Fut>(score: &S, setup: F) -> Result<HarnessReport, HarnessFailure>
where
    S: Score<FakeSite>,
    F: Fn() -> Fut,
    Fut: Future<Output = (Inventory, FakeSite)>,
{
    check_saga_with(score, setup, HarnessOptions::default()).await
}

/// [`check_saga`] with `options`.
pub async fn check_saga_with<S, F, Fut>(
    score: &S,
    setup: F,
    options: HarnessOptions,
) -> Result<HarnessReport, HarnessFailure>
where
    S: Score<FakeSite>,
    F: Fn() -> Fut,
    Fut: Future<Output = (Inventory, FakeSite)>,
{
    let name = score.name();
    let interpret: Box<dyn Interpret<FakeSite>> = score.create_interpret();

    // 1. Plan, then an uninterrupted run.
    let (inventory, site) = setup().await;
    let initial = site.state();
    let log = Arc::new(MemoryStepLog::default());
    let inventory = inventory.with_step_log(log.clone());
    let plan = interpret
        .plan(&inventory, &site)
        .await
        .map_err(|e| fail(format!("{name}: plan failed: {e}")))?;
    if site.mutating_calls() != 0 {
        return Err(fail(format!(
            "{name}: the plan changed the site: {:?}",
            site.calls()
        )));
    }
    let outcome = interpret
        .execute(&inventory, &site)
        .await
        .map_err(|e| fail(format!("{name}: first run failed: {e}")))?;
    let clean_changes = multiset(&site.changes());
    let expected = site.state();
    if plan.is_empty() != outcome.is_noop() {
        return Err(fail(format!(
            "{name}: the plan ({} changes) disagrees with the run ({outcome})",
            plan.changes.len()
        )));
    }
    let mutations = site.mutating_calls();

    // 2. A second run changes nothing.
    let before = site.changes().len();
    let second = interpret
        .execute(&inventory, &site)
        .await
        .map_err(|e| fail(format!("{name}: second run failed: {e}")))?;
    if !second.is_noop() || site.changes().len() != before {
        return Err(fail(format!(
            "{name}: second run was not a Noop: {second}; site changes {:?}",
            &site.changes()[before..]
        )));
    }
    let replan = interpret
        .plan(&inventory, &site)
        .await
        .map_err(|e| fail(format!("{name}: plan after the run failed: {e}")))?;
    if !replan.is_empty() {
        return Err(fail(format!(
            "{name}: plan after the run is not empty: {replan}"
        )));
    }

    // 3. A failure at every change in turn is undone.
    for k in 1..=mutations {
        let (inventory, site) = setup().await;
        let inventory = inventory.with_step_log(Arc::new(MemoryStepLog::default()));
        site.fail_at_change(k);
        let result = interpret.execute(&inventory, &site).await;
        site.heal();
        match result {
            Ok(o) => {
                return Err(fail(format!(
                    "{name}: failure injected at change {k} of {mutations}, yet the run succeeded: {o}"
                )));
            }
            Err(e) if site.state().undoable() != initial.undoable() => {
                return Err(fail(format!(
                    "{name}: failure injected at change {k} of {mutations} ({e}); the site was \
                     not put back: before {initial:?}, after {:?}",
                    site.state()
                )));
            }
            Err(_) => {}
        }
    }

    // 4. A crash after every log write in turn, then a resumed run.
    // Writes of the first run: its begin, its entries, its end.
    let writes = log.runs().first().map_or(0, |(_, _, r)| r.len() + 2);
    for j in 0..writes {
        for process_dies in [false, true] {
            let (inventory, site) = setup().await;
            let durable: Arc<dyn StepLog> = Arc::new(MemoryStepLog::default());
            let mut crashing = CrashingLog::new(durable.clone(), j);
            if process_dies {
                crashing = crashing.killing(site.kill_switch());
            }
            let crashing = inventory.clone().with_step_log(Arc::new(crashing));
            let how = if process_dies { "process" } else { "log" };
            if let Ok(o) = interpret.execute(&crashing, &site).await
                && j + 1 < writes
            {
                return Err(fail(format!(
                    "{name}: {how} crash after log write {j} of {writes}, yet the run finished: {o}"
                )));
            }
            site.heal();
            let resumed = inventory.with_step_log(durable);
            interpret.execute(&resumed, &site).await.map_err(|e| {
                fail(format!(
                    "{name}: run resumed after a {how} crash at log write {j} of {writes} \
                     failed: {e}"
                ))
            })?;
            if site.state() != expected {
                return Err(fail(format!(
                    "{name}: resumed after a {how} crash at log write {j}: site differs from \
                     an uninterrupted run: expected {expected:?}, got {:?}",
                    site.state()
                )));
            }
            let changes = multiset(&site.changes());
            if changes != clean_changes {
                return Err(fail(format!(
                    "{name}: resumed after a {how} crash at log write {j}: side effects not \
                     applied exactly once: uninterrupted {clean_changes:?}, crash + resume \
                     {changes:?}"
                )));
            }
        }
    }

    // 5. A failure at every change in turn, and the process dying at every
    // log write of the rollback; the next run finishes that rollback and
    // stops with the failure (the site as it was before), the one after
    // that ends as an uninterrupted run.
    let mut rollback_crashes = 0;
    for k in spread(1..mutations + 1, options.rollback_crash_points) {
        // How many log writes the failing run makes, and where it logs the
        // failure.
        let (inventory, site) = setup().await;
        let probe = Arc::new(MemoryStepLog::default());
        site.fail_at_change(k);
        let _ = interpret
            .execute(&inventory.with_step_log(probe.clone()), &site)
            .await;
        let Some((_, _, records)) = probe.runs().into_iter().next() else {
            continue;
        };
        let Some(failed_at) = records.iter().position(|r| r.state == StepState::Failed) else {
            continue;
        };
        // Writes: begin, entries up to "failed", then each undo and the end;
        // crash after "failed" and after each undo.
        for j in spread(
            (failed_at + 2)..(records.len() + 1),
            options.rollback_crash_points,
        ) {
            let (inventory, site) = setup().await;
            site.fail_at_change(k);
            let durable: Arc<dyn StepLog> = Arc::new(MemoryStepLog::default());
            let crashing = CrashingLog::new(durable.clone(), j).killing(site.kill_switch());
            let _ = interpret
                .execute(&inventory.clone().with_step_log(Arc::new(crashing)), &site)
                .await;
            site.heal();
            let resumed = inventory.with_step_log(durable);
            let again = interpret.execute(&resumed, &site).await;
            if again.is_ok() || site.state().undoable() != initial.undoable() {
                return Err(fail(format!(
                    "{name}: failure at change {k}, crash at log write {j} during the \
                     rollback; the next run should finish the rollback and stop, but returned \
                     {again:?} and left {:?} (before: {initial:?})",
                    site.state()
                )));
            }
            interpret.execute(&resumed, &site).await.map_err(|e| {
                fail(format!(
                    "{name}: after a crash during a rollback and its completion, a run \
                     failed: {e}"
                ))
            })?;
            // The failed run's remote commands stay (a reboot cannot be
            // taken back): the rest is as an uninterrupted run left it.
            if site.state().undoable() != expected.undoable() {
                return Err(fail(format!(
                    "{name}: after a crash during a rollback and its completion, the site is \
                     {:?}, expected {expected:?}",
                    site.state()
                )));
            }
            rollback_crashes += 1;
        }
    }

    Ok(HarnessReport {
        changes: clean_changes.len(),
        failures_injected: mutations,
        crashes_injected: writes,
        rollback_crashes_injected: rollback_crashes,
    })
}
