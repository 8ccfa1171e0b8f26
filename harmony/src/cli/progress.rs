//! Progress lines for a terminal, drawn from the domain's events while a
//! Score runs (`harmony inventory discover`): one line per host found,
//! conflict, rejected peer and finished scan, on stderr.

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
