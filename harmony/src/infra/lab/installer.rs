//! The lab's **stand-in** for the SCOS live installer (the real CentOS
//! Stream CoreOS images cannot be downloaded here; real sites boot the real
//! ones through the same per-MAC iPXE template, `templates/scos-boot.ipxe`).
//!
//! [`InstallerImage`] is Debian's kernel ([`DebianKernel`]) plus a gzip'ed
//! newc initramfs: busybox-static, the virtio, disk and bonding modules,
//! dropbear with the operator's key, and an `/init` that does what the
//! installer's part of the flow needs, in this order:
//! 1. reads `/proc/cmdline`; builds `bond0` through sysfs from the dracut
//!    `bond=NAME:SLAVES:OPTS` argument (mode first, then the other
//!    options, then the slaves; `rd.bond=` is read the same way) and
//!    addresses the interface `ip=` names (`ip=IFACE:dhcp` with busybox
//!    `udhcpc`, or `ip=ADDR::GW:MASK:HOST:IFACE:none`);
//! 2. fetches `coreos.inst.ignition_url` (busybox `wget` under `timeout`:
//!    Debian's busybox 1.35 `wget -T` crashes; bounded retries)
//!    and checks it with a JSON parser in busybox awk
//!    ([`IGNITION_AWK`]): valid JSON, `ignition.version` 3.x, every
//!    `storage.files[]` with a safe absolute path and a base64 data URL,
//!    `/etc/hostname` present, a NetworkManager keyfile for the bond named
//!    by `bond=` (`type=bond`, `interface-name=NAME`) present; anything
//!    else is refused and reported `failed` with the reason;
//! 3. writes the Ignition's files to `coreos.inst.install_dev`
//!    (`/dev/vdX`, or `/dev/disk/by-id/virtio-SERIAL` resolved through
//!    `/sys/block/*/serial` since there is no udev) in the layout of
//!    [`InstallHeader`];
//! 4. reports each phase by `POST`ing a form (busybox `wget --post-data`)
//!    to the report URL baked in at build time:
//!    `mac=<first NIC MAC>&phase=<ignition-fetched|disk-written|bond-up|failed>&hostname=<name>&detail=<reason>`
//!    (values reduced to `[A-Za-z0-9._:-]`, anything else sent as `+`, a
//!    space); the same line goes to the serial console as
//!    `HARMONY-LAB-PHASE <phase> <detail>`;
//! 5. optionally relays TCP ports 6443 and 22623 to the simulated cluster
//!    API (busybox `nc -ll -p PORT -e`), then runs dropbear so Harmony can
//!    SSH in (reboot, wipe).
//!
//! ## On-disk layout (what "installed" means in the lab)
//! Sector 0 holds a text header ([`INSTALL_MAGIC`] and `key=value` lines,
//! see [`InstallHeader`]), written last; from byte [`TAR_OFFSET`] (1 MiB)
//! a ustar archive of the Ignition's files (`./etc/hostname`,
//! `./etc/NetworkManager/system-connections/*.nmconnection`, ...). Wiping
//! the first MiB erases the install: without the magic the disk is blank.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::LabError;
use super::images::{BY_ID_LINKS, DebianKernel, Login, UDHCPC_SCRIPT, base_tree, write_gzip};
use crate::domain::values::HttpUrl;

/// The first line of an installed disk's sector 0.
pub const INSTALL_MAGIC: &str = "HARMONY-LAB-INSTALL v1";
/// Where the archive of the installed files starts on the disk.
pub const TAR_OFFSET: u64 = 1 << 20;
/// Printed on the console for each phase: `HARMONY-LAB-PHASE PHASE DETAIL`.
pub const PHASE_MARKER: &str = "HARMONY-LAB-PHASE";
/// Printed once dropbear runs.
pub const INSTALLER_READY_MARKER: &str = "HARMONY-LAB-INSTALLER-READY";
/// The ports relayed to the simulated cluster API (API server, MCS).
pub const RELAYED_PORTS: [u16; 2] = [6443, 22623];

/// A phase the installer reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstallerPhase {
    IgnitionFetched,
    DiskWritten,
    BondUp,
    Failed,
}

impl InstallerPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            InstallerPhase::IgnitionFetched => "ignition-fetched",
            InstallerPhase::DiskWritten => "disk-written",
            InstallerPhase::BondUp => "bond-up",
            InstallerPhase::Failed => "failed",
        }
    }
}

impl std::str::FromStr for InstallerPhase {
    type Err = LabError;
    fn from_str(s: &str) -> Result<Self, LabError> {
        match s {
            "ignition-fetched" => Ok(InstallerPhase::IgnitionFetched),
            "disk-written" => Ok(InstallerPhase::DiskWritten),
            "bond-up" => Ok(InstallerPhase::BondUp),
            "failed" => Ok(InstallerPhase::Failed),
            _ => Err(LabError::invalid(
                "installer phase",
                s.chars().take(40).collect::<String>(),
                "ignition-fetched, disk-written, bond-up or failed",
            )),
        }
    }
}

/// The inputs of the installer initramfs.
#[derive(Debug, Clone)]
pub struct InstallerImage {
    /// One OpenSSH public key line for root's `authorized_keys`.
    pub authorized_key: String,
    /// Where phases are `POST`ed (`http://` only: busybox `wget` has no
    /// TLS here); `None` reports on the console only.
    pub report_url: Option<String>,
    /// Relay [`RELAYED_PORTS`] to this address (the simulated API).
    pub api_relay: Option<SocketAddr>,
    pub busybox: PathBuf,
    pub dropbear: PathBuf,
}

impl InstallerImage {
    pub fn new(
        authorized_key: &str,
        report_url: Option<String>,
        api_relay: Option<SocketAddr>,
    ) -> Self {
        InstallerImage {
            authorized_key: authorized_key.trim().to_string(),
            report_url,
            api_relay,
            busybox: PathBuf::from("/bin/busybox"),
            dropbear: PathBuf::from("/usr/sbin/dropbear"),
        }
    }

    /// The report URL, checked: an `http://` [`HttpUrl`].
    fn checked_report_url(&self) -> Result<Option<HttpUrl>, LabError> {
        let Some(raw) = &self.report_url else {
            return Ok(None);
        };
        let url: HttpUrl = raw
            .parse()
            .map_err(|e: crate::domain::values::ValueError| {
                LabError::invalid("report URL", raw.clone(), e.to_string())
            })?;
        if !url.as_str().starts_with("http://") {
            return Err(LabError::invalid(
                "report URL",
                raw.clone(),
                "must be http:// (busybox wget in the image has no TLS)",
            ));
        }
        Ok(Some(url))
    }

    /// Builds `out` (gzip'ed newc cpio) for `kernel`; returns its size.
    pub fn build(&self, kernel: &DebianKernel, out: &Path) -> Result<u64, LabError> {
        let url = self.checked_report_url()?;
        let mut img = base_tree(
            kernel,
            &self.authorized_key,
            &self.busybox,
            &self.dropbear,
            &[Login::Root, Login::Core],
        )?;
        for (path, mode, data) in self.files(url.as_ref()) {
            img.file(&path, mode, &data);
        }
        write_gzip(img, out)
    }

    /// The files this image adds to the shared tree (path, mode, bytes).
    fn files(&self, url: Option<&HttpUrl>) -> Vec<(String, u32, Vec<u8>)> {
        let mut f = vec![
            (
                "etc/udhcpc.script".to_string(),
                0o755,
                UDHCPC_SCRIPT.as_bytes().to_vec(),
            ),
            (
                "etc/lab/ignition.awk".to_string(),
                0o644,
                IGNITION_AWK.as_bytes().to_vec(),
            ),
            (
                "init".to_string(),
                0o755,
                INIT_SCRIPT
                    .replace("@BY_ID_LINKS@", BY_ID_LINKS)
                    .into_bytes(),
            ),
            ("usr/bin/sudo".to_string(), 0o755, SUDO_STAND_IN.to_vec()),
        ];
        if let Some(u) = url {
            f.push((
                "etc/lab/report_url".into(),
                0o644,
                format!("{}\n", u.as_str()).into_bytes(),
            ));
        }
        if let Some(a) = self.api_relay {
            for port in RELAYED_PORTS {
                // `nc -e` runs this for each connection, the socket on its
                // stdin/stdout.
                f.push((
                    format!("etc/lab/relay-{port}"),
                    0o755,
                    format!("#!/bin/sh\nexec nc {} {}\n", a.ip(), a.port()).into_bytes(),
                ));
            }
            f.push((
                "etc/lab/relay_ports".into(),
                0o644,
                format!("{} {}\n", RELAYED_PORTS[0], RELAYED_PORTS[1]).into_bytes(),
            ));
        }
        f
    }
}

/// Sector 0 of an installed disk: [`INSTALL_MAGIC`], then `key=value`
/// lines (`hostname`, `mac`, `tar_offset`, `tar_bytes`), NUL padded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallHeader {
    pub hostname: String,
    pub mac: String,
    pub tar_offset: u64,
    pub tar_bytes: u64,
}

impl InstallHeader {
    /// The header of `sector0`, or `None` for a blank (or wiped) disk: one
    /// without [`INSTALL_MAGIC`] or without the boot signature 0x55AA at
    /// bytes 510-511 (what `wipefs --all` erases).
    pub fn parse(sector0: &[u8]) -> Result<Option<InstallHeader>, LabError> {
        if sector0.get(510..512) != Some(&[0x55, 0xAA][..]) {
            return Ok(None);
        }
        let end = sector0
            .iter()
            .position(|b| *b == 0)
            .unwrap_or(sector0.len());
        let text = String::from_utf8_lossy(&sector0[..end]);
        let mut lines = text.lines();
        if lines.next() != Some(INSTALL_MAGIC) {
            return Ok(None);
        }
        let mut h = InstallHeader {
            hostname: String::new(),
            mac: String::new(),
            tar_offset: 0,
            tar_bytes: 0,
        };
        let num = |k: &'static str, v: &str| {
            v.parse::<u64>()
                .map_err(|_| LabError::invalid(k, v, "a decimal number"))
        };
        for l in lines {
            match l.split_once('=') {
                Some(("hostname", v)) => h.hostname = v.to_string(),
                Some(("mac", v)) => h.mac = v.to_string(),
                Some(("tar_offset", v)) => h.tar_offset = num("tar_offset", v)?,
                Some(("tar_bytes", v)) => h.tar_bytes = num("tar_bytes", v)?,
                _ => {}
            }
        }
        if h.tar_offset != TAR_OFFSET || h.tar_bytes == 0 {
            return Err(LabError::invalid(
                "install header",
                text.chars().take(200).collect::<String>(),
                format!("tar_offset must be {TAR_OFFSET} and tar_bytes above 0"),
            ));
        }
        Ok(Some(h))
    }

    /// Reads the header of a disk image file (or device).
    pub fn read(disk: &Path) -> Result<Option<InstallHeader>, LabError> {
        use std::io::Read;
        let mut f = std::fs::File::open(disk).map_err(|e| LabError::io(disk, e))?;
        let mut buf = [0u8; 512];
        f.read_exact(&mut buf).map_err(|e| LabError::io(disk, e))?;
        Self::parse(&buf)
    }

    /// The installed archive's bytes (at most 64 MiB).
    pub fn read_archive(&self, disk: &Path) -> Result<Vec<u8>, LabError> {
        use std::io::{Read, Seek, SeekFrom};
        if self.tar_bytes > 64 << 20 {
            return Err(LabError::invalid(
                "tar_bytes",
                self.tar_bytes.to_string(),
                "at most 64 MiB",
            ));
        }
        let mut f = std::fs::File::open(disk).map_err(|e| LabError::io(disk, e))?;
        f.seek(SeekFrom::Start(self.tar_offset))
            .map_err(|e| LabError::io(disk, e))?;
        let mut buf = vec![0u8; self.tar_bytes as usize];
        f.read_exact(&mut buf).map_err(|e| LabError::io(disk, e))?;
        Ok(buf)
    }
}

/// A JSON parser in (busybox) awk: reads the Ignition config, prints
/// `ERROR <reason>` and exits 1 when it is not valid JSON or not what the
/// installer takes; otherwise prints one `FILE <path> <mode> <base64>` line
/// per `storage.files[]` entry.
pub const IGNITION_AWK: &str = r#"
function err(m) { if (E == "") E = m " at byte " P; return 0 }
function ws(   c) {
  while (P <= N) {
    c = substr(S, P, 1)
    if (c == " " || c == "\t" || c == "\n" || c == "\r") P++; else break
  }
}
function str(   out, c) {
  P++; out = ""
  while (P <= N) {
    c = substr(S, P, 1)
    if (c == "\"") { P++; T = out; return 1 }
    if (c == "\\") {
      c = substr(S, P + 1, 1)
      if (c == "u") {
        if (substr(S, P + 2, 4) !~ /^[0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F]$/) return err("bad \\u escape")
        out = out "?"; P += 6; continue
      }
      if (index("\"\\/bfnrt", c) == 0) return err("bad escape")
      if (c == "n") c = "\n"; else if (c == "t") c = "\t"; else if (c == "r") c = "\r"
      else if (c == "b") c = "\b"; else if (c == "f") c = "\f"
      out = out c; P += 2; continue
    }
    if (c < " ") return err("control character in a string")
    out = out c; P++
  }
  return err("unterminated string")
}
function val(path, depth,   c, k, i) {
  if (depth > 32) return err("nesting too deep")
  ws()
  if (P > N) return err("unexpected end")
  c = substr(S, P, 1)
  if (c == "{") {
    P++; ws()
    if (substr(S, P, 1) == "}") { P++; return 1 }
    while (1) {
      ws()
      if (substr(S, P, 1) != "\"") return err("expected a key")
      if (!str()) return 0
      k = T; ws()
      if (substr(S, P, 1) != ":") return err("expected :")
      P++
      if (!val(path "." k, depth + 1)) return 0
      ws(); c = substr(S, P, 1); P++
      if (c == "}") return 1
      if (c != ",") return err("expected , or }")
    }
  }
  if (c == "[") {
    P++; ws()
    if (substr(S, P, 1) == "]") { P++; return 1 }
    i = 0
    while (1) {
      if (!val(path "[" i "]", depth + 1)) return 0
      i++; ws(); c = substr(S, P, 1); P++
      if (c == "]") return 1
      if (c != ",") return err("expected , or ]")
    }
  }
  if (c == "\"") { if (!str()) return 0; V[path] = T; return 1 }
  if (match(substr(S, P, 64), /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/)) {
    V[path] = substr(S, P, RLENGTH); P += RLENGTH; return 1
  }
  if (substr(S, P, 4) == "true") { V[path] = "true"; P += 4; return 1 }
  if (substr(S, P, 5) == "false") { V[path] = "false"; P += 5; return 1 }
  if (substr(S, P, 4) == "null") { P += 4; return 1 }
  return err("unexpected character")
}
{ S = S $0 "\n" }
END {
  N = length(S); P = 1; E = ""
  if (!val("", 0)) { print "ERROR not valid JSON: " E; exit 1 }
  ws()
  if (P <= N) { print "ERROR not valid JSON: trailing data at byte " P; exit 1 }
  if (V[".ignition.version"] !~ /^3\./) { print "ERROR not an Ignition v3 config (ignition.version)"; exit 1 }
  for (i = 0; (".storage.files[" i "].path") in V; i++) {
    p = V[".storage.files[" i "].path"]
    m = V[".storage.files[" i "].mode"]
    s = V[".storage.files[" i "].contents.source"]
    if (p !~ /^\/[A-Za-z0-9._\/-]+$/ || p ~ /\.\./) { print "ERROR unsafe file path " p; exit 1 }
    if (m == "") m = 420
    if (m !~ /^[0-9]+$/ || m + 0 > 4095) { print "ERROR bad mode of " p; exit 1 }
    if (s !~ /^data:[^,]*;base64,[A-Za-z0-9+\/=]*$/) { print "ERROR unsupported contents of " p " (only base64 data URLs)"; exit 1 }
    sub(/^data:[^,]*;base64,/, "", s)
    if (s == "") s = "-"
    print "FILE " p " " m " " s
  }
}
"#;

/// The installer's `/init` (busybox sh). See the module documentation.
/// The **stand-in** `sudo` of the lab's installed OS: `core` is uid 0 in
/// the image, so `sudo -n -- CMD...` (how Harmony runs privileged commands
/// as `core`) runs `CMD...`; any other form is refused.
const SUDO_STAND_IN: &[u8] = b"#!/bin/sh
[ \"$1\" = -n ] || { echo 'sudo (lab stand-in): only sudo -n -- CMD' >&2; exit 1; }
shift
[ \"$1\" = -- ] && shift
exec \"$@\"
";

pub const INIT_SCRIPT: &str = r#"#!/bin/sh
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts
mount -t devpts devpts /dev/pts
echo "HARMONY-LAB-INSTALLER $(uname -r)"
while read -r m params; do
  insmod "/lib/modules/$m" $params || echo "HARMONY-LAB-INSMOD-FAILED $m"
done < /etc/lab/modules
ip link set lo up
hostname installer
@BY_ID_LINKS@

REPORT_URL=""
[ -f /etc/lab/report_url ] && REPORT_URL="$(cat /etc/lab/report_url)"
# The last `NAME=value` of the kernel command line.
arg() {
  v=""
  for w in $(cat /proc/cmdline); do
    case "$w" in "$1="*) v="${w#*=}" ;; esac
  done
  echo "$v"
}
MAC=""
for d in /sys/class/net/*; do
  [ -e "$d/device" ] || continue
  MAC="$(cat "$d/address")"
  break
done
HOST=""
enc() { printf '%s' "$1" | tr -c 'A-Za-z0-9._:-' '+'; }
report() {
  echo "HARMONY-LAB-PHASE $1 $2" > /dev/console
  [ -n "$REPORT_URL" ] || return 0
  i=0
  while [ $i -lt 5 ]; do
    timeout 10 wget -q -O /dev/null \
      --post-data "mac=$(enc "$MAC")&phase=$1&hostname=$(enc "$HOST")&detail=$(enc "$2")" \
      "$REPORT_URL" && return 0
    i=$((i + 1))
    sleep 1
  done
  echo "HARMONY-LAB-REPORT-FAILED $1" > /dev/console
}
serve() {
  if [ -f /etc/lab/relay_ports ]; then
    for p in $(cat /etc/lab/relay_ports); do
      nc -ll -p "$p" -e "/etc/lab/relay-$p" > /dev/null 2>&1 &
    done
  fi
  /usr/sbin/dropbear -R -E -p 22 -P /var/run/dropbear.pid > /dev/console 2>&1
  echo "HARMONY-LAB-INSTALLER-READY"
  while :; do sleep 3600; done
}
fail() {
  report failed "$1"
  serve
}

# A disk installed before (the header in sector 0) is announced.
for b in /sys/block/vd*; do
  [ -e "$b" ] || continue
  h="$(head -c 22 "/dev/${b##*/}" 2>/dev/null)"
  [ "$h" = "HARMONY-LAB-INSTALL v1" ] && echo "HARMONY-LAB-INSTALLED-DISK /dev/${b##*/}"
done

# 1. The bond, from `bond=` (or `rd.bond=`), through sysfs.
BOND="$(arg bond)"
[ -n "$BOND" ] || BOND="$(arg rd.bond)"
BNAME=""
if [ -n "$BOND" ]; then
  BNAME="${BOND%%:*}"
  rest="${BOND#*:}"
  slaves="${rest%%:*}"
  opts=""
  [ "$rest" != "$slaves" ] && opts="${rest#*:}"
  case "$BNAME" in ""|*[!a-z0-9]*) fail "bad bond name in bond=$BOND" ;; esac
  echo "+$BNAME" > /sys/class/net/bonding_masters || fail "cannot create $BNAME"
  b="/sys/class/net/$BNAME/bonding"
  for o in $(echo "$opts" | tr ',' ' '); do
    [ "${o%%=*}" = mode ] && { echo "${o#*=}" > "$b/mode" || fail "bond mode ${o#*=} refused"; }
  done
  for o in $(echo "$opts" | tr ',' ' '); do
    k="${o%%=*}"
    [ "$k" = mode ] && continue
    case "$k" in ""|*[!a-z_]*) fail "bad bond option $o" ;; esac
    [ -f "$b/$k" ] || fail "unknown bond option $k"
    echo "${o#*=}" > "$b/$k" || fail "bond option $o refused"
  done
  for s in $(echo "$slaves" | tr ',' ' '); do
    [ -e "/sys/class/net/$s/device" ] || fail "no NIC $s for $BNAME"
    ip link set "$s" down
    echo "+$s" > "$b/slaves" || fail "cannot enslave $s to $BNAME"
  done
  ip link set "$BNAME" up
fi

# 2. The address, from `ip=`.
IPARG="$(arg ip)"
IFACE=""
case "$IPARG" in
  *:dhcp)
    IFACE="${IPARG%%:*}"
    ;;
  *:none)
    old_ifs="$IFS"; IFS=:
    set -- $IPARG
    IFS="$old_ifs"
    IFACE="$6"
    ip link set "$IFACE" up
    ifconfig "$IFACE" "$1" netmask "$4" up || fail "cannot set $1 on $IFACE"
    [ -n "$3" ] && route add default gw "$3" dev "$IFACE" 2>/dev/null
    echo "HARMONY-LAB-DHCP $IFACE $1" > /dev/console
    ;;
  "")
    IFACE="${BNAME:-eth0}"
    IPARG="$IFACE:dhcp"
    ;;
  *) fail "unsupported ip=$IPARG" ;;
esac
case "$IFACE" in ""|*[!a-z0-9]*) fail "bad interface in ip=$IPARG" ;; esac
[ -e "/sys/class/net/$IFACE" ] || fail "no interface $IFACE for ip=$IPARG"
case "$IPARG" in *:dhcp)
  ip link set "$IFACE" up
  udhcpc -i "$IFACE" -f -t 0 -T 2 -s /etc/udhcpc.script > /dev/null 2>&1 &
  ;;
esac
i=0
until ip -4 addr show dev "$IFACE" | grep -q inet; do
  i=$((i + 1))
  [ $i -gt 120 ] && fail "no address on $IFACE within 120 s"
  sleep 1
done

# 3. The live root filesystem (the real live initramfs fetches it into RAM
# before anything else runs), then the Ignition config, fetched and checked.
# fetch URL FILE TRIES SECONDS: each try bounded, 2 s apart.
fetch() {
  i=0
  until timeout "$4" wget -q -O "$2" "$1"; do
    i=$((i + 1))
    [ $i -ge "$3" ] && fail "cannot fetch $1"
    sleep 2
  done
}
ROOTFS="$(arg coreos.live.rootfs_url)"
if [ -n "$ROOTFS" ]; then
  fetch "$ROOTFS" /tmp/rootfs.img 5 60
  echo "HARMONY-LAB-ROOTFS $(wc -c < /tmp/rootfs.img) bytes" > /dev/console
  rm -f /tmp/rootfs.img
fi
URL="$(arg coreos.inst.ignition_url)"
[ -n "$URL" ] || fail "no coreos.inst.ignition_url"
fetch "$URL" /tmp/ignition.json 10 20
awk -f /etc/lab/ignition.awk /tmp/ignition.json > /tmp/ignition.files 2>&1 \
  || fail "$(head -n 1 /tmp/ignition.files | head -c 200)"
rm -rf /stage
mkdir -p /stage
while read -r kind path mode data; do
  [ "$kind" = FILE ] || continue
  mkdir -p "/stage${path%/*}"
  if [ "$data" = "-" ]; then
    : > "/stage$path"
  else
    echo "$data" | base64 -d > "/stage$path" || fail "cannot decode $path"
  fi
  chmod "$(printf '%o' "$mode")" "/stage$path"
done < /tmp/ignition.files
[ -s /stage/etc/hostname ] && HOST="$(head -n 1 /stage/etc/hostname | tr -cd 'A-Za-z0-9.-')"
report ignition-fetched "$(grep -c '^FILE ' /tmp/ignition.files) files"
[ -n "$HOST" ] || fail "no /etc/hostname in the Ignition config"
hostname "$HOST"
KF=/stage/etc/NetworkManager/system-connections
if [ -n "$BNAME" ]; then
  found=""
  for f in "$KF"/*.nmconnection; do
    [ -f "$f" ] || continue
    grep -q '^type=bond$' "$f" && grep -q "^interface-name=$BNAME\$" "$f" && found="$f"
  done
  [ -n "$found" ] || fail "no NetworkManager keyfile for bond $BNAME (type=bond, interface-name=$BNAME) in the Ignition config"
fi

# 4. The install disk: the archive from 1 MiB, the header in sector 0, last.
DEV="$(arg coreos.inst.install_dev)"
DISK=""
case "$DEV" in
  /dev/disk/by-id/virtio-*)
    want="${DEV#/dev/disk/by-id/virtio-}"
    for b in /sys/block/vd*; do
      [ "$(cat "$b/serial" 2>/dev/null)" = "$want" ] && DISK="/dev/${b##*/}"
    done
    ;;
  /dev/vd[a-z]|/dev/sd[a-z]|/dev/nvme[0-9]n[0-9]) DISK="$DEV" ;;
esac
[ -n "$DISK" ] && [ -b "$DISK" ] || fail "install device $DEV not found"
(cd /stage && tar -cf /tmp/install.tar .) || fail "cannot archive the files"
size="$(wc -c < /tmp/install.tar)"
dd if=/dev/zero of="$DISK" bs=512 count=1 conv=fsync 2>/dev/null || fail "cannot write $DISK"
dd if=/tmp/install.tar of="$DISK" bs=1M seek=1 conv=fsync 2>/dev/null || fail "cannot write $DISK"
printf 'HARMONY-LAB-INSTALL v1\nhostname=%s\nmac=%s\ntar_offset=1048576\ntar_bytes=%s\n' \
  "$HOST" "$MAC" "$size" > /tmp/header
dd if=/tmp/header of="$DISK" bs=512 count=1 conv=fsync 2>/dev/null || fail "cannot write $DISK"
# A DOS partition table (one Linux partition over the archive) and the
# boot signature 0x55AA, as a bootable disk has: `wipefs --all` erases the
# signature, and without it the disk is blank (and not bootable).
printf '\000\000\000\000\203\000\000\000\000\010\000\000\000\040\000\000' \
  | dd of="$DISK" bs=1 seek=446 conv=notrunc,fsync 2>/dev/null || fail "cannot write $DISK"
printf '\125\252' | dd of="$DISK" bs=1 seek=510 conv=notrunc,fsync 2>/dev/null \
  || fail "cannot write $DISK"
sync
[ "$(head -c 22 "$DISK")" = "HARMONY-LAB-INSTALL v1" ] || fail "read-back of $DISK failed"
report disk-written "$DEV=$DISK $size bytes"

# 5. The bond is up: its mode and the address.
if [ -n "$BNAME" ]; then
  mode="$(cat "/sys/class/net/$BNAME/bonding/mode")"
  case "$mode" in 802.3ad*) ;; *) fail "$BNAME is in mode $mode, not 802.3ad" ;; esac
fi
addr="$(ip -4 addr show dev "$IFACE" | awk '/inet /{print $2; exit}')"
report bond-up "$IFACE ${mode%% *} $addr"
serve
"#;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn phases_round_trip_and_unknown_ones_are_refused() {
        for p in [
            InstallerPhase::IgnitionFetched,
            InstallerPhase::DiskWritten,
            InstallerPhase::BondUp,
            InstallerPhase::Failed,
        ] {
            assert_eq!(p.as_str().parse::<InstallerPhase>().unwrap(), p);
        }
        let e = "installed".parse::<InstallerPhase>().unwrap_err();
        assert!(e.to_string().contains("installer phase"), "{e}");
    }

    #[test]
    fn report_urls_are_checked() {
        let ok = InstallerImage::new(
            "ssh-ed25519 AAAA",
            Some("http://10.0.0.1:8090/r".into()),
            None,
        );
        assert!(ok.checked_report_url().unwrap().is_some());
        for bad in [
            "https://10.0.0.1/r",
            "http://a b/",
            "ftp://x/",
            "http://x/$(reboot)",
        ] {
            let img = InstallerImage::new("ssh-ed25519 AAAA", Some(bad.into()), None);
            let e = img.checked_report_url().unwrap_err().to_string();
            assert!(e.contains("report URL"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_image_carries_init_the_parser_the_url_and_relays() {
        let img = InstallerImage::new(
            "ssh-ed25519 AAAA",
            Some("http://10.0.0.1:8090/lab/report".into()),
            Some("10.0.0.1:16443".parse().unwrap()),
        );
        let url = img.checked_report_url().unwrap();
        let files = img.files(url.as_ref());
        let get = |p: &str| {
            files
                .iter()
                .find(|f| f.0 == p)
                .map(|f| String::from_utf8(f.2.clone()).unwrap())
                .unwrap_or_else(|| panic!("no {p}"))
        };
        assert_eq!(
            get("etc/lab/report_url"),
            "http://10.0.0.1:8090/lab/report\n"
        );
        assert_eq!(
            get("etc/lab/relay-6443"),
            "#!/bin/sh\nexec nc 10.0.0.1 16443\n"
        );
        assert_eq!(get("etc/lab/relay_ports"), "6443 22623\n");
        let init = get("init");
        for needle in [
            "coreos.inst.ignition_url",
            "coreos.inst.install_dev",
            "/sys/class/net/bonding_masters",
            "--post-data \"mac=",
            "phase=$1&hostname=",
            "report ignition-fetched",
            "report disk-written",
            "report bond-up",
            "report failed",
            INSTALL_MAGIC,
        ] {
            assert!(init.contains(needle), "init lacks {needle}");
        }
        let without = InstallerImage::new("ssh-ed25519 AAAA", None, None).files(None);
        assert!(
            without
                .iter()
                .all(|f| !f.0.starts_with("etc/lab/relay") && f.0 != "etc/lab/report_url")
        );
    }

    /// Sector 0 as the init script writes it: the header, one Linux
    /// partition from LBA 2048, the boot signature.
    fn installed_sector0() -> Vec<u8> {
        let mut sector = b"HARMONY-LAB-INSTALL v1\nhostname=master-0\nmac=52:54:00:00:00:01\ntar_offset=1048576\ntar_bytes=10240\n".to_vec();
        sector.resize(512, 0);
        sector[446..462].copy_from_slice(&[0, 0, 0, 0, 0x83, 0, 0, 0, 0, 8, 0, 0, 0, 0x20, 0, 0]);
        sector[510] = 0x55;
        sector[511] = 0xAA;
        sector
    }

    #[test]
    fn install_headers_parse_and_blank_disks_have_none() {
        let sector = installed_sector0();
        let h = InstallHeader::parse(&sector).unwrap().unwrap();
        assert_eq!(h.hostname, "master-0");
        assert_eq!(h.tar_bytes, 10240);
        assert_eq!(InstallHeader::parse(&[0u8; 512]).unwrap(), None);
        // The header without the boot signature: blank.
        let mut unsigned = sector.clone();
        unsigned[510] = 0;
        assert_eq!(InstallHeader::parse(&unsigned).unwrap(), None);
        let mut bad = b"HARMONY-LAB-INSTALL v1\ntar_offset=1\ntar_bytes=x\n".to_vec();
        bad.resize(512, 0);
        bad[510] = 0x55;
        bad[511] = 0xAA;
        assert!(InstallHeader::parse(&bad).is_err());
    }

    /// The real `wipefs --all` (what Harmony's wipe runs) sees the
    /// installed disk's partition table and erases its signature: the disk
    /// reads blank afterwards.
    #[test]
    fn wipefs_blanks_an_installed_disk() {
        if !Path::new("/usr/sbin/wipefs").is_file() && !Path::new("/sbin/wipefs").is_file() {
            eprintln!("SKIPPED: wipefs_blanks_an_installed_disk: no wipefs");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let disk = dir.path().join("disk.img");
        let mut image = installed_sector0();
        image.resize(8 << 20, 0);
        std::fs::write(&disk, &image).unwrap();
        assert!(InstallHeader::read(&disk).unwrap().is_some());
        let out = std::process::Command::new("wipefs")
            .args(["--all", "--force", "--"])
            .arg(&disk)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("55 aa"),
            "wipefs erased: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(InstallHeader::read(&disk).unwrap(), None);
    }

    /// The awk parser and the init's file handling, run by the host's
    /// busybox on an Ignition config made by the ignition module.
    #[test]
    fn the_awk_parser_accepts_our_ignition_and_refuses_bad_input() {
        let busybox = Path::new("/bin/busybox");
        if !busybox.is_file() {
            eprintln!("SKIPPED: no /bin/busybox (run .ci/setup)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let awk = dir.path().join("ignition.awk");
        std::fs::write(&awk, IGNITION_AWK).unwrap();
        let run = |json: &[u8]| {
            let f = dir.path().join("ign.json");
            std::fs::write(&f, json).unwrap();
            let script = format!(
                "/bin/busybox awk -f '{}' '{}' 2>&1; echo rc=$?",
                awk.display(),
                f.display()
            );
            let o = crate::infra::process::Program::new("/bin/busybox")
                .args(["sh", "-c", &script])
                .timeout(std::time::Duration::from_secs(20))
                .run_blocking()
                .unwrap();
            let out = String::from_utf8_lossy(&o.stdout).into_owned();
            match out.strip_suffix("rc=0\n") {
                Some(ok) => Ok(ok.to_string()),
                None => Err(out),
            }
        };
        let ign = crate::modules::okd::ignition::host_ignition(
            &crate::modules::okd::ignition::HostIgnition {
                hostname: "master-0".parse().unwrap(),
                role: crate::domain::values::Role::ControlPlane,
                role_config: "http://10.0.0.1:8080/master.ign".parse().unwrap(),
                ca: None,
                keyfiles: vec![(
                    "bond0.nmconnection".parse().unwrap(),
                    "[connection]\nid=bond0\ntype=bond\ninterface-name=bond0\n".into(),
                )],
            },
        )
        .unwrap();
        let out = run(&ign).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(lines[0].starts_with("FILE /etc/hostname 420 "), "{out}");
        assert!(
            lines[1]
                .starts_with("FILE /etc/NetworkManager/system-connections/bond0.nmconnection 384 "),
            "{out}"
        );
        for (bad, why) in [
            (&b"{\"ignition\": {\"version\": \"3.2.0\"}"[..], "not valid JSON"),
            (b"{\"ignition\": {\"version\": \"3.2.0\"}} x", "trailing data"),
            (b"[1, 2,]", "not valid JSON"),
            (b"{\"ignition\": {\"version\": \"2.2.0\"}}", "Ignition v3"),
            (
                b"{\"ignition\":{\"version\":\"3.2.0\"},\"storage\":{\"files\":[{\"path\":\"/etc/../x\",\"contents\":{\"source\":\"data:;base64,AA==\"}}]}}",
                "unsafe file path",
            ),
            (
                b"{\"ignition\":{\"version\":\"3.2.0\"},\"storage\":{\"files\":[{\"path\":\"/etc/x\",\"contents\":{\"source\":\"http://evil/x\"}}]}}",
                "unsupported contents",
            ),
        ] {
            let e = run(bad).unwrap_err();
            assert!(e.contains(why), "{:?}: {e}", String::from_utf8_lossy(bad));
        }
    }
}
