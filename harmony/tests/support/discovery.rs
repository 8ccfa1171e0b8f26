//! Shared helpers of the discovery tests (included with `#[path]`): tiny
//! loopback servers, agent documents, an in-memory repository.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use harmony::domain::inventory::{
    DiscoveredHost, HostEvent, HostRecord, HostSummary, InventoryRepository, RepositoryError,
    UpsertResult,
};
use harmony::domain::values::{HostId, Hostname, InstallPhase, MacAddress, Role};
use harmony_inventory_agent::model as agent;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How a test server answers.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// 200 with this body.
    Json(Vec<u8>),
    /// This status, tiny body.
    Status(u16),
    /// 200, no Content-Length, 100 MB of body until the client leaves.
    Huge,
    /// The response one byte per second (42 bytes).
    Slow,
    /// Accepts, reads, never answers (for at most 30 s).
    Silent,
}

/// Binds `addr` and serves `b` on every connection, for the life of the runtime.
pub async fn serve(addr: SocketAddr, b: Behaviour) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    let b = Arc::new(b);
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            tokio::spawn(handle(s, b.clone()));
        }
    });
    Ok(())
}

async fn read_request(s: &mut TcpStream) {
    let mut buf = vec![0u8; 8192];
    let mut n = 0;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while n < buf.len() {
            match s.read(&mut buf[n..]).await {
                Ok(0) | Err(_) => return,
                Ok(k) => n += k,
            }
            if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                return;
            }
        }
    })
    .await;
}

async fn handle(mut s: TcpStream, b: Arc<Behaviour>) {
    read_request(&mut s).await;
    match &*b {
        Behaviour::Json(body) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(body).await;
        }
        Behaviour::Status(code) => {
            let head = format!(
                "HTTP/1.1 {code} Oops\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
            );
            let _ = s.write_all(head.as_bytes()).await;
        }
        Behaviour::Huge => {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n[")
                .await;
            let chunk = vec![b' '; 64 * 1024];
            for _ in 0..(100_000_000 / chunk.len()) {
                if s.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        }
        Behaviour::Slow => {
            let msg = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
            for byte in msg {
                if s.write_all(&[*byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        Behaviour::Silent => tokio::time::sleep(Duration::from_secs(30)).await,
    }
    let _ = s.shutdown().await;
}

/// A free port on `ip` (the scan uses one port for all test servers).
pub fn free_port(ip: IpAddr) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plausible agent document, unique per `i`.
pub fn inventory(i: u16) -> agent::Inventory {
    let [hi, lo] = i.to_be_bytes();
    let mut nic = agent::Nic::new("eno1");
    nic.mac = Some(format!("52:54:00:00:{hi:02x}:{lo:02x}"));
    nic.permanent_mac = nic.mac.clone();
    nic.mtu = Some(1500);
    agent::Inventory {
        schema_version: agent::SCHEMA_VERSION,
        agent_version: "0.1.0".into(),
        collected_at: "2026-11-25T10:00:00Z".into(),
        hostname: Some(format!("node-{i}")),
        warnings: vec![],
        system: agent::System {
            vendor: Some("QEMU".into()),
            serial: Some(format!("SN{i:05}")),
            uuid: Some(uuid(i)),
            ..agent::System::default()
        },
        cpu: agent::Cpu {
            threads: Some(u32::from(i) + 1),
            ..agent::Cpu::default()
        },
        memory: agent::Memory::default(),
        storage: vec![agent::Disk {
            name: "vda".into(),
            path: "/dev/vda".into(),
            by_path: None,
            by_id: None,
            model: None,
            vendor: None,
            serial: None,
            wwn: None,
            size_bytes: Some(u64::from(i) << 30),
            logical_sector_bytes: Some(512),
            physical_sector_bytes: Some(512),
            rotational: Some(false),
            removable: Some(false),
            kind: agent::DiskKind::Virtual,
            transport: Some("virtio".into()),
            hctl: None,
        }],
        network: vec![nic],
    }
}

pub fn uuid(i: u16) -> String {
    format!("12345678-0000-4000-8000-00000000{i:04x}")
}

pub fn json(inv: &agent::Inventory) -> Vec<u8> {
    serde_json::to_vec(inv).unwrap()
}

/// An in-memory `InventoryRepository` (MAC ownership enforced like the store).
#[derive(Debug, Default)]
pub struct MemRepo {
    hosts: Mutex<HashMap<HostId, HostRecord>>,
}

impl MemRepo {
    pub fn count(&self) -> usize {
        self.hosts.lock().unwrap().len()
    }
}

impl InventoryRepository for MemRepo {
    fn upsert_discovered(
        &self,
        host: &DiscoveredHost,
        seen_at: SystemTime,
    ) -> Result<UpsertResult, RepositoryError> {
        let mut hosts = self.hosts.lock().unwrap();
        for other in hosts.values() {
            if other.id == host.id {
                continue;
            }
            if let Some(mac) = host.macs.iter().find(|m| other.macs.contains(m)) {
                return Ok(UpsertResult::Conflict {
                    mac: *mac,
                    existing: other.id.clone(),
                });
            }
        }
        if let Some(rec) = hosts.get_mut(&host.id) {
            let ip_changed = rec.ip != host.ip;
            rec.ip = host.ip;
            rec.last_seen = seen_at;
            rec.macs = host.macs.clone();
            rec.hardware = host.hardware.clone();
            rec.summary = HostSummary::from_hardware(&host.hardware);
            return Ok(UpsertResult::Updated { ip_changed });
        }
        hosts.insert(
            host.id.clone(),
            HostRecord {
                id: host.id.clone(),
                ip: host.ip,
                macs: host.macs.clone(),
                first_seen: seen_at,
                last_seen: seen_at,
                role: None,
                hostname: None,
                phase: InstallPhase::Discovered,
                summary: HostSummary::from_hardware(&host.hardware),
                hardware: host.hardware.clone(),
                flags: Vec::new(),
            },
        );
        Ok(UpsertResult::New)
    }

    fn host(&self, id: &HostId) -> Result<Option<HostRecord>, RepositoryError> {
        Ok(self.hosts.lock().unwrap().get(id).cloned())
    }

    fn hosts(&self) -> Result<Vec<HostRecord>, RepositoryError> {
        let mut v: Vec<_> = self.hosts.lock().unwrap().values().cloned().collect();
        v.sort_by_key(|h| h.ip);
        Ok(v)
    }

    fn assign(
        &self,
        id: &HostId,
        _role: Option<Role>,
        _hostname: Option<Hostname>,
    ) -> Result<HostRecord, RepositoryError> {
        Err(RepositoryError::NotFound(id.clone()))
    }

    fn set_phase(
        &self,
        id: &HostId,
        _phase: InstallPhase,
    ) -> Result<InstallPhase, RepositoryError> {
        Err(RepositoryError::NotFound(id.clone()))
    }

    fn events(&self, _id: &HostId, _limit: usize) -> Result<Vec<HostEvent>, RepositoryError> {
        Ok(vec![])
    }
}

pub fn mac(s: &str) -> MacAddress {
    s.parse().unwrap()
}
