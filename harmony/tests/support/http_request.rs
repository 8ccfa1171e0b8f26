//! One HTTP/1.1 request read off a socket by the tests' local API servers
//! (the OPNsense, AOS-CX and Kubernetes contract tests): the request line,
//! the headers (names lower-cased) and a `Content-Length` body. Heads over
//! 64 KiB and closed connections give `None`.
#![allow(dead_code)]

use tokio::io::{AsyncRead, AsyncReadExt};

/// What the client sent.
pub struct TestRequest {
    pub method: String,
    /// The request target as sent (path and query).
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl TestRequest {
    /// The target without its query.
    pub fn path(&self) -> String {
        self.target
            .split('?')
            .next()
            .unwrap_or_default()
            .to_string()
    }

    /// A header's value (`name` lower-case).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

/// Reads one request from `sock`.
pub async fn read_request<S: AsyncRead + Unpin>(sock: &mut S) -> Option<TestRequest> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut rl = lines.next().unwrap_or_default().split(' ');
    let method = rl.next().unwrap_or_default().to_string();
    let target = rl.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut req = TestRequest {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    let len: usize = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    req.body = buf[head_end..head_end + len].to_vec();
    Some(req)
}
