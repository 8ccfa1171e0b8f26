//! Discovery scan benchmark against nmap, on loopback only.
//!
//! 50 tiny agents on scattered addresses of 127.0.0.0/16, one port; Harmony
//! scans the /16 in this process, then `nmap -sT -T5 -n -Pn -p PORT --open
//! 127.0.0.0/16` does. This times the scan alone; `.ci/bench-scan` compares
//! the two programs end to end, as a user runs them, with real agents.
//!
//! `cargo run --release -p harmony --example scan_bench`
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/discovery.rs"]
mod support;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Instant;

use harmony::modules::discovery::{ScanConfig, Scanner};

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let agents: BTreeSet<IpAddr> = (0..50u32)
        .map(|i| {
            let n = 1 + i * 1307 % 65_000;
            IpAddr::V4(Ipv4Addr::new(
                127,
                0,
                (n >> 8) as u8,
                (n & 0xff).max(1) as u8,
            ))
        })
        .collect();
    assert_eq!(agents.len(), 50);
    let port = support::free_port(*agents.iter().next().unwrap());
    rt.block_on(async {
        for (i, ip) in agents.iter().enumerate() {
            let doc = support::json(&support::inventory(i as u16));
            support::serve(SocketAddr::new(*ip, port), support::Behaviour::Json(doc))
                .await
                .unwrap();
        }
    });

    let range = "127.0.0.0/16".parse().unwrap();
    let report = rt
        .block_on(Scanner::new(ScanConfig::new(port)).scan(range))
        .unwrap();
    let found: BTreeSet<IpAddr> = report.found.iter().map(|h| h.ip).collect();
    let recall = found.intersection(&agents).count();
    let ours = report.elapsed.as_secs_f64();
    println!(
        "harmony (in-process scan): {ours:.3} s, found {recall}/50 (extra {}), addresses {}, refused {}, timeouts {}, local errors {}, given up {}, concurrency {}",
        found.len() - recall,
        report.addresses,
        report.refused,
        report.connect_timeouts,
        report.local_errors,
        report.given_up.len(),
        report.concurrency
    );

    let started = Instant::now();
    let out = Command::new("nmap")
        .args([
            "-sT",
            "-T5",
            "-n",
            "-Pn",
            "-p",
            &port.to_string(),
            "--open",
            "127.0.0.0/16",
            "-oG",
            "-",
        ])
        .output();
    let nmap_secs = started.elapsed().as_secs_f64();
    match out {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            let open = text
                .lines()
                .filter(|l| l.contains(&format!("{port}/open/")))
                .count();
            println!("nmap:    {nmap_secs:.3} s, found {open}/50");
            println!("speed-up: {:.1}x", nmap_secs / ours);
        }
        Ok(out) => println!("nmap failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => println!("nmap not run ({e}): apt-get install -y nmap"),
    }
}
