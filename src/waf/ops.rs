//! Operators and transformations, with ModSecurity's documented behaviour.

use std::path::Path;

use super::model::{phrases::Phrases, OperatorKind, Transform};

/// An operator from its name and parameter (`@pmFromFile` reads its file
/// relative to the rule file's directory `dir`).
pub(super) fn compile(name: &str, param: &str, dir: &Path) -> Result<OperatorKind, String> {
    let words = |p: &str| -> Vec<Vec<u8>> {
        p.split_whitespace()
            .map(|w| w.as_bytes().to_ascii_lowercase())
            .collect()
    };
    Ok(match name {
        "rx" => rx(param)?,
        "pm" => OperatorKind::Pm(Phrases::new(words(param))?),
        "pmFromFile" | "pmf" => {
            let mut all = Vec::new();
            for f in param.split_whitespace() {
                let path = dir.join(f);
                let text =
                    std::fs::read_to_string(&path).map_err(|e| format!("@{name} {}: {e}", path.display()))?;
                all.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .map(|l| l.as_bytes().to_vec()),
                );
            }
            OperatorKind::Pm(Phrases::new(all)?)
        }
        "ipMatchFromFile" | "ipMatchF" => {
            let path = dir.join(param.trim());
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("@{name} {}: {e}", path.display()))?;
            let list: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .collect();
            ip_list(&list.join(","), name)?
        }
        "detectSQLi" => OperatorKind::DetectSqli,
        "detectXSS" => OperatorKind::DetectXss,
        "validateUrlEncoding" => OperatorKind::ValidateUrlEncoding,
        "validateUtf8Encoding" => OperatorKind::ValidateUtf8Encoding,
        "rbl" => OperatorKind::NotEvaluated("@rbl (a DNS block list lookup on the request path)"),
        "geoLookup" => OperatorKind::NotEvaluated("@geoLookup (no GeoIP database)"),
        "noMatch" => OperatorKind::NoMatch,
        "streq" => OperatorKind::StrEq(param.to_string()),
        "contains" => OperatorKind::Contains(param.to_string()),
        "containsWord" => OperatorKind::ContainsWord(param.to_string()),
        "beginsWith" => OperatorKind::BeginsWith(param.to_string()),
        "endsWith" => OperatorKind::EndsWith(param.to_string()),
        "within" => OperatorKind::Within(param.to_string()),
        "eq" => OperatorKind::Eq(param.to_string()),
        "ge" => OperatorKind::Ge(param.to_string()),
        "gt" => OperatorKind::Gt(param.to_string()),
        "le" => OperatorKind::Le(param.to_string()),
        "lt" => OperatorKind::Lt(param.to_string()),
        "unconditionalMatch" => OperatorKind::Unconditional,
        "ipMatch" => ip_list(param, name)?,
        "validateByteRange" => {
            let mut allowed = Box::new([false; 256]);
            for part in param.split(',') {
                let part = part.trim();
                let (a, b) = part.split_once('-').unwrap_or((part, part));
                let (a, b): (u8, u8) = match (a.trim().parse(), b.trim().parse()) {
                    (Ok(a), Ok(b)) if a <= b => (a, b),
                    _ => return Err(format!("@validateByteRange: `{part}` is not a byte or a range")),
                };
                for x in a..=b {
                    allowed[usize::from(x)] = true;
                }
            }
            OperatorKind::ValidateByteRange(allowed)
        }
        other => return Err(format!("operator @{other} is not supported by rampart's WAF yet")),
    })
}

/// A regular expression as ModSecurity's PCRE reads it: bytes, ASCII
/// classes; a pattern with look-around or back-references goes to a
/// backtracking engine.
fn rx(param: &str) -> Result<OperatorKind, String> {
    let translated = pcre_to_rust(param);
    let bytes = regex::bytes::RegexBuilder::new(&translated)
        .unicode(false)
        .size_limit(1 << 24)
        .dfa_size_limit(1 << 22)
        .build()
        .or_else(|_| {
            regex::bytes::RegexBuilder::new(&translated)
                .size_limit(1 << 24)
                .dfa_size_limit(1 << 22)
                .build()
        });
    match bytes {
        Ok(re) => Ok(OperatorKind::Rx(re)),
        Err(plain) => fancy_regex::RegexBuilder::new(param)
            .backtrack_limit(1_000_000)
            .build()
            .map(|re| OperatorKind::RxFancy(Box::new(re)))
            .map_err(|e| format!("@rx: {plain}; as a backtracking pattern: {e}")),
    }
}

/// PCRE syntax the `regex` crate reads differently, rewritten: possessive
/// quantifiers (`*+`, `++`, `?+`, `{n}+`) become greedy ones (the same
/// matches for a non-backtracking engine, except where possession makes
/// PCRE fail), a `{` that is not a quantifier is a literal, and inside a
/// class `[`, `&&`, `--` and `~~` are literal characters, not set syntax;
/// `\<` and `\>` are `<` and `>`.
pub(super) fn pcre_to_rust(p: &str) -> String {
    let c: Vec<char> = p.chars().collect();
    let mut out = String::with_capacity(p.len() + 8);
    let mut i = 0;
    let mut in_class = false;
    // Whether the last thing written can be repeated (for `{`).
    let mut after_atom = false;
    let quantifier_at = |i: usize| -> Option<usize> {
        // `{n}`, `{n,}`, `{n,m}`: the index after `}`.
        let mut j = i + 1;
        let digits = |j: &mut usize| {
            let s = *j;
            while c.get(*j).is_some_and(char::is_ascii_digit) {
                *j += 1;
            }
            *j > s
        };
        if !digits(&mut j) {
            return None;
        }
        if c.get(j) == Some(&',') {
            j += 1;
            digits(&mut j);
        }
        (c.get(j) == Some(&'}')).then_some(j + 1)
    };
    while i < c.len() {
        let ch = c[i];
        if ch == '\\' {
            match c.get(i + 1) {
                Some('<') | Some('>') => out.push(c[i + 1]),
                Some(&n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push_str("\\\\"),
            }
            i += 2;
            after_atom = true;
            continue;
        }
        if in_class {
            match ch {
                ']' => {
                    in_class = false;
                    out.push(']');
                    after_atom = true;
                }
                '[' if c.get(i + 1) == Some(&':') => {
                    // A POSIX class `[:alpha:]`: copied whole.
                    let end = (i + 2..c.len().saturating_sub(1)).find(|&j| c[j] == ':' && c[j + 1] == ']');
                    match end {
                        Some(e) => {
                            out.extend(&c[i..e + 2]);
                            i = e + 2;
                            continue;
                        }
                        None => out.push_str("\\["),
                    }
                }
                '[' => out.push_str("\\["),
                '&' | '-' | '~' if c.get(i + 1) == Some(&ch) => {
                    out.push('\\');
                    out.push(ch);
                }
                _ => out.push(ch),
            }
            i += 1;
            continue;
        }
        match ch {
            '[' => {
                in_class = true;
                out.push('[');
                // `]` or `^]` first in a class is a literal.
                if c.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if c.get(i + 1) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
                i += 1;
                continue;
            }
            '*' | '+' | '?' => {
                out.push(ch);
                // A possessive mark after a quantifier.
                if (ch != '?' || after_atom) && c.get(i + 1) == Some(&'+') {
                    i += 1;
                }
                after_atom = false;
                i += 1;
                continue;
            }
            '{' => match quantifier_at(i).filter(|_| after_atom) {
                Some(end) => {
                    out.extend(&c[i..end]);
                    i = end;
                    if c.get(i) == Some(&'+') {
                        i += 1;
                    }
                    after_atom = false;
                    continue;
                }
                None => out.push_str("\\{"),
            },
            '}' => out.push_str("\\}"),
            '(' => {
                out.push('(');
                after_atom = false;
                i += 1;
                continue;
            }
            '|' => {
                out.push('|');
                after_atom = false;
                i += 1;
                continue;
            }
            _ => out.push(ch),
        }
        after_atom = true;
        i += 1;
    }
    out
}

fn ip_list(param: &str, op: &str) -> Result<OperatorKind, String> {
    Ok(OperatorKind::IpMatch(
        param
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| {
                a.parse::<ipnet::IpNet>()
                    .or_else(|_| a.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("@{op}: `{a}` is not an address or network"))
            })
            .collect::<Result<_, _>>()?,
    ))
}

/// Whether `value` matches (not counting negation), and what it matched
/// (for `capture` and MATCHED_VAR). `expand` expands `%{...}` macros.
pub(super) fn test(
    kind: &OperatorKind,
    value: &[u8],
    capture: bool,
    expand: &dyn Fn(&str) -> String,
) -> Option<Vec<Vec<u8>>> {
    let num = |v: &[u8]| -> i64 {
        // Leading digits (and a sign) after spaces, as strtol reads them.
        let v = v.trim_ascii();
        let (neg, digits) = match v.first() {
            Some(b'-') => (true, &v[1..]),
            Some(b'+') => (false, &v[1..]),
            _ => (false, v),
        };
        let mut n: i64 = 0;
        for d in digits.iter().take_while(|d| d.is_ascii_digit()) {
            n = n.saturating_mul(10).saturating_add(i64::from(d - b'0'));
        }
        if neg {
            -n
        } else {
            n
        }
    };
    let cmp = |p: &str, f: fn(i64, i64) -> bool| {
        f(num(value), num(expand_text(p, expand).as_bytes())).then(Vec::new)
    };
    let one = |v: &[u8]| vec![v.to_vec()];
    let found = match kind {
        // Most values do not match: the cheaper search decides first.
        OperatorKind::Rx(re) if capture => {
            if !re.is_match(value) {
                return None;
            }
            return re.captures(value).map(|c| {
                c.iter()
                    .take(10)
                    .map(|m| m.map_or(Vec::new(), |m| m.as_bytes().to_vec()))
                    .collect()
            });
        }
        OperatorKind::Rx(re) => re.is_match(value).then(Vec::new),
        OperatorKind::RxFancy(re) => {
            let text = String::from_utf8_lossy(value);
            // A pattern that runs past its backtracking limit does not match.
            return match re.captures(text.as_ref()) {
                Ok(Some(c)) => Some(
                    c.iter()
                        .take(10)
                        .map(|m| m.map_or(Vec::new(), |m| m.as_str().as_bytes().to_vec()))
                        .collect(),
                ),
                _ => None,
            };
        }
        OperatorKind::Pm(p) => p.find(value).map(<[u8]>::to_vec),
        OperatorKind::StrEq(p) => (value == expand_text(p, expand).as_bytes()).then(|| value.to_vec()),
        OperatorKind::Contains(p) => {
            let p = expand_text(p, expand);
            contains(value, p.as_bytes()).then(|| p.as_bytes().to_vec())
        }
        OperatorKind::ContainsWord(p) => {
            let p = expand_text(p, expand);
            let pb = p.as_bytes();
            let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
            let found = !pb.is_empty()
                && value.windows(pb.len()).enumerate().any(|(i, w)| {
                    w == pb
                        && (i == 0 || !word(value[i - 1]))
                        && value.get(i + pb.len()).is_none_or(|&b| !word(b))
                });
            found.then(|| p.as_bytes().to_vec())
        }
        OperatorKind::BeginsWith(p) => value
            .starts_with(expand_text(p, expand).as_bytes())
            .then(|| value.to_vec()),
        OperatorKind::EndsWith(p) => value
            .ends_with(expand_text(p, expand).as_bytes())
            .then(|| value.to_vec()),
        OperatorKind::Within(p) => {
            // True when the value is found inside the parameter.
            let p = expand_text(p, expand);
            (value.is_empty() || contains(p.as_bytes(), value)).then(|| value.to_vec())
        }
        OperatorKind::Eq(p) => cmp(p, |a, b| a == b),
        OperatorKind::Ge(p) => cmp(p, |a, b| a >= b),
        OperatorKind::Gt(p) => cmp(p, |a, b| a > b),
        OperatorKind::Le(p) => cmp(p, |a, b| a <= b),
        OperatorKind::Lt(p) => cmp(p, |a, b| a < b),
        OperatorKind::IpMatch(nets) => {
            let ip: Option<std::net::IpAddr> = std::str::from_utf8(value)
                .ok()
                .and_then(|s| s.trim().parse().ok());
            ip.filter(|ip| nets.iter().any(|n| n.contains(ip)))
                .map(|_| value.to_vec())
        }
        OperatorKind::ValidateByteRange(allowed) => value
            .iter()
            .find(|b| !allowed[usize::from(**b)])
            .map(|b| vec![*b]),
        OperatorKind::ValidateUrlEncoding => bad_url_encoding(value).then(Vec::new),
        OperatorKind::ValidateUtf8Encoding => std::str::from_utf8(value).is_err().then(Vec::new),
        OperatorKind::DetectSqli => super::verdicts::sqli(value),
        OperatorKind::DetectXss => super::verdicts::xss(value).then(|| value.to_vec()),
        OperatorKind::NotEvaluated(_) | OperatorKind::NoMatch => None,
        OperatorKind::Unconditional => Some(Vec::new()),
    };
    found.map(|f| one(&f))
}

/// An operator's parameter with its `%{...}` macros expanded (borrowed
/// when it has none).
fn expand_text<'p>(p: &'p str, expand: &dyn Fn(&str) -> String) -> std::borrow::Cow<'p, str> {
    if p.contains("%{") {
        std::borrow::Cow::Owned(expand(p))
    } else {
        std::borrow::Cow::Borrowed(p)
    }
}

/// `%` not followed by two hex digits (what `@validateUrlEncoding` flags).
fn bad_url_encoding(v: &[u8]) -> bool {
    let mut i = 0;
    while let Some(at) = memchr::memchr(b'%', &v[i..]) {
        let p = i + at;
        match v.get(p + 1..p + 3) {
            Some([a, b]) if a.is_ascii_hexdigit() && b.is_ascii_hexdigit() => i = p + 3,
            _ => return true,
        }
    }
    false
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || memchr::memmem::find(hay, needle).is_some()
}

/// Whether `t` can change `v`: most values hold nothing a transformation
/// acts on (no `%`, no `&`, no upper case...), and are then left as they
/// are, without a copy.
pub(super) fn can_change(t: Transform, v: &[u8]) -> bool {
    let any = |f: fn(&u8) -> bool| v.iter().any(f);
    match t {
        Transform::None => false,
        Transform::Lowercase => any(u8::is_ascii_uppercase),
        Transform::Uppercase => any(u8::is_ascii_lowercase),
        Transform::UrlDecode | Transform::UrlDecodeUni => any(|b| *b == b'%' || *b == b'+'),
        Transform::RemoveNulls | Transform::ReplaceNulls => memchr::memchr(0, v).is_some(),
        Transform::RemoveWhitespace | Transform::CompressWhitespace => any(|b| is_space(*b)),
        Transform::HtmlEntityDecode => memchr::memchr(b'&', v).is_some(),
        Transform::JsDecode | Transform::CssDecode => memchr::memchr(b'\\', v).is_some(),
        Transform::Utf8ToUnicode => any(|b| *b >= 0x80),
        Transform::ReplaceComments => memchr::memchr(b'/', v).is_some(),
        Transform::NormalisePath => memchr::memchr2(b'.', b'/', v).is_some(),
        Transform::NormalisePathWin => memchr::memchr3(b'.', b'/', b'\\', v).is_some(),
        Transform::CmdLine => v.iter().any(|b| {
            b.is_ascii_uppercase() || is_space(*b) || matches!(b, b'\\' | b'"' | b'\'' | b'^' | b',' | b';')
        }),
        // The others always produce a new value (or cannot be told cheaply).
        _ => true,
    }
}

/// Applies one transformation.
pub(super) fn transform(t: Transform, v: Vec<u8>) -> Vec<u8> {
    if !can_change(t, &v) {
        return v;
    }
    match t {
        Transform::None => v,
        Transform::Lowercase => v.to_ascii_lowercase(),
        Transform::Uppercase => v.to_ascii_uppercase(),
        Transform::UrlDecode => url_decode(&v, false),
        Transform::UrlDecodeUni => url_decode(&v, true),
        Transform::RemoveNulls => v.into_iter().filter(|&b| b != 0).collect(),
        Transform::ReplaceNulls => v.into_iter().map(|b| if b == 0 { b' ' } else { b }).collect(),
        Transform::RemoveWhitespace => v.into_iter().filter(|b| !is_space(*b)).collect(),
        Transform::CompressWhitespace => {
            let mut out = Vec::with_capacity(v.len());
            let mut space = false;
            for b in v {
                if is_space(b) {
                    if !space {
                        out.push(b' ');
                    }
                    space = true;
                } else {
                    out.push(b);
                    space = false;
                }
            }
            out
        }
        Transform::Trim => trim(&v, true, true),
        Transform::TrimLeft => trim(&v, true, false),
        Transform::TrimRight => trim(&v, false, true),
        Transform::Length => v.len().to_string().into_bytes(),
        Transform::HtmlEntityDecode => html_entity_decode(&v),
        Transform::NormalisePath => normalise_path(&v, false),
        Transform::NormalisePathWin => normalise_path(&v, true),
        Transform::HexEncode => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let mut out = Vec::with_capacity(v.len() * 2);
            for b in &v {
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
            }
            out
        }
        Transform::Base64Decode => base64_decode(&v),
        Transform::Utf8ToUnicode => utf8_to_unicode(&v),
        Transform::JsDecode => js_decode(&v),
        Transform::CssDecode => css_decode(&v),
        Transform::CmdLine => cmd_line(&v),
        Transform::ReplaceComments => replace_comments(&v),
        Transform::Sha1 => aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &v)
            .as_ref()
            .to_vec(),
        Transform::HexDecode => {
            let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
            v.chunks(2)
                .filter_map(|p| match p {
                    [a, b] => Some(hex(*a)? << 4 | hex(*b)?),
                    _ => None,
                })
                .collect()
        }
    }
}

/// Standard base64, stopping at the first byte outside its alphabet.
fn base64_decode(v: &[u8]) -> Vec<u8> {
    let val = |b: u8| -> Option<u32> {
        Some(match b {
            b'A'..=b'Z' => u32::from(b - b'A'),
            b'a'..=b'z' => u32::from(b - b'a') + 26,
            b'0'..=b'9' => u32::from(b - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let mut out = Vec::with_capacity(v.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in v {
        let Some(x) = val(b) else { break };
        acc = (acc << 6) | x;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Multi-byte UTF-8 sequences as `%uHHHH` (what urlDecodeUni reads back).
fn utf8_to_unicode(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    for chunk in v.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_ascii() {
                out.push(c as u8);
            } else {
                out.extend(format!("%u{:04x}", u32::from(c)).bytes());
            }
        }
        out.extend_from_slice(chunk.invalid());
    }
    out
}

/// Runs `escape` at each backslash that has something after it: it gets
/// the bytes after the backslash, writes what they decode to, and says how
/// many of them it used.
fn unescape(v: &[u8], mut escape: impl FnMut(&[u8], &mut Vec<u8>) -> usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'\\' && i + 1 < v.len() {
            i += 1 + escape(&v[i + 1..], &mut out);
        } else {
            out.push(v[i]);
            i += 1;
        }
    }
    out
}

fn hex_value(b: u8) -> Option<u32> {
    (b as char).to_digit(16)
}

/// The number the first `max` hex digits of `r` (at least `min`) spell,
/// and how many there were.
fn hex_run(r: &[u8], min: usize, max: usize) -> Option<(u32, usize)> {
    let n = r
        .iter()
        .take(max)
        .take_while(|b| hex_value(**b).is_some())
        .count();
    (n >= min).then(|| {
        let code = r[..n].iter().fold(0u32, |a, b| {
            a.wrapping_mul(16).wrapping_add(hex_value(*b).unwrap_or(0))
        });
        (code, n)
    })
}

/// JavaScript escapes: `\uHHHH` (the low byte; full-width ASCII to ASCII),
/// `\xHH`, octal `\OOO`, `\b \f \n \r \t \v`, and `\c` as `c`.
fn js_decode(v: &[u8]) -> Vec<u8> {
    unescape(v, |r, out| match r[0] {
        b'u' if hex_run(&r[1..], 4, 4).is_some() => {
            out.push(low_byte(hex_run(&r[1..], 4, 4).map_or(0, |(c, _)| c)));
            5
        }
        b'x' if hex_run(&r[1..], 2, 2).is_some() => {
            out.push(hex_run(&r[1..], 2, 2).map_or(0, |(c, _)| c) as u8);
            3
        }
        b'0'..=b'7' => {
            let digits = r
                .iter()
                .take(3)
                .take_while(|b| (b'0'..=b'7').contains(*b))
                .count();
            let code = r[..digits].iter().fold(0u32, |a, b| a * 8 + u32::from(b - b'0'));
            out.push((code & 0xff) as u8);
            digits
        }
        c => {
            out.push(match c {
                b'b' => 0x08,
                b'f' => 0x0c,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'v' => 0x0b,
                c => c,
            });
            1
        }
    })
}

/// CSS escapes: a backslash and 1 to 6 hex digits (one white space after
/// them is part of the escape; the low byte is kept), a backslash and a
/// newline removed, a backslash and another character as that character.
fn css_decode(v: &[u8]) -> Vec<u8> {
    unescape(v, |r, out| match hex_run(r, 1, 6) {
        Some((code, n)) => {
            out.push(low_byte(code));
            n + usize::from(r.get(n).is_some_and(|b| is_space(*b)))
        }
        None if r[0] == b'\n' => 1,
        None => {
            out.push(r[0]);
            1
        }
    })
}

/// What ModSecurity's cmdLine does: `\ " ' ^` deleted; runs of white
/// space, `,` and `;` become one space; a space before `/` or `(` is
/// dropped; all lower-cased.
fn cmd_line(v: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(v.len());
    let mut space = false;
    for &b in v {
        match b {
            b'\\' | b'"' | b'\'' | b'^' => {}
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | b',' | b';' => {
                if !space {
                    out.push(b' ');
                    space = true;
                }
            }
            b'/' | b'(' => {
                if space {
                    out.pop();
                }
                out.push(b);
                space = false;
            }
            b => {
                out.push(b.to_ascii_lowercase());
                space = false;
            }
        }
    }
    out
}

/// Each C comment `/* ... */` (an unterminated one to the end) as one space.
fn replace_comments(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'/' && v.get(i + 1) == Some(&b'*') {
            out.push(b' ');
            match memchr::memmem::find(&v[i + 2..], b"*/") {
                Some(end) => i += 2 + end + 2,
                None => break,
            }
        } else {
            out.push(v[i]);
            i += 1;
        }
    }
    out
}

/// A code point as one byte, as ModSecurity's decoders keep it:
/// full-width ASCII (U+FF01..U+FF5E) as ASCII, anything else its low byte.
fn low_byte(code: u32) -> u8 {
    if (0xff01..=0xff5e).contains(&code) {
        (code - 0xfee0) as u8
    } else {
        (code & 0xff) as u8
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0xa0)
}

fn trim(v: &[u8], left: bool, right: bool) -> Vec<u8> {
    let mut s = 0;
    let mut e = v.len();
    if left {
        while s < e && is_space(v[s]) {
            s += 1;
        }
    }
    if right {
        while e > s && is_space(v[e - 1]) {
            e -= 1;
        }
    }
    v[s..e].to_vec()
}

/// `%XX` (and with `uni`, `%uXXXX`, keeping the low byte as ModSecurity
/// does for code points it cannot map) and `+` as a space; invalid escapes
/// are kept as they are.
pub(super) fn url_decode(v: &[u8], uni: bool) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        match v[i] {
            b'%' if uni
                && i + 5 < v.len()
                && (v[i + 1] == b'u' || v[i + 1] == b'U')
                && v[i + 2..i + 6].iter().all(|b| hex(*b).is_some()) =>
            {
                let code = v[i + 2..i + 6]
                    .iter()
                    .fold(0u32, |a, b| a * 16 + hex(*b).unwrap_or(0));
                // Full-width ASCII (U+FF01..U+FF5E) maps to ASCII.
                out.push(low_byte(code));
                i += 6;
            }
            b'%' if i + 2 < v.len() && hex(v[i + 1]).is_some() && hex(v[i + 2]).is_some() => {
                out.push((hex(v[i + 1]).unwrap_or(0) * 16 + hex(v[i + 2]).unwrap_or(0)) as u8);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn html_entity_decode(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'&' {
            let rest = &v[i + 1..];
            let end = rest.iter().take(10).position(|&b| b == b';');
            let body = end.unwrap_or_else(|| {
                rest.iter()
                    .take_while(|b| b.is_ascii_alphanumeric() || **b == b'#')
                    .count()
            });
            let name = &rest[..body];
            let decoded: Option<u32> = if let Some(num) = name.strip_prefix(b"#") {
                match num.first() {
                    Some(b'x' | b'X') => {
                        u32::from_str_radix(std::str::from_utf8(&num[1..]).unwrap_or(""), 16).ok()
                    }
                    _ => std::str::from_utf8(num).ok().and_then(|s| s.parse().ok()),
                }
            } else {
                match name {
                    b"lt" => Some(u32::from(b'<')),
                    b"gt" => Some(u32::from(b'>')),
                    b"amp" => Some(u32::from(b'&')),
                    b"quot" => Some(u32::from(b'"')),
                    b"apos" => Some(u32::from(b'\'')),
                    b"nbsp" => Some(0xa0),
                    _ => None,
                }
            };
            if let Some(c) = decoded.filter(|_| !name.is_empty()) {
                out.push((c & 0xff) as u8);
                i += 1 + body + usize::from(end.is_some());
                continue;
            }
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

/// Removes `./` and resolves `../` (with `win`, backslashes first become
/// slashes); repeated slashes become one.
fn normalise_path(v: &[u8], win: bool) -> Vec<u8> {
    let v: Vec<u8> = if win {
        v.iter().map(|&b| if b == b'\\' { b'/' } else { b }).collect()
    } else {
        v.to_vec()
    };
    let absolute = v.first() == Some(&b'/');
    let trailing = v.last() == Some(&b'/');
    let mut parts: Vec<&[u8]> = Vec::new();
    for seg in v.split(|&b| b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|p| *p != b"..") {
                    parts.pop();
                } else if !absolute {
                    parts.push(seg);
                }
            }
            s => parts.push(s),
        }
    }
    let mut out = Vec::with_capacity(v.len());
    if absolute {
        out.push(b'/');
    }
    out.extend(parts.join(&b'/'));
    if trailing && !out.ends_with(b"/") {
        out.push(b'/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(x: Transform, v: &str) -> String {
        String::from_utf8_lossy(&transform(x, v.as_bytes().to_vec())).into_owned()
    }

    #[test]
    fn transformations_behave_as_modsecurity_documents() {
        assert_eq!(t(Transform::Lowercase, "SeLeCt"), "select");
        assert_eq!(t(Transform::UrlDecode, "a%20b+c%zz%4"), "a b c%zz%4");
        assert_eq!(t(Transform::UrlDecodeUni, "%u0041%uff1c"), "A<");
        assert_eq!(t(Transform::RemoveNulls, "a\0b"), "ab");
        assert_eq!(t(Transform::CompressWhitespace, "a \t\n b"), "a b");
        assert_eq!(t(Transform::RemoveWhitespace, " a b "), "ab");
        assert_eq!(t(Transform::Trim, "  a  "), "a");
        assert_eq!(t(Transform::Length, "abcd"), "4");
        assert_eq!(
            t(Transform::HtmlEntityDecode, "&lt;script&gt;&#65;&#x42;&amp"),
            "<script>AB&"
        );
        assert_eq!(
            t(Transform::NormalisePath, "/a/./b/../../etc//passwd"),
            "/etc/passwd"
        );
        assert_eq!(t(Transform::NormalisePathWin, "c:\\a\\..\\b"), "c:/b");
        assert_eq!(t(Transform::HexDecode, "414243"), "ABC");
        assert_eq!(t(Transform::HexEncode, "AB"), "4142");
        assert_eq!(t(Transform::Base64Decode, "PHNjcmlwdD4=x"), "<script>");
        assert_eq!(t(Transform::Utf8ToUnicode, "a\u{e9}"), "a%u00e9");
        assert_eq!(t(Transform::JsDecode, "\\u003cs\\x3e\\74\\n\\q"), "<s><\nq");
        assert_eq!(t(Transform::CssDecode, "\\3c script\\3e \\a"), "<script>\n");
        assert_eq!(
            t(Transform::CmdLine, "C^at  ;/e\"t\"c/pa'ss'wd"),
            "cat/etc/passwd"
        );
        assert_eq!(
            t(Transform::ReplaceComments, "un/**/ion sel/*x*/ect /* open"),
            "un ion sel ect  "
        );
        assert_eq!(
            transform(Transform::Sha1, b"abc".to_vec())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }

    #[test]
    fn operators_match_as_modsecurity_documents() {
        let dir = Path::new(".");
        let op = |n: &str, p: &str| compile(n, p, dir).expect("operator");
        let no = |_: &str| String::new();
        let m = |k: &OperatorKind, v: &str| test(k, v.as_bytes(), false, &no).is_some();
        assert!(m(&op("rx", "(?i)<script"), "a<SCRIPT>"));
        assert!(m(&op("pm", "union select"), "1 UNION all"));
        assert!(!m(&op("pm", "union select"), "onion"));
        assert!(m(&op("streq", "GET"), "GET") && !m(&op("streq", "GET"), "GETS"));
        assert!(m(&op("contains", ".."), "/a/../b"));
        assert!(m(&op("containsWord", "drop"), "x drop table") && !m(&op("containsWord", "drop"), "dropped"));
        assert!(m(&op("beginsWith", "/admin"), "/admin/x") && m(&op("endsWith", ".php"), "a.php"));
        assert!(m(&op("within", "GET HEAD POST"), "HEAD") && !m(&op("within", "GET HEAD"), "PUT"));
        assert!(
            m(&op("ge", "5"), "5")
                && m(&op("gt", "5"), "6")
                && m(&op("lt", "5"), "4")
                && m(&op("le", "5"), "5")
        );
        assert!(m(&op("eq", "0"), "") && m(&op("eq", "3"), "3"));
        assert!(
            m(&op("ipMatch", "10.0.0.0/8,192.0.2.1"), "10.1.2.3")
                && !m(&op("ipMatch", "10.0.0.0/8"), "11.0.0.1")
        );
        assert!(
            m(&op("validateByteRange", "32-126"), "a\u{1}") && !m(&op("validateByteRange", "32-126"), "abc")
        );
        let expand = |p: &str| p.replace("%{tx.limit}", "3");
        assert!(test(&op("ge", "%{tx.limit}"), b"4", false, &expand).is_some());
        // libinjection's fingerprints and its XSS detection.
        let sqli = op("detectSQLi", "");
        let got = test(&sqli, b"1' OR '1'='1' --", true, &no).expect("SQL injection");
        assert_eq!(got, vec![b"s&sos".to_vec()]);
        assert!(!m(&sqli, "O'Reilly's books"));
        assert!(m(&op("detectXSS", ""), "<script>alert(1)</script>") && !m(&op("detectXSS", ""), "a < b"));
        assert!(m(&op("validateUrlEncoding", ""), "a%zz") && m(&op("validateUrlEncoding", ""), "50%"));
        assert!(!m(&op("validateUrlEncoding", ""), "a%20b"));
        assert!(test(&op("validateUtf8Encoding", ""), b"caf\xc3", false, &no).is_some());
        assert!(!m(&op("validateUtf8Encoding", ""), "café"));
        // Parsed, never matching (and reported when the rules load).
        assert!(!m(&op("rbl", "dnsbl.example"), "192.0.2.1"));
        assert!(
            compile("verifyCC", "", dir).is_err(),
            "what is not run is an error"
        );
        // Captures: TX.0 to TX.9.
        let got = test(&op("rx", "^(\\w+)=(\\d+)"), b"id=42", true, &no).expect("match");
        assert_eq!(got, vec![b"id=42".to_vec(), b"id".to_vec(), b"42".to_vec()]);
        // Look-around and back-references run on the backtracking engine.
        assert!(matches!(op("rx", "(\\w+) \\1"), OperatorKind::RxFancy(_)));
        assert!(m(&op("rx", "(\\w+) \\1"), "a b b") && !m(&op("rx", "(\\w+) \\1"), "a b c"));
        // PCRE classes: ASCII only.
        assert!(!m(&op("rx", "^\\w$"), "é"));
    }

    #[test]
    fn pcre_syntax_is_read_as_pcre_reads_it() {
        assert_eq!(pcre_to_rust("a\\s*+;b++c?+"), "a\\s*;b+c?");
        assert_eq!(pcre_to_rust("a*?b+?"), "a*?b+?");
        assert_eq!(pcre_to_rust("x{2}+y{1,3}z{,4}{"), "x{2}y{1,3}z\\{,4\\}\\{");
        assert_eq!(pcre_to_rust("[^[\\]a~~b&&c]"), "[^\\[\\]a\\~~b\\&&c]");
        assert_eq!(pcre_to_rust("[]a][^]b][[:alpha:]]"), "[\\]a][^\\]b][[:alpha:]]");
        assert_eq!(pcre_to_rust("\\<a\\>"), "<a>");
        for p in ["a\\s*+;b", "[^[]", "x{", "[]a]"] {
            assert!(compile("rx", p, Path::new(".")).is_ok(), "{p}");
        }
    }
}
