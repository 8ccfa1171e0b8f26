//! The step log: runs of sagas and the entries of their steps (started
//! with undo data, applied, unchanged, failed, undone), behind the
//! [`StepLog`] trait that the store implements on SQLite and
//! [`MemoryStepLog`] in memory. Pure data: no I/O here.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

/// A step's stable idempotency key within its saga, e.g.
/// `put ipxe/52-54-00-aa-bb-01.ipxe`. Two steps of one saga never share a key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StepKey(pub String);

impl fmt::Display for StepKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for StepKey {
    fn from(s: String) -> Self {
        Self(s)
    }
}

/// What a step needs to put the site back as it was before it acted:
/// plain JSON, written to the log before the step acts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndoData(pub serde_json::Value);

impl UndoData {
    pub fn none() -> Self {
        Self(serde_json::Value::Null)
    }

    pub fn of<V: Serialize>(value: &V) -> Result<Self, StepLogError> {
        serde_json::to_value(value)
            .map(Self)
            .map_err(|e| StepLogError(format!("encode undo data: {e}")))
    }

    pub fn decode<V: for<'de> Deserialize<'de>>(&self) -> Result<V, StepLogError> {
        serde_json::from_value(self.0.clone())
            .map_err(|e| StepLogError(format!("decode undo data: {e}")))
    }
}

/// A run of a saga in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RunId(pub i64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "run {}", self.0)
    }
}

/// Where a step is, as logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepState {
    /// Logged before acting, with its undo data.
    Started,
    Applied,
    Failed,
    Undone,
    UndoFailed,
}

impl StepState {
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Started => "started",
            StepState::Applied => "applied",
            StepState::Failed => "failed",
            StepState::Undone => "undone",
            StepState::UndoFailed => "undo-failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            StepState::Started,
            StepState::Applied,
            StepState::Failed,
            StepState::Undone,
            StepState::UndoFailed,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    Running,
    Succeeded,
    RolledBack,
    /// A step failed and at least one undo failed too: the site needs a look.
    RollbackIncomplete,
    /// Left by a crash with steps a later run no longer plans: closed
    /// without undo (the later run says so).
    Abandoned,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::RolledBack => "rolled-back",
            RunState::RollbackIncomplete => "rollback-incomplete",
            RunState::Abandoned => "abandoned",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            RunState::Running,
            RunState::Succeeded,
            RunState::RolledBack,
            RunState::RollbackIncomplete,
            RunState::Abandoned,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// One entry of the log (entries are appended, never changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    pub key: StepKey,
    pub state: StepState,
    /// The change (or the error, for `Failed`/`UndoFailed`).
    pub description: String,
    pub undo: Option<UndoData>,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("step log: {0}")]
pub struct StepLogError(pub String);

/// Where runs and their steps are recorded (the store's `step_log`
/// table; [`MemoryStepLog`] in memory). Synchronous: the runner calls it
/// off the async executor.
pub trait StepLog: Send + Sync + fmt::Debug {
    /// Keeps other runs of `saga` (in this process or another one on the
    /// same log) out while the guard lives; an error says one is running.
    fn lock_saga(&self, saga: &str) -> Result<SagaLock, StepLogError>;
    /// The newest run of `saga` that has not ended, with its entries in
    /// the order they were written.
    fn open_run(&self, saga: &str) -> Result<Option<(RunId, Vec<StepRecord>)>, StepLogError>;
    fn begin_run(&self, saga: &str) -> Result<RunId, StepLogError>;
    fn record(&self, run: RunId, record: &StepRecord) -> Result<(), StepLogError>;
    fn end_run(&self, run: RunId, state: RunState) -> Result<(), StepLogError>;
}

/// Held while a saga runs; dropping it lets the next run in.
pub struct SagaLock(#[allow(dead_code)] Box<dyn Send>);

impl SagaLock {
    pub fn new(guard: impl Send + 'static) -> Self {
        Self(Box::new(guard))
    }
}

impl fmt::Debug for SagaLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SagaLock")
    }
}

/// Saga locks within one process.
#[derive(Debug, Default, Clone)]
pub struct InProcessLocks {
    held: Arc<Mutex<HashSet<String>>>,
}

struct InProcessGuard {
    held: Arc<Mutex<HashSet<String>>>,
    saga: String,
}

impl Drop for InProcessGuard {
    fn drop(&mut self) {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.saga);
    }
}

impl InProcessLocks {
    pub fn lock(&self, saga: &str) -> Result<SagaLock, StepLogError> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if !held.insert(saga.to_string()) {
            return Err(StepLogError(format!(
                "another run of {saga} is in progress in this process"
            )));
        }
        Ok(SagaLock::new(InProcessGuard {
            held: self.held.clone(),
            saga: saga.to_string(),
        }))
    }
}

/// A step log in memory: for tests and for runs that need no resume.
#[derive(Debug, Default)]
pub struct MemoryStepLog {
    runs: Mutex<Vec<MemoryRun>>,
    locks: InProcessLocks,
}

#[derive(Debug, Clone)]
struct MemoryRun {
    saga: String,
    state: RunState,
    records: Vec<StepRecord>,
}

impl MemoryStepLog {
    /// Every run as (saga, state, entries), oldest first.
    pub fn runs(&self) -> Vec<(String, RunState, Vec<StepRecord>)> {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|r| (r.saga.clone(), r.state, r.records.clone()))
            .collect()
    }
}

impl StepLog for MemoryStepLog {
    fn lock_saga(&self, saga: &str) -> Result<SagaLock, StepLogError> {
        self.locks.lock(saga)
    }

    fn open_run(&self, saga: &str) -> Result<Option<(RunId, Vec<StepRecord>)>, StepLogError> {
        let runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(runs
            .iter()
            .enumerate()
            .rev()
            .find(|(_, r)| r.saga == saga)
            .filter(|(_, r)| r.state == RunState::Running)
            .map(|(i, r)| (RunId(i as i64), r.records.clone())))
    }

    fn begin_run(&self, saga: &str) -> Result<RunId, StepLogError> {
        let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        runs.push(MemoryRun {
            saga: saga.to_string(),
            state: RunState::Running,
            records: Vec::new(),
        });
        Ok(RunId(runs.len() as i64 - 1))
    }

    fn record(&self, run: RunId, record: &StepRecord) -> Result<(), StepLogError> {
        let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        let r = usize::try_from(run.0)
            .ok()
            .and_then(|i| runs.get_mut(i))
            .ok_or_else(|| StepLogError(format!("no {run}")))?;
        r.records.push(record.clone());
        Ok(())
    }

    fn end_run(&self, run: RunId, state: RunState) -> Result<(), StepLogError> {
        let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        let r = usize::try_from(run.0)
            .ok()
            .and_then(|i| runs.get_mut(i))
            .ok_or_else(|| StepLogError(format!("no {run}")))?;
        r.state = state;
        Ok(())
    }
}
