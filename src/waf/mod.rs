//! The web application firewall: rules in ModSecurity's language (as the
//! OWASP Core Rule Set writes them) loaded from files and run over each
//! request's head and query arguments.
//!
//! Owns the rule parser (`parse`), the rules as the engine runs them
//! (`model`), operators and transformations (`ops`) and the engine
//! (`engine`). Exposes [`load`], which reads rule files into a
//! [`RuleSet`], [`RuleSet::inspect`], which gives an [`Outcome`] for a
//! [`Request`], and [`WafError`]. A directive, variable, operator,
//! transformation or action it does not run is a load error that names
//! the file, line and directive, never skipped.
//!
//! Not yet: request bodies (`ARGS_POST`, `REQUEST_BODY`, `FILES`, `XML`),
//! `ctl` beyond rule removal and the engine switch, `initcol`,
//! `@detectSQLi`/`@detectXSS`, per-route settings; the
//! full Core Rule Set does not load yet.

mod engine;
mod model;
mod ops;
mod parse;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use engine::{Hit, Outcome, Request};

use model::{Disruptive, Rule};
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
    /// The files read, in order.
    pub files: Vec<PathBuf>,
    /// Requests each rule denied (by id), for the metrics; they start
    /// again from 0 when a reload loads the rules again.
    blocked: HashMap<u64, std::sync::atomic::AtomicU64>,
}

impl RuleSet {
    /// How many rules (chains counted once).
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
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
    let mut set = RuleSet {
        rules: Vec::new(),
        markers: HashMap::new(),
        default_disruptive: Disruptive::Pass,
        paranoia,
        files,
        blocked: HashMap::new(),
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
        }
    }
    if open_chain {
        return Err(WafError::Rules(
            "the last rule says `chain` but no rule follows".into(),
        ));
    }
    set.blocked = set.rules.iter().map(|r| (r.id, Default::default())).collect();
    Ok(set)
}

#[cfg(test)]
mod tests;
