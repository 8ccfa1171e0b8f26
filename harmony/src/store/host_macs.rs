//! The `host_macs` table: which host owns a MAC. A MAC belongs to one host;
//! a second claimant is a conflict and nothing is written.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{Ctx, StoreError};
use crate::domain::values::{HostId, MacAddress};

/// `macs` in order, each once.
pub(super) fn dedup_macs(macs: &[MacAddress]) -> Vec<MacAddress> {
    let mut out: Vec<MacAddress> = Vec::with_capacity(macs.len());
    for m in macs {
        if !out.contains(m) {
            out.push(*m);
        }
    }
    out
}

/// The first of `macs` owned by a host other than `id`, with its owner.
pub(super) fn claimed_by_other(
    tx: &Transaction<'_>,
    path: &Path,
    id: &str,
    macs: &[MacAddress],
) -> Result<Option<(MacAddress, HostId)>, StoreError> {
    let mut owner_of = tx
        .prepare_cached("SELECT host_id FROM host_macs WHERE mac = ?1")
        .ctx(path, "look up MAC owner")?;
    for mac in macs {
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
            return Ok(Some((*mac, existing)));
        }
    }
    Ok(None)
}

/// The MACs of `id` as stored text, sorted.
pub(super) fn stored_sorted(
    tx: &Transaction<'_>,
    path: &Path,
    id: &str,
) -> Result<Vec<String>, StoreError> {
    tx.prepare_cached("SELECT mac FROM host_macs WHERE host_id = ?1 ORDER BY mac")
        .and_then(|mut s| s.query_map([id], |r| r.get(0))?.collect())
        .ctx(path, "read host MACs")
}

/// Replaces the MACs of `id` with `macs` (`existed`: it had some before).
pub(super) fn replace(
    tx: &Transaction<'_>,
    path: &Path,
    id: &str,
    macs: &[MacAddress],
    existed: bool,
) -> Result<(), StoreError> {
    if existed {
        tx.prepare_cached("DELETE FROM host_macs WHERE host_id = ?1")
            .and_then(|mut s| s.execute([id]))
            .ctx(path, "replace MACs")?;
    }
    let mut insert_mac = tx
        .prepare_cached("INSERT INTO host_macs (mac, host_id) VALUES (?1, ?2)")
        .ctx(path, "insert MAC")?;
    for mac in macs {
        insert_mac
            .execute(params![mac.to_string(), id])
            .ctx(path, "insert MAC")?;
    }
    Ok(())
}

/// The MACs of one host (`id`) or of all, by host, in insertion order.
pub(super) fn load_macs(
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
