//! Heads written field by field from parsed pieces and rampart's own
//! values: the start line from its parts, each field as `name: value`
//! with CRLF (values without leading or trailing whitespace), never a
//! line copied as it came (so a bare LF or any other
//! oddity in what was received cannot reach the other side). Fields whose
//! name or value could break the framing of what is written are refused.
//! Also the chunked coding's framing, for bodies rampart streams.

use std::io::Write;

/// A field that cannot be written as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("a field name that is not a token")]
    Name,
    #[error("a field value with CR, LF or NUL")]
    Value,
    #[error("a start line part with whitespace or a control byte")]
    StartLine,
}

/// Writes a request head (HTTP/1.1) to `out`.
pub fn request_head<'a>(
    out: &mut Vec<u8>,
    method: &[u8],
    target: &[u8],
    fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
) -> Result<(), WriteError> {
    if !is_token(method) || target.is_empty() || target.iter().any(|&b| b <= b' ' || b == 0x7f) {
        return Err(WriteError::StartLine);
    }
    out.extend_from_slice(method);
    out.push(b' ');
    out.extend_from_slice(target);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    write_fields(out, fields)
}

/// Writes a response head (HTTP/1.1) to `out`.
pub fn response_head<'a>(
    out: &mut Vec<u8>,
    status: u16,
    reason: &[u8],
    fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
) -> Result<(), WriteError> {
    if !(100..=999).contains(&status) || reason.iter().any(|&b| b < b' ' && b != b'\t' || b == 0x7f) {
        return Err(WriteError::StartLine);
    }
    let digits = [
        b'0' + (status / 100) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
    ];
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(&digits);
    out.push(b' ');
    out.extend_from_slice(reason);
    out.extend_from_slice(b"\r\n");
    write_fields(out, fields)
}

fn write_fields<'a>(
    out: &mut Vec<u8>,
    fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
) -> Result<(), WriteError> {
    for (name, value) in fields {
        if !is_token(name) {
            return Err(WriteError::Name);
        }
        // Values come from parsers and types that refuse these already;
        // checked again so that no field can break the framing (a loop for
        // the short values most fields have, vectorised for long ones).
        let bad = |b: &u8| *b == b'\r' || *b == b'\n' || *b == 0;
        let unsafe_value = if value.len() < 64 {
            value.iter().any(bad)
        } else {
            memchr::memchr3(b'\r', b'\n', 0, value).is_some()
        };
        if unsafe_value {
            return Err(WriteError::Value);
        }
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.trim_ascii());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// The line before a chunk of `len` bytes (which must not be 0: the last
/// chunk is [`LAST_CHUNK`]).
pub fn chunk_head(out: &mut Vec<u8>, len: usize) {
    let _ = write!(out, "{len:x}\r\n");
}

/// `n` in decimal, written into `buf` (a length's value without an allocation).
pub fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// What follows every chunk's data.
pub const CHUNK_END: &[u8] = b"\r\n";

/// The last chunk, with no trailers.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| super::is_tchar(b))
}

#[cfg(test)]
mod tests;
