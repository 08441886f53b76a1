//! RFC 9112's framing rules (§§2.2, 3.2, 6.1, 6.3) as a table, plus the
//! offsets and the classified headers.

use super::{parse_request, BodyLength, HeadError};

fn head(lines: &str) -> Vec<u8> {
    format!("{lines}\r\n\r\n")
        .replace("\r\n\r\n\r\n", "\r\n\r\n")
        .into_bytes()
}

#[test]
fn framing_rules() {
    use BodyLength::*;
    use HeadError::*;
    let ok = |b| Ok::<BodyLength, HeadError>(b);
    let cases: &[(&str, Result<BodyLength, HeadError>)] = &[
        ("GET / HTTP/1.1\r\nHost: a", ok(None)),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5", ok(Length(5))),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0", ok(None)),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5",
            ok(Length(5)),
        ),
        (
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5",
            ok(Length(5)),
        ),
        (
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6",
            Err(DifferingLengths),
        ),
        ("POST / HTTP/1.1\r\nContent-Length: 5, 6", Err(DifferingLengths)),
        ("POST / HTTP/1.1\r\nContent-Length: +5", Err(BadLength)),
        ("POST / HTTP/1.1\r\nContent-Length: -1", Err(BadLength)),
        ("POST / HTTP/1.1\r\nContent-Length: 0x10", Err(BadLength)),
        ("POST / HTTP/1.1\r\nContent-Length: 1 0", Err(BadLength)),
        ("POST / HTTP/1.1\r\nContent-Length: ", Err(BadLength)),
        ("POST / HTTP/1.1\r\nContent-Length: ,5", Err(BadLength)),
        (
            "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999",
            Err(BadLength),
        ),
        (
            "POST / HTTP/1.1\r\nContent-Length: 9999999999999999999",
            ok(Length(9_999_999_999_999_999_999)),
        ),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked", ok(Chunked)),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: CHUNKED", ok(Chunked)),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked", ok(Chunked)),
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked",
            ok(Chunked),
        ),
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip",
            Err(NotChunked),
        ),
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked",
            Err(NotChunked),
        ),
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
            Err(NotChunked),
        ),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: gzip", Err(NotChunked)),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: ", Err(NotChunked)),
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5",
            Err(LengthAndEncoding),
        ),
        (
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked",
            Err(LengthAndEncoding),
        ),
        (
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked",
            Err(EncodingOnHttp10),
        ),
        ("POST / HTTP/1.0\r\nContent-Length: 3", ok(Length(3))),
        // Strict syntax (httparse's defaults for requests).
        (
            "GET / HTTP/1.1\r\nHost : a",
            Err(Malformed("invalid header name")),
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\n folded",
            Err(Malformed("invalid header name")),
        ),
        ("GET / HTTP/1.2", Err(Malformed("invalid HTTP version"))),
        ("GET  / HTTP/1.1", Err(Malformed("invalid token"))),
        ("GET /a`b HTTP/1.1", Err(BadTarget)),
        ("GET http://[::1 HTTP/1.1", Err(BadTarget)),
        ("OPTIONS * HTTP/1.1", ok(None)),
        ("GET http://example.com/x HTTP/1.1", ok(None)),
    ];
    for (text, want) in cases {
        let got = parse_request(&head(text), 16).map(|h| h.expect("complete").body);
        assert_eq!(&got, want, "{text:?}");
    }
}

#[test]
fn incomplete_heads_ask_for_more_and_header_counts_are_bounded() {
    assert_eq!(parse_request(b"GET / HTTP/1.1\r\nHost: a\r\n", 16), Ok(None));
    assert_eq!(parse_request(b"GET / HT", 16), Ok(None));
    let many = head(&format!("GET / HTTP/1.1{}", "\r\nX: y".repeat(17)));
    assert_eq!(parse_request(&many, 16), Err(HeadError::TooManyHeaders(16)));
}

#[test]
fn offsets_and_classified_headers() {
    let buf = head(
        "PUT /a?b=c HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive, Upgrade\r\n\
         Expect: 100-continue\r\nhost: other\r\nContent-Length: 2",
    );
    let h = parse_request(&buf, 16).expect("valid").expect("complete");
    let s = |r: &std::ops::Range<usize>| std::str::from_utf8(&buf[r.clone()]).expect("utf-8");
    assert_eq!((s(&h.method), s(&h.target), h.minor), ("PUT", "/a?b=c", 1));
    assert_eq!(h.len, buf.len());
    assert_eq!(h.headers.len(), 5);
    assert_eq!(h.host.map(|i| s(&h.headers[i].1)), Some("example.com"));
    assert_eq!(h.hosts, 2, "a duplicate Host is counted for the caller to refuse");
    assert!(h.keep_alive && h.upgrade && !h.close && h.expect_continue);
    assert_eq!(h.body, BodyLength::Length(2));
    // A body after the head is not part of it.
    let mut with_body = buf.clone();
    with_body.extend_from_slice(b"hi");
    assert_eq!(
        parse_request(&with_body, 16)
            .expect("valid")
            .expect("complete")
            .len,
        buf.len()
    );
}

#[test]
fn response_framing_rules() {
    use super::{parse_response, ResponseBody::*};
    use HeadError::*;
    let cases: &[(&str, bool, Result<super::ResponseBody, HeadError>)] = &[
        ("HTTP/1.1 200 OK\r\nContent-Length: 5", false, Ok(Length(5))),
        ("HTTP/1.1 200 OK\r\nContent-Length: 0", false, Ok(None)),
        ("HTTP/1.1 200 OK", false, Ok(UntilClose)),
        ("HTTP/1.0 200 OK", false, Ok(UntilClose)),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked",
            false,
            Ok(Chunked),
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip",
            false,
            Ok(UntilClose),
        ),
        // Stricter than RFC 9112 (which reads such a body until close):
        // a coding after `chunked` is refused.
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip",
            false,
            Err(NotChunked),
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5",
            false,
            Err(LengthAndEncoding),
        ),
        (
            "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked",
            false,
            Err(EncodingOnHttp10),
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6",
            false,
            Err(DifferingLengths),
        ),
        ("HTTP/1.1 200 OK\r\nContent-Length: +5", false, Err(BadLength)),
        // No body, whatever the headers say.
        ("HTTP/1.1 200 OK\r\nContent-Length: 5", true, Ok(None)),
        ("HTTP/1.1 204 No Content\r\nContent-Length: 5", false, Ok(None)),
        (
            "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked",
            false,
            Ok(None),
        ),
        (
            "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload",
            false,
            Ok(None),
        ),
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade",
            false,
            Ok(None),
        ),
        (
            "HTTP/1.1 200 OK\r\nX : y",
            false,
            Err(Malformed("invalid header name")),
        ),
        ("HTTP/1.1 2000 OK", false, Err(Malformed("invalid status"))),
    ];
    for (text, after_head, want) in cases {
        let got = parse_response(&head(text), 16, *after_head).map(|h| h.expect("complete").body);
        assert_eq!(&got, want, "{text:?} (after HEAD: {after_head})");
    }
    let buf = head("HTTP/1.1 404 Not Here\r\nConnection: close");
    let h = parse_response(&buf, 16, false).expect("valid").expect("complete");
    assert_eq!(
        (h.status, &buf[h.reason.clone()], h.close, h.len),
        (404, &b"Not Here"[..], true, buf.len())
    );
}

/// Cases from the test suites of httparse, hyper (its HTTP/1 server role)
/// and Pingora (its HTTP/1 server session), rewritten as one table. Where
/// rampart decides differently, the row says so.
#[test]
fn cases_from_other_parsers() {
    use BodyLength::*;
    use HeadError::*;
    let ok = |b| Ok::<BodyLength, HeadError>(b);
    let cases: &[(&str, &[u8], Result<BodyLength, HeadError>)] = &[
        // httparse
        ("simple", b"GET / HTTP/1.1\r\n\r\n", ok(None)),
        ("query", b"GET /thing?data=a HTTP/1.1\r\n\r\n", ok(None)),
        (
            "headers",
            b"GET / HTTP/1.1\r\nHost: foo.com\r\nCookie: \r\n\r\n",
            ok(None),
        ),
        (
            "no space after colon",
            b"GET / HTTP/1.1\r\nHost:foo.com\r\n\r\n",
            ok(None),
        ),
        (
            "tab inside a value",
            b"GET / HTTP/1.1\r\nUser-Agent: some\tagent\r\n\r\n",
            ok(None),
        ),
        (
            "obs-text in a value",
            b"GET / HTTP/1.1\r\nUser-Agent: \xe3\x81\xb2\r\n\r\n",
            ok(None),
        ),
        ("one-byte method", b"S / HTTP/1.1\r\n\r\n", ok(None)),
        (
            "bare LF line ends",
            b"GET / HTTP/1.1\nHost: foo.bar\n\n",
            ok(None),
        ),
        ("empty lines before", b"\r\n\r\nGET / HTTP/1.1\r\n\r\n", ok(None)),
        ("LF-only empty lines before", b"\n\nGET / HTTP/1.1\n\n", ok(None)),
        // Parsed as httparse does; refused (400) when the target becomes a
        // URI (see the wire-level table in tests/integration/rfc9112.rs).
        (
            "backslash in the path",
            b"GET /\\?wayne\\=5 HTTP/1.1\r\n\r\n",
            ok(None),
        ),
        (
            "bad token delimiter",
            b"GET\n/ HTTP/1.1\r\nHost: foo.bar\r\n\r\n",
            Err(Malformed("invalid token")),
        ),
        (
            "short bad version",
            b"GET / HTTP/1!",
            Err(Malformed("invalid HTTP version")),
        ),
        (
            "empty method",
            b" / HTTP/1.1\r\n\r\n",
            Err(Malformed("invalid token")),
        ),
        (
            "empty path",
            b"GET  HTTP/1.1\r\n\r\n",
            Err(Malformed("invalid token")),
        ),
        (
            "DEL in the path",
            b"GET /\x7f HTTP/1.1\r\n\r\n",
            Err(Malformed("invalid token")),
        ),
        (
            "space before the colon",
            b"GET / HTTP/1.1\r\nHost : foo\r\n\r\n",
            Err(Malformed("invalid header name")),
        ),
        (
            "empty field name",
            b"GET / HTTP/1.1\r\n: foo\r\n\r\n",
            Err(Malformed("invalid header name")),
        ),
        // hyper's server role
        ("no length: no body", b"POST / HTTP/1.1\r\n\r\n", ok(None)),
        (
            "gzip then chunked",
            b"POST / HTTP/1.1\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
            ok(Chunked),
        ),
        (
            "codings over two fields",
            b"POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n",
            ok(Chunked),
        ),
        (
            "content-length",
            b"POST / HTTP/1.1\r\ncontent-length: 10\r\n\r\n",
            ok(Length(10)),
        ),
        // hyper reads such a request as chunked and closes after it;
        // rampart refuses it (a smuggling vector between two parsers).
        (
            "length and chunked",
            b"POST / HTTP/1.1\r\ncontent-length: 10\r\ntransfer-encoding: chunked\r\n\r\n",
            Err(LengthAndEncoding),
        ),
        (
            "same length twice",
            b"POST / HTTP/1.1\r\ncontent-length: 10\r\ncontent-length: 10\r\n\r\n",
            ok(Length(10)),
        ),
        (
            "two lengths",
            b"POST / HTTP/1.1\r\ncontent-length: 10\r\ncontent-length: 11\r\n\r\n",
            Err(DifferingLengths),
        ),
        (
            "signed length",
            b"POST / HTTP/1.1\r\ncontent-length: +10\r\n\r\n",
            Err(BadLength),
        ),
        (
            "gzip alone",
            b"POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n",
            Err(NotChunked),
        ),
        (
            "chunked on 1.0",
            b"POST / HTTP/1.0\r\ntransfer-encoding: chunked\r\n\r\n",
            Err(EncodingOnHttp10),
        ),
        // Pingora's HTTP/1 server session
        (
            "head over two reads, joined",
            b"GET / HTTP/1.1\r\nHost: pingora.org\r\n\r\n",
            ok(None),
        ),
        // Pingora keeps raw bytes such as \x01 in a path; rampart refuses them.
        (
            "control byte in the path",
            b"GET /\x01\xf0\x90\x80 HTTP/1.1\r\n\r\n",
            Err(Malformed("invalid token")),
        ),
        (
            "misspelt version",
            b"GET / HTP/1.1\r\nHost: pingora.org\r\n\r\n",
            Err(Malformed("invalid HTTP version")),
        ),
        // Pingora reads an HTTP/1.0 request's body until close; RFC 9112
        // §6.3 gives a request without a length none, and so does rampart.
        (
            "1.0 without a length",
            b"GET / HTTP/1.0\r\nHost: pingora.org\r\n\r\n",
            ok(None),
        ),
        (
            "chunked",
            b"GET / HTTP/1.1\r\nHost: pingora.org\r\nTransfer-Encoding: chunked\r\n\r\n",
            ok(Chunked),
        ),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(what, bytes, want)| {
            let got = parse_request(bytes, 16).map(|h| h.expect("complete").body);
            (&got != want).then(|| format!("{what}: {:?} gave {got:?}", String::from_utf8_lossy(bytes)))
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
    // Upgrades (Pingora): `Connection: upgrade` is what is classified; the
    // pipeline also wants an `Upgrade` field and HTTP/1.1.
    for (bytes, upgrade) in [
        (
            &b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"[..],
            true,
        ),
        (
            b"POST / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: keep-alive, upgrade\r\n\r\n",
            true,
        ),
        (b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", false),
    ] {
        let h = parse_request(bytes, 16).expect("valid").expect("complete");
        assert_eq!(h.upgrade, upgrade, "{:?}", String::from_utf8_lossy(bytes));
    }
    // Partial heads ask for more (httparse's partial cases).
    for part in [
        &b"G"[..],
        b"GET",
        b"GET /",
        b"GET / HTTP/1.",
        b"GET / HTTP/1.1\r\nHost: a",
    ] {
        assert_eq!(parse_request(part, 16), Ok(Option::None), "{part:?}");
    }
}

#[test]
fn the_target_check_agrees_with_http_on_every_short_target() {
    let mut targets: Vec<Vec<u8>> = Vec::new();
    for a in 0u8..=255 {
        targets.push(vec![b'/', a]);
        targets.push(vec![b'/', b'?', a]);
        targets.push(vec![b'/', a, b'?', b'x']);
        targets.push(vec![b'/', b'#', a]);
        for b in [b'a', b'?', b'#', b'%', 0x80, 0xa9, b' '] {
            targets.push(vec![b'/', a, b]);
            targets.push(vec![b'/', b'?', a, b]);
        }
    }
    targets.extend([
        "/\u{e9}t\u{e9}".as_bytes().to_vec(),
        b"/a\xc3".to_vec(),
        b"/\xc3\xa9#\xff".to_vec(),
        b"*".to_vec(),
        b"http://h/x".to_vec(),
    ]);
    for t in targets {
        assert_eq!(
            super::valid_target(&t),
            http::Uri::try_from(&t[..]).is_ok(),
            "{:?}",
            String::from_utf8_lossy(&t)
        );
    }
}
