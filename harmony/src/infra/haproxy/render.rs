//! haproxy.cfg from typed services, and the services read back from a
//! config Harmony wrote. Only typed values reach the text: service names
//! ([`LbServiceName`]), host names ([`Hostname`]), addresses, ports and
//! numbers. Each service is also recorded as one `# harmony-service` JSON
//! comment, which [`read_back`] parses into typed values again and checks
//! by rendering them: a config edited by hand is refused, not guessed at.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::{
    Hostname, LbBackend, LbHealthCheck, LbMode, LbServiceName, LoadBalancerService,
};

const HEADER: &str =
    "# Written by Harmony; do not edit: Harmony reads it back and refuses a changed file.\n";
const MARK: &str = "# harmony-service ";

/// Timeouts and limits written into every config.
const GLOBAL_AND_DEFAULTS: &str = "\
global
    log stdout format raw daemon info
    maxconn 4000
    hard-stop-after 30m

defaults
    mode tcp
    log global
    option dontlognull
    timeout connect 5s
    timeout client 10m
    timeout server 10m
    timeout check 2s
";

/// The services by name, as the config holds them.
pub type Services = BTreeMap<LbServiceName, LoadBalancerService>;

/// The config for `services` (sorted by name; backends in the given order).
pub fn render(services: &Services) -> String {
    let mut out = String::from(HEADER);
    for svc in services.values() {
        // Serialising plain strings and numbers cannot fail.
        let json = serde_json::to_string(&Wire::from(svc)).unwrap_or_default();
        let _ = writeln!(out, "{MARK}{json}");
    }
    out.push('\n');
    out.push_str(GLOBAL_AND_DEFAULTS);
    for svc in services.values() {
        let name = svc.name.as_str();
        let mode = match svc.mode {
            LbMode::Tcp => "tcp",
        };
        let _ = write!(
            out,
            "\nfrontend {name}\n    mode {mode}\n    bind {}\n    default_backend {name}\n",
            addr(svc.bind)
        );
        let _ = write!(
            out,
            "\nbackend {name}\n    mode {mode}\n    balance roundrobin\n"
        );
        for b in &svc.backends {
            let _ = write!(
                out,
                "    server {} {}",
                b.hostname,
                addr(SocketAddr::new(b.ip, b.port))
            );
            if let Some(hc) = &svc.health_check {
                let _ = write!(
                    out,
                    " check inter {}ms fall {} rise {}",
                    hc.inter.as_millis(),
                    hc.fall,
                    hc.rise
                );
            }
            out.push('\n');
        }
    }
    out
}

/// `1.2.3.4:80` or `ipv6@::1:80` (HAProxy takes the last colon as the port).
fn addr(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(v4) => v4.to_string(),
        SocketAddr::V6(v6) => format!("ipv6@{}:{}", v6.ip(), v6.port()),
    }
}

/// Why a config could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadBackError {
    #[error("line {line}: {reason}")]
    BadRecord { line: usize, reason: String },
    #[error("service {0} is recorded twice")]
    Duplicate(String),
    #[error(
        "the file differs from what Harmony writes for its recorded services (edited by hand?)"
    )]
    Edited,
}

/// The services recorded in a config [`render`] wrote, validated into
/// typed values; the text must be exactly what they render to.
pub fn read_back(text: &str) -> Result<Services, ReadBackError> {
    let mut services = Services::new();
    for (i, line) in text.lines().enumerate() {
        let Some(json) = line.strip_prefix(MARK) else {
            continue;
        };
        let bad = |reason: String| ReadBackError::BadRecord {
            line: i + 1,
            reason,
        };
        let wire: Wire = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
        let svc = wire.into_service().map_err(bad)?;
        if services.insert(svc.name.clone(), svc.clone()).is_some() {
            return Err(ReadBackError::Duplicate(svc.name.to_string()));
        }
    }
    if render(&services) != text {
        return Err(ReadBackError::Edited);
    }
    Ok(services)
}

/// The JSON record of one service.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    name: String,
    bind: SocketAddr,
    mode: String,
    backends: Vec<WireBackend>,
    check: Option<WireCheck>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireBackend {
    hostname: String,
    ip: IpAddr,
    port: u16,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireCheck {
    inter_ms: u64,
    fall: u8,
    rise: u8,
}

impl From<&LoadBalancerService> for Wire {
    fn from(s: &LoadBalancerService) -> Self {
        Wire {
            name: s.name.to_string(),
            bind: s.bind,
            mode: match s.mode {
                LbMode::Tcp => "tcp".into(),
            },
            backends: s
                .backends
                .iter()
                .map(|b| WireBackend {
                    hostname: b.hostname.to_string(),
                    ip: b.ip,
                    port: b.port,
                })
                .collect(),
            check: s.health_check.map(|c| WireCheck {
                inter_ms: u64::try_from(c.inter.as_millis()).unwrap_or(u64::MAX),
                fall: c.fall,
                rise: c.rise,
            }),
        }
    }
}

impl Wire {
    fn into_service(self) -> Result<LoadBalancerService, String> {
        let name: LbServiceName = self.name.parse().map_err(|e| format!("{e}"))?;
        let mode = match self.mode.as_str() {
            "tcp" => LbMode::Tcp,
            other => return Err(format!("unknown mode {other:?}")),
        };
        let backends = self
            .backends
            .into_iter()
            .map(|b| {
                Ok(LbBackend {
                    hostname: b.hostname.parse::<Hostname>().map_err(|e| format!("{e}"))?,
                    ip: b.ip,
                    port: b.port,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(LoadBalancerService {
            name,
            bind: self.bind,
            mode,
            backends,
            health_check: self.check.map(|c| LbHealthCheck {
                inter: Duration::from_millis(c.inter_ms),
                fall: c.fall,
                rise: c.rise,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc() -> LoadBalancerService {
        LoadBalancerService {
            name: "api".parse().unwrap(),
            bind: "127.0.0.1:6443".parse().unwrap(),
            mode: LbMode::Tcp,
            backends: vec![
                LbBackend {
                    hostname: "bootstrap".parse().unwrap(),
                    ip: "10.0.0.5".parse().unwrap(),
                    port: 6443,
                },
                LbBackend {
                    hostname: "master-0.c.example.com".parse().unwrap(),
                    ip: "fd00::10".parse().unwrap(),
                    port: 6443,
                },
            ],
            health_check: Some(LbHealthCheck::default()),
        }
    }

    #[test]
    fn renders_and_reads_back() {
        let mut m = Services::new();
        m.insert(svc().name, svc());
        let text = render(&m);
        assert!(text.contains("    bind 127.0.0.1:6443\n"), "{text}");
        assert!(
            text.contains(
                "    server master-0.c.example.com ipv6@fd00::10:6443 check inter 2000ms fall 3 rise 2\n"
            ),
            "{text}"
        );
        assert_eq!(read_back(&text).unwrap(), m);
        assert_eq!(
            read_back(&render(&Services::new())).unwrap(),
            Services::new()
        );
    }

    #[test]
    fn hand_edits_and_bad_records_are_refused() {
        let mut m = Services::new();
        m.insert(svc().name, svc());
        let text = render(&m);
        let edited = text.replace("balance roundrobin", "balance source");
        assert_eq!(read_back(&edited), Err(ReadBackError::Edited));
        let hostile = text.replace("\"bootstrap\"", "\"boot strap\\nserver x\"");
        assert!(matches!(
            read_back(&hostile),
            Err(ReadBackError::BadRecord { line: 2, .. })
        ));
    }
}
