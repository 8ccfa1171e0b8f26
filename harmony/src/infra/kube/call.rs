//! One API call: its endpoint (method and URL, for messages), its time
//! limit, and the mapping of `kube` errors to [`ClusterApiError`] with the
//! API server's `Status.message`.

use std::error::Error as _;
use std::future::Future;
use std::time::Duration;

use crate::domain::ClusterApiError;
use crate::domain::text::safe_text;

/// How much of the API server's text an error keeps.
const MESSAGE_CHARS: usize = 300;

/// A call's method and URL, e.g. `GET https://api.lab:6443/api/v1/...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint(String);

impl Endpoint {
    pub(crate) fn new(method: &str, server: &str, path: &str) -> Self {
        Self(format!("{method} {}{path}", server.trim_end_matches('/')))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn invalid(&self, message: impl Into<String>) -> ClusterApiError {
        ClusterApiError::Invalid {
            endpoint: self.0.clone(),
            message: message.into(),
        }
    }
}

/// Runs `call` within `limit`; maps its error.
pub(crate) async fn within<T>(
    endpoint: &Endpoint,
    limit: Duration,
    call: impl Future<Output = Result<T, ::kube::Error>>,
) -> Result<T, ClusterApiError> {
    tracing::debug!(endpoint = endpoint.as_str(), "cluster api call");
    match tokio::time::timeout(limit, call).await {
        Err(_) => Err(ClusterApiError::Timeout {
            endpoint: endpoint.0.clone(),
            after: limit,
        }),
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(map_error(endpoint, e)),
    }
}

/// Runs `call` within `limit`, as [`within`], but says `None` when nothing
/// answered: no answer in time, the connection refused, reset or closed
/// before an answer (a TLS verdict is an answer: a certificate the
/// kubeconfig's CA does not sign is an error), or the API server busy or
/// starting (429, 5xx: e.g. a load balancer's backend not up yet).
pub(crate) async fn within_reach<T>(
    endpoint: &Endpoint,
    limit: Duration,
    call: impl Future<Output = Result<T, ::kube::Error>>,
) -> Result<Option<T>, ClusterApiError> {
    tracing::debug!(endpoint = endpoint.as_str(), "cluster api call");
    match tokio::time::timeout(limit, call).await {
        Err(_) => {
            tracing::debug!(endpoint = endpoint.as_str(), ?limit, "no answer in time");
            Ok(None)
        }
        Ok(Ok(v)) => Ok(Some(v)),
        Ok(Err(e)) if no_answer(&e) => {
            tracing::debug!(
                endpoint = endpoint.as_str(),
                "no answer: {}",
                safe_text(&chain(&e), MESSAGE_CHARS)
            );
            Ok(None)
        }
        Ok(Err(e)) => match map_error(endpoint, e) {
            ClusterApiError::Api { code, message, .. } if code == 429 || code >= 500 => {
                tracing::debug!(endpoint = endpoint.as_str(), code, "not ready: {message}");
                Ok(None)
            }
            other => Err(other),
        },
    }
}

/// Whether `e` is a connection that got no answer at all: a transport
/// error (hyper, the connector) with no TLS error anywhere in its chain.
fn no_answer(e: &::kube::Error) -> bool {
    if !matches!(e, ::kube::Error::HyperError(_) | ::kube::Error::Service(_)) {
        return false;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    for _ in 0..16 {
        let Some(s) = source else {
            break;
        };
        if s.downcast_ref::<rustls::Error>().is_some() {
            return false;
        }
        // `io::Error::source` skips the error it wraps: go inside instead.
        source = match s.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => s.source(),
        };
    }
    true
}

/// Whether `e` is the API server's 409 Conflict.
pub(crate) fn is_conflict(e: &ClusterApiError) -> bool {
    matches!(e, ClusterApiError::Api { code: 409, .. })
}

fn map_error(endpoint: &Endpoint, e: ::kube::Error) -> ClusterApiError {
    match e {
        ::kube::Error::Api(status) => ClusterApiError::Api {
            endpoint: endpoint.0.clone(),
            code: status.code,
            reason: safe_text(&status.reason, 64),
            message: safe_text(&status.message, MESSAGE_CHARS),
        },
        ::kube::Error::SerdeError(e) => endpoint.invalid(safe_text(&e.to_string(), MESSAGE_CHARS)),
        other => ClusterApiError::Transport {
            endpoint: endpoint.0.clone(),
            message: safe_text(&chain(&other), MESSAGE_CHARS),
        },
    }
}

/// An error and its sources, e.g. `ServiceError: client error (Connect):
/// invalid peer certificate: UnknownIssuer`.
fn chain(e: &::kube::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    let mut n = 0;
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
        n += 1;
        if n > 8 {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_name_method_and_url() {
        let e = Endpoint::new("GET", "https://api.lab:6443/", "/api/v1/x");
        assert_eq!(e.as_str(), "GET https://api.lab:6443/api/v1/x");
    }

    #[tokio::test]
    async fn a_status_becomes_an_api_error_with_its_message() {
        let e = Endpoint::new("GET", "https://h:1", "/p");
        let status = ::kube::core::Status::failure("nope\u{1b}[2J", "Forbidden").with_code(403);
        let err = within(&e, Duration::from_secs(5), async {
            Err::<(), _>(::kube::Error::Api(status.boxed()))
        })
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "GET https://h:1/p: the API server answered 403 Forbidden: nope__2J"
        );
        let err = within(
            &e,
            Duration::from_millis(10),
            std::future::pending::<Result<(), _>>(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ClusterApiError::Timeout { .. }), "{err}");
    }
}
