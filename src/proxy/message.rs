//! A request and an answer as the pipeline handles them: the start line's
//! parts, the head's fields as they came ([`Head`]: offsets into the read
//! buffer for HTTP/1.1, hyper's map for HTTP/2), the rewrite to apply when
//! they are written out ([`Edits`]), and the body. Nothing is copied to be
//! rewritten; only what hyper needs (HTTP/2 on either side) is turned into
//! an `http::HeaderMap`, at the edge.

use http::uri::{Authority, PathAndQuery};
use http::{HeaderValue, Method, StatusCode, Uri, Version};

use super::h1::reqbody::ClientBody;
use super::Body;
use crate::fields::{Class, Classes, Edits, Head, HeaderView};

/// A client's request.
#[derive(Debug)]
pub struct ClientRequest {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub head: Head,
    pub body: ClientBody,
}

impl ClientRequest {
    /// An HTTP/2 request from hyper.
    pub fn from_hyper(req: http::Request<hyper::body::Incoming>) -> Self {
        let (parts, body) = req.into_parts();
        ClientRequest {
            method: parts.method,
            uri: parts.uri,
            version: parts.version,
            head: Head::Map(parts.headers),
            body: ClientBody::Hyper(body),
        }
    }

    /// HTTP/2 or HTTP/3: pseudo-header fields, no connection-level
    /// framing of its own (what HTTP/1.x's parser checks is checked here).
    pub fn multiplexed(&self) -> bool {
        matches!(self.version, Version::HTTP_2 | Version::HTTP_3)
    }

    /// The request's host: the authority of an absolute-form target (it
    /// replaces `Host`, RFC 9112 §3.2.2), else `Host`, else (HTTP/2) the
    /// `:authority`; and whether it is the `Host` field as sent.
    pub fn host(&self) -> (Option<HeaderValue>, bool) {
        let authority = || {
            self.uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        };
        if !self.multiplexed() && self.uri.authority().is_some() {
            // Without user info, which Host never carries.
            let host = self.uri.authority().and_then(|a| {
                let value = match a.port() {
                    Some(p) => format!("{}:{}", a.host(), p.as_str()),
                    None => a.host().to_string(),
                };
                HeaderValue::from_str(&value).ok()
            });
            return (host, false);
        }
        match self.head.value_of(Class::Host, "host") {
            Some(h) => (Some(h), true),
            None => (authority(), false),
        }
    }
}

/// What a request is sent to a backend as: borrowed from the pipeline, so
/// that a retry sends the same again.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub method: &'a Method,
    /// The origin-form target (the normalised path and the query).
    pub target: &'a PathAndQuery,
    /// The host, as the authority of an HTTP/2 request.
    pub authority: Option<&'a Authority>,
    pub head: &'a Head,
    pub edits: &'a Edits,
}

impl Outgoing<'_> {
    /// Whether the request may be replayed: idempotent (RFC 9110 §9.2.2).
    pub fn idempotent(&self) -> bool {
        matches!(
            *self.method,
            Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
        )
    }

    /// Idempotent, or made safe to repeat by the client
    /// (`Idempotency-Key`).
    pub fn repeatable(&self) -> bool {
        self.idempotent() || self.head.contains("idempotency-key")
    }
}

/// An answer on its way to the client: the backend's (or rampart's own)
/// fields with the rewrite to apply when they are written, and the body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub head: Head,
    pub edits: Edits,
    pub body: Body,
    /// When a backend's head arrived (None: rampart's own answer).
    pub at: Option<tokio::time::Instant>,
}

impl Answer {
    /// An answer of rampart's own, with these fields.
    pub fn new(status: StatusCode, body: Body) -> Self {
        Answer {
            status,
            head: Head::default(),
            edits: Edits::default(),
            body,
            at: None,
        }
    }

    /// Adds a field.
    pub fn with(mut self, name: &'static str, value: HeaderValue) -> Self {
        self.edits.add.push(name, value);
        self
    }

    /// A field's value as it will be written (the edits applied): the
    /// first added one of `class`, else the head's when not dropped.
    pub fn field(&self, class: Class, name: &str) -> Option<HeaderValue> {
        if let Some((_, v)) = self.edits.add.iter().find(|(n, _)| *n == name) {
            return Some(v.clone());
        }
        (self.edits.drop & class.bit() == 0)
            .then(|| self.head.value_of(class, name))
            .flatten()
    }

    /// As hyper takes it (HTTP/2 clients): the fields less `drop` and the
    /// edits, as a map; None when a backend's field is one `http` refuses.
    pub fn into_response(self, drop: Classes) -> Option<http::Response<Body>> {
        let headers = self.head.to_map(self.edits.drop | drop, &self.edits.add)?;
        let mut resp = http::Response::new(self.body);
        *resp.status_mut() = self.status;
        *resp.headers_mut() = headers;
        Some(resp)
    }
}
