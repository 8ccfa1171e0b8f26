//! `harmony install --site FILE [--dry-run] [--resume] [--agent PATH]
//! [--db PATH]`: the installation the site file describes, from the
//! discovered hosts with roles ([`OKDInstallationScore`]).
//!
//! The site file is validated first (exit 2 naming the field), then the
//! files the boot settings need are read (the cluster's public key, the
//! agent's digest), the Inventory opened and the [`InstallSpec`] made
//! ([`install_spec`]: errors name the field or the host, exit 2).
//!
//! Two sagas run in order on the same site: discovery (`OKDSetup01Site`
//! from the site file, [`discovery_score`]: pinned hosts' switch ports to
//! access, the `assets` staged, `default.ipxe`, `inventory.ks` and the agent
//! (`--agent`) published, the subnet scanned until the expected hosts are
//! known, pinned roles assigned), then the installation
//! (`OKDInstallationScore`, its spec made from the hosts discovery found).
//!
//! - `--dry-run` plans both over a [`PlanView`] of the Linux site (its
//!   current state read from Harmony's files, the switches' port status
//!   read, no service started, nothing else contacted) and prints every
//!   change in order; exit 0, nothing changed. Its spec needs the hosts
//!   discovered already.
//! - `--discovery-only` runs (or plans) discovery alone: the next run
//!   installs from the hosts it found.
//! - `--resume` goes on only when the step log has an open run of either
//!   saga.
//! - Without `--dry-run` the site file must have an `install` section
//!   ([`compose::check`], before anything starts); the site's switches are
//!   built and its services start ([`compose::install_topology`]), both
//!   sagas run with progress on stderr (a bar on a terminal, one line per
//!   step and phase otherwise), and each host's MACs are registered as its
//!   boot evidence. A failure stops the services and prints what failed, on
//!   which host and what was rolled back (the run is closed: the next one
//!   starts over); a run interrupted by a crash or a signal is finished by
//!   `--resume`. On success the services keep serving until SIGINT/SIGTERM
//!   (`--stop-when-done`: stop).
//!
//! Nothing secret is printed: the pull secret is read only when Harmony
//! runs `openshift-install` (into `install-config.yaml`, 0600), and the plan
//! holds names, addresses, paths and sizes.

use std::sync::Arc;
use std::time::Duration;

use super::args::InstallArgs;
use super::db_path;
use super::error::CliError;
use super::progress::show_progress;
use super::signals::StopSignals;
use super::site::invalid;
use crate::domain::{EventBus, Inventory, Maestro};
use crate::modules::okd::install::{InstallSpec, OKDInstallationScore, install_hosts};
use crate::modules::okd::setup01::OKDSetup01Site;
use crate::site::SiteFile;
use crate::site::compose::{self, InstallTopology};
use crate::site::discovery::{DISCOVERY_TIMEOUT, discovery_score};
use crate::site::inputs::{InputsError, read_inputs};
use crate::site::install::{AGENT_PATH, InstallInputs, install_spec, site_boot};
use crate::site::plan_view::PlanView;
use crate::site::switches::SiteSwitches;
use crate::site::topology::{SitePlan, plan};
use crate::store::SqliteStore;

/// The saga `--resume` looks for in the step log.
pub const SAGA: &str = "OKDInstallationScore";
/// The discovery saga that runs first (`OKDSetup01Site`).
pub const DISCOVERY_SAGA: &str = "OKDSetup01Inventory";
/// How often the served site's services are checked after the install.
const SUPERVISE_EVERY: Duration = Duration::from_secs(5);

pub fn run(args: InstallArgs) -> Result<(), CliError> {
    let file = SiteFile::load(&args.site)?;
    let SitePlan::Linux(config) = plan(&file).map_err(invalid)? else {
        return Err(CliError::Install(format!(
            "{}: `harmony install` drives a linux site (services.backend: linux); an OPNsense \
             site is not wired to the command yet",
            file.origin()
        )));
    };
    let crate::site::Backend::Linux(linux) = file.backend() else {
        return Err(CliError::Install("not a linux site".into()));
    };
    if !args.dry_run {
        // Before anything is read or started: what a real run needs.
        compose::check(&file).map_err(|e| CliError::Install(e.to_string()))?;
    }
    let agent = args
        .agent
        .clone()
        .unwrap_or_else(|| linux.http_root.as_path().join(AGENT_PATH));
    let inputs = read_inputs(&file, &agent).map_err(|e| match e {
        InputsError::Field(e) => CliError::InstallSpec(e),
        agent @ InputsError::Agent { .. } => CliError::Install(format!(
            "{agent}{}",
            if args.agent.is_none() {
                " (pass --agent PATH: the static agent `cargo agent` builds)"
            } else {
                ""
            }
        )),
    })?;
    // Discovery first: ports to access, OS assets, boot files and the agent
    // (published when given), the expected hosts, the pinned roles.
    let setup01 = discovery_score(
        &file,
        site_boot(&file, inputs.clone())?,
        args.agent.clone(),
        DISCOVERY_TIMEOUT,
    )?;

    let store = Arc::new(SqliteStore::open(&db_path(args.db.db.clone())?)?);
    // The store is also the step log (a crash resumes) and the host keys.
    let inventory = Inventory::new(store.clone(), EventBus::default()).with_step_log(store.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    runtime.block_on(async move {
        // Before any service starts: a signal from here on stops the run
        // and the services it started.
        let signals = StopSignals::register();
        if args.resume && !has_open_run(&inventory).await? {
            return Err(CliError::Install(format!(
                "--resume: the step log has no interrupted {DISCOVERY_SAGA} or {SAGA} run: \
                 nothing to resume (start one without --resume)"
            )));
        }
        if args.dry_run {
            let spec = if args.discovery_only {
                None
            } else {
                Some(install_spec(&file, &hosts(&inventory).await?, inputs)?)
            };
            let switches = SiteSwitches::build_if_used(&file)
                .await
                .map_err(|e| CliError::Install(e.to_string()))?;
            let view = PlanView::new(&config)
                .map_err(|e| CliError::Install(e.to_string()))?
                .with_switch(switches);
            return dry_run(&file, view, &setup01, spec, inventory, args.resume).await;
        }
        let site = compose::install_topology(&file, store)
            .await
            .map_err(|e| CliError::Install(e.to_string()))?;
        // Discovery alone: no installation inputs, the run ends after it.
        let inputs = (!args.discovery_only).then_some(inputs);
        install(
            site,
            inventory,
            &file,
            &setup01,
            inputs,
            args.stop_when_done,
            signals,
        )
        .await
    })
}

/// The Inventory's hosts.
async fn hosts(inventory: &Inventory) -> Result<Vec<crate::domain::HostRecord>, CliError> {
    let repo = inventory.repository().clone();
    Ok(tokio::task::spawn_blocking(move || repo.hosts())
        .await
        .map_err(|e| CliError::Install(format!("inventory task: {e}")))??)
}

/// Runs discovery then the installation on the started site, progress on
/// stderr. On failure the site's services are stopped and the error (what
/// failed, on which host, what was rolled back) returned. On success they
/// keep serving (the cluster's API and ingress go through HAProxy, hosts
/// keep booting from the HTTP root) until SIGINT or SIGTERM, or stop at
/// once with `stop_when_done`.
async fn install(
    site: InstallTopology,
    inventory: Inventory,
    file: &SiteFile,
    setup01: &OKDSetup01Site,
    inputs: Option<InstallInputs>,
    stop_when_done: bool,
    mut signals: StopSignals,
) -> Result<(), CliError> {
    let progress = tokio::spawn(show_progress(inventory.events().subscribe()));
    let maestro = Maestro::new(site, inventory);
    let result = tokio::select! {
        r = installation(&maestro, file, setup01, inputs) => r.map_err(Stop::Failed),
        name = signals.recv() => Err(Stop::Signal(name)),
    };
    // Let the last events reach the terminal, then stop drawing.
    tokio::time::sleep(Duration::from_millis(100)).await;
    progress.abort();
    let site = maestro.topology();
    let outcomes = match result {
        Ok(outcomes) => outcomes,
        Err(stop) => {
            signals.exit_on_next();
            if let Err(e) = site.stop().await {
                tracing::warn!(error = %e, "stopping the site's services");
            }
            return Err(CliError::Install(match stop {
                // A failed run is rolled back and closed in the step log
                // (only an interrupted one is resumed): the next run starts
                // again and finds in place what is still applied.
                Stop::Failed(e) => format!(
                    "{e}\nthe site's services are stopped; fix the cause and run \
                     `harmony install` again"
                ),
                // Stopped between two awaits, as a crash would: the step
                // log holds the run as interrupted.
                Stop::Signal(name) => format!(
                    "interrupted by {name}: the run stopped where it was and the site's \
                     services are stopped; `harmony install --resume` goes on from there"
                ),
            }));
        }
    };
    for outcome in outcomes {
        println!("{outcome}");
    }
    if !stop_when_done {
        eprintln!(
            "the site's services keep serving (DHCP, DNS, HTTP, load balancer for the \
             cluster's API and ingress); Ctrl-C or SIGTERM stops them"
        );
        serve_until_signal(site, &mut signals).await;
        signals.exit_on_next();
    }
    site.stop()
        .await
        .map_err(|e| CliError::Install(format!("stopping the site's services: {e}")))
}

/// Why a run ended early.
enum Stop {
    Failed(CliError),
    Signal(&'static str),
}

/// `OKDSetup01Site`, then (given the inputs) the spec from the hosts it
/// found and `OKDInstallationScore`; each saga's outcome.
async fn installation(
    maestro: &Maestro<InstallTopology>,
    file: &SiteFile,
    setup01: &OKDSetup01Site,
    inputs: Option<InstallInputs>,
) -> Result<Vec<crate::domain::Outcome>, CliError> {
    let discovered = maestro.interpret(setup01).await?;
    let Some(inputs) = inputs else {
        return Ok(vec![discovered]);
    };
    let records = hosts(maestro.inventory()).await?;
    let spec = install_spec(file, &records, inputs)?;
    let hosts = install_hosts(&spec, &records).map_err(|e| CliError::Install(e.to_string()))?;
    // A host's per-MAC script fetch is its boot, from whatever address.
    let evidence = maestro.topology().pxe_evidence();
    for h in &hosts {
        evidence.know_host(h.id.clone(), h.macs.clone());
    }
    let installed = maestro.interpret(&OKDInstallationScore::new(spec)).await?;
    Ok(vec![discovered, installed])
}
/// Keeps the site's services running (a dead one is started again, with a
/// warning) until SIGINT, SIGTERM or SIGHUP.
async fn serve_until_signal(site: &InstallTopology, signals: &mut StopSignals) {
    loop {
        tokio::select! {
            name = signals.recv() => {
                tracing::info!(signal = name, "stopping the site's services");
                return;
            }
            () = tokio::time::sleep(SUPERVISE_EVERY) => {
                match site.ensure_running().await {
                    Ok(again) if !again.is_empty() => {
                        tracing::warn!(services = ?again, "site services started again");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "a site service cannot be started again"),
                }
            }
        }
    }
}

/// Prints the plan, in order (discovery, then the installation); changes
/// nothing. The switches' ports are read; nothing else is contacted.
async fn dry_run(
    file: &SiteFile,
    view: PlanView<SiteSwitches>,
    setup01: &OKDSetup01Site,
    spec: Option<InstallSpec>,
    inventory: Inventory,
    resume: bool,
) -> Result<(), CliError> {
    let maestro = Maestro::new(view, inventory);
    let mut plans = vec![maestro.plan(setup01).await?];
    if let Some(spec) = spec {
        plans.push(maestro.plan(&OKDInstallationScore::new(spec)).await?);
    }
    println!(
        "dry run of {} ({}){}: nothing is changed",
        file.origin(),
        file.cluster_domain(),
        if resume {
            ", resuming the open run"
        } else {
            ""
        }
    );
    for p in plans {
        print!("{p}");
        if p.is_empty() {
            println!();
        }
    }
    Ok(())
}

async fn has_open_run(inventory: &Inventory) -> Result<bool, CliError> {
    let log = inventory.step_log().clone();
    let open = tokio::task::spawn_blocking(move || -> Result<bool, String> {
        for saga in [DISCOVERY_SAGA, SAGA] {
            if log.open_run(saga).map_err(|e| e.to_string())?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    })
    .await
    .map_err(|e| CliError::Install(format!("step log task: {e}")))?
    .map_err(|e| CliError::Install(format!("step log: {e}")))?;
    Ok(open)
}
