//! `[[rule]]`: the firewall's request rules. Each has a unique name,
//! optional listeners, conditions (`[rule.match]`: methods, host, path
//! prefix or regex, header, query, client networks, SNI) and an action
//! (allow, deny, tarpit, rate_limit with its rate, burst and key, or log).

use std::num::NonZeroU32;

use toml::Spanned;

use super::{Cx, R};
use crate::config::defaults as d;
use crate::config::model::{self, Action, Condition, HeaderTest, KeyPart};
use crate::config::path::normalize;
use crate::config::schema;

impl Cx<'_> {
    /// The rules; `redis`: whether `[cluster] redis` is set, which
    /// `scope = "cluster"` needs.
    pub(super) fn rules(
        &self,
        rules: &[schema::Rule],
        listeners: &[String],
        redis: bool,
    ) -> R<Vec<model::Rule>> {
        let mut out: Vec<model::Rule> = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            let key = format!("rule[{i}]");
            if out.iter().any(|x| &x.name == r.name.get_ref()) {
                return Err(self.at(&r.name, &format!("{key}.name"), "rule names must be unique"));
            }
            let conditions = self.conditions(r, &key)?;
            let action = self.action(r, &key, redis)?;
            let scope = match &r.listeners {
                None => None,
                Some(ls) => Some(self.known_names(ls, &format!("{key}.listeners"), listeners)?),
            };
            out.push(model::Rule {
                name: r.name.get_ref().clone(),
                listeners: scope,
                conditions,
                action,
            });
        }
        Ok(out)
    }

    /// `[rule.match]`, in the order the conditions are listed there.
    fn conditions(&self, r: &schema::Rule, key: &str) -> R<Vec<Condition>> {
        let m = &r.conditions;
        let mut conditions = Vec::new();
        if let Some(ms) = &m.methods {
            let mut methods = Vec::new();
            for s in ms.get_ref() {
                methods.push(
                    http::Method::from_bytes(s.to_ascii_uppercase().as_bytes()).map_err(|_| {
                        self.at(
                            ms,
                            &format!("{key}.match.methods"),
                            format!("`{s}` is not a method"),
                        )
                    })?,
                );
            }
            conditions.push(Condition::Methods(methods));
        }
        if let Some(h) = &m.host {
            let v = h.get_ref().to_ascii_lowercase();
            conditions.push(Condition::Host(
                v.strip_prefix('*').map_or(v.clone(), str::to_string),
            ));
        }
        let no_case = m.path_case_insensitive == Some(true);
        if m.path_case_insensitive.is_some() && m.path_prefix.is_none() && m.path_regex.is_none() {
            return Err(self.at(
                &r.name,
                &format!("{key}.match.path_case_insensitive"),
                "applies to `path_prefix` or `path_regex`, and this rule has neither",
            ));
        }
        if let Some(p) = &m.path_prefix {
            if !p.get_ref().starts_with('/') {
                return Err(self.at(
                    p,
                    &format!("{key}.match.path_prefix"),
                    "a path prefix starts with `/`",
                ));
            }
            let n = normalize(p.get_ref())
                .map_err(|e| self.at(p, &format!("{key}.match.path_prefix"), e.to_string()))?;
            conditions.push(if no_case {
                Condition::PathPrefixNoCase(n)
            } else {
                Condition::PathPrefix(n)
            });
        }
        let regex = |s: &Spanned<String>, k: &str, no_case: bool| {
            regex::RegexBuilder::new(s.get_ref())
                .case_insensitive(no_case)
                .build()
                .map_err(|e| self.at(s, &format!("{key}.match.{k}"), format!("invalid regex: {e}")))
        };
        if let Some(p) = &m.path_regex {
            conditions.push(Condition::PathRegex(regex(p, "path_regex", no_case)?));
        }
        if let Some(h) = &m.header {
            let name = http::HeaderName::from_bytes(h.name.get_ref().as_bytes())
                .map_err(|_| self.at(&h.name, &format!("{key}.match.header.name"), "not a header name"))?;
            let test = match (&h.equals, &h.regex) {
                (Some(e), None) => HeaderTest::Equals(e.clone()),
                (None, Some(r)) => HeaderTest::Regex(regex(r, "header.regex", false)?),
                (None, None) => HeaderTest::Present,
                (Some(_), Some(r)) => {
                    return Err(self.at(
                        r,
                        &format!("{key}.match.header"),
                        "set `equals` or `regex`, not both",
                    ))
                }
            };
            conditions.push(Condition::Header { name, test });
        }
        if let Some(q) = &m.query {
            conditions.push(Condition::Query {
                name: q.name.clone(),
                equals: q.equals.clone(),
            });
        }
        if let Some(c) = &m.client {
            conditions.push(Condition::Client(self.nets(c, &format!("{key}.match.client"))?));
        }
        if let Some(s) = &m.sni {
            conditions.push(Condition::Sni(s.to_ascii_lowercase()));
        }
        Ok(conditions)
    }

    /// `action` and its settings: the answer of deny and tarpit, the
    /// delay of tarpit, the limit of rate_limit.
    fn action(&self, r: &schema::Rule, key: &str, redis: bool) -> R<Action> {
        let status = match &r.status {
            None => d::DENY_STATUS,
            Some(s) => http::StatusCode::from_u16(*s.get_ref())
                .ok()
                .filter(|c| c.is_client_error() || c.is_server_error())
                .ok_or_else(|| self.at(s, &format!("{key}.status"), "a 4xx or 5xx status"))?,
        };
        let body = r.body.clone().unwrap_or_else(|| {
            format!(
                "{} {}\n",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )
        });
        if let (Some(s), false) = (&r.scope, r.action.get_ref() == "rate_limit") {
            return Err(self.at(s, &format!("{key}.scope"), "only rate_limit rules take `scope`"));
        }
        Ok(match r.action.get_ref().as_str() {
            "allow" => Action::Allow,
            "rate_limit" => self.rate_limit(r, key, redis)?,
            "log" => Action::Log,
            "deny" => Action::Deny { status, body },
            "tarpit" => Action::Tarpit {
                delay: self.duration(&r.delay, &format!("{key}.delay"), d::TARPIT_DELAY)?,
                status,
                body,
            },
            other => {
                return Err(self.at(
                    &r.action,
                    &format!("{key}.action"),
                    format!("unknown action `{other}`: use allow, deny, tarpit, rate_limit or log"),
                ))
            }
        })
    }

    /// `rate` (required), `burst` (default: the rate), `key` and `scope`.
    fn rate_limit(&self, r: &schema::Rule, key: &str, redis: bool) -> R<Action> {
        let nz = |v: &Option<Spanned<u32>>, name: &str, default: Option<u32>| {
            let n = v.as_ref().map(|x| *x.get_ref()).or(default).unwrap_or(0);
            NonZeroU32::new(n).ok_or_else(|| {
                let at = v.as_ref().map_or(r.action.span(), |x| x.span());
                self.err(
                    at,
                    &format!("{key}.{name}"),
                    format!("rate_limit needs `{name}` of at least 1"),
                )
            })
        };
        let per_second = nz(&r.rate, "rate", None)?;
        let burst = nz(&r.burst, "burst", Some(per_second.get()))?;
        let names: Vec<&str> = match &r.key {
            None => d::RATE_KEY.to_vec(),
            Some(k) => k.get_ref().iter().map(String::as_str).collect(),
        };
        let at = r.key.as_ref().map_or(r.action.span(), |x| x.span());
        let mut parts = Vec::new();
        for k in names {
            parts.push(match k {
                "ip" => KeyPart::Ip,
                "route" => KeyPart::Route,
                "global" => KeyPart::Global,
                h => match h
                    .strip_prefix("header:")
                    .map(|n| http::HeaderName::from_bytes(n.as_bytes()))
                {
                    Some(Ok(name)) => KeyPart::Header(name),
                    _ => {
                        return Err(self.err(
                            at.clone(),
                            &format!("{key}.key"),
                            format!("`{k}`: use ip, header:NAME, route or global"),
                        ))
                    }
                },
            });
        }
        let cluster = match &r.scope {
            None => false,
            Some(s) => match s.get_ref().as_str() {
                "local" => false,
                "cluster" if redis => true,
                "cluster" => {
                    return Err(self.at(
                        s,
                        &format!("{key}.scope"),
                        "`scope = \"cluster\"` needs `[cluster] redis = \"redis://HOST:PORT\"`",
                    ))
                }
                other => {
                    return Err(self.at(
                        s,
                        &format!("{key}.scope"),
                        format!("unknown scope `{other}`: use local or cluster"),
                    ))
                }
            },
        };
        Ok(Action::RateLimit {
            per_second,
            burst,
            key: parts,
            cluster,
        })
    }
}
