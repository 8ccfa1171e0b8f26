//! What `ovs-vswitchd` says about a bond at run time: `ovs-appctl
//! lacp/show BOND` (each member's LACP state and partner) and `ovs-appctl
//! bond/show BOND` (the bond's LACP status, fallback, members enabled).
//! Untrusted switch output: a line of an unexpected shape, an unknown state
//! word or a malformed system id is a [`ParseError`] naming the line; keys
//! this version does not know are skipped (newer releases add lines).
//! Releases before 2.15 say `slave` where later ones say `member`; both
//! are read.

use std::collections::BTreeMap;

use crate::domain::MacAddress;

use super::db::ParseError;

/// A member's LACP information: `current` (fresh), `expired` (the partner
/// fell silent, the information is old) or `defaulted` (never heard one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberLacpStatus {
    Current,
    Expired,
    Defaulted,
}

/// The flags of an LACP actor or partner state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LacpState {
    pub activity: bool,
    pub timeout: bool,
    pub aggregation: bool,
    pub synchronized: bool,
    pub collecting: bool,
    pub distributing: bool,
    pub defaulted: bool,
    pub expired: bool,
}

/// One member in `lacp/show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LacpMember {
    /// As printed (untrusted; validated by the caller before use).
    pub name: String,
    pub status: MemberLacpStatus,
    pub attached: bool,
    /// `None` when OVS prints all zeros (no partner heard).
    pub partner_sys_id: Option<MacAddress>,
    pub partner_state: LacpState,
}

/// `lacp/show` for one bond.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LacpShow {
    pub bond: String,
    /// `status: active negotiated`: LACP agreed with a partner.
    pub negotiated: bool,
    pub sys_id: Option<MacAddress>,
    pub members: Vec<LacpMember>,
}

/// `bond/show` for one bond.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BondShow {
    pub bond: String,
    pub bond_mode: Option<String>,
    /// `negotiated`, `configured` or `off`.
    pub lacp_status: Option<String>,
    pub lacp_fallback_ab: Option<bool>,
    /// Member name to whether it is enabled (carries traffic).
    pub members: BTreeMap<String, bool>,
}

/// The system id OVS prints for a partner it never heard.
const NO_SYSTEM: &str = "00:00:00:00:00:00";

fn err(reason: &str, line: &str) -> ParseError {
    ParseError::new(reason, line)
}

/// `---- NAME ----`.
fn header(line: &str) -> Option<&str> {
    line.strip_prefix("---- ")?.strip_suffix(" ----")
}

/// `key: value` (value may be empty).
fn key_value(line: &str) -> Option<(&str, &str)> {
    let (k, v) = line.trim().split_once(':')?;
    Some((k.trim(), v.trim()))
}

fn mac(value: &str, line: &str) -> Result<MacAddress, ParseError> {
    value
        .parse()
        .map_err(|_| err("not a system id (MAC address)", line))
}

fn parse_state(value: &str, line: &str) -> Result<LacpState, ParseError> {
    let mut s = LacpState::default();
    for word in value.split_whitespace() {
        let flag = match word {
            "activity" => &mut s.activity,
            "timeout" => &mut s.timeout,
            "aggregation" => &mut s.aggregation,
            "synchronized" => &mut s.synchronized,
            "collecting" => &mut s.collecting,
            "distributing" => &mut s.distributing,
            "defaulted" => &mut s.defaulted,
            "expired" => &mut s.expired,
            _ => return Err(err("unknown LACP state flag", line)),
        };
        *flag = true;
    }
    Ok(s)
}

/// Parses `ovs-appctl lacp/show BOND` (the output of one bond).
pub fn parse_lacp_show(out: &str) -> Result<LacpShow, ParseError> {
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().unwrap_or_default();
    let bond = header(first).ok_or_else(|| err("expected ---- BOND ----", first))?;
    let mut show = LacpShow {
        bond: bond.to_string(),
        negotiated: false,
        sys_id: None,
        members: Vec::new(),
    };
    for line in lines {
        if header(line).is_some() {
            return Err(err("more than one bond in the output", line));
        }
        if let Some(rest) = line
            .strip_prefix("member: ")
            .or_else(|| line.strip_prefix("slave: "))
        {
            // `NAME: STATUS ATTACHED`; the name itself has no `:`.
            let (name, state) = rest
                .rsplit_once(':')
                .ok_or_else(|| err("expected member: NAME: STATUS", line))?;
            let words: Vec<&str> = state.split_whitespace().collect();
            let (status, attached) = match words.as_slice() {
                [s, a] => (*s, *a),
                _ => return Err(err("expected a status and attached/detached", line)),
            };
            let status = match status {
                "current" => MemberLacpStatus::Current,
                "expired" => MemberLacpStatus::Expired,
                "defaulted" => MemberLacpStatus::Defaulted,
                _ => return Err(err("unknown member status", line)),
            };
            let attached = match attached {
                "attached" => true,
                "detached" => false,
                _ => return Err(err("neither attached nor detached", line)),
            };
            show.members.push(LacpMember {
                name: name.trim().to_string(),
                status,
                attached,
                partner_sys_id: None,
                partner_state: LacpState::default(),
            });
            continue;
        }
        let (key, value) = key_value(line).ok_or_else(|| err("expected key: value", line))?;
        match (key, show.members.last_mut()) {
            ("status", None) => {
                let words: Vec<&str> = value.split_whitespace().collect();
                if !matches!(
                    words.first(),
                    Some(&"active") | Some(&"passive") | Some(&"off")
                ) {
                    return Err(err("unknown LACP status", line));
                }
                show.negotiated = words.contains(&"negotiated");
            }
            ("sys_id", None) => show.sys_id = Some(mac(value, line)?),
            // All zeros: no partner heard (defaulted).
            ("partner sys_id", Some(m)) if value == NO_SYSTEM => m.partner_sys_id = None,
            ("partner sys_id", Some(m)) => m.partner_sys_id = Some(mac(value, line)?),
            ("partner state", Some(m)) => m.partner_state = parse_state(value, line)?,
            ("actor state", Some(_)) => {
                parse_state(value, line)?;
            }
            _ => {}
        }
    }
    Ok(show)
}

/// Parses `ovs-appctl bond/show BOND` (the output of one bond).
pub fn parse_bond_show(out: &str) -> Result<BondShow, ParseError> {
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().unwrap_or_default();
    let bond = header(first).ok_or_else(|| err("expected ---- BOND ----", first))?;
    let mut show = BondShow {
        bond: bond.to_string(),
        bond_mode: None,
        lacp_status: None,
        lacp_fallback_ab: None,
        members: BTreeMap::new(),
    };
    let mut in_member = false;
    for line in lines {
        if header(line).is_some() {
            return Err(err("more than one bond in the output", line));
        }
        if let Some(rest) = line
            .strip_prefix("member ")
            .or_else(|| line.strip_prefix("slave "))
        {
            let (name, state) = rest
                .rsplit_once(':')
                .ok_or_else(|| err("expected member NAME: enabled|disabled", line))?;
            let enabled = match state.trim() {
                "enabled" => true,
                "disabled" => false,
                _ => return Err(err("member neither enabled nor disabled", line)),
            };
            show.members.insert(name.trim().to_string(), enabled);
            in_member = true;
            continue;
        }
        let indented = line.starts_with(' ') || line.starts_with('\t');
        if in_member && indented {
            // `active member`, `may_enable: true`, `hash N: M kB load`.
            let t = line.trim();
            if key_value(t).is_none() && t != "active member" && t != "active slave" {
                return Err(err("unexpected line in a member", line));
            }
            continue;
        }
        in_member = false;
        let (key, value) = key_value(line).ok_or_else(|| err("expected key: value", line))?;
        match key {
            "bond_mode" => show.bond_mode = Some(value.to_string()),
            "lacp_status" => {
                if !matches!(value, "negotiated" | "configured" | "off") {
                    return Err(err("unknown lacp_status", line));
                }
                show.lacp_status = Some(value.to_string());
            }
            "lacp_fallback_ab" => {
                show.lacp_fallback_ab = Some(match value {
                    "true" => true,
                    "false" => false,
                    _ => return Err(err("lacp_fallback_ab is not true or false", line)),
                })
            }
            _ => {}
        }
    }
    Ok(show)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from Open vSwitch 3.1.0 (userspace datapath): bond `lag1`
    // (swa, swb) on one bridge against bond `bond0` of a second bridge.
    const NEGOTIATED: &str = include_str!("fixtures/lacp_show_negotiated.txt");
    /// The partner bond was just removed: information expired.
    const EXPIRED: &str = include_str!("fixtures/lacp_show_expired.txt");
    /// No partner for a while (and fallback on).
    const DEFAULTED: &str = include_str!("fixtures/lacp_show_defaulted.txt");
    const BOND_NEGOTIATED: &str = include_str!("fixtures/bond_show_negotiated.txt");
    const BOND_FALLBACK: &str = include_str!("fixtures/bond_show_fallback.txt");
    const BOND_CONFIGURED: &str = include_str!("fixtures/bond_show_configured.txt");

    #[test]
    fn negotiated_members_have_a_forwarding_partner() {
        let s = parse_lacp_show(NEGOTIATED).unwrap();
        assert_eq!(s.bond, "lag1");
        assert!(s.negotiated);
        assert_eq!(s.sys_id, Some("d6:95:21:4d:2a:45".parse().unwrap()));
        assert_eq!(s.members.len(), 2);
        for m in &s.members {
            assert_eq!(m.status, MemberLacpStatus::Current);
            assert!(m.attached);
            assert_eq!(m.partner_sys_id, Some("7e:67:4e:8e:c0:4c".parse().unwrap()));
            assert!(m.partner_state.collecting && m.partner_state.distributing);
            assert!(m.partner_state.synchronized);
        }
        assert_eq!(s.members[0].name, "swa");
        assert_eq!(s.members[1].name, "swb");
    }

    #[test]
    fn expired_and_defaulted_members_are_read_as_such() {
        let s = parse_lacp_show(EXPIRED).unwrap();
        assert!(
            s.members
                .iter()
                .all(|m| m.status == MemberLacpStatus::Expired)
        );
        // The stale partner still claims collecting: only `current` counts.
        assert!(s.members[0].partner_state.collecting);
        let d = parse_lacp_show(DEFAULTED).unwrap();
        assert!(!d.negotiated);
        assert!(
            d.members
                .iter()
                .all(|m| m.status == MemberLacpStatus::Defaulted)
        );
        assert_eq!(d.members[0].partner_sys_id, None);
        assert_eq!(d.members[0].partner_state, LacpState::default());
    }

    #[test]
    fn bond_show_reads_status_fallback_and_members() {
        let n = parse_bond_show(BOND_NEGOTIATED).unwrap();
        assert_eq!(n.bond, "lag1");
        assert_eq!(n.bond_mode.as_deref(), Some("balance-tcp"));
        assert_eq!(n.lacp_status.as_deref(), Some("negotiated"));
        assert_eq!(n.lacp_fallback_ab, Some(false));
        assert_eq!(n.members.get("swa"), Some(&true));
        let f = parse_bond_show(BOND_FALLBACK).unwrap();
        assert_eq!(f.lacp_status.as_deref(), Some("configured"));
        assert_eq!(f.lacp_fallback_ab, Some(true));
        assert!(f.members.values().all(|e| *e), "fallback forwards");
        let c = parse_bond_show(BOND_CONFIGURED).unwrap();
        assert_eq!(c.lacp_fallback_ab, Some(false));
        assert!(c.members.values().all(|e| !*e), "no fallback, no partner");
    }

    #[test]
    fn old_slave_wording_is_read() {
        let old = "---- b ----\nbond_mode: balance-tcp\nlacp_status: negotiated\n\nslave p0: enabled\n  active slave\n  may_enable: true\n";
        let b = parse_bond_show(old).unwrap();
        assert_eq!(b.members.get("p0"), Some(&true));
        let old = "---- b ----\n  status: active negotiated\n\nslave: p0: current attached\n  partner sys_id: 02:00:00:00:00:01\n  partner state: collecting distributing\n";
        let l = parse_lacp_show(old).unwrap();
        assert_eq!(l.members[0].name, "p0");
        assert!(l.members[0].partner_state.distributing);
    }

    #[test]
    fn unexpected_output_is_an_error_naming_the_line() {
        let cases = [
            ("", "expected ---- BOND ----"),
            ("no such lacp object", "expected ---- BOND ----"),
            ("---- b ----\n  status: sideways", "unknown LACP status"),
            ("---- b ----\nmember: p0: current glued", "neither attached"),
            (
                "---- b ----\nmember: p0: fresh attached",
                "unknown member status",
            ),
            ("---- b ----\nmember: p0", "expected member: NAME: STATUS"),
            (
                "---- b ----\nmember: p0: current attached\n  partner sys_id: 02:00:00:00:00",
                "not a system id",
            ),
            (
                "---- b ----\nmember: p0: current attached\n  partner state: collecting \u{1b}[31mevil",
                "unknown LACP state flag",
            ),
            ("---- b ----\nwhat is this", "expected key: value"),
            ("---- b ----\n---- c ----", "more than one bond"),
        ];
        for (input, want) in cases {
            let e = parse_lacp_show(input).unwrap_err();
            assert!(e.to_string().contains(want), "{want:?} not in {e}");
            assert!(!e.line.contains('\u{1b}'), "line is sanitised: {e}");
        }
        let bond_cases = [
            ("---- b ----\nlacp_status: maybe", "unknown lacp_status"),
            ("---- b ----\nlacp_fallback_ab: yes", "not true or false"),
            (
                "---- b ----\nmember p0: sleeping",
                "neither enabled nor disabled",
            ),
            (
                "---- b ----\nmember p0: enabled\n  gibberish",
                "unexpected line",
            ),
        ];
        for (input, want) in bond_cases {
            let e = parse_bond_show(input).unwrap_err();
            assert!(e.to_string().contains(want), "{want:?} not in {e}");
        }
    }
}
