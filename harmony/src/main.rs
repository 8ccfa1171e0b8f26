//! `harmony`: the command line over the inventory store: list the
//! discovered hosts, show one host's hardware and history, assign roles.
//!
//! Exit codes: 0 ok, 2 usage or validation error (bad argument, invalid
//! value, `--check` refused), 1 anything else (unknown host, store error).

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Args, Parser, Subcommand};
use harmony::domain::roles::format_gib;
use harmony::domain::{
    HostId, HostRecord, Hostname, InventoryRepository, Role, RolePlan, default_hostname,
    fitness_messages,
};
use harmony::store::SqliteStore;
use serde_json::{Value, json};

const JSON_FIELDS: &str = "\
JSON output (--json) of `list` is an array of objects, of `show` one object, with these fields:
  id            string   stable host id: uuid:..., serial:... or macs:...
  ip            string   address the agent answered on
  macs          [string] permanent MACs of the physical NICs
  hostname      string?  assigned host name (null when none)
  role          string?  bootstrap | control-plane | worker (null when none)
  phase         string   discovered | role-assigned | boot-configured | installing | installed | failed | decommissioned
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
`show` adds:
  inventory     object   the agent's full hardware document
  events        [object] recent events: {at, kind, detail}";

#[derive(Debug, Parser)]
#[command(
    name = "harmony",
    version,
    about = "Harmony: bare-metal OKD installation"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The inventory: discovered hosts, their hardware and roles.
    #[command(subcommand)]
    Inventory(InventoryCmd),
}

#[derive(Debug, Args)]
struct DbArg {
    /// Inventory database [default: $HARMONY_DB, else the user data dir's harmony/inventory.sqlite3].
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum InventoryCmd {
    /// Scan the provisioning network for inventory agents until the expected
    /// number of hosts is known (OKDSetup01Inventory); stores what answers.
    Discover {
        /// The network to scan, e.g. 192.168.77.0/24 (IPv4 or IPv6).
        #[arg(long, value_name = "CIDR")]
        network: String,
        /// The agents' port.
        #[arg(long, default_value_t = harmony::inventory_model::DEFAULT_PORT)]
        port: u16,
        /// Hosts to wait for (bootstrap + control plane + workers).
        #[arg(long, default_value_t = 1)]
        expected: usize,
        /// Give up after this long (e.g. 30s, 20m).
        #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        /// Pause between scans.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        interval: std::time::Duration,
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

/// A failure, with the exit code it maps to.
#[derive(Debug)]
enum CliError {
    /// Exit 2: the user's input is invalid.
    Usage(String),
    /// Exit 1.
    Other(String),
}

impl<E: std::error::Error> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError::Other(e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(m)) => {
            eprintln!("harmony: {m}");
            ExitCode::from(2)
        }
        Err(CliError::Other(m)) => {
            eprintln!("harmony: {m}");
            ExitCode::from(1)
        }
    }
}

fn open(db: DbArg) -> Result<SqliteStore, CliError> {
    let path = match db.db {
        Some(p) => p,
        None => match std::env::var_os("HARMONY_DB").filter(|v| !v.is_empty()) {
            Some(p) => PathBuf::from(p),
            None => SqliteStore::default_path()?,
        },
    };
    Ok(SqliteStore::open(&path)?)
}

fn run(cli: Cli) -> Result<(), CliError> {
    let Command::Inventory(cmd) = cli.command;
    match cmd {
        InventoryCmd::Discover {
            network,
            port,
            expected,
            timeout,
            interval,
            db,
        } => {
            let network: ipnetwork::IpNetwork = network
                .parse()
                .map_err(|e| CliError::Usage(format!("invalid --network {network:?}: {e}")))?;
            let mut score = harmony::modules::okd::OKDSetup01Inventory::new(network, expected);
            score.port = port;
            score.timeout = timeout;
            score.interval = interval;
            discover(open(db)?, score)
        }
        InventoryCmd::List { db, json } => list(&open(db)?, json),
        InventoryCmd::Show { host, db, json } => show(&open(db)?, &host, json),
        InventoryCmd::Assign {
            host,
            role,
            hostname,
            check,
            db,
        } => {
            // Validate the arguments before touching the store.
            let role = parse_role(&role)?;
            let hostname = hostname
                .map(|h| h.parse::<Hostname>())
                .transpose()
                .map_err(|e| CliError::Usage(e.to_string()))?;
            let selector = HostSelector::parse(&host)?;
            assign(&open(db)?, &selector, role, hostname, check)
        }
    }
}

/// The site as the CLI sees it: discovery needs no capability.
#[derive(Debug)]
struct CliSite;

impl harmony::domain::Topology for CliSite {
    fn name(&self) -> &str {
        "cli"
    }
}

/// Runs OKDSetup01Inventory, printing its events as progress lines.
fn discover(
    store: SqliteStore,
    score: harmony::modules::okd::OKDSetup01Inventory,
) -> Result<(), CliError> {
    use harmony::domain::{Event, EventBus, Inventory, Maestro};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let bus = EventBus::default();
        let mut rx = bus.subscribe();
        let printer = tokio::spawn(async move {
            loop {
                let event = match rx.recv().await {
                    Ok(e) => e,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                };
                let line = match event {
                    Event::HostDiscovered { host, ip } => format!("new host {host} at {ip}"),
                    Event::HostUpdated { host, ip, .. } => format!("known host {host} at {ip}"),
                    Event::HostConflict { ip, mac, existing } => {
                        format!("conflict: {ip} claims {mac}, owned by {existing}")
                    }
                    // Reasons quote peer data: escape anything unprintable.
                    Event::PeerRejected { ip, reason } => {
                        format!("rejected {ip}: {}", reason.escape_debug())
                    }
                    Event::ScanCompleted { range, found, rejected, elapsed_ms } => {
                        format!("scanned {range}: {found} agent(s), {rejected} rejected in {elapsed_ms} ms")
                    }
                    Event::ScanFailed { range, reason } => format!("scan of {range} failed: {reason}"),
                    Event::Progress { task, done, total } if task == "OKDSetup01Inventory" => {
                        format!("{done} of {total} expected hosts known")
                    }
                    _ => continue,
                };
                eprintln!("{line}");
            }
        });
        let maestro = Maestro::new(CliSite, Inventory::new(std::sync::Arc::new(store), bus));
        let result = maestro.interpret(&score).await;
        drop(maestro);
        let _ = printer.await;
        match result {
            Ok(outcome) => {
                println!("{outcome}");
                Ok(())
            }
            Err(e) => Err(CliError::Other(e.to_string())),
        }
    })
}

fn parse_role(s: &str) -> Result<Option<Role>, CliError> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    s.parse::<Role>()
        .map(Some)
        .map_err(|e| CliError::Usage(format!("{e} (or none to unassign)")))
}

/// How the user named a host.
#[derive(Debug)]
enum HostSelector {
    Id(HostId),
    Ip(IpAddr),
    Name(Hostname),
}

impl HostSelector {
    fn parse(s: &str) -> Result<Self, CliError> {
        if let Ok(id) = s.parse::<HostId>() {
            return Ok(Self::Id(id));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Self::Ip(ip));
        }
        match s.parse::<Hostname>() {
            Ok(h) => Ok(Self::Name(h)),
            Err(e) => Err(CliError::Usage(format!(
                "invalid host {:?}: not a host id (uuid:, serial:, macs:), an IP address or a host name ({})",
                e.value, e.reason
            ))),
        }
    }

    fn find(&self, store: &SqliteStore) -> Result<HostRecord, CliError> {
        if let Self::Id(id) = self {
            return store
                .host(id)?
                .ok_or_else(|| CliError::Other(format!("no host {id}")));
        }
        let hosts = store.hosts()?;
        let mut found: Vec<HostRecord> = hosts
            .into_iter()
            .filter(|h| match self {
                Self::Ip(ip) => h.ip == *ip,
                Self::Name(n) => h
                    .hostname
                    .as_ref()
                    .is_some_and(|hn| hn == n || hn.short() == n.as_str()),
                Self::Id(_) => false,
            })
            .collect();
        let what = match self {
            Self::Ip(ip) => format!("IP {ip}"),
            Self::Name(n) => format!("host name {n}"),
            Self::Id(id) => id.to_string(),
        };
        match found.len() {
            0 => Err(CliError::Other(format!("no host with {what}"))),
            1 => Ok(found.remove(0)),
            n => Err(CliError::Other(format!(
                "{n} hosts match {what}; use the host id"
            ))),
        }
    }
}

fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn host_problems(h: &HostRecord) -> Vec<String> {
    fitness_messages(&h.hardware, h.role)
}

fn host_json(h: &HostRecord) -> Value {
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
    })
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "-".to_string(), ToString::to_string)
}

/// Removes control characters (untrusted agent strings go to a terminal).
fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

fn print_json(v: &Value) -> Result<(), CliError> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn list(store: &SqliteStore, json: bool) -> Result<(), CliError> {
    let hosts = store.hosts()?;
    if json {
        return print_json(&Value::Array(hosts.iter().map(host_json).collect()));
    }
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
            [
                h.id.to_string(),
                h.ip.to_string(),
                opt(&h.hostname),
                clean(&format!(
                    "{} {}",
                    s.vendor.as_deref().unwrap_or("?"),
                    s.product.as_deref().unwrap_or("?")
                )),
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
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(&header.map(String::from));
    for r in &rows {
        line(r);
    }
    if hosts.is_empty() {
        println!("(no hosts)");
    }
    print_plan(&plan_of(&hosts));
    Ok(())
}

fn plan_of(hosts: &[HostRecord]) -> RolePlan {
    RolePlan::new(hosts.iter().map(|h| (h.id.clone(), h.role)))
}

fn print_plan(plan: &RolePlan) {
    println!("role plan: {plan}");
    for p in plan.problems() {
        println!("  problem: {p}");
    }
}

fn show(store: &SqliteStore, host: &str, json: bool) -> Result<(), CliError> {
    let h = HostSelector::parse(host)?.find(store)?;
    let events = store.events(&h.id, 20)?;
    if json {
        let mut v = host_json(&h);
        v["inventory"] = serde_json::to_value(h.hardware.to_wire())?;
        v["events"] = Value::Array(
            events
                .iter()
                .map(|e| json!({"at": time(e.at), "kind": e.kind, "detail": e.detail}))
                .collect(),
        );
        return print_json(&v);
    }
    let s = &h.summary;
    println!("id:         {}", h.id);
    println!("ip:         {}", h.ip);
    let macs: Vec<String> = h.macs.iter().map(ToString::to_string).collect();
    println!("macs:       {}", macs.join(", "));
    println!("hostname:   {}", opt(&h.hostname));
    println!("role:       {}", opt(&h.role));
    println!("phase:      {}", h.phase);
    println!("first seen: {}", time(h.first_seen));
    println!("last seen:  {}", time(h.last_seen));
    println!(
        "system:     {} {}",
        clean(s.vendor.as_deref().unwrap_or("?")),
        clean(s.product.as_deref().unwrap_or("?"))
    );
    for p in host_problems(&h) {
        println!("unfit:      {p}");
    }
    // The boot plan: what its scos-boot iPXE script would carry (dry run).
    match harmony::modules::boot::install_device(&h.hardware) {
        Ok(dev) => println!("install on: {dev}"),
        Err(e) => println!("install on: none ({e})"),
    }
    match harmony::modules::okd::bond::plan_bond(
        &h.hardware,
        &Default::default(),
        harmony::modules::okd::bond::Addressing::Dhcp,
    ) {
        Ok(plan) => {
            println!("network plan:");
            for line in plan.to_string().lines() {
                println!("  {}", clean(line));
            }
            if let Ok(args) = plan.kernel_args() {
                let args: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
                println!("  kernel args: {}", args.join(" "));
            }
        }
        Err(e) => println!("network plan: none ({e})"),
    }
    println!("hardware:");
    println!("{}", serde_json::to_string_pretty(&h.hardware.to_wire())?);
    println!("events:");
    for e in &events {
        println!("  {}  {:<14} {}", time(e.at), e.kind, clean(&e.detail));
    }
    Ok(())
}

fn assign(
    store: &SqliteStore,
    selector: &HostSelector,
    role: Option<Role>,
    hostname: Option<Hostname>,
    check: bool,
) -> Result<(), CliError> {
    let h = selector.find(store)?;
    let hosts = store.hosts()?;
    let hostname = match (role, hostname) {
        (None, _) => None,
        (Some(_), Some(n)) => Some(n),
        (Some(r), None) => match &h.hostname {
            Some(n) => Some(n.clone()),
            None => Some(
                default_hostname(r, hosts.iter().filter_map(|o| o.hostname.as_ref()))
                    .map_err(|e| CliError::Other(e.to_string()))?,
            ),
        },
    };
    if let Some(n) = &hostname
        && let Some(other) = hosts
            .iter()
            .find(|o| o.id != h.id && o.hostname.as_ref() == Some(n))
    {
        return Err(CliError::Usage(format!(
            "invalid host name {:?}: already used by {}",
            n.as_str(),
            other.id
        )));
    }
    let unfit = fitness_messages(&h.hardware, role);
    let plan = plan_of(&hosts).with(&h.id, role);
    for p in &unfit {
        eprintln!("unfit: {p}");
    }
    let excess = plan.excess();
    if check && (!unfit.is_empty() || !excess.is_empty()) {
        for p in &excess {
            eprintln!("role plan: {p}");
        }
        return Err(CliError::Usage(format!(
            "--check: refusing to assign {} to {}",
            opt(&role),
            h.id
        )));
    }
    let rec = store.assign(&h.id, role, hostname)?;
    println!(
        "{}: role {}, hostname {}, phase {}",
        rec.id,
        opt(&rec.role),
        opt(&rec.hostname),
        rec.phase
    );
    print_plan(&plan);
    Ok(())
}
