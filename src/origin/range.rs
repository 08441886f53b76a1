//! Single byte ranges (RFC 9110 §14): `bytes=a-b`, `bytes=a-`, `bytes=-n`.
//!
//! A request for several ranges is answered with the whole representation
//! (200), which RFC 9110 allows; so is a syntactically invalid `Range`, a
//! unit other than `bytes`, and any range of an empty representation.

use http::header::{HeaderMap, RANGE};

/// What a `Range` header asks of a representation `total` bytes long.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(super) enum Ranged {
    /// Send everything (200).
    Full,
    /// Send `len` bytes from `start` (206); `len` is at least 1.
    Part { start: u64, len: u64 },
    /// 416 Range Not Satisfiable.
    Unsatisfiable,
}

/// Reads the `Range` header against a representation of `total` bytes.
pub(super) fn requested(headers: &HeaderMap, total: u64) -> Ranged {
    let Some(v) = headers.get(RANGE).and_then(|v| v.to_str().ok()) else {
        return Ranged::Full;
    };
    parse(v, total).unwrap_or(Ranged::Full)
}

/// `None` when the header is to be ignored (invalid, several ranges,
/// empty representation).
fn parse(v: &str, total: u64) -> Option<Ranged> {
    let (unit, set) = v.trim().split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") || total == 0 {
        return None;
    }
    let mut specs = set.split(',').map(str::trim).filter(|s| !s.is_empty());
    let spec = specs.next()?;
    if specs.next().is_some() {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        let n = number(last)?;
        if n == 0 {
            return Some(Ranged::Unsatisfiable);
        }
        let start = total.saturating_sub(n);
        return Some(Ranged::Part {
            start,
            len: total - start,
        });
    }
    let start = number(first)?;
    let end = if last.is_empty() {
        None
    } else {
        Some(number(last)?)
    };
    if end.is_some_and(|end| end < start) {
        return None;
    }
    if start >= total {
        return Some(Ranged::Unsatisfiable);
    }
    let end = end.map_or(total - 1, |end| end.min(total - 1));
    Some(Ranged::Part {
        start,
        len: end - start + 1,
    })
}

/// A run of ASCII digits as a number; a number too large for u64 is
/// taken as u64::MAX (it lies past the end of any file either way).
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::{parse, Ranged};

    #[test]
    fn forms() {
        let p = |start, len| Some(Ranged::Part { start, len });
        assert_eq!(parse("bytes=0-9", 100), p(0, 10));
        assert_eq!(parse("bytes=90-", 100), p(90, 10));
        assert_eq!(parse("bytes=-10", 100), p(90, 10));
        assert_eq!(parse("bytes=-1000", 100), p(0, 100));
        assert_eq!(parse("bytes=95-1000", 100), p(95, 5));
        assert_eq!(parse("BYTES = 1-1", 100), p(1, 1));
        assert_eq!(parse("bytes=100-", 100), Some(Ranged::Unsatisfiable));
        assert_eq!(parse("bytes=-0", 100), Some(Ranged::Unsatisfiable));
        assert_eq!(
            parse("bytes=99999999999999999999999-", 100),
            Some(Ranged::Unsatisfiable)
        );
        for ignored in [
            "bytes=5-1",
            "bytes=0-1,5-6",
            "bytes=",
            "bytes=x-1",
            "bytes=+1-2",
            "items=0-1",
            "0-1",
            "bytes=-",
            "bytes=1-+2",
        ] {
            assert_eq!(parse(ignored, 100), None, "{ignored}");
        }
        assert_eq!(parse("bytes=0-0", 0), None);
    }
}
