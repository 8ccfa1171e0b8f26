//! Role rules, pure logic: how many hosts each role needs in an OKD 4.19
//! cluster ([`RolePlan`]), and whether a host's hardware is fit for a role
//! ([`fitness`]). The TUI and the CLI show both; nothing here does I/O.

use std::collections::BTreeMap;
use std::fmt;

use super::hardware::{Disk, DiskKind, HostHardware, Nic};
use super::values::{HostId, Hostname, Role, ValueError};

/// One GiB, in bytes.
pub const GIB: u64 = 1024 * 1024 * 1024;

/// How many hosts a role needs: `Some(n)` exactly `n`, `None` any number.
pub fn wanted(role: Role) -> Option<usize> {
    match role {
        Role::Bootstrap => Some(1),
        Role::ControlPlane => Some(3),
        Role::Worker => None,
    }
}

/// A violated count rule of the role plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleProblem {
    TooMany {
        role: Role,
        have: usize,
        want: usize,
    },
    Missing {
        role: Role,
        have: usize,
        want: usize,
    },
}

impl fmt::Display for RoleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoleProblem::TooMany { role, have, want } => {
                write!(f, "too many {role}: {have} assigned, {want} wanted")
            }
            RoleProblem::Missing { role, have, want } => {
                write!(
                    f,
                    "missing {} {role}: {have} of {want} assigned",
                    want - have
                )
            }
        }
    }
}

/// The roles of a set of hosts, checked against the OKD topology:
/// exactly 1 bootstrap, exactly 3 control-plane, any number of workers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RolePlan {
    roles: BTreeMap<HostId, Option<Role>>,
}

impl RolePlan {
    pub fn new<I>(assignments: I) -> Self
    where
        I: IntoIterator<Item = (HostId, Option<Role>)>,
    {
        Self {
            roles: assignments.into_iter().collect(),
        }
    }

    /// The plan with `id` given `role` (added if unknown).
    pub fn with(&self, id: &HostId, role: Option<Role>) -> Self {
        let mut next = self.clone();
        next.roles.insert(id.clone(), role);
        next
    }

    /// Hosts holding `role`.
    pub fn count(&self, role: Role) -> usize {
        self.roles.values().filter(|r| **r == Some(role)).count()
    }

    /// Hosts without a role.
    pub fn unassigned(&self) -> usize {
        self.roles.values().filter(|r| r.is_none()).count()
    }

    /// Every violated rule, in role order (bootstrap, control-plane, worker).
    pub fn problems(&self) -> Vec<RoleProblem> {
        Role::ALL
            .into_iter()
            .filter_map(|role| {
                let want = wanted(role)?;
                let have = self.count(role);
                match have.cmp(&want) {
                    std::cmp::Ordering::Greater => Some(RoleProblem::TooMany { role, have, want }),
                    std::cmp::Ordering::Less => Some(RoleProblem::Missing { role, have, want }),
                    std::cmp::Ordering::Equal => None,
                }
            })
            .collect()
    }

    /// Whether `id` may take `role`: the count of `role` after the change
    /// must not exceed what the cluster wants (moving a host between roles
    /// or re-assigning its own role counts it once).
    pub fn check_assign(&self, id: &HostId, role: Role) -> Result<(), RoleProblem> {
        let next = self.with(id, Some(role));
        match wanted(role) {
            Some(want) if next.count(role) > want => Err(RoleProblem::TooMany {
                role,
                have: next.count(role),
                want,
            }),
            _ => Ok(()),
        }
    }

    /// Only the problems that exceed a limit (what `--check` refuses).
    pub fn excess(&self) -> Vec<RoleProblem> {
        self.problems()
            .into_iter()
            .filter(|p| matches!(p, RoleProblem::TooMany { .. }))
            .collect()
    }
}

/// `bootstrap 0/1, control-plane 2/3, worker 4, unassigned 1`: the counts
/// against what a cluster needs (the CLI and the TUI show this line).
impl fmt::Display for RolePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for role in Role::ALL {
            match wanted(role) {
                Some(want) => write!(f, "{role} {}/{want}, ", self.count(role))?,
                None => write!(f, "{role} {}, ", self.count(role))?,
            }
        }
        write!(f, "unassigned {}", self.unassigned())
    }
}

/// Why `hardware` cannot host `role`, as messages; empty without a role.
pub fn fitness_messages(hardware: &HostHardware, role: Option<Role>) -> Vec<String> {
    role.map(|r| {
        fitness(hardware, r)
            .iter()
            .map(ToString::to_string)
            .collect()
    })
    .unwrap_or_default()
}

/// The hardware minimums of a role (OKD 4.19 documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirements {
    pub cpu_threads: u32,
    pub memory_bytes: u64,
    pub disk_bytes: u64,
}

impl Requirements {
    pub fn for_role(role: Role) -> Self {
        match role {
            Role::Bootstrap | Role::ControlPlane => Self {
                cpu_threads: 4,
                memory_bytes: 16 * GIB,
                disk_bytes: 100 * GIB,
            },
            Role::Worker => Self {
                cpu_threads: 2,
                memory_bytes: 8 * GIB,
                disk_bytes: 100 * GIB,
            },
        }
    }
}

/// Why a host is not fit for a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FitnessProblem {
    /// `have` is `None` when the agent could not read it.
    CpuThreads {
        role: Role,
        have: Option<u32>,
        want: u32,
    },
    Memory {
        role: Role,
        have: Option<u64>,
        want: u64,
    },
    /// No non-removable, non-USB disk of at least `want` bytes;
    /// `largest` is the biggest eligible disk, if any.
    NoInstallDisk {
        role: Role,
        largest: Option<u64>,
        want: u64,
    },
    /// No physical NIC with a valid MAC and link (carrier or operstate up).
    NoUsableNic { role: Role },
}

/// `8.0 GiB`.
pub fn format_gib(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let g = bytes as f64 / GIB as f64;
    format!("{g:.1} GiB")
}

impl fmt::Display for FitnessProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FitnessProblem::CpuThreads { role, have, want } => match have {
                Some(h) => write!(f, "CPU threads {h} < {want} required for {role}"),
                None => write!(f, "CPU threads unknown ({want} required for {role})"),
            },
            FitnessProblem::Memory { role, have, want } => match have {
                Some(h) => write!(
                    f,
                    "memory {} < {} GiB required for {role}",
                    format_gib(*h),
                    want / GIB
                ),
                None => write!(f, "memory unknown ({} GiB required for {role})", want / GIB),
            },
            FitnessProblem::NoInstallDisk {
                role,
                largest,
                want,
            } => {
                write!(
                    f,
                    "no install disk of at least {} GiB (non-removable, non-USB) for {role}",
                    want / GIB
                )?;
                match largest {
                    Some(l) => write!(f, "; largest eligible disk {}", format_gib(*l)),
                    None => write!(f, "; no eligible disk"),
                }
            }
            FitnessProblem::NoUsableNic { role } => write!(
                f,
                "no physical NIC with a MAC and link up (required for {role})"
            ),
        }
    }
}

/// Whether a disk may be an install target, whatever its size.
pub fn is_install_candidate(disk: &Disk) -> bool {
    let usb = disk.kind == DiskKind::Usb
        || disk
            .transport
            .as_ref()
            .is_some_and(|t| t.as_str().eq_ignore_ascii_case("usb"));
    !usb && !matches!(disk.kind, DiskKind::Optical | DiskKind::Mmc) && disk.removable != Some(true)
}

/// Whether a NIC can carry the host's traffic: physical, a valid MAC, link.
pub fn is_usable_nic(nic: &Nic) -> bool {
    !nic.is_virtual && nic.identity_mac().is_some() && nic.link_up()
}

/// Installed memory: the SMBIOS DIMM total when known (what the OKD
/// minimums refer to), else what the kernel reports (a little less).
pub fn installed_memory(hw: &HostHardware) -> Option<u64> {
    hw.installed_memory()
}

/// Every reason `inv` is not fit for `role`; empty when it is.
pub fn fitness(inv: &HostHardware, role: Role) -> Vec<FitnessProblem> {
    let req = Requirements::for_role(role);
    let mut out = Vec::new();
    if inv.cpu.threads.is_none_or(|t| t < req.cpu_threads) {
        out.push(FitnessProblem::CpuThreads {
            role,
            have: inv.cpu.threads,
            want: req.cpu_threads,
        });
    }
    let mem = installed_memory(inv);
    if mem.is_none_or(|m| m < req.memory_bytes) {
        out.push(FitnessProblem::Memory {
            role,
            have: mem,
            want: req.memory_bytes,
        });
    }
    let largest = inv
        .disks
        .iter()
        .filter(|d| is_install_candidate(d))
        .filter_map(|d| d.size_bytes)
        .max();
    if largest.is_none_or(|l| l < req.disk_bytes) {
        out.push(FitnessProblem::NoInstallDisk {
            role,
            largest,
            want: req.disk_bytes,
        });
    }
    if !inv.physical_nics().any(is_usable_nic) {
        out.push(FitnessProblem::NoUsableNic { role });
    }
    out
}

/// A default host name for the next host of `role`: `bootstrap`, then
/// `master-N` / `worker-N` (`bootstrap-N` if `bootstrap` is taken) with the
/// lowest `N` whose short name is not in `taken`.
pub fn default_hostname<'a, I>(role: Role, taken: I) -> Result<Hostname, ValueError>
where
    I: IntoIterator<Item = &'a Hostname>,
{
    let taken: Vec<&str> = taken.into_iter().map(Hostname::short).collect();
    let prefix = match role {
        Role::Bootstrap if !taken.contains(&"bootstrap") => return "bootstrap".parse(),
        Role::Bootstrap => "bootstrap",
        Role::ControlPlane => "master",
        Role::Worker => "worker",
    };
    let name = (0usize..)
        .map(|n| format!("{prefix}-{n}"))
        .find(|name| !taken.contains(&name.as_str()))
        .unwrap_or_else(|| prefix.to_string());
    name.parse()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::values::MacAddress;
    use harmony_inventory_agent::model::{
        self as wire, Cpu, Disk, DiskKind, Inventory, Memory, Nic, System,
    };

    /// The fixtures are agent documents, typed by the one conversion.
    fn fitness(inv: &Inventory, role: Role) -> Vec<FitnessProblem> {
        super::fitness(&HostHardware::from_wire(inv).unwrap(), role)
    }

    fn id(n: u8) -> HostId {
        HostId::from_macs(&[MacAddress::new([0x52, 0, 0, 0, 0, n])]).unwrap()
    }

    fn disk(size: u64) -> Disk {
        Disk {
            name: "sda".into(),
            path: "/dev/sda".into(),
            by_path: None,
            by_id: Some("/dev/disk/by-id/wwn-0x5000".into()),
            model: None,
            vendor: None,
            serial: None,
            wwn: None,
            size_bytes: Some(size),
            logical_sector_bytes: None,
            physical_sector_bytes: None,
            rotational: Some(false),
            removable: Some(false),
            kind: DiskKind::Ssd,
            transport: Some("sata".into()),
            hctl: None,
        }
    }

    fn nic() -> wire::Nic {
        let mut n = Nic::new("eno1");
        n.mac = Some("52:54:00:00:00:01".into());
        n.carrier = Some(true);
        n.operstate = Some("up".into());
        n
    }

    /// Exactly the control-plane minimums.
    fn inv() -> Inventory {
        Inventory {
            schema_version: 1,
            agent_version: "0.1.0".into(),
            collected_at: "2026-11-25T10:00:00Z".into(),
            hostname: None,
            warnings: vec![],
            system: System::default(),
            cpu: Cpu {
                threads: Some(4),
                ..Cpu::default()
            },
            memory: Memory {
                total_bytes: Some(16 * GIB - 300 * 1024 * 1024),
                smbios_total_bytes: Some(16 * GIB),
                dimms: vec![],
                ..Memory::default()
            },
            storage: vec![disk(100 * GIB)],
            network: vec![nic()],
        }
    }

    #[test]
    fn plan_counts_and_problems() {
        let empty = RolePlan::default();
        assert_eq!(
            empty.problems(),
            vec![
                RoleProblem::Missing {
                    role: Role::Bootstrap,
                    have: 0,
                    want: 1
                },
                RoleProblem::Missing {
                    role: Role::ControlPlane,
                    have: 0,
                    want: 3
                },
            ]
        );
        let ok = RolePlan::new([
            (id(1), Some(Role::Bootstrap)),
            (id(2), Some(Role::ControlPlane)),
            (id(3), Some(Role::ControlPlane)),
            (id(4), Some(Role::ControlPlane)),
            (id(5), None),
        ]);
        assert!(ok.problems().is_empty(), "{:?}", ok.problems());
        assert_eq!(ok.count(Role::Worker), 0, "zero workers is fine");
        assert_eq!(ok.unassigned(), 1);
        let many = ok
            .with(&id(5), Some(Role::ControlPlane))
            .with(&id(6), Some(Role::Bootstrap));
        assert_eq!(
            many.problems(),
            vec![
                RoleProblem::TooMany {
                    role: Role::Bootstrap,
                    have: 2,
                    want: 1
                },
                RoleProblem::TooMany {
                    role: Role::ControlPlane,
                    have: 4,
                    want: 3
                },
            ]
        );
        assert_eq!(many.excess().len(), 2);
        let workers = ok.with(&id(5), Some(Role::Worker));
        assert!(workers.problems().is_empty());
        // Reassigning a host moves it, it does not count twice.
        let moved = ok.with(&id(1), Some(Role::ControlPlane));
        assert_eq!(moved.count(Role::ControlPlane), 4);
        assert_eq!(moved.count(Role::Bootstrap), 0);
        assert!(ok.with(&id(1), None).excess().is_empty());
        assert_eq!(
            RoleProblem::Missing {
                role: Role::ControlPlane,
                have: 1,
                want: 3
            }
            .to_string(),
            "missing 2 control-plane: 1 of 3 assigned"
        );
    }

    #[test]
    fn minimums_are_fit_at_the_boundary() {
        for role in Role::ALL {
            assert!(fitness(&inv(), role).is_empty(), "{role}");
        }
    }

    #[test]
    fn cpu_threads_boundary() {
        let mut i = inv();
        i.cpu.threads = Some(3);
        let p = fitness(&i, Role::ControlPlane);
        assert_eq!(
            p,
            vec![FitnessProblem::CpuThreads {
                role: Role::ControlPlane,
                have: Some(3),
                want: 4
            }]
        );
        assert_eq!(
            p[0].to_string(),
            "CPU threads 3 < 4 required for control-plane"
        );
        assert_eq!(fitness(&i, Role::Bootstrap).len(), 1);
        assert!(fitness(&i, Role::Worker).is_empty());
        i.cpu.threads = Some(1);
        assert_eq!(fitness(&i, Role::Worker).len(), 1);
        i.cpu.threads = None;
        assert!(fitness(&i, Role::Worker)[0].to_string().contains("unknown"));
    }

    #[test]
    fn memory_boundary() {
        let mut i = inv();
        i.memory.smbios_total_bytes = Some(16 * GIB - 1);
        assert_eq!(fitness(&i, Role::ControlPlane).len(), 1);
        i.memory.smbios_total_bytes = Some(8 * GIB);
        let p = fitness(&i, Role::ControlPlane);
        assert_eq!(
            p[0].to_string(),
            "memory 8.0 GiB < 16 GiB required for control-plane"
        );
        assert!(fitness(&i, Role::Worker).is_empty(), "8 GiB is a worker");
        i.memory.smbios_total_bytes = Some(8 * GIB - 1);
        assert_eq!(fitness(&i, Role::Worker).len(), 1);
        // Without SMBIOS, the kernel's figure counts.
        i.memory.smbios_total_bytes = None;
        i.memory.total_bytes = Some(16 * GIB);
        assert!(fitness(&i, Role::ControlPlane).is_empty());
        i.memory.total_bytes = None;
        assert!(matches!(
            fitness(&i, Role::Worker)[0],
            FitnessProblem::Memory { have: None, .. }
        ));
    }

    #[test]
    fn install_disk_rules() {
        let mut i = inv();
        i.storage = vec![disk(100 * GIB - 1)];
        let p = fitness(&i, Role::Worker);
        assert_eq!(
            p,
            vec![FitnessProblem::NoInstallDisk {
                role: Role::Worker,
                largest: Some(100 * GIB - 1),
                want: 100 * GIB
            }]
        );
        assert!(p[0].to_string().contains("100 GiB"), "{}", p[0]);
        // A big USB stick, a removable disk or a DVD is not an install target.
        let mut usb = disk(500 * GIB);
        usb.kind = DiskKind::Usb;
        let mut usb_transport = disk(500 * GIB);
        usb_transport.transport = Some("usb".into());
        let mut removable = disk(500 * GIB);
        removable.removable = Some(true);
        let mut optical = disk(500 * GIB);
        optical.kind = DiskKind::Optical;
        for bad in [usb, usb_transport, removable, optical] {
            i.storage = vec![bad];
            assert!(
                matches!(
                    fitness(&i, Role::Worker)[..],
                    [FitnessProblem::NoInstallDisk { largest: None, .. }]
                ),
                "{:?}",
                i.storage
            );
        }
        i.storage = vec![];
        assert!(
            fitness(&i, Role::Worker)[0]
                .to_string()
                .contains("no eligible disk")
        );
        let mut unknown_size = disk(0);
        unknown_size.size_bytes = None;
        i.storage = vec![unknown_size, disk(2000 * GIB)];
        assert!(fitness(&i, Role::ControlPlane).is_empty());
    }

    #[test]
    fn nic_rules() {
        let mut i = inv();
        let mut virt = nic();
        virt.is_virtual = true;
        let mut no_mac = nic();
        no_mac.mac = None;
        let mut bad_mac = nic();
        bad_mac.mac = Some("00:00:00:00:00:00".into());
        let mut down = nic();
        down.carrier = Some(false);
        down.operstate = Some("down".into());
        for bad in [virt, no_mac, bad_mac, down] {
            i.network = vec![bad];
            assert_eq!(
                fitness(&i, Role::Worker),
                vec![FitnessProblem::NoUsableNic { role: Role::Worker }]
            );
        }
        let mut carrier_only = nic();
        carrier_only.operstate = None;
        let mut up_only = nic();
        up_only.carrier = None;
        let mut permanent_only = nic();
        permanent_only.mac = None;
        permanent_only.permanent_mac = Some("52:54:00:00:00:09".into());
        for good in [carrier_only, up_only, permanent_only] {
            i.network = vec![good];
            assert!(fitness(&i, Role::Worker).is_empty());
        }
        i.network = vec![];
        assert!(fitness(&i, Role::Bootstrap)[0].to_string().contains("NIC"));
    }

    #[test]
    fn several_problems_at_once() {
        let mut i = inv();
        i.cpu.threads = Some(2);
        i.memory.smbios_total_bytes = Some(8 * GIB);
        i.storage.clear();
        i.network.clear();
        assert_eq!(fitness(&i, Role::ControlPlane).len(), 4);
        assert_eq!(fitness(&i, Role::Worker).len(), 2);
    }

    #[test]
    fn default_hostnames() {
        let h = |s: &str| s.parse::<Hostname>().unwrap();
        assert_eq!(
            default_hostname(Role::Bootstrap, []).unwrap().as_str(),
            "bootstrap"
        );
        let taken = [h("bootstrap"), h("master-0.ocp.example.com"), h("worker-1")];
        assert_eq!(
            default_hostname(Role::Bootstrap, &taken).unwrap().as_str(),
            "bootstrap-0"
        );
        assert_eq!(
            default_hostname(Role::ControlPlane, &taken)
                .unwrap()
                .as_str(),
            "master-1"
        );
        assert_eq!(
            default_hostname(Role::Worker, &taken).unwrap().as_str(),
            "worker-0"
        );
    }
}
