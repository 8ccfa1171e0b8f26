//! The OPNsense REST API client: `https://<fw>/api/<module>/<controller>/<command>`,
//! HTTP basic auth with the API key as user and the secret as password,
//! JSON bodies (`{}` on action POSTs: an empty body is refused by
//! OPNsense), every call bounded by the profile's timeouts. OPNsense's
//! answers become typed [`OpnSenseError`]s naming the endpoint: a
//! `{"result":"failed","validations":{…}}` names the field and message, a
//! 401/403/404/500 its status and OPNsense's message, anything not JSON a
//! clear error with a bounded, sanitised copy of the body.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::domain::HttpUrl;
use crate::domain::text::safe_text as safe_text_bounded;
use crate::infra::http_client::{HttpClient, HttpError, HttpProfile};

/// Largest answer body read.
const MAX_BODY: u64 = 8 << 20;
/// Largest credentials file read.
const MAX_KEY_FILE: u64 = 64 << 10;

/// Why an OPNsense call failed. Every variant names the endpoint.
#[derive(Debug, thiserror::Error)]
pub enum OpnSenseError {
    #[error("OPNsense credentials: {0}")]
    Credentials(String),
    #[error("OPNsense file copy: {0}")]
    Files(String),
    #[error("OPNsense {endpoint}: {source}")]
    Http {
        endpoint: String,
        #[source]
        source: HttpError,
    },
    #[error("OPNsense {endpoint}: HTTP {status}: {message}")]
    Status {
        endpoint: String,
        status: u16,
        message: String,
    },
    #[error("OPNsense {endpoint}: refused: {}", format_validations(validations))]
    Validation {
        endpoint: String,
        /// (field, message), in OPNsense's order.
        validations: Vec<(String, String)>,
    },
    #[error("OPNsense {endpoint}: {reason}")]
    Failed { endpoint: String, reason: String },
    #[error("OPNsense {endpoint}: the answer is not the JSON expected: {reason}: {body:?}")]
    BadAnswer {
        endpoint: String,
        reason: String,
        /// A bounded, sanitised copy of the body.
        body: String,
    },
}

fn format_validations(v: &[(String, String)]) -> String {
    v.iter()
        .map(|(f, m)| format!("{f}: {m}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// API key and secret. `Debug` shows neither.
#[derive(Clone)]
pub struct Credentials {
    key: String,
    secret: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials { key: <redacted>, secret: <redacted> }")
    }
}

impl Credentials {
    pub fn new(key: &str, secret: &str) -> Result<Self, OpnSenseError> {
        let ok =
            |s: &str| !s.is_empty() && s.len() <= 512 && s.bytes().all(|b| b.is_ascii_graphic());
        if !ok(key) || !ok(secret) {
            return Err(OpnSenseError::Credentials(
                "key and secret must be 1 to 512 visible ASCII characters".into(),
            ));
        }
        Ok(Self {
            key: key.to_string(),
            secret: secret.to_string(),
        })
    }

    /// The file OPNsense exports with a new key (`key=…` and `secret=…`
    /// lines). A file readable by others than its owner is warned about.
    pub fn from_file(path: &Path) -> Result<Self, OpnSenseError> {
        let bad = |why: String| OpnSenseError::Credentials(format!("{}: {why}", path.display()));
        let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
        if meta.len() > MAX_KEY_FILE {
            return Err(bad(format!("larger than {MAX_KEY_FILE} bytes")));
        }
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{mode:o}"),
                    "the OPNsense API key file is readable by others than its owner; make it 0600"
                );
            }
        }
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let (mut key, mut secret) = (None, None);
        for line in text.lines() {
            let line = line.trim();
            if let Some(v) = line.strip_prefix("key=") {
                key = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("secret=") {
                secret = Some(v.trim());
            }
        }
        match (key, secret) {
            (Some(k), Some(s)) => Self::new(k, s).map_err(|e| bad(e.to_string())),
            (None, _) => Err(bad("no key= line".into())),
            (_, None) => Err(bad("no secret= line".into())),
        }
    }

    /// From two environment variables (their names, never their values,
    /// appear in errors).
    pub fn from_env(key_var: &str, secret_var: &str) -> Result<Self, OpnSenseError> {
        let read = |var: &str| {
            std::env::var(var).map_err(|_| {
                OpnSenseError::Credentials(format!("environment variable {var} is not set"))
            })
        };
        Self::new(&read(key_var)?, &read(secret_var)?)
    }
}

/// Where the firewall is and how to reach it.
#[derive(Debug, Clone)]
pub struct OpnSenseConfig {
    /// `https://fw.example.com` (with a port if not 443).
    pub base_url: HttpUrl,
    pub credentials: Credentials,
    /// The site CA's PEM file, when the firewall's certificate is not
    /// signed by a public CA.
    pub site_ca: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// The whole of one call (reconfigure calls render templates and can
    /// take seconds).
    pub call_timeout: Duration,
}

impl OpnSenseConfig {
    pub fn new(base_url: HttpUrl, credentials: Credentials) -> Self {
        Self {
            base_url,
            credentials,
            site_ca: None,
            connect_timeout: Duration::from_secs(5),
            call_timeout: Duration::from_secs(60),
        }
    }
}

/// A client of one firewall's API. Cheap to clone.
#[derive(Debug, Clone)]
pub struct OpnSenseClient {
    http: HttpClient,
    base: String,
    credentials: Credentials,
}

impl OpnSenseClient {
    pub fn new(config: OpnSenseConfig) -> Result<Self, OpnSenseError> {
        let profile = HttpProfile {
            connect_timeout: config.connect_timeout,
            total_timeout: Some(config.call_timeout),
            idle_timeout: config.call_timeout,
            max_redirects: 0,
            pooled: true,
            user_agent: "harmony-opnsense",
            site_ca: config.site_ca.clone(),
        };
        let http = HttpClient::new(profile).map_err(|source| OpnSenseError::Http {
            endpoint: config.base_url.to_string(),
            source,
        })?;
        Ok(Self {
            http,
            base: config.base_url.as_str().trim_end_matches('/').to_string(),
            credentials: config.credentials,
        })
    }

    /// `GET /api/<endpoint>`.
    pub async fn get(&self, endpoint: &str) -> Result<Value, OpnSenseError> {
        self.call(endpoint, None).await
    }

    /// `POST /api/<endpoint>` with `body` (use `{}` for actions).
    pub async fn post(&self, endpoint: &str, body: &Value) -> Result<Value, OpnSenseError> {
        self.call(endpoint, Some(body)).await
    }

    /// A CRUD write (`add_*`, `set_*`): `{"result":"saved"}` expected; a
    /// `failed` result with validations becomes [`OpnSenseError::Validation`].
    /// Returns the new item's UUID when OPNsense gives one.
    pub async fn save(
        &self,
        endpoint: &str,
        body: &Value,
    ) -> Result<Option<String>, OpnSenseError> {
        let v = self.post(endpoint, body).await?;
        match v.get("result").and_then(Value::as_str) {
            Some("saved") => Ok(v.get("uuid").and_then(Value::as_str).map(str::to_string)),
            _ => Err(result_error(endpoint, &v)),
        }
    }

    /// A CRUD delete: `Ok(true)` deleted, `Ok(false)` "not found".
    pub async fn delete(&self, endpoint: &str) -> Result<bool, OpnSenseError> {
        let v = self.post(endpoint, &serde_json::json!({})).await?;
        match v.get("result").and_then(Value::as_str) {
            Some("deleted") => Ok(true),
            Some("not found") => Ok(false),
            _ => Err(result_error(endpoint, &v)),
        }
    }

    /// Deletes each item (`del_*` endpoints) and, when any was there,
    /// applies with `reconfigure`: `true` when something changed.
    pub async fn delete_all_then_apply(
        &self,
        endpoints: impl IntoIterator<Item = String>,
        reconfigure: &str,
    ) -> Result<bool, OpnSenseError> {
        let mut changed = false;
        for endpoint in endpoints {
            changed |= self.delete(&endpoint).await?;
        }
        if changed {
            self.reconfigure(reconfigure).await?;
        }
        Ok(changed)
    }

    /// `POST /api/<module>/service/reconfigure` (or the given endpoint):
    /// pushes `config.xml` to the running service; `{"status":"ok"}`.
    pub async fn reconfigure(&self, endpoint: &str) -> Result<(), OpnSenseError> {
        let v = self.post(endpoint, &serde_json::json!({})).await?;
        let status = v
            .get("status")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase);
        match status.as_deref() {
            Some("ok") => Ok(()),
            _ => Err(result_error(endpoint, &v)),
        }
    }

    /// Every row of a `search_*` endpoint (`rowCount` −1: all).
    pub async fn search(&self, endpoint: &str) -> Result<Vec<Value>, OpnSenseError> {
        let body = serde_json::json!({"current": 1, "rowCount": -1, "searchPhrase": ""});
        let v = self.post(endpoint, &body).await?;
        match v.get("rows") {
            Some(Value::Array(rows)) => Ok(rows.clone()),
            _ => Err(bad_answer(endpoint, "no \"rows\" list", &v.to_string())),
        }
    }

    async fn call(&self, endpoint: &str, body: Option<&Value>) -> Result<Value, OpnSenseError> {
        let url_text = format!("{}/api/{endpoint}", self.base);
        let url: HttpUrl =
            url_text
                .parse()
                .map_err(|e: crate::domain::ValueError| OpnSenseError::Failed {
                    endpoint: endpoint.to_string(),
                    reason: e.to_string(),
                })?;
        let http_err = |source| OpnSenseError::Http {
            endpoint: endpoint.to_string(),
            source,
        };
        let req = match body {
            Some(b) => self.http.post_json(&url, b.to_string().into_bytes()),
            None => self.http.get(&url),
        };
        tracing::debug!(
            endpoint,
            method = if body.is_some() { "POST" } else { "GET" },
            "OPNsense API call"
        );
        let resp = req
            .basic_auth(&self.credentials.key, &self.credentials.secret)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(http_err)?;
        let status = resp.status();
        let bytes = resp.bytes_capped(MAX_BODY).await.map_err(http_err)?;
        let text = String::from_utf8_lossy(&bytes);
        let json: Option<Value> = serde_json::from_slice(&bytes).ok();
        if !(200..300).contains(&status) {
            let message = json
                .as_ref()
                .and_then(|j| {
                    j.get("message")
                        .or_else(|| j.get("errorMessage"))
                        .and_then(Value::as_str)
                        .map(|m| match j.get("errorTitle").and_then(Value::as_str) {
                            Some(t) => format!("{t}: {m}"),
                            None => m.to_string(),
                        })
                })
                .map(|m| safe_text_bounded(&m, 300))
                .unwrap_or_else(|| {
                    format!("(not OPNsense's JSON) {:?}", safe_text_bounded(&text, 200))
                });
            return Err(OpnSenseError::Status {
                endpoint: endpoint.to_string(),
                status,
                message,
            });
        }
        match json {
            Some(v @ Value::Object(_)) => Ok(v),
            Some(_) => Err(bad_answer(endpoint, "not a JSON object", &text)),
            None => Err(bad_answer(
                endpoint,
                "not valid JSON (truncated or HTML?)",
                &text,
            )),
        }
    }
}

fn bad_answer(endpoint: &str, reason: &str, body: &str) -> OpnSenseError {
    OpnSenseError::BadAnswer {
        endpoint: endpoint.to_string(),
        reason: reason.to_string(),
        body: safe_text_bounded(body, 200),
    }
}

/// The error of a `{"result":"failed",…}` (or any other unexpected) answer.
fn result_error(endpoint: &str, v: &Value) -> OpnSenseError {
    if let Some(Value::Object(map)) = v.get("validations") {
        let mut validations = Vec::new();
        for (field, msg) in map {
            let text = match msg {
                Value::String(s) => s.clone(),
                Value::Array(list) => list
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" / "),
                other => other.to_string(),
            };
            validations.push((safe_text_bounded(field, 100), safe_text_bounded(&text, 300)));
        }
        if !validations.is_empty() {
            return OpnSenseError::Validation {
                endpoint: endpoint.to_string(),
                validations,
            };
        }
    }
    let shown = ["result", "status", "message"]
        .iter()
        .find_map(|k| {
            v.get(*k)
                .and_then(Value::as_str)
                .map(|s| format!("{k} {s:?}"))
        })
        .unwrap_or_else(|| "no result".into());
    OpnSenseError::Failed {
        endpoint: endpoint.to_string(),
        reason: format!("OPNsense answered {}", safe_text_bounded(&shown, 200)),
    }
}

/// The values of a field as OPNsense gives them: a plain (comma-separated)
/// string, a list, or a `get_*` option map `{"k":{"value":…,"selected":1}}`
/// (the selected keys).
pub fn field_values(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::Object(map)) => map
            .iter()
            .filter(|(_, o)| {
                matches!(o.get("selected"), Some(Value::Bool(true)))
                    || o.get("selected").and_then(Value::as_i64) == Some(1)
                    || o.get("selected").and_then(Value::as_str) == Some("1")
            })
            .map(|(k, _)| k.clone())
            .collect(),
        Some(Value::Number(n)) => vec![n.to_string()],
        _ => Vec::new(),
    }
}

/// One text field of a row ("" when absent).
pub fn field_text(row: &Value, name: &str) -> String {
    field_values(row.get(name)).join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_credentials() {
        let c = Credentials::new("KEY123", "SECRET456").unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("KEY123") && !shown.contains("SECRET456"),
            "{shown}"
        );
        let cfg = OpnSenseConfig::new("https://127.0.0.1:1".parse().unwrap(), c);
        let client = OpnSenseClient::new(cfg.clone()).unwrap();
        for shown in [format!("{cfg:?}"), format!("{client:?}")] {
            assert!(
                !shown.contains("KEY123") && !shown.contains("SECRET456"),
                "{shown}"
            );
        }
    }

    #[test]
    fn credentials_file_as_opnsense_exports_it() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("apikey.txt");
        std::fs::write(&p, "key=abc+/DEF\nsecret=s3cr3t/xyz\n").unwrap();
        let c = Credentials::from_file(&p).unwrap();
        assert_eq!(
            (c.key.as_str(), c.secret.as_str()),
            ("abc+/DEF", "s3cr3t/xyz")
        );
        std::fs::write(&p, "key=abc\n").unwrap();
        let e = Credentials::from_file(&p).unwrap_err().to_string();
        assert!(
            e.contains("no secret= line") && e.contains("apikey.txt"),
            "{e}"
        );
        assert!(!e.contains("abc"), "{e}");
        let e = Credentials::from_env("HARMONY_TEST_NO_SUCH_VAR", "X").unwrap_err();
        assert!(e.to_string().contains("HARMONY_TEST_NO_SUCH_VAR"), "{e}");
    }

    #[test]
    fn field_values_read_every_shape() {
        let v: Value = serde_json::json!({
            "a": "x, y,",
            "b": ["p", "q"],
            "c": {"u1": {"value": "one", "selected": 1}, "u2": {"value": "two", "selected": 0}},
        });
        assert_eq!(field_values(v.get("a")), ["x", "y"]);
        assert_eq!(field_values(v.get("b")), ["p", "q"]);
        assert_eq!(field_values(v.get("c")), ["u1"]);
        assert!(field_values(v.get("none")).is_empty());
    }

    #[test]
    fn validations_name_field_and_message() {
        let v =
            serde_json::json!({"result": "failed", "validations": {"host.ip": ["in use", "bad"]}});
        let e = result_error("dnsmasq/settings/add_host", &v).to_string();
        assert!(
            e.contains("dnsmasq/settings/add_host") && e.contains("host.ip: in use / bad"),
            "{e}"
        );
    }
}
