//! Written heads parse back to what was written; what could break the
//! framing is refused; chunks written decode back.

use super::{chunk_head, request_head, response_head, WriteError, CHUNK_END, LAST_CHUNK};
use crate::proxy::h1::chunked::Decoder;
use crate::proxy::h1::head::{parse_request, parse_response, BodyLength, ResponseBody};

#[test]
fn request_heads_parse_back() {
    let fields: Vec<(&[u8], &[u8])> = vec![
        (b"Host", b"example.com"),
        (b"X-Forwarded-For", b"192.0.2.1"),
        (b"Content-Length", b"3"),
        (b"X-Empty", b""),
    ];
    let mut out = Vec::new();
    request_head(&mut out, b"POST", b"/a?b=c", fields.clone()).expect("written");
    assert_eq!(
        out,
        b"POST /a?b=c HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 192.0.2.1\r\nContent-Length: 3\r\nX-Empty: \r\n\r\n"
    );
    let h = parse_request(&out, 16).expect("valid").expect("complete");
    assert_eq!(
        (h.len, h.body, h.headers.len()),
        (out.len(), BodyLength::Length(3), 4)
    );
    for ((n, v), (want_n, want_v)) in h.headers.iter().zip(&fields) {
        assert_eq!((&out[n.clone()], &out[v.clone()]), (*want_n, *want_v));
    }
}

#[test]
fn response_heads_parse_back() {
    let mut out = Vec::new();
    response_head(&mut out, 404, b"Not Found", [(&b"Content-Length"[..], &b"0"[..])]).expect("written");
    let h = parse_response(&out, 16, false).expect("valid").expect("complete");
    assert_eq!(
        (h.status, &out[h.reason.clone()], h.body),
        (404, &b"Not Found"[..], ResponseBody::None)
    );
}

#[test]
fn what_could_break_the_framing_is_refused() {
    let mut out = Vec::new();
    let bad: &[(&[u8], &[u8], WriteError)] = &[
        (b"X-A", b"a\r\nX-Injected: 1", WriteError::Value),
        (b"X-A", b"a\nb", WriteError::Value),
        (b"X-A", b"a\0b", WriteError::Value),
        (b"X A", b"a", WriteError::Name),
        (b"X:A", b"a", WriteError::Name),
        (b"", b"a", WriteError::Name),
    ];
    for (n, v, want) in bad {
        assert_eq!(
            request_head(&mut out, b"GET", b"/", [(*n, *v)]),
            Err(want.clone()),
            "{n:?}: {v:?}"
        );
    }
    assert_eq!(
        request_head(&mut out, b"GET", b"/a b", []),
        Err(WriteError::StartLine)
    );
    assert_eq!(
        request_head(&mut out, b"G T", b"/", []),
        Err(WriteError::StartLine)
    );
    assert_eq!(
        response_head(&mut out, 200, b"OK\r\nX: y", []),
        Err(WriteError::StartLine)
    );
    assert_eq!(response_head(&mut out, 42, b"OK", []), Err(WriteError::StartLine));
}

#[test]
fn written_chunks_decode_back() {
    let pieces: [&[u8]; 3] = [b"hello", &[b'x'; 300], b"!"];
    let mut out = Vec::new();
    for p in pieces {
        chunk_head(&mut out, p.len());
        out.extend_from_slice(p);
        out.extend_from_slice(CHUNK_END);
    }
    out.extend_from_slice(LAST_CHUNK);
    let mut d = Decoder::default();
    let (mut body, mut at) = (Vec::new(), 0);
    while !d.is_done() {
        let p = d.feed(&out[at..]).expect("valid");
        if let Some(r) = p.data {
            body.extend_from_slice(&out[at + r.start..at + r.end]);
        }
        at += p.consumed;
    }
    assert_eq!((body, at), (pieces.concat(), out.len()));
}

#[test]
fn decimal_writes_every_width() {
    let mut buf = [0u8; 20];
    for n in [0u64, 7, 10, 65_536, u64::MAX] {
        assert_eq!(super::decimal(n, &mut buf), n.to_string().as_bytes());
    }
}
