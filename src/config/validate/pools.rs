//! `[[pool]]`: how servers are picked (algorithm, hash key, sticky
//! cookie), the protocol towards them, limits, retries and their budget,
//! and each `[[pool.server]]` (an address or one of this file's origins).
//! The pool's health check and outlier detection are in `health.rs`.

use toml::Spanned;

use super::cx::written;
use super::{Cx, R};
use crate::config::defaults as d;
use crate::config::model::{self, Algorithm, HashKey};
use crate::config::schema;
use crate::config::syntax::is_valid_cookie_name;

impl Cx<'_> {
    pub(super) fn pools(&self, ps: &[schema::Pool], origins: &[model::Origin]) -> R<Vec<model::Pool>> {
        let mut out: Vec<model::Pool> = Vec::new();
        for (i, p) in ps.iter().enumerate() {
            let key = format!("pool[{i}]");
            let name = p.name.get_ref().clone();
            if out.iter().any(|o| o.name == name) {
                return Err(self.at(
                    &p.name,
                    &format!("{key}.name"),
                    format!("pool name `{name}` is used twice"),
                ));
            }
            out.push(self.pool(p, &key, origins)?);
        }
        Ok(out)
    }

    fn pool(&self, p: &schema::Pool, key: &str, origins: &[model::Origin]) -> R<model::Pool> {
        let name = p.name.get_ref().clone();
        let algorithm_name = written(&p.algorithm, d::ALGORITHM);
        let algorithm = Algorithm::parse(algorithm_name).ok_or_else(|| {
            self.at_opt(
                &p.algorithm,
                &format!("{key}.algorithm"),
                format!(
                    "unknown algorithm `{algorithm_name}`: use round_robin, weighted, least_requests, p2c_ewma or hash"
                ),
            )
        })?;
        if let Some(h) = &p.hash_key {
            if algorithm != Algorithm::Hash {
                return Err(self.at(
                    h,
                    &format!("{key}.hash_key"),
                    "hash_key is only used with algorithm = \"hash\"",
                ));
            }
        }
        let hash_key = HashKey::parse(written(&p.hash_key, d::HASH_KEY)).ok_or_else(|| {
            self.at_opt(
                &p.hash_key,
                &format!("{key}.hash_key"),
                "use client_ip, header:NAME or cookie:NAME",
            )
        })?;
        if let Some(c) = &p.sticky_cookie {
            if !is_valid_cookie_name(c.get_ref()) {
                return Err(self.at(
                    c,
                    &format!("{key}.sticky_cookie"),
                    format!("`{}` is not a valid cookie name", c.get_ref()),
                ));
            }
        }
        let at = p.protocol.as_ref().map_or(&p.name, |x| x);
        let protocol = match (written(&p.protocol, d::POOL_PROTOCOL), &p.tls) {
            ("http1", _) => model::UpstreamProtocol::Http1,
            ("h2c", None) => model::UpstreamProtocol::H2c,
            ("h2", Some(_)) => model::UpstreamProtocol::H2,
            ("h2c", Some(_)) => {
                return Err(self.at(
                    at,
                    &format!("{key}.protocol"),
                    "h2c is HTTP/2 in cleartext: with [pool.tls] use protocol = \"h2\"",
                ))
            }
            ("h2", None) => {
                return Err(self.at(
                    at,
                    &format!("{key}.protocol"),
                    "h2 is HTTP/2 over TLS: add [pool.tls], or use protocol = \"h2c\" for cleartext",
                ))
            }
            (other, _) => {
                return Err(self.at(
                    at,
                    &format!("{key}.protocol"),
                    format!("unknown protocol `{other}`: use http1, h2 (with [pool.tls]) or h2c"),
                ));
            }
        };
        let tls = match &p.tls {
            None => None,
            Some(t) => Some(self.pool_tls(t, &format!("{key}.tls"))?),
        };
        let servers = self.servers(p, key, origins)?;
        Ok(model::Pool {
            name,
            algorithm,
            hash_key,
            sticky_cookie: p.sticky_cookie.as_ref().map(|c| c.get_ref().clone()),
            protocol,
            max_idle_per_server: p.max_idle_per_server.unwrap_or(d::MAX_IDLE_PER_SERVER),
            max_requests: p
                .max_requests
                .as_ref()
                .map_or(d::POOL_MAX_REQUESTS, |m| *m.get_ref()),
            slow_start: self.duration(&p.slow_start, &format!("{key}.slow_start"), d::SLOW_START)?,
            retries: match &p.retries {
                Some(r) if *r.get_ref() > 10 => {
                    return Err(self.at(r, &format!("{key}.retries"), "at most 10 retries"))
                }
                r => r.as_ref().map_or(d::RETRIES, |r| *r.get_ref()),
            },
            per_try_timeout: match &p.per_try_timeout {
                None => None,
                Some(_) => Some(self.nonzero_duration(
                    &p.per_try_timeout,
                    &format!("{key}.per_try_timeout"),
                    std::time::Duration::ZERO,
                )?),
            },
            retry_budget: self.retry_budget(p, key)?,
            health_check: match &p.health_check {
                None => None,
                Some(h) => Some(self.health_check(h, &format!("{key}.health_check"))?),
            },
            outlier: match &p.outlier {
                None => model::Outlier::default(),
                Some(o) => self.outlier(o, &format!("{key}.outlier"))?,
            },
            tls,
            servers,
        })
    }

    /// The pool's `[[pool.server]]` list: at least one, names unique.
    fn servers(&self, p: &schema::Pool, key: &str, origins: &[model::Origin]) -> R<Vec<model::Server>> {
        let name = p.name.get_ref();
        let none = |at: std::ops::Range<usize>| {
            self.err(
                at,
                &format!("{key}.server"),
                format!("pool `{name}` has no servers: add at least one [[pool.server]]"),
            )
        };
        let list = match &p.servers {
            Some(s) if !s.get_ref().is_empty() => s,
            Some(s) => return Err(none(s.span())),
            None => return Err(none(p.name.span())),
        };
        let mut servers: Vec<model::Server> = Vec::new();
        for (j, s) in list.get_ref().iter().enumerate() {
            let sk = format!("{key}.server[{j}]");
            let server = self.server(p, s, &sk, list, origins)?;
            if servers.iter().any(|o| o.name == server.name) {
                let at = s
                    .address
                    .as_ref()
                    .or(s.origin.as_ref())
                    .map_or(list.span(), |a| a.span());
                return Err(self.err(
                    at,
                    &format!("{sk}.name"),
                    format!("server name `{}` is used twice in pool `{name}`", server.name),
                ));
            }
            servers.push(server);
        }
        Ok(servers)
    }

    fn server(
        &self,
        p: &schema::Pool,
        s: &schema::Server,
        sk: &str,
        list: &Spanned<Vec<schema::Server>>,
        origins: &[model::Origin],
    ) -> R<model::Server> {
        let (addr, origin) = match (&s.address, &s.origin) {
            (Some(a), None) => (self.socket_addr(a, &format!("{sk}.address"))?, None),
            (None, Some(o)) => match origins.iter().find(|x| &x.name == o.get_ref()) {
                Some(x) => (x.addr, Some(x.name.clone())),
                None => {
                    return Err(self.at(
                        o,
                        &format!("{sk}.origin"),
                        format!("no [[origin]] is named `{}`", o.get_ref()),
                    ))
                }
            },
            (Some(a), Some(_)) => {
                return Err(self.at(
                    a,
                    &format!("{sk}.address"),
                    "set either `address` or `origin`, not both",
                ))
            }
            (None, None) => {
                return Err(self.at(
                    list,
                    sk,
                    "a server needs `address = \"IP:PORT\"` or `origin = \"NAME\"`",
                ))
            }
        };
        let weight = match &s.weight {
            None => d::SERVER_WEIGHT,
            Some(w) if *w.get_ref() == 0 => {
                return Err(self.at(
                    w,
                    &format!("{sk}.weight"),
                    "weight must be at least 1 (to stop traffic to a server, remove or drain it)",
                ))
            }
            Some(w) if *w.get_ref() > 10_000 => {
                return Err(self.at(w, &format!("{sk}.weight"), "weight must be at most 10000"))
            }
            Some(w) => *w.get_ref(),
        };
        Ok(model::Server {
            name: s
                .name
                .clone()
                .or_else(|| origin.clone())
                .unwrap_or_else(|| addr.to_string()),
            addr,
            origin,
            weight,
            max_requests: s.max_requests.unwrap_or(d::SERVER_MAX_REQUESTS),
            tls_name: self.tls_name(p, s, sk)?,
        })
    }

    /// `retry_budget_ratio` and `retry_budget_min_per_second`.
    fn retry_budget(&self, p: &schema::Pool, key: &str) -> R<model::RetryBudget> {
        let ratio = match &p.retry_budget_ratio {
            None => d::RETRY_BUDGET_RATIO,
            Some(r) if !(0.0..=1.0).contains(r.get_ref()) => {
                return Err(self.at(
                    r,
                    &format!("{key}.retry_budget_ratio"),
                    "a share between 0.0 and 1.0",
                ))
            }
            Some(r) => *r.get_ref(),
        };
        let min_per_second = p
            .retry_budget_min_per_second
            .as_ref()
            .map_or(d::RETRY_BUDGET_MIN_PER_SECOND, |m| *m.get_ref());
        Ok(model::RetryBudget {
            ratio,
            min_per_second,
        })
    }
}
