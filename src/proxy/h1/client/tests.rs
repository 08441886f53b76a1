//! The client half against scripted backends on real sockets: what it
//! writes, how it frames and reads what comes back, and when the
//! connection may carry another request.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Method;
use http_body::Frame;
use http_body_util::{Empty, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::conns::BackendStream;
use crate::fields::Head;

/// A backend that reads until it has seen `until` (or the end), answers
/// `answer`, then closes if `close`. Returns what it read.
async fn backend(
    until: &'static [u8],
    answer: &'static [u8],
    close: bool,
) -> (SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.expect("accept");
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.windows(until.len()).any(|w| w == until) {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        let _ = s.write_all(answer).await;
        if !close {
            // Hold the connection until the client is done with it.
            let _ = s.read(&mut buf).await;
        }
        got
    });
    (addr, task)
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("connect")
}

/// A request as the pipeline hands it over: its fields in a map.
struct Req {
    method: Method,
    target: http::uri::PathAndQuery,
    head: Head,
    edits: crate::fields::Edits,
}

impl Req {
    fn out(&self) -> Outgoing<'_> {
        Outgoing {
            method: &self.method,
            target: &self.target,
            authority: None,
            head: &self.head,
            edits: &self.edits,
        }
    }

    fn insert(&mut self, name: &'static str, value: &'static str) {
        if let Head::Map(m) = &mut self.head {
            m.insert(name, http::HeaderValue::from_static(value));
        }
    }
}

fn get(method: Method, target: &str) -> Req {
    let mut m = http::HeaderMap::new();
    m.insert("host", http::HeaderValue::from_static("example.test"));
    Req {
        method,
        target: target.parse().expect("target"),
        head: Head::Map(m),
        edits: Default::default(),
    }
}

/// A response head as the tests read it.
#[derive(Debug)]
struct Resp(StatusCode, http::HeaderMap);

impl Resp {
    fn status(&self) -> StatusCode {
        self.0
    }

    fn headers(&self) -> &http::HeaderMap {
        &self.1
    }
}

fn resp(e: Exchanged) -> (Resp, BodyReader) {
    (Resp(e.status, e.fields.to_map(0).expect("fields")), e.body)
}

async fn send<B>(addr: SocketAddr, req: &Req, body: &mut B) -> Result<(Resp, BodyReader), Failure>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BodyError>,
{
    exchange(
        BackendStream::Plain(connect(addr).await),
        &req.out(),
        body,
        &mut Vec::new(),
        std::time::Duration::from_secs(30),
        tokio::time::Instant::now(),
    )
    .await
    .map(resp)
}

async fn body_of(reader: &mut BodyReader) -> Result<Vec<u8>, ClientError> {
    let mut out = Vec::new();
    while let Some(data) = std::future::poll_fn(|cx| reader.poll_data(cx)).await {
        out.extend_from_slice(&data?);
    }
    Ok(out)
}

/// Sends a bodyless request of `method` and returns the response and its body.
async fn one(method: Method, answer: &'static [u8], close: bool) -> (Resp, Vec<u8>, bool) {
    let (addr, _task) = backend(b"\r\n\r\n", answer, close).await;
    let parts = get(method, "/");
    let (resp, mut reader) = send(addr, &parts, &mut Empty::<Bytes>::new())
        .await
        .expect("exchange");
    let body = body_of(&mut reader).await.expect("body");
    let reusable = reader.take_reusable().is_some();
    (resp, body, reusable)
}

#[tokio::test]
async fn a_request_is_written_field_by_field_and_a_length_body_read() {
    let (addr, task) = backend(
        b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Test: a b\r\n\r\nhello",
        false,
    )
    .await;
    let mut parts = get(Method::GET, "/p?q=1");
    parts.insert("expect", "100-continue");
    let (resp, mut reader) = send(addr, &parts, &mut Empty::<Bytes>::new())
        .await
        .expect("exchange");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-test"], "a b");
    assert_eq!(reader.remaining(), Some(5));
    assert_eq!(body_of(&mut reader).await.expect("body"), b"hello");
    assert!(reader.take_reusable().is_some(), "a clean keep-alive response");
    drop(reader);
    let got = task.await.expect("backend");
    // `Expect` is answered on the client's side, never forwarded.
    assert_eq!(got, b"GET /p?q=1 HTTP/1.1\r\nhost: example.test\r\n\r\n");
}

#[tokio::test]
async fn a_chunked_body_is_decoded_and_trailers_dropped() {
    let (resp, body, reusable) = one(
        Method::GET,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: v\r\n\r\n",
        false,
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(body, b"abcde");
    assert!(reusable);
}

#[tokio::test]
async fn a_body_until_close_is_read_to_the_end_and_not_reused() {
    let (_, body, reusable) = one(Method::GET, b"HTTP/1.1 200 OK\r\n\r\nall of it", true).await;
    assert_eq!(body, b"all of it");
    assert!(!reusable);
}

#[tokio::test]
async fn interim_answers_are_skipped() {
    let (resp, body, reusable) = one(
        Method::GET,
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        false,
    )
    .await;
    assert_eq!(resp.status(), 204);
    assert!(body.is_empty());
    assert!(reusable);
}

#[tokio::test]
async fn a_head_answer_has_no_body_whatever_its_length() {
    let (resp, body, reusable) = one(
        Method::HEAD,
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
        false,
    )
    .await;
    assert_eq!(resp.headers()["content-length"], "100");
    assert!(body.is_empty());
    assert!(reusable);
}

#[tokio::test]
async fn only_keep_alive_answers_are_reused() {
    let cases: [(&'static [u8], bool); 5] = [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", true),
        (
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
            false,
        ),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", false),
        (
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx",
            true,
        ),
        // Bytes after the body: something is wrong with this connection.
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n",
            false,
        ),
    ];
    for (answer, want) in cases {
        let (_, body, reusable) = one(Method::GET, answer, false).await;
        assert_eq!(body, b"x");
        assert_eq!(reusable, want, "{}", String::from_utf8_lossy(answer));
    }
}

#[tokio::test]
async fn a_short_body_a_silent_close_and_a_bad_head_are_errors() {
    let (addr, _t) = backend(
        b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        true,
    )
    .await;
    let parts = get(Method::GET, "/");
    let (_, mut reader) = send(addr, &parts, &mut Empty::<Bytes>::new())
        .await
        .expect("head");
    assert!(matches!(body_of(&mut reader).await, Err(ClientError::Truncated)));
    assert!(reader.take_reusable().is_none());

    let (addr, _t) = backend(b"\r\n\r\n", b"", true).await;
    let f = send(addr, &parts, &mut Empty::<Bytes>::new())
        .await
        .expect_err("closed");
    assert!(matches!(f.error, ClientError::Closed) && f.error.is_reset() && !f.unsent);

    let (addr, _t) = backend(
        b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        true,
    )
    .await;
    let f = send(addr, &parts, &mut Empty::<Bytes>::new())
        .await
        .expect_err("ambiguous");
    assert!(matches!(f.error, ClientError::Head(HeadError::LengthAndEncoding)));
    assert!(!f.error.is_reset());
}

#[tokio::test]
async fn request_bodies_are_framed_by_what_is_known_of_them() {
    // A known length: Content-Length, whatever the client's headers said.
    let (addr, task) = backend(b"hello", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true).await;
    let mut parts = get(Method::POST, "/up");
    parts.insert("transfer-encoding", "chunked");
    let mut body = Full::new(Bytes::from_static(b"hello"));
    let (resp, _) = send(addr, &parts, &mut body).await.expect("exchange");
    assert_eq!(resp.status(), 200);
    let got = task.await.expect("backend");
    assert_eq!(
        got,
        b"POST /up HTTP/1.1\r\nhost: example.test\r\ncontent-length: 5\r\n\r\nhello"
    );

    // An unknown length: chunked.
    let (addr, task) = backend(
        b"0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        true,
    )
    .await;
    let parts = get(Method::POST, "/up");
    let mut body = Drip::new(&[b"ab", b"cde"], false);
    send(addr, &parts, &mut body).await.expect("exchange");
    let got = task.await.expect("backend");
    assert_eq!(
        got,
        b"POST /up HTTP/1.1\r\nhost: example.test\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"
    );

    // No body on a POST: a length of 0.
    let (addr, task) = backend(b"\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true).await;
    send(addr, &parts, &mut Empty::<Bytes>::new())
        .await
        .expect("exchange");
    let got = task.await.expect("backend");
    assert_eq!(
        got,
        b"POST /up HTTP/1.1\r\nhost: example.test\r\ncontent-length: 0\r\n\r\n"
    );
}

#[tokio::test]
async fn an_early_answer_stops_the_upload_and_the_connection_is_not_reused() {
    // The backend answers after the head, while the body has not ended
    // (and never will).
    let (addr, _t) = backend(
        b"\r\n\r\n",
        b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n",
        false,
    )
    .await;
    let parts = get(Method::POST, "/up");
    let mut body = Drip::new(&[b"first"], true);
    let (resp, mut reader) = send(addr, &parts, &mut body).await.expect("exchange");
    assert_eq!(resp.status(), 413);
    assert!(reader.is_done());
    assert!(reader.take_reusable().is_none(), "the upload did not end");
}

#[tokio::test]
async fn a_switch_keeps_the_bytes_that_followed_it() {
    let (addr, _t) = backend(
        b"\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n\x81\x02hi",
        false,
    )
    .await;
    let parts = get(Method::GET, "/ws");
    let (resp, mut reader) = send(addr, &parts, &mut Empty::<Bytes>::new())
        .await
        .expect("exchange");
    assert_eq!(resp.status(), 101);
    assert!(reader.take_reusable().is_none());
    let (_, early) = reader.take_upgraded().expect("upgraded");
    assert_eq!(&early[..], b"\x81\x02hi");
}

/// A body of some chunks of unknown total length; then the end, or
/// (`hang`) nothing ever again.
struct Drip {
    chunks: Vec<Bytes>,
    hang: bool,
}

impl Drip {
    fn new(chunks: &[&'static [u8]], hang: bool) -> Self {
        let chunks = chunks.iter().rev().map(|c| Bytes::from_static(c)).collect();
        Drip { chunks, hang }
    }
}

impl HttpBody for Drip {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.chunks.pop() {
            Some(c) => Poll::Ready(Some(Ok(Frame::data(c)))),
            None if self.hang => Poll::Pending,
            None => Poll::Ready(None),
        }
    }
}

/// The wait for the response head starts once the request has been sent
/// whole: a body that takes longer than the wait to arrive is no timeout.
#[tokio::test(start_paused = true)]
async fn the_head_wait_counts_from_the_end_of_the_body() {
    let (addr, task) = backend(
        b"0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
        true,
    )
    .await;
    let parts = get(Method::POST, "/upload");
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    let mut body = Streamed(rx);
    let feeder = tokio::spawn(async move {
        for _ in 0..5 {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            tx.send(Bytes::from_static(b"data")).await.expect("send");
        }
    });
    let stream = BackendStream::Plain(connect(addr).await);
    let wait = std::time::Duration::from_secs(2);
    let now = tokio::time::Instant::now();
    let e = exchange(stream, &parts.out(), &mut body, &mut Vec::new(), wait, now)
        .await
        .expect("a five-second upload with a two-second wait");
    assert_eq!(e.status, 200);
    feeder.await.expect("feeder");
    task.abort();
}

/// A backend that says nothing once the request is sent: a head timeout,
/// with nothing of a response received.
#[tokio::test(start_paused = true)]
async fn a_silent_backend_is_a_head_timeout() {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let hold = tokio::spawn(async move {
        let (s, _) = l.accept().await.expect("accept");
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        drop(s);
    });
    let parts = get(Method::GET, "/");
    let stream = BackendStream::Plain(connect(addr).await);
    let wait = std::time::Duration::from_millis(500);
    let f = exchange(
        stream,
        &parts.out(),
        &mut Empty::<Bytes>::new(),
        &mut Vec::new(),
        wait,
        tokio::time::Instant::now(),
    )
    .await
    .expect_err("no answer");
    assert!(
        matches!(f.error, ClientError::HeadTimeout(w) if w == wait),
        "{:?}",
        f.error
    );
    assert!(!f.unsent && !f.answered);
    hold.abort();
}

/// A body of unknown length fed from a channel.
struct Streamed(tokio::sync::mpsc::Receiver<Bytes>);

impl HttpBody for Streamed {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|d| d.map(|d| Ok(Frame::data(d))))
    }
}
