//! The cluster's API before the cluster exists: `openshift-install create
//! ignition-configs` writes the kubeconfig (`<install dir>/auth/kubeconfig`)
//! only during the installation, yet a `--dry-run` must plan every step
//! before it. [`LazyClusterApi`] builds the [`KubeClusterApi`] on first use
//! and keeps it; while the file is missing every call answers
//! [`ClusterApiError::NotYetAvailable`], which steps read as "not yet".

use std::io::ErrorKind;
use std::path::Path;

use async_trait::async_trait;
use tokio::sync::OnceCell;

use super::{KubeApiConfig, KubeClusterApi};
use crate::domain::text::safe_text;
use crate::domain::{Change, ClusterApi, ClusterApiError, ClusterNode, NodeCsr, Topology};

/// A [`ClusterApi`] built from its kubeconfig when first needed.
#[derive(Debug)]
pub struct LazyClusterApi {
    name: String,
    config: KubeApiConfig,
    /// What [`ClusterApi::api_server`] says before the client exists.
    pending_server: String,
    api: OnceCell<KubeClusterApi>,
}

impl LazyClusterApi {
    /// Nothing is read yet.
    pub fn new(name: &str, config: KubeApiConfig) -> Self {
        let pending_server = match &config.server {
            Some(server) => server.trim_end_matches('/').to_string(),
            None => format!(
                "the API server of {} (not written yet)",
                config.kubeconfig.display()
            ),
        };
        Self {
            name: name.to_string(),
            config,
            pending_server,
            api: OnceCell::new(),
        }
    }

    /// The kubeconfig's path.
    pub fn kubeconfig(&self) -> &Path {
        &self.config.kubeconfig
    }

    /// Whether the client has been built.
    pub fn is_loaded(&self) -> bool {
        self.api.initialized()
    }

    /// The client, built on first use; `NotYetAvailable` while the
    /// kubeconfig is missing (asked again at the next call), its error when
    /// it cannot be used.
    async fn api(&self) -> Result<&KubeClusterApi, ClusterApiError> {
        if let Some(api) = self.api.get() {
            return Ok(api);
        }
        let path = self.config.kubeconfig.clone();
        // One stat, not worth a blocking task.
        match std::fs::metadata(&path) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {
                tracing::debug!(kubeconfig = %path.display(), "kubeconfig not there yet");
                return Err(ClusterApiError::NotYetAvailable { kubeconfig: path });
            }
            Err(e) => {
                return Err(ClusterApiError::Kubeconfig {
                    kubeconfig: path,
                    message: safe_text(&e.to_string(), 200),
                });
            }
        }
        self.api
            .get_or_try_init(|| async {
                let api = KubeClusterApi::from_config(&self.name, &self.config)
                    .await
                    .map_err(|e| ClusterApiError::Kubeconfig {
                        kubeconfig: path.clone(),
                        message: safe_text(&e.to_string(), 300),
                    })?;
                tracing::info!(
                    kubeconfig = %path.display(),
                    server = api.api_server(),
                    "cluster API client built"
                );
                Ok(api)
            })
            .await
    }
}

impl Topology for LazyClusterApi {
    fn name(&self) -> &str {
        &self.name
    }
}

#[async_trait]
impl ClusterApi for LazyClusterApi {
    fn api_server(&self) -> &str {
        self.api
            .get()
            .map_or(self.pending_server.as_str(), |a| a.api_server())
    }

    async fn api_answers(&self) -> Result<bool, ClusterApiError> {
        self.api().await?.api_answers().await
    }

    async fn nodes(&self) -> Result<Vec<ClusterNode>, ClusterApiError> {
        self.api().await?.nodes().await
    }

    async fn bootstrap_complete(&self) -> Result<bool, ClusterApiError> {
        self.api().await?.bootstrap_complete().await
    }

    async fn pending_csrs(&self) -> Result<Vec<NodeCsr>, ClusterApiError> {
        self.api().await?.pending_csrs().await
    }

    async fn approve_csr(&self, csr: &NodeCsr, message: &str) -> Result<Change, ClusterApiError> {
        self.api().await?.approve_csr(csr, message).await
    }

    async fn masters_schedulable(&self) -> Result<bool, ClusterApiError> {
        self.api().await?.masters_schedulable().await
    }

    async fn set_masters_schedulable(&self, schedulable: bool) -> Result<Change, ClusterApiError> {
        self.api().await?.set_masters_schedulable(schedulable).await
    }
}
