//! Crash consistency: a writer process is SIGKILLed at varying points; every
//! commit it reported must survive and the file must stay sound.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/store_common.rs"]
mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::host;
use harmony::domain::{HostId, InventoryRepository};
use harmony::store::SqliteStore;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const DB_ENV: &str = "HARMONY_STORE_CRASH_DB";
const BASE_ENV: &str = "HARMONY_STORE_CRASH_BASE";
const ROUNDS: u32 = 20;

/// Writer mode (only when re-executed by `kill_9_loses_no_reported_commit`):
/// upserts forever, printing `COMMITTED <id>` after each commit.
#[test]
fn crash_writer_child() {
    let Ok(db) = std::env::var(DB_ENV) else {
        return; // a normal test run: nothing to do
    };
    let base: u32 = std::env::var(BASE_ENV).unwrap().parse().unwrap();
    let store = SqliteStore::open(Path::new(&db)).unwrap();
    let mut out = std::io::stdout().lock();
    let mut n = base;
    for i in 0u32..1_000_000 {
        if i % 5 == 4 {
            // A batch, and a re-seen earlier host on a new IP.
            let mut batch: Vec<_> = (n..n + 4)
                .map(|k| {
                    host(
                        k,
                        &format!("10.{}.{}.{}", k >> 16 & 0xff, k >> 8 & 0xff, k & 0xff),
                    )
                })
                .collect();
            batch.push(host(
                base + i / 2,
                &format!("10.200.{}.{}", i >> 8 & 0xff, i & 0xff),
            ));
            store.upsert_many(&batch, common::t(u64::from(i))).unwrap();
            for h in &batch {
                writeln!(out, "COMMITTED {}", h.id).unwrap();
            }
            n += 4;
        } else {
            let h = host(
                n,
                &format!("10.{}.{}.{}", n >> 16 & 0xff, n >> 8 & 0xff, n & 0xff),
            );
            store
                .upsert_discovered(&h, common::t(u64::from(i)))
                .unwrap();
            writeln!(out, "COMMITTED {}", h.id).unwrap();
            n += 1;
        }
        out.flush().unwrap();
    }
}

/// SIGKILLs the writer when dropped (harmless if it is already gone).
struct KillOnDrop(Pid);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = kill(self.0, Signal::SIGKILL);
    }
}

#[test]
fn kill_9_loses_no_reported_commit() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.sqlite3");
    let exe = std::env::current_exe().unwrap();
    let mut committed: HashSet<HostId> = HashSet::new();
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "crash_writer_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DB_ENV, &db)
            .env(BASE_ENV, (round * 100_000).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
        // Killed even if an assertion below panics mid-round.
        let _reaper = KillOnDrop(pid);
        let want = 1 + (round * 7) % 40;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut got = 0;
        while got < want {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("round {round}: writer exited after {got} commits"))
                .unwrap();
            if let Some(id) = line.strip_prefix("COMMITTED ") {
                committed.insert(id.parse().unwrap());
                got += 1;
            }
        }
        // Land the kill at varying points inside the next transactions.
        std::thread::sleep(Duration::from_micros(u64::from(round % 5) * 250));
        kill(pid, Signal::SIGKILL).unwrap();
        // Whatever it printed before dying was committed too.
        for line in lines.map_while(Result::ok) {
            if let Some(id) = line.strip_prefix("COMMITTED ") {
                committed.insert(id.parse().unwrap());
            }
        }
        child.wait().unwrap();

        let store = SqliteStore::open(&db).unwrap();
        assert_eq!(store.integrity_check().unwrap(), "ok", "round {round}");
        let present: HashSet<HostId> = store.hosts().unwrap().into_iter().map(|r| r.id).collect();
        let missing: Vec<_> = committed.difference(&present).collect();
        assert!(
            missing.is_empty(),
            "round {round}: lost commits {missing:?}"
        );
    }
    assert!(committed.len() >= ROUNDS as usize);
    eprintln!("{ROUNDS} kill -9 rounds in {:?}", started.elapsed());
}
