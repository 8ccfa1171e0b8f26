//! The OKD installation Scores: `OKDSetup01Inventory` (discovery) now;
//! bootstrap, control plane and workers come with the boot-artefact and
//! switch issues.

pub mod setup01_inventory;

pub use setup01_inventory::OKDSetup01Inventory;
