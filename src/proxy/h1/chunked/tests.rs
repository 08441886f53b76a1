//! The chunked coding as a table (RFC 9112 §7.1), each case fed whole and
//! one byte at a time, which must agree.

use super::{ChunkError, Decoder, MAX_EXTENSION, MAX_TRAILERS};

/// Decodes `input`, `step` bytes per call: the body, and the bytes after it.
fn decode(input: &[u8], step: usize) -> Result<(Vec<u8>, usize), ChunkError> {
    let mut d = Decoder::default();
    let mut body = Vec::new();
    let mut at = 0;
    while at < input.len() && !d.is_done() {
        let end = (at + step).min(input.len());
        let p = d.feed(&input[at..end])?;
        if let Some(r) = p.data {
            body.extend_from_slice(&input[at + r.start..at + r.end]);
        }
        at += p.consumed;
        if p.consumed == 0 && end == input.len() {
            break;
        }
    }
    if !d.is_done() {
        return Err(ChunkError::Trailer);
    }
    Ok((body, input.len() - at))
}

/// An input and what it decodes to: the body and the bytes left after it.
type Case<'a> = (&'a [u8], Result<(&'a [u8], usize), ChunkError>);

#[test]
fn chunked_bodies() {
    use ChunkError::*;
    let long_ext = format!("1;{}\r\na\r\n0\r\n\r\n", "x".repeat(MAX_EXTENSION));
    let long_trailer = format!("0\r\nX: {}\r\n\r\n", "y".repeat(MAX_TRAILERS));
    let cases: Vec<Case<'_>> = vec![
        (b"5\r\nhello\r\n0\r\n\r\n", Ok((b"hello", 0))),
        (b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", Ok((b"hello world", 0))),
        (b"A\r\n0123456789\r\n0\r\n\r\n", Ok((b"0123456789", 0))),
        (b"a\r\n0123456789\r\n0\r\n\r\n", Ok((b"0123456789", 0))),
        (b"0\r\n\r\n", Ok((b"", 0))),
        (b"0\r\n\r\nGET / HTTP/1.1", Ok((b"", 14))),
        (b"000000000000005\r\nhello\r\n0\r\n\r\n", Ok((b"hello", 0))),
        (b"0000000000000005\r\nhello\r\n0\r\n\r\n", Ok((b"hello", 0))),
        (b"00000000000000005\r\nhello\r\n0\r\n\r\n", Err(SizeTooLong)),
        (b"5;name=value\r\nhello\r\n0\r\n\r\n", Ok((b"hello", 0))),
        (b"5 ; name\r\nhello\r\n0;x\r\n\r\n", Ok((b"hello", 0))),
        (b"5 x\r\nhello\r\n0\r\n\r\n", Err(Size)),
        (b"0\r\nExpires: never\r\nX: y\r\n\r\n", Ok((b"", 0))),
        // Not hex, empty, signed, or the size line not ended by CRLF.
        (b"g\r\n", Err(Size)),
        (b"\r\n", Err(Size)),
        (b"+5\r\nhello\r\n0\r\n\r\n", Err(Size)),
        (b"0x5\r\nhello\r\n0\r\n\r\n", Err(Size)),
        (b"5\nhello\r\n0\r\n\r\n", Err(Size)),
        (b"5\rhello\r\n0\r\n\r\n", Err(LineEnd)),
        // Data not followed by CRLF (too long, bare LF).
        (b"5\r\nhello!\r\n0\r\n\r\n", Err(LineEnd)),
        (b"5\r\nhello\n0\r\n\r\n", Err(LineEnd)),
        // Trailers: CRLF only, no control bytes, bounded.
        (b"0\r\nX: y\n\r\n", Err(LineEnd)),
        (b"0\r\n\n", Err(LineEnd)),
        (b"0\r\nX: \x00\r\n\r\n", Err(Trailer)),
        (b"0\r\n5\r\nhello\r\n\r\n", Err(Trailer)),
        (b"0\r\n: y\r\n\r\n", Err(Trailer)),
        (b"0\r\nX y: z\r\n\r\n", Err(Trailer)),
        (b"5;\x00\r\nhello\r\n0\r\n\r\n", Err(Extension)),
        (long_ext.as_bytes(), Err(ExtensionTooLong)),
        (long_trailer.as_bytes(), Err(TrailersTooLong)),
        // Ends before the last chunk.
        (b"5\r\nhel", Err(Trailer)),
    ];
    for (input, want) in &cases {
        let want = want.map(|(b, rest)| (b.to_vec(), rest));
        assert_eq!(
            decode(input, input.len()),
            want,
            "whole: {:?}",
            String::from_utf8_lossy(input)
        );
        assert_eq!(
            decode(input, 1),
            want,
            "byte by byte: {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn the_largest_size_is_read_without_overflow() {
    let mut d = Decoder::default();
    let p = d.feed(b"ffffffffffffffff\r\nab").expect("valid");
    assert_eq!(p.data, Some(18..20));
    assert!(!d.is_done());
}
