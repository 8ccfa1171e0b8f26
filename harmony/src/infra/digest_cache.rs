//! The HTTP root's digest cache: `<dir>/.harmony-assets.json` records the
//! SHA-256 of the files of `dir`, so that "is this 1 GiB rootfs in place?"
//! does not re-hash it on every run.
//!
//! A recorded digest is trusted while the file's [`Stamp`] (size, mtime,
//! ctime, inode) is unchanged: any write, rename or `touch` changes the
//! ctime, which no user tool can set back. Without a matching entry the
//! file is hashed in full once and the entry written. A lost or corrupt
//! manifest therefore costs a re-hash, never a wrong answer. Writing the
//! manifest is bookkeeping: on a read-only root it is skipped.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use sha2::{Digest, Sha256};

use crate::domain::{Change, Sha256Digest};
use crate::infra::fs::write_atomic;

pub const FILE_NAME: &str = ".harmony-assets.json";

/// What identifies one version of a file without reading it: size,
/// modification and change times, inode. `cp -p` or `rsync -a` can keep a
/// size and mtime, but not the ctime (the kernel sets it on every change).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub size: u64,
    /// Nanoseconds since the epoch.
    pub mtime_ns: i64,
    #[serde(default)]
    pub ctime_ns: i64,
    #[serde(default)]
    pub ino: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub sha256: Sha256Digest,
    #[serde(flatten)]
    pub stamp: Stamp,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// File name in the directory -> entry.
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

    /// The SHA-256 of `dir/name`: from the manifest while its stamp is
    /// unchanged, else by a full hash, recorded only when the stamp was the
    /// same before and after hashing (a file written meanwhile is hashed
    /// again next time). `None` when the file is absent.
    pub fn digest(&mut self, dir: &Path, name: &str) -> io::Result<Option<Sha256Digest>> {
        let path = dir.join(name);
        let Some(before) = stamp(&path)? else {
            self.files.remove(name);
            return Ok(None);
        };
        if let Some(e) = self.files.get(name)
            && e.stamp == before
        {
            return Ok(Some(e.sha256.clone()));
        }
        let (sha, _) = hash_file(&path)?;
        if stamp(&path)? == Some(before) {
            self.files.insert(
                name.to_string(),
                Entry {
                    sha256: sha.clone(),
                    stamp: before,
                },
            );
        } else {
            self.files.remove(name);
        }
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

/// The stamp of a regular file; `None` when absent.
fn stamp(path: &Path) -> io::Result<Option<Stamp>> {
    use std::os::unix::fs::MetadataExt;
    match fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(Some(Stamp {
            size: m.len(),
            mtime_ns: m
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(m.mtime_nsec()),
            ctime_ns: m
                .ctime()
                .saturating_mul(1_000_000_000)
                .saturating_add(m.ctime_nsec()),
            ino: m.ino(),
        })),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
