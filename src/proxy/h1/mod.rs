//! rampart's own HTTP/1.1 engine, built piece by piece (issue 10): so far
//! the request and response head parsers with their framing rules
//! ([`head`]), the chunked body decoder ([`chunked`]) and the writer of
//! heads and chunk framing ([`write`]). The proxy still serves HTTP/1.1
//! with hyper until the engine is complete.

pub mod chunked;
pub mod head;
pub mod write;

/// A byte of a token, such as a field name (RFC 9110 `tchar`).
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
