//! Boot artefacts: the iPXE scripts, the inventory kickstart and the
//! OpenShift `install-config.yaml`, rendered from `templates/` at the
//! workspace root (the only place boot syntax lives).
//!
//! # Trust
//!
//! Every context field is a typed, validated value ([`HttpUrl`],
//! [`KernelArg`], [`DevicePath`], [`Hostname`], [`SshPublicKey`], ...), an
//! integer, or a list/option of those: a raw string from an agent or a site
//! file cannot reach a template. iPXE and kickstart have no escaping of
//! their own, so their templates render values verbatim and rely on those
//! types; YAML values are written as double-quoted scalars through
//! [`YamlDoubleQuoted`].
//!
//! # Boot flow and per-MAC files
//!
//! Every host first loads `default.ipxe` ([`render_default_ipxe`]). It tries
//! `<http_base>/ipxe/<mac>.ipxe`, where `<mac>` is the MAC of the NIC iPXE
//! booted from, lower-case, hyphen-separated: iPXE's `${netX/mac:hexhyp}`,
//! Harmony's [`MacAddress::hyphenated`], e.g. `ipxe/52-54-00-aa-bb-01.ipxe`
//! ([`per_mac_ipxe_path`]). Harmony writes that file (from
//! [`render_scos_boot`]) once the host has a role. When there is none (an
//! unknown host) or it cannot be fetched, the host boots the CentOS Stream 9
//! inventory environment: RAM only, it runs the inventory agent and never
//! touches a disk (see `templates/inventory.ks`). A failed fetch therefore
//! falls back to something harmless.
//!
//! # Rendered files
//!
//! askama strips a template's final newline; every `render_*` function
//! returns text ending in exactly one `\n`.

mod disk;
pub mod networking;
mod values;

use std::fmt;
use std::net::IpAddr;

use askama::Template;
use ipnetwork::IpNetwork;

pub use crate::domain::Sha256Digest;
pub use disk::{MIN_INSTALL_DISK_BYTES, install_device, is_eligible, stable_path};
pub use networking::{ClusterNetworks, check_networks};
pub use values::{ClusterName, PullSecret, PullSecretError, SshPublicKey};

use crate::domain::{
    DevicePath, Hostname, HttpUrl, KernelArg, MacAddress, RelativePath, ValueError,
};

/// What went wrong producing a boot artefact.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// No disk of the host is a fit install target.
    #[error(
        "no install disk among {disks} disk(s): need a non-removable, non-USB, non-optical disk of at least {min_gib} GiB"
    )]
    NoInstallDisk { disks: usize, min_gib: u64 },
    /// The install disk has no stable name: kernel names (`sda`) can
    /// change between boots, so none is planned.
    #[error(
        "install disk {disk} has no stable path: no /dev/disk/by-id link, no WWN and no /dev/disk/by-path link reported (a kernel name can name another disk at the next boot)"
    )]
    NoStablePath { disk: String },
    /// The agent reported a disk field that is not a safe value.
    #[error("install disk field {field} rejected: {source}")]
    InvalidDisk {
        field: &'static str,
        #[source]
        source: ValueError,
    },
    /// A value could not be built (e.g. a per-MAC path).
    #[error(transparent)]
    Value(#[from] ValueError),
    /// A context breaks a rule of its artefact.
    #[error("{artefact}: {reason}")]
    InvalidContext {
        artefact: &'static str,
        reason: String,
    },
    /// A field of an artefact has a value its consumer would refuse (or
    /// misuse); `field` is the artefact's own path to it, e.g.
    /// `networking.serviceNetwork[0]`.
    #[error("{artefact}: {field}: invalid value {value:?}: {reason}")]
    InvalidField {
        artefact: &'static str,
        field: &'static str,
        value: String,
        reason: String,
    },
    /// The template engine failed.
    #[error("rendering {artefact} failed: {source}")]
    Render {
        artefact: &'static str,
        #[source]
        source: askama::Error,
    },
}

/// `ipxe/aa-bb-cc-dd-ee-ff.ipxe`: where, under the HTTP root, the boot
/// script of the host with `mac` lives (what `default.ipxe` chains).
pub fn per_mac_ipxe_path(mac: &MacAddress) -> RelativePath {
    // A hyphenated MAC is 17 characters of [0-9a-f-]: always a valid path.
    RelativePath::from_trusted(format!("ipxe/{}.ipxe", mac.hyphenated()))
}

/// The CentOS Stream 9 installer used as the inventory environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CentosBoot {
    /// `images/pxeboot/vmlinuz`.
    pub kernel: HttpUrl,
    /// `images/pxeboot/initrd.img`.
    pub initrd: HttpUrl,
    /// The install tree (holds `images/install.img`): `inst.stage2=`.
    pub stage2: HttpUrl,
    /// The rendered `inventory.ks`: `inst.ks=`.
    pub kickstart: HttpUrl,
    /// Appended after the template's own arguments (later ones win).
    pub extra_args: Vec<KernelArg>,
}

/// Context of `templates/default.ipxe`, the script every host loads first.
#[derive(Debug, Clone, PartialEq, Eq, Template)]
#[template(path = "default.ipxe")]
pub struct DefaultIpxe {
    /// HTTP root that holds `ipxe/<mac>.ipxe`.
    pub http_base: HttpUrl,
    pub centos: CentosBoot,
}

impl DefaultIpxe {
    /// `http_base` without a trailing `/`.
    fn base(&self) -> &str {
        self.http_base.as_str().trim_end_matches('/')
    }
}

/// Context of `templates/inventory.ks`.
#[derive(Debug, Clone, PartialEq, Eq, Template)]
#[template(path = "inventory.ks")]
pub struct InventoryKs {
    /// The static inventory agent binary.
    pub agent_url: HttpUrl,
    /// Its SHA-256; the kickstart refuses to run anything else.
    pub agent_sha256: Sha256Digest,
    /// Operator keys for `root` in the RAM environment (at least one).
    pub ssh_authorized_keys: Vec<SshPublicKey>,
    pub agent_port: u16,
    /// Installation source (`url --url=`); unused by the inventory itself.
    pub repo: Option<HttpUrl>,
}

/// Context of `templates/local-boot.ipxe`, the per-MAC script of an
/// installed host: iPXE exits and the firmware boots the next device (the
/// local disk), whatever the firmware's boot order.
#[derive(Debug, Clone, PartialEq, Eq, Template)]
#[template(path = "local-boot.ipxe")]
pub struct LocalBoot {
    pub hostname: Hostname,
}

/// Context of `templates/scos-boot.ipxe`, the per-MAC script of a host with
/// a role: boots the SCOS live image and installs to `install_dev`.
#[derive(Debug, Clone, PartialEq, Eq, Template)]
#[template(path = "scos-boot.ipxe")]
pub struct ScosBoot {
    pub kernel: HttpUrl,
    pub initramfs: HttpUrl,
    pub rootfs: HttpUrl,
    /// From [`install_device`].
    pub install_dev: DevicePath,
    /// The role's Ignition config (`bootstrap.ign`, `master.ign`, ...).
    pub ignition_url: HttpUrl,
    /// Bond/`ip=` arguments, rendered in order.
    pub network_args: Vec<KernelArg>,
    pub extra_args: Vec<KernelArg>,
}

/// Context of `templates/install-config.yaml` (`platform: none`, a
/// user-provisioned install): three control-plane replicas and
/// `compute[0].replicas: 0`, as the bare-metal UPI documentation has it.
/// Workers are booted by Harmony and join through CSR approval; no machine
/// API creates them. [`render_install_config`] checks the networks the way
/// openshift-install does (see `networking.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Template)]
#[template(path = "install-config.yaml")]
pub struct InstallConfig {
    pub base_domain: Hostname,
    pub cluster_name: ClusterName,
    /// `networking.machineNetwork[0].cidr`: the hosts' network.
    pub machine_network: IpNetwork,
    /// `networking.clusterNetwork[0].cidr`: pod addresses.
    pub cluster_network: IpNetwork,
    /// `networking.clusterNetwork[0].hostPrefix`: each node's pod subnet.
    pub host_prefix: u8,
    /// `networking.serviceNetwork[0]`.
    pub service_network: IpNetwork,
    /// The hosts' addresses on the machine network (bootstrap, control
    /// plane, workers) when known, else empty; not rendered, only checked:
    /// each must lie inside `machine_network`.
    pub node_addresses: Vec<IpAddr>,
    pub pull_secret: PullSecret,
    pub ssh_key: SshPublicKey,
}

/// askama escaper for `.yaml` templates: the output goes inside a YAML
/// double-quoted scalar (`"…"`). Escapes `\` and `"`, writes `\n`, `\t`,
/// `\r` and every other control character (C0, DEL, C1, and the Unicode
/// line/paragraph separators) as an escape, so a value can neither end the
/// scalar nor start a new line.
#[derive(Debug, Clone, Copy, Default)]
pub struct YamlDoubleQuoted;

impl askama::filters::Escaper for YamlDoubleQuoted {
    fn write_escaped_str<W: fmt::Write>(&self, mut dest: W, s: &str) -> fmt::Result {
        for c in s.chars() {
            match c {
                '\\' => dest.write_str("\\\\")?,
                '"' => dest.write_str("\\\"")?,
                '\n' => dest.write_str("\\n")?,
                '\t' => dest.write_str("\\t")?,
                '\r' => dest.write_str("\\r")?,
                c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' || c == '\u{feff}' => {
                    write!(dest, "\\u{:04x}", u32::from(c))?
                }
                c => dest.write_char(c)?,
            }
        }
        Ok(())
    }
}

fn finish(artefact: &'static str, r: askama::Result<String>) -> Result<String, BootError> {
    let mut s = r.map_err(|source| BootError::Render { artefact, source })?;
    while s.ends_with('\n') {
        s.pop();
    }
    s.push('\n');
    Ok(s)
}

/// `default.ipxe`: chain the per-MAC script, else boot the inventory.
pub fn render_default_ipxe(ctx: &DefaultIpxe) -> Result<String, BootError> {
    finish("default.ipxe", ctx.render())
}

/// `inventory.ks`: the RAM-only inventory environment.
pub fn render_inventory_ks(ctx: &InventoryKs) -> Result<String, BootError> {
    if ctx.ssh_authorized_keys.is_empty() {
        return Err(BootError::InvalidContext {
            artefact: "inventory.ks",
            reason: "at least one SSH key is needed to reach the inventory environment".into(),
        });
    }
    finish("inventory.ks", ctx.render())
}

/// `ipxe/<mac>.ipxe` of an installed host: boot the local disk.
pub fn render_local_boot(ctx: &LocalBoot) -> Result<String, BootError> {
    finish("local-boot.ipxe", ctx.render())
}

/// `ipxe/<mac>.ipxe` of a host with a role: the SCOS live installer.
pub fn render_scos_boot(ctx: &ScosBoot) -> Result<String, BootError> {
    finish("scos-boot.ipxe", ctx.render())
}

/// `install-config.yaml` for `openshift-install`, after checking its
/// networks (an error names the field, e.g. `networking.serviceNetwork[0]`,
/// and the value).
pub fn render_install_config(ctx: &InstallConfig) -> Result<String, BootError> {
    networking::validate(ctx)?;
    finish("install-config.yaml", ctx.render())
}
