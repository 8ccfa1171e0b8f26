//! Per-host Ignition configs (spec 3.2.0, like openshift-install's pointer
//! configs): merge the role's config by URL, and add `/etc/hostname` and the
//! bond's NetworkManager keyfiles. Also runs `openshift-install create
//! ignition-configs` and validates every config we emit (parsed back with
//! `ignition-config`, warnings are errors; `ignition-validate` for the real
//! check).
//!
//! Role configs carry secrets (pull secret, certificates, keys): their
//! contents never reach logs, `Debug` output or error messages.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use ignition_config::v3_2 as ign;
use sha2::Digest as _;

use crate::domain::values::{Hostname, HttpUrl, RelativePath, Role};
use crate::infra::process::{ProcessError, Program};

/// Where NetworkManager reads keyfiles on the installed system.
pub const KEYFILE_DIR: &str = "/etc/NetworkManager/system-connections";

/// Default location of `ignition-validate` (Debian's `ignition` package).
pub const IGNITION_VALIDATE: &str = "/usr/bin/ignition-validate";

/// Time limit of `ignition-validate` on one config.
const VALIDATE_TIMEOUT: Duration = Duration::from_secs(60);
/// Time limit of `openshift-install create ignition-configs`.
const INSTALLER_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum IgnitionError {
    #[error("{0} not found (or not a file): install it or configure its path")]
    BinaryMissing(PathBuf),
    /// Could not start, timed out (process group killed) or, for
    /// `ignition-validate`, I/O trouble; the command line is in it.
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(
        "openshift-install failed ({status}); see {dir}/.openshift_install.log \
         (output not shown: it may carry secrets)"
    )]
    InstallerFailed { status: String, dir: PathBuf },
    #[error("openshift-install did not write {0}")]
    RoleConfigMissing(PathBuf),
    #[error("could not read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} is not a valid Ignition config (details withheld: it may carry secrets)")]
    RoleConfigInvalid { what: String },
    #[error("generated Ignition config is invalid: {0}")]
    Invalid(String),
    #[error("ignition-validate rejected the config (exit {status}): {output}")]
    Rejected { status: String, output: String },
    #[error("invalid CA bundle: {0}")]
    CaBundle(&'static str),
    #[error("could not write a temporary file: {0}")]
    Temp(std::io::Error),
    #[error("keyfile name {0} is not a plain file name")]
    KeyfileName(String),
}

/// A PEM CA bundle (public certificates only) trusted for the merge URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaBundle(String);

impl serde::Serialize for CaBundle {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for CaBundle {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pem = <String as serde::Deserialize>::deserialize(d)?;
        CaBundle::new(&pem).map_err(serde::de::Error::custom)
    }
}

impl CaBundle {
    pub fn new(pem: &str) -> Result<Self, IgnitionError> {
        if !pem.contains("-----BEGIN CERTIFICATE-----")
            || !pem.contains("-----END CERTIFICATE-----")
        {
            return Err(IgnitionError::CaBundle("no PEM certificate in it"));
        }
        if pem.contains("PRIVATE KEY") {
            return Err(IgnitionError::CaBundle("it contains a private key"));
        }
        if pem.len() > 1 << 20 {
            return Err(IgnitionError::CaBundle("larger than 1 MiB"));
        }
        Ok(Self(pem.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Everything one host's Ignition config carries.
#[derive(Debug, Clone)]
pub struct HostIgnition {
    pub hostname: Hostname,
    pub role: Role,
    /// The role's config (`bootstrap.ign`, `master.ign`, `worker.ign` on the
    /// HTTP server, or the machine-config server's `/config/<pool>`).
    pub role_config: HttpUrl,
    pub ca: Option<CaBundle>,
    /// NetworkManager keyfiles (from `BondPlan::keyfiles`).
    pub keyfiles: Vec<(RelativePath, String)>,
}

/// An RFC 2397 data URL with base64 payload.
pub fn data_url(bytes: &[u8]) -> String {
    format!(
        "data:text/plain;charset=utf-8;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// Decode a data URL written by [`data_url`] (or a plain `data:,` one with
/// no percent escapes). For tests and checks.
pub fn decode_data_url(url: &str) -> Option<Vec<u8>> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    if meta.ends_with(";base64") {
        base64::engine::general_purpose::STANDARD.decode(data).ok()
    } else if data.contains('%') {
        None
    } else {
        Some(data.as_bytes().to_vec())
    }
}

fn resource(source: String) -> ign::Resource {
    ign::Resource {
        source: Some(source),
        ..Default::default()
    }
}

fn file(path: String, mode: i64, contents: &[u8]) -> ign::File {
    let mut f = ign::File::new(path);
    f.mode = Some(mode);
    f.overwrite = Some(true);
    f.contents = Some(resource(data_url(contents)));
    f
}

fn pointer_base(source: &HttpUrl, ca: Option<&CaBundle>) -> ign::Config {
    let mut c = ign::Config::default();
    c.ignition.config = Some(ign::IgnitionConfig {
        merge: Some(vec![resource(source.to_string())]),
        replace: None,
    });
    if let Some(ca) = ca {
        c.ignition.security = Some(ign::Security {
            tls: Some(ign::SecurityTls {
                certificate_authorities: Some(vec![resource(data_url(ca.as_str().as_bytes()))]),
            }),
        });
    }
    c
}

fn strip_nulls(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Serialize: nulls stripped, keys sorted, pretty, trailing newline.
fn to_bytes(c: &ign::Config) -> Result<Vec<u8>, IgnitionError> {
    let mut v = serde_json::to_value(c).map_err(|e| IgnitionError::Invalid(e.to_string()))?;
    strip_nulls(&mut v);
    let mut out =
        serde_json::to_vec_pretty(&v).map_err(|e| IgnitionError::Invalid(e.to_string()))?;
    out.push(b'\n');
    check_parses(&out)?;
    Ok(out)
}

/// A pointer config like openshift-install's: it only merges `source`
/// (e.g. `https://api-int.<cluster>.<domain>:22623/config/master`) and
/// trusts `ca` for it.
pub fn pointer_config(source: &HttpUrl, ca: Option<&CaBundle>) -> Result<Vec<u8>, IgnitionError> {
    to_bytes(&pointer_base(source, ca))
}

/// The per-host config: merge the role's config, write `/etc/hostname`
/// (0644) and the keyfiles (0600) under [`KEYFILE_DIR`].
pub fn host_ignition(h: &HostIgnition) -> Result<Vec<u8>, IgnitionError> {
    let mut c = pointer_base(&h.role_config, h.ca.as_ref());
    let mut files = vec![file(
        "/etc/hostname".into(),
        0o644,
        format!("{}\n", h.hostname).as_bytes(),
    )];
    for (name, contents) in &h.keyfiles {
        if name.as_str().contains('/') {
            return Err(IgnitionError::KeyfileName(name.to_string()));
        }
        files.push(file(
            format!("{KEYFILE_DIR}/{name}"),
            0o600,
            contents.as_bytes(),
        ));
    }
    c.storage = Some(ign::Storage {
        files: Some(files),
        ..Default::default()
    });
    tracing::debug!(host = %h.hostname, role = %h.role, "built host Ignition config");
    to_bytes(&c)
}

/// Parse `bytes` back with `ignition-config`; any warning is an error.
pub fn check_parses(bytes: &[u8]) -> Result<ignition_config::Config, IgnitionError> {
    let (cfg, warnings) = ignition_config::Config::parse_slice(bytes)
        .map_err(|e| IgnitionError::Invalid(e.to_string()))?;
    if !warnings.is_empty() {
        let w: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
        return Err(IgnitionError::Invalid(w.join("; ")));
    }
    Ok(cfg)
}

/// Run `ignition-validate` on `bytes`: it must exit 0 and print nothing
/// (no warnings). Only for configs Harmony generates (its output quotes
/// the config).
pub fn run_ignition_validate(binary: &Path, bytes: &[u8]) -> Result<(), IgnitionError> {
    if !binary.is_file() {
        return Err(IgnitionError::BinaryMissing(binary.to_path_buf()));
    }
    let mut tmp = tempfile::Builder::new()
        .suffix(".ign")
        .tempfile()
        .map_err(IgnitionError::Temp)?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(IgnitionError::Temp)?;
    let out = Program::new(binary)
        .arg(tmp.path())
        .timeout(VALIDATE_TIMEOUT)
        .max_output(64 << 10)
        .output_blocking()?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    if !out.status.success() || !text.trim().is_empty() {
        return Err(IgnitionError::Rejected {
            status: out.status.to_string(),
            output: text.chars().take(2000).collect(),
        });
    }
    Ok(())
}

/// One role config as openshift-install wrote it. `Debug` shows only its
/// size and SHA-256, never its contents.
#[derive(Clone, PartialEq, Eq)]
pub struct RoleConfig {
    pub role: Role,
    bytes: Vec<u8>,
}

impl RoleConfig {
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The file name openshift-install uses for `role`.
    pub fn file_name(role: Role) -> &'static str {
        match role {
            Role::Bootstrap => "bootstrap.ign",
            Role::ControlPlane => "master.ign",
            Role::Worker => "worker.ign",
        }
    }

    pub fn sha256_hex(&self) -> String {
        hex::encode(sha2::Sha256::digest(&self.bytes))
    }
}

impl fmt::Debug for RoleConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoleConfig")
            .field("role", &self.role)
            .field("len", &self.bytes.len())
            .field("sha256", &self.sha256_hex())
            .finish()
    }
}

/// The three role configs of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleConfigs {
    pub bootstrap: RoleConfig,
    pub master: RoleConfig,
    pub worker: RoleConfig,
}

/// Run `openshift-install create ignition-configs --dir install_dir` and
/// read back `bootstrap.ign`, `master.ign` and `worker.ign` (each parsed
/// with `ignition-config`). Neither the installer's output nor the files'
/// contents are logged or put in errors.
pub fn create_ignition_configs(
    openshift_install: &Path,
    install_dir: &Path,
) -> Result<RoleConfigs, IgnitionError> {
    if !openshift_install.is_file() {
        return Err(IgnitionError::BinaryMissing(
            openshift_install.to_path_buf(),
        ));
    }
    tracing::info!(dir = %install_dir.display(), "running openshift-install create ignition-configs");
    // Its output may quote the install config (pull secret): withheld.
    let out = Program::new(openshift_install)
        .args(["create", "ignition-configs", "--dir"])
        .arg(install_dir)
        .timeout(INSTALLER_TIMEOUT)
        .withhold_output()
        .output_blocking()?;
    if !out.status.success() {
        return Err(IgnitionError::InstallerFailed {
            status: out.status.to_string(),
            dir: install_dir.to_path_buf(),
        });
    }
    read_role_configs(install_dir)
}

/// Reads and parses (with `ignition-config`) the three role configs
/// `openshift-install` wrote in `install_dir`.
pub fn read_role_configs(install_dir: &Path) -> Result<RoleConfigs, IgnitionError> {
    let read = |role: Role| -> Result<RoleConfig, IgnitionError> {
        let path = install_dir.join(RoleConfig::file_name(role));
        if !path.is_file() {
            return Err(IgnitionError::RoleConfigMissing(path));
        }
        let bytes = std::fs::read(&path).map_err(|source| IgnitionError::Read {
            path: path.clone(),
            source,
        })?;
        ignition_config::Config::parse_slice(&bytes).map_err(|_| {
            IgnitionError::RoleConfigInvalid {
                what: path.display().to_string(),
            }
        })?;
        let rc = RoleConfig { role, bytes };
        tracing::info!(file = %path.display(), len = rc.bytes.len(), sha256 = %rc.sha256_hex(), "role Ignition config");
        Ok(rc)
    };
    Ok(RoleConfigs {
        bootstrap: read(Role::Bootstrap)?,
        master: read(Role::ControlPlane)?,
        worker: read(Role::Worker)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_round_trip() {
        let s = b"a,b%c\n[x]\n";
        assert_eq!(decode_data_url(&data_url(s)).unwrap(), s);
        assert!(data_url(s).starts_with("data:text/plain;charset=utf-8;base64,"));
    }

    #[test]
    fn ca_bundle_refuses_keys_and_junk() {
        assert!(CaBundle::new("hello").is_err());
        let pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(CaBundle::new(pem).is_ok());
        let with_key = format!("{pem}-----BEGIN PRIVATE KEY-----\n");
        assert!(CaBundle::new(&with_key).is_err());
    }

    #[test]
    fn role_config_debug_hides_contents() {
        let rc = RoleConfig {
            role: Role::Worker,
            bytes: b"{\"pullSecret\":\"s3cr3t\"}".to_vec(),
        };
        let d = format!("{rc:?}");
        assert!(!d.contains("s3cr3t"));
        assert!(d.contains("sha256"));
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = check_parses(br#"{"ignition":{"version":"3.2.0"},"storag":{}}"#);
        assert!(err.is_err());
    }
}
