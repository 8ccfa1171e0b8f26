//! Throw-away network namespaces for integration tests.
//!
//! Include with `#[path = "support/netns.rs"] mod netns;`. Every namespace is
//! created by `ip netns add` under a unique name and deleted again when its
//! [`NetNs`] guard drops, also while a failing test unwinds. Traffic a test
//! sends inside one never reaches the host's real interfaces.
#![allow(dead_code)]

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use nix::sched::{CloneFlags, setns};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A named network namespace, deleted on drop.
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates `PREFIX-PID-N` (N counts up per process). The error text is
    /// `ip`'s stderr; see [`is_permission_error`].
    pub fn new(prefix: &str) -> Result<NetNs, String> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{}-{n}", std::process::id());
        run(Command::new("ip").args(["netns", "add", &name]))?;
        Ok(NetNs { name })
    }

    /// Like [`NetNs::new`], but on a permission error prints a loud
    /// `SKIPPED: ...` line to stderr and returns `None` (the caller returns
    /// early). Any other error panics.
    pub fn new_or_skip(prefix: &str, test: &str) -> Option<NetNs> {
        match NetNs::new(prefix) {
            Ok(ns) => Some(ns),
            Err(e) if is_permission_error(&e) => {
                // Straight to the process's stderr, not `eprintln!`: libtest
                // captures the latter and shows it only for failing tests.
                let _ = writeln!(
                    std::io::stderr(),
                    "\n==========\nSKIPPED: {test}: cannot create a network namespace \
                     (needs root / CAP_SYS_ADMIN): {e}\n==========\n"
                );
                None
            }
            Err(e) => panic!("{test}: creating a network namespace failed: {e}"),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/var/run/netns/NAME`, the bind mount `ip netns` keeps.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/var/run/netns").join(&self.name)
    }

    /// Runs `ip -n NAME ARGS...`; stdout on success, a description otherwise.
    pub fn ip(&self, args: &[&str]) -> Result<String, String> {
        run(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    /// Runs `ip -n NAME ARGS...` and panics on failure (test setup steps).
    pub fn ip_ok(&self, args: &[&str]) -> String {
        self.ip(args)
            .unwrap_or_else(|e| panic!("ip -n {} {}: {e}", self.name, args.join(" ")))
    }

    /// Runs `ip netns exec NAME ARGS...` (a command inside the namespace).
    pub fn exec(&self, args: &[&str]) -> Result<String, String> {
        run(Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args))
    }

    /// Creates a veth pair `a`/`b` inside the namespace and sets both up.
    pub fn add_veth(&self, a: &str, b: &str) -> Result<(), String> {
        self.ip(&["link", "add", "name", a, "type", "veth", "peer", "name", b])?;
        self.ip(&["link", "set", "dev", a, "up"])?;
        self.ip(&["link", "set", "dev", b, "up"])?;
        Ok(())
    }

    /// Creates a bridge `name` inside the namespace and sets it up.
    pub fn add_bridge(&self, name: &str) -> Result<(), String> {
        self.ip(&["link", "add", "name", name, "type", "bridge"])?;
        self.ip(&["link", "set", "dev", name, "up"])?;
        Ok(())
    }

    /// Moves `iface` (in this namespace) into namespace `other`.
    pub fn move_link(&self, iface: &str, other: &NetNs) -> Result<(), String> {
        self.ip(&["link", "set", "dev", iface, "netns", other.name()])
            .map(|_| ())
    }

    /// Moves the calling thread into the namespace (network only). Use from
    /// a dedicated `std::thread` that ends before the guard drops; never
    /// from a thread pool or the test's main thread.
    pub fn enter_current_thread(&self) -> Result<(), String> {
        let file =
            File::open(self.path()).map_err(|e| format!("{}: {e}", self.path().display()))?;
        setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns({}): {e}", self.name))
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Err(e) = run(Command::new("ip").args(["netns", "delete", &self.name])) {
            eprintln!(
                "warning: could not delete network namespace {}: {e}",
                self.name
            );
        }
    }
}

/// Whether an error from [`NetNs::new`] means "not allowed" rather than
/// "broken".
pub fn is_permission_error(err: &str) -> bool {
    let lower = err.to_lowercase();
    lower.contains("operation not permitted") || lower.contains("permission denied")
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let shown = format!("{cmd:?}");
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().map_err(|e| format!("{shown}: {e}"))?;
    if status.success() {
        Ok(String::from_utf8_lossy(&stdout).into_owned())
    } else {
        Err(format!(
            "{shown}: {status}: {}",
            String::from_utf8_lossy(&stderr).trim()
        ))
    }
}
