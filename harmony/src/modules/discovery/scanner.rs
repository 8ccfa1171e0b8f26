//! The subnet scanner: one TCP port over every address of an
//! [`IpNetwork`], `GET /` on each that accepts, with hard bounds on
//! concurrency, time and size, and no silent loss when the *local* machine
//! runs out of sockets or file descriptors.
//!
//! The scanner has no default range: it scans exactly what the caller gives.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use ipnetwork::IpNetwork;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use super::validate::{Rejection, validate};
use crate::domain::events::{Event, EventBus};
use crate::domain::inventory::DiscoveredHost;

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

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
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

    /// Probes `ip` once.
    pub async fn probe(&self, ip: IpAddr) -> ProbeResult {
        match probe(ip, self.config.clone()).await {
            Attempt::Done(r) => r,
            Attempt::Local => ProbeResult::NotListening(NotListening::Unreachable),
        }
    }

    /// Scans every address of `range` once.
    pub async fn scan(&self, range: IpNetwork) -> Result<ScanReport, ScanError> {
        let cfg = &self.config;
        let started = Instant::now();
        let addrs: Vec<IpAddr> = addresses(range, cfg.max_addresses)?.collect();
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
                set.spawn(async move {
                    if tries > 0 {
                        let exp = cfg.retry_backoff.saturating_mul(1 << (tries - 1).min(16));
                        tokio::time::sleep(exp.min(Duration::from_secs(1))).await;
                    }
                    (ip, tries, probe(ip, cfg).await)
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

async fn probe(ip: IpAddr, cfg: Arc<ScanConfig>) -> Attempt {
    let addr = SocketAddr::new(ip, cfg.port);
    let stream = match tokio::time::timeout(cfg.connect_timeout, TcpStream::connect(addr)).await {
        Err(_) => return Attempt::Done(ProbeResult::NotListening(NotListening::ConnectTimeout)),
        Ok(Err(e)) if is_local(&e) => return Attempt::Local,
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
            return Attempt::Done(ProbeResult::NotListening(NotListening::Refused));
        }
        Ok(Err(e)) if e.kind() == io::ErrorKind::TimedOut => {
            return Attempt::Done(ProbeResult::NotListening(NotListening::ConnectTimeout));
        }
        Ok(Err(_)) => return Attempt::Done(ProbeResult::NotListening(NotListening::Unreachable)),
        Ok(Ok(s)) => s,
    };
    let fetched = tokio::time::timeout(cfg.host_timeout, fetch(stream, addr, &cfg)).await;
    let result = match fetched {
        Err(_) => Err(Rejection::Timeout(cfg.host_timeout)),
        Ok(Err(FetchError::Local)) => return Attempt::Local,
        Ok(Err(FetchError::Rejected(r))) => Err(r),
        Ok(Ok(body)) => validate(ip, &body),
    };
    Attempt::Done(match result {
        Ok(host) => ProbeResult::Found(Box::new(host)),
        Err(reason) => ProbeResult::Rejected { ip, reason },
    })
}

enum FetchError {
    Local,
    Rejected(Rejection),
}

fn http_error(e: &hyper::Error) -> FetchError {
    use std::error::Error as _;
    if let Some(io) = e.source().and_then(|s| s.downcast_ref::<io::Error>())
        && is_local(io)
    {
        return FetchError::Local;
    }
    FetchError::Rejected(Rejection::Http(e.to_string()))
}

/// `GET /` on an open connection; the body, at most `max_body` bytes.
async fn fetch(
    stream: TcpStream,
    addr: SocketAddr,
    cfg: &ScanConfig,
) -> Result<Vec<u8>, FetchError> {
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| http_error(&e))?;
    let _conn = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let req = Request::get("/")
        .header(header::HOST, addr.to_string())
        .header(header::USER_AGENT, "harmony-discovery")
        .header(header::ACCEPT, "application/json")
        .header(header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| FetchError::Rejected(Rejection::Http(e.to_string())))?;
    let resp = sender.send_request(req).await.map_err(|e| http_error(&e))?;
    if resp.status() != StatusCode::OK {
        return Err(FetchError::Rejected(Rejection::Status(
            resp.status().as_u16(),
        )));
    }
    let too_large = || FetchError::Rejected(Rejection::TooLarge(cfg.max_body));
    let announced = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > cfg.max_body as u64) {
        return Err(too_large());
    }
    let mut body = resp.into_body();
    let mut out = Vec::with_capacity(announced.map_or(8192, |n| n as usize).min(cfg.max_body));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| http_error(&e))?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > cfg.max_body {
                return Err(too_large());
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}
