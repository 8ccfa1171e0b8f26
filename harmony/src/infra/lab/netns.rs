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

    /// A TCP listener bound to `addr` inside the namespace; the socket
    /// stays in the namespace it was made in whoever serves it.
    pub fn bind_tcp(&self, addr: SocketAddr) -> Result<TcpListener, LabError> {
        let name = self.name.clone();
        self.within(move || {
            TcpListener::bind(addr).map_err(|e| {
                LabError::invalid(
                    "listen address",
                    addr.to_string(),
                    format!("bind in {name}: {e}"),
                )
            })
        })
    }

    /// Sets the namespace's sysctl `/proc/sys/PATH...` (e.g. `["net",
    /// "ipv4", "conf", "lab0n1", "arp_ignore"]`) to `value`. Each segment is
    /// one path component (an interface name may hold a dot, as `sysctl`
    /// keys cannot), the value a number.
    pub fn set_sysctl(&self, path: &[&str], value: &str) -> Result<(), LabError> {
        let key = path.join("/");
        if path.first() != Some(&"net")
            || path
                .iter()
                .any(|s| s.is_empty() || *s == "." || *s == ".." || s.contains('/'))
        {
            return Err(LabError::invalid(
                "sysctl",
                key,
                "a path under net/ of plain components",
            ));
        }
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(LabError::invalid(
                "sysctl value",
                format!("{key}={value}"),
                "a number",
            ));
        }
        let file = PathBuf::from("/proc/sys").join(&key);
        let value = value.to_string();
        // /proc/sys/net is the opener's namespace's: open it from within.
        self.within(move || std::fs::write(&file, &value).map_err(|e| LabError::io(&file, e)))
    }

    /// Runs `f` on a short-lived thread that has entered the namespace
    /// (`setns`); what it opens or binds stays in the namespace.
    fn within<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, LabError> + Send + 'static,
    ) -> Result<T, LabError> {
        let path = self.path();
        let name = self.name.clone();
        std::thread::spawn(move || -> Result<T, LabError> {
            let ns = std::fs::File::open(&path).map_err(|e| LabError::io(&path, e))?;
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| LabError::invalid("namespace", name, format!("setns: {e}")))?;
            f()
        })
        .join()
        .map_err(|_| {
            LabError::invalid(
                "namespace",
                self.name.clone(),
                "the thread within it panicked",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sysctl_outside_net_or_with_a_path_trick_is_refused_before_anything_is_written() {
        // Never made: the checks come before the namespace is entered.
        let ns = std::mem::ManuallyDrop::new(LabNetns {
            name: "labtest-never-made".into(),
        });
        for (path, value, needle) in [
            (&["kernel", "panic"][..], "1", "under net/"),
            (&["net", "ipv4", "conf", "..", "x"][..], "1", "under net/"),
            (
                &["net", "ipv4", "conf", "a/b", "arp_ignore"][..],
                "1",
                "under net/",
            ),
            (
                &["net", "ipv4", "conf", "", "arp_ignore"][..],
                "1",
                "under net/",
            ),
            (&[][..], "1", "under net/"),
            (
                &["net", "ipv4", "conf", "lab0n1", "arp_ignore"][..],
                "8\n1",
                "a number",
            ),
            (
                &["net", "ipv4", "conf", "lab0n1", "arp_ignore"][..],
                "",
                "a number",
            ),
        ] {
            let e = ns.set_sysctl(path, value).unwrap_err().to_string();
            assert!(e.contains(needle), "{path:?}={value:?}: {e}");
        }
    }
}
