//! Collectors: read the host's hardware from `/proc`, `/sys`, the SMBIOS
//! table and `/run/udev` under a [`SysRoot`], and build an [`Inventory`].
//!
//! A collector never fails the whole inventory: what it cannot read becomes
//! `null` plus a [`Warning`] naming the source.

pub mod cpu;
pub mod fs;
pub mod lldp;
pub mod memory;
pub mod network;
pub mod smbios;
pub mod storage;
pub mod system;

use std::path::PathBuf;
use std::time::SystemTime;

use crate::model::{Inventory, SCHEMA_VERSION, Warning};
pub use fs::SysRoot;

/// Warnings gathered during one collection.
#[derive(Debug, Default)]
pub struct Warnings(Vec<Warning>);

impl Warnings {
    pub fn push(&mut self, source: impl Into<String>, message: impl ToString) {
        let w = Warning {
            source: source.into(),
            message: message.to_string(),
        };
        tracing::debug!(source = %w.source, message = %w.message, "collector warning");
        self.0.push(w);
    }

    pub fn into_vec(self) -> Vec<Warning> {
        self.0
    }
}

/// Collects a full inventory from one root.
#[derive(Debug, Clone)]
pub struct Collector {
    root: SysRoot,
    /// Shared by clones: the refresh task collects with a clone.
    memory_blocks: std::sync::Arc<memory::BlockCache>,
}

impl Collector {
    /// A collector over `root` (`/` for the running host, a fixture tree in tests).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: SysRoot::new(root),
            memory_blocks: std::sync::Arc::default(),
        }
    }

    pub fn root(&self) -> &SysRoot {
        &self.root
    }

    /// One full collection. Cheap (file reads only, no subprocess, no waiting).
    pub fn collect(&self) -> Inventory {
        let mut warnings = Warnings::default();
        let smbios = match smbios::read(&self.root) {
            Ok(data) => Some(data),
            Err(e) => {
                warnings.push("smbios", &e);
                None
            }
        };
        let cpu = cpu::collect(&self.root, smbios.as_ref(), &mut warnings);
        let system = system::collect(&self.root, smbios.as_ref(), &cpu, &mut warnings);
        let memory = memory::collect(
            &self.root,
            smbios.as_ref(),
            &self.memory_blocks,
            &mut warnings,
        );
        let storage = storage::collect(&self.root, &mut warnings);
        let network = network::collect(&self.root, &mut warnings);
        let hostname = self.root.attr("/proc/sys/kernel/hostname");
        if hostname.is_none() {
            warnings.push("/proc/sys/kernel/hostname", "hostname unreadable");
        }
        Inventory {
            schema_version: SCHEMA_VERSION,
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            collected_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            hostname,
            warnings: warnings.into_vec(),
            system,
            cpu,
            memory,
            storage,
            network,
        }
    }
}
