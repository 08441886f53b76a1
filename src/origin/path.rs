//! Turning a request path into the names of the directories and file it
//! asks for, refusing anything that could step outside the served root.

/// A request path, decoded and checked.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ReqPath {
    /// The decoded names, in order; never empty strings, `.` or `..`, and
    /// never containing `/`, `\` or NUL.
    pub segments: Vec<String>,
    /// Whether the path ends with `/` (asks for a directory).
    pub trailing_slash: bool,
}

impl ReqPath {
    /// Percent-decodes and checks `raw` (the path of a request target,
    /// without the query). `None` for anything that is not a plain path
    /// below the root: a path not starting with `/`, a malformed `%`
    /// escape, a `..` segment (however encoded), an encoded `/`, any `\`
    /// or NUL, or a segment that is not UTF-8. Empty and `.` segments are
    /// dropped, as a browser would.
    pub fn parse(raw: &str) -> Option<ReqPath> {
        let rest = raw.strip_prefix('/')?;
        let mut segments = Vec::new();
        for seg in rest.split('/') {
            let bytes = percent_decode(seg)?;
            if bytes.iter().any(|&b| b == b'/' || b == b'\\' || b == 0) {
                return None;
            }
            let name = String::from_utf8(bytes).ok()?;
            match name.as_str() {
                "" | "." => {}
                ".." => return None,
                _ => segments.push(name),
            }
        }
        let trailing_slash = rest.is_empty() || rest.ends_with('/');
        Some(ReqPath {
            segments,
            trailing_slash,
        })
    }

    /// The canonical spelling of this path as a directory (`/a/b/`),
    /// percent-encoded, for a redirect's `Location`. Built from the
    /// decoded segments, so it always starts with exactly one `/` and can
    /// never name another host.
    pub fn dir_location(&self) -> String {
        let mut out = String::from("/");
        for seg in &self.segments {
            percent_encode_into(seg, &mut out);
            out.push('/');
        }
        out
    }
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hi = hex(*b.get(i + 1)?)?;
            let lo = hex(*b.get(i + 2)?)?;
            out.push((hi << 4) | lo);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The value of a hex digit.
fn hex(c: u8) -> Option<u8> {
    char::from(c).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

fn percent_encode_into(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b);
        if keep {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}
