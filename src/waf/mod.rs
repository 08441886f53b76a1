//! The web application firewall: rules in ModSecurity's language (as the
//! OWASP Core Rule Set writes them) loaded from files and run over each
//! request's head, arguments and body.
//!
//! Owns the rule parser (`parse`), the rules as the engine runs them
//! (`model`), operators and transformations (`ops`), body processors
//! (`body`) and the engine (`engine`). Exposes [`load`], which reads rule
//! files into a [`RuleSet`], [`RuleSet::inspect`], which gives an
//! [`Outcome`] for a [`Request`], and [`WafError`]. A directive, variable,
//! operator, transformation or action it does not run is a load error
//! that names the file, line and directive, never skipped; what loads
//! and has no effect (response phases, `@rbl`, `@geoLookup`) is listed in
//! [`RuleSet::notes`].

pub mod body;
mod engine;
mod model;
mod ops;
mod parse;
mod vars;
mod verdicts;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use engine::{Hit, Outcome, Request};
pub use model::BodyProcessor;

use model::{Disruptive, EngineMode, OperatorKind, Rule, Transform};
use parse::Item;

/// Why rules could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum WafError {
    #[error("{path}: {message}")]
    Read { path: String, message: String },
    #[error("{path}:{line}: {directive}: {message}")]
    At {
        path: String,
        line: usize,
        directive: String,
        message: String,
    },
    #[error("{0}")]
    Rules(String),
}

/// Rules ready to run.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
    /// Where each marker is: the index of the rule after it.
    markers: HashMap<String, usize>,
    /// What `block` does (`SecDefaultAction`; pass by default, as CRS's
    /// anomaly scoring wants).
    default_disruptive: Disruptive,
    paranoia: u8,
    /// `SecRuleEngine` (On unless the rules say otherwise).
    engine: EngineMode,
    /// `SecRequestBodyAccess` (On unless the rules say otherwise).
    body_access: bool,
    /// What loaded and has no effect, for `rampart check` and the log.
    notes: Vec<String>,
    /// The files read, in order.
    pub files: Vec<PathBuf>,
    /// Requests each rule denied (by id), for the metrics; they start
    /// again from 0 when a reload loads the rules again.
    blocked: HashMap<u64, std::sync::atomic::AtomicU64>,
    /// What the rules that read nothing of the request leave (run once).
    prelude: engine::Prelude,
}

impl RuleSet {
    /// How many rules (chains counted once).
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// How many rules (from the start) the prelude covers.
    #[cfg(test)]
    fn prelude_len(&self) -> usize {
        self.prelude.len()
    }

    /// What loaded and has no effect in rampart (response-phase rules,
    /// operators it does not evaluate, collection timeouts).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Whether phase-2 rules may read the body (the pipeline reads it
    /// only then).
    pub fn reads_bodies(&self) -> bool {
        self.body_access && self.engine != EngineMode::Off
    }

    /// Counts a request rule `id` denied.
    pub fn count_blocked(&self, id: u64) {
        if let Some(c) = self.blocked.get(&id) {
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// (rule id, requests it denied) for every rule that denied one, by id.
    pub fn blocked(&self) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = self
            .blocked
            .iter()
            .map(|(id, c)| (*id, c.load(std::sync::atomic::Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect();
        out.sort_unstable();
        out
    }
}

/// Loads the rule files `patterns` name (relative to `base`; `*` in a
/// file name), in order, for paranoia level `paranoia`.
pub fn load(patterns: &[String], base: &Path, paranoia: u8) -> Result<RuleSet, WafError> {
    let mut items = Vec::new();
    let mut files = Vec::new();
    for p in patterns {
        let found = parse::expand(base, p).map_err(WafError::Rules)?;
        for f in found {
            parse::parse_file(&f, &mut items, 0)?;
            files.push(f);
        }
    }
    build(items, files, paranoia)
}

/// Loads rules from text, as if a file `path` held it (for tests and fuzzing;
/// `Include` and `@pmFromFile` look beside `path`).
pub fn load_str(text: &str, path: &Path, paranoia: u8) -> Result<RuleSet, WafError> {
    let mut items = Vec::new();
    parse::parse_text(text, path, &mut items, 0)?;
    build(items, vec![path.to_path_buf()], paranoia)
}

fn build(items: Vec<Item>, files: Vec<PathBuf>, paranoia: u8) -> Result<RuleSet, WafError> {
    let mut set = RuleSet {
        rules: Vec::new(),
        markers: HashMap::new(),
        default_disruptive: Disruptive::Pass,
        paranoia,
        engine: EngineMode::On,
        body_access: true,
        notes: Vec::new(),
        files,
        blocked: HashMap::new(),
        prelude: engine::Prelude::default(),
    };
    let mut open_chain = false;
    let mut ids = std::collections::HashSet::new();
    for item in items {
        match item {
            Item::Rule(r) => {
                let r = *r;
                if open_chain {
                    let chains_on = r.chain;
                    if let Some(head) = set.rules.last_mut() {
                        head.chained.push(r);
                    }
                    open_chain = chains_on;
                    continue;
                }
                if r.id == 0 {
                    return Err(WafError::Rules(format!(
                        "a rule without an id (message `{}`): every rule needs id:N",
                        r.msg
                    )));
                }
                if !ids.insert(r.id) {
                    return Err(WafError::Rules(format!("rule id {} is used twice", r.id)));
                }
                open_chain = r.chain;
                set.rules.push(Rule {
                    phase: if r.phase == 0 { 2 } else { r.phase },
                    ..r
                });
            }
            Item::Marker(m) => {
                set.markers.insert(m, set.rules.len());
            }
            Item::DefaultAction(actions) => {
                for a in actions {
                    if let model::Action::Disruptive(d) = a {
                        set.default_disruptive = d;
                    }
                }
            }
            // Removed rules stay in place (markers point at positions),
            // switched off.
            Item::RemoveById(ranges) => {
                for r in &mut set.rules {
                    r.removed |= ranges.iter().any(|(a, b)| (*a..=*b).contains(&r.id));
                }
            }
            Item::RemoveByTag(tag) => {
                for r in &mut set.rules {
                    r.removed |= r.tags.contains(&tag);
                }
            }
            Item::RemoveByMsg(msg) => {
                for r in &mut set.rules {
                    r.removed |= r.msg == msg;
                }
            }
            Item::UpdateTargetById(ranges, vars) => {
                for r in &mut set.rules {
                    if ranges.iter().any(|(a, b)| (*a..=*b).contains(&r.id)) {
                        r.targets.extend(vars.iter().cloned());
                    }
                }
            }
            Item::UpdateTargetByTag(tag, vars) => {
                for r in &mut set.rules {
                    if r.tags.contains(&tag) {
                        r.targets.extend(vars.iter().cloned());
                    }
                }
            }
            Item::Engine(mode) => set.engine = mode,
            Item::BodyAccess(on) => set.body_access = on,
            Item::Note(n) => set.notes.push(n),
        }
    }
    if open_chain {
        return Err(WafError::Rules(
            "the last rule says `chain` but no rule follows".into(),
        ));
    }
    set.blocked = set.rules.iter().map(|r| (r.id, Default::default())).collect();
    number_transform_lists(&mut set.rules);
    let later = set.rules.iter().filter(|r| r.phase > 2 && !r.removed).count();
    if later > 0 {
        set.notes.push(format!(
            "{later} rules of phases 3-5 (response headers, response body, logging) are loaded and not run: \
             rampart's WAF inspects requests"
        ));
    }
    let mut unevaluated: Vec<String> = Vec::new();
    for r in set.rules.iter().filter(|r| !r.removed) {
        for link in std::iter::once(r).chain(r.chained.iter()) {
            if let OperatorKind::NotEvaluated(what) = link.operator.kind {
                unevaluated.push(format!("rule {}: {what} never matches", r.id));
            }
        }
    }
    set.notes.extend(unevaluated);
    set.compute_prelude();
    Ok(set)
}

/// Gives each distinct transformation list an id (the engine caches a
/// value's transformed form per list), and notes which rules exclude
/// variables.
fn number_transform_lists(rules: &mut [Rule]) {
    let mut ids: HashMap<Vec<Transform>, u32> = HashMap::new();
    fn walk(r: &mut Rule, ids: &mut HashMap<Vec<Transform>, u32>) {
        let next = u32::try_from(ids.len()).unwrap_or(u32::MAX);
        r.chain_id = *ids.entry(r.transforms.clone()).or_insert(next);
        r.has_exclude = r.targets.iter().any(|t| t.exclude);
        for link in &mut r.chained {
            walk(link, ids);
        }
    }
    for r in rules {
        walk(r, &mut ids);
    }
}

#[cfg(test)]
mod tests;

/// Rules, or some of their variables, switched off (for a route, or for
/// every route): written `"920350"`, `"942100-942199"`, `"tag:attack-sqli"`,
/// optionally followed by a variable (`"942100 ARGS:password"`,
/// `"tag:attack-xss REQUEST_COOKIES:/^sess/"`). They work as ModSecurity's
/// `ctl:ruleRemoveById` / `ruleRemoveTargetById` (and `ByTag`) do when a
/// rule runs them, for every request they apply to.
#[derive(Debug, Clone, Default)]
pub struct Exclusions {
    source: Vec<String>,
    ctls: std::sync::Arc<Vec<model::Ctl>>,
}

impl PartialEq for Exclusions {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Exclusions {}

impl Exclusions {
    /// Reads a list of exclusions; the error names the one that is wrong.
    pub fn parse(list: &[String]) -> Result<Exclusions, String> {
        let mut ctls = Vec::new();
        for e in list {
            ctls.push(parse::exclusion(e).map_err(|m| format!("`{e}`: {m}"))?);
        }
        Ok(Exclusions {
            source: list.to_vec(),
            ctls: std::sync::Arc::new(ctls),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.ctls.is_empty()
    }

    /// Both lists, `self` first.
    pub fn and(&self, other: &Exclusions) -> Exclusions {
        if other.is_empty() {
            return self.clone();
        }
        if self.is_empty() {
            return other.clone();
        }
        let mut source = self.source.clone();
        source.extend(other.source.iter().cloned());
        let mut ctls = (*self.ctls).clone();
        ctls.extend(other.ctls.iter().cloned());
        Exclusions {
            source,
            ctls: std::sync::Arc::new(ctls),
        }
    }
}
