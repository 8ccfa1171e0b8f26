//! `ScosAssets`: the SCOS live PXE files (kernel, initramfs, rootfs) named
//! by CoreOS stream metadata (`openshift-install coreos print-stream-json`),
//! downloaded, verified and placed under the HTTP root.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::download::{self, DownloadConfig, Sha256Digest};
use super::manifest::Manifest;
use super::{HttpRootAccess, Source, const_path};
use crate::domain::{
    Event, HttpUrl, Interpret, InterpretError, Inventory, Outcome, RelativePath, Score, Topology,
};

const NAME: &str = "ScosAssets";
/// Largest stream metadata document accepted.
const MAX_STREAM_BYTES: u64 = 16 << 20;
const ARCH: &str = "x86_64";

/// Download the SCOS PXE artifacts of a stream into `os_dir` under the HTTP
/// root, as `kernel_file`, `initramfs_file` and `rootfs_file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScosAssets {
    /// The stream metadata JSON.
    pub stream: Source,
    /// Default `os/scos-4.19`.
    #[serde(default = "default_os_dir")]
    pub os_dir: RelativePath,
    /// Default `kernel`.
    #[serde(default = "default_kernel")]
    pub kernel_file: RelativePath,
    /// Default `initramfs.img`.
    #[serde(default = "default_initramfs")]
    pub initramfs_file: RelativePath,
    /// Default `rootfs.img`.
    #[serde(default = "default_rootfs")]
    pub rootfs_file: RelativePath,
    /// Timeouts, size cap, redirects, retries and the site CA (https).
    #[serde(default)]
    pub download: DownloadConfig,
    /// Fetch the artifacts from this mirror instead of the stream's
    /// locations: the file name of each location is appended to it (the
    /// sha256 from the stream still pins the content). For sites without
    /// internet access; the stream's own `https://` locations work without
    /// it (trusted through the built-in roots, or `download.site_ca`).
    #[serde(default)]
    pub mirror: Option<HttpUrl>,
}

fn default_os_dir() -> RelativePath {
    const_path("os/scos-4.19")
}
fn default_kernel() -> RelativePath {
    const_path("kernel")
}
fn default_initramfs() -> RelativePath {
    const_path("initramfs.img")
}
fn default_rootfs() -> RelativePath {
    const_path("rootfs.img")
}

impl ScosAssets {
    pub fn new(stream: Source) -> Self {
        Self {
            stream,
            os_dir: default_os_dir(),
            kernel_file: default_kernel(),
            initramfs_file: default_initramfs(),
            rootfs_file: default_rootfs(),
            download: DownloadConfig::default(),
            mirror: None,
        }
    }

    /// Where `artifact` is fetched from: its location, or the mirror.
    pub fn source_of(&self, artifact: &PxeArtifact) -> Result<HttpUrl, crate::domain::ValueError> {
        match &self.mirror {
            None => Ok(artifact.location.clone()),
            Some(m) => {
                let name = artifact
                    .location
                    .as_str()
                    .rsplit('/')
                    .next()
                    .unwrap_or_default();
                m.join(name)
            }
        }
    }

    /// The served paths of (kernel, initramfs, rootfs), for iPXE scripts.
    pub fn served_paths(&self) -> Result<[RelativePath; 3], crate::domain::ValueError> {
        Ok([
            self.os_dir.join(self.kernel_file.as_str())?,
            self.os_dir.join(self.initramfs_file.as_str())?,
            self.os_dir.join(self.rootfs_file.as_str())?,
        ])
    }
}

/// One PXE artifact of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PxeArtifact {
    pub location: HttpUrl,
    pub sha256: Sha256Digest,
}

/// The x86_64 metal PXE artifacts of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PxeArtifacts {
    /// `architectures.x86_64.artifacts.metal.release`, when present.
    pub release: Option<String>,
    pub kernel: PxeArtifact,
    pub initramfs: PxeArtifact,
    pub rootfs: PxeArtifact,
}

/// Stream metadata that cannot be used; names the JSON field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("stream metadata is not JSON: {0}")]
    Json(String),
    #[error("stream metadata lacks {field}")]
    Missing { field: String },
    #[error("stream metadata field {field}: {reason}")]
    Invalid { field: String, reason: String },
}

/// Picks `architectures.x86_64.artifacts.metal.formats.pxe.{kernel,
/// initramfs,rootfs}` with their `location` and `sha256`, validated.
pub fn parse_stream(json: &[u8]) -> Result<PxeArtifacts, StreamError> {
    let root: Value = serde_json::from_slice(json).map_err(|e| StreamError::Json(e.to_string()))?;
    let metal_path = ["architectures", ARCH, "artifacts", "metal"];
    let metal = walk(&root, &metal_path, "")?;
    let metal_name = metal_path.join(".");
    let release = metal
        .get("release")
        .and_then(Value::as_str)
        .map(str::to_string);
    let pxe_prefix = format!("{metal_name}.formats.pxe");
    let pxe = walk(metal, &["formats", "pxe"], &metal_name)?;
    let artifact = |name: &str| -> Result<PxeArtifact, StreamError> {
        let base = format!("{pxe_prefix}.{name}");
        let a = walk(pxe, &[name], &pxe_prefix)?;
        let location = string_field(a, "location", &base)?;
        let sha256 = string_field(a, "sha256", &base)?;
        let location = location
            .parse::<HttpUrl>()
            .map_err(|e| StreamError::Invalid {
                field: format!("{base}.location"),
                reason: e.to_string(),
            })?;
        let sha256 =
            Sha256Digest::parse_field("sha256", sha256).map_err(|e| StreamError::Invalid {
                field: format!("{base}.sha256"),
                reason: e.to_string(),
            })?;
        Ok(PxeArtifact { location, sha256 })
    };
    Ok(PxeArtifacts {
        release,
        kernel: artifact("kernel")?,
        initramfs: artifact("initramfs")?,
        rootfs: artifact("rootfs")?,
    })
}

fn walk<'a>(v: &'a Value, keys: &[&str], prefix: &str) -> Result<&'a Value, StreamError> {
    let mut cur = v;
    let mut path = prefix.to_string();
    for k in keys {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(k);
        cur = cur
            .get(k)
            .filter(|v| v.is_object())
            .ok_or_else(|| StreamError::Missing {
                field: path.clone(),
            })?;
    }
    Ok(cur)
}

fn string_field<'a>(v: &'a Value, key: &str, base: &str) -> Result<&'a str, StreamError> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| StreamError::Missing {
            field: format!("{base}.{key}"),
        })
}

impl<T: Topology + HttpRootAccess> Score<T> for ScosAssets {
    fn name(&self) -> String {
        NAME.into()
    }

    fn create_interpret(&self) -> Box<dyn Interpret<T>> {
        Box::new(self.clone())
    }
}

fn fail(action: &str, e: impl std::fmt::Display) -> InterpretError {
    InterpretError::new(NAME, action, e.to_string())
}

async fn read_stream(s: &ScosAssets) -> Result<Vec<u8>, InterpretError> {
    match &s.stream {
        Source::Path(p) => {
            let len = std::fs::metadata(p)
                .map_err(|e| fail("read stream metadata", format!("{}: {e}", p.display())))?
                .len();
            if len > MAX_STREAM_BYTES {
                return Err(fail(
                    "read stream metadata",
                    format!("{}: larger than {MAX_STREAM_BYTES} bytes", p.display()),
                ));
            }
            std::fs::read(p)
                .map_err(|e| fail("read stream metadata", format!("{}: {e}", p.display())))
        }
        Source::Url(u) => download::fetch_bytes(u, &s.download, MAX_STREAM_BYTES)
            .await
            .map_err(|e| fail("fetch stream metadata", e)),
    }
}

#[async_trait]
impl<T: Topology + HttpRootAccess> Interpret<T> for ScosAssets {
    async fn plan(&self, _: &Inventory, _: &T) -> Result<crate::domain::Plan, InterpretError> {
        Err(InterpretError::new(NAME, "plan", "TEMPORARY"))
    }

    async fn execute(
        &self,
        inventory: &Inventory,
        topology: &T,
    ) -> Result<Outcome, InterpretError> {
        let json = read_stream(self).await?;
        let stream = parse_stream(&json).map_err(|e| fail("parse stream metadata", e))?;
        let root = topology.http_root();
        let dir: PathBuf = root.local_path(&self.os_dir);
        let wanted = [
            (&self.kernel_file, &stream.kernel),
            (&self.initramfs_file, &stream.initramfs),
            (&self.rootfs_file, &stream.rootfs),
        ];

        // Plan: which files are not in place.
        let mut manifest = Manifest::load(&dir);
        let mut todo = Vec::new();
        for (name, artifact) in wanted {
            let ok = manifest
                .verify(&dir, name.as_str(), &artifact.sha256)
                .await
                .map_err(|e| fail("check existing files", format!("{}: {e}", dir.display())))?;
            if !ok {
                todo.push((name, artifact));
            }
        }
        let release = stream.release.as_deref().unwrap_or("unknown release");
        if todo.is_empty() {
            // Re-hashed files may have been recorded; that is bookkeeping,
            // not a change of what is served.
            save_manifest(&manifest, &dir)?;
            return Ok(Outcome::noop(format!(
                "SCOS {release} PXE files in place under {}",
                self.os_dir
            )));
        }

        let mut changes = Vec::new();
        for (name, artifact) in todo {
            let served = self
                .os_dir
                .join(name.as_str())
                .map_err(|e| fail("build the served path", e))?;
            let dest = root.local_path(&served);
            let task = format!("{NAME} {served}");
            let events = inventory.events().clone();
            let progress = move |done: u64, total: u64| {
                events.publish(Event::Progress {
                    task: task.clone(),
                    done,
                    total,
                });
            };
            let source = self
                .source_of(artifact)
                .map_err(|e| fail(&format!("mirror URL for {served}"), e))?;
            let report =
                download::download(&source, &dest, &artifact.sha256, &self.download, &progress)
                    .await
                    .map_err(|e| {
                        fail(&format!("download {served}"), e)
                            .with_state_left(state_left(&changes, &dest))
                    })?;
            manifest
                .record(&dir, name.as_str(), &artifact.sha256)
                .map_err(|e| fail("record the manifest", e))?;
            save_manifest(&manifest, &dir)?;
            changes.push(format!(
                "placed {served} ({} bytes, sha256 {}{})",
                report.bytes,
                artifact.sha256,
                if report.resumed_from > 0 {
                    format!(", resumed at byte {}", report.resumed_from)
                } else {
                    String::new()
                }
            ));
        }
        Ok(Outcome::success(changes))
    }
}

fn save_manifest(m: &Manifest, dir: &Path) -> Result<(), InterpretError> {
    m.save(dir)
        .map(|_| ())
        .map_err(|e| fail("write the manifest", format!("{}: {e}", dir.display())))
}

fn state_left(done: &[String], dest: &Path) -> String {
    let part = download::part_path(dest);
    let mut s = if done.is_empty() {
        "no file placed".to_string()
    } else {
        done.join("; ")
    };
    if part.exists() {
        s.push_str(&format!(
            "; partial download kept at {} for resume",
            part.display()
        ));
    }
    s
}
