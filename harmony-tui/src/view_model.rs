//! What the view shows, computed when the state changes (never per frame):
//! a host's table cells, its fitness problems and its boot plan, the event
//! log lines, and the layout figures both the state and the view need.
//! Depends on the domain only; `app` and `ui` both use it, it uses neither.

use harmony::domain::roles::format_gib;
use harmony::domain::text::{MAX_TEXT, safe_text};
use harmony::domain::{Event, HostRecord, fitness_messages, flag_messages};
use harmony::modules::okd::boot_plan::{HostNetwork, plan_boot};

/// Height of the event log pane, borders included.
pub const LOG_HEIGHT: u16 = 9;
/// Rows of the layout outside the main area: plan line, log, help line.
pub const CHROME: u16 = 1 + LOG_HEIGHT + 1;

/// Table body rows visible in a terminal `height` rows high.
pub fn table_rows_for_height(height: u16) -> u16 {
    // Borders (2) and the header (1).
    height.saturating_sub(CHROME).saturating_sub(3)
}

/// Text for the terminal through the one sanitiser (messages that may
/// carry untrusted strings: errors, reasons, typed input).
pub fn shown(s: &str) -> String {
    safe_text(s, MAX_TEXT)
}

/// One host, with everything the view shows about it computed once per
/// reload (not per frame).
#[derive(Debug, Clone)]
pub struct HostRow {
    pub record: HostRecord,
    /// hostname/IP, vendor/product, threads, memory, disks, NICs, role, phase.
    pub cells: [String; 8],
    /// Why the host is unfit for its role; empty when fit or unassigned.
    pub problems: Vec<String>,
    /// Its boot plan under the site's policy, as lines (the same plan
    /// `BootArtefacts` writes), or why there is none.
    pub boot: Result<Vec<String>, String>,
}

impl HostRow {
    /// The row of `record` under its site network policy.
    pub fn new(record: HostRecord, network: &HostNetwork) -> Self {
        let s = &record.summary;
        let name = match &record.hostname {
            Some(h) => format!("{h} {}", record.ip),
            None => record.ip.to_string(),
        };
        // Summary vendor and product come from safe text.
        let vp = format!(
            "{} {}",
            s.vendor.as_deref().unwrap_or("?"),
            s.product.as_deref().unwrap_or("?")
        );
        let mut problems = fitness_messages(&record.hardware, record.role);
        problems.extend(flag_messages(&record));
        let role = match record.role {
            Some(r) if !problems.is_empty() => format!("! {r}"),
            Some(r) => r.to_string(),
            None => "-".into(),
        };
        let cells = [
            name,
            vp,
            s.cpu_threads.map_or_else(|| "?".into(), |t| t.to_string()),
            s.memory_bytes.map_or_else(|| "?".into(), size),
            format!("{} / {}", s.disk_count, size(s.disk_bytes)),
            s.nic_count.to_string(),
            role,
            record.phase.to_string(),
        ];
        let boot = plan_boot(&record, network)
            .map(|plan| plan.lines())
            .map_err(|e| shown(&e.to_string()));
        Self {
            record,
            cells,
            problems,
            boot,
        }
    }

    pub fn unfit(&self) -> bool {
        !self.problems.is_empty()
    }
}

/// `894.3 GiB`, or `3.5 TiB` from 1 TiB up.
pub fn size(bytes: u64) -> String {
    const TIB: u64 = 1 << 40;
    if bytes >= TIB {
        #[allow(clippy::cast_precision_loss)]
        let t = bytes as f64 / TIB as f64;
        format!("{t:.1} TiB")
    } else {
        format_gib(bytes)
    }
}

/// One log line for a harmony event (untrusted parts through [`shown`]).
pub fn describe(event: &Event) -> String {
    match event {
        Event::ScoreStarted { score } => format!("score {} started", shown(score)),
        Event::ScoreFinished { score, result } => match result {
            Ok(o) => format!("score {} finished: {}", shown(score), shown(&o.to_string())),
            Err(e) => format!("score {} failed: {}", shown(score), shown(e)),
        },
        Event::HostDiscovered { host, ip } => format!("host discovered: {host} at {ip}"),
        Event::HostUpdated {
            host,
            ip,
            ip_changed,
        } => {
            if *ip_changed {
                format!("host updated: {host} moved to {ip}")
            } else {
                format!("host updated: {host} at {ip}")
            }
        }
        Event::HostLost { host } => format!("host lost: {host}"),
        Event::HostConflict { ip, mac, existing } => {
            format!("conflict: {ip} claims {mac}, owned by {existing}")
        }
        Event::PeerRejected { ip, reason } => format!("rejected {ip}: {}", shown(reason)),
        Event::HostPhaseChanged { host, from, to } => format!("host {host}: {from} to {to}"),
        Event::Progress { task, done, total } => format!("{}: {done}/{total}", shown(task)),
        Event::StepDone {
            task,
            done,
            total,
            changed,
            step,
        } => format!(
            "{} [{done}/{total}] {}{}",
            shown(task),
            if *changed { "" } else { "in place: " },
            shown(step)
        ),
        Event::ScanCompleted {
            range,
            found,
            rejected,
            elapsed_ms,
            ..
        } => format!("scan of {range}: {found} agent(s), {rejected} rejected, {elapsed_ms} ms"),
        Event::ScanFailed { range, reason } => {
            format!("scan of {range} failed: {}", shown(reason))
        }
    }
}
