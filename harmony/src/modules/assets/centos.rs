//! `CentosInventoryAssets`: the CentOS Stream 9 inventory environment
//! (kernel, initrd, Anaconda stage2 and `.treeinfo`) extracted from a
//! verified `boot.iso` into `os/centos-stream-9/` under the HTTP root.
//!
//! The layout is the one of the ISO, which is what Anaconda expects of an
//! install tree: `inst.stage2=<url of os_dir>` (or `inst.repo=`) reads
//! `<os_dir>/.treeinfo`, which points at `images/install.img`; iPXE boots
//! `<os_dir>/images/pxeboot/vmlinuz` and `initrd.img`.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::download::{DownloadConfig, Sha256Digest, hash_file_async, humantime_duration};
use super::staging::{cached_and_verified, cached_path, download_to_cache, place, restore};
use super::{Source, const_path};
use crate::domain::{
    Change, HttpServer, HttpUrl, Interpret, InterpretError, Inventory, Prepared, RelativePath,
    SagaInterpret, SagaScore, Score, Step, StepContext, StepError, StepKey, Topology, UndoData,
};
use crate::infra::process::{ProcessError, Program};

const NAME: &str = "CentosInventoryAssets";

/// The files taken from the ISO, relative to its root and to `os_dir`.
pub const TREE_FILES: [&str; 4] = [
    ".treeinfo",
    "images/pxeboot/vmlinuz",
    "images/pxeboot/initrd.img",
    "images/install.img",
];

/// Where a downloaded ISO waits (and its `.part` resumes) inside `os_dir`;
/// removed after a successful extraction.
pub const ISO_CACHE_NAME: &str = ".harmony-boot.iso";

/// Extract the inventory environment from a CentOS Stream 9 `boot.iso`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CentosInventoryAssets {
    /// The `boot.iso`.
    pub iso: Source,
    /// Checked before anything is extracted.
    pub iso_sha256: Sha256Digest,
    /// Default `os/centos-stream-9`.
    #[serde(default = "default_os_dir")]
    pub os_dir: RelativePath,
    /// A BaseOS/AppStream mirror for the kickstart's `url`/`repo` lines
    /// (recorded here, used by the kickstart Score).
    #[serde(default)]
    pub repo_mirror: Option<HttpUrl>,
    #[serde(default)]
    pub download: DownloadConfig,
    /// Limit for the extraction tool. Default 10 minutes.
    #[serde(default = "default_extract_timeout", with = "humantime_duration")]
    pub extract_timeout: Duration,
}

fn default_os_dir() -> RelativePath {
    const_path("os/centos-stream-9")
}

fn default_extract_timeout() -> Duration {
    Duration::from_secs(600)
}

impl CentosInventoryAssets {
    pub fn new(iso: Source, iso_sha256: Sha256Digest) -> Self {
        Self {
            iso,
            iso_sha256,
            os_dir: default_os_dir(),
            repo_mirror: None,
            download: DownloadConfig::default(),
            extract_timeout: default_extract_timeout(),
        }
    }

    /// Served paths of (kernel, initrd) and of the tree root for
    /// `inst.stage2=`.
    pub fn served_paths(
        &self,
    ) -> Result<(RelativePath, RelativePath, RelativePath), crate::domain::ValueError> {
        Ok((
            self.os_dir.join("images/pxeboot/vmlinuz")?,
            self.os_dir.join("images/pxeboot/initrd.img")?,
            self.os_dir.clone(),
        ))
    }
}

impl<T: Topology + HttpServer> Score<T> for CentosInventoryAssets {
    fn name(&self) -> String {
        NAME.into()
    }

    fn create_interpret(&self) -> Box<dyn Interpret<T>> {
        Box::new(SagaInterpret(self.clone()))
    }
}

#[async_trait]
impl<T: Topology + HttpServer> SagaScore<T> for CentosInventoryAssets {
    fn saga_name(&self) -> String {
        NAME.into()
    }

    async fn steps(&self, _: &Inventory, _: &T) -> Result<Vec<Box<dyn Step<T>>>, InterpretError> {
        let marker = self
            .os_dir
            .join(MARKER)
            .map_err(|e| InterpretError::new(NAME, "build the marker path", e.to_string()))?;
        Ok(vec![Box::new(StageTree {
            assets: self.clone(),
            marker,
        })])
    }
}

/// `<os_dir>/.harmony-tree.json`: which ISO the served tree came from and
/// the digest of each of its files, so a re-run tells "in place" without
/// the ISO.
pub const MARKER: &str = ".harmony-tree.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct TreeMarker {
    iso_sha256: Sha256Digest,
    files: BTreeMap<String, Sha256Digest>,
}

/// What the tree held before: each file's digest, and the old marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct TreeUndo {
    files: Vec<(String, Option<Sha256Digest>)>,
    marker: Option<String>,
}

/// The one step: the tree extracted from the verified ISO, each file
/// placed through the staging cache, then the marker.
#[derive(Debug, Clone)]
struct StageTree {
    assets: CentosInventoryAssets,
    marker: RelativePath,
}

impl StageTree {
    fn served(&self, f: &str) -> Result<RelativePath, StepError> {
        self.assets
            .os_dir
            .join(f)
            .map_err(|e| StepError::new(e.to_string()))
    }

    /// The ISO on local disk, verified: the given file, or the download
    /// in the staging cache. `true` when it was downloaded.
    async fn iso<T: HttpServer>(
        &self,
        ctx: StepContext<'_, T>,
        staging: &Path,
    ) -> Result<(PathBuf, bool), StepError> {
        let want = &self.assets.iso_sha256;
        match &self.assets.iso {
            Source::Path(p) => {
                let (actual, _) = hash_file_async(p)
                    .await
                    .map_err(|e| StepError::new(format!("hash the ISO {}: {e}", p.display())))?;
                if &actual != want {
                    return Err(StepError::new(format!(
                        "checksum mismatch for {}: expected sha256 {want}, got {actual}",
                        p.display()
                    )));
                }
                Ok((p.clone(), false))
            }
            Source::Url(u) => {
                let dest = cached_path(staging, want);
                if cached_and_verified(staging, want).await? {
                    return Ok((dest, true));
                }
                download_to_cache(
                    u,
                    want,
                    &self.assets.download,
                    staging,
                    ctx.inventory.events(),
                    format!("{NAME} boot.iso"),
                    "the ISO",
                )
                .await?;
                Ok((dest, true))
            }
        }
    }
}

#[async_trait]
impl<T: Topology + HttpServer> Step<T> for StageTree {
    fn key(&self) -> StepKey {
        StepKey(format!(
            "tree {} from ISO {}",
            self.assets.os_dir, self.assets.iso_sha256
        ))
    }

    async fn prepare(&self, ctx: StepContext<'_, T>) -> Result<Prepared, StepError> {
        let site = ctx.topology;
        let old_marker = site.read_file(&self.marker).await?;
        let parsed: Option<TreeMarker> = old_marker
            .as_deref()
            .and_then(|b| serde_json::from_slice(b).ok());
        let mut files = Vec::with_capacity(TREE_FILES.len());
        let mut in_place = parsed
            .as_ref()
            .is_some_and(|m| m.iso_sha256 == self.assets.iso_sha256);
        for f in TREE_FILES {
            let current = site.file_sha256(&self.served(f)?).await?;
            in_place &= current.is_some()
                && parsed.as_ref().and_then(|m| m.files.get(f)) == current.as_ref();
            files.push((f.to_string(), current));
        }
        if in_place {
            return Ok(Prepared::InPlace(format!(
                "CentOS Stream 9 tree from ISO {} in place under {}",
                self.assets.iso_sha256, self.assets.os_dir
            )));
        }
        Ok(Prepared::Change {
            description: format!(
                "extract the CentOS Stream 9 tree from ISO {} ({}) into {}",
                self.assets.iso_sha256, self.assets.iso, self.assets.os_dir
            ),
            undo: UndoData::of(&TreeUndo {
                files,
                marker: old_marker.map(|b| String::from_utf8_lossy(&b).into_owned()),
            })?,
        })
    }

    async fn apply(&self, ctx: StepContext<'_, T>) -> Result<Option<String>, StepError> {
        let site = ctx.topology;
        let staging = site.staging_dir().await?;
        let (iso, downloaded) = self.iso(ctx, &staging).await?;

        // Extract next to the cache (same filesystem: renames, no copies).
        let tmp = tempfile::Builder::new()
            .prefix("extract-")
            .tempdir_in(&staging)
            .map_err(|e| StepError::new(format!("temp dir in {}: {e}", staging.display())))?;
        extract(&iso, tmp.path(), self.assets.extract_timeout)
            .await
            .map_err(|e| StepError::new(format!("extract the ISO: {e}")))?;
        for f in TREE_FILES {
            if !tmp.path().join(f).is_file() {
                return Err(StepError::new(format!(
                    "extract the ISO: {} has no {f}: not a CentOS boot.iso?",
                    iso.display()
                )));
            }
        }
        let mut marker = TreeMarker {
            iso_sha256: self.assets.iso_sha256.clone(),
            files: BTreeMap::new(),
        };
        let mut placed = Vec::new();
        for f in TREE_FILES {
            let src = tmp.path().join(f);
            let (sha, size) = hash_file_async(&src)
                .await
                .map_err(|e| StepError::new(format!("hash the extracted {f}: {e}")))?;
            std::fs::rename(&src, cached_path(&staging, &sha))
                .map_err(|e| StepError::new(format!("stage the extracted {f}: {e}")))?;
            if place(site, &self.served(f)?, &sha, &staging).await? == Change::Applied {
                placed.push(format!("{}/{f} ({size} bytes)", self.assets.os_dir));
            }
            marker.files.insert(f.to_string(), sha);
        }
        let json = serde_json::to_vec_pretty(&marker)
            .map_err(|e| StepError::new(format!("encode {MARKER}: {e}")))?;
        site.put_file(&self.marker, &json).await?;
        drop(tmp);
        if downloaded {
            // The tree is what is served; the ISO is not needed any more.
            let _ = std::fs::remove_file(&iso);
        }
        Ok(Some(if placed.is_empty() {
            format!(
                "recorded the tree under {} as from ISO {}",
                self.assets.os_dir, self.assets.iso_sha256
            )
        } else {
            format!("placed {}", placed.join(", "))
        }))
    }

    async fn undo(&self, ctx: StepContext<'_, T>, undo: &UndoData) -> Result<(), StepError> {
        let site = ctx.topology;
        let staging = site.staging_dir().await?;
        let undo: TreeUndo = undo.decode()?;
        for (f, previous) in undo.files.iter().rev() {
            restore(site, &self.served(f)?, previous.as_ref(), &staging).await?;
        }
        match undo.marker {
            Some(old) => site.put_file(&self.marker, old.as_bytes()).await?,
            None => site.remove_file(&self.marker).await?,
        };
        Ok(())
    }
}

/// Why extraction failed.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error(
        "neither bsdtar nor xorriso is installed: install the package libarchive-tools \
         (bsdtar; Fedora: bsdtar) or xorriso"
    )]
    NoTool,
    /// The tool could not run, timed out (its process group killed) or
    /// failed; the error carries the command line and its stderr.
    #[error(transparent)]
    Tool(#[from] ProcessError),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// An ISO extraction tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `bsdtar` (package libarchive-tools).
    Bsdtar,
    /// `xorriso -osirrox on`.
    Xorriso,
}

/// Extracts [`TREE_FILES`] from `iso` into `into` with bsdtar, or xorriso
/// when bsdtar is not installed; makes them readable (0644, dirs 0755).
pub async fn extract(iso: &Path, into: &Path, timeout: Duration) -> Result<(), ExtractError> {
    match extract_with(Tool::Bsdtar, iso, into, timeout).await {
        Err(ExtractError::Tool(ProcessError::NotFound { .. })) => {
            match extract_with(Tool::Xorriso, iso, into, timeout).await {
                Err(ExtractError::Tool(ProcessError::NotFound { .. })) => Err(ExtractError::NoTool),
                r => r,
            }
        }
        r => r,
    }
}

/// [`extract`] with one given tool; a missing tool is
/// `Tool(ProcessError::NotFound)`.
pub async fn extract_with(
    tool: Tool,
    iso: &Path,
    into: &Path,
    timeout: Duration,
) -> Result<(), ExtractError> {
    let program = match tool {
        Tool::Bsdtar => Program::new("bsdtar")
            .arg("-xf")
            .arg(iso)
            .arg("-C")
            .arg(into)
            .args(TREE_FILES),
        Tool::Xorriso => {
            let mut p = Program::new("xorriso")
                .args(["-osirrox", "on", "-indev"])
                .arg(iso);
            for f in TREE_FILES {
                p = p.arg("-extract").arg(format!("/{f}")).arg(into.join(f));
            }
            p
        }
    };
    program.timeout(timeout).run().await?;
    make_readable(into)?;
    Ok(())
}

/// ISO files and dirs are often read-only; the tree must be movable and
/// readable by the web server.
fn make_readable(root: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut dirs: Vec<PathBuf> = vec![root.to_path_buf()];
    // Bounded: the tree holds a handful of directories.
    let mut budget = 64;
    while let Some(d) = dirs.pop() {
        budget -= 1;
        if budget == 0 {
            break;
        }
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755))?;
        for entry in fs::read_dir(&d)? {
            let entry = entry?;
            let ft = entry.file_type()?;
            if ft.is_dir() {
                dirs.push(entry.path());
            } else if ft.is_file() {
                fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o644))?;
            }
        }
    }
    Ok(())
}
