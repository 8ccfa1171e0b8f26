//! The command lines Harmony sends to a Cisco switch, built only from
//! typed values ([`SwitchPort`], [`VlanId`], [`LagId`]): nothing read from
//! the device or given as free text reaches a line.
//!
//! Sources (vendor-apis.md §3): IOS-XE `switchport access vlan N`,
//! `switchport mode access`, `channel-group N mode active`, `interface
//! Port-channel N` (genielibs `apis/iosxe/interface/configure.py` [C8]);
//! NX-OS `feature lacp` (off by default [C11]), `channel-group N mode
//! active` (cisco.nxos `nxos_linkagg.py` [C6]), `no lacp
//! suspend-individual` on `interface port-channel N`, the port-channel
//! shut while it changes (learnduty.com "port-channel enhancement and
//! guideline on Nexus switches"; Nexus 5000 design guide p.21 [C10]).
//!
//! `lacp rate fast` on each member, after its `channel-group` (the command
//! is taken only by LACP-enabled interfaces): IOS-XE interface
//! configuration command, "LACP control packets are ingressed at the fast
//! rate, once every 1 second" (Cisco IOS XE Everest 16.5.1a Command
//! Reference, Catalyst 3650, "lacp rate"; Cisco IOS Interface and Hardware
//! Component Command Reference, "lacp rate", from 12.2(18)SXF2); NX-OS
//! `lacp rate fast` on Ethernet members (ansible-collections/cisco.nxos
//! `plugins/module_utils/network/nxos/config/lacp_interfaces/lacp_interfaces.py`,
//! `rate` "applicable only for Ethernet"). Older Catalyst 3560/3750 images
//! lack it: [`PortConfig::fast_rate`] is off for those.
//!
//! A port-channel left without members is removed with `no interface
//! Port-channel N` (IOS) / `no interface port-channel N` (NX-OS), the
//! global form of the `interface` command.

use crate::domain::{LagId, SwitchPort, VlanId};

/// Which CLI the switch speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// IOS and IOS-XE (Catalyst).
    Ios,
    /// NX-OS (Nexus).
    Nxos,
}

impl Platform {
    pub fn interface_status(self) -> &'static str {
        match self {
            Platform::Ios => "show interfaces status",
            Platform::Nxos => "show interface status",
        }
    }

    pub fn channel_summary(self) -> &'static str {
        match self {
            Platform::Ios => "show etherchannel summary",
            Platform::Nxos => "show port-channel summary",
        }
    }

    pub fn lacp_neighbor(self) -> &'static str {
        "show lacp neighbor"
    }

    /// The port-channel interface of `lag`, as the platform spells it.
    pub fn port_channel(self, lag: LagId) -> String {
        match self {
            Platform::Ios => format!("Port-channel{lag}"),
            Platform::Nxos => format!("port-channel{lag}"),
        }
    }

    /// NX-OS: the running configuration of a port-channel (read to verify
    /// LACP fallback).
    pub fn port_channel_config(self, lag: LagId) -> String {
        format!("show running-config interface {}", self.port_channel(lag))
    }

    /// LACP fallback: NX-OS only (`no lacp suspend-individual`); IOS-XE's
    /// `port-channel standalone-disable` default is unconfirmed [C8].
    pub fn has_fallback(self) -> bool {
        self == Platform::Nxos
    }
}

/// How one port is to be configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    pub port: SwitchPort,
    pub vlan: VlanId,
    /// Member of this LAG (active LACP), or a plain access port.
    pub lag: Option<LagId>,
    pub admin_up: bool,
    /// Send `no channel-group` first (the port may be in another LAG now).
    pub leave_lag: bool,
    /// A LAG member: send `lacp rate fast` after its `channel-group`.
    pub fast_rate: bool,
}

/// A port-channel's own settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelConfig {
    pub lag: LagId,
    pub vlan: VlanId,
    /// NX-OS: set `[no] lacp suspend-individual` (the port-channel is shut
    /// around it); `None` leaves it alone.
    pub fallback: Option<bool>,
}

/// The lines of one configuration session: `configure terminal`, the
/// ports, the port-channels, the port-channels to remove (`removed`: left
/// without members by the ports), `end`.
pub fn config_lines(
    platform: Platform,
    ports: &[PortConfig],
    channels: &[ChannelConfig],
    removed: &[LagId],
) -> Vec<String> {
    let mut out = vec!["configure terminal".to_string()];
    if platform == Platform::Nxos && ports.iter().any(|p| p.lag.is_some()) {
        out.push("feature lacp".into());
    }
    for p in ports {
        out.push(format!("interface {}", p.port));
        if p.leave_lag {
            out.push("no channel-group".into());
        }
        out.push("switchport mode access".into());
        out.push(format!("switchport access vlan {}", p.vlan));
        if let Some(lag) = p.lag {
            out.push(format!("channel-group {lag} mode active"));
            if p.fast_rate {
                out.push("lacp rate fast".into());
            }
        }
        out.push(
            if p.admin_up {
                "no shutdown"
            } else {
                "shutdown"
            }
            .into(),
        );
    }
    for c in channels {
        out.push(format!("interface {}", platform.port_channel(c.lag)));
        out.push("switchport mode access".into());
        out.push(format!("switchport access vlan {}", c.vlan));
        if let (Platform::Nxos, Some(fallback)) = (platform, c.fallback) {
            out.push("shutdown".into());
            out.push(if fallback {
                "no lacp suspend-individual".into()
            } else {
                "lacp suspend-individual".into()
            });
            out.push("no shutdown".into());
        }
    }
    for lag in removed {
        out.push(format!("no interface {}", platform.port_channel(*lag)));
    }
    out.push("end".into());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_from_typed_values() {
        let p = PortConfig {
            port: "Eth1/1".parse().unwrap(),
            vlan: VlanId::try_from(10).unwrap(),
            lag: Some(LagId::try_from(5).unwrap()),
            admin_up: true,
            leave_lag: false,
            fast_rate: true,
        };
        let c = ChannelConfig {
            lag: LagId::try_from(5).unwrap(),
            vlan: VlanId::try_from(10).unwrap(),
            fallback: Some(true),
        };
        let old = LagId::try_from(7).unwrap();
        let lines = config_lines(Platform::Nxos, &[p], &[c], &[old]);
        assert_eq!(
            lines,
            [
                "configure terminal",
                "feature lacp",
                "interface Eth1/1",
                "switchport mode access",
                "switchport access vlan 10",
                "channel-group 5 mode active",
                "lacp rate fast",
                "no shutdown",
                "interface port-channel5",
                "switchport mode access",
                "switchport access vlan 10",
                "shutdown",
                "no lacp suspend-individual",
                "no shutdown",
                "no interface port-channel7",
                "end"
            ]
        );
    }
}
