//! `[alerts]` (where notifications go, how often rules run) and each
//! `[[alert]]`: its kind and what that kind needs (a threshold, a window,
//! a pool or server of this file, a listener, days).

use super::cx::written;
use super::{Cx, R};
use crate::config::defaults as d;
use crate::config::{model, schema};

impl Cx<'_> {
    pub(super) fn alerts(
        &self,
        a: &schema::Alerts,
        rules: &[schema::AlertRule],
        pools: &[model::Pool],
        listeners: &[String],
        writers: &[String],
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
                if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                    return Err(self.at(
                        w,
                        "alerts.webhook",
                        "an http:// or https:// URL with a host is needed",
                    ));
                }
                Some(uri)
            }
        };
        let https = webhook.as_ref().is_some_and(|u| u.scheme_str() == Some("https"));
        let webhook_roots = match &a.webhook_ca {
            None => model::TlsRoots::System,
            Some(c) if !https => {
                return Err(self.at(c, "alerts.webhook_ca", "webhook_ca is for an https:// webhook"));
            }
            Some(c) => self.roots(c, "alerts.webhook_ca")?,
        };
        let mut out = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            let key = format!("alert[{i}]");
            let pool = match &r.pool {
                None => None,
                Some(p) => {
                    if !pools.iter().any(|x| &x.name == p.get_ref()) {
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
            let window = match written(&r.window, d::ALERT_WINDOW) {
                "1s" => "1s",
                "10s" => "10s",
                "60s" => "60s",
                other => {
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
                            let known = pools
                                .iter()
                                .any(|p| p.name == pool && p.servers.iter().any(|x| &x.name == s.get_ref()));
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
                "writer_unavailable" => {
                    let listener = match &r.listener {
                        None => None,
                        Some(l) if writers.contains(l.get_ref()) => Some(l.get_ref().clone()),
                        Some(l) => return Err(self.at(l, &format!("{key}.listener"), format!("no listener with `role = \"writer\"` is named `{}`", l.get_ref()))),
                    };
                    if writers.is_empty() {
                        return Err(self.at(&r.kind, &format!("{key}.kind"), "no listener has `role = \"writer\"`"));
                    }
                    model::AlertKind::WriterUnavailable { listener }
                }
                other => {
                    return Err(self.at(
                        &r.kind,
                        &format!("{key}.kind"),
                        format!("unknown alert kind `{other}`: use qps_above, qps_below, error_ratio_above, p99_above, server_down, pool_down, cert_expiring or writer_unavailable"),
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
            webhook_roots,
            webhook_timeout: self.duration(
                &a.webhook_timeout,
                "alerts.webhook_timeout",
                d::WEBHOOK_TIMEOUT,
            )?,
            webhook_retries: a.webhook_retries.unwrap_or(d::WEBHOOK_RETRIES),
            interval: match self.duration(&a.interval, "alerts.interval", d::ALERT_INTERVAL)? {
                i if i.is_zero() => {
                    return Err(self.at_opt(
                        &a.interval,
                        "alerts.interval",
                        "the interval must be above zero",
                    ));
                }
                i => i,
            },
            rules: out,
        })
    }
}
