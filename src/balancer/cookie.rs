//! Reading cookies from request headers, without allocating.

use crate::fields::HeaderView;

/// The value of the first cookie called `name` in the `Cookie` header(s),
/// with surrounding double quotes removed.
pub(super) fn find<'h>(headers: &'h dyn HeaderView, name: &str) -> Option<&'h [u8]> {
    let mut found = None;
    headers.each_value("cookie", &mut |line| {
        found = in_line(line, name.as_bytes());
        found.is_none()
    });
    found
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
