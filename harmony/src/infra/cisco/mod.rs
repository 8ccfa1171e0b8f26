//! Cisco IOS/IOS-XE and NX-OS switches as a [`Switch`], through the CLI
//! over SSH ([`cli`]): status from `show interface(s) status`, `show
//! etherchannel summary` / `show port-channel summary` and `show lacp
//! neighbor` ([`parse`]); changes in configuration mode ([`commands`]),
//! then read back and verified.
//!
//! An access port is `switchport mode access` + `switchport access vlan
//! N`; a LAG is port-channel N with members in `channel-group N mode
//! active`, the port-channel itself an access port in the VLAN; on NX-OS a
//! LAG with fallback has `no lacp suspend-individual` (members without a
//! partner go Individual and forward, e.g. for PXE), verified in `show
//! running-config interface port-channelN`. IOS has no fallback here (the
//! default of `port-channel standalone-disable` is unconfirmed).
//!
//! Before a change the ports' state is read; ports Harmony could not put
//! back exactly (trunks, routed ports, absent ports, a LAG with members
//! not named) are refused. After it, the ports are read back until they
//! show the state asked for; when they do not (or the device refuses a
//! line), the saved state is configured again and read back, and the
//! error names the switch, the ports, both states and whether the restore
//! held. LAG members get `lacp rate fast` ([`CiscoConfig::lacp_rate_fast`];
//! a setting sent, not read back). A LAG the change leaves without members
//! (all of them must be named) has its port-channel interface removed,
//! and the read back checks it is gone; a failed change removes the
//! port-channel it created and recreates the ones it removed (members,
//! VLAN and, on NX-OS, fallback: other port-channel settings are not
//! kept).

pub mod cli;
pub mod commands;
pub mod parse;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::domain::switch::check_ports;
use crate::domain::text::SafeText;
use crate::domain::{
    Change, ChangeFailure, FoundState, HostKeyFingerprint, LacpOptions, LagId, PortList, PortMode,
    PortStatus, Restore, Switch, SwitchCapabilities, SwitchError, SwitchPort, Topology, VlanId,
    WantedState,
};

pub use cli::{CliAuth, CliError, CliLimits, CliSession};
pub use commands::Platform;
use commands::{ChannelConfig, PortConfig, config_lines};
use parse::{ChannelGroup, ParseError, StatusRow, same_port};

/// Where the switch is and how to talk to it.
#[derive(Debug, Clone)]
pub struct CiscoConfig {
    /// For messages (`leaf-1`).
    pub name: String,
    pub addr: SocketAddr,
    pub platform: Platform,
    /// The SSH host key's SHA-256 fingerprint, pinned by the operator.
    pub host_key: HostKeyFingerprint,
    pub auth: CliAuth,
    pub limits: CliLimits,
    /// How long a read back may take to show the change.
    pub settle: Duration,
    /// Between two read backs.
    pub poll: Duration,
    /// Send `lacp rate fast` on LAG members (default). Off for images
    /// without the command (Catalyst 3560/3750 before 15.2(4)E), where it
    /// would be refused.
    pub lacp_rate_fast: bool,
}

impl CiscoConfig {
    /// 10 s to connect, 30 s and 1 MiB per command, 10 s to settle, a
    /// read back a second.
    pub fn new(
        name: impl Into<String>,
        addr: SocketAddr,
        platform: Platform,
        host_key: HostKeyFingerprint,
        auth: CliAuth,
    ) -> Self {
        Self {
            name: name.into(),
            addr,
            platform,
            host_key,
            auth,
            limits: CliLimits {
                connect: Duration::from_secs(10),
                command: Duration::from_secs(30),
                max_output: 1 << 20,
            },
            settle: Duration::from_secs(10),
            poll: Duration::from_secs(1),
            lacp_rate_fast: true,
        }
    }
}

/// One Cisco switch as a [`Switch`].
#[derive(Debug)]
pub struct CiscoSwitch {
    config: CiscoConfig,
    name: String,
    changing: tokio::sync::Mutex<()>,
}

/// What a read of the switch found.
struct Snapshot {
    ports: Vec<PortStatus>,
    groups: Vec<ChannelGroup>,
    /// NX-OS: the fallback setting of the LAGs asked about.
    fallback: Vec<(LagId, bool)>,
}

struct Failure {
    found: Vec<PortStatus>,
    mismatches: Vec<String>,
    cause: Option<String>,
}

impl CiscoSwitch {
    pub fn new(config: CiscoConfig) -> Self {
        let name = format!("cisco {}", config.name);
        Self {
            config,
            name,
            changing: tokio::sync::Mutex::new(()),
        }
    }

    fn backend(&self, e: CliError) -> SwitchError {
        SwitchError::Backend {
            switch: self.name.clone(),
            message: e.to_string(),
        }
    }

    fn output(&self, source_name: &'static str, e: ParseError) -> SwitchError {
        SwitchError::Output {
            switch: self.name.clone(),
            source_name,
            line: e.line,
            reason: e.reason,
        }
    }

    fn refused(&self, ports: &[SwitchPort], reason: impl Into<String>) -> SwitchError {
        SwitchError::Refused {
            switch: self.name.clone(),
            ports: PortList(ports.to_vec()),
            reason: reason.into(),
        }
    }

    fn check(&self, ports: &[SwitchPort]) -> Result<(), SwitchError> {
        check_ports(&self.name, ports)?;
        if let Some(p) = ports.iter().find(|p| parse::port_channel_id(p).is_some()) {
            return Err(self.refused(
                ports,
                format!("{p} is a port-channel; name its member ports"),
            ));
        }
        Ok(())
    }

    async fn open(&self) -> Result<CliSession, SwitchError> {
        CliSession::open(
            self.config.addr,
            &self.config.host_key,
            &self.config.auth,
            self.config.limits,
        )
        .await
        .map_err(|e| self.backend(e))
    }

    /// Reads the ports' status (and, on NX-OS, the fallback setting of
    /// `lags`).
    async fn snapshot(
        &self,
        cli: &mut CliSession,
        ports: &[SwitchPort],
        lags: &[LagId],
    ) -> Result<Snapshot, SwitchError> {
        let p = self.config.platform;
        let text = cli
            .run(p.interface_status())
            .await
            .map_err(|e| self.backend(e))?;
        let rows = parse::parse_interface_status(&text)
            .map_err(|e| self.output(p.interface_status(), e))?;
        let text = cli
            .run(p.channel_summary())
            .await
            .map_err(|e| self.backend(e))?;
        let groups =
            parse::parse_channel_summary(&text).map_err(|e| self.output(p.channel_summary(), e))?;
        let group_of = |port: &SwitchPort| {
            groups
                .iter()
                .find(|g| g.members.iter().any(|m| same_port(port, &m.port)))
        };
        let neighbors = if ports
            .iter()
            .any(|port| group_of(port).is_some_and(ChannelGroup::is_lacp))
        {
            let text = cli
                .run(p.lacp_neighbor())
                .await
                .map_err(|e| self.backend(e))?;
            parse::parse_lacp_neighbors(&text).map_err(|e| self.output(p.lacp_neighbor(), e))?
        } else {
            Vec::new()
        };
        let row_of = |port: &SwitchPort| rows.iter().find(|r| same_port(port, &r.port));
        let mut out = Vec::with_capacity(ports.len());
        for port in ports {
            let Some(row) = row_of(port) else {
                out.push(PortStatus::detached(port.clone()));
                continue;
            };
            out.push(status_of(port, row, group_of(port), &rows, &neighbors));
        }
        let mut fallback = Vec::new();
        if p.has_fallback() {
            for lag in lags {
                if !groups.iter().any(|g| g.lag == *lag) {
                    continue;
                }
                let text = cli
                    .run(&p.port_channel_config(*lag))
                    .await
                    .map_err(|e| self.backend(e))?;
                fallback.push((*lag, parse::has_no_suspend_individual(&text)));
            }
        }
        Ok(Snapshot {
            ports: out,
            groups,
            fallback,
        })
    }

    /// Refuses what could not be put back; returns the LAGs whose
    /// port-channel settings the restore needs.
    fn check_restorable(
        &self,
        ports: &[SwitchPort],
        before: &Snapshot,
        target_lag: Option<LagId>,
    ) -> Result<(), SwitchError> {
        for s in &before.ports {
            match s.mode {
                PortMode::Detached => {
                    return Err(self.refused(
                        ports,
                        format!("{} is not in the switch's interface status", s.port),
                    ));
                }
                PortMode::Other => {
                    return Err(self.refused(
                        ports,
                        format!(
                            "{} is configured some way Harmony could not put back \
                             (a trunk, a routed port or a LAG without LACP); make it an access port first",
                            s.port
                        ),
                    ));
                }
                _ => {}
            }
            if matches!(s.mode, PortMode::LacpMember { .. }) && s.vlan.is_none() {
                return Err(self.refused(ports, format!("{}: no VLAN reported", s.port)));
            }
        }
        // Every member of a LAG touched must be named.
        let mut lags: Vec<LagId> = before.ports.iter().filter_map(|s| s.lag).collect();
        lags.extend(target_lag);
        for lag in lags {
            let Some(g) = before.groups.iter().find(|g| g.lag == lag) else {
                continue;
            };
            if let Some(m) = g
                .members
                .iter()
                .find(|m| !ports.iter().any(|p| same_port(p, &m.port)))
            {
                return Err(self.refused(
                    ports,
                    format!("LAG {lag} has the member {} that is not named", m.port),
                ));
            }
        }
        Ok(())
    }

    /// Sends the lines of one configuration session; on a refused line,
    /// leaves configuration mode and returns the error.
    async fn configure(&self, cli: &mut CliSession, lines: &[String]) -> Result<(), CliError> {
        for line in lines {
            if let Err(e) = cli.run(line).await {
                if line != "end" && !matches!(e, CliError::Closed { .. }) {
                    let _ = cli.run("end").await;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    async fn verify(
        &self,
        cli: &mut CliSession,
        ports: &[SwitchPort],
        wanted: WantedState,
        partner_within: Option<Duration>,
        removed: &[LagId],
    ) -> Result<(), Failure> {
        let lags: Vec<LagId> = match wanted {
            WantedState::Lacp { lag, .. } => vec![lag],
            WantedState::Access { .. } => vec![],
        };
        let deadline = Instant::now() + self.config.settle.max(partner_within.unwrap_or_default());
        // Bounded by the deadline (each turn waits `poll`).
        loop {
            let snap = self
                .snapshot(cli, ports, &lags)
                .await
                .map_err(|e| Failure {
                    found: vec![],
                    mismatches: vec![],
                    cause: Some(format!("reading back: {e}")),
                })?;
            let mut mismatches = wanted.mismatches(ports, &snap.ports);
            if let WantedState::Lacp { lag, fallback, .. } = wanted
                && self.config.platform.has_fallback()
                && mismatches.is_empty()
            {
                let found = snap.fallback.iter().find(|(l, _)| *l == lag).map(|f| f.1);
                if found != Some(fallback) {
                    mismatches.push(format!(
                        "port-channel{lag}: fallback (no lacp suspend-individual) is {}",
                        match found {
                            Some(true) => "on",
                            Some(false) => "off",
                            None => "not reported",
                        }
                    ));
                }
            }
            for lag in removed {
                if snap.groups.iter().any(|g| g.lag == *lag) {
                    mismatches.push(format!(
                        "{}: still present",
                        self.config.platform.port_channel(*lag)
                    ));
                }
            }
            if mismatches.is_empty() {
                return Ok(());
            }
            let settled = snap.ports.iter().any(|s| !configured_as(s, wanted));
            if settled || Instant::now() >= deadline {
                return Err(Failure {
                    found: snap.ports,
                    mismatches,
                    cause: None,
                });
            }
            tokio::time::sleep(self.config.poll).await;
        }
    }

    /// Configures the saved state again and reads it back.
    async fn restore(
        &self,
        cli: &mut CliSession,
        ports: &[SwitchPort],
        before: &Snapshot,
        was_lacp_change: bool,
        created: Option<LagId>,
    ) -> Restore {
        let mut port_lines = Vec::new();
        let mut channels: Vec<ChannelConfig> = Vec::new();
        for s in &before.ports {
            let (lag, vlan) = match s.mode {
                PortMode::Access { vlan } => (None, vlan),
                PortMode::LacpMember { lag } => match s.vlan {
                    Some(v) => (Some(lag), v),
                    None => return Restore::Failed(format!("{}: no saved VLAN", s.port)),
                },
                _ => return Restore::Failed(format!("{}: nothing saved to put back", s.port)),
            };
            if let Some(lag) = lag
                && !channels.iter().any(|c| c.lag == lag)
            {
                channels.push(ChannelConfig {
                    lag,
                    vlan,
                    fallback: before.fallback.iter().find(|(l, _)| *l == lag).map(|f| f.1),
                });
            }
            port_lines.push(PortConfig {
                port: s.port.clone(),
                vlan,
                lag,
                admin_up: s.admin_up,
                leave_lag: was_lacp_change,
                fast_rate: lag.is_some() && self.config.lacp_rate_fast,
            });
        }
        // The port-channel the change created, if it got that far.
        let mut removed = Vec::new();
        if let Some(lag) = created {
            match self.snapshot(cli, ports, &[]).await {
                Ok(now) if now.groups.iter().any(|g| g.lag == lag) => removed.push(lag),
                Ok(_) => {}
                Err(e) => return Restore::Failed(format!("reading before the restore: {e}")),
            }
        }
        let lines = config_lines(self.config.platform, &port_lines, &channels, &removed);
        if let Err(e) = self.configure(cli, &lines).await {
            return Restore::Failed(e.to_string());
        }
        let lags: Vec<LagId> = channels.iter().map(|c| c.lag).collect();
        match self.snapshot(cli, ports, &lags).await {
            Err(e) => Restore::Failed(format!("reading back: {e}")),
            Ok(now) => Restore::from_read_back(&before.ports, &now.ports),
        }
    }

    async fn change(
        &self,
        ports: &[SwitchPort],
        wanted: WantedState,
        partner_within: Option<Duration>,
    ) -> Result<Change, SwitchError> {
        self.check(ports)?;
        let _one_at_a_time = self.changing.lock().await;
        let mut cli = self.open().await?;
        let result = self
            .change_in(&mut cli, ports, wanted, partner_within)
            .await;
        cli.close().await;
        result
    }

    async fn change_in(
        &self,
        cli: &mut CliSession,
        ports: &[SwitchPort],
        wanted: WantedState,
        partner_within: Option<Duration>,
    ) -> Result<Change, SwitchError> {
        let platform = self.config.platform;
        let (target_lag, lines_for) = match wanted {
            WantedState::Access { vlan } => (None, (vlan, None, None)),
            WantedState::Lacp {
                lag,
                vlan,
                fallback,
                ..
            } => (
                Some(lag),
                (vlan, Some(lag), platform.has_fallback().then_some(fallback)),
            ),
        };
        let mut lags: Vec<LagId> = target_lag.into_iter().collect();
        let before = self.snapshot(cli, ports, &lags).await?;
        lags.extend(before.ports.iter().filter_map(|s| s.lag));
        lags.sort();
        lags.dedup();
        // The fallback of every LAG the restore may need.
        let read_first = usize::from(target_lag.is_some());
        let before = if lags.len() > read_first && platform.has_fallback() {
            self.snapshot(cli, ports, &lags).await?
        } else {
            before
        };
        self.check_restorable(ports, &before, target_lag)?;
        // Already so?
        let mut already = wanted.mismatches(ports, &before.ports).is_empty();
        if let (Some(lag), (_, _, Some(fb))) = (target_lag, lines_for) {
            already &= before.fallback.iter().any(|(l, f)| *l == lag && *f == fb);
        }
        if already && partner_within.is_none() {
            return Ok(Change::Unchanged);
        }
        if already {
            // Configuration in place: only the partner is waited for.
            return match self.verify(cli, ports, wanted, partner_within, &[]).await {
                Ok(()) => Ok(Change::Unchanged),
                Err(f) => Err(self.failed(ports, wanted, f, Restore::Restored)),
            };
        }
        let (vlan, lag, fallback) = lines_for;
        let port_cfg: Vec<PortConfig> = before
            .ports
            .iter()
            .map(|s| PortConfig {
                port: s.port.clone(),
                vlan,
                lag,
                admin_up: true,
                leave_lag: s.lag.is_some() && s.lag != lag,
                fast_rate: lag.is_some() && self.config.lacp_rate_fast,
            })
            .collect();
        // LAGs the ports leave are left without members (every member is
        // named): their port-channels go.
        let mut removed: Vec<LagId> = before
            .ports
            .iter()
            .filter_map(|s| s.lag)
            .filter(|l| Some(*l) != lag)
            .collect();
        removed.sort();
        removed.dedup();
        // The target port-channel, when this change creates it.
        let created = lag.filter(|l| !before.groups.iter().any(|g| g.lag == *l));
        let channels: Vec<ChannelConfig> = lag
            .map(|lag| {
                // Fallback is set only when it differs (the port-channel is
                // shut around it).
                let current = before.fallback.iter().find(|(l, _)| *l == lag).map(|f| f.1);
                ChannelConfig {
                    lag,
                    vlan,
                    fallback: fallback.filter(|fb| current != Some(*fb)),
                }
            })
            .into_iter()
            .collect();
        let lines = config_lines(platform, &port_cfg, &channels, &removed);
        tracing::info!(switch = %self.name, ports = %PortList(ports.to_vec()), %wanted, "changing ports");
        let failure = match self.configure(cli, &lines).await {
            Err(e) => Failure {
                found: self
                    .snapshot(cli, ports, &lags)
                    .await
                    .map(|s| s.ports)
                    .unwrap_or_default(),
                mismatches: vec![],
                cause: Some(e.to_string()),
            },
            Ok(()) => match self
                .verify(cli, ports, wanted, partner_within, &removed)
                .await
            {
                Ok(()) => return Ok(Change::Applied),
                Err(f) => f,
            },
        };
        tracing::warn!(switch = %self.name, ports = %PortList(ports.to_vec()), %wanted, "change did not hold; restoring");
        let restore = self
            .restore(cli, ports, &before, lag.is_some(), created)
            .await;
        Err(self.failed(ports, wanted, failure, restore))
    }

    fn failed(
        &self,
        ports: &[SwitchPort],
        wanted: WantedState,
        f: Failure,
        restore: Restore,
    ) -> SwitchError {
        SwitchError::ChangeFailed(Box::new(ChangeFailure {
            switch: self.name.clone(),
            ports: PortList(ports.to_vec()),
            wanted,
            found: FoundState(f.found),
            mismatches: f.mismatches,
            cause: f.cause,
            restore,
        }))
    }
}

/// A port's status from its row, its channel group and the LACP
/// neighbours.
fn status_of(
    port: &SwitchPort,
    row: &StatusRow,
    group: Option<&ChannelGroup>,
    rows: &[StatusRow],
    neighbors: &[parse::Neighbor],
) -> PortStatus {
    let (mode, vlan, lag, partner) = match group {
        Some(g) => {
            // The LAG's VLAN is the port-channel's.
            let po = rows
                .iter()
                .find(|r| parse::port_channel_id(&r.port) == Some(g.lag));
            let vlan = po.map_or(row.vlan, |r| r.vlan);
            if g.is_lacp() {
                let partner = neighbors
                    .iter()
                    .find(|n| same_port(port, &n.port))
                    .and_then(parse::Neighbor::partner);
                (
                    PortMode::LacpMember { lag: g.lag },
                    vlan,
                    Some(g.lag),
                    partner,
                )
            } else {
                (PortMode::Other, vlan, Some(g.lag), None)
            }
        }
        None => match row.vlan {
            Some(vlan) => (PortMode::Access { vlan }, Some(vlan), None, None),
            None => (PortMode::Other, None, None, None),
        },
    };
    PortStatus {
        port: port.clone(),
        admin_up: row.admin_up(),
        oper_up: row.oper_up(),
        speed_mbps: row.speed_mbps,
        mode,
        vlan,
        lag,
        partner,
        fault: row.fault().map(|f| SafeText::new(&f)),
    }
}

/// Whether the port's configuration (not its link or partner) is as wanted.
fn configured_as(s: &PortStatus, wanted: WantedState) -> bool {
    match wanted {
        WantedState::Access { vlan } => s.mode == PortMode::Access { vlan },
        WantedState::Lacp { lag, vlan, .. } => {
            s.mode == PortMode::LacpMember { lag } && s.vlan == Some(vlan)
        }
    }
}

impl Topology for CiscoSwitch {
    fn name(&self) -> &str {
        &self.name
    }
}

#[async_trait]
impl Switch for CiscoSwitch {
    fn switch_name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> SwitchCapabilities {
        SwitchCapabilities {
            lacp_fallback: self.config.platform.has_fallback(),
            reports_lacp_partner: true,
        }
    }

    async fn get_port_status(&self, ports: &[SwitchPort]) -> Result<Vec<PortStatus>, SwitchError> {
        self.check(ports)?;
        let mut cli = self.open().await?;
        let snap = self.snapshot(&mut cli, ports, &[]).await;
        cli.close().await;
        Ok(snap?.ports)
    }

    async fn set_ports_access_mode(
        &self,
        ports: &[SwitchPort],
        vlan: VlanId,
    ) -> Result<Change, SwitchError> {
        self.change(ports, WantedState::Access { vlan }, None).await
    }

    async fn set_ports_lacp_mode(
        &self,
        ports: &[SwitchPort],
        lag: LagId,
        vlan: VlanId,
        options: LacpOptions,
    ) -> Result<Change, SwitchError> {
        if options.fallback && !self.config.platform.has_fallback() {
            return Err(SwitchError::Unsupported {
                switch: self.name.clone(),
                feature: "LACP fallback on IOS/IOS-XE",
            });
        }
        let wanted = WantedState::Lacp {
            lag,
            vlan,
            fallback: options.fallback,
            partner: options.partner_within.is_some(),
        };
        self.change(ports, wanted, options.partner_within).await
    }
}
