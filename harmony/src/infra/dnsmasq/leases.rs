//! dnsmasq's lease file, read into [`DhcpLease`]s. The file holds what
//! clients sent (host names above all), so every field is validated; a line
//! that does not validate is skipped and reported, never a panic nor an
//! error for the whole file.
//!
//! Format (one DHCPv4 lease a line): `EXPIRY MAC IP HOSTNAME CLIENT-ID`,
//! with `EXPIRY` in seconds since the epoch (`0`: never) and `*` for no
//! host name. A `duid ...` line starts the DHCPv6 leases, which have no MAC
//! and are left out.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime};

use crate::domain::{DhcpLease, Hostname, MacAddress};

/// Longest line considered (dnsmasq's own lines are far shorter).
const MAX_LINE: usize = 1024;
/// Characters of a skipped line quoted in its report.
const SHOWN: usize = 120;

/// A line that was left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedLine {
    /// 1-based.
    pub line: usize,
    /// The line, bounded and escaped (safe for a log or a terminal).
    pub text: String,
    pub reason: String,
}

/// What a lease file held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedLeases {
    pub leases: Vec<DhcpLease>,
    pub skipped: Vec<SkippedLine>,
}

/// Parses the text of a lease file (see the module documentation).
pub fn parse_leases(text: &str) -> ParsedLeases {
    let mut out = ParsedLeases::default();
    let mut dhcpv6 = false;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with("duid ") {
            dhcpv6 = true;
            continue;
        }
        if dhcpv6 {
            continue;
        }
        match parse_line(line) {
            Ok(lease) => out.leases.push(lease),
            Err(reason) => out.skipped.push(SkippedLine {
                line: line_no,
                text: shown(line),
                reason,
            }),
        }
    }
    out
}

fn parse_line(line: &str) -> Result<DhcpLease, String> {
    if line.len() > MAX_LINE {
        return Err(format!("longer than {MAX_LINE} bytes"));
    }
    let fields: Vec<&str> = line.split(' ').collect();
    let [expiry, mac, ip, hostname, _client_id] = fields[..] else {
        return Err(format!(
            "expected 5 fields separated by one space, found {}",
            fields.len()
        ));
    };
    let expiry: u64 = expiry
        .parse()
        .map_err(|_| "the expiry is not a number of seconds".to_string())?;
    let expires = match expiry {
        0 => None,
        s => Some(
            SystemTime::UNIX_EPOCH
                .checked_add(Duration::from_secs(s))
                .ok_or_else(|| "the expiry is out of range".to_string())?,
        ),
    };
    let mac: MacAddress = mac.parse().map_err(|e| format!("{e}"))?;
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| "the address is not an IPv4 address".to_string())?;
    let hostname = match hostname {
        "*" => None,
        h => Some(h.parse::<Hostname>().map_err(|e| format!("{e}"))?),
    };
    Ok(DhcpLease {
        mac,
        ip: IpAddr::V4(ip),
        hostname,
        expires,
    })
}

/// At most [`SHOWN`] characters, with control and non-ASCII characters
/// escaped.
fn shown(line: &str) -> String {
    let mut s: String = line
        .chars()
        .take(SHOWN)
        .flat_map(char::escape_default)
        .collect();
    if line.chars().count() > SHOWN {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dnsmasq_lines() {
        let text = "1795710029 02:00:00:00:00:01 10.77.0.10 master-0 01:02:00:00:00:00:01\n\
                    0 02:00:00:00:00:02 10.77.0.120 * *\n\
                    duid 00:01:00:01:2c:aa:bb:cc:02:00:00:00:00:01\n\
                    1795710029 1234 fd00::10 v6host 00:01\n";
        let p = parse_leases(text);
        assert!(p.skipped.is_empty(), "{:?}", p.skipped);
        assert_eq!(
            p.leases,
            [
                DhcpLease {
                    mac: "02:00:00:00:00:01".parse().unwrap(),
                    ip: "10.77.0.10".parse().unwrap(),
                    hostname: Some("master-0".parse().unwrap()),
                    expires: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1795710029)),
                },
                DhcpLease {
                    mac: "02:00:00:00:00:02".parse().unwrap(),
                    ip: "10.77.0.120".parse().unwrap(),
                    hostname: None,
                    expires: None,
                },
            ]
        );
    }

    #[test]
    fn hostile_lines_are_skipped_with_their_reason() {
        let long = format!("1 02:00:00:00:00:03 10.0.0.3 {} *", "a".repeat(2000));
        let lines = [
            "1 02:00:00:00:00:03 10.0.0.3 evil;reboot *",
            "1 02:00:00:00:00:03 10.0.0.3 $(reboot) *",
            "1 02:00:00:00:00:03 10.0.0.3 a\u{1b}[2Jb *",
            "1 02:00:00:00:00:03 10.0.0.3 ../../etc *",
            "1 02:00:00:00:00:03 10.0.0.3 a\u{202e}b *",
            "1 02:00:00:00:00:03 10.0.0.3 good * extra",
            "1 02:00:00:00:00:03 10.0.0.3",
            "1  02:00:00:00:00:03 10.0.0.3 good *",
            "x 02:00:00:00:00:03 10.0.0.3 good *",
            "-1 02:00:00:00:00:03 10.0.0.3 good *",
            "99999999999999999999 02:00:00:00:00:03 10.0.0.3 good *",
            "18446744073709551615 02:00:00:00:00:03 10.0.0.3 good *",
            "1 01:00:5e:00:00:01 10.0.0.3 good *",
            "1 06-02:00:00:00:00:03 10.0.0.3 good *",
            "1 02:00:00:00:00:03 10.0.0.300 good *",
            "1 02:00:00:00:00:03 fd00::3 good *",
            "1 02:00:00:00:00:03 10.0.0.3 good\t*",
            "\0\0\0\0",
            &long,
        ];
        let mut text = String::from("5 02:00:00:00:00:09 10.0.0.9 fine *\n");
        for l in &lines {
            text.push_str(l);
            text.push('\n');
        }
        let p = parse_leases(&text);
        assert_eq!(p.leases.len(), 1, "{:?}", p.leases);
        assert_eq!(p.leases[0].hostname.as_ref().unwrap().as_str(), "fine");
        assert_eq!(p.skipped.len(), lines.len(), "{:?}", p.skipped);
        for (s, n) in p.skipped.iter().zip(2..) {
            assert_eq!(s.line, n);
            assert!(!s.reason.is_empty());
            assert!(s.text.chars().count() <= SHOWN + 1, "{}", s.text);
            assert!(!s.text.chars().any(char::is_control), "{:?}", s.text);
        }
        assert!(
            p.skipped[0].reason.contains("host name"),
            "{:?}",
            p.skipped[0]
        );
    }
}
