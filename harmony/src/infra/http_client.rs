//! The one HTTP client of Harmony (on `reqwest` with rustls): discovery
//! probes agents with it and the asset Scores download OS images with it.
//!
//! - https is verified against the Mozilla roots (`webpki-root-certs`,
//!   built in, no system store) plus, optionally, a site CA file in PEM
//!   ([`HttpProfile::site_ca`]). There is no native-tls/OpenSSL. A server
//!   whose certificate does not chain to those roots is
//!   [`HttpError::Untrusted`], naming the URL.
//! - Every request has a connect timeout, a bound on each wait (headers,
//!   next body chunk) and, for profiles that set one, a bound on the whole
//!   exchange. Bodies are streamed; [`HttpResponse::bytes_capped`] refuses
//!   a body over its cap without reading it all.
//! - Redirects are followed here, not inside reqwest, so the rules are ours:
//!   none for [`HttpProfile::scanner`] (a 3xx is an answer like any other),
//!   at most a few for [`HttpProfile::download`], and only to the same
//!   scheme (no https -> http downgrade, no http -> https surprise).
//! - No proxy from the environment: the provisioning network is local and
//!   the tests stay on loopback whatever the environment says.
//!
//! [`tcp_check`] is the cheap first step of a scan: a bare TCP connect,
//! closed at once, so that the tens of thousands of closed addresses of a
//! range never cost a whole HTTP request.
//!
//! Errors keep the reqwest error as their source, so callers can walk the
//! chain to the `io::Error` ([`HttpError::io_cause`]), as the scanner does
//! to tell "this machine ran out of sockets" from "that host is down".

use std::error::Error as StdError;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{HeaderName, HeaderValue, LOCATION, RANGE};

use crate::domain::HttpUrl;

/// Largest site CA file read.
const MAX_CA_FILE: u64 = 1 << 20;
/// Causes walked in an error chain (a bound; real chains are short).
const MAX_CHAIN: usize = 16;

/// How a client behaves; one per use (scan, download).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpProfile {
    /// TCP (and TLS) connect, per request.
    pub connect_timeout: Duration,
    /// The whole exchange, redirects, headers and body included. `None`:
    /// bounded by `idle_timeout` and the caller's size cap only (large
    /// downloads).
    pub total_timeout: Option<Duration>,
    /// Longest wait for response headers or for the next body chunk.
    pub idle_timeout: Duration,
    /// Redirects followed (same scheme only); 0 returns the 3xx itself.
    pub max_redirects: u8,
    /// Keep idle connections for reuse. Off for scans: every address is a
    /// different host.
    pub pooled: bool,
    pub user_agent: &'static str,
    /// A PEM file of extra trusted CA certificates (the site's own CA).
    pub site_ca: Option<PathBuf>,
}

impl HttpProfile {
    /// Discovery: short timeouts, no redirects, no pooling, plain answers.
    pub fn scanner(connect_timeout: Duration, total_timeout: Duration) -> Self {
        Self {
            connect_timeout,
            total_timeout: Some(total_timeout),
            idle_timeout: total_timeout,
            max_redirects: 0,
            pooled: false,
            user_agent: "harmony-discovery",
            site_ca: None,
        }
    }

    /// Downloads: a few same-scheme redirects, long bodies bounded by the
    /// idle timeout and the caller's size cap.
    pub fn download(
        connect_timeout: Duration,
        idle_timeout: Duration,
        max_redirects: u8,
        site_ca: Option<PathBuf>,
    ) -> Self {
        Self {
            connect_timeout,
            total_timeout: None,
            idle_timeout,
            max_redirects,
            pooled: true,
            user_agent: "harmony-assets",
            site_ca,
        }
    }
}

/// Why a request failed. Every variant names the URL it concerns.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{url}: invalid URL: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("site CA file {}: {reason}", path.display())]
    SiteCa { path: PathBuf, reason: String },
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
    #[error("{url}: no connection within {}", humantime::format_duration(*after))]
    ConnectTimeout { url: String, after: Duration },
    #[error("{url}: connect failed: {}", chain_message(source))]
    Connect {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "{url}: the server's TLS certificate is not trusted ({reason}); if the site uses \
         its own CA, give its PEM file as the site CA (site_ca)"
    )]
    Untrusted { url: String, reason: String },
    #[error("{url}: TLS failed: {reason}")]
    Tls { url: String, reason: String },
    #[error("{url}: not done within {}", humantime::format_duration(*after))]
    Timeout { url: String, after: Duration },
    #[error("{url}: server idle for {}", humantime::format_duration(*after))]
    Idle { url: String, after: Duration },
    #[error("{url}: HTTP error: {}", chain_message(source))]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url}: more than {max} redirects")]
    TooManyRedirects { url: String, max: u8 },
    #[error("{url}: redirect to {to} changes the scheme; only same-scheme redirects are followed")]
    SchemeChange { url: String, to: String },
    #[error("{url}: redirect {status} without a usable Location: {reason}")]
    BadRedirect {
        url: String,
        status: u16,
        reason: String,
    },
    #[error("{url}: larger than the {limit}-byte limit")]
    TooLarge { url: String, limit: u64 },
}

impl HttpError {
    /// The operating-system error behind a connect or transport failure,
    /// found by walking the source chain.
    pub fn io_cause(&self) -> Option<&io::Error> {
        let source = match self {
            HttpError::Connect { source, .. } | HttpError::Transport { source, .. } => source,
            _ => return None,
        };
        let ios: Vec<&io::Error> = causes(source)
            .into_iter()
            .filter_map(|c| c.downcast_ref::<io::Error>())
            .collect();
        ios.iter()
            .find(|e| e.raw_os_error().is_some())
            .or_else(|| ios.first())
            .copied()
    }

    /// Worth another attempt: the transport failed, the answer was not
    /// wrong.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            HttpError::ConnectTimeout { .. }
                | HttpError::Connect { .. }
                | HttpError::Timeout { .. }
                | HttpError::Idle { .. }
                | HttpError::Transport { .. }
        )
    }
}

/// `e` and its causes, looking inside `io::Error`s (whose `source()` skips
/// the error they wrap, e.g. the rustls error of a failed handshake).
fn causes<'a>(e: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut cur = Some(e);
    while let Some(c) = cur {
        if out.len() >= MAX_CHAIN {
            break;
        }
        out.push(c);
        cur = match c.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => c.source(),
        };
    }
    out
}

/// The messages of the chain, joined (reqwest's own is terse). Built
/// only when shown: a scan meets tens of thousands of refused connects.
fn chain_message(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in causes(e) {
        let m = c.to_string();
        if !parts.iter().any(|p| p.contains(&m)) {
            parts.push(m);
        }
    }
    parts.join(": ")
}

fn classify(url: &HttpUrl, e: reqwest::Error, connect_timeout: Duration) -> HttpError {
    let url_s = url.to_string();
    for c in causes(&e) {
        if let Some(tls) = c.downcast_ref::<rustls::Error>() {
            return match tls {
                rustls::Error::InvalidCertificate(why) => HttpError::Untrusted {
                    url: url_s,
                    reason: certificate_problem(why),
                },
                other => HttpError::Tls {
                    url: url_s,
                    reason: other.to_string(),
                },
            };
        }
    }
    if e.is_connect() {
        if e.is_timeout() {
            return HttpError::ConnectTimeout {
                url: url_s,
                after: connect_timeout,
            };
        }
        return HttpError::Connect {
            url: url_s,
            source: e,
        };
    }
    HttpError::Transport {
        url: url_s,
        source: e,
    }
}

/// A certificate problem in words (rustls shows variant names).
fn certificate_problem(e: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    match e {
        C::UnknownIssuer => "issued by a CA that is not trusted here".into(),
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "not valid for this host name or address".into()
        }
        C::Expired | C::ExpiredContext { .. } => "expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => "not valid yet".into(),
        C::Revoked => "revoked".into(),
        C::BadEncoding => "badly encoded".into(),
        other => other.to_string(),
    }
}

/// What a bare TCP connect found.
#[derive(Debug)]
pub enum TcpCheck {
    /// Something accepted (the connection was closed again).
    Open,
    Refused,
    /// No answer within the time given.
    TimedOut,
    /// Any other error, local (EMFILE, ENOBUFS, ...) or remote
    /// (unreachable).
    Failed(io::Error),
}

/// Connects to `addr` within `timeout` and closes the connection at once.
///
/// The answer is read straight from the socket when the kernel already has
/// it as `connect` returns (loopback, a reset already received): most
/// addresses of a range then cost four system calls and no wake-up. Only a
/// connect still in progress is handed to the runtime to wait for.
pub async fn tcp_check(addr: SocketAddr, timeout: Duration) -> TcpCheck {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = match Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    ) {
        Ok(s) => s,
        Err(e) => return TcpCheck::Failed(e),
    };
    match socket.connect(&addr.into()) {
        Ok(()) => return TcpCheck::Open,
        Err(e) if e.raw_os_error() == Some(EINPROGRESS) => {}
        Err(e) => return connect_error(e),
    }
    match socket.take_error() {
        Ok(Some(e)) => return connect_error(e),
        Ok(None) => {}
        Err(e) => return TcpCheck::Failed(e),
    }
    if socket.peer_addr().is_ok() {
        return TcpCheck::Open;
    }
    let stream = match tokio::net::TcpStream::from_std(socket.into()) {
        Ok(s) => s,
        Err(e) => return TcpCheck::Failed(e),
    };
    match tokio::time::timeout(timeout, stream.writable()).await {
        Err(_) => TcpCheck::TimedOut,
        Ok(Err(e)) => TcpCheck::Failed(e),
        Ok(Ok(())) => match stream.take_error() {
            Ok(Some(e)) => connect_error(e),
            Ok(None) => TcpCheck::Open,
            Err(e) => TcpCheck::Failed(e),
        },
    }
}

/// Linux's "operation now in progress" (a non-blocking connect started).
const EINPROGRESS: i32 = 115;

fn connect_error(e: io::Error) -> TcpCheck {
    if e.kind() == io::ErrorKind::ConnectionRefused {
        TcpCheck::Refused
    } else {
        TcpCheck::Failed(e)
    }
}

/// A client for one profile. Cheap to clone (shares its connections).
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    profile: Arc<HttpProfile>,
}

impl HttpClient {
    pub fn new(profile: HttpProfile) -> Result<Self, HttpError> {
        let mut roots = Vec::with_capacity(webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() + 1);
        for der in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
            // A root that does not parse is skipped, not fatal: the others
            // still work.
            match reqwest::Certificate::from_der(der.as_ref()) {
                Ok(c) => roots.push(c),
                Err(e) => tracing::debug!(error = %e, "built-in root skipped"),
            }
        }
        if let Some(path) = &profile.site_ca {
            roots.extend(read_site_ca(path)?);
        }
        let mut b = reqwest::Client::builder()
            .tls_backend_rustls()
            .tls_certs_only(roots)
            .connect_timeout(profile.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(profile.user_agent);
        if !profile.pooled {
            b = b.pool_max_idle_per_host(0);
        }
        let client = b.build().map_err(|e| HttpError::Setup(chain_message(&e)))?;
        Ok(Self {
            client,
            profile: Arc::new(profile),
        })
    }

    pub fn profile(&self) -> &HttpProfile {
        &self.profile
    }

    /// A GET of `url`, sent with [`GetRequest::send`].
    pub fn get(&self, url: &HttpUrl) -> GetRequest<'_> {
        GetRequest {
            client: self,
            url: url.clone(),
            headers: Vec::new(),
            range_from: None,
            method: reqwest::Method::GET,
            body: None,
            content_type: "application/json",
            basic_auth: None,
        }
    }

    /// A request with any method and an optional body of `content_type`
    /// (REST APIs: PUT, DELETE, form logins); never redirected when it has
    /// a body.
    pub fn request(
        &self,
        method: reqwest::Method,
        url: &HttpUrl,
        body: Option<(Vec<u8>, &'static str)>,
    ) -> GetRequest<'_> {
        let (body, content_type) = match body {
            Some((b, t)) => (Some(Bytes::from(b)), t),
            None => (None, "application/json"),
        };
        GetRequest {
            method,
            body,
            content_type,
            ..self.get(url)
        }
    }

    /// A POST of `json` (sent as `application/json`) to `url`; never
    /// redirected whatever the profile says.
    pub fn post_json(&self, url: &HttpUrl, json: Vec<u8>) -> GetRequest<'_> {
        GetRequest {
            method: reqwest::Method::POST,
            body: Some(Bytes::from(json)),
            ..self.get(url)
        }
    }
}

/// The certificates of a PEM file; at least one, no private key.
fn read_site_ca(path: &Path) -> Result<Vec<reqwest::Certificate>, HttpError> {
    let bad = |reason: String| HttpError::SiteCa {
        path: path.to_path_buf(),
        reason,
    };
    let len = std::fs::metadata(path)
        .map_err(|e| bad(e.to_string()))?
        .len();
    if len > MAX_CA_FILE {
        return Err(bad(format!("larger than {MAX_CA_FILE} bytes")));
    }
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    if pem.windows(11).any(|w| w == b"PRIVATE KEY") {
        return Err(bad(
            "it contains a private key; give the CA certificate only".into(),
        ));
    }
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(chain_message(&e)))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// One request (a GET, or a JSON POST), with its headers, before sending.
pub struct GetRequest<'a> {
    client: &'a HttpClient,
    url: HttpUrl,
    headers: Vec<(HeaderName, HeaderValue)>,
    range_from: Option<u64>,
    method: reqwest::Method,
    body: Option<Bytes>,
    content_type: &'static str,
    basic_auth: Option<(String, String)>,
}

impl std::fmt::Debug for GetRequest<'_> {
    // The credentials are never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("range_from", &self.range_from)
            .field(
                "basic_auth",
                &self.basic_auth.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

impl GetRequest<'_> {
    /// Adds a header (a constant name and a value Harmony chose).
    pub fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ));
        self
    }

    /// Adds a header whose value came from elsewhere (a session cookie, a
    /// CSRF token): refused unless it is a valid header value. The value
    /// never appears in the error.
    pub fn header_text(mut self, name: &'static str, value: &str) -> Result<Self, HttpError> {
        let v = HeaderValue::from_str(value).map_err(|_| HttpError::InvalidUrl {
            url: self.url.to_string(),
            reason: format!("the {name} header value is not a valid header value"),
        })?;
        self.headers.push((HeaderName::from_static(name), v));
        Ok(self)
    }

    /// HTTP basic authentication with these credentials.
    pub fn basic_auth(mut self, user: &str, password: &str) -> Self {
        self.basic_auth = Some((user.to_string(), password.to_string()));
        self
    }

    /// Asks for the bytes from `offset` on (`Range: bytes=N-`).
    pub fn range_from(mut self, offset: u64) -> Self {
        self.range_from = Some(offset);
        self
    }

    /// Sends the request, following redirects as the profile allows;
    /// returns the first non-redirect answer (any status).
    pub async fn send(self) -> Result<HttpResponse, HttpError> {
        let profile = &self.client.profile;
        let deadline = profile.total_timeout.map(|t| Instant::now() + t);
        let mut current = self.url.clone();
        let mut requests = 0u32;
        let mut followed = 0u8;
        // Bounded: each turn follows one redirect, at most max_redirects.
        loop {
            requests += 1;
            let mut rb = self
                .client
                .client
                .request(self.method.clone(), current.as_str());
            for (k, v) in &self.headers {
                rb = rb.header(k.clone(), v.clone());
            }
            if let Some(body) = &self.body {
                rb = rb
                    .header(reqwest::header::CONTENT_TYPE, self.content_type)
                    .body(body.clone());
            }
            if let Some((user, password)) = &self.basic_auth {
                rb = rb.basic_auth(user, Some(password));
            }
            if let Some(n) = self.range_from {
                rb = rb.header(RANGE, format!("bytes={n}-"));
            }
            let (wait, total_bound) = next_wait(deadline, profile.idle_timeout);
            let resp = match tokio::time::timeout(wait, rb.send()).await {
                Err(_) => return Err(waited_too_long(&current, profile, total_bound)),
                Ok(Err(e)) => return Err(classify(&current, e, profile.connect_timeout)),
                Ok(Ok(r)) => r,
            };
            let status = resp.status();
            if profile.max_redirects == 0
                || self.body.is_some()
                || !status.is_redirection()
                || status == reqwest::StatusCode::NOT_MODIFIED
            {
                return Ok(HttpResponse {
                    inner: resp,
                    url: current,
                    requests,
                    deadline,
                    idle: profile.idle_timeout,
                    total: profile.total_timeout,
                });
            }
            if followed >= profile.max_redirects {
                return Err(HttpError::TooManyRedirects {
                    url: self.url.to_string(),
                    max: profile.max_redirects,
                });
            }
            followed += 1;
            current = redirect_target(&current, status.as_u16(), resp.headers().get(LOCATION))?;
        }
    }
}

/// How long the next wait may last, and whether the total bound (rather
/// than the idle one) is what limits it.
fn next_wait(deadline: Option<Instant>, idle: Duration) -> (Duration, bool) {
    match deadline {
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            if left <= idle {
                (left, true)
            } else {
                (idle, false)
            }
        }
        None => (idle, false),
    }
}

fn waited_too_long(url: &HttpUrl, p: &HttpProfile, total_bound: bool) -> HttpError {
    match (total_bound, p.total_timeout) {
        (true, Some(after)) => HttpError::Timeout {
            url: url.to_string(),
            after,
        },
        _ => HttpError::Idle {
            url: url.to_string(),
            after: p.idle_timeout,
        },
    }
}

/// Where a redirect from `base` leads: `Location` resolved against `base`
/// (absolute, absolute-path or relative), validated, same scheme only.
pub fn redirect_target(
    base: &HttpUrl,
    status: u16,
    location: Option<&HeaderValue>,
) -> Result<HttpUrl, HttpError> {
    let bad = |reason: String| HttpError::BadRedirect {
        url: base.to_string(),
        status,
        reason,
    };
    let location = location
        .ok_or_else(|| bad("no Location header".into()))?
        .to_str()
        .map_err(|_| bad("Location is not visible ASCII".into()))?;
    let base_url = reqwest::Url::parse(base.as_str()).map_err(|e| bad(e.to_string()))?;
    let next = base_url
        .join(location)
        .map_err(|e| bad(format!("{location:?}: {e}")))?;
    if next.scheme() != base_url.scheme() {
        return Err(HttpError::SchemeChange {
            url: base.to_string(),
            to: next.to_string(),
        });
    }
    next.as_str()
        .parse::<HttpUrl>()
        .map_err(|e| bad(e.to_string()))
}

/// An answer whose body has not been read yet.
#[derive(Debug)]
pub struct HttpResponse {
    inner: reqwest::Response,
    url: HttpUrl,
    requests: u32,
    deadline: Option<Instant>,
    idle: Duration,
    total: Option<Duration>,
}

impl HttpResponse {
    pub fn status(&self) -> u16 {
        self.inner.status().as_u16()
    }

    /// The URL that gave this answer (after redirects).
    pub fn url(&self) -> &HttpUrl {
        &self.url
    }

    /// Requests made for it (1 + redirects followed).
    pub fn requests(&self) -> u32 {
        self.requests
    }

    /// A header's value, when it is visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.inner.headers().get(name).and_then(|v| v.to_str().ok())
    }

    /// The body length the server announced.
    pub fn content_length(&self) -> Option<u64> {
        self.inner.content_length()
    }

    /// The next piece of the body; `None` at its end. Each wait is bounded
    /// by the idle timeout and by what is left of the total.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, HttpError> {
        let (wait, total_bound) = next_wait(self.deadline, self.idle);
        match tokio::time::timeout(wait, self.inner.chunk()).await {
            Err(_) => Err(match (total_bound, self.total) {
                (true, Some(after)) => HttpError::Timeout {
                    url: self.url.to_string(),
                    after,
                },
                _ => HttpError::Idle {
                    url: self.url.to_string(),
                    after: self.idle,
                },
            }),
            Ok(Err(e)) => Err(HttpError::Transport {
                url: self.url.to_string(),
                source: e,
            }),
            Ok(Ok(c)) => Ok(c),
        }
    }

    /// The whole body, refused as soon as it is known to exceed `max`
    /// bytes (announced length, or bytes received).
    pub async fn bytes_capped(mut self, max: u64) -> Result<Vec<u8>, HttpError> {
        let too_large = |url: &HttpUrl| HttpError::TooLarge {
            url: url.to_string(),
            limit: max,
        };
        let announced = self.content_length();
        if announced.is_some_and(|n| n > max) {
            return Err(too_large(&self.url));
        }
        let cap = usize::try_from(max).unwrap_or(usize::MAX);
        let first = announced.map_or(8192, |n| usize::try_from(n).unwrap_or(cap));
        let mut out = Vec::with_capacity(first.min(cap).min(1 << 20));
        // Bounded: every turn adds bytes, and more than `max` ends it.
        while let Some(c) = self.chunk().await? {
            if (out.len() + c.len()) as u64 > max {
                return Err(too_large(&self.url));
            }
            out.extend_from_slice(&c);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(s: &'static str) -> HeaderValue {
        HeaderValue::from_static(s)
    }

    #[test]
    fn redirects_resolve_same_scheme_only() {
        let base: HttpUrl = "http://10.0.0.1:8080/a/b".parse().unwrap();
        let t = |l| redirect_target(&base, 302, Some(&loc(l)));
        assert_eq!(t("/c/d").unwrap().as_str(), "http://10.0.0.1:8080/c/d");
        assert_eq!(t("c").unwrap().as_str(), "http://10.0.0.1:8080/a/c");
        assert_eq!(
            t("http://m.example/x").unwrap().as_str(),
            "http://m.example/x"
        );
        assert!(matches!(
            t("https://m.example/x"),
            Err(HttpError::SchemeChange { .. })
        ));
        assert!(matches!(
            redirect_target(&base, 301, None),
            Err(HttpError::BadRedirect { status: 301, .. })
        ));
        let tls: HttpUrl = "https://m.example/a".parse().unwrap();
        let down = redirect_target(&tls, 302, Some(&loc("http://m.example/a")));
        assert!(
            matches!(down, Err(HttpError::SchemeChange { .. })),
            "{down:?}"
        );
    }

    #[test]
    fn site_ca_must_hold_certificates_only() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ca.pem");
        std::fs::write(&p, "hello").unwrap();
        let e = HttpClient::new(HttpProfile::download(
            Duration::from_secs(1),
            Duration::from_secs(1),
            0,
            Some(p.clone()),
        ))
        .unwrap_err();
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
        std::fs::write(&p, "-----BEGIN PRIVATE KEY-----\n").unwrap();
        let e = read_site_ca(&p).unwrap_err();
        assert!(e.to_string().contains("private key"), "{e}");
        let e = read_site_ca(&d.path().join("missing.pem")).unwrap_err();
        assert!(e.to_string().contains("missing.pem"), "{e}");
    }

    #[test]
    fn a_client_builds_with_the_built_in_roots() {
        HttpClient::new(HttpProfile::scanner(
            Duration::from_millis(500),
            Duration::from_secs(3),
        ))
        .unwrap();
    }
}
