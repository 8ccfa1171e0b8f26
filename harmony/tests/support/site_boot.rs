//! A realistic site for boot-artefact tests and benchmarks.
#![allow(dead_code)]

use harmony::modules::okd::artefacts::SiteBoot;

pub fn site_boot() -> SiteBoot {
    let p = |s: &str| s.parse().unwrap();
    SiteBoot {
        scos_kernel: p("os/scos-4.19/kernel"),
        scos_initramfs: p("os/scos-4.19/initramfs.img"),
        scos_rootfs: p("os/scos-4.19/rootfs.img"),
        centos_kernel: p("os/centos-stream-9/images/pxeboot/vmlinuz"),
        centos_initrd: p("os/centos-stream-9/images/pxeboot/initrd.img"),
        centos_tree: p("os/centos-stream-9"),
        agent: p("harmony/harmony-inventory-agent"),
        agent_sha256: "a".repeat(64).parse().unwrap(),
        agent_port: 25000,
        ssh_keys: vec![
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUm ops@bastion"
                .parse()
                .unwrap(),
        ],
        repo: None,
        bootstrap_config: "http://192.168.77.1:8080/okd/bootstrap.ign".parse().unwrap(),
        master_config: "http://192.168.77.1:8080/okd/master.ign".parse().unwrap(),
        worker_config: "http://192.168.77.1:8080/okd/worker.ign".parse().unwrap(),
        ca: None,
        extra_args: vec!["console=ttyS0,115200n8".parse().unwrap()],
    }
}
