//! The ModSecurity rule language as files hold it: logical lines (a `\` at
//! the end of a line continues it), directives and their arguments, and a
//! rule's variables, operator and actions. Anything rampart does not run
//! is refused here, naming the file, line and directive.

use std::path::{Path, PathBuf};

use super::model::{
    Action, Ctl, Disruptive, EngineMode, Operator, OperatorKind, Rule, SetVar, Target, Transform,
};
use super::WafError;

/// One logical line: where it starts and its text.
struct Line {
    number: usize,
    text: String,
}

fn logical_lines(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut current: Option<Line> = None;
    for (i, raw) in text.lines().enumerate() {
        let continued = raw.trim_end().ends_with('\\');
        let piece = if continued {
            raw.trim_end().trim_end_matches('\\')
        } else {
            raw
        };
        match &mut current {
            Some(l) => l.text.push_str(piece.trim_start()),
            None => {
                let t = piece.trim_start();
                if !continued && (t.is_empty() || t.starts_with('#')) {
                    continue;
                }
                current = Some(Line {
                    number: i + 1,
                    text: t.to_string(),
                });
            }
        }
        if !continued {
            if let Some(l) = current.take() {
                if !l.text.trim().is_empty() {
                    out.push(l);
                }
            }
        }
    }
    out.extend(current);
    out
}

/// Splits a directive's arguments: words, or double-quoted strings where
/// `\"` is a quote (other backslashes are kept, as regexes need them).
fn arguments(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&c) = chars.peek() else { break };
        let mut arg = String::new();
        if c == '"' {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' if chars.peek() == Some(&'"') => {
                        arg.push('"');
                        chars.next();
                    }
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => arg.push(c),
                }
            }
            if !closed {
                return Err("a quoted argument is not closed".into());
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                arg.push(c);
                chars.next();
            }
        }
        out.push(arg);
    }
    Ok(out)
}

/// What a file holds, in order.
pub(super) enum Item {
    Rule(Box<Rule>),
    Marker(String),
    DefaultAction(Vec<Action>),
    RemoveById(Vec<(u64, u64)>),
    RemoveByTag(String),
}

/// Parses `path` (and the files it includes) into `out`.
pub(super) fn parse_file(path: &Path, out: &mut Vec<Item>, depth: usize) -> Result<(), WafError> {
    let text = std::fs::read_to_string(path).map_err(|e| WafError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    for line in logical_lines(&text) {
        let err = |directive: &str, message: String| WafError::At {
            path: path.display().to_string(),
            line: line.number,
            directive: directive.to_string(),
            message,
        };
        let args = arguments(&line.text).map_err(|m| err("", m))?;
        let Some(directive) = args.first() else { continue };
        let rest = &args[1..];
        match directive.as_str() {
            "SecRule" => {
                let [vars, op, actions @ ..] = rest else {
                    return Err(err(directive, "SecRule needs variables and an operator".into()));
                };
                let actions = match actions {
                    [] => "",
                    [a] => a.as_str(),
                    _ => return Err(err(directive, "more than one action list".into())),
                };
                let rule = rule(Some((vars, op)), actions, &dir).map_err(|m| err(directive, m))?;
                out.push(Item::Rule(Box::new(rule)));
            }
            "SecAction" => {
                let [actions] = rest else {
                    return Err(err(directive, "SecAction takes one action list".into()));
                };
                let rule = rule(None, actions, &dir).map_err(|m| err(directive, m))?;
                out.push(Item::Rule(Box::new(rule)));
            }
            "SecMarker" => {
                let [name] = rest else {
                    return Err(err(directive, "SecMarker takes one name".into()));
                };
                out.push(Item::Marker(name.clone()));
            }
            "SecDefaultAction" => {
                let [actions] = rest else {
                    return Err(err(directive, "SecDefaultAction takes one action list".into()));
                };
                let list = split_actions(actions)
                    .iter()
                    .map(|a| action(a, &dir))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|m| err(directive, m))?;
                out.push(Item::DefaultAction(list));
            }
            "SecRuleRemoveById" => {
                let ranges = rest
                    .iter()
                    .map(|r| id_range(r))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| err(directive, "ids are numbers or ranges (900000-900999)".into()))?;
                out.push(Item::RemoveById(ranges));
            }
            "SecRuleRemoveByTag" => {
                let [tag] = rest else {
                    return Err(err(directive, "SecRuleRemoveByTag takes one tag".into()));
                };
                out.push(Item::RemoveByTag(tag.clone()));
            }
            // Informational: the rule set's name and version.
            "SecComponentSignature" => {}
            "Include" => {
                let [pattern] = rest else {
                    return Err(err(directive, "Include takes one path".into()));
                };
                if depth > 8 {
                    return Err(err(directive, "Include nested more than 8 deep".into()));
                }
                let files = expand(&dir, pattern).map_err(|m| err(directive, m))?;
                for f in files {
                    parse_file(&f, out, depth + 1)?;
                }
            }
            other => {
                return Err(err(
                    other,
                    "not a directive rampart's WAF runs (SecRule, SecAction, SecMarker, SecDefaultAction, SecRuleRemoveById, SecRuleRemoveByTag, SecComponentSignature, Include)".into(),
                ))
            }
        }
    }
    Ok(())
}

/// `pattern` (relative to `dir`; `*` in its file name) as files, sorted.
pub(super) fn expand(dir: &Path, pattern: &str) -> Result<Vec<PathBuf>, String> {
    let full = if Path::new(pattern).is_absolute() {
        PathBuf::from(pattern)
    } else {
        dir.join(pattern)
    };
    let name = full
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains('*') {
        return Ok(vec![full]);
    }
    let parent = full.parent().unwrap_or(Path::new("."));
    let (before, after) = name.split_once('*').unwrap_or((&name, ""));
    let mut files: Vec<PathBuf> = std::fs::read_dir(parent)
        .map_err(|e| format!("{}: {e}", parent.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .is_some_and(|n| {
                    n.starts_with(before) && n.ends_with(after) && n.len() >= before.len() + after.len()
                })
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no file matches {}", full.display()));
    }
    Ok(files)
}

fn id_range(s: &str) -> Option<(u64, u64)> {
    match s.split_once('-') {
        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
        None => s.parse().ok().map(|n| (n, n)),
    }
}

/// A rule from its variables and operator (None: `SecAction`) and actions.
fn rule(matcher: Option<(&String, &String)>, actions: &str, dir: &Path) -> Result<Rule, String> {
    let mut r = Rule::default();
    if let Some((vars, op)) = matcher {
        r.targets = targets(vars)?;
        r.operator = operator(op, dir)?;
    } else {
        r.operator = Operator {
            kind: OperatorKind::Unconditional,
            negated: false,
        };
    }
    for a in split_actions(actions) {
        match action(&a, dir)? {
            Action::Id(id) => r.id = id,
            Action::Phase(p) => r.phase = p,
            Action::Msg(m) => r.msg = m,
            Action::LogData(m) => r.logdata = m,
            Action::Tag(t) => r.tags.push(t),
            Action::Transform(Transform::None) => r.transforms.clear(),
            Action::Transform(t) => r.transforms.push(t),
            Action::Chain => r.chain = true,
            Action::Capture => r.capture = true,
            Action::MultiMatch => r.multi_match = true,
            Action::Disruptive(d) => r.disruptive = Some(d),
            Action::Status(s) => r.status = Some(s),
            Action::SetVar(s) => r.setvars.push(s),
            Action::SkipAfter(m) => r.skip_after = Some(m),
            Action::Ctl(c) => r.ctls.push(c),
            Action::Severity(s) => r.severity = Some(s),
            Action::Ignored => {}
        }
    }
    Ok(r)
}

/// Splits an action list at commas outside single quotes.
fn split_actions(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                cur.push(c);
                escaped = true;
            }
            '\'' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_string());
                }
                cur.clear();
            }
            c => cur.push(c),
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    let inner = v
        .strip_prefix('\'')
        .and_then(|x| x.strip_suffix('\''))
        .unwrap_or(v);
    inner.replace("\\'", "'")
}

fn action(a: &str, _dir: &Path) -> Result<Action, String> {
    let (name, value) = match a.split_once(':') {
        Some((n, v)) => (n.trim(), Some(unquote(v))),
        None => (a.trim(), None),
    };
    let need = |v: Option<String>| v.ok_or_else(|| format!("action `{name}` needs a value"));
    Ok(match name {
        "id" => Action::Id(
            need(value)?
                .parse()
                .map_err(|_| "action `id` takes a number".to_string())?,
        ),
        "phase" => Action::Phase(match need(value)?.as_str() {
            "1" | "request" => 1,
            "2" => 2,
            p => {
                return Err(format!(
                    "phase {p}: rampart's WAF inspects requests (phases 1 and 2), not responses"
                ))
            }
        }),
        "msg" => Action::Msg(need(value)?),
        "logdata" => Action::LogData(need(value)?),
        "tag" => Action::Tag(need(value)?),
        "severity" => Action::Severity(need(value)?),
        "t" => Action::Transform(transform(&need(value)?)?),
        "chain" => Action::Chain,
        "capture" => Action::Capture,
        "multiMatch" => Action::MultiMatch,
        "block" => Action::Disruptive(Disruptive::Block),
        "deny" => Action::Disruptive(Disruptive::Deny),
        "pass" => Action::Disruptive(Disruptive::Pass),
        "status" => Action::Status(
            need(value)?
                .parse()
                .map_err(|_| "action `status` takes an HTTP status".to_string())?,
        ),
        "setvar" => Action::SetVar(setvar(&need(value)?)?),
        "skipAfter" => Action::SkipAfter(need(value)?),
        "ctl" => match ctl(&need(value)?)? {
            Some(c) => Action::Ctl(c),
            None => Action::Ignored,
        },
        // What only logging and reports read.
        "log" | "nolog" | "auditlog" | "noauditlog" | "ver" | "rev" | "maturity" | "accuracy" => {
            Action::Ignored
        }
        other => return Err(format!("action `{other}` is not supported by rampart's WAF yet")),
    })
}

/// A `ctl:` action; None for the audit log's settings (rampart keeps no
/// ModSecurity audit log: its log lines carry the matched rules).
fn ctl(v: &str) -> Result<Option<Ctl>, String> {
    let (what, arg) = v
        .split_once('=')
        .ok_or_else(|| format!("ctl:{v}: write ctl:NAME=VALUE"))?;
    let ids =
        |s: &str| id_range(s.trim()).ok_or_else(|| format!("ctl:{what}: `{s}` is not a rule id or range"));
    let target = |s: &str| -> Result<Target, String> {
        let mut t = targets(s.trim())?;
        match (t.pop(), t.is_empty()) {
            (Some(t), true) => Ok(t),
            _ => Err(format!("ctl:{what}: name one variable")),
        }
    };
    Ok(Some(match what {
        "ruleRemoveById" => {
            let (a, b) = ids(arg)?;
            Ctl::RemoveById(a, b)
        }
        "ruleRemoveByTag" => Ctl::RemoveByTag(arg.to_string()),
        "ruleRemoveTargetById" => {
            let (id, var) = arg
                .split_once(';')
                .ok_or_else(|| format!("ctl:{what}={arg}: write ID;VARIABLE"))?;
            let (a, b) = ids(id)?;
            Ctl::RemoveTargetById(a, b, target(var)?)
        }
        "ruleRemoveTargetByTag" => {
            let (tag, var) = arg
                .split_once(';')
                .ok_or_else(|| format!("ctl:{what}={arg}: write TAG;VARIABLE"))?;
            Ctl::RemoveTargetByTag(tag.to_string(), target(var)?)
        }
        "ruleEngine" => Ctl::Engine(match arg {
            "On" => EngineMode::On,
            "Off" => EngineMode::Off,
            "DetectionOnly" => EngineMode::DetectionOnly,
            other => return Err(format!("ctl:ruleEngine={other}: use On, Off or DetectionOnly")),
        }),
        "auditEngine" | "auditLogParts" => return Ok(None),
        other => return Err(format!("ctl:{other} is not supported by rampart's WAF yet")),
    }))
}

fn setvar(v: &str) -> Result<SetVar, String> {
    if let Some(name) = v.strip_prefix('!') {
        return Ok(SetVar::Delete(tx_name(name)?));
    }
    let (name, value) = v.split_once('=').unwrap_or((v, "1"));
    let name = tx_name(name)?;
    Ok(if let Some(n) = value.strip_prefix('+') {
        SetVar::Add(name, n.to_string())
    } else if let Some(n) = value.strip_prefix('-') {
        SetVar::Sub(name, n.to_string())
    } else {
        SetVar::Set(name, value.to_string())
    })
}

/// `tx.NAME` (case-insensitive collection), lower-cased.
fn tx_name(n: &str) -> Result<String, String> {
    let n = n.trim();
    match n.split_once('.') {
        Some((c, v)) if c.eq_ignore_ascii_case("tx") => Ok(v.to_ascii_lowercase()),
        _ => Err(format!("setvar `{n}`: only the TX collection is supported")),
    }
}

fn transform(t: &str) -> Result<Transform, String> {
    Ok(match t {
        "none" => Transform::None,
        "lowercase" => Transform::Lowercase,
        "uppercase" => Transform::Uppercase,
        "urlDecode" => Transform::UrlDecode,
        "urlDecodeUni" => Transform::UrlDecodeUni,
        "removeNulls" => Transform::RemoveNulls,
        "replaceNulls" => Transform::ReplaceNulls,
        "removeWhitespace" => Transform::RemoveWhitespace,
        "compressWhitespace" => Transform::CompressWhitespace,
        "trim" => Transform::Trim,
        "trimLeft" => Transform::TrimLeft,
        "trimRight" => Transform::TrimRight,
        "length" => Transform::Length,
        "htmlEntityDecode" => Transform::HtmlEntityDecode,
        "normalisePath" | "normalizePath" => Transform::NormalisePath,
        "normalisePathWin" | "normalizePathWin" => Transform::NormalisePathWin,
        "hexDecode" => Transform::HexDecode,
        "hexEncode" => Transform::HexEncode,
        "base64Decode" => Transform::Base64Decode,
        "utf8toUnicode" => Transform::Utf8ToUnicode,
        "jsDecode" => Transform::JsDecode,
        "cssDecode" => Transform::CssDecode,
        "cmdLine" => Transform::CmdLine,
        "replaceComments" => Transform::ReplaceComments,
        "sha1" => Transform::Sha1,
        other => {
            return Err(format!(
                "transformation `{other}` is not supported by rampart's WAF yet"
            ))
        }
    })
}

fn targets(s: &str) -> Result<Vec<Target>, String> {
    let mut out = Vec::new();
    for part in s.split('|') {
        let mut p = part.trim();
        let mut t = Target::default();
        if let Some(rest) = p.strip_prefix('!') {
            t.exclude = true;
            p = rest;
        }
        if let Some(rest) = p.strip_prefix('&') {
            t.count = true;
            p = rest;
        }
        let (name, selector) = match p.split_once(':') {
            Some((n, sel)) => (n, Some(sel.trim_matches('\''))),
            None => (p, None),
        };
        t.collection = super::model::Collection::parse(name)
            .ok_or_else(|| format!("variable `{name}` is not supported by rampart's WAF yet"))?;
        if let Some(sel) = selector {
            t.selector = Some(match sel.strip_prefix('/').and_then(|x| x.strip_suffix('/')) {
                Some(re) => super::model::Selector::Regex(
                    regex::Regex::new(&format!("(?i){re}")).map_err(|e| format!("variable `{p}`: {e}"))?,
                ),
                None => super::model::Selector::Name(sel.to_ascii_lowercase()),
            });
        }
        out.push(t);
    }
    Ok(out)
}

fn operator(s: &str, dir: &Path) -> Result<Operator, String> {
    let (negated, s) = match s.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (name, param) = match s.strip_prefix('@') {
        Some(rest) => match rest.split_once(' ') {
            Some((n, p)) => (n, p.to_string()),
            None => (rest, String::new()),
        },
        None => ("rx", s.to_string()),
    };
    let kind = super::ops::compile(name, &param, dir)?;
    Ok(Operator { kind, negated })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_continue_and_arguments_keep_regex_backslashes() {
        let lines =
            logical_lines("# c\nSecRule ARGS \\\n  \"@rx a\\\"b\\d\" \\\n  \"id:1\"\n\nSecMarker END\n");
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].number, 2);
        let args = arguments(&lines[0].text).expect("args");
        assert_eq!(args, vec!["SecRule", "ARGS", "@rx a\"b\\d", "id:1"]);
        assert_eq!(
            split_actions("id:1,msg:'a, b',t:none"),
            vec!["id:1", "msg:'a, b'", "t:none"]
        );
    }
}
