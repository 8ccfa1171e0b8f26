//! The files an installation reads besides the site file: the cluster's
//! public key (`ssh.cluster_public_key_file`), the pull secret
//! (`cluster.pull_secret_file`, only when Harmony runs `openshift-install`)
//! and the inventory agent whose SHA-256 the boot files pin. Each is read
//! with a size cap; a failure names the site file's field (or the agent's
//! path) and the reason, never the file's content.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::SiteFile;
use super::install::{AGENT_PATH, InstallInputs, InstallSpecError, parse_public_keys};
use crate::modules::boot::PullSecret;

/// The largest public key file read.
const MAX_KEY_FILE: u64 = 64 * 1024;
/// The largest agent binary hashed (the static agent is ~2 MiB).
const MAX_AGENT: u64 = 256 << 20;

/// Why the installation's input files could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputsError {
    /// A file the site file names (the error names the field).
    #[error(transparent)]
    Field(#[from] InstallSpecError),
    #[error("the inventory agent {path}: {reason}")]
    Agent { path: PathBuf, reason: String },
}

/// Reads the inputs of [`super::install::install_spec`]: `agent` is the
/// static agent binary (its digest is pinned; it is served at
/// [`AGENT_PATH`]).
pub fn read_inputs(site: &SiteFile, agent: &Path) -> Result<InstallInputs, InputsError> {
    let s = site.site();
    let keys = read_capped(s.ssh.cluster_public_key_file.as_path(), MAX_KEY_FILE).map_err(|e| {
        field(
            site,
            "ssh.cluster_public_key_file",
            &s.ssh.cluster_public_key_file,
            e,
        )
    })?;
    let ssh_keys = parse_public_keys(site, &String::from_utf8_lossy(&keys))?;
    let bytes = read_capped(agent, MAX_AGENT).map_err(|reason| InputsError::Agent {
        path: agent.to_path_buf(),
        reason,
    })?;
    let agent_sha256 =
        hex::encode(Sha256::digest(&bytes))
            .parse()
            .map_err(|e| InputsError::Agent {
                path: agent.to_path_buf(),
                reason: format!("digest: {e}"),
            })?;
    Ok(InstallInputs {
        agent: AGENT_PATH.parse().map_err(|e| InputsError::Agent {
            path: agent.to_path_buf(),
            reason: format!("served as {AGENT_PATH}: {e}"),
        })?,
        agent_sha256,
        ssh_keys,
        pull_secret: read_pull_secret(site)?,
    })
}

/// The pull secret, read only when Harmony runs `openshift-install`
/// (`install.openshift_install`); never printed.
fn read_pull_secret(site: &SiteFile) -> Result<Option<PullSecret>, InstallSpecError> {
    let s = site.site();
    if s.install
        .as_ref()
        .is_none_or(|i| i.openshift_install.is_none())
    {
        return Ok(None);
    }
    let path = &s.cluster.pull_secret_file;
    let name = "cluster.pull_secret_file";
    let bytes = read_capped(path.as_path(), PullSecret::MAX_BYTES as u64)
        .map_err(|e| field(site, name, path, e))?;
    let text =
        String::from_utf8(bytes).map_err(|_| field(site, name, path, "not UTF-8 text".into()))?;
    PullSecret::new(text.trim())
        .map(Some)
        .map_err(|e| field(site, name, path, e.to_string()))
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

fn field(site: &SiteFile, name: &str, value: &impl ToString, reason: String) -> InstallSpecError {
    InstallSpecError::Field {
        origin: site.origin().to_string(),
        field: name.into(),
        value: value.to_string(),
        reason: format!("cannot read it: {reason}"),
    }
}
