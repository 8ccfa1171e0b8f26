//! Discovery: finds the hosts running `harmony-inventory-agent` on the
//! provisioning network, validates what they report and records them in the
//! Inventory.
//!
//! - [`validate`]: untrusted JSON to a [`DiscoveredHost`], or a [`Rejection`].
//! - [`scanner`]: bounded, time-capped, size-capped TCP/HTTP scan of a range.
//! - [`Discovery`]: scanner + [`InventoryRepository`] + [`EventBus`].

pub mod budget;
pub mod neighbours;
pub mod one_address;
pub mod scanner;
pub mod validate;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use ipnetwork::IpNetwork;

pub use scanner::{
    LocalErrors, NotListening, ProbeResult, ScanConfig, ScanError, ScanReport, Scanner,
};
pub use validate::{Rejection, validate};

use crate::domain::events::{Event, EventBus};
use crate::domain::inventory::{DiscoveredHost, InventoryRepository, UpsertResult, Upserted};
use crate::domain::values::HostId;
use one_address::{HostKey, OneAddressPerHost, Sighting};

/// Scans and records.
/// Found hosts written in one transaction at most.
const STORE_BATCH: usize = 256;

#[derive(Debug, Clone)]
pub struct Discovery {
    scanner: Scanner,
    repo: Arc<dyn InventoryRepository>,
    events: EventBus,
    /// Hosts that answered the previous scan, per range: a host that stops
    /// answering is announced once as `HostLost`.
    answered: Arc<Mutex<HashMap<IpNetwork, HashSet<HostId>>>>,
    /// The address each host was stored with at its last sighting: a host
    /// answering on several NICs keeps it ([`one_address`]).
    addresses: Arc<Mutex<HashMap<HostKey, IpAddr>>>,
}

/// What storing the hosts of one scan did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreCounts {
    pub new: u64,
    pub updated: u64,
    /// Hosts refused because another stored host owns one of their MACs.
    pub mac_conflicts: u64,
    /// Hosts refused because they claim a stored host's identity in a way
    /// that could only overwrite it (an assigned host moved or re-MACed, no
    /// MAC to tell it apart from a host with the same firmware id).
    pub identity_conflicts: u64,
    /// Hosts stored under another id than their firmware id because
    /// another host, with other MACs, reported that id too.
    pub duplicate_firmware_ids: u64,
    /// Repository errors (logged and counted; the scan goes on).
    pub errors: u64,
    /// The first repository error, whole (the store names the database
    /// path, the operation and SQLite's cause).
    pub first_error: Option<String>,
    /// Hosts that answered the previous scan of this range and not this one.
    pub lost: u64,
}

impl StoreCounts {
    /// Hosts found but refused by the store (every kind of conflict).
    pub fn refused(&self) -> u64 {
        self.mac_conflicts + self.identity_conflicts
    }
}

impl Discovery {
    pub fn new(config: ScanConfig, repo: Arc<dyn InventoryRepository>, events: EventBus) -> Self {
        Self {
            scanner: Scanner::new(config).with_events(events.clone()),
            repo,
            events,
            answered: Arc::default(),
            addresses: Arc::default(),
        }
    }

    pub fn scanner(&self) -> &Scanner {
        &self.scanner
    }

    /// One scan of `range`: stores every found host, publishes
    /// `HostDiscovered`/`HostUpdated`/`HostConflict`/`PeerRejected`, then
    /// `ScanCompleted` counting every refusal (the scanner's rejections and
    /// the store's conflicts), store errors, local errors and addresses
    /// given up on.
    pub async fn scan_once(
        &self,
        range: IpNetwork,
    ) -> Result<(ScanReport, StoreCounts), ScanError> {
        self.scan_among(range, None).await
    }

    /// [`Discovery::scan_once`] over only the addresses of `range` in
    /// `only` (e.g. the DHCP server's leases) when given. `HostLost` is
    /// announced only after a whole-range scan.
    pub async fn scan_among(
        &self,
        range: IpNetwork,
        only: Option<BTreeSet<IpAddr>>,
    ) -> Result<(ScanReport, StoreCounts), ScanError> {
        let whole = only.is_none();
        // Found hosts are stored in batches while the scan goes on: each
        // batch is what arrived while the previous one was being written.
        // One address per host (the one it had, if it answered there).
        let (sink, mut found) = tokio::sync::mpsc::unbounded_channel::<DiscoveredHost>();
        let this = self.clone();
        let mut one = OneAddressPerHost::new(
            self.addresses
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        );
        let store_task = tokio::spawn(async move {
            let mut stored = Vec::new();
            while let Some(first) = found.recv().await {
                let mut batch: Vec<DiscoveredHost> = one.admit(first).into_iter().collect();
                while batch.len() < STORE_BATCH {
                    match found.try_recv() {
                        Ok(h) => batch.extend(one.admit(h)),
                        Err(_) => break,
                    }
                }
                stored.extend(this.store(batch).await);
            }
            stored.extend(this.store(one.rest()).await);
            stored
        });
        let scanned = self.scanner.scan_into(range, only, sink).await;
        // The sink is gone with the scan: the task ends after its last batch.
        let mut stored = match store_task.await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "store task failed");
                Vec::new()
            }
        };
        let mut report = match scanned {
            Ok(r) => r,
            Err(e) => {
                self.events.publish(Event::ScanFailed {
                    range: range.to_string(),
                    reason: e.to_string(),
                });
                return Err(e);
            }
        };
        if report.local_errors > 0 || !report.given_up.is_empty() {
            let l = &report.local;
            tracing::warn!(
                range = %range,
                file_limit = l.file_limit,
                no_route = l.no_route,
                no_buffers = l.no_buffers,
                no_ports = l.no_ports,
                given_up = report.given_up.len(),
                "local errors during the scan (retried); addresses given up are not known to be absent"
            );
        }
        let mut counts = StoreCounts::default();
        for (ip, reason) in &report.rejected {
            self.events.publish(Event::PeerRejected {
                ip: *ip,
                reason: reason.to_string(),
            });
        }
        // Hosts the sink did not take (none, unless the store task died)
        // are stored now.
        let late = std::mem::take(&mut report.found);
        stored.extend(self.store(late).await);
        stored.sort_by_key(|(h, _)| h.ip);
        {
            let mut addresses = self
                .addresses
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for (h, r) in &stored {
                if let Ok(u) = r
                    && matches!(u.result, UpsertResult::New | UpsertResult::Updated { .. })
                {
                    addresses.insert(h.key(), h.ip);
                }
            }
        }
        let mut stored_ids = Vec::with_capacity(stored.len());
        for (host, result) in &stored {
            let result = result.clone();
            let id = match &result {
                Ok(u) => u.id.clone(),
                Err(_) => host.id.clone(),
            };
            if id != host.id
                && matches!(&result, Ok(u) if matches!(u.result, UpsertResult::New | UpsertResult::Updated { .. }))
            {
                counts.duplicate_firmware_ids += 1;
            }
            stored_ids.push(id.clone());
            match result.map(|u| u.result) {
                Ok(UpsertResult::New) => {
                    counts.new += 1;
                    self.events.publish(Event::HostDiscovered {
                        host: id,
                        ip: host.ip,
                    });
                }
                Ok(UpsertResult::Updated { ip_changed }) => {
                    counts.updated += 1;
                    self.events.publish(Event::HostUpdated {
                        host: id,
                        ip: host.ip,
                        ip_changed,
                    });
                }
                Ok(UpsertResult::IdentityConflict { reason, .. }) => {
                    counts.identity_conflicts += 1;
                    self.events.publish(Event::PeerRejected {
                        ip: host.ip,
                        reason,
                    });
                }
                Ok(UpsertResult::Conflict { mac, existing }) => {
                    counts.mac_conflicts += 1;
                    self.events.publish(Event::HostConflict {
                        ip: host.ip,
                        mac,
                        existing,
                    });
                }
                Err(e) => {
                    counts.errors += 1;
                    tracing::error!(ip = %host.ip, host = %host.id, error = %e, "cannot store discovered host");
                    if counts.first_error.is_none() {
                        counts.first_error = Some(e);
                    }
                }
            }
        }
        report.found = stored.into_iter().map(|(h, _)| h).collect();
        if whole {
            counts.lost = self.announce_lost(range, stored_ids);
        }
        self.events.publish(Event::ScanCompleted {
            range: range.to_string(),
            found: report.found.len() as u64,
            rejected: report.rejected.len() as u64 + counts.refused(),
            store_errors: counts.errors,
            // Counted by the scanner (retried local failures: file limit,
            // no buffer, no route...) and the addresses it gave up on.
            local_errors: report.local_errors,
            given_up: report.given_up.len() as u64,
            arp_responders: report.arp_responders,
            syn_responders: report.syn_responders,
            elapsed_ms: u64::try_from(report.elapsed.as_millis()).unwrap_or(u64::MAX),
        });
        Ok((report, counts))
    }

    /// Publishes `HostLost` for hosts that answered the previous scan of
    /// `range` and not this one; returns how many.
    fn announce_lost(&self, range: IpNetwork, found: Vec<HostId>) -> u64 {
        let now: HashSet<HostId> = found.into_iter().collect();
        let before = {
            let mut answered = self.answered.lock().unwrap_or_else(PoisonError::into_inner);
            answered.insert(range, now.clone()).unwrap_or_default()
        };
        let mut lost: Vec<HostId> = before.difference(&now).cloned().collect();
        lost.sort();
        for host in &lost {
            self.events.publish(Event::HostLost { host: host.clone() });
        }
        lost.len() as u64
    }

    /// Stores the hosts of one scan in one transaction; if the batch fails
    /// (one bad host aborts it), stores them one by one so that the others
    /// are kept and the failure is attributed to its host.
    /// Stores `hosts` in one transaction (one by one if that fails, so one
    /// bad host does not lose the others); each host with its result.
    async fn store(
        &self,
        hosts: Vec<DiscoveredHost>,
    ) -> Vec<(DiscoveredHost, Result<Upserted, String>)> {
        if hosts.is_empty() {
            return Vec::new();
        }
        let repo = self.repo.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let joined = tokio::task::spawn_blocking(move || {
            let now = SystemTime::now();
            let n = hosts.len();
            // A panic in the store must not take the hosts with it: each
            // is then reported as not stored.
            let results: Vec<Result<Upserted, String>> =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    match repo.upsert_scan(&hosts, now) {
                        Ok(results) => results.into_iter().map(Ok).collect(),
                        Err(_) => hosts
                            .iter()
                            .map(|h| {
                                repo.upsert_scan(std::slice::from_ref(h), now)
                                    .map_err(|e| e.to_string())
                                    .and_then(|mut v| {
                                        v.pop().ok_or_else(|| "no result".to_string())
                                    })
                            })
                            .collect(),
                    }
                }))
                .unwrap_or_else(|_| vec![Err("the store panicked".to_string()); n]);
            let _ = tx.send(hosts.into_iter().zip(results).collect());
        })
        .await;
        match (joined, rx.await) {
            (Ok(()), Ok(stored)) => stored,
            (Err(e), _) => {
                tracing::error!(error = %e, "store task failed: hosts of this batch not stored");
                Vec::new()
            }
            (Ok(()), Err(e)) => {
                tracing::error!(error = %e, "store task ended without an answer");
                Vec::new()
            }
        }
    }

    /// Scans `range` every `interval` until `stop` resolves; returns the
    /// number of completed scans. A scan in progress when `stop` resolves
    /// is abandoned.
    pub async fn run_continuous(
        &self,
        range: IpNetwork,
        interval: Duration,
        stop: impl Future<Output = ()>,
    ) -> Result<u64, ScanError> {
        tokio::pin!(stop);
        let mut scans = 0u64;
        let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(10)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut stop => return Ok(scans),
                _ = ticker.tick() => {}
            }
            tokio::select! {
                () = &mut stop => return Ok(scans),
                r = self.scan_once(range) => {
                    r?;
                    scans += 1;
                }
            }
        }
    }
}
