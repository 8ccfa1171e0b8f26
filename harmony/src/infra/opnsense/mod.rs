//! An OPNsense firewall as the site's services, through its documented
//! REST API (`/work/shared/notes/vendor-apis.md` §1): DHCP reservations
//! and PXE boot options in Dnsmasq (`dhcp.rs`), DNS as Unbound host
//! overrides (`dns.rs`), the os-haproxy plugin as the load balancer
//! (`lb.rs`), LAGG devices as the `Switch` (`lagg.rs`). Every write reads
//! the state first: what already matches is `Unchanged` and sends nothing;
//! a change is followed by the module's `service/reconfigure`, as
//! OPNsense's CRUD calls only write `config.xml`.
//!
//! Not expressible here: TFTP files (os-tftp has no upload API), the DHCP
//! leases (no documented Dnsmasq lease API), wildcard DNS names.

pub mod client;
mod dhcp;
mod dns;
mod lagg;
mod lb;

use async_trait::async_trait;

pub use client::{Credentials, OpnSenseClient, OpnSenseConfig, OpnSenseError};
pub use dhcp::PxeBoot;

use crate::domain::{
    CapResult, CapabilityError, Change, RelativePath, TftpServer, Topology, VlanId,
};

/// One OPNsense firewall as a site.
#[derive(Debug, Clone)]
pub struct OpnSenseSite {
    name: String,
    client: OpnSenseClient,
    /// The VLAN the firewall's untagged traffic belongs to: the only one a
    /// LAGG (which has no VLAN of its own) can be "in".
    untagged_vlan: Option<VlanId>,
}

impl OpnSenseSite {
    pub fn new(name: &str, config: OpnSenseConfig) -> Result<Self, OpnSenseError> {
        Ok(Self {
            name: name.to_string(),
            client: OpnSenseClient::new(config)?,
            untagged_vlan: None,
        })
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
}

pub(crate) fn cap(capability: &'static str) -> impl Fn(OpnSenseError) -> CapabilityError {
    move |e| CapabilityError::new(capability, e.to_string())
}

#[async_trait]
impl TftpServer for OpnSenseSite {
    /// os-tftp has no upload or list API (its model is only `enabled` and
    /// `listen`): files must be copied out of band.
    async fn put_tftp_file(&self, path: &RelativePath, _contents: &[u8]) -> CapResult<Change> {
        Err(CapabilityError::new(
            "tftp",
            format!(
                "putting {path} is not supported by this backend: OPNsense's os-tftp plugin has \
                 no upload API; copy the file to /usr/local/tftp out of band"
            ),
        ))
    }
}
