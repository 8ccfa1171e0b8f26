//! The `firmware_ids` table: which firmware ids (system UUID, serial) each
//! stored host reported. Many boards ship one UUID or serial for every
//! unit, so a firmware id is an identity only while no host with other MACs
//! reported it; [`resolve`] picks the id a discovered host is stored under
//! and [`flags`] tells which hosts share one.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{Ctx, StoreError, host_macs};
use crate::domain::inventory::{DiscoveredHost, HostFlag};
use crate::domain::values::{HostId, MacAddress};

/// The firmware ids `host` reported, in order of preference (its own id
/// when the validator gave none and the id is a firmware id).
pub(super) fn candidates(host: &DiscoveredHost) -> Vec<HostId> {
    if host.firmware_ids.is_empty() && !host.id.as_str().starts_with("macs:") {
        vec![host.id.clone()]
    } else {
        host.firmware_ids.clone()
    }
}

/// Where [`resolve`] puts a host.
#[derive(Debug)]
pub(super) enum Resolved {
    /// Store it under this id.
    Id(HostId),
    /// Every firmware id it reported belongs to hosts with other MACs and
    /// it has no MAC to be known by: refused.
    NoIdentity(String),
}

/// The id to store `host` under: the first firmware id that is either the
/// id of a stored host sharing a MAC with it (or having none), or that no
/// stored host reported; else its MACs. A stored host is thus never matched
/// by a peer with none of its MACs.
pub(super) fn resolve(
    tx: &Transaction<'_>,
    path: &Path,
    host: &DiscoveredHost,
    macs: &[MacAddress],
) -> Result<Resolved, StoreError> {
    let mine: Vec<String> = macs.iter().map(ToString::to_string).collect();
    let mut shared = Vec::new();
    for f in candidates(host) {
        let exists: bool = tx
            .prepare_cached("SELECT 1 FROM hosts WHERE host_id = ?1")
            .and_then(|mut s| s.query_row([f.as_str()], |_| Ok(())).optional())
            .ctx(path, "look up host")?
            .is_some();
        if exists {
            let stored = host_macs::stored_sorted(tx, path, f.as_str())?;
            if stored.is_empty() || stored.iter().any(|m| mine.contains(m)) {
                return Ok(Resolved::Id(f));
            }
        } else {
            let holders: Option<String> = tx
                .prepare_cached("SELECT host_id FROM firmware_ids WHERE firmware_id = ?1 LIMIT 1")
                .and_then(|mut s| s.query_row([f.as_str()], |r| r.get(0)).optional())
                .ctx(path, "look up firmware id")?;
            if holders.is_none() {
                return Ok(Resolved::Id(f));
            }
        }
        shared.push(f.to_string());
    }
    match HostId::from_macs(macs) {
        Ok(id) => Ok(Resolved::Id(id)),
        Err(_) => Ok(Resolved::NoIdentity(format!(
            "{} at {} has no MAC and its firmware id(s) {} belong to other hosts; not stored",
            host.id,
            host.ip,
            shared.join(", ")
        ))),
    }
}

/// Records that `id` reported `firmware` (replacing what it reported
/// before); returns the ids newly recorded that other hosts reported too,
/// each with one of those hosts.
pub(super) fn record(
    tx: &Transaction<'_>,
    path: &Path,
    id: &HostId,
    firmware: &[HostId],
) -> Result<Vec<(HostId, HostId)>, StoreError> {
    let before: Vec<String> = tx
        .prepare_cached("SELECT firmware_id FROM firmware_ids WHERE host_id = ?1")
        .and_then(|mut s| s.query_map([id.as_str()], |r| r.get(0))?.collect())
        .ctx(path, "read firmware ids")?;
    let now: Vec<String> = firmware.iter().map(ToString::to_string).collect();
    if before.len() == now.len() && now.iter().all(|f| before.contains(f)) {
        return Ok(Vec::new());
    }
    for gone in before.iter().filter(|f| !now.contains(f)) {
        tx.prepare_cached("DELETE FROM firmware_ids WHERE firmware_id = ?1 AND host_id = ?2")
            .and_then(|mut s| s.execute(params![gone, id.as_str()]))
            .ctx(path, "forget firmware id")?;
    }
    let mut shared = Vec::new();
    for f in firmware.iter().filter(|f| !before.contains(&f.to_string())) {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO firmware_ids (firmware_id, host_id) VALUES (?1, ?2)",
        )
        .and_then(|mut s| s.execute(params![f.as_str(), id.as_str()]))
        .ctx(path, "record firmware id")?;
        let other: Option<String> = tx
            .prepare_cached(
                "SELECT host_id FROM firmware_ids WHERE firmware_id = ?1 AND host_id <> ?2 LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_row(params![f.as_str(), id.as_str()], |r| r.get(0))
                    .optional()
            })
            .ctx(path, "look up firmware id")?;
        if let Some(other) = other {
            let other: HostId = other.parse().map_err(|e| StoreError::Corrupt {
                path: path.to_path_buf(),
                row: format!("firmware_ids firmware_id={f}"),
                reason: format!("{e}"),
            })?;
            shared.push((f.clone(), other));
        }
    }
    Ok(shared)
}

/// The [`HostFlag::DuplicateFirmwareId`] flags of one host (`id`) or of
/// all, by host.
pub(super) fn flags(
    conn: &Connection,
    path: &Path,
    id: Option<&str>,
) -> Result<HashMap<String, Vec<HostFlag>>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT host_id, firmware_id, others FROM \
             (SELECT f.host_id, f.firmware_id, \
                     (SELECT count(*) FROM firmware_ids g \
                       WHERE g.firmware_id = f.firmware_id AND g.host_id <> f.host_id) AS others \
                FROM firmware_ids f WHERE ?1 IS NULL OR f.host_id = ?1) \
             WHERE others > 0 ORDER BY host_id, firmware_id",
        )
        .ctx(path, "read firmware ids")?;
    let mut rows = stmt.query([id]).ctx(path, "read firmware ids")?;
    let mut out: HashMap<String, Vec<HostFlag>> = HashMap::new();
    while let Some(row) = rows.next().ctx(path, "read firmware ids")? {
        let host: String = row.get(0).ctx(path, "read firmware ids")?;
        let raw: String = row.get(1).ctx(path, "read firmware ids")?;
        let others: i64 = row.get(2).ctx(path, "read firmware ids")?;
        let firmware_id: HostId = raw.parse().map_err(|e| StoreError::Corrupt {
            path: path.to_path_buf(),
            row: format!("firmware_ids firmware_id={raw:?}"),
            reason: format!("{e}"),
        })?;
        out.entry(host)
            .or_default()
            .push(HostFlag::DuplicateFirmwareId {
                firmware_id,
                others: u32::try_from(others).unwrap_or(u32::MAX),
            });
    }
    Ok(out)
}
