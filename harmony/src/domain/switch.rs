//! What Harmony knows about switch ports, independent of any vendor: the
//! typed, validated values of the `Switch` capability (the trait is in
//! `topology.rs`): ports, VLANs, LAG ids, port status, LACP partner state;
//! the check that a change took effect, and [`SwitchError`].
//!
//! Port names come from operators, site files and the switches themselves;
//! all of it is untrusted until it parses into a [`SwitchPort`].
//!
//! # PXE and LACP
//!
//! A host's firmware DHCPs on one NIC and speaks no LACP, so its ports are in
//! *access* mode whenever it must PXE boot, and go to an *LACP* LAG only once
//! the installed OS brings its bond up (see the PXE/LACP rule in
//! `DESIGN.md`). *LACP fallback* is a LAG that forwards on one member while no
//! partner speaks LACP (Open vSwitch `other_config:lacp-fallback-ab=true`,
//! AOS-CX `lacp fallback`, NX-OS `no lacp suspend-individual`). What each
//! choice means for PXE:
//!
//! - **Access ports** (no LAG): PXE always works; the installed host's bond
//!   runs without a partner (Linux 802.3ad then passes traffic on one
//!   aggregator, without LACP's failure detection), until the ports are set
//!   to LACP. Ports must go back to access before any reboot that must PXE.
//! - **LAG without fallback**: a PXE-booting host gets nothing (the members
//!   stay suspended / disabled while no LACPDU arrives). Only for hosts whose
//!   OS is up.
//! - **LAG with fallback** ([`SwitchCapabilities::lacp_fallback`],
//!   [`LacpOptions::fallback`]): the LAG stays configured across PXE boots;
//!   the firmware's DHCP goes through the one member the switch picks, which
//!   must be the NIC the firmware boots from (on Open vSwitch the member is
//!   chosen as in active-backup; on MC-LAG pairs the choice is unpredictable),
//!   so a plan uses it only where the boot NIC's link is the one forwarding.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::text::SafeText;
use super::values::{MacAddress, ValueError, string_serde};

/// The longest port name accepted (vendor names are short: `Gi1/0/2`,
/// `Ethernet1/49/1`, `1/1/3`, `bond12`).
pub const MAX_PORT_NAME: usize = 64;
/// The most ports one request may name.
pub const MAX_PORTS_PER_REQUEST: usize = 64;

/// A switch port, as the switch spells it (`1/1/3`, `Ethernet12`,
/// `Gi1/0/2`, an OVS interface name): 1 to [`MAX_PORT_NAME`] characters of
/// `[A-Za-z0-9._/:-]`, starting with a letter or digit. No whitespace,
/// quotes, shell or column-syntax characters (`=`, `,`, `;`...).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SwitchPort(String);

impl SwitchPort {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SwitchPort {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ValueError::new("switch port", s, reason);
        if s.is_empty() {
            return Err(err("is empty"));
        }
        if s.len() > MAX_PORT_NAME {
            return Err(err("is longer than 64 characters"));
        }
        if !s.as_bytes()[0].is_ascii_alphanumeric() {
            return Err(err("must start with a letter or digit"));
        }
        if !s
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'/' | b':' | b'-'))
        {
            return Err(err("may hold only letters, digits and . _ / : -"));
        }
        Ok(Self(s.to_string()))
    }
}

impl fmt::Display for SwitchPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

string_serde!(SwitchPort);

/// An 802.1Q VLAN id usable on an access port: 1 to 4094 (0 and 4095 are
/// reserved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VlanId(u16);

impl VlanId {
    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<u16> for VlanId {
    type Error = ValueError;

    fn try_from(v: u16) -> Result<Self, Self::Error> {
        if !(1..=4094).contains(&v) {
            return Err(ValueError::new(
                "VLAN id",
                &v.to_string(),
                "must be 1 to 4094",
            ));
        }
        Ok(Self(v))
    }
}

impl FromStr for VlanId {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_number(s, "VLAN id").and_then(Self::try_from)
    }
}

impl fmt::Display for VlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A link aggregation (port-channel, LAG, bond) number: 1 to 4096 (NX-OS's
/// range; other switches accept fewer and say so when asked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LagId(u16);

impl LagId {
    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<u16> for LagId {
    type Error = ValueError;

    fn try_from(v: u16) -> Result<Self, Self::Error> {
        if !(1..=4096).contains(&v) {
            return Err(ValueError::new(
                "LAG id",
                &v.to_string(),
                "must be 1 to 4096",
            ));
        }
        Ok(Self(v))
    }
}

impl FromStr for LagId {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_number(s, "LAG id").and_then(Self::try_from)
    }
}

impl fmt::Display for LagId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Plain decimal digits only (no sign, no spaces), at most 5 of them.
fn parse_number(s: &str, field: &'static str) -> Result<u16, ValueError> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(ValueError::new(field, s, "must be a decimal number"));
    }
    s.parse()
        .map_err(|_| ValueError::new(field, s, "is out of range"))
}

macro_rules! number_serde {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_u16(self.0)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = <u16 as serde::Deserialize>::deserialize(d)?;
                Self::try_from(raw).map_err(serde::de::Error::custom)
            }
        }
    };
}
number_serde!(VlanId);
number_serde!(LagId);

/// How a port is configured.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum PortMode {
    /// A plain access port in one VLAN (PXE works).
    Access { vlan: VlanId },
    /// A member of an LACP LAG.
    LacpMember { lag: LagId },
    /// Not part of the switch's forwarding (on Open vSwitch: not on the
    /// bridge). Setting a mode attaches it.
    Detached,
    /// Configured some way Harmony does not manage (a trunk, a LAG without
    /// LACP, a LAG not named as Harmony names them). Harmony changes it only
    /// when asked to set a mode on it, and restores it on failure.
    Other,
}

impl fmt::Display for PortMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortMode::Access { vlan } => write!(f, "access vlan {vlan}"),
            PortMode::LacpMember { lag } => write!(f, "lacp member of lag {lag}"),
            PortMode::Detached => f.write_str("detached"),
            PortMode::Other => f.write_str("other (unmanaged) configuration"),
        }
    }
}

/// The LACP partner a LAG member hears, while its information is current.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LacpPartner {
    /// The partner's LACP system id (a host's bond: usually a NIC's MAC).
    pub system_id: MacAddress,
    pub collecting: bool,
    pub distributing: bool,
}

impl LacpPartner {
    /// The partner takes and sends traffic on this link.
    pub fn is_forwarding(&self) -> bool {
        self.collecting && self.distributing
    }
}

/// What the switch reports for one port.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortStatus {
    pub port: SwitchPort,
    pub admin_up: bool,
    pub oper_up: bool,
    pub speed_mbps: Option<u32>,
    pub mode: PortMode,
    /// The VLAN untagged traffic of the port (or its LAG) belongs to.
    pub vlan: Option<VlanId>,
    pub lag: Option<LagId>,
    /// LACP members only: the partner, while its information is current
    /// (not expired, not defaulted).
    pub partner: Option<LacpPartner>,
    /// What the switch says is wrong with the port (e.g. it could not open
    /// the device).
    pub fault: Option<SafeText>,
}

impl PortStatus {
    /// The port as a fresh switch reports a port nobody configured.
    pub fn detached(port: SwitchPort) -> Self {
        Self {
            port,
            admin_up: false,
            oper_up: false,
            speed_mbps: None,
            mode: PortMode::Detached,
            vlan: None,
            lag: None,
            partner: None,
            fault: None,
        }
    }
}

impl fmt::Display for PortStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let up = |b| if b { "up" } else { "down" };
        write!(
            f,
            "{}: admin {} oper {}, {}",
            self.port,
            up(self.admin_up),
            up(self.oper_up),
            self.mode
        )?;
        if let Some(v) = self.vlan
            && !matches!(self.mode, PortMode::Access { .. })
        {
            write!(f, " vlan {v}")?;
        }
        if let Some(s) = self.speed_mbps {
            write!(f, ", {s} Mb/s")?;
        }
        match &self.partner {
            Some(p) => write!(
                f,
                ", partner {}{}{}",
                p.system_id,
                if p.collecting { " collecting" } else { "" },
                if p.distributing { " distributing" } else { "" }
            )?,
            None if matches!(self.mode, PortMode::LacpMember { .. }) => {
                f.write_str(", no current partner")?
            }
            None => {}
        }
        if let Some(fault) = &self.fault {
            write!(f, ", fault: {fault}")?;
        }
        Ok(())
    }
}

/// What a switch can do beyond the basics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SwitchCapabilities {
    /// A LAG can forward on one member while no partner speaks LACP (see the
    /// module documentation for what it means for PXE).
    pub lacp_fallback: bool,
    /// Port status names each LAG member's LACP partner (system id,
    /// collecting, distributing), so a change can wait for the partner
    /// ([`LacpOptions::partner_within`]). Without it (OPNsense LAGG, whose
    /// API reports configuration only) LACP is verified from the host's
    /// side: its bond aggregating every slave with one partner.
    pub reports_lacp_partner: bool,
}

/// How an LACP LAG is set up and how its change is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LacpOptions {
    /// Configure LACP fallback (refused when the switch has none).
    pub fallback: bool,
    /// Besides the configuration, wait up to this long for every member to
    /// have a current partner in collecting and distributing state, all
    /// members the same partner system; `None` verifies the configuration
    /// only (e.g. a fallback LAG set before the host boots).
    pub partner_within: Option<Duration>,
}

/// The state a change asks for, as the verification reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WantedState {
    Access {
        vlan: VlanId,
    },
    Lacp {
        lag: LagId,
        vlan: VlanId,
        fallback: bool,
        partner: bool,
    },
}

impl fmt::Display for WantedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WantedState::Access { vlan } => write!(f, "admin up, access vlan {vlan}"),
            WantedState::Lacp {
                lag,
                vlan,
                fallback,
                partner,
            } => {
                write!(f, "admin up, lacp member of lag {lag} vlan {vlan}")?;
                if *fallback {
                    f.write_str(" with fallback")?;
                }
                if *partner {
                    f.write_str(", one partner collecting and distributing on every member")?;
                }
                Ok(())
            }
        }
    }
}

impl WantedState {
    /// Why `found` is not this state for `ports` (empty: it is). The
    /// partner is looked at only when the state asks for one.
    pub fn mismatches(&self, ports: &[SwitchPort], found: &[PortStatus]) -> Vec<String> {
        let mut out = Vec::new();
        let mut partners = BTreeSet::new();
        for port in ports {
            let Some(st) = found.iter().find(|s| &s.port == port) else {
                out.push(format!("{port}: not reported"));
                continue;
            };
            if !st.admin_up {
                out.push(format!("{port}: admin down"));
            }
            if let Some(fault) = &st.fault {
                out.push(format!("{port}: fault: {fault}"));
            }
            match self {
                WantedState::Access { vlan } => {
                    if st.mode != (PortMode::Access { vlan: *vlan }) {
                        out.push(format!("{port}: {}", st.mode));
                    }
                }
                WantedState::Lacp {
                    lag, vlan, partner, ..
                } => {
                    if st.mode != (PortMode::LacpMember { lag: *lag }) {
                        out.push(format!("{port}: {}", st.mode));
                    }
                    if st.vlan != Some(*vlan) {
                        match st.vlan {
                            Some(v) => out.push(format!("{port}: vlan {v}")),
                            None => out.push(format!("{port}: no vlan")),
                        }
                    }
                    if *partner {
                        match &st.partner {
                            Some(p) if p.is_forwarding() => {
                                partners.insert(p.system_id);
                            }
                            Some(p) => out.push(format!(
                                "{port}: partner {} not collecting and distributing",
                                p.system_id
                            )),
                            None => out.push(format!("{port}: no current LACP partner")),
                        }
                    }
                }
            }
        }
        if partners.len() > 1 {
            let list: Vec<String> = partners.iter().map(ToString::to_string).collect();
            out.push(format!(
                "members hear different partners: {}",
                list.join(", ")
            ));
        }
        out
    }
}

/// Ports as a list for messages: `swa, swb`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortList(pub Vec<SwitchPort>);

impl fmt::Display for PortList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(none)");
        }
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// The ports' state as read back, for messages: `swa: ...; swb: ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundState(pub Vec<PortStatus>);

impl fmt::Display for FoundState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("nothing read back");
        }
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

/// Whether the ports were put back after a failed change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restore {
    /// Put back as they were, and read back so.
    Restored,
    /// Putting them back failed too: the ports may be in neither state.
    Failed(String),
}

impl Restore {
    /// Whether the ports `now` read back are as they were `before` (mode,
    /// VLAN, admin state; each port matched by name): `Restored`, else
    /// `Failed` naming every port that is not back.
    pub fn from_read_back(before: &[PortStatus], now: &[PortStatus]) -> Restore {
        let diff: Vec<String> = before
            .iter()
            .filter(|b| {
                !now.iter().any(|n| {
                    n.port == b.port
                        && n.mode == b.mode
                        && n.vlan == b.vlan
                        && n.admin_up == b.admin_up
                })
            })
            .map(|b| format!("{} is not back to {}", b.port, b.mode))
            .collect();
        if diff.is_empty() {
            Restore::Restored
        } else {
            Restore::Failed(format!("read back differs: {}", diff.join("; ")))
        }
    }
}

impl fmt::Display for Restore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Restore::Restored => f.write_str("the ports were put back as they were"),
            Restore::Failed(why) => write!(f, "putting the ports back FAILED: {why}"),
        }
    }
}

/// A switch operation failed. Every variant names the switch; a failed
/// change names the ports, the state asked for, the state read back and
/// whether the ports were put back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SwitchError {
    #[error("switch {switch}: refused for ports {ports}: {reason}")]
    Refused {
        switch: String,
        ports: PortList,
        reason: String,
    },
    #[error("switch {switch}: {feature} is not supported by this switch")]
    Unsupported {
        switch: String,
        feature: &'static str,
    },
    /// A change did not hold (boxed: the error stays small).
    #[error(transparent)]
    ChangeFailed(Box<ChangeFailure>),
    #[error("switch {switch}: unexpected output of {source_name}: {reason}: {line:?}")]
    Output {
        switch: String,
        source_name: &'static str,
        /// The offending line, sanitised and bounded.
        line: String,
        reason: String,
    },
    #[error("switch {switch}: {message}")]
    Backend { switch: String, message: String },
}

/// A change that did not hold: the switch, the ports, the state asked for,
/// the state read back, what differs, and whether the ports were put back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "switch {switch}: ports {ports}: wanted {wanted}; found {found}; {}{}; {restore}",
    mismatches.join(", "),
    cause.as_ref().map(|c| format!(" ({c})")).unwrap_or_default()
)]
pub struct ChangeFailure {
    pub switch: String,
    pub ports: PortList,
    pub wanted: WantedState,
    pub found: FoundState,
    /// What differs (empty when the change itself failed).
    pub mismatches: Vec<String>,
    /// Why the change failed before it could be read back, if it did.
    pub cause: Option<String>,
    pub restore: Restore,
}

/// Checks a request: at least one port, none twice, at most
/// [`MAX_PORTS_PER_REQUEST`].
pub fn check_ports(switch: &str, ports: &[SwitchPort]) -> Result<(), SwitchError> {
    let refuse = |reason: &str| SwitchError::Refused {
        switch: switch.to_string(),
        ports: PortList(ports.to_vec()),
        reason: reason.to_string(),
    };
    if ports.is_empty() {
        return Err(refuse("no ports given"));
    }
    if ports.len() > MAX_PORTS_PER_REQUEST {
        return Err(refuse("more than 64 ports in one request"));
    }
    let distinct: BTreeSet<&SwitchPort> = ports.iter().collect();
    if distinct.len() != ports.len() {
        return Err(refuse("a port is named twice"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(s: &str) -> SwitchPort {
        s.parse().unwrap()
    }

    #[test]
    fn port_names_are_validated() {
        for ok in [
            "1/1/3",
            "Ethernet12",
            "Gi1/0/2",
            "swa",
            "eth0.10",
            "Po10",
            "e:1_2-3",
        ] {
            assert_eq!(port(ok).as_str(), ok);
        }
        let long = "a".repeat(65);
        for bad in [
            "",
            " swa",
            "swa ",
            "sw a",
            "-swa",
            "/1",
            "a;reboot",
            "a$(id)",
            "a`id`",
            "a'b",
            "a\"b",
            "a\nb",
            "a\tb",
            "tag=5",
            "a,b",
            "a|b",
            "a&b",
            "a>b",
            "a\\b",
            "ä",
            long.as_str(),
        ] {
            let e = bad.parse::<SwitchPort>().unwrap_err();
            assert_eq!(e.field, "switch port", "{bad:?}");
        }
        // Deserializing validates too.
        assert!(serde_json::from_str::<SwitchPort>("\"a b\"").is_err());
        assert_eq!(
            serde_json::from_str::<SwitchPort>("\"1/1/3\"").unwrap(),
            port("1/1/3")
        );
    }

    #[test]
    fn vlans_and_lags_are_range_checked() {
        assert_eq!("1".parse::<VlanId>().unwrap().get(), 1);
        assert_eq!("4094".parse::<VlanId>().unwrap().get(), 4094);
        for bad in [
            "0", "4095", "65535", "99999", "-1", "+5", " 5", "5 ", "", "0x10", "1e3",
        ] {
            let e = bad.parse::<VlanId>().unwrap_err();
            assert_eq!(e.field, "VLAN id", "{bad:?}");
        }
        assert!(VlanId::try_from(0).is_err());
        assert!(VlanId::try_from(4095).is_err());
        assert!(serde_json::from_str::<VlanId>("4095").is_err());
        assert_eq!(serde_json::from_str::<VlanId>("10").unwrap().get(), 10);
        assert_eq!("4096".parse::<LagId>().unwrap().get(), 4096);
        for bad in ["0", "4097", "", "a"] {
            assert_eq!(bad.parse::<LagId>().unwrap_err().field, "LAG id", "{bad:?}");
        }
    }

    #[test]
    fn requests_name_each_port_once() {
        assert!(check_ports("sw", &[port("a"), port("b")]).is_ok());
        let e = check_ports("sw", &[]).unwrap_err();
        assert!(e.to_string().contains("no ports"), "{e}");
        let e = check_ports("sw", &[port("a"), port("a")]).unwrap_err();
        assert!(e.to_string().contains("switch sw") && e.to_string().contains("twice"));
    }

    fn member(p: &str, lag: u16, partner: Option<(&str, bool)>) -> PortStatus {
        PortStatus {
            port: port(p),
            admin_up: true,
            oper_up: true,
            speed_mbps: Some(10_000),
            mode: PortMode::LacpMember {
                lag: LagId::try_from(lag).unwrap(),
            },
            vlan: Some(VlanId::try_from(10).unwrap()),
            lag: Some(LagId::try_from(lag).unwrap()),
            partner: partner.map(|(mac, fwd)| LacpPartner {
                system_id: mac.parse().unwrap(),
                collecting: fwd,
                distributing: fwd,
            }),
            fault: None,
        }
    }

    #[test]
    fn verification_names_every_difference() {
        let ports = [port("a"), port("b")];
        let vlan = VlanId::try_from(10).unwrap();
        let lag = LagId::try_from(1).unwrap();
        let wanted = WantedState::Lacp {
            lag,
            vlan,
            fallback: false,
            partner: true,
        };
        let good = [
            member("a", 1, Some(("02:00:00:00:00:01", true))),
            member("b", 1, Some(("02:00:00:00:00:01", true))),
        ];
        assert!(wanted.mismatches(&ports, &good).is_empty());
        let config_only = WantedState::Lacp {
            lag,
            vlan,
            fallback: false,
            partner: false,
        };
        let lonely = [member("a", 1, None), member("b", 1, None)];
        assert!(config_only.mismatches(&ports, &lonely).is_empty());
        assert_eq!(wanted.mismatches(&ports, &lonely).len(), 2);

        let split = [
            member("a", 1, Some(("02:00:00:00:00:01", true))),
            member("b", 2, Some(("02:00:00:00:00:02", false))),
        ];
        let m = wanted.mismatches(&ports, &split).join("; ");
        assert!(m.contains("b: lacp member of lag 2"), "{m}");
        assert!(m.contains("not collecting"), "{m}");
        let two = [
            member("a", 1, Some(("02:00:00:00:00:01", true))),
            member("b", 1, Some(("02:00:00:00:00:02", true))),
        ];
        assert!(
            wanted
                .mismatches(&ports, &two)
                .join(";")
                .contains("different partners")
        );

        let access = WantedState::Access { vlan };
        let mut down = PortStatus::detached(port("a"));
        down.fault = Some(SafeText::new("could not open network device"));
        let m = access.mismatches(&ports, &[down]).join("; ");
        assert!(m.contains("a: admin down"), "{m}");
        assert!(m.contains("a: fault"), "{m}");
        assert!(m.contains("a: detached"), "{m}");
        assert!(m.contains("b: not reported"), "{m}");
    }

    #[test]
    fn a_failed_change_names_switch_ports_and_both_states() {
        let e = SwitchError::ChangeFailed(Box::new(ChangeFailure {
            switch: "ovs sw".into(),
            ports: PortList(vec![port("a"), port("b")]),
            wanted: WantedState::Access {
                vlan: VlanId::try_from(10).unwrap(),
            },
            found: FoundState(vec![member("a", 1, None)]),
            mismatches: vec!["a: lacp member of lag 1".into()],
            cause: None,
            restore: Restore::Restored,
        }));
        let s = e.to_string();
        for part in [
            "switch ovs sw",
            "ports a, b",
            "wanted admin up, access vlan 10",
            "found a: admin up oper up, lacp member of lag 1 vlan 10",
            "put back",
        ] {
            assert!(s.contains(part), "{part:?} missing in {s}");
        }
    }
}
