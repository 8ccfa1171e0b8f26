//! `listen` against real LLDP frames on a veth pair inside a throw-away
//! network namespace. Needs root (skips loudly otherwise); never sends
//! anything outside the namespaces it creates.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/netns.rs"]
mod netns;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use harmony_inventory_agent::collect::lldp::{LldpError, LldpSocket, listen};
use harmony_inventory_agent::model::Lldp;
use netns::NetNs;

const MAX_FRAMES: usize = 50;
const SEND_INTERVAL: Duration = Duration::from_millis(200);

fn tlv(tlv_type: u8, value: &[u8]) -> Vec<u8> {
    let len = value.len();
    let mut out = vec![(tlv_type << 1) | ((len >> 8) as u8 & 1), len as u8];
    out.extend_from_slice(value);
    out
}

/// An LLDP frame as a switch would send it (802.1AB clause 8).
fn switch_frame() -> Vec<u8> {
    let mut f = vec![0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e]; // nearest bridge
    f.extend_from_slice(&[0x02, 0x1c, 0x73, 0xAB, 0xCD, 0x01]); // source
    f.extend_from_slice(&[0x88, 0xcc]);
    f.extend(tlv(1, &[4, 0x00, 0x1C, 0x73, 0xAB, 0xCD, 0xEF])); // chassis: MAC
    f.extend(tlv(2, b"\x05Ethernet12")); // port: interface name
    f.extend(tlv(3, &[0x00, 0x78])); // TTL
    f.extend(tlv(4, b"server rack 7 slot 3")); // port description
    f.extend(tlv(5, b"leaf-07.dc1")); // system name
    f.extend(tlv(0, &[]));
    f
}

/// A frame `listen` must skip: LLDP ethertype, but no Port ID TLV.
fn broken_frame() -> Vec<u8> {
    let mut f = switch_frame();
    f.truncate(14);
    f.extend(tlv(1, b"\x07only-chassis"));
    f.extend(tlv(0, &[]));
    f
}

#[test]
fn listen_receives_neighbour_on_veth() {
    let Some(ns) = NetNs::new_or_skip("hlldp", "listen_receives_neighbour_on_veth") else {
        return;
    };
    // Frames go out on `a` and arrive on `b`; `c`/`d` is a second, silent link.
    ns.add_veth("a", "b").unwrap();
    ns.add_veth("c", "d").unwrap();

    let listeners_left = AtomicUsize::new(3);
    let start = Instant::now();
    let (on_b, on_a, on_d, sent) = thread::scope(|s| {
        let sender = s.spawn(|| {
            ns.enter_current_thread().unwrap();
            let socket = LldpSocket::open("a").unwrap();
            assert_eq!(socket.iface(), "a");
            let mut sent = 0;
            for _ in 0..MAX_FRAMES {
                if listeners_left.load(Ordering::SeqCst) == 0 {
                    break;
                }
                // A malformed frame first: the listener has to skip it.
                socket.send(&broken_frame()).unwrap();
                socket.send(&switch_frame()).unwrap();
                sent += 1;
                thread::sleep(SEND_INTERVAL);
            }
            sent
        });
        let listen_in_ns = |iface: &'static str, window: Duration| {
            let ns = &ns;
            let listeners_left = &listeners_left;
            s.spawn(move || {
                ns.enter_current_thread().unwrap();
                let result = listen(iface, window);
                listeners_left.fetch_sub(1, Ordering::SeqCst);
                result
            })
        };
        let on_b = listen_in_ns("b", Duration::from_secs(10));
        // The sender's own interface: outgoing frames are not neighbours.
        let on_a = listen_in_ns("a", Duration::from_millis(1500));
        // Another interface: must not see frames received on `b`.
        let on_d = listen_in_ns("d", Duration::from_millis(1500));
        (
            on_b.join().unwrap(),
            on_a.join().unwrap(),
            on_d.join().unwrap(),
            sender.join().unwrap(),
        )
    });

    let neighbour = on_b.unwrap().expect("no LLDP neighbour on b within 10 s");
    assert_eq!(
        neighbour,
        Lldp {
            chassis_id: Some("00:1c:73:ab:cd:ef".into()),
            port_id: Some("Ethernet12".into()),
            system_name: Some("leaf-07.dc1".into()),
            port_description: Some("server rack 7 slot 3".into()),
        }
    );
    assert_eq!(on_a.unwrap(), None, "own outgoing frames on a");
    assert_eq!(on_d.unwrap(), None, "frames of b seen on d");
    // The 1.5 s listeners kept the sender going for about 8 rounds.
    assert!((2..MAX_FRAMES).contains(&sent), "sent {sent} rounds");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn listen_times_out_and_reports_missing_interface() {
    let Some(ns) = NetNs::new_or_skip("hlldp", "listen_times_out_and_reports_missing_interface")
    else {
        return;
    };
    ns.add_veth("a", "b").unwrap();

    thread::scope(|s| {
        s.spawn(|| {
            ns.enter_current_thread().unwrap();

            let start = Instant::now();
            let quiet = listen("b", Duration::from_secs(1)).unwrap();
            let took = start.elapsed();
            assert_eq!(quiet, None);
            assert!(
                took >= Duration::from_millis(990),
                "returned after {took:?}"
            );

            // The socket joins the LLDP group so NICs with multicast
            // filters pass the frames (veth passes everything anyway).
            let lldp_group = "01:80:c2:00:00:0e";
            let before = ns.ip_ok(&["maddr", "show", "dev", "b"]);
            assert!(!before.contains(lldp_group), "{before}");
            let socket = LldpSocket::open("b").unwrap();
            let joined = ns.ip_ok(&["maddr", "show", "dev", "b"]);
            assert!(joined.contains(&format!("link  {lldp_group}")), "{joined}");
            drop(socket);
            let left = ns.ip_ok(&["maddr", "show", "dev", "b"]);
            assert!(!left.contains(lldp_group), "{left}");

            match listen("nosuch0", Duration::from_secs(1)) {
                Err(err @ LldpError::Io { .. }) => {
                    let LldpError::Io { iface, source } = &err else {
                        unreachable!()
                    };
                    assert_eq!(iface, "nosuch0");
                    assert_eq!(source.raw_os_error(), Some(libc::ENODEV), "{source}");
                    assert!(err.to_string().contains("nosuch0"), "{err}");
                }
                other => panic!("expected an I/O error for nosuch0, got {other:?}"),
            }
        })
        .join()
        .unwrap();
    });
}

/// End to end: the agent binary, run inside the namespace with
/// `--once --lldp-window`, reports the neighbour on the NIC that hears it.
#[test]
fn agent_reports_neighbour_in_inventory() {
    let Some(ns) = NetNs::new_or_skip("hlldp", "agent_reports_neighbour_in_inventory") else {
        return;
    };
    ns.add_veth("a", "b").unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);
    let output = thread::scope(|s| {
        s.spawn(|| {
            ns.enter_current_thread().unwrap();
            let socket = LldpSocket::open("a").unwrap();
            for _ in 0..MAX_FRAMES {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                socket.send(&switch_frame()).unwrap();
                thread::sleep(SEND_INTERVAL);
            }
        });
        let out = ns.exec(&[
            env!("CARGO_BIN_EXE_harmony-inventory-agent"),
            "--once",
            "--lldp-window",
            "3",
        ]);
        done.store(true, Ordering::SeqCst);
        out
    });
    let inv: harmony_inventory_agent::model::Inventory =
        serde_json::from_str(&output.unwrap()).unwrap();
    let nic = |name: &str| inv.network.iter().find(|n| n.name == name).unwrap();
    assert_eq!(
        nic("b")
            .lldp
            .as_ref()
            .and_then(|l| l.system_name.as_deref()),
        Some("leaf-07.dc1")
    );
    assert_eq!(nic("a").lldp, None);
    assert!(
        inv.warnings.iter().all(|w| !w.source.starts_with("lldp")),
        "{:?}",
        inv.warnings
    );
}
