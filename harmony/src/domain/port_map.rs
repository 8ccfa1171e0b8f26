//! Which switch ports each host's NICs are cabled to: from the LLDP
//! neighbour the agent reports per NIC (chassis id + port id), else from
//! the site file's `switch_ports`. The two sources are compared, never
//! silently reconciled: an LLDP neighbour the site file contradicts, a port
//! two hosts claim, a chassis that is none of the configured switches, a
//! port id that is not a valid port name, or a configured port that no NIC
//! sees although every NIC reports its neighbour, is a [`PortFinding`]
//! naming the host, the NIC's MAC and both values; a host with a finding
//! has no ports ([`PortMap::ports_of`] refuses) until someone fixes the
//! cabling or the site file.
//!
//! Pure: the site values come in as plain parameters ([`SwitchIdentity`],
//! [`ConfiguredPort`]), the LLDP data as the validated [`Nic`]s of the
//! Inventory.

use std::collections::BTreeMap;
use std::fmt;

use super::hardware::Nic;
use super::switch::SwitchPort;
use super::text::SafeText;
use super::values::{HostId, MacAddress};

/// A switch of the site and how it shows up in LLDP: its LLDP chassis id
/// (a MAC, or the text the switch sends) and/or the system name it
/// announces. A neighbour matches when its chassis id equals `chassis_id`
/// (MACs compared as MACs, text case-insensitively) or, with no chassis id
/// configured, when its system name equals `system_name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchIdentity {
    /// The switch's name in the site file.
    pub name: String,
    pub chassis_id: Option<String>,
    pub system_name: Option<String>,
}

impl SwitchIdentity {
    fn matches(&self, chassis: &str, system_name: Option<&str>) -> bool {
        if let Some(want) = &self.chassis_id {
            return match (want.parse::<MacAddress>(), chassis.parse::<MacAddress>()) {
                (Ok(a), Ok(b)) => a == b,
                _ => want.eq_ignore_ascii_case(chassis),
            };
        }
        match (&self.system_name, system_name) {
            (Some(want), Some(got)) => want.eq_ignore_ascii_case(got),
            _ => false,
        }
    }
}

/// One port of one switch: `leaf-1:1/1/3`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CabledPort {
    pub switch: String,
    pub port: SwitchPort,
}

impl fmt::Display for CabledPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.switch, self.port)
    }
}

/// A port the site file gives a host; `nic` when it says which NIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredPort {
    pub at: CabledPort,
    pub nic: Option<MacAddress>,
}

/// What is known of one host's cabling.
#[derive(Debug, Clone, Copy)]
pub struct HostCabling<'a> {
    pub host: &'a HostId,
    /// The agent's NICs (their LLDP neighbours).
    pub nics: &'a [Nic],
    /// The site file's `switch_ports` for the host.
    pub configured: &'a [ConfiguredPort],
}

/// Where a host's port came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortSource {
    Lldp,
    SiteFile,
    /// LLDP and the site file agree.
    Both,
}

impl fmt::Display for PortSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PortSource::Lldp => "LLDP",
            PortSource::SiteFile => "the site file",
            PortSource::Both => "LLDP and the site file",
        })
    }
}

/// One port of a host, and the NIC on it when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub at: CabledPort,
    pub nic: Option<MacAddress>,
    pub source: PortSource,
}

fn list(ports: &[CabledPort]) -> String {
    if ports.is_empty() {
        return "none".into();
    }
    ports
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn nic_text(nic: &Option<MacAddress>) -> String {
    nic.map_or_else(|| "an unnamed NIC".to_string(), |m| format!("NIC {m}"))
}

/// A disagreement about the cabling, reported, never resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortFinding {
    #[error(
        "host {host}: NIC {nic} sees {lldp} over LLDP, but the site file says {}",
        list(site)
    )]
    Disagreement {
        host: HostId,
        nic: MacAddress,
        lldp: CabledPort,
        /// The site file's port(s) for that NIC (all the host's ports when
        /// it does not say which NIC).
        site: Vec<CabledPort>,
    },
    #[error(
        "host {host}: NIC {nic} sees LLDP chassis \"{chassis_id}\" (system {}) port \"{port_id}\", \
         which is none of the configured switches",
        system_name.as_ref().map_or("unnamed", |s| s.as_str())
    )]
    UnknownChassis {
        host: HostId,
        nic: MacAddress,
        chassis_id: SafeText,
        system_name: Option<SafeText>,
        port_id: SafeText,
    },
    #[error("host {host}: NIC {nic}: LLDP port id \"{port_id}\" of switch {switch}: {reason}")]
    BadPortId {
        host: HostId,
        nic: MacAddress,
        switch: String,
        port_id: SafeText,
        reason: String,
    },
    #[error(
        "port {port} is claimed by host {first} ({}, from {first_source}) and host {second} ({}, from {second_source})",
        nic_text(first_nic),
        nic_text(second_nic)
    )]
    ClaimedTwice {
        port: CabledPort,
        first: HostId,
        first_nic: Option<MacAddress>,
        first_source: PortSource,
        second: HostId,
        second_nic: Option<MacAddress>,
        second_source: PortSource,
    },
    #[error(
        "host {host}: the site file puts it on {site}, but every NIC reports its LLDP neighbour \
         and none is there (LLDP sees {})",
        list(lldp)
    )]
    NotSeenByLldp {
        host: HostId,
        site: CabledPort,
        lldp: Vec<CabledPort>,
    },
}

impl PortFinding {
    /// Whether the finding concerns `host`.
    pub fn concerns(&self, host: &HostId) -> bool {
        match self {
            PortFinding::Disagreement { host: h, .. }
            | PortFinding::UnknownChassis { host: h, .. }
            | PortFinding::BadPortId { host: h, .. }
            | PortFinding::NotSeenByLldp { host: h, .. } => h == host,
            PortFinding::ClaimedTwice { first, second, .. } => first == host || second == host,
        }
    }
}

/// A host's ports could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortMapError {
    #[error("host {host}: its cabling is in question: {}", findings.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Findings {
        host: HostId,
        findings: Vec<PortFinding>,
    },
    #[error("host {host}: no port on switch {switch} (known: {})", list(known))]
    NoPorts {
        host: HostId,
        switch: String,
        known: Vec<CabledPort>,
    },
}

/// Every host's ports, and every disagreement found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortMap {
    pub hosts: BTreeMap<HostId, Vec<HostPort>>,
    pub findings: Vec<PortFinding>,
}

impl PortMap {
    /// The findings about `host`.
    pub fn findings_for(&self, host: &HostId) -> Vec<PortFinding> {
        self.findings
            .iter()
            .filter(|f| f.concerns(host))
            .cloned()
            .collect()
    }

    /// `host`'s ports on `switch`, in name order; refused while any
    /// finding concerns the host, or when it has none there.
    pub fn ports_of(&self, host: &HostId, switch: &str) -> Result<Vec<SwitchPort>, PortMapError> {
        let findings = self.findings_for(host);
        if !findings.is_empty() {
            return Err(PortMapError::Findings {
                host: host.clone(),
                findings,
            });
        }
        let all = self.hosts.get(host).map(Vec::as_slice).unwrap_or_default();
        let mut ports: Vec<SwitchPort> = all
            .iter()
            .filter(|p| p.at.switch == switch)
            .map(|p| p.at.port.clone())
            .collect();
        ports.sort();
        if ports.is_empty() {
            return Err(PortMapError::NoPorts {
                host: host.clone(),
                switch: switch.to_string(),
                known: all.iter().map(|p| p.at.clone()).collect(),
            });
        }
        Ok(ports)
    }
}

/// Whether `nic` is the NIC the site file names by `mac`.
fn is_nic(nic: &Nic, mac: &MacAddress) -> bool {
    nic.mac.as_ref() == Some(mac) || nic.permanent_mac.as_ref() == Some(mac)
}

/// Maps every host's ports (see the module documentation for the rules).
pub fn map_ports(switches: &[SwitchIdentity], hosts: &[HostCabling<'_>]) -> PortMap {
    let mut map = PortMap::default();
    for h in hosts {
        let ports = host_ports(switches, h, &mut map.findings);
        map.hosts.insert(h.host.clone(), ports);
    }
    // One port, one host NIC.
    let mut owner: BTreeMap<&CabledPort, (&HostId, &HostPort)> = BTreeMap::new();
    let mut twice = Vec::new();
    for (host, ports) in &map.hosts {
        for p in ports {
            match owner.get(&p.at) {
                Some((first, fp)) if *first != host => twice.push(PortFinding::ClaimedTwice {
                    port: p.at.clone(),
                    first: (*first).clone(),
                    first_nic: fp.nic,
                    first_source: fp.source,
                    second: host.clone(),
                    second_nic: p.nic,
                    second_source: p.source,
                }),
                Some(_) => {}
                None => {
                    owner.insert(&p.at, (host, p));
                }
            }
        }
    }
    map.findings.extend(twice);
    map
}

fn host_ports(
    switches: &[SwitchIdentity],
    h: &HostCabling<'_>,
    findings: &mut Vec<PortFinding>,
) -> Vec<HostPort> {
    let host = h.host;
    let physical: Vec<&Nic> = h
        .nics
        .iter()
        .filter(|n| !n.is_virtual && n.identity_mac().is_some())
        .collect();
    // What LLDP says, NIC by NIC.
    let mut seen: Vec<(&Nic, MacAddress, CabledPort)> = Vec::new();
    let mut reporting = 0usize;
    for nic in &physical {
        let Some(mac) = nic.identity_mac() else {
            continue;
        };
        let Some(lldp) = &nic.lldp else { continue };
        let (Some(chassis), Some(port_id)) = (&lldp.chassis_id, &lldp.port_id) else {
            continue;
        };
        reporting += 1;
        let system = lldp.system_name.as_ref().map(SafeText::as_str);
        let Some(switch) = switches
            .iter()
            .find(|s| s.matches(chassis.as_str(), system))
        else {
            findings.push(PortFinding::UnknownChassis {
                host: host.clone(),
                nic: mac,
                chassis_id: chassis.clone(),
                system_name: lldp.system_name.clone(),
                port_id: port_id.clone(),
            });
            continue;
        };
        match port_id.as_str().parse::<SwitchPort>() {
            Ok(port) => seen.push((
                nic,
                mac,
                CabledPort {
                    switch: switch.name.clone(),
                    port,
                },
            )),
            Err(e) => findings.push(PortFinding::BadPortId {
                host: host.clone(),
                nic: mac,
                switch: switch.name.clone(),
                port_id: port_id.clone(),
                reason: e.reason.to_string(),
            }),
        }
    }

    let mut out: Vec<HostPort> = Vec::new();
    let all_site: Vec<CabledPort> = h.configured.iter().map(|c| c.at.clone()).collect();
    for (nic, mac, at) in &seen {
        let for_nic: Vec<CabledPort> = h
            .configured
            .iter()
            .filter(|c| c.nic.as_ref().is_some_and(|m| is_nic(nic, m)))
            .map(|c| c.at.clone())
            .collect();
        let agrees = if !for_nic.is_empty() {
            for_nic.contains(at)
        } else {
            // No entry names this NIC: one that names no NIC must match
            // (an entry naming another NIC is that NIC's).
            h.configured.is_empty() || h.configured.iter().any(|c| c.nic.is_none() && &c.at == at)
        };
        if !agrees {
            findings.push(PortFinding::Disagreement {
                host: host.clone(),
                nic: *mac,
                lldp: at.clone(),
                site: if for_nic.is_empty() {
                    all_site.clone()
                } else {
                    for_nic
                },
            });
            continue;
        }
        out.push(HostPort {
            at: at.clone(),
            nic: Some(*mac),
            source: if h.configured.is_empty() {
                PortSource::Lldp
            } else {
                PortSource::Both
            },
        });
    }

    let every_nic_reports = !physical.is_empty() && reporting == physical.len();
    let lldp_ports: Vec<CabledPort> = seen.iter().map(|(_, _, at)| at.clone()).collect();
    for c in h.configured {
        if lldp_ports.contains(&c.at) {
            continue;
        }
        // An entry naming a NIC whose LLDP says otherwise was reported above.
        let nic_has_lldp = c
            .nic
            .as_ref()
            .is_some_and(|m| seen.iter().any(|(nic, _, _)| is_nic(nic, m)));
        if nic_has_lldp {
            continue;
        }
        if every_nic_reports {
            findings.push(PortFinding::NotSeenByLldp {
                host: host.clone(),
                site: c.at.clone(),
                lldp: lldp_ports.clone(),
            });
            continue;
        }
        out.push(HostPort {
            at: c.at.clone(),
            nic: c.nic,
            source: PortSource::SiteFile,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::hardware::Lldp;

    fn host(n: u8) -> HostId {
        HostId::from_macs(&[mac(n, 0)]).unwrap()
    }

    fn mac(host: u8, nic: u8) -> MacAddress {
        MacAddress::new([0x02, 0, 0, 0, host, nic])
    }

    fn at(switch: &str, port: &str) -> CabledPort {
        CabledPort {
            switch: switch.into(),
            port: port.parse().unwrap(),
        }
    }

    fn nic(host: u8, n: u8, lldp: Option<(&str, &str, Option<&str>)>) -> Nic {
        let mut nic = Nic::new(format!("eno{n}").parse().unwrap());
        nic.mac = Some(mac(host, n));
        nic.lldp = lldp.map(|(chassis, port, name)| Lldp {
            chassis_id: Some(SafeText::new(chassis)),
            port_id: Some(SafeText::new(port)),
            system_name: name.map(SafeText::new),
            port_description: None,
        });
        nic
    }

    fn switches() -> Vec<SwitchIdentity> {
        vec![
            SwitchIdentity {
                name: "leaf-1".into(),
                chassis_id: Some("00:1B:21:AB:CD:EF".into()),
                system_name: None,
            },
            SwitchIdentity {
                name: "leaf-2".into(),
                chassis_id: None,
                system_name: Some("leaf-2.example".into()),
            },
        ]
    }

    fn site(ports: &[(&str, &str, Option<MacAddress>)]) -> Vec<ConfiguredPort> {
        ports
            .iter()
            .map(|(s, p, nic)| ConfiguredPort {
                at: at(s, p),
                nic: *nic,
            })
            .collect()
    }

    const LEAF1: &str = "00:1b:21:ab:cd:ef";

    #[test]
    fn lldp_alone_site_alone_and_both_agreeing_give_the_ports() {
        let (h1, h2, h3) = (host(1), host(2), host(3));
        // Host 1: LLDP only, two switches (chassis MAC any case; system name).
        let n1 = [
            nic(1, 1, Some((LEAF1, "1/1/3", None))),
            nic(
                1,
                2,
                Some(("serial-x", "Ethernet1/3", Some("LEAF-2.example"))),
            ),
        ];
        // Host 2: no LLDP, site file only.
        let n2 = [nic(2, 1, None), nic(2, 2, None)];
        let s2 = site(&[("leaf-1", "1/1/4", None), ("leaf-1", "1/1/5", None)]);
        // Host 3: both, agreeing (one entry names its NIC).
        let n3 = [nic(3, 1, Some((LEAF1, "1/1/6", None))), nic(3, 2, None)];
        let s3 = site(&[
            ("leaf-1", "1/1/6", Some(mac(3, 1))),
            ("leaf-1", "1/1/7", None),
        ]);
        let map = map_ports(
            &switches(),
            &[
                HostCabling {
                    host: &h1,
                    nics: &n1,
                    configured: &[],
                },
                HostCabling {
                    host: &h2,
                    nics: &n2,
                    configured: &s2,
                },
                HostCabling {
                    host: &h3,
                    nics: &n3,
                    configured: &s3,
                },
            ],
        );
        assert_eq!(map.findings, []);
        let p = |s: &str| s.parse::<SwitchPort>().unwrap();
        assert_eq!(map.ports_of(&h1, "leaf-1").unwrap(), [p("1/1/3")]);
        assert_eq!(map.ports_of(&h1, "leaf-2").unwrap(), [p("Ethernet1/3")]);
        assert_eq!(
            map.ports_of(&h2, "leaf-1").unwrap(),
            [p("1/1/4"), p("1/1/5")]
        );
        assert_eq!(
            map.ports_of(&h3, "leaf-1").unwrap(),
            [p("1/1/6"), p("1/1/7")]
        );
        let sources: Vec<PortSource> = map.hosts[&h3].iter().map(|p| p.source).collect();
        assert_eq!(sources, [PortSource::Both, PortSource::SiteFile]);
        assert_eq!(map.hosts[&h3][0].nic, Some(mac(3, 1)));
        let e = map.ports_of(&h2, "leaf-2").unwrap_err();
        assert!(e.to_string().contains("no port on switch leaf-2"), "{e}");
    }

    #[test]
    fn a_disagreement_names_host_nic_and_both_values_and_blocks_the_host() {
        let h = host(1);
        let nics = [
            nic(1, 1, Some((LEAF1, "1/1/9", None))),
            nic(1, 2, Some((LEAF1, "1/1/4", None))),
        ];
        // NIC 1 named on 1/1/3 by the site file; LLDP says 1/1/9.
        let s = site(&[
            ("leaf-1", "1/1/3", Some(mac(1, 1))),
            ("leaf-1", "1/1/4", None),
        ]);
        let map = map_ports(
            &switches(),
            &[HostCabling {
                host: &h,
                nics: &nics,
                configured: &s,
            }],
        );
        assert_eq!(
            map.findings,
            [PortFinding::Disagreement {
                host: h.clone(),
                nic: mac(1, 1),
                lldp: at("leaf-1", "1/1/9"),
                site: vec![at("leaf-1", "1/1/3")],
            }]
        );
        let text = map.findings[0].to_string();
        for part in [
            "02:00:00:00:01:01",
            "leaf-1:1/1/9",
            "leaf-1:1/1/3",
            h.as_str(),
        ] {
            assert!(text.contains(part), "{text} lacks {part}");
        }
        let e = map.ports_of(&h, "leaf-1").unwrap_err();
        assert!(matches!(e, PortMapError::Findings { .. }), "{e}");

        // No NIC named: an LLDP port outside the host's list disagrees with
        // the whole list.
        let nics = [nic(1, 1, Some((LEAF1, "1/1/9", None)))];
        let s = site(&[("leaf-1", "1/1/3", None)]);
        let map = map_ports(
            &switches(),
            &[HostCabling {
                host: &h,
                nics: &nics,
                configured: &s,
            }],
        );
        assert!(
            matches!(&map.findings[0], PortFinding::Disagreement { site, .. } if site == &[at("leaf-1", "1/1/3")]),
            "{:?}",
            map.findings
        );
    }

    #[test]
    fn a_configured_port_no_nic_sees_is_a_finding_only_when_every_nic_reports() {
        let h = host(1);
        let s = site(&[("leaf-1", "1/1/3", None), ("leaf-1", "1/1/4", None)]);
        // Both NICs report; only 1/1/3 is seen.
        let all = [
            nic(1, 1, Some((LEAF1, "1/1/3", None))),
            nic(1, 2, Some((LEAF1, "1/1/3", None))),
        ];
        let map = map_ports(
            &switches(),
            &[HostCabling {
                host: &h,
                nics: &all,
                configured: &s,
            }],
        );
        assert!(
            map.findings.iter().any(|f| matches!(f,
                PortFinding::NotSeenByLldp { site, .. } if site == &at("leaf-1", "1/1/4"))),
            "{:?}",
            map.findings
        );
        // One NIC silent: 1/1/4 may be its port.
        let some = [nic(1, 1, Some((LEAF1, "1/1/3", None))), nic(1, 2, None)];
        let map = map_ports(
            &switches(),
            &[HostCabling {
                host: &h,
                nics: &some,
                configured: &s,
            }],
        );
        assert_eq!(map.findings, []);
        assert_eq!(map.ports_of(&h, "leaf-1").unwrap().len(), 2);
    }

    #[test]
    fn two_hosts_on_one_port_unknown_chassis_and_bad_port_ids_are_findings() {
        let (h1, h2) = (host(1), host(2));
        let n1 = [nic(1, 1, Some((LEAF1, "1/1/3", None)))];
        let n2 = [
            nic(2, 1, None),
            nic(2, 2, Some(("66:55:44:33:22:11", "Gi1/0/2", Some("core")))),
            nic(2, 3, Some((LEAF1, "1/1/3; reload", None))),
        ];
        let s2 = site(&[("leaf-1", "1/1/3", None)]);
        let map = map_ports(
            &switches(),
            &[
                HostCabling {
                    host: &h1,
                    nics: &n1,
                    configured: &[],
                },
                HostCabling {
                    host: &h2,
                    nics: &n2,
                    configured: &s2,
                },
            ],
        );
        let text: Vec<String> = map.findings.iter().map(ToString::to_string).collect();
        let all = text.join("\n");
        assert_eq!(map.findings.len(), 3, "{all}");
        assert!(
            all.contains("\"66:55:44:33:22:11\" (system core) port \"Gi1/0/2\", which is none"),
            "{all}"
        );
        assert!(all.contains("NIC 02:00:00:00:02:02"), "{all}");
        assert!(
            all.contains("LLDP port id \"1/1/3_ reload\" of switch leaf-1: may hold only"),
            "{all}"
        );
        assert!(
            all.contains(&format!("port leaf-1:1/1/3 is claimed by host {h1}")),
            "{all}"
        );
        // Both hosts are blocked by the double claim.
        assert!(map.ports_of(&h1, "leaf-1").is_err());
        assert!(map.ports_of(&h2, "leaf-1").is_err());
    }

    #[test]
    fn virtual_interfaces_and_macless_nics_are_not_hosts_ports() {
        let h = host(1);
        let mut bond = nic(1, 9, Some((LEAF1, "1/1/8", None)));
        bond.is_virtual = true;
        let mut nomac = nic(1, 8, Some((LEAF1, "1/1/7", None)));
        nomac.mac = None;
        let nics = [bond, nomac, nic(1, 1, Some((LEAF1, "1/1/3", None)))];
        let map = map_ports(
            &switches(),
            &[HostCabling {
                host: &h,
                nics: &nics,
                configured: &[],
            }],
        );
        assert_eq!(map.findings, []);
        assert_eq!(
            map.ports_of(&h, "leaf-1").unwrap(),
            ["1/1/3".parse::<SwitchPort>().unwrap()]
        );
    }
}
