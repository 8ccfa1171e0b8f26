//! The `host_keys` table: the SSH host key pinned per host (key type,
//! SHA-256 fingerprint, first seen): the store's [`HostKeyPins`]. A key is
//! pinned only at first contact with a host Harmony discovered (its MACs are
//! in `host_macs`), and never replaced here: a changed key is for the
//! caller to refuse, a reinstall to forget.

use std::time::SystemTime;

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{Ctx, SqliteStore, from_ms, to_ms};
use crate::domain::{HostId, HostKey, HostKeyPins, HostKeyStoreError, PinOutcome, PinnedHostKey};

fn err(e: impl std::fmt::Display) -> HostKeyStoreError {
    HostKeyStoreError(e.to_string())
}

fn read(
    conn: &rusqlite::Connection,
    path: &std::path::Path,
    host: &HostId,
) -> Result<Option<PinnedHostKey>, HostKeyStoreError> {
    let row: Option<(String, String, i64)> = conn
        .prepare_cached(
            "SELECT key_type, fingerprint, first_seen FROM host_keys WHERE host_id = ?1",
        )
        .and_then(|mut s| {
            s.query_row([host.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .ctx(path, "read host key")
        .map_err(err)?;
    let Some((key_type, fingerprint, first_seen)) = row else {
        return Ok(None);
    };
    let corrupt = |what: String| {
        err(format!(
            "{}: corrupted row host_keys host_id={host}: {what}",
            path.display()
        ))
    };
    Ok(Some(PinnedHostKey {
        key: HostKey {
            key_type: key_type.parse().map_err(|e| corrupt(format!("{e}")))?,
            fingerprint: fingerprint.parse().map_err(|e| corrupt(format!("{e}")))?,
        },
        first_seen: from_ms(first_seen)
            .ok_or_else(|| corrupt(format!("first_seen {first_seen}")))?,
    }))
}

impl HostKeyPins for SqliteStore {
    fn pinned_key(&self, host: &HostId) -> Result<Option<PinnedHostKey>, HostKeyStoreError> {
        let conn = self.lock();
        read(&conn, self.path(), host)
    }

    fn pin_first_key(
        &self,
        host: &HostId,
        key: &HostKey,
        at: SystemTime,
    ) -> Result<PinOutcome, HostKeyStoreError> {
        let mut conn = self.lock();
        let path = self.path().to_path_buf();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx(&path, "pin host key: begin")
            .map_err(err)?;
        if let Some(pinned) = read(&tx, &path, host)? {
            return Ok(PinOutcome::AlreadyPinned(pinned));
        }
        let discovered: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM hosts h JOIN host_macs m ON m.host_id = h.host_id \
                 WHERE h.host_id = ?1)",
                [host.as_str()],
                |r| r.get(0),
            )
            .ctx(&path, "pin host key: is the host discovered")
            .map_err(err)?;
        if !discovered {
            return Ok(PinOutcome::NotDiscovered);
        }
        tx.execute(
            "INSERT INTO host_keys (host_id, key_type, fingerprint, first_seen) \
             VALUES (?1, ?2, ?3, ?4)",
            params![
                host.as_str(),
                key.key_type.as_str(),
                key.fingerprint.as_str(),
                to_ms(at)
            ],
        )
        .ctx(&path, "pin host key")
        .map_err(err)?;
        tx.commit()
            .ctx(&path, "pin host key: commit")
            .map_err(err)?;
        tracing::info!(host = %host, key = %key, "SSH host key pinned at first contact");
        Ok(PinOutcome::Pinned)
    }

    fn forget_key(&self, host: &HostId) -> Result<bool, HostKeyStoreError> {
        let conn = self.lock();
        let n = conn
            .execute("DELETE FROM host_keys WHERE host_id = ?1", [host.as_str()])
            .ctx(self.path(), "forget host key")
            .map_err(err)?;
        if n > 0 {
            tracing::info!(host = %host, "SSH host key forgotten");
        }
        Ok(n > 0)
    }
}
