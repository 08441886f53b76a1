//! One probe of one server: a TCP connect, an HTTP/1.1 request whose
//! status (and optionally body) must match, or a `mysql` check, which also
//! records the server's database role.

use bytes::Bytes;
use http::{header, Request};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::balancer::{Backend, DbRole, DbStatus};
use crate::config::model::{CheckKind, HealthCheck};
use crate::runtime::UpstreamTls;

/// Largest body read when looking for `body_contains`.
const MAX_BODY: usize = 64 * 1024;

/// Probes `server` (over TLS when its pool has `[pool.tls]`: a certificate
/// that does not verify fails the check); what it saw (`HTTP 200`,
/// `TCP connect`, a database role), or why it failed.
pub async fn probe(
    server: &Backend,
    check: &HealthCheck,
    tls: Option<&UpstreamTls>,
) -> Result<String, String> {
    let result = match tokio::time::timeout(check.timeout, probe_inner(server, check, tls)).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {:?}", check.timeout)),
    };
    // A mysql check also says what the server is: down, with why, when it failed.
    if let (CheckKind::Mysql { .. }, Err(reason)) = (&check.kind, &result) {
        server.db.set(DbStatus {
            role: DbRole::Down,
            lag: None,
            reason: reason.clone(),
        });
    }
    result
}

async fn probe_inner(
    server: &Backend,
    check: &HealthCheck,
    tls: Option<&UpstreamTls>,
) -> Result<String, String> {
    if let CheckKind::Mysql { user, password } = &check.kind {
        let status = super::mysql::check(server.addr, user, &password.0).await?;
        let saw = format!("MySQL {}", status.role.as_str());
        server.db.set(status);
        return Ok(saw);
    }
    let stream = TcpStream::connect(server.addr)
        .await
        .map_err(|e| format!("connect to {}: {e}", server.addr))?;
    let _ = stream.set_nodelay(true);
    let Some(tls) = tls else {
        return http_probe(stream, server, check).await;
    };
    let name = tls
        .names
        .get(&server.name)
        .cloned()
        .ok_or_else(|| "no TLS name for this server".to_string())?;
    let stream = tls.connector.connect(name, stream).await.map_err(|e| {
        let why = format!("TLS: {e}");
        server.stats.tls_failure(&why);
        why
    })?;
    let cert = stream.get_ref().1.peer_certificates().and_then(|c| c.first());
    server.stats.tls_connected(cert.map(|c| c.as_ref()));
    http_probe(stream, server, check).await
}

/// The HTTP part of a check (nothing more for a TCP check).
async fn http_probe<IO>(stream: IO, server: &Backend, check: &HealthCheck) -> Result<String, String>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let CheckKind::Http {
        method,
        path,
        host,
        expect,
        body_contains,
    } = &check.kind
    else {
        return Ok("TCP connect".to_string());
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    let driver = tokio::spawn(conn);
    let host = host.clone().unwrap_or_else(|| server.addr.to_string());
    let req = Request::builder()
        .method(method.clone())
        .uri(path.as_str())
        .header(header::HOST, host)
        .header(header::USER_AGENT, "rampart-health-check")
        .header(header::CONNECTION, "close")
        .body(Empty::new())
        .map_err(|e| format!("building the request: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = resp.status().as_u16();
    let result = if !expect.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status)) {
        Err(format!("status {status} is not expected"))
    } else if let Some(needle) = body_contains {
        let body = http_body_util::Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("reading the body: {e}"))?
            .to_bytes();
        if memfind(&body, needle.as_bytes()) {
            Ok(format!("HTTP {status}, body matches"))
        } else {
            Err(format!("body does not contain {needle:?}"))
        }
    } else {
        Ok(format!("HTTP {status}"))
    };
    driver.abort();
    result
}

fn memfind(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}
