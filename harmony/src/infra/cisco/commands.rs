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
/// ports, the port-channels, `end`.
pub fn config_lines(
    platform: Platform,
    ports: &[PortConfig],
    channels: &[ChannelConfig],
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
        };
        let c = ChannelConfig {
            lag: LagId::try_from(5).unwrap(),
            vlan: VlanId::try_from(10).unwrap(),
            fallback: Some(true),
        };
        let lines = config_lines(Platform::Nxos, &[p], &[c]);
        assert_eq!(
            lines,
            [
                "configure terminal",
                "feature lacp",
                "interface Eth1/1",
                "switchport mode access",
                "switchport access vlan 10",
                "channel-group 5 mode active",
                "no shutdown",
                "interface port-channel5",
                "switchport mode access",
                "switchport access vlan 10",
                "shutdown",
                "no lacp suspend-individual",
                "no shutdown",
                "end"
            ]
        );
    }
}
