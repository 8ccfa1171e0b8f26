//! `SshShell` against a real OpenSSH `sshd` that each test starts on a
//! loopback port with its own host key, authorized keys and config in a
//! temp dir (and stops): key authentication (ed25519, RSA), a wrong key
//! refused without any password tried, host keys pinned at first contact
//! only for a discovered host, a changed host key refused naming both
//! fingerprints, time limits, capped output, exit status, and a reboot
//! simulated by a command that drops the connection, confirmed by the
//! server going down (and coming back). Commands stay the closed set: where
//! a test needs a remote program to misbehave, its sshd has a
//! `ForceCommand`. Also the store's pins on their own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/store_common.rs"]
mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use harmony::domain::{
    CapResult, HostKey, HostKeyPins, InventoryRepository, PinOutcome, PxeEvidence, RebootConfirm,
    RemoteCommand, RemoteHost, RemoteShell, RunLimits,
};
use harmony::infra::process::{Program, Service};
use harmony::infra::ssh::{SshConfig, SshError, SshShell, Stage, ssh_answers};
use harmony::store::SqliteStore;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn free_port() -> u16 {
    std::net::TcpListener::bind((LOOPBACK, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A new key pair at `path` (`kind`: ed25519 or rsa); its SHA-256
/// fingerprint as `ssh-keygen -l` prints it.
fn keygen(path: &Path, kind: &str, passphrase: &str) -> String {
    let mut p = Program::new("ssh-keygen").args(["-q", "-t", kind, "-N", passphrase, "-C", "test"]);
    if kind == "rsa" {
        p = p.args(["-b", "3072"]);
    }
    p.arg("-f").arg(path).run_blocking().unwrap();
    fingerprint(&path.with_extension("pub"))
}

fn fingerprint(public: &Path) -> String {
    let out = Program::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(public)
        .run_blocking()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().nth(1).unwrap().to_string()
}

/// One sshd of a test, its files, and the store with one discovered host.
struct Lab {
    dir: tempfile::TempDir,
    port: u16,
    store: Arc<SqliteStore>,
    /// Discovered (its MACs are in the store), at 127.0.0.1.
    host: RemoteHost,
    host_key_fp: String,
    sshd: Option<Service>,
    /// Extra lines of sshd_config (e.g. a ForceCommand); they come first,
    /// and sshd keeps the first value of a keyword.
    extra: String,
}

impl Lab {
    /// An sshd with an ed25519 host key, authorizing the client key
    /// `client.<kind>` made here.
    async fn start(client_kind: &str, extra: &str) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let host_key_fp = keygen(&dir.path().join("host_key"), "ed25519", "");
        keygen(&dir.path().join("client"), client_kind, "");
        std::fs::copy(
            dir.path().join("client.pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("inv.sqlite3")).unwrap());
        let discovered = common::host(1, "127.0.0.1");
        store
            .upsert_discovered(&discovered, SystemTime::now())
            .unwrap();
        let mut lab = Lab {
            port: free_port(),
            host: RemoteHost::discovery(discovered.id, LOOPBACK),
            dir,
            store,
            host_key_fp,
            sshd: None,
            extra: extra.to_string(),
        };
        lab.start_sshd().await;
        lab
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::new(LOOPBACK, self.port)
    }

    fn sshd_config(&self) -> PathBuf {
        let d = self.dir.path().display();
        let cfg = format!(
            "ListenAddress 127.0.0.1:{port}\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
             PermitRootLogin prohibit-password\nPasswordAuthentication yes\n\
             KbdInteractiveAuthentication yes\n{extra}\nLogLevel DEBUG\n",
            port = self.port,
            extra = self.extra
        );
        let path = self.path("sshd_config");
        std::fs::write(&path, cfg).unwrap();
        path
    }

    async fn start_sshd(&mut self) {
        std::fs::create_dir_all("/run/sshd").unwrap();
        let service = Program::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(self.sshd_config())
            .start(&self.path("sshd.log"))
            .unwrap();
        let until = Instant::now() + Duration::from_secs(10);
        while !ssh_answers(self.addr(), Duration::from_millis(500)).await {
            assert!(
                Instant::now() < until,
                "sshd never answered: {}",
                service.log_tail(2000)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.sshd = Some(service);
    }

    async fn stop_sshd(&mut self) {
        if let Some(mut s) = self.sshd.take() {
            s.stop(Duration::from_secs(2)).await.unwrap();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("sshd.log")).unwrap_or_default()
    }

    fn config(&self) -> SshConfig {
        let mut c = SshConfig::new(self.path("client"));
        c.port = self.port;
        c.connect_timeout = Duration::from_secs(5);
        c.auth_timeout = Duration::from_secs(5);
        c.poll_interval = Duration::from_millis(50);
        c.probe_timeout = Duration::from_millis(500);
        c.down_within = Duration::from_secs(10);
        c.up_within = Duration::from_secs(10);
        c.reboot_issue_timeout = Duration::from_secs(5);
        c
    }

    fn shell(&self) -> SshShell {
        self.shell_with(self.config())
    }

    fn shell_with(&self, config: SshConfig) -> SshShell {
        SshShell::new(config, Arc::clone(&self.store) as Arc<dyn HostKeyPins>).unwrap()
    }

    fn pinned(&self) -> Option<HostKey> {
        self.store.pinned_key(&self.host.id).unwrap().map(|p| p.key)
    }
}

fn link(name: &str) -> RemoteCommand {
    RemoteCommand::LinkState {
        interface: name.parse().unwrap(),
    }
}

/// Echoes the command line sshd was asked to run, then exits 3.
const ECHO_AND_EXIT_3: &str = "ForceCommand printf '%s' \"$SSH_ORIGINAL_COMMAND\"; exit 3";

#[tokio::test]
async fn ed25519_key_runs_the_rendered_command_returns_its_status_and_pins_the_host_key() {
    let lab = Lab::start("ed25519", ECHO_AND_EXIT_3).await;
    assert_eq!(lab.pinned(), None);
    let shell = lab.shell();
    let out = shell
        .exec(&lab.host, &link("eno1"), RunLimits::default())
        .await
        .unwrap();
    // The fixed line, bounded on the host by `timeout` (60 s + 1).
    assert_eq!(
        out.stdout,
        r#"exec timeout --kill-after=5 61 sh -c 'ip -json link show dev '\''eno1'\'''"#
    );
    assert_eq!(out.exit_status, Some(3));
    assert!(!out.truncated);
    let pin = lab.pinned().expect("pinned at first contact");
    assert_eq!(pin.fingerprint.as_str(), lab.host_key_fp);
    assert_eq!(pin.key_type.as_str(), "ssh-ed25519");

    // Again, through the capability trait: the pin matches.
    let wipe = RemoteCommand::WipeDisk {
        device: "/dev/disk/by-id/nvme-eui.01".parse().unwrap(),
    };
    let out = shell
        .run(&lab.host, &wipe, RunLimits::default())
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        r#"exec timeout --kill-after=5 61 sh -c 'wipefs --all --force -- '\''/dev/disk/by-id/nvme-eui.01'\'' && sync'"#
    );
    assert_eq!(lab.pinned(), Some(pin));
}

#[tokio::test]
async fn rsa_key_authenticates_and_runs_the_real_command() {
    let lab = Lab::start("rsa", "").await;
    let out = lab
        .shell()
        .exec(&lab.host, &link("lo"), RunLimits::default())
        .await
        .unwrap();
    assert_eq!(out.exit_status, Some(0), "{out:?}");
    assert!(out.stdout.contains("\"ifname\":\"lo\""), "{out:?}");
    assert!(lab.log().contains("method publickey"), "{}", lab.log());
}

/// `BondStatus` renders to its fixed line (seen by a `ForceCommand` that
/// echoes it), and run for real on this machine, which has no `bonding`
/// module: the missing file is an exit status with cat's message, which
/// `SwitchAutomationScore` reports (the parser is tested on real files in
/// `domain::bond_status`).
#[tokio::test]
async fn bond_status_reads_the_bonding_file_and_a_missing_bond_is_an_exit_status() {
    let bond = RemoteCommand::BondStatus {
        bond: "bond0".parse().unwrap(),
    };
    let echo = Lab::start("ed25519", ECHO_AND_EXIT_3).await;
    let out = echo
        .shell()
        .exec(&echo.host, &bond, RunLimits::default())
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        r#"exec timeout --kill-after=5 61 sh -c 'cat -- '\''/proc/net/bonding/bond0'\'''"#
    );
    let lab = Lab::start("ed25519", "").await;
    let out = lab
        .shell()
        .run(&lab.host, &bond, RunLimits::default())
        .await
        .unwrap();
    assert_eq!(out.exit_status, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("/proc/net/bonding/bond0: No such file or directory"),
        "{out:?}"
    );
}

#[tokio::test]
async fn wrong_key_is_refused_and_no_password_is_ever_tried() {
    let lab = Lab::start("ed25519", "").await;
    let other = lab.path("other");
    keygen(&other, "ed25519", "");
    let mut config = lab.config();
    config.key_path = other.clone();
    let err = lab
        .shell_with(config)
        .exec(&lab.host, &link("lo"), RunLimits::default())
        .await
        .unwrap_err();
    assert!(matches!(err, SshError::AuthRefused { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&other.display().to_string()),
        "{err}"
    );
    let log = lab.log();
    // The server offered passwords; the client tried only its key.
    assert!(log.contains("method publickey"), "{log}");
    assert!(!log.contains("method password"), "{log}");
    assert!(!log.contains("method keyboard-interactive"), "{log}");
}

#[tokio::test]
async fn a_host_harmony_did_not_discover_is_refused_and_nothing_pinned() {
    let lab = Lab::start("ed25519", "").await;
    let stranger = RemoteHost::discovery(common::host(99, "127.0.0.1").id, LOOPBACK);
    let err = lab
        .shell()
        .exec(&stranger, &link("lo"), RunLimits::default())
        .await
        .unwrap_err();
    assert!(matches!(err, SshError::UnknownHost { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(stranger.id.as_str()), "{msg}");
    assert!(msg.contains(&lab.host_key_fp), "{msg}");
    assert_eq!(lab.store.pinned_key(&stranger.id).unwrap(), None);
    // Refused before authenticating: the key was never offered.
    assert!(!lab.log().contains("userauth-request"), "{}", lab.log());
}

#[tokio::test]
async fn a_changed_host_key_is_refused_naming_the_host_and_both_fingerprints() {
    let mut lab = Lab::start("ed25519", "").await;
    let shell = lab.shell();
    shell
        .exec(&lab.host, &link("lo"), RunLimits::default())
        .await
        .unwrap();
    let first = lab.host_key_fp.clone();

    // The "host" comes back with another key.
    lab.stop_sshd().await;
    std::fs::remove_file(lab.path("host_key")).unwrap();
    std::fs::remove_file(lab.path("host_key.pub")).unwrap();
    let second = keygen(&lab.path("host_key"), "ed25519", "");
    assert_ne!(first, second);
    lab.start_sshd().await;

    let err = shell
        .exec(&lab.host, &link("lo"), RunLimits::default())
        .await
        .unwrap_err();
    assert!(matches!(err, SshError::HostKeyChanged { .. }), "{err:?}");
    let msg = err.to_string();
    for part in [lab.host.id.as_str(), &first, &second] {
        assert!(msg.contains(part), "{part} not in {msg}");
    }
    // The capability says the same; the pin is unchanged; nothing authenticated.
    let cap = shell
        .run(&lab.host, &link("lo"), RunLimits::default())
        .await
        .unwrap_err();
    assert!(cap.to_string().contains(&second), "{cap}");
    assert_eq!(lab.pinned().unwrap().fingerprint.as_str(), first);

    // Forgotten (a reinstall), the next contact pins the new key.
    assert!(lab.store.forget_key(&lab.host.id).unwrap());
    shell
        .exec(&lab.host, &link("lo"), RunLimits::default())
        .await
        .unwrap();
    assert_eq!(lab.pinned().unwrap().fingerprint.as_str(), second);
}

#[tokio::test]
async fn a_command_over_its_time_limit_times_out_and_is_ended() {
    // sshd does not pass signals to a ForceCommand, so the slow command is
    // the configurable reboot line; the sleep's odd duration (this test's port) finds it.
    let lab = Lab::start("ed25519", "").await;
    let mut config = lab.config();
    let sleep = format!("sleep 29.{}", lab.port);
    config.reboot_command = format!("exec {sleep}");
    let limits = RunLimits {
        timeout: Duration::from_millis(800),
        ..RunLimits::default()
    };
    let err = lab
        .shell_with(config)
        .exec(&lab.host, &RemoteCommand::Reboot, limits)
        .await
        .unwrap_err();
    assert!(matches!(err, SshError::CommandTimeout { .. }), "{err:?}");
    assert!(err.to_string().contains(&sleep), "{err}");
    // The remote command was ended (by `timeout` on the host), not left
    // running.
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        // Async: the client's session task must run to send the signal.
        let left = Program::new("pgrep")
            .args(["-f", &sleep])
            .output()
            .await
            .unwrap();
        if left.stdout.is_empty() {
            break;
        }
        assert!(Instant::now() < until, "the remote command still runs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_silent_server_times_out_at_connect() {
    // Accepts (the kernel's backlog) and never says a word.
    let silent = std::net::TcpListener::bind((LOOPBACK, 0)).unwrap();
    let lab = Lab::start("ed25519", "").await;
    let mut config = lab.config();
    config.port = silent.local_addr().unwrap().port();
    config.connect_timeout = Duration::from_millis(500);
    let err = lab
        .shell_with(config)
        .exec(&lab.host, &link("lo"), RunLimits::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SshError::Timeout {
                stage: Stage::Connect,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn large_output_is_capped_with_a_marker_and_the_status_still_returned() {
    let lab = Lab::start(
        "ed25519",
        // At DEBUG, sshd's session also writes its debug lines to stderr.
        "LogLevel INFO\nForceCommand head -c 5242880 /dev/zero | tr '\\0' x; echo done >&2; exit 7",
    )
    .await;
    let limits = RunLimits {
        max_output: 1 << 20,
        ..RunLimits::default()
    };
    let out = lab
        .shell()
        .exec(&lab.host, &link("lo"), limits)
        .await
        .unwrap();
    assert!(out.truncated);
    assert_eq!(out.exit_status, Some(7));
    assert_eq!(out.stderr, "done\n");
    let (kept, marker) = out.stdout.split_at(1 << 20);
    assert!(kept.bytes().all(|b| b == b'x'));
    assert!(marker.contains("4194304 more bytes"), "{marker}");
}

#[tokio::test]
async fn unreadable_or_encrypted_key_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("inv.sqlite3")).unwrap());
    let missing = dir.path().join("no-such-key");
    let err = SshShell::new(SshConfig::new(&missing), store.clone()).unwrap_err();
    assert!(matches!(err, SshError::KeyUnreadable { .. }), "{err:?}");
    assert!(err.to_string().contains(&missing.display().to_string()));

    let locked = dir.path().join("locked");
    keygen(&locked, "ed25519", "a passphrase");
    let err = SshShell::new(SshConfig::new(&locked), store).unwrap_err();
    assert!(matches!(err, SshError::KeyEncrypted { .. }), "{err:?}");
    assert!(err.to_string().contains(&locked.display().to_string()));
}

/// A reboot command that only drops the connection, after leaving a mark
/// the test waits for to stop the server.
fn dropping_reboot(lab: &Lab) -> SshConfig {
    let mut c = lab.config();
    c.reboot_command = format!(
        "touch '{}'; kill -HUP $PPID",
        lab.path("rebooting").display()
    );
    c
}

/// Plays the rebooting host: once the mark appears, stops sshd; then, if
/// `back_after` is set, starts it again after that long.
fn play_the_host(mut lab: Lab, back_after: Option<Duration>) -> tokio::task::JoinHandle<Lab> {
    tokio::spawn(async move {
        let until = Instant::now() + Duration::from_secs(10);
        while !lab.path("rebooting").exists() {
            assert!(Instant::now() < until, "the reboot command never ran");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        lab.stop_sshd().await;
        if let Some(d) = back_after {
            tokio::time::sleep(d).await;
            lab.start_sshd().await;
        }
        lab
    })
}

#[tokio::test]
async fn reboot_treats_the_disconnect_as_success_and_confirms_down_then_back_up() {
    let lab = Lab::start("ed25519", "").await;
    let shell = lab.shell_with(dropping_reboot(&lab));
    let host = lab.host.clone();
    let addr = lab.addr();
    let player = play_the_host(lab, Some(Duration::from_millis(300)));
    let report = shell.reboot(&host, RebootConfirm::BackUp).await.unwrap();
    let lab = player.await.unwrap();
    let up = report.up_after.expect("confirmed back up");
    assert!(report.down_after <= up, "{report:?}");
    assert_eq!(report.pxe_after, None);
    assert!(ssh_answers(addr, Duration::from_secs(1)).await);
    assert!(lab.path("rebooting").exists());
}

#[tokio::test]
async fn reboot_confirms_down_only_when_asked_only_that() {
    let lab = Lab::start("ed25519", "").await;
    let shell = lab.shell_with(dropping_reboot(&lab));
    let host = lab.host.clone();
    let player = play_the_host(lab, None);
    let report = shell.reboot(&host, RebootConfirm::Down).await.unwrap();
    assert_eq!((report.up_after, report.pxe_after), (None, None));
    let lab = player.await.unwrap();
    assert!(!ssh_answers(lab.addr(), Duration::from_millis(500)).await);
}

#[tokio::test]
async fn reboot_through_run_reports_the_dropped_connection() {
    let lab = Lab::start("ed25519", "").await;
    let mut config = lab.config();
    // `run` wraps the line in `exec timeout ... sh -c`: the sshd session is
    // the parent of `timeout`, the shell's parent.
    config.reboot_command = "kill -HUP $(ps -o ppid= -p $PPID)".into();
    let err = lab
        .shell_with(config)
        .exec(&lab.host, &RemoteCommand::Reboot, RunLimits::default())
        .await
        .unwrap_err();
    assert!(matches!(err, SshError::Dropped { .. }), "{err:?}");
    assert!(err.to_string().contains("kill -HUP $(ps"), "{err}");
}

#[tokio::test]
async fn a_host_that_does_not_go_down_is_not_confirmed() {
    let lab = Lab::start("ed25519", "").await;
    let mut config = lab.config();
    config.reboot_command = "true".into();
    config.down_within = Duration::from_secs(1);
    let err = lab
        .shell_with(config)
        .reboot_confirmed(&lab.host, RebootConfirm::Down)
        .await
        .unwrap_err();
    assert!(matches!(err, SshError::NotDown { .. }), "{err:?}");
    assert!(err.to_string().contains(lab.host.id.as_str()), "{err}");
}

#[tokio::test]
async fn a_failing_reboot_command_is_an_error_with_its_status() {
    let lab = Lab::start("ed25519", "").await;
    let mut config = lab.config();
    config.reboot_command = "echo 'not allowed' >&2; exit 4".into();
    let err = lab
        .shell_with(config)
        .reboot_confirmed(&lab.host, RebootConfirm::Down)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SshError::RebootRefused { status: 4, stderr, .. } if stderr.contains("not allowed")),
        "{err:?}"
    );
}

/// Says the host started to PXE once `seen` is set (what DHCP leases or
/// the HTTP access log will tell).
#[derive(Debug, Default)]
struct Evidence {
    seen: AtomicBool,
}

#[async_trait]
impl PxeEvidence for Evidence {
    async fn pxe_started_since(&self, _host: &RemoteHost, since: SystemTime) -> CapResult<bool> {
        assert!(since <= SystemTime::now());
        Ok(self.seen.swap(true, Ordering::SeqCst))
    }

    async fn fetched_since(
        &self,
        _client: std::net::IpAddr,
        _path: &harmony::domain::RelativePath,
        _any_client: bool,
        _since: SystemTime,
    ) -> CapResult<bool> {
        Ok(false)
    }
}

#[tokio::test]
async fn started_pxe_needs_an_evidence_source_and_uses_it() {
    let lab = Lab::start("ed25519", "").await;
    let err = lab
        .shell()
        .reboot_confirmed(&lab.host, RebootConfirm::StartedPxe)
        .await
        .unwrap_err();
    assert!(matches!(err, SshError::NoPxeEvidence { .. }), "{err:?}");
    assert!(!lab.path("rebooting").exists());

    let shell = lab
        .shell_with(dropping_reboot(&lab))
        .with_pxe_evidence(Arc::new(Evidence::default()));
    let host = lab.host.clone();
    let player = play_the_host(lab, None);
    let report = shell
        .reboot(&host, RebootConfirm::StartedPxe)
        .await
        .unwrap();
    assert!(report.pxe_after.is_some(), "{report:?}");
    player.await.unwrap();
}

#[test]
fn the_store_pins_only_for_discovered_hosts_and_never_replaces_a_pin() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("inv.sqlite3")).unwrap();
    let known = common::host(1, "10.0.0.1");
    store.upsert_discovered(&known, common::t(0)).unwrap();
    let stranger = common::host(2, "10.0.0.2").id;
    let key = |fp: &str| HostKey {
        key_type: "ssh-ed25519".parse().unwrap(),
        fingerprint: format!("SHA256:{fp:A<43}").parse().unwrap(),
    };
    assert_eq!(
        store
            .pin_first_key(&stranger, &key("s"), common::t(1))
            .unwrap(),
        PinOutcome::NotDiscovered
    );
    assert_eq!(store.pinned_key(&stranger).unwrap(), None);
    assert_eq!(
        store
            .pin_first_key(&known.id, &key("a"), common::t(2))
            .unwrap(),
        PinOutcome::Pinned
    );
    let pinned = store.pinned_key(&known.id).unwrap().unwrap();
    assert_eq!(
        (pinned.key.clone(), pinned.first_seen),
        (key("a"), common::t(2))
    );
    assert_eq!(
        store
            .pin_first_key(&known.id, &key("b"), common::t(3))
            .unwrap(),
        PinOutcome::AlreadyPinned(pinned.clone())
    );
    // Survives reopening; forgotten once.
    drop(store);
    let store = SqliteStore::open(&dir.path().join("inv.sqlite3")).unwrap();
    assert_eq!(store.pinned_key(&known.id).unwrap(), Some(pinned));
    assert!(store.forget_key(&known.id).unwrap());
    assert!(!store.forget_key(&known.id).unwrap());
    assert_eq!(store.pinned_key(&known.id).unwrap(), None);
}

// ---------------------------------------------------------------------------
// Files over SSH (`infra::ssh::files`): the remote root is a directory of
// the test's temp dir, written by the real sshd's shell.

use harmony::domain::{Change, HostKeyFingerprint, HostKeyType, RelativePath};
use harmony::infra::ssh::{FixedHostKey, RemoteRoot, TransferLimits};

fn root_of(lab: &Lab) -> (RemoteRoot, PathBuf) {
    let local = lab.path("www");
    (local.to_str().unwrap().parse().unwrap(), local)
}

fn rel(s: &str) -> RelativePath {
    s.parse().unwrap()
}

/// Bytes of every value, in a pattern no two offsets share soon.
fn binary(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .rotate_left(u32::from(seed)) as u8
        })
        .collect()
}

/// How many connections sshd has logged so far.
fn connections(lab: &Lab) -> usize {
    lab.log().matches("Connection from").count()
}

#[tokio::test]
async fn put_file_places_binary_content_byte_exact_and_a_second_put_is_unchanged() {
    let lab = Lab::start("ed25519", "").await;
    let (root, local) = root_of(&lab);
    let shell = lab.shell();
    let limits = TransferLimits::default();
    let big = binary(3 << 20, 7);
    let path = rel("os/scos/kernel");
    assert_eq!(
        shell
            .put_file(&lab.host, &root, &path, &big, limits)
            .await
            .unwrap(),
        Change::Applied
    );
    assert_eq!(std::fs::read(local.join("os/scos/kernel")).unwrap(), big);
    // The digest the host computes is the local one.
    let digest = shell
        .remote_sha256(&lab.host, &root, &path, limits)
        .await
        .unwrap()
        .unwrap();
    use sha2::Digest as _;
    assert_eq!(digest.to_string(), hex::encode(sha2::Sha256::digest(&big)));
    // The same again: Unchanged, the file untouched (same inode and mtime).
    let before = std::fs::metadata(local.join("os/scos/kernel")).unwrap();
    assert_eq!(
        shell
            .put_file(&lab.host, &root, &path, &big, limits)
            .await
            .unwrap(),
        Change::Unchanged
    );
    let after = std::fs::metadata(local.join("os/scos/kernel")).unwrap();
    use std::os::unix::fs::MetadataExt as _;
    assert_eq!(
        (before.ino(), before.mtime_nsec()),
        (after.ino(), after.mtime_nsec())
    );
    // Empty and text files too; no temp file is left anywhere.
    let empty = rel("empty.txt");
    shell
        .put_file(&lab.host, &root, &empty, b"", limits)
        .await
        .unwrap();
    assert_eq!(std::fs::read(local.join("empty.txt")).unwrap(), b"");
    let leftovers: Vec<_> = walk(&local)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".harmony-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Read back, listed, removed.
    assert_eq!(
        shell
            .read_file(&lab.host, &root, &path, limits)
            .await
            .unwrap()
            .unwrap(),
        big
    );
    assert_eq!(
        shell
            .list_files(&lab.host, &root, Some(&rel("os/scos")), limits)
            .await
            .unwrap(),
        vec![path.clone()]
    );
    assert_eq!(
        shell
            .remove_file(&lab.host, &root, &path, limits)
            .await
            .unwrap(),
        Change::Applied
    );
    assert!(!local.join("os/scos/kernel").exists());
    assert_eq!(
        shell
            .remove_file(&lab.host, &root, &path, limits)
            .await
            .unwrap(),
        Change::Unchanged
    );
    assert_eq!(
        shell
            .read_file(&lab.host, &root, &path, limits)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        shell
            .remote_sha256(&lab.host, &root, &path, limits)
            .await
            .unwrap(),
        None
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn a_local_file_is_streamed_and_fetched_back_byte_exact() {
    let lab = Lab::start("ed25519", "").await;
    let (root, local) = root_of(&lab);
    let shell = lab.shell();
    let limits = TransferLimits::default();
    let src = lab.path("rootfs.img");
    let data = binary(5 << 20, 3);
    std::fs::write(&src, &data).unwrap();
    let path = rel("rootfs.img");
    assert_eq!(
        shell
            .put_local_file(&lab.host, &root, &path, &src, limits)
            .await
            .unwrap(),
        Change::Applied
    );
    assert_eq!(std::fs::read(local.join("rootfs.img")).unwrap(), data);
    assert_eq!(
        shell
            .put_local_file(&lab.host, &root, &path, &src, limits)
            .await
            .unwrap(),
        Change::Unchanged
    );
    let dest = lab.path("fetched.img");
    assert!(
        shell
            .fetch_file(&lab.host, &root, &path, &dest, limits)
            .await
            .unwrap()
    );
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert!(
        !shell
            .fetch_file(&lab.host, &root, &rel("absent"), &dest, limits)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_replaced_file_is_never_seen_half_written() {
    let lab = Lab::start("ed25519", "").await;
    let (root, local) = root_of(&lab);
    let shell = lab.shell();
    let limits = TransferLimits::default();
    let (a, b) = (binary(2 << 20, 1), binary(2 << 20, 2));
    let path = rel("ipxe.efi");
    shell
        .put_file(&lab.host, &root, &path, &a, limits)
        .await
        .unwrap();
    let target = local.join("ipxe.efi");
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, a, b, target) = (Arc::clone(&stop), a.clone(), b.clone(), target.clone());
        std::thread::spawn(move || {
            let mut reads = 0u32;
            // Bounded: at most 100 000 reads.
            while !stop.load(Ordering::Relaxed) && reads < 100_000 {
                let got = std::fs::read(&target).unwrap();
                assert!(
                    got == a || got == b,
                    "a reader saw {} bytes that are neither version",
                    got.len()
                );
                reads += 1;
            }
            reads
        })
    };
    for i in 0..6 {
        let next = if i % 2 == 0 { &b } else { &a };
        assert_eq!(
            shell
                .put_file(&lab.host, &root, &path, next, limits)
                .await
                .unwrap(),
            Change::Applied
        );
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().unwrap();
    assert!(reads > 0);
    assert_eq!(std::fs::read(&target).unwrap(), a);
}

#[tokio::test]
async fn escaping_paths_and_oversized_files_are_refused_before_any_connection() {
    let lab = Lab::start("ed25519", "").await;
    let (root, local) = root_of(&lab);
    let shell = lab.shell();
    // `..`, absolute and odd paths cannot even be built.
    for bad in [
        "../etc/passwd",
        "/etc/passwd",
        "a/../../b",
        "a//b",
        "a b",
        "$(reboot)",
    ] {
        assert!(bad.parse::<RelativePath>().is_err(), "{bad:?}");
    }
    for bad in ["relative", "/a/../etc", "/", "/a;b"] {
        assert!(bad.parse::<RemoteRoot>().is_err(), "{bad:?}");
    }
    let before = connections(&lab);
    let limits = TransferLimits {
        max_bytes: 1024,
        timeout: Duration::from_secs(10),
    };
    let err = shell
        .put_file(&lab.host, &root, &rel("big.bin"), &[0u8; 1025], limits)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SshError::FileTooLarge {
                size: 1025,
                max: 1024,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("big.bin"), "{err}");
    let src = lab.path("big.src");
    std::fs::write(&src, [1u8; 4096]).unwrap();
    let err = shell
        .put_local_file(&lab.host, &root, &rel("big.bin"), &src, limits)
        .await
        .unwrap_err();
    assert!(
        matches!(err, SshError::FileTooLarge { size: 4096, .. }),
        "{err:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(connections(&lab), before, "{}", lab.log());
    assert!(!local.join("big.bin").exists());
    // (The log does count connections: one allowed put is one more.)
    shell
        .put_file(&lab.host, &root, &rel("small.bin"), &[0u8; 16], limits)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(connections(&lab), before + 1, "{}", lab.log());
    // A file over the cap on the host is not read whole either.
    std::fs::create_dir_all(&local).unwrap();
    std::fs::write(local.join("huge"), [0u8; 2048]).unwrap();
    let err = shell
        .read_file(&lab.host, &root, &rel("huge"), limits)
        .await
        .unwrap_err();
    assert!(matches!(err, SshError::FileTooLarge { .. }), "{err:?}");
}

#[tokio::test]
async fn a_link_or_directory_at_the_target_is_refused_and_left_alone() {
    let lab = Lab::start("ed25519", "").await;
    let (root, local) = root_of(&lab);
    let shell = lab.shell();
    let limits = TransferLimits::default();
    std::fs::create_dir_all(local.join("dir")).unwrap();
    let outside = lab.path("outside");
    std::fs::write(&outside, b"secret").unwrap();
    std::os::unix::fs::symlink(&outside, local.join("link")).unwrap();
    for name in ["dir", "link"] {
        let err = shell
            .put_file(&lab.host, &root, &rel(name), b"x", limits)
            .await
            .unwrap_err();
        assert!(matches!(err, SshError::FileRefused { .. }), "{err:?}");
        assert!(err.to_string().contains("link or a directory"), "{err}");
    }
    assert_eq!(std::fs::read(&outside).unwrap(), b"secret");
    assert!(
        shell
            .read_file(&lab.host, &root, &rel("link"), limits)
            .await
            .is_err()
    );
    // Listing leaves links, directories and dot files out.
    std::fs::write(local.join("a.ipxe"), b"#!ipxe").unwrap();
    std::fs::write(local.join(".hidden"), b"").unwrap();
    assert_eq!(
        shell
            .list_files(&lab.host, &root, None, limits)
            .await
            .unwrap(),
        vec![rel("a.ipxe")]
    );
}

#[tokio::test]
async fn file_copy_to_a_fixed_host_key_checks_the_pin() {
    let lab = Lab::start("ed25519", "").await;
    let (root, local) = root_of(&lab);
    let firewall = RemoteHost::discovery("serial:opnsense-fw".parse().unwrap(), LOOPBACK);
    let key_type: HostKeyType = "ssh-ed25519".parse().unwrap();
    let right = FixedHostKey::new(
        firewall.id.clone(),
        HostKey {
            key_type: key_type.clone(),
            fingerprint: lab.host_key_fp.parse().unwrap(),
        },
    );
    let shell = SshShell::new(lab.config(), Arc::new(right)).unwrap();
    shell
        .put_file(
            &firewall,
            &root,
            &rel("ok"),
            b"ok",
            TransferLimits::default(),
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(local.join("ok")).unwrap(), b"ok");

    let wrong_fp: HostKeyFingerprint = "SHA256:tK/H8tzEV/c29/EWam196aqu/42IWxDTm4pl2wKLHa4"
        .parse()
        .unwrap();
    let wrong = FixedHostKey::new(
        firewall.id.clone(),
        HostKey {
            key_type,
            fingerprint: wrong_fp,
        },
    );
    let shell = SshShell::new(lab.config(), Arc::new(wrong)).unwrap();
    let err = shell
        .put_file(
            &firewall,
            &root,
            &rel("bad"),
            b"x",
            TransferLimits::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, SshError::HostKeyChanged { .. }), "{err:?}");
    assert!(err.to_string().contains(&lab.host_key_fp), "{err}");
    assert!(!local.join("bad").exists());
    // Another host id under a fixed pin is never trusted at first contact.
    let other = RemoteHost::discovery("serial:someone-else".parse().unwrap(), LOOPBACK);
    let err = shell
        .put_file(&other, &root, &rel("bad"), b"x", TransferLimits::default())
        .await
        .unwrap_err();
    assert!(matches!(err, SshError::UnknownHost { .. }), "{err:?}");
}

#[tokio::test]
async fn an_installed_host_is_reached_as_its_own_user_with_sudo_for_privileged_commands() {
    let lab = Lab::start("ed25519", "").await;
    let mut config = lab.config();
    config.installed_user = "core-harmony-test".into();
    let shell = lab.shell_with(config);
    let installed = RemoteHost::installed(lab.host.id.clone(), lab.host.ip);
    // The installed OS's user, not the discovery environment's.
    let err = shell
        .exec(&installed, &link("lo"), RunLimits::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SshError::AuthRefused { user, .. } if user == "core-harmony-test"),
        "{err:?}"
    );
    assert!(lab.log().contains("core-harmony-test"), "{}", lab.log());
    // Its privileged commands go through sudo, never asking a password;
    // root's do not.
    let wipe = RemoteCommand::WipeDisk {
        device: "/dev/disk/by-id/nvme-eui.0001".parse().unwrap(),
    };
    let as_core = shell.line_for(&installed, &wipe);
    assert!(
        as_core.starts_with("sudo -n -- sh -c 'wipefs --all --force -- "),
        "{as_core}"
    );
    assert_eq!(shell.line_for(&lab.host, &wipe), shell.command_line(&wipe));
}
