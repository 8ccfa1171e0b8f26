//! Inputs of the asset Scores for tests: SCOS PXE files with their stream
//! document on a test server, and a CentOS-like boot.iso built with xorriso.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::server::{TestServer, random_bytes, sha256_hex};

pub struct Scos {
    pub kernel: Vec<u8>,
    pub initramfs: Vec<u8>,
    pub rootfs: Vec<u8>,
}

/// Serves three artifacts and returns them with the stream JSON.
pub fn scos_files(srv: &TestServer) -> (Scos, String) {
    let f = Scos {
        kernel: random_bytes(1, 300 * 1024),
        initramfs: random_bytes(2, 400 * 1024 + 17),
        rootfs: random_bytes(3, 600 * 1024 + 3),
    };
    srv.put("scos/kernel-x86_64", f.kernel.clone());
    srv.put("scos/initramfs.x86_64.img", f.initramfs.clone());
    srv.put("scos/rootfs.x86_64.img", f.rootfs.clone());
    let json = stream_json(
        &srv.url("scos/kernel-x86_64"),
        &sha256_hex(&f.kernel),
        &srv.url("scos/initramfs.x86_64.img"),
        &sha256_hex(&f.initramfs),
        &srv.url("scos/rootfs.x86_64.img"),
        &sha256_hex(&f.rootfs),
    );
    srv.put("stream.json", json.clone().into_bytes());
    (f, json)
}

/// The shape `openshift-install coreos print-stream-json` prints.
pub fn stream_json(k: &str, ks: &str, i: &str, is: &str, r: &str, rs: &str) -> String {
    serde_json::json!({
        "stream": "rhcos-4.19",
        "metadata": {"last-modified": "2025-06-01T00:00:00Z", "generator": "test"},
        "architectures": {
            "x86_64": {
                "artifacts": {
                    "metal": {
                        "release": "9.0.20250601-0",
                        "formats": {
                            "iso": {"disk": {"location": "http://example.invalid/x.iso", "sha256": "0".repeat(64)}},
                            "pxe": {
                                "kernel": {"location": k, "signature": "http://example.invalid/k.sig", "sha256": ks},
                                "initramfs": {"location": i, "signature": "http://example.invalid/i.sig", "sha256": is},
                                "rootfs": {"location": r, "signature": "http://example.invalid/r.sig", "sha256": rs}
                            }
                        }
                    }
                },
                "images": {}
            }
        }
    })
    .to_string()
}

pub struct Iso {
    pub path: PathBuf,
    pub sha: String,
    pub files: Vec<(&'static str, Vec<u8>)>,
}

pub fn build_iso(dir: &Path) -> Iso {
    let tree = dir.join("tree");
    let files = vec![
        (
            ".treeinfo",
            b"[general]\nname = CentOS-Stream-9\n[stage2]\nmainimage = images/install.img\n"
                .to_vec(),
        ),
        ("images/pxeboot/vmlinuz", random_bytes(11, 120 * 1024)),
        ("images/pxeboot/initrd.img", random_bytes(12, 200 * 1024)),
        ("images/install.img", random_bytes(13, 300 * 1024)),
        ("EFI/BOOT/grub.cfg", b"not extracted\n".to_vec()),
    ];
    for (name, bytes) in &files {
        let p = tree.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    let path = dir.join("boot.iso");
    let out = Command::new("xorriso")
        .args([
            "-as",
            "mkisofs",
            "-R",
            "-J",
            "-V",
            "CentOS-Stream-9-BaseOS-x86_64",
            "-o",
        ])
        .arg(&path)
        .arg(&tree)
        .output()
        .expect("xorriso is needed (.ci/setup installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sha = sha256_hex(&std::fs::read(&path).unwrap());
    Iso {
        path,
        sha,
        files: files.into_iter().take(4).collect(),
    }
}
