//! The HTTP root booting hosts download from: a local directory served by
//! any static web server (Caddy, nginx, the PXE server's httpd), and the
//! base URL hosts reach it at. Implements the `HttpServer` capability's file
//! operations; paths are [`RelativePath`]s, so nothing escapes the root.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::digest_cache::Manifest;
use crate::domain::{
    CapResult, CapabilityError, Change, HttpServer, HttpUrl, RelativePath, Sha256Digest, Topology,
};

const CAPABILITY: &str = "http root";
/// The staging directory under the root; no `RelativePath` can name it.
pub const STAGING: &str = crate::domain::values::RESERVED_STAGING;

/// A served directory and its public URL.
#[derive(Debug, Clone)]
pub struct HttpRoot {
    dir: PathBuf,
    base_url: HttpUrl,
}

impl HttpRoot {
    pub fn new(dir: impl Into<PathBuf>, base_url: HttpUrl) -> Self {
        Self {
            dir: dir.into(),
            base_url,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The URL of the root itself.
    pub fn base_url(&self) -> &HttpUrl {
        &self.base_url
    }

    /// Local path of a served file.
    pub fn local_path(&self, path: &RelativePath) -> PathBuf {
        self.dir.join(path.as_str())
    }

    pub fn url_for(&self, path: &RelativePath) -> HttpUrl {
        // A RelativePath only holds URL-safe characters, so the join is valid.
        self.base_url
            .join(path.as_str())
            .unwrap_or_else(|_| self.base_url.clone())
    }

    pub fn put_file(&self, path: &RelativePath, contents: &[u8]) -> CapResult<Change> {
        super::fs::write_atomic(&self.local_path(path), contents, 0o644)
            .map_err(|e| err(path, "write", e))
    }

    pub fn put_file_from(&self, path: &RelativePath, source: &Path) -> CapResult<Change> {
        super::fs::move_atomic(source, &self.local_path(path))
            .map_err(|e| err(path, "move into place", e))
    }

    pub fn remove_file(&self, path: &RelativePath) -> CapResult<Change> {
        match std::fs::remove_file(self.local_path(path)) {
            Ok(()) => Ok(Change::Applied),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Change::Unchanged),
            Err(e) => Err(err(path, "remove", e)),
        }
    }

    pub fn list_files(&self, dir: &RelativePath) -> CapResult<Vec<RelativePath>> {
        let entries = match std::fs::read_dir(self.local_path(dir)) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(err(dir, "list", e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| err(dir, "list", e))?;
            // symlink_metadata: a link is not a served regular file here.
            let is_file = entry
                .path()
                .symlink_metadata()
                .map(|m| m.is_file())
                .unwrap_or(false);
            let name = entry.file_name();
            if let (true, Some(name)) = (is_file, name.to_str())
                && !name.starts_with('.')
                && let Ok(p) = dir.join(name)
            {
                out.push(p);
            }
        }
        out.sort();
        Ok(out)
    }

    pub fn take_file(&self, path: &RelativePath, dest: &Path) -> CapResult<Change> {
        let src = self.local_path(path);
        if !src.is_file() {
            return Ok(Change::Unchanged);
        }
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(path, "take out", e))?;
        }
        std::fs::rename(&src, dest).map_err(|e| err(path, "take out", e))?;
        for dir in [src.parent(), dest.parent()].into_iter().flatten() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| err(path, "sync the directory after taking out", e))?;
        }
        Ok(Change::Applied)
    }

    /// Through the digest cache of the file's directory
    /// ([`super::digest_cache`]): hashed once, then trusted while its size
    /// and modification time stay the same.
    pub fn file_sha256(&self, path: &RelativePath) -> CapResult<Option<Sha256Digest>> {
        let local = self.local_path(path);
        let (Some(dir), Some(name)) = (local.parent(), local.file_name().and_then(|n| n.to_str()))
        else {
            return Ok(None);
        };
        let mut cache = Manifest::load(dir);
        let digest = cache.digest(dir, name).map_err(|e| err(path, "hash", e))?;
        if dir.is_dir() {
            cache
                .save(dir)
                .map_err(|e| err(path, "record the digest of", e))?;
        }
        Ok(digest)
    }

    /// `<root>/.harmony-staging` (created): same filesystem, so renames
    /// into the root are atomic.
    pub fn staging_dir(&self) -> CapResult<PathBuf> {
        let dir = self.dir.join(STAGING);
        std::fs::create_dir_all(&dir).map_err(|e| {
            CapabilityError::new(CAPABILITY, format!("create {}: {e}", dir.display()))
        })?;
        Ok(dir)
    }

    pub fn read_file(&self, path: &RelativePath) -> CapResult<Option<Vec<u8>>> {
        match std::fs::read(self.local_path(path)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(err(path, "read", e)),
        }
    }
}

impl Topology for HttpRoot {
    fn name(&self) -> &str {
        "http root"
    }
}

/// Runs blocking file work off the async executor.
async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> CapResult<R> + Send + 'static,
) -> CapResult<R> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CapabilityError::new(CAPABILITY, format!("file task: {e}")))?
}

#[async_trait]
impl HttpServer for HttpRoot {
    async fn put_file(&self, path: &RelativePath, contents: &[u8]) -> CapResult<Change> {
        let (root, path, contents) = (self.clone(), path.clone(), contents.to_vec());
        blocking(move || HttpRoot::put_file(&root, &path, &contents)).await
    }

    async fn put_file_from(&self, path: &RelativePath, source: &Path) -> CapResult<Change> {
        let (root, path, source) = (self.clone(), path.clone(), source.to_path_buf());
        blocking(move || HttpRoot::put_file_from(&root, &path, &source)).await
    }

    async fn remove_file(&self, path: &RelativePath) -> CapResult<Change> {
        let (root, path) = (self.clone(), path.clone());
        blocking(move || HttpRoot::remove_file(&root, &path)).await
    }

    async fn list_files(&self, dir: &RelativePath) -> CapResult<Vec<RelativePath>> {
        let (root, dir) = (self.clone(), dir.clone());
        blocking(move || HttpRoot::list_files(&root, &dir)).await
    }

    async fn take_file(&self, path: &RelativePath, dest: &Path) -> CapResult<Change> {
        let (root, path, dest) = (self.clone(), path.clone(), dest.to_path_buf());
        blocking(move || HttpRoot::take_file(&root, &path, &dest)).await
    }

    async fn file_sha256(&self, path: &RelativePath) -> CapResult<Option<Sha256Digest>> {
        let (root, path) = (self.clone(), path.clone());
        blocking(move || HttpRoot::file_sha256(&root, &path)).await
    }

    async fn staging_dir(&self) -> CapResult<PathBuf> {
        let root = self.clone();
        blocking(move || HttpRoot::staging_dir(&root)).await
    }

    async fn read_file(&self, path: &RelativePath) -> CapResult<Option<Vec<u8>>> {
        let (root, path) = (self.clone(), path.clone());
        blocking(move || HttpRoot::read_file(&root, &path)).await
    }

    fn url_for(&self, path: &RelativePath) -> HttpUrl {
        HttpRoot::url_for(self, path)
    }

    fn base_url(&self) -> HttpUrl {
        HttpRoot::base_url(self).clone()
    }
}

fn err(path: &RelativePath, action: &str, e: std::io::Error) -> CapabilityError {
    CapabilityError::new(CAPABILITY, format!("{action} {path}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_urls() {
        let d = tempfile::tempdir().unwrap();
        let root = HttpRoot::new(d.path(), "http://192.168.77.1:8080/".parse().unwrap());
        let p: RelativePath = "ipxe/52-54-00-aa-bb-01.ipxe".parse().unwrap();
        assert_eq!(
            root.url_for(&p).as_str(),
            "http://192.168.77.1:8080/ipxe/52-54-00-aa-bb-01.ipxe"
        );
        assert_eq!(root.read_file(&p).unwrap(), None);
        assert_eq!(root.put_file(&p, b"#!ipxe\n").unwrap(), Change::Applied);
        assert_eq!(root.put_file(&p, b"#!ipxe\n").unwrap(), Change::Unchanged);
        assert_eq!(
            root.read_file(&p).unwrap().as_deref(),
            Some(&b"#!ipxe\n"[..])
        );
        assert_eq!(root.remove_file(&p).unwrap(), Change::Applied);
        assert_eq!(root.remove_file(&p).unwrap(), Change::Unchanged);
    }
}
