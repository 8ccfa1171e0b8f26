//! The HTTP client's profiles against tiny raw servers on 127.0.0.1: the
//! scanner profile returns a redirect as it is, the total time limit ends a
//! trickling body, size caps refuse announced and streamed bodies, and a
//! refused connection shows its `io::Error` through the source chain.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use harmony::domain::HttpUrl;
use harmony::infra::http_client::{HttpClient, HttpError, HttpProfile};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves `answer(request_number)` on every connection: the bytes to
/// write, then `trickle` bytes one every 200 ms (at most 100).
async fn raw_server(
    answer: fn(usize) -> Vec<u8>,
    trickle: usize,
) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let n = c.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") && got.len() < 16384 {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => got.extend_from_slice(&buf[..k]),
                    }
                }
                if s.write_all(&answer(n)).await.is_err() {
                    return;
                }
                for _ in 0..trickle.min(100) {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if s.write_all(b" ").await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, count)
}

fn url(addr: std::net::SocketAddr, path: &str) -> HttpUrl {
    format!("http://{addr}{path}").parse().unwrap()
}

fn scanner() -> HttpClient {
    HttpClient::new(HttpProfile::scanner(
        Duration::from_millis(500),
        Duration::from_secs(1),
    ))
    .unwrap()
}

#[tokio::test]
async fn the_scanner_profile_does_not_follow_redirects() {
    let (addr, count) = raw_server(
        |_| b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n".to_vec(),
        0,
    )
    .await;
    let resp = scanner().get(&url(addr, "/")).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.requests(), 1);
    assert_eq!(resp.url().as_str(), format!("http://{addr}/"));
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_total_time_limit_ends_a_trickling_body() {
    let (addr, _) = raw_server(|_| b"HTTP/1.1 200 OK\r\n\r\n{".to_vec(), 100).await;
    let resp = scanner().get(&url(addr, "/")).send().await.unwrap();
    let err = resp.bytes_capped(1 << 20).await.unwrap_err();
    assert!(
        matches!(err, HttpError::Timeout { after, .. } if after == Duration::from_secs(1)),
        "{err}"
    );
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[tokio::test]
async fn size_caps_refuse_announced_and_streamed_bodies() {
    // Announced: refused from the headers, before any body.
    let (addr, _) = raw_server(
        |_| b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n".to_vec(),
        0,
    )
    .await;
    let resp = scanner().get(&url(addr, "/")).send().await.unwrap();
    let err = resp.bytes_capped(1000).await.unwrap_err();
    assert!(
        matches!(err, HttpError::TooLarge { limit: 1000, .. }),
        "{err}"
    );

    // Not announced: refused once more than the cap has arrived.
    let (addr, _) = raw_server(
        |_| {
            let mut v = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
            v.extend(std::iter::repeat_n(b'x', 64 * 1024));
            v
        },
        0,
    )
    .await;
    let resp = scanner().get(&url(addr, "/")).send().await.unwrap();
    let err = resp.bytes_capped(1000).await.unwrap_err();
    assert!(
        matches!(err, HttpError::TooLarge { limit: 1000, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_refused_connection_shows_its_io_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let u: HttpUrl = format!("http://127.0.0.1:{port}/").parse().unwrap();
    let err = scanner().get(&u).send().await.unwrap_err();
    assert!(matches!(err, HttpError::Connect { .. }), "{err}");
    assert_eq!(
        err.io_cause().map(std::io::Error::kind),
        Some(std::io::ErrorKind::ConnectionRefused),
        "{err}"
    );
    assert!(err.is_transient());
    assert!(err.to_string().contains(&u.to_string()), "{err}");
}

#[tokio::test]
async fn the_download_profile_follows_a_few_redirects_then_stops() {
    let (addr, count) = raw_server(
        |_| b"HTTP/1.1 301 Moved\r\nLocation: again\r\nContent-Length: 0\r\n\r\n".to_vec(),
        0,
    )
    .await;
    let client = HttpClient::new(HttpProfile::download(
        Duration::from_secs(1),
        Duration::from_secs(2),
        2,
        None,
    ))
    .unwrap();
    let err = client.get(&url(addr, "/a/b")).send().await.unwrap_err();
    assert!(
        matches!(err, HttpError::TooManyRedirects { max: 2, .. }),
        "{err}"
    );
    assert_eq!(
        count.load(Ordering::SeqCst),
        3,
        "first request + 2 redirects"
    );
}

#[tokio::test]
async fn the_tcp_check_tells_open_from_refused() {
    use harmony::infra::http_client::{TcpCheck, tcp_check};
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open = l.local_addr().unwrap();
    let t = Duration::from_millis(500);
    assert!(matches!(tcp_check(open, t).await, TcpCheck::Open));
    drop(l);
    assert!(matches!(tcp_check(open, t).await, TcpCheck::Refused));
}
