//! AOS-CX interface objects as Harmony reads and writes them
//! (vendor-apis.md §2). Read: `GET /rest/<v>/system/interfaces?depth=1`,
//! one object per interface name; `admin` (`up`/`down`), `admin_state`
//! (`up` when the link is up), `link_speed` (bit/s), `vlan_mode`,
//! `vlan_tag` (`{"10": "/rest/v10.08/system/vlans/10"}` from v10.04),
//! `routing`, and on a LAG `type: lag`, `lacp`, `interfaces` (`{"1/1/1":
//! ".../1%2F1%2F1"}`), `other_config."lacp-fallback"` (openl2m
//! `aruba_aoscx/connector.py` [A8]; pyaoscx `interface.py`, `api.py`
//! [A2, A3]). A LAG member's partner is read from its `lacp_status` and
//! `lacp_current` (see [`partner_of`] for the source). All of it is
//! untrusted: names parse into [`SwitchPort`], VLANs into [`VlanId`], the
//! partner's system id into a [`MacAddress`], or the answer is refused.

use serde_json::{Map, Value, json};

use crate::domain::{LacpPartner, LagId, MacAddress, PortMode, PortStatus, SwitchPort, VlanId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: String,
    pub reason: String,
}

fn bad(name: &str, reason: impl Into<String>) -> ParseError {
    ParseError {
        line: crate::domain::text::SafeText::bounded(name, 80).to_string(),
        reason: reason.into(),
    }
}

/// Path-segment encoding of an interface name (`1/1/1` → `1%2F1%2F1`).
pub fn encode(port: &SwitchPort) -> String {
    port.as_str().replace('/', "%2F").replace(':', "%3A")
}

/// The LAG id of a `lagN` name.
pub fn lag_of_name(name: &str) -> Option<LagId> {
    name.strip_prefix("lag")?.parse().ok()
}

/// The interface name of LAG `lag` (`lag5`).
pub fn lag_name(lag: LagId) -> String {
    format!("lag{lag}")
}

/// One interface as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iface {
    pub name: SwitchPort,
    pub is_lag: bool,
    pub admin_up: bool,
    pub oper_up: bool,
    pub speed_mbps: Option<u32>,
    /// `vlan_mode: access`, not routed, one `vlan_tag`.
    pub access_vlan: Option<VlanId>,
    /// LAGs: `lacp` active or passive.
    pub lacp: bool,
    pub members: Vec<SwitchPort>,
    pub fallback: bool,
    /// LAG members: the LACP partner, while its information is current.
    pub partner: Option<LacpPartner>,
}

/// The LACP partner of a member interface, from its status columns.
///
/// AOS-CX descends from OpenSwitch and keeps its `Interface` table: the
/// OpenSwitch schema (OpenSwitchNOS/openswitch-ops
/// `schema/openswitch/common/interface.json`, columns `lacp_current` and
/// `lacp_status`) documents `lacp_status.partner_system_id` ("priority and
/// mac address tuple") and `lacp_status.partner_state` (e.g.
/// `Actv:1,TmOut:1,Aggr:1,Sync:1,Col:1,Dist:1,Def:0,Exp:0`); its LACP
/// daemon writes them as `"%d,%02x:…"` and `Activ:…` (openswitch-ops-lacpd
/// `src/ovsdb_if.c` `format_system_id`/`format_state`), `0,00:00:00:00:00:00`
/// when no partner is known (`include/lacp_support.h` `NO_SYSTEM_ID`). On
/// AOS-CX, openl2m reads `lacp_current` and `lacp_status.actor_key` of the
/// same objects [A8]; the state letters match `show lacp interfaces`
/// (`C` collecting, `D` distributing, `E` defaulted, `X` expired [A9]).
///
/// No partner: no `lacp_status`, `lacp_current: false`, a zero system id,
/// or a defaulted or expired state. A malformed id or state is refused.
pub fn partner_of(name: &str, obj: &Map<String, Value>) -> Result<Option<LacpPartner>, ParseError> {
    let Some(status) = obj.get("lacp_status") else {
        return Ok(None);
    };
    let status = match status {
        Value::Null => return Ok(None),
        Value::Object(m) if m.is_empty() => return Ok(None),
        Value::Object(m) => m,
        _ => return Err(bad(name, "lacp_status: expected an object")),
    };
    if obj.get("lacp_current").and_then(Value::as_bool) == Some(false) {
        return Ok(None);
    }
    let text = |k: &str| -> Result<Option<&str>, ParseError> {
        match status.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(bad(name, format!("lacp_status.{k}: expected a string"))),
        }
    };
    let (Some(id), Some(state)) = (text("partner_system_id")?, text("partner_state")?) else {
        return Ok(None);
    };
    let shown = |v: &str| crate::domain::text::SafeText::bounded(v, 60).to_string();
    // `priority,mac`; a bare MAC is taken too.
    let mac = match id.split_once(',') {
        Some((prio, mac)) => {
            prio.trim().parse::<u16>().map_err(|_| {
                bad(
                    name,
                    format!(
                        "lacp_status.partner_system_id {:?}: bad priority",
                        shown(id)
                    ),
                )
            })?;
            mac.trim()
        }
        None => id.trim(),
    };
    if mac
        .split([':', '-'])
        .all(|o| !o.is_empty() && o.bytes().all(|b| b == b'0'))
    {
        return Ok(None);
    }
    let system_id: MacAddress = mac.parse().map_err(|e| {
        bad(
            name,
            format!("lacp_status.partner_system_id {:?}: {e}", shown(id)),
        )
    })?;
    let flags = parse_state(state).ok_or_else(|| {
        bad(
            name,
            format!(
                "lacp_status.partner_state {:?}: expected flags like Col:1,Dist:1,Def:0,Exp:0",
                shown(state)
            ),
        )
    })?;
    if flags.defaulted || flags.expired {
        return Ok(None);
    }
    Ok(Some(LacpPartner {
        system_id,
        collecting: flags.collecting,
        distributing: flags.distributing,
    }))
}

struct StateFlags {
    collecting: bool,
    distributing: bool,
    defaulted: bool,
    expired: bool,
}

/// `Activ:1,TmOut:1,Aggr:1,Sync:1,Col:1,Dist:1,Def:0,Exp:0` (optionally in
/// parentheses): every flag `0` or `1`, `Col` and `Dist` required.
fn parse_state(s: &str) -> Option<StateFlags> {
    let s = s.trim().trim_start_matches('(').trim_end_matches(')');
    let (mut col, mut dist, mut def, mut exp) = (None, None, false, false);
    for part in s.split(',') {
        let (k, v) = part.trim().split_once(':')?;
        let v = match v.trim() {
            "0" => false,
            "1" => true,
            _ => return None,
        };
        match k.trim() {
            "Col" => col = Some(v),
            "Dist" => dist = Some(v),
            "Def" => def = v,
            "Exp" => exp = v,
            // `Activ`/`Actv`, `TmOut`, `Aggr`, `Sync`, any later flag.
            _ => {}
        }
    }
    Some(StateFlags {
        collecting: col?,
        distributing: dist?,
        defaulted: def,
        expired: exp,
    })
}

fn vlan_tag(name: &str, obj: &Map<String, Value>) -> Result<Option<VlanId>, ParseError> {
    match obj.get("vlan_tag") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) if m.is_empty() => Ok(None),
        Some(Value::Object(m)) if m.len() == 1 => {
            let k = m.keys().next().map(String::as_str).unwrap_or("");
            k.parse::<VlanId>()
                .map(Some)
                .map_err(|e| bad(name, format!("vlan_tag: {e}")))
        }
        Some(_) => Err(bad(name, "vlan_tag: expected one VLAN reference")),
    }
}

/// Parses the `depth=1` interface collection.
pub fn parse_interfaces(v: &Value) -> Result<Vec<Iface>, ParseError> {
    let Value::Object(all) = v else {
        return Err(bad("", "expected an object of interfaces"));
    };
    let mut out = Vec::with_capacity(all.len());
    for (name, obj) in all {
        let port: SwitchPort = name
            .parse()
            .map_err(|e| bad(name, format!("interface name: {e}")))?;
        let Value::Object(obj) = obj else {
            return Err(bad(name, "expected an interface object"));
        };
        let text = |k: &str| obj.get(k).and_then(Value::as_str);
        let is_lag = text("type") == Some("lag");
        let routing = obj.get("routing").and_then(Value::as_bool).unwrap_or(true);
        let tag = vlan_tag(name, obj)?;
        let access_vlan = (text("vlan_mode") == Some("access") && !routing)
            .then_some(tag)
            .flatten();
        let mut members = Vec::new();
        if let Some(Value::Object(m)) = obj.get("interfaces") {
            for k in m.keys() {
                members.push(
                    k.parse()
                        .map_err(|e| bad(name, format!("LAG member name: {e}")))?,
                );
            }
        }
        let fallback = obj
            .get("other_config")
            .and_then(|o| o.get("lacp-fallback"))
            .is_some_and(|f| f.as_bool() == Some(true) || f.as_str() == Some("true"));
        let partner = partner_of(name, obj)?;
        out.push(Iface {
            name: port,
            is_lag,
            admin_up: text("admin") != Some("down"),
            oper_up: text("admin_state") == Some("up"),
            speed_mbps: obj
                .get("link_speed")
                .and_then(Value::as_u64)
                .and_then(|bps| u32::try_from(bps / 1_000_000).ok()),
            access_vlan,
            lacp: matches!(text("lacp"), Some("active" | "passive")),
            members,
            fallback,
            partner,
        });
    }
    Ok(out)
}

/// The LAG `port` is a member of.
pub fn lag_containing<'a>(all: &'a [Iface], port: &SwitchPort) -> Option<&'a Iface> {
    all.iter()
        .find(|i| i.is_lag && i.members.iter().any(|m| m == port))
}

/// A port's status.
pub fn status_of(all: &[Iface], port: &SwitchPort) -> PortStatus {
    let Some(me) = all.iter().find(|i| &i.name == port) else {
        return PortStatus::detached(port.clone());
    };
    let (mode, vlan, lag, partner) = match lag_containing(all, port) {
        Some(l) => {
            let id = lag_of_name(l.name.as_str());
            match id {
                Some(id) if l.lacp => (
                    PortMode::LacpMember { lag: id },
                    l.access_vlan,
                    Some(id),
                    me.partner.clone(),
                ),
                _ => (PortMode::Other, l.access_vlan, id, None),
            }
        }
        None => match me.access_vlan {
            Some(v) => (PortMode::Access { vlan: v }, Some(v), None, None),
            None => (PortMode::Other, None, None, None),
        },
    };
    PortStatus {
        port: port.clone(),
        admin_up: me.admin_up,
        oper_up: me.oper_up,
        speed_mbps: me.speed_mbps,
        mode,
        vlan,
        lag,
        partner,
        fault: None,
    }
}

/// `{"V": "/rest/<version>/system/vlans/V"}`.
pub fn vlan_ref(version: &str, vlan: VlanId) -> Value {
    json!({ vlan.to_string(): format!("/rest/{version}/system/vlans/{vlan}") })
}

/// `{"1/1/1": "/rest/<version>/system/interfaces/1%2F1%2F1", ...}`.
pub fn members_ref(version: &str, ports: &[SwitchPort]) -> Value {
    let mut m = Map::new();
    for p in ports {
        m.insert(
            p.to_string(),
            Value::String(format!("/rest/{version}/system/interfaces/{}", encode(p))),
        );
    }
    Value::Object(m)
}

/// A writable body made an access port in `vlan` (admin up); `lag`: as a
/// LAG member (`other_config."lacp-aggregation-key"`, as pyaoscx does
/// [A2]), else that key removed.
pub fn as_access(
    mut body: Map<String, Value>,
    version: &str,
    vlan: VlanId,
    lag: Option<LagId>,
) -> Map<String, Value> {
    body.insert("vlan_mode".into(), json!("access"));
    body.insert("vlan_tag".into(), vlan_ref(version, vlan));
    body.insert("routing".into(), json!(false));
    body.insert("admin".into(), json!("up"));
    let mut other = match body.remove("other_config") {
        Some(Value::Object(o)) => o,
        _ => Map::new(),
    };
    match lag {
        Some(l) => {
            other.insert("lacp-aggregation-key".into(), json!(l.get()));
        }
        None => {
            other.remove("lacp-aggregation-key");
        }
    }
    body.insert("other_config".into(), Value::Object(other));
    body
}

/// A LAG's writable body with exactly `members`, active LACP, fast timer,
/// `fallback`, untagged in `vlan`.
pub fn as_lag(
    mut body: Map<String, Value>,
    version: &str,
    members: &[SwitchPort],
    vlan: VlanId,
    fallback: bool,
) -> Map<String, Value> {
    body.insert("lacp".into(), json!("active"));
    body.insert("interfaces".into(), members_ref(version, members));
    body.insert("vlan_mode".into(), json!("access"));
    body.insert("vlan_tag".into(), vlan_ref(version, vlan));
    body.insert("routing".into(), json!(false));
    let mut other = match body.remove("other_config") {
        Some(Value::Object(o)) => o,
        _ => Map::new(),
    };
    other.insert("lacp-fallback".into(), json!(fallback));
    other.insert("lacp-time".into(), json!("fast"));
    body.insert("other_config".into(), Value::Object(other));
    body
}

/// The body that creates LAG `lag` (vendor-apis.md §2, derived from
/// pyaoscx `interface.py` [A2]).
pub fn new_lag(
    version: &str,
    lag: LagId,
    members: &[SwitchPort],
    vlan: VlanId,
    fallback: bool,
) -> Value {
    json!({
        "name": format!("lag{lag}"),
        "type": "lag",
        "lacp": "active",
        "interfaces": members_ref(version, members),
        "vlan_mode": "access",
        "vlan_tag": vlan_ref(version, vlan),
        "routing": false,
        "other_config": {"lacp-fallback": fallback, "lacp-time": "fast"},
    })
}

/// A LAG's writable body without `ports` among its members.
pub fn without_members(mut body: Map<String, Value>, ports: &[SwitchPort]) -> Map<String, Value> {
    if let Some(Value::Object(m)) = body.get_mut("interfaces") {
        m.retain(|k, _| !ports.iter().any(|p| p.as_str() == k));
    }
    body
}
