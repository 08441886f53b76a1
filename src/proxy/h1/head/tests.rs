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
