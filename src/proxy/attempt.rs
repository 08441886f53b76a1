//! Step 8 of the pipeline: sending a request to a server of its pool, and
//! trying another server when that is safe.
//!
//! A request goes to another server only when
//! - nothing of it reached the backend (connect failed): any method; or
//! - it is idempotent with no body, so it can be replayed, and the backend
//!   closed or reset the connection before a response header, or sent
//!   none within the pool's `per_try_timeout`.
//!
//! Never after a response header arrived, so never after any response byte
//! reached the client. Each pool's retry budget bounds retries as a share of
//! requests. A reused connection the backend had closed is the upstream
//! module's business (the request goes out again to the same server).
//!
//! Every try's outcome feeds passive ejection, except failures that are the
//! client's (a body cut off for a limit, a client that went away: see
//! [`ProxyError::is_client_fault`]) and failures of tries sent before the
//! server's last ejection.

use std::sync::Arc;
use std::time::Duration;

use crate::units::clock_ms_at;

use http::HeaderValue;

use super::message::{Answer, Outgoing};
use super::rescue::ProxyError;
use super::upstream::{self, SendError, Target, UpBody};
use super::Body;
use crate::balancer::{Backend, Health, PickInput, RequestGuard};
use crate::config::model::UpstreamProtocol;
use crate::fields::{Edited, Edits};
use crate::runtime::{PoolRt, Runtime};

/// A response header from a backend, with what the pipeline still needs.
#[derive(Debug)]
pub struct Answered<'a> {
    pub answer: Answer,
    /// Borrowed from the runtime the request runs on: no reference count
    /// of a shared server is touched to name it.
    pub server: &'a Arc<Backend>,
    pub set_cookie: Option<HeaderValue>,
}

/// A request no server answered: why, and the last server tried (for the
/// server's counters).
#[derive(Debug)]
pub struct Failed<'a> {
    pub error: ProxyError,
    pub server: Option<&'a Arc<Backend>>,
}

/// What stays in flight until the response body is done.
#[derive(Debug)]
pub struct InFlight {
    _server: RequestGuard,
}

/// Sends `out` (the request as the backend gets it) with `body` to a
/// server of `pool`. The request is borrowed, so a try that may be
/// repeated sends the same head again (no copy for requests that are never
/// retried). One async function, not a wrapper around another: each level
/// of nesting would copy this large future once more per request.
pub async fn send<'a>(
    out: &Outgoing<'_>,
    body: UpBody,
    pool: &'a PoolRt,
    rt: &Runtime,
    started: tokio::time::Instant,
    client: std::net::IpAddr,
) -> Result<Answered<'a>, Failed<'a>> {
    let failed = |error, server| Failed { error, server };
    let pool_guard = pool
        .stats
        .enter(pool.max_requests)
        .map_err(|_| failed(ProxyError::Overloaded(pool.name.clone()), None))?;
    pool.budget.record_request();
    // Idempotent with no body: it can be sent again to another server.
    let replayable = pool.retries > 0
        && out.idempotent()
        && http_body::Body::is_end_stream(&body)
        && pool.balancer.servers().len() > 1;
    // A try that gets no response head within this goes elsewhere (only
    // requests that can be replayed; others keep the response timeout).
    let per_try = pool.per_try_timeout.filter(|_| replayable);
    let mut next = Some(body);
    let mut avoid = [usize::MAX; 11];
    let mut last: Option<ProxyError> = None;
    // The last server tried, for its counters when all tries fail.
    let mut tried: Option<&'a Arc<Backend>> = None;
    let t = &rt.timeouts;
    let headers = Edited {
        head: out.head,
        edits: out.edits,
    };
    for attempt in 0..=pool.retries as usize {
        // The request's arrival is the first try's start (no clock read);
        // a retry reads the clock.
        let try_started = if attempt == 0 {
            started
        } else {
            tokio::time::Instant::now()
        };
        let sent_ms = clock_ms_at(try_started);
        let Some(pick) = pool.balancer.pick_at(
            &PickInput {
                client_ip: client,
                headers: &headers,
            },
            &avoid[..attempt],
            sent_ms,
        ) else {
            return Err(failed(last.unwrap_or_else(|| nothing_available(pool)), tried));
        };
        let (index, set_cookie) = (pick.index, pick.set_cookie);
        let Some(server) = pool.balancer.servers().get(index) else {
            break;
        };
        let Some(body) = next.take().or_else(|| replayable.then_some(UpBody::Empty)) else {
            break;
        };
        tried = Some(server);
        let mut guard = server.begin_at(try_started.into_std());
        // The wait for the response head, counted from when the request
        // has been sent whole: the response-header timeout, within what is
        // left of the whole-request one, and the per-try timeout.
        let left = t
            .request
            .saturating_sub(try_started.saturating_duration_since(started));
        let wait = per_try
            .map_or(t.response_header, |p| p.min(t.response_header))
            .min(left);
        let target = Target {
            server: &server.name,
            backend: server,
            addr: server.addr,
            connect_timeout: t.connect,
            idle_timeout: t.backend_idle,
            max_idle: pool.max_idle,
            tls: pool.tls.as_ref(),
            wait,
            now: try_started,
        };
        let sent = match pool.protocol {
            UpstreamProtocol::Http1 => upstream::send_h1(target, out, body).await,
            UpstreamProtocol::H2c | UpstreamProtocol::H2 => upstream::send_h2(target, out, body).await,
        };
        match sent {
            Ok(reply) => {
                // Time to first byte: what the server did, not how fast
                // the client reads the body (P2C's latency).
                let took = reply.at.saturating_duration_since(try_started);
                server.stats.header_latency.observe(took);
                guard.record_at(took, reply.at.into_std());
                let bad = pool.outlier.on_5xx && reply.status.is_server_error();
                record(pool, server, !bad, sent_ms);
                let mut body = reply.body.with_in_flight(InFlight { _server: guard });
                if let Some(g) = pool_guard {
                    body.keep_pool_guard(g);
                }
                let answer = Answer {
                    status: reply.status,
                    head: reply.head,
                    edits: Edits::default(),
                    body: Body::Stream(body),
                    at: Some(reply.at),
                };
                return Ok(Answered {
                    answer,
                    server,
                    set_cookie,
                });
            }
            // The client's doing: no retry, and the server is not blamed.
            Err(SendError { error, .. }) if error.is_client_fault() => {
                return Err(failed(error, Some(server)));
            }
            Err(SendError {
                error,
                unsent,
                reset,
                timed_out,
            }) => {
                record(pool, server, false, sent_ms);
                let again = replayable && (reset || (timed_out && per_try.is_some()));
                let safe = unsent.is_some() || again;
                if !safe || attempt >= pool.retries as usize || !pool.budget.try_retry() {
                    return Err(failed(error, Some(server)));
                }
                pool.stats
                    .retries
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::debug!(pool = %pool.name, server = %server.name, "{error}; trying another server");
                avoid[attempt] = index;
                next = unsent;
                last = Some(error);
            }
        }
    }
    Err(failed(last.unwrap_or_else(|| nothing_available(pool)), tried))
}

/// Why no server could take the request.
fn nothing_available(pool: &PoolRt) -> ProxyError {
    if pool.balancer.servers().iter().any(|s| s.saturated()) {
        pool.stats
            .overloaded
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ProxyError::Overloaded(pool.name.clone())
    } else {
        ProxyError::NoServer(pool.name.clone())
    }
}

/// Feeds the outcome of one try, sent at `sent_ms` (a `clock_ms()`
/// value), to passive ejection. A failure of a try sent before the
/// server's last ejection, or while it is ejected, is not counted.
fn record(pool: &PoolRt, server: &Backend, ok: bool, sent_ms: u64) {
    if ok {
        server.state.record_success();
        return;
    }
    let o = &pool.outlier;
    if o.consecutive_failures == 0 {
        return;
    }
    let Some(failures) = server.state.record_failure(sent_ms) else {
        return;
    };
    if failures < o.consecutive_failures {
        return;
    }
    let total = pool.balancer.servers().len();
    let max = total * o.max_ejected_percent as usize / 100;
    if pool.balancer.ejected_count() >= max {
        return;
    }
    let d: Duration = server.state.eject(o.base_ejection_time);
    if pool.has_check {
        // Back only through the active check.
        server.state.set_health_because(
            Health::Down,
            Some(format!("ejected after {failures} failed requests in a row")),
        );
    }
    pool.stats
        .ejections
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::warn!(pool = %pool.name, server = %server.name, failures, ejected_for = ?d, "server ejected after consecutive failures");
}
