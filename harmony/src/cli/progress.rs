//! Progress drawn from the domain's events while a Score runs, on stderr:
//! one line per host found, conflict, rejected peer, finished scan, saga
//! step done and install phase changed (`harmony inventory discover`,
//! `harmony install`). On a terminal, [`show_progress`] draws a bar of a
//! saga's steps (`indicatif`) and prints the other lines above it.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::broadcast::{Receiver, error::RecvError};

use crate::domain::Event;
use crate::domain::text::{MAX_TEXT, safe_text};

/// The discovery's `Progress` events (hosts found of expected) are shown.
const DISCOVERY_TASK: &str = crate::modules::okd::setup01::DISCOVERY_PROGRESS;

/// The line shown for `event`, or `None` for events the CLI does not show.
/// Text that quotes a peer goes through [`safe_text`].
pub fn progress_line(event: &Event) -> Option<String> {
    let line = match event {
        Event::HostDiscovered { host, ip } => format!("new host {host} at {ip}"),
        Event::HostUpdated { host, ip, .. } => format!("known host {host} at {ip}"),
        Event::HostConflict { ip, mac, existing } => {
            format!("conflict: {ip} claims {mac}, owned by {existing}")
        }
        Event::PeerRejected { ip, reason } => {
            format!("rejected {ip}: {}", safe_text(reason, MAX_TEXT))
        }
        Event::ScanCompleted {
            range,
            found,
            rejected,
            store_errors,
            local_errors,
            given_up,
            arp_responders,
            syn_responders,
            elapsed_ms,
        } => {
            let mut line = format!(
                "scanned {}: {found} agent(s), {rejected} rejected, \
                 {local_errors} local error(s), {given_up} address(es) given up",
                safe_text(range, MAX_TEXT)
            );
            if *store_errors > 0 {
                line.push_str(&format!(", {store_errors} not stored (store error)"));
            }
            if let Some(n) = arp_responders {
                line.push_str(&format!(", {n} answered the ARP sweep"));
            }
            if let Some(n) = syn_responders {
                line.push_str(&format!(", {n} answered the SYN sweep"));
            }
            line + &format!(" in {elapsed_ms} ms")
        }
        Event::ScanFailed { range, reason } => format!(
            "scan of {} failed: {}",
            safe_text(range, MAX_TEXT),
            safe_text(reason, MAX_TEXT)
        ),
        Event::Progress { task, done, total } if task == DISCOVERY_TASK => {
            format!("{done} of {total} expected hosts known")
        }
        Event::StepDone {
            task,
            done,
            total,
            changed,
            step,
        } => format!(
            "{} [{done}/{total}] {}{}",
            terminal_text(task),
            if *changed { "" } else { "in place: " },
            terminal_text(step)
        ),
        Event::HostPhaseChanged { host, from, to } => format!("host {host}: {from} -> {to}"),
        _ => return None,
    };
    Some(line)
}

/// Prints [`progress_line`] of every event to stderr until every sender of
/// the channel is gone. Missed events (a lagging receiver) are skipped.
pub async fn print_progress(mut rx: Receiver<Event>) {
    loop {
        match rx.recv().await {
            Ok(event) => {
                if let Some(line) = progress_line(&event) {
                    eprintln!("{line}");
                }
            }
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => break,
        }
    }
}

/// A step's text for a terminal: Harmony's own words (which may quote
/// validated names), so punctuation such as `->` stays, but control and
/// bidirectional-format characters become `_`; bounded to [`MAX_TEXT`].
fn terminal_text(s: &str) -> String {
    let hidden = |c: char| {
        c.is_control()
            || ('\u{200b}'..='\u{200f}').contains(&c)
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    };
    let mut out: String = s
        .chars()
        .take(MAX_TEXT)
        .map(|c| if hidden(c) { '_' } else { c })
        .collect();
    if s.chars().nth(MAX_TEXT).is_some() {
        out.push('…');
    }
    out
}

/// [`print_progress`] when stderr is not a terminal; on a terminal, a bar
/// of the saga's steps (position, total, the last step) with the other
/// lines printed above it. Ends when every sender is gone.
pub async fn show_progress(rx: Receiver<Event>) {
    if std::io::stderr().is_terminal() {
        draw_bar(rx).await;
    } else {
        print_progress(rx).await;
    }
}

async fn draw_bar(mut rx: Receiver<Event>) {
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {wide_msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    loop {
        match rx.recv().await {
            Ok(Event::StepDone {
                task,
                done,
                total,
                changed,
                step,
            }) => {
                bar.set_prefix(terminal_text(&task));
                bar.set_length(total);
                bar.set_position(done);
                let step = terminal_text(&step);
                if changed {
                    bar.println(format!("[{done}/{total}] {step}"));
                }
                bar.set_message(step);
            }
            Ok(event) => {
                if let Some(line) = progress_line(&event) {
                    bar.println(line);
                }
            }
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => break,
        }
    }
    bar.finish_and_clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejected_peer_cannot_drive_the_terminal() {
        let line = progress_line(&Event::PeerRejected {
            ip: "127.0.0.9".parse().unwrap(),
            reason: "invalid name \x1b[2J\u{202e}x\n".into(),
        })
        .unwrap();
        assert!(
            line.starts_with("rejected 127.0.0.9: invalid name "),
            "{line}"
        );
        assert!(
            !line.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{line:?}"
        );
    }

    #[test]
    fn the_scan_line_counts_every_refusal_and_local_trouble() {
        let line = |store_errors, arp_responders, syn_responders| {
            progress_line(&Event::ScanCompleted {
                range: "127.0.0.0/24".into(),
                found: 4,
                rejected: 3,
                store_errors,
                local_errors: 7,
                given_up: 2,
                arp_responders,
                syn_responders,
                elapsed_ms: 12,
            })
            .unwrap()
        };
        assert_eq!(
            line(0, None, None),
            "scanned 127.0.0.0/24: 4 agent(s), 3 rejected, 7 local error(s), \
             2 address(es) given up in 12 ms"
        );
        assert_eq!(
            line(1, None, None),
            "scanned 127.0.0.0/24: 4 agent(s), 3 rejected, 7 local error(s), \
             2 address(es) given up, 1 not stored (store error) in 12 ms"
        );
        assert_eq!(
            line(0, Some(5), None),
            "scanned 127.0.0.0/24: 4 agent(s), 3 rejected, 7 local error(s), \
             2 address(es) given up, 5 answered the ARP sweep in 12 ms"
        );
        assert_eq!(
            line(0, None, Some(9)),
            "scanned 127.0.0.0/24: 4 agent(s), 3 rejected, 7 local error(s), \
             2 address(es) given up, 9 answered the SYN sweep in 12 ms"
        );
    }

    #[test]
    fn a_step_line_says_what_changed_or_why_nothing_was_to_do() {
        let step = |changed, step: &str| {
            progress_line(&Event::StepDone {
                task: "OKDInstallationScore".into(),
                done: 3,
                total: 76,
                changed,
                step: step.into(),
            })
            .unwrap()
        };
        assert_eq!(
            step(true, "api.lab.example.org -> 192.0.2.5"),
            "OKDInstallationScore [3/76] api.lab.example.org -> 192.0.2.5"
        );
        assert_eq!(
            step(false, "already reserved\x1b[2J"),
            "OKDInstallationScore [3/76] in place: already reserved_[2J"
        );
        let line = step(false, "bad \x1b[2J\u{202e}");
        assert!(
            !line.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{line:?}"
        );
        let phase = progress_line(&Event::HostPhaseChanged {
            host: "uuid:0e7a2c1c-3f1e-4c1e-9a2b-1c2d3e4f5a6b".parse().unwrap(),
            from: crate::domain::InstallPhase::BootConfigured,
            to: crate::domain::InstallPhase::Installing,
        })
        .unwrap();
        assert_eq!(
            phase,
            "host uuid:0e7a2c1c-3f1e-4c1e-9a2b-1c2d3e4f5a6b: boot-configured -> installing"
        );
    }

    #[test]
    fn only_discovery_progress_is_shown() {
        let p = |task: &str| Event::Progress {
            task: task.into(),
            done: 1,
            total: 3,
        };
        assert_eq!(
            progress_line(&p(DISCOVERY_TASK)).as_deref(),
            Some("1 of 3 expected hosts known")
        );
        assert_eq!(progress_line(&p("other")), None);
        assert_eq!(
            progress_line(&Event::ScoreStarted { score: "x".into() }),
            None
        );
    }
}
