//! Runs a rule set over one request: phase 1 (the head), then phase 2
//! (the arguments), rules in order, chains, `skipAfter` to a marker,
//! `setvar` with macros, and the first disruptive `deny` ends it.

use std::collections::HashMap;

use super::model::{Collection, Ctl, Disruptive, EngineMode, Rule, Selector, SetVar, Target};
use super::ops;
use super::RuleSet;

/// What the WAF reads of a request.
#[derive(Debug)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The request target as sent (path and query).
    pub uri: &'a str,
    /// `HTTP/1.1`, `HTTP/2.0`.
    pub protocol: &'a str,
    pub headers: Vec<(&'a [u8], &'a [u8])>,
    pub remote_addr: String,
    pub unique_id: &'a str,
}

/// A rule that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub id: u64,
    pub msg: String,
    /// The status a `deny` answers with.
    pub status: u16,
}

/// What the rules decided.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The rule that denied the request, if one did.
    pub deny: Option<Hit>,
    /// Every rule with a message that matched, in order.
    pub matched: Vec<Hit>,
    /// `tx.anomaly_score` at the end (CRS's inbound score).
    pub anomaly_score: i64,
    /// A rule said `ctl:ruleEngine=DetectionOnly`: log, do not deny.
    pub detection_only: bool,
}

/// One value of a variable: its full name (`ARGS:q`) and bytes.
type Value = (String, Vec<u8>);

struct Tx<'r> {
    req: &'r Request<'r>,
    args: Vec<(String, String)>,
    cookies: Vec<(String, String)>,
    vars: HashMap<String, String>,
    matched_var: Vec<u8>,
    matched_var_name: String,
    matched_vars: Vec<Value>,
    /// What matched rules' `ctl:` actions changed for this request.
    ctls: Vec<Ctl>,
}

impl Tx<'_> {
    /// Whether a `ctl:` switched `rule` off for this request.
    fn removed(&self, rule: &Rule) -> bool {
        self.ctls.iter().any(|c| match c {
            Ctl::RemoveById(a, b) => (*a..=*b).contains(&rule.id),
            Ctl::RemoveByTag(t) => rule.tags.contains(t),
            _ => false,
        })
    }

    /// The variables a `ctl:` took out of `rule` for this request.
    fn removed_targets<'c>(&'c self, rule: &'c Rule) -> impl Iterator<Item = &'c Target> + 'c {
        self.ctls.iter().filter_map(move |c| match c {
            Ctl::RemoveTargetById(a, b, t) if (*a..=*b).contains(&rule.id) => Some(t),
            Ctl::RemoveTargetByTag(tag, t) if rule.tags.contains(tag) => Some(t),
            _ => None,
        })
    }
}

impl RuleSet {
    /// The rules' verdict on `req`, with `tx.paranoia_level` set to the
    /// configured level first.
    pub fn inspect(&self, req: &Request<'_>) -> Outcome {
        let query = req.uri.split_once('?').map_or("", |(_, q)| q);
        let mut tx = Tx {
            req,
            args: parse_pairs(query, '&'),
            cookies: req
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(b"cookie"))
                .flat_map(|(_, v)| parse_cookies(&String::from_utf8_lossy(v)))
                .collect(),
            vars: HashMap::new(),
            matched_var: Vec::new(),
            matched_var_name: String::new(),
            matched_vars: Vec::new(),
            ctls: Vec::new(),
        };
        tx.vars.insert("paranoia_level".into(), self.paranoia.to_string());
        let mut out = Outcome::default();
        'phases: for phase in [1u8, 2] {
            let mut i = 0;
            while i < self.rules.len() {
                let rule = &self.rules[i];
                i += 1;
                if rule.phase != phase || rule.removed || tx.removed(rule) {
                    continue;
                }
                if !self.run_chain(rule, &mut tx) {
                    continue;
                }
                match tx.ctls.iter().rev().find_map(|c| match c {
                    Ctl::Engine(m) => Some(*m),
                    _ => None,
                }) {
                    Some(EngineMode::Off) => break 'phases,
                    Some(EngineMode::DetectionOnly) => out.detection_only = true,
                    _ => {}
                }
                if !rule.msg.is_empty() {
                    out.matched.push(hit(rule, &tx));
                }
                let disruptive = match rule.disruptive {
                    Some(Disruptive::Block) | None => self.default_disruptive,
                    Some(d) => d,
                };
                if disruptive == Disruptive::Deny {
                    out.deny = Some(hit(rule, &tx));
                    break 'phases;
                }
                if let Some(marker) = &rule.skip_after {
                    if let Some(&at) = self.markers.get(marker) {
                        i = i.max(at);
                    }
                }
            }
        }
        out.anomaly_score = tx
            .vars
            .get("anomaly_score")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        out
    }

    /// A rule and its chained links: all must match; then the actions of
    /// every link run.
    fn run_chain(&self, rule: &Rule, tx: &mut Tx<'_>) -> bool {
        if !matches(rule, tx) {
            return false;
        }
        for link in &rule.chained {
            if !matches(link, tx) {
                return false;
            }
        }
        for r in std::iter::once(rule).chain(rule.chained.iter()) {
            for s in &r.setvars {
                setvar(s, r, tx);
            }
            tx.ctls.extend(r.ctls.iter().cloned());
        }
        true
    }
}

fn hit(rule: &Rule, tx: &Tx<'_>) -> Hit {
    Hit {
        id: rule.id,
        msg: expand(&rule.msg, rule, tx),
        status: rule.status.unwrap_or(403),
    }
}

/// Whether one rule's operator matches any of its values (or, negated,
/// fails on one); records MATCHED_VAR(S) and captures.
fn matches(rule: &Rule, tx: &mut Tx<'_>) -> bool {
    let values = if rule.targets.is_empty() {
        vec![(String::new(), Vec::new())]
    } else {
        let mut v = values_of(&rule.targets, tx);
        for t in tx.removed_targets(rule) {
            v.retain(|(full, _)| {
                let (coll, name) = full.split_once(':').unwrap_or((full, ""));
                !(coll == t.collection.name() && select(t, name))
            });
        }
        v
    };
    let mut matched = false;
    let mut found = Vec::new();
    for (name, raw) in values {
        let v = rule.transforms.iter().fold(raw, |v, t| ops::transform(*t, v));
        let got = ops::test(&rule.operator.kind, &v, &|p| expand(p, rule, tx));
        let hit = got.is_some() != rule.operator.negated;
        if hit {
            matched = true;
            if rule.capture {
                if let Some(c) = &got {
                    tx.vars
                        .insert("0".into(), String::from_utf8_lossy(c).into_owned());
                }
            }
            found.push((name, v));
        }
    }
    if matched {
        if let Some((n, v)) = found.last() {
            tx.matched_var = v.clone();
            tx.matched_var_name = n.clone();
        }
        tx.matched_vars = found;
    }
    matched
}

fn values_of(targets: &[Target], tx: &Tx<'_>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut counts: Vec<Value> = Vec::new();
    for t in targets.iter().filter(|t| !t.exclude) {
        let all = collection(t.collection, tx);
        let picked: Vec<Value> = all
            .into_iter()
            .filter(|(name, _)| select(t, name))
            .map(|(name, v)| {
                let full = if name.is_empty() {
                    t.collection.name().to_string()
                } else {
                    format!("{}:{name}", t.collection.name())
                };
                (full, v)
            })
            .collect();
        if t.count {
            counts.push((
                format!("&{}", t.collection.name()),
                picked.len().to_string().into_bytes(),
            ));
        } else {
            out.extend(picked);
        }
    }
    for t in targets.iter().filter(|t| t.exclude) {
        out.retain(|(full, _)| {
            let Some((coll, name)) = full.split_once(':') else {
                return true;
            };
            !(coll == t.collection.name() && select(t, name))
        });
    }
    out.extend(counts);
    out
}

fn select(t: &Target, name: &str) -> bool {
    match &t.selector {
        None => true,
        Some(Selector::Name(n)) => name.eq_ignore_ascii_case(n),
        Some(Selector::Regex(re)) => re.is_match(name),
    }
}

/// A collection's members: (member name, value); scalars have no name.
fn collection(c: Collection, tx: &Tx<'_>) -> Vec<(String, Vec<u8>)> {
    let req = tx.req;
    let scalar = |v: &[u8]| vec![(String::new(), v.to_vec())];
    let (path, query) = req.uri.split_once('?').unwrap_or((req.uri, ""));
    let named = |list: &[(String, String)]| -> Vec<(String, Vec<u8>)> {
        list.iter()
            .map(|(n, v)| (n.clone(), v.clone().into_bytes()))
            .collect()
    };
    let names = |list: &[(String, String)]| -> Vec<(String, Vec<u8>)> {
        list.iter()
            .map(|(n, _)| (n.clone(), n.clone().into_bytes()))
            .collect()
    };
    match c {
        Collection::Args | Collection::ArgsGet => named(&tx.args),
        Collection::ArgsNames | Collection::ArgsGetNames => names(&tx.args),
        // Bodies are not read yet: no POST arguments, no body.
        Collection::ArgsPost | Collection::ArgsPostNames | Collection::RequestBody => Vec::new(),
        Collection::QueryString => scalar(query.as_bytes()),
        Collection::RequestUri | Collection::RequestUriRaw => scalar(req.uri.as_bytes()),
        Collection::RequestFilename => scalar(path.as_bytes()),
        Collection::RequestBasename => scalar(path.rsplit('/').next().unwrap_or("").as_bytes()),
        Collection::RequestLine => scalar(format!("{} {} {}", req.method, req.uri, req.protocol).as_bytes()),
        Collection::RequestMethod => scalar(req.method.as_bytes()),
        Collection::RequestProtocol => scalar(req.protocol.as_bytes()),
        Collection::RequestHeaders => req
            .headers
            .iter()
            .map(|(n, v)| (String::from_utf8_lossy(n).into_owned(), v.to_vec()))
            .collect(),
        Collection::RequestHeadersNames => req
            .headers
            .iter()
            .map(|(n, _)| (String::from_utf8_lossy(n).into_owned(), n.to_vec()))
            .collect(),
        Collection::RequestCookies => named(&tx.cookies),
        Collection::RequestCookiesNames => names(&tx.cookies),
        Collection::RemoteAddr => scalar(req.remote_addr.as_bytes()),
        Collection::UniqueId => scalar(req.unique_id.as_bytes()),
        Collection::Tx => tx
            .vars
            .iter()
            .map(|(n, v)| (n.clone(), v.clone().into_bytes()))
            .collect(),
        Collection::MatchedVar => scalar(&tx.matched_var),
        Collection::MatchedVarName => scalar(tx.matched_var_name.as_bytes()),
        Collection::MatchedVars => tx
            .matched_vars
            .iter()
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect(),
        Collection::MatchedVarsNames => tx
            .matched_vars
            .iter()
            .map(|(n, _)| (n.clone(), n.clone().into_bytes()))
            .collect(),
    }
}

fn setvar(s: &SetVar, rule: &Rule, tx: &mut Tx<'_>) {
    let num = |v: &str| v.trim().parse::<i64>().unwrap_or(0);
    match s {
        SetVar::Set(n, v) => {
            let v = expand(v, rule, tx);
            tx.vars.insert(expand(n, rule, tx), v);
        }
        SetVar::Add(n, v) | SetVar::Sub(n, v) => {
            let by = num(&expand(v, rule, tx));
            let name = expand(n, rule, tx);
            let now = tx.vars.get(&name).map_or(0, |x| num(x));
            let next = if matches!(s, SetVar::Add(..)) {
                now.saturating_add(by)
            } else {
                now.saturating_sub(by)
            };
            tx.vars.insert(name, next.to_string());
        }
        SetVar::Delete(n) => {
            let name = expand(n, rule, tx);
            tx.vars.remove(&name);
        }
    }
}

/// `%{tx.name}`, `%{MATCHED_VAR}`, `%{MATCHED_VAR_NAME}`, `%{rule.id}`,
/// `%{rule.msg}`, `%{REQUEST_HEADERS.name}`, `%{REMOTE_ADDR}`; anything
/// else expands to nothing.
fn expand(s: &str, rule: &Rule, tx: &Tx<'_>) -> String {
    if !s.contains("%{") {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("%{") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[at..]);
            return out;
        };
        let key = &after[..end];
        let (coll, name) = key.split_once('.').unwrap_or((key, ""));
        let value = match coll.to_ascii_lowercase().as_str() {
            "tx" => tx
                .vars
                .get(&name.to_ascii_lowercase())
                .cloned()
                .unwrap_or_default(),
            "matched_var" => String::from_utf8_lossy(&tx.matched_var).into_owned(),
            "matched_var_name" => tx.matched_var_name.clone(),
            "rule" => match name {
                "id" => rule.id.to_string(),
                "msg" => rule.msg.clone(),
                "severity" => rule.severity.clone().unwrap_or_default(),
                _ => String::new(),
            },
            "request_headers" => tx
                .req
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default(),
            "remote_addr" => tx.req.remote_addr.clone(),
            _ => String::new(),
        };
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// `a=1&b=2` as decoded (name, value) pairs, as ModSecurity splits
/// arguments.
pub(super) fn parse_pairs(s: &str, sep: char) -> Vec<(String, String)> {
    s.split(sep)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            let d = |x: &str| String::from_utf8_lossy(&ops::url_decode(x.as_bytes(), false)).into_owned();
            (d(n), d(v))
        })
        .collect()
}

fn parse_cookies(s: &str) -> Vec<(String, String)> {
    s.split(';')
        .filter_map(|p| {
            let p = p.trim();
            (!p.is_empty()).then(|| {
                let (n, v) = p.split_once('=').unwrap_or((p, ""));
                (n.trim().to_string(), v.trim().to_string())
            })
        })
        .collect()
}
