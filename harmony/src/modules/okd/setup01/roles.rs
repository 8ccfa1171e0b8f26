//! The site file's pinned roles (`hosts.pinned[]`), assigned in the
//! Inventory once discovery found the hosts: one step per pinned MAC. A host
//! already holding another role (or another host name) is refused, naming
//! the host and both values, never overwritten; hosts not pinned keep what
//! the operator gave them (TUI, `harmony inventory assign`).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::NAME;
use crate::domain::{
    HostRecord, Hostname, InterpretError, Inventory, MacAddress, Prepared, Role, Step, StepContext,
    StepError, StepKey, Topology, UndoData,
};

/// One `hosts.pinned[]` entry: the host with this MAC gets this role (and
/// this host name, when given; `None` keeps the one it has).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedRole {
    pub mac: MacAddress,
    pub role: Role,
    #[serde(default)]
    pub hostname: Option<Hostname>,
}

impl From<(MacAddress, Role)> for PinnedRole {
    fn from((mac, role): (MacAddress, Role)) -> Self {
        Self {
            mac,
            role,
            hostname: None,
        }
    }
}

impl From<(MacAddress, Role, Hostname)> for PinnedRole {
    fn from((mac, role, hostname): (MacAddress, Role, Hostname)) -> Self {
        Self {
            mac,
            role,
            hostname: Some(hostname),
        }
    }
}

/// A step per pinned host; a MAC pinned twice is refused.
pub(super) async fn role_steps<T: Topology>(
    pinned: &[PinnedRole],
    _: &Inventory,
) -> Result<Vec<Box<dyn Step<T>>>, InterpretError> {
    let mut steps: Vec<Box<dyn Step<T>>> = Vec::with_capacity(pinned.len());
    for (i, p) in pinned.iter().enumerate() {
        if let Some(first) = pinned[..i].iter().position(|o| o.mac == p.mac) {
            return Err(InterpretError::new(
                NAME,
                "plan the pinned roles",
                format!(
                    "hosts.pinned[{i}].mac = {}: already pinned at hosts.pinned[{first}]",
                    p.mac
                ),
            ));
        }
        steps.push(Box::new(AssignRole(p.clone())));
    }
    Ok(steps)
}

/// What the host held before the step: its undo data. `None` when the host
/// was not discovered yet at planning time (a dry run before discovery):
/// undoing then clears the role and keeps the host name.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Before(Option<(Option<Role>, Option<Hostname>)>);

#[derive(Debug, Clone)]
struct AssignRole(PinnedRole);

impl AssignRole {
    /// The host with the pinned MAC, if discovered.
    async fn host(&self, inventory: &Inventory) -> Result<Option<HostRecord>, StepError> {
        let repo = inventory.repository().clone();
        let hosts = tokio::task::spawn_blocking(move || repo.hosts())
            .await
            .map_err(|e| StepError::new(format!("read the inventory: {e}")))?
            .map_err(|e| StepError::new(format!("read the inventory: {e}")))?;
        Ok(hosts.into_iter().find(|h| h.macs.contains(&self.0.mac)))
    }

    /// `Ok(true)`: already as pinned; an error when the host holds another
    /// role or host name.
    fn check(&self, host: &HostRecord) -> Result<bool, StepError> {
        let p = &self.0;
        if let Some(held) = host.role
            && held != p.role
        {
            return Err(StepError::new(format!(
                "host {} (MAC {}, {}) holds the role {held}, but the site file pins it as {}: \
                 not overwritten (clear its role first to change it)",
                host.id, p.mac, host.ip, p.role
            )));
        }
        if let (Some(held), Some(pinned)) = (&host.hostname, &p.hostname)
            && held != pinned
        {
            return Err(StepError::new(format!(
                "host {} (MAC {}, {}) is named {held}, but the site file pins it as {pinned}: \
                 not overwritten (clear its role first to change it)",
                host.id, p.mac, host.ip
            )));
        }
        Ok(host.role == Some(p.role) && (p.hostname.is_none() || host.hostname == p.hostname))
    }

    fn what(&self) -> String {
        match &self.0.hostname {
            Some(h) => format!("role {} (host name {h})", self.0.role),
            None => format!("role {}", self.0.role),
        }
    }
}

async fn assign(
    inventory: &Inventory,
    host: &HostRecord,
    role: Option<Role>,
    hostname: Option<Hostname>,
) -> Result<(), StepError> {
    let inventory = inventory.clone();
    let id = host.id.clone();
    tokio::task::spawn_blocking(move || inventory.assign(&id, role, hostname))
        .await
        .map_err(|e| StepError::new(format!("assign task: {e}")))?
        .map_err(|e| StepError::new(format!("host {}: {e}", host.id)))?;
    Ok(())
}

#[async_trait]
impl<T: Topology> Step<T> for AssignRole {
    fn key(&self) -> StepKey {
        StepKey(format!("pinned role of {}", self.0.mac))
    }

    async fn prepare(&self, ctx: StepContext<'_, T>) -> Result<Prepared, StepError> {
        let Some(host) = self.host(ctx.inventory).await? else {
            return Ok(Prepared::Change {
                description: format!(
                    "give the host with MAC {} the {} once discovered",
                    self.0.mac,
                    self.what()
                ),
                undo: UndoData::of(&Before(None))?,
            });
        };
        if self.check(&host)? {
            return Ok(Prepared::InPlace(format!(
                "host {} (MAC {}) already has the {}",
                host.id,
                self.0.mac,
                self.what()
            )));
        }
        Ok(Prepared::Change {
            description: format!(
                "give host {} (MAC {}, {}) the {}",
                host.id,
                self.0.mac,
                host.ip,
                self.what()
            ),
            undo: UndoData::of(&Before(Some((host.role, host.hostname.clone()))))?,
        })
    }

    async fn apply(&self, ctx: StepContext<'_, T>) -> Result<Option<String>, StepError> {
        let Some(host) = self.host(ctx.inventory).await? else {
            return Err(StepError::new(format!(
                "no discovered host has the pinned MAC {} (hosts.pinned, {}): \
                 is it cabled and booting into discovery?",
                self.0.mac,
                self.what()
            )));
        };
        // Read again: the operator may have assigned it since the plan.
        if self.check(&host)? {
            return Ok(None);
        }
        let hostname = self.0.hostname.clone().or_else(|| host.hostname.clone());
        assign(ctx.inventory, &host, Some(self.0.role), hostname).await?;
        Ok(Some(format!(
            "host {} (MAC {}, {}): {}",
            host.id,
            self.0.mac,
            host.ip,
            self.what()
        )))
    }

    async fn undo(&self, ctx: StepContext<'_, T>, undo: &UndoData) -> Result<(), StepError> {
        let Before(before) = undo.decode()?;
        let Some(host) = self.host(ctx.inventory).await? else {
            return Ok(());
        };
        if host.role != Some(self.0.role) {
            // Not what this step set (never set, or changed since): left alone.
            return Ok(());
        }
        let (role, hostname) = before.unwrap_or((None, host.hostname.clone()));
        if host.role == role && host.hostname == hostname {
            return Ok(());
        }
        assign(ctx.inventory, &host, role, hostname).await
    }
}
