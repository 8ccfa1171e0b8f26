//! The virtual lab's whole flow, as README command 1 (`harmony lab`) and
//! the end-to-end test run it: [`run_flow`] makes the [`LabSite`] (N QEMU
//! machines on the lab's Open vSwitch, the stand-in images, the simulated
//! cluster), then runs the **real `harmony` binary** in the lab namespace
//! the way an operator does:
//!
//! `harmony install --site <lab>/site.yaml --agent <agent> --db <lab db>
//! --stop-when-done`
//!
//! which discovers the machines (`OKDSetup01Site`), then installs them
//! (`OKDInstallationScore`: bootstrap, control plane with the bootstrap
//! retired and wiped back into discovery, workers joined). While it runs,
//! the flow follows the store (hosts discovered, install phases), the
//! simulated cluster (each installer's reported phases) and Harmony's own
//! output, and prints them as a progress log.
//!
//! With `crash_test`, Harmony and every process it started are killed
//! (SIGKILL, as when its host or its unit dies) as soon as the first
//! control-plane machine has fetched its Ignition (step 3 under way); a
//! second `harmony install --resume` finishes the run.
//!
//! Afterwards it checks, machine by machine, what an operator would: the
//! LAG of every installed machine negotiated with the machine as partner
//! (`ovs-appctl lacp/show`), the installed disks, the bootstrap's wiped
//! disk and its ports back in access mode, and how many times each machine
//! booted each image (no repeated side effect: one installer boot per
//! machine, one more discovery boot for the bootstrap). It returns the
//! [`LabReport`] (also written as `report.json` in the lab directory) with
//! the figures: lab start to all hosts discovered, to all provisioned,
//! Harmony's CPU time and peak memory.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::LabError;
use super::cluster_sim::Phase;
use super::installer::InstallHeader;
use super::site::{ACCESS_VLAN, LabSite, LabSpec, role_of};
use crate::domain::{InstallPhase, InventoryRepository};
use crate::infra::ovs::appctl::parse_lacp_show;
use crate::infra::process::Service;
use crate::store::SqliteStore;

/// Between two looks at the store, the cluster and Harmony's log.
const POLL: Duration = Duration::from_secs(1);
/// Harmony's grace to stop (it stops its site services first, each
/// within 15 s) when the flow is cancelled or runs out of time; after it,
/// Harmony and everything under it are killed.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// A serial console line each image prints once per boot.
const DISCOVERY_BOOT: &str = "HARMONY-LAB-INIT ";
const INSTALLER_BOOT: &str = "HARMONY-LAB-INSTALLER ";

/// What to run.
#[derive(Debug, Clone)]
pub struct LabRunSpec {
    pub lab: LabSpec,
    /// The `harmony` binary run in the namespace.
    pub harmony: PathBuf,
    /// Kill Harmony in the middle of step 3 and resume.
    pub crash_test: bool,
    /// The whole flow (discovery and installation) must end within this.
    pub within: Duration,
    /// Set (by a signal handler) to stop: Harmony is stopped politely and
    /// the flow ends with an error.
    pub cancel: Arc<AtomicBool>,
}

/// One machine in the summary.
#[derive(Debug, Clone, Serialize)]
pub struct HostRow {
    pub name: String,
    pub role: String,
    pub macs: Vec<String>,
    /// `bond0 (2 members, LACP negotiated on bond5)`, or why not.
    pub bond: String,
    /// Harmony's recorded phase.
    pub phase: String,
    /// Seconds from lab start: discovered, and each installer phase.
    pub discovered_s: Option<f64>,
    pub ignition_fetched_s: Option<f64>,
    pub disk_written_s: Option<f64>,
    pub bond_up_s: Option<f64>,
    pub discovery_boots: usize,
    pub installer_boots: usize,
    /// What the install disk holds now: `installed <hostname>` or `blank`.
    pub disk: String,
}

/// The crash test's part of the run.
#[derive(Debug, Clone, Serialize)]
pub struct CrashReport {
    /// Seconds from lab start when Harmony was killed.
    pub killed_at_s: f64,
    /// What was under way (the report that triggered it).
    pub during: String,
    /// Processes killed with it (its services).
    pub processes_killed: usize,
}

/// What the run did and measured.
#[derive(Debug, Clone, Serialize)]
pub struct LabReport {
    pub hosts: Vec<HostRow>,
    pub lab_up_s: f64,
    /// Lab start to every machine stored by discovery.
    pub discovered_s: Option<f64>,
    /// Lab start to `harmony install` done (every machine installed, the
    /// bootstrap retired).
    pub provisioned_s: Option<f64>,
    /// Wall time of the Harmony runs.
    pub harmony_wall_s: f64,
    /// User + system CPU of Harmony and the services it ran (dnsmasq,
    /// Caddy, HAProxy), from `getrusage(RUSAGE_CHILDREN)`.
    pub harmony_cpu_s: f64,
    /// The peak resident memory of the `harmony` process (`VmHWM`).
    pub harmony_peak_rss_kib: Option<u64>,
    pub crash: Option<CrashReport>,
    /// Problems the checks found (empty: the flow worked).
    pub problems: Vec<String>,
}

impl LabReport {
    /// Harmony's CPU as a share of the run's wall time (all of the host's
    /// CPUs count once).
    pub fn cpu_share(&self) -> f64 {
        if self.harmony_wall_s > 0.0 {
            self.harmony_cpu_s / self.harmony_wall_s
        } else {
            0.0
        }
    }

    /// The summary table and the figures, as printed at the end.
    pub fn render(&self) -> String {
        let s = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}s"));
        let mut rows = vec![[
            "HOST".to_string(),
            "ROLE".into(),
            "MACS".into(),
            "BOND".into(),
            "PHASE".into(),
            "DISCOVERED".into(),
            "IGNITION".into(),
            "DISK".into(),
            "BOND-UP".into(),
            "BOOTS(D/I)".into(),
            "INSTALL DISK".into(),
        ]];
        for h in &self.hosts {
            rows.push([
                h.name.clone(),
                h.role.clone(),
                h.macs.join(","),
                h.bond.clone(),
                h.phase.clone(),
                s(h.discovered_s),
                s(h.ignition_fetched_s),
                s(h.disk_written_s),
                s(h.bond_up_s),
                format!("{}/{}", h.discovery_boots, h.installer_boots),
                h.disk.clone(),
            ]);
        }
        let mut widths = [0usize; 11];
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        for r in &rows {
            let cells: Vec<String> = r
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            out += cells.join("  ").trim_end();
            out.push('\n');
        }
        out += &format!(
            "\nlab up: {:.1}s; all {} hosts discovered: {}; all provisioned: {} (from lab start)\n",
            self.lab_up_s,
            self.hosts.len(),
            s(self.discovered_s),
            s(self.provisioned_s),
        );
        out += &format!(
            "harmony: CPU {:.2}s = {:.1}% of its {:.1}s wall time (with the dnsmasq, Caddy and \
             HAProxy it ran); peak RSS {}\n",
            self.harmony_cpu_s,
            100.0 * self.cpu_share(),
            self.harmony_wall_s,
            self.harmony_peak_rss_kib
                .map_or("-".to_string(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
        );
        if let Some(c) = &self.crash {
            out += &format!(
                "crash test: harmony and {} processes it started killed at {:.0}s ({}); \
                 `harmony install --resume` finished the run\n",
                c.processes_killed, c.killed_at_s, c.during
            );
        }
        if self.problems.is_empty() {
            out += "result: OK\n";
        } else {
            out += "result: FAILED\n";
            for p in &self.problems {
                out += &format!("  - {p}\n");
            }
        }
        out
    }
}

/// Progress lines, printed as they come.
pub type Progress<'a> = &'a mut (dyn FnMut(&str) + Send);

/// Runs the flow (see the module doc). The lab is returned up, whatever
/// the checks found, so the caller can keep it or take it down; an error
/// means the flow could not run to its end (the lab is taken down).
pub async fn run_flow(
    spec: LabRunSpec,
    progress: Progress<'_>,
) -> Result<(LabSite, LabReport), LabError> {
    let t0 = Instant::now();
    let wall0 = SystemTime::now();
    progress(&format!(
        "lab: making {} machines ({:?}, {} MiB each) in {}",
        spec.lab.hosts,
        spec.lab.accel,
        spec.lab.memory_mib,
        spec.lab.dir.display()
    ));
    let lab = LabSite::up(spec.lab.clone()).await?;
    let lab_up_s = t0.elapsed().as_secs_f64();
    progress(&format!(
        "lab: up in {lab_up_s:.1}s: namespace {}, site file {}",
        lab.namespace(),
        lab.site_file().display()
    ));
    match follow(&spec, &lab, t0, wall0, lab_up_s, progress).await {
        Ok(report) => {
            let text = serde_json::to_vec_pretty(&report).unwrap_or_default();
            let path = lab.dir().join("report.json");
            crate::infra::fs::write_atomic(&path, &text, 0o644)
                .map_err(|e| LabError::io(&path, e))?;
            Ok((lab, report))
        }
        Err(e) => {
            if let Err(down) = lab.down().await {
                tracing::warn!(error = %down, "taking the lab down after a failure");
            }
            Err(e)
        }
    }
}

/// What the polling loop keeps between two looks.
#[derive(Default)]
struct Seen {
    log_offset: u64,
    /// By host id: its name (the id until it has one), first seen, phase.
    hosts: BTreeMap<String, (String, SystemTime, InstallPhase)>,
    phases: BTreeSet<(String, Phase, u64)>,
    discovered_at: Option<f64>,
    peak_rss_kib: Option<u64>,
    /// The lab's store, opened once Harmony has made it.
    store: Option<SqliteStore>,
}

async fn follow(
    spec: &LabRunSpec,
    lab: &LabSite,
    t0: Instant,
    wall0: SystemTime,
    lab_up_s: f64,
    progress: Progress<'_>,
) -> Result<LabReport, LabError> {
    let db = lab.dir().join("inventory.sqlite3");
    let log = lab.dir().join("harmony.log");
    let deadline = t0 + spec.within;
    let cpu0 = children_cpu();
    let h0 = Instant::now();
    let mut seen = Seen::default();
    let mut harmony = HarmonyRun(start_harmony(spec, lab, &db, &log, false)?);
    progress(&format!(
        "harmony: {} (output in {})",
        harmony.command_line(),
        log.display()
    ));
    let mut crash: Option<CrashReport> = None;
    loop {
        look(lab, &db, &log, t0, wall0, &mut seen, progress);
        if let Some(pid) = harmony.pid() {
            seen.peak_rss_kib = seen.peak_rss_kib.max(peak_rss_kib(pid));
        }
        if spec.crash_test
            && crash.is_none()
            && let Some(during) = control_plane_under_way(lab)
        {
            let killed = kill_tree(&mut harmony);
            let at = t0.elapsed().as_secs_f64();
            progress(&format!(
                "crash test: killed harmony and {killed} processes it started at {at:.0}s \
                 ({during}); starting `harmony install --resume`"
            ));
            crash = Some(CrashReport {
                killed_at_s: at,
                during,
                processes_killed: killed,
            });
            harmony = HarmonyRun(start_harmony(spec, lab, &db, &log, true)?);
            continue;
        }
        match harmony
            .try_wait()
            .map_err(|e| LabError::process("harmony install", e))?
        {
            Some(st) if st.success() => break,
            Some(st) => {
                look(lab, &db, &log, t0, wall0, &mut seen, progress);
                return Err(LabError::Flow {
                    what: "harmony install".into(),
                    detail: format!(
                        "ended with {st:?}; the end of {}:\n{}",
                        log.display(),
                        harmony.log_tail(3000)
                    ),
                });
            }
            None => {}
        }
        if spec.cancel.load(Ordering::Relaxed) {
            stop_politely(&mut harmony, STOP_GRACE).await;
            return Err(LabError::Flow {
                what: "the lab flow".into(),
                detail: "interrupted (Ctrl-C, SIGTERM or SIGHUP); harmony stopped".into(),
            });
        }
        if Instant::now() >= deadline {
            stop_politely(&mut harmony, STOP_GRACE).await;
            return Err(LabError::Flow {
                what: "the lab flow".into(),
                detail: format!(
                    "not done within {} s; the end of {}:\n{}",
                    spec.within.as_secs(),
                    log.display(),
                    harmony.log_tail(3000)
                ),
            });
        }
        tokio::time::sleep(POLL).await;
    }
    let harmony_wall_s = h0.elapsed().as_secs_f64();
    let harmony_cpu_s = children_cpu() - cpu0;
    look(lab, &db, &log, t0, wall0, &mut seen, progress);
    let provisioned_s = Some(t0.elapsed().as_secs_f64());
    progress(&format!(
        "harmony: done at {:.0}s; checking every machine",
        t0.elapsed().as_secs_f64()
    ));
    let (hosts, problems) = check_hosts(lab, &db, wall0, &seen).await?;
    Ok(LabReport {
        hosts,
        lab_up_s,
        discovered_s: seen.discovered_at,
        provisioned_s,
        harmony_wall_s,
        harmony_cpu_s,
        harmony_peak_rss_kib: seen.peak_rss_kib,
        crash,
        problems,
    })
}

fn start_harmony(
    spec: &LabRunSpec,
    lab: &LabSite,
    db: &Path,
    log: &Path,
    resume: bool,
) -> Result<Service, LabError> {
    let mut p = lab
        .program(&spec.harmony.display().to_string())?
        .arg("install")
        .arg("--site")
        .arg(lab.site_file())
        .arg("--agent")
        .arg(&spec.lab.agent)
        .arg("--db")
        .arg(db)
        .arg("--stop-when-done")
        .env_remove("HARMONY_DB");
    if resume {
        p = p.arg("--resume");
    }
    p.start(log)
        .map_err(|e| LabError::process("starting harmony install", e))
}

/// Prints what changed since the last look: Harmony's new output lines,
/// hosts discovered or in a new phase, installer reports.
fn look(
    lab: &LabSite,
    db: &Path,
    log: &Path,
    t0: Instant,
    wall0: SystemTime,
    seen: &mut Seen,
    progress: Progress<'_>,
) {
    for line in new_lines(log, &mut seen.log_offset) {
        progress(&format!("  harmony | {line}"));
    }
    let at = |t: SystemTime| {
        t.duration_since(wall0)
            .map_or(0.0, |d| d.as_secs_f64())
            .max(0.0)
    };
    if seen.store.is_none() && db.exists() {
        seen.store = SqliteStore::open(db).ok();
    }
    if let Some(store) = &seen.store
        && let Ok(hosts) = store.hosts()
    {
        for h in &hosts {
            let name = h
                .hostname
                .as_ref()
                .map_or_else(|| h.id.to_string(), |n| n.to_string());
            let before = seen
                .hosts
                .insert(h.id.to_string(), (name.clone(), h.first_seen, h.phase));
            match before {
                None => progress(&format!(
                    "store: {name} discovered at {} ({} MACs) at {:.0}s",
                    h.ip,
                    h.macs.len(),
                    at(h.first_seen)
                )),
                Some((_, _, p)) if p != h.phase => {
                    progress(&format!(
                        "store: {name} is {} ({:.0}s)",
                        h.phase,
                        elapsed(t0)
                    ));
                }
                Some(_) => {}
            }
        }
        if seen.discovered_at.is_none() && hosts.len() >= lab.vms().len() {
            let last = hosts.iter().map(|h| h.first_seen).max().unwrap_or(wall0);
            seen.discovered_at = Some(at(last));
            progress(&format!(
                "store: all {} machines discovered at {:.1}s",
                hosts.len(),
                at(last)
            ));
        }
    }
    if let Some(sim) = lab.cluster() {
        for h in sim.view().hosts {
            for (n, r) in h.phases.iter().enumerate() {
                let key = (h.name.to_string(), r.phase, n as u64);
                if seen.phases.insert(key) {
                    progress(&format!(
                        "installer: {} {} {} ({:.0}s)",
                        h.name,
                        r.phase,
                        r.detail,
                        at(r.at)
                    ));
                }
            }
        }
    }
}

fn elapsed(t0: Instant) -> f64 {
    t0.elapsed().as_secs_f64()
}

/// Whole new lines of `path` from `offset` (advanced past them).
fn new_lines(path: &Path, offset: &mut u64) -> Vec<String> {
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    if f.seek(SeekFrom::Start(*offset)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    // At most 1 MiB a look: a chatty run is printed over several looks.
    if f.take(1 << 20).read_to_end(&mut buf).is_err() {
        return Vec::new();
    }
    let Some(end) = buf.iter().rposition(|b| *b == b'\n') else {
        return Vec::new();
    };
    *offset += end as u64 + 1;
    String::from_utf8_lossy(&buf[..end])
        .lines()
        .map(|l| l.chars().filter(|c| !c.is_control()).collect())
        .collect()
}

/// The first control-plane installer report, once there is one: step 3
/// is under way.
fn control_plane_under_way(lab: &LabSite) -> Option<String> {
    let view = lab.cluster()?.view();
    view.hosts
        .iter()
        .filter(|h| h.role == crate::domain::Role::ControlPlane)
        .find_map(|h| {
            h.phases
                .iter()
                .find(|p| p.phase == Phase::IgnitionFetched)
                .map(|_| format!("{} fetched its Ignition: OKDSetup03ControlPlane", h.name))
        })
}

/// The running `harmony install`. Dropped while it still runs (the flow
/// ended by an error or a panic before stopping it), it goes with every
/// process under it ([`kill_tree`]): its site services run in process
/// groups of their own and would outlive it.
struct HarmonyRun(Service);

impl std::ops::Deref for HarmonyRun {
    type Target = Service;
    fn deref(&self) -> &Service {
        &self.0
    }
}

impl std::ops::DerefMut for HarmonyRun {
    fn deref_mut(&mut self) -> &mut Service {
        &mut self.0
    }
}

impl Drop for HarmonyRun {
    fn drop(&mut self) {
        let killed = kill_tree(&mut self.0);
        if killed > 0 {
            tracing::warn!(
                killed,
                "harmony install was still running: killed with what it started"
            );
        }
    }
}

/// SIGTERM to Harmony (it stops its services and exits), then, if it has
/// not ended within `grace`, SIGKILL to it and everything under it.
async fn stop_politely(harmony: &mut HarmonyRun, grace: Duration) {
    if let Some(pid) = harmony.pid().and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let deadline = Instant::now() + grace;
    while harmony.is_running() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let killed = kill_tree(harmony);
    if killed > 0 {
        tracing::warn!(
            killed,
            "harmony did not stop within {grace:?}: killed with what it started"
        );
    }
}

/// SIGKILL to Harmony and every process under it (its services run in
/// their own process groups). Harmony is stopped first (SIGSTOP: it can
/// neither reap a child, freeing its pid, nor start one while the tree
/// is read), then every pid read is killed. Nothing if Harmony has ended
/// (and been reaped: its pid may be another process's by now).
fn kill_tree(harmony: &mut Service) -> usize {
    if !harmony.is_running() {
        return 0;
    }
    let Some(root) = harmony.pid() else {
        return 0;
    };
    if let Ok(p) = i32::try_from(root) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p),
            nix::sys::signal::Signal::SIGSTOP,
        );
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() && tree.len() < 4096 {
        let parent = tree[i];
        tree.extend(children_of(parent));
        i += 1;
    }
    for pid in &tree {
        if let Ok(p) = i32::try_from(*pid) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    // Reaps Harmony (and SIGKILLs its group).
    let _ = harmony.stop_blocking(Duration::from_secs(5));
    tree.len() - 1
}

/// The pids whose parent is `pid` (`/proc/PID/task/*/children`).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for t in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|w| w.parse::<u32>().ok()),
            );
        }
    }
    out
}

/// `VmHWM` of `pid`, KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// User + system CPU seconds of this process's reaped children.
fn children_cpu() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_CHILDREN).map_or(0.0, |u| {
        let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
        t(u.user_time()) + t(u.system_time())
    })
}

/// Each machine's row, and what is wrong with any.
async fn check_hosts(
    lab: &LabSite,
    db: &Path,
    wall0: SystemTime,
    seen: &Seen,
) -> Result<(Vec<HostRow>, Vec<String>), LabError> {
    let store = SqliteStore::open(db)
        .map_err(|e| LabError::invalid("inventory", db.display().to_string(), e.to_string()))?;
    let records = store
        .hosts()
        .map_err(|e| LabError::invalid("inventory", db.display().to_string(), e.to_string()))?;
    let view = lab.cluster().map(|c| c.view());
    let at = |t: SystemTime| t.duration_since(wall0).map_or(0.0, |d| d.as_secs_f64());
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for (i, vm) in lab.vms().iter().enumerate() {
        let spec = vm.spec();
        let (role, name) = role_of(i);
        let first = spec.nics[0].mac;
        let record = records.iter().find(|h| h.macs.contains(&first));
        let phase = record.map_or(InstallPhase::Discovered, |r| r.phase);
        let sim = view
            .as_ref()
            .and_then(|v| v.hosts.iter().find(|h| h.name.as_str() == name));
        let first_at = |p: Phase| {
            sim.and_then(|h| h.phases.iter().find(|r| r.phase == p))
                .map(|r| at(r.at))
        };
        let count = |p: Phase| sim.map_or(0, |h| h.phases.iter().filter(|r| r.phase == p).count());
        let serial = vm.serial_text();
        let discovery_boots = serial.matches(DISCOVERY_BOOT).count();
        let installer_boots = serial.matches(INSTALLER_BOOT).count();
        let header = vm
            .files()
            .disks
            .first()
            .map(|d| InstallHeader::read(d))
            .transpose()?
            .flatten();
        let disk = header
            .as_ref()
            .map_or("blank".to_string(), |h| format!("installed {}", h.hostname));
        let bootstrap = role == "bootstrap";
        let bond = lag_status(lab, i, first).await;
        let want = |ok: bool, what: String| {
            if !ok {
                Some(format!("{name}: {what}"))
            } else {
                None
            }
        };
        let expected_phase = if bootstrap {
            InstallPhase::Decommissioned
        } else {
            InstallPhase::Installed
        };
        problems.extend(
            [
                want(record.is_some(), "never discovered".into()),
                want(
                    phase == expected_phase,
                    format!("phase {phase}, expected {expected_phase}"),
                ),
                want(
                    installer_boots == 1,
                    format!("booted the installer {installer_boots} times, expected once"),
                ),
                want(
                    discovery_boots == if bootstrap { 2 } else { 1 },
                    format!(
                        "booted discovery {discovery_boots} times, expected {}",
                        if bootstrap { 2 } else { 1 }
                    ),
                ),
                want(
                    count(Phase::BondUp) == 1 && count(Phase::Failed) == 0,
                    format!(
                        "installer reported bond-up {} times and failed {} times",
                        count(Phase::BondUp),
                        count(Phase::Failed)
                    ),
                ),
                if bootstrap {
                    want(header.is_none(), format!("install disk not wiped: {disk}"))
                } else {
                    want(
                        header.as_ref().map(|h| h.hostname.as_str()) == Some(name.as_str()),
                        format!("install disk holds {disk}"),
                    )
                },
                if bootstrap {
                    want(
                        bond.starts_with("access"),
                        format!("ports not back in access mode: {bond}"),
                    )
                } else {
                    want(
                        bond.contains("negotiated"),
                        format!("LAG not negotiated: {bond}"),
                    )
                },
            ]
            .into_iter()
            .flatten(),
        );
        rows.push(HostRow {
            name: name.clone(),
            role: role.to_string(),
            macs: spec.nics.iter().map(|n| n.mac.to_string()).collect(),
            bond,
            phase: phase.to_string(),
            discovered_s: record.map(|r| at(r.first_seen)).or_else(|| {
                seen.hosts
                    .values()
                    .find(|(n, _, _)| *n == name)
                    .map(|(_, t, _)| at(*t))
            }),
            ignition_fetched_s: first_at(Phase::IgnitionFetched),
            disk_written_s: first_at(Phase::DiskWritten),
            bond_up_s: first_at(Phase::BondUp),
            discovery_boots,
            installer_boots,
            disk,
        });
    }
    Ok((rows, problems))
}

/// Machine `i`'s switch side: its LAG (`bond<i+1>`) negotiated with the
/// machine's bond as partner, or its ports in access mode.
async fn lag_status(lab: &LabSite, i: usize, bond_mac: crate::domain::MacAddress) -> String {
    let Some(net) = lab.network() else {
        return "no switch".into();
    };
    let lag = format!("bond{}", i + 1);
    if let Ok(out) = net.appctl(&["lacp/show", &lag]).await
        && let Ok(show) = parse_lacp_show(&out)
    {
        let partnered = show
            .members
            .iter()
            .filter(|m| m.attached && m.partner_sys_id == Some(bond_mac))
            .count();
        return format!(
            "{lag}: {} members, {partnered} with the host's bond as partner, {}",
            show.members.len(),
            if show.negotiated && partnered == show.members.len() {
                "negotiated"
            } else {
                "NOT negotiated"
            }
        );
    }
    let vm = &lab.vms()[i];
    let mut tags = Vec::new();
    for n in &vm.spec().nics {
        let tag = net
            .vsctl(&["get", "port", n.tap.as_str(), "tag"])
            .await
            .unwrap_or_default();
        tags.push(tag.trim().to_string());
    }
    if tags.iter().all(|t| t == &ACCESS_VLAN.to_string()) {
        format!("access vlan {ACCESS_VLAN} ({} ports)", tags.len())
    } else {
        format!("ports tagged {tags:?}")
    }
}
