//! The response head the engine writes: framing decided here, the
//! backend's connection fields never passed on.

use http::{HeaderValue, Response};

use super::*;

fn head(resp: Response<Body>, framing: BodyOut, minor: u8, close: bool) -> String {
    let (parts, body) = resp.into_parts();
    let a = Answer {
        status: parts.status,
        head: Head::Map(parts.headers),
        edits: Default::default(),
        body,
        at: None,
    };
    let mut out = Vec::new();
    head_fields(&mut out, &a, framing, minor, close, false).expect("head");
    String::from_utf8(out).expect("utf-8")
}

#[test]
fn framing_and_connection_fields_are_decided_here() {
    let mut resp = Response::new(Body::full("hello"));
    let h = resp.headers_mut();
    h.insert("content-length", HeaderValue::from_static("999"));
    h.insert("transfer-encoding", HeaderValue::from_static("gzip"));
    h.insert("connection", HeaderValue::from_static("x-secret"));
    h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
    h.insert("date", HeaderValue::from_static("Mon, 30 Nov 2026 00:00:00 GMT"));
    h.insert("x-kept", HeaderValue::from_static("yes"));
    let text = head(resp, BodyOut::Length, 1, false);
    assert_eq!(
        text,
        "HTTP/1.1 200 OK\r\ndate: Mon, 30 Nov 2026 00:00:00 GMT\r\nx-kept: yes\r\ncontent-length: 5\r\n\r\n"
    );
}

#[test]
fn http10_clients_are_told_whether_the_connection_stays() {
    let resp = || {
        let mut r = Response::new(Body::Empty);
        r.headers_mut()
            .insert("date", HeaderValue::from_static("Mon, 30 Nov 2026 00:00:00 GMT"));
        r
    };
    assert!(head(resp(), BodyOut::None, 0, false).contains("connection: keep-alive\r\n"));
    assert!(head(resp(), BodyOut::None, 0, true).contains("connection: close\r\n"));
    assert!(!head(resp(), BodyOut::None, 1, false).contains("connection:"));
    assert!(head(resp(), BodyOut::Chunked, 1, false).contains("transfer-encoding: chunked\r\n"));
    // A date is added when the answer has none.
    let bare = Response::new(Body::Empty);
    assert!(head(bare, BodyOut::None, 1, false).contains("\r\ndate: "));
}

/// Every connection's task is sized by `serve`'s future, idle or not:
/// what a request in flight needs is boxed apart (see `answer`). 960 bytes
/// in a debug build when this was written (2,072 before); release builds
/// are smaller.
#[test]
fn an_idle_connection_s_future_stays_small() {
    fn size<A, B, C, D, F>(_: fn(A, B, C, D) -> F) -> usize {
        std::mem::size_of::<F>()
    }
    let serve = size(serve::<crate::listener::Counting<tokio::net::TcpStream>>);
    assert!(serve <= 1200, "serve's future is {serve} bytes");
}
