//! The discovery environment's SSH, against Debian's real `sshd`.
//!
//! `templates/inventory.ks` starts `/usr/sbin/sshd -f
//! /etc/ssh/sshd_config.anaconda -o …`: CentOS Stream 9's `install.img` has
//! no `/etc/ssh/sshd_config`, only lorax's `sshd_config.anaconda`, which
//! permits root, passwords and empty passwords. These tests take the sshd
//! command line from the rendered kickstart (never a copy of it), run it
//! with a config file shaped like Anaconda's on a loopback port, as a
//! process they own and stop, and log in with the real `ssh` client:
//!
//! - a key login as root succeeds;
//! - a password login as root, an empty-password login as `install` (UID 0,
//!   as lorax creates it) and a key login as `install` are refused, and the
//!   server offers `publickey` only.
//!
//! A control runs the same probes against Anaconda's file alone (no
//! kickstart options): there every one of those logins succeeds, so the
//! probes can tell a refusal from a broken probe.
//!
//! sshd runs in a mount namespace of its own where copies of `/etc/passwd`
//! and `/etc/shadow` are bound over the real ones: root has a known
//! password and `install` has none, as in the installer image before %pre.
//! Needs root, `unshare`, `sshd`, `ssh`, `ssh-keygen` and `sshpass`
//! (`.ci/setup` installs them); their absence fails the tests.
//!
//! The kickstart's `lock_accounts` function is run too, on copies of a
//! lorax-shaped passwd and shadow.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use harmony::modules::boot::{InventoryKs, SshPublicKey, render_inventory_ks};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Root's password inside the test's namespace, and its SHA-512 crypt
/// (`openssl passwd -6 -salt harmonysshdtest harmony-test-password`).
const ROOT_PASSWORD: &str = "harmony-test-password";
const ROOT_HASH: &str = "$6$harmonysshdtest$qj0FnL3.JgDdCClJNegyeROCm/UVEPQnsyHjTeX1aEEu4A5vSdxAWfJAObvYFphN2Ct0e1pkyZGmoUYfWDLzq1";

/// lorax's `sshd_config.anaconda` (share/templates.d/99-generic/
/// config_files/common), line for line.
const ANACONDA_SSHD_CONFIG: &str = "PermitRootLogin yes
PrintMotd yes
SyslogFacility AUTHPRIV
PasswordAuthentication yes
PermitEmptyPasswords yes
PermitUserEnvironment yes
Subsystem sftp internal-sftp
";

fn tool(path: &str) -> &str {
    assert!(
        Path::new(path).is_file(),
        "{path} is missing: run .ci/setup (openssh-server, openssh-client, sshpass)"
    );
    path
}

/// A directory for the test's keys and configs, in the target directory.
fn private_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("discovery-sshd")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

fn ssh_keygen(file: &Path, comment: &str) {
    let out = Command::new(tool("/usr/bin/ssh-keygen"))
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

fn rendered_kickstart(key: SshPublicKey) -> String {
    render_inventory_ks(&InventoryKs {
        agent_url: "http://192.168.77.1:8080/agent/harmony-inventory-agent"
            .parse()
            .unwrap(),
        agent_sha256: "3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b"
            .parse()
            .unwrap(),
        ssh_authorized_keys: vec![key],
        agent_port: 25000,
        repo: None,
    })
    .unwrap()
}

/// The kickstart's sshd command line, split as `sh` splits it: from
/// `/usr/sbin/sshd` to the first redirection, across `\` continuations.
/// Every word must be plain (no quoting or expansion for `sh` to do), so
/// the list is exactly the argv sshd gets.
fn kickstart_sshd_argv(ks: &str) -> Vec<String> {
    let starts: Vec<usize> = ks.match_indices("/usr/sbin/sshd ").map(|m| m.0).collect();
    assert_eq!(starts.len(), 1, "one sshd command line in the kickstart");
    let mut logical = String::new();
    for line in ks[starts[0]..].lines() {
        match line.trim_end().strip_suffix('\\') {
            Some(more) => logical.push_str(more),
            None => {
                logical.push_str(line);
                break;
            }
        }
        logical.push(' ');
    }
    let argv: Vec<String> = logical
        .split_whitespace()
        .take_while(|w| !w.starts_with('>') && !w.contains(';') && !w.starts_with("2>"))
        .map(str::to_string)
        .collect();
    for w in &argv {
        assert!(
            w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/=._,-".contains(&b)),
            "{w:?} is not a plain word: {logical}"
        );
    }
    argv
}

/// The `-o` options of the kickstart's sshd line, after checking its shape:
/// `/usr/sbin/sshd -f /etc/ssh/sshd_config.anaconda (-o KEY=VALUE)+`.
fn kickstart_sshd_options(ks: &str) -> Vec<String> {
    let argv = kickstart_sshd_argv(ks);
    assert_eq!(
        argv[..3],
        ["/usr/sbin/sshd", "-f", "/etc/ssh/sshd_config.anaconda"],
        "{argv:?}"
    );
    let rest = &argv[3..];
    assert!(!rest.is_empty() && rest.len().is_multiple_of(2), "{argv:?}");
    for pair in rest.chunks(2) {
        assert_eq!(pair[0], "-o", "only -o options follow: {argv:?}");
        assert!(pair[1].contains('='), "{argv:?}");
    }
    rest.to_vec()
}

/// An sshd the test owns: stopped (SIGTERM, then SIGKILL) on drop.
struct Sshd {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Sshd {
    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The installer's accounts, as sshd sees them: this machine's passwd and
/// shadow, with root's password set to [`ROOT_PASSWORD`] and lorax's
/// `install` account (UID 0, home /root, empty password) added.
fn installer_accounts(dir: &Path) -> (PathBuf, PathBuf) {
    let mut passwd = fs::read_to_string("/etc/passwd").unwrap();
    passwd.push_str("install:x:0:0:root:/root:/bin/sh\n");
    let mut shadow = String::new();
    let mut root_seen = false;
    for line in fs::read_to_string("/etc/shadow").unwrap().lines() {
        match line.split_once(':') {
            Some(("root", rest)) => {
                root_seen = true;
                let after = rest.split_once(':').map_or("", |r| r.1);
                shadow.push_str(&format!("root:{ROOT_HASH}:{after}\n"));
            }
            _ => {
                shadow.push_str(line);
                shadow.push('\n');
            }
        }
    }
    assert!(root_seen, "no root in /etc/shadow");
    shadow.push_str("install::14438:0:99999:7:::\n");
    let (p, s) = (dir.join("passwd"), dir.join("shadow"));
    fs::write(&p, passwd).unwrap();
    fs::write(&s, shadow).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(&s, fs::Permissions::from_mode(0o600)).unwrap();
    (p, s)
}

/// Starts `/usr/sbin/sshd -D -e -p PORT -h HOSTKEY -f <anaconda-shaped
/// config> OPTIONS…` in a mount namespace with the installer's accounts,
/// and waits (bounded) until it accepts connections.
fn start_sshd(dir: &Path, authorized_key: &str, options: &[String]) -> Sshd {
    let hostkey = dir.join("ssh_host_ed25519_key");
    ssh_keygen(&hostkey, "host");
    let keys = dir.join("authorized_keys");
    fs::write(&keys, format!("{authorized_key}\n")).unwrap();
    fs::set_permissions(&keys, fs::Permissions::from_mode(0o600)).unwrap();
    // Anaconda's file, plus what only the test needs: loopback only, the
    // test's key file and pid file, and `StrictModes no` because the
    // checkout may live below a world-writable directory such as /tmp,
    // which StrictModes refuses as an ancestor of authorized_keys (file
    // modes are not what this test is about).
    let config = dir.join("sshd_config.anaconda");
    fs::write(
        &config,
        format!(
            "{ANACONDA_SSHD_CONFIG}ListenAddress 127.0.0.1\nStrictModes no\nAuthorizedKeysFile {}\nPidFile {}\n",
            keys.display(),
            dir.join("sshd.pid").display()
        ),
    )
    .unwrap();
    let (passwd, shadow) = installer_accounts(dir);
    // Debian's sshd wants its privilege separation directory.
    fs::create_dir_all("/run/sshd").unwrap();
    let port = free_port();
    let log = dir.join("sshd.log");
    let child = Command::new(tool("/usr/bin/unshare"))
        .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
        .arg(
            r#"p=$1 s=$2; shift 2
mount --bind "$p" /etc/passwd && mount --bind "$s" /etc/shadow && exec "$@""#,
        )
        .arg("sh")
        .arg(&passwd)
        .arg(&shadow)
        .arg(tool("/usr/sbin/sshd"))
        .args(["-D", "-e", "-p", &port.to_string(), "-h"])
        .arg(&hostkey)
        .arg("-f")
        .arg(&config)
        .args(options)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&log).unwrap())
        .stderr(fs::File::options().append(true).open(&log).unwrap())
        .spawn()
        .unwrap();
    let mut sshd = Sshd { child, port, log };
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = sshd.child.try_wait().unwrap() {
            panic!("sshd exited ({status}):\n{}", sshd.log());
        }
        if TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
            .is_ok()
        {
            return sshd;
        }
        assert!(
            Instant::now() < until,
            "sshd never listened on 127.0.0.1:{port}:\n{}",
            sshd.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How a login attempt authenticates.
enum Login<'a> {
    /// Public key only.
    Key(&'a Path),
    /// No key, no password: the `none` method, which logs in an account
    /// with an empty password when sshd permits empty passwords.
    Nothing,
    /// A password (through `sshpass`), password and keyboard-interactive
    /// methods only.
    Password(&'a str),
}

/// `ssh USER@127.0.0.1 true` with `-v` (so the methods the server offers
/// are in stderr), bounded by `timeout`.
fn ssh(sshd: &Sshd, user: &str, login: Login<'_>) -> Output {
    let mut cmd = Command::new(tool("/usr/bin/timeout"));
    cmd.args(["-k", "5", "30"]);
    if let Login::Password(pw) = login {
        cmd.args([tool("/usr/bin/sshpass"), "-p", pw]);
    }
    cmd.args([
        tool("/usr/bin/ssh"),
        "-v",
        "-F",
        "/dev/null",
        "-p",
        &sshd.port.to_string(),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "ConnectTimeout=10",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "IdentityAgent=none",
    ]);
    match login {
        Login::Key(key) => {
            cmd.args([
                "-o",
                "BatchMode=yes",
                "-o",
                "PreferredAuthentications=publickey",
                "-i",
            ])
            .arg(key);
        }
        Login::Nothing => {
            cmd.args([
                "-o",
                "BatchMode=yes",
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                "PreferredAuthentications=password,keyboard-interactive",
            ]);
        }
        Login::Password(_) => {
            cmd.args([
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                "PreferredAuthentications=password,keyboard-interactive",
                "-o",
                "NumberOfPasswordPrompts=1",
            ]);
        }
    }
    cmd.arg(format!("{user}@127.0.0.1"))
        .arg("true")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The last "Authentications that can continue: …" the client saw.
fn offered_methods(out: &Output) -> Option<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.split_once("Authentications that can continue: "))
        .map(|(_, m)| m.trim().to_string())
        .next_back()
}

fn describe(what: &str, out: &Output, sshd: &Sshd) -> String {
    format!(
        "{what}: {}\n--- ssh stderr\n{}\n--- sshd log\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        sshd.log()
    )
}

/// A client key, the rendered kickstart, and a directory for both.
fn setup() -> (tempfile::TempDir, PathBuf, String) {
    assert!(
        fs::metadata("/proc/self").unwrap().uid() == 0,
        "sshd with privilege separation and a mount namespace need root"
    );
    let dir = private_dir();
    let key = dir.path().join("id_ed25519");
    ssh_keygen(&key, "operator@harmony-test");
    let public = fs::read_to_string(key.with_extension("pub")).unwrap();
    let public = public.trim().to_string();
    let ks = rendered_kickstart(public.parse().unwrap());
    (dir, key, ks)
}

#[test]
fn kickstart_sshd_takes_root_keys_only() {
    let (dir, key, ks) = setup();
    let options = kickstart_sshd_options(&ks);
    let public = fs::read_to_string(key.with_extension("pub")).unwrap();
    let sshd = start_sshd(dir.path(), public.trim(), &options);

    let out = ssh(&sshd, "root", Login::Key(&key));
    assert!(
        out.status.success(),
        "{}",
        describe("key login as root", &out, &sshd)
    );

    let out = ssh(&sshd, "root", Login::Password(ROOT_PASSWORD));
    assert!(
        !out.status.success(),
        "{}",
        describe("password login as root must be refused", &out, &sshd)
    );
    assert_eq!(
        offered_methods(&out).as_deref(),
        Some("publickey"),
        "{}",
        describe("the server offers keys only", &out, &sshd)
    );

    let out = ssh(&sshd, "install", Login::Nothing);
    assert!(
        !out.status.success(),
        "{}",
        describe(
            "empty-password login as install must be refused",
            &out,
            &sshd
        )
    );

    let out = ssh(&sshd, "install", Login::Key(&key));
    assert!(
        !out.status.success(),
        "{}",
        describe("key login as install (UID 0) must be refused", &out, &sshd)
    );
    let log = sshd.log();
    assert!(
        log.contains("User install from 127.0.0.1 not allowed because not listed in AllowUsers"),
        "{log}"
    );
}

/// The control: Anaconda's file alone lets every one of those logins in,
/// so the refusals above come from the kickstart's options.
#[test]
fn anaconda_config_alone_lets_passwords_in() {
    let (dir, key, _ks) = setup();
    let public = fs::read_to_string(key.with_extension("pub")).unwrap();
    let sshd = start_sshd(dir.path(), public.trim(), &[]);
    for (what, user, login) in [
        ("key login as root", "root", Login::Key(&key)),
        (
            "password login as root",
            "root",
            Login::Password(ROOT_PASSWORD),
        ),
        ("empty-password login as install", "install", Login::Nothing),
        ("key login as install", "install", Login::Key(&key)),
    ] {
        let out = ssh(&sshd, user, login);
        assert!(out.status.success(), "{}", describe(what, &out, &sshd));
    }
}

/// The kickstart's `lock_accounts`, run as `sh` runs it, on copies of the
/// accounts lorax leaves in install.img.
#[test]
fn kickstart_locks_every_account_but_root() {
    let (_dir, _key, ks) = setup();
    let start = ks.find("\nlock_accounts() (\n").expect("lock_accounts") + 1;
    let end = start + ks[start..].find("\n)\n").expect("end of lock_accounts") + 3;
    let function = &ks[start..end];
    assert!(
        ks[end..].starts_with("lock_accounts /etc "),
        "called on /etc right after its definition"
    );

    let etc = private_dir();
    let passwd = "\
root:x:0:0:root:/root:/bin/bash
bin:x:1:1:bin:/bin:/sbin/nologin
sync:x:5:0:sync:/sbin:/bin/sync
sshd:x:74:74:Privilege-separated SSH:/usr/share/empty.sshd:/sbin/nologin
legacy:$1$abc$legacyhash:1002:1002::/home/legacy:/bin/bash
install:x:0:0:root:/root:/usr/libexec/anaconda/run-anaconda
install-user:x:1001:1001::/tmp/install-user:/usr/bin/bash
";
    let shadow = "\
root:*:19000:0:99999:7:::
bin:*:19000:0:99999:7:::
sync:*:19000:0:99999:7:::
sshd:!!:19000::::::
operator:$6$salt$usablehash:19000:0:99999:7:::
install::14438:0:99999:7:::
install-user::14438:0:99999:7:::
";
    fs::write(etc.path().join("passwd"), passwd).unwrap();
    fs::write(etc.path().join("shadow"), shadow).unwrap();
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("{function}lock_accounts \"$1\""))
        .arg("sh")
        .arg(etc.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    let shadow = fs::read_to_string(etc.path().join("shadow")).unwrap();
    assert_eq!(
        shadow,
        "\
root:*:19000:0:99999:7:::
bin:*:19000:0:99999:7:::
sync:*:19000:0:99999:7:::
sshd:!!:19000::::::
operator:!$6$salt$usablehash:19000:0:99999:7:::
install:!:14438:0:99999:7:::
install-user:!:14438:0:99999:7:::
"
    );
    let passwd = fs::read_to_string(etc.path().join("passwd")).unwrap();
    assert_eq!(
        passwd,
        "\
root:x:0:0:root:/root:/bin/bash
bin:x:1:1:bin:/bin:/usr/sbin/nologin
sync:x:5:0:sync:/sbin:/usr/sbin/nologin
sshd:x:74:74:Privilege-separated SSH:/usr/share/empty.sshd:/usr/sbin/nologin
legacy:!$1$abc$legacyhash:1002:1002::/home/legacy:/usr/sbin/nologin
install:x:0:0:root:/root:/usr/sbin/nologin
install-user:x:1001:1001::/tmp/install-user:/usr/sbin/nologin
"
    );
    let left: Vec<_> = fs::read_dir(etc.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "passwd" && n != "shadow")
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

/// The kickstart's `sshd_listening` check, run as `sh` runs it in a network
/// namespace of the test's own: false with nothing on port 22 or only a
/// connection from it, true while a socket listens there on IPv4, and on
/// IPv6.
#[test]
fn kickstart_sees_whether_port_22_listens() {
    let (_dir, _key, ks) = setup();
    let start = ks.find("\nsshd_listening() {\n").expect("sshd_listening") + 1;
    let end = start + ks[start..].find("\n}\n").expect("end of sshd_listening") + 3;
    let function = &ks[start..end];
    let script = format!(
        r#"{function}
ip link set lo up || exit 10
listen() {{
    /usr/bin/python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
s.bind((sys.argv[1], 22)); s.listen(); time.sleep(30)' "$1" &
    pid=$!
    i=0
    until sshd_listening; do
        i=$((i + 1))
        if [ "$i" -ge 100 ]; then kill "$pid"; echo "never saw $1 listen"; exit 11; fi
        sleep 0.1
    done
    kill "$pid"; wait "$pid"
}}
if sshd_listening; then echo "listening before anything listens"; exit 12; fi
# A connection whose local port is 22 is not a listener.
/usr/bin/python3 -c 'import socket, time
l = socket.socket(); l.bind(("127.0.0.1", 2222)); l.listen()
c = socket.socket(); c.bind(("127.0.0.1", 22)); c.connect(("127.0.0.1", 2222))
time.sleep(30)' &
pid=$!
i=0
until grep -q ':0016 ' /proc/net/tcp; do
    i=$((i + 1))
    if [ "$i" -ge 100 ]; then kill "$pid"; echo "no connection from port 22"; exit 14; fi
    sleep 0.1
done
sleep 0.2
if sshd_listening; then kill "$pid"; echo "a connection counted as listening"; exit 15; fi
kill "$pid"; wait "$pid"
listen 127.0.0.1
if sshd_listening; then echo "still listening after the listener ended"; exit 13; fi
listen ::1
echo checked
"#
    );
    let out = Command::new(tool("/usr/bin/timeout"))
        .args([
            "-k",
            "5",
            "60",
            tool("/usr/bin/unshare"),
            "--net",
            "--",
            "/bin/sh",
            "-c",
        ])
        .arg(script)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("checked"),
        "{out:?}"
    );
}

/// Runs the kickstart's SSH block (host keys, sshd, the listening check,
/// the console messages) as `sh` runs it, in mount and network namespaces
/// of the test's own, with an empty tmpfs as `/etc/ssh` and, when `config`
/// is given, that file as `/etc/ssh/sshd_config.anaconda`. `say` prints to
/// stdout. A daemon it started is stopped through its pid file, and in any
/// case when the shell, init of a PID namespace of its own, ends.
fn run_ssh_block(ks: &str, config: Option<&str>) -> String {
    let start = ks
        .find("SSHD_LOG=/tmp/harmony-sshd.log\n")
        .expect("SSHD_LOG");
    let failed = start
        + ks[start..]
            .find("\nelse\n    say \"ERROR: sshd failed to start")
            .expect("failure branch");
    let end = failed + ks[failed..].find("\nfi\n").expect("end of the block") + 4;
    let dir = private_dir();
    let block = ks[start..end].replace(
        "SSHD_LOG=/tmp/harmony-sshd.log",
        &format!("SSHD_LOG={}/sshd.log", dir.path().display()),
    );
    let config_file = dir.path().join("sshd_config.anaconda");
    fs::write(&config_file, config.unwrap_or_default()).unwrap();
    fs::create_dir_all("/run/sshd").unwrap();
    let script = format!(
        r#"mount -t tmpfs -o mode=0755 tmpfs /etc/ssh || exit 10
ip link set lo up || exit 11
say() {{ echo "harmony: $*"; }}
if [ -s "$1" ]; then cp "$1" /etc/ssh/sshd_config.anaconda || exit 12; fi
{block}
if [ -s /etc/ssh/harmony-test.pid ]; then
    kill "$(cat /etc/ssh/harmony-test.pid)"
fi
"#
    );
    let out = Command::new(tool("/usr/bin/timeout"))
        .args(["-k", "5", "60", tool("/usr/bin/unshare")])
        .args([
            "--mount",
            "--propagation",
            "private",
            "--net",
            "--pid",
            "--fork",
            "--",
        ])
        .args(["/bin/sh", "-c", &script, "sh"])
        .arg(&config_file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// install.img has no sshd_config.anaconda here: sshd exits, and the
/// kickstart says so on the console with sshd's own words.
#[test]
fn kickstart_says_when_sshd_does_not_start() {
    let (_dir, _key, ks) = setup();
    let out = run_ssh_block(&ks, None);
    assert!(
        out.contains("harmony: ERROR: sshd failed to start (status ")
            && out.contains("): NO SSH ACCESS to this host"),
        "{out}"
    );
    assert!(
        out.contains("harmony: sshd: /etc/ssh/sshd_config.anaconda: No such file or directory"),
        "{out}"
    );
}

/// With Anaconda's file in place the same block starts sshd, sees it
/// listen on port 22 and says so.
#[test]
fn kickstart_says_when_sshd_listens() {
    let (_dir, _key, ks) = setup();
    let config = format!(
        "{ANACONDA_SSHD_CONFIG}ListenAddress 127.0.0.1\nPidFile /etc/ssh/harmony-test.pid\n"
    );
    let out = run_ssh_block(&ks, Some(&config));
    assert!(
        out.contains("harmony: sshd listening on port 22 (root, SSH keys only)"),
        "{out}"
    );
    assert!(!out.contains("ERROR"), "{out}");
}
