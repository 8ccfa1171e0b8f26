//! The scan's memory is bounded whatever the number of chatty peers: 1 000
//! loopback peers each serving ~1 MiB of valid JSON (a distinct agent
//! document padded with whitespace), scanned by the real `harmony inventory
//! discover` process; the scan's memory, its peak resident memory (VmHWM)
//! above the same binary's own footprint (its peak when it scans nothing:
//! the debug binary's code and start-up, which grow with every feature),
//! stays under 64 MiB, and every host is found and stored. Loopback only
//! (127.1.0.0/22).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/discovery.rs"]
mod support;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PEERS: usize = 1000;
/// ~1 MiB documents, just under the 1 MiB per-host cap.
const PADDING: usize = (1 << 20) - (16 << 10);
const LIMIT_KIB: u64 = 64 * 1024;

fn peer(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 1, (i / 250) as u8, (1 + i % 250) as u8))
}

/// Serves `{` + padding + the rest of `doc` on every connection.
async fn serve(listener: TcpListener, doc: Arc<Vec<u8>>, pad: Arc<Vec<u8>>) {
    loop {
        let Ok((s, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        tokio::spawn(answer(s, doc.clone(), pad.clone()));
    }
}

async fn answer(mut s: TcpStream, doc: Arc<Vec<u8>>, pad: Arc<Vec<u8>>) {
    let mut buf = [0u8; 4096];
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") && seen.len() < 65_536 {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{{",
        doc.len() + pad.len()
    );
    let _ = s.write_all(head.as_bytes()).await;
    let _ = s.write_all(&pad).await;
    let _ = s.write_all(&doc[1..]).await;
    let _ = s.shutdown().await;
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_thousand_one_mib_peers_fit_in_64_mib_and_all_are_found() {
    // The peers' listeners and connections, and the scanner's sockets.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let port = support::free_port(peer(0));
    let pad = Arc::new(vec![b' '; PADDING]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for i in 0..PEERS {
            let doc = Arc::new(support::json(&support::inventory(i as u16 + 1)));
            assert!(doc[0] == b'{' && doc.len() < 16 << 10);
            let l = TcpListener::bind(SocketAddr::new(peer(i), port))
                .await
                .unwrap();
            tokio::spawn(serve(l, doc, pad.clone()));
        }
    });

    let dir = tempfile::tempdir().unwrap();
    // The binary's own footprint: the same command with nothing to find
    // (no host expected), measured as this process's first child.
    let idle = Command::new(env!("CARGO_BIN_EXE_harmony"))
        .args(["inventory", "discover", "--network", "127.1.0.0/22"])
        .args(["--port", &port.to_string(), "--expected", "0", "--db"])
        .arg(dir.path().join("idle.sqlite3"))
        .output()
        .unwrap();
    assert!(
        idle.status.success(),
        "{}",
        String::from_utf8_lossy(&idle.stderr)
    );
    let baseline = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .unwrap()
        .max_rss() as u64;
    assert!(baseline > 0, "no footprint measured");
    let db = dir.path().join("inventory.sqlite3");
    let out = std::fs::File::create(dir.path().join("out")).unwrap();
    let err = std::fs::File::create(dir.path().join("err")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_harmony"))
        .args(["inventory", "discover", "--network", "127.1.0.0/22"])
        .args([
            "--port",
            &port.to_string(),
            "--expected",
            &PEERS.to_string(),
        ])
        .args(["--timeout", "300s", "--interval", "1s", "--db"])
        .arg(&db)
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak = 0u64;
    // Bounded by the child's own --timeout (300 s) and this deadline.
    let deadline = Instant::now() + Duration::from_secs(600);
    let status = loop {
        if let Some(kib) = vm_hwm_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("harmony still running after 600 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(dir.path().join("err")).unwrap();
    assert!(status.success(), "{status}: {stderr}");

    let list = Command::new(env!("CARGO_BIN_EXE_harmony"))
        .args(["inventory", "list", "--json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(list.status.success());
    let hosts: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let ips: BTreeSet<String> = hosts
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["ip"].as_str().map(str::to_string))
        .collect();
    let want: BTreeSet<String> = (0..PEERS).map(|i| peer(i).to_string()).collect();
    assert_eq!(
        want.difference(&ips).count(),
        0,
        "missing: {:?}",
        want.difference(&ips).take(10).collect::<Vec<_>>()
    );
    eprintln!(
        "harmony peak RSS (VmHWM): {peak} KiB for {PEERS} peers of 1 MiB; \
         {baseline} KiB scanning nothing; the scan's own {} KiB",
        peak.saturating_sub(baseline)
    );
    assert!(peak > baseline, "VmHWM never read ({peak} KiB)");
    assert!(
        peak - baseline < LIMIT_KIB,
        "the scan's peak RSS {peak} KiB - {baseline} KiB >= {LIMIT_KIB} KiB\n{stderr}"
    );
    drop(rt);
}
