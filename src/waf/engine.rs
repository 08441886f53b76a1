//! Runs a rule set over one request: phase 1 (the head), then the body
//! read by its processor, then phase 2; rules in order, chains,
//! `skipAfter` to a marker, `setvar` with macros, `ctl:` for this request,
//! and the first disruptive `deny` (or `allow`) ends it.
//!
//! Values are borrowed from the request wherever they can be; a value's
//! transformed form is computed once per transformation list and reused by
//! every rule that asks for it (`Cache`), so the Core Rule Set's many
//! rules with the same `t:` list decode an argument once.
//!
//! The rules at the start of phase 1 that read nothing of the request
//! (the Core Rule Set's set-up: defaults, thresholds, paranoia skips) run
//! once, when the rules load (`Prelude`); each request starts from the
//! variables they left, read through, not copied (`vars`).

use std::borrow::Cow;
use std::collections::HashMap;

use super::body::{self, BodyVars};
use super::model::{
    BodyProcessor, Collection, Ctl, Disruptive, EngineMode, Rule, Selector, SetVar, Store, Target,
};
use super::ops;
use super::vars::{KeyHasher, Map, Vars};
use super::RuleSet;

/// What the WAF reads of a request.
#[derive(Debug, Default)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The request target as sent (path and query).
    pub uri: &'a str,
    /// `HTTP/1.1`, `HTTP/2.0`.
    pub protocol: &'a str,
    pub headers: Vec<(&'a [u8], &'a [u8])>,
    pub remote_addr: String,
    pub unique_id: &'a str,
    /// The body as far as it was read (up to the inspection limit).
    pub body: &'a [u8],
    /// More body followed than was read.
    pub body_truncated: bool,
    /// Rules (or variables of rules) switched off for this request (the
    /// configuration's, the route's).
    pub exclusions: [Option<&'a super::Exclusions>; 2],
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
    /// Every rule with a message (and without `nolog`) that matched, in
    /// order.
    pub matched: Vec<Hit>,
    /// `tx.anomaly_score` at the end (CRS's inbound score).
    pub anomaly_score: i64,
    /// A rule said `ctl:ruleEngine=DetectionOnly`: log, do not deny.
    pub detection_only: bool,
}

/// One value of a variable.
struct Val<'t> {
    coll: Collection,
    /// The member's name (empty for a scalar).
    name: Cow<'t, str>,
    value: Cow<'t, [u8]>,
    /// The value lives, unchanged, as long as the request (its address
    /// may key the cache of transformed values); TX and the MATCHED_*
    /// variables change as rules run.
    stable: bool,
}

/// A parsed argument.
struct Arg {
    name: String,
    value: Vec<u8>,
    post: bool,
}

struct Tx<'r> {
    req: &'r Request<'r>,
    /// The request's fields, names read as text once.
    headers: Vec<(Cow<'r, str>, &'r [u8])>,
    path: &'r str,
    query: Option<&'r str>,
    content_type: &'r [u8],
    args: Vec<Arg>,
    cookies: Vec<(String, Vec<u8>)>,
    body: BodyVars,
    processor: Option<BodyProcessor>,
    body_access: bool,
    force_body_variable: bool,
    /// TX, IP, GLOBAL (names lower-cased).
    stores: [Vars<'r>; 3],
    matched_var: Vec<u8>,
    matched_var_name: String,
    matched_vars: Vec<(String, Vec<u8>)>,
    /// What matched rules' `ctl:` actions changed for this request.
    ctls: Vec<Ctl>,
    /// Some of `ctls` take variables out of rules.
    target_ctls: bool,
    started: std::time::Instant,
}

/// Transformed values, by (value address, length, transformation list).
/// Only values that live as long as the request (the request's own bytes
/// and what was parsed from them) are cached; `None`: the list leaves the
/// value as it is.
#[derive(Default)]
struct Cache(HashMap<CacheKey, Option<Vec<u8>>, std::hash::BuildHasherDefault<KeyHasher>>);

/// A value's address and length, and the transformation list's id.
type CacheKey = (usize, usize, u32);

/// How a phase's run ended.
enum Step {
    /// Every rule of the phase had its turn.
    Done,
    /// A rule denied or allowed the request, or switched the engine off.
    Ended,
    /// (Prelude only) the rule at this index reads the request.
    Stopped(usize),
}

/// What the start of phase 1 leaves when it reads nothing of the
/// request: computed once per rule set, cloned into each transaction.
#[derive(Debug, Default)]
pub(super) struct Prelude {
    /// Where phase 1 goes on (0: no prelude).
    resume: usize,
    /// The phase-1 rules before `resume`, by id and tag (an exclusion
    /// that touches one of them makes a request run them itself).
    ids: Vec<u64>,
    tags: std::collections::HashSet<String>,
    stores: [Map; 3],
    matched_var: Vec<u8>,
    matched_var_name: String,
    matched_vars: Vec<(String, Vec<u8>)>,
}

impl Prelude {
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.resume
    }

    fn affected_by(&self, ctls: &[Ctl]) -> bool {
        let ids = |a: &u64, b: &u64| self.ids.iter().any(|id| (*a..=*b).contains(id));
        ctls.iter().any(|c| match c {
            Ctl::RemoveById(a, b) | Ctl::RemoveTargetById(a, b, _) => ids(a, b),
            Ctl::RemoveByTag(t) | Ctl::RemoveTargetByTag(t, _) => self.tags.contains(t),
            Ctl::Engine(_) => true,
            _ => false,
        })
    }
}

/// Whether what a rule does depends on TX alone: its variables, its
/// operator's and `setvar`s' macros. (Whether it then reports, denies or
/// sets a `ctl:` is seen when the prelude runs.)
fn reads_nothing_of_the_request(rule: &Rule) -> bool {
    std::iter::once(rule).chain(rule.chained.iter()).all(|r| {
        r.targets.iter().all(|t| t.collection == Collection::Tx)
            && r.operator.kind.text().is_none_or(macros_read_tx_only)
            && r.setvars.iter().all(|s| match s {
                SetVar::Set(n, v) | SetVar::Add(n, v) | SetVar::Sub(n, v) => {
                    macros_read_tx_only(&n.name) && macros_read_tx_only(v)
                }
                SetVar::Delete(n) => macros_read_tx_only(&n.name),
            })
    })
}

/// Whether every `%{...}` in `s` names a variable store, the rule itself
/// or what it matched (all of which the prelude holds).
fn macros_read_tx_only(s: &str) -> bool {
    s.split("%{").skip(1).all(|m| {
        let key = m.split('}').next().unwrap_or_default().to_ascii_lowercase();
        let coll = key.split('.').next().unwrap_or_default();
        matches!(coll, "tx" | "ip" | "global" | "rule") || key == "matched_var" || key == "matched_var_name"
    })
}

impl Tx<'_> {
    /// Whether a `ctl:` switched `rule` off for this request.
    fn removed(&self, rule: &Rule) -> bool {
        !self.ctls.is_empty()
            && self.ctls.iter().any(|c| match c {
                Ctl::RemoveById(a, b) => (*a..=*b).contains(&rule.id),
                Ctl::RemoveByTag(t) => rule.tags.contains(t),
                _ => false,
            })
    }

    fn engine_mode(&self) -> Option<EngineMode> {
        self.ctls.iter().rev().find_map(|c| match c {
            Ctl::Engine(m) => Some(*m),
            _ => None,
        })
    }

    fn store(&self, s: Store) -> &Vars<'_> {
        &self.stores[s.index()]
    }

    /// Reads the body with the processor chosen (by content type, or by
    /// a phase-1 `ctl:`), before phase 2.
    fn read_body(&mut self) {
        for c in &self.ctls {
            match c {
                Ctl::BodyProcessor(p) => self.processor = Some(*p),
                Ctl::BodyAccess(on) => self.body_access = *on,
                Ctl::ForceBodyVariable(on) => self.force_body_variable = *on,
                _ => {}
            }
        }
        if !self.body_access || self.req.body.is_empty() {
            return;
        }
        if let Some(p) = self.processor {
            self.body = body::process(p, self.req.body, self.content_type);
            let args = std::mem::take(&mut self.body.args);
            self.args.extend(args.into_iter().map(|(name, value)| Arg {
                name,
                value,
                post: true,
            }));
        }
    }

    /// REQUEST_BODY holds the raw body for URL-encoded forms, bodies no
    /// processor reads, and when forced.
    fn raw_body_visible(&self) -> bool {
        self.body_access
            && !self.req.body.is_empty()
            && (self.force_body_variable || matches!(self.processor, None | Some(BodyProcessor::UrlEncoded)))
    }
}

impl RuleSet {
    /// The rules' verdict on `req`, with `tx.paranoia_level` set to the
    /// configured level first.
    pub fn inspect(&self, req: &Request<'_>) -> Outcome {
        if self.engine == EngineMode::Off {
            return Outcome::default();
        }
        let mut tx = self.new_tx(req);
        // The rules at the start of phase 1 that read nothing of the
        // request ran once, at load: start from what they left.
        let prelude = &self.prelude;
        let skip = prelude.resume > 0 && !prelude.affected_by(&tx.ctls);
        if skip {
            tx.stores = prelude.stores.each_ref().map(Vars::over);
            tx.matched_var.clone_from(&prelude.matched_var);
            tx.matched_var_name.clone_from(&prelude.matched_var_name);
            tx.matched_vars.clone_from(&prelude.matched_vars);
        }
        let mut cache = Cache::default();
        let mut out = Outcome {
            detection_only: self.engine == EngineMode::DetectionOnly,
            ..Outcome::default()
        };
        for phase in [1u8, 2] {
            if phase == 2 {
                tx.read_body();
            }
            let from = if phase == 1 && skip { prelude.resume } else { 0 };
            if !matches!(
                self.run_phase(phase, from, &mut tx, &mut cache, &mut out, false),
                Step::Done
            ) {
                break;
            }
        }
        out.anomaly_score = tx
            .store(Store::Tx)
            .get("anomaly_score")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        out
    }

    /// A fresh transaction for `req`, with `tx.paranoia_level` set.
    fn new_tx<'r>(&'r self, req: &'r Request<'r>) -> Tx<'r> {
        let (path, query) = match req.uri.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (req.uri, None),
        };
        let content_type = req
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(b"content-type"))
            .map_or(&b""[..], |(_, v)| *v);
        let mut tx = Tx {
            req,
            headers: req
                .headers
                .iter()
                .map(|(n, v)| (String::from_utf8_lossy(n), *v))
                .collect(),
            path,
            query,
            content_type,
            args: query
                .map(|q| parse_pairs(q.as_bytes(), b'&'))
                .unwrap_or_default()
                .into_iter()
                .map(|(name, value)| Arg {
                    name,
                    value,
                    post: false,
                })
                .collect(),
            cookies: req
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(b"cookie"))
                .flat_map(|(_, v)| parse_cookies(v))
                .collect(),
            body: BodyVars::default(),
            processor: body::processor_for(content_type),
            body_access: self.body_access,
            force_body_variable: false,
            stores: Default::default(),
            matched_var: Vec::new(),
            matched_var_name: String::new(),
            matched_vars: Vec::new(),
            ctls: req
                .exclusions
                .iter()
                .flatten()
                .flat_map(|e| e.ctls.iter().cloned())
                .collect(),
            target_ctls: false,
            started: std::time::Instant::now(),
        };
        tx.target_ctls = tx.ctls.iter().any(is_target_ctl);
        tx.stores[Store::Tx.index()].insert("paranoia_level".into(), self.paranoia.to_string());
        tx
    }

    /// Runs `phase`'s rules from index `from`. With `prelude`, stops
    /// before the first rule that reads the request (or could end it).
    fn run_phase(
        &self,
        phase: u8,
        from: usize,
        tx: &mut Tx<'_>,
        cache: &mut Cache,
        out: &mut Outcome,
        prelude: bool,
    ) -> Step {
        let mut i = from;
        while i < self.rules.len() {
            let rule = &self.rules[i];
            if rule.phase != phase || rule.removed || tx.removed(rule) {
                i += 1;
                continue;
            }
            if prelude && !reads_nothing_of_the_request(rule) {
                return Step::Stopped(i);
            }
            i += 1;
            if !self.run_chain(rule, tx, cache) {
                continue;
            }
            match tx.engine_mode() {
                Some(EngineMode::Off) => return Step::Ended,
                Some(EngineMode::DetectionOnly) => out.detection_only = true,
                _ => {}
            }
            if !rule.msg.is_empty() && !rule.nolog {
                out.matched.push(hit(rule, tx));
            }
            let disruptive = match rule.disruptive {
                Some(Disruptive::Block) | None => self.default_disruptive,
                Some(d) => d,
            };
            match disruptive {
                Disruptive::Deny => {
                    out.deny = Some(hit(rule, tx));
                    return Step::Ended;
                }
                Disruptive::Allow => return Step::Ended,
                Disruptive::Pass | Disruptive::Block => {}
            }
            if let Some(marker) = &rule.skip_after {
                if let Some(&at) = self.markers.get(marker) {
                    i = i.max(at);
                }
            }
        }
        Step::Done
    }

    /// Runs the start of phase 1 that reads nothing of the request (the
    /// Core Rule Set's set-up: defaults, thresholds, paranoia skips) on
    /// no request, and keeps what it left, for `inspect` to start from.
    pub(super) fn compute_prelude(&mut self) {
        let req = Request::default();
        let mut tx = self.new_tx(&req);
        let mut cache = Cache::default();
        let mut out = Outcome::default();
        let resume = match self.run_phase(1, 0, &mut tx, &mut cache, &mut out, true) {
            Step::Stopped(i) => i,
            Step::Done => self.rules.len(),
            // A set-up that ends the transaction by itself: no prelude.
            Step::Ended => return,
        };
        // What ran must have changed nothing but the variables: a rule
        // that reported, or a `ctl:`, would have to happen per request.
        if !out.matched.is_empty() || !tx.ctls.is_empty() {
            return;
        }
        let ran = &self.rules[..resume];
        let prelude = Prelude {
            resume,
            ids: ran.iter().filter(|r| r.phase == 1).map(|r| r.id).collect(),
            tags: ran
                .iter()
                .filter(|r| r.phase == 1)
                .flat_map(|r| r.tags.iter().cloned())
                .collect(),
            stores: tx.stores.each_ref().map(Vars::flatten),
            matched_var: tx.matched_var.clone(),
            matched_var_name: tx.matched_var_name.clone(),
            matched_vars: tx.matched_vars.clone(),
        };
        self.prelude = prelude;
    }

    /// A rule and its chained links: all must match; then the actions of
    /// every link run.
    fn run_chain(&self, rule: &Rule, tx: &mut Tx<'_>, cache: &mut Cache) -> bool {
        if !matches(rule, tx, cache) {
            return false;
        }
        for link in &rule.chained {
            if !matches(link, tx, cache) {
                return false;
            }
        }
        for r in std::iter::once(rule).chain(rule.chained.iter()) {
            for s in &r.setvars {
                setvar(s, r, tx);
            }
            tx.ctls.extend(r.ctls.iter().cloned());
            tx.target_ctls |= r.ctls.iter().any(is_target_ctl);
        }
        true
    }
}

fn is_target_ctl(c: &Ctl) -> bool {
    matches!(c, Ctl::RemoveTargetById(..) | Ctl::RemoveTargetByTag(..))
}

fn hit(rule: &Rule, tx: &Tx<'_>) -> Hit {
    Hit {
        id: rule.id,
        msg: expand(&rule.msg, rule, tx),
        status: rule.status.unwrap_or(403),
    }
}

/// Whether one rule's operator matches any of its values (or, negated,
/// fails on one); records MATCHED_VAR(S) and captures. A rule whose
/// variables have no value costs a walk over its targets, nothing more.
fn matches(rule: &Rule, tx: &mut Tx<'_>, cache: &mut Cache) -> bool {
    let mut found: Vec<(String, Vec<u8>)> = Vec::new();
    let mut captures: Option<Vec<Vec<u8>>> = None;
    {
        let tx: &Tx<'_> = tx;
        let expander = |p: &str| expand(p, rule, tx);
        let mut test_one = |val: &Val<'_>, v: &[u8]| -> bool {
            let got = ops::test(&rule.operator.kind, v, rule.capture, &expander);
            let hit = got.is_some() != rule.operator.negated;
            if hit {
                if rule.capture {
                    if let Some(c) = got {
                        captures = Some(c);
                    }
                }
                found.push((full_name(val), v.to_vec()));
            }
            hit
        };
        let mut each = |val: Val<'_>| {
            if rule.multi_match {
                // The value before and after each transformation that
                // changes it.
                if test_one(&val, &val.value) {
                    return;
                }
                let mut cur: Option<Vec<u8>> = None;
                for t in &rule.transforms {
                    let now = cur.as_deref().unwrap_or(&val.value);
                    if !ops::can_change(*t, now) {
                        continue;
                    }
                    let next = ops::transform(*t, now.to_vec());
                    if next.as_slice() != now && test_one(&val, &next) {
                        return;
                    }
                    cur = Some(next);
                }
                return;
            }
            if rule.transforms.is_empty() {
                test_one(&val, &val.value);
                return;
            }
            if val.stable {
                let key = (val.value.as_ptr() as usize, val.value.len(), rule.chain_id);
                let t = cache
                    .0
                    .entry(key)
                    .or_insert_with(|| apply(&rule.transforms, &val.value));
                test_one(&val, t.as_deref().unwrap_or(&val.value));
            } else {
                let t = apply(&rule.transforms, &val.value);
                test_one(&val, t.as_deref().unwrap_or(&val.value));
            }
        };
        if rule.targets.is_empty() {
            each(Val {
                coll: Collection::Tx,
                name: Cow::Borrowed(""),
                value: Cow::Borrowed(&[]),
                stable: true,
            });
        } else {
            values_of(rule, tx, &mut each);
        }
    }
    if found.is_empty() {
        return false;
    }
    if let Some(c) = captures {
        let txs = &mut tx.stores[Store::Tx.index()];
        const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
        for (name, v) in DIGITS.iter().zip(c) {
            txs.insert((*name).to_string(), String::from_utf8_lossy(&v).into_owned());
        }
    }
    if let Some((n, v)) = found.last() {
        tx.matched_var.clear();
        tx.matched_var.extend_from_slice(v);
        tx.matched_var_name.clear();
        tx.matched_var_name.push_str(n);
    }
    tx.matched_vars = found;
    true
}

/// `v` through a transformation list; `None` when no step changed it
/// (then nothing was copied).
fn apply(transforms: &[super::model::Transform], v: &[u8]) -> Option<Vec<u8>> {
    let mut cur: Option<Vec<u8>> = None;
    for t in transforms {
        let now = cur.as_deref().unwrap_or(v);
        if ops::can_change(*t, now) {
            cur = Some(ops::transform(*t, now.to_vec()));
        }
    }
    cur
}

/// `ARGS:q`, `REQUEST_URI`.
fn full_name(v: &Val<'_>) -> String {
    let coll = v.coll.name();
    let mut s = String::with_capacity(coll.len() + 1 + v.name.len());
    s.push_str(coll);
    if !v.name.is_empty() {
        s.push(':');
        s.push_str(&v.name);
    }
    s
}

/// Whether a `ctl:` (or a configured exclusion) took `val` out of `rule`
/// for this request.
fn removed_target(rule: &Rule, tx: &Tx<'_>, val: &Val<'_>) -> bool {
    tx.ctls.iter().any(|c| match c {
        Ctl::RemoveTargetById(a, b, t) => {
            (*a..=*b).contains(&rule.id) && t.collection == val.coll && select(t, &val.name)
        }
        Ctl::RemoveTargetByTag(tag, t) => {
            t.collection == val.coll && rule.tags.contains(tag) && select(t, &val.name)
        }
        _ => false,
    })
}

/// Hands each value of `rule`'s variables to `f`: the selected members,
/// less the excluded ones (`!VAR:x`, and what a `ctl:` removed), then the
/// counts (`&VAR`).
fn values_of<'t>(rule: &Rule, tx: &'t Tx<'_>, f: &mut dyn FnMut(Val<'t>)) {
    let targets = &rule.targets;
    let excludes = rule.has_exclude;
    let ctl_removes = tx.target_ctls;
    for t in targets.iter().filter(|t| !t.exclude && !t.count) {
        collection(t, tx, &mut |v| {
            if excludes
                && targets
                    .iter()
                    .any(|x| x.exclude && x.collection == v.coll && select(x, &v.name))
            {
                return;
            }
            if ctl_removes && removed_target(rule, tx, &v) {
                return;
            }
            f(v);
        });
    }
    for t in targets.iter().filter(|t| !t.exclude && t.count) {
        let mut n = 0usize;
        collection(t, tx, &mut |_| n += 1);
        f(Val {
            coll: t.collection,
            name: Cow::Borrowed(""),
            value: Cow::Owned(n.to_string().into_bytes()),
            stable: false,
        });
    }
}

fn select(t: &Target, name: &str) -> bool {
    match &t.selector {
        None => true,
        Some(Selector::Name(n)) => name.eq_ignore_ascii_case(n),
        Some(Selector::Regex(re)) => re.is_match(name),
    }
}

/// Hands each selected member of `t`'s collection to `f`.
fn collection<'t>(t: &Target, tx: &'t Tx<'_>, f: &mut dyn FnMut(Val<'t>)) {
    let c = t.collection;
    let req = tx.req;
    let member = |name: &'t str, value: &'t [u8]| Val {
        coll: c,
        name: Cow::Borrowed(name),
        value: Cow::Borrowed(value),
        stable: true,
    };
    let mut scalar = |v: Cow<'t, [u8]>| {
        let stable = matches!(v, Cow::Borrowed(_));
        f(Val {
            coll: c,
            name: Cow::Borrowed(""),
            value: v,
            stable,
        })
    };
    let b = |s: &'t str| Cow::Borrowed(s.as_bytes());
    let flag = |on: bool| Cow::Borrowed(if on { &b"1"[..] } else { &b"0"[..] });
    match c {
        Collection::Args | Collection::ArgsGet | Collection::ArgsPost => {
            for a in &tx.args {
                let wanted = match c {
                    Collection::ArgsGet => !a.post,
                    Collection::ArgsPost => a.post,
                    _ => true,
                };
                if wanted && select(t, &a.name) {
                    f(member(&a.name, &a.value));
                }
            }
        }
        Collection::ArgsNames | Collection::ArgsGetNames | Collection::ArgsPostNames => {
            for a in &tx.args {
                let wanted = match c {
                    Collection::ArgsGetNames => !a.post,
                    Collection::ArgsPostNames => a.post,
                    _ => true,
                };
                if wanted && select(t, &a.name) {
                    f(member(&a.name, a.name.as_bytes()));
                }
            }
        }
        Collection::ArgsCombinedSize => {
            let n: usize = tx.args.iter().map(|a| a.name.len() + a.value.len()).sum();
            scalar(Cow::Owned(n.to_string().into_bytes()))
        }
        Collection::QueryString => {
            if let Some(q) = tx.query {
                scalar(b(q))
            }
        }
        Collection::RequestUri | Collection::RequestUriRaw => scalar(b(req.uri)),
        Collection::RequestFilename => scalar(b(tx.path)),
        Collection::RequestBasename => scalar(b(tx.path.rsplit('/').next().unwrap_or(""))),
        Collection::RequestLine => scalar(Cow::Owned(
            format!("{} {} {}", req.method, req.uri, req.protocol).into_bytes(),
        )),
        Collection::RequestMethod => scalar(b(req.method)),
        Collection::RequestProtocol => scalar(b(req.protocol)),
        Collection::RequestHeaders | Collection::RequestHeadersNames => {
            for (name, v) in &tx.headers {
                if select(t, name) {
                    let value = if c == Collection::RequestHeaders {
                        *v
                    } else {
                        name.as_bytes()
                    };
                    f(member(name, value));
                }
            }
        }
        Collection::RequestCookies | Collection::RequestCookiesNames => {
            for (n, v) in &tx.cookies {
                if select(t, n) {
                    let value = if c == Collection::RequestCookies {
                        &v[..]
                    } else {
                        n.as_bytes()
                    };
                    f(member(n, value));
                }
            }
        }
        Collection::RequestBody => {
            if tx.raw_body_visible() {
                scalar(Cow::Borrowed(req.body))
            }
        }
        Collection::RequestBodyLength => scalar(Cow::Owned(req.body.len().to_string().into_bytes())),
        Collection::ReqbodyProcessor => scalar(b(tx.processor.map_or("", BodyProcessor::name))),
        Collection::ReqbodyError => scalar(flag(tx.body.error.is_some())),
        Collection::ReqbodyErrorMsg => scalar(b(tx.body.error.as_deref().unwrap_or_default())),
        Collection::InboundDataError => scalar(flag(req.body_truncated)),
        Collection::Files | Collection::FilesNames | Collection::FilesSizes => {
            for (field, file, size) in &tx.body.files {
                if select(t, field) {
                    let value = match c {
                        Collection::Files => Cow::Borrowed(file.as_bytes()),
                        Collection::FilesNames => Cow::Borrowed(field.as_bytes()),
                        _ => Cow::Owned(size.to_string().into_bytes()),
                    };
                    let stable = matches!(value, Cow::Borrowed(_));
                    f(Val {
                        coll: c,
                        name: Cow::Borrowed(field),
                        value,
                        stable,
                    });
                }
            }
        }
        Collection::FilesCombinedSize => {
            let n: usize = tx.body.files.iter().map(|(_, _, s)| s).sum();
            scalar(Cow::Owned(n.to_string().into_bytes()))
        }
        Collection::MultipartPartHeaders => {
            for (part, line) in &tx.body.part_headers {
                if select(t, part) {
                    f(member(part, line));
                }
            }
        }
        Collection::MultipartStrictError => {
            if tx.processor == Some(BodyProcessor::Multipart) {
                scalar(flag(tx.body.multipart_strict_error))
            }
        }
        Collection::MultipartUnmatchedBoundary => {
            if tx.processor == Some(BodyProcessor::Multipart) {
                scalar(flag(tx.body.multipart_unmatched_boundary))
            }
        }
        Collection::MultipartFilename | Collection::MultipartName => {}
        Collection::Xml => {
            let attrs = matches!(&t.selector, Some(Selector::Name(n)) if n.contains('@'));
            if attrs {
                for a in &tx.body.xml_attrs {
                    f(member("//@*", a));
                }
            } else if let Some(text) = &tx.body.xml_text {
                f(member("/*", text));
            }
        }
        Collection::RemoteAddr => scalar(b(&req.remote_addr)),
        Collection::UniqueId => scalar(b(req.unique_id)),
        Collection::Duration => scalar(Cow::Owned(
            tx.started.elapsed().as_micros().to_string().into_bytes(),
        )),
        // No GeoIP database: GEO is empty.
        Collection::Geo => {}
        Collection::Tx | Collection::Ip | Collection::Global => {
            let store = tx.store(match c {
                Collection::Tx => Store::Tx,
                Collection::Ip => Store::Ip,
                _ => Store::Global,
            });
            let var = |(n, v): (&'t str, &'t str)| Val {
                coll: c,
                name: Cow::Borrowed(n),
                value: Cow::Borrowed(v.as_bytes()),
                stable: false,
            };
            match &t.selector {
                // One variable by name: looked up, not searched for.
                Some(Selector::Name(n)) => {
                    if let Some(kv) = store.get_key_value(n) {
                        f(var(kv))
                    }
                }
                _ => {
                    for kv in store.iter() {
                        if select(t, kv.0) {
                            f(var(kv));
                        }
                    }
                }
            }
        }
        Collection::MatchedVar => f(Val {
            coll: c,
            name: Cow::Borrowed(""),
            value: Cow::Borrowed(&tx.matched_var),
            stable: false,
        }),
        Collection::MatchedVarName => f(Val {
            coll: c,
            name: Cow::Borrowed(""),
            value: Cow::Borrowed(tx.matched_var_name.as_bytes()),
            stable: false,
        }),
        Collection::MatchedVars | Collection::MatchedVarsNames => {
            for (n, v) in &tx.matched_vars {
                if select(t, n) {
                    let value = if c == Collection::MatchedVars {
                        &v[..]
                    } else {
                        n.as_bytes()
                    };
                    f(Val {
                        coll: c,
                        name: Cow::Borrowed(n),
                        value: Cow::Borrowed(value),
                        stable: false,
                    });
                }
            }
        }
        // Responses are not inspected: in the request phases these are
        // empty, as in ModSecurity.
        Collection::ResponseBody
        | Collection::ResponseStatus
        | Collection::ResponseProtocol
        | Collection::ResponseHeaders
        | Collection::ResponseHeadersNames
        | Collection::ResponseContentType
        | Collection::ResponseContentLength => {}
    }
}

fn setvar(s: &SetVar, rule: &Rule, tx: &mut Tx<'_>) {
    let num = |v: &str| v.trim().parse::<i64>().unwrap_or(0);
    match s {
        SetVar::Set(n, v) => {
            let v = expand(v, rule, tx);
            let name = expand(&n.name, rule, tx).to_ascii_lowercase();
            tx.stores[n.store.index()].insert(name, v);
        }
        SetVar::Add(n, v) | SetVar::Sub(n, v) => {
            let by = num(&expand(v, rule, tx));
            let name = expand(&n.name, rule, tx).to_ascii_lowercase();
            let store = &mut tx.stores[n.store.index()];
            let now = store.get(&name).map_or(0, num);
            let next = if matches!(s, SetVar::Add(..)) {
                now.saturating_add(by)
            } else {
                now.saturating_sub(by)
            };
            store.insert(name, next.to_string());
        }
        SetVar::Delete(n) => {
            let name = expand(&n.name, rule, tx).to_ascii_lowercase();
            tx.stores[n.store.index()].remove(&name);
        }
    }
}

/// `%{COLLECTION.name}` and `%{VARIABLE}` macros (`%{tx.x}`,
/// `%{MATCHED_VAR}`, `%{rule.id}`, `%{REQUEST_HEADERS.host}`, ...): the
/// first value of the variable; unknown ones expand to nothing.
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
        if coll.eq_ignore_ascii_case("rule") {
            match name.to_ascii_lowercase().as_str() {
                "id" => out.push_str(&rule.id.to_string()),
                "msg" => out.push_str(&rule.msg),
                "severity" => out.push_str(rule.severity.as_deref().unwrap_or_default()),
                "logdata" => out.push_str(&rule.logdata),
                _ => {}
            }
        } else if let Some(store) = Store::parse_ref(coll) {
            // The common case: a variable of TX, IP or GLOBAL, looked up.
            let found = if name.bytes().any(|b| b.is_ascii_uppercase()) {
                tx.store(store).get(&name.to_ascii_lowercase())
            } else {
                tx.store(store).get(name)
            };
            if let Some(v) = found {
                out.push_str(v);
            }
        } else if coll.eq_ignore_ascii_case("matched_var") {
            out.push_str(&String::from_utf8_lossy(&tx.matched_var));
        } else if coll.eq_ignore_ascii_case("matched_var_name") {
            out.push_str(&tx.matched_var_name);
        } else if let Some(c) = Collection::parse(coll) {
            let t = Target {
                collection: c,
                selector: (!name.is_empty()).then(|| Selector::Name(name.to_ascii_lowercase())),
                exclude: false,
                count: false,
            };
            let mut first: Option<Vec<u8>> = None;
            collection(&t, tx, &mut |v| {
                if first.is_none() {
                    first = Some(v.value.into_owned());
                }
            });
            if let Some(v) = first {
                out.push_str(&String::from_utf8_lossy(&v));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// `a=1&b=2` as decoded (name, value) pairs, as ModSecurity splits
/// arguments (`+` is a space; a name without `=` has an empty value).
pub(super) fn parse_pairs(s: &[u8], sep: u8) -> Vec<(String, Vec<u8>)> {
    s.split(|&b| b == sep)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, v) = match p.iter().position(|&b| b == b'=') {
                Some(i) => (&p[..i], &p[i + 1..]),
                None => (p, &b""[..]),
            };
            (
                String::from_utf8_lossy(&ops::url_decode(n, false)).into_owned(),
                ops::url_decode(v, false),
            )
        })
        .collect()
}

/// `Cookie:` pairs (`a=1; b=2`), names and values as sent.
fn parse_cookies(s: &[u8]) -> Vec<(String, Vec<u8>)> {
    s.split(|&b| b == b';')
        .filter_map(|p| {
            let p = p.trim_ascii();
            (!p.is_empty()).then(|| {
                let (n, v) = match p.iter().position(|&b| b == b'=') {
                    Some(i) => (&p[..i], &p[i + 1..]),
                    None => (p, &b""[..]),
                };
                (
                    String::from_utf8_lossy(n.trim_ascii()).into_owned(),
                    v.trim_ascii().to_vec(),
                )
            })
        })
        .collect()
}
