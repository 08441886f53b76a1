//! `[waf]`: the rule files loaded now (so that a rule rampart cannot run
//! is an error naming its file and line), the paranoia level and the mode.

use std::sync::Arc;

use super::{Cx, R};
use crate::config::defaults as d;
use crate::config::{model, schema};

impl Cx<'_> {
    pub(super) fn waf(&self, w: &schema::Waf) -> R<model::WafSettings> {
        let paranoia = match &w.paranoia {
            None => d::WAF_PARANOIA,
            Some(p) if (1..=4).contains(p.get_ref()) => *p.get_ref(),
            Some(p) => return Err(self.at(p, "waf.paranoia", "a paranoia level from 1 to 4")),
        };
        let block = match &w.mode {
            None => true,
            Some(m) => match m.get_ref().as_str() {
                "block" => true,
                "detect" => false,
                other => {
                    return Err(self.at(
                        m,
                        "waf.mode",
                        format!("`{other}`: use block (deny what the rules deny) or detect (log it only)"),
                    ))
                }
            },
        };
        if w.rules.get_ref().is_empty() {
            return Err(self.at(&w.rules, "waf.rules", "name at least one rule file"));
        }
        let rules = crate::waf::load(w.rules.get_ref(), &self.path("."), paranoia)
            .map_err(|e| self.at(&w.rules, "waf.rules", e.to_string()))?;
        let body_limit = self
            .size(&w.body_limit, "waf.body_limit")?
            .unwrap_or(d::WAF_BODY_LIMIT);
        let body_limit = usize::try_from(body_limit)
            .ok()
            .filter(|n| *n <= 64 << 20)
            .ok_or_else(|| {
                let span = w.body_limit.as_ref().map_or(0..0, |s| s.span());
                self.err(
                    span,
                    "waf.body_limit",
                    "at most 64MiB (the body is held in memory while it is inspected)",
                )
            })?;
        let reject_over_limit = match &w.body_limit_action {
            None => true,
            Some(a) => match a.get_ref().as_str() {
                "reject" => true,
                "inspect" => false,
                other => {
                    return Err(self.at(
                        a,
                        "waf.body_limit_action",
                        format!("`{other}`: use reject (413) or inspect (inspect the first body_limit bytes, forward the whole)"),
                    ))
                }
            },
        };
        let exclude = match &w.exclude {
            None => crate::waf::Exclusions::default(),
            Some(list) => {
                crate::waf::Exclusions::parse(list.get_ref()).map_err(|e| self.at(list, "waf.exclude", e))?
            }
        };
        Ok(model::WafSettings {
            rules: Arc::new(rules),
            paranoia,
            block,
            body_limit,
            reject_over_limit,
            exclude,
        })
    }
}
