//! `harmony lab`: the virtual lab as README command 1. Makes the lab
//! ([`crate::infra::lab::run`]), runs the flow with a progress log (or the
//! TUI over the lab's store, when in a terminal), prints the summary table
//! and the figures, and takes the lab down unless `--keep`; `--down` takes
//! down a lab kept up by another `harmony lab --keep`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::args::LabArgs;
use super::error::CliError;
use crate::infra::lab::run::{LabRunSpec, run_flow};
use crate::infra::lab::site::LabSpec;
use crate::infra::lab::vm::Accel;
use crate::infra::process::{Foreground, Program};

/// The pid of a `harmony lab --keep` holding the lab up, in its directory.
const KEEPER_PID: &str = "lab.pid";
/// How long `--down` waits for the keeper to take its lab down.
const DOWN_WITHIN: Duration = Duration::from_secs(60);

pub fn run(args: LabArgs) -> Result<(), CliError> {
    if !args.dir.is_absolute() {
        return Err(CliError::Install(format!(
            "invalid --dir {:?}: an absolute path",
            args.dir.display().to_string()
        )));
    }
    if args.down {
        return down(&args.dir);
    }
    let accel = match args.accel.as_str() {
        "tcg" => Accel::Tcg,
        "kvm" => Accel::Kvm,
        other => {
            return Err(CliError::Install(format!(
                "invalid --accel {other:?}: tcg or kvm"
            )));
        }
    };
    let agent = std::path::absolute(&args.agent)
        .map_err(|e| CliError::Install(format!("--agent {}: {e}", args.agent.display())))?;
    let harmony = std::env::current_exe()
        .map_err(|e| CliError::Install(format!("the harmony binary's path: {e}")))?;
    let tui_mode = TuiMode::parse(&args.tui)?;
    let mut lab = LabSpec::new(&args.dir, agent);
    lab.hosts = args.hosts;
    lab.accel = accel;
    lab.memory_mib = args.memory;
    lab.cache = args.cache.clone();
    lab.hard_kill_after = args.timeout + Duration::from_secs(600);
    if args.keep {
        // Kept up: the keeper is asked to stop, QEMU never killed under it.
        lab.hard_kill_after = Duration::from_secs(7 * 24 * 3600);
    }
    // Everything checked before anything is touched.
    lab.validate(None)
        .map_err(|e| CliError::Install(e.to_string()))?;
    if keeper_alive(&args.dir) {
        return Err(CliError::Install(format!(
            "{}: a lab is kept up there (harmony lab --down --dir {} first)",
            args.dir.display(),
            args.dir.display()
        )));
    }
    empty_lab_dir(&args.dir)?;
    let cancel = Arc::new(AtomicBool::new(false));
    let spec = LabRunSpec {
        lab,
        harmony,
        crash_test: args.crash_test,
        within: args.timeout,
        cancel: cancel.clone(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    rt.block_on(async move {
        watch_signals(cancel.clone());
        let log_path = args.dir.join("lab.log");
        let mut tui = start_tui(tui_mode, &args.dir)?;
        let mut log = std::fs::File::create(&log_path)
            .map_err(|e| CliError::Install(format!("{}: {e}", log_path.display())))?;
        // Progress goes to the terminal unless the TUI holds it; when the
        // operator leaves the TUI, the terminal gets it back (once).
        let mut to_terminal = tui.is_none();
        let mut tui_open = tui.is_some();
        // Whether the terminal was given back (by the progress or after).
        let restored = AtomicBool::new(false);
        let restored_by_progress = &restored;
        let start = Instant::now();
        let tui_running = &mut tui;
        let log_shown = log_path.clone();
        let mut progress = move |line: &str| {
            let stamped = format!("[{:>6.1}s] {line}", start.elapsed().as_secs_f64());
            let _ = writeln!(log, "{stamped}");
            if tui_open && tui_running.as_mut().is_some_and(|t| t.has_exited()) {
                tui_open = false;
                restore_terminal();
                restored_by_progress.store(true, Ordering::Relaxed);
                to_terminal = say(&format!(
                    "lab: the TUI is closed; the lab goes on, its progress follows \
                     (Ctrl-C stops it; the whole log is {})",
                    log_shown.display()
                ));
            }
            // A closed terminal (SIGHUP) must not end or slow the flow:
            // the lines still go to the log.
            if to_terminal && !say(&stamped) {
                to_terminal = false;
            }
        };
        let result = run_flow(spec, &mut progress).await;
        drop(progress);
        if let Some(t) = tui.as_mut() {
            t.stop(Duration::from_secs(5)).await;
            if !restored.load(Ordering::Relaxed) {
                restore_terminal();
            }
        }
        let (site, report) = result.map_err(|e| CliError::Install(format!("lab: {e}")))?;
        say(&format!("\n{}", report.render()));
        say(&format!(
            "report: {}; progress log: {}; harmony's output: {}",
            site.dir().join("report.json").display(),
            log_path.display(),
            site.dir().join("harmony.log").display()
        ));
        let ok = report.problems.is_empty();
        if args.keep {
            keep(&args.dir, &site, &cancel).await?;
        }
        site.down()
            .await
            .map_err(|e| CliError::Install(format!("taking the lab down: {e}")))?;
        say("lab: down (no VM, switch, namespace or service left running)");
        if ok {
            Ok(())
        } else {
            Err(CliError::Install(format!(
                "lab: {} problems (see the summary)",
                report.problems.len()
            )))
        }
    })
}

/// A line on stdout; false if it cannot be written (the terminal is gone).
fn say(line: &str) -> bool {
    writeln!(std::io::stdout(), "{line}").is_ok()
}

/// The terminal back as it was, whatever the TUI left: the main screen,
/// the cursor, cooked mode.
fn restore_terminal() {
    if !std::io::stdout().is_terminal() {
        return;
    }
    let mut out = std::io::stdout();
    let _ = write!(out, "\x1b[?1049l\x1b[?25h");
    let _ = out.flush();
    let _ = Program::new("stty")
        .arg("sane")
        .timeout(Duration::from_secs(5))
        .run_blocking();
}

/// Ctrl-C, SIGTERM and SIGHUP (the terminal closed) set `cancel`: the
/// flow stops Harmony and takes the lab down.
fn watch_signals(cancel: Arc<AtomicBool>) {
    let mut signals = super::signals::StopSignals::register();
    tokio::spawn(async move {
        let name = signals.recv().await;
        // First the flag: the log line may go to a terminal that is gone.
        cancel.store(true, Ordering::Relaxed);
        tracing::warn!(signal = name, "signal received: stopping the lab");
        signals.exit_on_next();
    });
}

/// When to show the TUI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TuiMode {
    Auto,
    Always,
    Never,
}

impl TuiMode {
    fn parse(s: &str) -> Result<Self, CliError> {
        match s {
            "auto" => Ok(TuiMode::Auto),
            "always" => Ok(TuiMode::Always),
            "never" => Ok(TuiMode::Never),
            other => Err(CliError::Install(format!(
                "invalid --tui {other:?}: auto, always or never"
            ))),
        }
    }
}

/// The first line of the site file the lab writes: what marks a directory
/// as a lab's, which `harmony lab` may empty.
const LAB_MARK: &str = "# The virtual lab's site";

/// Empties `dir` for a new lab, only if it is one: absent, empty, or
/// holding a lab's site file. Anything else is refused, never deleted.
fn empty_lab_dir(dir: &Path) -> Result<(), CliError> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        let ours =
            std::fs::read_to_string(dir.join("site.yaml")).is_ok_and(|t| t.starts_with(LAB_MARK));
        if !empty && !ours {
            return Err(CliError::Install(format!(
                "invalid --dir {:?}: it exists and is not a lab's directory (no site.yaml                  written by `harmony lab`); give a new or empty directory",
                dir.display().to_string()
            )));
        }
        std::fs::remove_dir_all(dir)
            .map_err(|e| CliError::Install(format!("emptying {}: {e}", dir.display())))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| CliError::Install(format!("{}: {e}", dir.display())))
}

/// `harmony-tui` over the lab's store, in this terminal, when wanted and
/// possible.
fn start_tui(mode: TuiMode, dir: &Path) -> Result<Option<Foreground>, CliError> {
    let want = match mode {
        TuiMode::Never => false,
        TuiMode::Always => true,
        TuiMode::Auto => std::io::stdout().is_terminal(),
    };
    if !want {
        return Ok(None);
    }
    let tui = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("harmony-tui")))
        .filter(|p| p.is_file());
    let Some(tui) = tui else {
        if mode == TuiMode::Always {
            return Err(CliError::Install(
                "--tui always: no harmony-tui next to harmony".into(),
            ));
        }
        return Ok(None);
    };
    let db = dir.join("inventory.sqlite3");
    Program::new(&tui)
        .arg("--db")
        .arg(&db)
        .start_foreground()
        .map(Some)
        .map_err(|e| CliError::Install(format!("starting {}: {e}", tui.display())))
}

/// Holds the lab up until a signal or `--down`.
async fn keep(
    dir: &Path,
    site: &crate::infra::lab::site::LabSite,
    cancel: &AtomicBool,
) -> Result<(), CliError> {
    let pid_file = dir.join(KEEPER_PID);
    crate::infra::fs::write_atomic(
        &pid_file,
        format!("{}\n", std::process::id()).as_bytes(),
        0o644,
    )
    .map_err(|e| CliError::Install(format!("{}: {e}", pid_file.display())))?;
    say(&format!(
        "lab: kept up: namespace {} (`ip netns exec {} ...`), site file {}; stop it with \
         Ctrl-C or `harmony lab --down --dir {}`",
        site.namespace(),
        site.namespace(),
        site.site_file().display(),
        dir.display()
    ));
    while !cancel.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = std::fs::remove_file(&pid_file);
    Ok(())
}

fn keeper_pid(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(dir.join(KEEPER_PID))
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|p| *p > 1)
}

/// Whether the pid in `dir` is a live `harmony lab`.
fn keeper_alive(dir: &Path) -> bool {
    keeper_pid(dir).is_some_and(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains("lab"))
    })
}

/// `--down`: SIGTERM to the keeper, then wait for it to take the lab down.
fn down(dir: &Path) -> Result<(), CliError> {
    let Some(pid) = keeper_pid(dir).filter(|_| keeper_alive(dir)) else {
        say(&format!("lab: nothing kept up in {}", dir.display()));
        return Ok(());
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .map_err(|e| CliError::Install(format!("stopping the lab keeper {pid}: {e}")))?;
    let start = Instant::now();
    while start.elapsed() < DOWN_WITHIN {
        if !PathBuf::from(format!("/proc/{pid}")).exists() {
            say(&format!("lab: down ({} stopped)", pid));
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(CliError::Install(format!(
        "the lab keeper {pid} did not stop within {} s",
        DOWN_WITHIN.as_secs()
    )))
}
