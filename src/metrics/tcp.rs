//! TCP-mode and database metrics: sessions, bytes and connect failures per
//! TCP listener and per server of their pools, session durations, each
//! database server's role and replication lag, and whether each writer
//! endpoint has its one primary.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use arc_swap::ArcSwap;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use super::names::*;
use super::{encode_all, Labels};
use crate::balancer::{db_writer, DbRole};
use crate::config::model::DbEndpoint;
use crate::runtime::Runtime;
use crate::stats::TcpStats;

#[derive(Debug)]
pub(super) struct TcpCollector {
    pub(super) runtime: Arc<ArcSwap<Runtime>>,
}

/// One set of rows per TCP counter.
#[derive(Default)]
struct Rows<'a> {
    active: Vec<(Labels<'a>, ConstGauge)>,
    sessions: Vec<(Labels<'a>, ConstCounter)>,
    bytes: Vec<(Labels<'a>, ConstCounter)>,
    failures: Vec<(Labels<'a>, ConstCounter)>,
    durations: Vec<(Labels<'a>, super::ConstHist)>,
}

impl<'a> Rows<'a> {
    fn add(&mut self, labels: Labels<'a>, t: &TcpStats) {
        self.active
            .push((labels.clone(), ConstGauge::new(t.active.load(Relaxed))));
        self.sessions
            .push((labels.clone(), ConstCounter::new(t.sessions.load(Relaxed))));
        for (dir, n) in [("up", &t.bytes_up), ("down", &t.bytes_down)] {
            let mut l = labels.clone();
            l.push(("direction", dir));
            self.bytes.push((l, ConstCounter::new(n.load(Relaxed))));
        }
        self.failures.push((
            labels.clone(),
            ConstCounter::new(t.connect_failures.load(Relaxed)),
        ));
        self.durations.push((labels, super::ConstHist::of(&t.durations)));
    }

    fn encode(self, enc: &mut DescriptorEncoder<'_>, names: [&str; 5], of: &str) -> std::fmt::Result {
        let [active, sessions, bytes, failures, durations] = names;
        encode_all(
            enc,
            active,
            &format!("TCP sessions open now, by {of}"),
            MetricType::Gauge,
            &self.active,
        )?;
        encode_all(
            enc,
            sessions,
            &format!("TCP sessions relayed, by {of}"),
            MetricType::Counter,
            &self.sessions,
        )?;
        encode_all(
            enc,
            bytes,
            &format!(
                "Bytes relayed in TCP sessions that ended, by {of} and direction (up: client to server)"
            ),
            MetricType::Counter,
            &self.bytes,
        )?;
        encode_all(
            enc,
            failures,
            &format!("Connections to servers that failed, by {of}"),
            MetricType::Counter,
            &self.failures,
        )?;
        encode_all(
            enc,
            durations,
            &format!("Durations of TCP sessions, by {of}"),
            MetricType::Histogram,
            &self.durations,
        )
    }
}

impl Collector for TcpCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let rt = self.runtime.load();
        let (mut by_listener, mut by_server) = (Rows::default(), Rows::default());
        let (mut refused, mut writer_ok, mut roles, mut lag) = (vec![], vec![], vec![], vec![]);
        for l in rt.listeners.iter().flatten() {
            let Some(pool) = l.tcp_pool.as_deref() else {
                continue;
            };
            by_listener.add(vec![("listener", l.name.as_str())], &l.stats.tcp);
            refused.push((
                vec![("listener", l.name.as_str())],
                ConstCounter::new(l.stats.tcp.refused.load(Relaxed)),
            ));
            if l.db_endpoint == Some(DbEndpoint::Writer) {
                let ok = rt
                    .pool(pool)
                    .is_some_and(|p| db_writer(p.balancer.servers()).is_ok());
                writer_ok.push((
                    vec![("listener", l.name.as_str())],
                    ConstGauge::new(i64::from(ok)),
                ));
            }
        }
        for p in &rt.pools {
            for s in p.balancer.servers() {
                let labels = vec![("pool", p.name.as_str()), ("server", s.name.as_str())];
                if p.tcp {
                    by_server.add(labels.clone(), &s.stats.tcp);
                }
                if p.is_database() {
                    let d = s.db.get();
                    for r in [DbRole::Primary, DbRole::Replica, DbRole::Down, DbRole::Unknown] {
                        let mut l = labels.clone();
                        l.push(("role", r.as_str()));
                        roles.push((l, ConstGauge::new(i64::from(d.role == r))));
                    }
                    if let Some(secs) = d.lag {
                        lag.push((labels, ConstGauge::new(secs.as_secs() as i64)));
                    }
                }
            }
        }
        by_listener.encode(
            &mut enc,
            [
                TCP_SESSIONS_ACTIVE,
                TCP_SESSIONS,
                TCP_BYTES,
                TCP_CONNECT_FAILURES,
                TCP_SESSION_DURATION,
            ],
            "listener",
        )?;
        by_server.encode(
            &mut enc,
            [
                BACKEND_TCP_SESSIONS_ACTIVE,
                BACKEND_TCP_SESSIONS,
                BACKEND_TCP_BYTES,
                BACKEND_TCP_CONNECT_FAILURES,
                BACKEND_TCP_SESSION_DURATION,
            ],
            "server",
        )?;
        encode_all(
            &mut enc,
            TCP_REFUSED,
            "TCP connections closed because no server could take them (for database endpoints: no single primary, no fresh replica)",
            MetricType::Counter,
            &refused,
        )?;
        encode_all(
            &mut enc,
            DB_WRITER_AVAILABLE,
            "1 while a writer endpoint has exactly one writable primary; 0 while it refuses connections",
            MetricType::Gauge,
            &writer_ok,
        )?;
        encode_all(
            &mut enc,
            DB_ROLE,
            "1 for the role the last mysql check found (primary, replica, down, unknown)",
            MetricType::Gauge,
            &roles,
        )?;
        encode_all(
            &mut enc,
            DB_REPLICATION_LAG,
            "Replication lag the last mysql check read (Seconds_Behind_Master), while replicating",
            MetricType::Gauge,
            &lag,
        )
    }
}
