//! Open vSwitch round-trip benchmark: the time of access → LACP → access
//! on two switch ports, each change verified the way Harmony's plan needs
//! it: to LACP until both members have a current partner in collecting and
//! distributing state (`partner_within`), back to access until both read
//! back as admin-up access ports. The switch is a private Open vSwitch
//! (userspace datapath) in a network namespace this benchmark creates; the
//! host is a second bridge with its own `lacp=active` bond (fast LACP
//! timer) on the other ends of two veth pairs. Nothing leaves the
//! namespace.
//!
//! `cargo run --release -p harmony --example ovs_bench` (as root).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../harmony-inventory-agent/tests/support/netns.rs"]
mod netns;

use std::time::{Duration, Instant};

use harmony::domain::{Change, LacpOptions, LagId, Switch, SwitchPort, VlanId};
use harmony::infra::ovs::OvsDaemons;
use harmony::infra::ovs::daemons::OvsDaemonsConfig;

const ROUNDS: usize = 5;

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let ns = netns::NetNs::new("ovsbench").expect("a network namespace (run as root)");
    ns.ip_ok(&["link", "set", "dev", "lo", "up"]);
    let daemons = OvsDaemons::start(OvsDaemonsConfig {
        netns: Some(ns.name().to_string()),
        ..OvsDaemonsConfig::default()
    })
    .await
    .unwrap();
    let bridge = "sw".parse().unwrap();
    daemons.add_bridge(&bridge).await.unwrap();
    daemons.add_bridge(&"host".parse().unwrap()).await.unwrap();
    ns.add_veth("swa", "ha").unwrap();
    ns.add_veth("swb", "hb").unwrap();
    daemons
        .vsctl(&[
            "add-bond",
            "host",
            "bond0",
            "ha",
            "hb",
            "lacp=active",
            "bond_mode=balance-tcp",
            "other_config:lacp-time=fast",
        ])
        .run()
        .await
        .unwrap();
    let switch = daemons.switch(bridge);
    let ports: [SwitchPort; 2] = ["swa".parse().unwrap(), "swb".parse().unwrap()];
    let vlan = VlanId::try_from(10).unwrap();
    let lag = LagId::try_from(1).unwrap();
    let lacp = LacpOptions {
        fallback: false,
        partner_within: Some(Duration::from_secs(30)),
    };
    switch.set_ports_access_mode(&ports, vlan).await.unwrap();

    println!(
        "Open vSwitch {} (userspace datapath), 2 ports, LACP fast timer, {ROUNDS} rounds",
        ovs_version(&daemons).await
    );
    let (mut to_lacp, mut to_access, mut total) = (vec![], vec![], vec![]);
    for round in 1..=ROUNDS {
        let t0 = Instant::now();
        let c = switch
            .set_ports_lacp_mode(&ports, lag, vlan, lacp)
            .await
            .unwrap();
        let t1 = Instant::now();
        let a = switch.set_ports_access_mode(&ports, vlan).await.unwrap();
        let t2 = Instant::now();
        assert_eq!((c, a), (Change::Applied, Change::Applied));
        println!(
            "round {round}: access -> LACP (partner collecting+distributing) {:7.1} ms, \
             LACP -> access {:6.1} ms, round trip {:7.1} ms",
            millis(t1 - t0),
            millis(t2 - t1),
            millis(t2 - t0)
        );
        to_lacp.push(t1 - t0);
        to_access.push(t2 - t1);
        total.push(t2 - t0);
    }
    println!(
        "median: access -> LACP {:.1} ms, LACP -> access {:.1} ms, round trip with verification {:.1} ms",
        millis(median(to_lacp)),
        millis(median(to_access)),
        millis(median(total))
    );
    daemons.stop().await.unwrap();
}

async fn ovs_version(daemons: &OvsDaemons) -> String {
    let out = daemons.vsctl(&["--version"]).run().await.unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or("?")
        .to_string()
}
