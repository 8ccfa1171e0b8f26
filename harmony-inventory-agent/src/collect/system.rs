//! System identity: vendor, product, serial, UUID (SMBIOS type 1, falling
//! back to `/sys/class/dmi/id`), boot mode and hypervisor.

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
    let (vendor, product, serial, uuid, family) = match smbios {
        Some(s) => (
            s.vendor.clone(),
            s.product.clone(),
            s.serial.clone(),
            s.uuid.clone(),
            s.family.clone(),
        ),
        None => (
            dmi("sys_vendor"),
            dmi("product_name"),
            dmi("product_serial"),
            dmi("product_uuid").and_then(|u| normalize_uuid(&u)),
            dmi("product_family"),
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
}
