//! System identity: vendor, product, serial, UUID (SMBIOS type 1, falling
//! back to `/sys/class/dmi/id`), the baseboard and chassis serials (SMBIOS
//! types 2 and 3, same fallback), boot mode and hypervisor (`/sys/hypervisor`,
//! the CPUID hypervisor leaf on the live system, then the DMI names).

use super::{SysRoot, Warnings, smbios::SmbiosData, smbios::is_bogus};
use crate::model::{BootMode, Cpu, System};

pub fn collect(
    root: &SysRoot,
    smbios: Option<&SmbiosData>,
    cpu: &Cpu,
    warnings: &mut Warnings,
) -> System {
    let dmi = |file: &str| {
        root.attr(format!("/sys/class/dmi/id/{file}"))
            .filter(|v| !is_bogus(v))
    };
    let (vendor, product, serial, uuid, family, baseboard_serial, chassis_serial) = match smbios {
        Some(s) => (
            s.vendor.clone(),
            s.product.clone(),
            s.serial.clone(),
            s.uuid.clone(),
            s.family.clone(),
            s.baseboard_serial.clone(),
            s.chassis_serial.clone(),
        ),
        None => (
            dmi("sys_vendor"),
            dmi("product_name"),
            dmi("product_serial"),
            dmi("product_uuid").and_then(|u| normalize_uuid(&u)),
            dmi("product_family"),
            dmi("board_serial"),
            dmi("chassis_serial"),
        ),
    };
    let boot_mode = if root.exists("/sys/firmware/efi") {
        Some(BootMode::Uefi)
    } else if root.exists("/sys/firmware") {
        Some(BootMode::Bios)
    } else {
        warnings.push("/sys/firmware", "missing: boot mode unknown");
        None
    };
    let hypervisor = hypervisor(root, cpu, vendor.as_deref(), product.as_deref());
    System {
        vendor,
        product,
        serial,
        uuid,
        family,
        boot_mode,
        bmc_address: None,
        hypervisor,
        baseboard_serial,
        chassis_serial,
    }
}

/// Names the hypervisor when the CPU says it runs under one.
fn hypervisor(
    root: &SysRoot,
    cpu: &Cpu,
    vendor: Option<&str>,
    product: Option<&str>,
) -> Option<String> {
    if let Some(t) = root.attr("/sys/hypervisor/type") {
        return Some(t.to_lowercase());
    }
    if !cpu.flags.iter().any(|f| f == "hypervisor") {
        return None;
    }
    // The CPU of this very machine: only meaningful on the live system.
    if root.is_live()
        && let Some(name) = cpuid::hypervisor()
    {
        return Some(name);
    }
    let text = format!("{} {}", vendor.unwrap_or(""), product.unwrap_or("")).to_lowercase();
    let name = [
        ("qemu", "kvm"),
        ("kvm", "kvm"),
        ("vmware", "vmware"),
        ("virtualbox", "virtualbox"),
        ("innotek", "virtualbox"),
        ("microsoft", "hyperv"),
        ("xen", "xen"),
        ("amazon ec2", "kvm"),
        ("google", "kvm"),
        ("openstack", "kvm"),
        ("nutanix", "kvm"),
        ("ovirt", "kvm"),
    ]
    .iter()
    .find(|(needle, _)| text.contains(needle))
    .map_or("unknown", |(_, name)| name);
    Some(name.to_string())
}

/// The hypervisor as the CPU reports it (leaf `0x4000_0000`), what `lscpu`
/// shows as "Hypervisor vendor".
mod cpuid {
    /// The name from the live CPU's hypervisor leaf; `None` when the CPU
    /// has none or names one not known here.
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    pub fn hypervisor() -> Option<String> {
        name(&raw_cpuid::CpuId::new())
    }

    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
    pub fn hypervisor() -> Option<String> {
        None
    }

    /// The hypervisor named by `cpuid`'s leaf `0x4000_0000`.
    pub fn name<R: raw_cpuid::CpuIdReader>(cpuid: &raw_cpuid::CpuId<R>) -> Option<String> {
        use raw_cpuid::Hypervisor;
        let name = match cpuid.get_hypervisor_info()?.identify() {
            Hypervisor::KVM => "kvm",
            Hypervisor::VMware => "vmware",
            Hypervisor::HyperV => "hyperv",
            Hypervisor::Xen => "xen",
            // "TCGTCGTCGTCG": QEMU without an accelerator.
            Hypervisor::QEMU => "qemu",
            Hypervisor::Bhyve => "bhyve",
            Hypervisor::QNX => "qnx",
            Hypervisor::ACRN => "acrn",
            Hypervisor::Unknown(..) => return None,
        };
        Some(name.to_string())
    }
}

/// Lower-case, hyphenated; all-zero and all-F UUIDs are `None`.
pub fn normalize_uuid(raw: &str) -> Option<String> {
    let hex: String = raw
        .chars()
        .filter(|c| *c != '-')
        .collect::<String>()
        .to_lowercase();
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    if hex.chars().all(|c| c == '0') || hex.chars().all(|c| c == 'f') {
        return None;
    }
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids() {
        assert_eq!(
            normalize_uuid("4C4C4544-0042-3010-8052-B4C04F4A4E32").as_deref(),
            Some("4c4c4544-0042-3010-8052-b4c04f4a4e32")
        );
        assert_eq!(normalize_uuid("00000000-0000-0000-0000-000000000000"), None);
        assert_eq!(normalize_uuid("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"), None);
        assert_eq!(normalize_uuid("not-a-uuid"), None);
    }

    /// A CPU answering leaf 1 (hypervisor bit, ECX 31) and leaf 0x4000_0000
    /// with `signature` in EBX, ECX, EDX.
    fn cpu_with(signature: &[u8; 12]) -> raw_cpuid::CpuId<impl raw_cpuid::CpuIdReader> {
        let word = |i: usize| {
            u32::from_le_bytes([
                signature[i],
                signature[i + 1],
                signature[i + 2],
                signature[i + 3],
            ])
        };
        let (b, c, d) = (word(0), word(4), word(8));
        raw_cpuid::CpuId::with_cpuid_fn(move |leaf, _sub| match leaf {
            0 => raw_cpuid::CpuIdResult {
                eax: 0x16,
                ebx: 0,
                ecx: 0,
                edx: 0,
            },
            1 => raw_cpuid::CpuIdResult {
                eax: 0,
                ebx: 0,
                ecx: 1 << 31,
                edx: 0,
            },
            0x4000_0000 => raw_cpuid::CpuIdResult {
                eax: 0x4000_0001,
                ebx: b,
                ecx: c,
                edx: d,
            },
            _ => raw_cpuid::CpuIdResult {
                eax: 0,
                ebx: 0,
                ecx: 0,
                edx: 0,
            },
        })
    }

    #[test]
    fn cpuid_hypervisor_leaf_names() {
        assert_eq!(
            cpuid::name(&cpu_with(b"KVMKVMKVM\0\0\0")).as_deref(),
            Some("kvm")
        );
        assert_eq!(
            cpuid::name(&cpu_with(b"VMwareVMware")).as_deref(),
            Some("vmware")
        );
        assert_eq!(
            cpuid::name(&cpu_with(b"Microsoft Hv")).as_deref(),
            Some("hyperv")
        );
        assert_eq!(
            cpuid::name(&cpu_with(b"TCGTCGTCGTCG")).as_deref(),
            Some("qemu")
        );
        assert_eq!(cpuid::name(&cpu_with(b"SomethingNew")), None);
    }
}
