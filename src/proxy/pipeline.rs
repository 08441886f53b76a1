//! The request pipeline, in order. [`handle`] is the only entry point and
//! never fails: errors go through [`super::rescue::answer`]. Each step is a
//! short function below, numbered as in `docs/ARCHITECTURE.md`:
//!
//! 1. framing: refuse what two parsers could read differently, and targets
//!    longer than allowed
//! 2. request id: kept when sane, created otherwise; client-certificate
//!    headers: the client's removed, the verified identity set
//! 3. normalise: a redirect-only listener answers; host and path normalised
//! 4. route: by host and normalised path
//! 5. rules: the firewall's request rules, in order
//! 6. limits: the request body's size and speed
//! 7. forward headers: the request rewritten for the backend
//! 8. pick and send: a server of the pool, another one when that is safe
//! 9. response rewrite: hop-by-hop headers, request id, HSTS, cookie, upgrades
//! 10. account: counters, firewall events and bans, access log

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::{self, HeaderValue};
use http::request::Parts;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::TokioIo;

use super::attempt::{self, Answered, Failed};
use super::bodyguard::{BodyLimits, GuardedBody};
use super::h1::reqbody::ClientBody;
use super::headers::{self, ForwardedFor, X_REQUEST_ID};
use super::rescue::{self, ProxyError};
use super::upstream::UpBody;
use super::Body;
use super::ConnCtx;
use crate::accesslog::Record;
use crate::balancer::Backend;
use crate::config::model::{Action, UpstreamProtocol};
use crate::firewall::rules::{evaluate, RequestView, RuleRt, Verdict};
use crate::runtime::router::{normalise_host, Hit};
use crate::runtime::{ListenerRt, PoolRt, Runtime};
use crate::stats::RequestStats;

/// Answers one client request.
pub async fn handle(mut req: Request<ClientBody>, cx: Arc<ConnCtx>) -> Response<Body> {
    let rt = cx.runtime.load_full();
    let started = Instant::now();
    let framed = framing(&req, &rt);
    let rid = headers::request_id(req.headers_mut());
    // Before the firewall's rules, which may match on them.
    headers::client_cert(req.headers_mut(), cx.client_cert.get());
    let method = req.method().clone();
    let logged = rt.access_log.as_ref().map(|_| LogParts::of(&req));
    // The client: the connection's, or the one a trusted proxy forwarded for.
    let forwarded = cx
        .via_trusted
        .then(|| ForwardedFor::read(req.headers(), &rt.trusted_proxies));
    let client = forwarded.as_ref().and_then(|f| f.client).unwrap_or(cx.peer.ip());
    let mut x = Exchange {
        rt: &rt,
        cx: &cx,
        rid: &rid,
        started,
        client,
        forwarded,
        route: None,
        server: None,
        refused: None,
        error: None,
    };
    let result = match (framed, rt.listeners.get(cx.listener)) {
        (Err(e), _) => Err(e),
        (Ok(()), Some(Some(l))) => x.forward(req, l).await,
        (Ok(()), _) => Err(ProxyError::BadRequest("listener is gone")),
    };
    let resp = match result {
        Ok(resp) => resp,
        Err(e) => {
            x.record_refusal(&e, &method);
            x.error = Some(e.code());
            if matches!(e, ProxyError::ClientAborted) {
                if let Some(Some(l)) = rt.listeners.get(cx.listener) {
                    l.stats
                        .client_aborts
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            rescue::answer(&e, Some(&rid))
        }
    };
    x.account(&method, &resp, logged);
    resp
}

/// One request on its way through the steps, and what they learnt that
/// the accounting needs.
struct Exchange<'a> {
    rt: &'a Runtime,
    cx: &'a ConnCtx,
    rid: &'a HeaderValue,
    started: Instant,
    /// The client address rules, bans, hashing and logs use.
    client: IpAddr,
    /// What a trusted proxy forwarded (`None`: the peer is not trusted).
    forwarded: Option<ForwardedFor>,
    route: Option<&'a Arc<RequestStats>>,
    /// The last server tried.
    server: Option<Arc<Backend>>,
    /// The (normalised) path of a request the firewall rules refused.
    refused: Option<String>,
    /// What went wrong, for the access log.
    error: Option<&'static str>,
}

/// The request's host and path as the route and rules see them (step 3).
struct Normalised {
    host_value: Option<HeaderValue>,
    /// The normalised path when it differs from the request's.
    normalized: Option<String>,
}

impl Normalised {
    /// Lower case, without port (borrowed when already so).
    fn host(&self) -> std::borrow::Cow<'_, str> {
        self.host_value
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .map(normalise_host)
            .unwrap_or_default()
    }

    /// The normalised path of a request whose path is `sent`.
    fn path<'p>(&'p self, sent: &'p str) -> &'p str {
        self.normalized.as_deref().unwrap_or(sent)
    }
}

impl<'a> Exchange<'a> {
    /// Steps 3–9.
    async fn forward(
        &mut self,
        req: Request<ClientBody>,
        l: &'a ListenerRt,
    ) -> Result<Response<Body>, ProxyError> {
        // 3. an ACME HTTP-01 validation, and a redirect-only listener,
        // are answered at once; then host and path.
        if !l.https && !self.rt.acme_http01.is_empty() {
            if let Some(answer) = acme_http01(&req, self.rt) {
                return Ok(answer);
            }
        }
        if let Some(port) = l.redirect_port {
            return Ok(redirect(&req, host_of(&req).as_ref(), port, self.rid));
        }
        let target = normalise(&req, l)?;
        let hit = {
            let (host, path) = (target.host(), target.path(req.uri().path()));
            // 4. route; the rules below may count by route.
            let found = l.router.find(&host, path);
            // 5. firewall rules (a tarpit waits before answering); a
            // cluster-scope rate limit asks the fleet's Redis, then the
            // rules after it run.
            let mut from = 0;
            loop {
                match self.rules(&req, l, &host, path, found.as_ref(), from) {
                    Verdict::Shared { at, rule, key } => {
                        // Boxed: the Redis call's future would otherwise
                        // grow every request's future, cluster rule or not.
                        let asked =
                            Box::pin(self.shared_limit(&req, rule, &host, path, found.as_ref(), &key));
                        if let Some(refusal) = asked.await {
                            return Err(refusal);
                        }
                        from = at + 1;
                    }
                    verdict => {
                        let Some((refusal, delay)) = self.refusal(verdict, path) else {
                            break;
                        };
                        if !delay.is_zero() {
                            tokio::time::sleep(delay).await;
                        }
                        return Err(refusal);
                    }
                }
            }
            found.ok_or_else(|| ProxyError::NoRoute {
                host: host.into_owned(),
                path: path.to_string(),
            })?
        };
        self.route = Some(hit.stats);
        // 6. body limits.
        let limits = body_limits(&req, &hit, self.rt)?;
        let pool = &self.rt.pools[hit.pool];
        // 7. rewrite the request for the backend.
        let (up, upgrade) = self.rewrite(req, &hit, pool, target, limits)?;
        // 8. pick a server and forward, trying another one when that is safe.
        let answered = match attempt::send(up, pool, self.rt, self.started, self.client).await {
            Ok(a) => a,
            Err(Failed { error, server }) => {
                self.server = server;
                return Err(error);
            }
        };
        self.server = Some(answered.server.clone());
        // 9. rewrite the response; relay the upgraded connection if any.
        respond(answered, upgrade, l, self.rid)
    }

    /// Step 5: the listener's rules from rule `from` on, in order; a
    /// cluster-scope rate limit stops the walk for the caller to ask Redis,
    /// its `at` counted from the listener's first rule. (Not async: a
    /// future of its own would be one more copy per request.)
    fn rules(
        &self,
        req: &Request<ClientBody>,
        l: &'a ListenerRt,
        host: &str,
        path: &str,
        found: Option<&Hit<'_>>,
        from: usize,
    ) -> Verdict<'a> {
        let Some(rules) = l.rules.get(from..).filter(|r| !r.is_empty()) else {
            return Verdict::Pass;
        };
        let view = self.view(req, host, path, found);
        // With a cluster configured, its rules always ask it: while Redis is
        // away the answer comes at once, counted as a local decision.
        let shared = self.rt.cluster.is_some();
        match evaluate(rules, &view, shared) {
            Verdict::Shared { at, rule, key } => Verdict::Shared {
                at: from + at,
                rule,
                key,
            },
            other => other,
        }
    }

    /// What the rules see of a request.
    fn view<'v>(
        &self,
        req: &'v Request<ClientBody>,
        host: &'v str,
        path: &'v str,
        found: Option<&'v Hit<'_>>,
    ) -> RequestView<'v>
    where
        'a: 'v,
    {
        RequestView {
            method: req.method(),
            host,
            path,
            query: req.uri().query(),
            headers: req.headers(),
            client: self.client,
            sni: self.cx.sni.get().map(|s| &**s),
            route: found.map_or("-", |hit| hit.key),
        }
    }

    /// A rejection as the error to answer, and the tarpit delay.
    fn refusal(&mut self, v: Verdict<'_>, path: &str) -> Option<(ProxyError, std::time::Duration)> {
        let Verdict::Reject {
            rule,
            status,
            body,
            delay,
            retry_after,
        } = v
        else {
            return None;
        };
        self.refused = Some(path.to_string());
        let refusal = ProxyError::Denied {
            rule: rule.rule.name.clone(),
            status,
            body,
            retry_after,
        };
        Some((refusal, delay))
    }

    /// `rule`, a cluster-scope rate limit: the fleet's bucket `key`
    /// decides; when Redis cannot, the rule's local bucket does.
    async fn shared_limit(
        &mut self,
        req: &Request<ClientBody>,
        rule: &RuleRt,
        host: &str,
        path: &str,
        found: Option<&Hit<'_>>,
        key: &str,
    ) -> Option<ProxyError> {
        let decided = match (&self.rt.cluster, &rule.rule.action) {
            (
                Some(c),
                &Action::RateLimit {
                    per_second, burst, ..
                },
            ) => c.rate(key, per_second, burst).await,
            _ => None,
        };
        let view = self.view(req, host, path, found);
        let verdict = match decided {
            Some(Ok(())) => return None,
            Some(Err(wait)) => rule.limited(wait, &view),
            None => rule.check_local(&view)?,
        };
        self.refusal(verdict, path).map(|(refusal, _)| refusal)
    }

    /// Step 7: hop-by-hop headers out, forwarding headers in, the host and
    /// the normalised path in the form the pool's protocol wants, the body
    /// under its limits. Returns the request and, for an upgrade the route
    /// allows, the client's side of it.
    fn rewrite(
        &self,
        mut req: Request<ClientBody>,
        hit: &Hit<'_>,
        pool: &PoolRt,
        target: Normalised,
        limits: BodyLimits,
    ) -> Result<(Request<UpBody>, Option<ClientUpgrade>), ProxyError> {
        // Upgrades: only to protocols the route allows (never h2c); any other
        // `Upgrade` is stripped and the request goes on as a plain one.
        let upgrade =
            req.version() == Version::HTTP_11 && headers::allowed_upgrade(req.headers_mut(), hit.upgrades);
        let client_upgrade = upgrade.then(|| match req.body() {
            ClientBody::Hyper(_) => ClientUpgrade::Hyper(hyper::upgrade::on(&mut req)),
            ClientBody::Engine(_) => ClientUpgrade::Connection,
        });
        let (mut parts, body) = req.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers, upgrade);
        headers::set_forwarded(
            &mut parts.headers,
            &self.cx.client,
            target.host_value.as_ref(),
            self.forwarded.as_ref(),
        );
        let path = backend_path(&parts, target.normalized)?;
        target_for(&mut parts, pool.protocol, target.host_value, path)?;
        // Every body is watched (its guard also tells when it has been
        // sent whole, and whether the client broke it off).
        let body = if http_body::Body::is_end_stream(&body) {
            UpBody::Client(body)
        } else {
            UpBody::Guarded(GuardedBody::new(body, limits))
        };
        Ok((Request::from_parts(parts, body), client_upgrade))
    }

    /// Step 10 for a refused request: counted by reason, a violation
    /// towards a ban and a firewall event, for the errors that are the
    /// client's doing.
    fn record_refusal(&mut self, e: &ProxyError, method: &http::Method) {
        if e.refusal().is_none() {
            return;
        }
        let target = self.refused.take();
        let what = Described {
            method,
            target: target.as_deref(),
            e,
        };
        super::refusals::record(self.rt, self.cx.listener, self.client, e, what);
    }

    /// Step 10: listener, route and server counters; the access log.
    fn account(self, method: &http::Method, resp: &Response<Body>, logged: Option<LogParts>) {
        let (status, latency) = (resp.status().as_u16(), self.started.elapsed());
        let listener = self.rt.listeners.get(self.cx.listener).and_then(Option::as_ref);
        if self.rt.metrics_enabled {
            if let Some(l) = listener {
                l.stats.requests.record(method, status, latency);
            }
            if let Some(r) = self.route {
                r.record(method, status, latency);
            }
            if let Some(s) = &self.server {
                s.stats.requests.record(method, status, latency);
            }
        }
        if let (Some(log), Some(p), Some(l)) = (&self.rt.access_log, logged, listener) {
            log.log(Record {
                time: std::time::SystemTime::now(),
                client: self.client,
                method: method.clone(),
                uri: p.uri,
                version: p.version,
                host: p.host,
                user_agent: p.user_agent,
                referer: p.referer,
                status,
                bytes: http_body::Body::size_hint(resp.body()).exact(),
                duration: latency,
                request_id: self.rid.clone(),
                listener: l.log_name.clone(),
                server: self.server.as_ref().map(|s| s.name.clone()),
                error: self.error,
            });
        }
    }
}

/// Step 1: rejects requests whose body length two parsers could disagree
/// on, and targets longer than allowed. HTTP/1.x heads were refused for
/// their framing by the engine's parser (`h1::head`) before they got here;
/// HTTP/2 requests are checked here.
fn framing<B>(req: &Request<B>, rt: &Runtime) -> Result<(), ProxyError> {
    if req.version() == Version::HTTP_2 {
        let h = req.headers();
        if h.contains_key(header::TRANSFER_ENCODING) && h.contains_key(header::CONTENT_LENGTH) {
            return Err(ProxyError::Framing(
                "both Content-Length and Transfer-Encoding are present",
            ));
        }
        let mut lens = h.get_all(header::CONTENT_LENGTH).iter();
        if let Some(first) = lens.next() {
            if lens.any(|v| v != first) {
                return Err(ProxyError::Framing("differing Content-Length headers"));
            }
        }
    }
    if req.uri().path_and_query().map_or(0, |p| p.as_str().len()) > rt.limits.max_uri_length {
        return Err(ProxyError::UriTooLong);
    }
    Ok(())
}

/// Step 3: the host and the path in normal form, refusing dangerous
/// encodings.
fn normalise<B>(req: &Request<B>, l: &ListenerRt) -> Result<Normalised, ProxyError> {
    let host_value = host_of(req);
    // `None`: the path is already in normal form (no allocation).
    let normalized = crate::firewall::path::normalize_changed(req.uri().path()).map_err(|e| {
        l.stats
            .bad_paths
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ProxyError::BadPath(e)
    })?;
    Ok(Normalised {
        host_value,
        normalized,
    })
}

/// Step 6: a declared length over the limit is refused at once; a streamed
/// body will be watched for size, speed and pauses (the limits returned).
fn body_limits<B: http_body::Body>(
    req: &Request<B>,
    hit: &Hit<'_>,
    rt: &Runtime,
) -> Result<BodyLimits, ProxyError> {
    let limits = &rt.limits;
    let max = hit.max_body.or(limits.max_body);
    if let Some(max) = max {
        // hyper has validated Content-Length; read it only when a limit applies.
        let declared = req.body().size_hint().exact();
        if declared.is_some_and(|len| len > max) {
            return Err(ProxyError::BodyTooLarge(max));
        }
    }
    Ok(BodyLimits {
        max,
        min_rate: limits.min_body_rate,
        grace: limits.body_grace,
        idle: rt.timeouts.request_body_idle,
    })
}

/// The path the backend sees: the normalised one (and the query as sent).
fn backend_path(parts: &Parts, normalized: Option<String>) -> Result<PathAndQuery, ProxyError> {
    let cannot = |_| ProxyError::BadRequest("the request target cannot be forwarded");
    match normalized {
        None => Ok(parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"))),
        Some(p) => match parts.uri.query() {
            None => PathAndQuery::try_from(p).map_err(cannot),
            Some(q) => PathAndQuery::try_from(format!("{p}?{q}")).map_err(cannot),
        },
    }
}

/// The version, target and host for the pool's protocol: HTTP/1.1 with an
/// origin-form target and `Host`, or HTTP/2 (h2c) with the host as the
/// authority and no `Host` header.
fn target_for(
    parts: &mut Parts,
    protocol: UpstreamProtocol,
    host: Option<HeaderValue>,
    path: PathAndQuery,
) -> Result<(), ProxyError> {
    match protocol {
        UpstreamProtocol::Http1 => {
            parts.version = Version::HTTP_11;
            parts.uri = Uri::from(path);
            if let Some(h) = host {
                parts.headers.insert(header::HOST, h);
            }
        }
        UpstreamProtocol::H2c | UpstreamProtocol::H2 => {
            parts.version = Version::HTTP_2;
            let authority = host
                .and_then(|h| Authority::try_from(h.as_bytes()).ok())
                .unwrap_or_else(|| Authority::from_static("backend"));
            parts.uri = Uri::builder()
                .scheme(if protocol == UpstreamProtocol::H2 {
                    Scheme::HTTPS
                } else {
                    Scheme::HTTP
                })
                .authority(authority)
                .path_and_query(path)
                .build()
                .map_err(|_| ProxyError::BadRequest("the request target cannot be forwarded"))?;
            parts.headers.remove(header::HOST);
        }
    }
    Ok(())
}

/// Step 9: the backend's response made the client's.
fn respond(
    answered: Answered,
    upgrade: Option<ClientUpgrade>,
    l: &ListenerRt,
    rid: &HeaderValue,
) -> Result<Response<Body>, ProxyError> {
    let Answered {
        mut resp,
        server,
        set_cookie,
    } = answered;
    let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
    let client_upgrade = match (switching, upgrade) {
        // A switch nobody asked for (or that was not forwarded) would leave
        // the client speaking HTTP to a tunnel.
        (true, None) => {
            return Err(ProxyError::BadResponse {
                server: server.name.clone(),
                what: "101 Switching Protocols to a request that asked for no upgrade",
            })
        }
        (true, Some(u)) => Some(u),
        (false, _) => None,
    };
    let h = resp.headers_mut();
    headers::strip_hop_by_hop(h, switching);
    h.insert(X_REQUEST_ID, rid.clone());
    if let Some(hsts) = &l.hsts {
        h.insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
    }
    if let Some(c) = set_cookie {
        h.append(header::SET_COOKIE, c);
    }
    // The engine's connection loop takes the backend's socket from the
    // body once the 101 is written; hyper hands its side over here.
    if let Some(ClientUpgrade::Hyper(client)) = client_upgrade {
        relay_upgrade(client, &mut resp, server.name.clone());
    }
    Ok(resp)
}

/// Who relays an upgraded connection on the client's side.
enum ClientUpgrade {
    /// hyper: its upgraded connection, joined here to the backend's.
    Hyper(hyper::upgrade::OnUpgrade),
    /// The engine's connection loop, after writing the 101.
    Connection,
}

/// What was refused, for firewall events: the method and the target the
/// rules saw, or why the path was refused, or the error.
struct Described<'a> {
    method: &'a http::Method,
    target: Option<&'a str>,
    e: &'a ProxyError,
}

impl std::fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.target, self.e) {
            (Some(t), _) => write!(f, "{} {t}", self.method),
            (None, ProxyError::BadPath(p)) => write!(f, "{} ({p})", self.method),
            (None, other) => write!(f, "{} {other}", self.method),
        }
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
/// The key authorization for a token being validated (RFC 8555 §8.3).
fn acme_http01<B>(req: &Request<B>, rt: &Runtime) -> Option<Response<Body>> {
    let token = req.uri().path().strip_prefix("/.well-known/acme-challenge/")?;
    let answer = rt.acme_http01.get(token)?;
    let mut resp = Response::new(Body::full(answer));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Some(resp)
}

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
/// bytes both ways until either side closes (the bytes the backend sent
/// right after its 101 first).
fn relay_upgrade(client: hyper::upgrade::OnUpgrade, resp: &mut Response<Body>, server: String) {
    let backend = match std::mem::replace(resp.body_mut(), Body::Empty) {
        Body::Stream(mut b) => b.take_upgrade(),
        _ => None,
    };
    tokio::spawn(async move {
        let Some((mut b, early)) = backend else {
            tracing::debug!(server = %server, "upgrade failed: no backend connection");
            return;
        };
        let mut c = match client.await {
            Ok(c) => TokioIo::new(c),
            Err(e) => {
                tracing::debug!(server = %server, error = %e, "upgrade failed");
                return;
            }
        };
        if !early.is_empty() {
            if let Err(e) = tokio::io::AsyncWriteExt::write_all(&mut c, &early).await {
                tracing::debug!(server = %server, error = %e, "upgraded connection ended");
                return;
            }
        }
        if let Err(e) = tokio::io::copy_bidirectional(&mut c, &mut b).await {
            tracing::debug!(server = %server, error = %e, "upgraded connection ended");
        }
    });
}
