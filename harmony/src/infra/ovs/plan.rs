//! The pure half of the Open vSwitch switch: from the bridge's database
//! state, what each asked-for port is, which Port rows a change touches
//! (and whether they can be put back exactly), the `ovs-vsctl` transaction
//! that makes the change, and the one that restores the snapshot. No I/O:
//! unit-tested on parsed real output.
//!
//! Harmony names its LAGs `bond<N>` on Open vSwitch (N the [`LagId`]); a
//! switch port is an OVS interface (a network device on the bridge).

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::text::safe_text;
use crate::domain::{LagId, PortMode, VlanId};

use super::OvsName;
use super::db::{DbState, InterfaceRow, Lacp, PortRow};

/// The `other_config` key of the LACP timer, and Harmony's value.
const LACP_TIME: (&str, &str) = ("lacp-time", "fast");
/// The `other_config` key of LACP fallback.
const FALLBACK: &str = "lacp-fallback-ab";
/// Harmony's bond mode (needs LACP; hashes flows over the members).
const BOND_MODE: &str = "balance-tcp";

/// The OVS Port name of a LAG.
pub fn bond_name(lag: LagId) -> OvsName {
    OvsName(format!("bond{lag}"))
}

/// The LAG a Port name stands for, when it is one of Harmony's.
fn lag_of(port_name: &str) -> Option<LagId> {
    let digits = port_name.strip_prefix("bond")?;
    if digits.starts_with('0') {
        return None;
    }
    digits.parse().ok()
}

/// Where an interface is, as the database says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement<'a> {
    /// In this Port of our bridge.
    OnBridge(&'a PortRow, &'a InterfaceRow),
    /// On another bridge (its name, sanitised).
    Elsewhere(String),
    /// Not on any bridge.
    Detached,
}

/// Why a request is refused before anything is changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

/// The bridge and its rows, indexed.
#[derive(Debug)]
pub struct BridgeView<'a> {
    pub bridge: &'a OvsName,
    pub db: &'a DbState,
    /// Port UUIDs on our bridge.
    ours: BTreeSet<&'a str>,
}

impl<'a> BridgeView<'a> {
    pub fn new(db: &'a DbState, bridge: &'a OvsName) -> Result<Self, Refusal> {
        let ports = db
            .bridges
            .get(bridge.as_str())
            .ok_or_else(|| Refusal(format!("there is no bridge {bridge}")))?;
        Ok(Self {
            bridge,
            db,
            ours: ports.iter().map(String::as_str).collect(),
        })
    }

    fn bridge_of(&self, port_uuid: &str) -> Option<&'a str> {
        self.db
            .bridges
            .iter()
            .find(|(_, ports)| ports.iter().any(|p| p == port_uuid))
            .map(|(b, _)| b.as_str())
    }

    /// The Port holding interface `name`, and where it is.
    pub fn placement(&self, name: &OvsName) -> Placement<'a> {
        for port in self.db.ports.values() {
            for iu in &port.interfaces {
                let Some(iface) = self.db.interfaces.get(iu) else {
                    continue;
                };
                if iface.name != name.as_str() {
                    continue;
                }
                if self.ours.contains(port.uuid.as_str()) {
                    return Placement::OnBridge(port, iface);
                }
                let b = self.bridge_of(&port.uuid).unwrap_or("(none)");
                return Placement::Elsewhere(safe_text(b, 40));
            }
        }
        Placement::Detached
    }

    /// Our bridge's Port named `name`.
    pub fn port_named(&self, name: &str) -> Option<&'a PortRow> {
        self.db
            .ports
            .values()
            .find(|p| p.name == name && self.ours.contains(p.uuid.as_str()))
    }

    /// Any bridge's Port named `name` that is not on ours: its bridge.
    pub fn port_elsewhere(&self, name: &str) -> Option<String> {
        self.db
            .ports
            .values()
            .find(|p| p.name == name && !self.ours.contains(p.uuid.as_str()))
            .map(|p| safe_text(self.bridge_of(&p.uuid).unwrap_or("(none)"), 40))
    }

    /// The names of a Port's interfaces (untrusted, as held).
    pub fn interface_names(&self, port: &PortRow) -> Vec<String> {
        port.interfaces
            .iter()
            .filter_map(|u| self.db.interfaces.get(u))
            .map(|i| i.name.clone())
            .collect()
    }
}

/// Whether a Port is in the plain access shape: no trunks, access VLAN mode.
fn access_shaped(port: &PortRow) -> bool {
    port.trunks.is_empty() && matches!(port.vlan_mode.as_deref(), None | Some("access"))
}

/// What mode interface `iface` of `port` is in, and its VLAN and LAG.
pub fn mode_of(port: &PortRow, iface: &InterfaceRow) -> (PortMode, Option<VlanId>, Option<LagId>) {
    let vlan = port.tag.and_then(|t| VlanId::try_from(t).ok());
    let lacp_on = matches!(port.lacp, Some(Lacp::Active | Lacp::Passive));
    if access_shaped(port) {
        if let (true, Some(lag)) = (lacp_on, lag_of(&port.name)) {
            return (PortMode::LacpMember { lag }, vlan, Some(lag));
        }
        let plain = port.interfaces.len() == 1
            && port.name == iface.name
            && !lacp_on
            && port.bond_mode.is_none();
        if let (true, Some(v)) = (plain, vlan) {
            return (PortMode::Access { vlan: v }, vlan, None);
        }
    }
    (
        PortMode::Other,
        vlan,
        lag_of(&port.name).filter(|_| lacp_on),
    )
}

/// What a change asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Access {
        vlan: VlanId,
    },
    Lacp {
        lag: LagId,
        vlan: VlanId,
        fallback: bool,
    },
}

/// A Port row as it will be put back: validated names and settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedPort {
    pub name: OvsName,
    pub interfaces: Vec<OvsName>,
    pub tag: Option<u16>,
    pub trunks: Vec<u16>,
    pub vlan_mode: Option<String>,
    pub lacp: Option<Lacp>,
    pub bond_mode: Option<String>,
    pub other_config: BTreeMap<String, String>,
}

impl SavedPort {
    fn from_row(view: &BridgeView<'_>, row: &PortRow) -> Result<Self, Refusal> {
        let name = row
            .restorable()
            .map_err(|why| Refusal(format!("cannot put back what is there: {why}")))?;
        let mut interfaces = Vec::new();
        for n in view.interface_names(row) {
            let iface: OvsName = n.parse().map_err(|e| {
                Refusal(format!("cannot put back port {name}: interface name: {e}"))
            })?;
            interfaces.push(iface);
        }
        interfaces.sort();
        if interfaces.len() == 1 && interfaces[0] != name {
            return Err(Refusal(format!(
                "cannot put back port {name}: its one interface is named {}",
                interfaces[0]
            )));
        }
        if interfaces.is_empty() {
            return Err(Refusal(format!(
                "cannot put back port {name}: no interfaces"
            )));
        }
        Ok(Self {
            name,
            interfaces,
            tag: row.tag,
            trunks: row.trunks.clone(),
            vlan_mode: row.vlan_mode.clone(),
            lacp: row.lacp,
            bond_mode: row.bond_mode.clone(),
            other_config: row.other_config.clone(),
        })
    }

    /// `ovs-vsctl` column settings that recreate this Port's configuration.
    fn settings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(t) = self.tag {
            out.push(format!("tag={t}"));
        }
        if !self.trunks.is_empty() {
            let list: Vec<String> = self.trunks.iter().map(ToString::to_string).collect();
            out.push(format!("trunks=[{}]", list.join(",")));
        }
        if let Some(m) = &self.vlan_mode {
            out.push(format!("vlan_mode=\"{m}\""));
        }
        if let Some(l) = self.lacp {
            out.push(format!("lacp={}", l.as_str()));
        }
        if let Some(b) = &self.bond_mode {
            out.push(format!("bond_mode=\"{b}\""));
        }
        for (k, v) in &self.other_config {
            out.push(format!("other_config:\"{k}\"=\"{v}\""));
        }
        out
    }

    /// The `ovs-vsctl` command (after `--`) that creates this Port.
    fn add_command(&self, bridge: &OvsName) -> Vec<String> {
        let mut cmd = if self.interfaces.len() >= 2 {
            let mut c = vec!["add-bond".into(), bridge.to_string(), self.name.to_string()];
            c.extend(self.interfaces.iter().map(ToString::to_string));
            c
        } else {
            vec!["add-port".into(), bridge.to_string(), self.name.to_string()]
        };
        cmd.extend(self.settings());
        cmd
    }
}

/// What a change will do, and what to put back if it fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangePlan {
    /// The Ports as they are (deleted by the change, re-created on restore).
    pub saved: Vec<SavedPort>,
    /// The Ports the change creates.
    pub created: Vec<SavedPort>,
}

impl ChangePlan {
    /// The transaction (arguments after the global options) that deletes
    /// `delete` and creates `create`, in one OVSDB transaction.
    fn transaction(bridge: &OvsName, delete: &[&OvsName], create: &[SavedPort]) -> Vec<String> {
        let mut args = Vec::new();
        for name in delete {
            args.extend([
                "--".to_string(),
                "--if-exists".into(),
                "del-port".into(),
                bridge.to_string(),
                name.to_string(),
            ]);
        }
        for p in create {
            args.push("--".into());
            args.extend(p.add_command(bridge));
        }
        args
    }

    /// Apply: delete the saved Ports, create the new ones.
    pub fn apply_args(&self, bridge: &OvsName) -> Vec<String> {
        let delete: Vec<&OvsName> = self.saved.iter().map(|p| &p.name).collect();
        Self::transaction(bridge, &delete, &self.created)
    }

    /// Restore: delete whatever now holds the interfaces or names involved
    /// (as read in `now`), then re-create the saved Ports.
    pub fn restore_args(&self, view: &BridgeView<'_>) -> Vec<String> {
        let mut names: BTreeSet<OvsName> = BTreeSet::new();
        for p in self.saved.iter().chain(&self.created) {
            if view.port_named(p.name.as_str()).is_some() {
                names.insert(p.name.clone());
            }
            for i in &p.interfaces {
                if let Placement::OnBridge(port, _) = view.placement(i)
                    && let Ok(n) = port.name.parse::<OvsName>()
                {
                    names.insert(n);
                }
            }
        }
        let delete: Vec<&OvsName> = names.iter().collect();
        Self::transaction(view.bridge, &delete, &self.saved)
    }

    /// What differs between the saved Ports and the bridge `now` (empty:
    /// restored), including interfaces that were not on the bridge before
    /// and are now.
    pub fn restore_differences(&self, view: &BridgeView<'_>, asked: &[OvsName]) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.saved {
            let Some(row) = view.port_named(p.name.as_str()) else {
                out.push(format!("port {} is missing", p.name));
                continue;
            };
            match SavedPort::from_row(view, row) {
                Ok(now) if &now == p => {}
                Ok(now) => out.push(format!("port {} is {now:?}, was {p:?}", p.name)),
                Err(Refusal(why)) => out.push(why),
            }
        }
        let before: BTreeSet<&OvsName> = self.saved.iter().flat_map(|p| &p.interfaces).collect();
        for i in asked {
            if !before.contains(i) && !matches!(view.placement(i), Placement::Detached) {
                out.push(format!("{i} was not on the bridge and is now"));
            }
        }
        out
    }
}

/// Plans setting `asked` to `target` on the bridge: `None` when the
/// bridge is already so (Unchanged), a refusal when a Port the change
/// would touch holds other interfaces, sits on another bridge, is not a
/// plain network device or could not be put back exactly.
pub fn plan_change(
    view: &BridgeView<'_>,
    asked: &[OvsName],
    target: Target,
) -> Result<Option<ChangePlan>, Refusal> {
    let asked_set: BTreeSet<&OvsName> = asked.iter().collect();
    let mut touched: BTreeMap<String, &PortRow> = BTreeMap::new();
    for name in asked {
        if name.as_str() == view.bridge.as_str() {
            return Err(Refusal(format!("{name} is the bridge's own port")));
        }
        match view.placement(name) {
            Placement::Elsewhere(b) => {
                return Err(Refusal(format!(
                    "{name} is on bridge {b}, not {}",
                    view.bridge
                )));
            }
            Placement::OnBridge(port, iface) => {
                if !iface.is_system() {
                    return Err(Refusal(format!(
                        "{name} is an interface of type {:?}, not a network device",
                        safe_text(&iface.kind, 20)
                    )));
                }
                touched.insert(port.uuid.clone(), port);
            }
            Placement::Detached => {}
        }
    }
    if let Target::Lacp { lag, .. } = target {
        if asked.len() < 2 {
            return Err(Refusal(
                "an Open vSwitch bond needs at least two member ports".into(),
            ));
        }
        let bond = bond_name(lag);
        if let Some(b) = view.port_elsewhere(bond.as_str()) {
            return Err(Refusal(format!("a port {bond} exists on bridge {b}")));
        }
        if let Some(p) = view.port_named(bond.as_str()) {
            touched.insert(p.uuid.clone(), p);
        }
    }
    let mut saved = Vec::new();
    for port in touched.values() {
        let held = view.interface_names(port);
        let others: Vec<String> = held
            .iter()
            .filter(|n| !asked_set.iter().any(|a| a.as_str() == n.as_str()))
            .map(|n| safe_text(n, 20))
            .collect();
        if !others.is_empty() {
            return Err(Refusal(format!(
                "port {} also holds {}: name all of its members",
                safe_text(&port.name, 20),
                others.join(", ")
            )));
        }
        saved.push(SavedPort::from_row(view, port)?);
    }
    let created = match target {
        Target::Access { vlan } => asked
            .iter()
            .map(|n| SavedPort {
                name: n.clone(),
                interfaces: vec![n.clone()],
                tag: Some(vlan.get()),
                trunks: vec![],
                vlan_mode: None,
                lacp: None,
                bond_mode: None,
                other_config: BTreeMap::new(),
            })
            .collect(),
        Target::Lacp {
            lag,
            vlan,
            fallback,
        } => {
            let mut interfaces = asked.to_vec();
            interfaces.sort();
            let mut other_config = BTreeMap::from([(LACP_TIME.0.into(), LACP_TIME.1.into())]);
            if fallback {
                other_config.insert(FALLBACK.into(), "true".into());
            }
            vec![SavedPort {
                name: bond_name(lag),
                interfaces,
                tag: Some(vlan.get()),
                trunks: vec![],
                vlan_mode: None,
                lacp: Some(Lacp::Active),
                bond_mode: Some(BOND_MODE.into()),
                other_config,
            }]
        }
    };
    let mut now = saved.clone();
    now.sort_by(|a, b| a.name.cmp(&b.name));
    let mut want = created.clone();
    want.sort_by(|a, b| a.name.cmp(&b.name));
    if now == want {
        return Ok(None);
    }
    Ok(Some(ChangePlan { saved, created }))
}

#[cfg(test)]
mod tests {
    use super::super::db::parse_state;
    use super::*;

    const STATE: &str = include_str!("fixtures/state.json");

    fn n(s: &str) -> OvsName {
        s.parse().unwrap()
    }

    fn vlan(v: u16) -> VlanId {
        VlanId::try_from(v).unwrap()
    }

    fn lag(l: u16) -> LagId {
        LagId::try_from(l).unwrap()
    }

    #[test]
    fn modes_are_read_from_the_rows() {
        let db = parse_state(STATE).unwrap();
        let br = n("sw");
        let view = BridgeView::new(&db, &br).unwrap();
        let Placement::OnBridge(port, iface) = view.placement(&n("swa")) else {
            panic!("swa is on sw");
        };
        assert_eq!(
            mode_of(port, iface),
            (
                PortMode::LacpMember { lag: lag(1) },
                Some(vlan(10)),
                Some(lag(1))
            )
        );
        let Placement::OnBridge(port, iface) = view.placement(&n("swc")) else {
            panic!("swc is on sw");
        };
        assert_eq!(
            mode_of(port, iface),
            (PortMode::Access { vlan: vlan(10) }, Some(vlan(10)), None)
        );
        assert_eq!(view.placement(&n("nosuch")), Placement::Detached);
        assert_eq!(
            view.placement(&n("ha")),
            Placement::Elsewhere("host".into())
        );
        assert!(BridgeView::new(&db, &n("other")).is_err());
    }

    #[test]
    fn unmanaged_shapes_read_as_other() {
        let db = parse_state(STATE).unwrap();
        let br = n("sw");
        let view = BridgeView::new(&db, &br).unwrap();
        let Placement::OnBridge(port, iface) = view.placement(&n("swc")) else {
            panic!()
        };
        let mut trunk = port.clone();
        trunk.trunks = vec![10, 20];
        assert_eq!(mode_of(&trunk, iface).0, PortMode::Other);
        let mut untagged = port.clone();
        untagged.tag = None;
        assert_eq!(mode_of(&untagged, iface).0, PortMode::Other);
        let mut static_lag = port.clone();
        static_lag.name = "bond7".into();
        static_lag.lacp = None;
        assert_eq!(mode_of(&static_lag, iface).0, PortMode::Other);
        let mut foreign = port.clone();
        foreign.name = "uplink".into();
        foreign.lacp = Some(Lacp::Active);
        assert_eq!(mode_of(&foreign, iface).0, PortMode::Other);
    }

    #[test]
    fn plans_a_round_trip_and_sees_when_nothing_is_to_do() {
        let db = parse_state(STATE).unwrap();
        let br = n("sw");
        let view = BridgeView::new(&db, &br).unwrap();
        let members = [n("swa"), n("swb")];
        // Already so: Unchanged.
        let same = Target::Lacp {
            lag: lag(1),
            vlan: vlan(10),
            fallback: false,
        };
        assert_eq!(plan_change(&view, &members, same).unwrap(), None);
        assert_eq!(
            plan_change(&view, &[n("swc")], Target::Access { vlan: vlan(10) }).unwrap(),
            None
        );
        // To access: the bond goes, two access ports come.
        let plan = plan_change(&view, &members, Target::Access { vlan: vlan(20) })
            .unwrap()
            .unwrap();
        assert_eq!(
            plan.apply_args(&br).join(" "),
            "-- --if-exists del-port sw bond1 -- add-port sw swa tag=20 -- add-port sw swb tag=20"
        );
        // Its restore re-creates the bond exactly.
        assert_eq!(
            plan.restore_args(&view).join(" "),
            "-- --if-exists del-port sw bond1 -- add-bond sw bond1 swa swb tag=10 lacp=active \
             bond_mode=\"balance-tcp\" other_config:\"lacp-time\"=\"fast\""
        );
        assert!(plan.restore_differences(&view, &members).is_empty());
        // With fallback: a change of the bond's settings.
        let fb = Target::Lacp {
            lag: lag(1),
            vlan: vlan(10),
            fallback: true,
        };
        let plan = plan_change(&view, &members, fb).unwrap().unwrap();
        assert!(
            plan.apply_args(&br).join(" ").ends_with(
                "other_config:\"lacp-fallback-ab\"=\"true\" other_config:\"lacp-time\"=\"fast\""
            ),
            "{:?}",
            plan.apply_args(&br)
        );
        // A new port, detached before: restore deletes it again.
        let plan = plan_change(&view, &[n("newp")], Target::Access { vlan: vlan(10) })
            .unwrap()
            .unwrap();
        assert!(plan.saved.is_empty());
        assert_eq!(plan.apply_args(&br).join(" "), "-- add-port sw newp tag=10");
    }

    #[test]
    fn refuses_what_it_could_not_undo_or_does_not_own() {
        let db = parse_state(STATE).unwrap();
        let br = n("sw");
        let view = BridgeView::new(&db, &br).unwrap();
        let access = Target::Access { vlan: vlan(10) };
        let refused = |asked: &[OvsName], t: Target| plan_change(&view, asked, t).unwrap_err().0;
        assert!(refused(&[n("swa")], access).contains("also holds swb"));
        assert!(refused(&[n("ha")], access).contains("on bridge host"));
        assert!(refused(&[n("sw")], access).contains("bridge's own port"));
        let lacp = Target::Lacp {
            lag: lag(1),
            vlan: vlan(10),
            fallback: false,
        };
        assert!(refused(&[n("swc")], lacp).contains("at least two"));
        // bond1 holds swa and swb: a LAG 1 of swc and swd would drop them.
        assert!(refused(&[n("swc"), n("swd")], lacp).contains("also holds"));
        // A port with a setting that cannot be put back exactly.
        let mut odd = db.clone();
        let swc = odd.ports.values_mut().find(|p| p.name == "swc").unwrap();
        swc.other_config.insert("note".into(), "a b".into());
        let view = BridgeView::new(&odd, &br).unwrap();
        let e = plan_change(&view, &[n("swc")], Target::Access { vlan: vlan(20) }).unwrap_err();
        assert!(e.0.contains("cannot put back"), "{e:?}");
    }
}
