//! The running state: what one configuration becomes once its sockets are
//! bound. [`Runtime`] holds the listeners' request settings (routers,
//! firewall rules, certificates), the pools with their balancers and
//! budgets, and the shared firewall state; it sits behind an `ArcSwap`, so a
//! reload or an admin change publishes a new one while requests in flight
//! keep the one they started with. [`Bindings`] is what outlives every
//! rebuild (bound addresses, counters, bans, rate-limit buckets).
//!
//! The proxy reads it per request; metrics, health checks and alerts read
//! it too, without knowing the proxy.
//!
//! Exposes [`Runtime`], [`PoolRt`], [`ListenerRt`], [`Bindings`],
//! [`retire_gone`] and the [`router`].

mod readiness;
pub mod router;

pub use readiness::Readiness;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use http::HeaderValue;

use crate::balancer::budget::{PoolStats, RetryBudget};
use crate::balancer::{Backend, Balancer, Health, HealthGate};
use crate::config::model::{self, HealthCheck, ListenerKind, Model, Outlier, Timeouts, UpstreamProtocol};
use crate::firewall::admission::ConnFilter;
use crate::stats::{ListenerStats, StatsStore};
use router::Router;

/// Everything the pipeline needs from one configuration.
#[derive(Debug)]
pub struct Runtime {
    pub timeouts: Timeouts,
    pub limits: model::Limits,
    /// Count requests per listener, route and server.
    pub metrics_enabled: bool,
    pub access_log: Option<Arc<crate::accesslog::AccessLog>>,
    pub bans: Arc<crate::firewall::bans::Bans>,
    /// Peers whose PROXY header or `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Per-client connection limits (None = no limits).
    pub conn_limits: Option<Arc<crate::firewall::conn_limits::ConnLimits>>,
    pub events: Arc<crate::firewall::events::Events>,
    /// Recent failing requests and changes (outlives reloads).
    pub journal: Arc<crate::stats::journal::Journal>,
    /// With `[fleet]`: the revision applied and etcd's state.
    pub fleet_stats: Option<Arc<crate::stats::FleetStats>>,
    /// With `[fleet]`: this instance's name in it.
    pub fleet_node: Option<String>,
    /// Shared state with the other instances, when configured.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// The fleet view's peers, when configured.
    pub fleet: Option<Arc<crate::cluster::fleet::Fleet>>,
    pub pools: Vec<PoolRt>,
    /// Indexed by listener slot (stable across reloads); `None` for slots
    /// of listeners that are gone.
    pub listeners: Vec<Option<ListenerRt>>,
    /// ACME HTTP-01 answers to serve.
    pub acme_http01: Arc<AcmeHttp01>,
    /// `[waf]`: the rules every request goes through (None: no WAF, and
    /// nothing of it on the request path).
    pub waf: Option<model::WafSettings>,
}

/// A pool as the proxy uses it.
#[derive(Debug)]
pub struct PoolRt {
    pub name: String,
    pub balancer: Balancer,
    pub protocol: UpstreamProtocol,
    pub max_idle: usize,
    /// 0 = no limit on requests in flight to the pool.
    pub max_requests: u32,
    pub retries: u32,
    /// See [`model::Pool::per_try_timeout`].
    pub per_try_timeout: Option<std::time::Duration>,
    pub budget: Arc<RetryBudget>,
    pub stats: Arc<PoolStats>,
    pub outlier: Outlier,
    /// The pool has an active health check.
    pub has_check: bool,
    pub health_check: Option<HealthCheck>,
    /// A `mode = "tcp"` listener relays to this pool.
    pub tcp: bool,
    /// TLS to the servers; None: plaintext.
    pub tls: Option<UpstreamTls>,
}

impl PoolRt {
    /// Whether the pool's check is `mysql` (its servers have database roles).
    pub fn is_database(&self) -> bool {
        matches!(
            self.health_check,
            Some(HealthCheck {
                kind: crate::config::model::CheckKind::Mysql { .. },
                ..
            })
        )
    }
}

/// Per-listener request handling settings.
#[derive(Debug)]
pub struct ListenerRt {
    pub name: String,
    /// The name again, shared with access log records.
    pub log_name: Arc<str>,
    pub https: bool,
    pub router: Router,
    /// Plain listeners that only redirect: the HTTPS port to send clients to.
    pub redirect_port: Option<u16>,
    pub hsts: Option<HeaderValue>,
    /// `Alt-Svc` for the TCP side, when the listener serves HTTP/3.
    pub alt_svc: Option<HeaderValue>,
    pub stats: Arc<ListenerStats>,
    /// What decides about a new connection, before TLS.
    pub admission: Arc<ConnFilter>,
    /// The firewall rules that apply to this listener, in order.
    pub rules: Vec<crate::firewall::rules::RuleRt>,
    /// Certificates served, for metrics, alerts and the dashboard.
    certificates: Vec<CertInfo>,
    /// `mode = "tcp"`: the pool connections are relayed to.
    pub tcp_pool: Option<String>,
    /// A database endpoint over `tcp_pool`.
    pub db_endpoint: Option<crate::config::model::DbEndpoint>,
    /// A PROXY protocol header sent to the server first.
    pub send_proxy: Option<crate::config::model::ProxyVersion>,
    /// With ACME: the first name and the issued certificate's expiry (0
    /// until one is issued), kept up to date by the ACME task.
    acme: Option<(String, Arc<std::sync::atomic::AtomicI64>)>,
    /// With ACME: the names ordered.
    acme_names: Vec<String>,
}

impl ListenerRt {
    /// Certificates served (name, expiry as Unix seconds), for metrics and
    /// alerts: the ACME certificate once issued, else the configured ones.
    pub fn certificates(&self) -> Vec<(String, i64)> {
        self.certificate_details()
            .into_iter()
            .map(|c| (c.name, c.not_after))
            .collect()
    }

    /// The same with each certificate's names and issuer.
    pub fn certificate_details(&self) -> Vec<CertInfo> {
        if let Some((name, at)) = &self.acme {
            let at = at.load(std::sync::atomic::Ordering::Relaxed);
            if at > 0 {
                return vec![CertInfo {
                    name: name.clone(),
                    sans: self.acme_names.clone(),
                    issuer: "ACME".to_string(),
                    not_after: at,
                }];
            }
        }
        self.certificates.clone()
    }
}

/// A certificate a listener serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The first name it is selected for.
    pub name: String,
    /// The names it holds.
    pub sans: Vec<String>,
    pub issuer: String,
    /// Expiry, Unix seconds.
    pub not_after: i64,
}

/// Where things really are, which a model alone does not say: each
/// listener's slot and bound address, each origin's bound address.
#[derive(Debug, Default, Clone)]
pub struct Bindings {
    pub listeners: HashMap<String, (usize, SocketAddr)>,
    pub origins: HashMap<String, SocketAddr>,
    /// Counters that outlive reloads.
    pub stats: Arc<StatsStore>,
    /// The generated local certificate (name, expiry), when one is in use.
    pub local_cert: Option<CertInfo>,
    /// The running access log, when enabled.
    pub access_log: Option<Arc<crate::accesslog::AccessLog>>,
    /// Bans (they outlive reloads).
    pub bans: Arc<crate::firewall::bans::Bans>,
    /// Per-client connection limits, kept across reloads that keep them.
    pub conn_limits: Option<Arc<crate::firewall::conn_limits::ConnLimits>>,
    /// Recent rejections and the clients blocked most often.
    pub events: Arc<crate::firewall::events::Events>,
    /// Rate-limit buckets, one set per rule, kept across rebuilds.
    pub limiters: Arc<crate::firewall::rules::RuleLimiters>,
    /// The TLS client configuration of each pool with `[pool.tls]`, by
    /// pool name (built by the application, which owns TLS material), with
    /// the generation it was built in.
    pub upstream_tls: HashMap<String, (Arc<rustls::ClientConfig>, usize)>,
    /// ACME HTTP-01 answers (they outlive reloads).
    pub acme_http01: Arc<AcmeHttp01>,
    /// Shared state with the other instances (`[cluster] redis`).
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// The other instances' stats (`[cluster] peers`).
    pub fleet: Option<Arc<crate::cluster::fleet::Fleet>>,
    /// The expiry of each ACME listener's issued certificate, by listener.
    pub acme_expiry: HashMap<String, Arc<std::sync::atomic::AtomicI64>>,
}

/// ACME HTTP-01 answers being validated: token -> key authorization,
/// served on every plain listener under `/.well-known/acme-challenge/`.
#[derive(Debug, Default)]
pub struct AcmeHttp01 {
    answers: std::sync::Mutex<HashMap<String, String>>,
    /// How many answers are published: read on every plain request, so an
    /// atomic rather than the lock.
    count: std::sync::atomic::AtomicUsize,
}

impl AcmeHttp01 {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.answers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn get(&self, token: &str) -> Option<String> {
        self.map().get(token).cloned()
    }

    /// Publishes (or, with None, withdraws) the answer for `token`.
    pub fn set(&self, token: &str, key_authorization: Option<String>) {
        let mut map = self.map();
        match key_authorization {
            Some(k) => map.insert(token.to_string(), k),
            None => map.remove(token),
        };
        self.count.store(map.len(), std::sync::atomic::Ordering::Relaxed);
    }

    pub fn is_empty(&self) -> bool {
        self.count.load(std::sync::atomic::Ordering::Relaxed) == 0
    }
}

/// TLS towards a pool's servers.
#[derive(Clone)]
pub struct UpstreamTls {
    pub connector: tokio_rustls::TlsConnector,
    /// Tells connections made with different settings apart (pooled
    /// connections are shared only within one): a generation number,
    /// new each time the settings are built (never 0, which is plaintext;
    /// never reused, unlike an address).
    pub id: usize,
    /// The name each server's certificate is checked for, by server name.
    pub names: Arc<HashMap<String, rustls::pki_types::ServerName<'static>>>,
    /// rampart shows a client certificate (mTLS).
    pub mutual: bool,
}

impl std::fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("id", &self.id)
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Builds from a model. Servers that `prev` already has (same pool,
    /// name, address and limit) are kept, with their counters, health and
    /// drain state; so are each pool's statistics and retry budget.
    pub fn build(model: &Model, b: &Bindings, prev: Option<&Runtime>) -> Self {
        b.limiters.keep_only(model.rules.iter().map(|r| r.name.as_str()));
        let pools = model
            .pools
            .iter()
            .map(|p| {
                let tcp = model
                    .listeners
                    .iter()
                    .any(|l| l.tcp_pool.as_deref() == Some(p.name.as_str()));
                build_pool(p, b, prev.and_then(|r| r.pool(&p.name)), tcp)
            })
            .collect();
        let slots = b.listeners.values().map(|(slot, _)| slot + 1).max().unwrap_or(0);
        let mut listeners: Vec<Option<ListenerRt>> = (0..slots).map(|_| None).collect();
        let pool_names: Vec<&str> = model.pools.iter().map(|p| p.name.as_str()).collect();
        let trusted: Arc<[ipnet::IpNet]> = model.trusted_proxies.as_slice().into();
        for l in &model.listeners {
            let Some(&(slot, _)) = b.listeners.get(&l.name) else {
                continue;
            };
            let certificates = match &l.kind {
                ListenerKind::Https(s) if s.certs.is_empty() => b.local_cert.iter().cloned().collect(),
                ListenerKind::Https(s) => s
                    .certs
                    .iter()
                    .map(|c| CertInfo {
                        name: c.sni_names.first().cloned().unwrap_or_default(),
                        sans: c.cert_names.clone(),
                        issuer: c.issuer.clone(),
                        not_after: c.not_after,
                    })
                    .collect(),
                ListenerKind::Http { .. } => Vec::new(),
            };
            let (https, redirect_port, hsts) = match &l.kind {
                ListenerKind::Http { redirect_to } => (
                    false,
                    redirect_to
                        .as_deref()
                        .and_then(|n| b.listeners.get(n))
                        .map(|(_, a)| a.port()),
                    None,
                ),
                ListenerKind::Https(s) => (true, None, s.hsts.map(|h| h.header())),
            };
            // The UDP socket is bound on the TCP side's port.
            let alt_svc = match &l.kind {
                ListenerKind::Https(s) if s.http3 => b.listeners.get(&l.name).and_then(|(_, a)| {
                    HeaderValue::from_str(&format!("h3=\":{}\"; ma=86400", a.port())).ok()
                }),
                _ => None,
            };
            listeners[slot] = Some(ListenerRt {
                name: l.name.clone(),
                log_name: Arc::from(l.name.as_str()),
                https,
                router: Router::new(&model.routes, &l.name, &pool_names, &b.stats),
                redirect_port,
                hsts,
                alt_svc,
                stats: b.stats.listener(&l.name),
                admission: Arc::new(ConnFilter {
                    clients: crate::firewall::cidr::CidrSet::from_filter(&l.clients),
                    proxy_protocol: l.proxy_protocol,
                    trusted: trusted.clone(),
                    bans: b.bans.clone(),
                    limits: b.conn_limits.clone(),
                    events: b.events.clone(),
                    stats: b.stats.listener(&l.name),
                }),
                rules: model
                    .rules
                    .iter()
                    .filter(|r| r.listeners.as_ref().is_none_or(|ls| ls.contains(&l.name)))
                    .map(|r| {
                        crate::firewall::rules::RuleRt::new(r.clone(), b.stats.rule(&r.name), &b.limiters)
                    })
                    .collect(),
                certificates,
                tcp_pool: l.tcp_pool.clone(),
                db_endpoint: l.db_endpoint,
                send_proxy: l.send_proxy,
                acme: match &l.kind {
                    ListenerKind::Https(s) => s.acme.as_ref().and_then(|a| {
                        let at = b.acme_expiry.get(&l.name)?;
                        Some((a.names.first().cloned().unwrap_or_default(), at.clone()))
                    }),
                    ListenerKind::Http { .. } => None,
                },
                acme_names: match &l.kind {
                    ListenerKind::Https(s) => s.acme.as_ref().map(|a| a.names.clone()).unwrap_or_default(),
                    ListenerKind::Http { .. } => Vec::new(),
                },
            });
        }
        if let Some(w) = &model.waf {
            for n in w.rules.notes() {
                tracing::info!("waf: {n}");
            }
        }
        Runtime {
            timeouts: model.timeouts,
            limits: model.limits,
            metrics_enabled: model.metrics_enabled,
            access_log: b.access_log.clone(),
            bans: b.bans.clone(),
            trusted_proxies: model.trusted_proxies.clone(),
            conn_limits: b.conn_limits.clone(),
            events: b.events.clone(),
            journal: b.stats.journal.clone(),
            fleet_stats: model.fleet.is_some().then(|| b.stats.fleet.clone()),
            fleet_node: model.fleet.as_ref().map(|f| f.node.clone()),
            pools,
            listeners,
            acme_http01: b.acme_http01.clone(),
            cluster: b.cluster.clone(),
            fleet: b.fleet.clone(),
            waf: model.waf.clone(),
        }
    }

    pub fn pool(&self, name: &str) -> Option<&PoolRt> {
        self.pools.iter().find(|p| p.name == name)
    }
}

fn build_pool(p: &model::Pool, b: &Bindings, prev: Option<&PoolRt>, tcp: bool) -> PoolRt {
    let has_check = p.health_check.is_some();
    let servers = p
        .servers
        .iter()
        .map(|s| {
            let addr = s
                .origin
                .as_ref()
                .and_then(|o| b.origins.get(o))
                .copied()
                .unwrap_or(s.addr);
            let kept = prev.and_then(|pp| {
                pp.balancer
                    .servers()
                    .iter()
                    .find(|k| k.name == s.name && k.addr == addr && k.max_in_flight() == s.max_requests)
                    .map(|k| (k.clone(), pp.has_check))
            });
            match kept {
                Some((k, had_check)) => {
                    k.set_weight(s.weight);
                    if !has_check {
                        // No check any more: no verdict to wait for.
                        k.state.set_health(Health::Unknown);
                    } else if !had_check && k.state.health() == Health::Unknown {
                        // A check was added: a server that was serving keeps
                        // serving until the check says otherwise.
                        k.state.set_health(Health::Up);
                    }
                    k
                }
                None => {
                    let k = Arc::new(Backend::with_limit(
                        s.name.clone(),
                        addr,
                        s.weight,
                        s.max_requests,
                    ));
                    if !has_check && !p.slow_start.is_zero() {
                        k.state.mark_available_now();
                    }
                    k
                }
            }
        })
        .collect();
    let gate = match &p.health_check {
        Some(h) if !h.traffic_when_unknown => HealthGate::UpOnly,
        _ => HealthGate::UnknownOk,
    };
    let tls = p
        .tls
        .as_ref()
        .and_then(|_| b.upstream_tls.get(&p.name))
        .map(|(config, generation)| UpstreamTls {
            mutual: p.tls.as_ref().is_some_and(|t| t.client.is_some()),
            connector: tokio_rustls::TlsConnector::from(config.clone()),
            id: *generation,
            names: Arc::new(
                p.servers
                    .iter()
                    .filter_map(|s| {
                        let name = rustls::pki_types::ServerName::try_from(s.tls_name.clone()).ok()?;
                        Some((s.name.clone(), name))
                    })
                    .collect(),
            ),
        });
    PoolRt {
        tls,
        name: p.name.clone(),
        balancer: Balancer::new(p.algorithm, p.hash_key.clone(), p.sticky_cookie.clone(), servers)
            .with_health(gate, p.slow_start),
        protocol: p.protocol,
        max_idle: p.max_idle_per_server,
        max_requests: p.max_requests,
        retries: p.retries,
        per_try_timeout: p.per_try_timeout,
        budget: Arc::new(match prev {
            Some(pp) => pp.budget.reconfigured(p.retry_budget),
            None => RetryBudget::new(p.retry_budget),
        }),
        stats: prev.map_or_else(Arc::default, |pp| pp.stats.clone()),
        outlier: p.outlier,
        has_check,
        health_check: p.health_check.clone(),
        tcp,
    }
}

/// Retires the servers of `prev` that `next` no longer runs (removed, or
/// replaced by a reload), so that connections kept open for them close.
pub fn retire_gone(prev: &Runtime, next: &Runtime) {
    for p in &prev.pools {
        for s in p.balancer.servers() {
            let kept = next
                .pools
                .iter()
                .any(|np| np.balancer.servers().iter().any(|n| Arc::ptr_eq(n, s)));
            if !kept {
                s.retire();
            }
        }
    }
}
