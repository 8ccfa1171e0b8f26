//! The Inventory on SQLite: [`SqliteStore`] implements
//! [`InventoryRepository`].
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

pub mod migrations;
mod step_log;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};

use crate::domain::inventory::{
    DiscoveredHost, HostEvent, HostRecord, HostSummary, InventoryRepository, RepositoryError,
    UpsertResult,
};
use crate::domain::values::{HostId, Hostname, InstallPhase, MacAddress, Role};

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
enum TxError {
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
}

trait Ctx<T> {
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

fn to_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn from_ms(ms: i64) -> Option<SystemTime> {
    let ms = u64::try_from(ms).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_millis(ms))
}

fn sat_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn dedup_macs(macs: &[MacAddress]) -> Vec<MacAddress> {
    let mut out: Vec<MacAddress> = Vec::with_capacity(macs.len());
    for m in macs {
        if !out.contains(m) {
            out.push(*m);
        }
    }
    out
}

const HOST_COLUMNS: &str = "rowid, host_id, ip, first_seen, last_seen, role, hostname, phase, \
     inventory_json, vendor, product, cpu_threads, memory_bytes, disk_count, disk_bytes, nic_count";

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
        conn.set_prepared_statement_cache_capacity(64);
        migrate(&mut conn, path)?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
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
        let mut conn = self.lock();
        let path = self.path.as_path();
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

fn append_event(
    tx: &Transaction<'_>,
    path: &Path,
    host: &HostId,
    at: SystemTime,
    kind: &str,
    detail: &str,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO host_events (host_id, at, kind, detail) VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut s| s.execute(params![host.as_str(), to_ms(at), kind, detail]))
    .ctx(path, "append event")?;
    Ok(())
}

fn upsert_one(
    tx: &Transaction<'_>,
    path: &Path,
    host: &DiscoveredHost,
    seen_at: SystemTime,
) -> Result<UpsertResult, TxError> {
    let id = host.id.as_str();
    let macs = dedup_macs(&host.macs);

    // A MAC belongs to one host: refuse the whole host if another owns one.
    {
        let mut owner_of = tx
            .prepare_cached("SELECT host_id FROM host_macs WHERE mac = ?1")
            .ctx(path, "look up MAC owner")?;
        for mac in &macs {
            let owner: Option<String> = owner_of
                .query_row([mac.to_string()], |r| r.get(0))
                .optional()
                .ctx(path, "look up MAC owner")?;
            if let Some(owner) = owner.filter(|o| o != id) {
                let existing: HostId = owner.parse().map_err(|e| StoreError::Corrupt {
                    path: path.to_path_buf(),
                    row: format!("host_macs mac={mac}"),
                    reason: format!("{e}"),
                })?;
                append_event(
                    tx,
                    path,
                    &existing,
                    seen_at,
                    "conflict",
                    &format!("{} at {} claims MAC {mac}; not stored", host.id, host.ip),
                )?;
                return Ok(UpsertResult::Conflict {
                    mac: *mac,
                    existing,
                });
            }
        }
    }

    let summary = HostSummary::from_inventory(&host.inventory);
    let inventory_json =
        serde_json::to_string(&host.inventory).map_err(|source| StoreError::Json {
            path: path.to_path_buf(),
            operation: format!("serialize inventory of {id}"),
            source,
        })?;
    let ip = host.ip.to_string();
    let seen = to_ms(seen_at);

    // The stored row, read once: address, MAC count, role, phase, document.
    type Row = (String, i64, Option<String>, String, String);
    let stored: Option<Row> = tx
        .prepare_cached(
            "SELECT ip, (SELECT count(*) FROM host_macs m WHERE m.host_id = h.host_id), \
             role, phase, inventory_json FROM hosts h WHERE host_id = ?1",
        )
        .and_then(|mut s| {
            s.query_row([id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()
        })
        .ctx(path, "read host")?;
    let previous: Option<(String, i64)> = stored.as_ref().map(|(ip, n, ..)| (ip.clone(), *n));

    if let Some((old_ip, _, role, phase, stored_json)) = &stored {
        let stored_macs: Vec<String> = tx
            .prepare_cached("SELECT mac FROM host_macs WHERE host_id = ?1 ORDER BY mac")
            .and_then(|mut s| s.query_map([id], |r| r.get(0))?.collect())
            .ctx(path, "read host MACs")?;
        let new_macs: Vec<String> = {
            let mut m: Vec<String> = macs.iter().map(ToString::to_string).collect();
            m.sort();
            m
        };
        // Anyone can answer a scan with another host's UUID or serial: a
        // claim with none of the host's MACs, or any change of address or
        // MACs once the host has a role, is refused and logged.
        let disjoint = !stored_macs.is_empty() && !new_macs.iter().any(|m| stored_macs.contains(m));
        let committed = role.is_some() || phase != InstallPhase::Discovered.as_str();
        let refusal = if disjoint {
            Some(format!(
                "{} at {ip} claims this host's identity with none of its MACs",
                host.id
            ))
        } else if committed && (old_ip != &ip || stored_macs != new_macs) {
            Some(format!(
                "{} at {ip} reports other MACs or another address than this host (role or install in progress)",
                host.id
            ))
        } else {
            None
        };
        if let Some(reason) = refusal {
            append_event(
                tx,
                path,
                &host.id,
                seen_at,
                "identity-conflict",
                &format!("{reason}; not stored"),
            )?;
            return Ok(UpsertResult::IdentityConflict {
                existing: host.id.clone(),
                reason,
            });
        }
        // Seen again, nothing changed but the collection time: only
        // last_seen moves, and the event log does not grow per scan.
        let unchanged = old_ip == &ip
            && stored_macs == new_macs
            && serde_json::from_str::<harmony_inventory_agent::model::Inventory>(stored_json)
                .map(|mut old| {
                    old.collected_at.clone_from(&host.inventory.collected_at);
                    old == host.inventory
                })
                .unwrap_or(false);
        if unchanged {
            tx.prepare_cached("UPDATE hosts SET last_seen = ?2 WHERE host_id = ?1")
                .and_then(|mut s| s.execute(params![id, seen]))
                .ctx(path, "update last_seen")?;
            return Ok(UpsertResult::Updated { ip_changed: false });
        }
    }

    // One statement for both cases: a new row, or the discovery columns of
    // a known host (first_seen, role, hostname and phase are never touched).
    tx.prepare_cached(
        "INSERT INTO hosts (host_id, ip, first_seen, last_seen, role, hostname, phase, \
         inventory_json, raw_json, vendor, product, cpu_threads, memory_bytes, \
         disk_count, disk_bytes, nic_count) \
         VALUES (?1, ?2, ?3, ?3, NULL, NULL, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
         ON CONFLICT(host_id) DO UPDATE SET ip = excluded.ip, last_seen = excluded.last_seen, \
         inventory_json = excluded.inventory_json, raw_json = excluded.raw_json, \
         vendor = excluded.vendor, product = excluded.product, \
         cpu_threads = excluded.cpu_threads, memory_bytes = excluded.memory_bytes, \
         disk_count = excluded.disk_count, disk_bytes = excluded.disk_bytes, \
         nic_count = excluded.nic_count",
    )
    .and_then(|mut s| {
        s.execute(params![
            id,
            ip,
            seen,
            InstallPhase::Discovered.as_str(),
            inventory_json,
            host.raw_json,
            summary.vendor,
            summary.product,
            summary.cpu_threads,
            summary.memory_bytes.map(sat_i64),
            summary.disk_count,
            sat_i64(summary.disk_bytes),
            summary.nic_count,
        ])
    })
    .ctx(path, "upsert host")?;
    let result = match &previous {
        None => UpsertResult::New,
        Some((old_ip, _)) => {
            tx.prepare_cached("DELETE FROM host_macs WHERE host_id = ?1")
                .and_then(|mut s| s.execute([id]))
                .ctx(path, "replace MACs")?;
            UpsertResult::Updated {
                ip_changed: *old_ip != ip,
            }
        }
    };
    {
        let mut insert_mac = tx
            .prepare_cached("INSERT INTO host_macs (mac, host_id) VALUES (?1, ?2)")
            .ctx(path, "insert MAC")?;
        for mac in &macs {
            insert_mac
                .execute(params![mac.to_string(), id])
                .ctx(path, "insert MAC")?;
        }
    }
    let (kind, detail) = match (&result, &previous) {
        (UpsertResult::Updated { ip_changed: true }, Some((old_ip, _))) => {
            ("ip-changed", format!("{old_ip} -> {ip}"))
        }
        (UpsertResult::Updated { .. }, Some((_, n))) => {
            ("updated", format!("at {ip}, {} MACs (was {n})", macs.len()))
        }
        _ => ("discovered", format!("at {ip}, {} MACs", macs.len())),
    };
    append_event(tx, path, &host.id, seen_at, kind, &detail)?;
    Ok(result)
}

/// Reads one `hosts` row (selected with [`HOST_COLUMNS`]) through the typed
/// constructors; anything invalid names the row.
fn parse_host(row: &Row<'_>, path: &Path, macs: Vec<MacAddress>) -> Result<HostRecord, StoreError> {
    let rowid: i64 = row.get(0).ctx(path, "read hosts row")?;
    let raw_id: Option<String> = row.get(1).ok();
    let name = match &raw_id {
        Some(id) => format!("hosts host_id={id:?}"),
        None => format!("hosts rowid={rowid}"),
    };
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        row: name.clone(),
        reason,
    };
    fn col<T: rusqlite::types::FromSql>(row: &Row<'_>, i: usize, what: &str) -> Result<T, String> {
        row.get(i).map_err(|e| format!("column {what}: {e}"))
    }
    let id: HostId = raw_id
        .ok_or_else(|| corrupt("column host_id: not text".into()))?
        .parse()
        .map_err(|e| corrupt(format!("column host_id: {e}")))?;
    let ip: IpAddr = col::<String>(row, 2, "ip")
        .map_err(&corrupt)?
        .parse()
        .map_err(|e| corrupt(format!("column ip: {e}")))?;
    let time = |i: usize, what: &str| -> Result<SystemTime, StoreError> {
        let ms: i64 = col(row, i, what).map_err(&corrupt)?;
        from_ms(ms).ok_or_else(|| corrupt(format!("column {what}: bad time {ms}")))
    };
    let first_seen = time(3, "first_seen")?;
    let last_seen = time(4, "last_seen")?;
    let role: Option<Role> = col::<Option<String>>(row, 5, "role")
        .map_err(&corrupt)?
        .map(|r| r.parse())
        .transpose()
        .map_err(|e| corrupt(format!("column role: {e}")))?;
    let hostname: Option<Hostname> = col::<Option<String>>(row, 6, "hostname")
        .map_err(&corrupt)?
        .map(|r| r.parse())
        .transpose()
        .map_err(|e| corrupt(format!("column hostname: {e}")))?;
    let phase: InstallPhase = col::<String>(row, 7, "phase")
        .map_err(&corrupt)?
        .parse()
        .map_err(|e| corrupt(format!("column phase: {e}")))?;
    let inventory =
        serde_json::from_str(&col::<String>(row, 8, "inventory_json").map_err(&corrupt)?)
            .map_err(|e| corrupt(format!("column inventory_json: {e}")))?;
    let u32_col = |i: usize, what: &str| -> Result<u32, StoreError> {
        let v: i64 = col(row, i, what).map_err(&corrupt)?;
        u32::try_from(v).map_err(|_| corrupt(format!("column {what}: out of range {v}")))
    };
    let u64_col = |i: usize, what: &str| -> Result<u64, StoreError> {
        let v: i64 = col(row, i, what).map_err(&corrupt)?;
        u64::try_from(v).map_err(|_| corrupt(format!("column {what}: out of range {v}")))
    };
    let opt = |i: usize| -> Result<bool, StoreError> {
        let v: rusqlite::types::Value = col(row, i, "summary").map_err(&corrupt)?;
        Ok(!matches!(v, rusqlite::types::Value::Null))
    };
    let summary = HostSummary {
        vendor: col(row, 9, "vendor").map_err(&corrupt)?,
        product: col(row, 10, "product").map_err(&corrupt)?,
        cpu_threads: if opt(11)? {
            Some(u32_col(11, "cpu_threads")?)
        } else {
            None
        },
        memory_bytes: if opt(12)? {
            Some(u64_col(12, "memory_bytes")?)
        } else {
            None
        },
        disk_count: u32_col(13, "disk_count")?,
        disk_bytes: u64_col(14, "disk_bytes")?,
        nic_count: u32_col(15, "nic_count")?,
    };
    Ok(HostRecord {
        id,
        ip,
        macs,
        first_seen,
        last_seen,
        role,
        hostname,
        phase,
        summary,
        inventory,
    })
}

fn load_macs(
    conn: &Connection,
    path: &Path,
    id: Option<&str>,
) -> Result<HashMap<String, Vec<MacAddress>>, StoreError> {
    let mut out: HashMap<String, Vec<MacAddress>> = HashMap::new();
    let sql = if id.is_some() {
        "SELECT host_id, mac FROM host_macs WHERE host_id = ?1 ORDER BY rowid"
    } else {
        "SELECT host_id, mac FROM host_macs WHERE ?1 IS NULL ORDER BY rowid"
    };
    let mut stmt = conn.prepare_cached(sql).ctx(path, "read MACs")?;
    let mut rows = stmt.query([id]).ctx(path, "read MACs")?;
    while let Some(row) = rows.next().ctx(path, "read MACs")? {
        let host: String = row.get(0).ctx(path, "read MACs")?;
        let mac: String = row.get(1).ctx(path, "read MACs")?;
        let mac: MacAddress = mac.parse().map_err(|e| StoreError::Corrupt {
            path: path.to_path_buf(),
            row: format!("host_macs mac={mac:?}"),
            reason: format!("{e}"),
        })?;
        out.entry(host).or_default().push(mac);
    }
    Ok(out)
}

fn read_host(
    conn: &Connection,
    path: &Path,
    id: &HostId,
) -> Result<Option<HostRecord>, StoreError> {
    let mut macs = load_macs(conn, path, Some(id.as_str()))?;
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {HOST_COLUMNS} FROM hosts WHERE host_id = ?1"
        ))
        .ctx(path, "read host")?;
    let mut rows = stmt.query([id.as_str()]).ctx(path, "read host")?;
    match rows.next().ctx(path, "read host")? {
        None => Ok(None),
        Some(row) => parse_host(row, path, macs.remove(id.as_str()).unwrap_or_default()).map(Some),
    }
}

fn require_host(tx: &Transaction<'_>, path: &Path, id: &HostId) -> Result<HostRecord, TxError> {
    read_host(tx, path, id)?.ok_or_else(|| RepositoryError::NotFound(id.clone()).into())
}

fn opt_str<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "none".to_string(), ToString::to_string)
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
        self.write("upsert_many", |tx, path| {
            hosts
                .iter()
                .map(|h| upsert_one(tx, path, h, seen_at))
                .collect::<Result<Vec<_>, _>>()
        })
    }

    fn upsert_discovered(
        &self,
        host: &DiscoveredHost,
        seen_at: SystemTime,
    ) -> Result<UpsertResult, RepositoryError> {
        self.write("upsert", |tx, path| upsert_one(tx, path, host, seen_at))
    }

    fn host(&self, id: &HostId) -> Result<Option<HostRecord>, RepositoryError> {
        let conn = self.lock();
        Ok(read_host(&conn, &self.path, id)?)
    }

    fn hosts(&self) -> Result<Vec<HostRecord>, RepositoryError> {
        let conn = self.lock();
        let path = self.path.as_path();
        let mut macs = load_macs(&conn, path, None)?;
        let mut stmt = conn
            .prepare_cached(&format!("SELECT {HOST_COLUMNS} FROM hosts"))
            .ctx(path, "list hosts")?;
        let mut rows = stmt.query([]).ctx(path, "list hosts")?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().ctx(path, "list hosts")? {
            let id: Option<String> = row.get(1).ok();
            let m = id.and_then(|id| macs.remove(&id)).unwrap_or_default();
            out.push(parse_host(row, path, m)?);
        }
        crate::domain::inventory::sort_hosts(&mut out);
        Ok(out)
    }

    fn assign(
        &self,
        id: &HostId,
        role: Option<Role>,
        hostname: Option<Hostname>,
    ) -> Result<HostRecord, RepositoryError> {
        self.write("assign", |tx, path| {
            let cur = require_host(tx, path, id)?;
            let phase = match cur.phase {
                InstallPhase::Discovered | InstallPhase::RoleAssigned => {
                    let target = if role.is_some() {
                        InstallPhase::RoleAssigned
                    } else {
                        InstallPhase::Discovered
                    };
                    if target == cur.phase {
                        target
                    } else {
                        cur.phase
                            .transition(target)
                            .map_err(RepositoryError::from)?
                    }
                }
                other => {
                    if cur.role != role || cur.hostname != hostname {
                        return Err(RepositoryError::Rejected {
                            host: id.clone(),
                            reason: format!(
                                "cannot change role or host name while {other} \
                                 (only in discovered or role-assigned)"
                            ),
                        }
                        .into());
                    }
                    other
                }
            };
            if cur.role == role && cur.hostname == hostname && cur.phase == phase {
                return Ok(cur);
            }
            tx.prepare_cached(
                "UPDATE hosts SET role = ?2, hostname = ?3, phase = ?4 WHERE host_id = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id.as_str(),
                    role.map(|r| r.as_str()),
                    hostname.as_ref().map(Hostname::as_str),
                    phase.as_str()
                ])
            })
            .ctx(path, "assign")?;
            append_event(
                tx,
                path,
                id,
                SystemTime::now(),
                if role.is_some() {
                    "role-assigned"
                } else {
                    "role-cleared"
                },
                &format!(
                    "role {} -> {}, hostname {} -> {}, phase {} -> {}",
                    opt_str(&cur.role),
                    opt_str(&role),
                    opt_str(&cur.hostname),
                    opt_str(&hostname),
                    cur.phase,
                    phase
                ),
            )?;
            require_host(tx, path, id)
        })
    }

    fn set_phase(&self, id: &HostId, phase: InstallPhase) -> Result<InstallPhase, RepositoryError> {
        self.write("set_phase", |tx, path| {
            let cur = require_host(tx, path, id)?;
            cur.phase.transition(phase).map_err(RepositoryError::from)?;
            if phase == InstallPhase::RoleAssigned && cur.role.is_none() {
                return Err(RepositoryError::Rejected {
                    host: id.clone(),
                    reason: "has no role: use assign".into(),
                }
                .into());
            }
            // Back to `discovered` means unassigned: the role goes too.
            let clear = phase == InstallPhase::Discovered;
            tx.prepare_cached(
                "UPDATE hosts SET phase = ?2, \
                 role = CASE WHEN ?3 THEN NULL ELSE role END, \
                 hostname = CASE WHEN ?3 THEN NULL ELSE hostname END \
                 WHERE host_id = ?1",
            )
            .and_then(|mut s| s.execute(params![id.as_str(), phase.as_str(), clear]))
            .ctx(path, "set phase")?;
            append_event(
                tx,
                path,
                id,
                SystemTime::now(),
                "phase",
                &format!("{} -> {}", cur.phase, phase),
            )?;
            Ok(cur.phase)
        })
    }

    /// The last `limit` events of the host, oldest first.
    fn events(&self, id: &HostId, limit: usize) -> Result<Vec<HostEvent>, RepositoryError> {
        let conn = self.lock();
        let path = self.path.as_path();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, at, kind, detail FROM \
                 (SELECT id, at, kind, detail FROM host_events WHERE host_id = ?1 \
                  ORDER BY id DESC LIMIT ?2) ORDER BY id",
            )
            .ctx(path, "read events")?;
        let mut rows = stmt
            .query(params![id.as_str(), limit])
            .ctx(path, "read events")?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().ctx(path, "read events")? {
            let eid: i64 = row.get(0).ctx(path, "read events")?;
            let corrupt = |reason: String| StoreError::Corrupt {
                path: path.to_path_buf(),
                row: format!("host_events id={eid}"),
                reason,
            };
            let at: i64 = row.get(1).map_err(|e| corrupt(format!("column at: {e}")))?;
            out.push(HostEvent {
                host: id.clone(),
                at: from_ms(at).ok_or_else(|| corrupt(format!("column at: bad time {at}")))?,
                kind: row
                    .get(2)
                    .map_err(|e| corrupt(format!("column kind: {e}")))?,
                detail: row
                    .get(3)
                    .map_err(|e| corrupt(format!("column detail: {e}")))?,
            });
        }
        Ok(out)
    }
}
