//! `harmony-tui`: a terminal view over Harmony's inventory store and events:
//! the discovered, unassigned nodes, their hardware, role assignment and each
//! host's install phase. This file only wires the channel and routes
//! messages; the state lives in `harmony_tui::app`.
//!
//! Logs: the terminal belongs to the UI, so `tracing` output (warnings by
//! default, `RUST_LOG` to change it) goes to a file, `--log`, by default
//! the database path with `.tui.log` appended; after the terminal is
//! restored, the program says on stderr if anything was logged and where.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use crossterm::event::{self as term, Event as TermEvent};
use harmony::domain::{EventBus, InventoryRepository};
use harmony::inventory_model::DEFAULT_PORT;
use harmony::store::SqliteStore;
use harmony_tui::discovery::start_discovery;
use harmony_tui::{Action, App, Msg, ui};
use tokio::sync::{broadcast, mpsc};

#[derive(Debug, Parser)]
#[command(
    name = "harmony-tui",
    version,
    about = "Harmony inventory TUI: hosts, hardware, roles"
)]
struct Args {
    /// Inventory database [default: $HARMONY_DB, else the user data dir's harmony/inventory.sqlite3].
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
    /// Scan this subnet (e.g. 192.168.10.0/24) for inventory agents.
    #[arg(long, value_name = "CIDR")]
    scan: Option<String>,
    /// Agent port to probe with --scan.
    #[arg(long, value_name = "P", default_value_t = DEFAULT_PORT)]
    port: u16,
    /// How often to reload hosts from the store (another process may write it), in ms.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    tick_ms: u64,
    /// Log file (warnings and errors; `RUST_LOG` for more) [default: the database path + `.tui.log`].
    #[arg(long, value_name = "PATH")]
    log: Option<PathBuf>,
}

/// Sends `tracing` output to `path` (appended); returns its size before,
/// or why it cannot be opened.
fn log_to_file(path: &std::path::Path) -> std::io::Result<u64> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let before = file.metadata()?.len();
    tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_env_filter(harmony::cli::log_filter())
        .init();
    Ok(before)
}

/// After the terminal is restored: says where new log lines went.
fn report_log(path: &std::path::Path, before: u64) {
    let now = std::fs::metadata(path).map_or(before, |m| m.len());
    if now > before {
        eprintln!(
            "harmony-tui: warnings or errors were logged to {}",
            path.display()
        );
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let path = match harmony::cli::db_path(args.db.clone()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("harmony-tui: {e}");
            return ExitCode::from(1);
        }
    };
    let log_path = args.log.clone().unwrap_or_else(|| {
        let mut p = path.clone().into_os_string();
        p.push(".tui.log");
        PathBuf::from(p)
    });
    if let Some(dir) = log_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(dir);
    }
    let log_before = match log_to_file(&log_path) {
        Ok(n) => n,
        Err(e) => {
            eprintln!(
                "harmony-tui: cannot open log file {}: {e}",
                log_path.display()
            );
            return ExitCode::from(1);
        }
    };
    let store: Arc<dyn InventoryRepository> = match SqliteStore::open(&path) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("harmony-tui: {e}");
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("harmony-tui: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let mut args = args;
    args.log = Some(log_path.clone());
    let result = runtime.block_on(run(args, store));
    report_log(&log_path, log_before);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("harmony-tui: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run(args: Args, store: Arc<dyn InventoryRepository>) -> std::io::Result<()> {
    let bus = EventBus::default();
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();

    // Keys and resizes: crossterm's blocking reader on its own thread.
    let keys = tx.clone();
    std::thread::spawn(move || {
        loop {
            let msg = match term::read() {
                Ok(TermEvent::Key(k)) => Msg::Key(k),
                Ok(TermEvent::Resize(w, h)) => Msg::Resize(w, h),
                Ok(_) => continue,
                Err(_) => break,
            };
            if keys.send(msg).is_err() {
                break;
            }
        }
    });

    // Harmony events.
    let mut events = bus.subscribe();
    let ev_tx = tx.clone();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(e) => {
                    if ev_tx.send(Msg::Event(e)).is_err() {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Missed events: a reload brings the table up to date.
                    if ev_tx.send(Msg::Tick).is_err() {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });

    // Periodic reload.
    let tick_tx = tx.clone();
    let period = Duration::from_millis(args.tick_ms.max(100));
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(period);
        interval.tick().await;
        loop {
            interval.tick().await;
            if tick_tx.send(Msg::Tick).is_err() {
                break;
            }
        }
    });

    let mut app = App::new(store.clone(), bus.clone());
    app.log_line(format!(
        "opened inventory ({} hosts)",
        store.hosts().map_or(0, |h| h.len())
    ));
    if let Some(log) = &args.log {
        app.log_line(format!("warnings and errors go to {}", log.display()));
    }
    if let Some(cidr) = &args.scan
        && let Err(e) = start_discovery(cidr, args.port, store.clone(), bus.clone())
    {
        app.log_line(format!("discovery: {e}"));
    }

    let mut terminal = ratatui::try_init()?;
    let size = terminal.size()?;
    app.update(Msg::Resize(size.width, size.height));
    let mut pending = app.reload_blocking();
    let result = loop {
        match pending.take() {
            Some(Action::Quit) => break Ok(()),
            Some(Action::Reload) => {
                let repo = store.clone();
                let back = tx.clone();
                tokio::task::spawn_blocking(move || {
                    let hosts = repo.hosts().map_err(|e| e.to_string());
                    let _ = back.send(Msg::HostsReloaded(hosts));
                });
            }
            None => {}
        }
        if let Err(e) = terminal.draw(|f| ui::draw(&app, f)) {
            break Err(e);
        }
        let Some(msg) = rx.recv().await else {
            break Ok(());
        };
        pending = app.update(msg);
        // Drain what queued up meanwhile, then draw once.
        while pending.is_none() {
            match rx.try_recv() {
                Ok(msg) => pending = app.update(msg),
                Err(_) => break,
            }
        }
    };
    ratatui::restore();
    result
}
