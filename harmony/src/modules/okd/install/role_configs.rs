//! The cluster's three role Ignition configs on the HTTP root
//! (`okd/bootstrap.ign`, `okd/master.ign`, `okd/worker.ign`), where each
//! host's own Ignition merges its role's config from.
//!
//! Either the site gives them (nothing to run: the operator or another tool
//! made them), or Harmony makes them: it writes `install-config.yaml` (0600)
//! into the install directory and runs `openshift-install create
//! ignition-configs` there. That directory then holds the cluster's
//! credentials (`auth/kubeconfig`, which the cluster steps use) and must be
//! kept: running the installer again would make new certificates, so the
//! step never does once the configs exist, in the directory or on the root.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::domain::{
    HttpServer, Prepared, RelativePath, Role, Step, StepContext, StepError, StepKey, Topology,
    UndoData,
};
use crate::infra::fs::write_atomic;
use crate::modules::boot::{InstallConfig, render_install_config};
use crate::modules::okd::ignition::{RoleConfig, create_ignition_configs, read_role_configs};

/// Where the role configs come from.
#[derive(Debug, Clone)]
pub enum RoleConfigSource {
    /// Already served where `SiteBoot` says: nothing to do.
    Given,
    /// Made by `openshift-install` in `install_dir`.
    Installer(Box<InstallerJob>),
}

/// What running the installer needs.
#[derive(Debug, Clone)]
pub struct InstallerJob {
    pub openshift_install: PathBuf,
    pub install_dir: PathBuf,
    pub install_config: InstallConfig,
}

const ROLES: [Role; 3] = [Role::Bootstrap, Role::ControlPlane, Role::Worker];

/// The path of `role`'s config on the HTTP root.
pub fn published_path(role: Role) -> RelativePath {
    RelativePath::from_trusted(format!("okd/{}", RoleConfig::file_name(role)))
}

/// Makes (once) and publishes the role configs.
#[derive(Debug, Clone)]
pub struct PublishRoleConfigs {
    pub job: InstallerJob,
}

fn made_in(dir: &Path) -> bool {
    ROLES
        .iter()
        .all(|r| dir.join(RoleConfig::file_name(*r)).is_file())
}

fn fail(e: impl ToString) -> StepError {
    StepError::new(e.to_string())
}

#[async_trait]
impl<T: Topology + HttpServer> Step<T> for PublishRoleConfigs {
    fn key(&self) -> StepKey {
        StepKey("role Ignition configs published".into())
    }

    async fn prepare(&self, ctx: StepContext<'_, T>) -> Result<Prepared, StepError> {
        let mut missing = Vec::new();
        for role in ROLES {
            let path = published_path(role);
            if ctx
                .topology
                .file_sha256(&path)
                .await
                .map_err(fail)?
                .is_none()
            {
                missing.push(path.to_string());
            }
        }
        if missing.is_empty() {
            return Ok(Prepared::Unchanged);
        }
        let dir = self.job.install_dir.display();
        let description = if made_in(&self.job.install_dir) {
            format!(
                "publish the role configs openshift-install wrote in {dir} as {}",
                missing.join(", ")
            )
        } else {
            format!(
                "write {dir}/install-config.yaml (0600), run {} create ignition-configs --dir \
                 {dir}, publish {}",
                self.job.openshift_install.display(),
                missing.join(", ")
            )
        };
        Ok(Prepared::Change {
            description,
            undo: UndoData::of(&missing)?,
        })
    }

    async fn apply(&self, ctx: StepContext<'_, T>) -> Result<Option<String>, StepError> {
        let job = self.job.clone();
        let configs = tokio::task::spawn_blocking(move || make_or_read(&job))
            .await
            .map_err(|e| StepError::new(format!("installer task: {e}")))??;
        for rc in configs {
            ctx.topology
                .put_file(&published_path(rc.role), rc.bytes())
                .await
                .map_err(fail)?;
        }
        Ok(None)
    }

    /// Takes out the configs this run published; the install directory
    /// (the cluster's credentials) stays.
    async fn undo(&self, ctx: StepContext<'_, T>, undo: &UndoData) -> Result<(), StepError> {
        let missing: Vec<String> = undo.decode()?;
        for p in missing {
            let path: RelativePath = p.parse().map_err(fail)?;
            ctx.topology.remove_file(&path).await.map_err(fail)?;
        }
        Ok(())
    }
}

/// The three configs: read from the install directory when the installer
/// already made them there, else made now.
fn make_or_read(job: &InstallerJob) -> Result<Vec<RoleConfig>, StepError> {
    let dir = &job.install_dir;
    let configs = if made_in(dir) {
        read_role_configs(dir).map_err(fail)?
    } else {
        let yaml = render_install_config(&job.install_config).map_err(fail)?;
        std::fs::create_dir_all(dir)
            .map_err(|e| StepError::new(format!("{}: {e}", dir.display())))?;
        let path = dir.join("install-config.yaml");
        write_atomic(&path, yaml.as_bytes(), 0o600)
            .map_err(|e| StepError::new(format!("{}: {e}", path.display())))?;
        create_ignition_configs(&job.openshift_install, dir).map_err(fail)?
    };
    Ok(vec![configs.bootstrap, configs.master, configs.worker])
}
