//! The topology a site file names: [`plan`] turns a validated
//! [`SiteFile`] into the settings of its services backend (nothing read,
//! nothing started: what `harmony site check` prints), and [`build`] makes
//! the topology from them: [`LinuxSiteTopology`] (dnsmasq + Caddy +
//! HAProxy started on this host) or [`OpnSenseSite`] (the firewall's API,
//! and SSH for the TFTP and HTTP files).
//!
//! Secrets come only from where the site file says: the API key from its
//! `key_file` or its two environment variables, the SSH key from its file.
//! A value the backend cannot use is an error naming the site file's field.

use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::{ApiKeySource, Backend, SiteFile};
use crate::domain::{HostKey, Hostname, HttpUrl, RemoteHost};
use crate::infra::dnsmasq::DhcpRange;
use crate::infra::http_client::HttpError;
use crate::infra::linux_site::{LinuxSiteConfig, LinuxSiteError, LinuxSiteTopology};
use crate::infra::opnsense::{
    Credentials, OpnSenseConfig, OpnSenseError, OpnSenseFilesConfig, OpnSenseSite, firewall_host_id,
};
use crate::infra::ssh::SshConfig;

/// Where the OPNsense backend keeps large files before copying them.
pub const DEFAULT_OPNSENSE_STAGING: &str = "/var/lib/harmony/opnsense-staging";
/// The dynamic range's lease time on a Linux site.
pub const LEASE_TIME: Duration = Duration::from_secs(3600);

/// Why a site's topology could not be planned or built.
#[derive(Debug, thiserror::Error)]
pub enum SiteTopologyError {
    #[error("{origin}: {field} = {value}: {reason}")]
    Field {
        origin: String,
        field: String,
        value: String,
        reason: String,
    },
    #[error("{origin}: starting the linux site: {source}")]
    Linux {
        origin: String,
        #[source]
        source: LinuxSiteError,
    },
    #[error("{origin}: {field}: {source}")]
    OpnSense {
        origin: String,
        field: &'static str,
        #[source]
        source: OpnSenseError,
    },
}

/// The OPNsense backend's settings, from the site file.
#[derive(Debug, Clone, PartialEq)]
pub struct OpnSensePlan {
    pub name: String,
    pub url: HttpUrl,
    pub ca_file: Option<PathBuf>,
    pub api_key: ApiKeySource,
    /// The box's provisioning address (TFTP listen, web root).
    pub address: Ipv4Addr,
    pub http_port: u16,
    /// `None`: no TFTP or HTTP files (no `ssh` section).
    pub files: Option<OpnSenseFilesPlan>,
}

/// How files reach the box.
#[derive(Debug, Clone, PartialEq)]
pub struct OpnSenseFilesPlan {
    pub ssh: SocketAddr,
    pub key_file: PathBuf,
    pub host_key: HostKey,
    pub staging_dir: PathBuf,
}

/// The services backend a site file names, with every value it needs.
#[derive(Debug, Clone, PartialEq)]
pub enum SitePlan {
    Linux(LinuxSiteConfig),
    OpnSense(OpnSensePlan),
}

/// A built site topology.
#[derive(Debug)]
pub enum SiteTopology {
    Linux(Box<LinuxSiteTopology>),
    OpnSense(OpnSenseSite),
}

/// The topology `site` names, its values checked (nothing read or started).
pub fn plan(site: &SiteFile) -> Result<SitePlan, SiteTopologyError> {
    let s = site.site();
    let pr = &s.provisioning;
    let field = |field: &str, value: &dyn fmt::Display, reason: &str| SiteTopologyError::Field {
        origin: site.origin().to_string(),
        field: field.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let name = s.cluster.name.to_string();
    match site.backend() {
        Backend::Linux(l) => {
            let range = DhcpRange {
                start: pr.dhcp_range.start,
                end: pr.dhcp_range.end,
                netmask: pr.subnet.mask(),
                lease_time: LEASE_TIME,
            };
            let mut c = LinuxSiteConfig::new(
                name,
                l.state_dir.as_path(),
                pr.interface.clone(),
                pr.harmony_address,
                range,
            );
            c.http_root = l.http_root.as_path().to_path_buf();
            c.router = Some(pr.gateway);
            let domain = site.cluster_domain();
            c.domain = Some(domain.parse::<Hostname>().map_err(|_| {
                field(
                    "cluster.name",
                    &domain,
                    "the cluster domain is not a valid DNS name",
                )
            })?);
            c.upstream_dns = pr.dns_forwarders.clone();
            c.dns_port = l.dns_listen.port();
            c.http_listen = l.http_listen;
            c.lb_address = IpAddr::V4(l.load_balancer_address);
            let dns_ip = l.dns_listen.ip();
            if !(dns_ip.is_unspecified() || dns_ip == IpAddr::V4(pr.harmony_address)) {
                return Err(field(
                    "services.linux.dns_listen",
                    &l.dns_listen,
                    "dnsmasq answers on the provisioning interface: use Harmony's address or 0.0.0.0",
                ));
            }
            if let Err(LinuxSiteError::Config {
                field: what,
                value,
                reason,
            }) = c.check()
            {
                let name = match what {
                    "HTTP listen address" => "services.linux.http_listen",
                    "state dir" => "services.linux.state_dir",
                    "HTTP root" => "services.linux.http_root",
                    "address" => "provisioning.harmony_address",
                    "name" => "cluster.name",
                    other => other,
                };
                return Err(field(name, &value, reason));
            }
            Ok(SitePlan::Linux(c))
        }
        Backend::OpnSense(o) => {
            let address = o.address.unwrap_or(pr.gateway);
            let files = o.ssh.as_ref().map(|ssh| OpnSenseFilesPlan {
                ssh: SocketAddr::new(ssh.host.unwrap_or(IpAddr::V4(address)), ssh.port),
                key_file: ssh
                    .key_file
                    .as_ref()
                    .unwrap_or(&s.ssh.operator_key_file)
                    .as_path()
                    .to_path_buf(),
                host_key: ssh.host_key.key().clone(),
                staging_dir: o.staging_dir.as_ref().map_or_else(
                    || PathBuf::from(DEFAULT_OPNSENSE_STAGING),
                    |d| d.as_path().to_path_buf(),
                ),
            });
            Ok(SitePlan::OpnSense(OpnSensePlan {
                name,
                url: o.url.as_url().clone(),
                ca_file: o.ca_file.as_ref().map(|f| f.as_path().to_path_buf()),
                api_key: o.api_key.clone(),
                address,
                http_port: o.http_port,
                files,
            }))
        }
        Backend::Missing => Err(field(
            "services.backend",
            &s.services.backend.as_str(),
            "has no settings section",
        )),
    }
}

impl SitePlan {
    /// Which topology and services it would use (what `site check` prints).
    pub fn describe(&self) -> String {
        let mut out = String::new();
        match self {
            SitePlan::Linux(c) => {
                let _ = writeln!(
                    out,
                    "topology     LinuxSiteTopology \"{}\" on this host (state in {})",
                    c.name,
                    c.state_dir.display()
                );
                let _ = writeln!(
                    out,
                    "  dnsmasq    DHCP on {} ({}-{}, router {}), TFTP, DNS port {} for {} (forwarders {})",
                    c.interface,
                    c.dhcp_range.start,
                    c.dhcp_range.end,
                    c.router.map_or("none".into(), |r| r.to_string()),
                    c.dns_port,
                    c.domain.as_ref().map_or("-".into(), |d| d.to_string()),
                    c.upstream_dns
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                let _ = writeln!(
                    out,
                    "  caddy      HTTP on {} serving {} (boot URLs http://{}:{}/)",
                    c.http_listen,
                    c.http_root.display(),
                    c.address,
                    c.http_listen.port()
                );
                let _ = writeln!(
                    out,
                    "  haproxy    load balancer on {} (6443, 22623, 80, 443)",
                    c.lb_address
                );
            }
            SitePlan::OpnSense(p) => {
                let _ = writeln!(out, "topology     OpnSenseSite \"{}\" at {}", p.name, p.url);
                let ca = p
                    .ca_file
                    .as_ref()
                    .map_or("built-in roots".into(), |c| format!("CA {}", c.display()));
                let _ = writeln!(out, "  api        {} ({ca}), key from {}", p.url, p.api_key);
                let _ = writeln!(
                    out,
                    "  services   DHCP (Dnsmasq), DNS (Unbound overrides), load balancer (os-haproxy), leases"
                );
                match &p.files {
                    Some(f) => {
                        let _ = writeln!(
                            out,
                            "  files      over SSH root@{} (host key {}, key {}): TFTP (os-tftp on {}), HTTP http://{}:{}/ (Caddy snippet); staging {}",
                            f.ssh,
                            f.host_key,
                            f.key_file.display(),
                            p.address,
                            p.address,
                            p.http_port,
                            f.staging_dir.display()
                        );
                    }
                    None => {
                        let _ = writeln!(
                            out,
                            "  files      none: no services.opnsense.ssh, so no TFTP or HTTP files"
                        );
                    }
                }
            }
        }
        out
    }
}

/// Builds the OPNsense site: reads the API key (file or environment), the
/// CA and the SSH key now, so a missing secret fails before any call.
pub fn build_opnsense(origin: &str, p: &OpnSensePlan) -> Result<OpnSenseSite, SiteTopologyError> {
    let err = |field: &'static str| {
        move |source| SiteTopologyError::OpnSense {
            origin: origin.to_string(),
            field,
            source,
        }
    };
    let credentials = match &p.api_key {
        ApiKeySource::KeyFile(f) => Credentials::from_file(f.as_path()),
        ApiKeySource::Env { key, secret } => Credentials::from_env(key.as_str(), secret.as_str()),
    }
    .map_err(err("services.opnsense.api_key"))?;
    if let Some(ca) = &p.ca_file
        && !ca.is_file()
    {
        return Err(SiteTopologyError::Field {
            origin: origin.to_string(),
            field: "services.opnsense.ca_file".into(),
            value: ca.display().to_string(),
            reason: "is not a readable file".into(),
        });
    }
    let mut config = OpnSenseConfig::new(p.url.clone(), credentials);
    config.site_ca = p.ca_file.clone();
    let mut site = OpnSenseSite::new(&p.name, config).map_err(|e| {
        let field = match &e {
            OpnSenseError::Http {
                source: HttpError::SiteCa { .. },
                ..
            } => "services.opnsense.ca_file",
            _ => "services.opnsense.url",
        };
        err(field)(e)
    })?;
    if let Some(f) = &p.files {
        let mut ssh = SshConfig::new(&f.key_file);
        ssh.port = f.ssh.port();
        let host = RemoteHost::discovery(
            firewall_host_id(&p.name).map_err(err("cluster.name"))?,
            f.ssh.ip(),
        );
        let mut files = OpnSenseFilesConfig::new(
            host,
            ssh,
            f.host_key.clone(),
            p.address,
            f.staging_dir.clone(),
        )
        .map_err(err("services.opnsense.ssh"))?;
        files.http_port = p.http_port;
        site = site
            .with_files(files)
            .map_err(err("services.opnsense.ssh.key_file"))?;
    }
    Ok(site)
}

/// Plans and builds the topology `site` names: starts the Linux services,
/// or connects nothing yet but reads every OPNsense secret.
pub async fn build(site: &SiteFile) -> Result<SiteTopology, SiteTopologyError> {
    match plan(site)? {
        SitePlan::Linux(config) => LinuxSiteTopology::start(config)
            .await
            .map(|t| SiteTopology::Linux(Box::new(t)))
            .map_err(|source| SiteTopologyError::Linux {
                origin: site.origin().to_string(),
                source,
            }),
        SitePlan::OpnSense(p) => build_opnsense(site.origin(), &p).map(SiteTopology::OpnSense),
    }
}
