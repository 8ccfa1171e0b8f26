//! The site file: one YAML file describing a site (the cluster, the
//! provisioning network, the services backend, the switches, the expected
//! hosts and the keys), read into typed, validated values.
//!
//! [`SiteFile::load`] reads a file (at most [`MAX_BYTES`]);
//! [`SiteFile::parse`] reads text. Reading refuses unknown fields, wrong
//! types and invalid values with the field's path, line and column
//! (`model.rs`); then `validate.rs` checks what spans several fields
//! (ranges, overlaps, duplicates, references), reporting every problem
//! with its field path and value. Secrets are never in the file: a value
//! that looks like one is refused and never shown.
//!
//! YAML is read by `serde_norway` (the maintained fork of `serde_yaml`): it
//! caps nesting depth (recursion limit) and alias expansion (repetition
//! limit), so with the size cap an anchor/alias bomb fails fast.
//!
//! `examples/site.yaml` is the commented reference for operators.

pub mod compose;
pub mod discovery;
pub mod inputs;
pub mod install;
pub mod model;
pub mod plan_view;
pub mod switches;
pub mod topology;
pub mod validate;
pub mod values;

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

pub use model::{
    BackendKind, Cluster, DhcpRange, Hosts, LinuxServices, OpnSenseServices, OpnSenseSsh,
    PinnedHost, PortRef, Provisioning, Site, Ssh, Switch, SwitchKind,
};
pub use validate::Problem;
pub use values::{
    ApiKeySource, ApiUrl, EnvVarName, FilePath, OkdVersion, PortName, SshHostKey, SwitchAddress,
    SwitchCredentials, SwitchName, VlanId,
};

use crate::domain::Role;

/// Largest site file read (a real one is a few KiB).
pub const MAX_BYTES: u64 = 1024 * 1024;

/// Deepest flow-collection nesting (`[`, `{`) accepted. libyaml's scanner
/// spends time proportional to the depth on every token of a flow
/// collection, so 1 MiB of `[` would take minutes; a site file needs 2.
pub const MAX_FLOW_DEPTH: usize = 64;

/// Most problems listed in one error (the count of the rest is given).
pub const MAX_PROBLEMS_SHOWN: usize = 50;

/// Why a site file was refused.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    /// The file could not be opened or read.
    #[error("cannot read site file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Larger than [`MAX_BYTES`].
    #[error("{origin}: the site file is larger than {max} bytes")]
    TooLarge { origin: String, max: u64 },
    /// Not YAML, or not the site file's shape: an unknown field, a wrong
    /// type, an invalid value (with the field path, line and column).
    #[error("{origin}: {message}")]
    Syntax {
        origin: String,
        message: String,
        /// 1-based line and column, when the parser knows them.
        location: Option<(usize, usize)>,
    },
    /// Well-formed, but breaking rules that span fields.
    #[error("{origin}: {}", Problems(problems))]
    Invalid {
        origin: String,
        problems: Vec<Problem>,
    },
}

struct Problems<'a>(&'a [Problem]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [one] => one.fmt(f),
            many => {
                write!(f, "{} problems:", many.len())?;
                for p in many.iter().take(MAX_PROBLEMS_SHOWN) {
                    write!(f, "\n  - {p}")?;
                }
                if many.len() > MAX_PROBLEMS_SHOWN {
                    write!(f, "\n  - and {} more", many.len() - MAX_PROBLEMS_SHOWN)?;
                }
                Ok(())
            }
        }
    }
}

/// Where (1-based line and column) `text` opens more than `max` flow
/// collections that are not closed, if it does. Every `[`/`{` counts, also
/// in comments and quoted strings: counting never less than libyaml
/// nests, so no quoting trick gets a deep document past it, and a real
/// site file is far from the limit either way.
fn too_deep(text: &str, max: usize) -> Option<(usize, usize)> {
    let (mut depth, mut line, mut column) = (0usize, 1usize, 0usize);
    for c in text.chars() {
        column += 1;
        match c {
            '[' | '{' => {
                depth += 1;
                if depth > max {
                    return Some((line, column));
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            '\n' => {
                line += 1;
                column = 0;
            }
            _ => {}
        }
    }
    None
}

/// A validated site file.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteFile {
    origin: String,
    site: Site,
    switch_addresses: Vec<SwitchAddress>,
}

impl SiteFile {
    /// Reads and validates the site file at `path`.
    pub fn load(path: &Path) -> Result<SiteFile, SiteError> {
        let read_err = |source| SiteError::Read {
            path: path.to_path_buf(),
            source,
        };
        let origin = path.display().to_string();
        let file = std::fs::File::open(path).map_err(read_err)?;
        let mut bytes = Vec::new();
        file.take(MAX_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
        if bytes.len() as u64 > MAX_BYTES {
            return Err(SiteError::TooLarge {
                origin,
                max: MAX_BYTES,
            });
        }
        let text = String::from_utf8(bytes).map_err(|e| SiteError::Syntax {
            origin: origin.clone(),
            message: format!("not UTF-8 (at byte {})", e.utf8_error().valid_up_to()),
            location: None,
        })?;
        Self::parse(&text, &origin)
    }

    /// Reads and validates site file text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<SiteFile, SiteError> {
        let origin = origin.to_string();
        if text.len() as u64 > MAX_BYTES {
            return Err(SiteError::TooLarge {
                origin,
                max: MAX_BYTES,
            });
        }
        if let Some((line, column)) = too_deep(text, MAX_FLOW_DEPTH) {
            return Err(SiteError::Syntax {
                origin,
                message: format!(
                    "flow collections ([...] or {{...}}) nested deeper than {MAX_FLOW_DEPTH} levels at line {line} column {column} (every unclosed bracket counts, also in comments and strings)"
                ),
                location: Some((line, column)),
            });
        }
        let site: Site = serde_norway::from_str(text).map_err(|e| SiteError::Syntax {
            origin: origin.clone(),
            location: e.location().map(|l| (l.line(), l.column())),
            message: e.to_string(),
        })?;
        match validate::validate(&site) {
            Ok(derived) => {
                tracing::debug!(site = %origin, "site file valid");
                Ok(SiteFile {
                    origin,
                    site,
                    switch_addresses: derived.switch_addresses,
                })
            }
            Err(problems) => Err(SiteError::Invalid { origin, problems }),
        }
    }

    /// Where it came from (the path, or what `parse` was told).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The validated contents.
    pub fn site(&self) -> &Site {
        &self.site
    }

    /// The services backend and its settings.
    pub fn backend(&self) -> Backend<'_> {
        let s = &self.site.services;
        match s.backend {
            BackendKind::Linux => s.linux.as_ref().map_or(Backend::Missing, Backend::Linux),
            BackendKind::Opnsense => s
                .opnsense
                .as_ref()
                .map_or(Backend::Missing, Backend::OpnSense),
        }
    }

    /// Each switch with the address it is reached at.
    pub fn switches(&self) -> impl Iterator<Item = (&Switch, &SwitchAddress)> {
        self.site.switches.iter().zip(&self.switch_addresses)
    }

    /// The pinned hosts of `role`.
    pub fn pinned(&self, role: Role) -> impl Iterator<Item = &PinnedHost> {
        self.site
            .hosts
            .pinned
            .iter()
            .filter(move |h| h.role == role)
    }

    /// The cluster's DNS zone, `<name>.<base_domain>`.
    pub fn cluster_domain(&self) -> String {
        format!(
            "{}.{}",
            self.site.cluster.name, self.site.cluster.base_domain
        )
    }

    /// A short human summary (what `harmony site check` prints).
    pub fn summary(&self) -> String {
        summary(self)
    }
}

/// The services backend of a validated site.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Backend<'a> {
    Linux(&'a LinuxServices),
    OpnSense(&'a OpnSenseServices),
    /// Never produced for a validated site.
    Missing,
}

fn summary(f: &SiteFile) -> String {
    use std::fmt::Write as _;
    let s = &f.site;
    let c = &s.cluster;
    let pr = &s.provisioning;
    let mut out = String::new();
    let _ = writeln!(out, "site file {}: valid", f.origin);
    let _ = writeln!(
        out,
        "cluster      {} ({}), OKD {}; pods {} /{}, services {}",
        c.name,
        f.cluster_domain(),
        c.okd_version,
        c.cluster_network.cidr,
        c.cluster_network.host_prefix,
        c.service_network
    );
    let _ = writeln!(
        out,
        "provisioning {} on {}, gateway {}, Harmony {}, DHCP {}-{} ({} addresses), DNS forwarders {}",
        pr.subnet,
        pr.interface,
        pr.gateway,
        pr.harmony_address,
        pr.dhcp_range.start,
        pr.dhcp_range.end,
        pr.dhcp_range.len(),
        pr.dns_forwarders
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    match f.backend() {
        Backend::Linux(l) => {
            let _ = writeln!(
                out,
                "services     linux: dnsmasq DNS on {}, Caddy on {} serving {}, HAProxy on {} (6443, 22623, 80, 443), state in {}",
                l.dns_listen, l.http_listen, l.http_root, l.load_balancer_address, l.state_dir
            );
        }
        Backend::OpnSense(o) => {
            let ca = o
                .ca_file
                .as_ref()
                .map_or("built-in roots".to_string(), |p| format!("CA {p}"));
            let _ = writeln!(
                out,
                "services     opnsense: {} ({ca}), API key from {}",
                o.url, o.api_key
            );
        }
        Backend::Missing => {}
    }
    let _ = writeln!(out, "switches     {}", s.switches.len());
    for (sw, addr) in f.switches() {
        let creds = sw
            .credentials
            .as_ref()
            .map_or(String::new(), |c| format!(", credentials from {c}"));
        let bridge = sw
            .bridge
            .as_ref()
            .map_or(String::new(), |b| format!(", bridge {b}"));
        let _ = writeln!(
            out,
            "  {} ({}) at {}, access VLAN {}, LACP fallback {}{bridge}{creds}",
            sw.name,
            sw.kind.as_str(),
            addr,
            sw.access_vlan,
            if sw.lacp_fallback { "on" } else { "off" }
        );
    }
    let h = &s.hosts;
    let _ = writeln!(
        out,
        "hosts        {} expected: {} bootstrap, {} control-plane, {} worker(s); {} pinned",
        h.total(),
        h.bootstrap,
        h.control_plane,
        h.workers,
        h.pinned.len()
    );
    for p in &h.pinned {
        let ports: Vec<String> = p
            .switch_ports
            .iter()
            .map(|r| format!("{}:{}", r.switch, r.port))
            .collect();
        let _ = writeln!(
            out,
            "  {} {:<13} {:<12} {}{}",
            p.mac,
            p.role.as_str(),
            p.hostname,
            p.ip,
            if ports.is_empty() {
                String::new()
            } else {
                format!("  ports {}", ports.join(", "))
            }
        );
    }
    let _ = writeln!(
        out,
        "keys         operator {}, cluster {}, pull secret {}",
        s.ssh.operator_key_file, s.ssh.cluster_public_key_file, c.pull_secret_file
    );
    out
}
