//! Views over raw heads and maps agree; classes and edits.

use super::*;

/// A raw head from `text` (fields after the first line).
fn raw(text: &str) -> RawFields {
    let bytes = Bytes::copy_from_slice(text.as_bytes());
    let mut ranges = Vec::new();
    let mut at = text.find("\r\n").map_or(0, |i| i + 2);
    for line in text[at..].split("\r\n") {
        if line.is_empty() {
            break;
        }
        let colon = line.find(':').expect("colon");
        let value_start = colon + 1 + (line.len() - colon - 1 - line[colon + 1..].trim_start().len());
        ranges.push((at..at + colon, at + value_start..at + line.len()));
        at += line.len() + 2;
    }
    RawFields::new(bytes, &ranges)
}

const HEAD: &str = "GET / HTTP/1.1\r\nHost: example.test\r\nCONNECTION: keep-alive, X-Secret\r\n\
    x-secret: 1\r\nX-Forwarded-For: 10.0.0.1\r\nx-forwarded-for: 10.0.0.2\r\nAccept: */*\r\n\r\n";

fn map_of(r: &RawFields) -> HeaderMap {
    r.to_map(0).expect("valid")
}

#[test]
fn raw_and_map_views_agree() {
    let r = raw(HEAD);
    let m = map_of(&r);
    for name in [
        "host",
        "connection",
        "x-secret",
        "accept",
        "x-forwarded-for",
        "absent",
        "cookie",
    ] {
        assert_eq!(r.get(name), HeaderView::get(&m, name), "{name}");
        assert_eq!(r.contains(name), m.contains(name), "{name}");
        let (mut a, mut b) = (Vec::new(), Vec::new());
        r.each_value(name, &mut |v| {
            a.push(v.to_vec());
            true
        });
        m.each_value(name, &mut |v| {
            b.push(v.to_vec());
            true
        });
        assert_eq!(a, b, "{name}");
    }
    let mut first = None;
    r.each_value("x-forwarded-for", &mut |v| {
        first = Some(v.to_vec());
        false
    });
    assert_eq!(first.as_deref(), Some(&b"10.0.0.1"[..]), "stops when told");
}

#[test]
fn classes_are_named_once_and_connection_names_count() {
    let r = raw(HEAD);
    let classes: Vec<Class> = r.iter().map(|(_, _, c)| c).collect();
    assert_eq!(
        classes,
        [
            Class::Host,
            Class::Connection,
            Class::Named,
            Class::XForwardedFor,
            Class::XForwardedFor,
            Class::Other
        ]
    );
    assert_eq!(Class::of(b"Transfer-Encoding"), Class::TransferEncoding);
    assert_eq!(Class::of(b"x-client-cert-subject"), Class::ClientCertSubject);
    assert_eq!(Class::of(b"x-forwarded-fo"), Class::Other);
}

#[test]
fn edits_drop_by_class_and_add_in_order_for_raw_heads_and_maps() {
    let mut e = Edits::default();
    e.drop |= HOP_BY_HOP;
    e.set(
        Class::XForwardedFor,
        "x-forwarded-for",
        HeaderValue::from_static("192.0.2.7"),
    );
    for head in [Head::Raw(raw(HEAD)), Head::Map(map_of(&raw(HEAD)))] {
        let kept: Vec<(String, String)> = head
            .kept(e.drop)
            .chain(e.add.fields())
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).to_lowercase(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect();
        // The map loses `Named` (it has no Connection to name it by), so
        // only the raw head drops `x-secret`: maps come from HTTP/2, which
        // carries no Connection field.
        let want_secret = matches!(head, Head::Map(_));
        let mut want = vec![("host".to_string(), "example.test".to_string())];
        if want_secret {
            want.push(("x-secret".into(), "1".into()));
        }
        want.push(("accept".into(), "*/*".into()));
        want.push(("x-forwarded-for".into(), "192.0.2.7".into()));
        assert_eq!(kept, want, "{head:?}");
        let map = head.to_map(e.drop, &e.add).expect("map");
        assert_eq!(map.get_all("x-forwarded-for").iter().count(), 1);
        assert!(map.get("connection").is_none());
    }
}

#[test]
fn more_additions_than_fit_inline() {
    let mut a = Added::default();
    for _ in 0..12 {
        a.push("x-n", HeaderValue::from_static("v"));
    }
    assert_eq!(a.iter().count(), 12);
    a.remove("x-n");
    assert!(a.is_empty());
}

#[test]
fn value_of_shares_the_head() {
    let r = raw(HEAD);
    let v = r.value_of(Class::Host).expect("host");
    assert_eq!(v, "example.test");
    assert!(r.value_of(Class::Cookie).is_none());
}
