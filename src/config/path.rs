//! The normal form of a URL path, applied to every request before any rule
//! matches and before routing, and at load to every rule's `path_prefix`
//! (so that both sides of a comparison are in the same form). A rule on
//! `/admin` thus also catches `/./admin`, `//admin`, `/%61dmin` and
//! `/x/../admin`:
//!
//! 1. percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) are
//!    decoded; other escapes are kept, with upper-case hex;
//! 2. an encoded `/` (`%2F`), `\` (`%5C`) or NUL (`%00`), a raw `\`, a bad
//!    escape, or bytes that are not UTF-8 once decoded are refused;
//! 3. repeated slashes are merged and `.`/`..` segments removed
//!    (RFC 3986 §5.2.4; `..` never climbs above the root).

/// Why a path was refused (the request gets 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path contains an encoded slash")]
    EncodedSlash,
    #[error("the path contains a backslash")]
    Backslash,
    #[error("the path contains an encoded NUL")]
    Nul,
    #[error("the path contains a malformed percent escape")]
    BadEscape,
    #[error("the path is not valid UTF-8")]
    NotUtf8,
}

/// The value of a hex digit.
fn hex(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The normal form of `path` (which starts with `/`).
pub fn normalize(path: &str) -> Result<String, PathError> {
    Ok(normalize_changed(path)?.unwrap_or_else(|| path.to_string()))
}

/// Like [`normalize`], but `None` when the path is already normal (the
/// common case: no allocation).
pub fn normalize_changed(path: &str) -> Result<Option<String>, PathError> {
    // Fast path, one pass: nothing to decode, no `/.` (dot segments) and no `//`.
    let bytes = path.as_bytes();
    let mut simple = true;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'%' || b == b'\\' || (b == b'/' && matches!(bytes.get(i + 1), Some(b'/' | b'.'))) {
            simple = false;
            break;
        }
    }
    if simple {
        return Ok(None);
    }
    normalize_slow(path).map(|p| (p != path).then_some(p))
}

fn normalize_slow(path: &str) -> Result<String, PathError> {
    let bytes = path.as_bytes();
    // 1-2: decode unreserved escapes, refuse the dangerous ones.
    let mut decoded: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => return Err(PathError::Backslash),
            b'%' => {
                let (Some(h), Some(l)) = (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(PathError::BadEscape);
                };
                let v = h * 16 + l;
                match v {
                    b'/' => return Err(PathError::EncodedSlash),
                    b'\\' => return Err(PathError::Backslash),
                    0 => return Err(PathError::Nul),
                    v if unreserved(v) => decoded.push(v),
                    v => {
                        decoded.push(b'%');
                        decoded.extend_from_slice(format!("{v:02X}").as_bytes());
                    }
                }
                i += 3;
            }
            b => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    // Bytes still escaped must form UTF-8 once fully decoded.
    let mut full = Vec::with_capacity(decoded.len());
    let mut j = 0;
    while j < decoded.len() {
        if decoded[j] == b'%' {
            let v = hex(decoded[j + 1]).unwrap_or(0) * 16 + hex(decoded[j + 2]).unwrap_or(0);
            full.push(v);
            j += 3;
        } else {
            full.push(decoded[j]);
            j += 1;
        }
    }
    if std::str::from_utf8(&full).is_err() {
        return Err(PathError::NotUtf8);
    }
    let decoded = String::from_utf8(decoded).map_err(|_| PathError::NotUtf8)?;
    // 3: segments.
    let trailing = decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    let mut out: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut p = String::with_capacity(decoded.len());
    for s in &out {
        p.push('/');
        p.push_str(s);
    }
    if p.is_empty() || (trailing && !p.ends_with('/')) {
        p.push('/');
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bypass_forms_become_the_plain_path() {
        for p in [
            "/admin",
            "/./admin",
            "//admin",
            "/%61dmin",
            "/x/../admin",
            "/%2e/admin",
            "/x/%2E%2E/admin",
            "///./x/../admin",
        ] {
            assert_eq!(normalize(p).as_deref(), Ok("/admin"), "{p}");
        }
        assert_eq!(normalize("/../../etc"), Ok("/etc".into()));
        assert_eq!(normalize("/a/b/"), Ok("/a/b/".into()));
        assert_eq!(normalize("/a/b/.."), Ok("/a/".into()));
        assert_eq!(normalize("/"), Ok("/".into()));
        assert_eq!(normalize("/a%20b"), Ok("/a%20b".into()));
        assert_eq!(normalize("/a%c3%a9"), Ok("/a%C3%A9".into()));
    }

    #[test]
    fn normal_paths_need_no_copy() {
        assert_eq!(normalize_changed("/a/b.css"), Ok(None));
        assert_eq!(normalize_changed("/"), Ok(None));
        assert_eq!(
            normalize_changed("/.well-known/x"),
            Ok(None),
            "checked, and found normal"
        );
        assert_eq!(normalize_changed("/a//b"), Ok(Some("/a/b".into())));
        assert_eq!(normalize_changed("/a%2Fb"), Err(PathError::EncodedSlash));
    }

    #[test]
    fn dangerous_forms_are_refused() {
        assert_eq!(normalize("/a%2fb"), Err(PathError::EncodedSlash));
        assert_eq!(normalize("/a%5Cb"), Err(PathError::Backslash));
        assert_eq!(normalize("/a\\b"), Err(PathError::Backslash));
        assert_eq!(normalize("/a%00"), Err(PathError::Nul));
        assert_eq!(normalize("/a%ff"), Err(PathError::NotUtf8));
        assert_eq!(normalize("/a%zz"), Err(PathError::BadEscape));
        assert_eq!(normalize("/a%2"), Err(PathError::BadEscape));
    }
}
