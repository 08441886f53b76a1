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
//! 5. rules: the firewall's request rules, in order; then, with `[waf]`,
//!    the web application firewall's rules over the head, the query and
//!    the body read ahead up to `[waf] body_limit`
//! 6. limits: the request body's size and speed
//! 7. forward headers: the request rewritten for the backend
//! 8. pick and send: a server of the pool, another one when that is safe
//! 9. response rewrite: hop-by-hop headers, request id, HSTS, cookie, upgrades
//! 10. account: counters, firewall events and bans, access log

use std::net::IpAddr;
use std::sync::Arc;
use tokio::time::Instant;

use http::header::HeaderValue;
use http::uri::{Authority, PathAndQuery};
use http::{StatusCode, Version};

use super::attempt::{self, Answered, Failed};
use super::bodyguard::{BodyLimits, GuardedBody};
use super::h1::reqbody::{ClientBody, RequestBody};
use super::headers::{self, ForwardedFor};
use super::message::{Answer, ClientRequest, Outgoing};
use super::rescue::{self, ProxyError};
use super::upstream::{ReadAhead, UpBody};
use super::Body;
use super::ConnCtx;
use crate::accesslog::Record;
use crate::balancer::Backend;
use crate::config::model::{Action, RouteWaf, UpstreamProtocol};
use crate::fields::{Class, Edited, Edits, Head, HeaderView};
use crate::firewall::rules::{evaluate, RequestView, RuleRt, Verdict};
use crate::runtime::router::{normalise_host, Hit};
use crate::runtime::{ListenerRt, PoolRt, Runtime};
use crate::stats::RequestStats;

/// Answers one client request that arrived at `started` (read by the
/// connection once: the request's latency is measured from there).
/// `rt` is the runtime snapshot the connection holds (HTTP/1.1: its
/// cache of the shared one, refreshed per request without touching a
/// shared reference count).
pub async fn handle(req: ClientRequest, cx: &ConnCtx, rt: &Runtime, started: Instant) -> Answer {
    let framed = framing(&req, rt);
    let mut edits = Edits::default();
    let rid = headers::request_id(&req.head, &mut edits);
    // Before the firewall's rules, which may match on them.
    headers::client_cert(&mut edits, cx.client_cert.get().map(|b| &**b));
    let method = req.method.clone();
    let logged = rt.access_log.as_ref().map(|_| LogParts::of(&req));
    // The client: the connection's, or the one a trusted proxy forwarded for.
    let forwarded = cx
        .via_trusted
        .then(|| ForwardedFor::read(&req.head, &rt.trusted_proxies));
    let client = forwarded.as_ref().and_then(|f| f.client).unwrap_or(cx.peer.ip());
    let mut x = Exchange {
        rt,
        cx,
        rid: &rid,
        started,
        client,
        forwarded,
        route: None,
        server: None,
        refused: None,
        error: None,
        failed: None,
        waf: None,
    };
    let result = match (framed, rt.listeners.get(cx.listener)) {
        (Err(e), _) => Err(e),
        (Ok(()), Some(Some(l))) => x.forward(req, edits, l).await,
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
    server: Option<&'a Arc<Backend>>,
    /// The (normalised) path of a request the firewall rules refused.
    refused: Option<String>,
    /// What went wrong, for the access log.
    error: Option<&'static str>,
    /// What the WAF's rules matched, for the access log.
    waf: Option<Box<crate::accesslog::WafFields>>,
    /// The host and path of a request no server answered well (set only
    /// then), for the tail of failing requests.
    failed: Option<Box<(String, String)>>,
}

/// Reads a guarded body until `limit` bytes (or its end) for the WAF; the
/// body's limits (size, rate, idle time) apply while it is read.
async fn read_body_ahead(mut body: GuardedBody, limit: usize) -> Result<Box<ReadAhead>, ProxyError> {
    use http_body_util::BodyExt;
    let mut data = bytes::BytesMut::new();
    let mut trailers = None;
    while data.len() < limit {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(d) => data.extend_from_slice(&d),
                Err(frame) => {
                    trailers = frame.into_trailers().ok();
                    break;
                }
            },
            Some(Err(_)) => {
                return Err(body
                    .flag()
                    .error()
                    .unwrap_or(ProxyError::BadRequest("the request body could not be read")))
            }
        }
    }
    Ok(Box::new(ReadAhead {
        data: (!data.is_empty()).then(|| data.freeze()),
        trailers,
        rest: body,
    }))
}

/// The host (as routes see it) and path of a request that failed.
#[cold]
fn failed_at(host: Option<&HeaderValue>, path: &PathAndQuery) -> Option<Box<(String, String)>> {
    let host = host
        .and_then(|v| v.to_str().ok())
        .map(normalise_host)
        .unwrap_or_default();
    Some(Box::new((host.into_owned(), path.to_string())))
}

/// The request's host and path as the route and rules see them (step 3).
struct Normalised {
    host_value: Option<HeaderValue>,
    /// `host_value` is the request's own `Host` field (kept as it is).
    host_field: bool,
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
        mut req: ClientRequest,
        mut edits: Edits,
        l: &'a ListenerRt,
    ) -> Result<Answer, ProxyError> {
        // 3. an ACME HTTP-01 validation, and a redirect-only listener,
        // are answered at once; then host and path.
        if !l.https && !self.rt.acme_http01.is_empty() {
            if let Some(answer) = acme_http01(&req, self.rt) {
                return Ok(answer);
            }
        }
        if let Some(port) = l.redirect_port {
            return Ok(redirect(&req, req.host().0.as_ref(), port, self.rid));
        }
        let target = normalise(&req, l)?;
        let hit = {
            let (host, path) = (target.host(), target.path(req.uri.path()));
            // 4. route; the rules below may count by route.
            let found = l.router.find(&host, path);
            // 5. firewall rules (a tarpit waits before answering); a
            // cluster-scope rate limit asks the fleet's Redis, then the
            // rules after it run.
            let mut from = 0;
            loop {
                match self.rules(&req, &edits, l, &host, path, found.as_ref(), from) {
                    Verdict::Shared { at, rule, key } => {
                        // Boxed: the Redis call's future would otherwise
                        // grow every request's future, cluster rule or not.
                        let asked = Box::pin(self.shared_limit(
                            &req,
                            &edits,
                            rule,
                            &host,
                            path,
                            found.as_ref(),
                            &key,
                        ));
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
        // 5b. the web application firewall's rules, when configured and
        // not switched off for the route; they may read the body ahead.
        let mut read_ahead = None;
        if let Some(waf) = self.rt.waf.as_ref().filter(|_| hit.waf != Some(RouteWaf::Off)) {
            // Boxed: requests without the WAF keep a small future.
            let mut fields = None;
            let checked = Box::pin(self.waf(waf, &mut req, &hit, &mut read_ahead, &mut fields)).await;
            self.waf = fields;
            if let Err(refusal) = checked {
                self.refused = Some(req.uri.path().to_string());
                return Err(refusal);
            }
        }
        self.route = Some(hit.stats);
        // 6. body limits.
        let limits = body_limits(&req, &hit, self.rt)?;
        let pool = &self.rt.pools[hit.pool];
        // 7. rewrite the request for the backend: edits, the head as it is.
        let ClientRequest {
            method,
            uri,
            version,
            head,
            body,
        } = req;
        let upgrade = self.rewrite(&head, version, &mut edits, &hit, pool, &target);
        let path = backend_path(&uri, target.normalized)?;
        let authority = match pool.protocol {
            UpstreamProtocol::Http1 => None,
            UpstreamProtocol::H2c | UpstreamProtocol::H2 => Some(
                target
                    .host_value
                    .as_ref()
                    .and_then(|h| Authority::try_from(h.as_bytes()).ok())
                    .unwrap_or_else(|| Authority::from_static("backend")),
            ),
        };
        let body = if let Some(read) = read_ahead {
            UpBody::ReadAhead(read)
        } else if http_body::Body::is_end_stream(&body) {
            UpBody::Client(body)
        } else {
            // Every body is watched (its guard also tells when it has been
            // sent whole, and whether the client broke it off).
            UpBody::Guarded(GuardedBody::new(body, limits))
        };
        let out = Outgoing {
            method: &method,
            target: &path,
            authority: authority.as_ref(),
            head: &head,
            edits: &edits,
        };
        // 8. pick a server and forward, trying another one when that is safe.
        let answered = match attempt::send(&out, body, pool, self.rt, self.started, self.client).await {
            Ok(a) => a,
            Err(Failed { error, server }) => {
                self.server = server;
                self.failed = failed_at(target.host_value.as_ref(), &path);
                return Err(error);
            }
        };
        self.server = Some(answered.server);
        if answered.answer.status.is_server_error() {
            self.failed = failed_at(target.host_value.as_ref(), &path);
        }
        // 9. rewrite the response; an upgraded connection is relayed by
        // the engine's connection loop once the 101 is written.
        respond(
            answered,
            upgrade.is_some(),
            l,
            self.rid,
            version == Version::HTTP_3,
        )
    }

    /// Step 5: the listener's rules from rule `from` on, in order; a
    /// cluster-scope rate limit stops the walk for the caller to ask Redis,
    /// its `at` counted from the listener's first rule. (Not async: a
    /// future of its own would be one more copy per request.)
    #[allow(clippy::too_many_arguments)]
    fn rules(
        &self,
        req: &ClientRequest,
        edits: &Edits,
        l: &'a ListenerRt,
        host: &str,
        path: &str,
        found: Option<&Hit<'_>>,
        from: usize,
    ) -> Verdict<'a> {
        let Some(rules) = l.rules.get(from..).filter(|r| !r.is_empty()) else {
            return Verdict::Pass;
        };
        let headers = Edited {
            head: &req.head,
            edits,
        };
        let view = self.view(req, &headers, host, path, found);
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

    /// What the rules see of a request: its fields as the backend would
    /// get them so far (a client's copy of the client-certificate headers
    /// is gone, the verified identity is there).
    fn view<'v>(
        &self,
        req: &'v ClientRequest,
        headers: &'v Edited<'v>,
        host: &'v str,
        path: &'v str,
        found: Option<&'v Hit<'_>>,
    ) -> RequestView<'v>
    where
        'a: 'v,
    {
        RequestView {
            method: &req.method,
            host,
            path,
            query: req.uri.query(),
            headers,
            client: self.client,
            sni: self.cx.sni.get().map(|s| &**s),
            route: found.map_or("-", |hit| hit.key),
        }
    }

    /// Runs the WAF's rules over the request's head, arguments and (when
    /// the rules read bodies) the first `body_limit` bytes of its body,
    /// read ahead into `read_ahead`; a denial (in block mode) is a refusal
    /// answered with the rule's status.
    async fn waf(
        &self,
        waf: &crate::config::model::WafSettings,
        req: &mut ClientRequest,
        hit: &Hit<'_>,
        read_ahead: &mut Option<Box<ReadAhead>>,
        fields: &mut Option<Box<crate::accesslog::WafFields>>,
    ) -> Result<(), ProxyError> {
        let mut truncated = false;
        if waf.rules.reads_bodies() && !http_body::Body::is_end_stream(&req.body) {
            let limits = body_limits(req, hit, self.rt)?;
            let body = std::mem::replace(&mut req.body, ClientBody::Engine(RequestBody::empty()));
            let read = read_body_ahead(GuardedBody::new(body, limits), waf.body_limit).await?;
            let n = read.data.as_ref().map_or(0, bytes::Bytes::len);
            truncated = n > waf.body_limit
                || (n == waf.body_limit
                    && read.trailers.is_none()
                    && !http_body::Body::is_end_stream(&read.rest));
            if truncated && waf.reject_over_limit {
                return Err(ProxyError::BodyTooLarge(waf.body_limit as u64));
            }
            *read_ahead = Some(read);
        }
        let body: &[u8] = read_ahead
            .as_ref()
            .and_then(|r| r.data.as_deref())
            .map_or(&[], |d| &d[..d.len().min(waf.body_limit)]);
        let uri = req
            .uri
            .path_and_query()
            .map_or_else(|| req.uri.path(), PathAndQuery::as_str);
        let protocol = crate::accesslog::protocol(req.version);
        let rid = String::from_utf8_lossy(self.rid.as_bytes());
        let mut outcome = waf.rules.inspect(&crate::waf::Request {
            method: req.method.as_str(),
            uri,
            protocol,
            headers: req.head.pairs(),
            remote_addr: self.client.to_string(),
            unique_id: &rid,
            body,
            body_truncated: truncated,
            exclusions: [Some(&waf.exclude), Some(hit.waf_exclude)],
        });
        let block = match hit.waf {
            Some(RouteWaf::Block) => true,
            Some(RouteWaf::Detect | RouteWaf::Off) => false,
            None => waf.block,
        } && !outcome.detection_only;
        let (rules, messages): (Vec<u64>, Vec<String>) = std::mem::take(&mut outcome.matched)
            .into_iter()
            .map(|h| (h.id, h.msg))
            .unzip();
        let matched = rules.iter().map(u64::to_string).collect::<Vec<_>>();
        if !rules.is_empty() || outcome.deny.is_some() {
            *fields = Some(Box::new(crate::accesslog::WafFields {
                rules,
                messages,
                anomaly_score: outcome.anomaly_score,
                denied: block && outcome.deny.is_some(),
            }));
        }
        let Some(deny) = outcome.deny else {
            if !matched.is_empty() {
                // What ModSecurity logs as warnings: rules that matched
                // without the request being denied.
                tracing::info!(
                    request_id = %rid,
                    matched = %matched.join(","),
                    anomaly_score = outcome.anomaly_score,
                    "waf: matched, not denied"
                );
            }
            return Ok(());
        };
        let verdict = if block {
            "denied"
        } else {
            "would deny (detect mode)"
        };
        tracing::warn!(
            request_id = %rid,
            rule = deny.id,
            matched = %matched.join(","),
            anomaly_score = outcome.anomaly_score,
            "waf: {verdict}: {}",
            deny.msg
        );
        if !block {
            return Ok(());
        }
        waf.rules.count_blocked(deny.id);
        let status = StatusCode::from_u16(deny.status).unwrap_or(StatusCode::FORBIDDEN);
        Err(ProxyError::Denied {
            rule: format!("waf {}", deny.id),
            status,
            body: bytes::Bytes::from(format!(
                "Request blocked by the web application firewall (rule {}). Request id: {rid}\n",
                deny.id
            )),
            retry_after: None,
        })
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
    #[allow(clippy::too_many_arguments)]
    async fn shared_limit(
        &mut self,
        req: &ClientRequest,
        edits: &Edits,
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
        let headers = Edited {
            head: &req.head,
            edits,
        };
        let view = self.view(req, &headers, host, path, found);
        let verdict = match decided {
            Some(Ok(())) => return None,
            Some(Err(wait)) => rule.limited(wait, &view),
            None => rule.check_local(&view)?,
        };
        self.refusal(verdict, path).map(|(refusal, _)| refusal)
    }

    /// Step 7: hop-by-hop headers out, forwarding headers in, the host in
    /// the form the pool's protocol wants, as edits. Returns the `Upgrade`
    /// offers of an upgrade the route allows (never h2c).
    fn rewrite(
        &self,
        head: &Head,
        version: Version,
        edits: &mut Edits,
        hit: &Hit<'_>,
        pool: &PoolRt,
        target: &Normalised,
    ) -> Option<HeaderValue> {
        // Upgrades: only to protocols the route allows; any other
        // `Upgrade` is dropped and the request goes on as a plain one.
        let upgrade = (version == Version::HTTP_11 && !hit.upgrades.is_empty())
            .then(|| headers::allowed_upgrade(head, hit.upgrades))
            .flatten();
        headers::strip_hop_by_hop(edits, upgrade.clone());
        headers::set_forwarded(
            edits,
            &self.cx.client,
            target.host_value.as_ref(),
            self.forwarded.as_ref(),
        );
        match pool.protocol {
            // HTTP/1.1: `Host`, as the request's own field when it is one.
            UpstreamProtocol::Http1 => {
                // A `Host` the `Connection` field names is dropped with the
                // hop-by-hop ones: the backend still gets the host.
                let named = matches!(head, Head::Raw(r) if r.is_named(Class::Host));
                if let (false, Some(h)) = (target.host_field && !named, &target.host_value) {
                    edits.set(Class::Host, "host", h.clone());
                }
            }
            // HTTP/2: the host goes as the authority.
            UpstreamProtocol::H2c | UpstreamProtocol::H2 => edits.drop |= Class::Host.bit(),
        }
        upgrade
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

    /// A 5xx answer, into the tail of failing requests (off the path of
    /// every request that succeeds).
    #[cold]
    fn remember_failure(
        &self,
        listener: Option<&ListenerRt>,
        method: &http::Method,
        status: u16,
        latency: std::time::Duration,
    ) {
        let (host, path) = self.failed.as_deref().cloned().unwrap_or_default();
        self.rt.journal.failed(crate::stats::journal::Failure {
            unix_ms: crate::stats::journal::unix_ms(),
            listener: listener.map(|l| l.name.clone()).unwrap_or_default(),
            client: self.client,
            method: method.to_string(),
            host,
            path,
            server: self.server.map(|s| s.name.clone()),
            status,
            duration: latency,
            request_id: String::from_utf8_lossy(self.rid.as_bytes()).into_owned(),
            error: self.error,
        });
    }

    /// Step 10: listener, route and server counters; the access log. The
    /// latency ends with the backend's head (read when it arrived), or now
    /// for an answer of rampart's own.
    fn account(self, method: &http::Method, resp: &Answer, logged: Option<LogParts>) {
        let end = resp.at.unwrap_or_else(Instant::now);
        let (status, latency) = (resp.status.as_u16(), end.saturating_duration_since(self.started));
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
        if status >= 500 {
            self.remember_failure(listener, method, status, latency);
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
                bytes: http_body::Body::size_hint(&resp.body).exact(),
                duration: latency,
                request_id: self.rid.clone(),
                listener: l.log_name.clone(),
                server: self.server.as_ref().map(|s| s.name.clone()),
                error: self.error,
                waf: self.waf,
            });
        }
    }
}

/// Step 1: rejects requests whose body length two parsers could disagree
/// on, and targets longer than allowed. HTTP/1.x heads were refused for
/// their framing by the engine's parser (`h1::head`) before they got here;
/// HTTP/2 requests are checked here.
fn framing(req: &ClientRequest, rt: &Runtime) -> Result<(), ProxyError> {
    if req.multiplexed() {
        let h = &req.head;
        if h.contains("transfer-encoding") && h.contains("content-length") {
            return Err(ProxyError::Framing(
                "both Content-Length and Transfer-Encoding are present",
            ));
        }
        let mut first: Option<&[u8]> = None;
        let mut differ = false;
        h.each_value("content-length", &mut |v| {
            differ = first.is_some_and(|f| f != v);
            first.get_or_insert(v);
            !differ
        });
        if differ {
            return Err(ProxyError::Framing("differing Content-Length headers"));
        }
    }
    if req.uri.path_and_query().map_or(0, |p| p.as_str().len()) > rt.limits.max_uri_length {
        return Err(ProxyError::UriTooLong);
    }
    Ok(())
}

/// Step 3: the host and the path in normal form, refusing dangerous
/// encodings.
fn normalise(req: &ClientRequest, l: &ListenerRt) -> Result<Normalised, ProxyError> {
    let (host_value, host_field) = req.host();
    // `None`: the path is already in normal form (no allocation).
    let normalized = crate::firewall::path::normalize_changed(req.uri.path()).map_err(|e| {
        l.stats
            .bad_paths
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ProxyError::BadPath(e)
    })?;
    Ok(Normalised {
        host_value,
        host_field,
        normalized,
    })
}

/// Step 6: a declared length over the limit is refused at once; a streamed
/// body will be watched for size, speed and pauses (the limits returned).
fn body_limits(req: &ClientRequest, hit: &Hit<'_>, rt: &Runtime) -> Result<BodyLimits, ProxyError> {
    let limits = &rt.limits;
    let max = hit.max_body.or(limits.max_body);
    if let Some(max) = max {
        // The length was validated with the head; read it only when a
        // limit applies.
        let declared = http_body::Body::size_hint(&req.body).exact();
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

/// The target the backend sees: the normalised path (and the query as
/// sent); the request's own when nothing changed (no copy).
fn backend_path(uri: &http::Uri, normalized: Option<String>) -> Result<PathAndQuery, ProxyError> {
    let cannot = |_| ProxyError::BadRequest("the request target cannot be forwarded");
    match normalized {
        None => Ok(uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"))),
        Some(p) => match uri.query() {
            None => PathAndQuery::try_from(p).map_err(cannot),
            Some(q) => PathAndQuery::try_from(format!("{p}?{q}")).map_err(cannot),
        },
    }
}

/// Step 9: the backend's answer made the client's, as edits: hop-by-hop
/// headers dropped (an upgrade the client asked for keeps `Upgrade`),
/// the request id, HSTS, `Alt-Svc` (TCP side of an HTTP/3 listener), a
/// sticky cookie.
fn respond(
    answered: Answered<'_>,
    upgrading: bool,
    l: &ListenerRt,
    rid: &HeaderValue,
    over_quic: bool,
) -> Result<Answer, ProxyError> {
    let Answered {
        mut answer,
        server,
        set_cookie,
    } = answered;
    let switching = answer.status == StatusCode::SWITCHING_PROTOCOLS;
    if switching && !upgrading {
        // A switch nobody asked for (or that was not forwarded) would leave
        // the client speaking HTTP to a tunnel.
        return Err(ProxyError::BadResponse {
            server: server.name.clone(),
            what: "101 Switching Protocols to a request that asked for no upgrade",
        });
    }
    let e = &mut answer.edits;
    let upgrade = switching
        .then(|| answer.head.value_of(Class::Upgrade, "upgrade"))
        .flatten();
    headers::strip_hop_by_hop(e, upgrade);
    e.set(Class::XRequestId, "x-request-id", rid.clone());
    if let Some(hsts) = &l.hsts {
        e.set(
            Class::StrictTransportSecurity,
            "strict-transport-security",
            hsts.clone(),
        );
    }
    // Offered on the TCP side of a listener that serves HTTP/3.
    if let Some(alt) = l.alt_svc.as_ref().filter(|_| !over_quic) {
        e.set(Class::AltSvc, "alt-svc", alt.clone());
    }
    if let Some(c) = set_cookie {
        e.add.push("set-cookie", c);
    }
    Ok(answer)
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

/// What the access log needs of a request, taken before it is forwarded
/// (the values share the head's bytes).
struct LogParts {
    uri: http::Uri,
    version: Version,
    host: Option<HeaderValue>,
    user_agent: Option<HeaderValue>,
    referer: Option<HeaderValue>,
}

impl LogParts {
    fn of(req: &ClientRequest) -> Self {
        let h = &req.head;
        LogParts {
            uri: req.uri.clone(),
            version: req.version,
            host: req.host().0,
            user_agent: h.value_of(Class::UserAgent, "user-agent"),
            referer: h.value_of(Class::Referer, "referer"),
        }
    }
}

/// The key authorization for a token being validated (RFC 8555 §8.3).
fn acme_http01(req: &ClientRequest, rt: &Runtime) -> Option<Answer> {
    let token = req.uri.path().strip_prefix("/.well-known/acme-challenge/")?;
    let answer = rt.acme_http01.get(token)?;
    Some(Answer::new(StatusCode::OK, Body::full(answer)).with(
        "content-type",
        HeaderValue::from_static("application/octet-stream"),
    ))
}

/// A 308 to the same host and path on the HTTPS listener's port.
fn redirect(req: &ClientRequest, host: Option<&HeaderValue>, port: u16, rid: &HeaderValue) -> Answer {
    let raw = host.and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let name = match raw.strip_prefix('[') {
        Some(rest) => format!("[{}]", rest.split(']').next().unwrap_or(rest)),
        None => raw.rsplit_once(':').map_or(raw, |(h, _)| h).to_string(),
    };
    let pq = req.uri.path_and_query().map_or("/", |p| p.as_str());
    let location = if port == 443 {
        format!("https://{name}{pq}")
    } else {
        format!("https://{name}:{port}{pq}")
    };
    let a = Answer::new(StatusCode::PERMANENT_REDIRECT, Body::Empty);
    let a = match HeaderValue::try_from(location) {
        Ok(v) => a.with("location", v),
        Err(_) => a,
    };
    a.with("x-request-id", rid.clone())
}
