//! Frame benchmark: 2 000 hosts from a real store, `terminal.draw` on a
//! 200x60 `TestBackend`, 200 frames while the selection moves.
//!
//! `cargo run --release -p harmony-tui --example frame_bench`
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../harmony/tests/support/store_common.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use harmony::domain::{EventBus, InventoryRepository};
use harmony::store::SqliteStore;
use harmony_tui::{App, Msg};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const HOSTS: u32 = 2_000;
const FRAMES: usize = 200;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("bench.sqlite3")).unwrap());
    let hosts: Vec<_> = (0..HOSTS)
        .map(|n| {
            common::host(
                n,
                &format!("10.{}.{}.{}", n >> 16, (n >> 8) & 0xff, n & 0xff),
            )
        })
        .collect();
    store.upsert_many(&hosts, common::t(0)).unwrap();
    let repo: Arc<dyn InventoryRepository> = store.clone();

    let mut app = App::new(repo, EventBus::default());
    let started = Instant::now();
    let all = store.hosts().unwrap();
    let read = started.elapsed();
    let started = Instant::now();
    app.set_hosts(all);
    let rows = started.elapsed();
    app.update(Msg::Resize(200, 60));

    let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
    let mut times = Vec::with_capacity(FRAMES);
    for i in 0..FRAMES {
        // Walk down through the table, with a page jump now and then.
        let code = if i % 50 == 49 {
            KeyCode::PageDown
        } else {
            KeyCode::Down
        };
        app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
        let t = Instant::now();
        terminal.draw(|f| harmony_tui::ui::draw(&app, f)).unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    let mean = times.iter().sum::<Duration>() / u32::try_from(FRAMES).unwrap();
    let p99 = times[(FRAMES * 99).div_ceil(100) - 1];
    println!(
        "{HOSTS} hosts, {FRAMES} frames at 200x60: mean {:.3} ms, p99 {:.3} ms, max {:.3} ms per frame",
        ms(mean),
        ms(p99),
        ms(times[FRAMES - 1])
    );
    println!(
        "reload: store.hosts() {:.1} ms, row precompute {:.1} ms (once per reload, off the frame path)",
        ms(read),
        ms(rows)
    );
}
