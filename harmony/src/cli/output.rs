//! What the inventory commands print: the host table, the JSON documents
//! (fields listed in [`JSON_FIELDS`], a stable contract), a host's detail
//! page and the role plan. Functions here build strings; the commands print
//! them. Strings an agent reported go through [`safe_text`] before they
//! reach a terminal; JSON carries them as they are (JSON escapes them).

use std::fmt::Write as _;
use std::time::SystemTime;

use serde_json::{Value, json};

use crate::domain::roles::format_gib;
use crate::domain::text::{MAX_TEXT, safe_text};
use crate::domain::{HostEvent, HostRecord, RolePlan, fitness_messages, flag_messages};

/// The `--json` fields, shown by `list --help` and `show --help`.
pub const JSON_FIELDS: &str = "\
JSON output (--json) of `list` is an array of objects, of `show` one object, with these fields:
  id            string   stable host id: uuid:..., serial:... or macs:...
  ip            string   address the agent answered on
  macs          [string] permanent MACs of the physical NICs
  hostname      string?  assigned host name (null when none)
  role          string?  bootstrap | control-plane | worker (null when none)
  phase         string   discovered | role-assigned | boot-configured | installing | installed | retiring | failed | decommissioned
  vendor        string?  system vendor reported by the agent
  product       string?  system product reported by the agent
  cpu_threads   number?  logical CPUs
  memory_bytes  number?  memory the kernel reports
  disk_count    number   whole disks
  disk_bytes    number   total size of the disks
  nic_count     number   physical NICs
  first_seen    string   RFC 3339 UTC
  last_seen     string   RFC 3339 UTC
  fitness       [string] why the host is unfit for its role (empty when fit or unassigned)
  flags         [string] warnings about the host whatever its role, e.g. a duplicate firmware
                         id (a UUID or serial other hosts reported too; empty when none)
`show` adds:
  inventory     object   the agent's full hardware document
  events        [object] recent events: {at, kind, detail}";

/// RFC 3339 UTC, to the second.
pub fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `-` for none.
pub fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "-".to_string(), ToString::to_string)
}

/// Agent-reported text made safe for a terminal.
fn shown(s: &str) -> String {
    safe_text(s, MAX_TEXT)
}

/// Agent-reported text made safe, or `?` when the agent did not report it.
fn shown_or_unknown(s: Option<&str>) -> String {
    s.map_or_else(|| "?".to_string(), shown)
}

/// An event's detail for a terminal: Harmony writes `a -> b` steps around
/// values that may come from an agent; the values are made safe, the
/// arrows kept.
pub fn shown_detail(detail: &str) -> String {
    detail
        .split(" -> ")
        .map(shown)
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// Why `h` is unfit for its role (empty when fit or unassigned).
pub fn host_problems(h: &HostRecord) -> Vec<String> {
    fitness_messages(&h.hardware, h.role)
}

/// The role plan of these hosts.
pub fn plan_of(hosts: &[HostRecord]) -> RolePlan {
    RolePlan::new(hosts.iter().map(|h| (h.id.clone(), h.role)))
}

/// `role plan: ...` and one `  problem: ...` line per problem.
pub fn plan_lines(plan: &RolePlan) -> String {
    let mut out = format!("role plan: {plan}\n");
    for p in plan.problems() {
        let _ = writeln!(out, "  problem: {p}");
    }
    out
}

/// One host as `list --json` shows it.
pub fn host_json(h: &HostRecord) -> Value {
    json!({
        "id": h.id,
        "ip": h.ip.to_string(),
        "macs": h.macs,
        "hostname": h.hostname,
        "role": h.role,
        "phase": h.phase,
        "vendor": h.summary.vendor,
        "product": h.summary.product,
        "cpu_threads": h.summary.cpu_threads,
        "memory_bytes": h.summary.memory_bytes,
        "disk_count": h.summary.disk_count,
        "disk_bytes": h.summary.disk_bytes,
        "nic_count": h.summary.nic_count,
        "first_seen": time(h.first_seen),
        "last_seen": time(h.last_seen),
        "fitness": host_problems(h),
        "flags": flag_messages(h),
    })
}

/// One host as `show --json` shows it: [`host_json`] with the agent's
/// document and the recent events.
pub fn host_detail_json(h: &HostRecord, events: &[HostEvent]) -> Result<Value, serde_json::Error> {
    let mut v = host_json(h);
    v["inventory"] = serde_json::to_value(h.hardware.to_wire())?;
    v["events"] = Value::Array(
        events
            .iter()
            .map(|e| json!({"at": time(e.at), "kind": e.kind, "detail": e.detail}))
            .collect(),
    );
    Ok(v)
}

/// Pretty JSON with a final newline.
pub fn json_text(v: &Value) -> Result<String, serde_json::Error> {
    Ok(serde_json::to_string_pretty(v)? + "\n")
}

/// The `list` table (columns padded, no trailing blanks), `(no hosts)`
/// when empty, one `warning: <id>: <flag>` line per host flag, then the
/// role plan. A `!` after the role flags an unfit host, a `*` after the id
/// a flagged one.
pub fn host_table(hosts: &[HostRecord]) -> String {
    let header = [
        "ID",
        "IP",
        "HOSTNAME",
        "VENDOR/PRODUCT",
        "THREADS",
        "MEMORY",
        "DISKS",
        "NICS",
        "ROLE",
        "PHASE",
    ];
    let rows: Vec<[String; 10]> = hosts
        .iter()
        .map(|h| {
            let s = &h.summary;
            let flag = if host_problems(h).is_empty() { "" } else { "!" };
            let marked = if h.flags.is_empty() { "" } else { "*" };
            [
                format!("{}{marked}", h.id),
                h.ip.to_string(),
                opt(&h.hostname),
                format!(
                    "{} {}",
                    shown_or_unknown(s.vendor.as_deref()),
                    shown_or_unknown(s.product.as_deref())
                ),
                opt(&s.cpu_threads),
                s.memory_bytes.map_or_else(|| "-".into(), format_gib),
                format!("{} / {}", s.disk_count, format_gib(s.disk_bytes)),
                s.nic_count.to_string(),
                format!("{}{flag}", opt(&h.role)),
                h.phase.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", parts.join("  ").trim_end());
    };
    line(&header.map(String::from));
    for r in &rows {
        line(r);
    }
    if hosts.is_empty() {
        out.push_str("(no hosts)\n");
    }
    for h in hosts {
        for f in flag_messages(h) {
            let _ = writeln!(out, "warning: {}: {f}", h.id);
        }
    }
    out + &plan_lines(&plan_of(hosts))
}

/// The `show` page: summary, fitness, boot plan (install device, network
/// plan, kernel arguments: what its iPXE script would carry), the agent's
/// document and the recent events.
pub fn host_page(h: &HostRecord, events: &[HostEvent]) -> Result<String, serde_json::Error> {
    let s = &h.summary;
    let mut out = String::new();
    let macs: Vec<String> = h.macs.iter().map(ToString::to_string).collect();
    let _ = writeln!(out, "id:         {}", h.id);
    let _ = writeln!(out, "ip:         {}", h.ip);
    let _ = writeln!(out, "macs:       {}", macs.join(", "));
    let _ = writeln!(out, "hostname:   {}", opt(&h.hostname));
    let _ = writeln!(out, "role:       {}", opt(&h.role));
    let _ = writeln!(out, "phase:      {}", h.phase);
    let _ = writeln!(out, "first seen: {}", time(h.first_seen));
    let _ = writeln!(out, "last seen:  {}", time(h.last_seen));
    let _ = writeln!(
        out,
        "system:     {} {}",
        shown_or_unknown(s.vendor.as_deref()),
        shown_or_unknown(s.product.as_deref())
    );
    for p in host_problems(h) {
        let _ = writeln!(out, "unfit:      {p}");
    }
    for f in flag_messages(h) {
        let _ = writeln!(out, "warning:    {f}");
    }
    out.push_str(&boot_plan_lines(h));
    let _ = writeln!(out, "hardware:");
    let _ = writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(&h.hardware.to_wire())?
    );
    let _ = writeln!(out, "events:");
    for e in events {
        let _ = writeln!(
            out,
            "  {}  {:<14} {}",
            time(e.at),
            e.kind,
            shown_detail(&e.detail)
        );
    }
    Ok(out)
}

/// The boot plan's lines of the `show` page (a dry run of what the host's
/// scos-boot iPXE script would carry).
fn boot_plan_lines(h: &HostRecord) -> String {
    let mut out = String::new();
    match crate::modules::boot::install_device(&h.hardware) {
        Ok(dev) => {
            let _ = writeln!(out, "install on: {dev}");
        }
        Err(e) => {
            let _ = writeln!(out, "install on: none ({})", shown(&e.to_string()));
        }
    }
    match crate::modules::okd::bond::plan_bond(
        &h.hardware,
        &Default::default(),
        crate::modules::okd::bond::Addressing::Dhcp,
        Some(h.ip),
    ) {
        Ok(plan) => {
            let _ = writeln!(out, "network plan:");
            for line in plan.to_string().lines() {
                let _ = writeln!(out, "  {}", shown(line));
            }
            if let Ok(args) = plan.kernel_args() {
                let args: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
                let _ = writeln!(out, "  kernel args: {}", args.join(" "));
            }
        }
        Err(e) => {
            let _ = writeln!(out, "network plan: none ({})", shown(&e.to_string()));
        }
    }
    out
}

/// What `assign` prints after the change: the host's new state.
pub fn assigned_line(rec: &HostRecord) -> String {
    format!(
        "{}: role {}, hostname {}, phase {}",
        rec.id,
        opt(&rec.role),
        opt(&rec.hostname),
        rec.phase
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_keeps_arrows_and_neutralises_values() {
        assert_eq!(
            shown_detail("role - -> worker, phase discovered -> role-assigned"),
            "role - -> worker, phase discovered -> role-assigned"
        );
        assert_eq!(shown_detail("name \x1b[2J -> x\n"), "name __2J -> x_");
    }

    #[test]
    fn unknown_text_is_a_question_mark_not_a_neutralised_one() {
        assert_eq!(shown_or_unknown(None), "?");
        assert_eq!(shown_or_unknown(Some("Dell\x1bInc.")), "Dell_Inc.");
    }

    #[test]
    fn empty_table_says_so_and_states_the_plan() {
        let t = host_table(&[]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].starts_with("ID  IP  HOSTNAME  VENDOR/PRODUCT"),
            "{t}"
        );
        assert_eq!(lines[1], "(no hosts)");
        assert!(lines[2].starts_with("role plan: "), "{t}");
        assert!(t.contains("  problem: missing 1 bootstrap"), "{t}");
        assert!(t.lines().all(|l| l == l.trim_end()), "{t:?}");
    }
}
