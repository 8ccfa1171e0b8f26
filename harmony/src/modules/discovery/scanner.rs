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

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnetwork::IpNetwork;
use tokio::task::JoinSet;

use super::validate::{Rejection, validate};
use crate::domain::HttpUrl;
use crate::domain::events::{Event, EventBus};
use crate::domain::inventory::DiscoveredHost;
use crate::infra::http_client::{HttpClient, HttpError, HttpProfile, TcpCheck, tcp_check};

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
        }
    }
}

/// The range could not be scanned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
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
    pub unreachable: u64,
    /// Probe attempts that failed for a local reason (EMFILE, ENFILE,
    /// ENOBUFS, EADDRNOTAVAIL, ENOMEM, EAGAIN) and were retried.
    pub local_errors: u64,
    /// Addresses given up after `local_retries` local failures.
    pub lost: Vec<IpAddr>,
    /// Probes that panicked (a bug): counted, never silent.
    pub internal_errors: u64,
    /// Concurrency actually used at the start.
    pub concurrency: usize,
    pub elapsed: Duration,
}

/// Scans ranges with one configuration.
#[derive(Debug, Clone)]
pub struct Scanner {
    config: Arc<ScanConfig>,
    events: Option<EventBus>,
}

/// Errno values that mean "this machine", not "that address". Linux numbers.
const LOCAL_ERRNOS: &[i32] = &[
    11,  // EAGAIN
    12,  // ENOMEM
    23,  // ENFILE
    24,  // EMFILE
    99,  // EADDRNOTAVAIL
    105, // ENOBUFS
];

fn is_local(e: &io::Error) -> bool {
    e.raw_os_error().is_some_and(|n| LOCAL_ERRNOS.contains(&n))
        || matches!(
            e.kind(),
            io::ErrorKind::AddrNotAvailable | io::ErrorKind::OutOfMemory
        )
}

enum Attempt {
    Done(ProbeResult),
    Local,
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

    /// Probes `ip` once (with a client of its own: for single checks; a
    /// scan shares one client over all its addresses).
    pub async fn probe(&self, ip: IpAddr) -> ProbeResult {
        let client = match self.client() {
            Ok(c) => c,
            Err(e) => {
                return ProbeResult::Rejected {
                    ip,
                    reason: Rejection::Http(e.to_string()),
                };
            }
        };
        match probe(ip, self.config.clone(), &client).await {
            Attempt::Done(r) => r,
            Attempt::Local => ProbeResult::NotListening(NotListening::Unreachable),
        }
    }

    /// Scans every address of `range` once.
    pub async fn scan(&self, range: IpNetwork) -> Result<ScanReport, ScanError> {
        let cfg = &self.config;
        let started = Instant::now();
        let addrs: Vec<IpAddr> = addresses(range, cfg.max_addresses)?.collect();
        let client = self.client()?;
        let total = addrs.len() as u64;
        let mut pending: VecDeque<(IpAddr, u32)> = addrs.into_iter().map(|a| (a, 0)).collect();

        let soft = raise_nofile_limit();
        let headroom = cfg.fd_headroom.min(soft / 2);
        let fit = usize::try_from(soft.saturating_sub(headroom)).unwrap_or(usize::MAX);
        let start_cap = cfg.concurrency.min(fit).max(1);
        let mut cap = start_cap;
        let mut calm = 0usize;

        let mut report = ScanReport {
            range: range.to_string(),
            port: cfg.port,
            addresses: total,
            concurrency: start_cap,
            ..ScanReport::default()
        };
        let task = format!("scan {range} port {}", cfg.port);
        let step = (total / 100).max(1);
        let mut done = 0u64;
        self.progress(&task, 0, total);

        let mut set: JoinSet<(IpAddr, u32, Attempt)> = JoinSet::new();
        loop {
            while set.len() < cap {
                let Some((ip, tries)) = pending.pop_front() else {
                    break;
                };
                let cfg = cfg.clone();
                let client = client.clone();
                set.spawn(async move {
                    if tries > 0 {
                        let exp = cfg.retry_backoff.saturating_mul(1 << (tries - 1).min(16));
                        tokio::time::sleep(exp.min(Duration::from_secs(1))).await;
                    }
                    (ip, tries, probe(ip, cfg, &client).await)
                });
            }
            let Some(joined) = set.join_next().await else {
                break;
            };
            let (ip, tries, attempt) = match joined {
                Ok(x) => x,
                Err(e) => {
                    tracing::error!(error = %e, "probe task failed");
                    report.internal_errors += 1;
                    done += 1;
                    continue;
                }
            };
            match attempt {
                Attempt::Local => {
                    report.local_errors += 1;
                    // Back off: fewer sockets at once until things calm down.
                    cap = (cap * 3 / 4).max(1);
                    calm = 0;
                    if tries < cfg.local_retries {
                        pending.push_back((ip, tries + 1));
                        continue;
                    }
                    tracing::warn!(%ip, "giving up after repeated local errors");
                    report.lost.push(ip);
                }
                Attempt::Done(r) => {
                    calm += 1;
                    if calm >= 32 && cap < start_cap {
                        cap += 1;
                        calm = 0;
                    }
                    match r {
                        ProbeResult::Found(h) => report.found.push(*h),
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
        report.elapsed = started.elapsed();
        Ok(report)
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

async fn probe(ip: IpAddr, cfg: Arc<ScanConfig>, client: &HttpClient) -> Attempt {
    let addr = SocketAddr::new(ip, cfg.port);
    let nobody = |n| Attempt::Done(ProbeResult::NotListening(n));
    match tcp_check(addr, cfg.connect_timeout).await {
        TcpCheck::Open => {}
        TcpCheck::Refused => return nobody(NotListening::Refused),
        TcpCheck::TimedOut => return nobody(NotListening::ConnectTimeout),
        TcpCheck::Failed(e) if is_local(&e) => return Attempt::Local,
        TcpCheck::Failed(e) if e.kind() == io::ErrorKind::TimedOut => {
            return nobody(NotListening::ConnectTimeout);
        }
        TcpCheck::Failed(_) => return nobody(NotListening::Unreachable),
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
    let resp = client
        .get(&url)
        .header("accept", "application/json")
        .header("connection", "close")
        .send()
        .await;
    let resp = match resp {
        Ok(r) => r,
        Err(e) => return failed(ip, &cfg, e),
    };
    if resp.status() != 200 {
        return Attempt::Done(ProbeResult::Rejected {
            ip,
            reason: Rejection::Status(resp.status()),
        });
    }
    let body = match resp.bytes_capped(cfg.max_body as u64).await {
        Ok(b) => b,
        Err(e) => return failed(ip, &cfg, e),
    };
    Attempt::Done(match validate(ip, &body) {
        Ok(host) => ProbeResult::Found(Box::new(host)),
        Err(reason) => ProbeResult::Rejected { ip, reason },
    })
}

/// What a failed exchange means: a local shortage (retry), nobody
/// listening, or an answer not accepted.
fn failed(ip: IpAddr, cfg: &ScanConfig, e: HttpError) -> Attempt {
    let io = e.io_cause();
    if io.is_some_and(is_local) {
        return Attempt::Local;
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
