//! Serving one connection to a built-in origin: HTTP/1.1 with the
//! listener's drain, so that a shutdown lets the request in flight finish.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::Site;
use crate::listener::DrainWatch;
use crate::serve_gracefully;

/// Serves one connection with `h1` (the proxy's HTTP/1.1 settings) until it
/// closes or the drain ends it.
pub async fn serve_connection<I>(io: I, site: Arc<Site>, h1: &http1::Builder, watch: DrainWatch)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| {
        let site = site.clone();
        async move { Ok::<_, Infallible>(site.serve(&req).await) }
    });
    if let Err(e) = serve_gracefully!(h1.serve_connection(TokioIo::new(io), svc), watch) {
        tracing::debug!(error = %e, "origin connection ended with an error");
    }
}
