//! The signals that stop a long-running command: SIGINT (Ctrl-C), SIGTERM
//! (a service manager, `kill`) and SIGHUP (the terminal closed). A command
//! that owns processes (site services, VMs) waits for them and stops what
//! it started, instead of dying with its children left running. A signal
//! the command was started with ignored (`nohup`, a background job) stays
//! ignored; a second stop signal while it stops ends it at once.

use nix::sys::signal::Signal as Number;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// Exit status after a second stop signal (128 + SIGINT, as shells do).
const FORCED_EXIT: i32 = 130;

/// The stop signals, registered once; [`StopSignals::recv`] waits for the
/// next.
#[derive(Debug)]
pub struct StopSignals {
    interrupt: Option<Signal>,
    terminate: Option<Signal>,
    hangup: Option<Signal>,
}

fn register(name: &str, number: i32, kind: SignalKind, ignored: u64) -> Option<Signal> {
    if ignored_in(ignored, number) {
        tracing::debug!(signal = name, "ignored when started: left ignored");
        return None;
    }
    signal(kind)
        .map_err(|e| tracing::warn!(signal = name, error = %e, "cannot handle the signal"))
        .ok()
}

/// Whether signal `number` is set in a `SigIgn` mask.
fn ignored_in(mask: u64, number: i32) -> bool {
    (1..=64).contains(&number) && mask & (1u64 << (number - 1)) != 0
}

/// The `SigIgn` mask of this process (`/proc/self/status`); 0 if unread.
fn ignored_mask() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| parse_sig_ign(&s))
        .unwrap_or(0)
}

fn parse_sig_ign(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

async fn next(s: &mut Option<Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

impl StopSignals {
    /// Registers SIGINT, SIGTERM and SIGHUP, except one the process was
    /// started with ignored; one that cannot be registered is named in a
    /// warning and keeps its default action.
    pub fn register() -> StopSignals {
        let ignored = ignored_mask();
        StopSignals {
            interrupt: register(
                "SIGINT",
                Number::SIGINT as i32,
                SignalKind::interrupt(),
                ignored,
            ),
            terminate: register(
                "SIGTERM",
                Number::SIGTERM as i32,
                SignalKind::terminate(),
                ignored,
            ),
            hangup: register(
                "SIGHUP",
                Number::SIGHUP as i32,
                SignalKind::hangup(),
                ignored,
            ),
        }
    }

    /// The name of the next stop signal received.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            () = next(&mut self.interrupt) => "SIGINT",
            () = next(&mut self.terminate) => "SIGTERM",
            () = next(&mut self.hangup) => "SIGHUP",
        }
    }

    /// From now on, the next stop signal ends the process at once (exit
    /// 130): the operator's second Ctrl-C while it stops.
    pub fn exit_on_next(mut self) {
        tokio::spawn(async move {
            let name = self.recv().await;
            // Not `eprintln!`: stderr may be a terminal that is gone.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!("harmony: {name} again: exiting now, without waiting for the stop\n")
                    .as_bytes(),
            );
            std::process::exit(FORCED_EXIT);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn each_stop_signal_is_named_when_it_comes() {
        let mut signals = StopSignals::register();
        for (sig, name) in [
            (nix::sys::signal::Signal::SIGHUP, "SIGHUP"),
            (nix::sys::signal::Signal::SIGTERM, "SIGTERM"),
            (nix::sys::signal::Signal::SIGINT, "SIGINT"),
        ] {
            nix::sys::signal::raise(sig).unwrap();
            let got = tokio::time::timeout(Duration::from_secs(5), signals.recv())
                .await
                .unwrap_or_else(|_| panic!("{name} not seen within 5 s"));
            assert_eq!(got, name);
        }
    }

    #[test]
    fn a_signal_ignored_at_start_is_read_from_the_status_mask() {
        // As `nohup` starts a program: SIGHUP (bit 0) ignored, with SIGPIPE.
        let status = "Name:\tharmony\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000001001\n";
        let mask = parse_sig_ign(status).unwrap();
        assert!(ignored_in(mask, Number::SIGHUP as i32));
        assert!(ignored_in(mask, 13));
        assert!(!ignored_in(mask, Number::SIGINT as i32));
        assert!(!ignored_in(mask, Number::SIGTERM as i32));
        assert!(!ignored_in(mask, 0) && !ignored_in(mask, 65));
        assert_eq!(parse_sig_ign("Name:\tx\n"), None);
    }
}
