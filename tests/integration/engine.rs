//! rampart's own HTTP/1.1 engine seen from a client's socket: pipelining,
//! HTTP/1.0 keep-alive, `Host` rules, CONNECT, `Expect: 100-continue`,
//! early answers.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

fn config(backend: std::net::SocketAddr, extra: &str) -> String {
    format!(
        "{extra}[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\
         [[pool]]\nname = \"p\"\n[[pool.server]]\nname = \"be\"\naddress = \"{backend}\"\n[[route]]\npool = \"p\"\n"
    )
}

/// A backend that answers with the path and the length of the body it read.
async fn echo() -> Backend {
    Backend::start(|req| async move {
        use http_body_util::BodyExt;
        let path = req.uri().path().to_string();
        let n = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes().len())
            .unwrap_or(0);
        http::Response::new(full(format!("{path} {n}")))
    })
    .await
}

/// Reads from `s` until `text` has been seen (or 5 s pass, or it closes).
async fn read_until(s: &mut TcpStream, text: &str) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&out).contains(text) {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// True when the peer closes `s` within 5 s (after any bytes it still sends).
async fn closes(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order() {
    let be = echo().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let app = start_app(&config(be.addr, ""), dir.path()).await;
    let mut s = TcpStream::connect(listener(&app, "web")).await.expect("connect");
    s.write_all(
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /c HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await
    .expect("write");
    let text = read_until(&mut s, "/c 0").await;
    let (a, b, c) = (text.find("/a 0"), text.find("/b 3"), text.find("/c 0"));
    assert!(a < b && b < c && a.is_some(), "{text}");
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 3, "{text}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http10_keeps_the_connection_only_when_asked() {
    let be = echo().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let app = start_app(&config(be.addr, ""), dir.path()).await;
    let web = listener(&app, "web");
    let mut s = TcpStream::connect(web).await.expect("connect");
    s.write_all(b"GET /one HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
        .await
        .expect("write");
    let text = read_until(&mut s, "/one 0").await;
    assert!(
        text.to_ascii_lowercase().contains("connection: keep-alive"),
        "{text}"
    );
    s.write_all(b"GET /two HTTP/1.0\r\n\r\n").await.expect("write");
    let text = read_until(&mut s, "/two 0").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.to_ascii_lowercase().contains("connection: close"), "{text}");
    assert!(closes(&mut s).await, "HTTP/1.0 without keep-alive closes");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_rules_and_connect_are_enforced_before_the_pipeline() {
    let be = echo().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let app = start_app(&config(be.addr, ""), dir.path()).await;
    let web = listener(&app, "web");
    let cases: [(&[u8], &str); 5] = [
        (b"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 400"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "HTTP/1.1 400"),
        (
            b"CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n",
            "HTTP/1.1 501",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n",
            "HTTP/1.1 400",
        ),
        // HTTP/1.0 may go without Host.
        (b"GET /ten HTTP/1.0\r\n\r\n", "HTTP/1.1 200"),
    ];
    for (request, want) in cases {
        let got = raw(web, request).await;
        assert!(
            got.starts_with(want),
            "{}: {got}",
            String::from_utf8_lossy(request)
        );
    }
    assert_eq!(be.hits(), 1, "only the valid request reached the backend");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_100_continue_is_answered_before_the_body_is_read() {
    let be = echo().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let app = start_app(&config(be.addr, ""), dir.path()).await;
    let mut s = TcpStream::connect(listener(&app, "web")).await.expect("connect");
    s.write_all(b"PUT /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        .await
        .expect("write");
    let interim = read_until(&mut s, "\r\n\r\n").await;
    assert!(interim.starts_with("HTTP/1.1 100 Continue\r\n"), "{interim}");
    s.write_all(b"hello").await.expect("body");
    let text = read_until(&mut s, "/up 5").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_answer_to_an_unread_body_closes_the_connection() {
    let be = echo().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let app = start_app(&config(be.addr, "[limits]\nmax_body = \"1KiB\"\n"), dir.path()).await;
    let mut s = TcpStream::connect(listener(&app, "web")).await.expect("connect");
    s.write_all(b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nsome of it")
        .await
        .expect("write");
    let text = read_until(&mut s, "\r\n\r\n").await;
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.to_ascii_lowercase().contains("connection: close"), "{text}");
    assert!(closes(&mut s).await, "the unread body is not taken for a request");
    assert_eq!(be.hits(), 0);
    app.shutdown().await;
}
