//! `install-site --site FILE --agent PATH [--db PATH] [--plan]`: a site's
//! OKD installation written the way a Harmony user writes their own site
//! program. It composes the library's pieces directly:
//!
//! 1. the site file (validated: a bad value names its field);
//! 2. the Inventory that discovery filled (hosts, roles), which is also the
//!    step log (an interrupted run resumes) and the SSH host-key pins;
//! 3. the installation's spec from both, and the files the site names (the
//!    cluster's public key, the pull secret, the inventory agent);
//! 4. the topology: the Linux site's services started on this host with
//!    the SSH shell and the cluster's API (`--plan`: a read-only view of
//!    the site's files, nothing started or contacted);
//! 5. discovery first: `OKDSetup01Site` from the site file (pinned hosts'
//!    ports to access, boot files and the agent published, the expected
//!    hosts found, pinned roles assigned);
//! 6. then, from the hosts it found, the three Scores in order, each a saga
//!    of its own: `OKDSetup02Bootstrap`, `OKDSetup03ControlPlane`,
//!    `OKDSetup04Workers` (`harmony install` runs them as one
//!    `OKDInstallationScore`).
//!
//! A site program would add its own Scores around these (its switch, its
//! monitoring, its DNS provider) the same way.

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use harmony::cli::progress::show_progress;
use harmony::domain::{EventBus, Inventory, InventoryRepository, Maestro, Score};
use harmony::modules::okd::install::{
    InstallSite, InstallSpec, OKDSetup02Bootstrap, OKDSetup03ControlPlane, OKDSetup04Workers,
    install_hosts,
};
use harmony::modules::okd::setup01::OKDSetup01Site;
use harmony::site::SiteFile;
use harmony::site::compose::{InstallTopology, install_topology};
use harmony::site::discovery::{DISCOVERY_TIMEOUT, discovery_score};
use harmony::site::inputs::read_inputs;
use harmony::site::install::{InstallInputs, install_spec, site_boot};
use harmony::site::plan_view::PlanView;
use harmony::site::switches::SiteSwitches;
use harmony::site::topology::{SitePlan, plan};
use harmony::store::SqliteStore;

const USAGE: &str = "usage: install-site --site FILE --agent PATH [--db PATH] [--plan]";

struct Args {
    site: PathBuf,
    agent: PathBuf,
    db: PathBuf,
    plan: bool,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut site, mut agent, mut db, mut plan) = (None, None, None, false);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--site" => site = Some(PathBuf::from(value()?)),
            "--agent" => agent = Some(PathBuf::from(value()?)),
            "--db" => db = Some(PathBuf::from(value()?)),
            "--plan" => plan = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Args {
        site: site.ok_or("--site is required")?,
        agent: agent.ok_or("--agent is required")?,
        db: db.unwrap_or_else(|| PathBuf::from("inventory.sqlite3")),
        plan,
    })
}

fn main() -> ExitCode {
    harmony::cli::log_to_stderr();
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("install-site: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("install-site: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("install-site: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The installation's three stages, in order.
fn stages<T: InstallSite>(spec: &InstallSpec) -> Vec<Box<dyn Score<T>>> {
    vec![
        Box::new(OKDSetup02Bootstrap::new(spec.clone())),
        Box::new(OKDSetup03ControlPlane::new(spec.clone())),
        Box::new(OKDSetup04Workers::new(spec.clone())),
    ]
}

async fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let site = SiteFile::load(&args.site)?;
    let store = Arc::new(SqliteStore::open(&args.db)?);
    let inventory = Inventory::new(store.clone(), EventBus::default()).with_step_log(store.clone());
    let inputs = read_inputs(&site, &args.agent)?;
    let discovery = discovery_score(
        &site,
        site_boot(&site, inputs.clone())?,
        Some(args.agent.clone()),
        DISCOVERY_TIMEOUT,
    )?;

    if args.plan {
        let SitePlan::Linux(config) = plan(&site)? else {
            return Err("--plan reads a linux site's files (services.backend: linux)".into());
        };
        // The switches' ports are read; nothing else is contacted.
        let view = PlanView::new(&config)?.with_switch(SiteSwitches::build_if_used(&site).await?);
        let maestro = Maestro::new(view, inventory);
        print!("{}", maestro.plan(&discovery).await?);
        let spec = install_spec(&site, &store.hosts()?, inputs)?;
        for score in stages(&spec) {
            print!("{}", maestro.plan(score.as_ref()).await?);
        }
        return Ok(());
    }

    let topology = install_topology(&site, store.clone()).await?;
    let progress = tokio::spawn(show_progress(inventory.events().subscribe()));
    let maestro = Maestro::new(topology, inventory);
    let result = install(&maestro, &site, &discovery, &store, inputs).await;
    progress.abort();
    // This program stops the site's services when it ends; a site that
    // must keep serving the cluster's load balancer runs `harmony install`
    // (which keeps them up) or keeps this process running.
    maestro.topology().stop().await?;
    result
}

/// Discovery, then the installation's stages from the hosts it found.
async fn install(
    maestro: &Maestro<InstallTopology>,
    site: &SiteFile,
    discovery: &OKDSetup01Site,
    store: &SqliteStore,
    inputs: InstallInputs,
) -> Result<(), Box<dyn Error>> {
    println!("discovery: {}", maestro.interpret(discovery).await?);
    let records = store.hosts()?;
    let spec = install_spec(site, &records, inputs)?;
    // Each host's boot is recognised by its per-MAC script, from any address.
    let evidence = maestro.topology().pxe_evidence();
    for h in install_hosts(&spec, &records)? {
        evidence.know_host(h.id, h.macs);
    }
    for score in stages(&spec) {
        println!(
            "{}: {}",
            score.name(),
            maestro.interpret(score.as_ref()).await?
        );
    }
    Ok(())
}
