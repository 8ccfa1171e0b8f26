//! One address per host per scan. A host in the discovery environment
//! answers on every NIC that got a DHCP lease (the live image brings up
//! them all), so one scan finds it at two or more addresses. Storing each
//! sighting would move the host's address back and forth from scan to
//! scan (what the TUI and every later step show). [`OneAddressPerHost`]
//! keeps one sighting per physical host (its id and its MACs: boards that
//! share a firmware id stay apart): the address it was stored with last
//! time if it answered there again; else, for a host stored before, the
//! lowest address it answered on; for a new host, the first that answered.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use crate::domain::inventory::DiscoveredHost;
use crate::domain::values::{HostId, MacAddress};

/// A physical host as a scan sees it: its id and its sorted MACs.
pub type HostKey = (HostId, Vec<MacAddress>);

/// One host found at one address.
pub trait Sighting {
    fn key(&self) -> HostKey;
    fn ip(&self) -> IpAddr;
}

impl Sighting for DiscoveredHost {
    fn key(&self) -> HostKey {
        let mut macs = self.macs.clone();
        macs.sort();
        macs.dedup();
        (self.id.clone(), macs)
    }

    fn ip(&self) -> IpAddr {
        self.ip
    }
}

/// Filters one scan's sightings as they come (see the module doc).
#[derive(Debug)]
pub struct OneAddressPerHost<S> {
    /// Where each host was stored at its last sighting.
    last: HashMap<HostKey, IpAddr>,
    /// Hosts already passed on in this scan.
    passed: HashSet<HostKey>,
    /// Hosts seen only away from their last address so far: the lowest
    /// such sighting, passed on at the end unless the last address answers.
    away: HashMap<HostKey, S>,
}

impl<S: Sighting> OneAddressPerHost<S> {
    pub fn new(last: HashMap<HostKey, IpAddr>) -> Self {
        OneAddressPerHost {
            last,
            passed: HashSet::new(),
            away: HashMap::new(),
        }
    }

    /// The sighting to store now, if any: a host's first sighting unless
    /// it was stored elsewhere last time (then it waits), or its sighting
    /// at the address it was stored with.
    pub fn admit(&mut self, h: S) -> Option<S> {
        let key = h.key();
        if self.passed.contains(&key) {
            return None;
        }
        match self.last.get(&key) {
            Some(ip) if *ip != h.ip() => {
                match self.away.get(&key) {
                    Some(kept) if kept.ip() <= h.ip() => {}
                    _ => {
                        self.away.insert(key, h);
                    }
                }
                None
            }
            _ => {
                self.away.remove(&key);
                self.passed.insert(key);
                Some(h)
            }
        }
    }

    /// At the end of the scan: the hosts that did not answer where they
    /// were stored last, each at the lowest address it answered on.
    pub fn rest(self) -> Vec<S> {
        let mut rest: Vec<S> = self.away.into_values().collect();
        rest.sort_by_key(|h| h.ip());
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Seen(HostKey, IpAddr);

    impl Sighting for Seen {
        fn key(&self) -> HostKey {
            self.0.clone()
        }
        fn ip(&self) -> IpAddr {
            self.1
        }
    }

    const UUID: &str = "5f1b2c3d-4e5f-4a6b-8c7d-00001ab00000";
    const A: [&str; 2] = ["52:54:00:00:00:01", "52:54:00:00:00:02"];
    const B: [&str; 2] = ["52:54:00:00:01:01", "52:54:00:00:01:02"];

    fn key(macs: &[&str]) -> HostKey {
        let mut m: Vec<MacAddress> = macs.iter().map(|m| m.parse().unwrap()).collect();
        m.sort();
        (HostId::from_uuid(UUID).unwrap(), m)
    }

    fn at(macs: &[&str], last_octet: u8) -> Seen {
        Seen(key(macs), IpAddr::from([198, 51, 100, last_octet]))
    }

    fn octets(v: &[Seen]) -> Vec<String> {
        v.iter().map(|s| s.1.to_string()).collect()
    }

    #[test]
    fn a_new_host_on_two_addresses_is_stored_once_at_the_first() {
        let mut f = OneAddressPerHost::new(HashMap::new());
        assert_eq!(f.admit(at(&A, 9)).unwrap().1.to_string(), "198.51.100.9");
        assert!(f.admit(at(&A, 5)).is_none());
        assert!(f.rest().is_empty());
    }

    #[test]
    fn a_known_host_keeps_its_address_whatever_answers_first() {
        let last = HashMap::from([(key(&A), IpAddr::from([198, 51, 100, 9]))]);
        let mut f = OneAddressPerHost::new(last);
        // Its other NIC answers first: held back.
        assert!(f.admit(at(&A, 5)).is_none());
        // Where it was stored: passed on; any later one dropped.
        assert_eq!(f.admit(at(&A, 9)).unwrap().1.to_string(), "198.51.100.9");
        assert!(f.admit(at(&A, 7)).is_none());
        assert!(f.rest().is_empty());
    }

    #[test]
    fn a_host_gone_from_its_address_is_stored_at_its_lowest_new_one() {
        let last = HashMap::from([(key(&A), IpAddr::from([198, 51, 100, 9]))]);
        let mut f = OneAddressPerHost::new(last);
        for o in [20, 12, 30] {
            assert!(f.admit(at(&A, o)).is_none());
        }
        assert_eq!(octets(&f.rest()), ["198.51.100.12"]);
    }

    #[test]
    fn hosts_sharing_a_firmware_id_stay_apart() {
        let mut f = OneAddressPerHost::new(HashMap::new());
        assert!(f.admit(at(&A, 2)).is_some());
        assert!(f.admit(at(&B, 3)).is_some());
        assert!(f.admit(at(&A, 4)).is_none());
    }
}
