//! rampart's own HTTP/1.1 engine: the request and response head parsers
//! with their framing rules ([`head`]), the chunked body decoder
//! ([`chunked`]), the writer of heads and chunk framing ([`write`]), and
//! the client half that talks to backends ([`client`]) over plain or TLS
//! connections ([`crate::conns::BackendStream`]), the server half
//! that serves client connections ([`server`]) with the request bodies it
//! feeds ([`reqbody`]), the interim answers (103) passed from one to the
//! other ([`interim`]), and the per-worker buffers both use ([`buffers`]).

pub mod buffers;
pub mod chunked;
pub mod client;
pub mod head;
pub mod interim;
pub mod reqbody;
pub mod server;
pub mod write;

/// A byte of a token, such as a field name (RFC 9110 `tchar`).
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
