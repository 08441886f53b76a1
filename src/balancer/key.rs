//! What the hash algorithm hashes.

use std::net::IpAddr;

use http::HeaderName;

use super::cookie;
use super::hash::{hash64, SEED_KEY};
use super::PickInput;

/// The request property that [`Algorithm::Hash`](super::Algorithm::Hash) hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    /// The client's IP address.
    ClientIp,
    /// A request header's (first) value; the client IP when missing or empty.
    Header(HeaderName),
    /// A cookie's value; the client IP when missing or empty.
    Cookie(String),
}

impl HashKey {
    /// Parses `client_ip`, `header:NAME` (a valid header name) or
    /// `cookie:NAME` (a valid cookie name, see
    /// [`is_valid_cookie_name`](super::is_valid_cookie_name)).
    pub fn parse(s: &str) -> Option<Self> {
        if s == "client_ip" {
            Some(Self::ClientIp)
        } else if let Some(name) = s.strip_prefix("header:") {
            HeaderName::from_bytes(name.as_bytes()).ok().map(Self::Header)
        } else if let Some(name) = s.strip_prefix("cookie:") {
            cookie::is_valid_cookie_name(name).then(|| Self::Cookie(name.to_owned()))
        } else {
            None
        }
    }
}

/// The stable hash of `key` for this request.
pub(super) fn key_hash(key: &HashKey, input: &PickInput<'_>) -> u64 {
    let value = match key {
        HashKey::ClientIp => None,
        HashKey::Header(name) => input.headers.get(name).map(|v| v.as_bytes()),
        HashKey::Cookie(name) => cookie::find(input.headers, name),
    };
    match value {
        Some(v) if !v.is_empty() => hash64(SEED_KEY, v),
        _ => ip_hash(input.client_ip),
    }
}

/// Hashes an address; an IPv4-mapped IPv6 address hashes as its IPv4 form.
fn ip_hash(ip: IpAddr) -> u64 {
    match ip.to_canonical() {
        IpAddr::V4(a) => hash64(SEED_KEY, &a.octets()),
        IpAddr::V6(a) => hash64(SEED_KEY, &a.octets()),
    }
}
