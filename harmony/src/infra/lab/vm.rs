//! A lab machine: `qemu-system-x86_64` with chosen hardware so that what the
//! inventory agent reports can be checked against what the lab configured —
//! NICs with chosen MACs on tap devices, sparse disks of chosen sizes,
//! `-smp sockets=S,cores=C,threads=T`, memory, SMBIOS type 1 serial and UUID
//! — booting from the network through the iPXE NIC ROM (`-boot order=n`, starting over when nothing boots) or
//! directly from a kernel, with its serial console in a file and a QMP
//! socket for power control ([`super::qmp`]).
//!
//! From the project's virtual-lab notes (QEMU 7.2, Debian 12): TCG is the
//! default, KVM hangs in iPXE and Linux on nested hosts (`--accel kvm` stays
//! possible); serial output needs `-nographic -serial file:…`; virtio NICs
//! need `speed=1000,duplex=full` for LACP, and DHCP/TCP through the OVS
//! userspace datapath need `vnet_hdr=off` and `csum=off,guest_csum=off,
//! gso=off`. QEMU finds the iPXE ROM for `virtio-net-pci` itself
//! (`/usr/lib/ipxe/qemu/efi-virtio.rom`); an explicit `romfile=` loaded none.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::LabError;
use super::netns::LabNetns;
use super::qmp::QmpClient;
use crate::domain::values::{InterfaceName, MacAddress};
use crate::infra::process::{ExitState, Program, Service};

/// The iPXE option ROM QEMU loads for `virtio-net-pci` (Debian `ipxe-qemu`).
pub const IPXE_VIRTIO_ROM: &str = "/usr/lib/ipxe/qemu/efi-virtio.rom";
/// Waits between looks at a socket or a process.
const POLL: Duration = Duration::from_millis(100);

/// How QEMU runs the guest's CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Accel {
    /// Software emulation: slow but works on nested hosts.
    #[default]
    Tcg,
    Kvm,
}

impl Accel {
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
        }
    }
}

impl std::str::FromStr for Accel {
    type Err = LabError;
    fn from_str(s: &str) -> Result<Self, LabError> {
        match s {
            "tcg" => Ok(Accel::Tcg),
            "kvm" => Ok(Accel::Kvm),
            _ => Err(LabError::invalid("accel", s, "tcg or kvm")),
        }
    }
}

/// A virtio NIC on a tap device of the lab's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicSpec {
    pub mac: MacAddress,
    pub tap: InterfaceName,
}

/// How a disk image is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFormat {
    /// A sparse file (`set_len`): costs nothing until written.
    Raw,
    /// `qemu-img create -f qcow2`.
    Qcow2,
}

impl DiskFormat {
    fn as_str(self) -> &'static str {
        match self {
            DiskFormat::Raw => "raw",
            DiskFormat::Qcow2 => "qcow2",
        }
    }
}

/// A virtio-blk disk (the guest sees `/dev/vdX`, serial as given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSpec {
    pub size_bytes: u64,
    pub format: DiskFormat,
    /// 1-20 of `[A-Za-z0-9-]` (virtio-blk serials are at most 20 bytes).
    pub serial: String,
}

/// SeaBIOS's `reboot-timeout` for [`BootSource::Network`]: the pause
/// before a machine that found nothing to boot starts over.
pub const NETWORK_BOOT_RETRY_MS: u32 = 5000;

/// What the machine boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootSource {
    /// Firmware → iPXE NIC ROM → DHCP (`-boot order=n`). When no boot
    /// device works (iPXE's DHCP gave up before the site's DHCP server
    /// was up, say), the firmware tries again after
    /// [`NETWORK_BOOT_RETRY_MS`], as a server looping its boot order does,
    /// instead of halting at "No bootable device" for good.
    Network,
    /// Direct kernel boot (faster; no firmware path).
    Kernel {
        kernel: PathBuf,
        initrd: PathBuf,
        append: String,
    },
}

/// A machine's hardware and boot, validated by [`VmSpec::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSpec {
    /// 1-32 of `[a-z0-9-]`: names the files in the VM's directory.
    pub name: String,
    pub accel: Accel,
    pub memory_mib: u32,
    pub sockets: u32,
    pub cores: u32,
    pub threads: u32,
    pub nics: Vec<NicSpec>,
    pub disks: Vec<DiskSpec>,
    /// SMBIOS type 1 serial, 1-64 of `[A-Za-z0-9._-]`.
    pub smbios_serial: String,
    /// SMBIOS type 1 UUID, `8-4-4-4-12` hex digits.
    pub smbios_uuid: String,
    pub boot: BootSource,
    /// Checksum offloads and vnet headers off (needed behind the OVS
    /// userspace datapath).
    pub offloads_off: bool,
    /// `-no-reboot`: a guest reboot ends QEMU (observable), instead of
    /// running the firmware again.
    pub exit_on_reboot: bool,
}

impl VmSpec {
    /// The lab's usual machine: TCG, 2 sockets × 2 cores × 1 thread,
    /// network boot, offloads off, reboot runs the firmware again.
    pub fn new(name: &str, memory_mib: u32, nics: Vec<NicSpec>, disks: Vec<DiskSpec>) -> Self {
        VmSpec {
            name: name.to_string(),
            accel: Accel::Tcg,
            memory_mib,
            sockets: 2,
            cores: 2,
            threads: 1,
            nics,
            disks,
            smbios_serial: format!("LAB-{name}"),
            smbios_uuid: String::new(),
            boot: BootSource::Network,
            offloads_off: true,
            exit_on_reboot: false,
        }
    }

    pub fn cpus(&self) -> u32 {
        self.sockets * self.cores * self.threads
    }

    /// Checks every field; the error names the field and value.
    pub fn validate(&self) -> Result<(), LabError> {
        let ok_name = !self.name.is_empty()
            && self.name.len() <= 32
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok_name {
            return Err(LabError::invalid(
                "vm name",
                &self.name,
                "1-32 of [a-z0-9-]",
            ));
        }
        if !(128..=65_536).contains(&self.memory_mib) {
            return Err(LabError::invalid(
                "memory_mib",
                self.memory_mib.to_string(),
                "128-65536",
            ));
        }
        for (field, v) in [
            ("sockets", self.sockets),
            ("cores", self.cores),
            ("threads", self.threads),
        ] {
            if !(1..=16).contains(&v) {
                return Err(LabError::invalid(field, v.to_string(), "1-16"));
            }
        }
        if self.nics.is_empty() || self.nics.len() > 8 {
            return Err(LabError::invalid(
                "nics",
                self.nics.len().to_string(),
                "1-8 NICs",
            ));
        }
        for (i, n) in self.nics.iter().enumerate() {
            if self.nics[..i].iter().any(|m| m.mac == n.mac) {
                return Err(LabError::invalid(
                    "nic mac",
                    n.mac.to_string(),
                    "used twice",
                ));
            }
            if n.mac.is_multicast() {
                return Err(LabError::invalid("nic mac", n.mac.to_string(), "multicast"));
            }
        }
        if self.disks.len() > 8 {
            return Err(LabError::invalid(
                "disks",
                self.disks.len().to_string(),
                "at most 8",
            ));
        }
        for d in &self.disks {
            if d.size_bytes < 1 << 20 || d.size_bytes > 64 << 40 || d.size_bytes % 512 != 0 {
                return Err(LabError::invalid(
                    "disk size_bytes",
                    d.size_bytes.to_string(),
                    "1 MiB-64 TiB, a multiple of 512",
                ));
            }
            if !word(&d.serial, 20, b"-") {
                return Err(LabError::invalid(
                    "disk serial",
                    &d.serial,
                    "1-20 of [A-Za-z0-9-]",
                ));
            }
        }
        if !word(&self.smbios_serial, 64, b"._-") {
            return Err(LabError::invalid(
                "smbios serial",
                &self.smbios_serial,
                "1-64 of [A-Za-z0-9._-]",
            ));
        }
        if !is_uuid(&self.smbios_uuid) {
            return Err(LabError::invalid(
                "smbios uuid",
                &self.smbios_uuid,
                "8-4-4-4-12 hex digits",
            ));
        }
        if let BootSource::Kernel { append, .. } = &self.boot
            && append.chars().any(|c| c.is_control())
        {
            return Err(LabError::invalid(
                "kernel append",
                append,
                "control character",
            ));
        }
        Ok(())
    }

    /// QEMU's arguments (after the program name), for files in `files`.
    pub fn qemu_args(&self, files: &VmFiles) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| s.to_string()));
        push(&["-name", &self.name, "-accel", self.accel.as_str()]);
        push(&["-m", &self.memory_mib.to_string()]);
        let smp = format!(
            "{},sockets={},cores={},threads={}",
            self.cpus(),
            self.sockets,
            self.cores,
            self.threads
        );
        push(&["-smp", &smp]);
        let smbios = format!(
            "type=1,manufacturer=Harmony,product=Harmony Lab VM,serial={},uuid={}",
            self.smbios_serial, self.smbios_uuid
        );
        push(&["-smbios", &smbios]);
        push(&["-nographic", "-monitor", "none"]);
        push(&["-serial", &format!("file:{}", qemu_path(&files.serial))]);
        push(&[
            "-qmp",
            &format!("unix:{},server=on,wait=off", qemu_path(&files.qmp)),
        ]);
        if self.exit_on_reboot {
            push(&["-no-reboot"]);
        }
        for (i, n) in self.nics.iter().enumerate() {
            let mut netdev = format!("tap,id=n{i},ifname={},script=no,downscript=no", n.tap);
            let mut dev = format!(
                "virtio-net-pci,netdev=n{i},mac={},speed=1000,duplex=full",
                n.mac
            );
            if self.offloads_off {
                netdev.push_str(",vnet_hdr=off");
                dev.push_str(",csum=off,guest_csum=off,gso=off");
            }
            if i > 0 || !matches!(self.boot, BootSource::Network) {
                // Only the first NIC PXE boots; the others need no ROM.
                dev.push_str(",romfile=");
            } else {
                dev.push_str(",bootindex=1");
            }
            push(&["-netdev", &netdev, "-device", &dev]);
        }
        for (i, (d, path)) in self.disks.iter().zip(&files.disks).enumerate() {
            let drive = format!(
                "file={},if=none,id=d{i},format={},cache=unsafe",
                qemu_path(path),
                d.format.as_str()
            );
            let dev = format!("virtio-blk-pci,drive=d{i},serial={}", d.serial);
            push(&["-drive", &drive, "-device", &dev]);
        }
        match &self.boot {
            BootSource::Network => {
                let boot = format!("order=n,reboot-timeout={NETWORK_BOOT_RETRY_MS}");
                push(&["-boot", &boot]);
            }
            BootSource::Kernel {
                kernel,
                initrd,
                append,
            } => {
                let k = kernel.display().to_string();
                let i = initrd.display().to_string();
                push(&["-kernel", &k, "-initrd", &i, "-append", append]);
            }
        }
        a
    }
}

/// The files of one VM: serial log, QMP socket, QEMU's own log, disks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmFiles {
    pub serial: PathBuf,
    pub qmp: PathBuf,
    pub qemu_log: PathBuf,
    pub disks: Vec<PathBuf>,
}

impl VmFiles {
    pub fn in_dir(dir: &Path, spec: &VmSpec) -> Self {
        VmFiles {
            serial: dir.join(format!("{}.serial", spec.name)),
            qmp: dir.join(format!("{}.qmp", spec.name)),
            qemu_log: dir.join(format!("{}.qemu.log", spec.name)),
            disks: (0..spec.disks.len())
                .map(|i| {
                    let ext = spec.disks[i].format.as_str();
                    dir.join(format!("{}-disk{i}.{ext}", spec.name))
                })
                .collect(),
        }
    }
}

/// A running machine; dropping it kills QEMU (its process group).
#[derive(Debug)]
pub struct Vm {
    spec: VmSpec,
    files: VmFiles,
    service: Service,
    started: Instant,
}

impl fmt::Display for Vm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VM {}", self.spec.name)
    }
}

impl Vm {
    /// Creates the disks in `dir` and starts QEMU inside `ns`. With
    /// `hard_kill_after`, `timeout -s KILL` also ends QEMU if this process
    /// dies without unwinding.
    pub fn start(
        ns: &LabNetns,
        spec: VmSpec,
        dir: &Path,
        hard_kill_after: Option<Duration>,
    ) -> Result<Vm, LabError> {
        spec.validate()?;
        let files = VmFiles::in_dir(dir, &spec);
        for (d, path) in spec.disks.iter().zip(&files.disks) {
            create_disk(path, d)?;
        }
        let _ = std::fs::remove_file(&files.qmp);
        let mut program = match hard_kill_after {
            Some(after) => ns.program("timeout").args([
                "-s".to_string(),
                "KILL".to_string(),
                after.as_secs().max(1).to_string(),
                "qemu-system-x86_64".to_string(),
            ]),
            None => ns.program("qemu-system-x86_64"),
        };
        program = program.args(spec.qemu_args(&files));
        tracing::info!(vm = %spec.name, command = %program.command_line(), "starting QEMU");
        let service = program
            .start(&files.qemu_log)
            .map_err(|e| LabError::process(format!("starting VM {}", spec.name), e))?;
        Ok(Vm {
            spec,
            files,
            service,
            started: Instant::now(),
        })
    }

    pub fn spec(&self) -> &VmSpec {
        &self.spec
    }

    pub fn files(&self) -> &VmFiles {
        &self.files
    }

    /// When QEMU was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The serial console so far (lossy UTF-8).
    pub fn serial_text(&self) -> String {
        std::fs::read(&self.files.serial)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// QEMU's own stderr so far (bounded).
    pub fn qemu_log_tail(&self) -> String {
        self.service.log_tail(4000)
    }

    /// Whether QEMU still runs.
    pub fn is_running(&mut self) -> bool {
        self.service.is_running()
    }

    /// A QMP session; waits (up to `timeout`) for QEMU to create the socket.
    pub async fn qmp(&mut self, timeout: Duration) -> Result<QmpClient, LabError> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.files.qmp.exists() {
                match QmpClient::connect(&self.files.qmp, timeout).await {
                    Ok(c) => return Ok(c),
                    Err(e) if Instant::now() >= deadline => return Err(e),
                    Err(_) => {}
                }
            }
            if let Ok(Some(st)) = self.service.try_wait() {
                return Err(LabError::Qmp {
                    socket: self.files.qmp.display().to_string(),
                    message: format!("QEMU exited ({st}): {}", self.qemu_log_tail()),
                });
            }
            if Instant::now() >= deadline {
                return Err(LabError::Qmp {
                    socket: self.files.qmp.display().to_string(),
                    message: format!("no socket within {timeout:?}"),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits up to `timeout` for QEMU to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitState> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.service.try_wait() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// How QEMU ended, if it did.
    pub fn exit_state(&mut self) -> Option<ExitState> {
        self.service.try_wait().ok().flatten()
    }

    /// [`Vm::kill`] for synchronous callers.
    pub fn kill_blocking(&mut self, grace: Duration) -> Result<ExitState, LabError> {
        self.service
            .stop_blocking(grace)
            .map_err(|e| LabError::process(format!("stopping VM {}", self.spec.name), e))
    }

    /// Ends QEMU: SIGTERM to its group, SIGKILL after `grace`.
    pub async fn kill(&mut self, grace: Duration) -> Result<ExitState, LabError> {
        self.service
            .stop(grace)
            .await
            .map_err(|e| LabError::process(format!("stopping VM {}", self.spec.name), e))
    }
}

fn create_disk(path: &Path, d: &DiskSpec) -> Result<(), LabError> {
    let _ = std::fs::remove_file(path);
    match d.format {
        DiskFormat::Raw => {
            let f = std::fs::File::create(path).map_err(|e| LabError::io(path, e))?;
            f.set_len(d.size_bytes).map_err(|e| LabError::io(path, e))
        }
        DiskFormat::Qcow2 => Program::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(path)
            .arg(d.size_bytes.to_string())
            .timeout(Duration::from_secs(30))
            .run_blocking()
            .map(|_| ())
            .map_err(|e| LabError::process(format!("creating disk {}", path.display()), e)),
    }
}

/// A path inside a QEMU option value: commas are doubled (QEMU's escape).
fn qemu_path(p: &Path) -> String {
    p.display().to_string().replace(',', ",,")
}

fn word(s: &str, max: usize, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn spec() -> VmSpec {
        let mut s = VmSpec::new(
            "vm1",
            1024,
            vec![
                NicSpec {
                    mac: "52:54:00:aa:00:01".parse().unwrap(),
                    tap: "lab0a".parse().unwrap(),
                },
                NicSpec {
                    mac: "52:54:00:aa:00:02".parse().unwrap(),
                    tap: "lab0b".parse().unwrap(),
                },
            ],
            vec![DiskSpec {
                size_bytes: 20 << 30,
                format: DiskFormat::Raw,
                serial: "LABDISK0".into(),
            }],
        );
        s.smbios_uuid = "0f9d4c8e-1b2a-4c3d-9e8f-00aa00bb00cc".into();
        s
    }

    #[test]
    fn arguments_carry_the_chosen_hardware() {
        let s = spec();
        s.validate().unwrap();
        let files = VmFiles::in_dir(Path::new("/tmp/a,b"), &s);
        let a = s.qemu_args(&files).join(" ");
        assert!(a.contains("-accel tcg"), "{a}");
        assert!(a.contains("-smp 4,sockets=2,cores=2,threads=1"), "{a}");
        assert!(
            a.contains("serial=LAB-vm1,uuid=0f9d4c8e-1b2a-4c3d-9e8f-00aa00bb00cc"),
            "{a}"
        );
        assert!(a.contains("-serial file:/tmp/a,,b/vm1.serial"), "{a}");
        assert!(
            a.contains("-qmp unix:/tmp/a,,b/vm1.qmp,server=on,wait=off"),
            "{a}"
        );
        assert!(
            a.contains("ifname=lab0a,script=no,downscript=no,vnet_hdr=off"),
            "{a}"
        );
        assert!(a.contains(
            "mac=52:54:00:aa:00:01,speed=1000,duplex=full,csum=off,guest_csum=off,gso=off,bootindex=1"
        ), "{a}");
        assert!(a.contains("mac=52:54:00:aa:00:02,speed=1000,duplex=full,csum=off,guest_csum=off,gso=off,romfile="), "{a}");
        assert!(a.contains("virtio-blk-pci,drive=d0,serial=LABDISK0"), "{a}");
        assert!(a.ends_with("-boot order=n,reboot-timeout=5000"), "{a}");
        assert!(a.contains("-nographic -monitor none"), "{a}");
    }

    #[test]
    fn bad_input_is_refused_naming_the_field() {
        let mut s = spec();
        s.smbios_uuid = "not-a-uuid".into();
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("smbios uuid")
        );
        let mut s = spec();
        s.smbios_serial = "a,b".into();
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("smbios serial")
        );
        let mut s = spec();
        s.nics[1].mac = s.nics[0].mac;
        assert!(s.validate().unwrap_err().to_string().contains("used twice"));
        let mut s = spec();
        s.disks[0].size_bytes = 1000;
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("disk size_bytes")
        );
        let mut s = spec();
        s.name = "../x".into();
        assert!(s.validate().unwrap_err().to_string().contains("vm name"));
        let mut s = spec();
        s.sockets = 0;
        assert!(s.validate().unwrap_err().to_string().contains("sockets"));
        assert!("xen".parse::<Accel>().is_err());
    }
}
