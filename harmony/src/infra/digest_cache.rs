//! The HTTP root's digest cache: `<dir>/.harmony-assets.json` records the
//! SHA-256 of the files of `dir`, so that "is this 1 GiB rootfs in place?"
//! does not re-hash it on every run.
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

use sha2::{Digest, Sha256};

use crate::domain::{Change, Sha256Digest};
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

    /// The SHA-256 of `dir/name`: from the manifest while size and mtime
    /// are unchanged, else by a full hash (then recorded). `None` when the
    /// file is absent.
    pub fn digest(&mut self, dir: &Path, name: &str) -> io::Result<Option<Sha256Digest>> {
        let Some((size, mtime_ns)) = stat(&dir.join(name))? else {
            self.files.remove(name);
            return Ok(None);
        };
        if let Some(e) = self.files.get(name)
            && e.size == size
            && e.mtime_ns == mtime_ns
        {
            return Ok(Some(e.sha256.clone()));
        }
        let (sha, _) = hash_file(&dir.join(name))?;
        self.record(dir, name, &sha)?;
        Ok(Some(sha))
    }
}

/// SHA-256 and length of a file, read in 1 MiB chunks.
pub fn hash_file(path: &Path) -> io::Result<(Sha256Digest, u64)> {
    use std::io::Read;
    let mut f = fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            return Ok((Sha256Digest::from_bytes(h.finalize().into()), n));
        }
        h.update(&buf[..k]);
        n += k as u64;
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
