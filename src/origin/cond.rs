//! Validators and conditional requests (RFC 9110 §13): `ETag`,
//! `Last-Modified`, `If-Match`, `If-Unmodified-Since`, `If-None-Match`,
//! `If-Modified-Since` and `If-Range`.
//!
//! Every ETag this module hands out is strong; dates compare at
//! whole-second precision, as `Last-Modified` carries no more.

use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{self, HeaderMap, HeaderValue};

/// What the preconditions of a GET or HEAD say to do.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Answer normally (200, or 206 if a range applies).
    Proceed,
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// The validators of one representation.
#[derive(Debug, Clone)]
pub(super) struct Validators {
    /// The opaque part of the (strong) ETag, without quotes.
    pub etag: String,
    /// Last modification, whole seconds since the epoch, if known and
    /// printable as an HTTP date.
    pub modified: Option<u64>,
}

/// The last second an HTTP date can name (31 Dec 9999 23:59:59).
const MAX_HTTP_DATE: u64 = 253_402_300_799;

/// `t` as whole seconds since the epoch, if an HTTP date can show it.
pub(super) fn unix_secs(t: SystemTime) -> Option<u64> {
    let s = t.duration_since(UNIX_EPOCH).ok()?.as_secs();
    (s <= MAX_HTTP_DATE).then_some(s)
}

/// An HTTP date header value for `secs` since the epoch.
pub(super) fn http_date(secs: u64) -> Option<HeaderValue> {
    if secs > MAX_HTTP_DATE {
        return None;
    }
    let t = UNIX_EPOCH.checked_add(std::time::Duration::from_secs(secs))?;
    HeaderValue::from_str(&httpdate::fmt_http_date(t)).ok()
}

impl Validators {
    /// The `ETag` header value.
    pub fn etag_header(&self) -> Option<HeaderValue> {
        HeaderValue::from_str(&format!("\"{}\"", self.etag)).ok()
    }

    /// Evaluates the preconditions in the order RFC 9110 §13.2.2 gives.
    pub fn evaluate(&self, headers: &HeaderMap) -> Verdict {
        if headers.contains_key(header::IF_MATCH) {
            if !self.any_tag_matches(headers, header::IF_MATCH, true) {
                return Verdict::Failed;
            }
        } else if let (Some(since), Some(m)) =
            (header_date(headers, header::IF_UNMODIFIED_SINCE), self.modified)
        {
            if m > since {
                return Verdict::Failed;
            }
        }
        if headers.contains_key(header::IF_NONE_MATCH) {
            if self.any_tag_matches(headers, header::IF_NONE_MATCH, false) {
                return Verdict::NotModified;
            }
        } else if let (Some(since), Some(m)) =
            (header_date(headers, header::IF_MODIFIED_SINCE), self.modified)
        {
            if m <= since {
                return Verdict::NotModified;
            }
        }
        Verdict::Proceed
    }

    /// Whether a `Range` may be honoured: true without `If-Range`, or when
    /// its ETag matches strongly or its date equals `Last-Modified`.
    pub fn if_range_allows(&self, headers: &HeaderMap) -> bool {
        let Some(v) = headers.get(header::IF_RANGE) else {
            return true;
        };
        let Ok(v) = v.to_str() else {
            return false;
        };
        let v = v.trim();
        if v.starts_with('"') || v.starts_with("W/") {
            return for_each_tag(v, |weak, tag| !weak && tag == self.etag) == Some(true);
        }
        match (
            httpdate::parse_http_date(v).ok().and_then(unix_secs),
            self.modified,
        ) {
            (Some(d), Some(m)) => d == m,
            _ => false,
        }
    }

    /// Whether any value of the `name` header lists `*` or our ETag
    /// (strong or weak comparison). A malformed list matches nothing.
    fn any_tag_matches(&self, headers: &HeaderMap, name: header::HeaderName, strong: bool) -> bool {
        headers.get_all(name).iter().any(|v| {
            let Ok(v) = v.to_str() else {
                return false;
            };
            if v.trim() == "*" {
                return true;
            }
            for_each_tag(v, |weak, tag| (!strong || !weak) && tag == self.etag) == Some(true)
        })
    }
}

/// A date header, as seconds since the epoch; `None` if absent or invalid.
fn header_date(headers: &HeaderMap, name: header::HeaderName) -> Option<u64> {
    let v = headers.get(name)?.to_str().ok()?;
    httpdate::parse_http_date(v.trim()).ok().and_then(unix_secs)
}

/// Walks a comma-separated list of entity tags (`W/"x", "y"`), calling
/// `hit(weak, opaque)` on each until it returns true. `Some(true)` if one
/// did, `Some(false)` if none did, `None` if the list is malformed.
fn for_each_tag(mut s: &str, mut hit: impl FnMut(bool, &str) -> bool) -> Option<bool> {
    loop {
        s = s.trim_start_matches([' ', '\t', ',']);
        if s.is_empty() {
            return Some(false);
        }
        let weak = match s.strip_prefix("W/") {
            Some(rest) => {
                s = rest;
                true
            }
            None => false,
        };
        let rest = s.strip_prefix('"')?;
        let end = rest.find('"')?;
        if hit(weak, &rest[..end]) {
            return Some(true);
        }
        s = &rest[end + 1..];
        if !(s.is_empty() || s.starts_with([' ', '\t', ','])) {
            return None;
        }
    }
}
