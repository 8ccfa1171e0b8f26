//! One REST session to an AOS-CX switch (vendor-apis.md §2): `POST
//! /rest/<version>/login` with the form fields `username` and `password`
//! and the header `x-use-csrf-token: true`, 200 and a session cookie; an
//! `X-Csrf-Token` answer header is echoed as `x-csrf-token` on every later
//! request; `POST …/logout` always ends the session (sessions are capped
//! per user). Expected codes: GET 200, PUT 200/204, POST 201, DELETE 204
//! (pyaoscx `session.py`, `utils/util.py` [A1, A4]; AOS-CX 10.06 REST
//! guide [A6]). Every request goes through `infra::http_client` with the
//! site CA and a time limit.

use reqwest::Method;
use serde_json::Value;

use crate::domain::HttpUrl;
use crate::infra::device_login::DeviceLogin;
use crate::infra::http_client::{HttpClient, HttpError};

/// Largest answer body read.
pub const MAX_BODY: u64 = 8 << 20;

/// What went wrong talking to the switch; each names the endpoint.
#[derive(Debug, thiserror::Error)]
pub enum AosCxError {
    #[error("{endpoint}: login refused (HTTP {status}): {message}")]
    Login {
        endpoint: String,
        status: u16,
        message: String,
    },
    #[error("{method} {endpoint}: HTTP {status}: {message}")]
    Status {
        method: Method,
        endpoint: String,
        status: u16,
        message: String,
    },
    #[error("{method} {endpoint}: {source}")]
    Http {
        method: Method,
        endpoint: String,
        #[source]
        source: HttpError,
    },
    #[error("{endpoint}: {reason}")]
    Answer { endpoint: String, reason: String },
    #[error("invalid URL {0}")]
    Url(String),
}

/// A device's message for an error: printable ASCII kept, anything else
/// `?`, at most 300 characters.
pub fn printable(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let s: String = s
        .trim()
        .chars()
        .take(300)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if s.is_empty() {
        "(empty body)".into()
    } else {
        s
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A logged-in session.
pub struct Session<'a> {
    http: &'a HttpClient,
    /// `https://sw/rest/v10.09`
    base: String,
    cookie: String,
    csrf: Option<String>,
}

impl std::fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl<'a> Session<'a> {
    fn url(base: &str, path: &str) -> Result<HttpUrl, AosCxError> {
        format!("{base}{path}")
            .parse()
            .map_err(|_| AosCxError::Url(format!("{base}{path}")))
    }

    pub async fn login(
        http: &'a HttpClient,
        base: String,
        login: &DeviceLogin,
    ) -> Result<Session<'a>, AosCxError> {
        let endpoint = format!("{base}/login");
        let url = Self::url(&base, "/login")?;
        let form = format!(
            "username={}&password={}",
            form_encode(login.user()),
            form_encode(login.password())
        );
        let resp = http
            .request(
                Method::POST,
                &url,
                Some((form.into_bytes(), "application/x-www-form-urlencoded")),
            )
            .header("x-use-csrf-token", "true")
            .send()
            .await
            .map_err(|source| AosCxError::Http {
                method: Method::POST,
                endpoint: endpoint.clone(),
                source,
            })?;
        let status = resp.status();
        let cookie = resp
            .header("set-cookie")
            .and_then(|c| c.split(';').next())
            .map(|c| c.trim().to_string());
        let csrf = resp.header("x-csrf-token").map(str::to_string);
        let body = resp.bytes_capped(64 * 1024).await.unwrap_or_default();
        if status != 200 {
            return Err(AosCxError::Login {
                endpoint,
                status,
                message: printable(&body),
            });
        }
        let ok_cookie = |c: &String| {
            c.contains('=') && c.len() <= 4096 && c.bytes().all(|b| b.is_ascii_graphic())
        };
        let Some(cookie) = cookie.filter(ok_cookie) else {
            return Err(AosCxError::Answer {
                endpoint,
                reason: "no usable session cookie in the answer".into(),
            });
        };
        Ok(Session {
            http,
            base,
            cookie,
            csrf,
        })
    }

    /// `method path` with an optional JSON body; the status must be one
    /// of `expected`; returns the body (capped).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        expected: &[u16],
    ) -> Result<Vec<u8>, AosCxError> {
        let endpoint = format!("{}{path}", self.base);
        let url = Self::url(&self.base, path)?;
        let http_err = |source| AosCxError::Http {
            method: method.clone(),
            endpoint: endpoint.clone(),
            source,
        };
        let body = body.map(|v| (v.to_string().into_bytes(), "application/json"));
        let mut req = self
            .http
            .request(method.clone(), &url, body)
            .header_text("cookie", &self.cookie)
            .map_err(http_err)?;
        if let Some(t) = &self.csrf {
            req = req.header_text("x-csrf-token", t).map_err(http_err)?;
        }
        tracing::debug!(%method, %endpoint, "aos-cx request");
        let resp = req.send().await.map_err(http_err)?;
        let status = resp.status();
        let bytes = resp.bytes_capped(MAX_BODY).await.map_err(http_err)?;
        if !expected.contains(&status) {
            return Err(AosCxError::Status {
                method,
                endpoint,
                status,
                message: printable(&bytes),
            });
        }
        Ok(bytes)
    }

    /// GET `path` as JSON.
    pub async fn get(&self, path: &str) -> Result<Value, AosCxError> {
        let bytes = self.call(Method::GET, path, None, &[200]).await?;
        serde_json::from_slice(&bytes).map_err(|e| AosCxError::Answer {
            endpoint: format!("{}{path}", self.base),
            reason: format!("not JSON: {e}"),
        })
    }

    /// Ends the session; a failure is only logged (the switch drops idle
    /// sessions after 20 minutes).
    pub async fn logout(self) {
        if let Err(e) = self.call(Method::POST, "/logout", None, &[200, 204]).await {
            tracing::warn!(error = %e, "AOS-CX logout failed");
        }
    }
}
