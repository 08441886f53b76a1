//! Routing and handlers of the admin API.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{same_secret, AdminError};
use crate::app::{AddedServer, App};
use crate::balancer::{clock_ms, AdminState};
use crate::body::Body;
use crate::proxy::rescue::admin_answer;

const MAX_BODY: usize = 64 * 1024;

/// Answers one admin request.
pub async fn handle(req: Request<Incoming>, app: &Arc<App>, token: Option<&str>) -> Response<Body> {
    if req.method() == Method::GET && req.uri().path() == "/metrics" {
        if let Err(e) = authorize(&req, token) {
            return admin_answer(&e);
        }
        let mut resp = Response::new(Body::full(app.metrics.render()));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        return resp;
    }
    match route(req, app, token).await {
        Ok((status, v)) => json_answer(status, &v),
        Err(e) => admin_answer(&e),
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

/// Checks the bearer token, when one is configured.
fn authorize<B>(req: &Request<B>, token: Option<&str>) -> Result<(), AdminError> {
    if let Some(t) = token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
            .unwrap_or(b"");
        if !same_secret(given, t.as_bytes()) {
            return Err(AdminError::Unauthorized);
        }
    }
    Ok(())
}

async fn route(
    req: Request<Incoming>,
    app: &Arc<App>,
    token: Option<&str>,
) -> Result<(StatusCode, Value), AdminError> {
    authorize(&req, token)?;
    let path = req.uri().path().trim_end_matches('/').to_string();
    let parts: Vec<&str> = path.split('/').skip(1).collect();
    let method = req.method().clone();
    match (method, parts.as_slice()) {
        (Method::GET, ["api", "health"]) => Ok((StatusCode::OK, json!({"status": "ok"}))),
        (Method::GET, ["api", "pools"]) => Ok((StatusCode::OK, pools(app))),
        (Method::POST, ["api", "reload"]) => match app.reload().await {
            Ok(report) => Ok((StatusCode::OK, json!({"reloaded": true, "report": report}))),
            Err(e) => Err(AdminError::BadRequest(format!(
                "reload refused, the running config stays: {e}"
            ))),
        },
        (Method::POST, ["api", "pools", pool, "servers"]) => {
            let pool = pool.to_string();
            let body: NewServer = read_json(req).await?;
            let address: SocketAddr = body.address.parse().map_err(|_| {
                AdminError::BadRequest(format!("`{}` is not an IP:PORT address", body.address))
            })?;
            let added = AddedServer {
                pool: pool.clone(),
                name: body.name.clone(),
                address,
                weight: body.weight.unwrap_or(1),
                max_requests: body.max_requests.unwrap_or(0),
            };
            app.add_server(added).await.map_err(change_error)?;
            Ok((
                StatusCode::CREATED,
                json!({"pool": pool, "server": body.name, "address": address}),
            ))
        }
        (Method::PUT, ["api", "pools", pool, "servers", server, "weight"]) => {
            let (pool, server) = (pool.to_string(), server.to_string());
            let body: Weight = read_json(req).await?;
            app.set_weight(&pool, &server, body.weight)
                .await
                .map_err(change_error)?;
            Ok((
                StatusCode::OK,
                json!({"pool": pool, "server": server, "weight": body.weight}),
            ))
        }
        (Method::POST, ["api", "pools", pool, "servers", server, "drain"]) => {
            app.drain(pool, server).await.map_err(change_error)?;
            Ok((
                StatusCode::ACCEPTED,
                json!({"pool": pool, "server": server, "state": "draining"}),
            ))
        }
        (Method::DELETE, ["api", "pools", pool, "servers", server]) => {
            app.remove(pool, server).await.map_err(change_error)?;
            Ok((
                StatusCode::ACCEPTED,
                json!({"pool": pool, "server": server, "state": "removing"}),
            ))
        }
        (_, ["api", "health"] | ["api", "pools"] | ["api", "reload"])
        | (_, ["api", "pools", _, "servers"])
        | (_, ["api", "pools", _, "servers", _])
        | (_, ["api", "pools", _, "servers", _, "weight" | "drain"]) => Err(AdminError::MethodNotAllowed),
        _ => Err(AdminError::NotFound(format!("no admin endpoint at {path}"))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewServer {
    name: String,
    address: String,
    weight: Option<u32>,
    max_requests: Option<u32>,
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

fn change_error(e: crate::app::ChangeError) -> AdminError {
    use crate::app::ChangeError as C;
    match e {
        C::NoPool(_) | C::NoServer { .. } => AdminError::NotFound(e.to_string()),
        C::Duplicate { .. } => AdminError::Conflict(e.to_string()),
        C::Invalid(_) => AdminError::BadRequest(e.to_string()),
        C::App(_) => AdminError::Failed(e.to_string()),
    }
}

/// Every pool and server with its live state.
fn pools(app: &App) -> Value {
    let rt = app.runtime.load();
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
                    let state = match (s.state.admin(), s.in_flight()) {
                        (AdminState::Active, _) => "active",
                        (AdminState::Draining, 0) => "drained",
                        (AdminState::Draining, _) => "draining",
                    };
                    json!({
                        "name": s.name,
                        "address": s.addr,
                        "health": s.state.health().as_str(),
                        "last_check_passed": s.state.last_check(),
                        "state": state,
                        "weight": s.weight(),
                        "in_flight": s.in_flight(),
                        "max_requests": s.max_in_flight(),
                        "ejected": s.state.ejected(now),
                        "ejections": s.state.ejections(),
                        "available": s.available(now, p.balancer.gate()),
                    })
                })
                .collect();
            json!({
                "name": p.name,
                "algorithm": p.balancer.algorithm().as_str(),
                "health_check": p.has_check,
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
