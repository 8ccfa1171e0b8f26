//! `ScosAssets`: the SCOS live PXE files (kernel, initramfs, rootfs) named
//! by CoreOS stream metadata (`openshift-install coreos print-stream-json`),
//! downloaded, verified and placed under the HTTP root.

use std::path::Path;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::download::{self, DownloadConfig, Sha256Digest};
use super::staging::{
    Placement, cached_and_verified, cached_path, download_to_cache, place, unplace,
};
use super::{Source, const_path};
use crate::domain::{
    HttpServer, HttpUrl, Interpret, InterpretError, Inventory, Prepared, RelativePath,
    SagaInterpret, SagaScore, Score, Step, StepContext, StepError, StepKey, Topology, UndoData,
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

impl<T: Topology + HttpServer> Score<T> for ScosAssets {
    fn name(&self) -> String {
        NAME.into()
    }

    fn create_interpret(&self) -> Box<dyn Interpret<T>> {
        Box::new(SagaInterpret(self.clone()))
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
impl<T: Topology + HttpServer> SagaScore<T> for ScosAssets {
    fn saga_name(&self) -> String {
        NAME.into()
    }

    /// One step per PXE file, from the stream document (read, never
    /// written: fetching it is part of planning).
    async fn steps(&self, _: &Inventory, _: &T) -> Result<Vec<Box<dyn Step<T>>>, InterpretError> {
        let json = read_stream(self).await?;
        let stream = parse_stream(&json).map_err(|e| fail("parse stream metadata", e))?;
        let release = stream.release.clone().unwrap_or_else(|| "unknown".into());
        let wanted = [
            (&self.kernel_file, &stream.kernel),
            (&self.initramfs_file, &stream.initramfs),
            (&self.rootfs_file, &stream.rootfs),
        ];
        let mut steps: Vec<Box<dyn Step<T>>> = Vec::with_capacity(3);
        for (name, artifact) in wanted {
            let path = self
                .os_dir
                .join(name.as_str())
                .map_err(|e| fail("build the served path", e))?;
            let source = self
                .source_of(artifact)
                .map_err(|e| fail(&format!("mirror URL for {path}"), e))?;
            steps.push(Box::new(StageFile {
                path,
                source: Source::Url(source),
                sha256: artifact.sha256.clone(),
                download: self.download.clone(),
                what: format!("SCOS {release}"),
            }));
        }
        Ok(steps)
    }
}

/// Places one verified file at `path`: from the staging cache when it is
/// there, else downloaded (resumable) or copied from a local source.
#[derive(Debug, Clone)]
pub struct StageFile {
    pub path: RelativePath,
    pub source: Source,
    pub sha256: Sha256Digest,
    pub download: DownloadConfig,
    /// For descriptions, e.g. `SCOS 9.0.20250510-0`.
    pub what: String,
}

#[async_trait]
impl<T: Topology + HttpServer> Step<T> for StageFile {
    fn key(&self) -> StepKey {
        StepKey(format!("place {} {}", self.path, self.sha256))
    }

    async fn prepare(&self, ctx: StepContext<'_, T>) -> Result<Prepared, StepError> {
        let current = ctx.topology.file_sha256(&self.path).await?;
        if current.as_ref() == Some(&self.sha256) {
            return Ok(Prepared::Unchanged);
        }
        Ok(Prepared::Change {
            description: format!(
                "place {} {} (sha256 {}) from {}",
                self.what, self.path, self.sha256, self.source
            ),
            undo: UndoData::of(&Placement {
                previous: current,
                placed: self.sha256.clone(),
            })?,
        })
    }

    async fn apply(&self, ctx: StepContext<'_, T>) -> Result<Option<String>, StepError> {
        let site = ctx.topology;
        let staging = site.staging_dir().await?;
        let cached = cached_path(&staging, &self.sha256);
        let how = if cached_and_verified(&staging, &self.sha256).await? {
            "from the staging cache".to_string()
        } else {
            match &self.source {
                Source::Url(url) => {
                    let report = download_to_cache(
                        url,
                        &self.sha256,
                        &self.download,
                        &staging,
                        ctx.inventory.events(),
                        format!("{NAME} {}", self.path),
                        self.path.as_str(),
                    )
                    .await?;
                    if report.resumed_from > 0 {
                        format!(
                            "{} bytes, resumed at byte {}",
                            report.bytes, report.resumed_from
                        )
                    } else {
                        format!("{} bytes", report.bytes)
                    }
                }
                Source::Path(p) => {
                    copy_verified(p, &cached, &self.sha256).await?;
                    format!("copied from {}", p.display())
                }
            }
        };
        place(site, &self.path, &self.sha256, &staging).await?;
        Ok(Some(format!(
            "placed {} (sha256 {}, {how})",
            self.path, self.sha256
        )))
    }

    async fn undo(&self, ctx: StepContext<'_, T>, undo: &UndoData) -> Result<(), StepError> {
        let staging = ctx.topology.staging_dir().await?;
        unplace(ctx.topology, &self.path, &undo.decode()?, &staging).await
    }
}

/// Copies a local file into the cache at `dest`, verifying its digest.
async fn copy_verified(src: &Path, dest: &Path, sha: &Sha256Digest) -> Result<(), StepError> {
    let (src, dest, sha) = (src.to_path_buf(), dest.to_path_buf(), sha.clone());
    tokio::task::spawn_blocking(move || {
        let part = download::part_path(&dest);
        std::fs::copy(&src, &part)
            .map_err(|e| StepError::new(format!("copy {}: {e}", src.display())))?;
        let (actual, _) = download::hash_file(&part)
            .map_err(|e| StepError::new(format!("hash {}: {e}", part.display())))?;
        if actual != sha {
            let _ = std::fs::remove_file(&part);
            return Err(StepError::new(format!(
                "checksum mismatch for {}: expected sha256 {sha}, got {actual}",
                src.display()
            )));
        }
        std::fs::rename(&part, &dest)
            .map_err(|e| StepError::new(format!("rename into {}: {e}", dest.display())))
    })
    .await
    .map_err(|e| StepError::new(format!("copy task: {e}")))?
}
