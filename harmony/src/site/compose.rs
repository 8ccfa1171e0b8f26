//! The topology an installation runs on, composed from a site file: the
//! Linux site's services (dnsmasq, Caddy, HAProxy) started on this host,
//! the SSH shell that reboots and wipes hosts (the operator's key, host
//! keys pinned in the store), and the cluster's API from the kubeconfig
//! `openshift-install` writes into the install directory (loaded on first
//! use: it does not exist before the role configs are made).
//!
//! [`install_topology`] is what `harmony install` runs on, and what a
//! user's own program calls (see `examples/src/install_site.rs`).
//!
//! Switches: the site file's `switches:` built into their backends
//! ([`SiteSwitches`], contacting nothing until a step asks), each call
//! sent to the switch its ports are on. A site with switch ports but no
//! switch is refused, naming the field.

use std::path::PathBuf;
use std::sync::Arc;

use super::SiteFile;
use super::switches::{SiteSwitches, SiteSwitchesError};
use super::topology::{SitePlan, SiteTopologyError, plan};
use crate::domain::HostKeyPins;
use crate::infra::kube::{KubeApiConfig, LazyClusterApi};
use crate::infra::linux_site::{LinuxSiteError, LinuxSiteTopology};
use crate::infra::ssh::{SshConfig, SshError, SshShell};

/// The site an installation runs on.
pub type InstallTopology = LinuxSiteTopology<SiteSwitches, SshShell, LazyClusterApi>;

/// Why the installation's topology could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("{origin}: {field} = {value}: {reason}")]
    Field {
        origin: String,
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error(transparent)]
    Plan(#[from] Box<SiteTopologyError>),
    #[error("{origin}: ssh.operator_key_file: {source}")]
    Ssh {
        origin: String,
        #[source]
        source: Box<SshError>,
    },
    #[error(transparent)]
    Switches(#[from] Box<SiteSwitchesError>),
    #[error("{origin}: starting the site's services: {source}")]
    Start {
        origin: String,
        #[source]
        source: Box<LinuxSiteError>,
    },
}

/// Where the cluster's credentials are: `<install.dir>/auth/kubeconfig`.
pub fn kubeconfig_path(site: &SiteFile) -> Result<PathBuf, ComposeError> {
    let install = site
        .site()
        .install
        .as_ref()
        .ok_or_else(|| ComposeError::Field {
            origin: site.origin().to_string(),
            field: "install",
            value: "(missing)".into(),
            reason: "an installation needs `install.dir` (where openshift-install writes the \
                 cluster's credentials) and `install.openshift_install` or role configs \
                 already served under okd/"
                .into(),
        })?;
    Ok(install.dir.as_path().join("auth").join("kubeconfig"))
}

/// Checks what an installation needs from the site file without starting
/// anything: a Linux site, an `install` section, no switch ports.
pub fn check(site: &SiteFile) -> Result<(), ComposeError> {
    let field = |field, value: String, reason: &str| ComposeError::Field {
        origin: site.origin().to_string(),
        field,
        value,
        reason: reason.into(),
    };
    if !matches!(plan(site).map_err(Box::new)?, SitePlan::Linux(_)) {
        return Err(field(
            "services.backend",
            site.site().services.backend.as_str().into(),
            "`harmony install` drives a linux site; an OPNsense site is installed from a \
             program composing OpnSenseSite with its SSH shell and cluster API",
        ));
    }
    kubeconfig_path(site)?;
    if site.site().switches.is_empty()
        && let Some(h) = site
            .site()
            .hosts
            .pinned
            .iter()
            .find(|h| !h.switch_ports.is_empty())
    {
        return Err(field(
            "hosts.pinned[].switch_ports",
            h.mac.to_string(),
            "the site file lists no switch (`switches:`) to drive these ports",
        ));
    }
    Ok(())
}

/// Starts the site's services and composes the installation's topology:
/// the SSH shell (operator key, `pins`, the site's boot evidence for
/// reboot confirmation) and the lazily loaded cluster API. The services
/// keep running until [`LinuxSiteTopology::stop`] (hosts boot from them).
pub async fn install_topology(
    site: &SiteFile,
    pins: Arc<dyn HostKeyPins>,
) -> Result<InstallTopology, ComposeError> {
    check(site)?;
    let SitePlan::Linux(config) = plan(site).map_err(Box::new)? else {
        return Err(ComposeError::Field {
            origin: site.origin().to_string(),
            field: "services.backend",
            value: site.site().services.backend.as_str().into(),
            reason: "not a linux site".into(),
        });
    };
    let kubeconfig = kubeconfig_path(site)?;
    // Built before anything starts: a bad switch entry starts nothing.
    let switches = SiteSwitches::build(site).await.map_err(Box::new)?;
    let origin = site.origin().to_string();
    let ssh = SshConfig::new(site.site().ssh.operator_key_file.as_path());
    let shell = SshShell::new(ssh, pins).map_err(|source| ComposeError::Ssh {
        origin: origin.clone(),
        source: Box::new(source),
    })?;
    let cluster = LazyClusterApi::new(
        &format!("cluster {}", site.cluster_domain()),
        KubeApiConfig::new(kubeconfig),
    );
    let services =
        LinuxSiteTopology::start(config)
            .await
            .map_err(|source| ComposeError::Start {
                origin,
                source: Box::new(source),
            })?;
    let shell = shell.with_pxe_evidence(services.pxe_evidence());
    Ok(services
        .with_switch(switches)
        .with_shell(shell)
        .with_cluster(cluster))
}
