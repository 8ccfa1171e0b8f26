//! Peers that open connections and never finish a request cannot make the
//! real agent stop answering or stop shutting down (issue 8, item 3): with
//! 1 100 half-sent requests held under a 1 024 file limit, `GET /` answers
//! within a 1 s client deadline and SIGTERM ends the agent within 5 s; a
//! half-sent request is dropped after the header-read timeout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/http.rs"]
mod http;
#[path = "support/sysfs.rs"]
mod sysfs;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harmony_inventory_agent::model::Inventory;
use http::{ChildGuard, free_port, wait_ready};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const AGENT: &str = env!("CARGO_BIN_EXE_harmony-inventory-agent");
const HELD: usize = 1100;
const FILE_LIMIT: u64 = 1024;
/// A request line and a header, never finished.
const HALF_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Held: ";

fn fixture() -> sysfs::FixtureRoot {
    let f = sysfs::FixtureRoot::new();
    f.file("/proc/sys/kernel/hostname", "held\n");
    f.file("/proc/meminfo", "MemTotal: 1024 kB\n");
    f
}

/// Starts the agent on loopback under `prlimit --nofile=SOFT:HARD` (both
/// 1 024: the agent raises its soft limit to the hard one at start).
fn spawn_agent(root: &std::path::Path, extra: &[&str]) -> (ChildGuard, SocketAddr) {
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let child = Command::new("prlimit")
        .arg(format!("--nofile={FILE_LIMIT}:{FILE_LIMIT}"))
        .arg("--")
        .arg(AGENT)
        .arg("--root")
        .arg(root)
        .args(["--listen", &addr.to_string(), "--lldp-window", "0"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn prlimit + agent");
    let guard = ChildGuard(child);
    assert!(
        wait_ready(addr, Duration::from_secs(20)),
        "agent never became ready on {addr}"
    );
    (guard, addr)
}

/// `GET /` with one deadline for connect, send and the whole response.
fn get_within(addr: SocketAddr, deadline: Duration) -> std::io::Result<(u16, Vec<u8>)> {
    assert!(addr.ip().is_loopback());
    let start = Instant::now();
    let left = |start: Instant| {
        deadline
            .checked_sub(start.elapsed())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| std::io::Error::new(ErrorKind::TimedOut, "deadline passed"))
    };
    let mut s = TcpStream::connect_timeout(&addr, left(start)?)?;
    s.set_write_timeout(Some(left(start)?))?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        s.set_read_timeout(Some(left(start)?))?;
        match s.read(&mut buf)? {
            0 => break,
            n => raw.extend_from_slice(&buf[..n]),
        }
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let status = String::from_utf8_lossy(&raw[..split])
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    Ok((status, raw[split + 4..].to_vec()))
}

fn nofile_of(pid: u32) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .skip(3)
        .take(2)
        .collect::<Vec<_>>()
        .join(":")
}

#[test]
fn held_half_requests_neither_stop_get_nor_shutdown() {
    // This process holds the 1 100 client sockets.
    let own = rlimit::increase_nofile_limit(u64::MAX).unwrap();
    assert!(
        own >= HELD as u64 + 64,
        "test needs a file limit above {HELD}"
    );

    let f = fixture();
    let (mut agent, addr) = spawn_agent(f.path(), &[]);
    let pid = agent.0.id();
    assert_eq!(nofile_of(pid), format!("{FILE_LIMIT}:{FILE_LIMIT}"));

    let mut held = Vec::with_capacity(HELD);
    let mut refused = None;
    for _ in 0..HELD {
        // An agent that stops accepting makes connects time out: stop there.
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(mut s) => {
                s.write_all(HALF_REQUEST).unwrap();
                held.push(s);
            }
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    assert_eq!(held.len(), HELD, "connection refused: {refused:?}");

    let (status, body) = get_within(addr, Duration::from_secs(1))
        .expect("GET / answers within 1 s while 1 100 half-requests are held");
    assert_eq!(status, 200);
    let inv: Inventory = serde_json::from_slice(&body).unwrap();
    assert_eq!(inv.hostname.as_deref(), Some("held"));

    // Still holding them all: SIGTERM ends the agent within 5 s.
    kill(Pid::from_raw(i32::try_from(pid).unwrap()), Signal::SIGTERM).unwrap();
    let start = Instant::now();
    let mut status = None;
    while start.elapsed() < Duration::from_secs(5) {
        if let Some(s) = agent.0.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = status.expect("agent still running 5 s after SIGTERM");
    assert!(status.success(), "clean exit after SIGTERM: {status}");
    drop(held);
}

#[test]
fn a_half_sent_request_is_dropped_after_the_header_timeout() {
    let f = fixture();
    let (_agent, addr) = spawn_agent(f.path(), &["--header-timeout", "1"]);
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    s.write_all(HALF_REQUEST).unwrap();
    // The agent closes it; without a timeout this read would block for 10 s.
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 1024];
    let closed = match s.read(&mut buf) {
        Ok(_) => true,
        Err(e) => e.kind() == ErrorKind::ConnectionReset,
    };
    assert!(
        closed,
        "connection still open after the header-read timeout"
    );
}
