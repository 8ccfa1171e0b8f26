//! Everything a server downloads while it boots, for the whole cluster:
//! `default.ipxe` and `inventory.ks` for unknown hosts, and for each host
//! with a role its per-MAC `scos-boot` iPXE script (install disk and bond
//! arguments planned from its inventory) and its Ignition config (role
//! config merged by URL, host name, persistent bond keyfiles).
//!
//! [`render_cluster`] is pure (typed values in, files out);
//! [`artefact_steps`] turns them into saga steps on the `HttpServer`
//! capability (a put per file, a removal per stale per-host file); the
//! [`BootArtefacts`] Score does both, on the step log, and is a Noop when
//! every file is already in place. File names come only from typed values:
//!
//! | file | name |
//! |---|---|
//! | iPXE for unknown hosts | `default.ipxe` |
//! | discovery kickstart | `inventory.ks` |
//! | per-MAC iPXE | `ipxe/aa-bb-cc-dd-ee-ff.ipxe` ([`per_mac_ipxe_path`]) |
//! | per-host Ignition | `ignition/<hostname>.ign` |

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::bond::BondError;
pub use super::boot_plan::HostNetwork;
use super::boot_plan::{BootPlanError, network_of, plan_boot};
use super::ignition::{CaBundle, HostIgnition, IgnitionError, host_ignition};
use crate::domain::{
    HostId, HostRecord, HttpServer, HttpUrl, Interpret, InterpretError, Inventory, KernelArg,
    RelativePath, Role, SagaInterpret, SagaScore, Score, Step, StepKey, Topology,
};
use crate::modules::assets::const_path;
use crate::modules::boot::{
    BootError, CentosBoot, DefaultIpxe, InventoryKs, ScosBoot, Sha256Digest, SshPublicKey,
    per_mac_ipxe_path, render_default_ipxe, render_inventory_ks, render_scos_boot,
};
use crate::modules::http_files::{PutFile, RemoveFile};

const NAME: &str = "BootArtefacts";

/// Site-wide boot settings: where the OS assets, the agent and the role
/// configs are served, and what every boot line carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SiteBoot {
    /// SCOS live PXE kernel, initramfs and rootfs under the HTTP root.
    pub scos_kernel: RelativePath,
    pub scos_initramfs: RelativePath,
    pub scos_rootfs: RelativePath,
    /// CentOS Stream 9 PXE kernel and initrd, and the installable tree
    /// (`.treeinfo`, `images/install.img`) for `inst.stage2=`.
    pub centos_kernel: RelativePath,
    pub centos_initrd: RelativePath,
    pub centos_tree: RelativePath,
    /// The static agent binary under the HTTP root, and its SHA-256.
    pub agent: RelativePath,
    pub agent_sha256: Sha256Digest,
    pub agent_port: u16,
    /// Keys that may log in to the discovery environment.
    pub ssh_keys: Vec<SshPublicKey>,
    /// A CentOS repository mirror for the discovery environment.
    pub repo: Option<HttpUrl>,
    /// The role configs (`bootstrap.ign`, `master.ign`, `worker.ign` from
    /// `openshift-install`, or the machine-config server's URLs).
    pub bootstrap_config: HttpUrl,
    pub master_config: HttpUrl,
    pub worker_config: HttpUrl,
    /// CA of the machine-config server, when role configs come from it.
    pub ca: Option<CaBundle>,
    /// Extra kernel arguments for every boot line (console, debugging).
    pub extra_args: Vec<KernelArg>,
}

impl SiteBoot {
    fn role_config(&self, role: Role) -> &HttpUrl {
        match role {
            Role::Bootstrap => &self.bootstrap_config,
            Role::ControlPlane => &self.master_config,
            Role::Worker => &self.worker_config,
        }
    }
}

/// One file for the HTTP root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artefact {
    pub path: RelativePath,
    pub contents: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum ArtefactError {
    #[error("host {host}: {reason}")]
    Host { host: HostId, reason: String },
    #[error("host {host}: {source}")]
    Boot {
        host: HostId,
        #[source]
        source: BootError,
    },
    #[error("host {host}: bond: {source}")]
    Bond {
        host: HostId,
        #[source]
        source: BondError,
    },
    #[error("host {host}: ignition: {source}")]
    Ignition {
        host: HostId,
        #[source]
        source: IgnitionError,
    },
    #[error("{0}")]
    Site(#[from] BootError),
    #[error("{0}")]
    Value(#[from] crate::domain::ValueError),
}

/// Renders every artefact of the cluster: the two discovery files, and for
/// each host with a role its Ignition and its per-MAC iPXE scripts.
/// Hosts without a role are skipped; a host with a role but no host name,
/// or whose inventory cannot be planned (no install disk, no usable NIC,
/// hostile values), fails the whole render naming the host.
pub fn render_cluster<H: HttpServer + ?Sized>(
    root: &H,
    site: &SiteBoot,
    hosts: &[HostRecord],
    networks: &BTreeMap<HostId, HostNetwork>,
) -> Result<Vec<Artefact>, ArtefactError> {
    let url = |p: &RelativePath| root.url_for(p);
    let mut out = Vec::with_capacity(2 + hosts.len() * 4);
    let ks_path: RelativePath = "inventory.ks".parse()?;
    out.push(Artefact {
        path: "default.ipxe".parse()?,
        contents: render_default_ipxe(&DefaultIpxe {
            // The template appends `ipxe/<mac>.ipxe` to the root URL.
            http_base: root.base_url(),
            centos: CentosBoot {
                kernel: url(&site.centos_kernel),
                initrd: url(&site.centos_initrd),
                stage2: url(&site.centos_tree),
                kickstart: url(&ks_path),
                extra_args: site.extra_args.clone(),
            },
        })?
        .into_bytes(),
    });
    out.push(Artefact {
        contents: render_inventory_ks(&InventoryKs {
            agent_url: url(&site.agent),
            agent_sha256: site.agent_sha256.clone(),
            ssh_authorized_keys: site.ssh_keys.clone(),
            agent_port: site.agent_port,
            repo: site.repo.clone(),
        })?
        .into_bytes(),
        path: ks_path,
    });
    for host in hosts {
        let Some(role) = host.role else { continue };
        let err = |reason: &str| ArtefactError::Host {
            host: host.id.clone(),
            reason: reason.to_string(),
        };
        let hostname = host
            .hostname
            .clone()
            .ok_or_else(|| err("has a role but no host name"))?;
        if host.macs.is_empty() {
            return Err(err("no MAC to name its iPXE script after"));
        }
        let plan = plan_boot(host, network_of(networks, &host.id)).map_err(|e| match e {
            BootPlanError::Bond(source) => ArtefactError::Bond {
                host: host.id.clone(),
                source,
            },
            BootPlanError::Disk(source) => ArtefactError::Boot {
                host: host.id.clone(),
                source,
            },
        })?;
        let bond_err = |source| ArtefactError::Bond {
            host: host.id.clone(),
            source,
        };
        let ignition = host_ignition(&HostIgnition {
            hostname: hostname.clone(),
            role,
            role_config: site.role_config(role).clone(),
            ca: site.ca.clone(),
            keyfiles: plan.bond.keyfiles().map_err(bond_err)?,
        })
        .map_err(|source| ArtefactError::Ignition {
            host: host.id.clone(),
            source,
        })?;
        let ignition_path: RelativePath = format!("ignition/{hostname}.ign").parse()?;
        let boot_err = |source| ArtefactError::Boot {
            host: host.id.clone(),
            source,
        };
        let script = render_scos_boot(&ScosBoot {
            kernel: url(&site.scos_kernel),
            initramfs: url(&site.scos_initramfs),
            rootfs: url(&site.scos_rootfs),
            install_dev: plan.install_device.clone(),
            ignition_url: url(&ignition_path),
            network_args: plan.network_args.clone(),
            extra_args: site.extra_args.clone(),
        })
        .map_err(boot_err)?;
        out.push(Artefact {
            path: ignition_path,
            contents: ignition,
        });
        // Any of the host's NICs may be the one its firmware PXE boots from.
        for mac in &host.macs {
            out.push(Artefact {
                path: per_mac_ipxe_path(mac),
                contents: script.clone().into_bytes(),
            });
        }
    }
    Ok(out)
}

/// Per-host directories this module owns, and the suffix of its files there.
const OWNED: [(&str, &str); 2] = [("ipxe", ".ipxe"), ("ignition", ".ign")];

/// The steps that make the HTTP root hold exactly `artefacts`: a put per
/// file, then a removal per stale per-host file (in `ipxe/` and
/// `ignition/`) of a host that no longer has one, so a host that lost its
/// role falls back to discovery.
pub async fn artefact_steps<T: Topology + HttpServer>(
    root: &T,
    artefacts: Vec<Artefact>,
) -> Result<Vec<Box<dyn Step<T>>>, crate::domain::CapabilityError> {
    let wanted: BTreeSet<RelativePath> = artefacts.iter().map(|a| a.path.clone()).collect();
    let mut steps: Vec<Box<dyn Step<T>>> = Vec::with_capacity(artefacts.len());
    for a in artefacts {
        steps.push(Box::new(PutFile {
            path: a.path,
            contents: a.contents,
        }));
    }
    for (dir, suffix) in OWNED {
        let dir = const_path(dir);
        for path in root.list_files(&dir).await? {
            if path.as_str().ends_with(suffix) && !wanted.contains(&path) {
                steps.push(Box::new(RemoveFile { path }));
            }
        }
    }
    Ok(steps)
}

/// Renders and writes the boot artefacts of every host with a role in the
/// Inventory. Noop when every file already holds what it would write.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BootArtefacts {
    pub site: SiteBoot,
    /// Per-host network settings from the site file.
    #[serde(default)]
    pub networks: BTreeMap<HostId, HostNetwork>,
}

impl<T: Topology + HttpServer> Score<T> for BootArtefacts {
    fn name(&self) -> String {
        NAME.into()
    }

    fn create_interpret(&self) -> Box<dyn Interpret<T>> {
        Box::new(SagaInterpret(self.clone()))
    }
}

#[async_trait]
impl<T: Topology + HttpServer> SagaScore<T> for BootArtefacts {
    fn saga_name(&self) -> String {
        NAME.into()
    }

    async fn steps(
        &self,
        inventory: &Inventory,
        topology: &T,
    ) -> Result<Vec<Box<dyn Step<T>>>, InterpretError> {
        let repo = inventory.repository().clone();
        let hosts = tokio::task::spawn_blocking(move || repo.hosts())
            .await
            .map_err(|e| InterpretError::new(NAME, "read inventory", e.to_string()))?
            .map_err(|e| InterpretError::new(NAME, "read inventory", e.to_string()))?;
        let artefacts = render_cluster(topology, &self.site, &hosts, &self.networks)
            .map_err(|e| InterpretError::new(NAME, "render boot artefacts", e.to_string()))?;
        artefact_steps(topology, artefacts)
            .await
            .map_err(|e| InterpretError::new(NAME, "list the HTTP root", e.to_string()))
    }

    /// Removals of stale files that an interrupted run already made (the
    /// files are gone, so the listing no longer plans them).
    fn resume_steps(&self, missing: &[StepKey]) -> Vec<Box<dyn Step<T>>> {
        missing
            .iter()
            .filter_map(RemoveFile::from_key)
            .map(|s| Box::new(s) as Box<dyn Step<T>>)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::boot_plan::tests::{qemu, record};
    use super::*;
    use crate::infra::fakes::FakeSite;

    fn site() -> SiteBoot {
        let p = |s: &str| s.parse::<RelativePath>().unwrap();
        let u = |s: &str| s.parse::<HttpUrl>().unwrap();
        SiteBoot {
            scos_kernel: p("os/scos/kernel"),
            scos_initramfs: p("os/scos/initramfs.img"),
            scos_rootfs: p("os/scos/rootfs.img"),
            centos_kernel: p("os/centos/vmlinuz"),
            centos_initrd: p("os/centos/initrd.img"),
            centos_tree: p("os/centos"),
            agent: p("harmony/agent"),
            agent_sha256: "a".repeat(64).parse().unwrap(),
            agent_port: 25000,
            ssh_keys: vec![
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUm ops@bastion"
                    .parse()
                    .unwrap(),
            ],
            repo: None,
            bootstrap_config: u("http://192.0.2.1/bootstrap.ign"),
            master_config: u("http://192.0.2.1/master.ign"),
            worker_config: u("http://192.0.2.1/worker.ign"),
            ca: None,
            extra_args: vec![],
        }
    }

    fn master(by_path: Option<&str>) -> HostRecord {
        let mut host = record(&qemu(by_path), "192.168.77.21");
        host.role = Some(Role::ControlPlane);
        host.hostname = Some("master-0.ocp.example.com".parse().unwrap());
        host
    }

    /// The per-MAC script carries the planned disk path and the NIC that
    /// answered discovery.
    #[test]
    fn the_script_carries_the_stable_disk_and_the_answering_nic() {
        let host = master(Some("pci-0000:04:00.0"));
        let files = render_cluster(
            &FakeSite::new(),
            &site(),
            std::slice::from_ref(&host),
            &BTreeMap::new(),
        )
        .unwrap();
        let script = files
            .iter()
            .find(|a| a.path == per_mac_ipxe_path(&host.macs[0]))
            .map(|a| String::from_utf8_lossy(&a.contents).to_string())
            .unwrap();
        assert!(
            script.contains(" coreos.inst.install_dev=/dev/disk/by-path/pci-0000:04:00.0 "),
            "{script}"
        );
        assert!(script.contains(" ip=enp1s0:dhcp "), "{script}");
        assert!(!script.contains("enp2s0"), "{script}");
    }

    /// No stable path for the chosen disk: nothing is rendered, and the
    /// error names the host and the disk.
    #[test]
    fn a_disk_without_a_stable_path_fails_naming_host_and_disk() {
        let host = master(None);
        let e = render_cluster(
            &FakeSite::new(),
            &site(),
            std::slice::from_ref(&host),
            &BTreeMap::new(),
        )
        .unwrap_err();
        let shown = e.to_string();
        assert!(matches!(e, ArtefactError::Boot { .. }), "{shown}");
        assert!(shown.contains(host.id.as_str()), "{shown}");
        assert!(shown.contains("install disk vda"), "{shown}");
        assert!(shown.contains("no stable path"), "{shown}");
    }
}
