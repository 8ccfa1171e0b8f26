//! A bounded HTTP/1.1 request reader and response writer for the
//! simulation's two listeners: one request per connection (`Connection:
//! close`), the head within a deadline and a size limit, a
//! `Content-Length` body within its own deadline and limit (no chunked
//! bodies), so a slow or hostile client costs at most a bounded wait.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, timeout_at};

/// What the client sent.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// The path, without its query.
    pub path: String,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// Why no request was read.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// Closed, reset or too slow: nothing is answered.
    Gone,
    /// Answered with this status and message.
    Refused(u16, String),
}

/// The limits of one request.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    pub head_bytes: usize,
    pub body_bytes: usize,
    pub head_deadline: Instant,
    pub body_time: Duration,
}

/// Reads one request within `limits`.
pub async fn read_request<S: AsyncRead + Unpin>(
    sock: &mut S,
    limits: ReadLimits,
) -> Result<Request, ReadError> {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > limits.head_bytes {
            return Err(ReadError::Refused(
                431,
                format!("request head over {} bytes", limits.head_bytes),
            ));
        }
        match timeout_at(limits.head_deadline, sock.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return Err(ReadError::Gone),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let bad = |m: &str| ReadError::Refused(400, m.to_string());
    let head = std::str::from_utf8(&buf[..head_end])
        .map_err(|_| bad("request head is not UTF-8"))?
        .to_string();
    let mut lines = head.split("\r\n");
    let mut rl = lines.next().unwrap_or_default().split(' ');
    let (method, target, version) = (
        rl.next().unwrap_or_default(),
        rl.next().unwrap_or_default(),
        rl.next().unwrap_or_default(),
    );
    if method.is_empty() || !target.starts_with('/') || !version.starts_with("HTTP/1.") {
        return Err(bad("malformed request line"));
    }
    let mut content_length: Option<usize> = None;
    let mut content_type = None;
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((k, v)) = line.split_once(':') else {
            return Err(bad("malformed header line"));
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        match k.as_str() {
            "content-length" => {
                let n = v.parse().map_err(|_| bad("bad Content-Length"))?;
                if content_length.replace(n).is_some() {
                    return Err(bad("Content-Length given twice"));
                }
            }
            "transfer-encoding" => {
                return Err(ReadError::Refused(
                    411,
                    "chunked bodies are not taken; send Content-Length".into(),
                ));
            }
            "content-type" => {
                content_type = Some(v.split(';').next().unwrap_or_default().trim().to_string());
            }
            _ => {}
        }
    }
    let len = content_length.unwrap_or(0);
    if len > limits.body_bytes {
        return Err(ReadError::Refused(
            413,
            format!(
                "body of {len} bytes over the limit of {}",
                limits.body_bytes
            ),
        ));
    }
    let body_deadline = Instant::now() + limits.body_time;
    while buf.len() < head_end + len {
        match timeout_at(body_deadline, sock.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return Err(ReadError::Gone),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    if buf.len() > head_end + len {
        return Err(bad(
            "more bytes than Content-Length (one request per connection)",
        ));
    }
    Ok(Request {
        method: method.to_string(),
        path: target.split('?').next().unwrap_or_default().to_string(),
        content_type,
        body: buf[head_end..head_end + len].to_vec(),
    })
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}

/// Writes one response and closes the writing side, within `limit`.
pub async fn respond<S: AsyncWrite + Unpin>(
    sock: &mut S,
    code: u16,
    content_type: &str,
    body: &[u8],
    limit: Duration,
) {
    let head = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reason(code),
        body.len()
    );
    let _ = tokio::time::timeout(limit, async {
        sock.write_all(head.as_bytes()).await?;
        sock.write_all(body).await?;
        sock.shutdown().await
    })
    .await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn limits() -> ReadLimits {
        ReadLimits {
            head_bytes: 256,
            body_bytes: 16,
            head_deadline: Instant::now() + Duration::from_secs(5),
            body_time: Duration::from_secs(5),
        }
    }

    async fn read(bytes: &[u8]) -> Result<Request, ReadError> {
        let mut s = bytes;
        read_request(&mut s, limits()).await
    }

    #[tokio::test]
    async fn requests_are_read_within_their_limits() {
        let r = read(b"POST /v1/report?x=1 HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\nabc")
            .await
            .unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/report"));
        assert_eq!(
            r.content_type.as_deref(),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(r.body, b"abc");
        let code = |r: Result<Request, ReadError>| match r {
            Err(ReadError::Refused(c, _)) => c,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            code(read(b"POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n").await),
            413
        );
        assert_eq!(
            code(read(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").await),
            411
        );
        assert_eq!(code(read(&[b'a'; 300]).await), 431);
        assert_eq!(code(read(b"GARBAGE\r\n\r\n").await), 400);
        assert_eq!(
            read(b"GET / HTTP/1.1\r\n").await.unwrap_err(),
            ReadError::Gone
        );
    }
}
