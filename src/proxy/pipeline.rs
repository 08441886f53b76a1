//! The request pipeline, in order. Each step is a short function below;
//! [`handle`] is the only entry point and never fails: errors go through
//! [`super::rescue::answer`].

use std::sync::Arc;
use std::time::Instant;

use http::header::{self, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::attempt::{self, Answered};
use super::bodyguard::{BodyFlag, BodyLimits, GuardedBody, Tripped};
use super::headers::{self, X_REQUEST_ID};
use super::rescue::{self, ProxyError};
use super::upstream::UpBody;
use super::Body;
use super::ConnCtx;
use crate::accesslog::Record;
use crate::balancer::Backend;
use crate::config::model::UpstreamProtocol;
use crate::firewall::rules::{evaluate, RequestView, Verdict};
use crate::runtime::router::normalise_host;
use crate::runtime::Runtime;
use crate::stats::RequestStats;

/// Answers one client request.
pub async fn handle(mut req: Request<Incoming>, cx: Arc<ConnCtx>) -> Response<Body> {
    let rt = cx.runtime.load_full();
    let started = Instant::now();
    let method = req.method().clone();
    // 2. request id: kept when sane, created otherwise; echoed on every answer.
    let rid = headers::request_id(req.headers_mut());
    let logged = rt.access_log.as_ref().map(|_| LogParts::of(&req));
    // The client: the connection's, or the one a trusted proxy forwarded for.
    let client = if cx.via_trusted {
        headers::forwarded_client(req.headers(), &rt.trusted_proxies).unwrap_or(cx.peer.ip())
    } else {
        cx.peer.ip()
    };
    let mut seen = Seen {
        client: Some(client),
        ..Seen::default()
    };
    let resp = match forward(req, &cx, &rt, &rid, started, &mut seen).await {
        Ok(resp) => resp,
        Err(e) => {
            if let Some(what) = e.violation() {
                rt.bans.violation(client, what);
                let (rule, action) = match &e {
                    ProxyError::Denied { rule, status, .. } if status.as_u16() == 429 => {
                        (rule.as_str(), "rate_limit")
                    }
                    ProxyError::Denied { rule, .. } => (rule.as_str(), "deny"),
                    _ => (what, "reject"),
                };
                let target = seen.target.take().unwrap_or_else(|| logged_path(&e));
                rt.events
                    .record(client, rule, action, &format!("{method} {target}"));
            }
            rescue::answer(&e, Some(&rid))
        }
    };
    // 9. account for it: listener, route and server counters; access log.
    let (status, latency) = (resp.status().as_u16(), started.elapsed());
    let listener = rt.listeners.get(cx.listener).and_then(Option::as_ref);
    if rt.metrics_enabled {
        if let Some(l) = listener {
            l.stats.requests.record(&method, status, latency);
        }
        if let Some(r) = seen.route {
            r.record(&method, status, latency);
        }
        if let Some(s) = &seen.server {
            s.stats.requests.record(&method, status, latency);
        }
    }
    if let (Some(log), Some(p), Some(l)) = (&rt.access_log, logged, listener) {
        log.log(Record {
            time: std::time::SystemTime::now(),
            client,
            method,
            uri: p.uri,
            version: p.version,
            host: p.host,
            user_agent: p.user_agent,
            referer: p.referer,
            status,
            bytes: http_body::Body::size_hint(resp.body()).exact(),
            duration: latency,
            request_id: rid,
            listener: l.log_name.clone(),
            server: seen.server.as_ref().map(|s| s.name.clone()),
        });
    }
    resp
}

/// A short description of what was refused, for firewall events.
fn logged_path(e: &ProxyError) -> String {
    match e {
        ProxyError::BadPath(p) => format!("({p})"),
        other => other.to_string(),
    }
}

/// What the access log needs of a request, taken before it is forwarded.
struct LogParts {
    uri: Uri,
    version: Version,
    host: Option<HeaderValue>,
    user_agent: Option<HeaderValue>,
    referer: Option<HeaderValue>,
}

impl LogParts {
    fn of<B>(req: &Request<B>) -> Self {
        let h = req.headers();
        LogParts {
            uri: req.uri().clone(),
            version: req.version(),
            host: host_of(req),
            user_agent: h.get(header::USER_AGENT).cloned(),
            referer: h.get(header::REFERER).cloned(),
        }
    }
}

/// What the pipeline learnt about a request, for accounting.
#[derive(Debug, Default)]
pub struct Seen<'a> {
    pub route: Option<&'a Arc<RequestStats>>,
    /// The last server tried.
    pub server: Option<Arc<Backend>>,
    /// The client address rules, bans, hashing and logs use.
    pub client: Option<std::net::IpAddr>,
    /// The (normalised) path of a request the firewall rejected.
    pub target: Option<String>,
}

async fn forward<'rt>(
    mut req: Request<Incoming>,
    cx: &ConnCtx,
    rt: &'rt Runtime,
    rid: &HeaderValue,
    started: Instant,
    seen: &mut Seen<'rt>,
) -> Result<Response<Body>, ProxyError> {
    let Some(Some(l)) = rt.listeners.get(cx.listener) else {
        return Err(ProxyError::BadRequest("listener is gone"));
    };
    // 1. framing: refuse what two parsers could read differently, and
    // targets longer than allowed.
    check_framing(&req, cx)?;
    if req.uri().path_and_query().map_or(0, |p| p.as_str().len()) > rt.limits.max_uri_length {
        return Err(ProxyError::UriTooLong);
    }
    let host_value = host_of(&req);
    // 3. a redirect-only listener answers at once.
    if let Some(port) = l.redirect_port {
        return Ok(redirect(&req, host_value.as_ref(), port, rid));
    }
    let host = host_value
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .map(normalise_host)
        .unwrap_or_default();
    // 3b. firewall: normalise the path (refusing dangerous forms), then
    // the request rules, in order.
    // `None`: the path is already in normal form (no allocation).
    let normalized = match crate::firewall::path::normalize_changed(req.uri().path()) {
        Ok(p) => p,
        Err(e) => {
            l.stats
                .bad_paths
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(ProxyError::BadPath(e));
        }
    };
    // 4. route by host and (normalised) path; the rules below may count by route.
    let found = l
        .router
        .find(&host, normalized.as_deref().unwrap_or(req.uri().path()));
    // 4b. firewall rules, in order.
    if !l.rules.is_empty() {
        let path = normalized.as_deref().unwrap_or(req.uri().path());
        let view = RequestView {
            method: req.method(),
            host: &host,
            path,
            query: req.uri().query(),
            headers: req.headers(),
            client: seen.client.unwrap_or(cx.peer.ip()),
            sni: cx.sni.get().map(|s| &**s),
            route: found.map_or("-", |hit| hit.key),
        };
        if let Verdict::Reject {
            rule,
            status,
            body,
            delay,
            retry_after,
        } = evaluate(&l.rules, &view)
        {
            seen.target = Some(path.to_string());
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            return Err(ProxyError::Denied {
                rule: rule.rule.name.clone(),
                status,
                body,
                retry_after,
            });
        }
    }
    let hit = found.ok_or_else(|| ProxyError::NoRoute {
        host: host.clone(),
        path: normalized.clone().unwrap_or_else(|| req.uri().path().to_string()),
    })?;
    let (pool_idx, route_stats) = (hit.pool, hit.stats);
    // 4c. body limits: a declared length over the limit is refused at once;
    // a streamed body is watched for size and speed.
    let limits = &rt.limits;
    let max_body = hit.max_body.or(limits.max_body);
    if let Some(max) = max_body {
        // hyper has validated Content-Length; read it only when a limit applies.
        let declared = http_body::Body::size_hint(req.body()).exact();
        if declared.is_some_and(|len| len > max) {
            return Err(ProxyError::BodyTooLarge(max));
        }
    }
    seen.route = Some(route_stats);
    let pool = &rt.pools[pool_idx];
    // 5. rewrite the request for the backend.
    // Upgrades: only to protocols the route allows (never h2c); any other
    // `Upgrade` is stripped below and the request goes on as a plain one.
    let upgrade =
        req.version() == Version::HTTP_11 && headers::allowed_upgrade(req.headers_mut(), hit.upgrades);
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers, upgrade);
    headers::set_forwarded(
        &mut parts.headers,
        &cx.client,
        host_value.as_ref(),
        cx.via_trusted,
    );
    if let Some(h) = &host_value {
        parts.headers.insert(header::HOST, h.clone());
    }
    // The backend sees the normalised path (and the query as sent).
    let path = match &normalized {
        None => parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/")),
        Some(p) => match parts.uri.query() {
            None => PathAndQuery::try_from(p.as_str()),
            Some(q) => PathAndQuery::try_from(format!("{p}?{q}")),
        }
        .map_err(|_| ProxyError::BadRequest("the request target cannot be forwarded"))?,
    };
    match pool.protocol {
        UpstreamProtocol::Http1 => {
            parts.version = Version::HTTP_11;
            parts.uri = Uri::from(path);
        }
        UpstreamProtocol::H2c => {
            parts.version = Version::HTTP_2;
            let authority = host_value
                .as_ref()
                .and_then(|h| Authority::try_from(h.as_bytes()).ok())
                .unwrap_or_else(|| Authority::from_static("backend"));
            parts.uri = Uri::builder()
                .scheme(Scheme::HTTP)
                .authority(authority)
                .path_and_query(path)
                .build()
                .map_err(|_| ProxyError::BadRequest("the request target cannot be forwarded"))?;
            parts.headers.remove(header::HOST);
        }
    }
    let guarded = !http_body::Body::is_end_stream(&body) && (max_body.is_some() || limits.min_body_rate > 0);
    let flag = guarded.then(|| Arc::new(BodyFlag::default()));
    let body = match &flag {
        Some(f) => {
            let l = BodyLimits {
                max: max_body,
                min_rate: limits.min_body_rate,
                grace: limits.body_grace,
            };
            UpBody::Guarded(GuardedBody::new(body, l, f.clone()))
        }
        None => UpBody::Client(body),
    };
    let up = Request::from_parts(parts, body);
    // 6-7. pick a server and forward, trying another one when that is safe.
    let Answered {
        mut resp,
        server,
        set_cookie,
    } = match attempt::send(
        up,
        pool,
        rt,
        started,
        seen.client.unwrap_or(cx.peer.ip()),
        &mut seen.server,
    )
    .await
    {
        Ok(a) => a,
        Err(e) => {
            return Err(match flag.as_ref().and_then(|f| f.get()) {
                Some(Tripped::TooLarge) => ProxyError::BodyTooLarge(max_body.unwrap_or(0)),
                Some(Tripped::TooSlow) => ProxyError::BodyTooSlow,
                None => e,
            })
        }
    };
    // 8. rewrite the response; relay the upgraded connection if any.
    let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
    if switching && !upgrade {
        // A switch nobody asked for (or that was not forwarded) would leave
        // the client speaking HTTP to a tunnel.
        return Err(ProxyError::BadResponse {
            server: server.name.clone(),
            what: "101 Switching Protocols to a request that asked for no upgrade",
        });
    }
    headers::strip_hop_by_hop(resp.headers_mut(), switching && upgrade);
    resp.headers_mut().insert(X_REQUEST_ID, rid.clone());
    if let Some(hsts) = &l.hsts {
        resp.headers_mut()
            .insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
    }
    if let Some(c) = set_cookie {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    if switching {
        if let Some(client) = client_upgrade {
            relay_upgrade(client, &mut resp, server.name.clone());
        }
    }
    Ok(resp)
}

/// Rejects requests whose body length two parsers could disagree on.
fn check_framing<B>(req: &Request<B>, cx: &ConnCtx) -> Result<(), ProxyError> {
    let h = req.headers();
    // hyper drops Content-Length when Transfer-Encoding is present; the
    // head watch saw the raw head (see `framing`).
    let raw_both = req.version() <= Version::HTTP_11 && cx.framing.take();
    if raw_both || h.contains_key(header::TRANSFER_ENCODING) && h.contains_key(header::CONTENT_LENGTH) {
        return Err(ProxyError::BadRequest(
            "both Content-Length and Transfer-Encoding are present",
        ));
    }
    let mut lens = h.get_all(header::CONTENT_LENGTH).iter();
    if let Some(first) = lens.next() {
        if lens.any(|v| v != first) {
            return Err(ProxyError::BadRequest("differing Content-Length headers"));
        }
    }
    Ok(())
}

/// The request's host: `Host` for HTTP/1.1, the `:authority` for HTTP/2.
fn host_of<B>(req: &Request<B>) -> Option<HeaderValue> {
    if let Some(h) = req.headers().get(header::HOST) {
        return Some(h.clone());
    }
    req.uri()
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
}

/// A 308 to the same host and path on the HTTPS listener's port.
fn redirect<B>(req: &Request<B>, host: Option<&HeaderValue>, port: u16, rid: &HeaderValue) -> Response<Body> {
    let raw = host.and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let name = match raw.strip_prefix('[') {
        Some(rest) => format!("[{}]", rest.split(']').next().unwrap_or(rest)),
        None => raw.rsplit_once(':').map_or(raw, |(h, _)| h).to_string(),
    };
    let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = if port == 443 {
        format!("https://{name}{pq}")
    } else {
        format!("https://{name}:{port}{pq}")
    };
    let mut resp = Response::new(Body::Empty);
    *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
    if let Ok(v) = HeaderValue::try_from(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut().insert(X_REQUEST_ID, rid.clone());
    resp
}

/// Joins the client's and the backend's upgraded connections and copies
/// bytes both ways until either side closes.
fn relay_upgrade(client: hyper::upgrade::OnUpgrade, resp: &mut Response<Body>, server: String) {
    let backend = hyper::upgrade::on(&mut *resp);
    tokio::spawn(async move {
        let (c, b) = match tokio::try_join!(client, backend) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(server = %server, error = %e, "upgrade failed");
                return;
            }
        };
        let (mut c, mut b) = (TokioIo::new(c), TokioIo::new(b));
        if let Err(e) = tokio::io::copy_bidirectional(&mut c, &mut b).await {
            tracing::debug!(server = %server, error = %e, "upgraded connection ended");
        }
    });
}
