//! Typed values, validated at construction. Anything that comes from an
//! agent, a site file or a switch becomes one of these before it can reach a
//! template, a file name, a command or the store; the raw string never does.
//!
//! Each type deserializes through its validating constructor, so a value
//! read back from JSON or the store is valid too.

use std::fmt;
use std::str::FromStr;

/// Why a value was rejected: which field, which value (escaped), and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field} {value:?}: {reason}")]
pub struct ValueError {
    pub field: &'static str,
    /// The rejected input, truncated to 80 characters.
    pub value: String,
    pub reason: &'static str,
}

impl ValueError {
    pub fn new(field: &'static str, value: &str, reason: &'static str) -> Self {
        let value: String = value.chars().take(80).collect();
        Self {
            field,
            value,
            reason,
        }
    }
}

/// Serde as a string through `Display` and the validating `FromStr`.
macro_rules! string_serde {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = <String as serde::Deserialize>::deserialize(d)?;
                raw.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use string_serde;

/// An Ethernet MAC address. Displays lower-case, colon-separated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddress([u8; 6]);

impl MacAddress {
    pub const fn new(octets: [u8; 6]) -> Self {
        Self(octets)
    }

    pub fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// `aa-bb-cc-dd-ee-ff`: the form used in per-MAC file names (iPXE `${mac:hexhyp}`).
    pub fn hyphenated(&self) -> String {
        self.to_string().replace(':', "-")
    }

    /// Locally administered (bit 1 of the first octet): not a burned-in address.
    pub fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }

    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }
}

impl FromStr for MacAddress {
    type Err = ValueError;

    /// Accepts `aa:bb:cc:dd:ee:ff` or `aa-bb-cc-dd-ee-ff`, any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ValueError::new("MAC address", s, reason);
        if s.len() != 17 {
            return Err(err("expected six hex octets like aa:bb:cc:dd:ee:ff"));
        }
        let sep = s.as_bytes()[2];
        if sep != b':' && sep != b'-' {
            return Err(err("octets must be separated by ':' or '-'"));
        }
        let mut octets = [0u8; 6];
        for (i, part) in s.split(sep as char).enumerate() {
            if i >= 6 || part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err("expected six hex octets like aa:bb:cc:dd:ee:ff"));
            }
            octets[i] = u8::from_str_radix(part, 16).map_err(|_| err("not hexadecimal"))?;
        }
        let mac = MacAddress(octets);
        if octets == [0; 6] {
            return Err(err("all-zero address"));
        }
        if mac.is_multicast() {
            return Err(err("multicast address is not a NIC address"));
        }
        Ok(mac)
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            o[0], o[1], o[2], o[3], o[4], o[5]
        )
    }
}
string_serde!(MacAddress);

/// The first character of a device or interface name: a letter or a
/// digit. A leading `-` reads as an option to every tool that gets the name
/// (`ip=-rf:dhcp`, `nmcli`, `ip link`); a leading `.` makes a hidden file of
/// a name used in a file name (NetworkManager keyfiles) and lets `...` pass
/// for a name.
fn starts_safely(name: &str) -> bool {
    name.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric())
}

/// A Linux network interface name, by the kernel's rules
/// (`dev_valid_name`: 1 to `IFNAMSIZ - 1` = 15 bytes, not `.` or `..`, no
/// `/`, `:` or white space) and Harmony's: only `[A-Za-z0-9._-]`, starting
/// with a letter or a digit (never `-` or `.`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InterfaceName(String);

impl InterfaceName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for InterfaceName {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ValueError::new("interface name", s, reason);
        if s.is_empty() || s.len() > 15 {
            return Err(err("must be 1 to 15 characters"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(err("only letters, digits, '.', '_' and '-' are allowed"));
        }
        if s == "." || s == ".." {
            return Err(err("'.' and '..' are not interface names"));
        }
        if !starts_safely(s) {
            return Err(err("must start with a letter or a digit (not '-' or '.')"));
        }
        Ok(Self(s.to_string()))
    }
}

impl fmt::Display for InterfaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
string_serde!(InterfaceName);

/// An RFC 1123 host name (one or more labels), stored lower-case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hostname(String);

impl Hostname {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first label (`master-0` of `master-0.ocp.example.com`).
    pub fn short(&self) -> &str {
        self.0.split('.').next().unwrap_or(&self.0)
    }
}

impl FromStr for Hostname {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ValueError::new("host name", s, reason);
        let name = s.strip_suffix('.').unwrap_or(s);
        if name.is_empty() || name.len() > 253 {
            return Err(err("must be 1 to 253 characters"));
        }
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(err("each label must be 1 to 63 characters"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(err("labels may hold only letters, digits and '-'"));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(err("labels must not start or end with '-'"));
            }
        }
        Ok(Self(name.to_ascii_lowercase()))
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
string_serde!(Hostname);

/// A DNS owner name: a host name, or a wildcard (`*.apps.ocp.example.com`:
/// one leading `*` label, then a host name) covering every name below the
/// base. Parsed through one validating constructor; a `*` anywhere else, an
/// empty base or two `*` labels are refused.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DnsName {
    /// Exactly this name.
    Exact(Hostname),
    /// Every name below this base (`*.` + base).
    Wildcard(Hostname),
}

impl DnsName {
    /// The host name, or the base of a wildcard.
    pub fn base(&self) -> &Hostname {
        match self {
            DnsName::Exact(h) | DnsName::Wildcard(h) => h,
        }
    }

    pub fn is_wildcard(&self) -> bool {
        matches!(self, DnsName::Wildcard(_))
    }
}

impl From<Hostname> for DnsName {
    fn from(h: Hostname) -> Self {
        DnsName::Exact(h)
    }
}

impl FromStr for DnsName {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ValueError::new("DNS name", s, reason);
        match s.strip_prefix("*.") {
            Some(base) => {
                if base.contains('*') {
                    return Err(err("only one leading '*' label is allowed"));
                }
                base.parse::<Hostname>()
                    .map(DnsName::Wildcard)
                    .map_err(|_| err("after '*.' must come a valid host name"))
            }
            None if s.contains('*') => Err(err(
                "'*' is allowed only as the whole first label ('*.example.com')",
            )),
            None => s
                .parse::<Hostname>()
                .map(DnsName::Exact)
                .map_err(|e| ValueError {
                    field: "DNS name",
                    ..e
                }),
        }
    }
}

impl fmt::Display for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsName::Exact(h) => write!(f, "{h}"),
            DnsName::Wildcard(h) => write!(f, "*.{h}"),
        }
    }
}
string_serde!(DnsName);

/// The stable identity of a host across reboots and IP changes: its system
/// UUID, else its serial number, else its sorted permanent MACs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostId(String);

impl HostId {
    /// `uuid:<lower-case uuid>`; rejects malformed, all-0 and all-F UUIDs.
    pub fn from_uuid(uuid: &str) -> Result<Self, ValueError> {
        let err = |reason| ValueError::new("system UUID", uuid, reason);
        let hex: String = uuid.chars().filter(|c| *c != '-').collect();
        if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err("expected 32 hex digits"));
        }
        let hex = hex.to_ascii_lowercase();
        if hex.bytes().all(|b| b == b'0') || hex.bytes().all(|b| b == b'f') {
            return Err(err("placeholder UUID (all 0 or all F)"));
        }
        Ok(Self(format!(
            "uuid:{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )))
    }

    /// `serial:<serial>`; rejects placeholders and anything but
    /// `[A-Za-z0-9._/-]` (1 to 64 characters).
    pub fn from_serial(serial: &str) -> Result<Self, ValueError> {
        let err = |reason| ValueError::new("serial number", serial, reason);
        let s = serial.trim();
        if harmony_inventory_agent::model::is_bogus(s) {
            return Err(err("placeholder serial"));
        }
        if s.len() > 64
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
        {
            return Err(err("must be 1 to 64 of [A-Za-z0-9._/-]"));
        }
        Ok(Self(format!("serial:{s}")))
    }

    /// `macs:<mac>,<mac>...`, sorted and deduplicated; needs at least one.
    pub fn from_macs(macs: &[MacAddress]) -> Result<Self, ValueError> {
        let mut macs = macs.to_vec();
        macs.sort();
        macs.dedup();
        if macs.is_empty() {
            return Err(ValueError::new(
                "MAC list",
                "",
                "no permanent MAC to identify the host",
            ));
        }
        let list: Vec<String> = macs.iter().map(ToString::to_string).collect();
        Ok(Self(format!("macs:{}", list.join(","))))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for HostId {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(u) = s.strip_prefix("uuid:") {
            Self::from_uuid(u)
        } else if let Some(serial) = s.strip_prefix("serial:") {
            Self::from_serial(serial)
        } else if let Some(list) = s.strip_prefix("macs:") {
            let macs = list
                .split(',')
                .map(MacAddress::from_str)
                .collect::<Result<Vec<_>, _>>()?;
            Self::from_macs(&macs)
        } else {
            Err(ValueError::new(
                "host id",
                s,
                "must start with uuid:, serial: or macs:",
            ))
        }
    }
}

impl fmt::Display for HostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
string_serde!(HostId);

/// What a host becomes in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Bootstrap,
    ControlPlane,
    Worker,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Bootstrap, Role::ControlPlane, Role::Worker];

    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Bootstrap => "bootstrap",
            Role::ControlPlane => "control-plane",
            Role::Worker => "worker",
        }
    }
}

impl FromStr for Role {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bootstrap" => Ok(Role::Bootstrap),
            "control-plane" | "master" => Ok(Role::ControlPlane),
            "worker" => Ok(Role::Worker),
            _ => Err(ValueError::new(
                "role",
                s,
                "must be bootstrap, control-plane or worker",
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
string_serde!(Role);

/// How far a host's installation has gone.
///
/// ```text
/// discovered ⇄ role-assigned → boot-configured → installing → installed
///                    ↑                 │              │            │
///                    └──── failed ←────┴──────────────┘            ↓
///                  (a rolled-back install: installed, retiring,  retiring
///                   decommissioned -> failed)
///                                                                  ↓
///  discovered ←──────────────────────────────────────────── decommissioned
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InstallPhase {
    /// Seen by a scan; no role yet.
    Discovered,
    /// The operator gave it a role.
    RoleAssigned,
    /// DHCP, DNS, iPXE and Ignition for it are in place.
    BootConfigured,
    /// Rebooted into the installer.
    Installing,
    /// Joined the cluster.
    Installed,
    /// Taken out of the cluster (the bootstrap) and rebooted into
    /// discovery; its install disk not wiped yet.
    Retiring,
    /// A step failed; the error is in the event log.
    Failed,
    /// Removed from the cluster and wiped (the bootstrap node), reusable.
    Decommissioned,
}

impl InstallPhase {
    pub const ALL: [InstallPhase; 8] = [
        InstallPhase::Discovered,
        InstallPhase::RoleAssigned,
        InstallPhase::BootConfigured,
        InstallPhase::Installing,
        InstallPhase::Installed,
        InstallPhase::Retiring,
        InstallPhase::Failed,
        InstallPhase::Decommissioned,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            InstallPhase::Discovered => "discovered",
            InstallPhase::RoleAssigned => "role-assigned",
            InstallPhase::BootConfigured => "boot-configured",
            InstallPhase::Installing => "installing",
            InstallPhase::Installed => "installed",
            InstallPhase::Retiring => "retiring",
            InstallPhase::Failed => "failed",
            InstallPhase::Decommissioned => "decommissioned",
        }
    }

    /// Whether `self -> next` is a legal step.
    pub fn can_become(self, next: InstallPhase) -> bool {
        use InstallPhase::*;
        matches!(
            (self, next),
            (Discovered, RoleAssigned)
                | (RoleAssigned, Discovered)
                | (RoleAssigned, BootConfigured)
                | (BootConfigured, Installing)
                | (BootConfigured, RoleAssigned)
                | (Installing, Installed)
                | (BootConfigured | Installing, Failed)
                // A rolled-back installation: the host starts over.
                | (Installed | Retiring | Decommissioned, Failed)
                | (Failed, RoleAssigned)
                | (Installed, Decommissioned)
                | (Installed, Retiring)
                | (Retiring, Decommissioned)
                | (Decommissioned, Discovered)
        )
    }

    /// `next` if the step is legal, else an error naming both phases.
    pub fn transition(self, next: InstallPhase) -> Result<InstallPhase, PhaseError> {
        if self.can_become(next) {
            Ok(next)
        } else {
            Err(PhaseError {
                from: self,
                to: next,
            })
        }
    }
}

/// An illegal install-phase step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a host cannot go from {from} to {to}")]
pub struct PhaseError {
    pub from: InstallPhase,
    pub to: InstallPhase,
}

impl FromStr for InstallPhase {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        InstallPhase::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| ValueError::new("install phase", s, "unknown phase"))
    }
}

impl fmt::Display for InstallPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
string_serde!(InstallPhase);

/// One kernel command-line argument (`key` or `key=value`), safe to place
/// in an iPXE `kernel` line or a `.ks`/GRUB argument list: no white space,
/// no quotes, no `$`, `;`, `#`, backslash or control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelArg(String);

impl KernelArg {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the first `=`.
    pub fn key(&self) -> &str {
        self.0.split('=').next().unwrap_or(&self.0)
    }
}

impl FromStr for KernelArg {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ValueError::new("kernel argument", s, reason);
        if s.is_empty() || s.len() > 1024 {
            return Err(err("must be 1 to 1024 characters"));
        }
        if !s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'.' | b'_'
                        | b'-'
                        | b':'
                        | b','
                        | b'='
                        | b'/'
                        | b'+'
                        | b'@'
                        | b'%'
                        | b'['
                        | b']'
                )
        }) {
            return Err(err(
                "only letters, digits and . _ - : , = / + @ % [ ] are allowed",
            ));
        }
        if s.starts_with('=') {
            return Err(err("must start with a key"));
        }
        Ok(Self(s.to_string()))
    }
}

impl fmt::Display for KernelArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
string_serde!(KernelArg);

/// A block device path an installer may write to: `/dev/<name>` or a udev
/// link `/dev/disk/by-id/<link>`, `/dev/disk/by-path/<link>`. The name or
/// link is one component of `[A-Za-z0-9._:+@-]` (no `/`), not `.` or `..`,
/// starting with a letter or a digit (no `-` option look-alike, no `...`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DevicePath(String);

impl DevicePath {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for DevicePath {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ValueError::new("device path", s, reason);
        let name = ["/dev/disk/by-id/", "/dev/disk/by-path/", "/dev/"]
            .iter()
            .find_map(|p| s.strip_prefix(p))
            .ok_or_else(|| {
                err("must be /dev/NAME, /dev/disk/by-id/LINK or /dev/disk/by-path/LINK")
            })?;
        if name.is_empty() || name.len() > 200 || name == "." || name == ".." {
            return Err(err("device name must be 1 to 200 characters"));
        }
        if !name.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':' | b'+' | b'@')
        }) {
            return Err(err(
                "device names may hold only letters, digits and . _ - : + @",
            ));
        }
        if !starts_safely(name) {
            return Err(err(
                "device names must start with a letter or a digit (not '-' or '.')",
            ));
        }
        Ok(Self(s.to_string()))
    }
}

impl fmt::Display for DevicePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
string_serde!(DevicePath);

/// An `http://` or `https://` URL with a plain host (name, IPv4 or
/// bracketed IPv6), optional port and a path of safe characters: what boot
/// files may point at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HttpUrl(String);

impl HttpUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This URL with `segment` appended as a path component (validated).
    pub fn join(&self, segment: &str) -> Result<HttpUrl, ValueError> {
        let base = self.0.trim_end_matches('/');
        format!("{base}/{}", segment.trim_start_matches('/')).parse()
    }
}

impl FromStr for HttpUrl {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ValueError::new("URL", s, reason);
        let rest = s
            .strip_prefix("http://")
            .or_else(|| s.strip_prefix("https://"))
            .ok_or_else(|| err("must start with http:// or https://"))?;
        if s.len() > 2048 {
            return Err(err("longer than 2048 characters"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let host = if let Some(v6) = authority.strip_prefix('[') {
            let (addr, after) = v6
                .split_once(']')
                .ok_or_else(|| err("unclosed IPv6 bracket"))?;
            addr.parse::<std::net::Ipv6Addr>()
                .map_err(|_| err("invalid IPv6 address"))?;
            if !(after.is_empty()
                || after
                    .strip_prefix(':')
                    .is_some_and(|p| p.parse::<u16>().is_ok()))
            {
                return Err(err("invalid port"));
            }
            None
        } else {
            let (host, port) = match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            if let Some(p) = port
                && p.parse::<u16>().is_err()
            {
                return Err(err("invalid port"));
            }
            Some(host)
        };
        if let Some(host) = host
            && host.parse::<std::net::Ipv4Addr>().is_err()
        {
            host.parse::<Hostname>().map_err(|_| err("invalid host"))?;
        }
        if !path.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'/' | b'.'
                        | b'_'
                        | b'-'
                        | b'~'
                        | b'%'
                        | b'='
                        | b'&'
                        | b'?'
                        | b'+'
                        | b','
                        | b':'
                        | b'@'
                )
        }) {
            return Err(err(
                "path may hold only letters, digits and / . _ - ~ % = & ? + , : @",
            ));
        }
        if path.split('/').any(|seg| seg == "..") {
            return Err(err("'..' is not allowed in the path"));
        }
        Ok(Self(s.to_string()))
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
string_serde!(HttpUrl);

/// A relative path under a served root (HTTP, TFTP): `/`-separated
/// components of `[A-Za-z0-9._-]`, none `.` or `..`, at most 16 deep. File
/// names Harmony writes are built only from these.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RelativePath(String);

impl RelativePath {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A path built by Harmony itself from characters that are always
    /// valid (constants, hyphenated MACs). Checked in debug builds; callers
    /// have unit tests that parse the same strings.
    pub(crate) fn from_trusted(s: String) -> Self {
        debug_assert!(
            s.parse::<RelativePath>().is_ok(),
            "invalid trusted path {s:?}"
        );
        Self(s)
    }

    pub fn join(&self, component: &str) -> Result<RelativePath, ValueError> {
        format!("{}/{component}", self.0).parse()
    }
}

/// The HTTP root's staging directory (`infra::http_root`): reserved, so no
/// served path (nor a site file's `os_dir`) can point into it.
pub const RESERVED_STAGING: &str = ".harmony-staging";

impl FromStr for RelativePath {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ValueError::new("relative path", s, reason);
        if s.is_empty() || s.len() > 1024 {
            return Err(err("must be 1 to 1024 characters"));
        }
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() > 16 {
            return Err(err("more than 16 components"));
        }
        for p in parts {
            if p == RESERVED_STAGING {
                return Err(err(
                    "'.harmony-staging' is Harmony's staging directory, never a served path",
                ));
            }
            if p.is_empty() || p == "." || p == ".." {
                return Err(err(
                    "empty, '.' and '..' components are not allowed (no leading or double '/')",
                ));
            }
            if !p
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            {
                return Err(err(
                    "components may hold only letters, digits, '.', '_' and '-'",
                ));
            }
        }
        Ok(Self(s.to_string()))
    }
}

impl fmt::Display for RelativePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
string_serde!(RelativePath);

#[cfg(test)]
mod tests {
    use super::*;

    /// Strings an attacker on the provisioning network would try.
    const INJECTIONS: &[&str] = &[
        "\"; reboot",
        "\n#!ipxe",
        "${root}",
        "a\0b",
        "eth0 ; rm -rf /",
        "../../etc/passwd",
        "eth0\nchain http://evil/",
    ];

    #[test]
    fn macs() {
        let m: MacAddress = "52:54:00:AA:bb:01".parse().unwrap();
        assert_eq!(m.to_string(), "52:54:00:aa:bb:01");
        assert_eq!(m.hyphenated(), "52-54-00-aa-bb-01");
        assert_eq!("52-54-00-aa-bb-01".parse::<MacAddress>().unwrap(), m);
        for bad in [
            "",
            "52:54:00:aa:bb",
            "52:54:00:aa:bb:01:02",
            "52:54-00:aa:bb:01",
            "zz:54:00:aa:bb:01",
            "00:00:00:00:00:00",
            "01:00:5e:00:00:01",
        ] {
            assert!(bad.parse::<MacAddress>().is_err(), "{bad}");
        }
        let e = "nope".parse::<MacAddress>().unwrap_err();
        assert_eq!(e.field, "MAC address");
        assert!(e.to_string().contains("\"nope\""));
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, "\"52:54:00:aa:bb:01\"");
        assert!(serde_json::from_str::<MacAddress>("\"; reboot\"").is_err());
    }

    #[test]
    fn dns_names() {
        let exact: DnsName = "API.ocp.example.com.".parse().unwrap();
        assert_eq!(exact.to_string(), "api.ocp.example.com");
        assert!(!exact.is_wildcard());
        let wild: DnsName = "*.apps.ocp.example.com".parse().unwrap();
        assert!(wild.is_wildcard());
        assert_eq!(wild.base().as_str(), "apps.ocp.example.com");
        assert_eq!(wild.to_string(), "*.apps.ocp.example.com");
        assert_eq!(wild.to_string().parse::<DnsName>().unwrap(), wild);
        for bad in [
            "",
            "*",
            "*.",
            "**.apps.example.com",
            "*.*.example.com",
            "a.*.example.com",
            "*a.example.com",
            "a*.example.com",
            "*.apps.example.com.*",
            "*.-apps.example.com",
            "* .apps.example.com",
            "*.apps example.com",
            "*.apps.example.com/1.2.3.4",
        ]
        .iter()
        .chain(INJECTIONS)
        {
            let e = bad.parse::<DnsName>().unwrap_err();
            assert_eq!(e.field, "DNS name", "{bad:?}");
        }
        let json = serde_json::to_string(&wild).unwrap();
        assert_eq!(json, "\"*.apps.ocp.example.com\"");
        assert!(serde_json::from_str::<DnsName>("\"*.a\\nb\"").is_err());
    }

    #[test]
    fn interface_names() {
        for good in ["eno1", "enp59s0f0", "bond0.100", "ens3f0np0", "a_b-c"] {
            assert_eq!(good.parse::<InterfaceName>().unwrap().as_str(), good);
        }
        assert!("".parse::<InterfaceName>().is_err());
        assert!(
            "abcdefghijklmnop".parse::<InterfaceName>().is_err(),
            "16 chars"
        );
        assert!("..".parse::<InterfaceName>().is_err());
        for bad in INJECTIONS {
            assert!(bad.parse::<InterfaceName>().is_err(), "{bad:?}");
        }
    }

    /// Names the old charset check let through, which break a boot line
    /// (`ip=-rf:dhcp`) or a file name: the kernel's rules (no `/`, `:`,
    /// white space, at most 15 bytes) and ours (no leading `-` or `.`).
    #[test]
    fn interface_names_follow_the_kernel_rules_and_ours() {
        assert_eq!(
            "abcdefghijklmno".parse::<InterfaceName>().unwrap().as_str(),
            "abcdefghijklmno",
            "15 bytes is IFNAMSIZ - 1"
        );
        for good in ["0eth", "e", "bond0", "vlan.10", "x-", "y."] {
            assert!(good.parse::<InterfaceName>().is_ok(), "{good:?}");
        }
        for bad in [
            "-rf", "-", "--help", "...", ".", ".eth0", "_x", "eth0:1", "a/b", "a b", "eth0\t", "é",
        ] {
            let e = bad.parse::<InterfaceName>().unwrap_err();
            assert_eq!(e.field, "interface name", "{bad:?}");
        }
        let e = "-rf".parse::<InterfaceName>().unwrap_err();
        assert!(
            e.reason.contains("must start with a letter or a digit"),
            "{e}"
        );
        assert!(serde_json::from_str::<InterfaceName>("\"-rf\"").is_err());
    }

    #[test]
    fn hostnames() {
        assert_eq!(
            "Master-0.OCP.example.com."
                .parse::<Hostname>()
                .unwrap()
                .as_str(),
            "master-0.ocp.example.com"
        );
        assert_eq!(
            "master-0.ocp".parse::<Hostname>().unwrap().short(),
            "master-0"
        );
        assert!("-a".parse::<Hostname>().is_err());
        assert!("a-".parse::<Hostname>().is_err());
        assert!("a..b".parse::<Hostname>().is_err());
        assert!("x".repeat(64).parse::<Hostname>().is_err());
        assert!(["a"; 128].join(".").parse::<Hostname>().is_err(), "> 253");
        assert!("under_score".parse::<Hostname>().is_err());
        for bad in INJECTIONS {
            assert!(bad.parse::<Hostname>().is_err(), "{bad:?}");
        }
        let long = "y".repeat(300);
        let e = long.parse::<Hostname>().unwrap_err();
        assert_eq!(
            e.value.len(),
            80,
            "errors carry a bounded copy of the input"
        );
    }

    #[test]
    fn host_ids() {
        let u = HostId::from_uuid("4C4C4544-0042-3010-8052-B4C04F4A4E32").unwrap();
        assert_eq!(u.as_str(), "uuid:4c4c4544-0042-3010-8052-b4c04f4a4e32");
        assert!(HostId::from_uuid("00000000-0000-0000-0000-000000000000").is_err());
        assert!(HostId::from_uuid("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF").is_err());
        assert!(HostId::from_serial("To Be Filled By O.E.M.").is_err());
        assert!(HostId::from_serial("0123456789").is_err());
        assert!(HostId::from_serial("ab; reboot").is_err());
        assert_eq!(
            HostId::from_serial("7XYZ123").unwrap().as_str(),
            "serial:7XYZ123"
        );
        let a: MacAddress = "52:54:00:00:00:02".parse().unwrap();
        let b: MacAddress = "52:54:00:00:00:01".parse().unwrap();
        let id = HostId::from_macs(&[a, b, a]).unwrap();
        assert_eq!(id.as_str(), "macs:52:54:00:00:00:01,52:54:00:00:00:02");
        assert_eq!(id.as_str().parse::<HostId>().unwrap(), id);
        assert!(HostId::from_macs(&[]).is_err());
        assert!("uuid:zzz".parse::<HostId>().is_err());
        assert!("other:1".parse::<HostId>().is_err());
    }

    #[test]
    fn kernel_args() {
        for good in [
            "ip=bond0:dhcp",
            "bond=bond0:eno1,eno2:mode=802.3ad,miimon=100",
            "ignition.firstboot",
            "coreos.inst.install_dev=/dev/disk/by-id/wwn-0x5000c500a1b2c3d4",
            "ip=[fd00::2]::[fd00::1]:64:master-0:bond0:none",
        ] {
            assert_eq!(good.parse::<KernelArg>().unwrap().as_str(), good);
        }
        assert_eq!("ip=bond0:dhcp".parse::<KernelArg>().unwrap().key(), "ip");
        // A path is a fine argument value; everything that could break out
        // of the argument list or into iPXE/shell syntax is not.
        let breaking = INJECTIONS.iter().filter(|s| !s.starts_with("../"));
        for bad in breaking.chain(&["a b", "", "=x", "x\"y", "\\", "a'b"]) {
            assert!(bad.parse::<KernelArg>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn device_paths() {
        for good in [
            "/dev/sda",
            "/dev/nvme0n1",
            "/dev/disk/by-id/wwn-0x5002538f4231e1a2",
            "/dev/disk/by-path/pci-0000:00:17.0-ata-1",
            "/dev/disk/by-id/nvme-eui.0025388b71b2c3d4",
        ] {
            assert_eq!(good.parse::<DevicePath>().unwrap().as_str(), good);
        }
        for bad in INJECTIONS.iter().chain(&[
            "/dev/",
            "/dev/..",
            "/etc/passwd",
            "/dev/disk/by-id/../../sda",
            "/dev/sd a",
            "dev/sda",
            "/dev/...",
            "/dev/-rf",
            "/dev/.sda",
            "/dev/disk/by-id/...",
            "/dev/disk/by-id/-x",
            "/dev/disk/by-path/.",
            "/dev/disk/by-path/..",
            "/dev/disk/by-path/.pci-0000:00:17.0-ata-1",
            "/dev/disk/by-id/a/b",
        ]) {
            assert!(bad.parse::<DevicePath>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn http_urls() {
        for good in [
            "http://192.168.77.1:8080/os/scos-4.19/kernel",
            "https://mirror.example.com/centos/9-stream/BaseOS/x86_64/os/",
            "http://[fd00::1]:8080/ipxe/52-54-00-aa-bb-01.ipxe",
            "http://pxe/inventory.ks",
        ] {
            assert_eq!(good.parse::<HttpUrl>().unwrap().as_str(), good);
        }
        for bad in INJECTIONS.iter().chain(&[
            "ftp://x/",
            "http://x/a b",
            "http://x/${mac}",
            "http://x:99999/",
            "http://-x/",
            "http://x/../etc",
            "http://x/a\"b",
            "http://[zz]/",
        ]) {
            assert!(bad.parse::<HttpUrl>().is_err(), "{bad:?}");
        }
        let base: HttpUrl = "http://192.168.77.1:8080/".parse().unwrap();
        assert_eq!(
            base.join("ipxe/a.ipxe").unwrap().as_str(),
            "http://192.168.77.1:8080/ipxe/a.ipxe"
        );
        assert!(base.join("../x").is_err());
    }

    #[test]
    fn relative_paths() {
        for good in [
            "os/scos-4.19/kernel",
            "ipxe/52-54-00-aa-bb-01.ipxe",
            "inventory.ks",
            "os/centos-stream-9/.harmony-tree.json",
        ] {
            assert_eq!(good.parse::<RelativePath>().unwrap().as_str(), good);
        }
        for bad in INJECTIONS.iter().chain(&[
            "/etc/passwd",
            "a//b",
            "a/./b",
            "a/../b",
            ".harmony-staging/0123",
            "os/.harmony-staging",
            "..",
            "a/",
            "a b",
            "",
        ]) {
            assert!(bad.parse::<RelativePath>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn roles_round_trip() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert_eq!("master".parse::<Role>().unwrap(), Role::ControlPlane);
        assert!("admin".parse::<Role>().is_err());
    }

    #[test]
    fn phases_only_legal_transitions() {
        use InstallPhase::*;
        let legal = [
            (Discovered, RoleAssigned),
            (RoleAssigned, Discovered),
            (RoleAssigned, BootConfigured),
            (BootConfigured, RoleAssigned),
            (BootConfigured, Installing),
            (BootConfigured, Failed),
            (Installing, Installed),
            (Installing, Failed),
            (Installed, Failed),
            (Retiring, Failed),
            (Decommissioned, Failed),
            (Failed, RoleAssigned),
            (Installed, Decommissioned),
            (Installed, Retiring),
            (Retiring, Decommissioned),
            (Decommissioned, Discovered),
        ];
        for from in InstallPhase::ALL {
            for to in InstallPhase::ALL {
                assert_eq!(
                    from.can_become(to),
                    legal.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
            assert_eq!(from.as_str().parse::<InstallPhase>().unwrap(), from);
        }
        let e = Discovered.transition(Installed).unwrap_err();
        assert_eq!(
            e.to_string(),
            "a host cannot go from discovered to installed"
        );
    }
}

/// A SHA-256 digest: 64 hex characters, stored lower-case (upper case is
/// accepted on input). Pins every file Harmony downloads or serves.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sha256Digest(String);

impl Sha256Digest {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Validates `s` as the value of `field` (named in the error).
    pub fn parse_field(field: &'static str, s: &str) -> Result<Self, ValueError> {
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ValueError::new(
                field,
                s,
                "expected 64 hex characters (SHA-256)",
            ));
        }
        Ok(Self(s.to_ascii_lowercase()))
    }

    /// The digest of 32 raw bytes (a finished hash).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(hex::encode(bytes))
    }
}

impl FromStr for Sha256Digest {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_field("sha256", s)
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

string_serde!(Sha256Digest);
