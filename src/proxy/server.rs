//! Serving client connections: HTTP/1.1 with rampart's engine
//! ([`super::h1::server`]) on plain listeners and on TLS when ALPN did not
//! pick `h2`, HTTP/2 with hyper when it did. Each connection is registered
//! with the drain so that a drain lets requests in flight finish (and
//! sends HTTP/2 GOAWAY).
//!
//! Idle limits: an HTTP/1.1 connection waits at most `client_idle` for a
//! request head to complete, and a started head at most `request_header`
//! (408, see [`super::h1::server`]); an HTTP/2 connection with no request in
//! flight for `client_idle` gets GOAWAY and closes (at most `client_idle`
//! later, even if the client never answers the GOAWAY's PING).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

use super::h1::server::Transport;
use super::h2streams::{Driver, StreamExec};
use super::message::ClientRequest;
use super::rescue::{self, ProxyError};
use super::Body;
use super::{pipeline, ConnCtx};
use crate::config::model::Timeouts;
use crate::listener::DrainWatch;

/// The hyper connection builders, configured once and shared (HTTP/2:
/// the settings, for a builder per connection with its own executor).
#[derive(Debug)]
pub struct Builders {
    h1: http1::Builder,
    h2: H2Settings,
    engine: super::h1::server::Settings,
    client_idle: Duration,
}

#[derive(Debug, Clone, Copy)]
struct H2Settings {
    max_concurrent_streams: u32,
    max_header_list_size: u32,
    max_pending_resets: usize,
}

impl H2Settings {
    /// A builder whose streams run in the connection's task (`exec`).
    fn builder(&self, exec: StreamExec) -> http2::Builder<StreamExec> {
        let mut h2 = http2::Builder::new(exec);
        h2.timer(TokioTimer::new())
            .max_concurrent_streams(self.max_concurrent_streams)
            .max_header_list_size(self.max_header_list_size)
            // Rapid-reset protection (CVE-2023-44487): streams reset before
            // being served count against this.
            .max_pending_accept_reset_streams(self.max_pending_resets);
        h2
    }
}

impl Builders {
    pub fn new(t: &Timeouts, l: &crate::config::model::Limits) -> Self {
        // hyper's HTTP/1.1 server, for the built-in origins only (the
        // proxy's HTTP/1.1 is the engine's).
        let mut h1 = http1::Builder::new();
        h1.timer(TokioTimer::new())
            .keep_alive(true)
            // Oversized heads get 431 from hyper.
            .max_headers(l.max_headers)
            // The whole head (request line, headers, blank line): a head
            // that arrived in one read is measured too, not only one that
            // overflows the read buffer.
            .max_header_size(l.max_header_bytes)
            .max_buf_size(l.max_header_bytes.max(8192))
            // Runs from the moment hyper waits for a head: bounds idle
            // keep-alive time.
            .header_read_timeout(t.client_idle);
        let h2 = H2Settings {
            max_concurrent_streams: l.http2_max_concurrent_streams,
            max_header_list_size: u32::try_from(l.max_header_bytes).unwrap_or(u32::MAX),
            max_pending_resets: l.http2_max_pending_resets,
        };
        let engine = super::h1::server::Settings {
            client_idle: t.client_idle,
            request_header: t.request_header,
            max_headers: l.max_headers,
            max_header_bytes: l.max_header_bytes,
        };
        Builders {
            h1,
            h2,
            engine,
            client_idle: t.client_idle,
        }
    }

    /// hyper's HTTP/1.1 builder, which the built-in origins serve with.
    pub fn h1(&self) -> &http1::Builder {
        &self.h1
    }

    /// The client idle timeout these builders apply (also bounds TLS handshakes).
    pub fn client_idle(&self) -> std::time::Duration {
        self.client_idle
    }
}

/// Serves one client connection until it closes or the drain ends it:
/// HTTP/1.1 with rampart's engine, HTTP/2 (ALPN `h2`) with hyper.
pub async fn serve<I>(io: I, h2: bool, cx: Arc<ConnCtx>, b: &Builders, watch: DrainWatch)
where
    I: Transport + 'static,
{
    if !h2 {
        return super::h1::server::serve(io, cx, b.engine, watch).await;
    }
    // Boxed: an HTTP/1.1 connection's task is not sized for HTTP/2's state.
    if let Err(e) = Box::pin(serve_h2(io, cx, b, watch)).await {
        tracing::debug!(error = %e, "client connection ended with an error");
    }
}

/// Fields an HTTP/2 (or HTTP/3) response does not carry (connection-specific,
/// RFC 9113 §8.2.2, RFC 9114 §4.2), whatever the backend sent.
pub const NOT_IN_H2: crate::fields::Classes = crate::fields::HOP_BY_HOP | crate::fields::Class::Upgrade.bit();

/// Requests in flight on one HTTP/2 connection, and when the last ended.
#[derive(Debug, Default)]
struct Activity {
    open: AtomicUsize,
    /// Milliseconds since `base` when the connection was last busy.
    last: AtomicU64,
}

/// Marks a request in flight until dropped: held by the request's future,
/// then by its response body until the body has been sent.
struct Busy {
    act: Arc<Activity>,
    base: tokio::time::Instant,
}

impl Drop for Busy {
    fn drop(&mut self) {
        // Only the last request out reads the clock: the idle time counts
        // from there.
        if self.act.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.act.last.store(ms, Ordering::Release);
        }
    }
}

/// An HTTP/2 response body that keeps its stream counted as busy.
struct TrackedBody {
    inner: Body,
    _busy: Busy,
}

impl http_body::Body for TrackedBody {
    type Data = <Body as http_body::Body>::Data;
    type Error = <Body as http_body::Body>::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// HTTP/2: every stream runs inside the connection's task (see
/// [`super::h2streams`]). With no request in flight for `client_idle`, the
/// connection gets GOAWAY (streams already answered finish sending) and
/// closes.
async fn serve_h2<I>(io: I, cx: Arc<ConnCtx>, b: &Builders, watch: DrainWatch) -> Result<(), hyper::Error>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let base = tokio::time::Instant::now();
    let activity = Arc::new(Activity::default());
    let act = activity.clone();
    let svc = service_fn(move |req| {
        let (cx, act) = (cx.clone(), act.clone());
        act.open.fetch_add(1, Ordering::Relaxed);
        async move {
            let busy = Busy { act, base };
            let arrived = tokio::time::Instant::now();
            let rt = cx.runtime.load_full();
            let answer = pipeline::handle(ClientRequest::from_hyper(req), &cx, &rt, arrived).await;
            // The fields as hyper's map, less those HTTP/2 does not carry.
            let resp = answer.into_response(NOT_IN_H2).unwrap_or_else(|| {
                let e = ProxyError::BadResponse {
                    server: "-".into(),
                    what: "a response field that HTTP/2 cannot carry",
                };
                rescue::answer(&e, None)
                    .into_response(NOT_IN_H2)
                    .unwrap_or_else(|| http::Response::new(Body::Empty))
            });
            Ok::<_, Infallible>(resp.map(|inner| TrackedBody { inner, _busy: busy }))
        }
    });
    let conn = b.h2.builder(StreamExec).serve_connection(TokioIo::new(io), svc);
    let mut conn = Driver::new(conn);
    let idle = b.client_idle;
    // The drain and the idle timer are watched by a task of their own, so
    // that the connection's many wake-ups poll only a one-shot receiver;
    // `watch` itself stays here until the connection is gone.
    let (tx, stop) = tokio::sync::oneshot::channel();
    let watchdog = tokio::spawn(watch_h2(activity, base, idle, watch.clone(), tx));
    let idle_goaway = tokio::select! {
        r = &mut conn => {
            watchdog.abort();
            return r;
        }
        why = stop => why.unwrap_or(false),
    };
    conn.conn().graceful_shutdown();
    let r = if idle_goaway {
        // h2 sends the final GOAWAY and closes only once the client has
        // acknowledged the PING that follows the first GOAWAY: a client
        // that never answers (or never reads) would keep the connection
        // for ever. No request was in flight, so after another
        // `client_idle` it is closed.
        match tokio::time::timeout(idle, &mut conn).await {
            Ok(r) => r,
            Err(_) => {
                tracing::debug!(after = ?idle, "HTTP/2 client did not finish the GOAWAY: closed");
                Ok(())
            }
        }
    } else {
        conn.await
    };
    drop(watch);
    r
}

/// Says when an HTTP/2 connection should shut down: `false` for a drain,
/// `true` when no request has been in flight for `idle`.
async fn watch_h2(
    activity: Arc<Activity>,
    base: tokio::time::Instant,
    idle: Duration,
    mut drain: DrainWatch,
    tx: tokio::sync::oneshot::Sender<bool>,
) {
    loop {
        let last = base + Duration::from_millis(activity.last.load(Ordering::Acquire));
        let deadline = if activity.open.load(Ordering::Acquire) > 0 {
            tokio::time::Instant::now() + idle
        } else {
            last + idle
        };
        tokio::select! {
            _ = drain.signalled() => {
                let _ = tx.send(false);
                return;
            }
            _ = tokio::time::sleep_until(deadline) => {
                let quiet = base + Duration::from_millis(activity.last.load(Ordering::Acquire));
                if activity.open.load(Ordering::Acquire) == 0 && quiet.elapsed() >= idle {
                    tracing::debug!(after = ?idle, "idle HTTP/2 connection: GOAWAY");
                    let _ = tx.send(true);
                    return;
                }
            }
        }
    }
}
