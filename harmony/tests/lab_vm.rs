//! One virtual-lab machine end to end, all real programs: in a network
//! namespace this test creates, dnsmasq (DHCP, iPXE user class) and an HTTP
//! server serve the lab's discovery image — Debian's kernel and the
//! initramfs `harmony::infra::lab::images` builds (busybox, virtio and
//! bonding modules, dropbear with a fresh operator key, the static agent).
//! A QEMU VM (TCG, 2 virtio NICs, a 20 GiB sparse disk, 2 sockets × 2 cores,
//! 1 GiB, SMBIOS serial/UUID) PXE boots it through the iPXE NIC ROM; the
//! agent's JSON must match the VM's configuration, dropbear must accept the
//! operator key, and QMP must power the VM off. Prints the time from VM
//! start to the agent answering.
//!
//! Needs root, `qemu-system-x86_64`, `ipxe-qemu`, `dnsmasq`, `busybox-static`,
//! `dropbear-bin`, `ssh`, `ssh-keygen`, `curl`, `python3` (run `.ci/setup`),
//! network access to Debian's archive the first time (the kernel package is
//! cached in `$HARMONY_LAB_CACHE`, default `/var/tmp/harmony-lab`), and the
//! static agent (`cargo agent`, or `$HARMONY_AGENT`). Without permission to
//! create a namespace the test prints SKIPPED; anything else missing fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/lab.rs"]
mod lab;
use std::time::{Duration, Instant};

use harmony::infra::lab::images::{DebianKernel, DiscoveryImage, INSMOD_FAILED_MARKER};
use harmony::infra::lab::site::operator_keypair;
use harmony::infra::lab::vm::{DiskFormat, DiskSpec, NicSpec, Vm, VmSpec};
use harmony::infra::process::{Program, Service};
use harmony_inventory_agent::model::Inventory;
use lab::{agent_binary, lab_cache, run_in, tail};

const TEST: &str = "lab_vm::a_lab_vm_pxe_boots_discovery_and_reports_its_hardware";
const SERVER: &str = "198.51.100.1";
const HTTP_PORT: u16 = 8080;
const AGENT_PORT: u16 = 25000;
const MAC_A: &str = "52:54:00:1a:b0:01";
const MAC_B: &str = "52:54:00:1a:b0:02";
const IP_A: &str = "198.51.100.21";
const IP_B: &str = "198.51.100.22";
const SERIAL: &str = "HARMONY-LAB-0001";
const UUID: &str = "5f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const DISK_BYTES: u64 = 20 << 30;
const MEMORY_MIB: u32 = 1024;

/// Firmware + iPXE + kernel + agent under TCG: ~30-60 s here; generous.
const BOOT_BUDGET: Duration = Duration::from_secs(240);
/// `timeout -s KILL` on every process, if this test dies without unwinding.
const HARD_KILL: Duration = Duration::from_secs(600);

#[test]
fn a_lab_vm_pxe_boots_discovery_and_reports_its_hardware() {
    let Some(ns) = lab::netns_or_skip(TEST, "labvm", &[]) else {
        return;
    };
    let agent = agent_binary();
    assert!(
        agent.is_file(),
        "{TEST}: the static agent {} is missing: run `cargo agent`",
        agent.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let http = dir.path().join("http");
    std::fs::create_dir_all(&http).unwrap();

    // The operator's key.
    let key = dir.path().join("id_operator");
    let public = operator_keypair(&key).unwrap();

    // The discovery image: Debian's kernel + our initramfs.
    let t = Instant::now();
    let kernel = DebianKernel::fetch(&lab_cache(), None).unwrap();
    let image = DiscoveryImage::new(agent, &public, AGENT_PORT);
    let size = image.build(&kernel, &http.join("initrd.gz")).unwrap();
    std::fs::copy(kernel.vmlinuz(), http.join("vmlinuz")).unwrap();
    eprintln!(
        "{TEST}: kernel {} and initramfs ({} KiB) ready in {:.1}s",
        kernel.version,
        size / 1024,
        t.elapsed().as_secs_f64()
    );
    std::fs::write(
        http.join("boot.ipxe"),
        format!(
            "#!ipxe\n\
             kernel http://{SERVER}:{HTTP_PORT}/vmlinuz console=ttyS0 panic=-1 quiet\n\
             initrd http://{SERVER}:{HTTP_PORT}/initrd.gz\n\
             boot\n"
        ),
    )
    .unwrap();

    // Network: a bridge with both NICs' taps.
    ns.add_bridge("br0", &format!("{SERVER}/24")).unwrap();
    ns.add_tap("labt0", "br0").unwrap();
    ns.add_tap("labt1", "br0").unwrap();

    // DHCP (each MAC its address) and HTTP.
    let conf = dir.path().join("dnsmasq.conf");
    std::fs::write(
        &conf,
        format!(
            "port=0\n\
             interface=br0\n\
             bind-interfaces\n\
             dhcp-range=198.51.100.100,198.51.100.150,255.255.255.0,1h\n\
             dhcp-host={MAC_A},{IP_A}\n\
             dhcp-host={MAC_B},{IP_B}\n\
             dhcp-leasefile={d}/dnsmasq.leases\n\
             pid-file={d}/dnsmasq.pid\n\
             log-dhcp\n\
             dhcp-userclass=set:ipxe,iPXE\n\
             dhcp-boot=tag:ipxe,http://{SERVER}:{HTTP_PORT}/boot.ipxe\n",
            d = dir.path().display()
        ),
    )
    .unwrap();
    let conf_arg = format!("--conf-file={}", conf.display());
    let dnsmasq_log = dir.path().join("dnsmasq.log");
    let mut dnsmasq = lab::start_in(
        &ns,
        TEST,
        HARD_KILL,
        &["dnsmasq", "--no-daemon", &conf_arg],
        &dnsmasq_log,
    );
    let http_dir = http.display().to_string();
    let port = HTTP_PORT.to_string();
    let http_log = dir.path().join("http.log");
    let mut httpd = lab::start_in(
        &ns,
        TEST,
        HARD_KILL,
        &[
            "python3",
            "-m",
            "http.server",
            &port,
            "--bind",
            SERVER,
            "--directory",
            &http_dir,
        ],
        &http_log,
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        dnsmasq.is_running(),
        "dnsmasq exited: {}",
        dnsmasq.log_tail(2000)
    );
    assert!(
        httpd.is_running(),
        "HTTP server exited: {}",
        httpd.log_tail(2000)
    );

    // The VM.
    let mut spec = VmSpec::new(
        "lab1",
        MEMORY_MIB,
        vec![
            NicSpec {
                mac: MAC_A.parse().unwrap(),
                tap: "labt0".parse().unwrap(),
            },
            NicSpec {
                mac: MAC_B.parse().unwrap(),
                tap: "labt1".parse().unwrap(),
            },
        ],
        vec![DiskSpec {
            size_bytes: DISK_BYTES,
            format: DiskFormat::Raw,
            serial: "LABDISK1".into(),
        }],
    );
    spec.smbios_serial = SERIAL.into();
    spec.smbios_uuid = UUID.into();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut vm = Vm::start(&ns, spec, dir.path(), Some(HARD_KILL)).unwrap();
    let started = vm.started();
    let context = |vm: &Vm, dnsmasq: &Service, httpd: &Service| {
        format!(
            "\n--- serial (tail)\n{}\n--- qemu\n{}\n--- dnsmasq (tail)\n{}\n--- http (tail)\n{}\n",
            tail(&vm.serial_text(), 40),
            vm.qemu_log_tail(),
            tail(&dnsmasq.log_tail(6000), 20),
            tail(&httpd.log_tail(4000), 10),
        )
    };

    // QMP answers while the machine runs.
    let status = rt.block_on(async {
        let mut q = vm.qmp(Duration::from_secs(20)).await?;
        q.status().await
    });
    let status = status.unwrap_or_else(|e| panic!("{e}{}", context(&vm, &dnsmasq, &httpd)));
    assert!(status.running, "QMP status {status:?}");

    // Bounded wait for the agent on the first NIC's reserved address.
    let url = format!("http://{IP_A}:{AGENT_PORT}/");
    let deadline = started + BOOT_BUDGET;
    let mut body = None;
    while Instant::now() < deadline {
        if !vm.is_running() {
            panic!("the VM exited{}", context(&vm, &dnsmasq, &httpd));
        }
        if let Ok(b) = run_in(
            &ns,
            &["curl", "-sf", "-m", "3", &url],
            Duration::from_secs(5),
        ) {
            body = Some(b);
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let to_agent = started.elapsed();
    let body = body.unwrap_or_else(|| {
        panic!(
            "no agent answer on {url} within {BOOT_BUDGET:?}{}",
            context(&vm, &dnsmasq, &httpd)
        )
    });
    eprintln!(
        "{TEST}: VM start -> agent answering: {:.1}s",
        to_agent.as_secs_f64()
    );
    let serial = vm.serial_text();
    assert!(
        !serial.contains(INSMOD_FAILED_MARKER),
        "a module did not load{}",
        context(&vm, &dnsmasq, &httpd)
    );
    assert!(serial.contains("iPXE"), "the VM did not boot through iPXE");

    // The JSON matches the VM's configuration. The NICs are the PCI ones:
    // the agent also lists `/sys/class/net/bonding_masters` (a file the
    // bonding module adds there) as a virtual NIC.
    let inv: Inventory = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("agent JSON does not parse: {e}\n{body:.2000}"));
    let nics: Vec<_> = inv
        .network
        .iter()
        .filter(|n| n.pci_address.is_some())
        .collect();
    let macs: Vec<String> = nics.iter().filter_map(|n| n.mac.clone()).collect();
    assert_eq!(nics.len(), 2, "PCI NICs: {macs:?} of {:?}", inv.network);
    assert!(macs.contains(&MAC_A.to_string()), "MACs {macs:?}");
    assert!(macs.contains(&MAC_B.to_string()), "MACs {macs:?}");
    for n in &nics {
        assert_eq!(n.speed_mbps, Some(1000), "{}: speed", n.name);
    }
    let sizes: Vec<Option<u64>> = inv.storage.iter().map(|d| d.size_bytes).collect();
    assert_eq!(sizes, vec![Some(DISK_BYTES)], "disks {:?}", inv.storage);
    assert_eq!(inv.storage[0].serial.as_deref(), Some("LABDISK1"));
    assert_eq!(inv.cpu.sockets, Some(2), "cpu {:?}", inv.cpu);
    assert_eq!(inv.cpu.cores, Some(4), "cores, all sockets: {:?}", inv.cpu);
    assert_eq!(
        inv.cpu.threads,
        Some(4),
        "threads, all sockets: {:?}",
        inv.cpu
    );
    let mem = u64::from(MEMORY_MIB) << 20;
    assert_eq!(
        inv.memory.smbios_total_bytes,
        Some(mem),
        "memory {:?}",
        inv.memory
    );
    let total = inv.memory.total_bytes.unwrap();
    assert!(
        total <= mem && total > mem / 2,
        "MemTotal {total} for {mem}"
    );
    assert_eq!(inv.system.serial.as_deref(), Some(SERIAL));
    assert_eq!(
        inv.system
            .uuid
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some(UUID)
    );

    // Dropbear accepts the operator key (and only keys: BatchMode).
    let ssh_out = lab::ssh_in(&ns, &key, IP_A, "cat /sys/class/dmi/id/product_serial", 1)
        .unwrap_or_else(|e| {
            panic!(
                "ssh with the operator key: {e}{}",
                context(&vm, &dnsmasq, &httpd)
            )
        });
    assert_eq!(ssh_out.trim(), SERIAL);
    // A key the image does not hold is refused.
    let other = dir.path().join("id_other");
    Program::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .timeout(Duration::from_secs(30))
        .run_blocking()
        .unwrap();
    let refused = lab::ssh_in(&ns, &other, IP_A, "true", 1);
    assert!(refused.is_err(), "a foreign key was accepted");

    // QMP powers the machine off; QEMU exits.
    let t_off = Instant::now();
    rt.block_on(async {
        let mut q = vm.qmp(Duration::from_secs(10)).await?;
        q.power_off().await
    })
    .unwrap_or_else(|e| panic!("QMP power off: {e}"));
    let exit = rt.block_on(vm.wait_exit(Duration::from_secs(20)));
    assert!(exit.is_some(), "QEMU still runs 20 s after QMP quit");
    eprintln!(
        "{TEST}: powered off through QMP in {:.2}s ({:?})",
        t_off.elapsed().as_secs_f64(),
        exit
    );
    drop(vm);
    let _ = httpd.stop_blocking(Duration::from_secs(3));
    let _ = dnsmasq.stop_blocking(Duration::from_secs(3));
}
