//! One lab machine installed and bonded, all real programs, in a network
//! namespace this test creates:
//! - the lab's provisioning network (`infra::lab::network`): a private
//!   Open vSwitch, userspace datapath, the VM's two NIC taps as access
//!   ports, the site address on the bridge's internal port;
//! - dnsmasq started by `infra::dnsmasq` (its rendered configuration, a
//!   reservation through `DhcpServer`), and an HTTP server (python3) that
//!   serves the boot files and records the installer's phase reports;
//! - the boot files rendered by Harmony: `default.ipxe` and the per-MAC
//!   `scos-boot.ipxe` with the bond plan's `bond=`/`ip=` arguments, the
//!   host's Ignition (hostname + nmstate bond keyfiles) from the ignition
//!   module; the kernel and initramfs are the lab's stand-in installer
//!   (`infra::lab::installer`).
//!
//! The host's Ignition lacks the bond keyfiles: the VM PXE boots into the
//! installer with the planned `bond=`, which fetches the Ignition, refuses
//! it and reports `failed` naming the missing keyfile; its disk stays
//! blank and it still answers SSH (so Harmony can reboot it). The happy
//! path (installed, bonded, LACP negotiated with OVS) is `lab_e2e`'s, where
//! Harmony drives it. Prints the time from VM start to the refusal.
//!
//! Needs root, `qemu-system-x86_64`, `ipxe-qemu`, Open vSwitch, dnsmasq,
//! busybox-static, dropbear-bin, ssh, ethtool, python3 (`.ci/setup`), and
//! Debian's kernel package (cached as in `lab_vm`). Without the right to
//! create a namespace, or without QEMU or Open vSwitch, it prints SKIPPED.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/lab.rs"]
mod lab;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use harmony::domain::values::{Hostname, HttpUrl, InterfaceName, MacAddress, Role};
use harmony::domain::{DhcpReservation, DhcpServer, HostHardware, VlanId};
use harmony::infra::dnsmasq::{DhcpRange, Dnsmasq, DnsmasqConfig};
use harmony::infra::lab::images::DebianKernel;
use harmony::infra::lab::installer::{InstallHeader, InstallerImage, PHASE_MARKER};
use harmony::infra::lab::netns::LabNetns;
use harmony::infra::lab::network::LabNetwork;
use harmony::infra::lab::site::operator_keypair;
use harmony::infra::lab::vm::{DiskFormat, DiskSpec, NicSpec, Vm, VmSpec};
use harmony::inventory_model::{Cpu, Inventory, Memory, Nic, System};
use harmony::modules::boot::{
    CentosBoot, DefaultIpxe, ScosBoot, per_mac_ipxe_path, render_default_ipxe, render_scos_boot,
};
use harmony::modules::okd::bond::{Addressing, SiteBondPolicy, plan_bond};
use harmony::modules::okd::ignition::{HostIgnition, host_ignition};
use lab::{lab_cache, tail};

const TEST: &str = "lab_install::a_lab_vm_refuses_an_ignition_without_its_bond_keyfiles";
const SERVER: &str = "198.51.100.1";
const HTTP_PORT: u16 = 8080;
const MAC_A: &str = "52:54:00:1c:b0:01";
const MAC_B: &str = "52:54:00:1c:b0:02";
const IP_A: &str = "198.51.100.31";
const HOSTNAME: &str = "lab-m0";
const DISK_SERIAL: &str = "LABDISK1";
const BRIDGE: &str = "labbr";

/// Firmware + iPXE + kernel + installer under TCG: ~40-90 s; generous.
const BOOT_BUDGET: Duration = Duration::from_secs(300);
/// `timeout -s KILL` on every process, if this test dies without unwinding.
const HARD_KILL: Duration = Duration::from_secs(1200);

/// Serves the HTTP root and appends each POST body to the report file.
const HTTP_SERVER: &str = r#"
import http.server, sys, functools
root, reports, bind, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
class H(http.server.SimpleHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(min(n, 4096)).decode("ascii", "replace")
        with open(reports, "a") as f:
            f.write(self.path + " " + body.replace("\n", " ") + "\n")
        self.send_response(204)
        self.end_headers()
http.server.ThreadingHTTPServer((bind, port), functools.partial(H, directory=root)).serve_forever()
"#;

/// `cmd` on the VM over SSH (6 attempts: see `lab::ssh_in`).
fn ssh(ns: &LabNetns, key: &Path, cmd: &str) -> Result<String, String> {
    lab::ssh_in(ns, key, IP_A, cmd, 6)
}

/// One phase report, decoded from the form body (`+` is a space).
fn parse_report(line: &str) -> (String, BTreeMap<String, String>) {
    let (path, body) = line.split_once(' ').unwrap_or((line, ""));
    let fields = body
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace('+', " ")))
        .collect();
    (path.to_string(), fields)
}

fn reports(file: &Path) -> Vec<BTreeMap<String, String>> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let (path, f) = parse_report(l);
            assert_eq!(path, "/lab/report", "reported to {path}");
            f
        })
        .collect()
}

fn write_atomic(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn nic(name: &str, mac: &str, pci: &str) -> Nic {
    let mut n = Nic::new(name);
    n.mac = Some(mac.into());
    n.permanent_mac = Some(mac.into());
    n.speed_mbps = Some(1000);
    n.carrier = Some(true);
    n.operstate = Some("up".into());
    n.pci_address = Some(pci.into());
    n
}

/// The VM as discovery reports it (kernel names: no udev in the images).
fn vm_inventory() -> Inventory {
    Inventory {
        schema_version: 1,
        agent_version: "0.1.0".into(),
        collected_at: "2026-01-01T00:00:00Z".into(),
        hostname: None,
        warnings: vec![],
        system: System::default(),
        cpu: Cpu::default(),
        memory: Memory::default(),
        storage: vec![],
        network: vec![
            nic("eth0", MAC_A, "0000:00:03.0"),
            nic("eth1", MAC_B, "0000:00:04.0"),
        ],
    }
}

fn url(path: &str) -> HttpUrl {
    format!("http://{SERVER}:{HTTP_PORT}/{path}")
        .parse()
        .unwrap()
}

/// Waits (bounded) for a report with `phase` after the first `skip`.
fn wait_phase(
    file: &Path,
    skip: usize,
    phases: &[&str],
    vm: &mut Vm,
    budget: Duration,
    context: &dyn Fn(&Vm) -> String,
) -> Vec<BTreeMap<String, String>> {
    let deadline = Instant::now() + budget;
    loop {
        let all = reports(file);
        let new: Vec<_> = all.into_iter().skip(skip).collect();
        if new
            .iter()
            .any(|r| phases.contains(&r.get("phase").map(String::as_str).unwrap_or("")))
        {
            return new;
        }
        if !vm.is_running() {
            panic!("{TEST}: the VM exited{}", context(vm));
        }
        if Instant::now() >= deadline {
            panic!(
                "{TEST}: no {phases:?} report within {budget:?}; reports {new:?}{}",
                context(vm)
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_lab_vm_refuses_an_ignition_without_its_bond_keyfiles() {
    let needs = ["qemu-system-x86_64", "ovs-vswitchd", "ovsdb-server"];
    let Some(ns) = lab::netns_or_skip(TEST, "labinst", &needs) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let http = dir.path().join("http");
    std::fs::create_dir_all(&http).unwrap();
    let report_file = dir.path().join("reports.log");

    // The operator's key and the installer image.
    let key = dir.path().join("id_operator");
    let public = operator_keypair(&key).unwrap();
    let t = Instant::now();
    let kernel = DebianKernel::fetch(&lab_cache(), None).unwrap();
    let image = InstallerImage::new(
        &public,
        Some(format!("http://{SERVER}:{HTTP_PORT}/lab/report")),
        None,
    );
    let size = image
        .build(&kernel, &http.join("os/initramfs.img"))
        .unwrap();
    std::fs::copy(kernel.vmlinuz(), http.join("os/vmlinuz")).unwrap();
    // The live rootfs the installer fetches first (`coreos.live.rootfs_url`).
    write_atomic(&http.join("os/rootfs.img"), &[0x5a; 64 << 10]);
    eprintln!(
        "{TEST}: installer image ({} KiB) ready in {:.1}s",
        size / 1024,
        t.elapsed().as_secs_f64()
    );

    // The bond plan, the boot scripts and the Ignition, from Harmony's code.
    let hw = HostHardware::from_wire(&vm_inventory()).unwrap();
    let bond = plan_bond(&hw, &SiteBondPolicy::default(), Addressing::Dhcp, None).unwrap();
    assert!(bond.is_bond(), "{bond}");
    let network_args = bond.kernel_args().unwrap();
    let args: Vec<String> = network_args.iter().map(|a| a.to_string()).collect();
    assert!(
        args.iter()
            .any(|a| a.starts_with("bond=bond0:eth0,eth1:mode=802.3ad")),
        "{args:?}"
    );
    let mac_a: MacAddress = MAC_A.parse().unwrap();
    let default = render_default_ipxe(&DefaultIpxe {
        http_base: url(""),
        centos: CentosBoot {
            kernel: url("os/none"),
            initrd: url("os/none"),
            stage2: url("os/none"),
            kickstart: url("os/none"),
            extra_args: vec![],
        },
    })
    .unwrap();
    write_atomic(&http.join("default.ipxe"), default.as_bytes());
    let scos = render_scos_boot(&ScosBoot {
        kernel: url("os/vmlinuz"),
        initramfs: url("os/initramfs.img"),
        rootfs: url("os/rootfs.img"),
        install_dev: format!("/dev/disk/by-id/virtio-{DISK_SERIAL}")
            .parse()
            .unwrap(),
        ignition_url: url(&format!("ignition/{HOSTNAME}.ign")),
        network_args,
        extra_args: vec!["panic=-1".parse().unwrap()],
    })
    .unwrap();
    write_atomic(
        &http.join(per_mac_ipxe_path(&mac_a).as_str()),
        scos.as_bytes(),
    );
    let host = |keyfiles| {
        host_ignition(&HostIgnition {
            hostname: HOSTNAME.parse::<Hostname>().unwrap(),
            role: Role::ControlPlane,
            role_config: url("ignition/master.ign"),
            ca: None,
            keyfiles,
        })
        .unwrap()
    };
    assert!(!bond.keyfiles().unwrap().is_empty());
    let ign_path = http.join(format!("ignition/{HOSTNAME}.ign"));
    write_atomic(&ign_path, &host(Vec::new()));

    // The provisioning network and the site services.
    let vlan = VlanId::try_from(1).unwrap();
    let mut net = rt
        .block_on(LabNetwork::up(&ns, BRIDGE, &format!("{SERVER}/24"), vlan))
        .unwrap();
    let taps: Vec<InterfaceName> = vec!["labi0".parse().unwrap(), "labi1".parse().unwrap()];
    for t in &taps {
        rt.block_on(net.add_vm_port(&ns, t)).unwrap();
    }
    let http_dir = http.display().to_string();
    let reports_arg = report_file.display().to_string();
    let port = HTTP_PORT.to_string();
    let mut httpd = lab::start_in(
        &ns,
        TEST,
        HARD_KILL,
        &[
            "python3",
            "-c",
            HTTP_SERVER,
            &http_dir,
            &reports_arg,
            SERVER,
            &port,
        ],
        &dir.path().join("http.log"),
    );
    let mut config = DnsmasqConfig::new(
        dir.path().join("dnsmasq"),
        BRIDGE.parse().unwrap(),
        DhcpRange {
            start: "198.51.100.100".parse().unwrap(),
            end: "198.51.100.150".parse().unwrap(),
            netmask: "255.255.255.0".parse().unwrap(),
            lease_time: Duration::from_secs(3600),
        },
        url("default.ipxe"),
    );
    config.dns_port = 0;
    config.netns = Some(ns.name().parse().unwrap());
    let dnsmasq = rt.block_on(Dnsmasq::start(config)).unwrap();
    rt.block_on(dnsmasq.reserve(&DhcpReservation {
        mac: mac_a,
        ip: IP_A.parse::<IpAddr>().unwrap(),
        hostname: HOSTNAME.parse().unwrap(),
    }))
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(httpd.is_running(), "HTTP server: {}", httpd.log_tail(2000));

    // The VM: two NICs on the two access ports, a small install disk.
    let mut spec = VmSpec::new(
        "inst1",
        768,
        vec![
            NicSpec {
                mac: mac_a,
                tap: taps[0].clone(),
            },
            NicSpec {
                mac: MAC_B.parse().unwrap(),
                tap: taps[1].clone(),
            },
        ],
        vec![DiskSpec {
            size_bytes: 64 << 20,
            format: DiskFormat::Raw,
            serial: DISK_SERIAL.into(),
        }],
    );
    spec.smbios_serial = "HARMONY-LAB-INST1".into();
    spec.smbios_uuid = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4e".into();
    let mut vm = Vm::start(&ns, spec, dir.path(), Some(HARD_KILL)).unwrap();
    let started = vm.started();
    let dnsmasq_log = dnsmasq.layout().log.clone();
    let http_log = dir.path().join("http.log");
    let context = |vm: &Vm| {
        format!(
            "\n--- serial (tail)\n{}\n--- qemu\n{}\n--- dnsmasq (tail)\n{}\n--- http (tail)\n{}\n",
            tail(&vm.serial_text(), 40),
            vm.qemu_log_tail(),
            tail(
                &std::fs::read_to_string(&dnsmasq_log).unwrap_or_default(),
                15
            ),
            tail(&std::fs::read_to_string(&http_log).unwrap_or_default(), 10),
        )
    };

    // Bad input: the host's Ignition without its bond keyfiles. The
    // installer refuses it, says why, and writes nothing. (The happy path,
    // installed, bonded, LACP negotiated, is `lab_e2e`'s, through Harmony.)
    let got = wait_phase(
        &report_file,
        0,
        &["failed", "bond-up"],
        &mut vm,
        BOOT_BUDGET,
        &context,
    );
    let to_refusal = started.elapsed();
    let phases: Vec<&str> = got.iter().map(|r| r["phase"].as_str()).collect();
    assert_eq!(
        phases,
        ["ignition-fetched", "failed"],
        "{got:?}{}",
        context(&vm)
    );
    let failed = &got[1];
    assert!(
        failed["detail"].contains("no NetworkManager keyfile for bond bond0"),
        "{failed:?}"
    );
    assert_eq!(failed["mac"], MAC_A, "{failed:?}");
    assert_eq!(failed["hostname"], HOSTNAME, "{failed:?}");
    assert!(vm.serial_text().contains(PHASE_MARKER));
    assert_eq!(
        InstallHeader::read(&vm.files().disks[0]).unwrap(),
        None,
        "wrote the disk for a refused config"
    );
    // The refused host still answers (dropbear), so Harmony can reboot it.
    let hostname = ssh(&ns, &key, "hostname")
        .unwrap_or_else(|e| panic!("ssh to the refused host: {e}{}", context(&vm)));
    assert_eq!(hostname.trim(), HOSTNAME);
    eprintln!(
        "{TEST}: VM start -> refused config reported failed in {:.1}s",
        to_refusal.as_secs_f64()
    );

    drop(vm);
    let _ = rt.block_on(dnsmasq.stop());
    let _ = httpd.stop_blocking(Duration::from_secs(3));
    rt.block_on(net.down()).unwrap();
}
