//! The server half of rampart's HTTP/1.1 engine: one client connection's
//! loop, request after request (pipelined requests answered in order).
//!
//! ```text
//! idle (no buffer) ─bytes─▶ head (pooled buffer, `request_header`) ─▶ answer (boxed): pipeline::handle
//!      ▲                              │ 400 / 408 / 431 / 501: answer, close     │ body fed from the
//!      └── buffer given back when empty ◀── response written (head + first bytes) ◀─┘ socket as asked
//! ```
//!
//! While it waits for the next request a connection holds no buffer: a
//! read attempt takes one from the worker's pool ([`super::buffers`]) and
//! gives it back at once when nothing came. What a request in flight needs
//! is boxed apart, so an idle connection's task holds only the socket, its
//! context and one timer.

use std::future::{poll_fn, Future};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use crate::conns::BackendStream;
use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, Uri, Version};
use http_body::Body as HttpBody;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::buffers::{self, Held, Pooled};
use super::chunked::Decoder;
use super::head::{self, BodyLength, HeadError, RequestHead};
use super::interim::{self, Polled};
use super::reqbody::{ClientBody, Feed, RequestBody};
use super::write;
use crate::fields::{Class, Head, HeaderView, RawFields};
use crate::listener::DrainWatch;
use crate::proxy::message::{Answer, ClientRequest};
use crate::proxy::refusals;
use crate::proxy::rescue::{self, ProxyError};
use crate::proxy::{pipeline, Body, ConnCtx};
use crate::runtime::Runtime;

/// A client connection the engine can serve (plain or TLS).
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

/// The limits a connection is served with.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub client_idle: Duration,
    pub request_header: Duration,
    pub max_headers: usize,
    pub max_header_bytes: usize,
}

/// Serves one client connection until it closes, goes idle for
/// `client_idle`, or a drain ends it between requests. The cold paths
/// (refusals, lingering, upgrades) and the request in flight ([`answer`])
/// are boxed: every connection's task is sized by this future, idle or not.
pub async fn serve<T: Transport>(mut io: T, cx: Arc<ConnCtx>, s: Settings, watch: DrainWatch) {
    let mut held = Held::default();
    // The runtime snapshot, refreshed per request: an unchanged snapshot
    // costs one load, no shared reference count.
    let mut runtime = arc_swap::Cache::new(Arc::clone(&cx.runtime));
    // One deadline for the connection, moved as it changes state: a later
    // deadline only updates the timer's entry, no registration per request.
    let mut deadline = std::pin::pin!(tokio::time::sleep(s.client_idle));
    // One wait for a drain, registered once for the connection's life.
    let mut drained: Pin<Box<dyn Future<Output = ()> + Send>> = {
        let mut w = watch.clone();
        Box::pin(async move { w.signalled().await })
    };
    loop {
        // The idle deadline needs milliseconds: no clock read.
        let waiting_since = crate::clock::coarse();
        let idle_end = waiting_since + s.client_idle;
        deadline.as_mut().reset(idle_end);
        let waits = Waits {
            since: waiting_since,
            idle_end,
            deadline: deadline.as_mut(),
            drained: drained.as_mut(),
        };
        let (head, arrived) = match read_head(&mut io, &mut held, &s, waits).await {
            Ok(Some(h)) => h,
            Ok(None) => return,
            Err(e) => return Box::pin(refuse(&mut io, &cx, &e)).await,
        };
        let request = match request_of(held.freeze(head.len), &head) {
            Ok(r) => r,
            Err(e) => return Box::pin(refuse(&mut io, &cx, &e)).await,
        };
        // Boxed: what a request in flight needs (its pipeline, the body
        // fed to it, the answer written) exists only while there is one,
        // so an idle connection's task stays small.
        let draining = &watch;
        let asked = Asked {
            head: &head,
            request,
            arrived,
        };
        let rt: &Runtime = arc_swap::cache::Access::load(&mut runtime);
        match Box::pin(answer(&mut io, &mut held, &cx, rt, &s, asked, draining)).await {
            Ok(Next::KeepAlive) => {}
            Ok(Next::Close { unread }) => return Box::pin(linger(io, unread)).await,
            Ok(Next::Upgrade(backend, early)) => {
                drop(watch);
                return Box::pin(relay(io, held, backend, early)).await;
            }
            Err(e) => {
                tracing::debug!(error = %e, "client connection failed while answering");
                return;
            }
        }
    }
}

/// A request read: its parsed head, its start line and fields, and when
/// its first bytes were held.
struct Asked<'h> {
    head: &'h RequestHead,
    request: RequestLine,
    arrived: Instant,
}

/// Serves one parsed request: its body fed from the socket as the
/// pipeline asks for it, then its answer written.
async fn answer<T: Transport>(
    io: &mut T,
    held: &mut Held,
    cx: &ConnCtx,
    rt: &Runtime,
    s: &Settings,
    asked: Asked<'_>,
    watch: &DrainWatch,
) -> io::Result<Next> {
    let Asked {
        head,
        request,
        arrived,
    } = asked;
    let keep_alive = !head.close && (head.minor == 1 || head.keep_alive);
    let head_only = request.method == Method::HEAD;
    let minor = head.minor;
    let (body, mut feeder) = match head.body {
        BodyLength::None => (RequestBody::empty(), None),
        BodyLength::Length(n) => {
            let (b, tx) = RequestBody::channel(Some(n));
            (b, Some(Feeder::new(tx, BodyIn::Length(n), head.expect_continue)))
        }
        BodyLength::Chunked => {
            let (b, tx) = RequestBody::channel(None);
            let framing = BodyIn::Chunked(Decoder::default());
            (b, Some(Feeder::new(tx, framing, head.expect_continue)))
        }
    };
    let req = request.with_body(ClientBody::Engine(body));
    let resp = {
        let mut pipeline = std::pin::pin!(pipeline::handle(req, cx, rt, arrived));
        loop {
            // Polled with this worker's interim slot armed: a backend's
            // 103 Early Hints comes out here before the final answer.
            let polled = poll_fn(|c| interim::poll_armed(pipeline.as_mut(), c));
            let step = match feeder.as_mut().filter(|f| !f.done) {
                None => polled.await,
                Some(f) => tokio::select! {
                    biased;
                    p = polled => p,
                    () = f.step(io, held, s) => continue,
                },
            };
            let (done, interims) = match step {
                Polled::Done(r, interims) => (Some(r), interims),
                Polled::Interim(interims) => (None, interims),
            };
            // Not for HTTP/1.0 clients (RFC 9110 §15.2).
            if minor == 1 {
                for r in interims {
                    write_interim(io, r).await?;
                }
            }
            if let Some(r) = done {
                break r;
            }
        }
    };
    // A body left unread (an early answer) cannot be told apart from
    // the next request: the connection closes after this answer.
    // Unless what is left of it is already buffered (a small body the
    // answer overtook): that is skipped and the connection stays open.
    let unread = feeder.as_mut().is_some_and(|f| !f.rest_skipped(held));
    // A malformed chunk is a 400 whatever the backend made of the body's
    // end (the pipeline refused it already unless the backend answered
    // first).
    let resp = if feeder.as_ref().is_some_and(|f| f.malformed) && resp.status != 400 {
        let e = ProxyError::BadChunking;
        refusals::record(rt, cx.listener, cx.peer.ip(), &e, "(request body) invalid chunk");
        rescue::answer(&e, None)
    } else {
        resp
    };
    let close = !keep_alive || unread || watch.is_signalled();
    let next = write_response(io, held, resp, head_only, minor, close).await?;
    Ok(match next {
        Next::Close { .. } => Next::Close { unread },
        n => n,
    })
}

/// What waiting for a head may end it: the connection's deadline and
/// the drain.
struct Waits<'a> {
    /// When the connection began to wait for this head.
    since: Instant,
    /// `client_idle` after that.
    idle_end: Instant,
    deadline: Pin<&'a mut tokio::time::Sleep>,
    drained: Pin<&'a mut (dyn Future<Output = ()> + Send)>,
}

/// How a wait for more of a head ended.
enum Woken {
    Read(io::Result<usize>),
    Drained,
    Deadline,
}

/// Reads until a whole head is buffered; `None`: the client closed
/// between requests, stayed idle until `idle_end` (`client_idle` after the
/// connection began to wait), or a drain came while nothing of a head was
/// held. A started head must be whole by `idle_end` and `request_header`
/// after its first bytes were read. The connection's one deadline is moved
/// earlier only for a head that is not whole in its first read.
async fn read_head<T: Transport>(
    io: &mut T,
    held: &mut Held,
    s: &Settings,
    mut w: Waits<'_>,
) -> Result<Option<(RequestHead, Instant)>, ProxyError> {
    // When the head's first bytes were held (a socket can look readable
    // before anything came, so this is not when the wait began).
    let mut started = None;
    loop {
        if !held.is_empty() {
            // The request's arrival: where its latency starts.
            started.get_or_insert_with(crate::clock::precise);
            match head::parse_request(held.data(), s.max_headers) {
                Ok(Some(h)) if h.len > s.max_header_bytes => return Err(ProxyError::HeadTooLarge),
                Ok(Some(h)) => return Ok(Some((h, started.unwrap_or(w.since)))),
                Ok(None) if held.data().len() >= s.max_header_bytes => return Err(ProxyError::HeadTooLarge),
                Ok(None) => {}
                Err(HeadError::TooManyHeaders(_)) => return Err(ProxyError::HeadTooLarge),
                Err(e) if e.is_framing() => return Err(ProxyError::Framing(e.reason())),
                Err(e) => return Err(ProxyError::BadRequest(e.reason())),
            }
        }
        let at = started.map_or(w.idle_end, |t| w.idle_end.min(t + s.request_header));
        if at < w.deadline.deadline() {
            w.deadline.as_mut().reset(at);
        }
        let room = s.max_header_bytes.saturating_add(1);
        // The buffer is held only while a read finds bytes (see
        // `Held::read_from`): an idle connection holds none.
        let idle = started.is_none();
        let woken = poll_fn(|c| {
            if idle && w.drained.as_mut().poll(c).is_ready() {
                return Poll::Ready(Woken::Drained);
            }
            if let Poll::Ready(r) = held.poll_read_from(io, room, c) {
                return Poll::Ready(Woken::Read(r));
            }
            match w.deadline.as_mut().poll(c) {
                Poll::Ready(()) => Poll::Ready(Woken::Deadline),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        match woken {
            Woken::Drained => return Ok(None),
            Woken::Deadline if held.is_empty() => return Ok(None),
            Woken::Deadline => return Err(ProxyError::HeadTimeout),
            Woken::Read(Ok(0)) | Woken::Read(Err(_)) => return Ok(None),
            Woken::Read(Ok(_)) => {}
        }
    }
}

/// A request's start line and fields, before its body is attached.
#[derive(Debug)]
struct RequestLine {
    method: Method,
    uri: Uri,
    version: Version,
    fields: RawFields,
}

impl RequestLine {
    fn with_body(self, body: ClientBody) -> ClientRequest {
        ClientRequest {
            method: self.method,
            uri: self.uri,
            version: self.version,
            head: Head::Raw(self.fields),
            body,
        }
    }
}

/// The head as the pipeline takes it: the method and target parsed, the
/// fields left where they are (`head`, the head's bytes frozen out of the
/// read buffer) with their offsets.
fn request_of(head: Bytes, h: &RequestHead) -> Result<RequestLine, ProxyError> {
    let method =
        Method::from_bytes(&head[h.method.clone()]).map_err(|_| ProxyError::BadRequest("invalid method"))?;
    if method == Method::CONNECT {
        return Err(ProxyError::NotImplemented("CONNECT"));
    }
    match (h.minor, h.hosts) {
        (1, 0) => return Err(ProxyError::BadRequest("no Host header")),
        (_, n) if n > 1 => return Err(ProxyError::BadRequest("more than one Host header")),
        _ => {}
    }
    let uri = Uri::from_maybe_shared(head.slice(h.target.clone()))
        .map_err(|_| ProxyError::BadRequest("invalid request target"))?;
    // RFC 9112 §3.2: authority-form is CONNECT's (refused above), the
    // asterisk OPTIONS'.
    if uri.scheme().is_none() && uri.authority().is_some() {
        return Err(ProxyError::BadRequest("authority-form target"));
    }
    if uri.path() == "*" && method != Method::OPTIONS {
        return Err(ProxyError::BadRequest(
            "asterisk-form target on a method other than OPTIONS",
        ));
    }
    if let Some(i) = h.host {
        // uri-host [ ":" port ], or empty (§3.2).
        let value = head.slice(h.headers[i].1.clone());
        if !value.is_empty() && !valid_host(value) {
            return Err(ProxyError::BadRequest("invalid Host header"));
        }
    }
    if let Some(a) = uri.authority() {
        // An absolute-form target's authority replaces Host (§3.2.2): it
        // must be one too.
        if HeaderValue::from_str(a.as_str()).is_err() {
            return Err(ProxyError::BadRequest("invalid request target"));
        }
    }
    let version = if h.minor == 1 {
        Version::HTTP_11
    } else {
        Version::HTTP_10
    };
    Ok(RequestLine {
        method,
        uri,
        version,
        fields: RawFields::new(head, &h.headers),
    })
}

/// A `Host` value: a host and an optional port of digits, no user info.
fn valid_host(value: Bytes) -> bool {
    // Shared with the head, not copied.
    let Ok(a) = http::uri::Authority::from_maybe_shared(value) else {
        return false;
    };
    let port_ok = match a.as_str().rsplit_once(':') {
        Some((_, port)) if !port.contains(']') => port.bytes().all(|b| b.is_ascii_digit()),
        _ => true,
    };
    port_ok && !a.as_str().contains('@')
}

/// Writes an interim answer (its fields less the connection's own).
async fn write_interim<T: Transport>(io: &mut T, resp: Response<()>) -> io::Result<()> {
    let (parts, ()) = resp.into_parts();
    let a = Answer {
        status: parts.status,
        head: Head::Map(parts.headers),
        edits: Default::default(),
        body: Body::Empty,
        at: None,
    };
    let mut out = Pooled::take();
    if head_fields(&mut out, &a, BodyOut::None, 1, false, false).is_ok() {
        io.write_all(&out).await?;
    }
    Ok(())
}

/// Answers a request that never reached the pipeline, then closes. The
/// refusal is counted, recorded and held against the client as the
/// pipeline's are.
async fn refuse<T: Transport>(io: &mut T, cx: &ConnCtx, e: &ProxyError) {
    let rt = cx.runtime.load();
    refusals::record(
        &rt,
        cx.listener,
        cx.peer.ip(),
        e,
        format_args!("(request head) {e}"),
    );
    drop(rt);
    let resp = rescue::answer(e, None);
    let _ = write_response(io, &mut Held::default(), resp, false, 1, true).await;
    let _ = io.shutdown().await;
}

/// Closes after an answer: the write side first, then what the client
/// still sends is read and dropped for a moment, so that closing with
/// unread bytes does not reset the connection before the answer arrives.
async fn linger<T: Transport>(mut io: T, unread: bool) {
    let _ = io.shutdown().await;
    if unread {
        let mut sink = [0u8; 4096];
        let drain = async {
            let mut total = 0usize;
            while total < 256 * 1024 {
                match io.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += n,
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    }
}

/// Joins the client's connection to the backend's after a 101: what each
/// side sent early goes first.
async fn relay<T: Transport>(mut io: T, held: Held, mut backend: BackendStream, early: Bytes) {
    let r = async {
        if !early.is_empty() {
            io.write_all(&early).await?;
            io.flush().await?;
        }
        if !held.is_empty() {
            backend.write_all(held.data()).await?;
        }
        drop(held);
        tokio::io::copy_bidirectional(&mut io, &mut backend).await
    };
    if let Err(e) = r.await {
        tracing::debug!(error = %e, "upgraded connection ended");
    }
}

/// What follows a written answer.
enum Next {
    KeepAlive,
    /// `unread`: the request's body was not all read.
    Close {
        unread: bool,
    },
    Upgrade(BackendStream, Bytes),
}

/// Writes an answer: its head field by field with the framing this side
/// decides, the first body bytes in the same write when they are ready.
async fn write_response<T: Transport>(
    io: &mut T,
    held: &mut Held,
    mut resp: Answer,
    head_only: bool,
    minor: u8,
    mut close: bool,
) -> io::Result<Next> {
    let status = resp.status;
    let switching = status == StatusCode::SWITCHING_PROTOCOLS;
    let bodyless = head_only || status.is_informational() || status == 204 || status == 304;
    let mut out = Pooled::take();
    let framing = if bodyless {
        BodyOut::None
    } else {
        match resp.body.size_hint().exact() {
            Some(_) => BodyOut::Length,
            None if minor == 1 => BodyOut::Chunked,
            None => {
                close = true;
                BodyOut::UntilClose
            }
        }
    };
    let r = head_fields(&mut out, &resp, framing, minor, close, switching);
    let mut body = std::mem::replace(&mut resp.body, Body::Empty);
    drop(resp);
    if r.is_err() {
        drop(out);
        let e = ProxyError::BadResponse {
            server: "-".into(),
            what: "a response field that cannot be written",
        };
        return Box::pin(write_response(
            io,
            held,
            rescue::answer(&e, None),
            head_only,
            minor,
            true,
        ))
        .await;
    }
    if switching {
        io.write_all(&out).await?;
        return Ok(match body {
            Body::Stream(mut b) => match b.take_upgrade() {
                Some((backend, early)) => Next::Upgrade(backend, early),
                None => Next::Close { unread: false },
            },
            _ => Next::Close { unread: false },
        });
    }
    // The first frame goes with the head when it is ready now.
    let first = match framing {
        BodyOut::None => None,
        _ => match poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await {
            Poll::Ready(Some(Ok(f))) => f.into_data().ok(),
            Poll::Ready(Some(Err(e))) => return Err(io::Error::other(e)),
            _ => None,
        },
    };
    send_frame(io, &mut out, first.as_ref(), framing).await?;
    drop(out);
    if framing != BodyOut::None {
        let mut frame_head = Vec::new();
        loop {
            // While the backend is slow to send more, a client that goes
            // away is noticed (its socket reads the end), so that the
            // backend connection is closed instead of waited on. Bytes it
            // sends meanwhile (a pipelined request) are kept for later.
            let next = tokio::select! {
                biased;
                f = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)) => f,
                r = held.read_from(io, buffers::SIZE), if held.is_empty() => match r {
                    Ok(0) | Err(_) => return Err(io::ErrorKind::ConnectionAborted.into()),
                    Ok(_) => continue,
                },
            };
            let Some(frame) = next else {
                break;
            };
            let Ok(data) = frame.map_err(io::Error::other)?.into_data() else {
                continue;
            };
            frame_head.clear();
            send_frame(io, &mut frame_head, Some(&data), framing).await?;
        }
        if framing == BodyOut::Chunked {
            io.write_all(write::LAST_CHUNK).await?;
        }
    }
    io.flush().await?;
    Ok(if close {
        Next::Close { unread: false }
    } else {
        Next::KeepAlive
    })
}

/// How a response body goes on the wire to the client.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BodyOut {
    None,
    Length,
    Chunked,
    UntilClose,
}

/// Writes what `pre` holds (a head, or nothing) and `data` framed for `framing`.
async fn send_frame<T: Transport>(
    io: &mut T,
    pre: &mut Vec<u8>,
    data: Option<&Bytes>,
    framing: BodyOut,
) -> io::Result<()> {
    let data = data.filter(|d| !d.is_empty());
    match (data, framing) {
        (Some(d), BodyOut::Chunked) => {
            write::chunk_head(pre, d.len());
            if io.is_write_vectored() {
                let mut bufs = [IoSlice::new(pre), IoSlice::new(d), IoSlice::new(write::CHUNK_END)];
                write_all_vectored(io, &mut bufs).await
            } else {
                pre.extend_from_slice(d);
                pre.extend_from_slice(write::CHUNK_END);
                io.write_all(pre).await
            }
        }
        (Some(d), _) if io.is_write_vectored() || pre.is_empty() => {
            let mut bufs = [IoSlice::new(pre), IoSlice::new(d)];
            write_all_vectored(io, &mut bufs).await
        }
        (Some(d), _) => {
            pre.extend_from_slice(d);
            io.write_all(pre).await
        }
        (None, _) => io.write_all(pre).await,
    }
}

/// The response head: status line, the fields as they came less those the
/// edits drop and those that frame the body or the connection (decided
/// here), the edits' additions, then the framing ones.
fn head_fields(
    out: &mut Vec<u8>,
    a: &Answer,
    framing: BodyOut,
    minor: u8,
    close: bool,
    switching: bool,
) -> Result<(), write::WriteError> {
    let mut drop = a.edits.drop | Class::TransferEncoding.bit() | Class::KeepAlive.bit();
    if !switching {
        drop |= Class::Connection.bit();
    }
    if framing != BodyOut::None {
        drop |= Class::ContentLength.bit();
    }
    let mut digits = [0u8; 20];
    let length = match framing {
        BodyOut::Length => a
            .body
            .size_hint()
            .exact()
            .map(|n| (&b"content-length"[..], write::decimal(n, &mut digits))),
        BodyOut::Chunked => Some((&b"transfer-encoding"[..], &b"chunked"[..])),
        BodyOut::None | BodyOut::UntilClose => None,
    };
    let connection = match (switching, close, minor) {
        (true, _, _) => None,
        (false, true, _) => Some((&b"connection"[..], &b"close"[..])),
        (false, false, 0) => Some((&b"connection"[..], &b"keep-alive"[..])),
        (false, false, _) => None,
    };
    let date =
        (!a.head.contains("date") && !a.edits.add.iter().any(|(n, _)| *n == "date")).then(|| match a.at {
            Some(at) => super::buffers::date_at(at),
            None => super::buffers::date(),
        });
    let date = date.as_ref().map(|d| (&b"date"[..], d.as_bytes()));
    let reason = a.status.canonical_reason().unwrap_or("");
    let fields = a.head.kept(drop).chain(a.edits.add.fields());
    write::response_head(
        out,
        a.status.as_u16(),
        reason.as_bytes(),
        fields.chain(length).chain(connection).chain(date),
    )
}

async fn write_all_vectored<T: AsyncWrite + Unpin>(
    io: &mut T,
    mut bufs: &mut [IoSlice<'_>],
) -> io::Result<()> {
    // Leading empty slices (no head before a frame) are skipped first.
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        let n = io.write_vectored(bufs).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut bufs, n);
    }
    Ok(())
}

/// How the client frames its request body (`Content-Length` or chunked).
enum BodyIn {
    Length(u64),
    Chunked(Decoder),
}

/// Feeds a request body from the connection, one piece per step, as the
/// pipeline's side makes room for it.
struct Feeder {
    tx: Option<Feed>,
    framing: BodyIn,
    /// `Expect: 100-continue` not yet answered.
    continue_due: bool,
    /// The body ended (or failed, or nobody wants it any more).
    done: bool,
    /// It failed: the connection cannot carry another request.
    broken: bool,
    /// The pipeline stopped reading it (an answer came first): what is
    /// left may still be skipped.
    dropped: bool,
    /// It failed on the client's framing: the answer is 400, whatever the
    /// pipeline made of the body's end.
    malformed: bool,
}

impl Feeder {
    fn new(tx: Feed, framing: BodyIn, expect_continue: bool) -> Self {
        Feeder {
            tx: Some(tx),
            framing,
            continue_due: expect_continue,
            done: false,
            broken: false,
            dropped: false,
            malformed: false,
        }
    }

    /// After the answer: whether the body has been read to its end,
    /// skipping the rest of it if that is already in `held`.
    fn rest_skipped(&mut self, held: &mut Held) -> bool {
        if self.broken || self.continue_due {
            return false;
        }
        if self.done && !self.dropped {
            return true;
        }
        match &mut self.framing {
            BodyIn::Length(left) => match usize::try_from(*left) {
                Ok(n) if n <= held.data().len() => {
                    held.consume(n);
                    *left = 0;
                    true
                }
                _ => false,
            },
            BodyIn::Chunked(dec) => loop {
                match dec.feed(held.data()) {
                    Ok(p) => {
                        held.consume(p.consumed);
                        if p.done {
                            break true;
                        }
                        if p.consumed == 0 || held.is_empty() {
                            break false;
                        }
                    }
                    Err(_) => break false,
                }
            },
        }
    }

    fn fail(
        &mut self,
        permit: tokio::sync::mpsc::Permit<'_, Result<Bytes, crate::body::BodyError>>,
        why: &'static str,
    ) {
        permit.send(Err(why.into()));
        self.done = true;
        self.broken = true;
    }

    async fn step<T: Transport>(&mut self, io: &mut T, held: &mut Held, s: &Settings) {
        let Some(tx) = self.tx.clone() else {
            self.done = true;
            return;
        };
        let Ok(permit) = tx.reserve().await else {
            // The body is not wanted any more (an answer is on its way).
            self.done = true;
            self.dropped = true;
            return;
        };
        if self.continue_due {
            self.continue_due = false;
            let sent = async {
                io.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
                io.flush().await
            };
            if sent.await.is_err() {
                return self.fail(permit, "the client went away");
            }
        }
        loop {
            if !held.is_empty() {
                let (data, ended) = match &mut self.framing {
                    BodyIn::Length(left) => {
                        let take = usize::try_from(*left)
                            .unwrap_or(usize::MAX)
                            .min(held.data().len());
                        let data = held.freeze(take);
                        *left -= take as u64;
                        (Some(data), *left == 0)
                    }
                    BodyIn::Chunked(dec) => match dec.feed(held.data()) {
                        Ok(p) => {
                            // The data shares the read buffer (no copy).
                            let data = p.data.map(|r| {
                                held.consume(r.start);
                                let d = held.freeze(r.len());
                                held.consume(p.consumed - r.end);
                                d
                            });
                            if data.is_none() {
                                held.consume(p.consumed);
                            }
                            (data, p.done)
                        }
                        Err(_) => {
                            self.malformed = true;
                            permit.send(Err(Box::new(super::reqbody::BadChunking)));
                            self.done = true;
                            self.broken = true;
                            return;
                        }
                    },
                };
                if ended {
                    self.done = true;
                }
                if let Some(d) = data {
                    permit.send(Ok(d));
                    if ended {
                        self.tx = None;
                    }
                    return;
                }
                if ended {
                    self.tx = None;
                    return;
                }
            }
            match held.read_from(io, s.max_header_bytes.max(16 * 1024)).await {
                Ok(0) | Err(_) => return self.fail(permit, "the client closed before the body ended"),
                Ok(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;
