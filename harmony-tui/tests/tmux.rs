//! The real binary in a real terminal (tmux): move, assign a role with a
//! typed host name, quit, and check the store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use harmony::domain::{InventoryRepository, Role};
use harmony::store::SqliteStore;

/// A tmux server on its own socket, killed on drop.
struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("run tmux")
    }

    fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.session.as_str()];
        args.extend_from_slice(keys);
        assert!(self.cmd(&args).status.success());
    }

    fn send_literal(&self, text: &str) {
        assert!(
            self.cmd(&["send-keys", "-t", &self.session, "-l", text])
                .status
                .success()
        );
    }

    fn capture(&self) -> String {
        String::from_utf8_lossy(
            &self
                .cmd(&["capture-pane", "-p", "-t", &self.session])
                .stdout,
        )
        .into_owned()
    }

    /// Polls the pane (up to 10 s) until `pred` holds; returns the last capture.
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let screen = self.capture();
            if pred(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn alive(&self) -> bool {
        self.cmd(&["has-session", "-t", &self.session])
            .status
            .success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

#[test]
fn assign_a_role_in_a_real_terminal() {
    let f = support::store_with(3);
    let target = support::host(2).id;
    let unique = format!(
        "harmony-tui-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let tmux = Tmux {
        socket: unique.clone(),
        session: "tui".into(),
    };
    let command = format!(
        "{} --db '{}' --tick-ms 500",
        env!("CARGO_BIN_EXE_harmony-tui"),
        f.path.display()
    );
    let out = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "tui",
        "-x",
        "200",
        "-y",
        "50",
        &command,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    tmux.wait_for("the host table", |s| s.contains("Hosts: 3 (3 unassigned)"));
    tmux.send(&["Down"]);
    tmux.wait_for("the second host's details", |s| {
        s.contains("uuid:4c4c4544-0000-4000-8000-000000000003")
    });
    tmux.send(&["c"]);
    tmux.wait_for("the host-name prompt", |s| {
        s.contains("Assign control-plane") && s.contains("Hostname: master-0_")
    });
    tmux.send(&["C-u"]);
    tmux.send_literal("bad name");
    tmux.send(&["Enter"]);
    tmux.wait_for("the refusal", |s| s.contains("invalid host name"));
    tmux.send(&["C-u"]);
    tmux.send_literal("cp-tmux");
    tmux.send(&["Enter"]);
    let screen = tmux.wait_for("the assignment in the table", |s| {
        s.contains("cp-tmux 10.0.0.2") && s.contains("control-plane 1/3")
    });
    assert!(
        screen.contains("assigned control-plane cp-tmux"),
        "{screen}"
    );

    tmux.send(&["q"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tmux.alive() {
        assert!(Instant::now() < deadline, "harmony-tui did not quit on q");
        std::thread::sleep(Duration::from_millis(100));
    }

    let store = SqliteStore::open(&f.path).unwrap();
    let rec = store.host(&target).unwrap().unwrap();
    assert_eq!(rec.role, Some(Role::ControlPlane));
    assert_eq!(rec.hostname.unwrap().as_str(), "cp-tmux");
}
