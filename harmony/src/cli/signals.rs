//! The signals that stop a long-running command: SIGINT (Ctrl-C), SIGTERM
//! (a service manager, `kill`) and SIGHUP (the terminal closed). A command
//! that owns processes (site services, VMs) waits for them and stops what
//! it started, instead of dying with its children left running.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// The stop signals, registered once; [`StopSignals::recv`] waits for the
/// next.
#[derive(Debug)]
pub struct StopSignals {
    interrupt: Option<Signal>,
    terminate: Option<Signal>,
    hangup: Option<Signal>,
}

fn register(name: &str, kind: SignalKind) -> Option<Signal> {
    signal(kind)
        .map_err(|e| tracing::warn!(signal = name, error = %e, "cannot handle the signal"))
        .ok()
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
    /// Registers SIGINT, SIGTERM and SIGHUP; one that cannot be is named
    /// in a warning and keeps its default action.
    pub fn register() -> StopSignals {
        StopSignals {
            interrupt: register("SIGINT", SignalKind::interrupt()),
            terminate: register("SIGTERM", SignalKind::terminate()),
            hangup: register("SIGHUP", SignalKind::hangup()),
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
}
