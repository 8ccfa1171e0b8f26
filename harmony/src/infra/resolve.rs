//! Resolving a host name to a socket address with a time limit: the one
//! place outside a backend's own client that asks the system resolver
//! (used by `site::switches` to reach a switch given by name, on its first
//! call, not while the site is built).

use std::net::SocketAddr;
use std::time::Duration;

/// A name that did not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("resolving {name} took longer than {within:?}")]
    TimedOut { name: String, within: Duration },
    #[error("cannot resolve {name}: {message}")]
    Failed { name: String, message: String },
    #[error("{name} resolves to no address")]
    NoAddress { name: String },
}

/// The first address `name` resolves to, with `port`, within `within`.
pub async fn first_address(
    name: &str,
    port: u16,
    within: Duration,
) -> Result<SocketAddr, ResolveError> {
    let lookup = tokio::net::lookup_host((name.to_string(), port));
    match tokio::time::timeout(within, lookup).await {
        Err(_) => Err(ResolveError::TimedOut {
            name: name.to_string(),
            within,
        }),
        Ok(Err(e)) => Err(ResolveError::Failed {
            name: name.to_string(),
            message: e.to_string(),
        }),
        Ok(Ok(mut addrs)) => addrs.next().ok_or_else(|| ResolveError::NoAddress {
            name: name.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn localhost_resolves_with_the_port() {
        // From /etc/hosts: no DNS server is asked.
        let a = first_address("localhost", 22, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(a.ip().is_loopback() && a.port() == 22, "{a}");
    }
}
