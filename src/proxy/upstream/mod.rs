//! Connections to backend servers: HTTP/1.1 through rampart's own engine
//! ([`crate::proxy::h1::client`]) over sockets each server keeps idle for
//! every worker thread ([`crate::conns::IdleConns`]), and one multiplexed
//! HTTP/2 connection per server and thread, through hyper, for pools that
//! ask for it (closed once its server has left the configuration and its
//! requests are done).
//!
//! An HTTP/1.1 exchange runs in the task of the client connection that
//! needs it: the request is written and the response head read there, and
//! the response body ([`PooledBody`]) reads from the backend as the client
//! side polls it, giving the connection back to the pool once the body has
//! ended cleanly. A body dropped early closes the connection, since unread
//! bytes would corrupt the next response.

mod body;
mod replay;

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::client::conn::{http2, TrySendError};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use super::bodyguard::BodyFlag;
use super::h1::buffers::Pooled;
use super::h1::client::{self, ClientError};
use super::h1::reqbody::ClientBody;
use super::message::Outgoing;
use super::rescue::ProxyError;
use crate::balancer::Backend;
use crate::conns::{BackendStream, Settings};
use crate::fields::Head;
use crate::runtime::UpstreamTls;
pub use body::PooledBody;

type H2Sender = http2::SendRequest<UpBody>;

/// A request body on its way to a backend: the client's stream, or
/// nothing (the form a request takes when it is tried again).
#[derive(Debug)]
pub enum UpBody {
    Client(ClientBody),
    /// The client's body under size and rate limits.
    Guarded(super::bodyguard::GuardedBody),
    /// A guarded body whose first bytes were read ahead (for the web
    /// application firewall): those first, then the rest as it comes.
    ReadAhead(Box<ReadAhead>),
    Empty,
}

/// What was read ahead of a guarded body, and the body itself.
#[derive(Debug)]
pub struct ReadAhead {
    pub data: Option<Bytes>,
    /// Trailers that came before the body ended (it has ended then).
    pub trailers: Option<http::HeaderMap>,
    pub rest: super::bodyguard::GuardedBody,
}

impl UpBody {
    /// The limit flag of a guarded body.
    pub(super) fn flag(&self) -> Option<Arc<BodyFlag>> {
        match self {
            UpBody::Guarded(g) => Some(g.flag()),
            UpBody::ReadAhead(r) => Some(r.rest.flag()),
            _ => None,
        }
    }
}

impl HttpBody for UpBody {
    type Data = Bytes;
    type Error = crate::body::BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, crate::body::BodyError>>> {
        match self.get_mut() {
            UpBody::Client(b) => Pin::new(b).poll_frame(cx),
            UpBody::Guarded(b) => Pin::new(b).poll_frame(cx),
            UpBody::ReadAhead(r) => {
                if let Some(d) = r.data.take() {
                    return Poll::Ready(Some(Ok(Frame::data(d))));
                }
                if let Some(t) = r.trailers.take() {
                    return Poll::Ready(Some(Ok(Frame::trailers(t))));
                }
                Pin::new(&mut r.rest).poll_frame(cx)
            }
            UpBody::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpBody::Client(b) => b.is_end_stream(),
            UpBody::Guarded(b) => b.is_end_stream(),
            UpBody::ReadAhead(r) => r.data.is_none() && r.trailers.is_none() && r.rest.is_end_stream(),
            UpBody::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpBody::Client(b) => b.size_hint(),
            UpBody::Guarded(b) => b.size_hint(),
            UpBody::ReadAhead(r) => {
                let read = r.data.as_ref().map_or(0, |d| d.len() as u64);
                let rest = r.rest.size_hint();
                match rest.exact() {
                    Some(n) => SizeHint::with_exact(read + n),
                    None => {
                        let mut h = SizeHint::new();
                        h.set_lower(read + rest.lower());
                        h
                    }
                }
            }
            UpBody::Empty => SizeHint::with_exact(0),
        }
    }
}

/// A backend's answer: its status, its fields as they came, its body, and
/// when its head arrived (the one clock read of a try).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub head: Head,
    pub body: PooledBody,
    pub at: tokio::time::Instant,
}

/// A failed try, and what may be done about it.
#[derive(Debug)]
pub struct SendError {
    pub error: ProxyError,
    /// The request's body, untouched: nothing reached the backend, so the
    /// request may go to another server whatever its method.
    pub unsent: Option<UpBody>,
    /// The backend closed or reset the connection before a response
    /// header: a request that can be replayed may go elsewhere.
    pub reset: bool,
    /// No response header came within the wait: a request that can be
    /// replayed may go elsewhere (the pool's `per_try_timeout`).
    pub timed_out: bool,
}

impl SendError {
    fn unsent(error: ProxyError, body: UpBody) -> Self {
        SendError {
            error,
            unsent: Some(body),
            reset: false,
            timed_out: false,
        }
    }

    /// The client's doing (a body cut off for a limit, a client gone):
    /// that is the error, nothing is retried, and no server is blamed.
    fn client(error: ProxyError) -> Self {
        SendError {
            error,
            unsent: None,
            reset: false,
            timed_out: false,
        }
    }

    /// A send that failed after the request went out. When the client's
    /// body broke a limit or off (`flag`), that is the error.
    fn upstream(server: &str, source: hyper::Error, flag: Option<&BodyFlag>) -> Self {
        if let Some(error) = flag.and_then(BodyFlag::error) {
            return SendError::client(error);
        }
        // Anything but a timeout or a local cancellation means the peer
        // went away before answering.
        let reset = !source.is_timeout();
        SendError {
            error: ProxyError::Upstream {
                server: server.to_string(),
                source,
            },
            unsent: None,
            reset,
            timed_out: false,
        }
    }

    /// No response header within `after`.
    fn timeout(server: &str, after: Duration) -> Self {
        SendError {
            error: ProxyError::ResponseTimeout {
                server: server.to_string(),
                after,
            },
            unsent: None,
            reset: false,
            timed_out: true,
        }
    }

    /// A failed HTTP/1.1 exchange after the request head went out.
    fn engine(server: &str, source: ClientError, flag: Option<&BodyFlag>) -> Self {
        if let Some(error) = flag.and_then(BodyFlag::error) {
            return SendError::client(error);
        }
        match source {
            ClientError::HeadTimeout(after) | ClientError::WriteStalled(after) => {
                return SendError::timeout(server, after)
            }
            _ => {}
        }
        let reset = source.is_reset();
        SendError {
            error: ProxyError::Backend {
                server: server.to_string(),
                source,
            },
            unsent: None,
            reset,
            timed_out: false,
        }
    }
}

thread_local! {
    /// This worker's HTTP/2 connection to each server, by the server's
    /// identity and the TLS settings it was made with.
    static H2_CONNS: RefCell<HashMap<(u64, usize), H2Sender>> = RefCell::new(HashMap::new());
}

impl Target<'_> {
    /// What a connection to this target is made with and kept for.
    fn conn_settings(&self) -> Settings {
        Settings {
            key: self.tls.map_or(0, |x| x.id),
            idle_for: self.idle_timeout,
            max_idle: self.max_idle,
        }
    }
}

/// Where and how to reach one backend for one try.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub server: &'a str,
    pub backend: &'a Arc<Backend>,
    pub addr: SocketAddr,
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_idle: usize,
    /// TLS to the server (the pool's `[pool.tls]`).
    pub tls: Option<&'a UpstreamTls>,
    /// The longest wait for the response head once the request has been
    /// sent whole (and for the backend to take more of the body).
    pub wait: Duration,
    /// When the try began (read once for the request, not again here).
    pub now: tokio::time::Instant,
}

/// Sends a request over a pooled (or new) HTTP/1.1 connection. The
/// response body returns the connection to the pool when finished.
///
/// A request that fails on a reused connection before any byte of an
/// answer came (the backend closed it as the request went out: the
/// keep-alive race) is sent again on a new connection to the same
/// server when it is idempotent or carries `Idempotency-Key`, as HTTP
/// clients do; its body, if any, was kept for that while it was being
/// sent (up to [`replay::KEEP`] bytes). Other requests are not resent.
pub async fn send_h1(t: Target<'_>, out: &Outgoing<'_>, mut body: UpBody) -> Result<Reply, SendError> {
    let flag = body.flag();
    // The request head is written in a buffer of the worker's free list.
    let mut scratch = Pooled::take();
    let replayable = out.repeatable();
    let mut kept = replay::Kept::default();
    let mut fresh_only = false;
    loop {
        // The most recently idled connection first, else a new one (the
        // cold path: boxed, it keeps the per-request future small).
        let settings = t.conn_settings();
        let checked_out = if fresh_only {
            None
        } else {
            t.backend.conns.checkout_at(settings, t.now)
        };
        let (stream, lease, pooled) = match checked_out {
            Some((stream, lease)) => (stream, lease, true),
            None => match Box::pin(connect(t)).await {
                Ok(stream) => (stream, t.backend.conns.opened(settings), false),
                // Unsent, with the body whole: it may go elsewhere.
                Err(e) if kept.is_empty() => return Err(SendError::unsent(e, body)),
                Err(e) => return Err(SendError::client(e)),
            },
        };
        let keep = pooled && replayable;
        let result = if keep || !kept.is_empty() {
            let mut b = std::mem::take(&mut kept).replaying(&mut body, keep);
            let r = client::exchange(stream, out, &mut b, &mut scratch, t.wait, t.now).await;
            kept = b.finish();
            r
        } else {
            client::exchange(stream, out, &mut body, &mut scratch, t.wait, t.now).await
        };
        match result {
            Ok(r) => {
                let at = crate::clock::precise();
                return Ok(Reply {
                    status: r.status,
                    head: Head::Raw(r.fields),
                    body: PooledBody::h1(r.body, lease, at),
                    at,
                });
            }
            // A pooled connection whose head could not be written (the
            // backend closed it meanwhile) leaves the request untouched:
            // it goes out on the next one.
            Err(f) if f.unsent && pooled => continue,
            Err(f) if f.unsent && kept.is_empty() => {
                let error = ProxyError::Backend {
                    server: t.server.to_string(),
                    source: f.error,
                };
                return Err(SendError::unsent(error, body));
            }
            // The keep-alive race: the backend had closed this reused
            // connection. Once more, on a new one.
            Err(f)
                if pooled
                    && replayable
                    && !f.answered
                    && f.error.is_reset()
                    && kept.whole()
                    && flag.as_deref().and_then(BodyFlag::error).is_none() =>
            {
                t.backend.stats.stale_retry();
                tracing::debug!(server = %t.server, error = %f.error, "a reused connection was closed by the backend; sending again on a new one");
                fresh_only = true;
            }
            Err(f) => return Err(SendError::engine(t.server, f.error, flag.as_deref())),
        }
    }
}

/// Sends a request over this thread's HTTP/2 connection to the server.
/// The wait for the response head starts once the body has been sent.
pub async fn send_h2(t: Target<'_>, out: &Outgoing<'_>, body: UpBody) -> Result<Reply, SendError> {
    let flag = body.flag();
    let key = (t.backend.id(), t.tls.map_or(0, |x| x.id));
    let existing = H2_CONNS.with(|m| m.borrow().get(&key).filter(|s| !s.is_closed()).cloned());
    let mut sender = match existing {
        Some(s) => s,
        None => match Box::pin(connect_h2(t)).await {
            Ok(sender) => {
                H2_CONNS.with(|m| {
                    let mut m = m.borrow_mut();
                    m.retain(|_, s| !s.is_closed());
                    m.insert(key, sender.clone());
                });
                sender
            }
            Err(e) => return Err(SendError::unsent(e, body)),
        },
    };
    if let Err(source) = sender.ready().await {
        let error = ProxyError::Upstream {
            server: t.server.to_string(),
            source,
        };
        return Err(SendError::unsent(error, body));
    }
    let bodyless = body.is_end_stream();
    let Some((uri, headers)) = h2_parts(t, out) else {
        let error = ProxyError::BadRequest("a request field that HTTP/2 cannot carry");
        return Err(SendError::unsent(error, body));
    };
    let mut req = Request::new(body);
    *req.method_mut() = out.method.clone();
    *req.uri_mut() = uri;
    *req.version_mut() = http::Version::HTTP_2;
    *req.headers_mut() = headers;
    let sending = sender.try_send_request(req);
    let waiting = async {
        if let (false, Some(f)) = (bodyless, flag.as_deref()) {
            f.sent().await;
        }
        tokio::time::sleep(t.wait).await;
    };
    let resp = tokio::select! {
        biased;
        r = sending => r.map_err(|e| failed_try(t.server, e, flag.as_deref()))?,
        () = waiting => return Err(match flag.as_deref().and_then(BodyFlag::error) {
            Some(error) => SendError::client(error),
            None => SendError::timeout(t.server, t.wait),
        }),
    };
    let (parts, body) = resp.into_parts();
    Ok(Reply {
        status: parts.status,
        head: Head::Map(parts.headers),
        body: PooledBody::stream(body),
        at: crate::clock::precise(),
    })
}

/// The target and fields as hyper's HTTP/2 client takes them: the target
/// with the scheme and authority, the fields as a map; None when a field
/// is one `http` refuses.
fn h2_parts(t: Target<'_>, out: &Outgoing<'_>) -> Option<(http::Uri, http::HeaderMap)> {
    let scheme = if t.tls.is_some() { "https" } else { "http" };
    let authority = out
        .authority
        .cloned()
        .unwrap_or_else(|| http::uri::Authority::from_static("backend"));
    let uri = http::Uri::builder()
        .scheme(scheme)
        .authority(authority)
        .path_and_query(out.target.clone())
        .build()
        .ok()?;
    Some((uri, out.head.to_map(out.edits.drop, &out.edits.add)?))
}

/// A failed send: with the body handed back when it was never sent.
fn failed_try(server: &str, mut e: TrySendError<Request<UpBody>>, flag: Option<&BodyFlag>) -> SendError {
    match e.take_message() {
        Some(r) => SendError::unsent(
            ProxyError::Upstream {
                server: server.to_string(),
                source: e.into_error(),
            },
            r.into_body(),
        ),
        None => SendError::upstream(server, e.into_error(), flag),
    }
}

async fn connect_h2(t: Target<'_>) -> Result<H2Sender, ProxyError> {
    let stream = connect(t).await?;
    let (sender, conn) = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|source| ProxyError::Upstream {
            server: t.server.to_string(),
            source,
        })?;
    tokio::spawn(drive_h2(conn, t.backend.clone()));
    Ok(sender)
}

/// Drives an HTTP/2 connection to `server` until it ends, or until the
/// server has left the configuration and its requests in flight are done
/// (or [`H2_DRAIN`] has passed): then it is closed.
async fn drive_h2<C: std::future::Future>(conn: C, server: Arc<Backend>) {
    let mut conn = std::pin::pin!(conn);
    let mut retired = server.retirement();
    tokio::select! {
        _ = &mut conn => return,
        _ = retired.wait_for(|r| *r) => {}
    }
    let deadline = tokio::time::Instant::now() + H2_DRAIN;
    while server.in_flight() > 0 && tokio::time::Instant::now() < deadline {
        tokio::select! {
            _ = &mut conn => return,
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    tracing::debug!(server = %server.name, "closing the HTTP/2 connection to a server that left the configuration");
}

/// The longest an HTTP/2 connection to a removed server stays open for
/// the requests it still carries.
const H2_DRAIN: Duration = Duration::from_secs(60);

/// A new connection to the server: TCP, then TLS when the pool asks for
/// it, both within `connect_timeout`. A certificate that does not verify
/// is logged with the server and the reason, and counted.
async fn connect(t: Target<'_>) -> Result<BackendStream, ProxyError> {
    let timed_out = || ProxyError::ConnectTimeout {
        server: t.server.to_string(),
        after: t.connect_timeout,
    };
    let deadline = tokio::time::Instant::now() + t.connect_timeout;
    let stream = tokio::time::timeout_at(deadline, TcpStream::connect(t.addr))
        .await
        .map_err(|_| timed_out())?
        .map_err(|source| ProxyError::Connect {
            server: t.server.to_string(),
            addr: t.addr,
            source,
        })?;
    // Small request/response writes must not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let Some(tls) = t.tls else {
        return Ok(BackendStream::Plain(stream));
    };
    let failed = |reason: String| {
        t.backend.stats.tls_failure(&reason);
        tracing::warn!(server = %t.server, addr = %t.addr, "TLS to backend failed: {reason}");
        ProxyError::BackendTls {
            server: t.server.to_string(),
            reason,
        }
    };
    let name = tls
        .names
        .get(t.server)
        .cloned()
        .ok_or_else(|| failed("no TLS name for this server".into()))?;
    match tokio::time::timeout_at(deadline, tls.connector.connect(name, stream)).await {
        Err(_) => Err(timed_out()),
        Ok(Err(e)) => Err(failed(e.to_string())),
        Ok(Ok(s)) => {
            let cert = s.get_ref().1.peer_certificates().and_then(|c| c.first());
            t.backend.stats.tls_connected(cert.map(|c| c.as_ref()));
            Ok(BackendStream::Tls(Box::new(s)))
        }
    }
}
