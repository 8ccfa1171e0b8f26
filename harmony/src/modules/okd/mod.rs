//! The OKD installation Scores and their planning.
//!
//! - `setup01_inventory`: `OKDSetup01Inventory`, discovery until the expected
//!   hosts are known.
//! - `bond`: plans each host's LACP bond (kernel arguments and persistent
//!   NetworkManager keyfiles) from its inventory.
//! - `boot_plan`: one host's boot plan (install disk, bond, network
//!   arguments) from its typed hardware and the site's network policy.
//! - `ignition`: per-host Ignition configs; runs `openshift-install create
//!   ignition-configs`.
//! - `artefacts`: renders and writes every boot file of the cluster
//!   (`BootArtefacts` Score).
//!
//! Bootstrap, control plane and workers (`OKDSetup02..04`) come with the
//! DHCP/DNS/switch issues.

pub mod artefacts;
pub mod bond;
pub mod boot_plan;
pub mod ignition;
pub mod install;
pub mod setup01_inventory;

pub use artefacts::BootArtefacts;
pub use boot_plan::{BootPlan, BootPlanError, HostNetwork, SiteNetworks, plan_boot};
pub use setup01_inventory::OKDSetup01Inventory;
