//! A TCP SYN sweep over a raw IPv4 socket (what `nmap -sS` and `masscan`
//! do): which addresses of a list accept connections on one port.
//!
//! A connect scan pays, per address, a socket, a connect, an event-loop
//! registration and a close: on a /16 that is 65 536 sockets for a few
//! dozen agents. The sweep sends one hand-made SYN per address from one raw
//! socket and listens for SYN-ACKs on the same socket; a kernel BPF filter
//! passes only SYN-ACKs from the swept port to our reserved source port, so
//! the RSTs of the closed addresses never reach user space. Our own kernel
//! has no connection for those SYN-ACKs and answers each with a RST, so no
//! half-open connection is left on an agent. Only the addresses that
//! answered are then probed with a real connect and `GET /`.
//!
//! The source port is reserved for the sweep by a bound (not listening)
//! TCP socket, so no connection of this machine uses it meanwhile.
//!
//! Loss: on loopback, a SYN-ACK can only be lost when the socket's receive
//! queue overflows; the kernel counts those drops (the `drops` column of
//! `/proc/net/raw`) and the sweep asks the non-responders again while it
//! saw new ones. On a routed
//! network loss is invisible: [`SynSweep::rounds`] (2 by default) asks the
//! non-responders again, at a bounded rate.
//!
//! Needs `CAP_NET_RAW`; without it a typed [`SynSweepError::NoPermission`]
//! lets the caller fall back to connecting to every address. IPv4 only.

use std::collections::BTreeSet;
use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::socket::{setsockopt, sockopt};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv4::{self, MutableIpv4Packet};
use pnet_packet::tcp::{self, MutableTcpPacket, TcpFlags};
use socket2::{Domain, Protocol, SockFilter, Socket, Type};

/// IPv4 header (20, no options) + TCP header (20, no options).
const PACKET_LEN: usize = 40;
/// How often the reader looks at the clock and the stop flag.
const READ_TIMEOUT: Duration = Duration::from_millis(5);
/// Targets a sender thread takes at a time from the shared list.
const SEND_BLOCK: usize = 256;
/// Receive buffer asked for (forced when we may: root); SYN-ACKs wait
/// there while the sender runs.
const RECV_BUFFER: usize = 32 << 20;
/// Sender threads at most for an unpaced sweep.
const MAX_SENDERS: usize = 8;
/// Extra rounds at most when the kernel reports dropped replies.
const MAX_LOSS_ROUNDS: u32 = 3;

/// How to sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynSweep {
    /// The port swept.
    pub port: u16,
    /// SYNs per second at most; `None`: as fast as the kernel takes them
    /// (loopback, where each SYN is answered within the send).
    pub rate: Option<u32>,
    /// Rounds of SYNs (the later ones only to non-responders), whatever
    /// the kernel reports about drops.
    pub rounds: u32,
    /// Silence after a round's last SYN before the round ends.
    pub quiet: Duration,
}

/// What a sweep found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SynSweepReport {
    /// Addresses that answered with a SYN-ACK.
    pub open: BTreeSet<Ipv4Addr>,
    /// SYNs sent, all rounds.
    pub sent: u64,
    /// Rounds run.
    pub rounds: u32,
    /// Replies the kernel dropped because our receive queue was full (each
    /// made the sweep ask the non-responders again).
    pub dropped: u64,
}

/// The sweep could not run.
#[derive(Debug, thiserror::Error)]
pub enum SynSweepError {
    #[error("no permission to open a raw socket (needs CAP_NET_RAW)")]
    NoPermission,
    #[error("raw socket: {0}")]
    Socket(#[source] io::Error),
    #[error("no local address reaches {target}: {source}")]
    NoRoute {
        target: Ipv4Addr,
        #[source]
        source: io::Error,
    },
    #[error("the targets are reached from more than one local address ({first} and {other})")]
    MixedSources { first: Ipv4Addr, other: Ipv4Addr },
    #[error("no SYN could be sent: {0}")]
    Send(#[source] io::Error),
}

impl SynSweep {
    /// Defaults for `port` towards `targets`: unpaced and one round (more
    /// only on reported drops) when every target is a loopback address;
    /// else 10 000 SYNs per second, 2 rounds, 500 ms of silence.
    pub fn new(port: u16, loopback: bool) -> Self {
        if loopback {
            Self {
                port,
                rate: None,
                rounds: 1,
                // Each SYN's answer is queued before its send returns:
                // the silence only covers a late scheduler.
                quiet: Duration::from_millis(10),
            }
        } else {
            Self {
                port,
                rate: Some(10_000),
                rounds: 2,
                quiet: Duration::from_millis(500),
            }
        }
    }

    /// The addresses of `targets` that accept connections on the port.
    /// Blocking: at most about `rounds` x (targets / rate + quiet).
    pub fn run(&self, targets: &[Ipv4Addr]) -> Result<SynSweepReport, SynSweepError> {
        let (Some(first), Some(last)) = (targets.first(), targets.last()) else {
            return Ok(SynSweepReport::default());
        };
        let source = source_for(*first)?;
        let other = source_for(*last)?;
        if other != source {
            return Err(SynSweepError::MixedSources {
                first: source,
                other,
            });
        }
        // The reserved source port: bound, not listening.
        let reserve = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))
            .map_err(SynSweepError::Socket)?;
        reserve
            .bind(&SocketAddr::V4(SocketAddrV4::new(source, 0)).into())
            .map_err(SynSweepError::Socket)?;
        let sport = reserve
            .local_addr()
            .map_err(SynSweepError::Socket)?
            .as_socket()
            .map(|a| a.port())
            .ok_or_else(|| SynSweepError::Socket(io::Error::other("no local port")))?;
        let raw = raw_socket(source, self.port, sport)?;

        let wanted: BTreeSet<Ipv4Addr> = targets.iter().copied().collect();
        let answered = Mutex::new(BTreeSet::new());
        let dropped = AtomicU64::new(0);
        let stop = AtomicBool::new(false);
        let rounds_max = self.rounds.max(1) + MAX_LOSS_ROUNDS;
        let per_round = self
            .rate
            .map_or(Duration::from_secs(5), |r| {
                Duration::from_millis(wanted.len() as u64 * 1000 / u64::from(r.max(1)))
            })
            .saturating_add(self.quiet);
        // Bound on the reader, whatever happens to the sender.
        let deadline =
            Instant::now() + per_round.saturating_mul(rounds_max) + Duration::from_secs(5);

        let (sent, rounds) = std::thread::scope(|s| {
            s.spawn(|| read_replies(&raw, self.port, sport, &wanted, &answered, &stop, deadline));
            let mut result: Result<(u64, u32), SynSweepError> = Ok((0, 0));
            let mut drops_seen = 0;
            for round in 0..rounds_max {
                // Unknown drops count as drops: ask again.
                let drops_now = socket_drops(&raw).unwrap_or(drops_seen + 1);
                if round >= self.rounds.max(1) && drops_now == drops_seen {
                    break;
                }
                if round > 0 && drops_now > drops_seen {
                    tracing::debug!(
                        dropped = drops_now - drops_seen,
                        "SYN-ACKs dropped: asking again"
                    );
                }
                dropped.store(drops_now, Ordering::Relaxed);
                drops_seen = drops_now;
                let todo: Vec<Ipv4Addr> = match answered.lock() {
                    Ok(set) => wanted.difference(&set).copied().collect(),
                    Err(_) => Vec::new(),
                };
                if todo.is_empty() {
                    break;
                }
                match self.send_round(&raw, source, sport, &todo) {
                    Ok(n) => result = result.map(|(total, r)| (total + n, r + 1)),
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
                tracing::debug!(round, asked = todo.len(), "SYN sweep round sent");
                std::thread::sleep(self.quiet);
            }
            stop.store(true, Ordering::Relaxed);
            result
        })?;
        let dropped = socket_drops(&raw).unwrap_or_else(|| dropped.into_inner());
        drop(reserve);
        let open = answered.into_inner().unwrap_or_default();
        let report = SynSweepReport {
            open,
            sent,
            rounds,
            dropped,
        };
        tracing::info!(
            port = self.port,
            targets = wanted.len(),
            syns = report.sent,
            rounds = report.rounds,
            dropped = report.dropped,
            open = report.open.len(),
            "SYN sweep done"
        );
        Ok(report)
    }

    /// Sends one SYN per target, paced to the rate. Unpaced (loopback,
    /// where the whole answer to a SYN is computed within its send), the
    /// targets are split over one sender thread per CPU. A send that fails
    /// is skipped (a later round or the caller's fallback covers it); all
    /// failing is an error.
    fn send_round(
        &self,
        raw: &Socket,
        source: Ipv4Addr,
        sport: u16,
        todo: &[Ipv4Addr],
    ) -> Result<u64, SynSweepError> {
        let senders = match self.rate {
            Some(_) => 1,
            None => std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .clamp(1, MAX_SENDERS),
        };
        // Senders take blocks from one list, so none idles while another
        // still has a backlog.
        let next = AtomicUsize::new(0);
        let results: Vec<(u64, Option<io::Error>)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..senders.min(todo.len()))
                .map(|_| s.spawn(|| self.send_blocks(raw, source, sport, todo, &next)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| (0, Some(io::Error::other("a SYN sender panicked"))))
                })
                .collect()
        });
        let sent: u64 = results.iter().map(|(n, _)| n).sum();
        let last_error = results.into_iter().filter_map(|(_, e)| e).last();
        match last_error {
            Some(e) if sent == 0 => Err(SynSweepError::Send(e)),
            Some(e) => {
                tracing::debug!(error = %e, failed = todo.len() as u64 - sent, "some SYNs not sent");
                Ok(sent)
            }
            None => Ok(sent),
        }
    }

    /// Sends one SYN to each target of the blocks of `todo` it takes from
    /// `next`, paced to the rate (one sender then: the pace is over the
    /// whole list); how many went out and the last error.
    fn send_blocks(
        &self,
        raw: &Socket,
        source: Ipv4Addr,
        sport: u16,
        todo: &[Ipv4Addr],
        next: &AtomicUsize,
    ) -> (u64, Option<io::Error>) {
        let started = Instant::now();
        let mut packet = [0u8; PACKET_LEN];
        let (mut sent, mut last_error) = (0u64, None);
        // Bounded: every turn takes a block, and the list is finite.
        loop {
            let first = next.fetch_add(SEND_BLOCK, Ordering::Relaxed);
            let Some(block) = todo.get(first..(first + SEND_BLOCK).min(todo.len())) else {
                break;
            };
            if block.is_empty() {
                break;
            }
            for (k, target) in block.iter().enumerate() {
                let i = first + k;
                if let Some(rate) = self.rate
                    && i.is_multiple_of(16)
                {
                    let due = Duration::from_micros(i as u64 * 1_000_000 / u64::from(rate.max(1)));
                    if let Some(wait) = due.checked_sub(started.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
                syn_packet(
                    &mut packet,
                    source,
                    sport,
                    *target,
                    self.port,
                    u32::from(*target),
                );
                let to = SocketAddr::V4(SocketAddrV4::new(*target, 0));
                match raw.send_to(&packet, &to.into()) {
                    Ok(_) => sent += 1,
                    Err(e) if e.raw_os_error() == Some(105) => {
                        // ENOBUFS: let the queue drain, then go on.
                        std::thread::sleep(Duration::from_millis(1));
                        last_error = Some(e);
                    }
                    Err(e) => last_error = Some(e),
                }
            }
        }
        (sent, last_error)
    }
}

/// The local address the kernel would use towards `target` (a UDP socket
/// "connected" to it sends nothing).
fn source_for(target: Ipv4Addr) -> Result<Ipv4Addr, SynSweepError> {
    let no_route = |source| SynSweepError::NoRoute { target, source };
    let udp = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).map_err(no_route)?;
    udp.connect((target, 9)).map_err(no_route)?;
    match udp.local_addr().map_err(no_route)? {
        SocketAddr::V4(a) => Ok(*a.ip()),
        SocketAddr::V6(_) => Err(no_route(io::Error::other("not IPv4"))),
    }
}

/// The raw socket: we write the IP header, a filter passes only SYN-ACKs
/// from `port` to `sport`, drops are reported, the receive buffer is large.
/// Bound to `source`, it is not even offered the segments addressed to
/// others (on loopback: every SYN we send).
fn raw_socket(source: Ipv4Addr, port: u16, sport: u16) -> Result<Socket, SynSweepError> {
    let raw = match Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::TCP)) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return Err(SynSweepError::NoPermission);
        }
        Err(e) => return Err(SynSweepError::Socket(e)),
    };
    raw.set_header_included_v4(true)
        .map_err(SynSweepError::Socket)?;
    raw.bind(&SocketAddr::V4(SocketAddrV4::new(source, 0)).into())
        .map_err(SynSweepError::Socket)?;
    raw.attach_filter(&syn_ack_filter(port, sport))
        .map_err(SynSweepError::Socket)?;
    raw.set_read_timeout(Some(READ_TIMEOUT))
        .map_err(SynSweepError::Socket)?;
    if setsockopt(&raw, sockopt::RcvBufForce, &RECV_BUFFER).is_err() {
        // Not root: the largest the system allows.
        let _ = raw.set_recv_buffer_size(RECV_BUFFER);
    }
    Ok(raw)
}

/// Classic BPF over an IPv4 packet: accept TCP segments from `port` to
/// `sport` with both SYN and ACK set, drop everything else.
fn syn_ack_filter(port: u16, sport: u16) -> Vec<SockFilter> {
    const LDX_B_MSH: u16 = 0x01 | 0x10 | 0xa0; // X = 4 * (P[k] & 0xf)
    const LD_H_IND: u16 = 0x08 | 0x40; // A = P[X + k] (16 bits)
    const LD_B_IND: u16 = 0x10 | 0x40; // A = P[X + k] (8 bits)
    const JEQ_K: u16 = 0x05 | 0x10; // A == k ?
    const AND_K: u16 = 0x04 | 0x50; // A &= k
    const RET_K: u16 = 0x06; // accept k bytes
    let syn_ack = u32::from(TcpFlags::SYN | TcpFlags::ACK);
    vec![
        SockFilter::new(LDX_B_MSH, 0, 0, 0),
        SockFilter::new(LD_H_IND, 0, 0, 0),
        SockFilter::new(JEQ_K, 0, 5, u32::from(port)),
        SockFilter::new(LD_H_IND, 0, 0, 2),
        SockFilter::new(JEQ_K, 0, 3, u32::from(sport)),
        SockFilter::new(LD_B_IND, 0, 0, 13),
        SockFilter::new(AND_K, 0, 0, syn_ack),
        SockFilter::new(JEQ_K, 0, 1, syn_ack),
        SockFilter::new(RET_K, 0, 0, 0xffff),
        SockFilter::new(RET_K, 0, 0, 0),
    ]
}

/// Collects SYN-ACK senders of `wanted` until `stop` or `deadline`, then
/// drains what is queued.
fn read_replies(
    raw: &Socket,
    port: u16,
    sport: u16,
    wanted: &BTreeSet<Ipv4Addr>,
    answered: &Mutex<BTreeSet<Ipv4Addr>>,
    stop: &AtomicBool,
    deadline: Instant,
) {
    let mut buf = [0u8; 128];
    let mut draining = false;
    loop {
        if !draining && (stop.load(Ordering::Relaxed) || Instant::now() >= deadline) {
            // What arrived meanwhile still counts: read it without waiting.
            draining = true;
            if raw.set_nonblocking(true).is_err() {
                return;
            }
        }
        let len = match (&*raw).read(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if draining {
                    return;
                }
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::debug!(error = %e, "SYN sweep read failed");
                if draining {
                    return;
                }
                std::thread::sleep(READ_TIMEOUT);
                continue;
            }
        };
        if let Some(ip) = syn_ack_from(&buf[..len.min(buf.len())], port, sport, wanted)
            && let Ok(mut set) = answered.lock()
        {
            set.insert(ip);
        }
    }
}

/// The packets the kernel dropped for the raw socket `raw` because its
/// receive queue was full: the `drops` column of its line in
/// `/proc/net/raw` (found by the socket's inode). `None` when unreadable.
fn socket_drops(raw: &Socket) -> Option<u64> {
    let inode = nix::sys::stat::fstat(raw).ok()?.st_ino;
    let table = std::fs::read_to_string("/proc/net/raw").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(9)?.parse::<u64>().ok()? == inode)
            .then(|| fields.last()?.parse().ok())
            .flatten()
    })
}

/// Writes into `packet` a SYN from `source:sport` to `target:port`.
fn syn_packet(
    packet: &mut [u8; PACKET_LEN],
    source: Ipv4Addr,
    sport: u16,
    target: Ipv4Addr,
    port: u16,
    seq: u32,
) {
    let (head, body) = packet.split_at_mut(20);
    if let Some(mut tcp) = MutableTcpPacket::new(body) {
        tcp.set_source(sport);
        tcp.set_destination(port);
        tcp.set_sequence(seq.wrapping_mul(2_654_435_761));
        tcp.set_acknowledgement(0);
        tcp.set_data_offset(5);
        tcp.set_flags(TcpFlags::SYN);
        tcp.set_window(64_240);
        tcp.set_urgent_ptr(0);
        tcp.set_checksum(0);
        let sum = tcp::ipv4_checksum(&tcp.to_immutable(), &source, &target);
        tcp.set_checksum(sum);
    }
    if let Some(mut ip) = MutableIpv4Packet::new(head) {
        ip.set_version(4);
        ip.set_header_length(5);
        ip.set_dscp(0);
        ip.set_ecn(0);
        ip.set_total_length(PACKET_LEN as u16);
        ip.set_identification(0);
        ip.set_flags(ipv4::Ipv4Flags::DontFragment);
        ip.set_fragment_offset(0);
        ip.set_ttl(64);
        ip.set_next_level_protocol(IpNextHeaderProtocols::Tcp);
        ip.set_source(source);
        ip.set_destination(target);
        ip.set_checksum(0);
        let sum = ipv4::checksum(&ip.to_immutable());
        ip.set_checksum(sum);
    }
}

/// The sender of `packet` (an IPv4 packet) if it is a SYN-ACK from `port`
/// to `sport` sent by an address of `wanted`; `None` for anything else.
pub fn syn_ack_from(
    packet: &[u8],
    port: u16,
    sport: u16,
    wanted: &BTreeSet<Ipv4Addr>,
) -> Option<Ipv4Addr> {
    let ip = pnet_packet::ipv4::Ipv4Packet::new(packet)?;
    if ip.get_version() != 4 || ip.get_next_level_protocol() != IpNextHeaderProtocols::Tcp {
        return None;
    }
    let header = usize::from(ip.get_header_length()) * 4;
    let tcp = pnet_packet::tcp::TcpPacket::new(packet.get(header..)?)?;
    let syn_ack = TcpFlags::SYN | TcpFlags::ACK;
    let from = ip.get_source();
    (tcp.get_source() == port
        && tcp.get_destination() == sport
        && tcp.get_flags() & syn_ack == syn_ack
        && tcp.get_flags() & TcpFlags::RST == 0
        && wanted.contains(&from))
    .then_some(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syn_ack(from: Ipv4Addr, to: Ipv4Addr, sport: u16, dport: u16, flags: u8) -> Vec<u8> {
        let mut p = [0u8; PACKET_LEN];
        syn_packet(&mut p, from, sport, to, dport, 7);
        let mut tcp = MutableTcpPacket::new(&mut p[20..]).unwrap();
        tcp.set_flags(flags);
        p.to_vec()
    }

    #[test]
    fn a_syn_is_a_valid_ipv4_tcp_segment() {
        let mut p = [0u8; PACKET_LEN];
        let (src, dst) = (Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(127, 0, 3, 9));
        syn_packet(&mut p, src, 40_000, dst, 25_000, 1);
        let ip = pnet_packet::ipv4::Ipv4Packet::new(&p).unwrap();
        assert_eq!(ip.get_checksum(), ipv4::checksum(&ip));
        assert_eq!((ip.get_source(), ip.get_destination()), (src, dst));
        let tcp = pnet_packet::tcp::TcpPacket::new(&p[20..]).unwrap();
        assert_eq!(tcp.get_flags(), TcpFlags::SYN);
        assert_eq!((tcp.get_source(), tcp.get_destination()), (40_000, 25_000));
        assert_eq!(tcp.get_checksum(), tcp::ipv4_checksum(&tcp, &src, &dst));
    }

    #[test]
    fn only_syn_acks_from_the_port_to_our_port_by_wanted_hosts_count() {
        let us = Ipv4Addr::new(127, 0, 0, 1);
        let agent = Ipv4Addr::new(127, 0, 9, 9);
        let wanted: BTreeSet<Ipv4Addr> = [agent].into();
        let sa = TcpFlags::SYN | TcpFlags::ACK;
        let ok = syn_ack(agent, us, 25_000, 40_000, sa);
        assert_eq!(syn_ack_from(&ok, 25_000, 40_000, &wanted), Some(agent));
        // A RST, another port, another destination port, a stranger.
        let rst = syn_ack(agent, us, 25_000, 40_000, TcpFlags::RST | TcpFlags::ACK);
        assert_eq!(syn_ack_from(&rst, 25_000, 40_000, &wanted), None);
        let other_port = syn_ack(agent, us, 25_001, 40_000, sa);
        assert_eq!(syn_ack_from(&other_port, 25_000, 40_000, &wanted), None);
        let other_dst = syn_ack(agent, us, 25_000, 40_001, sa);
        assert_eq!(syn_ack_from(&other_dst, 25_000, 40_000, &wanted), None);
        let stranger = syn_ack(Ipv4Addr::new(127, 0, 9, 10), us, 25_000, 40_000, sa);
        assert_eq!(syn_ack_from(&stranger, 25_000, 40_000, &wanted), None);
        // Truncated.
        assert_eq!(syn_ack_from(&ok[..30], 25_000, 40_000, &wanted), None);
        assert_eq!(syn_ack_from(&[], 25_000, 40_000, &wanted), None);
    }
}
