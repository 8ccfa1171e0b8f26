//! `SwitchAutomationScore`: the PXE/LACP rule applied to each host's switch
//! ports (`DESIGN.md`). Per host, one step toward the host's goal:
//!
//! - [`PortGoal::Pxe`]: its ports are plain access ports in the
//!   provisioning VLAN, for discovery and every PXE boot;
//! - [`PortGoal::Lacp`]: its ports become one LACP LAG, only once the
//!   installed OS has its 802.3ad bond up (read over SSH from
//!   `/proc/net/bonding/<bond>`), and the change is verified from both
//!   ends: every member's LACP partner collecting and distributing with the
//!   host bond's system id, and the bond aggregating every slave with that
//!   partner. A switch that reports no LACP partner
//!   ([`crate::domain::SwitchCapabilities::reports_lacp_partner`] false,
//!   e.g. OPNsense LAGG) is verified from the host's end only: its
//!   configuration read back, then the bond aggregating every slave with
//!   one partner collecting and distributing (the plan line says so);
//! - [`PortGoal::AccessBeforePxeReboot`]: back to access before a reboot
//!   that must PXE (a reinstall, the bootstrap's wipe).
//!
//! Each step reads the ports first: a switch already right is a Noop (and
//! the plan `--dry-run` prints lists nothing for it); its undo data is the
//! ports' status as read, and a failed run puts them back (an access port
//! back in its VLAN, a LAG member back in its LAG without partner wait; a
//! port Harmony does not manage, detached or "other", cannot be recreated
//! and the undo says so).
//!
//! Ports come from [`crate::domain::port_map`] ([`HostSwitchPlan::from_map`]):
//! a host whose cabling is in question gets no plan.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::domain::bond_status::{BondStatus, parse_bond_status};
use crate::domain::port_map::{ConfiguredPort, PortMap, PortMapError, SwitchIdentity};
use crate::domain::text::safe_text;
use crate::domain::{
    FoundState, InterfaceName, Interpret, InterpretError, Inventory, LacpOptions, LagId,
    MacAddress, PortList, PortMode, PortStatus, Prepared, RemoteCommand, RemoteHost, RemoteShell,
    RunLimits, SagaInterpret, SagaScore, Score, Step, StepContext, StepError, StepKey, Switch,
    SwitchPort, Topology, UndoData, ValueError, VlanId, WantedState,
};
use crate::site::model::{PortRef, Switch as SiteSwitch};

const NAME: &str = "SwitchAutomationScore";

/// What a host's ports should be now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortGoal {
    /// Access ports in the provisioning VLAN: discovery, every PXE boot.
    Pxe,
    /// One LACP LAG, once the installed OS has `bond` up over `slaves`
    /// (none named: whatever slaves the bond has).
    Lacp {
        lag: LagId,
        bond: InterfaceName,
        slaves: Vec<InterfaceName>,
    },
    /// Back to access before a reboot that must PXE.
    AccessBeforePxeReboot,
}

/// One host: how to reach it, its ports on this switch, and its goal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSwitchPlan {
    pub host: RemoteHost,
    pub ports: Vec<SwitchPort>,
    pub goal: PortGoal,
}

impl HostSwitchPlan {
    /// The host's ports on `switch` from the port map; refused while any
    /// finding concerns the host.
    pub fn from_map(
        map: &PortMap,
        switch: &str,
        host: RemoteHost,
        goal: PortGoal,
    ) -> Result<Self, PortMapError> {
        let ports = map.ports_of(&host.id, switch)?;
        Ok(Self { host, ports, goal })
    }
}

/// The site file's switch as the port map recognises it over LLDP: by its
/// `chassis_id` when the site file gives one, else by the system name it
/// announces, equal to the switch's name.
pub fn switch_identity(switch: &SiteSwitch) -> SwitchIdentity {
    SwitchIdentity {
        name: switch.name.as_str().to_string(),
        chassis_id: switch.chassis_id.map(|c| c.to_string()),
        system_name: Some(switch.name.as_str().to_string()),
    }
}

/// A pinned host's `switch_ports` as the port map takes them, each with the
/// NIC the site file says is cabled to it (if it says).
pub fn configured_ports(refs: &[PortRef]) -> Result<Vec<ConfiguredPort>, ValueError> {
    refs.iter()
        .map(|r| {
            Ok(ConfiguredPort {
                at: crate::domain::port_map::CabledPort {
                    switch: r.switch.as_str().to_string(),
                    port: r.port.as_str().parse()?,
                },
                nic: r.nic,
            })
        })
        .collect()
}

/// Puts each host's ports where its goal says, on the topology's switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchAutomationScore {
    /// The provisioning VLAN: access ports, and the LAG's untagged VLAN.
    pub vlan: VlanId,
    pub hosts: Vec<HostSwitchPlan>,
    /// How long the switch may take to hear the host's bond on every
    /// member, collecting and distributing.
    pub partner_within: Duration,
    /// How long the host's bond may take to aggregate every slave with the
    /// switch, once the switch hears it.
    pub bond_within: Duration,
    /// Between two reads of the bond.
    pub poll: Duration,
    /// Each read of the bond over SSH.
    pub limits: RunLimits,
}

impl SwitchAutomationScore {
    /// 60 s for the partner and the bond, a read every second, 30 s and
    /// 256 KiB per read.
    pub fn new(vlan: VlanId, hosts: Vec<HostSwitchPlan>) -> Self {
        Self {
            vlan,
            hosts,
            partner_within: Duration::from_secs(60),
            bond_within: Duration::from_secs(60),
            poll: Duration::from_secs(1),
            limits: RunLimits {
                timeout: Duration::from_secs(30),
                max_output: 256 * 1024,
            },
        }
    }

    fn check(&self) -> Result<(), InterpretError> {
        let refuse = |msg: String| Err(InterpretError::new(NAME, "plan its steps", msg));
        let mut hosts = BTreeSet::new();
        let mut owner: BTreeMap<&SwitchPort, &RemoteHost> = BTreeMap::new();
        for h in &self.hosts {
            if !hosts.insert(&h.host.id) {
                return refuse(format!("host {} is listed twice", h.host));
            }
            if h.ports.is_empty() {
                return refuse(format!("host {} has no switch ports", h.host));
            }
            for p in &h.ports {
                if let Some(first) = owner.insert(p, &h.host) {
                    return refuse(format!(
                        "port {p} is given to host {first} and host {}",
                        h.host
                    ));
                }
            }
        }
        Ok(())
    }
}

impl<T: Topology + Switch + RemoteShell> Score<T> for SwitchAutomationScore {
    fn name(&self) -> String {
        NAME.into()
    }

    fn create_interpret(&self) -> Box<dyn Interpret<T>> {
        Box::new(SagaInterpret(self.clone()))
    }
}

#[async_trait]
impl<T: Topology + Switch + RemoteShell> SagaScore<T> for SwitchAutomationScore {
    fn saga_name(&self) -> String {
        NAME.into()
    }

    async fn steps(&self, _: &Inventory, _: &T) -> Result<Vec<Box<dyn Step<T>>>, InterpretError> {
        self.check()?;
        let steps = self
            .hosts
            .iter()
            .map(|h| -> Box<dyn Step<T>> {
                let ports = PortsStep {
                    host: h.host.clone(),
                    ports: h.ports.clone(),
                    vlan: self.vlan,
                };
                match &h.goal {
                    PortGoal::Pxe => Box::new(ToAccess {
                        ports,
                        before_reboot: false,
                    }),
                    PortGoal::AccessBeforePxeReboot => Box::new(ToAccess {
                        ports,
                        before_reboot: true,
                    }),
                    PortGoal::Lacp { lag, bond, slaves } => Box::new(ToLacp {
                        ports,
                        lag: *lag,
                        bond: bond.clone(),
                        slaves: slaves.clone(),
                        partner_within: self.partner_within,
                        bond_within: self.bond_within,
                        poll: self.poll,
                        limits: self.limits,
                    }),
                }
            })
            .collect();
        Ok(steps)
    }
}

/// What both steps hold: a host, its ports, the provisioning VLAN.
#[derive(Debug, Clone)]
struct PortsStep {
    host: RemoteHost,
    ports: Vec<SwitchPort>,
    vlan: VlanId,
}

fn switch_err(e: impl ToString) -> StepError {
    StepError::new(e.to_string())
}

impl PortsStep {
    fn list(&self) -> PortList {
        PortList(self.ports.clone())
    }

    async fn read<T: Switch>(&self, sw: &T) -> Result<Vec<PortStatus>, StepError> {
        sw.get_port_status(&self.ports).await.map_err(switch_err)
    }

    /// Puts the ports back as `before` says; a port Harmony cannot
    /// recreate is named in the error (after the others are restored).
    async fn restore<T: Switch>(&self, sw: &T, undo: &UndoData) -> Result<(), StepError> {
        let before: Vec<PortStatus> = undo.decode()?;
        // Ports already as they were are left alone (the step may have
        // failed before changing anything).
        let now = self.read(sw).await?;
        let as_before = |st: &PortStatus| {
            now.iter()
                .any(|n| n.port == st.port && n.mode == st.mode && n.vlan == st.vlan)
        };
        let mut access: BTreeMap<VlanId, Vec<SwitchPort>> = BTreeMap::new();
        let mut lags: BTreeMap<LagId, (Vec<SwitchPort>, VlanId)> = BTreeMap::new();
        let mut unmanaged = Vec::new();
        for st in before.iter().filter(|st| !as_before(st)) {
            match st.mode {
                PortMode::Access { vlan } => access.entry(vlan).or_default().push(st.port.clone()),
                PortMode::LacpMember { lag } => lags
                    .entry(lag)
                    .or_insert_with(|| (Vec::new(), st.vlan.unwrap_or(self.vlan)))
                    .0
                    .push(st.port.clone()),
                PortMode::Detached | PortMode::Other => unmanaged.push(st.to_string()),
            }
        }
        for (vlan, ports) in access {
            sw.set_ports_access_mode(&ports, vlan)
                .await
                .map_err(switch_err)?;
        }
        for (lag, (ports, vlan)) in lags {
            // The partner is not waited for: the host may be rebooting.
            sw.set_ports_lacp_mode(&ports, lag, vlan, LacpOptions::default())
                .await
                .map_err(switch_err)?;
        }
        if !unmanaged.is_empty() {
            return Err(StepError::new(format!(
                "host {}: cannot put back ports Harmony does not manage; they were: {}",
                self.host,
                unmanaged.join("; ")
            ))
            .with_state_left("those ports stay in the mode the run set"));
        }
        Ok(())
    }
}

/// Access mode in the provisioning VLAN.
#[derive(Debug, Clone)]
struct ToAccess {
    ports: PortsStep,
    before_reboot: bool,
}

#[async_trait]
impl<T: Topology + Switch + RemoteShell> Step<T> for ToAccess {
    fn key(&self) -> StepKey {
        let why = if self.before_reboot {
            " before a PXE reboot"
        } else {
            ""
        };
        StepKey(format!(
            "switch ports of {} to access{why}",
            self.ports.host.id
        ))
    }

    async fn prepare(&self, ctx: StepContext<'_, T>) -> Result<Prepared, StepError> {
        let p = &self.ports;
        let found = p.read(ctx.topology).await?;
        let wanted = WantedState::Access { vlan: p.vlan };
        if wanted.mismatches(&p.ports, &found).is_empty() {
            return Ok(Prepared::InPlace(format!(
                "host {}: ports {} already access in vlan {}",
                p.host,
                p.list(),
                p.vlan
            )));
        }
        let why = if self.before_reboot {
            "before its PXE reboot"
        } else {
            "for discovery and PXE"
        };
        Ok(Prepared::Change {
            description: format!(
                "host {}: switch {} ports {} to access vlan {} {why} (now: {})",
                p.host,
                ctx.topology.switch_name(),
                p.list(),
                p.vlan,
                FoundState(found.clone())
            ),
            undo: UndoData::of(&found)?,
        })
    }

    async fn apply(&self, ctx: StepContext<'_, T>) -> Result<Option<String>, StepError> {
        let p = &self.ports;
        ctx.topology
            .set_ports_access_mode(&p.ports, p.vlan)
            .await
            .map_err(switch_err)?;
        Ok(None)
    }

    async fn undo(&self, ctx: StepContext<'_, T>, undo: &UndoData) -> Result<(), StepError> {
        self.ports.restore(ctx.topology, undo).await
    }
}

/// An LACP LAG, once the host's bond is up; verified from both ends.
#[derive(Debug, Clone)]
struct ToLacp {
    ports: PortsStep,
    lag: LagId,
    bond: InterfaceName,
    slaves: Vec<InterfaceName>,
    partner_within: Duration,
    bond_within: Duration,
    poll: Duration,
    limits: RunLimits,
}

impl ToLacp {
    /// The host's bond, read over SSH.
    async fn read_bond<T: RemoteShell>(&self, shell: &T) -> Result<BondStatus, StepError> {
        let host = &self.ports.host;
        let command = RemoteCommand::BondStatus {
            bond: self.bond.clone(),
        };
        let out = shell.run(host, &command, self.limits).await?;
        if !out.success() {
            return Err(StepError::new(format!(
                "host {host}: cannot read bond {} (exit {}): {}",
                self.bond,
                out.exit_status
                    .map_or_else(|| "by signal".to_string(), |s| s.to_string()),
                safe_text(out.stderr.trim(), 200)
            )));
        }
        parse_bond_status(&out.stdout)
            .map_err(|e| StepError::new(format!("host {host}: bond {}: {e}", self.bond)))
    }

    /// Waits (within `bond_within`) until the installed OS has the bond
    /// up; its LACP system id. The host may not answer yet: every read's
    /// failure is the reason given when the wait ends.
    async fn wait_bond_up<T: RemoteShell>(&self, shell: &T) -> Result<MacAddress, StepError> {
        let start = Instant::now();
        loop {
            let why = match self.read_bond(shell).await {
                Ok(bond) => match self.bond_up(&bond) {
                    Ok(system) => return Ok(system),
                    Err(e) => e,
                },
                Err(e) => e,
            };
            if start.elapsed() >= self.bond_within {
                return Err(why);
            }
            tracing::debug!(host = %self.ports.host, bond = %self.bond, reason = %why, "waiting for the bond");
            tokio::time::sleep(self.poll.max(Duration::from_millis(1))).await;
        }
    }

    /// The bond is up; its LACP system id.
    fn bond_up(&self, bond: &BondStatus) -> Result<MacAddress, StepError> {
        let host = &self.ports.host;
        let problems = bond.up_problems(&self.slaves);
        if !problems.is_empty() {
            return Err(StepError::new(format!(
                "host {host}: bond {} is not up ({}): its ports stay as they are until the \
                 installed OS brings its 802.3ad bond up",
                self.bond,
                problems.join(", ")
            )));
        }
        bond.system_id().ok_or_else(|| {
            StepError::new(format!(
                "host {host}: bond {} reports no LACP system id ({bond})",
                self.bond
            ))
        })
    }

    /// `partner`: the switch reports LACP partners, so the state asks for one.
    fn wanted(&self, partner: bool) -> WantedState {
        WantedState::Lacp {
            lag: self.lag,
            vlan: self.ports.vlan,
            fallback: false,
            partner,
        }
    }

    /// Why the switch's side is not the LAG with the host's bond as partner
    /// (`reports_partner` false: the LAG's configuration only).
    fn switch_problems(
        &self,
        found: &[PortStatus],
        system: MacAddress,
        reports_partner: bool,
    ) -> Vec<String> {
        let mut out = self
            .wanted(reports_partner)
            .mismatches(&self.ports.ports, found);
        if !reports_partner {
            return out;
        }
        for st in found {
            if let Some(p) = &st.partner
                && p.system_id != system
            {
                out.push(format!(
                    "{}: partner {} is not host {}'s bond {} (system id {system})",
                    st.port, p.system_id, self.ports.host, self.bond
                ));
            }
        }
        out
    }
}

#[async_trait]
impl<T: Topology + Switch + RemoteShell> Step<T> for ToLacp {
    fn key(&self) -> StepKey {
        StepKey(format!(
            "switch ports of {} to lacp lag {}",
            self.ports.host.id, self.lag
        ))
    }

    async fn prepare(&self, ctx: StepContext<'_, T>) -> Result<Prepared, StepError> {
        let p = &self.ports;
        let reports = ctx.topology.capabilities().reports_lacp_partner;
        let found = p.read(ctx.topology).await?;
        // Not up yet (the host still installing, rebooting): planned, and
        // the step waits for it.
        let up = match self.read_bond(ctx.topology).await {
            Ok(bond) => self.bond_up(&bond).map(|system| (bond, system)),
            Err(e) => Err(e),
        };
        let (bond, system) = match up {
            Ok(up) => up,
            Err(why) => {
                return Ok(Prepared::Change {
                    description: format!(
                        "host {}: once its installed OS has bond {} up (waited up to {} s; now: \
                         {why}), switch {} ports {} to lacp lag {} vlan {}, verified from both \
                         ends (now: {})",
                        p.host,
                        self.bond,
                        self.bond_within.as_secs(),
                        ctx.topology.switch_name(),
                        p.list(),
                        self.lag,
                        p.vlan,
                        FoundState(found.clone())
                    ),
                    undo: UndoData::of(&found)?,
                });
            }
        };
        if self.switch_problems(&found, system, reports).is_empty()
            && bond.lacp_problems(&self.slaves).is_empty()
        {
            return Ok(Prepared::InPlace(format!(
                "host {}: ports {} already lacp lag {} with its bond {} ({system}) as partner",
                p.host,
                p.list(),
                self.lag,
                self.bond
            )));
        }
        let verified = if reports {
            format!(
                "partner {system} (bond {}) collecting and distributing on every member, the \
                 bond aggregating them",
                self.bond
            )
        } else {
            format!(
                "from the host's side only (the switch reports no LACP partner): bond {} \
                 ({system}) aggregating every slave with one partner collecting and \
                 distributing",
                self.bond
            )
        };
        Ok(Prepared::Change {
            description: format!(
                "host {}: switch {} ports {} to lacp lag {} vlan {}, verified: {verified} \
                 (now: {})",
                p.host,
                ctx.topology.switch_name(),
                p.list(),
                self.lag,
                p.vlan,
                FoundState(found.clone())
            ),
            undo: UndoData::of(&found)?,
        })
    }

    async fn apply(&self, ctx: StepContext<'_, T>) -> Result<Option<String>, StepError> {
        let p = &self.ports;
        let sw = ctx.topology;
        let reports = sw.capabilities().reports_lacp_partner;
        let system = self.wait_bond_up(sw).await?;
        let options = LacpOptions {
            fallback: false,
            partner_within: reports.then_some(self.partner_within),
        };
        sw.set_ports_lacp_mode(&p.ports, self.lag, p.vlan, options)
            .await
            .map_err(switch_err)?;
        let found = p.read(sw).await?;
        let problems = self.switch_problems(&found, system, reports);
        if !problems.is_empty() {
            let what = if reports {
                format!("do not hear host {}'s bond", p.host)
            } else {
                "are not configured as asked".to_string()
            };
            return Err(StepError::new(format!(
                "switch {}: ports {} in lag {} {what}: {} (found: {})",
                sw.switch_name(),
                p.list(),
                self.lag,
                problems.join(", "),
                FoundState(found)
            )));
        }
        // The host's end: every slave in the active aggregator, with the
        // switch as partner.
        // A LAG being formed drops frames for a moment (a real switch's
        // as OVS's): a read that fails then is retried like a bond not
        // aggregated yet, until the deadline.
        let deadline = Instant::now() + self.bond_within;
        let bond = loop {
            let why = match self.read_bond(sw).await {
                Ok(bond) => {
                    let problems = bond.lacp_problems(&self.slaves);
                    if problems.is_empty() {
                        break bond;
                    }
                    format!("{} ({bond})", problems.join(", "))
                }
                Err(e) => e.to_string(),
            };
            if Instant::now() + self.poll > deadline {
                return Err(StepError::new(format!(
                    "host {}: bond {} not aggregated with the switch after {:?}: {why}",
                    p.host, self.bond, self.bond_within,
                )));
            }
            tracing::debug!(host = %p.host, bond = %self.bond, reason = %why, "waiting for the LAG");
            tokio::time::sleep(self.poll).await;
        };
        let partner = bond
            .active_aggregator
            .map(|a| format!("aggregator {} partner {}", a.id, a.partner_mac))
            .unwrap_or_default();
        let switch_side = if reports {
            format!("partner {system} collecting and distributing on every member")
        } else {
            "the switch reports no LACP partner, verified from the host's side".to_string()
        };
        Ok(Some(format!(
            "host {}: switch {} ports {} are lacp lag {} vlan {}; {switch_side}; bond {} \
             {partner}",
            p.host,
            sw.switch_name(),
            p.list(),
            self.lag,
            p.vlan,
            self.bond
        )))
    }

    async fn undo(&self, ctx: StepContext<'_, T>, undo: &UndoData) -> Result<(), StepError> {
        self.ports.restore(ctx.topology, undo).await
    }
}
