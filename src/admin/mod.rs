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
//! | POST | `/api/pools/{pool}/servers/{server}/undrain` | take new requests again |
//! | POST | `/api/reload` | load the config file again |
//! | GET | `/api/config` | the running configuration as the dashboard shows it (no secrets), version, uptime, last reload |
//! | GET | `/api/bans` | bans in force |
//! | POST | `/api/bans` | ban `{"address", "duration"?, "reason"?}` |
//! | DELETE | `/api/bans/{address}` | lift a ban |
//! | GET | `/api/health` | `{"status":"ok"}` while rampart runs |
//! | GET | `/health/live` | 200 while the process answers (no token needed) |
//! | GET | `/health/ready` | 200 once every checked server has had its first verdict since the start (listeners are bound before the admin API serves), and from then on; 503 with `waiting_for` before, and from the start of a shutdown (no token needed) |
//! | GET | `/metrics` | Prometheus text format (see `docs/metrics.md`) |
//! | GET | `/api/stats` | counts, rates (1 s/10 s/60 s) and percentiles of every listener, route, pool and server |
//! | GET | `/api/stats/stream` | the same as server-sent events, one `stats` event a second |
//! | GET | `/`, `/dashboard.js`, `/chart.js`, `/dashboard.css` | the live dashboard (assets embedded in the binary; no token needed for these four: they hold no data) |
//!
//! Requests that change something (any method but GET and HEAD) are
//! refused with 403 when a browser says they come from another site
//! (`Sec-Fetch-Site: cross-site` or `same-site`, or an `Origin` that is not
//! the admin API's own), token or not: a page elsewhere cannot drain a
//! server through an operator's browser.
//!
//! It reads the running state ([`Runtime`], the sampler, the metrics
//! registry) and asks the application for changes through [`Control`],
//! which `app` implements; [`answer`] is where an [`AdminError`] becomes an
//! HTTP answer.
//!
//! Exposes [`serve`], [`Admin`], [`Control`], [`NewServer`] and
//! [`AdminError`].

mod api;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use http::{header, HeaderValue, Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::body::Body;
use crate::listener::{accept_loop, DrainWatch};
use crate::metrics::sampler::Sampler;
use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::serve_gracefully;

/// What the admin API asks of the application: reloads and runtime
/// changes to pools. Errors come back as [`AdminError`]s, already sorted
/// into not found, conflict, bad request or failure.
pub trait Control: Send + Sync + 'static {
    /// Loads the config file again; the report of what changed, as JSON,
    /// or why the reload was refused.
    fn reload(&self) -> impl Future<Output = Result<serde_json::Value, String>> + Send;
    fn add_server(&self, s: NewServer) -> impl Future<Output = Result<(), AdminError>> + Send;
    fn set_weight(
        &self,
        pool: &str,
        server: &str,
        weight: u32,
    ) -> impl Future<Output = Result<(), AdminError>> + Send;
    fn drain(&self, pool: &str, server: &str) -> impl Future<Output = Result<(), AdminError>> + Send;
    /// Whether the server was drained.
    fn undrain(&self, pool: &str, server: &str) -> impl Future<Output = Result<bool, AdminError>> + Send;
    fn remove(&self, pool: &str, server: &str) -> impl Future<Output = Result<(), AdminError>> + Send;
    /// The running configuration as the dashboard shows it (no secrets),
    /// with the version, uptime and the last reload's result.
    fn config_view(&self) -> impl Future<Output = serde_json::Value> + Send;
    /// The infrastructure diagram (SVG) of the running config's
    /// `[topology]`; None without one.
    fn plan_svg(&self) -> impl Future<Output = Option<String>> + Send;
}

/// A server added through the API.
#[derive(Debug, Clone)]
pub struct NewServer {
    pub pool: String,
    pub name: String,
    pub address: SocketAddr,
    pub weight: u32,
    /// 0 = no limit.
    pub max_requests: u32,
}

/// What the admin API serves from, and the token it asks for.
#[derive(Debug)]
pub struct Admin<C> {
    pub control: C,
    pub runtime: Arc<ArcSwap<Runtime>>,
    pub sampler: Arc<Sampler>,
    pub metrics: Arc<Metrics>,
    pub token: Option<String>,
    /// What `GET /health/ready` answers from.
    pub readiness: Arc<crate::runtime::Readiness>,
}

/// Why an admin request failed; [`answer`] turns it into a JSON answer.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed here")]
    MethodNotAllowed,
    #[error("{0}")]
    CrossSite(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Failed(String),
}

/// The admin API's answer for `err`: a JSON object naming the problem (the
/// one place admin errors become HTTP answers).
pub fn answer(err: &AdminError) -> Response<Body> {
    let status = match err {
        AdminError::Unauthorized => StatusCode::UNAUTHORIZED,
        AdminError::NotFound(_) => StatusCode::NOT_FOUND,
        AdminError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        AdminError::CrossSite(_) => StatusCode::FORBIDDEN,
        AdminError::BadRequest(_) => StatusCode::BAD_REQUEST,
        AdminError::Conflict(_) => StatusCode::CONFLICT,
        AdminError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let body = serde_json::json!({ "error": err.to_string() });
    let mut resp = Response::new(Body::full(format!("{body}\n")));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

/// Serves the admin API on `socket` until the drain.
pub fn serve<C: Control>(socket: TcpListener, admin: Arc<Admin<C>>, watch: DrainWatch) -> JoinHandle<()> {
    let w0 = watch.clone();
    tokio::spawn(accept_loop(socket, watch, move |stream, _peer| {
        let (admin, w) = (admin.clone(), w0.clone());
        async move {
            let svc = service_fn(move |req| {
                let admin = admin.clone();
                async move { Ok::<_, Infallible>(api::handle(req, &admin).await) }
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
