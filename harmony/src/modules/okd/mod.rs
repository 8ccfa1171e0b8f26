//! The OKD installation Scores and their planning.
//!
//! - `setup01`: `OKDSetup01Inventory`, discovery until the expected hosts
//!   are known and the site file's roles; `OKDSetup01Site`, the same after
//!   the candidates' ports in access, the OS assets and the discovery boot
//!   files published.
//! - `bond`: plans each host's LACP bond (kernel arguments and persistent
//!   NetworkManager keyfiles) from its inventory.
//! - `boot_plan`: one host's boot plan (install disk, bond, network
//!   arguments) from its typed hardware and the site's network policy.
//! - `ignition`: per-host Ignition configs; runs `openshift-install create
//!   ignition-configs`.
//! - `artefacts`: renders and writes every boot file of the cluster
//!   (`BootArtefacts` Score).
//!
//! - `install`: `OKDSetup02Bootstrap`, `OKDSetup03ControlPlane`,
//!   `OKDSetup04Workers` and `OKDInstallationScore`.

pub mod artefacts;
pub mod bond;
pub mod boot_plan;
pub mod ignition;
pub mod install;
pub mod setup01;

pub use artefacts::BootArtefacts;
pub use boot_plan::{BootPlan, BootPlanError, HostNetwork, SiteNetworks, plan_boot};
pub use setup01::{OKDSetup01Inventory, OKDSetup01Site};
