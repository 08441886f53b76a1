//! Connections to backend servers: a small pool of idle HTTP/1.1
//! keep-alive connections per worker thread (no lock shared between
//! threads on the hot path), and one multiplexed HTTP/2 (h2c) connection
//! per server and thread for pools that ask for it.
//!
//! A pooled HTTP/1.1 connection goes back to its pool when the response
//! body has been read to the end ([`PooledBody`]); a body dropped early
//! closes the connection, since unread bytes would corrupt the next
//! response.
//!
//! Each HTTP/1.1 connection's task also watches it while it is pooled: it
//! closes the connection after `backend_idle` unused, at once when the
//! backend closes it (hyper reads while idle), and when its server leaves
//! the running configuration ([`Backend::retire`]; a connection busy then is
//! closed when its response ends instead of going back to the pool). A
//! [`Slot`] shared by the task and the pool entry decides who wins when the
//! task closes a connection that a request is taking out at that moment.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2, TrySendError};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use super::attempt::InFlight;
use super::bodyguard::BodyFlag;
use super::rescue::ProxyError;
use crate::balancer::budget::PoolGuard;
use crate::balancer::Backend;
use crate::units::clock_ms;

type H1Sender = http1::SendRequest<UpBody>;
type H2Sender = http2::SendRequest<UpBody>;

/// A request body on its way to a backend: the client's stream, or
/// nothing (the form a request takes when it is tried again).
#[derive(Debug)]
pub enum UpBody {
    Client(Incoming),
    /// The client's body under size and rate limits.
    Guarded(super::bodyguard::GuardedBody),
    Empty,
}

impl UpBody {
    /// The limit flag of a guarded body.
    pub(super) fn flag(&self) -> Option<Arc<BodyFlag>> {
        match self {
            UpBody::Guarded(g) => Some(g.flag()),
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
            UpBody::Client(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            UpBody::Guarded(b) => Pin::new(b).poll_frame(cx),
            UpBody::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpBody::Client(b) => b.is_end_stream(),
            UpBody::Guarded(b) => b.is_end_stream(),
            UpBody::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpBody::Client(b) => b.size_hint(),
            UpBody::Guarded(b) => b.size_hint(),
            UpBody::Empty => SizeHint::with_exact(0),
        }
    }
}

/// A failed try, and what may be done about it.
#[derive(Debug)]
pub struct SendError {
    pub error: ProxyError,
    /// The request, untouched: nothing reached the backend, so it may go
    /// to another server whatever its method.
    pub unsent: Option<Box<Request<UpBody>>>,
    /// The backend closed or reset the connection before a response
    /// header: a request that can be replayed may go elsewhere.
    pub reset: bool,
}

impl SendError {
    fn unsent(error: ProxyError, req: Request<UpBody>) -> Self {
        SendError {
            error,
            unsent: Some(Box::new(req)),
            reset: false,
        }
    }

    /// A send that failed after the request went out. When the client's
    /// body broke a limit (`flag`), that is the error, and nothing is retried.
    fn upstream(server: &str, source: hyper::Error, flag: Option<&BodyFlag>) -> Self {
        if let Some(error) = flag.and_then(BodyFlag::error) {
            return SendError {
                error,
                unsent: None,
                reset: false,
            };
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
        }
    }
}

/// A pooled connection's state, shared with its connection task.
#[derive(Debug)]
struct Slot {
    /// [`BUSY`], [`CLOSED`], or when it went idle (`clock_ms`).
    idle_since: AtomicU64,
    /// Its server left the configuration: do not pool it again.
    retired: AtomicBool,
}

const BUSY: u64 = u64::MAX;
const CLOSED: u64 = u64::MAX - 1;

impl Slot {
    fn busy() -> Self {
        Slot {
            idle_since: AtomicU64::new(BUSY),
            retired: AtomicBool::new(false),
        }
    }

    /// Takes the connection out of the pool; false if its task closed it.
    fn take(&self) -> bool {
        self.idle_since.swap(BUSY, Ordering::AcqRel) != CLOSED
    }

    fn set_idle(&self) {
        self.idle_since.store(clock_ms(), Ordering::Release);
    }

    /// Marks an idle connection closed (idle for at least `min_ms`); false
    /// when it is busy or was taken meanwhile.
    fn close_if_idle(&self, min_ms: u64) -> bool {
        let t = self.idle_since.load(Ordering::Acquire);
        t != BUSY
            && t != CLOSED
            && clock_ms().saturating_sub(t) >= min_ms
            && self
                .idle_since
                .compare_exchange(t, CLOSED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// How long until an idle connection has been idle for `idle_ms`.
    fn until_idle_limit(&self, idle_ms: u64) -> u64 {
        match self.idle_since.load(Ordering::Acquire) {
            BUSY | CLOSED => idle_ms,
            t => (t + idle_ms).saturating_sub(clock_ms()).max(1),
        }
    }
}

struct Idle {
    sender: H1Sender,
    slot: Arc<Slot>,
}

thread_local! {
    static H1_IDLE: RefCell<HashMap<SocketAddr, Vec<Idle>>> = RefCell::new(HashMap::new());
    static H2_CONNS: RefCell<HashMap<SocketAddr, H2Sender>> = RefCell::new(HashMap::new());
    /// Check-ins since the last sweep of closed entries.
    static CHECKINS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Where and how to reach one backend for one request.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub server: &'a str,
    pub backend: &'a Backend,
    pub addr: SocketAddr,
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_idle: usize,
}

/// Sends a request over a pooled (or new) HTTP/1.1 connection. The
/// response body returns the connection to the pool when finished.
pub async fn send_h1(t: Target<'_>, mut req: Request<UpBody>) -> Result<Response<PooledBody>, SendError> {
    let flag = req.body().flag();
    // Reuse the most recently idled connection first; a connection the
    // backend closed meanwhile hands the request back untouched, so it
    // can go out on the next one.
    while let Some((mut sender, slot)) = checkout(t.addr) {
        if sender.ready().await.is_err() {
            continue;
        }
        match sender.try_send_request(req).await {
            Ok(resp) => return Ok(wrap(resp, sender, slot, t)),
            Err(mut e) => match e.take_message() {
                Some(r) => req = r,
                None => return Err(SendError::upstream(t.server, e.into_error(), flag.as_deref())),
            },
        }
    }
    // New connections are the cold path: boxing it keeps the per-request
    // future small.
    let (mut sender, slot) = match Box::pin(connect_h1(t)).await {
        Ok(s) => s,
        Err(e) => return Err(SendError::unsent(e, req)),
    };
    if let Err(source) = sender.ready().await {
        let error = ProxyError::Upstream {
            server: t.server.to_string(),
            source,
        };
        return Err(SendError::unsent(error, req));
    }
    let resp = sender
        .try_send_request(req)
        .await
        .map_err(|e| failed_try(t.server, e, flag.as_deref()))?;
    Ok(wrap(resp, sender, slot, t))
}

/// Sends a request over this thread's HTTP/2 connection to the server.
pub async fn send_h2(t: Target<'_>, req: Request<UpBody>) -> Result<Response<Incoming>, SendError> {
    let flag = req.body().flag();
    let existing = H2_CONNS.with(|m| m.borrow().get(&t.addr).filter(|s| !s.is_closed()).cloned());
    let mut sender = match existing {
        Some(s) => s,
        None => match Box::pin(connect_h2(t)).await {
            Ok(sender) => {
                H2_CONNS.with(|m| m.borrow_mut().insert(t.addr, sender.clone()));
                sender
            }
            Err(e) => return Err(SendError::unsent(e, req)),
        },
    };
    if let Err(source) = sender.ready().await {
        let error = ProxyError::Upstream {
            server: t.server.to_string(),
            source,
        };
        return Err(SendError::unsent(error, req));
    }
    sender
        .try_send_request(req)
        .await
        .map_err(|e| failed_try(t.server, e, flag.as_deref()))
}

/// A failed send: with the request handed back when it was never sent.
fn failed_try(server: &str, mut e: TrySendError<Request<UpBody>>, flag: Option<&BodyFlag>) -> SendError {
    match e.take_message() {
        Some(r) => SendError::unsent(
            ProxyError::Upstream {
                server: server.to_string(),
                source: e.into_error(),
            },
            r,
        ),
        None => SendError::upstream(server, e.into_error(), flag),
    }
}

async fn connect_h2(t: Target<'_>) -> Result<H2Sender, ProxyError> {
    let stream = connect_tcp(t).await?;
    let (sender, conn) = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|source| ProxyError::Upstream {
            server: t.server.to_string(),
            source,
        })?;
    tokio::spawn(conn);
    Ok(sender)
}

fn checkout(addr: SocketAddr) -> Option<(H1Sender, Arc<Slot>)> {
    H1_IDLE.with(|m| {
        let mut m = m.borrow_mut();
        let list = m.get_mut(&addr)?;
        while let Some(idle) = list.pop() {
            if idle.slot.take() && !idle.sender.is_closed() {
                return Some((idle.sender, idle.slot));
            }
        }
        None
    })
}

fn checkin(addr: SocketAddr, sender: H1Sender, slot: Arc<Slot>, max_idle: usize) {
    // A connection not pooled is dropped here: its task then ends.
    if sender.is_closed() || slot.retired.load(Ordering::Acquire) {
        return;
    }
    H1_IDLE.with(|m| {
        let mut m = m.borrow_mut();
        let sweep = CHECKINS.with(|c| {
            let n = c.get().wrapping_add(1);
            c.set(n);
            n % 1024 == 0
        });
        if sweep {
            // Entries whose connection closed (idle limit, backend gone,
            // server retired), and the lists of servers left with none.
            m.retain(|_, list| {
                list.retain(|i| !i.sender.is_closed());
                !list.is_empty()
            });
        }
        let list = m.entry(addr).or_default();
        if list.len() < max_idle {
            slot.set_idle();
            list.push(Idle { sender, slot });
        }
    });
}

async fn connect_tcp(t: Target<'_>) -> Result<TcpStream, ProxyError> {
    let stream = tokio::time::timeout(t.connect_timeout, TcpStream::connect(t.addr))
        .await
        .map_err(|_| ProxyError::ConnectTimeout {
            server: t.server.to_string(),
            after: t.connect_timeout,
        })?
        .map_err(|source| ProxyError::Connect {
            server: t.server.to_string(),
            addr: t.addr,
            source,
        })?;
    // Small request/response writes must not wait for Nagle.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

async fn connect_h1(t: Target<'_>) -> Result<(H1Sender, Arc<Slot>), ProxyError> {
    let stream = connect_tcp(t).await?;
    let (sender, conn) = http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|source| ProxyError::Upstream {
            server: t.server.to_string(),
            source,
        })?;
    let slot = Arc::new(Slot::busy());
    let idle_ms = u64::try_from(t.idle_timeout.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let conn = tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "backend connection ended");
        }
    });
    // The watch runs beside the connection's task, so that the task's
    // wake-ups (one or more per request) poll no timer.
    tokio::spawn(watch_pooled(conn, slot.clone(), t.backend.retirement(), idle_ms));
    Ok((sender, slot))
}

/// Closes a backend connection (by aborting its task) once it has been
/// idle for `idle_ms`, or when its server is retired while it is idle;
/// ends with the connection.
async fn watch_pooled(
    mut conn: tokio::task::JoinHandle<()>,
    slot: Arc<Slot>,
    mut retirement: tokio::sync::watch::Receiver<bool>,
    idle_ms: u64,
) {
    let mut retired = false;
    loop {
        let wait = Duration::from_millis(slot.until_idle_limit(idle_ms));
        tokio::select! {
            _ = &mut conn => return,
            () = tokio::time::sleep(wait) => {
                if slot.close_if_idle(idle_ms) {
                    tracing::debug!("idle backend connection closed after backend_idle");
                    conn.abort();
                    return;
                }
            }
            r = retirement.wait_for(|r| *r), if !retired => {
                retired = true;
                slot.retired.store(true, Ordering::Release);
                // Idle now: close. Busy: closed when its response ends.
                if r.is_err() || slot.close_if_idle(0) {
                    conn.abort();
                    return;
                }
            }
        }
    }
}

fn wrap(resp: Response<Incoming>, sender: H1Sender, slot: Arc<Slot>, t: Target<'_>) -> Response<PooledBody> {
    let (parts, body) = resp.into_parts();
    let pooled = PooledBody {
        inner: body,
        back: Some((sender, slot, t.addr, t.max_idle)),
        in_flight: None,
        pool_guard: None,
    };
    Response::from_parts(parts, pooled)
}

/// A backend response body that returns its connection to the pool once
/// it has been read to the end.
pub struct PooledBody {
    inner: Incoming,
    back: Option<(H1Sender, Arc<Slot>, SocketAddr, usize)>,
    /// Keeps the server's (and pool's) in-flight counts up until the body is done.
    in_flight: Option<InFlight>,
    pool_guard: Option<PoolGuard>,
}

impl std::fmt::Debug for PooledBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledBody")
            .field("pooled", &self.back.is_some())
            .finish()
    }
}

impl PooledBody {
    /// A body on a connection that is not pooled (an HTTP/2 stream): it
    /// only carries the in-flight accounting.
    pub fn stream(inner: Incoming) -> Self {
        PooledBody {
            inner,
            back: None,
            in_flight: None,
            pool_guard: None,
        }
    }

    /// Ties the server's in-flight accounting to this body's life.
    pub fn with_in_flight(mut self, f: InFlight) -> Self {
        self.in_flight = Some(f);
        self
    }

    /// Ties the pool's in-flight accounting to this body's life.
    pub fn keep_pool_guard(&mut self, g: PoolGuard) {
        self.pool_guard = Some(g);
    }

    fn release(&mut self) {
        if let Some((sender, slot, addr, max)) = self.back.take() {
            checkin(addr, sender, slot, max);
        }
    }
}

impl HttpBody for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        match &r {
            Poll::Ready(None) => this.release(),
            Poll::Ready(Some(Err(_))) => this.back = None,
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.release(),
            _ => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // A body with nothing left to read (HEAD, 204, 304, or fully read)
        // leaves a clean connection behind; anything else is discarded.
        if self.inner.is_end_stream() {
            self.release();
        }
    }
}
