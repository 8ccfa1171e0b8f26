//! The `harmony inventory` commands: `discover` runs OKDSetup01Inventory
//! with progress lines, `list` and `show` read the store, `assign` changes a
//! host's role through the domain's [`Inventory::assign`]. Arguments are
//! validated before the store is opened.

use std::sync::Arc;

use ipnetwork::IpNetwork;

use super::args::{DbArg, InventoryCmd};
use super::output::{self, opt};
use super::progress::print_progress;
use super::{CliError, HostSelector, db_path};
use crate::domain::{
    EventBus, Hostname, Inventory, Maestro, Role, Topology, default_hostname, fitness_messages,
};
use crate::modules::okd::OKDSetup01Inventory;
use crate::store::SqliteStore;

/// Runs one `inventory` subcommand.
pub fn run(cmd: InventoryCmd) -> Result<(), CliError> {
    match cmd {
        InventoryCmd::Discover {
            network,
            port,
            expected,
            timeout,
            interval,
            dry_run,
            db,
        } => {
            let network: IpNetwork = network.parse().map_err(|e: ipnetwork::IpNetworkError| {
                CliError::InvalidNetwork {
                    value: network.clone(),
                    reason: e.to_string(),
                }
            })?;
            let mut score = OKDSetup01Inventory::new(network, expected);
            score.port = port;
            score.timeout = timeout;
            score.interval = interval;
            discover(open(db)?, &score, dry_run)
        }
        InventoryCmd::List { db, json } => list(&open(db)?, json),
        InventoryCmd::Show { host, db, json } => {
            let selector = HostSelector::parse(&host)?;
            show(&open(db)?, &selector, json)
        }
        InventoryCmd::Assign {
            host,
            role,
            hostname,
            check,
            db,
        } => {
            let request = AssignRequest::parse(&host, &role, hostname.as_deref(), check)?;
            assign(&open(db)?, &request)
        }
    }
}

/// The Inventory on the database [`db_path`] resolves, with its own event bus.
pub fn open(db: DbArg) -> Result<Inventory, CliError> {
    let store = Arc::new(SqliteStore::open(&db_path(db.db)?)?);
    // The store is also the step log: an interrupted run resumes.
    Ok(Inventory::new(store.clone(), EventBus::default()).with_step_log(store))
}

/// The site as the CLI sees it: discovery needs no capability.
#[derive(Debug)]
struct CliSite;

impl Topology for CliSite {
    fn name(&self) -> &str {
        "cli"
    }
}

/// Runs OKDSetup01Inventory, printing its events as progress lines
/// (stderr) and its outcome (stdout).
pub fn discover(
    inventory: Inventory,
    score: &OKDSetup01Inventory,
    dry_run: bool,
) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    runtime.block_on(async move {
        if dry_run {
            // What it would do, read from the Inventory; nothing scanned.
            let plan = Maestro::new(CliSite, inventory).plan(score).await?;
            print!("{plan}");
            if plan.is_empty() {
                println!();
            }
            return Ok(());
        }
        let printer = tokio::spawn(print_progress(inventory.events().subscribe()));
        let maestro = Maestro::new(CliSite, inventory);
        let result = maestro.interpret(score).await;
        // The last sender goes with the Maestro: the printer drains and ends.
        drop(maestro);
        let _ = printer.await;
        let outcome = result?;
        println!("{outcome}");
        Ok(())
    })
}

/// Prints the host table (or a JSON array) and the role plan.
pub fn list(inventory: &Inventory, json: bool) -> Result<(), CliError> {
    let hosts = inventory.repository().hosts()?;
    if json {
        let all = hosts.iter().map(output::host_json).collect();
        print!("{}", output::json_text(&serde_json::Value::Array(all))?);
    } else {
        print!("{}", output::host_table(&hosts));
    }
    Ok(())
}

/// Prints one host: summary, boot plan, hardware, the last 20 events.
pub fn show(inventory: &Inventory, selector: &HostSelector, json: bool) -> Result<(), CliError> {
    let repo = inventory.repository();
    let h = selector.find(repo.as_ref())?;
    let events = repo.events(&h.id, 20)?;
    if json {
        print!(
            "{}",
            output::json_text(&output::host_detail_json(&h, &events)?)?
        );
    } else {
        print!("{}", output::host_page(&h, &events)?);
    }
    Ok(())
}

/// A validated `assign` command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignRequest {
    pub host: HostSelector,
    /// `None` unassigns.
    pub role: Option<Role>,
    pub hostname: Option<Hostname>,
    /// Refuse when the host is unfit or the role is full.
    pub check: bool,
}

impl AssignRequest {
    /// Validates the role (`none` unassigns), the host name and the host.
    pub fn parse(
        host: &str,
        role: &str,
        hostname: Option<&str>,
        check: bool,
    ) -> Result<Self, CliError> {
        let role = if role.eq_ignore_ascii_case("none") {
            None
        } else {
            Some(role.parse::<Role>().map_err(CliError::InvalidRole)?)
        };
        let hostname = hostname
            .map(str::parse::<Hostname>)
            .transpose()
            .map_err(CliError::InvalidHostname)?;
        Ok(Self {
            host: HostSelector::parse(host)?,
            role,
            hostname,
            check,
        })
    }
}

/// Gives the host its role and host name (default: its current one, else
/// the role's next free default name) through [`Inventory::assign`].
/// Fitness problems and role-count excess are warnings, or refusals with
/// `--check`; a host name another host has is refused.
pub fn assign(inventory: &Inventory, req: &AssignRequest) -> Result<(), CliError> {
    let repo = inventory.repository();
    let h = req.host.find(repo.as_ref())?;
    let hosts = repo.hosts()?;
    let hostname = match (req.role, &req.hostname) {
        (None, _) => None,
        (Some(_), Some(n)) => Some(n.clone()),
        (Some(role), None) => match &h.hostname {
            Some(n) => Some(n.clone()),
            None => Some(
                default_hostname(role, hosts.iter().filter_map(|o| o.hostname.as_ref()))
                    .map_err(|source| CliError::NoDefaultHostname { role, source })?,
            ),
        },
    };
    if let Some(n) = &hostname
        && let Some(other) = hosts
            .iter()
            .find(|o| o.id != h.id && o.hostname.as_ref() == Some(n))
    {
        return Err(CliError::HostnameTaken {
            name: n.as_str().to_string(),
            owner: other.id.clone(),
        });
    }
    let unfit = fitness_messages(&h.hardware, req.role);
    let plan = output::plan_of(&hosts).with(&h.id, req.role);
    for p in &unfit {
        eprintln!("unfit: {p}");
    }
    let excess = plan.excess();
    if req.check && (!unfit.is_empty() || !excess.is_empty()) {
        for p in &excess {
            eprintln!("role plan: {p}");
        }
        return Err(CliError::CheckRefused {
            role: opt(&req.role),
            host: h.id,
        });
    }
    let rec = inventory.assign(&h.id, req.role, hostname)?;
    println!("{}", output::assigned_line(&rec));
    print!("{}", output::plan_lines(&plan));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assign_arguments_are_validated_naming_field_and_value() {
        let e = AssignRequest::parse("10.0.0.1", "admin", None, false).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("invalid role \"admin\""), "{e}");
        let e = AssignRequest::parse("10.0.0.1", "worker", Some("\"; reboot"), false).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string().contains("invalid host name \"\\\"; reboot\""),
            "{e}"
        );
        let r = AssignRequest::parse("10.0.0.1", "NONE", Some("w1"), true).unwrap();
        assert_eq!(r.role, None);
        let r = AssignRequest::parse("w1", "master", None, false).unwrap();
        assert_eq!(r.role, Some(Role::ControlPlane));
    }
}
