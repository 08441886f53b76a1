//! The configuration as the dashboard shows it (`GET /api/config`): what
//! listens where with which TLS, the routes with what they match and the
//! pool they send to, the firewall rules, the pools with their algorithm
//! and health check; the version, the uptime and the last reload with its
//! result. Secrets (passwords, tokens, keys) are never part of it.

use std::sync::LazyLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::config::model::{
    Action, Condition, HeaderTest, HostMatch, ListenerKind, Model, Route, UpstreamProtocol,
};
use crate::runtime::Runtime;
use crate::stats::journal::Journal;

/// When this process started serving (first asked at start).
static STARTED: LazyLock<(Instant, SystemTime)> = LazyLock::new(|| (Instant::now(), SystemTime::now()));

/// Marks the start; later calls change nothing.
pub fn mark_start() {
    LazyLock::force(&STARTED);
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs() as f64)
}

/// The `/api/config` document.
pub fn config_view(model: &Model, rt: &Runtime, journal: &Journal) -> Value {
    let last_reload = journal
        .changes()
        .into_iter()
        .rev()
        .find(|c| c.kind.starts_with("reload"))
        .map(|c| {
            json!({
                "at_unix_ms": c.unix_ms,
                "ok": c.kind == "reload",
                "detail": c.detail,
            })
        });
    let listeners: Vec<Value> = model
        .listeners
        .iter()
        .map(|l| {
            let bound = rt
                .listeners
                .iter()
                .flatten()
                .find(|x| x.name == l.name)
                .map(|x| x.certificate_details());
            let tls = match &l.kind {
                ListenerKind::Http { .. } => Value::Null,
                ListenerKind::Https(s) => json!({
                    "versions": ["TLS 1.3", "TLS 1.2"],
                    "http2": s.http2,
                    "client_certificates": s.client_auth.is_some(),
                    "hsts": s.hsts.map(|h| h.header().to_str().unwrap_or("").to_string()),
                    "certificates": if s.acme.is_some() { "ACME" } else if s.certs.is_empty() { "generated (local CA)" } else { "files" },
                    "served": bound.unwrap_or_default().into_iter().map(|c| json!({
                        "name": c.name, "sans": c.sans, "issuer": c.issuer, "not_after": c.not_after,
                    })).collect::<Vec<_>>(),
                }),
            };
            let protocol = match (&l.kind, &l.tcp_pool) {
                (_, Some(_)) => "tcp",
                (ListenerKind::Https(_), None) => "https",
                (ListenerKind::Http { redirect_to: Some(_) }, None) => "http (redirects to https)",
                (ListenerKind::Http { .. }, None) => "http",
            };
            json!({
                "name": l.name,
                "address": l.addr,
                "protocol": protocol,
                "pool": l.tcp_pool,
                "proxy_protocol": l.proxy_protocol,
                "tls": tls,
            })
        })
        .collect();
    let routes: Vec<Value> = model.routes.iter().map(|r| route(model, r)).collect();
    let rules: Vec<Value> = model
        .rules
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "listeners": r.listeners,
                "when": r.conditions.iter().map(condition).collect::<Vec<_>>(),
                "action": action(&r.action),
            })
        })
        .collect();
    let pools: Vec<Value> = model
        .pools
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "algorithm": p.algorithm.as_str(),
                "protocol": match p.protocol {
                    UpstreamProtocol::Http1 => "HTTP/1.1",
                    UpstreamProtocol::H2c => "HTTP/2 (cleartext)",
                    UpstreamProtocol::H2 => "HTTP/2",
                },
                "tls": p.tls.as_ref().map(|t| if t.client.is_some() { "mTLS" } else { "TLS" }),
                "retries": p.retries,
                "servers": p.servers.len(),
                "check": p.health_check.as_ref().map(|c| c.words()),
            })
        })
        .collect();
    let (since, wall) = *STARTED;
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "started_unix": unix(wall),
        "uptime_seconds": since.elapsed().as_secs(),
        "file": model.source.as_ref().map(|p| p.display().to_string()),
        "last_reload": last_reload,
        "listeners": listeners,
        "routes": routes,
        "rules": rules,
        "pools": pools,
    })
}

fn route(model: &Model, r: &Route) -> Value {
    let host = match &r.host {
        HostMatch::Any => "any host".to_string(),
        HostMatch::Exact(h) => h.clone(),
        HostMatch::Suffix(s) => format!("*{s}"),
    };
    json!({
        "listeners": r.listeners,
        "host": host,
        "path_prefix": r.path_prefix,
        "pool": model.pools.get(r.pool).map(|p| p.name.as_str()),
        "max_body": r.max_body,
        "upgrades": r.upgrades,
    })
}

/// A rule's condition in words: `path starts with /admin`.
fn condition(c: &Condition) -> String {
    match c {
        Condition::Methods(m) => format!(
            "method is {}",
            m.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(" or ")
        ),
        Condition::Host(h) if h.starts_with('.') => format!("host is *{h}"),
        Condition::Host(h) => format!("host is {h}"),
        Condition::PathPrefix(p) => format!("path starts with {p}"),
        Condition::PathPrefixNoCase(p) => format!("path starts with {p} (any case)"),
        Condition::PathRegex(r) => format!("path matches /{}/", r.as_str()),
        Condition::Header { name, test } => match test {
            HeaderTest::Present => format!("header {name} is present"),
            HeaderTest::Equals(v) => format!("header {name} is {v}"),
            HeaderTest::Regex(r) => format!("header {name} matches /{}/", r.as_str()),
        },
        Condition::Query { name, equals: None } => format!("query has {name}"),
        Condition::Query {
            name,
            equals: Some(v),
        } => format!("query {name} is {v}"),
        Condition::Client(nets) => format!(
            "client in {}",
            nets.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
        ),
        Condition::Sni(s) => format!("SNI is {s}"),
    }
}

fn action(a: &Action) -> String {
    match a {
        Action::Allow => "allow".into(),
        Action::Log => "log".into(),
        Action::Deny { status, .. } => format!("deny with {}", status.as_u16()),
        Action::Tarpit { delay, status, .. } => {
            format!("tarpit {} ms, then {}", delay.as_millis(), status.as_u16())
        }
        Action::RateLimit {
            per_second,
            burst,
            cluster,
            ..
        } => format!(
            "rate limit {per_second}/s, burst {burst}{}",
            if *cluster { " (fleet-wide)" } else { "" }
        ),
    }
}
