//! The lab's provisioning network (`infra::lab::network`) as a VM's NIC
//! sees it: a private Open vSwitch (userspace datapath) in a namespace this
//! test creates, the site address on the bridge's internal port, one VM
//! port added as the lab adds it. The test holds the tap's other end, as
//! QEMU does, and asks for the site address by ARP from a VM's MAC.
//!
//! Every answer must carry the bridge port's MAC. A tap is also an
//! interface of the namespace's IP stack; left as it is, the namespace
//! answers a second time from the tap with the tap's own MAC, and a VM that
//! kept that answer lost every connection its bond sent over its other
//! NIC (the lab's "every other connection times out" after LACP).
//!
//! Needs root and Open vSwitch (`.ci/setup`); without them it prints
//! SKIPPED.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/lab.rs"]
mod lab;

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use harmony::domain::VlanId;
use harmony::domain::values::InterfaceName;
use harmony::infra::lab::netns::LabNetns;
use harmony::infra::lab::network::LabNetwork;

const TEST: &str = "lab_network::a_vm_learns_the_site_address_from_the_switch_alone";
const SITE: [u8; 4] = [198, 51, 100, 1];
const VM_IP: [u8; 4] = [198, 51, 100, 50];
const VM_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x1e, 0x00, 0x01];
/// How long to ask; answers keep coming for a while after the first.
const ASK_FOR: Duration = Duration::from_secs(6);

/// Opens the tap `name` of `ns` as QEMU does (`/dev/net/tun`, TUNSETIFF,
/// no packet info), non-blocking.
#[allow(unsafe_code)]
fn open_tap(ns: &LabNetns, name: &str) -> File {
    let path = ns.path();
    let name = name.to_string();
    std::thread::spawn(move || {
        let netns = File::open(&path).unwrap();
        nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let tun = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .unwrap();
        let mut ifr_name = [0 as libc::c_char; libc::IFNAMSIZ];
        for (d, s) in ifr_name.iter_mut().zip(name.bytes()) {
            *d = s as libc::c_char;
        }
        let req = libc::ifreq {
            ifr_name,
            ifr_ifru: libc::__c_anonymous_ifr_ifru {
                ifru_flags: (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short,
            },
        };
        // SAFETY: TUNSETIFF reads one `ifreq`, which outlives the call, on
        // a descriptor this thread owns.
        let rc = unsafe { libc::ioctl(tun.as_raw_fd(), libc::TUNSETIFF, &req) };
        assert_eq!(
            rc,
            0,
            "{TEST}: TUNSETIFF {name}: {}",
            std::io::Error::last_os_error()
        );
        nix::fcntl::fcntl(
            &tun,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .unwrap();
        tun
    })
    .join()
    .unwrap()
}

fn mac_of(ns: &LabNetns, dev: &str) -> [u8; 6] {
    let out = ns.ip(&["-o", "link", "show", "dev", dev]).unwrap();
    let text = out
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("{TEST}: no MAC for {dev} in {out}"));
    let mut mac = [0u8; 6];
    for (m, part) in mac.iter_mut().zip(text.split(':')) {
        *m = u8::from_str_radix(part, 16).unwrap();
    }
    mac
}

fn fmt_mac(m: &[u8]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A broadcast ARP request from the VM for the site address.
fn arp_request() -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&VM_MAC);
    f.extend_from_slice(&[0x08, 0x06]); // ARP
    f.extend_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01]); // Ethernet/IPv4, request
    f.extend_from_slice(&VM_MAC);
    f.extend_from_slice(&VM_IP);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&SITE);
    f.resize(60, 0);
    f
}

/// The sender MAC of an ARP reply about the site address, addressed to
/// the VM.
fn site_answer(frame: &[u8]) -> Option<[u8; 6]> {
    if frame.len() < 42
        || frame[12..14] != [0x08, 0x06]
        || frame[20..22] != [0x00, 0x02]
        || frame[28..32] != SITE
        || frame[32..38] != VM_MAC
    {
        return None;
    }
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&frame[22..28]);
    Some(mac)
}

#[test]
fn a_vm_learns_the_site_address_from_the_switch_alone() {
    let Some(ns) = lab::netns_or_skip(TEST, "labnet", &["ovs-vswitchd", "ovsdb-server"]) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let vlan = VlanId::try_from(100).unwrap();
    let mut net = rt
        .block_on(LabNetwork::up(&ns, "labbr", "198.51.100.1/24", vlan))
        .unwrap();
    let tap: InterfaceName = "labt0".parse().unwrap();
    rt.block_on(net.add_vm_port(&ns, &tap)).unwrap();
    let mut nic = open_tap(&ns, tap.as_str());
    let bridge_mac = mac_of(&ns, "labbr");
    let tap_mac = mac_of(&ns, tap.as_str());

    let mut answers: Vec<[u8; 6]> = Vec::new();
    let start = Instant::now();
    let mut last_ask: Option<Instant> = None;
    let mut buf = [0u8; 2048];
    while start.elapsed() < ASK_FOR {
        if last_ask.is_none_or(|t| t.elapsed() >= Duration::from_millis(300)) {
            nic.write_all(&arp_request()).unwrap();
            last_ask = Some(Instant::now());
        }
        match nic.read(&mut buf) {
            Ok(n) => answers.extend(site_answer(&buf[..n])),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("{TEST}: reading the tap: {e}"),
        }
    }
    let log = net.log_tail("ovs-vswitchd");
    rt.block_on(net.down()).unwrap();

    assert!(
        !answers.is_empty(),
        "{TEST}: no ARP answer for the site address in {ASK_FOR:?}; ovs-vswitchd:\n{log}"
    );
    let wrong: std::collections::BTreeSet<String> = answers
        .iter()
        .filter(|m| **m != bridge_mac)
        .map(|m| fmt_mac(m))
        .collect();
    assert!(
        wrong.is_empty(),
        "{TEST}: the site address was answered from {wrong:?} (the tap is {}), \
         not only from the bridge port {}; {} answers",
        fmt_mac(&tap_mac),
        fmt_mac(&bridge_mac),
        answers.len()
    );
    eprintln!(
        "{TEST}: {} ARP answers, all from the bridge port {}",
        answers.len(),
        fmt_mac(&bridge_mac)
    );
}
