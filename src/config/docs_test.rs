//! `docs/config.md` states the defaults of [`super::defaults`]: every
//! default the docs give in a `| key | default | meaning |` table is in
//! [`DOCUMENTED`] with the same text, every entry of `DOCUMENTED` is in the
//! docs, and the text of each default is the value of its constant.

use std::collections::BTreeMap;

use super::defaults::{Value, DOCUMENTED};
use crate::units::{parse_duration, parse_size};

/// `(table.key, default cell)` for every row of the docs' default tables,
/// in order. The table is named by the heading above it (`## [[pool]]`,
/// `### [pool.health_check] (optional)`).
fn documented_defaults(md: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut section: Option<String> = None;
    let mut in_defaults = false;
    for line in md.lines() {
        if line.starts_with("## ") || line.starts_with("### ") {
            section = first_code_span(line).map(|t| t.trim_matches(['[', ']']).to_string());
            in_defaults = false;
            continue;
        }
        if !line.starts_with('|') {
            in_defaults = false;
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.get(1..4) == Some(&["key", "default", "meaning"][..]) {
            in_defaults = true;
            continue;
        }
        let (Some(table), true) = (&section, in_defaults) else {
            continue;
        };
        if cells.len() < 4 || cells[1].starts_with("---") {
            continue;
        }
        for key in code_spans(cells[1]) {
            out.push((format!("{table}.{key}"), cells[2].to_string()));
        }
    }
    out
}

fn code_spans(s: &str) -> Vec<&str> {
    s.split('`').skip(1).step_by(2).collect()
}

fn first_code_span(s: &str) -> Option<&str> {
    code_spans(s).first().copied()
}

/// Whether a default cell holds no default: the key must be written.
fn no_default(cell: &str) -> bool {
    cell == "required" || cell == "—"
}

/// Does the docs' text `doc` state `value`?
fn states(doc: &str, value: Value) -> Result<(), String> {
    if value == Value::Words {
        return Ok(());
    }
    let [inner] = code_spans(doc)[..] else {
        return Err(format!("`{doc}` is not one value in a code span"));
    };
    let parsed: toml::Table =
        toml::from_str(&format!("v = {inner}")).map_err(|e| format!("`{inner}` is not a TOML value: {e}"))?;
    let v = &parsed["v"];
    let ok = match (value, v) {
        (Value::Duration(d), toml::Value::String(s)) => parse_duration(s) == Ok(d),
        (Value::Size(n), toml::Value::String(s)) => parse_size(s) == Ok(n),
        (Value::Count(n), toml::Value::Integer(i)) => u64::try_from(*i) == Ok(n),
        (Value::Share(x), toml::Value::Float(f)) => *f == x,
        (Value::Flag(b), toml::Value::Boolean(c)) => *c == b,
        (Value::Text(t), toml::Value::String(s)) => s == t,
        (Value::List(l), toml::Value::Array(a)) => {
            a.len() == l.len() && a.iter().zip(l).all(|(x, y)| x.as_str() == Some(*y))
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("`{inner}` is not {value:?}"))
    }
}

#[test]
fn the_docs_state_the_defaults_of_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/config.md");
    let md = std::fs::read_to_string(path).expect("docs/config.md is readable");
    let docs = documented_defaults(&md);
    assert!(
        docs.len() > 50,
        "the docs' default tables were not found: {docs:?}"
    );
    let table: BTreeMap<&str, _> = DOCUMENTED.iter().map(|d| (d.key, d)).collect();
    assert_eq!(table.len(), DOCUMENTED.len(), "a key is twice in DOCUMENTED");
    let mut problems = Vec::new();
    for (key, cell) in &docs {
        match table.get(key.as_str()) {
            None if no_default(cell) => {}
            None => problems.push(format!(
                "{key}: the docs give the default {cell}, DOCUMENTED has none"
            )),
            Some(d) if d.doc != cell => {
                problems.push(format!("{key}: the docs say {cell}, DOCUMENTED says {}", d.doc))
            }
            Some(_) => {}
        }
    }
    for d in DOCUMENTED {
        if !docs.iter().any(|(k, _)| k == d.key) {
            problems.push(format!("{}: in DOCUMENTED, not in docs/config.md", d.key));
        }
        if let Err(e) = states(d.doc, d.value) {
            problems.push(format!("{}: {e}", d.key));
        }
    }
    assert!(
        problems.is_empty(),
        "docs/config.md and config::defaults:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_reader_finds_tables_under_their_heading() {
    let md = "## `[pool]`\n\n| key | default | meaning |\n|---|---|---|\n| `a` | `1` | x |\n\
              | `b`, `c` | none | y |\n\n| key | meaning |\n|---|---|\n| `d` | z |\n\
              ### `[pool.health_check]` (optional)\n\n| key | default | meaning |\n|---|---|---|\n\
              | `e` | `\"2s\"` | w |\n";
    let got = documented_defaults(md);
    let want = [
        ("pool.a", "`1`"),
        ("pool.b", "none"),
        ("pool.c", "none"),
        ("pool.health_check.e", "`\"2s\"`"),
    ];
    assert_eq!(got, want.map(|(k, v)| (k.to_string(), v.to_string())).to_vec());
    assert_eq!(
        states("`\"10m\"`", Value::Duration(std::time::Duration::from_secs(600))),
        Ok(())
    );
    assert!(states("`\"1m\"`", Value::Duration(std::time::Duration::from_secs(600))).is_err());
    assert!(
        states("`256`", Value::Size(256)).is_err(),
        "a size is written as a string"
    );
}
