//! Request and response heads parsed with `httparse` (strict: no obs-fold, no
//! whitespace before a colon), kept as offsets into the read buffer, with
//! RFC 9112's framing rules decided here and nowhere else:
//!
//! - `Transfer-Encoding` with `Content-Length`: refused (§6.1, §6.3);
//! - `Transfer-Encoding` on HTTP/1.0: refused (§6.1);
//! - a final coding other than `chunked`, or `chunked` twice: refused (§6.3);
//! - `Content-Length` of anything but digits (no sign, no spaces inside),
//!   or differing values (one header or several): refused (§6.3); a list of
//!   the same value is that value;
//! - no body framing on a request: no body (§6.3).
//!
//! The few headers rampart acts on are classified once, while parsing.

use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::LazyLock;

use crate::fields::Spans;

/// How long a message's body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    None,
    Length(u64),
    Chunked,
}

/// A parsed request head: offsets into the buffer it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: Range<usize>,
    pub target: Range<usize>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// Name and value of each header, in order.
    pub headers: Spans,
    pub body: BodyLength,
    /// Bytes of the head, blank line included.
    pub len: usize,
    /// Index into `headers` of the (first) `Host`, and how many there are.
    pub host: Option<usize>,
    pub hosts: usize,
    /// `Connection` named `close` / `keep-alive` / `upgrade`.
    pub close: bool,
    pub keep_alive: bool,
    pub upgrade: bool,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
}

/// Why a head was refused (each is a 400, or 431 for size and count).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("malformed request head: {0}")]
    Malformed(&'static str),
    #[error("more than {0} header fields")]
    TooManyHeaders(usize),
    #[error("both Content-Length and Transfer-Encoding are present")]
    LengthAndEncoding,
    #[error("Transfer-Encoding on an HTTP/1.0 request")]
    EncodingOnHttp10,
    #[error("the last transfer coding is not chunked")]
    NotChunked,
    #[error("invalid request target")]
    BadTarget,
    #[error("invalid Content-Length")]
    BadLength,
    #[error("differing Content-Length values")]
    DifferingLengths,
}

impl HeadError {
    /// A conflict in how the body's length is given, which two parsers
    /// could read differently (request smuggling).
    pub fn is_framing(&self) -> bool {
        matches!(
            self,
            HeadError::LengthAndEncoding
                | HeadError::EncodingOnHttp10
                | HeadError::NotChunked
                | HeadError::BadLength
                | HeadError::DifferingLengths
        )
    }

    /// A short reason, for the 400 answer.
    pub fn reason(&self) -> &'static str {
        match self {
            HeadError::Malformed(why) => why,
            HeadError::TooManyHeaders(_) => "too many header fields",
            HeadError::LengthAndEncoding => "both Content-Length and Transfer-Encoding are present",
            HeadError::EncodingOnHttp10 => "Transfer-Encoding on an HTTP/1.0 request",
            HeadError::NotChunked => "the last transfer coding is not chunked",
            HeadError::BadTarget => "invalid request target",
            HeadError::BadLength => "invalid Content-Length",
            HeadError::DifferingLengths => "differing Content-Length headers",
        }
    }
}

/// Parses the head at the start of `buf`: `Ok(None)` while it is
/// incomplete.
pub fn parse_request(buf: &[u8], max_headers: usize) -> Result<Option<RequestHead>, HeadError> {
    with_slots(max_headers, |slots| request_in(buf, max_headers, slots))
}

fn request_in<'b>(
    buf: &'b [u8],
    max_headers: usize,
    slots: &mut [MaybeUninit<httparse::Header<'b>>],
) -> Result<Option<RequestHead>, HeadError> {
    let mut req = httparse::Request::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_request_with_uninit_headers(&mut req, buf, slots);
    let Some(len) = complete(parsed, max_headers)? else {
        return Ok(None);
    };
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Malformed("incomplete request line"));
    };
    // The target must be a URI (origin, absolute, authority or asterisk
    // form) as `http` reads one: what routing and forwarding will use.
    if !valid_target(target.as_bytes()) {
        return Err(HeadError::BadTarget);
    }
    let at = |s: &[u8]| offset(buf, s);
    let mut head = RequestHead {
        method: at(method.as_bytes()),
        target: at(target.as_bytes()),
        minor,
        headers: Spans::take(),
        body: BodyLength::None,
        len,
        host: None,
        hosts: 0,
        close: false,
        keep_alive: false,
        upgrade: false,
        expect_continue: false,
    };
    let f = Fields::read(req.headers, buf, &mut head.headers)?;
    (head.host, head.hosts) = (f.host, f.hosts);
    (head.close, head.keep_alive, head.upgrade) = (f.close, f.keep_alive, f.upgrade);
    head.expect_continue = f.expect_continue;
    head.body = match (f.encoded, f.length) {
        (true, Some(_)) => return Err(HeadError::LengthAndEncoding),
        (true, None) if minor == 0 => return Err(HeadError::EncodingOnHttp10),
        (true, None) if !f.chunked_last => return Err(HeadError::NotChunked),
        (true, None) => BodyLength::Chunked,
        (false, Some(0)) | (false, None) => BodyLength::None,
        (false, Some(n)) => BodyLength::Length(n),
    };
    Ok(Some(head))
}

/// A head's fields (`fields`, offsets into `bytes`) as `http` types, the
/// values sharing `bytes`; None when a name or value is one `http` refuses.
pub fn header_map(bytes: &bytes::Bytes, fields: &[(Range<usize>, Range<usize>)]) -> Option<http::HeaderMap> {
    let mut map = http::HeaderMap::with_capacity(fields.len());
    for (n, v) in fields {
        let name = http::HeaderName::from_bytes(bytes.get(n.clone())?).ok()?;
        let value = http::HeaderValue::from_maybe_shared(bytes.slice(v.clone())).ok()?;
        map.append(name, value);
    }
    Some(map)
}

/// How a response's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseBody {
    None,
    Length(u64),
    Chunked,
    /// Read until the server closes (no length, or a final coding other
    /// than chunked); the connection cannot be reused.
    UntilClose,
}

/// A parsed response head: offsets into the buffer it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub reason: Range<usize>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    pub headers: Spans,
    pub body: ResponseBody,
    pub len: usize,
    pub close: bool,
    pub keep_alive: bool,
    pub upgrade: bool,
}

/// Parses the response head at the start of `buf` (`Ok(None)` while it is
/// incomplete), framed by RFC 9112 §6.3: no body after HEAD, 1xx, 204 and
/// 304; both length headers, a coding on HTTP/1.0, or a coding after
/// `chunked` (stricter than the RFC, which reads such a body until close)
/// are an error, a response a proxy must not pass on; otherwise chunked, a
/// length, or until the server closes.
pub fn parse_response(
    buf: &[u8],
    max_headers: usize,
    after_head: bool,
) -> Result<Option<ResponseHead>, HeadError> {
    with_slots(max_headers, |slots| {
        response_in(buf, max_headers, after_head, slots)
    })
}

fn response_in<'b>(
    buf: &'b [u8],
    max_headers: usize,
    after_head: bool,
    slots: &mut [MaybeUninit<httparse::Header<'b>>],
) -> Result<Option<ResponseHead>, HeadError> {
    let mut resp = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut resp, buf, slots);
    let Some(len) = complete(parsed, max_headers)? else {
        return Ok(None);
    };
    let (Some(status), Some(minor)) = (resp.code, resp.version) else {
        return Err(HeadError::Malformed("incomplete status line"));
    };
    let mut headers = Spans::take();
    let f = Fields::read(resp.headers, buf, &mut headers)?;
    let body = match (f.encoded, f.length) {
        (true, Some(_)) => return Err(HeadError::LengthAndEncoding),
        (true, None) if minor == 0 => return Err(HeadError::EncodingOnHttp10),
        _ if after_head || status < 200 || status == 204 || status == 304 => ResponseBody::None,
        (true, None) if f.chunked_last => ResponseBody::Chunked,
        (true, None) => ResponseBody::UntilClose,
        (false, Some(0)) => ResponseBody::None,
        (false, Some(n)) => ResponseBody::Length(n),
        (false, None) => ResponseBody::UntilClose,
    };
    Ok(Some(ResponseHead {
        status,
        reason: offset(buf, resp.reason.unwrap_or("").as_bytes()),
        minor,
        headers,
        body,
        len,
        close: f.close,
        keep_alive: f.keep_alive,
        upgrade: f.upgrade,
    }))
}

/// What a head's fields say about its framing and its connection, read in
/// one pass (each field's offsets pushed to `out`).
#[derive(Debug, Default)]
struct Fields {
    length: Option<u64>,
    /// `Transfer-Encoding` is present.
    encoded: bool,
    /// Its last coding is `chunked`.
    chunked_last: bool,
    host: Option<usize>,
    hosts: usize,
    close: bool,
    keep_alive: bool,
    upgrade: bool,
    expect_continue: bool,
}

impl Fields {
    fn read(
        fields: &[httparse::Header<'_>],
        buf: &[u8],
        out: &mut Vec<(Range<usize>, Range<usize>)>,
    ) -> Result<Fields, HeadError> {
        let mut f = Fields::default();
        for h in fields {
            let (name, value) = (h.name.as_bytes(), h.value);
            out.push((offset(buf, name), offset(buf, value)));
            if name.eq_ignore_ascii_case(b"content-length") {
                for item in value.split(|&b| b == b',') {
                    let n = parse_length(trim(item)).ok_or(HeadError::BadLength)?;
                    if f.length.is_some_and(|l| l != n) {
                        return Err(HeadError::DifferingLengths);
                    }
                    f.length = Some(n);
                }
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                // Present at all, the body is encoded: an empty value is no
                // coding at all, so not chunked.
                f.encoded = true;
                for coding in value.split(|&b| b == b',').map(trim).filter(|c| !c.is_empty()) {
                    if f.chunked_last {
                        // Nothing may follow `chunked`, not even `chunked`.
                        return Err(HeadError::NotChunked);
                    }
                    f.chunked_last = coding.eq_ignore_ascii_case(b"chunked");
                }
            } else if name.eq_ignore_ascii_case(b"host") {
                f.host.get_or_insert(out.len() - 1);
                f.hosts += 1;
            } else if name.eq_ignore_ascii_case(b"connection") {
                for token in value.split(|&b| b == b',').map(trim) {
                    f.close |= token.eq_ignore_ascii_case(b"close");
                    f.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                    f.upgrade |= token.eq_ignore_ascii_case(b"upgrade");
                }
            } else if name.eq_ignore_ascii_case(b"expect") {
                f.expect_continue |= trim(value).eq_ignore_ascii_case(b"100-continue");
            }
        }
        Ok(f)
    }
}

/// Header slots for httparse, left uninitialised: on the stack up to
/// [`STACK_SLOTS`] (no allocation, nothing written before parsing).
fn with_slots<'b, R>(max: usize, f: impl FnOnce(&mut [MaybeUninit<httparse::Header<'b>>]) -> R) -> R {
    if max <= STACK_SLOTS {
        let mut slots = [const { MaybeUninit::uninit() }; STACK_SLOTS];
        f(&mut slots[..max])
    } else {
        let mut slots = Vec::with_capacity(max);
        slots.resize_with(max, MaybeUninit::uninit);
        f(&mut slots)
    }
}

/// Header slots kept on the stack (32 bytes each).
const STACK_SLOTS: usize = 128;

/// httparse's answer: the head's length, or None while it is incomplete.
fn complete(r: httparse::Result<usize>, max_headers: usize) -> Result<Option<usize>, HeadError> {
    match r {
        Ok(httparse::Status::Complete(n)) => Ok(Some(n)),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooManyHeaders(max_headers)),
        Err(e) => Err(HeadError::Malformed(error_text(e))),
    }
}

/// Digits only, at most 19 of them (fits in a u64 with room to spare).
fn parse_length(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter()
        .try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
}

fn trim(s: &[u8]) -> &[u8] {
    s.trim_ascii()
}

/// Where `part` (a slice of `buf`) sits in `buf`.
fn offset(buf: &[u8], part: &[u8]) -> Range<usize> {
    let start = (part.as_ptr() as usize).saturating_sub(buf.as_ptr() as usize);
    start..start + part.len()
}

fn error_text(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "invalid HTTP version",
    }
}

/// Whether `target` is a URI as `http` reads one (what routing and
/// forwarding use), without the copy `http` makes to check: an
/// origin-form target is scanned here with the bytes `http` accepts in a
/// path and in a query (asked of `http` once); other forms, rare, are
/// handed to `http`.
fn valid_target(target: &[u8]) -> bool {
    /// For each ASCII byte: accepted in a path, accepted in a query.
    static ACCEPTED: LazyLock<[(bool, bool); 128]> = LazyLock::new(|| {
        let mut t = [(false, false); 128];
        for (b, slot) in (0u8..128).zip(t.iter_mut()) {
            *slot = (
                http::uri::PathAndQuery::try_from(&[b'/', b][..]).is_ok(),
                http::uri::PathAndQuery::try_from(&[b'/', b'?', b][..]).is_ok(),
            );
        }
        t
    });
    if target.first() != Some(&b'/') || target.len() >= usize::from(u16::MAX) {
        return http::Uri::try_from(target).is_ok();
    }
    let accepted = &*ACCEPTED;
    let mut in_query = false;
    let mut high = false;
    let mut end = target.len();
    for (i, &b) in target.iter().enumerate() {
        match b {
            b'#' => {
                end = i;
                break;
            }
            b'?' if !in_query => in_query = true,
            0x80.. => high = true,
            _ => {
                let (path, query) = accepted[usize::from(b)];
                if !(if in_query { query } else { path }) {
                    return false;
                }
            }
        }
    }
    !high || std::str::from_utf8(&target[..end]).is_ok()
}

#[cfg(test)]
mod tests;
