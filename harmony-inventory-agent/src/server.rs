//! The read-only HTTP endpoint and the inventory cache behind it.
//!
//! `GET /` returns the cached inventory as JSON and `GET /healthz` says the
//! agent is alive; nothing else exists (404), and no route changes the host.
//! The inventory is collected at start, refreshed in the background every
//! `refresh` interval, and LLDP neighbours are merged in as they arrive, so
//! a request never waits for hardware: it clones a pre-serialized body.
//! Connections are bounded by [`connections`] (header-read timeout, a cap
//! with the oldest idle dropped, shutdown within a grace).

pub mod connections;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::{TcpListener, TcpSocket};

use crate::collect::{Collector, lldp};
use crate::model::{Inventory, Lldp, Warning};
pub use connections::ConnectionLimits;

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("serializing the inventory: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// Serving options.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// Interval between background collections.
    pub refresh: Duration,
    /// How long to listen for LLDP on each NIC at start; zero disables LLDP.
    pub lldp_window: Duration,
}

/// The latest inventory, its JSON body, and the LLDP results merged into it.
#[derive(Debug)]
pub struct InventoryCache {
    state: RwLock<CacheState>,
}

#[derive(Debug)]
struct CacheState {
    base: Inventory,
    lldp: BTreeMap<String, Lldp>,
    lldp_warnings: Vec<Warning>,
    body: Bytes,
}

impl InventoryCache {
    pub fn new(inventory: Inventory) -> Result<Self, serde_json::Error> {
        let mut state = CacheState {
            base: inventory,
            lldp: BTreeMap::new(),
            lldp_warnings: Vec::new(),
            body: Bytes::new(),
        };
        state.render()?;
        Ok(Self {
            state: RwLock::new(state),
        })
    }

    /// The JSON body served on `GET /`.
    pub fn body(&self) -> Bytes {
        self.read(|s| s.body.clone())
    }

    /// The inventory as served (with LLDP merged in).
    pub fn current(&self) -> Result<Inventory, serde_json::Error> {
        serde_json::from_slice(&self.body())
    }

    /// Replaces the collected inventory, keeping the LLDP results.
    pub fn replace(&self, inventory: Inventory) -> Result<(), serde_json::Error> {
        self.write(|s| {
            s.base = inventory;
            s.render()
        })
    }

    /// Records the neighbour seen on `iface`.
    pub fn set_lldp(&self, iface: &str, neighbour: Lldp) -> Result<(), serde_json::Error> {
        self.write(|s| {
            s.lldp.insert(iface.to_string(), neighbour);
            s.render()
        })
    }

    /// Records why LLDP failed on an interface.
    pub fn add_lldp_warning(&self, warning: Warning) -> Result<(), serde_json::Error> {
        self.write(|s| {
            s.lldp_warnings.push(warning);
            s.render()
        })
    }

    fn read<R>(&self, f: impl FnOnce(&CacheState) -> R) -> R {
        f(&self.state.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn write<R>(&self, f: impl FnOnce(&mut CacheState) -> R) -> R {
        f(&mut self.state.write().unwrap_or_else(PoisonError::into_inner))
    }
}

impl CacheState {
    fn render(&mut self) -> Result<(), serde_json::Error> {
        let mut doc = self.base.clone();
        for nic in &mut doc.network {
            if let Some(n) = self.lldp.get(&nic.name) {
                nic.lldp = Some(n.clone());
            }
        }
        doc.warnings.extend(self.lldp_warnings.iter().cloned());
        self.body = Bytes::from(serde_json::to_vec(&doc)?);
        Ok(())
    }
}

/// The agent's routes over a cache.
pub fn router(cache: Arc<InventoryCache>) -> Router {
    Router::new()
        .route("/", get(inventory))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .with_state(cache)
}

async fn inventory(State(cache): State<Arc<InventoryCache>>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], cache.body()).into_response()
}

async fn healthz() -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], "ok\n").into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/json")],
        "{\"error\":\"not found\"}",
    )
        .into_response()
}

/// Collects, then serves until `shutdown` resolves, within the default
/// [`ConnectionLimits`].
pub async fn serve(
    collector: Collector,
    config: ServeConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    serve_with_limits(collector, config, ConnectionLimits::default(), shutdown).await
}

/// Collects, then serves until `shutdown` resolves, within `limits` (the
/// connection cap lowered to fit the soft file limit).
pub async fn serve_with_limits(
    collector: Collector,
    config: ServeConfig,
    limits: ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let listener = listen(config.listen).map_err(|source| ServerError::Bind {
        addr: config.listen,
        source,
    })?;
    let first = collect_blocking(collector.clone()).await;
    let cache = Arc::new(InventoryCache::new(first)?);
    tracing::info!(addr = %config.listen, "serving inventory");

    if !config.lldp_window.is_zero() {
        // Detached: each listener ends by itself within the window.
        drop(spawn_lldp_listeners(&cache, config.lldp_window));
    }
    let refresher = tokio::spawn(refresh_loop(collector, cache.clone(), config.refresh));
    let nofile = rlimit::Resource::NOFILE
        .get()
        .ok()
        .map(|(soft, _hard)| soft);
    let limits = ConnectionLimits {
        max_connections: connections::effective_max_connections(limits.max_connections, nofile),
        ..limits
    };
    tracing::info!(
        max_connections = limits.max_connections,
        header_read_timeout = ?limits.header_read_timeout,
        "connection limits"
    );
    connections::serve(listener, router(cache), limits, shutdown).await;
    refresher.abort();
    Ok(())
}

/// Listen queue length asked for (the kernel caps it at `somaxconn`); tokio's
/// default of 128 overflows under a burst of connections, and a full queue
/// drops SYNs (the client then waits a 1 s retransmission).
const LISTEN_BACKLOG: u32 = 1024;

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

async fn collect_blocking(collector: Collector) -> Inventory {
    let fallback = collector.clone();
    match tokio::task::spawn_blocking(move || collector.collect()).await {
        Ok(inv) => inv,
        // The blocking task panicked or was cancelled: collect inline once.
        Err(e) => {
            tracing::error!(error = %e, "collection task failed; collecting inline");
            fallback.collect()
        }
    }
}

async fn refresh_loop(collector: Collector, cache: Arc<InventoryCache>, every: Duration) {
    let mut ticker = tokio::time::interval(every.max(Duration::from_secs(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate; we just collected
    loop {
        ticker.tick().await;
        let inv = collect_blocking(collector.clone()).await;
        if let Err(e) = cache.replace(inv) {
            tracing::error!(error = %e, "cannot serialize refreshed inventory");
        }
    }
}

/// One listener per physical NIC that is up, each ending within `window`.
pub fn spawn_lldp_listeners(
    cache: &Arc<InventoryCache>,
    window: Duration,
) -> Vec<tokio::task::JoinHandle<()>> {
    let nics = cache.read(|s| lldp_interfaces(&s.base));
    let mut handles = Vec::with_capacity(nics.len());
    for iface in nics {
        let cache = cache.clone();
        handles.push(tokio::task::spawn_blocking(move || {
            let result = match lldp::listen(&iface, window) {
                Ok(Some(neighbour)) => {
                    tracing::info!(%iface, ?neighbour, "LLDP neighbour");
                    cache.set_lldp(&iface, neighbour)
                }
                Ok(None) => Ok(()),
                Err(e) => cache.add_lldp_warning(Warning {
                    source: format!("lldp:{iface}"),
                    message: e.to_string(),
                }),
            };
            if let Err(e) = result {
                tracing::error!(error = %e, "cannot serialize inventory after LLDP");
            }
        }));
    }
    handles
}

/// Interfaces worth listening on: up (or with carrier), and not a bond or
/// bridge over other interfaces (the switch talks to the members).
fn lldp_interfaces(inv: &Inventory) -> Vec<String> {
    let masters: std::collections::BTreeSet<&str> = inv
        .network
        .iter()
        .filter_map(|n| n.master.as_deref())
        .collect();
    inv.network
        .iter()
        .filter(|n| n.operstate.as_deref() == Some("up") || n.carrier == Some(true))
        .filter(|n| !masters.contains(n.name.as_str()))
        .map(|n| n.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cpu, Memory, Nic, System};

    fn inventory() -> Inventory {
        Inventory {
            schema_version: 1,
            agent_version: "t".into(),
            collected_at: "2026-11-25T00:00:00Z".into(),
            hostname: Some("h".into()),
            warnings: vec![],
            system: System::default(),
            cpu: Cpu::default(),
            memory: Memory::default(),
            storage: vec![],
            network: vec![Nic {
                carrier: Some(true),
                operstate: Some("up".into()),
                ..Nic::new("eno1")
            }],
        }
    }

    #[test]
    fn lldp_survives_refresh() {
        let cache = InventoryCache::new(inventory()).unwrap();
        let n = Lldp {
            system_name: Some("leaf1".into()),
            ..Lldp::default()
        };
        cache.set_lldp("eno1", n.clone()).unwrap();
        cache.replace(inventory()).unwrap();
        let cur = cache.current().unwrap();
        assert_eq!(cur.network[0].lldp.as_ref(), Some(&n));
        cache
            .add_lldp_warning(Warning {
                source: "lldp:eno1".into(),
                message: "denied".into(),
            })
            .unwrap();
        assert_eq!(cache.current().unwrap().warnings.len(), 1);
    }
}
