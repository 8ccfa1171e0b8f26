//! Boot artefacts: golden files, kickstart validation, YAML round trip and
//! injection resistance.
//!
//! Golden files live in `harmony/tests/golden/` and are compared byte for
//! byte. After an intended template change, regenerate them explicitly with
//!
//! ```text
//! HARMONY_BLESS=1 cargo test -p harmony --test boot_templates
//! ```
//!
//! and review the diff. The kickstart is checked with pykickstart's
//! `ksvalidator` (`/opt/harmony/venv/bin/ksvalidator`, or on `PATH`); run
//! `.ci/setup` to install it. Its absence fails the test, it never skips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/store_common.rs"]
mod store_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use harmony::domain::{
    DevicePath, HostHardware, Hostname, HttpUrl, KernelArg, MacAddress, RelativePath,
};
use harmony::inventory_model::{Disk, DiskKind};
use harmony::modules::boot::*;

const KEY_A: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUm ops@bastion";
const KEY_B: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ent8fX5/gIGC";
const PULL_SECRET: &str = r#"{"auths":{"quay.io":{"auth":"c2VjcmV0LXRva2VuLWRvLW5vdC1sb2c=","email":"ops@example.com"}}}"#;
const SECRET_MARK: &str = "c2VjcmV0LXRva2VuLWRvLW5vdC1sb2c";

/// Strings an attacker (a host on the provisioning network, or a tampered
/// site file) would try.
fn injections() -> Vec<String> {
    vec![
        "\"; reboot".into(),
        "\n#!ipxe".into(),
        "${root}".into(),
        "${net0/mac}".into(),
        "a\0b".into(),
        "x".repeat(300),
        "a".repeat(300) + ".example.com",
        "../../x".into(),
        "\"quoted\"".into(),
        "'single'".into(),
        "back\\slash".into(),
        "' OR 1=1".into(),
        "ok\nchain http://evil/".into(),
        "%end\n%pre\nreboot".into(),
    ]
}

fn url(s: &str) -> HttpUrl {
    s.parse().unwrap()
}

fn args(list: &[&str]) -> Vec<KernelArg> {
    list.iter().map(|a| a.parse().unwrap()).collect()
}

const BASE: &str = "http://192.168.77.1:8080";

fn default_ipxe() -> DefaultIpxe {
    DefaultIpxe {
        http_base: url(&format!("{BASE}/")),
        centos: CentosBoot {
            kernel: url(&format!("{BASE}/os/centos-stream-9/images/pxeboot/vmlinuz")),
            initrd: url(&format!(
                "{BASE}/os/centos-stream-9/images/pxeboot/initrd.img"
            )),
            stage2: url(&format!("{BASE}/os/centos-stream-9")),
            kickstart: url(&format!("{BASE}/inventory.ks")),
            extra_args: args(&["rd.shell=0", "net.ifnames=1"]),
        },
    }
}

fn inventory_ks() -> InventoryKs {
    InventoryKs {
        agent_url: url(&format!("{BASE}/agent/harmony-inventory-agent")),
        agent_sha256: "3A7BD3E2360A3D29EEA436FCFB7E44C735D117C42D1C1835420B6B9942DD4F1B"
            .parse()
            .unwrap(),
        ssh_authorized_keys: vec![KEY_A.parse().unwrap(), KEY_B.parse().unwrap()],
        agent_port: 25000,
        repo: Some(url(&format!("{BASE}/os/centos-stream-9"))),
    }
}

fn site_host_wire() -> harmony::inventory_model::Inventory {
    let macs = [store_common::mac(7, 1), store_common::mac(7, 2)];
    store_common::inventory(7, &macs, "4c4c4544-0000-4000-8000-000000000008")
}

/// The agent's document of the site host, typed by the one conversion.
fn site_host() -> HostHardware {
    HostHardware::from_wire(&site_host_wire()).unwrap()
}

fn scos_boot() -> ScosBoot {
    ScosBoot {
        kernel: url(&format!("{BASE}/os/scos-4.19/scos-live-kernel.x86_64")),
        initramfs: url(&format!(
            "{BASE}/os/scos-4.19/scos-live-initramfs.x86_64.img"
        )),
        rootfs: url(&format!("{BASE}/os/scos-4.19/scos-live-rootfs.x86_64.img")),
        install_dev: install_device(&site_host()).unwrap(),
        ignition_url: url(&format!("{BASE}/ignition/master.ign")),
        network_args: args(&[
            "bond=bond0:eno1,eno2:mode=802.3ad,miimon=100",
            "ip=192.168.77.21::192.168.77.1:255.255.255.0:master-0.ocp.example.com:bond0:none",
            "nameserver=192.168.77.1",
        ]),
        extra_args: args(&["rd.multipath=0"]),
    }
}

fn install_config() -> InstallConfig {
    InstallConfig {
        base_domain: "example.com".parse().unwrap(),
        cluster_name: "ocp".parse().unwrap(),
        machine_network: "192.168.77.0/24".parse().unwrap(),
        cluster_network: "10.128.0.0/14".parse().unwrap(),
        host_prefix: 23,
        service_network: "172.30.0.0/16".parse().unwrap(),
        node_addresses: [
            "192.168.77.20",
            "192.168.77.21",
            "192.168.77.22",
            "192.168.77.23",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect(),
        pull_secret: PullSecret::new(PULL_SECRET).unwrap(),
        ssh_key: KEY_A.parse().unwrap(),
    }
}

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("HARMONY_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; generate it with HARMONY_BLESS=1 cargo test -p harmony --test boot_templates",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{name} differs from its golden file; if intended, rerun with HARMONY_BLESS=1 and review\n--- golden\n{expected}\n--- rendered\n{actual}"
    );
}

fn one_final_newline(s: &str) {
    assert!(s.ends_with('\n') && !s.ends_with("\n\n"), "{s:?}");
}

#[test]
fn golden_default_ipxe() {
    let out = render_default_ipxe(&default_ipxe()).unwrap();
    one_final_newline(&out);
    assert!(out.starts_with("#!ipxe\n"));
    assert!(out.contains(&format!(
        "chain --autofree {BASE}/ipxe/${{netX/mac:hexhyp}}.ipxe || goto inventory"
    )));
    for want in [
        format!("inst.stage2={BASE}/os/centos-stream-9 "),
        format!("inst.ks={BASE}/inventory.ks "),
        " ip=dhcp rd.neednet=1 inst.text ".into(),
        "imgfree\n".into(),
        " net.ifnames=1 || goto failed".into(),
    ] {
        assert!(out.contains(&want), "{want}");
    }
    // No installer sshd before %pre has locked root and written the keys.
    assert!(!out.contains("inst.sshd"), "{out}");
    golden("default.ipxe", &out);
}

#[test]
fn per_mac_file_name() {
    let mac: MacAddress = "52:54:00:AA:BB:01".parse().unwrap();
    let p: RelativePath = per_mac_ipxe_path(&mac);
    assert_eq!(p.as_str(), "ipxe/52-54-00-aa-bb-01.ipxe");
}

#[test]
fn golden_scos_boot() {
    let ctx = scos_boot();
    assert_eq!(
        ctx.install_dev.as_str(),
        "/dev/disk/by-id/nvme-eui.0000000700000000",
        "smallest of equal NVMe disks, by name, as its by-id link"
    );
    let out = render_scos_boot(&ctx).unwrap();
    one_final_newline(&out);
    let kernel = out.lines().find(|l| l.starts_with("kernel ")).unwrap();
    let want = [
        "coreos.live.rootfs_url=",
        "coreos.inst.install_dev=/dev/disk/by-id/nvme-eui.0000000700000000",
        "coreos.inst.ignition_url=",
        "ignition.firstboot",
        "ignition.platform.id=metal",
        "bond=bond0",
        "ip=192.168.77.21",
        "nameserver=",
        "console=ttyS0",
        "rd.multipath=0",
    ];
    let mut at = 0;
    for w in want {
        let i = kernel[at..]
            .find(w)
            .unwrap_or_else(|| panic!("{w} missing or out of order"));
        at += i + w.len();
    }
    assert!(!out.contains("${"), "no iPXE variables needed here");
    golden("scos-boot.ipxe", &out);
}

/// Whole words of `s` (runs of ASCII letters).
fn words(s: &str) -> Vec<&str> {
    s.split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
        .collect()
}

const STORAGE_COMMANDS: &[&str] = &[
    "clearpart",
    "part",
    "partition",
    "autopart",
    "zerombr",
    "reqpart",
    "ignoredisk",
    "bootloader",
    "logvol",
    "volgroup",
    "raid",
    "btrfs",
    "mount",
    "zipl",
    "zfcp",
    "iscsi",
    "fcoe",
    "nvdimm",
    "snapshot",
    "harddrive",
];

#[test]
fn golden_inventory_ks_never_touches_disks() {
    let out = render_inventory_ks(&inventory_ks()).unwrap();
    one_final_newline(&out);
    let all = words(&out);
    for cmd in STORAGE_COMMANDS {
        assert!(!all.contains(cmd), "storage word {cmd:?} in the kickstart");
    }
    for want in [
        "\ntext\n",
        "\nnetwork --bootproto=dhcp",
        "\nrootpw --lock\n",
        &format!("\nsshpw --username=root --sshkey \"{KEY_A}\"\n"),
        &format!("\n{KEY_A}\n{KEY_B}\nHARMONY_KEYS\n"),
        "\n%pre ",
        "--erroronfail",
        "sha256sum --check",
        "3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b",
        "--listen \"0.0.0.0:$AGENT_PORT\"",
        "AGENT_PORT=\"25000\"",
        "\nhold\n%end\n",
    ] {
        assert!(out.contains(want), "{want:?}");
    }
    // Only one section, and it never falls through to the install.
    assert_eq!(out.matches("\n%end").count(), 1);
    // sshd starts only after root and every other account are locked and
    // the keys are written, from Anaconda's config file (install.img has
    // no sshd_config), and accepts root's keys only (discovery_sshd runs
    // this command line against the real sshd).
    let lock = out
        .find("sed -i 's/^root:[^:]*:/root:*:/' /etc/shadow")
        .unwrap();
    let others = out.find("\nlock_accounts /etc ").unwrap();
    let keys = out.find("HARMONY_KEYS\nchmod 0600").unwrap();
    let sshd = out
        .find("/usr/sbin/sshd -f /etc/ssh/sshd_config.anaconda ")
        .unwrap();
    assert!(lock < others && others < keys && keys < sshd, "{out}");
    assert_eq!(out.matches("/usr/sbin/sshd").count(), 1);
    for option in [
        "-o AuthenticationMethods=publickey ",
        "-o PasswordAuthentication=no ",
        "-o KbdInteractiveAuthentication=no ",
        "-o PermitEmptyPasswords=no ",
        "-o PermitRootLogin=prohibit-password ",
        "-o AllowUsers=root ",
    ] {
        assert!(out[sshd..].contains(option), "{option}");
    }
    // Every account but root: password locked, shell nologin ("install"
    // is UID 0 with an empty password; discovery_sshd runs the function).
    assert!(out.contains("$1 != \"root\" && $2 !~ /^[!*]/ { $2 = \"!\" $2 }"));
    assert!(out.contains("$1 != \"root\" && NF >= 7 { $7 = \"/usr/sbin/nologin\" }"));
    assert!(out.contains("\"$etc/shadow\"") && out.contains("\"$etc/passwd\""));
    // Host keys generated, a failure said on the console, and the port
    // checked: nothing hidden behind `|| :`.
    assert!(out.contains("ssh-keygen -A "));
    assert!(out.contains("ERROR: sshd failed to start"));
    assert!(out.contains("nothing listens on port 22"));
    assert!(!out.contains("|| :\n/usr/sbin/sshd") && !out.contains("continuing without SSH"));
    golden("inventory.ks", &out);
}

/// The %pre script parses as POSIX `sh` (dash) and as `bash`.
#[test]
fn inventory_ks_pre_script_parses() {
    let out = render_inventory_ks(&inventory_ks()).unwrap();
    let start = out.find("\n%pre ").unwrap() + 1;
    let body_start = start + out[start..].find('\n').unwrap() + 1;
    let body_end = body_start + out[body_start..].find("\n%end\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("pre.sh");
    std::fs::write(&script, &out[body_start..body_end]).unwrap();
    for shell in ["/bin/sh", "/bin/bash"] {
        let r = Command::new(shell).arg("-n").arg(&script).output().unwrap();
        assert!(r.status.success(), "{shell} -n: {r:?}");
    }
}

#[test]
fn inventory_ks_needs_a_key() {
    let mut ctx = inventory_ks();
    ctx.ssh_authorized_keys.clear();
    assert!(matches!(
        render_inventory_ks(&ctx),
        Err(BootError::InvalidContext { .. })
    ));
}

fn ksvalidator() -> PathBuf {
    let pinned = PathBuf::from("/opt/harmony/venv/bin/ksvalidator");
    if pinned.is_file() {
        return pinned;
    }
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("ksvalidator"))
                .find(|c| c.is_file())
        })
        .unwrap_or_else(|| {
            panic!("ksvalidator not found in /opt/harmony/venv/bin or on PATH: run .ci/setup")
        })
}

#[test]
fn inventory_ks_passes_ksvalidator_rhel9() {
    let tool = ksvalidator();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("inventory.ks");
    std::fs::write(&file, render_inventory_ks(&inventory_ks()).unwrap()).unwrap();
    let out = Command::new(&tool)
        .arg("-v")
        .arg("RHEL9")
        .arg(&file)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "ksvalidator failed:\n{text}");
    let lower = text.to_lowercase();
    assert!(
        !lower.contains("error") && !lower.contains("warning") && !lower.contains("deprecated"),
        "ksvalidator complained:\n{text}"
    );
}

/// One line of the YAML subset the template emits: `[- ]key: value`.
#[derive(Debug)]
struct YamlLine {
    indent: usize,
    key: String,
    value: YamlValue,
}

#[derive(Debug, PartialEq)]
enum YamlValue {
    None,
    Plain(String),
    Quoted(String),
}

/// A small parser for that subset; double-quoted scalars are unescaped
/// per YAML 1.2 (the escapes `YamlDoubleQuoted` writes) and must close at
/// the end of their line. Anything else is an error.
fn parse_yaml(doc: &str) -> Result<Vec<YamlLine>, String> {
    let mut out = Vec::new();
    for line in doc.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        let indent = line.len() - line.trim_start_matches(' ').len();
        let mut rest = &line[indent..];
        if let Some(r) = rest.strip_prefix("- ") {
            rest = r;
        }
        if rest.starts_with('"') {
            let (s, tail) = unquote(rest)?;
            if !tail.is_empty() {
                return Err(format!("garbage after scalar: {line:?}"));
            }
            out.push(YamlLine {
                indent,
                key: String::new(),
                value: YamlValue::Quoted(s),
            });
            continue;
        }
        let (key, v) = rest
            .split_once(':')
            .ok_or_else(|| format!("no key: {line:?}"))?;
        if !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(format!("odd key: {line:?}"));
        }
        let v = v.trim_start_matches(' ');
        let value = if v.is_empty() {
            YamlValue::None
        } else if v.starts_with('"') {
            let (s, tail) = unquote(v)?;
            if !tail.is_empty() {
                return Err(format!("garbage after scalar: {line:?}"));
            }
            YamlValue::Quoted(s)
        } else {
            if v.contains(['"', '\'', '#', '\\']) {
                return Err(format!("suspicious plain scalar: {line:?}"));
            }
            YamlValue::Plain(v.to_string())
        };
        out.push(YamlLine {
            indent,
            key: key.to_string(),
            value,
        });
    }
    Ok(out)
}

fn unquote(s: &str) -> Result<(String, &str), String> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[i + 1..])),
            '\\' => match chars.next().map(|(_, c)| c) {
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('u') => {
                    let hex: String = (0..4)
                        .filter_map(|_| chars.next().map(|(_, c)| c))
                        .collect();
                    let n = u32::from_str_radix(&hex, 16).map_err(|e| e.to_string())?;
                    out.push(char::from_u32(n).ok_or("bad \\u")?);
                }
                other => return Err(format!("unknown escape {other:?}")),
            },
            c if c.is_control() => return Err(format!("raw control character {c:?}")),
            c => out.push(c),
        }
    }
    Err("unterminated double-quoted scalar".into())
}

fn value_of<'a>(doc: &'a [YamlLine], key: &str) -> &'a YamlValue {
    &doc.iter()
        .find(|l| l.key == key)
        .unwrap_or_else(|| panic!("{key} missing"))
        .value
}

#[test]
fn golden_install_config_round_trips() {
    let ctx = install_config();
    let out = render_install_config(&ctx).unwrap();
    one_final_newline(&out);
    let doc = parse_yaml(&out).unwrap();
    let q = |s: &str| YamlValue::Quoted(s.to_string());
    let p = |s: &str| YamlValue::Plain(s.to_string());
    assert_eq!(value_of(&doc, "apiVersion"), &p("v1"));
    assert_eq!(value_of(&doc, "baseDomain"), &q("example.com"));
    assert_eq!(value_of(&doc, "networkType"), &p("OVNKubernetes"));
    assert_eq!(value_of(&doc, "hostPrefix"), &p("23"));
    assert_eq!(value_of(&doc, "none"), &p("{}"));
    assert_eq!(value_of(&doc, "pullSecret"), &q(PULL_SECRET));
    assert_eq!(value_of(&doc, "sshKey"), &q(KEY_A));
    let replicas: Vec<_> = doc
        .iter()
        .filter(|l| l.key == "replicas")
        .map(|l| &l.value)
        .collect();
    assert_eq!(
        replicas,
        [&p("0"), &p("3")],
        "compute 0 (user-provisioned: workers join by CSR approval), control plane 3"
    );
    let cidrs: Vec<_> = doc
        .iter()
        .filter(|l| l.key == "cidr")
        .map(|l| &l.value)
        .collect();
    assert_eq!(cidrs, [&q("192.168.77.0/24"), &q("10.128.0.0/14")]);
    assert!(doc.iter().any(|l| l.value == q("172.30.0.0/16")));
    assert!(
        doc.iter()
            .any(|l| l.key == "name" && l.indent == 2 && l.value == q("ocp"))
    );
    golden("install-config.yaml", &out);
}

/// Renders `ctx` and expects the error to name `field` and `value`, and
/// to say `reason`.
fn rejected(ctx: &InstallConfig, field: &str, value: &str, reason: &str) {
    match render_install_config(ctx) {
        Ok(out) => panic!("{field}={value} accepted:\n{out}"),
        Err(e) => {
            let msg = e.to_string();
            assert!(
                matches!(&e, BootError::InvalidField { field: f, value: v, .. } if *f == field && v == value),
                "{field}={value}: {e:?}"
            );
            assert!(
                msg.starts_with(&format!(
                    "install-config.yaml: {field}: invalid value \"{value}\": "
                )),
                "{msg}"
            );
            assert!(msg.contains(reason), "{reason:?} not in {msg}");
        }
    }
}

fn net(s: &str) -> ipnetwork::IpNetwork {
    s.parse().unwrap()
}

#[test]
fn install_config_rejects_inconsistent_networks() {
    let mut ctx = install_config();
    ctx.host_prefix = 12;
    rejected(
        &ctx,
        "networking.clusterNetwork[0].hostPrefix",
        "12",
        "between",
    );
    let mut ctx = install_config();
    ctx.service_network = net("fd02::/112");
    rejected(
        &ctx,
        "networking.serviceNetwork[0]",
        "fd02::/112",
        "single-stack",
    );
    let mut ctx = install_config();
    ctx.cluster_network = net("fd01::/48");
    ctx.host_prefix = 64;
    rejected(
        &ctx,
        "networking.clusterNetwork[0].cidr",
        "fd01::/48",
        "single-stack",
    );
}

const MACHINE: &str = "networking.machineNetwork[0]";
const SERVICE: &str = "networking.serviceNetwork[0]";
const CLUSTER: &str = "networking.clusterNetwork[0].cidr";
const HOST_PREFIX: &str = "networking.clusterNetwork[0].hostPrefix";

#[test]
fn install_config_networks_have_no_host_bits() {
    let mut ctx = install_config();
    ctx.machine_network = net("192.168.77.1/24");
    rejected(
        &ctx,
        MACHINE,
        "192.168.77.1/24",
        "expecting 192.168.77.0/24",
    );
    let mut ctx = install_config();
    ctx.service_network = net("172.30.0.1/16");
    rejected(&ctx, SERVICE, "172.30.0.1/16", "expecting 172.30.0.0/16");
    let mut ctx = install_config();
    ctx.cluster_network = net("10.128.0.0/8");
    rejected(&ctx, CLUSTER, "10.128.0.0/8", "expecting 10.0.0.0/8");
    let mut ctx = install_config();
    ctx.machine_network = net("0.0.0.0/0");
    ctx.node_addresses.clear();
    rejected(&ctx, MACHINE, "0.0.0.0/0", "address must be specified");
}

#[test]
fn install_config_networks_do_not_overlap() {
    let mut ctx = install_config();
    ctx.service_network = net("192.168.0.0/16");
    rejected(
        &ctx,
        SERVICE,
        "192.168.0.0/16",
        "machine network 192.168.77.0/24",
    );
    let mut ctx = install_config();
    ctx.cluster_network = net("192.168.0.0/16");
    rejected(
        &ctx,
        CLUSTER,
        "192.168.0.0/16",
        "machine network 192.168.77.0/24",
    );
    let mut ctx = install_config();
    ctx.cluster_network = net("172.30.0.0/15");
    rejected(
        &ctx,
        CLUSTER,
        "172.30.0.0/15",
        "service network 172.30.0.0/16",
    );
    // Inside the other, either way round.
    let mut ctx = install_config();
    ctx.cluster_network = net("172.30.128.0/17");
    ctx.host_prefix = 23;
    rejected(
        &ctx,
        CLUSTER,
        "172.30.128.0/17",
        "service network 172.30.0.0/16",
    );
    // OVN-Kubernetes' own subnets.
    for (field, value, which) in [
        (MACHINE, "100.64.0.0/24", "internal subnet 100.64.0.0/16"),
        (SERVICE, "100.88.0.0/16", "transit subnet 100.88.0.0/16"),
        (
            CLUSTER,
            "169.254.0.0/16",
            "masquerade subnet 169.254.0.0/17",
        ),
    ] {
        let mut ctx = install_config();
        ctx.node_addresses.clear();
        match field {
            MACHINE => ctx.machine_network = net(value),
            SERVICE => ctx.service_network = net(value),
            _ => ctx.cluster_network = net(value),
        }
        rejected(&ctx, field, value, which);
    }
}

#[test]
fn install_config_service_network_size() {
    let mut ctx = install_config();
    ctx.service_network = net("172.0.0.0/8");
    rejected(&ctx, SERVICE, "172.0.0.0/8", "no larger than a /12");
    ctx.service_network = net("172.16.0.0/12");
    assert!(render_install_config(&ctx).is_ok());
}

#[test]
fn install_config_host_prefix_fits_the_cluster_network() {
    let mut ctx = install_config();
    ctx.host_prefix = 13;
    rejected(
        &ctx,
        HOST_PREFIX,
        "13",
        "between the prefix of 10.128.0.0/14",
    );
    ctx.host_prefix = 33;
    rejected(&ctx, HOST_PREFIX, "33", "and /32");
    ctx.host_prefix = 26;
    rejected(&ctx, HOST_PREFIX, "26", "250 pods");
    // Room for a node subnet per node: a /23 of /24s holds 2, not 3.
    ctx.cluster_network = net("10.128.0.0/23");
    ctx.host_prefix = 24;
    ctx.node_addresses.clear();
    rejected(
        &ctx,
        HOST_PREFIX,
        "24",
        "holds 2 node subnet(s) of /24, the cluster has 3",
    );
    // Four known hosts need four subnets; a /22 holds them.
    ctx.node_addresses = install_config().node_addresses;
    ctx.cluster_network = net("10.128.0.0/23");
    rejected(&ctx, HOST_PREFIX, "24", "the cluster has 4");
    ctx.cluster_network = net("10.128.0.0/22");
    assert!(render_install_config(&ctx).is_ok());
    // IPv6: exactly 64.
    let mut v6 = install_config();
    v6.machine_network = net("fd00:77::/64");
    v6.service_network = net("fd02::/112");
    v6.cluster_network = net("fd01::/48");
    v6.node_addresses = vec!["fd00:77::20".parse().unwrap()];
    v6.host_prefix = 64;
    assert!(render_install_config(&v6).is_ok());
    v6.host_prefix = 72;
    rejected(&v6, HOST_PREFIX, "72", "must be 64 for IPv6");
    v6.host_prefix = 64;
    v6.service_network = net("fd02::/64");
    rejected(&v6, SERVICE, "fd02::/64", "no larger than a /108");
}

#[test]
fn install_config_hosts_are_on_the_machine_network() {
    for (addr, reason) in [
        ("192.168.78.20", "host address 192.168.78.20 is outside it"),
        ("10.128.0.5", "host address 10.128.0.5 is outside it"),
        ("192.168.77.0", "is its network address"),
        ("192.168.77.255", "is its broadcast address"),
        ("fd00::20", "host address fd00::20 is outside it"),
    ] {
        let mut ctx = install_config();
        ctx.node_addresses.push(addr.parse().unwrap());
        rejected(&ctx, MACHINE, "192.168.77.0/24", reason);
    }
    // Unknown hosts: nothing to check.
    let mut ctx = install_config();
    ctx.node_addresses.clear();
    assert!(render_install_config(&ctx).is_ok());
}

#[test]
fn secrets_never_in_debug_or_errors() {
    let ctx = install_config();
    for dbg in [
        format!("{ctx:?}"),
        format!("{:?}", ctx.pull_secret),
        format!("{:#?}", ctx),
    ] {
        assert!(!dbg.contains(SECRET_MARK), "{dbg}");
        assert!(!dbg.contains("quay.io"), "{dbg}");
    }
    assert!(format!("{:?}", ctx.pull_secret) == "PullSecret(<redacted>)");
    for ctx_dbg in [
        format!("{:?}", default_ipxe()),
        format!("{:?}", inventory_ks()),
        format!("{:?}", scos_boot()),
    ] {
        assert!(!ctx_dbg.contains(SECRET_MARK));
    }
    // A malformed secret's error does not quote it.
    let bad = format!("{{\"auths\": {{\"quay.io\": \"{SECRET_MARK}\"}}}}");
    let e = PullSecret::new(&bad).unwrap_err();
    assert!(!e.to_string().contains(SECRET_MARK) && !format!("{e:?}").contains(SECRET_MARK));
    for bad in [
        "",
        "null",
        "[]",
        "{}",
        "{\"auths\":{}}",
        "{\"auths\":[1]}",
        "not json",
    ] {
        assert!(PullSecret::new(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn typed_values() {
    assert!(
        "ssh-ed25519 AAAA".parse::<SshPublicKey>().is_err(),
        "truncated body"
    );
    assert!(
        KEY_B
            .replace("ssh-ed25519", "ssh-rsa")
            .parse::<SshPublicKey>()
            .is_err(),
        "algorithm must match the blob"
    );
    assert!(
        format!("{KEY_B} two  spaces")
            .parse::<SshPublicKey>()
            .is_err()
    );
    assert!(format!("{KEY_B} a comment").parse::<SshPublicKey>().is_ok());
    let k: SshPublicKey = KEY_A.parse().unwrap();
    assert_eq!(k.comment(), Some("ops@bastion"));
    assert!(
        !format!("{k:?}").contains("AAAAC3"),
        "Debug omits the key body"
    );
    assert!("ab".parse::<Sha256Digest>().is_err());
    assert!("g".repeat(64).parse::<Sha256Digest>().is_err());
    for bad in ["", "Ocp", "1ocp", "ocp-", "o.cp", &"a".repeat(64)] {
        assert!(bad.parse::<ClusterName>().is_err(), "{bad:?}");
    }
}

/// Counts of things a value could use to break out of a template.
fn shape(s: &str) -> (usize, usize, usize) {
    (
        s.lines().count(),
        s.matches("${").count(),
        s.matches('"').count(),
    )
}

#[test]
fn injection_strings_are_rejected_or_contained() {
    let inj = injections();
    for s in &inj {
        // Every typed value a site or host string turns into.
        assert!(s.parse::<Hostname>().is_err(), "Hostname {s:?}");
        assert!(s.parse::<HttpUrl>().is_err(), "HttpUrl {s:?}");
        if let Ok(u) = format!("{BASE}/{s}").parse::<HttpUrl>() {
            // A long plain path segment is a fine URL; it stays one token.
            assert!(
                !u.as_str().contains(['"', '\'', '\\', '$', '\n', ' ', '\0']),
                "{s:?}"
            );
        }
        assert!(s.parse::<DevicePath>().is_err(), "DevicePath {s:?}");
        assert!(
            format!("/dev/disk/by-id/{s}")
                .parse::<DevicePath>()
                .is_err(),
            "{s:?}"
        );
        assert!(s.parse::<MacAddress>().is_err(), "MacAddress {s:?}");
        assert!(s.parse::<Sha256Digest>().is_err(), "Sha256Digest {s:?}");
        assert!(s.parse::<ClusterName>().is_err(), "ClusterName {s:?}");
        assert!(s.parse::<SshPublicKey>().is_err(), "SshPublicKey {s:?}");
        // As an SSH key comment: rejected, or (a plain path-like word)
        // exactly one more authorized_keys line and nothing else.
        match format!("{KEY_B} {s}").parse::<SshPublicKey>() {
            Err(e) => assert!(e.to_string().contains("comment"), "{e}"),
            Ok(key) => {
                let mut ks = inventory_ks();
                let (l, v, q) = shape(&render_inventory_ks(&ks).unwrap());
                ks.ssh_authorized_keys.push(key.clone());
                assert_eq!(
                    shape(&render_inventory_ks(&ks).unwrap()),
                    (l + 1, v, q),
                    "{s:?}"
                );
                let mut ic = install_config();
                let before = shape(&render_install_config(&ic).unwrap());
                ic.ssh_key = key.clone();
                let out = render_install_config(&ic).unwrap();
                assert_eq!(shape(&out), before, "{s:?}");
                let doc = parse_yaml(&out).unwrap();
                assert_eq!(
                    value_of(&doc, "sshKey"),
                    &YamlValue::Quoted(key.to_string())
                );
            }
        }
        assert!(PullSecret::new(s).is_err(), "PullSecret {s:?}");
        let e = s.parse::<RelativePath>().err();
        assert!(
            e.is_some() || !s.contains(['/', '\n', '$', '"']),
            "RelativePath {s:?}"
        );

        // Kernel arguments: rejected, or (a plain long token, a path) one
        // argument that changes neither lines, variables nor quotes.
        match s.parse::<KernelArg>() {
            Err(e) => assert!(!e.to_string().is_empty()),
            Ok(arg) => {
                let mut base = scos_boot();
                let before = shape(&render_scos_boot(&base).unwrap());
                base.extra_args.push(arg.clone());
                base.network_args.push(arg.clone());
                let after = render_scos_boot(&base).unwrap();
                assert_eq!(shape(&after), before, "{s:?}");
                let mut d = default_ipxe();
                let before = shape(&render_default_ipxe(&d).unwrap());
                d.centos.extra_args.push(arg);
                assert_eq!(shape(&render_default_ipxe(&d).unwrap()), before, "{s:?}");
            }
        }

        // Inside the pull secret (valid JSON carrying the string): accepted,
        // and the YAML still parses back to exactly that JSON, same lines.
        let json = serde_json::json!({"auths": {"quay.io": {"auth": s, "email": s}}}).to_string();
        let mut ctx = install_config();
        let lines = render_install_config(&ctx).unwrap().lines().count();
        ctx.pull_secret = PullSecret::new(&json).unwrap();
        let out = render_install_config(&ctx).unwrap();
        assert_eq!(out.lines().count(), lines, "{s:?}");
        let doc = parse_yaml(&out).unwrap();
        assert_eq!(
            value_of(&doc, "pullSecret"),
            &YamlValue::Quoted(json.clone()),
            "{s:?}"
        );

        // Hostile agent disk fields: the host is refused naming the field
        // (name, path, wwn), or the udev link is dropped (udev allows link
        // names Harmony does not); the string never reaches the install
        // device.
        for field in ["name", "path", "by_id", "by_path", "wwn"] {
            let mut disk = clean_disk();
            match field {
                "name" => disk.name = s.clone(),
                "path" => disk.path = s.clone(),
                "by_id" => disk.by_id = Some(s.clone()),
                "by_path" => disk.by_path = Some(s.clone()),
                _ => disk.wwn = Some(s.clone()),
            }
            let mut inv = site_host_wire();
            inv.storage = vec![disk];
            match HostHardware::from_wire(&inv) {
                Err(e) => assert!(e.field.ends_with(field), "{e}"),
                Ok(hw) => {
                    assert!(matches!(field, "by_id" | "by_path"), "{field}={s:?}");
                    let dev = install_device(&hw).unwrap();
                    assert!(!dev.as_str().contains(s.as_str()), "{field}={s:?}");
                }
            }
        }
    }
}

#[test]
fn yaml_escaper_escapes_everything_that_could_break_out() {
    use askama::filters::Escaper;
    let mut out = String::new();
    YamlDoubleQuoted
        .write_escaped_str(&mut out, "a\"b\\c\nd\te\0f\u{7f}g\u{85}h\u{2028}i")
        .unwrap();
    assert_eq!(out, "a\\\"b\\\\c\\nd\\te\\u0000f\\u007fg\\u0085h\\u2028i");
    let quoted = format!("\"{out}\"");
    let (back, rest) = unquote(&quoted).unwrap();
    assert_eq!(back, "a\"b\\c\nd\te\0f\u{7f}g\u{85}h\u{2028}i");
    assert!(rest.is_empty());
}

fn clean_disk() -> Disk {
    Disk {
        name: "sda".into(),
        path: "/dev/sda".into(),
        by_path: Some("/dev/disk/by-path/pci-0000:00:17.0-ata-1".into()),
        by_id: Some("/dev/disk/by-id/wwn-0x5002538f4231e1a2".into()),
        model: Some("SAMSUNG MZ7L3480".into()),
        vendor: Some("ATA".into()),
        serial: Some("S6ESNE0T123456".into()),
        wwn: Some("0x5002538f4231e1a2".into()),
        size_bytes: Some(480_103_981_056),
        logical_sector_bytes: Some(512),
        physical_sector_bytes: Some(4096),
        rotational: Some(false),
        removable: Some(false),
        kind: DiskKind::Ssd,
        transport: Some("sata".into()),
        hctl: Some("0:0:0:0".into()),
    }
}

#[test]
fn clean_disk_gets_its_wwn_link() {
    let mut inv = site_host_wire();
    inv.storage.push(clean_disk());
    assert_eq!(
        install_device(&HostHardware::from_wire(&inv).unwrap())
            .unwrap()
            .as_str(),
        "/dev/disk/by-id/wwn-0x5002538f4231e1a2",
        "a 480 GB SSD beats the 960 GB NVMe disks: smallest adequate flash"
    );
}

#[test]
fn golden_local_boot_leaves_ipxe_for_the_next_boot_device() {
    let out = render_local_boot(&LocalBoot {
        hostname: "master-0".parse().unwrap(),
    })
    .unwrap();
    one_final_newline(&out);
    let commands: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    // No kernel, no chain, no sanboot of a fixed BIOS drive: iPXE exits
    // and the firmware boots its next device (the installed disk).
    assert_eq!(
        commands,
        [
            "echo Harmony: master-0 is installed, booting from its local disk",
            "exit"
        ],
        "{out}"
    );
    assert!(out.starts_with("#!ipxe\n"));
    golden("local-boot.ipxe", &out);
}
