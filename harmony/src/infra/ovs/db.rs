//! The bridge as OVSDB holds it: `ovs-vsctl --format=json list` output for
//! the Bridge, Port and Interface tables parsed into typed rows. Everything
//! in it is untrusted switch output: names are validated before they can
//! reach a command, values outside what Harmony understands are kept as
//! "unmanaged" (the port reads as `Other`) or refused as unrestorable,
//! never guessed; malformed output is an error naming the table and row.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::domain::text::safe_text;

use super::OvsName;

/// Output that does not have the shape OVSDB gives it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {line}")]
pub struct ParseError {
    /// What is wrong.
    pub reason: String,
    /// The offending row or line, sanitised and bounded.
    pub line: String,
}

impl ParseError {
    pub fn new(reason: impl Into<String>, line: &str) -> Self {
        Self {
            reason: reason.into(),
            line: safe_text(line, 200),
        }
    }
}

/// `lacp` of a Port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lacp {
    Active,
    Passive,
    Off,
}

impl Lacp {
    pub fn as_str(self) -> &'static str {
        match self {
            Lacp::Active => "active",
            Lacp::Passive => "passive",
            Lacp::Off => "off",
        }
    }
}

/// A Port row, with the settings Harmony can read back and put back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRow {
    pub uuid: String,
    /// The name as OVSDB holds it (untrusted; see [`PortRow::restorable`]).
    pub name: String,
    /// Interface UUIDs.
    pub interfaces: Vec<String>,
    pub tag: Option<u16>,
    pub trunks: Vec<u16>,
    pub vlan_mode: Option<String>,
    pub lacp: Option<Lacp>,
    pub bond_mode: Option<String>,
    pub other_config: BTreeMap<String, String>,
}

/// An Interface row: its name, type and what vswitchd reports of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceRow {
    pub uuid: String,
    pub name: String,
    /// `""` or `system` for a network device; `internal`, `patch`...
    pub kind: String,
    pub admin_up: bool,
    pub link_up: bool,
    /// Bits per second.
    pub link_speed: Option<u64>,
    pub ofport: Option<i64>,
    pub error: Option<String>,
}

impl InterfaceRow {
    /// A plain network device (what Harmony may move between ports).
    pub fn is_system(&self) -> bool {
        self.kind.is_empty() || self.kind == "system"
    }
}

/// The switch's view: every bridge's port names, every port and interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbState {
    /// Bridge name to its Port UUIDs.
    pub bridges: BTreeMap<String, Vec<String>>,
    pub ports: BTreeMap<String, PortRow>,
    pub interfaces: BTreeMap<String, InterfaceRow>,
}

/// Columns asked of each table, in order (the parser checks the headings).
pub const BRIDGE_COLUMNS: &str = "name,ports";
pub const PORT_COLUMNS: &str =
    "_uuid,name,interfaces,tag,trunks,vlan_mode,lacp,bond_mode,other_config";
pub const INTERFACE_COLUMNS: &str =
    "_uuid,name,type,admin_state,link_state,link_speed,ofport,error";

/// The Port's settings put back on restore: an `other_config` key or
/// value outside `[A-Za-z0-9._:-]` makes the port unrestorable.
pub fn safe_config_text(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-'))
}

impl PortRow {
    /// Why this port could not be put back exactly, if it could not: a
    /// name that is no valid [`OvsName`], a `vlan_mode`/`bond_mode` or an
    /// `other_config` entry outside the safe character set.
    pub fn restorable(&self) -> Result<OvsName, String> {
        let name: OvsName = self.name.parse().map_err(|e| format!("port name: {e}"))?;
        for v in [&self.vlan_mode, &self.bond_mode].into_iter().flatten() {
            if !safe_config_text(v) {
                return Err(format!("setting {:?} of port {name}", safe_text(v, 40)));
            }
        }
        for (k, v) in &self.other_config {
            if !safe_config_text(k) || !safe_config_text(v) {
                return Err(format!(
                    "other_config {:?}={:?} of port {name}",
                    safe_text(k, 40),
                    safe_text(v, 40)
                ));
            }
        }
        Ok(name)
    }
}

/// Parses the three JSON documents `ovs-vsctl --format=json` prints for
/// `list bridge -- list port -- list interface` (one per line).
pub fn parse_state(stdout: &str) -> Result<DbState, ParseError> {
    let docs: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    let [bridges, ports, interfaces] = docs.as_slice() else {
        return Err(ParseError::new(
            format!("expected 3 JSON tables, got {}", docs.len()),
            stdout,
        ));
    };
    let mut state = DbState::default();
    for row in Table::parse(bridges, BRIDGE_COLUMNS)?.rows() {
        let name = row.string("name")?;
        let ports = row.uuid_set("ports")?;
        state.bridges.insert(name, ports);
    }
    for row in Table::parse(ports, PORT_COLUMNS)?.rows() {
        let lacp = match row.optional_string("lacp")?.as_deref() {
            None => None,
            Some("active") => Some(Lacp::Active),
            Some("passive") => Some(Lacp::Passive),
            Some("off") => Some(Lacp::Off),
            Some(_) => return Err(row.error("lacp is not active, passive or off")),
        };
        let p = PortRow {
            uuid: row.uuid("_uuid")?,
            name: row.string("name")?,
            interfaces: row.uuid_set("interfaces")?,
            tag: row.optional_u16("tag")?,
            trunks: row.u16_set("trunks")?,
            vlan_mode: row.optional_string("vlan_mode")?,
            lacp,
            bond_mode: row.optional_string("bond_mode")?,
            other_config: row.string_map("other_config")?,
        };
        state.ports.insert(p.uuid.clone(), p);
    }
    for row in Table::parse(interfaces, INTERFACE_COLUMNS)?.rows() {
        let link_speed = match row.optional_integer("link_speed")? {
            None => None,
            Some(n) => Some(u64::try_from(n).map_err(|_| row.error("negative link_speed"))?),
        };
        let i = InterfaceRow {
            uuid: row.uuid("_uuid")?,
            name: row.string("name")?,
            kind: row.string("type")?,
            admin_up: row.optional_string("admin_state")?.as_deref() == Some("up"),
            link_up: row.optional_string("link_state")?.as_deref() == Some("up"),
            link_speed,
            ofport: row.optional_integer("ofport")?,
            error: row.optional_string("error")?,
        };
        state.interfaces.insert(i.uuid.clone(), i);
    }
    Ok(state)
}

/// One `--format=json` table: `{"data": [[...], ...], "headings": [...]}`.
struct Table {
    headings: Vec<String>,
    data: Vec<Vec<Value>>,
}

#[derive(serde::Deserialize)]
struct RawTable {
    data: Vec<Vec<Value>>,
    headings: Vec<String>,
}

impl Table {
    fn parse(doc: &str, columns: &str) -> Result<Self, ParseError> {
        let raw: RawTable = serde_json::from_str(doc)
            .map_err(|e| ParseError::new(format!("not an OVSDB JSON table ({e})"), doc))?;
        let want: Vec<&str> = columns.split(',').collect();
        if raw.headings != want {
            return Err(ParseError::new(
                format!("headings are not {columns}"),
                &raw.headings.join(","),
            ));
        }
        if let Some(r) = raw.data.iter().find(|r| r.len() != want.len()) {
            return Err(ParseError::new(
                "a row has the wrong number of columns",
                &Value::Array(r.clone()).to_string(),
            ));
        }
        Ok(Self {
            headings: raw.headings,
            data: raw.data,
        })
    }

    fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        self.data.iter().map(|values| Row {
            table: self,
            values,
        })
    }
}

struct Row<'a> {
    table: &'a Table,
    values: &'a [Value],
}

impl Row<'_> {
    fn error(&self, reason: &str) -> ParseError {
        ParseError::new(reason, &Value::Array(self.values.to_vec()).to_string())
    }

    fn get(&self, column: &str) -> Result<&Value, ParseError> {
        self.table
            .headings
            .iter()
            .position(|h| h == column)
            .and_then(|i| self.values.get(i))
            .ok_or_else(|| self.error(&format!("no column {column}")))
    }

    fn string(&self, column: &str) -> Result<String, ParseError> {
        match self.get(column)? {
            Value::String(s) => Ok(s.clone()),
            _ => Err(self.error(&format!("{column} is not a string"))),
        }
    }

    /// The elements of a set column: `["set", [...]]`, or one bare atom.
    fn set<'v>(&self, v: &'v Value, column: &str) -> Result<Vec<&'v Value>, ParseError> {
        match v {
            Value::Array(a) if a.first().and_then(Value::as_str) == Some("set") => match a.get(1) {
                Some(Value::Array(items)) if a.len() == 2 => Ok(items.iter().collect()),
                _ => Err(self.error(&format!("{column} is a malformed set"))),
            },
            other => Ok(vec![other]),
        }
    }

    fn optional<'v>(&'v self, column: &str) -> Result<Option<&'v Value>, ParseError> {
        let v = self.get(column)?;
        let items = self.set(v, column)?;
        match items.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            _ => Err(self.error(&format!("{column} has more than one value"))),
        }
    }

    fn optional_string(&self, column: &str) -> Result<Option<String>, ParseError> {
        match self.optional(column)? {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.error(&format!("{column} is not a string"))),
        }
    }

    fn optional_integer(&self, column: &str) -> Result<Option<i64>, ParseError> {
        match self.optional(column)? {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.error(&format!("{column} is not an integer"))),
        }
    }

    fn to_u16(&self, v: &Value, column: &str) -> Result<u16, ParseError> {
        v.as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| self.error(&format!("{column} is not a number from 0 to 65535")))
    }

    fn optional_u16(&self, column: &str) -> Result<Option<u16>, ParseError> {
        match self.optional(column)? {
            None => Ok(None),
            Some(v) => self.to_u16(v, column).map(Some),
        }
    }

    fn u16_set(&self, column: &str) -> Result<Vec<u16>, ParseError> {
        let v = self.get(column)?;
        self.set(v, column)?
            .into_iter()
            .map(|x| self.to_u16(x, column))
            .collect()
    }

    fn uuid_of(&self, v: &Value, column: &str) -> Result<String, ParseError> {
        match v {
            Value::Array(a) if a.len() == 2 && a[0].as_str() == Some("uuid") => {
                let u = a[1].as_str().unwrap_or_default();
                let ok = u.len() == 36 && u.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-');
                if ok {
                    Ok(u.to_string())
                } else {
                    Err(self.error(&format!("{column} holds a malformed UUID")))
                }
            }
            _ => Err(self.error(&format!("{column} is not a UUID"))),
        }
    }

    fn uuid(&self, column: &str) -> Result<String, ParseError> {
        let v = self.get(column)?;
        self.uuid_of(v, column)
    }

    fn uuid_set(&self, column: &str) -> Result<Vec<String>, ParseError> {
        let v = self.get(column)?;
        self.set(v, column)?
            .into_iter()
            .map(|x| self.uuid_of(x, column))
            .collect()
    }

    fn string_map(&self, column: &str) -> Result<BTreeMap<String, String>, ParseError> {
        let bad = || self.error(&format!("{column} is not a map of strings"));
        let Value::Array(a) = self.get(column)? else {
            return Err(bad());
        };
        let (Some("map"), Some(Value::Array(pairs)), 2) =
            (a.first().and_then(Value::as_str), a.get(1), a.len())
        else {
            return Err(bad());
        };
        let mut out = BTreeMap::new();
        for pair in pairs {
            match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(k), Value::String(v)]) => {
                    out.insert(k.clone(), v.clone());
                }
                _ => return Err(bad()),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from `ovs-vsctl --format=json` (Open vSwitch 3.1.0) on a
    /// bridge `sw` with a LACP bond `bond1` (swa, swb, tag 10) and an access
    /// port `swc` (tag 10), and a bridge `host`.
    const STATE: &str = include_str!("fixtures/state.json");

    #[test]
    fn parses_real_output() {
        let s = parse_state(STATE).unwrap();
        assert_eq!(s.bridges.len(), 2);
        let sw = &s.bridges["sw"];
        let names: Vec<&str> = sw.iter().map(|u| s.ports[u].name.as_str()).collect();
        assert!(
            names.contains(&"bond1") && names.contains(&"swc"),
            "{names:?}"
        );
        let bond = s.ports.values().find(|p| p.name == "bond1").unwrap();
        assert_eq!(bond.lacp, Some(Lacp::Active));
        assert_eq!(bond.tag, Some(10));
        assert_eq!(bond.bond_mode.as_deref(), Some("balance-tcp"));
        assert_eq!(bond.other_config["lacp-time"], "fast");
        assert_eq!(bond.interfaces.len(), 2);
        assert_eq!(bond.restorable().unwrap().as_str(), "bond1");
        let swa = s.interfaces.values().find(|i| i.name == "swa").unwrap();
        assert!(swa.admin_up && swa.link_up && swa.is_system());
        assert_eq!(swa.link_speed, Some(10_000_000_000));
        assert_eq!(swa.error, None);
        let local = s.interfaces.values().find(|i| i.name == "sw").unwrap();
        assert_eq!(local.kind, "internal");
    }

    #[test]
    fn malformed_output_is_an_error_naming_the_row() {
        let bridge = r#"{"data":[["sw",["set",[]]]],"headings":["name","ports"]}"#;
        let iface_h = r#""headings":["_uuid","name","type","admin_state","link_state","link_speed","ofport","error"]"#;
        let port_h = r#""headings":["_uuid","name","interfaces","tag","trunks","vlan_mode","lacp","bond_mode","other_config"]"#;
        let empty_ifaces = format!(r#"{{"data":[],{iface_h}}}"#);
        let cases = [
            (String::new(), "expected 3 JSON tables"),
            ("not json\nx\ny".into(), "not an OVSDB JSON table"),
            (
                format!("{bridge}\n{{\"data\":[],\"headings\":[\"name\"]}}\n{empty_ifaces}"),
                "headings are not",
            ),
            (
                format!(
                    r#"{bridge}
{{"data":[[["uuid","9514b719-3563-4de5-8ae2-568e4482647a"],"p",["set",[]],99999,["set",[]],["set",[]],["set",[]],["set",[]],["map",[]]]],{port_h}}}
{empty_ifaces}"#
                ),
                "tag is not a number",
            ),
            (
                format!(
                    r#"{bridge}
{{"data":[[["uuid","not-a-uuid;rm -rf"],"p",["set",[]],["set",[]],["set",[]],["set",[]],["set",[]],["set",[]],["map",[]]]],{port_h}}}
{empty_ifaces}"#
                ),
                "malformed UUID",
            ),
            (
                format!(
                    r#"{bridge}
{{"data":[[["uuid","9514b719-3563-4de5-8ae2-568e4482647a"],"p",["set",[]],["set",[]],["set",[]],["set",[]],"sometimes",["set",[]],["map",[]]]],{port_h}}}
{empty_ifaces}"#
                ),
                "lacp is not",
            ),
            (
                format!(
                    r#"{bridge}
{{"data":[[["uuid","9514b719-3563-4de5-8ae2-568e4482647a"],"p",["set",[]],["set",[]],["set",[]],["set",[]],["set",[]],["set",[]],["map",[["k",1]]]]],{port_h}}}
{empty_ifaces}"#
                ),
                "not a map of strings",
            ),
            (
                format!("{bridge}\n{{\"data\":[[1,2]],{port_h}}}\n{empty_ifaces}"),
                "wrong number of columns",
            ),
        ];
        for (input, want) in cases {
            let e = parse_state(&input).unwrap_err();
            assert!(e.to_string().contains(want), "{want:?} not in {e}");
        }
    }

    #[test]
    fn hostile_names_and_settings_are_not_restorable() {
        let base = PortRow {
            uuid: "9514b719-3563-4de5-8ae2-568e4482647a".into(),
            name: "p1".into(),
            interfaces: vec![],
            tag: None,
            trunks: vec![],
            vlan_mode: None,
            lacp: None,
            bond_mode: None,
            other_config: BTreeMap::new(),
        };
        assert!(base.restorable().is_ok());
        let named = |n: &str| PortRow {
            name: n.into(),
            ..base.clone()
        };
        for bad in ["p 1", "tag=5", "-x", "p\"", "a;b", "sixteen-chars-xx"] {
            assert!(named(bad).restorable().is_err(), "{bad:?}");
        }
        let mut cfg = base.clone();
        cfg.other_config.insert("k".into(), "a\"b".into());
        assert!(cfg.restorable().unwrap_err().contains("other_config"));
        let mut mode = base;
        mode.vlan_mode = Some("x y".into());
        assert!(mode.restorable().is_err());
    }
}
