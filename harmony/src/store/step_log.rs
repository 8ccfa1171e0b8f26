//! The `saga_runs` and `step_log` tables: the store's [`StepLog`]. Each
//! write is one transaction made with `synchronous=FULL` (the store's other
//! writes use NORMAL), so it is on disk when it returns: the log is written
//! before a step acts on the site, and a power loss must not keep the act
//! and lose its entry.

use std::time::SystemTime;

use rusqlite::{OptionalExtension, params};

use super::{Ctx, Durable, SqliteStore, to_ms};
use crate::domain::{
    RunId, RunState, SagaLock, StepKey, StepLog, StepLogError, StepRecord, StepState, UndoData,
};

fn err(e: impl std::fmt::Display) -> StepLogError {
    StepLogError(e.to_string())
}

impl StepLog for SqliteStore {
    /// An exclusive `flock` on `<db>.saga-<name>.lock` (held by the open
    /// file: released when the guard drops or the process dies, so a crash
    /// never leaves a stale lock); in-process for `:memory:`.
    fn lock_saga(&self, saga: &str) -> Result<SagaLock, StepLogError> {
        use nix::errno::Errno;
        use nix::fcntl::{Flock, FlockArg};
        if self.path().as_os_str() == ":memory:" {
            return self.locks.lock(saga);
        }
        let name: String = saga
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut lock_path = self.path().as_os_str().to_owned();
        lock_path.push(format!(".saga-{name}.lock"));
        let lock_path = std::path::PathBuf::from(lock_path);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| err(format!("{}: {e}", lock_path.display())))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(guard) => Ok(SagaLock::new(guard)),
            Err((_, Errno::EWOULDBLOCK)) => Err(err(format!(
                "another run of {saga} is in progress (it holds {})",
                lock_path.display()
            ))),
            Err((_, e)) => Err(err(format!("lock {}: {e}", lock_path.display()))),
        }
    }

    fn open_run(&self, saga: &str) -> Result<Option<(RunId, Vec<StepRecord>)>, StepLogError> {
        let conn = self.lock();
        let path = self.path();
        let newest: Option<(i64, String)> = conn
            .query_row(
                "SELECT run_id, state FROM saga_runs WHERE saga = ?1 \
                 ORDER BY run_id DESC LIMIT 1",
                params![saga],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .ctx(path, "step log: find the open run")
            .map_err(err)?;
        let Some((run, state)) = newest else {
            return Ok(None);
        };
        if RunState::parse(&state) != Some(RunState::Running) {
            return Ok(None);
        }
        let mut stmt = conn
            .prepare_cached(
                "SELECT step_key, state, description, undo_json FROM step_log \
                 WHERE run_id = ?1 ORDER BY id",
            )
            .ctx(path, "step log: read a run")
            .map_err(err)?;
        let rows = stmt
            .query_map(params![run], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .ctx(path, "step log: read a run")
            .map_err(err)?;
        let mut records = Vec::with_capacity(rows.len());
        for (key, state, description, undo) in rows {
            let state = StepState::parse(&state).ok_or_else(|| {
                err(format!(
                    "{}: run {run}: unknown step state {state:?}",
                    path.display()
                ))
            })?;
            let undo = undo
                .map(|u| serde_json::from_str(&u).map(UndoData))
                .transpose()
                .map_err(|e| {
                    err(format!(
                        "{}: run {run}: undo data of {key}: {e}",
                        path.display()
                    ))
                })?;
            records.push(StepRecord {
                key: StepKey(key),
                state,
                description,
                undo,
            });
        }
        Ok(Some((RunId(run), records)))
    }

    fn begin_run(&self, saga: &str) -> Result<RunId, StepLogError> {
        let conn = self.lock();
        let _durable = Durable::new(&conn, self.path()).map_err(err)?;
        conn.execute(
            "INSERT INTO saga_runs (saga, state, started_at) VALUES (?1, ?2, ?3)",
            params![saga, RunState::Running.as_str(), to_ms(SystemTime::now())],
        )
        .ctx(self.path(), "step log: begin a run")
        .map_err(err)?;
        Ok(RunId(conn.last_insert_rowid()))
    }

    fn record(&self, run: RunId, record: &StepRecord) -> Result<(), StepLogError> {
        let undo = record
            .undo
            .as_ref()
            .map(|u| serde_json::to_string(&u.0))
            .transpose()
            .map_err(err)?;
        let conn = self.lock();
        let _durable = Durable::new(&conn, self.path()).map_err(err)?;
        conn.execute(
            "INSERT INTO step_log (run_id, at, step_key, state, description, undo_json) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                run.0,
                to_ms(SystemTime::now()),
                record.key.0,
                record.state.as_str(),
                record.description,
                undo
            ],
        )
        .ctx(self.path(), "step log: record a step")
        .map_err(err)?;
        Ok(())
    }

    fn end_run(&self, run: RunId, state: RunState) -> Result<(), StepLogError> {
        let conn = self.lock();
        let _durable = Durable::new(&conn, self.path()).map_err(err)?;
        let n = conn
            .execute(
                "UPDATE saga_runs SET state = ?2, ended_at = ?3 WHERE run_id = ?1",
                params![run.0, state.as_str(), to_ms(SystemTime::now())],
            )
            .ctx(self.path(), "step log: end a run")
            .map_err(err)?;
        if n == 0 {
            return Err(err(format!("{}: no {run}", self.path().display())));
        }
        Ok(())
    }
}
