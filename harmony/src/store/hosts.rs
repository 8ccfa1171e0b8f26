//! The `hosts` table: one row per host (address, first/last seen, role,
//! host name, phase, the cleaned and the raw agent document, and summary
//! columns), read back through the typed constructors and the hardware
//! conversion.

use std::net::IpAddr;
use std::path::Path;
use std::time::SystemTime;

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::firmware_ids::{self, Resolved};
use super::host_events::append_event;
use super::{Ctx, StoreError, TxError, from_ms, host_macs, sat_i64, to_ms};
use crate::domain::hardware::HostHardware;
use crate::domain::inventory::{
    DiscoveredHost, HostFlag, HostRecord, HostSummary, RepositoryError, UpsertResult, Upserted,
};
use crate::domain::values::{HostId, Hostname, InstallPhase, MacAddress, Role};

const HOST_COLUMNS: &str = "rowid, host_id, ip, first_seen, last_seen, role, hostname, phase, \
     inventory_json, vendor, product, cpu_threads, memory_bytes, disk_count, disk_bytes, nic_count";

/// Stores what discovery found (see
/// [`crate::domain::InventoryRepository::upsert_discovered`]), under the id
/// [`firmware_ids::resolve`] gives it.
pub(super) fn upsert_one(
    tx: &Transaction<'_>,
    path: &Path,
    host: &DiscoveredHost,
    seen_at: SystemTime,
) -> Result<Upserted, TxError> {
    let macs = host_macs::dedup_macs(&host.macs);
    // A firmware id another host (none of these MACs) reported is not an
    // identity for this one: it is stored under its next id.
    let host_id = match firmware_ids::resolve(tx, path, host, &macs)? {
        Resolved::Id(id) => id,
        Resolved::NoIdentity(reason) => {
            return Ok(Upserted {
                id: host.id.clone(),
                result: UpsertResult::IdentityConflict {
                    existing: host.id.clone(),
                    reason,
                },
            });
        }
    };
    let result = upsert_as(tx, path, host, &host_id, &macs, seen_at)?;
    if matches!(result, UpsertResult::New | UpsertResult::Updated { .. }) {
        let firmware = firmware_ids::candidates(host);
        for (shared, other) in firmware_ids::record(tx, path, &host_id, &firmware)? {
            let detail = format!(
                "{shared} is also reported by {other}, which has none of this host's MACs: \
                 not an identity for either"
            );
            append_event(
                tx,
                path,
                &host_id,
                seen_at,
                "duplicate-firmware-id",
                &detail,
            )?;
            let detail = format!(
                "{shared} is also reported by {host_id} at {}, which has none of this host's MACs: \
                 not an identity for either",
                host.ip
            );
            append_event(tx, path, &other, seen_at, "duplicate-firmware-id", &detail)?;
        }
    }
    Ok(Upserted {
        id: host_id,
        result,
    })
}

/// Stores `host` under `host_id` (see [`upsert_one`]).
fn upsert_as(
    tx: &Transaction<'_>,
    path: &Path,
    host: &DiscoveredHost,
    host_id: &HostId,
    macs: &[MacAddress],
    seen_at: SystemTime,
) -> Result<UpsertResult, TxError> {
    let id = host_id.as_str();

    // A MAC belongs to one host: refuse the whole host if another owns one.
    if let Some((mac, existing)) = host_macs::claimed_by_other(tx, path, id, macs)? {
        append_event(
            tx,
            path,
            &existing,
            seen_at,
            "conflict",
            &format!("{host_id} at {} claims MAC {mac}; not stored", host.ip),
        )?;
        return Ok(UpsertResult::Conflict { mac, existing });
    }

    let summary = HostSummary::from_hardware(&host.hardware);
    // The typed column keeps the cleaned agent document.
    let document = host.hardware.to_wire();
    let inventory_json = serde_json::to_string(&document).map_err(|source| StoreError::Json {
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
    let mut quiet = false;

    if let Some((old_ip, _, role, phase, stored_json)) = &stored {
        let stored_macs = host_macs::stored_sorted(tx, path, id)?;
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
                host_id
            ))
        } else if committed && (old_ip != &ip || stored_macs != new_macs) {
            Some(format!(
                "{} at {ip} reports other MACs or another address than this host (role or install in progress)",
                host_id
            ))
        } else {
            None
        };
        if let Some(reason) = refusal {
            append_event(
                tx,
                path,
                host_id,
                seen_at,
                "identity-conflict",
                &format!("{reason}; not stored"),
            )?;
            return Ok(UpsertResult::IdentityConflict {
                existing: host_id.clone(),
                reason,
            });
        }
        // Seen again, nothing changed but the collection time: only
        // last_seen moves, and the event log does not grow per scan.
        let old =
            serde_json::from_str::<harmony_inventory_agent::model::Inventory>(stored_json).ok();
        let same_place = old_ip == &ip && stored_macs == new_macs;
        if same_place
            && old
                .as_ref()
                .is_some_and(|o| *o == with_times_of(&document, o))
        {
            tx.prepare_cached("UPDATE hosts SET last_seen = ?2 WHERE host_id = ?1")
                .and_then(|mut s| s.execute(params![id, seen]))
                .ctx(path, "update last_seen")?;
            return Ok(UpsertResult::Updated { ip_changed: false });
        }
        // Only volatile fields changed (CPU clock, warnings): the document
        // is kept current, and no event is recorded.
        quiet = same_place && old.as_ref().is_some_and(|o| same_hardware(o, &document));
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
        Some((old_ip, _)) => UpsertResult::Updated {
            ip_changed: *old_ip != ip,
        },
    };
    host_macs::replace(tx, path, id, macs, previous.is_some())?;
    let (kind, detail) = match (&result, &previous) {
        (UpsertResult::Updated { ip_changed: true }, Some((old_ip, _))) => {
            ("ip-changed", format!("{old_ip} -> {ip}"))
        }
        (UpsertResult::Updated { .. }, Some((_, n))) => {
            ("updated", format!("at {ip}, {} MACs (was {n})", macs.len()))
        }
        _ => ("discovered", format!("at {ip}, {} MACs", macs.len())),
    };
    if !quiet {
        append_event(tx, path, host_id, seen_at, kind, &detail)?;
    }
    Ok(result)
}

/// `doc` with the collection time of `like`.
fn with_times_of(
    doc: &harmony_inventory_agent::model::Inventory,
    like: &harmony_inventory_agent::model::Inventory,
) -> harmony_inventory_agent::model::Inventory {
    let mut d = doc.clone();
    d.collected_at.clone_from(&like.collected_at);
    d
}

/// Whether two documents of one host differ only in volatile fields: the
/// collection time, the current CPU clock and the agent's warnings. Any
/// other change (hardware, firmware, addresses, links) is an event.
pub(super) fn same_hardware(
    a: &harmony_inventory_agent::model::Inventory,
    b: &harmony_inventory_agent::model::Inventory,
) -> bool {
    let mut b = with_times_of(b, a);
    b.cpu.mhz = a.cpu.mhz;
    b.warnings.clone_from(&a.warnings);
    *a == b
}

/// Reads one `hosts` row (selected with [`HOST_COLUMNS`]) through the typed
/// constructors and the hardware conversion; anything invalid names the
/// row.
fn parse_host(
    row: &Row<'_>,
    path: &Path,
    macs: Vec<MacAddress>,
    flags: Vec<HostFlag>,
) -> Result<HostRecord, StoreError> {
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
    // The stored document goes through the same conversion as discovery:
    // a row that no longer converts is corrupted.
    let document: harmony_inventory_agent::model::Inventory =
        serde_json::from_str(&col::<String>(row, 8, "inventory_json").map_err(&corrupt)?)
            .map_err(|e| corrupt(format!("column inventory_json: {e}")))?;
    let hardware = HostHardware::from_wire(&document)
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
        hardware,
        flags,
    })
}

pub(super) fn read_host(
    conn: &Connection,
    path: &Path,
    id: &HostId,
) -> Result<Option<HostRecord>, StoreError> {
    let mut macs = host_macs::load_macs(conn, path, Some(id.as_str()))?;
    let mut flags = firmware_ids::flags(conn, path, Some(id.as_str()))?;
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {HOST_COLUMNS} FROM hosts WHERE host_id = ?1"
        ))
        .ctx(path, "read host")?;
    let mut rows = stmt.query([id.as_str()]).ctx(path, "read host")?;
    match rows.next().ctx(path, "read host")? {
        None => Ok(None),
        Some(row) => parse_host(
            row,
            path,
            macs.remove(id.as_str()).unwrap_or_default(),
            flags.remove(id.as_str()).unwrap_or_default(),
        )
        .map(Some),
    }
}

pub(super) fn require_host(
    tx: &Transaction<'_>,
    path: &Path,
    id: &HostId,
) -> Result<HostRecord, TxError> {
    read_host(tx, path, id)?.ok_or_else(|| RepositoryError::NotFound(id.clone()).into())
}

fn opt_str<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "none".to_string(), ToString::to_string)
}

/// Every host, in the Inventory's display order.
pub(super) fn list(conn: &Connection, path: &Path) -> Result<Vec<HostRecord>, StoreError> {
    let mut macs = host_macs::load_macs(conn, path, None)?;
    let mut flags = firmware_ids::flags(conn, path, None)?;
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {HOST_COLUMNS} FROM hosts"))
        .ctx(path, "list hosts")?;
    let mut rows = stmt.query([]).ctx(path, "list hosts")?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().ctx(path, "list hosts")? {
        let id: Option<String> = row.get(1).ok();
        let m = id
            .as_ref()
            .and_then(|id| macs.remove(id))
            .unwrap_or_default();
        let f = id.and_then(|id| flags.remove(&id)).unwrap_or_default();
        out.push(parse_host(row, path, m, f)?);
    }
    crate::domain::inventory::sort_hosts(&mut out);
    Ok(out)
}

/// The last address of every host (see
/// [`crate::domain::InventoryRepository::addresses`]); a row whose
/// address does not parse is reported as corrupt, as [`list`] would.
pub(super) fn addresses(conn: &Connection, path: &Path) -> Result<Vec<IpAddr>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT rowid, ip FROM hosts")
        .ctx(path, "list host addresses")?;
    let mut rows = stmt.query([]).ctx(path, "list host addresses")?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().ctx(path, "list host addresses")? {
        let rowid: i64 = row.get(0).ctx(path, "list host addresses")?;
        let ip: Option<String> = row.get(1).ok();
        let parsed = ip.as_deref().map(str::parse::<IpAddr>);
        match parsed {
            Some(Ok(ip)) => out.push(ip),
            _ => {
                return Err(StoreError::Corrupt {
                    path: path.to_path_buf(),
                    row: format!("hosts rowid={rowid}"),
                    reason: format!("column ip: {ip:?} is not an address"),
                });
            }
        }
    }
    Ok(out)
}

/// Sets (or clears) the role and host name (see
/// [`crate::domain::InventoryRepository::assign`]).
pub(super) fn assign(
    tx: &Transaction<'_>,
    path: &Path,
    id: &HostId,
    role: Option<Role>,
    hostname: Option<Hostname>,
) -> Result<HostRecord, TxError> {
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
    tx.prepare_cached("UPDATE hosts SET role = ?2, hostname = ?3, phase = ?4 WHERE host_id = ?1")
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
}

/// A legal phase step; returns the previous phase.
pub(super) fn set_phase(
    tx: &Transaction<'_>,
    path: &Path,
    id: &HostId,
    phase: InstallPhase,
) -> Result<InstallPhase, TxError> {
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
}
