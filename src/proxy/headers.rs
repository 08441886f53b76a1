//! Header rewriting at the proxy boundary, as [`Edits`] to a head that is
//! never copied: hop-by-hop headers dropped (RFC 9110 §7.6.1, including
//! those a `Connection` header names), the `X-Forwarded-*` and `Forwarded`
//! headers set, the client-certificate headers replaced by the verified
//! identity, and the request id kept or created.

use std::cell::{Cell, RefCell};
use std::sync::OnceLock;

use bytes::BytesMut;
use std::fmt::Write;
use std::net::IpAddr;

use http::header::{HeaderName, HeaderValue};

use crate::fields::{Class, Classes, Edits, Head, HeaderView, HOP_BY_HOP};

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

/// The client-certificate headers.
const CLIENT_CERT: Classes =
    Class::ClientCertSubject.bit() | Class::ClientCertSan.bit() | Class::ClientCertSha256.bit();

/// Drops every client-sent copy of the client-certificate headers (no
/// client can set them), then adds the verified identity, if any: so that
/// rules and backends see only what the TLS handshake proved. A bit in the
/// drop set, tested per field only when the head is written.
pub fn client_cert(e: &mut Edits, id: Option<&ClientCertId>) {
    e.drop |= CLIENT_CERT;
    if let Some(id) = id {
        e.add.push("x-client-cert-subject", id.subject.clone());
        e.add.push("x-client-cert-san", id.san.clone());
        e.add.push("x-client-cert-sha256", id.sha256.clone());
    }
}

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
    pub fn read(h: &dyn HeaderView, trusted: &[ipnet::IpNet]) -> Self {
        let mut client = None;
        let mut all_addresses = true;
        let mut text = true;
        let mut chain = String::new();
        h.each_value("x-forwarded-for", &mut |v| {
            let Some(line) = visible(v) else {
                text = false;
                return false;
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
            true
        });
        if !text {
            return ForwardedFor::default();
        }
        ForwardedFor {
            client: client.filter(|_| all_addresses),
            chain: (!chain.is_empty()).then_some(chain),
        }
    }
}

/// A value as text when it is visible ASCII (as `HeaderValue::to_str`).
fn visible(v: &[u8]) -> Option<&str> {
    v.iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
        .then(|| std::str::from_utf8(v).ok())
        .flatten()
}

/// Drops the hop-by-hop headers, and every header the `Connection`
/// header names; `Transfer-Encoding` is the writer's to set on each side.
/// With `upgrade` (the offers an allowed upgrade keeps), `Upgrade` carries
/// them and `Connection: upgrade` is set; otherwise `Upgrade` goes too.
pub fn strip_hop_by_hop(e: &mut Edits, upgrade: Option<HeaderValue>) {
    e.drop |= HOP_BY_HOP | Class::Upgrade.bit();
    if let Some(offers) = upgrade {
        e.add.push("connection", HeaderValue::from_static("upgrade"));
        e.add.push("upgrade", offers);
    }
}

/// The items of a comma-separated header on all its lines, trimmed, read
/// from the bytes (a value with a byte that is not visible ASCII still
/// lists its items).
fn list_items<'h>(h: &'h dyn HeaderView, name: &str) -> Vec<&'h [u8]> {
    let mut out = Vec::new();
    h.each_value(name, &mut |v| {
        out.extend(v.split(|&b| b == b',').map(<[u8]>::trim_ascii));
        true
    });
    out
}

/// Decides an HTTP/1.1 upgrade request: the offers to keep when
/// `Connection` names `upgrade` and `Upgrade` offers at least one
/// protocol of `allowed` (lower-case names; a protocol's `/version` is
/// ignored when matching), as the new `Upgrade` value. None: no upgrade,
/// and the caller drops `Upgrade` with everything else hop-by-hop, so that
/// such a request goes on as a plain request (the `h2c` smuggling defence).
pub fn allowed_upgrade(h: &Head, allowed: &[String]) -> Option<HeaderValue> {
    if allowed.is_empty() || !h.contains("upgrade") {
        return None;
    }
    let asked = list_items(h, "connection")
        .iter()
        .any(|t| t.eq_ignore_ascii_case(b"upgrade"));
    if !asked {
        return None;
    }
    let offers: Vec<&[u8]> = list_items(h, "upgrade")
        .into_iter()
        .filter(|p| {
            let name = p.split(|&b| b == b'/').next().unwrap_or_default();
            !p.is_empty() && allowed.iter().any(|a| a.as_bytes().eq_ignore_ascii_case(name))
        })
        .collect();
    if offers.is_empty() {
        return None;
    }
    HeaderValue::from_bytes(&offers.join(&b", "[..])).ok()
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
    /// (almost every connection only ever names one); the host is the end
    /// of the value (`;host="…"`), so it is not kept apart.
    fwd: OnceLock<HeaderValue>,
}

impl ClientHeaders {
    pub fn new(ip: IpAddr, https: bool) -> Self {
        ClientHeaders {
            ip,
            https,
            // Copied to its exact size (kept for the connection's life).
            xff: HeaderValue::from_bytes(ip.to_string().as_bytes()).ok(),
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
        // Copied to its exact size (kept for the connection's life).
        HeaderValue::from_bytes(fwd.as_bytes()).ok()
    }
}

/// Whether a cached `Forwarded` value ends with `;host="HOST"`.
fn names_host(fwd: &HeaderValue, host: &HeaderValue) -> bool {
    fwd.as_bytes()
        .strip_suffix(b"\"")
        .and_then(|r| r.strip_suffix(host.as_bytes()))
        .is_some_and(|r| r.ends_with(b";host=\""))
}

/// Sets `X-Forwarded-For` (appended to `trusted`'s chain, or replacing an
/// untrusted one), `X-Forwarded-Proto`, `X-Forwarded-Host` and `Forwarded`
/// for a request on `c` for `host`. `trusted`: what a trusted proxy
/// forwarded (`None`: the peer is not trusted).
pub fn set_forwarded(
    e: &mut Edits,
    c: &ClientHeaders,
    host: Option<&HeaderValue>,
    trusted: Option<&ForwardedFor>,
) {
    if trusted.is_none() {
        // The peer is not a trusted proxy: whatever it says about earlier
        // hops is dropped, not passed on.
        e.drop |= Class::XRealIp.bit();
    }
    let xff = match trusted.and_then(|t| t.chain.as_deref()) {
        Some(prev) => HeaderValue::try_from(format!("{prev}, {}", c.ip)).ok(),
        None => c.xff.clone(),
    };
    e.drop |= Class::XForwardedFor.bit();
    if let Some(v) = xff {
        e.add.push("x-forwarded-for", v);
    }
    let proto = if c.https { "https" } else { "http" };
    e.set(
        Class::XForwardedProto,
        "x-forwarded-proto",
        HeaderValue::from_static(proto),
    );
    // Forwarded (RFC 7239): IPv6 and host:port are quoted.
    let host = host.filter(|v| visible(v.as_bytes()).is_some_and(|s| !s.contains(['"', '\\'])));
    e.drop |= Class::XForwardedHost.bit() | Class::Forwarded.bit();
    let fwd = match host {
        Some(hv) => {
            e.add.push("x-forwarded-host", hv.clone());
            match c.fwd.get() {
                Some(v) if names_host(v, hv) => Some(v.clone()),
                _ => {
                    let v = c.forwarded(visible(hv.as_bytes()));
                    if let Some(v) = &v {
                        let _ = c.fwd.set(v.clone());
                    }
                    v
                }
            }
        }
        None => c.forwarded(None),
    };
    if let Some(v) = fwd {
        e.add.push("forwarded", v);
    }
}

/// Keeps a sane incoming `X-Request-Id` or creates one (set in `e`);
/// returns the value.
pub fn request_id(h: &Head, e: &mut Edits) -> HeaderValue {
    if let Some(v) = h.value_of(Class::XRequestId, "x-request-id") {
        let ok = !v.is_empty()
            && v.len() <= 128
            && v.as_bytes()
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b));
        if ok {
            return v;
        }
    }
    let v = new_request_id();
    e.set(Class::XRequestId, "x-request-id", v.clone());
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
mod tests;
