//! Network namespaces the lab creates and deletes: each [`LabNetns`] is made
//! by `ip netns add` under a unique name and removed when the guard drops
//! (also while a failing caller unwinds), taking its links with it. Programs
//! run inside through `ip netns exec` ([`LabNetns::program`]).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::LabError;
use crate::infra::process::Program;

static COUNTER: AtomicUsize = AtomicUsize::new(0);
const IP_TIMEOUT: Duration = Duration::from_secs(10);

/// A network namespace owned by the lab, deleted on drop.
#[derive(Debug)]
pub struct LabNetns {
    name: String,
}

impl LabNetns {
    /// Creates `PREFIX-PID-N`. `prefix` is 1-8 of `[a-z0-9]`.
    pub fn create(prefix: &str) -> Result<LabNetns, LabError> {
        if prefix.is_empty()
            || prefix.len() > 8
            || !prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(LabError::invalid("netns prefix", prefix, "1-8 of [a-z0-9]"));
        }
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{}-{n}", std::process::id());
        Program::new("ip")
            .args(["netns", "add", &name])
            .timeout(IP_TIMEOUT)
            .run_blocking()
            .map_err(|e| LabError::process(format!("creating namespace {name}"), e))?;
        let ns = LabNetns { name };
        ns.ip(&["link", "set", "dev", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/var/run/netns/NAME`, the bind mount `ip netns` keeps.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/var/run/netns").join(&self.name)
    }

    /// `ip -n NS ARGS...`, bounded; returns stdout.
    pub fn ip(&self, args: &[&str]) -> Result<String, LabError> {
        let out = Program::new("ip")
            .args(["-n", &self.name])
            .args(args)
            .timeout(IP_TIMEOUT)
            .run_blocking()
            .map_err(|e| LabError::process(format!("ip in {}", self.name), e))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A program that runs inside the namespace (`ip netns exec NS PROG`).
    pub fn program(&self, program: &str) -> Program {
        Program::new("ip").args(["netns", "exec", &self.name, program])
    }

    /// A Linux bridge with `cidr` (e.g. `198.51.100.1/24`) on it, up.
    pub fn add_bridge(&self, name: &str, cidr: &str) -> Result<(), LabError> {
        self.ip(&["link", "add", name, "type", "bridge"])?;
        self.ip(&["addr", "add", cidr, "dev", name])?;
        self.ip(&["link", "set", "dev", name, "up"])?;
        Ok(())
    }

    /// A tap device enslaved to `bridge`, up.
    pub fn add_tap(&self, tap: &str, bridge: &str) -> Result<(), LabError> {
        self.ip(&["tuntap", "add", "dev", tap, "mode", "tap"])?;
        self.ip(&["link", "set", "dev", tap, "master", bridge])?;
        self.ip(&["link", "set", "dev", tap, "up"])?;
        Ok(())
    }
}

impl Drop for LabNetns {
    fn drop(&mut self) {
        if let Err(e) = Program::new("ip")
            .args(["netns", "del", &self.name])
            .timeout(IP_TIMEOUT)
            .run_blocking()
        {
            tracing::warn!(netns = %self.name, error = %e, "could not delete the namespace");
        }
    }
}
