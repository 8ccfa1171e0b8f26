#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/store_common.rs"]
mod common;

use std::path::Path;

use common::{host, host_with, mac, t};
use harmony::domain::{
    HostId, HostSummary, Hostname, InstallPhase, InventoryRepository, RepositoryError, Role,
    UpsertResult,
};
use harmony::store::{MIGRATIONS, SCHEMA_VERSION, SqliteStore, StoreError};
use rusqlite::Connection;

fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("inv.sqlite3")).unwrap()
}

/// A second, raw connection (foreign keys off, to simulate damage).
fn raw(store: &SqliteStore) -> Connection {
    let conn = Connection::open(store.path()).unwrap();
    conn.pragma_update(None, "foreign_keys", false).unwrap();
    conn
}

/// Every row of `table`, as text, in a stable order.
fn dump(path: &Path, table: &str) -> Vec<String> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare(&format!("SELECT * FROM {table} ORDER BY 1"))
        .unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        Ok((0..n)
            .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
            .collect::<Vec<_>>()
            .join("|"))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn kinds(store: &SqliteStore, id: &HostId) -> Vec<String> {
    store
        .events(id, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

#[test]
fn new_then_updated_then_ip_changed() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let h = host(1, "10.0.0.5");
    assert_eq!(s.upsert_discovered(&h, t(0)).unwrap(), UpsertResult::New);
    assert_eq!(
        s.upsert_discovered(&h, t(10)).unwrap(),
        UpsertResult::Updated { ip_changed: false }
    );
    let mut moved = host_with(1, "10.0.0.77", vec![mac(1, 1), mac(1, 3)]);
    moved.hardware.cpu.threads = Some(64);
    assert_eq!(
        s.upsert_discovered(&moved, t(20)).unwrap(),
        UpsertResult::Updated { ip_changed: true }
    );
    let r = s.host(&h.id).unwrap().unwrap();
    assert_eq!(r.ip.to_string(), "10.0.0.77");
    assert_eq!(r.first_seen, t(0));
    assert_eq!(r.last_seen, t(20));
    assert_eq!(r.macs, vec![mac(1, 1), mac(1, 3)]);
    assert_eq!(r.summary, HostSummary::from_hardware(&moved.hardware));
    assert_eq!(r.summary.cpu_threads, Some(64));
    assert_eq!(r.summary.nic_count, 2, "the bridge is not a NIC");
    assert_eq!(r.hardware, moved.hardware);
    assert_eq!(r.phase, InstallPhase::Discovered);
    // Seen again unchanged: last_seen moved, no event (the log does not
    // grow per scan); then the move is logged.
    assert_eq!(kinds(&s, &h.id), ["discovered", "ip-changed"]);
    let ev = s.events(&h.id, 10).unwrap();
    assert_eq!(ev[1].detail, "10.0.0.5 -> 10.0.0.77");
    assert_eq!(ev[1].at, t(20));
    assert_eq!(s.host(&h.id).unwrap().unwrap().last_seen, t(20));
    // The MAC the host dropped is free for another host.
    let other = host_with(2, "10.0.0.6", vec![mac(1, 2)]);
    assert_eq!(
        s.upsert_discovered(&other, t(30)).unwrap(),
        UpsertResult::New
    );
    // The raw bytes are kept as served.
    let stored: Vec<u8> = raw(&s)
        .query_row(
            "SELECT raw_json FROM hosts WHERE host_id = ?1",
            [h.id.as_str()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, moved.raw_json);
}

#[test]
fn conflict_writes_nothing_but_the_existing_hosts_log() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let a = host(1, "10.0.0.1");
    s.upsert_discovered(&a, t(0)).unwrap();
    s.assign(&a.id, Some(Role::Worker), Some("w-1.ocp".parse().unwrap()))
        .unwrap();
    let hosts_before = dump(s.path(), "hosts");
    let macs_before = dump(s.path(), "host_macs");
    let events_before = dump(s.path(), "host_events");

    let b = host_with(2, "10.0.0.2", vec![mac(2, 1), mac(1, 2)]);
    assert_eq!(
        s.upsert_discovered(&b, t(5)).unwrap(),
        UpsertResult::Conflict {
            mac: mac(1, 2),
            existing: a.id.clone()
        }
    );
    assert_eq!(dump(s.path(), "hosts"), hosts_before);
    assert_eq!(dump(s.path(), "host_macs"), macs_before);
    let events_after = dump(s.path(), "host_events");
    assert_eq!(events_after.len(), events_before.len() + 1);
    assert_eq!(events_after[..events_before.len()], events_before[..]);
    assert!(s.host(&b.id).unwrap().is_none());
    let last = s.events(&a.id, 1).unwrap().pop().unwrap();
    assert_eq!(last.kind, "conflict");
    assert!(last.detail.contains(b.id.as_str()), "{}", last.detail);
    assert!(last.detail.contains(&mac(1, 2).to_string()));
    assert!(s.events(&b.id, 10).unwrap().is_empty());
}

#[test]
fn upsert_never_touches_role_hostname_or_phase() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let a = host(1, "10.0.0.1");
    s.upsert_discovered(&a, t(0)).unwrap();
    let hn: Hostname = "cp-0.ocp".parse().unwrap();
    s.assign(&a.id, Some(Role::ControlPlane), Some(hn.clone()))
        .unwrap();
    s.set_phase(&a.id, InstallPhase::BootConfigured).unwrap();
    // Same address and MACs, new hardware facts: the inventory updates,
    // role, host name and phase stay.
    let mut again = host(1, "10.0.0.1");
    again.hardware.cpu.threads = Some(96);
    assert_eq!(
        s.upsert_discovered(&again, t(9)).unwrap(),
        UpsertResult::Updated { ip_changed: false }
    );
    let r = s.host(&a.id).unwrap().unwrap();
    assert_eq!(r.role, Some(Role::ControlPlane));
    assert_eq!(r.hostname, Some(hn));
    assert_eq!(r.phase, InstallPhase::BootConfigured);
    assert_eq!(r.hardware.cpu.threads, Some(96));
}

#[test]
fn role_assignment_rules() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let a = host(1, "10.0.0.1");
    s.upsert_discovered(&a, t(0)).unwrap();
    let r = s
        .assign(&a.id, Some(Role::Worker), Some("w-0.ocp".parse().unwrap()))
        .unwrap();
    assert_eq!(r.phase, InstallPhase::RoleAssigned);
    assert_eq!(r.role, Some(Role::Worker));
    // Re-role while role-assigned: allowed, phase kept.
    let r = s.assign(&a.id, Some(Role::ControlPlane), None).unwrap();
    assert_eq!(
        (r.phase, r.role, r.hostname),
        (InstallPhase::RoleAssigned, Some(Role::ControlPlane), None)
    );
    // Clearing goes back to discovered.
    let r = s.assign(&a.id, None, None).unwrap();
    assert_eq!((r.phase, r.role), (InstallPhase::Discovered, None));
    assert_eq!(s.host(&a.id).unwrap().unwrap(), r, "returned = stored");
    // Mid-install: no re-role, no clearing; the same values are a no-op.
    s.assign(&a.id, Some(Role::Worker), None).unwrap();
    s.set_phase(&a.id, InstallPhase::BootConfigured).unwrap();
    let n = s.events(&a.id, 100).unwrap().len();
    for (role, why) in [(Some(Role::Bootstrap), "re-role"), (None, "clear")] {
        let e = s.assign(&a.id, role, None).unwrap_err();
        assert!(matches!(e, RepositoryError::Rejected { .. }), "{why}: {e}");
    }
    assert_eq!(
        s.assign(&a.id, Some(Role::Worker), None).unwrap().phase,
        InstallPhase::BootConfigured
    );
    assert_eq!(
        s.events(&a.id, 100).unwrap().len(),
        n,
        "refusals log nothing"
    );
    let r = s.host(&a.id).unwrap().unwrap();
    assert_eq!(
        (r.phase, r.role),
        (InstallPhase::BootConfigured, Some(Role::Worker))
    );
    // Unknown host.
    let ghost = host(99, "10.0.0.99").id;
    assert!(matches!(
        s.assign(&ghost, Some(Role::Worker), None),
        Err(RepositoryError::NotFound(id)) if id == ghost
    ));
    assert_eq!(
        kinds(&s, &a.id),
        [
            "discovered",
            "role-assigned",
            "role-assigned",
            "role-cleared",
            "role-assigned",
            "phase"
        ]
    );
}

#[test]
fn phase_rules() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let a = host(1, "10.0.0.1");
    s.upsert_discovered(&a, t(0)).unwrap();
    let e = s.set_phase(&a.id, InstallPhase::Installed).unwrap_err();
    assert!(
        matches!(e, RepositoryError::Phase(p) if p.from == InstallPhase::Discovered && p.to == InstallPhase::Installed)
    );
    // role-assigned needs a role: that is assign's job.
    assert!(matches!(
        s.set_phase(&a.id, InstallPhase::RoleAssigned),
        Err(RepositoryError::Rejected { .. })
    ));
    s.assign(&a.id, Some(Role::Bootstrap), None).unwrap();
    use InstallPhase::*;
    for (to, prev) in [
        (BootConfigured, RoleAssigned),
        (Installing, BootConfigured),
        (Installed, Installing),
        (Decommissioned, Installed),
    ] {
        assert_eq!(s.set_phase(&a.id, to).unwrap(), prev);
    }
    assert!(matches!(
        s.set_phase(&a.id, Installing),
        Err(RepositoryError::Phase(_))
    ));
    assert_eq!(s.set_phase(&a.id, Discovered).unwrap(), Decommissioned);
    let r = s.host(&a.id).unwrap().unwrap();
    assert_eq!(
        (r.phase, r.role),
        (Discovered, None),
        "reusable, unassigned"
    );
    let ev = s.events(&a.id, 100).unwrap();
    let phases: Vec<&str> = ev
        .iter()
        .filter(|e| e.kind == "phase")
        .map(|e| e.detail.as_str())
        .collect();
    assert_eq!(
        phases,
        [
            "role-assigned -> boot-configured",
            "boot-configured -> installing",
            "installing -> installed",
            "installed -> decommissioned",
            "decommissioned -> discovered"
        ]
    );
    assert!(matches!(
        s.set_phase(&host(7, "10.0.0.7").id, Installing),
        Err(RepositoryError::NotFound(_))
    ));
}

#[test]
fn hosts_order_unassigned_then_role_then_ip() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let spec: [(u32, &str, Option<Role>); 7] = [
        (1, "10.0.0.10", Some(Role::Worker)),
        (2, "10.0.0.9", Some(Role::Worker)),
        (3, "10.0.0.100", None),
        (4, "10.0.0.20", None),
        (5, "10.0.0.3", Some(Role::ControlPlane)),
        (6, "10.0.0.50", Some(Role::Bootstrap)),
        (7, "10.0.0.2", Some(Role::ControlPlane)),
    ];
    for (n, ip, role) in spec {
        let h = host(n, ip);
        s.upsert_discovered(&h, t(0)).unwrap();
        if role.is_some() {
            s.assign(&h.id, role, None).unwrap();
        }
    }
    let got: Vec<String> = s
        .hosts()
        .unwrap()
        .iter()
        .map(|r| format!("{}@{}", r.role.map_or("-", |r| r.as_str()), r.ip))
        .collect();
    assert_eq!(
        got,
        [
            "-@10.0.0.20",
            "-@10.0.0.100",
            "bootstrap@10.0.0.50",
            "control-plane@10.0.0.2",
            "control-plane@10.0.0.3",
            "worker@10.0.0.9",
            "worker@10.0.0.10",
        ]
    );
}

#[test]
fn event_log_is_append_only_and_ordered() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let a = host(1, "10.0.0.1");
    for i in 0..10u64 {
        let ip = format!("10.0.0.{}", 1 + i / 3);
        // Each sighting reports something new, so each is logged.
        let mut h = host(1, &ip);
        h.hardware.cpu.threads = Some(u32::try_from(i).unwrap() + 1);
        s.upsert_discovered(&h, t(i)).unwrap();
    }
    let all = s.events(&a.id, 100).unwrap();
    assert_eq!(all.len(), 10);
    let at: Vec<_> = all.iter().map(|e| e.at).collect();
    assert_eq!(at, (0..10).map(t).collect::<Vec<_>>());
    assert_eq!(all[0].kind, "discovered");
    assert_eq!(all[3].kind, "ip-changed");
    let last3 = s.events(&a.id, 3).unwrap();
    assert_eq!(last3, all[7..], "the most recent, oldest first");
    let conn = raw(&s);
    let e = conn
        .execute("UPDATE host_events SET detail = 'forged'", [])
        .unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
    assert_eq!(s.events(&a.id, 100).unwrap(), all);
}

#[test]
fn reopen_persists_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/dir/inv.sqlite3");
    let (hosts, events) = {
        let s = SqliteStore::open(&path).unwrap();
        for n in 0..5 {
            s.upsert_discovered(&host(n, &format!("10.1.0.{n}")), t(u64::from(n)))
                .unwrap();
        }
        let h = host(3, "10.1.0.3");
        s.assign(&h.id, Some(Role::Worker), Some("w-3.ocp".parse().unwrap()))
            .unwrap();
        s.set_phase(&h.id, InstallPhase::BootConfigured).unwrap();
        let hosts = s.hosts().unwrap();
        let events: Vec<_> = hosts
            .iter()
            .map(|r| s.events(&r.id, 100).unwrap())
            .collect();
        (hosts, events)
    };
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    let again = s.hosts().unwrap();
    assert_eq!(again.len(), 5);
    assert_eq!(again, hosts);
    for (r, ev) in again.iter().zip(&events) {
        assert_eq!(&s.events(&r.id, 100).unwrap(), ev);
    }
    assert_eq!(s.integrity_check().unwrap(), "ok");
    let journal: String = raw(&s)
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
}

#[test]
fn migrates_v1_database_and_backfills_summary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite3");
    let h = host(4, "10.2.0.4");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO hosts (host_id, ip, first_seen, last_seen, role, hostname, phase, \
             inventory_json, raw_json) VALUES (?1, ?2, 1700000000000, 1700000000005, \
             'worker', 'w-4.ocp', 'role-assigned', ?3, ?4)",
            rusqlite::params![
                h.id.as_str(),
                h.ip.to_string(),
                serde_json::to_string(&h.hardware.to_wire()).unwrap(),
                h.raw_json
            ],
        )
        .unwrap();
        for m in &h.macs {
            conn.execute(
                "INSERT INTO host_macs (mac, host_id) VALUES (?1, ?2)",
                [m.to_string(), h.id.to_string()],
            )
            .unwrap();
        }
    }
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    let r = s.host(&h.id).unwrap().unwrap();
    assert_eq!(r.summary, HostSummary::from_hardware(&h.hardware));
    assert!(r.summary.disk_bytes > 0 && r.summary.nic_count == 2);
    assert_eq!(r.role, Some(Role::Worker));
    assert_eq!(r.macs, h.macs);
    assert_eq!(r.last_seen, t(5));
    // And it works as a current database.
    assert_eq!(
        s.upsert_discovered(&h, t(9)).unwrap(),
        UpsertResult::Updated { ip_changed: false }
    );
    assert_eq!(s.integrity_check().unwrap(), "ok");
}

#[test]
fn refuses_a_database_from_a_newer_harmony() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.sqlite3");
    drop(SqliteStore::open(&path).unwrap());
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
    }
    let e = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(e, StoreError::TooNew { found, supported, .. } if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("newer") && msg.contains("new.sqlite3"),
        "{msg}"
    );
    // Untouched by the refusal.
    let v: u32 = Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION + 1);
}

#[test]
fn corrupted_rows_are_errors_naming_the_row() {
    let cases = [
        "UPDATE hosts SET phase = 'half-done' WHERE host_id = ?1",
        "UPDATE hosts SET ip = 'not-an-ip' WHERE host_id = ?1",
        "UPDATE hosts SET role = 'admin' WHERE host_id = ?1",
        "UPDATE hosts SET hostname = 'a;b' WHERE host_id = ?1",
        "UPDATE hosts SET inventory_json = '{' WHERE host_id = ?1",
        "UPDATE hosts SET cpu_threads = -1 WHERE host_id = ?1",
        "UPDATE hosts SET last_seen = -5 WHERE host_id = ?1",
        "UPDATE host_macs SET mac = 'zz' WHERE host_id = ?1 AND mac LIKE '52:01:%'",
        "UPDATE hosts SET host_id = 'bogus:' || host_id WHERE host_id = ?1",
    ];
    for sql in cases {
        let dir = tempfile::tempdir().unwrap();
        let s = open(&dir);
        let a = host(1, "10.0.0.1");
        let b = host(2, "10.0.0.2");
        s.upsert_discovered(&a, t(0)).unwrap();
        s.upsert_discovered(&b, t(0)).unwrap();
        let conn = raw(&s); // foreign keys off here: the damage goes through
        assert!(conn.execute(sql, [b.id.as_str()]).unwrap() >= 1, "{sql}");
        let RepositoryError::Backend(msg) = s.hosts().unwrap_err() else {
            panic!("{sql}: not a backend error")
        };
        assert!(
            msg.contains(b.id.as_str()) || msg.contains("zz"),
            "{sql}: {msg}"
        );
        assert!(msg.contains("corrupted row"), "{sql}: {msg}");
        assert!(
            s.host(&a.id).unwrap().is_some(),
            "{sql}: other rows still readable"
        );
    }
}

#[test]
fn addresses_are_the_hosts_last_addresses_and_a_bad_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    assert!(s.addresses().unwrap().is_empty());
    let a = host(1, "10.0.0.1");
    let b = host(2, "10.0.0.2");
    s.upsert_discovered(&a, t(0)).unwrap();
    s.upsert_discovered(&b, t(0)).unwrap();
    // b moves: its last address counts, not its first.
    s.upsert_discovered(&host(2, "10.0.0.9"), t(1)).unwrap();
    let mut got = s.addresses().unwrap();
    got.sort();
    let mut want: Vec<std::net::IpAddr> = s.hosts().unwrap().iter().map(|h| h.ip).collect();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(
        got,
        vec![
            "10.0.0.1".parse::<std::net::IpAddr>().unwrap(),
            "10.0.0.9".parse().unwrap()
        ]
    );

    let conn = raw(&s);
    conn.execute(
        "UPDATE hosts SET ip = 'not-an-ip' WHERE host_id = ?1",
        [b.id.as_str()],
    )
    .unwrap();
    let RepositoryError::Backend(msg) = s.addresses().unwrap_err() else {
        panic!("not a backend error")
    };
    assert!(
        msg.contains("not-an-ip") && msg.contains("corrupted row"),
        "{msg}"
    );
}

#[test]
fn upsert_many_matches_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let s1 = SqliteStore::open(&dir.path().join("a.sqlite3")).unwrap();
    let s2 = SqliteStore::open(&dir.path().join("b.sqlite3")).unwrap();
    let mut batch: Vec<_> = (0..50).map(|n| host(n, &format!("10.3.0.{n}"))).collect();
    batch.push(host(7, "10.3.1.7")); // moved within the batch
    batch.push(host_with(100, "10.3.1.100", vec![mac(3, 1)])); // conflicts with host 3
    let many = s1.upsert_many(&batch, t(0)).unwrap();
    let one: Vec<_> = batch
        .iter()
        .map(|h| s2.upsert_discovered(h, t(0)).unwrap())
        .collect();
    assert_eq!(many, one);
    assert_eq!(many[0], UpsertResult::New);
    assert_eq!(many[50], UpsertResult::Updated { ip_changed: true });
    assert!(
        matches!(&many[51], UpsertResult::Conflict { existing, .. } if *existing == batch[3].id)
    );
    assert_eq!(s1.hosts().unwrap(), s2.hosts().unwrap());
    assert_eq!(s1.hosts().unwrap().len(), 50);
    assert!(s1.upsert_many(&[], t(0)).unwrap().is_empty());
}

#[test]
fn default_path_is_in_the_user_data_dir() {
    let p = SqliteStore::default_path().unwrap();
    assert!(p.ends_with("harmony/inventory.sqlite3"), "{}", p.display());
    assert!(p.is_absolute());
}

#[test]
fn fresh_database_is_sound_and_current() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as u32);
    assert_eq!(s.integrity_check().unwrap(), "ok");
    let conn = raw(&s);
    let fk: i64 = conn
        .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
        .unwrap_or(0);
    assert_eq!(fk, 0);
    assert!(s.hosts().unwrap().is_empty());
}

/// A peer that answers with a known host's UUID and serial but none of its
/// MACs is another host (its firmware ids are not identities): it is stored
/// under its MACs, both are flagged, the known host is untouched. A peer
/// that moves or re-MACs a host that already has a role changes nothing.
#[test]
fn identity_claims_never_overwrite_and_moves_of_assigned_hosts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let h = host(1, "10.0.0.5");
    s.upsert_discovered(&h, t(0)).unwrap();

    // Same UUID and serial, another MAC, another address.
    let forged = host_with(1, "10.0.0.66", vec![mac(99, 1)]);
    let r = s.upsert_scan(std::slice::from_ref(&forged), t(1)).unwrap();
    let macs_id = HostId::from_macs(&[mac(99, 1)]).unwrap();
    assert_eq!(r[0].id, macs_id);
    assert_eq!(r[0].result, UpsertResult::New);
    let rec = s.host(&h.id).unwrap().unwrap();
    assert_eq!(rec.ip.to_string(), "10.0.0.5");
    assert_eq!(rec.macs, h.macs);
    assert_eq!(rec.last_seen, t(0));
    // One event per shared id (UUID and serial).
    assert_eq!(
        kinds(&s, &h.id),
        [
            "discovered",
            "duplicate-firmware-id",
            "duplicate-firmware-id"
        ]
    );
    assert_eq!(rec.flags.len(), 2, "{:?}", rec.flags);
    let other = s.host(&macs_id).unwrap().unwrap();
    assert_eq!(other.ip.to_string(), "10.0.0.66");
    assert_eq!(other.flags.len(), 2, "{:?}", other.flags);

    // Once it has a role, even a claim sharing a MAC may not move it.
    s.assign(&h.id, Some(Role::Worker), Some("worker-0".parse().unwrap()))
        .unwrap();
    let moved = host_with(1, "10.0.0.7", vec![mac(1, 1), mac(1, 2)]);
    let r = s.upsert_discovered(&moved, t(2)).unwrap();
    assert!(matches!(r, UpsertResult::IdentityConflict { .. }), "{r:?}");
    assert_eq!(s.host(&h.id).unwrap().unwrap().ip.to_string(), "10.0.0.5");
    // The real host, unchanged, is still welcome.
    assert_eq!(
        s.upsert_discovered(&h, t(3)).unwrap(),
        UpsertResult::Updated { ip_changed: false }
    );
    assert_eq!(s.host(&h.id).unwrap().unwrap().last_seen, t(3));
}

/// A host as discovery validates it from its agent's document: `uuid` and
/// `serial` as the firmware reports them, MACs of its own.
fn found(n: u32, ip: &str, uuid: Option<&str>, serial: &str) -> harmony::domain::DiscoveredHost {
    let macs = vec![mac(n, 1), mac(n, 2)];
    let mut inv = common::inventory(
        n,
        &macs,
        uuid.unwrap_or("00000000-0000-0000-0000-000000000000"),
    );
    inv.system.uuid = uuid.map(String::from);
    inv.system.serial = Some(serial.to_string());
    let raw = serde_json::to_vec(&inv).unwrap();
    harmony::modules::discovery::validate(ip.parse().unwrap(), &raw).unwrap()
}

/// Four hosts, disjoint MACs: two ship one placeholder-looking but valid
/// UUID, two (with a placeholder UUID) one serial. All are stored, each
/// under an id of its own, every one flagged; rescans in any order keep
/// them as they are, with no new events; nobody's record is overwritten.
#[test]
fn hosts_sharing_a_firmware_id_are_all_stored_and_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let shared_uuid = "4c4c4544-0000-4000-8000-0000000000aa";
    let hosts = vec![
        found(1, "10.0.0.1", Some(shared_uuid), "SERIAL-A"),
        found(2, "10.0.0.2", Some(shared_uuid), "SERIAL-B"),
        found(
            3,
            "10.0.0.3",
            Some("03000200-0400-0500-0006-000700080009"),
            "SAME",
        ),
        found(
            4,
            "10.0.0.4",
            Some("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"),
            "SAME",
        ),
    ];
    assert_eq!(
        hosts[2].id.as_str(),
        "serial:SAME",
        "placeholder UUID is absent"
    );
    let first = s.upsert_scan(&hosts, t(0)).unwrap();
    assert!(
        first.iter().all(|u| u.result == UpsertResult::New),
        "{first:?}"
    );
    let ids: Vec<String> = first.iter().map(|u| u.id.to_string()).collect();
    assert_eq!(
        ids,
        [
            format!("uuid:{shared_uuid}"),
            "serial:SERIAL-B".to_string(),
            "serial:SAME".to_string(),
            HostId::from_macs(&[mac(4, 1), mac(4, 2)])
                .unwrap()
                .to_string(),
        ]
    );
    let all = s.hosts().unwrap();
    assert_eq!(all.len(), 4);
    for h in &all {
        assert_eq!(h.flags.len(), 1, "{}: {:?}", h.id, h.flags);
        assert!(
            h.flags[0].to_string().starts_with("duplicate firmware id "),
            "{}",
            h.flags[0]
        );
    }
    let events_before: Vec<usize> = first
        .iter()
        .map(|u| s.events(&u.id, 1000).unwrap().len())
        .collect();
    // Rescans, in both orders: the same ids, updates only, no events.
    for round in 0..3u64 {
        let mut batch = hosts.clone();
        if round % 2 == 1 {
            batch.reverse();
        }
        let again = s.upsert_scan(&batch, t(10 + round)).unwrap();
        for (u, h) in again.iter().zip(&batch) {
            assert_eq!(u.result, UpsertResult::Updated { ip_changed: false });
            let i = hosts.iter().position(|x| x.ip == h.ip).unwrap();
            assert_eq!(u.id, first[i].id);
        }
    }
    for (u, n) in first.iter().zip(&events_before) {
        assert_eq!(s.events(&u.id, 1000).unwrap().len(), *n, "{}", u.id);
        let rec = s.host(&u.id).unwrap().unwrap();
        assert_eq!(rec.last_seen, t(12));
    }
    // A fifth host with host 1's UUID and serial but its own MACs: stored
    // on its own, host 1 untouched.
    let intruder = found(5, "10.0.0.9", Some(shared_uuid), "SERIAL-A");
    let r = s.upsert_scan(&[intruder], t(20)).unwrap();
    assert_eq!(r[0].result, UpsertResult::New);
    assert!(r[0].id.as_str().starts_with("macs:"), "{}", r[0].id);
    let one = s.host(&first[0].id).unwrap().unwrap();
    assert_eq!(one.ip.to_string(), "10.0.0.1");
    assert_eq!(one.macs, vec![mac(1, 1), mac(1, 2)]);
    assert_eq!(s.hosts().unwrap().len(), 5);
}

/// Rescans that change only volatile fields (collection time, CPU clock,
/// warnings) add no event; a hardware change adds one; the log keeps the
/// newest `MAX_EVENTS_PER_HOST` events of each host.
#[test]
fn event_log_grows_only_on_change_and_is_bounded_per_host() {
    use harmony::domain::SafeText;
    use harmony::store::MAX_EVENTS_PER_HOST;
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let h = host(1, "10.0.0.1");
    s.upsert_discovered(&h, t(0)).unwrap();
    for i in 1..=100u64 {
        let mut again = h.clone();
        again.hardware.collected_at =
            SafeText::new(&format!("2026-11-25T10:{:02}:{:02}Z", i / 60, i % 60));
        #[allow(clippy::cast_precision_loss)]
        let mhz = 2000.0 + i as f64 * 1.37;
        again.hardware.cpu.mhz = Some(mhz);
        assert_eq!(
            s.upsert_discovered(&again, t(i)).unwrap(),
            UpsertResult::Updated { ip_changed: false }
        );
    }
    assert_eq!(kinds(&s, &h.id), ["discovered"]);
    assert_eq!(s.host(&h.id).unwrap().unwrap().last_seen, t(100));
    let mut changed = h.clone();
    changed.hardware.memory.total_bytes = Some(1 << 40);
    s.upsert_discovered(&changed, t(101)).unwrap();
    assert_eq!(kinds(&s, &h.id), ["discovered", "updated"]);
    assert_eq!(
        s.host(&h.id).unwrap().unwrap().hardware.memory.total_bytes,
        Some(1 << 40)
    );

    // Bounded: many real changes keep only the newest events.
    let other = host(2, "10.0.1.1");
    s.upsert_discovered(&other, t(0)).unwrap();
    let n = u64::try_from(MAX_EVENTS_PER_HOST).unwrap() + 50;
    for i in 0..n {
        let mut m = h.clone();
        m.hardware.cpu.threads = Some(u32::try_from(i).unwrap() + 1);
        s.upsert_discovered(&m, t(200 + i)).unwrap();
    }
    let ev = s.events(&h.id, 10_000).unwrap();
    assert_eq!(ev.len(), usize::try_from(MAX_EVENTS_PER_HOST).unwrap());
    assert_eq!(ev.last().unwrap().at, t(200 + n - 1), "the newest kept");
    assert_eq!(ev[0].at, t(200 + n - ev.len() as u64), "the oldest dropped");
    // Another host's log is its own.
    assert_eq!(kinds(&s, &other.id), ["discovered"]);
}

/// The role change rule lives in the domain: `Inventory::assign` refuses a
/// second bootstrap and a fourth control-plane host (nothing written),
/// allows any number of workers and clearing a role, and announces each
/// phase change.
#[test]
fn inventory_assign_enforces_role_counts_and_announces_phases() {
    use harmony::domain::{Event, EventBus, Inventory};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir));
    let hosts: Vec<_> = (1..=6).map(|n| host(n, &format!("10.0.0.{n}"))).collect();
    store.upsert_many(&hosts, t(0)).unwrap();
    let bus = EventBus::default();
    let mut rx = bus.subscribe();
    let inventory = Inventory::new(store.clone(), bus);
    inventory
        .assign(&hosts[0].id, Some(Role::Bootstrap), None)
        .unwrap();
    match rx.try_recv().unwrap() {
        Event::HostPhaseChanged { host, from, to } => {
            assert_eq!(host, hosts[0].id);
            assert_eq!(
                (from, to),
                (InstallPhase::Discovered, InstallPhase::RoleAssigned)
            );
        }
        other => panic!("{other:?}"),
    }
    let e = inventory
        .assign(&hosts[1].id, Some(Role::Bootstrap), None)
        .unwrap_err();
    assert!(
        matches!(
            e,
            RepositoryError::RoleCount {
                role: Role::Bootstrap,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("too many bootstrap: 2 assigned, 1 wanted"),
        "{e}"
    );
    assert_eq!(store.host(&hosts[1].id).unwrap().unwrap().role, None);
    assert!(rx.try_recv().is_err(), "nothing announced for a refusal");
    // Re-assigning the bootstrap its own role is not a second one.
    inventory
        .assign(
            &hosts[0].id,
            Some(Role::Bootstrap),
            Some("bootstrap".parse().unwrap()),
        )
        .unwrap();
    for h in &hosts[1..4] {
        inventory
            .assign(&h.id, Some(Role::ControlPlane), None)
            .unwrap();
    }
    let e = inventory
        .assign(&hosts[4].id, Some(Role::ControlPlane), None)
        .unwrap_err();
    assert!(e.to_string().contains("too many control-plane"), "{e}");
    inventory
        .assign(&hosts[4].id, Some(Role::Worker), None)
        .unwrap();
    inventory
        .assign(&hosts[5].id, Some(Role::Worker), None)
        .unwrap();
    // Moving a control-plane host to bootstrap is refused; clearing is fine.
    assert!(
        inventory
            .assign(&hosts[1].id, Some(Role::Bootstrap), None)
            .is_err()
    );
    inventory.assign(&hosts[0].id, None, None).unwrap();
    inventory
        .assign(&hosts[1].id, Some(Role::Bootstrap), None)
        .unwrap();
    let unknown = host(99, "10.0.0.99").id;
    assert!(matches!(
        inventory.assign(&unknown, Some(Role::Worker), None),
        Err(RepositoryError::NotFound(_))
    ));
}
