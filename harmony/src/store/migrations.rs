//! The schema, as an ordered list of migrations. Migration `i` (0-based)
//! takes a database from `PRAGMA user_version = i` to `i + 1`; each runs in
//! its own transaction together with the version bump. Never edit a
//! migration that has shipped: append a new one.

/// Version 1: hosts, their MACs and their event log.
const V1: &str = r#"
CREATE TABLE hosts (
    host_id        TEXT PRIMARY KEY NOT NULL,
    ip             TEXT NOT NULL,
    first_seen     INTEGER NOT NULL,            -- unix ms
    last_seen      INTEGER NOT NULL,            -- unix ms
    role           TEXT NULL,
    hostname       TEXT NULL,
    phase          TEXT NOT NULL DEFAULT 'discovered',
    inventory_json TEXT NOT NULL,               -- the typed agent document
    raw_json       BLOB NOT NULL                -- the exact bytes served (audit)
) STRICT;

CREATE TABLE host_macs (
    mac     TEXT PRIMARY KEY NOT NULL,
    host_id TEXT NOT NULL REFERENCES hosts(host_id) ON DELETE CASCADE
) STRICT;
CREATE INDEX host_macs_by_host ON host_macs(host_id);

CREATE TABLE host_events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    host_id TEXT NOT NULL REFERENCES hosts(host_id) ON DELETE CASCADE,
    at      INTEGER NOT NULL,                   -- unix ms
    kind    TEXT NOT NULL,
    detail  TEXT NOT NULL
) STRICT;
CREATE INDEX host_events_by_host ON host_events(host_id, id);
"#;

/// Version 2: the summary columns the TUI lists without parsing documents
/// (back-filled from the stored documents), ordering index, and the event
/// log made append-only.
const V2: &str = r#"
ALTER TABLE hosts ADD COLUMN vendor       TEXT NULL;
ALTER TABLE hosts ADD COLUMN product      TEXT NULL;
ALTER TABLE hosts ADD COLUMN cpu_threads  INTEGER NULL;
ALTER TABLE hosts ADD COLUMN memory_bytes INTEGER NULL;
ALTER TABLE hosts ADD COLUMN disk_count   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN disk_bytes   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN nic_count    INTEGER NOT NULL DEFAULT 0;

UPDATE hosts SET
    vendor       = json_extract(inventory_json, '$.system.vendor'),
    product      = json_extract(inventory_json, '$.system.product'),
    cpu_threads  = json_extract(inventory_json, '$.cpu.threads'),
    memory_bytes = json_extract(inventory_json, '$.memory.total_bytes'),
    disk_count   = coalesce(json_array_length(inventory_json, '$.storage'), 0),
    disk_bytes   = coalesce((SELECT sum(json_extract(d.value, '$.size_bytes'))
                               FROM json_each(inventory_json, '$.storage') AS d), 0),
    nic_count    = coalesce((SELECT count(*)
                               FROM json_each(inventory_json, '$.network') AS n
                              WHERE json_extract(n.value, '$.is_virtual') = 0), 0);

CREATE INDEX hosts_by_role ON hosts(role, ip);

CREATE TRIGGER host_events_no_update BEFORE UPDATE ON host_events
BEGIN SELECT RAISE(ABORT, 'host_events is append-only'); END;
"#;

/// Version 3: the step log of sagas. A run per saga execution; its entries
/// are appended (never changed) before and after each step acts, with the
/// undo data, so a crashed run resumes and a failed one rolls back.
const V3: &str = r#"
CREATE TABLE saga_runs (
    run_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    saga       TEXT NOT NULL,
    state      TEXT NOT NULL,                   -- running | succeeded | rolled-back | rollback-incomplete | abandoned
    started_at INTEGER NOT NULL,                -- unix ms
    ended_at   INTEGER NULL
) STRICT;
CREATE INDEX saga_runs_by_saga ON saga_runs(saga, run_id);

CREATE TABLE step_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      INTEGER NOT NULL REFERENCES saga_runs(run_id),
    at          INTEGER NOT NULL,               -- unix ms
    step_key    TEXT NOT NULL,
    state       TEXT NOT NULL,                  -- started | applied | failed | undone | undo-failed
    description TEXT NOT NULL,
    undo_json   TEXT NULL
) STRICT;
CREATE INDEX step_log_by_run ON step_log(run_id, id);

CREATE TRIGGER step_log_no_update BEFORE UPDATE ON step_log
BEGIN SELECT RAISE(ABORT, 'step_log is append-only'); END;
"#;

/// Version 4: the firmware ids (system UUID, serial) each host reported, so
/// that ids shared by hosts with disjoint MACs are known and flagged
/// (back-filled from the ids hosts are stored under).
const V4: &str = r#"
CREATE TABLE firmware_ids (
    firmware_id TEXT NOT NULL,                  -- uuid:... or serial:...
    host_id     TEXT NOT NULL REFERENCES hosts(host_id) ON DELETE CASCADE,
    PRIMARY KEY (firmware_id, host_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX firmware_ids_by_host ON firmware_ids(host_id);

INSERT INTO firmware_ids (firmware_id, host_id)
    SELECT host_id, host_id FROM hosts
     WHERE host_id LIKE 'uuid:%' OR host_id LIKE 'serial:%';
"#;

/// Version 5: SSH host keys pinned per host. One key per host, recorded at
/// first contact with a host Harmony discovered; removed with its host.
const V5: &str = r#"
CREATE TABLE host_keys (
    host_id     TEXT PRIMARY KEY NOT NULL REFERENCES hosts(host_id) ON DELETE CASCADE,
    key_type    TEXT NOT NULL,                  -- ssh-ed25519, ssh-rsa, ...
    fingerprint TEXT NOT NULL,                  -- SHA256:<base64>, as ssh-keygen -l prints it
    first_seen  INTEGER NOT NULL                -- unix ms
) STRICT;
"#;

/// All migrations, oldest first. `MIGRATIONS.len()` is the current version.
pub const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5];

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;
