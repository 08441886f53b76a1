//! Refusals: every request rampart turns away as the client's fault,
//! whichever path found it (the HTTP/1.1 engine refusing a head, or the
//! pipeline), is counted by reason (`rampart_requests_refused_total`),
//! recorded as a firewall event, and counted towards an automatic ban.

use std::fmt::Display;
use std::net::IpAddr;

use super::rescue::ProxyError;
use crate::runtime::Runtime;

/// Records `e`, when it is a refusal, of `client` on listener slot
/// `listener`; `what` describes the request for the firewall's events.
pub fn record(rt: &Runtime, listener: usize, client: IpAddr, e: &ProxyError, what: impl Display) {
    let (Some(why), Some(violation)) = (e.refusal(), e.violation()) else {
        return;
    };
    if let Some(Some(l)) = rt.listeners.get(listener) {
        l.stats.refused(why);
    }
    rt.bans.violation(client, violation);
    let (rule, action) = match e {
        ProxyError::Denied { rule, status, .. } if status.as_u16() == 429 => (rule.as_str(), "rate_limit"),
        ProxyError::Denied { rule, .. } => (rule.as_str(), "deny"),
        _ => (violation, "reject"),
    };
    rt.events.record(client, rule, action, what);
}
