//! Metrics: one `prometheus-client` registry, created once and handed to
//! whatever exports (the admin API's `GET /metrics`).
//!
//! Nothing on the request path touches the registry: the proxy, health
//! checks and admin changes update plain atomics on the servers and pools
//! they already hold, and a [`Collector`] reads them when Prometheus
//! scrapes. Names are constants in [`names`].
//!
//! Exposes [`Metrics`].

pub mod names;
pub mod sampler;
mod tcp;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use arc_swap::ArcSwap;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::balancer::{AdminState, Health};
use crate::runtime::Runtime;
use crate::stats;
use crate::units::clock_ms;

/// The registry and what feeds it.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// A registry with rampart's collectors over `runtime`.
    pub fn new(runtime: Arc<ArcSwap<Runtime>>) -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(PoolCollector {
            runtime: runtime.clone(),
        }));
        registry.register_collector(Box::new(tcp::TcpCollector {
            runtime: runtime.clone(),
        }));
        registry.register_collector(Box::new(ClusterCollector {
            runtime: runtime.clone(),
        }));
        registry.register_collector(Box::new(RequestCollector { runtime }));
        registry.register_collector(Box::new(InfoCollector {
            started: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
        }));
        Metrics { registry }
    }

    /// The registry, for components that add their own metrics.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Everything in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        if prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Which rampart this is: its version and when it started, so that queries
/// over many instances can tell builds and restarts apart.
#[derive(Debug)]
struct InfoCollector {
    started: i64,
}

impl Collector for InfoCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        gauge(
            &mut enc,
            names::BUILD_INFO,
            "Always 1; the version is a label",
            &[(vec![("version", env!("CARGO_PKG_VERSION"))], 1)],
        )?;
        gauge(
            &mut enc,
            names::START_TIME,
            "When this process started, in seconds since the Unix epoch",
            &[(vec![], self.started)],
        )
    }
}

/// Shared state with the fleet: reachable or not, decisions made there and
/// made locally instead.
#[derive(Debug)]
struct ClusterCollector {
    runtime: Arc<ArcSwap<Runtime>>,
}

impl Collector for ClusterCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let rt = self.runtime.load();
        let Some(c) = &rt.cluster else { return Ok(()) };
        gauge(
            &mut enc,
            names::CLUSTER_UP,
            "1 while the fleet's Redis is reachable",
            &[(vec![], i64::from(c.is_up()))],
        )?;
        counter(
            &mut enc,
            names::CLUSTER_DECISIONS,
            "Cluster-scope rate-limit decisions made in Redis",
            &[(vec![], c.decisions.load(Relaxed))],
        )?;
        counter(
            &mut enc,
            names::CLUSTER_FALLBACKS,
            "Cluster-scope rate-limit decisions made by the local limiter because Redis could not be reached",
            &[(vec![], c.fallbacks.load(Relaxed))],
        )
    }
}

/// Pools and servers of the current runtime.
#[derive(Debug)]
struct PoolCollector {
    runtime: Arc<ArcSwap<Runtime>>,
}

fn gauge(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: &[(Vec<(&str, &str)>, i64)],
) -> std::fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in rows {
        ConstGauge::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn counter(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: &[(Vec<(&str, &str)>, u64)],
) -> std::fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        ConstCounter::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

impl Collector for PoolCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let rt = self.runtime.load();
        let now = clock_ms();
        let mut up = Vec::new();
        let mut transitions = Vec::new();
        let mut ejected = Vec::new();
        let mut ejections = Vec::new();
        let mut draining = Vec::new();
        let mut in_flight = Vec::new();
        let mut weight = Vec::new();
        let (mut c_opened, mut c_reused, mut c_closed, mut c_open, mut c_idle) =
            (vec![], vec![], vec![], vec![], vec![]);
        let (mut retries, mut overloaded, mut pool_ejections, mut available) =
            (vec![], vec![], vec![], vec![]);
        for p in &rt.pools {
            let pl = vec![("pool", p.name.as_str())];
            retries.push((pl.clone(), p.stats.retries.load(Relaxed)));
            overloaded.push((pl.clone(), p.stats.overloaded.load(Relaxed)));
            pool_ejections.push((pl.clone(), p.stats.ejections.load(Relaxed)));
            available.push((pl.clone(), p.balancer.available_count() as i64));
            for s in p.balancer.servers() {
                let l = vec![("pool", p.name.as_str()), ("server", s.name.as_str())];
                let h = match s.state.health() {
                    Health::Up => 1,
                    Health::Down => 0,
                    Health::Unknown => -1,
                };
                up.push((l.clone(), h));
                transitions.push((l.clone(), s.state.transitions()));
                ejected.push((l.clone(), i64::from(s.state.ejected(now))));
                ejections.push((l.clone(), u64::from(s.state.ejections())));
                draining.push((l.clone(), i64::from(s.state.admin() == AdminState::Draining)));
                in_flight.push((l.clone(), i64::from(s.in_flight())));
                weight.push((l.clone(), i64::from(s.weight())));
                if !p.tcp && p.protocol == crate::config::model::UpstreamProtocol::Http1 {
                    let c = s.conns.counts();
                    c_opened.push((l.clone(), c.opened));
                    c_reused.push((l.clone(), c.reused));
                    c_closed.push((l.clone(), c.closed));
                    c_open.push((l.clone(), i64::try_from(c.open()).unwrap_or(i64::MAX)));
                    c_idle.push((l, i64::try_from(c.idle).unwrap_or(i64::MAX)));
                }
            }
        }
        use names::*;
        gauge(
            &mut enc,
            BACKEND_UP,
            "Health verdict of the active check: 1 up, 0 down, -1 unknown",
            &up,
        )?;
        counter(
            &mut enc,
            BACKEND_HEALTH_TRANSITIONS,
            "Health state changes",
            &transitions,
        )?;
        gauge(
            &mut enc,
            BACKEND_EJECTED,
            "1 while passive checks keep the server ejected",
            &ejected,
        )?;
        counter(
            &mut enc,
            BACKEND_EJECTIONS,
            "Ejections by passive checks",
            &ejections,
        )?;
        gauge(
            &mut enc,
            BACKEND_DRAINING,
            "1 while the server is drained by an operator",
            &draining,
        )?;
        gauge(
            &mut enc,
            BACKEND_IN_FLIGHT,
            "Requests in flight to the server",
            &in_flight,
        )?;
        gauge(&mut enc, BACKEND_WEIGHT, "The server's weight", &weight)?;
        counter(
            &mut enc,
            BACKEND_CONNS_OPENED,
            "HTTP/1.1 connections opened to the server",
            &c_opened,
        )?;
        counter(
            &mut enc,
            BACKEND_CONNS_REUSED,
            "Requests that went out on an idle connection kept open",
            &c_reused,
        )?;
        counter(
            &mut enc,
            BACKEND_CONNS_CLOSED,
            "HTTP/1.1 connections to the server closed",
            &c_closed,
        )?;
        gauge(
            &mut enc,
            BACKEND_CONNS_OPEN,
            "HTTP/1.1 connections to the server open now (idle or carrying a request)",
            &c_open,
        )?;
        gauge(
            &mut enc,
            BACKEND_CONNS_IDLE,
            "HTTP/1.1 connections to the server kept idle now",
            &c_idle,
        )?;
        counter(
            &mut enc,
            POOL_RETRIES,
            "Requests tried again on another server",
            &retries,
        )?;
        counter(
            &mut enc,
            POOL_OVERLOADED,
            "Requests answered 503 because of a concurrency limit",
            &overloaded,
        )?;
        counter(&mut enc, POOL_EJECTIONS, "Ejections in the pool", &pool_ejections)?;
        gauge(
            &mut enc,
            POOL_SERVERS_AVAILABLE,
            "Servers that may take a request now",
            &available,
        )?;
        Ok(())
    }
}

/// A histogram read from [`crate::stats::Histogram`] at scrape time, in seconds.
#[derive(Debug)]
pub(crate) struct ConstHist {
    buckets: Vec<(f64, u64)>,
    count: u64,
    sum: f64,
}

impl ConstHist {
    pub(crate) fn of<const N: usize>(h: &stats::Histogram<N>) -> Self {
        let (b, sum_us) = h.read();
        let mut buckets: Vec<(f64, u64)> = h
            .bounds()
            .iter()
            .zip(b.iter())
            .map(|(le, n)| (*le as f64 / 1e6, *n))
            .collect();
        buckets.push((f64::INFINITY, b[N - 1]));
        ConstHist {
            count: b.iter().sum(),
            sum: sum_us as f64 / 1e6,
            buckets,
        }
    }
}

impl EncodeMetric for ConstHist {
    fn encode(&self, mut encoder: prometheus_client::encoding::MetricEncoder<'_>) -> std::fmt::Result {
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            self.sum,
            self.count,
            &self.buckets,
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// Requests, latencies, connections, bytes, TLS and certificates.
#[derive(Debug)]
struct RequestCollector {
    runtime: Arc<ArcSwap<Runtime>>,
}

type Labels<'a> = Vec<(&'a str, &'a str)>;

fn encode_all<M: EncodeMetric>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    kind: MetricType,
    rows: &[(Labels<'_>, M)],
) -> std::fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, kind)?;
    for (labels, v) in rows {
        v.encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

impl Collector for RequestCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        use names::*;
        use stats::{CLASSES, METHODS};
        let rt = self.runtime.load();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let (mut requests, mut durations, mut conns, mut bytes_in, mut bytes_out) =
            (vec![], vec![], vec![], vec![], vec![]);
        let (mut handshakes, mut failures, mut expiry, mut routes) = (vec![], vec![], vec![], vec![]);
        let (mut aborts, mut refused_by, mut protocols) = (vec![], vec![], vec![]);
        let (mut quic, mut retries) = (vec![], vec![]);
        // Owned here: an ACME listener's certificate changes while running.
        let cert_lists: Vec<(&str, Vec<(String, i64)>)> = rt
            .listeners
            .iter()
            .flatten()
            .map(|l| (l.name.as_str(), l.certificates()))
            .collect();
        for l in rt.listeners.iter().flatten() {
            let name = l.name.as_str();
            let counts = l.stats.requests.counts();
            for (mi, m) in METHODS.iter().enumerate() {
                for (ci, c) in CLASSES.iter().enumerate() {
                    if counts[mi][ci] > 0 {
                        requests.push((
                            vec![("listener", name), ("method", *m), ("code_class", *c)],
                            ConstCounter::new(counts[mi][ci]),
                        ));
                    }
                }
            }
            durations.push((vec![("listener", name)], ConstHist::of(&l.stats.requests.latency)));
            aborts.push((
                vec![("listener", name)],
                ConstCounter::new(l.stats.client_aborts.load(Relaxed)),
            ));
            for (why, n) in stats::Refusal::ALL.iter().zip(l.stats.refusals()) {
                if n > 0 {
                    refused_by.push((
                        vec![("listener", name), ("reason", why.as_str())],
                        ConstCounter::new(n),
                    ));
                }
            }
            conns.push((
                vec![("listener", name)],
                ConstGauge::new(l.stats.connections.load(Relaxed)),
            ));
            bytes_in.push((
                vec![("listener", name)],
                ConstCounter::new(l.stats.bytes_in.load(Relaxed)),
            ));
            bytes_out.push((
                vec![("listener", name)],
                ConstCounter::new(l.stats.bytes_out.load(Relaxed)),
            ));
            for (i, v) in ["1.2", "1.3"].iter().enumerate() {
                handshakes.push((
                    vec![("listener", name), ("version", *v)],
                    ConstCounter::new(l.stats.tls_handshakes[i].load(Relaxed)),
                ));
            }
            failures.push((
                vec![("listener", name)],
                ConstCounter::new(l.stats.tls_failures.load(Relaxed)),
            ));
            quic.push((
                vec![("listener", name)],
                ConstCounter::new(l.stats.quic_handshakes.load(Relaxed)),
            ));
            retries.push((
                vec![("listener", name)],
                ConstCounter::new(l.stats.quic_retries.load(Relaxed)),
            ));
            for (i, p) in ["HTTP/1.1", "HTTP/2", "HTTP/3"].iter().enumerate() {
                protocols.push((
                    vec![("listener", name), ("protocol", *p)],
                    ConstCounter::new(l.stats.protocols[i].load(Relaxed)),
                ));
            }
            for (cert, exp) in cert_lists.iter().filter(|(n, _)| *n == name).flat_map(|(_, c)| c) {
                expiry.push((
                    vec![("listener", name), ("certificate", cert.as_str())],
                    ConstGauge::new(exp - now),
                ));
            }
            for (key, stats) in l.router.routes() {
                let counts = stats.counts();
                for (ci, c) in CLASSES.iter().enumerate() {
                    let n: u64 = counts.iter().map(|m| m[ci]).sum();
                    if n > 0 {
                        routes.push((
                            vec![("listener", name), ("route", key), ("code_class", *c)],
                            ConstCounter::new(n),
                        ));
                    }
                }
            }
        }
        let (mut backend, mut header, mut tls_failures, mut stale) = (vec![], vec![], vec![], vec![]);
        for p in &rt.pools {
            for s in p.balancer.servers() {
                let counts = s.stats.requests.counts();
                for (ci, c) in CLASSES.iter().enumerate() {
                    let n: u64 = counts.iter().map(|m| m[ci]).sum();
                    if n > 0 {
                        backend.push((
                            vec![
                                ("pool", p.name.as_str()),
                                ("server", s.name.as_str()),
                                ("code_class", *c),
                            ],
                            ConstCounter::new(n),
                        ));
                    }
                }
                header.push((
                    vec![("pool", p.name.as_str()), ("server", s.name.as_str())],
                    ConstHist::of(&s.stats.header_latency),
                ));
                stale.push((
                    vec![("pool", p.name.as_str()), ("server", s.name.as_str())],
                    ConstCounter::new(s.stats.stale_retries.load(Relaxed)),
                ));
                if p.tls.is_some() {
                    tls_failures.push((
                        vec![("pool", p.name.as_str()), ("server", s.name.as_str())],
                        ConstCounter::new(s.stats.tls_failures.load(Relaxed)),
                    ));
                }
            }
        }
        encode_all(
            &mut enc,
            REQUESTS,
            "Requests answered, by listener, method and status class",
            MetricType::Counter,
            &requests,
        )?;
        encode_all(
            &mut enc,
            REQUEST_DURATION,
            "Time from a request's arrival to its response header",
            MetricType::Histogram,
            &durations,
        )?;
        encode_all(
            &mut enc,
            ROUTE_REQUESTS,
            "Requests answered, by route and status class",
            MetricType::Counter,
            &routes,
        )?;
        encode_all(
            &mut enc,
            BACKEND_REQUESTS,
            "Requests answered, by pool, server and status class",
            MetricType::Counter,
            &backend,
        )?;
        encode_all(
            &mut enc,
            BACKEND_RESPONSE_HEADER,
            "Time from sending a request to a server to its response header",
            MetricType::Histogram,
            &header,
        )?;
        encode_all(
            &mut enc,
            BACKEND_STALE_RETRIES,
            "Requests sent again on a new connection because the server had closed the reused one",
            MetricType::Counter,
            &stale,
        )?;
        encode_all(
            &mut enc,
            REQUESTS_REFUSED,
            "Requests refused as the client's fault, by reason (framing, bad_chunking, header_timeout, head_too_large, uri_too_long, malformed, not_implemented, bad_path, body_too_large, body_too_slow, body_idle, denied, rate_limited)",
            MetricType::Counter,
            &refused_by,
        )?;
        encode_all(
            &mut enc,
            CLIENT_ABORTED,
            "Requests whose client went away before sending them whole (logged as 499; not held against a server)",
            MetricType::Counter,
            &aborts,
        )?;
        encode_all(
            &mut enc,
            BACKEND_TLS_FAILURES,
            "TLS handshakes to a server that failed (certificate not verified, client certificate refused)",
            MetricType::Counter,
            &tls_failures,
        )?;
        encode_all(
            &mut enc,
            CONNECTIONS_ACTIVE,
            "Open client connections",
            MetricType::Gauge,
            &conns,
        )?;
        encode_all(
            &mut enc,
            BYTES_RECEIVED,
            "Bytes received from clients",
            MetricType::Counter,
            &bytes_in,
        )?;
        encode_all(
            &mut enc,
            BYTES_SENT,
            "Bytes sent to clients",
            MetricType::Counter,
            &bytes_out,
        )?;
        encode_all(
            &mut enc,
            TLS_HANDSHAKES,
            "TLS handshakes completed, by version",
            MetricType::Counter,
            &handshakes,
        )?;
        encode_all(
            &mut enc,
            QUIC_HANDSHAKES,
            "QUIC handshakes started (after the connection filter let the address in)",
            MetricType::Counter,
            &quic,
        )?;
        encode_all(
            &mut enc,
            QUIC_RETRIES,
            "QUIC Retry packets sent: new clients asked to prove their address",
            MetricType::Counter,
            &retries,
        )?;
        encode_all(
            &mut enc,
            CONNECTIONS_BY_PROTOCOL,
            "Client connections by the protocol they speak",
            MetricType::Counter,
            &protocols,
        )?;
        encode_all(
            &mut enc,
            TLS_HANDSHAKE_FAILURES,
            "TLS handshakes that failed or timed out",
            MetricType::Counter,
            &failures,
        )?;
        encode_all(
            &mut enc,
            CERTIFICATE_EXPIRY,
            "Seconds until a served certificate expires",
            MetricType::Gauge,
            &expiry,
        )?;
        // Firewall: every rule's matches (by its action), requests refused by
        // path normalisation, connections refused at accept.
        let mut decisions = Vec::new();
        let mut refused = Vec::new();
        let mut seen_rules = std::collections::HashSet::new();
        for l in rt.listeners.iter().flatten() {
            let bad = l.stats.bad_paths.load(Relaxed);
            decisions.push((
                vec![
                    ("listener", l.name.as_str()),
                    ("rule", "path_normalisation"),
                    ("action", "reject"),
                ],
                ConstCounter::new(bad),
            ));
            refused.push((
                vec![("listener", l.name.as_str())],
                ConstCounter::new(l.stats.refused.load(Relaxed)),
            ));
            for r in &l.rules {
                if seen_rules.insert(r.rule.name.as_str()) {
                    decisions.push((
                        vec![
                            ("listener", "*"),
                            ("rule", r.rule.name.as_str()),
                            ("action", r.rule.action.name()),
                        ],
                        ConstCounter::new(r.hits.load(Relaxed)),
                    ));
                }
            }
        }
        encode_all(
            &mut enc,
            FIREWALL_DECISIONS,
            "Firewall rule matches, by rule and action",
            MetricType::Counter,
            &decisions,
        )?;
        encode_all(
            &mut enc,
            FIREWALL_CONNECTIONS_REFUSED,
            "Connections closed at accept (CIDR filter, ban, connection limit, untrusted PROXY header)",
            MetricType::Counter,
            &refused,
        )?;
        let bans = &rt.bans;
        encode_all(
            &mut enc,
            FIREWALL_BANS_ACTIVE,
            "Clients banned now",
            MetricType::Gauge,
            &[(Vec::new(), ConstGauge::new(bans.active() as i64))],
        )?;
        encode_all(
            &mut enc,
            FIREWALL_BANS,
            "Bans made (automatic and by hand)",
            MetricType::Counter,
            &[(Vec::new(), ConstCounter::new(bans.total.load(Relaxed)))],
        )?;
        encode_all(
            &mut enc,
            FIREWALL_BANNED_REFUSED,
            "Connections of banned clients closed at accept",
            MetricType::Counter,
            &[(Vec::new(), ConstCounter::new(bans.refused.load(Relaxed)))],
        )?;
        encode_all(
            &mut enc,
            FIREWALL_EVENTS_DROPPED,
            "Firewall events counted but not kept for the dashboard (each worker keeps at most 200 a second)",
            MetricType::Counter,
            &[(Vec::new(), ConstCounter::new(rt.events.dropped.load(Relaxed)))],
        )?;
        if let Some(log) = &rt.access_log {
            let written = [(Vec::new(), ConstCounter::new(log.written.load(Relaxed)))];
            let dropped = [(Vec::new(), ConstCounter::new(log.dropped.load(Relaxed)))];
            encode_all(
                &mut enc,
                ACCESS_LOG_LINES,
                "Access log lines written",
                MetricType::Counter,
                &written,
            )?;
            encode_all(
                &mut enc,
                ACCESS_LOG_DROPPED,
                "Access log lines dropped because the buffer was full",
                MetricType::Counter,
                &dropped,
            )?;
        }
        if let Some(w) = &rt.waf {
            let blocked = w.rules.blocked();
            let ids: Vec<String> = blocked.iter().map(|(id, _)| id.to_string()).collect();
            let rows: Vec<(Labels<'_>, ConstCounter)> = blocked
                .iter()
                .zip(&ids)
                .map(|((_, n), id)| (vec![("rule", id.as_str())], ConstCounter::new(*n)))
                .collect();
            encode_all(
                &mut enc,
                WAF_BLOCKED,
                "Requests the web application firewall denied, by the rule that denied them (from 0 again after a reload)",
                MetricType::Counter,
                &rows,
            )?;
        }
        if let Some(f) = &rt.fleet_stats {
            let gauge = |v: i64| [(Vec::new(), ConstGauge::new(v))];
            let counter = |v: u64| [(Vec::new(), ConstCounter::new(v))];
            let revision = i64::try_from(f.revision.load(Relaxed)).unwrap_or(i64::MAX);
            encode_all(
                &mut enc,
                FLEET_REVISION,
                "The fleet revision this instance serves (0: none yet)",
                MetricType::Gauge,
                &gauge(revision),
            )?;
            encode_all(
                &mut enc,
                FLEET_UP,
                "1 while etcd answers, 0 while this instance serves without it",
                MetricType::Gauge,
                &gauge(f.up.load(Relaxed)),
            )?;
            encode_all(
                &mut enc,
                FLEET_APPLIES,
                "Fleet revisions applied",
                MetricType::Counter,
                &counter(f.applies.load(Relaxed)),
            )?;
            encode_all(
                &mut enc,
                FLEET_REFUSALS,
                "Fleet revisions refused (the previous one stays)",
                MetricType::Counter,
                &counter(f.refusals.load(Relaxed)),
            )?;
        }
        Ok(())
    }
}
