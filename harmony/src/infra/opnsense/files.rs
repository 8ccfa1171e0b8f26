//! The TFTP root and the HTTP root of an OPNsense site, copied over SSH
//! (`infra::ssh::files`), because neither plugin has an upload API
//! (`/work/shared/notes/vendor-apis.md` §1.c):
//! - os-tftp's model is only `general.enabled` and `general.listen`
//!   (opnsense/plugins `ftp/tftp/.../Tftp/General.xml`, `listen` defaults
//!   to 127.0.0.1) through `api/tftp/general/get|set` and
//!   `api/tftp/service/reconfigure`; tftpd serves `/usr/local/tftp`. Harmony
//!   enables it on the site's provisioning address, writing only when
//!   either differs, then reconfigures.
//! - os-caddy has no `file_server` handler; its generated Caddyfile imports
//!   `/usr/local/etc/caddy/caddy.d/*.conf` (site blocks). Harmony installs
//!   one snippet there serving its web root on the provisioning address
//!   and applies it with `api/caddy/service/reconfigure` only when the
//!   snippet changed.
//!
//! Both are checked once per [`OpnSenseSite`] (and again after a failure).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde_json::json;

use super::client::{OpnSenseError, field_text};
use super::{OpnSenseSite, cap};
use crate::domain::{
    CapResult, CapabilityError, Change, HostId, HostKey, HttpServer, HttpUrl, RelativePath,
    RemoteHost, Sha256Digest, TftpServer,
};
use crate::infra::ssh::{FixedHostKey, RemoteRoot, SshConfig, SshError, SshShell, TransferLimits};

const TFTP_GET: &str = "tftp/general/get";
const TFTP_SET: &str = "tftp/general/set";
const TFTP_RECONFIGURE: &str = "tftp/service/reconfigure";
const CADDY_RECONFIGURE: &str = "caddy/service/reconfigure";
/// The snippet's name in the Caddy include directory.
pub const CADDY_SNIPPET: &str = "harmony.conf";

/// Where and how Harmony copies files to the firewall.
#[derive(Debug, Clone)]
pub struct OpnSenseFilesConfig {
    /// The firewall's SSH address (and the id its key is pinned under).
    pub ssh_host: RemoteHost,
    pub ssh: SshConfig,
    /// The firewall's host key, from the site file: never learnt.
    pub host_key: HostKey,
    /// The firewall's address on the provisioning network: TFTP listens
    /// and the web root is served there.
    pub serve_address: Ipv4Addr,
    pub http_port: u16,
    /// os-tftp's root, `/usr/local/tftp`.
    pub tftp_root: RemoteRoot,
    /// The web root the snippet serves.
    pub web_root: RemoteRoot,
    /// os-caddy's include directory, `/usr/local/etc/caddy/caddy.d`.
    pub caddy_dir: RemoteRoot,
    /// A local directory for large files prepared before they are copied.
    pub staging_dir: PathBuf,
    /// Small files (scripts, Ignition, boot loaders).
    pub limits: TransferLimits,
    /// Files copied from a local path (OS images).
    pub large_limits: TransferLimits,
}

impl OpnSenseFilesConfig {
    /// OPNsense's paths: `/usr/local/tftp`, `/usr/local/www/harmony`,
    /// `/usr/local/etc/caddy/caddy.d`; HTTP on port 8080.
    pub fn new(
        ssh_host: RemoteHost,
        ssh: SshConfig,
        host_key: HostKey,
        serve_address: Ipv4Addr,
        staging_dir: PathBuf,
    ) -> Result<Self, OpnSenseError> {
        let root = |s: &str| {
            s.parse::<RemoteRoot>()
                .map_err(|e| OpnSenseError::Files(e.to_string()))
        };
        Ok(Self {
            ssh_host,
            ssh,
            host_key,
            serve_address,
            http_port: 8080,
            tftp_root: root("/usr/local/tftp")?,
            web_root: root("/usr/local/www/harmony")?,
            caddy_dir: root("/usr/local/etc/caddy/caddy.d")?,
            staging_dir,
            limits: TransferLimits::default(),
            large_limits: TransferLimits {
                max_bytes: 8 << 30,
                timeout: std::time::Duration::from_secs(3600),
            },
        })
    }

    /// `http://ADDRESS:PORT/`.
    pub fn base_url(&self) -> Result<HttpUrl, OpnSenseError> {
        let text = format!(
            "http://{}/",
            SocketAddr::new(IpAddr::V4(self.serve_address), self.http_port)
        );
        text.parse()
            .map_err(|e: crate::domain::ValueError| OpnSenseError::Files(e.to_string()))
    }
}

/// The Caddy site block serving `web_root` on `address:port`: plain HTTP,
/// dot paths 404 (`.treeinfo` aside: Anaconda reads it), explicit content
/// types for boot files (as `infra::caddy::caddyfile` does).
pub fn caddy_snippet(address: Ipv4Addr, port: u16, web_root: &RemoteRoot) -> String {
    format!(
        "# Written by Harmony over SSH; do not edit. Serves {root} to booting hosts.\n\
         http://{address}:{port} {{\n\
         \tbind {address}\n\
         \troot * {root}\n\
         \t@hidden {{\n\t\tpath_regexp hidden (^|/)\\.\n\t\tnot path */.treeinfo\n\t}}\n\
         \trespond @hidden 404\n\
         \t@text path *.ipxe *.ks */.treeinfo\n\
         \theader @text Content-Type \"text/plain; charset=utf-8\"\n\
         \t@ignition path *.ign\n\
         \theader @ignition Content-Type application/json\n\
         \t@binary path */kernel *vmlinuz* *initrd* *initramfs* *.img *.efi *.kpxe *.iso\n\
         \theader @binary Content-Type application/octet-stream\n\
         \tfile_server\n\
         }}\n",
        root = web_root.as_str()
    )
}

/// The SSH side of an OPNsense site.
#[derive(Debug)]
pub(super) struct OpnSenseFiles {
    config: OpnSenseFilesConfig,
    shell: SshShell,
    base_url: HttpUrl,
    tftp_ready: tokio::sync::Mutex<bool>,
    http_ready: tokio::sync::Mutex<bool>,
}

impl OpnSenseFiles {
    pub(super) fn new(config: OpnSenseFilesConfig) -> Result<Self, OpnSenseError> {
        let pins = FixedHostKey::new(config.ssh_host.id.clone(), config.host_key.clone());
        let shell = SshShell::new(config.ssh.clone(), std::sync::Arc::new(pins))
            .map_err(|e| OpnSenseError::Files(e.to_string()))?;
        let base_url = config.base_url()?;
        Ok(Self {
            config,
            shell,
            base_url,
            tftp_ready: tokio::sync::Mutex::new(false),
            http_ready: tokio::sync::Mutex::new(false),
        })
    }

    pub(super) fn base_url(&self) -> &HttpUrl {
        &self.base_url
    }
}

/// The firewall's SSH id for its fixed pin: `serial:opnsense-<site>`.
pub fn firewall_host_id(site: &str) -> Result<HostId, OpnSenseError> {
    HostId::from_serial(&format!("opnsense-{site}"))
        .map_err(|e| OpnSenseError::Files(e.to_string()))
}

fn files_cap(capability: &'static str) -> impl Fn(SshError) -> CapabilityError {
    move |e| CapabilityError::new(capability, format!("OPNsense file copy: {e}"))
}

impl OpnSenseSite {
    fn files(&self, capability: &'static str) -> CapResult<&OpnSenseFiles> {
        self.files.as_deref().ok_or_else(|| {
            CapabilityError::new(
                capability,
                "this OPNsense site has no SSH file copy configured (os-tftp and os-caddy have \
                 no upload API): give the site file's services.opnsense.ssh section",
            )
        })
    }

    /// Makes os-tftp enabled and listening on the provisioning address:
    /// `Unchanged` (one GET) when it already is.
    pub async fn ensure_tftp(&self) -> CapResult<Change> {
        let files = self.files("tftp")?;
        let mut ready = files.tftp_ready.lock().await;
        if *ready {
            return Ok(Change::Unchanged);
        }
        let c = cap("tftp");
        let current = self.client.get(TFTP_GET).await.map_err(&c)?;
        let general = current.get("general").ok_or_else(|| {
            c(OpnSenseError::BadAnswer {
                endpoint: TFTP_GET.into(),
                reason: "no \"general\" object".into(),
                body: crate::domain::text::safe_text(&current.to_string(), 200),
            })
        })?;
        let want_listen = files.config.serve_address.to_string();
        let change = if field_text(general, "enabled") == "1"
            && field_text(general, "listen") == want_listen
        {
            Change::Unchanged
        } else {
            self.client
                .save(
                    TFTP_SET,
                    &json!({"general": {"enabled": "1", "listen": want_listen}}),
                )
                .await
                .map_err(&c)?;
            self.client
                .reconfigure(TFTP_RECONFIGURE)
                .await
                .map_err(&c)?;
            Change::Applied
        };
        *ready = true;
        Ok(change)
    }

    /// Installs the Caddy snippet serving the web root; applies it with
    /// `caddy/service/reconfigure` only when it changed.
    pub async fn ensure_http(&self) -> CapResult<Change> {
        let files = self.files("http")?;
        let mut ready = files.http_ready.lock().await;
        if *ready {
            return Ok(Change::Unchanged);
        }
        let cfg = &files.config;
        let snippet = caddy_snippet(cfg.serve_address, cfg.http_port, &cfg.web_root);
        let name = RelativePath::from_trusted(CADDY_SNIPPET.to_string());
        let change = files
            .shell
            .put_file(
                &cfg.ssh_host,
                &cfg.caddy_dir,
                &name,
                snippet.as_bytes(),
                cfg.limits,
            )
            .await
            .map_err(files_cap("http"))?;
        if change == Change::Applied {
            self.client
                .reconfigure(CADDY_RECONFIGURE)
                .await
                .map_err(cap("http"))?;
        }
        *ready = true;
        Ok(change)
    }

    async fn http_files(&self) -> CapResult<&OpnSenseFiles> {
        self.ensure_http().await?;
        self.files("http")
    }
}

#[async_trait]
impl TftpServer for OpnSenseSite {
    /// Copies the file into os-tftp's root over SSH (after making sure
    /// os-tftp is enabled on the provisioning address).
    async fn put_tftp_file(&self, path: &RelativePath, contents: &[u8]) -> CapResult<Change> {
        let files = self.files("tftp")?;
        let service = self.ensure_tftp().await?;
        let cfg = &files.config;
        let file = files
            .shell
            .put_file(&cfg.ssh_host, &cfg.tftp_root, path, contents, cfg.limits)
            .await
            .map_err(files_cap("tftp"))?;
        Ok(Change::applied_if(
            service == Change::Applied || file == Change::Applied,
        ))
    }
}

#[async_trait]
impl HttpServer for OpnSenseSite {
    async fn put_file(&self, path: &RelativePath, contents: &[u8]) -> CapResult<Change> {
        let files = self.http_files().await?;
        let cfg = &files.config;
        files
            .shell
            .put_file(&cfg.ssh_host, &cfg.web_root, path, contents, cfg.limits)
            .await
            .map_err(files_cap("http"))
    }

    /// Copies the local file over (streamed); the local file stays (the
    /// staging copy is the cache a rolled-back run re-uses).
    async fn put_file_from(&self, path: &RelativePath, source: &Path) -> CapResult<Change> {
        let files = self.http_files().await?;
        let cfg = &files.config;
        files
            .shell
            .put_local_file(&cfg.ssh_host, &cfg.web_root, path, source, cfg.large_limits)
            .await
            .map_err(files_cap("http"))
    }

    async fn remove_file(&self, path: &RelativePath) -> CapResult<Change> {
        let files = self.files("http")?;
        let cfg = &files.config;
        files
            .shell
            .remove_file(&cfg.ssh_host, &cfg.web_root, path, cfg.limits)
            .await
            .map_err(files_cap("http"))
    }

    async fn list_files(&self, dir: &RelativePath) -> CapResult<Vec<RelativePath>> {
        let files = self.files("http")?;
        let cfg = &files.config;
        files
            .shell
            .list_files(&cfg.ssh_host, &cfg.web_root, Some(dir), cfg.limits)
            .await
            .map_err(files_cap("http"))
    }

    /// Copies the served file back to `dest`, then removes it from the
    /// firewall.
    async fn take_file(&self, path: &RelativePath, dest: &Path) -> CapResult<Change> {
        let files = self.files("http")?;
        let cfg = &files.config;
        let fetched = files
            .shell
            .fetch_file(&cfg.ssh_host, &cfg.web_root, path, dest, cfg.large_limits)
            .await
            .map_err(files_cap("http"))?;
        if !fetched {
            return Ok(Change::Unchanged);
        }
        files
            .shell
            .remove_file(&cfg.ssh_host, &cfg.web_root, path, cfg.limits)
            .await
            .map_err(files_cap("http"))?;
        Ok(Change::Applied)
    }

    async fn file_sha256(&self, path: &RelativePath) -> CapResult<Option<Sha256Digest>> {
        let files = self.files("http")?;
        let cfg = &files.config;
        files
            .shell
            .remote_sha256(&cfg.ssh_host, &cfg.web_root, path, cfg.large_limits)
            .await
            .map_err(files_cap("http"))
    }

    async fn staging_dir(&self) -> CapResult<PathBuf> {
        let files = self.files("http")?;
        let dir = files.config.staging_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| {
            CapabilityError::new("http", format!("staging dir {}: {e}", dir.display()))
        })?;
        Ok(dir)
    }

    async fn read_file(&self, path: &RelativePath) -> CapResult<Option<Vec<u8>>> {
        let files = self.files("http")?;
        let cfg = &files.config;
        files
            .shell
            .read_file(&cfg.ssh_host, &cfg.web_root, path, cfg.limits)
            .await
            .map_err(files_cap("http"))
    }

    fn url_for(&self, path: &RelativePath) -> HttpUrl {
        let base = self.http_base();
        base.join(path.as_str()).unwrap_or(base)
    }

    fn base_url(&self) -> HttpUrl {
        self.http_base()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snippet_serves_the_root_on_the_provisioning_address_only() {
        let root: RemoteRoot = "/usr/local/www/harmony".parse().unwrap();
        let s = caddy_snippet("10.20.0.1".parse().unwrap(), 8080, &root);
        assert!(
            s.contains(
                "http://10.20.0.1:8080 {\n\tbind 10.20.0.1\n\troot * /usr/local/www/harmony\n"
            ),
            "{s}"
        );
        assert!(s.contains("\tfile_server\n}\n"), "{s}");
        assert!(s.contains("respond @hidden 404"), "{s}");
    }
}
