//! `inventory-summary FILE`: prints a short human summary of an agent's
//! inventory JSON (as served on `GET /`). Reads stdin when FILE is `-` or
//! absent.

use std::io::Read;
use std::process::ExitCode;

use harmony::inventory_model::{Disk, Inventory, Nic};

fn main() -> ExitCode {
    // Logs go to stderr; warnings by default, `RUST_LOG` for more.
    harmony::cli::log_to_stderr();
    let arg = std::env::args().nth(1);
    let mut raw = Vec::new();
    let read = match arg.as_deref() {
        None | Some("-") => std::io::stdin()
            .take(16 << 20)
            .read_to_end(&mut raw)
            .map(|_| ()),
        Some(path) => std::fs::read(path).map(|b| raw = b),
    };
    if let Err(e) = read {
        eprintln!("inventory-summary: cannot read input: {e}");
        return ExitCode::FAILURE;
    }
    match serde_json::from_slice::<Inventory>(&raw) {
        Ok(inv) => {
            print!("{}", summary(&inv));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("inventory-summary: not an agent inventory: {e}");
            ExitCode::FAILURE
        }
    }
}

fn or_unknown(v: Option<&str>) -> &str {
    v.unwrap_or("?")
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

fn summary(inv: &Inventory) -> String {
    let mut out = String::new();
    let s = &inv.system;
    out.push_str(&format!(
        "host     {} ({} {}, serial {}, {} boot{})\n",
        or_unknown(inv.hostname.as_deref()),
        or_unknown(s.vendor.as_deref()),
        or_unknown(s.product.as_deref()),
        or_unknown(s.serial.as_deref()),
        s.boot_mode.map_or("unknown", |m| match m {
            harmony::inventory_model::BootMode::Uefi => "UEFI",
            harmony::inventory_model::BootMode::Bios => "BIOS",
        }),
        s.hypervisor
            .as_deref()
            .map(|h| format!(", virtual: {h}"))
            .unwrap_or_default(),
    ));
    let c = &inv.cpu;
    out.push_str(&format!(
        "cpu      {} socket(s), {} cores, {} threads: {} [{}; {} flags]\n",
        c.sockets.map_or("?".into(), |v| v.to_string()),
        c.cores.map_or("?".into(), |v| v.to_string()),
        c.threads.map_or("?".into(), |v| v.to_string()),
        or_unknown(c.model.as_deref()),
        notable_flags(&c.flags),
        c.flags.len(),
    ));
    let m = &inv.memory;
    out.push_str(&format!(
        "memory   {} usable{}\n",
        m.total_bytes.map_or("?".into(), gib),
        m.smbios_total_bytes
            .map(|t| format!(", {} installed in {} DIMMs", gib(t), m.dimms.len()))
            .unwrap_or_default(),
    ));
    for d in &inv.storage {
        out.push_str(&format!("disk     {}\n", disk_line(d)));
    }
    for n in &inv.network {
        out.push_str(&format!("nic      {}\n", nic_line(n)));
    }
    for w in &inv.warnings {
        out.push_str(&format!("warning  {}: {}\n", w.source, w.message));
    }
    out
}

fn disk_line(d: &Disk) -> String {
    format!(
        "{:<9} {:>10} {:<8} {} {}",
        d.name,
        d.size_bytes.map_or("?".into(), gib),
        format!("{:?}", d.kind).to_lowercase(),
        or_unknown(d.model.as_deref()),
        d.by_id
            .as_deref()
            .or(d.by_path.as_deref())
            .unwrap_or(&d.path),
    )
}

fn nic_line(n: &Nic) -> String {
    format!(
        "{:<9} {} {:>6} {:<5} {}{}",
        n.name,
        or_unknown(n.mac.as_deref()),
        n.speed_mbps.map_or("?".into(), |s| format!("{s}Mb")),
        or_unknown(n.operstate.as_deref()),
        if n.is_virtual { "virtual " } else { "" },
        n.ipv4.join(" "),
    )
}

/// The CPU flags an operator places workloads by (virtualisation, vector
/// units, crypto), in this order; the full list is in the JSON.
fn notable_flags(flags: &[String]) -> String {
    const NOTABLE: [&str; 7] = [
        "vmx",
        "svm",
        "hypervisor",
        "avx2",
        "avx512f",
        "aes",
        "sha_ni",
    ];
    NOTABLE
        .iter()
        .filter(|n| flags.iter().any(|f| f == *n))
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}
