//! The installation's figures (`.ci/bench-install`):
//!
//! (a) `harmony install --site S --dry-run` as a user runs it, on a store
//!     holding 1 + 3 + W discovered hosts with roles (W = 100 by default):
//!     each run a whole process (parse, validate, read the store and the
//!     site's files, render every host's boot files, plan every step,
//!     print), timed from spawn to exit; best and median of R runs
//!     (goal: under 1 s). Documentation addresses only: nothing is
//!     contacted, and the state dir is checked unchanged.
//! (b) the step log's overhead per step: one saga of S trivial steps (each
//!     prepare and apply does nothing) run with the in-memory step log and
//!     with the SQLite one (`SqliteStore`, `synchronous=FULL`: every entry
//!     on disk before its step acts); ms per step for each and the
//!     difference, best of R runs.
//!
//! `cargo run --release -p harmony --example install_bench -- HARMONY_BIN
//! [WORKERS] [RUNS] [STEPS]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/store_common.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use harmony::domain::{
    EventBus, Interpret, InterpretError, Inventory, InventoryRepository, MemoryStepLog, Prepared,
    Role, SagaInterpret, SagaScore, Step, StepContext, StepError, StepKey, StepLog, Topology,
    UndoData,
};
use harmony::store::SqliteStore;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUm ops@bastion";

/// The site file, its key and agent, and a store with 1 + 3 + `workers`
/// hosts with roles; the /16 has room for them outside the DHCP range.
fn fixture(dir: &Path, workers: u32) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::write(dir.join("id_ed25519.pub"), format!("{KEY}\n")).unwrap();
    let agent = dir.join("agent.bin");
    std::fs::write(&agent, vec![0x7f; 2 << 20]).unwrap();
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::create_dir_all(dir.join("state")).unwrap();
    let site = dir.join("site.yaml");
    std::fs::write(
        &site,
        format!(
            r#"cluster:
  name: bench
  base_domain: example.org
  okd_version: "4.19"
  cluster_network: {{ cidr: 10.128.0.0/14, host_prefix: 23 }}
  service_network: 172.30.0.0/16
  pull_secret_file: {d}/pull-secret.json
provisioning:
  interface: prov0
  subnet: 198.18.0.0/16
  gateway: 198.18.0.1
  harmony_address: 198.18.0.2
  dhcp_range: {{ start: 198.18.200.0, end: 198.18.250.255 }}
  dns_forwarders: [198.18.0.1]
services:
  backend: linux
  linux:
    state_dir: {d}/state
    http_root: {d}/www
    http_listen: 198.18.0.2:8080
    dns_listen: 198.18.0.2:53
    load_balancer_address: 198.18.0.2
hosts:
  bootstrap: 1
  control_plane: 3
  workers: {workers}
ssh:
  operator_key_file: {d}/id_ed25519
  cluster_public_key_file: {d}/id_ed25519.pub
"#,
            d = dir.display()
        ),
    )
    .unwrap();
    let db = dir.join("inv.sqlite3");
    let store = SqliteStore::open(&db).unwrap();
    let total = 4 + workers;
    let hosts: Vec<_> = (1..=total)
        .map(|n| common::host(n, &format!("198.18.{}.{}", 200 + n / 250, n % 250 + 1)))
        .collect();
    store
        .upsert_many(&hosts, std::time::SystemTime::now())
        .unwrap();
    for (i, h) in hosts.iter().enumerate() {
        let (role, name) = match i {
            0 => (Role::Bootstrap, "bootstrap".to_string()),
            1..=3 => (Role::ControlPlane, format!("master-{}", i - 1)),
            _ => (Role::Worker, format!("worker-{}", i - 4)),
        };
        store
            .assign(&h.id, Some(role), Some(name.parse().unwrap()))
            .unwrap();
    }
    (site, db, agent)
}

fn dry_run(harmony: &Path, site: &Path, db: &Path, agent: &Path) -> (Duration, String) {
    let t = Instant::now();
    let out = Command::new(harmony)
        .args(["install", "--dry-run", "--site"])
        .arg(site)
        .arg("--db")
        .arg(db)
        .arg("--agent")
        .arg(agent)
        .env_remove("HARMONY_DB")
        .output()
        .unwrap();
    let took = t.elapsed();
    assert!(
        out.status.success(),
        "harmony install --dry-run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (took, String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A step that reads nothing and does nothing: what remains is the saga
/// runner and its log.
#[derive(Debug)]
struct Nothing(usize);

#[async_trait]
impl<T: Topology> Step<T> for Nothing {
    fn key(&self) -> StepKey {
        StepKey(format!("step {}", self.0))
    }

    async fn prepare(&self, _: StepContext<'_, T>) -> Result<Prepared, StepError> {
        Ok(Prepared::Change {
            description: format!("step {}", self.0),
            undo: UndoData::none(),
        })
    }

    async fn apply(&self, _: StepContext<'_, T>) -> Result<Option<String>, StepError> {
        Ok(None)
    }

    async fn undo(&self, _: StepContext<'_, T>, _: &UndoData) -> Result<(), StepError> {
        Ok(())
    }
}

#[derive(Debug)]
struct Trivial(usize);

#[async_trait]
impl<T: Topology> SagaScore<T> for Trivial {
    fn saga_name(&self) -> String {
        "TrivialSaga".into()
    }

    async fn steps(&self, _: &Inventory, _: &T) -> Result<Vec<Box<dyn Step<T>>>, InterpretError> {
        Ok((0..self.0)
            .map(|i| Box::new(Nothing(i)) as Box<dyn Step<T>>)
            .collect())
    }
}

#[derive(Debug)]
struct Bench;

impl Topology for Bench {
    fn name(&self) -> &str {
        "bench"
    }
}

async fn saga_time(steps: usize, log: Arc<dyn StepLog>, repo: Arc<SqliteStore>) -> Duration {
    let inventory = Inventory::new(repo, EventBus::default()).with_step_log(log);
    let interpret = SagaInterpret(Trivial(steps));
    let t = Instant::now();
    Interpret::<Bench>::execute(&interpret, &inventory, &Bench)
        .await
        .unwrap();
    t.elapsed()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let harmony = PathBuf::from(args.next().expect("HARMONY_BIN"));
    let workers: u32 = args.next().map_or(100, |a| a.parse().expect("WORKERS"));
    let runs: usize = args.next().map_or(10, |a| a.parse().expect("RUNS"));
    let steps: usize = args.next().map_or(1000, |a| a.parse().expect("STEPS"));
    let dir = tempfile::tempdir().unwrap();

    // (a)
    let (site, db, agent) = fixture(dir.path(), workers);
    let state_before = std::fs::read_dir(dir.path().join("state")).unwrap().count();
    let (_, first) = dry_run(&harmony, &site, &db, &agent);
    let changes = first
        .lines()
        .find_map(|l| l.strip_prefix("OKDInstallationScore: "))
        .unwrap_or("?")
        .to_string();
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| dry_run(&harmony, &site, &db, &agent).0)
        .collect();
    times.sort();
    assert_eq!(
        std::fs::read_dir(dir.path().join("state")).unwrap().count(),
        state_before,
        "the dry run wrote to the state dir"
    );
    println!(
        "(a) harmony install --dry-run, 1 + 3 + {workers} hosts ({changes}, {} bytes of plan): \
         best {:.1} ms, median {:.1} ms of {runs} runs (goal < 1000 ms)",
        first.len(),
        ms(times[0]),
        ms(times[times.len() / 2])
    );

    // (b)
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let repo = Arc::new(SqliteStore::open(&dir.path().join("repo.sqlite3")).unwrap());
    let mut mem = Vec::new();
    let mut sql = Vec::new();
    for r in 0..runs.max(1) {
        mem.push(runtime.block_on(saga_time(
            steps,
            Arc::new(MemoryStepLog::default()),
            repo.clone(),
        )));
        let log = Arc::new(SqliteStore::open(&dir.path().join(format!("log{r}.sqlite3"))).unwrap());
        sql.push(runtime.block_on(saga_time(steps, log, repo.clone())));
    }
    let best = |v: &[Duration]| v.iter().min().copied().unwrap_or_default();
    let per = |d: Duration| ms(d) / steps as f64;
    let (m, s) = (best(&mem), best(&sql));
    println!(
        "(b) a saga of {steps} trivial steps, best of {}: in-memory step log {:.4} ms/step \
         ({:.1} ms), SQLite step log {:.4} ms/step ({:.1} ms): the SQLite log costs {:.4} ms per step",
        runs.max(1),
        per(m),
        ms(m),
        per(s),
        ms(s),
        per(s) - per(m)
    );
    let _ = repo.hosts();
}
