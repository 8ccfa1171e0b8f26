//! Network namespaces the lab creates and deletes: each [`LabNetns`] is made
//! by `ip netns add` under a unique name and removed when the guard drops
//! (also while a failing caller unwinds), taking its links with it. Programs
//! run inside through `ip netns exec` ([`LabNetns::program`]).

use std::net::{IpAddr, SocketAddr, TcpListener};
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

    /// `nameserver ADDR` for programs run with `ip netns exec` in this
    /// namespace: `ip` bind-mounts `/etc/netns/NAME/resolv.conf` over
    /// `/etc/resolv.conf` for them (ip-netns(8)). Removed with the namespace.
    pub fn set_resolver(&self, addr: IpAddr) -> Result<(), LabError> {
        let dir = self.etc_dir();
        std::fs::create_dir_all(&dir).map_err(|e| LabError::io(&dir, e))?;
        let file = dir.join("resolv.conf");
        crate::infra::fs::write_atomic(&file, format!("nameserver {addr}\n").as_bytes(), 0o644)
            .map_err(|e| LabError::io(&file, e))?;
        Ok(())
    }

    fn etc_dir(&self) -> PathBuf {
        PathBuf::from("/etc/netns").join(&self.name)
    }

    /// A TCP listener bound to `addr` inside the namespace: a short-lived
    /// thread enters it (`setns`), binds and returns the socket, which
    /// stays in the namespace it was made in whoever serves it.
    pub fn bind_tcp(&self, addr: SocketAddr) -> Result<TcpListener, LabError> {
        let path = self.path();
        let name = self.name.clone();
        let joined = std::thread::spawn(move || -> Result<TcpListener, LabError> {
            let f = std::fs::File::open(&path).map_err(|e| LabError::io(&path, e))?;
            nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| LabError::invalid("namespace", name.clone(), format!("setns: {e}")))?;
            TcpListener::bind(addr).map_err(|e| {
                LabError::invalid(
                    "listen address",
                    addr.to_string(),
                    format!("bind in {name}: {e}"),
                )
            })
        })
        .join();
        joined.map_err(|_| {
            LabError::invalid(
                "namespace",
                self.name.clone(),
                "the binding thread panicked",
            )
        })?
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
        let etc = self.etc_dir();
        if etc.exists()
            && let Err(e) = std::fs::remove_dir_all(&etc)
        {
            tracing::warn!(dir = %etc.display(), error = %e, "could not remove the namespace's files");
        }
        if let Err(e) = Program::new("ip")
            .args(["netns", "del", &self.name])
            .timeout(IP_TIMEOUT)
            .run_blocking()
        {
            tracing::warn!(netns = %self.name, error = %e, "could not delete the namespace");
        }
    }
}
