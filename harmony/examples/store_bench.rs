//! Upsert throughput of the SQLite inventory store.
//!
//! `cargo run --release -p harmony --example store_bench -- [N] [BATCH]`
//! (N hosts, default 10 000; batch size for `upsert_many`, default 500).
//! Each host carries a ~2 KB agent document and 2 to 4 MACs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/store_common.rs"]
mod common;

use std::time::Instant;

use harmony::domain::{DiscoveredHost, InventoryRepository, UpsertResult};
use harmony::store::SqliteStore;

fn hosts(n: u32) -> Vec<DiscoveredHost> {
    (0..n)
        .map(|i| {
            let macs = (1..=(2 + (i % 3) as u8))
                .map(|k| common::mac(i, k))
                .collect();
            let ip = format!("10.{}.{}.{}", i >> 16 & 0xff, i >> 8 & 0xff, i & 0xff);
            common::host_with(i, &ip, macs)
        })
        .collect()
}

fn report(label: &str, n: usize, secs: f64) {
    println!(
        "{label:<44} {n:>7} hosts in {secs:>7.3} s = {:>9.0} hosts/s",
        n as f64 / secs
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().map_or(10_000, |a| a.parse().expect("N"));
    let batch: usize = args.next().map_or(500, |a| a.parse().expect("BATCH"));
    let hosts = hosts(n);
    let avg = hosts.iter().map(|h| h.raw_json.len()).sum::<usize>() / hosts.len().max(1);
    println!("{n} hosts, average agent document {avg} bytes, batch {batch}");
    let dir = tempfile::tempdir().expect("tempdir");

    for label in ["new", "re-seen (updates)"] {
        let path = dir.path().join("one.sqlite3");
        let store = SqliteStore::open(&path).expect("open");
        let t = Instant::now();
        for h in &hosts {
            let r = store
                .upsert_discovered(h, std::time::SystemTime::now())
                .expect("upsert");
            assert!(!matches!(r, UpsertResult::Conflict { .. }));
        }
        report(
            &format!("(a) one transaction per host, {label}"),
            hosts.len(),
            t.elapsed().as_secs_f64(),
        );
    }
    for label in ["new", "re-seen (updates)"] {
        let path = dir.path().join("many.sqlite3");
        let store = SqliteStore::open(&path).expect("open");
        let t = Instant::now();
        for chunk in hosts.chunks(batch.max(1)) {
            store
                .upsert_many(chunk, std::time::SystemTime::now())
                .expect("upsert_many");
        }
        report(
            &format!("(b) upsert_many, {label}"),
            hosts.len(),
            t.elapsed().as_secs_f64(),
        );
        assert_eq!(store.integrity_check().expect("check"), "ok");
    }
}
