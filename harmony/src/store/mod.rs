//! The Inventory on SQLite: [`SqliteStore`] implements
//! [`InventoryRepository`].
//!
//! One module per table: `hosts.rs`, `host_macs.rs`, `host_events.rs`,
//! `firmware_ids.rs` (which host reported which UUID or serial),
//! `host_keys.rs` (pinned SSH host keys, [`HostKeyPins`](crate::domain::HostKeyPins)); the
//! schema is in [`migrations`]. This file opens the database (pragmas,
//! migration), runs the write transactions and holds the errors.
//!
//! One file (WAL mode), one connection behind a mutex, one transaction per
//! write. The schema is versioned with `PRAGMA user_version` (see
//! [`migrations`]): opening an older database migrates it, opening one
//! written by a newer Harmony fails with [`StoreError::TooNew`].
//!
//! Durability: `synchronous=NORMAL` in WAL mode. A commit is in the WAL (in
//! the OS page cache) before `COMMIT` returns, so a killed process (crash,
//! `kill -9`) loses nothing it committed; only a power loss or kernel crash
//! may roll back the last few commits, never corrupt the file. Discovery
//! re-scans, so that window is acceptable and buys several times the write
//! throughput of `FULL` (one fsync per checkpoint instead of per commit).
//! The step log and a scan's host batches are written with `FULL` (on disk
//! when stored). Closing does not checkpoint (`NO_CKPT_ON_CLOSE`): the WAL
//! is already on disk, and copying it into the main file is left to the
//! automatic checkpoint of a later write (every 8 192 pages), so a command
//! does not wait for it on its way out.

mod firmware_ids;
mod host_events;
mod host_keys;
mod host_macs;
mod hosts;
pub mod migrations;
mod step_log;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::domain::inventory::{
    DiscoveredHost, HostEvent, HostRecord, InventoryRepository, RepositoryError, UpsertResult,
    Upserted,
};
use crate::domain::values::{HostId, Hostname, InstallPhase, Role};

pub use host_events::MAX_EVENTS_PER_HOST;
pub use migrations::{MIGRATIONS, SCHEMA_VERSION};

/// How long a writer waits for another process holding the database lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything that can go wrong in the store, with the database path and
/// the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no data directory for the current user (is $HOME set?)")]
    NoDataDir,
    #[error("{path}: cannot create its directory: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {operation}: {source}")]
    Sqlite {
        path: PathBuf,
        operation: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "{path}: schema version {found} is newer than this Harmony supports ({supported}); \
         use a newer Harmony or another database file"
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("{path}: migration to schema version {version} failed: {source}")]
    Migration {
        path: PathBuf,
        version: u32,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: corrupted row {row}: {reason}")]
    Corrupt {
        path: PathBuf,
        row: String,
        reason: String,
    },
    #[error("{path}: {operation}: {source}")]
    Json {
        path: PathBuf,
        operation: String,
        #[source]
        source: serde_json::Error,
    },
}

impl From<StoreError> for RepositoryError {
    fn from(e: StoreError) -> Self {
        RepositoryError::Backend(e.to_string())
    }
}

/// Internal error: either a store failure or a domain refusal decided
/// inside a transaction (which then rolls back).
#[derive(Debug)]
pub(super) enum TxError {
    Store(StoreError),
    Repo(RepositoryError),
}

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> Self {
        TxError::Store(e)
    }
}

impl From<RepositoryError> for TxError {
    fn from(e: RepositoryError) -> Self {
        TxError::Repo(e)
    }
}

impl From<TxError> for RepositoryError {
    fn from(e: TxError) -> Self {
        match e {
            TxError::Store(e) => e.into(),
            TxError::Repo(e) => e,
        }
    }
}

/// The SQLite Inventory.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// Saga locks of an in-memory database (a file uses lock files).
    locks: crate::domain::InProcessLocks,
}

pub(super) trait Ctx<T> {
    fn ctx(self, path: &Path, operation: &str) -> Result<T, StoreError>;
}

impl<T> Ctx<T> for rusqlite::Result<T> {
    fn ctx(self, path: &Path, operation: &str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Sqlite {
            path: path.to_path_buf(),
            operation: operation.to_string(),
            source,
        })
    }
}

pub(super) fn to_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(super) fn from_ms(ms: i64) -> Option<SystemTime> {
    let ms = u64::try_from(ms).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_millis(ms))
}

pub(super) fn sat_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl SqliteStore {
    /// `<user data dir>/harmony/inventory.sqlite3`, e.g.
    /// `~/.local/share/harmony/inventory.sqlite3` on Linux. Callers may pass
    /// any other path to [`SqliteStore::open`].
    pub fn default_path() -> Result<PathBuf, StoreError> {
        directories::ProjectDirs::from("", "", "harmony")
            .map(|d| d.data_dir().join("inventory.sqlite3"))
            .ok_or(StoreError::NoDataDir)
    }

    /// Opens (creating it and its directory if needed) and migrates the
    /// database at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: path.to_path_buf(),
                source,
            })?;
        }
        let mut conn = Connection::open(path).ctx(path, "open")?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .ctx(path, "set busy_timeout")?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .ctx(path, "set journal_mode=WAL")?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), %mode, "SQLite refused WAL mode");
        }
        conn.execute_batch(
            "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; \
             PRAGMA wal_autocheckpoint=8192; PRAGMA cache_size=-16384;",
        )
        .ctx(path, "set pragmas")?;
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .ctx(path, "set no checkpoint on close")?;
        conn.set_prepared_statement_cache_capacity(64);
        migrate(&mut conn, path)?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            locks: crate::domain::InProcessLocks::default(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        let conn = self.lock();
        user_version(&conn, &self.path)
    }

    /// `PRAGMA integrity_check`: `"ok"` for a sound file.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        let conn = self.lock();
        let rows: Vec<String> = conn
            .prepare("PRAGMA integrity_check")
            .and_then(|mut s| {
                s.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .ctx(&self.path, "integrity_check")?;
        Ok(rows.join("\n"))
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no open transaction behind
        // (it rolls back on drop), so the connection is still usable.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` in one IMMEDIATE transaction; commits on `Ok`.
    fn write<T>(
        &self,
        operation: &str,
        f: impl FnOnce(&Transaction<'_>, &Path) -> Result<T, TxError>,
    ) -> Result<T, RepositoryError> {
        self.write_as(operation, false, f)
    }

    /// [`SqliteStore::write`], on disk when it returns if `durable`.
    fn write_as<T>(
        &self,
        operation: &str,
        durable: bool,
        f: impl FnOnce(&Transaction<'_>, &Path) -> Result<T, TxError>,
    ) -> Result<T, RepositoryError> {
        let mut conn = self.lock();
        let path = self.path.as_path();
        if !durable {
            return Self::transaction(&mut conn, path, operation, f);
        }
        conn.execute_batch("PRAGMA synchronous=FULL")
            .ctx(path, &format!("{operation}: synchronous=FULL"))
            .map_err(RepositoryError::from)?;
        let out = Self::transaction(&mut conn, path, operation, f);
        if let Err(e) = conn.execute_batch("PRAGMA synchronous=NORMAL") {
            tracing::warn!(error = %e, "could not restore synchronous=NORMAL");
        }
        out
    }

    /// `f` in one immediate transaction on `conn`.
    fn transaction<T>(
        conn: &mut Connection,
        path: &Path,
        operation: &str,
        f: impl FnOnce(&Transaction<'_>, &Path) -> Result<T, TxError>,
    ) -> Result<T, RepositoryError> {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx(path, &format!("{operation}: begin"))
            .map_err(RepositoryError::from)?;
        let out = f(&tx, path)?;
        tx.commit()
            .ctx(path, &format!("{operation}: commit"))
            .map_err(RepositoryError::from)?;
        Ok(out)
    }
}

/// `synchronous=FULL` while it lives, back to NORMAL when dropped: the
/// writes made meanwhile are on disk when their commit returns.
pub(super) struct Durable<'c> {
    conn: &'c Connection,
}

impl<'c> Durable<'c> {
    pub(super) fn new(conn: &'c Connection, path: &Path) -> Result<Self, StoreError> {
        conn.execute_batch("PRAGMA synchronous=FULL")
            .ctx(path, "synchronous=FULL")?;
        Ok(Self { conn })
    }
}

impl Drop for Durable<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.conn.execute_batch("PRAGMA synchronous=NORMAL") {
            tracing::warn!(error = %e, "could not restore synchronous=NORMAL");
        }
    }
}

fn user_version(conn: &Connection, path: &Path) -> Result<u32, StoreError> {
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .ctx(path, "read user_version")?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt {
        path: path.to_path_buf(),
        row: "PRAGMA user_version".into(),
        reason: format!("negative schema version {v}"),
    })
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let found = user_version(conn, path)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let err = |source| StoreError::Migration {
            path: path.to_path_buf(),
            version,
            source,
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        // Another process may have migrated while we waited for the lock.
        if user_version(&tx, path)? >= version {
            continue;
        }
        tx.execute_batch(sql).map_err(err)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(err)?;
        tx.commit().map_err(err)?;
        tracing::info!(path = %path.display(), version, "inventory schema migrated");
    }
    Ok(())
}

impl InventoryRepository for SqliteStore {
    /// Upserts many hosts in one transaction (all or nothing on a storage
    /// error); the results are in input order and are what
    /// [`InventoryRepository::upsert_discovered`] would have returned for
    /// each in turn.
    fn upsert_many(
        &self,
        hosts: &[DiscoveredHost],
        seen_at: SystemTime,
    ) -> Result<Vec<UpsertResult>, RepositoryError> {
        Ok(self
            .upsert_scan(hosts, seen_at)?
            .into_iter()
            .map(|u| u.result)
            .collect())
    }

    /// [`InventoryRepository::upsert_many`] with the id each host is
    /// stored under: a firmware id (UUID, serial) that a stored host with
    /// none of the peer's MACs reported is not an identity for it (see
    /// `firmware_ids.rs`).
    ///
    /// A batch is on disk when this returns (`synchronous=FULL`): a scan
    /// stores its hosts batch by batch while it goes on, so the disk's
    /// flushes happen during the scan instead of in the next durable write
    /// (the step log's) after it.
    fn upsert_scan(
        &self,
        hosts: &[DiscoveredHost],
        seen_at: SystemTime,
    ) -> Result<Vec<Upserted>, RepositoryError> {
        self.write_as("upsert_many", true, |tx, path| {
            hosts
                .iter()
                .map(|h| hosts::upsert_one(tx, path, h, seen_at))
                .collect::<Result<Vec<_>, _>>()
        })
    }

    fn upsert_discovered(
        &self,
        host: &DiscoveredHost,
        seen_at: SystemTime,
    ) -> Result<UpsertResult, RepositoryError> {
        self.write("upsert", |tx, path| {
            hosts::upsert_one(tx, path, host, seen_at).map(|u| u.result)
        })
    }

    fn host(&self, id: &HostId) -> Result<Option<HostRecord>, RepositoryError> {
        let conn = self.lock();
        Ok(hosts::read_host(&conn, &self.path, id)?)
    }

    fn hosts(&self) -> Result<Vec<HostRecord>, RepositoryError> {
        let conn = self.lock();
        Ok(hosts::list(&conn, &self.path)?)
    }

    fn addresses(&self) -> Result<Vec<std::net::IpAddr>, RepositoryError> {
        let conn = self.lock();
        Ok(hosts::addresses(&conn, &self.path)?)
    }

    fn assign(
        &self,
        id: &HostId,
        role: Option<Role>,
        hostname: Option<Hostname>,
    ) -> Result<HostRecord, RepositoryError> {
        self.write("assign", |tx, path| {
            hosts::assign(tx, path, id, role, hostname)
        })
    }

    fn set_phase(&self, id: &HostId, phase: InstallPhase) -> Result<InstallPhase, RepositoryError> {
        self.write("set_phase", |tx, path| {
            hosts::set_phase(tx, path, id, phase)
        })
    }

    /// The last `limit` events of the host, oldest first.
    fn events(&self, id: &HostId, limit: usize) -> Result<Vec<HostEvent>, RepositoryError> {
        let conn = self.lock();
        Ok(host_events::recent(&conn, &self.path, id, limit)?)
    }
}
