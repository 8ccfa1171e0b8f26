//! `SwitchAutomationScore` against a real, private Open vSwitch started in
//! a network namespace the test creates (as in `tests/ovs.rs`): bridge
//! `sw` is the switch, and a second bridge `host` with an `lacp=active`
//! bond over two veth peers plays the installed host's 802.3ad bond (this
//! kernel has no `bonding` module). The host's end of the verification
//! reads that bond's real LACP state (`ovs-appctl lacp/show`) and hands it
//! to the Score in the kernel's `/proc/net/bonding` format, the only piece
//! standing in for SSH. Access → LACP verified from both ends → access
//! before a PXE reboot, each second run a Noop.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../harmony-inventory-agent/tests/support/netns.rs"]
mod netns;

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use harmony::domain::{
    CapResult, CapabilityError, Change, CommandOutput, EventBus, HostId, Interpret, Inventory,
    LacpOptions, LagId, MacAddress, PortMode, PortStatus, RebootConfirm, RebootReport,
    RemoteCommand, RemoteHost, RemoteShell, RunLimits, Score, Switch, SwitchCapabilities,
    SwitchError, SwitchPort, Topology, VlanId,
};
use harmony::infra::ovs::appctl::parse_lacp_show;
use harmony::infra::ovs::daemons::OvsDaemonsConfig;
use harmony::infra::ovs::{OpenVSwitch, OvsDaemons, OvsName};
use harmony::infra::process::Program;
use harmony::modules::switch_automation::{HostSwitchPlan, PortGoal, SwitchAutomationScore};
use harmony::store::SqliteStore;
use netns::NetNs;

/// The system id the host's bond announces.
const HOST_SYSTEM_ID: &str = "02:00:00:00:00:aa";

/// The switch, and the host bond's real LACP state behind `RemoteShell`.
#[derive(Debug)]
struct LabSite {
    switch: OpenVSwitch,
    vswitchd_ctl: PathBuf,
}

impl Topology for LabSite {
    fn name(&self) -> &str {
        "ovs lab"
    }
}

#[async_trait]
impl Switch for LabSite {
    fn switch_name(&self) -> &str {
        self.switch.switch_name()
    }
    fn capabilities(&self) -> SwitchCapabilities {
        self.switch.capabilities()
    }
    async fn get_port_status(&self, ports: &[SwitchPort]) -> Result<Vec<PortStatus>, SwitchError> {
        self.switch.get_port_status(ports).await
    }
    async fn set_ports_access_mode(
        &self,
        ports: &[SwitchPort],
        vlan: VlanId,
    ) -> Result<Change, SwitchError> {
        self.switch.set_ports_access_mode(ports, vlan).await
    }
    async fn set_ports_lacp_mode(
        &self,
        ports: &[SwitchPort],
        lag: LagId,
        vlan: VlanId,
        options: LacpOptions,
    ) -> Result<Change, SwitchError> {
        self.switch
            .set_ports_lacp_mode(ports, lag, vlan, options)
            .await
    }
}

/// 802.1AX state bits of OVS's flag words.
fn state_byte(s: &harmony::infra::ovs::appctl::LacpState) -> u8 {
    [
        s.activity,
        s.timeout,
        s.aggregation,
        s.synchronized,
        s.collecting,
        s.distributing,
        s.defaulted,
        s.expired,
    ]
    .iter()
    .enumerate()
    .fold(0, |acc, (i, on)| if *on { acc | (1 << i) } else { acc })
}

impl LabSite {
    /// The host bridge's `bond0` as `/proc/net/bonding/bond0` would show
    /// it: members attached to the aggregator share aggregator 1 and hear
    /// the switch; the others are each alone with the partner OVS reports
    /// (none). The veths are up, so every slave's MII status is up.
    async fn bond_file(&self, bond: &str) -> CapResult<String> {
        let out = Program::new("ovs-appctl")
            .arg("-t")
            .arg(&self.vswitchd_ctl)
            .args(["--timeout=10", "lacp/show", bond])
            .timeout(Duration::from_secs(12))
            .run()
            .await
            .map_err(|e| CapabilityError::new("remote shell", e.to_string()))?;
        let show = parse_lacp_show(&String::from_utf8_lossy(&out.stdout))
            .map_err(|e| CapabilityError::new("remote shell", e.to_string()))?;
        let zero = "00:00:00:00:00:00".to_string();
        let sys = show.sys_id.map_or(zero.clone(), |m| m.to_string());
        let agg = |i: usize, attached: bool| if attached { 1 } else { i + 2 };
        let active = show
            .members
            .iter()
            .enumerate()
            .find(|(_, m)| m.attached)
            .or_else(|| show.members.iter().enumerate().next());
        let (active_id, active_partner) = active.map_or((1, zero.clone()), |(i, m)| {
            (
                agg(i, m.attached),
                m.partner_sys_id.map_or(zero.clone(), |p| p.to_string()),
            )
        });
        let in_active = show
            .members
            .iter()
            .enumerate()
            .filter(|(i, m)| agg(*i, m.attached) == active_id)
            .count();
        let mut f = format!(
            "Ethernet Channel Bonding Driver: v6.1.0\n\n\
             Bonding Mode: IEEE 802.3ad Dynamic link aggregation\nMII Status: up\n\n\
             802.3ad info\nLACP rate: fast\nSystem priority: 65534\n\
             System MAC address: {sys}\nActive Aggregator Info:\n\
             \tAggregator ID: {active_id}\n\tNumber of ports: {in_active}\n\
             \tActor Key: 1\n\tPartner Key: 1\n\tPartner Mac Address: {active_partner}\n"
        );
        for (i, m) in show.members.iter().enumerate() {
            let partner = m.partner_sys_id.map_or(zero.clone(), |p| p.to_string());
            write!(
                f,
                "\nSlave Interface: {}\nMII Status: up\nAggregator ID: {}\n\
                 details actor lacp pdu:\n    system mac address: {sys}\n    port state: 63\n\
                 details partner lacp pdu:\n    system mac address: {partner}\n\
                 \x20   port state: {}\n",
                m.name,
                agg(i, m.attached),
                state_byte(&m.partner_state)
            )
            .unwrap();
        }
        Ok(f)
    }
}

#[async_trait]
impl RemoteShell for LabSite {
    async fn run(
        &self,
        _host: &RemoteHost,
        command: &RemoteCommand,
        _limits: RunLimits,
    ) -> CapResult<CommandOutput> {
        let RemoteCommand::BondStatus { bond } = command else {
            return Err(CapabilityError::new(
                "remote shell",
                "only bond status here",
            ));
        };
        Ok(CommandOutput {
            exit_status: Some(0),
            exit_signal: None,
            stdout: self.bond_file(bond.as_str()).await?,
            stderr: String::new(),
            truncated: false,
        })
    }

    async fn reboot(&self, _: &RemoteHost, _: RebootConfirm) -> CapResult<RebootReport> {
        Err(CapabilityError::new("remote shell", "no reboot here"))
    }

    async fn answers(&self, _: &RemoteHost) -> CapResult<bool> {
        Ok(true)
    }
}

fn port(s: &str) -> SwitchPort {
    s.parse().unwrap()
}

const TEST: &str = "switch_automation_ovs::access_then_verified_lacp_then_access_on_real_ovs";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_then_verified_lacp_then_access_on_real_ovs() {
    let Some(sw_ns) = NetNs::new_or_skip("swauto", TEST) else {
        return;
    };
    sw_ns.ip_ok(&["link", "set", "dev", "lo", "up"]);
    let daemons = OvsDaemons::start(OvsDaemonsConfig {
        netns: Some(sw_ns.name().to_string()),
        ..OvsDaemonsConfig::default()
    })
    .await
    .unwrap();
    let bridge: OvsName = "sw".parse().unwrap();
    daemons.add_bridge(&bridge).await.unwrap();
    // The host: bridge `host`, its bond0 over ha/hb, cabled to swa/swb.
    daemons
        .vsctl(&[
            "add-br",
            "host",
            "--",
            "set",
            "bridge",
            "host",
            "datapath_type=netdev",
        ])
        .run()
        .await
        .unwrap();
    for (s, h) in [("swa", "ha"), ("swb", "hb")] {
        sw_ns.add_veth(s, h).unwrap();
    }
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
            &format!("other_config:lacp-system-id=\"{HOST_SYSTEM_ID}\""),
        ])
        .run()
        .await
        .unwrap();

    let site = LabSite {
        switch: daemons.switch(bridge),
        vswitchd_ctl: daemons.vswitchd_ctl().to_path_buf(),
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("inv.sqlite3")).unwrap());
    let inv = Inventory::new(store, EventBus::default());
    let host_mac: MacAddress = HOST_SYSTEM_ID.parse().unwrap();
    let host = RemoteHost::discovery(
        HostId::from_macs(&[host_mac]).unwrap(),
        // Never contacted: the bond is read from OVS.
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, 20)),
    );
    let members = vec![port("swa"), port("swb")];
    let vlan = VlanId::try_from(10).unwrap();
    let lag = LagId::try_from(1).unwrap();
    let score = |goal: PortGoal| {
        let mut s = SwitchAutomationScore::new(
            vlan,
            vec![HostSwitchPlan {
                host: host.clone(),
                ports: members.clone(),
                goal,
            }],
        );
        s.partner_within = Duration::from_secs(30);
        s.bond_within = Duration::from_secs(30);
        s.poll = Duration::from_millis(200);
        s
    };
    let run = |s: SwitchAutomationScore| {
        let (inv, site) = (&inv, &site);
        async move {
            let i: Box<dyn Interpret<LabSite>> = s.create_interpret();
            let plan = i.plan(inv, site).await.unwrap();
            let outcome = i.execute(inv, site).await;
            (plan, outcome)
        }
    };

    // 1. Discovery / PXE: access ports (they start off the bridge).
    let (plan, outcome) = run(score(PortGoal::Pxe)).await;
    assert_eq!(plan.changes.len(), 1, "{plan}");
    assert!(
        plan.to_string()
            .contains("ports swa, swb to access vlan 10"),
        "{plan}"
    );
    let outcome = outcome.unwrap();
    assert!(!outcome.is_noop(), "{outcome}");
    for st in site.get_port_status(&members).await.unwrap() {
        assert_eq!(st.mode, PortMode::Access { vlan }, "{st}");
    }
    let (_, again) = run(score(PortGoal::Pxe)).await;
    assert!(again.unwrap().is_noop());

    // 2. The installed OS has its bond up: LACP, verified from both ends.
    let lacp = PortGoal::Lacp {
        lag,
        bond: "bond0".parse().unwrap(),
        slaves: vec!["ha".parse().unwrap(), "hb".parse().unwrap()],
    };
    let (plan, outcome) = run(score(lacp.clone())).await;
    assert!(
        plan.to_string().contains(&format!(
            "to lacp lag 1 vlan 10, verified: partner {host_mac}"
        )),
        "{plan}"
    );
    let outcome = outcome.unwrap().to_string();
    assert!(
        outcome.contains(&format!(
            "partner {host_mac} collecting and distributing on every member; bond bond0 \
             aggregator 1 partner"
        )),
        "{outcome}"
    );
    for st in site.get_port_status(&members).await.unwrap() {
        assert_eq!(st.mode, PortMode::LacpMember { lag }, "{st}");
        let p = st.partner.as_ref().unwrap();
        assert_eq!(p.system_id, host_mac);
        assert!(p.is_forwarding(), "{st}");
    }
    let (plan, again) = run(score(lacp.clone())).await;
    assert!(plan.is_empty(), "{plan}");
    assert!(again.unwrap().is_noop());

    // 3. A reinstall is coming: back to access before the PXE reboot.
    let (_, outcome) = run(score(PortGoal::AccessBeforePxeReboot)).await;
    let outcome = outcome.unwrap().to_string();
    assert!(
        outcome.contains("to access vlan 10 before its PXE reboot"),
        "{outcome}"
    );
    for st in site.get_port_status(&members).await.unwrap() {
        assert_eq!(st.mode, PortMode::Access { vlan }, "{st}");
        assert_eq!(st.partner, None);
    }
    let (_, again) = run(score(PortGoal::AccessBeforePxeReboot)).await;
    assert!(again.unwrap().is_noop());

    // 4. A host whose bond is not LACP (its OS configured it active-backup):
    // no change, the ports stay access.
    daemons
        .vsctl(&[
            "set",
            "port",
            "bond0",
            "lacp=off",
            "bond_mode=active-backup",
        ])
        .run()
        .await
        .unwrap();
    let i: Box<dyn Interpret<LabSite>> = score(lacp).create_interpret();
    let e = i.execute(&inv, &site).await.unwrap_err().to_string();
    assert!(e.contains("bond0"), "{e}");
    for st in site.get_port_status(&members).await.unwrap() {
        assert_eq!(st.mode, PortMode::Access { vlan }, "{st}");
    }

    daemons.stop().await.unwrap();
}
