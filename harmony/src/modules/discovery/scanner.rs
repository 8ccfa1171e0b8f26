//! The subnet scanner: one TCP port over every address of an
//! [`IpNetwork`], `GET /` on each that accepts, with hard bounds on
//! concurrency, time and size, and no silent loss when the *local* machine
//! runs out of sockets or file descriptors.
//!
//! The scanner has no default range: it scans exactly what the caller gives.
//! Each address gets a bare TCP connect first ([`tcp_check`], 500 ms): almost
//! every address of a range is closed, and that answer costs one syscall
//! round. Only open ports get `GET /` through [`crate::infra::http_client`]
//! with the scanner profile (one client per scan, no connection pooling, no
//! redirects, 3 s for the whole exchange, 1 MiB cap).
//!
//! Two bounds hold across the whole scan, whatever the number of peers:
//! - memory: the documents held at once fit a [`ByteBudget`] (8 MiB); a
//!   host waits for its bytes before it sends `GET /`, and found documents
//!   are kept compact (insignificant whitespace removed);
//! - the neighbour table: on a directly attached Ethernet network, the
//!   unresolved connects stay below the table's free room
//!   ([`NeighbourLimit`]) and each runs until the kernel resolves or fails
//!   the address, so a full table never makes a live agent look absent.
//!
//! On a directly attached Ethernet subnet the scan first sweeps it with ARP
//! ([`crate::infra::arp_sweep`], raw packet socket, needs `CAP_NET_RAW`)
//! and probes there only the addresses that answered (and our own): an
//! absent address then costs one ARP request and no neighbour entry, so a
//! sparse /16 takes seconds, not minutes. Without the capability, or when
//! the sweep fails, every address is probed as above.
//!
//! Loopback and routed addresses (at least [`ScanConfig::syn_sweep_min`] of
//! them) are swept with TCP SYNs first ([`crate::infra::syn_sweep`], raw
//! socket, needs `CAP_NET_RAW`): a closed address then costs one packet
//! and no socket, and an address that answered gets its `GET /` without
//! the bare connect. Without the capability every address is connected to.
//!
//! Local failures (file limit, no route, no buffers, no ports) are counted
//! by cause in [`LocalErrors`] and retried; an address that keeps failing
//! is reported in [`ScanReport::given_up`], never silently dropped.

use std::collections::{BTreeSet, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnetwork::IpNetwork;
use tokio::task::JoinSet;

use super::budget::{ByteBudget, BytePermit};
use super::neighbours::{EthernetLink, NeighbourLimit, ethernet_links};
use super::validate::{Rejection, validate};
use crate::domain::HttpUrl;
use crate::domain::events::{Event, EventBus};
use crate::domain::inventory::DiscoveredHost;
use crate::infra::arp_sweep::ArpSweep;
use crate::infra::http_client::{
    HttpClient, HttpError, HttpProfile, HttpResponse, TcpCheck, tcp_check,
};
use crate::infra::syn_sweep::SynSweep;

/// Tunables. [`ScanConfig::new`] gives the defaults for a port.
#[derive(Debug, Clone)]
pub struct ScanConfig {
    pub port: u16,
    /// Probes in flight at most (lowered to fit the open-file limit).
    pub concurrency: usize,
    pub connect_timeout: Duration,
    /// Cap on the whole HTTP exchange (headers and body) after connecting.
    pub host_timeout: Duration,
    /// Largest accepted body, in bytes.
    pub max_body: usize,
    /// Largest range accepted (addresses).
    pub max_addresses: u128,
    /// Retries of an address whose probe failed for a local reason.
    pub local_retries: u32,
    /// First retry delay; doubles per retry, at most 1 s.
    pub retry_backoff: Duration,
    /// File descriptors left free below the soft limit.
    pub fd_headroom: u64,
    /// Bytes of agent documents held at once by the whole scan.
    pub body_budget: usize,
    /// Bytes a host reserves before its `GET /`; a larger document takes
    /// more if free at once, else the host asks again for all it needs.
    pub first_reservation: usize,
    /// Keep unresolved connects on directly attached networks below the
    /// kernel's neighbour-table room ([`NeighbourLimit`]).
    pub neighbour_bound: bool,
    /// Sweep directly attached Ethernet subnets with ARP first and probe
    /// there only the addresses that answered.
    pub arp_sweep: bool,
    /// ARP requests per second at most.
    pub arp_rate: u32,
    /// Sweep the addresses that need no neighbour entry (loopback, routed)
    /// with TCP SYNs first and probe only those that answered, when there
    /// are at least [`ScanConfig::syn_sweep_min`] of them.
    pub syn_sweep: bool,
    /// Fewer addresses than this are connected to directly.
    pub syn_sweep_min: usize,
    /// SYNs per second at most towards routed addresses (loopback is not
    /// paced).
    pub syn_rate: u32,
}

impl ScanConfig {
    pub fn new(port: u16) -> Self {
        Self {
            port,
            concurrency: 512,
            connect_timeout: Duration::from_millis(500),
            host_timeout: Duration::from_secs(3),
            max_body: 1 << 20,
            max_addresses: 1 << 20,
            local_retries: 8,
            retry_backoff: Duration::from_millis(20),
            fd_headroom: 64,
            body_budget: 8 << 20,
            first_reservation: 64 << 10,
            neighbour_bound: true,
            arp_sweep: true,
            arp_rate: 10_000,
            syn_sweep: true,
            syn_sweep_min: 256,
            syn_rate: 10_000,
        }
    }
}

/// The range could not be scanned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    #[error("the scan task failed: {0}")]
    Internal(String),
    #[error("range {range} holds {count} addresses; at most {max} may be scanned at once")]
    TooManyAddresses {
        range: String,
        count: u128,
        max: u128,
    },
}

/// What one address gave.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeResult {
    Found(Box<DiscoveredHost>),
    Rejected { ip: IpAddr, reason: Rejection },
    NotListening(NotListening),
}

/// Why nothing answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotListening {
    Refused,
    ConnectTimeout,
    /// Any other remote-side error (unreachable host or network...).
    Unreachable,
}

/// A whole scan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScanReport {
    pub range: String,
    pub port: u16,
    /// Addresses probed (network and broadcast addresses of IPv4 subnets
    /// larger than /31 are skipped).
    pub addresses: u64,
    pub found: Vec<DiscoveredHost>,
    pub rejected: Vec<(IpAddr, Rejection)>,
    pub refused: u64,
    pub connect_timeouts: u64,
    /// Unreachable, including the addresses that did not answer the ARP
    /// sweep (not probed).
    pub unreachable: u64,
    /// Probe attempts that failed for a local reason (EMFILE, ENFILE,
    /// ENETUNREACH, ENOBUFS, EADDRNOTAVAIL, ENOMEM, EAGAIN); the total of
    /// [`ScanReport::local`].
    pub local_errors: u64,
    /// The same, by cause.
    pub local: LocalErrors,
    /// Addresses given up after `local_retries` local failures: not known
    /// to be absent.
    pub given_up: Vec<IpAddr>,
    /// Hosts that waited for the byte budget before their `GET /` a second
    /// time (their document was larger than the first reservation).
    pub budget_waits: u64,
    /// Unresolved connects allowed at once by the neighbour table, when the
    /// range is on a directly attached network.
    pub neighbour_bound: Option<usize>,
    /// Addresses that answered the ARP sweep, when one ran (the range is
    /// on a directly attached Ethernet subnet and the sweep could open its
    /// packet socket).
    pub arp_responders: Option<u64>,
    /// Addresses that answered the SYN sweep, when one ran (enough
    /// loopback or routed addresses, and the raw socket could be opened).
    pub syn_responders: Option<u64>,
    /// Addresses that did not answer the SYN sweep (closed port, or no
    /// host): not probed.
    pub syn_silent: u64,
    /// Probes that panicked (a bug): counted, never silent.
    pub internal_errors: u64,
    /// Concurrency actually used at the start.
    pub concurrency: usize,
    pub elapsed: Duration,
}

/// Probe attempts that failed for a reason on this machine, by cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LocalErrors {
    /// EMFILE, ENFILE: the open-file limit.
    pub file_limit: u64,
    /// ENETUNREACH: no route to the address.
    pub no_route: u64,
    /// ENOBUFS, ENOMEM, EAGAIN: buffers or memory.
    pub no_buffers: u64,
    /// EADDRNOTAVAIL: no local port or address left.
    pub no_ports: u64,
}

impl LocalErrors {
    pub fn total(&self) -> u64 {
        self.file_limit + self.no_route + self.no_buffers + self.no_ports
    }

    fn count(&mut self, kind: LocalKind) {
        match kind {
            LocalKind::FileLimit => self.file_limit += 1,
            LocalKind::NoRoute => self.no_route += 1,
            LocalKind::NoBuffers => self.no_buffers += 1,
            LocalKind::NoPorts => self.no_ports += 1,
        }
    }
}

/// Scans ranges with one configuration.
#[derive(Debug, Clone)]
pub struct Scanner {
    config: Arc<ScanConfig>,
    events: Option<EventBus>,
}

/// Why a probe failed on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LocalKind {
    FileLimit,
    NoRoute,
    NoBuffers,
    NoPorts,
}

impl LocalKind {
    /// A shortage of this machine's resources: fewer probes at once help.
    fn is_shortage(self) -> bool {
        self != LocalKind::NoRoute
    }
}

/// The local cause of `e`, if it is one. Linux errno numbers.
/// `EHOSTUNREACH` is not local: it is what a failed neighbour resolution
/// (an absent host on the segment) or a router's ICMP answer gives.
fn local_kind(e: &io::Error) -> Option<LocalKind> {
    match e.raw_os_error() {
        Some(23 | 24) => Some(LocalKind::FileLimit), // ENFILE, EMFILE
        Some(101) => Some(LocalKind::NoRoute),       // ENETUNREACH
        Some(11 | 12 | 105) => Some(LocalKind::NoBuffers), // EAGAIN, ENOMEM, ENOBUFS
        Some(99) => Some(LocalKind::NoPorts),        // EADDRNOTAVAIL
        _ => match e.kind() {
            io::ErrorKind::AddrNotAvailable => Some(LocalKind::NoPorts),
            io::ErrorKind::OutOfMemory => Some(LocalKind::NoBuffers),
            io::ErrorKind::NetworkUnreachable => Some(LocalKind::NoRoute),
            _ => None,
        },
    }
}

/// Retries of an address without a route: a route may appear, but a range
/// without one must not take `local_retries` rounds per address.
const NO_ROUTE_RETRIES: u32 = 2;

enum Attempt {
    Done(ProbeResult),
    Local(LocalKind),
    /// The document needs this many bytes of the budget: ask again for all
    /// of them before the next `GET /`.
    NeedsBytes(usize),
}

/// One address to probe.
#[derive(Debug, Clone, Copy)]
struct Job {
    ip: IpAddr,
    tries: u32,
    /// Bytes to reserve before `GET /` (after a first try found them).
    reserve: Option<usize>,
    /// The address answered the SYN sweep: the port is known to be open,
    /// so no bare connect first.
    swept: bool,
}

/// What every probe of one scan shares.
struct Shared {
    cfg: Arc<ScanConfig>,
    client: HttpClient,
    budget: ByteBudget,
    neighbours: Option<NeighbourLimit>,
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now
/// in force.
pub fn raise_nofile_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise RLIMIT_NOFILE");
            rlimit::Resource::NOFILE
                .get()
                .map_or(1024, |(soft, _)| soft)
        }
    }
}

/// The addresses of `range` worth probing, after the size check.
/// Whether `ip` of `range` is one [`addresses`] yields (IPv4 ranges up to
/// /30 leave out their network and broadcast addresses).
fn is_host_address(range: IpNetwork, ip: IpAddr) -> bool {
    match (range, ip) {
        (IpNetwork::V4(n), IpAddr::V4(v4)) if n.prefix() < 31 => {
            v4 != n.network() && v4 != n.broadcast()
        }
        _ => true,
    }
}

pub fn addresses(
    range: IpNetwork,
    max: u128,
) -> Result<Box<dyn Iterator<Item = IpAddr> + Send>, ScanError> {
    let count: u128 = match range {
        IpNetwork::V4(n) if n.prefix() == 0 => 1 << 32,
        IpNetwork::V4(n) => u128::from(n.size()),
        IpNetwork::V6(n) if n.prefix() == 0 => u128::MAX,
        IpNetwork::V6(n) => n.size(),
    };
    if count > max {
        return Err(ScanError::TooManyAddresses {
            range: range.to_string(),
            count,
            max,
        });
    }
    Ok(match range {
        IpNetwork::V4(n) if n.prefix() < 31 => {
            let (net, bc) = (n.network(), n.broadcast());
            Box::new(
                n.iter()
                    .filter(move |a| *a != net && *a != bc)
                    .map(IpAddr::V4),
            )
        }
        IpNetwork::V4(n) => Box::new(n.iter().map(IpAddr::V4)),
        IpNetwork::V6(n) => Box::new(n.iter().map(IpAddr::V6)),
    })
}

impl Scanner {
    pub fn new(config: ScanConfig) -> Self {
        Self {
            config: Arc::new(config),
            events: None,
        }
    }

    /// Publishes `Event::Progress` on `bus` while scanning.
    pub fn with_events(mut self, bus: EventBus) -> Self {
        self.events = Some(bus);
        self
    }

    pub fn config(&self) -> &ScanConfig {
        &self.config
    }

    /// The HTTP client of one scan.
    fn client(&self) -> Result<HttpClient, ScanError> {
        // The exchange after the TCP check: its connect (again) and the
        // whole GET within host_timeout.
        HttpClient::new(HttpProfile::scanner(
            self.config.connect_timeout,
            self.config.host_timeout,
        ))
        .map_err(|e| ScanError::Client(e.to_string()))
    }

    fn shared(&self, neighbours: Option<NeighbourLimit>) -> Result<Arc<Shared>, ScanError> {
        Ok(Arc::new(Shared {
            cfg: self.config.clone(),
            client: self.client()?,
            budget: ByteBudget::new(self.config.body_budget.max(self.config.max_body)),
            neighbours,
        }))
    }

    /// Probes `ip` once (with a client of its own: for single checks; a
    /// scan shares one client over all its addresses).
    pub async fn probe(&self, ip: IpAddr) -> ProbeResult {
        let neighbours = self
            .config
            .neighbour_bound
            .then(NeighbourLimit::of_this_machine);
        let shared = match self.shared(neighbours) {
            Ok(s) => s,
            Err(e) => {
                return ProbeResult::Rejected {
                    ip,
                    reason: Rejection::Http(e.to_string()),
                };
            }
        };
        let mut job = Job {
            ip,
            tries: 0,
            reserve: None,
            swept: false,
        };
        // Bounded: a second turn only with the whole document reserved.
        for _ in 0..2 {
            match probe(job, &shared).await {
                Attempt::Done(r) => return r,
                Attempt::Local(_) => break,
                Attempt::NeedsBytes(n) => job.reserve = Some(n),
            }
        }
        ProbeResult::NotListening(NotListening::Unreachable)
    }

    /// Scans every address of `range` once.
    ///
    /// The scan runs as a task of the runtime (not in the caller's
    /// `block_on` thread): the probes it spawns then start and finish on
    /// the workers' own queues, without a thread wake-up per address.
    pub async fn scan(&self, range: IpNetwork) -> Result<ScanReport, ScanError> {
        self.scan_with(range, None, None).await
    }

    /// [`Scanner::scan`], handing each found host to `sink` as soon as it
    /// is validated (so the caller can store it while the scan goes on)
    /// instead of keeping it in [`ScanReport::found`]. A host the sink
    /// no longer takes (receiver gone) is kept in the report.
    pub async fn scan_into(
        &self,
        range: IpNetwork,
        only: Option<BTreeSet<IpAddr>>,
        sink: tokio::sync::mpsc::UnboundedSender<DiscoveredHost>,
    ) -> Result<ScanReport, ScanError> {
        self.scan_with(range, only, Some(sink)).await
    }

    async fn scan_with(
        &self,
        range: IpNetwork,
        only: Option<BTreeSet<IpAddr>>,
        sink: Option<tokio::sync::mpsc::UnboundedSender<DiscoveredHost>>,
    ) -> Result<ScanReport, ScanError> {
        let this = self.clone();
        match tokio::spawn(async move { this.scan_here(range, only, sink).await }).await {
            Ok(r) => r,
            Err(e) => Err(ScanError::Internal(e.to_string())),
        }
    }

    /// Scans the addresses of `range` (only those of `only` when given:
    /// e.g. the DHCP server's leases).
    async fn scan_here(
        &self,
        range: IpNetwork,
        only: Option<BTreeSet<IpAddr>>,
        sink: Option<tokio::sync::mpsc::UnboundedSender<DiscoveredHost>>,
    ) -> Result<ScanReport, ScanError> {
        let cfg = &self.config;
        let started = Instant::now();
        let addrs: Vec<IpAddr> = match &only {
            // The range's own rules (no network or broadcast address).
            Some(only) if (only.len() as u128) < cfg.max_addresses => only
                .iter()
                .copied()
                .filter(|ip| range.contains(*ip) && is_host_address(range, *ip))
                .collect(),
            _ => addresses(range, cfg.max_addresses)?
                .filter(|ip| only.as_ref().is_none_or(|o| o.contains(ip)))
                .collect(),
        };
        let total = addrs.len() as u64;
        let (addrs, arp_responders) = if cfg.arp_sweep {
            self.arp_sweep(addrs).await
        } else {
            (addrs, None)
        };
        let silent = total - addrs.len() as u64;
        let before_syn = addrs.len() as u64;
        let (addrs, swept_open) = if cfg.syn_sweep {
            self.syn_sweep(addrs).await
        } else {
            (addrs, None)
        };
        let syn_responders = swept_open.as_ref().map(|open| open.len() as u64);
        let syn_silent = before_syn - addrs.len() as u64;
        let neighbours = cfg
            .neighbour_bound
            .then(NeighbourLimit::of_this_machine)
            .filter(|n| n.touches(range));
        let neighbour_cap = neighbours.as_ref().map(|n| n.max_unresolved);
        let shared = self.shared(neighbours)?;
        let mut pending: VecDeque<Job> = addrs
            .into_iter()
            .map(|ip| Job {
                ip,
                tries: 0,
                reserve: None,
                swept: swept_open.as_ref().is_some_and(|open| open.contains(&ip)),
            })
            .collect();

        let soft = raise_nofile_limit();
        let headroom = cfg.fd_headroom.min(soft / 2);
        let fit = usize::try_from(soft.saturating_sub(headroom)).unwrap_or(usize::MAX);
        let start_cap = cfg
            .concurrency
            .min(fit)
            .min(neighbour_cap.unwrap_or(usize::MAX))
            .max(1);
        let mut cap = start_cap;
        let mut calm = 0usize;

        let mut report = ScanReport {
            range: range.to_string(),
            port: cfg.port,
            addresses: total,
            concurrency: start_cap,
            neighbour_bound: neighbour_cap,
            arp_responders,
            syn_responders,
            syn_silent,
            unreachable: silent,
            ..ScanReport::default()
        };
        let task = format!("scan {range} port {}", cfg.port);
        let step = (total / 100).max(1);
        let mut done = silent + syn_silent;
        self.progress(&task, done, total);

        let mut set: JoinSet<(Job, Attempt)> = JoinSet::new();
        loop {
            while set.len() < cap {
                let Some(job) = pending.pop_front() else {
                    break;
                };
                let shared = shared.clone();
                set.spawn(async move {
                    if job.tries > 0 {
                        let exp = shared
                            .cfg
                            .retry_backoff
                            .saturating_mul(1 << (job.tries - 1).min(16));
                        tokio::time::sleep(exp.min(Duration::from_secs(1))).await;
                    }
                    (job, probe(job, &shared).await)
                });
            }
            let Some(joined) = set.join_next().await else {
                break;
            };
            let (job, attempt) = match joined {
                Ok(x) => x,
                Err(e) => {
                    tracing::error!(error = %e, "probe task failed");
                    report.internal_errors += 1;
                    done += 1;
                    continue;
                }
            };
            match attempt {
                Attempt::NeedsBytes(n) => {
                    report.budget_waits += 1;
                    pending.push_front(Job {
                        reserve: Some(n),
                        ..job
                    });
                    continue;
                }
                Attempt::Local(kind) => {
                    report.local_errors += 1;
                    report.local.count(kind);
                    if kind.is_shortage() {
                        // Back off: fewer sockets at once until things calm down.
                        cap = (cap * 3 / 4).max(1);
                        calm = 0;
                    }
                    let retries = if kind == LocalKind::NoRoute {
                        NO_ROUTE_RETRIES.min(cfg.local_retries)
                    } else {
                        cfg.local_retries
                    };
                    if job.tries < retries {
                        pending.push_back(Job {
                            tries: job.tries + 1,
                            ..job
                        });
                        continue;
                    }
                    tracing::warn!(ip = %job.ip, cause = ?kind, "giving up after repeated local errors");
                    report.given_up.push(job.ip);
                }
                Attempt::Done(r) => {
                    calm += 1;
                    if calm >= 32 && cap < start_cap {
                        cap += 1;
                        calm = 0;
                    }
                    match r {
                        ProbeResult::Found(h) => match &sink {
                            Some(sink) => {
                                if let Err(back) = sink.send(*h) {
                                    report.found.push(back.0);
                                }
                            }
                            None => report.found.push(*h),
                        },
                        ProbeResult::Rejected { ip, reason } => report.rejected.push((ip, reason)),
                        ProbeResult::NotListening(NotListening::Refused) => report.refused += 1,
                        ProbeResult::NotListening(NotListening::ConnectTimeout) => {
                            report.connect_timeouts += 1;
                        }
                        ProbeResult::NotListening(NotListening::Unreachable) => {
                            report.unreachable += 1;
                        }
                    }
                }
            }
            done += 1;
            if done.is_multiple_of(step) {
                self.progress(&task, done, total);
            }
        }
        if !done.is_multiple_of(step) {
            self.progress(&task, done, total);
        }
        report.found.sort_by_key(|h| h.ip);
        report.rejected.sort_by_key(|(ip, _)| *ip);
        report.given_up.sort();
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// `addrs` less those of directly attached Ethernet subnets that did
    /// not answer an ARP sweep (our own addresses are kept), and how many
    /// answered; `addrs` unchanged and `None` when no sweep ran.
    async fn arp_sweep(&self, addrs: Vec<IpAddr>) -> (Vec<IpAddr>, Option<u64>) {
        let links = ethernet_links();
        let mut groups: Vec<(&EthernetLink, Vec<std::net::Ipv4Addr>)> =
            links.iter().map(|l| (l, Vec::new())).collect();
        let mut out = Vec::with_capacity(addrs.len());
        for ip in addrs {
            let on = match ip {
                IpAddr::V4(v4) => groups.iter_mut().find(|(l, _)| l.net.contains(v4)),
                IpAddr::V6(_) => None,
            };
            match (on, ip) {
                (Some((_, targets)), IpAddr::V4(v4)) => targets.push(v4),
                _ => out.push(ip),
            }
        }
        let mut responders: Option<u64> = None;
        for (link, targets) in groups {
            if targets.is_empty() {
                continue;
            }
            let mut sweep = ArpSweep::new(&link.interface, link.ip, link.mac);
            sweep.rate = self.config.arp_rate;
            let asked = targets.clone();
            let answered = match tokio::task::spawn_blocking(move || sweep.run(&asked)).await {
                Ok(Ok(answered)) => answered,
                Ok(Err(e)) => {
                    tracing::info!(interface = %link.interface, error = %e,
                        "no ARP sweep: probing every address of the subnet");
                    out.extend(targets.into_iter().map(IpAddr::V4));
                    continue;
                }
                Err(e) => {
                    tracing::info!(interface = %link.interface, error = %e,
                        "ARP sweep task failed: probing every address of the subnet");
                    out.extend(targets.into_iter().map(IpAddr::V4));
                    continue;
                }
            };
            *responders.get_or_insert(0) += answered.len() as u64;
            out.extend(
                targets
                    .into_iter()
                    .filter(|t| answered.contains(t) || links.iter().any(|l| l.ip == *t))
                    .map(IpAddr::V4),
            );
        }
        (out, responders)
    }

    /// `addrs` less those that did not answer a SYN sweep, when enough of
    /// them need no neighbour entry (loopback, routed: on-link addresses
    /// are the ARP sweep's, and a SYN to an absent one would hold a
    /// neighbour entry); those that answered, `None` when no sweep ran.
    async fn syn_sweep(&self, addrs: Vec<IpAddr>) -> (Vec<IpAddr>, Option<BTreeSet<IpAddr>>) {
        let limit = NeighbourLimit::of_this_machine();
        let (mut targets, mut out) = (Vec::new(), Vec::new());
        for ip in addrs {
            match ip {
                IpAddr::V4(v4) if limit.resolution_time(ip).is_none() => targets.push(v4),
                _ => out.push(ip),
            }
        }
        if targets.len() < self.config.syn_sweep_min {
            out.extend(targets.into_iter().map(IpAddr::V4));
            out.sort();
            return (out, None);
        }
        let loopback = targets.iter().all(|t| t.is_loopback());
        let mut sweep = SynSweep::new(self.config.port, loopback);
        if !loopback {
            sweep.rate = Some(self.config.syn_rate);
        }
        let asked = targets.clone();
        let report = match tokio::task::spawn_blocking(move || sweep.run(&asked)).await {
            Ok(Ok(report)) => report,
            Ok(Err(e)) => {
                tracing::info!(error = %e, "no SYN sweep: connecting to every address");
                out.extend(targets.into_iter().map(IpAddr::V4));
                out.sort();
                return (out, None);
            }
            Err(e) => {
                tracing::info!(error = %e, "SYN sweep task failed: connecting to every address");
                out.extend(targets.into_iter().map(IpAddr::V4));
                out.sort();
                return (out, None);
            }
        };
        let open: BTreeSet<IpAddr> = report.open.into_iter().map(IpAddr::V4).collect();
        out.extend(open.iter().copied());
        out.sort();
        (out, Some(open))
    }

    fn progress(&self, task: &str, done: u64, total: u64) {
        if let Some(bus) = &self.events {
            bus.publish(Event::Progress {
                task: task.to_string(),
                done,
                total,
            });
        }
    }
}

async fn probe(job: Job, shared: &Shared) -> Attempt {
    let cfg = &shared.cfg;
    let ip = job.ip;
    let addr = SocketAddr::new(ip, cfg.port);
    let nobody = |n| Attempt::Done(ProbeResult::NotListening(n));
    // On a directly attached network, wait for the kernel's answer about
    // the neighbour (it fails an absent one with EHOSTUNREACH): a connect
    // given up sooner would leave its entry occupying the table anyway.
    let connect_timeout = shared
        .neighbours
        .as_ref()
        .and_then(|n| n.resolution_time(ip))
        .map_or(cfg.connect_timeout, |t| t.max(cfg.connect_timeout));
    let check = if job.swept {
        TcpCheck::Open
    } else {
        tcp_check(addr, connect_timeout).await
    };
    match check {
        TcpCheck::Open => {}
        TcpCheck::Refused => return nobody(NotListening::Refused),
        TcpCheck::TimedOut => return nobody(NotListening::ConnectTimeout),
        TcpCheck::Failed(e) => {
            if let Some(kind) = local_kind(&e) {
                return Attempt::Local(kind);
            }
            if e.kind() == io::ErrorKind::TimedOut {
                return nobody(NotListening::ConnectTimeout);
            }
            return nobody(NotListening::Unreachable);
        }
    }
    let url: HttpUrl = match format!("http://{addr}/").parse() {
        Ok(u) => u,
        Err(e) => {
            return Attempt::Done(ProbeResult::Rejected {
                ip,
                reason: Rejection::Http(format!("{e}")),
            });
        }
    };
    // The bytes first (waiting here costs the host none of its time limit).
    let first = job
        .reserve
        .unwrap_or(cfg.first_reservation)
        .clamp(1, cfg.max_body.max(1));
    let mut permit = shared.budget.acquire(first).await;
    let resp = shared
        .client
        .get(&url)
        .header("accept", "application/json")
        .header("connection", "close")
        .send()
        .await;
    let resp = match resp {
        Ok(r) => r,
        Err(e) => return failed(ip, cfg, e),
    };
    if resp.status() != 200 {
        return Attempt::Done(ProbeResult::Rejected {
            ip,
            reason: Rejection::Status(resp.status()),
        });
    }
    let body = match read_body(ip, resp, cfg, &shared.budget, &mut permit).await {
        Ok(b) => b,
        Err(attempt) => return attempt,
    };
    let result = match validate(ip, &body) {
        Ok(mut host) => {
            drop(body);
            host.raw_json = compact_json(host.raw_json);
            ProbeResult::Found(Box::new(host))
        }
        Err(reason) => ProbeResult::Rejected { ip, reason },
    };
    drop(permit);
    Attempt::Done(result)
}

/// The body, within `max_body` and the bytes `permit` holds (grown at once
/// if the budget has them free; otherwise the probe ends asking for all it
/// needs, to start again when they are free).
async fn read_body(
    ip: IpAddr,
    mut resp: HttpResponse,
    cfg: &ScanConfig,
    budget: &ByteBudget,
    permit: &mut BytePermit,
) -> Result<Vec<u8>, Attempt> {
    let too_large = || {
        Attempt::Done(ProbeResult::Rejected {
            ip,
            reason: Rejection::TooLarge(cfg.max_body),
        })
    };
    let announced = resp.content_length();
    if let Some(n) = announced {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if n > cfg.max_body {
            return Err(too_large());
        }
        if !permit.try_grow(budget, n) {
            return Err(Attempt::NeedsBytes(n));
        }
    }
    let mut out: Vec<u8> = Vec::with_capacity(
        announced.map_or(8192, |n| usize::try_from(n).unwrap_or(0).min(cfg.max_body)),
    );
    // Bounded: every turn adds bytes, and more than max_body ends it.
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(out),
            Err(e) => return Err(failed(ip, cfg, e)),
        };
        let len = out.len() + chunk.len();
        if len > cfg.max_body {
            return Err(too_large());
        }
        if len > permit.bytes() {
            let want = len.max(permit.bytes().saturating_mul(2)).min(cfg.max_body);
            if !permit.try_grow(budget, want) {
                return Err(Attempt::NeedsBytes(cfg.max_body));
            }
        }
        out.extend_from_slice(&chunk);
    }
}

/// What a failed exchange means: a local shortage (retry), nobody
/// listening, or an answer not accepted.
fn failed(ip: IpAddr, cfg: &ScanConfig, e: HttpError) -> Attempt {
    let io = e.io_cause();
    if let Some(kind) = io.and_then(local_kind) {
        return Attempt::Local(kind);
    }
    let nobody = |n| Attempt::Done(ProbeResult::NotListening(n));
    let rejected = |reason| Attempt::Done(ProbeResult::Rejected { ip, reason });
    match e {
        HttpError::ConnectTimeout { .. } => nobody(NotListening::ConnectTimeout),
        HttpError::Connect { .. } => match io.map(io::Error::kind) {
            Some(io::ErrorKind::ConnectionRefused) => nobody(NotListening::Refused),
            Some(io::ErrorKind::TimedOut) => nobody(NotListening::ConnectTimeout),
            _ => nobody(NotListening::Unreachable),
        },
        HttpError::Timeout { .. } | HttpError::Idle { .. } => {
            rejected(Rejection::Timeout(cfg.host_timeout))
        }
        HttpError::TooLarge { .. } => rejected(Rejection::TooLarge(cfg.max_body)),
        other => rejected(Rejection::Http(other.to_string())),
    }
}

/// `json` without its insignificant whitespace (the same document: string
/// contents are copied as they are). A found host keeps its document until
/// it is stored; padding must not cost memory for every host of a scan.
pub fn compact_json(json: Vec<u8>) -> Vec<u8> {
    let spaces = json
        .iter()
        .filter(|b| matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
        .count();
    if spaces == 0 {
        return json;
    }
    let mut out = Vec::with_capacity(json.len() - spaces);
    let (mut in_string, mut escaped) = (false, false);
    for &b in &json {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
            out.push(b);
        } else if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_json_keeps_the_document() {
        let doc = b" { \"a b\" : [ 1 ,\n\t2 ] , \"c\\\" d\" : \" x \" }\r\n".to_vec();
        let small = compact_json(doc.clone());
        assert_eq!(small, br#"{"a b":[1,2],"c\" d":" x "}"#.to_vec());
        let a: serde_json::Value = serde_json::from_slice(&doc).unwrap();
        let b: serde_json::Value = serde_json::from_slice(&small).unwrap();
        assert_eq!(a, b);
        assert_eq!(compact_json(b"{}".to_vec()), b"{}".to_vec());
    }

    #[test]
    fn local_causes_are_named_and_unreachable_hosts_are_not_local() {
        let e = |n| io::Error::from_raw_os_error(n);
        assert_eq!(local_kind(&e(24)), Some(LocalKind::FileLimit));
        assert_eq!(local_kind(&e(101)), Some(LocalKind::NoRoute));
        assert_eq!(local_kind(&e(105)), Some(LocalKind::NoBuffers));
        assert_eq!(local_kind(&e(99)), Some(LocalKind::NoPorts));
        assert_eq!(local_kind(&e(113)), None); // EHOSTUNREACH: absent host
        assert_eq!(local_kind(&e(111)), None); // ECONNREFUSED
        let mut c = LocalErrors::default();
        c.count(LocalKind::FileLimit);
        c.count(LocalKind::NoRoute);
        assert_eq!((c.file_limit, c.no_route, c.total()), (1, 1, 2));
    }
}
