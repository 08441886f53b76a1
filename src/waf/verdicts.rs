//! libinjection's verdicts (`@detectSQLi`, `@detectXSS`), remembered per
//! worker thread for short values.
//!
//! Both are pure functions of the value, and the values they see most are
//! the ones that repeat from request to request: a browser's User-Agent,
//! its Referer, a session cookie. A verdict is remembered for values of at
//! most [`MAX_LEN`] bytes, up to [`ENTRIES`] of them per thread; when the
//! table is full it is emptied (no order is kept, so a client cannot make
//! it costlier than forgetting). Keys are hashed with std's keyed SipHash:
//! clients choose them.

use std::cell::RefCell;
use std::collections::HashMap;

/// Longer values are scanned every time.
const MAX_LEN: usize = 512;
/// Remembered values per thread and operator.
const ENTRIES: usize = 2048;

/// Remembered verdicts of one operator: the value, and what libinjection
/// said (for SQL injection, the fingerprint; `None` when it said no).
type Memo = HashMap<Box<[u8]>, Option<Box<[u8]>>>;

thread_local! {
    static SQLI: RefCell<Memo> = RefCell::new(HashMap::new());
    static XSS: RefCell<Memo> = RefCell::new(HashMap::new());
}

/// libinjection's SQL-injection test: the fingerprint when it says yes.
pub(super) fn sqli(value: &[u8]) -> Option<Vec<u8>> {
    remembered(&SQLI, value, |v| {
        let r = libinjectionrs::detect_sqli(v);
        r.is_injection().then(|| {
            r.fingerprint
                .map(|f| f.as_str().as_bytes().to_vec())
                .unwrap_or_default()
        })
    })
}

/// libinjection's cross-site-scripting test.
pub(super) fn xss(value: &[u8]) -> bool {
    remembered(&XSS, value, |v| {
        libinjectionrs::detect_xss(v).is_injection().then(Vec::new)
    })
    .is_some()
}

fn remembered(
    memo: &'static std::thread::LocalKey<RefCell<Memo>>,
    value: &[u8],
    test: fn(&[u8]) -> Option<Vec<u8>>,
) -> Option<Vec<u8>> {
    if value.len() > MAX_LEN {
        return test(value);
    }
    if let Some(known) = memo.with(|m| m.borrow().get(value).cloned()) {
        return known.map(Vec::from);
    }
    let verdict = test(value);
    memo.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= ENTRIES {
            m.clear();
        }
        m.insert(value.into(), verdict.as_deref().map(Box::from));
    });
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_verdicts_are_libinjections() {
        let samples: [&[u8]; 5] = [
            b"1' OR '1'='1",
            b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            b"<script>alert(1)</script>",
            b"plain words",
            b"1 UNION SELECT password FROM users",
        ];
        for _ in 0..2 {
            for s in samples {
                let direct = libinjectionrs::detect_sqli(s);
                assert_eq!(sqli(s).is_some(), direct.is_injection(), "{s:?}");
                assert_eq!(xss(s), libinjectionrs::detect_xss(s).is_injection(), "{s:?}");
            }
        }
        assert!(sqli(b"1 UNION SELECT password FROM users").is_some());
        assert!(xss(b"<script>alert(1)</script>"));
        // Past the length limit the value is scanned, not kept.
        let long = [b'a'; MAX_LEN + 1];
        assert!(sqli(&long).is_none());
        assert!(SQLI.with(|m| !m.borrow().contains_key(&long[..])));
    }
}
