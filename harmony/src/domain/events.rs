//! Typed events on a broadcast channel. The library never prints: the CLI
//! draws progress from these and the TUI its views.

use std::net::IpAddr;

use tokio::sync::broadcast;

use super::outcome::Outcome;
use super::values::{HostId, InstallPhase, MacAddress};

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    ScoreStarted {
        score: String,
    },
    ScoreFinished {
        score: String,
        result: Result<Outcome, String>,
    },
    HostDiscovered {
        host: HostId,
        ip: IpAddr,
    },
    HostUpdated {
        host: HostId,
        ip: IpAddr,
        ip_changed: bool,
    },
    HostLost {
        host: HostId,
    },
    /// A peer claimed a MAC another host owns; nothing was stored.
    HostConflict {
        ip: IpAddr,
        mac: MacAddress,
        existing: HostId,
    },
    /// An address answered but was rejected (bad JSON, invalid values...).
    PeerRejected {
        ip: IpAddr,
        reason: String,
    },
    HostPhaseChanged {
        host: HostId,
        from: InstallPhase,
        to: InstallPhase,
    },
    Progress {
        task: String,
        done: u64,
        total: u64,
    },
    /// A saga's step `done` of `total` ended: `changed` (what it did) or in
    /// place (why nothing was to do, or its key).
    StepDone {
        task: String,
        done: u64,
        total: u64,
        changed: bool,
        step: String,
    },
    /// One scan of a range ended.
    ScanCompleted {
        range: String,
        found: u64,
        /// Peers refused: answers not accepted, and found hosts the store
        /// refused (MAC or identity conflicts).
        rejected: u64,
        /// Found hosts that could not be stored (a store failure).
        store_errors: u64,
        /// Probe attempts that failed for a local reason (file limit, no
        /// buffer, no route) and were retried.
        local_errors: u64,
        /// Addresses given up on after repeated local errors.
        given_up: u64,
        /// Addresses that answered the ARP sweep of the on-link part of the
        /// range (only they were probed there); `None` without a sweep.
        arp_responders: Option<u64>,
        /// Addresses that answered the SYN sweep of the loopback or routed
        /// part of the range (only they were probed there); `None` without
        /// a sweep.
        syn_responders: Option<u64>,
        elapsed_ms: u64,
    },
    /// A scan could not run (bad range, local failure).
    ScanFailed {
        range: String,
        reason: String,
    },
}

/// A cloneable publisher; subscribers each get every event sent after they
/// subscribed (a slow subscriber loses the oldest, never blocks publishers).
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
}

impl EventBus {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        Self { tx }
    }

    pub fn publish(&self, event: Event) {
        tracing::debug!(?event, "event");
        // No subscriber is not an error.
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(4096)
    }
}
