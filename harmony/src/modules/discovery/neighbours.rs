//! The kernel's neighbour table as a limit on scanning a layer-2 network.
//!
//! Connecting to an address of a directly attached Ethernet subnet needs its
//! neighbour entry (ARP, NDP). An absent host's entry stays `INCOMPLETE` for
//! the whole resolution (`mcast_solicit` x `retrans_time_ms`, 3 s by
//! default) even if the connect is given up sooner, and the table is one for
//! the whole machine, every namespace included (`gc_thresh3`, 1 024 by
//! default, visible only in the first namespace). When it is full the kernel
//! drops the SYN without telling the socket ("neighbor table overflow" in
//! the kernel log): the connect merely times out, so a live agent would
//! look absent, and the machine's other traffic cannot resolve neighbours
//! either. A scan therefore keeps its unresolved on-link connects below the
//! free part of the table, and waits for each to end (refused, accepted or
//! `EHOSTUNREACH` when resolution fails) instead of timing out early.
//!
//! The free room is measured once, when the scan starts: another process
//! (or another scan) filling the table meanwhile can still overflow it; the
//! reserve kept for the machine's own traffic absorbs some of that.
//!
//! Routed destinations and loopback need no entry per address: no limit.
//!
//! [`ethernet_links`] names the directly attached IPv4 Ethernet subnets with
//! our address and MAC on each: what an ARP sweep
//! ([`crate::infra::arp_sweep`]) needs to find the live hosts of a range
//! without creating a neighbour entry per absent address.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use ipnetwork::IpNetwork;
use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;

/// Used when the table's limit cannot be read (inside a network namespace).
pub const DEFAULT_GC_THRESH3: usize = 1024;
/// Kept free for the machine's own traffic.
const RESERVED_ENTRIES: usize = 128;
/// Unresolved connects at least (a full table still drains).
const MIN_UNRESOLVED: usize = 16;

/// What the scan must respect on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighbourLimit {
    /// Subnets of interfaces that resolve neighbours (not loopback, not
    /// `NOARP`), with how long a resolution may last there.
    pub on_link: Vec<(IpNetwork, Duration)>,
    /// Unresolved on-link connects allowed at once.
    pub max_unresolved: usize,
}

impl NeighbourLimit {
    /// Reads the interfaces, the table's limit and its current size.
    pub fn of_this_machine() -> Self {
        let v4 = table_room("ipv4", "arp_cache");
        let v6 = table_room("ipv6", "ndisc_cache");
        Self {
            on_link: on_link_subnets(),
            max_unresolved: v4.min(v6),
        }
    }

    /// How long resolving `ip` may take if it needs a neighbour entry;
    /// `None` when it does not (loopback, routed).
    pub fn resolution_time(&self, ip: IpAddr) -> Option<Duration> {
        self.on_link
            .iter()
            .filter(|(net, _)| net.contains(ip))
            .map(|(_, t)| *t)
            .max()
    }

    /// Whether any address of `range` needs a neighbour entry.
    pub fn touches(&self, range: IpNetwork) -> bool {
        self.on_link.iter().any(|(net, _)| overlaps(*net, range))
    }
}

fn overlaps(a: IpNetwork, b: IpNetwork) -> bool {
    match (a, b) {
        (IpNetwork::V4(_), IpNetwork::V4(_)) | (IpNetwork::V6(_), IpNetwork::V6(_)) => {
            a.contains(b.network()) || b.contains(a.network())
        }
        _ => false,
    }
}

fn read_number(path: &str) -> Option<usize> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Free entries of a neighbour table (`family` "ipv4"/"ipv6", `stat` the
/// file of /proc/net/stat), less a reserve for the machine's own traffic.
fn table_room(family: &str, stat: &str) -> usize {
    let limit = read_number(&format!("/proc/sys/net/{family}/neigh/default/gc_thresh3"))
        .unwrap_or(DEFAULT_GC_THRESH3);
    // First column of the second line: the entries now, in hex.
    let used = std::fs::read_to_string(format!("/proc/net/stat/{stat}"))
        .ok()
        .and_then(|t| {
            let line = t.lines().nth(1)?.to_string();
            let first = line.split_whitespace().next()?.to_string();
            usize::from_str_radix(&first, 16).ok()
        })
        .unwrap_or(0);
    limit
        .saturating_sub(used)
        .saturating_sub(RESERVED_ENTRIES.min(limit / 4))
        .max(MIN_UNRESOLVED)
}

/// How long one resolution lasts on `dev` (multicast probes, each
/// `retrans_time_ms` apart), plus a margin.
fn resolution_time(family: &str, dev: &str) -> Duration {
    let base = format!("/proc/sys/net/{family}/neigh/{dev}");
    let probes = read_number(&format!("{base}/mcast_solicit")).unwrap_or(3)
        + read_number(&format!("{base}/app_solicit")).unwrap_or(0);
    let every = read_number(&format!("{base}/retrans_time_ms")).unwrap_or(1000);
    let ms = u64::try_from(probes.clamp(1, 10) * every.clamp(10, 10_000)).unwrap_or(3000);
    Duration::from_millis(ms + 500)
}

/// A directly attached IPv4 subnet of an Ethernet interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthernetLink {
    pub interface: String,
    /// Our address there.
    pub ip: Ipv4Addr,
    pub net: ipnetwork::Ipv4Network,
    /// Our MAC address there.
    pub mac: [u8; 6],
}

/// The IPv4 subnets of this machine's interfaces that resolve neighbours
/// by ARP and have a MAC address (not loopback, not `NOARP`, not a
/// point-to-point link without one).
pub fn ethernet_links() -> Vec<EthernetLink> {
    let Ok(addrs) = getifaddrs() else {
        return Vec::new();
    };
    let addrs: Vec<_> = addrs.collect();
    let mac_of = |name: &str| {
        addrs
            .iter()
            .filter(|a| a.interface_name == name)
            .find_map(|a| a.address.as_ref()?.as_link_addr()?.addr())
            .filter(|m| m.iter().any(|b| *b != 0))
    };
    let mut out = Vec::new();
    for a in &addrs {
        if a.flags.contains(InterfaceFlags::IFF_LOOPBACK)
            || a.flags.contains(InterfaceFlags::IFF_NOARP)
        {
            continue;
        }
        let (Some(addr), Some(mask)) = (a.address.as_ref(), a.netmask.as_ref()) else {
            continue;
        };
        let (Some(ip), Some(m)) = (addr.as_sockaddr_in(), mask.as_sockaddr_in()) else {
            continue;
        };
        let prefix = u8::try_from(u32::from(m.ip()).leading_ones()).unwrap_or(32);
        let (Ok(net), Some(mac)) = (
            ipnetwork::Ipv4Network::new(ip.ip(), prefix),
            mac_of(&a.interface_name),
        ) else {
            continue;
        };
        out.push(EthernetLink {
            interface: a.interface_name.clone(),
            ip: ip.ip(),
            net,
            mac,
        });
    }
    out
}

fn on_link_subnets() -> Vec<(IpNetwork, Duration)> {
    let Ok(addrs) = getifaddrs() else {
        tracing::warn!("cannot list the interfaces: scanning without a neighbour-table bound");
        return Vec::new();
    };
    let mut out = Vec::new();
    for a in addrs {
        if a.flags.contains(InterfaceFlags::IFF_LOOPBACK)
            || a.flags.contains(InterfaceFlags::IFF_NOARP)
        {
            continue;
        }
        let (Some(addr), Some(mask)) = (a.address, a.netmask) else {
            continue;
        };
        let net = if let (Some(ip), Some(m)) = (addr.as_sockaddr_in(), mask.as_sockaddr_in()) {
            let prefix = u32::from(m.ip()).leading_ones();
            ipnetwork::Ipv4Network::new(ip.ip(), u8::try_from(prefix).unwrap_or(32))
                .ok()
                .map(|n| (IpNetwork::V4(n), resolution_time("ipv4", &a.interface_name)))
        } else if let (Some(ip), Some(m)) = (addr.as_sockaddr_in6(), mask.as_sockaddr_in6()) {
            let prefix = u128::from(m.ip()).leading_ones();
            ipnetwork::Ipv6Network::new(ip.ip(), u8::try_from(prefix).unwrap_or(128))
                .ok()
                .map(|n| (IpNetwork::V6(n), resolution_time("ipv6", &a.interface_name)))
        } else {
            None
        };
        out.extend(net);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_on_link_addresses_need_an_entry() {
        let limit = NeighbourLimit {
            on_link: vec![("10.77.0.1/16".parse().unwrap(), Duration::from_secs(3))],
            max_unresolved: 100,
        };
        assert_eq!(
            limit.resolution_time("10.77.3.4".parse().unwrap()),
            Some(Duration::from_secs(3))
        );
        assert_eq!(limit.resolution_time("10.78.0.1".parse().unwrap()), None);
        assert!(limit.touches("10.77.8.0/22".parse().unwrap()));
        assert!(limit.touches("10.0.0.0/8".parse().unwrap()));
        assert!(!limit.touches("127.0.0.0/16".parse().unwrap()));
        assert!(!limit.touches("::1/128".parse().unwrap()));
    }

    #[test]
    fn this_machine_has_room_and_loopback_is_not_on_link() {
        let limit = NeighbourLimit::of_this_machine();
        assert!(limit.max_unresolved >= MIN_UNRESOLVED);
        assert!(!limit.touches("127.0.0.0/8".parse().unwrap()));
    }
}
