//! Open vSwitch as a [`Switch`]: one bridge, driven through `ovs-vsctl`
//! (OVSDB over its unix socket) and read at run time through `ovs-appctl`
//! (`lacp/show`, `bond/show`). A switch port is an interface on the
//! bridge; an access port is a plain Port with `tag=VLAN`; a LAG is a bond
//! Port `bond<N>` with `lacp=active bond_mode=balance-tcp
//! other_config:lacp-time=fast tag=VLAN` (and `other_config:lacp-fallback-ab=true`
//! when asked).
//!
//! Each change is one OVSDB transaction; before it, the Port rows it
//! touches are saved (a change that could not be put back exactly is
//! refused); after it, the ports are read back until they show the state
//! asked for (admin up, mode, VLAN, no interface error; for LACP with a
//! partner wait, every member's partner current, collecting and
//! distributing). When they do not, the saved rows are re-created and read
//! back, and the error names the bridge, the ports, both states and
//! whether the restore held.
//!
//! Everything read from OVS is untrusted ([`db`], [`appctl`]); names reach
//! a command only as an [`OvsName`]. Interface-level settings (MTU
//! requests, options) of a port Harmony re-creates are not carried over:
//! Harmony manages plain network devices only.
//!
//! [`daemons`] starts a private `ovsdb-server` + `ovs-vswitchd` (userspace
//! datapath) for tests and the lab.

pub mod appctl;
pub mod daemons;
pub mod db;
pub mod plan;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::domain::switch::check_ports;
use crate::domain::text::SafeText;
use crate::domain::{
    Change, ChangeFailure, FoundState, LacpOptions, LacpPartner, LagId, PortList, PortMode,
    PortStatus, Restore, Switch, SwitchCapabilities, SwitchError, SwitchPort, Topology, ValueError,
    VlanId, WantedState,
};
use crate::infra::process::{ProcessError, Program};

pub use daemons::{OvsDaemons, OvsDaemonsError};
use db::DbState;
use plan::{BridgeView, ChangePlan, Placement, Target};

/// A bridge, port or interface name Open vSwitch is given: 1 to 15 of
/// `[A-Za-z0-9._-]` starting with a letter or digit (a Linux device name
/// that `ovs-vsctl` cannot mistake for an option or a column setting).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OvsName(String);

impl OvsName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for OvsName {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ValueError::new("Open vSwitch name", s, reason);
        if s.is_empty() || s.len() > 15 {
            return Err(err("must be 1 to 15 characters"));
        }
        if !s.as_bytes()[0].is_ascii_alphanumeric() {
            return Err(err("must start with a letter or digit"));
        }
        if !s
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        {
            return Err(err("may hold only letters, digits and . _ -"));
        }
        Ok(Self(s.to_string()))
    }
}

impl fmt::Display for OvsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where the switch is and how long it may take.
#[derive(Debug, Clone)]
pub struct OvsConfig {
    pub bridge: OvsName,
    /// OVSDB's unix socket (`/var/run/openvswitch/db.sock` on a host).
    pub db_socket: PathBuf,
    /// `ovs-vswitchd`'s control socket
    /// (`/var/run/openvswitch/ovs-vswitchd.PID.ctl` on a host).
    pub vswitchd_ctl: PathBuf,
    /// Each `ovs-vsctl` (given as its `--timeout`) and `ovs-appctl` run.
    pub command_timeout: Duration,
    /// How long a read back may take to show the ports up after a change.
    pub settle: Duration,
    /// Between two read backs.
    pub poll: Duration,
}

impl OvsConfig {
    /// 10 s per command, 5 s to settle, a read back every 100 ms.
    pub fn new(bridge: OvsName, db_socket: PathBuf, vswitchd_ctl: PathBuf) -> Self {
        Self {
            bridge,
            db_socket,
            vswitchd_ctl,
            command_timeout: Duration::from_secs(10),
            settle: Duration::from_secs(5),
            poll: Duration::from_millis(100),
        }
    }
}

/// One Open vSwitch bridge as a [`Switch`] (and a [`Topology`] of its own).
#[derive(Debug)]
pub struct OpenVSwitch {
    config: OvsConfig,
    name: String,
    /// One change at a time (a change reads, acts and reads back).
    changing: tokio::sync::Mutex<()>,
}

/// A change that failed, before the restore: why, and what was read back.
struct Failure {
    found: Vec<PortStatus>,
    mismatches: Vec<String>,
    cause: Option<String>,
}

impl OpenVSwitch {
    pub fn new(config: OvsConfig) -> Self {
        let name = format!("ovs bridge {}", config.bridge);
        Self {
            config,
            name,
            changing: tokio::sync::Mutex::new(()),
        }
    }

    pub fn config(&self) -> &OvsConfig {
        &self.config
    }

    fn backend(&self, message: impl Into<String>) -> SwitchError {
        SwitchError::Backend {
            switch: self.name.clone(),
            message: message.into(),
        }
    }

    fn refused(&self, ports: &[SwitchPort], reason: impl Into<String>) -> SwitchError {
        SwitchError::Refused {
            switch: self.name.clone(),
            ports: PortList(ports.to_vec()),
            reason: reason.into(),
        }
    }

    fn output_error(&self, source_name: &'static str, e: db::ParseError) -> SwitchError {
        SwitchError::Output {
            switch: self.name.clone(),
            source_name,
            line: e.line,
            reason: e.reason,
        }
    }

    /// The asked ports as OVS names (refused when one cannot be).
    fn names(&self, ports: &[SwitchPort]) -> Result<Vec<OvsName>, SwitchError> {
        check_ports(&self.name, ports)?;
        ports
            .iter()
            .map(|p| {
                p.as_str()
                    .parse()
                    .map_err(|e| self.refused(ports, format!("{e}")))
            })
            .collect()
    }

    /// `ovs-vsctl --db=unix:SOCK --timeout=N ARGS...`.
    fn vsctl(&self, args: impl IntoIterator<Item = String>) -> Program {
        let secs = self.config.command_timeout.as_secs().max(1);
        let mut socket = std::ffi::OsString::from("--db=unix:");
        socket.push(&self.config.db_socket);
        Program::new("ovs-vsctl")
            .arg(socket)
            .arg(format!("--timeout={secs}"))
            .args(args)
            .timeout(self.config.command_timeout + Duration::from_secs(2))
    }

    /// `ovs-appctl -t CTL --timeout=N COMMAND BOND`.
    fn appctl(&self, command: &str, bond: &OvsName) -> Program {
        let secs = self.config.command_timeout.as_secs().max(1);
        Program::new("ovs-appctl")
            .arg("-t")
            .arg(&self.config.vswitchd_ctl)
            .arg(format!("--timeout={secs}"))
            .args([command, bond.as_str()])
            .timeout(self.config.command_timeout + Duration::from_secs(2))
    }

    fn process_error(&self, e: ProcessError) -> SwitchError {
        self.backend(e.to_string())
    }

    fn utf8(&self, bytes: Vec<u8>, truncated: bool, what: &str) -> Result<String, SwitchError> {
        if truncated {
            return Err(self.backend(format!("{what}: output longer than the cap")));
        }
        String::from_utf8(bytes).map_err(|_| self.backend(format!("{what}: output is not UTF-8")))
    }

    /// Bridges, ports and interfaces, read in one `ovs-vsctl` run.
    async fn read_db(&self) -> Result<DbState, SwitchError> {
        let args = [
            "--format=json",
            "--",
            &format!("--columns={}", db::BRIDGE_COLUMNS),
            "list",
            "bridge",
            "--",
            &format!("--columns={}", db::PORT_COLUMNS),
            "list",
            "port",
            "--",
            &format!("--columns={}", db::INTERFACE_COLUMNS),
            "list",
            "interface",
        ]
        .map(String::from);
        let out = self
            .vsctl(args)
            .run()
            .await
            .map_err(|e| self.process_error(e))?;
        let text = self.utf8(out.stdout, out.stdout_truncated, "ovs-vsctl list")?;
        db::parse_state(&text).map_err(|e| self.output_error("ovs-vsctl list", e))
    }

    /// `lacp/show BOND`, or `None` when vswitchd has no LACP object for it
    /// (yet).
    async fn lacp_show(&self, bond: &OvsName) -> Result<Option<appctl::LacpShow>, SwitchError> {
        let out = self
            .appctl("lacp/show", bond)
            .output()
            .await
            .map_err(|e| self.process_error(e))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            if stderr.contains("no such lacp object") {
                return Ok(None);
            }
            return Err(self.backend(format!(
                "ovs-appctl lacp/show {bond}: {}: {}",
                out.status,
                SafeText::bounded(stderr.trim(), 400)
            )));
        }
        let text = self.utf8(out.stdout, out.stdout_truncated, "ovs-appctl lacp/show")?;
        appctl::parse_lacp_show(&text)
            .map(Some)
            .map_err(|e| self.output_error("ovs-appctl lacp/show", e))
    }

    /// `bond/show BOND`.
    async fn bond_show(&self, bond: &OvsName) -> Result<appctl::BondShow, SwitchError> {
        let out = self
            .appctl("bond/show", bond)
            .run()
            .await
            .map_err(|e| self.process_error(e))?;
        let text = self.utf8(out.stdout, out.stdout_truncated, "ovs-appctl bond/show")?;
        appctl::parse_bond_show(&text).map_err(|e| self.output_error("ovs-appctl bond/show", e))
    }

    /// The ports' status from the database and, for LAG members, from
    /// vswitchd's LACP state.
    async fn status(
        &self,
        ports: &[SwitchPort],
        names: &[OvsName],
    ) -> Result<Vec<PortStatus>, SwitchError> {
        let db = self.read_db().await?;
        let view = BridgeView::new(&db, &self.config.bridge).map_err(|r| self.backend(r.0))?;
        let mut out = Vec::with_capacity(ports.len());
        let mut lacp_cache: Vec<(OvsName, Option<appctl::LacpShow>)> = Vec::new();
        for (port, name) in ports.iter().zip(names) {
            let (row, iface) = match view.placement(name) {
                Placement::Detached => {
                    out.push(PortStatus::detached(port.clone()));
                    continue;
                }
                Placement::Elsewhere(b) => {
                    return Err(self.refused(
                        ports,
                        format!("{name} is on bridge {b}, not {}", self.config.bridge),
                    ));
                }
                Placement::OnBridge(row, iface) => (row, iface),
            };
            let (mode, vlan, lag) = plan::mode_of(row, iface);
            let mut partner = None;
            if let PortMode::LacpMember { lag } = mode {
                let bond = plan::bond_name(lag);
                if !lacp_cache.iter().any(|(b, _)| b == &bond) {
                    let show = self.lacp_show(&bond).await?;
                    lacp_cache.push((bond.clone(), show));
                }
                let show = lacp_cache
                    .iter()
                    .find(|(b, _)| b == &bond)
                    .and_then(|(_, s)| s.as_ref());
                partner = show.and_then(|s| partner_of(s, name));
            }
            out.push(PortStatus {
                port: port.clone(),
                admin_up: iface.admin_up,
                oper_up: iface.link_up,
                speed_mbps: iface
                    .link_speed
                    .and_then(|bps| u32::try_from(bps / 1_000_000).ok()),
                mode,
                vlan,
                lag,
                partner,
                fault: iface.error.as_deref().map(SafeText::new),
            });
        }
        Ok(out)
    }

    /// Reads back until the ports are as wanted, or the time is up, or the
    /// configuration itself is wrong (waiting would not help).
    async fn verify(
        &self,
        ports: &[SwitchPort],
        names: &[OvsName],
        wanted: WantedState,
        partner_within: Option<Duration>,
    ) -> Result<(), Failure> {
        let deadline = Instant::now() + self.config.settle.max(partner_within.unwrap_or_default());
        loop {
            let found = match self.status(ports, names).await {
                Ok(f) => f,
                Err(e) => {
                    return Err(Failure {
                        found: vec![],
                        mismatches: vec![],
                        cause: Some(format!("reading back: {e}")),
                    });
                }
            };
            let mut mismatches = wanted.mismatches(ports, &found);
            if let WantedState::Lacp { lag, fallback, .. } = wanted
                && mismatches.is_empty()
            {
                let bond = plan::bond_name(lag);
                match self.bond_show(&bond).await {
                    Ok(b) if b.lacp_fallback_ab == Some(fallback) => {}
                    Ok(b) => mismatches.push(format!(
                        "{bond}: lacp_fallback_ab is {:?}",
                        b.lacp_fallback_ab
                    )),
                    Err(e) => mismatches.push(format!("{bond}: {e}")),
                }
            }
            if mismatches.is_empty() {
                return Ok(());
            }
            let settled = found.iter().any(|s| s.fault.is_some())
                || found.iter().any(|s| !configured_as(s, wanted));
            if settled || Instant::now() >= deadline {
                return Err(Failure {
                    found,
                    mismatches,
                    cause: None,
                });
            }
            tokio::time::sleep(self.config.poll).await;
        }
    }

    /// Re-creates the saved Ports and reads them back.
    async fn restore(&self, plan: &ChangePlan, names: &[OvsName]) -> Restore {
        let result = async {
            let db = self.read_db().await?;
            let view = BridgeView::new(&db, &self.config.bridge).map_err(|r| self.backend(r.0))?;
            let args = plan.restore_args(&view);
            self.vsctl(args)
                .run()
                .await
                .map_err(|e| self.process_error(e))?;
            let db = self.read_db().await?;
            let view = BridgeView::new(&db, &self.config.bridge).map_err(|r| self.backend(r.0))?;
            Ok::<_, SwitchError>(plan.restore_differences(&view, names))
        }
        .await;
        match result {
            Ok(diff) if diff.is_empty() => Restore::Restored,
            Ok(diff) => Restore::Failed(format!("read back differs: {}", diff.join("; "))),
            Err(e) => Restore::Failed(e.to_string()),
        }
    }

    /// Plans, applies, verifies; restores on failure.
    async fn change(
        &self,
        ports: &[SwitchPort],
        target: Target,
        wanted: WantedState,
        partner_within: Option<Duration>,
    ) -> Result<Change, SwitchError> {
        let names = self.names(ports)?;
        let _one_at_a_time = self.changing.lock().await;
        let db = self.read_db().await?;
        let view = BridgeView::new(&db, &self.config.bridge).map_err(|r| self.backend(r.0))?;
        let Some(plan) =
            plan::plan_change(&view, &names, target).map_err(|r| self.refused(ports, r.0))?
        else {
            tracing::debug!(switch = %self.name, ports = %PortList(ports.to_vec()), %wanted, "already so");
            return Ok(Change::Unchanged);
        };
        tracing::info!(switch = %self.name, ports = %PortList(ports.to_vec()), %wanted, "changing ports");
        let applied = self.vsctl(plan.apply_args(&self.config.bridge)).run().await;
        let failure = match applied {
            Err(e) => Failure {
                found: self.status(ports, &names).await.unwrap_or_default(),
                mismatches: vec![],
                cause: Some(e.to_string()),
            },
            Ok(_) => match self.verify(ports, &names, wanted, partner_within).await {
                Ok(()) => return Ok(Change::Applied),
                Err(f) => f,
            },
        };
        tracing::warn!(switch = %self.name, ports = %PortList(ports.to_vec()), %wanted, "change did not hold; restoring");
        let restore = self.restore(&plan, &names).await;
        Err(SwitchError::ChangeFailed(Box::new(ChangeFailure {
            switch: self.name.clone(),
            ports: PortList(ports.to_vec()),
            wanted,
            found: FoundState(failure.found),
            mismatches: failure.mismatches,
            cause: failure.cause,
            restore,
        })))
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

/// A member's partner, while its LACP information is current and names a
/// system.
fn partner_of(show: &appctl::LacpShow, member: &OvsName) -> Option<LacpPartner> {
    let m = show.members.iter().find(|m| m.name == member.as_str())?;
    let system_id = m.partner_sys_id?;
    if m.status != appctl::MemberLacpStatus::Current {
        return None;
    }
    Some(LacpPartner {
        system_id,
        collecting: m.partner_state.collecting,
        distributing: m.partner_state.distributing,
    })
}

impl Topology for OpenVSwitch {
    fn name(&self) -> &str {
        &self.name
    }
}

#[async_trait]
impl Switch for OpenVSwitch {
    fn switch_name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> SwitchCapabilities {
        SwitchCapabilities {
            lacp_fallback: true,
            reports_lacp_partner: true,
        }
    }

    async fn get_port_status(&self, ports: &[SwitchPort]) -> Result<Vec<PortStatus>, SwitchError> {
        let names = self.names(ports)?;
        self.status(ports, &names).await
    }

    async fn set_ports_access_mode(
        &self,
        ports: &[SwitchPort],
        vlan: VlanId,
    ) -> Result<Change, SwitchError> {
        self.change(
            ports,
            Target::Access { vlan },
            WantedState::Access { vlan },
            None,
        )
        .await
    }

    async fn set_ports_lacp_mode(
        &self,
        ports: &[SwitchPort],
        lag: LagId,
        vlan: VlanId,
        options: LacpOptions,
    ) -> Result<Change, SwitchError> {
        let target = Target::Lacp {
            lag,
            vlan,
            fallback: options.fallback,
        };
        let wanted = WantedState::Lacp {
            lag,
            vlan,
            fallback: options.fallback,
            partner: options.partner_within.is_some(),
        };
        self.change(ports, target, wanted, options.partner_within)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ovs_names_are_validated() {
        for ok in ["sw", "swa", "bond12", "eth0.10", "a_b-c"] {
            assert_eq!(ok.parse::<OvsName>().unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "-x",
            "tag=5",
            "a b",
            "a:b",
            "1/1/3",
            "a\"b",
            "x;y",
            "sixteen-chars-xx",
        ] {
            assert!(bad.parse::<OvsName>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn partners_count_only_while_current() {
        let show =
            appctl::parse_lacp_show(include_str!("fixtures/lacp_show_negotiated.txt")).unwrap();
        let p = partner_of(&show, &"swa".parse().unwrap()).unwrap();
        assert!(p.is_forwarding());
        assert_eq!(p.system_id, "7e:67:4e:8e:c0:4c".parse().unwrap());
        assert!(partner_of(&show, &"zz".parse().unwrap()).is_none());
        let expired =
            appctl::parse_lacp_show(include_str!("fixtures/lacp_show_expired.txt")).unwrap();
        assert!(partner_of(&expired, &"swa".parse().unwrap()).is_none());
        let defaulted =
            appctl::parse_lacp_show(include_str!("fixtures/lacp_show_defaulted.txt")).unwrap();
        assert!(partner_of(&defaulted, &"swb".parse().unwrap()).is_none());
    }
}
