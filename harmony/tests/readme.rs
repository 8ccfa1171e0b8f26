//! The README's promises about the operator binaries hold: every binary it
//! tells an operator to run is built in release by the main job (`.ci/main`)
//! and the README says where it lands. Before this check the main job built
//! `harmony` in debug only and `harmony-tui` not at all, while the README
//! showed both commands without saying where they were.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("harmony/ has a parent")
        .to_path_buf()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(workspace().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The operator binaries: `[[bin]]`-less crates named after their binary.
const OPERATOR_BINARIES: [&str; 2] = ["harmony", "harmony-tui"];

#[test]
fn main_job_builds_every_operator_binary_in_release() {
    let main = read(".ci/main");
    let build = main
        .lines()
        .find(|l| l.trim_start().starts_with("cargo build") && l.contains("--release"))
        .expect(".ci/main has a `cargo build --release` line");
    for bin in OPERATOR_BINARIES {
        assert!(
            build.contains(&format!("--bin {bin}")),
            ".ci/main's release build does not build `{bin}`: {build}"
        );
        assert!(
            main.contains(&format!("target/release/{bin}")),
            ".ci/main never names target/release/{bin}"
        );
    }
}

#[test]
fn readme_says_where_each_binary_is() {
    let readme = read("README.md");
    for bin in OPERATOR_BINARIES {
        assert!(
            readme.contains(&format!("target/release/{bin}")),
            "README.md does not say where `{bin}` is built"
        );
        assert!(
            readme.contains(&format!("cargo install --locked --path {bin}")),
            "README.md does not say how to install `{bin}`"
        );
    }
}
