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

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use arc_swap::ArcSwap;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::balancer::{clock_ms, AdminState, Health};
use crate::proxy::Runtime;

/// The registry and what feeds it.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// A registry with rampart's collectors over `runtime`.
    pub fn new(runtime: Arc<ArcSwap<Runtime>>) -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(PoolCollector { runtime }));
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
                weight.push((l, i64::from(s.weight())));
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
