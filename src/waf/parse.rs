//! The ModSecurity rule language as files hold it: logical lines (a `\` at
//! the end of a line continues it), directives and their arguments, and a
//! rule's variables, operator and actions. Anything rampart does not run
//! is refused here, naming the file, line and directive.

use std::path::{Path, PathBuf};

use super::model::{
    Action, BodyProcessor, Ctl, Disruptive, EngineMode, Operator, OperatorKind, Rule, SetVar, Store, Target,
    Transform, VarName,
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
                current = Some(Line {
                    number: i + 1,
                    text: piece.trim_start().to_string(),
                });
            }
        }
        if !continued {
            if let Some(l) = current.take() {
                // A comment continues with `\` too, as Apache reads it.
                let t = l.text.trim();
                if !t.is_empty() && !t.starts_with('#') {
                    out.push(l);
                }
            }
        }
    }
    out.extend(current.filter(|l| !l.text.trim().is_empty() && !l.text.trim().starts_with('#')));
    out
}

/// Splits a directive's arguments as Apache reads them: words, or
/// double-quoted strings; in both, `\\` is one backslash and (in quotes)
/// `\"` a quote, other backslashes are kept (so a rule's `[\\/]` is the
/// class `[\/]`, a slash, exactly as ModSecurity sees it).
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
                    '\\' if matches!(chars.peek(), Some('"' | '\\')) => {
                        if let Some(n) = chars.next() {
                            arg.push(n);
                        }
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
                chars.next();
                if c == '\\' && chars.peek() == Some(&'\\') {
                    chars.next();
                }
                arg.push(c);
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
    RemoveByMsg(String),
    /// `SecRuleUpdateTargetById`: variables added to (or, with `!`, taken
    /// out of) the rules with these ids.
    UpdateTargetById(Vec<(u64, u64)>, Vec<Target>),
    UpdateTargetByTag(String, Vec<Target>),
    Engine(EngineMode),
    BodyAccess(bool),
    /// A setting that has no effect in rampart, with why (reported when
    /// the rules are loaded).
    Note(String),
}

/// Parses `path` (and the files it includes) into `out`.
pub(super) fn parse_file(path: &Path, out: &mut Vec<Item>, depth: usize) -> Result<(), WafError> {
    let text = std::fs::read_to_string(path).map_err(|e| WafError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    parse_text(&text, path, out, depth)
}

/// Parses rule text that `path` held (files it names are found beside it).
pub(super) fn parse_text(text: &str, path: &Path, out: &mut Vec<Item>, depth: usize) -> Result<(), WafError> {
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    for line in logical_lines(text) {
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
            "SecRuleRemoveByMsg" => {
                let [msg] = rest else {
                    return Err(err(directive, "SecRuleRemoveByMsg takes one message".into()));
                };
                out.push(Item::RemoveByMsg(msg.clone()));
            }
            "SecRuleUpdateTargetById" | "SecRuleUpdateTargetByTag" => {
                let [which, vars, replaced @ ..] = rest else {
                    return Err(err(directive, format!("{directive} takes a rule and variables")));
                };
                if !replaced.is_empty() {
                    return Err(err(
                        directive,
                        "replacing a variable is not supported: add or exclude (`!VAR:name`) instead".into(),
                    ));
                }
                let vars = targets(vars).map_err(|m| err(directive, m))?;
                if directive == "SecRuleUpdateTargetById" {
                    let ranges = which
                        .split(',')
                        .map(|r| id_range(r.trim()))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| err(directive, "ids are numbers or ranges (942100-942999)".into()))?;
                    out.push(Item::UpdateTargetById(ranges, vars));
                } else {
                    out.push(Item::UpdateTargetByTag(which.clone(), vars));
                }
            }
            "SecRuleEngine" => {
                let mode = match rest {
                    [m] if m == "On" => EngineMode::On,
                    [m] if m == "Off" => EngineMode::Off,
                    [m] if m == "DetectionOnly" => EngineMode::DetectionOnly,
                    _ => return Err(err(directive, "use On, Off or DetectionOnly".into())),
                };
                out.push(Item::Engine(mode));
            }
            "SecRequestBodyAccess" => {
                let on = match rest {
                    [m] if m == "On" => true,
                    [m] if m == "Off" => false,
                    _ => return Err(err(directive, "use On or Off".into())),
                };
                out.push(Item::BodyAccess(on));
            }
            "SecRequestBodyLimit" | "SecRequestBodyNoFilesLimit" | "SecRequestBodyLimitAction"
            | "SecRequestBodyInMemoryLimit" => {
                return Err(err(
                    directive,
                    "set the body inspection limit in rampart's config: [waf] body_limit and body_limit_action".into(),
                ))
            }
            // IP and GLOBAL hold for one request in rampart: nothing expires.
            "SecCollectionTimeout" => out.push(Item::Note(format!(
                "{}:{}: SecCollectionTimeout has no effect: IP and GLOBAL collections hold for one request",
                path.display(),
                line.number
            ))),
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
                    "not a directive rampart's WAF runs (SecRule, SecAction, SecMarker, SecDefaultAction, SecRuleRemoveById/ByTag/ByMsg, SecRuleUpdateTargetById/ByTag, SecRuleEngine, SecRequestBodyAccess, SecCollectionTimeout, SecComponentSignature, Include)".into(),
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
            Action::NoLog(n) => r.nolog = n,
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
            "1" => 1,
            "2" | "request" => 2,
            "3" => 3,
            "4" | "response" => 4,
            "5" | "logging" => 5,
            p => return Err(format!("phase {p}: phases are 1 to 5")),
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
        // Closing the connection is a denial as far as the request goes.
        "drop" => Action::Disruptive(Disruptive::Deny),
        "allow" => match value.as_deref() {
            None | Some("request") | Some("phase") => Action::Disruptive(Disruptive::Allow),
            Some(v) => return Err(format!("allow:{v}: use allow, allow:phase or allow:request")),
        },
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
        "log" => Action::NoLog(false),
        "nolog" => Action::NoLog(true),
        "auditlog" | "noauditlog" | "ver" | "rev" | "maturity" | "accuracy" => Action::Ignored,
        // Collections hold for one request in rampart: opening one is
        // implicit, and nothing outlives the request to expire.
        "initcol" => {
            let v = need(value)?;
            let (coll, _) = v
                .split_once('=')
                .ok_or_else(|| format!("initcol:{v}: write initcol:COLLECTION=KEY"))?;
            match Store::parse(coll.trim()) {
                Some(Store::Ip | Store::Global) => Action::Ignored,
                _ => {
                    return Err(format!(
                        "initcol:{v}: rampart keeps IP and GLOBAL collections only"
                    ))
                }
            }
        }
        "expirevar" => {
            var_name(need(value)?.split('=').next().unwrap_or_default())?;
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
        "requestBodyProcessor" => Ctl::BodyProcessor(BodyProcessor::parse(arg).ok_or_else(|| {
            format!("ctl:requestBodyProcessor={arg}: use URLENCODED, MULTIPART, JSON or XML")
        })?),
        "requestBodyAccess" | "forceRequestBodyVariable" => {
            let on = match arg {
                "On" | "on" => true,
                "Off" | "off" => false,
                other => return Err(format!("ctl:{what}={other}: use On or Off")),
            };
            if what == "requestBodyAccess" {
                Ctl::BodyAccess(on)
            } else {
                Ctl::ForceBodyVariable(on)
            }
        }
        "auditEngine" | "auditLogParts" => return Ok(None),
        other => return Err(format!("ctl:{other} is not supported by rampart's WAF yet")),
    }))
}

/// One exclusion as rampart's config writes it (see `Exclusions`).
pub(super) fn exclusion(e: &str) -> Result<Ctl, String> {
    let mut parts = e.split_whitespace();
    let which = parts
        .next()
        .ok_or("an exclusion names a rule id, a range or tag:TAG")?;
    let var = parts.next();
    if parts.next().is_some() {
        return Err("write RULE or RULE VARIABLE (one variable)".into());
    }
    let target = match var {
        None => None,
        Some(v) => {
            let mut t = targets(v)?;
            match (t.pop(), t.is_empty()) {
                (Some(t), true) if !t.exclude && !t.count => Some(t),
                _ => return Err("name one variable (`ARGS:password`)".into()),
            }
        }
    };
    if let Some(tag) = which.strip_prefix("tag:") {
        return Ok(match target {
            None => Ctl::RemoveByTag(tag.to_string()),
            Some(t) => Ctl::RemoveTargetByTag(tag.to_string(), t),
        });
    }
    let (a, b) = id_range(which).ok_or("a rule id (942100), a range (942100-942199) or tag:TAG")?;
    Ok(match target {
        None => Ctl::RemoveById(a, b),
        Some(t) => Ctl::RemoveTargetById(a, b, t),
    })
}

fn setvar(v: &str) -> Result<SetVar, String> {
    if let Some(name) = v.strip_prefix('!') {
        return Ok(SetVar::Delete(var_name(name)?));
    }
    let (name, value) = v.split_once('=').unwrap_or((v, "1"));
    let name = var_name(name)?;
    Ok(if let Some(n) = value.strip_prefix('+') {
        SetVar::Add(name, n.to_string())
    } else if let Some(n) = value.strip_prefix('-') {
        SetVar::Sub(name, n.to_string())
    } else {
        SetVar::Set(name, value.to_string())
    })
}

/// `tx.NAME`, `ip.NAME`, `global.NAME` (collections without case).
fn var_name(n: &str) -> Result<VarName, String> {
    let n = n.trim();
    match n.split_once('.') {
        Some((c, v)) => match Store::parse(c) {
            Some(store) => Ok(VarName {
                store,
                name: v.to_string(),
            }),
            None => Err(format!(
                "setvar `{n}`: rampart keeps the TX, IP and GLOBAL collections"
            )),
        },
        None => Err(format!("setvar `{n}`: write COLLECTION.NAME")),
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
        "base64DecodeExt" => Transform::Base64Decode,
        other => {
            return Err(format!(
                "transformation `{other}` is not supported by rampart's WAF yet"
            ))
        }
    })
}

/// Splits a variable list at `|`, except inside a `/regex/` selector.
fn split_targets(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let (mut start, mut i, mut in_re) = (0, 0, false);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_re => i += 1,
            b'/' if in_re => {
                // A regex ends at a `/` followed by `|`, a quote or the end.
                if matches!(bytes.get(i + 1), None | Some(b'|') | Some(b'\'')) {
                    in_re = false;
                }
            }
            // `XML:/*` and `XML://@*` are XPath, not regexes.
            b'/' if i > 0
                && matches!(bytes[i - 1], b':' | b'\'')
                && !matches!(bytes.get(i + 1), Some(b'*' | b'/')) =>
            {
                in_re = true
            }
            b'|' if !in_re => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&s[start..]);
    out
}

fn targets(s: &str) -> Result<Vec<Target>, String> {
    let mut out = Vec::new();
    for part in split_targets(s) {
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
        let lines = logical_lines(
            "# c\nSecRule ARGS \\\n  \"@rx a\\\"b\\d\" \\\n  \"id:1\"\n\n#SecAction \\\n#  \"id:2\"\nSecMarker END\n",
        );
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].number, 2);
        let args = arguments(&lines[0].text).expect("args");
        assert_eq!(args, vec!["SecRule", "ARGS", "@rx a\"b\\d", "id:1"]);
        // Apache's reading: `\\` is one backslash, in quotes or not.
        assert_eq!(
            arguments(r#"SecRule A\\B "@rx [\\/]\.\\\\x""#).expect("args"),
            vec!["SecRule", r"A\B", r"@rx [\/]\.\\x"]
        );
        assert_eq!(
            split_actions("id:1,msg:'a, b',t:none"),
            vec!["id:1", "msg:'a, b'", "t:none"]
        );
        assert_eq!(
            split_targets("ARGS|!REQUEST_COOKIES:/^(?:a|b)$/|XML:/*|TX:x"),
            vec!["ARGS", "!REQUEST_COOKIES:/^(?:a|b)$/", "XML:/*", "TX:x"]
        );
    }
}
