//! The lab's provisioning network: one Open vSwitch bridge on the
//! userspace datapath (`datapath_type=netdev`; the hosts here have no
//! `openvswitch` kernel module) inside a lab namespace. Its daemons are the
//! project's private Open vSwitch ([`OvsDaemons`]: `ovsdb-server` and
//! `ovs-vswitchd` as [`Service`](crate::infra::process::Service)s, files
//! under their own run directory, `ovs-vswitchd` in the namespace).
//!
//! The bridge's internal port carries the site services' address (dnsmasq,
//! HTTP, ...); each VM NIC is a tap device in the namespace, added as an
//! OVS port in access mode through Harmony's own [`Switch`]
//! implementation ([`OpenVSwitch`]), which later moves the ports to LACP.
//! As the virtual-lab notes found, DHCP and TCP through the userspace
//! datapath need checksum offloads off: `ethtool -K DEV tx off` on the
//! bridge port and every tap (the VMs turn theirs off with
//! `vnet_hdr=off` and `csum=off,guest_csum=off,gso=off`).
//!
//! A tap is also an interface of the namespace's own IP stack, which sees
//! every frame the VM sends. Left as it is, the namespace answers a VM's
//! ARP request for the site address twice: from the bridge port (through
//! the switch) and from the tap itself, with the tap's MAC (Linux answers
//! for any local address on any interface). When the tap's answer came
//! last, the VM sent the site's traffic to the tap's MAC; that arrives
//! only while the VM sends it on that very NIC, so once its bond spread
//! flows over both members, every other connection was lost. So each tap
//! is made a switch port only: it never answers ARP (`arp_ignore=8`) and
//! has no IPv6 (`disable_ipv6=1`), set before it comes up.
//!
//! [`LabNetwork::down`] (or drop) stops both daemons; the taps go with the
//! namespace.

use std::time::Duration;

use super::LabError;
use super::netns::LabNetns;
use crate::domain::values::InterfaceName;
use crate::domain::{Switch, SwitchPort, VlanId};
use crate::infra::ovs::daemons::OvsDaemonsConfig;
use crate::infra::ovs::{OpenVSwitch, OvsDaemons, OvsName};

const ETHTOOL_TIMEOUT: Duration = Duration::from_secs(10);

/// A running provisioning network.
#[derive(Debug)]
pub struct LabNetwork {
    // Drops before the daemons: it only holds socket paths.
    switch: OpenVSwitch,
    daemons: Option<OvsDaemons>,
    bridge: OvsName,
    netns: String,
    vlan: VlanId,
    ports: Vec<InterfaceName>,
}

fn ovs_error(what: &str, e: impl std::fmt::Display) -> LabError {
    LabError::Missing {
        what: format!("Open vSwitch: {what}"),
        detail: e.to_string(),
    }
}

impl LabNetwork {
    /// Starts the daemons (vswitchd in `ns`), makes `bridge` and puts
    /// `host_cidr` (e.g. `198.51.100.1/24`) on its internal port, offloads
    /// off. VM ports are added later in access mode in `vlan`.
    pub async fn up(
        ns: &LabNetns,
        bridge: &str,
        host_cidr: &str,
        vlan: VlanId,
    ) -> Result<LabNetwork, LabError> {
        let bridge: OvsName = bridge
            .parse()
            .map_err(|e: crate::domain::values::ValueError| {
                LabError::invalid("bridge", bridge, e.to_string())
            })?;
        check_cidr(host_cidr)?;
        let daemons = OvsDaemons::start(OvsDaemonsConfig {
            netns: Some(ns.name().to_string()),
            ..OvsDaemonsConfig::default()
        })
        .await
        .map_err(|e| ovs_error("starting the daemons", e))?;
        daemons
            .add_bridge(&bridge)
            .await
            .map_err(|e| ovs_error(&format!("adding bridge {bridge}"), e))?;
        // The internal port carries the site services untagged in the
        // provisioning VLAN (an untagged port without `tag` is a trunk of
        // every VLAN: frames from the access ports would reach it tagged).
        let tag = format!("tag={}", vlan.get());
        daemons
            .vsctl(&["set", "port", bridge.as_str(), &tag])
            .run()
            .await
            .map_err(|e| LabError::process(format!("ovs-vsctl set port {bridge} {tag}"), e))?;
        let switch = daemons.switch(bridge.clone());
        let net = LabNetwork {
            switch,
            daemons: Some(daemons),
            bridge: bridge.clone(),
            netns: ns.name().to_string(),
            vlan,
            ports: Vec::new(),
        };
        // vswitchd creates the internal port's tap in the namespace.
        let b = bridge.as_str();
        wait_for_link(ns, b).await?;
        ns.ip(&["addr", "add", host_cidr, "dev", b])?;
        ns.ip(&["link", "set", "dev", b, "up"])?;
        net.offloads_off(ns, b).await?;
        tracing::info!(bridge = b, netns = ns.name(), host_cidr, "lab network up");
        Ok(net)
    }

    /// A tap for a VM NIC, up, offloads off, deaf to ARP and without IPv6
    /// (a switch port, not an interface of the namespace: see the module
    /// doc), on the bridge as an access port in the network's VLAN (set
    /// through the [`Switch`] trait).
    pub async fn add_vm_port(
        &mut self,
        ns: &LabNetns,
        tap: &InterfaceName,
    ) -> Result<(), LabError> {
        if ns.name() != self.netns {
            return Err(LabError::invalid(
                "namespace",
                ns.name(),
                format!("the network runs in {}", self.netns),
            ));
        }
        let t = tap.as_str();
        let port: SwitchPort = t.parse().map_err(|e: crate::domain::values::ValueError| {
            LabError::invalid("tap", t, e.to_string())
        })?;
        ns.ip(&["tuntap", "add", "dev", t, "mode", "tap"])?;
        ns.set_sysctl(&["net", "ipv4", "conf", t, "arp_ignore"], "8")?;
        if std::path::Path::new("/proc/sys/net/ipv6").exists() {
            ns.set_sysctl(&["net", "ipv6", "conf", t, "disable_ipv6"], "1")?;
        }
        ns.ip(&["link", "set", "dev", t, "up"])?;
        self.offloads_off(ns, t).await?;
        self.switch
            .set_ports_access_mode(&[port], self.vlan)
            .await
            .map_err(|e| ovs_error(&format!("access mode on {t}"), e))?;
        self.ports.push(tap.clone());
        Ok(())
    }

    async fn offloads_off(&self, ns: &LabNetns, dev: &str) -> Result<(), LabError> {
        ns.program("ethtool")
            .args(["-K", dev, "tx", "off"])
            .timeout(ETHTOOL_TIMEOUT)
            .run()
            .await
            .map(|_| ())
            .map_err(|e| LabError::process(format!("ethtool -K {dev} tx off"), e))
    }

    /// Harmony's [`Switch`] for the bridge.
    pub fn switch(&self) -> &OpenVSwitch {
        &self.switch
    }

    pub fn bridge(&self) -> &OvsName {
        &self.bridge
    }

    /// The OVSDB socket (`unix:` this path reaches the network's switch),
    /// while the network is up.
    pub fn db_socket(&self) -> Option<&std::path::Path> {
        self.daemons.as_ref().map(|d| d.db_socket())
    }

    /// The VM ports added so far.
    pub fn ports(&self) -> &[InterfaceName] {
        &self.ports
    }

    /// `ovs-appctl` against the network's `ovs-vswitchd` (e.g.
    /// `lacp/show bond1`), bounded; its stdout.
    pub async fn appctl(&self, args: &[&str]) -> Result<String, LabError> {
        let d = self.daemons()?;
        d.appctl(args)
            .run()
            .await
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .map_err(|e| LabError::process(format!("ovs-appctl {}", args.join(" ")), e))
    }

    /// `ovs-vsctl` against the network's database, bounded; its stdout.
    pub async fn vsctl(&self, args: &[&str]) -> Result<String, LabError> {
        let d = self.daemons()?;
        d.vsctl(args)
            .run()
            .await
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .map_err(|e| LabError::process(format!("ovs-vsctl {}", args.join(" ")), e))
    }

    /// The end of a daemon's log (`ovs-vswitchd`, `ovsdb-server`).
    pub fn log_tail(&self, daemon: &str) -> String {
        self.daemons
            .as_ref()
            .map(|d| d.log_tail(daemon))
            .unwrap_or_default()
    }

    fn daemons(&self) -> Result<&OvsDaemons, LabError> {
        self.daemons.as_ref().ok_or_else(|| LabError::Missing {
            what: "Open vSwitch".into(),
            detail: "the lab network is down".into(),
        })
    }

    /// Stops both daemons (vswitchd first), each within its grace.
    pub async fn down(mut self) -> Result<(), LabError> {
        match self.daemons.take() {
            Some(d) => d.stop().await.map_err(|e| ovs_error("stopping", e)),
            None => Ok(()),
        }
    }
}

/// `A.B.C.D/N` with N in 1..=32.
fn check_cidr(cidr: &str) -> Result<(), LabError> {
    let ok = cidr.split_once('/').is_some_and(|(a, n)| {
        a.parse::<std::net::Ipv4Addr>().is_ok()
            && n.parse::<u8>().is_ok_and(|n| (1..=32).contains(&n))
    });
    if ok {
        Ok(())
    } else {
        Err(LabError::invalid("host address", cidr, "an IPv4 A.B.C.D/N"))
    }
}

/// Bounded wait for `dev` to appear in `ns` (ovs-vswitchd makes it).
async fn wait_for_link(ns: &LabNetns, dev: &str) -> Result<(), LabError> {
    let until = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if ns.ip(&["link", "show", "dev", dev]).is_ok() {
            return Ok(());
        }
        if std::time::Instant::now() >= until {
            return Err(LabError::Missing {
                what: format!("device {dev} in {}", ns.name()),
                detail: "ovs-vswitchd did not create it within 10 s".into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn host_addresses_are_checked() {
        check_cidr("198.51.100.1/24").unwrap();
        for bad in [
            "198.51.100.1",
            "198.51.100.1/0",
            "198.51.100.1/33",
            "x/24",
            "1.2.3.4/24; rm",
        ] {
            let e = check_cidr(bad).unwrap_err().to_string();
            assert!(e.contains("host address"), "{bad}: {e}");
        }
    }
}
