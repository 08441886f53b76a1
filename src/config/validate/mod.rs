//! Validation: a deserialized [`schema::File`] becomes a [`Model`], one
//! section at a time, each in its own file; the first mistake found is the
//! error. [`Cx`] (in `cx.rs`) is what every section shares. This file
//! checks `[runtime]` and `[tls]` itself and runs the sections in order:
//!
//! - `limits.rs`: `[timeouts]`, `[limits]`
//! - `listeners.rs`: `[[listener]]` (certificates, client lists)
//! - `origins.rs`: `[[origin]]`
//! - `pools.rs`: `[[pool]]` and its servers; `health.rs`: its
//!   `health_check` and `outlier`
//! - `routes.rs`: `[[route]]`
//! - `observability.rs`: `[log]`, `[admin]`, `[metrics]`, `[access_log]`;
//!   `alerts.rs`: `[alerts]`, `[[alert]]`
//! - `firewall.rs`: `[firewall]`, `[bans]`; `rules.rs`: `[[rule]]`
//! - `topology.rs`: `[topology]`, `[audit]`
//! - `fleet.rs`: `[fleet]`

mod alerts;
mod backend_tls;
mod crl;
mod cx;
mod firewall;
mod fleet;
mod health;
mod limits;
mod listeners;
mod observability;
mod origins;
mod pools;
mod routes;
mod rules;
#[cfg(test)]
mod tests;
mod topology;
mod waf;

pub use crl::crl_ders;
pub(crate) use cx::{Cx, R};

use super::defaults as d;
use super::model::{self, Model};
use super::schema;
use cx::Addresses;

impl Cx<'_> {
    /// The whole file, section by section.
    pub(crate) fn validate(&self, f: schema::File) -> R<Model> {
        let mut model = self.sections(f)?;
        let needs = topology::balancer_needs(&model);
        if let Some(t) = model.topology.as_mut() {
            t.balancer = needs;
        }
        Ok(model)
    }

    fn sections(&self, f: schema::File) -> R<Model> {
        let workers = match &f.runtime.workers {
            Some(w) if *w.get_ref() > 1024 => {
                return Err(self.at(w, "runtime.workers", "at most 1024 worker threads"))
            }
            Some(w) if *w.get_ref() > 0 => *w.get_ref() as usize,
            _ => self.env.cores(),
        };
        let state_dir = self.path(f.runtime.state_dir.as_deref().unwrap_or(d::STATE_DIR));
        let log = self.log(&f.log)?;
        let timeouts = self.timeouts(&f.timeouts)?;
        let mut addresses = Addresses::default();
        let listeners = self.listeners(&f.listeners, &mut addresses)?;
        let origins = self.origins(&f.origins, &mut addresses)?;
        let pools = self.pools(&f.pools, &origins)?;
        self.tcp_pools(&f.listeners, &pools)?;
        let routes = self.routes(&f.routes, &pools, &listeners)?;
        let listener_names: Vec<String> = listeners.iter().map(|l| l.name.clone()).collect();
        let writers: Vec<String> = listeners
            .iter()
            .filter(|l| l.db_endpoint == Some(model::DbEndpoint::Writer))
            .map(|l| l.name.clone())
            .collect();
        let m = Model {
            source: None,
            workers,
            state_dir,
            log,
            timeouts,
            generate_local_ca: f.tls.generate_local_ca.unwrap_or(d::GENERATE_LOCAL_CA),
            admin: self.admin(&f.admin)?,
            metrics_enabled: f.metrics.enabled.unwrap_or(d::METRICS_ENABLED),
            limits: self.limits(&f.limits)?,
            topology: match &f.topology {
                None => None,
                Some(t) => Some(self.topology(t)?),
            },
            max_connections_per_client: f
                .firewall
                .max_connections_per_client
                .unwrap_or(d::MAX_CONNECTIONS_PER_CLIENT),
            new_connections_per_client_per_second: f
                .firewall
                .new_connections_per_client_per_second
                .unwrap_or(d::NEW_CONNECTIONS_PER_CLIENT_PER_SECOND),
            trusted_proxies: self.trusted_proxies(&f.firewall)?,
            bans: self.bans(&f.bans)?,
            access_log: self.access_log(&f.access_log)?,
            alerts: self.alerts(&f.alerts, &f.alert_rules, &pools, &listener_names, &writers)?,
            rules: self.rules(&f.rules, &listener_names, f.cluster.redis.is_some())?,
            cluster: self.cluster(&f.cluster)?,
            peers: self.peers(&f.cluster.peers)?,
            fleet: f.fleet.as_ref().map(|x| self.fleet(x)).transpose()?,
            waf: f.waf.as_ref().map(|x| self.waf(x)).transpose()?,
            audit: self.audit(&f.audit)?,
            listeners,
            pools,
            routes,
            origins,
        };
        if let (Some(problem), Some(f)) = (m.fleet_problem(), &f.fleet) {
            return Err(self.at(&f.etcd, "fleet.secret_key_file", problem));
        }
        Ok(m)
    }
}

impl Cx<'_> {
    /// A TCP listener's pool: it exists, balances connections (what a pool
    /// does per HTTP request is refused rather than silently ignored), and
    /// for a database endpoint tells primaries from replicas.
    fn tcp_pools(&self, listeners: &[schema::Listener], pools: &[model::Pool]) -> R<()> {
        for (i, l) in listeners.iter().enumerate() {
            let Some(p) = &l.pool else { continue };
            let key = format!("listener[{i}].pool");
            let Some(pool) = pools.iter().find(|x| &x.name == p.get_ref()) else {
                return Err(self.at(p, &key, format!("no [[pool]] is named `{}`", p.get_ref())));
            };
            let why = if pool.algorithm == model::Algorithm::P2cEwma {
                Some("its algorithm p2c_ewma weighs request latency: use round_robin, weighted, least_requests or hash")
            } else if pool.algorithm == model::Algorithm::Hash && pool.hash_key != model::HashKey::ClientIp {
                Some("its hash_key reads a header or cookie, which a TCP connection has none of: hash on client_ip")
            } else if pool.sticky_cookie.is_some() {
                Some("its sticky_cookie needs HTTP")
            } else if pool.tls.is_some() || pool.protocol != model::UpstreamProtocol::Http1 {
                Some("TCP mode relays bytes as they are: remove [pool.tls] and `protocol` (TLS to the server is the client's own)")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(self.at(
                    p,
                    &key,
                    format!("pool `{}` cannot take TCP connections: {why}", p.get_ref()),
                ));
            }
            let mysql = matches!(
                pool.health_check,
                Some(model::HealthCheck {
                    kind: model::CheckKind::Mysql { .. },
                    ..
                })
            );
            if let (Some(r), false) = (&l.role, mysql) {
                return Err(self.at(
                    r,
                    &format!("listener[{i}].role"),
                    format!("pool `{}` needs `[pool.health_check] type = \"mysql\"` to tell its primary from its replicas", p.get_ref()),
                ));
            }
        }
        Ok(())
    }
}
