//! The test LAN of the site-service tests: two namespaces on one veth pair,
//! A (`srv0`, 198.51.100.1/24) where the site's services run and B (`cli0`)
//! playing the booting host, with a real DHCP client (busybox `udhcpc`) and
//! `dig`. 198.51.100.0/24 (TEST-NET-2) exists only in those namespaces.
//! Include with `#[path = "support/site_lan.rs"] mod site_lan;` next to
//! the `netns` support module.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use harmony::domain::MacAddress;

use super::netns::NetNs;

/// Namespace A's end of the pair.
pub const SERVER_IF: &str = "srv0";
/// Namespace B's end of the pair.
pub const CLIENT_IF: &str = "cli0";
/// The cluster's domain in the tests' DNS.
pub const DOMAIN: &str = "ocp.example.com";
/// Namespace B's own address for TFTP, HTTP and DNS (outside the range).
pub const CLIENT_STATIC: &str = "198.51.100.99";
/// Where dnsmasq answers, from namespace B.
pub const SERVER_ADDR: &str = "198.51.100.1";

/// 198.51.100.`last`.
pub fn ip4(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 51, 100, last)
}

/// A temp dir dnsmasq can read after dropping its privileges (a temp dir
/// is 0700).
pub fn open_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// Joins `server` and `client` with the veth pair, `SERVER_ADDR`/24 on A,
/// both ends and both loopbacks up.
pub fn link(server: &NetNs, client: &NetNs) {
    server.ip_ok(&[
        "link", "add", "name", SERVER_IF, "type", "veth", "peer", "name", CLIENT_IF,
    ]);
    server.move_link(CLIENT_IF, client).unwrap();
    server.ip_ok(&[
        "addr",
        "add",
        &format!("{SERVER_ADDR}/24"),
        "dev",
        SERVER_IF,
    ]);
    server.ip_ok(&["link", "set", "dev", SERVER_IF, "up"]);
    server.ip_ok(&["link", "set", "dev", "lo", "up"]);
    client.ip_ok(&["link", "set", "dev", CLIENT_IF, "up"]);
    client.ip_ok(&["link", "set", "dev", "lo", "up"]);
}

/// Gives namespace B its own address (`CLIENT_STATIC`).
pub fn client_address(client: &NetNs) {
    client.ip_ok(&[
        "addr",
        "replace",
        &format!("{CLIENT_STATIC}/24"),
        "dev",
        CLIENT_IF,
    ]);
}

/// One DHCP exchange from namespace B with `mac` and extra `udhcpc`
/// options (its files under `dir`): what the client's script saw on
/// `bound` (ip, hostname, boot_file, bootfile, siaddr, domain).
pub fn dhcp(
    client: &NetNs,
    dir: &Path,
    mac: MacAddress,
    extra: &[&str],
) -> BTreeMap<String, String> {
    client.ip_ok(&["link", "set", "dev", CLIENT_IF, "address", &mac.to_string()]);
    let out = dir.join(format!("dhcp-{}.env", mac.hyphenated()));
    let _ = std::fs::remove_file(&out);
    let script = dir.join("udhcpc.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\n[ \"$1\" = bound ] || exit 0\n\
         { echo \"ip=$ip\"; echo \"hostname=$hostname\"; echo \"boot_file=$boot_file\"; \
         echo \"bootfile=$bootfile\"; echo \"siaddr=$siaddr\"; echo \"domain=$domain\"; } > \"$OUT\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let status = Command::new("timeout")
        .args(["30", "ip", "netns", "exec", client.name()])
        .args([
            "udhcpc", "-f", "-q", "-n", "-t", "5", "-T", "1", "-i", CLIENT_IF, "-s",
        ])
        .arg(&script)
        .args(extra)
        .env("OUT", &out)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "udhcpc {extra:?}: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The `udhcpc` options of an iPXE client on x86-64 UEFI: arch 7 and user
/// class "iPXE".
pub const IPXE_CLIENT: [&str; 4] = ["-x", "0x5d:0007", "-x", "0x4d:69505845"];

/// The boot file the client got, from the BOOTP field or option 67.
pub fn boot_file(env: &BTreeMap<String, String>) -> String {
    [&env["boot_file"], &env["bootfile"]]
        .into_iter()
        .find(|s| !s.is_empty())
        .cloned()
        .unwrap_or_default()
}

/// `dig +short` from namespace B against the server's DNS.
pub fn dig(client: &NetNs, args: &[&str]) -> String {
    client
        .exec(
            &[
                &["dig", "+short", "+time=2", "+tries=2", "@198.51.100.1"],
                args,
            ]
            .concat(),
        )
        .unwrap()
        .trim()
        .to_string()
}
