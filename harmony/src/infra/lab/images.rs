//! The stand-in OS images the lab boots, built from Debian packages (the
//! real CentOS Stream / SCOS images cannot be downloaded here; real sites use
//! them through the same templates):
//! - [`DebianKernel`]: Debian's kernel package (`apt-get download
//!   linux-image-<version>` + `dpkg -x`, no install), cached under the lab's
//!   directory; its modules are resolved through `modules.dep`, which the
//!   package does not ship (`depmod -b` makes it);
//! - [`DiscoveryImage`]: a gzip'ed newc initramfs with busybox-static, the
//!   NIC/disk/bonding modules, dropbear with the operator's key and the
//!   static inventory agent; its `/init` loads the modules, runs busybox
//!   `udhcpc` on every NIC, starts dropbear and the agent.
//!
//! The archive is deterministic ([`super::cpio`]: fixed order, mtime 0,
//! `gzip -n`): the same inputs give the same bytes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::LabError;
use super::cpio::CpioWriter;
use crate::infra::process::Program;

/// `apt-get download` of a 70 MB package, at most.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(600);
const LOCAL_TIMEOUT: Duration = Duration::from_secs(120);

/// What `/init` prints on the serial console once everything started.
pub const READY_MARKER: &str = "HARMONY-LAB-READY";
/// Printed by `/init` for a module that did not load.
pub const INSMOD_FAILED_MARKER: &str = "HARMONY-LAB-INSMOD-FAILED";
/// Printed by the DHCP script for each lease: `HARMONY-LAB-DHCP IFACE IP`.
pub const DHCP_MARKER: &str = "HARMONY-LAB-DHCP";

/// The modules the discovery image loads (with their dependencies): virtio
/// NICs and disks, and the bonding driver for the installer's bond.
pub const DISCOVERY_MODULES: &[&str] = &["virtio_pci", "virtio_net", "virtio_blk", "bonding"];

/// A Debian kernel package unpacked under the lab's cache.
#[derive(Debug, Clone)]
pub struct DebianKernel {
    /// e.g. `6.1.0-56-amd64`.
    pub version: String,
    /// The `dpkg -x` tree.
    pub root: PathBuf,
}

impl DebianKernel {
    /// The version `linux-image-amd64` (the running Debian's kernel
    /// metapackage) depends on, from `apt-cache depends`.
    pub fn current_version() -> Result<String, LabError> {
        let out = Program::new("apt-cache")
            .args(["depends", "linux-image-amd64"])
            .timeout(LOCAL_TIMEOUT)
            .run_blocking()
            .map_err(|e| LabError::process("apt-cache depends linux-image-amd64", e))?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("Depends: linux-image-"))
            .find(|v| v.ends_with("-amd64") && v.starts_with(|c: char| c.is_ascii_digit()))
            .map(str::to_string)
            .ok_or_else(|| LabError::Missing {
                what: "the kernel version of linux-image-amd64".into(),
                detail: format!("apt-cache depends said: {:.300}", text.trim()),
            })
    }

    /// The unpacked package for `version` (or [`Self::current_version`]),
    /// downloaded into `cache` the first time.
    pub fn fetch(cache: &Path, version: Option<&str>) -> Result<DebianKernel, LabError> {
        let version = match version {
            Some(v) => v.to_string(),
            None => Self::current_version()?,
        };
        let ok = !version.is_empty()
            && version.len() <= 64
            && version
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-+~".contains(&b));
        if !ok {
            return Err(LabError::invalid(
                "kernel version",
                version,
                "1-64 of [A-Za-z0-9.+~-]",
            ));
        }
        let root = cache.join(format!("linux-image-{version}"));
        let kernel = DebianKernel { version, root };
        if kernel.vmlinuz().is_file() {
            tracing::debug!(root = %kernel.root.display(), "kernel cached");
            kernel.depmod()?;
            return Ok(kernel);
        }
        std::fs::create_dir_all(cache).map_err(|e| LabError::io(cache, e))?;
        let work = tempfile::Builder::new()
            .prefix(".kernel-")
            .tempdir_in(cache)
            .map_err(|e| LabError::io(cache, e))?;
        let package = format!("linux-image-{}", kernel.version);
        tracing::info!(%package, "downloading the kernel package");
        Program::new("apt-get")
            .args(["download", "-q", &package])
            .current_dir(work.path())
            .timeout(DOWNLOAD_TIMEOUT)
            .run_blocking()
            .map_err(|e| LabError::process(format!("apt-get download {package}"), e))?;
        let deb = std::fs::read_dir(work.path())
            .map_err(|e| LabError::io(work.path(), e))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .ok_or_else(|| LabError::Missing {
                what: format!("{package}.deb"),
                detail: format!("apt-get download left none in {}", work.path().display()),
            })?;
        let tree = work.path().join("tree");
        Program::new("dpkg")
            .arg("-x")
            .arg(&deb)
            .arg(&tree)
            .timeout(LOCAL_TIMEOUT)
            .run_blocking()
            .map_err(|e| LabError::process(format!("dpkg -x {}", deb.display()), e))?;
        let _ = std::fs::remove_dir_all(&kernel.root);
        std::fs::rename(&tree, &kernel.root).map_err(|e| LabError::io(&kernel.root, e))?;
        if !kernel.vmlinuz().is_file() {
            return Err(LabError::Missing {
                what: "vmlinuz".into(),
                detail: kernel.vmlinuz().display().to_string(),
            });
        }
        kernel.depmod()?;
        Ok(kernel)
    }

    /// The package ships no `modules.dep` (the installer's `depmod` makes
    /// it): run `depmod -b ROOT VERSION` on the unpacked tree once.
    fn depmod(&self) -> Result<(), LabError> {
        if self.modules_dir().join("modules.dep").is_file() {
            return Ok(());
        }
        Program::new("depmod")
            .arg("-b")
            .arg(&self.root)
            .arg(&self.version)
            .timeout(LOCAL_TIMEOUT)
            .run_blocking()
            .map(|_| ())
            .map_err(|e| LabError::process(format!("depmod for {}", self.version), e))
    }

    pub fn vmlinuz(&self) -> PathBuf {
        self.root.join(format!("boot/vmlinuz-{}", self.version))
    }

    pub fn modules_dir(&self) -> PathBuf {
        self.root.join(format!("lib/modules/{}", self.version))
    }

    /// The module files (relative to [`Self::modules_dir`]) to load, in
    /// load order, for `wanted` and everything they depend on
    /// (`modules.dep`); modules built into the kernel (`modules.builtin`)
    /// need no file and are left out.
    pub fn resolve_modules(&self, wanted: &[&str]) -> Result<Vec<String>, LabError> {
        let dir = self.modules_dir();
        let read = |name: &str| {
            let p = dir.join(name);
            std::fs::read_to_string(&p).map_err(|e| LabError::io(p, e))
        };
        let deps = read("modules.dep")?;
        let builtin = read("modules.builtin").unwrap_or_default();
        resolve(&deps, &builtin, wanted)
    }
}

/// The module name of a path in `modules.dep` (`kernel/a/virtio_net.ko` →
/// `virtio_net`; `-` and `_` are the same to the kernel).
fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    stem.replace('-', "_")
}

/// Load order for `wanted` over the text of `modules.dep` and
/// `modules.builtin`: each module after its dependencies, each once.
pub fn resolve(deps: &str, builtin: &str, wanted: &[&str]) -> Result<Vec<String>, LabError> {
    let table: Vec<(String, String, Vec<String>)> = deps
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(m, d)| {
            (
                module_name(m),
                m.trim().to_string(),
                d.split_whitespace().map(str::to_string).collect(),
            )
        })
        .collect();
    let builtin: BTreeSet<String> = builtin.lines().map(module_name).collect();
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    for w in wanted {
        let name = w.replace('-', "_");
        if builtin.contains(&name) {
            continue;
        }
        let Some((_, path, _)) = table.iter().find(|(n, _, _)| *n == name) else {
            return Err(LabError::Missing {
                what: format!("kernel module {w}"),
                detail: "neither in modules.dep nor in modules.builtin".into(),
            });
        };
        visit(path, &table, &mut seen, &mut order, 0)?;
    }
    if let Some(c) = order.iter().find(|p| !p.ends_with(".ko")) {
        return Err(LabError::invalid(
            "kernel module",
            c.clone(),
            "compressed modules are not supported (busybox insmod takes plain .ko)",
        ));
    }
    Ok(order)
}

fn visit(
    path: &str,
    table: &[(String, String, Vec<String>)],
    seen: &mut BTreeSet<String>,
    order: &mut Vec<String>,
    depth: usize,
) -> Result<(), LabError> {
    if depth > 64 {
        return Err(LabError::invalid(
            "modules.dep",
            path,
            "dependencies nest too deep",
        ));
    }
    if !seen.insert(path.to_string()) {
        return Ok(());
    }
    let deps = table
        .iter()
        .find(|(_, p, _)| p == path)
        .map(|(_, _, d)| d.clone())
        .unwrap_or_default();
    // modules.dep lists the deepest dependency last: load from the end.
    for d in deps.iter().rev() {
        visit(d, table, seen, order, depth + 1)?;
    }
    order.push(path.to_string());
    Ok(())
}

/// The inputs of the discovery initramfs.
#[derive(Debug, Clone)]
pub struct DiscoveryImage {
    /// The static agent (`cargo agent`).
    pub agent: PathBuf,
    /// One OpenSSH public key line for root's `authorized_keys`.
    pub authorized_key: String,
    pub agent_port: u16,
    pub busybox: PathBuf,
    pub dropbear: PathBuf,
}

impl DiscoveryImage {
    pub fn new(agent: PathBuf, authorized_key: &str, agent_port: u16) -> Self {
        DiscoveryImage {
            agent,
            authorized_key: authorized_key.trim().to_string(),
            agent_port,
            busybox: PathBuf::from("/bin/busybox"),
            dropbear: PathBuf::from("/usr/sbin/dropbear"),
        }
    }

    /// Builds `out` (gzip'ed newc cpio) for `kernel`; returns its size.
    pub fn build(&self, kernel: &DebianKernel, out: &Path) -> Result<u64, LabError> {
        if self.agent_port == 0 {
            return Err(LabError::invalid("agent port", "0", "1-65535"));
        }
        let mut img = base_tree(
            kernel,
            &self.authorized_key,
            &self.busybox,
            &self.dropbear,
            &[Login::Root],
        )?;
        img.host_file("bin/harmony-inventory-agent", &self.agent, 0o755)?;
        img.file("etc/udhcpc.script", 0o755, UDHCPC_SCRIPT.as_bytes());
        img.file("init", 0o755, init_script(self.agent_port).as_bytes());
        write_gzip(img, out)
    }
}

const SYSTEMCTL_STAND_IN: &[u8] = b"#!/bin/sh
[ \"$1\" = reboot ] || { echo \"systemctl (lab stand-in): only reboot\" >&2; exit 1; }
(sleep 1; sync; reboot -f) > /dev/null 2>&1 < /dev/null &
exit 0
";

/// Host programs both images carry (image path, host path): see
/// [`base_tree`].
const HOST_PROGRAMS: [(&str, &str); 2] = [
    ("usr/bin/timeout", "/usr/bin/timeout"),
    ("usr/bin/wipefs", "/usr/sbin/wipefs"),
];

/// Who may log in to an image with the operator's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Login {
    /// `root`: the discovery environment's login (as `inventory.ks`).
    Root,
    /// `core`: the installed OS's login (SCOS), whose commands Harmony runs
    /// through `sudo -n`. A **stand-in**: uid 0 in the lab image, and
    /// `sudo` a script that runs its command (see `installer.rs`).
    Core,
}

impl Login {
    fn user_home(self) -> (&'static str, &'static str) {
        match self {
            Login::Root => ("root", "root"),
            Login::Core => ("core", "home/core"),
        }
    }
}

/// The tree both lab images share: directories, busybox, dropbear with its
/// libraries and `key` for root, the [`DISCOVERY_MODULES`] (with
/// `etc/lab/modules`, their load order), passwd/group/shells.
pub(super) fn base_tree(
    kernel: &DebianKernel,
    key: &str,
    busybox: &Path,
    dropbear: &Path,
    logins: &[Login],
) -> Result<Tree, LabError> {
    check_public_key(key)?;
    let modules = kernel.resolve_modules(DISCOVERY_MODULES)?;
    let mut img = Tree::default();
    for d in [
        "bin",
        "sbin",
        "usr",
        "usr/bin",
        "usr/sbin",
        "etc",
        "etc/dropbear",
        "etc/lab",
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "var",
        "var/run",
        "lib",
        "lib/modules",
    ] {
        img.dir(d, 0o755);
    }
    img.host_file("bin/busybox", busybox, 0o755)?;
    // The shell is Debian's dash, not busybox ash: Debian's busybox ash
    // runs its own applets before `PATH` (`timeout` without
    // `--kill-after`), and Harmony's commands run through `sh -c`.
    img.host_binary("bin/sh", Path::new("/bin/dash"))?;
    img.host_binary("usr/sbin/dropbear", dropbear)?;
    // The programs Harmony's SSH commands run that busybox lacks or does
    // differently: coreutils `timeout --kill-after` (every command is
    // bounded with it) and util-linux `wipefs` (the install disk's wipe),
    // the real ones, with their libraries.
    for (at, program) in HOST_PROGRAMS {
        img.host_binary(at, Path::new(program))?;
    }
    let mdir = kernel.modules_dir();
    for m in &modules {
        img.host_file(&format!("lib/modules/{m}"), &mdir.join(m), 0o644)?;
    }
    // `bonding` makes `bond0` on load unless told not to; the installer
    // creates its own bond, and a slave-less bond0 would get udhcpc.
    let lines: Vec<String> = modules
        .iter()
        .map(|m| match module_name(m).as_str() {
            "bonding" => format!("{m} max_bonds=0"),
            _ => m.clone(),
        })
        .collect();
    img.file(
        "etc/lab/modules",
        0o644,
        format!("{}\n", lines.join("\n")).as_bytes(),
    );
    // A **stand-in** `systemctl` knowing only `reboot`, which, as
    // systemd's does, returns at once and reboots a moment later (busybox
    // `reboot -f` would cut the SSH session Harmony issued it on).
    img.file("usr/bin/systemctl", 0o755, SYSTEMCTL_STAND_IN);
    let mut passwd = String::new();
    for login in logins {
        let (user, home) = login.user_home();
        passwd += &format!("{user}:x:0:0:{user}:/{home}:/bin/sh\n");
        img.dir(home, 0o700);
        img.dir(&format!("{home}/.ssh"), 0o700);
        img.file(
            &format!("{home}/.ssh/authorized_keys"),
            0o600,
            format!("{key}\n").as_bytes(),
        );
    }
    img.file("etc/passwd", 0o644, passwd.as_bytes());
    img.file("etc/group", 0o644, b"root:x:0:\n");
    img.file("etc/shells", 0o644, b"/bin/sh\n");
    Ok(img)
}

/// `gzip -n` of the tree's archive, written atomically to `out`; its size.
pub(super) fn write_gzip(img: Tree, out: &Path) -> Result<u64, LabError> {
    let cpio = img.w.finish();
    let parent = out.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| LabError::io(parent, e))?;
    let gz = Program::new("gzip")
        .args(["-n", "-6", "-c"])
        .stdin(cpio)
        .max_output(512 << 20)
        .timeout(LOCAL_TIMEOUT)
        .run_blocking()
        .map_err(|e| LabError::process("gzip of the initramfs", e))?;
    crate::infra::fs::write_atomic(out, &gz.stdout, 0o644).map_err(|e| LabError::io(out, e))?;
    Ok(gz.stdout.len() as u64)
}

/// The archive with its directories tracked, so each parent is written
/// once and before its children.
#[derive(Default)]
pub(super) struct Tree {
    w: CpioWriter,
    dirs: BTreeSet<String>,
    /// Libraries already added by [`Tree::host_binary`].
    files: BTreeSet<String>,
}

impl Tree {
    pub(super) fn dir(&mut self, path: &str, perm: u32) {
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent, 0o755);
        }
        if self.dirs.insert(path.to_string()) {
            self.w.dir(path, perm);
        }
    }

    pub(super) fn file(&mut self, path: &str, perm: u32, data: &[u8]) {
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent, 0o755);
        }
        self.w.file(path, perm, data);
    }

    /// A dynamically linked program at `path` and the libraries `ldd`
    /// lists for it (at their own paths; each written once).
    pub(super) fn host_binary(&mut self, path: &str, from: &Path) -> Result<(), LabError> {
        self.host_file(path, from, 0o755)?;
        for lib in shared_libraries(from)? {
            let rel = lib.display().to_string();
            let rel = rel.trim_start_matches('/').to_string();
            if self.files.insert(rel.clone()) {
                self.host_file(&rel, &lib, 0o755)?;
            }
        }
        Ok(())
    }

    pub(super) fn host_file(&mut self, path: &str, from: &Path, perm: u32) -> Result<(), LabError> {
        let data = std::fs::read(from).map_err(|e| LabError::io(from, e))?;
        self.file(path, perm, &data);
        Ok(())
    }
}

/// The shared libraries (and the ELF interpreter) `ldd` lists for `binary`.
fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, LabError> {
    let out = Program::new("ldd")
        .arg(binary)
        .timeout(LOCAL_TIMEOUT)
        .run_blocking()
        .map_err(|e| LabError::process(format!("ldd {}", binary.display()), e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(parse_ldd(&text))
}

/// `ldd` lines `name => /path (addr)` and `/path (addr)`; vdso has no path.
pub fn parse_ldd(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let target = l.split_once("=>").map_or(l, |(_, t)| t.trim());
            let path = target.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// One OpenSSH public key line: a known type, base64, an optional comment.
pub fn check_public_key(key: &str) -> Result<(), LabError> {
    let shown: String = key.chars().take(40).collect();
    if key.len() > 16 * 1024 || key.chars().any(|c| c.is_control()) {
        return Err(LabError::invalid(
            "authorized key",
            shown,
            "one line of at most 16 KiB",
        ));
    }
    let mut words = key.split_whitespace();
    let kind = words.next().unwrap_or("");
    let body = words.next().unwrap_or("");
    let known = [
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
    ];
    if !known.contains(&kind) {
        return Err(LabError::invalid(
            "authorized key",
            shown,
            "unknown key type",
        ));
    }
    if body.is_empty()
        || !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
    {
        return Err(LabError::invalid(
            "authorized key",
            shown,
            "key body is not base64",
        ));
    }
    Ok(())
}

/// busybox `udhcpc` calls this with `bound`/`renew`/`deconfig` and the
/// lease in the environment (`ip`, `subnet`, `router`).
pub(super) const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
case "$1" in
  deconfig)
    ifconfig "$interface" 0.0.0.0 up
    ;;
  bound|renew)
    ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up
    if [ -n "$router" ]; then
      route add default gw "${router%% *}" dev "$interface" 2>/dev/null
    fi
    echo "HARMONY-LAB-DHCP $interface $ip" > /dev/console
    ;;
esac
exit 0
"#;

/// What udev's `60-persistent-storage.rules` makes for a virtio disk with
/// a serial, which the images have no udev for:
/// `/dev/disk/by-id/virtio-SERIAL` -> `../../vdX` (the agent reports it,
/// the install plan and the wipe name the disk by it).
pub(super) const BY_ID_LINKS: &str = r#"mkdir -p /dev/disk/by-id
for b in /sys/block/vd*; do
  [ -e "$b" ] || continue
  s="$(cat "$b/serial" 2>/dev/null)"
  case "$s" in ""|*[!A-Za-z0-9._-]*) continue ;; esac
  ln -sf "../../${b##*/}" "/dev/disk/by-id/virtio-$s"
done"#;

fn init_script(agent_port: u16) -> String {
    format!(
        r#"#!/bin/sh
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts
mount -t devpts devpts /dev/pts
echo "HARMONY-LAB-INIT $(uname -r)"
while read -r m params; do
  insmod "/lib/modules/$m" $params || echo "{INSMOD_FAILED_MARKER} $m"
done < /etc/lab/modules
hostname discovery
ip link set lo up
# Every physical NIC (one with a device), each with its own DHCP client.
for d in /sys/class/net/*; do
  [ -e "$d/device" ] || continue
  n="${{d##*/}}"
  ip link set "$n" up
  udhcpc -i "$n" -f -t 0 -T 2 -s /etc/udhcpc.script >/dev/null 2>&1 &
done
{BY_ID_LINKS}
/usr/sbin/dropbear -R -E -p 22 -P /var/run/dropbear.pid > /dev/console 2>&1
/bin/harmony-inventory-agent --listen 0.0.0.0:{agent_port} --lldp-window 0 > /dev/console 2>&1 &
echo "{READY_MARKER}"
while :; do sleep 3600; done
"#
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const DEP: &str = "\
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/net/bonding/bonding.ko: kernel/net/tls/tls.ko
kernel/net/tls/tls.ko:
";

    #[test]
    fn modules_come_after_their_dependencies_once() {
        let order = resolve(
            DEP,
            "kernel/drivers/virtio/virtio.ko\n",
            &[
                "virtio",
                "virtio_pci",
                "virtio-net",
                "bonding",
                "virtio_net",
            ],
        )
        .unwrap();
        assert_eq!(
            order,
            vec![
                "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
                "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
                "kernel/drivers/virtio/virtio_pci.ko",
                "kernel/net/core/failover.ko",
                "kernel/drivers/net/net_failover.ko",
                "kernel/drivers/net/virtio_net.ko",
                "kernel/net/tls/tls.ko",
                "kernel/drivers/net/bonding/bonding.ko",
            ]
        );
        let e = resolve(DEP, "", &["nosuch"]).unwrap_err().to_string();
        assert!(e.contains("kernel module nosuch"), "{e}");
        let e = resolve("kernel/a.ko.xz:\n", "", &["a"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("compressed"), "{e}");
    }

    #[test]
    fn ldd_output_gives_library_paths() {
        let t = "\tlinux-vdso.so.1 (0x00007f)\n\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x1)\n\t/lib64/ld-linux-x86-64.so.2 (0x2)\n";
        assert_eq!(
            parse_ldd(t),
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libz.so.1"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
    }

    #[test]
    fn public_keys_are_checked() {
        check_public_key("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB+x/y= op@lab").unwrap();
        for bad in [
            "",
            "ssh-dss AAAA",
            "ssh-ed25519",
            "ssh-ed25519 AAAA\nssh-rsa B",
            "ssh-ed25519 AA;rm",
        ] {
            let e = check_public_key(bad).unwrap_err().to_string();
            assert!(e.contains("authorized key"), "{bad:?}: {e}");
        }
    }
}
