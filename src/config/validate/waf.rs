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
        Ok(model::WafSettings {
            rules: Arc::new(rules),
            paranoia,
            block,
        })
    }
}
