//! Harmony: takes a rack of unknown servers to a running OKD cluster.
//!
//! The library holds the domain (Score, Interpret, Topology and its
//! capability traits, Inventory, Maestro), the implementations of those
//! capabilities against real systems (`infra`), the Scores themselves
//! (`modules`), the SQLite inventory store (`store`) and the command line
//! the `harmony` binary dispatches to (`cli`). See
//! `ARCHITECTURE.md` at the workspace root for the map.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod cli;
pub mod domain;
pub mod infra;
pub mod modules;
pub mod site;
pub mod store;

/// The agent's wire format, which discovery reads (untrusted until validated).
pub use harmony_inventory_agent::model as inventory_model;
