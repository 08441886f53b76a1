//! The admin API: a small HTTP/1.1 JSON API on its own listener (default
//! `127.0.0.1:9900`; a non-loopback address requires a bearer token, which
//! is compared in constant time).
//!
//! Endpoints (documented with curl examples in `docs/admin-api.md`):
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/api/pools` | pools and servers: health, state, weight, in flight, ejection |
//! | POST | `/api/pools/{pool}/servers` | add a server `{"name", "address", "weight"?, "max_requests"?}` |
//! | PUT | `/api/pools/{pool}/servers/{server}/weight` | set a weight `{"weight": N}` |
//! | POST | `/api/pools/{pool}/servers/{server}/drain` | stop new requests to a server |
//! | DELETE | `/api/pools/{pool}/servers/{server}` | drain, then remove a server |
//! | POST | `/api/reload` | load the config file again |
//! | GET | `/api/bans` | bans in force |
//! | POST | `/api/bans` | ban `{"address", "duration"?, "reason"?}` |
//! | DELETE | `/api/bans/{address}` | lift a ban |
//! | GET | `/api/health` | `{"status":"ok"}` while rampart runs |
//! | GET | `/metrics` | Prometheus text format (see `docs/metrics.md`) |
//! | GET | `/api/stats` | counts, rates (1 s/10 s/60 s) and percentiles of every listener, route, pool and server |
//! | GET | `/api/stats/stream` | the same as server-sent events, one `stats` event a second |
//! | GET | `/`, `/dashboard.js`, `/dashboard.css` | the live dashboard (assets embedded in the binary; no token needed for these three) |
//!
//! Exposes [`serve`] and [`AdminError`].

mod api;

use std::convert::Infallible;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::listener::{accept_loop, DrainWatch};
use crate::serve_gracefully;

/// Why an admin request failed; `proxy::rescue::admin_answer` turns it
/// into a JSON answer.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed here")]
    MethodNotAllowed,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Failed(String),
}

/// Serves the admin API on `socket` until the drain.
pub fn serve(socket: TcpListener, app: Arc<App>, token: Option<String>, watch: DrainWatch) -> JoinHandle<()> {
    let token: Arc<Option<String>> = Arc::new(token);
    let w0 = watch.clone();
    tokio::spawn(accept_loop(socket, watch, move |stream, _peer| {
        let (app, token, w) = (app.clone(), token.clone(), w0.clone());
        async move {
            let svc = service_fn(move |req| {
                let (app, token) = (app.clone(), token.clone());
                async move { Ok::<_, Infallible>(api::handle(req, &app, token.as_deref()).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = serve_gracefully!(conn, w) {
                tracing::debug!(error = %e, "admin connection ended with an error");
            }
        }
    }))
}

/// Compares two secrets in time that depends only on their lengths.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn secrets() {
        assert!(same_secret(b"0123456789abcdef", b"0123456789abcdef"));
        assert!(!same_secret(b"0123456789abcdef", b"0123456789abcdeg"));
        assert!(!same_secret(b"0123456789abcdef", b"0123456789abcde"));
        assert!(!same_secret(b"", b"x"));
    }
}
