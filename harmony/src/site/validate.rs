//! The checks that need more than one field of the site file: addresses
//! inside the provisioning subnet and out of each other's way, the cluster
//! networks (through the install-config rules of `modules::boot`), role
//! counts, duplicates, references from hosts to switches, and what each
//! kind of switch and backend accepts. Every problem found is reported (not
//! only the first), each naming its field path and value.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ipnetwork::{IpNetwork, Ipv4Network};

use super::model::{BackendKind, LinuxServices, Site, Switch, SwitchKind};
use super::values::{HIDDEN, SwitchAddress};
use crate::domain::{MacAddress, Role, ValueError, roles};
use crate::modules::boot::{BootError, ClusterNetworks, check_networks, networking};

/// Ports HAProxy listens on at the load balancer address.
pub const LOAD_BALANCER_PORTS: [u16; 4] = [6443, 22623, 80, 443];

/// Names the cluster's DNS zone already uses.
const RESERVED_HOSTNAMES: [&str; 3] = ["api", "api-int", "apps"];

/// One broken rule: where, with what value, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field's path in the site file, e.g. `hosts.pinned[2].ip`.
    pub field: String,
    /// The value as written (bounded), or a placeholder for a secret.
    pub value: String,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}: {}", self.field, self.value, self.reason)
    }
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(
        &mut self,
        field: impl Into<String>,
        value: impl fmt::Display,
        reason: impl Into<String>,
    ) {
        let value: String = value.to_string().chars().take(120).collect();
        self.0.push(Problem {
            field: field.into(),
            value,
            reason: reason.into(),
        });
    }

    fn value_error(&mut self, field: impl Into<String>, e: &ValueError) {
        let value = if e.value == HIDDEN {
            HIDDEN.to_string()
        } else {
            format!("{:?}", e.value)
        };
        self.add(field, value, format!("invalid {}: {}", e.field, e.reason));
    }
}

/// The result of a successful validation: what the checks derived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    /// Each switch's address, in the order of `switches`.
    pub switch_addresses: Vec<SwitchAddress>,
}

/// Checks `site`; every problem, or what validation derived.
pub fn validate(site: &Site) -> Result<Derived, Vec<Problem>> {
    let mut p = Problems::default();
    let subnet = site.provisioning.subnet;
    provisioning(site, &mut p);
    cluster_networks(site, &mut p);
    services(site, &mut p);
    let switch_addresses = switches(&site.switches, &mut p);
    hosts(site, subnet, &mut p);
    if p.0.is_empty() {
        Ok(Derived { switch_addresses })
    } else {
        Err(p.0)
    }
}

/// Why `ip` cannot be a host address on `subnet`, if it cannot.
fn not_a_host_address(subnet: Ipv4Network, ip: Ipv4Addr) -> Option<String> {
    if !subnet.contains(ip) {
        Some(format!("outside the provisioning subnet {subnet}"))
    } else if subnet.prefix() < 31 && ip == subnet.network() {
        Some(format!("the network address of {subnet}"))
    } else if subnet.prefix() < 31 && ip == subnet.broadcast() {
        Some(format!("the broadcast address of {subnet}"))
    } else {
        None
    }
}

fn provisioning(site: &Site, p: &mut Problems) {
    let prov = &site.provisioning;
    let subnet = prov.subnet;
    if subnet.ip() != subnet.network() {
        p.add(
            "provisioning.subnet",
            subnet,
            format!(
                "host bits are set: the network is {}/{}",
                subnet.network(),
                subnet.prefix()
            ),
        );
    }
    if subnet.prefix() > 29 {
        p.add(
            "provisioning.subnet",
            subnet,
            "too small: a /29 at least (gateway, Harmony, a DHCP range and the hosts)",
        );
    }
    let range = prov.dhcp_range;
    for (field, ip) in [
        ("provisioning.gateway", prov.gateway),
        ("provisioning.harmony_address", prov.harmony_address),
        ("provisioning.dhcp_range.start", range.start),
        ("provisioning.dhcp_range.end", range.end),
    ] {
        if let Some(why) = not_a_host_address(subnet, ip) {
            p.add(field, ip, why);
        }
    }
    if range.start > range.end {
        p.add(
            "provisioning.dhcp_range",
            format!("{}-{}", range.start, range.end),
            "start is after end",
        );
    }
    if prov.harmony_address == prov.gateway {
        p.add(
            "provisioning.harmony_address",
            prov.harmony_address,
            "is the gateway's address",
        );
    }
    for (field, ip, what) in [
        ("provisioning.gateway", prov.gateway, "the gateway"),
        (
            "provisioning.harmony_address",
            prov.harmony_address,
            "Harmony's own address",
        ),
    ] {
        if range.contains(ip) {
            p.add(
                "provisioning.dhcp_range",
                format!("{}-{}", range.start, range.end),
                format!("overlaps {what} {ip} ({field})"),
            );
        }
    }
    let fwd = &prov.dns_forwarders;
    if fwd.is_empty() || fwd.len() > 8 {
        p.add(
            "provisioning.dns_forwarders",
            format!("{} server(s)", fwd.len()),
            "give 1 to 8 upstream DNS servers",
        );
    }
    let mut seen = BTreeSet::new();
    for (i, ip) in fwd.iter().enumerate() {
        let field = format!("provisioning.dns_forwarders[{i}]");
        if ip.is_unspecified() || ip.is_multicast() || *ip == IpAddr::V4(Ipv4Addr::BROADCAST) {
            p.add(&field, ip, "not a DNS server address");
        } else if let IpAddr::V4(v4) = ip
            && range.contains(*v4)
        {
            p.add(&field, ip, "inside the DHCP dynamic range");
        }
        if !seen.insert(*ip) {
            p.add(&field, ip, "listed twice");
        }
    }
}

/// The install-config field of a network error, as the site file names it.
fn site_field(install_config_field: &str) -> &'static str {
    match install_config_field {
        networking::MACHINE => "provisioning.subnet",
        networking::SERVICE => "cluster.service_network",
        networking::CLUSTER => "cluster.cluster_network.cidr",
        networking::HOST_PREFIX => "cluster.cluster_network.host_prefix",
        _ => "cluster",
    }
}

fn cluster_networks(site: &Site, p: &mut Problems) {
    let c = &site.cluster;
    let nets = ClusterNetworks {
        machine_network: IpNetwork::V4(site.provisioning.subnet),
        cluster_network: c.cluster_network.cidr,
        host_prefix: c.cluster_network.host_prefix,
        service_network: c.service_network,
        // Pinned addresses are checked against the subnet below, by name.
        node_addresses: Vec::new(),
    };
    match check_networks(&nets) {
        Ok(()) => {}
        Err(BootError::InvalidField {
            field,
            value,
            reason,
            ..
        }) => p.add(site_field(field), value, reason),
        Err(other) => p.add("cluster", "networks", other.to_string()),
    }
}

fn services(site: &Site, p: &mut Problems) {
    let s = &site.services;
    let (want, other) = match s.backend {
        BackendKind::Linux => (
            s.linux.is_some(),
            s.opnsense.is_some().then_some("opnsense"),
        ),
        BackendKind::Opnsense => (s.opnsense.is_some(), s.linux.is_some().then_some("linux")),
    };
    let backend = s.backend.as_str();
    if !want {
        p.add(
            "services.backend",
            backend,
            format!("needs a `services.{backend}:` section with its settings"),
        );
    }
    if let Some(other) = other {
        p.add(
            format!("services.{other}"),
            "(section)",
            format!("given, but services.backend is {backend}: remove it or change the backend"),
        );
    }
    if let (BackendKind::Linux, Some(linux)) = (s.backend, &s.linux) {
        linux_services(site, linux, p);
    }
    if let (BackendKind::Opnsense, Some(o)) = (s.backend, &s.opnsense) {
        opnsense_services(site, o, p);
    }
}

fn linux_services(site: &Site, l: &LinuxServices, p: &mut Problems) {
    let (state, root) = (l.state_dir.as_path(), l.http_root.as_path());
    if root.starts_with(state) || state.starts_with(root) {
        p.add(
            "services.linux.http_root",
            &l.http_root,
            format!(
                "must not contain or lie inside state_dir {} (the state holds secrets, the root is served to anyone)",
                l.state_dir
            ),
        );
    }
    let prov = &site.provisioning;
    let mut addr_ok = |field: &str, ip: IpAddr| {
        let IpAddr::V4(v4) = ip else {
            p.add(field, ip, "the provisioning network is IPv4");
            return;
        };
        if v4.is_unspecified() || v4 == prov.harmony_address || v4.is_loopback() {
            return;
        }
        if let Some(why) = not_a_host_address(prov.subnet, v4) {
            p.add(field, ip, why);
        } else if v4 == prov.gateway {
            p.add(field, ip, "is the gateway's address");
        } else if prov.dhcp_range.contains(v4) {
            p.add(field, ip, "inside the DHCP dynamic range");
        } else if let Some(h) = site.hosts.pinned.iter().find(|h| h.ip == v4) {
            p.add(field, ip, format!("reserved for pinned host {}", h.mac));
        }
    };
    addr_ok("services.linux.http_listen", l.http_listen.ip());
    addr_ok("services.linux.dns_listen", l.dns_listen.ip());
    addr_ok(
        "services.linux.load_balancer_address",
        IpAddr::V4(l.load_balancer_address),
    );
    for (field, sock) in [
        ("services.linux.http_listen", l.http_listen),
        ("services.linux.dns_listen", l.dns_listen),
    ] {
        if sock.port() == 0 {
            p.add(field, sock, "port 0 is not a port to serve on");
        }
    }
    let overlaps = |a: IpAddr, b: IpAddr| a == b || a.is_unspecified() || b.is_unspecified();
    let lb = IpAddr::V4(l.load_balancer_address);
    for (field, sock) in [
        ("services.linux.http_listen", l.http_listen),
        ("services.linux.dns_listen", l.dns_listen),
    ] {
        if overlaps(sock.ip(), lb) && LOAD_BALANCER_PORTS.contains(&sock.port()) {
            p.add(
                field,
                sock,
                format!(
                    "HAProxy listens on {}:{} (load_balancer_address)",
                    l.load_balancer_address,
                    sock.port()
                ),
            );
        }
    }
    let (h, d): (SocketAddr, SocketAddr) = (l.http_listen, l.dns_listen);
    if h.port() == d.port() && overlaps(h.ip(), d.ip()) {
        p.add(
            "services.linux.dns_listen",
            d,
            format!("the same port as http_listen {h}"),
        );
    }
}

fn switches(list: &[Switch], p: &mut Problems) -> Vec<SwitchAddress> {
    let mut names = BTreeMap::new();
    let mut chassis = BTreeMap::new();
    let mut addresses = Vec::new();
    for (i, sw) in list.iter().enumerate() {
        let at = |f: &str| format!("switches[{i}].{f}");
        if let Some(first) = names.insert(sw.name.clone(), i) {
            p.add(
                at("name"),
                format!("{:?}", sw.name.as_str()),
                format!("duplicate switch name (also switches[{first}])"),
            );
            // Keep the first index for later messages.
            names.insert(sw.name.clone(), first);
        }
        match SwitchAddress::parse(sw.kind, sw.address.as_deref()) {
            Ok(a) => addresses.push(a),
            Err(e) => {
                p.value_error(at("address"), &e);
                addresses.push(SwitchAddress::OvsLocal);
            }
        }
        let kind = sw.kind.as_str();
        match (sw.kind, &sw.credentials) {
            (SwitchKind::Ovs, Some(c)) => p.add(
                at("credentials"),
                c,
                "ovs is reached through OVSDB, which takes no credentials: remove them",
            ),
            (SwitchKind::Ovs, None) | (_, Some(_)) => {}
            (_, None) => p.add(
                at("credentials"),
                "(missing)",
                format!("{kind} needs credentials: `file:` or `env:`"),
            ),
        }
        if sw.lacp_fallback && !sw.kind.has_lacp_fallback() {
            p.add(
                at("lacp_fallback"),
                "true",
                format!(
                    "{kind} has no LACP fallback (ovs, aruba-aoscx and cisco-nxos do): the plan flips the ports between access and LACP instead"
                ),
            );
        }
        if let Some(c) = sw.chassis_id
            && let Some(first) = chassis.insert(c, i)
        {
            p.add(
                at("chassis_id"),
                c,
                format!("two switches with one LLDP chassis id (also switches[{first}])"),
            );
            chassis.insert(c, first);
        }
        if let (Some(b), false) = (&sw.bridge, sw.kind == SwitchKind::Ovs) {
            p.add(
                at("bridge"),
                format!("{:?}", b.as_str()),
                format!("only an ovs switch has a bridge, this one is {kind}"),
            );
        }
    }
    addresses
}

fn hosts(site: &Site, subnet: Ipv4Network, p: &mut Problems) {
    let h = &site.hosts;
    for (role, field, have) in [
        (Role::Bootstrap, "hosts.bootstrap", h.bootstrap),
        (Role::ControlPlane, "hosts.control_plane", h.control_plane),
    ] {
        if let Some(want) = roles::wanted(role)
            && have != want
        {
            p.add(
                field,
                have,
                format!("an OKD cluster has exactly {want} {role} host(s)"),
            );
        }
    }
    let prov = &site.provisioning;
    let switch_names: BTreeSet<_> = site.switches.iter().map(|s| &s.name).collect();
    let mut macs = BTreeMap::new();
    let mut ips = BTreeMap::new();
    let mut names = BTreeMap::new();
    let mut ports = BTreeMap::new();
    let mut per_role: BTreeMap<Role, usize> = BTreeMap::new();
    for (i, host) in h.pinned.iter().enumerate() {
        let at = |f: &str| format!("hosts.pinned[{i}].{f}");
        if let Some(first) = macs.get(&host.mac) {
            p.add(
                at("mac"),
                host.mac,
                format!("duplicate MAC (also hosts.pinned[{first}])"),
            );
        } else {
            macs.insert(host.mac, i);
        }
        if let Some(first) = ips.get(&host.ip) {
            p.add(
                at("ip"),
                host.ip,
                format!("duplicate IP (also hosts.pinned[{first}])"),
            );
        } else {
            ips.insert(host.ip, i);
        }
        if let Some(why) = not_a_host_address(subnet, host.ip) {
            p.add(at("ip"), host.ip, why);
        } else if prov.dhcp_range.contains(host.ip) {
            p.add(
                at("ip"),
                host.ip,
                format!(
                    "inside the DHCP dynamic range {}-{}: a reservation must be outside it",
                    prov.dhcp_range.start, prov.dhcp_range.end
                ),
            );
        } else if host.ip == prov.gateway {
            p.add(at("ip"), host.ip, "is the gateway's address");
        } else if host.ip == prov.harmony_address {
            p.add(at("ip"), host.ip, "is Harmony's own address");
        }
        let name = host.hostname.as_str();
        if name.contains('.') {
            p.add(
                at("hostname"),
                format!("{name:?}"),
                format!(
                    "give the short name (one DNS label); DNS adds .{}.{}",
                    site.cluster.name, site.cluster.base_domain
                ),
            );
        } else if RESERVED_HOSTNAMES.contains(&name) {
            p.add(
                at("hostname"),
                format!("{name:?}"),
                "is a name the cluster's DNS zone uses (api, api-int, apps)",
            );
        }
        if let Some(first) = names.get(name) {
            p.add(
                at("hostname"),
                format!("{name:?}"),
                format!("duplicate host name (also hosts.pinned[{first}])"),
            );
        } else {
            names.insert(name.to_string(), i);
        }
        *per_role.entry(host.role).or_default() += 1;
        let mut nics: BTreeMap<MacAddress, String> = BTreeMap::new();
        for (j, port) in host.switch_ports.iter().enumerate() {
            let field = format!("hosts.pinned[{i}].switch_ports[{j}]");
            if let Some(nic) = port.nic {
                if let Some(first) = nics.get(&nic) {
                    p.add(
                        format!("{field}.nic"),
                        nic,
                        format!("the NIC is already cabled to {first}: one NIC, one port"),
                    );
                } else {
                    nics.insert(nic, format!("{}:{}", port.switch, port.port));
                }
            }
            if !switch_names.contains(&port.switch) {
                p.add(
                    format!("{field}.switch"),
                    format!("{:?}", port.switch.as_str()),
                    "no switch of that name in `switches`",
                );
            }
            let key = (port.switch.clone(), port.port.clone());
            if let Some(first) = ports.get(&key) {
                p.add(
                    format!("{field}.port"),
                    format!("{}:{}", port.switch, port.port),
                    format!("switch port already taken by {first}: one port, one host NIC"),
                );
            } else {
                ports.insert(key, field);
            }
        }
    }
    for (role, n) in per_role {
        let want = h.count(role);
        if n > want {
            let field = match role {
                Role::Bootstrap => "hosts.bootstrap",
                Role::ControlPlane => "hosts.control_plane",
                Role::Worker => "hosts.workers",
            };
            p.add(
                field,
                want,
                format!("{n} pinned host(s) have role {role}, more than expected"),
            );
        }
    }
}

fn opnsense_services(site: &Site, o: &super::model::OpnSenseServices, p: &mut Problems) {
    let pr = &site.provisioning;
    if let Some(a) = o.address {
        if !pr.subnet.contains(a) {
            p.add(
                "services.opnsense.address",
                a,
                format!("is not in the provisioning subnet {}", pr.subnet),
            );
        } else if pr.dhcp_range.contains(a) {
            p.add("services.opnsense.address", a, "is inside the DHCP range");
        }
    }
    if o.http_port == 0 {
        p.add("services.opnsense.http_port", 0, "must be 1 to 65535");
    }
    if let Some(ssh) = &o.ssh
        && ssh.port == 0
    {
        p.add("services.opnsense.ssh.port", 0, "must be 1 to 65535");
    }
}
