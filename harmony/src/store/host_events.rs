//! The `host_events` table: each host's append-only event log (a trigger
//! refuses UPDATE), bounded: a host keeps its last
//! [`MAX_EVENTS_PER_HOST`] events, older ones are deleted in the transaction
//! that appends. Discovery records an event only when a host's hardware,
//! firmware ids, MACs or address change, never per scan.

use std::path::Path;
use std::time::SystemTime;

use rusqlite::{Connection, Transaction, params};

use super::{Ctx, StoreError, from_ms, to_ms};
use crate::domain::inventory::HostEvent;
use crate::domain::values::HostId;

/// How many events a host keeps (the newest); `show` prints the last 20.
pub const MAX_EVENTS_PER_HOST: i64 = 200;

/// Appends one event to the host's log (inside the caller's transaction)
/// and drops the host's events beyond the newest [`MAX_EVENTS_PER_HOST`].
pub(super) fn append_event(
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
    tx.prepare_cached(
        "DELETE FROM host_events WHERE host_id = ?1 AND id <= \
         (SELECT id FROM host_events WHERE host_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
    )
    .and_then(|mut s| s.execute(params![host.as_str(), MAX_EVENTS_PER_HOST]))
    .ctx(path, "prune events")?;
    Ok(())
}

/// The last `limit` events of the host, oldest first.
pub(super) fn recent(
    conn: &Connection,
    path: &Path,
    id: &HostId,
    limit: usize,
) -> Result<Vec<HostEvent>, StoreError> {
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
