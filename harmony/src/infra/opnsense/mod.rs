//! An OPNsense firewall as the site's services, through its documented
//! REST API (`/work/shared/notes/vendor-apis.md` §1): DHCP reservations
//! and PXE boot options in Dnsmasq (`dhcp.rs`), DNS as Unbound host
//! overrides (`dns.rs`), the os-haproxy plugin as the load balancer
//! (`lb.rs`), LAGG devices as the `Switch` (`lagg.rs`). Every write reads
//! the state first: what already matches is `Unchanged` and sends nothing;
//! a change is followed by the module's `service/reconfigure`, as
//! OPNsense's CRUD calls only write `config.xml`.
//!
//! The TFTP and HTTP roots have no upload API: files are copied over SSH
//! and os-tftp / a Caddy snippet serve them (`files.rs`). Leases come from
//! `api/dnsmasq/leases/search`; wildcard names are Unbound `*` overrides.

pub mod client;
mod dhcp;
mod dns;
pub mod files;
mod lagg;
mod lb;

use std::sync::Arc;

pub use client::{Credentials, OpnSenseClient, OpnSenseConfig, OpnSenseError};
pub use dhcp::PxeBoot;
pub use files::{OpnSenseFilesConfig, caddy_snippet, firewall_host_id};

use crate::domain::{CapabilityError, HttpUrl, Topology, VlanId};

/// One OPNsense firewall as a site.
#[derive(Debug, Clone)]
pub struct OpnSenseSite {
    name: String,
    client: OpnSenseClient,
    /// The VLAN the firewall's untagged traffic belongs to: the only one a
    /// LAGG (which has no VLAN of its own) can be "in".
    untagged_vlan: Option<VlanId>,
    /// The SSH side (TFTP and HTTP roots), when configured.
    files: Option<Arc<files::OpnSenseFiles>>,
    /// The API's URL until files are configured, then the web root's.
    http_base: HttpUrl,
}

impl OpnSenseSite {
    pub fn new(name: &str, config: OpnSenseConfig) -> Result<Self, OpnSenseError> {
        Ok(Self {
            name: name.to_string(),
            http_base: config.base_url.clone(),
            client: OpnSenseClient::new(config)?,
            untagged_vlan: None,
            files: None,
        })
    }

    /// Adds the SSH file copy: the site now serves TFTP and HTTP files
    /// (the key file is read now, so a bad key fails here).
    pub fn with_files(mut self, config: OpnSenseFilesConfig) -> Result<Self, OpnSenseError> {
        let files = files::OpnSenseFiles::new(config)?;
        self.http_base = files.base_url().clone();
        self.files = Some(Arc::new(files));
        Ok(self)
    }

    pub(crate) fn http_base(&self) -> HttpUrl {
        self.http_base.clone()
    }

    /// Sets the VLAN of the firewall ports' untagged traffic (see
    /// [`crate::domain::Switch`]: LAGGs are "in" that VLAN only).
    pub fn with_untagged_vlan(mut self, vlan: VlanId) -> Self {
        self.untagged_vlan = Some(vlan);
        self
    }

    pub fn client(&self) -> &OpnSenseClient {
        &self.client
    }
}

impl Topology for OpnSenseSite {
    fn name(&self) -> &str {
        &self.name
    }

    /// Its Dnsmasq leases guide discovery (`api/dnsmasq/leases/search`).
    fn dhcp(&self) -> Option<&dyn crate::domain::DhcpServer> {
        Some(self)
    }
}

pub(crate) fn cap(capability: &'static str) -> impl Fn(OpnSenseError) -> CapabilityError {
    move |e| CapabilityError::new(capability, e.to_string())
}
