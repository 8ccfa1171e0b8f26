//! Discovery in the TUI: `--scan CIDR --port P` scans the range every few
//! seconds in the background, storing what answers; the TUI reloads and
//! logs on the events the scan publishes.

use std::sync::Arc;
use std::time::Duration;

use harmony::domain::{EventBus, InventoryRepository};
use harmony::modules::discovery::{Discovery, ScanConfig};
use ipnetwork::IpNetwork;

/// Pause between two scans.
pub const SCAN_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("invalid --scan range {cidr:?}: {reason}")]
    BadRange { cidr: String, reason: String },
}

/// Starts scanning `cidr` for agents on `port` on the current tokio runtime,
/// upserting into `store` and publishing `HostDiscovered` / `HostUpdated` /
/// `PeerRejected` / `ScanCompleted` / `ScanFailed` on `bus`. Runs until the
/// runtime shuts down.
pub fn start_discovery(
    cidr: &str,
    port: u16,
    store: Arc<dyn InventoryRepository>,
    bus: EventBus,
) -> Result<tokio::task::JoinHandle<()>, DiscoveryError> {
    let range: IpNetwork =
        cidr.parse()
            .map_err(|e: ipnetwork::IpNetworkError| DiscoveryError::BadRange {
                cidr: cidr.to_string(),
                reason: e.to_string(),
            })?;
    let discovery = Discovery::new(ScanConfig::new(port), store, bus);
    Ok(tokio::spawn(async move {
        // Errors are published as ScanFailed by the scan itself.
        let never = std::future::pending::<()>();
        let _ = discovery.run_continuous(range, SCAN_INTERVAL, never).await;
    }))
}
