//! `harmony-inventory-agent`: serves this host's hardware inventory as JSON
//! on `GET /` (read-only), or prints it once with `--once`.
//!
//! Built static for `x86_64-unknown-linux-musl` (`cargo agent`) so that it
//! runs in any RAM-only live environment without libc or other files.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use harmony_inventory_agent::collect::Collector;
use harmony_inventory_agent::model::DEFAULT_PORT;
use harmony_inventory_agent::server::{self, ConnectionLimits, InventoryCache, ServeConfig};

/// Serve this host's hardware inventory as JSON (read-only).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address and port to listen on.
    #[arg(long, default_value_t = SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)))]
    listen: SocketAddr,
    /// Print the inventory JSON to stdout and exit.
    #[arg(long)]
    once: bool,
    /// Read /proc, /sys, the SMBIOS table, /run/udev and /dev/disk under this directory.
    #[arg(long, default_value = "/")]
    root: PathBuf,
    /// Seconds between background refreshes of the inventory (at least 1).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    refresh: u64,
    /// Seconds to listen for LLDP frames on each NIC (0 disables).
    /// Default: 30 when serving, 0 with --once.
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=600))]
    lldp_window: Option<u64>,
    /// Seconds a connection has to send its request headers (also the
    /// keep-alive idle limit).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    header_timeout: u64,
    /// Connections held at once; at the cap the oldest idle one is dropped.
    /// Lowered to fit the file limit.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    max_connections: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    raise_file_limit();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("harmony-inventory-agent: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let collector = Collector::new(&args.root);
    let result = if args.once {
        runtime.block_on(once(collector, args.lldp_window.unwrap_or(0)))
    } else {
        let config = ServeConfig {
            listen: args.listen,
            refresh: Duration::from_secs(args.refresh),
            lldp_window: Duration::from_secs(args.lldp_window.unwrap_or(30)),
        };
        let limits = ConnectionLimits {
            header_read_timeout: Duration::from_secs(args.header_timeout),
            max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
            ..ConnectionLimits::default()
        };
        runtime
            .block_on(server::serve_with_limits(
                collector,
                config,
                limits,
                shutdown_signal(),
            ))
            .map_err(|e| e.to_string())
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("harmony-inventory-agent: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit: every held connection
/// costs a descriptor, and the connection cap is fitted to the soft limit.
fn raise_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(nofile = n, "file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the file limit"),
    }
}

/// Collects once (waiting up to `lldp_secs` for LLDP) and prints the JSON.
async fn once(collector: Collector, lldp_secs: u64) -> Result<(), String> {
    let cache =
        std::sync::Arc::new(InventoryCache::new(collector.collect()).map_err(|e| e.to_string())?);
    if lldp_secs > 0 {
        let window = Duration::from_secs(lldp_secs);
        for listener in server::spawn_lldp_listeners(&cache, window) {
            // Each listener ends by itself within the window.
            let _ = listener.await;
        }
    }
    let inv = cache.current().map_err(|e| e.to_string())?;
    let json = serde_json::to_string_pretty(&inv).map_err(|e| e.to_string())?;
    println!("{json}");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down");
}
