//! Header rewriting at the proxy boundary: hop-by-hop headers removed
//! (RFC 9110 §7.6.1, including those a `Connection` header names), the
//! `X-Forwarded-*` and `Forwarded` headers set, and the request id kept or
//! created.

use std::cell::{Cell, RefCell};
use std::sync::OnceLock;

use bytes::BytesMut;
use std::fmt::Write;
use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// A verified client certificate's subject, SANs (comma-separated) and
/// SHA-256 fingerprint (hex), as backends get them.
pub const X_CLIENT_CERT_SUBJECT: HeaderName = HeaderName::from_static("x-client-cert-subject");
pub const X_CLIENT_CERT_SAN: HeaderName = HeaderName::from_static("x-client-cert-san");
pub const X_CLIENT_CERT_SHA256: HeaderName = HeaderName::from_static("x-client-cert-sha256");

/// A verified client certificate's identity, ready to be sent.
#[derive(Debug, Clone)]
pub struct ClientCertId {
    subject: HeaderValue,
    san: HeaderValue,
    sha256: HeaderValue,
}

impl ClientCertId {
    /// Bytes a header value cannot carry become `?`.
    pub fn new(subject: &str, sans: &[String], sha256: &str) -> Self {
        let value = |s: &str| {
            let clean: String = s
                .chars()
                .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
                .collect();
            HeaderValue::from_str(&clean).unwrap_or(HeaderValue::from_static("?"))
        };
        ClientCertId {
            subject: value(subject),
            san: value(&sans.join(", ")),
            sha256: value(sha256),
        }
    }
}

/// Removes every client-sent copy of the client-certificate headers (no
/// client can set them), then adds the verified identity, if any: so that
/// rules and backends see only what the TLS handshake proved.
pub fn client_cert(h: &mut HeaderMap, id: Option<&ClientCertId>) {
    for name in [X_CLIENT_CERT_SUBJECT, X_CLIENT_CERT_SAN, X_CLIENT_CERT_SHA256] {
        h.remove(name);
    }
    if let Some(id) = id {
        h.insert(X_CLIENT_CERT_SUBJECT, id.subject.clone());
        h.insert(X_CLIENT_CERT_SAN, id.san.clone());
        h.insert(X_CLIENT_CERT_SHA256, id.sha256.clone());
    }
}
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// The `X-Forwarded-For` lines of a request from a trusted proxy, read
/// once: the client they name and the chain to pass on.
#[derive(Debug, Default)]
pub struct ForwardedFor {
    /// The rightmost address that is not itself a trusted proxy; `None`
    /// when any hop is not an address.
    pub client: Option<IpAddr>,
    /// Every non-empty line, trimmed, joined with `, `; `None` when a line
    /// is not text or there is none.
    chain: Option<String>,
}

impl ForwardedFor {
    pub fn read(h: &HeaderMap, trusted: &[ipnet::IpNet]) -> Self {
        let mut client = None;
        let mut all_addresses = true;
        let mut chain = String::new();
        for v in h.get_all(&X_FORWARDED_FOR) {
            let Ok(line) = v.to_str() else {
                return ForwardedFor::default();
            };
            for part in line.split(',') {
                match part.trim().parse::<IpAddr>() {
                    Ok(ip) if !trusted.iter().any(|n| n.contains(&ip)) => client = Some(ip),
                    Ok(_) => {}
                    Err(_) => all_addresses = false,
                }
            }
            let line = line.trim();
            if !line.is_empty() {
                if !chain.is_empty() {
                    chain.push_str(", ");
                }
                chain.push_str(line);
            }
        }
        ForwardedFor {
            client: client.filter(|_| all_addresses),
            chain: (!chain.is_empty()).then_some(chain),
        }
    }
}

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
/// Only meaningful with an `h2c` upgrade, which is never forwarded.
const HTTP2_SETTINGS: HeaderName = HeaderName::from_static("http2-settings");

/// The fixed hop-by-hop set; `Upgrade` is handled by the caller because a
/// WebSocket handshake must carry it through.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    HTTP2_SETTINGS,
];

/// Removes hop-by-hop headers, and every header the `Connection` header
/// names. `Transfer-Encoding` is hyper's to set on each side. With
/// `keep_upgrade`, `Upgrade` stays and `Connection: upgrade` is restored.
pub fn strip_hop_by_hop(h: &mut HeaderMap, keep_upgrade: bool) {
    // Most messages carry none of them: one pass over the names decides.
    let any = h
        .keys()
        .any(|k| HOP_BY_HOP.contains(k) || k == header::TRANSFER_ENCODING || k == header::UPGRADE);
    if !any && !keep_upgrade {
        return;
    }
    if h.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = list_items(h, header::CONNECTION)
            .filter_map(|t| HeaderName::from_bytes(t).ok())
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

/// The items of a comma-separated header on all its lines, trimmed, read
/// from the bytes (a value with a byte that is not visible ASCII still
/// lists its items).
fn list_items(h: &HeaderMap, name: HeaderName) -> impl Iterator<Item = &[u8]> {
    h.get_all(name)
        .into_iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
}

/// Decides an HTTP/1.1 upgrade request: true when `Connection` names
/// `upgrade` and `Upgrade` offers at least one protocol of `allowed`
/// (lower-case names; a protocol's `/version` is ignored when matching).
/// `Upgrade` is then rewritten to the allowed offers only; the caller strips
/// it (and everything else hop-by-hop) when this returns false, so that
/// such a request goes on as a plain request (the `h2c` smuggling defence).
pub fn allowed_upgrade(h: &mut HeaderMap, allowed: &[String]) -> bool {
    if !h.contains_key(header::UPGRADE) {
        return false;
    }
    let asked = list_items(h, header::CONNECTION).any(|t| t.eq_ignore_ascii_case(b"upgrade"));
    if !asked || allowed.is_empty() {
        return false;
    }
    let mut offers = list_items(h, header::UPGRADE)
        .filter(|p| {
            let name = p.split(|&b| b == b'/').next().unwrap_or_default();
            allowed.iter().any(|a| a.as_bytes().eq_ignore_ascii_case(name))
        })
        .peekable();
    if offers.peek().is_none() {
        return false;
    }
    let kept: Vec<u8> = offers.collect::<Vec<_>>().join(&b", "[..]);
    match HeaderValue::from_bytes(&kept) {
        Ok(v) => {
            h.insert(header::UPGRADE, v);
            true
        }
        Err(_) => false,
    }
}

/// The forwarding header values of one client connection, built once per
/// connection instead of once per request.
#[derive(Debug)]
pub struct ClientHeaders {
    ip: IpAddr,
    https: bool,
    /// `X-Forwarded-For` when the request brings none.
    xff: Option<HeaderValue>,
    /// The `Forwarded` value for the first host seen on this connection
    /// (almost every connection only ever names one).
    fwd: OnceLock<(HeaderValue, HeaderValue)>,
}

impl ClientHeaders {
    pub fn new(ip: IpAddr, https: bool) -> Self {
        ClientHeaders {
            ip,
            https,
            xff: HeaderValue::try_from(ip.to_string()).ok(),
            fwd: OnceLock::new(),
        }
    }

    fn forwarded(&self, host: Option<&str>) -> Option<HeaderValue> {
        let mut fwd = String::with_capacity(64);
        match self.ip {
            IpAddr::V4(ip) => {
                let _ = write!(fwd, "for={ip}");
            }
            IpAddr::V6(ip) => {
                let _ = write!(fwd, "for=\"[{ip}]\"");
            }
        }
        let _ = write!(fwd, ";proto={}", if self.https { "https" } else { "http" });
        if let Some(hs) = host {
            let _ = write!(fwd, ";host=\"{hs}\"");
        }
        HeaderValue::try_from(fwd).ok()
    }
}

/// Sets `X-Forwarded-For` (appended to `trusted`'s chain, or replacing an
/// untrusted one), `X-Forwarded-Proto`, `X-Forwarded-Host` and `Forwarded`
/// for a request on `c` for `host`. `trusted`: what a trusted proxy
/// forwarded (`None`: the peer is not trusted).
pub fn set_forwarded(
    h: &mut HeaderMap,
    c: &ClientHeaders,
    host: Option<&HeaderValue>,
    trusted: Option<&ForwardedFor>,
) {
    if trusted.is_none() {
        // The peer is not a trusted proxy: whatever it says about earlier
        // hops is dropped, not passed on.
        h.remove(X_REAL_IP);
    }
    match trusted.and_then(|t| t.chain.as_deref()) {
        Some(prev) => {
            if let Ok(v) = HeaderValue::try_from(format!("{prev}, {}", c.ip)) {
                h.insert(X_FORWARDED_FOR, v);
            }
        }
        None => {
            if let Some(v) = &c.xff {
                h.insert(X_FORWARDED_FOR, v.clone());
            }
        }
    }
    let proto = if c.https { "https" } else { "http" };
    h.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    // Forwarded (RFC 7239): IPv6 and host:port are quoted.
    let host = host.filter(|v| v.to_str().is_ok_and(|s| !s.contains(['"', '\\'])));
    let fwd = match host {
        Some(hv) => {
            h.insert(X_FORWARDED_HOST, hv.clone());
            match c.fwd.get() {
                Some((cached_host, v)) if cached_host == hv => Some(v.clone()),
                _ => {
                    let v = c.forwarded(hv.to_str().ok());
                    if let Some(v) = &v {
                        let _ = c.fwd.set((hv.clone(), v.clone()));
                    }
                    v
                }
            }
        }
        None => {
            h.remove(X_FORWARDED_HOST);
            c.forwarded(None)
        }
    };
    if let Some(v) = fwd {
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

thread_local! {
    /// Request ids are cut from a shared buffer: one allocation per 256 ids.
    static RID_ARENA: RefCell<BytesMut> = RefCell::new(BytesMut::new());
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
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 16];
    for (i, b) in buf.iter_mut().enumerate() {
        *b = HEX[((x >> (60 - 4 * i)) & 0xf) as usize];
    }
    let bytes = RID_ARENA.with(|a| {
        let mut a = a.borrow_mut();
        if a.capacity() < buf.len() {
            *a = BytesMut::with_capacity(buf.len() * 256);
        }
        a.extend_from_slice(&buf);
        a.split_to(buf.len()).freeze()
    });
    HeaderValue::from_maybe_shared(bytes).unwrap_or_else(|_| HeaderValue::from_static("0"))
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

    /// Found by `tests/integration/fuzz.rs`: a `Connection` value with a
    /// byte that is not visible ASCII named nothing, so the headers it
    /// listed were forwarded; a trusted chain on two lines lost the second.
    #[test]
    fn obs_text_connection_values_and_multi_line_chains() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_bytes(b"x-secret, close\x80").expect("value"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        assert!(h.is_empty(), "{h:?}");
        let mut h = HeaderMap::new();
        h.append(X_FORWARDED_FOR, HeaderValue::from_static("198.51.100.1"));
        h.append(X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.1"));
        let c = ClientHeaders::new("192.0.2.7".parse().expect("ip"), false);
        let t = ForwardedFor::read(&h, &[]);
        set_forwarded(&mut h, &c, None, Some(&t));
        assert_eq!(
            h.get_all(&X_FORWARDED_FOR).iter().collect::<Vec<_>>(),
            ["198.51.100.1, 10.0.0.1, 192.0.2.7"]
        );
    }

    #[test]
    fn only_allowed_upgrades_pass() {
        let ws = ["websocket".to_string()];
        let offer = |conn: &'static str, up: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONNECTION, HeaderValue::from_static(conn));
            h.insert(header::UPGRADE, HeaderValue::from_static(up));
            h.insert(HTTP2_SETTINGS, HeaderValue::from_static("AAMAAABkAAQAAP__"));
            h
        };
        for (conn, up) in [
            ("Upgrade, HTTP2-Settings", "h2c"),
            ("HTTP2-Settings, upgrade", "H2C"),
            ("keep-alive, UPGRADE , http2-settings", "h2c"),
        ] {
            let mut h = offer(conn, up);
            assert!(!allowed_upgrade(&mut h, &ws), "{conn} / {up}");
            strip_hop_by_hop(&mut h, false);
            assert!(h.is_empty(), "{conn} / {up}: {h:?}");
        }
        let mut h = offer("Upgrade", "h2c, WebSocket/13, foo");
        assert!(allowed_upgrade(&mut h, &ws));
        assert_eq!(h[header::UPGRADE], "WebSocket/13");
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h[header::UPGRADE], "WebSocket/13");
        assert_eq!(h[header::CONNECTION], "upgrade");
        assert!(h.get(HTTP2_SETTINGS).is_none());
        // `Upgrade` without `Connection: upgrade` is no upgrade; nor is an empty allow-list.
        assert!(!allowed_upgrade(&mut offer("keep-alive", "websocket"), &ws));
        assert!(!allowed_upgrade(&mut offer("upgrade", "websocket"), &[]));
    }

    #[test]
    fn forwarded_headers() {
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.1"));
        let host = HeaderValue::from_static("example.com:8443");
        let c = ClientHeaders::new("::1".parse().expect("ip"), true);
        let t = ForwardedFor::read(&h, &[]);
        set_forwarded(&mut h, &c, Some(&host), Some(&t));
        assert_eq!(h[&X_FORWARDED_FOR], "10.0.0.1, ::1");
        assert_eq!(h[&X_FORWARDED_PROTO], "https");
        assert_eq!(h[&X_FORWARDED_HOST], "example.com:8443");
        assert_eq!(
            h[header::FORWARDED],
            "for=\"[::1]\";proto=https;host=\"example.com:8443\""
        );
    }

    #[test]
    fn untrusted_chains_are_replaced_and_trusted_ones_read_from_the_right() {
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.1"));
        h.insert(X_REAL_IP, HeaderValue::from_static("10.0.0.1"));
        let c = ClientHeaders::new("192.0.2.7".parse().expect("ip"), false);
        set_forwarded(&mut h, &c, None, None);
        assert_eq!(h[&X_FORWARDED_FOR], "192.0.2.7");
        assert!(h.get(&X_REAL_IP).is_none());
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        let mut h = HeaderMap::new();
        h.insert(
            X_FORWARDED_FOR,
            HeaderValue::from_static("198.51.100.1, 203.0.113.9, 10.1.1.1"),
        );
        assert_eq!(
            ForwardedFor::read(&h, &trusted).client,
            Some("203.0.113.9".parse().expect("ip"))
        );
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("garbage, 10.1.1.1"));
        assert_eq!(ForwardedFor::read(&h, &trusted).client, None);
        // Several lines are one list; empty ones add nothing to the chain.
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static(" 198.51.100.1 "));
        h.append(X_FORWARDED_FOR, HeaderValue::from_static(""));
        h.append(X_FORWARDED_FOR, HeaderValue::from_static("10.1.1.1"));
        let t = ForwardedFor::read(&h, &trusted);
        assert_eq!(t.chain.as_deref(), Some("198.51.100.1, 10.1.1.1"));
        // An empty line is not an address: no client from this chain.
        assert_eq!(t.client, None);
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
