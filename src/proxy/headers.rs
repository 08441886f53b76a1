//! Header rewriting at the proxy boundary: hop-by-hop headers removed
//! (RFC 9110 §7.6.1, including those a `Connection` header names), the
//! `X-Forwarded-*` and `Forwarded` headers set, and the request id kept or
//! created.

use std::cell::Cell;
use std::fmt::Write;
use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// The fixed hop-by-hop set; `Upgrade` is handled by the caller because a
/// WebSocket handshake must carry it through.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
];

/// Removes hop-by-hop headers, and every header the `Connection` header
/// names. `Transfer-Encoding` is hyper's to set on each side. With
/// `keep_upgrade`, `Upgrade` stays and `Connection: upgrade` is restored.
pub fn strip_hop_by_hop(h: &mut HeaderMap, keep_upgrade: bool) {
    if h.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = h
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .collect();
        for n in named {
            if !(keep_upgrade && n == header::UPGRADE) {
                h.remove(n);
            }
        }
    }
    for n in &HOP_BY_HOP {
        h.remove(n);
    }
    h.remove(header::TRANSFER_ENCODING);
    if keep_upgrade {
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        h.remove(header::UPGRADE);
    }
}

/// Is this an HTTP/1.1 upgrade request (such as a WebSocket handshake)?
pub fn wants_upgrade(h: &HeaderMap) -> bool {
    h.contains_key(header::UPGRADE)
        && h.get_all(header::CONNECTION).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
        })
}

/// Sets the forwarding headers for a request from `client` that arrived
/// over `proto` (`http`/`https`) for `host`.
pub fn set_forwarded(h: &mut HeaderMap, client: IpAddr, https: bool, host: Option<&HeaderValue>) {
    let mut ip = String::with_capacity(48);
    let _ = write!(ip, "{client}");
    // X-Forwarded-For: append to the chain.
    let xff = match h.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prev) if !prev.trim().is_empty() => format!("{prev}, {ip}"),
        _ => ip.clone(),
    };
    if let Ok(v) = HeaderValue::try_from(xff) {
        h.insert(X_FORWARDED_FOR, v);
    }
    let proto = if https { "https" } else { "http" };
    h.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    // Forwarded (RFC 7239): IPv6 and host:port must be quoted.
    let mut fwd = String::with_capacity(64);
    match client {
        IpAddr::V4(_) => {
            let _ = write!(fwd, "for={ip}");
        }
        IpAddr::V6(_) => {
            let _ = write!(fwd, "for=\"[{ip}]\"");
        }
    }
    let _ = write!(fwd, ";proto={proto}");
    match host.and_then(|v| v.to_str().ok()) {
        Some(hs) if !hs.contains(['"', '\\']) => {
            let _ = write!(fwd, ";host=\"{hs}\"");
            if let Some(v) = host {
                h.insert(X_FORWARDED_HOST, v.clone());
            }
        }
        _ => {
            h.remove(X_FORWARDED_HOST);
        }
    }
    if let Ok(v) = HeaderValue::try_from(fwd) {
        h.insert(header::FORWARDED, v);
    }
}

/// Keeps a sane incoming `X-Request-Id` or creates one; returns the value.
pub fn request_id(h: &mut HeaderMap) -> HeaderValue {
    if let Some(v) = h.get(&X_REQUEST_ID) {
        let ok = !v.is_empty()
            && v.len() <= 128
            && v.as_bytes()
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b));
        if ok {
            return v.clone();
        }
    }
    let v = new_request_id();
    h.insert(X_REQUEST_ID, v.clone());
    v
}

thread_local! {
    static RID: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(std::process::id().into());
    hasher.finish()
}

/// 16 hex digits from a per-thread splitmix64 sequence with a random seed.
fn new_request_id() -> HeaderValue {
    let x = RID.with(|c| {
        let s = c.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        c.set(s);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    });
    let mut buf = [0u8; 16];
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in buf.iter_mut().enumerate() {
        *b = HEX[((x >> (60 - 4 * i)) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&buf).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_hop_by_hop_and_connection_named() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("close, X-Secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(KEEP_ALIVE, HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("x-keep"));
    }

    #[test]
    fn forwarded_headers() {
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.1"));
        let host = HeaderValue::from_static("example.com:8443");
        set_forwarded(&mut h, "::1".parse().expect("ip"), true, Some(&host));
        assert_eq!(h[&X_FORWARDED_FOR], "10.0.0.1, ::1");
        assert_eq!(h[&X_FORWARDED_PROTO], "https");
        assert_eq!(h[&X_FORWARDED_HOST], "example.com:8443");
        assert_eq!(
            h[header::FORWARDED],
            "for=\"[::1]\";proto=https;host=\"example.com:8443\""
        );
    }

    #[test]
    fn request_ids() {
        let mut h = HeaderMap::new();
        let a = request_id(&mut h);
        assert_eq!(a.len(), 16);
        let mut h2 = HeaderMap::new();
        assert_ne!(request_id(&mut h2), a);
        let mut h3 = HeaderMap::new();
        h3.insert(X_REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&mut h3), "abc-123");
        let mut h4 = HeaderMap::new();
        h4.insert(X_REQUEST_ID, HeaderValue::from_static("bad value with spaces"));
        assert_ne!(request_id(&mut h4), "bad value with spaces");
    }
}
