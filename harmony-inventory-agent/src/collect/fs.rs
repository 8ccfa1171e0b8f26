//! Reading `/proc` and `/sys` under a configurable root.
//!
//! Every read is bounded in size and tolerant of odd content: non-UTF-8 bytes
//! are replaced, NULs and surrounding white space are trimmed, and empty
//! values become `None`. Nothing here panics on hostile files.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Largest attribute file read; sysfs attributes are at most a page.
const MAX_ATTR_BYTES: u64 = 64 * 1024;
/// Largest text file read (`/proc/cpuinfo` on a 512-thread host is ~1 MiB).
const MAX_TEXT_BYTES: u64 = 16 * 1024 * 1024;
/// Longest string value kept in the inventory.
pub const MAX_VALUE_CHARS: usize = 256;

/// The filesystem root the collectors read from (`/` on a real host).
#[derive(Debug, Clone)]
pub struct SysRoot {
    root: PathBuf,
}

impl SysRoot {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Whether this is the live system (`/`), not a fixture tree.
    pub fn is_live(&self) -> bool {
        self.root == Path::new("/")
    }

    /// Absolute path of `rel` (an absolute path like `/sys/block`) under the root.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        let rel = rel.as_ref();
        self.root.join(rel.strip_prefix("/").unwrap_or(rel))
    }

    /// Raw bytes of a file, at most `limit` bytes.
    pub fn read_bytes(&self, rel: impl AsRef<Path>, limit: u64) -> io::Result<Vec<u8>> {
        read_capped(&self.path(rel), limit)
    }

    /// A whole text file (lossy UTF-8), bounded.
    pub fn read_text(&self, rel: impl AsRef<Path>) -> io::Result<String> {
        let bytes = read_capped(&self.path(rel), MAX_TEXT_BYTES)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// A sysfs attribute as a cleaned string; `None` when missing, unreadable or empty.
    pub fn attr(&self, rel: impl AsRef<Path>) -> Option<String> {
        self.attr_result(rel).ok().flatten()
    }

    /// Like [`SysRoot::attr`] but keeps the I/O error (e.g. `EINVAL` on a down NIC).
    pub fn attr_result(&self, rel: impl AsRef<Path>) -> io::Result<Option<String>> {
        let bytes = read_capped(&self.path(rel), MAX_ATTR_BYTES)?;
        Ok(clean_value(&bytes))
    }

    /// An attribute parsed as an integer; `None` when absent or not a number.
    pub fn attr_i64(&self, rel: impl AsRef<Path>) -> Option<i64> {
        self.attr(rel).and_then(|s| s.parse().ok())
    }

    /// An attribute parsed as an unsigned integer; `None` when absent, negative or not a number.
    pub fn attr_u64(&self, rel: impl AsRef<Path>) -> Option<u64> {
        self.attr(rel).and_then(|s| s.parse().ok())
    }

    /// An attribute holding `0`/`1`.
    pub fn attr_bool(&self, rel: impl AsRef<Path>) -> Option<bool> {
        match self.attr(rel).as_deref() {
            Some("1") => Some(true),
            Some("0") => Some(false),
            _ => None,
        }
    }

    /// File name of a symlink's target (e.g. the driver behind `device/driver`).
    pub fn link_name(&self, rel: impl AsRef<Path>) -> Option<String> {
        let target = fs::read_link(self.path(rel)).ok()?;
        target
            .file_name()
            .map(|n| truncate(n.to_string_lossy().into_owned()))
    }

    /// Canonical path of `rel`, resolving the relative symlinks sysfs is made of.
    pub fn canonical(&self, rel: impl AsRef<Path>) -> Option<PathBuf> {
        fs::canonicalize(self.path(rel)).ok()
    }

    /// `abs` (e.g. from [`SysRoot::canonical`]) as an absolute path inside
    /// the root (`/sys/devices/...`); `None` when it lies outside the root.
    pub fn relative(&self, abs: &Path) -> Option<PathBuf> {
        let root = fs::canonicalize(&self.root).ok()?;
        let rel = abs.strip_prefix(&root).ok()?;
        Some(Path::new("/").join(rel))
    }

    /// Entry names of a directory, sorted; empty when it cannot be read.
    pub fn dir_names(&self, rel: impl AsRef<Path>) -> io::Result<Vec<String>> {
        let mut names: Vec<String> = fs::read_dir(self.path(rel))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    }

    pub fn exists(&self, rel: impl AsRef<Path>) -> bool {
        self.path(rel).exists()
    }

    /// A directory, following symlinks (sysfs links each interface).
    pub fn is_dir(&self, rel: impl AsRef<Path>) -> bool {
        self.path(rel).is_dir()
    }
}

fn read_capped(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = fs::File::open(path)?;
    let mut buf = Vec::new();
    file.take(limit).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Lossy UTF-8, trimmed of white space and NULs, control characters dropped,
/// bounded in length; `None` when nothing is left.
pub fn clean_value(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let cleaned: String = text
        .trim_matches(|c: char| c.is_whitespace() || c == '\0')
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let cleaned = cleaned.trim().to_string();
    if cleaned.is_empty() {
        None
    } else {
        Some(truncate(cleaned))
    }
}

fn truncate(mut s: String) -> String {
    if let Some((idx, _)) = s.char_indices().nth(MAX_VALUE_CHARS) {
        s.truncate(idx);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_value_handles_odd_bytes() {
        assert_eq!(clean_value(b"  Samsung SSD \n"), Some("Samsung SSD".into()));
        assert_eq!(clean_value(b"\0\0\n"), None);
        assert_eq!(clean_value(b""), None);
        assert_eq!(
            clean_value(b"ab\xffcd\x07e"),
            Some("ab\u{fffd}cde".into()),
            "invalid UTF-8 replaced, control chars dropped"
        );
        let long = vec![b'x'; 10_000];
        assert_eq!(clean_value(&long).map(|s| s.len()), Some(MAX_VALUE_CHARS));
    }

    #[test]
    fn path_stays_under_root() {
        let r = SysRoot::new("/tmp/fixture");
        assert_eq!(
            r.path("/sys/block"),
            PathBuf::from("/tmp/fixture/sys/block")
        );
        assert_eq!(
            r.path("proc/meminfo"),
            PathBuf::from("/tmp/fixture/proc/meminfo")
        );
    }
}
