//! The command line's shape: clap types for `harmony` and its `inventory`
//! subcommands. Values that need the domain's validation (network, role,
//! host, host name) stay strings here and are parsed by the commands, so
//! that their errors name the field and value the way the domain does.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use super::output::JSON_FIELDS;

#[derive(Debug, Parser)]
#[command(
    name = "harmony",
    version,
    about = "Harmony: bare-metal OKD installation"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The inventory: discovered hosts, their hardware and roles.
    #[command(subcommand)]
    Inventory(InventoryCmd),
    /// The site file: the cluster, the provisioning network, the services
    /// backend, the switches and the expected hosts (see examples/site.yaml).
    #[command(subcommand)]
    Site(SiteCmd),
    /// Install the cluster the site file describes from the discovered hosts
    /// with roles (OKDInstallationScore: bootstrap, control plane, workers).
    Install(InstallArgs),
    /// The virtual lab (README command 1): QEMU machines PXE booting on an
    /// Open vSwitch network in a namespace, discovered and installed by
    /// `harmony install` run as an operator runs it, with a summary table.
    Lab(LabArgs),
}

#[derive(Debug, Args)]
pub struct LabArgs {
    /// Machines: 1 bootstrap, 3 control-plane, the rest workers (5-32).
    #[arg(long, default_value_t = 5)]
    pub hosts: usize,
    /// Leave the lab up after the flow (until Ctrl-C, SIGTERM or `--down`).
    #[arg(long)]
    pub keep: bool,
    /// Take down the lab kept up in `--dir`, and nothing else.
    #[arg(long)]
    pub down: bool,
    /// Kill Harmony in the middle of the control-plane stage, then resume.
    #[arg(long)]
    pub crash_test: bool,
    /// The lab's files (absolute; emptied first).
    #[arg(long, value_name = "DIR", default_value = "/var/tmp/harmony-lab/site")]
    pub dir: PathBuf,
    /// The static inventory agent (`cargo agent`).
    #[arg(
        long,
        value_name = "PATH",
        default_value = "target/x86_64-unknown-linux-musl/agent/harmony-inventory-agent"
    )]
    pub agent: PathBuf,
    /// Debian's kernel package cache.
    #[arg(long, value_name = "DIR", default_value = "/var/tmp/harmony-lab")]
    pub cache: PathBuf,
    /// `tcg` (works in nested virtual machines) or `kvm`.
    #[arg(long, default_value = "tcg")]
    pub accel: String,
    /// Each machine's memory, MiB.
    #[arg(long, default_value_t = 768)]
    pub memory: u32,
    /// The whole flow must end within this.
    #[arg(long, default_value = "40m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Show the TUI while the flow runs: `auto` (when stdout is a terminal
    /// and `harmony-tui` is next to `harmony`), `always`, `never`.
    #[arg(long, default_value = "auto")]
    pub tui: String,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The site file (YAML), e.g. examples/site.yaml.
    #[arg(long, value_name = "FILE")]
    pub site: PathBuf,
    /// Print the whole plan in order (every DHCP entry, DNS record, file,
    /// load-balancer backend, switch change, reboot, wait) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Finish the interrupted installation the step log has open (refused
    /// when there is none).
    #[arg(long)]
    pub resume: bool,
    /// The static inventory agent (from `cargo agent`) whose SHA-256 the boot
    /// files pin [default: the one already published in the HTTP root].
    #[arg(long, value_name = "PATH")]
    pub agent: Option<PathBuf>,
    /// Stop the site's services when the installation ends [default: keep
    /// serving (the cluster's API and ingress go through the load balancer)
    /// until Ctrl-C or SIGTERM].
    #[arg(long)]
    pub stop_when_done: bool,
    /// Run discovery only (the pinned hosts' ports to access, the assets,
    /// the boot files and the agent, the expected hosts found, the pinned
    /// roles), then stop: the installation is the next run.
    #[arg(long)]
    pub discovery_only: bool,
    #[command(flatten)]
    pub db: DbArg,
}

#[derive(Debug, Subcommand)]
pub enum SiteCmd {
    /// Validate a site file and print a summary of it (exit 2 and the
    /// problems, each with its field path and value, when it is invalid).
    Check {
        /// The site file (YAML), e.g. examples/site.yaml.
        #[arg(long, value_name = "FILE")]
        site: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct DbArg {
    /// Inventory database [default: $HARMONY_DB, else the user data dir's harmony/inventory.sqlite3].
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum InventoryCmd {
    /// Scan the provisioning network for inventory agents until the expected
    /// number of hosts is known (OKDSetup01Inventory); stores what answers.
    Discover {
        /// The network to scan, e.g. 192.168.77.0/24 (IPv4 or IPv6).
        #[arg(long, value_name = "CIDR")]
        network: String,
        /// The agents' port.
        #[arg(long, default_value_t = crate::inventory_model::DEFAULT_PORT)]
        port: u16,
        /// Hosts to wait for (bootstrap + control plane + workers).
        #[arg(long, default_value_t = 1)]
        expected: usize,
        /// Give up after this long (e.g. 30s, 20m).
        #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
        timeout: Duration,
        /// Pause between scans.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        interval: Duration,
        /// Print what it would do (the plan) and change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// List the hosts, unassigned first.
    #[command(after_long_help = JSON_FIELDS)]
    List {
        #[command(flatten)]
        db: DbArg,
        /// Print a JSON array instead of a table (fields: see --help).
        #[arg(long)]
        json: bool,
    },
    /// Show one host: summary, full hardware, recent events.
    #[command(after_long_help = JSON_FIELDS)]
    Show {
        /// Host id (uuid:..., serial:..., macs:...), IP address or assigned host name.
        host: String,
        #[command(flatten)]
        db: DbArg,
        /// Print one JSON object (fields: see --help).
        #[arg(long)]
        json: bool,
    },
    /// Give a host a role (or `none` to unassign it) and a host name.
    Assign {
        /// Host id (uuid:..., serial:..., macs:...), IP address or assigned host name.
        host: String,
        /// bootstrap | control-plane (or master) | worker | none.
        role: String,
        /// RFC 1123 host name [default: the host's current one, else bootstrap / master-N / worker-N].
        #[arg(long, value_name = "NAME")]
        hostname: Option<String>,
        /// Refuse (exit 2) if the host is unfit for the role or the role is already full.
        #[arg(long)]
        check: bool,
        #[command(flatten)]
        db: DbArg,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn assign_parses_its_arguments() {
        let cli = Cli::try_parse_from([
            "harmony",
            "inventory",
            "assign",
            "10.0.0.1",
            "worker",
            "--hostname",
            "w1",
            "--check",
            "--db",
            "/tmp/x",
        ])
        .unwrap();
        let Command::Inventory(InventoryCmd::Assign {
            host,
            role,
            hostname,
            check,
            db,
        }) = cli.command
        else {
            panic!("not assign");
        };
        assert_eq!((host.as_str(), role.as_str()), ("10.0.0.1", "worker"));
        assert_eq!(hostname.as_deref(), Some("w1"));
        assert!(check);
        assert_eq!(db.db, Some(PathBuf::from("/tmp/x")));
    }
}
