//! `CentosInventoryAssets`: the CentOS Stream 9 inventory environment
//! (kernel, initrd, Anaconda stage2 and `.treeinfo`) extracted from a
//! verified `boot.iso` into `os/centos-stream-9/` under the HTTP root.
//!
//! The layout is the one of the ISO, which is what Anaconda expects of an
//! install tree: `inst.stage2=<url of os_dir>` (or `inst.repo=`) reads
//! `<os_dir>/.treeinfo`, which points at `images/install.img`; iPXE boots
//! `<os_dir>/images/pxeboot/vmlinuz` and `initrd.img`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::download::{self, DownloadConfig, Sha256Digest, hash_file_async, humantime_duration};
use super::manifest::Manifest;
use super::{HttpRootAccess, Source, const_path};
use crate::domain::{
    Change, Event, HttpUrl, Interpret, InterpretError, Inventory, Outcome, RelativePath, Score,
    Topology,
};
use crate::infra::fs::move_atomic;
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

impl<T: Topology + HttpRootAccess> Score<T> for CentosInventoryAssets {
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

/// Whether the manifest says the tree came from this ISO and no file has
/// changed since (size and mtime).
fn in_place(manifest: &Manifest, dir: &Path, iso: &Sha256Digest) -> bool {
    manifest.source_sha256.as_ref() == Some(iso)
        && TREE_FILES.iter().all(|f| {
            manifest
                .files
                .get(*f)
                .is_some_and(|e| manifest.matches(dir, f, &e.sha256))
        })
}

#[async_trait]
impl<T: Topology + HttpRootAccess> Interpret<T> for CentosInventoryAssets {
    async fn plan(&self, _: &Inventory, _: &T) -> Result<crate::domain::Plan, InterpretError> {
        Err(InterpretError::new(NAME, "plan", "TEMPORARY"))
    }

    async fn execute(
        &self,
        inventory: &Inventory,
        topology: &T,
    ) -> Result<Outcome, InterpretError> {
        let dir = topology.http_root().local_path(&self.os_dir);
        let manifest = Manifest::load(&dir);
        if in_place(&manifest, &dir, &self.iso_sha256) {
            return Ok(Outcome::noop(format!(
                "CentOS Stream 9 tree from ISO {} in place under {}",
                self.iso_sha256, self.os_dir
            )));
        }

        // 1. The ISO, verified before extraction.
        let (iso_path, downloaded) = match &self.iso {
            Source::Path(p) => {
                let (actual, _) = hash_file_async(p)
                    .await
                    .map_err(|e| fail("hash the ISO", format!("{}: {e}", p.display())))?;
                if actual != self.iso_sha256 {
                    return Err(fail(
                        "verify the ISO",
                        format!(
                            "checksum mismatch for {}: expected sha256 {}, got {actual}",
                            p.display(),
                            self.iso_sha256
                        ),
                    ));
                }
                (p.clone(), false)
            }
            Source::Url(u) => {
                let dest = dir.join(ISO_CACHE_NAME);
                let task = format!("{NAME} boot.iso");
                let events = inventory.events().clone();
                let progress = move |done: u64, total: u64| {
                    events.publish(Event::Progress {
                        task: task.clone(),
                        done,
                        total,
                    });
                };
                download::download(u, &dest, &self.iso_sha256, &self.download, &progress)
                    .await
                    .map_err(|e| {
                        let kept = download::part_path(&dest);
                        let state = if kept.exists() {
                            format!("partial ISO kept at {} for resume", kept.display())
                        } else {
                            "nothing extracted".into()
                        };
                        fail("download the ISO", e).with_state_left(state)
                    })?;
                (dest, true)
            }
        };

        // 2. Extract into a temp dir next to the tree (same filesystem).
        fs::create_dir_all(&dir).map_err(|e| {
            fail(
                "create the tree directory",
                format!("{}: {e}", dir.display()),
            )
        })?;
        let tmp = tempfile::Builder::new()
            .prefix(".harmony-extract-")
            .tempdir_in(&dir)
            .map_err(|e| fail("create a temp dir", format!("{}: {e}", dir.display())))?;
        let tmp_path = tmp.path().to_path_buf();
        let iso_for_tool = iso_path.clone();
        let timeout = self.extract_timeout;
        extract(&iso_for_tool, &tmp_path, timeout)
            .await
            .map_err(|e| fail("extract the ISO", e))?;

        // 3. Verify presence, then move each file into place.
        let mut manifest = Manifest {
            source_sha256: Some(self.iso_sha256.clone()),
            ..Manifest::default()
        };
        let mut changes = Vec::new();
        for f in TREE_FILES {
            let src = tmp_path.join(f);
            if !src.is_file() {
                return Err(fail(
                    "extract the ISO",
                    format!("{} has no {f}: not a CentOS boot.iso?", iso_path.display()),
                ));
            }
        }
        for f in TREE_FILES {
            let src = tmp_path.join(f);
            let (sha, size) = hash_file_async(&src)
                .await
                .map_err(|e| fail("hash an extracted file", format!("{f}: {e}")))?;
            let dest = dir.join(f);
            let (from, to) = (src.clone(), dest.clone());
            let moved = tokio::task::spawn_blocking(move || move_atomic(&from, &to))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            let change = moved.map_err(|e| {
                fail(
                    "place an extracted file",
                    format!("{}: {e}", dest.display()),
                )
                .with_state_left(if changes.is_empty() {
                    "nothing placed".to_string()
                } else {
                    changes.join("; ")
                })
            })?;
            manifest
                .record(&dir, f, &sha)
                .map_err(|e| fail("record the manifest", e))?;
            if change == Change::Applied {
                changes.push(format!("placed {}/{f} ({size} bytes)", self.os_dir));
            }
        }
        manifest
            .save(&dir)
            .map_err(|e| fail("write the manifest", format!("{}: {e}", dir.display())))?;
        drop(tmp);
        if downloaded {
            let _ = fs::remove_file(&iso_path);
        }
        if changes.is_empty() {
            return Ok(Outcome::noop(format!(
                "CentOS Stream 9 tree already matched ISO {} under {}",
                self.iso_sha256, self.os_dir
            )));
        }
        Ok(Outcome::success(changes))
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
