//! Reading cookies from request headers, without allocating.

use http::header::COOKIE;
use http::HeaderMap;

/// The value of the first cookie called `name` in the `Cookie` header(s),
/// with surrounding double quotes removed.
pub(super) fn find<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h [u8]> {
    headers
        .get_all(COOKIE)
        .iter()
        .find_map(|line| in_line(line.as_bytes(), name.as_bytes()))
}

/// Looks for `name` in one `Cookie` line: `a=1; b=2`.
fn in_line<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    line.split(|&b| b == b';').find_map(|pair| {
        let eq = pair.iter().position(|&b| b == b'=')?;
        let (k, v) = pair.split_at(eq);
        if k.trim_ascii() != name {
            return None;
        }
        let v = v.get(1..).unwrap_or_default().trim_ascii();
        Some(
            v.strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(v),
        )
    })
}
