//! `[[route]]`: which pool a request goes to, by listener, host and path
//! prefix; per-route body limits and forwarded upgrades. A config whose
//! listeners would have no route at all is refused here too.

use toml::Spanned;

use super::{Cx, R};
use crate::config::defaults as d;
use crate::config::{model, schema};

impl Cx<'_> {
    pub(super) fn routes(
        &self,
        rs: &[schema::Route],
        pools: &[model::Pool],
        ls: &[model::Listener],
    ) -> R<Vec<model::Route>> {
        let listener_names: Vec<String> = ls.iter().map(|l| l.name.clone()).collect();
        let mut out = Vec::new();
        for (i, r) in rs.iter().enumerate() {
            let key = format!("route[{i}]");
            let pool = pools
                .iter()
                .position(|p| &p.name == r.pool.get_ref())
                .ok_or_else(|| {
                    let known: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
                    self.at(
                        &r.pool,
                        &format!("{key}.pool"),
                        format!(
                            "no pool is named `{}` (pools defined: {})",
                            r.pool.get_ref(),
                            if known.is_empty() {
                                "none".to_string()
                            } else {
                                known.join(", ")
                            }
                        ),
                    )
                })?;
            let host = match &r.host {
                None => model::HostMatch::Any,
                Some(h) => self.host_match(h, &format!("{key}.host"))?,
            };
            let path_prefix = match &r.path {
                None => d::ROUTE_PATH.to_string(),
                Some(p) if p.get_ref().starts_with('/') => p.get_ref().clone(),
                Some(p) => return Err(self.at(p, &format!("{key}.path"), "a path prefix starts with `/`")),
            };
            let listeners = match &r.listeners {
                None => None,
                Some(names) => Some(self.known_names(names, &format!("{key}.listeners"), &listener_names)?),
            };
            let max_body = self.size(&r.max_body, &format!("{key}.max_body"))?;
            let upgrades = match &r.upgrades {
                None => d::UPGRADES.iter().map(|u| u.to_string()).collect(),
                Some(list) => self.upgrades(list, &format!("{key}.upgrades"))?,
            };
            let waf = match &r.waf {
                None => None,
                Some(m) => Some(match m.get_ref().as_str() {
                    "off" => model::RouteWaf::Off,
                    "detect" => model::RouteWaf::Detect,
                    "block" => model::RouteWaf::Block,
                    other => {
                        return Err(self.at(
                            m,
                            &format!("{key}.waf"),
                            format!("`{other}`: use off, detect or block"),
                        ))
                    }
                }),
            };
            let waf_exclude = match &r.waf_exclude {
                None => crate::waf::Exclusions::default(),
                Some(list) => crate::waf::Exclusions::parse(list.get_ref())
                    .map_err(|e| self.at(list, &format!("{key}.waf_exclude"), e))?,
            };
            out.push(model::Route {
                listeners,
                host,
                path_prefix,
                pool,
                max_body,
                upgrades,
                waf,
                waf_exclude,
            });
        }
        // Listeners that route: not redirect-only, not TCP.
        let routing = ls.iter().any(|l| !is_redirect(l) && l.tcp_pool.is_none());
        if out.is_empty() && !pools.is_empty() && routing {
            // A config with listeners and pools but no routes would answer 404
            // to everything: say so instead of running silently.
            return Err(self.err(
                0..0,
                "route",
                "no [[route]] sends traffic to a pool: add a [[route]] table with `pool = \"NAME\"`",
            ));
        }
        Ok(out)
    }

    /// `example.com` (exact, lower-cased) or `*.example.com` (a suffix).
    fn host_match(&self, h: &Spanned<String>, key: &str) -> R<model::HostMatch> {
        let v = h.get_ref().trim().to_ascii_lowercase();
        if let Some(rest) = v.strip_prefix("*.") {
            if rest.is_empty() || rest.contains('*') {
                return Err(self.at(h, key, "write a wildcard host as `*.example.com`"));
            }
            Ok(model::HostMatch::Suffix(format!(".{rest}")))
        } else if v.is_empty() || v.contains('*') || v.contains('/') {
            Err(self.at(h, key, "a host is `example.com` or `*.example.com`"))
        } else {
            Ok(model::HostMatch::Exact(v))
        }
    }

    /// A route's `upgrades`: protocol names, lower-cased; never `h2c`.
    fn upgrades(&self, list: &Spanned<Vec<String>>, key: &str) -> R<Vec<String>> {
        let mut out = Vec::new();
        for p in list.get_ref() {
            let name = p.trim().to_ascii_lowercase();
            let token = |b: u8| b.is_ascii_alphanumeric() || b"-_.+".contains(&b);
            if name.is_empty() || !name.bytes().all(token) {
                return Err(self.at(
                    list,
                    key,
                    format!("`{p}` is not a protocol name such as `websocket`"),
                ));
            }
            if name == "h2c" {
                return Err(self.at(
                    list,
                    key,
                    "an `h2c` upgrade would turn the connection into an HTTP/2 tunnel past every rule; \
                     use `protocol = \"h2c\"` on the pool to speak HTTP/2 to its servers",
                ));
            }
            out.push(name);
        }
        Ok(out)
    }
}

fn is_redirect(l: &model::Listener) -> bool {
    matches!(l.kind, model::ListenerKind::Http { redirect_to: Some(_) })
}
