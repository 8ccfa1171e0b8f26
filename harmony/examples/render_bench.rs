//! Time to render every boot artefact of a 100-host cluster (1 bootstrap,
//! 3 control-plane, 96 workers): default.ipxe, inventory.ks, and per host
//! its planned bond, install disk, Ignition (with nmstate keyfiles) and
//! per-MAC iPXE scripts. Goal: < 200 ms. Also times writing them.
//!
//! `cargo run --release -p harmony --example render_bench`
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/store_common.rs"]
mod common;
#[path = "../tests/support/site_boot.rs"]
mod site;

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime};

use harmony::domain::saga::{StepContext, run_saga};
use harmony::domain::{EventBus, Inventory};
use harmony::domain::{HostRecord, HostSummary, InstallPhase, Role};
use harmony::infra::http_root::HttpRoot;
use harmony::modules::okd::artefacts::{artefact_steps, render_cluster};
use harmony::store::SqliteStore;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let hosts: Vec<HostRecord> = (1..=100u32)
        .map(|n| {
            let d = common::host(n, &format!("192.168.{}.{}", 77 + n / 250, n % 250 + 2));
            let (role, name) = match n {
                1 => (Role::Bootstrap, "bootstrap".to_string()),
                2..=4 => (Role::ControlPlane, format!("master-{}", n - 2)),
                _ => (Role::Worker, format!("worker-{}", n - 5)),
            };
            HostRecord {
                id: d.id.clone(),
                ip: d.ip,
                macs: d.macs.clone(),
                first_seen: SystemTime::now(),
                last_seen: SystemTime::now(),
                role: Some(role),
                hostname: Some(name.parse().unwrap()),
                phase: InstallPhase::RoleAssigned,
                summary: HostSummary::from_hardware(&d.hardware),
                hardware: d.hardware,
                flags: Vec::new(),
            }
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let root = HttpRoot::new(dir.path(), "http://192.168.77.1:8080/".parse().unwrap());
    let site = site::site_boot();
    let networks = BTreeMap::new();

    let runs = 20;
    let mut render_ms = Vec::new();
    let mut files = 0;
    let mut bytes = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let a = render_cluster(&root, &site, &hosts, &networks).unwrap();
        render_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        files = a.len();
        bytes = a.iter().map(|x| x.contents.len()).sum::<usize>();
    }
    render_ms.sort_by(f64::total_cmp);
    // Writing goes through the saga on the SQLite step log, as
    // `BootArtefacts` does: a log entry before and after every file.
    let store = std::sync::Arc::new(SqliteStore::open(&dir.path().join("inv.sqlite3")).unwrap());
    let inventory = Inventory::new(store.clone(), EventBus::default()).with_step_log(store);
    let ctx = StepContext {
        inventory: &inventory,
        topology: &root,
    };
    let write = || async {
        let artefacts = render_cluster(&root, &site, &hosts, &networks).unwrap();
        let steps = artefact_steps(&root, artefacts).await.unwrap();
        run_saga("render_bench", &steps, ctx).await.unwrap()
    };
    let t = Instant::now();
    let changed = write().await;
    let first_write = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    let unchanged = write().await;
    let noop_write = t.elapsed().as_secs_f64() * 1000.0;
    assert!(
        matches!(&changed, harmony::domain::Outcome::Success { changes } if changes.len() == files)
    );
    assert!(unchanged.is_noop());
    println!(
        "100-host cluster: {files} files, {} KiB; render median {:.1} ms, max {:.1} ms over {runs} runs (goal < 200 ms)",
        bytes / 1024,
        render_ms[runs / 2],
        render_ms[runs - 1]
    );
    println!(
        "render + write into the HTTP root on the step log (fsync per file): first {first_write:.1} ms, re-run (Noop) {noop_write:.1} ms"
    );
}
