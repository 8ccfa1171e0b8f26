//! Shared helpers of the TUI tests: a temp store filled with the harmony
//! store fixtures, and a text dump of a rendered buffer.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../harmony/tests/support/store_common.rs"]
pub mod common;

use std::path::PathBuf;
use std::sync::Arc;

use harmony::domain::{DiscoveredHost, EventBus, InventoryRepository};
use harmony::store::SqliteStore;
use harmony_tui::App;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    pub store: Arc<SqliteStore>,
}

pub fn store() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inv.sqlite3");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    Fixture { dir, path, store }
}

/// Host `n` at 10.0.0.n.
pub fn host(n: u32) -> DiscoveredHost {
    common::host(n, &format!("10.0.0.{n}"))
}

/// A store with hosts 1..=count.
pub fn store_with(count: u32) -> Fixture {
    let f = store();
    for n in 1..=count {
        f.store
            .upsert_discovered(&host(n), common::t(u64::from(n)))
            .unwrap();
    }
    f
}

pub fn app(f: &Fixture) -> App {
    let repo: Arc<dyn InventoryRepository> = f.store.clone();
    let mut app = App::new(repo, EventBus::default());
    app.reload_blocking();
    app
}

pub fn render(app: &App, w: u16, h: u16) -> Buffer {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| harmony_tui::ui::draw(app, f)).unwrap();
    t.backend().buffer().clone()
}

/// The buffer as lines of text.
pub fn lines(buf: &Buffer) -> Vec<String> {
    let w = usize::from(buf.area.width);
    buf.content()
        .chunks(w)
        .map(|row| row.iter().map(|c| c.symbol()).collect::<String>())
        .collect()
}

pub fn text(buf: &Buffer) -> String {
    lines(buf).join("\n")
}

/// Index of the first line containing `needle`.
pub fn line_of(buf: &Buffer, needle: &str) -> Option<usize> {
    lines(buf).iter().position(|l| l.contains(needle))
}
