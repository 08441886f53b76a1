//! RFC 9112's rules as rampart's HTTP/1.1 engine applies them, one table
//! per section, seen from a client's socket: each row is a request as
//! bytes, the status it gets, what the backend saw (method, target, Host,
//! body length) and whether the connection stays open for another request.
//!
//! Where the RFC leaves a choice (MAY, SHOULD) the row says which one
//! rampart makes.

use std::time::Duration;

use http::Response;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// A request, its expected status, what the backend saw (`None` for an
/// answer rampart gave itself) and whether the connection persists.
struct Row {
    why: &'static str,
    request: &'static [u8],
    status: u16,
    backend_saw: Option<&'static str>,
    persists: bool,
}

const fn row(
    why: &'static str,
    request: &'static [u8],
    status: u16,
    backend_saw: Option<&'static str>,
    persists: bool,
) -> Row {
    Row {
        why,
        request,
        status,
        backend_saw,
        persists,
    }
}

/// One answer read off the wire: status, head (lower-cased) and body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// Reads one answer (`Content-Length` or close delimited); None when the
/// connection closed (or stayed silent for 5 s) before a whole head came.
async fn answer(s: &mut TcpStream, pending: &mut Vec<u8>) -> Option<Answer> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
            let status = head.get(9..12)?.parse().ok()?;
            let len = head.lines().find_map(|l| {
                l.strip_prefix("content-length:")
                    .and_then(|v| v.trim().parse::<usize>().ok())
            });
            let want = end + 4 + len.unwrap_or(0);
            while pending.len() < want {
                match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => pending.extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
            let body_end = want.min(pending.len());
            let body = String::from_utf8_lossy(&pending[end + 4..body_end]).into_owned();
            pending.drain(..body_end);
            return Some(Answer { status, head, body });
        }
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => pending.extend_from_slice(&buf[..n]),
            _ => return None,
        }
    }
}

/// Sends each row on a connection of its own and checks what it asks.
async fn check(rows: &[Row]) {
    // The backend says what it received.
    let be = Backend::start(|req| async move {
        let host = req
            .headers()
            .get(http::header::HOST)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_else(|| "-".into());
        let line = format!("{} {} host={host}", req.method(), req.uri());
        let n = body_len(req).await;
        Response::new(full(format!("{line} len={n}")))
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "[runtime]\nstate_dir = \"state\"\n[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\
         [[pool]]\nname = \"p\"\n[[pool.server]]\nname = \"be\"\naddress = \"{}\"\n[[route]]\npool = \"p\"\n",
        be.addr
    );
    let app = start_app(&config, dir.path()).await;
    let web = listener(&app, "web");
    for r in rows {
        let what = format!("{} ({:?})", r.why, String::from_utf8_lossy(r.request));
        let mut s = TcpStream::connect(web).await.expect("connect");
        s.write_all(r.request).await.expect("write");
        let mut pending = Vec::new();
        let a = answer(&mut s, &mut pending).await;
        let a = a.unwrap_or_else(|| panic!("{what}: no answer"));
        assert_eq!(a.status, r.status, "{what}: {}\r\n\r\n{}", a.head, a.body);
        if let Some(saw) = r.backend_saw {
            assert_eq!(a.body, saw, "{what}: what the backend saw");
        }
        if r.persists {
            assert!(!a.head.contains("connection: close"), "{what}: {}", a.head);
            s.write_all(b"GET /next HTTP/1.1\r\nHost: next\r\n\r\n")
                .await
                .expect("write");
            let next = answer(&mut s, &mut pending).await;
            let next = next.unwrap_or_else(|| panic!("{what}: closed, or no answer to the next request"));
            assert_eq!(next.body, "GET /next host=next len=0", "{what}");
        } else {
            assert!(a.head.contains("connection: close"), "{what}: {}", a.head);
            let mut rest = [0u8; 256];
            let closed = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    match s.read(&mut rest).await {
                        Ok(0) | Err(_) => return true,
                        Ok(_) => {}
                    }
                }
            })
            .await;
            assert_eq!(closed, Ok(true), "{what}: the connection stays open");
        }
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn section_2_2_message_parsing() {
    check(&[
        row(
            "CRLF line ends",
            b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n",
            200,
            Some("GET /a host=h len=0"),
            true,
        ),
        row(
            "an empty line before the request line is ignored (SHOULD)",
            b"\r\nGET /a HTTP/1.1\r\nHost: h\r\n\r\n",
            200,
            Some("GET /a host=h len=0"),
            true,
        ),
        row(
            "a bare LF ends lines (MAY); what is forwarded is rewritten field by field",
            b"GET /lf HTTP/1.1\nHost: h\n\n",
            200,
            Some("GET /lf host=h len=0"),
            true,
        ),
        row(
            "whitespace between the start line and the first field is refused",
            b"GET / HTTP/1.1\r\n Host: h\r\n\r\n",
            400,
            None,
            false,
        ),
        row(
            "a bare CR is refused",
            b"GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n",
            400,
            None,
            false,
        ),
        row(
            "a NUL in a field value is refused",
            b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n",
            400,
            None,
            false,
        ),
        row(
            "an unknown version is refused",
            b"GET / HTP/1.1\r\nHost: h\r\n\r\n",
            400,
            None,
            false,
        ),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn section_3_request_line_and_3_2_targets_and_host() {
    check(&[
        row(
            "more than one space between the parts is refused",
            b"GET  /a HTTP/1.1\r\nHost: h\r\n\r\n",
            400,
            None,
            false,
        ),
        row(
            "whitespace inside the target is refused",
            b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n",
            400,
            None,
            false,
        ),
        row(
            "a backslash in the target is refused (by the pipeline's path rules: the framing was sound, so the connection stays)",
            b"GET /a\\b HTTP/1.1\r\nHost: h\r\n\r\n",
            400,
            None,
            true,
        ),
        row(
            "origin-form with a query",
            b"GET /p?q=1 HTTP/1.1\r\nHost: h\r\n\r\n",
            200,
            Some("GET /p?q=1 host=h len=0"),
            true,
        ),
        row(
            "absolute-form: Host is replaced by the target's authority (3.2.2)",
            b"GET http://target.test/abs HTTP/1.1\r\nHost: other\r\n\r\n",
            200,
            Some("GET /abs host=target.test len=0"),
            true,
        ),
        row(
            "absolute-form with user info: Host gets the host and port only",
            b"GET http://user@target.test:8080/abs HTTP/1.1\r\nHost: other\r\n\r\n",
            200,
            Some("GET /abs host=target.test:8080 len=0"),
            true,
        ),
        row(
            "authority-form is for CONNECT only",
            b"GET target.test:80 HTTP/1.1\r\nHost: target.test\r\n\r\n",
            400,
            None,
            false,
        ),
        row(
            "asterisk-form is for OPTIONS only",
            b"GET * HTTP/1.1\r\nHost: h\r\n\r\n",
            400,
            None,
            false,
        ),
        row(
            "CONNECT is not served",
            b"CONNECT target.test:443 HTTP/1.1\r\nHost: target.test:443\r\n\r\n",
            501,
            None,
            false,
        ),
        row(
            "HTTP/1.1 without Host is refused",
            b"GET / HTTP/1.1\r\n\r\n",
            400,
            None,
            false,
        ),
        row(
            "two Host fields are refused",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
            400,
            None,
            false,
        ),
        row(
            "a Host that is not a valid authority is refused",
            b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            400,
            None,
            false,
        ),
        row(
            "a Host with a port that is not a number is refused",
            b"GET / HTTP/1.1\r\nHost: h:x\r\n\r\n",
            400,
            None,
            false,
        ),
        row(
            "HTTP/1.0 may go without Host",
            b"GET /ten HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            200,
            None,
            true,
        ),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn section_5_field_syntax() {
    check(&[
        row(
            "no whitespace after the colon is fine",
            b"GET /f HTTP/1.1\r\nHost:h\r\n\r\n",
            200,
            Some("GET /f host=h len=0"),
            true,
        ),
        row(
            "whitespace around a value is not part of it",
            b"GET /f HTTP/1.1\r\nHost: \t h \t\r\n\r\n",
            200,
            Some("GET /f host=h len=0"),
            true,
        ),
        row(
            "whitespace between a field name and the colon is refused (5.1)",
            b"GET / HTTP/1.1\r\nHost : h\r\n\r\n",
            400,
            None,
            false,
        ),
        row(
            "obs-fold is refused (5.2)",
            b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
            400,
            None,
            false,
        ),
        row(
            "an empty field name is refused",
            b"GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n",
            400,
            None,
            false,
        ),
        row(
            "a field name with a space is refused",
            b"GET / HTTP/1.1\r\nHost: h\r\nX Y: v\r\n\r\n",
            400,
            None,
            false,
        ),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn section_6_message_body() {
    check(&[
        row(
            "no Content-Length and no Transfer-Encoding: no body (6.3)",
            b"POST /b HTTP/1.1\r\nHost: h\r\n\r\n",
            200,
            Some("POST /b host=h len=0"),
            true,
        ),
        row(
            "Content-Length",
            b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
            200,
            Some("POST /b host=h len=3"),
            true,
        ),
        row(
            "the same Content-Length twice is one",
            b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
            200,
            Some("POST /b host=h len=3"),
            true,
        ),
        row(
            "differing Content-Length values are refused",
            b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            400,
            None,
            false,
        ),
        row(
            "a Content-Length that is not only digits is refused",
            b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc",
            400,
            None,
            false,
        ),
        row(
            "chunked",
            b"POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            200,
            Some("POST /b host=h len=3"),
            true,
        ),
        row(
            "Transfer-Encoding with Content-Length is refused, and the connection closed (6.1)",
            b"POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
            400,
            None,
            false,
        ),
        row(
            "a final coding other than chunked is refused (6.3)",
            b"POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            400,
            None,
            false,
        ),
        row(
            "Transfer-Encoding on HTTP/1.0 is refused (6.1)",
            b"POST /b HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
            None,
            false,
        ),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn section_7_1_chunked_coding() {
    check(&[
        row(
            "extensions are allowed and dropped",
            b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n0\r\n\r\n",
            200,
            Some("POST /c host=h len=3"),
            true,
        ),
        row(
            "trailers are read",
            b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
            200,
            Some("POST /c host=h len=3"),
            true,
        ),
        row(
            "a size of more than 16 hex digits is refused",
            b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000003\r\nabc\r\n0\r\n\r\n",
            400,
            None,
            false,
        ),
        row(
            "chunk data not ended by CRLF is refused",
            b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n",
            400,
            None,
            false,
        ),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn section_9_3_persistence() {
    check(&[
        row(
            "HTTP/1.1 persists by default",
            b"GET /p HTTP/1.1\r\nHost: h\r\n\r\n",
            200,
            Some("GET /p host=h len=0"),
            true,
        ),
        row(
            "Connection: close closes after the answer",
            b"GET /p HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
            200,
            Some("GET /p host=h len=0"),
            false,
        ),
        row(
            "HTTP/1.0 closes unless keep-alive is asked for",
            b"GET /p HTTP/1.0\r\nHost: h\r\n\r\n",
            200,
            Some("GET /p host=h len=0"),
            false,
        ),
        row(
            "HTTP/1.0 with keep-alive persists",
            b"GET /p HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n",
            200,
            Some("GET /p host=h len=0"),
            true,
        ),
    ])
    .await;
}
