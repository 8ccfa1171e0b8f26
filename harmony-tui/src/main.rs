//! `harmony-tui`: a terminal view over Harmony's inventory store and events:
//! the discovered, unassigned nodes, their hardware, role assignment and each
//! host's install phase. This file only wires the channel and routes
//! messages; the state lives in `harmony_tui::app`.
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
    match runtime.block_on(run(args, store)) {
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
