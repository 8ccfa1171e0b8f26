//! What the lab tests share (`lab_vm.rs`, `lab_install.rs`): the image
//! cache, the static agent, bounded programs in a lab namespace, a log's
//! tail. The lab itself (VMs, images, network) is `harmony::infra::lab`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use harmony::infra::lab::netns::LabNetns;
use harmony::infra::process::Service;

/// Where the Debian kernel packages are cached between runs
/// (`HARMONY_LAB_CACHE`, else `/var/tmp/harmony-lab`).
pub fn lab_cache() -> PathBuf {
    std::env::var_os("HARMONY_LAB_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/harmony-lab"))
}

/// The static agent `cargo agent` builds (`HARMONY_AGENT` overrides).
pub fn agent_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("HARMONY_AGENT") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/x86_64-unknown-linux-musl/agent/harmony-inventory-agent")
}

/// Prints the SKIPPED banner of `test`.
pub fn skipped(test: &str, why: &str) {
    eprintln!("\n==========\nSKIPPED: {test}: {why}\n==========\n");
}

/// A lab namespace for `test`, or `None` after the SKIPPED banner when a
/// program in `needs` is missing or namespaces cannot be made (not root).
pub fn netns_or_skip(test: &str, prefix: &str, needs: &[&str]) -> Option<LabNetns> {
    if let Some(p) = needs.iter().find(|p| !on_path(p)) {
        skipped(test, &format!("{p} is not installed (run .ci/setup)"));
        return None;
    }
    match LabNetns::create(prefix) {
        Ok(ns) => Some(ns),
        Err(e) if e.to_string().contains("Operation not permitted") => {
            skipped(test, &format!("cannot create a namespace: {e}"));
            None
        }
        Err(e) => panic!("{test}: {e}"),
    }
}

/// Whether `program` is on the PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// A long-running program in the namespace, killed with its group on drop,
/// and by `timeout -s KILL` after `hard_kill` if the test dies unwinding
/// nothing.
pub fn start_in(
    ns: &LabNetns,
    test: &str,
    hard_kill: Duration,
    argv: &[&str],
    log: &Path,
) -> Service {
    let secs = hard_kill.as_secs().to_string();
    ns.program("timeout")
        .args(["-s", "KILL", &secs])
        .args(argv)
        .start(log)
        .unwrap_or_else(|e| panic!("{test}: starting {}: {e}", argv[0]))
}

/// A bounded command in the namespace; its stdout, or the error text.
pub fn run_in(ns: &LabNetns, argv: &[&str], limit: Duration) -> Result<String, String> {
    ns.program(argv[0])
        .args(&argv[1..])
        .timeout(limit)
        .run_blocking()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .map_err(|e| e.to_string())
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let v: Vec<&str> = text.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

/// `cmd` over SSH as root on `host` from the namespace, with the
/// operator's `key` (keys only: `BatchMode`), tried up to `attempts` times
/// 5 s apart (a LAG being formed drops packets for a moment, as a real
/// switch's does); the last error otherwise.
pub fn ssh_in(
    ns: &LabNetns,
    key: &Path,
    host: &str,
    cmd: &str,
    attempts: u32,
) -> Result<String, String> {
    let key = key.display().to_string();
    let target = format!("root@{host}");
    let mut last = String::new();
    for attempt in 0..attempts.max(1) {
        if attempt > 0 {
            std::thread::sleep(Duration::from_secs(5));
        }
        match run_in(
            ns,
            &[
                "ssh",
                "-i",
                &key,
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "ConnectTimeout=20",
                "-o",
                "LogLevel=ERROR",
                &target,
                cmd,
            ],
            Duration::from_secs(60),
        ) {
            Ok(out) => return Ok(out),
            Err(e) => {
                eprintln!("ssh {target} {cmd:?}: attempt {} failed: {e}", attempt + 1);
                last = e;
            }
        }
    }
    Err(last)
}
