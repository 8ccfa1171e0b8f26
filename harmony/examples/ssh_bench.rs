//! SSH fan-out benchmark, on loopback only: one command (`LinkState lo`,
//! i.e. `ip -json link show dev 'lo'`) over SSH to 50 hosts at once. The
//! hosts are 50 `sshd` this benchmark starts on 127.0.1.1 to 127.0.1.50
//! (one port, a host key and authorized keys in a temp dir) and stops.
//! Harmony's `SshShell` (russh: connect, key exchange with the pinned host
//! key, ed25519 authentication, the command) runs the 50 concurrently;
//! the peer is OpenSSH's own client, 50 `ssh` processes in parallel with
//! the same key and the host keys in a known_hosts file. Goal: under 2 s.
//! The 50 sshd share this machine's cores (on a site each host has its
//! own), so each round also prints the CPU time of the client and of the
//! 50 sshd (listeners and the connection processes they reaped).
//!
//! `cargo run --release -p harmony --example ssh_bench` (as root: sshd's
//! privilege separation).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use harmony::domain::{
    HostId, HostKey, HostKeyPins, HostKeyStoreError, MacAddress, PinOutcome, PinnedHostKey,
    RemoteCommand, RemoteHost, RunLimits,
};
use harmony::infra::process::{Program, Service};
use harmony::infra::ssh::{SshConfig, SshShell, command, ssh_answers};

const HOSTS: u8 = 50;
const ROUNDS: usize = 3;

/// Pins in memory; every host counts as discovered.
#[derive(Debug, Default)]
struct Pins(Mutex<HashMap<HostId, PinnedHostKey>>);

impl HostKeyPins for Pins {
    fn pinned_key(&self, host: &HostId) -> Result<Option<PinnedHostKey>, HostKeyStoreError> {
        Ok(self.0.lock().unwrap().get(host).cloned())
    }
    fn pin_first_key(
        &self,
        host: &HostId,
        key: &HostKey,
        at: SystemTime,
    ) -> Result<PinOutcome, HostKeyStoreError> {
        let mut pins = self.0.lock().unwrap();
        if let Some(p) = pins.get(host) {
            return Ok(PinOutcome::AlreadyPinned(p.clone()));
        }
        let pin = PinnedHostKey {
            key: key.clone(),
            first_seen: at,
        };
        pins.insert(host.clone(), pin);
        Ok(PinOutcome::Pinned)
    }
    fn forget_key(&self, host: &HostId) -> Result<bool, HostKeyStoreError> {
        Ok(self.0.lock().unwrap().remove(host).is_some())
    }
}

fn ip(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 1, n))
}

fn keygen(path: &Path) {
    Program::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .run_blocking()
        .unwrap();
}

fn start_sshd(dir: &Path, n: u8, port: u16) -> Service {
    let d = dir.display();
    let cfg = dir.join(format!("sshd_config.{n}"));
    std::fs::write(
        &cfg,
        format!(
            "ListenAddress {}:{port}\nHostKey {d}/host_key\nPidFile {d}/sshd.{n}.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
             PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nLogLevel ERROR\nMaxStartups 100\n",
            ip(n)
        ),
    )
    .unwrap();
    Program::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(&cfg)
        .start(&dir.join(format!("sshd.{n}.log")))
        .unwrap()
}

/// CPU time of this process (own, and of its reaped children: the `ssh`
/// clients), from /proc/self/stat, in ms (USER_HZ = 100 on Linux).
fn cpu_ms() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let rest = stat.rsplit_once(')').unwrap().1;
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|x| x.parse().unwrap())
        .collect();
    ((f[0] + f[1]) * 10, (f[2] + f[3]) * 10)
}

/// CPU time (ms) the sshd listeners and the connections they reaped used.
fn sshd_cpu_ms(sshds: &[Service]) -> u64 {
    sshds
        .iter()
        .filter_map(|s| std::fs::read_to_string(format!("/proc/{}/stat", s.pid()?)).ok())
        .map(|stat| {
            let rest = stat
                .rsplit_once(')')
                .map(|(_, r)| r.to_string())
                .unwrap_or_default();
            rest.split_whitespace()
                .skip(11)
                .take(4)
                .map(|x| x.parse::<u64>().unwrap_or(0))
                .sum::<u64>()
                * 10
        })
        .sum()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all("/run/sshd").unwrap();
    keygen(&dir.path().join("host_key"));
    keygen(&dir.path().join("client"));
    std::fs::copy(
        dir.path().join("client.pub"),
        dir.path().join("authorized_keys"),
    )
    .unwrap();
    let port = std::net::TcpListener::bind((ip(1), 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sshds: Vec<Service> = (1..=HOSTS)
        .map(|n| start_sshd(dir.path(), n, port))
        .collect();
    let until = Instant::now() + Duration::from_secs(20);
    for n in 1..=HOSTS {
        while !ssh_answers(SocketAddr::new(ip(n), port), Duration::from_millis(500)).await {
            assert!(Instant::now() < until, "sshd on {} never answered", ip(n));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let hosts: Vec<RemoteHost> = (1..=HOSTS)
        .map(|n| {
            RemoteHost::discovery(
                HostId::from_macs(&[MacAddress::new([0x52, 0x54, 0, 0, 1, n])]).unwrap(),
                ip(n),
            )
        })
        .collect();
    let mut config = SshConfig::new(dir.path().join("client"));
    config.port = port;
    let shell = Arc::new(SshShell::new(config, Arc::new(Pins::default())).unwrap());
    let command = RemoteCommand::LinkState {
        interface: "lo".parse().unwrap(),
    };
    // What `exec` sends: the fixed line under `timeout` on the host; the
    // OpenSSH peer sends the same.
    let line = command::bounded(&shell.command_line(&command), RunLimits::default().timeout);

    // Harmony: round 1 pins every host key (first contact), the others
    // check the pins.
    let mut harmony = Vec::new();
    for round in 0..ROUNDS {
        let start = Instant::now();
        let (cpu, server_cpu) = (cpu_ms().0, sshd_cpu_ms(&sshds));
        let mut tasks = tokio::task::JoinSet::new();
        for h in &hosts {
            let (shell, h, command) = (Arc::clone(&shell), h.clone(), command.clone());
            tasks.spawn(async move { shell.exec(&h, &command, RunLimits::default()).await });
        }
        let mut ok = 0;
        while let Some(r) = tasks.join_next().await {
            let out = r.unwrap().unwrap();
            assert!(
                out.success() && out.stdout.contains("\"ifname\":\"lo\""),
                "{out:?}"
            );
            ok += 1;
        }
        let took = start.elapsed();
        assert_eq!(ok, usize::from(HOSTS));
        println!(
            "harmony (russh)  round {}: {ok} hosts in {:>7.1} ms, client CPU {:>5} ms, sshd CPU {:>5} ms{}",
            round + 1,
            took.as_secs_f64() * 1e3,
            cpu_ms().0 - cpu,
            sshd_cpu_ms(&sshds) - server_cpu,
            if round == 0 {
                " (first contact: pins)"
            } else {
                ""
            }
        );
        harmony.push(took);
    }

    // OpenSSH: the same command, 50 `ssh` processes at once.
    let host_key = std::fs::read_to_string(dir.path().join("host_key.pub")).unwrap();
    let host_key: Vec<&str> = host_key.split_whitespace().take(2).collect();
    let known: String = (1..=HOSTS)
        .map(|n| format!("[{}]:{port} {}\n", ip(n), host_key.join(" ")))
        .collect();
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, known).unwrap();
    let mut openssh = Vec::new();
    for round in 0..ROUNDS {
        let start = Instant::now();
        let (cpu, server_cpu) = (cpu_ms().1, sshd_cpu_ms(&sshds));
        let mut tasks = tokio::task::JoinSet::new();
        for n in 1..=HOSTS {
            let p = Program::new("ssh")
                .args(["-F", "/dev/null", "-i"])
                .arg(dir.path().join("client"))
                .args(["-p", &port.to_string(), "-o", "BatchMode=yes"])
                .args(["-o", "StrictHostKeyChecking=yes", "-o"])
                .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
                .args(["-o", "ConnectTimeout=5"])
                .arg(format!("root@{}", ip(n)))
                .arg(&line)
                .timeout(Duration::from_secs(30));
            tasks.spawn(async move { p.run().await });
        }
        let mut ok = 0;
        while let Some(r) = tasks.join_next().await {
            let out = r.unwrap().unwrap();
            assert!(String::from_utf8_lossy(&out.stdout).contains("\"ifname\":\"lo\""));
            ok += 1;
        }
        let took = start.elapsed();
        println!(
            "OpenSSH ssh x{ok}  round {}: {ok} hosts in {:>7.1} ms, client CPU {:>5} ms, sshd CPU {:>5} ms",
            round + 1,
            took.as_secs_f64() * 1e3,
            cpu_ms().1 - cpu,
            sshd_cpu_ms(&sshds) - server_cpu
        );
        openssh.push(took);
    }

    let (h, o) = (median(harmony), median(openssh));
    println!(
        "one command to {HOSTS} hosts at once: harmony {:.1} ms (median of {ROUNDS}; goal < 2000 ms: {}), \
         OpenSSH {:.1} ms ({:.1}x)",
        h.as_secs_f64() * 1e3,
        if h < Duration::from_secs(2) {
            "met"
        } else {
            "MISSED"
        },
        o.as_secs_f64() * 1e3,
        o.as_secs_f64() / h.as_secs_f64()
    );
}
