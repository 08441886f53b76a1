//! Watching rampart: `[log]`, `[admin]` (the admin API's address and
//! token), `[access_log]`; `[metrics]` has only `enabled`, read where the
//! model is put together. Alerts are in `alerts.rs`.

use super::cx::written;
use super::{Cx, R};
use crate::config::defaults as d;
use crate::config::{model, schema};

impl Cx<'_> {
    pub(super) fn log(&self, l: &schema::Log) -> R<model::LogSettings> {
        Ok(model::LogSettings {
            level: l.level.clone(),
            json: match written(&l.format, d::LOG_FORMAT) {
                "json" => Some(true),
                "text" => Some(false),
                "auto" => None,
                other => {
                    return Err(self.at_opt(
                        &l.format,
                        "log.format",
                        format!("unknown format `{other}`: use text, json or auto"),
                    ))
                }
            },
        })
    }

    pub(super) fn admin(&self, a: &schema::Admin) -> R<model::Admin> {
        let token = self.secret(&a.token, &a.token_file, "admin.", "token", true)?;
        if token.as_ref().is_some_and(|t| t.len() < 16) {
            if let Some(v) = &a.token {
                return Err(self.at(v, "admin.token", "a token needs at least 16 characters"));
            }
            if let Some(f) = &a.token_file {
                return Err(self.at(f, "admin.token_file", "the token needs at least 16 characters"));
            }
        }
        if !a.enabled.unwrap_or(d::ADMIN_ENABLED) {
            return Ok(model::Admin { addr: None, token });
        }
        let addr = match &a.address {
            None => d::ADMIN_ADDRESS.parse().ok(),
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

    pub(super) fn access_log(&self, a: &schema::AccessLog) -> R<Option<model::AccessLog>> {
        let json = match written(&a.format, d::ACCESS_LOG_FORMAT) {
            "json" => true,
            "combined" => false,
            other => {
                return Err(self.at_opt(
                    &a.format,
                    "access_log.format",
                    format!("unknown format `{other}`: use json or combined"),
                ))
            }
        };
        let buffer = match &a.buffer {
            Some(b) if *b.get_ref() == 0 || *b.get_ref() > 1_000_000 => {
                return Err(self.at(b, "access_log.buffer", "a number of lines from 1 to 1000000"))
            }
            b => b.as_ref().map_or(d::ACCESS_LOG_BUFFER, |b| *b.get_ref()),
        };
        if !a.enabled.unwrap_or(d::ACCESS_LOG_ENABLED) {
            return Ok(None);
        }
        let path = match a.path.as_deref().unwrap_or(d::ACCESS_LOG_PATH) {
            "stdout" | "-" => None,
            p => Some(self.path(p)),
        };
        Ok(Some(model::AccessLog { json, path, buffer }))
    }
}

impl Cx<'_> {
    /// `[cluster]`: a `redis://` URL (its password kept out of what is shown).
    pub(super) fn cluster(&self, c: &schema::Cluster) -> R<Option<model::ClusterSettings>> {
        let Some(url) = &c.redis else {
            if let Some(t) = &c.timeout {
                return Err(self.at(t, "cluster.timeout", "`timeout` needs `redis`"));
            }
            return Ok(None);
        };
        let text = url.get_ref().trim();
        let rest = text.strip_prefix("redis://").ok_or_else(|| {
            self.at(
                url,
                "cluster.redis",
                "a redis:// URL, e.g. \"redis://127.0.0.1:6379/0\"",
            )
        })?;
        // Read the way the Redis client reads it at start, so that what
        // passes here connects there (database number, wildcard host...).
        let info = redis::IntoConnectionInfo::into_connection_info(text).map_err(|e| {
            self.at(
                url,
                "cluster.redis",
                format!("not a Redis URL rampart can use: {e}"),
            )
        })?;
        let redis::ConnectionAddr::Tcp(host, port) = info.addr().clone() else {
            return Err(self.at(url, "cluster.redis", "a redis:// URL to a TCP address"));
        };
        let (auth, hostpart) = match rest.rsplit_once('@') {
            Some((a, h)) => (Some(a), h),
            None => (None, rest),
        };
        // The port is written out: the host firewalls open exactly it.
        let authority = hostpart.split('/').next().unwrap_or("");
        if !authority.ends_with(&format!(":{port}")) {
            return Err(self.at(
                url,
                "cluster.redis",
                "name the host and port: \"redis://HOST:PORT\"",
            ));
        }
        let shown = match auth {
            Some(_) => format!("redis://***@{hostpart}"),
            None => text.to_string(),
        };
        let timeout = self.duration(&c.timeout, "cluster.timeout", d::CLUSTER_TIMEOUT)?;
        if timeout.is_zero() {
            return Err(self.at_opt(&c.timeout, "cluster.timeout", "the timeout must be above zero"));
        }
        Ok(Some(model::ClusterSettings {
            redis: text.to_string(),
            redis_shown: shown,
            host,
            port,
            timeout,
        }))
    }
}

impl Cx<'_> {
    /// `[cluster] peers`: other instances' admin APIs, each with its token.
    pub(super) fn peers(&self, peers: &[schema::Peer]) -> R<Vec<model::Peer>> {
        let mut out: Vec<model::Peer> = Vec::new();
        for (i, p) in peers.iter().enumerate() {
            let key = format!("cluster.peers[{i}]");
            let addr: std::net::SocketAddr = p.address.get_ref().trim().parse().map_err(|_| {
                self.at(
                    &p.address,
                    &format!("{key}.address"),
                    "an admin address like \"10.0.0.3:9900\"",
                )
            })?;
            let token = self.secret(&p.token, &p.token_file, &format!("{key}."), "token", true)?;
            let name = p.name.as_ref().map_or(addr.to_string(), |n| n.get_ref().clone());
            if out.iter().any(|o| o.name == name) {
                let at = p.name.as_ref().unwrap_or(&p.address);
                return Err(self.at(
                    at,
                    &format!("{key}.name"),
                    format!("peer name `{name}` is used twice"),
                ));
            }
            out.push(model::Peer { name, addr, token });
        }
        Ok(out)
    }
}
