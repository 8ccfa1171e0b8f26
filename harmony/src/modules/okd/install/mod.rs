//! The OKD installation after discovery: `OKDSetup02Bootstrap`,
//! `OKDSetup03ControlPlane`, `OKDSetup04Workers` and the
//! `OKDInstallationScore` composing them (`scores`), over one site with
//! every capability ([`scores::InstallSite`]).
//!
//! - `plan`: the cluster's settings and each host's plan (reservation,
//!   install disk, bond, switch ports) from the Inventory;
//! - `host_steps`: steps on a host's DHCP, DNS, load balancer, reboots,
//!   the files it fetches, its install disk and its phase;
//! - `cluster_steps`: steps on the cluster's API (the API answering,
//!   `bootstrap-complete`, CSR approval, masters unschedulable);
//! - `role_configs`: the three role Ignition configs, given or made by
//!   `openshift-install create ignition-configs`, on the HTTP root;
//! - `scores`: the four Scores.

pub mod cluster_steps;
pub mod host_steps;
pub mod plan;
pub mod role_configs;
pub mod scores;

pub use plan::{
    ClusterSettings, HostPorts, InstallHost, InstallPlanError, InstallSpec, InstallTiming,
    Reservation, install_hosts,
};
pub use role_configs::{InstallerJob, RoleConfigSource};
pub use scores::{
    InstallSite, OKDInstallationScore, OKDSetup02Bootstrap, OKDSetup03ControlPlane,
    OKDSetup04Workers,
};
