//! Values only the site file has: a VLAN id, a switch and a switch port
//! name, the OKD version, a file path, an environment variable name and the
//! credential sources built from them. Each is validated at construction
//! (and when deserialized), like [`crate::domain::values`].
//!
//! `VlanId` and `PortName` are the site file's half of a switch port; the
//! switch capability has its own typed VLAN, port and LAG ids, and the site
//! file's values map onto them one to one where the two meet.
//!
//! Secrets never live in the site file: credentials are a file path or
//! environment variable names. A value that looks like a secret written
//! inline is refused, and its error never shows the value.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::model::SwitchKind;
use crate::domain::{Hostname, HttpUrl, ValueError};

/// What an error says instead of a value that may be a secret.
pub const HIDDEN: &str = "<not shown: it may be a secret>";

/// Deserializes `T` from a string through its validating `FromStr`, inside
/// the YAML deserializer's visitor, so an error carries the path of the
/// field itself (`hosts.pinned[2].mac`) and the value's line and column.
pub(crate) fn parsed<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    struct V<T>(std::marker::PhantomData<T>);
    impl<T: FromStr> Visitor<'_> for V<T>
    where
        T::Err: fmt::Display,
    {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            v.parse().map_err(E::custom)
        }
    }
    d.deserialize_str(V(std::marker::PhantomData))
}

/// [`parsed`] for an optional field (absent or `null` is `None`).
pub(crate) fn parsed_opt<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    struct V<T>(std::marker::PhantomData<T>);
    impl<'de, T: FromStr> Visitor<'de> for V<T>
    where
        T::Err: fmt::Display,
    {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or nothing")
        }
        fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Option<T>, D2::Error> {
            parsed(d).map(Some)
        }
    }
    d.deserialize_option(V(std::marker::PhantomData))
}

/// `Deserialize` through [`parsed`].
macro_rules! parsed_serde {
    ($t:ty) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                parsed(d)
            }
        }
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}

/// An 802.1Q VLAN id, 1 to 4094 (0 and 4095 are reserved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct VlanId(u16);

impl VlanId {
    pub fn new(id: u16) -> Result<Self, ValueError> {
        if (1..=4094).contains(&id) {
            Ok(Self(id))
        } else {
            Err(ValueError::new(
                "VLAN id",
                &id.to_string(),
                "must be 1 to 4094 (0 and 4095 are reserved)",
            ))
        }
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl<'de> Deserialize<'de> for VlanId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = VlanId;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a VLAN id, 1 to 4094")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<VlanId, E> {
                u16::try_from(v)
                    .map_err(|_| ValueError::new("VLAN id", &v.to_string(), "must be 1 to 4094"))
                    .and_then(VlanId::new)
                    .map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<VlanId, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
        }
        d.deserialize_u16(V)
    }
}

impl fmt::Display for VlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A name the site file gives something (a switch): 1 to 63 of
/// `[a-z0-9-]`, starting with a letter or digit, not ending with `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SwitchName(String);

impl SwitchName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SwitchName {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(ValueError::new(
                "switch name",
                s,
                "must be 1 to 63 of lower-case letters, digits and '-', not starting or ending with '-'",
            ))
        }
    }
}

impl fmt::Display for SwitchName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
parsed_serde!(SwitchName);

/// A switch port as the switch names it: `1/1/3` (AOS-CX),
/// `Ethernet1/12` (NX-OS), `GigabitEthernet1/0/3` (IOS), `p1` (an OVS
/// port). 1 to 64 of `[A-Za-z0-9/._:-]`, starting with a letter or digit:
/// safe on a switch CLI line and in a URL path segment once encoded.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortName(String);

impl PortName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PortName {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b':' | b'-')
            })
            && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(ValueError::new(
                "switch port",
                s,
                "must be 1 to 64 of letters, digits and / . _ : -, starting with a letter or digit",
            ))
        }
    }
}

impl fmt::Display for PortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
parsed_serde!(PortName);

/// The OKD release Harmony installs, `MAJOR.MINOR` (written quoted in YAML:
/// an unquoted `4.10` is the number 4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OkdVersion {
    pub major: u8,
    pub minor: u8,
}

impl OkdVersion {
    /// The releases whose boot assets and templates Harmony ships.
    pub const SUPPORTED: [OkdVersion; 1] = [OkdVersion {
        major: 4,
        minor: 19,
    }];
}

impl FromStr for OkdVersion {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ValueError::new("OKD version", s, reason);
        let (major, minor) = s
            .split_once('.')
            .ok_or_else(|| err("expected MAJOR.MINOR, e.g. \"4.19\""))?;
        let num = |p: &str| {
            if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else {
                p.parse::<u8>().ok()
            }
        };
        let (Some(major), Some(minor)) = (num(major), num(minor)) else {
            return Err(err("expected MAJOR.MINOR, e.g. \"4.19\""));
        };
        let v = OkdVersion { major, minor };
        if !Self::SUPPORTED.contains(&v) {
            return Err(err(
                "Harmony installs OKD 4.19 (its boot assets and templates are for it)",
            ));
        }
        Ok(v)
    }
}

impl fmt::Display for OkdVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl Serialize for OkdVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for OkdVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = OkdVersion;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a quoted version such as \"4.19\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OkdVersion, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<OkdVersion, E> {
                Err(E::custom(format!(
                    "invalid OKD version {v}: write it quoted, e.g. \"4.19\" (unquoted, YAML reads 4.10 as the number 4.1)"
                )))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<OkdVersion, E> {
                Err(E::custom(format!(
                    "invalid OKD version {v}: expected MAJOR.MINOR, quoted, e.g. \"4.19\""
                )))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<OkdVersion, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
        }
        d.deserialize_any(V)
    }
}

/// An absolute path to a file Harmony reads (a key, a CA, a pull secret):
/// 1 to 4096 bytes, starting with `/`, no control characters. Something
/// that is not a path (a pasted key or password) is refused without being
/// shown.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FilePath(PathBuf);

impl FilePath {
    pub fn as_path(&self) -> &Path {
        &self.0
    }
}

impl FromStr for FilePath {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with('/')
            && s.len() <= 4096
            && !s.chars().any(char::is_control)
            && !s.contains("/../")
            && !s.ends_with("/..")
        {
            Ok(Self(PathBuf::from(s)))
        } else {
            Err(ValueError::new(
                "file path",
                HIDDEN,
                "must be an absolute path without '..' to the file that holds the value; secrets are never written in the site file",
            ))
        }
    }
}

impl fmt::Display for FilePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.display())
    }
}

parsed_serde!(FilePath);

/// The name of an environment variable that holds a secret:
/// `[A-Za-z_][A-Za-z0-9_]*`, at most 64 characters. Anything else (a pasted
/// secret) is refused without being shown.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EnvVarName(String);

impl EnvVarName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for EnvVarName {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !s.starts_with(|c: char| c.is_ascii_digit());
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(ValueError::new(
                "environment variable name",
                HIDDEN,
                "must be 1 to 64 of letters, digits and '_', not starting with a digit: name the variable that holds the secret, never the secret itself",
            ))
        }
    }
}

impl fmt::Display for EnvVarName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
parsed_serde!(EnvVarName);

/// A field that would hold a secret inline (`password:`, `secret:`...):
/// refused whatever its value, which the error does not show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InlineSecret;

impl<'de> Deserialize<'de> for InlineSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl V {
            fn refuse<E: de::Error>(&self) -> E {
                E::custom(format!(
                    "inline secret refused (value {HIDDEN}): secrets are never written in the site file; give `file:` (a file holding it) or `env:` (the variables holding it)"
                ))
            }
        }
        impl<'de> Visitor<'de> for V {
            type Value = InlineSecret;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("nothing: secrets are never inline")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<InlineSecret, E> {
                Err(self.refuse())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<InlineSecret, E> {
                Err(self.refuse())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<InlineSecret, E> {
                Err(self.refuse())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<InlineSecret, E> {
                Err(self.refuse())
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<InlineSecret, E> {
                Err(self.refuse())
            }
            fn visit_unit<E: de::Error>(self) -> Result<InlineSecret, E> {
                Err(self.refuse())
            }
            fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<InlineSecret, A::Error> {
                Err(self.refuse())
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<InlineSecret, A::Error> {
                Err(self.refuse())
            }
        }
        d.deserialize_any(V)
    }
}

/// Deserializes `T` from a mapping; anything else (a string, a number) is
/// taken for an inline secret and refused without being shown.
fn secret_source_map<'de, D, T>(d: D, what: &'static str) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<T>(&'static str, std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "{} as a mapping with `file:` or `env:`", self.0)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(de::value::MapAccessDeserializer::new(map))
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<T, E> {
            Err(self.inline())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<T, E> {
            Err(self.inline())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<T, E> {
            Err(self.inline())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<T, E> {
            Err(self.inline())
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<T, E> {
            Err(self.inline())
        }
    }
    impl<T> V<T> {
        fn inline<E: de::Error>(&self) -> E {
            E::custom(format!(
                "{} given inline (value {HIDDEN}): secrets are never written in the site file; give `file:` (a file holding it) or `env:` (the variables holding it)",
                self.0
            ))
        }
    }
    d.deserialize_any(V::<T>(what, std::marker::PhantomData))
}

/// Where a switch's login comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchCredentials {
    /// A file with `username=...` and `password=...` lines (mode 0600).
    File(FilePath),
    /// Two environment variables.
    Env {
        username: EnvVarName,
        password: EnvVarName,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSwitchCredentials {
    file: Option<FilePath>,
    env: Option<RawUserEnv>,
    #[serde(default, rename = "password")]
    _password: Option<InlineSecret>,
    #[serde(default, rename = "secret")]
    _secret: Option<InlineSecret>,
    #[serde(default, rename = "token")]
    _token: Option<InlineSecret>,
    #[serde(default, rename = "username")]
    _username: Option<InlineSecret>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUserEnv {
    username: EnvVarName,
    password: EnvVarName,
}

impl<'de> Deserialize<'de> for SwitchCredentials {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: RawSwitchCredentials = secret_source_map(d, "switch credentials")?;
        match (raw.file, raw.env) {
            (Some(f), None) => Ok(SwitchCredentials::File(f)),
            (None, Some(e)) => Ok(SwitchCredentials::Env {
                username: e.username,
                password: e.password,
            }),
            _ => Err(de::Error::custom(
                "give exactly one of `file:` (a file with username= and password= lines) or `env:` (`username:` and `password:` variable names)",
            )),
        }
    }
}

impl fmt::Display for SwitchCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwitchCredentials::File(p) => write!(f, "file {p}"),
            SwitchCredentials::Env { username, password } => {
                write!(f, "env ${username} / ${password}")
            }
        }
    }
}

/// Where an OPNsense API key and secret come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiKeySource {
    /// The `apikey.txt` OPNsense hands out: `key=...` and `secret=...` lines.
    KeyFile(FilePath),
    /// Two environment variables.
    Env { key: EnvVarName, secret: EnvVarName },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApiKey {
    key_file: Option<FilePath>,
    env: Option<RawKeyEnv>,
    #[serde(default, rename = "key")]
    _key: Option<InlineSecret>,
    #[serde(default, rename = "secret")]
    _secret: Option<InlineSecret>,
    #[serde(default, rename = "api_key")]
    _api_key: Option<InlineSecret>,
    #[serde(default, rename = "api_secret")]
    _api_secret: Option<InlineSecret>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeyEnv {
    key: EnvVarName,
    secret: EnvVarName,
}

impl<'de> Deserialize<'de> for ApiKeySource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: RawApiKey = secret_source_map(d, "OPNsense API key")?;
        match (raw.key_file, raw.env) {
            (Some(f), None) => Ok(ApiKeySource::KeyFile(f)),
            (None, Some(e)) => Ok(ApiKeySource::Env {
                key: e.key,
                secret: e.secret,
            }),
            _ => Err(de::Error::custom(
                "give exactly one of `key_file:` (OPNsense's apikey.txt) or `env:` (`key:` and `secret:` variable names)",
            )),
        }
    }
}

impl fmt::Display for ApiKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiKeySource::KeyFile(p) => write!(f, "key file {p}"),
            ApiKeySource::Env { key, secret } => write!(f, "env ${key} / ${secret}"),
        }
    }
}

/// An `https://` URL of an API (OPNsense, AOS-CX). A URL with a user or
/// password in it (`https://user:pass@host/`) is refused without being
/// shown: credentials come from `file:` or `env:`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApiUrl(HttpUrl);

impl ApiUrl {
    pub fn as_url(&self) -> &HttpUrl {
        &self.0
    }
}

impl FromStr for ApiUrl {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let authority = s
            .split_once("://")
            .map_or(s, |(_, rest)| rest.split('/').next().unwrap_or(rest));
        if authority.contains('@') {
            return Err(ValueError::new(
                "URL",
                HIDDEN,
                "credentials in a URL are refused: give them through `file:` or `env:`",
            ));
        }
        if !s.starts_with("https://") {
            return Err(ValueError::new(
                "URL",
                s,
                "must start with https:// (API keys and passwords never travel in clear)",
            ));
        }
        Ok(Self(s.parse()?))
    }
}

impl fmt::Display for ApiUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
parsed_serde!(ApiUrl);

/// Where Harmony reaches a switch, by kind: validated from `address`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchAddress {
    /// Open vSwitch through the local OVSDB socket (no `address`).
    OvsLocal,
    /// Open vSwitch through `unix:/path/to/db.sock`.
    OvsUnix(FilePath),
    /// Open vSwitch through `tcp:IP:PORT`.
    OvsTcp(SocketAddr),
    /// A switch CLI over SSH: `host[:port]` (port 22 when omitted).
    Ssh { host: SshHost, port: u16 },
    /// A REST API (AOS-CX, OPNsense).
    Https(ApiUrl),
}

/// The host part of an SSH address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshHost {
    Ip(IpAddr),
    Name(Hostname),
}

impl fmt::Display for SshHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SshHost::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            SshHost::Ip(ip) => ip.fmt(f),
            SshHost::Name(n) => n.fmt(f),
        }
    }
}

impl SwitchAddress {
    /// `address` read the way a switch of `kind` is reached; the error is
    /// the reason (the caller names the field and, unless it may hold a
    /// credential, the value).
    pub fn parse(kind: SwitchKind, address: Option<&str>) -> Result<Self, ValueError> {
        if let Some(a) = address
            && a.contains('@')
        {
            return Err(ValueError::new(
                "switch address",
                HIDDEN,
                "credentials in an address are refused: give them through `credentials:` (`file:` or `env:`)",
            ));
        }
        let err = |a: &str, reason| ValueError::new("switch address", a, reason);
        match (kind, address) {
            (SwitchKind::Ovs, None) => Ok(SwitchAddress::OvsLocal),
            (SwitchKind::Ovs, Some(a)) => {
                if let Some(path) = a.strip_prefix("unix:") {
                    let p = path
                        .parse()
                        .map_err(|_| err(a, "unix: needs an absolute socket path"))?;
                    Ok(SwitchAddress::OvsUnix(p))
                } else if let Some(sock) = a.strip_prefix("tcp:") {
                    let s = sock
                        .parse()
                        .map_err(|_| err(a, "tcp: needs IP:PORT (e.g. tcp:127.0.0.1:6640)"))?;
                    Ok(SwitchAddress::OvsTcp(s))
                } else {
                    Err(err(
                        a,
                        "an OVSDB remote is unix:/path/to/db.sock or tcp:IP:PORT (omit it for the local socket)",
                    ))
                }
            }
            (SwitchKind::CiscoIos | SwitchKind::CiscoNxos, Some(a)) => {
                if let Ok(sock) = a.parse::<SocketAddr>() {
                    return Ok(SwitchAddress::Ssh {
                        host: SshHost::Ip(sock.ip()),
                        port: sock.port(),
                    });
                }
                let (host, port) = match a.rsplit_once(':') {
                    Some((h, p)) => (
                        h,
                        p.parse::<u16>()
                            .ok()
                            .filter(|p| *p != 0)
                            .ok_or_else(|| err(a, "invalid port"))?,
                    ),
                    None => (a, 22),
                };
                let host = match host.parse::<IpAddr>() {
                    Ok(ip) => SshHost::Ip(ip),
                    Err(_) => SshHost::Name(host.parse().map_err(|_| {
                        err(
                            a,
                            "expected host[:port] (SSH), e.g. 10.0.0.5 or leaf-1.example.com:22",
                        )
                    })?),
                };
                Ok(SwitchAddress::Ssh { host, port })
            }
            (SwitchKind::ArubaAoscx | SwitchKind::Opnsense, Some(a)) => {
                Ok(SwitchAddress::Https(a.parse()?))
            }
            (_, None) => Err(ValueError::new(
                "switch address",
                "",
                "required for this kind of switch",
            )),
        }
    }
}

impl fmt::Display for SwitchAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwitchAddress::OvsLocal => f.write_str("local OVSDB socket"),
            SwitchAddress::OvsUnix(p) => write!(f, "unix:{p}"),
            SwitchAddress::OvsTcp(s) => write!(f, "tcp:{s}"),
            SwitchAddress::Ssh { host, port } => write!(f, "ssh {host}:{port}"),
            SwitchAddress::Https(u) => u.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlans() {
        assert!(VlanId::new(0).is_err());
        assert!(VlanId::new(4095).is_err());
        assert_eq!(VlanId::new(4094).unwrap().get(), 4094);
        assert_eq!(VlanId::new(1).unwrap().to_string(), "1");
    }

    #[test]
    fn names() {
        for good in [
            "1/1/3",
            "Ethernet1/12",
            "GigabitEthernet1/0/3",
            "p1",
            "eth0.100",
        ] {
            assert!(good.parse::<PortName>().is_ok(), "{good}");
        }
        for bad in ["", "-x", "a b", "a;b", "x\n", &"p".repeat(65)] {
            assert!(bad.parse::<PortName>().is_err(), "{bad:?}");
        }
        assert!("leaf-1".parse::<SwitchName>().is_ok());
        for bad in ["Leaf", "-a", "a-", "a_b", ""] {
            assert!(bad.parse::<SwitchName>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn versions() {
        assert_eq!("4.19".parse::<OkdVersion>().unwrap().to_string(), "4.19");
        for bad in ["4", "4.x", "4.18", "v4.19", "4.19.1", "04.0019"] {
            assert!(bad.parse::<OkdVersion>().is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_are_never_shown() {
        let e = "hunter2hunter2".parse::<FilePath>().unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = "s3cr3t=value".parse::<EnvVarName>().unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        assert!("/etc/harmony/key".parse::<FilePath>().is_ok());
        assert!("/etc/../shadow".parse::<FilePath>().is_err());
        assert!("SW_PASSWORD".parse::<EnvVarName>().is_ok());
        assert!("1X".parse::<EnvVarName>().is_err());
    }
}

/// An SSH host key to pin, as `ssh-keygen -l -E sha256` names it: the key
/// type (`ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`) and the SHA-256
/// fingerprint, e.g. `ssh-ed25519 SHA256:tK/H8tz...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshHostKey(crate::domain::HostKey);

impl SshHostKey {
    pub fn key(&self) -> &crate::domain::HostKey {
        &self.0
    }
}

impl FromStr for SshHostKey {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || {
            ValueError::new(
                "SSH host key",
                s,
                "must be `<type> SHA256:<43 base64 characters>`, e.g. `ssh-ed25519 SHA256:...`",
            )
        };
        let (t, fp) = s.trim().split_once(' ').ok_or_else(err)?;
        Ok(Self(crate::domain::HostKey {
            key_type: t.parse().map_err(|_| err())?,
            fingerprint: fp.trim().parse().map_err(|_| err())?,
        }))
    }
}

impl fmt::Display for SshHostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
