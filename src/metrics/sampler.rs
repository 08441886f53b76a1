//! Once a second, a snapshot of every cumulative counter goes into a ring
//! of the last 61 snapshots. Rates (1 s, 10 s, 60 s) and latency
//! percentiles over a window come from the difference between now and a
//! snapshot that old; the request path never computes any of it.
//!
//! Exposes [`Sampler`], which also renders the JSON of `GET /api/stats` and
//! publishes it once a second to `GET /api/stats/stream` subscribers. It
//! keeps the last 15 minutes of what the dashboard draws (request rate,
//! p50 and p99, 5xx share, each server's rate: a few numbers a second, in
//! a bounded ring), served with `GET /api/stats?history=1` so that charts
//! opened after traffic start full.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use serde_json::{json, Map, Value};
use tokio::sync::broadcast;

use crate::balancer::{db_eligible, AdminState, Backend, Health, HealthGate};
use crate::config::model::DbEndpoint;
use crate::runtime::{ListenerRt, PoolRt, Runtime};
use crate::stats::{Histogram, RequestStats, TcpStats, BUCKETS_US, CLASSES, METHODS};
use crate::units::clock_ms;

const RING: usize = 61;
pub use crate::stats::HISTORY_SECONDS as HISTORY;
const NB: usize = BUCKETS_US.len() + 1;

/// Cumulative counts of one listener, route, pool or server at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    pub counts: [[u64; 5]; 8],
    pub buckets: [u64; NB],
    pub sum_us: u64,
}

impl Default for Point {
    fn default() -> Self {
        Point {
            counts: [[0; 5]; 8],
            buckets: [0; NB],
            sum_us: 0,
        }
    }
}

impl Point {
    fn of(r: &RequestStats) -> Point {
        let (buckets, sum_us) = r.latency.read();
        Point {
            counts: r.counts(),
            buckets,
            sum_us,
        }
    }

    fn add(&mut self, o: &Point) {
        for (a, b) in self.counts.iter_mut().flatten().zip(o.counts.iter().flatten()) {
            *a += b;
        }
        for (a, b) in self.buckets.iter_mut().zip(&o.buckets) {
            *a += b;
        }
        self.sum_us += o.sum_us;
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    fn class(&self, c: usize) -> u64 {
        self.counts.iter().map(|m| m[c]).sum()
    }
}

/// Every point at one instant.
#[derive(Debug)]
pub struct Sample {
    at: Instant,
    points: BTreeMap<String, Point>,
}

/// A server's request rate and p99 in one second: (pool, server, req/s, p99).
type ServerPoint = (Arc<str>, Arc<str>, Option<f64>, Option<f64>);

/// What the dashboard's charts show of one second.
#[derive(Debug, Clone)]
struct ChartPoint {
    unix_ms: u64,
    qps: Option<f64>,
    qps_5xx: Option<f64>,
    /// p50, p90, p99, p99.9.
    latency: [Option<f64>; 4],
    error_ratio: Option<f64>,
    servers: Vec<ServerPoint>,
}

/// The ring of samples, the chart history and the stream of snapshots.
#[derive(Debug)]
pub struct Sampler {
    ring: Mutex<VecDeque<Arc<Sample>>>,
    charts: Mutex<VecDeque<ChartPoint>>,
    stream: broadcast::Sender<Arc<String>>,
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler {
            ring: Mutex::new(VecDeque::with_capacity(RING)),
            charts: Mutex::new(VecDeque::with_capacity(HISTORY)),
            stream: broadcast::channel(4).0,
        }
    }
}

fn hist_point(h: &Histogram) -> Point {
    let (buckets, sum_us) = h.read();
    Point {
        buckets,
        sum_us,
        ..Point::default()
    }
}

/// Reads every counter of the runtime now.
pub fn sample(rt: &Runtime) -> Sample {
    let mut points = BTreeMap::new();
    let mut all = Point::default();
    for l in rt.listeners.iter().flatten() {
        let p = Point::of(&l.stats.requests);
        all.add(&p);
        points.insert(format!("listener/{}", l.name), p);
        // A route's point is the sum over the listeners it serves.
        for (key, stats) in l.router.routes() {
            points
                .entry(format!("route/{key}"))
                .or_default()
                .add(&Point::of(stats));
        }
    }
    points.insert("all".to_string(), all);
    for p in &rt.pools {
        let mut pool = Point::default();
        for s in p.balancer.servers() {
            let sp = Point::of(&s.stats.requests);
            pool.add(&sp);
            points.insert(format!("server/{}/{}", p.name, s.name), sp);
            points.insert(
                format!("header/{}/{}", p.name, s.name),
                hist_point(&s.stats.header_latency),
            );
        }
        points.insert(format!("pool/{}", p.name), pool);
    }
    Sample {
        at: Instant::now(),
        points,
    }
}

impl Sampler {
    /// Takes a sample every second and publishes the snapshot; runs until aborted.
    pub async fn run(self: Arc<Self>, runtime: Arc<ArcSwap<Runtime>>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let rt = runtime.load_full();
            let s = Arc::new(sample(&rt));
            {
                let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
                if ring.len() == RING {
                    ring.pop_front();
                }
                ring.push_back(s.clone());
            }
            let doc = self.render(&rt, &s);
            self.remember(&doc);
            if self.stream.receiver_count() > 0 {
                let _ = self.stream.send(Arc::new(doc.to_string()));
            }
        }
    }

    /// Snapshots published once a second.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<String>> {
        self.stream.subscribe()
    }

    /// The `GET /api/stats` document, computed now.
    pub fn snapshot(&self, rt: &Runtime) -> Value {
        self.render(rt, &sample(rt))
    }

    /// Keeps what the charts draw of this second's document.
    fn remember(&self, doc: &Value) {
        let t = &doc["totals"];
        let mut servers = Vec::new();
        for p in doc["pools"].as_array().into_iter().flatten() {
            let pool: Arc<str> = p["name"].as_str().unwrap_or("").into();
            for sv in p["servers"].as_array().into_iter().flatten() {
                servers.push((
                    pool.clone(),
                    sv["name"].as_str().unwrap_or("").into(),
                    sv["qps"]["1s"].as_f64(),
                    sv["latency_ms"]["p99"].as_f64(),
                ));
            }
        }
        let point = ChartPoint {
            unix_ms: doc["time_unix_ms"].as_u64().unwrap_or(0),
            qps: t["qps"]["1s"].as_f64(),
            qps_5xx: t["qps_5xx"].as_f64(),
            latency: ["p50", "p90", "p99", "p999"].map(|q| t["latency_ms"][q].as_f64()),
            error_ratio: t["error_ratio_10s"].as_f64(),
            servers,
        };
        let mut charts = self.charts.lock().unwrap_or_else(|p| p.into_inner());
        if charts.len() == HISTORY {
            charts.pop_front();
        }
        charts.push_back(point);
    }

    /// The chart history, oldest first: each second as a document shaped
    /// like `/api/stats` with only what the charts read (`time_unix_ms`;
    /// `totals` with `qps.1s`, `qps_5xx`, `latency_ms.p50`/`p90`/`p99`/`p999`,
    /// `error_ratio_10s`; `pools[].servers[]` with `name`, `qps.1s` and
    /// `latency_ms.p99`).
    pub fn history(&self) -> Value {
        let charts = self.charts.lock().unwrap_or_else(|p| p.into_inner());
        let docs = charts.iter().map(|c| {
            let mut pools: Vec<(Arc<str>, Vec<Value>)> = Vec::new();
            for (pool, server, qps, p99) in &c.servers {
                let entry = json!({"name": server.as_ref(), "qps": {"1s": qps}, "latency_ms": {"p99": p99}});
                match pools.iter_mut().find(|(p, _)| p == pool) {
                    Some((_, list)) => list.push(entry),
                    None => pools.push((pool.clone(), vec![entry])),
                }
            }
            json!({
                "time_unix_ms": c.unix_ms,
                "totals": {
                    "qps": {"1s": c.qps},
                    "qps_5xx": c.qps_5xx,
                    "latency_ms": {"p50": c.latency[0], "p90": c.latency[1], "p99": c.latency[2], "p999": c.latency[3]},
                    "error_ratio_10s": c.error_ratio,
                },
                "pools": pools.into_iter().map(|(name, servers)| json!({"name": name.as_ref(), "servers": servers})).collect::<Vec<_>>(),
            })
        });
        Value::Array(docs.collect())
    }

    /// The newest sample at least `window` older than `now`, or the oldest.
    fn past(&self, now: &Sample, window: Duration) -> Option<Arc<Sample>> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.iter()
            .rev()
            .find(|s| {
                now.at.saturating_duration_since(s.at) >= window.saturating_sub(Duration::from_millis(100))
            })
            .or_else(|| ring.front())
            .filter(|s| s.at < now.at)
            .cloned()
    }

    fn render(&self, rt: &Runtime, now: &Sample) -> Value {
        let windows = [("1s", 1u64), ("10s", 10), ("60s", 60)]
            .map(|(n, w)| (n, self.past(now, Duration::from_secs(w))));
        let ten = windows[1].1.clone();
        let entity = |key: &str| -> Value { entity_json(key, now, &windows, ten.as_deref()) };
        let listeners: Vec<Value> = rt
            .listeners
            .iter()
            .flatten()
            .map(|l| {
                let mut v = entity(&format!("listener/{}", l.name));
                let s = &l.stats;
                let now_unix = unix_secs();
                let o = v.as_object_mut();
                if let Some(o) = o {
                    o.insert("name".into(), json!(l.name));
                    o.insert("connections".into(), json!(s.connections.load(Relaxed)));
                    o.insert("bytes_in".into(), json!(s.bytes_in.load(Relaxed)));
                    o.insert("bytes_out".into(), json!(s.bytes_out.load(Relaxed)));
                    o.insert(
                        "tls".into(),
                        json!({
                            "handshakes_tls12": s.tls_handshakes[0].load(Relaxed),
                            "handshakes_tls13": s.tls_handshakes[1].load(Relaxed),
                            "failures": s.tls_failures.load(Relaxed),
                        }),
                    );
                    o.insert(
                        "protocols".into(),
                        json!({
                            "HTTP/1.1": s.protocols[0].load(Relaxed),
                            "HTTP/2": s.protocols[1].load(Relaxed),
                            "HTTP/3": s.protocols[2].load(Relaxed),
                        }),
                    );
                    let certs: Vec<Value> = l
                        .certificate_details()
                        .into_iter()
                        .map(|c| {
                            json!({"name": c.name, "sans": c.sans, "issuer": c.issuer, "not_after": c.not_after,
                                   "expires_in_seconds": c.not_after - now_unix})
                        })
                        .collect();
                    o.insert("certificates".into(), Value::Array(certs));
                    if let Some(e) = tcp_endpoint(l, rt) {
                        o.insert("tcp".into(), tcp_json(&s.tcp));
                        o.insert("endpoint".into(), e);
                    }
                }
                v
            })
            .collect();
        let mut routes = Vec::new();
        for key in now.points.keys().filter_map(|k| k.strip_prefix("route/")) {
            let mut v = entity(&format!("route/{key}"));
            if let Some(o) = v.as_object_mut() {
                o.insert("name".into(), json!(key));
            }
            routes.push(v);
        }
        let clock = clock_ms();
        let pools: Vec<Value> = rt
            .pools
            .iter()
            .map(|p| {
                let servers: Vec<Value> = p
                    .balancer
                    .servers()
                    .iter()
                    .map(|s| {
                        let mut v = entity(&format!("server/{}/{}", p.name, s.name));
                        let header =
                            window_quantiles(now, ten.as_deref(), &format!("header/{}/{}", p.name, s.name));
                        if let Some(o) = v.as_object_mut() {
                            o.extend(server_state(s, p.balancer.gate(), clock, link(p)));
                            o.extend(server_extras(s, p));
                            o.insert("header_latency_ms".into(), header);
                        }
                        v
                    })
                    .collect();
                let mut v = entity(&format!("pool/{}", p.name));
                if let Some(o) = v.as_object_mut() {
                    o.insert("name".into(), json!(p.name));
                    o.insert(
                        "in_flight".into(),
                        json!(p.balancer.servers().iter().map(|s| s.in_flight()).sum::<u32>()),
                    );
                    o.insert("retries".into(), json!(p.stats.retries.load(Relaxed)));
                    o.insert("ejections".into(), json!(p.stats.ejections.load(Relaxed)));
                    o.insert("overloaded".into(), json!(p.stats.overloaded.load(Relaxed)));
                    o.insert("algorithm".into(), json!(p.balancer.algorithm().as_str()));
                    o.insert(
                        "check".into(),
                        p.health_check.as_ref().map_or(Value::Null, check_json),
                    );
                    o.insert("servers".into(), Value::Array(servers));
                }
                v
            })
            .collect();
        let access_log = rt
            .access_log
            .as_ref()
            .map(|l| json!({"written": l.written.load(Relaxed), "dropped": l.dropped.load(Relaxed)}));
        let mut rules: Vec<Value> = Vec::new();
        let mut refused = Map::new();
        let mut bad_paths = 0u64;
        let mut by_reason = [0u64; crate::stats::Refusal::ALL.len()];
        for l in rt.listeners.iter().flatten() {
            refused.insert(l.name.clone(), json!(l.stats.refused.load(Relaxed)));
            bad_paths += l.stats.bad_paths.load(Relaxed);
            for (sum, n) in by_reason.iter_mut().zip(l.stats.refusals()) {
                *sum += n;
            }
            for r in &l.rules {
                if !rules.iter().any(|x| x["name"] == r.rule.name.as_str()) {
                    rules.push(json!({"name": r.rule.name, "action": r.rule.action.name(), "hits": r.hits.load(Relaxed)}));
                }
            }
        }
        let mut doc = json!({
            "time_unix_ms": crate::stats::journal::unix_ms(),
            "access_log": access_log,
            "firewall": {
                "rules": rules,
                "connections_refused": refused,
                "bad_paths": bad_paths,
                // Requests refused as the client's fault, by reason (the
                // labels of rampart_requests_refused_total).
                "refusals": crate::stats::Refusal::ALL.iter().zip(by_reason).map(|(r, n)| (r.as_str().to_string(), json!(n))).collect::<Map<String, Value>>(),
                "bans": rt.bans.list().into_iter().map(|b| json!({"address": b.address, "remaining_seconds": b.remaining.as_secs(), "reason": b.reason})).collect::<Vec<_>>(),
                "banned_connections_refused": rt.bans.refused.load(Relaxed),
                "connection_limit_refused": rt.conn_limits.as_ref().map_or(0, |l| l.refused.load(Relaxed)),
                "top_blocked_clients": rt.events.top(10).into_iter().map(|(ip, n)| json!({"address": ip, "blocked": n})).collect::<Vec<_>>(),
                "recent_events": rt.events.recent().into_iter().take(20).map(|e| json!({"time_unix_ms": e.unix_ms, "client": e.client, "rule": e.rule, "action": e.action, "request": e.what})).collect::<Vec<_>>(),
            },
            "totals": entity("all"),
            "failures": rt.journal.failures().into_iter().take(20).map(|f| json!({
                "time_unix_ms": f.unix_ms, "listener": f.listener, "client": f.client, "method": f.method,
                "host": f.host, "path": f.path, "server": f.server, "status": f.status,
                "duration_ms": round2(f.duration.as_secs_f64() * 1e3), "request_id": f.request_id, "error": f.error,
            })).collect::<Vec<_>>(),
            "changes": rt.journal.changes().into_iter().map(|c| json!({
                "time_unix_ms": c.unix_ms, "kind": c.kind, "target": c.target, "detail": c.detail,
            })).collect::<Vec<_>>(),
            "listeners": listeners,
            "routes": routes,
            "pools": pools,
        });
        if let (Some(f), Some(node)) = (&rt.fleet_stats, &rt.fleet_node) {
            if let Some(o) = doc.as_object_mut() {
                o.insert(
                    "fleet_sync".into(),
                    json!({"node": node, "revision": f.revision.load(Relaxed), "etcd_up": f.up.load(Relaxed) == 1}),
                );
            }
        }
        if let Some(f) = &rt.fleet {
            let fleet = f.view(&doc);
            if let Some(o) = doc.as_object_mut() {
                o.insert("fleet".into(), fleet);
            }
        }
        doc
    }
}

/// A server's live state, as the admin API and the stats show it.
/// `link`: how rampart reaches it (`TLS`, `mTLS`, or None for plaintext).
pub fn server_state(s: &Backend, gate: HealthGate, now: u64, link: Option<&str>) -> Map<String, Value> {
    let state = match (s.state.admin(), s.in_flight()) {
        (AdminState::Draining, _) if s.state.removing() => "removing",
        (AdminState::Active, _) => "active",
        (AdminState::Draining, 0) => "drained",
        (AdminState::Draining, _) => "draining",
    };
    let log = s.state.health_log();
    let unix = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| (d.as_secs_f64() * 1e3).round() / 1e3)
    };
    let ejected = s.state.ejected(now);
    // Why it takes no traffic: the check's failure (or the ejection that
    // marked it down) while down; an ejection without an active check.
    let reason = match (s.state.health(), &log.reason) {
        (Health::Down, Some(r)) => Some(r.clone()),
        _ if ejected => Some("ejected after failed requests".to_string()),
        _ => None,
    };
    let last_check = log.last.as_ref().map(|c| {
        json!({
            "passed": c.passed,
            "detail": c.detail,
            "took_ms": (c.took.as_secs_f64() * 1e6).round() / 1e3,
            "at": unix(c.at),
        })
    });
    let transitions: Vec<Value> = log
        .recent
        .iter()
        .map(|t| json!({"at": unix(t.at), "to": t.to.as_str(), "reason": t.reason}))
        .collect();
    let c = s.conns.counts();
    let reuse = match c.opened + c.reused {
        0 => Value::Null,
        uses => json!(((c.reused as f64 / uses as f64) * 1000.0).round() / 1000.0),
    };
    let v = json!({
        "name": s.name,
        "address": s.addr,
        // HTTP/1.1 connections to the server, shared by every worker:
        // `reuse` is the share of requests that found one open.
        "connections": {
            "opened": c.opened,
            "reused": c.reused,
            "closed": c.closed,
            "open": c.open(),
            "idle": c.idle,
            "reuse": reuse,
        },
        "health": s.state.health().as_str(),
        "reason": reason,
        // When the current health verdict began (Unix seconds; null: none
        // since start).
        "since": log.since.map(unix),
        "last_check": last_check,
        "last_check_passed": s.state.last_check(),
        "transitions": transitions,
        "state": state,
        "weight": s.weight(),
        "in_flight": s.in_flight(),
        "max_requests": s.max_in_flight(),
        // Peak-EWMA of the time to the response head (what P2C weighs).
        "latency_ewma_ms": (s.latency_ewma().as_secs_f64() * 1e6).round() / 1e3,
        "ejected": ejected,
        "ejections": s.state.ejections(),
        "available": s.available(now, gate),
        "tls": link,
        "cert_expires": s.stats.cert_expires(),
        "tls_failures": s.stats.tls_failures.load(std::sync::atomic::Ordering::Relaxed),
        "last_tls_failure": s.stats.last_tls_failure().map(|(at, why)| json!({"time_unix_ms": at, "reason": why})),
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// What a pool's servers carry beyond [`server_state`]: their database
/// role (pools with a `mysql` check) and TCP sessions (pools of TCP
/// listeners).
pub fn server_extras(s: &Backend, p: &PoolRt) -> Map<String, Value> {
    let mut m = Map::new();
    // In its slow start: the share of its traffic it takes now.
    let ramp = p.balancer.slow_start_factor(s, clock_ms());
    m.insert(
        "slow_start".into(),
        if ramp < 1.0 {
            json!((ramp * 100.0).round() / 100.0)
        } else {
            Value::Null
        },
    );
    if p.is_database() {
        let d = s.db.get();
        m.insert(
            "database".into(),
            json!({"role": d.role.as_str(), "lag_seconds": d.lag.map(|l| l.as_secs()), "reason": d.reason}),
        );
    }
    if p.tcp {
        m.insert("tcp".into(), tcp_json(&s.stats.tcp));
    }
    m
}

/// A listener's or server's TCP counters.
pub fn tcp_json(t: &TcpStats) -> Value {
    let (buckets, sum_us) = t.durations.read();
    json!({
        "active": t.active.load(Relaxed),
        "sessions": t.sessions.load(Relaxed),
        "bytes_up": t.bytes_up.load(Relaxed),
        "bytes_down": t.bytes_down.load(Relaxed),
        "connect_failures": t.connect_failures.load(Relaxed),
        "refused": t.refused.load(Relaxed),
        "ended": buckets.iter().sum::<u64>(),
        "duration_seconds_sum": sum_us as f64 / 1e6,
    })
}

/// A TCP listener's endpoint: its pool and, for database endpoints, the
/// servers it would use now or why it refuses connections.
pub fn tcp_endpoint(l: &ListenerRt, rt: &Runtime) -> Option<Value> {
    let pool_name = l.tcp_pool.as_deref()?;
    let pool = rt.pool(pool_name)?;
    let servers = pool.balancer.servers();
    let names = |idx: &[usize]| -> Vec<&str> { idx.iter().map(|i| servers[*i].name.as_str()).collect() };
    let (role, using, refusing) = match l.db_endpoint {
        None => (Value::Null, Value::Null, Value::Null),
        Some(e) => {
            let role = json!(if e == DbEndpoint::Writer {
                "writer"
            } else {
                "reader"
            });
            match db_eligible(servers, e) {
                Ok(using) => (role, json!(names(&using)), Value::Null),
                Err(why) => (role, json!([]), json!(why)),
            }
        }
    };
    Some(json!({"pool": pool_name, "role": role, "using": using, "refusing": refusing}))
}

/// A pool's health check settings: the numbers and a sentence (the
/// stats and `/api/pools` show the same).
pub fn check_json(c: &crate::config::model::HealthCheck) -> Value {
    json!({
        "interval_ms": c.interval.as_millis() as u64,
        "timeout_ms": c.timeout.as_millis() as u64,
        "rise": c.rise,
        "fall": c.fall,
        "words": c.words(),
    })
}

/// How a pool's servers are reached: `TLS`, `mTLS` or None (plaintext).
pub fn link(p: &crate::runtime::PoolRt) -> Option<&'static str> {
    p.tls.as_ref().map(|t| if t.mutual { "mTLS" } else { "TLS" })
}

fn unix_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Counts, rates and percentiles of one entity.
fn entity_json(
    key: &str,
    now: &Sample,
    windows: &[(&str, Option<Arc<Sample>>); 3],
    ten: Option<&Sample>,
) -> Value {
    let p = now.points.get(key).copied().unwrap_or_default();
    let mut by_class = Map::new();
    for (i, c) in CLASSES.iter().enumerate() {
        by_class.insert((*c).into(), json!(p.class(i)));
    }
    let mut by_method = Map::new();
    for (i, m) in METHODS.iter().enumerate() {
        let n: u64 = p.counts[i].iter().sum();
        if n > 0 {
            by_method.insert((*m).into(), json!(n));
        }
    }
    let mut qps = Map::new();
    for (name, past) in windows {
        let rate = past.as_ref().map(|s| {
            let before = s.points.get(key).copied().unwrap_or_default();
            let secs = now.at.saturating_duration_since(s.at).as_secs_f64();
            if secs > 0.0 {
                p.total().saturating_sub(before.total()) as f64 / secs
            } else {
                0.0
            }
        });
        qps.insert((*name).into(), json!(rate.map(round2)));
    }
    // The 5xx answers' rate over the last second.
    let qps_5xx = windows[0].1.as_ref().map(|s| {
        let before = s.points.get(key).copied().unwrap_or_default();
        let secs = now.at.saturating_duration_since(s.at).as_secs_f64();
        let n = p.class(4).saturating_sub(before.class(4));
        if secs > 0.0 {
            round2(n as f64 / secs)
        } else {
            0.0
        }
    });
    let errors = ten.map(|s| {
        let b = s.points.get(key).copied().unwrap_or_default();
        let total = p.total().saturating_sub(b.total());
        let e = p.class(4).saturating_sub(b.class(4));
        if total == 0 {
            0.0
        } else {
            round4(e as f64 / total as f64)
        }
    });
    json!({
        "requests": p.total(),
        "by_class": by_class,
        "by_method": by_method,
        "qps": qps,
        "qps_5xx": qps_5xx,
        "error_ratio_10s": errors,
        "latency_ms": window_quantiles(now, ten, key),
    })
}

/// p50/p90/p99/p99.9 over the window ending `now`, in milliseconds.
fn window_quantiles(now: &Sample, past: Option<&Sample>, key: &str) -> Value {
    let cur = now.points.get(key).copied().unwrap_or_default();
    let before = past.and_then(|s| s.points.get(key).copied()).unwrap_or_default();
    let mut diff = [0u64; NB];
    for (i, d) in diff.iter_mut().enumerate() {
        *d = cur.buckets[i].saturating_sub(before.buckets[i]);
    }
    let q = |x: f64| quantile(&diff, x).map(round2);
    json!({ "p50": q(0.50), "p90": q(0.90), "p99": q(0.99), "p999": q(0.999) })
}

/// A quantile from bucket counts, interpolated within its bucket (ms).
pub fn quantile(buckets: &[u64; NB], q: f64) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut seen = 0f64;
    for (i, &n) in buckets.iter().enumerate() {
        if n == 0 {
            continue;
        }
        if seen + n as f64 >= rank {
            let lo = if i == 0 { 0 } else { BUCKETS_US[i - 1] } as f64;
            let hi = BUCKETS_US.get(i).copied().map_or(lo * 2.0, |b| b as f64);
            let frac = ((rank - seen) / n as f64).clamp(0.0, 1.0);
            return Some((lo + (hi - lo) * frac) / 1000.0);
        }
        seen += n as f64;
    }
    None
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let mut b = [0u64; NB];
        b[1] = 100; // 0.5–1 ms
        assert_eq!(quantile(&b, 0.5), Some(0.75));
        b[3] = 100; // 2.5–5 ms
        assert_eq!(quantile(&b, 0.99), Some(2.5 + 2.5 * 0.98));
        assert_eq!(quantile(&[0; NB], 0.5), None);
    }

    #[test]
    fn the_chart_history_keeps_the_last_fifteen_minutes_in_the_stats_shape() {
        let sampler = Sampler::default();
        for i in 0..(HISTORY as u64 + 100) {
            let doc = json!({
                "time_unix_ms": i * 1000,
                "totals": {"qps": {"1s": i as f64}, "latency_ms": {"p50": 1.5, "p99": null}, "error_ratio_10s": 0.0},
                "pools": [{"name": "web", "servers": [{"name": "a", "qps": {"1s": 2.0}}, {"name": "b", "qps": {"1s": null}}]}],
            });
            sampler.remember(&doc);
        }
        let h = sampler.history();
        let h = h.as_array().expect("array");
        assert_eq!(h.len(), HISTORY, "bounded");
        assert_eq!(h[0]["time_unix_ms"], 100_000, "the oldest 100 s went");
        let last = &h[HISTORY - 1];
        assert_eq!(last["totals"]["qps"]["1s"], (HISTORY + 99) as f64);
        assert_eq!(last["totals"]["latency_ms"]["p50"], 1.5);
        assert_eq!(last["pools"][0]["name"], "web");
        assert_eq!(
            last["pools"][0]["servers"][0],
            json!({"name": "a", "qps": {"1s": 2.0}, "latency_ms": {"p99": null}})
        );
        assert_eq!(last["pools"][0]["servers"][1]["qps"]["1s"], Value::Null);
    }
}
