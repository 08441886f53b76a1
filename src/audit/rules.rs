//! `rule-unreachable`: a request rule that an earlier rule always decides
//! first, or that applies only to TCP listeners (where rules do not run).
//!
//! Rule A shadows a later rule B when A ends evaluation (`allow`, `deny`,
//! `tarpit`), covers every listener B covers, and each of A's conditions is
//! implied by one of B's: then every request B matches, A has matched.

use super::{Finding, Severity};
use crate::config::model::{Action, Condition, HeaderTest, Model, Rule};

fn terminal(a: &Action) -> bool {
    matches!(a, Action::Allow | Action::Deny { .. } | Action::Tarpit { .. })
}

/// Does condition `b` (of the later rule) imply condition `a`?
fn implies(b: &Condition, a: &Condition) -> bool {
    use Condition as C;
    match (a, b) {
        (C::Methods(a), C::Methods(b)) => b.iter().all(|m| a.contains(m)),
        (C::Host(a), C::Host(b)) => a == b || (a.starts_with('.') && b.ends_with(a.as_str())),
        (C::PathPrefix(a), C::PathPrefix(b)) => b.starts_with(a.as_str()),
        (C::PathPrefixNoCase(a), C::PathPrefix(b) | C::PathPrefixNoCase(b)) => {
            b.to_ascii_lowercase().starts_with(&a.to_ascii_lowercase())
        }
        (C::PathRegex(a), C::PathRegex(b)) => a.as_str() == b.as_str(),
        (C::Header { name: an, test: at }, C::Header { name: bn, test: bt }) => {
            an == bn
                && match (at, bt) {
                    (HeaderTest::Present, _) => true,
                    (HeaderTest::Equals(x), HeaderTest::Equals(y)) => x == y,
                    (HeaderTest::Regex(x), HeaderTest::Regex(y)) => x.as_str() == y.as_str(),
                    _ => false,
                }
        }
        (C::Query { name: an, equals: ae }, C::Query { name: bn, equals: be }) => {
            an == bn && (ae.is_none() || ae == be)
        }
        (C::Client(a), C::Client(b)) => b.iter().all(|n| a.iter().any(|x| x.contains(n))),
        (C::Sni(a), C::Sni(b)) => a == b,
        _ => false,
    }
}

fn covers(a: &Rule, b: &Rule) -> bool {
    match (&a.listeners, &b.listeners) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => b.iter().all(|l| a.contains(l)),
    }
}

fn shadows(a: &Rule, b: &Rule) -> bool {
    terminal(&a.action)
        && covers(a, b)
        && a.conditions
            .iter()
            .all(|ca| b.conditions.iter().any(|cb| implies(cb, ca)))
}

pub(super) fn check(m: &Model, out: &mut Vec<Finding>) {
    let tcp: Vec<&str> = m
        .listeners
        .iter()
        .filter(|l| l.tcp_pool.is_some())
        .map(|l| l.name.as_str())
        .collect();
    for (i, b) in m.rules.iter().enumerate() {
        if let Some(a) = m.rules[..i].iter().find(|a| shadows(a, b)) {
            out.push(Finding::new(
                "rule-unreachable",
                Severity::Low,
                format!("rule {}", b.name),
                format!(
                    "rule `{}` can never match: every request it matches is first decided by rule `{}` ({})",
                    b.name,
                    a.name,
                    a.action.name()
                ),
                format!(
                    "move `{}` above `{}`, narrow `{}`, or remove the dead rule",
                    b.name, a.name, a.name
                ),
            ));
        } else if let Some(ls) = &b.listeners {
            if !ls.is_empty() && ls.iter().all(|l| tcp.contains(&l.as_str())) {
                out.push(Finding::new(
                    "rule-unreachable",
                    Severity::Low,
                    format!("rule {}", b.name),
                    format!(
                        "rule `{}` applies only to TCP listeners ({}), where request rules do not run",
                        b.name,
                        ls.join(", ")
                    ),
                    "use the listener's `allow`/`deny` lists for TCP listeners, or remove the rule",
                ));
            }
        }
    }
}
