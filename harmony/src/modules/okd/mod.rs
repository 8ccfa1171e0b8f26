//! The OKD installation Scores: `OKDSetup01Inventory` (discovery) now;
//! bootstrap, control plane and workers come with the boot-artefact and
//! switch issues. `bond` plans each host's LACP bond (kernel arguments and
//! persistent NetworkManager keyfiles); `ignition` builds per-host Ignition
//! configs and runs `openshift-install create ignition-configs`.

pub mod bond;
pub mod ignition;
pub mod setup01_inventory;

pub use setup01_inventory::OKDSetup01Inventory;
