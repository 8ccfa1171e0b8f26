//! Parsers of the Cisco `show` output Harmony reads. Everything here is
//! untrusted device output: each row parses into typed values or the
//! whole output is refused with the offending line; port names in it are
//! validated into [`SwitchPort`] (and only ever compared, never sent).
//!
//! Formats, from the fixtures cited in `/work/shared/notes/vendor-apis.md`
//! §3:
//! - `show interfaces status` (IOS) / `show interface status` (NX-OS, the
//!   Status column cut to 9 characters: `notconnec`, `xcvrAbsen`):
//!   ntc-templates `tests/cisco_ios/show_interfaces_status/
//!   cisco_ios_show_interfaces_status.raw`, `tests/cisco_nxos/
//!   show_interface_status/cisco_nxos_show_interface_status.raw` [C1, C2];
//! - `show etherchannel summary` (IOS, also `Te0/0/2(bndl)` on IOS-XE) /
//!   `show port-channel summary` (NX-OS, a `Type` column and a two-line
//!   header): ntc-templates `tests/cisco_ios/show_etherchannel_summary/
//!   show_etherchannel_summary{,2}.raw`, `tests/cisco_nxos/
//!   show_port-channel_summary/cisco_nxos_show_port-channel_summary{2,3}.raw`
//!   [C3, C4];
//! - `show lacp neighbor`: genieparser `src/genie/libs/parser/{iosxe,nxos}/
//!   tests/ShowLacpNeighbor/cli/equal/golden_output_output.txt` [C5]; port
//!   state bits (0 activity … 4 collecting, 5 distributing, 6 defaulted,
//!   7 expired) from the Catalyst `show lacp` field reference [C12].

use crate::domain::text::SafeText;
use crate::domain::{LacpPartner, LagId, MacAddress, SwitchPort, VlanId};

/// A line of device output that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The line, sanitised and bounded.
    pub line: String,
    pub reason: String,
}

fn bad(line: &str, reason: impl Into<String>) -> ParseError {
    ParseError {
        line: SafeText::bounded(line, 200).to_string(),
        reason: reason.into(),
    }
}

/// Interface name prefixes, long and short, as IOS and NX-OS print them;
/// both spell the same interface (`GigabitEthernet1/0/2` = `Gi1/0/2`).
const PREFIXES: &[(&str, &str)] = &[
    ("gigabitethernet", "gi"),
    ("tengigabitethernet", "te"),
    ("twentyfivegige", "twe"),
    ("fortygigabitethernet", "fo"),
    ("hundredgige", "hu"),
    ("fastethernet", "fa"),
    ("ethernet", "eth"),
    ("port-channel", "po"),
];

/// The form two names of one interface share: the lower-case short prefix
/// and the rest (`Eth1/3`, `ethernet1/3` and `Ethernet1/3` are `eth1/3`).
pub fn canonical(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_alphabetic() || c == '-'))
        .unwrap_or(lower.len());
    let (prefix, rest) = lower.split_at(split);
    let short = PREFIXES
        .iter()
        .find(|(long, short)| prefix == *long || prefix == *short)
        .map(|(_, s)| *s)
        .unwrap_or(prefix);
    format!("{short}{rest}")
}

/// Whether the device's name `reported` is the port `asked`.
pub fn same_port(asked: &SwitchPort, reported: &SwitchPort) -> bool {
    canonical(asked.as_str()) == canonical(reported.as_str())
}

/// The port-channel interface of a LAG id, if `name` is one (`Po10`,
/// `port-channel10`, `Port-channel10`).
pub fn port_channel_id(name: &SwitchPort) -> Option<LagId> {
    canonical(name.as_str())
        .strip_prefix("po")
        .and_then(|n| n.parse().ok())
}

/// One row of `show interface(s) status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRow {
    pub port: SwitchPort,
    /// As printed (NX-OS: at most 9 characters), without a trailing `:`.
    pub status: String,
    /// The access VLAN; `None` for `trunk`, `routed`, `unassigned`, `--`.
    pub vlan: Option<VlanId>,
    /// The Vlan column as printed (bounded, sanitised).
    pub vlan_text: String,
    pub speed_mbps: Option<u32>,
}

impl StatusRow {
    /// Administratively shut (`disabled` on IOS and NX-OS).
    pub fn admin_up(&self) -> bool {
        self.status != "disabled"
    }

    pub fn oper_up(&self) -> bool {
        self.status == "connected"
    }

    /// Error-disabled (IOS `err-disabled`, NX-OS `errDisabl…`), a fault.
    pub fn fault(&self) -> Option<String> {
        let s = self.status.to_ascii_lowercase();
        (s.starts_with("err-dis") || s.starts_with("errdis"))
            .then(|| format!("status {}", self.status))
    }
}

/// `a-1000` → 1000, `1000` → 1000, `10G`/`a-10G` → 10 000, `auto` → none.
fn speed(s: &str) -> Option<u32> {
    let s = s.strip_prefix("a-").unwrap_or(s);
    if let Some(g) = s.strip_suffix('G') {
        return g.parse::<u32>().ok().and_then(|g| g.checked_mul(1000));
    }
    s.parse().ok()
}

/// Parses `show interfaces status` (IOS) or `show interface status`
/// (NX-OS). The Name column may hold spaces, so the Status is the token
/// that covers the header's `Status` column.
pub fn parse_interface_status(text: &str) -> Result<Vec<StatusRow>, ParseError> {
    let mut rows = Vec::new();
    let mut status_col = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("---") {
            continue;
        }
        if status_col.is_none() {
            if line.starts_with("Port") && line.contains("Status") && line.contains("Vlan") {
                status_col = line.find("Status");
                continue;
            }
            return Err(bad(
                line,
                "expected the header line (Port Name Status Vlan ...)",
            ));
        }
        let Some(col) = status_col else { continue };
        // Tokens with their byte offsets.
        let mut tokens = Vec::new();
        let mut start = None;
        for (i, c) in line.char_indices() {
            match (c.is_whitespace(), start) {
                (false, None) => start = Some(i),
                (true, Some(s)) => {
                    tokens.push((s, &line[s..i]));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            tokens.push((s, &line[s..]));
        }
        let Some(&(_, port)) = tokens.first() else {
            continue;
        };
        let port: SwitchPort = port
            .parse()
            .map_err(|e| bad(line, format!("port name: {e}")))?;
        // The status token: the first after the port that reaches the
        // Status column.
        let Some(idx) = tokens
            .iter()
            .enumerate()
            .skip(1)
            .find(|(_, (s, t))| s + t.len() > col)
            .map(|(i, _)| i)
        else {
            return Err(bad(line, "no Status column"));
        };
        let rest = &tokens[idx..];
        if rest.len() < 4 {
            return Err(bad(line, "expected Status, Vlan, Duplex and Speed"));
        }
        let status = rest[0].1.trim_end_matches(':');
        if status.is_empty()
            || status.len() > 16
            || !status
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(bad(line, "unexpected Status"));
        }
        let vlan_text = rest[1].1;
        let vlan = if vlan_text.bytes().all(|b| b.is_ascii_digit()) {
            Some(
                vlan_text
                    .parse::<VlanId>()
                    .map_err(|e| bad(line, format!("Vlan: {e}")))?,
            )
        } else {
            None
        };
        rows.push(StatusRow {
            port,
            status: status.to_string(),
            vlan,
            vlan_text: SafeText::bounded(vlan_text, 16).to_string(),
            speed_mbps: speed(rest[3].1),
        });
    }
    if status_col.is_none() {
        return Err(bad(
            text.lines().next().unwrap_or(""),
            "no header line: empty output",
        ));
    }
    Ok(rows)
}

/// One channel group of `show etherchannel summary` / `show port-channel
/// summary`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelGroup {
    pub lag: LagId,
    /// `LACP`, `PAgP`, `NONE`, `-` as printed.
    pub protocol: String,
    pub members: Vec<ChannelMember>,
}

impl ChannelGroup {
    pub fn is_lacp(&self) -> bool {
        self.protocol == "LACP"
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelMember {
    pub port: SwitchPort,
    /// The flags in parentheses: `P`/`bndl` bundled, `s`/`susp` suspended,
    /// `I`/`indep` individual, `D` down, `H` hot-standby.
    pub flags: String,
}

/// `Te6/4(P)` → (`Te6/4`, `P`).
fn flagged(token: &str) -> Option<(&str, &str)> {
    let open = token.find('(')?;
    let inner = token[open + 1..].strip_suffix(')')?;
    Some((&token[..open], inner))
}

/// Parses either summary (IOS `Group Port-channel Protocol Ports`, NX-OS
/// `Group Port-Channel Type Protocol Member Ports`); members wrap onto
/// indented continuation lines.
pub fn parse_channel_summary(text: &str) -> Result<Vec<ChannelGroup>, ParseError> {
    let mut groups: Vec<ChannelGroup> = Vec::new();
    let mut current: Option<usize> = None;
    for line in text.lines() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let Some(first) = tokens.first() else {
            current = None;
            continue;
        };
        let member = |t: &&str| -> Result<Option<ChannelMember>, ParseError> {
            let Some((name, flags)) = flagged(t) else {
                return Ok(None);
            };
            let port = name
                .parse::<SwitchPort>()
                .map_err(|e| bad(line, format!("member name: {e}")))?;
            if flags.is_empty()
                || flags.len() > 8
                || !flags.bytes().all(|b| b.is_ascii_alphabetic())
            {
                return Err(bad(line, "unexpected member flags"));
            }
            Ok(Some(ChannelMember {
                port,
                flags: flags.to_string(),
            }))
        };
        let is_row = first.bytes().all(|b| b.is_ascii_digit())
            && tokens
                .get(1)
                .is_some_and(|t| t.starts_with("Po") && t.contains('('));
        if is_row {
            let lag: LagId = first
                .parse()
                .map_err(|e| bad(line, format!("group: {e}")))?;
            let mut members = Vec::new();
            let mut others = Vec::new();
            for t in &tokens[2..] {
                match member(t)? {
                    Some(m) => members.push(m),
                    None => others.push(*t),
                }
            }
            let Some(protocol) = others.last() else {
                return Err(bad(line, "no Protocol column"));
            };
            if protocol.len() > 8 {
                return Err(bad(line, "unexpected Protocol"));
            }
            if groups.iter().any(|g| g.lag == lag) {
                return Err(bad(line, "group listed twice"));
            }
            groups.push(ChannelGroup {
                lag,
                protocol: protocol.to_string(),
                members,
            });
            current = Some(groups.len() - 1);
            continue;
        }
        let continuation =
            line.starts_with(char::is_whitespace) && tokens.iter().all(|t| flagged(t).is_some());
        match (continuation, current) {
            (true, Some(i)) => {
                for t in &tokens {
                    if let Some(m) = member(t)? {
                        groups[i].members.push(m);
                    }
                }
            }
            _ => current = None,
        }
    }
    Ok(groups)
}

/// What `show lacp neighbor` says of one member's partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbor {
    pub port: SwitchPort,
    pub system_id: MacAddress,
    /// The partner's port state byte.
    pub state: u8,
}

impl Neighbor {
    /// The partner, while its information is current (neither defaulted,
    /// bit 6, nor expired, bit 7) and names a system.
    pub fn partner(&self) -> Option<LacpPartner> {
        if self.state & 0xC0 != 0 || self.system_id.to_string() == "00:00:00:00:00:00" {
            return None;
        }
        Some(LacpPartner {
            system_id: self.system_id,
            collecting: self.state & 0x10 != 0,
            distributing: self.state & 0x20 != 0,
        })
    }
}

fn state_byte(s: &str) -> Option<u8> {
    let hex = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    u8::from_str_radix(hex, 16).ok()
}

/// `001e.49ff.a3e6` (IOS) or `5e-2-0-1-0-7` (NX-OS, after `prio,`).
fn system_id(s: &str) -> Option<MacAddress> {
    let groups: Vec<&str> = if s.contains('.') {
        let parts: Vec<&str> = s.split('.').collect();
        if parts.len() != 3 || parts.iter().any(|p| p.len() != 4) {
            return None;
        }
        parts.iter().flat_map(|p| [&p[..2], &p[2..]]).collect()
    } else {
        s.split('-').collect()
    };
    if groups.len() != 6
        || groups
            .iter()
            .any(|g| g.is_empty() || g.len() > 2 || !g.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return None;
    }
    let text: Vec<String> = groups.iter().map(|g| format!("{g:0>2}")).collect();
    text.join(":").parse().ok()
}

/// Parses `show lacp neighbor`: IOS-XE's one row per port (`Gi2 SA 32768
/// 001e.49ff.a3e6 25s 0x0 0x1 0x1 0x3D`) or NX-OS's two rows per port
/// (`Eth1/1 32768,5e-2-0-1-0-7 0x101 1140 SA`, then `32768 0x8000 0x3d`).
pub fn parse_lacp_neighbors(text: &str) -> Result<Vec<Neighbor>, ParseError> {
    let mut out = Vec::new();
    let mut pending: Option<(SwitchPort, MacAddress)> = None;
    for line in text.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        // IOS-XE: Port Flags Priority DevID Age AdminKey OperKey PortNumber PortState.
        if t.len() == 9
            && t[3].contains('.')
            && let Some(state) = state_byte(t[8])
        {
            let port = t[0]
                .parse()
                .map_err(|e| bad(line, format!("port name: {e}")))?;
            let system_id = system_id(t[3]).ok_or_else(|| bad(line, "unexpected Dev ID"))?;
            out.push(Neighbor {
                port,
                system_id,
                state,
            });
            continue;
        }
        // NX-OS first row: Port Prio,SystemId PortNumber Age Flags.
        if t.len() >= 4
            && let Some((_, sys)) = t[1].split_once(',')
            && t[0].bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        {
            let port = t[0]
                .parse()
                .map_err(|e| bad(line, format!("port name: {e}")))?;
            let id = system_id(sys).ok_or_else(|| bad(line, "unexpected System ID"))?;
            pending = Some((port, id));
            continue;
        }
        // NX-OS second row: PortPriority OperKey PortState.
        if t.len() == 3
            && t[0].bytes().all(|b| b.is_ascii_digit())
            && let Some(state) = state_byte(t[2])
        {
            let Some((port, system_id)) = pending.take() else {
                return Err(bad(line, "a port state without its port"));
            };
            out.push(Neighbor {
                port,
                system_id,
                state,
            });
        }
    }
    if pending.is_some() {
        return Err(bad(
            "",
            "a partner without its port state (output cut short?)",
        ));
    }
    Ok(out)
}

/// Whether `show running-config interface port-channel N` (NX-OS) holds
/// `no lacp suspend-individual` as a line of its own.
pub fn has_no_suspend_individual(text: &str) -> bool {
    text.lines()
        .any(|l| l.trim() == "no lacp suspend-individual")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(s: &str) -> SwitchPort {
        s.parse().unwrap()
    }

    #[test]
    fn names_compare_in_short_and_long_forms() {
        assert!(same_port(&port("GigabitEthernet1/0/2"), &port("Gi1/0/2")));
        assert!(same_port(&port("Ethernet1/3"), &port("Eth1/3")));
        assert!(same_port(&port("port-channel10"), &port("Po10")));
        assert!(!same_port(&port("Eth1/3"), &port("Eth1/30")));
        assert_eq!(port_channel_id(&port("Port-channel7")).unwrap().get(), 7);
        assert!(port_channel_id(&port("Eth1/1")).is_none());
    }

    #[test]
    fn ios_status_with_names_holding_spaces() {
        let text = "Port      Name               Status       Vlan       Duplex  Speed Type\n\
Gi1/0/2   AccessPoint        connected    8          a-full a-1000 10/100/1000BaseTX\n\
Gi1/0/7   Trunk Example      suspended    trunk      a-full a-1000 1000BaseSX SFP\n\
Gi1/0/16  Multi Space to the err-disabled 16         a-half   auto 10/100BaseTX\n\
Gi1/0/17  Multi Space        disabled     16         a-half   auto 10/100BaseTX\n\
Gi1/0/20  No Description     connected:     1         a-full  a-100 10/100/1000BaseTX\n\
Fa1/6   test               notconnect   1            auto    auto 10/100BaseTX\n\
Po1       ethchl             connected    trunk      a-full a-1000\n";
        let rows = parse_interface_status(text).unwrap();
        assert_eq!(rows.len(), 7);
        assert_eq!(rows[0].vlan.unwrap().get(), 8);
        assert_eq!(rows[0].speed_mbps, Some(1000));
        assert!(rows[0].oper_up() && rows[0].admin_up());
        assert_eq!(rows[1].vlan, None);
        assert!(rows[2].fault().is_some());
        assert!(!rows[3].admin_up());
        assert_eq!(rows[4].status, "connected");
        assert_eq!(rows[5].status, "notconnect");
        assert_eq!(rows[6].port, port("Po1"));
    }

    #[test]
    fn nxos_status_truncated() {
        let text = "--------------------------------------------------------------------------------\n\
Port          Name               Status    Vlan      Duplex  Speed   Type\n\
--------------------------------------------------------------------------------\n\
Eth1/3        --                 xcvrAbsen 1         auto    auto    --\n\
Eth1/1        managed by puppet  disabled  routed    auto    auto    SFP-H10GB-CU2M\n\
Po10          --                 noOperMem 1         auto    auto    --\n";
        let rows = parse_interface_status(text).unwrap();
        assert_eq!(rows[0].status, "xcvrAbsen");
        assert!(rows[0].admin_up() && !rows[0].oper_up());
        assert!(!rows[1].admin_up());
        assert_eq!(rows[2].vlan.unwrap().get(), 1);
        assert!(parse_interface_status("Port Name\n").is_err());
        assert!(parse_interface_status("").is_err());
        let hostile = "Port      Name               Status       Vlan       Duplex  Speed Type\n\
Gi1/0/2;reload   x        connected    8          a-full a-1000 x\n";
        let e = parse_interface_status(hostile).unwrap_err();
        assert!(e.reason.contains("port name"), "{e:?}");
    }

    #[test]
    fn summaries_of_both_platforms() {
        let ios = "Group  Port-channel  Protocol    Ports\n\
------+-------------+-----------+-----------------------------------------------\n\
1      Po1(SU)         LACP      Te6/4(P)       Te3/5(P)       Te9/4(P)       \n\
\x20                                Te5/5(P)       \n\
3      Po3(SU)         LACP      Te4/2(P)       Te2/2(P)       \n\
10     Po10(RU)        LACP      Te0/0/2(bndl)  Te0/0/3(susp)\n";
        let g = parse_channel_summary(ios).unwrap();
        assert_eq!(g.len(), 3);
        assert_eq!(g[0].members.len(), 4);
        assert!(g[0].is_lacp());
        assert_eq!(g[2].members[1].flags, "susp");
        let nxos = "Group Port-       Type     Protocol  Member Ports\n\
      Channel\n\
--------------------------------------------------------------------------------\n\
131   Po131(SU)   Eth      LACP      Eth1/1(P)\n\
136   Po136(SD)   Eth      LACP      Eth1/6(D)\n\
811   Po811(RU)   Eth      LACP      Eth15/8(P)   Eth15/28(P)  Eth16/8(P)\n\
\x20                                    Eth16/28(P)\n";
        let g = parse_channel_summary(nxos).unwrap();
        assert_eq!(g.len(), 3);
        assert_eq!(g[1].members[0].port, port("Eth1/6"));
        assert_eq!(g[2].members.len(), 4);
        assert_eq!(g[0].protocol, "LACP");
    }

    #[test]
    fn lacp_neighbors_of_both_platforms() {
        let ios = "Channel group 1 neighbors\n\n\
                  LACP port                        Admin  Oper   Port    Port\n\
Port      Flags   Priority  Dev ID          Age    key    Key    Number  State\n\
Gi2       SA      32768     001e.49ff.a3e6  25s    0x0    0x1    0x1     0x3D\n\
Gi4       SP      32768     001e.49ff.a3e6  15s    0x0    0x2    0x1     0x3C\n";
        let n = parse_lacp_neighbors(ios).unwrap();
        assert_eq!(n.len(), 2);
        let p = n[0].partner().unwrap();
        assert!(p.is_forwarding());
        assert_eq!(p.system_id, "00:1e:49:ff:a3:e6".parse().unwrap());
        assert!(n[1].partner().unwrap().is_forwarding());
        let nxos = "port-channel1 neighbors\nPartner's information\n\
            Partner                Partner                     Partner\n\
Port        System ID              Port Number     Age         Flags\n\
Eth1/1      32768,5e-2-0-1-0-7     0x101           1140        SA\n\n\
            LACP Partner           Partner                     Partner\n\
            Port Priority          Oper Key                    Port State\n\
            32768                  0x8000                      0x3d\n\
Eth1/5      32768,5e-2-0-1-0-7     0x105           834         SA\n\
            32768                  0x1                         0xd\n";
        let n = parse_lacp_neighbors(nxos).unwrap();
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].system_id, "5e:02:00:01:00:07".parse().unwrap());
        assert!(n[0].partner().unwrap().is_forwarding());
        assert!(!n[1].partner().unwrap().is_forwarding());
        let expired = Neighbor {
            state: 0xBD,
            ..n[0].clone()
        };
        assert!(expired.partner().is_none());
        assert!(parse_lacp_neighbors("Eth1/1  32768,5e-2-0-1-0-7  0x101  1140  SA\n").is_err());
    }
}
