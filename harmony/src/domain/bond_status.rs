//! A host's Linux bond as its kernel reports it in
//! `/proc/net/bonding/<bond>` (`RemoteCommand::BondStatus`
//! reads it over SSH): the mode, the bond's and each slave's MII status,
//! the aggregator each slave is in, and the LACP partner each slave hears.
//! [`parse_bond_status`] validates that untrusted text into a
//! [`BondStatus`]; [`BondStatus::up_problems`] and
//! [`BondStatus::lacp_problems`] say whether the installed OS has its bond
//! up, and whether it is aggregated with an LACP partner.
//!
//! The format is the kernel's `bond_info_show_master` /
//! `bond_info_show_slave` (`drivers/net/bonding/bond_procfs.c`): `Key: value`
//! lines; an `802.3ad info` block with `System MAC address` and `Active
//! Aggregator Info`; one block per slave starting at `Slave Interface:`,
//! with, for 802.3ad and a reader with `CAP_NET_ADMIN`, `details actor lacp
//! pdu:` / `details partner lacp pdu:` blocks whose `port state` is the
//! 802.1AX state byte. Lines this version does not know are skipped (newer
//! kernels add some); a known line with a bad value is an error naming the
//! line.

use std::collections::BTreeSet;
use std::fmt;

use super::text::{SafeText, safe_text};
use super::values::{InterfaceName, MacAddress};

/// The largest file accepted (a bond with 64 slaves is about 40 KiB).
pub const MAX_BOND_STATUS_BYTES: usize = 256 * 1024;
/// The most slaves accepted.
pub const MAX_SLAVES: usize = 64;

/// The all-zero MAC the kernel prints for a partner it never heard.
const NO_PARTNER: MacAddress = MacAddress::new([0; 6]);

/// The file did not parse: which line (bounded, sanitised) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bond status: {reason}: line {line_no} {line:?}")]
pub struct BondStatusError {
    pub line_no: usize,
    pub line: String,
    pub reason: String,
}

fn error(line_no: usize, line: &str, reason: impl Into<String>) -> BondStatusError {
    BondStatusError {
        line_no,
        line: safe_text(line, 120),
        reason: reason.into(),
    }
}

/// The bonding mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BondMode {
    /// `IEEE 802.3ad Dynamic link aggregation` (mode 4, LACP).
    Lacp,
    /// Any other mode, as the kernel names it (`fault-tolerance
    /// (active-backup)`, ...).
    Other(SafeText),
}

impl fmt::Display for BondMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BondMode::Lacp => f.write_str("802.3ad"),
            BondMode::Other(name) => write!(f, "{name}"),
        }
    }
}

/// The 802.1AX port state byte (`port state: 61`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LacpPortState(pub u8);

impl LacpPortState {
    pub fn activity(self) -> bool {
        self.0 & 0x01 != 0
    }
    pub fn synchronization(self) -> bool {
        self.0 & 0x08 != 0
    }
    pub fn collecting(self) -> bool {
        self.0 & 0x10 != 0
    }
    pub fn distributing(self) -> bool {
        self.0 & 0x20 != 0
    }
    pub fn defaulted(self) -> bool {
        self.0 & 0x40 != 0
    }
    pub fn expired(self) -> bool {
        self.0 & 0x80 != 0
    }
}

/// One side of a slave's LACP exchange (`details actor/partner lacp pdu`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LacpPdu {
    pub system_mac: MacAddress,
    pub port_state: LacpPortState,
}

/// `Active Aggregator Info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveAggregator {
    pub id: u16,
    pub ports: u16,
    /// All zeros when no partner was heard.
    pub partner_mac: MacAddress,
}

/// One slave (a NIC of the bond).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BondSlave {
    pub name: InterfaceName,
    pub mii_up: bool,
    pub permanent_mac: Option<MacAddress>,
    /// The aggregator it is in (802.3ad; `None` for `N/A` or other modes).
    pub aggregator_id: Option<u16>,
    pub actor: Option<LacpPdu>,
    pub partner: Option<LacpPdu>,
}

/// A bond as `/proc/net/bonding/<bond>` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BondStatus {
    pub mode: BondMode,
    pub mii_up: bool,
    /// 802.3ad: the LACP system id the bond announces (`System MAC address`).
    pub system_mac: Option<MacAddress>,
    pub active_aggregator: Option<ActiveAggregator>,
    pub slaves: Vec<BondSlave>,
}

/// Where the parser is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    Master,
    Slave,
    Actor,
    Partner,
}

fn up_down(value: &str, no: usize, line: &str) -> Result<bool, BondStatusError> {
    match value {
        "up" => Ok(true),
        // `going down`, `going back`, `fail`: not up.
        "down" | "going down" | "going back" | "fail" => Ok(false),
        _ => Err(error(no, line, "MII status is not up or down")),
    }
}

/// A MAC, or all zeros (the kernel's "no partner").
fn mac(value: &str, no: usize, line: &str) -> Result<MacAddress, BondStatusError> {
    if value == "00:00:00:00:00:00" {
        return Ok(NO_PARTNER);
    }
    value
        .parse()
        .map_err(|_| error(no, line, "not a MAC address"))
}

fn number<N: std::str::FromStr>(value: &str, no: usize, line: &str) -> Result<N, BondStatusError> {
    if value.is_empty() || value.len() > 5 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error(no, line, "not a small decimal number"));
    }
    value
        .parse()
        .map_err(|_| error(no, line, "number out of range"))
}

/// Parses the text of `/proc/net/bonding/<bond>`.
pub fn parse_bond_status(text: &str) -> Result<BondStatus, BondStatusError> {
    if text.len() > MAX_BOND_STATUS_BYTES {
        return Err(error(0, "", "longer than 256 KiB"));
    }
    let mut mode = None;
    let mut mii_up = None;
    let mut system_mac = None;
    let mut aggregator: (Option<u16>, Option<u16>, Option<MacAddress>) = (None, None, None);
    let mut slaves: Vec<BondSlave> = Vec::new();
    let mut block = Block::Master;
    let mut pdu_mac: Option<MacAddress> = None;
    for (i, raw) in text.lines().enumerate() {
        let no = i + 1;
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let lower = line.to_ascii_lowercase();
        if lower == "details actor lacp pdu:" || lower == "details partner lacp pdu:" {
            if block == Block::Master {
                return Err(error(no, line, "LACP details before any slave"));
            }
            block = if lower.contains("actor") {
                Block::Actor
            } else {
                Block::Partner
            };
            pdu_mac = None;
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if key == "Slave Interface" {
            if slaves.len() == MAX_SLAVES {
                return Err(error(no, line, "more than 64 slaves"));
            }
            let name: InterfaceName = value.parse().map_err(|e| error(no, line, format!("{e}")))?;
            if slaves.iter().any(|s| s.name == name) {
                return Err(error(no, line, "slave listed twice"));
            }
            slaves.push(BondSlave {
                name,
                mii_up: false,
                permanent_mac: None,
                aggregator_id: None,
                actor: None,
                partner: None,
            });
            block = Block::Slave;
            continue;
        }
        match block {
            Block::Master => match key {
                "Bonding Mode" => {
                    mode = Some(if value == "IEEE 802.3ad Dynamic link aggregation" {
                        BondMode::Lacp
                    } else {
                        BondMode::Other(SafeText::new(value))
                    });
                }
                "MII Status" => mii_up = Some(up_down(value, no, line)?),
                "System MAC address" => system_mac = Some(mac(value, no, line)?),
                "Aggregator ID" => aggregator.0 = Some(number(value, no, line)?),
                "Number of ports" => aggregator.1 = Some(number(value, no, line)?),
                "Partner Mac Address" => aggregator.2 = Some(mac(value, no, line)?),
                _ => {}
            },
            Block::Slave => {
                let Some(slave) = slaves.last_mut() else {
                    continue;
                };
                match key {
                    "MII Status" => slave.mii_up = up_down(value, no, line)?,
                    // Not an Ethernet address (e.g. InfiniBand's 20 bytes).
                    "Permanent HW addr" => slave.permanent_mac = value.parse().ok(),
                    "Aggregator ID" if value == "N/A" => slave.aggregator_id = None,
                    "Aggregator ID" => slave.aggregator_id = Some(number(value, no, line)?),
                    _ => {}
                }
            }
            Block::Actor | Block::Partner => {
                let Some(slave) = slaves.last_mut() else {
                    continue;
                };
                match key {
                    "system mac address" => pdu_mac = Some(mac(value, no, line)?),
                    "port state" => {
                        let Some(system_mac) = pdu_mac else {
                            return Err(error(no, line, "port state before the system MAC"));
                        };
                        let state: u16 = number(value, no, line)?;
                        let state = u8::try_from(state)
                            .map_err(|_| error(no, line, "port state over 255"))?;
                        let pdu = Some(LacpPdu {
                            system_mac,
                            port_state: LacpPortState(state),
                        });
                        if block == Block::Actor {
                            slave.actor = pdu;
                        } else {
                            slave.partner = pdu;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    let Some(mode) = mode else {
        return Err(error(0, "", "no `Bonding Mode:` line (not a bonding file)"));
    };
    let Some(mii_up) = mii_up else {
        return Err(error(0, "", "no `MII Status:` line for the bond"));
    };
    let active_aggregator = match aggregator {
        (Some(id), Some(ports), Some(partner_mac)) => Some(ActiveAggregator {
            id,
            ports,
            partner_mac,
        }),
        (None, None, None) => None,
        _ => {
            return Err(error(0, "", "incomplete `Active Aggregator Info`"));
        }
    };
    Ok(BondStatus {
        mode,
        mii_up,
        system_mac,
        active_aggregator,
        slaves,
    })
}

impl BondStatus {
    /// The LACP system id the bond announces: `System MAC address`, else
    /// the actor system of its first slave that reports one.
    pub fn system_id(&self) -> Option<MacAddress> {
        self.system_mac.or_else(|| {
            self.slaves
                .iter()
                .find_map(|s| s.actor.map(|a| a.system_mac))
        })
    }

    pub fn slave(&self, name: &InterfaceName) -> Option<&BondSlave> {
        self.slaves.iter().find(|s| &s.name == name)
    }

    /// Why the bond is not up as the installed OS should have it (empty: it
    /// is): 802.3ad mode, MII up, each of `slaves` enslaved with MII up
    /// (no slave named: at least one slave up).
    pub fn up_problems(&self, slaves: &[InterfaceName]) -> Vec<String> {
        let mut out = Vec::new();
        if self.mode != BondMode::Lacp {
            out.push(format!("mode is {}, not 802.3ad", self.mode));
        }
        if !self.mii_up {
            out.push("MII status down".to_string());
        }
        if slaves.is_empty() && !self.slaves.iter().any(|s| s.mii_up) {
            out.push("no slave is up".to_string());
        }
        for name in slaves {
            match self.slave(name) {
                None => out.push(format!("{name} is not a slave")),
                Some(s) if !s.mii_up => out.push(format!("{name}: MII status down")),
                Some(_) => {}
            }
        }
        out
    }

    /// Why the bond is not aggregated with one LACP partner (empty: it
    /// is): [`BondStatus::up_problems`], an active aggregator holding every
    /// one of `slaves` (all slaves when none is named) with a partner heard,
    /// and each of those slaves' partner (when the kernel details it) that
    /// partner, collecting and distributing.
    pub fn lacp_problems(&self, slaves: &[InterfaceName]) -> Vec<String> {
        let mut out = self.up_problems(slaves);
        let Some(agg) = self.active_aggregator else {
            out.push("no active aggregator".to_string());
            return out;
        };
        if agg.partner_mac == NO_PARTNER {
            out.push(format!("aggregator {} has no LACP partner", agg.id));
        }
        let names: Vec<&InterfaceName> = if slaves.is_empty() {
            self.slaves.iter().map(|s| &s.name).collect()
        } else {
            slaves.iter().collect()
        };
        let mut partners = BTreeSet::new();
        for name in names {
            let Some(s) = self.slave(name) else {
                continue;
            };
            if s.aggregator_id != Some(agg.id) {
                match s.aggregator_id {
                    Some(id) => out.push(format!(
                        "{name} is in aggregator {id}, not the active {}",
                        agg.id
                    )),
                    None => out.push(format!("{name} is in no aggregator")),
                }
            }
            if let Some(p) = s.partner {
                partners.insert(p.system_mac);
                if p.system_mac == NO_PARTNER || p.port_state.defaulted() {
                    out.push(format!("{name}: no LACP partner heard"));
                } else if !(p.port_state.collecting() && p.port_state.distributing()) {
                    out.push(format!(
                        "{name}: partner {} not collecting and distributing (port state {})",
                        p.system_mac, p.port_state.0
                    ));
                }
            }
        }
        partners.remove(&NO_PARTNER);
        partners.insert(agg.partner_mac);
        partners.remove(&NO_PARTNER);
        if partners.len() > 1 {
            let list: Vec<String> = partners.iter().map(ToString::to_string).collect();
            out.push(format!(
                "slaves hear different partners: {}",
                list.join(", ")
            ));
        }
        out
    }
}

impl fmt::Display for BondStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let up = |b| if b { "up" } else { "down" };
        write!(f, "{} {}", self.mode, up(self.mii_up))?;
        if let Some(id) = self.system_id() {
            write!(f, ", system {id}")?;
        }
        if let Some(a) = self.active_aggregator {
            write!(f, ", aggregator {} partner {}", a.id, a.partner_mac)?;
        }
        for s in &self.slaves {
            write!(f, "; {} {}", s.name, up(s.mii_up))?;
            if let Some(id) = s.aggregator_id {
                write!(f, " agg {id}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEGOTIATED: &str = include_str!("fixtures/bonding/negotiated.txt");
    const NO_PARTNER_FILE: &str = include_str!("fixtures/bonding/no_partner.txt");

    fn names(list: &[&str]) -> Vec<InterfaceName> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn a_negotiated_802_3ad_bond_is_up_with_its_partner() {
        let b = parse_bond_status(NEGOTIATED).unwrap();
        assert_eq!(b.mode, BondMode::Lacp);
        assert!(b.mii_up);
        let me: MacAddress = "9c:63:c0:0b:37:4e".parse().unwrap();
        let switch: MacAddress = "3c:c7:86:87:8a:21".parse().unwrap();
        assert_eq!(b.system_id(), Some(me));
        assert_eq!(
            b.active_aggregator,
            Some(ActiveAggregator {
                id: 5,
                ports: 2,
                partner_mac: switch
            })
        );
        assert_eq!(b.slaves.len(), 2);
        for s in &b.slaves {
            assert!(s.mii_up);
            assert_eq!(s.aggregator_id, Some(5));
            let p = s.partner.unwrap();
            assert_eq!(p.system_mac, switch);
            assert!(p.port_state.collecting() && p.port_state.distributing());
            assert!(p.port_state.synchronization() && !p.port_state.defaulted());
            assert_eq!(s.actor.unwrap().system_mac, me);
        }
        assert_eq!(
            b.slaves[1].permanent_mac,
            Some("9c:63:c0:0b:37:4f".parse().unwrap())
        );
        let both = names(&["enp1s0f0", "enp1s0f1"]);
        assert_eq!(b.up_problems(&both), Vec::<String>::new());
        assert_eq!(b.lacp_problems(&both), Vec::<String>::new());
        assert_eq!(b.lacp_problems(&[]), Vec::<String>::new());
        // A slave the plan expects that the bond does not have.
        assert_eq!(
            b.lacp_problems(&names(&["enp1s0f0", "eno3"])),
            ["eno3 is not a slave"]
        );
        assert!(
            b.to_string()
                .contains("aggregator 5 partner 3c:c7:86:87:8a:21")
        );
    }

    #[test]
    fn a_bond_without_partner_is_up_but_not_aggregated() {
        let b = parse_bond_status(NO_PARTNER_FILE).unwrap();
        assert_eq!(b.mode, BondMode::Lacp);
        assert!(b.mii_up);
        assert_eq!(b.system_id(), Some("00:25:90:85:81:f2".parse().unwrap()));
        assert_eq!(b.slaves[0].aggregator_id, Some(1));
        assert_eq!(b.slaves[1].aggregator_id, Some(2));
        assert!(!b.slaves[0].mii_up && b.slaves[1].mii_up);
        assert!(b.slaves[1].partner.unwrap().port_state.activity());
        // Up on one slave: the bond is up; both named: one is down.
        assert_eq!(b.up_problems(&[]), Vec::<String>::new());
        let both = names(&["enp1s0f0", "enp1s0f1"]);
        assert_eq!(b.up_problems(&both), ["enp1s0f0: MII status down"]);
        let why = b.lacp_problems(&names(&["enp1s0f1"])).join("; ");
        assert!(why.contains("aggregator 2 has no LACP partner"), "{why}");
        assert!(why.contains("enp1s0f1: no LACP partner heard"), "{why}");
    }

    #[test]
    fn other_modes_and_missing_details_are_read() {
        // The old kernel format (no 802.3ad details, no system MAC) of
        // Documentation/networking/bonding.rst, section 4.1.
        let text = "Ethernet Channel Bonding Driver: 2.6.1 (October 29, 2004)\n\
                    Bonding Mode: load balancing (round-robin)\n\
                    Currently Active Slave: eth0\nMII Status: up\n\
                    MII Polling Interval (ms): 1000\nUp Delay (ms): 0\n\
                    Down Delay (ms): 0\n\nSlave Interface: eth1\nMII Status: up\n\
                    Link Failure Count: 1\n\nSlave Interface: eth0\nMII Status: up\n\
                    Link Failure Count: 1\n";
        let b = parse_bond_status(text).unwrap();
        assert_eq!(
            b.mode,
            BondMode::Other(SafeText::new("load balancing (round-robin)"))
        );
        assert_eq!(b.system_id(), None);
        assert_eq!(b.slaves.len(), 2);
        assert_eq!(
            b.up_problems(&[]),
            ["mode is load balancing (round-robin), not 802.3ad"]
        );
        assert!(
            b.lacp_problems(&[])
                .contains(&"no active aggregator".to_string())
        );
    }

    #[test]
    fn hostile_or_broken_files_are_refused_naming_the_line() {
        let cases = [
            ("", "no `Bonding Mode:`"),
            (
                "cat: /proc/net/bonding/bond0: No such file or directory\n",
                "no `Bonding Mode:`",
            ),
            (
                "Bonding Mode: IEEE 802.3ad Dynamic link aggregation\n",
                "no `MII Status:`",
            ),
            (
                "Bonding Mode: x\nMII Status: sideways\n",
                "MII status is not up or down",
            ),
            (
                "Bonding Mode: x\nMII Status: up\nSlave Interface: eth0; reboot\n",
                "invalid interface name",
            ),
            (
                "Bonding Mode: x\nMII Status: up\nSystem MAC address: 00:11\n",
                "not a MAC address",
            ),
            (
                "Bonding Mode: x\nMII Status: up\nAggregator ID: -1\n",
                "not a small decimal number",
            ),
            (
                "Bonding Mode: x\nMII Status: up\nAggregator ID: 1\n",
                "incomplete `Active Aggregator Info`",
            ),
            (
                "Bonding Mode: x\nMII Status: up\nSlave Interface: a\nSlave Interface: a\n",
                "slave listed twice",
            ),
            (
                "Bonding Mode: x\nMII Status: up\ndetails actor lacp pdu:\n",
                "LACP details before any slave",
            ),
            (
                "Bonding Mode: x\nMII Status: up\nSlave Interface: a\n\
                 details partner lacp pdu:\n    port state: 63\n",
                "port state before the system MAC",
            ),
            (
                "Bonding Mode: x\nMII Status: up\nSlave Interface: a\n\
                 details partner lacp pdu:\n system mac address: 02:00:00:00:00:01\n\
                 port state: 300\n",
                "port state over 255",
            ),
        ];
        for (text, want) in cases {
            let e = parse_bond_status(text).unwrap_err();
            assert!(e.to_string().contains(want), "{text:?}: {e}");
        }
        // The offending line is shown sanitised: no control characters.
        let e = parse_bond_status("Bonding Mode: x\nMII Status: \x1b[2Jup\n").unwrap_err();
        assert!(!e.to_string().contains('\x1b'), "{e}");
        assert_eq!(e.line_no, 2);
        // Bounds: size and slave count.
        let huge = "x".repeat(MAX_BOND_STATUS_BYTES + 1);
        assert!(parse_bond_status(&huge).is_err());
        let mut many = String::from("Bonding Mode: x\nMII Status: up\n");
        for i in 0..=MAX_SLAVES {
            many.push_str(&format!("Slave Interface: eth{i}\n"));
        }
        let e = parse_bond_status(&many).unwrap_err();
        assert!(e.to_string().contains("more than 64 slaves"), "{e}");
    }
}
