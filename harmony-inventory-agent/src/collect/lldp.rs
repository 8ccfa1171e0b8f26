//! LLDP: learn which switch and port each NIC is cabled to.
//!
//! [`parse_frame`] decodes one Ethernet frame carrying an LLDPDU
//! (IEEE 802.1AB); it is pure and never panics. [`listen`] opens an
//! `AF_PACKET` socket on one interface and waits, blocking, for the first
//! valid LLDP frame within a time window.
//!
//! The only `unsafe` code is in the small private `sys` module: `bind(2)` with a
//! `sockaddr_ll` and `setsockopt(PACKET_ADD_MEMBERSHIP)`, for which neither
//! `socket2` nor `nix` offers a safe wrapper.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{LinkAddr, recvfrom};
use socket2::{Domain, Protocol, Socket, Type};

use crate::collect::fs::clean_value;
use crate::model::Lldp;

/// Ethertype of LLDP frames.
pub const LLDP_ETHERTYPE: u16 = 0x88cc;
/// "Nearest bridge" group address, the one switches send LLDP to.
pub const LLDP_MULTICAST: [u8; 6] = [0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e];
/// Receive buffer: enough for a jumbo frame.
const RECV_BUFFER_BYTES: usize = 9216;
/// Upper bound on frames examined by one [`listen`] call (the deadline
/// normally ends the loop long before).
const MAX_FRAMES_PER_LISTEN: usize = 100_000;
/// Longest window honoured by [`listen`] (keeps `Instant` arithmetic sane).
const MAX_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Shortest socket read timeout (a zero `SO_RCVTIMEO` would block forever).
const MIN_READ_TIMEOUT: Duration = Duration::from_millis(1);

/// 802.1Q C-tag and 802.1ad S-tag ethertypes.
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
/// At most this many VLAN tags are skipped before the LLDP ethertype.
const MAX_VLAN_TAGS: usize = 2;

const TLV_END: u8 = 0;
const TLV_CHASSIS_ID: u8 = 1;
const TLV_PORT_ID: u8 = 2;
const TLV_PORT_DESCRIPTION: u8 = 4;
const TLV_SYSTEM_NAME: u8 = 5;

/// Why LLDP could not be read on an interface.
#[derive(Debug, thiserror::Error)]
pub enum LldpError {
    #[error("malformed LLDP frame: {0}")]
    Malformed(String),
    #[error("raw socket on {iface} not permitted (needs root or CAP_NET_RAW)")]
    PermissionDenied { iface: String },
    #[error("LLDP socket on {iface}: {source}")]
    Io {
        iface: String,
        #[source]
        source: std::io::Error,
    },
}

impl LldpError {
    /// Maps an OS error on `iface`: `EPERM`/`EACCES` become
    /// [`LldpError::PermissionDenied`], anything else [`LldpError::Io`].
    fn from_io(iface: &str, source: io::Error) -> Self {
        match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => LldpError::PermissionDenied {
                iface: iface.to_string(),
            },
            _ => LldpError::Io {
                iface: iface.to_string(),
                source,
            },
        }
    }
}

fn malformed(reason: impl Into<String>) -> LldpError {
    LldpError::Malformed(reason.into())
}

/// Decodes one Ethernet frame carrying an LLDPDU.
///
/// Accepts Ethernet II with up to two VLAN tags (802.1Q / 802.1ad) before
/// ethertype `0x88cc`. The destination address is not checked (the socket
/// only delivers frames addressed to this host or a joined group). The
/// mandatory Chassis ID and Port ID TLVs must be present; the TLV list ends
/// at the End TLV or, leniently, exactly at the end of the frame (Ethernet
/// padding is zeros, which reads as an End TLV).
pub fn parse_frame(frame: &[u8]) -> Result<Lldp, LldpError> {
    let payload = lldpdu(frame)?;
    let mut lldp = Lldp::default();
    let mut seen_chassis = false;
    let mut seen_port = false;
    let mut rest = payload;
    let mut offset = 0usize;
    while !rest.is_empty() {
        let Some((header, after_header)) = rest.split_first_chunk::<2>() else {
            return Err(malformed(format!(
                "truncated TLV header at LLDPDU offset {offset}"
            )));
        };
        let tlv_type = header[0] >> 1;
        let len = (usize::from(header[0] & 0x01) << 8) | usize::from(header[1]);
        if tlv_type == TLV_END {
            break;
        }
        let Some((value, after_value)) = after_header.split_at_checked(len) else {
            return Err(malformed(format!(
                "TLV type {tlv_type} at LLDPDU offset {offset} declares {len} bytes, only {} left",
                after_header.len()
            )));
        };
        match tlv_type {
            TLV_CHASSIS_ID if !seen_chassis => {
                seen_chassis = true;
                lldp.chassis_id = decode_id(value, "chassis ID", chassis_kind)?;
            }
            TLV_PORT_ID if !seen_port => {
                seen_port = true;
                lldp.port_id = decode_id(value, "port ID", port_kind)?;
            }
            TLV_PORT_DESCRIPTION if lldp.port_description.is_none() => {
                lldp.port_description = clean_value(value);
            }
            TLV_SYSTEM_NAME if lldp.system_name.is_none() => {
                lldp.system_name = clean_value(value);
            }
            _ => {}
        }
        offset += 2 + len;
        rest = after_value;
    }
    if !seen_chassis {
        return Err(malformed("no Chassis ID TLV"));
    }
    if !seen_port {
        return Err(malformed("no Port ID TLV"));
    }
    Ok(lldp)
}

/// The LLDPDU inside an Ethernet frame, after the (optional) VLAN tags.
fn lldpdu(frame: &[u8]) -> Result<&[u8], LldpError> {
    // Destination (6) + source (6) MAC addresses, then the ethertype.
    let Some(mut rest) = frame.get(12..).filter(|rest| rest.len() >= 2) else {
        return Err(malformed(format!(
            "{} bytes is shorter than an Ethernet header",
            frame.len()
        )));
    };
    let mut tags = 0usize;
    loop {
        let Some((ethertype, after)) = rest.split_first_chunk::<2>() else {
            return Err(malformed("frame ends before its ethertype"));
        };
        let ethertype = u16::from_be_bytes(*ethertype);
        match ethertype {
            LLDP_ETHERTYPE => return Ok(after),
            ETHERTYPE_VLAN | ETHERTYPE_QINQ if tags < MAX_VLAN_TAGS => {
                // Skip the 2-byte tag control information.
                let Some(after_tci) = after.get(2..) else {
                    return Err(malformed("truncated VLAN tag"));
                };
                rest = after_tci;
                tags += 1;
            }
            other => {
                return Err(malformed(format!(
                    "ethertype {other:#06x} is not LLDP ({LLDP_ETHERTYPE:#06x})"
                )));
            }
        }
    }
}

/// How the value of a Chassis ID or Port ID TLV is rendered, by subtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdKind {
    Mac,
    NetworkAddress,
    Text,
    Binary,
}

/// Chassis ID subtypes (802.1AB-2016 table 8-2).
fn chassis_kind(subtype: u8) -> IdKind {
    match subtype {
        // Chassis component, interface alias, port component,
        // interface name, locally assigned.
        1 | 2 | 3 | 6 | 7 => IdKind::Text,
        4 => IdKind::Mac,
        5 => IdKind::NetworkAddress,
        _ => IdKind::Binary,
    }
}

/// Port ID subtypes (802.1AB-2016 table 8-3).
fn port_kind(subtype: u8) -> IdKind {
    match subtype {
        // Interface alias, port component, interface name, locally assigned.
        1 | 2 | 5 | 7 => IdKind::Text,
        3 => IdKind::Mac,
        4 => IdKind::NetworkAddress,
        // 6 is the agent circuit ID (RFC 3046), an opaque byte string.
        _ => IdKind::Binary,
    }
}

/// Decodes a Chassis ID / Port ID TLV value: one subtype byte, then the ID.
fn decode_id(
    value: &[u8],
    what: &str,
    kind_of: fn(u8) -> IdKind,
) -> Result<Option<String>, LldpError> {
    let Some((&subtype, id)) = value.split_first() else {
        return Err(malformed(format!("empty {what} TLV")));
    };
    if id.is_empty() {
        return Err(malformed(format!("{what} TLV subtype {subtype} has no ID")));
    }
    Ok(match kind_of(subtype) {
        IdKind::Text => clean_value(id),
        IdKind::Mac => Some(hex_colon(id)),
        IdKind::NetworkAddress => Some(network_address(id)),
        IdKind::Binary => Some(hex_colon(id)),
    })
}

/// A network-address ID: IANA address family byte, then the address.
fn network_address(value: &[u8]) -> String {
    match value.split_first() {
        Some((1, addr)) => match <[u8; 4]>::try_from(addr) {
            Ok(octets) => Ipv4Addr::from(octets).to_string(),
            Err(_) => hex_colon(value),
        },
        Some((2, addr)) => match <[u8; 16]>::try_from(addr) {
            Ok(octets) => Ipv6Addr::from(octets).to_string(),
            Err(_) => hex_colon(value),
        },
        // Family 6 is "802" (all 802 media, MAC in canonical format).
        Some((6, addr)) if addr.len() == 6 => hex_colon(addr),
        _ => hex_colon(value),
    }
}

/// `aa:bb:cc`-style lower-case hex, capped like every other string value.
fn hex_colon(bytes: &[u8]) -> String {
    // Each byte takes 3 characters ("xx:"); no need to format more than fit.
    let max_bytes = crate::collect::fs::MAX_VALUE_CHARS.div_ceil(3);
    let text = bytes
        .iter()
        .take(max_bytes)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    clean_value(text.as_bytes()).unwrap_or_default()
}

/// A raw `AF_PACKET` socket bound to one interface, receiving LLDP frames
/// (ethertype `0x88cc`) and member of the LLDP multicast group
/// [`LLDP_MULTICAST`], so NICs with multicast filtering pass the frames.
///
/// Needs root or `CAP_NET_RAW` in the interface's network namespace.
#[derive(Debug)]
pub struct LldpSocket {
    socket: Socket,
    iface: String,
    ifindex: u32,
}

impl LldpSocket {
    /// Opens the socket on `iface` (interface name in the calling thread's
    /// network namespace). The interface does not need to be up to open the
    /// socket, but nothing is received while it is down.
    pub fn open(iface: &str) -> Result<Self, LldpError> {
        let err = |e: io::Error| LldpError::from_io(iface, e);
        // Protocol 0: receive nothing until bound to the interface, so no
        // frame from another interface can slip in before bind().
        let socket =
            Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(0))).map_err(err)?;
        let ifindex = nix::net::if_::if_nametoindex(iface).map_err(|e| err(e.into()))?;
        sys::bind_packet(&socket, ifindex, LLDP_ETHERTYPE).map_err(err)?;
        sys::add_multicast_membership(&socket, ifindex, LLDP_MULTICAST).map_err(err)?;
        Ok(Self {
            socket,
            iface: iface.to_string(),
            ifindex,
        })
    }

    /// The interface name this socket is bound to.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// Sends one complete Ethernet frame (header included) on the interface.
    /// Meant for tests and tools; the agent itself never transmits.
    pub fn send(&self, frame: &[u8]) -> Result<(), LldpError> {
        let sent = self
            .socket
            .send(frame)
            .map_err(|e| LldpError::from_io(&self.iface, e))?;
        if sent != frame.len() {
            return Err(LldpError::Io {
                iface: self.iface.clone(),
                source: io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!("sent {sent} of {} bytes", frame.len()),
                ),
            });
        }
        Ok(())
    }

    /// Waits up to `window` for the first valid LLDP frame received on the
    /// interface. Malformed frames and frames this host sends itself are
    /// skipped. `Ok(None)` when the window elapses without a neighbour.
    pub fn receive(&self, window: Duration) -> Result<Option<Lldp>, LldpError> {
        let start = Instant::now();
        let deadline = start + window.min(MAX_WINDOW);
        let mut buf = vec![0u8; RECV_BUFFER_BYTES];
        for _ in 0..MAX_FRAMES_PER_LISTEN {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Ok(None);
            }
            self.socket
                .set_read_timeout(Some(remaining.max(MIN_READ_TIMEOUT)))
                .map_err(|e| LldpError::from_io(&self.iface, e))?;
            let (len, from) = match recvfrom::<LinkAddr>(self.socket.as_raw_fd(), &mut buf) {
                Ok(received) => received,
                Err(Errno::EAGAIN | Errno::EINTR) => continue,
                Err(e) => return Err(LldpError::from_io(&self.iface, e.into())),
            };
            if let Some(from) = from {
                if from.pkttype() == libc::PACKET_OUTGOING {
                    continue;
                }
                if from.ifindex() != self.ifindex as usize {
                    continue;
                }
            }
            let frame = buf.get(..len).unwrap_or(&buf);
            match parse_frame(frame) {
                Ok(neighbour) => return Ok(Some(neighbour)),
                Err(e) => {
                    tracing::debug!(iface = %self.iface, error = %e, "skipping LLDP frame");
                }
            }
        }
        tracing::debug!(
            iface = %self.iface,
            "gave up after {MAX_FRAMES_PER_LISTEN} frames without a valid LLDPDU"
        );
        Ok(None)
    }
}

/// Listens on `iface` for up to `window`; returns the first neighbour seen.
///
/// Blocking. `Ok(None)` when no valid LLDP frame arrived within `window`.
/// Errors: [`LldpError::PermissionDenied`] without root / `CAP_NET_RAW`,
/// [`LldpError::Io`] otherwise (e.g. `ENODEV` for an unknown interface).
pub fn listen(iface: &str, window: Duration) -> Result<Option<Lldp>, LldpError> {
    LldpSocket::open(iface)?.receive(window)
}

/// The two socket calls without a safe wrapper in `socket2` or `nix`.
mod sys {
    use std::io;
    use std::os::fd::AsRawFd;

    use socket2::Socket;

    /// Binds a packet socket to `ifindex`, receiving frames of `ethertype`.
    #[allow(unsafe_code)]
    pub(super) fn bind_packet(socket: &Socket, ifindex: u32, ethertype: u16) -> io::Result<()> {
        let addr = libc::sockaddr_ll {
            sll_family: libc::AF_PACKET as libc::c_ushort,
            sll_protocol: ethertype.to_be(),
            sll_ifindex: to_c_ifindex(ifindex)?,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 0,
            sll_addr: [0; 8],
        };
        let len = std::mem::size_of_val(&addr) as libc::socklen_t;
        // SAFETY: `addr` is a fully initialised `sockaddr_ll` that outlives
        // the call and `len` is its exact size; the fd is borrowed from a
        // live `Socket`.
        let rc = unsafe {
            libc::bind(
                socket.as_raw_fd(),
                (&raw const addr).cast::<libc::sockaddr>(),
                len,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Joins the multicast group `mac` on `ifindex` for as long as the
    /// socket lives (`PACKET_ADD_MEMBERSHIP`, `PACKET_MR_MULTICAST`).
    #[allow(unsafe_code)]
    pub(super) fn add_multicast_membership(
        socket: &Socket,
        ifindex: u32,
        mac: [u8; 6],
    ) -> io::Result<()> {
        let mut address = [0u8; 8];
        address[..6].copy_from_slice(&mac);
        let mreq = libc::packet_mreq {
            mr_ifindex: to_c_ifindex(ifindex)?,
            mr_type: libc::PACKET_MR_MULTICAST as libc::c_ushort,
            mr_alen: 6,
            mr_address: address,
        };
        let len = std::mem::size_of_val(&mreq) as libc::socklen_t;
        // SAFETY: `mreq` is a fully initialised `packet_mreq` that outlives
        // the call and `len` is its exact size; the fd is borrowed from a
        // live `Socket`.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_ADD_MEMBERSHIP,
                (&raw const mreq).cast::<libc::c_void>(),
                len,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn to_c_ifindex(ifindex: u32) -> io::Result<libc::c_int> {
        libc::c_int::try_from(ifindex).map_err(|_| io::Error::from_raw_os_error(libc::ENODEV))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const DST: [u8; 6] = [0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e];
    const SRC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x20, 0x30];

    /// One TLV: 7-bit type, 9-bit length, value.
    fn tlv(tlv_type: u8, value: &[u8]) -> Vec<u8> {
        assert!(tlv_type < 128 && value.len() < 512);
        let len = value.len() as u16;
        let mut out = vec![(tlv_type << 1) | (len >> 8) as u8, (len & 0xff) as u8];
        out.extend_from_slice(value);
        out
    }

    fn with_subtype(subtype: u8, id: &[u8]) -> Vec<u8> {
        let mut v = vec![subtype];
        v.extend_from_slice(id);
        v
    }

    fn ethernet(ethertype_and_tags: &[u8], tlvs: &[Vec<u8>]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&DST);
        f.extend_from_slice(&SRC);
        f.extend_from_slice(ethertype_and_tags);
        for t in tlvs {
            f.extend_from_slice(t);
        }
        f
    }

    fn frame(tlvs: &[Vec<u8>]) -> Vec<u8> {
        ethernet(&[0x88, 0xcc], tlvs)
    }

    fn ttl() -> Vec<u8> {
        tlv(3, &[0x00, 0x78])
    }

    fn end() -> Vec<u8> {
        tlv(0, &[])
    }

    fn typical_tlvs() -> Vec<Vec<u8>> {
        vec![
            tlv(1, &with_subtype(4, &[0x00, 0x1B, 0x21, 0xAB, 0xCD, 0xEF])),
            tlv(2, &with_subtype(5, b"Ethernet1/7")),
            ttl(),
            tlv(4, b"server-42 eno1"),
            tlv(5, b"tor-a.dc1.example"),
            end(),
        ]
    }

    fn malformed_reason(result: Result<Lldp, LldpError>) -> String {
        match result {
            Err(LldpError::Malformed(reason)) => reason,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    /// A frame written out byte by byte from 802.1AB clause 8, independent
    /// of the `tlv()` helper, to pin down the 7/9-bit header packing.
    #[test]
    fn literal_frame_from_spec() {
        let bytes: [u8; 60] = [
            0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e, // dst
            0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // src
            0x88, 0xcc, // ethertype
            0x02, 0x07, 0x04, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // chassis: MAC
            0x04, 0x05, 0x05, b's', b'w', b'p', b'1', // port: ifname "swp1"
            0x06, 0x02, 0x00, 0x78, // TTL 120
            0x0a, 0x03, b's', b'w', b'1', // system name "sw1"
            0x00, 0x00, // end
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // padding
        ];
        let lldp = parse_frame(&bytes).unwrap();
        assert_eq!(
            lldp,
            Lldp {
                chassis_id: Some("52:54:00:12:34:56".into()),
                port_id: Some("swp1".into()),
                system_name: Some("sw1".into()),
                port_description: None,
            }
        );
    }

    #[test]
    fn mac_chassis_ifname_port_name_and_description() {
        let lldp = parse_frame(&frame(&typical_tlvs())).unwrap();
        assert_eq!(lldp.chassis_id.as_deref(), Some("00:1b:21:ab:cd:ef"));
        assert_eq!(lldp.port_id.as_deref(), Some("Ethernet1/7"));
        assert_eq!(lldp.port_description.as_deref(), Some("server-42 eno1"));
        assert_eq!(lldp.system_name.as_deref(), Some("tor-a.dc1.example"));
    }

    #[test]
    fn locally_assigned_ids() {
        let f = frame(&[
            tlv(1, &with_subtype(7, b"  switch-serial-FOC1234\0")),
            tlv(2, &with_subtype(7, b"port\x07 17\n")),
            ttl(),
            end(),
        ]);
        let lldp = parse_frame(&f).unwrap();
        assert_eq!(lldp.chassis_id.as_deref(), Some("switch-serial-FOC1234"));
        assert_eq!(lldp.port_id.as_deref(), Some("port 17"));
        assert_eq!(lldp.system_name, None);
        assert_eq!(lldp.port_description, None);
    }

    #[test]
    fn mac_port_id_and_text_chassis_subtypes() {
        for subtype in [1u8, 2, 3, 6] {
            let f = frame(&[
                tlv(1, &with_subtype(subtype, b"chassis-text")),
                tlv(2, &with_subtype(3, &[0xAA, 0xBB, 0xCC, 0x01, 0x02, 0x03])),
                end(),
            ]);
            let lldp = parse_frame(&f).unwrap();
            assert_eq!(
                lldp.chassis_id.as_deref(),
                Some("chassis-text"),
                "{subtype}"
            );
            assert_eq!(lldp.port_id.as_deref(), Some("aa:bb:cc:01:02:03"));
        }
    }

    #[test]
    fn network_address_chassis_ipv4_and_ipv6_port() {
        let mut v6 = vec![2u8];
        v6.extend_from_slice(&[
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
        ]);
        let f = frame(&[
            tlv(1, &with_subtype(5, &[1, 192, 0, 2, 17])),
            tlv(2, &with_subtype(4, &v6)),
            ttl(),
            end(),
        ]);
        let lldp = parse_frame(&f).unwrap();
        assert_eq!(lldp.chassis_id.as_deref(), Some("192.0.2.17"));
        assert_eq!(lldp.port_id.as_deref(), Some("2001:db8::1"));
    }

    #[test]
    fn odd_network_address_falls_back_to_hex() {
        // IPv4 family with 3 address bytes; unknown family 99.
        let f = frame(&[
            tlv(1, &with_subtype(5, &[1, 10, 0, 0])),
            tlv(2, &with_subtype(4, &[99, 0xde, 0xad])),
            end(),
        ]);
        let lldp = parse_frame(&f).unwrap();
        assert_eq!(lldp.chassis_id.as_deref(), Some("01:0a:00:00"));
        assert_eq!(lldp.port_id.as_deref(), Some("63:de:ad"));
    }

    #[test]
    fn agent_circuit_id_and_unknown_subtypes_are_hex() {
        let f = frame(&[
            tlv(1, &with_subtype(0, &[0x00, 0xff])),
            tlv(2, &with_subtype(6, &[0x01, 0x02, 0xfe])),
            end(),
        ]);
        let lldp = parse_frame(&f).unwrap();
        assert_eq!(lldp.chassis_id.as_deref(), Some("00:ff"));
        assert_eq!(lldp.port_id.as_deref(), Some("01:02:fe"));
    }

    #[test]
    fn vlan_tagged() {
        let tagged = ethernet(&[0x81, 0x00, 0x20, 0x0a, 0x88, 0xcc], &typical_tlvs());
        let lldp = parse_frame(&tagged).unwrap();
        assert_eq!(lldp, parse_frame(&frame(&typical_tlvs())).unwrap());
        assert_eq!(lldp.port_id.as_deref(), Some("Ethernet1/7"));

        let qinq = ethernet(
            &[0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0x0a, 0x88, 0xcc],
            &typical_tlvs(),
        );
        assert_eq!(
            parse_frame(&qinq).unwrap().system_name.as_deref(),
            Some("tor-a.dc1.example")
        );

        let three_tags = ethernet(
            &[
                0x81, 0x00, 0, 1, 0x81, 0x00, 0, 2, 0x81, 0x00, 0, 3, 0x88, 0xcc,
            ],
            &typical_tlvs(),
        );
        assert!(malformed_reason(parse_frame(&three_tags)).contains("0x8100"));
    }

    #[test]
    fn alternative_group_addresses_and_nine_bit_length() {
        let long_desc = "d".repeat(300);
        let mut f = frame(&[
            tlv(1, &with_subtype(4, &[1, 2, 3, 4, 5, 6])),
            tlv(2, &with_subtype(5, b"xe-0/0/1")),
            tlv(4, long_desc.as_bytes()),
            tlv(127, &[0x00, 0x80, 0xc2, 0x01, 0x00, 0x0a]),
            tlv(5, b"sw"),
        ]);
        f[5] = 0x03;
        let lldp = parse_frame(&f).unwrap();
        // 300 bytes declared with the 9th length bit; value capped to 256 chars.
        assert_eq!(lldp.port_description, Some("d".repeat(256)));
        assert_eq!(lldp.system_name.as_deref(), Some("sw"));
        f[5] = 0x00;
        assert_eq!(parse_frame(&f).unwrap(), lldp);
    }

    #[test]
    fn end_tlv_stops_parsing() {
        let f = frame(&[
            tlv(1, &with_subtype(7, b"c")),
            tlv(2, &with_subtype(7, b"p")),
            end(),
            tlv(5, b"after-end"),
            // garbage that would be a truncated TLV if it were parsed
            vec![0x0a, 0xff],
        ]);
        let lldp = parse_frame(&f).unwrap();
        assert_eq!(lldp.system_name, None);
    }

    #[test]
    fn first_occurrence_wins() {
        let f = frame(&[
            tlv(1, &with_subtype(7, b"first")),
            tlv(2, &with_subtype(7, b"p1")),
            tlv(1, &with_subtype(7, b"second")),
            tlv(5, b"name-1"),
            tlv(5, b"name-2"),
            end(),
        ]);
        let lldp = parse_frame(&f).unwrap();
        assert_eq!(lldp.chassis_id.as_deref(), Some("first"));
        assert_eq!(lldp.system_name.as_deref(), Some("name-1"));
    }

    #[test]
    fn malformed_frames() {
        assert!(malformed_reason(parse_frame(&[])).contains("shorter than an Ethernet header"));
        assert!(malformed_reason(parse_frame(&[0u8; 13])).contains("shorter"));

        let mut ipv4 = frame(&typical_tlvs());
        ipv4[12] = 0x08;
        ipv4[13] = 0x00;
        assert!(malformed_reason(parse_frame(&ipv4)).contains("0x0800"));

        let no_chassis = frame(&[tlv(2, &with_subtype(5, b"eth0")), ttl(), end()]);
        assert_eq!(
            malformed_reason(parse_frame(&no_chassis)),
            "no Chassis ID TLV"
        );

        let no_port = frame(&[tlv(1, &with_subtype(7, b"c")), ttl(), end()]);
        assert_eq!(malformed_reason(parse_frame(&no_port)), "no Port ID TLV");

        // End TLV first: nothing mandatory seen.
        let empty = frame(&[end(), tlv(1, &with_subtype(7, b"c"))]);
        assert_eq!(malformed_reason(parse_frame(&empty)), "no Chassis ID TLV");

        // Value shorter than declared.
        let mut truncated = frame(&typical_tlvs());
        truncated.truncate(14 + 9 + 4);
        let reason = malformed_reason(parse_frame(&truncated));
        assert!(
            reason.contains("declares 12 bytes, only 2 left"),
            "{reason}"
        );

        // Lone byte where a TLV header should be.
        let mut half_header = frame(&[
            tlv(1, &with_subtype(7, b"c")),
            tlv(2, &with_subtype(7, b"p")),
        ]);
        half_header.push(0x0a);
        assert!(malformed_reason(parse_frame(&half_header)).contains("truncated TLV header"));

        let empty_chassis = frame(&[tlv(1, &[]), tlv(2, &with_subtype(7, b"p")), end()]);
        assert_eq!(
            malformed_reason(parse_frame(&empty_chassis)),
            "empty chassis ID TLV"
        );

        let subtype_only = frame(&[tlv(1, &[4]), tlv(2, &with_subtype(7, b"p")), end()]);
        assert!(malformed_reason(parse_frame(&subtype_only)).contains("has no ID"));

        let truncated_tag = ethernet(&[0x81, 0x00, 0x00], &[]);
        assert!(malformed_reason(parse_frame(&truncated_tag)).contains("VLAN"));
    }

    #[test]
    fn permission_errors_are_classified() {
        for errno in [libc::EPERM, libc::EACCES] {
            match LldpError::from_io("eno1", io::Error::from_raw_os_error(errno)) {
                LldpError::PermissionDenied { iface } => assert_eq!(iface, "eno1"),
                other => panic!("{errno}: {other:?}"),
            }
        }
        let e = LldpError::from_io("eno9", io::Error::from_raw_os_error(libc::ENODEV));
        assert!(matches!(&e, LldpError::Io { iface, .. } if iface == "eno9"));
        assert!(e.to_string().contains("eno9"), "{e}");
    }

    /// xorshift64*: deterministic pseudo-random bytes without extra crates.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn never_panics_on_prefixes_mutations_and_noise() {
        let valid = frame(&typical_tlvs());
        assert!(parse_frame(&valid).is_ok());
        let mut ok_prefixes = 0;
        for len in 0..=valid.len() {
            if parse_frame(&valid[..len]).is_ok() {
                ok_prefixes += 1;
            }
        }
        // Valid only at TLV boundaries after the port TLV: after port, TTL,
        // description, system name, and the full frame.
        assert_eq!(ok_prefixes, 5);

        let tagged = ethernet(&[0x81, 0x00, 0x00, 0x01, 0x88, 0xcc], &typical_tlvs());
        for len in 0..=tagged.len() {
            let _ = parse_frame(&tagged[..len]);
        }

        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut ok = 0usize;
        for _ in 0..20_000 {
            // Mutate a few bytes of a valid frame, then cut it somewhere.
            let mut f = valid.clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(f.len());
                f[i] = rng.next() as u8;
            }
            f.truncate(rng.below(f.len() + 1));
            if parse_frame(&f).is_ok() {
                ok += 1;
            }

            // Pure noise after a correct Ethernet header.
            let mut noise = frame(&[]);
            for _ in 0..rng.below(600) {
                noise.push(rng.next() as u8);
            }
            let _ = parse_frame(&noise);

            // Noise of any length, including tiny slices.
            let raw: Vec<u8> = (0..rng.below(40)).map(|_| rng.next() as u8).collect();
            let _ = parse_frame(&raw);
        }
        assert!(ok > 0, "some mutated frames should still parse");
    }
}
