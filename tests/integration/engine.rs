//! rampart's own HTTP/1.1 engine seen from a client's socket: pipelining
//! (plain and over TLS), HTTP/1.0 keep-alive, `Host` rules, absolute-form
//! targets, CONNECT, HEAD, `Expect: 100-continue`, early answers, a
//! backend connection left mid-body never pooled, and 103 Early Hints.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

fn config(backend: std::net::SocketAddr, extra: &str) -> String {
    format!(
        "[runtime]\nstate_dir = \"state\"\n{extra}[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\
         [[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:0\"\nprotocol = \"https\"\n\
         [[pool]]\nname = \"p\"\n[[pool.server]]\nname = \"be\"\naddress = \"{backend}\"\n[[route]]\npool = \"p\"\n"
    )
}

/// Reads from `s` until `text` has been seen (or 5 s pass, or it closes).
async fn read_until<S: AsyncRead + Unpin>(s: &mut S, text: &str) -> String {
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
    let be = Backend::echo_length().await;
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
    let be = Backend::echo_length().await;
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
    let be = Backend::echo_length().await;
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
    let be = Backend::echo_length().await;
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
    let be = Backend::echo_length().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_answer_to_a_body_already_received_keeps_the_connection() {
    // The whole body came with the head: rampart skips it and the next
    // request on the connection is served.
    let be = Backend::echo_length().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let app = start_app(&config(be.addr, "[limits]\nmax_body = \"1KiB\"\n"), dir.path()).await;
    let mut s = TcpStream::connect(listener(&app, "web")).await.expect("connect");
    let mut req = b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n".to_vec();
    req.extend_from_slice(&[b'a'; 2000]);
    req.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
    s.write_all(&req).await.expect("write");
    let text = read_until(&mut s, "/next 0").await;
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(!text.to_ascii_lowercase().contains("connection: close"), "{text}");
    assert!(
        text.ends_with("/next 0"),
        "the body was taken for a request: {text}"
    );
    assert_eq!(be.hits(), 1, "only GET /next reached the backend");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_over_tls_do_not_wait_for_the_socket() {
    // Both requests arrive in one TLS write: once the first is answered,
    // the second is already decrypted inside rustls and the socket has
    // nothing more to read. Waiting for the socket would stall here.
    let be = Backend::echo_length().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let app = start_app(&config(be.addr, ""), dir.path()).await;
    let ca = dir.path().join("state/tls/ca.pem");
    let mut s = tls_connect(listener(&app, "tls"), "localhost", &ca, &[b"http/1.1"]).await;
    s.write_all(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    s.flush().await.expect("flush");
    let text = read_until(&mut s, "/second 0").await;
    assert!(text.contains("/first 0") && text.contains("/second 0"), "{text}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_answers_have_no_body_and_absolute_targets_are_routed() {
    let be = Backend::echo_length().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let app = start_app(&config(be.addr, ""), dir.path()).await;
    let mut s = TcpStream::connect(listener(&app, "web")).await.expect("connect");
    // HEAD: the length of the body a GET would get, and no body; the next
    // answer on the connection starts right after the head.
    s.write_all(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET http://x/abs HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let text = read_until(&mut s, "/abs 0").await;
    let (head, rest) = text.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200"), "{text}");
    assert!(head.to_ascii_lowercase().contains("content-length: 4"), "{head}");
    assert!(rest.starts_with("HTTP/1.1 200"), "HEAD sent a body: {rest}");
    assert!(rest.ends_with("/abs 0"), "{rest}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_connection_left_mid_body_is_closed_not_pooled() {
    // A backend that sends part of a long body, then waits; it counts its
    // connections and reports when one is closed by rampart.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let (closed_tx, mut closed_rx) = tokio::sync::mpsc::unbounded_channel();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let closed = closed_tx.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n")
                    .await;
                let _ = s.write_all(&[b'x'; 65536]).await;
                // Nothing more is sent; a read ends when rampart closes.
                while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
                let _ = closed.send(());
            });
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let app = start_app(&config(addr, ""), dir.path()).await;
    let web = listener(&app, "web");
    let mut c = TcpStream::connect(web).await.expect("connect");
    c.write_all(b"GET /long HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let text = read_until(&mut c, "xxxx").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    drop(c);
    tokio::time::timeout(Duration::from_secs(5), closed_rx.recv())
        .await
        .expect("the backend connection was closed")
        .expect("closed");
    // The next request cannot have found it in the pool.
    let mut c = TcpStream::connect(web).await.expect("connect");
    c.write_all(b"GET /again HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let text = read_until(&mut c, "xxxx").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    // This client goes too: its answer in flight ends, and so does the drain.
    drop(c);
    tokio::time::timeout(Duration::from_secs(5), closed_rx.recv())
        .await
        .expect("the second backend connection was closed")
        .expect("closed");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_hints_reach_http11_clients_before_the_answer() {
    // A backend that answers every request with a 103, then the answer.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let backend = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else { return };
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    while let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                        got.drain(..end + 4);
                        let answer = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\
                                       Connection: keep-alive\r\n\r\n\
                                       HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if s.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
            });
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let app = start_app(&config(addr, ""), dir.path()).await;
    let web = listener(&app, "web");
    let mut s = TcpStream::connect(web).await.expect("connect");
    s.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let text = read_until(&mut s, "\r\n\r\nok").await;
    let (hints, answer) = text.split_once("\r\n\r\n").expect("two heads");
    assert!(hints.starts_with("HTTP/1.1 103 Early Hints\r\n"), "{text}");
    assert!(hints.contains("link: </s.css>; rel=preload"), "{text}");
    assert!(!hints.to_ascii_lowercase().contains("connection:"), "{text}");
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    // The connection goes on: a second request gets both again.
    s.write_all(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let again = read_until(&mut s, "\r\n\r\nok").await;
    assert!(again.starts_with("HTTP/1.1 103 "), "{again}");
    // HTTP/1.0 clients get no 1xx.
    let mut old = TcpStream::connect(web).await.expect("connect");
    old.write_all(b"GET /c HTTP/1.0\r\n\r\n").await.expect("write");
    let text = read_until(&mut old, "\r\n\r\nok").await;
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    app.shutdown().await;
    backend.abort();
}
