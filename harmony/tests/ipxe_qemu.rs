//! Our iPXE scripts under the REAL iPXE: the virtio-net option ROM of
//! Debian's `ipxe-qemu`, in a QEMU VM (TCG), PXE-booting from dnsmasq and a
//! tiny HTTP server. Everything runs in a network namespace this test creates
//! and deletes; 198.51.100.0/24 (TEST-NET-2) exists only in there.
//!
//! Two VMs boot at the same time:
//! - the KNOWN host (52:54:00:12:34:56) has a per-MAC `scos-boot` script whose
//!   kernel is junk (780 KB, too big to pass for a PXE NBP): iPXE must chain
//!   its script, fail to select the kernel and retry after `sleep 10`;
//! - the UNKNOWN host (52:54:00:12:34:57) has none (404): `default.ipxe` must
//!   fall back to the inventory branch, fetch kernel + initrd and boot. Its
//!   "kernel" is a minimal fake bzImage whose real-mode entry prints a marker
//!   on COM1 and halts, which proves iPXE accepted kernel and initrd and
//!   jumped into the kernel.
//!
//! Needs root (network namespace, tap devices), `qemu-system-x86_64`, the
//! iPXE ROM and `dnsmasq`: run `.ci/setup`. Without permission to create a
//! namespace the test prints SKIPPED; missing programs fail it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use harmony::domain::{HttpUrl, KernelArg, MacAddress};
use harmony::infra::lab::netns::LabNetns;
use harmony::infra::lab::vm::{NicSpec, Vm, VmSpec};
use harmony::infra::process::Service;
use harmony::modules::boot::{
    CentosBoot, DefaultIpxe, ScosBoot, per_mac_ipxe_path, render_default_ipxe, render_scos_boot,
};

const TEST: &str = "ipxe_qemu::real_ipxe_runs_our_scripts";
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const PORT: u16 = 8080;
const BASE: &str = "http://198.51.100.1:8080";
use harmony::infra::lab::vm::IPXE_VIRTIO_ROM as IPXE_ROM;

const KNOWN_MAC: &str = "52:54:00:12:34:56";
const KNOWN_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const UNKNOWN_MAC: &str = "52:54:00:12:34:57";
const UNKNOWN_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 11);

const SCOS_KERNEL: &str = "/os/scos/scos-live-kernel.x86_64";
const SCOS_INITRAMFS: &str = "/os/scos/scos-live-initramfs.x86_64.img";
const CENTOS_KERNEL: &str = "/os/centos-stream-9/images/pxeboot/vmlinuz";
const CENTOS_INITRD: &str = "/os/centos-stream-9/images/pxeboot/initrd.img";

/// What the fake bzImage prints on COM1 once iPXE jumps into it.
const KERNEL_MARKER: &str = "HARMONY-FAKE-KERNEL";

/// Upper bound for both VMs to do everything we wait for (TCG: iPXE asks
/// DHCP at ~15-20 s, the known host's retry comes ~10 s after that).
const VM_BUDGET: Duration = Duration::from_secs(75);
/// Hard kill by `timeout(1)` even if this process dies without unwinding.
const HARD_KILL_SECS: &str = "150";

// ---------------------------------------------------------------- guards

/// Starts `ip netns exec NS timeout -s KILL N PROG...` through Harmony's
/// process runner: the returned guard owns the process group (`ip` execs
/// `timeout`, which leads it), so dropping it kills the program too;
/// `timeout` is a last resort if this process dies without unwinding.
fn spawn_in(name: &'static str, ns: &LabNetns, argv: &[&str], log: &Path) -> Service {
    ns.program("timeout")
        .args(["-s", "KILL", HARD_KILL_SECS])
        .args(argv)
        .start(log)
        .unwrap_or_else(|e| panic!("{TEST}: starting {name}: {e}"))
}

/// SIGTERM to the group, SIGKILL after 3 s.
fn stop(svc: &mut Service) {
    if let Err(e) = svc.stop_blocking(Duration::from_secs(3)) {
        eprintln!("{TEST}: stopping {}: {e}", svc.command_line());
    }
}

/// Kills a VM's QEMU (SIGTERM, SIGKILL after 3 s).
fn stop_vm(vm: &mut Vm) {
    if let Err(e) = vm.kill_blocking(Duration::from_secs(3)) {
        eprintln!("{TEST}: stopping {vm}: {e}");
    }
}

/// Stops and joins the HTTP server thread.
struct ServerGuard {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

// ---------------------------------------------------------------- HTTP

#[derive(Debug, Clone)]
struct Request {
    /// Since the VMs were started.
    at: Duration,
    peer: IpAddr,
    method: String,
    path: String,
    status: u16,
}

type Log = Arc<Mutex<Vec<Request>>>;

/// A tiny HTTP/1.0 file server on `SERVER:PORT` inside `ns`: serves `root`,
/// logs every request, one connection at a time (iPXE fetches one file at a
/// time). Runs until `stop` or `deadline`.
fn start_http(ns: &LabNetns, root: PathBuf, t0: Instant, deadline: Instant) -> (ServerGuard, Log) {
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let ns_path = ns.path();
    let ns_name = ns.name().to_string();
    let (log2, stop2) = (log.clone(), stop.clone());
    let handle = std::thread::spawn(move || {
        let entered = (|| {
            let f = File::open(&ns_path).map_err(|e| format!("{}: {e}", ns_path.display()))?;
            nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("setns({ns_name}): {e}"))?;
            let l = TcpListener::bind(SocketAddr::new(IpAddr::V4(SERVER), PORT))
                .map_err(|e| format!("bind {SERVER}:{PORT}: {e}"))?;
            l.set_nonblocking(true).map_err(|e| e.to_string())?;
            Ok(l)
        })();
        let listener = match entered {
            Ok(l) => {
                let _ = ready_tx.send(Ok(()));
                l
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                return;
            }
        };
        while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
            match listener.accept() {
                Ok((stream, peer)) => serve_one(stream, peer.ip(), &root, t0, &log2),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => {
                    eprintln!("{TEST}: accept: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    });
    let guard = ServerGuard {
        stop,
        handle: Some(handle),
    };
    match ready_rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{TEST}: HTTP server: {e}"),
        Err(e) => panic!("{TEST}: HTTP server did not start: {e}"),
    }
    (guard, log)
}

fn serve_one(mut stream: TcpStream, peer: IpAddr, root: &Path, t0: Instant, log: &Log) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let mut words = head.lines().next().unwrap_or("").split_whitespace();
    let method = words.next().unwrap_or("").to_string();
    let target = words.next().unwrap_or("").to_string();
    let path = target.split('?').next().unwrap_or("").to_string();
    let body = if (method == "GET" || method == "HEAD")
        && path.starts_with('/')
        && !path.split('/').any(|c| c == "..")
    {
        std::fs::read(root.join(path.trim_start_matches('/'))).ok()
    } else {
        None
    };
    let status = if body.is_some() { 200 } else { 404 };
    let body = body.unwrap_or_else(|| b"not found\n".to_vec());
    let reason = if status == 200 { "OK" } else { "Not Found" };
    let mut resp = format!(
        "HTTP/1.0 {status} {reason}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        resp.extend_from_slice(&body);
    }
    let _ = stream.write_all(&resp);
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let req = Request {
        at: t0.elapsed(),
        peer,
        method,
        path: target,
        status,
    };
    eprintln!(
        "{TEST}: http +{:6.2}s {} {} {} -> {}",
        req.at.as_secs_f64(),
        req.peer,
        req.method,
        req.path,
        req.status
    );
    log.lock().unwrap().push(req);
}

fn requests_of(log: &Log, ip: Ipv4Addr) -> Vec<Request> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|r| r.peer == IpAddr::V4(ip))
        .cloned()
        .collect()
}

fn show(reqs: &[Request]) -> String {
    reqs.iter()
        .map(|r| {
            format!(
                "  +{:6.2}s {} {} {} -> {}\n",
                r.at.as_secs_f64(),
                r.peer,
                r.method,
                r.path,
                r.status
            )
        })
        .collect()
}

/// Position of the first `GET path` at or after `from`.
fn find_get(reqs: &[Request], path: &str, from: usize) -> Option<usize> {
    reqs.iter()
        .enumerate()
        .skip(from)
        .find(|(_, r)| r.method == "GET" && r.path == path)
        .map(|(i, _)| i)
}

fn gets_of<'a>(reqs: &'a [Request], path: &str) -> Vec<&'a Request> {
    reqs.iter()
        .filter(|r| r.method == "GET" && r.path == path)
        .collect()
}

// ---------------------------------------------------------------- serial

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Serial text without ANSI escape sequences.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        if c != '\r' {
            out.push(c);
        }
    }
    out
}

/// iPXE's error lines in a serial log.
fn ipxe_errors(serial: &str) -> Vec<String> {
    const PATTERNS: [&str; 8] = [
        "could not",
        "no such",
        "not found",
        "syntax error",
        "invalid",
        "error",
        "failed",
        "ipxe.org/",
    ];
    plain(serial)
        .lines()
        .map(str::trim)
        .filter(|l| {
            let lower = l.to_lowercase();
            PATTERNS.iter().any(|p| lower.contains(p))
        })
        .map(str::to_string)
        .collect()
}

fn serial_report(name: &str, path: &Path) -> String {
    let text = read_lossy(path);
    let errors = ipxe_errors(&text);
    let tail: Vec<String> = plain(&text)
        .lines()
        .rev()
        .filter(|l| !l.trim().is_empty())
        .take(25)
        .map(str::to_string)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!(
        "--- {name} serial: iPXE error lines\n{}\n--- {name} serial: last lines\n{}\n",
        errors.join("\n"),
        tail.join("\n")
    )
}

// ---------------------------------------------------------------- fixtures

fn url(path: &str) -> HttpUrl {
    format!("{BASE}{path}").parse().unwrap()
}

fn args(list: &[&str]) -> Vec<KernelArg> {
    list.iter().map(|a| a.parse().unwrap()).collect()
}

fn default_ipxe() -> DefaultIpxe {
    DefaultIpxe {
        http_base: url("/"),
        centos: CentosBoot {
            kernel: url(CENTOS_KERNEL),
            initrd: url(CENTOS_INITRD),
            stage2: url("/os/centos-stream-9"),
            kickstart: url("/inventory.ks"),
            extra_args: args(&["rd.shell=0", "net.ifnames=1"]),
        },
    }
}

fn scos_boot() -> ScosBoot {
    ScosBoot {
        kernel: url(SCOS_KERNEL),
        initramfs: url(SCOS_INITRAMFS),
        rootfs: url("/os/scos/scos-live-rootfs.x86_64.img"),
        install_dev: "/dev/disk/by-id/nvme-eui.0000000700000000".parse().unwrap(),
        ignition_url: url("/ignition/master.ign"),
        network_args: args(&[
            "bond=bond0:eno1,eno2:mode=802.3ad,miimon=100",
            "ip=198.51.100.21::198.51.100.1:255.255.255.0:master-0.ocp.example.com:bond0:none",
            "nameserver=198.51.100.1",
        ]),
        extra_args: args(&["rd.multipath=0"]),
    }
}

/// A minimal Linux boot-protocol 2.06 image iPXE accepts as a bzImage: four
/// setup sectors plus one protected-mode sector. Its real-mode entry (where
/// iPXE jumps, setup segment + 0x20) writes [`KERNEL_MARKER`] to COM1 and
/// halts forever.
fn fake_bzimage() -> Vec<u8> {
    let mut img = vec![0u8; 5 * 512 + 512];
    img[0x1f1] = 4; // setup_sects
    img[0x1fa..0x1fc].copy_from_slice(&0xffffu16.to_le_bytes()); // vid_mode: normal
    img[0x1fe..0x200].copy_from_slice(&[0x55, 0xaa]); // boot_flag
    img[0x200..0x202].copy_from_slice(&[0xeb, 0x7e]); // jmp short 0x280
    img[0x202..0x206].copy_from_slice(b"HdrS");
    img[0x206..0x208].copy_from_slice(&0x0206u16.to_le_bytes()); // version
    img[0x211] = 0x01; // loadflags: LOADED_HIGH (bzImage)
    img[0x22c..0x230].copy_from_slice(&0x7fff_ffffu32.to_le_bytes()); // initrd_addr_max
    img[0x238..0x23c].copy_from_slice(&2048u32.to_le_bytes()); // cmdline_size
    let mut code = vec![0xfa, 0xba, 0xf8, 0x03]; // cli; mov dx, 0x3f8
    for b in format!("\r\n{KERNEL_MARKER}\r\n").bytes() {
        code.extend_from_slice(&[0xb0, b, 0xee]); // mov al, b; out dx, al
    }
    code.extend_from_slice(&[0xf4, 0xeb, 0xfd]); // hlt; jmp hlt
    img[0x280..0x280 + code.len()].copy_from_slice(&code);
    img
}

fn write(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, data).unwrap();
}

// ---------------------------------------------------------------- prerequisites

fn require_programs() {
    let hint = "run `.ci/setup` (installs qemu-system-x86 ipxe-qemu dnsmasq)";
    for (prog, arg) in [
        ("qemu-system-x86_64", "--version"),
        ("dnsmasq", "--version"),
    ] {
        let ok = Command::new(prog)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "{TEST}: `{prog}` is missing or broken; {hint}");
    }
    assert!(
        Path::new(IPXE_ROM).is_file(),
        "{TEST}: iPXE NIC ROM {IPXE_ROM} is missing; {hint}"
    );
}

// ---------------------------------------------------------------- the test

#[test]
fn real_ipxe_runs_our_scripts() {
    let started = Instant::now();
    // Declared first, dropped last: every process in it is gone by then.
    let ns = match LabNetns::create("ipxeq") {
        Ok(ns) => ns,
        Err(e) if e.to_string().contains("Operation not permitted") => {
            eprintln!(
                "\n==========\nSKIPPED: {TEST}: cannot create a namespace: {e}\n==========\n"
            );
            return;
        }
        Err(e) => panic!("{TEST}: {e}"),
    };
    require_programs();

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("http");
    std::fs::create_dir_all(&root).unwrap();

    // Boot files: the rendered scripts, the known host's per-MAC script, fakes.
    let default = render_default_ipxe(&default_ipxe()).unwrap();
    let known: MacAddress = KNOWN_MAC.parse().unwrap();
    let unknown: MacAddress = UNKNOWN_MAC.parse().unwrap();
    let known_script = format!("/{}", per_mac_ipxe_path(&known).as_str());
    let unknown_script = format!("/{}", per_mac_ipxe_path(&unknown).as_str());
    assert_eq!(known_script, "/ipxe/52-54-00-12-34-56.ipxe");
    write(&root, "default.ipxe", default.as_bytes());
    write(
        &root,
        &known_script,
        render_scos_boot(&scos_boot()).unwrap().as_bytes(),
    );
    // Junk iPXE cannot select. It must be larger than base memory: iPXE
    // takes any blob up to 0xa0000 - 0x7c00 bytes for a PXE NBP (no
    // signature to check) and jumps into it, so a few bytes of junk hang the
    // VM instead of reaching the script's failure path (seen with this iPXE).
    write(&root, SCOS_KERNEL, &b"not a kernel\n".repeat(60 * 1024));
    write(&root, SCOS_INITRAMFS, b"not an initramfs\n");
    write(&root, CENTOS_KERNEL, &fake_bzimage());
    write(&root, CENTOS_INITRD, b"fake initrd\n");

    // Network: br0 + one tap per VM, all inside the namespace.
    ns.add_bridge("br0", "198.51.100.1/24").unwrap();
    for tap in ["tapk", "tapu"] {
        ns.add_tap(tap, "br0").unwrap();
    }

    // DHCP.
    let conf = dir.path().join("dnsmasq.conf");
    std::fs::write(
        &conf,
        format!(
            "port=0\n\
             interface=br0\n\
             bind-interfaces\n\
             dhcp-range=198.51.100.100,198.51.100.150,255.255.255.0,1h\n\
             dhcp-host={KNOWN_MAC},{KNOWN_IP}\n\
             dhcp-host={UNKNOWN_MAC},{UNKNOWN_IP}\n\
             dhcp-leasefile={dir}/dnsmasq.leases\n\
             pid-file={dir}/dnsmasq.pid\n\
             log-dhcp\n\
             dhcp-userclass=set:ipxe,iPXE\n\
             dhcp-boot=tag:ipxe,{BASE}/default.ipxe\n",
            dir = dir.path().display()
        ),
    )
    .unwrap();
    let dnsmasq_log = dir.path().join("dnsmasq.log");
    let conf_arg = format!("--conf-file={}", conf.display());
    let mut dnsmasq = spawn_in(
        "dnsmasq",
        &ns,
        &["dnsmasq", "--no-daemon", &conf_arg],
        &dnsmasq_log,
    );

    let t0 = Instant::now();
    let (server, log) = start_http(
        &ns,
        root.clone(),
        t0,
        t0 + VM_BUDGET + Duration::from_secs(5),
    );
    std::thread::sleep(Duration::from_millis(300));
    if let Some(st) = dnsmasq.try_wait().unwrap() {
        panic!(
            "{TEST}: dnsmasq exited early ({st}):\n{}",
            read_lossy(&dnsmasq_log)
        );
    }

    // The VMs: one NIC each, through the lab's machine builder.
    let vm = |name: &str, tap: &str, mac: &str, uuid: &str| -> (Vm, PathBuf) {
        let nic = NicSpec {
            mac: mac.parse().unwrap(),
            tap: tap.parse().unwrap(),
        };
        let mut spec = VmSpec::new(name, 256, vec![nic], vec![]);
        (spec.sockets, spec.cores, spec.threads) = (1, 1, 1);
        spec.smbios_uuid = uuid.into();
        // Plain bridge, no OVS: offloads may stay on (as before the lab).
        spec.offloads_off = false;
        spec.exit_on_reboot = true;
        let hard_kill = Duration::from_secs(HARD_KILL_SECS.parse().unwrap());
        let vm = Vm::start(&ns, spec, dir.path(), Some(hard_kill))
            .unwrap_or_else(|e| panic!("{TEST}: starting {name}: {e}"));
        let serial = vm.files().serial.clone();
        (vm, serial)
    };
    let (mut vm_known, serial_known) = vm(
        "qemu-known",
        "tapk",
        KNOWN_MAC,
        "00000000-0000-4000-8000-000000000001",
    );
    let (mut vm_unknown, serial_unknown) = vm(
        "qemu-unknown",
        "tapu",
        UNKNOWN_MAC,
        "00000000-0000-4000-8000-000000000002",
    );

    // Wait (bounded) until both hosts did what we look for, or a VM died.
    let known_done = |reqs: &[Request]| gets_of(reqs, SCOS_KERNEL).len() >= 2;
    let unknown_done = |reqs: &[Request]| {
        find_get(reqs, CENTOS_INITRD, 0).is_some()
            && plain(&read_lossy(&serial_unknown)).contains(KERNEL_MARKER)
    };
    let deadline = t0 + VM_BUDGET;
    let mut known_at = None;
    let mut unknown_at = None;
    while Instant::now() < deadline && (known_at.is_none() || unknown_at.is_none()) {
        if known_at.is_none() && known_done(&requests_of(&log, KNOWN_IP)) {
            known_at = Some(t0.elapsed());
            stop_vm(&mut vm_known);
        }
        if unknown_at.is_none() && unknown_done(&requests_of(&log, UNKNOWN_IP)) {
            unknown_at = Some(t0.elapsed());
            stop_vm(&mut vm_unknown);
        }
        // A VM that exits on its own (-no-reboot) will fetch nothing more.
        // (A VM stopped above because it is done keeps its exit state.)
        let exited = [
            (&mut vm_known, "known", known_at),
            (&mut vm_unknown, "unknown", unknown_at),
        ]
        .into_iter()
        .filter(|(_, _, done)| done.is_none())
        .filter_map(|(vm, name, _)| vm.exit_state().map(|st| format!("{name} VM exited: {st}")))
        .collect::<Vec<_>>();
        if !exited.is_empty() {
            eprintln!("{TEST}: {}", exited.join("; "));
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    stop_vm(&mut vm_known);
    stop_vm(&mut vm_unknown);
    drop(server);
    stop(&mut dnsmasq);

    let known_reqs = requests_of(&log, KNOWN_IP);
    let unknown_reqs = requests_of(&log, UNKNOWN_IP);
    let context = format!(
        "\n--- all HTTP requests\n{}{}{}--- dnsmasq (tail)\n{}\n",
        show(&log.lock().unwrap()),
        serial_report("known host", &serial_known),
        serial_report("unknown host", &serial_unknown),
        read_lossy(&dnsmasq_log)
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!(
        "{TEST}: known host done at {known_at:?}, unknown host done at {unknown_at:?}, \
         test ran {:.1}s{context}",
        started.elapsed().as_secs_f64()
    );

    for (name, serial) in [("known", &serial_known), ("unknown", &serial_unknown)] {
        assert!(
            read_lossy(serial).contains("iPXE"),
            "{name} VM: the iPXE option ROM never ran ({IPXE_ROM}; run `.ci/setup`){context}"
        );
    }

    // Case A: known host -> default.ipxe -> its per-MAC script -> kernel.
    let a = find_get(&known_reqs, "/default.ipxe", 0)
        .unwrap_or_else(|| panic!("known host never fetched /default.ipxe{context}"));
    let b = find_get(&known_reqs, &known_script, a + 1).unwrap_or_else(|| {
        panic!("known host did not chain {known_script} after default.ipxe{context}")
    });
    assert_eq!(known_reqs[b].status, 200, "{context}");
    find_get(&known_reqs, SCOS_KERNEL, b + 1).unwrap_or_else(|| {
        panic!("known host did not fetch the SCOS kernel after its script{context}")
    });
    assert!(
        find_get(&known_reqs, SCOS_INITRAMFS, 0).is_none(),
        "a kernel iPXE cannot select must not go on to the initramfs{context}"
    );
    assert!(
        gets_of(&known_reqs, CENTOS_KERNEL).is_empty(),
        "the known host must never take the inventory branch{context}"
    );
    // The fake kernel cannot be selected: the failure path sleeps 10 s and
    // retries from `:retry`.
    let kernels = gets_of(&known_reqs, SCOS_KERNEL);
    assert!(
        kernels.len() >= 2,
        "known host: no retry of the kernel after it failed (fetches: {}){context}",
        kernels.len()
    );
    let gap = kernels[1].at.saturating_sub(kernels[0].at);
    eprintln!(
        "{TEST}: known host: kernel fetched at +{:.2}s and +{:.2}s: retry gap {:.2}s",
        kernels[0].at.as_secs_f64(),
        kernels[1].at.as_secs_f64(),
        gap.as_secs_f64()
    );
    assert!(
        gap >= Duration::from_secs(9),
        "known host retried after {gap:?}, not after `sleep 10`{context}"
    );

    // Case B: unknown host -> default.ipxe -> 404 -> inventory kernel + initrd.
    let a = find_get(&unknown_reqs, "/default.ipxe", 0)
        .unwrap_or_else(|| panic!("unknown host never fetched /default.ipxe{context}"));
    let b = find_get(&unknown_reqs, &unknown_script, a + 1).unwrap_or_else(|| {
        panic!("unknown host did not try {unknown_script} after default.ipxe{context}")
    });
    assert_eq!(unknown_reqs[b].status, 404, "{context}");
    let k = find_get(&unknown_reqs, CENTOS_KERNEL, b + 1).unwrap_or_else(|| {
        panic!("unknown host did not fall back to the inventory kernel{context}")
    });
    let i = find_get(&unknown_reqs, CENTOS_INITRD, k + 1)
        .unwrap_or_else(|| panic!("unknown host did not fetch the inventory initrd{context}"));
    assert_eq!(unknown_reqs[k].status, 200, "{context}");
    assert_eq!(unknown_reqs[i].status, 200, "{context}");
    assert!(
        plain(&read_lossy(&serial_unknown)).contains(KERNEL_MARKER),
        "iPXE fetched kernel and initrd but never jumped into the kernel{context}"
    );
    eprintln!("iPXE test took {:?}", started.elapsed());
}
