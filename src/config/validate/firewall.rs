//! `[firewall]` (trusted proxies; the per-client connection limits need no
//! check) and `[bans]` (when violations ban a client, and for how long).
//! Request rules are in `rules.rs`, a listener's client lists in
//! `listeners.rs`.

use super::{Cx, R};
use crate::config::defaults as d;
use crate::config::{model, schema};

impl Cx<'_> {
    pub(super) fn trusted_proxies(&self, f: &schema::Firewall) -> R<Vec<ipnet::IpNet>> {
        match &f.trusted_proxies {
            None => Ok(Vec::new()),
            Some(list) => self.nets(list, "firewall.trusted_proxies"),
        }
    }

    pub(super) fn bans(&self, b: &schema::Bans) -> R<Option<model::BanPolicy>> {
        match &b.after {
            None => Ok(None),
            Some(a) if *a.get_ref() == 0 => Err(self.at(a, "bans.after", "at least 1 violation")),
            Some(a) => Ok(Some(model::BanPolicy {
                after: *a.get_ref(),
                window: self.duration(&b.window, "bans.window", d::BAN_WINDOW)?,
                duration: self.duration(&b.duration, "bans.duration", d::BAN_DURATION)?,
            })),
        }
    }
}
