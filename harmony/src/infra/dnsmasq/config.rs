//! dnsmasq's files, rendered from typed values only: the main
//! `dnsmasq.conf` (interface, DHCP range, boot rules, TFTP, DNS options),
//! `dns-wildcards.conf` (`address=` lines, included by the main file),
//! `dhcp-hosts` (reservations, a `--dhcp-hostsfile`) and `dns-hosts` (A/AAAA
//! and PTR records, an `--addn-hosts` file); and the parsers that read
//! Harmony's own host files back when it starts again.
//!
//! Every value written is a [`MacAddress`], [`Hostname`], IP address,
//! [`InterfaceName`], checked [`HttpUrl`] or checked path, none of which can
//! hold a newline, a comma, a `#` or white space: nothing untrusted can add a
//! line or a field to a file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use crate::domain::{DhcpReservation, DnsName, DnsRecord, Hostname, MacAddress};

use super::{DnsmasqConfig, DnsmasqError};

/// The BIOS PXE loader (from Debian's `ipxe` package), served over TFTP.
pub const BIOS_BOOT_FILE: &str = "undionly.kpxe";
/// The UEFI x86-64 iPXE binary, served over TFTP.
pub const UEFI_BOOT_FILE: &str = "ipxe.efi";

const HEADER: &str = "# Written by Harmony; any change made by hand is overwritten.\n";

/// Where each file lives under Harmony's dnsmasq directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub dir: PathBuf,
    pub main: PathBuf,
    pub wildcards: PathBuf,
    pub dhcp_hosts: PathBuf,
    pub dns_hosts: PathBuf,
    pub leases: PathBuf,
    pub pid: PathBuf,
    pub log: PathBuf,
    pub tftp_root: PathBuf,
}

impl Layout {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            main: dir.join("dnsmasq.conf"),
            wildcards: dir.join("dns-wildcards.conf"),
            dhcp_hosts: dir.join("dhcp-hosts"),
            dns_hosts: dir.join("dns-hosts"),
            leases: dir.join("dnsmasq.leases"),
            pid: dir.join("dnsmasq.pid"),
            log: dir.join("dnsmasq.log"),
            tftp_root: dir.join("tftp"),
        }
    }
}

/// What Harmony has told dnsmasq to serve: reservations and DNS records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteRecords {
    pub reservations: BTreeMap<MacAddress, DhcpReservation>,
    /// Exact names (A/AAAA and PTR), in `dns-hosts`.
    pub hosts: BTreeMap<Hostname, IpAddr>,
    /// Wildcards by their base, in `dns-wildcards.conf`.
    pub wildcards: BTreeMap<Hostname, IpAddr>,
}

impl SiteRecords {
    pub fn dns_records(&self) -> Vec<DnsRecord> {
        let exact = self.hosts.iter().map(|(n, ip)| DnsRecord {
            name: DnsName::Exact(n.clone()),
            ip: *ip,
        });
        let wild = self.wildcards.iter().map(|(n, ip)| DnsRecord {
            name: DnsName::Wildcard(n.clone()),
            ip: *ip,
        });
        let mut all: Vec<DnsRecord> = exact.chain(wild).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }
}

/// The rendered contents of every file, to compare and install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub main: String,
    pub wildcards: String,
    pub dhcp_hosts: String,
    pub dns_hosts: String,
}

impl Rendered {
    pub fn new(config: &DnsmasqConfig, records: &SiteRecords) -> Result<Self, DnsmasqError> {
        Ok(Self {
            main: render_main(config)?,
            wildcards: render_wildcards(records),
            dhcp_hosts: render_dhcp_hosts(records),
            dns_hosts: render_dns_hosts(records),
        })
    }

    /// The files and their contents, main file last (it includes the rest).
    pub fn files<'a>(&'a self, layout: &'a Layout) -> [(&'a Path, &'a str); 4] {
        [
            (&layout.dhcp_hosts, &self.dhcp_hosts),
            (&layout.dns_hosts, &self.dns_hosts),
            (&layout.wildcards, &self.wildcards),
            (&layout.main, &self.main),
        ]
    }
}

/// A path as it may appear in a dnsmasq option: absolute, UTF-8, at most
/// 1024 bytes of `[A-Za-z0-9._/+@-]` (no comma, which separates dnsmasq's
/// fields, no `#`, no white space, no `..` component).
pub fn checked_path<'a>(field: &'static str, path: &'a Path) -> Result<&'a str, DnsmasqError> {
    let bad = |reason| DnsmasqError::Path {
        field,
        path: path.to_path_buf(),
        reason,
    };
    let s = path.to_str().ok_or_else(|| bad("not UTF-8"))?;
    if !s.starts_with('/') || s.len() > 1024 {
        return Err(bad("must be absolute and at most 1024 bytes"));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'+' | b'@' | b'-'))
    {
        return Err(bad(
            "may hold only letters, digits and . _ / + @ - (dnsmasq splits on ',' and '#' starts a comment)",
        ));
    }
    if s.split('/').any(|c| c == "..") {
        return Err(bad("'..' is not allowed"));
    }
    Ok(s)
}

/// The main configuration file.
pub fn render_main(config: &DnsmasqConfig) -> Result<String, DnsmasqError> {
    render_main_with(config, None)
}

/// The main file with the wildcards and host entries inline instead of
/// referenced: what `dnsmasq --test` checks before any file is replaced,
/// so dnsmasq's own parser sees every value that will reach it.
pub fn render_candidate(
    config: &DnsmasqConfig,
    records: &SiteRecords,
) -> Result<String, DnsmasqError> {
    let mut out = render_main_with(config, Some(&render_wildcards(records)))?;
    out.push_str("# reservations and host records, as dnsmasq will read them\n");
    for r in records.reservations.values() {
        let _ = writeln!(out, "dhcp-host={}", dhcp_host_entry(r));
    }
    for (name, ip) in &records.hosts {
        let _ = writeln!(out, "host-record={name},{ip}");
    }
    Ok(out)
}

fn render_main_with(
    config: &DnsmasqConfig,
    inline_wildcards: Option<&str>,
) -> Result<String, DnsmasqError> {
    config.check()?;
    let layout = Layout::new(&config.dir);
    let p = |field, path: &Path| checked_path(field, path).map(str::to_string);
    let (leases, dhcp_hosts, dns_hosts, wildcards, tftp_root) = (
        p("lease file", &layout.leases)?,
        p("DHCP hosts file", &layout.dhcp_hosts)?,
        p("DNS hosts file", &layout.dns_hosts)?,
        p("DNS wildcards file", &layout.wildcards)?,
        p("TFTP root", &layout.tftp_root)?,
    );
    let range = &config.dhcp_range;
    let mut o = String::from(HEADER);
    // `let _ =`: writing to a String cannot fail.
    let _ = writeln!(o, "\n# Where dnsmasq listens: this interface only.");
    let _ = writeln!(o, "interface={}", config.interface);
    o.push_str("except-interface=lo\nbind-interfaces\n");

    let _ = writeln!(
        o,
        "\n# DNS: cluster records from the files below; nothing from this host."
    );
    let _ = writeln!(o, "port={}", config.dns_port);
    o.push_str("no-hosts\nno-resolv\n");
    for server in &config.upstream_dns {
        let _ = writeln!(o, "server={server}");
    }
    if let Some(domain) = &config.domain {
        let _ = writeln!(o, "domain={domain}");
        let _ = writeln!(o, "local=/{domain}/");
    }
    let _ = writeln!(o, "addn-hosts={dns_hosts}");
    match inline_wildcards {
        Some(lines) => o.push_str(lines),
        None => {
            let _ = writeln!(o, "conf-file={wildcards}");
        }
    }

    let _ = writeln!(
        o,
        "\n# DHCP: the dynamic range; reservations in the hosts file."
    );
    let _ = writeln!(
        o,
        "dhcp-range={},{},{},{}",
        range.start,
        range.end,
        range.netmask,
        range.lease_time.as_secs()
    );
    o.push_str("dhcp-authoritative\n");
    if let Some(router) = config.router {
        let _ = writeln!(o, "dhcp-option=option:router,{router}");
    }
    let _ = writeln!(o, "dhcp-leasefile={leases}");
    let _ = writeln!(o, "dhcp-hostsfile={dhcp_hosts}");

    let _ = writeln!(
        o,
        "\n# Boot: BIOS and UEFI firmware get iPXE over TFTP; iPXE gets its script over HTTP."
    );
    o.push_str("enable-tftp\n");
    let _ = writeln!(o, "tftp-root={tftp_root}");
    o.push_str(concat!(
        "dhcp-userclass=set:ipxe,iPXE\n",
        "dhcp-match=set:ipxe,175\n",
        "dhcp-match=set:bios,option:client-arch,0\n",
        "dhcp-match=set:efi64,option:client-arch,7\n",
        "dhcp-match=set:efi64,option:client-arch,9\n",
    ));
    let _ = writeln!(o, "dhcp-boot=tag:bios,tag:!ipxe,{BIOS_BOOT_FILE}");
    let _ = writeln!(o, "dhcp-boot=tag:efi64,tag:!ipxe,{UEFI_BOOT_FILE}");
    let _ = writeln!(o, "dhcp-boot=tag:ipxe,{}", config.ipxe_script_url);
    Ok(o)
}

fn dhcp_host_entry(r: &DhcpReservation) -> String {
    format!("{},{},{}", r.mac, r.ip, r.hostname)
}

/// `dns-wildcards.conf`: one `address=/BASE/IP` per wildcard (dnsmasq
/// answers it for BASE and every name below it).
pub fn render_wildcards(records: &SiteRecords) -> String {
    let mut o = String::from(HEADER);
    for (base, ip) in &records.wildcards {
        let _ = writeln!(o, "address=/{base}/{ip}");
    }
    o
}

/// `dhcp-hosts`: `MAC,IP,HOSTNAME` per reservation, by MAC.
pub fn render_dhcp_hosts(records: &SiteRecords) -> String {
    let mut o = String::from(HEADER);
    for r in records.reservations.values() {
        o.push_str(&dhcp_host_entry(r));
        o.push('\n');
    }
    o
}

/// `dns-hosts`: `IP NAME` per exact name, by name (A or AAAA, and the PTR).
pub fn render_dns_hosts(records: &SiteRecords) -> String {
    let mut o = String::from(HEADER);
    for (name, ip) in &records.hosts {
        let _ = writeln!(o, "{ip} {name}");
    }
    o
}

/// Lines of a Harmony-written file that carry entries (not comments, not
/// blank), with their 1-based numbers.
fn entries(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

fn state_error(path: &Path, line: usize, reason: String) -> DnsmasqError {
    DnsmasqError::StateFile {
        path: path.to_path_buf(),
        line,
        reason,
    }
}

/// Reads back the records Harmony wrote (files absent: none). A line that
/// does not validate is an error naming the file and line: Harmony owns
/// these files, so one it cannot read is not silently dropped.
pub fn load_records(layout: &Layout) -> Result<SiteRecords, DnsmasqError> {
    let mut records = SiteRecords::default();
    if let Some(text) = read_optional(&layout.dhcp_hosts)? {
        for r in parse_dhcp_hosts(&layout.dhcp_hosts, &text)? {
            records.reservations.insert(r.mac, r);
        }
    }
    if let Some(text) = read_optional(&layout.dns_hosts)? {
        records.hosts = parse_dns_hosts(&layout.dns_hosts, &text)?;
    }
    if let Some(text) = read_optional(&layout.wildcards)? {
        records.wildcards = parse_wildcards(&layout.wildcards, &text)?;
    }
    Ok(records)
}

fn read_optional(path: &Path) -> Result<Option<String>, DnsmasqError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(DnsmasqError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// `MAC,IP,HOSTNAME` lines.
pub fn parse_dhcp_hosts(path: &Path, text: &str) -> Result<Vec<DhcpReservation>, DnsmasqError> {
    entries(text)
        .map(|(n, line)| {
            let fields: Vec<&str> = line.split(',').collect();
            let [mac, ip, hostname] = fields[..] else {
                return Err(state_error(path, n, "expected MAC,IP,HOSTNAME".into()));
            };
            let e = |err: String| state_error(path, n, err);
            Ok(DhcpReservation {
                mac: mac
                    .parse()
                    .map_err(|x: crate::domain::ValueError| e(x.to_string()))?,
                ip: IpAddr::V4(
                    ip.parse::<Ipv4Addr>()
                        .map_err(|_| e(format!("invalid IPv4 address {ip:?}")))?,
                ),
                hostname: hostname
                    .parse()
                    .map_err(|x: crate::domain::ValueError| e(x.to_string()))?,
            })
        })
        .collect()
}

/// `IP NAME` lines.
pub fn parse_dns_hosts(
    path: &Path,
    text: &str,
) -> Result<BTreeMap<Hostname, IpAddr>, DnsmasqError> {
    entries(text)
        .map(|(n, line)| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [ip, name] = fields[..] else {
                return Err(state_error(path, n, "expected IP NAME".into()));
            };
            let ip = ip
                .parse::<IpAddr>()
                .map_err(|_| state_error(path, n, format!("invalid IP address {ip:?}")))?;
            let name = name
                .parse::<Hostname>()
                .map_err(|e| state_error(path, n, e.to_string()))?;
            Ok((name, ip))
        })
        .collect()
}

/// `address=/BASE/IP` lines.
pub fn parse_wildcards(
    path: &Path,
    text: &str,
) -> Result<BTreeMap<Hostname, IpAddr>, DnsmasqError> {
    entries(text)
        .map(|(n, line)| {
            let fields: Option<Vec<&str>> = line
                .strip_prefix("address=/")
                .map(|rest| rest.split('/').collect());
            let Some([base, ip]) = fields.as_deref() else {
                return Err(state_error(path, n, "expected address=/NAME/IP".into()));
            };
            let ip = ip
                .parse::<IpAddr>()
                .map_err(|_| state_error(path, n, format!("invalid IP address {ip:?}")))?;
            let base = base
                .parse::<Hostname>()
                .map_err(|e| state_error(path, n, e.to_string()))?;
            Ok((base, ip))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> SiteRecords {
        let mut r = SiteRecords::default();
        let res = DhcpReservation {
            mac: "02:00:00:00:00:01".parse().unwrap(),
            ip: "10.0.0.10".parse().unwrap(),
            hostname: "master-0".parse().unwrap(),
        };
        r.reservations.insert(res.mac, res);
        r.hosts.insert(
            "api.ocp.example.com".parse().unwrap(),
            "10.0.0.5".parse().unwrap(),
        );
        r.hosts.insert(
            "v6.ocp.example.com".parse().unwrap(),
            "fd00::5".parse().unwrap(),
        );
        r.wildcards.insert(
            "apps.ocp.example.com".parse().unwrap(),
            "10.0.0.6".parse().unwrap(),
        );
        r
    }

    #[test]
    fn host_files_read_back_what_was_written() {
        let r = records();
        let p = Path::new("/x");
        let res = parse_dhcp_hosts(p, &render_dhcp_hosts(&r)).unwrap();
        assert_eq!(res, r.reservations.values().cloned().collect::<Vec<_>>());
        assert_eq!(parse_dns_hosts(p, &render_dns_hosts(&r)).unwrap(), r.hosts);
        assert_eq!(
            parse_wildcards(p, &render_wildcards(&r)).unwrap(),
            r.wildcards
        );
        assert_eq!(
            render_dns_hosts(&r),
            format!("{HEADER}10.0.0.5 api.ocp.example.com\nfd00::5 v6.ocp.example.com\n")
        );
    }

    #[test]
    fn a_tampered_host_file_is_an_error_naming_file_and_line() {
        let p = Path::new("/srv/dhcp-hosts");
        for (text, line) in [
            (
                "# c\n02:00:00:00:00:01,10.0.0.1,a\n02:00:00:00:00:02,10.0.0.2,a b\n",
                3,
            ),
            ("02:00:00:00:00:01,10.0.0.1,a,extra\n", 1),
            ("02:00:00:00:00:01,fd00::1,a\n", 1),
            ("02:00:00:00:00:01,10.0.0.1,a;reboot\n", 1),
        ] {
            let e = parse_dhcp_hosts(p, text).unwrap_err().to_string();
            assert!(e.contains(&format!("/srv/dhcp-hosts line {line}")), "{e}");
        }
        assert!(parse_dns_hosts(p, "10.0.0.1 a b\n").is_err());
        assert!(parse_dns_hosts(p, "10.0.0.1 *.a\n").is_err());
        assert!(parse_wildcards(p, "address=/a/b/10.0.0.1\n").is_err());
        assert!(parse_wildcards(p, "server=/a/10.0.0.1\n").is_err());
    }

    #[test]
    fn paths_that_would_break_a_line_are_refused() {
        assert!(checked_path("x", Path::new("/var/lib/harmony/dnsmasq")).is_ok());
        for bad in [
            "relative/dir",
            "/a,b",
            "/a b",
            "/a#b",
            "/a\nenable-tftp",
            "/a/../b",
            "/a=b",
        ] {
            assert!(checked_path("x", Path::new(bad)).is_err(), "{bad:?}");
        }
    }
}
