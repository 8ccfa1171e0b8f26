//! The static musl build needs no libc and no files: it starts and serves
//! `GET /` inside a root holding nothing but the binary and bind-mounted
//! `/proc` and `/sys` (a private mount namespace, so nothing leaks).
//!
//! The binary comes from `cargo agent` (the test command builds it first);
//! `HARMONY_AGENT_STATIC` overrides its path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/http.rs"]
mod http;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use harmony_inventory_agent::model::Inventory;
use http::{ChildGuard, free_port, get, wait_ready};

fn static_binary() -> PathBuf {
    let path = std::env::var_os("HARMONY_AGENT_STATIC")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/x86_64-unknown-linux-musl/agent/harmony-inventory-agent")
        });
    assert!(
        path.exists(),
        "static agent not built at {}: run `cargo agent` first (the README's test command does)",
        path.display()
    );
    path
}

/// ELF program headers: a static executable has no PT_INTERP and no PT_DYNAMIC.
fn program_header_types(elf: &[u8]) -> Vec<u32> {
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(elf[4], 2, "64-bit");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum)
        .map(|i| {
            let o = phoff + i * phentsize;
            u32::from_le_bytes(elf[o..o + 4].try_into().unwrap())
        })
        .collect()
}

#[test]
fn binary_is_static() {
    let bin = static_binary();
    let types = program_header_types(&std::fs::read(&bin).unwrap());
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    assert!(!types.contains(&PT_INTERP), "has an ELF interpreter");
    assert!(!types.contains(&PT_DYNAMIC), "has a dynamic section");
    let file = Command::new("file").arg(&bin).output().unwrap();
    let desc = String::from_utf8_lossy(&file.stdout);
    assert!(
        desc.contains("statically linked") || desc.contains("static-pie linked"),
        "file says: {desc}"
    );
}

#[test]
fn serves_from_an_empty_root() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED serves_from_an_empty_root: needs root (unshare -m, mount, chroot)");
        return;
    }
    let bin = static_binary();
    let root = tempfile::tempdir().unwrap();
    std::fs::copy(&bin, root.path().join("agent")).unwrap();
    for d in ["proc", "sys"] {
        std::fs::create_dir(root.path().join(d)).unwrap();
    }
    let r = root.path().display().to_string();
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    // unshare -m: a private mount namespace; exec chains so the child is the agent.
    let script = format!(
        "mount --make-rprivate / && mount --bind /proc {r}/proc && mount --rbind /sys {r}/sys \
         && exec chroot {r} /agent --listen {addr} --lldp-window 0"
    );
    let child = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare");
    let mut guard = ChildGuard(child);
    if !wait_ready(addr, Duration::from_secs(20)) {
        let _ = guard.0.kill();
        let out = guard.0.wait_with_output_ref();
        panic!("agent in empty root never answered: {out}");
    }
    let res = get(addr, "/").unwrap();
    assert_eq!(res.status, 200);
    let inv: Inventory = serde_json::from_slice(&res.body).unwrap();
    // It read the real /proc and /sys through the bind mounts.
    assert!(inv.cpu.threads.unwrap_or(0) >= 1);
    assert!(inv.memory.total_bytes.unwrap_or(0) > 0);
    assert!(!inv.network.is_empty());
    // The root holds only the binary and the two mount points.
    let mut entries: Vec<String> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, ["agent", "proc", "sys"]);
}

trait WaitRef {
    fn wait_with_output_ref(&mut self) -> String;
}

impl WaitRef for std::process::Child {
    fn wait_with_output_ref(&mut self) -> String {
        use std::io::Read;
        let _ = self.wait();
        let mut s = String::new();
        if let Some(e) = self.stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}
