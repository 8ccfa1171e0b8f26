//! A deterministic writer of `newc` cpio archives, the format the Linux
//! kernel unpacks as an initramfs (`Documentation/driver-api/early-userspace/
//! buffer-format.rst`: magic `070701`, thirteen 8-digit hex fields, name and
//! data each padded to 4 bytes, ended by `TRAILER!!!`). Every entry gets
//! mtime 0, uid/gid 0 and inode numbers in insertion order, so the same
//! inputs give the same bytes.

/// An archive being built in memory.
#[derive(Debug, Default)]
pub struct CpioWriter {
    buf: Vec<u8>,
    next_ino: u32,
}

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;

impl CpioWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// A directory (`path` without a leading `/`).
    pub fn dir(&mut self, path: &str, perm: u32) {
        self.entry(path, S_IFDIR | (perm & 0o7777), 2, &[]);
    }

    /// A regular file.
    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) {
        self.entry(path, S_IFREG | (perm & 0o7777), 1, data);
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) {
        self.entry(path, S_IFLNK | 0o777, 1, target.as_bytes());
    }

    /// Appends the trailer and returns the archive.
    pub fn finish(mut self) -> Vec<u8> {
        self.next_ino = 0;
        self.entry("TRAILER!!!", 0, 1, &[]);
        self.buf
    }

    fn entry(&mut self, path: &str, mode: u32, nlink: u32, data: &[u8]) {
        let name = path.trim_start_matches('/');
        let ino = if name == "TRAILER!!!" {
            0
        } else {
            self.next_ino += 1;
            self.next_ino
        };
        let fields = [
            ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime
            u32::try_from(data.len()).unwrap_or(u32::MAX),
            0,
            0,
            0,
            0,
            u32::try_from(name.len() + 1).unwrap_or(u32::MAX),
            0, // check
        ];
        self.buf.extend_from_slice(b"070701");
        for f in fields {
            self.buf.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        self.pad();
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::infra::process::Program;

    #[test]
    fn gnu_cpio_reads_what_we_write() {
        let mut w = CpioWriter::new();
        w.dir("etc", 0o755);
        w.file("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n");
        w.file("init", 0o755, b"#!/bin/sh\n");
        w.symlink("bin/sh", "busybox");
        let a = w.finish();
        assert_eq!(a.len() % 4, 0);
        let again = {
            let mut w = CpioWriter::new();
            w.dir("etc", 0o755);
            w.file("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n");
            w.file("init", 0o755, b"#!/bin/sh\n");
            w.symlink("bin/sh", "busybox");
            w.finish()
        };
        assert_eq!(a, again, "same input, same bytes");
        let out = Program::new("cpio")
            .args(["-t", "-v", "--quiet"])
            .stdin(a)
            .run_blocking()
            .expect("GNU cpio (run .ci/setup)");
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(listing.contains("drwxr-xr-x"), "{listing}");
        assert!(listing.contains("etc/passwd"), "{listing}");
        assert!(listing.contains("-rwxr-xr-x"), "{listing}");
        assert!(listing.contains("bin/sh -> busybox"), "{listing}");
    }
}
