//! A private Open vSwitch for tests and the lab: its own database
//! (`ovsdb-tool create`), `ovsdb-server` on a unix socket and
//! `ovs-vswitchd`, all under one temporary directory (pid files, control
//! sockets, logs; `OVS_RUNDIR`/`OVS_DBDIR`/`OVS_LOGDIR` point there), so it
//! never meets a system Open vSwitch. Bridges use the userspace datapath
//! (`datapath_type=netdev`): it works where the `openvswitch` kernel module
//! is missing (this project's CI machines have none) and keeps every
//! datapath inside the process. `ovs-vswitchd` may run inside a network
//! namespace (`ip netns exec`), where it opens the devices it bridges.
//!
//! Both daemons are [`Service`]s: stopped (SIGTERM, then SIGKILL) within a
//! deadline by [`OvsDaemons::stop`] or on drop.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::infra::process::{ProcessError, Program, Service};

use super::{OpenVSwitch, OvsConfig, OvsName};

/// Where Debian's `openvswitch-common` puts the schema.
pub const DEFAULT_SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";
/// How long each daemon may take to come up.
const START_WITHIN: Duration = Duration::from_secs(10);
/// Grace between SIGTERM and SIGKILL when stopping.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Starting or driving the private Open vSwitch failed.
#[derive(Debug, thiserror::Error)]
pub enum OvsDaemonsError {
    #[error("cannot create the Open vSwitch run directory: {0}")]
    RunDir(#[source] std::io::Error),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("{daemon} did not come up within {within:?}: {log}")]
    NotUp {
        daemon: &'static str,
        within: Duration,
        /// The end of its log.
        log: String,
    },
    #[error("invalid network namespace name {0:?}")]
    Namespace(String),
}

/// What to start.
#[derive(Debug, Clone)]
pub struct OvsDaemonsConfig {
    /// Run `ovs-vswitchd` in this network namespace (created by the caller).
    pub netns: Option<String>,
    pub schema: PathBuf,
}

impl Default for OvsDaemonsConfig {
    fn default() -> Self {
        Self {
            netns: None,
            schema: PathBuf::from(DEFAULT_SCHEMA),
        }
    }
}

/// A running private `ovsdb-server` + `ovs-vswitchd`.
#[derive(Debug)]
pub struct OvsDaemons {
    // Fields drop in order: the daemons stop before their directory goes.
    vswitchd: Option<Service>,
    ovsdb: Option<Service>,
    db_socket: PathBuf,
    vswitchd_ctl: PathBuf,
    dir: tempfile::TempDir,
}

fn valid_netns(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        && name.as_bytes()[0].is_ascii_alphanumeric()
}

impl OvsDaemons {
    /// Creates the database and starts both daemons; returns once
    /// `ovs-vswitchd` answers on its control socket.
    pub async fn start(config: OvsDaemonsConfig) -> Result<Self, OvsDaemonsError> {
        if let Some(ns) = &config.netns
            && !valid_netns(ns)
        {
            return Err(OvsDaemonsError::Namespace(ns.clone()));
        }
        let dir = tempfile::Builder::new()
            .prefix("harmony-ovs-")
            .tempdir()
            .map_err(OvsDaemonsError::RunDir)?;
        let d = dir.path().to_path_buf();
        let db = d.join("conf.db");
        let db_socket = d.join("db.sock");
        let vswitchd_ctl = d.join("ovs-vswitchd.ctl");
        let env = |p: Program| {
            p.env("OVS_RUNDIR", &d)
                .env("OVS_DBDIR", &d)
                .env("OVS_LOGDIR", &d)
                .env("OVS_SYSCONFDIR", &d)
        };
        env(Program::new("ovsdb-tool")
            .arg("create")
            .arg(&db)
            .arg(&config.schema))
        .run()
        .await?;

        let mut remote = std::ffi::OsString::from("--remote=punix:");
        remote.push(&db_socket);
        let ovsdb = env(Program::new("ovsdb-server")
            .arg(&db)
            .arg(remote)
            .arg(flag("--pidfile=", &d.join("ovsdb-server.pid")))
            .arg(flag("--unixctl=", &d.join("ovsdb-server.ctl")))
            .arg(flag("--log-file=", &d.join("ovsdb-server.log"))))
        .start(&d.join("ovsdb-server.out"))?;
        let mut this = Self {
            vswitchd: None,
            ovsdb: Some(ovsdb),
            db_socket,
            vswitchd_ctl,
            dir,
        };
        this.wait_for("ovsdb-server", |s| {
            let socket = s.db_socket.clone();
            async move { socket.exists() }
        })
        .await?;
        this.vsctl(&["--no-wait", "init"]).run().await?;

        let mut db_arg = std::ffi::OsString::from("unix:");
        db_arg.push(&this.db_socket);
        let args = [
            db_arg,
            flag("--pidfile=", &d.join("ovs-vswitchd.pid")),
            flag("--unixctl=", &this.vswitchd_ctl),
            flag("--log-file=", &d.join("ovs-vswitchd.log")),
        ];
        // `ip netns exec` execs the daemon: the service's pid is its pid.
        let vswitchd = match &config.netns {
            None => Program::new("ovs-vswitchd").args(args),
            Some(ns) => Program::new("ip")
                .args(["netns", "exec", ns.as_str(), "ovs-vswitchd"])
                .args(args),
        };
        this.vswitchd = Some(env(vswitchd).start(&d.join("ovs-vswitchd.out"))?);
        this.wait_for("ovs-vswitchd", |s| {
            let probe = s.appctl(&["version"]);
            async move { probe.run().await.is_ok() }
        })
        .await?;
        tracing::info!(dir = %this.dir.path().display(), "private Open vSwitch up");
        Ok(this)
    }

    /// Polls `ready` (bounded) while the daemon runs.
    async fn wait_for<F, Fut>(
        &mut self,
        daemon: &'static str,
        ready: F,
    ) -> Result<(), OvsDaemonsError>
    where
        F: Fn(&Self) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let until = Instant::now() + START_WITHIN;
        loop {
            if ready(self).await {
                return Ok(());
            }
            let service = match daemon {
                "ovsdb-server" => self.ovsdb.as_mut(),
                _ => self.vswitchd.as_mut(),
            };
            let running = service.is_some_and(Service::is_running);
            if !running || Instant::now() >= until {
                let log = self.log_tail(daemon);
                return Err(OvsDaemonsError::NotUp {
                    daemon,
                    within: START_WITHIN,
                    log,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The end of a daemon's log file and of its captured output.
    pub fn log_tail(&self, daemon: &str) -> String {
        let read = |p: PathBuf| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            let n = text.chars().count();
            crate::domain::text::safe_text(
                &text
                    .chars()
                    .skip(n.saturating_sub(1500))
                    .collect::<String>(),
                1500,
            )
        };
        format!(
            "{} | {}",
            read(self.dir.path().join(format!("{daemon}.log"))),
            read(self.dir.path().join(format!("{daemon}.out")))
        )
    }

    pub fn run_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn db_socket(&self) -> &Path {
        &self.db_socket
    }

    pub fn vswitchd_ctl(&self) -> &Path {
        &self.vswitchd_ctl
    }

    /// `ovs-vsctl` on this database (10 s limit), for setting up a lab.
    pub fn vsctl(&self, args: &[&str]) -> Program {
        let mut db = std::ffi::OsString::from("--db=unix:");
        db.push(&self.db_socket);
        Program::new("ovs-vsctl")
            .arg(db)
            .arg("--timeout=10")
            .args(args)
            .timeout(Duration::from_secs(12))
    }

    /// `ovs-appctl` against this `ovs-vswitchd` (10 s limit).
    pub fn appctl(&self, args: &[&str]) -> Program {
        Program::new("ovs-appctl")
            .arg("-t")
            .arg(&self.vswitchd_ctl)
            .arg("--timeout=10")
            .args(args)
            .timeout(Duration::from_secs(12))
    }

    /// Adds a bridge on the userspace datapath.
    pub async fn add_bridge(&self, bridge: &OvsName) -> Result<(), OvsDaemonsError> {
        let b = bridge.as_str();
        self.vsctl(&[
            "add-br",
            b,
            "--",
            "set",
            "bridge",
            b,
            "datapath_type=netdev",
        ])
        .run()
        .await?;
        Ok(())
    }

    /// The bridge as a [`Switch`](crate::domain::Switch).
    pub fn switch(&self, bridge: OvsName) -> OpenVSwitch {
        OpenVSwitch::new(OvsConfig::new(
            bridge,
            self.db_socket.clone(),
            self.vswitchd_ctl.clone(),
        ))
    }

    /// Stops both daemons (vswitchd first), each within the grace.
    pub async fn stop(mut self) -> Result<(), OvsDaemonsError> {
        for s in [self.vswitchd.take(), self.ovsdb.take()]
            .into_iter()
            .flatten()
        {
            let mut s = s;
            s.stop(STOP_GRACE).await?;
        }
        Ok(())
    }
}

impl Drop for OvsDaemons {
    fn drop(&mut self) {
        for s in [self.vswitchd.take(), self.ovsdb.take()]
            .into_iter()
            .flatten()
        {
            let mut s = s;
            if let Err(e) = s.stop_blocking(STOP_GRACE) {
                tracing::warn!("stopping {}: {e}", s.command_line());
            }
        }
    }
}

/// `PREFIX` and a path, as one argument.
fn flag(prefix: &str, path: &Path) -> std::ffi::OsString {
    let mut s = std::ffi::OsString::from(prefix);
    s.push(path);
    s
}
