//! OKDSetup01Inventory through Maestro, against agents on loopback and the
//! real SQLite store; the extended saga (`OKDSetup01Site`: ports to access,
//! OS assets, discovery boot files and the agent, discovery, pinned roles)
//! through the saga harness on the fake site, and each part's result.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/asset_fixtures.rs"]
mod fixtures;
#[path = "support/assets_server.rs"]
mod server;
#[path = "support/site_boot.rs"]
mod site;
#[path = "support/discovery.rs"]
mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use harmony::domain::{Event, EventBus, Inventory, Maestro, Outcome, Topology};
use harmony::modules::okd::OKDSetup01Inventory;
use harmony::modules::okd::setup01::DISCOVERY_PROGRESS;
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
            Event::Progress { task, done, total } if task == DISCOVERY_PROGRESS => {
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

// ---------------------------------------------------------------------------
// The extended saga: OKDSetup01Site on the fake site.

use harmony::domain::{InventoryRepository, MacAddress, PortMode, Role, SwitchPort, VlanId};
use harmony::infra::fakes::harness::check_saga;
use harmony::infra::fakes::{Capability, FakeSite};
use harmony::modules::assets::download::DownloadConfig;
use harmony::modules::assets::{CentosInventoryAssets, ScosAssets, Source};
use harmony::modules::okd::OKDSetup01Site;
use harmony::modules::okd::setup01::{CandidatePorts, DiscoveryBoot, OsAssets, PinnedRole};

/// The agents of hosts `1..=n` on `127.0.<net>.(10 + i - 1)`; their port.
async fn agents(net: u8, n: u16) -> u16 {
    let at = |last: u8| IpAddr::V4(Ipv4Addr::new(127, 0, net, last));
    let port = support::free_port(at(10));
    for i in 1..=n {
        serve(
            SocketAddr::new(at(9 + i as u8), port),
            Behaviour::Json(json(&inventory(i))),
        )
        .await
        .unwrap();
    }
    port
}

/// The MAC the agent of host `i` reports (`support::inventory`).
fn agent_mac(i: u16) -> MacAddress {
    let [hi, lo] = i.to_be_bytes();
    format!("52:54:00:00:{hi:02x}:{lo:02x}").parse().unwrap()
}

fn discovery(net: u8, hosts: usize, port: u16) -> OKDSetup01Inventory {
    let mut score = OKDSetup01Inventory::new(format!("127.0.{net}.0/28").parse().unwrap(), hosts);
    score.port = port;
    score.interval = Duration::from_millis(100);
    score.timeout = Duration::from_secs(10);
    score
}

fn fresh_store() -> Arc<SqliteStore> {
    let dir = tempfile::tempdir().unwrap();
    Arc::new(SqliteStore::open(&dir.keep().join("inv.sqlite3")).unwrap())
}

fn vlan() -> VlanId {
    VlanId::try_from(300).unwrap()
}

fn ports(list: &[&str]) -> Vec<SwitchPort> {
    list.iter().map(|p| p.parse().unwrap()).collect()
}

/// Both candidates' ports, as the site file gives them (MAC, address).
fn candidates(net: u8) -> Vec<CandidatePorts> {
    vec![
        CandidatePorts::pinned(
            agent_mac(1),
            IpAddr::V4(Ipv4Addr::new(127, 0, net, 10)),
            ports(&["Ethernet1/1", "Ethernet1/2"]),
        )
        .unwrap(),
        CandidatePorts::pinned(
            agent_mac(2),
            IpAddr::V4(Ipv4Addr::new(127, 0, net, 11)),
            ports(&["Ethernet1/3", "Ethernet1/4"]),
        )
        .unwrap(),
    ]
}

/// An agent binary on disk and the site boot naming its digest.
fn agent_and_boot(dir: &std::path::Path) -> (Vec<u8>, DiscoveryBoot) {
    let bytes = server::random_bytes(42, 300 * 1024);
    let path = dir.join("harmony-inventory-agent");
    std::fs::write(&path, &bytes).unwrap();
    let mut boot = site::site_boot();
    boot.agent_sha256 = server::sha256_hex(&bytes).parse().unwrap();
    (
        bytes,
        DiscoveryBoot {
            site: boot,
            agent: Some(path),
        },
    )
}

/// SCOS from the test server's stream, CentOS from an ISO built with xorriso.
async fn os_assets(
    dir: &std::path::Path,
) -> (server::TestServer, fixtures::Scos, fixtures::Iso, OsAssets) {
    let srv = server::TestServer::start().await;
    let (scos_files, _) = fixtures::scos_files(&srv);
    let mut scos = ScosAssets::new(Source::Url(srv.url("stream.json").parse().unwrap()));
    scos.download = DownloadConfig {
        connect_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(5),
        ..DownloadConfig::default()
    };
    let iso = fixtures::build_iso(dir);
    let centos =
        CentosInventoryAssets::new(Source::Path(iso.path.clone()), iso.sha.parse().unwrap());
    let assets = OsAssets {
        scos: Some(scos),
        centos: Some(centos),
    };
    (srv, scos_files, iso, assets)
}

fn pinned() -> Vec<PinnedRole> {
    vec![
        (agent_mac(1), Role::Bootstrap, "bootstrap".parse().unwrap()).into(),
        (agent_mac(2), Role::ControlPlane).into(),
    ]
}

fn full_score(net: u8, port: u16, assets: OsAssets, boot: DiscoveryBoot) -> OKDSetup01Site {
    discovery(net, 2, port)
        .with_ports(vlan(), candidates(net))
        .with_assets(assets)
        .with_boot(boot)
        .with_roles(pinned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_extended_saga_passes_the_harness() {
    let net = 10;
    let port = agents(net, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let (_, boot) = agent_and_boot(dir.path());
    let (_srv, _, _, assets) = os_assets(dir.path()).await;
    let score = full_score(net, port, assets, boot);
    let report = check_saga(&score, || async {
        // Each attempt starts from an empty inventory and a bare site.
        (
            Inventory::new(fresh_store(), EventBus::default()),
            FakeSite::new(),
        )
    })
    .await
    .unwrap();
    // Ports of 2 hosts, SCOS 3 files, CentOS 4 tree files + marker,
    // default.ipxe + inventory.ks + agent; discovery and roles change the
    // Inventory, not the site.
    assert_eq!(report.changes, 2 + 3 + 5 + 3, "{report:?}");
    assert_eq!(report.failures_injected, report.changes);
    assert!(report.rollback_crashes_injected > 0, "{report:?}");
}

/// Every part's result after one run: the ports in access, the assets, the
/// boot files and the agent on the HTTP root, the hosts discovered with
/// progress reported, the pinned roles in the store; the second run Noop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_part_leaves_its_result_then_a_second_run_is_a_noop() {
    let net = 11;
    let port = agents(net, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let (agent, boot) = agent_and_boot(dir.path());
    let (_srv, scos, iso, assets) = os_assets(dir.path()).await;
    let score = full_score(net, port, assets, boot);
    let store = fresh_store();
    let bus = EventBus::new(1024);
    let mut rx = bus.subscribe();
    let maestro = Maestro::new(FakeSite::new(), Inventory::new(store.clone(), bus));

    let plan = maestro.plan(&score).await.unwrap().to_string();
    // 2 port steps, 3 SCOS files, the CentOS tree, 3 files, discovery, 2 roles.
    assert!(
        plan.starts_with("OKDSetup01Inventory: 12 change(s)"),
        "{plan}"
    );
    assert!(plan.contains("to access vlan 300"), "{plan}");
    assert!(plan.contains("write default.ipxe"), "{plan}");
    assert!(
        plan.contains(&format!(
            "give the host with MAC {} the role control-plane once discovered",
            agent_mac(2)
        )),
        "{plan}"
    );
    assert!(maestro.topology().state().http_files.is_empty());

    maestro.interpret(&score).await.unwrap();
    let state = maestro.topology().state();
    // 1. Ports in access in the provisioning VLAN.
    for p in ports(&["Ethernet1/1", "Ethernet1/2", "Ethernet1/3", "Ethernet1/4"]) {
        let st = &state.ports[&p];
        assert_eq!(st.mode, PortMode::Access { vlan: vlan() }, "{p}");
    }
    // 2. The OS assets, byte for byte.
    let file = |p: &str| state.http_files.get(&p.parse().unwrap()).cloned();
    assert_eq!(file("os/scos-4.19/kernel"), Some(scos.kernel.clone()));
    assert_eq!(file("os/scos-4.19/rootfs.img"), Some(scos.rootfs.clone()));
    for (name, bytes) in &iso.files {
        assert_eq!(
            file(&format!("os/centos-stream-9/{name}")).as_ref(),
            Some(bytes),
            "{name}"
        );
    }
    // 3. The discovery files point at the staged assets and the agent.
    let ipxe = String::from_utf8(file("default.ipxe").unwrap()).unwrap();
    assert!(ipxe.starts_with("#!ipxe"), "{ipxe}");
    assert!(
        ipxe.contains("os/centos-stream-9/images/pxeboot/vmlinuz"),
        "{ipxe}"
    );
    assert!(ipxe.contains("inventory.ks"), "{ipxe}");
    let ks = String::from_utf8(file("inventory.ks").unwrap()).unwrap();
    assert!(ks.contains("harmony/harmony-inventory-agent"), "{ks}");
    assert!(ks.contains(&server::sha256_hex(&agent)), "{ks}");
    assert_eq!(file("harmony/harmony-inventory-agent"), Some(agent));
    // 4. Progress each round: found vs expected.
    let progress: Vec<(u64, u64)> = std::iter::from_fn(|| rx.try_recv().ok())
        .filter_map(|e| match e {
            Event::Progress { task, done, total } if task == DISCOVERY_PROGRESS => {
                Some((done, total))
            }
            _ => None,
        })
        .collect();
    assert_eq!(progress.last(), Some(&(2, 2)), "{progress:?}");
    // 5. The pinned roles (and the pinned name) in the store.
    let hosts = store.hosts().unwrap();
    let of = |mac: MacAddress| hosts.iter().find(|h| h.macs.contains(&mac)).unwrap();
    assert_eq!(of(agent_mac(1)).role, Some(Role::Bootstrap));
    assert_eq!(
        of(agent_mac(1)).hostname.as_ref().map(|h| h.to_string()),
        Some("bootstrap".into())
    );
    assert_eq!(of(agent_mac(2)).role, Some(Role::ControlPlane));
    assert_eq!(of(agent_mac(2)).hostname, None);

    let again = maestro.interpret(&score).await.unwrap();
    assert!(again.is_noop(), "{again:?}");
    assert!(maestro.plan(&score).await.unwrap().is_empty());
}

/// A host already holding another role is refused, naming the host and
/// both roles, in the plan and in a run; its role stays. Hosts not pinned
/// keep the role the operator gave them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_role_is_refused_and_unpinned_hosts_keep_theirs() {
    let net = 12;
    let port = agents(net, 3).await;
    let store = fresh_store();
    let maestro = Maestro::new(
        FakeSite::new(),
        Inventory::new(store.clone(), EventBus::default()),
    );
    // Discovery alone first; the operator then gives host 1 the worker
    // role and host 3 the control-plane role (the TUI's way).
    maestro.interpret(&discovery(net, 3, port)).await.unwrap();
    let hosts = store.hosts().unwrap();
    let id = |mac: MacAddress| {
        hosts
            .iter()
            .find(|h| h.macs.contains(&mac))
            .unwrap()
            .id
            .clone()
    };
    let inventory = maestro.inventory();
    inventory
        .assign(
            &id(agent_mac(1)),
            Some(Role::Worker),
            Some("worker-0".parse().unwrap()),
        )
        .unwrap();
    inventory
        .assign(&id(agent_mac(3)), Some(Role::ControlPlane), None)
        .unwrap();

    // Host 2 pinned first (assigned), then host 1 as bootstrap: refused,
    // and host 2's assignment rolled back.
    let mut order = pinned();
    order.reverse();
    let score = discovery(net, 3, port).with_roles(order);
    let want = format!(
        "host {} (MAC {}, 127.0.{net}.10) holds the role worker, but the site file pins it as bootstrap",
        id(agent_mac(1)),
        agent_mac(1)
    );
    let err = maestro.plan(&score).await.unwrap_err();
    assert!(err.to_string().contains(&want), "{err}");
    let err = maestro.interpret(&score).await.unwrap_err();
    assert!(err.message.contains(&want), "{err}");
    assert!(err.message.contains("not overwritten"), "{err}");
    assert!(err.state_left.contains("rolled back"), "{err}");
    let role = |mac| {
        store
            .hosts()
            .unwrap()
            .into_iter()
            .find(|h| h.macs.contains(&mac))
            .unwrap()
            .role
    };
    assert_eq!(role(agent_mac(1)), Some(Role::Worker));
    // Host 2's role from the refused run is undone, and the unpinned host
    // keeps the operator's role.
    assert_eq!(role(agent_mac(2)), None);
    assert_eq!(role(agent_mac(3)), Some(Role::ControlPlane));

    // Host 2 pinned alone: assigned; host 1 and 3 untouched.
    let score = discovery(net, 3, port).with_roles([(agent_mac(2), Role::Worker)]);
    maestro.interpret(&score).await.unwrap();
    assert_eq!(role(agent_mac(2)), Some(Role::Worker));
    assert_eq!(role(agent_mac(1)), Some(Role::Worker));
    assert_eq!(role(agent_mac(3)), Some(Role::ControlPlane));
}

/// A pinned MAC no discovered host has is named; a MAC pinned twice is
/// refused before anything runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_mac_not_discovered_or_pinned_twice_is_named() {
    let net = 13;
    let port = agents(net, 1).await;
    let maestro = Maestro::new(
        FakeSite::new(),
        Inventory::new(fresh_store(), EventBus::default()),
    );
    let absent: MacAddress = "02:00:00:00:00:77".parse().unwrap();
    let score = discovery(net, 1, port).with_roles([(absent, Role::Worker)]);
    let err = maestro.interpret(&score).await.unwrap_err();
    assert!(
        err.message
            .contains("no discovered host has the pinned MAC 02:00:00:00:00:77"),
        "{err}"
    );
    let twice = discovery(net, 1, port).with_roles([
        (agent_mac(1), Role::Worker),
        (agent_mac(1), Role::Bootstrap),
    ]);
    let err = maestro.interpret(&twice).await.unwrap_err();
    assert!(
        err.message
            .contains("hosts.pinned[1].mac = 52:54:00:00:00:01: already pinned at hosts.pinned[0]"),
        "{err}"
    );
}

/// No ports: no switch step, the switch is not even read. An agent whose
/// digest is not the one `inventory.ks` checks is refused before anything
/// is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_ports_means_no_switch_step_and_a_wrong_agent_digest_is_refused() {
    let net = 14;
    let port = agents(net, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let (_, boot) = agent_and_boot(dir.path());
    let maestro = Maestro::new(
        FakeSite::new(),
        Inventory::new(fresh_store(), EventBus::default()),
    );
    let score = discovery(net, 1, port)
        .with_ports(vlan(), Vec::new())
        .with_boot(boot.clone());
    maestro.interpret(&score).await.unwrap();
    let site = maestro.topology();
    assert!(
        site.calls()
            .iter()
            .all(|c| c.capability != Capability::Switch),
        "{:?}",
        site.calls()
    );
    assert_eq!(site.state().http_files.len(), 3);

    // The agent on disk is not the one inventory.ks checks: refused
    // naming the file and both digests, nothing written.
    let mut wrong = boot;
    wrong.site.agent_sha256 = "c".repeat(64).parse().unwrap();
    let site = FakeSite::new();
    let maestro = Maestro::new(site, Inventory::new(fresh_store(), EventBus::default()));
    let err = maestro
        .interpret(&discovery(net, 1, port).with_boot(wrong))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("harmony-inventory-agent"), "{err}");
    assert!(
        err.to_string().contains(&format!(
            "but boot.agent_sha256 (what inventory.ks checks) is {}",
            "c".repeat(64)
        )),
        "{err}"
    );
    assert!(maestro.topology().state().http_files.is_empty());
}

/// A failed switch change is undone, and the run names it: the ports are
/// as they were, no file is published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_port_change_rolls_back_and_publishes_nothing() {
    let net = 15;
    let port = agents(net, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let (_, boot) = agent_and_boot(dir.path());
    let site = FakeSite::new();
    let before = site.state();
    // The second host's ports fail to change.
    site.fail_at_change(2);
    let maestro = Maestro::new(site, Inventory::new(fresh_store(), EventBus::default()));
    let score = discovery(net, 2, port)
        .with_ports(vlan(), candidates(net))
        .with_boot(boot);
    let err = maestro.interpret(&score).await.unwrap_err();
    assert!(err.message.contains("injected failure"), "{err}");
    assert!(err.state_left.starts_with("rolled back: undid "), "{err}");
    assert!(err.state_left.contains("Ethernet1/1, Ethernet1/2"), "{err}");
    maestro.topology().heal();
    assert_eq!(maestro.topology().state(), before);
}
