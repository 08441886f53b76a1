//! Request heads parsed with `httparse` (strict: no obs-fold, no
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

use std::ops::Range;

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
    pub headers: Vec<(Range<usize>, Range<usize>)>,
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

/// Parses the head at the start of `buf`: `Ok(None)` while it is
/// incomplete.
pub fn parse_request(buf: &[u8], max_headers: usize) -> Result<Option<RequestHead>, HeadError> {
    let mut slots = vec![httparse::EMPTY_HEADER; max_headers];
    let mut req = httparse::Request::new(&mut slots);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders(max_headers)),
        Err(e) => return Err(HeadError::Malformed(error_text(e))),
    };
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Malformed("incomplete request line"));
    };
    // The target must be a URI (origin, absolute, authority or asterisk
    // form) as `http` reads one: what routing and forwarding will use.
    if http::Uri::try_from(target.as_bytes()).is_err() {
        return Err(HeadError::BadTarget);
    }
    let at = |s: &[u8]| offset(buf, s);
    let mut head = RequestHead {
        method: at(method.as_bytes()),
        target: at(target.as_bytes()),
        minor,
        headers: Vec::with_capacity(req.headers.len()),
        body: BodyLength::None,
        len,
        host: None,
        hosts: 0,
        close: false,
        keep_alive: false,
        upgrade: false,
        expect_continue: false,
    };
    let mut length: Option<u64> = None;
    let mut encoded = false;
    let mut chunked_last = false;
    for h in req.headers.iter() {
        let (name, value) = (h.name.as_bytes(), h.value);
        head.headers.push((at(name), at(value)));
        if name.eq_ignore_ascii_case(b"content-length") {
            for item in value.split(|&b| b == b',') {
                let n = parse_length(trim(item)).ok_or(HeadError::BadLength)?;
                if length.is_some_and(|l| l != n) {
                    return Err(HeadError::DifferingLengths);
                }
                length = Some(n);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Present at all, the body is encoded: an empty value is no
            // coding at all, so not chunked.
            encoded = true;
            for coding in value.split(|&b| b == b',').map(trim).filter(|c| !c.is_empty()) {
                if chunked_last {
                    // Nothing may follow `chunked`, not even `chunked`.
                    return Err(HeadError::NotChunked);
                }
                chunked_last = coding.eq_ignore_ascii_case(b"chunked");
            }
        } else if name.eq_ignore_ascii_case(b"host") {
            head.host.get_or_insert(head.headers.len() - 1);
            head.hosts += 1;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',').map(trim) {
                head.close |= token.eq_ignore_ascii_case(b"close");
                head.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                head.upgrade |= token.eq_ignore_ascii_case(b"upgrade");
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            head.expect_continue |= trim(value).eq_ignore_ascii_case(b"100-continue");
        }
    }
    head.body = match (encoded, length) {
        (true, Some(_)) => return Err(HeadError::LengthAndEncoding),
        (true, None) if minor == 0 => return Err(HeadError::EncodingOnHttp10),
        (true, None) if !chunked_last => return Err(HeadError::NotChunked),
        (true, None) => BodyLength::Chunked,
        (false, Some(0)) | (false, None) => BodyLength::None,
        (false, Some(n)) => BodyLength::Length(n),
    };
    Ok(Some(head))
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

#[cfg(test)]
mod tests;
