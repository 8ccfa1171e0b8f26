//! Placing large verified files (OS images) into the HTTP root as
//! undoable saga steps, through a content-addressed staging cache.
//!
//! The staging directory is the `HttpServer`'s own (same filesystem as
//! the root, kept between runs). A file in it is named by its SHA-256 and
//! is only ever written there verified (downloads land in `<sha>.part` and
//! are renamed after the check). [`place`] renames the cached file into the
//! served path; the file it replaces goes to the cache under its own
//! digest. [`unplace`] reverses both: the placed file goes back to the
//! cache, the replaced one back into the root. So rolling back a run never
//! throws away gigabytes already fetched: the next run places them again
//! without a download.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::download::{self, DownloadConfig, DownloadReport};
use crate::domain::{
    Change, Event, EventBus, HttpServer, HttpUrl, RelativePath, Sha256Digest, StepError,
};

/// Where the verified file with digest `sha` is cached.
pub fn cached_path(staging: &Path, sha: &Sha256Digest) -> PathBuf {
    staging.join(sha.as_str())
}

/// The undo data of a placement: what the path held before, what was put.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub previous: Option<Sha256Digest>,
    pub placed: Sha256Digest,
}

/// Downloads `url` into the cache as `sha` (through `<sha>.part`, resumed
/// by a later call), publishing progress as `task`. A failure names `what`
/// and, when there is one, where the partial download waits.
pub async fn download_to_cache(
    url: &HttpUrl,
    sha: &Sha256Digest,
    cfg: &DownloadConfig,
    staging: &Path,
    events: &EventBus,
    task: String,
    what: &str,
) -> Result<DownloadReport, StepError> {
    let dest = cached_path(staging, sha);
    let events = events.clone();
    let progress = move |done: u64, total: u64| {
        events.publish(Event::Progress {
            task: task.clone(),
            done,
            total,
        });
    };
    download::download(url, &dest, sha, cfg, &progress)
        .await
        .map_err(|e| {
            let part = download::part_path(&dest);
            let err = StepError::new(format!("download {what}: {e}"));
            if part.exists() {
                err.with_state_left(format!(
                    "partial download of {what} kept at {} for resume",
                    part.display()
                ))
            } else {
                err
            }
        })
}

/// Whether the cache holds a verified copy of `sha` (re-hashed: a cached
/// file damaged on disk is deleted, never served).
pub async fn cached_and_verified(staging: &Path, sha: &Sha256Digest) -> Result<bool, StepError> {
    let path = cached_path(staging, sha);
    let p = path.clone();
    let hashed = tokio::task::spawn_blocking(move || {
        if p.is_file() {
            crate::infra::digest_cache::hash_file(&p).map(|(d, _)| Some(d))
        } else {
            Ok(None)
        }
    })
    .await
    .map_err(|e| StepError::new(format!("hash task: {e}")))?
    .map_err(|e| StepError::new(format!("hash {}: {e}", path.display())))?;
    match hashed {
        None => Ok(false),
        Some(d) if &d == sha => Ok(true),
        Some(d) => {
            tracing::warn!(path = %path.display(), found = %d, "damaged file in the staging cache, deleted");
            std::fs::remove_file(&path)
                .map_err(|e| StepError::new(format!("remove {}: {e}", path.display())))?;
            Ok(false)
        }
    }
}

/// Moves the cached file `sha` to `path`, keeping any other file there in
/// the cache, then reads the digest back: the served file must be `sha`.
pub async fn place<T: HttpServer + ?Sized>(
    site: &T,
    path: &RelativePath,
    sha: &Sha256Digest,
    staging: &Path,
) -> Result<Change, StepError> {
    match site.file_sha256(path).await? {
        Some(current) if &current == sha => return Ok(Change::Unchanged),
        Some(current) => {
            site.take_file(path, &cached_path(staging, &current))
                .await?;
        }
        None => {}
    }
    site.put_file_from(path, &cached_path(staging, sha)).await?;
    match site.file_sha256(path).await? {
        Some(d) if &d == sha => Ok(Change::Applied),
        other => Err(StepError::new(format!(
            "{path}: read back sha256 {} after placing {sha}",
            other.map_or_else(|| "none (file missing)".to_string(), |d| d.to_string())
        ))),
    }
}

/// Undoes [`place`]: the placed file back to the cache, the previous one
/// (if any, and still cached) back into the root.
pub async fn unplace<T: HttpServer + ?Sized>(
    site: &T,
    path: &RelativePath,
    undo: &Placement,
    staging: &Path,
) -> Result<(), StepError> {
    restore(site, path, undo.previous.as_ref(), staging).await
}

/// Puts `path` back to `previous` (a digest, or no file): a different file
/// there goes to the cache, the previous one comes back from it.
pub async fn restore<T: HttpServer + ?Sized>(
    site: &T,
    path: &RelativePath,
    previous: Option<&Sha256Digest>,
    staging: &Path,
) -> Result<(), StepError> {
    let current = site.file_sha256(path).await?;
    if current.as_ref() == previous {
        return Ok(());
    }
    // The file to put back must be there, verified, before the current one
    // is taken out: an undo never leaves the path empty by surprise.
    if let Some(previous) = previous
        && !cached_and_verified(staging, previous).await?
    {
        return Err(StepError::new(format!(
            "{path}: the file it replaced (sha256 {previous}) is no longer in {}; \
             left the current file in place",
            staging.display()
        )));
    }
    if let Some(current) = &current {
        site.take_file(path, &cached_path(staging, current)).await?;
    }
    if let Some(previous) = previous {
        site.put_file_from(path, &cached_path(staging, previous))
            .await?;
    }
    Ok(())
}
