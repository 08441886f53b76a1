//! The rewrite as edits, seen through the edited view (what a backend
//! gets).

use http::HeaderMap;

use super::*;
use crate::fields::Edited;

fn head(fields: &[(&'static str, &'static str)]) -> Head {
    let mut m = HeaderMap::new();
    for (n, v) in fields {
        m.append(*n, HeaderValue::from_static(v));
    }
    Head::Map(m)
}

/// The edited fields, as (name, value) text in order.
fn written(h: &Head, e: &Edits) -> Vec<(String, String)> {
    h.kept(e.drop)
        .chain(e.add.fields())
        .map(|(n, v)| {
            (
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}

fn all(v: &Edited<'_>, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    v.each_value(name, &mut |x| {
        out.push(String::from_utf8_lossy(x).into_owned());
        true
    });
    out
}

#[test]
fn strips_hop_by_hop() {
    let h = head(&[
        ("connection", "close"),
        ("keep-alive", "timeout=5"),
        ("te", "trailers"),
        ("upgrade", "h2c"),
        ("transfer-encoding", "chunked"),
        ("x-keep", "1"),
    ]);
    let mut e = Edits::default();
    strip_hop_by_hop(&mut e, None);
    assert_eq!(written(&h, &e), [("x-keep".to_string(), "1".to_string())]);
}

#[test]
fn obs_text_values_and_multi_line_chains() {
    let mut m = HeaderMap::new();
    m.append("x-forwarded-for", HeaderValue::from_static("198.51.100.1"));
    m.append("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
    let h = Head::Map(m);
    let c = ClientHeaders::new("192.0.2.7".parse().expect("ip"), false);
    let t = ForwardedFor::read(&h, &[]);
    let mut e = Edits::default();
    set_forwarded(&mut e, &c, None, Some(&t));
    let v = Edited { head: &h, edits: &e };
    assert_eq!(all(&v, "x-forwarded-for"), ["198.51.100.1, 10.0.0.1, 192.0.2.7"]);
    // A value that is not visible ASCII: no chain is believed.
    let mut m = HeaderMap::new();
    m.append(
        "x-forwarded-for",
        HeaderValue::from_bytes(b"10.0.0.1\x80").expect("value"),
    );
    let t = ForwardedFor::read(&Head::Map(m), &[]);
    assert_eq!((t.client, t.chain), (None, None));
}

#[test]
fn only_allowed_upgrades_pass() {
    let ws = ["websocket".to_string()];
    let offer = |conn: &'static str, up: &'static str| {
        head(&[
            ("connection", conn),
            ("upgrade", up),
            ("http2-settings", "AAMAAABkAAQAAP__"),
        ])
    };
    for (conn, up) in [
        ("Upgrade, HTTP2-Settings", "h2c"),
        ("HTTP2-Settings, upgrade", "H2C"),
        ("keep-alive, UPGRADE , http2-settings", "h2c"),
    ] {
        let h = offer(conn, up);
        let kept = allowed_upgrade(&h, &ws);
        assert!(kept.is_none(), "{conn} / {up}");
        let mut e = Edits::default();
        strip_hop_by_hop(&mut e, kept);
        assert!(written(&h, &e).is_empty(), "{conn} / {up}");
    }
    let h = offer("Upgrade", "h2c, WebSocket/13, foo");
    let kept = allowed_upgrade(&h, &ws);
    assert_eq!(kept.as_ref().map(|v| v.as_bytes()), Some(&b"WebSocket/13"[..]));
    let mut e = Edits::default();
    strip_hop_by_hop(&mut e, kept);
    assert_eq!(
        written(&h, &e),
        [
            ("connection".to_string(), "upgrade".to_string()),
            ("upgrade".to_string(), "WebSocket/13".to_string())
        ]
    );
    // `Upgrade` without `Connection: upgrade` is no upgrade; nor is an empty allow-list.
    assert!(allowed_upgrade(&offer("keep-alive", "websocket"), &ws).is_none());
    assert!(allowed_upgrade(&offer("upgrade", "websocket"), &[]).is_none());
}

#[test]
fn forwarded_headers() {
    let h = head(&[("x-forwarded-for", "10.0.0.1")]);
    let host = HeaderValue::from_static("example.com:8443");
    let c = ClientHeaders::new("::1".parse().expect("ip"), true);
    let t = ForwardedFor::read(&h, &[]);
    let mut e = Edits::default();
    set_forwarded(&mut e, &c, Some(&host), Some(&t));
    let v = Edited { head: &h, edits: &e };
    assert_eq!(all(&v, "x-forwarded-for"), ["10.0.0.1, ::1"]);
    assert_eq!(all(&v, "x-forwarded-proto"), ["https"]);
    assert_eq!(all(&v, "x-forwarded-host"), ["example.com:8443"]);
    assert_eq!(
        all(&v, "forwarded"),
        ["for=\"[::1]\";proto=https;host=\"example.com:8443\""]
    );
}

#[test]
fn untrusted_chains_are_replaced_and_trusted_ones_read_from_the_right() {
    let h = head(&[("x-forwarded-for", "10.0.0.1"), ("x-real-ip", "10.0.0.1")]);
    let c = ClientHeaders::new("192.0.2.7".parse().expect("ip"), false);
    let mut e = Edits::default();
    set_forwarded(&mut e, &c, None, None);
    let v = Edited { head: &h, edits: &e };
    assert_eq!(all(&v, "x-forwarded-for"), ["192.0.2.7"]);
    assert!(v.get("x-real-ip").is_none());
    let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
    let h = head(&[("x-forwarded-for", "198.51.100.1, 203.0.113.9, 10.1.1.1")]);
    assert_eq!(
        ForwardedFor::read(&h, &trusted).client,
        Some("203.0.113.9".parse().expect("ip"))
    );
    let h = head(&[("x-forwarded-for", "garbage, 10.1.1.1")]);
    assert_eq!(ForwardedFor::read(&h, &trusted).client, None);
    // Several lines are one list; empty ones add nothing to the chain.
    let h = head(&[
        ("x-forwarded-for", " 198.51.100.1 "),
        ("x-forwarded-for", ""),
        ("x-forwarded-for", "10.1.1.1"),
    ]);
    let t = ForwardedFor::read(&h, &trusted);
    assert_eq!(t.chain.as_deref(), Some("198.51.100.1, 10.1.1.1"));
    // An empty line is not an address: no client from this chain.
    assert_eq!(t.client, None);
}

#[test]
fn request_ids() {
    let (h, mut e) = (Head::default(), Edits::default());
    let a = request_id(&h, &mut e);
    assert_eq!(a.len(), 16);
    assert_eq!(
        Edited { head: &h, edits: &e }.get("x-request-id"),
        Some(a.as_bytes())
    );
    assert_ne!(request_id(&Head::default(), &mut Edits::default()), a);
    let h = head(&[("x-request-id", "abc-123")]);
    let mut e = Edits::default();
    assert_eq!(request_id(&h, &mut e), "abc-123");
    assert_eq!(e.drop, 0, "kept as it is");
    let h = head(&[("x-request-id", "bad value with spaces")]);
    let mut e = Edits::default();
    let v = request_id(&h, &mut e);
    assert_ne!(v, "bad value with spaces");
    assert_eq!(
        all(&Edited { head: &h, edits: &e }, "x-request-id"),
        [v.to_str().expect("text")]
    );
}

#[test]
fn client_certificate_headers_are_replaced() {
    let h = head(&[("x-client-cert-subject", "CN=forged"), ("x-other", "1")]);
    let mut e = Edits::default();
    client_cert(&mut e, None);
    assert_eq!(written(&h, &e), [("x-other".to_string(), "1".to_string())]);
    let id = ClientCertId::new("CN=alice", &["DNS:a.test".into()], "ab");
    let mut e = Edits::default();
    client_cert(&mut e, Some(&id));
    let v = Edited { head: &h, edits: &e };
    assert_eq!(all(&v, "x-client-cert-subject"), ["CN=alice"]);
}
