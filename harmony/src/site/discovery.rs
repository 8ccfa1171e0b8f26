//! From a validated site file to its [`OKDSetup01Site`]: what makes the
//! site ready for discovery and waits for its hosts, before the
//! installation's spec can be made (that needs the discovered hosts).
//!
//! - the provisioning subnet is scanned until `hosts.bootstrap +
//!   control_plane + workers` hosts are known;
//! - each pinned host (`hosts.pinned[i]`) with `switch_ports` is a
//!   candidate whose ports go to access mode in the switches' access VLAN
//!   first (named by its MAC, reached at its pinned address): the same
//!   ports, VLAN and errors as the installation's spec;
//! - the OS images of `assets` are staged (none given: expected on the
//!   HTTP root already);
//! - `default.ipxe`, `inventory.ks` and the agent are published (`agent`
//!   `None`: the agent is on the HTTP root already);
//! - the pinned roles and host names are assigned once found.
//!
//! Pure: the caller read the agent's digest and the keys ([`site_boot`]).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnetwork::IpNetwork;

use super::SiteFile;
use super::install::{InstallSpecError, access_vlan, pinned_ports};
use crate::domain::ValueError;
use crate::modules::assets::{CentosInventoryAssets, ScosAssets};
use crate::modules::okd::artefacts::SiteBoot;
use crate::modules::okd::setup01::{
    CandidatePorts, DiscoveryBoot, OKDSetup01Inventory, OKDSetup01Site, OsAssets, PinnedRole,
};

/// How long discovery waits for the expected hosts by default: servers
/// booting a live image over the network take minutes each, in parallel.
pub const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The site's `OKDSetup01Site`; `boot` is [`super::install::site_boot`]'s,
/// `agent` the local agent binary to publish (its digest is `boot`'s).
pub fn discovery_score(
    site: &SiteFile,
    boot: SiteBoot,
    agent: Option<PathBuf>,
    timeout: Duration,
) -> Result<OKDSetup01Site, InstallSpecError> {
    let s = site.site();
    let mut inventory =
        OKDSetup01Inventory::new(IpNetwork::V4(s.provisioning.subnet), s.hosts.total()).with_roles(
            s.hosts.pinned.iter().map(|p| PinnedRole {
                mac: p.mac,
                role: p.role,
                hostname: Some(p.hostname.clone()),
            }),
        );
    inventory.timeout = timeout;

    let mut vlan = None;
    let mut candidates = Vec::new();
    for (i, p) in s.hosts.pinned.iter().enumerate() {
        let ports = pinned_ports(site, i, &mut vlan)?;
        if ports.is_empty() {
            continue;
        }
        candidates.push(
            CandidatePorts::pinned(p.mac, IpAddr::V4(p.ip), ports).map_err(|e: ValueError| {
                InstallSpecError::field(
                    site,
                    format!("hosts.pinned[{i}].mac"),
                    p.mac.to_string(),
                    e,
                )
            })?,
        );
    }
    let vlan = access_vlan(site, vlan)?;

    let assets =
        s.assets
            .as_ref()
            .map_or_else(OsAssets::default, |a| OsAssets {
                scos: a.scos_stream.clone().map(|s| ScosAssets::new(s.0)),
                centos: a.centos_boot_iso.as_ref().map(|iso| {
                    CentosInventoryAssets::new(iso.source.0.clone(), iso.sha256.clone())
                }),
            });
    Ok(inventory
        .with_ports(vlan, candidates)
        .with_assets(assets)
        .with_boot(DiscoveryBoot { site: boot, agent }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{MacAddress, Role};
    use crate::site::install::InstallInputs;
    use crate::site::install::site_boot;

    /// install.rs's site, with one more pinned host (no ports).
    fn site() -> String {
        crate::site::install::tests::SITE.replace(
            "ssh:\n",
            "    - { mac: 52:54:00:00:00:31, role: worker, hostname: worker-7, ip: 192.0.2.9 }\nssh:\n",
        )
    }

    fn inputs() -> InstallInputs {
        InstallInputs {
            agent: "harmony/harmony-inventory-agent".parse().unwrap(),
            agent_sha256: "ab".repeat(32).parse().unwrap(),
            ssh_keys: vec![
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUm ops"
                    .parse()
                    .unwrap(),
            ],
            pull_secret: None,
        }
    }

    fn score(text: &str) -> Result<OKDSetup01Site, InstallSpecError> {
        let site = SiteFile::parse(text, "site.yaml").unwrap();
        let boot = site_boot(&site, inputs()).unwrap();
        discovery_score(&site, boot, None, DISCOVERY_TIMEOUT)
    }

    #[test]
    fn the_site_file_gives_the_network_count_roles_ports_and_boot() {
        let s = score(&site()).unwrap();
        assert_eq!(s.inventory.network.to_string(), "192.0.2.0/24");
        assert_eq!(s.inventory.expected_hosts, 6);
        let mac = |t: &str| t.parse::<MacAddress>().unwrap();
        assert_eq!(
            s.inventory.pinned,
            vec![
                PinnedRole {
                    mac: mac("52:54:00:00:00:21"),
                    role: Role::ControlPlane,
                    hostname: Some("master-1".parse().unwrap()),
                },
                PinnedRole {
                    mac: mac("52:54:00:00:00:31"),
                    role: Role::Worker,
                    hostname: Some("worker-7".parse().unwrap()),
                },
            ]
        );
        // Only the host with ports is a candidate, in its switch's VLAN,
        // reached at its pinned address.
        let (vlan, hosts) = s.ports.clone().unwrap();
        assert_eq!(vlan.get(), 77);
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].host.ip.to_string(), "192.0.2.4");
        assert_eq!(hosts[0].host.id.to_string(), "macs:52:54:00:00:00:21");
        let names: Vec<String> = hosts[0].ports.iter().map(|p| p.to_string()).collect();
        assert_eq!(names, ["p1", "p2"]);
        // No assets section: nothing staged; the boot files are published
        // with the site's agent digest.
        assert!(s.assets.scos.is_none() && s.assets.centos.is_none());
        let boot = s.boot.unwrap();
        assert_eq!(boot.site.agent_sha256.as_str(), "ab".repeat(32));
        assert!(boot.agent.is_none());
    }

    #[test]
    fn assets_are_staged_from_the_site_files_sources() {
        let text = format!(
            "{}assets:\n  scos_stream: https://builds.example.org/stream.json\n  \
             centos_boot_iso: {{ source: /srv/iso/boot.iso, sha256: {} }}\n",
            site(),
            "cd".repeat(32)
        );
        let s = score(&text).unwrap();
        assert_eq!(
            s.assets.scos.unwrap().stream.to_string(),
            "https://builds.example.org/stream.json"
        );
        let centos = s.assets.centos.unwrap();
        assert_eq!(centos.iso.to_string(), "/srv/iso/boot.iso");
        assert_eq!(centos.iso_sha256.as_str(), "cd".repeat(32));
        // A bad digest or a relative path is named by the site file's reader.
        for (from, to, field) in [
            ("cd".repeat(32), "not-a-digest", "assets.centos_boot_iso"),
            (
                "/srv/iso/boot.iso".into(),
                "boot.iso",
                "assets.centos_boot_iso.source",
            ),
            (
                "https://builds.example.org/stream.json".into(),
                "ftp://builds/stream.json",
                "assets.scos_stream",
            ),
        ] {
            let bad = text.replace(&from, to);
            let e = SiteFile::parse(&bad, "site.yaml").unwrap_err().to_string();
            assert!(e.contains(field) && e.contains(to), "{e}");
        }
    }

    #[test]
    fn ports_on_two_switches_are_named() {
        let two = site().replace(
            "        - { switch: sw-a, port: p2 }",
            "        - { switch: sw-b, port: p2 }",
        );
        let e = score(&two).unwrap_err().to_string();
        assert!(
            e.contains("hosts.pinned[0].switch_ports[1].switch = sw-b"),
            "{e}"
        );
    }
}
