//! `<os_dir>/.harmony-assets.json`: what Harmony placed in an asset
//! directory, so that a re-run can tell "in place" cheaply.
//!
//! A file counts as in place when the manifest records the wanted sha256
//! for it and the file's size and modification time still equal the
//! recorded ones (a replaced or edited file changes its mtime). Without a
//! matching entry the file is hashed in full once, and the entry written.
//! A lost or corrupt manifest therefore costs a re-hash, never a wrong Noop
//! that matters: the manifest is only trusted together with size and mtime.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use super::download::{Sha256Digest, hash_file_async};
use crate::domain::Change;
use crate::infra::fs::write_atomic;

pub const FILE_NAME: &str = ".harmony-assets.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub sha256: Sha256Digest,
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: u128,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Digest of the input the files came from (the ISO), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_sha256: Option<Sha256Digest>,
    /// Relative path under the asset directory -> entry.
    #[serde(default)]
    pub files: BTreeMap<String, Entry>,
}

impl Manifest {
    /// The manifest in `dir`; empty when absent or unreadable.
    pub fn load(dir: &Path) -> Manifest {
        fs::read(dir.join(FILE_NAME))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, dir: &Path) -> io::Result<Change> {
        let json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        write_atomic(&dir.join(FILE_NAME), &json, 0o644)
    }

    /// Whether `dir/name` is recorded with `sha256` and unchanged since.
    pub fn matches(&self, dir: &Path, name: &str, sha256: &Sha256Digest) -> bool {
        match (self.files.get(name), stat(&dir.join(name))) {
            (Some(e), Ok(Some((size, mtime_ns)))) => {
                &e.sha256 == sha256 && e.size == size && e.mtime_ns == mtime_ns
            }
            _ => false,
        }
    }

    /// Records the current size and mtime of `dir/name` with `sha256`.
    pub fn record(&mut self, dir: &Path, name: &str, sha256: &Sha256Digest) -> io::Result<()> {
        let (size, mtime_ns) = stat(&dir.join(name))?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, name.to_string()))?;
        self.files.insert(
            name.to_string(),
            Entry {
                sha256: sha256.clone(),
                size,
                mtime_ns,
            },
        );
        Ok(())
    }

    /// In place by the manifest, or else by a full hash (then recorded).
    /// `Ok(false)` when the file is absent or differs.
    pub async fn verify(
        &mut self,
        dir: &Path,
        name: &str,
        sha256: &Sha256Digest,
    ) -> io::Result<bool> {
        if self.matches(dir, name, sha256) {
            return Ok(true);
        }
        let path = dir.join(name);
        if stat(&path)?.is_none() {
            return Ok(false);
        }
        let (actual, _) = hash_file_async(&path).await?;
        if &actual == sha256 {
            self.record(dir, name, sha256)?;
            Ok(true)
        } else {
            Ok(false)
        }
    }
}

/// Size and mtime (ns) of a regular file; `None` when absent.
fn stat(path: &Path) -> io::Result<Option<(u64, u128)>> {
    match fs::metadata(path) {
        Ok(m) if m.is_file() => {
            let mtime = m
                .modified()?
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            Ok(Some((m.len(), mtime)))
        }
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
