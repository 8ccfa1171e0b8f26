//! The Caddyfile Harmony runs Caddy with: one plain-HTTP site bound to the
//! listen address, serving the HTTP root read-only, with its admin endpoint
//! on a loopback port of Harmony's choosing, a JSON access log, explicit
//! content types for boot files, and nothing under the root that Harmony
//! does not serve: `.harmony-*` (staging, digest cache, temp files) and
//! dot paths answer 404 (`.treeinfo` aside: Anaconda reads it), and every
//! symbolic link found in the root is hidden (Caddy's `file_server` follows
//! links, even out of the root).
//!
//! Paths reach the text only after [`caddy_path`] accepted them.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// What a Caddyfile is rendered from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteSpec {
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    /// Absolute, accepted by [`caddy_path`].
    pub root: PathBuf,
    pub access_log: PathBuf,
    /// Symbolic links under the root (absolute), hidden.
    pub hidden_links: Vec<PathBuf>,
}

/// A path as it may appear in the Caddyfile: absolute, of
/// `[A-Za-z0-9/._+-]` only (no quoting, spaces, braces or placeholders).
pub fn caddy_path(p: &Path) -> Option<&str> {
    let s = p.to_str()?;
    let ok = s.starts_with('/')
        && s.len() <= 4096
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'+' | b'-'));
    ok.then_some(s)
}

/// `127.0.0.1:80` or `[::1]:80`.
fn host_port(a: SocketAddr) -> String {
    a.to_string()
}

/// The Caddyfile (paths already checked by the caller with [`caddy_path`];
/// a path that is not is left out, which the caller prevents).
pub fn render(spec: &SiteSpec) -> String {
    let path = |p: &Path| caddy_path(p).unwrap_or("/nonexistent").to_string();
    let mut out = String::new();
    let _ = write!(
        out,
        "# Written by Harmony; do not edit.\n{{\n\tadmin {}\n\tauto_https off\n\tgrace_period 30s\n}}\n\n",
        host_port(spec.admin)
    );
    let _ = write!(
        out,
        "http://:{} {{\n\tbind {}\n\troot * {}\n",
        spec.listen.port(),
        spec.listen.ip(),
        path(&spec.root)
    );
    out.push_str(
        "\t@hidden {\n\t\tpath_regexp hidden (^|/)\\.\n\t\tnot path */.treeinfo\n\t}\n\trespond @hidden 404\n",
    );
    out.push_str("\t@text path *.ipxe *.ks */.treeinfo\n\theader @text Content-Type \"text/plain; charset=utf-8\"\n");
    out.push_str("\t@ignition path *.ign\n\theader @ignition Content-Type application/json\n");
    out.push_str(
        "\t@binary path */kernel *vmlinuz* *initrd* *initramfs* *.img *.efi *.kpxe *.iso\n\theader @binary Content-Type application/octet-stream\n",
    );
    out.push_str("\tfile_server {\n\t\thide .harmony-*");
    for link in &spec.hidden_links {
        let _ = write!(out, " {}", path(link));
    }
    out.push_str("\n\t}\n");
    let _ = write!(
        out,
        "\tlog {{\n\t\toutput file {} {{\n\t\t\troll_size 64MiB\n\t\t\troll_keep 4\n\t\t}}\n\t\tformat json\n\t}}\n}}\n",
        path(&spec.access_log)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_paths_reach_the_caddyfile() {
        assert_eq!(
            caddy_path(Path::new("/srv/http-root")),
            Some("/srv/http-root")
        );
        for bad in ["relative", "/a b", "/a\"b", "/{env.HOME}", "/a\nb", "/a;b"] {
            assert_eq!(caddy_path(Path::new(bad)), None, "{bad:?}");
        }
    }

    #[test]
    fn renders_the_site() {
        let spec = SiteSpec {
            listen: "127.0.0.1:8080".parse().unwrap(),
            admin: "127.0.0.1:2999".parse().unwrap(),
            root: "/srv/root".into(),
            access_log: "/var/lib/harmony/access.log".into(),
            hidden_links: vec!["/srv/root/leak".into()],
        };
        let t = render(&spec);
        assert!(t.contains("\tadmin 127.0.0.1:2999\n"), "{t}");
        assert!(
            t.contains("http://:8080 {\n\tbind 127.0.0.1\n\troot * /srv/root\n"),
            "{t}"
        );
        assert!(t.contains("hide .harmony-* /srv/root/leak\n"), "{t}");
    }
}
