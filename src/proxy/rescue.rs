//! The one place where proxy errors become HTTP answers.
//!
//! Every failure on the request path is a [`ProxyError`]; [`answer`] maps
//! it to a status and a short plain-text body and logs it (with the
//! backend's name where there is one). Nothing else on the request path
//! builds an error response (the admin API answers its own errors, as
//! JSON, in `admin::answer`).

use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderValue, StatusCode};

use super::message::Answer;
use super::Body;
use crate::stats::Refusal;

/// Why a request could not be proxied.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    #[error("bad request: {0}")]
    Framing(&'static str),
    #[error("bad request: invalid chunked request body")]
    BadChunking,
    #[error("the request head is larger than allowed")]
    HeadTooLarge,
    #[error("the request head did not arrive in time")]
    HeadTimeout,
    #[error("not implemented: {0}")]
    NotImplemented(&'static str),
    #[error("the request target is longer than allowed")]
    UriTooLong,
    #[error("the request body is larger than {0} bytes")]
    BodyTooLarge(u64),
    #[error("the request body arrived too slowly")]
    BodyTooSlow,
    #[error("the request body sent nothing for {0:?}")]
    BodyIdle(Duration),
    #[error("the client went away before its request was sent whole")]
    ClientAborted,
    #[error("refused path: {0}")]
    BadPath(crate::firewall::path::PathError),
    #[error("denied by firewall rule `{rule}`")]
    Denied {
        rule: String,
        status: StatusCode,
        body: bytes::Bytes,
        retry_after: Option<u64>,
    },
    #[error("no route matches host `{host}` and path `{path}`")]
    NoRoute { host: String, path: String },
    #[error("pool `{0}` has no server that can take the request (all down, ejected or draining)")]
    NoServer(String),
    #[error("pool `{0}` is at its limit of requests in flight")]
    Overloaded(String),
    #[error("connecting to backend `{server}` ({addr}) failed: {source}")]
    Connect {
        server: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS to backend `{server}` failed: {reason}")]
    BackendTls { server: String, reason: String },
    #[error("connecting to backend `{server}` timed out after {after:?}")]
    ConnectTimeout { server: String, after: Duration },
    #[error("backend `{server}` sent no response header within {after:?}")]
    ResponseTimeout { server: String, after: Duration },
    #[error("backend `{server}` sent an invalid response: {what}")]
    BadResponse { server: String, what: &'static str },
    #[error("backend `{server}` failed: {source}")]
    Backend {
        server: String,
        #[source]
        source: super::h1::client::ClientError,
    },
    #[error("backend `{server}` failed: {source}")]
    Upstream {
        server: String,
        #[source]
        source: hyper::Error,
    },
}

impl ProxyError {
    /// Why this is a refusal of the client's request, if it is one: such
    /// a request is counted by reason, recorded as a firewall event and
    /// counted towards a ban (`proxy::refusals`).
    pub fn refusal(&self) -> Option<Refusal> {
        Some(match self {
            ProxyError::Framing(_) => Refusal::Framing,
            ProxyError::BadChunking => Refusal::BadChunking,
            ProxyError::HeadTimeout => Refusal::HeaderTimeout,
            ProxyError::HeadTooLarge => Refusal::HeadTooLarge,
            ProxyError::UriTooLong => Refusal::UriTooLong,
            ProxyError::BadRequest(_) => Refusal::Malformed,
            ProxyError::NotImplemented(_) => Refusal::NotImplemented,
            ProxyError::BadPath(_) => Refusal::BadPath,
            ProxyError::BodyTooLarge(_) => Refusal::BodyTooLarge,
            ProxyError::BodyTooSlow => Refusal::BodyTooSlow,
            ProxyError::BodyIdle(_) => Refusal::BodyIdle,
            ProxyError::Denied { status, .. } if *status == StatusCode::TOO_MANY_REQUESTS => {
                Refusal::RateLimited
            }
            ProxyError::Denied { .. } => Refusal::Denied,
            _ => return None,
        })
    }

    /// What kind of client misbehaviour this is, if any (the reason a ban
    /// names): every refusal.
    pub fn violation(&self) -> Option<&'static str> {
        Some(match self.refusal()? {
            Refusal::Framing => "conflicting framing headers (request smuggling)",
            Refusal::BadChunking => "malformed chunked body",
            Refusal::HeaderTimeout => "request head too slow",
            Refusal::HeadTooLarge => "head too large",
            Refusal::UriTooLong => "target too long",
            Refusal::Malformed => "malformed request",
            Refusal::NotImplemented => "method not implemented",
            Refusal::BadPath => "refused path",
            Refusal::BodyTooLarge => "body too large",
            Refusal::BodyTooSlow => "body too slow",
            Refusal::BodyIdle => "body stalled",
            Refusal::Denied => "denied by a rule",
            Refusal::RateLimited => "rate limited",
        })
    }

    /// The client's doing, not the server's: nothing is retried, and the
    /// server's health and ejection do not hear of it.
    pub fn is_client_fault(&self) -> bool {
        matches!(
            self,
            ProxyError::BodyTooLarge(_)
                | ProxyError::BodyTooSlow
                | ProxyError::BodyIdle(_)
                | ProxyError::ClientAborted
        )
    }

    /// A short name of what happened, for the access log (`error`).
    pub fn code(&self) -> &'static str {
        match self {
            ProxyError::BadRequest(_) => "bad_request",
            ProxyError::Framing(_) => "framing",
            ProxyError::BadChunking => "bad_chunking",
            ProxyError::HeadTooLarge => "head_too_large",
            ProxyError::HeadTimeout => "head_timeout",
            ProxyError::NotImplemented(_) => "not_implemented",
            ProxyError::UriTooLong => "uri_too_long",
            ProxyError::BodyTooLarge(_) => "body_too_large",
            ProxyError::BodyTooSlow => "body_too_slow",
            ProxyError::BodyIdle(_) => "body_idle",
            ProxyError::ClientAborted => "client_aborted",
            ProxyError::BadPath(_) => "bad_path",
            ProxyError::Denied { .. } => "denied",
            ProxyError::NoRoute { .. } => "no_route",
            ProxyError::NoServer(_) => "no_server",
            ProxyError::Overloaded(_) => "overloaded",
            ProxyError::Connect { .. } => "connect_failed",
            ProxyError::BackendTls { .. } => "backend_tls",
            ProxyError::ConnectTimeout { .. } => "connect_timeout",
            ProxyError::ResponseTimeout { .. } => "response_timeout",
            ProxyError::BadResponse { .. } => "bad_response",
            ProxyError::Backend { .. } | ProxyError::Upstream { .. } => "backend_failed",
        }
    }

    /// The status a client receives for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::BadRequest(_)
            | ProxyError::Framing(_)
            | ProxyError::BadChunking
            | ProxyError::BadPath(_) => StatusCode::BAD_REQUEST,
            ProxyError::UriTooLong => StatusCode::URI_TOO_LONG,
            ProxyError::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ProxyError::HeadTimeout => StatusCode::REQUEST_TIMEOUT,
            ProxyError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ProxyError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::BodyTooSlow | ProxyError::BodyIdle(_) => StatusCode::REQUEST_TIMEOUT,
            // nginx's "client closed request": the client is gone and
            // sees nothing; the logs and counters do.
            ProxyError::ClientAborted => client_closed(),
            ProxyError::Denied { status, .. } => *status,
            ProxyError::NoRoute { .. } => StatusCode::NOT_FOUND,
            ProxyError::NoServer(_) | ProxyError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Connect { .. }
            | ProxyError::BackendTls { .. }
            | ProxyError::Backend { .. }
            | ProxyError::Upstream { .. }
            | ProxyError::BadResponse { .. } => StatusCode::BAD_GATEWAY,
            ProxyError::ConnectTimeout { .. } | ProxyError::ResponseTimeout { .. } => {
                StatusCode::GATEWAY_TIMEOUT
            }
        }
    }
}

/// The status logged and counted for a request whose client went away
/// (499, as nginx logs it).
pub fn client_closed() -> StatusCode {
    StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST)
}

/// Builds the answer for `err` and logs it. `request_id` is echoed so that
/// a user can quote it when reporting the failure.
pub fn answer(err: &ProxyError, request_id: Option<&HeaderValue>) -> Answer {
    let status = err.status();
    let rid = request_id.and_then(|v| v.to_str().ok()).unwrap_or("-");
    if status.is_server_error() {
        tracing::warn!(status = status.as_u16(), request_id = rid, "{err}");
    } else {
        tracing::debug!(status = status.as_u16(), request_id = rid, "{err}");
    }
    let plain = HeaderValue::from_static("text/plain; charset=utf-8");
    let mut a = if let ProxyError::Denied {
        body, retry_after, ..
    } = err
    {
        let a = Answer::new(status, Body::full(body.clone())).with("content-type", plain);
        match retry_after {
            Some(secs) => a.with("retry-after", HeaderValue::from(*secs)),
            None => a,
        }
    } else {
        let text = match err {
            ProxyError::BadRequest(why) | ProxyError::Framing(why) => format!("400 Bad Request: {why}\n"),
            ProxyError::BadChunking => "400 Bad Request: invalid chunked request body\n".to_string(),
            ProxyError::BadPath(why) => format!("400 Bad Request: {why}\n"),
            _ => format!(
                "{} {}\n",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ),
        };
        let a = Answer::new(status, Body::full(text)).with("content-type", plain);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            a.with("retry-after", HeaderValue::from_static("1"))
        } else {
            a
        }
    };
    if let Some(id) = request_id {
        a.edits.add.push("x-request-id", id.clone());
    }
    a
}
