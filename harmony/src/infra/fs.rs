//! Atomic file writes: a temp file in the target directory, fsync, rename,
//! then fsync of the directory, so a reader (or a crash) sees the old file
//! or the new one, never half of one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use crate::domain::Change;

/// Writes `contents` to `dest` atomically; `Unchanged` (and no write) when
/// `dest` already holds exactly these bytes. Sets `mode` on the new file.
pub fn write_atomic(dest: &Path, contents: &[u8], mode: u32) -> io::Result<Change> {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(existing) = fs::read(dest)
        && existing == contents
        && fs::metadata(dest)
            .map(|m| m.permissions().mode() & 0o7777 == mode)
            .unwrap_or(false)
    {
        return Ok(Change::Unchanged);
    }
    let dir = dest
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "destination has no parent"))?;
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".harmony-")
        .tempfile_in(dir)?;
    tmp.write_all(contents)?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))?;
    tmp.as_file().sync_all()?;
    tmp.persist(dest).map_err(|e| e.error)?;
    sync_dir(dir)?;
    Ok(Change::Applied)
}

/// Renames a finished file `source` onto `dest` (same filesystem), then
/// fsyncs the directory. `Unchanged` when `dest` already has the same bytes
/// (then `source` is removed).
pub fn move_atomic(source: &Path, dest: &Path) -> io::Result<Change> {
    let dir = dest
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "destination has no parent"))?;
    fs::create_dir_all(dir)?;
    if same_contents(source, dest)? {
        fs::remove_file(source)?;
        return Ok(Change::Unchanged);
    }
    File::open(source)?.sync_all()?;
    fs::rename(source, dest)?;
    sync_dir(dir)?;
    Ok(Change::Applied)
}

fn same_contents(a: &Path, b: &Path) -> io::Result<bool> {
    let (Ok(ma), Ok(mb)) = (fs::metadata(a), fs::metadata(b)) else {
        return Ok(false);
    };
    if ma.len() != mb.len() {
        return Ok(false);
    }
    // Compare in chunks: assets are hundreds of MiB.
    use std::io::Read;
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(true);
        }
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_then_noop_then_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/a.ipxe");
        assert_eq!(write_atomic(&p, b"one", 0o644).unwrap(), Change::Applied);
        assert_eq!(write_atomic(&p, b"one", 0o644).unwrap(), Change::Unchanged);
        assert_eq!(
            write_atomic(&p, b"one", 0o600).unwrap(),
            Change::Applied,
            "mode differs"
        );
        assert_eq!(write_atomic(&p, b"two", 0o600).unwrap(), Change::Applied);
        assert_eq!(fs::read(&p).unwrap(), b"two");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // No temp files left behind.
        let names: Vec<_> = fs::read_dir(d.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.ipxe"]);
    }

    #[test]
    fn move_skips_identical_files() {
        let d = tempfile::tempdir().unwrap();
        let (src, dst) = (d.path().join("src"), d.path().join("out/dst"));
        fs::write(&src, b"kernel").unwrap();
        assert_eq!(move_atomic(&src, &dst).unwrap(), Change::Applied);
        assert!(!src.exists());
        fs::write(&src, b"kernel").unwrap();
        assert_eq!(move_atomic(&src, &dst).unwrap(), Change::Unchanged);
        assert!(!src.exists(), "the duplicate is removed");
        fs::write(&src, b"kernel2").unwrap();
        assert_eq!(move_atomic(&src, &dst).unwrap(), Change::Applied);
        assert_eq!(fs::read(&dst).unwrap(), b"kernel2");
    }
}
