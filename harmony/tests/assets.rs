//! Boot assets against a real HTTP server on 127.0.0.1 (which can drop
//! connections, serve wrong bytes or ignore Range), over https with a site
//! CA made here, and CentOS extraction from a real ISO built with xorriso.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/asset_fixtures.rs"]
mod fixtures;
#[path = "support/assets_server.rs"]
mod server;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use fixtures::{Iso, Scos, build_iso, scos_files, stream_json};
use harmony::domain::{Event, EventBus, Inventory, Outcome, Score};
use harmony::infra::http_client::HttpError;
use harmony::infra::http_root::HttpRoot;
use harmony::modules::assets::download::{self, DownloadConfig, DownloadError, part_path};
use harmony::modules::assets::{CentosInventoryAssets, ScosAssets, Sha256Digest, Source};
use harmony::store::SqliteStore;
use server::{Behaviour, TestServer, random_bytes, sha256_hex};

type Site = HttpRoot;

struct Env {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    site: Site,
    inventory: Inventory,
    events: EventBus,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let root = HttpRoot::new(dir.join("www"), "http://192.0.2.1:8080/".parse().unwrap());
    let store = SqliteStore::open(&dir.join("inv.sqlite3")).unwrap();
    let events = EventBus::default();
    let store = Arc::new(store);
    let inventory = Inventory::new(store.clone(), events.clone()).with_step_log(store);
    Env {
        _tmp: tmp,
        dir,
        site: root,
        inventory,
        events,
    }
}

async fn run<S: Score<Site>>(e: &Env, s: &S) -> Result<Outcome, harmony::domain::InterpretError> {
    s.create_interpret().execute(&e.inventory, &e.site).await
}

fn fast() -> DownloadConfig {
    DownloadConfig {
        connect_timeout: std::time::Duration::from_secs(2),
        idle_timeout: std::time::Duration::from_secs(5),
        ..DownloadConfig::default()
    }
}

fn scos_dir(e: &Env) -> PathBuf {
    e.dir.join("www/os/scos-4.19")
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test]
async fn scos_downloads_verifies_places_then_noop() {
    let srv = TestServer::start().await;
    let (f, json) = scos_files(&srv);
    let e = env();
    let mut rx = e.events.subscribe();
    let mut score = ScosAssets::new(Source::Url(srv.url("stream.json").parse().unwrap()));
    score.download = fast();

    let out = run(&e, &score).await.unwrap();
    let Outcome::Success { changes } = &out else {
        panic!("expected changes, got {out:?}")
    };
    assert_eq!(changes.len(), 3, "{changes:?}");
    let dir = scos_dir(&e);
    assert_scos_served(&dir, &f);
    assert_eq!(
        names_in(&dir),
        [
            ".harmony-assets.json",
            "initramfs.img",
            "kernel",
            "rootfs.img"
        ],
        "no .part or temp file left"
    );
    assert_eq!(srv.requests(), 4, "stream + 3 artifacts");
    let mut final_progress = 0;
    while let Ok(ev) = rx.try_recv() {
        if let Event::Progress { done, total, .. } = ev
            && done == total
            && done > 0
        {
            final_progress += 1;
        }
    }
    assert!(final_progress >= 3, "one completed progress per file");

    // Second run: only the stream document is fetched.
    let out = run(&e, &score).await.unwrap();
    assert!(out.is_noop(), "{out:?}");
    assert_eq!(srv.requests(), 5, "{:?}", srv.log());

    // From a local stream file: no request at all.
    let stream_path = e.dir.join("stream.json");
    std::fs::write(&stream_path, &json).unwrap();
    let mut local = score.clone();
    local.stream = Source::Path(stream_path);
    assert!(run(&e, &local).await.unwrap().is_noop());
    assert_eq!(srv.requests(), 5);

    // A damaged file is noticed (size/mtime changed) and only it is fetched again.
    std::fs::write(dir.join("rootfs.img"), b"damaged").unwrap();
    let out = run(&e, &local).await.unwrap();
    assert!(!out.is_noop(), "{out:?}");
    assert_eq!(std::fs::read(dir.join("rootfs.img")).unwrap(), f.rootfs);
    let log = srv.log();
    assert_eq!(log.len(), 6);
    assert_eq!(log[5].path, "/scos/rootfs.x86_64.img");

    // Manifest lost: the files are hashed once, still Noop, no download.
    std::fs::remove_file(dir.join(".harmony-assets.json")).unwrap();
    assert!(run(&e, &local).await.unwrap().is_noop());
    assert_eq!(srv.requests(), 6);
    assert!(dir.join(".harmony-assets.json").exists());
}

#[tokio::test]
async fn scos_custom_names_and_dir() {
    let srv = TestServer::start().await;
    let (f, _) = scos_files(&srv);
    let e = env();
    let json: ScosAssets = serde_json::from_value(serde_json::json!({
        "stream": {"url": srv.url("stream.json")},
        "os_dir": "boot/scos",
        "kernel_file": "vmlinuz",
        "download": {"connect_timeout": "2s", "idle_timeout": "5s"}
    }))
    .unwrap();
    assert_eq!(json.initramfs_file.as_str(), "initramfs.img");
    assert_eq!(json.download.max_redirects, 5);
    run(&e, &json).await.unwrap();
    assert_eq!(
        std::fs::read(e.dir.join("www/boot/scos/vmlinuz")).unwrap(),
        f.kernel
    );
    let defaults = ScosAssets::new(Source::Path("/x".into()));
    assert_eq!(defaults.os_dir.as_str(), "os/scos-4.19");
    assert_eq!(defaults.kernel_file.as_str(), "kernel");
    assert_eq!(defaults.rootfs_file.as_str(), "rootfs.img");
    let back: ScosAssets =
        serde_json::from_str(&serde_json::to_string(&defaults).unwrap()).unwrap();
    assert_eq!(back, defaults);
}

#[tokio::test]
async fn interrupted_download_resumes_with_range() {
    let srv = TestServer::start().await;
    let (f, _) = scos_files(&srv);
    srv.behave("scos/rootfs.x86_64.img", Behaviour::DropAfterOnce(100_000));
    let e = env();
    let mut score = ScosAssets::new(Source::Url(srv.url("stream.json").parse().unwrap()));
    score.download = DownloadConfig {
        attempts: 1,
        ..fast()
    };

    let err = run(&e, &score).await.unwrap_err().to_string();
    assert!(err.contains("rootfs.img"), "{err}");
    let dest = scos_dir(&e).join("rootfs.img");
    assert!(!dest.exists(), "nothing placed");
    // The run rolled back: kernel and initramfs went back to the staging
    // cache (not deleted), the partial rootfs stays there for resume.
    assert!(!scos_dir(&e).join("kernel").exists(), "rolled back: {err}");
    assert!(err.contains("rolled back"), "{err}");
    let part = part_path(&staged(&e, &f.rootfs));
    assert_eq!(std::fs::metadata(&part).unwrap().len(), 100_000);
    assert!(err.contains("kept"), "state left names the .part: {err}");
    let requests = srv.requests();

    let out = run(&e, &score).await.unwrap();
    let Outcome::Success { changes } = &out else {
        panic!("{out:?}")
    };
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert!(
        changes[0].contains("from the staging cache")
            && changes[1].contains("from the staging cache"),
        "kernel and initramfs were not downloaded again: {changes:?}"
    );
    assert!(changes[2].contains("resumed at byte 100000"), "{changes:?}");
    assert_eq!(srv.requests(), requests + 2, "stream + the rest of rootfs");
    assert_eq!(std::fs::read(&dest).unwrap(), f.rootfs);
    assert!(!part.exists());
    let log = srv.log();
    let last = log.last().unwrap();
    assert_eq!(last.path, "/scos/rootfs.x86_64.img");
    assert_eq!(last.range.as_deref(), Some("bytes=100000-"));
}

#[tokio::test]
async fn dropped_connection_is_retried_within_one_call() {
    let srv = TestServer::start().await;
    let body = random_bytes(9, 256 * 1024);
    srv.put("f", body.clone());
    srv.behave("f", Behaviour::DropAfterOnce(70_001));
    let d = tempfile::tempdir().unwrap();
    let dest = d.path().join("f");
    let want: Sha256Digest = sha256_hex(&body).parse().unwrap();
    let report = download::download(
        &srv.url("f").parse().unwrap(),
        &dest,
        &want,
        &fast(),
        &|_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(report.requests, 2);
    assert_eq!(report.resumed_from, 0);
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    let log = srv.log();
    assert_eq!(log[0].range, None);
    assert_eq!(log[1].range.as_deref(), Some("bytes=70001-"));
}

#[tokio::test]
async fn checksum_mismatch_names_file_and_both_hashes_and_places_nothing() {
    let srv = TestServer::start().await;
    let (f, _) = scos_files(&srv);
    srv.behave("scos/kernel-x86_64", Behaviour::WrongBytes);
    let e = env();
    let mut score = ScosAssets::new(Source::Url(srv.url("stream.json").parse().unwrap()));
    score.download = fast();
    let err = run(&e, &score).await.unwrap_err().to_string();
    let wrong: Vec<u8> = f.kernel.iter().map(|b| !b).collect();
    assert!(err.contains("checksum mismatch"), "{err}");
    assert!(err.contains("scos-4.19/kernel"), "{err}");
    assert!(err.contains(&sha256_hex(&f.kernel)), "expected hash: {err}");
    assert!(err.contains(&sha256_hex(&wrong)), "actual hash: {err}");
    let dir = scos_dir(&e);
    assert!(!dir.join("kernel").exists());
    assert!(
        !part_path(&staged(&e, &f.kernel)).exists(),
        "temp file deleted"
    );
    assert!(!staged(&e, &f.kernel).exists(), "nothing unverified cached");
    assert!(
        !dir.join("initramfs.img").exists(),
        "stopped at the first failure"
    );
}

#[tokio::test]
async fn ok_instead_of_partial_content_restarts_from_zero() {
    let srv = TestServer::start().await;
    let body = random_bytes(5, 200 * 1024);
    srv.put("k", body.clone());
    srv.behave("k", Behaviour::IgnoreRange);
    let d = tempfile::tempdir().unwrap();
    let dest = d.path().join("k");
    // A stale .part whose bytes are not a prefix of the file.
    std::fs::write(part_path(&dest), vec![0xAAu8; 5000]).unwrap();
    let want: Sha256Digest = sha256_hex(&body).parse().unwrap();
    let report = download::download(
        &srv.url("k").parse().unwrap(),
        &dest,
        &want,
        &fast(),
        &|_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(srv.log()[0].range.as_deref(), Some("bytes=5000-"));
    assert_eq!(report.bytes, body.len() as u64);
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    assert!(!part_path(&dest).exists());
}

#[tokio::test]
async fn redirects_size_cap_and_status() {
    let srv = TestServer::start().await;
    let body = random_bytes(6, 64 * 1024);
    srv.put("real", body.clone());
    srv.behave("a", Behaviour::RedirectTo("/b".into()));
    srv.behave("b", Behaviour::RedirectTo(srv.url("real")));
    srv.behave("loop", Behaviour::RedirectTo("/loop".into()));
    srv.behave(
        "tls",
        Behaviour::RedirectTo("https://example.invalid/x".into()),
    );
    let d = tempfile::tempdir().unwrap();
    let want: Sha256Digest = sha256_hex(&body).parse().unwrap();
    let get = |path: &str, cfg: DownloadConfig| {
        let url = srv.url(path).parse().unwrap();
        let dest = d.path().join(path);
        let want = want.clone();
        async move { download::download(&url, &dest, &want, &cfg, &|_, _| {}).await }
    };

    let r = get("a", fast()).await.unwrap();
    assert_eq!(r.requests, 3);
    assert_eq!(std::fs::read(d.path().join("a")).unwrap(), body);

    let before = srv.requests();
    let e = get("loop", fast()).await.unwrap_err();
    assert!(
        matches!(
            e,
            DownloadError::Http(HttpError::TooManyRedirects { max: 5, .. })
        ),
        "{e}"
    );
    assert_eq!(srv.requests() - before, 6, "first request + 5 redirects");

    // http -> https is refused before anything is sent there.
    let e = get("tls", fast()).await.unwrap_err();
    assert!(
        matches!(e, DownloadError::Http(HttpError::SchemeChange { .. })),
        "{e}"
    );

    let e = get("missing", fast()).await.unwrap_err();
    assert!(
        matches!(e, DownloadError::Status { status: 404, .. }),
        "{e}"
    );

    let small = DownloadConfig {
        max_size: 1000,
        ..fast()
    };
    let e = get("real", small).await.unwrap_err();
    assert!(
        matches!(e, DownloadError::TooLarge { limit: 1000, .. }),
        "{e}"
    );
    assert!(!part_path(&d.path().join("real")).exists());
}

#[tokio::test]
async fn invalid_stream_metadata_names_the_field() {
    let e = env();
    let good = "a".repeat(64);
    let ok = "http://127.0.0.1:9/k";
    let cases = [
        (
            {
                let mut v: serde_json::Value =
                    serde_json::from_str(&stream_json(ok, &good, ok, &good, ok, &good)).unwrap();
                v["architectures"]["x86_64"]["artifacts"]["metal"]["formats"]["pxe"]["rootfs"]
                    .as_object_mut()
                    .unwrap()
                    .remove("sha256");
                v.to_string()
            },
            "architectures.x86_64.artifacts.metal.formats.pxe.rootfs.sha256",
        ),
        (
            stream_json("http://x/${mac}", &good, ok, &good, ok, &good),
            "architectures.x86_64.artifacts.metal.formats.pxe.kernel.location",
        ),
        (
            stream_json(ok, &good, ok, "abc123", ok, &good),
            "architectures.x86_64.artifacts.metal.formats.pxe.initramfs.sha256",
        ),
        (
            r#"{"architectures": {"aarch64": {}}}"#.to_string(),
            "architectures.x86_64",
        ),
        ("not json".to_string(), "not JSON"),
    ];
    for (i, (json, field)) in cases.iter().enumerate() {
        let p = e.dir.join(format!("stream-{i}.json"));
        std::fs::write(&p, json).unwrap();
        let score = ScosAssets::new(Source::Path(p));
        let err = run(&e, &score).await.unwrap_err().to_string();
        assert!(err.contains(field), "case {i}: {err}");
    }
    assert!(!scos_dir(&e).exists(), "nothing written");
}

// ---- CentOS ----

/// The three PXE files are served with the stream's bytes.
fn assert_scos_served(dir: &Path, f: &Scos) {
    assert_eq!(std::fs::read(dir.join("kernel")).unwrap(), f.kernel);
    assert_eq!(
        std::fs::read(dir.join("initramfs.img")).unwrap(),
        f.initramfs
    );
    assert_eq!(std::fs::read(dir.join("rootfs.img")).unwrap(), f.rootfs);
}

/// Where the staging cache keeps a verified file with these bytes.
fn staged(e: &Env, bytes: &[u8]) -> PathBuf {
    e.dir
        .join("www")
        .join(harmony::infra::http_root::STAGING)
        .join(sha256_hex(bytes))
}

fn centos_dir(e: &Env) -> PathBuf {
    e.dir.join("www/os/centos-stream-9")
}

fn assert_tree(e: &Env, iso: &Iso) {
    let dir = centos_dir(e);
    for (name, bytes) in &iso.files {
        assert_eq!(&std::fs::read(dir.join(name)).unwrap(), bytes, "{name}");
    }
    assert!(!dir.join("EFI").exists(), "only the listed files");
    assert_eq!(
        names_in(&dir),
        [
            ".harmony-assets.json",
            ".harmony-tree.json",
            ".treeinfo",
            "images"
        ],
        "no ISO copy or temp dir left"
    );
    assert_eq!(
        names_in(&dir.join("images")),
        [".harmony-assets.json", "install.img", "pxeboot"]
    );
}

#[tokio::test]
async fn centos_from_url_then_noop() {
    let e = env();
    let iso = build_iso(&e.dir);
    let srv = TestServer::start().await;
    srv.put("centos/boot.iso", std::fs::read(&iso.path).unwrap());
    let mut score = CentosInventoryAssets::new(
        Source::Url(srv.url("centos/boot.iso").parse().unwrap()),
        iso.sha.parse().unwrap(),
    );
    score.download = fast();
    score.repo_mirror = Some("http://192.0.2.1:8080/centos/9-stream/".parse().unwrap());

    let out = run(&e, &score).await.unwrap();
    let Outcome::Success { changes } = &out else {
        panic!("{out:?}")
    };
    // One step, naming each of the 4 placed files.
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].matches(" bytes)").count(), 4, "{changes:?}");
    assert_tree(&e, &iso);
    assert_eq!(srv.requests(), 1);
    // The downloaded ISO is not kept once the tree is served.
    let staging = e.dir.join("www").join(harmony::infra::http_root::STAGING);
    assert!(!staging.join(&iso.sha).exists());

    let out = run(&e, &score).await.unwrap();
    assert!(out.is_noop(), "{out:?}");
    assert_eq!(srv.requests(), 1, "no request on re-run");

    // A changed file brings the tree back.
    std::fs::write(centos_dir(&e).join("images/install.img"), b"x").unwrap();
    assert!(!run(&e, &score).await.unwrap().is_noop());
    assert_tree(&e, &iso);

    let back: CentosInventoryAssets =
        serde_json::from_str(&serde_json::to_string(&score).unwrap()).unwrap();
    assert_eq!(back, score);
}

#[tokio::test]
async fn centos_from_local_path_then_noop() {
    let e = env();
    let iso = build_iso(&e.dir);
    let score =
        CentosInventoryAssets::new(Source::Path(iso.path.clone()), iso.sha.parse().unwrap());
    assert_eq!(score.os_dir.as_str(), "os/centos-stream-9");
    assert!(!run(&e, &score).await.unwrap().is_noop());
    assert_tree(&e, &iso);
    assert!(iso.path.exists(), "a local ISO is left alone");
    assert!(run(&e, &score).await.unwrap().is_noop());
}

#[tokio::test]
async fn centos_wrong_iso_checksum_extracts_nothing() {
    let e = env();
    let iso = build_iso(&e.dir);
    let wrong = "0".repeat(64);

    let local = CentosInventoryAssets::new(Source::Path(iso.path.clone()), wrong.parse().unwrap());
    let err = run(&e, &local).await.unwrap_err().to_string();
    assert!(err.contains("checksum mismatch"), "{err}");
    assert!(err.contains(&wrong) && err.contains(&iso.sha), "{err}");
    assert!(err.contains("boot.iso"), "{err}");
    assert!(!centos_dir(&e).exists(), "nothing extracted");

    let srv = TestServer::start().await;
    srv.put("boot.iso", std::fs::read(&iso.path).unwrap());
    let mut remote = CentosInventoryAssets::new(
        Source::Url(srv.url("boot.iso").parse().unwrap()),
        wrong.parse().unwrap(),
    );
    remote.download = fast();
    let err = run(&e, &remote).await.unwrap_err().to_string();
    assert!(err.contains(&wrong) && err.contains(&iso.sha), "{err}");
    assert_eq!(
        names_in(&centos_dir(&e)),
        Vec::<String>::new(),
        "nothing left"
    );
}

#[tokio::test]
async fn centos_iso_without_the_tree_is_refused() {
    let e = env();
    let tree = e.dir.join("empty-tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("README"), b"hi").unwrap();
    let path = e.dir.join("other.iso");
    let st = Command::new("xorriso")
        .args(["-as", "mkisofs", "-R", "-J", "-quiet", "-o"])
        .arg(&path)
        .arg(&tree)
        .output()
        .unwrap();
    assert!(st.status.success());
    let sha = sha256_hex(&std::fs::read(&path).unwrap());
    let score = CentosInventoryAssets::new(Source::Path(path), sha.parse().unwrap());
    let err = run(&e, &score).await.unwrap_err().to_string();
    assert!(err.contains("extract"), "{err}");
    assert!(!centos_dir(&e).join(".treeinfo").exists());
}

#[tokio::test]
async fn both_extraction_tools_give_the_same_tree() {
    use harmony::modules::assets::centos::{Tool, extract_with};
    let e = env();
    let iso = build_iso(&e.dir);
    for tool in [Tool::Bsdtar, Tool::Xorriso] {
        let into = e.dir.join(format!("{tool:?}"));
        std::fs::create_dir_all(&into).unwrap();
        extract_with(tool, &iso.path, &into, std::time::Duration::from_secs(60))
            .await
            .unwrap();
        for (name, bytes) in &iso.files {
            assert_eq!(
                &std::fs::read(into.join(name)).unwrap(),
                bytes,
                "{tool:?} {name}"
            );
        }
        assert!(
            !into.join("EFI").exists(),
            "{tool:?} extracted only the listed files"
        );
    }
}

/// A site without internet access serves the artifacts of a stream whose
/// locations are `https://` upstream from a local mirror: each file is
/// fetched from the mirror by its name and still checked against the
/// stream's sha256; the upstream host is never contacted.
#[tokio::test]
async fn scos_from_a_mirror_of_an_https_stream() {
    let srv = TestServer::start().await;
    let f = Scos {
        kernel: random_bytes(11, 50 * 1024),
        initramfs: random_bytes(12, 60 * 1024),
        rootfs: random_bytes(13, 70 * 1024),
    };
    srv.put("mirror/scos-live-kernel.x86_64", f.kernel.clone());
    srv.put("mirror/scos-live-initramfs.x86_64.img", f.initramfs.clone());
    srv.put("mirror/scos-live-rootfs.x86_64.img", f.rootfs.clone());
    let upstream = "https://builds.example.org/prod/streams/c10s/builds/10.0/x86_64";
    let json = stream_json(
        &format!("{upstream}/scos-live-kernel.x86_64"),
        &sha256_hex(&f.kernel),
        &format!("{upstream}/scos-live-initramfs.x86_64.img"),
        &sha256_hex(&f.initramfs),
        &format!("{upstream}/scos-live-rootfs.x86_64.img"),
        &sha256_hex(&f.rootfs),
    );
    let e = env();
    let stream_path = e.dir.join("stream.json");
    std::fs::write(&stream_path, json).unwrap();

    let mut mirrored = ScosAssets::new(Source::Path(stream_path.clone()));
    mirrored.download = fast();
    mirrored.mirror = Some(srv.url("mirror/").parse().unwrap());
    let out = run(&e, &mirrored).await.unwrap();
    assert!(matches!(out, Outcome::Success { .. }), "{out:?}");
    let dir = scos_dir(&e);
    assert_eq!(std::fs::read(dir.join("kernel")).unwrap(), f.kernel);
    assert_eq!(std::fs::read(dir.join("rootfs.img")).unwrap(), f.rootfs);
    let paths: Vec<String> = srv.log().iter().map(|l| l.path.clone()).collect();
    assert!(
        paths.iter().all(|p| p.starts_with("/mirror/scos-live-")),
        "{paths:?}"
    );
    assert!(run(&e, &mirrored).await.unwrap().is_noop());
}

/// A site CA made for the test, and a server certificate for 127.0.0.1
/// signed by it.
struct SitePki {
    ca_pem: String,
    server: Arc<rustls::ServerConfig>,
}

fn site_pki(name: &str) -> SitePki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        SanType,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, name);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    leaf.subject_alt_names = vec![SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into())];
    let cert = leaf.signed_by(&key, &issuer).unwrap();

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    SitePki {
        ca_pem,
        server: Arc::new(server),
    }
}

/// A real `https://` stream location, no mirror: the stream JSON and the
/// artifacts come over TLS from a server whose certificate chains to the
/// site CA given in `download.site_ca`.
#[tokio::test]
async fn scos_over_https_with_the_site_ca() {
    let pki = site_pki("Harmony test site CA");
    let srv = TestServer::start_tls(pki.server.clone()).await;
    let (f, _) = scos_files(&srv);
    assert!(srv.url("stream.json").starts_with("https://127.0.0.1:"));
    let e = env();
    let ca = e.dir.join("site-ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let mut score = ScosAssets::new(Source::Url(srv.url("stream.json").parse().unwrap()));
    score.download = DownloadConfig {
        site_ca: Some(ca.clone()),
        ..fast()
    };
    assert_eq!(score.mirror, None);

    let out = run(&e, &score).await.unwrap();
    let Outcome::Success { changes } = &out else {
        panic!("{out:?}")
    };
    assert_eq!(changes.len(), 3, "{changes:?}");
    let dir = scos_dir(&e);
    assert_scos_served(&dir, &f);
    assert_eq!(srv.requests(), 4, "stream + 3 artifacts: {:?}", srv.log());

    // Resume over https too.
    std::fs::remove_file(dir.join("rootfs.img")).unwrap();
    std::fs::write(part_path(&staged(&e, &f.rootfs)), &f.rootfs[..1000]).unwrap();
    run(&e, &score).await.unwrap();
    assert_eq!(std::fs::read(dir.join("rootfs.img")).unwrap(), f.rootfs);
    assert_eq!(
        srv.log().last().unwrap().range.as_deref(),
        Some("bytes=1000-")
    );
}

/// The server's certificate chains to another CA than the one given, or
/// to none of the built-in roots: refused, naming the URL and saying the
/// certificate is not trusted; nothing is written.
#[tokio::test]
async fn https_with_a_wrong_site_ca_is_refused() {
    let pki = site_pki("Harmony test site CA");
    let other = site_pki("Some other CA");
    let srv = TestServer::start_tls(pki.server.clone()).await;
    scos_files(&srv);
    let e = env();
    let wrong = e.dir.join("other-ca.pem");
    std::fs::write(&wrong, &other.ca_pem).unwrap();
    let stream_url = srv.url("stream.json");

    for site_ca in [Some(wrong.clone()), None] {
        let mut score = ScosAssets::new(Source::Url(stream_url.parse().unwrap()));
        score.download = DownloadConfig {
            site_ca: site_ca.clone(),
            ..fast()
        };
        let err = run(&e, &score).await.unwrap_err().to_string();
        assert!(err.contains(&stream_url), "names the URL: {err}");
        assert!(err.contains("not trusted"), "{site_ca:?}: {err}");
        eprintln!("refused as expected: {err}");
        assert!(!scos_dir(&e).join("kernel").exists());
    }
    assert_eq!(srv.requests(), 0, "no request got past the handshake");

    // The same through the downloader itself: a typed error.
    let d = tempfile::tempdir().unwrap();
    let cfg = DownloadConfig {
        site_ca: Some(wrong),
        ..fast()
    };
    let want: Sha256Digest = "0".repeat(64).parse().unwrap();
    let url = srv.url("scos/kernel-x86_64").parse().unwrap();
    let err = download::download(&url, &d.path().join("k"), &want, &cfg, &|_, _| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, DownloadError::Http(HttpError::Untrusted { .. })),
        "{err:?}"
    );
}
