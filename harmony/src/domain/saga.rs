//! Steps with undo, the step log, and the runner that resumes from it.
//!
//! A Score that changes a site is a *saga*: an ordered list of [`Step`]s.
//! Each step has a stable idempotency key, reads the site before acting
//! ([`Step::prepare`]: nothing to do, or the change it would make and the
//! data needed to undo it), acts ([`Step::apply`]) and can put the site back
//! ([`Step::undo`]).
//!
//! [`run_saga`] records every step that changes something in a [`StepLog`]
//! *before* acting (the step, the change, its undo data) and *after*
//! (applied), so (a step found in place is not logged, and a run with no
//! change writes nothing):
//!
//! - a crash at any point resumes the same run: steps logged as done are
//!   skipped, a step logged as started is prepared again (it reads the
//!   site, so a side effect that already happened is not repeated) and
//!   keeps the undo data recorded before the crash;
//! - a failed step rolls the run back: every applied step, the failed one
//!   included, is undone in reverse order from its logged undo data;
//! - a log that cannot be written stops the run at once, acting no further
//!   and undoing nothing (the next run resumes from what was logged).
//!
//! [`plan_saga`] lists the changes without acting: the `--dry-run` of every
//! saga Score. A second run of a finished saga is all `Unchanged`: `Noop`.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::events::Event;
use super::inventory::Inventory;
use super::outcome::{InterpretError, Outcome};
use super::step_log::{
    RunId, RunState, StepKey, StepLog, StepLogError, StepRecord, StepState, UndoData,
};
use super::topology::{CapabilityError, Topology};

/// What [`Step::prepare`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// The site already holds what the step wants.
    Unchanged,
    /// Unchanged, and why, in words for the operator (the Noop message).
    InPlace(String),
    /// The step would make this change; `undo` restores the state read now.
    Change { description: String, undo: UndoData },
}

/// A step failed: what went wrong, in words for the operator, and what
/// the step itself left behind that its undo does not cover (e.g. hosts
/// found by a scan stay in the Inventory).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    pub message: String,
    pub state_left: Option<String>,
}

impl StepError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            state_left: None,
        }
    }

    pub fn with_state_left(mut self, state: impl Into<String>) -> Self {
        self.state_left = Some(state.into());
        self
    }
}

impl From<StepLogError> for StepError {
    fn from(e: StepLogError) -> Self {
        Self::new(e.0)
    }
}

impl From<CapabilityError> for StepError {
    fn from(e: CapabilityError) -> Self {
        Self::new(e.to_string())
    }
}

/// What a step reads and acts on.
#[derive(Debug)]
pub struct StepContext<'a, T> {
    pub inventory: &'a Inventory,
    pub topology: &'a T,
}

// Two shared references: copyable whatever `T` is (a derive would ask `T: Copy`).
impl<T> Clone for StepContext<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for StepContext<'_, T> {}

/// One idempotent, undoable change of a site.
#[async_trait]
pub trait Step<T: Topology>: fmt::Debug + Send + Sync {
    fn key(&self) -> StepKey;
    /// Reads the site: nothing to do, or the change and its undo data.
    async fn prepare(&self, ctx: StepContext<'_, T>) -> Result<Prepared, StepError>;
    /// Makes the change. Safe to repeat (a resumed run may call it again).
    /// May say what it actually did (e.g. "resumed at byte N"); `None`
    /// keeps the description [`Step::prepare`] gave.
    async fn apply(&self, ctx: StepContext<'_, T>) -> Result<Option<String>, StepError>;
    /// Restores the state `undo` describes. Safe to repeat. Not called for
    /// a step whose undo data is [`UndoData::none`] (nothing to restore).
    async fn undo(&self, ctx: StepContext<'_, T>, undo: &UndoData) -> Result<(), StepError>;
}

/// One change a Score would make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedChange {
    pub step: StepKey,
    pub description: String,
}

/// What a Score would change, in order, without acting. Empty: a Noop.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub score: String,
    pub changes: Vec<PlannedChange>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.changes.is_empty() {
            return write!(f, "{}: nothing to change", self.score);
        }
        writeln!(f, "{}: {} change(s)", self.score, self.changes.len())?;
        for (i, c) in self.changes.iter().enumerate() {
            writeln!(f, "  {:>3}. {}", i + 1, c.description)?;
        }
        Ok(())
    }
}

fn check_keys<T: Topology>(saga: &str, steps: &[Box<dyn Step<T>>]) -> Result<(), InterpretError> {
    let mut seen = HashSet::new();
    for s in steps {
        let key = s.key();
        if !seen.insert(key.clone()) {
            return Err(InterpretError::new(
                saga,
                "plan its steps",
                format!("two steps share the key {key}"),
            ));
        }
    }
    Ok(())
}

/// The changes `steps` would make, read from the site without acting.
pub async fn plan_saga<T: Topology>(
    saga: &str,
    steps: &[Box<dyn Step<T>>],
    ctx: StepContext<'_, T>,
) -> Result<Plan, InterpretError> {
    check_keys(saga, steps)?;
    let mut plan = Plan {
        score: saga.to_string(),
        changes: Vec::new(),
    };
    for step in steps {
        let key = step.key();
        match step.prepare(ctx).await {
            Ok(Prepared::Unchanged | Prepared::InPlace(_)) => {}
            Ok(Prepared::Change { description, .. }) => plan.changes.push(PlannedChange {
                step: key,
                description,
            }),
            Err(e) => {
                return Err(InterpretError::new(saga, format!("read {key}"), e.message));
            }
        }
    }
    Ok(plan)
}

/// The keys the open run of `saga` logged (empty when none is open).
pub async fn open_run_keys(
    inventory: &Inventory,
    saga: &str,
) -> Result<Vec<StepKey>, StepLogError> {
    let name = saga.to_string();
    let open = logged(inventory.step_log(), move |l| l.open_run(&name)).await?;
    let mut keys: Vec<StepKey> = Vec::new();
    for r in open.map(|(_, records)| records).unwrap_or_default() {
        if !keys.contains(&r.key) {
            keys.push(r.key);
        }
    }
    Ok(keys)
}

/// Runs the log's synchronous calls off the async executor.
async fn logged<R: Send + 'static>(
    log: &Arc<dyn StepLog>,
    f: impl FnOnce(&dyn StepLog) -> Result<R, StepLogError> + Send + 'static,
) -> Result<R, StepLogError> {
    let log = log.clone();
    tokio::task::spawn_blocking(move || f(log.as_ref()))
        .await
        .map_err(|e| StepLogError(format!("log task: {e}")))?
}

/// A step applied in this run: its index, undo data and change.
struct Done {
    index: usize,
    undo: UndoData,
    description: String,
}

/// Runs `steps` as the saga `saga`, resuming its open run if the log has
/// one; see the module documentation for what is logged when.
pub async fn run_saga<T: Topology>(
    saga: &str,
    steps: &[Box<dyn Step<T>>],
    ctx: StepContext<'_, T>,
) -> Result<Outcome, InterpretError> {
    check_keys(saga, steps)?;
    let log = ctx.inventory.step_log().clone();
    let log_err = |e: StepLogError| {
        InterpretError::new(saga, "read or write the step log", e.0)
            .with_state_left("stopped at once, nothing undone; the next run resumes from the log")
    };
    let name = saga.to_string();
    let _lock = logged(&log, move |l| l.lock_saga(&name))
        .await
        .map_err(|e| {
            InterpretError::new(saga, "take the saga's lock", e.0)
                .with_state_left("nothing done by this run")
        })?;
    let name = saga.to_string();
    let open = logged(&log, move |l| l.open_run(&name))
        .await
        .map_err(log_err)?;
    let (run, earlier) = match open {
        Some((run, records)) => {
            tracing::info!(saga, %run, entries = records.len(), "resuming");
            (Some(run), records)
        }
        // A run is begun at the first change: a Noop writes nothing.
        None => (None, Vec::new()),
    };
    // A run that logged a failure was rolling back when it stopped.
    let failed: Option<StepRecord> = earlier
        .iter()
        .find(|r| r.state == StepState::Failed)
        .cloned();
    // The latest entry of each key, and the undo data it was started with.
    let mut last: BTreeMap<StepKey, StepRecord> = BTreeMap::new();
    for r in earlier {
        let keep_undo = match (&r.undo, last.get(&r.key)) {
            (None, Some(prev)) => prev.undo.clone(),
            _ => r.undo.clone(),
        };
        last.insert(
            r.key.clone(),
            StepRecord {
                undo: keep_undo,
                ..r
            },
        );
    }

    // What happened to an earlier run before this one starts; reported.
    let mut earlier_notes: Vec<String> = Vec::new();
    let (mut run, mut last, mut failed) = (run, last, failed);

    // The open run has steps this one does not plan (other parameters, a
    // changed site): they cannot be undone from here. Close it, say so.
    if let Some(open) = run {
        let planned: HashSet<StepKey> = steps.iter().map(|s| s.key()).collect();
        let unknown: Vec<String> = last
            .values()
            .filter(|r| !planned.contains(&r.key))
            .filter(|r| {
                matches!(
                    r.state,
                    StepState::Applied | StepState::Started | StepState::Failed
                )
            })
            .map(|r| r.key.to_string())
            .collect();
        if !unknown.is_empty() {
            logged(&log, move |l| l.end_run(open, RunState::Abandoned))
                .await
                .map_err(log_err)?;
            let note = format!(
                "closed the interrupted {open} as abandoned: its steps {} are no longer \
                 planned and were left as they were",
                unknown.join(", ")
            );
            tracing::warn!(saga, "{note}");
            earlier_notes.push(note);
            (run, last, failed) = (None, BTreeMap::new(), None);
        }
    }

    // A crash interrupted a rollback: finish it (the failed step too, from
    // the undo data it was started with) and stop there: the run had
    // failed, and says so again; the next run starts afresh.
    if let (Some(open), Some(failed)) = (run, failed) {
        let pending: Vec<Done> = steps
            .iter()
            .enumerate()
            .filter_map(|(index, s)| {
                let r = last.get(&s.key())?;
                let undo = r.undo.clone()?;
                matches!(
                    r.state,
                    StepState::Applied
                        | StepState::Started
                        | StepState::Failed
                        | StepState::UndoFailed
                )
                .then(|| Done {
                    index,
                    undo,
                    description: r.description.clone(),
                })
            })
            .collect();
        let (state, _) = rollback(saga, &log, open, steps, ctx, pending).await;
        let mut err = InterpretError::new(
            saga,
            format!("finish the rollback of the interrupted {open}"),
            format!(
                "that run had failed at step {}: {}; its rollback is now finished, run again",
                failed.key, failed.description
            ),
        )
        .with_state_left(state);
        if !earlier_notes.is_empty() {
            err.message = format!("{}; {}", earlier_notes.join("; "), err.message);
        }
        return Err(err);
    }
    let mut run = RunLog {
        log: log.clone(),
        saga,
        run,
    };

    let mut done: Vec<Done> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut changed_now = false;
    for (index, step) in steps.iter().enumerate() {
        let key = step.key();
        // Logged as applied or started by the run being resumed: prepared
        // again (the site may have changed since), keeping the undo data
        // recorded before it first acted.
        let resumed = last
            .get(&key)
            .filter(|r| matches!(r.state, StepState::Applied | StepState::Started));
        let started_undo = resumed.and_then(|r| r.undo.clone());
        let before = resumed;
        let prepared = match step.prepare(ctx).await {
            Ok(p) => p,
            Err(e) => {
                if let (Some(undo), Some(r)) = (&started_undo, resumed) {
                    done.push(Done {
                        index,
                        undo: undo.clone(),
                        description: r.description.clone(),
                    });
                }
                return Err(fail(saga, &log, run.run, steps, ctx, done, &key, e).await);
            }
        };
        let in_place = match &prepared {
            Prepared::InPlace(note) => {
                notes.push(note.clone());
                Some(note.clone())
            }
            _ => None,
        };
        let key_text = key.0.clone();
        match (prepared, started_undo) {
            // Nothing to log: a resumed run prepares it again just as cheaply.
            (Prepared::Unchanged | Prepared::InPlace(_), None) => {}
            (Prepared::Unchanged | Prepared::InPlace(_), Some(undo))
                if before.is_some_and(|r| r.state == StepState::Applied) =>
            {
                done.push(Done {
                    index,
                    undo,
                    description: before.map(|r| r.description.clone()).unwrap_or_default(),
                });
            }
            (Prepared::Unchanged | Prepared::InPlace(_), Some(undo)) => {
                // Applied before a crash, not yet logged as such.
                let description = before.map(|r| r.description.clone()).unwrap_or_default();
                run.record(
                    key,
                    StepState::Applied,
                    description.clone(),
                    Some(undo.clone()),
                )
                .await
                .map_err(log_err)?;
                done.push(Done {
                    index,
                    undo,
                    description,
                });
            }
            (Prepared::Change { description, undo }, started) => {
                let undo = started.unwrap_or(undo);
                run.record(
                    key.clone(),
                    StepState::Started,
                    description.clone(),
                    Some(undo.clone()),
                )
                .await
                .map_err(log_err)?;
                let description = match step.apply(ctx).await {
                    Ok(report) => report.unwrap_or(description),
                    Err(e) => {
                        // Undo the failed step too: its undo restores the
                        // state read before it acted, whatever part happened.
                        done.push(Done {
                            index,
                            undo,
                            description,
                        });
                        return Err(fail(saga, &log, run.run, steps, ctx, done, &key, e).await);
                    }
                };
                run.record(key, StepState::Applied, description.clone(), None)
                    .await
                    .map_err(log_err)?;
                changed_now = true;
                done.push(Done {
                    index,
                    undo,
                    description,
                });
            }
        }
        let applied = done.last().filter(|d| d.index == index);
        ctx.inventory.publish(Event::StepDone {
            task: saga.to_string(),
            done: index as u64 + 1,
            total: steps.len() as u64,
            changed: applied.is_some(),
            step: applied
                .map(|d| d.description.clone())
                .or(in_place)
                .unwrap_or(key_text),
        });
        ctx.inventory.publish(Event::Progress {
            task: saga.to_string(),
            done: index as u64 + 1,
            total: steps.len() as u64,
        });
    }
    if let Some(run) = run.run {
        logged(&log, move |l| l.end_run(run, RunState::Succeeded))
            .await
            .map_err(log_err)?;
    }
    let mut changes = earlier_notes;
    changes.extend(done.into_iter().map(|d| d.description));
    Ok(if changes.is_empty() && !notes.is_empty() {
        Outcome::noop(notes.join("; "))
    } else if changes.is_empty() {
        Outcome::noop(format!("{} step(s), all in place", steps.len()))
    } else {
        if !changed_now {
            tracing::info!(
                saga,
                "resumed run had applied every change before it stopped"
            );
        }
        Outcome::success(changes)
    })
}

/// The run being written: begun at its first entry.
struct RunLog<'a> {
    log: Arc<dyn StepLog>,
    saga: &'a str,
    run: Option<RunId>,
}

impl RunLog<'_> {
    async fn record(
        &mut self,
        key: StepKey,
        state: StepState,
        description: String,
        undo: Option<UndoData>,
    ) -> Result<(), StepLogError> {
        let run = match self.run {
            Some(run) => run,
            None => {
                let name = self.saga.to_string();
                let run = logged(&self.log, move |l| l.begin_run(&name)).await?;
                self.run = Some(run);
                run
            }
        };
        let record = StepRecord {
            key,
            state,
            description,
            undo,
        };
        logged(&self.log, move |l| l.record(run, &record)).await
    }
}

/// Logs the failure, undoes `done` in reverse order and builds the error.
#[allow(clippy::too_many_arguments)]
async fn fail<T: Topology>(
    saga: &str,
    log: &Arc<dyn StepLog>,
    run: Option<RunId>,
    steps: &[Box<dyn Step<T>>],
    ctx: StepContext<'_, T>,
    done: Vec<Done>,
    failed: &StepKey,
    error: StepError,
) -> InterpretError {
    let err = InterpretError::new(saga, format!("step {failed}"), error.message.clone());
    let Some(run) = run else {
        // Nothing was logged, so nothing had been applied in this run.
        return err.with_state_left(error.state_left.unwrap_or_else(|| NOTHING_CHANGED.into()));
    };
    let record = StepRecord {
        key: failed.clone(),
        state: StepState::Failed,
        description: error.message.clone(),
        undo: None,
    };
    if let Err(e) = logged(log, move |l| l.record(run, &record)).await {
        return err.with_state_left(format!(
            "step log unavailable ({}); nothing undone, the next run resumes",
            e.0
        ));
    }
    let (rolled, _) = rollback(saga, log, run, steps, ctx, done).await;
    err.with_state_left(match error.state_left {
        Some(own) if rolled == NOTHING_CHANGED => own,
        Some(own) => format!("{own}; {rolled}"),
        None => rolled,
    })
}

const NOTHING_CHANGED: &str = "nothing had changed";

/// Undoes `done` in reverse order, logging each undo, closes the run and
/// says what state the site was left in, and whether every undo worked.
async fn rollback<T: Topology>(
    saga: &str,
    log: &Arc<dyn StepLog>,
    run: RunId,
    steps: &[Box<dyn Step<T>>],
    ctx: StepContext<'_, T>,
    done: Vec<Done>,
) -> (String, bool) {
    let mut undone = Vec::new();
    let mut kept = Vec::new();
    for d in done.into_iter().rev() {
        let Some(step) = steps.get(d.index) else {
            continue;
        };
        if d.undo == UndoData::none() {
            continue;
        }
        let key = step.key();
        let (state, text) = match step.undo(ctx, &d.undo).await {
            Ok(()) => {
                undone.push(d.description.clone());
                (StepState::Undone, d.description)
            }
            Err(e) => {
                kept.push(format!("{} (undo failed: {})", d.description, e.message));
                (StepState::UndoFailed, e.message)
            }
        };
        let record = StepRecord {
            key,
            state,
            description: text,
            undo: None,
        };
        if let Err(e) = logged(log, move |l| l.record(run, &record)).await {
            tracing::warn!(saga, error = %e, "could not log an undo");
        }
    }
    let end = if kept.is_empty() {
        RunState::RolledBack
    } else {
        RunState::RollbackIncomplete
    };
    if let Err(e) = logged(log, move |l| l.end_run(run, end)).await {
        tracing::warn!(saga, error = %e, "could not close the run in the step log");
    }
    let complete = kept.is_empty();
    let state = match (undone.is_empty(), kept.is_empty()) {
        (true, true) => NOTHING_CHANGED.to_string(),
        (false, true) => format!("rolled back: undid {}", undone.join("; ")),
        (_, false) => format!(
            "rollback incomplete: still applied: {}; undone: {}",
            kept.join("; "),
            if undone.is_empty() {
                "nothing".to_string()
            } else {
                undone.join("; ")
            }
        ),
    };
    (state, complete)
}
