//! The architecture rules of ARCHITECTURE.md ("Rules (checked)"), enforced
//! so that a violation fails CI:
//!
//! - the agent has nothing of harmony (`cargo tree` of the agent crate, with
//!   no, default and all features, holds no other `harmony*` crate);
//! - the domain has no I/O (no file, socket, process, SQLite or HTTP path,
//!   no printing, no path into `infra`, `store` or `modules`);
//! - the TUI reaches no `infra`;
//! - only `harmony/src/infra/` starts processes or opens sockets.
//!
//! The source rules read Rust with a small scanner (below): comments and
//! the contents of string and char literals are blanked first, `use` trees
//! are expanded (`use std::{fs, net::TcpStream as T}`), and a path that
//! starts with an imported name is read through its import. Every violation
//! is reported as `file:line: reason`. The scanner's own tests plant
//! violations in a temporary tree.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("harmony/ has a parent")
        .to_path_buf()
}

// ---------------------------------------------------------------- the rules

/// The domain (`harmony/src/domain/**`) has no I/O.
const DOMAIN_NO_IO: Rule = Rule {
    name: "the domain has no I/O",
    paths: &[
        "std::fs",
        "tokio::fs",
        "std::net::TcpStream",
        "std::net::TcpListener",
        "std::net::UdpSocket",
        "std::os::unix::net",
        "std::process",
        "tokio::process",
        "tokio::net",
        "std::env",
        "rusqlite",
        "reqwest",
        "hyper",
        "hyper_util",
        "socket2",
        "pnet_datalink",
        "russh",
        "crate::infra",
        "crate::store",
        "crate::modules",
    ],
    anywhere: &[],
    idents: &["TcpStream", "TcpListener", "UdpSocket", "UnixStream"],
    macros: &["print", "println", "eprint", "eprintln", "dbg"],
};

/// The TUI (`harmony-tui/src/**`) reaches no `infra`.
const TUI_NO_INFRA: Rule = Rule {
    name: "the TUI reaches no infra",
    paths: &["harmony::infra"],
    anywhere: &[],
    idents: &[],
    macros: &[],
};

/// Only `harmony/src/infra/` starts processes or opens sockets.
const ONLY_INFRA_PROCESSES_SOCKETS: Rule = Rule {
    name: "only infra starts processes or opens sockets",
    paths: &[
        "std::process::Command",
        "tokio::process",
        "std::net::TcpStream",
        "std::net::TcpListener",
        "std::net::UdpSocket",
        "std::os::unix::net",
        "tokio::net",
        "socket2",
        "pnet_datalink",
        "russh",
        "reqwest",
        "hyper::client",
        "hyper_util::client",
    ],
    anywhere: &["Command::new"],
    idents: &[
        "TcpStream",
        "TcpListener",
        "TcpSocket",
        "UdpSocket",
        "UnixStream",
        "UnixListener",
        "UnixDatagram",
    ],
    macros: &[],
};

#[test]
fn domain_has_no_io() {
    let root = workspace();
    assert_clean(
        &DOMAIN_NO_IO,
        &root,
        &rust_files(&root, "harmony/src/domain", &[]),
    );
}

#[test]
fn tui_reaches_no_infra() {
    let root = workspace();
    assert_clean(
        &TUI_NO_INFRA,
        &root,
        &rust_files(&root, "harmony-tui/src", &[]),
    );
}

#[test]
fn only_infra_starts_processes_or_opens_sockets() {
    let root = workspace();
    let files = rust_files(&root, "harmony/src", &["harmony/src/infra"]);
    assert_clean(&ONLY_INFRA_PROCESSES_SOCKETS, &root, &files);
}

/// `cargo tree` of the agent crate with no, default and all features
/// (normal and build dependencies) lists no `harmony*` crate but itself.
#[test]
fn agent_has_nothing_of_harmony() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = workspace().join("Cargo.toml");
    for features in [
        &["--no-default-features"][..],
        &[][..],
        &["--all-features"][..],
    ] {
        let out = Command::new(&cargo)
            .args(["tree", "--locked", "--offline", "--manifest-path"])
            .arg(&manifest)
            .args([
                "-p",
                "harmony-inventory-agent",
                "-e",
                "normal,build",
                "--prefix",
                "none",
                "--format",
                "{p}",
            ])
            .args(features)
            .output()
            .expect("run cargo tree");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "cargo tree {features:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let crates: BTreeSet<&str> = stdout
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert!(
            crates.contains("harmony-inventory-agent") && crates.contains("serde"),
            "cargo tree {features:?} listed too little: {stdout}"
        );
        if features != ["--no-default-features"] {
            assert!(crates.contains("axum"), "{features:?}: {stdout}");
        }
        let harmony: Vec<&&str> = crates
            .iter()
            .filter(|c| c.starts_with("harmony") && **c != "harmony-inventory-agent")
            .collect();
        assert!(
            harmony.is_empty(),
            "the agent depends on {harmony:?} ({features:?}): it must have nothing of harmony"
        );
    }
}

// ------------------------------------------------------------- the scanner

/// A rule stated as what is absent.
struct Rule {
    name: &'static str,
    /// Paths (and everything under them) that must not appear. `crate::x`
    /// also matches `super::x`, `super::super::x`... (conservatively: a
    /// sibling module of that name would be flagged too).
    paths: &'static [&'static str],
    /// Segment sequences that must not appear anywhere in a path.
    anywhere: &'static [&'static str],
    /// Identifiers that must not appear at all (e.g. through a glob import).
    idents: &'static [&'static str],
    /// Macros that must not be invoked.
    macros: &'static [&'static str],
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Finding {
    file: String,
    line: usize,
    what: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.what)
    }
}

fn assert_clean(rule: &Rule, root: &Path, files: &[PathBuf]) {
    assert!(!files.is_empty(), "{}: no files to check", rule.name);
    let found = check(rule, root, files);
    assert!(
        found.is_empty(),
        "{} violation(s) of \"{}\":\n{}",
        found.len(),
        rule.name,
        found
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Every `.rs` file under `root/dir`, except under the `exclude` dirs
/// (relative to `root`), sorted.
fn rust_files(root: &Path, dir: &str, exclude: &[&str]) -> Vec<PathBuf> {
    let exclude: Vec<PathBuf> = exclude.iter().map(|e| root.join(e)).collect();
    let mut out = Vec::new();
    let mut stack = vec![root.join(dir)];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = entry.unwrap().path();
            if exclude.iter().any(|x| p.starts_with(x)) {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The violations of `rule` in `files`, one per file and line.
fn check(rule: &Rule, root: &Path, files: &[PathBuf]) -> Vec<Finding> {
    let mut found = BTreeMap::new();
    for file in files {
        let src = std::fs::read_to_string(file).unwrap();
        let name = file
            .strip_prefix(root)
            .unwrap_or(file)
            .display()
            .to_string();
        for (line, what) in scan(rule, &src) {
            found.entry((name.clone(), line)).or_insert(what);
        }
    }
    found
        .into_iter()
        .map(|((file, line), what)| Finding { file, line, what })
        .collect()
}

/// `(line, reason)` for each violation of `rule` in one source file, in
/// line order.
fn scan(rule: &Rule, src: &str) -> Vec<(usize, String)> {
    let toks = tokens(&strip(src));
    let (imports, in_use) = imports(&toks);
    let aliases: BTreeMap<&str, &[String]> = imports
        .iter()
        .filter_map(|i| i.binding().map(|b| (b, i.path.as_slice())))
        .collect();
    let mut out = Vec::new();
    for i in &imports {
        if let Some(why) = rule.path_violation(&i.path) {
            out.push((i.line, 0, format!("use {}: {why}", i.path.join("::"))));
        }
    }
    for (k, t) in toks.iter().enumerate() {
        if let Tok::Ident(id) = &t.tok {
            if rule.idents.contains(&id.as_str()) {
                out.push((t.line, 2, format!("`{id}`: {}", rule.name)));
            }
            if rule.macros.contains(&id.as_str())
                && matches!(
                    toks.get(k + 1),
                    Some(Token {
                        tok: Tok::Punct('!'),
                        ..
                    })
                )
            {
                out.push((t.line, 2, format!("`{id}!`: {}", rule.name)));
            }
        }
    }
    for p in code_paths(&toks, &in_use) {
        let full: Vec<String> = match (p.absolute, aliases.get(p.segs[0].as_str())) {
            (false, Some(target)) => target.iter().chain(&p.segs[1..]).cloned().collect(),
            _ => p.segs.clone(),
        };
        if let Some(why) = rule.path_violation(&full) {
            out.push((p.line, 1, format!("{}: {why}", p.segs.join("::"))));
        }
    }
    // Per line, an import first, then a path, then a bare name.
    out.sort();
    out.into_iter()
        .map(|(line, _, what)| (line, what))
        .collect()
}

impl Rule {
    fn path_violation(&self, path: &[String]) -> Option<String> {
        // `super::super::x` and `crate::x` both name a crate-level `x`.
        let lead = path
            .iter()
            .take_while(|s| *s == "super" || *s == "crate")
            .count();
        let mut norm: Vec<&str> = Vec::with_capacity(path.len());
        if lead > 0 {
            norm.push("crate");
        }
        norm.extend(path[lead..].iter().map(String::as_str));
        for f in self.paths {
            let f: Vec<&str> = f.split("::").collect();
            if norm.len() >= f.len() && norm[..f.len()] == f[..] {
                return Some(format!("{} ({})", f.join("::"), self.name));
            }
        }
        for a in self.anywhere {
            let a: Vec<&str> = a.split("::").collect();
            if norm.windows(a.len()).any(|w| w == &a[..]) {
                return Some(format!("{} ({})", a.join("::"), self.name));
            }
        }
        None
    }
}

/// The source with comments and the contents of string, byte-string, raw
/// string and char literals replaced by blanks; line breaks are kept so
/// that line numbers stay right. Lifetimes and labels are kept.
fn strip(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let n = c.len();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let blank = |ch: char| if ch == '\n' { '\n' } else { ' ' };
    let is_ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < n {
        let ch = c[i];
        let prev_ident = i > 0 && is_ident(c[i - 1]);
        if ch == '/' && at(i + 1) == '/' {
            while i < n && c[i] != '\n' {
                out.push(' ');
                i += 1;
            }
            continue;
        }
        if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0usize;
            loop {
                if i >= n {
                    break;
                }
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(c[i]));
                    i += 1;
                }
            }
            continue;
        }
        // Raw strings: r"..", r#".."#, br#".."#, cr".." (not `r#ident`).
        if !prev_ident && (ch == 'r' || ((ch == 'b' || ch == 'c') && at(i + 1) == 'r')) {
            let mut j = if ch == 'r' { i + 1 } else { i + 2 };
            let mut hashes = 0;
            while at(j) == '#' {
                hashes += 1;
                j += 1;
            }
            if at(j) == '"' {
                for _ in i..=j {
                    out.push(' ');
                }
                i = j + 1;
                while i < n {
                    if c[i] == '"' && (1..=hashes).all(|h| at(i + h) == '#') {
                        for _ in 0..=hashes {
                            out.push(' ');
                        }
                        i += 1 + hashes;
                        break;
                    }
                    out.push(blank(c[i]));
                    i += 1;
                }
                continue;
            }
        }
        if ch == '"' {
            out.push(' ');
            i += 1;
            while i < n && c[i] != '"' {
                if c[i] == '\\' {
                    out.push(' ');
                    i += 1;
                    if i >= n {
                        break;
                    }
                }
                out.push(blank(c[i]));
                i += 1;
            }
            out.push(' ');
            i += 1;
            continue;
        }
        if ch == '\'' {
            // A char literal: '\..' or 'x'; anything else is a lifetime or label.
            let end = if at(i + 1) == '\\' {
                (i + 3..n.min(i + 16)).find(|&j| c[j] == '\'')
            } else if at(i + 2) == '\'' {
                Some(i + 2)
            } else {
                None
            };
            if let Some(end) = end {
                out.extend(c[i..=end].iter().map(|&ch| blank(ch)));
                i = end + 1;
                continue;
            }
        }
        out.push(ch);
        i += 1;
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    /// `::`
    Sep,
    Punct(char),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

fn tokens(code: &str) -> Vec<Token> {
    let c: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let id: String = c[start..i].iter().collect();
            out.push(Token {
                tok: Tok::Ident(id),
                line,
            });
        } else if ch.is_ascii_digit() {
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_' || c[i] == '.') {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Punct('0'),
                line,
            });
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push(Token {
                tok: Tok::Sep,
                line,
            });
            i += 2;
        } else {
            out.push(Token {
                tok: Tok::Punct(ch),
                line,
            });
            i += 1;
        }
    }
    out
}

/// One name a `use` brings in.
#[derive(Debug)]
struct Import {
    /// The full path (`self` leaves resolved: `use std::net::{self}` is `std::net`).
    path: Vec<String>,
    alias: Option<String>,
    line: usize,
}

impl Import {
    /// The name this import binds in the file (none for globs and `_`).
    fn binding(&self) -> Option<&str> {
        let name = self
            .alias
            .as_deref()
            .or(self.path.last().map(String::as_str))?;
        (name != "*" && name != "_").then_some(name)
    }
}

/// Every `use` leaf, and which tokens belong to `use` items.
fn imports(toks: &[Token]) -> (Vec<Import>, Vec<bool>) {
    let mut out = Vec::new();
    let mut in_use = vec![false; toks.len()];
    let mut k = 0;
    while k < toks.len() {
        let starts_use = toks[k].tok == Tok::Ident("use".into())
            && !matches!(k.checked_sub(1).map(|p| &toks[p].tok), Some(Tok::Sep));
        if !starts_use {
            k += 1;
            continue;
        }
        let start = k;
        let mut pos = k + 1;
        use_tree(toks, &mut pos, Vec::new(), &mut out, 0);
        // The item ends at its `;` (bounded: a malformed tree stops there too).
        while pos < toks.len() && toks[pos].tok != Tok::Punct(';') {
            pos += 1;
        }
        for flag in &mut in_use[start..pos.min(toks.len())] {
            *flag = true;
        }
        k = pos + 1;
    }
    (out, in_use)
}

fn use_tree(
    toks: &[Token],
    pos: &mut usize,
    prefix: Vec<String>,
    out: &mut Vec<Import>,
    depth: u8,
) {
    if depth > 16 {
        return;
    }
    let mut path = prefix;
    if matches!(toks.get(*pos), Some(Token { tok: Tok::Sep, .. })) {
        *pos += 1;
    }
    while let Some(t) = toks.get(*pos) {
        match &t.tok {
            Tok::Ident(id) => {
                *pos += 1;
                if matches!(toks.get(*pos), Some(Token { tok: Tok::Sep, .. })) {
                    path.push(id.clone());
                    *pos += 1;
                    continue;
                }
                if id != "self" {
                    path.push(id.clone());
                }
                let mut alias = None;
                if matches!(toks.get(*pos), Some(Token { tok: Tok::Ident(a), .. }) if a == "as") {
                    if let Some(Token {
                        tok: Tok::Ident(a), ..
                    }) = toks.get(*pos + 1)
                    {
                        alias = Some(a.clone());
                    }
                    *pos += 2;
                }
                out.push(Import {
                    path,
                    alias,
                    line: t.line,
                });
                return;
            }
            Tok::Punct('*') => {
                *pos += 1;
                path.push("*".into());
                out.push(Import {
                    path,
                    alias: None,
                    line: t.line,
                });
                return;
            }
            Tok::Punct('{') => {
                *pos += 1;
                loop {
                    match toks.get(*pos).map(|t| &t.tok) {
                        Some(Tok::Punct('}')) => {
                            *pos += 1;
                            return;
                        }
                        Some(Tok::Punct(',')) => *pos += 1,
                        None | Some(Tok::Punct(';')) => return,
                        Some(_) => {
                            let before = *pos;
                            use_tree(toks, pos, path.clone(), out, depth + 1);
                            if *pos == before {
                                *pos += 1;
                            }
                        }
                    }
                }
            }
            _ => return,
        }
    }
}

/// A path written in code (outside `use` items).
#[derive(Debug)]
struct CodePath {
    segs: Vec<String>,
    /// Written with a leading `::`.
    absolute: bool,
    line: usize,
}

fn code_paths(toks: &[Token], in_use: &[bool]) -> Vec<CodePath> {
    let tok = |i: usize| toks.get(i).map(|t| &t.tok);
    let mut out = Vec::new();
    let mut k = 0;
    while k < toks.len() {
        if in_use[k] {
            k += 1;
            continue;
        }
        let prev = k.checked_sub(1).and_then(tok);
        let (absolute, first) = match (tok(k), prev) {
            (Some(Tok::Ident(_)), Some(Tok::Sep)) => {
                k += 1;
                continue;
            }
            (Some(Tok::Ident(_)), _) => (false, k),
            (Some(Tok::Sep), p)
                if !matches!(p, Some(Tok::Ident(_)) | Some(Tok::Punct('>')))
                    && matches!(tok(k + 1), Some(Tok::Ident(_))) =>
            {
                (true, k + 1)
            }
            _ => {
                k += 1;
                continue;
            }
        };
        let mut segs = Vec::new();
        let mut j = first;
        while let Some(Tok::Ident(id)) = tok(j) {
            segs.push(id.clone());
            if tok(j + 1) == Some(&Tok::Sep) && matches!(tok(j + 2), Some(Tok::Ident(_))) {
                j += 2;
            } else {
                j += 1;
                break;
            }
        }
        out.push(CodePath {
            segs,
            absolute,
            line: toks[first].line,
        });
        k = j;
    }
    out
}

// ------------------------------------------------------ the scanner's tests

/// Writes `files` (relative path, content) under a new temp dir.
fn plant(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (rel, content) in files {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir
}

fn lines_of(found: &[Finding]) -> Vec<(String, usize)> {
    found.iter().map(|f| (f.file.clone(), f.line)).collect()
}

#[test]
fn scanner_catches_planted_violations() {
    let bad = r#"//! A domain module that does I/O in every way the rule names.
use std::{fs, io};
use std::net::{IpAddr, TcpStream as Conn};
use std::{
    collections::BTreeMap,
    process::{self as proc},
};
use super::super::infra::http_root;
use crate::{domain::values, store::SqliteStore};

fn a() {
    let _ = std::fs::read("/etc/hostname");
    let _ = ::tokio::fs::read("x");
    let c = proc::Command::new("ls");
    println!("hello");
    let s: rusqlite::Connection;
}

mod inner {
    use std::env as e;
    fn b() { e::var("HOME"); }
}
"#;
    let dir = plant(&[("harmony/src/domain/bad.rs", bad)]);
    let files = rust_files(dir.path(), "harmony/src/domain", &[]);
    let found = check(&DOMAIN_NO_IO, dir.path(), &files);
    let f = "harmony/src/domain/bad.rs".to_string();
    let want: Vec<(String, usize)> = [2, 3, 6, 8, 9, 12, 13, 14, 15, 16, 20, 21]
        .into_iter()
        .map(|l| (f.clone(), l))
        .collect();
    assert_eq!(lines_of(&found), want, "{found:#?}");
    // Each finding names the file, the line and what is absent by rule.
    assert_eq!(
        found[0].to_string(),
        "harmony/src/domain/bad.rs:2: use std::fs: std::fs (the domain has no I/O)"
    );
    assert!(found[2].what.contains("std::process"), "{found:#?}");
    assert!(found[3].what.contains("crate::infra"), "{found:#?}");
    assert!(found[4].what.contains("crate::store"), "{found:#?}");
    assert!(found[8].what.contains("println!"), "{found:#?}");

    // The TUI through a group and an alias of the crate.
    let tui = "use harmony::{domain::Event, infra::fs};\nuse harmony as h;\nfn f() { h::infra::http_root::x(); }\n";
    let dir = plant(&[("harmony-tui/src/app.rs", tui)]);
    let found = check(
        &TUI_NO_INFRA,
        dir.path(),
        &rust_files(dir.path(), "harmony-tui/src", &[]),
    );
    assert_eq!(
        lines_of(&found),
        vec![
            ("harmony-tui/src/app.rs".into(), 1),
            ("harmony-tui/src/app.rs".into(), 3)
        ],
        "{found:#?}"
    );

    // Processes and sockets: flagged outside infra, allowed inside.
    let net = "use tokio::{net::TcpStream, time};\nuse std::process::Command;\nfn f() {\n    Command::new(\"ls\");\n    hyper::client::conn::http1::handshake(x);\n    let s = tokio::net::UdpSocket::bind(a);\n}\n";
    let dir = plant(&[
        ("harmony/src/modules/scan.rs", net),
        ("harmony/src/infra/runner.rs", net),
    ]);
    let files = rust_files(dir.path(), "harmony/src", &["harmony/src/infra"]);
    assert_eq!(files.len(), 1, "{files:?}");
    let found = check(&ONLY_INFRA_PROCESSES_SOCKETS, dir.path(), &files);
    let f = "harmony/src/modules/scan.rs".to_string();
    assert_eq!(
        lines_of(&found),
        [1, 2, 4, 5, 6]
            .into_iter()
            .map(|l| (f.clone(), l))
            .collect::<Vec<_>>(),
        "{found:#?}"
    );
}

#[test]
fn scanner_ignores_comments_strings_and_lookalikes() {
    let good = r####"//! Mentions std::fs and std::process::Command in docs only.
/// use std::fs;
use std::io;
use std::net::{IpAddr, SocketAddr};
use tokio::sync::broadcast;
use super::values::HostId;

/* use std::fs;
   /* nested: crate::infra */ still a comment: tokio::net::TcpStream */
fn f<'a>(s: &'a str) -> &'a str {
    let _ = "std::fs::read(\"x\") // not a comment";
    let _ = r#"use std::process::Command; "quoted" "#;
    let _ = br##"crate::store"##;
    let _ = '"';
    let _ = '\'';
    let _ = b'/';
    let fs = 1; // a local named fs is not std::fs
    let _ = fs + 1;
    let _ = io::Error::other("printing is println! in a string");
    'outer: loop { break 'outer; }
    s
}
"####;
    let dir = plant(&[("harmony/src/domain/good.rs", good)]);
    let found = check(
        &DOMAIN_NO_IO,
        dir.path(),
        &rust_files(dir.path(), "harmony/src/domain", &[]),
    );
    assert!(found.is_empty(), "{found:#?}");

    // Line numbers stay right after multi-line comments and strings.
    let shifted = "/* a\nb\nc */ const S: &str = \"x\ny\";\nuse std::fs;\n";
    let dir = plant(&[("harmony/src/domain/x.rs", shifted)]);
    let found = check(
        &DOMAIN_NO_IO,
        dir.path(),
        &rust_files(dir.path(), "harmony/src/domain", &[]),
    );
    assert_eq!(
        lines_of(&found),
        vec![("harmony/src/domain/x.rs".into(), 5)]
    );
}

// ------------------------------------------------------- import cycles

/// The modules of one flat directory that `file` refers to through
/// `prefix` (`super::` in the domain, `crate::` in the TUI), outside
/// `#[cfg(test)]` code.
fn module_refs(file: &Path, prefix: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices(prefix) {
        let rest = &code[i + prefix.len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if modules.contains(&name) {
            out.insert(name);
        }
    }
    out
}

/// A cycle in the module graph of `dir` (each `.rs` file a module), as
/// the list of modules along it; `None` when the graph is acyclic.
fn find_cycle(dir: &Path, prefix: &str) -> Option<Vec<String>> {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    let name = |p: &Path| p.file_stem().unwrap().to_string_lossy().into_owned();
    let modules: BTreeSet<String> = files.iter().map(|p| name(p)).collect();
    let graph: BTreeMap<String, BTreeSet<String>> = files
        .iter()
        .map(|p| {
            let mut refs = module_refs(p, prefix, &modules);
            refs.remove(&name(p));
            (name(p), refs)
        })
        .collect();
    // Depth-first search with the current path on a stack.
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == n) {
            let mut cycle = path[at..].to_vec();
            cycle.push(n.to_string());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for m in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in graph.keys() {
        if let Some(c) = visit(n, &graph, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn no_import_cycles_in_the_domain_or_the_tui() {
    let root = workspace();
    for (dir, prefix) in [
        ("harmony/src/domain", "super::"),
        ("harmony-tui/src", "crate::"),
    ] {
        if let Some(cycle) = find_cycle(&root.join(dir), prefix) {
            panic!("import cycle in {dir}: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_cycle_finder_finds_a_planted_cycle() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("a.rs"), "use super::b::X;\n").unwrap();
    std::fs::write(d.path().join("b.rs"), "use super::c::Y;\n").unwrap();
    std::fs::write(
        d.path().join("c.rs"),
        "pub struct Y;\n#[cfg(test)]\nmod t { use super::a; }\n",
    )
    .unwrap();
    assert_eq!(
        find_cycle(d.path(), "super::"),
        None,
        "test code does not count"
    );
    std::fs::write(d.path().join("c.rs"), "use super::a::Z;\n").unwrap();
    let cycle = find_cycle(d.path(), "super::").expect("a -> b -> c -> a");
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4, "{cycle:?}");
}
