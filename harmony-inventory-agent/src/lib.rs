//! `harmony-inventory-agent`: the hardware inventory agent that runs in the
//! RAM-only discovery environment of every unknown server and serves the
//! host's hardware as JSON on `GET /`.
//!
//! - [`model`] is the wire format (always built; Harmony depends on it alone,
//!   with `default-features = false`).
//! - `collect` (feature `agent`) reads `/proc`, `/sys`, the SMBIOS table and
//!   LLDP frames under a configurable root.
//! - `server` (feature `agent`) is the read-only HTTP endpoint with its cache.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod model;

#[cfg(feature = "agent")]
pub mod collect;
#[cfg(feature = "agent")]
pub mod server;
