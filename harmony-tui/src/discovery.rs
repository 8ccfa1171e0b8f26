//! The seam where the discovery module (subnet scan + agent client) plugs
//! into the TUI. Not wired yet: see [`start_discovery`].

use std::sync::Arc;

use harmony::domain::{EventBus, InventoryRepository};

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("discovery not wired yet (asked to scan {cidr} on port {port})")]
    NotWired { cidr: String, port: u16 },
}

/// INTEGRATION POINT: start scanning `cidr` for agents on `port`, upserting
/// what answers into `store` and publishing `HostDiscovered` / `HostUpdated`
/// / `PeerRejected` on `bus` (the TUI reloads and logs on those events).
///
/// The integrator replaces this body with a call into
/// `harmony::modules::discovery` (spawned on the current tokio runtime).
/// For now it only reports that it is not wired; the TUI shows the error
/// in its event log.
pub fn start_discovery(
    cidr: &str,
    port: u16,
    store: Arc<dyn InventoryRepository>,
    bus: EventBus,
) -> Result<(), DiscoveryError> {
    let _ = (store, bus);
    Err(DiscoveryError::NotWired {
        cidr: cidr.to_string(),
        port,
    })
}
