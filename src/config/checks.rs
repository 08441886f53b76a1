//! Validation of the `[admin]` section and of the fault-tolerance parts of
//! a pool (`health_check`, `outlier`, retry budget).

use std::time::Duration;

use toml::Spanned;

use super::env::read_text;
use super::load::{Cx, R};
use super::model;
use super::schema;

impl Cx<'_> {
    pub(super) fn admin(&self, a: &schema::Admin) -> R<model::Admin> {
        let token = match (&a.token, &a.token_file) {
            (Some(_), Some(f)) => {
                return Err(self.at(
                    f,
                    "admin.token_file",
                    "set either `token` or `token_file`, not both",
                ))
            }
            (Some(t), None) if t.get_ref().trim().len() < 16 => {
                return Err(self.at(t, "admin.token", "a token needs at least 16 characters"))
            }
            (Some(t), None) => Some(t.get_ref().trim().to_string()),
            (None, Some(f)) => {
                let path = self.path(f.get_ref());
                let text = read_text(self.env, &path).map_err(|e| {
                    self.at(
                        f,
                        "admin.token_file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                let t = text.lines().next().unwrap_or("").trim().to_string();
                if t.len() < 16 {
                    return Err(self.at(f, "admin.token_file", "the token needs at least 16 characters"));
                }
                Some(t)
            }
            (None, None) => None,
        };
        if a.enabled == Some(false) {
            return Ok(model::Admin { addr: None, token });
        }
        let addr = match &a.address {
            None => "127.0.0.1:9900".parse().ok(),
            Some(s) => Some(self.socket_addr(s, "admin.address")?),
        };
        if let (Some(addr), Some(at)) = (addr, &a.address) {
            if !addr.ip().is_loopback() && token.is_none() {
                return Err(self.at(
                    at,
                    "admin.address",
                    format!("{addr} is not a loopback address: set admin.token (or token_file) to expose the admin API"),
                ));
            }
        }
        Ok(model::Admin { addr, token })
    }

    pub(super) fn retry_budget(&self, p: &schema::Pool, key: &str) -> R<model::RetryBudget> {
        let ratio = match &p.retry_budget_ratio {
            None => 0.2,
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
            .map_or(10, |m| *m.get_ref());
        Ok(model::RetryBudget {
            ratio,
            min_per_second,
        })
    }

    pub(super) fn health_check(&self, h: &schema::HealthCheck, key: &str) -> R<model::HealthCheck> {
        let positive = |v: &Option<Spanned<u32>>, name: &str, default: u32| -> R<u32> {
            match v {
                None => Ok(default),
                Some(n) if *n.get_ref() == 0 || *n.get_ref() > 100 => {
                    Err(self.at(n, &format!("{key}.{name}"), "a count from 1 to 100"))
                }
                Some(n) => Ok(*n.get_ref()),
            }
        };
        let interval = self.duration(&h.interval, &format!("{key}.interval"), Duration::from_secs(2))?;
        let timeout = self.duration(&h.timeout, &format!("{key}.timeout"), Duration::from_secs(1))?;
        if interval.is_zero() {
            let at = h.interval.as_ref().map_or(0..0, |i| i.span());
            return Err(self.err(at, &format!("{key}.interval"), "the interval must be above zero"));
        }
        if timeout.is_zero() || timeout > interval {
            // Point at what the user wrote, and name the default it conflicts with.
            return Err(match (&h.timeout, &h.interval) {
                (Some(t), Some(_)) => self.at(
                    t,
                    &format!("{key}.timeout"),
                    "the timeout must be above zero and at most the interval",
                ),
                (Some(t), None) => self.at(
                    t,
                    &format!("{key}.timeout"),
                    format!(
                        "the timeout must be above zero and at most the interval, which is {interval:?} \
                         by default: shorten the timeout or set `interval`"
                    ),
                ),
                (None, Some(i)) => self.at(
                    i,
                    &format!("{key}.interval"),
                    format!(
                        "the interval must be at least the timeout, which is {timeout:?} by default: \
                         lengthen the interval or set `timeout` to at most {interval:?}"
                    ),
                ),
                (None, None) => self.err(
                    0..0,
                    &format!("{key}.timeout"),
                    "the default timeout exceeds the default interval",
                ),
            });
        }
        let kind = match h.kind.as_ref().map_or("http", |k| k.get_ref().as_str()) {
            "tcp" => model::CheckKind::Tcp,
            "http" => {
                let method = match &h.method {
                    None => http::Method::GET,
                    Some(m) => http::Method::from_bytes(m.get_ref().as_bytes())
                        .map_err(|_| self.at(m, &format!("{key}.method"), "not an HTTP method"))?,
                };
                let path = match &h.path {
                    None => "/".to_string(),
                    Some(p)
                        if p.get_ref().starts_with('/')
                            && http::Uri::try_from(p.get_ref().as_str()).is_ok() =>
                    {
                        p.get_ref().clone()
                    }
                    Some(p) => return Err(self.at(p, &format!("{key}.path"), "a path such as \"/health\"")),
                };
                let expect = match &h.expect_status {
                    None => vec![(200, 399)],
                    Some(list) => {
                        let mut out = Vec::new();
                        for item in list.get_ref() {
                            out.push(parse_status_range(item).ok_or_else(|| {
                                self.at(
                                    list,
                                    &format!("{key}.expect_status"),
                                    format!("`{item}` is not a status or range like \"200-299\""),
                                )
                            })?);
                        }
                        out
                    }
                };
                if let Some(host) = &h.host {
                    if http::HeaderValue::from_str(host.get_ref()).is_err() {
                        return Err(self.at(host, &format!("{key}.host"), "not a valid Host header value"));
                    }
                }
                model::CheckKind::Http {
                    method,
                    path,
                    host: h.host.as_ref().map(|x| x.get_ref().clone()),
                    expect,
                    body_contains: h.body_contains.clone(),
                }
            }
            other => {
                let at = h.kind.as_ref().map_or(0..0, |k| k.span());
                return Err(self.err(
                    at,
                    &format!("{key}.type"),
                    format!("unknown check type `{other}`: use http or tcp"),
                ));
            }
        };
        Ok(model::HealthCheck {
            kind,
            interval,
            timeout,
            jitter: self.duration(&h.jitter, &format!("{key}.jitter"), Duration::ZERO)?,
            rise: positive(&h.rise, "rise", 2)?,
            fall: positive(&h.fall, "fall", 3)?,
            traffic_when_unknown: h.traffic_when_unknown.unwrap_or(false),
        })
    }

    pub(super) fn outlier(&self, o: &schema::Outlier, key: &str) -> R<model::Outlier> {
        let d = model::Outlier::default();
        let pct = match &o.max_ejected_percent {
            None => d.max_ejected_percent,
            Some(p) if *p.get_ref() > 100 => {
                return Err(self.at(
                    p,
                    &format!("{key}.max_ejected_percent"),
                    "a percentage from 0 to 100",
                ))
            }
            Some(p) => *p.get_ref(),
        };
        Ok(model::Outlier {
            consecutive_failures: o.consecutive_failures.unwrap_or(d.consecutive_failures),
            base_ejection_time: self.duration(
                &o.base_ejection_time,
                &format!("{key}.base_ejection_time"),
                d.base_ejection_time,
            )?,
            max_ejected_percent: pct,
            on_5xx: o.on_5xx.unwrap_or(false),
        })
    }
}

/// `"200"` or `"200-299"`.
fn parse_status_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
        None => {
            let v = s.trim().parse().ok()?;
            (v, v)
        }
    };
    ((100..=599).contains(&a) && (100..=599).contains(&b) && a <= b).then_some((a, b))
}

// === impl Cx: access log and alerts ===

impl Cx<'_> {
    pub(super) fn access_log(&self, a: &schema::AccessLog) -> R<Option<model::AccessLog>> {
        let json = match &a.format {
            None => true,
            Some(f) => match f.get_ref().as_str() {
                "json" => true,
                "combined" => false,
                other => {
                    return Err(self.at(
                        f,
                        "access_log.format",
                        format!("unknown format `{other}`: use json or combined"),
                    ))
                }
            },
        };
        let buffer = match &a.buffer {
            Some(b) if *b.get_ref() == 0 || *b.get_ref() > 1_000_000 => {
                return Err(self.at(b, "access_log.buffer", "a number of lines from 1 to 1000000"))
            }
            b => b.as_ref().map_or(8192, |b| *b.get_ref()),
        };
        if a.enabled != Some(true) {
            return Ok(None);
        }
        let path = match a.path.as_deref() {
            None | Some("stdout") | Some("-") => None,
            Some(p) => Some(self.path(p)),
        };
        Ok(Some(model::AccessLog { json, path, buffer }))
    }

    pub(super) fn alerts(
        &self,
        a: &schema::Alerts,
        rules: &[schema::AlertRule],
        pools: &[(String, Vec<String>)],
        listeners: &[String],
    ) -> R<model::Alerts> {
        let webhook = match &a.webhook {
            None => None,
            Some(w) => {
                let uri: http::Uri = w.get_ref().parse().map_err(|_| {
                    self.at(
                        w,
                        "alerts.webhook",
                        "not a URL: write it like \"http://127.0.0.1:9000/hook\"",
                    )
                })?;
                if uri.scheme_str() != Some("http") || uri.host().is_none() {
                    return Err(self.at(w, "alerts.webhook", "an http:// URL with a host is needed"));
                }
                Some(uri)
            }
        };
        let mut out = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            let key = format!("alert[{i}]");
            let pool = match &r.pool {
                None => None,
                Some(p) => {
                    if !pools.iter().any(|(n, _)| n == p.get_ref()) {
                        return Err(self.at(
                            p,
                            &format!("{key}.pool"),
                            format!("no pool is named `{}`", p.get_ref()),
                        ));
                    }
                    Some(p.get_ref().clone())
                }
            };
            let threshold = || {
                r.threshold.as_ref().map(|t| *t.get_ref()).ok_or_else(|| {
                    self.at(
                        &r.kind,
                        &format!("{key}.threshold"),
                        "this kind of alert needs a threshold",
                    )
                })
            };
            let window = match r.window.as_ref().map(|w| w.get_ref().as_str()) {
                None | Some("10s") => "10s",
                Some("1s") => "1s",
                Some("60s") => "60s",
                Some(other) => {
                    let at = r.window.as_ref().map_or(&r.kind, |w| w);
                    return Err(self.at(
                        at,
                        &format!("{key}.window"),
                        format!("window `{other}`: use 1s, 10s or 60s"),
                    ));
                }
            };
            let need_pool = || {
                pool.clone().ok_or_else(|| {
                    self.at(&r.kind, &format!("{key}.pool"), "this kind of alert needs a pool")
                })
            };
            let kind = match r.kind.get_ref().as_str() {
                "qps_above" => model::AlertKind::QpsAbove { pool: pool.clone(), window, threshold: threshold()? },
                "qps_below" => model::AlertKind::QpsBelow { pool: pool.clone(), window, threshold: threshold()? },
                "error_ratio_above" => model::AlertKind::ErrorRatioAbove { pool: pool.clone(), threshold: threshold()? },
                "p99_above" => model::AlertKind::P99Above { pool: pool.clone(), threshold: threshold()? },
                "server_down" => {
                    let pool = need_pool()?;
                    let server = match &r.server {
                        None => None,
                        Some(s) => {
                            let known = pools.iter().any(|(n, ss)| n == &pool && ss.contains(s.get_ref()));
                            if !known {
                                return Err(self.at(s, &format!("{key}.server"), format!("pool `{pool}` has no server `{}`", s.get_ref())));
                            }
                            Some(s.get_ref().clone())
                        }
                    };
                    model::AlertKind::ServerDown { pool, server }
                }
                "pool_down" => model::AlertKind::PoolDown { pool: need_pool()? },
                "cert_expiring" => {
                    let listener = match &r.listener {
                        None => None,
                        Some(l) if listeners.contains(l.get_ref()) => Some(l.get_ref().clone()),
                        Some(l) => return Err(self.at(l, &format!("{key}.listener"), format!("no listener is named `{}`", l.get_ref()))),
                    };
                    let days = r.days.as_ref().map(|d| *d.get_ref()).ok_or_else(|| self.at(&r.kind, &format!("{key}.days"), "cert_expiring needs `days`"))?;
                    model::AlertKind::CertExpiring { listener, days }
                }
                other => {
                    return Err(self.at(
                        &r.kind,
                        &format!("{key}.kind"),
                        format!("unknown alert kind `{other}`: use qps_above, qps_below, error_ratio_above, p99_above, server_down, pool_down or cert_expiring"),
                    ))
                }
            };
            if out.iter().any(|x: &model::AlertRule| &x.name == r.name.get_ref()) {
                return Err(self.at(&r.name, &format!("{key}.name"), "alert names must be unique"));
            }
            out.push(model::AlertRule {
                name: r.name.get_ref().clone(),
                kind,
            });
        }
        Ok(model::Alerts {
            webhook,
            webhook_timeout: self.duration(
                &a.webhook_timeout,
                "alerts.webhook_timeout",
                Duration::from_secs(2),
            )?,
            webhook_retries: a.webhook_retries.unwrap_or(3),
            interval: match self.duration(&a.interval, "alerts.interval", Duration::from_secs(1))? {
                d if d.is_zero() => {
                    let at = a.interval.as_ref().map_or(0..0, |i| i.span());
                    return Err(self.err(at, "alerts.interval", "the interval must be above zero"));
                }
                d => d,
            },
            rules: out,
        })
    }
}

// === impl Cx: firewall ===

impl Cx<'_> {
    /// A listener's client filter from `allow`/`deny` and their files.
    pub(super) fn clients(&self, l: &schema::Listener, key: &str) -> R<model::ClientFilter> {
        use super::syntax as cidr;
        let mut lists: [Vec<ipnet::IpNet>; 2] = [Vec::new(), Vec::new()];
        for (i, (inline, file, name)) in [
            (&l.allow, &l.allow_file, "allow"),
            (&l.deny, &l.deny_file, "deny"),
        ]
        .into_iter()
        .enumerate()
        {
            if let Some(v) = inline {
                for s in v.get_ref() {
                    lists[i].push(
                        cidr::parse_net(s.trim()).map_err(|m| self.at(v, &format!("{key}.{name}"), m))?,
                    );
                }
            }
            if let Some(f) = file {
                let path = self.path(f.get_ref());
                let text = read_text(self.env, &path).map_err(|e| {
                    self.at(
                        f,
                        &format!("{key}.{name}_file"),
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                let nets = cidr::parse_list(&text).map_err(|(line, m)| {
                    self.at(
                        f,
                        &format!("{key}.{name}_file"),
                        format!("{}:{line}: {m}", path.display()),
                    )
                })?;
                lists[i].extend(nets);
            }
        }
        let [allow, deny] = lists;
        Ok(model::ClientFilter { allow, deny })
    }

    pub(super) fn rules(&self, rules: &[schema::Rule], listeners: &[String]) -> R<Vec<model::Rule>> {
        use model::{Action, Condition, HeaderTest, Rule};
        let mut out: Vec<Rule> = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            let key = format!("rule[{i}]");
            if out.iter().any(|x| &x.name == r.name.get_ref()) {
                return Err(self.at(&r.name, &format!("{key}.name"), "rule names must be unique"));
            }
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
                let n = super::path::normalize(p.get_ref())
                    .map_err(|e| self.at(p, &format!("{key}.match.path_prefix"), e.to_string()))?;
                conditions.push(if m.path_case_insensitive == Some(true) {
                    Condition::PathPrefixNoCase(n)
                } else {
                    Condition::PathPrefix(n)
                });
            }
            let regex = |s: &Spanned<String>, k: &str| {
                regex::RegexBuilder::new(s.get_ref())
                    .case_insensitive(m.path_case_insensitive == Some(true) && k == "path_regex")
                    .build()
                    .map_err(|e| self.at(s, &format!("{key}.match.{k}"), format!("invalid regex: {e}")))
            };
            if let Some(p) = &m.path_regex {
                conditions.push(Condition::PathRegex(regex(p, "path_regex")?));
            }
            if let Some(h) = &m.header {
                let name = http::HeaderName::from_bytes(h.name.get_ref().as_bytes()).map_err(|_| {
                    self.at(&h.name, &format!("{key}.match.header.name"), "not a header name")
                })?;
                let test = match (&h.equals, &h.regex) {
                    (Some(e), None) => HeaderTest::Equals(e.clone()),
                    (None, Some(r)) => HeaderTest::Regex(regex(r, "header.regex")?),
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
                let mut nets = Vec::new();
                for s in c.get_ref() {
                    nets.push(
                        super::syntax::parse_net(s)
                            .map_err(|e| self.at(c, &format!("{key}.match.client"), e))?,
                    );
                }
                conditions.push(Condition::Client(nets));
            }
            if let Some(s) = &m.sni {
                conditions.push(Condition::Sni(s.to_ascii_lowercase()));
            }
            let status = match &r.status {
                None => http::StatusCode::FORBIDDEN,
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
            let action = match r.action.get_ref().as_str() {
                "allow" => Action::Allow,
                "rate_limit" => {
                    use model::KeyPart;
                    let nz = |v: &Option<Spanned<u32>>, name: &str, default: Option<u32>| {
                        let n = v.as_ref().map(|x| *x.get_ref()).or(default).unwrap_or(0);
                        std::num::NonZeroU32::new(n).ok_or_else(|| {
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
                    let mut parts = Vec::new();
                    for k in r.key.as_ref().map_or(&vec!["ip".to_string()], |k| k.get_ref()) {
                        let at = r.key.as_ref().map_or(r.action.span(), |x| x.span());
                        parts.push(match k.as_str() {
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
                                        at,
                                        &format!("{key}.key"),
                                        format!("`{k}`: use ip, header:NAME, route or global"),
                                    ))
                                }
                            },
                        });
                    }
                    Action::RateLimit {
                        per_second,
                        burst,
                        key: parts,
                    }
                }
                "log" => Action::Log,
                "deny" => Action::Deny { status, body },
                "tarpit" => Action::Tarpit {
                    delay: self.duration(&r.delay, &format!("{key}.delay"), Duration::from_secs(2))?,
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
            };
            let scope = match &r.listeners {
                None => None,
                Some(ls) => {
                    for n in ls.get_ref() {
                        if !listeners.contains(n) {
                            return Err(self.at(
                                ls,
                                &format!("{key}.listeners"),
                                format!("no listener is named `{n}`"),
                            ));
                        }
                    }
                    Some(ls.get_ref().clone())
                }
            };
            out.push(Rule {
                name: r.name.get_ref().clone(),
                listeners: scope,
                conditions,
                action,
            });
        }
        Ok(out)
    }
}

// === impl Cx: limits ===

impl Cx<'_> {
    pub(super) fn limits(&self, l: &schema::Limits) -> R<model::Limits> {
        let d = model::Limits::default();
        let size = |v: &Option<Spanned<String>>, key: &str| -> R<Option<u64>> {
            match v {
                None => Ok(None),
                Some(s) => crate::units::parse_size(s.get_ref())
                    .map(Some)
                    .map_err(|e| self.at(s, key, e)),
            }
        };
        let max_header_bytes =
            size(&l.max_header_bytes, "limits.max_header_bytes")?.map_or(d.max_header_bytes, |v| v as usize);
        if max_header_bytes < 8192 {
            let at = l.max_header_bytes.as_ref().map_or(0..0, |x| x.span());
            return Err(self.err(
                at,
                "limits.max_header_bytes",
                "at least 8KiB (HTTP/1.1's read buffer cannot be smaller)",
            ));
        }
        let count = |v: &Option<Spanned<usize>>, key: &str, default: usize| -> R<usize> {
            match v {
                Some(n) if *n.get_ref() == 0 => Err(self.at(n, key, "must be at least 1")),
                Some(n) => Ok(*n.get_ref()),
                None => Ok(default),
            }
        };
        Ok(model::Limits {
            max_header_bytes,
            max_headers: count(&l.max_headers, "limits.max_headers", d.max_headers)?,
            max_uri_length: count(&l.max_uri_length, "limits.max_uri_length", d.max_uri_length)?,
            max_body: size(&l.max_body, "limits.max_body")?,
            min_body_rate: size(&l.min_body_rate, "limits.min_body_rate")?.unwrap_or(d.min_body_rate),
            body_grace: self.duration(&l.body_grace, "limits.body_grace", d.body_grace)?,
            http2_max_concurrent_streams: l
                .http2_max_concurrent_streams
                .unwrap_or(d.http2_max_concurrent_streams)
                .max(1),
            http2_max_pending_resets: l.http2_max_pending_resets.unwrap_or(d.http2_max_pending_resets),
        })
    }
}

// === impl Cx: topology ===

impl Cx<'_> {
    pub(super) fn topology(&self, t: &schema::Topology) -> R<model::Topology> {
        use model::{Host, Role, Topology};
        let mut admin = Vec::new();
        for s in t.admin_cidr.get_ref() {
            admin.push(
                super::syntax::parse_net(s).map_err(|e| self.at(&t.admin_cidr, "topology.admin_cidr", e))?,
            );
        }
        let mut hosts: Vec<Host> = Vec::new();
        for (i, h) in t.hosts.get_ref().iter().enumerate() {
            let key = format!("topology.host[{i}]");
            if hosts.iter().any(|x| &x.name == h.name.get_ref()) {
                return Err(self.at(&h.name, &format!("{key}.name"), "host names must be unique"));
            }
            let mut addresses = Vec::new();
            for a in h.addresses.get_ref() {
                addresses.push(a.parse().map_err(|_| {
                    self.at(
                        &h.addresses,
                        &format!("{key}.addresses"),
                        format!("`{a}` is not an IP address"),
                    )
                })?);
            }
            let mut roles = Vec::new();
            for r in h.roles.get_ref() {
                roles.push(Role::parse(r).ok_or_else(|| {
                    self.at(
                        &h.roles,
                        &format!("{key}.roles"),
                        format!("unknown role `{r}`: use lb, web, app, db or monitor"),
                    )
                })?);
            }
            for e in &h.extra {
                if e.contains(['\n', ';', '{', '}']) {
                    return Err(self.at(
                        &h.name,
                        &format!("{key}.extra"),
                        format!("`{e}`: one rule per entry, without `;`, braces or newlines"),
                    ));
                }
            }
            hosts.push(Host {
                name: h.name.get_ref().clone(),
                addresses,
                roles,
                ports: h.ports.clone(),
                extra: h.extra.clone(),
            });
        }
        if hosts.is_empty() {
            return Err(self.at(
                &t.hosts,
                "topology.host",
                "describe at least one [[topology.host]]",
            ));
        }
        Ok(Topology {
            admin,
            ssh_port: t.ssh_port.unwrap_or(22),
            admin_port: t.admin_port.unwrap_or(9900),
            metrics_port: t.metrics_port.unwrap_or(9100),
            db_port: t.db_port.unwrap_or(3306),
            hosts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parse_status_range;

    #[test]
    fn status_ranges() {
        assert_eq!(parse_status_range("200-299"), Some((200, 299)));
        assert_eq!(parse_status_range("204"), Some((204, 204)));
        assert_eq!(parse_status_range("299-200"), None);
        assert_eq!(parse_status_range("2xx"), None);
        assert_eq!(parse_status_range("700"), None);
    }
}
