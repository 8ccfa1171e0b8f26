//! OKDSetup01Inventory through Maestro, against agents on loopback and the
//! real SQLite store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/discovery.rs"]
mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use harmony::domain::{Event, EventBus, Inventory, Maestro, Outcome, Topology};
use harmony::modules::okd::OKDSetup01Inventory;
use harmony::store::SqliteStore;
use support::{Behaviour, inventory, json, serve};

#[derive(Debug)]
struct LoopbackSite;

impl Topology for LoopbackSite {
    fn name(&self) -> &str {
        "loopback"
    }
}

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 4, last))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovers_until_expected_then_noop_then_times_out() {
    let port = support::free_port(ip(10));
    for (i, last) in [(1u16, 10u8), (2, 11)] {
        serve(
            SocketAddr::new(ip(last), port),
            Behaviour::Json(json(&inventory(i))),
        )
        .await
        .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("inv.sqlite3")).unwrap());
    let bus = EventBus::new(1024);
    let mut rx = bus.subscribe();
    let maestro = Maestro::new(LoopbackSite, Inventory::new(store, bus));

    let mut score = OKDSetup01Inventory::new("127.0.4.0/28".parse().unwrap(), 2);
    score.port = port;
    score.interval = Duration::from_millis(200);
    score.timeout = Duration::from_secs(5);

    let first = maestro.interpret(&score).await.unwrap();
    assert!(
        matches!(&first, Outcome::Success { changes } if changes == &["2 new host(s) on 127.0.4.0/28"]),
        "{first:?}"
    );
    let second = maestro.interpret(&score).await.unwrap();
    assert!(second.is_noop(), "{second:?}");

    score.expected_hosts = 3;
    score.timeout = Duration::from_secs(1);
    let err = maestro.interpret(&score).await.unwrap_err();
    assert!(err.message.contains("only 2 of 3 hosts found"), "{err}");
    assert_eq!(err.state_left, "2 hosts stored in the inventory");

    let mut progress = vec![];
    let mut discovered = 0;
    while let Ok(e) = rx.try_recv() {
        match e {
            Event::Progress { task, done, total } if task == "OKDSetup01Inventory" => {
                progress.push((done, total))
            }
            Event::HostDiscovered { .. } => discovered += 1,
            _ => {}
        }
    }
    assert_eq!(discovered, 2);
    assert_eq!(progress.first(), Some(&(2, 2)));
    assert_eq!(progress.last(), Some(&(2, 3)));
    // Role and phase changes through the Inventory are announced.
    let inventory = maestro.inventory();
    let mut rx = inventory.events().subscribe();
    let id = inventory.repository().hosts().unwrap()[0].id.clone();
    inventory
        .assign(
            &id,
            Some(harmony::domain::Role::Worker),
            Some("worker-0".parse().unwrap()),
        )
        .unwrap();
    inventory
        .set_phase(&id, harmony::domain::InstallPhase::BootConfigured)
        .unwrap();
    use harmony::domain::InstallPhase::*;
    let changes: Vec<(harmony::domain::InstallPhase, harmony::domain::InstallPhase)> =
        std::iter::from_fn(|| rx.try_recv().ok())
            .filter_map(|e| match e {
                Event::HostPhaseChanged { host, from, to } if host == id => Some((from, to)),
                _ => None,
            })
            .collect();
    assert_eq!(
        changes,
        [(Discovered, RoleAssigned), (RoleAssigned, BootConfigured)]
    );

    // The Score is plain data: it round-trips through JSON (site files).
    let text = serde_json::to_string(&score).unwrap();
    assert_eq!(
        serde_json::from_str::<OKDSetup01Inventory>(&text).unwrap(),
        score
    );
}

/// A site whose DHCP server reports leases (the leases are the test's:
/// this is the Score's logic, not a DHCP server).
#[derive(Debug)]
struct LeasingSite(Vec<IpAddr>);

impl Topology for LeasingSite {
    fn name(&self) -> &str {
        "leasing"
    }

    fn dhcp(&self) -> Option<&dyn harmony::domain::DhcpServer> {
        Some(self)
    }
}

#[async_trait::async_trait]
impl harmony::domain::DhcpServer for LeasingSite {
    async fn reserve(
        &self,
        _: &harmony::domain::DhcpReservation,
    ) -> harmony::domain::CapResult<harmony::domain::Change> {
        Ok(harmony::domain::Change::Unchanged)
    }
    async fn release(
        &self,
        _: &harmony::domain::MacAddress,
    ) -> harmony::domain::CapResult<harmony::domain::Change> {
        Ok(harmony::domain::Change::Unchanged)
    }
    async fn reservations(
        &self,
    ) -> harmony::domain::CapResult<Vec<harmony::domain::DhcpReservation>> {
        Ok(Vec::new())
    }
    async fn leases(&self) -> harmony::domain::CapResult<Vec<harmony::domain::DhcpLease>> {
        Ok(self
            .0
            .iter()
            .enumerate()
            .map(|(i, ip)| harmony::domain::DhcpLease {
                mac: format!("02:00:00:00:00:{i:02x}").parse().unwrap(),
                ip: *ip,
                hostname: None,
                expires: None,
            })
            .collect())
    }
}

/// With a DHCP server, a round probes the leased addresses first and
/// sweeps the whole network only when they are not enough (and only every
/// `full_sweep_every`-th round): the unleased agent is found by the sweep
/// of the first round, and not at all when the leased ones suffice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leased_addresses_are_probed_first_and_the_sweep_only_when_needed() {
    let at = |last: u8| IpAddr::V4(Ipv4Addr::new(127, 0, 5, last));
    let port = support::free_port(at(10));
    for (i, last) in [(11u16, 10u8), (12, 11), (13, 200)] {
        serve(
            SocketAddr::new(at(last), port),
            Behaviour::Json(json(&inventory(i))),
        )
        .await
        .unwrap();
    }
    // A lease outside the network is ignored.
    let leases = vec![at(10), at(11), IpAddr::V4(Ipv4Addr::new(127, 9, 9, 9))];
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("inv.sqlite3")).unwrap());
    let bus = EventBus::new(1024);
    let maestro = Maestro::new(LeasingSite(leases), Inventory::new(store.clone(), bus));
    let mut score = OKDSetup01Inventory::new("127.0.5.0/24".parse().unwrap(), 2);
    score.port = port;
    score.interval = Duration::from_millis(100);
    score.timeout = Duration::from_secs(10);
    score.full_sweep_every = 1000;

    let ips = |store: &SqliteStore| {
        use harmony::domain::InventoryRepository;
        let mut v: Vec<IpAddr> = store.hosts().unwrap().iter().map(|h| h.ip).collect();
        v.sort();
        v
    };
    // The two leased agents are enough: no sweep, the third stays unknown.
    maestro.interpret(&score).await.unwrap();
    assert_eq!(ips(&store), vec![at(10), at(11)]);
    // Three needed: the first round's sweep finds the unleased one.
    score.expected_hosts = 3;
    let outcome = maestro.interpret(&score).await.unwrap();
    assert!(
        matches!(&outcome, Outcome::Success { changes } if changes == &["1 new host(s) on 127.0.5.0/24"]),
        "{outcome:?}"
    );
    assert_eq!(ips(&store), vec![at(10), at(11), at(200)]);
}
