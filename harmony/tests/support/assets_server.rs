//! A small HTTP/1.1 file server on 127.0.0.1 for the asset tests
//! (included with `#[path]`): serves in-memory files, honours
//! `Range: bytes=N-`, logs every request, and misbehaves on demand. Plain
//! HTTP, or https with a rustls server configuration the test made.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// How one path is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    Normal,
    /// Send the headers and `n` body bytes, then close; once, then Normal.
    DropAfterOnce(usize),
    /// Every byte inverted (same length).
    WrongBytes,
    /// Answer `200` with the whole file even to a Range request.
    IgnoreRange,
    /// `302` to another path on this server.
    RedirectTo(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub path: String,
    pub range: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    files: HashMap<String, Vec<u8>>,
    behaviour: HashMap<String, Behaviour>,
    log: Vec<Logged>,
}

#[derive(Debug, Clone)]
pub struct TestServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    scheme: &'static str,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(None).await
    }

    /// An https server presenting the certificate of `tls`.
    pub async fn start_tls(tls: Arc<rustls::ServerConfig>) -> TestServer {
        Self::start_with(Some(tokio_rustls::TlsAcceptor::from(tls))).await
    }

    async fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let scheme = if tls.is_some() { "https" } else { "http" };
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let st = st.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let _ = sock.set_nodelay(true);
                    let _ = tokio::time::timeout(Duration::from_secs(20), async move {
                        match tls {
                            None => handle(sock, st).await,
                            // A client that refuses our certificate ends here.
                            Some(acceptor) => {
                                if let Ok(s) = acceptor.accept(sock).await {
                                    handle(s, st).await;
                                }
                            }
                        }
                    })
                    .await;
                });
            }
        });
        TestServer {
            addr,
            state,
            scheme,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!(
            "{}://{}/{}",
            self.scheme,
            self.addr,
            path.trim_start_matches('/')
        )
    }

    pub fn put(&self, path: &str, body: Vec<u8>) {
        self.state
            .lock()
            .unwrap()
            .files
            .insert(format!("/{}", path.trim_start_matches('/')), body);
    }

    pub fn behave(&self, path: &str, b: Behaviour) {
        self.state
            .lock()
            .unwrap()
            .behaviour
            .insert(format!("/{}", path.trim_start_matches('/')), b);
    }

    pub fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn requests(&self) -> usize {
        self.state.lock().unwrap().log.len()
    }
}

/// Deterministic pseudo-random bytes (xorshift64).
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

async fn handle<S: AsyncRead + AsyncWrite + Unpin>(mut sock: S, st: Arc<Mutex<State>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // Read the request head (bounded by size).
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() > 16 * 1024 {
            return;
        }
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let path = request_line.split(' ').nth(1).unwrap_or("/").to_string();
    let range = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("range"))
        .map(|(_, v)| v.trim().to_string());

    let (file, behaviour) = {
        let mut s = st.lock().unwrap();
        s.log.push(Logged {
            path: path.clone(),
            range: range.clone(),
        });
        let b = s.behaviour.get(&path).cloned().unwrap_or(Behaviour::Normal);
        if let Behaviour::DropAfterOnce(_) = b {
            s.behaviour.insert(path.clone(), Behaviour::Normal);
        }
        (s.files.get(&path).cloned(), b)
    };

    if let Behaviour::RedirectTo(to) = &behaviour {
        let resp = format!(
            "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let _ = sock.write_all(resp.as_bytes()).await;
        return;
    }
    let Some(mut body) = file else {
        let _ = sock
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
        return;
    };
    if behaviour == Behaviour::WrongBytes {
        body.iter_mut().for_each(|b| *b = !*b);
    }
    let len = body.len();
    let start = match (&range, &behaviour) {
        (Some(r), b) if *b != Behaviour::IgnoreRange => r
            .strip_prefix("bytes=")
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse::<usize>().ok()),
        _ => None,
    };
    let (head, payload) = match start {
        Some(n) if n >= len => {
            let h = format!(
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            (h, &body[0..0])
        }
        Some(n) => (
            format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {n}-{}/{len}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                len - 1,
                len - n
            ),
            &body[n..],
        ),
        None => (
            format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"),
            &body[..],
        ),
    };
    if sock.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let payload = match behaviour {
        Behaviour::DropAfterOnce(n) => &payload[..n.min(payload.len())],
        _ => payload,
    };
    let _ = sock.write_all(payload).await;
    let _ = sock.flush().await;
    let _ = sock.shutdown().await;
}
