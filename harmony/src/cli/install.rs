//! `harmony install --site FILE [--dry-run] [--resume] [--agent PATH]
//! [--db PATH]`: the installation the site file describes, from the
//! discovered hosts with roles ([`OKDInstallationScore`]).
//!
//! The site file is validated first (exit 2 naming the field), then the
//! files the boot settings need are read (the cluster's public key, the
//! agent's digest), the Inventory opened and the [`InstallSpec`] made
//! ([`install_spec`]: errors name the field or the host, exit 2).
//!
//! - `--dry-run` plans over a [`PlanView`] of the Linux site (its current
//!   state read from Harmony's files, no service started, nothing
//!   contacted) and prints every change in order; exit 0, nothing changed.
//! - `--resume` goes on only when the step log has an open run of
//!   `OKDInstallationScore`.
//! - Running the installation for real from the command line is not wired
//!   yet (it needs the site's switch, SSH shell and cluster API composed
//!   with `LinuxSiteTopology`): it is refused with what to use instead.
//!
//! Nothing secret is read or printed: the pull secret stays in its file
//! (the role configs are URLs on the HTTP root) and the plan holds names,
//! addresses, paths and sizes.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::args::InstallArgs;
use super::error::CliError;
use super::inventory::open;
use super::site::invalid;
use crate::domain::{Inventory, Maestro, Sha256Digest};
use crate::modules::okd::install::{InstallSpec, OKDInstallationScore};
use crate::site::install::{
    AGENT_PATH, InstallInputs, InstallSpecError, install_spec, parse_public_keys,
};
use crate::site::plan_view::PlanView;
use crate::site::topology::{SitePlan, plan};
use crate::site::{LinuxServices, SiteFile};

/// The saga `--resume` looks for in the step log.
pub const SAGA: &str = "OKDInstallationScore";
/// The largest public key file read.
const MAX_KEY_FILE: u64 = 64 * 1024;
/// The largest agent binary hashed (the static agent is ~2 MiB).
const MAX_AGENT: u64 = 256 << 20;

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
    let keys_text = read_capped(
        file.site().ssh.cluster_public_key_file.as_path(),
        MAX_KEY_FILE,
    )
    .map_err(|e| field(&file, "ssh.cluster_public_key_file", e))?;
    let ssh_keys = parse_public_keys(&file, &String::from_utf8_lossy(&keys_text))?;
    let agent_sha256 = agent_digest(&args, linux)?;
    let agent_path = AGENT_PATH
        .parse()
        .map_err(|e| CliError::Install(format!("agent path {AGENT_PATH}: {e}")))?;

    let inventory = open(args.db)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    runtime.block_on(async move {
        if args.resume && !has_open_run(&inventory).await? {
            return Err(CliError::Install(format!(
                "--resume: the step log has no interrupted {SAGA} run: nothing to resume \
                 (start one without --resume)"
            )));
        }
        let repo = inventory.repository().clone();
        let records = tokio::task::spawn_blocking(move || repo.hosts())
            .await
            .map_err(|e| CliError::Install(format!("inventory task: {e}")))??;
        let spec = install_spec(
            &file,
            &records,
            InstallInputs {
                agent: agent_path,
                agent_sha256,
                ssh_keys,
            },
        )?;
        if !args.dry_run {
            return Err(CliError::Install(
                "running the installation from the command line is not wired yet: \
                 `harmony install --dry-run` prints its plan; to run it, compose \
                 OKDInstallationScore with your site's topology in a program (see examples/)"
                    .into(),
            ));
        }
        dry_run(&file, &config, spec, inventory, args.resume).await
    })
}

/// Prints the plan, in order; changes nothing.
async fn dry_run(
    file: &SiteFile,
    config: &crate::infra::linux_site::LinuxSiteConfig,
    spec: InstallSpec,
    inventory: Inventory,
    resume: bool,
) -> Result<(), CliError> {
    if let Some((id, _)) = spec.ports.iter().next() {
        return Err(CliError::Install(format!(
            "{}: host {id} and others have switch ports (hosts.pinned[].switch_ports): a dry \
             run does not plan switch steps yet (they read the switch, and each installed \
             host's bond over SSH)",
            file.origin()
        )));
    }
    let view = PlanView::new(config).map_err(|e| CliError::Install(e.to_string()))?;
    let plan = Maestro::new(view, inventory)
        .plan(&OKDInstallationScore::new(spec))
        .await?;
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
    print!("{plan}");
    if plan.is_empty() {
        println!();
    }
    Ok(())
}

async fn has_open_run(inventory: &Inventory) -> Result<bool, CliError> {
    let log = inventory.step_log().clone();
    let open = tokio::task::spawn_blocking(move || log.open_run(SAGA))
        .await
        .map_err(|e| CliError::Install(format!("step log task: {e}")))?
        .map_err(|e| CliError::Install(format!("step log: {e}")))?;
    Ok(open.is_some())
}

/// The agent's file and SHA-256: `--agent`, else the one published in the
/// HTTP root.
fn agent_digest(args: &InstallArgs, linux: &LinuxServices) -> Result<Sha256Digest, CliError> {
    let path = match &args.agent {
        Some(p) => p.clone(),
        None => linux.http_root.as_path().join(AGENT_PATH),
    };
    let bytes = read_capped(&path, MAX_AGENT).map_err(|e| {
        CliError::Install(format!(
            "the inventory agent {}: {e}{}",
            path.display(),
            if args.agent.is_none() {
                " (pass --agent PATH: the static agent `cargo agent` builds)"
            } else {
                ""
            }
        ))
    })?;
    hex::encode(Sha256::digest(&bytes))
        .parse()
        .map_err(|e| CliError::Install(format!("digest of {}: {e}", path.display())))
}

fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > max {
        return Err(format!("larger than {max} bytes"));
    }
    Ok(bytes)
}

fn field(file: &SiteFile, name: &str, reason: String) -> CliError {
    let value = match name {
        "ssh.cluster_public_key_file" => file.site().ssh.cluster_public_key_file.to_string(),
        _ => String::new(),
    };
    CliError::InstallSpec(InstallSpecError::Field {
        origin: file.origin().to_string(),
        field: name.into(),
        value,
        reason: format!("cannot read it: {reason}"),
    })
}
