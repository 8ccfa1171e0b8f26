//! The `networking` section of `install-config.yaml`, checked the way
//! openshift-install checks it (`pkg/types/validation/installconfig.go`,
//! `pkg/validate/validate.go`) before anything is rendered or written, so a
//! bad site file fails here, naming the field, rather than in
//! `openshift-install create manifests` or, worse, in a half-installed
//! cluster.
//!
//! openshift-install's rules, for the one entry of each list Harmony writes:
//! - every CIDR is a network address: not unspecified (`0.0.0.0`, `::`) and
//!   no host bits set (`10.0.0.1/16` is refused, expecting `10.0.0.0/16`);
//! - `serviceNetwork` is at least a /12 (IPv4) or a /108 (IPv6);
//! - no two of machine, service and cluster network overlap, and none
//!   overlaps OVN-Kubernetes' default internal subnets (join, transit,
//!   masquerade), which the template leaves at their defaults;
//! - `hostPrefix` is at least the cluster network's prefix, and exactly 64
//!   for IPv6.
//!
//! And Harmony's, which openshift-install cannot know:
//! - one IP family throughout (the template writes one entry per list:
//!   single stack);
//! - `hostPrefix` at most /24 for IPv4: a node subnet must hold the
//!   kubelet's default `maxPods` of 250;
//! - the cluster network holds a node subnet for every node (at least the
//!   three control-plane nodes);
//! - every known host address lies inside `machineNetwork` and is not its
//!   network or broadcast address.

use std::net::IpAddr;

use ipnetwork::IpNetwork;

use super::{BootError, InstallConfig};

const ARTEFACT: &str = "install-config.yaml";

/// OVN-Kubernetes' default internal subnets (IPv4, IPv6): join, transit
/// switch and masquerade (the latter as of OKD 4.17).
const OVN_DEFAULT_SUBNETS: [(&str, &str, &str); 3] = [
    ("internal", "100.64.0.0/16", "fd98::/64"),
    ("transit", "100.88.0.0/16", "fd97::/64"),
    ("masquerade", "169.254.0.0/17", "fd69::/112"),
];

/// Largest IPv4 `hostPrefix`: a /24 holds the kubelet's 250 pods.
const MAX_IPV4_HOST_PREFIX: u8 = 24;

/// Control-plane nodes of every cluster Harmony installs.
const CONTROL_PLANE_NODES: usize = 3;

/// The field names errors carry (install-config's paths), so a caller that
/// reads the networks from elsewhere (the site file) can name its own.
pub const MACHINE: &str = "networking.machineNetwork[0]";
pub const SERVICE: &str = "networking.serviceNetwork[0]";
pub const CLUSTER: &str = "networking.clusterNetwork[0].cidr";
pub const HOST_PREFIX: &str = "networking.clusterNetwork[0].hostPrefix";

/// The networks of one cluster, as `install-config.yaml` has them: what
/// [`check_networks`] checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNetworks {
    pub machine_network: IpNetwork,
    pub cluster_network: IpNetwork,
    pub host_prefix: u8,
    pub service_network: IpNetwork,
    /// The hosts' addresses when known (each must lie in the machine network).
    pub node_addresses: Vec<IpAddr>,
}

fn invalid(field: &'static str, value: impl ToString, reason: String) -> BootError {
    BootError::InvalidField {
        artefact: ARTEFACT,
        field,
        value: value.to_string(),
        reason,
    }
}

fn family(net: &IpNetwork) -> &'static str {
    if net.is_ipv4() { "IPv4" } else { "IPv6" }
}

/// openshift-install's `DoCIDRsOverlap` for networks without host bits.
fn overlap(a: &IpNetwork, b: &IpNetwork) -> bool {
    a.is_ipv4() == b.is_ipv4() && (a.contains(b.network()) || b.contains(a.network()))
}

/// openshift-install's `SubnetCIDR`.
fn network_address(field: &'static str, net: &IpNetwork) -> Result<(), BootError> {
    if net.ip().is_unspecified() {
        return Err(invalid(field, net, "address must be specified".into()));
    }
    if net.ip() != net.network() {
        return Err(invalid(
            field,
            net,
            format!(
                "invalid network address: host bits are set, expecting {}/{}",
                net.network(),
                net.prefix()
            ),
        ));
    }
    Ok(())
}

fn not_ovn_default(field: &'static str, net: &IpNetwork) -> Result<(), BootError> {
    for (name, v4, v6) in OVN_DEFAULT_SUBNETS {
        let ovn: IpNetwork = if net.is_ipv4() { v4 } else { v6 }
            .parse()
            .map_err(|e| invalid(field, net, format!("OVN subnet {v4}/{v6}: {e}")))?;
        if overlap(net, &ovn) {
            return Err(invalid(
                field,
                net,
                format!("must not overlap with OVNKubernetes default {name} subnet {ovn}"),
            ));
        }
    }
    Ok(())
}

fn same_family(field: &'static str, net: &IpNetwork, machine: &IpNetwork) -> Result<(), BootError> {
    if net.is_ipv4() != machine.is_ipv4() {
        return Err(invalid(
            field,
            net,
            format!(
                "is {} but {MACHINE} is {}: Harmony writes single-stack networking",
                family(net),
                family(machine)
            ),
        ));
    }
    Ok(())
}

/// Every rule above, in openshift-install's order (machine, service,
/// cluster network, then the hosts); the first broken one is the error.
pub(super) fn validate(ctx: &InstallConfig) -> Result<(), BootError> {
    check_networks(&ClusterNetworks {
        machine_network: ctx.machine_network,
        cluster_network: ctx.cluster_network,
        host_prefix: ctx.host_prefix,
        service_network: ctx.service_network,
        node_addresses: ctx.node_addresses.clone(),
    })
}

/// [`validate`] for networks that do not come from an [`InstallConfig`]
/// (the site file checks its own with it before any install-config exists).
pub fn check_networks(ctx: &ClusterNetworks) -> Result<(), BootError> {
    let machine = &ctx.machine_network;
    let service = &ctx.service_network;
    let cluster = &ctx.cluster_network;

    network_address(MACHINE, machine)?;
    not_ovn_default(MACHINE, machine)?;

    network_address(SERVICE, service)?;
    same_family(SERVICE, service, machine)?;
    let min_service = if service.is_ipv4() { 12 } else { 108 };
    if service.prefix() < min_service {
        return Err(invalid(
            SERVICE,
            service,
            format!(
                "an {} service network must be no larger than a /{min_service} (/{} is usual)",
                family(service),
                if service.is_ipv4() { 16 } else { 112 }
            ),
        ));
    }
    not_ovn_default(SERVICE, service)?;
    if overlap(service, machine) {
        return Err(invalid(
            SERVICE,
            service,
            format!("service network must not overlap with the machine network {machine}"),
        ));
    }

    network_address(CLUSTER, cluster)?;
    same_family(CLUSTER, cluster, machine)?;
    not_ovn_default(CLUSTER, cluster)?;
    if overlap(cluster, machine) {
        return Err(invalid(
            CLUSTER,
            cluster,
            format!("cluster network must not overlap with the machine network {machine}"),
        ));
    }
    if overlap(cluster, service) {
        return Err(invalid(
            CLUSTER,
            cluster,
            format!("cluster network must not overlap with the service network {service}"),
        ));
    }

    host_prefix(ctx)?;
    host_addresses(ctx)
}

fn host_prefix(ctx: &ClusterNetworks) -> Result<(), BootError> {
    let cluster = &ctx.cluster_network;
    let hp = ctx.host_prefix;
    let max_bits = max_prefix(cluster.ip());
    if hp < cluster.prefix() || hp > max_bits {
        return Err(invalid(
            HOST_PREFIX,
            hp,
            format!(
                "cluster network host subnetwork prefix must lie between the prefix of {cluster} and /{max_bits}"
            ),
        ));
    }
    if cluster.is_ipv6() && hp != 64 {
        return Err(invalid(
            HOST_PREFIX,
            hp,
            "cluster network host subnetwork prefix must be 64 for IPv6 networks".into(),
        ));
    }
    if cluster.is_ipv4() && hp > MAX_IPV4_HOST_PREFIX {
        return Err(invalid(
            HOST_PREFIX,
            hp,
            format!(
                "a node subnet smaller than /{MAX_IPV4_HOST_PREFIX} cannot hold the kubelet's default of 250 pods"
            ),
        ));
    }
    let nodes = ctx.node_addresses.len().max(CONTROL_PLANE_NODES);
    // 2^(hp - prefix) node subnets; 2^64 and more always suffice.
    let bits = u32::from(hp - cluster.prefix());
    let subnets = 1u128.checked_shl(bits).unwrap_or(u128::MAX);
    if subnets < nodes as u128 {
        return Err(invalid(
            HOST_PREFIX,
            hp,
            format!(
                "{cluster} holds {subnets} node subnet(s) of /{hp}, the cluster has {nodes} node(s)"
            ),
        ));
    }
    Ok(())
}

fn host_addresses(ctx: &ClusterNetworks) -> Result<(), BootError> {
    let machine = &ctx.machine_network;
    for &addr in &ctx.node_addresses {
        let reason = if !machine.contains(addr) {
            Some("is outside it")
        } else if addr == machine.network() && machine.prefix() < max_prefix(addr) - 1 {
            Some("is its network address")
        } else if addr == machine.broadcast() && machine.is_ipv4() && machine.prefix() < 31 {
            Some("is its broadcast address")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(invalid(
                MACHINE,
                machine,
                format!("host address {addr} {reason}: every host must be on the machine network"),
            ));
        }
    }
    Ok(())
}

fn max_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}
