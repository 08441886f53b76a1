//! Makes the TOML deserializer's errors as precise as the validator's: the
//! key path of the place an error points at (found by walking the document
//! with its spans), the kind of value wanted in words (`a whole number`, `a
//! duration such as "30s"`), and for an unknown key the closest known one.

use std::ops::Range;

use toml_edit::{ImDocument, Item, Table, Value};

/// The key path (`pool[0].server[1].weight`) of the innermost key or value
/// whose span holds `offset`, or else of the innermost table whose span
/// (its header, or header and body) does. Empty when
/// nothing does (or the text does not parse).
pub(super) fn key_at(text: &str, offset: usize) -> String {
    let Ok(doc) = ImDocument::parse(text) else {
        return String::new();
    };
    walk_table(doc.as_table(), "", offset).unwrap_or_default()
}

fn holds(span: Option<Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.contains(&offset) || (s.is_empty() && s.start == offset))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn walk_table(t: &Table, path: &str, offset: usize) -> Option<String> {
    for (k, item) in t.iter() {
        let here = join(path, k);
        if holds(t.key(k).and_then(|k| k.span()), offset) {
            return Some(here);
        }
        match item {
            Item::Value(v) => {
                if let Some(p) = walk_value(v, &here, offset) {
                    return Some(p);
                }
            }
            Item::Table(inner) => {
                if let Some(p) = walk_table(inner, &here, offset) {
                    return Some(p);
                }
                if holds(inner.span(), offset) {
                    return Some(here);
                }
            }
            Item::ArrayOfTables(a) => {
                for (i, inner) in a.iter().enumerate() {
                    let here = format!("{here}[{i}]");
                    if let Some(p) = walk_table(inner, &here, offset) {
                        return Some(p);
                    }
                    if holds(inner.span(), offset) {
                        return Some(here);
                    }
                }
            }
            Item::None => {}
        }
    }
    None
}

fn walk_value(v: &Value, here: &str, offset: usize) -> Option<String> {
    if !holds(v.span(), offset) {
        return None;
    }
    match v {
        Value::InlineTable(t) => {
            for (k, inner) in t.iter() {
                let path = join(here, k);
                if holds(t.key(k).and_then(|k| k.span()), offset) {
                    return Some(path);
                }
                if let Some(p) = walk_value(inner, &path, offset) {
                    return Some(p);
                }
            }
        }
        Value::Array(a) => {
            for (i, inner) in a.iter().enumerate() {
                if let Some(p) = walk_value(inner, &format!("{here}[{i}]"), offset) {
                    return Some(p);
                }
            }
        }
        _ => {}
    }
    Some(here.to_string())
}

/// What to say when the TOML parser gives no message (it gives none for a
/// key whose value is missing at the end of the text): name the key of the
/// line the error points at, if the line has one.
pub(super) fn silent_error(text: &str, offset: usize) -> String {
    let start = text[..offset.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or_default();
    match line.split_once('=') {
        Some((key, value)) if value.trim().is_empty() && !key.trim().is_empty() => {
            format!("`{}` has no value", key.trim())
        }
        _ => "the text ends where more was expected".to_string(),
    }
}

/// The key an error is reported under, and its message in the user's
/// terms. `key` is the path [`key_at`] found.
pub(super) fn explain(message: &str, key: &str) -> (String, String) {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((field, known)) = rest.split_once('`') {
            // The key path ends with the unknown key itself: report it under
            // the table it was written in.
            let table = key.strip_suffix(field).map_or(key, |t| t.trim_end_matches('.'));
            return (table.to_string(), unknown_field(field, known));
        }
    }
    let kind = kind_of(key);
    let m = match message.rsplit_once(", expected ") {
        Some((head, expected)) => match plain_expectation(expected, kind) {
            Some(words) => format!("{head}, expected {words}"),
            None => message.to_string(),
        },
        None => message.to_string(),
    };
    (key.to_string(), m)
}

/// `unknown field `x``, with the closest known key when one is close.
fn unknown_field(field: &str, known: &str) -> String {
    let names: Vec<&str> = known.split('`').skip(1).step_by(2).collect();
    let best = names
        .iter()
        .map(|n| (distance(field, n), *n))
        .filter(|(d, n)| *d <= (n.len().max(field.len()) / 3).max(1))
        .min();
    match best {
        Some((_, n)) => format!("unknown field `{field}`, did you mean `{n}`?"),
        None if names.is_empty() => format!("unknown field `{field}`: this table takes no keys"),
        None => format!(
            "unknown field `{field}`, expected one of {}",
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Edit distance: insertions, deletions, substitutions, and swaps of two
/// neighbouring letters (optimal string alignment).
fn distance(a: &str, b: &str) -> usize {
    strsim::osa_distance(a, b)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Duration,
    Size,
}

/// Keys whose strings are durations or sizes, by their path without
/// indexes. Every key of `[timeouts]` is a duration.
fn kind_of(key: &str) -> Option<Kind> {
    let mut generic = String::with_capacity(key.len());
    let mut in_index = false;
    for c in key.chars() {
        match c {
            '[' => in_index = true,
            ']' => in_index = false,
            c if !in_index => generic.push(c),
            _ => {}
        }
    }
    if generic.starts_with("timeouts.") {
        return Some(Kind::Duration);
    }
    const DURATIONS: &[&str] = &[
        "bans.window",
        "bans.duration",
        "listener.hsts_max_age",
        "pool.slow_start",
        "pool.health_check.interval",
        "pool.health_check.timeout",
        "pool.health_check.jitter",
        "pool.outlier.base_ejection_time",
        "alerts.webhook_timeout",
        "alerts.interval",
        "rule.delay",
        "limits.body_grace",
    ];
    const SIZES: &[&str] = &[
        "limits.max_header_bytes",
        "limits.max_body",
        "limits.min_body_rate",
        "route.max_body",
    ];
    if DURATIONS.contains(&generic.as_str()) {
        Some(Kind::Duration)
    } else if SIZES.contains(&generic.as_str()) {
        Some(Kind::Size)
    } else {
        None
    }
}

/// serde's name of an expected value, in words; None to keep serde's.
fn plain_expectation(expected: &str, kind: Option<Kind>) -> Option<String> {
    let range = |max: &str| format!("a whole number, at most {max}");
    Some(match expected {
        "a string" | "string" => match kind {
            Some(Kind::Duration) => "a duration such as \"30s\"".to_string(),
            Some(Kind::Size) => "a size such as \"64KiB\"".to_string(),
            None => "a string (in quotes)".to_string(),
        },
        "u8" => range("255"),
        "u16" => range("65535"),
        "u32" => range("4294967295"),
        "u64" | "usize" => "a whole number, 0 or more".to_string(),
        "i64" | "i32" => "a whole number".to_string(),
        "f64" | "f32" => "a number".to_string(),
        "a boolean" => "true or false".to_string(),
        "a sequence" => "a list such as [\"a\", \"b\"]".to_string(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_follow_tables_and_arrays_of_tables() {
        let text = "[runtime]\nworkers = 2\n[[pool]]\nname = \"p\"\n[pool.health_check]\ninterval = \"1s\"\n\
                    [[pool.server]]\naddress = \"a\"\n[[pool.server]]\nweight = \"3\"\nx = { y = 1 }\nl = [1, 2]\n";
        let at = |needle: &str| key_at(text, text.find(needle).expect("needle"));
        assert_eq!(at("2\n"), "runtime.workers");
        assert_eq!(at("workers"), "runtime.workers");
        assert_eq!(at("\"1s\""), "pool[0].health_check.interval");
        assert_eq!(at("\"a\""), "pool[0].server[0].address");
        assert_eq!(at("\"3\""), "pool[0].server[1].weight");
        assert_eq!(at("1 }"), "pool[0].server[1].x.y");
        assert_eq!(at("2]"), "pool[0].server[1].l[1]");
        assert_eq!(key_at("[[x]\n", 0), "");
    }

    #[test]
    fn suggestions_only_for_close_names() {
        let known = ", expected one of `connect`, `timeout`, `interval`";
        assert_eq!(
            unknown_field("timout", known),
            "unknown field `timout`, did you mean `timeout`?"
        );
        assert_eq!(
            unknown_field("intreval", known),
            "unknown field `intreval`, did you mean `interval`?"
        );
        assert!(unknown_field("bogus", known).contains("expected one of `connect`"));
        assert_eq!(distance("abc", "abc"), 0);
        assert_eq!(distance("ab", "ba"), 1);
        assert_eq!(distance("", "abc"), 3);
    }

    /// Each mistake, through the loader: file:line:column, key path, words.
    #[test]
    fn loader_names_key_and_kind_for_each_mistake() {
        const POOL: &str =
            "[[pool]]\nname = \"p\"\n[[pool.server]]\nname = \"a\"\naddress = \"127.0.0.1:9\"\n";
        let cases: Vec<(&str, String, &str)> = vec![
            (
                // Found by the config fuzz target (a file cut off after
                // `roles =`): the parser's own message is empty.
                "value cut off at the end of the file",
                format!("{POOL}[topology]\nroles ="),
                "t.toml:7:8: `roles` has no value",
            ),
            (
                "string weight",
                format!("{POOL}[[pool.server]]\nname = \"b\"\naddress = \"127.0.0.1:8\"\nweight = \"3\"\n"),
                "t.toml:9:10: pool[0].server[1].weight: invalid type: string \"3\", expected a whole number, at most 4294967295",
            ),
            (
                "integer duration",
                format!("[timeouts]\ndrain = 30\n{POOL}"),
                "t.toml:2:9: timeouts.drain: invalid type: integer `30`, expected a duration such as \"30s\"",
            ),
            (
                "integer duration in an array of tables",
                format!("{POOL}[pool.health_check]\ninterval = 5\n"),
                "t.toml:7:12: pool[0].health_check.interval: invalid type: integer `5`, expected a duration such as \"30s\"",
            ),
            (
                "integer size",
                format!("[limits]\nmax_body = 1024\n{POOL}"),
                "t.toml:2:12: limits.max_body: invalid type: integer `1024`, expected a size such as \"64KiB\"",
            ),
            (
                "negative count",
                "[runtime]\nworkers = -1\n".to_string(),
                "t.toml:2:11: runtime.workers: invalid value: integer `-1`, expected a whole number, at most 4294967295",
            ),
            (
                "string count",
                "[runtime]\nworkers = \"four\"\n".to_string(),
                "t.toml:2:11: runtime.workers: invalid type: string \"four\", expected a whole number",
            ),
            (
                "boolean",
                "[metrics]\nenabled = \"yes\"\n".to_string(),
                "metrics.enabled: invalid type: string \"yes\", expected true or false",
            ),
            (
                "misspelt key",
                format!("{POOL}[pool.health_check]\ntimout = \"1s\"\n"),
                "t.toml:7:1: pool[0].health_check: unknown field `timout`, did you mean `timeout`?",
            ),
            (
                "misspelt top-level table",
                "[timouts]\nconnect = \"1s\"\n".to_string(),
                "t.toml:1:2: unknown field `timouts`, did you mean `timeouts`?",
            ),
            (
                "unknown key, nothing close",
                format!("{POOL}zebra = 1\n"),
                "t.toml:6:1: pool[0].server[0]: unknown field `zebra`, expected one of `name`",
            ),
            (
                "interval under the default timeout",
                format!("{POOL}[pool.health_check]\ninterval = \"500ms\"\n"),
                "t.toml:7:12: pool[0].health_check.interval: the interval must be at least the timeout, which is 1s by default",
            ),
            (
                "timeout over the default interval",
                format!("{POOL}[pool.health_check]\ntimeout = \"5s\"\n"),
                "t.toml:7:11: pool[0].health_check.timeout: the timeout must be above zero and at most the interval, which is 2s by default",
            ),
            (
                "both written",
                format!("{POOL}[pool.health_check]\ninterval = \"1s\"\ntimeout = \"2s\"\n"),
                "t.toml:8:11: pool[0].health_check.timeout: the timeout must be above zero and at most the interval",
            ),
        ];
        for (what, text, want) in cases {
            let err = match crate::config::load_str(
                &text,
                "t.toml",
                std::path::Path::new("/tmp"),
                &crate::config::fake_env::FakeEnv::default(),
            ) {
                Ok(_) => panic!("{what}: accepted:\n{text}"),
                Err(e) => e.to_string(),
            };
            assert!(err.contains(want), "{what}:\n  got  {err}\n  want {want}");
        }
    }
}
