//! A pool's fault tolerance: `[pool.health_check]` (active checks: kind,
//! timing, thresholds, what an HTTP check sends and expects) and
//! `[pool.outlier]` (passive ejection).

use toml::Spanned;

use super::cx::written;
use super::{Cx, R};
use crate::config::defaults as d;
use crate::config::{model, schema};

impl Cx<'_> {
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
        let interval = self.duration(&h.interval, &format!("{key}.interval"), d::CHECK_INTERVAL)?;
        let timeout = self.duration(&h.timeout, &format!("{key}.timeout"), d::CHECK_TIMEOUT)?;
        if interval.is_zero() {
            return Err(self.at_opt(
                &h.interval,
                &format!("{key}.interval"),
                "the interval must be above zero",
            ));
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
        let kind = match written(&h.kind, d::CHECK_TYPE) {
            "tcp" => model::CheckKind::Tcp,
            "http" => self.http_check(h, key)?,
            "mysql" => self.mysql_check(h, key)?,
            other => {
                return Err(self.at_opt(
                    &h.kind,
                    &format!("{key}.type"),
                    format!("unknown check type `{other}`: use http, tcp or mysql"),
                ));
            }
        };
        if !matches!(kind, model::CheckKind::Http { .. }) {
            let http_keys = [
                (h.method.as_ref().map(|v| v.span()), "method"),
                (h.path.as_ref().map(|v| v.span()), "path"),
                (h.host.as_ref().map(|v| v.span()), "host"),
                (h.expect_status.as_ref().map(|v| v.span()), "expect_status"),
            ];
            if let Some((Some(span), name)) = http_keys.into_iter().find(|(s, _)| s.is_some()) {
                return Err(self.err(
                    span,
                    &format!("{key}.{name}"),
                    "only `type = \"http\"` checks take this key",
                ));
            }
            if h.body_contains.is_some() {
                return Err(self.at_opt(
                    &h.kind,
                    &format!("{key}.body_contains"),
                    "only `type = \"http\"` checks take this key",
                ));
            }
        }
        if !matches!(kind, model::CheckKind::Mysql { .. }) {
            for (v, name) in [
                (&h.user, "user"),
                (&h.password, "password"),
                (&h.password_file, "password_file"),
            ] {
                if let Some(v) = v {
                    return Err(self.at(
                        v,
                        &format!("{key}.{name}"),
                        "only `type = \"mysql\"` checks take this key",
                    ));
                }
            }
        }
        Ok(model::HealthCheck {
            kind,
            interval,
            timeout,
            jitter: self.duration(&h.jitter, &format!("{key}.jitter"), d::CHECK_JITTER)?,
            rise: positive(&h.rise, "rise", d::CHECK_RISE)?,
            fall: positive(&h.fall, "fall", d::CHECK_FALL)?,
            traffic_when_unknown: h.traffic_when_unknown.unwrap_or(d::TRAFFIC_WHEN_UNKNOWN),
        })
    }

    /// Who a `mysql` check connects as.
    fn mysql_check(&self, h: &schema::HealthCheck, key: &str) -> R<model::CheckKind> {
        let Some(user) = &h.user else {
            return Err(self.at_opt(
                &h.kind,
                &format!("{key}.user"),
                "a mysql check needs `user` (the monitor user)",
            ));
        };
        if user.get_ref().is_empty() {
            return Err(self.at(user, &format!("{key}.user"), "the user name is empty"));
        }
        let password = self
            .secret(
                &h.password,
                &h.password_file,
                &format!("{key}."),
                "password",
                false,
            )?
            .unwrap_or_default();
        Ok(model::CheckKind::Mysql {
            user: user.get_ref().clone(),
            password: model::Password(password),
        })
    }

    /// What an `http` check sends and what answer passes.
    fn http_check(&self, h: &schema::HealthCheck, key: &str) -> R<model::CheckKind> {
        let method = http::Method::from_bytes(written(&h.method, d::CHECK_METHOD).as_bytes())
            .map_err(|_| self.at_opt(&h.method, &format!("{key}.method"), "not an HTTP method"))?;
        let path = match &h.path {
            None => d::CHECK_PATH.to_string(),
            Some(p) if p.get_ref().starts_with('/') && http::Uri::try_from(p.get_ref().as_str()).is_ok() => {
                p.get_ref().clone()
            }
            Some(p) => return Err(self.at(p, &format!("{key}.path"), "a path such as \"/health\"")),
        };
        let items: Vec<&str> = match &h.expect_status {
            None => d::CHECK_EXPECT_STATUS.to_vec(),
            Some(list) => list.get_ref().iter().map(String::as_str).collect(),
        };
        let mut expect = Vec::new();
        for item in items {
            expect.push(parse_status_range(item).ok_or_else(|| {
                self.at_opt(
                    &h.expect_status,
                    &format!("{key}.expect_status"),
                    format!("`{item}` is not a status or range like \"200-299\""),
                )
            })?);
        }
        if let Some(host) = &h.host {
            if http::HeaderValue::from_str(host.get_ref()).is_err() {
                return Err(self.at(host, &format!("{key}.host"), "not a valid Host header value"));
            }
        }
        Ok(model::CheckKind::Http {
            method,
            path,
            host: h.host.as_ref().map(|x| x.get_ref().clone()),
            expect,
            body_contains: h.body_contains.clone(),
        })
    }

    pub(super) fn outlier(&self, o: &schema::Outlier, key: &str) -> R<model::Outlier> {
        let pct = match &o.max_ejected_percent {
            None => d::MAX_EJECTED_PERCENT,
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
            consecutive_failures: o.consecutive_failures.unwrap_or(d::CONSECUTIVE_FAILURES),
            base_ejection_time: self.duration(
                &o.base_ejection_time,
                &format!("{key}.base_ejection_time"),
                d::BASE_EJECTION_TIME,
            )?,
            max_ejected_percent: pct,
            on_5xx: o.on_5xx.unwrap_or(d::ON_5XX),
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
