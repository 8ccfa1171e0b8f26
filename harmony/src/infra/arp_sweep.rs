//! An ARP sweep of a directly attached Ethernet subnet over a raw packet
//! socket (what `arp-scan` does): which addresses of a list have a host.
//!
//! A TCP connect to an on-link address makes the kernel resolve it, and an
//! absent address holds an `INCOMPLETE` neighbour entry for seconds in a
//! table shared by the whole machine (see
//! `modules::discovery::neighbours`): a sparse /16 then takes minutes. The
//! sweep asks every address itself, one broadcast ARP request each at a
//! bounded rate, a second round for those that did not answer (ARP can be
//! dropped), and collects the replies until a quiet window has passed after
//! the last request. The kernel ignores those unsolicited replies (no entry
//! is created), so the neighbour table is not touched at all.
//!
//! Needs `CAP_NET_RAW`; without it, or on an interface that is not
//! Ethernet, a typed [`ArpSweepError`] says why and the caller falls back to
//! probing every address.

use std::collections::BTreeSet;
use std::io;
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pnet_datalink::{Channel, Config, DataLinkSender, MacAddr};
use pnet_packet::Packet;
use pnet_packet::arp::{ArpHardwareTypes, ArpOperations, ArpPacket, MutableArpPacket};
use pnet_packet::ethernet::{EtherTypes, EthernetPacket, MutableEthernetPacket};

/// Ethernet header (14) + ARP for IPv4 over Ethernet (28).
const FRAME_LEN: usize = 42;
/// Read timeout of the packet socket: how often the reader looks at the
/// clock and the stop flag.
const READ_TIMEOUT: Duration = Duration::from_millis(50);

/// Where and how fast to sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpSweep {
    /// The interface the subnet is attached to.
    pub interface: String,
    /// Our address on it (the requests' sender).
    pub ip: Ipv4Addr,
    /// Our MAC address on it (the requests' sender, the replies' target).
    pub mac: [u8; 6],
    /// Requests per second at most.
    pub rate: u32,
    /// Rounds of requests (the later ones only to non-responders).
    pub rounds: u32,
    /// Silence after a round's last request before it ends.
    pub quiet: Duration,
}

/// The sweep could not run.
#[derive(Debug, thiserror::Error)]
pub enum ArpSweepError {
    #[error("no permission to open a packet socket on {interface} (needs CAP_NET_RAW)")]
    NoPermission { interface: String },
    #[error("interface {interface} not found")]
    NoInterface { interface: String },
    #[error("interface {interface} is not an Ethernet interface")]
    NotEthernet { interface: String },
    #[error("packet socket on {interface}: {source}")]
    Socket {
        interface: String,
        #[source]
        source: io::Error,
    },
    #[error("no ARP request could be sent on {interface}: {source}")]
    Send {
        interface: String,
        #[source]
        source: io::Error,
    },
}

impl ArpSweep {
    /// Defaults for `interface` with our `ip` and `mac` on it: 10 000
    /// requests per second, 2 rounds, 500 ms of silence.
    pub fn new(interface: &str, ip: Ipv4Addr, mac: [u8; 6]) -> Self {
        Self {
            interface: interface.to_string(),
            ip,
            mac,
            rate: 10_000,
            rounds: 2,
            quiet: Duration::from_millis(500),
        }
    }

    /// The addresses of `targets` that answered. Blocking: at most about
    /// `rounds` x (targets / rate + quiet).
    pub fn run(&self, targets: &[Ipv4Addr]) -> Result<BTreeSet<Ipv4Addr>, ArpSweepError> {
        let name = || self.interface.clone();
        let iface = pnet_datalink::interfaces()
            .into_iter()
            .find(|i| i.name == self.interface)
            .ok_or_else(|| ArpSweepError::NoInterface { interface: name() })?;
        if iface.is_loopback() || iface.mac.is_none_or(|m| m == MacAddr::zero()) {
            return Err(ArpSweepError::NotEthernet { interface: name() });
        }
        let config = Config {
            read_timeout: Some(READ_TIMEOUT),
            write_timeout: Some(Duration::from_secs(1)),
            read_buffer_size: 65_536,
            ..Config::default()
        };
        let (mut tx, mut rx) = match pnet_datalink::channel(&iface, config) {
            Ok(Channel::Ethernet(tx, rx)) => (tx, rx),
            Ok(_) => return Err(ArpSweepError::NotEthernet { interface: name() }),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return Err(ArpSweepError::NoPermission { interface: name() });
            }
            Err(source) => {
                return Err(ArpSweepError::Socket {
                    interface: name(),
                    source,
                });
            }
        };
        let wanted: BTreeSet<Ipv4Addr> = targets.iter().copied().collect();
        let answered = Mutex::new(BTreeSet::new());
        let stop = AtomicBool::new(false);
        let rate = u64::from(self.rate.max(1));
        let rounds = self.rounds.max(1);
        // Bound on the reader, whatever happens to the sender.
        let per_round = Duration::from_millis(wanted.len() as u64 * 1000 / rate) + self.quiet;
        let deadline = Instant::now() + per_round.saturating_mul(rounds) + Duration::from_secs(5);

        let sent = std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    match rx.next() {
                        Ok(frame) => {
                            if let Some(ip) = arp_reply_from(frame, self.mac, &wanted)
                                && let Ok(mut set) = answered.lock()
                            {
                                set.insert(ip);
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
                        Err(e) => {
                            tracing::debug!(error = %e, "ARP sweep read failed");
                            std::thread::sleep(READ_TIMEOUT);
                        }
                    }
                }
            });
            let mut result = Ok(0usize);
            for round in 0..rounds {
                let todo: Vec<Ipv4Addr> = match answered.lock() {
                    Ok(set) => wanted.difference(&set).copied().collect(),
                    Err(_) => Vec::new(),
                };
                if todo.is_empty() {
                    break;
                }
                match self.send_round(tx.as_mut(), &todo, rate) {
                    Ok(n) => result = result.map(|total| total + n),
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
                tracing::debug!(round, asked = todo.len(), "ARP sweep round sent");
                std::thread::sleep(self.quiet);
            }
            stop.store(true, Ordering::Relaxed);
            result
        });
        let sent = sent?;
        let answered = answered.into_inner().unwrap_or_default();
        tracing::info!(
            interface = %self.interface,
            targets = wanted.len(),
            requests = sent,
            answered = answered.len(),
            "ARP sweep done"
        );
        Ok(answered)
    }

    /// Sends one request per target, paced to `rate` per second. A send
    /// that fails is skipped (the next round asks again); all failing is
    /// an error.
    fn send_round(
        &self,
        tx: &mut dyn DataLinkSender,
        todo: &[Ipv4Addr],
        rate: u64,
    ) -> Result<usize, ArpSweepError> {
        let started = Instant::now();
        let mut frame = [0u8; FRAME_LEN];
        let (mut sent, mut last_error) = (0usize, None);
        for (i, target) in todo.iter().enumerate() {
            if i % 16 == 0 {
                let due = Duration::from_micros(i as u64 * 1_000_000 / rate);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            arp_request(&mut frame, self.mac, self.ip, *target);
            match tx.send_to(&frame, None) {
                Some(Ok(())) => sent += 1,
                Some(Err(e)) => last_error = Some(e),
                None => last_error = Some(io::Error::other("no room in the send buffer")),
            }
        }
        match last_error {
            Some(source) if sent == 0 => Err(ArpSweepError::Send {
                interface: self.interface.clone(),
                source,
            }),
            Some(e) => {
                tracing::debug!(error = %e, failed = todo.len() - sent, "some ARP requests not sent");
                Ok(sent)
            }
            None => Ok(sent),
        }
    }
}

/// Writes into `frame` a broadcast ARP request from `mac`/`ip` for
/// `target`.
fn arp_request(frame: &mut [u8; FRAME_LEN], mac: [u8; 6], ip: Ipv4Addr, target: Ipv4Addr) {
    let ours = MacAddr::from(mac);
    let (head, body) = frame.split_at_mut(14);
    if let Some(mut eth) = MutableEthernetPacket::new(head) {
        eth.set_destination(MacAddr::broadcast());
        eth.set_source(ours);
        eth.set_ethertype(EtherTypes::Arp);
    }
    if let Some(mut arp) = MutableArpPacket::new(body) {
        arp.set_hardware_type(ArpHardwareTypes::Ethernet);
        arp.set_protocol_type(EtherTypes::Ipv4);
        arp.set_hw_addr_len(6);
        arp.set_proto_addr_len(4);
        arp.set_operation(ArpOperations::Request);
        arp.set_sender_hw_addr(ours);
        arp.set_sender_proto_addr(ip);
        arp.set_target_hw_addr(MacAddr::zero());
        arp.set_target_proto_addr(target);
    }
}

/// The sender of `frame` if it is an ARP reply for IPv4 over Ethernet,
/// addressed to `mac`, from an address of `wanted`; `None` for anything
/// else (requests, replies to others, strangers, truncated frames).
pub fn arp_reply_from(frame: &[u8], mac: [u8; 6], wanted: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    let eth = EthernetPacket::new(frame)?;
    if eth.get_ethertype() != EtherTypes::Arp {
        return None;
    }
    if eth.payload().len() < 28 {
        return None;
    }
    let arp = ArpPacket::new(eth.payload())?;
    let ours = MacAddr::from(mac);
    let ok = arp.get_operation() == ArpOperations::Reply
        && arp.get_hardware_type() == ArpHardwareTypes::Ethernet
        && arp.get_protocol_type() == EtherTypes::Ipv4
        && arp.get_hw_addr_len() == 6
        && arp.get_proto_addr_len() == 4
        && arp.get_target_hw_addr() == ours
        && (eth.get_destination() == ours || eth.get_destination() == MacAddr::broadcast());
    let sender = arp.get_sender_proto_addr();
    (ok && wanted.contains(&sender)).then_some(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: [u8; 6] = [0x52, 0x54, 0, 0, 0, 1];
    const THEIRS: [u8; 6] = [0x52, 0x54, 0, 0, 0, 2];

    fn frame(op: u16, from: Ipv4Addr, to_mac: [u8; 6]) -> Vec<u8> {
        let mut f = [0u8; FRAME_LEN];
        arp_request(&mut f, THEIRS, from, Ipv4Addr::new(10, 78, 0, 1));
        {
            let mut eth = MutableEthernetPacket::new(&mut f[..14]).unwrap();
            eth.set_destination(MacAddr::from(to_mac));
        }
        let mut arp = MutableArpPacket::new(&mut f[14..]).unwrap();
        arp.set_operation(pnet_packet::arp::ArpOperation::new(op));
        arp.set_target_hw_addr(MacAddr::from(to_mac));
        // Real replies are padded to the Ethernet minimum.
        let mut v = f.to_vec();
        v.resize(60, 0);
        v
    }

    #[test]
    fn only_replies_to_us_from_asked_addresses_count() {
        let asked = Ipv4Addr::new(10, 78, 0, 2);
        let stranger = Ipv4Addr::new(10, 78, 0, 3);
        let wanted: BTreeSet<Ipv4Addr> = [asked].into();
        assert_eq!(
            arp_reply_from(&frame(2, asked, OURS), OURS, &wanted),
            Some(asked)
        );
        // A reply from an address not asked for.
        assert_eq!(
            arp_reply_from(&frame(2, stranger, OURS), OURS, &wanted),
            None
        );
        // A request (opcode 1), even from an asked address.
        assert_eq!(arp_reply_from(&frame(1, asked, OURS), OURS, &wanted), None);
        // A reply to another MAC.
        let other = [0x52, 0x54, 0, 0, 0, 9];
        assert_eq!(arp_reply_from(&frame(2, asked, other), OURS, &wanted), None);
        // Truncated frames: inside the ARP body, inside the Ethernet header.
        let whole = frame(2, asked, OURS);
        for len in [0, 10, 14, 20, 41] {
            assert_eq!(arp_reply_from(&whole[..len], OURS, &wanted), None, "{len}");
        }
        assert_eq!(arp_reply_from(&whole[..42], OURS, &wanted), Some(asked));
        // Not ARP at all.
        let mut ipv4 = whole.clone();
        ipv4[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(arp_reply_from(&ipv4, OURS, &wanted), None);
    }

    #[test]
    fn requests_are_broadcast_from_us() {
        let mut f = [0u8; FRAME_LEN];
        let (ip, target) = (Ipv4Addr::new(10, 78, 0, 1), Ipv4Addr::new(10, 78, 9, 9));
        arp_request(&mut f, OURS, ip, target);
        let eth = EthernetPacket::new(&f).unwrap();
        assert_eq!(eth.get_destination(), MacAddr::broadcast());
        assert_eq!(eth.get_source(), MacAddr::from(OURS));
        let arp = ArpPacket::new(eth.payload()).unwrap();
        assert_eq!(arp.get_operation(), ArpOperations::Request);
        assert_eq!(arp.get_sender_proto_addr(), ip);
        assert_eq!(arp.get_target_proto_addr(), target);
    }

    #[test]
    fn a_missing_interface_is_named() {
        let s = ArpSweep::new("hdnosuch0", Ipv4Addr::new(10, 78, 0, 1), OURS);
        let e = s.run(&[Ipv4Addr::new(10, 78, 0, 2)]).unwrap_err();
        assert!(matches!(e, ArpSweepError::NoInterface { .. }), "{e}");
    }
}
