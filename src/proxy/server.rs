//! Serving client connections with hyper (and the built-in origins): HTTP/1.1 (with upgrades) on
//! plain listeners and on TLS when ALPN did not pick `h2`, HTTP/2 when it
//! did. Each connection is registered with the drain so
//! that a drain lets requests in flight finish (and sends HTTP/2 GOAWAY).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

use super::framing::FramingWatch;
use super::{pipeline, ConnCtx};
use crate::config::model::Timeouts;
use crate::listener::DrainWatch;
use crate::serve_gracefully;

/// The hyper connection builders, configured once and shared.
#[derive(Debug)]
pub struct Builders {
    h1: http1::Builder,
    h2: http2::Builder<TokioExecutor>,
    client_idle: std::time::Duration,
}

impl Builders {
    pub fn new(t: &Timeouts, l: &crate::config::model::Limits) -> Self {
        let mut h1 = http1::Builder::new();
        h1.timer(TokioTimer::new())
            .keep_alive(true)
            // Oversized heads get 431 from hyper.
            .max_headers(l.max_headers)
            .max_buf_size(l.max_header_bytes)
            // Covers both an idle keep-alive wait and a slow header.
            .header_read_timeout(t.client_idle);
        let mut h2 = http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new())
            .max_concurrent_streams(l.http2_max_concurrent_streams)
            .max_header_list_size(u32::try_from(l.max_header_bytes).unwrap_or(u32::MAX))
            // Rapid-reset protection (CVE-2023-44487): streams reset before
            // being served count against this.
            .max_pending_accept_reset_streams(l.http2_max_pending_resets);
        Builders {
            h1,
            h2,
            client_idle: t.client_idle,
        }
    }

    /// The client idle timeout these builders apply (also bounds TLS handshakes).
    pub fn client_idle(&self) -> std::time::Duration {
        self.client_idle
    }
}

/// Serves one client connection until it closes or the drain ends it.
pub async fn serve<I>(io: I, h2: bool, cx: Arc<ConnCtx>, b: &Builders, watch: DrainWatch)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let flag = cx.framing.clone();
    let res = if h2 {
        // hyper spawns every HTTP/2 stream as a task of its own.
        let svc = service_fn(move |req| {
            let cx = cx.clone();
            async move { Ok::<_, Infallible>(pipeline::handle(req, cx).await) }
        });
        serve_gracefully!(b.h2.serve_connection(TokioIo::new(io), svc), watch)
    } else {
        // hyper's HTTP/1.1 server keeps a slot the size of the service's
        // future for every connection, idle or not: a boxed future keeps
        // that slot small (one allocation per request instead of ~5 KiB
        // held by every idle connection).
        let svc = service_fn(
            move |req| -> Pin<Box<dyn Future<Output = Result<_, Infallible>> + Send>> {
                let cx = cx.clone();
                Box::pin(async move { Ok::<_, Infallible>(pipeline::handle(req, cx).await) })
            },
        );
        let io = TokioIo::new(FramingWatch::new(io, flag));
        serve_gracefully!(b.h1.serve_connection(io, svc).with_upgrades(), watch)
    };
    if let Err(e) = res {
        tracing::debug!(error = %e, "client connection ended with an error");
    }
}

/// Serves one connection to a built-in origin (static site), HTTP/1.1.
pub async fn serve_site<I>(io: I, site: Arc<crate::origin::Site>, b: &Builders, watch: DrainWatch)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| {
        let site = site.clone();
        async move { Ok::<_, Infallible>(site.serve(&req).await) }
    });
    if let Err(e) = serve_gracefully!(b.h1.serve_connection(TokioIo::new(io), svc), watch) {
        tracing::debug!(error = %e, "origin connection ended with an error");
    }
}
