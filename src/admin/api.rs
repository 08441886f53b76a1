//! Routing and handlers of the admin API.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{answer, same_secret, Admin, AdminError, Control, NewServer};
use crate::body::Body;
use crate::metrics::sampler::{check_json, link, server_extras, server_state};
use crate::runtime::Runtime;
use crate::units::clock_ms;

const MAX_BODY: usize = 64 * 1024;

const INDEX: &str = include_str!("dashboard/index.html");
const SCRIPT: &str = include_str!("dashboard/dashboard.js");
const CHART: &str = include_str!("dashboard/chart.js");
const STYLE: &str = include_str!("dashboard/dashboard.css");

fn text(body: impl Into<Bytes>, ctype: &'static str) -> Response<Body> {
    let mut resp = Response::new(Body::full(body));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// Server-sent events: a `stats` event with the `/api/stats` document once a
/// second, starting with one at once.
fn stats_stream<C>(app: &Admin<C>) -> Response<Body> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let mut updates = app.sampler.subscribe();
    let first = app.sampler.snapshot(&app.runtime.load()).to_string();
    let readiness = app.readiness.clone();
    tokio::spawn(async move {
        let event = |data: &str| Bytes::from(format!("event: stats\ndata: {data}\n\n"));
        if tx.send(event(&first)).await.is_err() {
            return;
        }
        let mut shutdown = readiness.shutdown_watch();
        loop {
            // A shutdown ends the stream with an event that says so (the
            // page shows it instead of "live").
            let update = tokio::select! {
                biased;
                r = shutdown.wait_for(|d| *d) => {
                    drop(r);
                    None
                }
                u = updates.recv() => Some(u),
            };
            let Some(update) = update else {
                let _ = tx
                    .send(Bytes::from_static(b"event: shutdown\ndata: {}\n\n"))
                    .await;
                return;
            };
            match update {
                Ok(s) => {
                    if tx.send(event(&s)).await.is_err() {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    let mut resp = Response::new(Body::Channel(rx));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// Answers one admin request.
pub async fn handle<C: Control>(req: Request<Incoming>, app: &Admin<C>) -> Response<Body> {
    let token = app.token.as_deref();
    if req.method() == Method::GET {
        let asset = match req.uri().path() {
            "/" => Some((INDEX, "text/html; charset=utf-8")),
            "/dashboard.js" => Some((SCRIPT, "text/javascript; charset=utf-8")),
            "/chart.js" => Some((CHART, "text/javascript; charset=utf-8")),
            "/dashboard.css" => Some((STYLE, "text/css; charset=utf-8")),
            _ => None,
        };
        if let Some((body, ctype)) = asset {
            // The page holds no data; the API calls it makes are authorized.
            return text(body, ctype);
        }
        let special = matches!(
            req.uri().path(),
            "/metrics" | "/api/stats/stream" | "/api/plan.svg"
        );
        if special {
            if let Err(e) = authorize(&req, token) {
                return answer(&e);
            }
            if req.uri().path() == "/metrics" {
                return text(app.metrics.render(), "text/plain; version=0.0.4; charset=utf-8");
            }
            if req.uri().path() == "/api/plan.svg" {
                return match app.control.plan_svg().await {
                    Some(svg) => text(svg, "image/svg+xml; charset=utf-8"),
                    None => answer(&AdminError::NotFound(
                        "the config has no [topology] to draw".into(),
                    )),
                };
            }
            return stats_stream(app);
        }
    }
    match route(req, app, token).await {
        Ok((status, v)) => json_answer(status, &v),
        Err(e) => answer(&e),
    }
}

/// A JSON answer.
pub fn json_answer(status: StatusCode, v: &Value) -> Response<Body> {
    let mut resp = Response::new(Body::full(format!("{v}\n")));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// Checks the bearer token, when one is configured. GET requests may pass
/// it as `?token=` instead (a browser's EventSource cannot set headers).
fn authorize<B>(req: &Request<B>, token: Option<&str>) -> Result<(), AdminError> {
    if let Some(t) = token {
        let query = (req.method() == Method::GET)
            .then(|| req.uri().query())
            .flatten()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")))
            .map(str::as_bytes);
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
            .or(query)
            .unwrap_or(b"");
        if !same_secret(given, t.as_bytes()) {
            return Err(AdminError::Unauthorized);
        }
    }
    Ok(())
}

/// Refuses a change (any method but GET and HEAD) that a browser says
/// comes from another site: `Sec-Fetch-Site` other than `same-origin` or
/// `none`, or an `Origin` whose host and port are not the `Host` asked.
fn same_site<B>(req: &Request<B>) -> Result<(), AdminError> {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return Ok(());
    }
    let h = req.headers();
    let text = |name: header::HeaderName| h.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        if !matches!(site, "same-origin" | "none") {
            return Err(AdminError::CrossSite(format!(
                "a change from another site is refused (Sec-Fetch-Site: {site})"
            )));
        }
    }
    if let Some(origin) = text(header::ORIGIN) {
        let host = text(header::HOST).unwrap_or("");
        let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest);
        if origin == "null" || !origin_host.eq_ignore_ascii_case(host) {
            return Err(AdminError::CrossSite(format!(
                "a change from another site is refused (Origin: {origin}, this API: {host})"
            )));
        }
    }
    Ok(())
}

async fn route<C: Control>(
    req: Request<Incoming>,
    app: &Admin<C>,
    token: Option<&str>,
) -> Result<(StatusCode, Value), AdminError> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    // Probes for keepalived and load balancers: no token needed, and they
    // say nothing but whether to send traffic here.
    match (req.method(), path.as_str()) {
        (&Method::GET, "/health/live") => return Ok((StatusCode::OK, json!({"live": true}))),
        (&Method::GET, "/health/ready") => {
            return Ok(match app.readiness.check(&app.runtime.load()) {
                Ok(()) => (StatusCode::OK, json!({"ready": true})),
                Err(waiting) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({"ready": false, "waiting_for": waiting}),
                ),
            })
        }
        _ => {}
    }
    same_site(&req)?;
    authorize(&req, token)?;
    let parts: Vec<&str> = path.split('/').skip(1).collect();
    let method = req.method().clone();
    match (method, parts.as_slice()) {
        (Method::GET, ["api", "health"]) => Ok((StatusCode::OK, json!({"status": "ok"}))),
        (Method::GET, ["api", "pools"]) => Ok((StatusCode::OK, pools(&app.runtime.load()))),
        (Method::GET, ["api", "config"]) => Ok((StatusCode::OK, app.control.config_view().await)),
        (Method::GET, ["api", "bans"]) => Ok((StatusCode::OK, bans(&app.runtime.load()))),
        (Method::POST, ["api", "bans"]) => {
            let body: NewBan = read_json(req).await?;
            let ip: std::net::IpAddr = body
                .address
                .parse()
                .map_err(|_| AdminError::BadRequest(format!("`{}` is not an IP address", body.address)))?;
            let duration = crate::units::parse_duration(body.duration.as_deref().unwrap_or("10m"))
                .map_err(AdminError::BadRequest)?;
            let reason = body
                .reason
                .unwrap_or_else(|| "banned through the admin API".to_string());
            app.runtime.load().bans.ban(ip, duration, reason);
            tracing::info!(client = %ip, for_ = ?duration, "client banned through the admin API");
            Ok((
                StatusCode::CREATED,
                json!({"address": ip, "seconds": duration.as_secs()}),
            ))
        }
        (Method::DELETE, ["api", "bans", address]) => {
            let ip: std::net::IpAddr = address
                .parse()
                .map_err(|_| AdminError::BadRequest(format!("`{address}` is not an IP address")))?;
            if app.runtime.load().bans.lift(ip) {
                Ok((StatusCode::OK, json!({"address": ip, "lifted": true})))
            } else {
                Err(AdminError::NotFound(format!("{ip} is not banned")))
            }
        }
        (Method::GET, ["api", "stats"]) => {
            let mut doc = app.sampler.snapshot(&app.runtime.load());
            let wants_history = req
                .uri()
                .query()
                .is_some_and(|q| q.split('&').any(|kv| kv == "history=1"));
            // What a page needs once, when it opens: the history, and
            // whether there is an infrastructure diagram to ask for.
            let plan = if wants_history {
                app.control.plan_svg().await.is_some()
            } else {
                false
            };
            if let (true, Some(o)) = (wants_history, doc.as_object_mut()) {
                o.insert("history".into(), app.sampler.history());
                o.insert("plan".into(), Value::Bool(plan));
                if let Some(f) = &app.runtime.load().fleet {
                    o.insert("fleet_history".into(), f.history());
                }
            }
            Ok((StatusCode::OK, doc))
        }
        (Method::POST, ["api", "reload"]) => match app.control.reload().await {
            Ok(report) => Ok((StatusCode::OK, json!({"reloaded": true, "report": report}))),
            Err(e) => Err(AdminError::BadRequest(format!(
                "reload refused, the running config stays: {e}"
            ))),
        },
        (Method::POST, ["api", "pools", pool, "servers"]) => {
            let pool = pool.to_string();
            let body: NewServerBody = read_json(req).await?;
            let address: SocketAddr = body.address.parse().map_err(|_| {
                AdminError::BadRequest(format!("`{}` is not an IP:PORT address", body.address))
            })?;
            let added = NewServer {
                pool: pool.clone(),
                name: body.name.clone(),
                address,
                weight: body.weight.unwrap_or(1),
                max_requests: body.max_requests.unwrap_or(0),
            };
            app.control.add_server(added).await?;
            Ok((
                StatusCode::CREATED,
                json!({"pool": pool, "server": body.name, "address": address}),
            ))
        }
        (Method::PUT, ["api", "pools", pool, "servers", server, "weight"]) => {
            let (pool, server) = (pool.to_string(), server.to_string());
            let body: Weight = read_json(req).await?;
            app.control.set_weight(&pool, &server, body.weight).await?;
            Ok((
                StatusCode::OK,
                json!({"pool": pool, "server": server, "weight": body.weight}),
            ))
        }
        (Method::POST, ["api", "pools", pool, "servers", server, "drain"]) => {
            app.control.drain(pool, server).await?;
            Ok((
                StatusCode::ACCEPTED,
                json!({"pool": pool, "server": server, "state": "draining"}),
            ))
        }
        (Method::POST, ["api", "pools", pool, "servers", server, "undrain"]) => {
            let was = app.control.undrain(pool, server).await?;
            Ok((
                StatusCode::OK,
                json!({"pool": pool, "server": server, "state": "active", "was_drained": was}),
            ))
        }
        (Method::DELETE, ["api", "pools", pool, "servers", server]) => {
            app.control.remove(pool, server).await?;
            Ok((
                StatusCode::ACCEPTED,
                json!({"pool": pool, "server": server, "state": "removing"}),
            ))
        }
        (
            _,
            ["api", "health"]
            | ["api", "pools"]
            | ["api", "reload"]
            | ["api", "stats"]
            | ["api", "bans"]
            | ["api", "config"],
        )
        | (_, ["api", "bans", _])
        | (_, ["metrics"] | ["api", "stats", "stream"])
        | (_, ["api", "pools", _, "servers"])
        | (_, ["api", "pools", _, "servers", _])
        | (_, ["api", "pools", _, "servers", _, "weight" | "drain" | "undrain"]) => {
            Err(AdminError::MethodNotAllowed)
        }
        _ => Err(AdminError::NotFound(format!("no admin endpoint at {path}"))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewServerBody {
    name: String,
    address: String,
    weight: Option<u32>,
    max_requests: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewBan {
    address: String,
    duration: Option<String>,
    reason: Option<String>,
}

/// Bans in force.
fn bans(rt: &Runtime) -> Value {
    let list: Vec<Value> = rt
        .bans
        .list()
        .into_iter()
        .map(
            |b| json!({"address": b.address, "remaining_seconds": b.remaining.as_secs(), "reason": b.reason}),
        )
        .collect();
    json!({ "bans": list })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Weight {
    weight: u32,
}

async fn read_json<T: serde::de::DeserializeOwned>(req: Request<Incoming>) -> Result<T, AdminError> {
    let bytes: Bytes = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| AdminError::BadRequest(format!("cannot read the body: {e}")))?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| AdminError::BadRequest(format!("invalid JSON body: {e}")))
}

/// Every pool and server with its live state.
fn pools(rt: &Runtime) -> Value {
    let now = clock_ms();
    let pools: Vec<Value> = rt
        .pools
        .iter()
        .map(|p| {
            let servers: Vec<Value> = p
                .balancer
                .servers()
                .iter()
                .map(|s| {
                    let mut m = server_state(s, p.balancer.gate(), now, link(p));
                    m.extend(server_extras(s, p));
                    Value::Object(m)
                })
                .collect();
            json!({
                "name": p.name,
                "algorithm": p.balancer.algorithm().as_str(),
                "health_check": p.has_check,
                "check": p.health_check.as_ref().map(check_json),
                "in_flight": p.stats.in_flight(),
                "retries": p.stats.retries.load(std::sync::atomic::Ordering::Relaxed),
                "overloaded": p.stats.overloaded.load(std::sync::atomic::Ordering::Relaxed),
                "ejections": p.stats.ejections.load(std::sync::atomic::Ordering::Relaxed),
                "servers": servers,
            })
        })
        .collect();
    json!({ "pools": pools })
}
