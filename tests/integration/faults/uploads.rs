//! Uploads are the client's business: one broken off or stalled is never
//! a failure of the server, and a long upload is not a slow server.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, StreamBody};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{in_rotation, servers};
use crate::support::*;

/// Sends a POST head declaring `declared` bytes and `sent` bytes of its
/// body, waits until `backend` has seen the request, then closes.
async fn truncated_post(addr: SocketAddr, backend_hits: impl Fn() -> usize, declared: usize, sent: usize) {
    let before = backend_hits();
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let head = format!("POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: {declared}\r\n\r\n");
    s.write_all(head.as_bytes()).await.expect("head");
    s.write_all(&vec![b'x'; sent]).await.expect("part of the body");
    wait_until(Duration::from_secs(5), || async { backend_hits() > before })
        .await
        .expect("the request reached a backend");
    drop(s);
}

/// Ten clients that close mid-upload: every server stays up and in the
/// pool (with the default passive checks, five such failures in a row
/// ejected a server), and each abort is counted and logged as one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_uploads_are_client_aborts_and_no_server_is_ejected() {
    let (a, b) = (Backend::echo_length().await, Backend::echo_length().await);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("access.log");
    let toml = format!(
        "[access_log]\nenabled = true\nformat = \"json\"\npath = \"{}\"\n\
         [[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\
         [[pool]]\nname = \"p\"\n{}[[route]]\npool = \"p\"\n",
        log.display(),
        servers(&[("a", a.addr), ("b", b.addr)])
    );
    let app = start_app(&toml, dir.path()).await;
    let (web, admin_addr) = (listener(&app, "web"), app.admin().expect("admin"));
    for _ in 0..10 {
        truncated_post(web, || a.hits() + b.hits(), 100_000, 1_000).await;
    }
    let counted = wait_until(Duration::from_secs(5), || async {
        metric(
            &metrics(admin_addr).await,
            "rampart_client_aborted_requests_total{listener=\"web\"}",
        ) == Some(10.0)
    })
    .await;
    assert!(counted.is_some(), "{}", metrics(admin_addr).await);
    for s in ["a", "b"] {
        assert!(
            in_rotation(admin_addr, "p", s).await,
            "{s}: {:?}",
            server_info(admin_addr, "p", s).await
        );
    }
    let text = metrics(admin_addr).await;
    assert_eq!(
        metric(&text, "rampart_pool_ejections_total{pool=\"p\"}"),
        Some(0.0)
    );
    // Both still serve.
    let mut c = h1(web).await;
    for _ in 0..2 {
        let (status, _, _) = read(c.go(get("/", "x")).await.expect("response")).await;
        assert_eq!(status, 200);
    }
    // The access log says what happened.
    let logged = wait_until(Duration::from_secs(5), || async {
        std::fs::read_to_string(&log).is_ok_and(|t| t.lines().count() >= 12)
    })
    .await;
    assert!(logged.is_some());
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .expect("log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let aborted: Vec<_> = lines.iter().filter(|l| l["status"] == 499).collect();
    assert_eq!(aborted.len(), 10, "{lines:?}");
    assert!(aborted
        .iter()
        .all(|l| l["error"] == "client_aborted" && l["method"] == "POST"));
    app.shutdown().await;
}

/// A body of `pieces` pieces of `size` bytes, one every `every`.
fn paced(pieces: usize, size: usize, every: Duration) -> TestBody {
    let piece = Bytes::from(vec![b'u'; size]);
    let stream = futures_util::stream::unfold(0, move |i| {
        let piece = piece.clone();
        async move {
            if i == pieces {
                return None;
            }
            tokio::time::sleep(every).await;
            Some((Ok(http_body::Frame::data(piece)), i + 1))
        }
    });
    StreamBody::new(stream).boxed()
}

/// A 40-second upload at a steady pace, through a default configuration
/// (`timeouts.response_header` is 30 s): the response comes, over
/// HTTP/1.1 and HTTP/2 from the client, and to an HTTP/1.1 and an h2c
/// backend. The response timeout counts from the end of the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forty_second_upload_at_a_steady_pace_succeeds() {
    let h1_backend = Backend::echo_length().await;
    let h2_backend = Backend::start_h2c(|req| async move {
        let n = body_len(req).await;
        http::Response::new(full(format!("h2c {n}")))
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "[runtime]\nstate_dir = \"state\"\n\
         [[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\
         [[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:0\"\nprotocol = \"https\"\n\
         [[pool]]\nname = \"p\"\n[[pool.server]]\naddress = \"{}\"\n\
         [[pool]]\nname = \"h2\"\nprotocol = \"h2c\"\n[[pool.server]]\naddress = \"{}\"\n\
         [[route]]\npath = \"/h2c\"\npool = \"h2\"\n[[route]]\npool = \"p\"\n",
        h1_backend.addr, h2_backend.addr
    );
    let app = start_app(&toml, dir.path()).await;
    let (web, tls) = (listener(&app, "web"), listener(&app, "tls"));
    let ca = dir.path().join("state/tls/ca.pem");
    // 40 pieces of 4 KiB, one a second: well above the default minimum
    // rate, and 40 s long.
    const PIECES: usize = 40;
    const SIZE: usize = 4096;
    let upload = |path: &'static str| {
        Request::post(path)
            .header("host", "localhost")
            .body(paced(PIECES, SIZE, Duration::from_secs(1)))
            .expect("request")
    };
    let started = Instant::now();
    let over_h1 = async {
        let mut c = h1(web).await;
        read(c.go(upload("/upload")).await.expect("response")).await
    };
    let over_h2 = async {
        let mut c = h2_over(tls_connect(tls, "localhost", &ca, &[b"h2"]).await).await;
        read(c.go(upload("/upload")).await.expect("response")).await
    };
    let to_h2c = async {
        let mut c = h1(web).await;
        read(c.go(upload("/h2c")).await.expect("response")).await
    };
    let (r1, r2, r3) = tokio::join!(over_h1, over_h2, to_h2c);
    assert!(
        started.elapsed() >= Duration::from_secs(40),
        "{:?}",
        started.elapsed()
    );
    let total = PIECES * SIZE;
    assert_eq!((r1.0, r1.2.as_str()), (200, format!("/upload {total}").as_str()));
    assert_eq!((r2.0, r2.2.as_str()), (200, format!("/upload {total}").as_str()));
    assert_eq!((r3.0, r3.2.as_str()), (200, format!("h2c {total}").as_str()));
    app.shutdown().await;
}

/// An upload that stops for longer than `timeouts.request_body_idle`:
/// 408 (not 504), and the server is not blamed, even with passive checks
/// that eject on one failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_gets_408_and_no_server_is_blamed() {
    let be = Backend::echo_length().await;
    let h2be = Backend::start_h2c(|req| async move {
        let n = body_len(req).await;
        http::Response::new(full(format!("h2c {n}")))
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "[timeouts]\nrequest_body_idle = \"1s\"\n\
         [[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\
         [[pool]]\nname = \"p\"\n[pool.outlier]\nconsecutive_failures = 1\n{}\
         [[pool]]\nname = \"h2\"\nprotocol = \"h2c\"\n[pool.outlier]\nconsecutive_failures = 1\n{}\
         [[route]]\npath = \"/h2c\"\npool = \"h2\"\n[[route]]\npool = \"p\"\n",
        servers(&[("a", be.addr)]),
        servers(&[("b", h2be.addr)]),
    );
    let app = start_app(&toml, dir.path()).await;
    let (web, admin_addr) = (listener(&app, "web"), app.admin().expect("admin"));
    for (path, pool, server) in [("/upload", "p", "a"), ("/h2c", "h2", "b")] {
        let mut s = TcpStream::connect(web).await.expect("connect");
        let head = format!("POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: 10000\r\n\r\n");
        s.write_all(head.as_bytes()).await.expect("head");
        s.write_all(&[b'x'; 500]).await.expect("some of the body");
        let t = Instant::now();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "no answer within 10 s");
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 408 "), "{path}: {text}");
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(5),
            "{path}: answered after {took:?}"
        );
        assert!(
            in_rotation(admin_addr, pool, server).await,
            "{server}: {:?}",
            server_info(admin_addr, pool, server).await
        );
    }
    // Both still serve.
    let mut c = h1(web).await;
    for path in ["/upload", "/h2c"] {
        let (status, _, _) = read(c.go(get(path, "x")).await.expect("response")).await;
        assert_eq!(status, 200, "{path}");
    }
    let text = metrics(admin_addr).await;
    assert_eq!(
        metric(&text, "rampart_pool_ejections_total{pool=\"p\"}"),
        Some(0.0)
    );
    assert_eq!(
        metric(&text, "rampart_pool_ejections_total{pool=\"h2\"}"),
        Some(0.0)
    );
    app.shutdown().await;
}
