//! Rendered frames (ratatui `TestBackend`) and key handling against a real
//! SQLite store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use harmony::domain::SafeText;
use harmony::domain::hardware::{Dimm, Lldp};
use harmony::domain::{Event, HostId, InventoryRepository, Role};
use harmony_tui::{Action, App, Msg, Pane};
use ratatui::style::Color;
use support::{app, common, host, line_of, render, store, store_with, text};

fn key(app: &mut App, code: KeyCode) -> Option<Action> {
    app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn ctrl(app: &mut App, c: char) {
    app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char(c),
        KeyModifiers::CONTROL,
    )));
}

fn typed(app: &mut App, s: &str) {
    for c in s.chars() {
        key(app, KeyCode::Char(c));
    }
}

fn id(n: u32) -> HostId {
    host(n).id
}

#[test]
fn empty_inventory() {
    let f = store();
    let app = app(&f);
    let buf = render(&app, 160, 40);
    let t = text(&buf);
    assert!(t.contains("Hosts: 0 (0 unassigned)"), "{t}");
    assert!(t.contains("No hosts yet"), "{t}");
    assert!(t.contains("missing 1 bootstrap: 0 of 1 assigned"), "{t}");
    assert!(t.contains("missing 3 control-plane"), "{t}");
    assert!(t.contains("q quit"), "{t}");
}

#[test]
fn unassigned_hosts_come_first_with_their_columns() {
    let f = store_with(4);
    f.store
        .assign(
            &id(1),
            Some(Role::ControlPlane),
            Some("master-0".parse().unwrap()),
        )
        .unwrap();
    let app = app(&f);
    let buf = render(&app, 200, 50);
    let t = text(&buf);
    assert!(t.contains("Hosts: 4 (3 unassigned)"), "{t}");
    let header = line_of(&buf, "VENDOR / PRODUCT").unwrap();
    let unassigned = line_of(&buf, "10.0.0.2").unwrap();
    let assigned = line_of(&buf, "master-0 10.0.0.1").unwrap();
    assert!(header < unassigned && unassigned < assigned, "{t}");
    let row = &support::lines(&buf)[unassigned];
    for cell in ["Dell Inc. PowerEdge R650", "128", "502.9 GiB", "discovered"] {
        assert!(row.contains(cell), "{cell} in {row}");
    }
    let row = &support::lines(&buf)[assigned];
    assert!(
        row.contains("control-plane") && row.contains("role-assigned"),
        "{row}"
    );
    assert!(t.contains("control-plane 1/3"), "{t}");
}

#[test]
fn selected_host_details_show_full_hardware() {
    let f = store();
    let mut h = host(1);
    let t = |s: &str| Some(SafeText::new(s));
    h.hardware.nics[0].lldp = Some(Lldp {
        chassis_id: t("aa:bb:cc:00:00:01"),
        port_id: t("ethernet1/1/7"),
        system_name: t("tor-a"),
        port_description: None,
    });
    h.hardware.memory.dimms = vec![Dimm {
        locator: t("A1"),
        size_bytes: Some(32 << 30),
        memory_type: t("DDR4"),
        speed_mts: Some(3200),
        manufacturer: t("Samsung"),
        ..Default::default()
    }];
    f.store.upsert_discovered(&h, common::t(1)).unwrap();
    f.store.upsert_discovered(&host(2), common::t(2)).unwrap();
    let mut app = app(&f);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Char('k'));
    let t = text(&render(&app, 200, 60));
    for want in [
        "uuid:4c4c4544-0000-4000-8000-000000000002",
        "Intel(R) Xeon(R) Gold 6338",
        "128 threads",
        "A1 32.0 GiB DDR4 3200 MT/s Samsung",
        "nvme0n1 Nvme 894.3 GiB",
        "/dev/disk/by-id/nvme-eui.0000000100000000",
        "eno1 52:01:00:00:00:01 25000 Mb/s up",
        "LLDP tor-a port ethernet1/1/7",
        "Fits: bootstrap ok, control-plane ok, worker ok",
    ] {
        assert!(t.contains(want), "{want:?} missing from\n{t}");
    }
    // Moving down selects the other host.
    key(&mut app, KeyCode::Char('j'));
    assert_eq!(app.selected().unwrap().record.id, id(2));
    let t = text(&render(&app, 200, 60));
    assert!(
        t.contains("uuid:4c4c4544-0000-4000-8000-000000000003"),
        "{t}"
    );
}

#[test]
fn role_plan_problems_are_shown() {
    let f = store_with(3);
    f.store.assign(&id(1), Some(Role::Bootstrap), None).unwrap();
    f.store.assign(&id(2), Some(Role::Bootstrap), None).unwrap();
    let app = app(&f);
    let t = text(&render(&app, 200, 50));
    assert!(t.contains("Plan: bootstrap 2/1"), "{t}");
    assert!(
        t.contains("too many bootstrap: 2 assigned, 1 wanted"),
        "{t}"
    );
    assert!(
        t.contains("missing 3 control-plane: 0 of 3 assigned"),
        "{t}"
    );
}

#[test]
fn unfit_host_is_flagged() {
    let f = store();
    let mut small = host(1);
    small.hardware.memory.smbios_total_bytes = Some(8 << 30);
    small.hardware.memory.total_bytes = Some(8 << 30);
    f.store.upsert_discovered(&small, common::t(1)).unwrap();
    f.store
        .assign(
            &small.id,
            Some(Role::ControlPlane),
            Some("master-0".parse().unwrap()),
        )
        .unwrap();
    let app = app(&f);
    let buf = render(&app, 200, 50);
    let t = text(&buf);
    let row = line_of(&buf, "master-0 10.0.0.1").unwrap();
    let line = &support::lines(&buf)[row];
    assert!(line.contains("│!"), "flag in the first column: {line}");
    assert!(line.contains("! control-plane"), "{line}");
    let x = u16::try_from(line.chars().position(|c| c == '!').unwrap()).unwrap();
    assert_eq!(buf[(x, u16::try_from(row).unwrap())].fg, Color::Red);
    assert!(
        t.contains("! memory 8.0 GiB < 16 GiB required for control-plane"),
        "{t}"
    );
}

#[test]
fn assigning_by_keys_prompts_validates_and_writes_the_store() {
    let f = store_with(3);
    let mut app = app(&f);
    key(&mut app, KeyCode::Down);
    assert_eq!(key(&mut app, KeyCode::Char('c')), None);
    let t = text(&render(&app, 200, 50));
    assert!(t.contains("Assign control-plane"), "{t}");
    assert!(t.contains("Hostname: master-0_"), "{t}");

    // Invalid input is refused, with a message, and nothing is written.
    ctrl(&mut app, 'u');
    typed(&mut app, "\"; reboot");
    key(&mut app, KeyCode::Enter);
    let t = text(&render(&app, 200, 50));
    assert!(t.contains("invalid host name"), "{t}");
    assert!(t.contains("labels may hold only letters"), "{t}");
    assert!(app.prompt().is_some(), "the prompt stays open");
    assert_eq!(f.store.host(&id(2)).unwrap().unwrap().role, None);

    // Fix it: typing replaces the error, Enter saves.
    ctrl(&mut app, 'u');
    typed(&mut app, "cp-a");
    key(&mut app, KeyCode::Enter);
    assert!(app.prompt().is_none());
    let rec = f.store.host(&id(2)).unwrap().unwrap();
    assert_eq!(rec.role, Some(Role::ControlPlane));
    assert_eq!(rec.hostname.unwrap().as_str(), "cp-a");
    // The table updated at once: the host moved below the unassigned ones
    // and stays selected.
    assert_eq!(app.rows().last().unwrap().record.id, id(2));
    assert_eq!(app.selected().unwrap().record.id, id(2));
    let buf = render(&app, 200, 50);
    let t = text(&buf);
    assert!(
        t.contains("assigned control-plane cp-a to"),
        "log and status: {t}"
    );
    assert!(line_of(&buf, "10.0.0.3").unwrap() < line_of(&buf, "cp-a 10.0.0.2").unwrap());

    // A host name another host has is refused.
    key(&mut app, KeyCode::Char('g'));
    key(&mut app, KeyCode::Char('w'));
    assert_eq!(app.prompt().unwrap().input, "worker-0");
    ctrl(&mut app, 'u');
    typed(&mut app, "cp-a");
    key(&mut app, KeyCode::Enter);
    assert!(
        app.prompt()
            .unwrap()
            .error
            .as_ref()
            .unwrap()
            .contains("already used")
    );
    key(&mut app, KeyCode::Esc);
    assert!(app.prompt().is_none());
    assert_eq!(f.store.host(&id(1)).unwrap().unwrap().role, None);

    // Default names count up; Enter takes the default.
    key(&mut app, KeyCode::Char('c'));
    assert_eq!(app.prompt().unwrap().input, "master-0");
    key(&mut app, KeyCode::Enter);
    assert_eq!(
        f.store
            .host(&id(1))
            .unwrap()
            .unwrap()
            .hostname
            .unwrap()
            .as_str(),
        "master-0"
    );
    let sel = app.selected().unwrap().record.id.clone();
    assert_eq!(sel, id(1));
    // `u` unassigns.
    key(&mut app, KeyCode::Char('u'));
    let rec = f.store.host(&id(1)).unwrap().unwrap();
    assert_eq!((rec.role, rec.hostname), (None, None));
    assert_eq!(app.rows()[0].record.role, None);
    // `q` quits, Tab cycles panes.
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.pane(), Pane::Details);
    assert_eq!(key(&mut app, KeyCode::Char('q')), Some(Action::Quit));
}

#[test]
fn event_log_shows_discoveries_and_reloads() {
    let f = store_with(1);
    let mut app = app(&f);
    let new = host(9);
    f.store.upsert_discovered(&new, common::t(9)).unwrap();
    let action = app.update(Msg::Event(Event::HostDiscovered {
        host: new.id.clone(),
        ip: new.ip,
    }));
    assert_eq!(action, Some(Action::Reload));
    // Further events while a reload is in flight coalesce into one more.
    assert_eq!(app.update(Msg::Tick), None);
    let hosts = f.store.hosts().map_err(|e| e.to_string());
    assert_eq!(app.update(Msg::HostsReloaded(hosts)), Some(Action::Reload));
    let t = text(&render(&app, 200, 50));
    assert!(
        t.contains("host discovered: uuid:4c4c4544-0000-4000-8000-00000000000a at 10.0.0.9"),
        "{t}"
    );
    assert!(t.contains("Hosts: 2 (2 unassigned)"), "{t}");
    assert!(t.contains("10.0.0.9"));
    // A tick with nothing in flight reloads too (another process may write).
    let hosts = f.store.hosts().map_err(|e| e.to_string());
    assert_eq!(app.update(Msg::HostsReloaded(hosts)), None);
    assert_eq!(app.update(Msg::Tick), Some(Action::Reload));
}

#[test]
fn progress_updates_one_log_line() {
    let f = store_with(1);
    let mut app = app(&f);
    let before = app.log().len();
    for done in 1..=50 {
        app.update(Msg::Event(Event::Progress {
            task: "scan".into(),
            done,
            total: 50,
        }));
    }
    assert_eq!(app.log().len(), before + 1, "one line per task");
    assert!(app.log().back().unwrap().ends_with("scan: 50/50"));
    app.update(Msg::Event(Event::HostLost { host: id(1) }));
    app.update(Msg::Event(Event::Progress {
        task: "scan".into(),
        done: 1,
        total: 2,
    }));
    assert_eq!(
        app.log().len(),
        before + 3,
        "a new run after other events gets its own line"
    );
}

#[test]
fn details_show_the_boot_plan() {
    let f = store_with(1);
    let app = app(&f);
    let lines: Vec<String> = harmony_tui::ui::details_lines(app.selected().unwrap())
        .iter()
        .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
        .collect();
    let text = lines.join("\n");
    assert!(text.contains("Boot plan"), "{text}");
    assert!(
        text.contains("install on /dev/disk/by-id/nvme-eui."),
        "{text}"
    );
    assert!(
        text.contains("args: bond=bond0:eno1,eno2:mode=802.3ad"),
        "{text}"
    );
}

#[test]
fn role_counts_are_enforced_when_assigning() {
    let f = store_with(3);
    f.store
        .assign(
            &id(1),
            Some(Role::Bootstrap),
            Some("bootstrap".parse().unwrap()),
        )
        .unwrap();
    let mut app = app(&f);
    // Host 1 is now last (assigned); select an unassigned one and press b.
    assert_ne!(app.selected().unwrap().record.id, id(1));
    let other = app.selected().unwrap().record.id.clone();
    assert_eq!(key(&mut app, KeyCode::Char('b')), None);
    assert!(app.prompt().is_none(), "no prompt for a second bootstrap");
    let t = text(&render(&app, 200, 50));
    assert!(t.contains("cannot assign bootstrap"), "{t}");
    assert_eq!(f.store.host(&other).unwrap().unwrap().role, None);
    // A worker is always possible.
    key(&mut app, KeyCode::Char('w'));
    assert!(app.prompt().is_some());
}

#[test]
fn discovery_rejects_a_bad_range() {
    let f = store();
    let repo: std::sync::Arc<dyn InventoryRepository> = f.store.clone();
    let e = harmony_tui::discovery::start_discovery(
        "127.0.0.0/33",
        25000,
        repo,
        harmony::domain::EventBus::default(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("invalid --scan range \"127.0.0.0/33\""),
        "{e}"
    );
}

/// `--scan` wiring: an agent answering on a loopback address is found,
/// stored, and announced on the bus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_finds_a_loopback_agent() {
    use std::io::{Read, Write};
    let f = store();
    let agent = host(7);
    let body = serde_json::to_vec(&agent.hardware.to_wire()).unwrap();
    let listener = std::net::TcpListener::bind("127.0.6.10:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        // Answers a bounded number of probes, then exits.
        for stream in listener.incoming().take(8) {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(&body);
        }
    });
    let bus = harmony::domain::EventBus::default();
    let mut rx = bus.subscribe();
    let repo: std::sync::Arc<dyn InventoryRepository> = f.store.clone();
    let task = harmony_tui::discovery::start_discovery("127.0.6.8/29", port, repo, bus).unwrap();
    let found = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match rx.recv().await {
                Ok(Event::HostDiscovered { host, ip }) => break (host, ip),
                Ok(_) => {}
                Err(e) => panic!("bus closed: {e}"),
            }
        }
    })
    .await
    .expect("no HostDiscovered within 10 s");
    task.abort();
    assert_eq!(found.0, agent.id);
    assert_eq!(found.1.to_string(), "127.0.6.10");
    let stored = f.store.host(&agent.id).unwrap().unwrap();
    assert_eq!(stored.ip.to_string(), "127.0.6.10");
}

#[test]
fn scrolling_keeps_the_selection_visible() {
    let f = store();
    let hosts: Vec<_> = (1..=300)
        .map(|n| common::host(n, &format!("10.1.{}.{}", n / 256, n % 256)))
        .collect();
    f.store.upsert_many(&hosts, common::t(0)).unwrap();
    let mut app = app(&f);
    app.update(Msg::Resize(200, 50));
    for _ in 0..120 {
        key(&mut app, KeyCode::Down);
    }
    let sel = app.selected().unwrap().record.ip.to_string();
    let buf = render(&app, 200, 50);
    assert!(line_of(&buf, &format!("{sel} ")).is_some(), "{sel} visible");
    assert!(
        line_of(&buf, "10.1.0.1 ").is_none(),
        "first row scrolled away"
    );
    key(&mut app, KeyCode::End);
    assert_eq!(app.selected_index(), 299);
    key(&mut app, KeyCode::Home);
    assert_eq!(app.selected_index(), 0);
}

/// The boot plan shown is computed, with the hosts, under the site's
/// per-host policy the app is given (the `networks` of `BootArtefacts`),
/// by the same function that writes the boot files.
#[test]
fn details_show_the_boot_plan_under_the_site_policy() {
    use harmony::modules::okd::bond::{MemberOverride, SiteBondPolicy};
    use harmony::modules::okd::boot_plan::{HostNetwork, SiteNetworks, network_of, plan_boot};
    let f = store_with(1);
    let repo: std::sync::Arc<dyn InventoryRepository> = f.store.clone();
    let mut networks = SiteNetworks::new();
    networks.insert(
        id(1),
        HostNetwork {
            bond: SiteBondPolicy {
                members: Some(MemberOverride::Names(vec!["eno2".parse().unwrap()])),
                allow_multi_chassis: false,
            },
            addressing: None,
        },
    );
    let mut app =
        App::new(repo, harmony::domain::EventBus::default()).with_networks(networks.clone());
    app.reload_blocking();
    let row = app.selected().unwrap();
    let want = plan_boot(&row.record, network_of(&networks, &id(1)))
        .unwrap()
        .lines();
    assert_eq!(row.boot.as_ref().unwrap(), &want);
    let text: Vec<String> = harmony_tui::ui::details_lines(row)
        .iter()
        .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
        .collect();
    let text = text.join("\n");
    assert!(text.contains("no bond: single interface eno2"), "{text}");
    assert!(text.contains("args: ip=eno2:dhcp rd.neednet=1"), "{text}");
}
