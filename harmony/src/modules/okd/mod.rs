//! The OKD installation Scores and their planning.
//!
//! - `setup01_inventory`: `OKDSetup01Inventory`, discovery until the expected
//!   hosts are known.
//! - `bond`: plans each host's LACP bond (kernel arguments and persistent
//!   NetworkManager keyfiles) from its inventory.
//! - `ignition`: per-host Ignition configs; runs `openshift-install create
//!   ignition-configs`.
//! - `artefacts`: renders and writes every boot file of the cluster
//!   (`BootArtefacts` Score).
//!
//! Bootstrap, control plane and workers (`OKDSetup02..04`) come with the
//! DHCP/DNS/switch issues.

pub mod artefacts;
pub mod bond;
pub mod ignition;
pub mod setup01_inventory;

pub use artefacts::BootArtefacts;
pub use setup01_inventory::OKDSetup01Inventory;
