//! The discovery step of `OKDSetup01Inventory`: scans the provisioning
//! network until the expected number of hosts is known, or a timeout,
//! announcing each round's count (found vs expected) as `Event::Progress`.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Instant;

use async_trait::async_trait;

use super::{DISCOVERY_PROGRESS, NAME, OKDSetup01Inventory};
use crate::domain::{
    Event, InterpretError, Inventory, Prepared, Step, StepContext, StepError, StepKey, Topology,
    UndoData,
};
use crate::modules::discovery::{Discovery, ScanConfig};

/// The one step: scan until the expected hosts are known. What it adds to
/// the Inventory are observations, not site changes: its undo is empty.
#[derive(Debug, Clone)]
pub(super) struct DiscoverHosts(pub(super) OKDSetup01Inventory);

#[async_trait]
impl<T: Topology> Step<T> for DiscoverHosts {
    fn key(&self) -> StepKey {
        StepKey(format!(
            "discover {} hosts on {}",
            self.0.expected_hosts, self.0.network
        ))
    }

    async fn prepare(&self, ctx: StepContext<'_, T>) -> Result<Prepared, StepError> {
        let known = self
            .0
            .known_hosts(ctx.inventory)
            .await
            .map_err(|e| StepError::new(e.to_string()))?;
        if known >= self.0.expected_hosts {
            return Ok(Prepared::InPlace(format!("{known} hosts already known")));
        }
        Ok(Prepared::Change {
            description: format!(
                "scan {} port {} until {} hosts are known ({known} now)",
                self.0.network, self.0.port, self.0.expected_hosts
            ),
            undo: UndoData::none(),
        })
    }

    async fn apply(&self, ctx: StepContext<'_, T>) -> Result<Option<String>, StepError> {
        match self.0.discover(ctx.inventory, ctx.topology).await {
            Ok(changes) if changes.is_empty() => Ok(None),
            Ok(changes) => Ok(Some(changes.join("; "))),
            Err(e) => Err(StepError::new(e.message).with_state_left(e.state_left)),
        }
    }

    async fn undo(&self, _: StepContext<'_, T>, _: &UndoData) -> Result<(), StepError> {
        Ok(())
    }
}

impl OKDSetup01Inventory {
    /// Scans every `interval` until the expected hosts are known, or the
    /// timeout (leased addresses first when the site has a DHCP server).
    /// Returns what the scans changed in the Inventory.
    async fn discover<T: Topology>(
        &self,
        inventory: &Inventory,
        topology: &T,
    ) -> Result<Vec<String>, InterpretError> {
        let discovery = Discovery::new(
            ScanConfig::new(self.port),
            inventory.repository().clone(),
            inventory.events().clone(),
        );
        let start = Instant::now();
        let mut changes = Vec::new();
        for round in 0u64.. {
            let leased = self.leased(topology).await;
            let mut known = None;
            if let Some(leased) = leased.clone().filter(|l| !l.is_empty()) {
                self.scan(&discovery, Some(leased), &mut changes).await?;
                known = Some(self.known_hosts(inventory).await?);
            }
            let sweep = leased.is_none() || round % u64::from(self.full_sweep_every.max(1)) == 0;
            if sweep && known.is_none_or(|k| k < self.expected_hosts) {
                self.scan(&discovery, None, &mut changes).await?;
                known = None;
            }
            let known = match known {
                Some(k) => k,
                None => self.known_hosts(inventory).await?,
            };
            inventory.publish(Event::Progress {
                task: DISCOVERY_PROGRESS.into(),
                done: known as u64,
                total: self.expected_hosts as u64,
            });
            tracing::info!(
                known,
                expected = self.expected_hosts,
                "discovery round {round}"
            );
            if known >= self.expected_hosts {
                return Ok(changes);
            }
            let elapsed = start.elapsed();
            if elapsed + self.interval > self.timeout {
                return Err(InterpretError::new(
                    NAME,
                    format!("discover {} hosts on {}", self.expected_hosts, self.network),
                    format!(
                        "only {known} of {} hosts found after {:?}",
                        self.expected_hosts, elapsed
                    ),
                )
                .with_state_left(format!("{known} hosts stored in the inventory")));
            }
            tokio::time::sleep(self.interval).await;
        }
        Ok(changes)
    }

    /// The leased addresses of the network, when the site has a DHCP
    /// server that answers; `None` otherwise (a failure is logged: the
    /// round then sweeps the whole network).
    async fn leased<T: Topology>(&self, topology: &T) -> Option<BTreeSet<IpAddr>> {
        let dhcp = topology.dhcp()?;
        match dhcp.leases().await {
            Ok(leases) => Some(
                leases
                    .into_iter()
                    .map(|l| l.ip)
                    .filter(|ip| self.network.contains(*ip))
                    .collect(),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the DHCP leases: sweeping the whole network");
                None
            }
        }
    }

    /// One scan (of the leased addresses, or the whole network), its
    /// outcome added to `changes`; store failures end the discovery.
    async fn scan(
        &self,
        discovery: &Discovery,
        only: Option<BTreeSet<IpAddr>>,
        changes: &mut Vec<String>,
    ) -> Result<(), InterpretError> {
        let (report, counts) = discovery
            .scan_among(self.network, only)
            .await
            .map_err(|e| {
                InterpretError::new(NAME, format!("scan {}", self.network), e.to_string())
            })?;
        if counts.errors > 0 {
            return Err(InterpretError::new(
                NAME,
                format!("store hosts found on {}", self.network),
                format!(
                    "{} of {} found hosts could not be stored: {}",
                    counts.errors,
                    report.found.len(),
                    counts
                        .first_error
                        .as_deref()
                        .unwrap_or("unknown store error")
                ),
            )
            .with_state_left(format!(
                "{} new and {} updated hosts stored",
                counts.new, counts.updated
            )));
        }
        if counts.mac_conflicts > 0 {
            changes.push(format!(
                "{} MAC conflict(s) reported, nothing overwritten",
                counts.mac_conflicts
            ));
        }
        if counts.identity_conflicts > 0 {
            changes.push(format!(
                "{} identity conflict(s) reported, nothing overwritten",
                counts.identity_conflicts
            ));
        }
        if counts.new > 0 {
            changes.push(format!("{} new host(s) on {}", counts.new, self.network));
        }
        tracing::info!(
            addresses = report.addresses,
            found = report.found.len(),
            "discovery scan"
        );
        Ok(())
    }

    /// Hosts in the inventory whose last address is on this network.
    async fn known_hosts(&self, inventory: &Inventory) -> Result<usize, InterpretError> {
        let repo = inventory.repository().clone();
        let network = self.network;
        tokio::task::spawn_blocking(move || repo.addresses())
            .await
            .map_err(|e| InterpretError::new(NAME, "read inventory", e.to_string()))?
            .map(|ips| ips.into_iter().filter(|ip| network.contains(*ip)).count())
            .map_err(|e| InterpretError::new(NAME, "read inventory", e.to_string()).with_source(e))
    }
}
