//! Boot assets under the HTTP root: the SCOS live PXE files
//! ([`ScosAssets`]) and the CentOS Stream 9 inventory environment
//! ([`CentosInventoryAssets`]), downloaded with resume and verified by
//! SHA-256 ([`download`]).
//!
//! Both Scores keep a small manifest, `<os_dir>/.harmony-assets.json`
//! (file -> sha256, size, mtime), so that a re-run decides "in place" from
//! file metadata instead of re-hashing gigabytes; see [`manifest`].

pub mod centos;
pub mod download;
pub mod scos;
pub mod staging;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::domain::HttpUrl;

pub use centos::CentosInventoryAssets;
pub use download::{DownloadConfig, DownloadError, Sha256Digest};
pub use scos::{ScosAssets, StreamError};

/// Where an input file comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A file on the machine running Harmony.
    Path(PathBuf),
    /// Downloaded over HTTP or HTTPS.
    Url(HttpUrl),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Path(p) => write!(f, "{}", p.display()),
            Source::Url(u) => write!(f, "{u}"),
        }
    }
}

/// A constant path known to be valid (the defaults; a unit test parses
/// each of them).
pub(crate) fn const_path(s: &'static str) -> crate::domain::RelativePath {
    crate::domain::RelativePath::from_trusted(s.to_string())
}
