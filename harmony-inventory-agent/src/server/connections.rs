//! Accepting and holding the agent's HTTP connections within bounds, so that
//! no peer can make the agent stop answering.
//!
//! - Every connection must send a request's headers within
//!   [`ConnectionLimits::header_read_timeout`] (hyper's header-read timer;
//!   it also ends keep-alive connections idle that long).
//! - At most [`ConnectionLimits::max_connections`] are held (lowered to fit
//!   the process's file limit): when a new one arrives at the cap, the idle
//!   connection (no request in progress) with the oldest activity is
//!   dropped, so a fresh client is always served.
//! - On shutdown the listener closes, idle connections are dropped at once,
//!   requests in progress get [`ConnectionLimits::shutdown_grace`], then
//!   everything left is dropped.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

/// File descriptors kept free for everything but connections (the
/// listener, collection reads, LLDP sockets, the runtime).
pub const RESERVED_FDS: u64 = 64;
/// Pause after an accept error (e.g. `EMFILE`) before accepting again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// The bounds on connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time a connection has to send a request's headers (also the
    /// keep-alive idle limit between requests).
    pub header_read_timeout: Duration,
    /// Connections held at once (see [`effective_max_connections`]).
    pub max_connections: usize,
    /// Time requests in progress get to finish at shutdown.
    pub shutdown_grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(5),
            max_connections: 512,
            shutdown_grace: Duration::from_secs(3),
        }
    }
}

/// The connection cap that fits a soft file limit of `nofile`: `configured`,
/// lowered to leave [`RESERVED_FDS`] descriptors free, and at least 1.
pub fn effective_max_connections(configured: usize, nofile: Option<u64>) -> usize {
    let fit = nofile
        .map(|n| n.saturating_sub(RESERVED_FDS))
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(usize::MAX);
    configured.min(fit).max(1)
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves,
/// then drains as [`ConnectionLimits::shutdown_grace`] allows.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let tracker = Tracker::default();
    let (stop_tx, stop_rx) = watch::channel(false);
    let service = TowerToHyperService::new(router);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    while tracker.len() >= limits.max_connections && tracker.evict_oldest_idle() {}
                    let (close_tx, close_rx) = oneshot::channel();
                    let id = tracker.insert(close_tx);
                    tasks.spawn(connection(
                        stream,
                        Connection {
                            id,
                            tracker: tracker.clone(),
                            service: service.clone(),
                            header_read_timeout: limits.header_read_timeout,
                        },
                        close_rx,
                        stop_rx.clone(),
                    ));
                }
                Err(e) => {
                    // Out of descriptors or memory: free the oldest idle
                    // connection. Either way, try again shortly.
                    tracing::warn!(error = %e, held = tracker.len(), "accept failed");
                    if is_resource_exhaustion(&e) {
                        tracker.evict_oldest_idle();
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
    drop(listener);
    let idle = tracker.close_idle();
    let _ = stop_tx.send(true);
    tracing::info!(
        idle_closed = idle,
        in_progress = tracker.len(),
        "shutting down"
    );
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = tasks.len(),
            grace = ?limits.shutdown_grace,
            "shutdown grace over: dropping the connections left"
        );
        tasks.abort_all();
    }
}

/// `EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`: freeing a connection helps.
fn is_resource_exhaustion(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// What one connection task needs besides its socket.
struct Connection {
    id: u64,
    tracker: Tracker,
    service: TowerToHyperService<Router>,
    header_read_timeout: Duration,
}

/// Serves one connection until it ends, is evicted (`close` fires or its
/// sender is dropped) or, once `stop` says so, finishes its request.
async fn connection(
    stream: TcpStream,
    conn: Connection,
    mut close: oneshot::Receiver<()>,
    mut stop: watch::Receiver<bool>,
) {
    // Responses are one small write each: send them without Nagle's delay.
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY");
    }
    let Connection {
        id,
        tracker,
        service,
        header_read_timeout,
    } = conn;
    let requests = tracker.clone();
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let busy = requests.begin(id);
        let response = service.call(req);
        async move {
            let r: Result<Response<Body>, Infallible> = response.await;
            drop(busy);
            r
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .keep_alive(true);
    let http = builder.serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(http);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = http.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended");
                }
                break;
            }
            _ = &mut close => break,
            _ = stop.changed(), if !stopping => {
                stopping = true;
                http.as_mut().graceful_shutdown();
            }
        }
    }
    tracker.remove(id);
}

/// The connections held, in accept order, with what eviction needs.
#[derive(Debug, Clone, Default)]
struct Tracker(Arc<Mutex<Table>>);

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    entries: BTreeMap<u64, Entry>,
}

#[derive(Debug)]
struct Entry {
    /// Accepted, or last request started.
    last_active: Instant,
    /// Requests in progress (0 or 1 on HTTP/1.1).
    busy: u32,
    /// Dropping or firing it ends the connection.
    close: oneshot::Sender<()>,
}

impl Tracker {
    fn with<R>(&self, f: impl FnOnce(&mut Table) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn insert(&self, close: oneshot::Sender<()>) -> u64 {
        self.with(|t| {
            let id = t.next_id;
            t.next_id = t.next_id.wrapping_add(1);
            t.entries.insert(
                id,
                Entry {
                    last_active: Instant::now(),
                    busy: 0,
                    close,
                },
            );
            id
        })
    }

    fn remove(&self, id: u64) {
        self.with(|t| t.entries.remove(&id));
    }

    fn len(&self) -> usize {
        self.with(|t| t.entries.len())
    }

    /// Marks a request in progress on `id` until the guard drops.
    fn begin(&self, id: u64) -> Busy {
        self.with(|t| {
            if let Some(e) = t.entries.get_mut(&id) {
                e.busy = e.busy.saturating_add(1);
                e.last_active = Instant::now();
            }
        });
        Busy {
            tracker: self.clone(),
            id,
        }
    }

    /// Drops the idle connection with the oldest activity; false if every
    /// connection has a request in progress.
    fn evict_oldest_idle(&self) -> bool {
        self.with(|t| {
            let oldest = t
                .entries
                .iter()
                .filter(|(_, e)| e.busy == 0)
                .min_by_key(|(id, e)| (e.last_active, **id))
                .map(|(id, _)| *id);
            match oldest.and_then(|id| t.entries.remove(&id)) {
                Some(entry) => {
                    let _ = entry.close.send(());
                    tracing::debug!("connection cap reached: dropped the oldest idle connection");
                    true
                }
                None => false,
            }
        })
    }

    /// Drops every idle connection; returns how many.
    fn close_idle(&self) -> usize {
        self.with(|t| {
            let idle: Vec<u64> = t
                .entries
                .iter()
                .filter(|(_, e)| e.busy == 0)
                .map(|(id, _)| *id)
                .collect();
            for id in &idle {
                if let Some(entry) = t.entries.remove(id) {
                    let _ = entry.close.send(());
                }
            }
            idle.len()
        })
    }
}

/// A request in progress; its connection is not idle until this drops.
struct Busy {
    tracker: Tracker,
    id: u64,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.tracker.with(|t| {
            if let Some(e) = t.entries.get_mut(&self.id) {
                e.busy = e.busy.saturating_sub(1);
                e.last_active = Instant::now();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_the_file_limit() {
        assert_eq!(effective_max_connections(512, Some(20_000)), 512);
        assert_eq!(effective_max_connections(512, Some(1024)), 512);
        assert_eq!(effective_max_connections(512, Some(256)), 192);
        assert_eq!(effective_max_connections(512, Some(10)), 1);
        assert_eq!(effective_max_connections(512, None), 512);
    }

    #[test]
    fn eviction_takes_the_oldest_idle_and_spares_busy_ones() {
        let t = Tracker::default();
        let (a_tx, mut a_rx) = oneshot::channel();
        let (b_tx, mut b_rx) = oneshot::channel();
        let (c_tx, mut c_rx) = oneshot::channel();
        let a = t.insert(a_tx);
        let _b = t.insert(b_tx);
        let _c = t.insert(c_tx);
        let busy = t.begin(a);
        assert!(t.evict_oldest_idle());
        assert!(b_rx.try_recv().is_ok(), "b, the oldest idle, is closed");
        assert!(a_rx.try_recv().is_err(), "a is busy");
        assert_eq!(t.len(), 2);
        drop(busy);
        // a's request just ended: c is now the oldest activity.
        assert!(t.evict_oldest_idle());
        assert!(c_rx.try_recv().is_ok());
        let _ = t.begin(a);
        assert_eq!(t.close_idle(), 1);
        assert_eq!(t.len(), 0);
        assert!(!t.evict_oldest_idle());
    }
}
